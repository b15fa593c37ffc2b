package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/devicesim"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

// End-to-end tests of issue 4's promises: commands never lost, never late, never unsafe.
// Each runs `aghali serve` (in this process, or as a real subprocess) against a fresh database,
// a real broker and simulated controllers that obey the protocol and misbehave on request.

// irrSite is what a test builds through the API: a farm, and on it controllers with valves.
type irrSite struct {
	t    *testing.T
	c    *client
	farm int64
}

type irrCtl struct {
	id          int64
	uid, secret string
	valves      map[int]int64 // channel → valve id
}

type irrObj struct {
	ID     int64  `json:"id"`
	Secret string `json:"secret"`
}

func newIrrSite(t *testing.T, c *client, tag string) *irrSite {
	t.Helper()
	var o irrObj
	c.do("POST", "/api/v1/farms", map[string]any{"org_id": 1, "name": "Farm " + tag, "timezone": "Asia/Baku"}, &o, http.StatusCreated)
	return &irrSite{t: t, c: c, farm: o.ID}
}

// zone makes a zone (max runtime maxRuntimeS, on source when not 0), shifted east by i.
func (s *irrSite) zone(i int, maxRuntimeS int, source int64) int64 {
	s.t.Helper()
	x := 46.63 + float64(i)*0.0013
	geom := fmt.Sprintf(`{"type":"Polygon","coordinates":[[[%g,39.09],[%g,39.09],[%g,39.0909],[%g,39.0909],[%g,39.09]]]}`, x, x+0.0012, x+0.0012, x, x)
	body := map[string]any{"name": fmt.Sprintf("Zone %d", i), "geometry": json.RawMessage(geom), "max_runtime_s": maxRuntimeS}
	if source != 0 {
		body["water_source_id"] = source
	}
	var o irrObj
	s.c.do("POST", fmt.Sprintf("/api/v1/farms/%d/zones", s.farm), body, &o, http.StatusCreated)
	return o.ID
}

func (s *irrSite) controller(uid string) *irrCtl {
	s.t.Helper()
	var o irrObj
	s.c.do("POST", fmt.Sprintf("/api/v1/farms/%d/controllers", s.farm), map[string]any{"uid": uid, "name": uid}, &o, http.StatusCreated)
	return &irrCtl{id: o.ID, uid: uid, secret: o.Secret, valves: map[int]int64{}}
}

func (s *irrSite) valve(ctl *irrCtl, channel int, body map[string]any) int64 {
	s.t.Helper()
	body["channel"] = channel
	var o irrObj
	s.c.do("POST", fmt.Sprintf("/api/v1/controllers/%d/valves", ctl.id), body, &o, http.StatusCreated)
	ctl.valves[channel] = o.ID
	return o.ID
}

