package irrigation_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

func TestZoneWithSelfIntersectingPolygonIsRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	bowTie, err := geo.ParsePolygon(json.RawMessage(`{"type":"Polygon","coordinates":[[[46.63,39.09],[46.64,39.10],[46.64,39.09],[46.63,39.10],[46.63,39.09]]]}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.store.CreateZone(f.ctx, irrigation.Zone{FarmID: f.farm, Name: "Bow tie", Geom: bowTie})
	var ve *irrigation.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *ValidationError", err)
	}
	if ve.Field != "geometry" || !strings.Contains(ve.Problem, "Self-intersection") {
		t.Fatalf("ValidationError = %+v, want geometry: ... Self-intersection", ve)
	}
	if n := f.count(`SELECT count(*) FROM zones`); n != 0 {
		t.Fatalf("%d zones stored", n)
	}
}

func TestZoneCRUD(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	ctx := f.ctx
	ws, err := f.store.CreateWaterSource(ctx, irrigation.WaterSource{FarmID: f.farm, Name: "Hakari pump", Kind: irrigation.SourcePump,
		CapacityM3H: ptr(12.0), Energy: irrigation.EnergySolar, EnergyWindows: []irrigation.EnergyWindow{{From: "08:00", To: "17:00"}}})
	if err != nil {
		t.Fatal(err)
	}
	z := f.zone(func(z *irrigation.Zone) {
		z.WaterSourceID = &ws.ID
		z.Method = ""
		z.MaxRuntimeS = 0
		z.Efficiency = ptr(0.9)
	})
	if z.Method != irrigation.MethodDrip || z.MaxRuntimeS != irrigation.DefaultMaxRuntimeS {
		t.Errorf("defaults: method %q, max runtime %d", z.Method, z.MaxRuntimeS)
	}
	if z.WaterSourceID == nil || *z.WaterSourceID != ws.ID || z.Efficiency == nil || *z.Efficiency != 0.9 {
		t.Errorf("zone = %+v", z)
	}
	z.Name = "North drip"
	z.MaxRuntimeS = 1800
	z2, err := f.store.UpdateZone(ctx, z)
	if err != nil {
		t.Fatal(err)
	}
	if z2.Name != "North drip" || z2.MaxRuntimeS != 1800 {
		t.Errorf("updated zone = %+v", z2)
	}
	zones, err := f.store.Zones(ctx, f.farm)
	if err != nil || len(zones) != 1 || zones[0].ID != z.ID {
		t.Fatalf("Zones = %v, %v", zones, err)
	}
	bad := []struct {
		field string
		mod   func(*irrigation.Zone)
	}{
		{"name", func(z *irrigation.Zone) { z.Name = " " }},
		{"method", func(z *irrigation.Zone) { z.Method = "flood" }},
		{"efficiency", func(z *irrigation.Zone) { z.Efficiency = ptr(1.5) }},
		{"root_depth_m", func(z *irrigation.Zone) { z.RootDepthM = ptr(-1.0) }},
		{"max_runtime_s", func(z *irrigation.Zone) { z.MaxRuntimeS = -5 }},
		{"geometry", func(z *irrigation.Zone) { z.Geom = nil }},
		{"water_source_id", func(z *irrigation.Zone) { z.WaterSourceID = ptr(int64(999999)) }},
	}
	for _, b := range bad {
		zz := irrigation.Zone{FarmID: f.farm, Name: "x", Geom: square(t, 9)}
		b.mod(&zz)
		if _, err := f.store.CreateZone(ctx, zz); !isValidation(err, b.field) {
			t.Errorf("%s: err = %v, want a ValidationError on it", b.field, err)
		}
	}
	// A water source of another farm is refused.
	other, err := geo.NewStore(f.db).CreateFarm(ctx, geo.Farm{OrgID: f.org, Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateZone(ctx, irrigation.Zone{FarmID: other.ID, Name: "x", Geom: square(t, 3), WaterSourceID: &ws.ID}); !isValidation(err, "water_source_id") {
		t.Errorf("water source of another farm: err = %v", err)
	}
	if err := f.store.DeleteZone(ctx, z.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Zone(ctx, z.ID); !errors.Is(err, irrigation.ErrNotFound) {
		t.Errorf("deleted zone: err = %v", err)
	}
	if err := f.store.DeleteZone(ctx, z.ID); !errors.Is(err, irrigation.ErrNotFound) {
		t.Errorf("deleting twice: err = %v", err)
	}
}

func TestWaterSources(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	ctx := f.ctx
	if _, err := f.store.CreateWaterSource(ctx, irrigation.WaterSource{FarmID: f.farm, Name: "W", Kind: "lake"}); !isValidation(err, "kind") {
		t.Errorf("bad kind: %v", err)
	}
	if _, err := f.store.CreateWaterSource(ctx, irrigation.WaterSource{FarmID: f.farm, Name: "W", Kind: irrigation.SourceWell,
		EnergyWindows: []irrigation.EnergyWindow{{From: "8am", To: "17:00"}}}); !isValidation(err, "energy_windows") {
		t.Errorf("bad window: %v", err)
	}
	w, err := f.store.CreateWaterSource(ctx, irrigation.WaterSource{FarmID: f.farm, Name: "Canal", Kind: irrigation.SourceCanal, Location: geo.NewPoint(46.63, 39.09)})
	if err != nil {
		t.Fatal(err)
	}
	if w.Energy != irrigation.EnergyGrid || w.EnergyWindows == nil || len(w.EnergyWindows) != 0 || w.Location == nil {
		t.Errorf("water source = %+v", w)
	}
	w.EnergyWindows = []irrigation.EnergyWindow{{From: "20:00", To: "06:00"}}
	w, err = f.store.UpdateWaterSource(ctx, w)
	if err != nil || len(w.EnergyWindows) != 1 || w.EnergyWindows[0].From != "20:00" {
		t.Fatalf("update: %+v, %v", w, err)
	}
	list, err := f.store.WaterSources(ctx, f.farm)
	if err != nil || len(list) != 1 {
		t.Fatalf("WaterSources = %v, %v", list, err)
	}
	if err := f.store.DeleteWaterSource(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.WaterSource(ctx, w.ID); !errors.Is(err, irrigation.ErrNotFound) {
		t.Errorf("deleted: %v", err)
	}
}

func TestControllersIssueSecretsOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	ctx := f.ctx
	c, secret, err := f.store.CreateController(ctx, irrigation.Controller{UID: "ctl-north", FarmID: f.farm, Name: "North"})
	if err != nil {
		t.Fatal(err)
	}
	if secret == "" || c.Transport != irrigation.TransportMQTT {
		t.Fatalf("controller %+v, secret %q", c, secret)
	}
	if n := f.count(`SELECT count(*) FROM device_secrets WHERE uid = 'ctl-north' AND kind = 'controller'`); n != 1 {
		t.Fatalf("%d device secrets", n)
	}
	if _, _, err := f.store.CreateController(ctx, irrigation.Controller{UID: "ctl-north", FarmID: f.farm}); !errors.Is(err, irrigation.ErrConflict) {
		t.Errorf("duplicate uid: err = %v, want ErrConflict", err)
	}
	if _, _, err := f.store.CreateController(ctx, irrigation.Controller{UID: "bad uid!", FarmID: f.farm}); !isValidation(err, "uid") {
		t.Errorf("bad uid: %v", err)
	}
	// A LoRaWAN controller needs a DevEUI and gets no MQTT secret.
	if _, _, err := f.store.CreateController(ctx, irrigation.Controller{UID: "lora-1", FarmID: f.farm, Transport: irrigation.TransportLoRaWAN}); !isValidation(err, "dev_eui") {
		t.Errorf("LoRaWAN without DevEUI: %v", err)
	}
	lc, ls, err := f.store.CreateController(ctx, irrigation.Controller{UID: "lora-1", FarmID: f.farm, Transport: irrigation.TransportLoRaWAN, DevEUI: ptr("70:B3:D5:7E:D0:05:A1:B2")})
	if err != nil || ls != "" || lc.DevEUI == nil || *lc.DevEUI != "70b3d57ed005a1b2" {
		t.Fatalf("LoRaWAN controller %+v, secret %q, err %v", lc, ls, err)
	}
	if _, err := f.store.RotateControllerSecret(ctx, lc.ID); !isValidation(err, "transport") {
		t.Errorf("rotating a LoRaWAN controller's secret: %v", err)
	}
	s2, err := f.store.RotateControllerSecret(ctx, c.ID)
	if err != nil || s2 == "" || s2 == secret {
		t.Errorf("rotated secret %q, %v", s2, err)
	}
	// When no secret can be issued, no controller is left behind.
	failing := &dbSecrets{db: f.db, fail: errors.New("broker store down")}
	s, err := irrigation.NewStore(f.db, failing, irrigation.Config{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateController(ctx, irrigation.Controller{UID: "ctl-orphan", FarmID: f.farm}); err == nil {
		t.Fatal("created a controller without a secret")
	}
	if n := f.count(`SELECT count(*) FROM controllers WHERE uid = 'ctl-orphan'`); n != 0 {
		t.Errorf("orphan controller left behind")
	}
	got, err := f.store.ControllerByUID(ctx, "ctl-north")
	if err != nil || got.ID != c.ID {
		t.Fatalf("ControllerByUID = %+v, %v", got, err)
	}
	got.Name = "North gate"
	got.UID = "renamed" // identity: ignored
	got, err = f.store.UpdateController(ctx, got)
	if err != nil || got.Name != "North gate" || got.UID != "ctl-north" {
		t.Fatalf("UpdateController = %+v, %v", got, err)
	}
	list, err := f.store.Controllers(ctx, f.farm)
	if err != nil || len(list) != 2 {
		t.Fatalf("Controllers = %v, %v", list, err)
	}
}

func TestValves(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	ctx := f.ctx
	z := f.zone()
	c := f.controller("ctl-1")
	v := f.valve(c, 3, z.ID)
	if v.State != irrigation.ValveUnknown || v.FarmID != f.farm || v.Run != nil {
		t.Errorf("new valve = %+v", v)
	}
	if _, err := f.store.CreateValve(ctx, irrigation.Valve{ControllerID: c.ID, Channel: 3}); !errors.Is(err, irrigation.ErrConflict) {
		t.Errorf("same channel twice: %v, want ErrConflict", err)
	}
	if _, err := f.store.CreateValve(ctx, irrigation.Valve{ControllerID: c.ID, Channel: 256}); !isValidation(err, "channel") {
		t.Errorf("channel 256: %v", err)
	}
	if _, err := f.store.CreateValve(ctx, irrigation.Valve{ControllerID: 424242, Channel: 1}); !isValidation(err, "controller_id") {
		t.Errorf("unknown controller: %v", err)
	}
	other, err := geo.NewStore(f.db).CreateFarm(ctx, geo.Farm{OrgID: f.org, Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	oz, err := f.store.CreateZone(ctx, irrigation.Zone{FarmID: other.ID, Name: "Elsewhere", Geom: square(t, 5)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.CreateValve(ctx, irrigation.Valve{ControllerID: c.ID, Channel: 4, ZoneID: &oz.ID}); !isValidation(err, "zone_id") {
		t.Errorf("zone of another farm: %v", err)
	}

	run := f.startRun(v.ID, 600)
	valves, err := f.store.Valves(ctx, f.farm)
	if err != nil || len(valves) != 1 {
		t.Fatalf("Valves = %v, %v", valves, err)
	}
	if valves[0].Run == nil || valves[0].Run.ID != run.ID {
		t.Fatalf("valve's live run = %+v, want run %d", valves[0].Run, run.ID)
	}
	if err := f.store.DeleteValve(ctx, v.ID); !errors.Is(err, irrigation.ErrBusy) {
		t.Errorf("deleting a valve being watered: %v, want ErrBusy", err)
	}
	if err := f.store.DeleteZone(ctx, z.ID); !errors.Is(err, irrigation.ErrBusy) {
		t.Errorf("deleting a zone being watered: %v, want ErrBusy", err)
	}
	if err := f.store.DeleteController(ctx, c.ID); !errors.Is(err, irrigation.ErrBusy) {
		t.Errorf("deleting a controller being watered: %v, want ErrBusy", err)
	}
	moved := valves[0]
	moved.Channel = 7
	if _, err := f.store.UpdateValve(ctx, moved); !errors.Is(err, irrigation.ErrBusy) {
		t.Errorf("moving a valve being watered: %v, want ErrBusy", err)
	}
	renamed := valves[0]
	renamed.Name = "Drip line A"
	if got, err := f.store.UpdateValve(ctx, renamed); err != nil || got.Name != "Drip line A" || got.Run == nil {
		t.Errorf("renaming a valve being watered: %+v, %v", got, err)
	}
	if _, err := f.store.StopRun(ctx, run.ID, nil, "test"); err != nil {
		t.Fatal(err)
	}
	byCtl, err := f.store.ControllerValves(ctx, c.ID)
	if err != nil || len(byCtl) != 1 || byCtl[0].Run != nil {
		t.Fatalf("ControllerValves after stop = %+v, %v", byCtl, err)
	}
	if err := f.store.DeleteController(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Valve(ctx, v.ID); !errors.Is(err, irrigation.ErrNotFound) {
		t.Errorf("valve of a deleted controller: %v", err)
	}
}

func TestAlertsAreIdempotentWhileOpen(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	ctx := f.ctx
	var user int64
	if err := f.db.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ('farmer@aghali.az', 'x') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	a1, err := f.store.RaiseAlert(ctx, irrigation.Alert{FarmID: f.farm, Kind: "battery_low", Severity: irrigation.SeverityWarning, Subject: "node:7", Message: "3.1 V"})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := f.store.RaiseAlert(ctx, irrigation.Alert{FarmID: f.farm, Kind: "battery_low", Severity: irrigation.SeverityCritical, Subject: "node:7", Message: "2.9 V"})
	if err != nil {
		t.Fatal(err)
	}
	if a2.ID != a1.ID || a2.Message != "3.1 V" {
		t.Fatalf("raising again while open gave %+v, want the open alert %d unchanged", a2, a1.ID)
	}
	if _, err := f.store.RaiseAlert(ctx, irrigation.Alert{FarmID: f.farm, Kind: "battery_low", Subject: "node:8", Message: "3.0 V"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.RaiseAlert(ctx, irrigation.Alert{FarmID: f.farm, Kind: "x", Severity: "panic", Message: "m"}); !isValidation(err, "severity") {
		t.Errorf("bad severity: %v", err)
	}
	acked, err := f.store.AckAlert(ctx, a1.ID, user)
	if err != nil || acked.AcknowledgedBy == nil || *acked.AcknowledgedBy != user || acked.AcknowledgedAt == nil {
		t.Fatalf("AckAlert = %+v, %v", acked, err)
	}
	if _, err := f.store.AckAlert(ctx, 999999, user); !errors.Is(err, irrigation.ErrNotFound) {
		t.Errorf("ack unknown: %v", err)
	}
	f.clock.Advance(time.Minute)
	if err := f.store.ResolveAlert(ctx, f.farm, "battery_low", "node:7"); err != nil {
		t.Fatal(err)
	}
	if err := f.store.ResolveAlert(ctx, f.farm, "battery_low", "node:7"); err != nil {
		t.Errorf("resolving nothing open: %v", err)
	}
	open, err := f.store.Alerts(ctx, []int64{f.farm}, true, 10)
	if err != nil || len(open) != 1 || open[0].Subject != "node:8" {
		t.Fatalf("open alerts = %+v, %v", open, err)
	}
	a3, err := f.store.RaiseAlert(ctx, irrigation.Alert{FarmID: f.farm, Kind: "battery_low", Subject: "node:7", Message: "2.8 V"})
	if err != nil || a3.ID == a1.ID {
		t.Fatalf("raising after resolve = %+v, %v; want a new alert", a3, err)
	}
	all, err := f.store.Alerts(ctx, []int64{f.farm}, false, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("all alerts = %d, %v", len(all), err)
	}
	if none, err := f.store.Alerts(ctx, nil, false, 10); err != nil || len(none) != 0 {
		t.Errorf("alerts of no farms = %v, %v", none, err)
	}
}
