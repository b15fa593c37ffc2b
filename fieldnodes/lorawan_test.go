package fieldnodes_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
	"github.com/aghali/aghali/fieldnodes/profile"
)

// The network servers' messages: the shared fixtures (../../shared/fixtures), kept beside the
// adapters' own.
const (
	fixtureChirpStackUp     = "lorawan/chirpstack/testdata/ok_up_cayenne.json"
	fixtureChirpStackStatus = "lorawan/chirpstack/testdata/ok_status_battery.json"
	fixtureTTSUp            = "lorawan/tts/testdata/ok_up_decoded.json"
	topicChirpStack         = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/"
	topicTTS                = "v3/app1@ttn/devices/dev1/"
)

func fixture(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	must(t, err)
	return string(b)
}

// loraRig is a farm, the embedded broker with a gateway login for the network servers, and an
// ingest taking ChirpStack and TTS messages; handoff makes the broker hand messages straight
// to the ingest (as `aghali serve` does) rather than through the server's subscription.
type loraRig struct {
	*farm
	b      *broker.Broker
	reg    *prometheus.Registry
	link   *mqttlink.Link
	ingest *fieldnodes.Ingest
	ns     *mqttlink.Link // the network server, logged in as a gateway
	now    time.Time
}

func newLoRaRig(t *testing.T, handoff bool, mod ...func(*fieldnodes.IngestConfig)) *loraRig {
	t.Helper()
	ctx := context.Background()
	r := &loraRig{farm: newFarm(t), reg: prometheus.NewRegistry()}
	var err error
	r.b, err = broker.New(broker.Config{Listen: "127.0.0.1:0", Auth: r.store, Logger: testLogger(t),
		Gateways:         map[string]string{"chirpstack": "cs-pw"},
		GatewayPublish:   []string{"application/+/device/+/event/#", "v3/+/devices/+/#"},
		GatewaySubscribe: []string{"application/+/device/+/command/#", "v3/+/devices/+/down/#"}})
	must(t, err)
	must(t, r.b.Start(ctx))
	t.Cleanup(r.b.Stop)
	user, pass := r.b.InternalCredentials()
	r.link, err = mqttlink.New(mqttlink.Config{URL: r.b.URL(), ClientID: "aghali-serve-1", Username: user, Password: pass,
		Shared: "aghali", Logger: testLogger(t), RetryInterval: 50 * time.Millisecond})
	must(t, err)
	cfg := fieldnodes.IngestConfig{Store: r.store, Link: r.link, Logger: testLogger(t), Registerer: r.reg,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Integrations: []fieldnodes.Integration{
			{Network: fieldnodes.NetworkChirpStack, Topic: fieldnodes.DefaultChirpStackTopic},
			{Network: fieldnodes.NetworkTTS, Topic: fieldnodes.DefaultTTSTopic},
		}}
	for _, m := range mod {
		m(&cfg)
	}
	r.ingest, err = fieldnodes.NewIngest(cfg)
	must(t, err)
	if handoff {
		r.b.SetHandoff(r.ingest)
	}
	must(t, r.ingest.Start(ctx))
	startLink(t, r.link)
	t.Cleanup(r.ingest.Stop) // before the link's Stop (cleanups run last first)
	r.ns = r.gateway(t, "chirpstack")
	return r
}

func (r *loraRig) gateway(t *testing.T, clientID string) *mqttlink.Link {
	t.Helper()
	l, err := mqttlink.New(mqttlink.Config{URL: r.b.URL(), ClientID: clientID, Username: "chirpstack", Password: "cs-pw", Logger: testLogger(t)})
	must(t, err)
	startLink(t, l)
	return l
}

// loraNode registers a LoRaWAN node with its DevEUI and profile.
func (r *loraRig) loraNode(t *testing.T, uid, eui, prof string) int64 {
	t.Helper()
	n, err := r.store.CreateNode(context.Background(), fieldnodes.Node{UID: uid, FarmID: r.farmID, DevEUI: eui, Profile: prof})
	must(t, err)
	return n.ID
}

func (r *loraRig) count(t *testing.T, name, label, value string) float64 {
	return (&rig{reg: r.reg}).count(t, name, label, value)
}

