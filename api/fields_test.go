package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
)

// rectangleHa is the area of a small lon/lat rectangle on the WGS84 ellipsoid, from the local
// radii of curvature at its centre (exact to well under 0.01 % at this size).
func rectangleHa(lon1, lat1, lon2, lat2 float64) float64 {
	const a, f = 6378137.0, 1 / 298.257223563
	e2 := f * (2 - f)
	phi := (lat1 + lat2) / 2 * math.Pi / 180
	s := 1 - e2*math.Sin(phi)*math.Sin(phi)
	m := a * (1 - e2) / math.Pow(s, 1.5) // meridional radius
	n := a / math.Sqrt(s)                // prime-vertical radius
	dPhi := (lat2 - lat1) * math.Pi / 180
	dLam := (lon2 - lon1) * math.Pi / 180
	return m * dPhi * n * math.Cos(phi) * dLam / 1e4
}

func TestAgronomistCreatesField(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	agro := e.login("agro@aghali.test")
	fields := fmt.Sprintf("/api/v1/farms/%d/fields", e.farmA.ID)

	var f fieldJSON
	agro.do("POST", fields, fieldBody("North plot", squareCW)).want(http.StatusCreated).decode(&f)
	want := rectangleHa(46.63, 39.09, 46.6312, 39.0909)
	if math.Abs(f.AreaHa-want)/want > 1e-3 {
		t.Errorf("area_ha = %v, want %v", f.AreaHa, want)
	}
	if f.Name != "North plot" || f.Crop != "tomato" || f.FarmID != e.farmA.ID {
		t.Errorf("field %+v", f)
	}
	var g struct {
		Type        string
		Coordinates [][][][2]float64
	}
	if err := json.Unmarshal(f.Geometry, &g); err != nil {
		t.Fatal(err)
	}
	if g.Type != "MultiPolygon" || len(g.Coordinates) != 1 || len(g.Coordinates[0][0]) != 5 {
		t.Fatalf("geometry %s", f.Geometry)
	}
	if ring := g.Coordinates[0][0]; signedArea(ring) <= 0 {
		t.Errorf("exterior ring %v is not counter-clockwise", ring)
	}

	// Read back, change, list, map, delete.
	var got fieldJSON
	agro.do("GET", fmt.Sprintf("/api/v1/fields/%d", f.ID), nil).want(http.StatusOK).decode(&got)
	if got.ID != f.ID || got.AreaHa != f.AreaHa {
		t.Errorf("GET = %+v, want %+v", got, f)
	}
	agro.do("PATCH", fmt.Sprintf("/api/v1/fields/%d", f.ID), map[string]string{"crop": "wheat"}).want(http.StatusOK).decode(&got)
	if got.Crop != "wheat" || got.Name != "North plot" || got.AreaHa != f.AreaHa {
		t.Errorf("PATCH crop changed more than the crop: %+v", got)
	}

	var fc struct {
		Type     string
		Features []struct {
			Type       string
			ID         string
			Geometry   json.RawMessage
			Properties map[string]any
		}
	}
	e.login("viewer@aghali.test").do("GET", fmt.Sprintf("/api/v1/farms/%d/map", e.farmA.ID), nil).want(http.StatusOK).decode(&fc)
	if fc.Type != "FeatureCollection" || len(fc.Features) != 1 {
		t.Fatalf("map %+v", fc)
	}
	ft := fc.Features[0]
	if ft.Type != "Feature" || ft.Properties["layer"] != "field" || ft.Properties["name"] != "North plot" ||
		ft.Properties["crop"] != "wheat" || ft.Properties["area_ha"] != f.AreaHa || ft.ID != fmt.Sprintf("field/%d", f.ID) {
		t.Errorf("feature %+v", ft)
	}
	agro.do("GET", fmt.Sprintf("/api/v1/farms/%d/map?layers=field,weather", e.farmA.ID), nil).problem(http.StatusUnprocessableEntity)
	var empty map[string]any
	agro.do("GET", fmt.Sprintf("/api/v1/farms/%d/map", e.farmB.ID), nil).want(http.StatusOK).decode(&empty)
	if feats, ok := empty["features"].([]any); !ok || len(feats) != 0 {
		t.Errorf("empty map %v: want features: []", empty)
	}

	agro.do("DELETE", fmt.Sprintf("/api/v1/fields/%d", f.ID), nil).want(http.StatusNoContent)
	agro.do("GET", fmt.Sprintf("/api/v1/fields/%d", f.ID), nil).problem(http.StatusNotFound)

	for _, action := range []string{"create", "update", "delete"} {
		rows := e.auditRows(action)
		if len(rows) != 1 || rows[0].Entity != "field" || rows[0].EntityID != fmt.Sprint(f.ID) ||
			rows[0].Actor != "agro@aghali.test" || rows[0].OrgID == nil || *rows[0].OrgID != e.org ||
			rows[0].UserID == nil || *rows[0].UserID != e.agro.ID {
			t.Errorf("%s audit rows %+v", action, rows)
		}
	}
	if rows := e.auditRows("update"); len(rows) == 1 && !strings.Contains(string(rows[0].Detail), `"wheat"`) {
		t.Errorf("update detail %s lacks the new crop", rows[0].Detail)
	}
}

