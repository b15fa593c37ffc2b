package irrigation

import (
	"context"
	"errors"
	"maps"
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

// errUnreadBook: the rule book could not be read (a rule or zone the book cannot hold, say);
// passes then read their own zones, so that one bad row does not stop every farm's.
type errUnreadBook struct{ err error }

func (e errUnreadBook) Error() string { return "rule book: " + e.err.Error() }

// errStaleBook: the rules or zones changed since the rule book was read.
var errStaleBook = errors.New("the rule book is out of date")

// ruleBook returns the book, reading it if there is none; passes that need it at once wait for
// one read. A read that failed is not tried again before the next refresh.
func (e *Engine) ruleBook(ctx context.Context) (*ruleBook, error) {
	if b := e.book.Load(); b != nil {
		return b, nil
	}
	e.bookMu.Lock()
	defer e.bookMu.Unlock()
	if b := e.book.Load(); b != nil {
		return b, nil
	}
	if e.bookErr != nil {
		return nil, e.bookErr
	}
	return e.readBookLocked(ctx)
}

// refreshBook reads the book afresh (every Interval, beside the passes, which keep the one they
// have meanwhile), in case a change escaped the version: one made with triggers off, by a
// restore, say. It also retries a read that failed.
func (e *Engine) refreshBook(ctx context.Context) {
	e.bookMu.Lock()
	defer e.bookMu.Unlock()
	e.bookErr = nil
	_, _ = e.readBookLocked(ctx)
}

// readBookLocked reads the book, with bookMu held, and keeps it, or the error.
func (e *Engine) readBookLocked(ctx context.Context) (*ruleBook, error) {
	b, err := e.store.readRuleBook(ctx)
	if err != nil {
		if ctx.Err() == nil { // else not the book's fault
			e.bookErr = errUnreadBook{err}
			e.log.Warn("rule book not read; passes read their own zones' rules until the next try", "err", err)
		}
		return nil, errUnreadBook{err}
	}
	e.book.Store(b)
	e.mu.Lock()
	maps.DeleteFunc(e.lastPass, func(z int64, _ time.Time) bool { return b.zones[z] == nil }) // zones without rules now
	e.mu.Unlock()
	return b, nil
}

// readRuleBook reads the book in one round trip: its version first, so that a change committed
// meanwhile makes the book look older than it is (and read again), never newer.
func (s *Store) readRuleBook(ctx context.Context) (*ruleBook, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT version FROM irrigation_rule_book`)
	b.Queue(`SELECT ` + ruleColumns + `, z.id FROM zones z JOIN rules r ON ` + ruleAppliesToZone + `
		WHERE r.enabled ` + ruleOrder)
	b.Queue(zoneContextSQL + `WHERE ` + zoneHasRules)
	b.Queue(`SELECT n.id, n.zone_id FROM nodes n JOIN zones z ON z.id = n.zone_id WHERE ` + zoneHasRules)
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
	b := genericPlans()
	b.Queue(`SELECT b.version, s.rule_id, s.zone_id, s.holding_since, COALESCE(s.armed, true),
			COALESCE(s.active, false), s.last_fired_at, COALESCE(s.reason, ''), s.evaluated_at
		FROM irrigation_rule_book b
		LEFT JOIN rule_states s ON s.rule_id = ANY($1) AND s.zone_id = ANY($2)`, ruleIDs, zoneIDs)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()
	if err := skipPlanSetting(br); err != nil {
		return 0, nil, err
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
		if err := rows.Scan(&version, &ruleID, &zoneID, &m.state.HoldingSince, &m.state.Armed, &m.state.Active,
			&m.state.LastFired, &m.lastReason, &m.at); err != nil {
			rows.Close()
			return 0, nil, interpretError(err, "rule states")
		}
		if ruleID == nil {
			continue // none: the version alone
		}
		out[ruleZone{*ruleID, *zoneID}] = m
	}
	if err := rows.Err(); err != nil {
		return 0, nil, interpretError(err, "rule states")
	}
	return version, out, interpretError(br.Close(), "rule states")
}
