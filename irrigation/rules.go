package irrigation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/irrigation/rule"
)

// Rule is a decision an agronomist writes: when Condition (an expression over facts, see
// docs/rules.md) has held for HoldS, take Action on the zone (a farm-wide rule: on each zone of
// the farm, separately) — irrigate for DurationS or for DepthMM, skip (veto other watering), or
// raise an alert — then wait CooldownS; with a ResetCondition it is disarmed after acting until
// that holds (hysteresis).
type Rule struct {
	ID     int64
	FarmID int64
	ZoneID *int64 // nil: every zone of the farm
	Name   string
	// Condition decides when the rule acts; ResetCondition ("" none) re-arms it after acting.
	Condition      string
	ResetCondition string
	HoldS          int    // the condition must hold this long first; 0: at once
	Action         string // irrigate (default), skip, alert
	// Irrigate: for DurationS seconds, or for DepthMM mm reaching the roots (one of the two).
	DurationS int
	DepthMM   float64
	// Alert: its severity (default warning) and message ("" : the rule's name and reason).
	Severity string
	Message  string
	// Priority orders a zone's rules (higher first); a skip that holds vetoes irrigation by
	// rules of its priority or lower, by schedules and by the water balance.
	Priority int
	// Windows are the local periods the rule may act in; none: always.
	Windows   []RuleWindow
	CooldownS int  // 0: none
	Enabled   bool // callers creating from the API default it to true
	// LastFiredAt is when the rule last acted on any zone; read-only.
	LastFiredAt *time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// RuleWindow is a period of local time a rule may act in: From to To ("05:00" to "09:00"; To
// before From spans midnight), on Days (none: every day).
type RuleWindow struct {
	From string   `json:"from"`
	To   string   `json:"to"`
	Days []string `json:"days,omitempty"`
}

// ExpressionError is a rule condition that cannot be compiled; Line and Column (1-based) say
// where the problem is.
type ExpressionError struct {
	Field   string // condition or reset_condition
	Line    int
	Column  int
	Problem string
	Snippet string
}

func (e *ExpressionError) Error() string {
	return fmt.Sprintf("%s: line %d, column %d: %s", e.Field, e.Line, e.Column, e.Problem)
}

// compiled is a rule with its programs and windows, ready to evaluate.
type compiled struct {
	Rule
	cond    *rule.Program
	reset   *rule.Program // nil: no reset condition
	windows rule.Windows
}

func (c *compiled) behaviour() rule.Behaviour {
	return rule.Behaviour{Action: c.Action, Hold: time.Duration(c.HoldS) * time.Second,
		Cooldown: time.Duration(c.CooldownS) * time.Second, HasReset: c.reset != nil}
}

func compileExpr(field, src string) (*rule.Program, error) {
	p, err := rule.Compile(src)
	if err != nil {
		var e *rule.Error
		if errors.As(err, &e) {
			return nil, &ExpressionError{Field: field, Line: e.Line, Column: e.Column, Problem: e.Message, Snippet: e.Snippet}
		}
		return nil, invalid(field, "%v", err)
	}
	return p, nil
}

// CompileRule checks a rule completely (its expressions, action and windows) and returns it
// ready to evaluate; the error is a *ValidationError or an *ExpressionError.
func compileRule(r *Rule) (*compiled, error) {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		return nil, invalid("name", "required")
	}
	if r.Action == "" {
		r.Action = rule.ActionIrrigate
	}
	if r.Severity == "" {
		r.Severity = SeverityWarning
	}
	c := &compiled{}
	var err error
	if c.cond, err = compileExpr("condition", r.Condition); err != nil {
		return nil, err
	}
	r.ResetCondition = strings.TrimSpace(r.ResetCondition)
	if r.ResetCondition != "" {
		if c.reset, err = compileExpr("reset_condition", r.ResetCondition); err != nil {
			return nil, err
		}
	}
	switch r.Action {
	case rule.ActionIrrigate:
		switch {
		case r.DurationS > 0 && r.DepthMM > 0:
			return nil, invalid("depth_mm", "give duration_s or depth_mm, not both")
		case r.DurationS < 0:
			return nil, invalid("duration_s", "must be positive")
		case r.DepthMM < 0 || math.IsNaN(r.DepthMM) || r.DepthMM > 500:
			return nil, invalid("depth_mm", "must be a depth between 0 and 500 mm")
		case r.DurationS == 0 && r.DepthMM == 0:
			return nil, invalid("duration_s", "an irrigate rule needs duration_s or depth_mm")
		}
	case rule.ActionSkip, rule.ActionAlert:
		if r.DurationS != 0 || r.DepthMM != 0 {
			return nil, invalid("action", "%s takes no duration_s or depth_mm", r.Action)
		}
	default:
		return nil, invalid("action", "%q is not one of irrigate, skip, alert", r.Action)
	}
	switch r.Severity {
	case SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		return nil, invalid("severity", "%q is not one of info, warning, critical", r.Severity)
	}
	r.Message = strings.TrimSpace(r.Message)
	if len(r.Message) > 500 {
		return nil, invalid("message", "at most 500 characters")
	}
	switch {
	case r.HoldS < 0 || r.HoldS > 7*86400:
		return nil, invalid("hold_s", "must be between 0 and 604800 (7 days)")
	case r.CooldownS < 0:
		return nil, invalid("cooldown_s", "must not be negative")
	case r.Priority < -1000 || r.Priority > 1000:
		return nil, invalid("priority", "must be between -1000 and 1000")
	case len(r.Windows) > 20:
		return nil, invalid("windows", "at most 20")
	}
	for i, w := range r.Windows {
		win, err := rule.ParseWindow(w.From, w.To, w.Days)
		if err != nil {
			return nil, invalid("windows", "window %d: %v", i+1, err)
		}
		c.windows = append(c.windows, win)
		r.Windows[i].Days = rule.WeekdayList(win.Days)
	}
	if r.Windows == nil {
		r.Windows = []RuleWindow{}
	}
	c.Rule = *r
	return c, nil
}

