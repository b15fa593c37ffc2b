package agronomy

import (
	"math"
	"testing"
	"time"
)

// printed asserts that got agrees with a value printed in FAO-56 to the paper's precision:
// within half a unit of the last printed digit. slackUnits widens that by whole units of the
// last digit where the paper carries rounded intermediates into the next step; every such case
// says why beside the call.
func printed(t *testing.T, what string, got, want float64, decimals int, slackUnits ...float64) {
	t.Helper()
	unit := math.Pow(10, -float64(decimals))
	tol := unit/2 + 1e-9
	for _, s := range slackUnits {
		tol += s * unit
	}
	if !(math.Abs(got-want) <= tol) {
		t.Errorf("%s = %.*f (%.6g), FAO-56 prints %.*f", what, decimals+2, got, got, decimals, want)
	}
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func dms(deg, min float64) float64 { return deg + min/60 }

// Example 2: atmospheric pressure and psychrometric constant at 1800 m.
func TestFAO56Example2Atmosphere(t *testing.T) {
	p := AtmosphericPressure(1800)
	printed(t, "P (kPa)", p, 81.8, 1)
	printed(t, "γ (kPa/°C)", PsychrometricConstant(p), 0.054, 3)
}

// Examples 3–6: vapour pressures.
func TestFAO56Examples3to6VapourPressure(t *testing.T) {
	// Example 3: Tmax 24.5 °C, Tmin 15 °C.
	printed(t, "Ex3 e°(24.5)", SatVapourPressure(24.5), 3.075, 3)
	printed(t, "Ex3 e°(15)", SatVapourPressure(15), 1.705, 3)
	printed(t, "Ex3 es", MeanSatVapourPressure(24.5, 15), 2.39, 2)

	// Example 4: psychrometer, Tdry 20 °C, Twet 16 °C, 1200 m, ventilated (Asmann).
	p := AtmosphericPressure(1200)
	printed(t, "Ex4 P", p, 87.9, 1)
	printed(t, "Ex4 γpsy", PsychrometerVentilated*p, 0.0582, 4)
	// Exact arithmetic gives 1.8183 − 0.0582·4 = 1.585, on the rounding boundary; the paper works
	// from rounded intermediates, so one unit of the last digit is allowed.
	printed(t, "Ex4 ea", VapourPressureFromPsychrometer(20, 16, p, PsychrometerVentilated), 1.58, 2, 1)

	// Example 5: Tmin 18, Tmax 25 °C, RHmax 82 %, RHmin 54 %.
	printed(t, "Ex5 e°(18)", SatVapourPressure(18), 2.064, 3)
	printed(t, "Ex5 e°(25)", SatVapourPressure(25), 3.168, 3)
	printed(t, "Ex5 ea (eq. 17)", VapourPressureFromRHMaxMin(25, 18, 82, 54), 1.70, 2)
	printed(t, "Ex5 ea (eq. 18)", VapourPressureFromRHMax(18, 82), 1.69, 2)
	printed(t, "Ex5 ea (eq. 19, RHmean 68)", VapourPressureFromRHMean(25, 18, 68), 1.78, 2)

	// Example 6: vapour pressure deficit for the data of Example 5.
	printed(t, "Ex6 es", MeanSatVapourPressure(25, 18), 2.616, 3)
	printed(t, "Ex6 es − ea", MeanSatVapourPressure(25, 18)-VapourPressureFromRHMaxMin(25, 18, 82, 54), 0.91, 2)
}

// Example 8 and 9: Ra and N at 20° S on 3 September.
func TestFAO56Example8and9Ra(t *testing.T) {
	j := day(2001, time.September, 3).YearDay()
	if j != 246 {
		t.Fatalf("J = %d, FAO-56 uses 246", j)
	}
	ra, dr, delta, ws := DailyRa(-20, j)
	printed(t, "dr", dr, 0.985, 3)
	printed(t, "δ (rad)", delta, 0.120, 3)
	printed(t, "ωs (rad)", ws, 1.527, 3)
	printed(t, "Ra (MJ m-2 day-1)", ra, 32.2, 1)
	printed(t, "Ra (mm/day)", ra*mmPerMJ, 13.1, 1)
	printed(t, "Ex9 N (h)", DaylightHours(ws), 11.7, 1)
}

// Examples 10–12: Rio de Janeiro (22°54' S), 15 May, 220 h of sunshine in May; Rnl and Rn with
// Tmax 25.1, Tmin 19.1 °C, ea 2.1 kPa (sea level, Rso = 0.75 Ra).
func TestFAO56Examples10to12Radiation(t *testing.T) {
	lat := -dms(22, 54)
	j := day(2001, time.May, 15).YearDay()
	ra, _, _, ws := DailyRa(lat, j)
	n := DaylightHours(ws)
	printed(t, "Ex10 Ra", ra, 25.1, 1)
	printed(t, "Ex10 N", n, 10.9, 1)
	sun := 220.0 / 31
	printed(t, "Ex10 n", sun, 7.1, 1)
	rs := SolarRadiationAngstrom(sun, n, ra, AngstromA, AngstromB)
	printed(t, "Ex10 Rs", rs, 14.5, 1)

	rso := ClearSkyRadiation(ra, 0)
	printed(t, "Ex11 Rso", rso, 18.8, 1)
	ratio := RelativeShortwave(rs, rso, 0)
	printed(t, "Ex11 Rs/Rso", ratio, 0.77, 2)
	rnl, sigmaT4 := NetLongwaveDaily(25.1, 19.1, 2.1, ratio)
	printed(t, "Ex11 σT⁴ mean", sigmaT4, 37.3, 1)
	printed(t, "Ex11 Rnl", rnl, 3.5, 1)

	rns := NetShortwave(rs)
	printed(t, "Ex12 Rns", rns, 11.1, 1)
	printed(t, "Ex12 Rn", rns-rnl, 7.6, 1)
	printed(t, "Ex12 Rn (mm/day)", (rns-rnl)*mmPerMJ, 3.1, 1)
}

// Example 13: monthly soil heat flux, March 14.1 °C, April 16.1 °C, May 18.8 °C.
func TestFAO56Example13SoilHeatFlux(t *testing.T) {
	printed(t, "G April (eq. 43)", SoilHeatFluxMonthly(14.1, 18.8), 0.33, 2)
	printed(t, "G April (eq. 44)", SoilHeatFluxMonthlyNoNext(14.1, 16.1), 0.28, 2)
}

// Example 14: 3.2 m/s measured at 10 m.
func TestFAO56Example14Wind(t *testing.T) {
	printed(t, "u2", WindAt2m(3.2, 10), 2.4, 1)
}

// Example 15: Rs from the temperature range, Lyon (45°43' N, 200 m), 15 July, Tmax 26.6, Tmin 14.8 °C.
func TestFAO56Example15RsFromTemperature(t *testing.T) {
	ra, _, _, _ := DailyRa(dms(45, 43), day(2001, time.July, 15).YearDay())
	printed(t, "Ra", ra, 40.6, 1)
	printed(t, "Rs", SolarRadiationFromTempRange(26.6, 14.8, ra, KRsInterior), 22.3, 1)
}

// Example 17: monthly data, Bangkok (13°44' N, 2 m), April: Tmax 34.8, Tmin 25.6 °C, ea 2.85 kPa,
// u2 2 m/s, 8.5 h sunshine; mean air temperature March 29.2 °C, April 30.2 °C (G by eq. 44).
func TestFAO56Example17MonthlyBangkok(t *testing.T) {
	r, err := PenmanMonteithDaily(DailyInput{
		Date:         day(2001, time.April, 15),
		Latitude:     dms(13, 44),
		Elevation:    2,
		Tmax:         34.8,
		Tmin:         25.6,
		Humidity:     VapourPressure(2.85),
		Wind:         WindAt(2, 2),
		Radiation:    Sunshine(8.5),
		SoilHeatFlux: SoilHeatFluxMonthlyNoNext(29.2, 30.2),
	})
	if err != nil {
		t.Fatal(err)
	}
	printed(t, "Tmean", r.Tmean, 30.2, 1)
	printed(t, "Δ", r.Delta, 0.246, 3)
	printed(t, "P", r.Pressure, 101.3, 1)
	// The paper rounds P to 101.3 kPa before γ = 0.665e-3·P = 0.06736; from the unrounded P at
	// 2 m, γ = 0.06735, half a unit away.
	printed(t, "γ", r.Gamma, 0.0674, 4, 1)
	printed(t, "e°(Tmax)", r.EsTmax, 5.56, 2)
	printed(t, "e°(Tmin)", r.EsTmin, 3.28, 2)
	printed(t, "es", r.Es, 4.42, 2)
	printed(t, "es − ea", r.VPD, 1.57, 2)
	printed(t, "Ra", r.Ra, 38.06, 2)
	printed(t, "N", r.DaylightHours, 12.31, 2)
	printed(t, "Rs", r.Rs, 22.65, 2)
	printed(t, "Rso", r.Rso, 28.54, 2)
	printed(t, "Rns", r.Rns, 17.44, 2)
	printed(t, "Rnl", r.Rnl, 3.11, 2)
	printed(t, "Rn", r.Rn, 14.33, 2)
	printed(t, "G", r.G, 0.14, 2)
	printed(t, "ET0 (mm/day)", r.ET0, 5.72, 2)
}

// Example 18: daily data, Uccle/Brussels (50°48' N, 100 m), 6 July: Tmax 21.5, Tmin 12.3 °C,
// RHmax 84 %, RHmin 63 %, wind 10 km/h at 10 m, 9.25 h of sunshine.
func TestFAO56Example18DailyUccle(t *testing.T) {
	r, err := PenmanMonteithDaily(DailyInput{
		Date:      day(2001, time.July, 6),
		Latitude:  dms(50, 48),
		Elevation: 100,
		Tmax:      21.5,
		Tmin:      12.3,
		Humidity:  RHMaxMin(84, 63),
		Wind:      WindAt(10.0/3.6, 10),
		Radiation: Sunshine(9.25),
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.DayOfYear != 187 {
		t.Errorf("J = %d, FAO-56 uses 187", r.DayOfYear)
	}
	printed(t, "Tmean", r.Tmean, 16.9, 1)
	printed(t, "Δ", r.Delta, 0.122, 3)
	printed(t, "P", r.Pressure, 100.1, 1)
	printed(t, "γ", r.Gamma, 0.0666, 4)
	printed(t, "u2", r.U2, 2.078, 3)
	printed(t, "e°(Tmax)", r.EsTmax, 2.564, 3)
	printed(t, "e°(Tmin)", r.EsTmin, 1.431, 3)
	printed(t, "es", r.Es, 1.997, 3)
	printed(t, "ea", r.Ea, 1.409, 3)
	printed(t, "es − ea", r.VPD, 0.589, 3)
	printed(t, "dr", r.Dr, 0.967, 3)
	printed(t, "ωs", r.SunsetHourAngle, 2.11, 2)
	printed(t, "Ra", r.Ra, 41.09, 2)
	printed(t, "N", r.DaylightHours, 16.1, 1)
	printed(t, "Rs", r.Rs, 22.07, 2)
	printed(t, "Rso", r.Rso, 30.90, 2)
	printed(t, "Rs/Rso", r.RsRso, 0.71, 2)
	// The paper multiplies the rounded Rs: 0.77 · 22.07 = 16.99; unrounded, 16.9955.
	printed(t, "Rns", r.Rns, 16.99, 2, 1)
	printed(t, "Rnl", r.Rnl, 3.71, 2)
	printed(t, "Rn", r.Rn, 13.28, 2)
	printed(t, "G", r.G, 0, 0)
	printed(t, "ET0 (mm/day)", r.ET0, 3.9, 1)
}

// Example 19: hourly data, N'Diaye, Senegal (16°13' N, 16°15' W, 8 m), 1 October.
// FAO-56 takes the centre of the time zone as Lz = 15° west, i.e. a UTC offset of −1 h.
func TestFAO56Example19HourlyNDiaye(t *testing.T) {
	base := HourlyInput{
		Date:      day(2001, time.October, 1),
		Latitude:  dms(16, 13),
		Longitude: -dms(16, 15),
		UTCOffset: -1,
		Elevation: 8,
	}

	t.Run("14-15h", func(t *testing.T) {
		in := base
		in.Hour, in.T, in.RH, in.Wind, in.Rs = 14, 38, 52, WindAt(3.3, 2), 2.450
		r, err := PenmanMonteithHourly(in)
		if err != nil {
			t.Fatal(err)
		}
		if r.DayOfYear != 274 || !r.Daytime {
			t.Errorf("J = %d daytime = %v, want 274 true", r.DayOfYear, r.Daytime)
		}
		printed(t, "e°(T)", r.Es, 6.625, 3)
		printed(t, "ea", r.Ea, 3.445, 3)
		printed(t, "Δ", r.Delta, 0.358, 3)
		printed(t, "P", r.Pressure, 101.2, 1)
		printed(t, "γ", r.Gamma, 0.0673, 4)
		printed(t, "Sc", r.SeasonalCorrection, 0.1889, 4)
		printed(t, "ω", r.HourAngle, 0.682, 3)
		printed(t, "Ra", r.Ra, 3.543, 3)
		printed(t, "Rso", r.Rso, 2.658, 3)
		printed(t, "Rs/Rso", r.RsRso, 0.922, 3)
		printed(t, "Rns", r.Rns, 1.887, 3)
		printed(t, "Rnl", r.Rnl, 0.137, 3)
		printed(t, "Rn", r.Rn, 1.749, 3)
		printed(t, "G", r.G, 0.175, 3)
		printed(t, "ET0 (mm/hour)", r.ET0, 0.63, 2)
	})

	t.Run("02-03h", func(t *testing.T) {
		in := base
		in.Hour, in.T, in.RH, in.Wind, in.Rs = 2, 28, 90, WindAt(1.9, 2), 0
		r, err := PenmanMonteithHourly(in)
		if err != nil {
			t.Fatal(err)
		}
		if r.Daytime {
			t.Error("02–03 h is daytime")
		}
		printed(t, "e°(T)", r.Es, 3.780, 3)
		printed(t, "ea", r.Ea, 3.402, 3)
		printed(t, "Δ", r.Delta, 0.220, 3)
		printed(t, "Ra", r.Ra, 0, 3)
		printed(t, "Rs/Rso (night)", r.RsRso, 0.8, 1)
		printed(t, "Rnl", r.Rnl, 0.100, 3)
		printed(t, "Rn", r.Rn, -0.100, 3)
		printed(t, "G", r.G, -0.050, 3)
		printed(t, "ET0 (mm/hour)", r.ET0, 0.0, 1)
	})
}
