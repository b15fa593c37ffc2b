package fieldnodes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
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

// Aggregates ZoneAggregate understands.
const (
	AggMean = "mean"
	AggMin  = "min"
	AggMax  = "max"
	AggLast = "last"
)

// DefaultMaxPoints is the number of buckets Readings uses when asked for 0.
const DefaultMaxPoints = 500

// stagingTable is the per-session temporary table InsertReadings copies into.
const createStaging = `CREATE TEMP TABLE IF NOT EXISTS readings_stage (
	node_id bigint NOT NULL, metric_id smallint NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL
) ON COMMIT DELETE ROWS`

// insertStaged moves the staged rows into readings (deduplicating on node, metric, time), raises
// node_latest where a row is newer, and updates the nodes' last_seen_at and health columns, in
// one statement. Rows of nodes that no longer exist are dropped (readings has no foreign key).
const insertStaged = `
WITH ins AS (
	INSERT INTO readings (node_id, metric_id, ts, value)
	SELECT s.node_id, s.metric_id, s.ts, s.value FROM readings_stage s
	WHERE EXISTS (SELECT 1 FROM nodes n WHERE n.id = s.node_id)
	ON CONFLICT DO NOTHING
	RETURNING node_id, metric_id, ts, value
), newest AS (
	SELECT DISTINCT ON (node_id, metric_id) node_id, metric_id, ts, value
	FROM ins ORDER BY node_id, metric_id, ts DESC
), latest AS (
	INSERT INTO node_latest AS l (node_id, metric_id, ts, value)
	SELECT node_id, metric_id, ts, value FROM newest
	ON CONFLICT (node_id, metric_id) DO UPDATE SET ts = EXCLUDED.ts, value = EXCLUDED.value
	WHERE l.ts < EXCLUDED.ts
	RETURNING node_id, metric_id, value
), health AS (
	SELECT lt.node_id,
	       max(lt.value) FILTER (WHERE m.name = 'battery_v')   AS battery_v,
	       max(lt.value) FILTER (WHERE m.name = 'battery_pct') AS battery_pct,
	       max(lt.value) FILTER (WHERE m.name = 'rssi_dbm')    AS rssi_dbm,
	       max(lt.value) FILTER (WHERE m.name = 'snr_db')      AS snr_db
	FROM latest lt JOIN metrics m ON m.id = lt.metric_id
	WHERE m.name IN ('battery_v', 'battery_pct', 'rssi_dbm', 'snr_db')
	GROUP BY lt.node_id
), seen AS (
	SELECT node_id, max(ts) AS ts FROM readings_stage GROUP BY node_id ORDER BY node_id
), upd AS (
	UPDATE nodes n SET
		last_seen_at = GREATEST(n.last_seen_at, LEAST(seen.ts, now())),
		battery_v    = coalesce(h.battery_v, n.battery_v),
		battery_pct  = coalesce(h.battery_pct, n.battery_pct),
		rssi_dbm     = coalesce(h.rssi_dbm, n.rssi_dbm),
		snr_db       = coalesce(h.snr_db, n.snr_db)
	FROM seen LEFT JOIN health h USING (node_id)
	WHERE n.id = seen.node_id
)
SELECT count(*) FROM ins`

// InsertReadings stores rs in one transaction: readings already stored (same node, metric and
// time) are skipped, node_latest and the nodes' last_seen_at (the newest reading time, never
// ahead of now) and health columns (battery_v, battery_pct, rssi_dbm, snr_db) follow the newest
// values. Metric names not yet in the catalogue are added as unknown. Readings of node ids that
// do not exist are dropped. It returns how many readings were new.
//
// The rows travel by COPY into a per-session temporary table and move from there in one
// statement: a constant number of round trips whatever the batch size.
func (s *Store) InsertReadings(ctx context.Context, rs []Reading) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	names := make([]string, 0, 8)
	seen := make(map[string]bool, 8)
	for i := range rs {
		r := &rs[i]
		if !seen[r.Metric] {
			if !ValidMetricName(r.Metric) {
				return 0, invalid("metric", "%q is not a metric name (lower-case letters, digits, _)", r.Metric)
			}
			seen[r.Metric] = true
			names = append(names, r.Metric)
		}
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			return 0, invalid("value", "%s: not a finite number", r.Metric)
		}
	}
	ids, refused, err := s.metricIDsFor(ctx, names)
	if err != nil {
		return 0, err
	}
	if len(refused) > 0 {
		return 0, invalid("metric", "too many unknown metric names; %q refused", refused[0])
	}

	// Sorted by primary key: consecutive inserts land on the same index pages, and concurrent
	// batches lock node rows in the same order (fewer deadlocks).
	sorted := make([]Reading, len(rs))
	copy(sorted, rs)
	slices.SortFunc(sorted, func(a, b Reading) int {
		if c := cmp.Compare(a.NodeID, b.NodeID); c != 0 {
			return c
		}
		if c := cmp.Compare(ids[a.Metric], ids[b.Metric]); c != 0 {
			return c
		}
		return a.TS.Compare(b.TS)
	})

	conn, err := s.db.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("insert readings: %w", err)
	}
	defer conn.Release()
	inserted, err := s.insertBatch(ctx, conn.Conn(), sorted, ids, false)
	if isUndefinedTable(err) {
		// A fresh connection: create the staging table, inside the transaction so this also
		// works behind a transaction-pooling proxy.
		inserted, err = s.insertBatch(ctx, conn.Conn(), sorted, ids, true)
	}
	if err != nil {
		return 0, fmt.Errorf("insert readings: %w", err)
	}
	return inserted, nil
}

