package irrigation_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation"
)

func TestAcksMoveRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	h := irrigation.NewControllerHandler(f.store)
	d := f.dispatcher(irrigation.DispatcherConfig{})
	_, c, v := f.zoneWithValve()

	run := f.startRun(v.ID, 1200)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	open := f.commands(run.ID)[0]
	ackAt := f.clock.Advance(800 * time.Millisecond)
	ack(t, f, h, c.UID, open.ID, "ok")
	got := f.run(run.ID)
	if got.State != irrigation.RunOpen || got.StartedAt == nil || !got.StartedAt.Equal(ackAt) ||
		got.EndsAt == nil || !got.EndsAt.Equal(ackAt.Add(1200*time.Second)) {
		t.Fatalf("after ok on open: %+v", got)
	}
	if cmd := f.commands(run.ID)[0]; cmd.State != irrigation.CommandAcked || cmd.AckedAt == nil {
		t.Fatalf("open command after ack: %+v", cmd)
	}
	// A repeated ack changes nothing.
	f.clock.Advance(time.Second)
	ack(t, f, h, c.UID, open.ID, "ok")
	if again := f.run(run.ID); !again.StartedAt.Equal(ackAt) {
		t.Fatalf("a repeated ack moved started_at to %s", again.StartedAt)
	}
	// Stop: the close goes out, and its ack ends the run.
	if _, err := f.store.StopRun(f.ctx, run.ID, nil, "enough"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	closeCmd := f.commands(run.ID)[1]
	if closeCmd.Action != irrigation.ActionClose || closeCmd.State != irrigation.CommandSent {
		t.Fatalf("close = %+v", closeCmd)
	}
	f.clock.Advance(time.Second)
	ack(t, f, h, c.UID, closeCmd.ID, "ok")
	got = f.run(run.ID)
	if got.State != irrigation.RunDone || got.EndedAt == nil || !strings.Contains(got.EndReason, "closed") {
		t.Fatalf("after ok on close: %+v", got)
	}
	events, err := f.store.RunEvents(f.ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, e := range events {
		states = append(states, e.State)
		if e.Note == "" {
			t.Errorf("event %s without a note", e.State)
		}
	}
	if strings.Join(states, " ") != "planned starting open closing done" {
		t.Errorf("run went %v", states)
	}
}

func TestRejectedOpenFailsTheRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	h := irrigation.NewControllerHandler(f.store)
	_, c, v := f.zoneWithValve()
	run := f.startRun(v.ID, 600)
	ack(t, f, h, c.UID, f.commands(run.ID)[0].ID, "rejected")
	got := f.run(run.ID)
	if got.State != irrigation.RunFailed || !strings.Contains(got.EndReason, "valve 1 jammed") {
		t.Fatalf("after rejection: %+v", got)
	}
	if cmd := f.commands(run.ID)[0]; cmd.State != irrigation.CommandRejected || !strings.Contains(cmd.Reason, "jammed") {
		t.Fatalf("command after rejection: %+v", cmd)
	}
	a, ok := f.alert(irrigation.AlertCommandRejected, fmt.Sprintf("valve:%d", v.ID))
	if !ok || !strings.Contains(a.Message, "jammed") {
		t.Fatalf("no rejection alert: %+v", f.openAlerts())
	}
	// The next successful open resolves it.
	run2 := f.startRun(v.ID, 600)
	ack(t, f, h, c.UID, f.commands(run2.ID)[0].ID, "ok")
	if _, ok := f.alert(irrigation.AlertCommandRejected, fmt.Sprintf("valve:%d", v.ID)); ok {
		t.Error("the rejection alert is still open after a successful open")
	}
}

func TestAcksThatMatchNothingAreDropped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	h := irrigation.NewControllerHandler(f.store)
	_, c, v := f.zoneWithValve()
	other := f.controller("ctl-other")
	run := f.startRun(v.ID, 600)
	open := f.commands(run.ID)[0]
	for _, a := range []fieldnodes.ControllerAck{
		{ControllerUID: c.UID, CommandID: uuid.NewString(), Status: "ok"},   // unknown id
		{ControllerUID: c.UID, CommandID: "not-a-uuid", Status: "ok"},       // malformed
		{ControllerUID: other.UID, CommandID: open.ID, Status: "ok"},        // someone else's command
		{ControllerUID: c.UID, CommandID: open.ID, Status: "maybe"},         // unknown status
		{ControllerUID: "ghost", CommandID: uuid.NewString(), Status: "ok"}, // unknown controller
	} {
		if err := h.HandleAck(f.ctx, a); err != nil {
			t.Errorf("HandleAck(%+v) = %v, want nil (logged and dropped)", a, err)
		}
	}
	if got := f.run(run.ID); got.State != irrigation.RunStarting {
		t.Fatalf("run moved to %s on acks that matched nothing", got.State)
	}
	if cmd := f.commands(run.ID)[0]; cmd.State != irrigation.CommandPending {
		t.Fatalf("command moved to %s", cmd.State)
	}
	if err := h.HandleState(f.ctx, fieldnodes.ControllerState{ControllerUID: "ghost", Valves: map[int]string{1: "open"}}); err != nil {
		t.Errorf("state of an unknown controller: %v", err)
	}
}

func TestUnexpectedlyOpenValveIsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	h := irrigation.NewControllerHandler(f.store)
	_, c, v := f.zoneWithValve()
	d := f.dispatcher(irrigation.DispatcherConfig{})

	flow, vol := 12.5, 10342.0
	now := f.clock.Now()
	if err := h.HandleState(f.ctx, fieldnodes.ControllerState{ControllerUID: c.UID, TS: now, ReceivedAt: now,
		Valves: map[int]string{1: "open", 7: "closed"}, FlowLPM: &flow, VolumeL: &vol}); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Valve(f.ctx, v.ID)
	if err != nil || got.State != irrigation.ValveOpen || got.StateAt == nil || !got.StateAt.Equal(now) {
		t.Fatalf("valve after report: %+v, %v", got, err)
	}
	ctl, err := f.store.Controller(f.ctx, c.ID)
	if err != nil || ctl.FlowLPM == nil || *ctl.FlowLPM != 12.5 || ctl.VolumeL == nil || *ctl.VolumeL != 10342 ||
		ctl.LastSeenAt == nil || !ctl.LastSeenAt.Equal(now) {
		t.Fatalf("controller after report: %+v, %v", ctl, err)
	}
	if _, ok := f.alert(irrigation.AlertValveUnexpectedlyOpen, fmt.Sprintf("valve:%d", v.ID)); !ok {
		t.Fatalf("no alert: %+v", f.openAlerts())
	}
	// The retained report comes again: still one close.
	f.clock.Advance(5 * time.Second)
	report(t, f, h, c.UID, map[int]string{1: "open"})
	if n := f.count(`SELECT count(*) FROM commands WHERE controller_id = $1 AND action = 'close'`, c.ID); n != 1 {
		t.Fatalf("%d closes queued, want 1", n)
	}
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	sent := f.sender.all()
	if len(sent) != 1 || sent[0].Cmd.Action != fieldnodes.ActionClose || sent[0].Cmd.Valve != 1 || sent[0].UID != c.UID {
		t.Fatalf("sent %+v, want one close of channel 1", sent)
	}
	// The controller closes it and says so: the alert is resolved.
	ack(t, f, h, c.UID, sent[0].Cmd.ID, "ok")
	f.clock.Advance(time.Second)
	report(t, f, h, c.UID, map[int]string{1: "closed"})
	if _, ok := f.alert(irrigation.AlertValveUnexpectedlyOpen, fmt.Sprintf("valve:%d", v.ID)); ok {
		t.Fatal("alert still open after the valve reported closed")
	}
	// An older report arriving late is ignored.
	old := t0.Add(-time.Minute)
	if err := h.HandleState(f.ctx, fieldnodes.ControllerState{ControllerUID: c.UID, TS: old, ReceivedAt: f.clock.Now(),
		Valves: map[int]string{1: "open"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.store.Valve(f.ctx, v.ID); got.State != irrigation.ValveClosed {
		t.Fatalf("a stale report set the valve %s", got.State)
	}
	if n := f.count(`SELECT count(*) FROM commands WHERE controller_id = $1 AND action = 'close'`, c.ID); n != 1 {
		t.Fatalf("a stale report queued another close")
	}
}

func TestStateReportsReconcileRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	h := irrigation.NewControllerHandler(f.store)
	d := f.dispatcher(irrigation.DispatcherConfig{})
	_, c, v := f.zoneWithValve()

	// A report of the valve open arrives before the ack: the run is open.
	run := f.startRun(v.ID, 600)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	openedAt := f.clock.Advance(time.Second)
	report(t, f, h, c.UID, map[int]string{1: "open"})
	got := f.run(run.ID)
	if got.State != irrigation.RunOpen || !got.StartedAt.Equal(openedAt) || !got.EndsAt.Equal(openedAt.Add(600*time.Second)) {
		t.Fatalf("after an open report: %+v", got)
	}
	if n := f.count(`SELECT count(*) FROM commands WHERE action = 'close'`); n != 0 {
		t.Fatalf("a valve open for its run was closed")
	}
	// The ack, late, changes nothing.
	f.clock.Advance(time.Second)
	ack(t, f, h, c.UID, f.commands(run.ID)[0].ID, "ok")
	if again := f.run(run.ID); again.State != irrigation.RunOpen || !again.StartedAt.Equal(openedAt) {
		t.Fatalf("after the late ack: %+v", again)
	}
	// Closed before its end: not yet done (the run monitor decides at the end).
	f.clock.Advance(100 * time.Second)
	report(t, f, h, c.UID, map[int]string{1: "closed"})
	if got := f.run(run.ID); got.State != irrigation.RunOpen {
		t.Fatalf("run %s mid-way", got.State)
	}
	// The controller closes it by itself at the end of duration_s and reports it: done.
	f.clock.Set(openedAt.Add(600 * time.Second))
	report(t, f, h, c.UID, map[int]string{1: "closed"})
	got = f.run(run.ID)
	if got.State != irrigation.RunDone || !strings.Contains(got.EndReason, "duration over") {
		t.Fatalf("after the closed report: %+v", got)
	}
	if n := f.count(`SELECT count(*) FROM commands WHERE action = 'close'`); n != 0 {
		t.Fatalf("a close was sent for a valve that closed by itself")
	}
}

func TestLateAckOfAnExpiredOpenClosesTheValve(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	h := irrigation.NewControllerHandler(f.store)
	d := f.dispatcher(irrigation.DispatcherConfig{})
	_, c, v := f.zoneWithValve()
	run := f.startRun(v.ID, 600)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(61 * time.Second)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.run(run.ID); got.State != irrigation.RunFailed {
		t.Fatalf("run %s after expiry, want failed", got.State)
	}
	// The controller did open it in time; its ack was only delayed.
	ack(t, f, h, c.UID, f.commands(run.ID)[0].ID, "ok")
	cmds := f.commands(run.ID)
	if len(cmds) != 2 || cmds[1].Action != irrigation.ActionClose || cmds[1].State != irrigation.CommandPending {
		t.Fatalf("commands after the late ack: %+v", cmds)
	}
}
