package agronomy

import (
	"errors"
	"math"
	"testing"
)

// TestTenDayWaterBalance steps a zone through ten days whose numbers were worked out by hand.
//
// Zone: loam (Table 19 midpoints θFC 0.25, θWP 0.12), Zr 0.6 m, p(Table 22) 0.50, drip at 90 %
// efficiency, starting 20 mm below field capacity.
//
//	TAW = 1000 · (0.25 − 0.12) · 0.6 = 78 mm
//	p   = 0.50 + 0.04 · (5 − ETc), RAW = p · 78
//
// day ET0  Kc   rain/RO gross-I CR │ ETc   p     RAW    Ks                               ETcadj  Dr (end)
//
//	1  5.0  1.00  –       –      – │ 5.00  0.50  39.00  1 (20 ≤ 39)                      5.00    20 + 5 = 25.00
//	2  6.0  1.00  –       –      – │ 6.00  0.46  35.88  1                                6.00    25 + 6 = 31.00
//	3  5.5  1.00  1.0/0   –      – │ 5.50  0.48  37.44  1; rain 1.0 < 0.2·5.5 = 1.1: lost 5.50    31 + 5.5 = 36.50
//	4  6.0  1.00  –       –      – │ 6.00  0.46  35.88  (78−36.5)/(78−35.88) = 0.985280   5.91168 36.5 + 5.91168 = 42.41168
//	   → needs water (42.41 ≥ 35.88): net 42.41168, gross 42.41168 / 0.9 = 47.12409
//	5  5.0  1.00  –       40     – │ 5.00  0.50  39.00  (78−42.41168)/39 = 0.912521       4.56261 42.41168 − 0.9·40 + 4.56261 = 10.97429
//	6  3.0  1.00  25/3    –      – │ 3.00  0.58  45.24  1; Peff = 25 − 3 = 22              3.00    10.97429 − 22 + 3 = −8.02571
//	   → DP = 8.02571, Dr = 0
//	7  4.0  1.00  –       –      1 │ 4.00  0.54  42.12  1                                4.00    0 − 1 + 4 = 3.00
//	8  6.0  1.15  –       –      – │ 6.90  0.424 33.072 1                                6.90    3 + 6.9 = 9.90
//	9  7.0  1.15  –       –      – │ 8.05  0.378 29.484 1                                8.05    9.9 + 8.05 = 17.95
//	10 8.0  1.15  –       –      – │ 9.20  0.332 25.896 1                                9.20    17.95 + 9.2 = 27.15
//	   → needs water (27.15 ≥ 25.896): net 27.15, gross 27.15 / 0.9 = 30.16667;
//	     at 4 mm/h that is 30.16667 / 4 · 60 = 452.5 minutes.
func TestTenDayWaterBalance(t *testing.T) {
	b, err := NewBalance(RootZone{ThetaFC: 0.25, ThetaWP: 0.12, Depth: 0.6, P: 0.50}, 0.9, 20)
	if err != nil {
		t.Fatal(err)
	}
	days := []struct {
		in        Day
		p, raw    float64
		ks, etc   float64
		dp, dr    float64
		needs     bool
		grossNeed float64
	}{
		{Day{ET0: 5, Kc: 1}, 0.50, 39.00, 1, 5.00, 0, 25.00, false, 25.00 / 0.9},
		{Day{ET0: 6, Kc: 1}, 0.46, 35.88, 1, 6.00, 0, 31.00, false, 31.00 / 0.9},
		{Day{ET0: 5.5, Kc: 1, Rain: 1}, 0.48, 37.44, 1, 5.50, 0, 36.50, false, 36.50 / 0.9},
		{Day{ET0: 6, Kc: 1}, 0.46, 35.88, 0.985280, 5.91168, 0, 42.41168, true, 47.12409},
		{Day{ET0: 5, Kc: 1, Irrigation: 40}, 0.50, 39.00, 0.912521, 4.56261, 0, 10.97429, false, 10.97429 / 0.9},
		{Day{ET0: 3, Kc: 1, Rain: 25, Runoff: 3}, 0.58, 45.24, 1, 3.00, 8.02571, 0, false, 0},
		{Day{ET0: 4, Kc: 1, CapillaryRise: 1}, 0.54, 42.12, 1, 4.00, 0, 3.00, false, 3.00 / 0.9},
		{Day{ET0: 6, Kc: 1.15}, 0.424, 33.072, 1, 6.90, 0, 9.90, false, 9.90 / 0.9},
		{Day{ET0: 7, Kc: 1.15}, 0.378, 29.484, 1, 8.05, 0, 17.95, false, 17.95 / 0.9},
		{Day{ET0: 8, Kc: 1.15}, 0.332, 25.896, 1, 9.20, 0, 27.15, true, 30.16667},
	}
	const tol = 1e-4
	var last DayResult
	for i, d := range days {
		before := b
		var r DayResult
		b, r, err = b.Step(d.in)
		if err != nil {
			t.Fatalf("day %d: %v", i+1, err)
		}
		if before.Depletion != r.DepletionStart {
			t.Errorf("day %d: Step changed its receiver or lost the start depletion", i+1)
		}
		if !near(r.TAW, 78, 1e-9) {
			t.Errorf("day %d: TAW %v", i+1, r.TAW)
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"p", r.P, d.p}, {"RAW", r.RAW, d.raw}, {"Ks", r.Ks, d.ks}, {"ETc,adj", r.ETcAdj, d.etc},
			{"DP", r.DeepPercolation, d.dp}, {"Dr", r.Depletion, d.dr}, {"net refill", r.NetRefill, d.dr},
			{"gross refill", r.GrossRefill, d.grossNeed},
		} {
			if !near(c.got, c.want, tol) {
				t.Errorf("day %d: %s = %.5f, want %.5f", i+1, c.name, c.got, c.want)
			}
		}
		if r.NeedsWater != d.needs {
			t.Errorf("day %d: needs water = %v, want %v", i+1, r.NeedsWater, d.needs)
		}
		if b.Depletion != r.Depletion {
			t.Errorf("day %d: state %v, result %v", i+1, b.Depletion, r.Depletion)
		}
		last = r
	}
	if days[2].in.Rain != 1 || !near(days[2].dr-days[1].dr, 5.5, 1e-9) {
		t.Error("day 3's rain should have been ignored")
	}
	mins, err := RuntimeMinutes(last.GrossRefill, 4)
	if err != nil || !near(mins, 452.5, 1e-3) {
		t.Errorf("runtime = %v min (%v), want 452.5", mins, err)
	}
}

