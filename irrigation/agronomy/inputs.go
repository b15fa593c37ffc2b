package agronomy

// HumiditySource says how the actual vapour pressure ea is obtained for a day.
type HumiditySource int

const (
	// HumidityMissing: no humidity data; the dew point is taken equal to Tmin (FAO-56 ch. 3,
	// "missing humidity data", eq. 48). In arid places Tdew can sit 2–3 °C below Tmin, which makes
	// this estimate a little high; pass the dew point when it is known.
	HumidityMissing        HumiditySource = iota
	HumidityRHMaxMin                      // RHmax and RHmin, eq. 17
	HumidityRHMax                         // RHmax only, eq. 18
	HumidityRHMean                        // RHmean, eq. 19
	HumidityDewPoint                      // dew point, eq. 14
	HumidityVapourPressure                // ea measured or computed elsewhere
)

func (s HumiditySource) String() string {
	switch s {
	case HumidityMissing:
		return "missing (dew point = Tmin)"
	case HumidityRHMaxMin:
		return "RHmax and RHmin (eq. 17)"
	case HumidityRHMax:
		return "RHmax (eq. 18)"
	case HumidityRHMean:
		return "RHmean (eq. 19)"
	case HumidityDewPoint:
		return "dew point (eq. 14)"
	case HumidityVapourPressure:
		return "actual vapour pressure given"
	}
	return "unknown"
}

// Humidity is the day's humidity data. Build it with one of RHMaxMin, RHMaxOnly, RHMean,
// DewPoint or VapourPressure; the zero value means "no humidity data".
type Humidity struct {
	Source         HumiditySource
	RHMax, RHMin   float64 // %, for HumidityRHMaxMin and HumidityRHMax
	RHMean         float64 // %, for HumidityRHMean
	DewPoint       float64 // °C, for HumidityDewPoint
	VapourPressure float64 // kPa, for HumidityVapourPressure
}

// RHMaxMin is humidity from the day's maximum and minimum relative humidity in %.
func RHMaxMin(rhMax, rhMin float64) Humidity {
	return Humidity{Source: HumidityRHMaxMin, RHMax: rhMax, RHMin: rhMin}
}

// RHMaxOnly is humidity from the day's maximum relative humidity in %.
func RHMaxOnly(rhMax float64) Humidity { return Humidity{Source: HumidityRHMax, RHMax: rhMax} }

// RHMean is humidity from the day's mean relative humidity in %.
func RHMean(rhMean float64) Humidity { return Humidity{Source: HumidityRHMean, RHMean: rhMean} }

// DewPoint is humidity from the day's dew point in °C.
func DewPoint(tdew float64) Humidity { return Humidity{Source: HumidityDewPoint, DewPoint: tdew} }

// VapourPressure is humidity from the day's actual vapour pressure in kPa.
func VapourPressure(ea float64) Humidity {
	return Humidity{Source: HumidityVapourPressure, VapourPressure: ea}
}

// Wind is a wind measurement. The zero value means "no wind data": FAO-56 then uses 2 m/s at 2 m.
type Wind struct {
	Measured bool
	Speed    float64 // m/s at Height
	Height   float64 // m above the ground; 0 means the standard 2 m
}

// WindAt is a wind speed in m/s measured at height m above the ground.
func WindAt(speed, height float64) Wind { return Wind{Measured: true, Speed: speed, Height: height} }

// RadiationSource says how the day's solar radiation Rs is obtained.
type RadiationSource int

const (
	// RadiationFromTempRange: Rs estimated from Tmax − Tmin (eq. 50); the zero value.
	RadiationFromTempRange RadiationSource = iota
	// RadiationFromSunshine: Rs from actual sunshine hours with the Angström formula (eq. 35).
	RadiationFromSunshine
	// RadiationMeasured: Rs measured by a pyranometer, MJ m⁻² day⁻¹.
	RadiationMeasured
)

func (s RadiationSource) String() string {
	switch s {
	case RadiationFromTempRange:
		return "temperature range (eq. 50)"
	case RadiationFromSunshine:
		return "sunshine hours (eq. 35)"
	case RadiationMeasured:
		return "measured"
	}
	return "unknown"
}

// Radiation is the day's radiation data; the zero value estimates Rs from the temperature range
// with kRs = 0.16.
type Radiation struct {
	Source        RadiationSource
	SunshineHours float64 // n, hours, for RadiationFromSunshine
	Rs            float64 // MJ m⁻² day⁻¹, for RadiationMeasured
	KRs           float64 // for RadiationFromTempRange: 0 means KRsInterior (0.16); KRsCoastal is 0.19
}

// Sunshine is radiation from n hours of bright sunshine.
func Sunshine(hours float64) Radiation {
	return Radiation{Source: RadiationFromSunshine, SunshineHours: hours}
}

// MeasuredRs is radiation measured as rs MJ m⁻² day⁻¹.
func MeasuredRs(rs float64) Radiation { return Radiation{Source: RadiationMeasured, Rs: rs} }

// TempRange is radiation estimated from the temperature range with coefficient kRs (0: 0.16).
func TempRange(kRs float64) Radiation {
	return Radiation{Source: RadiationFromTempRange, KRs: kRs}
}

// Term is one intermediate quantity of a calculation, for display and for audit trails.
type Term struct {
	Key         string  // snake_case with the unit in the name, e.g. "net_radiation_mj_m2_day"
	Symbol      string  // FAO-56 symbol, e.g. "Rn"
	Value       float64 // in the unit named by Key
	Description string  // what it is and which equation gave it
}
