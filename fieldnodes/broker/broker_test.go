package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env is an embedded broker authenticating against a real device registry, with the server's
// own link subscribed to everything.
type env struct {
	b       *broker.Broker
	reg     *prometheus.Registry
	secrets map[string]string // uid → secret
	inbox   *inbox
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	store, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: db})
	must(t, err)
	e := &env{reg: prometheus.NewRegistry(), secrets: map[string]string{}, inbox: &inbox{}}
	for uid, kind := range map[string]string{"n1": fieldnodes.KindNode, "n2": fieldnodes.KindNode, "c1": fieldnodes.KindController} {
		s, err := store.NewSecret(ctx, uid, kind)
		must(t, err)
		e.secrets[uid] = s
	}
	e.b, err = broker.New(broker.Config{Listen: "127.0.0.1:0", Auth: store, Registerer: e.reg, Logger: testLog(t)})
	must(t, err)
	must(t, e.b.Start(ctx))
	t.Cleanup(e.b.Stop)

	user, pass := e.b.InternalCredentials()
	server := e.link(t, mqttlink.Config{ClientID: "aghali-server", Username: user, Password: pass})
	must(t, server.Subscribe("#", e.inbox.handle))
	e.start(t, server)
	return e
}

func (e *env) link(t *testing.T, cfg mqttlink.Config) *mqttlink.Link {
	t.Helper()
	cfg.URL = e.b.URL()
	cfg.Logger = testLog(t)
	cfg.RetryInterval = 50 * time.Millisecond
	l, err := mqttlink.New(cfg)
	must(t, err)
	return l
}

// device returns a link logged in as uid with its secret.
func (e *env) device(t *testing.T, uid string) *mqttlink.Link {
	t.Helper()
	return e.link(t, mqttlink.Config{ClientID: uid, Username: uid, Password: e.secrets[uid]})
}

func (e *env) start(t *testing.T, l *mqttlink.Link) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, l.Start(ctx))
	t.Cleanup(l.Stop)
	must(t, l.WaitReady(ctx))
}

