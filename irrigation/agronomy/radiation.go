package agronomy

import "math"

// Default radiation coefficients.
const (
	// AngstromA and AngstromB are as and bs of eq. 35, recommended when no local calibration exists.
	AngstromA = 0.25
	AngstromB = 0.50
	// KRsInterior and KRsCoastal are the adjustment coefficients of eq. 50 for interior locations,
	// where land mass dominates, and for coastal ones, where an ocean moderates the air.
	KRsInterior = 0.16
	KRsCoastal  = 0.19
)

// Bounds on the relative shortwave radiation Rs/Rso used in eq. 39. FAO-56 limits the ratio to
// 1.0; the lower bound keeps the cloudiness factor (1.35 Rs/Rso − 0.35) positive, since eq. 35
// never gives Rs below 0.25 Ra = Rso/3 and a smaller measured ratio is sensor noise at low sun.
const (
	minRsRso = 0.3
	maxRsRso = 1.0
)

// DefaultNightRsRso is the Rs/Rso ratio used for hourly periods with the sun below the horizon
// when the caller has none from the hours before sunset: FAO-56 suggests 0.7–0.8 in arid and
// semi-arid climates (the Kura–Araz lowland and the Hakari valley in the growing season) and
// 0.4–0.6 in humid ones. Its own hourly example uses 0.8.
const DefaultNightRsRso = 0.8

// InverseRelativeDistance is dr, the inverse relative Earth–Sun distance on day of year j (eq. 23).
func InverseRelativeDistance(j int) float64 {
	return 1 + 0.033*math.Cos(2*math.Pi/365*float64(j))
}

// SolarDeclination is δ in radians on day of year j (eq. 24).
func SolarDeclination(j int) float64 {
	return 0.409 * math.Sin(2*math.Pi/365*float64(j)-1.39)
}

// SunsetHourAngle is ωs in radians at latitude phi (radians) with declination delta (eq. 25).
// Beyond the polar circles the argument of arccos leaves [−1, 1]; it is clamped, so ωs is 0 in
// polar night (no sunrise) and π in polar day (no sunset).
func SunsetHourAngle(phi, delta float64) float64 {
	x := -math.Tan(phi) * math.Tan(delta)
	return math.Acos(math.Max(-1, math.Min(1, x)))
}

// DailyRa is extraterrestrial radiation Ra in MJ m⁻² day⁻¹ at latitude latDeg (degrees, north
// positive) on day of year j (eq. 21), with the terms it was built from.
func DailyRa(latDeg float64, j int) (ra, dr, delta, omegaS float64) {
	phi := latDeg * math.Pi / 180
	dr = InverseRelativeDistance(j)
	delta = SolarDeclination(j)
	omegaS = SunsetHourAngle(phi, delta)
	ra = 24 * 60 / math.Pi * SolarConstant * dr *
		(omegaS*math.Sin(phi)*math.Sin(delta) + math.Cos(phi)*math.Cos(delta)*math.Sin(omegaS))
	return math.Max(ra, 0), dr, delta, omegaS
}

// DaylightHours is N, the maximum possible duration of sunshine in hours, for sunset hour angle
// omegaS in radians (eq. 34).
func DaylightHours(omegaS float64) float64 { return 24 / math.Pi * omegaS }

// SolarRadiationAngstrom is Rs from actual sunshine hours n and daylight hours N with the
// Angström coefficients as, bs (eq. 35). Ra and the result share units.
func SolarRadiationAngstrom(n, daylight, ra, as, bs float64) float64 {
	if daylight <= 0 {
		return as * ra
	}
	return (as + bs*n/daylight) * ra
}

// SolarRadiationFromTempRange is Rs estimated from the daily temperature range (Hargreaves'
// radiation formula, eq. 50) with adjustment coefficient kRs.
func SolarRadiationFromTempRange(tmax, tmin, ra, kRs float64) float64 {
	return kRs * math.Sqrt(tmax-tmin) * ra
}

// ClearSkyRadiation is Rso for elevation z m (eq. 37); Ra and the result share units.
func ClearSkyRadiation(ra, z float64) float64 { return (0.75 + 2e-5*z) * ra }

