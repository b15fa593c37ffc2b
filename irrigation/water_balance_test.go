package irrigation_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation"
)

// locate puts the fixture's farm at Aghali (39.09 N, 46.63 E).
func (f *fixture) locate() {
	f.t.Helper()
	if _, err := f.db.Exec(f.ctx, `UPDATE farms SET location = ST_SetSRID(ST_MakePoint(46.63, 39.09), 4326) WHERE id = $1`, f.farm); err != nil {
		f.t.Fatal(err)
	}
}

// hotDay stores a weather station's air temperature for one local day in Baku: hourly, 18 °C
// at 04:30, 34 °C at 14:30, 26 °C at the other hours (Tmax 34, Tmin 18, Tmean 26).
func (f *fixture) hotDay(node int64, day time.Time) {
	f.t.Helper()
	baku, _ := time.LoadLocation("Asia/Baku")
	var rs []fieldnodes.Reading
	for h := range 24 {
		v := 26.0
		switch h {
		case 4:
			v = 18
		case 14:
			v = 34
		}
		ts := time.Date(day.Year(), day.Month(), day.Day(), h, 30, 0, 0, baku)
		rs = append(rs, fieldnodes.Reading{NodeID: node, Metric: "air_temp_c", TS: ts, Value: v})
	}
	f.insert(rs...)
}

// doneRun stores a finished run of a zone's valve: watered from start for d.
func (f *fixture) doneRun(zoneID, valveID int64, start time.Time, d time.Duration) {
	f.t.Helper()
	if _, err := f.db.Exec(f.ctx, `INSERT INTO irrigation_runs (zone_id, valve_id, origin, reason, state, duration_s,
			created_at, started_at, ends_at, ended_at, updated_at)
		VALUES ($1, $2, 'user', 'test', 'done', $3, $4, $4, $5, $5, $5)`, zoneID, valveID, int(d.Seconds()), start, start.Add(d)); err != nil {
		f.t.Fatal(err)
	}
}

