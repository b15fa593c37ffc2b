package api

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/twpayne/go-geom"

	"github.com/aghali/aghali/geo"
)

func TestMapGeometryMatchesGeoMarshal(t *testing.T) {
	t.Parallel()
	square := func(x, y, w float64, ccw bool) []geom.Coord {
		r := []geom.Coord{{x, y}, {x + w, y}, {x + w, y + w}, {x, y + w}, {x, y}}
		if !ccw {
			for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
				r[i], r[j] = r[j], r[i]
			}
		}
		return r
	}
	withHole := geom.NewPolygon(geom.XY).MustSetCoords([][]geom.Coord{square(46.63, 39.09, 0.01, true), square(46.632, 39.092, 0.002, false)}).SetSRID(geo.SRID)
	multi := geom.NewMultiPolygon(geom.XY).MustSetCoords([][][]geom.Coord{
		{square(46.63, 39.09, 0.01, true)},
		{square(-0.00000005, -12.3456789012, 1, true), square(0.1, -12.2, 0.1, false)},
	}).SetSRID(geo.SRID)
	cases := map[string]geom.T{
		"nil":                nil,
		"nil point":          (*geom.Point)(nil),
		"nil polygon":        (*geom.Polygon)(nil),
		"nil multipolygon":   (*geom.MultiPolygon)(nil),
		"point":              geo.NewPoint(46.6312345678, 39.0900000001),
		"integral point":     geo.NewPoint(46, -39),
		"half-way point":     geo.NewPoint(0.00000005, -0.00000015),
		"negative zero":      geo.NewPoint(math.Copysign(0, -1), -0.00000001),
		"polygon with hole":  withHole,
		"multipolygon":       multi,
		"benchmark polygon":  benchRing(617, 0.00005),
		"empty point":        geom.NewPointEmpty(geom.XY),
		"empty multipolygon": geom.NewMultiPolygon(geom.XY),
	}
	for i := range 200 {
		cases["benchmark ring "+string(rune('a'+i%26))+string(rune('a'+i/26))] = benchRing(i*5, float64(i)*1e-6)
	}
	for name, g := range cases {
		want, err := geo.Marshal(g)
		if err != nil {
			t.Fatalf("%s: geo.Marshal: %v", name, err)
		}
		got, err := appendGeometry([]byte("x"), g)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != "x"+string(want) {
			t.Errorf("%s:\n got %s\nwant x%s", name, got, want)
		}
	}
}

func TestMapPropertiesMatchEncodingJSON(t *testing.T) {
	t.Parallel()
	id, vwc, ts := int64(42), 0.1234567891234, time.Date(2026, 7, 6, 5, 0, 0, 123456000, time.UTC)
	strs := []string{"", "Plot 7", `<Tom & "Jerry">`, "Ağalı kəndi", "line\nbreak\ttab\\", "\u2028\u2029", "\xff invalid"}
	floats := []float64{0, 1, -0.5, 0.1, 1e-7, 1.5e-9, 1e21, 123456.789, 3.6099999999999999, 1e20, math.SmallestNonzeroFloat64}
	// One fully set value of each layer: a member added to a struct but not to its appendJSON
	// shows as a difference.
	full := []mapProps{
		fieldProps{Layer: "field", ID: id, Name: "n", Crop: "c", AreaHa: 1.5},
		zoneProps{Layer: "zone", ID: id, Name: "n", FieldID: &id, Crop: "c", SoilVWC: &vwc, Moisture: "ok", Irrigating: true},
		nodeProps{Layer: "node", ID: id, UID: "u", Name: "n", ZoneID: &id, LastSeenAt: &ts, BatteryV: &vwc, Stale: true,
			Latest: map[string]latestJSON{"soil_vwc": {Value: vwc, TS: ts}}},
		valveProps{Layer: "valve", ID: id, Name: "n", ControllerID: 3, Channel: 2, ZoneID: &id, State: "open", RunID: &id, EndsAt: &ts},
		waterSourceProps{Layer: "water_source", ID: id, Name: "n", Kind: "well", CapacityM3H: &vwc},
	}
	for _, v := range full {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			if rv.Field(i).IsZero() {
				t.Errorf("%T.%s is zero in the fully set test value: set it", v, rv.Type().Field(i).Name)
			}
		}
	}
	values := full
	for i, s := range strs {
		f := floats[i%len(floats)]
		values = append(values,
			fieldProps{Layer: "field", ID: id, Name: s, Crop: s, AreaHa: f},
			zoneProps{Layer: "zone", ID: id, Name: s, FieldID: &id, Crop: s, SoilVWC: &f, Moisture: "dry", Irrigating: true},
			zoneProps{Layer: "zone", Name: s},
			nodeProps{Layer: "node", ID: id, UID: s, Name: s, ZoneID: &id, LastSeenAt: &ts, BatteryV: &f, Stale: true,
				Latest: map[string]latestJSON{"soil_vwc": {Value: vwc, TS: ts}, "battery_v": {Value: f, TS: ts.Add(time.Hour)}, s: {Value: -f}}},
			nodeProps{Layer: "node", Name: s, Latest: map[string]latestJSON{}},
			nodeProps{Layer: "node"},
			valveProps{Layer: "valve", ID: id, Name: s, ControllerID: 3, Channel: 255, ZoneID: &id, State: "open", RunID: &id, EndsAt: &ts},
			valveProps{Layer: "valve", Name: s, State: s},
			waterSourceProps{Layer: "water_source", ID: id, Name: s, Kind: "well", CapacityM3H: &f},
			waterSourceProps{Layer: "water_source", Name: s},
		)
	}
	for _, f := range floats {
		values = append(values, fieldProps{AreaHa: f}, fieldProps{AreaHa: -f})
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.appendJSON(nil); string(got) != string(want) {
			t.Errorf("%T:\n got %s\nwant %s", v, got, want)
		}
	}
}

// TestMapCollectionIsGeoJSON: the hand-written collection says what geo.FeatureCollection says.
func TestMapCollectionIsGeoJSON(t *testing.T) {
	t.Parallel()
	id := int64(7)
	features := []mapFeature{
		{layer: "field", num: 1, geom: geom.NewMultiPolygon(geom.XY).MustSetCoords([][][]geom.Coord{{{{46.63, 39.09}, {46.64, 39.09}, {46.64, 39.1}, {46.63, 39.09}}}}).SetSRID(geo.SRID),
			props: fieldProps{Layer: "field", ID: 1, Name: "North", Crop: "tomato", AreaHa: 41.2345}},
		{layer: "node", num: 7, geom: (*geom.Point)(nil), props: nodeProps{Layer: "node", ID: 7, UID: "soil-7", ZoneID: &id, Latest: map[string]latestJSON{}}},
		{layer: "valve", num: 3, geom: geo.NewPoint(46.6305, 39.0905), props: valveProps{Layer: "valve", ID: 3, State: "unknown"}},
	}
	got, err := appendFeatureCollection(nil, features)
	if err != nil {
		t.Fatal(err)
	}
	fc := geo.FeatureCollection{}
	for _, f := range features {
		var props map[string]any
		if err := json.Unmarshal(f.props.appendJSON(nil), &props); err != nil {
			t.Fatal(err)
		}
		fc.Features = append(fc.Features, geo.Feature{ID: fmt.Sprintf("%s/%d", f.layer, f.num), Geometry: f.geom, Properties: props})
	}
	want, err := json.Marshal(fc)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if empty, _ := appendFeatureCollection(nil, nil); string(empty) != `{"type":"FeatureCollection","features":[]}` {
		t.Errorf("empty collection %s", empty)
	}
}
