package agronomy

import (
	"errors"
	"math"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestCatalogueMatchesFAO56Tables(t *testing.T) {
	// Values as printed in FAO-56 Tables 11, 12 and 22 (ranges → midpoints, see Source).
	want := []struct {
		name                string
		kcIni, kcMid, kcEnd float64
		h                   float64
		stages              Stages
		zr                  Range
		p                   float64
	}{
		{"cotton", 0.35, 1.18, 0.60, 1.35, Stages{30, 50, 55, 45}, Range{1.0, 1.7}, 0.65},
		{"winter-wheat", 0.7, 1.15, 0.33, 1.0, Stages{30, 140, 40, 30}, Range{1.5, 1.8}, 0.55},
		{"maize", 0.3, 1.20, 0.35, 2.0, Stages{30, 40, 50, 30}, Range{1.0, 1.7}, 0.55},
		{"grapes-table", 0.30, 0.85, 0.45, 2.0, Stages{20, 50, 75, 60}, Range{1.0, 2.0}, 0.35},
		{"grapes-wine", 0.30, 0.70, 0.45, 1.75, Stages{30, 60, 40, 80}, Range{1.0, 2.0}, 0.45},
		{"tomato", 0.6, 1.15, 0.80, 0.6, Stages{30, 40, 45, 30}, Range{0.7, 1.5}, 0.40},
		{"potato", 0.5, 1.15, 0.75, 0.6, Stages{25, 30, 45, 30}, Range{0.4, 0.6}, 0.35},
		{"alfalfa", 0.40, 1.20, 1.15, 0.7, Stages{5, 20, 10, 10}, Range{1.0, 2.0}, 0.55},
		{"pomegranate", 0.45, 0.90, 0.65, 3.0, Stages{30, 50, 130, 30}, Range{1.0, 2.0}, 0.50},
		{"olive", 0.65, 0.70, 0.70, 4.0, Stages{30, 90, 60, 90}, Range{1.2, 1.7}, 0.65},
		{"melon", 0.5, 1.05, 0.75, 0.4, Stages{25, 35, 40, 20}, Range{0.8, 1.5}, 0.40},
		{"watermelon", 0.4, 1.00, 0.75, 0.4, Stages{20, 30, 30, 30}, Range{0.8, 1.5}, 0.40},
		{"vegetables", 0.7, 1.05, 0.95, 0.3, Stages{20, 30, 15, 10}, Range{0.3, 0.5}, 0.30},
	}
	if got := len(Crops()); got != len(want) {
		t.Errorf("catalogue has %d crops, want %d", got, len(want))
	}
	for _, w := range want {
		c, ok := CropByName(w.name)
		if !ok {
			t.Errorf("%s missing", w.name)
			continue
		}
		if c.KcIni != w.kcIni || c.KcMid != w.kcMid || c.KcEnd != w.kcEnd || c.MaxHeight != w.h ||
			c.Stages != w.stages || c.RootDepth != w.zr || c.P != w.p || c.Source == "" || c.Title == "" {
			t.Errorf("%s = %+v", w.name, c)
		}
	}
	if _, ok := CropByName("banana"); ok {
		t.Error("unknown crop found")
	}
	// The catalogue is read only: changing a returned copy does not change it.
	cs := Crops()
	cs[0].KcMid = 9
	if c, _ := CropByName(cs[0].Name); c.KcMid == 9 {
		t.Error("Crops() exposes the catalogue")
	}
}

func TestKcCurve(t *testing.T) {
	cotton, _ := CropByName("cotton") // stages 30/50/55/45, Kc 0.35 → 1.18 → 0.60
	for _, c := range []struct {
		day   int
		kc    float64
		stage Stage
	}{
		{-3, 0.35, StageInitial},
		{0, 0.35, StageInitial},
		{30, 0.35, StageInitial},
		{55, 0.35 + 25.0/50*(1.18-0.35), StageDevelopment}, // 0.765
		{80, 1.18, StageDevelopment},                       // end of development reaches Kc mid
		{100, 1.18, StageMid},
		{135, 1.18, StageMid},
		{157, 1.18 + 22.0/45*(0.60-1.18), StageLate}, // 0.8964
		{180, 0.60, StageLate},
		{200, 0.60, StageAfterHarvest},
	} {
		if got := cotton.Kc(c.day); !near(got, c.kc, 1e-12) {
			t.Errorf("Kc(%d) = %.4f, want %.4f", c.day, got, c.kc)
		}
		if got := cotton.StageOn(c.day); got != c.stage {
			t.Errorf("stage(%d) = %v, want %v", c.day, got, c.stage)
		}
	}
	if !near(cotton.Kc(55), 0.765, 1e-9) || !near(cotton.Kc(157), 0.89644, 1e-5) {
		t.Error("hand values")
	}
}

func TestAdjustForClimate(t *testing.T) {
	tomato, _ := CropByName("tomato") // h = 0.6 m
	// u2 = 3 m/s, RHmin = 30 %: [0.04·1 − 0.004·(−15)]·(0.6/3)^0.3 = 0.10 · 0.61703 = 0.06170.
	a := tomato.AdjustForClimate(3, 30)
	if !near(a.KcMid, 1.15+0.06170, 5e-5) || !near(a.KcEnd, 0.80+0.06170, 5e-5) || a.KcIni != tomato.KcIni {
		t.Errorf("tomato adjusted: %+v", a)
	}
	// Maize dried in the field (Kc end 0.35 < 0.45) keeps its Kc end.
	maize, _ := CropByName("maize")
	if m := maize.AdjustForClimate(4, 25); m.KcEnd != 0.35 || m.KcMid <= maize.KcMid {
		t.Errorf("maize adjusted: %+v", m)
	}
	// Inputs beyond FAO-56's ranges are clamped: 10 m/s counts as 6.
	if a, b := tomato.AdjustForClimate(10, 45), tomato.AdjustForClimate(6, 45); a.KcMid != b.KcMid {
		t.Errorf("u2 not clamped: %v vs %v", a.KcMid, b.KcMid)
	}
	// The reference climate changes nothing.
	if r := tomato.AdjustForClimate(2, 45); r != tomato {
		t.Errorf("reference climate changed Kc: %+v", r)
	}
}

func TestSoilCatalogue(t *testing.T) {
	// FAO-56 Table 19: θFC, θWP and (θFC − θWP) ranges in m³/m³, REW and TEW (Ze = 0.10 m) in mm.
	want := []Soil{
		{"sand", "", Range{0.07, 0.17}, Range{0.02, 0.07}, Range{0.05, 0.11}, Range{2, 7}, Range{6, 12}},
		{"loamy-sand", "", Range{0.11, 0.19}, Range{0.03, 0.10}, Range{0.06, 0.12}, Range{4, 8}, Range{9, 14}},
		{"sandy-loam", "", Range{0.18, 0.28}, Range{0.06, 0.16}, Range{0.11, 0.15}, Range{6, 10}, Range{15, 20}},
		{"loam", "", Range{0.20, 0.30}, Range{0.07, 0.17}, Range{0.13, 0.18}, Range{8, 10}, Range{16, 22}},
		{"silt-loam", "", Range{0.22, 0.36}, Range{0.09, 0.21}, Range{0.13, 0.19}, Range{9, 11}, Range{18, 25}},
		{"silt", "", Range{0.28, 0.36}, Range{0.12, 0.22}, Range{0.16, 0.20}, Range{8, 11}, Range{22, 26}},
		{"silty-clay-loam", "", Range{0.30, 0.37}, Range{0.17, 0.24}, Range{0.13, 0.18}, Range{8, 11}, Range{22, 27}},
		{"silty-clay", "", Range{0.30, 0.42}, Range{0.17, 0.29}, Range{0.13, 0.19}, Range{8, 12}, Range{22, 28}},
		{"clay", "", Range{0.32, 0.40}, Range{0.20, 0.24}, Range{0.12, 0.20}, Range{8, 12}, Range{22, 29}},
	}
	if len(Soils()) != len(want) {
		t.Fatalf("%d soils", len(Soils()))
	}
	for _, w := range want {
		s, ok := SoilByName(w.Name)
		w.Title = s.Title
		if !ok || s != w || s.Title == "" {
			t.Errorf("%s = %+v", w.Name, s)
		}
		// The representative pair stays a plausible soil: FC above WP, and its available water
		// within a few hundredths of the table's own (θFC − θWP) range.
		aw := s.ThetaFC() - s.ThetaWP()
		if aw <= 0 || aw < w.AvailableWater.Min-0.02 || aw > w.AvailableWater.Max+0.02 {
			t.Errorf("%s: representative θFC − θWP = %.3f outside %v", w.Name, aw, w.AvailableWater)
		}
	}
	loam, _ := SoilByName("loam")
	if !near(loam.ThetaFC(), 0.25, 1e-12) || !near(loam.ThetaWP(), 0.12, 1e-12) {
		t.Errorf("loam midpoints %v %v", loam.ThetaFC(), loam.ThetaWP())
	}
	if _, ok := SoilByName("peat"); ok {
		t.Error("unknown soil found")
	}
}

func TestTAWRAWKs(t *testing.T) {
	// Loam midpoints under tomato at the midpoint of its root range: 1000 · 0.13 · 1.1 = 143 mm.
	tomato, _ := CropByName("tomato")
	loam, _ := SoilByName("loam")
	z := ZoneFor(tomato, loam)
	if !near(z.TAW(), 143, 1e-9) || z.P != 0.40 || !near(RAW(z.P, z.TAW()), 57.2, 1e-9) {
		t.Errorf("zone %+v TAW %v", z, z.TAW())
	}
	for _, c := range []struct{ p, etc, want float64 }{
		{0.55, 5, 0.55},
		{0.55, 10, 0.35},  // 0.55 + 0.04·(−5)
		{0.55, 0, 0.75},   // 0.55 + 0.20
		{0.65, 0, 0.80},   // 0.85 limited to 0.8
		{0.20, 10, 0.10},  // 0.00 limited to 0.1
		{0.40, 7.5, 0.30}, // 0.40 − 0.10
	} {
		if got := AdjustP(c.p, c.etc); !near(got, c.want, 1e-12) {
			t.Errorf("AdjustP(%v, %v) = %v, want %v", c.p, c.etc, got, c.want)
		}
	}
	for _, c := range []struct{ dr, want float64 }{{0, 1}, {50, 1}, {75, 0.5}, {90, 0.2}, {100, 0}, {130, 0}} {
		if got := Ks(c.dr, 100, 50); !near(got, c.want, 1e-12) {
			t.Errorf("Ks(%v) = %v, want %v", c.dr, got, c.want)
		}
	}
}

func TestNewBalanceValidation(t *testing.T) {
	good := RootZone{ThetaFC: 0.25, ThetaWP: 0.12, Depth: 0.6, P: 0.5}
	for _, c := range []struct {
		zone  RootZone
		eff   float64
		dr    float64
		field string
	}{
		{RootZone{ThetaFC: 0.1, ThetaWP: 0.2, Depth: 0.6, P: 0.5}, 0.9, 0, "ThetaFC"},
		{RootZone{ThetaFC: 0.25, ThetaWP: 0.12, Depth: 0, P: 0.5}, 0.9, 0, "Depth"},
		{RootZone{ThetaFC: 0.25, ThetaWP: 0.12, Depth: 0.6, P: 1.2}, 0.9, 0, "P"},
		{good, 0, 0, "Efficiency"},
		{good, 1.5, 0, "Efficiency"},
		{good, 0.9, 100, "Depletion"},
		{good, 0.9, -1, "Depletion"},
	} {
		_, err := NewBalance(c.zone, c.eff, c.dr)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%+v: err = %v, want %s", c, err, c.field)
		}
	}
}
