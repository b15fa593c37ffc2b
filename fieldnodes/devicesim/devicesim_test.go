package devicesim_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/devicesim"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fleetAuth lets the fleet's devices in with their own secrets.
type fleetAuth map[string][2]string // uid → kind, secret

func (a fleetAuth) Authenticate(_ context.Context, uid, secret string) (string, error) {
	d, ok := a[uid]
	if !ok || d[1] != secret {
		return "", errors.New("wrong credentials")
	}
	return d[0], nil
}

func fleet() devicesim.Fleet {
	return devicesim.Fleet{
		Zones: []devicesim.Zone{{Name: "z", VWC: 0.20, FieldCapacity: 0.32, WiltingPoint: 0.12, RootDepthM: 0.5, RateMMH: 6, DailyETmm: 6}},
		Nodes: []devicesim.Node{{UID: "n1", Secret: "s-n1", Kind: "soil", Zone: 0}, {UID: "w1", Secret: "s-w1", Kind: "weather"}},
		Controllers: []devicesim.Controller{{UID: "c1", Secret: "s-c1", Valves: []devicesim.Valve{
			{Channel: 1, Zone: 0, FlowLPM: 20}, {Channel: 2, Zone: -1, FlowLPM: 10}}}},
	}
}

type server struct {
	t    *testing.T
	link *mqttlink.Link
	mu   sync.Mutex
	msgs map[string][]json.RawMessage // by topic
}

func (s *server) take(m mqttlink.Message) {
	s.mu.Lock()
	s.msgs[m.Topic] = append(s.msgs[m.Topic], json.RawMessage(m.Payload))
	s.mu.Unlock()
	m.Ack()
}

func (s *server) waitFor(topic string, ok func(json.RawMessage) bool) json.RawMessage {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, m := range s.msgs[topic] {
			if ok(m) {
				s.mu.Unlock()
				return m
			}
		}
		s.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Fatalf("nothing on %s matched within 10 s; got %s", topic, s.msgs[topic])
	return nil
}

