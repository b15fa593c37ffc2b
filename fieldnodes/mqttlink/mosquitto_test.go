package mqttlink_test

import (
	"context"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/fieldnodes/mqtttest"
)

// A restarted broker without persistence has forgotten the session and its subscriptions: the
// Link must subscribe again when it reconnects.
func TestResubscribesAfterMosquittoRestart(t *testing.T) {
	m := mqtttest.Start(t, mqtttest.Config{})
	in := &inbox{ack: true}
	cfg := mqttlink.Config{URL: m.URL, ClientID: "ingest", Logger: testLog(), RetryInterval: 50 * time.Millisecond,
		MaxReconnectInterval: 200 * time.Millisecond}
	sub, err := mqttlink.New(cfg)
	must(t, err)
	must(t, sub.Subscribe("aghali/nodes/+/up", in.handle))
	start(t, sub)
	defer sub.Stop()
	cfg.ClientID = "device"
	pub, err := mqttlink.New(cfg)
	must(t, err)
	start(t, pub)
	defer pub.Stop()

	publish(t, pub, "aghali/nodes/n1/up", "1")
	in.wait(t, 1)

	m.Stop()
	eventually(t, "the links noticing", func() bool { return !sub.Connected() && !pub.Connected() })
	mqtttest.Start(t, mqtttest.Config{Port: m.Port})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, sub.WaitReady(ctx))
	must(t, pub.WaitReady(ctx))
	publish(t, pub, "aghali/nodes/n1/up", "2")
	got := in.wait(t, 2)
	if string(got[1].Payload) != "2" {
		t.Errorf("after the restart got %q", got[1].Payload)
	}
}
