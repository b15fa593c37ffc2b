package irrigation_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/irrigation"
)

// node registers a field node in zone and returns its id.
func (f *fixture) node(zoneID int64) int64 {
	f.t.Helper()
	f.n++
	var id int64
	if err := f.db.QueryRow(f.ctx, `INSERT INTO nodes (uid, farm_id, zone_id) VALUES ($1, $2, $3) RETURNING id`,
		fmt.Sprintf("node-%d", f.n), f.farm, zoneID).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// readings stores values of metric for node, one a minute ending now.
func (f *fixture) readings(node int64, metric string, values ...float64) {
	f.t.Helper()
	now := f.clock.Now()
	for i, v := range values {
		ts := now.Add(-time.Duration(len(values)-1-i) * time.Minute)
		if _, err := f.db.Exec(f.ctx, `INSERT INTO readings (node_id, metric_id, ts, value)
			SELECT $1, id, $3, $4 FROM metrics WHERE name = $2`, node, metric, ts, v); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) engine() *irrigation.Engine {
	f.t.Helper()
	e, err := irrigation.NewEngine(f.store, sqlReadings{f.db}, irrigation.EngineConfig{Interval: time.Hour})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func (f *fixture) rule(zoneID int64, mods ...func(*irrigation.Rule)) irrigation.Rule {
	f.t.Helper()
	r := irrigation.Rule{ZoneID: zoneID, Name: "Dry soil", Metric: "soil_vwc", Op: "<", Threshold: 0.18, WindowS: 3600,
		DurationS: 1200, CooldownS: 3 * 3600, Enabled: true}
	for _, m := range mods {
		m(&r)
	}
	r, err := f.store.CreateRule(f.ctx, r)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) runsOf(origin string) []irrigation.Run {
	f.t.Helper()
	runs, err := f.store.Runs(f.ctx, f.farm, false, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []irrigation.Run
	for _, r := range runs {
		if r.Origin == origin {
			out = append(out, r)
		}
	}
	return out
}

func TestRuleFiresOnDrySoilAndRespectsCooldown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, v := f.zoneWithValve()
	node := f.node(z.ID)
	r := f.rule(z.ID)
	if r.Aggregate != "mean" || r.FarmID != f.farm {
		t.Fatalf("rule defaults: %+v", r)
	}
	e := f.engine()
	if err := e.Start(f.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)

	f.readings(node, "soil_vwc", 0.150, 0.152, 0.154)
	e.ReadingsCommitted(f.ctx, []int64{node})
	eventually(t, "the rule to start a run", func() bool { return len(f.runsOf(irrigation.OriginRule)) == 1 })
	run := f.runsOf(irrigation.OriginRule)[0]
	if run.ValveID != v.ID || run.DurationS != 1200 || run.OriginID == nil || *run.OriginID != r.ID {
		t.Fatalf("run = %+v", run)
	}
	if !strings.Contains(run.Reason, "mean soil_vwc 0.152 < 0.18 over 1h (3 readings)") {
		t.Fatalf("reason %q", run.Reason)
	}
	fired, err := f.store.Rule(f.ctx, r.ID)
	if err != nil || fired.LastFiredAt == nil || !fired.LastFiredAt.Equal(t0) {
		t.Fatalf("last_fired_at = %v, %v", fired.LastFiredAt, err)
	}
	if _, err := f.store.StopRun(f.ctx, run.ID, nil, "test"); err != nil {
		t.Fatal(err)
	}

	// Still dry two hours later, but inside the 3 h cooldown: nothing.
	f.clock.Advance(2 * time.Hour)
	f.readings(node, "soil_vwc", 0.14)
	if n, err := e.EvaluateAll(f.ctx); err != nil || n != 0 {
		t.Fatalf("inside cooldown: fired %d, %v", n, err)
	}
	// After it, the rule fires again.
	f.clock.Advance(61 * time.Minute)
	f.readings(node, "soil_vwc", 0.13)
	if n, err := e.EvaluateAll(f.ctx); err != nil || n != 1 {
		t.Fatalf("after cooldown: fired %d, %v", n, err)
	}
	if got := len(f.runsOf(irrigation.OriginRule)); got != 2 {
		t.Fatalf("%d rule runs, want 2", got)
	}
}

func TestRuleHoldsBackWithoutCause(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	wet, _, _ := f.zoneWithValve()
	stale, _, _ := f.zoneWithValve()
	busy, _, busyValve := f.zoneWithValve()
	nodeWet, nodeStale, nodeBusy := f.node(wet.ID), f.node(stale.ID), f.node(busy.ID)
	f.rule(wet.ID)
	f.rule(stale.ID)
	f.rule(busy.ID, func(r *irrigation.Rule) { r.CooldownS = 0 })
	f.rule(busy.ID, func(r *irrigation.Rule) { r.Name = "Disabled"; r.Enabled = false; r.CooldownS = 0 })
	f.readings(nodeWet, "soil_vwc", 0.30, 0.31)
	f.readings(nodeStale, "soil_vwc", 0.05) // two hours old by the time we look
	f.readings(nodeBusy, "soil_vwc", 0.10)
	f.clock.Advance(2 * time.Hour)
	f.readings(nodeBusy, "soil_vwc", 0.10)
	f.startRun(busyValve.ID, 600) // a person is already watering it

	e := f.engine()
	n, err := e.EvaluateNodes(f.ctx, []int64{nodeWet, nodeStale, nodeBusy})
	if err != nil {
		t.Fatalf("evaluate: %v (a busy valve is not an error)", err)
	}
	if n != 0 || len(f.runsOf(irrigation.OriginRule)) != 0 {
		t.Fatalf("fired %d: wet soil, no recent readings and a busy valve must all hold back", n)
	}
}

func TestRuleOnAZoneWithoutValveRaisesAnAlert(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.zone()
	node := f.node(z.ID)
	f.rule(z.ID)
	f.readings(node, "soil_vwc", 0.1)
	e := f.engine()
	if n, err := e.EvaluateAll(f.ctx); err != nil || n != 0 {
		t.Fatalf("fired %d, %v", n, err)
	}
	a, ok := f.alert(irrigation.AlertZoneWithoutValve, fmt.Sprintf("zone:%d", z.ID))
	if !ok || !strings.Contains(a.Message, "0.1 < 0.18") {
		t.Fatalf("alert = %+v, %v", a, ok)
	}
	// Once the zone has a valve the rule fires and the alert is resolved.
	f.valve(f.controller("ctl-late"), 1, z.ID)
	if n, err := e.EvaluateAll(f.ctx); err != nil || n != 1 {
		t.Fatalf("fired %d, %v", n, err)
	}
	if _, ok := f.alert(irrigation.AlertZoneWithoutValve, fmt.Sprintf("zone:%d", z.ID)); ok {
		t.Fatal("alert still open")
	}
}

func TestTwoEnginesFireARuleOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	node := f.node(z.ID)
	f.rule(z.ID)
	f.readings(node, "soil_vwc", 0.1)
	e1 := f.engine()
	e2, err := irrigation.NewEngine(f.newStore(), sqlReadings{f.db}, irrigation.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, e := range []*irrigation.Engine{e1, e2, e1, e2} {
		wg.Go(func() {
			if _, err := e.EvaluateAll(f.ctx); err != nil {
				t.Errorf("evaluate: %v", err)
			}
		})
	}
	wg.Wait()
	if got := len(f.runsOf(irrigation.OriginRule)); got != 1 {
		t.Fatalf("%d runs, want 1", got)
	}
}

func TestRuleCRUD(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.zone()
	r := f.rule(z.ID)
	for field, mod := range map[string]func(*irrigation.Rule){
		"metric":     func(r *irrigation.Rule) { r.Metric = "Soil!" },
		"op":         func(r *irrigation.Rule) { r.Op = "==" },
		"aggregate":  func(r *irrigation.Rule) { r.Aggregate = "median" },
		"duration_s": func(r *irrigation.Rule) { r.DurationS = 0 },
		"cooldown_s": func(r *irrigation.Rule) { r.CooldownS = -1 },
		"name":       func(r *irrigation.Rule) { r.Name = "" },
		"zone_id":    func(r *irrigation.Rule) { r.ZoneID = 999999 },
	} {
		bad := r
		mod(&bad)
		if _, err := f.store.CreateRule(f.ctx, bad); !isValidation(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	r.Threshold = 0.2
	r.Enabled = false
	got, err := f.store.UpdateRule(f.ctx, r)
	if err != nil || got.Threshold != 0.2 || got.Enabled {
		t.Fatalf("update: %+v, %v", got, err)
	}
	list, err := f.store.Rules(f.ctx, z.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("Rules = %v, %v", list, err)
	}
	if err := f.store.DeleteRule(f.ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Rule(f.ctx, r.ID); err == nil {
		t.Fatal("deleted rule still there")
	}
}
