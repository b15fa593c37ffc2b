package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/irrigation"
)

// embedded broker, keeps an ingest load of --ingest-rate native messages per second (4 readings
// each) going, and starts --runs irrigation runs at --run-rate per second, each on its own valve
// admission, outbox, NOTIFY). For each it measures the time from calling StartRun (as the rule
// engine, scheduler and API do) to the open command arriving at the controller's MQTT
// connection, and reports p50/p90/p99/max, next to the server's own queued→published histogram.
func benchCommands(ctx context.Context, args []string, env Env) error {
	fs := flag.NewFlagSet("aghali bench commands", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	b := commandsBench{env: env}
	fs.IntVar(&b.runs, "runs", 2000, "runs to start (one valve each)")
	fs.Float64Var(&b.runRate, "run-rate", 50, "runs started per second")
	fs.IntVar(&b.controllers, "controllers", 20, "controllers the valves are spread over (each its own MQTT connection)")
	fs.Float64Var(&b.ingestRate, "ingest-rate", 10_000, "node messages per second published while runs start (0: none)")
	fs.IntVar(&b.nodes, "nodes", 1000, "nodes the ingest load is spread over")
	fs.IntVar(&b.conns, "connections", 8, "ingest publishing connections")
	fs.IntVar(&b.warmup, "warmup", 50, "first runs left out of the figures")
	fs.StringVar(&b.dbURL, "database-url", env.Getenv("AGHALI_DATABASE_URL"), "database to use (it gets a bench farm); empty: a private PostgreSQL in a temporary directory")
	fs.StringVar(&b.bin, "aghali", "", "aghali binary to run as the server (default: this one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench commands: unexpected argument %q", fs.Arg(0))
	}
	if b.runs <= b.warmup || b.runRate <= 0 || b.controllers <= 0 || b.ingestRate < 0 || b.nodes <= 0 || b.conns <= 0 {
		return errors.New("bench commands: --runs must exceed --warmup; rates, --controllers, --nodes and --connections must be positive")
	}
	if b.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		b.bin = exe
	}
	res, err := b.run(ctx)
	if err != nil {
		return err
	}
	res.print(env.Stdout, &b)
	if res.missing > 0 {
		return fmt.Errorf("bench commands: %d commands never arrived", res.missing)
	}
	return nil
}

type commandsBench struct {
	env                             Env
	runs, controllers, nodes, conns int
	warmup                          int
	runRate, ingestRate             float64
	dbURL, bin                      string
}

type commandsResult struct {
	latencies           []time.Duration // run started → open at the controller, in run order
	persist             []time.Duration // StartRun's own time: the run and its command committed
	commit              []time.Duration // reference: a one-row durable commit on the same database
	deliver             []time.Duration // StartRun returned → open at the controller
	missing, duplicates int
	startRate           float64 // runs actually started per second
	readings            float64 // readings committed by the server while the runs started
	window              time.Duration
	serverHist          string // the server's aghali_irrigation_command_dispatch_seconds summary
	dbSettings          string
}

