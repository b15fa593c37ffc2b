package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/twpayne/go-geom"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// The farm map: one GeoJSON FeatureCollection with a layer per kind of thing on the farm.

// mapLayer is one layer of the farm map. Features must set properties.layer to name.
type mapLayer struct {
	name     string
	features func(d *mapData) ([]geo.Feature, error)
}

// mapLayers lists the layers in drawing order (bottom first).
func (s *Server) mapLayers() []mapLayer {
	return []mapLayer{
		{"field", s.fieldFeatures},
		{"zone", s.zoneFeatures},
		{"node", s.nodeFeatures},
		{"valve", s.valveFeatures},
		{"water_source", s.waterSourceFeatures},
	}
}

// mapData is what one map request reads, each list loaded at most once and shared between the
// layers that need it: a request costs one query per kind of thing (two for valves, with their
// live runs), never one per feature.
type mapData struct {
	ctx          context.Context
	farm         geo.Farm
	now          time.Time
	s            *Server
	fields       lazy[[]geo.Field]
	zones        lazy[[]irrigation.Zone]
	nodes        lazy[[]fieldnodes.Node]
	valves       lazy[[]irrigation.Valve]
	controllers  lazy[[]irrigation.Controller]
	waterSources lazy[[]irrigation.WaterSource]
}

// lazy is a value loaded on first use (within one request, so without locking).
type lazy[T any] struct {
	done bool
	v    T
	err  error
}

func (l *lazy[T]) get(load func() (T, error)) (T, error) {
	if !l.done {
		l.v, l.err = load()
		l.done = true
	}
	return l.v, l.err
}

func (d *mapData) Fields() ([]geo.Field, error) {
	return d.fields.get(func() ([]geo.Field, error) { return d.s.geo.Fields(d.ctx, d.farm.ID) })
}

func (d *mapData) Zones() ([]irrigation.Zone, error) {
	return d.zones.get(func() ([]irrigation.Zone, error) { return d.s.irr.Zones(d.ctx, d.farm.ID) })
}

func (d *mapData) Nodes() ([]fieldnodes.Node, error) {
	return d.nodes.get(func() ([]fieldnodes.Node, error) { return d.s.nodes.Nodes(d.ctx, d.farm.ID) })
}

func (d *mapData) Valves() ([]irrigation.Valve, error) {
	return d.valves.get(func() ([]irrigation.Valve, error) { return d.s.irr.Valves(d.ctx, d.farm.ID) })
}

func (d *mapData) Controllers() ([]irrigation.Controller, error) {
	return d.controllers.get(func() ([]irrigation.Controller, error) { return d.s.irr.Controllers(d.ctx, d.farm.ID) })
}

func (d *mapData) WaterSources() ([]irrigation.WaterSource, error) {
	return d.waterSources.get(func() ([]irrigation.WaterSource, error) { return d.s.irr.WaterSources(d.ctx, d.farm.ID) })
}

// farmMap: GET /farms/{farm}/map?layers=field,zone — every layer by default.
func (s *Server) farmMap(c echo.Context) error {
	farmID, err := pathID(c, "farm")
	if err != nil {
		return err
	}
	farm, err := s.requireFarm(c, farmID, RoleViewer)
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
	fc := geo.FeatureCollection{Features: []geo.Feature{}}
	for _, l := range layers {
		fs, err := l.features(d)
		if err != nil {
			return fmt.Errorf("map layer %s: %w", l.name, err)
		}
		fc.Features = append(fc.Features, fs...)
	}
	return c.JSON(http.StatusOK, fc)
}

