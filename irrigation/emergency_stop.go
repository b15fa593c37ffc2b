package irrigation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// EmergencyStop is a farm-wide stop: every run of the farm was stopped when it was put in
// force, and none may start until a person releases it.
type EmergencyStop struct {
	ID             int64
	FarmID         int64
	StoppedAt      time.Time
	StoppedBy      *int64
	StoppedByName  string
	Reason         string
	RunsStopped    int
	ReleasedAt     *time.Time
	ReleasedBy     *int64
	ReleasedByName *string
}

const stopColumns = `id, farm_id, stopped_at, stopped_by, stopped_by_name, reason, runs_stopped, released_at, released_by, released_by_name`

func scanStop(row pgx.Row) (EmergencyStop, error) {
	var s EmergencyStop
	err := row.Scan(&s.ID, &s.FarmID, &s.StoppedAt, &s.StoppedBy, &s.StoppedByName, &s.Reason, &s.RunsStopped,
		&s.ReleasedAt, &s.ReleasedBy, &s.ReleasedByName)
	return s, interpretError(err, "emergency stop")
}

func (t *txn) stopInForce(ctx context.Context, farmID int64) (*EmergencyStop, error) {
	st, err := scanStop(t.tx.QueryRow(ctx, `SELECT `+stopColumns+` FROM irrigation_stops
		WHERE farm_id = $1 AND released_at IS NULL`, farmID))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// StopInForce returns the farm's emergency stop in force, or nil.
func (s *Store) StopInForce(ctx context.Context, farmID int64) (*EmergencyStop, error) {
	var st *EmergencyStop
	err := s.withTx(ctx, func(t *txn) error {
		var err error
		st, err = t.stopInForce(ctx, farmID)
		return err
	})
	return st, err
}

// Person is who does something by hand: their user id (nil for the system) and name, as
// recorded with what they did.
type Person struct {
	UserID *int64
	Name   string
}

func (p Person) validate() error {
	if strings.TrimSpace(p.Name) == "" {
		return invalid("name", "the person's name is required")
	}
	return nil
}

// StopFarm puts an emergency stop in force on a farm, in one transaction under the farm's
// lock: runs waiting or not yet sent are aborted, every other live run gets a close, every
// pump and master valve that is on is switched off, and every controller of the farm gets a
// close_all (which also closes what Aghali does not know is open). Until ReleaseFarm, StartRun
// refuses with ErrEmergencyStop. A farm already stopped is returned as it is (ok false).
func (s *Store) StopFarm(ctx context.Context, farmID int64, by Person, reason string) (_ EmergencyStop, ok bool, _ error) {
	if err := by.validate(); err != nil {
		return EmergencyStop{}, false, err
	}
	reason = strings.TrimSpace(reason)
	if reason == "" {
		reason = "no reason given"
	}
	var out EmergencyStop
	err := s.withTx(ctx, func(t *txn) error {
		if err := t.lockFarm(ctx, farmID); err != nil {
			return err
		}
		var exists bool
		if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM farms WHERE id = $1)`, farmID).Scan(&exists); err != nil {
			return interpretError(err, "farm")
		}
		if !exists {
			return fmt.Errorf("farm %d: %w", farmID, ErrNotFound)
		}
		if st, err := t.stopInForce(ctx, farmID); err != nil || st != nil {
			if st != nil {
				out = *st
			}
			return err
		}
		id := int64(0)
		if err := t.tx.QueryRow(ctx, `INSERT INTO irrigation_stops (farm_id, stopped_at, stopped_by, stopped_by_name, reason)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, farmID, t.now, by.UserID, by.Name, reason).Scan(&id); err != nil {
			return interpretError(err, "emergency stop")
		}
		note := fmt.Sprintf("emergency stop by %s: %s", by.Name, reason)
		// Waiting runs first, so that ending the others admits none of them.
		runs, err := s.queryRuns(ctx, t.tx, `WHERE z.farm_id = $1 AND r.state IN `+liveStates+`
			ORDER BY r.state <> 'planned', r.id`, farmID)
		if err != nil {
			return err
		}
		for _, r := range runs {
			v, err := t.valveInfo(ctx, r.ValveID)
			if err != nil {
				return err
			}
			lr, err := t.lockRun(ctx, r.ID)
			if err != nil {
				return err
			}
			if _, err := t.stopRun(ctx, s, v, lr, note); err != nil {
				return err
			}
		}
		// Whatever is still switched on (a failed close, a pump whose zones are closing).
		rows, err := t.tx.Query(ctx, `SELECT DISTINCT v.water_source_id FROM valves v JOIN controllers c ON c.id = v.controller_id
			WHERE c.farm_id = $1 AND v.hold_until IS NOT NULL`, farmID)
		if err != nil {
			return interpretError(err, "actuators on")
		}
		sources, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return interpretError(err, "actuators on")
		}
		for _, src := range sources {
			acts, err := t.actuators(ctx, src, true)
			if err != nil {
				return err
			}
			for i := len(acts) - 1; i >= 0; i-- {
				if err := t.switchOff(ctx, acts[i], note); err != nil {
					return err
				}
			}
		}
		rows, err = t.tx.Query(ctx, `SELECT id FROM controllers WHERE farm_id = $1 ORDER BY id`, farmID)
		if err != nil {
			return interpretError(err, "controllers of farm")
		}
		ctls, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return interpretError(err, "controllers of farm")
		}
		for _, c := range ctls {
			if _, err := t.enqueue(ctx, s, newCommand{controllerID: c, action: ActionCloseAll, reason: note}); err != nil {
				return err
			}
		}
		if _, err := t.tx.Exec(ctx, `UPDATE irrigation_stops SET runs_stopped = $2 WHERE id = $1`, id, len(runs)); err != nil {
			return interpretError(err, "emergency stop")
		}
		if err := t.raiseAlert(ctx, s, Alert{FarmID: farmID, Kind: AlertEmergencyStop, Severity: SeverityCritical,
			Subject: fmt.Sprintf("farm:%d", farmID), Message: fmt.Sprintf("Emergency stop by %s: %s. %d run(s) stopped; nothing waters until it is released.",
				by.Name, reason, len(runs))}); err != nil {
			return err
		}
		out, err = scanStop(t.tx.QueryRow(ctx, `SELECT `+stopColumns+` FROM irrigation_stops WHERE id = $1`, id))
		ok = err == nil
		return err
	})
	if err != nil {
		return EmergencyStop{}, false, err
	}
	s.log.Warn("emergency stop", "farm", farmID, "by", by.Name, "reason", reason, "runs", out.RunsStopped, "new", ok)
	return out, ok, nil
}

