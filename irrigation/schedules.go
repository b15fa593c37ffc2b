package irrigation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/irrigation/rule"
	"github.com/aghali/aghali/irrigation/schedule"
)

// Schedule modes.
const (
	// ModeFixed waters DurationS (times SeasonalPct/100) at each occurrence.
	ModeFixed = "fixed"
	// ModeWaterBalance waters, at each occurrence, what the zone's root zone lacks when its
	// depletion has reached RAW (FAO-56), and nothing otherwise; runs have origin water_balance.
	ModeWaterBalance = "water_balance"
)

// Schedule waters a zone at the times of a cron expression, evaluated in the farm's time zone.
type Schedule struct {
	ID     int64
	ZoneID int64
	FarmID int64 // the zone's farm; read-only
	Name   string
	Cron   string // 5 fields: minute hour day-of-month month day-of-week
	// Mode: fixed (default) or water_balance.
	Mode string
	// DurationS: fixed mode, how long each occurrence waters (before the seasonal adjustment;
	// required); water-balance mode, the most an occurrence may water (0: the zone's max
	// runtime, or with cycle-and-soak no limit).
	DurationS int
	Enabled   bool // callers creating from the API default it to true
	// Weekdays restricts the days it runs (names "mon" … "sun"); empty: every day.
	Weekdays []string
	// DayParity: any (default), odd or even days of the month.
	DayParity string
	// Skip conditions (nil: not checked): rain over the last 24 h at least SkipRainMM; forecast
	// rain over the next 24 h at least SkipForecastRainMM; the zone's mean soil_vwc over the
	// last hour at least SkipSoilVWC; the farm's lowest air temperature over the last hour at
	// most SkipFrostC; the farm's mean wind over the last 30 min at least SkipWindMS.
	SkipRainMM         *float64
	SkipForecastRainMM *float64
	SkipSoilVWC        *float64
	SkipFrostC         *float64
	SkipWindMS         *float64
	// SeasonalPct scales fixed-mode runs (100: as written; 0–300).
	SeasonalPct int
	// CycleS and SoakS: water in cycles of at most CycleS with SoakS between them (0: in one
	// go). Both or neither.
	CycleS int
	SoakS  int
	// PendingS is what an occurrence still has to water in further cycles and PendingAt when
	// the next cycle is due; read-only.
	PendingS  int
	PendingAt *time.Time
	// LastFiredAt is the last time the schedule started a run; read-only.
	LastFiredAt *time.Time
	// NextAt is the next occurrence from now (nil when disabled); read-only.
	NextAt *time.Time
	// Timezone is the farm's, in which Cron is read; read-only.
	Timezone  string
	CreatedAt time.Time

	handledThrough time.Time // every occurrence up to here was fired or skipped
	weekdayBits    uint8
	pendingReason  string
	pendingOrigin  string
}

func (sc Schedule) anchor() time.Time { return sc.handledThrough }

// hasSkips reports whether any skip condition is set.
func (sc Schedule) hasSkips() bool {
	return sc.SkipRainMM != nil || sc.SkipForecastRainMM != nil || sc.SkipSoilVWC != nil || sc.SkipFrostC != nil ||
		sc.SkipWindMS != nil
}

const scheduleColumns = `s.id, s.zone_id, z.farm_id, s.name, s.cron, s.mode, COALESCE(s.duration_s, 0), s.enabled,
	s.weekdays, s.day_parity, s.skip_rain_mm, s.skip_forecast_rain_mm, s.skip_soil_vwc, s.skip_frost_c, s.skip_wind_ms,
	s.seasonal_pct, COALESCE(s.cycle_s, 0), COALESCE(s.soak_s, 0), COALESCE(s.pending_s, 0), s.pending_at,
	COALESCE(s.pending_reason, ''), COALESCE(s.pending_origin, ''), s.last_fired_at,
	COALESCE(s.handled_through, s.created_at), s.created_at, f.timezone`

const scheduleFrom = ` FROM schedules s JOIN zones z ON z.id = s.zone_id JOIN farms f ON f.id = z.farm_id `

