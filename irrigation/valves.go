package irrigation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
)

// Valve roles.
const (
	RoleZone   = "zone"
	RolePump   = "pump"
	RoleMaster = "master"
)

// Valve states as a controller reports them.
const (
	ValveOpen    = "open"
	ValveClosed  = "closed"
	ValveUnknown = "unknown"
)

// Valve is one channel of a controller, watering (at most) one zone.
type Valve struct {
	ID             int64
	ControllerID   int64
	FarmID         int64 // the controller's farm; read-only
	Channel        int   // 1…255, unique per controller
	ZoneID         *int64
	Name           string
	Location       *geom.Point
	NominalFlowLPM *float64
	// Role is zone (default: it waters ZoneID), pump or master: an actuator of WaterSourceID,
	// switched on before the source's first zone valve opens and off after its last one closes.
	Role          string
	WaterSourceID *int64 // actuators only; a zone valve draws on its zone's source
	// HoldUntil: an actuator that is on stays on at least until then (its open's duration_s);
	// nil while off. Read-only.
	HoldUntil *time.Time
	// State is what the controller last reported (open, closed, unknown) and StateAt when;
	// the live run says what should be. Both read-only.
	State   string
	StateAt *time.Time
	// Run is the valve's live run (planned, starting, open or closing), nil when idle.
	// Filled by Valve, Valves and ControllerValves; read-only.
	Run       *Run
	CreatedAt time.Time
}

func (s *Store) validateValve(ctx context.Context, v *Valve) error {
	v.Name = strings.TrimSpace(v.Name)
	if v.Channel < 1 || v.Channel > 255 {
		return invalid("channel", "%d is not between 1 and 255", v.Channel)
	}
	if err := positive("nominal_flow_lpm", v.NominalFlowLPM); err != nil {
		return err
	}
	if v.Role == "" {
		v.Role = RoleZone
	}
	switch v.Role {
	case RoleZone:
		if v.WaterSourceID != nil {
			return invalid("water_source_id", "a zone valve draws on its zone's water source; only a pump or master valve names one")
		}
	case RolePump, RoleMaster:
		if v.WaterSourceID == nil {
			return invalid("water_source_id", "required for a %s", v.Role)
		}
		if v.ZoneID != nil {
			return invalid("zone_id", "a %s serves its water source, not a zone", v.Role)
		}
	default:
		return invalid("role", "%q is not one of zone, pump, master", v.Role)
	}
	c, err := s.Controller(ctx, v.ControllerID)
	if errors.Is(err, ErrNotFound) {
		return invalid("controller_id", "%d does not exist", v.ControllerID)
	}
	if err != nil {
		return err
	}
	v.FarmID = c.FarmID
	if v.ZoneID != nil {
		if err := s.onFarm(ctx, "zones", *v.ZoneID, c.FarmID, "zone_id"); err != nil {
			return err
		}
	}
	if v.WaterSourceID != nil {
		if err := s.onFarm(ctx, "water_sources", *v.WaterSourceID, c.FarmID, "water_source_id"); err != nil {
			return err
		}
	}
	return nil
}

const valveColumns = `v.id, v.controller_id, c.farm_id, v.channel, v.zone_id, v.name, v.geom, v.nominal_flow_lpm,
	v.role, v.water_source_id, v.hold_until, v.state, v.state_at, v.created_at`

const valveFrom = ` FROM valves v JOIN controllers c ON c.id = v.controller_id `

func scanValve(row pgx.Row) (Valve, error) {
	var v Valve
	err := row.Scan(&v.ID, &v.ControllerID, &v.FarmID, &v.Channel, &v.ZoneID, &v.Name, &v.Location, &v.NominalFlowLPM,
		&v.Role, &v.WaterSourceID, &v.HoldUntil, &v.State, &v.StateAt, &v.CreatedAt)
	return v, interpretError(err, "valve")
}

