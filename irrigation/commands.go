package irrigation

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/fieldnodes"
)

// Command actions (the MQTT contract's).
const (
	ActionOpen     = fieldnodes.ActionOpen
	ActionClose    = fieldnodes.ActionClose
	ActionCloseAll = fieldnodes.ActionCloseAll
)

// Command states in the outbox: pending (not yet sent), sent (published, not yet acknowledged;
// resent with backoff), acked, rejected (by the controller), expired (past expires_at without an
// ack, or cancelled/superseded before it mattered; never sent after that).
const (
	CommandPending  = "pending"
	CommandSent     = "sent"
	CommandAcked    = "acked"
	CommandRejected = "rejected"
	CommandExpired  = "expired"
)

// Command is one controller command in the outbox.
type Command struct {
	ID            string // UUID, the id the controller acks
	ControllerID  int64
	RunID         *int64
	Action        string
	Valve         *int // channel; nil for close_all
	DurationS     *int // open only
	CreatedAt     time.Time
	ExpiresAt     time.Time
	State         string
	Attempts      int // how many times it was published
	NextAttemptAt time.Time
	SentAt        *time.Time // the last publish
	AckedAt       *time.Time
	Reason        string // why it was queued, or why it failed
	// AfterID is the command that must be acknowledged before this one is sent (a zone's open
	// waits for its source's pump); if that one fails, this one expires unsent.
	AfterID *string
	// DownlinkStatus is a LoRaWAN command's network server's last word on its downlink:
	// DownlinkAcked, DownlinkNacked or "failed: <why>"; nil: none.
	DownlinkStatus *string
}

// Downlink statuses: what a LoRaWAN controller's network server said of a command's downlink.
const (
	DownlinkAcked  = "acked"  // the device acknowledged it (received it)
	DownlinkNacked = "nacked" // the device did not acknowledge it in time
)

const commandColumns = `c.id::text, c.controller_id, c.run_id, c.action, c.valve, c.duration_s, c.created_at, c.expires_at,
	c.state, c.attempts, c.next_attempt_at, c.sent_at, c.acked_at, c.reason, c.after_id::text, c.downlink_status`

func scanCommand(row pgx.Row) (Command, error) {
	var c Command
	err := row.Scan(&c.ID, &c.ControllerID, &c.RunID, &c.Action, &c.Valve, &c.DurationS, &c.CreatedAt, &c.ExpiresAt,
		&c.State, &c.Attempts, &c.NextAttemptAt, &c.SentAt, &c.AckedAt, &c.Reason, &c.AfterID, &c.DownlinkStatus)
	return c, interpretError(err, "command")
}

// RunCommands returns the commands queued for a run, oldest first.
func (s *Store) RunCommands(ctx context.Context, runID int64) ([]Command, error) {
	rows, err := s.db.Query(ctx, `SELECT `+commandColumns+` FROM commands c WHERE c.run_id = $1 ORDER BY c.seq`, runID)
	if err != nil {
		return nil, interpretError(err, "run commands")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Command, error) { return scanCommand(r) })
}

// Command returns one command by its UUID.
func (s *Store) Command(ctx context.Context, id string) (Command, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Command{}, fmt.Errorf("command %q: %w", id, ErrNotFound)
	}
	return scanCommand(s.db.QueryRow(ctx, `SELECT `+commandColumns+` FROM commands c WHERE c.id = $1`, id))
}

// newCommand is a command to queue.
type newCommand struct {
	controllerID int64
	runID        *int64
	action       string
	valve        *int
	durationS    *int
	reason       string
	after        *string // sent only once this command is acknowledged
	transport    string  // the controller's, when the caller knows it ("": look it up)
}

type queued struct {
	id        string
	expiresAt time.Time
}

