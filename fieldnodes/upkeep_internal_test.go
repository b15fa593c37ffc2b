package fieldnodes

import (
	"testing"
	"time"
)

// The upkeep of nodes in irrigation zones is written apart from the rest: the bulk take leaves
// it pending for the zoned writer, which takes only it, with when its readings were committed.
func TestUpkeepZonedNodesAreTakenApart(t *testing.T) {
	t0 := time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)
	w := newUpkeepWriter(nil, nil, nil, 1000, time.Millisecond, time.Millisecond, nil)

	first := newUpkeepSet()
	first.addReadings([]Reading{{NodeID: 1, Metric: "soil_vwc", TS: t0, Value: 0.2}, {NodeID: 2, Metric: "air_temp_c", TS: t0, Value: 20}},
		map[string]int16{"soil_vwc": 1, "air_temp_c": 2})
	first.markZoned(1, t0.Add(2*time.Second))
	first.committed = t0.Add(2 * time.Second)
	w.add(first)
	second := newUpkeepSet()
	second.addReadings([]Reading{{NodeID: 1, Metric: "soil_vwc", TS: t0.Add(time.Minute), Value: 0.19}}, map[string]int16{"soil_vwc": 1})
	second.markZoned(1, t0.Add(time.Minute+time.Second))
	w.add(second)
	select {
	case <-w.zonedWake:
	default:
		t.Fatal("zoned readings did not signal the zoned writer")
	}

	bulk := w.take(false)
	if len(bulk.nodes) != 1 || bulk.nodes[2] == nil || len(bulk.latest) != 1 || len(bulk.zoned) != 0 {
		t.Fatalf("bulk take: nodes %v, latest %v, zoned %v; want node 2 only", bulk.nodes, bulk.latest, bulk.zoned)
	}
	zoned := w.takeZoned()
	if len(zoned.nodes) != 1 || zoned.nodes[1] == nil || !zoned.nodes[1].readings {
		t.Fatalf("zoned take: nodes %v; want node 1 with readings", zoned.nodes)
	}
	if v := zoned.latest[latestKey{1, 1}]; len(zoned.latest) != 1 || v.value != 0.19 {
		t.Errorf("zoned take: latest %v; want node 1's newest soil_vwc 0.19", zoned.latest)
	}
	if !zoned.committed.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("zoned take committed at %v; want the oldest commit, %v", zoned.committed, t0.Add(2*time.Second))
	}
	if !w.pending.empty() || len(w.pending.zoned) != 0 {
		t.Errorf("left pending: %+v", w.pending)
	}
	if got := w.take(true); !got.empty() {
		t.Errorf("take(true) after both: %+v", got)
	}
}
