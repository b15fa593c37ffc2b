package api

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/fieldnodes"
)

// mapNodes lists a farm's nodes for the map, with their latest values.
//
// A workaround, and the only SQL of this package on another domain's table: fieldnodes.Store.Nodes
// gathers each node's latest values with a subquery per node, which for the 2,000 nodes of a
// 1,000-field farm costs more than the map's whole budget, and fieldnodes has no farm-wide
// listing without them. So the map reads the node columns it shows here (read-only; fieldnodes
// owns the table and its meaning) and the latest values with fieldnodes.Store.Latest, one query
// for the whole farm, both at once. Replace it with the store's call once fieldnodes has one
// that is fast for a whole farm.
func (s *Server) mapNodes(ctx context.Context, farmID int64) ([]fieldnodes.Node, error) {
	type result struct {
		latest map[int64]map[string]fieldnodes.LatestValue
		err    error
	}
	latestCh := make(chan result, 1)
	go func() {
		l, err := s.nodes.Latest(ctx, farmID)
		latestCh <- result{l, err}
	}()
	rows, err := s.db.Query(ctx, `SELECT id, uid, farm_id, zone_id, name, geom, expected_interval_s, last_seen_at, battery_v, created_at
		FROM nodes WHERE farm_id = $1 ORDER BY id`, farmID)
	var nodes []fieldnodes.Node
	if err == nil {
		nodes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (fieldnodes.Node, error) {
			var n fieldnodes.Node
			err := r.Scan(&n.ID, &n.UID, &n.FarmID, &n.ZoneID, &n.Name, &n.Location, &n.ExpectedIntervalS, &n.LastSeenAt,
				&n.BatteryV, &n.CreatedAt)
			return n, err
		})
	}
	latest := <-latestCh
	if err != nil {
		return nil, fmt.Errorf("nodes of farm %d: %w", farmID, err)
	}
	if latest.err != nil {
		return nil, latest.err
	}
	for i := range nodes {
		nodes[i].Latest = latest.latest[nodes[i].ID] // nil: none yet, which latestOf shows as {}
	}
	return nodes, nil
}
