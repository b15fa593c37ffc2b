package irrigation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation/rule"
)

// ZoneReadings gives rules the readings of a zone's nodes. Package fieldnodes satisfies it.
type ZoneReadings interface {
	// ZoneAggregates is, for each of these zones, agg (mean, min, max, last or trend) of metric
	// over the readings of the zone's nodes taken in [since, until], and how many readings that
	// was (for last: how many nodes); a zone without any is absent.
	ZoneAggregates(ctx context.Context, zoneIDs []int64, metric, agg string, since, until time.Time) (map[int64]fieldnodes.Aggregate, error)
}

// Leadership tells whether this instance is the one that runs the periodic decisions.
type Leadership interface {
	IsLeader() bool
}

// EngineConfig tunes an Engine. Zero values mean the defaults.
type EngineConfig struct {
	// Interval between evaluations of every enabled rule; new readings also trigger the
	// rules of their zones at once. Default 1 min.
	Interval time.Duration
	// Leader, when set, restricts the periodic evaluation to the instance that leads (readings
	// are still evaluated where they are ingested). Nil: every instance evaluates periodically.
	Leader Leadership
	// MaxPending is how many distinct nodes with new readings may wait for evaluation; past it
	// the next pass evaluates every rule instead. Default 100,000.
	MaxPending int
	// Workers is how many zones are evaluated at once. Default 4.
	Workers int
	// ZoneTimeout bounds one zone's evaluation: gathering its facts and acting. Default 10 s.
	ZoneTimeout time.Duration
	// Weather and Balance answer weather and water-balance facts. Default: built on the
	// engine's store and readings with their defaults.
	Weather *Weather
	Balance *WaterBalance
}

// Engine evaluates rules: for the zones of nodes that just got readings (it is the
// fieldnodes.ReadingsListener), and all of them periodically. Each rule applies to its zone, or
// to every zone of its farm; per zone, rules are evaluated highest priority first, and a skip
// rule in effect vetoes the irrigation of rules of its priority or lower. A rule that acts
// starts a run on the zone's first valve (origin "rule", its condition and the facts it saw as
// the reason), raises or resolves an alert, or starts or stops vetoing; every act is recorded
// as a decision.
type Engine struct {
	store    *Store
	readings Readings
	weather  *Weather
	balance  *WaterBalance
	cfg      EngineConfig
	log      *slog.Logger
	metrics  *ruleMetrics
	svc      service
	programs programCache
	// decide is the time from readings being committed (by the ingest) to a rule's run
	// being queued in the outbox.
	decide prometheus.Histogram
	// book is the rule book of the passes for fresh readings (nil: to be read); bookMu makes
	// passes that find none wait for one read, and bookErr (under bookMu) is why the last read
	// failed, until the next refresh (every Interval).
	book    atomic.Pointer[ruleBook]
	bookMu  sync.Mutex
	bookErr error

	// events counts the passes for fresh readings under way; the periodic pass gives way to them.
	events   atomic.Int32
	idle     chan struct{} // poked when events falls to 0
	periodic atomic.Bool   // a periodic pass is under way

	mu       sync.Mutex
	pending  map[int64]time.Time // nodes with readings not yet evaluated: when the oldest were committed
	since    time.Time           // when the oldest pending readings of any node were committed
	all      bool                // too many pending: evaluate everything
	wake     chan struct{}
	lastPass map[int64]time.Time // (under mu) when each zone was last in a pass for fresh readings
}

// passZones is the most zones a pass for fresh readings takes from the book; the others wait
// for the next pass (the zones evaluated longest ago go first). Under a busy ingest, whose
// every batch tells of hundreds of zones, passes so stay short and a zone told of for the first
// time in a while is evaluated at once, not behind every busy zone.
const passZones = 64

// fairShare splits pending nodes into those of the passZones zones (known to the rule book)
// evaluated longest ago, with the nodes the book does not know, and the rest, to be told again.
func (e *Engine) fairShare(nodes []int64) (now, later []int64) {
	book := e.book.Load()
	if book == nil || len(nodes) <= passZones {
		return nodes, nil
	}
	zones, _ := book.zonesOf(nodes)
	if len(zones) <= passZones {
		return nodes, nil
	}
	last := make(map[int64]time.Time, len(zones))
	e.mu.Lock()
	for _, z := range zones {
		last[z] = e.lastPass[z]
	}
	e.mu.Unlock()
	slices.SortStableFunc(zones, func(a, b int64) int { return last[a].Compare(last[b]) })
	taken := make(map[int64]bool, passZones)
	for _, z := range zones[:passZones] {
		taken[z] = true
	}
	for _, n := range nodes {
		if z, ok := book.byNode[n]; !ok || taken[z] {
			now = append(now, n)
		} else {
			later = append(later, n)
		}
	}
	return now, later
}

// passed notes that these zones are in a pass for fresh readings that began at at.
func (e *Engine) passed(zones []int64, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, z := range zones {
		e.lastPass[z] = at
	}
}

var _ fieldnodes.ReadingsListener = (*Engine)(nil)

