package irrigation_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/migrations/pgtest"
)

// TestLongRunningPartsStopCleanly starts every long-running part, puts a run through them and
// stops them, then checks that no goroutine is left behind. It does not run in parallel: a
// goroutine-leak check needs the process to itself. (The other tests are parallel, so they
// wait until this one is done.)
func TestLongRunningPartsStopCleanly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	pool, err := geo.OpenPool(ctx, pgtest.NewDBURL(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	f := newFixtureOn(t, pool, "Europe/Berlin")
	z, c, v := f.zoneWithValve()
	node := f.node(z.ID)
	f.rule(z.ID)

	d := f.dispatcher(irrigation.DispatcherConfig{PollInterval: 10 * time.Millisecond})
	m, err := irrigation.NewRunMonitor(f.store, irrigation.RunMonitorConfig{Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The decider's parts as serve wires them: one leader for the periodic engine and the
	// scheduler, which also keeps ET0 and the water balances up to date.
	leader, err := irrigation.NewLeader(f.store, irrigation.LeaderConfig{Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := irrigation.NewDecider(f.store, f.nodeStore(), irrigation.DeciderConfig{
		Engine: irrigation.EngineConfig{Interval: 10 * time.Millisecond, Leader: leader}})
	if err != nil {
		t.Fatal(err)
	}
	e := dec.Engine
	sc, err := irrigation.NewScheduler(f.store, irrigation.SchedulerConfig{Interval: 10 * time.Millisecond, Leader: leader,
		Decider: dec, UpkeepInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	type part interface {
		Start(context.Context) error
		Stop()
	}
	parts := []part{leader, d, m, e, sc}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, p := range parts {
		if err := p.Start(runCtx); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Start(runCtx); err == nil {
		t.Error("a started dispatcher started again")
	}

	// A dry zone: the rule fires, the dispatcher sends the open, the controller acks it.
	f.readings(node, "soil_vwc", 0.12)
	e.ReadingsCommitted(ctx, []int64{node}, time.Time{})
	sent := f.sender.next(t)
	if sent.UID != c.UID || sent.Cmd.Action != "open" {
		t.Fatalf("sent %+v", sent)
	}
	h := irrigation.NewControllerHandler(f.store)
	ack(t, f, h, c.UID, sent.Cmd.ID, "ok")
	eventually(t, "the scheduler to lead", sc.IsLeader)
	got, err := f.store.Valve(ctx, v.ID)
	if err != nil || got.Run == nil || got.Run.State != irrigation.RunOpen {
		t.Fatalf("valve = %+v, %v", got, err)
	}

	for _, p := range parts {
		p.Stop()
		p.Stop() // twice is harmless
	}
	if sc.IsLeader() {
		t.Error("a stopped scheduler still leads")
	}
	// Stopped parts start again, and stop when their context ends.
	ctx2, cancel2 := context.WithCancel(ctx)
	for _, p := range parts {
		if err := p.Start(ctx2); err != nil {
			t.Fatal(err)
		}
	}
	cancel2()
	for _, p := range parts {
		p.Stop()
	}
}
