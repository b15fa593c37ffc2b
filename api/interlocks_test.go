package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// A farmer stops the whole farm (audited, with their name), nothing may open until they
// release it, and the interlock status shows it throughout.
func TestEmergencyStopThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rg := e.newRig(e.farmA.ID, "Tomatoes", nil)
	farmer := e.login("farmer@aghali.test")
	farm := fmt.Sprintf("/api/v1/farms/%d", e.farmA.ID)
	var run runJSON
	farmer.do("POST", fmt.Sprintf("/api/v1/valves/%d/open", rg.valve.ID), map[string]any{"minutes": 10}).want(http.StatusAccepted).decode(&run)

	e.login("viewer@aghali.test").do("POST", farm+"/emergency-stop", map[string]any{"reason": "x"}).problem(http.StatusForbidden)
	var st emergencyStopJSON
	farmer.do("POST", farm+"/emergency-stop", map[string]any{"reason": "canal breach"}).want(http.StatusOK).decode(&st)
	if st.StoppedByName != "farmer" || st.Reason != "canal breach" || st.RunsStopped != 1 || st.ReleasedAt != nil {
		t.Fatalf("stop %+v", st)
	}
	var after runJSON
	farmer.do("GET", fmt.Sprintf("/api/v1/runs/%d", run.ID), nil).want(http.StatusOK).decode(&after)
	if after.State != "aborted" && after.State != "closing" {
		t.Errorf("run after the stop: %s", after.State)
	}
	p := farmer.do("POST", fmt.Sprintf("/api/v1/valves/%d/open", rg.valve.ID), map[string]any{"minutes": 10}).problem(http.StatusConflict)
	if !strings.Contains(p.Detail, "emergency stop") || !strings.Contains(p.Detail, "canal breach") || strings.Contains(p.Detail, "irrigation:") {
		t.Errorf("open during a stop: %+v", p)
	}
	var status interlocksJSON
	e.login("viewer@aghali.test").do("GET", farm+"/interlocks", nil).want(http.StatusOK).decode(&status)
	if status.EmergencyStop == nil || status.EmergencyStop.ID != st.ID {
		t.Errorf("interlocks during the stop: %+v", status)
	}
	var released emergencyStopJSON
	farmer.do("POST", farm+"/emergency-stop/release", nil).want(http.StatusOK).decode(&released)
	if released.ReleasedAt == nil || released.ReleasedByName == nil || *released.ReleasedByName != "farmer" {
		t.Errorf("released %+v", released)
	}
	farmer.do("POST", farm+"/emergency-stop/release", nil).problem(http.StatusConflict)
	var history []emergencyStopJSON
	farmer.do("GET", farm+"/emergency-stops", nil).want(http.StatusOK).decode(&history)
	if len(history) != 1 || history[0].ID != st.ID {
		t.Errorf("history %+v", history)
	}
	var audit []auditJSON
	e.login("admin@aghali.test").do("GET", "/api/v1/audit?limit=20", nil).want(http.StatusOK).decode(&audit)
	seen := map[string]bool{}
	for _, a := range audit {
		seen[a.Action] = true
	}
	if !seen["emergency_stop"] || !seen["emergency_release"] {
		t.Errorf("audit %+v", audit)
	}
	e.noForgottenAudit()
}

