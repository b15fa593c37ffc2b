package profile

import "strings"

// unit is a unit of one dimension: value in the dimension's base unit = v × factor + offset.
type unit struct {
	dim    string
	factor float64
	offset float64
}

// unitOf knows the units devices report in. Names are matched case-sensitively after trimming
// ("mS/cm" is not "ms/cm"); a few spellings of each are accepted.
func unitOf(name string) (unit, bool) {
	switch strings.TrimSpace(name) {
	case "°C", "C", "degC", "celsius":
		return unit{"temperature", 1, 0}, true
	case "°F", "F", "degF", "fahrenheit":
		return unit{"temperature", 5.0 / 9, -32 * 5.0 / 9}, true
	case "K", "kelvin":
		return unit{"temperature", 1, -273.15}, true
	case "m3/m3", "fraction", "ratio":
		return unit{"fraction", 1, 0}, true
	case "%", "percent":
		return unit{"fraction", 0.01, 0}, true
	case "‰", "permille":
		return unit{"fraction", 0.001, 0}, true
	case "V":
		return unit{"voltage", 1, 0}, true
	case "mV":
		return unit{"voltage", 0.001, 0}, true
	case "hPa", "mbar":
		return unit{"pressure", 1, 0}, true
	case "Pa":
		return unit{"pressure", 0.01, 0}, true
	case "kPa":
		return unit{"pressure", 10, 0}, true
	case "bar":
		return unit{"pressure", 1000, 0}, true
	case "inHg":
		return unit{"pressure", 33.8639, 0}, true
	case "mmHg":
		return unit{"pressure", 1.333224, 0}, true
	case "m":
		return unit{"length", 1, 0}, true
	case "cm":
		return unit{"length", 0.01, 0}, true
	case "mm":
		return unit{"length", 0.001, 0}, true
	case "in":
		return unit{"length", 0.0254, 0}, true
	case "ft":
		return unit{"length", 0.3048, 0}, true
	case "m/s":
		return unit{"speed", 1, 0}, true
	case "km/h":
		return unit{"speed", 1 / 3.6, 0}, true
	case "mph":
		return unit{"speed", 0.44704, 0}, true
	case "kn", "knots":
		return unit{"speed", 0.514444, 0}, true
	case "dS/m", "mS/cm":
		return unit{"conductivity", 1, 0}, true
	case "uS/cm", "µS/cm", "μS/cm":
		return unit{"conductivity", 0.001, 0}, true
	case "S/m":
		return unit{"conductivity", 10, 0}, true
	case "mS/m":
		return unit{"conductivity", 0.01, 0}, true
	case "L/min":
		return unit{"flow", 1, 0}, true
	case "L/h":
		return unit{"flow", 1.0 / 60, 0}, true
	case "L/s":
		return unit{"flow", 60, 0}, true
	case "m3/h":
		return unit{"flow", 1000.0 / 60, 0}, true
	case "gal/min", "gpm":
		return unit{"flow", 3.785411784, 0}, true
	case "L":
		return unit{"volume", 1, 0}, true
	case "mL":
		return unit{"volume", 0.001, 0}, true
	case "m3":
		return unit{"volume", 1000, 0}, true
	case "gal":
		return unit{"volume", 3.785411784, 0}, true
	case "W/m2":
		return unit{"irradiance", 1, 0}, true
	case "kW/m2":
		return unit{"irradiance", 1000, 0}, true
	case "°", "deg":
		return unit{"angle", 1, 0}, true
	case "rad":
		return unit{"angle", 57.29577951308232, 0}, true
	case "dBm":
		return unit{"power_level", 1, 0}, true
	case "dB":
		return unit{"ratio_db", 1, 0}, true
	}
	return unit{}, false
}

// MetricUnit is the unit of a contract metric (DESIGN.md); "" for metrics without one and for
// metrics outside the contract.
func MetricUnit(metric string) string {
	switch metric {
	case "soil_vwc":
		return "m3/m3"
	case "soil_temp_c", "air_temp_c", "dew_point_c":
		return "°C"
	case "soil_ec_ds_m":
		return "dS/m"
	case "air_rh_pct", "battery_pct":
		return "%"
	case "wind_speed_ms":
		return "m/s"
	case "wind_dir_deg":
		return "°"
	case "solar_rad_wm2":
		return "W/m2"
	case "rain_mm":
		return "mm"
	case "pressure_hpa":
		return "hPa"
	case "flow_lpm":
		return "L/min"
	case "volume_l":
		return "L"
	case "water_level_m":
		return "m"
	case "battery_v":
		return "V"
	case "rssi_dbm":
		return "dBm"
	case "snr_db":
		return "dB"
	}
	return ""
}

// converter returns the function taking a value in unit from to the unit to.
func converter(from, to string) (func(float64) float64, bool) {
	if from == to {
		return nil, true
	}
	f, ok1 := unitOf(from)
	t, ok2 := unitOf(to)
	if !ok1 || !ok2 || f.dim != t.dim {
		return nil, false
	}
	return func(v float64) float64 { return (v*f.factor + f.offset - t.offset) / t.factor }, true
}

// DefaultRange is the plausible range of a contract metric: a value outside it is kept but
// flagged. ok is false for metrics without one.
func DefaultRange(metric string) (lo, hi float64, ok bool) {
	switch metric {
	case "soil_vwc":
		return 0, 1, true
	case "soil_temp_c":
		return -30, 70, true
	case "soil_ec_ds_m":
		return 0, 25, true
	case "air_temp_c":
		return -60, 65, true
	case "air_rh_pct", "battery_pct":
		return 0, 100, true
	case "dew_point_c":
		return -70, 40, true
	case "wind_speed_ms":
		return 0, 75, true
	case "wind_dir_deg":
		return 0, 360, true
	case "solar_rad_wm2":
		return 0, 1500, true
	case "rain_mm":
		return 0, 500, true
	case "pressure_hpa":
		return 300, 1100, true
	case "flow_lpm":
		return 0, 1e5, true
	case "volume_l":
		return 0, 1e12, true
	case "battery_v":
		return 0, 60, true
	case "rssi_dbm":
		return -160, 0, true
	case "snr_db":
		return -40, 40, true
	}
	return 0, 0, false
}
