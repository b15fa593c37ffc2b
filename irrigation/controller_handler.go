package irrigation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/codec/valvecmd"
)

// ControllerHandler applies what controllers report, acks and valve states, to runs and valves.
// It implements fieldnodes.ControllerHandler. An ack or report that refers to nothing known is
// logged and dropped (returning an error would only make the broker redeliver it).
type ControllerHandler struct {
	store *Store
	log   *slog.Logger
}

var _ fieldnodes.ControllerHandler = (*ControllerHandler)(nil)

// NewControllerHandler returns the handler for store.
func NewControllerHandler(store *Store) *ControllerHandler {
	return &ControllerHandler{store: store, log: store.log.With("part", "controller-handler")}
}

// stuckGrace is how long past its run's end (or its confirmed close) a valve may still be
// reported open before it is taken to be stuck open.
const stuckGrace = 10 * time.Second

// stuckOpen handles a valve with no live run reported open after the controller confirmed
// closing it: the valve is stuck (mechanically, or the controller lies). It raises a critical
// alert, and sends one more close when the alert is new. A report from before the close was
// carried out (or within stuckGrace of it) is left alone. It reports whether the report was
// dealt with here (true), or is of a valve open for no known reason (false).
func (h *ControllerHandler) stuckOpen(ctx context.Context, t *txn, ctl controllerRef, uid string, v *lockedValve, at time.Time) (bool, error) {
	var action string
	var ackedAt *time.Time
	err := t.tx.QueryRow(ctx, `SELECT action, acked_at FROM commands
		WHERE controller_id = $1 AND (valve = $2 OR action = 'close_all') AND state = 'acked'
		ORDER BY acked_at DESC, seq DESC LIMIT 1`, v.controllerID, v.channel).Scan(&action, &ackedAt)
	if errors.Is(err, ErrNotFound) || errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, interpretError(err, "last acked command")
	}
	if action == ActionOpen || ackedAt == nil {
		return false, nil
	}
	if at.Sub(*ackedAt) < stuckGrace {
		// The report was made before the close was carried out (reports and acks may be
		// handled out of order by several instances), or too soon after it to tell.
		return true, nil
	}
	var open bool
	if err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alerts WHERE farm_id = $1 AND kind = $2 AND subject = $3
		AND resolved_at IS NULL)`, ctl.farmID, AlertValveStuckOpen, subjectValve(v.id)).Scan(&open); err != nil {
		return false, interpretError(err, "stuck alert")
	}
	if open {
		return true, nil
	}
	if err := t.raiseAlert(ctx, h.store, Alert{FarmID: ctl.farmID, Kind: AlertValveStuckOpen, Severity: SeverityCritical,
		Subject: subjectValve(v.id), Message: fmt.Sprintf("Valve %d (controller %s channel %d) is reported open at %s although the controller confirmed closing it at %s: it is stuck open. Another close was sent; check the valve.",
			v.id, uid, v.channel, at.Format(time.RFC3339), ackedAt.Format(time.RFC3339))}); err != nil {
		return true, err
	}
	inFlight, err := t.closeInFlight(ctx, v.controllerID, v.channel)
	if err != nil || inFlight {
		return true, err
	}
	ch := v.channel
	_, err = t.enqueue(ctx, h.store, newCommand{controllerID: v.controllerID, action: ActionClose, valve: &ch,
		reason: "valve reported open after a confirmed close (stuck open)"})
	return true, err
}

// stateClockTolerance is how far a controller's clock may run behind ours when its report says
// a valve closed at the end of its run.
const stateClockTolerance = 5 * time.Second

// HandleAck applies a controller's answer to a command: an ok on open opens the run (ends_at is
// the ack time plus its duration), a rejection fails it and raises an alert; an ok on close
// ends the run. A repeated answer changes nothing, except a rejection of a LoRaWAN command the
// network server said the controller received (acked on that word): the controller's refusal
// stands.
func (h *ControllerHandler) HandleAck(ctx context.Context, ack fieldnodes.ControllerAck) error {
	if _, err := uuid.Parse(ack.CommandID); err != nil {
		h.log.Warn("ack with a malformed command id dropped", "controller", ack.ControllerUID, "id", ack.CommandID)
		return nil
	}
	if ack.Status != "ok" && ack.Status != "rejected" {
		h.log.Warn("ack with an unknown status dropped", "controller", ack.ControllerUID, "id", ack.CommandID, "status", ack.Status)
		return nil
	}
	s := h.store
	return s.withTx(ctx, func(t *txn) error {
		at := ack.ReceivedAt.UTC().Truncate(time.Microsecond)
		if at.IsZero() {
			at = t.now
		}
		peek, err := t.peekCommand(ctx, ack.CommandID)
		if errors.Is(err, ErrNotFound) {
			h.log.Warn("ack for an unknown command dropped", "controller", ack.ControllerUID, "id", ack.CommandID)
			return nil
		}
		if err != nil {
			return err
		}
		if peek.controllerUID != ack.ControllerUID {
			h.log.Warn("ack from another controller than the command's dropped", "controller", ack.ControllerUID,
				"id", ack.CommandID, "addressed_to", peek.controllerUID)
			return nil
		}
		var v *lockedValve
		if vid, err := t.valveOfCommand(ctx, peek.Command); err == nil {
			lv, err := t.lockValve(ctx, vid)
			if err != nil {
				return err
			}
			v = &lv
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		var run *Run
		if peek.RunID != nil {
			r, err := t.lockRun(ctx, *peek.RunID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if err == nil {
				run = &r
			}
		}
		cmd, err := t.lockCommand(ctx, ack.CommandID)
		if err != nil {
			return err
		}
		ok := ack.Status == "ok"
		// A LoRaWAN command acknowledged by the network server was received; the controller may
		// still refuse it (it came too late, a valve it does not have), and says so.
		refusedAfterReceipt := cmd.State == CommandAcked && !ok && networkAcked(cmd)
		if (cmd.State == CommandAcked || cmd.State == CommandRejected) && !refusedAfterReceipt {
			h.log.Debug("repeated ack ignored", "id", cmd.ID)
			return nil
		}
		if ok {
			err = t.markAcked(ctx, cmd.ID, at)
			if err == nil && cmd.Action == ActionOpen {
				// Commands waiting for this one (a zone's open behind its pump) are due now.
				var waiting bool
				err = t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM commands WHERE after_id = $1 AND state = 'pending')`,
					cmd.ID).Scan(&waiting)
				t.notify = t.notify || waiting
			}
		} else {
			err = t.markRejected(ctx, cmd.ID, at, "rejected by the controller: "+ack.Reason)
		}
		if err != nil {
			return err
		}
		if cmd.State == CommandExpired {
			h.log.Warn("ack for a command already expired", "id", cmd.ID, "status", ack.Status)
		}
		peek.Command = cmd
		switch {
		case cmd.Action == ActionOpen && ok:
			return h.openConfirmed(ctx, t, peek, v, run, at)
		case cmd.Action == ActionOpen:
			return h.openRejected(ctx, t, peek, v, run, ack.Reason)
		case cmd.Action == ActionClose && ok:
			if run != nil && (run.State == RunClosing || run.State == RunOpen) {
				return t.endRun(ctx, run.ID, RunDone, fmt.Sprintf("controller confirmed the valve closed at %s", at.Format(time.RFC3339)))
			}
			return nil
		default: // a rejected close or close_all
			return h.closeRejected(ctx, t, peek, v, run, ack.Reason)
		}
	})
}

