package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aghali/aghali/fieldnodes"
)

func TestFarmerOpensAndStopsAValve(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	rg := e.newRig(e.farmA.ID, "Tomatoes", map[string]any{"max_runtime_s": 1800})
	farmer := e.login("farmer@aghali.test")
	valve := fmt.Sprintf("/api/v1/valves/%d", rg.valve.ID)

	// 20 minutes: within the zone's 30-minute max runtime.
	var run runJSON
	farmer.do("POST", valve+"/open", map[string]any{"minutes": 20}).want(http.StatusAccepted).decode(&run)
	if run.Origin != "user" || run.RequestedBy == nil || *run.RequestedBy != e.farmer.ID || run.ValveID != rg.valve.ID ||
		run.ZoneID != rg.zone.ID || run.DurationS != 1200 || run.Reason != "manual open by farmer for 20 min" || run.State != "starting" {
		t.Errorf("run %+v", run)
	}
	var detail runDetailJSON
	farmer.do("GET", fmt.Sprintf("/api/v1/runs/%d", run.ID), nil).want(http.StatusOK).decode(&detail)
	if len(detail.Commands) != 1 {
		t.Fatalf("commands %+v, want one open", detail.Commands)
	}
	cmd := detail.Commands[0]
	if cmd.Action != "open" || cmd.DurationS == nil || *cmd.DurationS != 20*60 || cmd.Valve == nil || *cmd.Valve != 1 ||
		!cmd.ExpiresAt.After(e.clock.Now()) || cmd.State != "pending" || len(cmd.ID) != 36 {
		t.Errorf("command %+v: want open, 1200 s, channel 1, expiring in the future", cmd)
	}
	if len(detail.Events) < 2 || detail.Events[0].State != "planned" || !strings.Contains(detail.Events[0].Note, "manual open by farmer") {
		t.Errorf("events %+v", detail.Events)
	}

	// The valve shows its live run; a second open is refused.
	var v valveJSON
	farmer.do("GET", valve, nil).want(http.StatusOK).decode(&v)
	if v.Run == nil || v.Run.ID != run.ID {
		t.Errorf("valve %+v: want its live run %d", v, run.ID)
	}
	p := farmer.do("POST", valve+"/open", map[string]any{"minutes": 5}).problem(http.StatusConflict)
	if p.Title != "Irrigation in progress" || !strings.Contains(p.Detail, "already running") || strings.Contains(p.Detail, "irrigation:") {
		t.Errorf("second open: %+v", p)
	}
	var live []runJSON
	farmer.do("GET", fmt.Sprintf("/api/v1/farms/%d/runs?live=true", e.farmA.ID), nil).want(http.StatusOK).decode(&live)
	if len(live) != 1 || live[0].ID != run.ID {
		t.Errorf("live runs %+v", live)
	}
	// Nor can the zone be deleted under it.
	if p := e.login("agro@aghali.test").do("DELETE", fmt.Sprintf("/api/v1/zones/%d", rg.zone.ID), nil).problem(http.StatusConflict); p.Title != "Irrigation in progress" {
		t.Errorf("deleting a watered zone: %+v", p)
	}

	// Stop: the run is aborted (its open was never sent) or closing; a second stop finds nothing.
	var stopped runJSON
	farmer.do("POST", valve+"/stop", nil).want(http.StatusAccepted).decode(&stopped)
	if stopped.ID != run.ID || (stopped.State != "aborted" && stopped.State != "closing") {
		t.Errorf("stopped %+v", stopped)
	}
	p = farmer.do("POST", valve+"/stop", nil).problem(http.StatusConflict)
	if p.Detail != "nothing is running on this valve" {
		t.Errorf("second stop: %+v", p)
	}
	var all []runJSON
	farmer.do("GET", fmt.Sprintf("/api/v1/farms/%d/runs?limit=10", e.farmA.ID), nil).want(http.StatusOK).decode(&all)
	if len(all) != 1 || all[0].EndedAt == nil && all[0].State != "closing" {
		t.Errorf("runs %+v", all)
	}

	// 45 minutes is capped at the zone's 30.
	var capped runJSON
	farmer.do("POST", valve+"/open", map[string]any{"minutes": 45}).want(http.StatusAccepted).decode(&capped)
	if capped.DurationS != 1800 || !strings.Contains(capped.Reason, "capped") {
		t.Errorf("capped run %+v", capped)
	}
	farmer.do("GET", fmt.Sprintf("/api/v1/runs/%d", capped.ID), nil).want(http.StatusOK).decode(&detail)
	if len(detail.Commands) != 1 || *detail.Commands[0].DurationS != 1800 {
		t.Errorf("capped command %+v", detail.Commands)
	}

	// Audit: each open and stop, with minutes and the run id.
	opens := e.auditRows("open")
	if len(opens) != 2 || opens[0].Entity != "valve" || opens[0].EntityID != fmt.Sprint(rg.valve.ID) || opens[0].Actor != "farmer@aghali.test" {
		t.Fatalf("open audit %+v", opens)
	}
	var d struct {
		Minutes int   `json:"minutes"`
		RunID   int64 `json:"run_id"`
	}
	if err := json.Unmarshal(opens[0].Detail, &d); err != nil || d.Minutes != 20 || d.RunID != run.ID {
		t.Errorf("open audit detail %s", opens[0].Detail)
	}
	stops := e.auditRows("stop")
	if len(stops) != 1 || !strings.Contains(string(stops[0].Detail), fmt.Sprintf(`"run_id": %d`, run.ID)) {
		t.Errorf("stop audit %+v", stops)
	}
	e.noForgottenAudit()
}

