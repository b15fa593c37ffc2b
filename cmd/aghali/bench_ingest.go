package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/loadgen"
	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

// benchIngest is `aghali bench ingest`: it runs `aghali serve` as a subprocess (so that the
// memory it reports is the server's own) against a database and a broker, publishes N native
// messages of 4 readings each over K connections at QoS 1, waits until every reading is
// committed, checks that each is stored exactly once, and compares the rate with a raw COPY of
// the same rows into the same table. With --kill-at it kills the server with SIGKILL mid-way
// and starts it again; with --rate and --duration it publishes at a fixed rate for a while, to
// show a sustained rate rather than a burst.
func benchIngest(ctx context.Context, args []string, env Env) error {
	fs := flag.NewFlagSet("aghali bench ingest", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	o := ingestBench{env: env}
	fs.IntVar(&o.messages, "messages", 200_000, "messages to publish (4 readings each)")
	fs.IntVar(&o.conns, "connections", 16, "publishing connections")
	fs.IntVar(&o.nodes, "nodes", 1000, "nodes the messages are spread over")
	fs.Float64Var(&o.rate, "rate", 0, "messages per second over all connections (0: as fast as the broker takes them)")
	fs.DurationVar(&o.duration, "duration", 0, "publish for this long at --rate (instead of --messages)")
	fs.StringVar(&o.broker, "broker", "embedded", "embedded (aghali serve's own) or mosquitto (a private Mosquitto with the settings of docs/mqtt.md)")
	fs.IntVar(&o.window, "window", 2000, "publishes in flight per connection")
	fs.IntVar(&o.killAt, "kill-at", 0, "kill aghali serve with SIGKILL once this many messages are published, then start it again")
	fs.StringVar(&o.dbURL, "database-url", env.Getenv("AGHALI_DATABASE_URL"), "database to use (it gets a bench farm); empty: a private PostgreSQL in a temporary directory")
	fs.StringVar(&o.bin, "aghali", "", "aghali binary to run as the server (default: this one)")
	fs.StringVar(&o.serveEnv, "serve-env", "", "extra settings for aghali serve, KEY=VALUE,... (e.g. GOMAXPROCS=1)")
	fs.DurationVar(&o.stall, "stall", 60*time.Second, "give up when no reading is committed for this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench ingest: unexpected argument %q", fs.Arg(0))
	}
	if o.duration > 0 {
		if o.rate <= 0 {
			return errors.New("bench ingest: --duration needs --rate")
		}
		o.messages = int(o.rate * o.duration.Seconds())
	}
	if o.messages <= 0 || o.conns <= 0 || o.nodes <= 0 || o.window <= 0 {
		return errors.New("bench ingest: --messages, --connections, --nodes and --window must be positive")
	}
	if o.broker != "embedded" && o.broker != "mosquitto" {
		return fmt.Errorf("bench ingest: --broker %q: embedded or mosquitto", o.broker)
	}
	if o.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.bin = exe
	}
	res, err := o.run(ctx)
	if err != nil {
		return err
	}
	res.print(env.Stdout, &o)
	if res.lost > 0 || res.extra > 0 {
		return fmt.Errorf("bench ingest: %d readings lost, %d stored more than once", res.lost, res.extra)
	}
	return nil
}

// ingestBench is one run's settings and state.
type ingestBench struct {
	env                         Env
	messages, conns, nodes      int
	window, killAt              int
	rate                        float64
	duration, stall             time.Duration
	broker, dbURL, bin          string
	serveEnv                    string
	dir                         string
	pool                        *pgxpool.Pool
	nodeIDs                     []int64
	t0                          time.Time
	server                      *serveProcess
	mosquitto                   *mqtttest.Mosquitto
	brokerURL, pubUser, pubPass string
	serverPass                  string // the server's login to Mosquitto
	uidPrefix                   string
	httpPort                    int
}

// ingestResult is what a run measured.
type ingestResult struct {
	published                     time.Duration // first publish → last publish
	committed                     time.Duration // first publish → every reading committed
	expected, stored, lost, extra int64
	copyTime                      time.Duration // the mean of copyBefore and copyAfter
	copyBefore, copyAfter         time.Duration
	rssPeak, rssEnd               int64 // bytes
	kills                         int
	restart                       time.Duration
	sustained                     []rateSample // committed readings per second during the run
	maxLag                        int64        // most readings published but not yet committed
	reconnects                    uint64
	dbSettings                    string
}

