package fieldnodes_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/fieldnodes/broker"
	"github.com/aghali/aghali/fieldnodes/loadgen"
	"github.com/aghali/aghali/fieldnodes/profile"
	"github.com/aghali/aghali/geo"
)

// Claiming a pending device registers it and brings in the readings of its kept payloads,
// decoded with the profile chosen at the claim.
func TestClaimPendingBringsReadingsIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newLoRaRig(t, true)
	stranger, err := r.store.NewSecret(ctx, "stranger", fieldnodes.KindNode) // logs in, but has no node
	must(t, err)
	dev := mqttLink(t, r.b.URL(), "stranger", "stranger", stranger, "")
	startLink(t, dev)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for i := range 3 {
		send(t, dev, "aghali/nodes/stranger/up", fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":0.2%d}}`, t0.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), i))
	}
	send(t, dev, "aghali/nodes/stranger/up", `{"readings":{"Bad Name":1}}`) // refused: a rejection, not a pending payload
	lora := fmt.Sprintf(`{"time":%q,"deviceInfo":{"devEui":"70B3D57ED0051A2B","deviceName":"east-probe"},"fCnt":5,"fPort":1,"data":"AWcA3gJoUA==","rxInfo":[{"gatewayId":"g","rssi":-80,"snr":7}]}`,
		t0.Format(time.RFC3339))
	send(t, r.ns, "application/app/device/70b3d57ed0051a2b/event/up", lora)
	send(t, r.ns, "application/app/device/70b3d57ed0051a2b/event/status", fmt.Sprintf(`{"time":%q,"deviceInfo":{"devEui":"70B3D57ED0051A2B"},"margin":6,"batteryLevel":54}`, t0.Add(time.Second).Format(time.RFC3339)))
	eventually(t, 10*time.Second, "two pending devices", func() bool {
		pend, err := r.store.PendingDevices(ctx)
		must(t, err)
		return len(pend) == 2 && len(pend[0].Messages)+len(pend[1].Messages) == 5
	})
	pend, err := r.store.PendingDevices(ctx)
	must(t, err)
	ids := map[string]int64{}
	for _, p := range pend {
		ids[p.Source] = p.ID
	}

	// The native device keeps its uid; a claim naming another is refused.
	var ve *fieldnodes.ValidationError
	if _, err := r.store.ClaimPending(ctx, ids[fieldnodes.SourceMQTT], fieldnodes.Claim{UID: "other", FarmID: r.farmID}); !errors.As(err, &ve) || ve.Field != "uid" {
		t.Errorf("claim under another uid: %v", err)
	}
	if _, err := r.store.ClaimPending(ctx, ids[fieldnodes.SourceMQTT], fieldnodes.Claim{FarmID: r.farmID, Profile: "no-such"}); !errors.As(err, &ve) || ve.Field != "profile" {
		t.Errorf("claim with an unknown profile: %v", err)
	}
	res, err := r.store.ClaimPending(ctx, ids[fieldnodes.SourceMQTT], fieldnodes.Claim{FarmID: r.farmID, ZoneID: &r.zoneA,
		Location: geo.NewPoint(46.631, 39.091), Name: "Found probe"})
	must(t, err)
	if res.Node.UID != "stranger" || res.Node.Profile != "native" || *res.Node.ZoneID != r.zoneA || res.Readings != 3 || res.Skipped != 0 ||
		res.Node.Latest["soil_vwc"].Value != 0.22 || res.Node.LastSeenAt == nil || !res.Node.LastSeenAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("claimed %+v", res)
	}

	// The LoRaWAN device: its DevEUI, a profile mapping its channels, its name as a default.
	_, err = r.store.PutProfile(ctx, profile.Profile{Name: "east", Decoder: profile.DecoderCayenne, ExpectedIntervalS: 600, DepthM: ptr(0.2),
		Map: map[string]profile.Rule{"temperature_1": {Metric: "soil_temp_c"}, "humidity_2": {Metric: "air_rh_pct"}}})
	must(t, err)
	res, err = r.store.ClaimPending(ctx, ids[fieldnodes.NetworkChirpStack], fieldnodes.Claim{FarmID: r.farmID, Profile: "east"})
	must(t, err)
	n := res.Node
	if n.UID != "lora-70b3d57ed0051a2b" || n.DevEUI != "70b3d57ed0051a2b" || n.Name != "east-probe" || n.ExpectedIntervalS != 600 ||
		n.DepthM == nil || *n.DepthM != 0.2 || res.Readings != 5 || n.Latest["soil_temp_c"].Value != 22.2 || n.Latest["air_rh_pct"].Value != 40 ||
		n.Latest["battery_pct"].Value != 54 || *n.LinkMarginDB != 6 {
		t.Errorf("claimed %+v (node %+v)", res, n)
	}
	if pend, err := r.store.PendingDevices(ctx); err != nil || len(pend) != 0 {
		t.Errorf("still pending: %+v %v", pend, err)
	}
	if _, err := r.store.ClaimPending(ctx, ids[fieldnodes.NetworkChirpStack], fieldnodes.Claim{FarmID: r.farmID}); !errors.Is(err, fieldnodes.ErrNotFound) {
		t.Errorf("claiming twice: %v", err)
	}

	// From now on its uplinks go straight to its node.
	send(t, r.ns, "application/app/device/70b3d57ed0051a2b/event/up", strings.Replace(lora, `"fCnt":5`, `"fCnt":6`, 1))
	eventually(t, 10*time.Second, "the next uplink stored", func() bool {
		return r.count(t, "aghali_ingest_messages_total", "outcome", "stored") >= 1
	})
}

