package irrigation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Run states: planned → starting → open → closing → done, or aborted (stopped before its open
// was sent, or while it waited) or failed (the controller refused, or never confirmed, a
// command). A run stays planned while it waits for its water source (capacity, power, energy
// window: WaitReason says which); starting means its open command (and its source's pump or
// master valve before it) is on its way.
const (
	RunPlanned  = "planned"
	RunStarting = "starting"
	RunOpen     = "open"
	RunClosing  = "closing"
	RunDone     = "done"
	RunAborted  = "aborted"
	RunFailed   = "failed"
)

// liveStates are the states of a run that holds its valve (SQL list).
const liveStates = `('planned', 'starting', 'open', 'closing')`

// Run origins: who decided to water.
const (
	OriginUser         = "user"
	OriginRule         = "rule"
	OriginSchedule     = "schedule"
	OriginWaterBalance = "water_balance"
)

// Run is one watering of a zone through one valve.
type Run struct {
	ID          int64
	ZoneID      int64
	FarmID      int64 // the zone's farm; read-only
	ValveID     int64
	Origin      string
	OriginID    *int64 // the rule or schedule that decided, if any
	RequestedBy *int64 // the person who asked, if any
	Reason      string // why it was started, in words
	State       string
	DurationS   int        // what the controller was told: at most the zone's max runtime
	CreatedAt   time.Time  // decided
	StartedAt   *time.Time // the controller confirmed the valve open
	EndsAt      *time.Time // StartedAt + DurationS: the controller closes by itself then
	EndedAt     *time.Time
	EndReason   string
	UpdatedAt   time.Time
	// WaterSourceID is the source the run draws on and FlowLPM the flow it was admitted with
	// (its valve's nominal flow; nil: unknown, so it runs alone on its source).
	WaterSourceID *int64
	FlowLPM       *float64
	// Priority orders the source's queue before creation time: 1 for a manual override.
	Priority int
	// WaitReason says why a planned run is still waiting; "" once admitted.
	WaitReason string
	// VolumeL is the water metered for the run so far (nil: no meter said).
	VolumeL    *float64
	OverrideID *int64
}

// Live reports whether the run still holds its valve.
func (r Run) Live() bool {
	switch r.State {
	case RunPlanned, RunStarting, RunOpen, RunClosing:
		return true
	}
	return false
}

// RunEvent is one step in a run's history: every state change, with why.
type RunEvent struct {
	At    time.Time
	State string
	Note  string
}

// RunRequest asks for a zone to be watered through a valve.
type RunRequest struct {
	ValveID   int64
	DurationS int    // capped at the zone's max runtime
	Origin    string // user, rule, schedule, water_balance
	OriginID  *int64 // the rule or schedule
	// RequestedBy is the person who asked (nil for automatic origins).
	RequestedBy *int64
	// Reason records why, e.g. "mean soil_vwc 0.152 < 0.18 over 1h (3 readings)".
	Reason string

	override *Override // set by CreateOverride: ahead of the queue, past rest and energy window
}

func validateRunRequest(r *RunRequest) error {
	switch r.Origin {
	case OriginUser, OriginRule, OriginSchedule, OriginWaterBalance:
	default:
		return invalid("origin", "%q is not one of user, rule, schedule, water_balance", r.Origin)
	}
	if r.DurationS <= 0 {
		return invalid("duration_s", "must be positive")
	}
	r.Reason = strings.TrimSpace(r.Reason)
	if r.Reason == "" {
		r.Reason = r.Origin + " request"
	}
	return nil
}

const runColumns = `r.id, r.zone_id, z.farm_id, r.valve_id, r.origin, r.origin_id, r.requested_by, r.reason, r.state,
	r.duration_s, r.created_at, r.started_at, r.ends_at, r.ended_at, r.end_reason, r.updated_at,
	r.water_source_id, r.flow_lpm, r.priority, r.wait_reason, r.volume_l, r.override_id`

const runFrom = ` FROM irrigation_runs r JOIN zones z ON z.id = r.zone_id `

func scanRun(row pgx.Row) (Run, error) {
	var r Run
	err := row.Scan(&r.ID, &r.ZoneID, &r.FarmID, &r.ValveID, &r.Origin, &r.OriginID, &r.RequestedBy, &r.Reason, &r.State,
		&r.DurationS, &r.CreatedAt, &r.StartedAt, &r.EndsAt, &r.EndedAt, &r.EndReason, &r.UpdatedAt,
		&r.WaterSourceID, &r.FlowLPM, &r.Priority, &r.WaitReason, &r.VolumeL, &r.OverrideID)
	return r, interpretError(err, "run")
}

func (s *Store) queryRuns(ctx context.Context, q querier, where string, args ...any) ([]Run, error) {
	rows, err := q.Query(ctx, `SELECT `+runColumns+runFrom+where, args...)
	if err != nil {
		return nil, interpretError(err, "list runs")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) { return scanRun(r) })
}

