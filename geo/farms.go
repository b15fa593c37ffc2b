package geo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"
)

// Farm belongs to one organisation; its time zone drives schedules and "today".
type Farm struct {
	ID        int64
	OrgID     int64
	Name      string
	Timezone  string
	Location  *geom.Point // nil when unknown
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Store keeps farms and fields.
type Store struct {
	db *pgxpool.Pool
}

// NewStore returns a Store on db (whose connections must have RegisterTypes applied).
func NewStore(db *pgxpool.Pool) *Store { return &Store{db: db} }

func (f *Farm) validate() error {
	f.Name = strings.TrimSpace(f.Name)
	if f.Name == "" {
		return &ValidationError{Field: "name", Problem: "required"}
	}
	if f.Timezone == "" {
		f.Timezone = "Asia/Baku"
	}
	if _, err := time.LoadLocation(f.Timezone); err != nil {
		return &ValidationError{Field: "timezone", Problem: fmt.Sprintf("%q is not an IANA time zone", f.Timezone)}
	}
	return nil
}

const farmColumns = `id, org_id, name, timezone, location, created_at, updated_at`

func scanFarm(row pgx.Row) (Farm, error) {
	var f Farm
	err := row.Scan(&f.ID, &f.OrgID, &f.Name, &f.Timezone, &f.Location, &f.CreatedAt, &f.UpdatedAt)
	return f, interpretError(err, "farm")
}

// CreateFarm stores a new farm and returns it with its id.
func (s *Store) CreateFarm(ctx context.Context, f Farm) (Farm, error) {
	if err := f.validate(); err != nil {
		return Farm{}, err
	}
	return scanFarm(s.db.QueryRow(ctx, `INSERT INTO farms (org_id, name, timezone, location)
		VALUES ($1, $2, $3, $4) RETURNING `+farmColumns, f.OrgID, f.Name, f.Timezone, f.Location))
}

// Farm returns one farm.
func (s *Store) Farm(ctx context.Context, id int64) (Farm, error) {
	return scanFarm(s.db.QueryRow(ctx, `SELECT `+farmColumns+` FROM farms WHERE id = $1`, id))
}

// Farms lists the farms of an organisation; only, when not nil, limits them to those ids.
func (s *Store) Farms(ctx context.Context, orgID int64, only []int64) ([]Farm, error) {
	rows, err := s.db.Query(ctx, `SELECT `+farmColumns+` FROM farms
		WHERE org_id = $1 AND ($2::bigint[] IS NULL OR id = ANY($2)) ORDER BY name`, orgID, only)
	if err != nil {
		return nil, fmt.Errorf("list farms: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Farm, error) { return scanFarm(r) })
}

// UpdateFarm changes a farm's name, time zone and location.
func (s *Store) UpdateFarm(ctx context.Context, f Farm) (Farm, error) {
	if err := f.validate(); err != nil {
		return Farm{}, err
	}
	return scanFarm(s.db.QueryRow(ctx, `UPDATE farms SET name = $2, timezone = $3, location = $4, updated_at = now()
		WHERE id = $1 RETURNING `+farmColumns, f.ID, f.Name, f.Timezone, f.Location))
}

// DeleteFarm deletes a farm and everything on it.
func (s *Store) DeleteFarm(ctx context.Context, id int64) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM farms WHERE id = $1`, id)
	if err != nil {
		return interpretError(err, "farm")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("farm %d: %w", id, ErrNotFound)
	}
	return nil
}

// interpretError translates driver errors into this package's errors, once.
func interpretError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w: %s", what, ErrConflict, pe.Detail)
		case "23503": // foreign_key_violation
			return &ValidationError{Field: what, Problem: "refers to something that does not exist: " + pe.Detail}
		case "23514", "22023", "XX000": // check_violation, invalid_parameter_value, PostGIS internal
			return &ValidationError{Field: what, Problem: pe.Message}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}
