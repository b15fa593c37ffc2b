package irrigation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is what a Store and everything built on it share.
type Config struct {
	// Now is the clock. Every time irrigation writes or decides on comes from it (never from
	// the database's now()), so tests can drive expiry, cron and max runtime. Default time.Now.
	Now func() time.Time
	// Logger receives decisions and anomalies. Default: discard.
	Logger *slog.Logger
	// Registerer receives the package's Prometheus metrics. Nil: metrics are kept but not
	// registered anywhere.
	Registerer prometheus.Registerer
	// CommandTTL is how long a controller command may wait to be carried out: it expires at
	// creation + CommandTTL, and is never sent (nor, by the controller, obeyed) after that.
	// Default 60 s.
	CommandTTL time.Duration
	// LoRaWANCommandTTL is CommandTTL for LoRaWAN controllers: a class A controller hears a
	// downlink only after its next uplink, minutes away. Default 20 min.
	LoRaWANCommandTTL time.Duration
	// ActuatorMargin is how much longer than the zone run it is switched on for a pump or
	// master valve's open duration_s is (beyond the command TTL), so that a controller
	// switching it off by itself (the server gone) does so after the zone valves. Default 30 s.
	ActuatorMargin time.Duration
	// LeakFlowLPM is the flow above which a meter with every valve it meters closed raises a
	// leak alert. Default 1 L/min.
	LeakFlowLPM float64
	// FlowTolerance is how far (a fraction) metered flow may stray from the nominal flow of
	// the valves open before an alert; above it on the high side the zones are shut off.
	// Default 0.3 (±30 %).
	FlowTolerance float64
	// FlowSettle is how long after a valve opens or closes flow is not judged. Default 30 s.
	FlowSettle time.Duration
}

// Store keeps the irrigation registry (zones, water sources, controllers, valves), runs and
// their command outbox, rules, schedules and alerts. It is safe for concurrent use.
type Store struct {
	db      *pgxpool.Pool
	secrets SecretIssuer
	cfg     Config
	log     *slog.Logger
	metrics *storeMetrics
	zones   sync.Map // time zone name → *time.Location

	// The wake-ups of this process's dispatchers: a commit that queued commands pokes them at
	// once; NOTIFY wakes the other instances' (and these too, a moment later).
	wakesMu sync.Mutex
	wakes   map[chan struct{}]bool
}

// onCommandsQueued registers a dispatcher's wake-up channel; the returned func unregisters it.
func (s *Store) onCommandsQueued(wake chan struct{}) (remove func()) {
	s.wakesMu.Lock()
	defer s.wakesMu.Unlock()
	if s.wakes == nil {
		s.wakes = map[chan struct{}]bool{}
	}
	s.wakes[wake] = true
	return func() {
		s.wakesMu.Lock()
		defer s.wakesMu.Unlock()
		delete(s.wakes, wake)
	}
}

func (s *Store) commandsQueued() {
	s.wakesMu.Lock()
	defer s.wakesMu.Unlock()
	for w := range s.wakes {
		poke(w)
	}
}

// NewStore returns a Store on db, whose connections must have geo.RegisterTypes applied.
// secrets issues the MQTT credentials of new controllers.
func NewStore(db *pgxpool.Pool, secrets SecretIssuer, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("irrigation: NewStore: nil pool")
	}
	if secrets == nil {
		return nil, errors.New("irrigation: NewStore: nil SecretIssuer")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CommandTTL == 0 {
		cfg.CommandTTL = 60 * time.Second
	}
	if cfg.CommandTTL < time.Second {
		return nil, fmt.Errorf("irrigation: CommandTTL %s is shorter than a second", cfg.CommandTTL)
	}
	if cfg.LoRaWANCommandTTL <= 0 {
		cfg.LoRaWANCommandTTL = 20 * time.Minute
	}
	if cfg.ActuatorMargin <= 0 {
		cfg.ActuatorMargin = 30 * time.Second
	}
	if cfg.LeakFlowLPM <= 0 {
		cfg.LeakFlowLPM = 1
	}
	if cfg.FlowTolerance <= 0 {
		cfg.FlowTolerance = 0.3
	}
	if cfg.FlowSettle <= 0 {
		cfg.FlowSettle = 30 * time.Second
	}
	m, err := newStoreMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, secrets: secrets, cfg: cfg, log: cfg.Logger, metrics: m}, nil
}

// now is the injected clock at the database's resolution (microseconds), in UTC.
func (s *Store) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// location loads (and keeps) an IANA time zone.
func (s *Store) location(name string) (*time.Location, error) {
	if l, ok := s.zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	s.zones.Store(name, l)
	return l, nil
}

