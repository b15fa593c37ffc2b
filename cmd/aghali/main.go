package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // farm time zones must resolve on machines without /usr/share/zoneinfo
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "aghali:", err)
		}
		os.Exit(1)
	}
}

// command is one subcommand: args are those after its name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env Env) error
}

// Env is what a subcommand may touch of the outside world.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

func commands() []command {
	return []command{
		{"serve", "run the server against AGHALI_DATABASE_URL", cmdServe},
		{"demo", "run everything locally: managed PostGIS, embedded broker, demo farm, simulated devices", cmdDemo},
		{"migrate", "apply database migrations and exit", cmdMigrate},
		{"user", "manage users: user add --email E --org O --role R", cmdUser},
		{"simulate", "run simulated field nodes and valve controllers against a broker", cmdSimulate},
		{"et0", "FAO-56 reference evapotranspiration calculator", cmdET0},
		{"bench", "load generators: bench ingest ...", cmdBench},
	}
}

func run(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], env)
		}
	}
	usage(env.Stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: aghali <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'aghali <command> -h' for a command's flags. Every flag has an AGHALI_* variable; see docs/config.md.")
}
