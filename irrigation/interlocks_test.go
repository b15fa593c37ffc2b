package irrigation_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation"
)

// site is a water source with a pump on its own controller and zones whose valves share
// another controller.
type site struct {
	f       *fixture
	source  irrigation.WaterSource
	pumpCtl irrigation.Controller
	pump    irrigation.Valve
	ctl     irrigation.Controller
	zones   []irrigation.Zone
	valves  []irrigation.Valve
	d       *irrigation.Dispatcher
	h       *irrigation.ControllerHandler
}

// newSite: n zones of 20 L/min (1.2 m3/h) each on a source of capacityM3H, with a pump.
func newSite(t *testing.T, f *fixture, n int, capacityM3H float64, mods ...func(*irrigation.WaterSource)) *site {
	t.Helper()
	src := irrigation.WaterSource{FarmID: f.farm, Name: "Well 1", Kind: irrigation.SourceWell, CapacityM3H: &capacityM3H}
	for _, m := range mods {
		m(&src)
	}
	src, err := f.store.CreateWaterSource(f.ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	s := &site{f: f, source: src, h: irrigation.NewControllerHandler(f.store)}
	s.pumpCtl = f.controller(fmt.Sprintf("pump-%d", src.ID))
	s.pump, err = f.store.CreateValve(f.ctx, irrigation.Valve{ControllerID: s.pumpCtl.ID, Channel: 1, Role: irrigation.RolePump,
		WaterSourceID: &src.ID, Name: "Pump"})
	if err != nil {
		t.Fatal(err)
	}
	s.ctl = f.controller(fmt.Sprintf("zones-%d", src.ID))
	for i := range n {
		z := f.zone(func(z *irrigation.Zone) { z.WaterSourceID = &src.ID })
		v, err := f.store.CreateValve(f.ctx, irrigation.Valve{ControllerID: s.ctl.ID, Channel: i + 1, ZoneID: &z.ID,
			NominalFlowLPM: ptr(20.0), Name: fmt.Sprintf("Z%d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		s.zones, s.valves = append(s.zones, z), append(s.valves, v)
	}
	s.d = f.dispatcher(irrigation.DispatcherConfig{RetryBase: time.Hour, RetryMax: time.Hour})
	return s
}

// deliver sends what is due and has the controllers acknowledge it, until nothing more goes
// out; it returns what was sent, in order.
func (s *site) deliver(t *testing.T) []sentCommand {
	t.Helper()
	var out []sentCommand
	for range 10 {
		before := len(s.f.sender.all())
		if _, err := s.d.DispatchDue(s.f.ctx); err != nil {
			t.Fatal(err)
		}
		sent := s.f.sender.all()[before:]
		if len(sent) == 0 {
			return out
		}
		for _, c := range sent {
			ack(t, s.f, s.h, c.UID, c.Cmd.ID, "ok")
		}
		out = append(out, sent...)
	}
	t.Fatal("commands keep coming")
	return nil
}

func (s *site) runs(ids []int64) []irrigation.Run {
	var out []irrigation.Run
	for _, id := range ids {
		out = append(out, s.f.run(id))
	}
	return out
}

func admitted(runs []irrigation.Run) (n int) {
	for _, r := range runs {
		if r.State == irrigation.RunStarting || r.State == irrigation.RunOpen || r.State == irrigation.RunClosing {
			n++
		}
	}
	return n
}

// Five zones asked at once on a source that feeds two: never more than two admitted, the rest
// wait in order and start as others finish; the pump goes on before the first zone opens and
// off only after the last one closed.
func TestCapacityQueuesInOrderAndSequencesThePump(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	s := newSite(t, f, 5, 2.5) // 2 × 1.2 m3/h fit, 3 do not
	var ids []int64
	for _, v := range s.valves {
		ids = append(ids, f.startRun(v.ID, 600).ID)
		f.clock.Advance(time.Millisecond)
	}
	runs := s.runs(ids)
	for i, r := range runs {
		want := irrigation.RunStarting
		if i >= 2 {
			want = irrigation.RunPlanned
		}
		if r.State != want {
			t.Fatalf("run %d (#%d) is %s, want %s", r.ID, i+1, r.State, want)
		}
	}
	if !strings.Contains(runs[2].WaitReason, "capacity") || !strings.Contains(runs[3].WaitReason, fmt.Sprintf("behind run %d", ids[2])) {
		t.Errorf("wait reasons %q / %q", runs[2].WaitReason, runs[3].WaitReason)
	}
	// The zone opens wait for the pump: the first pass sends the pump alone.
	if _, err := s.d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	first := f.sender.all()
	if len(first) != 1 || first[0].UID != s.pumpCtl.UID || first[0].Cmd.Action != "open" || first[0].Cmd.DurationS <= 600 {
		t.Fatalf("first pass sent %+v, want the pump's open alone, longer than the zone's 600 s", first)
	}
	ack(t, f, s.h, first[0].UID, first[0].Cmd.ID, "ok")
	sent := s.deliver(t)
	if len(sent) != 2 || sent[0].UID != s.ctl.UID || sent[1].UID != s.ctl.UID {
		t.Fatalf("after the pump's ack: %+v, want the two zone opens", sent)
	}
	var order []int64 // runs in the order they opened
	maxOpen := 0
	for round := 0; len(order) < 5 && round < 20; round++ {
		runs = s.runs(ids)
		maxOpen = max(maxOpen, admitted(runs))
		for _, r := range runs {
			if r.State == irrigation.RunOpen && !slices.Contains(order, r.ID) {
				order = append(order, r.ID)
			}
		}
		// The controller closes every open valve by itself at its end.
		f.clock.Advance(601 * time.Second)
		valves := map[int]string{}
		for i := range s.valves {
			valves[i+1] = "closed"
		}
		report(t, f, s.h, s.ctl.UID, valves)
		s.deliver(t)
		maxOpen = max(maxOpen, admitted(s.runs(ids)))
	}
	if maxOpen > 2 {
		t.Errorf("%d runs admitted at once on a source that feeds 2", maxOpen)
	}
	if !slices.Equal(order, ids) {
		t.Errorf("runs opened in the order %v, want %v", order, ids)
	}
	for _, r := range s.runs(ids) {
		if r.State != irrigation.RunDone {
			t.Errorf("run %d ended %s (%s)", r.ID, r.State, r.EndReason)
		}
	}
	// The pump: one switch-on (plus extensions) before any zone open, one close after the last
	// zone run ended.
	all := f.sender.all()
	var pumpClose, lastZoneOpen int = -1, -1
	for i, c := range all {
		if c.UID == s.pumpCtl.UID && c.Cmd.Action == "close" {
			pumpClose = i
		}
		if c.UID == s.ctl.UID && c.Cmd.Action == "open" {
			lastZoneOpen = i
		}
	}
	if all[0].UID != s.pumpCtl.UID || pumpClose < lastZoneOpen || pumpClose != len(all)-1 {
		t.Errorf("pump not sequenced around the zones: %v", summary(all))
	}
	v, err := f.store.Valve(f.ctx, s.pump.ID)
	if err != nil || v.HoldUntil != nil {
		t.Errorf("pump still held on after the last run: %+v %v", v.HoldUntil, err)
	}
}

func summary(cs []sentCommand) []string {
	var out []string
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s:%s:%d", c.UID, c.Cmd.Action, c.Cmd.Valve))
	}
	return out
}

// The pump never switched on: the zone opens behind it are never sent, their runs fail with
// an alert, and the pump is taken as off so the next run tries again.
func TestPumpThatNeverStartsFailsItsRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	s := newSite(t, f, 2, 10)
	r1, r2 := f.startRun(s.valves[0].ID, 600), f.startRun(s.valves[1].ID, 600)
	if _, err := s.d.DispatchDue(f.ctx); err != nil { // the pump's open, never acknowledged
		t.Fatal(err)
	}
	first := f.sender.all()[0]
	f.clock.Advance(61 * time.Second)
	if _, err := s.d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.sender.all() {
		if c.UID == s.ctl.UID {
			t.Fatalf("a zone open was sent without the pump: %+v", c)
		}
	}
	for _, r := range []irrigation.Run{f.run(r1.ID), f.run(r2.ID)} {
		if r.State != irrigation.RunFailed || !strings.Contains(r.EndReason, "waited for "+first.Cmd.ID) {
			t.Errorf("run %d: %s %q", r.ID, r.State, r.EndReason)
		}
	}
	if _, ok := f.alert(irrigation.AlertActuatorFailed, fmt.Sprintf("valve:%d", s.pump.ID)); !ok {
		t.Errorf("no actuator alert: %+v", f.openAlerts())
	}
	if v, _ := f.store.Valve(f.ctx, s.pump.ID); v.HoldUntil != nil {
		t.Error("the pump is still taken as on")
	}
	r3 := f.startRun(s.valves[0].ID, 300)
	if cs := f.commands(r3.ID); len(cs) != 1 || cs[0].AfterID == nil {
		t.Errorf("a new run does not switch the pump on again: %+v", cs)
	}
}

// Baku is UTC+4: t0 (05:00 UTC) is 09:00 there.
func TestEnergyWindowHoldsRunsUntilItOpens(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	f.clock.Set(time.Date(2026, 7, 6, 2, 0, 0, 0, time.UTC)) // 06:00 in Baku
	s := newSite(t, f, 1, 10, func(w *irrigation.WaterSource) {
		w.Energy = irrigation.EnergySolar
		w.EnergyWindows = []irrigation.EnergyWindow{{From: "08:00", To: "17:00"}}
	})
	r := f.startRun(s.valves[0].ID, 600)
	if r.State != irrigation.RunPlanned || !strings.Contains(r.WaitReason, "energy window") || !strings.Contains(r.WaitReason, "08:00") {
		t.Fatalf("run before the window: %s %q", r.State, r.WaitReason)
	}
	m, err := irrigation.NewRunMonitor(f.store, irrigation.RunMonitorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(time.Date(2026, 7, 6, 3, 59, 0, 0, time.UTC))
	if _, err := m.Sweep(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.run(r.ID); got.State != irrigation.RunPlanned {
		t.Fatalf("started at 07:59: %s", got.State)
	}
	f.clock.Set(time.Date(2026, 7, 6, 4, 0, 0, 0, time.UTC))
	if _, err := m.Sweep(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.run(r.ID); got.State != irrigation.RunStarting || got.WaitReason != "" {
		t.Fatalf("at 08:00: %s %q", got.State, got.WaitReason)
	}
	evs, _ := f.store.RunEvents(f.ctx, r.ID)
	if len(evs) < 3 || evs[1].State != irrigation.RunPlanned || !strings.Contains(evs[1].Note, "energy window") {
		t.Errorf("the wait is not in the run's history: %+v", evs)
	}
}

// A solar pump's power budget caps the flow below the source's capacity.
func TestPowerBudgetCapsFlow(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	s := newSite(t, f, 3, 100, func(w *irrigation.WaterSource) {
		w.PowerBudgetKW, w.SpecificEnergyKWhM3 = ptr(1.5), ptr(0.5) // 3 m3/h
	})
	r1, r2, r3 := f.startRun(s.valves[0].ID, 60), f.startRun(s.valves[1].ID, 60), f.startRun(s.valves[2].ID, 60)
	if admitted([]irrigation.Run{r1, r2, r3}) != 2 || r3.State != irrigation.RunPlanned || !strings.Contains(r3.WaitReason, "power") {
		t.Fatalf("runs %s %s %s %q", r1.State, r2.State, r3.State, r3.WaitReason)
	}
	if _, err := f.store.CreateWaterSource(f.ctx, irrigation.WaterSource{FarmID: f.farm, Name: "Half", Kind: irrigation.SourcePump,
		PowerBudgetKW: ptr(2.0)}); !isValidation(err, "power_budget_kw") {
		t.Errorf("a power budget without specific energy: %v", err)
	}
	// Stopping a waiting run aborts it; nothing was sent for it.
	stopped, err := f.store.StopRun(f.ctx, r3.ID, nil, "changed my mind")
	if err != nil || stopped.State != irrigation.RunAborted || len(f.commands(r3.ID)) != 0 {
		t.Fatalf("stop a waiting run: %+v %v", stopped, err)
	}
}

// An emergency stop closes everything on the farm and refuses runs until it is released.
func TestEmergencyStop(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	s := newSite(t, f, 3, 2.5)
	r1, r2, r3 := f.startRun(s.valves[0].ID, 600), f.startRun(s.valves[1].ID, 600), f.startRun(s.valves[2].ID, 600)
	s.deliver(t) // pump on, two zones open
	if got := f.run(r1.ID); got.State != irrigation.RunOpen {
		t.Fatalf("run 1 %s", got.State)
	}
	ana := irrigation.Person{UserID: nil, Name: "Ana Mammadova"}
	st, ok, err := f.store.StopFarm(f.ctx, f.farm, ana, "pipe burst near the road")
	if err != nil || !ok || st.RunsStopped != 3 || st.StoppedByName != ana.Name {
		t.Fatalf("StopFarm: %+v %v %v", st, ok, err)
	}
	if got := f.run(r3.ID); got.State != irrigation.RunAborted {
		t.Errorf("the waiting run is %s", got.State)
	}
	for _, id := range []int64{r1.ID, r2.ID} {
		if got := f.run(id); got.State != irrigation.RunClosing || !strings.Contains(got.EndReason+eventsText(f, id), "emergency stop by Ana") {
			t.Errorf("run %d: %s", id, got.State)
		}
	}
	if n := f.count(`SELECT count(*) FROM commands WHERE action = 'close_all' AND state = 'pending'`); n != 2 {
		t.Errorf("%d close_all queued, want one per controller (2)", n)
	}
	if n := f.count(`SELECT count(*) FROM commands WHERE controller_id = $1 AND action = 'close' AND state = 'pending'`, s.pumpCtl.ID); n != 1 {
		t.Errorf("pump close queued %d times", n)
	}
	again, ok, err := f.store.StopFarm(f.ctx, f.farm, ana, "again")
	if err != nil || ok || again.ID != st.ID {
		t.Errorf("a second stop: %+v %v %v", again, ok, err)
	}
	_, err = f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: s.valves[2].ID, DurationS: 60, Origin: irrigation.OriginUser, Reason: "x"})
	if !errors.Is(err, irrigation.ErrEmergencyStop) || !errors.Is(err, irrigation.ErrBusy) {
		t.Fatalf("StartRun during a stop: %v", err)
	}
	if _, ok := f.alert(irrigation.AlertEmergencyStop, fmt.Sprintf("farm:%d", f.farm)); !ok {
		t.Error("no emergency stop alert")
	}
	if _, err := f.store.ReleaseFarm(f.ctx, f.farm, irrigation.Person{Name: "Ana Mammadova"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ReleaseFarm(f.ctx, f.farm, irrigation.Person{Name: "Ana Mammadova"}); !errors.Is(err, irrigation.ErrConflict) {
		t.Errorf("release twice: %v", err)
	}
	if _, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: s.valves[2].ID, DurationS: 60, Origin: irrigation.OriginUser, Reason: "x"}); err != nil {
		t.Fatalf("StartRun after release: %v", err)
	}
}

func eventsText(f *fixture, runID int64) string {
	evs, _ := f.store.RunEvents(f.ctx, runID)
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Note + "\n")
	}
	return b.String()
}

// A hold keeps a zone closed (stopping its run, refusing people and rules); an open override
// waters at once past the energy window and the rest time, ahead of the queue.
func TestManualOverrides(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	f.clock.Set(time.Date(2026, 7, 6, 16, 0, 0, 0, time.UTC)) // 20:00 in Baku: outside the window
	s := newSite(t, f, 2, 10, func(w *irrigation.WaterSource) {
		w.EnergyWindows = []irrigation.EnergyWindow{{From: "08:00", To: "17:00"}}
	})
	waiting := f.startRun(s.valves[1].ID, 600)
	if waiting.State != irrigation.RunPlanned {
		t.Fatalf("run outside the window is %s", waiting.State)
	}
	rashad := irrigation.Person{Name: "Rashad Aliyev"}
	o, run, err := f.store.CreateOverride(f.ctx, irrigation.OverrideRequest{ZoneID: s.zones[0].ID, Mode: irrigation.OverrideOpen,
		DurationS: 900, By: rashad, Reason: "fire break"})
	if err != nil {
		t.Fatal(err)
	}
	if run == nil || run.State != irrigation.RunStarting || run.Priority != 1 || !strings.Contains(run.Reason, "Rashad Aliyev") ||
		o.RunID == nil || *o.RunID != run.ID || !o.EndsAt.Equal(f.clock.Now().Add(900*time.Second)) {
		t.Fatalf("open override: %+v run %+v", o, run)
	}
	if got := f.run(waiting.ID); got.State != irrigation.RunPlanned {
		t.Errorf("the override let the ordinary run through the window: %s", got.State)
	}
	hold, _, err := f.store.CreateOverride(f.ctx, irrigation.OverrideRequest{ZoneID: s.zones[1].ID, Mode: irrigation.OverrideHold,
		DurationS: 3600, By: rashad, Reason: "harvest in the zone"})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.run(waiting.ID); got.State != irrigation.RunAborted || !strings.Contains(eventsText(f, waiting.ID), "harvest") {
		t.Errorf("the hold did not stop the zone's run: %s", got.State)
	}
	for _, origin := range []string{irrigation.OriginUser, irrigation.OriginRule} {
		_, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: s.valves[1].ID, DurationS: 60, Origin: origin, Reason: "x"})
		if !errors.Is(err, irrigation.ErrBusy) || !strings.Contains(err.Error(), "Rashad") {
			t.Errorf("%s run on a held zone: %v", origin, err)
		}
	}
	if _, err := f.store.CancelOverride(f.ctx, hold.ID, rashad); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CancelOverride(f.ctx, hold.ID, rashad); !errors.Is(err, irrigation.ErrConflict) {
		t.Errorf("cancel twice: %v", err)
	}
	active, err := f.store.Overrides(f.ctx, f.farm, true, 0)
	if err != nil || len(active) != 1 || active[0].ID != o.ID {
		t.Errorf("active overrides: %+v %v", active, err)
	}
	if _, err := f.store.CancelOverride(f.ctx, o.ID, rashad); err != nil {
		t.Fatal(err)
	}
	if got := f.run(run.ID); got.Live() && got.State != irrigation.RunClosing {
		t.Errorf("cancelling the open override left its run %s", got.State)
	}
	if _, _, err := f.store.CreateOverride(f.ctx, irrigation.OverrideRequest{ZoneID: s.zones[0].ID, Mode: irrigation.OverrideHold,
		DurationS: 60, By: irrigation.Person{Name: " "}}); !isValidation(err, "name") {
		t.Errorf("an override without a name: %v", err)
	}
}