const ruleColumns = `r.id, r.farm_id, r.zone_id, r.name, r.condition, r.reset_condition, r.hold_s, r.action,
	COALESCE(r.duration_s, 0), COALESCE(r.depth_mm, 0), r.severity, r.message, r.priority, r.windows, r.cooldown_s,
	r.enabled, GREATEST(r.last_fired_at, (SELECT max(st.last_fired_at) FROM rule_states st WHERE st.rule_id = r.id)),
	r.created_at, r.updated_at`

func scanRule(row pgx.Row, extra ...any) (Rule, error) {
	var r Rule
	var windows []byte
	dest := append([]any{&r.ID, &r.FarmID, &r.ZoneID, &r.Name, &r.Condition, &r.ResetCondition, &r.HoldS, &r.Action,
		&r.DurationS, &r.DepthMM, &r.Severity, &r.Message, &r.Priority, &windows, &r.CooldownS, &r.Enabled,
		&r.LastFiredAt, &r.CreatedAt, &r.UpdatedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return r, interpretError(err, "rule")
	}
	if err := json.Unmarshal(windows, &r.Windows); err != nil {
		return r, fmt.Errorf("rule %d: windows: %w", r.ID, err)
	}
	return r, nil
}

func (s *Store) queryRules(ctx context.Context, where string, args ...any) ([]Rule, error) {
	rows, err := s.db.Query(ctx, `SELECT `+ruleColumns+` FROM rules r `+where, args...)
	if err != nil {
		return nil, interpretError(err, "list rules")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Rule, error) { return scanRule(r) })
}

func nullInt(v int) *int {
	if v == 0 {
		return nil
	}
	return &v
}

func nullFloat(v float64) *float64 {
	if v == 0 {
		return nil
	}
	return &v
}

// ValidateRule checks a rule as CreateRule would, without storing it.
func (s *Store) ValidateRule(ctx context.Context, r Rule) (Rule, error) {
	if err := s.ruleScope(ctx, &r); err != nil {
		return Rule{}, err
	}
	c, err := compileRule(&r)
	if err != nil {
		return Rule{}, err
	}
	return c.Rule, nil
}

// ruleScope checks the rule's zone is on its farm (and fills the farm from the zone).
func (s *Store) ruleScope(ctx context.Context, r *Rule) error {
	if r.ZoneID == nil {
		if r.FarmID == 0 {
			return invalid("farm_id", "required for a rule of every zone")
		}
		return nil
	}
	var farm int64
	err := s.db.QueryRow(ctx, `SELECT farm_id FROM zones WHERE id = $1`, *r.ZoneID).Scan(&farm)
	if errors.Is(err, pgx.ErrNoRows) {
		return invalid("zone_id", "%d does not exist", *r.ZoneID)
	}
	if err != nil {
		return interpretError(err, "zone of rule")
	}
	if r.FarmID != 0 && r.FarmID != farm {
		return invalid("zone_id", "%d is on another farm", *r.ZoneID)
	}
	r.FarmID = farm
	return nil
}

