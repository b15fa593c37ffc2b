package agronomy

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestHargreavesByHand(t *testing.T) {
	// Lyon (45°43' N), 15 July, Tmax 26.6, Tmin 14.8 °C (the data of FAO-56 Example 15):
	// Ra = 40.555 MJ m-2 day-1 = 0.408 · 40.555 = 16.546 mm/day;
	// ET0 = 0.0023 · (20.7 + 17.8) · √11.8 · 16.546 = 0.08855 · 3.4351 · 16.546 = 5.033 mm/day.
	r, err := Hargreaves(HargreavesInput{Date: day(2001, time.July, 15), Latitude: dms(45, 43), Tmax: 26.6, Tmin: 14.8})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"Ra", r.Ra, 40.555},
		{"Ra mm", r.RaMM, 16.546},
		{"Tmean", r.Tmean, 20.7},
		{"range", r.TRange, 11.8},
		{"ET0", r.ET0, 5.033},
	} {
		if math.Abs(c.got-c.want) > 0.0015 {
			t.Errorf("%s = %.4f, want %.3f", c.name, c.got, c.want)
		}
	}
	if len(r.Terms()) != 5 {
		t.Errorf("Hargreaves terms: %d", len(r.Terms()))
	}
}

func TestMissingDataProcedures(t *testing.T) {
	base := DailyInput{Date: day(2025, time.July, 6), Latitude: 39.09, Elevation: 600, Tmax: 34, Tmin: 19}
	r, err := PenmanMonteithDaily(base)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ea != SatVapourPressure(19) || r.Humidity != HumidityMissing {
		t.Errorf("missing humidity: ea = %v (%v), want e°(Tmin) = %v", r.Ea, r.Humidity, SatVapourPressure(19))
	}
	if r.U2 != 2 || !r.WindMissing {
		t.Errorf("missing wind: u2 = %v missing = %v, want 2 m/s", r.U2, r.WindMissing)
	}
	if want := 0.16 * math.Sqrt(15) * r.Ra; math.Abs(r.Rs-want) > 1e-12 || r.KRs != 0.16 {
		t.Errorf("missing radiation: Rs = %v kRs = %v, want %v with 0.16", r.Rs, r.KRs, want)
	}
	if r.ET0 < 4 || r.ET0 > 8 {
		t.Errorf("ET0 on a hot July day at Aghali = %.2f mm/day, expected 4–8", r.ET0)
	}

	coastal := base
	coastal.Radiation = TempRange(KRsCoastal)
	rc, err := PenmanMonteithDaily(coastal)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rc.Rs/r.Rs-0.19/0.16) > 1e-12 {
		t.Errorf("coastal kRs: Rs ratio %v", rc.Rs/r.Rs)
	}

	at2 := base
	at2.Wind = WindAt(3.1, 0)
	r2, _ := PenmanMonteithDaily(at2)
	if r2.U2 != 3.1 || r2.WindMissing {
		t.Errorf("wind at the default height: u2 = %v", r2.U2)
	}
	at10 := base
	at10.Wind = WindAt(3.2, 10)
	r10, _ := PenmanMonteithDaily(at10)
	if math.Abs(r10.U2-2.393) > 0.001 {
		t.Errorf("wind at 10 m: u2 = %v, want 2.393", r10.U2)
	}

	// Each humidity route gives the ea of its own equation.
	for _, c := range []struct {
		h    Humidity
		want float64
	}{
		{RHMaxMin(80, 40), VapourPressureFromRHMaxMin(34, 19, 80, 40)},
		{RHMaxOnly(80), VapourPressureFromRHMax(19, 80)},
		{RHMean(55), VapourPressureFromRHMean(34, 19, 55)},
		{DewPoint(12), SatVapourPressure(12)},
		{VapourPressure(1.2), 1.2},
	} {
		in := base
		in.Humidity = c.h
		r, err := PenmanMonteithDaily(in)
		if err != nil {
			t.Fatalf("%v: %v", c.h.Source, err)
		}
		if r.Ea != c.want {
			t.Errorf("%v: ea = %v, want %v", c.h.Source, r.Ea, c.want)
		}
	}
}

func TestPolarDaysStayFinite(t *testing.T) {
	for _, c := range []struct {
		lat  float64
		date time.Time
	}{
		{90, day(2025, time.December, 21)},
		{-90, day(2025, time.December, 21)},
		{78.2, day(2025, time.January, 10)}, // Longyearbyen, polar night: Ra = 0
		{78.2, day(2025, time.June, 21)},    // polar day
	} {
		r, err := PenmanMonteithDaily(DailyInput{Date: c.date, Latitude: c.lat, Tmax: 2, Tmin: -5})
		if err != nil {
			t.Fatalf("lat %v %v: %v", c.lat, c.date, err)
		}
		if !finite(r.ET0) || r.Ra < 0 {
			t.Errorf("lat %v %v: ET0 %v Ra %v", c.lat, c.date, r.ET0, r.Ra)
		}
	}
}