func scanSchedule(row pgx.Row) (Schedule, error) {
	var sc Schedule
	var weekdays int16
	err := row.Scan(&sc.ID, &sc.ZoneID, &sc.FarmID, &sc.Name, &sc.Cron, &sc.Mode, &sc.DurationS, &sc.Enabled,
		&weekdays, &sc.DayParity, &sc.SkipRainMM, &sc.SkipForecastRainMM, &sc.SkipSoilVWC, &sc.SkipFrostC, &sc.SkipWindMS,
		&sc.SeasonalPct, &sc.CycleS, &sc.SoakS, &sc.PendingS, &sc.PendingAt, &sc.pendingReason, &sc.pendingOrigin,
		&sc.LastFiredAt, &sc.handledThrough, &sc.CreatedAt, &sc.Timezone)
	sc.weekdayBits = uint8(weekdays)
	sc.Weekdays = rule.WeekdayList(sc.weekdayBits)
	return sc, interpretError(err, "schedule")
}

// spec parses the schedule's cron in its farm's time zone, with its day restrictions.
func (s *Store) spec(sc Schedule) (*schedule.Spec, error) {
	loc, err := s.location(sc.Timezone)
	if err != nil {
		return nil, err
	}
	spec, err := schedule.Parse(sc.Cron, loc)
	if err != nil {
		return nil, err
	}
	return spec.Restrict(sc.weekdayBits, sc.DayParity)
}

// withNext fills NextAt.
func (s *Store) withNext(sc Schedule) Schedule {
	sc.NextAt = nil
	if !sc.Enabled {
		return sc
	}
	spec, err := s.spec(sc)
	if err != nil {
		return sc
	}
	from := s.now()
	if sc.handledThrough.After(from) {
		from = sc.handledThrough
	}
	if next := spec.Next(from); !next.IsZero() {
		sc.NextAt = &next
	}
	return sc
}

func checkSkip(field string, v *float64, lo, hi float64) error {
	if v != nil && (math.IsNaN(*v) || *v < lo || *v > hi) {
		return invalid(field, "must be between %g and %g", lo, hi)
	}
	return nil
}

// validateSchedule checks a schedule against its zone's farm time zone.
func (s *Store) validateSchedule(ctx context.Context, sc *Schedule) error {
	sc.Name = strings.TrimSpace(sc.Name)
	if sc.Name == "" {
		return invalid("name", "required")
	}
	if sc.Mode == "" {
		sc.Mode = ModeFixed
	}
	switch sc.Mode {
	case ModeFixed:
		if sc.DurationS <= 0 {
			return invalid("duration_s", "must be positive")
		}
	case ModeWaterBalance:
		if sc.DurationS < 0 {
			return invalid("duration_s", "must be positive (the most one occurrence may water) or absent")
		}
	default:
		return invalid("mode", "%q is not one of fixed, water_balance", sc.Mode)
	}
	if sc.DayParity == "" {
		sc.DayParity = schedule.AnyDay
	}
	bits, err := rule.ParseWeekdays(sc.Weekdays)
	if err != nil {
		return invalid("weekdays", "%v", err)
	}
	sc.weekdayBits, sc.Weekdays = bits, rule.WeekdayList(bits)
	if err := errors.Join(
		checkSkip("skip_rain_mm", sc.SkipRainMM, 0, 500),
		checkSkip("skip_forecast_rain_mm", sc.SkipForecastRainMM, 0, 500),
		checkSkip("skip_soil_vwc", sc.SkipSoilVWC, 0.01, 0.99),
		checkSkip("skip_frost_c", sc.SkipFrostC, -30, 15),
		checkSkip("skip_wind_ms", sc.SkipWindMS, 0.1, 100),
	); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return ve
		}
		return err
	}
	if sc.SeasonalPct == 0 && sc.Mode == ModeFixed {
		// 0 % is a legitimate adjustment only when said explicitly; the API sends 100 by default.
		sc.SeasonalPct = 100
	}
	if sc.SeasonalPct < 0 || sc.SeasonalPct > 300 {
		return invalid("seasonal_pct", "must be between 0 and 300")
	}
	switch {
	case sc.CycleS == 0 && sc.SoakS != 0:
		return invalid("soak_s", "give cycle_s with soak_s")
	case sc.CycleS != 0 && sc.CycleS < 60:
		return invalid("cycle_s", "at least 60 s")
	case sc.SoakS < 0 || sc.SoakS > 24*3600:
		return invalid("soak_s", "between 0 and 86400 s")
	}
	err = s.db.QueryRow(ctx, `SELECT z.farm_id, f.timezone FROM zones z JOIN farms f ON f.id = z.farm_id WHERE z.id = $1`,
		sc.ZoneID).Scan(&sc.FarmID, &sc.Timezone)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return invalid("zone_id", "%d does not exist", sc.ZoneID)
		}
		return interpretError(err, "zone of schedule")
	}
	loc, err := s.location(sc.Timezone)
	if err != nil {
		return err
	}
	spec, err := schedule.Parse(sc.Cron, loc)
	if err != nil {
		return invalid("cron", "%v", err)
	}
	sc.Cron = spec.String()
	if _, err := spec.Restrict(sc.weekdayBits, schedule.AnyDay); err != nil {
		return invalid("weekdays", "%v", err)
	}
	if _, err := spec.Restrict(sc.weekdayBits, sc.DayParity); err != nil {
		return invalid("day_parity", "%v", err)
	}
	return nil
}