// Run returns one run.
func (s *Store) Run(ctx context.Context, id int64) (Run, error) {
	return scanRun(s.db.QueryRow(ctx, `SELECT `+runColumns+runFrom+`WHERE r.id = $1`, id))
}

// Runs lists a farm's runs, newest first; liveOnly keeps those that hold their valve.
// limit ≤ 0 means 50.
func (s *Store) Runs(ctx context.Context, farmID int64, liveOnly bool, limit int) ([]Run, error) {
	if limit <= 0 {
		limit = 50
	}
	return s.queryRuns(ctx, s.db, `WHERE z.farm_id = $1 AND (NOT $2 OR r.state IN `+liveStates+`)
		ORDER BY r.created_at DESC, r.id DESC LIMIT $3`, farmID, liveOnly, limit)
}

// RunEvents returns a run's history, oldest first.
func (s *Store) RunEvents(ctx context.Context, runID int64) ([]RunEvent, error) {
	rows, err := s.db.Query(ctx, `SELECT at, state, note FROM run_events WHERE run_id = $1 ORDER BY id`, runID)
	if err != nil {
		return nil, interpretError(err, "run events")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunEvent, error) {
		var e RunEvent
		err := r.Scan(&e.At, &e.State, &e.Note)
		return e, err
	})
}

// StartRun waters the zone of a valve. In one transaction, under the farm's lock, it refuses
// what must not water at all (an emergency stop in force: ErrEmergencyStop; a valve with a
// live run, a zone held closed by an override, or for automatic origins a zone still resting
// its min_off_s: ErrBusy), caps the duration at the zone's max runtime, persists the run and
// admits it to its water source: if the source has the capacity, power and energy window for
// it now, its open command (behind the source's pump or master valve) is queued and the run is
// starting; otherwise it stays planned, waiting its turn. The dispatchers are woken at commit.
func (s *Store) StartRun(ctx context.Context, req RunRequest) (Run, error) {
	if err := validateRunRequest(&req); err != nil {
		return Run{}, err
	}
	var run Run
	err := s.withTx(ctx, func(t *txn) error {
		v, err := t.lockValve(ctx, req.ValveID)
		if err != nil {
			return err
		}
		st, err := t.startRun(ctx, s, v, req)
		if err != nil {
			return err
		}
		run, err = t.run(ctx, st.ID)
		return err
	})
	return run, err
}

// startedRun is a run startRun has queued, as its callers record it.
type startedRun struct {
	ID        int64
	DurationS int    // capped to the zone's max runtime
	Reason    string // with the cap noted
}

// zoneLimits are what startRun checks a zone's run against: its limits, and what may forbid
// watering at all (an emergency stop of its farm, a hold on it). They are read under the valve's
// lock, with the id the run will have (drawn then, so that the run's writes can go with the
// commit).
type zoneLimits struct {
	zoneID             int64
	maxRuntime, minOff int
	lastEnd            *time.Time // of the zone's last run that started
	stop, hold         struct {
		id     *int64
		by     *string
		reason *string
		at     *time.Time
	}
	nextRunID int64
	used      bool // by a run: another needs limits (and an id) of its own
}

