package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/aghali/aghali/irrigation"
)

// Fixtures of the irrigation and field-node tests, built through the API as a person would.

// outsider logs in a farmer of the same organisation granted farm B only, for whom everything on
// farm A must be 404.
func (e *env) outsider() *client {
	e.t.Helper()
	const email = "outsider@aghali.test"
	if _, err := UserByEmail(context.Background(), e.db, email); err != nil {
		if _, err := CreateUser(context.Background(), e.db, UserInput{Email: email, Name: "Outsider", Password: password,
			OrgID: e.org, Role: RoleFarmer, FarmIDs: []int64{e.farmB.ID}}); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.login(email)
}

// rig is a zone watered by one valve of an MQTT controller on a farm.
type rig struct {
	zone       zoneJSON
	controller controllerCreatedJSON
	valve      valveJSON
}

// newRig creates, as the agronomist, a zone (with extra members), a controller and a valve on
// channel 1 watering the zone.
func (e *env) newRig(farmID int64, name string, zoneExtra map[string]any) rig {
	e.t.Helper()
	agro := e.login("agro@aghali.test")
	var r rig
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/zones", farmID), zoneBody(name, squareCW, zoneExtra)).
		want(http.StatusCreated).decode(&r.zone)
	agro.do("POST", fmt.Sprintf("/api/v1/farms/%d/controllers", farmID), map[string]any{
		"uid": fmt.Sprintf("ctl-%d-%d", farmID, r.zone.ID), "name": name + " controller",
		"location": map[string]any{"type": "Point", "coordinates": []float64{46.6305, 39.0905}},
	}).want(http.StatusCreated).decode(&r.controller)
	agro.do("POST", fmt.Sprintf("/api/v1/controllers/%d/valves", r.controller.ID), map[string]any{
		"channel": 1, "zone_id": r.zone.ID, "name": name + " valve",
	}).want(http.StatusCreated).decode(&r.valve)
	return r
}

// noForgottenAudit fails the test if a handler left a change for the middleware to audit.
func (e *env) noForgottenAudit() {
	e.t.Helper()
	if strings.Contains(e.logs.String(), "handler did not audit") {
		e.t.Errorf("a handler did not audit its change:\n%s", e.logs.String())
	}
}

// irrigationAlert is a warning about subject.
func irrigationAlert(farmID int64, kind, subject string) irrigation.Alert {
	return irrigation.Alert{FarmID: farmID, Kind: kind, Subject: subject, Severity: irrigation.SeverityWarning,
		Message: kind + " on " + subject}
}
