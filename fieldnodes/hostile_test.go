package fieldnodes_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
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
	eventually(t, 5*time.Second, "every hostile message rejected", func() bool {
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
	eventually(t, 3*time.Second, "a good message after the bad ones", func() bool { return readingsOf(t, r.farm, native)["soil_vwc"].n == 1 })
}
