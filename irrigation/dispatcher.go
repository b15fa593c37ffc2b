package irrigation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/codec/valvecmd"
)

// CommandSender delivers a command to a controller: it publishes it (MQTT QoS 1) and returns
// after the broker's PUBACK. Package fieldnodes satisfies it.
type CommandSender interface {
	SendCommand(ctx context.Context, controllerUID string, cmd fieldnodes.Command) error
}

// Downlink is a command for a LoRaWAN controller, encoded in the compact layout of package
// valvecmd (docs/lorawan-controller.md), to be queued at its network server: where the
// controller was last heard (Network, Route), expiring at the command's expires_at.
type Downlink = fieldnodes.Downlink

// DownlinkSender queues a downlink at a LoRaWAN network server (ChirpStack
// application/{app}/device/{dev_eui}/command/down, The Things Stack
// v3/{app}@{tenant}/devices/{id}/down/push) and returns once the network server's MQTT broker
// has it. fieldnodes.Downlinks satisfies it.
type DownlinkSender interface {
	SendDownlink(ctx context.Context, dl Downlink) error
}

// DefaultLoRaWANFPort is the FPort of controller commands and their acks when a controller
// does not name one.
const DefaultLoRaWANFPort = 10

// errNoDownlinks: a LoRaWAN controller's command with no network server to send it through.
var errNoDownlinks = errors.New("no LoRaWAN network server is configured for downlinks")

// DispatcherConfig tunes a Dispatcher. Zero values mean the defaults.
type DispatcherConfig struct {
	// Downlinks sends the commands of LoRaWAN controllers. Nil: they are retried until they
	// expire (and their runs fail with an alert), as with an unreachable broker.
	Downlinks DownlinkSender
	// PollInterval is the longest the dispatcher waits without a notification before looking
	// for due commands (LISTEN/NOTIFY normally wakes it at once). Default 1 s.
	PollInterval time.Duration
	// RetryBase is the wait before resending a command that is not yet acknowledged, or
	// retrying a failed publish; it doubles with each attempt up to RetryMax. Defaults 2 s, 30 s.
	RetryBase time.Duration
	RetryMax  time.Duration
	// LoRaWANRetry is the wait before resending a LoRaWAN controller's unacknowledged command:
	// each send is another downlink in the network server's queue, and a class A controller
	// takes minutes to hear one. Default 10 min.
	LoRaWANRetry time.Duration
	// BatchSize is the most commands claimed in one transaction. Default 50.
	BatchSize int
	// SendTimeout bounds one SendCommand. Default 10 s.
	SendTimeout time.Duration
}

// Dispatcher sends the outbox's due commands to controllers. Several dispatchers (one per
// `aghali serve` instance) may share a database: each claims commands with FOR UPDATE SKIP
// LOCKED and holds them while it publishes, so no command is published by two at once.
type Dispatcher struct {
	store   *Store
	sender  CommandSender
	cfg     DispatcherConfig
	log     *slog.Logger
	metrics *dispatcherMetrics
	svc     service
	wake    chan struct{}
}

