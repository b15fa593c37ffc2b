package irrigation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// The interlocks: every decision that lets water flow is taken here, in the transaction that
// admits a run, under its farm's lock, so that several instances never decide at once for one
// farm. A run is admitted to its water source when the source is in its energy window and the
// nominal flows of the zones it already feeds plus this one fit its capacity and power budget;
// otherwise it waits, planned, in the source's queue (priority, then order of request) and is
// admitted as others finish. The source's pump and master valve are switched on before its
// first zone valve opens (the zone's open waits for their acks) and off after its last closes.

// farmLockKey is the first key of the farms' transaction-scoped advisory locks ("aghi").
const farmLockKey = 0x61676869

// lockFarm takes the farm's irrigation lock until the transaction ends. It comes before any
// valve, run or command lock (see txn).
func (t *txn) lockFarm(ctx context.Context, farmID int64) error {
	_, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int4, ($2 % 2147483647)::int4)`, int32(farmLockKey), farmID)
	return interpretError(err, "lock farm")
}

// lockFarmOf locks the farm that query (one id argument) names.
func (t *txn) lockFarmOf(ctx context.Context, query string, id int64) error {
	var farmID int64
	if err := t.tx.QueryRow(ctx, query, id).Scan(&farmID); err != nil {
		return err
	}
	return t.lockFarm(ctx, farmID)
}

// refuseIfStopped fails with ErrEmergencyStop while the farm's emergency stop is in force.
func (t *txn) refuseIfStopped(ctx context.Context, farmID int64) error {
	st, err := t.stopInForce(ctx, farmID)
	if err != nil || st == nil {
		return err
	}
	return fmt.Errorf("stopped by %s at %s (%s): %w", st.StoppedByName, st.StoppedAt.Format(time.RFC3339), st.Reason, ErrEmergencyStop)
}

// refuseIfHeld fails with ErrBusy while a manual override holds the zone closed.
func (t *txn) refuseIfHeld(ctx context.Context, zoneID int64) error {
	var id int64
	var by, reason string
	var ends time.Time
	err := t.tx.QueryRow(ctx, `SELECT id, by_name, reason, ends_at FROM irrigation_overrides
		WHERE zone_id = $1 AND mode = 'hold' AND cancelled_at IS NULL AND ends_at > $2 ORDER BY id LIMIT 1`,
		zoneID, t.now).Scan(&id, &by, &reason, &ends)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return interpretError(err, "zone overrides")
	}
	return fmt.Errorf("zone %d is held closed by %s until %s (override %d: %s): %w", zoneID, by, ends.Format(time.RFC3339), id, reason, ErrHeld)
}

// m3h converts a flow in L/min to m3/h.
func m3h(lpm float64) float64 { return lpm * 60 / 1000 }

// sourceLoad is what a water source delivers now: the admitted runs (starting, open, closing)
// and zone valves reported open without a run (stuck, or opened by hand), which draw on it
// just the same.
type sourceLoad struct {
	flowM3H float64 // nominal flow of those whose flow is known
	running int     // runs and stray open valves
	unknown int     // of those, how many have no nominal flow (each runs alone)
}

const sourceLoadSQL = `WITH drawing AS (
		SELECT r.flow_lpm FROM irrigation_runs r
		WHERE r.water_source_id = $1 AND r.state IN ('starting', 'open', 'closing')
		UNION ALL
		SELECT v.nominal_flow_lpm FROM valves v JOIN zones z ON z.id = v.zone_id
		WHERE z.water_source_id = $1 AND v.role = 'zone' AND v.state = 'open' AND NOT EXISTS (
			SELECT 1 FROM irrigation_runs r WHERE r.valve_id = v.id AND r.state IN ('starting', 'open', 'closing')))
	SELECT sum(flow_lpm), count(*), count(*) FILTER (WHERE flow_lpm IS NULL) FROM drawing`

func (t *txn) sourceLoad(ctx context.Context, sourceID int64) (sourceLoad, error) {
	return scanSourceLoad(t.tx.QueryRow(ctx, sourceLoadSQL, sourceID))
}

func scanSourceLoad(row pgx.Row) (sourceLoad, error) {
	var l sourceLoad
	var known *float64
	if err := row.Scan(&known, &l.running, &l.unknown); err != nil {
		return l, interpretError(err, "source load")
	}
	if known != nil {
		l.flowM3H = m3h(*known)
	}
	return l, nil
}

// waitReason says why a run of flow lpm (nil: unknown) cannot be admitted to src now, or "".
func waitReason(src WaterSource, load sourceLoad, lpm *float64, bypassWindow bool, now time.Time, loc *time.Location) string {
	if !bypassWindow && !inEnergyWindow(src.EnergyWindows, now.In(loc)) {
		if next, ok := nextEnergyWindow(src.EnergyWindows, now.In(loc)); ok {
			return fmt.Sprintf("waiting for the energy window of %s (opens %s)", src.Name, next.Format("2006-01-02 15:04 MST"))
		}
		return fmt.Sprintf("waiting for the energy window of %s", src.Name)
	}
	limit := src.FlowLimitM3H()
	if limit == nil {
		return ""
	}
	what := "capacity"
	if src.CapacityM3H == nil || *limit < *src.CapacityM3H {
		what = "power"
	}
	switch {
	case lpm == nil && load.running > 0:
		return fmt.Sprintf("waiting for %s to be free: this valve's nominal flow is unknown, so it runs alone", src.Name)
	case load.unknown > 0:
		return fmt.Sprintf("waiting for %s: a valve of unknown nominal flow runs alone on it", src.Name)
	case lpm != nil && load.flowM3H+m3h(*lpm) > *limit+1e-9:
		return fmt.Sprintf("waiting for %s on %s: %.2f of %.2f m3/h in use, this zone needs %.2f",
			what, src.Name, load.flowM3H, *limit, m3h(*lpm))
	}
	return ""
}

// waitingRun is a planned run in its source's queue, locked.
type waitingRun struct {
	id         int64
	flowLPM    *float64
	overrideID *int64
	waitReason string
	durationS  int
	valveID    int64
	sourceID   *int64
}

// admitQueue admits, in queue order, the planned runs of a water source that its capacity,
// power budget and energy window allow now. The queue is strict: the first run that must wait
// holds back those behind it, so requests are served in order (sequential groups). The farm
// is locked.
func (t *txn) admitQueue(ctx context.Context, farmID, sourceID int64) error {
	// The queue (locked), the source with its farm's time zone and whether an emergency stop
	// (which admits nothing) is in force, and what the source delivers now: one round trip.
	b := &pgx.Batch{}
	b.Queue(`SELECT id, flow_lpm, override_id, wait_reason, duration_s, valve_id, water_source_id
		FROM irrigation_runs WHERE water_source_id = $1 AND state = 'planned'
		ORDER BY priority DESC, created_at, id FOR UPDATE`, sourceID)
	b.Queue(`SELECT w.id, w.name, w.capacity_m3h, w.energy_windows, w.power_budget_kw,
			w.specific_energy_kwh_m3, f.timezone,
			EXISTS (SELECT 1 FROM irrigation_stops s WHERE s.farm_id = f.id AND s.released_at IS NULL)
		FROM water_sources w JOIN farms f ON f.id = w.farm_id WHERE w.id = $1`, sourceID)
	b.Queue(sourceLoadSQL, sourceID)
	br := t.tx.SendBatch(ctx, b)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return interpretError(err, "source queue")
	}
	waiting, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (waitingRun, error) {
		var w waitingRun
		err := r.Scan(&w.id, &w.flowLPM, &w.overrideID, &w.waitReason, &w.durationS, &w.valveID, &w.sourceID)
		return w, err
	})
	if err != nil {
		br.Close()
		return interpretError(err, "source queue")
	}
	var tz string
	var stopped bool
	var windows []byte
	var src WaterSource
	err = br.QueryRow().Scan(&src.ID, &src.Name, &src.CapacityM3H, &windows, &src.PowerBudgetKW, &src.SpecificEnergyKWhM3, &tz, &stopped)
	if err != nil {
		br.Close()
		return interpretError(err, "water source")
	}
	load, err := scanSourceLoad(br.QueryRow())
	if cerr := br.Close(); err == nil && cerr != nil {
		err = interpretError(cerr, "source queue")
	}
	if err != nil {
		return err
	}
	if len(waiting) == 0 || stopped {
		return nil
	}
	if err := json.Unmarshal(windows, &src.EnergyWindows); err != nil {
		return fmt.Errorf("water source %d: energy windows: %w", src.ID, err)
	}
	loc, err := t.s.location(tz)
	if err != nil {
		return err
	}
	for i, w := range waiting {
		reason := waitReason(src, load, w.flowLPM, w.overrideID != nil, t.now, loc)
		if reason == "" {
			if err := t.launch(ctx, w); err != nil {
				return err
			}
			load.running++
			if w.flowLPM == nil {
				load.unknown++
			} else {
				load.flowM3H += m3h(*w.flowLPM)
			}
			continue
		}
		if err := t.setWaitReason(ctx, w, reason); err != nil {
			return err
		}
		for j, behind := range waiting[i+1:] {
			r := fmt.Sprintf("queued on %s, %s behind run %d", src.Name, ordinal(j+1), w.id)
			if err := t.setWaitReason(ctx, behind, r); err != nil {
				return err
			}
		}
		return nil
	}
	return nil
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "next"
	case 2:
		return "2nd"
	case 3:
		return "3rd"
	}
	return fmt.Sprintf("%dth", n)
}

func (t *txn) setWaitReason(ctx context.Context, w waitingRun, reason string) error {
	if w.waitReason == reason {
		return nil
	}
	if _, err := t.tx.Exec(ctx, `UPDATE irrigation_runs SET wait_reason = $2, updated_at = $3 WHERE id = $1`, w.id, reason, t.now); err != nil {
		return interpretError(err, "run wait reason")
	}
	return t.addEvent(ctx, w.id, RunPlanned, reason)
}

// launch moves an admitted planned run, locked, to starting: it switches on its source's pump
// and master valve if they are off and queues its open, to be sent once they are on.
func (t *txn) launch(ctx context.Context, r waitingRun) error {
	var v lockedValve
	if t.known != nil && t.known.id == r.valveID {
		v = *t.known
	} else {
		var err error
		if v, err = t.valveInfo(ctx, r.valveID); err != nil {
			return err
		}
	}
	var after *string
	behind := ""
	var err error
	if r.sourceID != nil {
		ttl := t.s.cfg.CommandTTL
		if v.transport == TransportLoRaWAN {
			ttl = t.s.cfg.LoRaWANCommandTTL
		}
		if after, behind, err = t.actuatorsOn(ctx, *r.sourceID, r.durationS, ttl, r.id); err != nil {
			return err
		}
	}
	// A close still queued for this valve (an orphan, or a failed run's) must not reach the
	// controller after this open.
	t.supersedeCloses(v.controllerID, v.channel, fmt.Sprintf("superseded by run %d", r.id))
	ch, dur, id := v.channel, r.durationS, r.id
	cmd, err := t.enqueue(ctx, t.s, newCommand{controllerID: v.controllerID, runID: &id, action: ActionOpen,
		valve: &ch, durationS: &dur, reason: "start run", after: after, transport: v.transport})
	if err != nil {
		return err
	}
	note := fmt.Sprintf("open command %s queued for %s channel %d, %d s, expires %s%s",
		cmd.id, v.controllerUID, v.channel, dur, cmd.expiresAt.Format(time.RFC3339), behind)
	t.tx.later("admit run", `WITH u AS (UPDATE irrigation_runs SET state = 'starting', wait_reason = '', updated_at = $2
			WHERE id = $1 RETURNING id)
		INSERT INTO run_events (run_id, at, state, note) SELECT id, $2, 'starting', $3 FROM u`, r.id, t.now, note)
	return nil
}

// actuator is a pump or master valve of a water source.
type actuator struct {
	id, controllerID int64
	controllerUID    string
	channel          int
	role             string
	holdUntil        *time.Time
	holdCommand      *string
	holdState        *string // the state of hold_command
	holdAttempts     int
}

func (t *txn) actuators(ctx context.Context, sourceID int64, onOnly bool) ([]actuator, error) {
	rows, err := t.tx.Query(ctx, `SELECT v.id, v.controller_id, c.uid, v.channel, v.role, v.hold_until, v.hold_command::text,
			cmd.state, COALESCE(cmd.attempts, 0)
		FROM valves v JOIN controllers c ON c.id = v.controller_id LEFT JOIN commands cmd ON cmd.id = v.hold_command
		WHERE v.water_source_id = $1 AND v.role IN ('pump', 'master') AND (NOT $2 OR v.hold_until IS NOT NULL)
		ORDER BY v.role = 'pump', v.id`, sourceID, onOnly)
	if err != nil {
		return nil, interpretError(err, "actuators")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (actuator, error) {
		var a actuator
		err := r.Scan(&a.id, &a.controllerID, &a.controllerUID, &a.channel, &a.role, &a.holdUntil, &a.holdCommand, &a.holdState, &a.holdAttempts)
		return a, err
	})
	return out, interpretError(err, "actuators")
}

func inFlight(state *string) bool {
	return state != nil && (*state == CommandPending || *state == CommandSent)
}

// actuatorsOn makes sure the source's master valves and then pumps are on, each for long
// enough to outlast a zone run of durationS queued now, and returns the command a zone open
// must wait for (nil: none, they are on) and a note for the run's history. Each actuator
// switched on waits for the one before it; one already on but not for long enough gets an
// extension (an open with a longer duration_s, which the controller's timer restarts with).
//
// ttl is how long the zone's open may wait to be carried out: the actuators' duration covers
// it, so that a controller switching a pump off by itself (the server gone) does so after the
// zone valve closed by itself.
func (t *txn) actuatorsOn(ctx context.Context, sourceID int64, durationS int, ttl time.Duration, runID int64) (*string, string, error) {
	acts, err := t.actuators(ctx, sourceID, false)
	if err != nil || len(acts) == 0 {
		return nil, "", err
	}
	cfg := t.s.cfg
	dur := durationS + int(math.Ceil((ttl + cfg.ActuatorMargin).Seconds()))
	need := t.now.Add(time.Duration(dur) * time.Second)
	var last *string
	note := ""
	for _, a := range acts {
		ch := a.channel
		d := dur
		if a.holdUntil != nil {
			if inFlight(a.holdState) {
				last = a.holdCommand // not confirmed on yet: zone opens wait for it
			}
			if !a.holdUntil.Before(need.Add(-cfg.ActuatorMargin / 2)) {
				continue
			}
			// Keep it on longer; sent after the open that switched it on, never before.
			var after *string
			if inFlight(a.holdState) {
				after = a.holdCommand
			}
			q, err := t.enqueue(ctx, t.s, newCommand{controllerID: a.controllerID, action: ActionOpen, valve: &ch, durationS: &d,
				reason: fmt.Sprintf("keep the %s on for run %d", a.role, runID), after: after})
			if err != nil {
				return nil, "", err
			}
			if _, err := t.tx.Exec(ctx, `UPDATE valves SET hold_until = $2 WHERE id = $1`, a.id, need); err != nil {
				return nil, "", interpretError(err, "actuator hold")
			}
			note += fmt.Sprintf("; %s %s channel %d kept on (%s)", a.role, a.controllerUID, a.channel, q.id)
			continue
		}
		q, err := t.enqueue(ctx, t.s, newCommand{controllerID: a.controllerID, action: ActionOpen, valve: &ch, durationS: &d,
			reason: fmt.Sprintf("switch the %s on for run %d", a.role, runID), after: last})
		if err != nil {
			return nil, "", err
		}
		if _, err := t.tx.Exec(ctx, `UPDATE valves SET hold_until = $2, hold_command = $3 WHERE id = $1`, a.id, need, q.id); err != nil {
			return nil, "", interpretError(err, "actuator hold")
		}
		id := q.id
		last = &id
		note += fmt.Sprintf("; %s %s channel %d switched on first (%s)", a.role, a.controllerUID, a.channel, q.id)
	}
	if last != nil {
		note += "; the open is sent once that is acknowledged"
	}
	return last, note, nil
}

// actuatorsOffIfIdle switches the source's pumps and then master valves off when no run is
// admitted on it any more: an open not yet sent is withdrawn, otherwise a close is queued
// (after every close of its zone valves, in queue order).
func (t *txn) actuatorsOffIfIdle(ctx context.Context, farmID, sourceID int64) error {
	var n int
	if err := t.tx.QueryRow(ctx, `SELECT count(*) FROM irrigation_runs
		WHERE water_source_id = $1 AND state IN ('starting', 'open', 'closing')`, sourceID).Scan(&n); err != nil {
		return interpretError(err, "source runs")
	}
	if n > 0 {
		return nil
	}
	acts, err := t.actuators(ctx, sourceID, true)
	if err != nil {
		return err
	}
	// Pumps before master valves: the reverse of switching on.
	for i := len(acts) - 1; i >= 0; i-- {
		if err := t.switchOff(ctx, acts[i], "the last zone of its water source closed"); err != nil {
			return err
		}
	}
	return nil
}

// switchOff turns an actuator off: opens of it still in flight are withdrawn, and unless the
// only one was never sent, a close is queued.
func (t *txn) switchOff(ctx context.Context, a actuator, why string) error {
	tag, err := t.tx.Exec(ctx, `UPDATE commands SET state = 'expired', reason = $3
		WHERE controller_id = $1 AND valve = $2 AND action = 'open' AND state IN ('pending', 'sent')`,
		a.controllerID, a.channel, "withdrawn: "+why)
	if err != nil {
		return interpretError(err, "withdraw actuator opens")
	}
	neverSent := tag.RowsAffected() > 0 && a.holdState != nil && *a.holdState == CommandPending && a.holdAttempts == 0
	if neverSent {
		// Was anything of it ever sent? Then it may be on.
		var sent bool
		if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM commands WHERE controller_id = $1 AND valve = $2
			AND action = 'open' AND attempts > 0 AND created_at >= (SELECT created_at FROM commands WHERE id = $3))`,
			a.controllerID, a.channel, *a.holdCommand).Scan(&sent); err != nil {
			return interpretError(err, "actuator opens sent")
		}
		neverSent = !sent
	}
	if !neverSent {
		ch := a.channel
		if _, err := t.enqueue(ctx, t.s, newCommand{controllerID: a.controllerID, action: ActionClose, valve: &ch,
			reason: fmt.Sprintf("switch the %s off: %s", a.role, why)}); err != nil {
			return err
		}
	}
	_, err = t.tx.Exec(ctx, `UPDATE valves SET hold_until = NULL, hold_command = NULL WHERE id = $1`, a.id)
	return interpretError(err, "actuator off")
}

// actuatorFailed is called when the open that was to switch an actuator on failed (expired or
// rejected): it is off as far as anyone knows, so the next admission tries again; the runs
// waiting for it fail through their own expired opens.
func (t *txn) actuatorFailed(ctx context.Context, valveID int64, commandID string) error {
	_, err := t.tx.Exec(ctx, `UPDATE valves SET hold_until = NULL, hold_command = NULL
		WHERE id = $1 AND hold_command = $2`, valveID, commandID)
	return interpretError(err, "actuator failed")
}