func nullPositive(v int) *int {
	if v <= 0 {
		return nil
	}
	return &v
}

// CreateSchedule stores a new schedule; its first occurrence is the first after now.
func (s *Store) CreateSchedule(ctx context.Context, sc Schedule) (Schedule, error) {
	if err := s.validateSchedule(ctx, &sc); err != nil {
		return Schedule{}, err
	}
	var id int64
	now := s.now()
	err := s.db.QueryRow(ctx, `INSERT INTO schedules (zone_id, name, cron, mode, duration_s, enabled, weekdays, day_parity,
			skip_rain_mm, skip_forecast_rain_mm, skip_soil_vwc, skip_frost_c, skip_wind_ms, seasonal_pct, cycle_s, soak_s,
			created_at, handled_through, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $17) RETURNING id`,
		sc.ZoneID, sc.Name, sc.Cron, sc.Mode, nullPositive(sc.DurationS), sc.Enabled, int16(sc.weekdayBits), sc.DayParity,
		sc.SkipRainMM, sc.SkipForecastRainMM, sc.SkipSoilVWC, sc.SkipFrostC, sc.SkipWindMS, sc.SeasonalPct,
		nullPositive(sc.CycleS), cycleSoak(sc), now).Scan(&id)
	if err != nil {
		return Schedule{}, interpretError(err, "create schedule")
	}
	return s.Schedule(ctx, id)
}

// cycleSoak is soak_s as stored: set exactly when cycle_s is.
func cycleSoak(sc Schedule) *int {
	if sc.CycleS <= 0 {
		return nil
	}
	return &sc.SoakS
}

// Schedule returns one schedule with its next occurrence.
func (s *Store) Schedule(ctx context.Context, id int64) (Schedule, error) {
	sc, err := scanSchedule(s.db.QueryRow(ctx, `SELECT `+scheduleColumns+scheduleFrom+`WHERE s.id = $1`, id))
	if err != nil {
		return Schedule{}, err
	}
	return s.withNext(sc), nil
}

// Schedules lists the schedules of a zone with their next occurrences.
func (s *Store) Schedules(ctx context.Context, zoneID int64) ([]Schedule, error) {
	list, err := s.querySchedules(ctx, `WHERE s.zone_id = $1 ORDER BY s.name, s.id`, zoneID)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i] = s.withNext(list[i])
	}
	return list, nil
}

func (s *Store) querySchedules(ctx context.Context, where string, args ...any) ([]Schedule, error) {
	rows, err := s.db.Query(ctx, `SELECT `+scheduleColumns+scheduleFrom+where, args...)
	if err != nil {
		return nil, interpretError(err, "list schedules")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Schedule, error) { return scanSchedule(r) })
}

