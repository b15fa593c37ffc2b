package irrigation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"

	"github.com/aghali/aghali/geo"
)

// Irrigation methods of a zone.
const (
	MethodDrip      = "drip"
	MethodSprinkler = "sprinkler"
	MethodFurrow    = "furrow"
	MethodOther     = "other"
)

// DefaultMaxRuntimeS is a zone's max runtime when none is given: one hour.
const DefaultMaxRuntimeS = 3600

// Zone is an irrigated area of a farm, watered through its valves as one unit.
type Zone struct {
	ID            int64
	FarmID        int64
	FieldID       *int64 // nil: not part of a field
	WaterSourceID *int64 // nil: unknown source
	Name          string
	Geom          *geom.Polygon
	Method        string // drip (default), sprinkler, furrow, other
	Crop          string
	Soil          string
	RootDepthM    *float64
	// ApplicationRateMMH is the depth of water the emitters apply per hour.
	ApplicationRateMMH *float64
	// Efficiency is the share of applied water that reaches the roots, (0, 1].
	Efficiency *float64
	// PlantingDate (a calendar day, midnight UTC) starts the crop's Kc curve; for perennials,
	// bud-break or green-up. Nil: Kc mid (an established crop).
	PlantingDate *time.Time
	// ThetaFC and ThetaWP are measured field capacity and wilting point (m³/m³) replacing the
	// soil texture's Table 19 values in the water balance.
	ThetaFC *float64
	ThetaWP *float64
	// MaxRuntimeS is the longest a valve of this zone may stay open; every open carries it (or
	// less) as duration_s, so the controller closes by itself even if the server is gone.
	// 0 on create means DefaultMaxRuntimeS.
	MaxRuntimeS int
	// MinOffS is how long the zone rests after a run before rules, schedules or the water
	// balance may water it again (people may).
	MinOffS   int
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (s *Store) validateZone(ctx context.Context, z *Zone) error {
	z.Name = strings.TrimSpace(z.Name)
	if z.Name == "" {
		return invalid("name", "required")
	}
	if z.Method == "" {
		z.Method = MethodDrip
	}
	switch z.Method {
	case MethodDrip, MethodSprinkler, MethodFurrow, MethodOther:
	default:
		return invalid("method", "%q is not one of drip, sprinkler, furrow, other", z.Method)
	}
	if z.MaxRuntimeS == 0 {
		z.MaxRuntimeS = DefaultMaxRuntimeS
	}
	if z.MaxRuntimeS < 0 {
		return invalid("max_runtime_s", "must be positive")
	}
	if z.MinOffS < 0 {
		return invalid("min_off_s", "must not be negative")
	}
	if err := positive("root_depth_m", z.RootDepthM); err != nil {
		return err
	}
	if err := positive("application_rate_mm_h", z.ApplicationRateMMH); err != nil {
		return err
	}
	if err := positive("efficiency", z.Efficiency); err != nil {
		return err
	}
	if z.Efficiency != nil && *z.Efficiency > 1 {
		return invalid("efficiency", "must be at most 1")
	}
	if err := validateAgronomy(z); err != nil {
		return err
	}
	if z.Geom == nil {
		return invalid("geometry", "required")
	}
	if err := geo.Validate(ctx, s.db, z.Geom); err != nil {
		if ve, ok := err.(*geo.ValidationError); ok {
			return &ValidationError{Field: ve.Field, Problem: ve.Problem}
		}
		return fmt.Errorf("validate zone geometry: %w", err)
	}
	if z.FieldID != nil {
		if err := s.onFarm(ctx, "fields", *z.FieldID, z.FarmID, "field_id"); err != nil {
			return err
		}
	}
	if z.WaterSourceID != nil {
		if err := s.onFarm(ctx, "water_sources", *z.WaterSourceID, z.FarmID, "water_source_id"); err != nil {
			return err
		}
	}
	return nil
}

func positive(field string, v *float64) error {
	if v != nil && (!(*v > 0) || math.IsInf(*v, 0)) {
		return invalid(field, "must be a positive number")
	}
	return nil
}

// onFarm checks that row id of table (fields, water_sources, zones, controllers) is on farm.
func (s *Store) onFarm(ctx context.Context, table string, id, farmID int64, field string) error {
	var farm int64
	err := s.db.QueryRow(ctx, `SELECT farm_id FROM `+pgx.Identifier{table}.Sanitize()+` WHERE id = $1`, id).Scan(&farm)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return invalid(field, "%d does not exist", id)
		}
		return interpretError(err, field)
	}
	if farm != farmID {
		return invalid(field, "%d is on another farm", id)
	}
	return nil
}

const zoneColumns = `id, farm_id, field_id, water_source_id, name, geom, method, crop, soil, root_depth_m,
	application_rate_mm_h, efficiency, max_runtime_s, min_off_s, created_at, updated_at, planting_date, theta_fc, theta_wp`

