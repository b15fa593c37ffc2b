package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec/valvecmd"
	"github.com/aghali/aghali/fieldnodes/mqttlink"
)

// End-to-end tests of LoRaWAN controllers: `aghali serve` with its embedded broker, and a
// simulated network server (a plain MQTT client with a gateway login) publishing the controller's
// uplinks and the network server's events, and reading the downlinks Aghali queues.

// loraCtl registers a LoRaWAN controller (fport 0: the default) with one valve on a new zone.
func (s *irrSite) loraCtl(uid, eui string, fport, channel int) (ctl, valve int64) {
	s.t.Helper()
	body := map[string]any{"uid": uid, "name": uid, "transport": "lorawan", "dev_eui": eui, "lorawan_class": "C"}
	if fport != 0 {
		body["lorawan_fport"] = fport
	}
	var o irrObj
	s.c.do("POST", fmt.Sprintf("/api/v1/farms/%d/controllers", s.farm), body, &o, http.StatusCreated)
	if o.Secret != "" {
		s.t.Fatal("a LoRaWAN controller was given an MQTT secret")
	}
	return o.ID, s.valve(&irrCtl{id: o.ID, valves: map[int]int64{}}, channel, map[string]any{"zone_id": s.zone(channel, 3600, 0)})
}

type loraCtlView struct {
	LoRaWANNetwork *string           `json:"lorawan_network"`
	LoRaWANRoute   map[string]string `json:"lorawan_route"`
}

func (s *irrSite) loraRoute(ctl int64) loraCtlView {
	s.t.Helper()
	var v loraCtlView
	s.c.do("GET", fmt.Sprintf("/api/v1/controllers/%d", ctl), nil, &v, http.StatusOK)
	return v
}

type loraCommand struct {
	ID             string    `json:"id"`
	Action         string    `json:"action"`
	State          string    `json:"state"`
	ExpiresAt      time.Time `json:"expires_at"`
	DownlinkStatus *string   `json:"downlink_status"`
}

func (s *irrSite) runCommands(run int64) []loraCommand {
	s.t.Helper()
	var r struct {
		Commands []loraCommand `json:"commands"`
	}
	s.c.do("GET", fmt.Sprintf("/api/v1/runs/%d", run), nil, &r, http.StatusOK)
	return r.Commands
}

