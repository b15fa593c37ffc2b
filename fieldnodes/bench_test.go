package fieldnodes_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/loadgen"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

// benchFarm is a farm with nodes and monthly partitions from `from` on.
func benchFarm(b *testing.B, nodes int, from time.Time, months int) (*farm, []int64) {
	b.Helper()
	f := newFarm(b)
	must(b, f.store.EnsurePartitions(context.Background(), from, from.AddDate(0, months, 0)))
	ids := make([]int64, nodes)
	for i := range ids {
		ids[i] = f.node(b, fmt.Sprintf("n%05d", i), 0)
	}
	return f, ids
}

// batches yields batches of size readings: 4 metrics per node and time, nodes round robin, time
// advancing, so nothing is a duplicate.
type batcher struct {
	ids     []int64
	metrics []string
	t0      time.Time
	next    int
	mu      sync.Mutex
}

func (g *batcher) batch(size int) []fieldnodes.Reading {
	g.mu.Lock()
	start := g.next
	g.next += size / len(g.metrics)
	g.mu.Unlock()
	out := make([]fieldnodes.Reading, 0, size)
	for k := start; len(out) < size; k++ {
		node := g.ids[k%len(g.ids)]
		ts := g.t0.Add(time.Duration(k/len(g.ids)) * time.Second)
		for j, m := range g.metrics {
			out = append(out, fieldnodes.Reading{NodeID: node, Metric: m, TS: ts, Value: float64(k%1000) / 1000 * float64(j+1)})
		}
	}
	return out
}

// BenchmarkInsertReadings measures Store.InsertReadings (COPY into staging, deduplicating insert,
// node_latest and nodes upkeep, one transaction per batch) in readings per second, with 1 and 2
// batches committed at once (IngestConfig.Committers).
func BenchmarkInsertReadings(b *testing.B) {
	for _, size := range []int{1000, 4000} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("batch=%d/committers=%d", size, workers), func(b *testing.B) {
				t0 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
				f, ids := benchFarm(b, 1000, t0, 1)
				g := &batcher{ids: ids, metrics: []string{"soil_vwc", "soil_temp_c", "soil_ec_ds_m", "battery_v"}, t0: t0}
				ctx := context.Background()
				_, err := f.store.InsertReadings(ctx, g.batch(size)) // warm the metric cache and the staging table
				must(b, err)
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				var inserted int
				var mu sync.Mutex
				per := (b.N + workers - 1) / workers
				for range workers {
					wg.Go(func() {
						for range per {
							n, err := f.store.InsertReadings(ctx, g.batch(size))
							if err != nil {
								b.Error(err)
								return
							}
							mu.Lock()
							inserted += n
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				if inserted != per*workers*size {
					b.Fatalf("inserted %d, want %d", inserted, per*workers*size)
				}
				b.ReportMetric(float64(inserted)/elapsed.Seconds(), "readings/s")
			})
		}
	}
}

// BenchmarkCopyReference is the reference for BenchmarkInsertReadings: raw COPY of the same rows
// straight into readings (no deduplication, no latest values, no node upkeep).
func BenchmarkCopyReference(b *testing.B) {
	t0 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	f, ids := benchFarm(b, 1000, t0, 1)
	g := &batcher{ids: ids, metrics: []string{"soil_vwc", "soil_temp_c", "soil_ec_ds_m", "battery_v"}, t0: t0}
	ctx := context.Background()
	metricIDs := map[string]int16{}
	rows, err := f.db.Query(ctx, `SELECT name, id FROM metrics`)
	must(b, err)
	for rows.Next() {
		var n string
		var id int16
		must(b, rows.Scan(&n, &id))
		metricIDs[n] = id
	}
	b.ResetTimer()
	start := time.Now()
	total := 0
	for range b.N {
		batch := g.batch(1000)
		n, err := f.db.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"node_id", "metric_id", "ts", "value"},
			pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) {
				r := batch[i]
				return []any{r.NodeID, metricIDs[r.Metric], r.TS, r.Value}, nil
			}))
		must(b, err)
		total += int(n)
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "readings/s")
}

