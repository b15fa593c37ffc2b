package geo

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"
)

// ParseGeometry decodes a GeoJSON geometry object. It checks the shape of the JSON and that
// every position is a finite longitude/latitude; PostGIS validity is checked by Validate.
func ParseGeometry(raw json.RawMessage) (geom.T, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, &ValidationError{Field: "geometry", Problem: "missing"}
	}
	var gj geojson.Geometry
	if err := json.Unmarshal(raw, &gj); err != nil {
		return nil, &ValidationError{Field: "geometry", Problem: "not a GeoJSON geometry: " + err.Error()}
	}
	if gj.Coordinates == nil {
		return nil, &ValidationError{Field: "geometry", Problem: fmt.Sprintf("%q has no coordinates", gj.Type)}
	}
	g, err := gj.Decode()
	if err != nil {
		return nil, &ValidationError{Field: "geometry", Problem: err.Error()}
	}
	if g.Layout() != geom.XY {
		// Altitudes are not part of any Aghali geometry; drop them rather than refuse.
		g, err = flatten(g)
		if err != nil {
			return nil, err
		}
	}
	flat := g.FlatCoords()
	for i := 0; i+1 < len(flat); i += 2 {
		lon, lat := flat[i], flat[i+1]
		if math.IsNaN(lon) || math.IsNaN(lat) || math.IsInf(lon, 0) || math.IsInf(lat, 0) {
			return nil, &ValidationError{Field: "geometry", Problem: "a coordinate is not a finite number"}
		}
		if lon < -180 || lon > 180 || lat < -90 || lat > 90 {
			return nil, &ValidationError{Field: "geometry", Problem: fmt.Sprintf("position [%g, %g] is not [longitude, latitude] in WGS84", lon, lat)}
		}
	}
	return setSRID(g), nil
}

// ParsePolygon decodes a GeoJSON Polygon.
func ParsePolygon(raw json.RawMessage) (*geom.Polygon, error) {
	g, err := ParseGeometry(raw)
	if err != nil {
		return nil, err
	}
	p, ok := g.(*geom.Polygon)
	if !ok {
		return nil, &ValidationError{Field: "geometry", Problem: fmt.Sprintf("want a Polygon, got %s", typeName(g))}
	}
	return orient(p), nil
}

// ParseMultiPolygon decodes a GeoJSON MultiPolygon, or a Polygon promoted to one.
func ParseMultiPolygon(raw json.RawMessage) (*geom.MultiPolygon, error) {
	g, err := ParseGeometry(raw)
	if err != nil {
		return nil, err
	}
	switch v := g.(type) {
	case *geom.MultiPolygon:
		out := geom.NewMultiPolygon(geom.XY).SetSRID(SRID)
		for i := range v.NumPolygons() {
			if err := out.Push(orient(v.Polygon(i))); err != nil {
				return nil, &ValidationError{Field: "geometry", Problem: err.Error()}
			}
		}
		return out, nil
	case *geom.Polygon:
		out := geom.NewMultiPolygon(geom.XY).SetSRID(SRID)
		if err := out.Push(orient(v)); err != nil {
			return nil, &ValidationError{Field: "geometry", Problem: err.Error()}
		}
		return out, nil
	}
	return nil, &ValidationError{Field: "geometry", Problem: fmt.Sprintf("want a Polygon or MultiPolygon, got %s", typeName(g))}
}

// ParsePoint decodes a GeoJSON Point; null or absent gives nil and no error.
func ParsePoint(raw json.RawMessage) (*geom.Point, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	g, err := ParseGeometry(raw)
	if err != nil {
		return nil, err
	}
	p, ok := g.(*geom.Point)
	if !ok {
		return nil, &ValidationError{Field: "geometry", Problem: fmt.Sprintf("want a Point, got %s", typeName(g))}
	}
	return p, nil
}

// NewPoint returns a WGS84 point.
func NewPoint(lon, lat float64) *geom.Point {
	return geom.NewPointFlat(geom.XY, []float64{lon, lat}).SetSRID(SRID)
}

// Marshal encodes g as a GeoJSON geometry (null for nil), with positions rounded to 7 decimals
// (about 1 cm), which is finer than any farm needs and keeps map payloads small.
func Marshal(g geom.T) (json.RawMessage, error) {
	if g == nil || isNil(g) {
		return json.RawMessage("null"), nil
	}
	return geojson.Marshal(g, geojson.EncodeGeometryWithMaxDecimalDigits(7))
}

