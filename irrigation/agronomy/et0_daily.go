package agronomy

import (
	"fmt"
	"math"
	"time"
)

// DailyInput is one day of weather at a site, for PenmanMonteithDaily. Only Date, Latitude,
// Elevation, Tmax and Tmin are required; the zero values of Humidity, Wind and Radiation are
// FAO-56's procedures for missing data.
type DailyInput struct {
	Date         time.Time // only the calendar day is used (its day of year); for monthly data, the 15th
	Latitude     float64   // degrees, north positive
	Elevation    float64   // m above sea level
	Tmax, Tmin   float64   // °C, daily maximum and minimum air temperature at 2 m
	Humidity     Humidity  // zero value: dew point ≈ Tmin
	Wind         Wind      // zero value: 2 m/s at 2 m
	Radiation    Radiation // zero value: from the temperature range, kRs = 0.16
	SoilHeatFlux float64   // G, MJ m⁻² day⁻¹; 0 is FAO-56's daily default (eq. 42)
}

// DailyResult is a daily reference evapotranspiration with every intermediate term.
type DailyResult struct {
	ET0 float64 // mm/day

	DayOfYear   int
	Tmean       float64 // °C (eq. 9)
	Pressure    float64 // P, kPa (eq. 7)
	Gamma       float64 // γ, kPa/°C (eq. 8)
	Delta       float64 // Δ, kPa/°C at Tmean (eq. 13)
	EsTmax      float64 // e°(Tmax), kPa (eq. 11)
	EsTmin      float64 // e°(Tmin), kPa (eq. 11)
	Es          float64 // kPa (eq. 12)
	Ea          float64 // kPa
	VPD         float64 // es − ea, kPa
	Humidity    HumiditySource
	U2          float64 // m/s at 2 m (eq. 47)
	WindMissing bool    // U2 is FAO-56's default

	Dr              float64 // inverse relative Earth–Sun distance (eq. 23)
	Declination     float64 // δ, rad (eq. 24)
	SunsetHourAngle float64 // ωs, rad (eq. 25)
	Ra              float64 // MJ m⁻² day⁻¹ (eq. 21)
	DaylightHours   float64 // N, h (eq. 34)
	Radiation       RadiationSource
	KRs             float64 // the kRs used, when Radiation is RadiationFromTempRange
	Rs              float64 // MJ m⁻² day⁻¹ (eq. 35, eq. 50 or measured)
	Rso             float64 // MJ m⁻² day⁻¹ (eq. 37)
	RsRso           float64 // relative shortwave radiation, limited to [0.3, 1]
	Rns             float64 // MJ m⁻² day⁻¹ (eq. 38)
	SigmaT4         float64 // σ(Tmax,K⁴ + Tmin,K⁴)/2, MJ m⁻² day⁻¹
	Rnl             float64 // MJ m⁻² day⁻¹ (eq. 39)
	Rn              float64 // MJ m⁻² day⁻¹ (eq. 40)
	G               float64 // MJ m⁻² day⁻¹

	RadiationTerm   float64 // 0.408 Δ (Rn − G) / (Δ + γ(1 + 0.34 u2)), mm/day
	AerodynamicTerm float64 // γ 900/(T+273) u2 (es − ea) / (Δ + γ(1 + 0.34 u2)), mm/day
}

// Validation limits, wide enough for any farm on Earth and narrow enough to catch unit mistakes.
const (
	minTemp, maxTemp           = -60.0, 60.0
	minElevation, maxElevation = -500.0, 9000.0
	maxWind                    = 100.0
	minWindHeight              = 0.5
	maxWindHeight              = 100.0
	minKRs, maxKRs             = 0.1, 0.3
	maxDailyG                  = 20.0
)

func validateSite(date time.Time, lat, elevation float64) error {
	if date.IsZero() {
		return &InputError{Field: "Date", Reason: "required"}
	}
	return firstErr(
		check("Latitude", lat, -90, 90, "latitude in degrees"),
		check("Elevation", elevation, minElevation, maxElevation, "elevation in metres"),
	)
}

func validateTemps(tmax, tmin float64) error {
	if err := firstErr(
		check("Tmax", tmax, minTemp, maxTemp, "air temperature in °C"),
		check("Tmin", tmin, minTemp, maxTemp, "air temperature in °C"),
	); err != nil {
		return err
	}
	if tmin > tmax {
		return &InputError{Field: "Tmin", Value: tmin, Reason: fmt.Sprintf("above Tmax (%g)", tmax)}
	}
	return nil
}

