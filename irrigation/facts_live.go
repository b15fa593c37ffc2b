package irrigation

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation/rule"
)

// liveFacts gathers facts from the database as they are now. One is used per evaluation pass:
// it keeps the aggregates prefetched and the node lists read for the pass.
type liveFacts struct {
	store    *Store
	readings Readings
	weather  *Weather
	balance  *WaterBalance

	mu      sync.Mutex
	nodes   map[int64][]fieldnodes.Node
	fetches map[rule.Series]*fetch // aggregates being read for the whole pass (prefetch)
	landed  chan struct{}          // cap 1: poked as each fetch is done
}

// fetch is one reading function's aggregates, read for a pass's zones at once: by zone, each
// zone's own or (farm scope) its farm's.
type fetch struct {
	at     time.Time
	done   chan struct{} // closed once values or err is set
	zones  map[int64]bool
	values map[int64]fieldnodes.Aggregate
	err    error
}

func newLiveFacts(store *Store, readings Readings, weather *Weather, balance *WaterBalance) *liveFacts {
	return &liveFacts{store: store, readings: readings, weather: weather, balance: balance,
		nodes: map[int64][]fieldnodes.Node{}, fetches: map[rule.Series]*fetch{}, landed: make(chan struct{}, 1)}
}

// prefetch starts reading, as at at, the aggregates that the zones of a pass need (needs by
// zone): one query per reading function for all of them (of a farm function, for all their
// farms), instead of one per zone. A pass for the readings of a busy ingest has dozens of
// zones; their facts then cost a round trip or two, not dozens. It returns at once: a zone's
// evaluation waits only for the functions it uses, so a zone whose rule reads one reading is
// not kept waiting by the hourly means of busier zones.
func (l *liveFacts) prefetch(ctx context.Context, at time.Time, zones map[int64]*zoneContext, needs map[int64]factNeeds) {
	zonesOf := map[rule.Series][]int64{}
	for zone, n := range needs {
		for s := range n.series {
			zonesOf[s] = append(zonesOf[s], zone)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for s, ids := range zonesOf {
		f := &fetch{at: at, done: make(chan struct{}), zones: map[int64]bool{}}
		keyOf := map[int64]int64{} // zone → the zone or its farm
		for _, z := range ids {
			f.zones[z] = true
			keyOf[z] = z
			if s.Scope == rule.ScopeFarm {
				keyOf[z] = zones[z].farmID
			}
		}
		l.fetches[s] = f
		go func() {
			defer poke(l.landed)
			defer close(f.done)
			keys := slices.Compact(slices.Sorted(maps.Values(keyOf)))
			got, err := l.read(ctx, s, at, keys)
			if err != nil {
				f.err = fmt.Errorf("%s of %d %ss: %w", s.Key(), len(keys), s.Scope, err)
				return
			}
			f.values = make(map[int64]fieldnodes.Aggregate, len(ids))
			for z, k := range keyOf {
				f.values[z] = got[k]
			}
		}()
	}
}

// read reads s as at at for these zones or (farm scope) farms.
func (l *liveFacts) read(ctx context.Context, s rule.Series, at time.Time, ids []int64) (map[int64]fieldnodes.Aggregate, error) {
	since, until := at.Add(-s.Window), at.Add(readingsAhead)
	if s.Scope == rule.ScopeFarm {
		return l.readings.FarmAggregates(ctx, ids, s.Metric, aggregateOf(s), since, until)
	}
	return l.readings.ZoneAggregates(ctx, ids, s.Metric, aggregateOf(s), since, until)
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

// fetched is zone z's aggregate of s as prefetched at at (ok false: not prefetched).
func (l *liveFacts) fetched(ctx context.Context, z int64, s rule.Series, at time.Time) (a fieldnodes.Aggregate, ok bool, err error) {
	l.mu.Lock()
	f := l.fetches[s]
	l.mu.Unlock()
	if f == nil || !f.at.Equal(at) || !f.zones[z] {
		return a, false, nil
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return a, true, ctx.Err()
	}
	if f.err != nil {
		return a, true, f.err
	}
	return f.values[z], true, nil
}

// readingsAhead is how far ahead of the evaluation a reading's time may be and still count: a
// device's clock may run a little fast, but one that runs hours fast (the ingest takes readings
// up to a day ahead) would otherwise bend a window's trend or mean with readings from later on;
// those count once their time comes.
const readingsAhead = 5 * time.Minute

// aggregateOf is the aggregate ZoneAggregates and FarmAggregates compute for s (sum and count
// from the mean).
func aggregateOf(s rule.Series) string {
	switch s.Func {
	case rule.FuncSum, rule.FuncCount:
		return rule.FuncMean
	}
	return s.Func
}

// aggregateValue is s's value from its zone or farm aggregate.
func aggregateValue(s rule.Series, a fieldnodes.Aggregate) rule.Value {
	v, n := a.Value, a.N
	switch {
	case s.Func == rule.FuncTrend && n > 0 && math.IsNaN(v):
		return rule.Missing(noTrend)
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
	a, ok, err := l.fetched(ctx, z.id, s, at)
	if !ok || (err != nil && ctx.Err() == nil) {
		// Not prefetched, or the read for the whole pass failed: this zone's alone, so that a
		// failure costs the zones of the pass no more than their own queries would have.
		key := z.id
		if s.Scope == rule.ScopeFarm {
			key = z.farmID
		}
		var got map[int64]fieldnodes.Aggregate
		got, err = l.read(ctx, s, at, []int64{key})
		a = got[key]
	}
	if err != nil {
		return rule.Value{}, err
	}
	if s.Scope == rule.ScopeFarm && a.N == 0 && s.Func != rule.FuncCount {
		// Nothing in the window: say so when no node of the farm reports the metric at all.
		nodes, err := l.farmNodes(ctx, z.farmID)
		if err != nil {
			return rule.Value{}, err
		}
		if !reports(nodes, s.Metric) {
			return rule.Missing(fmt.Sprintf("no node of the %s reports %s", s.Scope, s.Metric)), nil
		}
	}
	return aggregateValue(s, a), nil
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