type rateSample struct {
	at       time.Duration
	readings float64
}

func (o *ingestBench) run(ctx context.Context) (res ingestResult, err error) {
	if o.dir, err = os.MkdirTemp("", "aghali-bench-"); err != nil {
		return res, err
	}
	defer os.RemoveAll(o.dir)
	db, err := openBenchDB(ctx, o.dir, o.dbURL)
	if err != nil {
		return res, err
	}
	defer db.close()
	o.dbURL, o.pool, res.dbSettings = db.url, db.pool, db.settings
	if err := o.setUpFarm(ctx); err != nil {
		return res, err
	}
	if err := o.startBroker(); err != nil {
		return res, err
	}
	if o.mosquitto != nil {
		defer o.mosquitto.Stop()
	}
	// The reference runs before and after the ingest, and the two are averaged: on a machine
	// shared with other work, a single run would compare with a moment of its own.
	if res.copyBefore, err = o.copyReference(ctx); err != nil {
		return res, err
	}
	if o.server, err = o.startServer(ctx); err != nil {
		return res, err
	}
	defer func() { o.server.kill() }()

	pubs := make([]*loadgen.Publisher, o.conns)
	for i := range pubs {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		pubs[i], err = loadgen.Dial(dctx, loadgen.Config{URL: o.brokerURL, ClientID: fmt.Sprintf("%s-%d", o.pubUser, i),
			Username: o.pubUser, Password: o.pubPass, Window: o.window, RetryInterval: 50 * time.Millisecond})
		cancel()
		if err != nil {
			return res, fmt.Errorf("publisher %d: %w", i, err)
		}
		defer pubs[i].Close()
	}

	// Progress: the servers' stored-readings counters (summed over restarts), and peak RSS.
	var published atomic.Int64
	prog := &progress{}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var watchers sync.WaitGroup
	watchers.Add(1)
	start := time.Now()
	go func() { defer watchers.Done(); o.watch(watchCtx, start, prog, &published) }()

	// Publish.
	pctx, cancelPub := context.WithCancel(ctx)
	defer cancelPub()
	var wg sync.WaitGroup
	errs := make(chan error, o.conns+1)
	killed := make(chan struct{})
	for i, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for k := i; k < o.messages; k += o.conns {
				if o.rate > 0 {
					if d := time.Until(start.Add(time.Duration(float64(k) / o.rate * float64(time.Second)))); d > 0 {
						time.Sleep(d)
					}
				}
				node := k % o.nodes
				buf = o.payload(buf[:0], k)
				if err := p.Publish(pctx, "aghali/nodes/"+o.uid(node)+"/up", append([]byte(nil), buf...)); err != nil {
					errs <- err
					return
				}
				if n := published.Add(1); o.killAt > 0 && n == int64(o.killAt) {
					close(killed)
				}
			}
		}()
	}
	if o.killAt > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-killed:
			case <-pctx.Done():
				return
			}
			prog.freeze(o.server) // its counter as of now; what it commits after this is found in the table
			o.server.kill()
			restart := time.Now()
			s, err := o.startServer(pctx)
			if err != nil {
				errs <- fmt.Errorf("restart after kill: %w", err)
				return
			}
			res.restart = time.Since(restart)
			res.kills++
			prog.swap(s)
			o.server = s
		}()
	}
	wg.Wait()
	res.published = time.Since(start)
	select {
	case err := <-errs:
		stopWatch()
		watchers.Wait()
		return res, err
	default:
	}

	// Every publish acknowledged: with the embedded broker that means committed; with
	// Mosquitto, that the broker has it. Then wait for the table to hold every reading.
	res.expected = int64(o.messages) * 4
	for _, p := range pubs {
		if err := p.Wait(ctx); err != nil {
			return res, err
		}
		_, _, rc := p.Stats()
		res.reconnects += rc
	}
	done, err := o.waitCommitted(ctx, prog, res.expected, res.kills > 0)
	stopWatch()
	watchers.Wait()
	if err != nil {
		return res, err
	}
	res.committed = done.Sub(start)
	res.rssPeak, res.rssEnd = prog.rssPeak.Load(), rss(o.server.pid())
	res.sustained, res.maxLag = prog.samples(), prog.maxLag.Load()
	if err := o.verify(ctx, &res); err != nil {
		return res, err
	}
	o.server.kill()
	if res.copyAfter, err = o.copyReference(ctx); err != nil {
		return res, err
	}
	res.copyTime = (res.copyBefore + res.copyAfter) / 2
	return res, nil
}

