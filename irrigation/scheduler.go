package irrigation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/aghali/aghali/irrigation/rule"
	"github.com/aghali/aghali/irrigation/schedule"
)

// schedulerLockKey is the advisory lock of the scheduler leader ("aghali-s" as a number).
const schedulerLockKey int64 = 0x616768616c692d73

// SchedulerConfig tunes a Scheduler. Zero values mean the defaults.
type SchedulerConfig struct {
	// Interval is how often the leader looks for due schedules and cycles. Default 10 s.
	Interval time.Duration
	// FireGrace is how late an occurrence may still fire even when its run is shorter than
	// that (see the missed-fire policy in the package documentation). Default 2 min.
	FireGrace time.Duration
	// Leader elects the instance that fires. Nil: the scheduler campaigns itself, with LockKey
	// and an election interval of min(Interval, 2 s).
	Leader *Leader
	// LockKey is the advisory lock of the scheduler's own Leader. Default "aghali-s".
	LockKey int64
	// Decider checks skip conditions and skip rules, and answers the water-balance mode; the
	// leader also keeps ET0 and the water balances up to date through it. Nil: schedules with
	// skip conditions water without checking them, and water-balance schedules are skipped.
	Decider *Decider
	// UpkeepInterval is how often the leader brings ET0 and the water balances up to date.
	// Default 10 min.
	UpkeepInterval time.Duration
}

// Scheduler fires due schedules. Of all the schedulers sharing a database, only the one whose
// Leader holds the advisory lock fires; when it dies the lock is released and another takes
// over. Firing re-checks the schedule under its row lock and records it in the same transaction
// as the run, so even two leaders at once (a partition) never fire an occurrence twice.
type Scheduler struct {
	store     *Store
	cfg       SchedulerConfig
	leader    *Leader
	ownLeader bool
	log       *slog.Logger
	metrics   *scheduleMetrics
	svc       service
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
	if cfg.UpkeepInterval <= 0 {
		cfg.UpkeepInterval = 10 * time.Minute
	}
	m, err := newScheduleMetrics(store.cfg.Registerer)
	if err != nil {
		return nil, err
	}
	sc := &Scheduler{store: store, cfg: cfg, leader: cfg.Leader, metrics: m, log: store.log.With("part", "scheduler"),
		svc: service{name: "scheduler"}}
	if sc.leader == nil {
		if sc.leader, err = NewLeader(store, LeaderConfig{LockKey: cfg.LockKey, Interval: min(cfg.Interval, 2*time.Second)}); err != nil {
			return nil, err
		}
		sc.ownLeader = true
	}
	return sc, nil
}

// IsLeader reports whether this scheduler's instance leads.
func (sc *Scheduler) IsLeader() bool { return sc.leader.IsLeader() && sc.running() }

func (sc *Scheduler) running() bool {
	sc.svc.mu.Lock()
	defer sc.svc.mu.Unlock()
	return sc.svc.cancel != nil
}

// Start fires due schedules every Interval while this instance leads, until Stop or the end of
// ctx.
func (sc *Scheduler) Start(ctx context.Context) error {
	if sc.ownLeader {
		if err := sc.leader.Start(ctx); err != nil {
			return err
		}
	}
	err := sc.svc.start(ctx, func(ctx context.Context) {
		var lastUpkeep time.Time
		defer sc.metrics.leader.Set(0)
		for {
			if sc.leader.IsLeader() {
				sc.metrics.leader.Set(1)
				if _, err := sc.FireDue(ctx); err != nil && ctx.Err() == nil {
					sc.log.Error("fire schedules", "err", err)
				}
				if now := sc.store.now(); sc.cfg.Decider != nil && now.Sub(lastUpkeep) >= sc.cfg.UpkeepInterval {
					lastUpkeep = now
					sc.upkeep(ctx)
				}
			} else {
				sc.metrics.leader.Set(0)
			}
			if !sleep(ctx, sc.cfg.Interval) {
				return
			}
		}
	})
	if err != nil && sc.ownLeader {
		sc.leader.Stop()
	}
	return err
}

// Stop ends the scheduler (and its own leader campaign, releasing leadership) and waits.
func (sc *Scheduler) Stop() {
	sc.svc.stop()
	if sc.ownLeader {
		sc.leader.Stop()
	}
}