// CreateRule stores a new rule after compiling its conditions.
func (s *Store) CreateRule(ctx context.Context, r Rule) (Rule, error) {
	if err := s.ruleScope(ctx, &r); err != nil {
		return Rule{}, err
	}
	c, err := compileRule(&r)
	if err != nil {
		return Rule{}, err
	}
	windows, err := json.Marshal(c.Windows)
	if err != nil {
		return Rule{}, err
	}
	var id int64
	now := s.now()
	err = s.db.QueryRow(ctx, `INSERT INTO rules (farm_id, zone_id, name, condition, reset_condition, hold_s, action,
			duration_s, depth_mm, severity, message, priority, windows, cooldown_s, enabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) RETURNING id`,
		r.FarmID, r.ZoneID, r.Name, r.Condition, r.ResetCondition, r.HoldS, r.Action, nullInt(r.DurationS),
		nullFloat(r.DepthMM), r.Severity, r.Message, r.Priority, windows, r.CooldownS, r.Enabled, now).Scan(&id)
	if err != nil {
		return Rule{}, interpretError(err, "create rule")
	}
	return s.Rule(ctx, id)
}

// Rule returns one rule.
func (s *Store) Rule(ctx context.Context, id int64) (Rule, error) {
	return scanRule(s.db.QueryRow(ctx, `SELECT `+ruleColumns+` FROM rules r WHERE r.id = $1`, id))
}

// Rules lists the rules of a zone (not the farm-wide ones).
func (s *Store) Rules(ctx context.Context, zoneID int64) ([]Rule, error) {
	return s.queryRules(ctx, `WHERE r.zone_id = $1 ORDER BY r.priority DESC, r.name, r.id`, zoneID)
}

// FarmRules lists every rule of a farm: farm-wide ones and those of its zones.
func (s *Store) FarmRules(ctx context.Context, farmID int64) ([]Rule, error) {
	return s.queryRules(ctx, `WHERE r.farm_id = $1 ORDER BY r.zone_id NULLS FIRST, r.priority DESC, r.name, r.id`, farmID)
}

// UpdateRule replaces a rule's definition (its farm and zone stay). A changed condition starts
// afresh: the rule's per-zone memory (hold timer, hysteresis) is forgotten.
func (s *Store) UpdateRule(ctx context.Context, r Rule) (Rule, error) {
	old, err := s.Rule(ctx, r.ID)
	if err != nil {
		return Rule{}, err
	}
	r.FarmID, r.ZoneID = old.FarmID, old.ZoneID
	c, err := compileRule(&r)
	if err != nil {
		return Rule{}, err
	}
	windows, err := json.Marshal(c.Windows)
	if err != nil {
		return Rule{}, err
	}
	err = s.withTx(ctx, func(t *txn) error {
		tag, err := t.tx.Exec(ctx, `UPDATE rules SET name = $2, condition = $3, reset_condition = $4, hold_s = $5,
				action = $6, duration_s = $7, depth_mm = $8, severity = $9, message = $10, priority = $11, windows = $12,
				cooldown_s = $13, enabled = $14, updated_at = $15
			WHERE id = $1`, r.ID, r.Name, r.Condition, r.ResetCondition, r.HoldS, r.Action, nullInt(r.DurationS),
			nullFloat(r.DepthMM), r.Severity, r.Message, r.Priority, windows, r.CooldownS, r.Enabled, t.now)
		if err != nil {
			return interpretError(err, "update rule")
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("rule %d: %w", r.ID, ErrNotFound)
		}
		if old.Condition != r.Condition || old.ResetCondition != r.ResetCondition || old.Action != r.Action {
			_, err = t.tx.Exec(ctx, `UPDATE rule_states SET holding_since = NULL, armed = true WHERE rule_id = $1`, r.ID)
		}
		return interpretError(err, "update rule")
	})
	if err != nil {
		return Rule{}, err
	}
	return s.Rule(ctx, r.ID)
}

