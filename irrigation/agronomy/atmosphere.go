package agronomy

import "math"

// Physical constants of FAO-56 chapter 3.
const (
	// LatentHeat is λ, the latent heat of vaporisation, MJ/kg; 1/λ = 0.408 converts MJ m⁻² to mm.
	LatentHeat = 2.45
	// mmPerMJ is 1/λ as FAO-56 rounds it in eqs. 6, 52 and 53.
	mmPerMJ = 0.408
	// SolarConstant is Gsc, MJ m⁻² min⁻¹ (eq. 21).
	SolarConstant = 0.0820
	// StefanBoltzmannDaily is σ in MJ K⁻⁴ m⁻² day⁻¹ (eq. 39).
	StefanBoltzmannDaily = 4.903e-9
	// StefanBoltzmannHourly is σ in MJ K⁻⁴ m⁻² h⁻¹ (σ/24, as FAO-56 uses with eq. 39 hourly).
	StefanBoltzmannHourly = 2.043e-10
	// Albedo is α of the grass reference crop (eq. 38).
	Albedo = 0.23
	// DefaultWindSpeed is the world average u2 that FAO-56 prescribes when wind is missing, m/s.
	DefaultWindSpeed = 2.0
	// StandardWindHeight is the reference measurement height of u2, m.
	StandardWindHeight = 2.0
	kelvin             = 273.16 // FAO-56 uses 273.16 for TK in eq. 39 and 273 in eqs. 6 and 53
)

// Psychrometer coefficients apsy of eq. 16, °C⁻¹.
const (
	PsychrometerVentilated = 0.000662 // Asmann type, air movement about 5 m/s
	PsychrometerNatural    = 0.000800 // naturally ventilated, about 1 m/s
	PsychrometerIndoor     = 0.001200 // not ventilated, installed indoors
)

// AtmosphericPressure is P in kPa at elevation z metres above sea level (eq. 7).
func AtmosphericPressure(z float64) float64 {
	return 101.3 * math.Pow((293-0.0065*z)/293, 5.26)
}

// PsychrometricConstant is γ in kPa/°C for atmospheric pressure p in kPa (eq. 8).
func PsychrometricConstant(p float64) float64 {
	return 0.665e-3 * p
}

// SatVapourPressure is e°(T), the saturation vapour pressure in kPa at air temperature t °C (eq. 11).
func SatVapourPressure(t float64) float64 {
	return 0.6108 * math.Exp(17.27*t/(t+237.3))
}

// MeanSatVapourPressure is es in kPa, the mean of e°(Tmax) and e°(Tmin) (eq. 12). Using
// e°(Tmean) instead would underestimate es because e°(T) is convex.
func MeanSatVapourPressure(tmax, tmin float64) float64 {
	return (SatVapourPressure(tmax) + SatVapourPressure(tmin)) / 2
}

// SatVapourSlope is Δ, the slope of the saturation vapour pressure curve in kPa/°C at t °C (eq. 13).
func SatVapourSlope(t float64) float64 {
	return 4098 * SatVapourPressure(t) / ((t + 237.3) * (t + 237.3))
}

// VapourPressureFromDewPoint is ea in kPa from the dew point tdew °C (eq. 14).
func VapourPressureFromDewPoint(tdew float64) float64 { return SatVapourPressure(tdew) }

// VapourPressureFromPsychrometer is ea in kPa from dry- and wet-bulb temperatures °C, atmospheric
// pressure p kPa and the psychrometer coefficient apsy (eqs. 15–16).
func VapourPressureFromPsychrometer(tdry, twet, p, apsy float64) float64 {
	return SatVapourPressure(twet) - apsy*p*(tdry-twet)
}

// VapourPressureFromRHMaxMin is ea in kPa from daily extreme relative humidities in % (eq. 17).
func VapourPressureFromRHMaxMin(tmax, tmin, rhMax, rhMin float64) float64 {
	return (SatVapourPressure(tmin)*rhMax/100 + SatVapourPressure(tmax)*rhMin/100) / 2
}

// VapourPressureFromRHMax is ea in kPa from RHmax alone (eq. 18), the better choice when RHmin
// is unreliable (cheap sensors drift most at low humidity).
func VapourPressureFromRHMax(tmin, rhMax float64) float64 {
	return SatVapourPressure(tmin) * rhMax / 100
}

// VapourPressureFromRHMean is ea in kPa from the mean relative humidity in % (eq. 19), the least
// accurate of the humidity routes.
func VapourPressureFromRHMean(tmax, tmin, rhMean float64) float64 {
	return rhMean / 100 * MeanSatVapourPressure(tmax, tmin)
}

// WindAt2m converts wind speed uz m/s measured at height z m above the ground to u2, the speed
// at 2 m over grass (eq. 47).
func WindAt2m(uz, z float64) float64 {
	return uz * 4.87 / math.Log(67.8*z-5.42)
}

// SoilHeatFluxMonthly is G for month i in MJ m⁻² day⁻¹ from the mean air temperatures °C of the
// previous and next months (eq. 43).
func SoilHeatFluxMonthly(tPrev, tNext float64) float64 {
	return 0.07 * (tNext - tPrev)
}

// SoilHeatFluxMonthlyNoNext is G for month i from the current and previous months' mean air
// temperatures, for when the next month is not yet known (eq. 44).
func SoilHeatFluxMonthlyNoNext(tPrev, tCur float64) float64 {
	return 0.14 * (tCur - tPrev)
}