func TestBalanceBoundedByTAW(t *testing.T) {
	// Sand under lettuce-like roots: TAW = 1000 · 0.075 · 0.4 = 30 mm, RAW = 0.3 · 30 = 9 mm at ETc 5.
	b, err := NewBalance(RootZone{ThetaFC: 0.12, ThetaWP: 0.045, Depth: 0.4, P: 0.3}, 0.8, 28)
	if err != nil {
		t.Fatal(err)
	}
	// Ks = (30 − 28)/(30 − 9) = 0.095238; ETc,adj = 0.47619 < the 2 mm left: Dr = 28.47619.
	b, r, err := b.Step(Day{ET0: 5, Kc: 1})
	if err != nil || !near(r.Ks, 2.0/21, 1e-9) || !near(r.Depletion, 28.47619, 1e-5) {
		t.Fatalf("step 1: %+v %v", r, err)
	}
	// Many hot days never drive Dr past TAW, and ETc,adj shrinks towards zero.
	for i := 0; i < 40; i++ {
		b, r, err = b.Step(Day{ET0: 12, Kc: 1.2})
		if err != nil {
			t.Fatal(err)
		}
		if r.Depletion > r.TAW+1e-9 || r.ETcAdj < 0 {
			t.Fatalf("day %d: Dr %v > TAW %v or ETc,adj %v < 0", i, r.Depletion, r.TAW, r.ETcAdj)
		}
	}
	if r.ETcAdj > 0.01 || !r.NeedsWater {
		t.Errorf("dry root zone: ETc,adj %v needs %v", r.ETcAdj, r.NeedsWater)
	}
	// A large irrigation refills to field capacity and the excess percolates:
	// Dr ≈ 30 − 0.8 · 50 + ETc,adj(≈0) → DP ≈ 10.
	_, r, _ = b.Step(Day{ET0: 0, Kc: 1, Irrigation: 50})
	if r.Depletion != 0 || !near(r.DeepPercolation, 40-b.Depletion, 1e-9) {
		t.Errorf("refill: Dr %v DP %v (start %v)", r.Depletion, r.DeepPercolation, b.Depletion)
	}
}

func TestStepValidation(t *testing.T) {
	b, _ := NewBalance(RootZone{ThetaFC: 0.25, ThetaWP: 0.12, Depth: 0.6, P: 0.5}, 0.9, 10)
	for _, c := range []struct {
		d     Day
		field string
	}{
		{Day{ET0: -1, Kc: 1}, "ET0"},
		{Day{ET0: math.NaN(), Kc: 1}, "ET0"},
		{Day{ET0: 5, Kc: 3}, "Kc"},
		{Day{ET0: 5, Kc: 1, Rain: -2}, "Rain"},
		{Day{ET0: 5, Kc: 1, Rain: 2, Runoff: 3}, "Runoff"},
		{Day{ET0: 5, Kc: 1, Irrigation: math.Inf(1)}, "Irrigation"},
		{Day{ET0: 5, Kc: 1, CapillaryRise: -1}, "CapillaryRise"},
	} {
		after, _, err := b.Step(c.d)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != c.field || after != b {
			t.Errorf("%+v: err = %v, want %s and no state change", c.d, err, c.field)
		}
	}
	if _, err := RuntimeMinutes(10, 0); err == nil {
		t.Error("zero application rate accepted")
	}
}

func TestCorrectFromSoilMoisture(t *testing.T) {
	b, _ := NewBalance(RootZone{ThetaFC: 0.25, ThetaWP: 0.12, Depth: 0.6, P: 0.5}, 0.9, 10)
	for _, c := range []struct{ theta, dr float64 }{
		{0.20, 30}, // 1000 · 0.05 · 0.6
		{0.25, 0},  // at field capacity
		{0.31, 0},  // wetter than FC (still draining): clamped to 0
		{0.15, 60}, // 1000 · 0.10 · 0.6
		{0.05, 78}, // drier than the wilting point: clamped to TAW
		{0.1234, 75.96},
	} {
		got, err := b.CorrectFromSoilMoisture(c.theta)
		if err != nil || !near(got.Depletion, c.dr, 1e-9) {
			t.Errorf("θ %.4f: Dr = %v (%v), want %v", c.theta, got.Depletion, err, c.dr)
		}
	}
	if _, err := b.CorrectFromSoilMoisture(23.4); err == nil {
		t.Error("θ in percent accepted")
	}
}