// counter reads a counter of the broker's registry.
func (e *env) counter(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	must(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestDeviceLogin(t *testing.T) {
	// Registered first, so it runs last: after the links, the broker and the database are gone.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	e := newEnv(t)
	n1 := e.device(t, "n1")
	e.start(t, n1)
	publishOK(t, n1, "aghali/nodes/n1/up", `{"readings":{"soil_vwc":0.2}}`)
	got := e.inbox.wait(t, 1)
	if got[0].Topic != "aghali/nodes/n1/up" {
		t.Errorf("server got %+v", got)
	}
	if n := e.counter(t, "aghali_mqtt_broker_logins_total", "result", "ok"); n < 2 {
		t.Errorf("ok logins = %v", n)
	}
}

func TestRefusedLogins(t *testing.T) {
	e := newEnv(t)
	user, _ := e.b.InternalCredentials()
	cases := map[string]struct {
		cfg    mqttlink.Config
		reason string
	}{
		"wrong secret":      {mqttlink.Config{ClientID: "n1", Username: "n1", Password: e.secrets["n1"] + "x"}, "credentials"},
		"unknown device":    {mqttlink.Config{ClientID: "n9", Username: "n9", Password: e.secrets["n1"]}, "credentials"},
		"other's secret":    {mqttlink.Config{ClientID: "n2", Username: "n2", Password: e.secrets["n1"]}, "credentials"},
		"anonymous":         {mqttlink.Config{ClientID: "n1"}, "anonymous"},
		"client id not uid": {mqttlink.Config{ClientID: "n2", Username: "n1", Password: e.secrets["n1"]}, "client_id"},
		"server's session":  {mqttlink.Config{ClientID: "aghali-server", Username: "n1", Password: e.secrets["n1"]}, "client_id"},
		"wrong internal":    {mqttlink.Config{ClientID: "x", Username: user, Password: "guess"}, "internal"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			before := e.counter(t, "aghali_mqtt_broker_login_refusals_total", "reason", c.reason)
			l := e.link(t, c.cfg)
			err := l.Start(context.Background())
			l.Stop()
			if err == nil || !strings.Contains(err.Error(), "refused") {
				t.Errorf("Start = %v, want a refusal", err)
			}
			if after := e.counter(t, "aghali_mqtt_broker_login_refusals_total", "reason", c.reason); after != before+1 {
				t.Errorf("refusals[%s] went from %v to %v", c.reason, before, after)
			}
		})
	}
}

func TestNodeTopicRules(t *testing.T) {
	e := newEnv(t)
	n1 := e.device(t, "n1")
	e.start(t, n1)
	before := e.counter(t, "aghali_mqtt_broker_acl_denied_total", "action", "write")

	// QoS 0 to a foreign topic is dropped; QoS 1 gets the device disconnected.
	publishOK(t, n1, "aghali/nodes/n2/up", `{"readings":{"soil_vwc":0.9}}`, 0)
	publishOK(t, n1, "aghali/controllers/c1/ack", `{"id":"x","status":"ok"}`, 0)
	publishOK(t, n1, "aghali/nodes/n1", `top level of its own subtree is not under it`, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := n1.Publish(ctx, "aghali/nodes/n2/up", 1, false, []byte(`{"readings":{"soil_vwc":0.9}}`))
	cancel()
	if err == nil {
		t.Error("QoS 1 publish to another node's topic succeeded")
	}
	n1.Stop() // its session would resend the refused message on every reconnection
	after := e.counter(t, "aghali_mqtt_broker_acl_denied_total", "action", "write")
	for deadline := time.Now().Add(10 * time.Second); after < before+4 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the QoS 1 publish may time out before the broker checks it
		after = e.counter(t, "aghali_mqtt_broker_acl_denied_total", "action", "write")
	}
	if after < before+4 {
		t.Errorf("denied writes went from %v to %v, want +4", before, after)
	}
	time.Sleep(100 * time.Millisecond)
	if got := e.inbox.all(); len(got) != 0 {
		t.Errorf("refused publishes reached the server: %+v", got)
	}

	// Subscriptions: its own subtree only.
	n2 := e.device(t, "n2")
	e.start(t, n2)
	if err := n2.Subscribe("aghali/nodes/n2/config", func(mqttlink.Message) {}); err != nil {
		t.Errorf("own subtree: %v", err)
	}
	for _, f := range []string{"aghali/nodes/n1/#", "aghali/nodes/+/up", "#", "aghali/controllers/c1/cmd", "$share/g/aghali/nodes/n2/x"} {
		if err := n2.Subscribe(f, func(mqttlink.Message) {}); err == nil {
			t.Errorf("node subscribed to %s", f)
		}
	}
}

func TestControllerTopicRules(t *testing.T) {
	e := newEnv(t)
	c1 := e.device(t, "c1")
	cmds := &inbox{}
	must(t, c1.Subscribe("aghali/controllers/c1/cmd", cmds.handle))
	e.start(t, c1)

	// The server's command reaches it; its ack and state reach the server.
	user, pass := e.b.InternalCredentials()
	sender := e.link(t, mqttlink.Config{ClientID: "aghali-sender", Username: user, Password: pass})
	e.start(t, sender)
	publishOK(t, sender, "aghali/controllers/c1/cmd", `{"id":"1","action":"close_all","expires_at":"2030-01-01T00:00:00Z"}`)
	cmds.wait(t, 1)
	publishOK(t, c1, "aghali/controllers/c1/ack", `{"id":"1","status":"ok"}`)
	publishOK(t, c1, "aghali/controllers/c1/state", `{"valves":{"1":"closed"}}`)
	if got := e.inbox.waitTopic(t, "aghali/controllers/c1/state"); got.Topic == "" {
		t.Error("state did not reach the server")
	}

	for _, topic := range []string{"aghali/controllers/c1/cmd", "aghali/controllers/c2/ack", "aghali/nodes/c1/up"} {
		publishOK(t, c1, topic, "x", 0)
	}
	for _, f := range []string{"aghali/controllers/c1/#", "aghali/controllers/c1/ack", "aghali/controllers/+/cmd"} {
		if err := c1.Subscribe(f, func(mqttlink.Message) {}); err == nil {
			t.Errorf("controller subscribed to %s", f)
		}
	}
	time.Sleep(100 * time.Millisecond)
	for _, m := range e.inbox.all() {
		if m.Topic != "aghali/controllers/c1/cmd" && m.Topic != "aghali/controllers/c1/ack" && m.Topic != "aghali/controllers/c1/state" {
			t.Errorf("refused publish reached the server: %s", m.Topic)
		}
	}
}

func TestConfigChecks(t *testing.T) {
	if _, err := broker.New(broker.Config{}); err == nil {
		t.Error("no Auth accepted")
	}
	if _, err := broker.New(broker.Config{Auth: refuseAll{}, Prefix: "a/+"}); err == nil {
		t.Error("wildcard prefix accepted")
	}
	b, err := broker.New(broker.Config{Auth: refuseAll{}, Listen: "127.0.0.1:0"})
	must(t, err)
	must(t, b.Start(context.Background()))
	defer b.Stop()
	if !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") || strings.HasSuffix(b.URL(), ":0") {
		t.Errorf("URL = %s", b.URL())
	}
	other, err := broker.New(broker.Config{Auth: refuseAll{}, Listen: b.Addr()})
	must(t, err)
	if err := other.Start(context.Background()); err == nil {
		other.Stop()
		t.Error("second broker on a taken port started")
	}
	u1, p1 := b.InternalCredentials()
	_, p2 := other.InternalCredentials()
	if u1 != broker.InternalUser || len(p1) < 32 || p1 == p2 {
		t.Errorf("internal credentials %q %q / %q", u1, p1, p2)
	}
}

type refuseAll struct{}

func (refuseAll) Authenticate(context.Context, string, string) (string, error) {
	return "", errors.New("no")
}

type inbox struct {
	mu   sync.Mutex
	msgs []mqttlink.Message
}

func (in *inbox) handle(m mqttlink.Message) {
	in.mu.Lock()
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
	m.Ack()
}

func (in *inbox) all() []mqttlink.Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]mqttlink.Message(nil), in.msgs...)
}

func (in *inbox) wait(t *testing.T, n int) []mqttlink.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got := in.all(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d messages, want %d", len(in.all()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (in *inbox) waitTopic(t *testing.T, topic string) mqttlink.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range in.all() {
			if m.Topic == topic {
				return m
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("nothing on %s", topic)
	return mqttlink.Message{}
}

func publishOK(t *testing.T, l *mqttlink.Link, topic, payload string, qos ...byte) {
	t.Helper()
	q := byte(1)
	if len(qos) > 0 {
		q = qos[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, l.Publish(ctx, topic, q, false, []byte(payload)))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testLog(t *testing.T) *slog.Logger {
	if os.Getenv("AGHALI_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
