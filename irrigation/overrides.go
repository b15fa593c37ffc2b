package irrigation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Override modes.
const (
	// OverrideOpen waters the zone now for the override's duration: ahead of its source's
	// queue, regardless of its rest time (min_off_s) and its source's energy window; never
	// beyond capacity, max runtime or an emergency stop.
	OverrideOpen = "open"
	// OverrideHold keeps the zone closed for the duration: its live run is stopped and every
	// run, automatic or by hand, is refused until it ends or is cancelled.
	OverrideHold = "hold"
)

// Override is a person taking a zone out of automatic control for a while.
type Override struct {
	ID              int64
	FarmID          int64
	ZoneID          int64
	Mode            string
	ByUser          *int64
	ByName          string
	Reason          string
	CreatedAt       time.Time
	EndsAt          time.Time
	CancelledAt     *time.Time
	CancelledByName *string
	RunID           *int64 // the run an open override started
}

// Active reports whether the override is in force at now.
func (o Override) Active(now time.Time) bool { return o.CancelledAt == nil && now.Before(o.EndsAt) }

// OverrideRequest asks for an override.
type OverrideRequest struct {
	ZoneID    int64
	Mode      string
	DurationS int
	By        Person
	Reason    string
}

const overrideColumns = `id, farm_id, zone_id, mode, by_user, by_name, reason, created_at, ends_at, cancelled_at, cancelled_by_name, run_id`

func scanOverride(row pgx.Row) (Override, error) {
	var o Override
	err := row.Scan(&o.ID, &o.FarmID, &o.ZoneID, &o.Mode, &o.ByUser, &o.ByName, &o.Reason, &o.CreatedAt, &o.EndsAt,
		&o.CancelledAt, &o.CancelledByName, &o.RunID)
	return o, interpretError(err, "override")
}

// CreateOverride puts a manual override in force, in one transaction under the farm's lock.
// An open override starts a run of the zone's valve (origin user, the person's name and reason
// in its reason; the duration capped at the zone's max runtime) that goes to the head of its
// source's queue; a hold stops the zone's live runs. Either way the override is returned with
// the run it started (open) and recorded until it ends.
func (s *Store) CreateOverride(ctx context.Context, req OverrideRequest) (Override, *Run, error) {
	if err := req.By.validate(); err != nil {
		return Override{}, nil, err
	}
	if req.Mode != OverrideOpen && req.Mode != OverrideHold {
		return Override{}, nil, invalid("mode", "%q is not one of open, hold", req.Mode)
	}
	if req.DurationS <= 0 {
		return Override{}, nil, invalid("duration_s", "must be positive")
	}
	req.Reason = strings.TrimSpace(req.Reason)
	if req.Reason == "" {
		req.Reason = "manual override"
	}
	var out Override
	var run *Run
	err := s.withTx(ctx, func(t *txn) error {
		var farmID int64
		if err := t.tx.QueryRow(ctx, `SELECT farm_id FROM zones WHERE id = $1`, req.ZoneID).Scan(&farmID); err != nil {
			return interpretError(err, fmt.Sprintf("zone %d", req.ZoneID))
		}
		if err := t.lockFarm(ctx, farmID); err != nil {
			return err
		}
		if err := t.refuseIfStopped(ctx, farmID); err != nil {
			return err
		}
		if err := t.refuseIfHeld(ctx, req.ZoneID); err != nil {
			return err
		}
		ends := t.now.Add(time.Duration(req.DurationS) * time.Second)
		o, err := scanOverride(t.tx.QueryRow(ctx, `INSERT INTO irrigation_overrides (farm_id, zone_id, mode, by_user, by_name,
				reason, created_at, ends_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING `+overrideColumns,
			farmID, req.ZoneID, req.Mode, req.By.UserID, req.By.Name, req.Reason, t.now, ends))
		if err != nil {
			return err
		}
		what := fmt.Sprintf("manual override (%s) by %s for %s: %s", req.Mode, req.By.Name,
			(time.Duration(req.DurationS) * time.Second).String(), req.Reason)
		switch req.Mode {
		case OverrideHold:
			if err := t.stopZoneRuns(ctx, s, req.ZoneID, what); err != nil {
				return err
			}
		case OverrideOpen:
			var valveID int64
			err := t.tx.QueryRow(ctx, `SELECT id FROM valves WHERE zone_id = $1 AND role = 'zone' ORDER BY id LIMIT 1`, req.ZoneID).Scan(&valveID)
			if errors.Is(err, pgx.ErrNoRows) {
				return invalid("zone_id", "zone %d has no valve", req.ZoneID)
			}
			if err != nil {
				return interpretError(err, "valve of zone")
			}
			v, err := t.lockValve(ctx, valveID)
			if err != nil {
				return err
			}
			st, err := t.startRun(ctx, s, v, RunRequest{ValveID: v.id, DurationS: req.DurationS, Origin: OriginUser,
				RequestedBy: req.By.UserID, Reason: what, override: &o})
			if err != nil {
				return err
			}
			o.RunID = &st.ID
			if _, err := t.tx.Exec(ctx, `UPDATE irrigation_overrides SET run_id = $2 WHERE id = $1`, o.ID, st.ID); err != nil {
				return interpretError(err, "override run")
			}
			r, err := t.run(ctx, st.ID)
			if err != nil {
				return err
			}
			run = &r
		}
		out = o
		return nil
	})
	if err != nil {
		return Override{}, nil, err
	}
	return out, run, nil
}