func scanZone(row pgx.Row) (Zone, error) {
	var z Zone
	err := row.Scan(&z.ID, &z.FarmID, &z.FieldID, &z.WaterSourceID, &z.Name, &z.Geom, &z.Method, &z.Crop, &z.Soil,
		&z.RootDepthM, &z.ApplicationRateMMH, &z.Efficiency, &z.MaxRuntimeS, &z.MinOffS, &z.CreatedAt, &z.UpdatedAt,
		&z.PlantingDate, &z.ThetaFC, &z.ThetaWP)
	return z, interpretError(err, "zone")
}

// CreateZone stores a new zone after PostGIS has validated its polygon.
func (s *Store) CreateZone(ctx context.Context, z Zone) (Zone, error) {
	if err := s.validateZone(ctx, &z); err != nil {
		return Zone{}, err
	}
	now := s.now()
	return scanZone(s.db.QueryRow(ctx, `INSERT INTO zones (farm_id, field_id, water_source_id, name, geom, method, crop,
			soil, root_depth_m, application_rate_mm_h, efficiency, max_runtime_s, min_off_s, created_at, updated_at,
			planting_date, theta_fc, theta_wp)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16, $17)
		RETURNING `+zoneColumns,
		z.FarmID, z.FieldID, z.WaterSourceID, z.Name, z.Geom, z.Method, z.Crop, z.Soil, z.RootDepthM,
		z.ApplicationRateMMH, z.Efficiency, z.MaxRuntimeS, z.MinOffS, now, z.PlantingDate, z.ThetaFC, z.ThetaWP))
}

// Zone returns one zone.
func (s *Store) Zone(ctx context.Context, id int64) (Zone, error) {
	return scanZone(s.db.QueryRow(ctx, `SELECT `+zoneColumns+` FROM zones WHERE id = $1`, id))
}

// Zones lists the zones of a farm by name.
func (s *Store) Zones(ctx context.Context, farmID int64) ([]Zone, error) {
	rows, err := s.db.Query(ctx, `SELECT `+zoneColumns+` FROM zones WHERE farm_id = $1 ORDER BY name, id`, farmID)
	if err != nil {
		return nil, interpretError(err, "list zones")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Zone, error) { return scanZone(r) })
}

// UpdateZone replaces a zone's attributes (its farm stays). Runs already under way keep the
// duration they were given; the controller enforces it.
func (s *Store) UpdateZone(ctx context.Context, z Zone) (Zone, error) {
	old, err := s.Zone(ctx, z.ID)
	if err != nil {
		return Zone{}, err
	}
	z.FarmID = old.FarmID
	if err := s.validateZone(ctx, &z); err != nil {
		return Zone{}, err
	}
	return scanZone(s.db.QueryRow(ctx, `UPDATE zones SET field_id = $2, water_source_id = $3, name = $4, geom = $5,
			method = $6, crop = $7, soil = $8, root_depth_m = $9, application_rate_mm_h = $10, efficiency = $11,
			max_runtime_s = $12, min_off_s = $13, updated_at = $14, planting_date = $15, theta_fc = $16, theta_wp = $17
		WHERE id = $1 RETURNING `+zoneColumns,
		z.ID, z.FieldID, z.WaterSourceID, z.Name, z.Geom, z.Method, z.Crop, z.Soil, z.RootDepthM,
		z.ApplicationRateMMH, z.Efficiency, z.MaxRuntimeS, z.MinOffS, s.now(), z.PlantingDate, z.ThetaFC, z.ThetaWP))
}

// DeleteZone deletes a zone with its rules, schedules and past runs; its valves stay, unassigned.
// A zone being watered is not deleted (ErrBusy): stop its run first.
func (s *Store) DeleteZone(ctx context.Context, id int64) error {
	return s.withTx(ctx, func(t *txn) error {
		if err := t.lockFarmOf(ctx, `SELECT farm_id FROM zones WHERE id = $1`, id); err != nil {
			return interpretError(err, fmt.Sprintf("zone %d", id))
		}
		if _, err := t.tx.Exec(ctx, `SELECT 1 FROM valves WHERE zone_id = $1 ORDER BY id FOR UPDATE`, id); err != nil {
			return interpretError(err, "lock valves of zone")
		}
		var live int64
		err := t.tx.QueryRow(ctx, `SELECT id FROM irrigation_runs WHERE zone_id = $1 AND state IN `+liveStates+` LIMIT 1`, id).Scan(&live)
		if err == nil {
			return fmt.Errorf("zone %d is being watered by run %d: %w", id, live, ErrBusy)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return interpretError(err, "zone live run")
		}
		tag, err := t.tx.Exec(ctx, `DELETE FROM zones WHERE id = $1`, id)
		if err != nil {
			return interpretError(err, "delete zone")
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("zone %d: %w", id, ErrNotFound)
		}
		return nil
	})
}
