package irrigation

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation/rule"
)

// liveFacts gathers facts from the database as they are now. One is used per evaluation pass:
// it keeps the farm aggregates and node lists it read for the pass.
type liveFacts struct {
	store    *Store
	readings Readings
	weather  *Weather
	balance  *WaterBalance

	mu      sync.Mutex
	nodes   map[int64][]fieldnodes.Node
	farms   map[farmSeries]*farmFetch  // farm aggregates, read once for the zones evaluated at one time
	fetches map[rule.Series]*zoneFetch // zone aggregates being read for the whole pass (prefetch)
	landed  chan struct{}              // cap 1: poked as each fetch is done
}

type farmSeries struct {
	farm int64
	s    rule.Series
	at   time.Time
}

type farmFetch struct {
	once sync.Once
	a    fieldnodes.Aggregate
	err  error
}

// zoneFetch is one reading function's zone aggregates, read for a pass's zones at once.
type zoneFetch struct {
	at     time.Time
	done   chan struct{} // closed once vals or err is set
	zones  map[int64]bool
	values map[int64]rule.Value
	err    error
}

func newLiveFacts(store *Store, readings Readings, weather *Weather, balance *WaterBalance) *liveFacts {
	return &liveFacts{store: store, readings: readings, weather: weather, balance: balance,
		nodes: map[int64][]fieldnodes.Node{}, farms: map[farmSeries]*farmFetch{}, fetches: map[rule.Series]*zoneFetch{},
		landed: make(chan struct{}, 1)}
}

