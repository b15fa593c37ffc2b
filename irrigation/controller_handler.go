package irrigation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/aghali/aghali/fieldnodes"
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

// stateClockTolerance is how far a controller's clock may run behind ours when its report says
// a valve closed at the end of its run.
const stateClockTolerance = 5 * time.Second

// HandleAck applies a controller's answer to a command: an ok on open opens the run (ends_at is
// the ack time plus its duration), a rejection fails it and raises an alert; an ok on close
// ends the run.
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
		if cmd.State == CommandAcked || cmd.State == CommandRejected {
			h.log.Debug("repeated ack ignored", "id", cmd.ID)
			return nil
		}
		ok := ack.Status == "ok"
		if ok {
			err = t.markAcked(ctx, cmd.ID, at)
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
	if run == nil || (run.State != RunStarting && run.State != RunPlanned) {
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
		if err := t.controllerSeen(ctx, ctl.id, received, st.FlowLPM, st.VolumeL); err != nil {
			return err
		}
		if len(st.Valves) == 0 {
			return nil
		}
		valves, err := t.lockControllerValves(ctx, ctl.id)
		if err != nil {
			return err
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
			if err := t.setValveState(ctx, v.id, state, at); err != nil {
				return err
			}
			if err := h.reconcile(ctx, t, ctl, st.ControllerUID, v, state, at); err != nil {
				return err
			}
		}
		return nil
	})
}

func (h *ControllerHandler) reconcile(ctx context.Context, t *txn, ctl controllerRef, uid string, v *lockedValve, state string, at time.Time) error {
	s := h.store
	if v.liveRunID == nil {
		switch state {
		case ValveClosed:
			return t.resolveAlert(ctx, ctl.farmID, AlertValveUnexpectedlyOpen, subjectValve(v.id))
		case ValveOpen:
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