// setUpFarm registers an organisation, a farm and the bench's nodes.
func (o *ingestBench) setUpFarm(ctx context.Context) error {
	run := randomHex(3)
	var org, farm int64
	if err := o.pool.QueryRow(ctx, `INSERT INTO organisations (name) VALUES ($1) RETURNING id`, "bench "+run).Scan(&org); err != nil {
		return err
	}
	if err := o.pool.QueryRow(ctx, `INSERT INTO farms (org_id, name) VALUES ($1, 'bench') RETURNING id`, org).Scan(&farm); err != nil {
		return err
	}
	uids := make([]string, o.nodes)
	for i := range uids {
		uids[i] = fmt.Sprintf("bench-%s-%05d", run, i)
	}
	if err := o.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO nodes (uid, farm_id) SELECT u, $2 FROM unnest($1::text[]) WITH ORDINALITY AS x(u, i) ORDER BY i RETURNING id, uid)
		SELECT array_agg(id ORDER BY uid) FROM ins`, uids, farm).Scan(&o.nodeIDs); err != nil {
		return err
	}
	o.uidPrefix = "bench-" + run + "-"
	// Readings lie in the past (the future is refused) and in partitions that exist.
	o.t0 = time.Now().UTC().Truncate(time.Second).Add(-time.Duration(o.messages/o.nodes+2) * time.Second)
	store, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: o.pool})
	if err != nil {
		return err
	}
	return store.EnsurePartitions(ctx, o.t0, time.Now())
}

func (o *ingestBench) uid(node int) string { return o.uidPrefix + fmt.Sprintf("%05d", node) }

// payload is message k: node k mod nodes, its (k div nodes)-th report, four readings.
func (o *ingestBench) payload(b []byte, k int) []byte {
	ts := o.t0.Add(time.Duration(k/o.nodes) * time.Second)
	v := float64(k%1000) / 1000
	b = append(b, `{"ts":"`...)
	b = ts.AppendFormat(b, time.RFC3339)
	b = append(b, `","readings":{"soil_vwc":`...)
	b = strconv.AppendFloat(b, 0.1+v/4, 'f', 4, 64)
	b = append(b, `,"soil_temp_c":`...)
	b = strconv.AppendFloat(b, 15+v*10, 'f', 2, 64)
	b = append(b, `,"soil_ec_ds_m":`...)
	b = strconv.AppendFloat(b, 0.5+v, 'f', 3, 64)
	b = append(b, `,"battery_v":`...)
	b = strconv.AppendFloat(b, 3.3+v/2, 'f', 3, 64)
	return append(b, "}}"...)
}

func (o *ingestBench) startBroker() error {
	o.pubUser, o.pubPass = "bench", randomHex(12)
	if o.broker == "embedded" {
		port, err := freeTCPPort()
		if err != nil {
			return err
		}
		o.brokerURL = fmt.Sprintf("tcp://127.0.0.1:%d", port)
		return nil
	}
	acl := filepath.Join(o.dir, "mosquitto.acl")
	if err := os.WriteFile(acl, []byte("user aghali-server\ntopic readwrite #\n\nuser bench\ntopic write aghali/nodes/#\n"), 0o600); err != nil {
		return err
	}
	dir := filepath.Join(o.dir, "mosquitto")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	o.serverPass = randomHex(12)
	m, err := mqtttest.Run(dir, mqtttest.Config{Persistence: true,
		Users: map[string]string{"aghali-server": o.serverPass, o.pubUser: o.pubPass}, Extra: []string{"acl_file " + acl}})
	if err != nil {
		return err
	}
	o.mosquitto, o.brokerURL = m, m.URL
	return nil
}

