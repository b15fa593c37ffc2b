package api

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twpayne/go-geom"

	"github.com/aghali/aghali/geo"
)

// The farm map's JSON is written here byte by byte: for thousands of features, geo.Feature's
// MarshalJSON (go-geom's reflective GeoJSON encoder, then encoding/json re-validating every
// nested document at each level) costs several times the database work. The output is the same
// as geo.Marshal's for every geometry (TestMapGeometryMatchesGeoMarshal).

// coordinateDecimals is geo.Marshal's precision: 7 decimals, about 1 cm.
const coordinateDecimals = 7

const (
	featureCollectionStart = `{"type":"FeatureCollection","features":[`
	featureCollectionEnd   = `]}`
)

// appendFeatureCollection appends {"type":"FeatureCollection","features":[...]} to b.
func appendFeatureCollection(b []byte, features []mapFeature) ([]byte, error) {
	b = append(b, featureCollectionStart...)
	b, err := appendFeatures(b, features)
	if err != nil {
		return nil, err
	}
	return append(b, featureCollectionEnd...), nil
}

// appendFeatures appends the features, separated by commas.
func appendFeatures(b []byte, features []mapFeature) ([]byte, error) {
	for i, f := range features {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"Feature","id":"`...)
		b = append(b, f.layer...) // a layer name: plain ASCII
		b = append(b, '/')
		b = strconv.AppendInt(b, f.num, 10)
		b = append(b, '"')
		b = append(b, `,"geometry":`...)
		var err error
		if b, err = appendGeometry(b, f.geom); err != nil {
			return nil, err
		}
		b = append(b, `,"properties":`...)
		b = f.props.appendJSON(b)
		b = append(b, '}')
	}
	return b, nil
}

// appendGeometry appends g as a GeoJSON geometry (null for nil), as geo.Marshal writes it.
// Points, Polygons and MultiPolygons, the map's shapes, are written directly; anything else
// goes through geo.Marshal.
func appendGeometry(b []byte, g geom.T) ([]byte, error) {
	switch g := g.(type) {
	case nil:
		return append(b, "null"...), nil
	case *geom.Point:
		if g == nil {
			return append(b, "null"...), nil
		}
		if !g.Empty() {
			b = append(b, `{"type":"Point","coordinates":`...)
			return append(appendPosition(b, g.FlatCoords()), '}'), nil
		}
	case *geom.Polygon:
		if g == nil {
			return append(b, "null"...), nil
		}
		if !g.Empty() {
			b = append(b, `{"type":"Polygon","coordinates":`...)
			return append(appendRings(b, g.FlatCoords(), 0, g.Ends(), g.Stride()), '}'), nil
		}
	case *geom.MultiPolygon:
		if g == nil {
			return append(b, "null"...), nil
		}
		if !g.Empty() {
			b = append(b, `{"type":"MultiPolygon","coordinates":[`...)
			flat, stride, offset := g.FlatCoords(), g.Stride(), 0
			for i, ends := range g.Endss() {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendRings(b, flat, offset, ends, stride)
				if len(ends) > 0 {
					offset = ends[len(ends)-1]
				}
			}
			return append(b, "]}"...), nil
		}
	}
	js, err := geo.Marshal(g)
	if err != nil {
		return nil, err
	}
	return append(b, js...), nil
}

// appendRings appends [[pos, ...], ...]: the rings of one polygon, flat[offset:ends[last]].
func appendRings(b []byte, flat []float64, offset int, ends []int, stride int) []byte {
	b = append(b, '[')
	for i, end := range ends {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j := offset; j < end; j += stride {
			if j > offset {
				b = append(b, ',')
			}
			b = appendPosition(b, flat[j:j+stride])
		}
		b = append(b, ']')
		offset = end
	}
	return append(b, ']')
}

// appendPosition appends [x,y(,z...)].
func appendPosition(b []byte, coords []float64) []byte {
	b = append(b, '[')
	for i, v := range coords {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCoordinate(b, v)
	}
	return append(b, ']')
}

// appendCoordinate writes v with coordinateDecimals decimals and drops the fraction's trailing
// zeros (and a bare point), as go-geom's GeoJSON encoder does for geo.Marshal.
func appendCoordinate(b []byte, v float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', coordinateDecimals, 64)
	if bytes.IndexByte(b[start:], '.') < 0 { // NaN, ±Inf: not numbers JSON has; leave as they are
		return b
	}
	for b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	if b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	return b
}