// NetShortwave is Rns for the grass reference albedo (eq. 38).
func NetShortwave(rs float64) float64 { return (1 - Albedo) * rs }

// RelativeShortwave is Rs/Rso limited to the range eq. 39 accepts. fallback is returned when
// Rso is zero (the sun does not rise).
func RelativeShortwave(rs, rso, fallback float64) float64 {
	if rso <= 0 {
		return fallback
	}
	return math.Max(minRsRso, math.Min(maxRsRso, rs/rso))
}

// NetLongwaveDaily is Rnl in MJ m⁻² day⁻¹ (eq. 39) from the daily extreme temperatures °C, ea kPa
// and the relative shortwave radiation rsRso; it also returns σ(Tmax,K⁴+Tmin,K⁴)/2.
func NetLongwaveDaily(tmax, tmin, ea, rsRso float64) (rnl, sigmaT4 float64) {
	tx, tn := tmax+kelvin, tmin+kelvin
	sigmaT4 = StefanBoltzmannDaily * (tx*tx*tx*tx + tn*tn*tn*tn) / 2
	return sigmaT4 * (0.34 - 0.14*math.Sqrt(ea)) * (1.35*rsRso - 0.35), sigmaT4
}

// NetLongwaveHourly is Rnl in MJ m⁻² h⁻¹ (eq. 39 with the hourly σ and the hour's mean temperature).
func NetLongwaveHourly(t, ea, rsRso float64) float64 {
	tk := t + kelvin
	return StefanBoltzmannHourly * tk * tk * tk * tk * (0.34 - 0.14*math.Sqrt(ea)) * (1.35*rsRso - 0.35)
}

// SeasonalCorrection is Sc, the equation of time in hours, on day of year j (eqs. 32–33).
func SeasonalCorrection(j int) float64 {
	b := 2 * math.Pi * float64(j-81) / 364
	return 0.1645*math.Sin(2*b) - 0.1255*math.Cos(b) - 0.025*math.Sin(b)
}

// HourAngle is ω in radians at the midpoint tMid (hours, local standard clock time) of a period,
// for a site at longitude lonEast degrees (east positive) whose standard time is utcOffset hours
// ahead of UTC, on day of year j (eq. 31).
//
// FAO-56 writes eq. 31 with Lz and Lm in degrees west of Greenwich: ω = π/12 [(t + 0.06667
// (Lz − Lm) + Sc) − 12]. With east-positive longitudes Lm = −lonEast and Lz = −15·utcOffset, so
// Lz − Lm = lonEast − 15·utcOffset: a site east of its zone's central meridian sees the sun
// earlier, i.e. its solar time runs ahead of the clock.
func HourAngle(tMid, lonEast, utcOffset float64, j int) float64 {
	lzMinusLm := lonEast - 15*utcOffset
	omega := math.Pi / 12 * ((tMid + 0.06667*lzMinusLm + SeasonalCorrection(j)) - 12)
	// A site far from its zone's meridian can push solar time past midnight; fold ω into [−π, π].
	return math.Remainder(omega, 2*math.Pi)
}

// PeriodRa is extraterrestrial radiation in MJ m⁻² for a period of length hours centred on
// hour angle omega (eqs. 28–30), at latitude phi with declination delta and inverse distance dr.
// The period's ends are clipped to sunrise and sunset (±ωs), so Ra is zero while the sun is
// below the horizon.
func PeriodRa(omega, hours, phi, delta, dr float64) float64 {
	omegaS := SunsetHourAngle(phi, delta)
	w1 := math.Max(omega-math.Pi*hours/24, -omegaS)
	w2 := math.Min(omega+math.Pi*hours/24, omegaS)
	if w2 <= w1 {
		return 0
	}
	ra := 12 * 60 / math.Pi * SolarConstant * dr *
		((w2-w1)*math.Sin(phi)*math.Sin(delta) + math.Cos(phi)*math.Cos(delta)*(math.Sin(w2)-math.Sin(w1)))
	return math.Max(ra, 0)
}