// CreateValve stores a new valve on a controller channel; its zone must be on the controller's
// farm.
func (s *Store) CreateValve(ctx context.Context, v Valve) (Valve, error) {
	if err := s.validateValve(ctx, &v); err != nil {
		return Valve{}, err
	}
	var id int64
	err := s.db.QueryRow(ctx, `INSERT INTO valves (controller_id, channel, zone_id, name, geom, nominal_flow_lpm, role,
			water_source_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
		v.ControllerID, v.Channel, v.ZoneID, v.Name, v.Location, v.NominalFlowLPM, v.Role, v.WaterSourceID, s.now()).Scan(&id)
	if err != nil {
		return Valve{}, interpretError(err, "create valve")
	}
	return s.Valve(ctx, id)
}

// Valve returns one valve with its live run.
func (s *Store) Valve(ctx context.Context, id int64) (Valve, error) {
	v, err := scanValve(s.db.QueryRow(ctx, `SELECT `+valveColumns+valveFrom+`WHERE v.id = $1`, id))
	if err != nil {
		return Valve{}, err
	}
	runs, err := s.queryRuns(ctx, s.db, `WHERE r.valve_id = $1 AND r.state IN `+liveStates, id)
	if err != nil {
		return Valve{}, err
	}
	if len(runs) > 0 {
		v.Run = &runs[0]
	}
	return v, nil
}

// Valves lists the valves of a farm, each with its live run if any.
func (s *Store) Valves(ctx context.Context, farmID int64) ([]Valve, error) {
	return s.valvesWhere(ctx, `c.farm_id = $1`, `z.farm_id = $1`, farmID)
}

// ControllerValves lists the valves of one controller by channel, each with its live run.
func (s *Store) ControllerValves(ctx context.Context, controllerID int64) ([]Valve, error) {
	return s.valvesWhere(ctx, `v.controller_id = $1`, `r.valve_id IN (SELECT id FROM valves WHERE controller_id = $1)`, controllerID)
}

func (s *Store) valvesWhere(ctx context.Context, valveCond, runCond string, arg int64) ([]Valve, error) {
	rows, err := s.db.Query(ctx, `SELECT `+valveColumns+valveFrom+`WHERE `+valveCond+` ORDER BY c.uid, v.channel`, arg)
	if err != nil {
		return nil, interpretError(err, "list valves")
	}
	valves, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Valve, error) { return scanValve(r) })
	if err != nil {
		return nil, err
	}
	runs, err := s.queryRuns(ctx, s.db, `WHERE `+runCond+` AND r.state IN `+liveStates, arg)
	if err != nil {
		return nil, err
	}
	byValve := make(map[int64]*Run, len(runs))
	for i := range runs {
		byValve[runs[i].ValveID] = &runs[i]
	}
	for i := range valves {
		valves[i].Run = byValve[valves[i].ID]
	}
	return valves, nil
}

// UpdateValve changes a valve's channel, zone, name, location and nominal flow (its controller
// stays). While the valve has a live run its channel and zone cannot change (ErrBusy).
func (s *Store) UpdateValve(ctx context.Context, v Valve) (Valve, error) {
	old, err := s.Valve(ctx, v.ID)
	if err != nil {
		return Valve{}, err
	}
	v.ControllerID = old.ControllerID
	if err := s.validateValve(ctx, &v); err != nil {
		return Valve{}, err
	}
	err = s.withTx(ctx, func(t *txn) error {
		lv, err := t.lockValve(ctx, v.ID)
		if err != nil {
			return err
		}
		if lv.liveRunID != nil && (lv.channel != v.Channel || !sameID(lv.zoneID, v.ZoneID)) {
			return fmt.Errorf("valve %d is being watered by run %d; stop it before moving the valve: %w", v.ID, *lv.liveRunID, ErrBusy)
		}
		if lv.holdUntil != nil && (lv.channel != v.Channel || lv.role != v.Role || !sameID(lv.sourceID, v.WaterSourceID)) {
			return fmt.Errorf("%s %d is on for its water source; wait until the source's runs end: %w", lv.role, v.ID, ErrBusy)
		}
		_, err = t.tx.Exec(ctx, `UPDATE valves SET channel = $2, zone_id = $3, name = $4, geom = $5, nominal_flow_lpm = $6,
				role = $7, water_source_id = $8
			WHERE id = $1`, v.ID, v.Channel, v.ZoneID, v.Name, v.Location, v.NominalFlowLPM, v.Role, v.WaterSourceID)
		return interpretError(err, "update valve")
	})
	if err != nil {
		return Valve{}, err
	}
	return s.Valve(ctx, v.ID)
}

func sameID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// DeleteValve deletes a valve and its past runs. One being watered is not deleted (ErrBusy).
func (s *Store) DeleteValve(ctx context.Context, id int64) error {
	return s.withTx(ctx, func(t *txn) error {
		lv, err := t.lockValve(ctx, id)
		if err != nil {
			return err
		}
		if lv.liveRunID != nil {
			return fmt.Errorf("valve %d is being watered by run %d: %w", id, *lv.liveRunID, ErrBusy)
		}
		if lv.holdUntil != nil {
			return fmt.Errorf("%s %d is on for its water source: %w", lv.role, id, ErrBusy)
		}
		_, err = t.tx.Exec(ctx, `DELETE FROM valves WHERE id = $1`, id)
		return interpretError(err, "delete valve")
	})
}

// lockedValve is a valve row locked for the transaction, with what decisions about it need.
type lockedValve struct {
	id            int64
	controllerID  int64
	controllerUID string
	farmID        int64
	channel       int
	zoneID        *int64
	role          string
	sourceID      *int64 // an actuator's own source, or the source of a zone valve's zone
	nominalFlow   *float64
	state         string
	stateAt       *time.Time
	holdUntil     *time.Time // actuators: on until at least then; nil: off
	holdCommand   *string
	liveRunID     *int64
	transport     string      // the controller's
	limits        *zoneLimits // its zone's, when read with the lock (lockZoneValve), for one run
}

const lockedValveColumns = `v.id, v.controller_id, c.uid, c.farm_id, v.channel, v.zone_id, v.role,
	COALESCE(v.water_source_id, (SELECT z.water_source_id FROM zones z WHERE z.id = v.zone_id)),
	v.nominal_flow_lpm, v.state, v.state_at, v.hold_until, v.hold_command::text, c.transport,
	(SELECT r.id FROM irrigation_runs r WHERE r.valve_id = v.id AND r.state IN ` + liveStates + `)`

func scanLockedValve(row pgx.Row) (lockedValve, error) {
	var v lockedValve
	err := row.Scan(&v.id, &v.controllerID, &v.controllerUID, &v.farmID, &v.channel, &v.zoneID, &v.role, &v.sourceID,
		&v.nominalFlow, &v.state, &v.stateAt, &v.holdUntil, &v.holdCommand, &v.transport, &v.liveRunID)
	return v, err
}

// lockValve locks a valve's farm, then the valve, and reads its live run.
func (t *txn) lockValve(ctx context.Context, id int64) (lockedValve, error) {
	// Both statements in one round trip, run in order. A valve that does not exist locks
	// nothing (the lock function is strict) and is not found by the second.
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($2::int4, (SELECT (c.farm_id % 2147483647)::int4
		FROM valves v JOIN controllers c ON c.id = v.controller_id WHERE v.id = $1))`, id, int32(farmLockKey))
	b.Queue(`SELECT `+lockedValveColumns+`
		FROM valves v JOIN controllers c ON c.id = v.controller_id WHERE v.id = $1 FOR UPDATE OF v`, id)
	br := t.tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return lockedValve{}, interpretError(err, fmt.Sprintf("valve %d", id))
	}
	v, err := scanLockedValve(br.QueryRow())
	return v, interpretError(err, fmt.Sprintf("valve %d", id))
}