// BenchmarkReadingsYear measures Store.Readings over a year of 15-minute data downsampled to 500
// points (DESIGN.md: p99 ≤ 50 ms).
func BenchmarkReadingsYear(b *testing.B) {
	from := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	f, ids := benchFarm(b, 3, from, 12)
	ctx := context.Background()
	// The node under test and two neighbours, a year each.
	for _, id := range ids {
		var batch []fieldnodes.Reading
		for ts := from; ts.Before(from.AddDate(1, 0, 0)); ts = ts.Add(15 * time.Minute) {
			batch = append(batch, fieldnodes.Reading{NodeID: id, Metric: "soil_vwc", TS: ts, Value: 0.2},
				fieldnodes.Reading{NodeID: id, Metric: "soil_temp_c", TS: ts, Value: 15})
			if len(batch) >= 10000 {
				_, err := f.store.InsertReadings(ctx, batch)
				must(b, err)
				batch = batch[:0]
			}
		}
		_, err := f.store.InsertReadings(ctx, batch)
		must(b, err)
	}
	_, err := f.db.Exec(ctx, `VACUUM ANALYZE readings`)
	must(b, err)
	var worst time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		s, err := f.store.Readings(ctx, ids[0], "soil_vwc", from, from.AddDate(1, 0, 0), 500)
		must(b, err)
		if len(s.Points) != 500 && len(s.Points) != 499 {
			b.Fatalf("%d points", len(s.Points))
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}

// BenchmarkIngestEndToEnd measures the whole path on one machine: QoS 1 publishes of 4
// readings each for 1,000 nodes over 16 connections, batched, committed deduplicated and only
// then acknowledged. With the embedded broker the broker hands the publishes to the ingest and
// acknowledges each once it is committed; with Mosquitto the server's link takes them from its
// session and acknowledges them once committed. One op is one message; the figure is committed
// readings per second. (`aghali bench ingest` measures the same with the server in a process of
// its own, durably, and compares with raw COPY.)
func BenchmarkIngestEndToEnd(b *testing.B) {
	for _, via := range []string{"embedded", "mosquitto"} {
		b.Run("broker="+via, func(b *testing.B) { benchIngest(b, via) })
	}
}

func benchIngest(b *testing.B, via string) {
	ctx := context.Background()
	t0 := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	f, _ := benchFarm(b, 1000, t0, 1)
	var url string
	var server *mqttlink.Link
	var ingest *fieldnodes.Ingest
	var err error
	if via == "embedded" {
		br, err := broker.New(broker.Config{Listen: "127.0.0.1:0", Auth: f.store, Gateways: map[string]string{"load": "pw"}})
		must(b, err)
		must(b, br.Start(ctx))
		defer br.Stop()
		user, pass := br.InternalCredentials()
		server, err = mqttlink.New(mqttlink.Config{URL: br.URL(), ClientID: "aghali-serve-1", Username: user, Password: pass})
		must(b, err)
		ingest, err = fieldnodes.NewIngest(fieldnodes.IngestConfig{Store: f.store, Link: server})
		must(b, err)
		br.SetHandoff(ingest)
		url = br.URL()
	} else {
		m := mqtttest.Start(b, mqtttest.Config{Users: map[string]string{"server": "s", "load": "pw"}})
		server, err = mqttlink.New(mqttlink.Config{URL: m.URL, ClientID: "aghali-serve-1", Username: "server", Password: "s"})
		must(b, err)
		ingest, err = fieldnodes.NewIngest(fieldnodes.IngestConfig{Store: f.store, Link: server})
		must(b, err)
		url = m.URL
	}
	must(b, ingest.Start(ctx))
	must(b, server.Start(ctx))
	must(b, server.WaitReady(ctx))
	const publishers = 16
	pubs := make([]*loadgen.Publisher, publishers)
	for i := range pubs {
		pubs[i], err = loadgen.Dial(ctx, loadgen.Config{URL: url, ClientID: fmt.Sprintf("load-%d", i), Username: "load", Password: "pw", Window: 2000})
		must(b, err)
	}
	defer func() {
		for _, p := range pubs {
			p.Close()
		}
		ingest.Stop()
		server.Stop()
	}()

	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	per := (b.N + publishers - 1) / publishers
	for i, p := range pubs {
		wg.Go(func() {
			for k := range per {
				seq := i*per + k
				payload := fmt.Sprintf(`{"ts":"%s","readings":{"soil_vwc":0.2,"soil_temp_c":18.5,"soil_ec_ds_m":0.4},"battery_v":3.6}`,
					t0.Add(time.Duration(seq/1000)*time.Second).Format(time.RFC3339))
				if err := p.Publish(ctx, fmt.Sprintf("aghali/nodes/n%05d/up", seq%1000), []byte(payload)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, p := range pubs {
		must(b, p.Wait(ctx))
	}
	want := per * publishers * 4
	var n int
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(2 * time.Millisecond) {
		must(b, f.db.QueryRow(ctx, `SELECT count(*) FROM readings`).Scan(&n))
		if n >= want || time.Now().After(deadline) {
			break
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n != want {
		b.Fatalf("%d of %d readings stored", n, want)
	}
	b.ReportMetric(float64(want)/elapsed.Seconds(), "readings/s")
}
