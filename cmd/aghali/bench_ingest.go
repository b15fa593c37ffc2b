package main

import (
	"context"
	"errors"
)

func benchIngest(ctx context.Context, args []string, env Env) error {
	return errors.New("bench ingest: not built yet")
}
