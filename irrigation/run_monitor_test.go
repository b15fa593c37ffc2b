package irrigation_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/irrigation"
)

func newMonitor(t *testing.T, f *fixture) *irrigation.RunMonitor {
	t.Helper()
	m, err := irrigation.NewRunMonitor(f.store, irrigation.RunMonitorConfig{CloseGrace: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRunMonitorClosesOutOverdueRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	h := irrigation.NewControllerHandler(f.store)
	m := newMonitor(t, f)
	_, c1, silent := f.zoneWithValve()
	_, c2, reported := f.zoneWithValve()

	r1 := f.startRun(silent.ID, 300)
	r2 := f.startRun(reported.ID, 300)
	ack(t, f, h, c1.UID, f.commands(r1.ID)[0].ID, "ok")
	ack(t, f, h, c2.UID, f.commands(r2.ID)[0].ID, "ok")

	// The second controller reports its valve closed well before ends_at (it closed early, or
	// its clock is behind): the report alone does not end the run.
	f.clock.Advance(250 * time.Second)
	report(t, f, h, c2.UID, map[int]string{1: "closed"})
	if got := f.run(r2.ID); got.State != irrigation.RunOpen {
		t.Fatalf("run %s after an early closed report", got.State)
	}
	// Within ends_at + grace, nothing happens.
	f.clock.Advance(70 * time.Second)
	if n, err := m.Sweep(f.ctx); err != nil || n != 0 {
		t.Fatalf("sweep before grace: %d, %v", n, err)
	}
	f.clock.Advance(20 * time.Second)
	n, err := m.Sweep(f.ctx)
	if err != nil || n != 2 {
		t.Fatalf("sweep after grace: %d, %v", n, err)
	}
	got1 := f.run(r1.ID)
	cmds := f.commands(r1.ID)
	if got1.State != irrigation.RunClosing || len(cmds) != 2 || cmds[1].Action != irrigation.ActionClose {
		t.Fatalf("silent controller: run %+v, commands %+v", got1, cmds)
	}
	if got2 := f.run(r2.ID); got2.State != irrigation.RunDone || len(f.commands(r2.ID)) != 1 {
		t.Fatalf("reported controller: run %+v (no close should be sent)", got2)
	}
	// The close goes unanswered and expires: the run fails with a critical alert.
	d := f.dispatcher(irrigation.DispatcherConfig{})
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Minute)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.run(r1.ID); got.State != irrigation.RunFailed || !strings.Contains(got.EndReason, "closes the valve by itself") {
		t.Fatalf("after the close expired: %+v", got)
	}
	if a, ok := f.alert(irrigation.AlertCommandExpired, fmt.Sprintf("valve:%d", silent.ID)); !ok || a.Severity != irrigation.SeverityCritical {
		t.Fatalf("alert = %+v, %v", a, ok)
	}
}

func TestRunMonitorSettlesRunsLeftByACrash(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	m := newMonitor(t, f)
	_, _, v := f.zoneWithValve()
	run := f.startRun(v.ID, 300)
	// A dispatcher expired the open and died before it could fail the run.
	if _, err := f.db.Exec(f.ctx, `UPDATE commands SET state = 'expired', reason = 'expired by a dispatcher that then crashed' WHERE run_id = $1`, run.ID); err != nil {
		t.Fatal(err)
	}
	n, err := m.Sweep(f.ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	if got := f.run(run.ID); got.State != irrigation.RunFailed || !strings.Contains(got.EndReason, "crashed") {
		t.Fatalf("run = %+v", got)
	}
	if _, ok := f.alert(irrigation.AlertCommandExpired, fmt.Sprintf("valve:%d", v.ID)); !ok {
		t.Fatal("no alert")
	}
	if n, err := m.Sweep(f.ctx); err != nil || n != 0 {
		t.Fatalf("second sweep: %d, %v", n, err)
	}
	// A run whose open is still in the dispatcher's hands is left alone.
	run2 := f.startRun(v.ID, 300)
	if n, err := m.Sweep(f.ctx); err != nil || n != 0 || f.run(run2.ID).State != irrigation.RunStarting {
		t.Fatalf("sweep touched a starting run: %d, %v", n, err)
	}
}
