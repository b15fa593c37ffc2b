package devicesim

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

type node struct {
	sim     *Sim
	spec    Node
	rng     *rand.Rand
	link    *mqttlink.Link
	battery float64
}

func (n *node) connect(ctx context.Context) error {
	l, err := n.sim.link(n.spec.UID, n.spec.Secret)
	if err != nil {
		return err
	}
	if err := l.Start(ctx); err != nil {
		return err
	}
	n.link = l
	n.battery = 3.55 + n.rng.Float64()*0.1
	return nil
}

func (n *node) run(ctx context.Context) {
	every := n.sim.cfg.ReportEvery
	// Spread the first reports over one interval so the fleet does not publish in lockstep.
	wait := time.Duration(n.rng.Float64() * float64(every))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		n.report(ctx)
		wait = time.Duration(float64(every) * (0.9 + 0.2*n.rng.Float64()))
	}
}

type nativeUp struct {
	TS       time.Time          `json:"ts"`
	Readings map[string]float64 `json:"readings"`
	BatteryV float64            `json:"battery_v"`
	RSSI     float64            `json:"rssi"`
}

func (n *node) report(ctx context.Context) {
	now := n.sim.cfg.Now().UTC().Truncate(time.Millisecond)
	local := now.In(n.sim.cfg.Location)
	h := float64(local.Hour()) + float64(local.Minute())/60
	day := math.Sin(math.Pi * (h - 9) / 12) // −1 before dawn … +1 mid-afternoon
	up := nativeUp{TS: now, Readings: map[string]float64{}, RSSI: math.Round(-70 - 25*n.rng.Float64())}
	switch n.spec.Kind {
	case "soil":
		vwc := n.sim.soils[n.spec.Zone].at(now) + n.rng.NormFloat64()*0.002
		up.Readings["soil_vwc"] = round(vwc, 4)
		up.Readings["soil_temp_c"] = round(21+4*day+n.rng.NormFloat64()*0.2, 2)
		up.Readings["soil_ec_ds_m"] = round(0.9+vwc*1.2+n.rng.NormFloat64()*0.02, 3)
	case "weather":
		temp := 25 + 8*day + n.rng.NormFloat64()*0.3
		up.Readings["air_temp_c"] = round(temp, 2)
		up.Readings["air_rh_pct"] = round(math.Min(98, 55-25*day+n.rng.NormFloat64()), 1)
		up.Readings["wind_speed_ms"] = round(math.Max(0, 2.2+1.2*day+n.rng.NormFloat64()*0.5), 2)
		up.Readings["wind_dir_deg"] = math.Round(math.Mod(300+n.rng.NormFloat64()*30+360, 360))
		up.Readings["solar_rad_wm2"] = round(math.Max(0, 900*math.Sin(math.Pi*(h-6)/14)), 1)
		up.Readings["pressure_hpa"] = round(955+n.rng.NormFloat64()*0.5, 1)
		up.Readings["rain_mm"] = 0
	}
	n.battery = math.Max(3.3, n.battery-0.00002)
	up.BatteryV = round(n.battery, 3)
	payload, _ := json.Marshal(up)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := n.link.Publish(pctx, n.sim.cfg.Prefix+"/nodes/"+n.spec.UID+"/up", 1, false, payload); err != nil && ctx.Err() == nil {
		n.sim.log.Warn("simulated node could not publish", "node", n.spec.UID, "err", err)
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