// Properties are written by hand too, each layer's struct by its appendJSON, exactly as
// encoding/json would write the struct (TestMapPropertiesMatchEncodingJSON keeps them in step:
// a member added to a struct and not to its appendJSON fails it).

// mapProps is a layer's properties.
type mapProps interface {
	appendJSON(b []byte) []byte
}

func (p fieldProps) appendJSON(b []byte) []byte {
	b = append(b, `{"layer":`...)
	b = appendJSONString(b, p.Layer)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, p.Name)
	b = append(b, `,"crop":`...)
	b = appendJSONString(b, p.Crop)
	b = append(b, `,"area_ha":`...)
	b = appendJSONFloat(b, p.AreaHa)
	return append(b, '}')
}

func (p zoneProps) appendJSON(b []byte) []byte {
	b = append(b, `{"layer":`...)
	b = appendJSONString(b, p.Layer)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, p.Name)
	b = append(b, `,"field_id":`...)
	b = appendOptInt(b, p.FieldID)
	b = append(b, `,"crop":`...)
	b = appendJSONString(b, p.Crop)
	b = append(b, `,"soil_vwc":`...)
	b = appendOptFloat(b, p.SoilVWC)
	b = append(b, `,"moisture":`...)
	b = appendJSONString(b, p.Moisture)
	b = append(b, `,"irrigating":`...)
	b = strconv.AppendBool(b, p.Irrigating)
	return append(b, '}')
}

func (p nodeProps) appendJSON(b []byte) []byte {
	b = append(b, `{"layer":`...)
	b = appendJSONString(b, p.Layer)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"uid":`...)
	b = appendJSONString(b, p.UID)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, p.Name)
	b = append(b, `,"zone_id":`...)
	b = appendOptInt(b, p.ZoneID)
	b = append(b, `,"last_seen_at":`...)
	b = appendOptTime(b, p.LastSeenAt)
	b = append(b, `,"battery_v":`...)
	b = appendOptFloat(b, p.BatteryV)
	b = append(b, `,"stale":`...)
	b = strconv.AppendBool(b, p.Stale)
	b = append(b, `,"latest":`...)
	if p.Latest == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		for i, name := range slices.Sorted(maps.Keys(p.Latest)) {
			if i > 0 {
				b = append(b, ',')
			}
			v := p.Latest[name]
			b = appendJSONString(b, name)
			b = append(b, `:{"value":`...)
			b = appendJSONFloat(b, v.Value)
			b = append(b, `,"ts":`...)
			b = appendJSONTime(b, v.TS)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func (p valveProps) appendJSON(b []byte) []byte {
	b = append(b, `{"layer":`...)
	b = appendJSONString(b, p.Layer)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, p.Name)
	b = append(b, `,"controller_id":`...)
	b = strconv.AppendInt(b, p.ControllerID, 10)
	b = append(b, `,"channel":`...)
	b = strconv.AppendInt(b, int64(p.Channel), 10)
	b = append(b, `,"zone_id":`...)
	b = appendOptInt(b, p.ZoneID)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, p.State)
	b = append(b, `,"run_id":`...)
	b = appendOptInt(b, p.RunID)
	b = append(b, `,"ends_at":`...)
	b = appendOptTime(b, p.EndsAt)
	return append(b, '}')
}

func (p waterSourceProps) appendJSON(b []byte) []byte {
	b = append(b, `{"layer":`...)
	b = appendJSONString(b, p.Layer)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, p.Name)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, p.Kind)
	b = append(b, `,"capacity_m3h":`...)
	b = appendOptFloat(b, p.CapacityM3H)
	return append(b, '}')
}

// appendJSONString appends s as encoding/json writes a string: plain ASCII directly, anything
// that needs escaping (control characters, quotes, <, >, &, non-ASCII) through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			js, _ := json.Marshal(s) // a string always marshals
			return append(b, js...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONFloat appends f as encoding/json writes a float64 (f is finite: readings and
// areas are).
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 → e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with nanoseconds).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendOptInt(b []byte, v *int64) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, *v, 10)
}

func appendOptFloat(b []byte, v *float64) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return appendJSONFloat(b, *v)
}

func appendOptTime(b []byte, v *time.Time) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	return appendJSONTime(b, *v)
}