// lockControllerValves locks a controller's farm, then every valve of the controller, by channel.
func (t *txn) lockControllerValves(ctx context.Context, controllerID int64) (map[int]*lockedValve, error) {
	if err := t.lockFarmOf(ctx, `SELECT farm_id FROM controllers WHERE id = $1`, controllerID); err != nil {
		return nil, interpretError(err, "lock valves")
	}
	rows, err := t.tx.Query(ctx, `SELECT `+lockedValveColumns+`
		FROM valves v JOIN controllers c ON c.id = v.controller_id WHERE v.controller_id = $1
		ORDER BY v.id FOR UPDATE OF v`, controllerID)
	if err != nil {
		return nil, interpretError(err, "lock valves")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (lockedValve, error) { return scanLockedValve(r) })
	if err != nil {
		return nil, interpretError(err, "lock valves")
	}
	out := make(map[int]*lockedValve, len(list))
	for i := range list {
		out[list[i].channel] = &list[i]
	}
	return out, nil
}

// valveInfo reads a valve without locking it. Under the farm lock that is enough for the valves
// of live runs: their channel, zone and controller cannot change while the run lives.
func (t *txn) valveInfo(ctx context.Context, id int64) (lockedValve, error) {
	v, err := scanLockedValve(t.tx.QueryRow(ctx, `SELECT `+lockedValveColumns+`
		FROM valves v JOIN controllers c ON c.id = v.controller_id WHERE v.id = $1`, id))
	return v, interpretError(err, fmt.Sprintf("valve %d", id))
}