// enqueue adds a command to the outbox, due now and expiring after the CommandTTL (the
// LoRaWANCommandTTL for a LoRaWAN controller), and arranges for the dispatchers to be woken at
// commit.
func (t *txn) enqueue(ctx context.Context, s *Store, c newCommand) (queued, error) {
	transport := c.transport
	if transport == "" {
		if err := t.tx.QueryRow(ctx, `SELECT transport FROM controllers WHERE id = $1`, c.controllerID).Scan(&transport); err != nil {
			return queued{}, interpretError(err, "controller of command")
		}
	}
	ttl := s.cfg.CommandTTL
	if transport == TransportLoRaWAN {
		ttl = s.cfg.LoRaWANCommandTTL
	}
	q := queued{id: uuid.NewString(), expiresAt: t.now.Add(ttl)}
	t.notify = true // the dispatchers are woken at commit
	t.tx.later("queue command", `INSERT INTO commands (id, controller_id, run_id, action, valve, duration_s, created_at,
			expires_at, state, next_attempt_at, reason, after_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $7, $9, $10)`,
		q.id, c.controllerID, c.runID, c.action, c.valve, c.durationS, t.now, q.expiresAt, c.reason, c.after)
	return q, nil
}

// supersedeCloses retires the closes still in flight for a controller channel, so that they
// cannot overtake an open queued after them. The write goes with the next statement.
func (t *txn) supersedeCloses(controllerID int64, channel int, why string) {
	t.tx.later("supersede closes", `UPDATE commands SET state = 'expired', reason = $3
		WHERE controller_id = $1 AND valve = $2 AND action = 'close' AND state IN ('pending', 'sent')`,
		controllerID, channel, why)
}

// closeInFlight reports whether a close for this controller channel is pending or sent.
func (t *txn) closeInFlight(ctx context.Context, controllerID int64, channel int) (bool, error) {
	var exists bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM commands WHERE controller_id = $1 AND valve = $2
		AND action = 'close' AND state IN ('pending', 'sent'))`, controllerID, channel).Scan(&exists)
	return exists, interpretError(err, "close in flight")
}

// lockRunCommand locks the latest command of a run with this action.
func (t *txn) lockRunCommand(ctx context.Context, runID int64, action string) (Command, error) {
	return scanCommand(t.tx.QueryRow(ctx, `SELECT `+commandColumns+` FROM commands c
		WHERE c.run_id = $1 AND c.action = $2 ORDER BY c.seq DESC LIMIT 1 FOR UPDATE`, runID, action))
}

// peekCommand reads a command and where it goes without locking it (to learn which valve and
// run to lock first).
func (t *txn) peekCommand(ctx context.Context, id string) (claimedCommand, error) {
	var c claimedCommand
	err := t.tx.QueryRow(ctx, `SELECT `+commandColumns+`, ctl.uid, ctl.farm_id, ctl.transport, ctl.dev_eui,
			COALESCE(ctl.lorawan_fport, 0), ctl.lorawan_network, ctl.lorawan_route, NULL::text
		FROM commands c JOIN controllers ctl ON ctl.id = c.controller_id WHERE c.id = $1`, id).
		Scan(c.scanTargets()...)
	return c, interpretError(err, "command")
}

func (t *txn) lockCommand(ctx context.Context, id string) (Command, error) {
	return scanCommand(t.tx.QueryRow(ctx, `SELECT `+commandColumns+` FROM commands c WHERE c.id = $1 FOR UPDATE`, id))
}

// valveOfCommand finds the valve a command addresses (ErrNotFound for close_all or an
// unregistered channel).
func (t *txn) valveOfCommand(ctx context.Context, c Command) (int64, error) {
	if c.Valve == nil {
		return 0, fmt.Errorf("command %s addresses no valve: %w", c.ID, ErrNotFound)
	}
	var id int64
	err := t.tx.QueryRow(ctx, `SELECT id FROM valves WHERE controller_id = $1 AND channel = $2`, c.ControllerID, *c.Valve).Scan(&id)
	return id, interpretError(err, "valve of command")
}

func (t *txn) markExpired(id, reason string) {
	t.tx.later("expire command", `UPDATE commands SET state = 'expired', reason = $2 WHERE id = $1`, id, reason)
}

func (t *txn) markAcked(ctx context.Context, id string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE commands SET state = 'acked', acked_at = $2 WHERE id = $1`, id, at)
	return interpretError(err, "ack command")
}

func (t *txn) markRejected(ctx context.Context, id string, at time.Time, reason string) error {
	_, err := t.tx.Exec(ctx, `UPDATE commands SET state = 'rejected', acked_at = $2, reason = $3 WHERE id = $1`, id, at, reason)
	return interpretError(err, "reject command")
}

