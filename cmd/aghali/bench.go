package main

import (
	"context"
	"fmt"
	"io"
)

// benchmark is one `aghali bench` load generator.
type benchmark struct {
	name, summary string
	run           func(ctx context.Context, args []string, env Env) error
}

func benchmarks() []benchmark {
	return []benchmark{
		{"ingest", "MQTT QoS 1 → committed readings: readings/s, lost/duplicated, against raw COPY", benchIngest},
		{"commands", "irrigation run started → valve command published: p50/p99, with ingest running", benchCommands},
		{"decide", "reading committed → valve command published (rules): p50/p99 while ingesting", benchDecide},
	}
}

func cmdBench(ctx context.Context, args []string, env Env) error {
	if len(args) > 0 {
		for _, b := range benchmarks() {
			if b.name == args[0] {
				return b.run(ctx, args[1:], env)
			}
		}
	}
	benchUsage(env.Stderr)
	if len(args) == 0 {
		return fmt.Errorf("bench: which one?")
	}
	return fmt.Errorf("bench: unknown benchmark %q", args[0])
}

func benchUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: aghali bench <benchmark> [flags]\n\nBenchmarks:")
	for _, b := range benchmarks() {
		fmt.Fprintf(w, "  %-9s %s\n", b.name, b.summary)
	}
}