// zoneLimitsSQL reads a zone's limits ($1 the zone, $2 now); scanZoneLimits scans its row.
const zoneLimitsSQL = `SELECT z.max_runtime_s, z.min_off_s,
		(SELECT max(ended_at) FROM irrigation_runs WHERE zone_id = z.id AND started_at IS NOT NULL),
		s.id, s.stopped_by_name, s.reason, s.stopped_at, o.id, o.by_name, o.reason, o.ends_at,
		nextval(pg_get_serial_sequence('irrigation_runs', 'id'))
	FROM zones z
	LEFT JOIN irrigation_stops s ON s.farm_id = z.farm_id AND s.released_at IS NULL
	LEFT JOIN LATERAL (SELECT id, by_name, reason, ends_at FROM irrigation_overrides
		WHERE zone_id = z.id AND mode = 'hold' AND cancelled_at IS NULL AND ends_at > $2 ORDER BY id LIMIT 1) o ON true
	WHERE z.id = $1`

func scanZoneLimits(row pgx.Row, zoneID int64) (*zoneLimits, error) {
	l := &zoneLimits{zoneID: zoneID}
	err := row.Scan(&l.maxRuntime, &l.minOff, &l.lastEnd, &l.stop.id, &l.stop.by, &l.stop.reason, &l.stop.at,
		&l.hold.id, &l.hold.by, &l.hold.reason, &l.hold.at, &l.nextRunID)
	if err != nil {
		return nil, interpretError(err, "zone of valve")
	}
	return l, nil
}

// startRun is StartRun inside a transaction that has locked the valve (and so its farm).
func (t *txn) startRun(ctx context.Context, s *Store, v lockedValve, req RunRequest) (startedRun, error) {
	if err := validateRunRequest(&req); err != nil {
		return startedRun{}, err
	}
	if v.role != RoleZone {
		return startedRun{}, invalid("valve_id", "valve %d is the %s of a water source; it is switched with the zones it feeds", v.id, v.role)
	}
	if v.zoneID == nil {
		return startedRun{}, invalid("valve_id", "valve %d waters no zone", v.id)
	}
	if v.liveRunID != nil {
		return startedRun{}, fmt.Errorf("valve %d already has run %d: %w", v.id, *v.liveRunID, ErrBusy)
	}
	lim := v.limits // read with the valve's lock, when lockZoneValve took it
	if lim == nil || lim.zoneID != *v.zoneID || lim.used {
		var err error
		if lim, err = scanZoneLimits(t.tx.QueryRow(ctx, zoneLimitsSQL, *v.zoneID, t.now), *v.zoneID); err != nil {
			return startedRun{}, err
		}
	}
	if lim.stop.id != nil {
		return startedRun{}, fmt.Errorf("stopped by %s at %s (%s): %w", *lim.stop.by, lim.stop.at.Format(time.RFC3339), *lim.stop.reason, ErrEmergencyStop)
	}
	if lim.hold.id != nil {
		return startedRun{}, fmt.Errorf("zone %d is held closed by %s until %s (override %d: %s): %w", *v.zoneID, *lim.hold.by,
			lim.hold.at.Format(time.RFC3339), *lim.hold.id, *lim.hold.reason, ErrHeld)
	}
	if req.Origin != OriginUser && lim.minOff > 0 && lim.lastEnd != nil {
		if rest := t.now.Sub(*lim.lastEnd); rest < time.Duration(lim.minOff)*time.Second {
			return startedRun{}, fmt.Errorf("zone %d has rested %s of its %d s after the last run: %w",
				*v.zoneID, rest.Round(time.Second), lim.minOff, ErrBusy)
		}
	}
	lim.used = true
	id, maxRuntime := lim.nextRunID, lim.maxRuntime
	reason := req.Reason
	duration := req.DurationS
	if duration > maxRuntime {
		reason += fmt.Sprintf(" (capped from %d s to the zone's max runtime %d s)", duration, maxRuntime)
		duration = maxRuntime
	}
	priority := 0
	var overrideID *int64
	if req.override != nil {
		priority, overrideID = 1, &req.override.ID
	}
	t.tx.later("insert run", `WITH r AS (
			INSERT INTO irrigation_runs (id, zone_id, valve_id, origin, origin_id, requested_by, reason,
				state, duration_s, created_at, updated_at, water_source_id, flow_lpm, priority, override_id)
			OVERRIDING SYSTEM VALUE
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'planned', $8, $9, $9, $10, $11, $12, $13) RETURNING id)
		INSERT INTO run_events (run_id, at, state, note) SELECT id, $9, 'planned', $7 FROM r`,
		id, *v.zoneID, v.id, req.Origin, req.OriginID, req.RequestedBy, reason, duration, t.now,
		v.sourceID, v.nominalFlow, priority, overrideID)
	t.known = &v // launch need not read it again
	defer func() { t.known = nil }()
	if v.sourceID == nil {
		if err := t.launch(ctx, waitingRun{id: id, durationS: duration, valveID: v.id}); err != nil {
			return startedRun{}, err
		}
	} else if err := t.admitQueue(ctx, v.farmID, *v.sourceID); err != nil {
		return startedRun{}, err
	}
	s.metrics.runsStarted.WithLabelValues(req.Origin).Inc()
	return startedRun{ID: id, DurationS: duration, Reason: reason}, nil
}

