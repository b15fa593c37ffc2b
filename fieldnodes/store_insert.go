package fieldnodes

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// createStaging is the per-session temporary table duplicates are sorted out in.
const createStaging = `CREATE TEMP TABLE IF NOT EXISTS readings_stage (
	node_id bigint NOT NULL, metric_id smallint NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL,
	flags smallint NOT NULL
) ON COMMIT DELETE ROWS`

// InsertReadings stores rs in one transaction: readings already stored (same node, metric and
// time) are skipped, node_latest and the nodes' last_seen_at (the newest reading time, never
// ahead of now) and health columns (battery_v, battery_pct, rssi_dbm, snr_db) follow the newest
// values. Metric names not yet in the catalogue are added as unknown. Readings of node ids that
// do not exist are dropped. It returns how many readings were new.
//
// The ingest uses a faster variant that leaves the node upkeep to a writer running behind it
// (see Ingest); this one returns with everything written.
func (s *Store) InsertReadings(ctx context.Context, rs []Reading) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	rows, ids, err := s.prepareRows(ctx, rs)
	if err != nil {
		return 0, err
	}
	// Readings of nodes that do not exist are dropped (readings has no foreign key).
	var exist []int64
	if err := s.db.QueryRow(ctx, `SELECT coalesce(array_agg(id), '{}') FROM nodes WHERE id = ANY($1)`,
		distinctNodes(rows)).Scan(&exist); err != nil {
		return 0, fmt.Errorf("insert readings: %w", err)
	}
	rows = slices.DeleteFunc(rows, func(r Reading) bool { _, ok := slices.BinarySearch(exist, r.NodeID); return !ok })
	if len(rows) == 0 {
		return 0, nil
	}
	up := newUpkeepSet()
	up.addReadings(rows, ids)
	var inserted int
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if inserted, err = s.insertRows(ctx, tx, rows, ids); err != nil {
			return err
		}
		return s.writeUpkeep(ctx, tx, up)
	})
	if err != nil {
		return 0, fmt.Errorf("insert readings: %w", err)
	}
	return inserted, nil
}

