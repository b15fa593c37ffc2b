package irrigation_test

import (
	"testing"
	"time"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/irrigation/rule"
)

// TestRuleBookFollowsRulesAndZones: a pass for fresh readings works from the rule book the
// engine keeps, yet sees every change of the rules, zones and nodes committed before it, and
// reads the rules' memories afresh.
func TestRuleBookFollowsRulesAndZones(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z1, _, v1 := f.zoneWithValve()
	node := f.node(z1.ID)
	r := f.rule(z1.ID, func(r *irrigation.Rule) { r.CooldownS = 0 })
	e := f.engine()
	version := func() int64 {
		t.Helper()
		return int64(f.count(`SELECT version FROM irrigation_rule_book`))
	}
	pass := func(want int) {
		t.Helper()
		n, err := e.EvaluateNodes(f.ctx, []int64{node})
		if err != nil || n != want {
			t.Fatalf("pass: acted %d, %v; want %d", n, err, want)
		}
		if got, now := irrigation.RuleBookVersion(e), version(); got != now {
			t.Fatalf("the engine's rule book is at version %d, the database at %d", got, now)
		}
	}
	stop := func() {
		t.Helper()
		for _, run := range f.runsOf(irrigation.OriginRule) {
			if run.State == irrigation.RunStarting || run.State == irrigation.RunOpen {
				if _, err := f.store.StopRun(f.ctx, run.ID, nil, "test"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}

	f.readings(node, "soil_vwc", 0.150, 0.152, 0.154)
	pass(1)
	stop()
	before := irrigation.RuleBookVersion(e)

	// The condition tightened: the book is read again and the rule holds back.
	r.Condition = `mean("soil_vwc", "1h") < 0.10`
	if _, err := f.store.UpdateRule(f.ctx, r); err != nil {
		t.Fatal(err)
	}
	pass(0)
	if irrigation.RuleBookVersion(e) == before {
		t.Fatal("the rule book was not read again after the rule changed")
	}

	// The memories are not kept: with a cooldown, the rule rests after firing, until its memory
	// of the zone is cleared (here by hand, as another instance's write would).
	r.Condition, r.CooldownS = `mean("soil_vwc", "1h") < 0.18`, 3600
	if _, err := f.store.UpdateRule(f.ctx, r); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour) // past the cooldown of the first run
	f.readings(node, "soil_vwc", 0.150, 0.152, 0.154)
	pass(1)
	stop()
	pass(0)
	// Cleared by an evaluation that began after this pass gathered its facts: the pass leaves
	// the zone to that one, which judged newer facts.
	if _, err := f.db.Exec(f.ctx, `UPDATE rule_states SET last_fired_at = NULL, evaluated_at = $2 WHERE rule_id = $1`,
		r.ID, f.clock.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	pass(0)
	// A stamp far ahead (past the zone timeout) is a clock that disagrees, not a later
	// evaluation: not trusted.
	if _, err := f.db.Exec(f.ctx, `UPDATE rule_states SET evaluated_at = $2 WHERE rule_id = $1`,
		r.ID, f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	pass(1)
	stop()

	// Disabled: nothing.
	r.Enabled = false
	if _, err := f.store.UpdateRule(f.ctx, r); err != nil {
		t.Fatal(err)
	}
	pass(0)

	// The node moves into another zone, which has a rule of its own: that zone is watered.
	z2, _, v2 := f.zoneWithValve()
	f.rule(z2.ID)
	if _, err := f.db.Exec(f.ctx, `UPDATE nodes SET zone_id = $2 WHERE id = $1`, node, z2.ID); err != nil {
		t.Fatal(err)
	}
	pass(1)
	runs := f.runsOf(irrigation.OriginRule)
	if len(runs) != 4 || runs[0].ValveID != v2.ID { // newest first
		t.Fatalf("runs %+v: want the newest on valve %d (zone 1's is %d)", runs, v2.ID, v1.ID)
	}
}

// TestRuleBookVersionCountsWhatTheBookKeeps: the book's version moves once per transaction that
// changes rules, zones, farms' time zones, valves' zones or flows, or nodes' zones, and not
// with what changes all the time (readings, node upkeep, valve states).
func TestRuleBookVersionCountsWhatTheBookKeeps(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	f.node(z.ID)
	f.rule(z.ID)
	cases := []struct {
		what  string
		sql   []string
		moves bool
	}{
		{"a rule's condition", []string{`UPDATE rules SET condition = 'hour() < 6'`}, true},
		{"three nodes in zones, in one transaction", []string{
			`INSERT INTO nodes (uid, farm_id, zone_id) SELECT 'n-' || g, farm_id, id FROM zones, generate_series(1, 3) g LIMIT 3`}, true},
		{"a node in a zone, removed", []string{`DELETE FROM nodes WHERE uid = 'n-1'`}, true},
		{"a node's zone", []string{`UPDATE nodes SET zone_id = NULL WHERE zone_id IS NOT NULL`}, true},
		{"a zone's application rate", []string{`UPDATE zones SET application_rate_mm_h = 4`}, true},
		{"the farm's time zone", []string{`UPDATE farms SET timezone = 'Europe/Brussels'`}, true},
		{"a valve's flow", []string{`UPDATE valves SET nominal_flow_lpm = 12`}, true},
		{"a valve's flow, unchanged", []string{`UPDATE valves SET nominal_flow_lpm = 12`}, false},
		{"a valve's state", []string{`UPDATE valves SET state = 'open', state_at = now()`}, false},
		{"node upkeep", []string{`UPDATE nodes SET last_seen_at = now(), battery_v = 3.6`}, false},
		{"the farm's name, as the API saves it", []string{
			`UPDATE farms SET name = 'Other bank', timezone = timezone, location = location`}, false},
		{"the farm's location", []string{`UPDATE farms SET location = ST_SetSRID(ST_MakePoint(46.6, 39.1), 4326)`}, true},
		{"a node in no zone", []string{`INSERT INTO nodes (uid, farm_id) SELECT 'loose', id FROM farms`}, false},
		{"a node in no zone, removed", []string{`DELETE FROM nodes WHERE uid = 'loose'`}, false},
		{"a rule's memory", []string{`INSERT INTO rule_states (rule_id, zone_id) SELECT id, zone_id FROM rules`}, false},
		{"a transaction that is rolled back", []string{`BEGIN`, `UPDATE rules SET condition = 'hour() < 7'`, `ROLLBACK`}, false},
	}
	for _, c := range cases {
		before := f.count(`SELECT version FROM irrigation_rule_book`)
		conn, err := f.db.Acquire(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range c.sql {
			if _, err := conn.Exec(f.ctx, q); err != nil {
				t.Fatalf("%s: %s: %v", c.what, q, err)
			}
		}
		conn.Release()
		after := f.count(`SELECT version FROM irrigation_rule_book`)
		want := before
		if c.moves {
			want++
		}
		if after != want {
			t.Errorf("%s: version %d → %d, want %d", c.what, before, after, want)
		}
	}
}

// TestRuleBookThatCannotBeRead: a row the book cannot hold (a farm's unknown time zone, written
// around the API) does not stop the passes of other farms: they read their own zones' rules.
func TestRuleBookThatCannotBeRead(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	node := f.node(z.ID)
	f.rule(z.ID)
	farm, err := geo.NewStore(f.db).CreateFarm(f.ctx, geo.Farm{OrgID: f.org, Name: "Other bank", Timezone: "Asia/Baku"})
	if err != nil {
		t.Fatal(err)
	}
	other := *f
	other.farm = farm.ID
	oz, _, _ := other.zoneWithValve()
	other.rule(oz.ID)
	if _, err := f.db.Exec(f.ctx, `UPDATE farms SET timezone = 'Mars/Olympus_Mons' WHERE id = $1`, farm.ID); err != nil {
		t.Fatal(err)
	}
	e := f.engine()
	f.readings(node, "soil_vwc", 0.150, 0.152, 0.154)
	for i, want := range []int{1, 0} { // the second within the cooldown
		if n, err := e.EvaluateNodes(f.ctx, []int64{node}); err != nil || n != want {
			t.Fatalf("pass %d: acted %d, %v; want %d", i+1, n, err, want)
		}
		if v := irrigation.RuleBookVersion(e); v != 0 {
			t.Fatalf("pass %d: a rule book at version %d", i+1, v)
		}
	}
}

// TestAMemoryFromALaterEvaluationStays: an evaluation does not overwrite a rule's memory of a
// zone written by one that began after it (two passes evaluating the same zone, the older one
// last), unless the stamp is further ahead than clocks can be trusted.
func TestAMemoryFromALaterEvaluationStays(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	r := f.rule(z.ID)
	now := f.clock.Now()
	armed := rule.State{Armed: true}
	holding := rule.State{Armed: true, HoldingSince: &now}
	memory := func() (holds bool, at time.Time) {
		t.Helper()
		var since *time.Time
		if err := f.db.QueryRow(f.ctx, `SELECT holding_since, evaluated_at FROM rule_states WHERE rule_id = $1 AND zone_id = $2`,
			r.ID, z.ID).Scan(&since, &at); err != nil {
			t.Fatal(err)
		}
		return since != nil, at
	}
	save := func(st rule.State, at time.Time) {
		t.Helper()
		if err := irrigation.SaveRuleState(f.store, r.ID, z.ID, armed, st, at); err != nil {
			t.Fatal(err)
		}
	}
	save(armed, now.Add(5*time.Second)) // the later evaluation: the condition does not hold
	save(holding, now)                  // the older one, last: it saw the condition hold
	if holds, at := memory(); holds || !at.Equal(now.Add(5*time.Second)) {
		t.Fatalf("the older evaluation overwrote the later one's memory (holding %v, evaluated at %v)", holds, at)
	}
	save(holding, now.Add(6*time.Second)) // a still later one
	if holds, _ := memory(); !holds {
		t.Fatal("a later evaluation's memory was not written")
	}
	// A stamp an hour ahead is a clock that disagrees: not trusted.
	if _, err := f.db.Exec(f.ctx, `UPDATE rule_states SET evaluated_at = $3 WHERE rule_id = $1 AND zone_id = $2`,
		r.ID, z.ID, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	save(armed, now.Add(7*time.Second))
	if holds, at := memory(); holds || !at.Equal(now.Add(7*time.Second)) {
		t.Fatalf("a memory stamped an hour ahead was kept (holding %v, evaluated at %v)", holds, at)
	}
}
