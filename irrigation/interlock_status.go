package irrigation

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// ActuatorStatus is a pump or master valve as the interlocks see it.
type ActuatorStatus struct {
	ValveID      int64
	Role         string
	ControllerID int64
	Channel      int
	Reported     string     // what its controller last said: open, closed, unknown
	On           bool       // switched on for its source's runs
	HoldUntil    *time.Time // on at least until then
}

// SourceStatus is what a water source delivers now and who waits for it.
type SourceStatus struct {
	Source WaterSource
	// FlowLimitM3H is the least of capacity and what the power budget pumps; nil: unlimited.
	FlowLimitM3H *float64
	// InUseM3H is the nominal flow of the runs admitted and of zone valves reported open
	// without a run; Drawing counts them, Unknown those of unknown nominal flow.
	InUseM3H float64
	Drawing  int
	Unknown  int
	// EnergyWindowOpen: the source has power now; NextWindowAt when it will (nil: now, or
	// never).
	EnergyWindowOpen bool
	NextWindowAt     *time.Time
	Actuators        []ActuatorStatus
	Admitted         []Run // starting, open, closing
	Queue            []Run // planned, in the order they will be admitted
}

// InterlockStatus is the state of a farm's safety interlocks.
type InterlockStatus struct {
	FarmID    int64
	Stop      *EmergencyStop // in force; nil: none
	Overrides []Override     // in force
	Sources   []SourceStatus
}

// InterlockStatus reads a farm's interlocks in one consistent snapshot.
func (s *Store) InterlockStatus(ctx context.Context, farmID int64) (InterlockStatus, error) {
	out := InterlockStatus{FarmID: farmID, Overrides: []Override{}, Sources: []SourceStatus{}}
	err := s.withTx(ctx, func(t *txn) error {
		if _, err := t.tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY`); err != nil {
			return interpretError(err, "snapshot")
		}
		var tz string
		if err := t.tx.QueryRow(ctx, `SELECT timezone FROM farms WHERE id = $1`, farmID).Scan(&tz); err != nil {
			return interpretError(err, "farm")
		}
		loc, err := s.location(tz)
		if err != nil {
			return err
		}
		if out.Stop, err = t.stopInForce(ctx, farmID); err != nil {
			return err
		}
		rows, err := t.tx.Query(ctx, `SELECT `+overrideColumns+` FROM irrigation_overrides
			WHERE farm_id = $1 AND cancelled_at IS NULL AND ends_at > $2 ORDER BY id`, farmID, t.now)
		if err != nil {
			return interpretError(err, "overrides")
		}
		if out.Overrides, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Override, error) { return scanOverride(r) }); err != nil {
			return interpretError(err, "overrides")
		}
		rows, err = t.tx.Query(ctx, `SELECT `+waterSourceColumns+` FROM water_sources WHERE farm_id = $1 ORDER BY name, id`, farmID)
		if err != nil {
			return interpretError(err, "water sources")
		}
		sources, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WaterSource, error) { return scanWaterSource(r) })
		if err != nil {
			return err
		}
		for _, src := range sources {
			st := SourceStatus{Source: src, FlowLimitM3H: src.FlowLimitM3H(), Actuators: []ActuatorStatus{}, Admitted: []Run{}, Queue: []Run{}}
			load, err := t.sourceLoad(ctx, src.ID)
			if err != nil {
				return err
			}
			st.InUseM3H, st.Drawing, st.Unknown = load.flowM3H, load.running, load.unknown
			local := t.now.In(loc)
			st.EnergyWindowOpen = inEnergyWindow(src.EnergyWindows, local)
			if !st.EnergyWindowOpen {
				if next, ok := nextEnergyWindow(src.EnergyWindows, local); ok {
					n := next.UTC()
					st.NextWindowAt = &n
				}
			}
			rows, err := t.tx.Query(ctx, `SELECT v.id, v.role, v.controller_id, v.channel, v.state, v.hold_until FROM valves v
				WHERE v.water_source_id = $1 AND v.role IN ('pump', 'master') ORDER BY v.role = 'pump', v.id`, src.ID)
			if err != nil {
				return interpretError(err, "actuators")
			}
			st.Actuators, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ActuatorStatus, error) {
				var a ActuatorStatus
				err := r.Scan(&a.ValveID, &a.Role, &a.ControllerID, &a.Channel, &a.Reported, &a.HoldUntil)
				a.On = a.HoldUntil != nil
				return a, err
			})
			if err != nil {
				return interpretError(err, "actuators")
			}
			runs, err := s.queryRuns(ctx, t.tx, `WHERE r.water_source_id = $1 AND r.state IN `+liveStates+`
				ORDER BY r.state = 'planned', r.priority DESC, r.created_at, r.id`, src.ID)
			if err != nil {
				return err
			}
			for _, r := range runs {
				if r.State == RunPlanned {
					st.Queue = append(st.Queue, r)
				} else {
					st.Admitted = append(st.Admitted, r)
				}
			}
			out.Sources = append(out.Sources, st)
		}
		return nil
	})
	return out, err
}

// RunQueue lists a farm's waiting (planned) runs, each source's queue in admission order.
func (s *Store) RunQueue(ctx context.Context, farmID int64) ([]Run, error) {
	return s.queryRuns(ctx, s.db, `WHERE z.farm_id = $1 AND r.state = 'planned'
		ORDER BY r.water_source_id NULLS FIRST, r.priority DESC, r.created_at, r.id`, farmID)
}
