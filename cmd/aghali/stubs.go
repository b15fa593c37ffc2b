package main

import (
	"context"
	"errors"
)

func cmdUser(ctx context.Context, args []string, env Env) error {
	return errors.New("not yet")
}

func cmdSimulate(ctx context.Context, args []string, env Env) error {
	return errors.New("not yet")
}

func cmdBench(ctx context.Context, args []string, env Env) error {
	return errors.New("not yet")
}
