package irrigation

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LeaderConfig tunes a Leader. Zero values mean the defaults.
type LeaderConfig struct {
	// LockKey is the PostgreSQL advisory lock whose holder leads. Default "aghali-s".
	LockKey int64
	// Interval is how often a follower tries to take over, and the leader checks that its
	// connection (and so its lock) is still alive. Default 2 s: a leader that dies is replaced
	// within about that, once PostgreSQL has noticed its session is gone.
	Interval time.Duration
}

// Leader elects, among every instance sharing a database, the one that runs the periodic
// decisions (schedules, periodic rule evaluation, ET0 and water-balance upkeep): the holder of
// a session-level advisory lock on a connection of its own. When the leader's process or
// connection dies, PostgreSQL releases the lock with the session and a follower takes it at its
// next try. Being leader is an optimisation, not the safety net: everything the leader does
// re-checks under row locks, so even two leaders at once (a network partition) never act twice.
type Leader struct {
	store  *Store
	cfg    LeaderConfig
	log    *slog.Logger
	svc    service
	leader atomic.Bool
	gauge  prometheus.Gauge
}

// NewLeader returns a Leader campaigning on store's database.
func NewLeader(store *Store, cfg LeaderConfig) (*Leader, error) {
	if store == nil {
		return nil, errors.New("irrigation: NewLeader needs a store")
	}
	if cfg.LockKey == 0 {
		cfg.LockKey = schedulerLockKey
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	g, err := register(store.cfg.Registerer, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "aghali_irrigation_leader", Help: "1 while this instance leads (runs schedules and the periodic decisions).",
	}))
	if err != nil {
		return nil, err
	}
	return &Leader{store: store, cfg: cfg, log: store.log.With("part", "leader"), svc: service{name: "leader"}, gauge: g}, nil
}

func (l *Leader) set(on bool) {
	l.leader.Store(on)
	if on {
		l.gauge.Set(1)
	} else {
		l.gauge.Set(0)
	}
}

// IsLeader reports whether this instance holds the lock.
func (l *Leader) IsLeader() bool { return l.leader.Load() }

// Start campaigns for leadership until Stop or the end of ctx.
func (l *Leader) Start(ctx context.Context) error {
	return l.svc.start(ctx, func(ctx context.Context) {
		var conn *dedicatedConn
		defer func() {
			if conn != nil {
				conn.close() // ends the session: the lock is released for the next leader
			}
			l.set(false)
		}()
		for {
			l.campaign(ctx, &conn)
			if !sleep(ctx, l.cfg.Interval) {
				return
			}
		}
	})
}

// Stop gives up leadership and waits for the campaign to end.
func (l *Leader) Stop() { l.svc.stop() }

// campaign keeps or tries to take the lock.
func (l *Leader) campaign(ctx context.Context, conn **dedicatedConn) {
	if *conn != nil && l.leader.Load() {
		err := (*conn).ping(ctx)
		if err == nil {
			return
		}
		if ctx.Err() == nil {
			l.log.Warn("leader lost its connection", "err", err)
		}
		(*conn).close()
		*conn = nil
		l.set(false)
	}
	if *conn == nil {
		c, err := l.store.dedicate(ctx)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("leader election cannot connect", "err", err)
			}
			return
		}
		*conn = c
	}
	ok, err := (*conn).tryAdvisoryLock(ctx, l.cfg.LockKey)
	if err != nil {
		(*conn).close()
		*conn = nil
		return
	}
	if ok {
		l.log.Info("this instance leads", "pid", (*conn).backendPID())
		l.set(true)
	}
}
