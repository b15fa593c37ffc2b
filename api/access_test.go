package api

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/aghali/aghali/geo"
)

func TestRolesAndVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	store := geo.NewStore(e.db)
	mp, err := geo.ParseMultiPolygon([]byte(squareCW))
	if err != nil {
		t.Fatal(err)
	}
	fieldB, err := store.CreateField(ctx, geo.Field{FarmID: e.farmB.ID, Name: "Terrace 1", Geom: mp})
	if err != nil {
		t.Fatal(err)
	}
	// Someone of another organisation, admin there.
	otherOrg, err := CreateOrganisation(ctx, e.db, "Neighbouring cooperative")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateUser(ctx, e.db, UserInput{Email: "stranger@coop.test", Password: password, OrgID: otherOrg, Role: RoleAdmin}); err != nil {
		t.Fatal(err)
	}

	farmA := fmt.Sprintf("/api/v1/farms/%d", e.farmA.ID)
	farmB := fmt.Sprintf("/api/v1/farms/%d", e.farmB.ID)
	viewer, farmer, agro, admin, stranger := e.login("viewer@aghali.test"), e.login("farmer@aghali.test"),
		e.login("agro@aghali.test"), e.login("admin@aghali.test"), e.login("stranger@coop.test")

	cases := []struct {
		who    string
		c      *client
		method string
		path   string
		body   any
		want   int
	}{
		{"viewer reads granted farm", viewer, "GET", farmA, nil, 200},
		{"viewer reads its fields", viewer, "GET", farmA + "/fields", nil, 200},
		{"viewer cannot create a field", viewer, "POST", farmA + "/fields", fieldBody("V", squareCW), 403},
		{"farmer cannot create a field", farmer, "POST", farmA + "/fields", fieldBody("F", squareCW), 403},
		{"farmer of A does not see farm B", farmer, "GET", farmB, nil, 404},
		{"farmer of A does not see B's fields", farmer, "GET", farmB + "/fields", nil, 404},
		{"farmer of A does not see a field of B", farmer, "GET", fmt.Sprintf("/api/v1/fields/%d", fieldB.ID), nil, 404},
		{"farmer cannot write to B either: 404, not 403", farmer, "POST", farmB + "/fields", fieldBody("F", squareCW), 404},
		{"agronomist sees farm B", agro, "GET", farmB, nil, 200},
		{"agronomist edits B's field", agro, "PATCH", fmt.Sprintf("/api/v1/fields/%d", fieldB.ID), map[string]string{"crop": "grapes"}, 200},
		{"agronomist cannot rename the farm", agro, "PATCH", farmA, map[string]string{"name": "Mine"}, 403},
		{"agronomist cannot create farms", agro, "POST", "/api/v1/farms", map[string]any{"org_id": e.org, "name": "New"}, 403},
		{"agronomist cannot list users", agro, "GET", fmt.Sprintf("/api/v1/orgs/%d/users", e.org), nil, 403},
		{"agronomist cannot read the audit log", agro, "GET", "/api/v1/audit", nil, 403},
		{"admin creates a farm", admin, "POST", "/api/v1/farms", map[string]any{"org_id": e.org, "name": "Riverside", "location": map[string]any{"type": "Point", "coordinates": []float64{46.64, 39.1}}}, 201},
		{"admin renames a farm", admin, "PATCH", farmB, map[string]string{"name": "Terraces"}, 200},
		{"stranger does not see farm A", stranger, "GET", farmA, nil, 404},
		{"stranger cannot create a farm in another org", stranger, "POST", "/api/v1/farms", map[string]any{"org_id": e.org, "name": "Mine"}, 404},
		{"stranger does not see the org's users", stranger, "GET", fmt.Sprintf("/api/v1/orgs/%d/users", e.org), nil, 404},
		{"stranger cannot delete farm A", stranger, "DELETE", farmA, nil, 404},
	}
	for _, tc := range cases {
		r := tc.c.do(tc.method, tc.path, tc.body)
		if r.status != tc.want {
			t.Errorf("%s: %s %s = %d, want %d; %s", tc.who, tc.method, tc.path, r.status, tc.want, r.body)
			continue
		}
		if tc.want >= 400 {
			r.problem(tc.want)
		}
	}

	// Lists are scoped too.
	names := func(c *client) []string {
		var farms []farmJSON
		c.do("GET", "/api/v1/farms", nil).want(200).decode(&farms)
		var out []string
		for _, f := range farms {
			out = append(out, f.Name)
		}
		return out
	}
	if got := names(farmer); len(got) != 1 || got[0] != "Hakari bank" {
		t.Errorf("farmer sees %v, want only Hakari bank", got)
	}
	if got := names(agro); len(got) != 3 {
		t.Errorf("agronomist sees %v, want all three farms", got)
	}
	if got := names(stranger); len(got) != 0 {
		t.Errorf("stranger sees %v", got)
	}
	var orgs []orgJSON
	farmer.do("GET", "/api/v1/orgs", nil).want(200).decode(&orgs)
	if len(orgs) != 1 || orgs[0].ID != e.org || orgs[0].Role != RoleFarmer {
		t.Errorf("farmer's orgs %+v", orgs)
	}
}

func TestForbiddenNamesTheRoleNeeded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	p := e.login("viewer@aghali.test").do("POST", fmt.Sprintf("/api/v1/farms/%d/fields", e.farmA.ID), fieldBody("V", squareCW)).problem(http.StatusForbidden)
	if p.Type != problemBase+"forbidden" || p.Detail != "your role does not allow this: it needs the role agronomist or higher" {
		t.Errorf("problem %+v", p)
	}
}

func TestRoleOrder(t *testing.T) {
	t.Parallel()
	cases := []struct {
		r, min Role
		want   bool
	}{
		{RoleAdmin, RoleAgronomist, true}, {RoleAgronomist, RoleAgronomist, true}, {RoleFarmer, RoleAgronomist, false},
		{RoleAgronomist, RoleFarmer, true}, {RoleViewer, RoleFarmer, false}, {RoleViewer, RoleViewer, true},
		{Role("owner"), RoleViewer, false}, {RoleAgronomist, RoleAdmin, false},
	}
	for _, tc := range cases {
		if got := tc.r.atLeast(tc.min); got != tc.want {
			t.Errorf("%s.atLeast(%s) = %v", tc.r, tc.min, got)
		}
	}
}
