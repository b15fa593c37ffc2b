package irrigation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/irrigation/agronomy"
)

// BalanceConfig tunes a WaterBalance. Zero values mean the defaults.
type BalanceConfig struct {
	// MaxHistory is how far back a zone's balance starts when nothing is stored for it yet (or
	// its planting date, if later); the root zone is taken to be at field capacity then.
	// Default 60 days.
	MaxHistory time.Duration
	// ProbeWeight is how far a day's soil-moisture measurement pulls the modelled depletion
	// towards the measured one (0–1; docs/agronomy.md). Default 0.5.
	ProbeWeight float64
	// StaleAfter: today's provisional balance is recomputed when older than this (or when a
	// run started since). Default 15 min.
	StaleAfter time.Duration
}

// WaterBalance keeps each zone's daily root-zone water balance (FAO-56 eq. 85) from the farm's
// ET0, rain, the irrigation the zone received and its soil-moisture probes, and says when a
// zone needs water and how much.
type WaterBalance struct {
	store    *Store
	readings Readings
	weather  *Weather
	cfg      BalanceConfig
}

// NewWaterBalance returns a WaterBalance.
func NewWaterBalance(store *Store, readings Readings, weather *Weather, cfg BalanceConfig) (*WaterBalance, error) {
	if store == nil || readings == nil || weather == nil {
		return nil, errors.New("irrigation: NewWaterBalance needs a store, readings and weather")
	}
	if cfg.MaxHistory <= 0 {
		cfg.MaxHistory = 60 * 24 * time.Hour
	}
	if cfg.ProbeWeight == 0 {
		cfg.ProbeWeight = 0.5
	}
	if cfg.ProbeWeight < 0 || cfg.ProbeWeight > 1 {
		return nil, fmt.Errorf("irrigation: ProbeWeight %g is not between 0 and 1", cfg.ProbeWeight)
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 15 * time.Minute
	}
	return &WaterBalance{store: store, readings: readings, weather: weather, cfg: cfg}, nil
}

// BalanceDay is one day of a zone's water balance, depths in mm.
type BalanceDay struct {
	ZoneID          int64
	Day             time.Time // local calendar day, midnight UTC
	ET0             float64
	Kc              float64
	ETc             float64
	Ks              float64
	ETcAdj          float64
	Rain            float64
	EffectiveRain   float64
	Irrigation      float64 // gross depth applied
	NetIrrigation   float64
	DeepPercolation float64
	DepletionStart  float64
	Depletion       float64
	TAW             float64
	RAW             float64
	P               float64
	// ProbeVWC is the soil moisture that corrected the day, ProbeDepletion the depletion it
	// implies and ModelDepletion the depletion before the correction (nil: no correction).
	ProbeVWC       *float64
	ProbeDepletion *float64
	ModelDepletion *float64
	Notes          string
	Final          bool // the day is over; a day in progress counts what happened so far
	ComputedAt     time.Time
}

// BalanceStatus is a zone's water balance now.
type BalanceStatus struct {
	ZoneID int64
	At     time.Time
	// Problem says why the zone has no balance (no crop, unknown soil, no location, ...); the
	// other fields are then zero.
	Problem    string
	Crop, Soil string
	Depletion  float64 // Dr now, mm
	TAW, RAW   float64
	P          float64
	Kc         float64
	ET0Today   float64
	ETcToday   float64
	NeedsWater bool // Dr ≥ RAW
	// NetRefill brings the root zone back to field capacity; GrossRefill is what to apply for
	// it; RuntimeS how long the zone's emitters take (0: no application rate).
	NetRefill   float64
	GrossRefill float64
	RuntimeS    int
	Efficiency  float64
	Today       *BalanceDay
}

// zoneAgronomy is a zone's crop and root zone for the balance.
type zoneAgronomy struct {
	crop agronomy.Crop
	root agronomy.RootZone
	soil string
}

