package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/aghali/aghali/fieldnodes/devicesim"
	"github.com/aghali/aghali/migrations/pgcluster"
)

// cmdDemo runs everything on one machine: a managed PostgreSQL+PostGIS cluster in the data
// directory (reused on the next start), the embedded broker, the server, the demo village and
// its simulated devices.
func cmdDemo(ctx context.Context, args []string, env Env) error {
	var speed float64
	var noSim bool
	cfg, err := parseConfig("demo", args, env, func(fs *flag.FlagSet) {
		fs.Float64Var(&speed, "sim-speed", 30, "how many times faster than real time the simulated soil dries and wets")
		fs.BoolVar(&noSim, "no-sim", false, "do not run the simulated devices")
	})
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, env)
	if err != nil {
		return err
	}
	dbURL := cfg.DatabaseURL
	statePath := filepath.Join(cfg.DataDir, "demo.json")
	if dbURL == "" {
		cluster, err := pgcluster.New(pgcluster.Config{Dir: filepath.Join(cfg.DataDir, "pg"), Logger: log})
		if err != nil {
			return err
		}
		if err := cluster.Start(ctx); err != nil {
			return err
		}
		defer func() {
			if err := cluster.Stop(context.Background()); err != nil {
				log.Error("stopping the demo database", "err", err)
			}
		}()
		if err := cluster.CreateDatabase(ctx, "aghali"); err != nil {
			return err
		}
		dbURL = cluster.URL("aghali")
		// The demo's state lives and dies with its database.
		statePath = filepath.Join(cluster.Dir(), "demo.json")
	}
	a, err := startApp(ctx, cfg, log, dbURL)
	if err != nil {
		return err
	}
	st, ok, err := loadDemoState(statePath)
	if err == nil && !ok {
		log.Info("seeding the demo village")
		if st, err = seedDemo(ctx, a); err == nil {
			err = saveDemoState(statePath, st)
		}
	}
	if err != nil {
		a.stop(context.Background())
		return fmt.Errorf("demo: %w", err)
	}
	if !noSim {
		sim, err := devicesim.New(devicesim.Config{BrokerURL: a.mqttURL, Prefix: cfg.MQTTPrefix, Fleet: st.Fleet, Speed: speed, Logger: log})
		if err == nil {
			err = sim.Start(ctx)
		}
		if err != nil {
			a.stop(context.Background())
			return fmt.Errorf("demo: simulated devices: %w", err)
		}
		a.beforeStop = append(a.beforeStop, sim.Stop)
	}
	if err := a.listen(); err != nil {
		a.stop(context.Background())
		return err
	}
	printDemoBanner(env, a, st, statePath)
	return a.waitForShutdown(ctx)
}

func printDemoBanner(env Env, a *app, st demoState, statePath string) {
	url := "http://" + hostPort(a.httpAddr)
	var b strings.Builder
	fmt.Fprintf(&b, "\nAghali demo is running: %s\n\n", url)
	for _, l := range st.Logins {
		fmt.Fprintf(&b, "  %-12s %-26s password %s   (%s)\n", l.Role, l.Email, l.Password, l.Farms)
	}
	fmt.Fprintf(&b, "\nMQTT broker: %s (devices log in with their uid and secret; see docs/mqtt.md)\n", a.mqttURL)
	fmt.Fprintf(&b, "Simulated devices: %d nodes, %d controllers (their secrets: %s).\n", len(st.Fleet.Nodes), len(st.Fleet.Controllers), statePath)
	fmt.Fprint(&b, "Press Ctrl-C to stop; the data is kept for the next run.\n\n")
	fmt.Fprint(env.Stdout, b.String())
}

// hostPort turns a listener address such as [::]:8080 into localhost:8080 for a URL.
func hostPort(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