// StopRun closes a run's valve: it queues a close and moves the run to closing. A run whose
// open was never sent is aborted at once instead; a run already closing is returned as it is;
// one that has ended is ErrConflict. by is the person asking (nil: the system).
func (s *Store) StopRun(ctx context.Context, runID int64, by *int64, reason string) (Run, error) {
	var run Run
	err := s.withTx(ctx, func(t *txn) error {
		peek, err := t.run(ctx, runID)
		if err != nil {
			return err
		}
		v, err := t.lockValve(ctx, peek.ValveID)
		if err != nil {
			return err
		}
		r, err := t.lockRun(ctx, runID)
		if err != nil {
			return err
		}
		run, err = t.stopRun(ctx, s, v, r, stopNote(by, reason))
		return err
	})
	return run, err
}

// StopValve stops the live run of a valve; a valve with none is ErrConflict.
func (s *Store) StopValve(ctx context.Context, valveID int64, by *int64, reason string) (Run, error) {
	var run Run
	err := s.withTx(ctx, func(t *txn) error {
		v, err := t.lockValve(ctx, valveID)
		if err != nil {
			return err
		}
		if v.liveRunID == nil {
			return fmt.Errorf("valve %d has no live run: %w", valveID, ErrConflict)
		}
		r, err := t.lockRun(ctx, *v.liveRunID)
		if err != nil {
			return err
		}
		run, err = t.stopRun(ctx, s, v, r, stopNote(by, reason))
		return err
	})
	return run, err
}

func stopNote(by *int64, reason string) string {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "no reason given"
	}
	if by != nil {
		return fmt.Sprintf("stopped by user %d: %s", *by, reason)
	}
	return "stopped: " + reason
}

func (t *txn) stopRun(ctx context.Context, s *Store, v lockedValve, r Run, note string) (Run, error) {
	switch r.State {
	case RunClosing:
		return r, nil
	case RunDone, RunAborted, RunFailed:
		return Run{}, fmt.Errorf("run %d already ended (%s): %w", r.ID, r.State, ErrConflict)
	case RunPlanned, RunStarting:
		open, err := t.lockRunCommand(ctx, r.ID, ActionOpen)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Run{}, err
		}
		if errors.Is(err, ErrNotFound) && r.State == RunPlanned {
			// Still waiting for its source: nothing was sent.
			if err := t.endRun(ctx, r.ID, RunAborted, note+" (it was waiting: "+r.WaitReason+")"); err != nil {
				return Run{}, err
			}
			return t.run(ctx, r.ID)
		}
		if err == nil && open.State == CommandPending && open.Attempts == 0 {
			// Never sent: nothing to undo at the controller.
			t.markExpired(open.ID, "cancelled before it was sent: "+note)
			if err := t.endRun(ctx, r.ID, RunAborted, note); err != nil {
				return Run{}, err
			}
			return t.run(ctx, r.ID)
		}
		if err == nil && (open.State == CommandPending || open.State == CommandSent) {
			t.markExpired(open.ID, "superseded by a close: "+note)
		}
	}
	// Open, or an open that may have reached the controller: close it.
	return t.closeRun(ctx, s, v, r.ID, note)
}

