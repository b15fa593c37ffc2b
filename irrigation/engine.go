package irrigation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation/rule"
)

// ZoneReadings gives rules the readings of a zone's nodes. Package fieldnodes satisfies it.
type ZoneReadings interface {
	// ZoneAggregate is agg (mean, min, max or last) of metric over the readings of the zone's
	// nodes taken since since, and how many readings that was.
	ZoneAggregate(ctx context.Context, zoneID int64, metric, agg string, since time.Time) (value float64, n int, err error)
	// ZonesOfNodes returns the zones the nodes are in.
	ZonesOfNodes(ctx context.Context, nodeIDs []int64) ([]int64, error)
}

// EngineConfig tunes an Engine. Zero values mean the defaults.
type EngineConfig struct {
	// Interval between evaluations of every enabled rule; new readings also trigger the
	// rules of their zones at once. Default 1 min.
	Interval time.Duration
	// MaxPending is how many distinct nodes with new readings may wait for evaluation; past it
	// the next pass evaluates every rule instead. Default 100,000.
	MaxPending int
}

// Engine evaluates threshold rules: for the zones of nodes that just got readings (it is the
// fieldnodes.ReadingsListener), and all of them periodically. A rule whose condition holds
// starts a run on its zone's first valve, with origin "rule" and the condition as the reason.
type Engine struct {
	store    *Store
	readings ZoneReadings
	cfg      EngineConfig
	log      *slog.Logger
	metrics  *ruleMetrics
	svc      service

	mu      sync.Mutex
	pending map[int64]struct{} // nodes with readings not yet evaluated
	all     bool               // too many pending: evaluate everything
	wake    chan struct{}
}

var _ fieldnodes.ReadingsListener = (*Engine)(nil)

