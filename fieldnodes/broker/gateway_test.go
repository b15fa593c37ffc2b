package broker_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/loadgen"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/migrations/pgtest"
)

// holdHandoff takes uplinks and holds them until released: a stand-in for an ingest whose
// commit has not happened yet.
type holdHandoff struct {
	mu   sync.Mutex
	held []mqttlink.Message
}

func (h *holdHandoff) Wants(topic string) bool { return strings.HasSuffix(topic, "/up") }

func (h *holdHandoff) Deliver(m mqttlink.Message) {
	h.mu.Lock()
	h.held = append(h.held, m)
	h.mu.Unlock()
}

func (h *holdHandoff) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held)
}

func (h *holdHandoff) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.held {
		m.Ack()
	}
	h.held = nil
}

func gatewayEnv(t *testing.T, handoff broker.Handoff, mod ...func(*broker.Config)) (*env, *broker.Broker) {
	t.Helper()
	db := pgtest.NewDB(t)
	store, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: db})
	must(t, err)
	e := &env{reg: prometheus.NewRegistry(), secrets: map[string]string{}, inbox: &inbox{}}
	cfg := broker.Config{Listen: "127.0.0.1:0", Auth: store, Registerer: e.reg, Logger: testLog(t), Handoff: handoff,
		Gateways:         map[string]string{"chirpstack": "cs-pw"},
		GatewayPublish:   []string{"application/+/device/+/event/#"},
		GatewaySubscribe: []string{"application/+/device/+/command/#"}}
	for _, m := range mod {
		m(&cfg)
	}
	e.b, err = broker.New(cfg)
	must(t, err)
	must(t, e.b.Start(context.Background()))
	t.Cleanup(e.b.Stop)
	user, pass := e.b.InternalCredentials()
	server := e.link(t, mqttlink.Config{ClientID: "aghali-server", Username: user, Password: pass})
	must(t, server.Subscribe("#", e.inbox.handle))
	e.start(t, server)
	return e, e.b
}

// A gateway (a network server, a concentrator of wired sensors) may publish any node's uplink
// and its own topics, and read its downlink topics; nothing else.
func TestGatewayLogins(t *testing.T) {
	e, _ := gatewayEnv(t, nil)
	gw := e.link(t, mqttlink.Config{ClientID: "chirpstack-2", Username: "chirpstack", Password: "cs-pw"})
	e.start(t, gw)
	publishOK(t, gw, "aghali/nodes/any-node/up", `{"readings":{"soil_vwc":0.2}}`)
	publishOK(t, gw, "application/a1/device/0101010101010101/event/up", `{}`)
	e.inbox.wait(t, 2)
	if err := gw.Subscribe("application/+/device/0101010101010101/command/down", func(mqttlink.Message) {}); err != nil {
		t.Errorf("downlink subscription: %v", err)
	}
	for _, f := range []string{"aghali/nodes/+/up", "#", "application/#"} {
		if err := gw.Subscribe(f, func(mqttlink.Message) {}); err == nil {
			t.Errorf("gateway subscribed to %s", f)
		}
	}
	before := e.counter(t, "aghali_mqtt_broker_acl_denied_total", "action", "write")
	publishOK(t, gw, "aghali/controllers/c1/state", `{}`, 0)
	publishOK(t, gw, "aghali/nodes/n1/config", `{}`, 0)
	publishOK(t, gw, "elsewhere/x", `{}`, 0)
	publishOK(t, gw, "aghali/nodes/sync/up", `{}`) // QoS 1: the broker has handled what came before
	e.inbox.wait(t, 3)
	if after := e.counter(t, "aghali_mqtt_broker_acl_denied_total", "action", "write"); after != before+3 {
		t.Errorf("denied writes %v → %v, want +3", before, after)
	}

	for name, cfg := range map[string]mqttlink.Config{
		"wrong password": {ClientID: "chirpstack", Username: "chirpstack", Password: "guess"},
		"foreign client": {ClientID: "n1", Username: "chirpstack", Password: "cs-pw"},
	} {
		l := e.link(t, cfg)
		if err := l.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: Start = %v, want a refusal", name, err)
		}
		l.Stop()
	}
}

