package irrigation

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation/agronomy"
	"github.com/aghali/aghali/irrigation/rule"
	"github.com/aghali/aghali/irrigation/schedule"
)

// Backtest limits.
const (
	// MaxBacktestSpan is the longest period a backtest replays.
	MaxBacktestSpan = 92 * 24 * time.Hour
	// MaxBacktestSteps bounds a rule backtest's evaluations (span / step).
	MaxBacktestSteps = 20_000
	// DefaultBacktestStep is how often a rule backtest evaluates the rule.
	DefaultBacktestStep = 15 * time.Minute
)

// BacktestResult is what a rule or schedule would have decided over stored history. Nothing
// is stored (beyond ET0 and water-balance days computed on the way) and nothing is sent.
type BacktestResult struct {
	From, To    time.Time
	Step        time.Duration // rules: the evaluation step
	Evaluations int           // rule evaluations, or schedule occurrences
	Decisions   []Decision    // in time order
	// Totals of the irrigate decisions.
	Runs        int
	WaterS      int
	DepthMM     float64
	VolumeL     float64
	Assumptions []string // how the replay models what it cannot know
}

func (r *BacktestResult) add(d Decision) {
	r.Decisions = append(r.Decisions, d)
	if d.Action != DecisionIrrigate {
		return
	}
	r.Runs++
	r.WaterS += d.DurationS
	if d.DepthMM != nil {
		r.DepthMM += *d.DepthMM
	}
	if d.VolumeL != nil {
		r.VolumeL += *d.VolumeL
	}
}

func checkSpan(from, to time.Time) error {
	switch {
	case !to.After(from):
		return invalid("to", "must be after from")
	case to.Sub(from) > MaxBacktestSpan:
		return invalid("to", "a backtest replays at most %d days", int(MaxBacktestSpan.Hours()/24))
	}
	return nil
}

