package irrigation_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation"
)

// decisionsAt writes a backtest's decisions as "local time action duration [starts]" lines.
func decisionsAt(t *testing.T, res irrigation.BacktestResult) []string {
	t.Helper()
	var out []string
	for _, d := range res.Decisions {
		line := fmt.Sprintf("%s %s %d", d.At.In(baku(t)).Format("01-02 15:04"), d.Action, d.DurationS)
		if d.StartsAt != nil {
			line += " from " + d.StartsAt.In(baku(t)).Format("15:04")
		}
		out = append(out, line)
	}
	return out
}

// A week of synthetic soil moisture, replayed through a dry-soil rule with a 12 h cooldown and
// a 04:00–20:00 window on a zone fed by a solar pump (power 06:00–19:00):
//
//	1 Jul – 3 Jul 05:00  0.25   wet enough
//	3 Jul 06:00–23:00    0.17   dry: waters at 06:00 and, the cooldown over, at 18:00
//	4 Jul – 6 Jul 09:00  0.26   rain
//	6 Jul 10:00 –        0.15   dry: 10:00; 22:00 is outside the window, so 04:00 on the 7th
//	                            (the pump waits for the sun until 06:00), then 16:00
//
// Each run is 30 min of a 20 L/min valve: 600 L. Nothing is stored or sent.
func TestBacktestRuleOverSyntheticHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	loc := baku(t)
	ws, err := f.store.CreateWaterSource(f.ctx, irrigation.WaterSource{FarmID: f.farm, Name: "Solar pump", Kind: "pump",
		Energy: "solar", EnergyWindows: []irrigation.EnergyWindow{{From: "06:00", To: "19:00"}}})
	if err != nil {
		t.Fatal(err)
	}
	z, c, _ := f.zoneWithValve(func(z *irrigation.Zone) { z.WaterSourceID = &ws.ID })
	if _, err := f.db.Exec(f.ctx, `UPDATE valves SET nominal_flow_lpm = 20 WHERE controller_id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	probe := f.node(z.ID)
	var rs []fieldnodes.Reading
	for at := time.Date(2026, 7, 1, 0, 0, 0, 0, loc); at.Before(time.Date(2026, 7, 8, 0, 0, 0, 0, loc)); at = at.Add(time.Hour) {
		v := 0.25
		switch {
		case at.Before(time.Date(2026, 7, 3, 6, 0, 0, 0, loc)):
		case at.Before(time.Date(2026, 7, 4, 0, 0, 0, 0, loc)):
			v = 0.17
		case at.Before(time.Date(2026, 7, 6, 10, 0, 0, 0, loc)):
			v = 0.26
		default:
			v = 0.15
		}
		rs = append(rs, fieldnodes.Reading{NodeID: probe, Metric: "soil_vwc", TS: at, Value: v})
	}
	f.insert(rs...)
	f.clock.Set(time.Date(2026, 7, 9, 12, 0, 0, 0, loc))
	r := f.rule(z.ID, func(r *irrigation.Rule) {
		r.Condition = `last("soil_vwc", "1h") < 0.18`
		r.DurationS, r.CooldownS = 1800, 12*3600
		r.Windows = []irrigation.RuleWindow{{From: "04:00", To: "20:00"}}
	})
	d := f.decider()
	res, err := d.BacktestRule(f.ctx, r, nil, time.Date(2026, 7, 1, 0, 0, 0, 0, loc), time.Date(2026, 7, 8, 0, 0, 0, 0, loc), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"07-03 06:00 irrigate 1800",
		"07-03 18:00 irrigate 1800",
		"07-06 10:00 irrigate 1800",
		"07-07 04:00 irrigate 1800 from 06:00",
		"07-07 16:00 irrigate 1800",
	}
	if got := decisionsAt(t, res); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("decisions\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if res.Evaluations != 7*24 || res.Runs != 5 || res.WaterS != 5*1800 || res.VolumeL != 3000 {
		t.Errorf("totals %+v", res)
	}
	first := res.Decisions[0]
	if *first.VolumeL != 600 || first.Facts[`last("soil_vwc", "1h")`] != 0.17 ||
		!strings.Contains(first.Reason, `last("soil_vwc", "1h") < 0.18 holds: last("soil_vwc", "1h") = 0.17`) {
		t.Errorf("first decision %+v", first)
	}
	if !strings.Contains(res.Decisions[3].Reason, `waits for "Solar pump"'s energy window until 06:00`) {
		t.Errorf("energy window not in the reason: %q", res.Decisions[3].Reason)
	}
	if len(f.runsOf(irrigation.OriginRule)) != 0 || len(f.decisions(irrigation.OriginRule)) != 0 || len(f.sender.all()) != 0 {
		t.Fatal("a backtest acted")
	}
	// An unsaved variant: with a 2 h hold the 3 July morning fires at 08:00 instead, and the
	// cooldown then ends at 20:00, outside the window.
	r.ID, r.HoldS = 0, 2*3600
	res, err = d.BacktestRule(f.ctx, r, nil, time.Date(2026, 7, 3, 0, 0, 0, 0, loc), time.Date(2026, 7, 4, 0, 0, 0, 0, loc), time.Hour)
	if err != nil || len(res.Decisions) != 1 || !res.Decisions[0].At.Equal(time.Date(2026, 7, 3, 8, 0, 0, 0, loc)) || res.Decisions[0].OriginID != nil {
		t.Fatalf("with a hold: %v, %v", decisionsAt(t, res), err)
	}
	if _, err := d.BacktestRule(f.ctx, r, nil, time.Date(2026, 7, 3, 0, 0, 0, 0, loc), time.Date(2026, 7, 3, 0, 0, 0, 0, loc), time.Hour); err == nil {
		t.Error("an empty period was accepted")
	}
	if _, err := d.BacktestRule(f.ctx, r, nil, time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Date(2026, 7, 3, 0, 0, 0, 0, loc), time.Hour); err == nil {
		t.Error("half a year was accepted")
	}
}

