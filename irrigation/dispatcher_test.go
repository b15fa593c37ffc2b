package irrigation_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation"
)

func TestDispatcherWakesOnNotify(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	_, c, v := f.zoneWithValve()
	// Polling once an hour: only the notification can bring the command out in time.
	d := f.dispatcher(irrigation.DispatcherConfig{PollInterval: time.Hour, RetryBase: time.Hour, RetryMax: time.Hour})
	if err := d.Start(f.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	time.Sleep(50 * time.Millisecond) // let the first, empty pass go by
	run := f.startRun(v.ID, 900)
	got := f.sender.next(t)
	want := f.commands(run.ID)[0]
	if got.UID != c.UID || got.Cmd.ID != want.ID || got.Cmd.Action != fieldnodes.ActionOpen || got.Cmd.Valve != 1 ||
		got.Cmd.DurationS != 900 || !got.Cmd.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("sent %+v, want %+v", got, want)
	}
	eventually(t, "the send to be recorded", func() bool {
		cmd := f.commands(run.ID)[0]
		return cmd.State == irrigation.CommandSent && cmd.Attempts == 1 && cmd.SentAt != nil
	})
}

func TestTwoDispatchersSendEachCommandOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	const valves = 40
	ctl := f.controller("ctl-race")
	z := f.zone()
	var ids []int64
	for ch := 1; ch <= valves; ch++ {
		ids = append(ids, f.valve(ctl, ch, z.ID).ID)
	}
	cfg := irrigation.DispatcherConfig{PollInterval: 5 * time.Millisecond, RetryBase: time.Hour, RetryMax: time.Hour, BatchSize: 3}
	// Two instances: separate stores and dispatchers on one database.
	d1 := f.dispatcher(cfg)
	d2, err := irrigation.NewDispatcher(f.newStore(), f.sender, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Slow publishes widen the window in which the two could collide.
	f.sender.setFail(func(string, fieldnodes.Command) error { time.Sleep(time.Millisecond); return nil })
	for _, d := range []*irrigation.Dispatcher{d1, d2} {
		if err := d.Start(f.ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Stop)
	}
	// And direct passes racing them.
	ctx, cancel := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	for _, d := range []*irrigation.Dispatcher{d1, d2} {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := d.DispatchDue(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("DispatchDue: %v", err)
				}
			}
		})
	}
	for _, id := range ids {
		f.startRun(id, 300)
	}
	eventually(t, "every command to be sent", func() bool { return len(f.sender.all()) >= valves })
	time.Sleep(100 * time.Millisecond) // room for a duplicate to show up
	cancel()
	wg.Wait()
	seen := map[string]int{}
	for _, s := range f.sender.all() {
		seen[s.Cmd.ID]++
	}
	if len(seen) != valves {
		t.Fatalf("%d distinct commands sent, want %d", len(seen), valves)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("command %s sent %d times", id, n)
		}
	}
	if n := f.count(`SELECT count(*) FROM commands WHERE state = 'sent' AND attempts = 1`); n != valves {
		t.Errorf("%d commands recorded as sent once, want %d", n, valves)
	}
}

func TestRetryThenExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	_, c, v := f.zoneWithValve()
	d := f.dispatcher(irrigation.DispatcherConfig{RetryBase: 5 * time.Second, RetryMax: 20 * time.Second})
	run := f.startRun(v.ID, 600)
	expires := f.commands(run.ID)[0].ExpiresAt // t0 + 60 s

	// The broker is down: the publish fails and is retried after the backoff.
	f.sender.setFail(func(string, fieldnodes.Command) error { return errors.New("broker unreachable") })
	if n, err := d.DispatchDue(f.ctx); err != nil || n != 0 {
		t.Fatalf("dispatch with the broker down: %d, %v", n, err)
	}
	cmd := f.commands(run.ID)[0]
	if cmd.State != irrigation.CommandPending || cmd.Attempts != 1 || !strings.Contains(cmd.Reason, "broker unreachable") ||
		!cmd.NextAttemptAt.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after a failed publish: %+v", cmd)
	}
	f.clock.Advance(4 * time.Second)
	if n, _ := d.DispatchDue(f.ctx); n != 0 || f.commands(run.ID)[0].Attempts != 1 {
		t.Fatal("retried before the backoff was over")
	}
	// The broker is back: the retry goes out.
	f.sender.setFail(nil)
	f.clock.Advance(time.Second)
	if n, err := d.DispatchDue(f.ctx); err != nil || n != 1 {
		t.Fatalf("retry: %d, %v", n, err)
	}
	cmd = f.commands(run.ID)[0]
	if cmd.State != irrigation.CommandSent || cmd.Attempts != 2 || !cmd.NextAttemptAt.Equal(t0.Add(15*time.Second)) {
		t.Fatalf("after the retry: %+v", cmd)
	}
	// No ack: it is resent with a growing backoff (10 s, 20 s, then capped at 20 s), and its last
	// retry is due at its expiry, not after.
	for _, step := range []time.Duration{10 * time.Second, 20 * time.Second, 20 * time.Second} {
		f.clock.Advance(step)
		if n, err := d.DispatchDue(f.ctx); err != nil || n != 1 {
			t.Fatalf("resend after %s: %d, %v", step, n, err)
		}
	}
	cmd = f.commands(run.ID)[0]
	if cmd.Attempts != 5 || !cmd.NextAttemptAt.Equal(expires) {
		t.Fatalf("after resends: attempts %d, next %s (expiry %s)", cmd.Attempts, cmd.NextAttemptAt, expires)
	}
	// At expiry: expired, not sent; the run fails and an alert is raised.
	f.clock.Set(expires)
	if n, err := d.DispatchDue(f.ctx); err != nil || n != 0 {
		t.Fatalf("dispatch at expiry: %d, %v", n, err)
	}
	cmd = f.commands(run.ID)[0]
	if cmd.State != irrigation.CommandExpired || !strings.Contains(cmd.Reason, "unacknowledged after 5 attempt") {
		t.Fatalf("at expiry: %+v", cmd)
	}
	got := f.run(run.ID)
	if got.State != irrigation.RunFailed || !strings.Contains(got.EndReason, "expired") || got.EndedAt == nil {
		t.Fatalf("run after expiry: %+v", got)
	}
	a, ok := f.alert(irrigation.AlertCommandExpired, fmt.Sprintf("valve:%d", v.ID))
	if !ok || a.Severity != irrigation.SeverityWarning || !strings.Contains(a.Message, c.UID) {
		t.Fatalf("alert after expiry: %+v, %v (open: %+v)", a, ok, f.openAlerts())
	}
	f.clock.Advance(time.Hour)
	if n, _ := d.DispatchDue(f.ctx); n != 0 {
		t.Fatal("sent after expiry")
	}
	sends := f.sender.all()
	if len(sends) != 4 {
		t.Fatalf("%d publishes, want 4 (the failed one is not recorded)", len(sends))
	}
	for _, s := range sends {
		if !s.At.Before(expires) {
			t.Errorf("published at %s, at or after expires_at %s", s.At, expires)
		}
	}
}

func TestCommandIsNotSentLateEvenWithinABatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	_, _, v1 := f.zoneWithValve()
	_, _, v2 := f.zoneWithValve()
	d := f.dispatcher(irrigation.DispatcherConfig{})
	r1 := f.startRun(v1.ID, 600)
	r2 := f.startRun(v2.ID, 600)
	// The first publish takes so long that the second command expires meanwhile.
	f.sender.setFail(func(string, fieldnodes.Command) error { f.clock.Advance(61 * time.Second); return nil })
	n, err := d.DispatchDue(f.ctx)
	if err != nil || n != 1 {
		t.Fatalf("dispatch: %d sent, %v; want 1", n, err)
	}
	if c := f.commands(r1.ID)[0]; c.State != irrigation.CommandSent {
		t.Errorf("first command %s", c.State)
	}
	if c := f.commands(r2.ID)[0]; c.State != irrigation.CommandExpired || c.Attempts != 0 || !strings.Contains(c.Reason, "without being sent") {
		t.Errorf("second command = %+v, want expired unsent", c)
	}
	if got := f.run(r2.ID); got.State != irrigation.RunFailed {
		t.Errorf("second run %s, want failed", got.State)
	}
	if len(f.sender.all()) != 1 {
		t.Errorf("%d publishes, want 1", len(f.sender.all()))
	}
}

func TestAFailedPublishHoldsBackTheControllersLaterCommands(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.zone()
	c1 := f.controller("ctl-down")
	c2 := f.controller("ctl-up")
	a := f.valve(c1, 1, z.ID)
	b := f.valve(c1, 2, z.ID)
	other := f.valve(c2, 1, z.ID)
	for _, v := range []irrigation.Valve{a, b, other} {
		f.startRun(v.ID, 60)
	}
	f.sender.setFail(func(uid string, _ fieldnodes.Command) error {
		if uid == "ctl-down" {
			return errors.New("no route")
		}
		return nil
	})
	d := f.dispatcher(irrigation.DispatcherConfig{})
	if n, err := d.DispatchDue(f.ctx); err != nil || n != 1 {
		t.Fatalf("dispatch: %d, %v", n, err)
	}
	// One publish to the failing controller was attempted; its second command waits its turn.
	if got := f.count(`SELECT count(*) FROM commands WHERE controller_id = $1 AND attempts = 1`, c1.ID); got != 1 {
		t.Errorf("%d attempts at the failing controller, want 1", got)
	}
	if got := f.count(`SELECT count(*) FROM commands WHERE controller_id = $1 AND state = 'sent'`, c2.ID); got != 1 {
		t.Errorf("the healthy controller's command was not sent")
	}
}
