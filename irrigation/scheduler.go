package irrigation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aghali/aghali/irrigation/rule"
	"github.com/aghali/aghali/irrigation/schedule"
)

// schedulerLockKey is the advisory lock of the scheduler leader ("aghali-s" as a number).
const schedulerLockKey int64 = 0x616768616c692d73

// SchedulerConfig tunes a Scheduler. Zero values mean the defaults.
type SchedulerConfig struct {
	// Interval is how often the leader looks for due schedules, and a follower tries to take
	// over. Default 10 s.
	Interval time.Duration
	// FireGrace is how late an occurrence may still fire even when its run is shorter than
	// that (see the missed-fire policy in the package documentation). Default 2 min.
	FireGrace time.Duration
	// LockKey is the PostgreSQL advisory lock that elects the leader. Default "aghali-s".
	LockKey int64
}

// Scheduler fires due schedules. Of all the schedulers sharing a database, only the one holding
// the advisory lock (on a connection of its own) fires; when its connection dies the lock is
// released and another takes over within an Interval. Firing re-checks the schedule under its
// row lock and records it in the same transaction as the run, so even two leaders at once
// (a partition) never fire an occurrence twice.
type Scheduler struct {
	store   *Store
	cfg     SchedulerConfig
	log     *slog.Logger
	metrics *scheduleMetrics
	svc     service
	leader  atomic.Bool
}