// commitReadings is the ingest's InsertReadings: the readings are committed together with a
// node_upkeep_pending row, and the node upkeep is added to up for the upkeep writer instead of
// being written here. Readings of nodes deleted since the ingest looked them up are stored
// (unreachable, like those of any deleted node); the upkeep skips them.
func (s *Store) commitReadings(ctx context.Context, rs []Reading, up *upkeepSet) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	rows, ids, err := s.prepareRows(ctx, rs)
	if err != nil {
		return 0, err
	}
	nodes := distinctNodes(rows)
	minTS := rows[0].TS
	for _, r := range rows {
		if r.TS.Before(minTS) {
			minTS = r.TS
		}
	}
	var inserted int
	var marker int64
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if inserted, err = s.insertRows(ctx, tx, rows, ids); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO node_upkeep_pending (node_ids, min_ts) VALUES ($1, $2) RETURNING id`,
			nodes, minTS).Scan(&marker)
	})
	if err != nil {
		return 0, fmt.Errorf("commit readings: %w", err)
	}
	up.addReadings(rows, ids)
	up.markers = append(up.markers, marker)
	return inserted, nil
}

// prepareRows checks rs, resolves metric ids (adding unknown names to the catalogue), and
// returns the rows sorted by primary key with duplicates inside the batch removed (the first
// kept): consecutive inserts land on the same index pages, and concurrent batches lock rows in
// the same order.
func (s *Store) prepareRows(ctx context.Context, rs []Reading) ([]Reading, map[string]int16, error) {
	names := make([]string, 0, 8)
	seen := make(map[string]bool, 8)
	for i := range rs {
		r := &rs[i]
		if !seen[r.Metric] {
			if !ValidMetricName(r.Metric) {
				return nil, nil, invalid("metric", "%q is not a metric name (lower-case letters, digits, _)", r.Metric)
			}
			seen[r.Metric] = true
			names = append(names, r.Metric)
		}
		if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
			return nil, nil, invalid("value", "%s: not a finite number", r.Metric)
		}
	}
	ids, refused, err := s.metricIDsFor(ctx, names)
	if err != nil {
		return nil, nil, err
	}
	if len(refused) > 0 {
		return nil, nil, invalid("metric", "too many unknown metric names; %q refused", refused[0])
	}
	rows := make([]Reading, len(rs))
	copy(rows, rs)
	slices.SortStableFunc(rows, func(a, b Reading) int {
		if c := cmp.Compare(a.NodeID, b.NodeID); c != 0 {
			return c
		}
		if c := cmp.Compare(ids[a.Metric], ids[b.Metric]); c != 0 {
			return c
		}
		return a.TS.Compare(b.TS)
	})
	// PostgreSQL keeps microseconds: times that differ below that are the same reading.
	rows = slices.CompactFunc(rows, func(a, b Reading) bool {
		return a.NodeID == b.NodeID && a.Metric == b.Metric && a.TS.UnixMicro() == b.TS.UnixMicro()
	})
	return rows, ids, nil
}

// refusedMetric says why rs would be refused for their metric names ("" when they would not):
// a name that is not one, or a new name past the catalogue's cap. Names it accepts are added to
// the catalogue, as InsertReadings would.
func (s *Store) refusedMetric(ctx context.Context, rs []Reading) (string, error) {
	var names []string
	seen := map[string]bool{}
	for _, r := range rs {
		if !seen[r.Metric] {
			if !ValidMetricName(r.Metric) {
				return fmt.Sprintf("metric: %q is not a metric name", r.Metric), nil
			}
			seen[r.Metric] = true
			names = append(names, r.Metric)
		}
	}
	_, refused, err := s.metricIDsFor(ctx, names)
	if err != nil || len(refused) == 0 {
		return "", err
	}
	return fmt.Sprintf("metric: too many unknown metric names; %q refused", refused[0]), nil
}

func distinctNodes(sorted []Reading) []int64 {
	out := make([]int64, 0, 64)
	for i, r := range sorted {
		if i == 0 || r.NodeID != sorted[i-1].NodeID {
			out = append(out, r.NodeID)
		}
	}
	return out
}

// insertRows writes sorted, batch-unique rows in tx and returns how many were new. The fast
// path COPYs them straight into readings; a reading already stored (a redelivery) makes the COPY
// fail as a whole, and then, after rolling back to the savepoint, the rows go through a staging
// table and INSERT … ON CONFLICT DO NOTHING.
func (s *Store) insertRows(ctx context.Context, tx pgx.Tx, rows []Reading, ids map[string]int16) (int, error) {
	if _, err := tx.Exec(ctx, `SAVEPOINT fast`); err != nil {
		return 0, err
	}
	data := encodeCopy(rows, ids)
	n, err := copyBinary(ctx, tx, "readings", data)
	if err == nil {
		return int(n), nil
	}
	if !isUniqueViolation(err) {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT fast`); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, createStaging); err != nil {
		return 0, err
	}
	if _, err := copyBinary(ctx, tx, "readings_stage", data); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO readings (node_id, metric_id, ts, value, flags)
		SELECT node_id, metric_id, ts, value, flags FROM readings_stage ON CONFLICT DO NOTHING`)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `TRUNCATE readings_stage`); err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// inTx runs fn in a transaction on one connection of the pool.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.db, fn)
}

// encodeCopy writes rows in PostgreSQL's binary COPY format (node_id, metric_id, ts, value,
// flags): straight into bytes, where pgx's CopyFrom would box every value of every row.
func encodeCopy(rows []Reading, ids map[string]int16) []byte {
	b := make([]byte, 0, 19+len(rows)*52+2)
	b = append(b, "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 0) // header extension
	var lastMetric string
	var lastID int16
	for i := range rows {
		r := &rows[i]
		if r.Metric != lastMetric {
			lastMetric, lastID = r.Metric, ids[r.Metric]
		}
		b = binary.BigEndian.AppendUint16(b, 5)
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(r.NodeID))
		b = binary.BigEndian.AppendUint32(b, 2)
		b = binary.BigEndian.AppendUint16(b, uint16(lastID))
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(r.TS.UnixMicro()-pgEpochMicros))
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(r.Value))
		b = binary.BigEndian.AppendUint32(b, 2)
		b = binary.BigEndian.AppendUint16(b, uint16(r.Flags))
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // trailer
}

// pgEpochMicros is where PostgreSQL's timestamps count from (2000-01-01 UTC), in Unix
// microseconds.
const pgEpochMicros = 946_684_800_000_000

// copyBinary COPYs encodeCopy's bytes into table in tx.
func copyBinary(ctx context.Context, tx pgx.Tx, table string, data []byte) (int64, error) {
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data),
		`COPY `+table+` (node_id, metric_id, ts, value, flags) FROM STDIN BINARY`)
	return tag.RowsAffected(), err
}

// upkeepSQL writes a set of node upkeep: node_latest follows the newest value of each
// (node, metric) ($1–$4), the nodes' health columns follow the health metrics ($5–$8) where
// node_latest moved, last_seen_at and link figures follow what the nodes sent ($9–$19, $21: link
// figures only from an uplink newer than the one they are from), and the node_upkeep_pending
// rows the set covers are deleted ($20). Rows of deleted nodes are skipped.
const upkeepSQL = `
WITH latest AS (
	INSERT INTO node_latest AS l (node_id, metric_id, ts, value)
	SELECT u.node_id, u.metric_id, u.ts, u.value
	FROM unnest($1::bigint[], $2::smallint[], $3::timestamptz[], $4::float8[]) AS u(node_id, metric_id, ts, value)
	WHERE EXISTS (SELECT 1 FROM nodes n WHERE n.id = u.node_id)
	ORDER BY u.node_id, u.metric_id
	ON CONFLICT (node_id, metric_id) DO UPDATE SET ts = EXCLUDED.ts, value = EXCLUDED.value
	WHERE l.ts < EXCLUDED.ts
	RETURNING node_id, metric_id, value
), health AS (
	SELECT node_id,
	       max(value) FILTER (WHERE metric_id = $5) AS battery_v,
	       max(value) FILTER (WHERE metric_id = $6) AS battery_pct,
	       max(value) FILTER (WHERE metric_id = $7) AS rssi_dbm,
	       max(value) FILTER (WHERE metric_id = $8) AS snr_db
	FROM latest WHERE metric_id IN ($5, $6, $7, $8)
	GROUP BY node_id
), del AS (
	DELETE FROM node_upkeep_pending WHERE id = ANY($20::bigint[])
)
UPDATE nodes n SET
	last_seen_at         = CASE WHEN u.seen IS NULL THEN n.last_seen_at ELSE GREATEST(n.last_seen_at, LEAST(u.seen, now())) END,
	battery_v            = coalesce(h.battery_v, n.battery_v),
	battery_pct          = coalesce(h.battery_pct, n.battery_pct),
	rssi_dbm             = coalesce(h.rssi_dbm, n.rssi_dbm),
	snr_db               = coalesce(h.snr_db, n.snr_db),
	link_at              = GREATEST(n.link_at, u.link_at),
	gateways             = CASE WHEN u.link_at > n.link_at OR n.link_at IS NULL THEN coalesce(u.gateways, n.gateways) ELSE n.gateways END,
	spreading_factor     = CASE WHEN u.link_at > n.link_at OR n.link_at IS NULL THEN coalesce(u.sf, n.spreading_factor) ELSE n.spreading_factor END,
	frequency_hz         = CASE WHEN u.link_at > n.link_at OR n.link_at IS NULL THEN coalesce(u.freq, n.frequency_hz) ELSE n.frequency_hz END,
	f_cnt                = CASE WHEN u.link_at > n.link_at OR n.link_at IS NULL THEN coalesce(u.fcnt, n.f_cnt) ELSE n.f_cnt END,
	f_cnt_resets         = n.f_cnt_resets + u.resets,
	link_margin_db       = coalesce(u.margin, n.link_margin_db),
	last_join_at         = GREATEST(n.last_join_at, u.joined),
	last_downlink_at     = GREATEST(n.last_downlink_at, u.downlink_at),
	last_downlink_status = CASE WHEN u.downlink_at >= n.last_downlink_at OR n.last_downlink_at IS NULL
	                            THEN coalesce(u.downlink_status, n.last_downlink_status) ELSE n.last_downlink_status END