func baku(t testing.TB) *time.Location {
	t.Helper()
	l, err := time.LoadLocation("Asia/Baku")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// tenDays sets up the scenario of TestTenDayWaterBalanceFromReadings: the farm at Aghali, a
// tomato zone planted on 1 July, a weather station, a rain gauge and a probe with ten days of
// readings, and one run.
func (f *fixture) tenDays() irrigation.Zone {
	f.t.Helper()
	f.locate()
	baku := baku(f.t)
	planted := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	z, _, v := f.zoneWithValve(func(z *irrigation.Zone) {
		z.Crop, z.Soil = "tomato", "sandy-loam"
		z.ThetaFC, z.ThetaWP, z.RootDepthM = ptr(0.22), ptr(0.10), ptr(0.5)
		z.ApplicationRateMMH, z.Efficiency = ptr(5.0), ptr(0.9)
		z.PlantingDate = &planted
		z.MaxRuntimeS = 6 * 3600
	})
	station, gauge := f.node(0), f.node(0)
	probe := f.node(z.ID, func(n *fieldnodes.Node) { n.DepthM = ptr(0.3) })
	for d := 1; d <= 10; d++ {
		f.hotDay(station, time.Date(2026, 7, d, 0, 0, 0, 0, time.UTC))
	}
	f.insert(
		fieldnodes.Reading{NodeID: gauge, Metric: "rain_mm", TS: time.Date(2026, 7, 3, 16, 0, 0, 0, baku), Value: 10},
		fieldnodes.Reading{NodeID: gauge, Metric: "rain_mm", TS: time.Date(2026, 7, 3, 17, 0, 0, 0, baku), Value: 10},
		fieldnodes.Reading{NodeID: gauge, Metric: "rain_mm", TS: time.Date(2026, 7, 9, 3, 0, 0, 0, baku), Value: 1},
		fieldnodes.Reading{NodeID: probe, Metric: "soil_vwc", TS: time.Date(2026, 7, 8, 20, 0, 0, 0, baku), Value: 0.168},
		fieldnodes.Reading{NodeID: probe, Metric: "soil_vwc", TS: time.Date(2026, 7, 8, 22, 0, 0, 0, baku), Value: 0.172},
	)
	f.doneRun(z.ID, v.ID, time.Date(2026, 7, 6, 6, 0, 0, 0, baku), time.Hour)
	return z
}

// The per-zone water balance kept from stored readings over ten days of July, worked by hand.
//
// Site: Aghali, φ = 39.09° N. Only air temperature is measured, so ET0 is Hargreaves (eq. 52):
//
//	ET0 = 0.0023 (Tmean + 17.8) (Tmax − Tmin)^0.5 · 0.408 Ra = 0.0023 · 43.8 · 4 · 0.408 · Ra = 0.16441 Ra
//
// with Ra from eqs. 21–25 (dr = 1 + 0.033 cos(2πJ/365), δ = 0.409 sin(2πJ/365 − 1.39),
// ωs = arccos(−tan φ tan δ)). Zone: tomato planted on 1 July, so Kc = Kc ini = 0.6 throughout
// (initial stage, days 1–30); θFC 0.22, θWP 0.10, Zr 0.5 m: TAW = 1000 · 0.12 · 0.5 = 60 mm;
// p = 0.40 + 0.04 (5 − ETc); drip at 5 mm/h, efficiency 0.9. Rain gauge: 20 mm on 3 July, 1 mm
// on 9 July (below 0.2 ET0: not effective). A 1-hour run on 6 July applies 5 mm, 4.5 mm net. On
// 8 July the probe (0.3 m deep, within the roots) reads θ = 0.17 in the evening:
// Dr(probe) = 1000 (0.22 − 0.17) 0.5 = 25 mm, and the modelled 15.925 mm is pulled half-way,
// to 20.463 mm.
//
//	day  J    Ra      ET0    ETc    p       RAW     Peff  Inet  DP     Dr
//	 1  182  41.639  6.846  4.108  0.4357  26.142   0     0     0       4.108
//	 2  183  41.601  6.840  4.104  0.4358  26.150   0     0     0       8.212
//	 3  184  41.559  6.833  4.100  0.4360  26.161  20     0     7.689   0
//	 4  185  41.515  6.825  4.095  0.4362  26.172   0     0     0       4.095
//	 5  186  41.467  6.817  4.090  0.4364  26.184   0     0     0       8.185
//	 6  187  41.416  6.809  4.085  0.4366  26.195   0     4.5   0       7.771
//	 7  188  41.362  6.800  4.080  0.4368  26.208   0     0     0      11.851
//	 8  189  41.304  6.791  4.075  0.4370  26.221   0     0     0      15.925 → 20.463 (probe)
//	 9  190  41.244  6.781  4.069  0.4373  26.235   0     0     0      24.531
//	10  191  41.180  6.770  4.062  0.4375  26.251   0     0     0      28.593  ≥ RAW: needs water
//
// Refill on the 11th morning: 28.593 mm net, 31.770 mm gross, 6.354 h at 5 mm/h.
func TestTenDayWaterBalanceFromReadings(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.tenDays()
	f.clock.Set(time.Date(2026, 7, 11, 5, 0, 0, 0, baku(t)))

	d, err := irrigation.NewDecider(f.store, f.nodeStore(), irrigation.DeciderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	days, err := d.Balance.Days(f.ctx, z.ID, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 10, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ et0, etc, raw, peff, inet, dp, dr float64 }{
		{6.846, 4.108, 26.142, 0, 0, 0, 4.108},
		{6.840, 4.104, 26.150, 0, 0, 0, 8.212},
		{6.833, 4.100, 26.161, 20, 0, 7.689, 0},
		{6.825, 4.095, 26.172, 0, 0, 0, 4.095},
		{6.817, 4.090, 26.184, 0, 0, 0, 8.185},
		{6.809, 4.085, 26.195, 0, 4.5, 0, 7.771},
		{6.800, 4.080, 26.208, 0, 0, 0, 11.851},
		{6.791, 4.075, 26.221, 0, 0, 0, 20.463},
		{6.781, 4.069, 26.235, 0, 0, 0, 24.531},
		{6.770, 4.062, 26.251, 0, 0, 0, 28.593},
	}
	if len(days) != len(want) {
		t.Fatalf("%d days, want %d: %+v", len(days), len(want), days)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= 0.0015 }
	for i, w := range want {
		g := days[i]
		if !g.Final || g.Kc != 0.6 || g.TAW != 60 || !near(g.ET0, w.et0) || !near(g.ETc, w.etc) || !near(g.RAW, w.raw) ||
			!near(g.EffectiveRain, w.peff) || !near(g.NetIrrigation, w.inet) || !near(g.DeepPercolation, w.dp) || !near(g.Depletion, w.dr) {
			t.Errorf("day %d: %+v\nwant %+v", i+1, g, w)
		}
	}
	if p := days[7]; p.ProbeVWC == nil || !near(*p.ProbeVWC, 0.17) || !near(*p.ProbeDepletion, 25) || !near(*p.ModelDepletion, 15.925) {
		t.Errorf("probe correction on day 8: %+v", p)
	}
	if days[8].Rain != 1 || days[8].EffectiveRain != 0 {
		t.Errorf("1 mm of rain on day 9 must not count: %+v", days[8])
	}

	// The 11th, 05:00, before the station's first reading of the day: ET0 so far is the last
	// known day's pro rata, 6.770 · 5/24, and Dr has grown by 0.6 of it.
	st, err := d.Balance.Status(f.ctx, z.ID, f.clock.Now())
	if err != nil || st.Problem != "" || !st.NeedsWater || math.Abs(st.RAW-26.251) > 0.002 {
		t.Fatalf("status = %+v, %v (RAW from the day's expected ETc: 26.251)", st, err)
	}
	if wantDr := 28.593 + 0.6*6.770*5/24; math.Abs(st.Depletion-wantDr) > 0.01 {
		t.Errorf("depletion now %.3f, want %.3f", st.Depletion, wantDr)
	}
	if math.Abs(st.GrossRefill-st.Depletion/0.9) > 1e-9 || st.RuntimeS != int(math.Ceil(st.Depletion/0.9/5*3600)) {
		t.Errorf("refill %+v", st)
	}
	// Stored: a second look changes nothing.
	again, err := d.Balance.Days(f.ctx, z.ID, time.Date(2026, 7, 8, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 8, 0, 0, 0, 0, time.UTC))
	if err != nil || len(again) != 1 || again[0].Depletion != days[7].Depletion || !strings.Contains(again[0].Notes, "soil moisture 0.170") {
		t.Fatalf("stored day 8 = %+v, %v", again, err)
	}
	et0, err := d.Weather.Day(f.ctx, f.farm, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || et0.Method != irrigation.ET0Hargreaves || *et0.Tmax != 34 || *et0.Tmin != 18 || et0.Hours != 24 || !et0.Final {
		t.Fatalf("ET0 of 1 July = %+v, %v", et0, err)
	}
}

// A run whose volume a flow meter measured counts as that volume over the zone's area, not as
// its time open × the application rate.
func TestBalanceCountsMeteredVolume(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.tenDays()
	if _, err := f.db.Exec(f.ctx, `UPDATE irrigation_runs SET volume_l = 20000 WHERE zone_id = $1`, z.ID); err != nil {
		t.Fatal(err)
	}
	var area float64
	if err := f.db.QueryRow(f.ctx, `SELECT ST_Area(geom::geography) FROM zones WHERE id = $1`, z.ID).Scan(&area); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(time.Date(2026, 7, 8, 12, 0, 0, 0, baku(t)))
	d, err := irrigation.NewDecider(f.store, f.nodeStore(), irrigation.DeciderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	day6 := time.Date(2026, 7, 6, 0, 0, 0, 0, time.UTC)
	days, err := d.Balance.Days(f.ctx, z.ID, day6, day6)
	if err != nil || len(days) != 1 {
		t.Fatalf("days %+v, %v", days, err)
	}
	if want := 20000 / area; math.Abs(days[0].Irrigation-want) > 1e-9 || math.Abs(days[0].NetIrrigation-0.9*want) > 1e-9 {
		t.Fatalf("irrigation %v mm (net %v), want %v mm from 20 000 L over %.0f m²", days[0].Irrigation, days[0].NetIrrigation, want, area)
	}
}
