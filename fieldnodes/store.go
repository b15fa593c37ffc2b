package fieldnodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// StoreConfig configures a Store. Zero values take the documented defaults.
type StoreConfig struct {
	// Pool is the database (required), opened with geo.OpenPool so geometries have their codec.
	Pool *pgxpool.Pool
	// Logger; default: discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// AuthCacheTTL is how long a successful device login is remembered, so that reconnect
	// storms do not each cost an argon2id verification. Default 5 minutes; negative: no cache.
	// A failed login is never cached.
	AuthCacheTTL time.Duration
	// HashParallelism bounds concurrent argon2id computations (each takes HashMemoryKiB of
	// memory). Default GOMAXPROCS.
	HashParallelism int
	// PartitionMonthsBehind and PartitionMonthsAhead: the monthly readings partitions Start
	// creates around the current month, and the maintenance loop keeps creating ahead.
	// Defaults 1 and 3.
	PartitionMonthsBehind int
	PartitionMonthsAhead  int
	// MaintenanceInterval is how often Start's loop creates partitions ahead and prunes old
	// rejected messages. Default 6 hours.
	MaintenanceInterval time.Duration
	// RejectedRetention: rejected messages older than this are deleted. Default 30 days;
	// negative: kept for ever.
	RejectedRetention time.Duration
	// MissedIntervals is how many reporting intervals a node may miss before it counts as silent
	// (NodeHealth, and the health monitor's alert). Default 3.
	MissedIntervals int
	// ProfileCacheTTL is how long a custom device profile is remembered; a change made by another
	// process is seen within it. Default 1 minute.
	ProfileCacheTTL time.Duration
	// MaxUnknownMetrics caps how many metric names outside the contract devices may create
	// (metric ids are smallint, and a misbehaving device must not fill the catalogue).
	// Default 1000.
	MaxUnknownMetrics int
}

// Store owns the device tables: nodes, device_secrets, metrics, readings (and its monthly
// partitions), node_latest, pending_devices, pending_messages and rejected_messages. It is safe
// for concurrent use.
type Store struct {
	db  *pgxpool.Pool
	log *slog.Logger
	now func() time.Time
	cfg StoreConfig

	hashSlots chan struct{} // semaphore for argon2id
	auth      authCache
	profiles  profileCache

	metricsMu sync.RWMutex
	metricIDs map[string]metricInfo // by name; only ever grows

	// nodesChanged counts node updates and deletions through this Store: an ingest's node cache
	// holds only entries read since the last (a node moved into a zone drives rules at once).
	nodesChanged atomic.Uint64

	stop    context.CancelFunc
	stopped chan struct{}
}

// NewStore returns a Store; call Start to have it maintain partitions.
func NewStore(cfg StoreConfig) (*Store, error) {
	if cfg.Pool == nil {
		return nil, errors.New("fieldnodes: StoreConfig.Pool is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AuthCacheTTL == 0 {
		cfg.AuthCacheTTL = 5 * time.Minute
	}
	if cfg.HashParallelism <= 0 {
		cfg.HashParallelism = runtime.GOMAXPROCS(0)
	}
	if cfg.PartitionMonthsBehind <= 0 {
		cfg.PartitionMonthsBehind = 1
	}
	if cfg.PartitionMonthsAhead <= 0 {
		cfg.PartitionMonthsAhead = 3
	}
	if cfg.MaintenanceInterval <= 0 {
		cfg.MaintenanceInterval = 6 * time.Hour
	}
	if cfg.RejectedRetention == 0 {
		cfg.RejectedRetention = 30 * 24 * time.Hour
	}
	if cfg.MaxUnknownMetrics <= 0 {
		cfg.MaxUnknownMetrics = 1000
	}
	if cfg.MissedIntervals <= 0 {
		cfg.MissedIntervals = 3
	}
	if cfg.ProfileCacheTTL <= 0 {
		cfg.ProfileCacheTTL = time.Minute
	}
	return &Store{
		db:        cfg.Pool,
		log:       cfg.Logger,
		now:       cfg.Now,
		cfg:       cfg,
		hashSlots: make(chan struct{}, cfg.HashParallelism),
		auth:      authCache{ttl: cfg.AuthCacheTTL, entries: map[[32]byte]authEntry{}},
		profiles:  profileCache{ttl: cfg.ProfileCacheTTL, entries: map[string]profileEntry{}},
		metricIDs: map[string]metricInfo{},
	}, nil
}

// Start creates the readings partitions around now and keeps creating them ahead (and pruning
// old rejected messages) until Stop. Start returns the error of the first round.
func (s *Store) Start(ctx context.Context) error {
	if s.stop != nil {
		return errors.New("fieldnodes: Store already started")
	}
	if err := s.maintain(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	s.stopped = make(chan struct{})
	go func() {
		defer close(s.stopped)
		every(ctx, s.cfg.MaintenanceInterval, func() {
			if err := s.maintain(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("readings maintenance failed", "err", err)
			}
		})
	}()
	return nil
}

// Stop ends the maintenance loop started by Start.
func (s *Store) Stop() {
	if s.stop == nil {
		return
	}
	s.stop()
	<-s.stopped
}

func (s *Store) maintain(ctx context.Context) error {
	now := s.now().UTC()
	from := monthStart(now).AddDate(0, -s.cfg.PartitionMonthsBehind, 0)
	to := monthStart(now).AddDate(0, s.cfg.PartitionMonthsAhead, 0)
	if err := s.EnsurePartitions(ctx, from, to); err != nil {
		return err
	}
	if s.cfg.RejectedRetention > 0 {
		if _, err := s.db.Exec(ctx, `DELETE FROM rejected_messages WHERE received_at < $1`,
			now.Add(-s.cfg.RejectedRetention)); err != nil {
			return fmt.Errorf("prune rejected messages: %w", err)
		}
	}
	return nil
}

// interpretError translates driver errors into this package's errors, once. what names the thing
// being done ("node", "create node") for the message.
func interpretError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			switch pe.ConstraintName {
			case "nodes_uid_key":
				return fmt.Errorf("%s: %w: uid already registered", what, ErrConflict)
			case "nodes_dev_eui_key":
				return fmt.Errorf("%s: %w: dev_eui already registered", what, ErrConflict)
			}
			return fmt.Errorf("%s: %w: %s", what, ErrConflict, pe.Detail)
		case "23503": // foreign_key_violation
			switch pe.ConstraintName {
			case "nodes_farm_id_fkey":
				return invalid("farm_id", "farm does not exist")
			case "nodes_zone_id_fkey":
				return invalid("zone_id", "zone does not exist")
			}
			return invalid(what, "refers to something that does not exist: %s", pe.Detail)
		case "23514": // check_violation
			field := what
			switch pe.ConstraintName {
			case "nodes_uid_check", "device_secrets_uid_check":
				field = "uid"
			case "nodes_dev_eui_check":
				field = "dev_eui"
			case "nodes_expected_interval_s_check":
				field = "expected_interval_s"
			case "metrics_name_check":
				field = "metric"
			}
			return invalid(field, "%s", pe.Message)
		case "22023", "XX000": // invalid_parameter_value, PostGIS internal
			return invalid(what, "%s", pe.Message)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isUndefinedTable: the statement used a table this connection does not have (the per-session
// staging table of InsertReadings, on a fresh connection).
func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}
