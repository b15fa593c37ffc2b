package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/migrations"
	"github.com/aghali/aghali/migrations/pgcluster"
)

var (
	// Set once by Main before any test runs, read-only afterwards.
	serverURL string // maintenance database URL of the server
	template  string // name of the migrated template database
	prefix    string // per-run prefix of test database names
	counter   atomic.Int64
)

// Main starts the cluster, migrates the template, runs the tests and tears everything down.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	var cluster *pgcluster.Cluster
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		serverURL = u
	} else {
		dir, err := os.MkdirTemp("", "aghali-pgtest-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		cluster, err = pgcluster.New(pgcluster.Config{
			Dir:   dir,
			Trust: true,
			Settings: map[string]string{
				"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
				"max_connections": "300", "shared_buffers": "64MB", "TimeZone": "UTC",
			},
		})
		if err == nil {
			err = cluster.Start(ctx)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: cannot start a test PostgreSQL:", err)
			fmt.Fprintln(os.Stderr, "pgtest: or set TEST_DATABASE_URL to a PostgreSQL+PostGIS server where the user may create databases")
			return 1
		}
		defer func() { _ = cluster.Destroy(context.Background()) }()
		serverURL = cluster.URL("postgres")
	}
	prefix = "t" + randHex(4)
	template = prefix + "_template"
	if err := makeTemplate(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	code := m.Run()
	if err := exec(ctx, "DROP DATABASE IF EXISTS "+template+" WITH (FORCE)"); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: drop template:", err)
	}
	return code
}

func makeTemplate(ctx context.Context) error {
	if err := exec(ctx, "CREATE DATABASE "+template); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	pool, err := pgxpool.New(ctx, dbURL(template))
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrations.Apply(ctx, pool, slog.New(slog.DiscardHandler)); err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	return nil
}

// NewDB creates a fresh, migrated database for t and returns a pool to it (with the geometry
// codec registered); both are closed and dropped when t ends.
func NewDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	u := NewDBURL(t)
	pool, err := geo.OpenPool(context.Background(), u, 0)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// NewDBURL creates a fresh, migrated database for t and returns its URL (for code under test
// that opens its own pool, such as `aghali serve`). Dropped when t ends.
func NewDBURL(t testing.TB) string {
	t.Helper()
	if template == "" {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main(m)")
	}
	name := fmt.Sprintf("%s_%d", prefix, counter.Add(1))
	ctx := context.Background()
	if err := exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template+" STRATEGY FILE_COPY"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return dbURL(name)
}

// ServerURL is the maintenance database of the test server (for tests that manage databases).
func ServerURL() string { return serverURL }

func exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func dbURL(db string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + strings.TrimPrefix(db, "/")
	return u.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
