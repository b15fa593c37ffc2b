package profile

import "sort"

// Names of the built-in profiles.
const (
	Native            = "native"
	Cayenne           = "cayenne"
	Object            = "object"
	AghaliSoilLPP     = "aghali-soil-lpp"
	AghaliWeatherLPP  = "aghali-weather-lpp"
	DraginoLSE01      = "dragino-lse01"
	DraginoLHT65      = "dragino-lht65"
	MilesightEM500SMT = "milesight-em500-smt"
	SenseCAPS2105     = "sensecap-s2105"
)

// Builtin returns the built-in profile called name, compiled.
func Builtin(name string) (*Compiled, bool) {
	p, ok := builtin(name)
	if !ok {
		return nil, false
	}
	c, err := p.Compile()
	if err != nil {
		panic("profile: built-in " + name + " is invalid: " + err.Error()) // a programming error, caught by the tests
	}
	return c, true
}

// Builtins returns every built-in profile, by name.
func Builtins() []*Compiled {
	names := []string{Native, Cayenne, Object, AghaliSoilLPP, AghaliWeatherLPP, DraginoLSE01, DraginoLHT65, MilesightEM500SMT, SenseCAPS2105}
	sort.Strings(names)
	out := make([]*Compiled, 0, len(names))
	for _, n := range names {
		c, _ := Builtin(n)
		out = append(out, c)
	}
	return out
}

func f(v float64) *float64 { return &v }

// builtin is the table of built-in profiles. Vendors' field names are those their published
// payload decoders emit (as decoded objects on the network server).
func builtin(name string) (Profile, bool) {
	var p Profile
	switch name {
	case Native:
		p = Profile{Description: "Aghali's native payloads: the JSON object or a SenML pack, metric names as sent (docs/mqtt.md).",
			Decoder: DecoderNative, ExpectedIntervalS: 900}
	case Cayenne:
		p = Profile{Description: "Any Cayenne LPP device: values kept as <type>_<channel> (temperature_3) until a profile of its own maps them.",
			Decoder: DecoderCayenne, ExpectedIntervalS: 900}
	case Object:
		p = Profile{Description: "Any device the network server decodes: each field of its decoded object kept under its own name (soil.vwc → soil_vwc).",
			Decoder: DecoderObject, ExpectedIntervalS: 900}
	case AghaliSoilLPP:
		// The Aghali reference soil probe: a TDR-style sensor reporting apparent permittivity ε
		// on analog input 1; Topp et al. (1980) turn it into volumetric water content.
		p = Profile{Description: "Aghali reference soil probe (Cayenne LPP): permittivity → soil_vwc by the Topp equation, temperature, EC, battery; 30 cm deep.",
			Decoder: DecoderCayenne, ExpectedIntervalS: 900, DepthM: f(0.3), BatteryLowV: f(3.4),
			Map: map[string]Rule{
				"analog_input_1": {Metric: "soil_vwc", Calibration: &Calibration{Poly: []float64{-5.3e-2, 2.92e-2, -5.5e-4, 4.3e-6}}},
				"temperature_2":  {Metric: "soil_temp_c"},
				"analog_input_3": {Metric: "soil_ec_ds_m", Unit: "mS/cm"},
				"percentage_4":   {Metric: "battery_pct"},
				"voltage_5":      {Metric: "battery_v"},
			}}
	case AghaliWeatherLPP:
		p = Profile{Description: "Aghali reference weather station (Cayenne LPP): air temperature and humidity, pressure, wind (km/h) at 2 m, direction, rain, solar radiation, battery.",
			Decoder: DecoderCayenne, ExpectedIntervalS: 600, HeightM: f(2),
			Map: map[string]Rule{
				"temperature_1":  {Metric: "air_temp_c"},
				"humidity_2":     {Metric: "air_rh_pct"},
				"barometer_3":    {Metric: "pressure_hpa"},
				"analog_input_4": {Metric: "wind_speed_ms", Unit: "km/h"},
				"direction_5":    {Metric: "wind_dir_deg"},
				"analog_input_6": {Metric: "rain_mm"},
				"analog_input_7": {Metric: "solar_rad_wm2", Calibration: &Calibration{Linear: &Linear{Scale: 10}}},
				"voltage_8":      {Metric: "battery_v"},
			}}
	case DraginoLSE01:
		p = Profile{Description: "Dragino LSE01 soil moisture, temperature and EC sensor, through the network server's decoder (water_SOIL %, temp_SOIL °C, conduct_SOIL µS/cm, Bat V); reports every 20 minutes.",
			Decoder: DecoderObject, Unmapped: UnmappedDrop, ExpectedIntervalS: 1200, BatteryLowV: f(3.1),
			Map: map[string]Rule{
				"water_SOIL":   {Metric: "soil_vwc", Unit: "%"},
				"temp_SOIL":    {Metric: "soil_temp_c"},
				"conduct_SOIL": {Metric: "soil_ec_ds_m", Unit: "µS/cm"},
				"Bat":          {Metric: "battery_v"},
				"BatV":         {Metric: "battery_v"},
			}}
	case DraginoLHT65:
		p = Profile{Description: "Dragino LHT65 temperature and humidity sensor (TempC_SHT, Hum_SHT, BatV), external probe kept as tempc_ds; reports every 20 minutes.",
			Decoder: DecoderObject, ExpectedIntervalS: 1200, BatteryLowV: f(2.6), HeightM: f(1.5),
			Map: map[string]Rule{
				"TempC_SHT":  {Metric: "air_temp_c"},
				"Hum_SHT":    {Metric: "air_rh_pct"},
				"BatV":       {Metric: "battery_v"},
				"Ext_sensor": {Metric: ""},
			}}
	case MilesightEM500SMT:
		p = Profile{Description: "Milesight EM500-SMT soil moisture, temperature and EC sensor (moisture %, temperature °C, conductivity µS/cm, battery %); reports every 10 minutes.",
			Decoder: DecoderObject, Unmapped: UnmappedDrop, ExpectedIntervalS: 600,
			Map: map[string]Rule{
				"moisture":     {Metric: "soil_vwc", Unit: "%"},
				"temperature":  {Metric: "soil_temp_c"},
				"conductivity": {Metric: "soil_ec_ds_m", Unit: "µS/cm"},
				"battery":      {Metric: "battery_pct"},
			}}
	case SenseCAPS2105:
		p = Profile{Description: "Seeed SenseCAP S2105 soil moisture, temperature and EC sensor, through a decoder giving soil_moisture %, soil_temperature °C, soil_ec dS/m, battery %; reports hourly.",
			Decoder: DecoderObject, Unmapped: UnmappedDrop, ExpectedIntervalS: 3600,
			Map: map[string]Rule{
				"soil_moisture":    {Metric: "soil_vwc", Unit: "%"},
				"soil_temperature": {Metric: "soil_temp_c"},
				"soil_ec":          {Metric: "soil_ec_ds_m"},
				"battery":          {Metric: "battery_pct"},
			}}
	default:
		return Profile{}, false
	}
	p.Name, p.BuiltIn = name, true
	return p, true
}