FROM unnest($9::bigint[], $10::timestamptz[], $11::smallint[], $12::smallint[], $13::bigint[], $14::bigint[],
            $15::integer[], $16::float8[], $17::timestamptz[], $18::timestamptz[], $19::text[], $21::timestamptz[])
     AS u(node_id, seen, gateways, sf, freq, fcnt, resets, margin, joined, downlink_at, downlink_status, link_at)
LEFT JOIN health h USING (node_id)
WHERE n.id = u.node_id`

// writeUpkeep writes up in tx.
func (s *Store) writeUpkeep(ctx context.Context, tx pgx.Tx, up *upkeepSet) error {
	if up.empty() {
		return nil
	}
	args, err := s.upkeepArgs(ctx, up)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, upkeepSQL, args...)
	return err
}

// upkeepArgs are upkeepSQL's arguments for up.
func (s *Store) upkeepArgs(ctx context.Context, up *upkeepSet) ([]any, error) {
	var health [4]int16
	// The metrics mirrored on the nodes row, in the order of upkeepSQL's $5–$8.
	for i, name := range [4]string{"battery_v", "battery_pct", "rssi_dbm", "snr_db"} {
		m, ok, err := s.metric(ctx, name)
		if err != nil {
			return nil, err
		}
		if ok {
			health[i] = m.id
		}
	}
	a := up.arrays()
	return []any{a.lNode, a.lMetric, a.lTS, a.lValue,
		health[0], health[1], health[2], health[3],
		a.nNode, a.nSeen, a.nGateways, a.nSF, a.nFreq, a.nFCnt, a.nResets, a.nMargin, a.nJoined, a.nDownAt, a.nDownStatus,
		up.markers, a.nLinkAt}, nil
}

// writeUpkeepTx writes a set of node upkeep in its own transaction, in one round trip, and
// commits it without waiting for the WAL flush (the readings it derives from were committed
// durably): a crash that loses it also loses the deletion of its node_upkeep_pending markers,
// so RepairUpkeep redoes it.
func (s *Store) writeUpkeepTx(ctx context.Context, up *upkeepSet) error {
	if up.empty() {
		return nil
	}
	args, err := s.upkeepArgs(ctx, up)
	if err != nil {
		return err
	}
	b := &pgx.Batch{} // one implicit transaction
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	b.Queue(upkeepSQL, args...)
	return s.db.SendBatch(ctx, b).Close()
}

// RepairUpkeep finishes the node upkeep that a crashed ingest had committed readings for but not
// written (node_upkeep_pending rows): node_latest and the nodes' health and last_seen_at are
// recomputed from the readings of those nodes at or after the oldest pending reading. Link
// figures (gateways, spreading factor, frame counter) are not in readings and stay as they were
// until the node's next uplink. Only rows older than olderThan are taken: a running ingest
// deletes its own within moments. It returns how many pending rows it resolved; safe to run
// while ingests run (it only moves values forward).
func (s *Store) RepairUpkeep(ctx context.Context, olderThan time.Duration) (int, error) {
	var ids []int64
	var nodes []int64
	var minTS *time.Time
	err := s.db.QueryRow(ctx, `
		WITH p AS (SELECT id, node_ids, min_ts FROM node_upkeep_pending WHERE at < now() - make_interval(secs => $1))
		SELECT coalesce((SELECT array_agg(id) FROM p), '{}'), (SELECT min(min_ts) FROM p),
		       coalesce((SELECT array_agg(DISTINCT x) FROM p, unnest(p.node_ids) AS x), '{}')`, olderThan.Seconds()).Scan(&ids, &minTS, &nodes)
	if err != nil {
		return 0, fmt.Errorf("repair node upkeep: %w", err)
	}
	if len(ids) == 0 || minTS == nil {
		return 0, nil
	}
	up := newUpkeepSet()
	rows, err := s.db.Query(ctx, `
		SELECT n.id, m.id, r.ts, r.value
		FROM unnest($1::bigint[]) AS n(id)
		CROSS JOIN metrics m
		CROSS JOIN LATERAL (
			SELECT ts, value FROM readings
			WHERE node_id = n.id AND metric_id = m.id AND ts >= $2
			ORDER BY ts DESC LIMIT 1) r`, nodes, *minTS)
	if err != nil {
		return 0, fmt.Errorf("repair node upkeep: %w", err)
	}
	for rows.Next() {
		var node int64
		var metric int16
		var v latestVal
		if err := rows.Scan(&node, &metric, &v.ts, &v.value); err != nil {
			rows.Close()
			return 0, fmt.Errorf("repair node upkeep: %w", err)
		}
		up.addLatest(node, metric, v)
		up.node(node).seenAt(v.ts)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("repair node upkeep: %w", err)
	}
	up.markers = ids
	for _, id := range nodes {
		up.node(id) // nodes without readings still lose their marker
	}
	if err := s.writeUpkeepTx(ctx, up); err != nil {
		return 0, fmt.Errorf("repair node upkeep: %w", err)
	}
	s.log.Info("repaired node upkeep left by an interrupted ingest", "batches", len(ids), "nodes", len(nodes))
	return len(ids), nil
}
