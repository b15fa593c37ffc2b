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
	"github.com/aghali/aghali/fieldnodes/loadgen"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/irrigation"
)

// benchDecide is `aghali bench decide`: it runs `aghali serve` as a subprocess with its embedded
// broker, keeps an ingest load of --ingest-rate native messages per second (4 readings each)
// going, and has --probes soil probes, each in a zone of its own with a rule
// (`last("soil_vwc", "1h") < 0.18`, water 10 min), report a dry reading at --probe-rate per
// second. Each reading goes the whole way a real one goes: MQTT → ingest batch → commit → the
// rule engine, told of the commit, evaluates the zone's rules → StartRun queues the open in the
// outbox → the dispatcher publishes it → the controller's MQTT connection. The benchmark
// reports p50/p90/p99/max of reading published → open command at the controller (which holds
// the committed → published goal with MQTT and batching on top), and the server's own
// committed → queued and queued → published histograms beside it.
func benchDecide(ctx context.Context, args []string, env Env) error {
	fs := flag.NewFlagSet("aghali bench decide", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	b := decideBench{env: env}
	fs.IntVar(&b.probes, "probes", 1000, "dry readings, each from the probe of a zone of its own")
	fs.Float64Var(&b.probeRate, "probe-rate", 20, "dry readings published per second")
	fs.IntVar(&b.controllers, "controllers", 10, "farms, each with one controller (its own MQTT connection) watering its share of the zones")
	fs.Float64Var(&b.ingestRate, "ingest-rate", 10_000, "node messages per second published meanwhile (0: none)")
	fs.IntVar(&b.nodes, "nodes", 1000, "nodes the ingest load is spread over")
	fs.IntVar(&b.loadZones, "load-zones", 0, "put the load's nodes into this many zones, each with a rule that never fires (0: no zone)")
	fs.IntVar(&b.conns, "connections", 8, "ingest publishing connections")
	fs.IntVar(&b.warmup, "warmup", 50, "first readings left out of the figures")
	fs.StringVar(&b.dbURL, "database-url", env.Getenv("AGHALI_DATABASE_URL"), "database to use (it gets a bench farm); empty: a private PostgreSQL in a temporary directory")
	fs.StringVar(&b.serveEnv, "serve-env", "", "extra settings for aghali serve, KEY=VALUE,... (e.g. GOGC=400)")
	fs.StringVar(&b.bin, "aghali", "", "aghali binary to run as the server (default: this one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench decide: unexpected argument %q", fs.Arg(0))
	}
	if b.probes <= b.warmup || b.probeRate <= 0 || b.controllers <= 0 || b.ingestRate < 0 || b.nodes <= 0 || b.conns <= 0 || b.loadZones < 0 {
		return errors.New("bench decide: --probes must exceed --warmup; rates, --controllers, --nodes and --connections must be positive")
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
	if res.missing > 0 || res.duplicates > 0 {
		return fmt.Errorf("bench decide: %d readings watered nothing, %d watered more than once", res.missing, res.duplicates)
	}
	return nil
}

type decideBench struct {
	env                               Env
	probes, controllers, nodes, conns int
	loadZones, warmup                 int
	probeRate, ingestRate             float64
	dbURL, bin, serveEnv              string
	pubUser, pubPass                  string
	farmIDs                           []int64
}

type decideResult struct {
	latencies           []time.Duration // reading published → open at the controller, in probe order
	server              []decideRecord  // per run, from the server's records: readings committed → command published
	missing, duplicates int
	resent              int     // deliveries of an open already delivered: resends (its ack was late), which a controller drops
	serverResent        int     // runs whose open was published more than once: timed to its first arrival at the controller
	probeRate           float64 // dry readings actually published per second
	readings            float64 // readings committed by the server meanwhile
	window              time.Duration
	decide, dispatch    string          // the server's histograms
	commit              []time.Duration // reference: one-row durable commits meanwhile
	dbSettings          string
}

func (b *decideBench) run(ctx context.Context) (res decideResult, err error) {
	dir, err := os.MkdirTemp("", "aghali-bench-decide-")
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
	window := time.Duration(float64(b.probes)/b.probeRate*float64(time.Second)) + 10*time.Second
	ing := &ingestBench{env: b.env, nodes: b.nodes, conns: b.conns, window: 2000, broker: "embedded", dbURL: b.dbURL, bin: b.bin,
		serveEnv: b.serveEnv, dir: dir, pool: pool, messages: max(int(b.ingestRate*window.Seconds()), b.nodes)}
	if err := ing.setUpFarm(ctx); err != nil {
		return res, err
	}
	if err := ing.startBroker(); err != nil {
		return res, err
	}
	b.pubUser, b.pubPass = ing.pubUser, ing.pubPass

	nodes, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: pool})
	if err != nil {
		return res, err
	}
	irr, err := irrigation.NewStore(pool, nodes, irrigation.Config{})
	if err != nil {
		return res, err
	}
	if err := b.zoneTheLoad(ctx, pool, irr, ing.nodeIDs); err != nil {
		return res, err
	}
	targets, links, err := b.setUpZones(ctx, pool, irr, ing.brokerURL)
	if err != nil {
		return res, err
	}
	server, err := ing.startServer(ctx)
	if err != nil {
		return res, err
	}
	defer server.kill()

	var mu sync.Mutex
	published := make(map[string]time.Time, b.probes) // controller/channel → when the dry reading left
	arrived := newArrivals(b.probes)
	stopControllers, err := answerCommands(ctx, links, func(key string, c fieldnodes.Command, at time.Time) {
		if c.Action == fieldnodes.ActionOpen {
			arrived.add(key, c.ID, at)
		}
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

	// The dry readings, each from its zone's probe, on a connection of their own.
	probe, err := loadgen.Dial(ctx, loadgen.Config{URL: ing.brokerURL, ClientID: ing.pubUser + "-probes",
		Username: ing.pubUser, Password: ing.pubPass, Window: 100, RetryInterval: 50 * time.Millisecond})
	if err != nil {
		return res, fmt.Errorf("probe publisher: %w", err)
	}
	defer probe.Close()
	// The reference, paced like the probes and meanwhile: the floor under any durable decision
	// at that moment.
	type reference struct {
		commits []time.Duration
		err     error
	}
	refDone := make(chan reference, 1)
	go func() {
		c, err := commitReference(ctx, pool, len(targets), time.Duration(float64(time.Second)/b.probeRate))
		refDone <- reference{c, err}
	}()
	storedBefore, _ := server.storedReadings()
	t0 := time.Now()
	for i, tg := range targets {
		if d := time.Until(t0.Add(time.Duration(float64(i) / b.probeRate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		payload := fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":0.12}}`, now.UTC().Format(time.RFC3339Nano))
		mu.Lock()
		published[tg.key] = now
		mu.Unlock()
		if err := probe.Publish(ctx, "aghali/nodes/"+tg.probe+"/up", []byte(payload)); err != nil {
			return res, fmt.Errorf("probe %d: %w", i, err)
		}
	}
	res.probeRate = float64(len(targets)) / time.Since(t0).Seconds()
	arrived.waitFor(len(targets), 30*time.Second)
	time.Sleep(500 * time.Millisecond) // a duplicate would show up by now
	res.window = time.Since(t0)
	storedAfter, _ := server.storedReadings()
	res.readings = storedAfter - storedBefore
	if err := stopIngest(); err != nil {
		return res, fmt.Errorf("ingest load: %w", err)
	}
	ref := <-refDone
	if ref.err != nil {
		return res, fmt.Errorf("commit reference: %w", ref.err)
	}
	res.commit = ref.commits
	mu.Lock()
	defer mu.Unlock()
	for i, tg := range targets {
		a := arrived.of(tg.key)
		switch {
		case a == nil:
			res.missing++
			continue
		case len(a.ids) > 1:
			res.duplicates++
		}
		res.resent += a.count - len(a.ids)
		if i >= b.warmup {
			res.latencies = append(res.latencies, a.at.Sub(published[tg.key]))
		}
	}
	if res.server, res.serverResent, err = committedToPublished(ctx, pool, b.farmIDs, b.warmup, arrived); err != nil {
		return res, err
	}
	res.decide = histogram(server, "aghali_irrigation_decide_seconds")
	res.dispatch = histogram(server, "aghali_irrigation_command_dispatch_seconds")
	return res, nil
}

// decideTarget is one zone: its probe and the valve its rule opens.
type decideTarget struct {
	probe string // node uid
	key   string // controller uid/channel
}

// setUpZones creates --controllers farms of the village, each with one controller and its share
// of the --probes zones, each zone with a probe, a valve and the dry-soil rule; and a link per
// controller logging in with its own secret, as a real controller does.
func (b *decideBench) setUpZones(ctx context.Context, pool *pgxpool.Pool, irr *irrigation.Store, brokerURL string) ([]decideTarget, []controllerLink, error) {
	perController := (b.probes + b.controllers - 1) / b.controllers
	if perController > 255 {
		return nil, nil, fmt.Errorf("%d zones over %d controllers is %d valves each; a controller has at most 255", b.probes, b.controllers, perController)
	}
	tag := randomHex(3)
	var org int64
	if err := pool.QueryRow(ctx, `INSERT INTO organisations (name) VALUES ($1) RETURNING id`, "bench decide "+tag).Scan(&org); err != nil {
		return nil, nil, err
	}
	var targets []decideTarget
	var links []controllerLink
	for c := range b.controllers {
		n := min(perController, b.probes-c*perController)
		if n <= 0 {
			break
		}
		var farm int64
		if err := pool.QueryRow(ctx, `INSERT INTO farms (org_id, name) VALUES ($1, $2) RETURNING id`, org,
			fmt.Sprintf("bench decide %d", c)).Scan(&farm); err != nil {
			return nil, nil, err
		}
		b.farmIDs = append(b.farmIDs, farm)
		// The zones, their probes and rules, set up in bulk (the API would take a while).
		var zones []int64
		if err := pool.QueryRow(ctx, `WITH ins AS (
				INSERT INTO zones (farm_id, name, geom, max_runtime_s)
				SELECT $1, 'bench zone ' || i, ST_GeomFromText('POLYGON((46.63 39.09,46.6312 39.09,46.6312 39.0909,46.63 39.0909,46.63 39.09))', 4326), 3600
				FROM generate_series(1, $2) i ORDER BY i RETURNING id)
			SELECT array_agg(id ORDER BY id) FROM ins`, farm, n).Scan(&zones); err != nil {
			return nil, nil, err
		}
		uids := make([]string, len(zones))
		for i := range zones {
			uids[i] = fmt.Sprintf("bench-%s-probe-%02d-%03d", tag, c, i)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO nodes (uid, farm_id, zone_id) SELECT u, $3, z FROM unnest($1::text[], $2::bigint[]) AS x(u, z)`,
			uids, zones, farm); err != nil {
			return nil, nil, err
		}
		if _, err := pool.Exec(ctx, `INSERT INTO rules (farm_id, zone_id, name, condition, duration_s, cooldown_s, updated_at)
			SELECT $1, z, 'Dry soil', 'last("soil_vwc", "1h") < 0.18', 600, 0, now() FROM unnest($2::bigint[]) z`, farm, zones); err != nil {
			return nil, nil, err
		}
		ctl, secret, err := irr.CreateController(ctx, irrigation.Controller{UID: fmt.Sprintf("bench-%s-ctl-%02d", tag, c), FarmID: farm})
		if err != nil {
			return nil, nil, err
		}
		if _, err := pool.Exec(ctx, `INSERT INTO valves (controller_id, channel, zone_id, nominal_flow_lpm)
			SELECT $1, i, z, 20 FROM unnest($2::bigint[]) WITH ORDINALITY AS x(z, i)`, ctl.ID, zones); err != nil {
			return nil, nil, err
		}
		for i := range zones {
			targets = append(targets, decideTarget{probe: uids[i], key: fmt.Sprintf("%s/%d", ctl.UID, i+1)})
		}
		l, err := mqttlink.New(mqttlink.Config{URL: brokerURL, ClientID: ctl.UID, Username: ctl.UID, Password: secret})
		if err != nil {
			return nil, nil, err
		}
		links = append(links, controllerLink{uid: ctl.UID, link: l})
	}
	// Interleave the farms, as a village's zones dry out.
	slices.SortStableFunc(targets, func(x, y decideTarget) int {
		cx, _ := strconv.Atoi(x.key[strings.LastIndexByte(x.key, '/')+1:])
		cy, _ := strconv.Atoi(y.key[strings.LastIndexByte(y.key, '/')+1:])
		return cx - cy
	})
	return targets, links, nil
}

// zoneTheLoad puts the load's nodes into --load-zones zones, each with a rule that never fires,
// so that every committed batch also costs rule evaluations.
func (b *decideBench) zoneTheLoad(ctx context.Context, pool *pgxpool.Pool, irr *irrigation.Store, nodeIDs []int64) error {
	if b.loadZones == 0 || len(nodeIDs) == 0 {
		return nil
	}
	var farm int64
	if err := pool.QueryRow(ctx, `SELECT farm_id FROM nodes WHERE id = $1`, nodeIDs[0]).Scan(&farm); err != nil {
		return err
	}
	var zones []int64
	if err := pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO zones (farm_id, name, geom)
			SELECT $1, 'load zone ' || i, ST_GeomFromText('POLYGON((46.63 39.09,46.6312 39.09,46.6312 39.0909,46.63 39.0909,46.63 39.09))', 4326)
			FROM generate_series(1, $2) i ORDER BY i RETURNING id)
		SELECT array_agg(id ORDER BY id) FROM ins`, farm, b.loadZones).Scan(&zones); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `UPDATE nodes n SET zone_id = ($2::bigint[])[1 + (x.i - 1) % array_length($2::bigint[], 1)]
		FROM unnest($1::bigint[]) WITH ORDINALITY AS x(id, i) WHERE n.id = x.id`, nodeIDs, zones); err != nil {
		return err
	}
	_, err := pool.Exec(ctx, `INSERT INTO rules (farm_id, zone_id, name, condition, duration_s, cooldown_s, updated_at)
		SELECT $1, z, 'Never', 'mean("soil_vwc", "1h") < 0.01', 600, 0, now() FROM unnest($2::bigint[]) z`, farm, zones)
	return err
}

// committedToPublished reads, per run a rule started on the bench farms, the time from the
// readings it was decided on being committed (as the engine was told: the decision's
// readings_committed_at) to its open command being published (the command's sent_at), in the
// order the runs were decided, leaving out the first warmup; and where that time went.
func committedToPublished(ctx context.Context, pool *pgxpool.Pool, farms []int64, warmup int, arrived *arrivals) (_ []decideRecord, resent int, err error) {
	rows, err := pool.Query(ctx, `SELECT (d.facts->>$2)::timestamptz, d.at, r.created_at, c.sent_at, c.attempts,
			ctl.uid || '/' || c.valve
		FROM irrigation_decisions d JOIN irrigation_runs r ON r.id = d.run_id
		JOIN commands c ON c.run_id = d.run_id AND c.action = 'open'
		JOIN controllers ctl ON ctl.id = c.controller_id
		WHERE d.farm_id = ANY($1) AND d.origin = 'rule' AND d.action = 'irrigate' AND d.facts ? $2 AND c.sent_at IS NOT NULL
		ORDER BY d.id`, farms, irrigation.FactReadingsCommittedAt)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []decideRecord
	for i := 0; rows.Next(); i++ {
		var committed, evaluating, acting, sent time.Time
		var attempts int
		var key string
		if err := rows.Scan(&committed, &evaluating, &acting, &sent, &attempts, &key); err != nil {
			return nil, 0, err
		}
		// sent_at is a command's last publish. One sent again (its ack came late) was first
		// published just before it first reached the controller.
		if a := arrived.of(key); attempts > 1 && a != nil && a.at.Before(sent) {
			sent = a.at
			resent++
		}
		if i >= warmup {
			out = append(out, decideRecord{committed: committed, total: sent.Sub(committed),
				toEval: evaluating.Sub(committed), toAct: acting.Sub(evaluating), toSent: sent.Sub(acting)})
		}
	}
	return out, resent, rows.Err()
}

// decideRecord is one run's way from its readings' commit to its open command's publication:
// waiting for the engine (committed → evaluating: the decision's time), gathering facts and
// evaluating (→ acting: the run's creation), and acting, committing and dispatching (→ sent).
type decideRecord struct {
	committed                    time.Time
	total, toEval, toAct, toSent time.Duration
}

// histogram summarises one of the server's latency histograms.
func histogram(s *serveProcess, name string) string {
	resp, err := http.Get(s.http + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var count float64
	buckets := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+"_count "); ok {
			count, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		if rest, ok := strings.CutPrefix(line, name+`_bucket{le="`); ok {
			le, v, _ := strings.Cut(rest, `"} `)
			buckets[le], _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if count == 0 {
		return "nothing recorded"
	}
	out := fmt.Sprintf("%.0f observed", count)
	for _, le := range []string{"0.005", "0.01", "0.025", "0.05"} {
		if v, ok := buckets[le]; ok {
			out += fmt.Sprintf(", %.1f %% within %g ms", 100*v/count, mustFloat(le)*1000)
		}
	}
	return out
}

func mustFloat(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func (r *decideResult) print(w io.Writer, b *decideBench) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(w, "aghali bench decide: %d dry readings at %.0f/s asked (%.1f/s sent), one zone and rule each, on %d farms; database %s\n",
		b.probes, b.probeRate, r.probeRate, b.controllers, r.dbSettings)
	load := "no zones"
	if b.loadZones > 0 {
		load = fmt.Sprintf("in %d zones with a rule each", b.loadZones)
	}
	fmt.Fprintf(w, "ingest meanwhile: %.0f messages/s asked from %d nodes (%s), %.0f readings committed in %.1f s (%.0f readings/s)\n",
		b.ingestRate, b.nodes, load, r.readings, r.window.Seconds(), r.readings/r.window.Seconds())
	fmt.Fprintf(w, "reading committed → open command published (server's records per run: decision's readings_committed_at → command's sent_at), %d runs after %d of warm-up:\n",
		len(r.server), b.warmup)
	if r.serverResent > 0 {
		fmt.Fprintf(w, "  (%d opens were sent more than once, their acks late; sent_at is the last send, so these are timed to the first arrival at the controller)\n", r.serverResent)
	}
	part := func(f func(decideRecord) time.Duration) []time.Duration {
		out := make([]time.Duration, len(r.server))
		for i, rec := range r.server {
			out[i] = f(rec)
		}
		return out
	}
	fmt.Fprintf(w, "  %s\n", quantiles(part(func(x decideRecord) time.Duration { return x.total })))
	fmt.Fprintf(w, "  of which committed → evaluating   %s\n", quantiles(part(func(x decideRecord) time.Duration { return x.toEval })))
	fmt.Fprintf(w, "           evaluating → acting     %s\n", quantiles(part(func(x decideRecord) time.Duration { return x.toAct })))
	fmt.Fprintf(w, "           acting → published      %s\n", quantiles(part(func(x decideRecord) time.Duration { return x.toSent })))
	if len(r.server) > 0 {
		slow := slices.Clone(r.server)
		slices.SortFunc(slow, func(x, y decideRecord) int { return int(y.total - x.total) })
		t0 := r.server[0].committed
		fmt.Fprintf(w, "  slowest (at s after the first, total = waiting + evaluating + acting):")
		for _, x := range slow[:min(8, len(slow))] {
			fmt.Fprintf(w, " %.1fs %s=%s+%s+%s;", x.committed.Sub(t0).Seconds(), ms(x.total), ms(x.toEval), ms(x.toAct), ms(x.toSent))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "reference, a one-row durable commit on the same database meanwhile (paced like the readings): %s\n", quantiles(r.commit))
	if total := part(func(x decideRecord) time.Duration { return x.total }); len(total) > 0 && len(r.commit) > 0 {
		ratio := func(p float64) float64 { return float64(quantile(total, p)) / float64(max(1, quantile(r.commit, p))) }
		fmt.Fprintf(w, "  decisions against the reference (a decision contains one such commit): p50 %.1f×   p90 %.1f×   p99 %.1f×\n",
			ratio(0.5), ratio(0.9), ratio(0.99))
	}
	fmt.Fprintf(w, "reading published → open command at the controller (end to end: MQTT, the ingest's batching, the above, MQTT), %d readings:\n", len(r.latencies))
	fmt.Fprintf(w, "  %s\n", quantiles(r.latencies))
	fmt.Fprintf(w, "server, readings committed → run queued (aghali_irrigation_decide_seconds): %s\n", r.decide)
	fmt.Fprintf(w, "server, queued → published (aghali_irrigation_command_dispatch_seconds): %s\n", r.dispatch)
	fmt.Fprintf(w, "readings that watered nothing: %d, more than once: %d (open commands resent because their ack came late, which a controller drops as repeated: %d)\n", r.missing, r.duplicates, r.resent)
}