// Feature is one GeoJSON feature; Properties are marshalled as they are.
type Feature struct {
	ID         any
	Geometry   geom.T
	Properties map[string]any
}

// MarshalJSON implements json.Marshaler.
func (f Feature) MarshalJSON() ([]byte, error) {
	g, err := Marshal(f.Geometry)
	if err != nil {
		return nil, err
	}
	props := f.Properties
	if props == nil {
		props = map[string]any{}
	}
	return json.Marshal(struct {
		Type       string          `json:"type"`
		ID         any             `json:"id,omitempty"`
		Geometry   json.RawMessage `json:"geometry"`
		Properties map[string]any  `json:"properties"`
	}{"Feature", f.ID, g, props})
}

// FeatureCollection is a GeoJSON FeatureCollection.
type FeatureCollection struct {
	Features []Feature
}

// MarshalJSON implements json.Marshaler.
func (fc FeatureCollection) MarshalJSON() ([]byte, error) {
	features := fc.Features
	if features == nil {
		features = []Feature{}
	}
	return json.Marshal(struct {
		Type     string    `json:"type"`
		Features []Feature `json:"features"`
	}{"FeatureCollection", features})
}

// orient returns p with its exterior ring counter-clockwise and holes clockwise (RFC 7946 §3.1.6).
func orient(p *geom.Polygon) *geom.Polygon {
	out := geom.NewPolygon(geom.XY).SetSRID(SRID)
	for i := range p.NumLinearRings() {
		ring := p.LinearRing(i)
		coords := ring.Coords()
		ccw := signedArea(coords) > 0
		if (i == 0) != ccw {
			for a, b := 0, len(coords)-1; a < b; a, b = a+1, b-1 {
				coords[a], coords[b] = coords[b], coords[a]
			}
		}
		r := geom.NewLinearRing(geom.XY)
		if _, err := r.SetCoords(coords); err != nil {
			return p
		}
		if err := out.Push(r); err != nil {
			return p
		}
	}
	return out
}

func signedArea(c []geom.Coord) float64 {
	var a float64
	for i := 0; i+1 < len(c); i++ {
		a += c[i][0]*c[i+1][1] - c[i+1][0]*c[i][1]
	}
	return a / 2
}

func flatten(g geom.T) (geom.T, error) {
	stride := g.Layout().Stride()
	src := g.FlatCoords()
	flat := make([]float64, 0, len(src)/stride*2)
	for i := 0; i+1 < len(src); i += stride {
		flat = append(flat, src[i], src[i+1])
	}
	scale := func(ends []int) []int {
		out := make([]int, len(ends))
		for i, e := range ends {
			out[i] = e / stride * 2
		}
		return out
	}
	switch v := g.(type) {
	case *geom.Point:
		return geom.NewPointFlat(geom.XY, flat), nil
	case *geom.LineString:
		return geom.NewLineStringFlat(geom.XY, flat), nil
	case *geom.Polygon:
		return geom.NewPolygonFlat(geom.XY, flat, scale(v.Ends())), nil
	case *geom.MultiPolygon:
		endss := v.Endss()
		out := make([][]int, len(endss))
		for i, ends := range endss {
			out[i] = scale(ends)
		}
		return geom.NewMultiPolygonFlat(geom.XY, flat, out), nil
	}
	return nil, &ValidationError{Field: "geometry", Problem: fmt.Sprintf("%s is not supported", typeName(g))}
}

func setSRID(g geom.T) geom.T {
	switch v := g.(type) {
	case *geom.Point:
		return v.SetSRID(SRID)
	case *geom.LineString:
		return v.SetSRID(SRID)
	case *geom.Polygon:
		return v.SetSRID(SRID)
	case *geom.MultiPolygon:
		return v.SetSRID(SRID)
	}
	return g
}

func typeName(g geom.T) string {
	switch g.(type) {
	case *geom.Point:
		return "Point"
	case *geom.MultiPoint:
		return "MultiPoint"
	case *geom.LineString:
		return "LineString"
	case *geom.MultiLineString:
		return "MultiLineString"
	case *geom.Polygon:
		return "Polygon"
	case *geom.MultiPolygon:
		return "MultiPolygon"
	case *geom.GeometryCollection:
		return "GeometryCollection"
	}
	return fmt.Sprintf("%T", g)
}