func ptr[T any](v T) *T { return &v }

// The rejections are listed by reason, newest first, a page at a time, and counted.
func TestRejectedByReason(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	for i := range 5 {
		reason := fieldnodes.RejectMalformed
		if i%2 == 1 {
			reason = fieldnodes.RejectFuture
		}
		must(t, f.store.Reject(ctx, fmt.Sprintf("aghali/nodes/n%d/up", i), []byte{byte(i)}, reason, "x"))
		time.Sleep(2 * time.Millisecond)
	}
	got, err := f.store.RejectedMessages(ctx, fieldnodes.RejectedFilter{Reason: fieldnodes.RejectMalformed, Limit: 2})
	must(t, err)
	if len(got) != 2 || got[0].Topic != "aghali/nodes/n4/up" || got[1].Topic != "aghali/nodes/n2/up" {
		t.Errorf("first page %+v", got)
	}
	more, err := f.store.RejectedMessages(ctx, fieldnodes.RejectedFilter{Reason: fieldnodes.RejectMalformed, BeforeID: got[1].ID})
	must(t, err)
	if len(more) != 1 || more[0].Topic != "aghali/nodes/n0/up" || more[0].Payload[0] != 0 {
		t.Errorf("second page %+v", more)
	}
	counts, err := f.store.RejectionCounts(ctx)
	must(t, err)
	if len(counts) != 2 || counts[0].Reason != fieldnodes.RejectMalformed || counts[0].Count != 3 || counts[1].Count != 2 {
		t.Errorf("counts %+v", counts)
	}
}

func TestProfilesStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	s := f.store
	all, err := s.Profiles(ctx)
	must(t, err)
	if len(all) != len(profile.Builtins()) {
		t.Errorf("%d profiles before any custom one", len(all))
	}
	if _, err := s.PutProfile(ctx, profile.Profile{Name: profile.DraginoLSE01}); !errors.Is(err, fieldnodes.ErrConflict) {
		t.Errorf("overwriting a built-in: %v", err)
	}
	var ve *fieldnodes.ValidationError
	if _, err := s.PutProfile(ctx, profile.Profile{Name: "bad", Map: map[string]profile.Rule{"x": {Metric: "soil_vwc", Unit: "°C"}}}); !errors.As(err, &ve) || ve.Field != "map.x.unit" {
		t.Errorf("a bad profile: %v", err)
	}
	_, err = s.PutProfile(ctx, profile.Profile{Name: "mine", Decoder: profile.DecoderObject, Map: map[string]profile.Rule{"t": {Metric: "air_temp_c"}}})
	must(t, err)
	p, err := s.Profile(ctx, "mine")
	must(t, err)
	if p.Decoder != profile.DecoderObject || p.BuiltIn || p.Map["t"].Metric != "air_temp_c" {
		t.Errorf("stored profile %+v", p.Profile)
	}
	n, err := s.CreateNode(ctx, fieldnodes.Node{UID: "n1", FarmID: f.farmID, Profile: "mine"})
	must(t, err)
	if err := s.DeleteProfile(ctx, "mine"); !errors.Is(err, fieldnodes.ErrConflict) {
		t.Errorf("deleting a profile in use: %v", err)
	}
	must(t, s.DeleteNode(ctx, n.ID))
	must(t, s.DeleteProfile(ctx, "mine"))
	if _, err := s.Profile(ctx, "mine"); !errors.Is(err, fieldnodes.ErrNotFound) {
		t.Errorf("deleted profile: %v", err)
	}
	if _, err := s.CreateNode(ctx, fieldnodes.Node{UID: "n2", FarmID: f.farmID, Profile: "mine"}); !errors.As(err, &ve) || ve.Field != "profile" {
		t.Errorf("a node with a deleted profile: %v", err)
	}
	// A node created with a profile takes its interval, depth and height when it gives none.
	n, err = s.CreateNode(ctx, fieldnodes.Node{UID: "n3", FarmID: f.farmID, Profile: profile.AghaliWeatherLPP})
	must(t, err)
	if n.ExpectedIntervalS != 600 || n.HeightM == nil || *n.HeightM != 2 {
		t.Errorf("node with the weather profile: %+v", n)
	}
}

// recAlerts records alerts the health monitor raises and resolves.
type recAlerts struct {
	mu       sync.Mutex
	open     map[string]fieldnodes.NodeAlert
	raised   int
	resolved int
	fail     bool
}

func (a *recAlerts) RaiseAlert(_ context.Context, al fieldnodes.NodeAlert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("alerts store away")
	}
	a.open[al.Kind+"|"+al.Subject] = al
	a.raised++
	return nil
}

func (a *recAlerts) ResolveAlert(_ context.Context, farmID int64, kind, subject string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.open, kind+"|"+subject)
	a.resolved++
	return nil
}

func (a *recAlerts) snapshot() (map[string]fieldnodes.NodeAlert, int, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]fieldnodes.NodeAlert{}
	for k, v := range a.open {
		out[k] = v
	}
	return out, a.raised, a.resolved
}

