package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// zoneBody is a zone on the 100 m square of squareCW unless geometry says otherwise.
func zoneBody(name, geometry string, extra map[string]any) map[string]any {
	b := map[string]any{"name": name, "geometry": json.RawMessage(geometry), "crop": "tomato", "soil": "loam"}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

func TestZoneLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	agro := e.login("agro@aghali.test")
	var field fieldJSON
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/fields", e.farmA.ID), fieldBody("North plot", squareCW)).want(http.StatusCreated).decode(&field)
	var ws waterSourceJSON
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/water-sources", e.farmA.ID), map[string]any{
		"name": "Hakari pump", "kind": "pump", "capacity_m3h": 40, "energy": "solar",
		"energy_windows": []map[string]string{{"from": "08:00", "to": "17:00"}},
		"location":       map[string]any{"type": "Point", "coordinates": []float64{46.6301, 39.0901}},
	}).want(http.StatusCreated).decode(&ws)
	if ws.Kind != "pump" || ws.Energy != "solar" || len(ws.EnergyWindows) != 1 || ws.EnergyWindows[0].From != "08:00" ||
		ws.CapacityM3H == nil || *ws.CapacityM3H != 40 || !strings.Contains(string(ws.Location), "46.6301") {
		t.Errorf("water source %+v", ws)
	}

	zones := fmt.Sprintf("/api/v1/farms/%d/zones", e.farmA.ID)
	var z zoneJSON
	agro.do("POST", zones, zoneBody("Tomatoes 1", squareCW, map[string]any{
		"field_id": field.ID, "water_source_id": ws.ID, "max_runtime_s": 1800, "efficiency": 0.9,
	})).want(http.StatusCreated).decode(&z)
	if z.FarmID != e.farmA.ID || z.Name != "Tomatoes 1" || z.Method != "drip" || z.MaxRuntimeS != 1800 ||
		z.FieldID == nil || *z.FieldID != field.ID || z.WaterSourceID == nil || *z.WaterSourceID != ws.ID ||
		z.Efficiency == nil || *z.Efficiency != 0.9 || z.RootDepthM != nil {
		t.Errorf("created zone %+v", z)
	}
	var g struct {
		Type        string
		Coordinates [][][2]float64
	}
	if err := json.Unmarshal(z.Geometry, &g); err != nil || g.Type != "Polygon" || signedArea(g.Coordinates[0]) <= 0 {
		t.Errorf("geometry %s: want a counter-clockwise Polygon (%v)", z.Geometry, err)
	}

	// PATCH changes what it names; null clears a nullable member, absence keeps it.
	one := fmt.Sprintf("/api/v1/zones/%d", z.ID)
	var got zoneJSON
	agro.do("PATCH", one, map[string]any{"crop": "pepper", "field_id": nil, "root_depth_m": 0.4}).want(http.StatusOK).decode(&got)
	if got.Crop != "pepper" || got.FieldID != nil || got.WaterSourceID == nil || got.RootDepthM == nil || *got.RootDepthM != 0.4 ||
		got.Name != "Tomatoes 1" || got.MaxRuntimeS != 1800 {
		t.Errorf("after PATCH %+v", got)
	}
	agro.do("PATCH", one, map[string]any{"max_runtime_s": 0}).problem(http.StatusUnprocessableEntity)
	agro.do("PATCH", one, map[string]any{"field_id": "seven"}).problem(http.StatusBadRequest)
	p := agro.do("PATCH", one, map[string]any{"efficiency": 1.5}).problem(http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "efficiency" {
		t.Errorf("efficiency 1.5: %+v", p)
	}

	// Everyone who sees the farm reads it; only agronomists change it; other farms' people do
	// not see it at all.
	var list []zoneJSON
	e.login("viewer@aghali.test").do("GET", zones, nil).want(http.StatusOK).decode(&list)
	if len(list) != 1 || list[0].ID != z.ID || list[0].Crop != "pepper" {
		t.Errorf("list %+v", list)
	}
	farmer := e.login("farmer@aghali.test")
	farmer.do("GET", one, nil).want(http.StatusOK)
	if p := farmer.do("PATCH", one, map[string]any{"crop": "x"}).problem(http.StatusForbidden); !strings.Contains(p.Detail, "agronomist") {
		t.Errorf("403 detail %q does not name the role", p.Detail)
	}
	outsider := e.outsider()
	outsider.do("GET", one, nil).problem(http.StatusNotFound)
	outsider.do("GET", zones, nil).problem(http.StatusNotFound)

	// A zone's field must be on its farm.
	var other fieldJSON
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/fields", e.farmB.ID), fieldBody("Terrace", squareCW)).want(http.StatusCreated).decode(&other)
	p = agro.do("POST", zones, zoneBody("Wrong field", squareCW, map[string]any{"field_id": other.ID})).problem(http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "field_id" {
		t.Errorf("field of another farm: %+v", p)
	}

	agro.do("DELETE", one, nil).want(http.StatusNoContent)
	agro.do("GET", one, nil).problem(http.StatusNotFound)
	agro.do("GET", "/api/v1/zones/abc", nil).problem(http.StatusNotFound)
	for _, action := range []string{"create", "update", "delete"} {
		found := false
		for _, r := range e.auditRows(action) {
			if r.Entity == "zone" && r.EntityID == fmt.Sprint(z.ID) && r.Actor == "agro@aghali.test" && r.OrgID != nil && *r.OrgID == e.org {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s audit entry for the zone", action)
		}
	}

	// The water source goes; nothing else does.
	agro.do("DELETE", fmt.Sprintf("/api/v1/water-sources/%d", ws.ID), nil).want(http.StatusNoContent)
	agro.do("GET", fmt.Sprintf("/api/v1/water-sources/%d", ws.ID), nil).problem(http.StatusNotFound)
	e.noForgottenAudit()
}

func TestBowTieZoneIs422(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	agro := e.login("agro@aghali.test")
	zones := fmt.Sprintf("/api/v1/farms/%d/zones", e.farmA.ID)

	p := agro.do("POST", zones, zoneBody("Bow tie", bowTie, nil)).problem(http.StatusUnprocessableEntity)
	if p.Type != problemBase+"validation" || len(p.Errors) != 1 || p.Errors[0].Field != "geometry" ||
		!strings.Contains(p.Errors[0].Problem, "Self-intersection") || !strings.Contains(p.Detail, "Self-intersection[46.635 39.095]") {
		t.Errorf("bow tie: %+v", p)
	}
	cases := map[string]struct {
		body  map[string]any
		field string
	}{
		"multipolygon": {zoneBody("X", `{"type":"MultiPolygon","coordinates":[[[[46.63,39.09],[46.631,39.09],[46.631,39.091],[46.63,39.09]]]]}`, nil), "geometry"},
		"no geometry":  {map[string]any{"name": "X"}, "geometry"},
		"no name":      {zoneBody("", squareCW, nil), "name"},
		"bad method":   {zoneBody("X", squareCW, map[string]any{"method": "flood"}), "method"},
	}
	for name, tc := range cases {
		p := agro.do("POST", zones, tc.body).problem(http.StatusUnprocessableEntity)
		if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: %+v, want a problem with %s", name, p, tc.field)
		}
	}
	var list []zoneJSON
	agro.do("GET", zones, nil).want(http.StatusOK).decode(&list)
	if len(list) != 0 {
		t.Errorf("refused zones were stored: %+v", list)
	}
}

func TestRulesAndSchedules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	agro := e.login("agro@aghali.test")
	var z zoneJSON
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/zones", e.farmA.ID), zoneBody("Orchard", squareCW, nil)).want(http.StatusCreated).decode(&z)

	rules := fmt.Sprintf("/api/v1/zones/%d/rules", z.ID)
	var r ruleJSON
	agro.do("POST", rules, map[string]any{"name": "Dry", "metric": "soil_vwc", "op": "<", "threshold": 0.18, "duration_s": 1200}).
		want(http.StatusCreated).decode(&r)
	if !r.Enabled || r.Condition != `mean("soil_vwc", "1h") < 0.18` || r.ZoneID == nil || *r.ZoneID != z.ID || r.LastFiredAt != nil {
		t.Errorf("rule %+v: want enabled, mean over 1 h", r)
	}
	agro.do("PATCH", fmt.Sprintf("/api/v1/rules/%d", r.ID), map[string]any{"enabled": false, "condition": `mean("soil_vwc", "1h") < 0.2`}).
		want(http.StatusOK).decode(&r)
	if r.Enabled || r.Condition != `mean("soil_vwc", "1h") < 0.2` || r.DurationS == nil || *r.DurationS != 1200 {
		t.Errorf("rule after PATCH %+v", r)
	}
	p := agro.do("POST", rules, map[string]any{"name": "No threshold", "metric": "soil_vwc", "op": "<", "duration_s": 60}).problem(http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "threshold" {
		t.Errorf("rule without threshold: %+v", p)
	}
	p = agro.do("POST", rules, map[string]any{"name": "Bad op", "metric": "soil_vwc", "op": "=", "threshold": 1, "duration_s": 60}).problem(http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "op" {
		t.Errorf("rule with op =: %+v", p)
	}

	schedules := fmt.Sprintf("/api/v1/zones/%d/schedules", z.ID)
	var sc scheduleJSON
	agro.do("POST", schedules, map[string]any{"name": "Dawn", "cron": "30 5 * * *", "duration_s": 900}).want(http.StatusCreated).decode(&sc)
	// The clock is 2026-07-06 05:00 UTC, 09:00 in Baku: the next 05:30 Baku time is tomorrow's, 01:30 UTC.
	if !sc.Enabled || sc.Timezone != "Asia/Baku" || sc.NextAt == nil || !sc.NextAt.Equal(time.Date(2026, 7, 7, 1, 30, 0, 0, time.UTC)) {
		t.Errorf("schedule %+v: want enabled by default, next at 2026-07-07T01:30Z", sc)
	}
	agro.do("PATCH", fmt.Sprintf("/api/v1/schedules/%d", sc.ID), map[string]any{"enabled": false}).want(http.StatusOK).decode(&sc)
	if sc.Enabled || sc.NextAt != nil {
		t.Errorf("disabled schedule %+v: want next_at null", sc)
	}
	p = agro.do("POST", schedules, map[string]any{"name": "Bad", "cron": "every day", "duration_s": 900}).problem(http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "cron" {
		t.Errorf("bad cron: %+v", p)
	}
	var enabledFalse scheduleJSON
	agro.do("POST", schedules, map[string]any{"name": "Off", "cron": "0 20 * * *", "duration_s": 600, "enabled": false}).
		want(http.StatusCreated).decode(&enabledFalse)
	if enabledFalse.Enabled {
		t.Error("enabled:false on create was ignored")
	}

	var listed []scheduleJSON
	e.login("viewer@aghali.test").do("GET", schedules, nil).want(http.StatusOK).decode(&listed)
	if len(listed) != 2 {
		t.Errorf("schedules %+v", listed)
	}
	e.login("farmer@aghali.test").do("POST", rules, map[string]any{"name": "X", "metric": "soil_vwc", "op": "<", "threshold": 0.1, "duration_s": 60}).
		problem(http.StatusForbidden)
	e.outsider().do("GET", fmt.Sprintf("/api/v1/rules/%d", r.ID), nil).problem(http.StatusNotFound)

	agro.do("DELETE", fmt.Sprintf("/api/v1/rules/%d", r.ID), nil).want(http.StatusNoContent)
	agro.do("DELETE", fmt.Sprintf("/api/v1/schedules/%d", sc.ID), nil).want(http.StatusNoContent)
	agro.do("GET", fmt.Sprintf("/api/v1/schedules/%d", sc.ID), nil).problem(http.StatusNotFound)
	var left []ruleJSON
	agro.do("GET", rules, nil).want(http.StatusOK).decode(&left)
	if len(left) != 0 {
		t.Errorf("rules after delete %+v", left)
	}
	e.noForgottenAudit()
}
