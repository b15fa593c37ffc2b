package irrigation

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation/agronomy"
	"github.com/aghali/aghali/irrigation/rule"
)

// Readings is what decisions read of the field nodes and their readings. Package fieldnodes
// satisfies it.
type Readings interface {
	ZoneReadings
	// FarmAggregates is ZoneAggregates over all the nodes of each farm.
	FarmAggregates(ctx context.Context, farmIDs []int64, metric, agg string, since, until time.Time) (map[int64]fieldnodes.Aggregate, error)
	// Nodes lists a farm's nodes with their latest values.
	Nodes(ctx context.Context, farmID int64) ([]fieldnodes.Node, error)
	// Readings returns one node's metric in [from, to) as at most maxPoints equal buckets.
	Readings(ctx context.Context, nodeID int64, metric string, from, to time.Time, maxPoints int) (fieldnodes.Series, error)
}

// zoneContext is what a decision about a zone needs to know besides readings: the zone's
// agronomy and hydraulics, its farm's time zone and location.
type zoneContext struct {
	id, farmID    int64
	name, method  string
	crop, soil    string
	rootDepth     *float64
	rate          *float64 // application rate, mm/h
	efficiency    *float64
	plantingDate  *time.Time
	thetaFC       *float64
	thetaWP       *float64
	maxRuntimeS   int
	waterSourceID *int64
	areaM2        float64
	valveFlowLPM  *float64 // the nominal flow of the valve rules and schedules open (the zone's first)
	timezone      string
	loc           *time.Location
	lat, lon      *float64
}

// methodEfficiency is the application efficiency assumed for a zone without one: FAO-56
// Table 20's typical figures (drip 0.9, sprinkler 0.75, furrow 0.6).
func methodEfficiency(method string) float64 {
	switch method {
	case MethodDrip:
		return 0.9
	case MethodSprinkler:
		return 0.75
	case MethodFurrow:
		return 0.6
	}
	return 0.7
}

// eff is the zone's application efficiency, its own or its method's.
func (z *zoneContext) eff() float64 {
	if z.efficiency != nil {
		return *z.efficiency
	}
	return methodEfficiency(z.method)
}

// runtimeFor converts a net depth (mm reaching the roots) into whole seconds of watering
// through the zone's application rate and efficiency.
func (z *zoneContext) runtimeFor(netMM float64) (int, error) {
	if z.rate == nil {
		return 0, fmt.Errorf("zone %d (%s) has no application rate (application_rate_mm_h): a depth cannot become a runtime", z.id, z.name)
	}
	minutes, err := agronomy.RuntimeMinutes(netMM/z.eff(), *z.rate)
	if err != nil {
		return 0, fmt.Errorf("zone %d: %w", z.id, err)
	}
	return max(1, int(math.Ceil(minutes*60))), nil
}

// volumeFor estimates the litres a run of seconds applies: the valve's nominal flow when known,
// else the application rate over the zone's area. NaN when neither is known.
func (z *zoneContext) volumeFor(seconds int) float64 {
	switch {
	case z.valveFlowLPM != nil:
		return *z.valveFlowLPM * float64(seconds) / 60
	case z.rate != nil && z.areaM2 > 0:
		return *z.rate * float64(seconds) / 3600 * z.areaM2
	}
	return math.NaN()
}

// grossDepthFor is the depth (mm over the zone) a run of seconds applies.
func (z *zoneContext) grossDepthFor(seconds int) float64 {
	if z.rate != nil {
		return *z.rate * float64(seconds) / 3600
	}
	if z.valveFlowLPM != nil && z.areaM2 > 0 {
		return *z.valveFlowLPM * float64(seconds) / 60 / z.areaM2
	}
	return math.NaN()
}

const zoneContextSQL = `SELECT z.id, z.farm_id, z.name, z.method, z.crop, z.soil, z.root_depth_m, z.application_rate_mm_h,
	z.efficiency, z.planting_date, z.theta_fc, z.theta_wp, z.max_runtime_s, z.water_source_id,
	ST_Area(z.geom::geography), f.timezone, ST_Y(f.location), ST_X(f.location),
	(SELECT v.nominal_flow_lpm FROM valves v WHERE v.zone_id = z.id ORDER BY v.id LIMIT 1)
	FROM zones z JOIN farms f ON f.id = z.farm_id `