// With a Handoff, a publisher gets its PUBACK only once the Handoff acknowledges the message,
// and the message goes to no subscriber: the broker never holds a message it acknowledged.
func TestHandoffAcknowledgesAfterTheHandoffDoes(t *testing.T) {
	h := &holdHandoff{}
	e, b := gatewayEnv(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := loadgen.Dial(ctx, loadgen.Config{URL: b.URL(), ClientID: "chirpstack-1", Username: "chirpstack", Password: "cs-pw"})
	must(t, err)
	defer p.Close()
	for _, topic := range []string{"aghali/nodes/a/up", "aghali/nodes/b/up", "aghali/nodes/c/up"} {
		must(t, p.Publish(ctx, topic, []byte(`{"readings":{"soil_vwc":0.2}}`)))
	}
	must(t, p.Publish(ctx, "application/a1/device/0101010101010101/event/status", []byte(`{}`))) // not wanted: routed
	e.inbox.wait(t, 1)
	deadline := time.Now().Add(10 * time.Second)
	for _, acked, _ := p.Stats(); (h.count() < 3 || acked < 1) && time.Now().Before(deadline); _, acked, _ = p.Stats() {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for a wrong acknowledgement to show up
	if _, acked, _ := p.Stats(); acked != 1 || h.count() != 3 {
		t.Fatalf("%d acknowledged while the handoff holds %d (want 1: the routed one)", acked, h.count())
	}
	if got := e.inbox.all(); len(got) != 1 || got[0].Topic != "application/a1/device/0101010101010101/event/status" {
		t.Errorf("subscribers got %+v", got)
	}
	h.release()
	must(t, p.Wait(ctx))
	if _, acked, _ := p.Stats(); acked != 4 {
		t.Errorf("%d acknowledged after the release", acked)
	}
	for deadline := time.Now().Add(10 * time.Second); total(t, e, "aghali_mqtt_broker_commit_acks_total") < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // counted just after the write
	}
	if n := total(t, e, "aghali_mqtt_broker_commit_acks_total"); n != 3 {
		t.Errorf("commit acks counted: %v, want 3", n)
	}
	if n := total(t, e, "aghali_mqtt_broker_handed_off_total"); n != 3 {
		t.Errorf("handed off: %v, want 3", n)
	}
}

// publishOne connects a gateway publisher as clientID and publishes one uplink (QoS 1); the
// publisher is closed when the test ends.
func publishOne(ctx context.Context, t *testing.T, b *broker.Broker, clientID string) *loadgen.Publisher {
	t.Helper()
	p, err := loadgen.Dial(ctx, loadgen.Config{URL: b.URL(), ClientID: clientID, Username: "chirpstack", Password: "cs-pw"})
	must(t, err)
	t.Cleanup(p.Close)
	must(t, p.Publish(ctx, "aghali/nodes/a/up", []byte(`{"readings":{"soil_vwc":0.2}}`)))
	return p
}

// A broker that awaits its Handoff (a process starts it before its ingest exists) holds the
// publishes that come in before it is set, unacknowledged and routed to no subscriber, and hands
// them over once it is.
func TestPublishesWaitForTheAwaitedHandoff(t *testing.T) {
	e, b := gatewayEnv(t, nil, func(c *broker.Config) { c.AwaitHandoff = true })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := publishOne(ctx, t, b, "chirpstack-1")
	time.Sleep(300 * time.Millisecond)
	if _, acked, _ := p.Stats(); acked != 0 || len(e.inbox.all()) != 0 {
		t.Fatalf("before the Handoff: %d acknowledged, subscribers got %+v; want nothing", acked, e.inbox.all())
	}
	h := &holdHandoff{}
	b.SetHandoff(h)
	for deadline := time.Now().Add(10 * time.Second); h.count() < 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if h.count() != 1 {
		t.Fatalf("the Handoff got %d messages, want the one that waited", h.count())
	}
	h.release()
	must(t, p.Wait(ctx))
	if _, acked, _ := p.Stats(); acked != 1 || len(e.inbox.all()) != 0 {
		t.Errorf("after the Handoff: %d acknowledged (want 1), subscribers got %+v (want nothing)", acked, e.inbox.all())
	}
}

// A publish that waited for the Handoff in vain is left unacknowledged and its client
// disconnected, so that it comes again on the next connection; Stop does not wait for the
// publishes that are waiting.
func TestPublishesThatWaitInVainComeAgain(t *testing.T) {
	e, b := gatewayEnv(t, nil, func(c *broker.Config) { c.AwaitHandoff, c.HandoffWait = true, 200*time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := publishOne(ctx, t, b, "chirpstack-1")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, _, reconnects := p.Stats(); reconnects > 0 {
			break
		}
	}
	if _, acked, reconnects := p.Stats(); reconnects == 0 || acked != 0 || len(e.inbox.all()) != 0 {
		t.Fatalf("after waiting in vain: %d reconnects (want some), %d acknowledged, subscribers got %d (want none)", reconnects, acked, len(e.inbox.all()))
	}
	h := &holdHandoff{}
	b.SetHandoff(h)
	for deadline := time.Now().Add(5 * time.Second); h.count() < 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	h.release()
	must(t, p.Wait(ctx))
	if _, acked, _ := p.Stats(); acked != 1 || h.count() != 0 {
		t.Errorf("after the Handoff: %d acknowledged, want 1", acked)
	}

	// A broker stopping while a publish waits for its Handoff stops at once.
	_, b2 := gatewayEnv(t, nil, func(c *broker.Config) { c.AwaitHandoff, c.HandoffWait = true, time.Hour })
	publishOne(ctx, t, b2, "chirpstack-2")
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan struct{})
	go func() { b2.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop waits for a publish waiting for the Handoff")
	}
}

// total reads an unlabelled counter of the broker's registry.
func total(t *testing.T, e *env, name string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	return 0
}
