package irrigation

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
)

// Kinds of water source.
const (
	SourcePump      = "pump"
	SourceWell      = "well"
	SourceCanal     = "canal"
	SourceReservoir = "reservoir"
)

// Energy supplies of a water source.
const (
	EnergyGrid  = "grid"
	EnergySolar = "solar"
	EnergyHydro = "hydro"
	EnergyNone  = "none"
)

// WaterSource feeds zones: a pump, well, canal or reservoir.
type WaterSource struct {
	ID          int64
	FarmID      int64
	Name        string
	Kind        string
	CapacityM3H *float64 // nil: unlimited
	Energy      string   // grid (default), solar, hydro, none
	// EnergyWindows are the local times of day when the source has power; empty: always.
	EnergyWindows []EnergyWindow
	// PowerBudgetKW is the power a solar or hydro supply gives for pumping and
	// SpecificEnergyKWhM3 what pumping one cubic metre takes; together they cap the flow the
	// source delivers at once (budget / specific energy, m3/h). Nil: no power limit.
	PowerBudgetKW       *float64
	SpecificEnergyKWhM3 *float64
	Location            *geom.Point
	CreatedAt           time.Time
}

// EnergyWindow is a daily span of local time, "08:00" to "17:00"; From after To spans midnight.
type EnergyWindow struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func validateWaterSource(w *WaterSource) error {
	w.Name = strings.TrimSpace(w.Name)
	if w.Name == "" {
		return invalid("name", "required")
	}
	switch w.Kind {
	case SourcePump, SourceWell, SourceCanal, SourceReservoir:
	default:
		return invalid("kind", "%q is not one of pump, well, canal, reservoir", w.Kind)
	}
	if w.Energy == "" {
		w.Energy = EnergyGrid
	}
	switch w.Energy {
	case EnergyGrid, EnergySolar, EnergyHydro, EnergyNone:
	default:
		return invalid("energy", "%q is not one of grid, solar, hydro, none", w.Energy)
	}
	if err := positive("capacity_m3h", w.CapacityM3H); err != nil {
		return err
	}
	for i, win := range w.EnergyWindows {
		from, to, err := windowMinutes(win)
		if err != nil {
			return invalid("energy_windows", "window %d: %v", i+1, err)
		}
		if from == to {
			return invalid("energy_windows", "window %d is empty", i+1)
		}
	}
	if err := positive("power_budget_kw", w.PowerBudgetKW); err != nil {
		return err
	}
	if err := positive("specific_energy_kwh_m3", w.SpecificEnergyKWhM3); err != nil {
		return err
	}
	if (w.PowerBudgetKW == nil) != (w.SpecificEnergyKWhM3 == nil) {
		return invalid("power_budget_kw", "a power budget needs specific_energy_kwh_m3 (what pumping a cubic metre takes), and the other way round")
	}
	if w.EnergyWindows == nil {
		w.EnergyWindows = []EnergyWindow{}
	}
	return nil
}

const waterSourceColumns = `id, farm_id, name, kind, capacity_m3h, energy, energy_windows, power_budget_kw,
	specific_energy_kwh_m3, geom, created_at`

func scanWaterSource(row pgx.Row) (WaterSource, error) {
	var w WaterSource
	var windows []byte
	err := row.Scan(&w.ID, &w.FarmID, &w.Name, &w.Kind, &w.CapacityM3H, &w.Energy, &windows, &w.PowerBudgetKW,
		&w.SpecificEnergyKWhM3, &w.Location, &w.CreatedAt)
	if err != nil {
		return WaterSource{}, interpretError(err, "water source")
	}
	if err := json.Unmarshal(windows, &w.EnergyWindows); err != nil {
		return WaterSource{}, fmt.Errorf("water source %d: energy windows: %w", w.ID, err)
	}
	return w, nil
}