func (b *commandsBench) run(ctx context.Context) (res commandsResult, err error) {
	dir, err := os.MkdirTemp("", "aghali-bench-commands-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	db, err := openBenchDB(ctx, dir, b.dbURL)
	if err != nil {
		return res, err
	}
	defer db.close()
	b.dbURL, res.dbSettings = db.url, db.settings
	pool := db.pool

	// The ingest load and the server: the ingest benchmark's machinery.
	window := time.Duration(float64(b.runs)/b.runRate*float64(time.Second)) + 10*time.Second
	ing := &ingestBench{env: b.env, nodes: b.nodes, conns: b.conns, window: 2000, broker: "embedded", dbURL: b.dbURL, bin: b.bin,
		dir: dir, pool: pool, messages: max(int(b.ingestRate*window.Seconds()), b.nodes),
		// The figures are of first sends: an ack held up behind the ingest load must not
		// bring a resend into them.
		serveEnv: "AGHALI_COMMAND_RETRY=30s"}
	if err := ing.setUpFarm(ctx); err != nil {
		return res, err
	}
	if err := ing.startBroker(); err != nil {
		return res, err
	}
	server, err := ing.startServer(ctx)
	if err != nil {
		return res, err
	}
	defer server.kill()

	// The irrigation side: one zone on a water source large enough for every run, valves on
	// --controllers controllers, each of which listens on its own MQTT connection.
	nodes, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: pool})
	if err != nil {
		return res, err
	}
	irr, err := irrigation.NewStore(pool, nodes, irrigation.Config{})
	if err != nil {
		return res, err
	}
	targets, links, err := b.setUpValves(ctx, pool, irr, ing.brokerURL)
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	started := make(map[string]time.Time, b.runs)  // uid/channel → when StartRun was called
	returned := make(map[string]time.Time, b.runs) // … and when it returned
	arrived := newArrivals(b.runs)
	stopControllers, err := answerCommands(ctx, links, func(key string, c fieldnodes.Command, at time.Time) {
		arrived.add(key, c.ID, at)
	})
	if err != nil {
		return res, err
	}
	defer stopControllers()

	// Ingest load, paced, for the whole window.
	stopIngest, err := ing.pacedLoad(ctx, b.conns, b.ingestRate)
	if err != nil {
		return res, err
	}
	defer stopIngest()
	// The floor under any durable decision, measured under the same load.
	if res.commit, err = commitReference(ctx, pool, 200, 0); err != nil {
		return res, err
	}
	storedBefore, _ := server.storedReadings()
	t0 := time.Now()
	for i, tg := range targets {
		if d := time.Until(t0.Add(time.Duration(float64(i) / b.runRate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		key := fmt.Sprintf("%s/%d", tg.uid, tg.channel)
		now := time.Now()
		mu.Lock()
		started[key] = now
		mu.Unlock()
		if _, err := irr.StartRun(ctx, irrigation.RunRequest{ValveID: tg.valve, DurationS: 600, Origin: irrigation.OriginUser,
			Reason: "bench commands"}); err != nil {
			return res, fmt.Errorf("run %d: %w", i, err)
		}
		done := time.Now()
		mu.Lock()
		returned[key] = done
		mu.Unlock()
	}
	res.startRate = float64(len(targets)) / time.Since(t0).Seconds()
	arrived.waitFor(len(targets), 30*time.Second)
	res.window = time.Since(t0)
	storedAfter, _ := server.storedReadings()
	res.readings = storedAfter - storedBefore
	if err := stopIngest(); err != nil {
		return res, fmt.Errorf("ingest load: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, tg := range targets {
		key := fmt.Sprintf("%s/%d", tg.uid, tg.channel)
		a := arrived.of(key)
		switch {
		case a == nil:
			res.missing++
			continue
		case a.count > 1:
			res.duplicates++
		}
		if i >= b.warmup {
			res.latencies = append(res.latencies, a.at.Sub(started[key]))
			res.persist = append(res.persist, returned[key].Sub(started[key]))
			res.deliver = append(res.deliver, a.at.Sub(returned[key]))
		}
	}
	res.serverHist = dispatchHistogram(server)
	return res, nil
}

// commitReference times n one-row inserts, each committed on its own and the next started
// every after it (0: at once): the floor under any durable decision on this database and disk.
func commitReference(ctx context.Context, pool *pgxpool.Pool, n int, every time.Duration) ([]time.Duration, error) {
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_commit_probe (id bigint, at timestamptz)`); err != nil {
		return nil, err
	}
	defer pool.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS bench_commit_probe`)
	out := make([]time.Duration, 0, n)
	t0 := time.Now()
	for i := range n {
		if d := time.Until(t0.Add(time.Duration(i) * every)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		start := time.Now()
		if _, err := pool.Exec(ctx, `INSERT INTO bench_commit_probe VALUES ($1, now())`, i); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// controllerLink is one benchmark controller's MQTT connection.
type controllerLink struct {
	uid  string
	link *mqttlink.Link
}

// benchTarget is the valve of one run.
type benchTarget struct {
	uid     string
	channel int
	valve   int64
}

// setUpValves creates a farm with --controllers controllers sharing --runs valves, each valve
// watering a zone of its own fed by its controller's water source, and a link per controller
// logging in with its own secret, as a real controller does.
func (b *commandsBench) setUpValves(ctx context.Context, pool *pgxpool.Pool, irr *irrigation.Store, brokerURL string) ([]benchTarget, []controllerLink, error) {
	perController := (b.runs + b.controllers - 1) / b.controllers
	if perController > 255 {
		return nil, nil, fmt.Errorf("%d runs over %d controllers is %d valves each; a controller has at most 255", b.runs, b.controllers, perController)
	}
	tag := randomHex(3)
	var org, farm int64
	if err := pool.QueryRow(ctx, `INSERT INTO organisations (name) VALUES ($1) RETURNING id`, "bench commands "+tag).Scan(&org); err != nil {
		return nil, nil, err
	}
	if err := pool.QueryRow(ctx, `INSERT INTO farms (org_id, name) VALUES ($1, 'bench commands') RETURNING id`, org).Scan(&farm); err != nil {
		return nil, nil, err
	}
	// Each controller's valves water zones of their own, fed by the controller's water source
	// (a pump station), large enough for all of them at once.
	capacity := float64(perController) * 1.2 * 2
	var targets []benchTarget
	var links []controllerLink
	for c := range b.controllers {
		ctl, secret, err := irr.CreateController(ctx, irrigation.Controller{UID: fmt.Sprintf("bench-%s-ctl-%02d", tag, c), FarmID: farm})
		if err != nil {
			return nil, nil, err
		}
		src, err := irr.CreateWaterSource(ctx, irrigation.WaterSource{FarmID: farm, Name: "bench pump " + ctl.UID,
			Kind: irrigation.SourcePump, CapacityM3H: &capacity})
		if err != nil {
			return nil, nil, err
		}
		n := min(perController, b.runs-len(targets))
		rows, err := pool.Query(ctx, `WITH z AS (
				INSERT INTO zones (farm_id, water_source_id, name, geom, max_runtime_s)
				SELECT $2, $3, 'zone-' || ch, ST_GeomFromText('POLYGON((46.63 39.09, 46.6312 39.09, 46.6312 39.0909, 46.63 39.0909, 46.63 39.09))', 4326), 3600
				FROM generate_series(1, $4::int) ch RETURNING id, name)
			INSERT INTO valves (controller_id, channel, zone_id, nominal_flow_lpm)
			SELECT $1, split_part(z.name, '-', 2)::int, z.id, 20 FROM z ORDER BY 2 RETURNING id, channel`,
			ctl.ID, farm, src.ID, n)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			t := benchTarget{uid: ctl.UID}
			if err := rows.Scan(&t.valve, &t.channel); err != nil {
				rows.Close()
				return nil, nil, err
			}
			targets = append(targets, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
		l, err := mqttlink.New(mqttlink.Config{URL: brokerURL, ClientID: ctl.UID, Username: ctl.UID, Password: secret})
		if err != nil {
			return nil, nil, err
		}
		links = append(links, controllerLink{uid: ctl.UID, link: l})
	}
	// Interleave the controllers, as runs of a real farm would be.
	slices.SortStableFunc(targets, func(x, y benchTarget) int { return x.channel - y.channel })
	return targets, links, nil
}

// dispatchHistogram summarises the server's queued → published histogram.
func dispatchHistogram(s *serveProcess) string {
	resp, err := http.Get(s.http + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var count float64
	buckets := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "aghali_irrigation_command_dispatch_seconds_count "); ok {
			count, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		if rest, ok := strings.CutPrefix(line, `aghali_irrigation_command_dispatch_seconds_bucket{le="`); ok {
			le, v, _ := strings.Cut(rest, `"} `)
			buckets[le], _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if count == 0 {
		return "no commands recorded"
	}
	out := fmt.Sprintf("%.0f commands", count)
	for _, le := range []string{"0.005", "0.01", "0.025", "0.05"} {
		out += fmt.Sprintf(", %.1f %% within %s s", 100*buckets[le]/count, le)
	}
	return out
}

// quantiles says p50, p90, p99 and max of ds.
func quantiles(ds []time.Duration) string {
	lat := slices.Clone(ds)
	slices.Sort(lat)
	q := func(p float64) time.Duration { return quantileOfSorted(lat, p) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("p50 %s   p90 %s   p99 %s   max %s", ms(q(0.50)), ms(q(0.90)), ms(q(0.99)), ms(q(1)))
}

// quantile is the p-quantile of ds (0 when empty).
func quantile(ds []time.Duration, p float64) time.Duration {
	lat := slices.Clone(ds)
	slices.Sort(lat)
	return quantileOfSorted(lat, p)
}

func quantileOfSorted(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(p*float64(len(lat))))]
}

func (r *commandsResult) print(w io.Writer, b *commandsBench) {
	fmt.Fprintf(w, "aghali bench commands: %d runs at %.0f/s asked (%.1f/s started), one valve each, %d controllers; database %s\n",
		b.runs, b.runRate, r.startRate, b.controllers, r.dbSettings)
	fmt.Fprintf(w, "ingest while the runs started: %.0f messages/s asked, %.0f readings committed in %.1f s (%.0f readings/s)\n",
		b.ingestRate, r.readings, r.window.Seconds(), r.readings/r.window.Seconds())
	fmt.Fprintf(w, "run started (StartRun called) → open command at the controller, %d runs after %d of warm-up:\n", len(r.latencies), b.warmup)
	fmt.Fprintf(w, "  %s\n", quantiles(r.latencies))
	fmt.Fprintf(w, "  of which StartRun (run and command committed, through the interlocks): %s\n", quantiles(r.persist))
	fmt.Fprintf(w, "  and committed → at the controller (NOTIFY, dispatcher, broker):     %s\n", quantiles(r.deliver))
	fmt.Fprintf(w, "reference, a one-row durable commit on the same database, same load, before the runs: %s\n", quantiles(r.commit))
	fmt.Fprintf(w, "server, queued → published (aghali_irrigation_command_dispatch_seconds): %s\n", r.serverHist)
	fmt.Fprintf(w, "commands missing: %d; sent again because their ack took longer than the 30 s retry: %d\n", r.missing, r.duplicates)
}