// fieldFeatures is the field layer: id, name, crop, area_ha.
func (s *Server) fieldFeatures(d *mapData) ([]geo.Feature, error) {
	fields, err := d.Fields()
	if err != nil {
		return nil, err
	}
	out := make([]geo.Feature, 0, len(fields))
	for _, f := range fields {
		out = append(out, geo.Feature{
			ID:       fmt.Sprintf("field/%d", f.ID),
			Geometry: f.Geom,
			Properties: map[string]any{
				"layer": "field", "id": f.ID, "name": f.Name, "crop": f.Crop, "area_ha": roundHa(f.AreaHa),
			},
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

// zoneFeatures is the zone layer: id, name, field_id, crop, soil_vwc (the mean of the latest
// soil_vwc of the zone's nodes; null when none has one), moisture (its class) and irrigating (a
// live run waters the zone).
func (s *Server) zoneFeatures(d *mapData) ([]geo.Feature, error) {
	zones, err := d.Zones()
	if err != nil {
		return nil, err
	}
	nodes, err := d.Nodes()
	if err != nil {
		return nil, err
	}
	valves, err := d.Valves()
	if err != nil {
		return nil, err
	}
	type sum struct {
		total float64
		n     int
	}
	vwc := map[int64]*sum{}
	for _, n := range nodes {
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
	for _, v := range valves {
		if v.Run != nil {
			irrigating[v.Run.ZoneID] = true
		}
	}
	out := make([]geo.Feature, 0, len(zones))
	for _, z := range zones {
		var mean *float64
		if sm := vwc[z.ID]; sm != nil {
			m := sm.total / float64(sm.n)
			mean = &m
		}
		out = append(out, geo.Feature{
			ID:       fmt.Sprintf("zone/%d", z.ID),
			Geometry: z.Geom,
			Properties: map[string]any{
				"layer": "zone", "id": z.ID, "name": z.Name, "field_id": z.FieldID, "crop": z.Crop,
				"soil_vwc": mean, "moisture": moistureClass(mean), "irrigating": irrigating[z.ID],
			},
		})
	}
	return out, nil
}

// nodeFeatures is the node layer: id, uid, name, zone_id, last_seen_at, battery_v, stale and
// latest ({metric: {value, ts}}). A node without a location has a null geometry.
func (s *Server) nodeFeatures(d *mapData) ([]geo.Feature, error) {
	nodes, err := d.Nodes()
	if err != nil {
		return nil, err
	}
	out := make([]geo.Feature, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, geo.Feature{
			ID:       fmt.Sprintf("node/%d", n.ID),
			Geometry: n.Location, // geo.Marshal writes null for a nil *geom.Point
			Properties: map[string]any{
				"layer": "node", "id": n.ID, "uid": n.UID, "name": n.Name, "zone_id": n.ZoneID,
				"last_seen_at": utcp(n.LastSeenAt), "battery_v": n.BatteryV, "stale": nodeStale(n, d.now),
				"latest": latestOf(n.Latest),
			},
		})
	}
	return out, nil
}

// valveFeatures is the valve layer: id, name, controller_id, channel, zone_id, state (as last
// reported), run_id and ends_at (of the live run; null when idle or not yet confirmed open).
// It is drawn at the valve's location, else at its controller's.
func (s *Server) valveFeatures(d *mapData) ([]geo.Feature, error) {
	valves, err := d.Valves()
	if err != nil {
		return nil, err
	}
	var ctlLoc map[int64]*geom.Point
	out := make([]geo.Feature, 0, len(valves))
	for _, v := range valves {
		g := v.Location
		if g == nil {
			if ctlLoc == nil {
				ctls, err := d.Controllers()
				if err != nil {
					return nil, err
				}
				ctlLoc = make(map[int64]*geom.Point, len(ctls))
				for _, c := range ctls {
					ctlLoc[c.ID] = c.Location
				}
			}
			g = ctlLoc[v.ControllerID]
		}
		var runID *int64
		var endsAt *time.Time
		if v.Run != nil {
			runID = &v.Run.ID
			endsAt = utcp(v.Run.EndsAt)
		}
		out = append(out, geo.Feature{
			ID:       fmt.Sprintf("valve/%d", v.ID),
			Geometry: g,
			Properties: map[string]any{
				"layer": "valve", "id": v.ID, "name": v.Name, "controller_id": v.ControllerID, "channel": v.Channel,
				"zone_id": v.ZoneID, "state": v.State, "run_id": runID, "ends_at": endsAt,
			},
		})
	}
	return out, nil
}

// waterSourceFeatures is the water_source layer: id, name, kind, capacity_m3h.
func (s *Server) waterSourceFeatures(d *mapData) ([]geo.Feature, error) {
	list, err := d.WaterSources()
	if err != nil {
		return nil, err
	}
	out := make([]geo.Feature, 0, len(list))
	for _, w := range list {
		out = append(out, geo.Feature{
			ID:       fmt.Sprintf("water_source/%d", w.ID),
			Geometry: w.Location,
			Properties: map[string]any{
				"layer": "water_source", "id": w.ID, "name": w.Name, "kind": w.Kind, "capacity_m3h": w.CapacityM3H,
			},
		})
	}
	return out, nil
}