// BacktestRule replays a rule (stored or not) over [from, to), evaluating it every step on its
// zone, or on every zone of its farm (zoneID narrows a farm-wide rule to one zone).
func (d *Decider) BacktestRule(ctx context.Context, r Rule, zoneID *int64, from, to time.Time, step time.Duration) (BacktestResult, error) {
	res := BacktestResult{From: from, To: to, Step: step}
	if step == 0 {
		step = DefaultBacktestStep
		res.Step = step
	}
	if err := checkSpan(from, to); err != nil {
		return res, err
	}
	if step < time.Minute || step > 6*time.Hour {
		return res, invalid("step_s", "must be between 60 and 21600 s")
	}
	if n := to.Sub(from) / step; n > MaxBacktestSteps {
		return res, invalid("step_s", "%d evaluations; at most %d (a longer step, or a shorter period)", n, MaxBacktestSteps)
	}
	if err := d.store.ruleScope(ctx, &r); err != nil {
		return res, err
	}
	c, err := compileRule(&r)
	if err != nil {
		return res, err
	}
	zones, err := d.zonesOf(ctx, r, zoneID)
	if err != nil {
		return res, err
	}
	res.Assumptions = []string{
		"facts are computed from the readings stored for the period, at each step",
		"the rule's own decisions count as the zone's irrigation (history facts, water balance); other rules are not replayed",
		"the water balance continues from the depletion stored for the day before the period with the stored ET0, Kc and rain, " +
			"and the irrigation this replay decides instead of what was actually applied",
	}
	needs := newNeeds()
	needs.add(c.cond)
	needs.add(c.reset)
	for _, z := range zones {
		h, err := d.history(ctx, z, from, to, needs, OriginRule, r.ID)
		if err != nil {
			return res, err
		}
		st := rule.NewState()
		for t := from; t.Before(to); t = t.Add(step) {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			res.Evaluations++
			f, err := h.facts(ctx, z, t, needs)
			if err != nil {
				return res, err
			}
			evs, err := evaluateOn(z, []*compiled{c}, []rule.State{st}, f, t)
			if err != nil {
				return res, err
			}
			ev := evs[0]
			next := ev.step.Next
			zid, rid := z.id, r.ID
			dec := Decision{FarmID: z.farmID, ZoneID: &zid, At: t, Origin: OriginRule, Facts: ev.facts}
			if rid != 0 {
				dec.OriginID = &rid
			}
			switch {
			case ev.step.Act && c.Action == rule.ActionIrrigate:
				if busy := h.busy(t); busy != "" {
					next, ev.step.Act = st, false // as live: the act waits for the zone
					next.HoldingSince = ev.step.Next.HoldingSince
					break
				}
				secs := c.DurationS
				amount := rule.FormatDuration(time.Duration(secs) * time.Second)
				if c.DepthMM > 0 {
					if secs, err = z.runtimeFor(c.DepthMM); err != nil {
						dec.Action, dec.Reason = DecisionSkip, fmt.Sprintf("rule %q would water %g mm but %v", c.Name, c.DepthMM, err)
						res.add(dec)
						next, ev.step.Act = st, false
						next.HoldingSince = ev.step.Next.HoldingSince
						break
					}
					amount = fmt.Sprintf("%g mm (%s)", c.DepthMM, rule.FormatDuration(time.Duration(secs)*time.Second))
				}
				reason := fmt.Sprintf("rule %q: %s; water %s", c.Name, ev.explain, amount)
				h.water(&dec, z, secs, reason)
				res.add(dec)
			case ev.step.Act && c.Action == rule.ActionAlert:
				dec.Action, dec.Reason = DecisionAlert, fmt.Sprintf("rule %q would raise a %s alert: %s", c.Name, c.Severity, ev.explain)
				res.add(dec)
			case ev.step.Release && c.Action == rule.ActionAlert:
				dec.Action, dec.Reason = DecisionResolve, fmt.Sprintf("rule %q alert resolved: %s", c.Name, ev.step.Reason)
				res.add(dec)
			case ev.step.Act:
				dec.Action, dec.Reason = DecisionSkip, fmt.Sprintf("rule %q would veto watering: %s", c.Name, ev.explain)
				res.add(dec)
			case ev.step.Release:
				dec.Action, dec.Reason = DecisionResolve, fmt.Sprintf("rule %q would stop vetoing: %s", c.Name, ev.step.Reason)
				res.add(dec)
			}
			st = next
		}
	}
	sortDecisions(res.Decisions)
	return res, nil
}