// DeleteRule deletes a rule; runs it started and decisions it took stay; alerts it raised are
// resolved.
func (s *Store) DeleteRule(ctx context.Context, id int64) error {
	return s.withTx(ctx, func(t *txn) error {
		var farm int64
		err := t.tx.QueryRow(ctx, `DELETE FROM rules WHERE id = $1 RETURNING farm_id`, id).Scan(&farm)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("rule %d: %w", id, ErrNotFound)
		}
		if err != nil {
			return interpretError(err, "delete rule")
		}
		_, err = t.tx.Exec(ctx, `UPDATE alerts SET resolved_at = $3 WHERE farm_id = $1 AND kind = $2
			AND subject LIKE $4 AND resolved_at IS NULL`, farm, AlertRule, t.now, fmt.Sprintf("rule:%d:%%", id))
		return interpretError(err, "resolve rule alerts")
	})
}

// RuleState is what a rule remembers about one zone.
type RuleState struct {
	RuleID       int64
	ZoneID       int64
	HoldingSince *time.Time
	Armed        bool
	Active       bool
	LastFiredAt  *time.Time
	EvaluatedAt  *time.Time
	Reason       string
}

// RuleStates lists a rule's memory per zone.
func (s *Store) RuleStates(ctx context.Context, ruleID int64) ([]RuleState, error) {
	rows, err := s.db.Query(ctx, `SELECT rule_id, zone_id, holding_since, armed, active, last_fired_at, evaluated_at, reason
		FROM rule_states WHERE rule_id = $1 ORDER BY zone_id`, ruleID)
	if err != nil {
		return nil, interpretError(err, "rule states")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RuleState, error) {
		var st RuleState
		err := r.Scan(&st.RuleID, &st.ZoneID, &st.HoldingSince, &st.Armed, &st.Active, &st.LastFiredAt, &st.EvaluatedAt, &st.Reason)
		return st, err
	})
}

// ruleOnZone is an enabled rule as it applies to one zone, with its memory there.
type ruleOnZone struct {
	Rule
	zoneID     int64
	state      rule.State
	known      bool   // a rule_states row exists
	lastReason string // what the last recorded evaluation said
}

// zoneSelection is the zones an evaluation pass looks at: an SQL condition on zones z, with
// its argument as $1.
type zoneSelection struct {
	where string
	arg   any // nil: none
}

var allZones = zoneSelection{where: "true"}

func zonesByID(ids []int64) zoneSelection { return zoneSelection{where: "z.id = ANY($1)", arg: ids} }

func zonesOfNodes(nodeIDs []int64) zoneSelection {
	// ARRAY(…) is evaluated once, first: the zones are then found by their key.
	return zoneSelection{where: "z.id = ANY(ARRAY(SELECT zone_id FROM nodes WHERE id = ANY($1)))", arg: nodeIDs}
}

func (z zoneSelection) args() []any {
	if z.arg == nil {
		return nil
	}
	return []any{z.arg}
}

// SQL shared by the reads of rules to evaluate (toEvaluate, readRuleBook): the rules r that
// apply to a zone z (its own and its farm's farm-wide ones), their order of evaluation per zone
// (higher priority first, skips before other actions of the same priority), and zones that
// have an enabled one.
const (
	ruleAppliesToZone = `r.farm_id = z.farm_id AND (r.zone_id = z.id OR r.zone_id IS NULL)`
	ruleOrder         = `ORDER BY z.id, r.priority DESC, (r.action = 'skip') DESC, r.id`
	zoneHasRules      = `EXISTS (SELECT 1 FROM rules r WHERE r.enabled AND ` + ruleAppliesToZone + `)`
)

