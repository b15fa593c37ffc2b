package agronomy

import (
	"math"
	"time"
)

// HourlyInput is one hour of weather at a site, for PenmanMonteithHourly.
type HourlyInput struct {
	Date       time.Time // calendar day in local standard time (its day of year is used)
	Hour       int       // start of the hour, 0–23, local standard time (no daylight saving)
	Latitude   float64   // degrees, north positive
	Longitude  float64   // degrees, east positive
	UTCOffset  float64   // hours that local standard time is ahead of UTC (Azerbaijan: 4)
	Elevation  float64   // m above sea level
	T          float64   // mean air temperature of the hour, °C
	RH         float64   // mean relative humidity of the hour, %
	Wind       Wind      // zero value: 2 m/s at 2 m
	Rs         float64   // solar radiation of the hour, MJ m⁻² h⁻¹
	NightRsRso float64   // Rs/Rso to use while the sun is down; 0 means DefaultNightRsRso (0.8)
}

// HourlyResult is an hourly reference evapotranspiration with every intermediate term.
type HourlyResult struct {
	ET0 float64 // mm/hour

	DayOfYear          int
	Pressure           float64 // kPa (eq. 7)
	Gamma              float64 // kPa/°C (eq. 8)
	Delta              float64 // kPa/°C at T (eq. 13)
	Es                 float64 // e°(T), kPa (eq. 11)
	Ea                 float64 // e°(T) RH/100, kPa (eq. 54)
	VPD                float64 // kPa
	U2                 float64 // m/s at 2 m
	WindMissing        bool
	Dr                 float64 // (eq. 23)
	Declination        float64 // rad (eq. 24)
	SeasonalCorrection float64 // Sc, h (eq. 32)
	HourAngle          float64 // ω at the midpoint of the hour, rad (eq. 31)
	SunsetHourAngle    float64 // ωs, rad (eq. 25)
	Daytime            bool    // the sun is above the horizon at the midpoint of the hour
	Ra                 float64 // MJ m⁻² h⁻¹ (eq. 28)
	Rs                 float64 // MJ m⁻² h⁻¹
	Rso                float64 // MJ m⁻² h⁻¹ (eq. 37)
	RsRso              float64 // measured by day, NightRsRso by night
	Rns                float64 // MJ m⁻² h⁻¹ (eq. 38)
	Rnl                float64 // MJ m⁻² h⁻¹ (eq. 39, hourly σ)
	Rn                 float64 // MJ m⁻² h⁻¹
	G                  float64 // 0.1 Rn by day, 0.5 Rn by night (eqs. 45–46), MJ m⁻² h⁻¹
	RadiationTerm      float64 // mm/hour
	AerodynamicTerm    float64 // mm/hour
}

// maxHourlyRs is the solar constant over an hour at perihelion (Gsc · 60 · 1.033); no surface
// receives more, so a larger value is a unit mistake (W/m² for MJ m⁻² h⁻¹).
const maxHourlyRs = SolarConstant * 60 * 1.033

// PenmanMonteithHourly computes the FAO-56 hourly Penman–Monteith reference evapotranspiration
// (eq. 53) for the hour starting at in.Hour.
//
// When the sun is below the horizon at the middle of the hour, Rs/Rso is undefined; FAO-56 takes
// the ratio of the period 2–3 hours before sunset and holds it through the night. Callers with a
// stream of hours pass that ratio (the RsRso of an earlier result) as NightRsRso; otherwise
// DefaultNightRsRso is used.
func PenmanMonteithHourly(in HourlyInput) (HourlyResult, error) {
	var r HourlyResult
	if err := firstErr(
		validateSite(in.Date, in.Latitude, in.Elevation),
		check("Longitude", in.Longitude, -180, 180, "longitude in degrees"),
		check("UTCOffset", in.UTCOffset, -12, 14, "UTC offset in hours"),
		check("T", in.T, minTemp, maxTemp, "air temperature in °C"),
		validateRH("RH", in.RH),
		validateWind(in.Wind, "Wind"),
		check("Rs", in.Rs, 0, maxHourlyRs, "hourly solar radiation in MJ m⁻² h⁻¹"),
	); err != nil {
		return r, err
	}
	if in.Hour < 0 || in.Hour > 23 {
		return r, &InputError{Field: "Hour", Value: float64(in.Hour), Reason: "hour must be between 0 and 23"}
	}
	night := in.NightRsRso
	if night == 0 {
		night = DefaultNightRsRso
	}
	if err := check("NightRsRso", night, minRsRso, maxRsRso, "night-time Rs/Rso"); err != nil {
		return r, err
	}

	r.DayOfYear = in.Date.YearDay()
	r.Pressure = AtmosphericPressure(in.Elevation)
	r.Gamma = PsychrometricConstant(r.Pressure)
	r.Delta = SatVapourSlope(in.T)
	r.Es = SatVapourPressure(in.T)
	r.Ea = r.Es * in.RH / 100
	r.VPD = r.Es - r.Ea
	r.U2, r.WindMissing = windAt2m(in.Wind)

	phi := in.Latitude * math.Pi / 180
	r.Dr = InverseRelativeDistance(r.DayOfYear)
	r.Declination = SolarDeclination(r.DayOfYear)
	r.SeasonalCorrection = SeasonalCorrection(r.DayOfYear)
	r.HourAngle = HourAngle(float64(in.Hour)+0.5, in.Longitude, in.UTCOffset, r.DayOfYear)
	r.SunsetHourAngle = SunsetHourAngle(phi, r.Declination)
	r.Daytime = math.Abs(r.HourAngle) < r.SunsetHourAngle
	r.Ra = PeriodRa(r.HourAngle, 1, phi, r.Declination, r.Dr)
	r.Rs = in.Rs
	r.Rso = ClearSkyRadiation(r.Ra, in.Elevation)
	if r.Daytime {
		r.RsRso = RelativeShortwave(r.Rs, r.Rso, night)
	} else {
		r.RsRso = night
	}
	r.Rns = NetShortwave(r.Rs)
	r.Rnl = NetLongwaveHourly(in.T, r.Ea, r.RsRso)
	r.Rn = r.Rns - r.Rnl
	if r.Daytime {
		r.G = 0.1 * r.Rn
	} else {
		r.G = 0.5 * r.Rn
	}

	den := r.Delta + r.Gamma*(1+0.34*r.U2)
	r.RadiationTerm = mmPerMJ * r.Delta * (r.Rn - r.G) / den
	r.AerodynamicTerm = r.Gamma * 37 / (in.T + 273) * r.U2 * r.VPD / den
	r.ET0 = r.RadiationTerm + r.AerodynamicTerm
	if err := allFinite(r.Terms()); err != nil || !finite(r.ET0) {
		return HourlyResult{}, &InputError{Field: "Input", Reason: "the inputs lead to a non-finite result"}
	}
	return r, nil
}