func TestValveControlIsForFarmersOfTheFarm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := e.newRig(e.farmA.ID, "A", nil)
	b := e.newRig(e.farmB.ID, "B", nil)
	open := func(id int64) string { return fmt.Sprintf("/api/v1/valves/%d/open", id) }

	viewer := e.login("viewer@aghali.test")
	if p := viewer.do("POST", open(a.valve.ID), map[string]any{"minutes": 10}).problem(http.StatusForbidden); !strings.Contains(p.Detail, "farmer") {
		t.Errorf("viewer: %+v", p)
	}
	viewer.do("POST", fmt.Sprintf("/api/v1/valves/%d/stop", a.valve.ID), nil).problem(http.StatusForbidden)
	farmer := e.login("farmer@aghali.test")
	farmer.do("POST", open(b.valve.ID), map[string]any{"minutes": 10}).problem(http.StatusNotFound) // farm B is not theirs
	farmer.do("GET", fmt.Sprintf("/api/v1/valves/%d", b.valve.ID), nil).problem(http.StatusNotFound)
	farmer.do("POST", open(999999), map[string]any{"minutes": 10}).problem(http.StatusNotFound)

	for body, want := range map[string]int{
		`{"minutes":0}`: 422, `{"minutes":1441}`: 422, `{}`: 422, `{"minutes":"ten"}`: 400, `{"minutes":10,"valve":2}`: 400,
	} {
		farmer.do("POST", open(a.valve.ID), body).problem(want)
	}
	var runs []runJSON
	farmer.do("GET", fmt.Sprintf("/api/v1/farms/%d/runs", e.farmA.ID), nil).want(http.StatusOK).decode(&runs)
	if len(runs) != 0 {
		t.Errorf("refused opens left runs: %+v", runs)
	}
	// The admin and the agronomist may do what farmers may.
	e.login("agro@aghali.test").do("POST", open(b.valve.ID), map[string]any{"minutes": 1}).want(http.StatusAccepted)

	// A valve that waters no zone cannot open.
	agro := e.login("agro@aghali.test")
	var loose valveJSON
	agro.do("POST", fmt.Sprintf("/api/v1/controllers/%d/valves", a.controller.ID), map[string]any{"channel": 2}).want(http.StatusCreated).decode(&loose)
	farmer.do("POST", open(loose.ID), map[string]any{"minutes": 5}).problem(http.StatusUnprocessableEntity)
}

