package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/migrations"
)

func cmdMigrate(ctx context.Context, args []string, env Env) error {
	cfg, err := parseConfig("migrate", args, env, nil)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("AGHALI_DATABASE_URL (or --database-url) is required")
	}
	log, err := newLogger(cfg, env)
	if err != nil {
		return err
	}
	n, err := migrate(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "applied %d migration(s); database is up to date\n", n)
	return nil
}

// openDatabase migrates the database, then opens the pool the application uses (the geometry
// codec needs PostGIS, which the first migration installs).
func openDatabase(ctx context.Context, url string, log *slog.Logger) (*pgxpool.Pool, error) {
	if _, err := migrate(ctx, url, log); err != nil {
		return nil, err
	}
	// Enough connections for the map's concurrent queries, ingest committers and the dispatcher.
	return geo.OpenPool(ctx, url, 24)
}

func migrate(ctx context.Context, url string, log *slog.Logger) (int, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("database URL: %w", err)
	}
	defer pool.Close()
	return migrations.Apply(ctx, pool, log)
}