// readingsOf returns a node's stored readings as metric → value, with their times and flags.
func readingsOf(t *testing.T, f *farm, node int64) map[string]storedReading {
	t.Helper()
	rows, err := f.db.Query(context.Background(), `SELECT m.name, r.ts, r.value, r.flags FROM readings r JOIN metrics m ON m.id = r.metric_id
		WHERE r.node_id = $1 ORDER BY r.ts, m.name`, node)
	must(t, err)
	defer rows.Close()
	out := map[string]storedReading{}
	for rows.Next() {
		var name string
		var s storedReading
		must(t, rows.Scan(&name, &s.ts, &s.value, &s.flags))
		s.n = out[name].n + 1
		out[name] = s
	}
	must(t, rows.Err())
	return out
}

type storedReading struct {
	ts    time.Time
	value float64
	flags int16
	n     int // how many readings of the metric (the fields are the newest's)
}

// The shared fixtures, through the broker: ChirpStack's Cayenne uplink becomes the profile's
// metrics at ChirpStack's time, with the best gateway's RSSI and SNR and the link figures on the
// node; its status gives the battery and margin; TTS's decoded payload is mapped by the profile.
func TestLoRaWANFixturesThroughBroker(t *testing.T) {
	t.Parallel()
	for _, handoff := range []bool{true, false} {
		t.Run(fmt.Sprintf("handoff=%v", handoff), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := newLoRaRig(t, handoff)
			_, err := r.store.PutProfile(ctx, profile.Profile{Name: "north-plot", Decoder: profile.DecoderCayenne, Map: map[string]profile.Rule{
				"temperature_3": {Metric: "air_temp_c"}, "temperature_5": {Metric: "soil_temp_c"}}})
			must(t, err)
			_, err = r.store.PutProfile(ctx, profile.Profile{Name: "tts-demo", Decoder: profile.DecoderObject, Map: map[string]profile.Rule{
				"temperature": {Metric: "air_temp_c"}, "luminosity": {Metric: "leaf_wetness", Calibration: &profile.Calibration{Linear: &profile.Linear{Scale: 100}}}}})
			must(t, err)
			cs := r.loraNode(t, "north-plot-probe", "0101010101010101", "north-plot")
			tt := r.loraNode(t, "dev1", "0004A30B001C0530", "tts-demo")

			send(t, r.ns, topicChirpStack+"up", fixture(t, fixtureChirpStackUp))
			send(t, r.ns, topicChirpStack+"status", fixture(t, fixtureChirpStackStatus))
			send(t, r.ns, topicTTS+"up", fixture(t, fixtureTTSUp))
			eventually(t, 10*time.Second, "three messages stored", func() bool {
				return r.count(t, "aghali_ingest_messages_total", "outcome", "stored") == 3
			})

			got := readingsOf(t, r.farm, cs)
			csTime := time.Date(2026, 7, 6, 5, 0, 15, 775023000, time.UTC) // PostgreSQL keeps microseconds
			statusTime := time.Date(2026, 7, 6, 5, 2, 6, 920000000, time.UTC)
			want := map[string]storedReading{
				"air_temp_c":  {ts: csTime, value: 27.2, n: 1},
				"soil_temp_c": {ts: csTime, value: 25.5, n: 1},
				"rssi_dbm":    {ts: csTime, value: -36, n: 1},
				"snr_db":      {ts: csTime, value: 10.5, n: 1},
				"battery_pct": {ts: statusTime, value: 88.3, n: 1},
			}
			if len(got) != len(want) {
				t.Errorf("ChirpStack node's readings: %+v", got)
			}
			for m, w := range want {
				if g := got[m]; !g.ts.Equal(w.ts) || g.value != w.value || g.n != w.n || g.flags != 0 {
					t.Errorf("%s = %+v, want %+v", m, g, w)
				}
			}
			ttsTime := time.Date(2026, 7, 6, 5, 15, 46, 14773000, time.UTC)
			got = readingsOf(t, r.farm, tt)
			if g := got["air_temp_c"]; g.value != 1 || !g.ts.Equal(ttsTime) || got["leaf_wetness"].value != 64 ||
				got["rssi_dbm"].value != -35 || got["snr_db"].value != 5 || !got["snr_db"].ts.Equal(ttsTime) || len(got) != 4 {
				t.Errorf("TTS node's readings: %+v", got)
			}

			// The link figures and status, once the node upkeep is written.
			// The messages' upkeep may come in separate writes, in any order.
			eventually(t, 10*time.Second, "the node upkeep", func() bool {
				n, err := r.store.Node(ctx, cs)
				must(t, err)
				m, err := r.store.Node(ctx, tt)
				must(t, err)
				return n.LinkMarginDB != nil && n.BatteryPct != nil && n.RSSIDBm != nil && n.SNRDB != nil && n.Gateways != nil &&
					n.SpreadingFactor != nil && n.FCnt != nil && n.FrequencyHz != nil && n.LastSeenAt != nil && n.LastSeenAt.Equal(statusTime) &&
					m.SpreadingFactor != nil && m.FCnt != nil && m.RSSIDBm != nil
			})
			n, err := r.store.Node(ctx, cs)
			must(t, err)
			if *n.RSSIDBm != -36 || *n.SNRDB != 10.5 || *n.Gateways != 1 || *n.SpreadingFactor != 11 || *n.FCnt != 17 ||
				*n.FrequencyHz != 867100000 || *n.BatteryPct != 88.3 || *n.LinkMarginDB != 10 || !n.LastSeenAt.Equal(statusTime) ||
				n.Latest["air_temp_c"].Value != 27.2 {
				t.Errorf("node after the fixtures: %+v", n)
			}
			if n, err := r.store.Node(ctx, tt); err != nil || *n.SpreadingFactor != 7 || *n.FCnt != 1 || *n.RSSIDBm != -35 {
				t.Errorf("TTS node: %+v, %v", n, err)
			}
		})
	}
}

