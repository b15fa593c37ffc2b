package fieldnodes_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/codec/valvecmd"
	"github.com/aghali/aghali/fieldnodes/lorawan"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// loraControllers stands in for irrigation's handler of LoRaWAN controllers: it knows some
// DevEUIs, records what it is given and reads uplinks on port 10 as irrigation does.
type loraControllers struct {
	mu     sync.Mutex
	euis   []string
	events []fieldnodes.ControllerEvent
	lists  int
}

func (h *loraControllers) ControllerDevEUIs(context.Context) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lists++
	return slices.Clone(h.euis), nil
}

func (h *loraControllers) HandleLoRaWANEvent(_ context.Context, ev fieldnodes.ControllerEvent) error {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
	if ev.Event.Kind != lorawan.KindUp {
		return nil
	}
	if ev.Event.FPort != 10 {
		return fieldnodes.ErrNothingForController
	}
	_, err := valvecmd.DecodeUplink(ev.Event.Payload)
	return err
}

func (h *loraControllers) add(eui string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.euis = append(h.euis, eui)
}

func (h *loraControllers) got() []fieldnodes.ControllerEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// The network-server events of a LoRaWAN controller's DevEUI go to the controllers' handler with
// the route their topic tells (not to the nodes, not to the pending devices), acknowledged once
// handled; an uplink on another port is nothing to do, one that cannot be read is rejected; a
// controller registered later is recognised once the DevEUIs are read again.
func TestLoRaWANControllerEventsThroughBroker(t *testing.T) {
	t.Parallel()
	for _, handoff := range []bool{true, false} {
		t.Run(fmt.Sprintf("handoff=%v", handoff), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			h := &loraControllers{euis: []string{"70b3d57ed0061c2d"}}
			r := newLoRaRig(t, handoff, func(c *fieldnodes.IngestConfig) {
				c.LoRaWANControllers, c.ControllerRefresh = h, 50*time.Millisecond
			})
			node := r.loraNode(t, "probe-1", "a84041000181c34d", "cayenne")

			const app = "17c82e96-be03-4f38-aef3-f83d48582d97"
			ctlTopic := "application/" + app + "/device/70b3d57ed0061c2d/event/"
			up := func(eui string, fport int, payload []byte) string {
				return fmt.Sprintf(`{"time":"2026-07-06T05:00:00Z","deviceInfo":{"devEui":%q,"deviceName":"valves-east"},"fCnt":3,"fPort":%d,"data":%q}`,
					strings.ToUpper(eui), fport, base64.StdEncoding.EncodeToString(payload))
			}
			ackBytes := valvecmd.EncodeAck(valvecmd.Ack{Ref: 0x2b7e, OK: true})
			send(t, r.ns, ctlTopic+"up", up("70b3d57ed0061c2d", 10, ackBytes))
			send(t, r.ns, ctlTopic+"ack", `{"time":"2026-07-06T05:00:01Z","deviceInfo":{"devEui":"70b3d57ed0061c2d"},"queueItemId":"2b7e1516-28ae-4d2a-a6d2-abf7158809cf","acknowledged":true,"fCntDown":7}`)
			send(t, r.ns, "v3/aghali-fields@ttn/devices/valves-east/down/ack", fixture(t, "lorawan/tts/testdata/ok_down-ack_aghali_command.json"))
			send(t, r.ns, ctlTopic+"up", up("70b3d57ed0061c2d", 2, []byte{1, 2}))  // another port
			send(t, r.ns, ctlTopic+"up", up("70b3d57ed0061c2d", 10, []byte{0x1f})) // unreadable
			send(t, r.ns, "application/"+app+"/device/a84041000181c34d/event/up", up("a84041000181c34d", 1, []byte{1, 0x67, 0, 0xde}))

			eventually(t, 10*time.Second, "every message handled", func() bool {
				return r.count(t, "aghali_ingest_messages_total", "", "") == 6
			})
			if c := r.count(t, "aghali_ingest_messages_total", "outcome", "controller_lorawan"); c != 3 {
				t.Errorf("%v controller events handled, want 3", c)
			}
			if c := r.count(t, "aghali_ingest_messages_total", "outcome", "ignored"); c != 1 {
				t.Errorf("%v ignored, want 1 (the uplink on another port)", c)
			}
			if c := r.count(t, "aghali_ingest_messages_total", "outcome", "stored"); c != 1 {
				t.Errorf("%v stored, want 1 (the node's uplink)", c)
			}
			evs := h.got()
			if len(evs) != 5 {
				t.Fatalf("%d events for the controller: %+v", len(evs), evs)
			}
			if e := evs[0]; e.Network != fieldnodes.NetworkChirpStack || e.Event.Kind != lorawan.KindUp || e.Event.FPort != 10 ||
				string(e.Event.Payload) != string(ackBytes) || len(e.Route) != 2 || e.Route["application_id"] != app ||
				e.Route["dev_eui"] != "70b3d57ed0061c2d" || e.Received.IsZero() {
				t.Errorf("uplink event %+v", e)
			}
			if e := evs[1]; e.Event.Kind != lorawan.KindAck || !e.Event.Acknowledged || e.Event.DownlinkID != "2b7e1516-28ae-4d2a-a6d2-abf7158809cf" {
				t.Errorf("ack event %+v", e)
			}
			if e := evs[2]; e.Network != fieldnodes.NetworkTTS || e.Event.Kind != lorawan.KindDownAck ||
				e.Event.DownlinkID != "2b7e1516-28ae-4d2a-a6d2-abf7158809cf" || e.Route["application_id"] != "aghali-fields" ||
				e.Route["tenant_id"] != "ttn" || e.Route["device_id"] != "valves-east" || len(e.Route) != 3 {
				t.Errorf("TTS down/ack event %+v", e)
			}
			rej, err := r.store.Rejected(ctx, 10)
			must(t, err)
			if len(rej) != 1 || rej[0].Reason != fieldnodes.RejectInvalid || !strings.Contains(rej[0].Detail, "valvecmd") ||
				!strings.HasSuffix(rej[0].Topic, "/event/up") {
				t.Errorf("rejections %+v", rej)
			}
			pend, err := r.store.PendingDevices(ctx)
			must(t, err)
			if len(pend) != 0 {
				t.Errorf("a controller was taken for a pending device: %+v", pend)
			}
			if got := readingsOf(t, r.farm, node); got["temperature_1"].value != 22.2 {
				t.Errorf("the node's uplink: %+v", got)
			}

			// A controller registered now: its events are a stray device's until the DevEUIs are
			// read again, then the controller's, and its pending device is gone.
			newTopic := "application/" + app + "/device/70b3d57ed0069999/event/up"
			send(t, r.ns, newTopic, up("70b3d57ed0069999", 10, ackBytes))
			eventually(t, 10*time.Second, "a pending device", func() bool {
				pend, err := r.store.PendingDevices(ctx)
				must(t, err)
				return len(pend) == 1 && pend[0].UID == "70b3d57ed0069999"
			})
			h.add("70b3d57ed0069999")
			lists := func() int { h.mu.Lock(); defer h.mu.Unlock(); return h.lists }
			n := lists()
			eventually(t, 10*time.Second, "the DevEUIs read again", func() bool { return lists() >= n+2 })
			if pend, err := r.store.PendingDevices(ctx); err != nil || len(pend) != 0 {
				t.Errorf("a controller's pending device left: %+v %v", pend, err)
			}
			send(t, r.ns, newTopic, up("70b3d57ed0069999", 10, ackBytes))
			eventually(t, 10*time.Second, "the new controller's uplink", func() bool { return len(h.got()) == 6 })
			if e := h.got()[5]; e.Event.DevEUI != "70b3d57ed0069999" {
				t.Errorf("event %+v", e)
			}
		})
	}
}

