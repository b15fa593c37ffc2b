package fieldnodes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// nodeSelect reads a node with its latest values (as three parallel arrays) in one query.
const nodeSelect = `
	SELECT n.id, n.uid, n.farm_id, n.zone_id, n.name, n.profile, coalesce(n.dev_eui, ''), n.geom,
	       n.depth_m, n.height_m, n.expected_interval_s, n.last_seen_at, n.battery_v, n.battery_pct,
	       n.rssi_dbm, n.snr_db, n.gateways, n.spreading_factor, n.frequency_hz, n.f_cnt, n.f_cnt_resets,
	       n.link_margin_db, n.last_join_at, n.last_downlink_at, n.last_downlink_status, n.created_at, l.names, l.vals, l.tss
	FROM nodes n
	LEFT JOIN LATERAL (
		SELECT array_agg(m.name ORDER BY m.name) AS names, array_agg(nl.value ORDER BY m.name) AS vals,
		       array_agg(nl.ts ORDER BY m.name) AS tss
		FROM node_latest nl JOIN metrics m ON m.id = nl.metric_id
		WHERE nl.node_id = n.id) l ON true`

// nodeReturning is what INSERT and UPDATE hand back (no latest values: they did not change).
const nodeReturning = `id, uid, farm_id, zone_id, name, profile, coalesce(dev_eui, ''), geom, depth_m, height_m,
	expected_interval_s, last_seen_at, battery_v, battery_pct, rssi_dbm, snr_db, gateways, spreading_factor, frequency_hz,
	f_cnt, f_cnt_resets, link_margin_db, last_join_at, last_downlink_at, last_downlink_status, created_at`

func nodeFields(n *Node) []any {
	return []any{&n.ID, &n.UID, &n.FarmID, &n.ZoneID, &n.Name, &n.Profile, &n.DevEUI, &n.Location,
		&n.DepthM, &n.HeightM, &n.ExpectedIntervalS, &n.LastSeenAt, &n.BatteryV, &n.BatteryPct,
		&n.RSSIDBm, &n.SNRDB, &n.Gateways, &n.SpreadingFactor, &n.FrequencyHz, &n.FCnt, &n.FCntResets,
		&n.LinkMarginDB, &n.LastJoinAt, &n.LastDownlinkAt, &n.LastDownlinkStatus, &n.CreatedAt}
}

func scanNodeWithLatest(row pgx.Row) (Node, error) {
	var n Node
	var names []string
	var vals []float64
	var tss []time.Time
	if err := row.Scan(append(nodeFields(&n), &names, &vals, &tss)...); err != nil {
		return Node{}, err
	}
	n.Latest = make(map[string]LatestValue, len(names))
	for i, name := range names {
		n.Latest[name] = LatestValue{Value: vals[i], TS: tss[i]}
	}
	return n, nil
}

// CreateNode registers a node and returns it with its id. A zone must belong to the node's farm.
// Registering a uid or DevEUI that was waiting in the pending devices removes it from there.
//
// The profile (default "native") must exist; a node given no reporting interval, depth or
// height takes its profile's.
func (s *Store) CreateNode(ctx context.Context, n Node) (Node, error) {
	if err := s.profileDefaults(ctx, &n); err != nil {
		return Node{}, err
	}
	if err := n.normalize(); err != nil {
		return Node{}, err
	}
	return createNode(ctx, s.db, n)
}

// querier is what createNode needs of a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// createNode inserts the normalized node n (and clears a pending device of its uid or DevEUI).
func createNode(ctx context.Context, q querier, n Node) (Node, error) {
	var out Node
	err := q.QueryRow(ctx, `
		WITH ok AS (
			SELECT $3::bigint IS NULL OR EXISTS (SELECT 1 FROM zones WHERE id = $3 AND farm_id = $2) AS zone_ok
		), ins AS (
			INSERT INTO nodes (uid, farm_id, zone_id, name, profile, dev_eui, geom, depth_m, height_m, expected_interval_s)
			SELECT $1, $2, $3, $4, $5, NULLIF($6, ''), $7, $8, $9, $10 FROM ok WHERE zone_ok
			RETURNING `+nodeReturning+`
		), unpend AS (
			DELETE FROM pending_devices
			WHERE EXISTS (SELECT 1 FROM ins) AND (uid = $1 OR (NULLIF($6, '') IS NOT NULL AND uid = $6))
		)
		SELECT * FROM ins`,
		n.UID, n.FarmID, n.ZoneID, n.Name, n.Profile, n.DevEUI, n.Location, n.DepthM, n.HeightM, n.ExpectedIntervalS,
	).Scan(nodeFields(&out)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Node{}, invalid("zone_id", "zone %d is not on farm %d", *n.ZoneID, n.FarmID)
	}
	if err != nil {
		return Node{}, interpretError(err, "create node")
	}
	out.Latest = map[string]LatestValue{}
	return out, nil
}

// Node returns node id with its latest values.
func (s *Store) Node(ctx context.Context, id int64) (Node, error) {
	n, err := scanNodeWithLatest(s.db.QueryRow(ctx, nodeSelect+` WHERE n.id = $1`, id))
	if err != nil {
		return Node{}, interpretError(err, fmt.Sprintf("node %d", id))
	}
	return n, nil
}

