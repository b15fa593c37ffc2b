package irrigation_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec/valvecmd"
	"github.com/aghali/aghali/irrigation"
)

// downlinks records what the dispatcher hands to the network server.
type downlinks struct {
	mu   sync.Mutex
	sent []irrigation.Downlink
}

func (d *downlinks) SendDownlink(_ context.Context, dl irrigation.Downlink) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sent = append(d.sent, dl)
	return nil
}

// A LoRaWAN controller's command goes down as the compact layout with its expiry, is not sent
// again for minutes, and its ack and state come back as uplinks.
func TestLoRaWANControllerRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.zone()
	eui := "70b3d57ed0001234"
	ctl, secret, err := f.store.CreateController(f.ctx, irrigation.Controller{UID: "lora-1", FarmID: f.farm, Transport: irrigation.TransportLoRaWAN, DevEUI: &eui})
	if err != nil || secret != "" || ctl.LoRaWANClass == nil || *ctl.LoRaWANClass != "A" {
		t.Fatalf("LoRaWAN controller: %+v %q %v", ctl, secret, err)
	}
	v := f.valve(ctl, 2, z.ID)
	dl := &downlinks{}
	d, err := irrigation.NewDispatcher(f.store, f.sender, irrigation.DispatcherConfig{Downlinks: dl, RetryBase: time.Second, RetryMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run := f.startRun(v.ID, 1200)
	cmd := f.commands(run.ID)[0]
	if want := f.clock.Now().Add(20 * time.Minute); !cmd.ExpiresAt.Equal(want) {
		t.Errorf("a LoRaWAN command expires at %s, want the LoRaWAN TTL (%s)", cmd.ExpiresAt, want)
	}
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(dl.sent) != 1 || len(f.sender.all()) != 0 {
		t.Fatalf("downlinks %+v, MQTT %+v", dl.sent, f.sender.all())
	}
	got := dl.sent[0]
	c, err := valvecmd.DecodeCommand(got.Payload)
	if err != nil || got.DevEUI != eui || got.FPort != irrigation.DefaultLoRaWANFPort || !got.ExpiresAt.Equal(cmd.ExpiresAt) ||
		c.Action != "open" || c.Valve != 2 || c.DurationS != 1200 || c.Ref != valvecmd.RefOf(cmd.ID) || c.ExpiresAt.After(cmd.ExpiresAt) {
		t.Fatalf("downlink %+v decoded %+v %v", got, c, err)
	}
	f.clock.Advance(5 * time.Minute) // past the MQTT retry, not the LoRaWAN one
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(dl.sent) != 1 {
		t.Errorf("resent after 5 min: %d downlinks", len(dl.sent))
	}

	h := irrigation.NewControllerHandler(f.store)
	now := f.clock.Now()
	if err := h.HandleLoRaWANUplink(f.ctx, eui, 11, valvecmd.EncodeAck(valvecmd.Ack{Ref: c.Ref, OK: true}), now); !errors.Is(err, irrigation.ErrNotControllerUplink) {
		t.Errorf("an uplink on another port: %v", err)
	}
	if err := h.HandleLoRaWANUplink(f.ctx, "0000000000000001", 10, nil, now); !errors.Is(err, irrigation.ErrNotControllerUplink) {
		t.Errorf("an unknown DevEUI: %v", err)
	}
	if err := h.HandleLoRaWANUplink(f.ctx, eui, 10, []byte{0x1f}, now); err == nil {
		t.Error("a malformed uplink was accepted")
	}
	if err := h.HandleLoRaWANUplink(f.ctx, eui, 10, valvecmd.EncodeAck(valvecmd.Ack{Ref: c.Ref, OK: true}), now); err != nil {
		t.Fatal(err)
	}
	if r := f.run(run.ID); r.State != irrigation.RunOpen {
		t.Fatalf("after the ack uplink the run is %s", r.State)
	}
	flow, vol := 19.5, 100.0
	state, err := valvecmd.EncodeState(valvecmd.State{Channels: 2, Open: map[int]bool{2: true}, FlowLPM: &flow, VolumeL: &vol})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.HandleLoRaWANUplink(f.ctx, eui, 10, state, now); err != nil {
		t.Fatal(err)
	}
	vv, err := f.store.Valve(f.ctx, v.ID)
	if err != nil || vv.State != irrigation.ValveOpen {
		t.Fatalf("valve after the state uplink: %+v %v", vv, err)
	}
	c2, _ := f.store.Controller(f.ctx, ctl.ID)
	if c2.FlowLPM == nil || *c2.FlowLPM != 19.5 {
		t.Errorf("controller flow %v", c2.FlowLPM)
	}
}

// Without a network server for downlinks, a LoRaWAN command is retried until it expires and
// its run fails with an alert, as with an unreachable broker.
func TestLoRaWANWithoutNetworkServer(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	eui := "70b3d57ed0005678"
	ctl, _, err := f.store.CreateController(f.ctx, irrigation.Controller{UID: "lora-2", FarmID: f.farm, Transport: irrigation.TransportLoRaWAN, DevEUI: &eui})
	if err != nil {
		t.Fatal(err)
	}
	v := f.valve(ctl, 1, f.zone().ID)
	d := f.dispatcher(irrigation.DispatcherConfig{})
	run := f.startRun(v.ID, 600)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if cmd := f.commands(run.ID)[0]; cmd.State != irrigation.CommandPending || !strings.Contains(cmd.Reason, "no LoRaWAN network server") {
		t.Fatalf("command %+v", cmd)
	}
	f.clock.Advance(21 * time.Minute)
	if _, err := d.DispatchDue(f.ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.run(run.ID); r.State != irrigation.RunFailed {
		t.Fatalf("run %s", r.State)
	}
}

// A node registered as a zone's flow meter is judged by the run monitor; a run that waited
// longer than MaxWait is aborted with an alert.
func TestNodeFlowMeterAndMaxWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, v := f.zoneWithValve()
	var node int64
	if err := f.db.QueryRow(f.ctx, `INSERT INTO nodes (uid, farm_id, zone_id) VALUES ('meter-1', $1, $2) RETURNING id`, f.farm, z.ID).Scan(&node); err != nil {
		t.Fatal(err)
	}
	m, err := f.store.CreateFlowMeter(f.ctx, irrigation.FlowMeter{FarmID: f.farm, NodeID: node, ZoneID: &z.ID, Name: "zone meter"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateFlowMeter(f.ctx, irrigation.FlowMeter{FarmID: f.farm, NodeID: node}); !isValidation(err, "zone_id") {
		t.Errorf("a meter of nothing: %v", err)
	}
	if _, err := f.db.Exec(f.ctx, `INSERT INTO node_latest (node_id, metric_id, ts, value)
		VALUES ($1, (SELECT id FROM metrics WHERE name = 'flow_lpm'), $2, 7.5)`, node, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	mon, err := irrigation.NewRunMonitor(f.store, irrigation.RunMonitorConfig{MaxWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mon.Sweep(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.alert(irrigation.AlertLeak, "meter:"+strconv.FormatInt(m.ID, 10)); !ok {
		t.Fatalf("no leak alert from the node meter: %+v", f.openAlerts())
	}

	// A run waiting for an energy window that never comes in time is given up after MaxWait.
	src, err := f.store.CreateWaterSource(f.ctx, irrigation.WaterSource{FarmID: f.farm, Name: "Night canal", Kind: irrigation.SourceCanal,
		EnergyWindows: []irrigation.EnergyWindow{{From: "22:00", To: "23:00"}}})
	if err != nil {
		t.Fatal(err)
	}
	z2 := f.zone(func(z *irrigation.Zone) { z.WaterSourceID = &src.ID })
	ctl2 := f.controller("ctl-night")
	v2 := f.valve(ctl2, 1, z2.ID)
	r := f.startRun(v2.ID, 600)
	if r.State != irrigation.RunPlanned {
		t.Fatalf("run %s", r.State)
	}
	f.clock.Advance(61 * time.Minute)
	if _, err := mon.Sweep(f.ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.run(r.ID); got.State != irrigation.RunAborted || !strings.Contains(got.EndReason, "gave up") {
		t.Errorf("run after MaxWait: %s %q", got.State, got.EndReason)
	}
	if _, ok := f.alert(irrigation.AlertRunNotAdmitted, "zone:"+strconv.FormatInt(z2.ID, 10)); !ok {
		t.Error("no alert for the run that gave up")
	}
	_ = v
}