func TestHourAngleEastPositive(t *testing.T) {
	j := day(2025, time.June, 21).YearDay()
	sc := SeasonalCorrection(j)
	// Baku (49.87° E) keeps UTC+4, whose central meridian is 60° E: the site lies 10.13° west of
	// it, so solar noon comes 10.13/15 h after 12:00 on the clock (less the equation of time).
	noon := 12 + (60-49.87)/15 - sc
	if w := HourAngle(noon, 49.87, 4, j); math.Abs(w) > 1e-3 {
		t.Errorf("Baku: ω at solar noon %.3f h = %.4f rad, want 0", noon, w)
	}
	// A western site: Denver-like −105° on UTC−7 sits on its meridian.
	if w := HourAngle(12-sc, -105, -7, j); math.Abs(w) > 1e-3 {
		t.Errorf("−105° on UTC−7: ω = %.4f, want 0", w)
	}
	// The sign matters: one hour after solar noon is +π/12.
	if w := HourAngle(noon+1, 49.87, 4, j); math.Abs(w-math.Pi/12) > 1e-3 {
		t.Errorf("an hour after noon: ω = %.4f, want %.4f", w, math.Pi/12)
	}
	// Far from its zone's meridian solar time wraps past midnight but ω stays in [−π, π].
	if w := HourAngle(23.5, 180, -12, j); w < -math.Pi || w > math.Pi {
		t.Errorf("ω = %v out of range", w)
	}
}

func TestHourlyNightUsesGivenRatio(t *testing.T) {
	in := HourlyInput{Date: day(2025, time.July, 6), Hour: 1, Latitude: 39.09, Longitude: 46.63, UTCOffset: 4,
		Elevation: 600, T: 20, RH: 60, Rs: 0}
	r8, err := PenmanMonteithHourly(in)
	if err != nil {
		t.Fatal(err)
	}
	in.NightRsRso = 0.5
	r5, err := PenmanMonteithHourly(in)
	if err != nil {
		t.Fatal(err)
	}
	if r8.Daytime || r8.RsRso != 0.8 || r5.RsRso != 0.5 {
		t.Errorf("night ratios %v %v (daytime %v)", r8.RsRso, r5.RsRso, r8.Daytime)
	}
	// A cloudier night radiates less: smaller Rnl, so less negative Rn.
	if !(r5.Rnl < r8.Rnl) || r8.G != 0.5*r8.Rn {
		t.Errorf("Rnl %v vs %v, G %v Rn %v", r5.Rnl, r8.Rnl, r8.G, r8.Rn)
	}
	// Midday at Aghali in July is daytime with G = 0.1 Rn.
	in.Hour, in.Rs, in.T = 12, 3.1, 33
	rd, err := PenmanMonteithHourly(in)
	if err != nil {
		t.Fatal(err)
	}
	if !rd.Daytime || rd.G != 0.1*rd.Rn || rd.Ra <= 0 || rd.ET0 < 0.5 || rd.ET0 > 1.2 {
		t.Errorf("midday: daytime %v Ra %v G %v Rn %v ET0 %v", rd.Daytime, rd.Ra, rd.G, rd.Rn, rd.ET0)
	}
}

