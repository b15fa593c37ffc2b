package fieldnodes_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/loadgen"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/fieldnodes/mqtttest"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/migrations"
	"github.com/aghali/aghali/migrations/pgcluster"
)

// privateDB is a PostgreSQL of the test's own, which the test may stop and start.
type privateDB struct {
	cluster *pgcluster.Cluster
	pool    *pgxpool.Pool
}

func newPrivateDB(t *testing.T) *privateDB {
	t.Helper()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a fixed port: the pool reconnects to it after a restart
	must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c, err := pgcluster.New(pgcluster.Config{Dir: t.TempDir(), Port: port, Trust: true,
		Settings: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "TimeZone": "UTC"}})
	must(t, err)
	must(t, c.Start(ctx))
	t.Cleanup(func() { _ = c.Destroy(context.Background()) })
	must(t, c.CreateDatabase(ctx, "aghali"))
	mp, err := pgxpool.New(ctx, c.URL("aghali"))
	must(t, err)
	_, err = migrations.Apply(ctx, mp, testLogger(t))
	mp.Close()
	must(t, err)
	pool, err := geo.OpenPool(ctx, c.URL("aghali"), 8)
	must(t, err)
	t.Cleanup(pool.Close)
	return &privateDB{cluster: c, pool: pool}
}

// flow publishes n messages of 4 readings for nodes uids over publishers at rate messages/s.
type flow struct {
	t0        time.Time
	uids      []string
	published atomic.Int64
}

func (f *flow) payload(k int) []byte {
	ts := f.t0.Add(time.Duration(k/len(f.uids)) * time.Second).Format(time.RFC3339)
	return fmt.Appendf(nil, `{"ts":%q,"readings":{"soil_vwc":0.2,"soil_temp_c":18.5,"soil_ec_ds_m":0.4,"battery_v":3.6}}`, ts)
}

func (f *flow) run(ctx context.Context, t *testing.T, pubs []*loadgen.Publisher, n int, rate float64) {
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	for i, p := range pubs {
		wg.Go(func() {
			for k := i; k < n; k += len(pubs) {
				if d := time.Until(start.Add(time.Duration(float64(k) / rate * float64(time.Second)))); d > 0 {
					time.Sleep(d)
				}
				if err := p.Publish(ctx, "aghali/nodes/"+f.uids[k%len(f.uids)]+"/up", f.payload(k)); err != nil {
					t.Error(err)
					return
				}
				f.published.Add(1)
			}
		})
	}
	wg.Wait()
}

func farmNodes(t *testing.T, ctx context.Context, store *fieldnodes.Store, pool *pgxpool.Pool, nodes int) (farmID int64, uids []string) {
	t.Helper()
	var org int64
	must(t, pool.QueryRow(ctx, `INSERT INTO organisations (name) VALUES ('o') RETURNING id`).Scan(&org))
	must(t, pool.QueryRow(ctx, `INSERT INTO farms (org_id, name) VALUES ($1, 'f') RETURNING id`, org).Scan(&farmID))
	for i := range nodes {
		uid := fmt.Sprintf("n%03d", i)
		_, err := store.CreateNode(ctx, fieldnodes.Node{UID: uid, FarmID: farmID})
		must(t, err)
		uids = append(uids, uid)
	}
	return farmID, uids
}