// serveProcess is a running `aghali serve`.
type serveProcess struct {
	cmd    *exec.Cmd
	http   string
	done   chan struct{}
	killed atomic.Bool
}

func (s *serveProcess) pid() int {
	if s == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// kill is SIGKILL: no drain, no goodbye.
func (s *serveProcess) kill() {
	if s == nil || !s.killed.CompareAndSwap(false, true) {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// storedReadings is the server's aghali_ingest_readings_stored_total.
func (s *serveProcess) storedReadings() (float64, error) {
	resp, err := http.Get(s.http + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "aghali_ingest_readings_stored_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, sc.Err()
}

func (o *ingestBench) startServer(ctx context.Context) (*serveProcess, error) {
	// The same address (and data directory) on every start: they name the server's MQTT
	// session, which a restarted server must find again.
	if o.httpPort == 0 {
		var err error
		if o.httpPort, err = freeTCPPort(); err != nil {
			return nil, err
		}
	}
	httpPort := o.httpPort
	vars := []string{
		"AGHALI_DATABASE_URL=" + o.dbURL,
		"AGHALI_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(httpPort),
		"AGHALI_DATA_DIR=" + filepath.Join(o.dir, "serve"),
		"AGHALI_LOG_LEVEL=warn",
		"AGHALI_SHUTDOWN_GRACE=5s",
	}
	if o.broker == "embedded" {
		vars = append(vars, "AGHALI_MQTT_LISTEN="+strings.TrimPrefix(o.brokerURL, "tcp://"),
			"AGHALI_MQTT_GATEWAYS="+o.pubUser+":"+o.pubPass)
	} else {
		vars = append(vars, fmt.Sprintf("AGHALI_MQTT_URL=tcp://aghali-server:%s@%s", o.serverPass, strings.TrimPrefix(o.brokerURL, "tcp://")))
	}
	for _, kv := range strings.Split(o.serveEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			vars = append(vars, kv)
		}
	}
	logf, err := os.OpenFile(filepath.Join(o.dir, "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.bin, "serve")
	cmd.Env = append(os.Environ(), vars...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s serve: %w", o.bin, err)
	}
	s := &serveProcess{cmd: cmd, http: fmt.Sprintf("http://127.0.0.1:%d", httpPort), done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(s.http + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("aghali serve exited at start; its log:\n%s", tail(filepath.Join(o.dir, "serve.log")))
		case <-ctx.Done():
			s.kill()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("aghali serve not ready after 90 s; its log:\n%s", tail(filepath.Join(o.dir, "serve.log")))
		}
	}
}

// progress follows the run: readings stored according to the servers' counters (a killed
// server's last count is kept, its successor's added), peak RSS, the commit rate per second.
type progress struct {
	mu      sync.Mutex
	base    float64 // stored by earlier (killed) servers, as last seen
	last    float64 // the current server's counter
	server  *serveProcess
	frozen  bool
	series  []rateSample
	rssPeak atomic.Int64
	maxLag  atomic.Int64
}

func (p *progress) freeze(s *serveProcess) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, err := s.storedReadings(); err == nil {
		p.last = v
	}
	p.base += p.last
	p.last = 0
	p.frozen = true
}

func (p *progress) swap(s *serveProcess) {
	p.mu.Lock()
	p.server, p.frozen = s, false
	p.mu.Unlock()
}

func (p *progress) stored() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.base + p.last
}

func (p *progress) samples() []rateSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]rateSample(nil), p.series...)
}

// watch samples the server's counter and RSS every 100 ms, and the commit rate every second.
func (o *ingestBench) watch(ctx context.Context, start time.Time, p *progress, published *atomic.Int64) {
	p.swap(o.server)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastSec, lastStored := start, 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		s, frozen := p.server, p.frozen
		p.mu.Unlock()
		if s == nil || frozen {
			continue
		}
		if r := rss(s.pid()); r > p.rssPeak.Load() {
			p.rssPeak.Store(r)
		}
		v, err := s.storedReadings()
		if err != nil {
			continue
		}
		p.mu.Lock()
		if !p.frozen && p.server == s {
			p.last = v
		}
		p.mu.Unlock()
		stored := p.stored()
		if lag := published.Load()*4 - int64(stored); lag > p.maxLag.Load() {
			p.maxLag.Store(lag)
		}
		if now := time.Now(); now.Sub(lastSec) >= time.Second {
			p.mu.Lock()
			p.series = append(p.series, rateSample{at: now.Sub(start), readings: (stored - lastStored) / now.Sub(lastSec).Seconds()})
			p.mu.Unlock()
			lastSec, lastStored = now, stored
		}
	}
}