// irrSimulate connects simulated controllers reporting their state every half second.
func irrSimulate(t *testing.T, url string, ctls ...devicesim.Controller) *devicesim.Sim {
	t.Helper()
	sim, err := devicesim.New(devicesim.Config{BrokerURL: url, StateEvery: 500 * time.Millisecond, Fleet: devicesim.Fleet{
		Zones:       []devicesim.Zone{{Name: "z", VWC: 0.2, FieldCapacity: 0.3, WiltingPoint: 0.1, RootDepthM: 0.5, RateMMH: 5}},
		Controllers: ctls,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	return sim
}

func irrSimCtl(c *irrCtl, flows map[int]float64) devicesim.Controller {
	d := devicesim.Controller{UID: c.uid, Secret: c.secret}
	chans := make([]int, 0, len(flows))
	for ch := range flows {
		chans = append(chans, ch)
	}
	sort.Ints(chans)
	for _, ch := range chans {
		d.Valves = append(d.Valves, devicesim.Valve{Channel: ch, Zone: -1, FlowLPM: flows[ch]})
	}
	return d
}

type irrRun struct {
	ID         int64      `json:"id"`
	ValveID    int64      `json:"valve_id"`
	State      string     `json:"state"`
	WaitReason string     `json:"wait_reason"`
	EndReason  string     `json:"end_reason"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at"`
	Commands   []struct {
		ID        string    `json:"id"`
		Action    string    `json:"action"`
		State     string    `json:"state"`
		Attempts  int       `json:"attempts"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"commands"`
}

func (s *irrSite) run(id int64) irrRun {
	s.t.Helper()
	var r irrRun
	s.c.do("GET", fmt.Sprintf("/api/v1/runs/%d", id), nil, &r, http.StatusOK)
	return r
}

func (s *irrSite) open(valve int64, minutes int) irrRun {
	s.t.Helper()
	var r irrRun
	s.c.do("POST", fmt.Sprintf("/api/v1/valves/%d/open", valve), map[string]any{"minutes": minutes}, &r, http.StatusAccepted)
	return r
}

type irrAlert struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Subject  string `json:"subject"`
	Message  string `json:"message"`
}

func (s *irrSite) alert(kind, subject string) (irrAlert, bool) {
	s.t.Helper()
	var as []irrAlert
	s.c.do("GET", fmt.Sprintf("/api/v1/alerts?open=true&farm=%d", s.farm), nil, &as, http.StatusOK)
	for _, a := range as {
		if a.Kind == kind && (subject == "" || a.Subject == subject) {
			return a, true
		}
	}
	return irrAlert{}, false
}

// A controller taken offline: its open expires unsent (or sent but unanswered), the run fails
// with an alert, and when the controller comes back the command, delivered late by the broker,
// is not carried out.
func TestServeOfflineControllerCommandExpires(t *testing.T) {
	t.Parallel()
	db, email, pw := newDatabase(t)
	srv := startServer(t, "serve", map[string]string{"AGHALI_DATABASE_URL": db, "AGHALI_COMMAND_TTL": "4s", "AGHALI_COMMAND_RETRY": "1s"})
	s := newIrrSite(t, login(t, srv.http, email, pw), "offline")
	ctl := s.controller("ctl-offline")
	valve := s.valve(ctl, 1, map[string]any{"zone_id": s.zone(1, 600, 0), "nominal_flow_lpm": 20})
	sim := irrSimulate(t, fmt.Sprintf("tcp://127.0.0.1:%d", srv.mqtt), irrSimCtl(ctl, map[int]float64{1: 20}))
	eventually(t, 10*time.Second, "the controller's first state report", func() bool {
		var v struct{ State string }
		s.c.do("GET", fmt.Sprintf("/api/v1/valves/%d", valve), nil, &v, http.StatusOK)
		return v.State == "closed"
	})
	if err := sim.SetFault(ctl.uid, devicesim.FaultOffline); err != nil {
		t.Fatal(err)
	}
	run := s.open(valve, 10)
	var failed irrRun
	eventually(t, 20*time.Second, "the run to fail when its open expires", func() bool {
		failed = s.run(run.ID)
		return failed.State == "failed"
	})
	if len(failed.Commands) != 1 || failed.Commands[0].Action != "open" || failed.Commands[0].State != "expired" ||
		!strings.Contains(failed.EndReason, "expired") {
		t.Fatalf("failed run %+v", failed)
	}
	open := failed.Commands[0]
	a, ok := s.alert("command_expired", fmt.Sprintf("valve:%d", valve))
	if !ok || !strings.Contains(a.Message, "did not start") {
		t.Fatalf("no command_expired alert for the valve: %+v", a)
	}
	// Back online: the broker delivers what it queued for the controller's session, late.
	if err := sim.SetFault(ctl.uid, devicesim.FaultNone); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the queued command to reach the controller", func() bool {
		for _, raw := range sim.Received(ctl.uid) {
			if strings.Contains(string(raw), open.ID) {
				return true
			}
		}
		return false
	})
	time.Sleep(time.Second) // give a wrongly obeyed command the time to show
	if slices.Contains(sim.Executed(ctl.uid), open.ID) || sim.ValveOpen(ctl.uid, 1) {
		t.Fatalf("the controller carried out command %s after it expired at %s", open.ID, open.ExpiresAt)
	}
	if got := s.run(run.ID); got.State != "failed" {
		t.Errorf("the late delivery changed the run: %s", got.State)
	}
}

// Five zones asked at once on a source that feeds two: never more than two open, the rest follow
// in the order they were asked for, and the pump is on before any zone opens and off after the
// last one closed.
func TestServeCapacityQueueAndPump(t *testing.T) {
	t.Parallel()
	db, email, pw := newDatabase(t)
	srv := startServer(t, "serve", map[string]string{"AGHALI_DATABASE_URL": db})
	s := newIrrSite(t, login(t, srv.http, email, pw), "five")
	var src irrObj
	s.c.do("POST", fmt.Sprintf("/api/v1/farms/%d/water-sources", s.farm), map[string]any{"name": "Well", "kind": "well",
		"capacity_m3h": 2.5}, &src, http.StatusCreated)
	ctl := s.controller("ctl-five")
	flows := map[int]float64{8: 0}
	var valves []int64
	for ch := 1; ch <= 5; ch++ {
		valves = append(valves, s.valve(ctl, ch, map[string]any{"zone_id": s.zone(ch, 4, src.ID), "nominal_flow_lpm": 20}))
		flows[ch] = 20
	}
	pump := s.valve(ctl, 8, map[string]any{"role": "pump", "water_source_id": src.ID})
	sim := irrSimulate(t, fmt.Sprintf("tcp://127.0.0.1:%d", srv.mqtt), irrSimCtl(ctl, flows))

	// Watch the simulated valves while the runs go.
	var mu sync.Mutex
	maxOpen, zoneWithoutPump := 0, 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			n := 0
			for ch := 1; ch <= 5; ch++ {
				if sim.ValveOpen(ctl.uid, ch) {
					n++
				}
			}
			mu.Lock()
			maxOpen = max(maxOpen, n)
			if n > 0 && !sim.ValveOpen(ctl.uid, 8) {
				zoneWithoutPump++
			}
			mu.Unlock()
		}
	})
	var ids []int64
	for _, v := range valves {
		ids = append(ids, s.open(v, 1).ID) // capped at the zones' 4 s
	}
	eventually(t, 60*time.Second, "all five runs to finish", func() bool {
		for _, id := range ids {
			if st := s.run(id).State; st != "done" {
				return false
			}
		}
		return true
	})
	eventually(t, 10*time.Second, "the pump to be switched off", func() bool { return !sim.ValveOpen(ctl.uid, 8) })
	close(stop)
	wg.Wait()
	if maxOpen != 2 {
		t.Errorf("at most %d zone valves were open at once; want 2 (never more)", maxOpen)
	}
	if zoneWithoutPump > 0 {
		t.Errorf("a zone valve was open without the pump %d times", zoneWithoutPump)
	}
	var runs []irrRun
	for _, id := range ids {
		runs = append(runs, s.run(id))
	}
	started := slices.Clone(runs)
	sort.SliceStable(started, func(i, j int) bool { return started[i].StartedAt.Before(*started[j].StartedAt) })
	for i := range runs {
		if started[i].ID != runs[i].ID {
			t.Fatalf("runs started in the order %v, want the order asked %v", irrRunIDs(started), ids)
		}
	}
	if runs[2].StartedAt.Before(*runs[0].EndedAt) && runs[2].StartedAt.Before(*runs[1].EndedAt) {
		t.Errorf("run 3 started before either of the first two ended")
	}
	var p struct {
		HoldUntil *time.Time `json:"hold_until"`
	}
	s.c.do("GET", fmt.Sprintf("/api/v1/valves/%d", pump), nil, &p, http.StatusOK)
	if p.HoldUntil != nil {
		t.Errorf("the pump is still held on: %v", p.HoldUntil)
	}
}

