package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
)

// A pending device is claimed onto a farm by an admin of its organisation: it becomes a node
// with the readings of what it had sent; the claim is audited.
func TestClaimPendingDevice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	now := e.clock.Now()
	for i := range 2 {
		payload := fmt.Sprintf(`{"ts":%q,"readings":{"soil_vwc":0.2%d}}`, now.Add(time.Duration(i-2)*time.Minute).Format(time.RFC3339), i)
		if err := e.nodes.RecordPending(ctx, fieldnodes.SourceMQTT, "stray-1", "aghali/nodes/stray-1/up", []byte(payload), now); err != nil {
			t.Fatal(err)
		}
	}
	var pending []pendingDeviceJSON
	admin := e.login("admin@aghali.test")
	admin.do("GET", "/api/v1/pending-devices", nil).want(http.StatusOK).decode(&pending)
	if len(pending) != 1 || pending[0].Messages[0].Event != "up" {
		t.Fatalf("pending %+v", pending)
	}
	path := fmt.Sprintf("/api/v1/pending-devices/%d/claim", pending[0].ID)
	body := map[string]any{"farm_id": e.farmA.ID, "name": "Stray probe", "location": map[string]any{"type": "Point", "coordinates": []float64{46.63, 39.09}}}

	e.login("agro@aghali.test").do("POST", path, body).problem(http.StatusForbidden)
	e.login("viewer@aghali.test").do("POST", path, body).problem(http.StatusForbidden)
	admin.do("POST", path, map[string]any{"farm_id": e.farmA.ID, "profile": "no-such"}).problem(http.StatusUnprocessableEntity)
	admin.do("POST", path, map[string]any{"name": "x"}).problem(http.StatusUnprocessableEntity)

	var got claimJSON
	admin.do("POST", path, body).want(http.StatusCreated).decode(&got)
	if got.Node.UID != "stray-1" || got.Node.FarmID != e.farmA.ID || got.Node.Name != "Stray probe" || got.Readings != 2 || got.Skipped != 0 ||
		got.Node.Latest["soil_vwc"].Value != 0.21 || string(got.Node.Location) == "null" {
		t.Errorf("claimed %+v", got)
	}
	admin.do("POST", path, body).problem(http.StatusNotFound)
	if rows := e.auditRows("claim"); len(rows) != 1 || rows[0].Entity != "node" {
		t.Errorf("audit %+v", rows)
	}
}

// Rejected messages by reason, paged, and counted; device profiles listed, written, refused;
// node health of a farm.
func TestRejectionsProfilesAndNodeHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	for i, reason := range []string{"malformed", "future_ts", "malformed", "malformed"} {
		if err := e.nodes.Reject(ctx, fmt.Sprintf("aghali/nodes/n%d/up", i), []byte{byte(i)}, reason, "x"); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second)
	}
	admin := e.login("admin@aghali.test")
	var page []rejectedMessageJSON
	admin.do("GET", "/api/v1/rejected-messages?reason=malformed&limit=2", nil).want(http.StatusOK).decode(&page)
	if len(page) != 2 || page[0].Topic != "aghali/nodes/n3/up" || page[1].Topic != "aghali/nodes/n2/up" {
		t.Fatalf("first page %+v", page)
	}
	var next []rejectedMessageJSON
	admin.do("GET", fmt.Sprintf("/api/v1/rejected-messages?reason=malformed&before=%d", page[1].ID), nil).want(http.StatusOK).decode(&next)
	if len(next) != 1 || next[0].Topic != "aghali/nodes/n0/up" {
		t.Errorf("second page %+v", next)
	}
	var counts []rejectionCountJSON
	admin.do("GET", "/api/v1/rejected-messages/reasons", nil).want(http.StatusOK).decode(&counts)
	if len(counts) != 2 || counts[0].Reason != "malformed" || counts[0].Count != 3 || counts[1].Count != 1 {
		t.Errorf("counts %+v", counts)
	}
	e.login("agro@aghali.test").do("GET", "/api/v1/rejected-messages/reasons", nil).problem(http.StatusForbidden)

	var profiles []map[string]any
	e.login("viewer@aghali.test").do("GET", "/api/v1/device-profiles", nil).want(http.StatusOK).decode(&profiles)
	if len(profiles) < 8 || profiles[0]["built_in"] != true {
		t.Errorf("profiles %v", profiles)
	}
	custom := map[string]any{"decoder": "cayenne", "map": map[string]any{"temperature_3": map[string]any{"metric": "soil_temp_c"},
		"analog_input_1": map[string]any{"metric": "soil_vwc", "calibration": map[string]any{"poly": []float64{-0.05, 0.03}}}}}
	e.login("agro@aghali.test").do("PUT", "/api/v1/device-profiles/north", custom).problem(http.StatusForbidden)
	var stored map[string]any
	admin.do("PUT", "/api/v1/device-profiles/north", custom).want(http.StatusOK).decode(&stored)
	if stored["name"] != "north" || stored["built_in"] != false {
		t.Errorf("stored %v", stored)
	}
	admin.do("PUT", "/api/v1/device-profiles/native", custom).problem(http.StatusConflict)
	admin.do("PUT", "/api/v1/device-profiles/bad", map[string]any{"decoder": "protobuf"}).problem(http.StatusUnprocessableEntity)
	admin.do("GET", "/api/v1/device-profiles/north", nil).want(http.StatusOK)

	// A node on the profile; its health; the profile cannot go while the node uses it.
	agro := e.login("agro@aghali.test")
	var n struct{ ID int64 }
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/nodes", e.farmA.ID), map[string]any{"uid": "north-1", "profile": "north", "dev_eui": "0101010101010101"}).
		want(http.StatusCreated).decode(&n)
	admin.do("DELETE", "/api/v1/device-profiles/north", nil).problem(http.StatusConflict)
	if _, err := e.nodes.InsertReadings(ctx, []fieldnodes.Reading{{NodeID: n.ID, Metric: "battery_pct", TS: e.clock.Now(), Value: 12},
		{NodeID: n.ID, Metric: "snr_db", TS: e.clock.Now(), Value: -2}}); err != nil {
		t.Fatal(err)
	}
	var health []nodeHealthJSON
	e.login("viewer@aghali.test").do("GET", fmt.Sprintf("/api/v1/farms/%d/node-health", e.farmA.ID), nil).want(http.StatusOK).decode(&health)
	if len(health) != 1 || health[0].Status != fieldnodes.HealthOK || !health[0].BatteryLow || health[0].LinkQuality == nil ||
		*health[0].LinkQuality != fieldnodes.LinkFair || health[0].UID != "north-1" {
		t.Errorf("health %+v", health)
	}
	e.login("viewer@aghali.test").do("GET", fmt.Sprintf("/api/v1/farms/%d/node-health", e.farmB.ID), nil).problem(http.StatusNotFound)
}
