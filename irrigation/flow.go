package irrigation

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Flow: what meters say against what the open valves should let through. A controller's own
// meter (flow_lpm, volume_l in its state reports) meters its zone valves; a node's flow_lpm
// readings meter a zone or a water source (FlowMeter). Each reading is judged:
//
//   - flow above LeakFlowLPM while every valve it meters is closed (reported closed, no run
//     admitted) is a leak (critical alert);
//   - flow more than FlowTolerance above the nominal flow of the open valves is a burst or a
//     broken emitter line: alert, and every run it meters is stopped (automatic shut-off);
//   - flow more than FlowTolerance below it is a blocked filter or a closed hand valve: alert;
//   - nothing is judged within FlowSettle of a valve opening or closing.
//
// The totaliser's increase between two reports is shared among the runs open on the meter in
// proportion to their nominal flows (the volume applied per run).

// meterScope is what a meter measures.
type meterScope struct {
	farmID  int64
	subject string // alert subject: controller:<id> or meter:<id>
	name    string // for people
	valves  string // SQL condition on valves v with $1
	arg     int64
}

type scopedValve struct {
	id         int64
	nominal    *float64
	reported   string
	runID      *int64
	runState   *string
	lastChange *time.Time // the latest start or end of a run of the valve
}

func (t *txn) scopeValves(ctx context.Context, m meterScope) ([]scopedValve, error) {
	rows, err := t.tx.Query(ctx, `SELECT v.id, v.nominal_flow_lpm, v.state, r.id, r.state,
			(SELECT max(GREATEST(x.started_at, x.ended_at, CASE WHEN x.state = 'closing' THEN x.updated_at END))
				FROM irrigation_runs x WHERE x.valve_id = v.id)
		FROM valves v LEFT JOIN irrigation_runs r ON r.valve_id = v.id AND r.state IN ('starting', 'open', 'closing')
		WHERE v.role = 'zone' AND `+m.valves+` ORDER BY v.id`, m.arg)
	if err != nil {
		return nil, interpretError(err, "metered valves")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (scopedValve, error) {
		var v scopedValve
		err := r.Scan(&v.id, &v.nominal, &v.reported, &v.runID, &v.runState, &v.lastChange)
		return v, err
	})
}

// judgeFlow judges one flow reading of a meter at at.
func (t *txn) judgeFlow(ctx context.Context, m meterScope, flow float64, at time.Time) error {
	cfg := t.s.cfg
	valves, err := t.scopeValves(ctx, m)
	if err != nil {
		return err
	}
	var open, running int
	expected, known := 0.0, true
	var runs []int64
	for _, v := range valves {
		if v.lastChange != nil && at.Sub(*v.lastChange) < cfg.FlowSettle {
			return nil // a valve just opened or closed: the flow is still changing
		}
		if v.runID != nil {
			running++
			if *v.runState == RunOpen || *v.runState == RunClosing {
				runs = append(runs, *v.runID)
			}
		}
		if v.reported == ValveOpen {
			open++
			if v.nominal == nil {
				known = false
			} else {
				expected += *v.nominal
			}
		}
	}
	if open == 0 && running == 0 {
		if flow > cfg.LeakFlowLPM {
			return t.raiseAlert(ctx, t.s, Alert{FarmID: m.farmID, Kind: AlertLeak, Severity: SeverityCritical, Subject: m.subject,
				Message: fmt.Sprintf("Leak: %s meters %.1f L/min at %s while every valve it meters is closed.", m.name, flow, at.Format(time.RFC3339))})
		}
		return t.resolveAlert(ctx, m.farmID, AlertLeak, m.subject)
	}
	if err := t.resolveAlert(ctx, m.farmID, AlertLeak, m.subject); err != nil {
		return err
	}
	if !known || expected <= 0 || open == 0 {
		return nil
	}
	tol := cfg.FlowTolerance
	dev := (flow - expected) / expected
	switch {
	case dev > tol:
		msg := fmt.Sprintf("%s meters %.1f L/min, %.0f %% above the %.1f L/min the open valves should pass; ", m.name, flow, dev*100, expected)
		stopped := 0
		for _, id := range runs {
			if err := t.shutOff(ctx, id, fmt.Sprintf("automatic shut-off: flow %.1f L/min is %.0f %% above nominal %.1f L/min", flow, dev*100, expected)); err != nil {
				return err
			}
			stopped++
		}
		msg += fmt.Sprintf("%d run(s) shut off.", stopped)
		if err := t.resolveAlert(ctx, m.farmID, AlertFlowLow, m.subject); err != nil {
			return err
		}
		return t.raiseAlert(ctx, t.s, Alert{FarmID: m.farmID, Kind: AlertFlowHigh, Severity: SeverityCritical, Subject: m.subject, Message: msg})
	case dev < -tol:
		if err := t.resolveAlert(ctx, m.farmID, AlertFlowHigh, m.subject); err != nil {
			return err
		}
		return t.raiseAlert(ctx, t.s, Alert{FarmID: m.farmID, Kind: AlertFlowLow, Severity: SeverityWarning, Subject: m.subject,
			Message: fmt.Sprintf("%s meters %.1f L/min, %.0f %% below the %.1f L/min the open valves should pass (a blocked filter or a closed hand valve?).",
				m.name, flow, -dev*100, expected)})
	}
	for _, kind := range []string{AlertFlowHigh, AlertFlowLow} {
		if err := t.resolveAlert(ctx, m.farmID, kind, m.subject); err != nil {
			return err
		}
	}
	return nil
}

