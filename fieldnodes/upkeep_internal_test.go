package fieldnodes

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/migrations/pgtest"
)

func TestUpkeepRestGrowsWithTheWrite(t *testing.T) {
	w := newUpkeepWriter(nil, slog.New(slog.DiscardHandler), 10, time.Second, time.Second, nil)
	for _, c := range []struct {
		rows int
		took time.Duration
		want time.Duration
	}{
		{5, time.Millisecond, time.Millisecond},              // one node's message: written again at once
		{1500, 5 * time.Millisecond, 300 * time.Millisecond}, // a busy moment: more batches coalesce
		{50_000, 5 * time.Millisecond, time.Second},          // a fleet: at most a second
		{5, 50 * time.Millisecond, 500 * time.Millisecond},   // a slow database: d²/5 ms
		{5, 10 * time.Minute, time.Second},                   // no overflow
	} {
		if got := w.rest(c.rows, c.took); got != c.want {
			t.Errorf("rest after %d rows in %s = %s, want %s", c.rows, c.took, got, c.want)
		}
	}
}

// A committer that finds the pending set full does not wait out the writer's rest: the rest is
// for coalescing, and the writer writes at once.
func TestUpkeepWriterCutsItsRestWhenThePendingSetIsFull(t *testing.T) {
	ctx := context.Background()
	db, store, nodes := upkeepRig(t, 4)
	seen := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	set := func(ids ...int64) *upkeepSet {
		s := newUpkeepSet()
		for _, id := range ids {
			s.node(id).seenAt(seen)
		}
		return s
	}
	written := func() map[int64]bool {
		rows, err := db.Query(ctx, `SELECT id FROM nodes WHERE last_seen_at IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int64]bool{}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out[id] = true
		}
		return out
	}

	w := newUpkeepWriter(store, slog.New(slog.DiscardHandler), 2, 10*time.Millisecond, 100*time.Millisecond, nil)
	w.restPerRow, w.maxRest = time.Hour, time.Hour // every write is followed by an hour's rest
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.run(runCtx, ctx) }()
	defer func() { stop(); <-done }()

	w.add(set(nodes[0]))
	waitFor(t, "the first write", func() bool { return written()[nodes[0]] })
	w.add(set(nodes[1], nodes[2])) // fills the pending set (2) while the writer rests
	added := make(chan struct{})
	go func() { w.add(set(nodes[3])); close(added) }()
	select {
	case <-added:
	case <-time.After(30 * time.Second):
		t.Fatal("a committer waited for the writer's rest with the pending set full")
	}
	// Room is made when the writer takes the pending set, which it then writes rather than rest.
	waitFor(t, "the full pending set's write", func() bool { got := written(); return got[nodes[1]] && got[nodes[2]] })
	stop()
	<-done
	if !written()[nodes[3]] {
		t.Fatal("what was pending at the stop was not written")
	}
}

// A write under way when the ingest stops is finished (within the drain), not cancelled and
// left for the next start's repair.
func TestUpkeepWriteUnderWayAtTheStopIsFinished(t *testing.T) {
	ctx := context.Background()
	db, store, nodes := upkeepRig(t, 1)
	node := nodes[0]
	lock, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `SELECT 1 FROM nodes WHERE id = $1 FOR UPDATE`, node); err != nil {
		t.Fatal(err)
	}

	w := newUpkeepWriter(store, slog.New(slog.DiscardHandler), 10, 10*time.Millisecond, 100*time.Millisecond, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.run(runCtx, ctx) }()
	defer func() { stop(); <-done }()
	seen := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	set := newUpkeepSet()
	set.node(node).seenAt(seen)
	w.add(set)
	waitFor(t, "the write to wait for the row lock", func() bool {
		var waiting bool
		if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE NOT l.granted AND a.datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		return waiting
	})
	stop()
	select {
	case <-done:
		t.Error("the writer stopped with its write under way")
	case <-time.After(200 * time.Millisecond):
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	var last *time.Time
	if err := db.QueryRow(ctx, `SELECT last_seen_at FROM nodes WHERE id = $1`, node).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if last == nil || !last.Equal(seen) {
		t.Errorf("last seen %v after the stop, want %v", last, seen)
	}
}

// upkeepRig is a store on a fresh database with a farm of n nodes.
func upkeepRig(t *testing.T, n int) (*pgxpool.Pool, *Store, []int64) {
	t.Helper()
	db := pgtest.NewDB(t)
	store, err := NewStore(StoreConfig{Pool: db})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []int64
	if err := db.QueryRow(context.Background(), `WITH o AS (INSERT INTO organisations (name) VALUES ('o') RETURNING id),
		f AS (INSERT INTO farms (org_id, name) SELECT id, 'f' FROM o RETURNING id),
		n AS (INSERT INTO nodes (uid, farm_id) SELECT 'n' || i, f.id FROM f, generate_series(1, $1) i RETURNING id)
		SELECT array_agg(id ORDER BY id) FROM n`, n).Scan(&nodes); err != nil {
		t.Fatal(err)
	}
	return db, store, nodes
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