// NewScheduler returns a Scheduler for store's schedules.
func NewScheduler(store *Store, cfg SchedulerConfig) (*Scheduler, error) {
	if store == nil {
		return nil, errors.New("irrigation: NewScheduler needs a store")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.FireGrace <= 0 {
		cfg.FireGrace = 2 * time.Minute
	}
	if cfg.LockKey == 0 {
		cfg.LockKey = schedulerLockKey
	}
	m, err := newScheduleMetrics(store.cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Scheduler{store: store, cfg: cfg, metrics: m, log: store.log.With("part", "scheduler"),
		svc: service{name: "scheduler"}}, nil
}

// IsLeader reports whether this scheduler holds the leader lock.
func (sc *Scheduler) IsLeader() bool { return sc.leader.Load() }

// Start campaigns for leadership and, while leader, fires due schedules every Interval, until
// Stop or the end of ctx.
func (sc *Scheduler) Start(ctx context.Context) error {
	return sc.svc.start(ctx, func(ctx context.Context) {
		var conn *dedicatedConn
		defer func() {
			if conn != nil {
				conn.close() // ends the session: the lock is released for the next leader
			}
			sc.setLeader(false)
		}()
		for {
			if sc.lead(ctx, &conn) {
				if _, err := sc.FireDue(ctx); err != nil && ctx.Err() == nil {
					sc.log.Error("fire schedules", "err", err)
				}
			}
			if !sleep(ctx, sc.cfg.Interval) {
				return
			}
		}
	})
}

// Stop ends the scheduler, releasing leadership, and waits for it.
func (sc *Scheduler) Stop() { sc.svc.stop() }

// lead keeps or campaigns for the leader lock and reports whether this scheduler holds it.
func (sc *Scheduler) lead(ctx context.Context, conn **dedicatedConn) bool {
	if *conn != nil && sc.leader.Load() {
		if err := (*conn).ping(ctx); err == nil {
			return true
		} else if ctx.Err() == nil {
			sc.log.Warn("scheduler lost its leader connection", "err", err)
		}
		(*conn).close()
		*conn = nil
		sc.setLeader(false)
	}
	if *conn == nil {
		c, err := sc.store.dedicate(ctx)
		if err != nil {
			if ctx.Err() == nil {
				sc.log.Warn("scheduler cannot connect", "err", err)
			}
			return false
		}
		*conn = c
	}
	ok, err := (*conn).tryAdvisoryLock(ctx, sc.cfg.LockKey)
	if err != nil {
		(*conn).close()
		*conn = nil
		return false
	}
	if ok {
		sc.log.Info("scheduler is the leader", "pid", (*conn).backendPID())
		sc.setLeader(true)
	}
	return ok
}

func (sc *Scheduler) setLeader(on bool) {
	sc.leader.Store(on)
	if on {
		sc.metrics.leader.Set(1)
	} else {
		sc.metrics.leader.Set(0)
	}
}

// FireDue deals with every enabled schedule that has an occurrence due: it fires the latest
// one if it is recent enough, and records the rest as missed. It returns how many runs it
// started. Leadership is the caller's business (Start checks it); FireDue is safe without it.
func (sc *Scheduler) FireDue(ctx context.Context) (int, error) {
	list, err := sc.store.enabledSchedules(ctx)
	if err != nil {
		return 0, err
	}
	now := sc.store.now()
	fired := 0
	var errs []error
	for _, s := range list {
		spec, err := sc.store.spec(s)
		if err != nil {
			sc.log.Error("schedule cannot be read", "schedule", s.ID, "cron", s.Cron, "tz", s.Timezone, "err", err)
			continue
		}
		if !spec.Decide(s.anchor(), now, sc.maxLate(s)).Due {
			continue
		}
		ok, err := sc.handle(ctx, s.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %d: %w", s.ID, err))
		}
		if ok {
			fired++
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fired, errors.Join(errs...)
}

func (sc *Scheduler) maxLate(s Schedule) time.Duration {
	return max(time.Duration(s.DurationS)*time.Second, sc.cfg.FireGrace)
}

// handle fires or skips one schedule's due occurrences in one transaction.
func (sc *Scheduler) handle(ctx context.Context, id int64) (fired bool, err error) {
	st := sc.store
	err = st.withTx(ctx, func(t *txn) error {
		s, err := t.lockSchedule(ctx, id)
		if err != nil {
			return err
		}
		if !s.Enabled {
			return nil
		}
		spec, err := st.spec(s)
		if err != nil {
			return err
		}
		d := spec.Decide(s.anchor(), t.now, sc.maxLate(s))
		if !d.Due {
			return nil // another scheduler dealt with it
		}
		var skip string
		if d.Fire {
			reason := describeOccurrence(s, spec, d)
			v, err := t.lockZoneValve(ctx, s.ZoneID)
			if err == nil {
				id := s.ID
				var run Run
				run, err = t.startRun(ctx, st, v, RunRequest{ValveID: v.id, DurationS: s.DurationS, Origin: OriginSchedule,
					OriginID: &id, Reason: reason})
				if err == nil {
					fired = true
					sc.log.Info("schedule fired", "schedule", s.ID, "zone", s.ZoneID, "run", run.ID, "reason", reason)
					if err := t.resolveAlert(ctx, s.FarmID, AlertScheduleSkipped, subjectSchedule(s.ID)); err != nil {
						return err
					}
				}
			}
			switch {
			case err == nil:
			case errors.Is(err, ErrBusy), errors.Is(err, errNoValve):
				// Both are decided before anything is written, so the transaction is intact.
				skip = fmt.Sprintf("%s not fired: %v", reason, err)
			default:
				return err
			}
		} else {
			skip = describeMissed(s, spec, d, sc.maxLate(s))
		}
		if skip != "" {
			sc.metrics.skipped.Inc()
			if err := t.raiseAlert(ctx, st, Alert{FarmID: s.FarmID, Kind: AlertScheduleSkipped, Severity: SeverityInfo,
				Subject: subjectSchedule(s.ID), Message: skip}); err != nil {
				return err
			}
		}
		return t.scheduleHandled(ctx, s.ID, t.now, fired)
	})
	if err != nil {
		return false, err
	}
	if fired {
		sc.metrics.fired.Inc()
	}
	return fired, nil
}

func localTime(t time.Time, spec *schedule.Spec) string {
	return t.In(spec.Location()).Format("2006-01-02 15:04 MST")
}

func describeOccurrence(s Schedule, spec *schedule.Spec, d schedule.Decision) string {
	msg := fmt.Sprintf("schedule %q (%s, %s): %s", s.Name, s.Cron, spec.Location(), localTime(d.Occurrence, spec))
	if d.Late >= time.Minute {
		msg += fmt.Sprintf(", %s late", rule.FormatDuration(d.Late))
	}
	if d.Missed > 0 {
		plus := ""
		if d.MissedCapped {
			plus = "+"
		}
		msg += fmt.Sprintf("; %d%s earlier occurrence(s) missed", d.Missed, plus)
	}
	return msg
}

func describeMissed(s Schedule, spec *schedule.Spec, d schedule.Decision, maxLate time.Duration) string {
	plus := ""
	if d.MissedCapped {
		plus = "+"
	}
	msg := fmt.Sprintf("schedule %q (%s, %s): %d%s occurrence(s) missed while no scheduler ran", s.Name, s.Cron, spec.Location(), d.Missed, plus)
	if !d.Occurrence.IsZero() {
		msg += fmt.Sprintf(", the latest at %s, %s ago, more than the %s it may be late", localTime(d.Occurrence, spec),
			rule.FormatDuration(d.Late), rule.FormatDuration(maxLate))
	}
	return msg + "; not fired"
}
