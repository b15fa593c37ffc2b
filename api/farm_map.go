package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/twpayne/go-geom"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// The farm map: one GeoJSON FeatureCollection with a layer per kind of thing on the farm.
//
// It is the app's main screen and must stay fast for a 1,000-field farm (p99 ≤ 50 ms, see
// BenchmarkFarmMap): a request reads each kind of thing once, with the lists loaded
// concurrently (one query each, two for valves with their live runs; never one per feature),
// and the answer is written by farm_map_json.go rather than through geo.Feature's reflective
// encoding.

// mapLayer is one layer of the farm map. needs names what its features read, so that it can
// be loaded before the layers are drawn.
type mapLayer struct {
	name     string
	needs    []mapList
	features func(d *mapData) ([]mapFeature, error)
}

// mapFeature is one feature: its id ("zone/12", from layer and num), its geometry (nil: null)
// and its properties, a struct per layer whose first member is the layer's name.
type mapFeature struct {
	layer string
	num   int64
	geom  geom.T
	props mapProps
}

// mapLayers lists the layers in drawing order (bottom first).
func (s *Server) mapLayers() []mapLayer {
	return []mapLayer{
		{"field", []mapList{listFields}, s.fieldFeatures},
		{"zone", []mapList{listZones, listNodes, listValves}, s.zoneFeatures},
		{"node", []mapList{listNodes}, s.nodeFeatures},
		{"valve", []mapList{listValves, listControllers}, s.valveFeatures},
		{"water_source", []mapList{listWaterSources}, s.waterSourceFeatures},
	}
}

