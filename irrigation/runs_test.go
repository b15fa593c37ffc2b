package irrigation_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/aghali/aghali/irrigation"
)

func TestStartRunPersistsRunAndCommandTogether(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, c, v := f.zoneWithValve()
	user := int64(0)
	if err := f.db.QueryRow(f.ctx, `INSERT INTO users (email, password_hash) VALUES ('a@b.az', 'x') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	run, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: v.ID, DurationS: 1200, Origin: irrigation.OriginUser,
		RequestedBy: &user, Reason: "farmer opened it from the map"})
	if err != nil {
		t.Fatal(err)
	}
	if run.State != irrigation.RunStarting || run.ZoneID != z.ID || run.FarmID != f.farm || run.DurationS != 1200 ||
		run.RequestedBy == nil || *run.RequestedBy != user || !run.CreatedAt.Equal(t0) || run.StartedAt != nil {
		t.Fatalf("run = %+v", run)
	}
	cmds := f.commands(run.ID)
	if len(cmds) != 1 {
		t.Fatalf("%d commands, want 1", len(cmds))
	}
	cmd := cmds[0]
	if _, err := uuid.Parse(cmd.ID); err != nil {
		t.Errorf("command id %q is not a UUID", cmd.ID)
	}
	if cmd.Action != irrigation.ActionOpen || cmd.ControllerID != c.ID || cmd.Valve == nil || *cmd.Valve != 1 ||
		cmd.DurationS == nil || *cmd.DurationS != 1200 || cmd.State != irrigation.CommandPending ||
		!cmd.ExpiresAt.Equal(t0.Add(60*time.Second)) || cmd.Attempts != 0 {
		t.Fatalf("command = %+v", cmd)
	}
	events, err := f.store.RunEvents(f.ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].State != irrigation.RunPlanned || events[0].Note != "farmer opened it from the map" ||
		events[1].State != irrigation.RunStarting || !strings.Contains(events[1].Note, cmd.ID) {
		t.Fatalf("events = %+v", events)
	}

	// When the command cannot be queued, the run is not persisted either.
	if _, err := f.db.Exec(f.ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'outbox unavailable'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON commands FOR EACH ROW EXECUTE FUNCTION refuse();`); err != nil {
		t.Fatal(err)
	}
	_, _, v2 := f.zoneWithValve()
	if _, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: v2.ID, DurationS: 60, Origin: irrigation.OriginUser}); err == nil {
		t.Fatal("StartRun succeeded without its command")
	}
	if n := f.count(`SELECT count(*) FROM irrigation_runs WHERE valve_id = $1`, v2.ID); n != 0 {
		t.Fatalf("%d runs persisted without a command", n)
	}
	if n := f.count(`SELECT count(*) FROM run_events e JOIN irrigation_runs r ON r.id = e.run_id WHERE r.valve_id = $1`, v2.ID); n != 0 {
		t.Fatalf("%d events persisted without a command", n)
	}
}

func TestStartRunCapsAtMaxRuntime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	_, _, v := f.zoneWithValve(func(z *irrigation.Zone) { z.MaxRuntimeS = 900 })
	run, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: v.ID, DurationS: 7200, Origin: irrigation.OriginUser, Reason: "two hours please"})
	if err != nil {
		t.Fatal(err)
	}
	if run.DurationS != 900 {
		t.Errorf("run duration %d s, want the zone's max 900", run.DurationS)
	}
	if !strings.Contains(run.Reason, "capped from 7200 s to the zone's max runtime 900 s") {
		t.Errorf("reason %q does not record the cap", run.Reason)
	}
	cmds := f.commands(run.ID)
	if len(cmds) != 1 || cmds[0].DurationS == nil || *cmds[0].DurationS != 900 {
		t.Fatalf("the open command does not carry the capped duration: %+v", cmds)
	}
}

func TestStartRunRefusesASecondLiveRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	_, _, v := f.zoneWithValve()
	first := f.startRun(v.ID, 600)
	if _, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: v.ID, DurationS: 600, Origin: irrigation.OriginUser}); !errors.Is(err, irrigation.ErrBusy) {
		t.Fatalf("second run: err = %v, want ErrBusy", err)
	}
	// Racing starts on a fresh valve: exactly one wins.
	_, _, v2 := f.zoneWithValve()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, busy := 0, 0
	for range 12 {
		wg.Go(func() {
			_, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: v2.ID, DurationS: 60, Origin: irrigation.OriginRule})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, irrigation.ErrBusy):
				busy++
			default:
				t.Errorf("racing start: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 || busy != 11 {
		t.Fatalf("racing starts: %d won, %d busy; want 1 and 11", won, busy)
	}
	if n := f.count(`SELECT count(*) FROM commands c JOIN irrigation_runs r ON r.id = c.run_id WHERE r.valve_id = $1`, v2.ID); n != 1 {
		t.Fatalf("%d commands queued for the raced valve", n)
	}
	// Once the first run has ended, the valve is free again.
	if _, err := f.store.StopRun(f.ctx, first.ID, nil, "done"); err != nil {
		t.Fatal(err)
	}
	f.startRun(v.ID, 600)
}

