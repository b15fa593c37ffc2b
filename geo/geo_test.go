package geo_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/twpayne/go-geom"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// A 100 m × 100 m square near Aghali, clockwise (the wrong way round for RFC 7946).
const squareCW = `{"type":"Polygon","coordinates":[[[46.63,39.09],[46.63,39.0909],[46.6312,39.0909],[46.6312,39.09],[46.63,39.09]]]}`

func TestCodecRoundTripThroughPostGIS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	poly, err := geo.ParsePolygon(json.RawMessage(squareCW))
	if err != nil {
		t.Fatal(err)
	}
	var back *geom.Polygon
	var srid int
	var ccw bool
	if err := db.QueryRow(ctx, `SELECT $1::geometry, ST_SRID($1::geometry), ST_IsPolygonCCW($1::geometry)`, poly).Scan(&back, &srid, &ccw); err != nil {
		t.Fatal(err)
	}
	if srid != geo.SRID {
		t.Errorf("SRID = %d, want %d", srid, geo.SRID)
	}
	if !ccw {
		t.Error("exterior ring was not turned counter-clockwise")
	}
	if got, want := back.FlatCoords(), poly.FlatCoords(); len(got) != len(want) || got[2] != want[2] {
		t.Errorf("coords after round trip = %v, want %v", got, want)
	}
	var nilPoint *geom.Point
	if err := db.QueryRow(ctx, `SELECT NULL::geometry`).Scan(&nilPoint); err != nil || nilPoint != nil {
		t.Errorf("NULL geometry scanned as %v, %v", nilPoint, err)
	}
	var any geom.T
	if err := db.QueryRow(ctx, `SELECT ST_GeomFromText('POINT(46.63 39.09)', 4326)`).Scan(&any); err != nil {
		t.Fatal(err)
	}
	if p, ok := any.(*geom.Point); !ok || p.X() != 46.63 {
		t.Errorf("scanned %#v", any)
	}
}

func TestInvalidGeometryIsNamed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	cases := map[string]struct {
		json string
		want string
	}{
		"bow tie":        {`{"type":"Polygon","coordinates":[[[46.63,39.09],[46.64,39.10],[46.64,39.09],[46.63,39.10],[46.63,39.09]]]}`, "Self-intersection"},
		"latitude first": {`{"type":"Polygon","coordinates":[[[39.09,146.63],[39.1,146.63],[39.1,146.64],[39.09,146.63]]]}`, "not [longitude, latitude]"},
		"not geojson":    {`{"type":"Circle","radius":3}`, "geometry"},
		"line":           {`{"type":"LineString","coordinates":[[46.63,39.09],[46.64,39.1]]}`, "want a Polygon"},
		"unclosed ring":  {`{"type":"Polygon","coordinates":[[[46.63,39.09],[46.64,39.10],[46.64,39.09]]]}`, "geometry"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p, err := geo.ParsePolygon(json.RawMessage(tc.json))
			if err == nil {
				err = geo.Validate(ctx, db, p)
			}
			var ve *geo.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if !strings.Contains(ve.Error(), tc.want) {
				t.Fatalf("err = %q, want it to mention %q", ve.Error(), tc.want)
			}
		})
	}
}

func TestFarmsAndFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	var org int64
	if err := db.QueryRow(ctx, `INSERT INTO organisations (name) VALUES ('Aghali') RETURNING id`).Scan(&org); err != nil {
		t.Fatal(err)
	}
	s := geo.NewStore(db)
	if _, err := s.CreateFarm(ctx, geo.Farm{OrgID: org, Name: "x", Timezone: "Mars/Olympus"}); err == nil {
		t.Fatal("accepted an unknown time zone")
	}
	farm, err := s.CreateFarm(ctx, geo.Farm{OrgID: org, Name: "Hakari bank", Location: geo.NewPoint(46.63, 39.09)})
	if err != nil {
		t.Fatal(err)
	}
	if farm.Timezone != "Asia/Baku" {
		t.Errorf("default time zone = %q", farm.Timezone)
	}
	if _, err := s.CreateFarm(ctx, geo.Farm{OrgID: org, Name: "Hakari bank"}); !errors.Is(err, geo.ErrConflict) {
		t.Errorf("duplicate farm name: err = %v, want ErrConflict", err)
	}
	mp, err := geo.ParseMultiPolygon(json.RawMessage(squareCW))
	if err != nil {
		t.Fatal(err)
	}
	field, err := s.CreateField(ctx, geo.Field{FarmID: farm.ID, Name: "North plot", Crop: "cotton", Geom: mp})
	if err != nil {
		t.Fatal(err)
	}
	// 0.0009° lat × 0.0012° lon at 39° N is about 100 m × 104 m ≈ 1.04 ha.
	if field.AreaHa < 0.95 || field.AreaHa > 1.15 {
		t.Errorf("area = %.3f ha, want about 1.04", field.AreaHa)
	}
	fields, err := s.Fields(ctx, farm.ID)
	if err != nil || len(fields) != 1 || fields[0].Name != "North plot" {
		t.Fatalf("Fields = %v, %v", fields, err)
	}
	farms, err := s.Farms(ctx, org, []int64{})
	if err != nil || len(farms) != 0 {
		t.Fatalf("Farms limited to no ids = %v, %v", farms, err)
	}
	farms, err = s.Farms(ctx, org, nil)
	if err != nil || len(farms) != 1 {
		t.Fatalf("Farms = %v, %v", farms, err)
	}
	if err := s.DeleteFarm(ctx, farm.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Field(ctx, field.ID); !errors.Is(err, geo.ErrNotFound) {
		t.Errorf("field after farm deleted: %v", err)
	}
}

func TestFeatureCollectionJSON(t *testing.T) {
	fc := geo.FeatureCollection{Features: []geo.Feature{{ID: "n1", Geometry: geo.NewPoint(46.63, 39.09), Properties: map[string]any{"kind": "node"}}}}
	b, err := json.Marshal(fc)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"FeatureCollection","features":[{"type":"Feature","id":"n1","geometry":{"type":"Point","coordinates":[46.63,39.09]},"properties":{"kind":"node"}}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
