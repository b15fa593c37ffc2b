package irrigation_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/codec/valvecmd"
	"github.com/aghali/aghali/fieldnodes/lorawan"
	"github.com/aghali/aghali/irrigation"
)

// A LoRaWAN controller's events teach where its downlinks go (kept on the controller); the
// network server's acknowledgement of a command's downlink counts as the command's ack, the
// controller's own ack after it changes nothing, and its rejection after it still fails the run;
// a nack or failure is noted on the command, which is sent again until it expires, and the
// expiry says so.
func TestLoRaWANNetworkServerEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	eui := "70b3d57ed0061c2d"
	ctl, _, err := f.store.CreateController(f.ctx, irrigation.Controller{UID: "lora-ns", FarmID: f.farm, Transport: irrigation.TransportLoRaWAN, DevEUI: &eui})
	if err != nil {
		t.Fatal(err)
	}
	f.controller("mqtt-1")
	v, v2, v3 := f.valve(ctl, 3, f.zone().ID), f.valve(ctl, 4, f.zone().ID), f.valve(ctl, 5, f.zone().ID)
	h := irrigation.NewControllerHandler(f.store)
	if euis, err := h.ControllerDevEUIs(f.ctx); err != nil || !slices.Equal(euis, []string{eui}) {
		t.Fatalf("DevEUIs %v %v", euis, err)
	}
	dl := &downlinks{}
	d, err := irrigation.NewDispatcher(f.store, f.sender, irrigation.DispatcherConfig{Downlinks: dl})
	if err != nil {
		t.Fatal(err)
	}
	event := func(kind lorawan.Kind, mod func(*lorawan.Event)) error {
		e := lorawan.Event{Kind: kind, DevEUI: eui, Time: f.clock.Now()}
		if mod != nil {
			mod(&e)
		}
		return h.HandleLoRaWANEvent(f.ctx, fieldnodes.ControllerEvent{Network: fieldnodes.NetworkChirpStack,
			Route: map[string]string{"application_id": "app-1", "dev_eui": eui}, Event: e, Received: f.clock.Now()})
	}

	// Not heard yet: the downlink has no route.
	run := f.startRun(v.ID, 600)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(dl.sent) != 1 || dl.sent[0].Network != "" || dl.sent[0].Route != nil {
		t.Fatalf("downlinks %+v", dl.sent)
	}
	// An empty uplink (a heartbeat) teaches the route and asks nothing more.
	if err := event(lorawan.KindUp, func(e *lorawan.Event) { e.FPort = 10 }); !errors.Is(err, fieldnodes.ErrNothingForController) {
		t.Fatalf("empty uplink: %v", err)
	}
	c, err := f.store.Controller(f.ctx, ctl.ID)
	if err != nil || c.LoRaWANNetwork == nil || *c.LoRaWANNetwork != "chirpstack" || c.LoRaWANRoute["application_id"] != "app-1" {
		t.Fatalf("controller %+v %v", c, err)
	}
	f.clock.Advance(10 * time.Minute) // the LoRaWAN resend
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	cmd := f.commands(run.ID)[0]
	if len(dl.sent) != 2 || dl.sent[1].Network != "chirpstack" || dl.sent[1].Route["application_id"] != "app-1" || dl.sent[1].CommandID != cmd.ID {
		t.Fatalf("resent downlinks %+v", dl.sent)
	}

	// Words that are not about one of its commands, or ask nothing.
	for name, err := range map[string]error{
		"a downlink someone else queued": event(lorawan.KindAck, func(e *lorawan.Event) { e.Acknowledged = true }),
		"an unknown command":             event(lorawan.KindAck, func(e *lorawan.Event) { e.Acknowledged, e.DownlinkID = true, "2b7e1516-28ae-4d2a-a6d2-abf7158809cf" }),
		"another port":                   event(lorawan.KindUp, func(e *lorawan.Event) { e.FPort, e.Payload = 2, []byte{1} }),
		"a join":                         event(lorawan.KindJoin, nil),
	} {
		if !errors.Is(err, fieldnodes.ErrNothingForController) {
			t.Errorf("%s: %v", name, err)
		}
	}
	var ve *valvecmd.Error
	if err := event(lorawan.KindUp, func(e *lorawan.Event) { e.FPort, e.Payload = 10, []byte{0x1f} }); !errors.As(err, &ve) {
		t.Errorf("unreadable uplink: %v", err)
	}

	// A nack is noted; the command is still in flight. Then the network server's ack opens the run.
	if err := event(lorawan.KindAck, func(e *lorawan.Event) { e.DownlinkID = cmd.ID }); err != nil {
		t.Fatal(err)
	}
	if c := f.commands(run.ID)[0]; c.State != irrigation.CommandSent || c.DownlinkStatus == nil || *c.DownlinkStatus != irrigation.DownlinkNacked {
		t.Fatalf("after a nack: %+v", c)
	}
	if err := event(lorawan.KindAck, func(e *lorawan.Event) { e.DownlinkID, e.Acknowledged = cmd.ID, true }); err != nil {
		t.Fatal(err)
	}
	if r := f.run(run.ID); r.State != irrigation.RunOpen || r.EndsAt == nil || !r.EndsAt.Equal(f.clock.Now().Add(600*time.Second)) {
		t.Fatalf("after the network server's ack the run is %+v", r)
	}
	// The controller's own ack after it, and a late nack, change nothing.
	if err := event(lorawan.KindUp, func(e *lorawan.Event) {
		e.FPort, e.Payload = 10, valvecmd.EncodeAck(valvecmd.Ack{Ref: valvecmd.RefOf(cmd.ID), OK: true})
	}); err != nil {
		t.Fatal(err)
	}
	if err := event(lorawan.KindAck, func(e *lorawan.Event) { e.DownlinkID = cmd.ID }); err != nil {
		t.Fatal(err)
	}
	if c := f.commands(run.ID)[0]; c.State != irrigation.CommandAcked || *c.DownlinkStatus != irrigation.DownlinkAcked {
		t.Errorf("command %+v", c)
	}
	if r := f.run(run.ID); r.State != irrigation.RunOpen {
		t.Errorf("run %s", r.State)
	}

	// Received, then refused by the controller (it came too late for it): the run fails.
	f.clock.Advance(time.Minute)
	run2 := f.startRun(v2.ID, 300)
	open2 := f.commands(run2.ID)[0]
	if err := event(lorawan.KindAck, func(e *lorawan.Event) { e.DownlinkID, e.Acknowledged = open2.ID, true }); err != nil {
		t.Fatal(err)
	}
	if r := f.run(run2.ID); r.State != irrigation.RunOpen {
		t.Fatalf("run 2 %s", r.State)
	}
	if err := event(lorawan.KindUp, func(e *lorawan.Event) {
		e.FPort, e.Payload = 10, valvecmd.EncodeAck(valvecmd.Ack{Ref: valvecmd.RefOf(open2.ID), Code: 1})
	}); err != nil {
		t.Fatal(err)
	}
	if r := f.run(run2.ID); r.State != irrigation.RunFailed || !strings.Contains(r.EndReason, "rejected") {
		t.Errorf("run refused after receipt: %s %q", r.State, r.EndReason)
	}
	if c := f.commands(run2.ID)[0]; c.State != irrigation.CommandRejected {
		t.Errorf("open refused after receipt: %+v", c)
	}
	if _, ok := f.alert(irrigation.AlertCommandRejected, "valve:"+itoa(v2.ID)); !ok {
		t.Errorf("no command_rejected alert: %+v", f.openAlerts())
	}

	// A downlink that fails every time expires with the network server's last word.
	f.clock.Advance(time.Minute)
	run3 := f.startRun(v3.ID, 300)
	open3 := f.commands(run3.ID)[0]
	if err := event(lorawan.KindDownFailed, func(e *lorawan.Event) {
		e.DownlinkID, e.Detail = open3.ID, "pkg/networkserver: application downlink payload too long"
	}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(21 * time.Minute)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.commands(run3.ID)[0]; c.State != irrigation.CommandExpired || !strings.Contains(c.Reason, "failed: pkg/networkserver: application downlink payload too long") {
		t.Errorf("expired command %+v", c)
	}
	if r := f.run(run3.ID); r.State != irrigation.RunFailed {
		t.Errorf("run 3 %s", r.State)
	}

	// Another DevEUI is another device: the route is forgotten.
	other := "70b3d57ed0069999"
	c.DevEUI = &other
	if c, err = f.store.UpdateController(f.ctx, c); err != nil || c.LoRaWANNetwork != nil || c.LoRaWANRoute != nil {
		t.Errorf("after a new DevEUI: %+v %v", c, err)
	}
}