// CreateWaterSource stores a new water source.
func (s *Store) CreateWaterSource(ctx context.Context, w WaterSource) (WaterSource, error) {
	if err := validateWaterSource(&w); err != nil {
		return WaterSource{}, err
	}
	windows, err := json.Marshal(w.EnergyWindows)
	if err != nil {
		return WaterSource{}, err
	}
	return scanWaterSource(s.db.QueryRow(ctx, `INSERT INTO water_sources (farm_id, name, kind, capacity_m3h, energy,
			energy_windows, power_budget_kw, specific_energy_kwh_m3, geom, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING `+waterSourceColumns,
		w.FarmID, w.Name, w.Kind, w.CapacityM3H, w.Energy, windows, w.PowerBudgetKW, w.SpecificEnergyKWhM3, w.Location, s.now()))
}

// WaterSource returns one water source.
func (s *Store) WaterSource(ctx context.Context, id int64) (WaterSource, error) {
	return scanWaterSource(s.db.QueryRow(ctx, `SELECT `+waterSourceColumns+` FROM water_sources WHERE id = $1`, id))
}

// WaterSources lists the water sources of a farm by name.
func (s *Store) WaterSources(ctx context.Context, farmID int64) ([]WaterSource, error) {
	rows, err := s.db.Query(ctx, `SELECT `+waterSourceColumns+` FROM water_sources WHERE farm_id = $1 ORDER BY name, id`, farmID)
	if err != nil {
		return nil, interpretError(err, "list water sources")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (WaterSource, error) { return scanWaterSource(r) })
}

// UpdateWaterSource replaces a water source's attributes (its farm stays).
func (s *Store) UpdateWaterSource(ctx context.Context, w WaterSource) (WaterSource, error) {
	if err := validateWaterSource(&w); err != nil {
		return WaterSource{}, err
	}
	windows, err := json.Marshal(w.EnergyWindows)
	if err != nil {
		return WaterSource{}, err
	}
	return scanWaterSource(s.db.QueryRow(ctx, `UPDATE water_sources SET name = $2, kind = $3, capacity_m3h = $4,
			energy = $5, energy_windows = $6, geom = $7, power_budget_kw = $8, specific_energy_kwh_m3 = $9
		WHERE id = $1 RETURNING `+waterSourceColumns,
		w.ID, w.Name, w.Kind, w.CapacityM3H, w.Energy, windows, w.Location, w.PowerBudgetKW, w.SpecificEnergyKWhM3))
}

// DeleteWaterSource deletes a water source; its zones stay, with no source, and its pump and
// master valves stay, serving none. One that feeds runs (admitted or waiting), or whose pump
// or master valve is on, is not deleted (ErrBusy).
func (s *Store) DeleteWaterSource(ctx context.Context, id int64) error {
	return s.withTx(ctx, func(t *txn) error {
		if err := t.lockFarmOf(ctx, `SELECT farm_id FROM water_sources WHERE id = $1`, id); err != nil {
			return interpretError(err, fmt.Sprintf("water source %d", id))
		}
		var runs, on int
		if err := t.tx.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM irrigation_runs WHERE water_source_id = $1 AND state IN `+liveStates+`),
				(SELECT count(*) FROM valves WHERE water_source_id = $1 AND hold_until IS NOT NULL)`, id).Scan(&runs, &on); err != nil {
			return interpretError(err, "water source in use")
		}
		if runs > 0 || on > 0 {
			return fmt.Errorf("water source %d feeds %d run(s) and has %d pump or master valve(s) on: %w", id, runs, on, ErrBusy)
		}
		_, err := t.tx.Exec(ctx, `DELETE FROM water_sources WHERE id = $1`, id)
		return interpretError(err, "delete water source")
	})
}

// FlowLimitM3H is the most the source may deliver at once: its capacity, or what its power
// budget can pump, whichever is less; nil when neither limits it.
func (w WaterSource) FlowLimitM3H() *float64 {
	limit := w.CapacityM3H
	if w.PowerBudgetKW != nil && w.SpecificEnergyKWhM3 != nil {
		p := *w.PowerBudgetKW / *w.SpecificEnergyKWhM3
		if limit == nil || p < *limit {
			limit = &p
		}
	}
	return limit
}