// upkeep brings ET0 and the water balances up to date.
func (sc *Scheduler) upkeep(ctx context.Context) {
	if err := sc.cfg.Decider.Weather.Update(ctx); err != nil && ctx.Err() == nil {
		sc.log.Warn("update ET0", "err", err)
	}
	if err := sc.cfg.Decider.Balance.Update(ctx); err != nil && ctx.Err() == nil {
		sc.log.Warn("update water balances", "err", err)
	}
}

// FireDue deals with every enabled schedule that has an occurrence due: it fires the latest
// one if it is recent enough (unless a skip condition, a skip rule or the water balance says
// not to), and records the rest as missed; then it starts the cycles that are due. It returns
// how many runs it started. Leadership is the caller's business (Start checks it); FireDue is
// safe without it.
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
		d := spec.Decide(s.anchor(), now, sc.maxLate(s))
		if !d.Due {
			continue
		}
		var plan *occurrencePlan
		if d.Fire {
			p, err := sc.plan(ctx, s, d, now)
			if err != nil {
				errs = append(errs, fmt.Errorf("schedule %d: %w", s.ID, err))
				continue
			}
			plan = &p
		}
		ok, err := sc.handle(ctx, s.ID, plan)
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
	n, err := sc.continueCycles(ctx, now)
	if err != nil {
		errs = append(errs, err)
	}
	return fired + n, errors.Join(errs...)
}

func (sc *Scheduler) maxLate(s Schedule) time.Duration {
	d := s.DurationS
	if s.CycleS > 0 && s.CycleS < d {
		d = s.CycleS
	}
	return max(time.Duration(d)*time.Second, sc.cfg.FireGrace)
}

// occurrencePlan is what an occurrence is to do, decided before its transaction.
type occurrencePlan struct {
	occurrence time.Time
	action     string // irrigate, skip, none (the water balance says no)
	origin     string // schedule, water_balance
	totalS     int    // seconds to water in all (irrigate)
	firstS     int    // the first cycle
	reason     string
	problem    string // the zone cannot be watered as asked: alert
	facts      map[string]any
}

// The facts skip conditions look at.
var (
	skipSoilSeries  = rule.Series{Func: rule.FuncMean, Metric: MetricSoilVWC, Window: time.Hour, Scope: rule.ScopeZone}
	skipFrostSeries = rule.Series{Func: rule.FuncMin, Metric: MetricAirTemp, Window: time.Hour, Scope: rule.ScopeFarm}
	skipWindSeries  = rule.Series{Func: rule.FuncMean, Metric: MetricWind, Window: 30 * time.Minute, Scope: rule.ScopeFarm}
)

// skipNeeds are the facts a schedule's skip conditions need.
func (s Schedule) skipNeeds() factNeeds {
	n := newNeeds()
	if s.SkipRainMM != nil {
		n.addVars(rule.VarRain24h)
	}
	if s.SkipForecastRainMM != nil {
		n.addVars(rule.VarForecastRain24h)
	}
	if s.SkipSoilVWC != nil {
		n.addSeries(skipSoilSeries)
	}
	if s.SkipFrostC != nil {
		n.addSeries(skipFrostSeries)
	}
	if s.SkipWindMS != nil {
		n.addSeries(skipWindSeries)
	}
	return n
}

// checkSkips applies a schedule's skip conditions to facts: the reason to skip ("" none), and
// notes on conditions that could not be checked for want of data (the occurrence then waters).
func (s Schedule) checkSkips(f rule.Facts, out map[string]any) (skip string, notes []string) {
	check := func(name string, v rule.Value, limit *float64, atLeast bool, what string) {
		if limit == nil {
			return
		}
		if v.Missing {
			out[name] = nil
			notes = append(notes, fmt.Sprintf("%s unknown (%s), not checked", what, v.Describe()))
			return
		}
		x, _ := v.V.(float64)
		out[name] = x
		if skip != "" {
			return
		}
		if atLeast && x >= *limit {
			skip = fmt.Sprintf("%s %s ≥ %s", what, rule.FormatValue(x), rule.FormatValue(*limit))
		}
		if !atLeast && x <= *limit {
			skip = fmt.Sprintf("%s %s ≤ %s", what, rule.FormatValue(x), rule.FormatValue(*limit))
		}
	}
	check(rule.VarRain24h, f.Vars[rule.VarRain24h], s.SkipRainMM, true, "rain over the last 24 h (mm)")
	check(rule.VarForecastRain24h, f.Vars[rule.VarForecastRain24h], s.SkipForecastRainMM, true, "forecast rain over the next 24 h (mm)")
	check(skipSoilSeries.Key(), f.Series[skipSoilSeries], s.SkipSoilVWC, true, "soil moisture over the last hour (m³/m³)")
	check(skipFrostSeries.Key(), f.Series[skipFrostSeries], s.SkipFrostC, false, "lowest air temperature over the last hour (°C)")
	check(skipWindSeries.Key(), f.Series[skipWindSeries], s.SkipWindMS, true, "mean wind over the last 30 min (m/s)")
	return skip, notes
}

