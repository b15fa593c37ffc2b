package fieldnodes_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testLogger shows warnings and errors of the code under test in the test's output.
func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("AGHALI_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// farm is a fresh database with an organisation, a farm and two zones of it.
type farm struct {
	db     *pgxpool.Pool
	store  *fieldnodes.Store
	farmID int64
	zoneA  int64
	zoneB  int64
	other  int64 // a second farm
}

const zoneGeom = `ST_GeomFromText('POLYGON((46.63 39.09, 46.632 39.09, 46.632 39.092, 46.63 39.092, 46.63 39.09))', 4326)`

func newFarm(t testing.TB) *farm {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	f := &farm{db: db}
	var org int64
	must(t, db.QueryRow(ctx, `INSERT INTO organisations (name) VALUES ('Aghali village') RETURNING id`).Scan(&org))
	must(t, db.QueryRow(ctx, `INSERT INTO farms (org_id, name) VALUES ($1, 'Hakari bank') RETURNING id`, org).Scan(&f.farmID))
	must(t, db.QueryRow(ctx, `INSERT INTO farms (org_id, name) VALUES ($1, 'Upper terrace') RETURNING id`, org).Scan(&f.other))
	must(t, db.QueryRow(ctx, `INSERT INTO zones (farm_id, name, geom) VALUES ($1, 'A', `+zoneGeom+`) RETURNING id`, f.farmID).Scan(&f.zoneA))
	must(t, db.QueryRow(ctx, `INSERT INTO zones (farm_id, name, geom) VALUES ($1, 'B', `+zoneGeom+`) RETURNING id`, f.farmID).Scan(&f.zoneB))
	store, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: db, Logger: testLogger(t)})
	must(t, err)
	f.store = store
	return f
}

// node registers a node with uid in zone (0: none) and returns its id.
func (f *farm) node(t testing.TB, uid string, zone int64) int64 {
	t.Helper()
	n := fieldnodes.Node{UID: uid, FarmID: f.farmID}
	if zone != 0 {
		n.ZoneID = &zone
	}
	n, err := f.store.CreateNode(context.Background(), n)
	must(t, err)
	return n.ID
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