// Terms lists the intermediate quantities in calculation order.
func (r HourlyResult) Terms() []Term {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return []Term{
		{"day_of_year", "J", float64(r.DayOfYear), "day of the year"},
		{"atmospheric_pressure_kpa", "P", r.Pressure, "atmospheric pressure (eq. 7)"},
		{"psychrometric_constant_kpa_per_c", "γ", r.Gamma, "psychrometric constant (eq. 8)"},
		{"svp_slope_kpa_per_c", "Δ", r.Delta, "slope of the saturation vapour pressure curve at T (eq. 13)"},
		{"sat_vapour_pressure_kpa", "e°(T)", r.Es, "saturation vapour pressure (eq. 11)"},
		{"actual_vapour_pressure_kpa", "ea", r.Ea, "actual vapour pressure (eq. 54)"},
		{"vapour_pressure_deficit_kpa", "e°−ea", r.VPD, "vapour pressure deficit"},
		{"wind_speed_2m_m_per_s", "u2", r.U2, "wind speed at 2 m (eq. 47)"},
		{"wind_assumed", "", b(r.WindMissing), "1 when u2 is the 2 m/s default for missing wind"},
		{"inverse_relative_distance", "dr", r.Dr, "inverse relative Earth–Sun distance (eq. 23)"},
		{"solar_declination_rad", "δ", r.Declination, "solar declination (eq. 24)"},
		{"seasonal_correction_h", "Sc", r.SeasonalCorrection, "seasonal correction for solar time (eq. 32)"},
		{"hour_angle_rad", "ω", r.HourAngle, "solar time angle at the midpoint of the hour (eq. 31)"},
		{"sunset_hour_angle_rad", "ωs", r.SunsetHourAngle, "sunset hour angle (eq. 25)"},
		{"daytime", "", b(r.Daytime), "1 when the sun is above the horizon at the midpoint"},
		{"extraterrestrial_rad_mj_m2_hour", "Ra", r.Ra, "extraterrestrial radiation of the hour (eq. 28)"},
		{"solar_rad_mj_m2_hour", "Rs", r.Rs, "solar radiation of the hour"},
		{"clear_sky_rad_mj_m2_hour", "Rso", r.Rso, "clear-sky solar radiation (eq. 37)"},
		{"relative_shortwave_ratio", "Rs/Rso", r.RsRso, "relative shortwave radiation (night: held from before sunset)"},
		{"net_shortwave_rad_mj_m2_hour", "Rns", r.Rns, "net shortwave radiation (eq. 38)"},
		{"net_longwave_rad_mj_m2_hour", "Rnl", r.Rnl, "net outgoing longwave radiation (eq. 39)"},
		{"net_rad_mj_m2_hour", "Rn", r.Rn, "net radiation (eq. 40)"},
		{"soil_heat_flux_mj_m2_hour", "G", r.G, "soil heat flux, 0.1 Rn by day, 0.5 Rn by night (eqs. 45–46)"},
		{"radiation_term_mm", "", r.RadiationTerm, "radiation term of eq. 53, mm/hour"},
		{"aerodynamic_term_mm", "", r.AerodynamicTerm, "aerodynamic term of eq. 53, mm/hour"},
	}
}