// BacktestSchedule replays a schedule (stored or not) over [from, to): each occurrence with
// its restrictions, skip conditions, seasonal adjustment, water-balance mode and cycles.
func (d *Decider) BacktestSchedule(ctx context.Context, sc Schedule, from, to time.Time) (BacktestResult, error) {
	res := BacktestResult{From: from, To: to}
	if err := checkSpan(from, to); err != nil {
		return res, err
	}
	if err := d.store.validateSchedule(ctx, &sc); err != nil {
		return res, err
	}
	spec, err := d.store.spec(sc)
	if err != nil {
		return res, err
	}
	z, err := d.store.zoneContext(ctx, sc.ZoneID)
	if err != nil {
		return res, err
	}
	res.Assumptions = []string{
		"skip conditions are checked on the readings stored for each occurrence; forecasts are not kept, so forecast skips are not replayed",
		"skip rules are not replayed",
		"the schedule's own runs count as the zone's irrigation; the water balance continues from the depletion stored for the day " +
			"before the period with the stored ET0, Kc and rain, and the irrigation this replay decides",
	}
	needs := sc.skipNeeds()
	origin := OriginSchedule
	if sc.Mode == ModeWaterBalance {
		origin = OriginWaterBalance
	}
	h, err := d.history(ctx, z, from, to, needs, origin, sc.ID)
	if err != nil {
		return res, err
	}
	if sc.Mode == ModeWaterBalance && h.balance == nil {
		res.Assumptions = append(res.Assumptions, "the zone has no water balance: "+h.balanceProblem)
	}
	for occ := spec.Next(from.Add(-time.Nanosecond)); !occ.IsZero() && occ.Before(to); occ = spec.Next(occ) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		res.Evaluations++
		f, err := h.facts(ctx, z, occ, needs)
		if err != nil {
			return res, err
		}
		var status *BalanceStatus
		if sc.Mode == ModeWaterBalance {
			status = h.status(z, occ)
		}
		describe := describeOccurrence(sc, spec, schedule.Decision{Occurrence: occ})
		p := planOccurrence(sc, z, f, status, "", occ, occ, describe)
		zid := z.id
		dec := Decision{FarmID: z.farmID, ZoneID: &zid, At: occ, Origin: p.origin, Facts: p.facts}
		if sc.ID != 0 {
			id := sc.ID
			dec.OriginID = &id
		}
		if p.action != DecisionIrrigate {
			dec.Action, dec.Reason = p.action, p.reason
			res.add(dec)
			continue
		}
		if busy := h.busy(occ); busy != "" {
			dec.Action, dec.Reason = DecisionSkip, p.reason+" not fired: "+busy
			res.add(dec)
			continue
		}
		left, at, cycle := p.totalS, occ, 1
		for left > 0 {
			secs := left
			if sc.CycleS > 0 && secs > sc.CycleS {
				secs = sc.CycleS
			}
			cd := dec
			cd.At = at
			reason := p.reason
			if sc.CycleS > 0 && p.totalS > sc.CycleS {
				reason += fmt.Sprintf("; cycle %d: %s", cycle, rule.FormatDuration(time.Duration(secs)*time.Second))
			}
			start := h.water(&cd, z, secs, reason)
			res.add(cd)
			left -= secs
			at = start.Add(time.Duration(cd.DurationS+sc.SoakS) * time.Second)
			cycle++
		}
	}
	return res, nil
}

func sortDecisions(ds []Decision) {
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].At.Before(ds[j].At) })
}

// zonesOf lists the zones a rule applies to (narrowed to zoneID for a farm-wide rule).
func (d *Decider) zonesOf(ctx context.Context, r Rule, zoneID *int64) ([]*zoneContext, error) {
	var ids []int64
	switch {
	case r.ZoneID != nil:
		if zoneID != nil && *zoneID != *r.ZoneID {
			return nil, invalid("zone_id", "the rule is zone %d's", *r.ZoneID)
		}
		ids = []int64{*r.ZoneID}
	case zoneID != nil:
		ids = []int64{*zoneID}
	}
	var contexts map[int64]*zoneContext
	var err error
	if ids == nil {
		rows, err := d.store.db.Query(ctx, `SELECT id FROM zones WHERE farm_id = $1 ORDER BY id`, r.FarmID)
		if err != nil {
			return nil, interpretError(err, "zones")
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, interpretError(err, "zones")
			}
			ids = append(ids, id)
		}
		rows.Close()
	}
	if contexts, err = d.store.zoneContexts(ctx, ids); err != nil {
		return nil, err
	}
	out := make([]*zoneContext, 0, len(ids))
	for _, id := range ids {
		z := contexts[id]
		if z == nil {
			return nil, invalid("zone_id", "%d does not exist", id)
		}
		if z.farmID != r.FarmID {
			return nil, invalid("zone_id", "%d is on another farm", id)
		}
		out = append(out, z)
	}
	return out, nil
}

// nodeSeries is one node's metric at one-minute resolution over the replayed period.
type nodeSeries struct {
	node   fieldnodes.Node
	points []fieldnodes.Point // sorted by TS; each a minute
	bucket time.Duration
}

// history is the replay's view of the past: readings loaded once, the stored ET0 and
// water-balance days, the zone's actual runs, and the irrigation the replay itself decides.
type history struct {
	d       *Decider
	z       *zoneContext
	series  map[string][]*nodeSeries // by scope + metric
	rain    []*nodeSeries
	gauges  int
	et0     map[time.Time]ET0Day
	spans   []wateredSpan // actual runs (not this rule's or schedule's), then the replay's
	minOff  time.Duration
	source  *WaterSource
	balance *simBalance
	// balanceProblem says why there is no balance.
	balanceProblem string
}