func (s *Store) scanZoneContext(row pgx.Row) (*zoneContext, error) {
	z := &zoneContext{}
	err := row.Scan(&z.id, &z.farmID, &z.name, &z.method, &z.crop, &z.soil, &z.rootDepth, &z.rate, &z.efficiency,
		&z.plantingDate, &z.thetaFC, &z.thetaWP, &z.maxRuntimeS, &z.waterSourceID, &z.areaM2, &z.timezone, &z.lat, &z.lon,
		&z.valveFlowLPM)
	if err != nil {
		return nil, interpretError(err, "zone")
	}
	if z.loc, err = s.location(z.timezone); err != nil {
		return nil, err
	}
	return z, nil
}

// zoneContext loads one zone's context.
func (s *Store) zoneContext(ctx context.Context, zoneID int64) (*zoneContext, error) {
	return s.scanZoneContext(s.db.QueryRow(ctx, zoneContextSQL+`WHERE z.id = $1`, zoneID))
}

// zoneContexts loads the contexts of zones (all zones when ids is nil).
func (s *Store) zoneContexts(ctx context.Context, ids []int64) (map[int64]*zoneContext, error) {
	q, args := zoneContextSQL+`ORDER BY z.id`, []any{}
	if ids != nil {
		q, args = zoneContextSQL+`WHERE z.id = ANY($1) ORDER BY z.id`, []any{ids}
	}
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, interpretError(err, "zones")
	}
	return s.scanZoneContexts(rows)
}

func (s *Store) scanZoneContexts(rows pgx.Rows) (map[int64]*zoneContext, error) {
	defer rows.Close()
	out := map[int64]*zoneContext{}
	for rows.Next() {
		z, err := s.scanZoneContext(rows)
		if err != nil {
			return nil, err
		}
		out[z.id] = z
	}
	return out, interpretError(rows.Err(), "zones")
}

// factNeeds is the union of the facts some programs use.
type factNeeds struct {
	series map[rule.Series]bool
	vars   map[string]bool
}

func newNeeds() factNeeds {
	return factNeeds{series: map[rule.Series]bool{}, vars: map[string]bool{}}
}

func (n factNeeds) add(p *rule.Program) {
	if p == nil {
		return
	}
	for _, s := range p.Series() {
		n.series[s] = true
	}
	for _, v := range p.Vars() {
		n.vars[v] = true
	}
}

func (n factNeeds) addVars(names ...string) {
	for _, v := range names {
		n.vars[v] = true
	}
}

func (n factNeeds) addSeries(s ...rule.Series) {
	for _, x := range s {
		n.series[x] = true
	}
}

func (n factNeeds) anyVar(group string) bool {
	for v := range n.vars {
		if d, ok := rule.LookupVar(v); ok && d.Group == group {
			return true
		}
	}
	return false
}

// factSource gathers the facts about a zone at a moment: the live one reads the database now,
// the backtest's replays stored history.
type factSource interface {
	facts(ctx context.Context, z *zoneContext, at time.Time, needs factNeeds) (rule.Facts, error)
}

// timeFacts are the time facts of a zone's farm at a moment.
func timeFacts(z *zoneContext, at time.Time, out map[string]rule.Value) {
	local := at.In(z.loc)
	out[rule.VarHour] = rule.Value{V: local.Hour()}
	out[rule.VarMinute] = rule.Value{V: local.Minute()}
	out[rule.VarTimeOfDay] = rule.NumberValue(float64(local.Hour()) + float64(local.Minute())/60 + float64(local.Second())/3600)
	out[rule.VarWeekday] = rule.Value{V: rule.WeekdayName(local.Weekday())}
	out[rule.VarDay] = rule.Value{V: local.Day()}
	out[rule.VarMonth] = rule.Value{V: int(local.Month())}
	out[rule.VarDayOfYear] = rule.Value{V: local.YearDay()}
	if z.lat == nil || z.lon == nil {
		for _, v := range []string{rule.VarSunrise, rule.VarSunset} {
			out[v] = rule.Missing("the farm has no location")
		}
		out[rule.VarDaylight] = rule.Value{V: false, Missing: true, Note: "the farm has no location"}
		return
	}
	rise, set := agronomy.SunTimes(local, *z.lat, *z.lon, z.loc)
	if rise.IsZero() || set.IsZero() {
		for _, v := range []string{rule.VarSunrise, rule.VarSunset} {
			out[v] = rule.Missing("the sun neither rises nor sets today")
		}
		out[rule.VarDaylight] = rule.Value{V: false, Missing: true}
		return
	}
	hours := func(t time.Time) float64 {
		t = t.In(z.loc)
		midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, z.loc)
		return math.Round(t.Sub(midnight).Hours()*100) / 100
	}
	out[rule.VarSunrise] = rule.Value{V: hours(rise), Note: rise.In(z.loc).Format("15:04")}
	out[rule.VarSunset] = rule.Value{V: hours(set), Note: set.In(z.loc).Format("15:04")}
	out[rule.VarDaylight] = rule.Value{V: !at.Before(rise) && at.Before(set)}
}