// PostgreSQL stops for 30 s in the middle of a steady ingest. The ingest buffers up to its
// bound, then stops taking messages (the embedded broker stops reading from the publishers;
// Mosquitto queues for the server's session), retries, and catches up when the database is
// back: every reading stored exactly once, the buffer never past its bound, the heap bounded.
func TestDatabaseOutageLosesNothing(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"embedded", "mosquitto"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := newPrivateDB(t)
			store, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: db.pool, Logger: testLogger(t)})
			must(t, err)
			_, uids := farmNodes(t, ctx, store, db.pool, 50)
			const maxBuffered = 500
			reg := prometheus.NewRegistry()
			var brokerURL string
			var link *mqttlink.Link
			cfg := fieldnodes.IngestConfig{Store: store, Logger: testLogger(t), Registerer: reg, BatchSize: 400, MaxBuffered: maxBuffered,
				RetryMin: 50 * time.Millisecond, RetryMax: time.Second, DrainTimeout: 5 * time.Second}
			if via == "embedded" {
				b, err := broker.New(broker.Config{Listen: "127.0.0.1:0", Auth: store, Logger: testLogger(t), Gateways: map[string]string{"load": "pw"}})
				must(t, err)
				must(t, b.Start(ctx))
				t.Cleanup(b.Stop)
				user, pass := b.InternalCredentials()
				link = mqttLink(t, b.URL(), "aghali-serve-1", user, pass, "aghali")
				cfg.Link = link
				ing, err := fieldnodes.NewIngest(cfg)
				must(t, err)
				b.SetHandoff(ing)
				runIngest(t, ing, link)
				brokerURL = b.URL()
			} else {
				m := mqtttest.Start(t, mqtttest.Config{Users: map[string]string{"aghali-server": "s", "load": "pw"}})
				link = mqttLink(t, m.URL, "aghali-serve-1", "aghali-server", "s", "")
				cfg.Link = link
				ing, err := fieldnodes.NewIngest(cfg)
				must(t, err)
				runIngest(t, ing, link)
				brokerURL = m.URL
			}
			pubs := publishers(t, brokerURL, 4, 500)
			f := &flow{t0: time.Now().UTC().Add(-time.Hour).Truncate(time.Second), uids: uids}
			const n, rate = 15000, 400.0 // ≈ 37 s of publishing
			pctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			defer cancel()
			done := make(chan struct{})
			go func() { defer close(done); f.run(pctx, t, pubs, n, rate) }()

			// Let the flow settle, then take the database away for 30 s.
			for f.published.Load() < 1000 {
				time.Sleep(20 * time.Millisecond)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heapBefore := ms.HeapAlloc
			must(t, db.cluster.Stop(ctx))
			outage := time.Now()
			var maxBuf, maxHeap float64
			for time.Since(outage) < 30*time.Second {
				maxBuf = max(maxBuf, gauge(t, reg, "aghali_ingest_buffered_messages"))
				runtime.ReadMemStats(&ms)
				maxHeap = max(maxHeap, float64(ms.HeapAlloc))
				time.Sleep(100 * time.Millisecond)
			}
			publishedDuring := f.published.Load()
			must(t, db.cluster.Start(ctx))
			<-done
			for _, p := range pubs {
				must(t, p.Wait(pctx))
			}
			want := int64(n * 4)
			eventually(t, 60*time.Second, "every reading after the outage", func() bool {
				var got int64
				if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&got); err != nil {
					return false
				}
				return got == want
			})
			var distinct int64
			must(t, db.pool.QueryRow(ctx, `SELECT count(DISTINCT (node_id, metric_id, ts)) FROM readings`).Scan(&distinct))
			if distinct != want {
				t.Errorf("%d distinct readings, want %d", distinct, want)
			}
			if maxBuf > maxBuffered {
				t.Errorf("%v messages buffered during the outage; the bound is %d", maxBuf, maxBuffered)
			}
			if grown := maxHeap - float64(heapBefore); grown > 64<<20 {
				t.Errorf("the heap grew by %.0f MiB during the outage", grown/(1<<20))
			}
			if errs := counter(t, reg, "aghali_ingest_commit_errors_total"); errs == 0 {
				t.Error("no failed commit counted during the outage")
			}
			t.Logf("%s: %d messages published before and during the outage; at most %v buffered; heap +%.1f MiB",
				via, publishedDuring, maxBuf, (maxHeap-float64(heapBefore))/(1<<20))
		})
	}
}

func runIngest(t *testing.T, ing *fieldnodes.Ingest, link *mqttlink.Link) {
	t.Helper()
	must(t, ing.Start(context.Background()))
	startLink(t, link)
	t.Cleanup(ing.Stop)
}