func state(f *fixture, h *irrigation.ControllerHandler, t *testing.T, uid string, valves map[int]string, flow, volume *float64) {
	t.Helper()
	now := f.clock.Now()
	if err := h.HandleState(f.ctx, fieldnodes.ControllerState{ControllerUID: uid, TS: now, Valves: valves, FlowLPM: flow,
		VolumeL: volume, ReceivedAt: now}); err != nil {
		t.Fatalf("HandleState: %v", err)
	}
}

// Flow while every valve is closed is a leak; flow far above nominal shuts the zones off;
// flow far below is reported; the totaliser's increase is shared among the runs.
func TestFlowLeakHighLowAndVolume(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z1, z2 := f.zone(), f.zone()
	ctl := f.controller("ctl-flow")
	v1, _ := f.store.CreateValve(f.ctx, irrigation.Valve{ControllerID: ctl.ID, Channel: 1, ZoneID: &z1.ID, NominalFlowLPM: ptr(20.0)})
	v2, _ := f.store.CreateValve(f.ctx, irrigation.Valve{ControllerID: ctl.ID, Channel: 2, ZoneID: &z2.ID, NominalFlowLPM: ptr(10.0)})
	h := irrigation.NewControllerHandler(f.store)
	subject := fmt.Sprintf("controller:%d", ctl.ID)
	closed := map[int]string{1: "closed", 2: "closed"}

	state(f, h, t, ctl.UID, closed, ptr(4.0), ptr(1000.0))
	if a, ok := f.alert(irrigation.AlertLeak, subject); !ok || a.Severity != irrigation.SeverityCritical {
		t.Fatalf("no leak alert: %+v", f.openAlerts())
	}
	state(f, h, t, ctl.UID, closed, ptr(0.0), ptr(1000.0))
	if _, ok := f.alert(irrigation.AlertLeak, subject); ok {
		t.Fatal("leak alert not resolved when the flow stopped")
	}

	r1, r2 := f.startRun(v1.ID, 3600), f.startRun(v2.ID, 3600)
	d := f.dispatcher(irrigation.DispatcherConfig{RetryBase: time.Hour, RetryMax: time.Hour})
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range f.sender.all() {
		ack(t, f, h, c.UID, c.Cmd.ID, "ok")
	}
	open := map[int]string{1: "open", 2: "open"}
	state(f, h, t, ctl.UID, open, ptr(30.0), ptr(1000.0))
	f.clock.Advance(10 * time.Second)
	state(f, h, t, ctl.UID, open, ptr(80.0), ptr(1005.0)) // within the settle time: not judged
	if len(f.openAlerts()) != 0 {
		t.Fatalf("flow judged while settling: %+v", f.openAlerts())
	}
	f.clock.Advance(50 * time.Second)
	state(f, h, t, ctl.UID, open, ptr(30.5), ptr(1300.0))
	if got1, got2 := f.run(r1.ID), f.run(r2.ID); got1.VolumeL == nil || got2.VolumeL == nil ||
		*got1.VolumeL != 200 || *got2.VolumeL != 100 {
		t.Fatalf("volumes %v %v, want 200 and 100 (300 L shared 20:10)", got1.VolumeL, got2.VolumeL)
	}
	state(f, h, t, ctl.UID, open, ptr(15.0), nil)
	if a, ok := f.alert(irrigation.AlertFlowLow, subject); !ok || !strings.Contains(a.Message, "below") {
		t.Fatalf("no low-flow alert: %+v", f.openAlerts())
	}
	state(f, h, t, ctl.UID, open, ptr(45.0), nil) // 50 % above 30
	if _, ok := f.alert(irrigation.AlertFlowHigh, subject); !ok {
		t.Fatalf("no high-flow alert: %+v", f.openAlerts())
	}
	if _, ok := f.alert(irrigation.AlertFlowLow, subject); ok {
		t.Error("the low-flow alert stayed open")
	}
	for _, id := range []int64{r1.ID, r2.ID} {
		if got := f.run(id); got.State != irrigation.RunClosing || !strings.Contains(eventsText(f, id), "automatic shut-off") {
			t.Errorf("run %d after high flow: %s", id, got.State)
		}
	}
}

