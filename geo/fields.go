package geo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
)

// Field is a parcel of a farm: one or more polygons (a MultiPolygon), with its area.
type Field struct {
	ID        int64
	FarmID    int64
	Name      string
	Crop      string
	Geom      *geom.MultiPolygon
	AreaHa    float64 // computed on the ellipsoid; read-only
	CreatedAt time.Time
	UpdatedAt time.Time
}

const fieldColumns = `id, farm_id, name, crop, geom, area_ha, created_at, updated_at`

func scanField(row pgx.Row) (Field, error) {
	var f Field
	err := row.Scan(&f.ID, &f.FarmID, &f.Name, &f.Crop, &f.Geom, &f.AreaHa, &f.CreatedAt, &f.UpdatedAt)
	return f, interpretError(err, "field")
}

func (s *Store) validateField(ctx context.Context, f *Field) error {
	f.Name = strings.TrimSpace(f.Name)
	if f.Name == "" {
		return &ValidationError{Field: "name", Problem: "required"}
	}
	if f.Geom == nil {
		return &ValidationError{Field: "geometry", Problem: "required"}
	}
	return Validate(ctx, s.db, f.Geom)
}

// CreateField stores a new field after PostGIS has validated its geometry.
func (s *Store) CreateField(ctx context.Context, f Field) (Field, error) {
	if err := s.validateField(ctx, &f); err != nil {
		return Field{}, err
	}
	return scanField(s.db.QueryRow(ctx, `INSERT INTO fields (farm_id, name, crop, geom)
		VALUES ($1, $2, $3, $4) RETURNING `+fieldColumns, f.FarmID, f.Name, f.Crop, f.Geom))
}

// Field returns one field.
func (s *Store) Field(ctx context.Context, id int64) (Field, error) {
	return scanField(s.db.QueryRow(ctx, `SELECT `+fieldColumns+` FROM fields WHERE id = $1`, id))
}

// Fields lists the fields of a farm.
func (s *Store) Fields(ctx context.Context, farmID int64) ([]Field, error) {
	rows, err := s.db.Query(ctx, `SELECT `+fieldColumns+` FROM fields WHERE farm_id = $1 ORDER BY name, id`, farmID)
	if err != nil {
		return nil, fmt.Errorf("list fields: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Field, error) { return scanField(r) })
}

// UpdateField changes a field's name, crop and geometry.
func (s *Store) UpdateField(ctx context.Context, f Field) (Field, error) {
	if err := s.validateField(ctx, &f); err != nil {
		return Field{}, err
	}
	return scanField(s.db.QueryRow(ctx, `UPDATE fields SET name = $2, crop = $3, geom = $4, updated_at = now()
		WHERE id = $1 RETURNING `+fieldColumns, f.ID, f.Name, f.Crop, f.Geom))
}

// DeleteField deletes a field (its zones stay, unlinked).
func (s *Store) DeleteField(ctx context.Context, id int64) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM fields WHERE id = $1`, id)
	if err != nil {
		return interpretError(err, "field")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("field %d: %w", id, ErrNotFound)
	}
	return nil
}