func (h *ControllerHandler) openConfirmed(ctx context.Context, t *txn, c claimedCommand, v *lockedValve, run *Run, at time.Time) error {
	s := h.store
	if run != nil && (run.State == RunStarting || run.State == RunPlanned) {
		ends := at.Add(time.Duration(run.DurationS) * time.Second)
		note := fmt.Sprintf("controller confirmed the valve open at %s; it closes by itself at %s",
			at.Format(time.RFC3339), ends.Format(time.RFC3339))
		if err := t.setRunState(ctx, run.ID, RunOpen, note, runTimes{startedAt: at, endsAt: ends}); err != nil {
			return err
		}
		if v != nil {
			for _, kind := range []string{AlertCommandExpired, AlertCommandRejected} {
				if err := t.resolveAlert(ctx, c.farmID, kind, subjectValve(v.id)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if run != nil && (run.State == RunOpen || run.State == RunClosing) {
		return nil // a state report got there first, or a stop is already closing it
	}
	if v != nil && v.role != RoleZone && v.holdUntil != nil {
		// A pump or master valve switched on (or kept on) for its source's runs.
		return t.resolveAlert(ctx, c.farmID, AlertActuatorFailed, subjectValve(v.id))
	}
	// The valve opened for a run that is over (it was stopped, or its open expired before the
	// ack came back): close it unless something else now holds the valve.
	if v == nil || v.liveRunID != nil {
		return nil
	}
	inFlight, err := t.closeInFlight(ctx, v.controllerID, v.channel)
	if err != nil || inFlight {
		return err
	}
	note := fmt.Sprintf("late ack: the controller opened channel %d after its run ended", v.channel)
	ch := v.channel
	if _, err := t.enqueue(ctx, s, newCommand{controllerID: v.controllerID, runID: c.RunID, action: ActionClose, valve: &ch, reason: note}); err != nil {
		return err
	}
	if run != nil {
		return t.addEvent(ctx, run.ID, run.State, note+"; close queued")
	}
	return nil
}

func (h *ControllerHandler) openRejected(ctx context.Context, t *txn, c claimedCommand, v *lockedValve, run *Run, reason string) error {
	if run == nil && v != nil && v.role != RoleZone {
		if err := t.actuatorFailed(ctx, v.id, c.ID); err != nil {
			return err
		}
		return t.raiseAlert(ctx, h.store, Alert{FarmID: c.farmID, Kind: AlertActuatorFailed, Severity: SeverityCritical,
			Subject: subjectValve(v.id), Message: fmt.Sprintf("Controller %s rejected switching on the %s on channel %d: %s; the zones waiting for it did not start.",
				c.controllerUID, v.role, v.channel, reason)})
	}
	// A run opened on the network server's word that the controller received the open is
	// still the open's to fail.
	opening := run != nil && (run.State == RunStarting || run.State == RunPlanned || run.State == RunOpen && networkAcked(c.Command))
	if !opening {
		return nil
	}
	why := fmt.Sprintf("controller %s rejected the open of channel %s: %s", c.controllerUID, channelName(c.Valve), reason)
	if err := t.endRun(ctx, run.ID, RunFailed, why); err != nil {
		return err
	}
	subject := fmt.Sprintf("controller:%d", c.ControllerID)
	if v != nil {
		subject = subjectValve(v.id)
	}
	return t.raiseAlert(ctx, h.store, Alert{FarmID: c.farmID, Kind: AlertCommandRejected, Severity: SeverityWarning,
		Subject: subject, Message: fmt.Sprintf("Run %d did not start: %s.", run.ID, why)})
}

func (h *ControllerHandler) closeRejected(ctx context.Context, t *txn, c claimedCommand, v *lockedValve, run *Run, reason string) error {
	why := fmt.Sprintf("controller %s rejected the %s of channel %s: %s", c.controllerUID, c.Action, channelName(c.Valve), reason)
	if run != nil && run.Live() {
		if err := t.endRun(ctx, run.ID, RunFailed, why+"; the controller closes the valve by itself when duration_s runs out"); err != nil {
			return err
		}
	}
	subject := fmt.Sprintf("controller:%d", c.ControllerID)
	if v != nil {
		subject = subjectValve(v.id)
	}
	return t.raiseAlert(ctx, h.store, Alert{FarmID: c.farmID, Kind: AlertCommandRejected, Severity: SeverityCritical,
		Subject: subject, Message: fmt.Sprintf("The %s. The valve may still be open.", why)})
}

// HandleState records a controller's report of its valves, flow and totaliser, then reconciles
// runs with it: an open run whose valve reports closed after its end is done, a closing run
// whose valve reports closed is done, a starting run whose valve reports open is open, and a
// valve open with no live run is closed and alerted on. Reports older than what is recorded are
// ignored.
func (h *ControllerHandler) HandleState(ctx context.Context, st fieldnodes.ControllerState) error {
	s := h.store
	return s.withTx(ctx, func(t *txn) error {
		received := st.ReceivedAt.UTC().Truncate(time.Microsecond)
		if received.IsZero() {
			received = t.now
		}
		at := st.TS.UTC().Truncate(time.Microsecond)
		if at.IsZero() || at.After(received) {
			at = received // a controller clock ahead of ours is not believed
		}
		ctl, err := t.controllerByUID(ctx, st.ControllerUID)
		if errors.Is(err, ErrNotFound) {
			h.log.Warn("state from an unknown controller dropped", "controller", st.ControllerUID)
			return nil
		}
		if err != nil {
			return err
		}
		valves, err := t.lockControllerValves(ctx, ctl.id) // and the farm, before anything else
		if err != nil {
			return err
		}
		var prevVolume *float64
		var prevSeen *time.Time
		if err := t.tx.QueryRow(ctx, `SELECT volume_l, last_seen_at FROM controllers WHERE id = $1`, ctl.id).Scan(&prevVolume, &prevSeen); err != nil {
			return interpretError(err, "controller volume")
		}
		if err := t.controllerSeen(ctx, ctl.id, received, st.FlowLPM, st.VolumeL); err != nil {
			return err
		}
		fresh := prevSeen == nil || !received.Before(*prevSeen)
		sources := map[int64]bool{}
		if len(st.Valves) == 0 {
			return h.meter(ctx, t, ctl, st, prevVolume, fresh, at)
		}
		channels := make([]int, 0, len(st.Valves))
		for ch := range st.Valves {
			channels = append(channels, ch)
		}
		slices.Sort(channels)
		for _, ch := range channels {
			v := valves[ch]
			if v == nil {
				continue // a channel with no valve registered
			}
			if v.stateAt != nil && at.Before(*v.stateAt) {
				continue // older than what we know
			}
			state := st.Valves[ch]
			if state != ValveOpen && state != ValveClosed {
				state = ValveUnknown
			}
			if v.state != state && v.sourceID != nil {
				sources[*v.sourceID] = true // a stray open valve closed frees capacity
			}
			if err := t.setValveState(ctx, v.id, state, at); err != nil {
				return err
			}
			if err := h.reconcile(ctx, t, ctl, st.ControllerUID, v, state, at); err != nil {
				return err
			}
		}
		for src := range sources {
			if err := t.admitQueue(ctx, ctl.farmID, src); err != nil {
				return err
			}
		}
		return h.meter(ctx, t, ctl, st, prevVolume, fresh, at)
	})
}

// meter applies a state report's flow and totaliser: the volume since the previous report is
// shared among the runs open on the controller, and the flow is judged (leak, high, low).
// A report older than the last one is not judged.
func (h *ControllerHandler) meter(ctx context.Context, t *txn, ctl controllerRef, st fieldnodes.ControllerState, prevVolume *float64, fresh bool, at time.Time) error {
	if !fresh {
		return nil
	}
	m := controllerMeter(ctl.farmID, ctl.id, st.ControllerUID)
	if st.VolumeL != nil && prevVolume != nil && *st.VolumeL > *prevVolume {
		if err := t.shareVolume(ctx, m, *st.VolumeL-*prevVolume); err != nil {
			return err
		}
	}
	if st.FlowLPM == nil {
		return nil
	}
	return t.judgeFlow(ctx, m, *st.FlowLPM, at)
}

func (h *ControllerHandler) reconcile(ctx context.Context, t *txn, ctl controllerRef, uid string, v *lockedValve, state string, at time.Time) error {
	s := h.store
	if v.role != RoleZone && v.holdUntil != nil {
		// A pump or master valve that should be on.
		if state == ValveOpen {
			return t.resolveAlert(ctx, ctl.farmID, AlertValveUnexpectedlyOpen, subjectValve(v.id))
		}
		return nil
	}
	if v.liveRunID == nil {
		switch state {
		case ValveClosed:
			for _, kind := range []string{AlertValveUnexpectedlyOpen, AlertValveStuckOpen} {
				if err := t.resolveAlert(ctx, ctl.farmID, kind, subjectValve(v.id)); err != nil {
					return err
				}
			}
			return nil
		case ValveOpen:
			if stuck, err := h.stuckOpen(ctx, t, ctl, uid, v, at); err != nil || stuck {
				return err
			}
			inFlight, err := t.closeInFlight(ctx, v.controllerID, v.channel)
			if err != nil || inFlight {
				return err
			}
			note := fmt.Sprintf("controller reported channel %d open at %s with no live run", v.channel, at.Format(time.RFC3339))
			ch := v.channel
			if _, err := t.enqueue(ctx, s, newCommand{controllerID: v.controllerID, action: ActionClose, valve: &ch, reason: note}); err != nil {
				return err
			}
			return t.raiseAlert(ctx, s, Alert{FarmID: ctl.farmID, Kind: AlertValveUnexpectedlyOpen, Severity: SeverityWarning,
				Subject: subjectValve(v.id),
				Message: fmt.Sprintf("Valve %d (controller %s channel %d) was reported open with no run; a close was sent.", v.id, uid, v.channel)})
		}
		return nil
	}
	run, err := t.lockRun(ctx, *v.liveRunID)
	if err != nil {
		return err
	}
	if state == ValveOpen && run.State == RunOpen && run.EndsAt != nil && at.After(run.EndsAt.Add(stuckGrace)) {
		// It should have closed by itself at ends_at.
		if err := t.raiseAlert(ctx, s, Alert{FarmID: ctl.farmID, Kind: AlertValveStuckOpen, Severity: SeverityCritical,
			Subject: subjectValve(v.id), Message: fmt.Sprintf("Valve %d (controller %s channel %d) is still open at %s, %s after run %d should have ended; closing it.",
				v.id, uid, v.channel, at.Format(time.RFC3339), at.Sub(*run.EndsAt).Round(time.Second), run.ID)}); err != nil {
			return err
		}
		_, err := t.closeRun(ctx, s, *v, run.ID, "the valve did not close by itself at the end of its duration")
		return err
	}
	switch {
	case state == ValveClosed && run.State == RunOpen && run.EndsAt != nil && !at.Before(run.EndsAt.Add(-stateClockTolerance)):
		return t.endRun(ctx, run.ID, RunDone, fmt.Sprintf("controller reported the valve closed at %s, its duration over", at.Format(time.RFC3339)))
	case state == ValveClosed && run.State == RunClosing && !at.Before(run.UpdatedAt):
		return t.endRun(ctx, run.ID, RunDone, fmt.Sprintf("controller reported the valve closed at %s", at.Format(time.RFC3339)))
	case state == ValveOpen && run.State == RunStarting:
		open, err := t.lockRunCommand(ctx, run.ID, ActionOpen)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			return err
		}
		if open.SentAt == nil || at.Before(*open.SentAt) {
			return nil // the report predates the open
		}
		ends := at.Add(time.Duration(run.DurationS) * time.Second)
		note := fmt.Sprintf("controller reported the valve open at %s before acknowledging; it closes by itself at %s",
			at.Format(time.RFC3339), ends.Format(time.RFC3339))
		return t.setRunState(ctx, run.ID, RunOpen, note, runTimes{startedAt: at, endsAt: ends})
	}
	return nil
}

// networkAcked reports whether a LoRaWAN controller's network server said the controller
// received c.
func networkAcked(c Command) bool {
	return c.DownlinkStatus != nil && *c.DownlinkStatus == DownlinkAcked
}

// ErrNotControllerUplink: a LoRaWAN uplink that is not from a registered controller on its
// command port: nothing for the controller (HandleLoRaWANEvent makes it
// fieldnodes.ErrNothingForController).
var ErrNotControllerUplink = errors.New("irrigation: not a controller uplink")

// HandleLoRaWANUplink applies an uplink of a LoRaWAN controller (identified by its DevEUI) on
// its command port: an ack (matched to the controller's command by its 16-bit reference,
// preferring one still in flight) or a state report, in the compact layout of package valvecmd.
// HandleLoRaWANEvent calls it for every uplink of a controller's DevEUI; it returns
// ErrNotControllerUplink for an unknown DevEUI or another port, and the decoder's error for a
// payload it cannot read.
func (h *ControllerHandler) HandleLoRaWANUplink(ctx context.Context, devEUI string, fport int, payload []byte, received time.Time) error {
	var id int64
	var uid string
	var port *int
	err := h.store.db.QueryRow(ctx, `SELECT id, uid, lorawan_fport FROM controllers WHERE dev_eui = $1 AND transport = 'lorawan'`,
		devEUI).Scan(&id, &uid, &port)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotControllerUplink
	}
	if err != nil {
		return interpretError(err, "controller by DevEUI")
	}
	want := DefaultLoRaWANFPort
	if port != nil {
		want = *port
	}
	if fport != want {
		return ErrNotControllerUplink
	}
	up, err := valvecmd.DecodeUplink(payload)
	if err != nil {
		return err
	}
	if up.Ack != nil {
		var cmdID string
		err := h.store.db.QueryRow(ctx, `SELECT id::text FROM commands
			WHERE controller_id = $1 AND substr(replace(id::text, '-', ''), 1, 4) = $2
			ORDER BY state IN ('pending', 'sent') DESC, seq DESC LIMIT 1`, id, fmt.Sprintf("%04x", up.Ack.Ref)).Scan(&cmdID)
		if errors.Is(err, pgx.ErrNoRows) {
			h.log.Warn("LoRaWAN ack for no known command dropped", "controller", uid, "ref", fmt.Sprintf("%04x", up.Ack.Ref))
			return nil
		}
		if err != nil {
			return interpretError(err, "command by reference")
		}
		a := fieldnodes.ControllerAck{ControllerUID: uid, CommandID: cmdID, Status: "ok", ReceivedAt: received}
		if !up.Ack.OK {
			a.Status, a.Reason = "rejected", up.Ack.Reason()
		}
		return h.HandleAck(ctx, a)
	}
	st := fieldnodes.ControllerState{ControllerUID: uid, TS: up.State.TS, Valves: map[int]string{}, FlowLPM: up.State.FlowLPM,
		VolumeL: up.State.VolumeL, ReceivedAt: received}
	if st.TS.IsZero() {
		st.TS = received
	}
	for ch, open := range up.State.Open {
		st.Valves[ch] = ValveClosed
		if open {
			st.Valves[ch] = ValveOpen
		}
	}
	return h.HandleState(ctx, st)
}
