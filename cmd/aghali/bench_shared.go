package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/loadgen"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/migrations/pgcluster"
)

// benchDB is the database a benchmark runs on: the one its --database-url names, or a private
// cluster in dir, durable as the server's defaults are (fsync, synchronous commit) and sized so
// that a run is not about checkpoints. Migrated; close it when done.
type benchDB struct {
	url      string
	pool     *pgxpool.Pool
	settings string // fsync and synchronous_commit, for the report
	cluster  *pgcluster.Cluster
}

func openBenchDB(ctx context.Context, dir, url string) (_ *benchDB, err error) {
	db := &benchDB{url: url}
	defer func() {
		if err != nil {
			db.close()
		}
	}()
	if url == "" {
		db.cluster, err = pgcluster.New(pgcluster.Config{Dir: filepath.Join(dir, "pg"), Trust: true, Settings: map[string]string{
			"shared_buffers": "512MB", "max_wal_size": "8GB", "checkpoint_timeout": "30min", "max_connections": "200",
		}})
		if err != nil {
			return nil, err
		}
		if err := db.cluster.Start(ctx); err != nil {
			return nil, err
		}
		if err := db.cluster.CreateDatabase(ctx, "aghali"); err != nil {
			return nil, err
		}
		db.url = db.cluster.URL("aghali")
	}
	if _, err := migrate(ctx, db.url, slog.New(slog.DiscardHandler)); err != nil {
		return nil, err
	}
	if db.pool, err = geo.OpenPool(ctx, db.url, 8); err != nil {
		return nil, err
	}
	err = db.pool.QueryRow(ctx, `SELECT 'fsync=' || current_setting('fsync') || ', synchronous_commit=' ||
		current_setting('synchronous_commit')`).Scan(&db.settings)
	return db, err
}

func (db *benchDB) close() {
	if db.pool != nil {
		db.pool.Close()
	}
	if db.cluster != nil {
		_ = db.cluster.Destroy(context.Background())
	}
}

// arrival is what the bench controllers saw of one controller channel's commands: when the
// first arrived, and how many did.
type arrival struct {
	at    time.Time
	count int                 // deliveries
	ids   map[string]struct{} // distinct commands among them (a resend repeats an id)
}

// arrivals collects arrivals per controller/valve key; safe for concurrent use.
type arrivals struct {
	mu sync.Mutex
	m  map[string]*arrival
}

func newArrivals(n int) *arrivals { return &arrivals{m: make(map[string]*arrival, n)} }

func (a *arrivals) add(key, id string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	x := a.m[key]
	if x == nil {
		x = &arrival{at: at, ids: map[string]struct{}{}}
		a.m[key] = x
	}
	x.count++
	x.ids[id] = struct{}{}
}

// of returns key's arrival (nil: nothing arrived).
func (a *arrivals) of(key string) *arrival {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[key]
}

// waitFor waits until n keys have had a command, or for timeout.
func (a *arrivals) waitFor(n int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		a.mu.Lock()
		got := len(a.m)
		a.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answerCommands starts the controllers' links, each subscribed to its commands: seen hears of
// every command (its controller/valve key and when it arrived), and the command is acknowledged
// as a controller does, so the server does not send it again. stop stops the links and waits for
// the acknowledgements under way.
func answerCommands(ctx context.Context, links []controllerLink, seen func(key string, c fieldnodes.Command, at time.Time)) (stop func(), err error) {
	var acks sync.WaitGroup
	var started []*mqttlink.Link
	stop = func() {
		for _, l := range started {
			l.Stop()
		}
		acks.Wait()
	}
	for _, l := range links {
		if err := l.link.Subscribe("aghali/controllers/"+l.uid+"/cmd", func(m mqttlink.Message) {
			at := time.Now()
			var c fieldnodes.Command
			_ = json.Unmarshal(m.Payload, &c)
			seen(fmt.Sprintf("%s/%d", l.uid, c.Valve), c, at)
			m.Ack()
			acks.Go(func() {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_ = l.link.Publish(actx, "aghali/controllers/"+l.uid+"/ack", 1, false, []byte(`{"id":"`+c.ID+`","status":"ok"}`))
			})
		}); err != nil {
			stop()
			return nil, err
		}
		if err := l.link.Start(ctx); err != nil {
			stop()
			return nil, fmt.Errorf("controller %s: %w", l.uid, err)
		}
		started = append(started, l.link)
	}
	return stop, nil
}

// pacedLoad publishes ing's node messages over conns connections at rate messages/s (none at
// rate 0) until ing.messages are out or stop is called, and returns once the load has reached
// its pace. stop ends it and returns the first publish error; calling it again is harmless.
func (ing *ingestBench) pacedLoad(ctx context.Context, conns int, rate float64) (stop func() error, err error) {
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var failed atomic.Value
	var pubs []*loadgen.Publisher
	var once sync.Once
	stop = func() error {
		once.Do(func() {
			cancel()
			wg.Wait()
			for _, p := range pubs {
				p.Close()
			}
		})
		err, _ := failed.Load().(error)
		return err
	}
	if rate <= 0 {
		return stop, nil
	}
	for i := range conns {
		p, err := loadgen.Dial(ctx, loadgen.Config{URL: ing.brokerURL, ClientID: fmt.Sprintf("%s-%d", ing.pubUser, i),
			Username: ing.pubUser, Password: ing.pubPass, Window: ing.window, RetryInterval: 50 * time.Millisecond})
		if err != nil {
			_ = stop()
			return nil, fmt.Errorf("ingest publisher %d: %w", i, err)
		}
		pubs = append(pubs, p)
		wg.Go(func() {
			start := time.Now()
			var buf []byte
			for k := i; k < ing.messages && pctx.Err() == nil; k += conns {
				if d := time.Until(start.Add(time.Duration(float64(k) / rate * float64(time.Second)))); d > 0 {
					time.Sleep(d)
				}
				buf = ing.payload(buf[:0], k)
				if err := p.Publish(pctx, "aghali/nodes/"+ing.uid(k%ing.nodes)+"/up", append([]byte(nil), buf...)); err != nil {
					if pctx.Err() == nil {
						failed.Store(err)
					}
					return
				}
			}
		})
	}
	time.Sleep(2 * time.Second) // let the ingest reach its pace
	return stop, nil
}