// networkServer connects a simulated network server to srv's broker and collects what is
// published on downlinks.
func networkServer(t *testing.T, srv *server, user, pass, downlinks string) (*mqttlink.Link, <-chan mqttlink.Message) {
	t.Helper()
	l, err := mqttlink.New(mqttlink.Config{URL: fmt.Sprintf("tcp://127.0.0.1:%d", srv.mqtt), ClientID: user + "-" + t.Name(),
		Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan mqttlink.Message, 16)
	if err := l.Subscribe(downlinks, func(m mqttlink.Message) { m.Ack(); got <- m }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	if err := l.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return l, got
}

func nsPublish(t *testing.T, l *mqttlink.Link, topic, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Publish(ctx, topic, 1, false, []byte(payload)); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

func nextDownlink(t *testing.T, got <-chan mqttlink.Message, within time.Duration) mqttlink.Message {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(within):
		t.Fatalf("no downlink within %s", within)
		return mqttlink.Message{}
	}
}

// checkCommandBytes decodes a downlink's payload and checks it is cmd's, in the compact layout.
func checkCommandBytes(t *testing.T, data []byte, cmd loraCommand, valve, durationS int) {
	t.Helper()
	c, err := valvecmd.DecodeCommand(data)
	if err != nil {
		t.Fatalf("downlink payload %x: %v", data, err)
	}
	if c.Action != cmd.Action || c.Valve != valve || c.DurationS != durationS || c.Ref != valvecmd.RefOf(cmd.ID) ||
		!c.ExpiresAt.Equal(cmd.ExpiresAt.Truncate(time.Second)) {
		t.Errorf("downlink %s; want %s of valve %d for %d s, ref of %s, expiring %s", c, cmd.Action, valve, durationS, cmd.ID, cmd.ExpiresAt)
	}
}

// ChirpStack: the controller's first uplink teaches its route, kept across a restart; a manual
// open goes down as command/down (the command's id as the queue item's, confirmed, its expiry);
// ChirpStack's ack event with that queue item id opens the run; the stop's close is acknowledged
// by the controller's own ack uplink and its state report says the valve closed.
func TestLoRaWANControllerThroughChirpStack(t *testing.T) {
	t.Parallel()
	db, email, pw := newDatabase(t)
	env := map[string]string{"AGHALI_DATABASE_URL": db, "AGHALI_MQTT_GATEWAYS": "chirpstack:cs-pw"}
	srv := startServer(t, "serve", env)
	s := newIrrSite(t, login(t, srv.http, email, pw), "lora-cs")
	const eui, app = "70b3d57ed0061c2d", "17c82e96-be03-4f38-aef3-f83d48582d97"
	ctl, valve := s.loraCtl("valves-east", eui, 0, 3)
	ns, _ := networkServer(t, srv, "chirpstack", "cs-pw", "application/+/device/+/command/#")
	upTopic := "application/" + app + "/device/" + eui + "/event/"
	fcnt := 0
	uplink := func(l *mqttlink.Link, payload []byte) {
		fcnt++
		nsPublish(t, l, upTopic+"up", fmt.Sprintf(`{"time":%q,"deviceInfo":{"applicationId":%q,"devEui":%q,"deviceName":"valves-east"},
			"fCnt":%d,"fPort":10,"data":%q}`, time.Now().UTC().Format(time.RFC3339Nano), app, eui, fcnt, base64.StdEncoding.EncodeToString(payload)))
	}
	closed, err := valvecmd.EncodeState(valvecmd.State{Channels: 3, Open: map[int]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	// The DevEUIs of controllers are read every few seconds: until then its uplinks are a stray
	// device's, so it says something every 300 ms.
	var last time.Time
	eventually(t, 20*time.Second, "the controller's route learned from its uplink", func() bool {
		if time.Since(last) > 300*time.Millisecond {
			uplink(ns, closed)
			last = time.Now()
		}
		return s.loraRoute(ctl).LoRaWANNetwork != nil
	})
	if r := s.loraRoute(ctl); *r.LoRaWANNetwork != "chirpstack" || r.LoRaWANRoute["application_id"] != app || r.LoRaWANRoute["dev_eui"] != eui {
		t.Fatalf("route %+v", r)
	}
	// What it sent before it was recognised as a controller leaves no pending device.
	eventually(t, 15*time.Second, "no pending device for the controller", func() bool {
		var pending []struct {
			UID string `json:"uid"`
		}
		s.c.do("GET", "/api/v1/pending-devices", nil, &pending, http.StatusOK)
		return len(pending) == 0
	})

	// Restarted, the server still knows where the controller's downlinks go.
	srv.stop()
	srv = startServer(t, "serve", env)
	s.c = login(t, srv.http, email, pw)
	ns, down := networkServer(t, srv, "chirpstack", "cs-pw", "application/+/device/+/command/#")

	run := s.open(valve, 10)
	m := nextDownlink(t, down, 15*time.Second)
	var cmdDown struct {
		ID        string    `json:"id"`
		DevEUI    string    `json:"devEui"`
		Confirmed bool      `json:"confirmed"`
		FPort     int       `json:"fPort"`
		Data      []byte    `json:"data"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	if err := json.Unmarshal(m.Payload, &cmdDown); err != nil {
		t.Fatalf("%s: %v", m.Payload, err)
	}
	open := s.runCommands(run.ID)[0]
	if m.Topic != "application/"+app+"/device/"+eui+"/command/down" || cmdDown.ID != open.ID || cmdDown.DevEUI != eui ||
		!cmdDown.Confirmed || cmdDown.FPort != 10 || !cmdDown.ExpiresAt.Equal(open.ExpiresAt) {
		t.Fatalf("downlink %s %s; open command %+v", m.Topic, m.Payload, open)
	}
	if until := time.Until(open.ExpiresAt); until < 19*time.Minute || until > 21*time.Minute {
		t.Errorf("a LoRaWAN open expires in %s, want the LoRaWAN command TTL (20 min)", until)
	}
	checkCommandBytes(t, cmdDown.Data, open, 3, 600)

	// ChirpStack: the confirmed downlink was acknowledged.
	nsPublish(t, ns, upTopic+"ack", fmt.Sprintf(`{"deduplicationId":"3c1d5e7f-2a4b-4c6d-8e0f-1a2b3c4d5e6f","time":%q,
		"deviceInfo":{"applicationId":%q,"devEui":%q,"deviceName":"valves-east"},"queueItemId":%q,"acknowledged":true,"fCntDown":1}`,
		time.Now().UTC().Format(time.RFC3339Nano), app, eui, open.ID))
	eventually(t, 10*time.Second, "the run open on the network server's ack", func() bool { return s.run(run.ID).State == "open" })
	if c := s.runCommands(run.ID)[0]; c.State != "acked" || c.DownlinkStatus == nil || *c.DownlinkStatus != "acked" {
		t.Errorf("open command after the ack event: %+v", c)
	}
	// The controller's own ack of the open, after the network server's, changes nothing.
	uplink(ns, valvecmd.EncodeAck(valvecmd.Ack{Ref: valvecmd.RefOf(open.ID), OK: true}))

	// Stop: the close goes down; the controller acks it on its port and reports the valve closed.
	s.c.do("POST", fmt.Sprintf("/api/v1/valves/%d/stop", valve), nil, nil, http.StatusAccepted)
	m = nextDownlink(t, down, 15*time.Second)
	if err := json.Unmarshal(m.Payload, &cmdDown); err != nil {
		t.Fatal(err)
	}
	cmds := s.runCommands(run.ID)
	if len(cmds) != 2 || cmds[1].Action != "close" || cmdDown.ID != cmds[1].ID {
		t.Fatalf("commands %+v, downlink %s", cmds, m.Payload)
	}
	checkCommandBytes(t, cmdDown.Data, cmds[1], 3, 0)
	uplink(ns, valvecmd.EncodeAck(valvecmd.Ack{Ref: valvecmd.RefOf(cmds[1].ID), OK: true}))
	eventually(t, 10*time.Second, "the run done on the controller's ack uplink", func() bool { return s.run(run.ID).State == "done" })
	if c := s.runCommands(run.ID)[1]; c.State != "acked" || c.DownlinkStatus != nil {
		t.Errorf("close command %+v", c)
	}
	uplink(ns, closed)
	eventually(t, 10*time.Second, "the valve reported closed", func() bool {
		var v struct{ State string }
		s.c.do("GET", fmt.Sprintf("/api/v1/valves/%d", valve), nil, &v, http.StatusOK)
		return v.State == "closed"
	})
	if open := s.runCommands(run.ID)[0]; open.State != "acked" {
		t.Errorf("the open after the controller's repeated ack: %+v", open)
	}
}

// The Things Stack: the route comes from the uplink topic (application, tenant, device id); the
// open goes down as down/push with Aghali's correlation id on the controller's own port; TTS's
// down/ack naming it opens the run, and the controller's state uplink shows the valve open.
func TestLoRaWANControllerThroughTTS(t *testing.T) {
	t.Parallel()
	db, email, pw := newDatabase(t)
	srv := startServer(t, "serve", map[string]string{"AGHALI_DATABASE_URL": db, "AGHALI_MQTT_GATEWAYS": "tts:tts-pw"})
	s := newIrrSite(t, login(t, srv.http, email, pw), "lora-tts")
	const eui = "70b3d57ed0062e3f"
	ctl, valve := s.loraCtl("valves-west", eui, 12, 1)
	ns, down := networkServer(t, srv, "tts", "tts-pw", "v3/+/devices/+/down/#")
	base := "v3/aghali-fields@ttn/devices/valves-west/"
	ids := `"end_device_ids":{"device_id":"valves-west","application_ids":{"application_id":"aghali-fields"},"dev_eui":"70B3D57ED0062E3F","dev_addr":"260B5A7F"}`
	fcnt := 0
	uplink := func(payload []byte) {
		fcnt++
		nsPublish(t, ns, base+"up", fmt.Sprintf(`{%s,"correlation_ids":["as:up:01J2Z6Q4R8M3XG0W5T1YB7KC9D"],"received_at":%q,
			"uplink_message":{"f_port":12,"f_cnt":%d,"frm_payload":%q,"rx_metadata":[{"gateway_ids":{"gateway_id":"aghali-gw-1"},"rssi":-97,"snr":6.5}],
			"settings":{"data_rate":{"lora":{"bandwidth":125000,"spreading_factor":9}},"frequency":"868300000"}}}`,
			ids, time.Now().UTC().Format(time.RFC3339Nano), fcnt, base64.StdEncoding.EncodeToString(payload)))
	}
	closed, err := valvecmd.EncodeState(valvecmd.State{Channels: 1, Open: map[int]bool{}})
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	eventually(t, 20*time.Second, "the controller's route learned from its uplink", func() bool {
		if time.Since(last) > 300*time.Millisecond {
			uplink(closed)
			last = time.Now()
		}
		return s.loraRoute(ctl).LoRaWANNetwork != nil
	})
	if r := s.loraRoute(ctl); *r.LoRaWANNetwork != "tts" || r.LoRaWANRoute["application_id"] != "aghali-fields" ||
		r.LoRaWANRoute["tenant_id"] != "ttn" || r.LoRaWANRoute["device_id"] != "valves-west" {
		t.Fatalf("route %+v", r)
	}

	run := s.open(valve, 5)
	m := nextDownlink(t, down, 15*time.Second)
	var push struct {
		Downlinks []struct {
			FPort          int      `json:"f_port"`
			FRMPayload     []byte   `json:"frm_payload"`
			Confirmed      bool     `json:"confirmed"`
			Priority       string   `json:"priority"`
			CorrelationIDs []string `json:"correlation_ids"`
		} `json:"downlinks"`
	}
	if err := json.Unmarshal(m.Payload, &push); err != nil || len(push.Downlinks) != 1 {
		t.Fatalf("%s %s: %v", m.Topic, m.Payload, err)
	}
	open := s.runCommands(run.ID)[0]
	p := push.Downlinks[0]
	if m.Topic != base+"down/push" || p.FPort != 12 || !p.Confirmed || p.Priority != "HIGH" ||
		!slices.Equal(p.CorrelationIDs, []string{"aghali:command:" + open.ID}) {
		t.Fatalf("downlink %s %s; open %+v", m.Topic, m.Payload, open)
	}
	checkCommandBytes(t, p.FRMPayload, open, 1, 300)

	// TTS acknowledges the confirmed downlink, naming it by Aghali's correlation id.
	nsPublish(t, ns, base+"down/ack", fmt.Sprintf(`{%s,"correlation_ids":["as:downlink:01J2Z5XK1C7V0B3N6M9Q2W5E8R","aghali:command:%s"],
		"received_at":%q,"downlink_ack":{"session_key_id":"AZBz7d5C0w0YtPq3m1g2Rw==","f_port":12,"f_cnt":1,"frm_payload":%q,
		"confirmed":true,"priority":"HIGH","correlation_ids":["as:downlink:01J2Z5XK1C7V0B3N6M9Q2W5E8R","aghali:command:%s"]}}`,
		ids, open.ID, time.Now().UTC().Format(time.RFC3339Nano), base64.StdEncoding.EncodeToString(p.FRMPayload), open.ID))
	eventually(t, 10*time.Second, "the run open on TTS's down/ack", func() bool { return s.run(run.ID).State == "open" })
	if c := s.runCommands(run.ID)[0]; c.State != "acked" || c.DownlinkStatus == nil || *c.DownlinkStatus != "acked" {
		t.Errorf("open command after down/ack: %+v", c)
	}
	flow := 18.5
	state, err := valvecmd.EncodeState(valvecmd.State{Channels: 1, Open: map[int]bool{1: true}, FlowLPM: &flow})
	if err != nil {
		t.Fatal(err)
	}
	uplink(state)
	eventually(t, 10*time.Second, "the valve reported open", func() bool {
		var v struct{ State string }
		s.c.do("GET", fmt.Sprintf("/api/v1/valves/%d", valve), nil, &v, http.StatusOK)
		return v.State == "open"
	})
	var c struct {
		FlowLPM *float64 `json:"flow_lpm"`
	}
	s.c.do("GET", fmt.Sprintf("/api/v1/controllers/%d", ctl), nil, &c, http.StatusOK)
	if c.FlowLPM == nil || *c.FlowLPM != 18.5 {
		t.Errorf("controller flow %v", c.FlowLPM)
	}
	if strings.Contains(srv.logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", srv.logs.String())
	}
}