func (s *server) send(cmd map[string]any) {
	s.t.Helper()
	b, _ := json.Marshal(cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.link.Publish(ctx, "aghali/controllers/c1/cmd", 1, false, b); err != nil {
		s.t.Fatal(err)
	}
}

func setup(t *testing.T) (*devicesim.Sim, *server) {
	ctx := context.Background()
	f := fleet()
	auth := fleetAuth{}
	for _, n := range f.Nodes {
		auth[n.UID] = [2]string{"node", n.Secret}
	}
	for _, c := range f.Controllers {
		auth[c.UID] = [2]string{"controller", c.Secret}
	}
	b, err := broker.New(broker.Config{Listen: "127.0.0.1:0", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	user, pass := b.InternalCredentials()
	link, err := mqttlink.New(mqttlink.Config{URL: b.URL(), ClientID: "test-server", Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	srv := &server{t: t, link: link, msgs: map[string][]json.RawMessage{}}
	for _, f := range []string{"aghali/nodes/+/up", "aghali/controllers/+/ack", "aghali/controllers/+/state"} {
		if err := link.Subscribe(f, srv.take); err != nil {
			t.Fatal(err)
		}
	}
	if err := link.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(link.Stop)
	readyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := link.WaitReady(readyCtx); err != nil { // subscribed before anything is sent to it
		t.Fatal(err)
	}
	sim, err := devicesim.New(devicesim.Config{BrokerURL: b.URL(), Fleet: f, ReportEvery: 100 * time.Millisecond, StateEvery: time.Hour, Speed: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	return sim, srv
}

func field(m json.RawMessage, name string) any {
	var v map[string]any
	_ = json.Unmarshal(m, &v)
	return v[name]
}

func TestNodesReportAndSoilWetsWhileValveOpen(t *testing.T) {
	sim, srv := setup(t)
	up := srv.waitFor("aghali/nodes/n1/up", func(json.RawMessage) bool { return true })
	r, _ := field(up, "readings").(map[string]any)
	if v, ok := r["soil_vwc"].(float64); !ok || v < 0.12 || v > 0.32 {
		t.Fatalf("soil node reported %s", up)
	}
	w := srv.waitFor("aghali/nodes/w1/up", func(json.RawMessage) bool { return true })
	if r, _ := field(w, "readings").(map[string]any); r["air_temp_c"] == nil {
		t.Fatalf("weather node reported %s", w)
	}
	before := sim.ZoneVWC(0)
	srv.send(map[string]any{"id": "open-1", "action": "open", "valve": 1, "duration_s": 2, "expires_at": time.Now().Add(time.Minute)})
	srv.waitFor("aghali/controllers/c1/ack", func(m json.RawMessage) bool { return field(m, "id") == "open-1" && field(m, "status") == "ok" })
	if !sim.ValveOpen("c1", 1) {
		t.Fatal("valve 1 not open after an ok ack")
	}
	// At 3600× a second is an hour of 6 mm/h into 500 mm of soil: +0.012 m3/m3 per second.
	time.Sleep(time.Second)
	if after := sim.ZoneVWC(0); after <= before {
		t.Errorf("soil did not wet while the valve was open: %.4f → %.4f", before, after)
	}
	// duration_s = 2: the controller closes the valve by itself and reports it.
	srv.waitFor("aghali/controllers/c1/state", func(m json.RawMessage) bool {
		v, _ := field(m, "valves").(map[string]any)
		return v["1"] == "closed" && field(m, "volume_l").(float64) > 0
	})
	if sim.ValveOpen("c1", 1) {
		t.Error("valve still open after duration_s ran out")
	}
}

func TestExpiredRepeatedAndUnknownCommands(t *testing.T) {
	sim, srv := setup(t)
	srv.send(map[string]any{"id": "late", "action": "open", "valve": 1, "duration_s": 60, "expires_at": time.Now().Add(-time.Second)})
	srv.waitFor("aghali/controllers/c1/ack", func(m json.RawMessage) bool { return field(m, "id") == "late" && field(m, "status") == "rejected" })
	if sim.ValveOpen("c1", 1) {
		t.Fatal("an expired command was carried out")
	}
	srv.send(map[string]any{"id": "nine", "action": "open", "valve": 9, "duration_s": 60, "expires_at": time.Now().Add(time.Minute)})
	a := srv.waitFor("aghali/controllers/c1/ack", func(m json.RawMessage) bool { return field(m, "id") == "nine" })
	if field(a, "reason") != "valve 9 unknown" {
		t.Errorf("unknown valve ack = %s", a)
	}
	for range 2 {
		srv.send(map[string]any{"id": "twice", "action": "open", "valve": 2, "duration_s": 60, "expires_at": time.Now().Add(time.Minute)})
	}
	srv.waitFor("aghali/controllers/c1/ack", func(m json.RawMessage) bool { return field(m, "id") == "twice" })
	time.Sleep(300 * time.Millisecond)
	n := 0
	for _, id := range sim.Executed("c1") {
		if id == "twice" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("a repeated id was carried out %d times", n)
	}
}

func TestOfflineControllerIgnoresCommandsThatExpiredMeanwhile(t *testing.T) {
	sim, srv := setup(t)
	// Make sure the controller's session exists at the broker, then take it offline.
	srv.send(map[string]any{"id": "hello", "action": "close", "valve": 1, "expires_at": time.Now().Add(time.Minute)})
	srv.waitFor("aghali/controllers/c1/ack", func(m json.RawMessage) bool { return field(m, "id") == "hello" })
	if err := sim.SetFault("c1", devicesim.FaultOffline); err != nil {
		t.Fatal(err)
	}
	srv.send(map[string]any{"id": "while-away", "action": "open", "valve": 1, "duration_s": 600, "expires_at": time.Now().Add(500 * time.Millisecond)})
	time.Sleep(time.Second)
	if err := sim.SetFault("c1", devicesim.FaultNone); err != nil {
		t.Fatal(err)
	}
	a := srv.waitFor("aghali/controllers/c1/ack", func(m json.RawMessage) bool { return field(m, "id") == "while-away" })
	if field(a, "status") != "rejected" || sim.ValveOpen("c1", 1) {
		t.Fatalf("queued command delivered after its expiry was carried out: ack %s", a)
	}
}

func TestLeakAndStickOpen(t *testing.T) {
	sim, srv := setup(t)
	if err := sim.SetFault("c1", devicesim.FaultLeak); err != nil {
		t.Fatal(err)
	}
	srv.send(map[string]any{"id": "poke", "action": "close_all", "expires_at": time.Now().Add(time.Minute)})
	srv.waitFor("aghali/controllers/c1/state", func(m json.RawMessage) bool { return field(m, "flow_lpm").(float64) > 0 })
	if err := sim.SetFault("c1", devicesim.FaultStickOpen); err != nil {
		t.Fatal(err)
	}
	srv.send(map[string]any{"id": "o", "action": "open", "valve": 2, "duration_s": 1, "expires_at": time.Now().Add(time.Minute)})
	srv.waitFor("aghali/controllers/c1/ack", func(m json.RawMessage) bool { return field(m, "id") == "o" })
	srv.send(map[string]any{"id": "c", "action": "close", "valve": 2, "expires_at": time.Now().Add(time.Minute)})
	srv.waitFor("aghali/controllers/c1/ack", func(m json.RawMessage) bool { return field(m, "id") == "c" })
	time.Sleep(1500 * time.Millisecond)
	if !sim.ValveOpen("c1", 2) {
		t.Error("a stuck valve closed")
	}
}