// agronomy resolves the zone's crop and root zone; problem says what is missing.
func (z *zoneContext) agronomy() (zoneAgronomy, string) {
	var a zoneAgronomy
	if strings.TrimSpace(z.crop) == "" {
		return a, "the zone has no crop"
	}
	crop, ok := agronomy.CropByName(strings.ToLower(strings.TrimSpace(z.crop)))
	if !ok {
		return a, fmt.Sprintf("crop %q is not in the catalogue (GET /crops)", z.crop)
	}
	a.crop = crop
	a.soil = strings.ToLower(strings.TrimSpace(z.soil))
	fc, wp := z.thetaFC, z.thetaWP
	if fc == nil || wp == nil {
		soil, ok := agronomy.SoilByName(a.soil)
		if !ok {
			if a.soil == "" {
				return a, "the zone has no soil (or theta_fc and theta_wp)"
			}
			return a, fmt.Sprintf("soil %q is not in the catalogue (GET /soils)", z.soil)
		}
		if fc == nil {
			fc = ptr(soil.ThetaFC())
		}
		if wp == nil {
			wp = ptr(soil.ThetaWP())
		}
	}
	if *fc <= *wp {
		return a, fmt.Sprintf("field capacity %g is not above the wilting point %g", *fc, *wp)
	}
	depth := crop.RootDepth.Mid()
	if z.rootDepth != nil {
		depth = *z.rootDepth
	}
	a.root = agronomy.RootZone{ThetaFC: *fc, ThetaWP: *wp, Depth: depth, P: crop.P}
	return a, ""
}

// kcOn is the crop coefficient on a day: the Kc curve from the planting date (before it, Kc
// ini, as for bare soil; without one, Kc mid, as for an established perennial), with Kc mid and
// Kc end adjusted for the day's wind and minimum humidity when known (FAO-56 eq. 62).
func (a zoneAgronomy) kcOn(z *zoneContext, day time.Time, e ET0Day) float64 {
	crop := a.crop
	if e.Wind2m != nil && e.RHMin != nil {
		crop = crop.AdjustForClimate(*e.Wind2m, *e.RHMin)
	}
	if z.plantingDate == nil {
		return crop.KcMid
	}
	p := *z.plantingDate
	planted := time.Date(p.Year(), p.Month(), p.Day(), 0, 0, 0, 0, time.UTC)
	i := int(math.Round(day.Sub(planted).Hours() / 24))
	if i < 0 {
		return crop.KcIni
	}
	return crop.Kc(i + 1)
}

const balanceColumns = `zone_id, day, et0_mm, kc, etc_mm, ks, etc_adj_mm, rain_mm, effective_rain_mm, irrigation_mm,
	net_irrigation_mm, deep_percolation_mm, depletion_start_mm, depletion_mm, taw_mm, raw_mm, p, probe_vwc,
	probe_depletion_mm, model_depletion_mm, notes, final, computed_at`

func scanBalanceDay(row pgx.Row) (BalanceDay, error) {
	var d BalanceDay
	err := row.Scan(&d.ZoneID, &d.Day, &d.ET0, &d.Kc, &d.ETc, &d.Ks, &d.ETcAdj, &d.Rain, &d.EffectiveRain, &d.Irrigation,
		&d.NetIrrigation, &d.DeepPercolation, &d.DepletionStart, &d.Depletion, &d.TAW, &d.RAW, &d.P, &d.ProbeVWC,
		&d.ProbeDepletion, &d.ModelDepletion, &d.Notes, &d.Final, &d.ComputedAt)
	d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
	return d, err
}

func (b *WaterBalance) storedDays(ctx context.Context, zoneID int64, from, to time.Time) ([]BalanceDay, error) {
	rows, err := b.store.db.Query(ctx, `SELECT `+balanceColumns+` FROM zone_water_balance
		WHERE zone_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day`, zoneID, from, to)
	if err != nil {
		return nil, interpretError(err, "water balance")
	}
	days, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (BalanceDay, error) { return scanBalanceDay(r) })
	return days, interpretError(err, "water balance")
}

// Days returns a zone's balance for the local days from..to (inclusive), computing what is
// missing. Days before the balance starts are left out.
func (b *WaterBalance) Days(ctx context.Context, zoneID int64, from, to time.Time) ([]BalanceDay, error) {
	if to.Before(from) {
		return nil, invalid("to", "must not be before from")
	}
	z, err := b.store.zoneContext(ctx, zoneID)
	if err != nil {
		return nil, err
	}
	a, problem := z.agronomy()
	if problem != "" {
		return nil, invalid("zone", "%s", problem)
	}
	now := b.store.now()
	today, _, _ := localDay(now, z.loc)
	through := to
	if through.After(today) {
		through = today
	}
	if _, err := b.ensure(ctx, z, a, through, now, nil); err != nil {
		return nil, err
	}
	return b.storedDays(ctx, zoneID, from, to)
}