func irrRunIDs(rs []irrRun) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// Flow with every valve closed raises a leak alert; a valve that stays open past its end (and
// past the close sent then) raises a stuck-open alert.
func TestServeLeakAndStuckOpen(t *testing.T) {
	t.Parallel()
	db, email, pw := newDatabase(t)
	srv := startServer(t, "serve", map[string]string{"AGHALI_DATABASE_URL": db})
	s := newIrrSite(t, login(t, srv.http, email, pw), "leak")
	leaky := s.controller("ctl-leaky")
	s.valve(leaky, 1, map[string]any{"zone_id": s.zone(1, 600, 0), "nominal_flow_lpm": 20})
	sticky := s.controller("ctl-sticky")
	valve := s.valve(sticky, 1, map[string]any{"zone_id": s.zone(2, 2, 0), "nominal_flow_lpm": 20})
	sim := irrSimulate(t, fmt.Sprintf("tcp://127.0.0.1:%d", srv.mqtt), irrSimCtl(leaky, map[int]float64{1: 20}), irrSimCtl(sticky, map[int]float64{1: 20}))
	if err := sim.SetFault(leaky.uid, devicesim.FaultLeak); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetFault(sticky.uid, devicesim.FaultStickOpen); err != nil {
		t.Fatal(err)
	}
	var leak irrAlert
	eventually(t, 10*time.Second, "a leak alert", func() bool {
		var ok bool
		leak, ok = s.alert("leak", fmt.Sprintf("controller:%d", leaky.id))
		return ok
	})
	if leak.Severity != "critical" || !strings.Contains(leak.Message, "every valve") {
		t.Errorf("leak alert %+v", leak)
	}
	if _, ok := s.alert("leak", fmt.Sprintf("controller:%d", sticky.id)); ok {
		t.Error("a leak alert for the controller that does not leak")
	}
	run := s.open(valve, 1) // 2 s: the zone's max runtime
	var stuck irrAlert
	eventually(t, 30*time.Second, "a stuck-open alert", func() bool {
		var ok bool
		stuck, ok = s.alert("valve_stuck_open", fmt.Sprintf("valve:%d", valve))
		return ok
	})
	if stuck.Severity != "critical" || !sim.ValveOpen(sticky.uid, 1) {
		t.Errorf("stuck alert %+v; valve open %v", stuck, sim.ValveOpen(sticky.uid, 1))
	}
	if _, ok := s.alert("leak", fmt.Sprintf("controller:%d", sticky.id)); ok {
		t.Error("a stuck-open valve was taken for a leak")
	}
	r := s.run(run.ID)
	closes := 0
	for _, c := range r.Commands {
		if c.Action == "close" {
			closes++
		}
	}
	if closes == 0 {
		t.Errorf("no close was sent for the stuck valve's run: %+v", r)
	}
	// Unstuck, it closes at the next close.
	if err := sim.SetFault(sticky.uid, devicesim.FaultNone); err != nil {
		t.Fatal(err)
	}
}