// A LoRaWAN frame seen again (another gateway's copy with another time, a QoS 1 redelivery) is
// stored once; a device that rebooted and counts from 0 again is stored and its reset counted;
// unknown devices wait as pending; events Aghali does not use are acknowledged, not rejected.
func TestLoRaWANStreamCorrectness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newLoRaRig(t, true)
	id := r.loraNode(t, "probe-1", "a84041000181c34d", "cayenne")
	up := func(fcnt int, payload string, at time.Time, rssi int) string {
		return fmt.Sprintf(`{"time":%q,"deviceInfo":{"devEui":"A84041000181C34D","deviceName":"probe"},"fCnt":%d,"fPort":1,"data":%q,
			"rxInfo":[{"gatewayId":"gw-%d","rssi":%d,"snr":5}],"txInfo":{"frequency":868100000,"modulation":{"lora":{"spreadingFactor":9}}}}`,
			at.Format(time.RFC3339Nano), fcnt, payload, -rssi, rssi)
	}
	topic := "application/app/device/a84041000181c34d/event/"
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	// Frame 41 and 42, then a copy of 41 through another network-server instance, a second later.
	send(t, r.ns, topic+"up", up(41, "AWcA3g==", t0, -100))                  // temperature_1 22.2
	send(t, r.ns, topic+"up", up(42, "AWcA4A==", t0.Add(time.Minute), -100)) // 22.4
	send(t, r.ns, topic+"up", up(41, "AWcA3g==", t0.Add(time.Second), -90))  // copy
	// The device reboots: counting from 0 again, with a new payload.
	send(t, r.ns, topic+"up", up(0, "AWcA5A==", t0.Add(2*time.Minute), -100)) // 22.8
	send(t, r.ns, topic+"up", up(1, "AWcA5g==", t0.Add(3*time.Minute), -100)) // 23.0
	send(t, r.ns, topic+"log", `{"deviceInfo":{"devEui":"a84041000181c34d"},"level":"ERROR","code":"UPLINK_CODEC"}`)
	send(t, r.ns, topic+"up", up(42, "AWcA4A==", t0.Add(time.Minute), -100))                 // a redelivery of 42
	send(t, r.ns, topic+"up", up(2, "AWcA6g==", t0.Add(3*time.Minute+30*time.Second), -100)) // 23.4: not a reset
	eventually(t, 10*time.Second, "every message handled", func() bool {
		return r.count(t, "aghali_ingest_messages_total", "", "") >= 8
	})
	got := readingsOf(t, r.farm, id)
	if g := got["temperature_1"]; g.n != 5 || g.value != 23.4 || got["rssi_dbm"].n != 5 {
		t.Errorf("readings %+v: want 5 temperatures (41, 42, 0, 1, 2), the newest 23.4", got)
	}
	// The copy of 41 is recognised as such; the redelivery of 42 after the reset (which forgot
	// the frames before it) is a duplicate the table refuses.
	if c := r.count(t, "aghali_ingest_messages_total", "outcome", "copy"); c != 1 {
		t.Errorf("%v copies recognised, want 1", c)
	}
	if d := r.count(t, "aghali_ingest_readings_duplicate_total", "", ""); d != 3 {
		t.Errorf("%v duplicate readings, want 3 (the redelivery's temperature, RSSI, SNR)", d)
	}
	if c := r.count(t, "aghali_ingest_messages_total", "outcome", "ignored"); c != 1 {
		t.Errorf("%v ignored, want 1 (the log event)", c)
	}
	if rej, err := r.store.Rejected(ctx, 10); err != nil || len(rej) != 0 {
		t.Errorf("rejections: %+v %v", rej, err)
	}
	eventually(t, 10*time.Second, "the reset counted", func() bool {
		n, err := r.store.Node(ctx, id)
		must(t, err)
		return n.FCntResets == 1 && n.FCnt != nil && *n.FCnt == 2
	})

	// A join: counters restart, and frame 0 again (another payload) is new.
	send(t, r.ns, topic+"join", fmt.Sprintf(`{"time":%q,"deviceInfo":{"devEui":"a84041000181c34d"},"devAddr":"00a1b2c4"}`, t0.Add(4*time.Minute).Format(time.RFC3339)))
	send(t, r.ns, topic+"up", up(0, "AWcA6A==", t0.Add(5*time.Minute), -100))
	eventually(t, 10*time.Second, "the uplink after the join", func() bool { return readingsOf(t, r.farm, id)["temperature_1"].n == 6 })
	eventually(t, 10*time.Second, "the join noted", func() bool {
		n, err := r.store.Node(ctx, id)
		must(t, err)
		return n.LastJoinAt != nil && n.LastJoinAt.Equal(t0.Add(4*time.Minute)) && n.FCntResets == 1
	})

	// Downlink outcomes.
	send(t, r.ns, topic+"txack", fmt.Sprintf(`{"time":%q,"deviceInfo":{"devEui":"a84041000181c34d"},"fCntDown":7}`, t0.Add(6*time.Minute).Format(time.RFC3339)))
	send(t, r.ns, topic+"ack", fmt.Sprintf(`{"time":%q,"deviceInfo":{"devEui":"a84041000181c34d"},"acknowledged":true,"fCntDown":7}`, t0.Add(7*time.Minute).Format(time.RFC3339)))
	eventually(t, 10*time.Second, "the downlink acknowledged", func() bool {
		n, err := r.store.Node(ctx, id)
		must(t, err)
		return n.LastDownlinkStatus == "acked" && n.LastDownlinkAt.Equal(t0.Add(7*time.Minute))
	})

	// Unknown devices wait; bad ones are rejected with their reason.
	send(t, r.ns, "application/app/device/1122334455667788/event/up", `{"time":"2026-07-06T05:00:00Z","deviceInfo":{"devEui":"1122334455667788","deviceName":"stray"},"fCnt":3,"data":"AWcA3g=="}`)
	send(t, r.ns, topicTTS+"up", `{"end_device_ids":{"device_id":"no-eui"},"uplink_message":{"frm_payload":"AQ=="}}`)
	send(t, r.ns, "application/app/device/1122334455667788/event/up", `{"deviceInfo":{"devEui":"0101010101010101"},"data":"AQ=="}`)
	far := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	send(t, r.ns, topic+"up", fmt.Sprintf(`{"time":%q,"deviceInfo":{"devEui":"a84041000181c34d"},"fCnt":9,"data":"AWcA3g=="}`, far))
	eventually(t, 10*time.Second, "pending and rejections", func() bool {
		rej, err := r.store.Rejected(ctx, 10)
		must(t, err)
		return len(rej) == 3
	})
	pend, err := r.store.PendingDevices(ctx)
	must(t, err)
	if len(pend) != 1 || pend[0].Source != fieldnodes.NetworkChirpStack || pend[0].UID != "1122334455667788" || pend[0].Label != "stray" ||
		len(pend[0].Messages) != 1 || pend[0].Messages[0].Event != "up" {
		t.Errorf("pending = %+v", pend)
	}
	reasons := map[string]string{}
	rej, _ := r.store.Rejected(ctx, 10)
	for _, m := range rej {
		reasons[m.Reason] = m.Detail
	}
	if !strings.Contains(reasons[fieldnodes.RejectInvalid], "no-eui") || reasons[fieldnodes.RejectForeignDevice] == "" ||
		!strings.Contains(reasons[fieldnodes.RejectFuture], "temperature_1") {
		t.Errorf("rejections: %+v", reasons)
	}
	if c := r.count(t, "aghali_ingest_rejections_total", "reason", fieldnodes.RejectFuture); c != 1 {
		t.Errorf("future_ts rejections counted: %v", c)
	}
}

