package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
)

// clientFeature is a feature of GET /farms/{farm}/map as a client sees it.
type clientFeature struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	Geometry   json.RawMessage `json:"geometry"`
	Properties map[string]any  `json:"properties"`
}

func (e *env) farmMapOf(c *client, farmID int64, query string) map[string]clientFeature {
	e.t.Helper()
	var fc struct {
		Type     string          `json:"type"`
		Features []clientFeature `json:"features"`
	}
	c.do("GET", fmt.Sprintf("/api/v1/farms/%d/map%s", farmID, query), nil).want(http.StatusOK).decode(&fc)
	out := map[string]clientFeature{}
	for _, f := range fc.Features {
		if f.Type != "Feature" || f.Properties["layer"] == nil {
			e.t.Fatalf("feature %+v", f)
		}
		out[f.ID] = f
	}
	return out
}

func TestFarmMapLayers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	agro := e.login("agro@aghali.test")
	farm := fmt.Sprintf("/api/v1/farms/%d", e.farmA.ID)

	var field fieldJSON
	agro.do("POST", farm+"/fields", fieldBody("North plot", squareCW)).want(http.StatusCreated).decode(&field)
	var ws waterSourceJSON
	agro.do("POST", farm+"/water-sources", map[string]any{"name": "Well 1", "kind": "well", "capacity_m3h": 12.5,
		"location": map[string]any{"type": "Point", "coordinates": []float64{46.6299, 39.0899}}}).want(http.StatusCreated).decode(&ws)

	// Four zones: dry, ok, wet (from their nodes' latest soil_vwc) and one without nodes.
	dry := e.newRig(e.farmA.ID, "Dry", map[string]any{"field_id": field.ID})
	var ok, wet, empty zoneJSON
	agro.do("POST", farm+"/zones", zoneBody("Ok", squareCW, nil)).want(http.StatusCreated).decode(&ok)
	agro.do("POST", farm+"/zones", zoneBody("Wet", squareCW, nil)).want(http.StatusCreated).decode(&wet)
	agro.do("POST", farm+"/zones", zoneBody("Empty", squareCW, nil)).want(http.StatusCreated).decode(&empty)

	now := e.clock.Now()
	node := func(uid string, zoneID int64, interval int, vwc ...float64) nodeJSON {
		t.Helper()
		var n nodeCreatedJSON
		agro.do("POST", farm+"/nodes", map[string]any{"uid": uid, "name": uid, "zone_id": zoneID, "expected_interval_s": interval,
			"location": map[string]any{"type": "Point", "coordinates": []float64{46.6302, 39.0902}}}).want(http.StatusCreated).decode(&n)
		var rs []fieldnodes.Reading
		for i, v := range vwc { // the last value is the newest
			rs = append(rs, fieldnodes.Reading{NodeID: n.ID, Metric: "soil_vwc", TS: now.Add(-time.Duration(len(vwc)-1-i) * time.Hour), Value: v})
		}
		rs = append(rs, fieldnodes.Reading{NodeID: n.ID, Metric: "battery_v", TS: now, Value: 3.5})
		if _, err := e.nodes.InsertReadings(ctx, rs); err != nil {
			t.Fatal(err)
		}
		return n.nodeJSON
	}
	d1 := node("dry-1", dry.zone.ID, 900, 0.40, 0.10) // older readings do not count
	node("dry-2", dry.zone.ID, 900, 0.16)             // mean of latest: 0.13 → dry
	node("ok-1", ok.ID, 900, 0.15)                    // exactly 0.15 → ok
	node("wet-1", wet.ID, 900, 0.35)                  // exactly 0.35 → wet
	var silent nodeCreatedJSON
	agro.do("POST", farm+"/nodes", map[string]any{"uid": "silent", "zone_id": empty.ID}).want(http.StatusCreated).decode(&silent)
	if _, err := e.db.Exec(ctx, `UPDATE nodes SET created_at = $1 WHERE id = $2`, now.Add(-2*time.Hour), silent.ID); err != nil {
		t.Fatal(err)
	}

	// The dry zone's valve is open; its controller stands where the valve has no location.
	e.login("farmer@aghali.test").do("POST", fmt.Sprintf("/api/v1/valves/%d/open", dry.valve.ID), map[string]any{"minutes": 10}).want(http.StatusAccepted)

	m := e.farmMapOf(e.login("viewer@aghali.test"), e.farmA.ID, "")
	want := map[string]string{"field": "", "zone": "", "node": "", "valve": "", "water_source": ""}
	for _, f := range m {
		delete(want, f.Properties["layer"].(string))
	}
	if len(want) != 0 || len(m) != 1+4+5+1+1 {
		t.Fatalf("%d features, layers missing: %v", len(m), want)
	}

	zone := func(id int64) map[string]any { return m[fmt.Sprintf("zone/%d", id)].Properties }
	for _, tc := range []struct {
		id       int64
		moisture string
		vwc      any
		irr      bool
	}{{dry.zone.ID, "dry", 0.13, true}, {ok.ID, "ok", 0.15, false}, {wet.ID, "wet", 0.35, false}, {empty.ID, "unknown", nil, false}} {
		p := zone(tc.id)
		if p["moisture"] != tc.moisture || p["irrigating"] != tc.irr {
			t.Errorf("zone %d: %v, want moisture %s irrigating %v", tc.id, p, tc.moisture, tc.irr)
		}
		if v, isNum := p["soil_vwc"].(float64); tc.vwc == nil && p["soil_vwc"] != nil || tc.vwc != nil && (!isNum || v-tc.vwc.(float64) > 1e-9 || tc.vwc.(float64)-v > 1e-9) {
			t.Errorf("zone %d soil_vwc %v, want %v", tc.id, p["soil_vwc"], tc.vwc)
		}
	}
	if p := zone(dry.zone.ID); p["name"] != "Dry" || p["field_id"] != float64(field.ID) || p["crop"] != "tomato" || p["id"] != float64(dry.zone.ID) {
		t.Errorf("dry zone properties %v", p)
	}
	if g := m[fmt.Sprintf("zone/%d", ok.ID)].Geometry; !json.Valid(g) || string(g) == "null" {
		t.Errorf("zone geometry %s", g)
	}

	n := m[fmt.Sprintf("node/%d", d1.ID)]
	latest, _ := n.Properties["latest"].(map[string]any)
	vwc, _ := latest["soil_vwc"].(map[string]any)
	if n.Properties["uid"] != "dry-1" || n.Properties["zone_id"] != float64(dry.zone.ID) || n.Properties["battery_v"] != 3.5 ||
		n.Properties["stale"] != false || vwc["value"] != 0.10 || vwc["ts"] != now.Format(time.RFC3339) ||
		n.Properties["last_seen_at"] != now.Format(time.RFC3339) || string(n.Geometry) == "null" {
		t.Errorf("node feature %+v", n)
	}
	if s := m[fmt.Sprintf("node/%d", silent.ID)]; s.Properties["stale"] != true || s.Properties["last_seen_at"] != nil || string(s.Geometry) != "null" {
		t.Errorf("a node silent since its registration 2 h ago: %+v", s)
	}

	v := m[fmt.Sprintf("valve/%d", dry.valve.ID)]
	if v.Properties["controller_id"] != float64(dry.controller.ID) || v.Properties["channel"] != float64(1) ||
		v.Properties["zone_id"] != float64(dry.zone.ID) || v.Properties["state"] != "unknown" || v.Properties["run_id"] == nil ||
		v.Properties["ends_at"] != nil { // not confirmed open by the controller yet
		t.Errorf("valve feature %+v", v)
	}
	var pt struct{ Coordinates []float64 }
	if err := json.Unmarshal(v.Geometry, &pt); err != nil || len(pt.Coordinates) != 2 || pt.Coordinates[0] != 46.6305 {
		t.Errorf("valve geometry %s: want its controller's location", v.Geometry)
	}
	w := m[fmt.Sprintf("water_source/%d", ws.ID)]
	if w.Properties["kind"] != "well" || w.Properties["capacity_m3h"] != 12.5 || w.Properties["name"] != "Well 1" {
		t.Errorf("water source feature %+v", w)
	}
	if f := m[fmt.Sprintf("field/%d", field.ID)]; f.Properties["area_ha"] != field.AreaHa {
		t.Errorf("field feature %+v", f)
	}

	// Layers can be asked for; the order is bottom first whatever the query's.
	only := e.farmMapOf(agro, e.farmA.ID, "?layers=valve,zone")
	if len(only) != 4+1 {
		t.Errorf("layers=valve,zone: %d features", len(only))
	}
	var fc struct{ Features []clientFeature }
	agro.do("GET", farm+"/map", nil).want(http.StatusOK).decode(&fc)
	order := map[string]int{"field": 0, "zone": 1, "node": 2, "valve": 3, "water_source": 4}
	for i := 1; i < len(fc.Features); i++ {
		if order[fc.Features[i-1].Properties["layer"].(string)] > order[fc.Features[i].Properties["layer"].(string)] {
			t.Fatalf("feature %d (%s) after %s", i, fc.Features[i].ID, fc.Features[i-1].ID)
		}
	}
	e.outsider().do("GET", farm+"/map", nil).problem(http.StatusNotFound)
}

func TestAlertsListAndAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	raise := func(farmID int64, kind, subject string) int64 {
		a, err := e.irr.RaiseAlert(ctx, irrigationAlert(farmID, kind, subject))
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	a1 := raise(e.farmA.ID, "command_expired", "valve:1")
	e.clock.Advance(time.Minute)
	a2 := raise(e.farmA.ID, "valve_unexpectedly_open", "valve:2")
	e.clock.Advance(time.Minute)
	b1 := raise(e.farmB.ID, "command_expired", "valve:3")
	if err := e.irr.ResolveAlert(ctx, e.farmA.ID, "command_expired", "valve:1"); err != nil {
		t.Fatal(err)
	}

	var alerts []alertJSON
	farmer := e.login("farmer@aghali.test")
	farmer.do("GET", "/api/v1/alerts", nil).want(http.StatusOK).decode(&alerts)
	if len(alerts) != 2 || alerts[0].ID != a2 || alerts[1].ID != a1 || alerts[1].ResolvedAt == nil {
		t.Errorf("farmer's alerts %+v: want farm A's, newest first", alerts)
	}
	farmer.do("GET", "/api/v1/alerts?open=true", nil).want(http.StatusOK).decode(&alerts)
	if len(alerts) != 1 || alerts[0].ID != a2 || alerts[0].Kind != "valve_unexpectedly_open" || alerts[0].Severity != "warning" {
		t.Errorf("open alerts %+v", alerts)
	}
	farmer.do("GET", fmt.Sprintf("/api/v1/alerts?farm=%d", e.farmB.ID), nil).problem(http.StatusNotFound)
	farmer.do("GET", "/api/v1/alerts?open=maybe", nil).problem(http.StatusUnprocessableEntity)
	var admins []alertJSON
	e.login("admin@aghali.test").do("GET", fmt.Sprintf("/api/v1/alerts?farm=%d", e.farmB.ID), nil).want(http.StatusOK).decode(&admins)
	if len(admins) != 1 || admins[0].ID != b1 {
		t.Errorf("admin, farm B: %+v", admins)
	}

	e.login("viewer@aghali.test").do("POST", fmt.Sprintf("/api/v1/alerts/%d/ack", a2), nil).problem(http.StatusForbidden)
	farmer.do("POST", fmt.Sprintf("/api/v1/alerts/%d/ack", b1), nil).problem(http.StatusNotFound)
	var acked alertJSON
	farmer.do("POST", fmt.Sprintf("/api/v1/alerts/%d/ack", a2), nil).want(http.StatusOK).decode(&acked)
	if acked.AcknowledgedBy == nil || *acked.AcknowledgedBy != e.farmer.ID || acked.AcknowledgedAt == nil ||
		!acked.AcknowledgedAt.Equal(e.clock.Now()) || acked.ResolvedAt != nil {
		t.Errorf("acknowledged %+v", acked)
	}
	e.login("agro@aghali.test").do("POST", fmt.Sprintf("/api/v1/alerts/%d/ack", a2), nil).want(http.StatusOK).decode(&acked)
	if *acked.AcknowledgedBy != e.farmer.ID {
		t.Errorf("a second acknowledgement replaced the first: %+v", acked)
	}
	rows := e.auditRows("ack")
	if len(rows) != 2 || rows[0].Entity != "alert" || rows[0].EntityID != fmt.Sprint(a2) || rows[0].Actor != "farmer@aghali.test" {
		t.Errorf("ack audit %+v", rows)
	}
	e.noForgottenAudit()
}

