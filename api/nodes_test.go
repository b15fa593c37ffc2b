package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
)

func TestNodeSecretIsShownOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	agro := e.login("agro@aghali.test")
	nodes := fmt.Sprintf("/api/v1/farms/%d/nodes", e.farmA.ID)

	r := agro.do("POST", nodes, map[string]any{"uid": "soil-17", "name": "Soil 17", "depth_m": 0.3,
		"location": map[string]any{"type": "Point", "coordinates": []float64{46.6301, 39.0901}}}).want(http.StatusCreated)
	var created nodeCreatedJSON
	r.decode(&created)
	if created.Secret == nil || len(*created.Secret) < 32 {
		t.Fatalf("created %s: want a secret", r.body)
	}
	secret := *created.Secret
	if created.UID != "soil-17" || created.Profile != "native" || created.ExpectedIntervalS != 900 || created.DevEUI != nil ||
		created.DepthM == nil || *created.DepthM != 0.3 || created.Stale || len(created.Latest) != 0 {
		t.Errorf("created %+v", created.nodeJSON)
	}
	if kind, err := e.nodes.Authenticate(ctx, "soil-17", secret); err != nil || kind != fieldnodes.KindNode {
		t.Fatalf("the secret does not log the node in: %q, %v", kind, err)
	}

	// Stored only as an argon2id hash, which no answer carries; nor does the audit log.
	var stored string
	if err := e.db.QueryRow(ctx, `SELECT secret_hash FROM device_secrets WHERE uid = 'soil-17'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "$argon2id$") || strings.Contains(stored, secret) {
		t.Fatalf("stored %q: want an argon2id hash", stored)
	}
	hashPart := stored[strings.LastIndex(stored, "$")+1:]
	one := fmt.Sprintf("/api/v1/nodes/%d", created.ID)
	for _, path := range []string{one, nodes} {
		body := string(agro.do("GET", path, nil).want(http.StatusOK).body)
		if strings.Contains(body, secret) || strings.Contains(body, hashPart) || strings.Contains(body, "secret") {
			t.Errorf("GET %s shows the secret or its hash: %s", path, body)
		}
	}
	for _, row := range e.auditRows("create") {
		if strings.Contains(string(row.Detail), secret) {
			t.Errorf("the audit log holds the secret: %s", row.Detail)
		}
	}

	// Rotation: a new secret, the old one stops working.
	var rotated secretJSON
	agro.do("POST", one+"/secret", nil).want(http.StatusOK).decode(&rotated)
	if rotated.UID != "soil-17" || rotated.Secret == "" || rotated.Secret == secret {
		t.Fatalf("rotated %+v", rotated)
	}
	if _, err := e.nodes.Authenticate(ctx, "soil-17", secret); !errors.Is(err, fieldnodes.ErrBadCredentials) {
		t.Errorf("old secret after rotation: %v, want ErrBadCredentials", err)
	}
	if _, err := e.nodes.Authenticate(ctx, "soil-17", rotated.Secret); err != nil {
		t.Errorf("new secret: %v", err)
	}
	e.login("farmer@aghali.test").do("POST", one+"/secret", nil).problem(http.StatusForbidden)
	if rows := e.auditRows("rotate_secret"); len(rows) != 1 || rows[0].Entity != "node" || strings.Contains(string(rows[0].Detail), rotated.Secret) {
		t.Errorf("rotation audit %+v", rows)
	}

	// A LoRaWAN node has no MQTT secret, on create or later.
	var lora nodeCreatedJSON
	r = agro.do("POST", nodes, map[string]any{"uid": "lora-1", "dev_eui": "70:B3:D5:7E:D0:05:1A:2B"}).want(http.StatusCreated)
	r.decode(&lora)
	if lora.Secret != nil || strings.Contains(string(r.body), "secret") || lora.DevEUI == nil || *lora.DevEUI != "70b3d57ed0051a2b" {
		t.Errorf("LoRaWAN node %s", r.body)
	}
	agro.do("POST", fmt.Sprintf("/api/v1/nodes/%d/secret", lora.ID), nil).problem(http.StatusUnprocessableEntity)

	// Duplicates, bad input, the uid is for ever.
	agro.do("POST", nodes, map[string]any{"uid": "soil-17"}).problem(http.StatusConflict)
	agro.do("POST", nodes, map[string]any{"uid": "has space"}).problem(http.StatusUnprocessableEntity)
	agro.do("POST", nodes, map[string]any{"name": "no uid"}).problem(http.StatusUnprocessableEntity)
	agro.do("PATCH", one, map[string]any{"uid": "soil-18"}).problem(http.StatusUnprocessableEntity)
	var patched nodeJSON
	agro.do("PATCH", one, map[string]any{"uid": "soil-17", "name": "Soil 17b", "location": nil, "expected_interval_s": 300}).
		want(http.StatusOK).decode(&patched)
	if patched.Name != "Soil 17b" || string(patched.Location) != "null" || patched.ExpectedIntervalS != 300 || patched.DepthM == nil {
		t.Errorf("after PATCH %+v", patched)
	}

	// A uid is one device's: a controller's uid cannot become a node's, and nothing is left
	// half made.
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/controllers", e.farmA.ID), map[string]any{"uid": "shared-1"}).want(http.StatusCreated)
	if p := agro.do("POST", nodes, map[string]any{"uid": "shared-1"}).problem(http.StatusConflict); p.Detail != `uid "shared-1" is taken by a controller` {
		t.Errorf("node with a controller's uid: %+v", p)
	}
	var all []nodeJSON
	agro.do("GET", nodes, nil).want(http.StatusOK).decode(&all)
	if len(all) != 2 {
		t.Errorf("nodes after the refused one: %+v", all)
	}

	// Deleting the node deletes its login.
	agro.do("DELETE", one, nil).want(http.StatusNoContent)
	if _, err := e.nodes.Authenticate(ctx, "soil-17", rotated.Secret); !errors.Is(err, fieldnodes.ErrBadCredentials) {
		t.Errorf("secret of a deleted node: %v", err)
	}
	agro.do("GET", one, nil).problem(http.StatusNotFound)
	e.noForgottenAudit()
}

func TestNodeReadingsAreDownsampled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	agro := e.login("agro@aghali.test")
	var n nodeCreatedJSON
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/nodes", e.farmA.ID), map[string]any{"uid": "soil-1"}).want(http.StatusCreated).decode(&n)

	// Two days of 15-minute readings up to the clock: 192 soil_vwc, and a battery voltage.
	now := e.clock.Now()
	var rs []fieldnodes.Reading
	for i := range 192 {
		ts := now.Add(-time.Duration(i) * 15 * time.Minute)
		rs = append(rs, fieldnodes.Reading{NodeID: n.ID, Metric: "soil_vwc", TS: ts, Value: 0.20 + float64(i%10)/100})
	}
	rs = append(rs, fieldnodes.Reading{NodeID: n.ID, Metric: "battery_v", TS: now, Value: 3.61})
	if inserted, err := e.nodes.InsertReadings(ctx, rs); err != nil || inserted != len(rs) {
		t.Fatalf("InsertReadings: %d, %v", inserted, err)
	}

	viewer := e.login("viewer@aghali.test")
	readings := fmt.Sprintf("/api/v1/nodes/%d/readings", n.ID)
	var s seriesJSON
	viewer.do("GET", readings+"?points=20", nil).want(http.StatusOK).decode(&s)
	if s.Metric != "soil_vwc" || s.Unit != "m3/m3" || s.NodeID != n.ID {
		t.Errorf("series header %+v: want soil_vwc by default", s)
	}
	if !s.To.After(now) || !s.From.Equal(s.To.Add(-7*24*time.Hour)) {
		t.Errorf("from %s to %s: want the 7 days up to now (%s)", s.From, s.To, now)
	}
	if len(s.Points) == 0 || len(s.Points) > 20 {
		t.Fatalf("%d points, want 1 to 20", len(s.Points))
	}
	total := 0
	for i, p := range s.Points {
		total += p.N
		if p.Min > p.Value || p.Value > p.Max || p.Min < 0.20 || p.Max > 0.29+1e-9 {
			t.Errorf("point %d %+v: want min ≤ value ≤ max within the data", i, p)
		}
		if i > 0 && !p.TS.After(s.Points[i-1].TS) {
			t.Errorf("points out of order at %d", i)
		}
	}
	if total != 192 {
		t.Errorf("buckets hold %d readings, want all 192", total)
	}

	// A window of 2 hours at full resolution: each reading its own bucket.
	from := now.Add(-2 * time.Hour).Add(-time.Second).Format(time.RFC3339)
	to := now.Add(time.Second).Format(time.RFC3339)
	viewer.do("GET", readings+"?from="+from+"&to="+to+"&points=5000", nil).want(http.StatusOK).decode(&s)
	if len(s.Points) != 9 || s.Points[8].N != 1 || s.Points[8].Value != s.Points[8].Min {
		t.Errorf("2 hours: %d points %+v, want 9 single readings", len(s.Points), s.Points)
	}
	viewer.do("GET", readings+"?metric=battery_v", nil).want(http.StatusOK).decode(&s)
	if s.Unit != "V" || len(s.Points) != 1 || s.Points[0].Value != 3.61 {
		t.Errorf("battery_v %+v", s)
	}
	viewer.do("GET", readings+"?metric=leaf_wetness", nil).want(http.StatusOK).decode(&s)
	if len(s.Points) != 0 {
		t.Errorf("a metric never reported: %+v", s.Points)
	}

	for query, field := range map[string]string{
		"?points=0": "points", "?points=5001": "points", "?metric=Soil-VWC": "metric",
		"?from=yesterday": "from", "?from=" + to + "&to=" + from: "to",
	} {
		p := viewer.do("GET", readings+query, nil).problem(http.StatusUnprocessableEntity)
		if len(p.Errors) != 1 || p.Errors[0].Field != field {
			t.Errorf("%s: %+v, want a problem with %s", query, p, field)
		}
	}
	e.outsider().do("GET", readings, nil).problem(http.StatusNotFound)

	// The node shows its latest values and battery.
	var got nodeJSON
	viewer.do("GET", fmt.Sprintf("/api/v1/nodes/%d", n.ID), nil).want(http.StatusOK).decode(&got)
	if got.Latest["soil_vwc"].Value != 0.20 || !got.Latest["soil_vwc"].TS.Equal(now) || got.BatteryV == nil || *got.BatteryV != 3.61 ||
		got.LastSeenAt == nil || !got.LastSeenAt.Equal(now) || got.Stale {
		t.Errorf("node %+v", got)
	}
	e.clock.Advance(46 * time.Minute) // past 3 × 15 min
	viewer.do("GET", fmt.Sprintf("/api/v1/nodes/%d", n.ID), nil).want(http.StatusOK).decode(&got)
	if !got.Stale {
		t.Error("a node silent for 46 min at a 15-min interval is not stale")
	}
}

func TestMetricsCatalogPendingAndRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	payload := []byte{0x01, 0xff, '{', 0x00}
	if err := e.nodes.Reject(ctx, "aghali/nodes/x/up", payload, "malformed", "not JSON"); err != nil {
		t.Fatal(err)
	}
	if err := e.nodes.RecordPending(ctx, fieldnodes.SourceMQTT, "stranger-1", "aghali/nodes/stranger-1/up", []byte(`{"readings":{}}`), e.clock.Now()); err != nil {
		t.Fatal(err)
	}

	var rejected []rejectedMessageJSON
	e.login("admin@aghali.test").do("GET", "/api/v1/rejected-messages?limit=10", nil).want(http.StatusOK).decode(&rejected)
	if len(rejected) != 1 || rejected[0].Reason != "malformed" || rejected[0].Detail != "not JSON" ||
		rejected[0].Topic != "aghali/nodes/x/up" || rejected[0].PayloadBase64 != "Af97AA==" {
		t.Errorf("rejected %+v", rejected)
	}
	var pending []pendingDeviceJSON
	e.login("admin@aghali.test").do("GET", "/api/v1/pending-devices", nil).want(http.StatusOK).decode(&pending)
	if len(pending) != 1 || pending[0].UID != "stranger-1" || pending[0].MessageCount != 1 || len(pending[0].Messages) != 1 ||
		pending[0].Messages[0].PayloadBase64 != "eyJyZWFkaW5ncyI6e319" {
		t.Errorf("pending %+v", pending)
	}
	for _, who := range []string{"agro@aghali.test", "farmer@aghali.test", "viewer@aghali.test"} {
		c := e.login(who)
		if p := c.do("GET", "/api/v1/rejected-messages", nil).problem(http.StatusForbidden); !strings.Contains(p.Detail, "admin") {
			t.Errorf("%s: %+v", who, p)
		}
		c.do("GET", "/api/v1/pending-devices", nil).problem(http.StatusForbidden)
	}
	e.login("admin@aghali.test").do("GET", "/api/v1/rejected-messages?limit=0", nil).problem(http.StatusUnprocessableEntity)

	var catalog []metricJSON
	e.login("viewer@aghali.test").do("GET", "/api/v1/metrics-catalog", nil).want(http.StatusOK).decode(&catalog)
	if len(catalog) < 19 || !catalog[0].Known {
		t.Fatalf("catalogue %+v", catalog)
	}
	found := false
	for _, m := range catalog {
		if m.Name == "soil_vwc" && m.Unit == "m3/m3" && m.Known {
			found = true
		}
	}
	if !found {
		t.Errorf("soil_vwc missing from %+v", catalog)
	}
}
