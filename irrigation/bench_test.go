package irrigation_test

import (
	"slices"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation"
)

// reportLatencies adds p50 and p99 (milliseconds) of lat to the benchmark's output.
func reportLatencies(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := int(float64(len(lat)-1) * p)
		return float64(lat[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), prefix+"p50-ms")
	b.ReportMetric(pct(0.99), prefix+"p99-ms")
}

// benchLoop runs one watering per iteration on a started dispatcher: trigger() starts it and
// the time until the open reaches the CommandSender is measured; then the run is acked,
// stopped and closed outside the timer.
func benchLoop(b *testing.B, f *fixture, valves []irrigation.Valve, trigger func(i int)) {
	h := irrigation.NewControllerHandler(f.store)
	d := f.dispatcher(irrigation.DispatcherConfig{PollInterval: time.Second, RetryBase: time.Hour, RetryMax: time.Hour})
	if err := d.Start(f.ctx); err != nil {
		b.Fatal(err)
	}
	defer d.Stop()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		v := valves[i%len(valves)]
		start := time.Now()
		trigger(i)
		open := f.sender.next(b)
		lat = append(lat, time.Since(start))
		b.StopTimer()
		if open.Cmd.Action != "open" {
			b.Fatalf("sent %+v, want an open", open)
		}
		ack(b, f, h, open.UID, open.Cmd.ID, "ok")
		if _, err := f.store.StopValve(f.ctx, v.ID, nil, "bench"); err != nil {
			b.Fatal(err)
		}
		closeCmd := f.sender.next(b)
		ack(b, f, h, closeCmd.UID, closeCmd.Cmd.ID, "ok")
		b.StartTimer()
		i++
	}
	reportLatencies(b, "", lat)
}

// BenchmarkStartRunToSend measures StartRun called → CommandSender called (the run and its
// command committed, NOTIFY delivered, the command claimed and handed over).
func BenchmarkStartRunToSend(b *testing.B) {
	f := newFixture(b, "Asia/Baku")
	z := f.zone()
	ctl := f.controller("ctl-bench")
	var valves []irrigation.Valve
	for ch := 1; ch <= 8; ch++ {
		valves = append(valves, f.valve(ctl, ch, z.ID))
	}
	benchLoop(b, f, valves, func(i int) {
		if _, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: valves[i%len(valves)].ID, DurationS: 600, Origin: irrigation.OriginUser}); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkReadingToSend measures a committed reading reported to the rule engine →
// CommandSender called (zones of the node, rules, aggregate, StartRun, dispatch).
func BenchmarkReadingToSend(b *testing.B) {
	f := newFixture(b, "Asia/Baku")
	z, _, v := f.zoneWithValve()
	node := f.node(z.ID)
	f.rule(z.ID, func(r *irrigation.Rule) { r.CooldownS = 0 })
	// A second zone of the farm with a rule that holds back, so evaluation has company.
	z2, _, _ := f.zoneWithValve()
	f.rule(z2.ID)
	e, err := irrigation.NewEngine(f.store, f.nodeStore(), irrigation.EngineConfig{Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.Start(f.ctx); err != nil {
		b.Fatal(err)
	}
	defer e.Stop()
	f.readings(node, "soil_vwc", 0.12, 0.13, 0.14)
	benchLoop(b, f, []irrigation.Valve{v}, func(int) { e.ReadingsCommitted(f.ctx, []int64{node}, time.Time{}) })
}

// BenchmarkTrendRule measures one evaluation of a zone whose rule reads a trend over its eight
// probes (six hours of readings, one each quarter hour) and a farm maximum: the facts, the
// condition, and the memory, acting on nothing.
func BenchmarkTrendRule(b *testing.B) {
	f := newFixture(b, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	f.rule(z.ID, func(r *irrigation.Rule) {
		r.Condition = `trend("soil_vwc", "6h") < -1 && max("air_temp_c", "6h", "farm") > 50`
	})
	now := f.clock.Now()
	var rs []fieldnodes.Reading
	for range 8 {
		node := f.node(z.ID)
		for i := range 24 {
			rs = append(rs, fieldnodes.Reading{NodeID: node, Metric: "soil_vwc", TS: now.Add(-time.Duration(i) * 15 * time.Minute), Value: 0.2 + float64(i)/1000})
		}
	}
	station := f.node(0)
	for i := range 24 {
		rs = append(rs, fieldnodes.Reading{NodeID: station, Metric: "air_temp_c", TS: now.Add(-time.Duration(i) * 15 * time.Minute), Value: 30})
	}
	f.insert(rs...)
	e := f.engine()
	for b.Loop() {
		if n, err := e.EvaluateZones(f.ctx, []int64{z.ID}); err != nil || n != 0 {
			b.Fatalf("acted %d, %v", n, err)
		}
	}
}