func TestControllersAndValves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	rg := e.newRig(e.farmA.ID, "North", nil)
	agro := e.login("agro@aghali.test")
	if rg.controller.Secret == nil || rg.controller.Transport != "mqtt" {
		t.Fatalf("controller %+v: want an MQTT secret", rg.controller)
	}
	secret := *rg.controller.Secret
	if kind, err := e.nodes.Authenticate(ctx, rg.controller.UID, secret); err != nil || kind != fieldnodes.KindController {
		t.Fatalf("controller login: %q, %v", kind, err)
	}
	ctl := fmt.Sprintf("/api/v1/controllers/%d", rg.controller.ID)
	if body := string(agro.do("GET", ctl, nil).want(http.StatusOK).body); strings.Contains(body, secret) || strings.Contains(body, "secret") {
		t.Errorf("GET controller shows the secret: %s", body)
	}

	var rotated secretJSON
	agro.do("POST", ctl+"/secret", nil).want(http.StatusOK).decode(&rotated)
	if _, err := e.nodes.Authenticate(ctx, rg.controller.UID, secret); !errors.Is(err, fieldnodes.ErrBadCredentials) {
		t.Errorf("old controller secret still works: %v", err)
	}

	var lora controllerCreatedJSON
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/controllers", e.farmA.ID), map[string]any{"uid": "lora-ctl", "transport": "lorawan", "dev_eui": "0011223344556677"}).
		want(http.StatusCreated).decode(&lora)
	if lora.Secret != nil {
		t.Errorf("LoRaWAN controller got a secret")
	}
	agro.do("POST", fmt.Sprintf("/api/v1/controllers/%d/secret", lora.ID), nil).problem(http.StatusUnprocessableEntity)
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/controllers", e.farmA.ID), map[string]any{"uid": "lora-2", "transport": "lorawan"}).problem(http.StatusUnprocessableEntity)
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/controllers", e.farmA.ID), map[string]any{"uid": rg.controller.UID}).problem(http.StatusConflict)
	agro.do("PATCH", ctl, map[string]any{"transport": "lorawan"}).problem(http.StatusUnprocessableEntity)
	var renamed controllerJSON
	agro.do("PATCH", ctl, map[string]any{"name": "Pump house", "location": nil}).want(http.StatusOK).decode(&renamed)
	if renamed.Name != "Pump house" || string(renamed.Location) != "null" || renamed.UID != rg.controller.UID {
		t.Errorf("renamed %+v", renamed)
	}

	// Valves: one per channel; a zone of another farm is refused.
	valves := fmt.Sprintf("/api/v1/controllers/%d/valves", rg.controller.ID)
	agro.do("POST", valves, map[string]any{"channel": 1}).problem(http.StatusConflict)
	agro.do("POST", valves, map[string]any{"channel": 256}).problem(http.StatusUnprocessableEntity)
	other := e.newRig(e.farmB.ID, "South", nil)
	p := agro.do("POST", valves, map[string]any{"channel": 3, "zone_id": other.zone.ID}).problem(http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "zone_id" {
		t.Errorf("zone of another farm: %+v", p)
	}
	var v2 valveJSON
	agro.do("POST", valves, map[string]any{"channel": 2, "name": "East", "nominal_flow_lpm": 30,
		"location": map[string]any{"type": "Point", "coordinates": []float64{46.631, 39.091}}}).want(http.StatusCreated).decode(&v2)
	if v2.FarmID != e.farmA.ID || v2.State != "unknown" || v2.Run != nil || v2.ZoneID != nil {
		t.Errorf("valve %+v", v2)
	}
	agro.do("PATCH", fmt.Sprintf("/api/v1/valves/%d", v2.ID), map[string]any{"zone_id": rg.zone.ID, "nominal_flow_lpm": nil}).want(http.StatusOK).decode(&v2)
	if v2.ZoneID == nil || *v2.ZoneID != rg.zone.ID || v2.NominalFlowLPM != nil || v2.Name != "East" {
		t.Errorf("valve after PATCH %+v", v2)
	}
	var list []valveJSON
	e.login("viewer@aghali.test").do("GET", fmt.Sprintf("/api/v1/farms/%d/valves", e.farmA.ID), nil).want(http.StatusOK).decode(&list)
	if len(list) != 2 || list[0].Channel != 1 || list[1].Channel != 2 {
		t.Errorf("valves %+v", list)
	}

	// A valve being watered can neither move nor go, nor can its controller.
	e.login("farmer@aghali.test").do("POST", fmt.Sprintf("/api/v1/valves/%d/open", v2.ID), map[string]any{"minutes": 5}).want(http.StatusAccepted)
	agro.do("PATCH", fmt.Sprintf("/api/v1/valves/%d", v2.ID), map[string]any{"channel": 9}).problem(http.StatusConflict)
	agro.do("DELETE", fmt.Sprintf("/api/v1/valves/%d", v2.ID), nil).problem(http.StatusConflict)
	agro.do("DELETE", ctl, nil).problem(http.StatusConflict)
	e.login("farmer@aghali.test").do("POST", fmt.Sprintf("/api/v1/valves/%d/stop", v2.ID), nil).want(http.StatusAccepted)

	// Once stopped, the controller goes with its valves, and its secret stops working.
	agro.do("DELETE", ctl, nil).want(http.StatusNoContent)
	agro.do("GET", fmt.Sprintf("/api/v1/valves/%d", v2.ID), nil).problem(http.StatusNotFound)
	if _, err := e.nodes.Authenticate(ctx, rg.controller.UID, rotated.Secret); !errors.Is(err, fieldnodes.ErrBadCredentials) {
		t.Errorf("secret of a deleted controller: %v", err)
	}
	e.noForgottenAudit()
}