// prefetch starts reading, as at at, the zone aggregates that the zones of a pass need (needs
// by zone): one query per reading function for all of them, instead of one per zone. A pass
// for the readings of a busy ingest has dozens of zones; their facts then cost a round trip or
// two, not dozens. It returns at once: a zone's evaluation waits only for the functions it
// uses, so a zone whose rule reads one reading is not kept waiting by the hourly means of
// busier zones.
func (l *liveFacts) prefetch(ctx context.Context, at time.Time, needs map[int64]factNeeds) {
	zonesOf := map[rule.Series][]int64{}
	for zone, n := range needs {
		for s := range n.series {
			if zoneAggregated(s) {
				zonesOf[s] = append(zonesOf[s], zone)
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for s, zones := range zonesOf {
		f := &zoneFetch{at: at, done: make(chan struct{}), zones: map[int64]bool{}}
		for _, z := range zones {
			f.zones[z] = true
		}
		l.fetches[s] = f
		go func() {
			defer poke(l.landed)
			defer close(f.done)
			got, err := l.readings.ZoneAggregates(ctx, zones, s.Metric, aggregateOf(s), at.Add(-s.Window), at.Add(readingsAhead))
			if err != nil {
				f.err = fmt.Errorf("%s of %d zones: %w", s.Key(), len(zones), err)
				return
			}
			f.values = make(map[int64]rule.Value, len(zones))
			for _, z := range zones {
				f.values[z] = zoneValue(s, got[z])
			}
		}()
	}
}

// inOrder sends zones to the returned channel as the aggregates each uses have been read, the
// ready ones first in the order given, and closes it after the last (or at the end of ctx).
func (l *liveFacts) inOrder(ctx context.Context, zones []int64) <-chan int64 {
	out := make(chan int64)
	go func() {
		defer close(out)
		for len(zones) > 0 {
			var waiting []int64
			for _, z := range zones {
				if !l.ready(z) {
					waiting = append(waiting, z)
					continue
				}
				select {
				case out <- z:
				case <-ctx.Done():
					return
				}
			}
			if zones = waiting; len(zones) > 0 {
				select {
				case <-l.landed:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// ready reports whether every aggregate prefetched for zone z has been read.
func (l *liveFacts) ready(z int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.fetches {
		if !f.zones[z] {
			continue
		}
		select {
		case <-f.done:
		default:
			return false
		}
	}
	return true
}

// fetched is zone z's value of s as prefetched at at (ok false: not prefetched).
func (l *liveFacts) fetched(ctx context.Context, z int64, s rule.Series, at time.Time) (v rule.Value, ok bool, err error) {
	l.mu.Lock()
	f := l.fetches[s]
	l.mu.Unlock()
	if f == nil || !f.at.Equal(at) || !f.zones[z] {
		return rule.Value{}, false, nil
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return rule.Value{}, true, ctx.Err()
	}
	if f.err != nil {
		return rule.Value{}, true, f.err
	}
	return f.values[z], true, nil
}

// readingsAhead is how far ahead of the evaluation a reading's time may be and still count: a
// device's clock may run a little fast, but one that runs hours fast (the ingest takes readings
// up to a day ahead) would otherwise bend a window's trend or mean with readings from later on;
// those count once their time comes.
const readingsAhead = 5 * time.Minute

// zoneAggregated: s is read by ZoneAggregates.
func zoneAggregated(s rule.Series) bool { return s.Scope == rule.ScopeZone }

// aggregateOf is the aggregate ZoneAggregates and FarmAggregate compute for s (sum and count
// from the mean).
func aggregateOf(s rule.Series) string {
	switch s.Func {
	case rule.FuncSum, rule.FuncCount:
		return rule.FuncMean
	}
	return s.Func
}

// zoneValue is s's value from its zone or farm aggregate.
func zoneValue(s rule.Series, a fieldnodes.Aggregate) rule.Value {
	v, n := a.Value, a.N
	switch {
	case s.Func == rule.FuncTrend && n > 0 && math.IsNaN(v):
		return rule.Missing("a trend needs readings at two times at least")
	case s.Func == rule.FuncTrend && n > 0:
		return rule.Value{V: v, N: n, Note: "per hour"}
	case s.Func == rule.FuncCount:
		return rule.Value{V: float64(n), N: n}
	case s.Func == rule.FuncSum && n == 0:
		return rule.Value{V: 0.0}
	case n == 0:
		return rule.Missing("")
	case s.Func == rule.FuncSum:
		return rule.Value{V: v * float64(n), N: n}
	case s.Func == rule.FuncLast:
		return rule.Value{V: v, N: 1}
	}
	return rule.Value{V: v, N: n}
}

func (l *liveFacts) farmNodes(ctx context.Context, farmID int64) ([]fieldnodes.Node, error) {
	l.mu.Lock()
	nodes, ok := l.nodes[farmID]
	l.mu.Unlock()
	if ok {
		return nodes, nil
	}
	nodes, err := l.readings.Nodes(ctx, farmID)
	if err != nil {
		return nil, fmt.Errorf("nodes of farm %d: %w", farmID, err)
	}
	l.mu.Lock()
	l.nodes[farmID] = nodes
	l.mu.Unlock()
	return nodes, nil
}

func (l *liveFacts) facts(ctx context.Context, z *zoneContext, at time.Time, needs factNeeds) (rule.Facts, error) {
	f := rule.Facts{Vars: map[string]rule.Value{}, Series: map[rule.Series]rule.Value{}}
	for _, s := range sortedSeries(needs.series) {
		v, err := l.series(ctx, z, at, s)
		if err != nil {
			return f, fmt.Errorf("%s: %w", s.Key(), err)
		}
		f.Series[s] = v
	}
	all := map[string]rule.Value{}
	if needs.anyVar(rule.GroupTime) {
		timeFacts(z, at, all)
	}
	if needs.anyVar(rule.GroupZone) {
		zoneFacts(z, at, all)
	}
	if needs.anyVar(rule.GroupHistory) {
		spans, err := l.store.wateredSpans(ctx, z.id, at.Add(-48*time.Hour), at)
		if err != nil {
			return f, err
		}
		historyFacts(z, spans, at, all)
	}
	if needs.anyVar(rule.GroupWeather) {
		if err := l.weatherFacts(ctx, z, at, needs, all); err != nil {
			return f, err
		}
	}
	if needs.anyVar(rule.GroupBalance) {
		st, err := l.balance.Status(ctx, z.id, at)
		if err != nil {
			return f, err
		}
		balanceFacts(st, all)
	}
	for v := range needs.vars {
		val, ok := all[v]
		if !ok {
			val = rule.Missing("")
		}
		f.Vars[v] = val
	}
	return f, nil
}

// weatherFacts fills the weather facts needs asks for.
func (l *liveFacts) weatherFacts(ctx context.Context, z *zoneContext, at time.Time, needs factNeeds, out map[string]rule.Value) error {
	day, midnight, _ := localDay(at, z.loc)
	rain := func(from time.Time) (rule.Value, error) {
		mm, gauges, err := l.weather.Rain(ctx, z.farmID, from, at.Add(time.Second))
		if err != nil || gauges == 0 {
			return rule.Missing("the farm has no rain gauge"), err
		}
		v := rule.NumberValue(math.Round(mm*100) / 100)
		if gauges > 1 {
			v.Note = fmt.Sprintf("%d gauges", gauges)
		}
		return v, nil
	}
	var err error
	if needs.vars[rule.VarRain24h] {
		if out[rule.VarRain24h], err = rain(at.Add(-24 * time.Hour)); err != nil {
			return err
		}
	}
	if needs.vars[rule.VarRainToday] {
		if out[rule.VarRainToday], err = rain(midnight); err != nil {
			return err
		}
	}
	et0 := func(d time.Time) (rule.Value, error) {
		e, err := l.weather.Day(ctx, z.farmID, d)
		if err != nil {
			return rule.Value{}, err
		}
		return et0Value(e), nil
	}
	if needs.vars[rule.VarET0Today] {
		if out[rule.VarET0Today], err = et0(day); err != nil {
			return err
		}
	}
	if needs.vars[rule.VarET0Yesterday] {
		if out[rule.VarET0Yesterday], err = et0(day.AddDate(0, 0, -1)); err != nil {
			return err
		}
	}
	if needs.vars[rule.VarForecastRain24h] {
		mm, ok, err := l.weather.Forecast(ctx, z.farmID, at, at.Add(24*time.Hour))
		if err != nil {
			return err
		}
		out[rule.VarForecastRain24h] = rule.Missing("no forecast")
		if ok {
			out[rule.VarForecastRain24h] = rule.NumberValue(math.Round(mm*100) / 100)
		}
	}
	return nil
}

func et0Value(e ET0Day) rule.Value {
	if e.ET0 == nil {
		return rule.Missing(e.Sources)
	}
	v := rule.NumberValue(*e.ET0)
	v.Note = e.Method
	if !e.Final {
		v.Note += ", so far"
	}
	return v
}

// balanceFacts fills the balance facts from a zone's water-balance status.
func balanceFacts(st BalanceStatus, out map[string]rule.Value) {
	names := []string{rule.VarDepletion, rule.VarRAW, rule.VarTAW, rule.VarDepletionPct, rule.VarRefill, rule.VarKc, rule.VarETcToday}
	if st.Problem != "" {
		for _, n := range names {
			out[n] = rule.Missing(st.Problem)
		}
		out[rule.VarNeedsWater] = rule.Value{V: false, Missing: true, Note: st.Problem}
		return
	}
	r2 := func(v float64) rule.Value { return rule.NumberValue(math.Round(v*100) / 100) }
	out[rule.VarDepletion] = r2(st.Depletion)
	out[rule.VarRAW] = r2(st.RAW)
	out[rule.VarTAW] = r2(st.TAW)
	out[rule.VarDepletionPct] = r2(100 * st.Depletion / st.TAW)
	out[rule.VarRefill] = r2(st.Depletion)
	out[rule.VarKc] = r2(st.Kc)
	out[rule.VarETcToday] = r2(st.ETcToday)
	out[rule.VarNeedsWater] = rule.Value{V: st.NeedsWater}
}

// series computes a reading function for a zone at a moment, from the readings themselves
// (which rules are told of at their commit, before the nodes' latest values are written).
func (l *liveFacts) series(ctx context.Context, z *zoneContext, at time.Time, s rule.Series) (rule.Value, error) {
	since := at.Add(-s.Window)
	if zoneAggregated(s) {
		// A read for the whole pass that failed is tried again for this zone alone, so that
		// it costs the zones of the pass no more than their own queries would have.
		v, ok, err := l.fetched(ctx, z.id, s, at)
		if ok && (err == nil || ctx.Err() != nil) {
			return v, err
		}
		got, err := l.readings.ZoneAggregates(ctx, []int64{z.id}, s.Metric, aggregateOf(s), since, at.Add(readingsAhead))
		if err != nil {
			return rule.Value{}, err
		}
		return zoneValue(s, got[z.id]), nil
	}
	a, err := l.farmAggregate(ctx, z.farmID, s, at)
	if err != nil {
		return rule.Value{}, err
	}
	if a.N == 0 && s.Func != rule.FuncCount {
		// Nothing in the window: say so when no node of the farm reports the metric at all.
		nodes, err := l.farmNodes(ctx, z.farmID)
		if err != nil {
			return rule.Value{}, err
		}
		if !reports(nodes, s.Metric) {
			return rule.Missing(fmt.Sprintf("no node of the %s reports %s", s.Scope, s.Metric)), nil
		}
	}
	return zoneValue(s, a), nil
}

// farmAggregate is s over the farm's nodes as at at, read once for the zones evaluated at at
// (a pass for fresh readings, a dry run). A zone that finds that read failed (perhaps at the
// end of the context of the zone that made it) reads again with its own.
func (l *liveFacts) farmAggregate(ctx context.Context, farmID int64, s rule.Series, at time.Time) (fieldnodes.Aggregate, error) {
	read := func(ctx context.Context) (fieldnodes.Aggregate, error) {
		return l.readings.FarmAggregate(ctx, farmID, s.Metric, aggregateOf(s), at.Add(-s.Window), at.Add(readingsAhead))
	}
	key := farmSeries{farmID, s, at}
	l.mu.Lock()
	f := l.farms[key]
	if f == nil {
		f = &farmFetch{}
		l.farms[key] = f
	}
	l.mu.Unlock()
	f.once.Do(func() { f.a, f.err = read(ctx) })
	if f.err == nil {
		return f.a, nil
	}
	l.mu.Lock()
	if l.farms[key] == f {
		delete(l.farms, key)
	}
	l.mu.Unlock()
	if ctx.Err() != nil {
		return fieldnodes.Aggregate{}, f.err
	}
	return read(ctx)
}

// reports: one of nodes has ever reported metric.
func reports(nodes []fieldnodes.Node, metric string) bool {
	for _, n := range nodes {
		if _, ok := n.Latest[metric]; ok {
			return true
		}
	}
	return false
}