// querier is what the pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// commandsChannel is the LISTEN/NOTIFY channel that wakes dispatchers when a command is queued.
const commandsChannel = "aghali_irrigation_commands"

// txn is one database transaction and the moment its decisions are made at.
//
// Lock order, everywhere: rule or schedule → farm (advisory, see lockFarm) → valve → run →
// command. The dispatcher locks only commands, and never waits on a run or valve while holding
// them, so no cycle can form.
type txn struct {
	tx     *pipeTx
	s      *Store
	now    time.Time
	notify bool // wake the dispatchers at commit: this process's at once, the others' by NOTIFY
	// known is a valve this transaction has locked and read, so that what follows need not
	// read it again.
	known *lockedValve
}

// withTx runs fn in a transaction and commits when it returns nil.
func (s *Store) withTx(ctx context.Context, fn func(t *txn) error) error {
	tx, err := beginPipeTx(ctx, s.db)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	t := &txn{tx: tx, s: s, now: s.now()}
	if err := fn(t); err != nil {
		return err
	}
	if t.notify {
		tx.later("notify dispatchers", `SELECT pg_notify($1, '')`, commandsChannel)
	}
	if err := tx.Commit(ctx); err != nil {
		return interpretError(err, "commit")
	}
	if t.notify {
		s.commandsQueued()
	}
	return nil
}

// interpretError translates a driver error into this package's errors; it is the only place
// that knows PostgreSQL error codes.
func interpretError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch pe.Code {
	case "23505": // unique_violation
		if pe.ConstraintName == "irrigation_runs_live_valve" {
			return fmt.Errorf("%s: the valve already has a live run: %w", what, ErrBusy)
		}
		return fmt.Errorf("%s: %w: %s", what, ErrConflict, uniqueProblem(pe))
	case "23503": // foreign_key_violation
		return &ValidationError{Field: constraintField(pe), Problem: "refers to something that does not exist"}
	case "23514", "23502": // check_violation, not_null_violation
		return &ValidationError{Field: constraintField(pe), Problem: "out of range: " + pe.Message}
	case "22P02", "22023", "22007", "22008": // bad text representation, bad parameter, bad date/time
		return &ValidationError{Field: what, Problem: pe.Message}
	case "XX000": // PostGIS reports geometry trouble as internal errors
		return &ValidationError{Field: "geometry", Problem: pe.Message}
	case "40P01", "40001": // deadlock, serialization failure: the caller may retry
		return fmt.Errorf("%s: transient conflict, retry: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func uniqueProblem(pe *pgconn.PgError) string {
	switch pe.ConstraintName {
	case "controllers_uid_key":
		return "a device with this uid exists"
	case "controllers_dev_eui_key":
		return "a controller with this DevEUI exists"
	case "valves_controller_id_channel_key":
		return "the controller already has a valve on this channel"
	}
	if pe.Detail != "" {
		return pe.Detail
	}
	return pe.ConstraintName
}

// constraintField turns "valves_zone_id_fkey" or "zones_efficiency_check" into the column name.
func constraintField(pe *pgconn.PgError) string {
	if pe.ColumnName != "" {
		return pe.ColumnName
	}
	name := strings.TrimPrefix(pe.ConstraintName, pe.TableName+"_")
	for _, suffix := range []string{"_fkey", "_check", "_key"} {
		name = strings.TrimSuffix(name, suffix)
	}
	if name == "" {
		return pe.TableName
	}
	return name
}

// dedicatedConn is a connection of its own, outside the pool, for what is bound to a session:
// LISTEN and advisory locks.
type dedicatedConn struct {
	conn *pgx.Conn
}

func (s *Store) dedicate(ctx context.Context) (*dedicatedConn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.db.Config().ConnConfig.Copy())
	if err != nil {
		return nil, fmt.Errorf("dedicated connection: %w", err)
	}
	return &dedicatedConn{conn: conn}, nil
}

func (c *dedicatedConn) listen(ctx context.Context, channel string) error {
	_, err := c.conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize())
	return err
}

// waitForNotification blocks until a notification arrives, ctx ends or the connection fails.
func (c *dedicatedConn) waitForNotification(ctx context.Context) error {
	_, err := c.conn.WaitForNotification(ctx)
	return err
}

func (c *dedicatedConn) tryAdvisoryLock(ctx context.Context, key int64) (bool, error) {
	var ok bool
	err := c.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok)
	return ok, err
}

func (c *dedicatedConn) ping(ctx context.Context) error { return c.conn.Ping(ctx) }

func (c *dedicatedConn) backendPID() uint32 { return c.conn.PgConn().PID() }

// close ends the session, releasing its locks; it does not wait longer than a few seconds.
func (c *dedicatedConn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = c.conn.Close(ctx)
}