func seriesKey(scope, metric string) string { return scope + "/" + metric }

// history loads what a replay of [from, to) needs for zone z.
func (d *Decider) history(ctx context.Context, z *zoneContext, from, to time.Time, needs factNeeds, origin string, originID int64) (*history, error) {
	h := &history{d: d, z: z, series: map[string][]*nodeSeries{}, et0: map[time.Time]ET0Day{}}
	nodes, err := d.readings.Nodes(ctx, z.farmID)
	if err != nil {
		return nil, fmt.Errorf("nodes of farm %d: %w", z.farmID, err)
	}
	maxWindow := 24 * time.Hour
	for s := range needs.series {
		maxWindow = max(maxWindow, s.Window)
	}
	load := func(n fieldnodes.Node, metric string) (*nodeSeries, error) {
		lo, hi := from.Add(-maxWindow), to.Add(time.Minute)
		points := int(hi.Sub(lo) / time.Minute)
		s, err := d.readings.Readings(ctx, n.ID, metric, lo, hi, points)
		if err != nil {
			return nil, fmt.Errorf("%s of node %d: %w", metric, n.ID, err)
		}
		return &nodeSeries{node: n, points: s.Points, bucket: s.Bucket}, nil
	}
	for _, s := range sortedSeries(needs.series) {
		key := seriesKey(s.Scope, s.Metric)
		if _, ok := h.series[key]; ok {
			continue
		}
		h.series[key] = []*nodeSeries{}
		for _, n := range nodes {
			if _, reports := n.Latest[s.Metric]; !reports {
				continue
			}
			if s.Scope == rule.ScopeZone && (n.ZoneID == nil || *n.ZoneID != z.id) {
				continue
			}
			ns, err := load(n, s.Metric)
			if err != nil {
				return nil, err
			}
			h.series[key] = append(h.series[key], ns)
		}
	}
	for _, n := range weatherNodes(nodes, MetricRain) {
		ns, err := load(n, MetricRain)
		if err != nil {
			return nil, err
		}
		h.rain = append(h.rain, ns)
	}
	h.gauges = len(h.rain)
	firstDay, _, _ := localDay(from, z.loc)
	lastDay, _, _ := localDay(to, z.loc)
	days, err := d.Weather.Days(ctx, z.farmID, firstDay.AddDate(0, 0, -1), lastDay)
	if err != nil {
		return nil, err
	}
	for _, e := range days {
		h.et0[e.Day] = e
	}
	// The zone's actual runs from others than the replayed rule or schedule.
	rows, err := d.store.db.Query(ctx, `SELECT started_at, LEAST(COALESCE(ended_at, $3), COALESCE(ends_at, $3), $3)
		FROM irrigation_runs WHERE zone_id = $1 AND started_at IS NOT NULL AND started_at < $3
			AND COALESCE(ended_at, ends_at, $3) >= $2 AND NOT (origin = $4 AND origin_id IS NOT DISTINCT FROM $5)
		ORDER BY started_at`, z.id, from.Add(-48*time.Hour), to, origin, originID)
	if err != nil {
		return nil, interpretError(err, "runs of the zone")
	}
	for rows.Next() {
		var sp wateredSpan
		if err := rows.Scan(&sp.from, &sp.to); err != nil {
			rows.Close()
			return nil, interpretError(err, "runs of the zone")
		}
		h.spans = append(h.spans, sp)
	}
	rows.Close()
	var minOff int
	if err := d.store.db.QueryRow(ctx, `SELECT min_off_s FROM zones WHERE id = $1`, z.id).Scan(&minOff); err != nil {
		return nil, interpretError(err, "zone")
	}
	h.minOff = time.Duration(minOff) * time.Second
	if z.waterSourceID != nil {
		ws, err := d.store.WaterSource(ctx, *z.waterSourceID)
		if err != nil {
			return nil, err
		}
		if len(ws.EnergyWindows) > 0 {
			h.source = &ws
		}
	}
	a, problem := z.agronomy()
	if problem == "" {
		stored, err := d.Balance.Days(ctx, z.id, firstDay.AddDate(0, 0, -1), lastDay)
		if err != nil {
			return nil, err
		}
		h.balance = newSimBalance(z, a, stored, firstDay)
		h.balance.rainSoFar = func(from, t time.Time) float64 {
			v := h.rainBetween(from, t)
			if v.Missing {
				return 0
			}
			return v.V.(float64)
		}
	} else {
		h.balanceProblem = problem
	}
	return h, nil
}