// A node that misses its interval three times is alerted silent, one whose battery runs low is
// alerted; both resolve themselves when the node recovers; each alert is raised once.
func TestHealthMonitorAlertsAndResolves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	// In the past: the database caps last_seen_at at its own now().
	now := time.Now().UTC().Add(-4 * time.Hour).Truncate(time.Second)
	clock := func() time.Time { return now }
	store, err := fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: f.db, Now: func() time.Time { return now }})
	must(t, err)
	probe, err := store.CreateNode(ctx, fieldnodes.Node{UID: "probe", FarmID: f.farmID, Name: "North probe", ExpectedIntervalS: 600})
	must(t, err)
	lora, err := store.CreateNode(ctx, fieldnodes.Node{UID: "lora", FarmID: f.farmID, Profile: profile.DraginoLSE01}) // 20 min, low at 3.1 V
	must(t, err)
	alerts := &recAlerts{open: map[string]fieldnodes.NodeAlert{}}
	h, err := fieldnodes.NewHealthMonitor(fieldnodes.HealthConfig{Store: store, Alerter: alerts, Now: clock})
	must(t, err)
	report := func(node int64, battery float64) {
		_, err := store.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: node, Metric: "battery_v", TS: now, Value: battery},
			{NodeID: node, Metric: "rssi_dbm", TS: now, Value: -80}})
		must(t, err)
	}
	report(probe.ID, 3.6)
	report(lora.ID, 3.5)
	must(t, h.Check(ctx))
	if open, raised, _ := alerts.snapshot(); raised != 0 {
		t.Fatalf("alerts for healthy nodes: %+v", open)
	}
	health, err := store.NodeHealth(ctx, f.farmID)
	must(t, err)
	if len(health) != 2 || health[0].Status != fieldnodes.HealthOK || health[0].LinkQuality != fieldnodes.LinkGood || health[0].BatteryLow {
		t.Errorf("health %+v", health)
	}

	// 35 minutes on: the probe (every 10 min) has missed 3 reports, the LoRaWAN one (every 20
	// min) 1, and its battery is low.
	now = now.Add(35 * time.Minute)
	report(lora.ID, 3.05)
	must(t, h.Check(ctx))
	must(t, h.Check(ctx)) // again: nothing raised twice
	open, raised, _ := alerts.snapshot()
	silent, low := open[fieldnodes.AlertNodeSilent+"|"+fmt.Sprintf("node:%d", probe.ID)], open[fieldnodes.AlertBatteryLow+"|"+fmt.Sprintf("node:%d", lora.ID)]
	if raised != 2 || len(open) != 2 || silent.FarmID != f.farmID || !strings.Contains(silent.Message, "North probe") ||
		!strings.Contains(low.Message, "3.05 V") {
		t.Errorf("after 35 min: raised %d, open %+v", raised, open)
	}
	health, err = store.NodeHealth(ctx, f.farmID)
	must(t, err)
	if health[0].Status != fieldnodes.HealthSilent || health[0].MissedIntervals != 3 || !health[0].SilentAlert ||
		health[1].Status != fieldnodes.HealthOK || !health[1].BatteryLow || !health[1].BatteryAlert {
		t.Errorf("health after 35 min: %+v", health)
	}

	// Both recover: the alerts resolve themselves (a battery just above its threshold is not
	// yet recovered).
	report(probe.ID, 3.6)
	report(lora.ID, 3.15)
	must(t, h.Check(ctx))
	if open, _, resolved := alerts.snapshot(); resolved != 1 || len(open) != 1 {
		t.Errorf("after the probe reports again: resolved %d, open %+v", resolved, open)
	}
	now = now.Add(time.Minute)
	report(lora.ID, 3.6)
	must(t, h.Check(ctx))
	if open, raised, resolved := alerts.snapshot(); resolved != 2 || len(open) != 0 || raised != 2 {
		t.Errorf("after recovery: raised %d, resolved %d, open %+v", raised, resolved, open)
	}

	// An alert store that fails: nothing is marked, the next check tries again.
	now = now.Add(2 * time.Hour)
	alerts.mu.Lock()
	alerts.fail = true
	alerts.mu.Unlock()
	if err := h.Check(ctx); err == nil {
		t.Error("Check hid a failing alert store")
	}
	alerts.mu.Lock()
	alerts.fail = false
	alerts.mu.Unlock()
	must(t, h.Check(ctx))
	if open, _, _ := alerts.snapshot(); len(open) != 2 {
		t.Errorf("after the store came back: open %+v", open)
	}
}

