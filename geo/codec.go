package geo

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/ewkb"
)

// SRID of every geometry Aghali stores: WGS84 longitude/latitude.
const SRID = 4326

// RegisterTypes teaches conn the PostGIS geometry type, so go-geom values (geom.T and pointers
// to concrete types such as *geom.Polygon) can be passed as query arguments and scanned from
// results. Use it as pgxpool.Config.AfterConnect.
func RegisterTypes(ctx context.Context, conn *pgx.Conn) error {
	var oid uint32
	if err := conn.QueryRow(ctx, `SELECT 'geometry'::regtype::oid`).Scan(&oid); err != nil {
		return fmt.Errorf("geo: PostGIS geometry type not found (is the postgis extension installed?): %w", err)
	}
	conn.TypeMap().RegisterType(&pgtype.Type{Name: "geometry", OID: oid, Codec: geometryCodec{}})
	return nil
}

// geometryCodec encodes and decodes PostGIS geometry as EWKB (binary) or hex EWKB (text).
type geometryCodec struct{}

func (geometryCodec) FormatSupported(format int16) bool {
	return format == pgtype.BinaryFormatCode || format == pgtype.TextFormatCode
}

func (geometryCodec) PreferredFormat() int16 { return pgtype.BinaryFormatCode }

func (geometryCodec) PlanEncode(_ *pgtype.Map, _ uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(geom.T); !ok {
		return nil
	}
	return encodePlan{text: format == pgtype.TextFormatCode}
}

type encodePlan struct{ text bool }

func (p encodePlan) Encode(value any, buf []byte) ([]byte, error) {
	g := value.(geom.T)
	if isNil(g) {
		return nil, nil
	}
	g = withSRID(g)
	b, err := ewkb.Marshal(g, binary.LittleEndian)
	if err != nil {
		return nil, fmt.Errorf("geo: encode %T: %w", g, err)
	}
	if p.text {
		return append(buf, hex.EncodeToString(b)...), nil
	}
	return append(buf, b...), nil
}

func (geometryCodec) PlanScan(_ *pgtype.Map, _ uint32, format int16, target any) pgtype.ScanPlan {
	switch target.(type) {
	case *geom.T, **geom.Point, **geom.Polygon, **geom.MultiPolygon, **geom.LineString:
		return scanPlan{text: format == pgtype.TextFormatCode}
	}
	return nil
}

type scanPlan struct{ text bool }

func (p scanPlan) Scan(src []byte, target any) error {
	var g geom.T
	if src != nil {
		var err error
		if g, err = decode(src, p.text); err != nil {
			return err
		}
	}
	switch t := target.(type) {
	case *geom.T:
		*t = g
		return nil
	case **geom.Point:
		return assign(g, t)
	case **geom.Polygon:
		return assign(g, t)
	case **geom.MultiPolygon:
		return assign(g, t)
	case **geom.LineString:
		return assign(g, t)
	}
	return fmt.Errorf("geo: cannot scan geometry into %T", target)
}

func assign[G geom.T](g geom.T, target *G) error {
	if g == nil {
		var zero G
		*target = zero
		return nil
	}
	v, ok := g.(G)
	if !ok {
		var want G
		return fmt.Errorf("geo: got %T from the database, want %T", g, want)
	}
	*target = v
	return nil
}

func decode(src []byte, text bool) (geom.T, error) {
	if text {
		b := make([]byte, hex.DecodedLen(len(src)))
		if _, err := hex.Decode(b, src); err != nil {
			return nil, fmt.Errorf("geo: decode hex EWKB: %w", err)
		}
		src = b
	}
	g, err := ewkb.Unmarshal(src)
	if err != nil {
		return nil, fmt.Errorf("geo: decode EWKB: %w", err)
	}
	return g, nil
}

func (c geometryCodec) DecodeDatabaseSQLValue(_ *pgtype.Map, _ uint32, format int16, src []byte) (driver.Value, error) {
	if src == nil {
		return nil, nil
	}
	if format == pgtype.TextFormatCode {
		return string(src), nil
	}
	return hex.EncodeToString(src), nil
}

func (c geometryCodec) DecodeValue(_ *pgtype.Map, _ uint32, format int16, src []byte) (any, error) {
	if src == nil {
		return nil, nil
	}
	return decode(src, format == pgtype.TextFormatCode)
}

// isNil reports whether g is a nil interface or a typed nil pointer.
func isNil(g geom.T) bool {
	switch v := g.(type) {
	case nil:
		return true
	case *geom.Point:
		return v == nil
	case *geom.Polygon:
		return v == nil
	case *geom.MultiPolygon:
		return v == nil
	case *geom.LineString:
		return v == nil
	}
	return false
}

// withSRID returns g with SRID 4326 when it has none, without changing the caller's value.
func withSRID(g geom.T) geom.T {
	if g.SRID() != 0 {
		return g
	}
	switch v := g.(type) {
	case *geom.Point:
		return v.Clone().SetSRID(SRID)
	case *geom.Polygon:
		return v.Clone().SetSRID(SRID)
	case *geom.MultiPolygon:
		return v.Clone().SetSRID(SRID)
	case *geom.LineString:
		return v.Clone().SetSRID(SRID)
	}
	return g
}