// NodeByUID returns the node whose uid is uid, with its latest values.
func (s *Store) NodeByUID(ctx context.Context, uid string) (Node, error) {
	n, err := scanNodeWithLatest(s.db.QueryRow(ctx, nodeSelect+` WHERE n.uid = $1`, uid))
	if err != nil {
		return Node{}, interpretError(err, fmt.Sprintf("node %q", uid))
	}
	return n, nil
}

// Nodes returns the nodes of a farm, by id, with their latest values.
func (s *Store) Nodes(ctx context.Context, farmID int64) ([]Node, error) {
	rows, err := s.db.Query(ctx, nodeSelect+` WHERE n.farm_id = $1 ORDER BY n.id`, farmID)
	if err != nil {
		return nil, interpretError(err, "nodes")
	}
	defer rows.Close()
	out := []Node{}
	for rows.Next() {
		n, err := scanNodeWithLatest(rows)
		if err != nil {
			return nil, interpretError(err, "nodes")
		}
		out = append(out, n)
	}
	return out, interpretError(rows.Err(), "nodes")
}

// UpdateNode replaces the changeable fields of node n.ID (everything but the uid, which is the
// device's login and topic and cannot change, and the health fields, which the ingest keeps).
func (s *Store) UpdateNode(ctx context.Context, n Node) (Node, error) {
	if n.ID <= 0 {
		return Node{}, invalid("id", "required")
	}
	if err := n.normalize(); err != nil {
		return Node{}, err
	}
	if err := s.checkProfile(ctx, n.Profile); err != nil {
		return Node{}, err
	}
	var out Node
	err := s.db.QueryRow(ctx, `
		UPDATE nodes SET farm_id = $2, zone_id = $3, name = $4, profile = $5, dev_eui = NULLIF($6, ''), geom = $7,
		       depth_m = $8, height_m = $9, expected_interval_s = $10
		WHERE id = $1 AND uid = $11
		  AND ($3::bigint IS NULL OR EXISTS (SELECT 1 FROM zones WHERE id = $3 AND farm_id = $2))
		RETURNING `+nodeReturning,
		n.ID, n.FarmID, n.ZoneID, n.Name, n.Profile, n.DevEUI, n.Location, n.DepthM, n.HeightM, n.ExpectedIntervalS, n.UID,
	).Scan(nodeFields(&out)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Node{}, s.whyNotUpdated(ctx, n)
	}
	if err != nil {
		return Node{}, interpretError(err, fmt.Sprintf("update node %d", n.ID))
	}
	s.nodesChanged.Add(1)
	latest, err := s.Node(ctx, out.ID)
	if err != nil {
		return Node{}, err
	}
	out.Latest = latest.Latest
	return out, nil
}

// whyNotUpdated tells apart the reasons an UPDATE matched no row.
func (s *Store) whyNotUpdated(ctx context.Context, n Node) error {
	var uid string
	err := s.db.QueryRow(ctx, `SELECT uid FROM nodes WHERE id = $1`, n.ID).Scan(&uid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("update node %d: %w", n.ID, ErrNotFound)
	case err != nil:
		return interpretError(err, fmt.Sprintf("update node %d", n.ID))
	case uid != n.UID:
		return invalid("uid", "cannot be changed (it is the device's login); register a new node instead")
	case n.ZoneID != nil:
		return invalid("zone_id", "zone %d is not on farm %d", *n.ZoneID, n.FarmID)
	}
	return fmt.Errorf("update node %d: %w", n.ID, ErrNotFound)
}

// DeleteNode removes node id and its MQTT secret (its readings stay, unreachable, until the
// partitions holding them are dropped).
func (s *Store) DeleteNode(ctx context.Context, id int64) error {
	var uid string
	err := s.db.QueryRow(ctx, `
		WITH d AS (DELETE FROM nodes WHERE id = $1 RETURNING uid),
		     sec AS (DELETE FROM device_secrets WHERE kind = 'node' AND uid IN (SELECT uid FROM d))
		SELECT uid FROM d`, id).Scan(&uid)
	if err != nil {
		return interpretError(err, fmt.Sprintf("delete node %d", id))
	}
	s.nodesChanged.Add(1)
	s.auth.forget(uid)
	return nil
}

// profileDefaults checks n's profile and fills what n leaves empty from it.
func (s *Store) profileDefaults(ctx context.Context, n *Node) error {
	name := strings.TrimSpace(n.Profile)
	if name == "" {
		name = "native"
	}
	p, err := s.Profile(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return invalid("profile", "%q is not a device profile (GET /api/v1/device-profiles lists them)", name)
	}
	if err != nil {
		return err
	}
	if n.ExpectedIntervalS == 0 && p.ExpectedIntervalS > 0 {
		n.ExpectedIntervalS = p.ExpectedIntervalS
	}
	if n.DepthM == nil && p.DepthM != nil {
		d := *p.DepthM
		n.DepthM = &d
	}
	if n.HeightM == nil && p.HeightM != nil {
		h := *p.HeightM
		n.HeightM = &h
	}
	return nil
}