// Readings committed by an ingest that died before writing their node upkeep are repaired
// from the readings themselves.
func TestUpkeepRepairAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFarm(t)
	a := f.node(t, "a", 0)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	// What commitReadings leaves when the process dies right after the commit.
	_, err := f.db.Exec(ctx, `INSERT INTO readings (node_id, metric_id, ts, value)
		SELECT $1, id, $2, 3.4 FROM metrics WHERE name IN ('battery_v', 'soil_vwc')`, a, t0)
	must(t, err)
	_, err = f.db.Exec(ctx, `INSERT INTO node_upkeep_pending (node_ids, min_ts) VALUES (ARRAY[$1::bigint], $2)`, a, t0)
	must(t, err)
	n, err := f.store.RepairUpkeep(ctx, 0)
	must(t, err)
	node, err := f.store.Node(ctx, a)
	must(t, err)
	if n != 1 || node.Latest["soil_vwc"].Value != 3.4 || node.BatteryV == nil || *node.BatteryV != 3.4 || !node.LastSeenAt.Equal(t0) {
		t.Errorf("repaired %d: %+v", n, node)
	}
	var left int
	must(t, f.db.QueryRow(ctx, `SELECT count(*) FROM node_upkeep_pending`).Scan(&left))
	if left != 0 {
		t.Errorf("%d pending upkeep rows left", left)
	}
}

// The whole field-node side, started and stopped: broker with a handoff and a gateway, the
// ingest with both network servers (one on a link of its own), the health monitor, a
// publisher; afterwards no goroutine is left (not in parallel, so that the check sees only
// this test's goroutines).
func TestFieldNodesLeaveNoGoroutines(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last: after every other cleanup
	ctx := context.Background()
	f := newFarm(t)
	must(t, f.store.Start(ctx))
	defer f.store.Stop()
	b, err := broker.New(broker.Config{Listen: "127.0.0.1:0", Auth: f.store, Logger: testLogger(t), Gateways: map[string]string{"gw": "pw"},
		GatewayPublish: []string{"application/+/device/+/event/#", "v3/+/devices/+/#"}})
	must(t, err)
	must(t, b.Start(ctx))
	user, pass := b.InternalCredentials()
	link := mqttLink(t, b.URL(), "aghali-serve-1", user, pass, "")
	ttsLink := mqttLink(t, b.URL(), "aghali-serve-1-tts", user, pass, "")
	ing, err := fieldnodes.NewIngest(fieldnodes.IngestConfig{Store: f.store, Link: link, Logger: testLogger(t),
		Integrations: []fieldnodes.Integration{{Network: fieldnodes.NetworkChirpStack, Topic: fieldnodes.DefaultChirpStackTopic},
			{Network: fieldnodes.NetworkTTS, Topic: fieldnodes.DefaultTTSTopic, Link: ttsLink}}})
	must(t, err)
	b.SetHandoff(ing)
	must(t, ing.Start(ctx))
	must(t, link.Start(ctx))
	must(t, ttsLink.Start(ctx))
	h, err := fieldnodes.NewHealthMonitor(fieldnodes.HealthConfig{Store: f.store, Alerter: &recAlerts{open: map[string]fieldnodes.NodeAlert{}}, Every: 10 * time.Millisecond})
	must(t, err)
	must(t, h.Start(ctx))
	id := f.node(t, "soil-01", 0)
	p, err := loadgen.Dial(ctx, loadgen.Config{URL: b.URL(), ClientID: "gw-1", Username: "gw", Password: "pw"})
	must(t, err)
	must(t, p.Publish(ctx, "aghali/nodes/soil-01/up", []byte(`{"ts":"2026-07-06T05:00:00Z","readings":{"soil_vwc":0.2}}`)))
	must(t, p.Publish(ctx, topicChirpStack+"up", []byte(fixture(t, fixtureChirpStackUp))))
	must(t, p.Wait(ctx))
	if got := readingsOf(t, f, id); got["soil_vwc"].n != 1 {
		t.Errorf("readings %+v", got)
	}
	p.Close()
	h.Stop()
	ing.Stop()
	ttsLink.Stop()
	link.Stop()
	b.Stop()
}