// waitCommitted waits until every reading is in the table: by the servers' counters, or
// (after a kill, when the killed server's last commits may not have been counted) by counting
// the table. It gives up when nothing moves for --stall.
func (o *ingestBench) waitCommitted(ctx context.Context, p *progress, expected int64, killed bool) (time.Time, error) {
	lastCount, lastMove := int64(-1), time.Now()
	for {
		var n int64
		if !killed {
			n = int64(p.stored())
		}
		if killed || n < expected && time.Since(lastMove) > 2*time.Second {
			var err error
			if n, err = o.count(ctx); err != nil {
				return time.Time{}, err
			}
		}
		if n >= expected {
			return time.Now(), nil
		}
		if n != lastCount {
			lastCount, lastMove = n, time.Now()
		}
		if time.Since(lastMove) > o.stall {
			return time.Now(), nil // verify reports what is missing
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (o *ingestBench) count(ctx context.Context) (int64, error) {
	var n int64
	err := o.pool.QueryRow(ctx, `SELECT count(*) FROM readings WHERE node_id = ANY($1) AND ts >= $2`, o.nodeIDs, o.t0).Scan(&n)
	return n, err
}

// verify checks that every expected reading is stored exactly once: per node, its readings
// are exactly its reports' times, four metrics each.
func (o *ingestBench) verify(ctx context.Context, res *ingestResult) error {
	rows, err := o.pool.Query(ctx, `
		SELECT node_id, count(*), count(DISTINCT ts), min(ts), max(ts), count(DISTINCT metric_id)
		FROM readings WHERE node_id = ANY($1) AND ts >= $2 GROUP BY node_id`, o.nodeIDs, o.t0)
	if err != nil {
		return err
	}
	defer rows.Close()
	index := make(map[int64]int, len(o.nodeIDs))
	for i, id := range o.nodeIDs {
		index[id] = i
	}
	for rows.Next() {
		var node, n, distinct, metrics int64
		var lo, hi time.Time
		if err := rows.Scan(&node, &n, &distinct, &lo, &hi, &metrics); err != nil {
			return err
		}
		i := index[node]
		reports := int64(o.messages / o.nodes)
		if i < o.messages%o.nodes {
			reports++
		}
		ok := n == 4*reports && distinct == reports && metrics == 4 && lo.Equal(o.t0) &&
			hi.Equal(o.t0.Add(time.Duration(reports-1)*time.Second))
		switch {
		case ok:
			res.stored += n
		case n > 4*reports:
			res.stored += 4 * reports
			res.extra += n - 4*reports
		default:
			res.stored += min(n, 4*distinct)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	res.lost = res.expected - res.stored
	return nil
}

// copyReference COPYs the same rows (under node ids no node has, into the same table and
// partitions) on two connections, 10,000 rows at a time, and returns how long it took.
func (o *ingestBench) copyReference(ctx context.Context) (time.Duration, error) {
	ids := map[string]int16{}
	rows, err := o.pool.Query(ctx, `SELECT name, id FROM metrics WHERE name IN ('soil_vwc','soil_temp_c','soil_ec_ds_m','battery_v')`)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var n string
		var id int16
		if err := rows.Scan(&n, &id); err != nil {
			rows.Close()
			return 0, err
		}
		ids[n] = id
	}
	rows.Close()
	const offset = 1 << 40
	const batch = 2500 // messages per COPY: 10,000 rows
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				from := int(next.Add(batch)) - batch
				if from >= o.messages {
					return
				}
				to := min(from+batch, o.messages)
				src := make([][]any, 0, 4*(to-from))
				for k := from; k < to; k++ {
					ts := o.t0.Add(time.Duration(k/o.nodes) * time.Second)
					node := int64(offset + k%o.nodes)
					v := float64(k%1000) / 1000
					src = append(src, []any{node, ids["soil_vwc"], ts, 0.1 + v/4}, []any{node, ids["soil_temp_c"], ts, 15 + v*10},
						[]any{node, ids["soil_ec_ds_m"], ts, 0.5 + v}, []any{node, ids["battery_v"], ts, 3.3 + v/2})
				}
				if _, err := o.pool.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"node_id", "metric_id", "ts", "value"}, pgx.CopyFromRows(src)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	select {
	case err := <-errs:
		return 0, fmt.Errorf("raw COPY: %w", err)
	default:
	}
	// Gone again, and vacuumed, so that what comes next finds the table as it was.
	if _, err := o.pool.Exec(ctx, `DELETE FROM readings WHERE node_id >= $1`, int64(offset)); err != nil {
		return 0, err
	}
	if _, err := o.pool.Exec(ctx, `VACUUM readings`); err != nil {
		return 0, err
	}
	return took, nil
}

func (r *ingestResult) print(w io.Writer, o *ingestBench) {
	mode := "as fast as the broker takes them"
	if o.rate > 0 {
		mode = fmt.Sprintf("at %.0f messages/s", o.rate)
	}
	fmt.Fprintf(w, "aghali bench ingest: %d messages × 4 readings over %d connections (window %d), %d nodes, %s broker, %s\n",
		o.messages, o.conns, o.window, o.nodes, o.broker, mode)
	fmt.Fprintf(w, "database:        %s\n", r.dbSettings)
	fmt.Fprintf(w, "published:       %d messages in %.2f s (%.0f messages/s)\n", o.messages, r.published.Seconds(), float64(o.messages)/r.published.Seconds())
	rate := float64(r.stored) / r.committed.Seconds()
	fmt.Fprintf(w, "committed:       %d readings in %.2f s: %.0f readings/s (durable: acknowledged after commit, deduplicated)\n",
		r.stored, r.committed.Seconds(), rate)
	if len(r.sustained) > 2 {
		var lo, hi, sum float64
		mid := r.sustained[1 : len(r.sustained)-1] // whole seconds inside the run
		lo = mid[0].readings
		for _, s := range mid {
			lo, hi, sum = min(lo, s.readings), max(hi, s.readings), sum+s.readings
		}
		fmt.Fprintf(w, "per second:      min %.0f, mean %.0f, max %.0f readings/s over %d s; most readings waiting: %d\n",
			lo, sum/float64(len(mid)), hi, len(mid), r.maxLag)
	}
	fmt.Fprintf(w, "lost:            %d\n", r.lost)
	fmt.Fprintf(w, "duplicated:      %d\n", r.extra)
	if r.kills > 0 {
		fmt.Fprintf(w, "killed:          aghali serve got SIGKILL after %d messages; the new one was ready in %.1f s; publishers reconnected %d times; every reading stored exactly once: %v\n",
			o.killAt, r.restart.Seconds(), r.reconnects, r.lost == 0 && r.extra == 0)
	}
	if r.copyTime > 0 {
		copyRate := float64(r.expected) / r.copyTime.Seconds()
		fmt.Fprintf(w, "raw COPY:        %d readings in %.2f s: %.0f readings/s (same rows, same table, 2 connections; %.0f before the ingest, %.0f after)\n",
			r.expected, r.copyTime.Seconds(), copyRate, float64(r.expected)/r.copyBefore.Seconds(), float64(r.expected)/r.copyAfter.Seconds())
		if o.rate > 0 {
			pace := "the publish rate, not the server, set the pace"
			if rate < 0.95*o.rate*4 {
				pace = "the server and broker fell behind the offered rate"
			}
			fmt.Fprintf(w, "ratio:           offered %.0f readings/s, committed %.0f readings/s (%.2f of raw COPY's capacity; %s)\n",
				o.rate*4, rate, rate/copyRate, pace)
		} else {
			fmt.Fprintf(w, "ratio:           %.2f of raw COPY\n", rate/copyRate)
		}
	}
	fmt.Fprintf(w, "aghali serve:    RSS peak %.0f MiB, at the end %.0f MiB\n", float64(r.rssPeak)/(1<<20), float64(r.rssEnd)/(1<<20))
}

// rss is a process's resident set size in bytes (0 when unknown).
func rss(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(file string) string {
	b, _ := os.ReadFile(file)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
