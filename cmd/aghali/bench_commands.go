package main

import (
	"context"
	"errors"
)

func benchCommands(ctx context.Context, args []string, env Env) error {
	return errors.New("bench commands: not built yet")
}