// lockZoneValve locks the valve that waters a zone for rules and schedules (the first, lowest
// id, of the zone's valves) and reads the zone's limits for startRun, in one round trip.
func (t *txn) lockZoneValve(ctx context.Context, zoneID int64) (lockedValve, error) {
	b := &pgx.Batch{}
	queueZoneValveLock(b, zoneID, t.now)
	br := t.tx.SendBatch(ctx, b)
	v, err := readZoneValveLock(br, zoneID)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = interpretError(cerr, fmt.Sprintf("zone %d", zoneID))
	}
	return v, err
}

// queueZoneValveLock queues on b the zone's farm lock, then its first valve's row lock (the farm
// first, as everywhere; a valve's zone is on its controller's farm), then the read of the zone's
// limits; readZoneValveLock reads their results.
func queueZoneValveLock(b *pgx.Batch, zoneID int64, now time.Time) {
	b.Queue(`SELECT farm_id, pg_advisory_xact_lock($2::int4, (farm_id % 2147483647)::int4) FROM zones WHERE id = $1`,
		zoneID, int32(farmLockKey))
	b.Queue(`SELECT `+lockedValveColumns+`
		FROM valves v JOIN controllers c ON c.id = v.controller_id
		WHERE v.id = (SELECT id FROM valves WHERE zone_id = $1 ORDER BY id LIMIT 1) FOR UPDATE OF v`, zoneID)
	b.Queue(zoneLimitsSQL, zoneID, now)
}

func readZoneValveLock(br pgx.BatchResults, zoneID int64) (lockedValve, error) {
	var farmID int64
	if err := br.QueryRow().Scan(&farmID, nil); err != nil {
		return lockedValve{}, interpretError(err, fmt.Sprintf("zone %d", zoneID))
	}
	v, err := scanLockedValve(br.QueryRow())
	if errors.Is(err, pgx.ErrNoRows) {
		return lockedValve{}, fmt.Errorf("zone %d: %w", zoneID, errNoValve)
	}
	if err != nil {
		return lockedValve{}, interpretError(err, "valve of zone")
	}
	if v.limits, err = scanZoneLimits(br.QueryRow(), zoneID); err != nil {
		return lockedValve{}, err
	}
	return v, nil
}

// errNoValve: a zone that rules or schedules want to water has no valve.
var errNoValve = errors.New("zone has no valve")

// setValveState records what the controller reported.
func (t *txn) setValveState(ctx context.Context, id int64, state string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE valves SET state = $2, state_at = $3 WHERE id = $1`, id, state, at)
	return interpretError(err, "set valve state")
}
