package migrations_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/migrations"
	"github.com/aghali/aghali/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestApplyIsIdempotentAndRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewDB(t) // already migrated from the template
	n, err := migrations.Apply(ctx, pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("second Apply applied %d migrations, want 0", n)
	}
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	var count int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != len(all) {
		t.Fatalf("schema_migrations has %d rows, want %d", count, len(all))
	}
	var postgis string
	if err := pool.QueryRow(ctx, `SELECT postgis_lib_version()`).Scan(&postgis); err != nil {
		t.Fatalf("PostGIS not available: %v", err)
	}
}

func TestChangedMigrationIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewDB(t)
	if _, err := pool.Exec(ctx, `UPDATE schema_migrations SET checksum = 'deadbeefdeadbeef' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Apply(ctx, pool, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Apply accepted a database whose applied migration differs from the embedded one")
	}
}

func TestConcurrentApplyOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A plain pool: the geometry codec of pgtest.NewDB needs PostGIS, which this test removes.
	pool, err := pgxpool.New(ctx, pgtest.NewDBURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Start from nothing: drop everything the template gave us.
	if _, err := pool.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public; DROP EXTENSION IF EXISTS postgis CASCADE`); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 3)
	total := make(chan int, 3)
	for range 3 {
		go func() {
			n, err := migrations.Apply(ctx, pool, slog.New(slog.DiscardHandler))
			errs <- err
			total <- n
		}()
	}
	sum := 0
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		sum += <-total
	}
	all, _ := migrations.All()
	if sum != len(all) {
		t.Fatalf("three concurrent Apply calls applied %d migrations in all, want %d", sum, len(all))
	}
}
