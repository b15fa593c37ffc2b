package irrigation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/irrigation/schedule"
)

// Schedule waters a zone for DurationS at the times of a cron expression, evaluated in the
// farm's time zone.
type Schedule struct {
	ID        int64
	ZoneID    int64
	FarmID    int64 // the zone's farm; read-only
	Name      string
	Cron      string // 5 fields: minute hour day-of-month month day-of-week
	DurationS int
	Enabled   bool // callers creating from the API default it to true
	// LastFiredAt is the last time the schedule started a run; read-only.
	LastFiredAt *time.Time
	// NextAt is the next occurrence from now (nil when disabled); read-only.
	NextAt *time.Time
	// Timezone is the farm's, in which Cron is read; read-only.
	Timezone  string
	CreatedAt time.Time

	handledThrough time.Time // every occurrence up to here was fired or skipped
}

func (sc Schedule) anchor() time.Time { return sc.handledThrough }

const scheduleColumns = `s.id, s.zone_id, z.farm_id, s.name, s.cron, s.duration_s, s.enabled, s.last_fired_at,
	COALESCE(s.handled_through, s.created_at), s.created_at, f.timezone`

const scheduleFrom = ` FROM schedules s JOIN zones z ON z.id = s.zone_id JOIN farms f ON f.id = z.farm_id `

func scanSchedule(row pgx.Row) (Schedule, error) {
	var sc Schedule
	err := row.Scan(&sc.ID, &sc.ZoneID, &sc.FarmID, &sc.Name, &sc.Cron, &sc.DurationS, &sc.Enabled, &sc.LastFiredAt,
		&sc.handledThrough, &sc.CreatedAt, &sc.Timezone)
	return sc, interpretError(err, "schedule")
}

// spec parses the schedule's cron in its farm's time zone.
func (s *Store) spec(sc Schedule) (*schedule.Spec, error) {
	loc, err := s.location(sc.Timezone)
	if err != nil {
		return nil, err
	}
	return schedule.Parse(sc.Cron, loc)
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

// validateSchedule checks a schedule against its zone's farm time zone.
func (s *Store) validateSchedule(ctx context.Context, sc *Schedule) error {
	sc.Name = strings.TrimSpace(sc.Name)
	if sc.Name == "" {
		return invalid("name", "required")
	}
	if sc.DurationS <= 0 {
		return invalid("duration_s", "must be positive")
	}
	err := s.db.QueryRow(ctx, `SELECT z.farm_id, f.timezone FROM zones z JOIN farms f ON f.id = z.farm_id WHERE z.id = $1`,
		sc.ZoneID).Scan(&sc.FarmID, &sc.Timezone)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return invalid("zone_id", "%d does not exist", sc.ZoneID)
		}
		return interpretError(err, "zone of schedule")
	}
	spec, err := s.spec(*sc)
	if err != nil {
		return invalid("cron", "%v", err)
	}
	sc.Cron = spec.String()
	return nil
}

// CreateSchedule stores a new schedule; its first occurrence is the first after now.
func (s *Store) CreateSchedule(ctx context.Context, sc Schedule) (Schedule, error) {
	if err := s.validateSchedule(ctx, &sc); err != nil {
		return Schedule{}, err
	}
	var id int64
	now := s.now()
	err := s.db.QueryRow(ctx, `INSERT INTO schedules (zone_id, name, cron, duration_s, enabled, created_at, handled_through)
		VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id`, sc.ZoneID, sc.Name, sc.Cron, sc.DurationS, sc.Enabled, now).Scan(&id)
	if err != nil {
		return Schedule{}, interpretError(err, "create schedule")
	}
	return s.Schedule(ctx, id)
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

// UpdateSchedule replaces a schedule's name, cron, duration and enabled flag (its zone stays).
// A new cron expression, or enabling a disabled schedule, starts afresh from now: occurrences
// before the change are not "missed".
func (s *Store) UpdateSchedule(ctx context.Context, sc Schedule) (Schedule, error) {
	old, err := s.Schedule(ctx, sc.ID)
	if err != nil {
		return Schedule{}, err
	}
	sc.ZoneID = old.ZoneID
	if err := s.validateSchedule(ctx, &sc); err != nil {
		return Schedule{}, err
	}
	tag, err := s.db.Exec(ctx, `UPDATE schedules SET name = $2, duration_s = $4, enabled = $5,
			handled_through = CASE WHEN cron <> $3 OR (NOT enabled AND $5) THEN $6 ELSE handled_through END,
			cron = $3
		WHERE id = $1`, sc.ID, sc.Name, sc.Cron, sc.DurationS, sc.Enabled, s.now())
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
