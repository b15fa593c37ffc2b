package geo

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
)

// Querier is what Validate needs of a pool, connection or transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Validate asks PostGIS whether g is a valid geometry (OGC rules: closed rings, no
// self-intersection, holes inside their shell...) and returns a *ValidationError with PostGIS's
// reason and location when it is not. Polygons must also have a non-zero area.
func Validate(ctx context.Context, q Querier, g geom.T) error {
	var valid bool
	var reason string
	var area float64
	err := q.QueryRow(ctx, `SELECT ST_IsValid($1::geometry), ST_IsValidReason($1::geometry), ST_Area($1::geometry)`, g).
		Scan(&valid, &reason, &area)
	if err != nil {
		// The EWKB codec refuses some shapes PostGIS would report on, e.g. an unclosed ring.
		return &ValidationError{Field: "geometry", Problem: "PostGIS refused the geometry: " + cleanPGError(err)}
	}
	if !valid {
		return &ValidationError{Field: "geometry", Problem: "invalid geometry: " + reason}
	}
	switch g.(type) {
	case *geom.Polygon, *geom.MultiPolygon:
		if area == 0 {
			return &ValidationError{Field: "geometry", Problem: "polygon has no area"}
		}
	}
	return nil
}

func cleanPGError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "ERROR: ")
	if i := strings.Index(s, " (SQLSTATE"); i > 0 {
		s = s[:i]
	}
	return fmt.Sprint(s)
}