// NewEngine returns an Engine for store's rules over readings.
func NewEngine(store *Store, readings Readings, cfg EngineConfig) (*Engine, error) {
	if store == nil || readings == nil {
		return nil, errors.New("irrigation: NewEngine needs a store and readings")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 100_000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.ZoneTimeout <= 0 {
		cfg.ZoneTimeout = 10 * time.Second
	}
	var err error
	if cfg.Weather == nil {
		if cfg.Weather, err = NewWeather(store, readings, WeatherConfig{}); err != nil {
			return nil, err
		}
	}
	if cfg.Balance == nil {
		if cfg.Balance, err = NewWaterBalance(store, readings, cfg.Weather, BalanceConfig{}); err != nil {
			return nil, err
		}
	}
	m, err := newRuleMetrics(store.cfg.Registerer)
	if err != nil {
		return nil, err
	}
	decide, err := register(store.cfg.Registerer, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "aghali_irrigation_decide_seconds",
		Help:    "From readings being committed to the run a rule started on them being queued.",
		Buckets: []float64{.001, .0025, .005, .01, .015, .02, .025, .05, .1, .25, .5, 1, 2.5},
	}))
	if err != nil {
		return nil, err
	}
	return &Engine{
		store: store, readings: readings, weather: cfg.Weather, balance: cfg.Balance, cfg: cfg, metrics: m, decide: decide,
		log:      store.log.With("part", "rules"),
		svc:      service{name: "rule engine"},
		programs: programCache{m: map[string]*rule.Program{}},
		pending:  map[int64]time.Time{},
		lastPass: map[int64]time.Time{},
		wake:     make(chan struct{}, 1),
		idle:     make(chan struct{}, 1),
	}, nil
}

// programCache keeps compiled conditions by their text; they are immutable.
type programCache struct {
	mu sync.Mutex
	m  map[string]*rule.Program
}

const maxCachedPrograms = 10_000

func (c *programCache) get(src string) (*rule.Program, error) {
	c.mu.Lock()
	p, ok := c.m[src]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := rule.Compile(src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedPrograms {
		clear(c.m)
	}
	c.m[src] = p
	c.mu.Unlock()
	return p, nil
}

// compile prepares a stored rule for evaluation, from the cache.
func (e *Engine) compile(r Rule) (*compiled, error) {
	c := &compiled{Rule: r}
	var err error
	if c.cond, err = e.programs.get(r.Condition); err != nil {
		return nil, fmt.Errorf("rule %d: condition: %w", r.ID, err)
	}
	if r.ResetCondition != "" {
		if c.reset, err = e.programs.get(r.ResetCondition); err != nil {
			return nil, fmt.Errorf("rule %d: reset condition: %w", r.ID, err)
		}
	}
	for i, w := range r.Windows {
		win, err := rule.ParseWindow(w.From, w.To, w.Days)
		if err != nil {
			return nil, fmt.Errorf("rule %d: window %d: %w", r.ID, i+1, err)
		}
		c.windows = append(c.windows, win)
	}
	return c, nil
}

// ReadingsCommitted notes that nodes got readings (committed at committedAt; zero: now) and
// returns at once: the evaluation happens on the engine's own goroutine, and bursts are
// coalesced into one pass.
func (e *Engine) ReadingsCommitted(_ context.Context, nodeIDs []int64, committedAt time.Time) {
	if len(nodeIDs) == 0 {
		return
	}
	if committedAt.IsZero() {
		committedAt = e.store.cfg.Now()
	}
	e.mu.Lock()
	for _, id := range nodeIDs {
		e.addPendingLocked(id, committedAt)
	}
	e.mu.Unlock()
	poke(e.wake)
}

// addPendingLocked notes, with mu held, that node id has readings committed at committedAt
// waiting for a pass.
func (e *Engine) addPendingLocked(id int64, committedAt time.Time) {
	if e.since.IsZero() || committedAt.Before(e.since) {
		e.since = committedAt
	}
	if e.all {
		return
	}
	if t, ok := e.pending[id]; !ok || committedAt.Before(t) {
		e.pending[id] = committedAt
	}
	if len(e.pending) > e.cfg.MaxPending {
		e.all = true
		clear(e.pending)
	}
}

// takePending takes the pending nodes, each with when its oldest pending readings were
// committed; all: too many were pending, evaluate everything (since: the oldest commit).
func (e *Engine) takePending() (nodes map[int64]time.Time, all bool, since time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	all, e.all = e.all, false
	since, e.since = e.since, time.Time{}
	nodes, e.pending = e.pending, make(map[int64]time.Time, len(e.pending))
	return nodes, all, since
}

// putBack returns taken nodes to the pending ones, for the next pass.
func (e *Engine) putBack(taken map[int64]time.Time, nodes []int64) {
	if len(nodes) == 0 {
		return
	}
	e.mu.Lock()
	for _, id := range nodes {
		e.addPendingLocked(id, taken[id])
	}
	e.mu.Unlock()
	poke(e.wake)
}

// Start evaluates rules as readings arrive and every Interval, until Stop or the end of ctx.
//
// Passes run concurrently, up to Workers at once: readings that arrive while a pass is acting
// (its transactions wait on fsync, on a farm's lock) are evaluated at once by another, not
// after it. Readings that arrive while every slot is busy coalesce into the next pass. The
// periodic pass is a background one: it evaluates one zone at a time and gives way to the
// passes for fresh readings, whose decisions are the ones somebody waits for.
func (e *Engine) Start(ctx context.Context) error {
	return e.svc.start(ctx, func(ctx context.Context) {
		ticker := time.NewTicker(e.cfg.Interval)
		defer ticker.Stop()
		slots := make(chan struct{}, e.cfg.Workers)
		var passes sync.WaitGroup
		defer passes.Wait()
		pass := func(eval func(context.Context) (int, error)) bool {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return false
			}
			passes.Go(func() {
				defer func() { <-slots }()
				if _, err := eval(ctx); err != nil && ctx.Err() == nil {
					e.log.Error("evaluate rules", "err", err)
				}
			})
			return true
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-e.wake:
				// Take the pending nodes only once a slot is free, so they coalesce meanwhile.
				e.events.Add(1)
				ok := pass(func(ctx context.Context) (int, error) {
					defer e.eventDone()
					taken, all, since := e.takePending()
					if all {
						return e.EvaluateAll(context.WithValue(ctx, committedKey{}, since))
					}
					nodes, later := e.fairShare(slices.Collect(maps.Keys(taken)))
					e.putBack(taken, later)
					since = time.Time{}
					for _, id := range nodes {
						if t := taken[id]; since.IsZero() || t.Before(since) {
							since = t
						}
					}
					tctx := context.WithValue(context.WithValue(ctx, committedKey{}, since), nodeCommitsKey{}, taken)
					return e.EvaluateNodes(tctx, nodes)
				})
				if !ok {
					e.eventDone()
					return
				}
			case <-ticker.C:
				passes.Go(func() { e.refreshBook(ctx) })
				// The periodic pass takes no slot (it must not keep a pass for fresh readings
				// waiting while it gives way to them), and one still running is not doubled.
				if (e.cfg.Leader == nil || e.cfg.Leader.IsLeader()) && e.periodic.CompareAndSwap(false, true) {
					passes.Go(func() {
						defer e.periodic.Store(false)
						if _, err := e.evaluate(ctx, allZones, true); err != nil && ctx.Err() == nil {
							e.log.Error("evaluate rules", "err", err)
						}
					})
				}
			}
		}
	})
}