// shutOff stops a run for a safety reason (its valve and farm are locked by the caller's
// lockControllerValves, or the valve is read under the farm lock).
func (t *txn) shutOff(ctx context.Context, runID int64, note string) error {
	r, err := t.lockRun(ctx, runID)
	if err != nil || !r.Live() {
		return err
	}
	v, err := t.valveInfo(ctx, r.ValveID)
	if err != nil {
		return err
	}
	_, err = t.stopRun(ctx, t.s, v, r, note)
	return err
}

// shareVolume adds a totaliser's increase to the runs open on a meter, in proportion to their
// nominal flows (equally when one is unknown).
func (t *txn) shareVolume(ctx context.Context, m meterScope, litres float64) error {
	if litres <= 0 || math.IsNaN(litres) || math.IsInf(litres, 0) {
		return nil
	}
	valves, err := t.scopeValves(ctx, m)
	if err != nil {
		return err
	}
	type share struct {
		run  int64
		flow float64
	}
	var shares []share
	total, unknown := 0.0, false
	for _, v := range valves {
		if v.runID == nil || (*v.runState != RunOpen && *v.runState != RunClosing && v.reported != ValveOpen) {
			continue
		}
		f := 1.0
		if v.nominal == nil {
			unknown = true
		} else {
			f = *v.nominal
		}
		shares = append(shares, share{*v.runID, f})
		total += f
	}
	for _, sh := range shares {
		part := litres * sh.flow / total
		if unknown {
			part = litres / float64(len(shares))
		}
		if _, err := t.tx.Exec(ctx, `UPDATE irrigation_runs SET volume_l = COALESCE(volume_l, 0) + $2 WHERE id = $1`, sh.run, part); err != nil {
			return interpretError(err, "run volume")
		}
	}
	return nil
}

// controllerMeter is the scope of a controller's own meter: its zone valves.
func controllerMeter(farmID, controllerID int64, uid string) meterScope {
	return meterScope{farmID: farmID, subject: fmt.Sprintf("controller:%d", controllerID),
		name: fmt.Sprintf("controller %s's meter", uid), valves: `v.controller_id = $1`, arg: controllerID}
}

// FlowMeter is a node whose flow_lpm readings meter a zone or a water source.
type FlowMeter struct {
	ID            int64
	FarmID        int64
	NodeID        int64
	WaterSourceID *int64
	ZoneID        *int64
	Name          string
	CreatedAt     time.Time
}

const flowMeterColumns = `id, farm_id, node_id, water_source_id, zone_id, name, created_at`

func scanFlowMeter(row pgx.Row) (FlowMeter, error) {
	var m FlowMeter
	err := row.Scan(&m.ID, &m.FarmID, &m.NodeID, &m.WaterSourceID, &m.ZoneID, &m.Name, &m.CreatedAt)
	return m, interpretError(err, "flow meter")
}