func validateWind(w Wind, field string) error {
	if !w.Measured {
		return nil
	}
	if err := check(field+".Speed", w.Speed, 0, maxWind, "wind speed in m/s"); err != nil {
		return err
	}
	if w.Height == 0 {
		return nil
	}
	return check(field+".Height", w.Height, minWindHeight, maxWindHeight, "anemometer height in metres")
}

// windAt2m returns u2 and whether it is FAO-56's default for missing wind.
func windAt2m(w Wind) (float64, bool) {
	if !w.Measured {
		return DefaultWindSpeed, true
	}
	if w.Height == 0 || w.Height == StandardWindHeight {
		return w.Speed, false
	}
	return WindAt2m(w.Speed, w.Height), false
}

func validateRH(field string, v float64) error {
	return check(field, v, 0, 100, "relative humidity in %")
}

// actualVapourPressure returns ea for the day's humidity data.
func actualVapourPressure(h Humidity, tmax, tmin float64) (float64, error) {
	switch h.Source {
	case HumidityMissing:
		return SatVapourPressure(tmin), nil
	case HumidityRHMaxMin:
		if err := firstErr(validateRH("Humidity.RHMax", h.RHMax), validateRH("Humidity.RHMin", h.RHMin)); err != nil {
			return 0, err
		}
		if h.RHMin > h.RHMax {
			return 0, &InputError{Field: "Humidity.RHMin", Value: h.RHMin, Reason: fmt.Sprintf("above RHMax (%g)", h.RHMax)}
		}
		return VapourPressureFromRHMaxMin(tmax, tmin, h.RHMax, h.RHMin), nil
	case HumidityRHMax:
		if err := validateRH("Humidity.RHMax", h.RHMax); err != nil {
			return 0, err
		}
		return VapourPressureFromRHMax(tmin, h.RHMax), nil
	case HumidityRHMean:
		if err := validateRH("Humidity.RHMean", h.RHMean); err != nil {
			return 0, err
		}
		return VapourPressureFromRHMean(tmax, tmin, h.RHMean), nil
	case HumidityDewPoint:
		if err := check("Humidity.DewPoint", h.DewPoint, minTemp, maxTemp, "dew point in °C"); err != nil {
			return 0, err
		}
		if h.DewPoint > tmax {
			return 0, &InputError{Field: "Humidity.DewPoint", Value: h.DewPoint, Reason: fmt.Sprintf("above Tmax (%g): air cannot hold more water than saturation", tmax)}
		}
		return VapourPressureFromDewPoint(h.DewPoint), nil
	case HumidityVapourPressure:
		esMax := SatVapourPressure(tmax)
		if err := check("Humidity.VapourPressure", h.VapourPressure, 0, math.Inf(1), "vapour pressure in kPa"); err != nil {
			return 0, err
		}
		if h.VapourPressure > esMax {
			return 0, &InputError{Field: "Humidity.VapourPressure", Value: h.VapourPressure,
				Reason: fmt.Sprintf("above the saturation vapour pressure at Tmax (%.3f kPa)", esMax)}
		}
		return h.VapourPressure, nil
	}
	return 0, &InputError{Field: "Humidity.Source", Value: float64(h.Source), Reason: "unknown humidity source"}
}