// genericPlans starts a batch whose statements are run with generic plans: the batch is one
// implicit transaction, and set_config(…, true) lasts as long. Chosen by cost, PostgreSQL plans
// statements over arrays of ids afresh at every execution (an array of unknown length looks
// costly to a generic plan), which took longer than running them: with generic plans the
// rules-and-zones round trip took half as long (p50 2.3 → 1.2 ms on the development VM without
// load). Read the setting's result with skipPlanSetting first.
func genericPlans() *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`)
	return b
}

func skipPlanSetting(br pgx.BatchResults) error {
	_, err := br.Exec()
	return interpretError(err, "plan cache mode")
}

// toEvaluate loads, in one round trip, the enabled rules that apply to the selected zones —
// each zone's own and its farm's farm-wide rules, ordered for evaluation: per zone, higher
// priority first, skips before other actions of the same priority — and the contexts of the
// zones that have any.
func (s *Store) toEvaluate(ctx context.Context, sel zoneSelection) ([]ruleOnZone, map[int64]*zoneContext, error) {
	b := genericPlans()
	b.Queue(`SELECT `+ruleColumns+`, z.id, s.holding_since, COALESCE(s.armed, true), COALESCE(s.active, false),
			s.last_fired_at, s.rule_id IS NOT NULL, COALESCE(s.reason, '')
		FROM zones z
		JOIN rules r ON `+ruleAppliesToZone+`
		LEFT JOIN rule_states s ON s.rule_id = r.id AND s.zone_id = z.id
		WHERE r.enabled AND `+sel.where+`
		`+ruleOrder, sel.args()...)
	b.Queue(zoneContextSQL+`WHERE `+sel.where+` AND `+zoneHasRules+` ORDER BY z.id`, sel.args()...)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()
	if err := skipPlanSetting(br); err != nil {
		return nil, nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, interpretError(err, "rules of zones")
	}
	rzs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ruleOnZone, error) {
		var rz ruleOnZone
		r, err := scanRule(row, &rz.zoneID, &rz.state.HoldingSince, &rz.state.Armed, &rz.state.Active,
			&rz.state.LastFired, &rz.known, &rz.lastReason)
		rz.Rule = r
		return rz, err
	})
	if err != nil {
		return nil, nil, interpretError(err, "rules of zones")
	}
	if rows, err = br.Query(); err != nil {
		return nil, nil, interpretError(err, "zones")
	}
	contexts, err := s.scanZoneContexts(rows)
	if err != nil {
		return nil, nil, err
	}
	return rzs, contexts, interpretError(br.Close(), "rules of zones")
}

// lockRuleState locks a rule's memory of a zone (creating it) and reads it with whether the rule
// is still enabled, in one statement; it is the rule's lock for acting on that zone (lock
// order: rule, then farm and valve). A deleted rule is ErrNotFound.
func (t *txn) lockRuleState(ctx context.Context, ruleID, zoneID int64) (enabled bool, st lockedState, err error) {
	b := &pgx.Batch{}
	queueRuleStateLock(b, ruleID, zoneID)
	br := t.tx.SendBatch(ctx, b)
	enabled, st, err = readRuleStateLock(br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = interpretError(cerr, "lock rule state")
	}
	return enabled, st, err
}

// lockedState is a rule's memory of a zone as locked to act, with when the evaluation that
// wrote it began (nil: none has).
type lockedState struct {
	rule.State
	evaluatedAt *time.Time
}

// queueRuleStateLock queues lockRuleState's statement on b; readRuleStateLock reads its result.
func queueRuleStateLock(b *pgx.Batch, ruleID, zoneID int64) {
	b.Queue(`WITH r AS (SELECT enabled FROM rules WHERE id = $1),
		st AS (INSERT INTO rule_states (rule_id, zone_id) SELECT $1, $2 FROM r
			ON CONFLICT (rule_id, zone_id) DO UPDATE SET rule_id = EXCLUDED.rule_id
			RETURNING holding_since, armed, active, last_fired_at, evaluated_at)
		SELECT r.enabled, st.holding_since, st.armed, st.active, st.last_fired_at, st.evaluated_at FROM r, st`, ruleID, zoneID)
}

func readRuleStateLock(br pgx.BatchResults) (enabled bool, st lockedState, err error) {
	err = br.QueryRow().Scan(&enabled, &st.HoldingSince, &st.Armed, &st.Active, &st.LastFired, &st.evaluatedAt)
	return enabled, st, interpretError(err, "lock rule state")
}

// activeSkips lists the skip rules in effect on a zone, highest priority first.
func (s *Store) activeSkips(ctx context.Context, zoneID int64) ([]Rule, error) {
	return s.queryRules(ctx, `JOIN rule_states st ON st.rule_id = r.id
		WHERE st.zone_id = $1 AND st.active AND r.action = 'skip' AND r.enabled
		ORDER BY r.priority DESC, r.id`, zoneID)
}

func subjectRule(ruleID, zoneID int64) string { return fmt.Sprintf("rule:%d:zone:%d", ruleID, zoneID) }