// A valve the controller confirmed closing but reports open is stuck open.
func TestStuckOpenValve(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	_, ctl, v := f.zoneWithValve()
	h := irrigation.NewControllerHandler(f.store)
	d := f.dispatcher(irrigation.DispatcherConfig{RetryBase: time.Hour, RetryMax: time.Hour})
	r := f.startRun(v.ID, 600)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	ack(t, f, h, ctl.UID, f.sender.all()[0].Cmd.ID, "ok")
	report(t, f, h, ctl.UID, map[int]string{1: "open"})
	if _, err := f.store.StopRun(f.ctx, r.ID, nil, "enough"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	closeCmd := f.sender.all()[1]
	ack(t, f, h, ctl.UID, closeCmd.Cmd.ID, "ok") // the controller says it closed …
	if got := f.run(r.ID); got.State != irrigation.RunDone {
		t.Fatalf("run %s after the close ack", got.State)
	}
	f.clock.Advance(30 * time.Second)
	report(t, f, h, ctl.UID, map[int]string{1: "open"}) // … but it is still open
	a, ok := f.alert(irrigation.AlertValveStuckOpen, fmt.Sprintf("valve:%d", v.ID))
	if !ok || a.Severity != irrigation.SeverityCritical {
		t.Fatalf("no stuck-open alert: %+v", f.openAlerts())
	}
	if _, ok := f.alert(irrigation.AlertValveUnexpectedlyOpen, fmt.Sprintf("valve:%d", v.ID)); ok {
		t.Error("a stuck valve is reported as merely unexpectedly open")
	}
	if n := f.count(`SELECT count(*) FROM commands WHERE action = 'close' AND state = 'pending'`); n != 1 {
		t.Errorf("%d closes queued after the stuck report, want 1", n)
	}
	f.clock.Advance(30 * time.Second)
	report(t, f, h, ctl.UID, map[int]string{1: "open"})
	if n := f.count(`SELECT count(*) FROM commands WHERE action = 'close'`); n != 2 {
		t.Errorf("%d closes in all after a second report, want 2 (no resend while the alert is open)", n)
	}
	report(t, f, h, ctl.UID, map[int]string{1: "closed"})
	if _, ok := f.alert(irrigation.AlertValveStuckOpen, fmt.Sprintf("valve:%d", v.ID)); ok {
		t.Error("stuck-open alert not resolved when the valve closed")
	}
}

// Actuators are registered against their source and never watered like zones.
func TestActuatorRegistry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	s := newSite(t, f, 1, 10)
	if _, err := f.store.StartRun(f.ctx, irrigation.RunRequest{ValveID: s.pump.ID, DurationS: 60, Origin: irrigation.OriginUser}); !isValidation(err, "valve_id") {
		t.Errorf("a pump opened like a zone: %v", err)
	}
	for name, v := range map[string]irrigation.Valve{
		"pump without source":   {ControllerID: s.pumpCtl.ID, Channel: 2, Role: irrigation.RolePump},
		"master with zone":      {ControllerID: s.pumpCtl.ID, Channel: 2, Role: irrigation.RoleMaster, WaterSourceID: &s.source.ID, ZoneID: &s.zones[0].ID},
		"zone valve naming one": {ControllerID: s.pumpCtl.ID, Channel: 2, ZoneID: &s.zones[0].ID, WaterSourceID: &s.source.ID},
		"unknown role":          {ControllerID: s.pumpCtl.ID, Channel: 2, Role: "booster"},
	} {
		if _, err := f.store.CreateValve(f.ctx, v); err == nil {
			t.Errorf("%s: created", name)
		}
	}
	f.startRun(s.valves[0].ID, 60)
	if err := f.store.DeleteValve(f.ctx, s.pump.ID); !errors.Is(err, irrigation.ErrBusy) {
		t.Errorf("deleting a pump that is on: %v", err)
	}
	if err := f.store.DeleteWaterSource(f.ctx, s.source.ID); !errors.Is(err, irrigation.ErrBusy) {
		t.Errorf("deleting a source that feeds a run: %v", err)
	}
	if err := f.store.DeleteWaterSource(f.ctx, 1<<40); !errors.Is(err, irrigation.ErrNotFound) {
		t.Errorf("deleting a source that does not exist: %v", err)
	}
}