// CreateFlowMeter registers a node as the flow meter of a zone or a water source of its farm.
func (s *Store) CreateFlowMeter(ctx context.Context, m FlowMeter) (FlowMeter, error) {
	if (m.WaterSourceID == nil) == (m.ZoneID == nil) {
		return FlowMeter{}, invalid("zone_id", "a meter meters either a zone or a water source")
	}
	if m.ZoneID != nil {
		if err := s.onFarm(ctx, "zones", *m.ZoneID, m.FarmID, "zone_id"); err != nil {
			return FlowMeter{}, err
		}
	} else if err := s.onFarm(ctx, "water_sources", *m.WaterSourceID, m.FarmID, "water_source_id"); err != nil {
		return FlowMeter{}, err
	}
	if err := s.onFarm(ctx, "nodes", m.NodeID, m.FarmID, "node_id"); err != nil {
		return FlowMeter{}, err
	}
	return scanFlowMeter(s.db.QueryRow(ctx, `INSERT INTO flow_meters (farm_id, node_id, water_source_id, zone_id, name, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+flowMeterColumns, m.FarmID, m.NodeID, m.WaterSourceID, m.ZoneID, m.Name, s.now()))
}

// FlowMeters lists a farm's node flow meters.
func (s *Store) FlowMeters(ctx context.Context, farmID int64) ([]FlowMeter, error) {
	rows, err := s.db.Query(ctx, `SELECT `+flowMeterColumns+` FROM flow_meters WHERE farm_id = $1 ORDER BY id`, farmID)
	if err != nil {
		return nil, interpretError(err, "flow meters")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (FlowMeter, error) { return scanFlowMeter(r) })
}

// DeleteFlowMeter removes a flow meter registration (the node stays).
func (s *Store) DeleteFlowMeter(ctx context.Context, id int64) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM flow_meters WHERE id = $1`, id)
	if err != nil {
		return interpretError(err, "delete flow meter")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("flow meter %d: %w", id, ErrNotFound)
	}
	return nil
}

// FlowMeter returns one flow meter.
func (s *Store) FlowMeter(ctx context.Context, id int64) (FlowMeter, error) {
	return scanFlowMeter(s.db.QueryRow(ctx, `SELECT `+flowMeterColumns+` FROM flow_meters WHERE id = $1`, id))
}

// judgeNodeMeters judges the latest flow_lpm of every node meter that reported since since
// (the run monitor's sweep).
func (s *Store) judgeNodeMeters(ctx context.Context, since time.Time) error {
	rows, err := s.db.Query(ctx, `SELECT m.id, m.farm_id, m.water_source_id, m.zone_id, n.uid, l.value, l.ts
		FROM flow_meters m JOIN nodes n ON n.id = m.node_id
		JOIN node_latest l ON l.node_id = m.node_id AND l.metric_id = (SELECT id FROM metrics WHERE name = 'flow_lpm')
		WHERE l.ts > $1 ORDER BY m.id`, since)
	if err != nil {
		return interpretError(err, "node meters")
	}
	type reading struct {
		id, farm     int64
		source, zone *int64
		uid          string
		flow         float64
		at           time.Time
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (reading, error) {
		var x reading
		err := r.Scan(&x.id, &x.farm, &x.source, &x.zone, &x.uid, &x.flow, &x.at)
		return x, err
	})
	if err != nil {
		return interpretError(err, "node meters")
	}
	for _, x := range list {
		m := meterScope{farmID: x.farm, subject: fmt.Sprintf("meter:%d", x.id), name: fmt.Sprintf("flow meter %s", x.uid)}
		if x.zone != nil {
			m.valves, m.arg = `v.zone_id = $1`, *x.zone
		} else {
			m.valves, m.arg = `v.zone_id IN (SELECT id FROM zones WHERE water_source_id = $1)`, *x.source
		}
		err := s.withTx(ctx, func(t *txn) error {
			if err := t.lockFarm(ctx, x.farm); err != nil {
				return err
			}
			return t.judgeFlow(ctx, m, x.flow, t.now)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