// ReleaseFarm ends the farm's emergency stop; rules, schedules and people may water again.
// With no stop in force it is ErrConflict.
func (s *Store) ReleaseFarm(ctx context.Context, farmID int64, by Person) (EmergencyStop, error) {
	if err := by.validate(); err != nil {
		return EmergencyStop{}, err
	}
	var out EmergencyStop
	err := s.withTx(ctx, func(t *txn) error {
		if err := t.lockFarm(ctx, farmID); err != nil {
			return err
		}
		st, err := t.stopInForce(ctx, farmID)
		if err != nil {
			return err
		}
		if st == nil {
			return fmt.Errorf("farm %d has no emergency stop in force: %w", farmID, ErrConflict)
		}
		out, err = scanStop(t.tx.QueryRow(ctx, `UPDATE irrigation_stops SET released_at = $2, released_by = $3, released_by_name = $4
			WHERE id = $1 RETURNING `+stopColumns, st.ID, t.now, by.UserID, by.Name))
		if err != nil {
			return err
		}
		return t.resolveAlert(ctx, farmID, AlertEmergencyStop, fmt.Sprintf("farm:%d", farmID))
	})
	return out, err
}

// EmergencyStops lists a farm's emergency stops, newest first (limit ≤ 0: 20).
func (s *Store) EmergencyStops(ctx context.Context, farmID int64, limit int) ([]EmergencyStop, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.db.Query(ctx, `SELECT `+stopColumns+` FROM irrigation_stops WHERE farm_id = $1 ORDER BY id DESC LIMIT $2`, farmID, limit)
	if err != nil {
		return nil, interpretError(err, "emergency stops")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (EmergencyStop, error) { return scanStop(r) })
}