// Several instances asking at once: the farm's lock admits exactly what the source can feed,
// and the rest wait in the order their requests committed.
func TestConcurrentAdmissionNeverExceedsCapacity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	s := newSite(t, f, 10, 2.5) // room for 2
	stores := []*irrigation.Store{f.store, f.newStore(), f.newStore()}
	var wg sync.WaitGroup
	ids := make([]int64, len(s.valves))
	for i, v := range s.valves {
		wg.Go(func() {
			r, err := stores[i%len(stores)].StartRun(f.ctx, irrigation.RunRequest{ValveID: v.ID, DurationS: 600, Origin: irrigation.OriginRule, Reason: "dry"})
			if err != nil {
				t.Errorf("StartRun: %v", err)
				return
			}
			ids[i] = r.ID
		})
	}
	wg.Wait()
	runs := s.runs(ids)
	if n := admitted(runs); n != 2 {
		t.Fatalf("%d runs admitted at once on a source that feeds 2", n)
	}
	if n := f.count(`SELECT count(*) FROM commands c JOIN valves v ON v.controller_id = c.controller_id AND v.channel = c.valve
		WHERE c.action = 'open' AND v.role = 'zone'`); n != 2 {
		t.Errorf("%d zone opens queued, want 2", n)
	}
	if n := f.count(`SELECT count(*) FROM commands WHERE controller_id = $1 AND action = 'open'`, s.pumpCtl.ID); n != 1 {
		t.Errorf("the pump was switched on %d times, want once", n)
	}
}