// PenmanMonteithDaily computes the FAO-56 Penman–Monteith reference evapotranspiration for one
// day (eq. 6), following the procedures of FAO-56 chapters 3 and 4 for each term.
func PenmanMonteithDaily(in DailyInput) (DailyResult, error) {
	var r DailyResult
	if err := firstErr(validateSite(in.Date, in.Latitude, in.Elevation), validateTemps(in.Tmax, in.Tmin),
		validateWind(in.Wind, "Wind"),
		check("SoilHeatFlux", in.SoilHeatFlux, -maxDailyG, maxDailyG, "daily soil heat flux in MJ m⁻² day⁻¹")); err != nil {
		return r, err
	}
	ea, err := actualVapourPressure(in.Humidity, in.Tmax, in.Tmin)
	if err != nil {
		return r, err
	}

	r.DayOfYear = in.Date.YearDay()
	r.Tmean = (in.Tmax + in.Tmin) / 2
	r.Pressure = AtmosphericPressure(in.Elevation)
	r.Gamma = PsychrometricConstant(r.Pressure)
	r.Delta = SatVapourSlope(r.Tmean)
	r.EsTmax = SatVapourPressure(in.Tmax)
	r.EsTmin = SatVapourPressure(in.Tmin)
	r.Es = (r.EsTmax + r.EsTmin) / 2
	r.Ea = ea
	r.Humidity = in.Humidity.Source
	// With eq. 17 or 19 ea can exceed es only through rounding; a negative deficit has no meaning.
	r.VPD = math.Max(0, r.Es-r.Ea)
	r.U2, r.WindMissing = windAt2m(in.Wind)

	r.Ra, r.Dr, r.Declination, r.SunsetHourAngle = DailyRa(in.Latitude, r.DayOfYear)
	r.DaylightHours = DaylightHours(r.SunsetHourAngle)
	r.Radiation = in.Radiation.Source
	switch in.Radiation.Source {
	case RadiationFromTempRange:
		r.KRs = in.Radiation.KRs
		if r.KRs == 0 {
			r.KRs = KRsInterior
		}
		if err := check("Radiation.KRs", r.KRs, minKRs, maxKRs, "kRs"); err != nil {
			return DailyResult{}, err
		}
		r.Rs = SolarRadiationFromTempRange(in.Tmax, in.Tmin, r.Ra, r.KRs)
	case RadiationFromSunshine:
		n := in.Radiation.SunshineHours
		if err := check("Radiation.SunshineHours", n, 0, 24, "sunshine hours"); err != nil {
			return DailyResult{}, err
		}
		if n > r.DaylightHours+1e-9 {
			return DailyResult{}, &InputError{Field: "Radiation.SunshineHours", Value: n,
				Reason: fmt.Sprintf("exceeds the day length N = %.2f h at this latitude and date", r.DaylightHours)}
		}
		r.Rs = SolarRadiationAngstrom(n, r.DaylightHours, r.Ra, AngstromA, AngstromB)
	case RadiationMeasured:
		rs := in.Radiation.Rs
		if err := check("Radiation.Rs", rs, 0, math.Inf(1), "solar radiation in MJ m⁻² day⁻¹"); err != nil {
			return DailyResult{}, err
		}
		if rs > r.Ra+1e-9 {
			return DailyResult{}, &InputError{Field: "Radiation.Rs", Value: rs,
				Reason: fmt.Sprintf("exceeds extraterrestrial radiation Ra = %.2f MJ m⁻² day⁻¹ (W/m² given instead of MJ?)", r.Ra)}
		}
		r.Rs = rs
	default:
		return DailyResult{}, &InputError{Field: "Radiation.Source", Value: float64(in.Radiation.Source), Reason: "unknown radiation source"}
	}
	r.Rso = ClearSkyRadiation(r.Ra, in.Elevation)
	r.RsRso = RelativeShortwave(r.Rs, r.Rso, DefaultNightRsRso)
	r.Rns = NetShortwave(r.Rs)
	r.Rnl, r.SigmaT4 = NetLongwaveDaily(in.Tmax, in.Tmin, r.Ea, r.RsRso)
	r.Rn = r.Rns - r.Rnl
	r.G = in.SoilHeatFlux

	den := r.Delta + r.Gamma*(1+0.34*r.U2)
	r.RadiationTerm = mmPerMJ * r.Delta * (r.Rn - r.G) / den
	r.AerodynamicTerm = r.Gamma * 900 / (r.Tmean + 273) * r.U2 * r.VPD / den
	r.ET0 = r.RadiationTerm + r.AerodynamicTerm
	if err := allFinite(r.Terms()); err != nil || !finite(r.ET0) {
		return DailyResult{}, &InputError{Field: "Input", Reason: "the inputs lead to a non-finite result"}
	}
	return r, nil
}

func allFinite(terms []Term) error {
	for _, t := range terms {
		if !finite(t.Value) {
			return fmt.Errorf("%s is not finite", t.Key)
		}
	}
	return nil
}

