package irrigation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// RunMonitorConfig tunes a RunMonitor. Zero values mean the defaults.
type RunMonitorConfig struct {
	// Interval between sweeps. Default 5 s.
	Interval time.Duration
	// CloseGrace is how long past its ends_at an open run waits for the controller's report
	// that the valve closed by itself before a close is sent. Default 30 s.
	CloseGrace time.Duration
	// BatchSize is the most runs looked at per sweep. Default 200.
	BatchSize int
	// MaxWait is the longest a run waits for its water source (capacity, power, energy
	// window) before it is aborted with an alert. Default 24 h.
	MaxWait time.Duration
}

// RunMonitor closes out runs that the controller's acks and reports have not: open runs past
// their end, and runs whose commands are all settled without the run having moved on (after a
// crash, say). It is what makes a restart resume, retry or close out every run. Several
// instances may run at once: every change re-checks the run under its lock.
type RunMonitor struct {
	store *Store
	cfg   RunMonitorConfig
	log   *slog.Logger
	svc   service
}

// NewRunMonitor returns a RunMonitor for store.
func NewRunMonitor(store *Store, cfg RunMonitorConfig) (*RunMonitor, error) {
	if store == nil {
		return nil, errors.New("irrigation: NewRunMonitor needs a store")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.CloseGrace <= 0 {
		cfg.CloseGrace = 30 * time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 200
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 24 * time.Hour
	}
	return &RunMonitor{store: store, cfg: cfg, log: store.log.With("part", "run-monitor"), svc: service{name: "run monitor"}}, nil
}

// Start sweeps every Interval until Stop or the end of ctx.
func (m *RunMonitor) Start(ctx context.Context) error {
	return m.svc.start(ctx, func(ctx context.Context) {
		for {
			if _, err := m.Sweep(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("sweep runs", "err", err)
			}
			if !sleep(ctx, m.cfg.Interval) {
				return
			}
		}
	})
}

// Stop ends the monitor and waits for it.
func (m *RunMonitor) Stop() { m.svc.stop() }

// Sweep looks at every run needing attention once and returns how many it changed: it admits
// waiting runs whose source now allows them (an energy window opened, capacity freed by a run
// that ended on another instance) and aborts those that waited too long, closes out open runs
// past their end, settles runs whose commands are all finished, and judges node flow meters.
func (m *RunMonitor) Sweep(ctx context.Context) (int, error) {
	var errs []error
	if err := m.admitWaiting(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := m.store.judgeNodeMeters(ctx, m.store.now().Add(-5*time.Minute)); err != nil {
		errs = append(errs, err)
	}
	runs, err := m.store.runsNeedingAttention(ctx, m.store.now().Add(-m.cfg.CloseGrace), m.cfg.BatchSize)
	if err != nil {
		return 0, errors.Join(append(errs, err)...)
	}
	changed := 0
	for _, r := range runs {
		did, err := m.settle(ctx, r.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("run %d: %w", r.ID, err))
		}
		if did {
			changed++
		}
	}
	return changed, errors.Join(errs...)
}

func (m *RunMonitor) settle(ctx context.Context, runID int64) (changed bool, err error) {
	s := m.store
	err = s.withTx(ctx, func(t *txn) error {
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
		switch r.State {
		case RunOpen:
			if r.EndsAt == nil || t.now.Before(r.EndsAt.Add(m.cfg.CloseGrace)) {
				return nil
			}
			changed = true
			if v.state == ValveClosed && v.stateAt != nil && r.StartedAt != nil && !v.stateAt.Before(*r.StartedAt) {
				return t.endRun(ctx, r.ID, RunDone, fmt.Sprintf("controller reported the valve closed at %s", v.stateAt.Format(time.RFC3339)))
			}
			_, err := t.closeRun(ctx, s, v, r.ID, fmt.Sprintf("%s past ends_at with no report of the valve closing", m.cfg.CloseGrace))
			return err
		case RunPlanned, RunStarting:
			open, err := t.lockRunCommand(ctx, r.ID, ActionOpen)
			switch {
			case errors.Is(err, ErrNotFound):
				changed = true
				return t.endRun(ctx, r.ID, RunFailed, "no open command was queued")
			case err != nil:
				return err
			case open.State == CommandPending || open.State == CommandSent:
				return nil // still in the dispatcher's hands
			case open.State == CommandAcked && open.AckedAt != nil:
				changed = true
				ends := open.AckedAt.Add(time.Duration(r.DurationS) * time.Second)
				return t.setRunState(ctx, r.ID, RunOpen, "open command was acknowledged", runTimes{startedAt: *open.AckedAt, endsAt: ends})
			}
			changed = true
			reason := fmt.Sprintf("open command %s %s: %s", open.ID, open.State, open.Reason)
			if err := t.endRun(ctx, r.ID, RunFailed, reason); err != nil {
				return err
			}
			return t.raiseAlert(ctx, s, Alert{FarmID: r.FarmID, Kind: AlertCommandExpired, Severity: SeverityWarning,
				Subject: subjectValve(v.id), Message: fmt.Sprintf("Run %d did not start: %s.", r.ID, reason)})
		case RunClosing:
			closeCmd, err := t.lockRunCommand(ctx, r.ID, ActionClose)
			switch {
			case errors.Is(err, ErrNotFound):
				changed = true
				_, err := t.closeRun(ctx, s, v, r.ID, "closing with no close command")
				return err
			case err != nil:
				return err
			case closeCmd.State == CommandPending || closeCmd.State == CommandSent:
				return nil
			case closeCmd.State == CommandAcked,
				v.state == ValveClosed && v.stateAt != nil && !v.stateAt.Before(r.UpdatedAt):
				changed = true
				return t.endRun(ctx, r.ID, RunDone, "the valve was confirmed closed")
			}
			changed = true
			reason := fmt.Sprintf("close command %s %s: %s; the controller closes the valve by itself when duration_s runs out", closeCmd.ID, closeCmd.State, closeCmd.Reason)
			if err := t.endRun(ctx, r.ID, RunFailed, reason); err != nil {
				return err
			}
			return t.raiseAlert(ctx, s, Alert{FarmID: r.FarmID, Kind: AlertCommandExpired, Severity: SeverityCritical,
				Subject: subjectValve(v.id), Message: fmt.Sprintf("Run %d: %s.", r.ID, reason)})
		}
		return nil
	})
	return changed && err == nil, err
}

// admitWaiting runs each water source's queue once, and aborts runs that waited past MaxWait.
func (m *RunMonitor) admitWaiting(ctx context.Context) error {
	s := m.store
	rows, err := s.db.Query(ctx, `SELECT DISTINCT z.farm_id, r.water_source_id FROM irrigation_runs r
		JOIN zones z ON z.id = r.zone_id WHERE r.state = 'planned'`)
	if err != nil {
		return interpretError(err, "waiting runs")
	}
	type queue struct {
		farm   int64
		source *int64
	}
	queues, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (queue, error) {
		var q queue
		err := r.Scan(&q.farm, &q.source)
		return q, err
	})
	if err != nil {
		return interpretError(err, "waiting runs")
	}
	var errs []error
	for _, q := range queues {
		err := s.withTx(ctx, func(t *txn) error {
			if err := t.lockFarm(ctx, q.farm); err != nil {
				return err
			}
			stale, err := s.queryRuns(ctx, t.tx, `WHERE z.farm_id = $1 AND r.water_source_id IS NOT DISTINCT FROM $2
				AND r.state = 'planned' AND r.created_at <= $3 ORDER BY r.id`, q.farm, q.source, t.now.Add(-m.cfg.MaxWait))
			if err != nil {
				return err
			}
			for _, r := range stale {
				why := fmt.Sprintf("gave up after waiting %s for its water source (%s)", m.cfg.MaxWait, r.WaitReason)
				if err := t.endRun(ctx, r.ID, RunAborted, why); err != nil {
					return err
				}
				if err := t.raiseAlert(ctx, s, Alert{FarmID: r.FarmID, Kind: AlertRunNotAdmitted, Severity: SeverityWarning,
					Subject: subjectZone(r.ZoneID), Message: fmt.Sprintf("Run %d of zone %d %s; the zone was not watered.", r.ID, r.ZoneID, why)}); err != nil {
					return err
				}
			}
			if q.source != nil {
				return t.admitQueue(ctx, q.farm, *q.source)
			}
			// Runs with no source are admitted when they are created; one still planned lost
			// its source while it waited.
			if st, err := t.stopInForce(ctx, q.farm); err != nil || st != nil {
				return err
			}
			loose, err := s.queryRuns(ctx, t.tx, `WHERE z.farm_id = $1 AND r.water_source_id IS NULL AND r.state = 'planned' ORDER BY r.id`, q.farm)
			if err != nil {
				return err
			}
			for _, r := range loose {
				lr, err := t.lockRun(ctx, r.ID)
				if err != nil {
					return err
				}
				if lr.State != RunPlanned {
					continue
				}
				if err := t.launch(ctx, waitingRun{id: lr.ID, durationS: lr.DurationS, valveID: lr.ValveID}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("farm %d queue: %w", q.farm, err))
		}
	}
	return errors.Join(errs...)
}