func signedArea(ring [][2]float64) float64 {
	var a float64
	for i := 0; i+1 < len(ring); i++ {
		a += ring[i][0]*ring[i+1][1] - ring[i+1][0]*ring[i][1]
	}
	return a / 2
}

func TestInvalidFieldGeometryIs422(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	agro := e.login("agro@aghali.test")
	fields := fmt.Sprintf("/api/v1/farms/%d/fields", e.farmA.ID)

	p := agro.do("POST", fields, fieldBody("Bow tie", bowTie)).problem(http.StatusUnprocessableEntity)
	if p.Type != problemBase+"validation" || p.Title != "Invalid input" {
		t.Errorf("problem %+v", p)
	}
	if len(p.Errors) != 1 || p.Errors[0].Field != "geometry" || !strings.Contains(p.Errors[0].Problem, "Self-intersection") {
		t.Errorf("errors %+v: want geometry: ... Self-intersection", p.Errors)
	}
	if !strings.Contains(p.Detail, "Self-intersection[46.635 39.095]") {
		t.Errorf("detail %q does not name the place", p.Detail)
	}

	cases := map[string]struct {
		body  string
		want  int
		field string
	}{
		"latitude first":  {fieldBody("X", `{"type":"Polygon","coordinates":[[[39.09,146.63],[39.1,146.63],[39.1,146.64],[39.09,146.63]]]}`), 422, "geometry"},
		"a point":         {fieldBody("X", `{"type":"Point","coordinates":[46.63,39.09]}`), 422, "geometry"},
		"no geometry":     {`{"name":"X"}`, 422, "geometry"},
		"no name":         {`{"geometry":` + squareCW + `}`, 422, "name"},
		"malformed JSON":  {`{"name":"X",`, 400, ""},
		"wrong type":      {`{"name":7,"geometry":` + squareCW + `}`, 400, ""},
		"unknown member":  {`{"name":"X","colour":"red","geometry":` + squareCW + `}`, 400, ""},
		"two JSON values": {fieldBody("X", squareCW) + `{}`, 400, ""},
	}
	for name, tc := range cases {
		p := agro.do("POST", fields, tc.body).problem(tc.want)
		if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
			t.Errorf("%s: errors %+v, want one about %s", name, p.Errors, tc.field)
		}
		if tc.want == 400 && (p.Type != problemBase+"malformed" || p.Detail == "") {
			t.Errorf("%s: %+v", name, p)
		}
	}
	r := agro.do("POST", fields, fieldBody("X", squareCW)) // still fine afterwards
	r.want(http.StatusCreated)
}
