package irrigation_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/migrations/pgtest"
)

// roundTrips counts the statements and batches sent to PostgreSQL: each is one round trip (pgx
// prepares a statement the first time a connection sees it; that is not counted).
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestDecisionRoundTrips counts the round trips of a rule watering a zone, from the engine being
// told of a reading to the run's commit. Under ingest load every round trip waits behind other
// work, so their number is most of the decision's latency (docs/architecture.md): this keeps
// it from creeping back up.
func TestDecisionRoundTrips(t *testing.T) {
	base := pgtest.NewDB(t)
	cfg := base.Config().Copy()
	trips := &roundTrips{}
	cfg.ConnConfig.Tracer = trips
	db, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	f := newFixtureOn(t, db, "Asia/Baku")
	var zones, nodes []int64
	for range 4 {
		z, _, _ := f.zoneWithValve()
		f.rule(z.ID, func(r *irrigation.Rule) { r.Condition = `last("soil_vwc", "1h") < 0.18`; r.CooldownS = 0 })
		node := f.node(z.ID)
		f.readings(node, "soil_vwc", 0.12)
		zones, nodes = append(zones, z.ID), append(nodes, node)
	}
	e := f.engine()
	if n, err := e.EvaluateZones(f.ctx, zones[:1]); err != nil || n != 1 {
		t.Fatalf("first zone: %d acted, %v", n, err)
	}
	trips.n.Store(0)
	if n, err := e.EvaluateZones(f.ctx, zones[1:2]); err != nil || n != 1 {
		t.Fatalf("second zone: %d acted, %v", n, err)
	}
	// The rules and the zone, the facts, the locks (rule, farm, valve) with the zone's limits, and
	// the writes (run, events, outbox, decision, rule state) with the commit.
	if got := trips.n.Load(); got != 4 {
		t.Errorf("a rule watering a zone took %d round trips, want 4", got)
	}

	// Told of a node's reading, the engine works from its rule book (read once): the rules'
	// memories (beside the facts), the facts, the locks, the writes with the commit.
	if n, err := e.EvaluateNodes(f.ctx, nodes[2:3]); err != nil || n != 1 {
		t.Fatalf("third zone: %d acted, %v", n, err)
	}
	trips.n.Store(0)
	if n, err := e.EvaluateNodes(f.ctx, nodes[3:]); err != nil || n != 1 {
		t.Fatalf("fourth zone: %d acted, %v", n, err)
	}
	if got := trips.n.Load(); got != 4 {
		t.Errorf("a rule told of a reading watering a zone took %d round trips, want 4", got)
	}
	if runs := f.runsOf(irrigation.OriginRule); len(runs) != 4 || runs[0].State != irrigation.RunStarting {
		t.Errorf("runs = %+v", runs)
	}

	// Told of the readings of many zones at once (a busy ingest's batch), the engine reads their
	// facts in one query per reading function, whatever the number of zones: here the memories,
	// and the mean of every zone, in two round trips side by side, where one per zone was spent.
	var busy []int64
	for range 20 {
		z, _, _ := f.zoneWithValve()
		f.rule(z.ID, func(r *irrigation.Rule) { r.Condition = `mean("soil_vwc", "1h") < 0.01` })
		node := f.node(z.ID)
		f.readings(node, "soil_vwc", 0.3)
		busy = append(busy, node)
	}
	if n, err := e.EvaluateNodes(f.ctx, busy); err != nil || n != 0 {
		t.Fatalf("busy zones: %d acted, %v", n, err)
	}
	trips.n.Store(0)
	if n, err := e.EvaluateNodes(f.ctx, busy); err != nil || n != 0 {
		t.Fatalf("busy zones again: %d acted, %v", n, err)
	}
	if got := trips.n.Load(); got != 2 {
		t.Errorf("twenty zones whose rules did not act took %d round trips, want 2", got)
	}
}
