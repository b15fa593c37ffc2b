package fieldnodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Alert kinds the health monitor raises; the subject is "node:<id>".
const (
	AlertNodeSilent = "node_silent"
	AlertBatteryLow = "node_battery_low"
)

// NodeAlert is an alert about a node.
type NodeAlert struct {
	FarmID   int64
	Kind     string // AlertNodeSilent, AlertBatteryLow
	Severity string // "warning" or "critical"
	Subject  string // "node:<id>"
	Message  string
}

// Alerter raises and resolves alerts. Package irrigation keeps alerts; cmd wires an adapter to
// its Store. Raising an alert already open, and resolving one that is not, are no errors.
type Alerter interface {
	RaiseAlert(ctx context.Context, a NodeAlert) error
	ResolveAlert(ctx context.Context, farmID int64, kind, subject string) error
}

// HealthConfig configures a HealthMonitor. Zero values take the documented defaults.
type HealthConfig struct {
	// Store holds the nodes (required); StoreConfig.MissedIntervals says when a node is silent.
	Store *Store
	// Alerter gets the alerts (required).
	Alerter Alerter
	// Every is how often nodes are checked; default 1 minute.
	Every time.Duration
	// Logger; default: discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Registerer gets the monitor's metrics; nil: not registered.
	Registerer prometheus.Registerer
}

// HealthMonitor raises an alert when a node misses its reporting interval MissedIntervals times
// (node_silent) or its battery runs low (node_battery_low, the profile's thresholds), and
// resolves it when the node recovers. Which alerts it holds open is kept on the nodes rows, so
// it raises and resolves each alert once, across restarts and instances.
type HealthMonitor struct {
	cfg   HealthConfig
	log   *slog.Logger
	nodes *prometheus.GaugeVec
	stop  context.CancelFunc
	done  chan struct{}
}

// NewHealthMonitor checks cfg and returns a HealthMonitor; Start runs it.
func NewHealthMonitor(cfg HealthConfig) (*HealthMonitor, error) {
	if cfg.Store == nil || cfg.Alerter == nil {
		return nil, errors.New("fieldnodes: HealthConfig needs Store and Alerter")
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &HealthMonitor{cfg: cfg, log: cfg.Logger.With("component", "node-health"),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aghali_nodes_health", Help: "Nodes by health status (ok, late, silent, never_seen) and by battery_low, at the last check.",
		}, []string{"status"})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.nodes); err != nil {
			return nil, fmt.Errorf("fieldnodes: register health metrics: %w", err)
		}
	}
	return h, nil
}

// Start checks once, then every Every until Stop.
func (h *HealthMonitor) Start(ctx context.Context) error {
	if h.stop != nil {
		return errors.New("fieldnodes: HealthMonitor already started")
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.stop, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		t := time.NewTicker(h.cfg.Every)
		defer t.Stop()
		for {
			if err := h.Check(ctx); err != nil && ctx.Err() == nil {
				h.log.Error("node health check failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop ends the checks and waits for the one under way.
func (h *HealthMonitor) Stop() {
	if h.stop == nil {
		return
	}
	h.stop()
	<-h.done
}

// Check looks at every node once, raising and resolving alerts.
func (h *HealthMonitor) Check(ctx context.Context) error {
	s := h.cfg.Store
	now := h.cfg.Now()
	rows, err := s.healthRows(ctx, now, `ORDER BY id`)
	if err != nil {
		return err
	}
	counts := map[string]float64{HealthOK: 0, HealthLate: 0, HealthSilent: 0, HealthNeverSeen: 0, "battery_low": 0}
	var errs []error
	for _, r := range rows {
		n := r.h
		counts[n.Status]++
		if n.BatteryLow {
			counts["battery_low"]++
		}
		subject := fmt.Sprintf("node:%d", n.NodeID)
		label := n.UID
		if n.Name != "" {
			label = n.Name + " (" + n.UID + ")"
		}
		silent := n.Status == HealthSilent
		switch {
		case silent && !n.SilentAlert:
			heard := "never heard from"
			if n.LastSeenAt != nil {
				heard = "last heard " + n.LastSeenAt.UTC().Format(time.RFC3339)
			}
			errs = append(errs, h.raise(ctx, n, NodeAlert{FarmID: n.FarmID, Kind: AlertNodeSilent, Severity: "warning", Subject: subject,
				Message: fmt.Sprintf("Node %s has missed %d reports (every %s); %s.", label, n.MissedIntervals,
					time.Duration(n.ExpectedIntervalS)*time.Second, heard)}, now))
		case !silent && n.SilentAlert:
			errs = append(errs, h.resolve(ctx, n, AlertNodeSilent, subject))
		}
		lowV, lowPct := 3.3, 20.0
		if p, err := s.Profile(ctx, n.Profile); err == nil {
			lowV, lowPct = p.Thresholds()
		}
		switch {
		case n.BatteryLow && !n.BatteryAlert:
			level := ""
			if n.BatteryPct != nil {
				level = fmt.Sprintf("%.0f %%", *n.BatteryPct)
			} else {
				level = fmt.Sprintf("%.2f V", *n.BatteryV)
			}
			errs = append(errs, h.raise(ctx, n, NodeAlert{FarmID: n.FarmID, Kind: AlertBatteryLow, Severity: "warning", Subject: subject,
				Message: fmt.Sprintf("Node %s: battery low (%s); replace or charge it.", label, level)}, now))
		case n.BatteryAlert && batteryRecovered(n, lowV, lowPct):
			errs = append(errs, h.resolve(ctx, n, AlertBatteryLow, subject))
		}
	}
	for status, v := range counts {
		h.nodes.WithLabelValues(status).Set(v)
	}
	return errors.Join(errs...)
}

func (h *HealthMonitor) raise(ctx context.Context, n NodeHealth, a NodeAlert, now time.Time) error {
	if err := h.cfg.Alerter.RaiseAlert(ctx, a); err != nil {
		return fmt.Errorf("raise %s for node %d: %w", a.Kind, n.NodeID, err)
	}
	h.log.Warn("node alert raised", "node", n.NodeID, "kind", a.Kind, "message", a.Message)
	return h.cfg.Store.markAlert(ctx, n.NodeID, a.Kind, true, now)
}

func (h *HealthMonitor) resolve(ctx context.Context, n NodeHealth, kind, subject string) error {
	if err := h.cfg.Alerter.ResolveAlert(ctx, n.FarmID, kind, subject); err != nil {
		return fmt.Errorf("resolve %s for node %d: %w", kind, n.NodeID, err)
	}
	h.log.Info("node alert resolved", "node", n.NodeID, "kind", kind)
	return h.cfg.Store.markAlert(ctx, n.NodeID, kind, false, time.Time{})
}