// The water-balance schedule replayed over the ten-day scenario: each 05:00 it checks the
// balance and waters nothing until the 11th, when depletion has passed RAW. The replay keeps its
// own balance from the stored ETc and rain (rain counts as it falls), not the actual run of 6
// July nor the probe: Dr at the start of each day 0, 4.108, 8.212, 0 (20 mm of rain at 16:00),
// 4.095, 8.185, 12.270, 16.350, 20.425, 24.494, 28.556, plus 5/24 of the day's ETc by 05:00: on
// the 10th 24.494 + 0.846 = 25.340 < RAW 26.251. On the 11th Dr > RAW, so Ks = (60 − 28.556) /
// (60 − 26.251) = 0.9317 and ETc adj = 3.784: 28.556 + 0.788 = 29.344 ≥ RAW: 29.344 mm net,
// 32.605 mm gross, 23 476 s at 5 mm/h, capped at the zone's 6 h max runtime.
func TestBacktestWaterBalanceSchedule(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.tenDays()
	loc := baku(t)
	f.clock.Set(time.Date(2026, 7, 12, 9, 0, 0, 0, loc))
	sc := irrigation.Schedule{ZoneID: z.ID, Name: "By the balance", Cron: "0 5 * * *", Mode: irrigation.ModeWaterBalance}
	res, err := f.decider().BacktestSchedule(f.ctx, sc, time.Date(2026, 7, 1, 0, 0, 0, 0, loc), time.Date(2026, 7, 12, 0, 0, 0, 0, loc))
	if err != nil {
		t.Fatal(err)
	}
	if res.Evaluations != 11 || len(res.Decisions) != 11 || res.Runs != 1 {
		t.Fatalf("decisions %v", decisionsAt(t, res))
	}
	for i, d := range res.Decisions[:10] {
		if d.Action != irrigation.DecisionNone || d.Origin != irrigation.OriginWaterBalance || !strings.Contains(d.Reason, "does not need water") {
			t.Errorf("day %d: %+v", i+1, d)
		}
	}
	if dr := res.Decisions[9].Facts["depletion_mm"]; math.Abs(dr.(float64)-25.34) > 0.01 {
		t.Errorf("depletion on the 10th at 05:00: %v, want 25.34", dr)
	}
	if dr := res.Decisions[2].Facts["depletion_mm"]; math.Abs(dr.(float64)-9.07) > 0.01 {
		t.Errorf("depletion on the 3rd at 05:00, before the rain: %v, want 9.07", dr)
	}
	last := res.Decisions[10]
	if last.Action != irrigation.DecisionIrrigate || last.DurationS != 6*3600 || last.Facts["depletion_mm"] != 29.34 ||
		!strings.Contains(last.Reason, "refill 29.3 mm net, 32.6 mm gross") || !strings.Contains(last.Reason, "capped from 23476 s") {
		t.Fatalf("the 11th: %+v", last)
	}
	if len(f.runsOf(irrigation.OriginWaterBalance)) != 0 {
		t.Fatal("a backtest started a run")
	}
}