// Stop ends the engine and waits for it.
func (e *Engine) Stop() { e.svc.stop() }

// EvaluateAll evaluates every enabled rule on every zone it applies to, and returns how many
// acted.
func (e *Engine) EvaluateAll(ctx context.Context) (int, error) {
	return e.evaluate(ctx, allZones, false)
}

// EvaluateNodes evaluates the enabled rules of the zones of these nodes, from the rule book
// (rule_book.go): the rules' memories are read beside the facts, and the book's version with
// them. A pass whose book turns out to be old is done again with a new one, before it acts.
func (e *Engine) EvaluateNodes(ctx context.Context, nodeIDs []int64) (int, error) {
	if len(nodeIDs) == 0 {
		return 0, nil
	}
	for range 2 {
		n, err := e.evaluateBooked(ctx, nodeIDs)
		if errors.As(err, new(errUnreadBook)) {
			break // logged where it was read; the pass reads its zones' rules itself
		}
		if !errors.Is(err, errStaleBook) {
			return n, err
		}
	}
	// The rules and zones keep changing, or the book cannot be read: read them with the pass,
	// as the periodic one does.
	return e.evaluate(ctx, zonesOfNodes(nodeIDs), false)
}

// evaluateBooked is a pass for fresh readings of these nodes from the rule book; it returns
// errStaleBook, having acted on nothing, when the book is out of date (and drops it).
func (e *Engine) evaluateBooked(ctx context.Context, nodeIDs []int64) (int, error) {
	book, err := e.ruleBook(ctx)
	if err != nil {
		return 0, err
	}
	stale := func() (int, error) {
		e.book.CompareAndSwap(book, nil)
		return 0, errStaleBook
	}
	zones, unknown := book.zonesOf(nodeIDs)
	if unknown && len(zones) == 0 {
		// Nodes in no zone with rules, or new to one: only a newer book can tell which. (With
		// zones to evaluate, the version read with the memories tells.)
		v, err := e.store.ruleBookVersion(ctx)
		if err != nil {
			return 0, err
		}
		if v != book.version {
			return stale()
		}
	}
	if len(zones) == 0 {
		return 0, nil
	}
	var (
		read    = make(chan struct{}) // closed once version and mems are read
		version int64
		mems    map[ruleZone]remembered
		memErr  error
	)
	var ruleIDs []int64
	for _, z := range zones {
		for _, r := range book.rules[z] {
			ruleIDs = append(ruleIDs, r.ID)
		}
	}
	go func() {
		defer close(read)
		version, mems, memErr = e.store.rememberedOn(ctx, ruleIDs, zones)
	}()
	// Every zone is evaluated as at the pass's start, so that the zone aggregates of all of
	// them are read at once, beside the memories.
	now := e.store.now()
	e.passed(zones, now)
	src := newLiveFacts(e.store, e.readings, e.weather, e.balance)
	needs := make(map[int64]factNeeds, len(zones))
	for _, id := range zones {
		if z := book.zones[id]; z != nil && len(book.rules[id]) > 0 {
			_, needs[id] = e.compileZone(z, book.rules[id], now)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, e.cfg.ZoneTimeout)
	defer cancel()
	src.prefetch(pctx, now, book.zones, needs)
	// Each zone's readings were committed when its own nodes' were (a pass takes nodes told of
	// at different times, some left over from earlier passes).
	committed := map[int64]time.Time{}
	if commits, ok := ctx.Value(nodeCommitsKey{}).(map[int64]time.Time); ok {
		for _, n := range nodeIDs {
			z, ok := book.byNode[n]
			if t, seen := committed[z]; ok && (!seen || commits[n].Before(t)) {
				committed[z] = commits[n]
			}
		}
	}
	// Zones are evaluated as their aggregates come in: one that reads a single reading does not
	// wait for the hourly means of busier zones in the same pass.
	n, err := e.eachZoneOf(ctx, src.inOrder(ctx, zones), len(zones), false, func(ctx context.Context, id int64) (int, error) {
		z, rules := book.zones[id], book.rules[id]
		if z == nil || len(rules) == 0 {
			return 0, nil
		}
		if t, ok := committed[id]; ok && !t.IsZero() {
			ctx = context.WithValue(ctx, committedKey{}, t)
		}
		p, err := e.prepareZone(ctx, src, z, rules, now)
		if err != nil {
			return 0, err
		}
		select {
		case <-read:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		switch {
		case memErr != nil:
			return 0, memErr
		case version != book.version:
			return 0, errStaleBook
		}
		if e.leftToLater(p, mems) {
			return 0, nil
		}
		return e.decideZone(ctx, p, func(ruleID int64) remembered {
			if m, ok := mems[ruleZone{ruleID, id}]; ok {
				return m
			}
			return remembered{state: rule.State{Armed: true}}
		})
	})
	<-read
	if memErr == nil && version != book.version {
		return stale()
	}
	return n, err
}

// leftToLater reports whether an evaluation that began after p's has written the memories of
// p's zone (read beside p's facts, so possibly newer than them): it judged newer facts, and p is
// left to it. A stamp further ahead than the ZoneTimeout is no such evaluation but a clock that
// disagrees (another instance's, or this one's before it was set back), and is not trusted.
func (e *Engine) leftToLater(p *prepared, mems map[ruleZone]remembered) bool {
	for _, r := range p.rules {
		m, ok := mems[ruleZone{r.ID, p.z.id}]
		if !ok {
			continue
		}
		if m.at != nil && m.at.After(e.trustedUntil(p.now)) {
			e.log.Warn("a rule's memory is stamped in the future; clocks disagree", "rule", r.ID, "zone", p.z.id,
				"evaluated_at", *m.at, "now", p.now)
		}
		if e.later(m.at, p.now) {
			e.log.Debug("zone left to a later evaluation", "zone", p.z.id, "rule", r.ID)
			return true
		}
	}
	return false
}

// later reports whether a memory stamped evaluatedAt was written by an evaluation that began
// after one that began at now (and not so far after that the clocks must disagree).
func (e *Engine) later(evaluatedAt *time.Time, now time.Time) bool {
	return evaluatedAt != nil && evaluatedAt.After(now) && !evaluatedAt.After(e.trustedUntil(now))
}

// trustedUntil is the latest evaluation stamp that an evaluation beginning at now believes:
// one further ahead is a clock that disagrees (another instance's, or this one's before it was
// set back).
func (e *Engine) trustedUntil(now time.Time) time.Time { return now.Add(e.cfg.ZoneTimeout) }

// EvaluateZones evaluates the enabled rules of these zones (their own and their farms').
func (e *Engine) EvaluateZones(ctx context.Context, zoneIDs []int64) (int, error) {
	if len(zoneIDs) == 0 {
		return 0, nil
	}
	return e.evaluate(ctx, zonesByID(zoneIDs), false)
}

// evaluate evaluates the rules of the selected zones, grouped by zone, several zones at once;
// a background evaluation one at a time, each after the passes for fresh readings under way
// (waiting at most maxGiveWay for them, so that it cannot be starved).
func (e *Engine) evaluate(ctx context.Context, sel zoneSelection, background bool) (int, error) {
	rzs, contexts, err := e.store.toEvaluate(ctx, sel)
	if err != nil || len(rzs) == 0 {
		return 0, err
	}
	byZone := map[int64][]ruleOnZone{}
	var zones []int64
	for _, rz := range rzs {
		if _, ok := byZone[rz.zoneID]; !ok {
			zones = append(zones, rz.zoneID)
		}
		byZone[rz.zoneID] = append(byZone[rz.zoneID], rz)
	}
	src := newLiveFacts(e.store, e.readings, e.weather, e.balance)
	return e.eachZone(ctx, zones, background, func(ctx context.Context, id int64) (int, error) {
		z := contexts[id]
		if z == nil {
			return 0, nil // deleted meanwhile
		}
		return e.evaluateZone(ctx, src, z, byZone[id])
	})
}

// eachZone runs fn on each zone, several at once (a background pass one at a time, each after
// the passes for fresh readings under way), each within the ZoneTimeout, and returns how many
// rules acted and every zone's error.
func (e *Engine) eachZone(ctx context.Context, zones []int64, background bool, fn func(ctx context.Context, id int64) (int, error)) (int, error) {
	feed := make(chan int64)
	go func() {
		defer close(feed)
		for _, id := range zones {
			select {
			case feed <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	return e.eachZoneOf(ctx, feed, len(zones), background, fn)
}

// eachZoneOf is eachZone over the zones coming from feed (at most n), in the order they come.
func (e *Engine) eachZoneOf(ctx context.Context, feed <-chan int64, n int, background bool, fn func(ctx context.Context, id int64) (int, error)) (int, error) {
	var (
		mu    sync.Mutex
		acted int
		errs  []error
		wg    sync.WaitGroup
	)
	workers := e.cfg.Workers
	if background {
		workers = 1
	}
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range feed {
				if background {
					e.giveWay(ctx)
				}
				zctx, cancel := context.WithTimeout(ctx, e.cfg.ZoneTimeout)
				n, err := fn(zctx, id)
				cancel()
				mu.Lock()
				acted += n
				if err != nil {
					errs = append(errs, fmt.Errorf("zone %d: %w", id, err))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acted, errors.Join(errs...)
}

// maxGiveWay bounds how long the periodic pass waits for the passes for fresh readings before
// each zone.
const maxGiveWay = 100 * time.Millisecond

// giveWay waits until no pass for fresh readings is under way, or maxGiveWay.
func (e *Engine) giveWay(ctx context.Context) {
	if e.events.Load() == 0 {
		return
	}
	timer := time.NewTimer(maxGiveWay)
	defer timer.Stop()
	for e.events.Load() > 0 {
		select {
		case <-e.idle:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (e *Engine) eventDone() {
	if e.events.Add(-1) == 0 {
		poke(e.idle)
	}
}

// evaluated is one rule's evaluation on a zone.
type evaluated struct {
	rz      ruleOnZone
	c       *compiled
	cond    rule.Outcome
	reset   *rule.Outcome
	step    rule.Step
	explain string
	facts   map[string]any
}

// evaluateOn evaluates rules on a zone from facts gathered once for all of them.
func evaluateOn(z *zoneContext, rules []*compiled, states []rule.State, f rule.Facts, now time.Time) ([]evaluated, error) {
	out := make([]evaluated, 0, len(rules))
	local := now.In(z.loc)
	for i, c := range rules {
		ev := evaluated{c: c}
		var err error
		if ev.cond, err = c.cond.Eval(f); err != nil {
			return nil, fmt.Errorf("rule %d: %w", c.ID, err)
		}
		used := ev.cond.Used
		if c.reset != nil {
			r, err := c.reset.Eval(f)
			if err != nil {
				return nil, fmt.Errorf("rule %d: reset: %w", c.ID, err)
			}
			ev.reset = &r
			used = append(append([]rule.Used{}, used...), r.Used...)
		}
		ev.step = rule.Decide(c.behaviour(), states[i], rule.Input{Now: now, Cond: ev.cond, Reset: ev.reset,
			InWindow: c.windows.Contains(local)})
		ev.explain = ev.cond.Explain(c.cond)
		ev.facts = factsJSON(used)
		out = append(out, ev)
	}
	return out, nil
}

// evaluateZone evaluates a zone's rules (in priority order) and carries out what they decide.
func (e *Engine) evaluateZone(ctx context.Context, src factSource, z *zoneContext, rzs []ruleOnZone) (int, error) {
	rules := make([]Rule, len(rzs))
	mem := make(map[int64]remembered, len(rzs))
	for i, rz := range rzs {
		rules[i] = rz.Rule
		mem[rz.ID] = remembered{state: rz.state, lastReason: rz.lastReason}
	}
	p, err := e.prepareZone(ctx, src, z, rules, e.store.now())
	if err != nil {
		return 0, err
	}
	return e.decideZone(ctx, p, func(ruleID int64) remembered { return mem[ruleID] })
}

// prepared is a zone's rules compiled, and the facts they use gathered once for all of them.
type prepared struct {
	z     *zoneContext
	now   time.Time
	rules []Rule // those that compiled, in evaluation order
	cs    []*compiled
	facts rule.Facts
	errs  []error // of the rules that did not compile
}

// prepareZone compiles a zone's rules and gathers the facts they use, at now.
func (e *Engine) prepareZone(ctx context.Context, src factSource, z *zoneContext, rules []Rule, now time.Time) (*prepared, error) {
	p, needs := e.compileZone(z, rules, now)
	facts, err := src.facts(ctx, z, p.now, needs)
	if err != nil {
		return nil, errors.Join(append(p.errs, fmt.Errorf("facts: %w", err))...)
	}
	p.facts = facts
	return p, nil
}

// compileZone compiles a zone's rules (from the cache) and says which facts they use.
func (e *Engine) compileZone(z *zoneContext, rules []Rule, now time.Time) (*prepared, factNeeds) {
	p := &prepared{z: z, now: now}
	needs := newNeeds()
	for _, r := range rules {
		c, err := e.compile(r)
		if err != nil {
			p.errs = append(p.errs, err)
			continue
		}
		needs.add(c.cond)
		needs.add(c.reset)
		p.cs = append(p.cs, c)
		p.rules = append(p.rules, r)
	}
	return p, needs
}

// decideZone evaluates prepared rules with their memories of the zone (mem; an absent one is
// the zero memory, armed) and carries out what they decide.
func (e *Engine) decideZone(ctx context.Context, p *prepared, mem func(ruleID int64) remembered) (int, error) {
	z, now, errs := p.z, p.now, p.errs
	states := make([]rule.State, len(p.rules))
	rzs := make([]ruleOnZone, len(p.rules))
	for i, r := range p.rules {
		m := mem(r.ID)
		states[i] = m.state
		rzs[i] = ruleOnZone{Rule: r, zoneID: z.id, state: m.state, lastReason: m.lastReason}
	}
	evs, err := evaluateOn(z, p.cs, states, p.facts, now)
	if err != nil {
		return 0, errors.Join(append(errs, err)...)
	}
	acted := 0
	var veto *evaluated // the highest-priority skip in effect
	watered := false
	for i := range evs {
		ev := &evs[i]
		ev.rz = rzs[i]
		e.metrics.evaluated.Inc()
		ok, err := e.apply(ctx, z, ev, veto, watered, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", ev.rz.ID, err))
		}
		if ok {
			acted++
			if ev.c.Action == rule.ActionIrrigate {
				watered = true
			}
		}
		if ev.c.Action == rule.ActionSkip && ev.step.Next.Active && veto == nil {
			veto = ev
		}
		if ctx.Err() != nil {
			break
		}
	}
	return acted, errors.Join(errs...)
}

// errNotFired: the rule changed (disabled, acted on by another instance) before it could act.
var errNotFired = errors.New("rule not fired")

// apply carries out one evaluation: it records state changes and acts.
func (e *Engine) apply(ctx context.Context, z *zoneContext, ev *evaluated, veto *evaluated, watered bool, now time.Time) (bool, error) {
	rz, step := ev.rz, ev.step
	zoneID := z.id
	ruleID := rz.ID
	base := Decision{FarmID: z.farmID, ZoneID: &zoneID, At: now, Origin: OriginRule, OriginID: &ruleID, Facts: ev.facts}
	if since, ok := ctx.Value(committedKey{}).(time.Time); ok && !since.IsZero() && (step.Act || step.Release) {
		// Provenance: when the readings this decision was taken on were committed (at the
		// latest; several batches may have been evaluated together).
		facts := make(map[string]any, len(ev.facts)+1)
		maps.Copy(facts, ev.facts)
		facts[FactReadingsCommittedAt] = since.UTC().Format(time.RFC3339Nano)
		base.Facts = facts
	}
	switch {
	case !step.Act && !step.Release:
		if step.Changed(rz.state) {
			return false, e.store.saveRuleStateIf(ctx, rz.state, ruleID, zoneID, step.Next, now, e.trustedUntil(now), step.Reason)
		}
		return false, nil
	case rz.Action == rule.ActionIrrigate && veto != nil:
		reason := fmt.Sprintf("vetoed by skip rule %q (%s)", veto.rz.Name, veto.explain)
		next := rz.state
		next.HoldingSince = step.Next.HoldingSince
		if rz.lastReason == reason {
			return false, e.store.saveRuleStateIf(ctx, rz.state, ruleID, zoneID, next, now, e.trustedUntil(now), reason)
		}
		d := base
		d.Action, d.Reason = DecisionSkip, fmt.Sprintf("rule %q would water: %s; %s", rz.Name, ev.explain, reason)
		return false, e.store.withTx(ctx, func(t *txn) error {
			if err := t.saveRuleStateIf(ctx, rz.state, ruleID, zoneID, next, now, e.trustedUntil(now), reason); err != nil {
				return err
			}
			return recordDecision(ctx, t.tx, d)
		})
	case rz.Action == rule.ActionIrrigate && watered:
		return false, nil // a rule of higher priority is watering the zone already
	}
	if rz.Action == rule.ActionIrrigate && rz.DepthMM > 0 {
		if _, err := z.runtimeFor(rz.DepthMM); err != nil {
			// Recorded before any lock is taken, in a transaction of its own; nothing is watered.
			return false, e.cannotWater(ctx, z, rz, base, err)
		}
	}
	var run startedRun
	next, acted := step.Next, step.Act
	err := e.store.withTx(ctx, func(t *txn) error {
		enabled, st, valve, err := t.lockToAct(ctx, ruleID, zoneID, rz.Action == rule.ActionIrrigate)
		if errors.Is(err, ErrNotFound) {
			return errNotFired // deleted meanwhile
		}
		if err != nil {
			return err
		}
		if !enabled || !sameActState(st.State, rz.state) || e.later(st.evaluatedAt, now) {
			return errNotFired // changed, or left to an evaluation that began after this one
		}
		d := base
		var resolve []string // alert kinds to resolve on the zone
		switch {
		case rz.Action == rule.ActionIrrigate:
			d.Action = DecisionIrrigate
			run, err = e.fire(ctx, t, z, rz, ev, &d, valve)
			if err != nil {
				return err
			}
			if run.ID == 0 { // no valve: alerted, nothing watered, no cooldown
				next, acted = rz.state, false
				next.HoldingSince = step.Next.HoldingSince
			} else {
				resolve = []string{AlertZoneWithoutValve, AlertCannotWater}
			}
		case step.Act && rz.Action == rule.ActionAlert:
			msg := rz.Message
			if msg == "" {
				msg = fmt.Sprintf("Rule %q on zone %q", rz.Name, z.name)
			}
			msg += ": " + ev.explain
			if err := t.raiseAlert(ctx, e.store, Alert{FarmID: z.farmID, Kind: AlertRule, Severity: rz.Severity,
				Subject: subjectRule(ruleID, zoneID), Message: msg}); err != nil {
				return err
			}
			d.Action, d.Reason = DecisionAlert, fmt.Sprintf("rule %q raised a %s alert: %s", rz.Name, rz.Severity, ev.explain)
		case step.Release && rz.Action == rule.ActionAlert:
			if err := t.resolveAlert(ctx, z.farmID, AlertRule, subjectRule(ruleID, zoneID)); err != nil {
				return err
			}
			d.Action, d.Reason = DecisionResolve, fmt.Sprintf("rule %q alert resolved: %s", rz.Name, step.Reason)
		case step.Act: // skip
			d.Action, d.Reason = DecisionSkip, fmt.Sprintf("rule %q vetoes watering: %s", rz.Name, ev.explain)
		default: // skip released
			d.Action, d.Reason = DecisionResolve, fmt.Sprintf("rule %q stops vetoing: %s", rz.Name, step.Reason)
		}
		return t.finishAct(ctx, ruleID, zoneID, next, step.Reason, d, resolve)
	})
	switch {
	case errors.Is(err, errNotFired):
		return false, nil
	case errors.Is(err, ErrBusy):
		e.log.Debug("rule would water but the zone is busy", "rule", ruleID, "zone", zoneID, "busy", err)
		return false, nil
	case err != nil:
		return false, err
	}
	if rz.Action == rule.ActionIrrigate {
		if run.ID == 0 {
			return false, nil // the zone has no valve: alerted
		}
		e.metrics.fired.Inc()
		if since, ok := ctx.Value(committedKey{}).(time.Time); ok && !since.IsZero() {
			e.decide.Observe(e.store.cfg.Now().Sub(since).Seconds())
		}
		e.log.Info("rule fired", "rule", ruleID, "zone", zoneID, "run", run.ID, "reason", run.Reason)
	} else {
		e.log.Info("rule acted", "rule", ruleID, "zone", zoneID, "action", rz.Action, "act", step.Act, "reason", step.Reason)
	}
	return acted, nil
}

// FactReadingsCommittedAt is the decision fact that says when the readings an event-driven
// decision was taken on were committed (the earliest batch of its evaluation pass).
const FactReadingsCommittedAt = "readings_committed_at"

// nodeCommitsKey marks a pass's context with when each of its nodes' readings were committed
// (map[int64]time.Time), so that each zone's decisions say when its own were.
type nodeCommitsKey struct{}

// committedKey marks an evaluation context with when the readings that triggered it were
// committed, for the decide histogram.
type committedKey struct{}

// cannotWater records that a rule would water a zone with a depth the zone cannot be given
// (why: no application rate, say), with an alert.
func (e *Engine) cannotWater(ctx context.Context, z *zoneContext, rz ruleOnZone, d Decision, why error) error {
	s := e.store
	msg := fmt.Sprintf("Rule %q would water zone %q with %g mm but %v.", rz.Name, z.name, rz.DepthMM, why)
	return s.withTx(ctx, func(t *txn) error {
		if err := t.raiseAlert(ctx, s, Alert{FarmID: z.farmID, Kind: AlertCannotWater, Severity: SeverityWarning,
			Subject: subjectZone(z.id), Message: msg}); err != nil {
			return err
		}
		d.Action, d.Reason = DecisionSkip, msg
		return recordDecision(ctx, t.tx, d)
	})
}

// fire starts an irrigate rule's run in the transaction that locked its state, and fills the
// decision. A zone without a valve gets an alert and no run (ID 0).
func (e *Engine) fire(ctx context.Context, t *txn, z *zoneContext, rz ruleOnZone, ev *evaluated, d *Decision, valve zoneValve) (startedRun, error) {
	s := e.store
	duration := rz.DurationS
	amount := rule.FormatDuration(time.Duration(duration) * time.Second)
	if rz.DepthMM > 0 {
		secs, err := z.runtimeFor(rz.DepthMM) // checked by apply before locking
		if err != nil {
			return startedRun{}, err
		}
		duration = secs
		amount = fmt.Sprintf("%g mm (%s at %g mm/h, efficiency %g)", rz.DepthMM,
			rule.FormatDuration(time.Duration(secs)*time.Second), *z.rate, z.eff())
	}
	reason := fmt.Sprintf("rule %q: %s; water %s", rz.Name, ev.explain, amount)
	v, err := valve.v, valve.err
	if errors.Is(err, errNoValve) {
		d.Action, d.Reason = DecisionSkip, reason+"; the zone has no valve"
		return startedRun{}, t.raiseAlert(ctx, s, Alert{FarmID: z.farmID, Kind: AlertZoneWithoutValve, Severity: SeverityWarning,
			Subject: subjectZone(z.id),
			Message: fmt.Sprintf("Rule %q would water zone %d (%s) but the zone has no valve.", rz.Name, z.id, ev.explain)})
	}
	if err != nil {
		return startedRun{}, err
	}
	id := rz.ID
	run, err := t.startRun(ctx, s, v, RunRequest{ValveID: v.id, DurationS: duration, Origin: OriginRule, OriginID: &id,
		Reason: reason})
	if err != nil {
		return startedRun{}, err
	}
	d.Reason = run.Reason
	d.RunID = &run.ID
	d.withWater(z, run.DurationS)
	return run, nil
}

// zoneValve is the zone's valve locked to water it, or why it could not be.
type zoneValve struct {
	v   lockedValve
	err error
}

// lockToAct takes the locks a rule needs to act on a zone, in one round trip: its memory of the
// zone (lockRuleState) and, to water, the zone's farm and valve (lockZoneValve), in that order.
// The valve's error is returned apart: the rule's state decides first whether it matters.
func (t *txn) lockToAct(ctx context.Context, ruleID, zoneID int64, water bool) (enabled bool, st lockedState, v zoneValve, err error) {
	if !water {
		enabled, st, err = t.lockRuleState(ctx, ruleID, zoneID)
		return enabled, st, v, err
	}
	b := &pgx.Batch{}
	queueRuleStateLock(b, ruleID, zoneID)
	queueZoneValveLock(b, zoneID, t.now)
	br := t.tx.SendBatch(ctx, b)
	defer br.Close()
	if enabled, st, err = readRuleStateLock(br); err != nil {
		return false, st, v, err
	}
	v.v, v.err = readZoneValveLock(br, zoneID)
	if cerr := br.Close(); v.err == nil && cerr != nil {
		return false, st, v, interpretError(cerr, fmt.Sprintf("zone %d", zoneID))
	}
	return enabled, st, v, nil
}

// finishAct writes what an act leaves behind — the rule's memory of the zone (evaluated at the
// decision's time: when its evaluation began), the decision, the zone's alerts it resolves —
// with the commit.
func (t *txn) finishAct(ctx context.Context, ruleID, zoneID int64, st rule.State, reason string, d Decision, resolve []string) error {
	facts, err := json.Marshal(d.Facts)
	if err != nil {
		return err
	}
	if d.Facts == nil {
		facts = []byte("{}")
	}
	t.tx.later("record the act", `UPDATE rule_states SET holding_since = $3, armed = $4, active = $5, last_fired_at = $6, evaluated_at = $7,
			reason = $8 WHERE rule_id = $1 AND zone_id = $2`,
		ruleID, zoneID, st.HoldingSince, st.Armed, st.Active, st.LastFired, d.At, reason)
	t.tx.later("record the decision", `INSERT INTO irrigation_decisions (farm_id, zone_id, at, origin, origin_id, action, reason, run_id,
			duration_s, depth_mm, volume_l, facts)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		d.FarmID, d.ZoneID, d.At, d.Origin, d.OriginID, d.Action, d.Reason, d.RunID, nullInt(d.DurationS), d.DepthMM, d.VolumeL, facts)
	if len(resolve) > 0 {
		t.tx.later("resolve the zone's alerts", `UPDATE alerts SET resolved_at = $4 WHERE farm_id = $1 AND kind = ANY($2) AND subject = $3 AND resolved_at IS NULL`,
			d.FarmID, resolve, subjectZone(zoneID), t.now)
	}
	return nil
}

// sameActState reports whether a rule's memory still is what an evaluation started from, as
// far as acting goes.
func sameActState(a, b rule.State) bool {
	return a.Armed == b.Armed && a.Active == b.Active && sameTimePtr(a.LastFired, b.LastFired)
}

func sameTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// saveRuleStateIf writes a rule's memory of a zone, as evaluated at at, unless another
// evaluation acted on it since old was read, or one that began after at (and before
// trustedUntil: a stamp further ahead is a clock that disagrees) wrote it: the newer memory
// stays.
func (s *Store) saveRuleStateIf(ctx context.Context, old rule.State, ruleID, zoneID int64, st rule.State, at, trustedUntil time.Time, reason string) error {
	return saveRuleStateCAS(ctx, s.db, old, ruleID, zoneID, st, at, trustedUntil, reason)
}

func (t *txn) saveRuleStateIf(ctx context.Context, old rule.State, ruleID, zoneID int64, st rule.State, at, trustedUntil time.Time, reason string) error {
	return saveRuleStateCAS(ctx, t.tx, old, ruleID, zoneID, st, at, trustedUntil, reason)
}

func saveRuleStateCAS(ctx context.Context, q querier, old rule.State, ruleID, zoneID int64, st rule.State, at, trustedUntil time.Time, reason string) error {
	_, err := q.Exec(ctx, `INSERT INTO rule_states (rule_id, zone_id, holding_since, armed, active, last_fired_at, evaluated_at, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (rule_id, zone_id) DO UPDATE SET holding_since = EXCLUDED.holding_since, armed = EXCLUDED.armed,
			active = EXCLUDED.active, last_fired_at = EXCLUDED.last_fired_at, evaluated_at = EXCLUDED.evaluated_at,
			reason = EXCLUDED.reason
		WHERE rule_states.armed = $9 AND rule_states.active = $10 AND rule_states.last_fired_at IS NOT DISTINCT FROM $11
			AND (rule_states.evaluated_at IS NULL OR rule_states.evaluated_at <= $7 OR rule_states.evaluated_at > $12)`,
		ruleID, zoneID, st.HoldingSince, st.Armed, st.Active, st.LastFired, at, reason, old.Armed, old.Active, old.LastFired, trustedUntil)
	return interpretError(err, "save rule state")
}

// DryRunResult is a rule evaluated on one zone now, without acting: the facts it saw and what
// it would do.
type DryRunResult struct {
	ZoneID   int64
	ZoneName string
	At       time.Time
	// Known is false when a fact the condition needs has no data.
	Known bool
	Holds bool
	// Missing names the facts without data.
	Missing []string
	// ResetHolds is the reset condition's value (nil: no reset condition, or no data).
	ResetHolds *bool
	InWindow   bool
	Facts      []rule.Used // every fact the conditions used, with its value
	State      rule.State  // the rule's memory of the zone
	Act        bool        // the rule would act now
	Release    bool        // it would release a skip or resolve an alert
	Reason     string      // why it would or would not act
	Explain    string      // the condition with the values it saw
	// What an irrigate rule would water: runtime, gross depth and volume (0/nil: unknown).
	DurationS int
	DepthMM   *float64
	VolumeL   *float64
	Problem   string // why it could not water as asked
}

// DryRun evaluates a rule (stored or not: a zero ID means no memory) on its zone, or on every
// zone of its farm, now, and reports what it saw and would do. Nothing is changed.
func (e *Engine) DryRun(ctx context.Context, r Rule) ([]DryRunResult, error) {
	if err := e.store.ruleScope(ctx, &r); err != nil {
		return nil, err
	}
	c, err := compileRule(&r)
	if err != nil {
		return nil, err
	}
	var zoneIDs []int64
	if r.ZoneID != nil {
		zoneIDs = []int64{*r.ZoneID}
	} else {
		rows, err := e.store.db.Query(ctx, `SELECT id FROM zones WHERE farm_id = $1 ORDER BY id`, r.FarmID)
		if err != nil {
			return nil, interpretError(err, "zones")
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, interpretError(err, "zones")
			}
			zoneIDs = append(zoneIDs, id)
		}
		rows.Close()
	}
	contexts, err := e.store.zoneContexts(ctx, zoneIDs)
	if err != nil {
		return nil, err
	}
	states := map[int64]rule.State{}
	if r.ID != 0 {
		list, err := e.store.RuleStates(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		for _, st := range list {
			states[st.ZoneID] = rule.State{HoldingSince: st.HoldingSince, Armed: st.Armed, Active: st.Active, LastFired: st.LastFiredAt}
		}
	}
	src := newLiveFacts(e.store, e.readings, e.weather, e.balance)
	now := e.store.now()
	needs := newNeeds()
	needs.add(c.cond)
	needs.add(c.reset)
	each := make(map[int64]factNeeds, len(contexts)) // a farm rule's zones: read at once
	for id := range contexts {
		each[id] = needs
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src.prefetch(pctx, now, contexts, each)
	out := []DryRunResult{}
	for _, id := range zoneIDs {
		z := contexts[id]
		if z == nil {
			continue
		}
		st, ok := states[id]
		if !ok {
			st = rule.NewState()
		}
		f, err := src.facts(ctx, z, now, needs)
		if err != nil {
			return nil, err
		}
		evs, err := evaluateOn(z, []*compiled{c}, []rule.State{st}, f, now)
		if err != nil {
			return nil, err
		}
		ev := evs[0]
		res := DryRunResult{ZoneID: id, ZoneName: z.name, At: now, Known: ev.cond.Known, Holds: ev.cond.Holds,
			Missing: ev.cond.Missing, InWindow: c.windows.Contains(now.In(z.loc)), State: st, Act: ev.step.Act,
			Release: ev.step.Release, Reason: ev.step.Reason, Explain: ev.explain}
		res.Facts = append(res.Facts, ev.cond.Used...)
		if ev.reset != nil {
			res.Facts = append(res.Facts, ev.reset.Used...)
			if ev.reset.Known {
				h := ev.reset.Holds
				res.ResetHolds = &h
			}
		}
		res.Facts = dedupeUsed(res.Facts)
		if c.Action == rule.ActionIrrigate {
			secs := c.DurationS
			if c.DepthMM > 0 {
				if secs, err = z.runtimeFor(c.DepthMM); err != nil {
					res.Problem = err.Error()
				}
			}
			if secs > z.maxRuntimeS {
				secs = z.maxRuntimeS
			}
			if secs > 0 {
				var d Decision
				d.withWater(z, secs)
				res.DurationS, res.DepthMM, res.VolumeL = d.DurationS, d.DepthMM, d.VolumeL
			}
		}
		out = append(out, res)
	}
	return out, nil
}

func dedupeUsed(us []rule.Used) []rule.Used {
	seen := map[string]bool{}
	out := us[:0]
	for _, u := range us {
		if !seen[u.Name] {
			seen[u.Name] = true
			out = append(out, u)
		}
	}
	return out
}