// farmMap: GET /farms/{farm}/map?layers=field,zone — every layer by default.
func (s *Server) farmMap(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	layers := s.mapLayers()
	if q := c.QueryParam("layers"); q != "" {
		want := strings.Split(q, ",")
		var names []string
		for _, l := range layers {
			names = append(names, l.name)
		}
		for _, w := range want {
			if !slices.Contains(names, w) {
				return &ValidationError{Field: "layers", Problem: fmt.Sprintf("%q is not one of %s", w, strings.Join(names, ", "))}
			}
		}
		layers = slices.DeleteFunc(layers, func(l mapLayer) bool { return !slices.Contains(want, l.name) })
	}
	d := &mapData{ctx: c.Request().Context(), farm: farm, now: s.now(), s: s}
	// Every list is loaded, and every layer drawn, concurrently: a layer is written into its own
	// buffer as soon as its lists are in, so that the others are ready by the time the slowest
	// query (the fields', with their areas on the ellipsoid) returns. Nothing is sent before
	// every layer is done, so that an error still gets a problem document.
	type drawn struct {
		buf  *[]byte // the layer's features, comma-separated
		zbuf *[]byte // the same compressed (farm_map_gzip.go), when the client takes gzip
		err  error
	}
	gzip := acceptsGzip(c)
	out := make([]drawn, len(layers))
	var wg sync.WaitGroup
	var started [mapLists]bool
	for _, l := range layers {
		for _, need := range l.needs {
			if !started[need] {
				started[need] = true
				wg.Go(func() { _ = d.get(need) })
			}
		}
	}
	for i, l := range layers {
		wg.Go(func() {
			fs, err := l.features(d)
			if err != nil {
				out[i].err = fmt.Errorf("map layer %s: %w", l.name, err)
				return
			}
			buf := s.mapBuffer()
			if need := 512 * len(fs); cap(*buf) < need { // a feature is 250 to 500 bytes
				*buf = make([]byte, 0, need)
			}
			*buf, out[i].err = appendFeatures((*buf)[:0], fs)
			out[i].buf = buf
			if gzip && out[i].err == nil && len(*buf) > 0 {
				out[i].zbuf, out[i].err = s.deflateLayer(*buf)
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, o := range out {
			s.releaseMapBuffer(o.buf)
			s.releaseMapBuffer(o.zbuf)
		}
	}()
	for _, o := range out {
		if o.err != nil {
			return o.err
		}
	}

	// The collection: its start, the non-empty layers with commas between them, its end.
	parts := [][]byte{[]byte(featureCollectionStart)}
	deflated := [][]byte{nil}
	size := len(featureCollectionStart) + len(featureCollectionEnd)
	for _, o := range out {
		if len(*o.buf) == 0 {
			continue
		}
		if len(parts) > 1 {
			parts, deflated = append(parts, []byte{','}), append(deflated, nil)
		}
		var z []byte
		if o.zbuf != nil {
			z = *o.zbuf
		}
		parts, deflated = append(parts, *o.buf), append(deflated, z)
		size += len(*o.buf) + 1
	}
	parts, deflated = append(parts, []byte(featureCollectionEnd)), append(deflated, nil)

	res := c.Response()
	res.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	res.Header().Add(echo.HeaderVary, echo.HeaderAcceptEncoding)
	if gzip && size >= mapGzipMinLength {
		res.Header().Set(echo.HeaderContentEncoding, "gzip")
		res.WriteHeader(http.StatusOK)
		return gzipParts(res, parts, deflated) // an error: the client went away
	}
	res.WriteHeader(http.StatusOK)
	for _, p := range parts {
		if _, err := res.Write(p); err != nil {
			return err // the client went away; nothing more can be said to it
		}
	}
	return nil
}

// mapBuffer returns a buffer for one layer of a map, reused across requests: a 1,000-field
// farm's map is about 2 MB, which allocating and zeroing afresh for every request would cost a
// good share of the time spent writing it.
func (s *Server) mapBuffer() *[]byte {
	if b, ok := s.mapBufs.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

func (s *Server) releaseMapBuffer(b *[]byte) {
	if b != nil && cap(*b) <= maxPooledMapBuffer {
		s.mapBufs.Put(b)
	}
}

// maxPooledMapBuffer bounds the buffers kept for reuse.
const maxPooledMapBuffer = 8 << 20

// mapList names one list a map request reads.
type mapList int

const (
	listFields mapList = iota
	listZones
	listNodes
	listValves
	listControllers
	listWaterSources
	mapLists // how many there are
)

// mapData is what one map request reads, each list loaded at most once and shared between the
// layers that need it.
type mapData struct {
	ctx  context.Context
	farm geo.Farm
	now  time.Time
	s    *Server

	// Each list is written once (under its sync.Once) and read only after that Once.
	once         [mapLists]sync.Once
	errs         [mapLists]error
	fields       []geo.Field
	zones        []irrigation.Zone
	nodes        []fieldnodes.Node
	valves       []irrigation.Valve
	controllers  []irrigation.Controller
	waterSources []irrigation.WaterSource
}

// get loads list l unless it has been; safe for concurrent use.
func (d *mapData) get(l mapList) error {
	d.once[l].Do(func() {
		ctx, farm := d.ctx, d.farm.ID
		var err error
		switch l {
		case listFields:
			d.fields, err = d.s.geo.Fields(ctx, farm)
		case listZones:
			d.zones, err = d.s.irr.Zones(ctx, farm)
		case listNodes:
			d.nodes, err = d.s.mapNodes(ctx, farm)
		case listValves:
			d.valves, err = d.s.irr.Valves(ctx, farm)
		case listControllers:
			d.controllers, err = d.s.irr.Controllers(ctx, farm)
		case listWaterSources:
			d.waterSources, err = d.s.irr.WaterSources(ctx, farm)
		}
		d.errs[l] = err
	})
	return d.errs[l]
}

type fieldProps struct {
	Layer  string  `json:"layer"`
	ID     int64   `json:"id"`
	Name   string  `json:"name"`
	Crop   string  `json:"crop"`
	AreaHa float64 `json:"area_ha"`
}

// fieldFeatures is the field layer: id, name, crop, area_ha.
func (s *Server) fieldFeatures(d *mapData) ([]mapFeature, error) {
	if err := d.get(listFields); err != nil {
		return nil, err
	}
	out := make([]mapFeature, 0, len(d.fields))
	for _, f := range d.fields {
		out = append(out, mapFeature{
			layer: "field", num: f.ID,
			geom:  f.Geom,
			props: fieldProps{Layer: "field", ID: f.ID, Name: f.Name, Crop: f.Crop, AreaHa: roundHa(f.AreaHa)},
		})
	}
	return out, nil
}

// Moisture classes of a zone by its soil_vwc (m3/m3).
const (
	moistureDryBelow = 0.15 // dry < 0.15 ≤ ok
	moistureWetFrom  = 0.35 // ok < 0.35 ≤ wet
)

// moistureClass names a volumetric water content: dry, ok, wet; unknown without one.
func moistureClass(vwc *float64) string {
	switch {
	case vwc == nil:
		return "unknown"
	case *vwc < moistureDryBelow:
		return "dry"
	case *vwc < moistureWetFrom:
		return "ok"
	}
	return "wet"
}

type zoneProps struct {
	Layer      string   `json:"layer"`
	ID         int64    `json:"id"`
	Name       string   `json:"name"`
	FieldID    *int64   `json:"field_id"`
	Crop       string   `json:"crop"`
	SoilVWC    *float64 `json:"soil_vwc"`
	Moisture   string   `json:"moisture"`
	Irrigating bool     `json:"irrigating"`
}

// zoneFeatures is the zone layer: id, name, field_id, crop, soil_vwc (the mean of the latest
// soil_vwc of the zone's nodes; null when none has one), moisture (its class) and irrigating (a
// live run waters the zone).
func (s *Server) zoneFeatures(d *mapData) ([]mapFeature, error) {
	for _, l := range []mapList{listZones, listNodes, listValves} {
		if err := d.get(l); err != nil {
			return nil, err
		}
	}
	type sum struct {
		total float64
		n     int
	}
	vwc := map[int64]*sum{}
	for _, n := range d.nodes {
		v, ok := n.Latest["soil_vwc"]
		if n.ZoneID == nil || !ok {
			continue
		}
		z := vwc[*n.ZoneID]
		if z == nil {
			z = &sum{}
			vwc[*n.ZoneID] = z
		}
		z.total += v.Value
		z.n++
	}
	irrigating := map[int64]bool{}
	for _, v := range d.valves {
		if v.Run != nil {
			irrigating[v.Run.ZoneID] = true
		}
	}
	out := make([]mapFeature, 0, len(d.zones))
	for _, z := range d.zones {
		var mean *float64
		if sm := vwc[z.ID]; sm != nil {
			m := sm.total / float64(sm.n)
			mean = &m
		}
		out = append(out, mapFeature{
			layer: "zone", num: z.ID,
			geom: z.Geom,
			props: zoneProps{Layer: "zone", ID: z.ID, Name: z.Name, FieldID: z.FieldID, Crop: z.Crop, SoilVWC: mean,
				Moisture: moistureClass(mean), Irrigating: irrigating[z.ID]},
		})
	}
	return out, nil
}

type nodeProps struct {
	Layer      string                `json:"layer"`
	ID         int64                 `json:"id"`
	UID        string                `json:"uid"`
	Name       string                `json:"name"`
	ZoneID     *int64                `json:"zone_id"`
	LastSeenAt *time.Time            `json:"last_seen_at"`
	BatteryV   *float64              `json:"battery_v"`
	Stale      bool                  `json:"stale"`
	Latest     map[string]latestJSON `json:"latest"`
}

// nodeFeatures is the node layer: id, uid, name, zone_id, last_seen_at, battery_v, stale and
// latest ({metric: {value, ts}}). A node without a location has a null geometry.
func (s *Server) nodeFeatures(d *mapData) ([]mapFeature, error) {
	if err := d.get(listNodes); err != nil {
		return nil, err
	}
	out := make([]mapFeature, 0, len(d.nodes))
	for _, n := range d.nodes {
		out = append(out, mapFeature{
			layer: "node", num: n.ID,
			geom: n.Location,
			props: nodeProps{Layer: "node", ID: n.ID, UID: n.UID, Name: n.Name, ZoneID: n.ZoneID, LastSeenAt: utcp(n.LastSeenAt),
				BatteryV: n.BatteryV, Stale: nodeStale(n, d.now), Latest: latestOf(n.Latest)},
		})
	}
	return out, nil
}

type valveProps struct {
	Layer        string     `json:"layer"`
	ID           int64      `json:"id"`
	Name         string     `json:"name"`
	ControllerID int64      `json:"controller_id"`
	Channel      int        `json:"channel"`
	ZoneID       *int64     `json:"zone_id"`
	State        string     `json:"state"`
	RunID        *int64     `json:"run_id"`
	EndsAt       *time.Time `json:"ends_at"`
}

// valveFeatures is the valve layer: id, name, controller_id, channel, zone_id, state (as last
// reported), run_id and ends_at (of the live run; null when idle or not yet confirmed open).
// It is drawn at the valve's location, else at its controller's.
func (s *Server) valveFeatures(d *mapData) ([]mapFeature, error) {
	for _, l := range []mapList{listValves, listControllers} {
		if err := d.get(l); err != nil {
			return nil, err
		}
	}
	ctlLoc := make(map[int64]*geom.Point, len(d.controllers))
	for _, c := range d.controllers {
		ctlLoc[c.ID] = c.Location
	}
	out := make([]mapFeature, 0, len(d.valves))
	for _, v := range d.valves {
		g := v.Location
		if g == nil {
			g = ctlLoc[v.ControllerID]
		}
		p := valveProps{Layer: "valve", ID: v.ID, Name: v.Name, ControllerID: v.ControllerID, Channel: v.Channel,
			ZoneID: v.ZoneID, State: v.State}
		if v.Run != nil {
			p.RunID = &v.Run.ID
			p.EndsAt = utcp(v.Run.EndsAt)
		}
		out = append(out, mapFeature{layer: "valve", num: v.ID, geom: g, props: p})
	}
	return out, nil
}

type waterSourceProps struct {
	Layer       string   `json:"layer"`
	ID          int64    `json:"id"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	CapacityM3H *float64 `json:"capacity_m3h"`
}

// waterSourceFeatures is the water_source layer: id, name, kind, capacity_m3h.
func (s *Server) waterSourceFeatures(d *mapData) ([]mapFeature, error) {
	if err := d.get(listWaterSources); err != nil {
		return nil, err
	}
	out := make([]mapFeature, 0, len(d.waterSources))
	for _, w := range d.waterSources {
		out = append(out, mapFeature{
			layer: "water_source", num: w.ID,
			geom:  w.Location,
			props: waterSourceProps{Layer: "water_source", ID: w.ID, Name: w.Name, Kind: w.Kind, CapacityM3H: w.CapacityM3H},
		})
	}
	return out, nil
}