// aggregateAt computes a reading function at t from the loaded series.
func (h *history) aggregateAt(s rule.Series, t time.Time) rule.Value {
	list := h.series[seriesKey(s.Scope, s.Metric)]
	if len(list) == 0 {
		if s.Func == rule.FuncCount {
			return rule.Value{V: 0.0}
		}
		return rule.Missing(fmt.Sprintf("no node of the %s reports %s", s.Scope, s.Metric))
	}
	a := newAggregate()
	lo := t.Add(-s.Window)
	for _, ns := range list {
		i := sort.Search(len(ns.points), func(i int) bool { return !ns.points[i].TS.Before(lo) })
		used := false
		for ; i < len(ns.points) && !ns.points[i].TS.After(t); i++ {
			p := ns.points[i]
			a.addBucket(p.TS.Add(ns.bucket/2), p.N, p.Mean, p.Min, p.Max)
			a.addLast(p.TS, p.Mean)
			used = true
		}
		if used {
			a.nodes++
		}
		a.endNode()
	}
	if s.Func == rule.FuncLast && a.n > 0 {
		return rule.Value{V: a.last, N: 1}
	}
	return a.value(s.Func)
}

// rainBetween is the mean over gauges of the rain in [from, t].
func (h *history) rainBetween(from, t time.Time) rule.Value {
	if h.gauges == 0 {
		return rule.Missing("the farm has no rain gauge")
	}
	total := 0.0
	for _, ns := range h.rain {
		i := sort.Search(len(ns.points), func(i int) bool { return !ns.points[i].TS.Before(from) })
		for ; i < len(ns.points) && !ns.points[i].TS.After(t); i++ {
			total += ns.points[i].Mean * float64(ns.points[i].N)
		}
	}
	return rule.NumberValue(math.Round(total/float64(h.gauges)*100) / 100)
}

