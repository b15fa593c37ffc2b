package fieldnodes

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Series is one node's metric over a time range, downsampled into buckets.
type Series struct {
	NodeID int64
	Metric string
	Unit   string
	From   time.Time
	To     time.Time
	Bucket time.Duration // width of each point's bucket
	Points []Point
}

// Point is one bucket of a Series: the mean, min and max of the N readings whose time falls in
// [TS, TS+Bucket).
type Point struct {
	TS   time.Time
	Mean float64
	Min  float64
	Max  float64
	N    int
}

// Metric is an entry of the metrics catalogue.
type Metric struct {
	Name  string
	Unit  string
	Known bool // false: a name a device sent that is not in the contract (kept, shown as unknown)
}

// Aggregates ZoneAggregates understands.
const (
	AggMean  = "mean"
	AggMin   = "min"
	AggMax   = "max"
	AggLast  = "last"
	AggTrend = "trend" // least-squares slope, units per hour
)

// DefaultMaxPoints is the number of buckets Readings uses when asked for 0.
const DefaultMaxPoints = 500

// metricIDsFor returns the ids of names, adding the ones not in the catalogue as unknown
// metrics, up to MaxUnknownMetrics; names refused because of that cap are listed.
func (s *Store) metricIDsFor(ctx context.Context, names []string) (map[string]int16, []string, error) {
	ids := make(map[string]int16, len(names))
	var missing []string
	s.metricsMu.RLock()
	for _, n := range names {
		if m, ok := s.metricIDs[n]; ok {
			ids[n] = m.id
		} else {
			missing = append(missing, n)
		}
	}
	s.metricsMu.RUnlock()
	if len(missing) == 0 {
		return ids, nil, nil
	}
	// Known and previously created names first; only what is left is new.
	if err := s.loadMetrics(ctx, missing); err != nil {
		return nil, nil, err
	}
	var fresh []string
	s.metricsMu.RLock()
	for _, n := range missing {
		if m, ok := s.metricIDs[n]; ok {
			ids[n] = m.id
		} else {
			fresh = append(fresh, n)
		}
	}
	s.metricsMu.RUnlock()
	if len(fresh) == 0 {
		return ids, nil, nil
	}
	var unknown int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM metrics WHERE NOT known`).Scan(&unknown); err != nil {
		return nil, nil, fmt.Errorf("count unknown metrics: %w", err)
	}
	allowed := max(s.cfg.MaxUnknownMetrics-unknown, 0)
	var refused []string
	if len(fresh) > allowed {
		refused, fresh = fresh[allowed:], fresh[:allowed]
	}
	if len(fresh) > 0 {
		if _, err := s.db.Exec(ctx, `INSERT INTO metrics (name, known) SELECT unnest($1::text[]), false
			ON CONFLICT (name) DO NOTHING`, fresh); err != nil {
			return nil, nil, interpretError(err, "add metrics")
		}
		s.log.Info("new unknown metric names", "metrics", fresh)
		if err := s.loadMetrics(ctx, fresh); err != nil {
			return nil, nil, err
		}
		s.metricsMu.RLock()
		for _, n := range fresh {
			ids[n] = s.metricIDs[n].id
		}
		s.metricsMu.RUnlock()
	}
	return ids, refused, nil
}

// loadMetrics reads the ids of names (all metrics when names is nil) into the cache.
func (s *Store) loadMetrics(ctx context.Context, names []string) error {
	rows, err := s.db.Query(ctx, `SELECT name, id, unit FROM metrics WHERE $1::text[] IS NULL OR name = ANY($1)`, names)
	if err != nil {
		return fmt.Errorf("load metrics: %w", err)
	}
	defer rows.Close()
	s.metricsMu.Lock()
	defer s.metricsMu.Unlock()
	for rows.Next() {
		var name string
		var m metricInfo
		if err := rows.Scan(&name, &m.id, &m.unit); err != nil {
			return fmt.Errorf("load metrics: %w", err)
		}
		s.metricIDs[name] = m
	}
	return rows.Err()
}

// metricInfo is what the catalogue cache keeps of a metric.
type metricInfo struct {
	id   int16
	unit string
}

// metric returns an existing metric; ok is false when there is no such metric.
func (s *Store) metric(ctx context.Context, name string) (metricInfo, bool, error) {
	s.metricsMu.RLock()
	m, ok := s.metricIDs[name]
	s.metricsMu.RUnlock()
	if ok {
		return m, true, nil
	}
	if err := s.loadMetrics(ctx, []string{name}); err != nil {
		return metricInfo{}, false, err
	}
	s.metricsMu.RLock()
	m, ok = s.metricIDs[name]
	s.metricsMu.RUnlock()
	return m, ok, nil
}

// Readings returns node nodeID's metric in [from, to) as at most maxPoints buckets of equal width
// (DefaultMaxPoints when 0), each the mean, min and max of its readings; empty buckets are left
// out. A metric the node never reported gives a Series without points.
func (s *Store) Readings(ctx context.Context, nodeID int64, metric string, from, to time.Time, maxPoints int) (Series, error) {
	if maxPoints == 0 {
		maxPoints = DefaultMaxPoints
	}
	if maxPoints < 0 {
		return Series{}, invalid("points", "must be positive")
	}
	if !to.After(from) {
		return Series{}, invalid("to", "must be after from")
	}
	span := to.Sub(from)
	bucket := (span + time.Duration(maxPoints) - 1) / time.Duration(maxPoints)
	bucket = ((bucket + time.Second - 1) / time.Second) * time.Second // whole seconds
	out := Series{NodeID: nodeID, Metric: metric, From: from, To: to, Bucket: bucket, Points: []Point{}}
	m, ok, err := s.metric(ctx, metric)
	if err != nil || !ok {
		return out, err
	}
	out.Unit = m.unit
	rows, err := s.db.Query(ctx, `
		SELECT date_bin(make_interval(secs => $5), ts, $3) AS bucket, avg(value), min(value), max(value), count(*)
		FROM readings
		WHERE node_id = $1 AND metric_id = $2 AND ts >= $3 AND ts < $4
		GROUP BY bucket ORDER BY bucket`,
		nodeID, m.id, from, to, bucket.Seconds())
	if err != nil {
		return Series{}, fmt.Errorf("readings of node %d: %w", nodeID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Point
		if err := rows.Scan(&p.TS, &p.Mean, &p.Min, &p.Max, &p.N); err != nil {
			return Series{}, fmt.Errorf("readings of node %d: %w", nodeID, err)
		}
		out.Points = append(out.Points, p)
	}
	if err := rows.Err(); err != nil {
		return Series{}, fmt.Errorf("readings of node %d: %w", nodeID, err)
	}
	return out, nil
}

// Latest returns the newest value of every metric of every node of a farm: node id → metric
// name → value and time.
func (s *Store) Latest(ctx context.Context, farmID int64) (map[int64]map[string]LatestValue, error) {
	rows, err := s.db.Query(ctx, `
		SELECT l.node_id, m.name, l.value, l.ts
		FROM node_latest l JOIN nodes n ON n.id = l.node_id JOIN metrics m ON m.id = l.metric_id
		WHERE n.farm_id = $1`, farmID)
	if err != nil {
		return nil, fmt.Errorf("latest of farm %d: %w", farmID, err)
	}
	defer rows.Close()
	out := map[int64]map[string]LatestValue{}
	for rows.Next() {
		var id int64
		var name string
		var v LatestValue
		if err := rows.Scan(&id, &name, &v.Value, &v.TS); err != nil {
			return nil, fmt.Errorf("latest of farm %d: %w", farmID, err)
		}
		if out[id] == nil {
			out[id] = map[string]LatestValue{}
		}
		out[id][name] = v
	}
	return out, rows.Err()
}

// Aggregate is an aggregate of a metric's readings: Value over N of them (for AggLast, N is
// the number of nodes with a reading). N == 0 means no data (Value 0). An AggTrend of readings
// all taken at one time has no slope: its Value is NaN.
type Aggregate struct {
	Value float64
	N     int
}

// ZoneAggregates aggregates metric over the readings of each zone's nodes with time in [since,
// until], in one query for all the zones: agg is AggMean, AggMin or AggMax over all of them;
// AggLast, the newest single reading of any of the zone's nodes; or AggTrend, the slope within
// each node (the nodes' least-squares lines share one slope and keep their own levels, so a
// probe that reads higher than another, or starts reporting later, does not tilt it). N is the
// number of readings used (for AggLast: of nodes with a reading); a zone without data is absent.
func (s *Store) ZoneAggregates(ctx context.Context, zoneIDs []int64, metric, agg string, since, until time.Time) (map[int64]Aggregate, error) {
	return s.aggregates(ctx, "zone", zoneIDs, metric, agg, since, until)
}

// FarmAggregates is ZoneAggregates over all the nodes of each farm, zoned or not. Like it, it
// reads the readings, which rules are told of at their commit, not the nodes' latest values
// written behind it.
func (s *Store) FarmAggregates(ctx context.Context, farmIDs []int64, metric, agg string, since, until time.Time) (map[int64]Aggregate, error) {
	return s.aggregates(ctx, "farm", farmIDs, metric, agg, since, until)
}

// aggregates is ZoneAggregates over the nodes of zones or (scope "farm") farms. Each node's
// readings are aggregated apart, through the readings' key, then combined: a pass of the rule
// engine asks for hundreds of zones at once, and a plain join over them lets PostgreSQL choose
// to scan every reading of the window instead (500 zones of `bench decide --load-zones 5000`,
// on an idle database: 0.3-0.46 s that way, 0.07-0.1 s this way). JIT compilation, which the
// cost estimate of a large batch triggers, is off for it: it took longer than the query. Its
// plan is generic: the shape is the same for any number of zones, and planning it afresh took
// 1-2.5 ms against 0.05 ms, longer than running it for one zone (0.5 ms).
func (s *Store) aggregates(ctx context.Context, scope string, ids []int64, metric, agg string, since, until time.Time) (map[int64]Aggregate, error) {
	key := "n.zone_id"
	if scope == "farm" {
		key = "n.farm_id"
	}
	of := ` FROM unnest($1::bigint[]) AS k(id) JOIN nodes n ON ` + key + ` = k.id`
	var q string
	switch agg {
	case AggMean, AggMin, AggMax:
		combine := map[string]string{AggMean: "sum(a.total) / sum(a.n)", AggMin: "min(a.least)", AggMax: "max(a.most)"}[agg]
		q = `SELECT ` + key + `, ` + combine + `, sum(a.n)::int` + of + `
			CROSS JOIN LATERAL (SELECT sum(r.value) AS total, min(r.value) AS least, max(r.value) AS most, count(*) AS n
				FROM readings r WHERE r.node_id = n.id AND r.metric_id = $2 AND r.ts >= $3 AND r.ts <= $4) a
			WHERE a.n > 0
			GROUP BY ` + key
	case AggTrend:
		// Each node's sums of squares about its own means (x in hours), pooled: Σsxy / Σsxx.
		// A node with one reading adds nothing; none with two times: NaN.
		q = `SELECT ` + key + `, CASE WHEN sum(a.sxx) > 1e-9 THEN sum(a.sxy) / sum(a.sxx) ELSE 'NaN' END, sum(a.n)::int` + of + `
			CROSS JOIN LATERAL (SELECT regr_sxy(r.value, r.x) AS sxy, regr_sxx(r.value, r.x) AS sxx, count(*) AS n
				FROM (SELECT r.value, extract(epoch FROM r.ts - $3::timestamptz)::float8 / 3600 AS x FROM readings r
					WHERE r.node_id = n.id AND r.metric_id = $2 AND r.ts >= $3 AND r.ts <= $4) r) a
			WHERE a.n > 0
			GROUP BY ` + key
	case AggLast:
		// Each node's newest reading, by key; the newest of those. Read from readings, not
		// node_latest: rules hear of readings at their commit, before the node upkeep behind
		// it is written.
		q = `SELECT DISTINCT ON (` + key + `) ` + key + `, l.value, (count(*) OVER (PARTITION BY ` + key + `))::int` + of + `
			CROSS JOIN LATERAL (SELECT r.value, r.ts FROM readings r
				WHERE r.node_id = n.id AND r.metric_id = $2 AND r.ts >= $3 AND r.ts <= $4
				ORDER BY r.ts DESC LIMIT 1) l
			ORDER BY ` + key + `, l.ts DESC, n.id`
	default:
		return nil, invalid("aggregate", "%q is not one of mean, min, max, last, trend", agg)
	}
	out := make(map[int64]Aggregate, len(ids))
	m, ok, err := s.metric(ctx, metric)
	if err != nil || !ok {
		return out, err
	}
	b := &pgx.Batch{} // one implicit transaction, one round trip
	b.Queue(`SELECT set_config('jit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)`)
	b.Queue(q, ids, m.id, since, until).Query(func(rows pgx.Rows) error {
		var id int64
		var a Aggregate
		_, err := pgx.ForEachRow(rows, []any{&id, &a.Value, &a.N}, func() error {
			out[id] = a
			return nil
		})
		return err
	})
	if err := s.db.SendBatch(ctx, b).Close(); err != nil {
		return out, fmt.Errorf("%s of %s in %d %ss: %w", agg, metric, len(ids), scope, err)
	}
	return out, nil
}

// Metrics returns the metrics catalogue: contract metrics first, then unknown ones, by name.
func (s *Store) Metrics(ctx context.Context) ([]Metric, error) {
	rows, err := s.db.Query(ctx, `SELECT name, unit, known FROM metrics ORDER BY known DESC, name`)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer rows.Close()
	out := []Metric{}
	for rows.Next() {
		var m Metric
		if err := rows.Scan(&m.Name, &m.Unit, &m.Known); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
