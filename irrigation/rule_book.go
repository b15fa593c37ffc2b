package irrigation

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/irrigation/rule"
)

// ruleBook is what the engine keeps, between passes for fresh readings, of what rarely
// changes: the enabled rules that apply to each zone (in evaluation order), the zones'
// contexts, and which zone each of their nodes is in. The rules' states are never kept: a pass
// reads them afresh, with the book's version (migrations/0009), in a round trip that runs
// beside the facts'. A pass whose version differs from its book's acts on nothing; the book is
// read again and the pass done again.
type ruleBook struct {
	version int64
	rules   map[int64][]Rule // by zone, in evaluation order
	zones   map[int64]*zoneContext
	byNode  map[int64]int64 // node → its zone, for the zones in rules
}

// zonesOf returns the zones of nodes that the book knows, in ascending order, and whether any
// node is unknown to it (in no zone with rules, or new to one since the book was read).
func (b *ruleBook) zonesOf(nodeIDs []int64) (zones []int64, unknown bool) {
	for _, n := range nodeIDs {
		z, ok := b.byNode[n]
		if !ok {
			unknown = true
			continue
		}
		zones = append(zones, z)
	}
	slices.Sort(zones)
	return slices.Compact(zones), unknown
}

// readRuleBook reads the book in one round trip: its version first, so that a change committed
// meanwhile makes the book look older than it is (and read again), never newer.
func (s *Store) readRuleBook(ctx context.Context) (*ruleBook, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT version FROM irrigation_rule_book`)
	b.Queue(`SELECT ` + ruleColumns + `, z.id
		FROM zones z JOIN rules r ON r.farm_id = z.farm_id AND (r.zone_id = z.id OR r.zone_id IS NULL)
		WHERE r.enabled
		ORDER BY z.id, r.priority DESC, (r.action = 'skip') DESC, r.id`)
	b.Queue(zoneContextSQL + `WHERE EXISTS (SELECT 1 FROM rules r WHERE r.enabled
			AND r.farm_id = z.farm_id AND (r.zone_id = z.id OR r.zone_id IS NULL))`)
	b.Queue(`SELECT n.id, n.zone_id FROM nodes n JOIN zones z ON z.id = n.zone_id
		WHERE EXISTS (SELECT 1 FROM rules r WHERE r.enabled
			AND r.farm_id = z.farm_id AND (r.zone_id = z.id OR r.zone_id IS NULL))`)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()
	book := &ruleBook{rules: map[int64][]Rule{}, byNode: map[int64]int64{}}
	if err := br.QueryRow().Scan(&book.version); err != nil {
		return nil, interpretError(err, "rule book version")
	}
	rows, err := br.Query()
	if err != nil {
		return nil, interpretError(err, "rule book rules")
	}
	for rows.Next() {
		var zoneID int64
		r, err := scanRule(rows, &zoneID)
		if err != nil {
			rows.Close()
			return nil, err
		}
		book.rules[zoneID] = append(book.rules[zoneID], r)
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError(err, "rule book rules")
	}
	if rows, err = br.Query(); err != nil {
		return nil, interpretError(err, "rule book zones")
	}
	if book.zones, err = s.scanZoneContexts(rows); err != nil {
		return nil, err
	}
	if rows, err = br.Query(); err != nil {
		return nil, interpretError(err, "rule book nodes")
	}
	for rows.Next() {
		var node, zone int64
		if err := rows.Scan(&node, &zone); err != nil {
			rows.Close()
			return nil, interpretError(err, "rule book nodes")
		}
		book.byNode[node] = zone
	}
	if err := rows.Err(); err != nil {
		return nil, interpretError(err, "rule book nodes")
	}
	return book, interpretError(br.Close(), "rule book")
}

// ruleBookVersion is the version of the rules and zones now.
func (s *Store) ruleBookVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRow(ctx, `SELECT version FROM irrigation_rule_book`).Scan(&v)
	return v, interpretError(err, "rule book version")
}

// ruleZone keys a rule's memory of a zone.
type ruleZone struct{ rule, zone int64 }

// remembered is a rule's memory of a zone as a pass reads it.
type remembered struct {
	state      rule.State
	lastReason string
	at         *time.Time // the evaluation that wrote it (nil: none)
}

// rememberedOn reads, in one round trip, the book's version and the memories of these rules of
// these zones. A rule without memory of a zone is absent (the zero memory, armed).
func (s *Store) rememberedOn(ctx context.Context, ruleIDs, zoneIDs []int64) (int64, map[ruleZone]remembered, error) {
	b := &pgx.Batch{}
	// Generic plans, as in toEvaluate: planned afresh for the arrays, the statement took
	// longer to plan than to run.
	b.Queue(`SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`)
	b.Queue(`SELECT b.version, s.rule_id, s.zone_id, s.holding_since, s.armed, s.active, s.last_fired_at, s.reason,
			s.evaluated_at
		FROM irrigation_rule_book b
		LEFT JOIN rule_states s ON s.rule_id = ANY($1) AND s.zone_id = ANY($2)`, ruleIDs, zoneIDs)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return 0, nil, interpretError(err, "plan cache mode")
	}
	rows, err := br.Query()
	if err != nil {
		return 0, nil, interpretError(err, "rule states")
	}
	var version int64
	out := map[ruleZone]remembered{}
	for rows.Next() {
		var ruleID, zoneID *int64
		var m remembered
		var armed, active *bool
		var reason *string
		if err := rows.Scan(&version, &ruleID, &zoneID, &m.state.HoldingSince, &armed, &active, &m.state.LastFired,
			&reason, &m.at); err != nil {
			rows.Close()
			return 0, nil, interpretError(err, "rule states")
		}
		if ruleID == nil {
			continue // none: the version alone
		}
		m.state.Armed, m.state.Active = *armed, *active
		if reason != nil {
			m.lastReason = *reason
		}
		out[ruleZone{*ruleID, *zoneID}] = m
	}
	if err := rows.Err(); err != nil {
		return 0, nil, interpretError(err, "rule states")
	}
	return version, out, interpretError(br.Close(), "rule states")
}