// Out-of-order and late readings are stored; the latest value stays the newest.
func TestLateAndOutOfOrderReadings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	id := r.node(t, "soil-01", 0)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)
	now := time.Now().UTC().Truncate(time.Second)
	for _, at := range []time.Duration{-10 * time.Minute, -40 * time.Minute, -90 * 24 * time.Hour, -20 * time.Minute} {
		send(t, dev, "aghali/nodes/soil-01/up", fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":%g}}`, now.Add(at).Format(time.RFC3339), -at.Hours()))
	}
	eventually(t, 10*time.Second, "four readings", func() bool { return r.readings(t) == 4 })
	var n fieldnodes.Node
	eventually(t, 10*time.Second, "the latest value", func() bool {
		var err error
		n, err = r.store.Node(ctx, id)
		must(t, err)
		return n.LastSeenAt != nil && n.LastSeenAt.Equal(now.Add(-10*time.Minute))
	})
	if lv := n.Latest["soil_vwc"]; !lv.TS.Equal(now.Add(-10*time.Minute)) || !n.LastSeenAt.Equal(now.Add(-10*time.Minute)) {
		t.Errorf("latest %+v, last seen %v", lv, n.LastSeenAt)
	}
}

// A profile's unit conversion and plausible range apply to native payloads too: the value out
// of range is kept, flagged.
func TestProfileFlagsOutOfRange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	_, err := r.store.PutProfile(ctx, profile.Profile{Name: "us-probe", Map: map[string]profile.Rule{
		"vwc_pct": {Metric: "soil_vwc", Unit: "%"}, "temp_f": {Metric: "soil_temp_c", Unit: "°F"}}})
	must(t, err)
	n, err := r.store.CreateNode(ctx, fieldnodes.Node{UID: "soil-01", FarmID: r.farmID, Profile: "us-probe"})
	must(t, err)
	dev := r.device(t, "soil-01", fieldnodes.KindNode)
	send(t, dev, "aghali/nodes/soil-01/up", `{"ts":"2026-07-06T05:00:00Z","readings":{"vwc_pct":23.5,"temp_f":212}}`)
	send(t, dev, "aghali/nodes/soil-01/up", `{"ts":"2026-07-06T05:15:00Z","readings":{"vwc_pct":140,"temp_f":68}}`)
	eventually(t, 10*time.Second, "four readings", func() bool { return r.readings(t) == 4 })
	rows, err := r.db.Query(ctx, `SELECT m.name, r.value, r.flags FROM readings r JOIN metrics m ON m.id = r.metric_id
		WHERE r.node_id = $1 ORDER BY r.ts, m.name`, n.ID)
	must(t, err)
	var got []string
	for rows.Next() {
		var name string
		var v float64
		var flags int16
		must(t, rows.Scan(&name, &v, &flags))
		got = append(got, fmt.Sprintf("%s=%.4g/%d", name, v, flags))
	}
	want := "soil_temp_c=100/1 soil_vwc=0.235/0 soil_temp_c=20/0 soil_vwc=1.4/1"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}
