package fieldnodes_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/loadgen"
)

// Garbage, truncated and hostile payloads on every topic the ingest takes end up as recorded
// rejections (topic, raw bytes, reason; counted by reason), never as a crash or a reading; and
// the ingest still takes good messages afterwards.
func TestHostileInputIsRejectedNeverFatal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newLoRaRig(t, true)
	r.loraNode(t, "probe", "0101010101010101", "cayenne")
	_, err := r.store.CreateNode(ctx, fieldnodes.Node{UID: "obj", FarmID: r.farmID, DevEUI: "0004a30b001c0530", Profile: "object"})
	must(t, err)
	native := r.node(t, "soil-01", 0)
	secret, err := r.store.NewSecret(ctx, "soil-01", fieldnodes.KindNode)
	must(t, err)
	dev := mqttLink(t, r.b.URL(), "soil-01", "soil-01", secret, "")
	startLink(t, dev)

	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	up := fixture(t, fixtureChirpStackUp)
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	cases := []struct{ topic, payload, reason string }{
		// Native uplinks.
		{"aghali/nodes/soil-01/up", "", fieldnodes.RejectMalformed},
		{"aghali/nodes/soil-01/up", random(300), fieldnodes.RejectMalformed},
		{"aghali/nodes/soil-01/up", `{"readings":{"soil_vwc":0.2`, fieldnodes.RejectMalformed},
		{"aghali/nodes/soil-01/up", deep, fieldnodes.RejectInvalid},
		{"aghali/nodes/soil-01/up", `{"readings":{"soil_vwc":1e999}}`, fieldnodes.RejectInvalid},
		{"aghali/nodes/soil-01/up", `{"readings":{"soil_vwc":"NaN"}}`, fieldnodes.RejectInvalid},
		{"aghali/nodes/soil-01/up", `[{"n":"soil_vwc","v":1,"bt":1e300}]`, fieldnodes.RejectInvalid},
		{"aghali/nodes/soil-01/up", "[" + strings.Repeat(`{"n":"x","v":1},`, 1500) + `{"n":"x","v":1}]`, fieldnodes.RejectTooLarge},
		{"aghali/nodes/soil-01/up", "\xff\xfe{\"readings\":{}}", fieldnodes.RejectMalformed},
		// ChirpStack.
		{topicChirpStack + "up", up[:len(up)/2], fieldnodes.RejectMalformed},
		{topicChirpStack + "up", strings.Replace(up, `"A2cBEAVnAP8="`, `"A2cB"`, 1), fieldnodes.RejectInvalid},  // Cayenne cut short
		{topicChirpStack + "up", strings.Replace(up, `"A2cBEAVnAP8="`, `"/w=="`, 1), fieldnodes.RejectInvalid},  // unknown type
		{topicChirpStack + "up", strings.Replace(up, `"fCnt": 17`, `"fCnt": "x"`, 1), fieldnodes.RejectInvalid}, // wrong type
		{topicChirpStack + "status", random(64), fieldnodes.RejectMalformed},
		{topicChirpStack + "up", `{"deviceInfo":{"devEui":"0101010101010101"},"rxInfo":[{"rssi":1e999}]}`, fieldnodes.RejectInvalid},
		// TTS.
		{topicTTS + "up", `{"end_device_ids":{"device_id":"dev1","dev_eui":"0004A30B001C0530"},"uplink_message":{"decoded_payload":` + deep + `}}`, fieldnodes.RejectInvalid},
		{topicTTS + "up", `{"end_device_ids":{"device_id":"dev1","dev_eui":"0004A30B001C0530"},"uplink_message":{"decoded_payload":{"s":"ok"}}}`, fieldnodes.RejectInvalid},
		{topicTTS + "down/failed", `{"end_device_ids":{"device_id":"dev1"}}`, fieldnodes.RejectInvalid},
	}
	for _, c := range cases {
		l := r.ns
		if strings.HasPrefix(c.topic, "aghali/") {
			l = dev
		}
		send(t, l, c.topic, c.payload)
	}
	eventually(t, 10*time.Second, "every hostile message rejected", func() bool {
		return r.count(t, "aghali_ingest_messages_total", "outcome", "rejected") == float64(len(cases))
	})
	rej, err := r.store.RejectedMessages(ctx, fieldnodes.RejectedFilter{Limit: 100})
	must(t, err)
	byTopicPayload := map[string]fieldnodes.RejectedMessage{}
	for _, m := range rej {
		byTopicPayload[m.Topic+"\x00"+string(m.Payload)] = m
	}
	want := map[string]int{}
	for _, c := range cases {
		want[c.reason]++
		m, ok := byTopicPayload[c.topic+"\x00"+c.payload]
		if !ok {
			t.Errorf("%s %.40q: no rejection recorded with its raw bytes", c.topic, c.payload)
			continue
		}
		if m.Reason != c.reason || m.Detail == "" {
			t.Errorf("%s %.40q: reason %s (%s), want %s", c.topic, c.payload, m.Reason, m.Detail, c.reason)
		}
	}
	for reason, n := range want {
		if got := r.count(t, "aghali_ingest_rejections_total", "reason", reason); got != float64(n) {
			t.Errorf("rejections counted for %s: %v, want %d", reason, got, n)
		}
	}
	if n := r.count(t, "aghali_ingest_readings_stored_total", "", ""); n != 0 {
		t.Errorf("%v readings stored from hostile input", n)
	}

	// Still serving.
	send(t, dev, "aghali/nodes/soil-01/up", `{"ts":"2026-07-06T05:00:00Z","readings":{"soil_vwc":0.3}}`)
	eventually(t, 10*time.Second, "a good message after the bad ones", func() bool { return readingsOf(t, r.farm, native)["soil_vwc"].n == 1 })
}