// zoneFacts are the facts about the zone itself.
func zoneFacts(z *zoneContext, at time.Time, out map[string]rule.Value) {
	if z.plantingDate == nil {
		out[rule.VarDaysSincePlanted] = rule.Missing("the zone has no planting date")
		return
	}
	local := at.In(z.loc)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
	p := *z.plantingDate
	planted := time.Date(p.Year(), p.Month(), p.Day(), 0, 0, 0, 0, time.UTC)
	out[rule.VarDaysSincePlanted] = rule.NumberValue(math.Round(today.Sub(planted).Hours() / 24))
}

// wateredSpan is a span of time a zone was watered (a run between its start and its end).
type wateredSpan struct {
	from, to time.Time
}

// historyFacts are the history facts of a zone at a moment from the spans it was watered in
// (sorted by start; spans starting after at are ignored).
func historyFacts(z *zoneContext, spans []wateredSpan, at time.Time, out map[string]rule.Value) {
	local := at.In(z.loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, z.loc)
	dayAgo := at.Add(-24 * time.Hour)
	var last *wateredSpan
	var watered24h time.Duration
	runsToday := 0
	for i := range spans {
		sp := spans[i]
		if sp.from.After(at) {
			continue
		}
		last = &spans[i]
		end := sp.to
		if end.After(at) {
			end = at
		}
		from := sp.from
		if from.Before(dayAgo) {
			from = dayAgo
		}
		if end.After(from) {
			watered24h += end.Sub(from)
		}
		if !sp.from.Before(midnight) {
			runsToday++
		}
	}
	out[rule.VarRunsToday] = rule.Value{V: runsToday}
	out[rule.VarIrrigated24hMin] = rule.NumberValue(math.Round(watered24h.Minutes()*10) / 10)
	if last == nil {
		out[rule.VarHoursSinceIrr] = rule.Value{V: rule.NeverIrrigatedHours, Note: "never watered"}
		out[rule.VarLastIrrMinutes] = rule.NumberValue(0)
		return
	}
	out[rule.VarHoursSinceIrr] = rule.Value{V: math.Round(at.Sub(last.from).Hours()*100) / 100,
		Note: "since " + last.from.In(z.loc).Format("2006-01-02 15:04")}
	end := last.to
	if end.After(at) {
		end = at
	}
	out[rule.VarLastIrrMinutes] = rule.NumberValue(math.Round(end.Sub(last.from).Minutes()*10) / 10)
}

// wateredSpans lists when a zone was watered between from and to: every run that started,
// until it ended (or its end, or to, while it still runs).
func (s *Store) wateredSpans(ctx context.Context, zoneID int64, from, to time.Time) ([]wateredSpan, error) {
	rows, err := s.db.Query(ctx, `SELECT started_at, LEAST(COALESCE(ended_at, $3), COALESCE(ends_at, $3), $3)
		FROM irrigation_runs WHERE zone_id = $1 AND started_at IS NOT NULL AND started_at <= $3
		AND COALESCE(ended_at, ends_at, $3) >= $2
		UNION ALL
		(SELECT started_at, LEAST(COALESCE(ended_at, $3), COALESCE(ends_at, $3), $3)
		 FROM irrigation_runs WHERE zone_id = $1 AND started_at IS NOT NULL AND started_at < $2
		 ORDER BY started_at DESC LIMIT 1)
		ORDER BY 1`, zoneID, from, to)
	if err != nil {
		return nil, interpretError(err, "watered spans")
	}
	spans, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wateredSpan, error) {
		var sp wateredSpan
		err := r.Scan(&sp.from, &sp.to)
		return sp, err
	})
	if err != nil {
		return nil, interpretError(err, "watered spans")
	}
	// The last run before from may also be in the first part; keep each start once.
	out := spans[:0]
	for i, sp := range spans {
		if i > 0 && sp.from.Equal(spans[i-1].from) {
			continue
		}
		out = append(out, sp)
	}
	return out, nil
}

