package api

import (
	"fmt"
	"net/http"
	"testing"
)

func TestAuditLogOfAdministeredOrganisations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := e.login("admin@aghali.test")
	var farm farmJSON
	admin.do("POST", "/api/v1/farms", map[string]any{"org_id": e.org, "name": "Riverside", "timezone": "Asia/Baku"}).
		want(http.StatusCreated).decode(&farm)
	admin.do("PATCH", fmt.Sprintf("/api/v1/farms/%d", farm.ID), map[string]any{"location": map[string]any{"type": "Point", "coordinates": []float64{46.6, 39.1}}}).
		want(http.StatusOK)
	admin.do("POST", "/api/v1/farms", map[string]any{"org_id": e.org, "name": "Riverside"}).problem(http.StatusConflict)
	var cleared farmJSON
	admin.do("PATCH", fmt.Sprintf("/api/v1/farms/%d", farm.ID), map[string]any{"location": nil}).want(http.StatusOK).decode(&cleared)
	if string(cleared.Location) != "null" || cleared.Name != "Riverside" {
		t.Errorf("after clearing the location: %+v", cleared)
	}
	admin.do("DELETE", fmt.Sprintf("/api/v1/farms/%d", farm.ID), nil).want(http.StatusNoContent)

	var entries []auditJSON
	admin.do("GET", "/api/v1/audit?limit=2", nil).want(http.StatusOK).decode(&entries)
	if len(entries) != 2 || entries[0].Action != "delete" || entries[1].Action != "update" ||
		entries[0].Entity != "farm" || entries[0].EntityID != fmt.Sprint(farm.ID) || entries[0].Actor != "admin@aghali.test" {
		t.Fatalf("newest entries %+v", entries)
	}
	var older []auditJSON
	admin.do("GET", fmt.Sprintf("/api/v1/audit?before=%d", entries[1].ID), nil).want(http.StatusOK).decode(&older)
	if len(older) != 2 || older[0].Action != "update" || older[1].Action != "create" {
		t.Errorf("older entries %+v", older)
	}
	admin.do("GET", "/api/v1/audit?limit=0", nil).problem(http.StatusUnprocessableEntity)
	e.login("farmer@aghali.test").do("GET", "/api/v1/audit", nil).problem(http.StatusForbidden)
}