func (h *history) facts(_ context.Context, z *zoneContext, at time.Time, needs factNeeds) (rule.Facts, error) {
	f := rule.Facts{Vars: map[string]rule.Value{}, Series: map[rule.Series]rule.Value{}}
	for s := range needs.series {
		f.Series[s] = h.aggregateAt(s, at)
	}
	all := map[string]rule.Value{}
	timeFacts(z, at, all)
	zoneFacts(z, at, all)
	historyFacts(z, h.spans, at, all)
	day, midnight, end := localDay(at, z.loc)
	all[rule.VarRain24h] = h.rainBetween(at.Add(-24*time.Hour), at)
	all[rule.VarRainToday] = h.rainBetween(midnight, at)
	if e, ok := h.et0[day]; ok && e.ET0 != nil {
		v := rule.NumberValue(round3(*e.ET0 * math.Min(1, at.Sub(midnight).Hours()/end.Sub(midnight).Hours())))
		if !e.Final {
			v = rule.NumberValue(*e.ET0)
		}
		v.Note = e.Method + ", pro rata of the day"
		all[rule.VarET0Today] = v
	} else {
		all[rule.VarET0Today] = rule.Missing("no ET0 for the day")
	}
	if e, ok := h.et0[day.AddDate(0, 0, -1)]; ok {
		all[rule.VarET0Yesterday] = et0Value(e)
	} else {
		all[rule.VarET0Yesterday] = rule.Missing("no ET0 for the day")
	}
	all[rule.VarForecastRain24h] = rule.Missing("forecasts are not kept for backtests")
	if h.balance != nil {
		balanceFacts(*h.status(z, at), all)
	} else {
		balanceFacts(BalanceStatus{Problem: h.balanceProblem}, all)
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

// status is the replayed water balance at t.
func (h *history) status(z *zoneContext, t time.Time) *BalanceStatus {
	if h.balance == nil {
		return &BalanceStatus{Problem: h.balanceProblem}
	}
	return h.balance.at(t)
}

// busy says why the zone cannot start a run at t: a run (actual or replayed) still waters it,
// or it rests its min_off_s after the last one. "" when it is free.
func (h *history) busy(t time.Time) string {
	for _, sp := range h.spans {
		if !sp.from.After(t) && sp.to.After(t) {
			return "the zone is being watered"
		}
		if h.minOff > 0 && !sp.to.After(t) && t.Sub(sp.to) < h.minOff {
			return fmt.Sprintf("the zone rests %s after a run", rule.FormatDuration(h.minOff))
		}
	}
	return ""
}

// water records a replayed run of secs at dec.At (capped at the zone's max runtime, delayed to
// its source's energy window) in the decision, the history and the water balance, and returns
// when the water starts.
func (h *history) water(dec *Decision, z *zoneContext, secs int, reason string) time.Time {
	if secs > z.maxRuntimeS {
		reason += fmt.Sprintf(" (capped from %d s to the zone's max runtime %d s)", secs, z.maxRuntimeS)
		secs = z.maxRuntimeS
	}
	start := dec.At
	if h.source != nil {
		if next, ok := nextInWindows(h.source.EnergyWindows, start.In(z.loc)); ok && next.After(start) {
			reason += fmt.Sprintf("; waits for %q's energy window until %s", h.source.Name, next.In(z.loc).Format("15:04"))
			start = next
		}
	}
	dec.Action, dec.Reason = DecisionIrrigate, reason
	dec.withWater(z, secs)
	if !start.Equal(dec.At) {
		s := start
		dec.StartsAt = &s
	}
	end := start.Add(time.Duration(secs) * time.Second)
	h.spans = append(h.spans, wateredSpan{from: start, to: end})
	sort.Slice(h.spans, func(i, j int) bool { return h.spans[i].from.Before(h.spans[j].from) })
	if h.balance != nil {
		if d := z.grossDepthFor(secs); !math.IsNaN(d) {
			h.balance.irrigate(start, d)
		}
	}
	return start
}

// nextInWindows is the first instant at or after at (local) inside one of the energy windows;
// ok is false when there are none that ever open.
func nextInWindows(ws []EnergyWindow, at time.Time) (time.Time, bool) {
	var wins rule.Windows
	for _, w := range ws {
		win, err := rule.ParseWindow(w.From, w.To, nil)
		if err != nil {
			continue
		}
		wins = append(wins, win)
	}
	if len(wins) == 0 {
		return at, true
	}
	t := at.Truncate(time.Minute)
	if t.Before(at) {
		t = t.Add(time.Minute)
	}
	for range 2 * 24 * 60 {
		if wins.Contains(t) {
			return t, true
		}
		t = t.Add(time.Minute)
	}
	return time.Time{}, false
}

// simBalance is the water balance a replay keeps: the stored days' ET0, Kc, TAW, RAW and rain
// from the stored depletion before the period, with the replay's own irrigation.
type simBalance struct {
	z       *zoneContext
	a       zoneAgronomy
	days    map[time.Time]BalanceDay
	first   time.Time // the period's first local day
	start   float64   // Dr at the start of first
	cache   map[time.Time]float64
	applied map[time.Time][]applied // gross mm by local day, when
	// rainSoFar is the rain measured in [from, t]: a day's effective rain counts as it falls.
	rainSoFar func(from, t time.Time) float64
}

type applied struct {
	at time.Time
	mm float64
}

func newSimBalance(z *zoneContext, a zoneAgronomy, stored []BalanceDay, first time.Time) *simBalance {
	b := &simBalance{z: z, a: a, days: map[time.Time]BalanceDay{}, first: first, cache: map[time.Time]float64{},
		applied: map[time.Time][]applied{}}
	for _, d := range stored {
		b.days[d.Day] = d
	}
	if prev, ok := b.days[first.AddDate(0, 0, -1)]; ok {
		b.start = prev.Depletion
	}
	return b
}

func (b *simBalance) irrigate(at time.Time, grossMM float64) {
	day, _, _ := localDay(at, b.z.loc)
	b.applied[day] = append(b.applied[day], applied{at, grossMM})
	for d := range b.cache {
		if d.After(day) {
			delete(b.cache, d)
		}
	}
}

// dayTerms is a day's crop water use and effective rain (from the stored day, or, for a day
// with nothing stored, none) and its TAW and RAW.
func (b *simBalance) dayTerms(day time.Time, dr float64) (etc, peff, taw, raw float64) {
	taw = b.a.root.TAW()
	raw = agronomy.RAW(b.a.root.P, taw)
	d, ok := b.days[day]
	if !ok {
		return 0, 0, taw, raw
	}
	taw, raw = d.TAW, d.RAW
	return d.ETc * agronomy.Ks(dr, taw, raw), d.EffectiveRain, taw, raw
}

// startOf is the depletion at the start of a local day.
func (b *simBalance) startOf(day time.Time) float64 {
	if !day.After(b.first) {
		return b.start
	}
	if v, ok := b.cache[day]; ok {
		return v
	}
	prev := day.AddDate(0, 0, -1)
	dr := b.startOf(prev)
	etc, peff, taw, _ := b.dayTerms(prev, dr)
	net := 0.0
	for _, a := range b.applied[prev] {
		net += a.mm * b.z.eff()
	}
	dr = math.Max(0, math.Min(taw, dr+etc-peff-net))
	b.cache[day] = dr
	return dr
}

// at is the replayed balance at t: the day's start, its crop water use pro rata of the hours
// gone by, its effective rain as it fell, less the replay's irrigation so far.
func (b *simBalance) at(t time.Time) *BalanceStatus {
	day, start, end := localDay(t, b.z.loc)
	dr := b.startOf(day)
	etc, peff, taw, raw := b.dayTerms(day, dr)
	dr += t.Sub(start).Hours() / end.Sub(start).Hours() * etc
	if d, ok := b.days[day]; ok && d.Rain > 0 && peff > 0 && b.rainSoFar != nil {
		dr -= peff * math.Min(1, b.rainSoFar(start, t)/d.Rain)
	}
	for _, a := range b.applied[day] {
		if !a.at.After(t) {
			dr -= a.mm * b.z.eff()
		}
	}
	dr = math.Max(0, math.Min(taw, dr))
	st := &BalanceStatus{ZoneID: b.z.id, At: t, Crop: b.a.crop.Name, Soil: b.a.soil, Depletion: dr, TAW: taw, RAW: raw,
		NeedsWater: dr >= raw && dr > 0, NetRefill: dr, Efficiency: b.z.eff()}
	if d, ok := b.days[day]; ok {
		st.Kc, st.P = d.Kc, d.P
	}
	st.GrossRefill = dr / st.Efficiency
	if b.z.rate != nil && dr > 0 {
		st.RuntimeS, _ = b.z.runtimeFor(dr)
	}
	return st
}

// Describe writes a backtest's totals for people.
func (r BacktestResult) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d decisions, %d runs, %s of water", len(r.Decisions), r.Runs,
		rule.FormatDuration(time.Duration(r.WaterS)*time.Second))
	if r.VolumeL > 0 {
		fmt.Fprintf(&b, ", %.0f L", r.VolumeL)
	}
	return b.String()
}