// stopZoneRuns stops every live run of a zone.
func (t *txn) stopZoneRuns(ctx context.Context, s *Store, zoneID int64, note string) error {
	runs, err := s.queryRuns(ctx, t.tx, `WHERE r.zone_id = $1 AND r.state IN `+liveStates+` ORDER BY r.id`, zoneID)
	if err != nil {
		return err
	}
	for _, r := range runs {
		v, err := t.lockValve(ctx, r.ValveID)
		if err != nil {
			return err
		}
		lr, err := t.lockRun(ctx, r.ID)
		if err != nil {
			return err
		}
		if lr.Live() {
			if _, err := t.stopRun(ctx, s, v, lr, note); err != nil {
				return err
			}
		}
	}
	return nil
}

// CancelOverride ends an override early: a hold lets the zone water again; an open stops the
// run it started if that still lives. One already over is ErrConflict.
func (s *Store) CancelOverride(ctx context.Context, id int64, by Person) (Override, error) {
	if err := by.validate(); err != nil {
		return Override{}, err
	}
	var out Override
	err := s.withTx(ctx, func(t *txn) error {
		o, err := scanOverride(t.tx.QueryRow(ctx, `SELECT `+overrideColumns+` FROM irrigation_overrides WHERE id = $1`, id))
		if err != nil {
			return err
		}
		if err := t.lockFarm(ctx, o.FarmID); err != nil {
			return err
		}
		o, err = scanOverride(t.tx.QueryRow(ctx, `SELECT `+overrideColumns+` FROM irrigation_overrides WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if !o.Active(t.now) {
			return fmt.Errorf("override %d is over: %w", id, ErrConflict)
		}
		if o.Mode == OverrideOpen && o.RunID != nil {
			r, err := t.run(ctx, *o.RunID)
			if err != nil {
				return err
			}
			if r.Live() {
				v, err := t.lockValve(ctx, r.ValveID)
				if err != nil {
					return err
				}
				lr, err := t.lockRun(ctx, r.ID)
				if err != nil {
					return err
				}
				if _, err := t.stopRun(ctx, s, v, lr, fmt.Sprintf("override %d cancelled by %s", o.ID, by.Name)); err != nil {
					return err
				}
			}
		}
		out, err = scanOverride(t.tx.QueryRow(ctx, `UPDATE irrigation_overrides SET cancelled_at = $2, cancelled_by_name = $3
			WHERE id = $1 RETURNING `+overrideColumns, id, t.now, by.Name))
		return err
	})
	return out, err
}

// Override returns one override.
func (s *Store) Override(ctx context.Context, id int64) (Override, error) {
	return scanOverride(s.db.QueryRow(ctx, `SELECT `+overrideColumns+` FROM irrigation_overrides WHERE id = $1`, id))
}

// Overrides lists a farm's overrides, newest first; activeOnly keeps those in force now.
// limit ≤ 0 means 50.
func (s *Store) Overrides(ctx context.Context, farmID int64, activeOnly bool, limit int) ([]Override, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := s.db.Query(ctx, `SELECT `+overrideColumns+` FROM irrigation_overrides
		WHERE farm_id = $1 AND (NOT $2 OR (cancelled_at IS NULL AND ends_at > $3)) ORDER BY id DESC LIMIT $4`,
		farmID, activeOnly, s.now(), limit)
	if err != nil {
		return nil, interpretError(err, "overrides")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Override, error) { return scanOverride(r) })
}
