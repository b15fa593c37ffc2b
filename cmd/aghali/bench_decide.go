package main

import (
	"context"
	"errors"
)

func benchDecide(ctx context.Context, args []string, env Env) error {
	return errors.New("bench decide: not built yet")
}