// Status returns a zone's balance now. A zone whose balance cannot be kept (no crop, no soil,
// no location) has Problem set and no error.
func (b *WaterBalance) Status(ctx context.Context, zoneID int64, at time.Time) (BalanceStatus, error) {
	st := BalanceStatus{ZoneID: zoneID, At: at}
	z, err := b.store.zoneContext(ctx, zoneID)
	if err != nil {
		return st, err
	}
	a, problem := z.agronomy()
	if problem == "" && (z.lat == nil || z.lon == nil) {
		problem = "the farm has no location (ET0 needs its latitude)"
	}
	if problem != "" {
		st.Problem = problem
		return st, nil
	}
	today, _, _ := localDay(at, z.loc)
	var lastStart *time.Time
	if err := b.store.db.QueryRow(ctx, `SELECT max(started_at) FROM irrigation_runs WHERE zone_id = $1`, zoneID).
		Scan(&lastStart); err != nil {
		return st, interpretError(err, "last run")
	}
	days, err := b.ensure(ctx, z, a, today, at, lastStart)
	if err != nil {
		return st, err
	}
	if len(days) == 0 {
		st.Problem = "no balance yet"
		return st, nil
	}
	d := days[len(days)-1]
	st.Crop, st.Soil = a.crop.Name, a.soil
	st.Depletion, st.TAW, st.RAW, st.P, st.Kc = d.Depletion, d.TAW, d.RAW, d.P, d.Kc
	st.ET0Today, st.ETcToday = d.ET0, d.ETc
	st.NeedsWater = d.Depletion >= d.RAW && d.Depletion > 0
	st.Efficiency = z.eff()
	st.NetRefill = d.Depletion
	st.GrossRefill = d.Depletion / st.Efficiency
	if z.rate != nil && d.Depletion > 0 {
		if s, err := z.runtimeFor(d.Depletion); err == nil {
			st.RuntimeS = s
		}
	}
	st.Today = &d
	return st, nil
}