// claimedCommand is a due command locked by one dispatcher, with where it goes.
type claimedCommand struct {
	Command
	controllerUID string
	farmID        int64
	transport     string
	devEUI        *string
	fport         int
	// network and route: where a LoRaWAN controller was last heard (nil: not yet).
	network *string
	route   map[string]string
	// afterState is the state of the command this one waits for (nil: it waits for none):
	// one claimed while that one is expired or rejected is expired unsent.
	afterState *string
}

func (c *claimedCommand) scanTargets() []any {
	return []any{&c.ID, &c.ControllerID, &c.RunID, &c.Action, &c.Valve, &c.DurationS, &c.CreatedAt, &c.ExpiresAt,
		&c.State, &c.Attempts, &c.NextAttemptAt, &c.SentAt, &c.AckedAt, &c.Reason, &c.AfterID, &c.DownlinkStatus,
		&c.controllerUID, &c.farmID, &c.transport, &c.devEUI, &c.fport, &c.network, &c.route, &c.afterState}
}

func (c claimedCommand) wire() fieldnodes.Command {
	w := fieldnodes.Command{ID: c.ID, Action: c.Action, ExpiresAt: c.ExpiresAt}
	if c.Valve != nil {
		w.Valve = *c.Valve
	}
	if c.DurationS != nil {
		w.DurationS = *c.DurationS
	}
	return w
}

// claimDue locks up to limit due commands that no other dispatcher holds, oldest due first.
// The locks last until the transaction ends, so a command is in one dispatcher's hands at a
// time. A command waiting for another is due once that one is acknowledged (to be sent), has
// failed (to be expired), or its own expires_at has come (to be expired).
func (t *txn) claimDue(ctx context.Context, limit int) ([]claimedCommand, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+commandColumns+`, ctl.uid, ctl.farm_id, ctl.transport, ctl.dev_eui,
			COALESCE(ctl.lorawan_fport, 0), ctl.lorawan_network, ctl.lorawan_route, p.state
		FROM commands c JOIN controllers ctl ON ctl.id = c.controller_id
		LEFT JOIN commands p ON p.id = c.after_id
		WHERE c.state IN ('pending', 'sent') AND c.next_attempt_at <= $1
			AND (p.id IS NULL OR p.state IN ('acked', 'expired', 'rejected') OR c.expires_at <= $1)
		ORDER BY c.next_attempt_at, c.seq
		LIMIT $2
		FOR UPDATE OF c SKIP LOCKED`, t.now, limit)
	if err != nil {
		return nil, interpretError(err, "claim commands")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimedCommand, error) {
		var c claimedCommand
		err := r.Scan(c.scanTargets()...)
		return c, err
	})
	return out, interpretError(err, "claim commands")
}

// markSent records a publish: the command waits for its ack until next, then is resent.
func (t *txn) markSent(id string, at, next time.Time) {
	t.tx.later("record send", `UPDATE commands SET state = 'sent', attempts = attempts + 1, sent_at = $2,
		next_attempt_at = $3 WHERE id = $1`, id, at, next)
}

// markSendFailed records a publish that failed; the command is tried again at next.
func (t *txn) markSendFailed(id string, next time.Time, reason string) {
	t.tx.later("record failed send", `UPDATE commands SET attempts = attempts + 1, next_attempt_at = $2, reason = $3
		WHERE id = $1`, id, next, reason)
}

// postpone moves a command's next attempt without counting one.
func (t *txn) postpone(id string, next time.Time) {
	t.tx.later("postpone command", `UPDATE commands SET next_attempt_at = $2 WHERE id = $1`, id, next)
}

// nextDue returns when the earliest command in flight is due (ok false: none is). One waiting
// for another is due at its expiry at the latest; the ack it waits for wakes the dispatchers.
func (s *Store) nextDue(ctx context.Context) (time.Time, bool, error) {
	var next *time.Time
	err := s.db.QueryRow(ctx, `SELECT min(CASE WHEN p.state IN ('pending', 'sent') THEN c.expires_at
			ELSE c.next_attempt_at END)
		FROM commands c LEFT JOIN commands p ON p.id = c.after_id
		WHERE c.state IN ('pending', 'sent')`).Scan(&next)
	if err != nil {
		return time.Time{}, false, interpretError(err, "next due command")
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return *next, true, nil
}