// Downlinks go to the topic the controller's route fills in: ChirpStack's command/down with the
// command's id as the queue item's and its expiry, TTS's down/push with the correlation id;
// confirmed, the payload intact. Without a route, past expiry or through a network server not
// configured, nothing is published.
func TestDownlinksThroughBroker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newLoRaRig(t, true)
	ns, err := mqttlink.New(mqttlink.Config{URL: r.b.URL(), ClientID: "chirpstack-sub", Username: "chirpstack", Password: "cs-pw", Logger: testLogger(t)})
	must(t, err)
	got := make(chan mqttlink.Message, 10)
	for _, f := range []string{"application/+/device/+/command/#", "v3/+/devices/+/down/#"} {
		must(t, ns.Subscribe(f, func(m mqttlink.Message) { m.Ack(); got <- m }))
	}
	startLink(t, ns)

	now := time.Now()
	d, err := fieldnodes.NewDownlinks(fieldnodes.DownlinksConfig{Networks: []fieldnodes.DownlinkNetwork{
		{Network: fieldnodes.NetworkChirpStack, Link: r.link}, {Network: fieldnodes.NetworkTTS, Link: r.link}}})
	must(t, err)
	expires := now.Add(20 * time.Minute).UTC().Truncate(time.Microsecond)
	id := "2b7e1516-28ae-4d2a-a6d2-abf7158809cf"
	payload, err := valvecmd.EncodeCommand(valvecmd.Command{Action: "open", Ref: valvecmd.RefOf(id), Valve: 3, DurationS: 1200, ExpiresAt: expires})
	must(t, err)
	dl := fieldnodes.Downlink{CommandID: id, ControllerUID: "valves-east", DevEUI: "70b3d57ed0061c2d", FPort: 10, Payload: payload,
		ExpiresAt: expires, Network: fieldnodes.NetworkChirpStack, Route: map[string]string{"application_id": "17c82e96-be03-4f38-aef3-f83d48582d97"}}
	must(t, d.SendDownlink(ctx, dl))
	m := receive(t, got)
	var cs struct {
		ID        string `json:"id"`
		DevEUI    string `json:"devEui"`
		Confirmed bool   `json:"confirmed"`
		FPort     int    `json:"fPort"`
		Data      []byte `json:"data"`
		ExpiresAt time.Time
	}
	must(t, json.Unmarshal(m.Payload, &cs))
	if m.Topic != "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/70b3d57ed0061c2d/command/down" ||
		cs.ID != id || cs.DevEUI != dl.DevEUI || !cs.Confirmed || cs.FPort != 10 || string(cs.Data) != string(payload) ||
		!cs.ExpiresAt.Equal(expires) || !strings.Contains(string(m.Payload), `"expiresAt":"`) {
		t.Errorf("ChirpStack downlink %s %s", m.Topic, m.Payload)
	}
	c, err := valvecmd.DecodeCommand(cs.Data)
	if err != nil || c.Valve != 3 || c.DurationS != 1200 || c.Ref != valvecmd.RefOf(id) {
		t.Errorf("decoded %+v %v", c, err)
	}

	dl.Network, dl.Route = fieldnodes.NetworkTTS, map[string]string{"application_id": "aghali-fields", "tenant_id": "ttn", "device_id": "valves-east"}
	must(t, d.SendDownlink(ctx, dl))
	m = receive(t, got)
	var push struct {
		Downlinks []struct {
			FPort          int      `json:"f_port"`
			FRMPayload     []byte   `json:"frm_payload"`
			Confirmed      bool     `json:"confirmed"`
			Priority       string   `json:"priority"`
			CorrelationIDs []string `json:"correlation_ids"`
		} `json:"downlinks"`
	}
	must(t, json.Unmarshal(m.Payload, &push))
	if m.Topic != "v3/aghali-fields@ttn/devices/valves-east/down/push" || len(push.Downlinks) != 1 {
		t.Fatalf("TTS downlink %s %s", m.Topic, m.Payload)
	}
	if p := push.Downlinks[0]; p.FPort != 10 || string(p.FRMPayload) != string(payload) || !p.Confirmed || p.Priority != "HIGH" ||
		!slices.Equal(p.CorrelationIDs, []string{"aghali:command:" + id}) {
		t.Errorf("TTS downlink %s", m.Payload)
	}

	noRoute := dl
	noRoute.Network, noRoute.Route = "", nil
	if err := d.SendDownlink(ctx, noRoute); !errors.Is(err, fieldnodes.ErrNoRoute) {
		t.Errorf("without a route: %v", err)
	}
	late := dl
	late.ExpiresAt = now.Add(-time.Second)
	if err := d.SendDownlink(ctx, late); !errors.Is(err, fieldnodes.ErrCommandExpired) {
		t.Errorf("expired: %v", err)
	}
	badPort := dl
	badPort.FPort = 0
	var ve *fieldnodes.ValidationError
	if err := d.SendDownlink(ctx, badPort); !errors.As(err, &ve) || ve.Field != "fport" {
		t.Errorf("FPort 0: %v", err)
	}
	onlyCS, err := fieldnodes.NewDownlinks(fieldnodes.DownlinksConfig{Networks: []fieldnodes.DownlinkNetwork{{Network: fieldnodes.NetworkChirpStack, Link: r.link}}})
	must(t, err)
	if err := onlyCS.SendDownlink(ctx, dl); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("through TTS with only ChirpStack: %v", err)
	}
	select {
	case m := <-got:
		t.Errorf("published %s %s", m.Topic, m.Payload)
	case <-time.After(200 * time.Millisecond):
	}

	// A downlink template may only use what an uplink topic tells.
	if _, err := fieldnodes.NewDownlinks(fieldnodes.DownlinksConfig{Networks: []fieldnodes.DownlinkNetwork{
		{Network: fieldnodes.NetworkChirpStack, Link: r.link, Topic: "application/{application_id}/device/{device_id}/command/down"}}}); err == nil {
		t.Error("a downlink template with {device_id} under ChirpStack's uplink template was accepted")
	}
	if _, err := fieldnodes.NewDownlinks(fieldnodes.DownlinksConfig{Networks: []fieldnodes.DownlinkNetwork{
		{Network: fieldnodes.NetworkTTS, Link: r.link, Topic: "lora/{app}/{dev}/down", UplinkTopic: "lora/{app}/{dev}/{event}"}}}); err != nil {
		t.Errorf("custom templates: %v", err)
	}
}

func receive(t *testing.T, ch <-chan mqttlink.Message) mqttlink.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
		return mqttlink.Message{}
	}
}
