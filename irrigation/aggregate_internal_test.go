package irrigation

import (
	"math"
	"testing"
	"time"

	"github.com/aghali/aghali/irrigation/rule"
)

// The backtest's trend, like the live one, is the slope within each node: levels that differ
// between nodes, or a node that starts reporting late, do not tilt it.
func TestAggregateTrendIsWithinEachNode(t *testing.T) {
	t0 := time.Date(2026, 7, 6, 0, 0, 0, 0, time.UTC)
	node := func(a *aggregate, from, n int, level, perHour float64) {
		for i := range n {
			h := float64(from + i)
			a.addBucket(t0.Add(time.Duration(h*float64(time.Hour))), 1, level+perHour*h, 0, 0)
		}
		a.endNode()
	}
	for _, c := range []struct {
		name  string
		nodes func(a *aggregate)
		want  float64 // NaN: no trend
	}{
		{"one drying node", func(a *aggregate) { node(a, 0, 6, 0.30, -0.01) }, -0.01},
		{"a flat node and a drier one from the last hour", func(a *aggregate) { node(a, 0, 6, 0.30, 0); node(a, 4, 2, 0.20, 0) }, 0},
		{"two drying at different levels", func(a *aggregate) { node(a, 0, 6, 0.30, -0.01); node(a, 0, 6, 0.20, -0.01) }, -0.01},
		{"a drying node and one reading of another", func(a *aggregate) { node(a, 0, 3, 0.30, -0.02); node(a, 5, 1, 0.9, 0) }, -0.02},
		{"single readings of two nodes", func(a *aggregate) { node(a, 0, 1, 0.30, 0); node(a, 1, 1, 0.20, 0) }, math.NaN()},
	} {
		a := newAggregate()
		c.nodes(a)
		v := a.value(rule.FuncTrend)
		switch {
		case math.IsNaN(c.want):
			if !v.Missing {
				t.Errorf("%s: %+v, want no trend", c.name, v)
			}
		case v.Missing || math.Abs(v.V.(float64)-c.want) > 1e-9:
			t.Errorf("%s: %+v, want %v an hour", c.name, v, c.want)
		}
	}
}