// A farmer holds a zone closed, then waters another zone by override; a water source with a
// capacity for one queues the second run, visible in the run queue and the interlocks.
func TestOverridesAndQueueThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	agro := e.login("agro@aghali.test")
	var src waterSourceJSON
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/water-sources", e.farmA.ID), map[string]any{"name": "Spring", "kind": "well",
		"capacity_m3h": 1.5, "power_budget_kw": 2, "specific_energy_kwh_m3": 1}).want(http.StatusCreated).decode(&src)
	if src.FlowLimitM3H == nil || *src.FlowLimitM3H != 1.5 {
		t.Fatalf("source %+v", src)
	}
	a := e.newRig(e.farmA.ID, "A", map[string]any{"water_source_id": src.ID})
	b := e.newRig(e.farmA.ID, "B", map[string]any{"water_source_id": src.ID})
	for _, v := range []valveJSON{a.valve, b.valve} {
		agro.do("PATCH", fmt.Sprintf("/api/v1/valves/%d", v.ID), map[string]any{"nominal_flow_lpm": 20}).want(http.StatusOK)
	}
	var pump valveJSON
	agro.do("POST", fmt.Sprintf("/api/v1/controllers/%d/valves", a.controller.ID), map[string]any{"channel": 8, "role": "pump",
		"water_source_id": src.ID}).want(http.StatusCreated).decode(&pump)
	if pump.Role != "pump" || pump.WaterSourceID == nil || *pump.WaterSourceID != src.ID || pump.ZoneID != nil {
		t.Fatalf("pump %+v", pump)
	}
	farmer := e.login("farmer@aghali.test")
	var hold overrideCreatedJSON
	farmer.do("POST", fmt.Sprintf("/api/v1/zones/%d/overrides", b.zone.ID), map[string]any{"mode": "hold", "minutes": 30,
		"reason": "spraying"}).want(http.StatusCreated).decode(&hold)
	if hold.ByName != "farmer" || hold.Mode != "hold" || hold.Run != nil {
		t.Fatalf("hold %+v", hold)
	}
	p := farmer.do("POST", fmt.Sprintf("/api/v1/valves/%d/open", b.valve.ID), map[string]any{"minutes": 5}).problem(http.StatusConflict)
	if !strings.Contains(p.Detail, "override") || !strings.Contains(p.Detail, "spraying") {
		t.Errorf("open of a held zone: %+v", p)
	}
	farmer.do("DELETE", fmt.Sprintf("/api/v1/overrides/%d", hold.ID), nil).want(http.StatusOK)
	var open overrideCreatedJSON
	farmer.do("POST", fmt.Sprintf("/api/v1/zones/%d/overrides", a.zone.ID), map[string]any{"mode": "open", "minutes": 15,
		"reason": "frost protection"}).want(http.StatusCreated).decode(&open)
	if open.Run == nil || open.Run.Priority != 1 || open.Run.State != "starting" || open.Run.OverrideID == nil {
		t.Fatalf("open override %+v", open)
	}
	var second runJSON
	farmer.do("POST", fmt.Sprintf("/api/v1/valves/%d/open", b.valve.ID), map[string]any{"minutes": 5}).want(http.StatusAccepted).decode(&second)
	if second.State != "planned" || !strings.Contains(second.WaitReason, "capacity") {
		t.Errorf("second run %+v: want it waiting for capacity", second)
	}
	var queue []runJSON
	farmer.do("GET", fmt.Sprintf("/api/v1/farms/%d/run-queue", e.farmA.ID), nil).want(http.StatusOK).decode(&queue)
	if len(queue) != 1 || queue[0].ID != second.ID {
		t.Errorf("queue %+v", queue)
	}
	var status interlocksJSON
	farmer.do("GET", fmt.Sprintf("/api/v1/farms/%d/interlocks", e.farmA.ID), nil).want(http.StatusOK).decode(&status)
	if len(status.Sources) != 1 || len(status.Overrides) != 1 {
		t.Fatalf("interlocks %+v", status)
	}
	s := status.Sources[0]
	if s.InUseM3H != 1.2 || len(s.Admitted) != 1 || len(s.Queue) != 1 || len(s.Actuators) != 1 || !s.Actuators[0].On {
		t.Errorf("source status %+v", s)
	}
	var overrides []overrideJSON
	farmer.do("GET", fmt.Sprintf("/api/v1/farms/%d/overrides?active=true", e.farmA.ID), nil).want(http.StatusOK).decode(&overrides)
	if len(overrides) != 1 || overrides[0].ID != open.ID {
		t.Errorf("active overrides %+v", overrides)
	}
	e.noForgottenAudit()
}