// Terms lists the intermediate quantities in calculation order.
func (r DailyResult) Terms() []Term {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return []Term{
		{"day_of_year", "J", float64(r.DayOfYear), "day of the year"},
		{"mean_temp_c", "Tmean", r.Tmean, "mean air temperature (eq. 9)"},
		{"atmospheric_pressure_kpa", "P", r.Pressure, "atmospheric pressure (eq. 7)"},
		{"psychrometric_constant_kpa_per_c", "γ", r.Gamma, "psychrometric constant (eq. 8)"},
		{"svp_slope_kpa_per_c", "Δ", r.Delta, "slope of the saturation vapour pressure curve at Tmean (eq. 13)"},
		{"sat_vapour_pressure_tmax_kpa", "e°(Tmax)", r.EsTmax, "saturation vapour pressure at Tmax (eq. 11)"},
		{"sat_vapour_pressure_tmin_kpa", "e°(Tmin)", r.EsTmin, "saturation vapour pressure at Tmin (eq. 11)"},
		{"sat_vapour_pressure_kpa", "es", r.Es, "mean saturation vapour pressure (eq. 12)"},
		{"actual_vapour_pressure_kpa", "ea", r.Ea, "actual vapour pressure from " + r.Humidity.String()},
		{"vapour_pressure_deficit_kpa", "es−ea", r.VPD, "vapour pressure deficit"},
		{"wind_speed_2m_m_per_s", "u2", r.U2, "wind speed at 2 m (eq. 47)"},
		{"wind_assumed", "", b(r.WindMissing), "1 when u2 is the 2 m/s default for missing wind"},
		{"inverse_relative_distance", "dr", r.Dr, "inverse relative Earth–Sun distance (eq. 23)"},
		{"solar_declination_rad", "δ", r.Declination, "solar declination (eq. 24)"},
		{"sunset_hour_angle_rad", "ωs", r.SunsetHourAngle, "sunset hour angle (eq. 25)"},
		{"extraterrestrial_rad_mj_m2_day", "Ra", r.Ra, "extraterrestrial radiation (eq. 21)"},
		{"daylight_hours_h", "N", r.DaylightHours, "maximum possible sunshine duration (eq. 34)"},
		{"solar_rad_mj_m2_day", "Rs", r.Rs, "solar radiation from " + r.Radiation.String()},
		{"clear_sky_rad_mj_m2_day", "Rso", r.Rso, "clear-sky solar radiation (eq. 37)"},
		{"relative_shortwave_ratio", "Rs/Rso", r.RsRso, "relative shortwave radiation, limited to 0.3–1.0"},
		{"net_shortwave_rad_mj_m2_day", "Rns", r.Rns, "net shortwave radiation, albedo 0.23 (eq. 38)"},
		{"sigma_t4_mj_m2_day", "σT⁴", r.SigmaT4, "σ (Tmax,K⁴ + Tmin,K⁴)/2"},
		{"net_longwave_rad_mj_m2_day", "Rnl", r.Rnl, "net outgoing longwave radiation (eq. 39)"},
		{"net_rad_mj_m2_day", "Rn", r.Rn, "net radiation (eq. 40)"},
		{"soil_heat_flux_mj_m2_day", "G", r.G, "soil heat flux"},
		{"radiation_term_mm", "", r.RadiationTerm, "radiation term of eq. 6, mm/day"},
		{"aerodynamic_term_mm", "", r.AerodynamicTerm, "aerodynamic term of eq. 6, mm/day"},
	}
}

// HargreavesInput is what the Hargreaves equation needs.
type HargreavesInput struct {
	Date       time.Time // only the day of year is used
	Latitude   float64   // degrees, north positive
	Tmax, Tmin float64   // °C
}

// HargreavesResult is a Hargreaves reference evapotranspiration with its terms.
type HargreavesResult struct {
	ET0       float64 // mm/day
	DayOfYear int
	Tmean     float64 // °C
	TRange    float64 // Tmax − Tmin, °C
	Ra        float64 // MJ m⁻² day⁻¹
	RaMM      float64 // Ra as evaporation equivalent, mm/day
}

// Hargreaves computes ET0 = 0.0023 (Tmean + 17.8) (Tmax − Tmin)^0.5 Ra (eq. 52), for when only
// air temperature is measured. FAO-56 recommends it only where Penman–Monteith with estimated
// humidity, wind and radiation (PenmanMonteithDaily with those inputs missing) cannot be used.
func Hargreaves(in HargreavesInput) (HargreavesResult, error) {
	var r HargreavesResult
	if err := firstErr(validateSite(in.Date, in.Latitude, 0), validateTemps(in.Tmax, in.Tmin)); err != nil {
		return r, err
	}
	r.DayOfYear = in.Date.YearDay()
	r.Tmean = (in.Tmax + in.Tmin) / 2
	r.TRange = in.Tmax - in.Tmin
	r.Ra, _, _, _ = DailyRa(in.Latitude, r.DayOfYear)
	r.RaMM = mmPerMJ * r.Ra
	r.ET0 = 0.0023 * (r.Tmean + 17.8) * math.Sqrt(r.TRange) * r.RaMM
	return r, nil
}

// Terms lists the intermediate quantities in calculation order.
func (r HargreavesResult) Terms() []Term {
	return []Term{
		{"day_of_year", "J", float64(r.DayOfYear), "day of the year"},
		{"mean_temp_c", "Tmean", r.Tmean, "mean air temperature"},
		{"temp_range_c", "Tmax−Tmin", r.TRange, "daily temperature range"},
		{"extraterrestrial_rad_mj_m2_day", "Ra", r.Ra, "extraterrestrial radiation (eq. 21)"},
		{"extraterrestrial_rad_mm_day", "0.408 Ra", r.RaMM, "extraterrestrial radiation as evaporation equivalent"},
	}
}
