package main

import (
	"context"
	"errors"
)

func cmdServe(ctx context.Context, args []string, env Env) error {
	cfg, err := parseConfig("serve", args, env, nil)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("AGHALI_DATABASE_URL (or --database-url) is required; `aghali demo` runs a local database for you")
	}
	log, err := newLogger(cfg, env)
	if err != nil {
		return err
	}
	a, err := startApp(ctx, cfg, log, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	if err := a.listen(); err != nil {
		a.stop(context.Background())
		return err
	}
	return a.waitForShutdown(ctx)
}
