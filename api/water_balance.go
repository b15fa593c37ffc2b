package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/irrigation"
)

// Handlers of a zone's root-zone water balance (FAO-56 eq. 85), day by day and now.

type balanceDayJSON struct {
	Day             string   `json:"day"`
	ET0             float64  `json:"et0_mm"`
	Kc              float64  `json:"kc"`
	ETc             float64  `json:"etc_mm"`
	Ks              float64  `json:"ks"`
	ETcAdj          float64  `json:"etc_adj_mm"`
	Rain            float64  `json:"rain_mm"`
	EffectiveRain   float64  `json:"effective_rain_mm"`
	Irrigation      float64  `json:"irrigation_mm"`
	NetIrrigation   float64  `json:"net_irrigation_mm"`
	DeepPercolation float64  `json:"deep_percolation_mm"`
	DepletionStart  float64  `json:"depletion_start_mm"`
	Depletion       float64  `json:"depletion_mm"`
	TAW             float64  `json:"taw_mm"`
	RAW             float64  `json:"raw_mm"`
	P               float64  `json:"p"`
	ProbeVWC        *float64 `json:"probe_vwc"`
	ProbeDepletion  *float64 `json:"probe_depletion_mm"`
	ModelDepletion  *float64 `json:"model_depletion_mm"`
	Notes           string   `json:"notes"`
	Final           bool     `json:"final"`
}

func balanceDayOf(d irrigation.BalanceDay) balanceDayJSON {
	r := func(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
	return balanceDayJSON{Day: d.Day.Format(time.DateOnly), ET0: r(d.ET0), Kc: r(d.Kc), ETc: r(d.ETc), Ks: r(d.Ks),
		ETcAdj: r(d.ETcAdj), Rain: r(d.Rain), EffectiveRain: r(d.EffectiveRain), Irrigation: r(d.Irrigation),
		NetIrrigation: r(d.NetIrrigation), DeepPercolation: r(d.DeepPercolation), DepletionStart: r(d.DepletionStart),
		Depletion: r(d.Depletion), TAW: r(d.TAW), RAW: r(d.RAW), P: r(d.P), ProbeVWC: d.ProbeVWC,
		ProbeDepletion: d.ProbeDepletion, ModelDepletion: d.ModelDepletion, Notes: d.Notes, Final: d.Final}
}

type balanceStatusJSON struct {
	At          time.Time `json:"at"`
	Problem     string    `json:"problem"` // why the zone has no balance ("": it has one)
	Crop        string    `json:"crop"`
	Soil        string    `json:"soil"`
	Depletion   float64   `json:"depletion_mm"`
	TAW         float64   `json:"taw_mm"`
	RAW         float64   `json:"raw_mm"`
	Kc          float64   `json:"kc"`
	NeedsWater  bool      `json:"needs_water"`
	NetRefill   float64   `json:"net_refill_mm"`
	GrossRefill float64   `json:"gross_refill_mm"`
	RuntimeS    *int      `json:"runtime_s"` // null: no application rate
}

type balanceJSON struct {
	ZoneID int64             `json:"zone_id"`
	Status balanceStatusJSON `json:"status"`
	Days   []balanceDayJSON  `json:"days"`
}

// zoneWaterBalance: GET /zones/{zone}/water-balance?from=&to= — the balance now and its days,
// the last 14 by default.
func (s *Server) zoneWaterBalance(c echo.Context) error {
	z, farm, err := s.zoneOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(farm.Timezone)
	if err != nil {
		return err
	}
	from, to, err := dayRange(c, s.now(), loc, 13)
	if err != nil {
		return err
	}
	if to.Sub(from) > 400*24*time.Hour {
		return &ValidationError{Field: "from", Problem: "at most 400 days at a time"}
	}
	dec, err := s.decider()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	st, err := dec.Balance.Status(ctx, z.ID, s.now())
	if err != nil {
		return err
	}
	r := func(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
	out := balanceJSON{ZoneID: z.ID, Days: []balanceDayJSON{}, Status: balanceStatusJSON{At: st.At.UTC(), Problem: st.Problem,
		Crop: st.Crop, Soil: st.Soil, Depletion: r(st.Depletion), TAW: r(st.TAW), RAW: r(st.RAW), Kc: r(st.Kc),
		NeedsWater: st.NeedsWater, NetRefill: r(st.NetRefill), GrossRefill: r(st.GrossRefill), RuntimeS: optInt(st.RuntimeS)}}
	if st.Problem == "" {
		days, err := dec.Balance.Days(ctx, z.ID, from, to)
		if err != nil {
			return err
		}
		for _, d := range days {
			out.Days = append(out.Days, balanceDayOf(d))
		}
	}
	return c.JSON(http.StatusOK, out)
}
