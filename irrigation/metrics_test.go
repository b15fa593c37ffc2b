package irrigation_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aghali/aghali/irrigation"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	reg := prometheus.NewRegistry()
	cfg := irrigation.Config{Now: f.clock.Now, Registerer: reg}
	s1, err := irrigation.NewStore(f.db, f.secrets, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A second instance on the same registry shares the collectors.
	s2, err := irrigation.NewStore(f.db, f.secrets, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d1, err := irrigation.NewDispatcher(s1, f.sender, irrigation.DispatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := irrigation.NewDispatcher(s2, f.sender, irrigation.DispatcherConfig{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*irrigation.Store{s1, s2} {
		if _, err := irrigation.NewEngine(s, f.nodeStore(), irrigation.EngineConfig{}); err != nil {
			t.Fatal(err)
		}
		if _, err := irrigation.NewScheduler(s, irrigation.SchedulerConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, v := f.zoneWithValve()
	_, _, v2 := f.zoneWithValve()
	for i, s := range []*irrigation.Store{s1, s2} {
		if _, err := s.StartRun(f.ctx, irrigation.RunRequest{ValveID: []int64{v.ID, v2.ID}[i], DurationS: 60, Origin: irrigation.OriginUser}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := d1.DispatchDue(f.ctx); err != nil || n != 2 {
		t.Fatalf("dispatch: %d, %v", n, err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"aghali_irrigation_runs_started_total{origin=user}":  2,
		"aghali_irrigation_commands_sent_total{action=open}": 2,
		"aghali_irrigation_command_dispatch_seconds":         2,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
}