// Two `aghali serve` instances on one database and one (Mosquitto) broker: both dispatch, every
// command is published exactly once.
func TestTwoServersNeverSendACommandTwice(t *testing.T) {
	t.Parallel()
	m := mqtttest.Start(t, mqtttest.Config{})
	db, email, pw := newDatabase(t)
	env := map[string]string{"AGHALI_DATABASE_URL": db, "AGHALI_MQTT_URL": m.URL,
		// No resend within the test: any second publish of an id is a double send.
		"AGHALI_COMMAND_RETRY": "5m", "AGHALI_COMMAND_TTL": "10m"}
	a := startServer(t, "serve", env)
	b := startServer(t, "serve", env)

	// A spy on the broker counts every publish of every command.
	spy, err := mqttlink.New(mqttlink.Config{URL: m.URL, ClientID: "spy-" + t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	if err := spy.Subscribe("aghali/controllers/+/cmd", func(msg mqttlink.Message) {
		var c struct{ ID string }
		_ = json.Unmarshal(msg.Payload, &c)
		mu.Lock()
		seen[c.ID]++
		mu.Unlock()
		msg.Ack()
	}); err != nil {
		t.Fatal(err)
	}
	if err := spy.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(spy.Stop)

	ca, cb := login(t, a.http, email, pw), login(t, b.http, email, pw)
	s := newIrrSite(t, ca, "two")
	sb := &irrSite{t: t, c: cb, farm: s.farm}
	const n = 12
	ctl := s.controller("ctl-two")
	flows := map[int]float64{}
	for ch := 1; ch <= n; ch++ {
		s.valve(ctl, ch, map[string]any{"zone_id": s.zone(ch, 3600, 0), "nominal_flow_lpm": 10})
		flows[ch] = 10
	}
	sim := irrSimulate(t, m.URL, irrSimCtl(ctl, flows))
	var runs []int64
	for ch := 1; ch <= n; ch++ {
		on := s
		if ch%2 == 0 {
			on = sb
		}
		runs = append(runs, on.open(ctl.valves[ch], 30).ID)
	}
	eventually(t, 20*time.Second, "every valve open", func() bool {
		for ch := 1; ch <= n; ch++ {
			if !sim.ValveOpen(ctl.uid, ch) {
				return false
			}
		}
		return true
	})
	for i, ch := 0, 1; ch <= n; ch, i = ch+1, i+1 {
		on := sb
		if ch%2 == 0 {
			on = s
		}
		on.c.do("POST", fmt.Sprintf("/api/v1/valves/%d/stop", ctl.valves[ch]), nil, nil, http.StatusAccepted)
	}
	eventually(t, 20*time.Second, "every run done", func() bool {
		for _, id := range runs {
			if s.run(id).State != "done" {
				return false
			}
		}
		return true
	})
	var ids []string
	for _, id := range runs {
		for _, c := range s.run(id).Commands {
			if c.State != "acked" || c.Attempts != 1 {
				t.Errorf("run %d command %s: %s after %d attempts", id, c.ID, c.State, c.Attempts)
			}
			ids = append(ids, c.ID)
		}
	}
	if len(ids) != 2*n {
		t.Fatalf("%d commands, want an open and a close per run (%d)", len(ids), 2*n)
	}
	eventually(t, 5*time.Second, "the spy to have seen every command", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if seen[id] == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for id, k := range seen {
		if k != 1 {
			t.Errorf("command %s was published %d times", id, k)
		}
	}
	if executed := sim.Executed(ctl.uid); len(executed) != 2*n {
		t.Errorf("the controller carried out %d commands, want %d", len(executed), 2*n)
	}
}