// Update brings the balance of every zone that has a crop up to now; the leader calls it
// periodically.
func (b *WaterBalance) Update(ctx context.Context) error {
	rows, err := b.store.db.Query(ctx, `SELECT id FROM zones WHERE crop <> '' ORDER BY id`)
	if err != nil {
		return interpretError(err, "zones")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return interpretError(err, "zones")
	}
	now := b.store.now()
	var errs []error
	for _, id := range ids {
		if _, err := b.Status(ctx, id, now); err != nil {
			errs = append(errs, fmt.Errorf("zone %d: %w", id, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// ensure computes and stores the zone's balance through the local day through and returns the
// days from the last final one on. A provisional day already stored is kept while it is fresh:
// computed within StaleAfter and after the zone's last run started (lastStart).
func (b *WaterBalance) ensure(ctx context.Context, z *zoneContext, a zoneAgronomy, through, now time.Time,
	lastStart *time.Time) ([]BalanceDay, error) {
	horizon := through.Add(-b.cfg.MaxHistory).Truncate(24 * time.Hour)
	stored, err := b.storedDays(ctx, z.id, horizon, through)
	if err != nil {
		return nil, err
	}
	// Resume after the last final day; anything after it is provisional and recomputed.
	start := horizon
	if z.plantingDate != nil {
		p := *z.plantingDate
		if planted := time.Date(p.Year(), p.Month(), p.Day(), 0, 0, 0, 0, time.UTC); planted.After(start) {
			start = planted
		}
	}
	dr := 0.0
	var prev *BalanceDay
	keep := 0
	for i, d := range stored {
		if !d.Final {
			break
		}
		prev, keep = &stored[i], i+1
	}
	if prev != nil {
		start = prev.Day.AddDate(0, 0, 1)
		dr = prev.Depletion
		if taw := a.root.TAW(); math.Abs(taw-prev.TAW) > 0.5 && prev.TAW > 0 {
			// The zone's soil, crop or root depth changed: keep the relative depletion.
			dr = math.Min(taw, dr*taw/prev.TAW)
		}
	}
	if start.After(through) {
		return stored[max(0, keep-1):], nil
	}
	// Only today's row to refresh, and it is fresh: nothing to do.
	if start.Equal(through) && len(stored) > keep {
		cur := stored[keep]
		fresh := now.Sub(cur.ComputedAt) <= b.cfg.StaleAfter && (lastStart == nil || !lastStart.After(cur.ComputedAt))
		if cur.Day.Equal(through) && fresh {
			return stored[max(0, keep-1):], nil
		}
	}
	et0s, err := b.weather.Days(ctx, z.farmID, start, through)
	if err != nil {
		return nil, err
	}
	bal, err := agronomy.NewBalance(a.root, z.eff(), math.Max(0, math.Min(dr, a.root.TAW())))
	if err != nil {
		return nil, fmt.Errorf("zone %d: %w", z.id, err)
	}
	var out []BalanceDay
	if prev != nil {
		out = append(out, *prev)
	}
	lastET0 := math.NaN()
	if prev != nil {
		lastET0 = prev.ET0
	}
	for _, e := range et0s {
		if e.ET0 != nil && e.Final {
			lastET0 = *e.ET0
		}
	}
	for _, e := range et0s {
		day := e.Day
		dayStart, dayEnd := dayBounds(day, z.loc)
		var notes []string
		et0 := 0.0
		switch {
		case e.ET0 != nil:
			et0 = *e.ET0
			if e.Final {
				lastET0 = et0
			}
		case !math.IsNaN(lastET0):
			et0 = lastET0
			if !e.Final {
				hours := math.Min(24, math.Max(0, now.Sub(dayStart).Hours()))
				et0 = lastET0 * hours / 24
			}
			notes = append(notes, "no ET0 for the day ("+e.Sources+"): the last known day's value")
		default:
			notes = append(notes, "no ET0 for the day ("+e.Sources+"): 0")
		}
		rain := 0.0
		if e.Rain != nil {
			rain = *e.Rain
		} else {
			notes = append(notes, "no rain gauge: no rain counted")
		}
		end := dayEnd
		if end.After(now) {
			end = now
		}
		irr, irrNote, err := b.applied(ctx, z, dayStart, end)
		if err != nil {
			return nil, err
		}
		if irrNote != "" {
			notes = append(notes, irrNote)
		}
		kc := a.kcOn(z, day, e)
		next, r, err := bal.Step(agronomy.Day{ET0: et0, Kc: kc, Rain: rain, Irrigation: irr})
		if err != nil {
			return nil, fmt.Errorf("zone %d, %s: %w", z.id, day.Format(time.DateOnly), err)
		}
		if !e.Final {
			// A day in progress: its ET0 so far would make p (and so RAW) look as if the crop
			// hardly drew water. p follows the ETc expected for the whole day.
			full := lastET0
			if hours := now.Sub(dayStart).Hours(); e.ET0 != nil && hours >= 6 {
				full = *e.ET0 * dayEnd.Sub(dayStart).Hours() / math.Min(hours, dayEnd.Sub(dayStart).Hours())
			}
			if !math.IsNaN(full) {
				r.P = agronomy.AdjustP(a.root.P, kc*full)
				r.RAW = agronomy.RAW(r.P, r.TAW)
				notes = append(notes, fmt.Sprintf("p from the day's expected ETc %.2f mm", kc*full))
			}
		}
		row := BalanceDay{ZoneID: z.id, Day: day, ET0: et0, Kc: kc, ETc: r.ETc, Ks: r.Ks, ETcAdj: r.ETcAdj, Rain: rain,
			EffectiveRain: r.EffectiveRain, Irrigation: irr, NetIrrigation: r.NetIrrigation, DeepPercolation: r.DeepPercolation,
			DepletionStart: r.DepletionStart, Depletion: r.Depletion, TAW: r.TAW, RAW: r.RAW, P: r.P,
			Final: e.Final, ComputedAt: now}
		if row.Final {
			theta, why, err := b.probe(ctx, z, a, dayStart, dayEnd)
			if err != nil {
				return nil, err
			}
			if theta != nil {
				measured, _ := next.CorrectFromSoilMoisture(*theta)
				model := next.Depletion
				next.Depletion = model + b.cfg.ProbeWeight*(measured.Depletion-model)
				row.ProbeVWC, row.ProbeDepletion, row.ModelDepletion = theta, ptr(measured.Depletion), ptr(model)
				row.Depletion = next.Depletion
				notes = append(notes, fmt.Sprintf("soil moisture %.3f m³/m³ pulled the depletion from %.1f towards %.1f mm",
					*theta, model, measured.Depletion))
			} else if why != "" {
				notes = append(notes, why)
			}
		}
		row.Notes = strings.Join(notes, "; ")
		if err := b.save(ctx, row); err != nil {
			return nil, err
		}
		out = append(out, row)
		bal = next
	}
	return out, nil
}

// applied is the gross depth (mm over the zone) the zone received in [from, to): each run's
// metered volume over the zone's area when a meter measured it, else its time open × the
// zone's application rate.
func (b *WaterBalance) applied(ctx context.Context, z *zoneContext, from, to time.Time) (float64, string, error) {
	if !to.After(from) {
		return 0, "", nil
	}
	// volume_l is what the flow meters attributed to the run (flow.go); the seam for better
	// metering (node flow meters per zone) is there, not here.
	rows, err := b.store.db.Query(ctx, `SELECT started_at, LEAST(COALESCE(ended_at, $3), COALESCE(ends_at, $3), $3), volume_l
		FROM irrigation_runs WHERE zone_id = $1 AND started_at >= $2 AND started_at < $3`, z.id, from, to)
	if err != nil {
		return 0, "", interpretError(err, "runs of the day")
	}
	defer rows.Close()
	total := 0.0
	var missing int
	for rows.Next() {
		var start, end time.Time
		var volume *float64
		if err := rows.Scan(&start, &end, &volume); err != nil {
			return 0, "", interpretError(err, "runs of the day")
		}
		switch {
		case volume != nil && *volume > 0 && z.areaM2 > 0:
			total += *volume / z.areaM2
		case end.After(start):
			d := z.grossDepthFor(int(end.Sub(start).Seconds()))
			if math.IsNaN(d) {
				missing++
				continue
			}
			total += d
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", interpretError(err, "runs of the day")
	}
	note := ""
	if missing > 0 {
		note = fmt.Sprintf("%d run(s) without a meter, application rate or valve flow: not counted", missing)
	}
	return math.Min(total, 999), note, nil
}

// sandy soils drain to field capacity in about a day; finer ones take two.
func drainageHours(soil string) time.Duration {
	switch soil {
	case "sand", "loamy-sand", "sandy-loam":
		return 24 * time.Hour
	}
	return 48 * time.Hour
}

// probe returns the zone's soil moisture at the end of a day when it can stand for the root
// zone (docs/agronomy.md: probes within the root depth, readings of the day's last 6 hours,
// the profile drained since the last irrigation or heavy rain), else why not ("" when the zone
// has no probe).
func (b *WaterBalance) probe(ctx context.Context, z *zoneContext, a zoneAgronomy, dayStart, dayEnd time.Time) (*float64, string, error) {
	nodes, err := b.readings.Nodes(ctx, z.farmID)
	if err != nil {
		return nil, "", fmt.Errorf("nodes of farm %d: %w", z.farmID, err)
	}
	from := dayEnd.Add(-6 * time.Hour)
	var sum float64
	var n, probes int
	for _, node := range nodes {
		if node.ZoneID == nil || *node.ZoneID != z.id {
			continue
		}
		if _, ok := node.Latest[MetricSoilVWC]; !ok {
			continue
		}
		if node.DepthM != nil && *node.DepthM > a.root.Depth {
			continue // below the roots
		}
		probes++
		s, err := b.readings.Readings(ctx, node.ID, MetricSoilVWC, from, dayEnd, 1)
		if err != nil {
			return nil, "", fmt.Errorf("soil moisture of node %d: %w", node.ID, err)
		}
		for _, p := range s.Points {
			sum += p.Mean * float64(p.N)
			n += p.N
		}
	}
	if probes == 0 {
		return nil, "", nil
	}
	if n < 2 {
		return nil, "soil moisture not used: fewer than 2 readings in the day's last 6 hours", nil
	}
	theta := sum / float64(n)
	if theta <= 0 || theta >= 0.7 {
		return nil, fmt.Sprintf("soil moisture %.3f m³/m³ not used: implausible", theta), nil
	}
	drain := drainageHours(a.soil)
	spans, err := b.store.wateredSpans(ctx, z.id, dayEnd.Add(-drain), dayEnd)
	if err != nil {
		return nil, "", err
	}
	for _, sp := range spans {
		if sp.to.After(dayEnd.Add(-drain)) {
			return nil, fmt.Sprintf("soil moisture not used: watered within %s (the profile is still draining)", drain), nil
		}
	}
	rain, _, err := b.weather.Rain(ctx, z.farmID, dayEnd.Add(-drain), dayEnd)
	if err != nil {
		return nil, "", err
	}
	if rain >= 5 {
		return nil, fmt.Sprintf("soil moisture not used: %.1f mm of rain within %s", rain, drain), nil
	}
	return ptr(theta), "", nil
}

func (b *WaterBalance) save(ctx context.Context, d BalanceDay) error {
	_, err := b.store.db.Exec(ctx, `INSERT INTO zone_water_balance (`+balanceColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
		ON CONFLICT (zone_id, day) DO UPDATE SET et0_mm = EXCLUDED.et0_mm, kc = EXCLUDED.kc, etc_mm = EXCLUDED.etc_mm,
			ks = EXCLUDED.ks, etc_adj_mm = EXCLUDED.etc_adj_mm, rain_mm = EXCLUDED.rain_mm,
			effective_rain_mm = EXCLUDED.effective_rain_mm, irrigation_mm = EXCLUDED.irrigation_mm,
			net_irrigation_mm = EXCLUDED.net_irrigation_mm, deep_percolation_mm = EXCLUDED.deep_percolation_mm,
			depletion_start_mm = EXCLUDED.depletion_start_mm, depletion_mm = EXCLUDED.depletion_mm, taw_mm = EXCLUDED.taw_mm,
			raw_mm = EXCLUDED.raw_mm, p = EXCLUDED.p, probe_vwc = EXCLUDED.probe_vwc,
			probe_depletion_mm = EXCLUDED.probe_depletion_mm, model_depletion_mm = EXCLUDED.model_depletion_mm,
			notes = EXCLUDED.notes, final = EXCLUDED.final, computed_at = EXCLUDED.computed_at
		WHERE NOT zone_water_balance.final`,
		d.ZoneID, d.Day, d.ET0, d.Kc, d.ETc, d.Ks, d.ETcAdj, d.Rain, d.EffectiveRain, d.Irrigation, d.NetIrrigation,
		d.DeepPercolation, d.DepletionStart, d.Depletion, d.TAW, d.RAW, d.P, d.ProbeVWC, d.ProbeDepletion, d.ModelDepletion,
		d.Notes, d.Final, d.ComputedAt)
	return interpretError(err, "store water balance")
}

// ResetBalance forgets a zone's stored balance, so it starts afresh (e.g. after a thorough
// wetting, or when its crop changed).
func (s *Store) ResetBalance(ctx context.Context, zoneID int64) error {
	_, err := s.db.Exec(ctx, `DELETE FROM zone_water_balance WHERE zone_id = $1`, zoneID)
	return interpretError(err, "reset water balance")
}

// validateAgronomy checks a zone's planting date and soil water limits, and normalises its crop
// and soil names to the catalogue's when they name an entry (any other name is kept: such a
// zone simply has no water balance).
func validateAgronomy(z *Zone) error {
	if z.PlantingDate != nil {
		p := *z.PlantingDate
		d := time.Date(p.Year(), p.Month(), p.Day(), 0, 0, 0, 0, time.UTC)
		if d.Year() < 1990 || d.Year() > 2200 {
			return invalid("planting_date", "%s is not a plausible date", d.Format(time.DateOnly))
		}
		z.PlantingDate = &d
	}
	if err := checkSkip("theta_fc", z.ThetaFC, 0.01, 0.99); err != nil {
		return err
	}
	if err := checkSkip("theta_wp", z.ThetaWP, 0, 0.98); err != nil {
		return err
	}
	if z.ThetaFC != nil && z.ThetaWP != nil && *z.ThetaWP >= *z.ThetaFC {
		return invalid("theta_wp", "must be below theta_fc")
	}
	if c, ok := agronomy.CropByName(strings.ToLower(strings.TrimSpace(z.Crop))); ok {
		z.Crop = c.Name
	}
	if s, ok := agronomy.SoilByName(strings.ToLower(strings.TrimSpace(z.Soil))); ok {
		z.Soil = s.Name
	}
	return nil
}