func TestStartRunValidates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	_, c, v := f.zoneWithValve()
	for _, tc := range []struct {
		field string
		req   irrigation.RunRequest
	}{
		{"origin", irrigation.RunRequest{ValveID: v.ID, DurationS: 60, Origin: "whim"}},
		{"duration_s", irrigation.RunRequest{ValveID: v.ID, DurationS: 0, Origin: irrigation.OriginUser}},
	} {
		if _, err := f.store.StartRun(f.ctx, tc.req); !isValidation(err, tc.field) {
			t.Errorf("%s: err = %v", tc.field, err)
		}
	}
	unassigned, err := f.store.CreateValve(f.ctx, irrigation.Valve{ControllerID: c.ID, Channel: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: unassigned.ID, DurationS: 60, Origin: irrigation.OriginUser}); !isValidation(err, "valve_id") {
		t.Errorf("valve without a zone: %v", err)
	}
	if _, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: 987654, DurationS: 60, Origin: irrigation.OriginUser}); !errors.Is(err, irrigation.ErrNotFound) {
		t.Errorf("unknown valve: %v", err)
	}
}

func TestMinOffHoldsBackAutomaticRunsOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	h := irrigation.NewControllerHandler(f.store)
	_, c, v := f.zoneWithValve(func(z *irrigation.Zone) { z.MinOffS = 3600 })
	run := f.startRun(v.ID, 600)
	open := f.commands(run.ID)[0]
	ack(t, f, h, c.UID, open.ID, "ok")
	f.clock.Advance(10 * time.Minute)
	stopped, err := f.store.StopRun(f.ctx, run.ID, nil, "enough")
	if err != nil {
		t.Fatal(err)
	}
	ack(t, f, h, c.UID, f.commands(stopped.ID)[1].ID, "ok")
	if got := f.run(run.ID); got.State != irrigation.RunDone {
		t.Fatalf("run state %s, want done", got.State)
	}
	f.clock.Advance(20 * time.Minute)
	_, err = f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: v.ID, DurationS: 600, Origin: irrigation.OriginSchedule})
	if !errors.Is(err, irrigation.ErrBusy) || !strings.Contains(err.Error(), "rested") {
		t.Fatalf("schedule run 20 min after the last: err = %v, want ErrBusy (resting)", err)
	}
	if _, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: v.ID, DurationS: 600, Origin: irrigation.OriginUser}); err != nil {
		t.Fatalf("a person may water a resting zone: %v", err)
	}
}

func TestStopRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	_, _, v := f.zoneWithValve()
	d := f.dispatcher(irrigation.DispatcherConfig{})

	// Stopped before its open was sent: aborted, and the open is never sent.
	run := f.startRun(v.ID, 600)
	var user int64
	if err := f.db.QueryRow(f.ctx, `INSERT INTO users (email, password_hash) VALUES ('s@b.az', 'x') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.StopRun(f.ctx, run.ID, &user, "changed my mind")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != irrigation.RunAborted || !strings.Contains(got.EndReason, "changed my mind") || !strings.Contains(got.EndReason, "user") {
		t.Fatalf("stopped before sending: %+v", got)
	}
	if n, err := d.DispatchDue(f.ctx); err != nil || n != 0 {
		t.Fatalf("dispatch after abort sent %d, %v", n, err)
	}
	if _, err := f.store.StopRun(f.ctx, run.ID, nil, "again"); !errors.Is(err, irrigation.ErrConflict) {
		t.Errorf("stopping an ended run: %v, want ErrConflict", err)
	}

	// Stopped once its open was sent: a close follows and the run is closing.
	run = f.startRun(v.ID, 600)
	if n, err := d.DispatchDue(f.ctx); err != nil || n != 1 {
		t.Fatalf("dispatch sent %d, %v", n, err)
	}
	got, err = f.store.StopValve(f.ctx, v.ID, nil, "rain coming")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != run.ID || got.State != irrigation.RunClosing {
		t.Fatalf("stop after send: %+v", got)
	}
	cmds := f.commands(run.ID)
	if len(cmds) != 2 || cmds[0].State != irrigation.CommandExpired || cmds[1].Action != irrigation.ActionClose || cmds[1].State != irrigation.CommandPending {
		t.Fatalf("commands after stop = %+v", cmds)
	}
	again, err := f.store.StopRun(f.ctx, run.ID, nil, "twice")
	if err != nil || again.State != irrigation.RunClosing || len(f.commands(run.ID)) != 2 {
		t.Fatalf("stopping a closing run again: %+v, %v", again, err)
	}
	if _, err := f.store.StopValve(f.ctx, 999999, nil, ""); !errors.Is(err, irrigation.ErrNotFound) {
		t.Errorf("unknown valve: %v", err)
	}
	idle, err := f.store.CreateValve(f.ctx, irrigation.Valve{ControllerID: v.ControllerID, Channel: 9, ZoneID: v.ZoneID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.StopValve(f.ctx, idle.ID, nil, ""); !errors.Is(err, irrigation.ErrConflict) {
		t.Errorf("stopping an idle valve: %v, want ErrConflict", err)
	}
	live, err := f.store.Runs(f.ctx, f.farm, true, 10)
	if err != nil || len(live) != 1 || live[0].ID != run.ID {
		t.Fatalf("live runs = %+v, %v", live, err)
	}
	all, err := f.store.Runs(f.ctx, f.farm, false, 10)
	if err != nil || len(all) != 2 {
		t.Fatalf("all runs = %d, %v", len(all), err)
	}
}