// A device sending new metric names past the catalogue's cap has those messages refused while
// the rest of the batch is stored; an unknown device sending a burst keeps its last 20 payloads
// and the count of all.
func TestNamesPastTheCapAndChattyStrangers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	store, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: f.db, Logger: testLogger(t), MaxUnknownMetrics: 1})
	must(t, err)
	good := f.node(t, "good", 0)
	f.node(t, "spammer", 0)
	b, err := broker.New(broker.Config{Listen: "127.0.0.1:0", Auth: store, Logger: testLogger(t), Gateways: map[string]string{"gw": "pw"}})
	must(t, err)
	must(t, b.Start(ctx))
	t.Cleanup(b.Stop)
	user, pass := b.InternalCredentials()
	link := mqttLink(t, b.URL(), "aghali-serve-1", user, pass, "")
	reg := prometheus.NewRegistry()
	ing, err := fieldnodes.NewIngest(fieldnodes.IngestConfig{Store: store, Link: link, Logger: testLogger(t), Registerer: reg,
		FlushInterval: 300 * time.Millisecond}) // one batch
	must(t, err)
	b.SetHandoff(ing)
	runIngest(t, ing, link)
	p, err := loadgen.Dial(ctx, loadgen.Config{URL: b.URL(), ClientID: "gw-1", Username: "gw", Password: "pw"})
	must(t, err)
	t.Cleanup(p.Close)
	for i := range 10 {
		must(t, p.Publish(ctx, "aghali/nodes/good/up", fmt.Appendf(nil, `{"ts":"2026-07-06T05:%02d:00Z","readings":{"soil_vwc":0.2,"custom_a":1}}`, i)))
		must(t, p.Publish(ctx, "aghali/nodes/spammer/up", fmt.Appendf(nil, `{"ts":"2026-07-06T05:%02d:00Z","readings":{"new_name_%d":1}}`, i, i)))
	}
	for i := range 30 {
		must(t, p.Publish(ctx, "aghali/nodes/stranger/up", fmt.Appendf(nil, `{"readings":{"soil_vwc":0.%02d}}`, i)))
	}
	must(t, p.Wait(ctx))
	if got := readingsOf(t, f, good); got["soil_vwc"].n != 10 || got["custom_a"].n != 10 {
		t.Errorf("the good node's readings: %+v", got)
	}
	if n := counter(t, reg, "aghali_ingest_rejections_total"); n != 10 {
		t.Errorf("%v rejections, want the spammer's 10", n)
	}
	rej, err := store.RejectedMessages(ctx, fieldnodes.RejectedFilter{Reason: fieldnodes.RejectRefused})
	must(t, err)
	if len(rej) != 10 || !strings.Contains(rej[0].Detail, "too many unknown metric names") {
		t.Errorf("refused: %d, %+v", len(rej), rej)
	}
	pend, err := store.PendingDevices(ctx)
	must(t, err)
	if len(pend) != 1 || pend[0].MessageCount != 30 || len(pend[0].Messages) != fieldnodes.PendingMessagesKept ||
		string(pend[0].Messages[0].Payload) != `{"readings":{"soil_vwc":0.29}}` {
		t.Errorf("pending %+v", pend)
	}
}