func (s *Store) insertBatch(ctx context.Context, conn *pgx.Conn, rs []Reading, ids map[string]int16, create bool) (int, error) {
	var inserted int
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if create {
			if _, err := tx.Exec(ctx, createStaging); err != nil {
				return err
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"readings_stage"},
			[]string{"node_id", "metric_id", "ts", "value"}, &readingRows{rs: rs, ids: ids, i: -1}); err != nil {
			return err
		}
		return tx.QueryRow(ctx, insertStaged).Scan(&inserted)
	})
	return inserted, err
}

// readingRows feeds CopyFrom without building a [][]any of the whole batch.
type readingRows struct {
	rs  []Reading
	ids map[string]int16
	i   int
	row [4]any
}

func (r *readingRows) Next() bool { r.i++; return r.i < len(r.rs) }

func (r *readingRows) Values() ([]any, error) {
	x := &r.rs[r.i]
	r.row[0], r.row[1], r.row[2], r.row[3] = x.NodeID, r.ids[x.Metric], x.TS, x.Value
	return r.row[:], nil
}

func (r *readingRows) Err() error { return nil }

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

// ZoneAggregate aggregates metric over the readings of zone zoneID's nodes with time ≥ since:
// agg is AggMean, AggMin or AggMax over all of them, or AggLast, the newest single reading of
// any of the zone's nodes. n is the number of readings used; n == 0 means no data (value 0).
func (s *Store) ZoneAggregate(ctx context.Context, zoneID int64, metric, agg string, since time.Time) (float64, int, error) {
	var q string
	switch agg {
	case AggMean:
		q = `SELECT coalesce(avg(r.value), 0), count(*)`
	case AggMin:
		q = `SELECT coalesce(min(r.value), 0), count(*)`
	case AggMax:
		q = `SELECT coalesce(max(r.value), 0), count(*)`
	case AggLast:
		// node_latest holds each node's newest reading; the zone's newest is the newest of those.
		q = `SELECT l.value, 1 FROM node_latest l JOIN nodes n ON n.id = l.node_id
			WHERE n.zone_id = $1 AND l.metric_id = $2 AND l.ts >= $3
			ORDER BY l.ts DESC, l.node_id LIMIT 1`
	default:
		return 0, 0, invalid("aggregate", "%q is not one of mean, min, max, last", agg)
	}
	if agg != AggLast {
		q += ` FROM readings r JOIN nodes n ON n.id = r.node_id
			WHERE n.zone_id = $1 AND r.metric_id = $2 AND r.ts >= $3`
	}
	m, ok, err := s.metric(ctx, metric)
	if err != nil || !ok {
		return 0, 0, err
	}
	var value float64
	var n int
	err = s.db.QueryRow(ctx, q, zoneID, m.id, since).Scan(&value, &n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%s of %s in zone %d: %w", agg, metric, zoneID, err)
	}
	return value, n, nil
}

// ZonesOfNodes returns the distinct zones (ascending) the given nodes are in; nodes without a
// zone add nothing.
func (s *Store) ZonesOfNodes(ctx context.Context, nodeIDs []int64) ([]int64, error) {
	out := []int64{}
	if len(nodeIDs) == 0 {
		return out, nil
	}
	rows, err := s.db.Query(ctx, `SELECT DISTINCT zone_id FROM nodes WHERE id = ANY($1) AND zone_id IS NOT NULL ORDER BY 1`, nodeIDs)
	if err != nil {
		return nil, fmt.Errorf("zones of nodes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("zones of nodes: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
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