// NewEngine returns an Engine for store's rules over readings.
func NewEngine(store *Store, readings ZoneReadings, cfg EngineConfig) (*Engine, error) {
	if store == nil || readings == nil {
		return nil, errors.New("irrigation: NewEngine needs a store and readings")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100_000
	}
	m, err := newRuleMetrics(store.cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Engine{
		store: store, readings: readings, cfg: cfg, metrics: m,
		log:     store.log.With("part", "rules"),
		svc:     service{name: "rule engine"},
		pending: map[int64]struct{}{},
		wake:    make(chan struct{}, 1),
	}, nil
}

// ReadingsCommitted notes that nodes got readings and returns at once: the evaluation happens
// on the engine's own goroutine, and bursts are coalesced into one pass.
func (e *Engine) ReadingsCommitted(_ context.Context, nodeIDs []int64) {
	if len(nodeIDs) == 0 {
		return
	}
	e.mu.Lock()
	if !e.all {
		for _, id := range nodeIDs {
			e.pending[id] = struct{}{}
		}
		if len(e.pending) > e.cfg.MaxPending {
			e.all = true
			clear(e.pending)
		}
	}
	e.mu.Unlock()
	poke(e.wake)
}

func (e *Engine) takePending() (nodes []int64, all bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	all, e.all = e.all, false
	nodes = make([]int64, 0, len(e.pending))
	for id := range e.pending {
		nodes = append(nodes, id)
	}
	clear(e.pending)
	return nodes, all
}

// Start evaluates rules as readings arrive and every Interval, until Stop or the end of ctx.
func (e *Engine) Start(ctx context.Context) error {
	return e.svc.start(ctx, func(ctx context.Context) {
		ticker := time.NewTicker(e.cfg.Interval)
		defer ticker.Stop()
		for {
			var err error
			select {
			case <-ctx.Done():
				return
			case <-e.wake:
				nodes, all := e.takePending()
				if all {
					_, err = e.EvaluateAll(ctx)
				} else {
					_, err = e.EvaluateNodes(ctx, nodes)
				}
			case <-ticker.C:
				_, err = e.EvaluateAll(ctx)
			}
			if err != nil && ctx.Err() == nil {
				e.log.Error("evaluate rules", "err", err)
			}
		}
	})
}

// Stop ends the engine and waits for it.
func (e *Engine) Stop() { e.svc.stop() }

// EvaluateAll evaluates every enabled rule once and returns how many started a run.
func (e *Engine) EvaluateAll(ctx context.Context) (int, error) {
	rules, err := e.store.enabledRules(ctx, nil)
	if err != nil {
		return 0, err
	}
	return e.evaluate(ctx, rules)
}

// EvaluateNodes evaluates the enabled rules of the zones of these nodes.
func (e *Engine) EvaluateNodes(ctx context.Context, nodeIDs []int64) (int, error) {
	if len(nodeIDs) == 0 {
		return 0, nil
	}
	zones, err := e.readings.ZonesOfNodes(ctx, nodeIDs)
	if err != nil {
		return 0, fmt.Errorf("zones of nodes: %w", err)
	}
	return e.EvaluateZones(ctx, zones)
}

// EvaluateZones evaluates the enabled rules of these zones.
func (e *Engine) EvaluateZones(ctx context.Context, zoneIDs []int64) (int, error) {
	if len(zoneIDs) == 0 {
		return 0, nil
	}
	rules, err := e.store.enabledRules(ctx, zoneIDs)
	if err != nil {
		return 0, err
	}
	return e.evaluate(ctx, rules)
}

func (e *Engine) evaluate(ctx context.Context, rules []Rule) (int, error) {
	fired := 0
	var errs []error
	for _, r := range rules {
		ok, err := e.evaluateRule(ctx, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", r.ID, err))
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

func (e *Engine) evaluateRule(ctx context.Context, r Rule) (bool, error) {
	now := e.store.now()
	if ready, _ := rule.Ready(r.LastFiredAt, time.Duration(r.CooldownS)*time.Second, now); !ready {
		return false, nil
	}
	e.metrics.evaluated.Inc()
	cond := r.condition()
	value, n, err := e.readings.ZoneAggregate(ctx, r.ZoneID, r.Metric, r.Aggregate, now.Add(-cond.Window))
	if err != nil {
		return false, fmt.Errorf("aggregate %s %s of zone %d: %w", r.Aggregate, r.Metric, r.ZoneID, err)
	}
	res := cond.Evaluate(value, n)
	if !res.Fire {
		e.log.Debug("rule holds back", "rule", r.ID, "zone", r.ZoneID, "reason", res.Reason)
		return false, nil
	}
	run, err := e.fire(ctx, r.ID, res.Reason)
	switch {
	case errors.Is(err, ErrBusy):
		e.log.Debug("rule condition holds but the zone is busy", "rule", r.ID, "zone", r.ZoneID, "reason", res.Reason, "busy", err)
		return false, nil
	case errors.Is(err, errNotFired):
		return false, nil
	case err != nil:
		return false, err
	}
	e.metrics.fired.Inc()
	e.log.Info("rule fired", "rule", r.ID, "zone", r.ZoneID, "run", run.ID, "reason", res.Reason)
	return true, nil
}

// errNotFired: the rule changed (disabled, fired by another instance) before it could fire.
var errNotFired = errors.New("rule not fired")

// fire starts the rule's run and records the firing in one transaction, re-checking the rule
// under its lock so that two engines never both fire it within its cooldown.
func (e *Engine) fire(ctx context.Context, ruleID int64, reason string) (Run, error) {
	s := e.store
	var run Run
	err := s.withTx(ctx, func(t *txn) error {
		r, err := t.lockRule(ctx, ruleID)
		if err != nil {
			return err
		}
		if ready, _ := rule.Ready(r.LastFiredAt, time.Duration(r.CooldownS)*time.Second, t.now); !r.Enabled || !ready {
			return errNotFired
		}
		v, err := t.lockZoneValve(ctx, r.ZoneID)
		if errors.Is(err, errNoValve) {
			if err := t.raiseAlert(ctx, s, Alert{FarmID: r.FarmID, Kind: AlertZoneWithoutValve, Severity: SeverityWarning,
				Subject: subjectZone(r.ZoneID),
				Message: fmt.Sprintf("Rule %q would water zone %d (%s) but the zone has no valve.", r.Name, r.ZoneID, reason)}); err != nil {
				return err
			}
			return nil // commit the alert; nothing fired
		}
		if err != nil {
			return err
		}
		id := r.ID
		run, err = t.startRun(ctx, s, v, RunRequest{ValveID: v.id, DurationS: r.DurationS, Origin: OriginRule, OriginID: &id,
			Reason: fmt.Sprintf("rule %q: %s", r.Name, reason)})
		if err != nil {
			return err
		}
		if err := t.ruleFired(ctx, r.ID); err != nil {
			return err
		}
		return t.resolveAlert(ctx, r.FarmID, AlertZoneWithoutValve, subjectZone(r.ZoneID))
	})
	if err == nil && run.ID == 0 {
		return Run{}, errNotFired
	}
	return run, err
}