func publishers(t *testing.T, url string, k, window int) []*loadgen.Publisher {
	t.Helper()
	out := make([]*loadgen.Publisher, k)
	for i := range out {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p, err := loadgen.Dial(ctx, loadgen.Config{URL: url, ClientID: fmt.Sprintf("load-%d", i), Username: "load", Password: "pw",
			Window: window, RetryInterval: 50 * time.Millisecond, Logger: testLogger(t)})
		cancel()
		must(t, err)
		t.Cleanup(p.Close)
		out[i] = p
	}
	return out
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 { return counter(t, reg, name) }

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// The broker restarts mid-ingest: the server's link reconnects and subscribes again, the
// publishers publish again what was not acknowledged, and every reading is stored once. With
// Mosquitto (persistence on) the server's session and its queue survive the restart; the
// embedded broker never acknowledged what it had not committed.
func TestBrokerRestartLosesNothing(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"embedded", "mosquitto"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFarm(t)
			_, uids := farmNodes(t, ctx, f.store, f.db, 20)
			reg := prometheus.NewRegistry()
			cfg := fieldnodes.IngestConfig{Store: f.store, Logger: testLogger(t), Registerer: reg, BatchSize: 400}
			var restart func()
			var url string
			if via == "embedded" {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				must(t, err)
				addr := ln.Addr().String()
				ln.Close()
				// The restarted broker gets its Handoff before it listens: without one it routes an
				// uplink to the subscribers and acknowledges it at once, and the reconnecting
				// publishers, retrying every 50 ms, republish their window before the server's link
				// has subscribed again, so what they get in first is acknowledged and dropped.
				newBroker := func(h broker.Handoff) *broker.Broker {
					b, err := broker.New(broker.Config{Listen: addr, Auth: f.store, Logger: testLogger(t), Handoff: h,
						Gateways: map[string]string{"load": "pw"}, InternalPassword: "internal-pw"})
					must(t, err)
					for deadline := time.Now().Add(5 * time.Second); ; {
						err = b.Start(ctx)
						if err == nil || time.Now().After(deadline) {
							break
						}
						time.Sleep(50 * time.Millisecond) // the old listener's port is being released
					}
					must(t, err)
					return b
				}
				b := newBroker(nil) // the ingest needs the broker's link; no publisher is connected yet
				link := mqttLink(t, b.URL(), "aghali-serve-1", broker.InternalUser, "internal-pw", "aghali")
				cfg.Link = link
				ing, err := fieldnodes.NewIngest(cfg)
				must(t, err)
				b.SetHandoff(ing)
				runIngest(t, ing, link)
				var mu sync.Mutex
				restart = func() {
					mu.Lock()
					defer mu.Unlock()
					b.Stop()
					b = newBroker(ing)
				}
				t.Cleanup(func() { mu.Lock(); b.Stop(); mu.Unlock() })
				url = "tcp://" + addr
			} else {
				// A plain subscription (Aghali's default): Mosquitto 2.0 does not keep a shared one
				// across its restart, and drops what is published before the server subscribes
				// again (docs/mqtt.md).
				m := mqtttest.Start(t, mqtttest.Config{Persistence: true, Users: map[string]string{"aghali-server": "s", "load": "pw"}})
				link := mqttLink(t, m.URL, "aghali-serve-1", "aghali-server", "s", "")
				cfg.Link = link
				ing, err := fieldnodes.NewIngest(cfg)
				must(t, err)
				runIngest(t, ing, link)
				restart = func() { must(t, m.Restart()) }
				url = m.URL
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("readings stored: %d; mosquitto's log:\n%s", (&rig{farm: f}).readings(t), m.Logs())
					}
				})
			}
			pubs := publishers(t, url, 2, 300)
			fl := &flow{t0: time.Now().UTC().Add(-time.Hour).Truncate(time.Second), uids: uids}
			const n = 6000
			pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			done := make(chan struct{})
			go func() { defer close(done); fl.run(pctx, t, pubs, n, 1500) }()
			for fl.published.Load() < n/2 {
				time.Sleep(10 * time.Millisecond)
			}
			restart()
			<-done
			for _, p := range pubs {
				must(t, p.Wait(pctx))
			}
			eventually(t, 30*time.Second, "every reading after the restart", func() bool { return (&rig{farm: f}).readings(t) == n*4 })
			reconnects := uint64(0)
			for _, p := range pubs {
				_, _, rc := p.Stats()
				reconnects += rc
			}
			if reconnects == 0 {
				t.Error("the publishers never reconnected: was the broker restarted?")
			}
		})
	}
}
