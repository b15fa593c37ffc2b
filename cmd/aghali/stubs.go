package main

import (
	"context"
	"errors"
)

func cmdBench(ctx context.Context, args []string, env Env) error {
	return errors.New("not yet")
}