// UpdateSchedule replaces a schedule's definition (its zone stays). A new cron expression or
// day restriction, or enabling a disabled schedule, starts afresh from now: occurrences before
// the change are not "missed". Disabling it drops the cycles an occurrence still had to water.
func (s *Store) UpdateSchedule(ctx context.Context, sc Schedule) (Schedule, error) {
	old, err := s.Schedule(ctx, sc.ID)
	if err != nil {
		return Schedule{}, err
	}
	sc.ZoneID = old.ZoneID
	if err := s.validateSchedule(ctx, &sc); err != nil {
		return Schedule{}, err
	}
	tag, err := s.db.Exec(ctx, `UPDATE schedules SET name = $2, mode = $4, duration_s = $5, enabled = $6,
			handled_through = CASE WHEN cron <> $3 OR weekdays <> $7 OR day_parity <> $8 OR (NOT enabled AND $6)
				THEN $17 ELSE handled_through END,
			pending_s = CASE WHEN $6 THEN pending_s END, pending_at = CASE WHEN $6 THEN pending_at END,
			cron = $3, weekdays = $7, day_parity = $8, skip_rain_mm = $9, skip_forecast_rain_mm = $10, skip_soil_vwc = $11,
			skip_frost_c = $12, skip_wind_ms = $13, seasonal_pct = $14, cycle_s = $15, soak_s = $16, updated_at = $17
		WHERE id = $1`, sc.ID, sc.Name, sc.Cron, sc.Mode, nullPositive(sc.DurationS), sc.Enabled, int16(sc.weekdayBits),
		sc.DayParity, sc.SkipRainMM, sc.SkipForecastRainMM, sc.SkipSoilVWC, sc.SkipFrostC, sc.SkipWindMS, sc.SeasonalPct,
		nullPositive(sc.CycleS), cycleSoak(sc), s.now())
	if err != nil {
		return Schedule{}, interpretError(err, "update schedule")
	}
	if tag.RowsAffected() == 0 {
		return Schedule{}, fmt.Errorf("schedule %d: %w", sc.ID, ErrNotFound)
	}
	return s.Schedule(ctx, sc.ID)
}

// DeleteSchedule deletes a schedule; runs it started stay.
func (s *Store) DeleteSchedule(ctx context.Context, id int64) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM schedules WHERE id = $1`, id)
	if err != nil {
		return interpretError(err, "delete schedule")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("schedule %d: %w", id, ErrNotFound)
	}
	return nil
}

// enabledSchedules lists every enabled schedule.
func (s *Store) enabledSchedules(ctx context.Context) ([]Schedule, error) {
	return s.querySchedules(ctx, `WHERE s.enabled ORDER BY s.id`)
}

// lockSchedule locks a schedule (before the valve it waters) and re-reads it.
func (t *txn) lockSchedule(ctx context.Context, id int64) (Schedule, error) {
	return scanSchedule(t.tx.QueryRow(ctx, `SELECT `+scheduleColumns+scheduleFrom+`WHERE s.id = $1 FOR UPDATE OF s`, id))
}

// scheduleHandled records that every occurrence up to through has been dealt with, and when
// fired, that it started a run now.
func (t *txn) scheduleHandled(ctx context.Context, id int64, through time.Time, fired bool) error {
	_, err := t.tx.Exec(ctx, `UPDATE schedules SET handled_through = $2,
		last_fired_at = CASE WHEN $3 THEN $4 ELSE last_fired_at END WHERE id = $1`, id, through, fired, t.now)
	return interpretError(err, "schedule handled")
}

// schedulePending records the cycles an occurrence still has to water (seconds 0: none).
func (t *txn) schedulePending(ctx context.Context, id int64, seconds int, at time.Time, reason, origin string) error {
	var err error
	if seconds <= 0 {
		_, err = t.tx.Exec(ctx, `UPDATE schedules SET pending_s = NULL, pending_at = NULL, pending_reason = NULL,
			pending_origin = NULL WHERE id = $1`, id)
	} else {
		_, err = t.tx.Exec(ctx, `UPDATE schedules SET pending_s = $2, pending_at = $3, pending_reason = $4, pending_origin = $5
			WHERE id = $1`, id, seconds, at, reason, origin)
	}
	return interpretError(err, "schedule cycles")
}

// schedulesWithPendingCycles lists enabled schedules whose next cycle is due.
func (s *Store) schedulesWithPendingCycles(ctx context.Context, now time.Time) ([]Schedule, error) {
	return s.querySchedules(ctx, `WHERE s.enabled AND s.pending_at <= $1 ORDER BY s.pending_at, s.id`, now)
}