// noTrend is why a trend is missing.
const noTrend = "a trend needs readings at two times at least"

// aggregate is a reading function's value over a set of buckets.
type aggregate struct {
	n             int
	sum, min, max float64
	last          float64
	lastTS        time.Time
	nodes         int
	// The trend: weighted least squares over bucket means within each node (x in hours from
	// the first bucket), the node's sums below until endNode folds them into sxx and sxy.
	origin                   time.Time
	nodeBuckets              int
	sw, swx, swy, swxx, swxy float64
	sxx, sxy                 float64
}

func newAggregate() *aggregate { return &aggregate{min: math.Inf(1), max: math.Inf(-1)} }

// addBucket adds a bucket of n readings with mean, min and max at time ts (its middle).
func (a *aggregate) addBucket(ts time.Time, n int, mean, lo, hi float64) {
	if n <= 0 {
		return
	}
	a.n += n
	a.sum += mean * float64(n)
	a.min = math.Min(a.min, lo)
	a.max = math.Max(a.max, hi)
	if a.origin.IsZero() {
		a.origin = ts
	}
	x := ts.Sub(a.origin).Hours()
	w := float64(n)
	a.sw += w
	a.swx += w * x
	a.swy += w * mean
	a.swxx += w * x * x
	a.swxy += w * x * mean
	a.nodeBuckets++
}

// endNode ends the buckets of one node: its sums of squares about its own means join the
// trend's, so that nodes reading at different levels do not tilt it.
func (a *aggregate) endNode() {
	if a.nodeBuckets > 1 { // (one bucket has no slope; its sums would leave rounding noise)
		a.sxx += a.swxx - a.swx*a.swx/a.sw
		a.sxy += a.swxy - a.swx*a.swy/a.sw
	}
	a.sw, a.swx, a.swy, a.swxx, a.swxy, a.nodeBuckets = 0, 0, 0, 0, 0, 0
}

func (a *aggregate) addLast(ts time.Time, v float64) {
	if a.lastTS.IsZero() || ts.After(a.lastTS) {
		a.last, a.lastTS = v, ts
	}
}

// value is the aggregate for a reading function.
func (a *aggregate) value(fn string) rule.Value {
	note := ""
	if a.nodes > 1 {
		note = fmt.Sprintf("%d nodes", a.nodes)
	}
	switch {
	case fn == rule.FuncCount:
		return rule.Value{V: float64(a.n), N: a.n, Note: note}
	case fn == rule.FuncSum && a.n == 0:
		return rule.Value{V: 0.0, Note: note}
	}
	if a.n == 0 {
		return rule.Missing(note)
	}
	v := rule.Value{N: a.n, Note: note}
	switch fn {
	case rule.FuncMean:
		v.V = a.sum / float64(a.n)
	case rule.FuncMin:
		v.V = a.min
	case rule.FuncMax:
		v.V = a.max
	case rule.FuncSum:
		v.V = a.sum
	case rule.FuncLast:
		v.V = a.last
	case rule.FuncTrend: // (every node ended: endNode)
		if a.sxx <= 1e-9 {
			return rule.Missing(noTrend)
		}
		v.V = a.sxy / a.sxx
		v.Note = "per hour"
		if note != "" {
			v.Note += ", " + note
		}
	}
	return v
}

// sortedSeries returns the series in a stable order (for deterministic queries and output).
func sortedSeries(m map[rule.Series]bool) []rule.Series {
	out := make([]rule.Series, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}