func TestDailyValidationNamesTheField(t *testing.T) {
	ok := DailyInput{Date: day(2025, time.July, 6), Latitude: 39.09, Elevation: 600, Tmax: 34, Tmin: 19}
	cases := []struct {
		name  string
		edit  func(*DailyInput)
		field string
	}{
		{"no date", func(in *DailyInput) { in.Date = time.Time{} }, "Date"},
		{"latitude", func(in *DailyInput) { in.Latitude = 95 }, "Latitude"},
		{"elevation", func(in *DailyInput) { in.Elevation = 12000 }, "Elevation"},
		{"tmin above tmax", func(in *DailyInput) { in.Tmin = 35 }, "Tmin"},
		{"tmax NaN", func(in *DailyInput) { in.Tmax = math.NaN() }, "Tmax"},
		{"tmin -Inf", func(in *DailyInput) { in.Tmin = math.Inf(-1) }, "Tmin"},
		{"rh max", func(in *DailyInput) { in.Humidity = RHMaxMin(120, 40) }, "Humidity.RHMax"},
		{"rh min above max", func(in *DailyInput) { in.Humidity = RHMaxMin(40, 60) }, "Humidity.RHMin"},
		{"rh mean", func(in *DailyInput) { in.Humidity = RHMean(-3) }, "Humidity.RHMean"},
		{"dew point above tmax", func(in *DailyInput) { in.Humidity = DewPoint(36) }, "Humidity.DewPoint"},
		{"ea above saturation", func(in *DailyInput) { in.Humidity = VapourPressure(9) }, "Humidity.VapourPressure"},
		{"unknown humidity", func(in *DailyInput) { in.Humidity = Humidity{Source: 99} }, "Humidity.Source"},
		{"negative wind", func(in *DailyInput) { in.Wind = WindAt(-1, 2) }, "Wind.Speed"},
		{"anemometer too low", func(in *DailyInput) { in.Wind = WindAt(2, 0.05) }, "Wind.Height"},
		{"sunshine beyond N", func(in *DailyInput) { in.Radiation = Sunshine(16) }, "Radiation.SunshineHours"},
		{"rs in W/m2", func(in *DailyInput) { in.Radiation = MeasuredRs(310) }, "Radiation.Rs"},
		{"krs", func(in *DailyInput) { in.Radiation = TempRange(0.5) }, "Radiation.KRs"},
		{"unknown radiation", func(in *DailyInput) { in.Radiation = Radiation{Source: 7} }, "Radiation.Source"},
		{"soil heat", func(in *DailyInput) { in.SoilHeatFlux = 50 }, "SoilHeatFlux"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := ok
			c.edit(&in)
			_, err := PenmanMonteithDaily(in)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != c.field {
				t.Errorf("err = %v, want an InputError for %s", err, c.field)
			}
		})
	}
	if _, err := PenmanMonteithDaily(ok); err != nil {
		t.Errorf("valid input rejected: %v", err)
	}
	if _, err := Hargreaves(HargreavesInput{Date: ok.Date, Latitude: 39, Tmax: 10, Tmin: 12}); err == nil {
		t.Error("Hargreaves accepted Tmin > Tmax")
	}
}

func TestHourlyValidationNamesTheField(t *testing.T) {
	ok := HourlyInput{Date: day(2025, time.July, 6), Hour: 14, Latitude: 39.09, Longitude: 46.63, UTCOffset: 4,
		Elevation: 600, T: 30, RH: 40, Rs: 2.5}
	cases := []struct {
		edit  func(*HourlyInput)
		field string
	}{
		{func(in *HourlyInput) { in.Hour = 24 }, "Hour"},
		{func(in *HourlyInput) { in.Hour = -1 }, "Hour"},
		{func(in *HourlyInput) { in.Longitude = 200 }, "Longitude"},
		{func(in *HourlyInput) { in.UTCOffset = 15 }, "UTCOffset"},
		{func(in *HourlyInput) { in.RH = 101 }, "RH"},
		{func(in *HourlyInput) { in.T = math.NaN() }, "T"},
		{func(in *HourlyInput) { in.Rs = 850 }, "Rs"},
		{func(in *HourlyInput) { in.NightRsRso = 1.5 }, "NightRsRso"},
		{func(in *HourlyInput) { in.Latitude = -91 }, "Latitude"},
	}
	for _, c := range cases {
		in := ok
		c.edit(&in)
		_, err := PenmanMonteithHourly(in)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("err = %v, want an InputError for %s", err, c.field)
		}
	}
}

func TestTermsAreUniqueAndNamed(t *testing.T) {
	d, _ := PenmanMonteithDaily(DailyInput{Date: day(2025, time.July, 6), Latitude: 39, Tmax: 30, Tmin: 15})
	h, _ := PenmanMonteithHourly(HourlyInput{Date: day(2025, time.July, 6), Hour: 10, Latitude: 39, Longitude: 46.6, UTCOffset: 4, T: 25, RH: 50, Rs: 2})
	for name, terms := range map[string][]Term{"daily": d.Terms(), "hourly": h.Terms()} {
		seen := map[string]bool{}
		for _, tm := range terms {
			if tm.Key == "" || tm.Description == "" || seen[tm.Key] {
				t.Errorf("%s: bad or repeated term %+v", name, tm)
			}
			seen[tm.Key] = true
		}
		if len(seen) < 20 {
			t.Errorf("%s: only %d terms", name, len(seen))
		}
	}
}

