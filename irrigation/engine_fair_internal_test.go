package irrigation

import (
	"slices"
	"testing"
	"time"
)

// A pass for fresh readings takes the passZones zones evaluated longest ago (never first) and
// the nodes the rule book does not know; the other zones' nodes wait for the next pass.
func TestFairShareTakesTheZonesEvaluatedLongestAgo(t *testing.T) {
	e := &Engine{pending: map[int64]time.Time{}, lastPass: map[int64]time.Time{}, wake: make(chan struct{}, 1)}
	book := &ruleBook{byNode: map[int64]int64{}}
	e.book.Store(book)
	t0 := time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)
	var nodes []int64
	for z := int64(1); z <= 100; z++ {
		for i := range int64(2) { // two nodes a zone
			book.byNode[1000*i+z] = z
			nodes = append(nodes, 1000*i+z)
		}
		if z <= 60 { // zones 1–60 were in passes, zone 1 the longest ago; 61–100 never
			e.lastPass[z] = t0.Add(time.Duration(z) * time.Second)
		}
	}
	nodes = append(nodes, 99999) // new to a zone with rules: only the pass's book look can tell
	now, later := e.fairShare(nodes)
	zonesNow := map[int64]bool{}
	for _, n := range now {
		if z, ok := book.byNode[n]; ok {
			zonesNow[z] = true
		}
	}
	var want []int64
	for z := int64(61); z <= 100; z++ { // never evaluated: first
		want = append(want, z)
	}
	for z := int64(1); z <= passZones-40; z++ { // then the longest ago
		want = append(want, z)
	}
	for _, z := range want {
		if !zonesNow[z] {
			t.Errorf("zone %d is not in the pass", z)
		}
	}
	if len(zonesNow) != passZones {
		t.Errorf("the pass has %d zones, want %d", len(zonesNow), passZones)
	}
	if !slices.Contains(now, 99999) {
		t.Error("a node the book does not know was left for later")
	}
	if len(now)+len(later) != len(nodes) || len(later) != 2*(100-passZones) {
		t.Errorf("%d nodes now and %d later, of %d", len(now), len(later), len(nodes))
	}

	// Fewer zones than passZones: all of them.
	if now, later := e.fairShare(nodes[:10]); len(now) != 10 || len(later) != 0 {
		t.Errorf("ten nodes: %d now, %d later", len(now), len(later))
	}
}

// Nodes left for the next pass keep when their readings were committed, so that the next pass
// says so of its zones and not the time of some other node's.
func TestPendingNodesKeepTheirCommitTimes(t *testing.T) {
	e := &Engine{pending: map[int64]time.Time{}, lastPass: map[int64]time.Time{}, wake: make(chan struct{}, 1),
		cfg: EngineConfig{MaxPending: 100}}
	t0 := time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)
	e.ReadingsCommitted(t.Context(), []int64{1, 2}, t0)
	e.ReadingsCommitted(t.Context(), []int64{2, 3}, t0.Add(time.Second)) // 2 keeps its older time
	taken, all, since := e.takePending()
	if all || !since.Equal(t0) || len(taken) != 3 || !taken[2].Equal(t0) || !taken[3].Equal(t0.Add(time.Second)) {
		t.Fatalf("taken %v (all %v, since %v)", taken, all, since)
	}
	e.putBack(taken, []int64{3})
	e.ReadingsCommitted(t.Context(), []int64{4}, t0.Add(2*time.Second))
	taken, _, since = e.takePending()
	if len(taken) != 2 || !taken[3].Equal(t0.Add(time.Second)) || !taken[4].Equal(t0.Add(2*time.Second)) || !since.Equal(t0.Add(time.Second)) {
		t.Fatalf("after putting node 3 back: %v (since %v)", taken, since)
	}
}