// planOccurrence decides what an occurrence does from the facts of its moment: skip (a skip rule
// in effect, a skip condition), nothing (the water balance says the zone does not need water),
// or water how long, in how many cycles.
func planOccurrence(s Schedule, z *zoneContext, f rule.Facts, status *BalanceStatus, vetoedBy string, occ, now time.Time,
	describe string) occurrencePlan {
	p := occurrencePlan{occurrence: occ, origin: OriginSchedule, facts: map[string]any{}}
	if s.Mode == ModeWaterBalance {
		p.origin = OriginWaterBalance
	}
	if vetoedBy != "" {
		p.action, p.reason = DecisionSkip, describe+": skipped, "+vetoedBy
		return p
	}
	skip, notes := s.checkSkips(f, p.facts)
	if skip != "" {
		p.action, p.reason = DecisionSkip, describe+": skipped, "+skip
		return p
	}
	switch s.Mode {
	case ModeWaterBalance:
		if status == nil {
			p.action, p.reason = DecisionSkip, describe+": skipped, the water balance is not available here"
			return p
		}
		if status.Problem != "" {
			p.action, p.problem = DecisionSkip, status.Problem
			p.reason = describe + ": skipped, the zone has no water balance: " + status.Problem
			return p
		}
		p.facts[rule.VarDepletion] = round2(status.Depletion)
		p.facts[rule.VarRAW] = round2(status.RAW)
		p.facts[rule.VarTAW] = round2(status.TAW)
		p.facts[rule.VarKc] = round2(status.Kc)
		balance := fmt.Sprintf("depletion %.1f mm, RAW %.1f mm, TAW %.1f mm, Kc %.2f", status.Depletion, status.RAW, status.TAW, status.Kc)
		if !status.NeedsWater {
			p.action, p.reason = DecisionNone, describe+": the zone does not need water ("+balance+")"
			return p
		}
		if status.RuntimeS <= 0 {
			p.action = DecisionSkip
			p.problem = fmt.Sprintf("zone %q needs %.1f mm but has no application rate to turn it into a runtime", z.name, status.NetRefill)
			p.reason = describe + ": skipped, " + p.problem
			return p
		}
		p.totalS = status.RuntimeS
		p.reason = fmt.Sprintf("%s: water balance (%s): refill %.1f mm net, %.1f mm gross at %g mm/h (efficiency %g)",
			describe, balance, status.NetRefill, status.GrossRefill, *z.rate, status.Efficiency)
		if s.DurationS > 0 && p.totalS > s.DurationS {
			p.reason += fmt.Sprintf(", limited to the schedule's %s", rule.FormatDuration(time.Duration(s.DurationS)*time.Second))
			p.totalS = s.DurationS
		}
	default:
		pct := s.SeasonalPct
		if pct == 0 {
			pct = 100
		}
		p.totalS = int(math.Round(float64(s.DurationS) * float64(pct) / 100))
		p.reason = describe
		if pct != 100 {
			p.reason += fmt.Sprintf(": %s × seasonal adjustment %d %%", rule.FormatDuration(time.Duration(s.DurationS)*time.Second), pct)
		}
		if p.totalS <= 0 {
			p.action, p.reason = DecisionSkip, p.reason+": nothing to water"
			return p
		}
	}
	p.action, p.firstS = DecisionIrrigate, p.totalS
	if s.CycleS > 0 && p.totalS > s.CycleS {
		p.firstS = s.CycleS
		cycles := (p.totalS + s.CycleS - 1) / s.CycleS
		p.reason += fmt.Sprintf("; %s in %d cycles of up to %s, %s soak between", rule.FormatDuration(time.Duration(p.totalS)*time.Second),
			cycles, rule.FormatDuration(time.Duration(s.CycleS)*time.Second), rule.FormatDuration(time.Duration(s.SoakS)*time.Second))
	}
	if len(notes) > 0 {
		p.reason += "; " + strings.Join(notes, "; ")
	}
	return p
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// plan gathers the facts of an occurrence (outside any transaction) and decides what it does.
func (sc *Scheduler) plan(ctx context.Context, s Schedule, dec schedule.Decision, now time.Time) (occurrencePlan, error) {
	spec, err := sc.store.spec(s)
	if err != nil {
		return occurrencePlan{}, err
	}
	occ := dec.Occurrence
	describe := describeOccurrence(s, spec, dec)
	z, err := sc.store.zoneContext(ctx, s.ZoneID)
	if err != nil {
		return occurrencePlan{}, err
	}
	d := sc.cfg.Decider
	if d == nil {
		unchecked := s
		unchecked.SkipRainMM, unchecked.SkipForecastRainMM, unchecked.SkipSoilVWC, unchecked.SkipFrostC, unchecked.SkipWindMS = nil, nil, nil, nil, nil
		p := planOccurrence(unchecked, z, rule.Facts{}, nil, "", occ, now, describe)
		if s.hasSkips() && p.action == DecisionIrrigate {
			p.reason += "; skip conditions not checked (no readings)"
		}
		return p, nil
	}
	// Refresh the zone's rules so a skip rule speaks for now, then see which are in effect.
	if _, err := d.Engine.EvaluateZones(ctx, []int64{s.ZoneID}); err != nil && ctx.Err() == nil {
		sc.log.Warn("evaluate the zone's rules before a schedule", "schedule", s.ID, "err", err)
	}
	skips, err := sc.store.activeSkips(ctx, s.ZoneID)
	if err != nil {
		return occurrencePlan{}, err
	}
	vetoed := ""
	if len(skips) > 0 {
		vetoed = fmt.Sprintf("skip rule %q is in effect", skips[0].Name)
	}
	f, err := d.live().facts(ctx, z, now, s.skipNeeds())
	if err != nil {
		return occurrencePlan{}, err
	}
	var status *BalanceStatus
	if s.Mode == ModeWaterBalance && vetoed == "" {
		st, err := d.Balance.Status(ctx, s.ZoneID, now)
		if err != nil {
			return occurrencePlan{}, err
		}
		status = &st
	}
	return planOccurrence(s, z, f, status, vetoed, occ, now, describe), nil
}

// handle fires or skips one schedule's due occurrences in one transaction, following plan
// (made for the latest occurrence) when it still applies.
func (sc *Scheduler) handle(ctx context.Context, id int64, plan *occurrencePlan) (fired bool, err error) {
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
		if d.Fire && (plan == nil || !plan.occurrence.Equal(d.Occurrence)) {
			return nil // the clock moved on since the plan: the next round decides afresh
		}
		zoneID, schedID := s.ZoneID, s.ID
		decision := Decision{FarmID: s.FarmID, ZoneID: &zoneID, At: t.now, Origin: OriginSchedule, OriginID: &schedID}
		var skip string
		switch {
		case !d.Fire:
			skip = describeMissed(s, spec, d, sc.maxLate(s))
		case plan.action == DecisionIrrigate:
			reason := plan.reason
			run, err := sc.startCycle(ctx, t, s, plan.origin, plan.firstS, reason)
			switch {
			case err == nil:
				fired = true
				decision.Origin, decision.Action, decision.Reason, decision.RunID = plan.origin, DecisionIrrigate, run.Reason, &run.ID
				decision.Facts = plan.facts
				if z, zerr := st.zoneContext(ctx, s.ZoneID); zerr == nil {
					decision.withWater(z, run.DurationS)
				}
				if err := recordDecision(ctx, t.tx, decision); err != nil {
					return err
				}
				if err := t.schedulePending(ctx, s.ID, plan.totalS-plan.firstS, t.now.Add(time.Duration(plan.firstS+s.SoakS)*time.Second),
					plan.reason, plan.origin); err != nil {
					return err
				}
				if err := t.resolveAlert(ctx, s.FarmID, AlertScheduleSkipped, subjectSchedule(s.ID)); err != nil {
					return err
				}
			case errors.Is(err, ErrBusy), errors.Is(err, errNoValve):
				// Both are decided before anything is written, so the transaction is intact.
				skip = fmt.Sprintf("%s not fired: %v", reason, err)
			default:
				return err
			}
		default: // skip or none, by the plan
			decision.Origin, decision.Action, decision.Reason, decision.Facts = plan.origin, plan.action, plan.reason, plan.facts
			if err := recordDecision(ctx, t.tx, decision); err != nil {
				return err
			}
			if plan.problem != "" {
				if err := t.raiseAlert(ctx, st, Alert{FarmID: s.FarmID, Kind: AlertCannotWater, Severity: SeverityWarning,
					Subject: subjectZone(s.ZoneID), Message: fmt.Sprintf("Schedule %q: %s.", s.Name, plan.problem)}); err != nil {
					return err
				}
			}
			sc.log.Info("schedule occurrence not watered", "schedule", s.ID, "zone", s.ZoneID, "reason", plan.reason)
		}
		if skip != "" {
			sc.metrics.skipped.Inc()
			if err := t.raiseAlert(ctx, st, Alert{FarmID: s.FarmID, Kind: AlertScheduleSkipped, Severity: SeverityInfo,
				Subject: subjectSchedule(s.ID), Message: skip}); err != nil {
				return err
			}
			decision.Action, decision.Reason = DecisionSkip, skip
			if err := recordDecision(ctx, t.tx, decision); err != nil {
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

// startCycle starts a run of seconds on the schedule's zone.
func (sc *Scheduler) startCycle(ctx context.Context, t *txn, s Schedule, origin string, seconds int, reason string) (startedRun, error) {
	v, err := t.lockZoneValve(ctx, s.ZoneID)
	if err != nil {
		return startedRun{}, err
	}
	id := s.ID
	run, err := t.startRun(ctx, sc.store, v, RunRequest{ValveID: v.id, DurationS: seconds, Origin: origin, OriginID: &id, Reason: reason})
	if err == nil {
		sc.log.Info("schedule fired", "schedule", s.ID, "zone", s.ZoneID, "run", run.ID, "reason", run.Reason)
	}
	return run, err
}

// continueCycles starts the next cycle of every schedule whose soak is over. A cycle that finds
// the zone busy waits for the next round; one later than the missed-fire policy allows is
// dropped and recorded.
func (sc *Scheduler) continueCycles(ctx context.Context, now time.Time) (int, error) {
	list, err := sc.store.schedulesWithPendingCycles(ctx, now)
	if err != nil {
		return 0, err
	}
	started := 0
	var errs []error
	for _, s := range list {
		err := sc.store.withTx(ctx, func(t *txn) error {
			s, err := t.lockSchedule(ctx, s.ID)
			if err != nil {
				return err
			}
			if s.PendingAt == nil || s.PendingAt.After(t.now) || s.PendingS <= 0 {
				return nil
			}
			zoneID, schedID := s.ZoneID, s.ID
			decision := Decision{FarmID: s.FarmID, ZoneID: &zoneID, At: t.now, Origin: s.pendingOrigin, OriginID: &schedID}
			if late := t.now.Sub(*s.PendingAt); late > sc.maxLate(s) {
				decision.Action = DecisionSkip
				decision.Reason = fmt.Sprintf("%s: the remaining %s of cycle-and-soak dropped, %s late", s.pendingReason,
					rule.FormatDuration(time.Duration(s.PendingS)*time.Second), rule.FormatDuration(late))
				if err := recordDecision(ctx, t.tx, decision); err != nil {
					return err
				}
				return t.schedulePending(ctx, s.ID, 0, time.Time{}, "", "")
			}
			seconds := s.PendingS
			if s.CycleS > 0 && seconds > s.CycleS {
				seconds = s.CycleS
			}
			reason := fmt.Sprintf("%s; next cycle: %s of the remaining %s", s.pendingReason,
				rule.FormatDuration(time.Duration(seconds)*time.Second), rule.FormatDuration(time.Duration(s.PendingS)*time.Second))
			run, err := sc.startCycle(ctx, t, s, s.pendingOrigin, seconds, reason)
			if errors.Is(err, ErrBusy) || errors.Is(err, errNoValve) {
				return nil // the next round tries again
			}
			if err != nil {
				return err
			}
			started++
			decision.Action, decision.Reason, decision.RunID = DecisionIrrigate, run.Reason, &run.ID
			if z, zerr := sc.store.zoneContext(ctx, s.ZoneID); zerr == nil {
				decision.withWater(z, run.DurationS)
			}
			if err := recordDecision(ctx, t.tx, decision); err != nil {
				return err
			}
			return t.schedulePending(ctx, s.ID, s.PendingS-seconds, t.now.Add(time.Duration(seconds+s.SoakS)*time.Second),
				s.pendingReason, s.pendingOrigin)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %d cycles: %w", s.ID, err))
		}
	}
	return started, errors.Join(errs...)
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