// closeRun queues a close for a run's valve and moves the run to closing.
func (t *txn) closeRun(ctx context.Context, s *Store, v lockedValve, runID int64, note string) (Run, error) {
	ch := v.channel
	cmd, err := t.enqueue(ctx, s, newCommand{controllerID: v.controllerID, runID: &runID, action: ActionClose,
		valve: &ch, reason: note})
	if err != nil {
		return Run{}, err
	}
	if err := t.setRunState(ctx, runID, RunClosing, fmt.Sprintf("%s; close command %s queued", note, cmd.id), runTimes{}); err != nil {
		return Run{}, err
	}
	return t.run(ctx, runID)
}

// run reads a run without locking it.
func (t *txn) run(ctx context.Context, id int64) (Run, error) {
	return scanRun(t.tx.QueryRow(ctx, `SELECT `+runColumns+runFrom+`WHERE r.id = $1`, id))
}

// lockRun locks a run; lock its valve first.
func (t *txn) lockRun(ctx context.Context, id int64) (Run, error) {
	return scanRun(t.tx.QueryRow(ctx, `SELECT `+runColumns+runFrom+`WHERE r.id = $1 FOR UPDATE OF r`, id))
}

// runTimes are the timestamps a state change sets (zero: unchanged).
type runTimes struct {
	startedAt, endsAt time.Time
}

// setRunState moves a run to a live state and records why.
func (t *txn) setRunState(ctx context.Context, id int64, state, note string, ts runTimes) error {
	_, err := t.tx.Exec(ctx, `UPDATE irrigation_runs SET state = $2, updated_at = $3,
			started_at = COALESCE($4, started_at), ends_at = COALESCE($5, ends_at)
		WHERE id = $1`, id, state, t.now, nullTime(ts.startedAt), nullTime(ts.endsAt))
	if err != nil {
		return interpretError(err, "set run state")
	}
	return t.addEvent(ctx, id, state, note)
}

// endRun moves a run to done, aborted or failed, with the reason. What it held of its water
// source is released at once: the runs waiting there are admitted in order, and when none is
// left running the source's pump and master valve are switched off.
func (t *txn) endRun(ctx context.Context, id int64, state, reason string) error {
	var farmID int64
	var sourceID *int64
	err := t.tx.QueryRow(ctx, `UPDATE irrigation_runs r SET state = $2, updated_at = $3, ended_at = $3, end_reason = $4,
			wait_reason = ''
		FROM zones z WHERE r.id = $1 AND z.id = r.zone_id RETURNING z.farm_id, r.water_source_id`,
		id, state, t.now, reason).Scan(&farmID, &sourceID)
	if err != nil {
		return interpretError(err, "end run")
	}
	if err := t.addEvent(ctx, id, state, reason); err != nil {
		return err
	}
	if sourceID == nil {
		return nil
	}
	if err := t.admitQueue(ctx, farmID, *sourceID); err != nil {
		return err
	}
	return t.actuatorsOffIfIdle(ctx, farmID, *sourceID)
}

func (t *txn) addEvent(ctx context.Context, runID int64, state, note string) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO run_events (run_id, at, state, note) VALUES ($1, $2, $3, $4)`,
		runID, t.now, state, note)
	return interpretError(err, "run event")
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// runsNeedingAttention lists the live runs the run monitor must look at: open past ends_at +
// grace, and starting or closing runs with no command left in flight. (Planned runs wait for
// their source; the monitor admits them separately.)
func (s *Store) runsNeedingAttention(ctx context.Context, overdue time.Time, limit int) ([]Run, error) {
	return s.queryRuns(ctx, s.db, `WHERE (r.state = 'open' AND r.ends_at <= $1)
		OR (r.state IN ('starting', 'closing') AND NOT EXISTS (
			SELECT 1 FROM commands c WHERE c.run_id = r.id AND c.state IN ('pending', 'sent')))
		ORDER BY r.id LIMIT $2`, overdue, limit)
}
