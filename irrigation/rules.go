package irrigation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/irrigation/rule"
)

// Rule is a threshold rule of a zone: when Aggregate of Metric over the zone's readings of the
// last WindowS seconds compares Op against Threshold, water the zone for DurationS through its
// first valve, then wait CooldownS before firing again.
type Rule struct {
	ID        int64
	ZoneID    int64
	FarmID    int64 // the zone's farm; read-only
	Name      string
	Metric    string // e.g. soil_vwc
	Aggregate string // mean (default), min, max, last
	Op        string // <, <=, >, >=
	Threshold float64
	WindowS   int // 0 on create means 3600
	DurationS int
	CooldownS int  // 0: none
	Enabled   bool // callers creating from the API default it to true
	// LastFiredAt is when the rule last started a run; read-only.
	LastFiredAt *time.Time
	CreatedAt   time.Time
}

func (r Rule) condition() rule.Condition {
	return rule.Condition{Metric: r.Metric, Aggregate: r.Aggregate, Op: r.Op, Threshold: r.Threshold,
		Window: time.Duration(r.WindowS) * time.Second}
}

func validateRule(r *Rule) error {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		return invalid("name", "required")
	}
	if r.Aggregate == "" {
		r.Aggregate = rule.Mean
	}
	if r.WindowS == 0 {
		r.WindowS = 3600
	}
	if r.WindowS < 0 {
		return invalid("window_s", "must be positive")
	}
	if err := r.condition().Validate(); err != nil {
		var ie *rule.InvalidError
		if errors.As(err, &ie) {
			return &ValidationError{Field: ie.Field, Problem: ie.Problem}
		}
		return err
	}
	if r.DurationS <= 0 {
		return invalid("duration_s", "must be positive")
	}
	if r.CooldownS < 0 {
		return invalid("cooldown_s", "must not be negative")
	}
	return nil
}

const ruleColumns = `r.id, r.zone_id, z.farm_id, r.name, r.metric, r.aggregate, r.op, r.threshold, r.window_s, r.duration_s,
	r.cooldown_s, r.enabled, r.last_fired_at, r.created_at`

const ruleFrom = ` FROM rules r JOIN zones z ON z.id = r.zone_id `

func scanRule(row pgx.Row) (Rule, error) {
	var r Rule
	err := row.Scan(&r.ID, &r.ZoneID, &r.FarmID, &r.Name, &r.Metric, &r.Aggregate, &r.Op, &r.Threshold, &r.WindowS,
		&r.DurationS, &r.CooldownS, &r.Enabled, &r.LastFiredAt, &r.CreatedAt)
	return r, interpretError(err, "rule")
}

func (s *Store) queryRules(ctx context.Context, where string, args ...any) ([]Rule, error) {
	rows, err := s.db.Query(ctx, `SELECT `+ruleColumns+ruleFrom+where, args...)
	if err != nil {
		return nil, interpretError(err, "list rules")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Rule, error) { return scanRule(r) })
}

// CreateRule stores a new threshold rule.
func (s *Store) CreateRule(ctx context.Context, r Rule) (Rule, error) {
	if err := validateRule(&r); err != nil {
		return Rule{}, err
	}
	var id int64
	err := s.db.QueryRow(ctx, `INSERT INTO rules (zone_id, name, metric, aggregate, op, threshold, window_s, duration_s,
			cooldown_s, enabled, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		r.ZoneID, r.Name, r.Metric, r.Aggregate, r.Op, r.Threshold, r.WindowS, r.DurationS, r.CooldownS, r.Enabled, s.now()).Scan(&id)
	if err != nil {
		return Rule{}, interpretError(err, "create rule")
	}
	return s.Rule(ctx, id)
}

// Rule returns one rule.
func (s *Store) Rule(ctx context.Context, id int64) (Rule, error) {
	return scanRule(s.db.QueryRow(ctx, `SELECT `+ruleColumns+ruleFrom+`WHERE r.id = $1`, id))
}

// Rules lists the rules of a zone.
func (s *Store) Rules(ctx context.Context, zoneID int64) ([]Rule, error) {
	return s.queryRules(ctx, `WHERE r.zone_id = $1 ORDER BY r.name, r.id`, zoneID)
}

// UpdateRule replaces a rule's condition, action and enabled flag (its zone stays).
func (s *Store) UpdateRule(ctx context.Context, r Rule) (Rule, error) {
	if err := validateRule(&r); err != nil {
		return Rule{}, err
	}
	tag, err := s.db.Exec(ctx, `UPDATE rules SET name = $2, metric = $3, aggregate = $4, op = $5, threshold = $6,
			window_s = $7, duration_s = $8, cooldown_s = $9, enabled = $10
		WHERE id = $1`, r.ID, r.Name, r.Metric, r.Aggregate, r.Op, r.Threshold, r.WindowS, r.DurationS, r.CooldownS, r.Enabled)
	if err != nil {
		return Rule{}, interpretError(err, "update rule")
	}
	if tag.RowsAffected() == 0 {
		return Rule{}, fmt.Errorf("rule %d: %w", r.ID, ErrNotFound)
	}
	return s.Rule(ctx, r.ID)
}

// DeleteRule deletes a rule; runs it started stay.
func (s *Store) DeleteRule(ctx context.Context, id int64) error {
	tag, err := s.db.Exec(ctx, `DELETE FROM rules WHERE id = $1`, id)
	if err != nil {
		return interpretError(err, "delete rule")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("rule %d: %w", id, ErrNotFound)
	}
	return nil
}

// enabledRules lists the enabled rules, of the given zones only when zoneIDs is not nil.
func (s *Store) enabledRules(ctx context.Context, zoneIDs []int64) ([]Rule, error) {
	if zoneIDs == nil {
		return s.queryRules(ctx, `WHERE r.enabled ORDER BY r.zone_id, r.id`)
	}
	return s.queryRules(ctx, `WHERE r.enabled AND r.zone_id = ANY($1) ORDER BY r.zone_id, r.id`, zoneIDs)
}

// lockRule locks a rule (before the valve it waters) and re-reads it.
func (t *txn) lockRule(ctx context.Context, id int64) (Rule, error) {
	return scanRule(t.tx.QueryRow(ctx, `SELECT `+ruleColumns+ruleFrom+`WHERE r.id = $1 FOR UPDATE OF r`, id))
}

func (t *txn) ruleFired(ctx context.Context, id int64) error {
	_, err := t.tx.Exec(ctx, `UPDATE rules SET last_fired_at = $2 WHERE id = $1`, id, t.now)
	return interpretError(err, "rule fired")
}