// FuzzPenmanMonteithDaily checks that validation stands between any input and the equations:
// no panic, and a nil error always comes with finite numbers.
func FuzzPenmanMonteithDaily(f *testing.F) {
	f.Add(187, 50.8, 100.0, 21.5, 12.3, uint8(1), 84.0, 63.0, 2.78, 10.0, uint8(1), 9.25, 0.0)
	f.Add(105, 13.73, 2.0, 34.8, 25.6, uint8(5), 2.85, 0.0, 2.0, 2.0, uint8(1), 8.5, 0.14)
	f.Add(1, 90.0, 0.0, 0.0, 0.0, uint8(0), 0.0, 0.0, 0.0, 0.0, uint8(0), 0.0, 0.0)
	f.Add(200, -89.9, -400.0, 60.0, -60.0, uint8(4), -60.0, 0.0, 100.0, 0.5, uint8(2), 0.0, -20.0)
	f.Add(366, 39.09, 600.0, 1e308, math.Inf(-1), uint8(9), math.NaN(), 1.0, -0.0, 1e-300, uint8(3), 1e10, 5.0)
	f.Fuzz(func(t *testing.T, doy int, lat, elev, tmax, tmin float64, hs uint8, h1, h2, wind, height float64, rs uint8, r1, g float64) {
		in := DailyInput{
			Date:      time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, ((doy%366)+366)%366),
			Latitude:  lat,
			Elevation: elev,
			Tmax:      tmax,
			Tmin:      tmin,
			Humidity: Humidity{Source: HumiditySource(hs % 7), RHMax: h1, RHMin: h2, RHMean: h1,
				DewPoint: h1, VapourPressure: h1},
			Wind:         Wind{Measured: hs%2 == 0, Speed: wind, Height: height},
			Radiation:    Radiation{Source: RadiationSource(rs % 4), SunshineHours: r1, Rs: r1, KRs: h2},
			SoilHeatFlux: g,
		}
		r, err := PenmanMonteithDaily(in)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		if !finite(r.ET0) {
			t.Fatalf("ET0 %v without error for %+v", r.ET0, in)
		}
		for _, tm := range r.Terms() {
			if !finite(tm.Value) {
				t.Fatalf("%s = %v without error for %+v", tm.Key, tm.Value, in)
			}
		}
		hr, err := Hargreaves(HargreavesInput{Date: in.Date, Latitude: lat, Tmax: tmax, Tmin: tmin})
		if err != nil || !finite(hr.ET0) {
			t.Fatalf("Hargreaves rejected what Penman–Monteith accepted: %v %v", err, hr.ET0)
		}
	})
}

// FuzzPenmanMonteithHourly is the same guarantee for the hourly equation.
func FuzzPenmanMonteithHourly(f *testing.F) {
	f.Add(274, 14, 16.22, -16.25, -1.0, 8.0, 38.0, 52.0, 3.3, 2.0, 2.45, 0.0)
	f.Add(274, 2, 16.22, -16.25, -1.0, 8.0, 28.0, 90.0, 1.9, 2.0, 0.0, 0.8)
	f.Add(172, 0, 90.0, 180.0, -12.0, 9000.0, -60.0, 0.0, 0.0, 0.0, 5.0, 0.3)
	f.Add(1, 30, math.NaN(), 1e9, 99.0, -1.0, math.Inf(1), 200.0, -3.0, 0.01, -1.0, 7.0)
	f.Fuzz(func(t *testing.T, doy, hour int, lat, lon, off, elev, temp, rh, wind, height, rs, night float64) {
		in := HourlyInput{
			Date:       time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, ((doy%366)+366)%366),
			Hour:       hour,
			Latitude:   lat,
			Longitude:  lon,
			UTCOffset:  off,
			Elevation:  elev,
			T:          temp,
			RH:         rh,
			Wind:       Wind{Measured: height != 0, Speed: wind, Height: height},
			Rs:         rs,
			NightRsRso: night,
		}
		r, err := PenmanMonteithHourly(in)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		if !finite(r.ET0) {
			t.Fatalf("ET0 %v without error for %+v", r.ET0, in)
		}
		for _, tm := range r.Terms() {
			if !finite(tm.Value) {
				t.Fatalf("%s = %v without error", tm.Key, tm.Value)
			}
		}
	})
}

func TestInputErrorMessage(t *testing.T) {
	_, err := PenmanMonteithDaily(DailyInput{Date: day(2025, 7, 6), Latitude: 39, Tmax: 20, Tmin: 25})
	if err == nil || err.Error() != "Tmin = 25: above Tmax (20)" {
		t.Errorf("message %q", err)
	}
	_, err = PenmanMonteithDaily(DailyInput{Latitude: 39, Tmax: 30, Tmin: 25})
	if err == nil || err.Error() != "Date: required" {
		t.Errorf("message %q", err)
	}
}