// TestFarmMapGzip: the map compressed layer by layer reads back as the same bytes as the map
// sent as it is, through an ordinary gzip reader (which checks the CRC and size).
func TestFarmMapGzip(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	viewer := e.login("viewer@aghali.test")
	path := fmt.Sprintf("/api/v1/farms/%d/map", e.farmA.ID)

	// An empty map is too small to compress.
	r := viewer.doWith("GET", path, nil, http.Header{"Accept-Encoding": {"gzip"}}).want(http.StatusOK)
	if r.header.Get("Content-Encoding") != "" || string(r.body) != `{"type":"FeatureCollection","features":[]}` {
		t.Errorf("empty map: %q %s", r.header.Get("Content-Encoding"), r.body)
	}

	e.newRig(e.farmA.ID, "North", nil)
	agro := e.login("agro@aghali.test")
	for i := range 30 {
		agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/fields", e.farmA.ID), fieldBody(fmt.Sprintf("Plot %d", i), squareCW)).want(http.StatusCreated)
		agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/nodes", e.farmA.ID), map[string]any{"uid": fmt.Sprintf("n-%d", i)}).want(http.StatusCreated)
	}
	for _, layers := range []string{"", "?layers=node", "?layers=zone,water_source", "?layers=water_source"} {
		plain := viewer.doWith("GET", path+layers, nil, http.Header{"Accept-Encoding": {"identity"}}).want(http.StatusOK)
		if plain.header.Get("Content-Encoding") != "" || !json.Valid(plain.body) {
			t.Fatalf("%s identity: %q, valid %v", layers, plain.header.Get("Content-Encoding"), json.Valid(plain.body))
		}
		z := viewer.doWith("GET", path+layers, nil, http.Header{"Accept-Encoding": {"gzip, deflate, br"}}).want(http.StatusOK)
		if len(plain.body) < mapGzipMinLength {
			if z.header.Get("Content-Encoding") != "" {
				t.Errorf("%s: %d bytes compressed", layers, len(plain.body))
			}
			continue
		}
		if z.header.Get("Content-Encoding") != "gzip" || z.header.Get("Vary") != "Accept-Encoding" || len(z.body) >= len(plain.body)/2 {
			t.Fatalf("%s: Content-Encoding %q, Vary %q, %d bytes of %d", layers, z.header.Get("Content-Encoding"),
				z.header.Get("Vary"), len(z.body), len(plain.body))
		}
		br := bytes.NewReader(z.body)
		zr, err := gzip.NewReader(br)
		if err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false)
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", layers, err)
		}
		if !bytes.Equal(got, plain.body) {
			t.Errorf("%s: decompressed map differs from the plain one:\n%s\n%s", layers, got, plain.body)
		}
		if br.Len() != 0 {
			t.Errorf("%s: %d bytes after the gzip member", layers, br.Len())
		}
	}
}

func TestGzipPartsIsOneGzipMember(t *testing.T) {
	t.Parallel()
	s := &Server{}
	big := bytes.Repeat([]byte(`{"type":"Feature","id":"zone/1"},`), 5000)
	parts := [][]byte{[]byte("start["), big, []byte(","), []byte("middle"), big[:7], []byte("]end")}
	deflated := make([][]byte, len(parts))
	for _, i := range []int{1, 3, 4} {
		z, err := s.deflateLayer(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		deflated[i] = *z
	}
	var out bytes.Buffer
	if err := gzipParts(&out, parts, deflated); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join(parts, nil); !bytes.Equal(got, want) {
		t.Errorf("got %d bytes, want %d", len(got), len(want))
	}
	if out.Len() != 0 {
		t.Errorf("%d bytes left after the member", out.Len())
	}
}
