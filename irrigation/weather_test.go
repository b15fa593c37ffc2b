package irrigation_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation"
)

// farmAt moves the fixture's farm to lon, lat.
func (f *fixture) farmAt(lon, lat float64) {
	f.t.Helper()
	if _, err := f.db.Exec(f.ctx, `UPDATE farms SET location = ST_SetSRID(ST_MakePoint($2, $3), 4326) WHERE id = $1`,
		f.farm, lon, lat); err != nil {
		f.t.Fatal(err)
	}
}

// FAO-56 Example 18 (Uccle, Brussels, 6 July) from a weather station's hourly readings: air
// temperature between 12.3 and 21.5 °C, relative humidity between 63 and 84 %, 10 km/h of wind
// measured at 10 m, 9.25 hours of bright sunshine; 50°48' N, 100 m. The paper's ET0 is 3.9
// mm/day (3.88 before rounding), with u2 = 2.078 m/s and ea = 1.409 kPa.
func TestET0FromStationReadingsReproducesExample18(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Europe/Brussels")
	f.farmAt(4.35, 50.80)
	if _, err := f.store.SetWeatherSettings(f.ctx, irrigation.WeatherSettings{FarmID: f.farm, ElevationM: 100}); err != nil {
		t.Fatal(err)
	}
	station := f.node(0, func(n *fieldnodes.Node) { n.HeightM = ptr(10.0) })
	loc, _ := time.LoadLocation("Europe/Brussels")
	var rs []fieldnodes.Reading
	for h := range 24 {
		at := time.Date(1998, 7, 6, h, 20, 0, 0, loc)
		temp, rh := 17.0, 72.0
		switch h {
		case 5:
			temp, rh = 12.3, 84
		case 15:
			temp, rh = 21.5, 63
		}
		rs = append(rs,
			fieldnodes.Reading{NodeID: station, Metric: "air_temp_c", TS: at, Value: temp},
			fieldnodes.Reading{NodeID: station, Metric: "air_rh_pct", TS: at, Value: rh},
			fieldnodes.Reading{NodeID: station, Metric: "wind_speed_ms", TS: at, Value: 10.0 / 3.6})
		if h >= 6 && h < 15 {
			rs = append(rs, fieldnodes.Reading{NodeID: station, Metric: "sunshine_h", TS: at, Value: 1})
		}
	}
	rs = append(rs, fieldnodes.Reading{NodeID: station, Metric: "sunshine_h", TS: time.Date(1998, 7, 6, 15, 40, 0, 0, loc), Value: 0.25})
	f.insert(rs...)
	f.clock.Set(time.Date(1998, 7, 7, 9, 0, 0, 0, loc))

	w, err := irrigation.NewWeather(f.store, f.nodeStore(), irrigation.WeatherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := w.Day(f.ctx, f.farm, time.Date(1998, 7, 6, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if d.ET0 == nil || math.Round(*d.ET0*10)/10 != 3.9 || math.Abs(*d.ET0-3.88) > 0.005 || d.Method != irrigation.ET0PenmanMonteith || !d.Final {
		t.Fatalf("ET0 = %+v", d)
	}
	if math.Abs(*d.Wind2m-2.078) > 0.001 || *d.Sunshine != 9.25 || *d.RHMax != 84 || *d.RHMin != 63 ||
		math.Abs(d.Terms["actual_vapour_pressure_kpa"]-1.409) > 0.0005 {
		t.Fatalf("day = %+v", d)
	}
	for _, s := range []string{"RHmax and RHmin", "wind adjusted to 2 m", "sunshine hours"} {
		if !strings.Contains(d.Sources, s) {
			t.Errorf("sources %q lack %q", d.Sources, s)
		}
	}
	// Stored: asked again, the same row.
	again, err := w.Days(f.ctx, f.farm, d.Day, d.Day)
	if err != nil || len(again) != 1 || *again[0].ET0 != *d.ET0 || !again[0].ComputedAt.Equal(d.ComputedAt) {
		t.Fatalf("again = %+v, %v", again, err)
	}
}

// FAO-56 Example 19 (N'Diaye, Senegal, 1 October, 14–15 h) from an hour of station readings:
// 38 °C, 52 %, 3.3 m/s at 2 m, 2.450 MJ m⁻² h⁻¹ (680.6 W/m²): ET0 0.63 mm/h. The site is
// 16°13' N 16°15' W and the paper's time zone centre is 15° W, UTC−1.
func TestHourlyET0FromReadingsReproducesExample19(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Etc/GMT+1")
	f.farmAt(-16.25, 16.2167)
	if _, err := f.store.SetWeatherSettings(f.ctx, irrigation.WeatherSettings{FarmID: f.farm, ElevationM: 8}); err != nil {
		t.Fatal(err)
	}
	station := f.node(0)
	loc, _ := time.LoadLocation("Etc/GMT+1")
	at := time.Date(1998, 10, 1, 14, 30, 0, 0, loc)
	f.insert(
		fieldnodes.Reading{NodeID: station, Metric: "air_temp_c", TS: at, Value: 38},
		fieldnodes.Reading{NodeID: station, Metric: "air_rh_pct", TS: at, Value: 52},
		fieldnodes.Reading{NodeID: station, Metric: "wind_speed_ms", TS: at, Value: 3.3},
		fieldnodes.Reading{NodeID: station, Metric: "solar_rad_wm2", TS: at, Value: 2.450e6 / 3600},
	)
	f.clock.Set(time.Date(1998, 10, 2, 12, 0, 0, 0, loc))
	w, err := irrigation.NewWeather(f.store, f.nodeStore(), irrigation.WeatherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	hours, err := w.Hours(f.ctx, f.farm, time.Date(1998, 10, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || len(hours) != 24 {
		t.Fatalf("hours = %d, %v", len(hours), err)
	}
	h := hours[14]
	if h.ET0 == nil || math.Abs(*h.ET0-0.63) > 0.005 || !h.Start.Equal(time.Date(1998, 10, 1, 14, 0, 0, 0, loc)) {
		t.Fatalf("14–15 h = %+v", h)
	}
	if hours[2].ET0 != nil || hours[2].Problem == "" {
		t.Errorf("an hour without readings has a value: %+v", hours[2])
	}
}

// A farm without stations or location says why it has no ET0; rain is the mean of the gauges.
func TestWeatherWithoutData(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	w, err := irrigation.NewWeather(f.store, f.nodeStore(), irrigation.WeatherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := w.Day(f.ctx, f.farm, time.Date(2026, 7, 5, 0, 0, 0, 0, time.UTC))
	if err != nil || d.ET0 != nil || d.Method != irrigation.ET0None || !strings.Contains(d.Sources, "no location") {
		t.Fatalf("no location: %+v, %v", d, err)
	}
	f.locate()
	d, err = w.Day(f.ctx, f.farm, time.Date(2026, 7, 4, 0, 0, 0, 0, time.UTC))
	if err != nil || d.ET0 != nil || !strings.Contains(d.Sources, "no air temperature") {
		t.Fatalf("no station: %+v, %v", d, err)
	}
	g1, g2 := f.node(0), f.node(0)
	f.readings(g1, "rain_mm", 2, 3)
	f.readings(g2, "rain_mm", 4)
	mm, gauges, err := w.Rain(f.ctx, f.farm, t0.Add(-time.Hour), t0.Add(time.Second))
	if err != nil || gauges != 2 || mm != 4.5 {
		t.Fatalf("rain = %v from %d gauges, %v", mm, gauges, err)
	}
	if _, err := f.store.SetWeatherSettings(f.ctx, irrigation.WeatherSettings{FarmID: f.farm, ElevationM: 99999}); err == nil {
		t.Error("an elevation of 99999 m was accepted")
	}
}