// NewDispatcher returns a Dispatcher sending store's commands through sender.
func NewDispatcher(store *Store, sender CommandSender, cfg DispatcherConfig) (*Dispatcher, error) {
	if store == nil || sender == nil {
		return nil, errors.New("irrigation: NewDispatcher needs a store and a sender")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 2 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.RetryMax < cfg.RetryBase {
		return nil, fmt.Errorf("irrigation: RetryMax %s is less than RetryBase %s", cfg.RetryMax, cfg.RetryBase)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 50
	}
	if cfg.LoRaWANRetry <= 0 {
		cfg.LoRaWANRetry = 10 * time.Minute
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = 10 * time.Second
	}
	m, err := newDispatcherMetrics(store.cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Dispatcher{
		store: store, sender: sender, cfg: cfg, metrics: m,
		log:  store.log.With("part", "dispatcher"),
		svc:  service{name: "dispatcher"},
		wake: make(chan struct{}, 1),
	}, nil
}

// Start listens for queued commands and sends them until Stop or the end of ctx. It fails if
// the first LISTEN connection cannot be made; later connection losses are retried while polling
// carries on.
func (d *Dispatcher) Start(ctx context.Context) error {
	conn, err := d.store.dedicate(ctx)
	if err == nil {
		if err = conn.listen(ctx, commandsChannel); err != nil {
			conn.close()
		}
	}
	if err != nil {
		return fmt.Errorf("irrigation: dispatcher: listen: %w", err)
	}
	err = d.svc.start(ctx, func(ctx context.Context) {
		defer d.store.onCommandsQueued(d.wake)()
		var wg sync.WaitGroup
		wg.Go(func() { d.listen(ctx, conn) })
		d.loop(ctx)
		wg.Wait()
	})
	if err != nil {
		conn.close()
	}
	return err
}

// Stop ends the dispatcher and waits for it. A batch being sent is not interrupted mid-publish;
// what was sent is recorded.
func (d *Dispatcher) Stop() { d.svc.stop() }

// minWait keeps the loop from spinning on commands another dispatcher holds.
const minWait = 20 * time.Millisecond

func (d *Dispatcher) loop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
		if _, err := d.DispatchDue(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("dispatch commands", "err", err)
		}
		wait := d.cfg.PollInterval
		if next, ok, err := d.store.nextDue(ctx); err == nil && ok {
			wait = min(max(next.Sub(d.store.now()), minWait), wait)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// listen turns notifications into wake-ups, reconnecting when the connection is lost.
func (d *Dispatcher) listen(ctx context.Context, conn *dedicatedConn) {
	defer func() {
		if conn != nil {
			conn.close()
		}
	}()
	failures := 0
	for {
		if conn == nil {
			c, err := d.store.dedicate(ctx)
			if err == nil {
				if err = c.listen(ctx, commandsChannel); err != nil {
					c.close()
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				d.log.Warn("LISTEN connection failed; polling meanwhile", "err", err)
				if !sleep(ctx, backoff(time.Second, 30*time.Second, failures)) {
					return
				}
				failures++
				continue
			}
			conn, failures = c, 0
			poke(d.wake) // notifications may have been missed while disconnected
		}
		if err := conn.waitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("LISTEN connection lost", "err", err)
			conn.close()
			conn = nil
			continue
		}
		poke(d.wake)
	}
}

// DispatchDue sends every command that is due now (a pass of the loop) and returns how many it
// published. Commands past their expires_at are expired instead, never sent; their runs fail
// and an alert is raised.
func (d *Dispatcher) DispatchDue(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, claimed, err := d.dispatchBatch(ctx)
		total += n
		if err != nil || claimed < d.cfg.BatchSize {
			return total, err
		}
	}
	return total, ctx.Err()
}

func (d *Dispatcher) dispatchBatch(ctx context.Context) (sent, claimed int, err error) {
	var expired []claimedCommand
	// The bookkeeping outlives a Stop so that what was published is recorded; publishing does not.
	dbCtx := context.WithoutCancel(ctx)
	err = d.store.withTx(dbCtx, func(t *txn) error {
		// What this transaction records (sent, attempts) may be lost in a database crash
		// without harm: the command is then sent again and the controller drops the repeated
		// id. Not waiting for the WAL flush keeps the next batch from waiting behind it.
		t.tx.later("dispatch transaction", `SET LOCAL synchronous_commit = off`)
		cmds, err := t.claimDue(dbCtx, d.cfg.BatchSize)
		if err != nil {
			return err
		}
		claimed = len(cmds)
		failed := map[int64]bool{} // controllers whose publish failed: keep their order
		for _, c := range cmds {
			now := d.store.now()
			switch {
			case c.afterState != nil && (*c.afterState == CommandExpired || *c.afterState == CommandRejected):
				reason := fmt.Sprintf("not sent: the command it waited for, %s, %s", *c.AfterID, *c.afterState)
				t.markExpired(c.ID, reason)
				c.Reason = reason
				expired = append(expired, c)
				continue
			case !now.Before(c.ExpiresAt):
				reason := fmt.Sprintf("expired at %s unacknowledged after %d attempt(s)", c.ExpiresAt.Format(time.RFC3339), c.Attempts)
				if c.Attempts == 0 {
					reason = fmt.Sprintf("expired at %s without being sent", c.ExpiresAt.Format(time.RFC3339))
				}
				if c.Attempts == 0 && c.afterState != nil && *c.afterState != CommandAcked {
					reason += fmt.Sprintf(": it waited for %s (%s)", *c.AfterID, *c.afterState)
				}
				if c.DownlinkStatus != nil {
					reason += fmt.Sprintf("; the network server's last word on its downlink: %s", *c.DownlinkStatus)
				}
				t.markExpired(c.ID, reason)
				c.Reason = reason
				expired = append(expired, c)
				continue
			case ctx.Err() != nil:
				continue // stopping: leave it for the next dispatcher
			case failed[c.ControllerID]:
				t.postpone(c.ID, d.retryAt(now, c))
				continue
			}
			serr := d.send(ctx, c)
			after := d.store.now()
			if serr != nil {
				failed[c.ControllerID] = true
				d.metrics.sendErrors.Inc()
				d.log.Warn("send command", "command", c.ID, "controller", c.controllerUID, "attempt", c.Attempts+1, "err", serr)
				t.markSendFailed(c.ID, d.retryAt(after, c), fmt.Sprintf("publish attempt %d failed: %v", c.Attempts+1, serr))
				continue
			}
			t.markSent(c.ID, after, d.retryAt(after, c))
			sent++
			d.metrics.sent.WithLabelValues(c.Action).Inc()
			if c.Attempts == 0 {
				d.metrics.latency.Observe(after.Sub(c.CreatedAt).Seconds())
			}
			d.log.Debug("command sent", "command", c.ID, "controller", c.controllerUID, "action", c.Action, "valve", c.Valve, "attempt", c.Attempts+1)
		}
		return nil
	})
	if err != nil {
		return 0, claimed, fmt.Errorf("dispatch: %w", err)
	}
	for _, c := range expired {
		d.metrics.expired.Inc()
		if err := d.store.settleExpired(dbCtx, c); err != nil {
			// The run monitor settles it later.
			d.log.Error("settle expired command", "command", c.ID, "err", err)
		}
	}
	return sent, claimed, nil
}

// retryAt is when c (about to be attempted for the Attempts+1-th time) is next due: after the
// backoff, and never later than its expiry, when it is expired.
func (d *Dispatcher) retryAt(now time.Time, c claimedCommand) time.Time {
	next := now.Add(backoff(d.cfg.RetryBase, d.cfg.RetryMax, c.Attempts))
	if c.transport == TransportLoRaWAN {
		next = now.Add(d.cfg.LoRaWANRetry)
	}
	if next.After(c.ExpiresAt) {
		next = c.ExpiresAt
	}
	return next
}

func (d *Dispatcher) send(ctx context.Context, c claimedCommand) error {
	// Never keep trying past the command's expiry: a publish that would reach the broker
	// later is abandoned (the controller would drop it anyway).
	timeout := min(d.cfg.SendTimeout, c.ExpiresAt.Sub(d.store.now()))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.transport != TransportLoRaWAN {
		return d.sender.SendCommand(ctx, c.controllerUID, c.wire())
	}
	if d.cfg.Downlinks == nil {
		return errNoDownlinks
	}
	if c.devEUI == nil {
		return fmt.Errorf("controller %s has no DevEUI", c.controllerUID)
	}
	w := c.wire()
	payload, err := valvecmd.EncodeCommand(valvecmd.Command{Action: w.Action, Ref: valvecmd.RefOf(w.ID), Valve: w.Valve,
		DurationS: w.DurationS, ExpiresAt: w.ExpiresAt})
	if err != nil {
		return err
	}
	fport := c.fport
	if fport == 0 {
		fport = DefaultLoRaWANFPort
	}
	dl := Downlink{CommandID: c.ID, ControllerUID: c.controllerUID, DevEUI: *c.devEUI,
		FPort: fport, Payload: payload, ExpiresAt: c.ExpiresAt, Route: c.route}
	if c.network != nil {
		dl.Network = *c.network
	}
	return d.cfg.Downlinks.SendDownlink(ctx, dl)
}

// settleExpired fails the run of a command the dispatcher has expired and raises an alert,
// unless an ack got there first.
func (s *Store) settleExpired(ctx context.Context, c claimedCommand) error {
	return s.withTx(ctx, func(t *txn) error {
		var v *lockedValve
		if vid, err := t.valveOfCommand(ctx, c.Command); err == nil {
			lv, err := t.lockValve(ctx, vid)
			if err != nil {
				return err
			}
			v = &lv
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		var run *Run
		if c.RunID != nil {
			r, err := t.lockRun(ctx, *c.RunID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if err == nil {
				run = &r
			}
		}
		cmd, err := t.lockCommand(ctx, c.ID)
		if err != nil {
			return err
		}
		if cmd.State != CommandExpired {
			return nil
		}
		what := fmt.Sprintf("%s of channel %s on controller %s", c.Action, channelName(c.Valve), c.controllerUID)
		subject := fmt.Sprintf("controller:%d", c.ControllerID)
		if v != nil {
			subject = subjectValve(v.id)
		}
		switch {
		case run != nil && c.Action == ActionOpen && run.State == RunStarting:
			reason := fmt.Sprintf("open command %s %s", c.ID, cmd.Reason)
			if err := t.endRun(ctx, run.ID, RunFailed, reason); err != nil {
				return err
			}
			return t.raiseAlert(ctx, s, Alert{FarmID: c.farmID, Kind: AlertCommandExpired, Severity: SeverityWarning, Subject: subject,
				Message: fmt.Sprintf("Run %d did not start: the %s %s; the zone was not watered.", run.ID, what, cmd.Reason)})
		case run != nil && c.Action == ActionClose && run.State == RunClosing:
			reason := fmt.Sprintf("close command %s %s; the controller closes the valve by itself when duration_s runs out", c.ID, cmd.Reason)
			if err := t.endRun(ctx, run.ID, RunFailed, reason); err != nil {
				return err
			}
			return t.raiseAlert(ctx, s, Alert{FarmID: c.farmID, Kind: AlertCommandExpired, Severity: SeverityCritical, Subject: subject,
				Message: fmt.Sprintf("Run %d: the %s %s. The valve may still be open until its duration runs out.", run.ID, what, cmd.Reason)})
		case c.Action != ActionOpen && run == nil:
			return t.raiseAlert(ctx, s, Alert{FarmID: c.farmID, Kind: AlertCommandExpired, Severity: SeverityCritical, Subject: subject,
				Message: fmt.Sprintf("The %s %s. The valve may still be open.", what, cmd.Reason)})
		case c.Action == ActionOpen && run == nil && v != nil && v.role != RoleZone:
			if err := t.actuatorFailed(ctx, v.id, c.ID); err != nil {
				return err
			}
			if strings.HasPrefix(cmd.Reason, "withdrawn") {
				return nil
			}
			return t.raiseAlert(ctx, s, Alert{FarmID: c.farmID, Kind: AlertActuatorFailed, Severity: SeverityCritical, Subject: subject,
				Message: fmt.Sprintf("The %s (%s) %s; the zones waiting for it did not start.", v.role, what, cmd.Reason)})
		}
		return nil
	})
}

func channelName(ch *int) string {
	if ch == nil {
		return "all"
	}
	return fmt.Sprint(*ch)
}
