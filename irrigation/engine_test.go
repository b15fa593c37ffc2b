package irrigation_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation"
)

// node registers a field node in zone (0: none) and returns its id.
func (f *fixture) node(zoneID int64, mods ...func(*fieldnodes.Node)) int64 {
	f.t.Helper()
	f.n++
	n := fieldnodes.Node{UID: fmt.Sprintf("node-%d", f.n), FarmID: f.farm}
	if zoneID != 0 {
		n.ZoneID = &zoneID
	}
	for _, m := range mods {
		m(&n)
	}
	var id int64
	if err := f.db.QueryRow(f.ctx, `INSERT INTO nodes (uid, farm_id, zone_id, depth_m, height_m) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		n.UID, n.FarmID, n.ZoneID, n.DepthM, n.HeightM).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// readings stores values of metric for node through fieldnodes, one a minute ending now.
func (f *fixture) readings(node int64, metric string, values ...float64) {
	f.t.Helper()
	now := f.clock.Now()
	rs := make([]fieldnodes.Reading, len(values))
	for i, v := range values {
		rs[i] = fieldnodes.Reading{NodeID: node, Metric: metric, TS: now.Add(-time.Duration(len(values)-1-i) * time.Minute), Value: v}
	}
	f.insert(rs...)
}

func (f *fixture) insert(rs ...fieldnodes.Reading) {
	f.t.Helper()
	if _, err := f.nodeStore().InsertReadings(f.ctx, rs); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) engine() *irrigation.Engine {
	f.t.Helper()
	e, err := irrigation.NewEngine(f.store, f.nodeStore(), irrigation.EngineConfig{Interval: time.Hour})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// rule stores a rule of zoneID: by default the threshold rule "mean soil_vwc over 1 h below
// 0.18 waters 20 min, cooldown 3 h".
func (f *fixture) rule(zoneID int64, mods ...func(*irrigation.Rule)) irrigation.Rule {
	f.t.Helper()
	r := irrigation.Rule{ZoneID: &zoneID, Name: "Dry soil", Condition: `mean("soil_vwc", "1h") < 0.18`,
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

func (f *fixture) decisions(origin string) []irrigation.Decision {
	f.t.Helper()
	ds, err := f.store.Decisions(f.ctx, irrigation.DecisionFilter{FarmID: f.farm, Origin: origin})
	if err != nil {
		f.t.Fatal(err)
	}
	return ds
}

func (f *fixture) evaluate(e *irrigation.Engine, want int) {
	f.t.Helper()
	n, err := e.EvaluateAll(f.ctx)
	if err != nil || n != want {
		f.t.Fatalf("evaluate at %s: acted %d, %v; want %d", f.clock.Now().Format(time.TimeOnly), n, err, want)
	}
}

func TestRuleFiresOnDrySoilAndRespectsCooldown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, v := f.zoneWithValve()
	node := f.node(z.ID)
	r := f.rule(z.ID)
	if r.Action != "irrigate" || r.FarmID != f.farm || r.Severity != "warning" {
		t.Fatalf("rule defaults: %+v", r)
	}
	e := f.engine()
	if err := e.Start(f.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)

	f.readings(node, "soil_vwc", 0.150, 0.152, 0.154)
	e.ReadingsCommitted(f.ctx, []int64{node}, time.Time{})
	eventually(t, "the rule to start a run", func() bool { return len(f.runsOf(irrigation.OriginRule)) == 1 })
	run := f.runsOf(irrigation.OriginRule)[0]
	if run.ValveID != v.ID || run.DurationS != 1200 || run.OriginID == nil || *run.OriginID != r.ID {
		t.Fatalf("run = %+v", run)
	}
	want := `rule "Dry soil": mean("soil_vwc", "1h") < 0.18 holds: mean("soil_vwc", "1h") = 0.152 (3 readings); water 20m`
	if run.Reason != want {
		t.Fatalf("reason %q\nwant   %q", run.Reason, want)
	}
	fired, err := f.store.Rule(f.ctx, r.ID)
	if err != nil || fired.LastFiredAt == nil || !fired.LastFiredAt.Equal(t0) {
		t.Fatalf("last_fired_at = %v, %v", fired.LastFiredAt, err)
	}
	ds := f.decisions(irrigation.OriginRule)
	if len(ds) != 1 || ds[0].Action != irrigation.DecisionIrrigate || ds[0].RunID == nil || *ds[0].RunID != run.ID ||
		ds[0].DurationS != 1200 || ds[0].Facts[`mean("soil_vwc", "1h")`] != 0.152 ||
		ds[0].Facts[irrigation.FactReadingsCommittedAt] != t0.Format(time.RFC3339Nano) {
		t.Fatalf("decisions = %+v", ds)
	}
	if _, err := f.store.StopRun(f.ctx, run.ID, nil, "test"); err != nil {
		t.Fatal(err)
	}

	// Still dry two hours later, but inside the 3 h cooldown: nothing.
	f.clock.Advance(2 * time.Hour)
	f.readings(node, "soil_vwc", 0.14)
	f.evaluate(e, 0)
	// After it, the rule fires again.
	f.clock.Advance(61 * time.Minute)
	f.readings(node, "soil_vwc", 0.13)
	f.evaluate(e, 1)
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
	// The busy zone's rule fires once the valve is free.
	f.stopLiveRuns()
	f.evaluate(e, 1)
}

func TestRuleOnAZoneWithoutValveRaisesAnAlert(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.zone()
	node := f.node(z.ID)
	f.rule(z.ID)
	f.readings(node, "soil_vwc", 0.1)
	e := f.engine()
	f.evaluate(e, 0)
	a, ok := f.alert(irrigation.AlertZoneWithoutValve, fmt.Sprintf("zone:%d", z.ID))
	if !ok || !strings.Contains(a.Message, `mean("soil_vwc", "1h") = 0.1`) {
		t.Fatalf("alert = %+v, %v", a, ok)
	}
	// No water, so no cooldown: once the zone has a valve the rule fires and the alert is
	// resolved.
	f.valve(f.controller("ctl-late"), 1, z.ID)
	f.evaluate(e, 1)
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
	f.rule(0, func(r *irrigation.Rule) { // the same, farm-wide
		r.ZoneID, r.FarmID, r.Name = nil, f.farm, "Dry soil, every zone"
	})
	f.readings(node, "soil_vwc", 0.1)
	e1 := f.engine()
	e2, err := irrigation.NewEngine(f.newStore(), f.nodeStore(), irrigation.EngineConfig{})
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
	if got := len(f.decisions(irrigation.OriginRule)); got != 1 {
		t.Fatalf("%d decisions, want 1", got)
	}
}

func TestRuleCRUD(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.zone()
	r := f.rule(z.ID)
	for field, mod := range map[string]func(*irrigation.Rule){
		"duration_s": func(r *irrigation.Rule) { r.DurationS = 0 },
		"depth_mm":   func(r *irrigation.Rule) { r.DepthMM = 10 },
		"action":     func(r *irrigation.Rule) { r.Action = "flood" },
		"severity":   func(r *irrigation.Rule) { r.Severity = "panic" },
		"cooldown_s": func(r *irrigation.Rule) { r.CooldownS = -1 },
		"hold_s":     func(r *irrigation.Rule) { r.HoldS = -1 },
		"priority":   func(r *irrigation.Rule) { r.Priority = 5000 },
		"windows":    func(r *irrigation.Rule) { r.Windows = []irrigation.RuleWindow{{From: "25:00", To: "06:00"}} },
		"name":       func(r *irrigation.Rule) { r.Name = "" },
		"zone_id":    func(r *irrigation.Rule) { r.ZoneID = ptr(int64(999999)) },
	} {
		bad := r
		mod(&bad)
		if _, err := f.store.CreateRule(f.ctx, bad); !isValidation(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	// An expression that does not compile is refused with where.
	bad := r
	bad.Condition = "mean(\"soil_vwc\", \"1h\") < 0.18 &&\n  rain_24 < 2"
	_, err := f.store.CreateRule(f.ctx, bad)
	var ee *irrigation.ExpressionError
	if !errors.As(err, &ee) || ee.Field != "condition" || ee.Line != 2 || ee.Column != 3 || !strings.Contains(ee.Problem, `"rain_24"`) {
		t.Fatalf("bad condition: %v", err)
	}
	bad = r
	bad.ResetCondition = `mean("soil_vwc") > 0.25`
	if _, err := f.store.CreateRule(f.ctx, bad); !errors.As(err, &ee) || ee.Field != "reset_condition" || ee.Column != 1 {
		t.Fatalf("bad reset condition: %v", err)
	}

	r.Condition = `mean("soil_vwc", "1h") < 0.2`
	r.Enabled = false
	r.Windows = []irrigation.RuleWindow{{From: "05:00", To: "09:00", Days: []string{"Monday", "thu"}}}
	got, err := f.store.UpdateRule(f.ctx, r)
	if err != nil || got.Condition != r.Condition || got.Enabled || len(got.Windows) != 1 ||
		strings.Join(got.Windows[0].Days, ",") != "mon,thu" || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("update: %+v, %v", got, err)
	}
	list, err := f.store.Rules(f.ctx, z.ID)
	if err != nil || len(list) != 1 {
		t.Fatalf("Rules = %v, %v", list, err)
	}
	farmWide := f.rule(0, func(r *irrigation.Rule) { r.ZoneID, r.FarmID = nil, f.farm })
	all, err := f.store.FarmRules(f.ctx, f.farm)
	if err != nil || len(all) != 2 || all[0].ID != farmWide.ID {
		t.Fatalf("FarmRules = %v, %v", all, err)
	}
	if err := f.store.DeleteRule(f.ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Rule(f.ctx, r.ID); !errors.Is(err, irrigation.ErrNotFound) {
		t.Fatalf("deleted rule: %v", err)
	}
}

// A condition that must hold for 30 min, with hysteresis: dry below 0.18, wet again above 0.25.
func TestRuleHoldAndHysteresis(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	node := f.node(z.ID)
	f.rule(z.ID, func(r *irrigation.Rule) {
		r.Condition = `last("soil_vwc", "1h") < 0.18`
		r.ResetCondition = `last("soil_vwc", "1h") > 0.25`
		r.HoldS, r.CooldownS, r.DurationS = 1800, 0, 600
	})
	e := f.engine()
	step := func(vwc float64, want int) {
		t.Helper()
		f.clock.Advance(10 * time.Minute)
		f.readings(node, "soil_vwc", vwc)
		f.evaluate(e, want)
		f.stopLiveRuns()
	}
	step(0.15, 0) // starts holding
	step(0.15, 0) // 10 min
	step(0.19, 0) // a wet spell: the hold restarts
	step(0.15, 0) // 0 min
	step(0.15, 0) // 10
	step(0.15, 0) // 20
	step(0.15, 1) // 30: fires
	step(0.14, 0) // still dry, no cooldown, but disarmed
	step(0.22, 0) // between the thresholds: still disarmed
	step(0.16, 0)
	step(0.27, 0) // wet: re-armed
	step(0.15, 0) // dry again: holding starts
	step(0.15, 0)
	step(0.15, 0)
	step(0.15, 1)
	if got := len(f.runsOf(irrigation.OriginRule)); got != 2 {
		t.Fatalf("%d runs, want 2", got)
	}
}

// A skip rule vetoes the irrigation of rules of lower priority, and each veto is recorded once.
func TestSkipRuleVetoes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	probe, gauge := f.node(z.ID), f.node(0)
	water := f.rule(z.ID, func(r *irrigation.Rule) { r.CooldownS = 0 })
	skip := f.rule(z.ID, func(r *irrigation.Rule) {
		r.Name, r.Action, r.DurationS, r.Priority = "Raining", "skip", 0, 10
		r.Condition = `sum("rain_mm", "6h", "farm") >= 2`
	})
	urgent := f.rule(z.ID, func(r *irrigation.Rule) {
		r.Name, r.Priority, r.DurationS = "Wilting", 20, 300
		r.Condition = `mean("soil_vwc", "1h") < 0.08`
	})
	f.readings(probe, "soil_vwc", 0.12)
	f.readings(gauge, "rain_mm", 1.5, 1.0)
	e := f.engine()
	f.evaluate(e, 1) // the skip acts; the dry-soil rule is vetoed
	f.clock.Advance(5 * time.Minute)
	f.evaluate(e, 0) // vetoed again: not recorded again
	ds := f.decisions(irrigation.OriginRule)
	if len(ds) != 2 || ds[0].Action != irrigation.DecisionSkip || *ds[0].OriginID != water.ID ||
		!strings.Contains(ds[0].Reason, `vetoed by skip rule "Raining"`) || ds[1].Action != irrigation.DecisionSkip ||
		*ds[1].OriginID != skip.ID || ds[1].Facts[`sum("rain_mm", "6h", "farm")`] != 2.5 {
		t.Fatalf("decisions = %+v", ds)
	}
	if len(f.runsOf(irrigation.OriginRule)) != 0 {
		t.Fatal("watered while it rained")
	}
	// A rule of higher priority than the skip still waters.
	f.readings(probe, "soil_vwc", 0.02) // mean of the hour 0.07
	f.evaluate(e, 1)
	runs := f.runsOf(irrigation.OriginRule)
	if len(runs) != 1 || *runs[0].OriginID != urgent.ID {
		t.Fatalf("runs = %+v", runs)
	}
	f.stopLiveRuns()
	// Seven hours on the rain has left the window: the skip releases and the dry rule waters.
	f.clock.Advance(7 * time.Hour)
	f.readings(probe, "soil_vwc", 0.12)
	f.evaluate(e, 1)
	runs = f.runsOf(irrigation.OriginRule)
	if len(runs) != 2 || *runs[0].OriginID != water.ID {
		t.Fatalf("runs = %+v", runs)
	}
	if ds := f.decisions(irrigation.OriginRule); ds[1].Action != irrigation.DecisionResolve || *ds[1].OriginID != skip.ID {
		t.Fatalf("the skip's release is not recorded: %+v", ds[:2])
	}
}

func TestAlertRuleRaisesAndResolves(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	station := f.node(0)
	r := f.rule(0, func(r *irrigation.Rule) {
		r.ZoneID, r.FarmID = nil, f.farm
		r.Name, r.Action, r.DurationS, r.Severity = "Frost", "alert", 0, "critical"
		r.Message = "Frost risk: protect the seedlings"
		r.Condition = `min("air_temp_c", "1h", "farm") <= 1`
	})
	e := f.engine()
	f.readings(station, "air_temp_c", 3, 1.5, 0.5)
	f.evaluate(e, 1)
	subject := fmt.Sprintf("rule:%d:zone:%d", r.ID, z.ID)
	a, ok := f.alert(irrigation.AlertRule, subject)
	if !ok || a.Severity != "critical" || !strings.HasPrefix(a.Message, "Frost risk: protect the seedlings: ") ||
		!strings.Contains(a.Message, `min("air_temp_c", "1h", "farm") = 0.5 (3 readings)`) {
		t.Fatalf("alert = %+v, %v", a, ok)
	}
	f.clock.Advance(2 * time.Hour)
	f.readings(station, "air_temp_c", 6)
	f.evaluate(e, 0)
	if _, ok := f.alert(irrigation.AlertRule, subject); ok {
		t.Fatal("the alert stays open after the frost")
	}
	if len(f.runsOf(irrigation.OriginRule)) != 0 {
		t.Fatal("an alert rule watered")
	}
}

// A depth becomes a runtime through the zone's application rate and efficiency; a zone without
// a rate cannot take a depth and says so.
func TestDepthRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve(func(z *irrigation.Zone) {
		z.ApplicationRateMMH, z.Efficiency = ptr(4.0), ptr(0.9)
	})
	bare, _, _ := f.zoneWithValve()
	n1, n2 := f.node(z.ID), f.node(bare.ID)
	for _, id := range []int64{z.ID, bare.ID} {
		f.rule(id, func(r *irrigation.Rule) { r.DurationS, r.DepthMM = 0, 12 })
	}
	f.readings(n1, "soil_vwc", 0.1)
	f.readings(n2, "soil_vwc", 0.1)
	e := f.engine()
	f.evaluate(e, 1)
	runs := f.runsOf(irrigation.OriginRule)
	// 12 mm net / 0.9 = 13.33 mm gross at 4 mm/h = 3.333 h = 12000 s, capped at max runtime 3600 s.
	if len(runs) != 1 || runs[0].ZoneID != z.ID || runs[0].DurationS != 3600 ||
		!strings.Contains(runs[0].Reason, "water 12 mm (3h20m at 4 mm/h, efficiency 0.9)") ||
		!strings.Contains(runs[0].Reason, "capped from 12000 s") {
		t.Fatalf("runs = %+v", runs)
	}
	a, ok := f.alert(irrigation.AlertCannotWater, fmt.Sprintf("zone:%d", bare.ID))
	if !ok || !strings.Contains(a.Message, "no application rate") {
		t.Fatalf("alert = %+v, %v", a, ok)
	}
}

// Outside its windows a rule waits; at the window it acts.
func TestRuleWindows(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku") // t0 is 09:00 in Baku (UTC+4)
	z, _, _ := f.zoneWithValve()
	node := f.node(z.ID)
	f.rule(z.ID, func(r *irrigation.Rule) {
		r.Windows = []irrigation.RuleWindow{{From: "20:00", To: "06:00"}}
		r.Condition = `mean("soil_vwc", "1d") < 0.18 && weekday != "sun"`
	})
	f.readings(node, "soil_vwc", 0.1)
	e := f.engine()
	f.evaluate(e, 0)
	f.clock.Advance(10*time.Hour + 59*time.Minute) // 19:59
	f.evaluate(e, 0)
	f.clock.Advance(time.Minute) // 20:00
	f.evaluate(e, 1)
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve(func(z *irrigation.Zone) { z.ApplicationRateMMH = ptr(6.0) })
	node := f.node(z.ID)
	f.readings(node, "soil_vwc", 0.15, 0.16)
	e := f.engine()
	r := irrigation.Rule{ZoneID: &z.ID, Name: "Try", Condition: `mean("soil_vwc", "1h") < 0.18 && hour >= 5 && hours_since_irrigation > 24`,
		DurationS: 900, Enabled: true}
	res, err := e.DryRun(f.ctx, r)
	if err != nil || len(res) != 1 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	d := res[0]
	if !d.Known || !d.Holds || !d.Act || d.DurationS != 900 || d.DepthMM == nil || *d.DepthMM != 1.5 {
		t.Fatalf("dry run = %+v", d)
	}
	names := map[string]string{}
	for _, u := range d.Facts {
		names[u.Name] = u.Value.Describe()
	}
	if names[`mean("soil_vwc", "1h")`] != "0.155 (2 readings)" || names["hour"] != "9" ||
		names["hours_since_irrigation"] != "100000 (never watered)" {
		t.Fatalf("facts = %v", names)
	}
	if len(f.runsOf(irrigation.OriginRule)) != 0 || len(f.decisions(irrigation.OriginRule)) != 0 {
		t.Fatal("a dry run acted")
	}
	r.Condition = `mean("soil_vwc", "1h") < 0.18 &&`
	if _, err := e.DryRun(f.ctx, r); err == nil {
		t.Fatal("a dry run of a broken condition succeeded")
	}
}

// A farm's last is the newest reading of any of its nodes, whichever node it came from.
func TestFarmLastIsTheNewestReadingOfAnyNode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	a, b := f.node(0), f.node(z.ID)
	r := f.rule(0, func(r *irrigation.Rule) {
		r.ZoneID, r.FarmID = nil, f.farm
		r.Name, r.Action, r.DurationS, r.Severity = "Heat", "alert", 0, "warning"
		r.Message = "Heat"
		r.Condition = `last("air_temp_c", "1h", "farm") > 30`
	})
	e := f.engine()
	now := f.clock.Now()
	f.insert(fieldnodes.Reading{NodeID: a, Metric: "air_temp_c", TS: now.Add(-2 * time.Minute), Value: 35},
		fieldnodes.Reading{NodeID: b, Metric: "air_temp_c", TS: now.Add(-time.Minute), Value: 28})
	f.evaluate(e, 0) // the newest is b's 28, though a's older 35 is larger
	subject := fmt.Sprintf("rule:%d:zone:%d", r.ID, z.ID)
	if a, ok := f.alert(irrigation.AlertRule, subject); ok {
		t.Fatalf("alert on an older reading: %+v", a)
	}
	f.insert(fieldnodes.Reading{NodeID: a, Metric: "air_temp_c", TS: now, Value: 33})
	f.evaluate(e, 1)
	if al, ok := f.alert(irrigation.AlertRule, subject); !ok || !strings.Contains(al.Message, `last("air_temp_c", "1h", "farm") = 33`) {
		t.Fatalf("alert = %+v, %v; want one on a's newest 33", al, ok)
	}
}

// A trend and the farm's aggregates are read from the readings, like a zone's mean: a reading
// counts at its commit, before the nodes' latest values are written behind it (here: not at
// all). The trend is the slope within each node: a wetter probe that has only just started
// reporting does not tilt it. A reading stamped hours ahead (a fast clock) does not count yet.
func TestTrendAndFarmAggregatesReadTheReadings(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	a, b, late, station := f.node(z.ID), f.node(z.ID), f.node(z.ID), f.node(0)
	f.rule(z.ID, func(r *irrigation.Rule) {
		r.Name = "Drying in the heat"
		r.Condition = `trend("soil_vwc", "1h") < -0.5 && mean("air_temp_c", "1h", "farm") > 30`
	})
	f.readings(a, "soil_vwc", 0.30, 0.28, 0.26) // -0.02 a minute on both nodes
	f.readings(b, "soil_vwc", 0.25, 0.23, 0.21)
	f.readings(late, "soil_vwc", 0.45)
	f.readings(station, "air_temp_c", 31, 33)
	f.insert(fieldnodes.Reading{NodeID: station, Metric: "air_temp_c", TS: f.clock.Now().Add(2 * time.Hour), Value: 90})
	if _, err := f.db.Exec(f.ctx, `DELETE FROM node_latest`); err != nil {
		t.Fatal(err)
	}
	e := f.engine()
	if n, err := e.EvaluateNodes(f.ctx, []int64{a}); err != nil || n != 1 {
		t.Fatalf("acted %d, %v; want 1", n, err)
	}
	ds := f.decisions(irrigation.OriginRule)
	if len(ds) != 1 {
		t.Fatalf("decisions = %+v", ds)
	}
	if got := ds[0].Facts[`trend("soil_vwc", "1h")`]; got == nil || math.Abs(got.(float64)+1.2) > 1e-9 {
		t.Errorf("trend = %v, want -1.2 an hour; reason %q", got, ds[0].Reason)
	}
	if got := ds[0].Facts[`mean("air_temp_c", "1h", "farm")`]; got != 32.0 {
		t.Errorf("farm mean = %v, want 32; reason %q", got, ds[0].Reason)
	}

	// No trend from readings all taken at one time; no farm value from a metric no node reports.
	z2, _, _ := f.zoneWithValve()
	f.readings(f.node(z2.ID), "soil_vwc", 0.2)
	res, err := e.DryRun(f.ctx, irrigation.Rule{ZoneID: &z2.ID, Name: "Try", DurationS: 900, Enabled: true,
		Condition: `trend("soil_vwc", "1h") < 0 || max("wind_speed_ms", "1h", "farm") > 10 || count("rain_mm", "1h", "farm") > 0`})
	if err != nil || len(res) != 1 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	names := map[string]string{}
	for _, u := range res[0].Facts {
		names[u.Name] = u.Value.Describe()
	}
	if names[`trend("soil_vwc", "1h")`] != "no data (a trend needs readings at two times at least)" ||
		names[`max("wind_speed_ms", "1h", "farm")`] != "no data (no node of the farm reports wind_speed_ms)" ||
		names[`count("rain_mm", "1h", "farm")`] != "0" {
		t.Errorf("facts = %v", names)
	}
}

// failingPassReads reads zone aggregates from the database but fails the first read that
// covers more than one zone (a pass-wide read), as a dropped connection would.
type failingPassReads struct {
	*fieldnodes.Store
	mu     sync.Mutex
	failed bool
	single int // reads of one zone
}

func (r *failingPassReads) ZoneAggregates(ctx context.Context, zones []int64, metric, agg string, since, until time.Time) (map[int64]fieldnodes.Aggregate, error) {
	r.mu.Lock()
	if len(zones) > 1 && !r.failed {
		r.failed = true
		r.mu.Unlock()
		return nil, errors.New("connection reset by peer")
	}
	if len(zones) == 1 {
		r.single++
	}
	r.mu.Unlock()
	return r.Store.ZoneAggregates(ctx, zones, metric, agg, since, until)
}

// A pass's zone aggregates are read for all its zones at once; when that read fails, each zone
// reads its own, and the pass decides as it would have.
func TestAFailedPassWideReadIsRetriedPerZone(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	var nodes []int64
	for range 3 {
		z, _, _ := f.zoneWithValve()
		f.rule(z.ID)
		node := f.node(z.ID)
		f.readings(node, "soil_vwc", 0.12)
		nodes = append(nodes, node)
	}
	reads := &failingPassReads{Store: f.nodeStore()}
	e, err := irrigation.NewEngine(f.store, reads, irrigation.EngineConfig{Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.EvaluateNodes(f.ctx, nodes)
	if err != nil || n != 3 {
		t.Fatalf("%d zones acted, %v; want 3", n, err)
	}
	if !reads.failed || reads.single != 3 {
		t.Errorf("pass-wide read failed: %v; zones read alone: %d, want 3", reads.failed, reads.single)
	}
	if runs := f.runsOf(irrigation.OriginRule); len(runs) != 3 {
		t.Errorf("%d runs, want 3", len(runs))
	}
}
