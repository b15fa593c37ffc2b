package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestAdminManagesUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := e.login("admin@aghali.test")
	users := fmt.Sprintf("/api/v1/orgs/%d/users", e.org)

	var u memberJSON
	admin.do("POST", users, map[string]any{"email": "Rauf@Aghali.test", "name": "Rauf", "password": "long enough pw",
		"role": "farmer", "locale": "az", "farm_ids": []int64{e.farmB.ID}}).want(http.StatusCreated).decode(&u)
	if u.Email != "rauf@aghali.test" || u.Role != RoleFarmer || u.Locale != "az" || len(u.FarmIDs) != 1 || u.FarmIDs[0] != e.farmB.ID {
		t.Errorf("created %+v", u)
	}
	rows := e.auditRows("create")
	if len(rows) != 1 || rows[0].Entity != "user" || strings.Contains(string(rows[0].Detail), "long enough pw") {
		t.Errorf("audit %+v (and never the password)", rows)
	}

	// The new farmer logs in and sees farm B only.
	c := e.anon()
	c.do("POST", "/api/v1/auth/login", map[string]string{"email": "rauf@aghali.test", "password": "long enough pw"}).want(http.StatusOK)
	var farms []farmJSON
	c.do("GET", "/api/v1/farms", nil).want(http.StatusOK).decode(&farms)
	if len(farms) != 1 || farms[0].ID != e.farmB.ID {
		t.Errorf("new farmer sees %+v", farms)
	}

	bad := []struct {
		body  map[string]any
		want  int
		field string
	}{
		{map[string]any{"email": "rauf@aghali.test", "password": "long enough pw", "role": "viewer"}, 409, ""},
		{map[string]any{"email": "x@aghali.test", "password": "short", "role": "viewer"}, 422, "password"},
		{map[string]any{"email": "not-an-address", "password": "long enough pw", "role": "viewer"}, 422, "email"},
		{map[string]any{"email": "y@aghali.test", "password": "long enough pw", "role": "owner"}, 422, "role"},
		{map[string]any{"email": "z@aghali.test", "password": "long enough pw", "role": "viewer", "locale": "fr"}, 422, "locale"},
		{map[string]any{"email": "w@aghali.test", "password": "long enough pw", "role": "viewer", "farm_ids": []int64{9999}}, 422, "farm_ids"},
	}
	for _, b := range bad {
		p := admin.do("POST", users, b.body).problem(b.want)
		if b.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != b.field) {
			t.Errorf("%v: %+v, want a problem with %s", b.body, p, b.field)
		}
	}

	// Change role and farms; the list shows it.
	one := fmt.Sprintf("%s/%d", users, u.ID)
	admin.do("PATCH", one, map[string]any{"role": "viewer", "farm_ids": []int64{e.farmA.ID, e.farmB.ID}}).want(http.StatusOK).decode(&u)
	if u.Role != RoleViewer || len(u.FarmIDs) != 2 {
		t.Errorf("after PATCH %+v", u)
	}
	var list []memberJSON
	admin.do("GET", users, nil).want(http.StatusOK).decode(&list)
	if len(list) != 5 {
		t.Errorf("%d users listed, want 5", len(list))
	}

	// A new password ends the user's sessions; disabling keeps them out.
	admin.do("PATCH", one, map[string]any{"password": "another long password"}).want(http.StatusOK)
	c.do("GET", "/api/v1/farms", nil).problem(http.StatusUnauthorized)
	admin.do("PATCH", one, map[string]any{"disabled": true}).want(http.StatusOK)
	e.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "rauf@aghali.test", "password": "another long password"}).problem(http.StatusUnauthorized)

	admin.do("DELETE", one, nil).want(http.StatusNoContent)
	admin.do("DELETE", one, nil).problem(http.StatusNotFound)
	var grants int
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM farm_access WHERE user_id = $1`, u.ID).Scan(&grants); err != nil || grants != 0 {
		t.Errorf("grants after removal: %d, %v", grants, err)
	}
}

func TestOrganisationKeepsAnAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	admin := e.login("admin@aghali.test")
	self := fmt.Sprintf("/api/v1/orgs/%d/users/%d", e.org, e.admin.ID)
	admin.do("PATCH", self, map[string]any{"role": "viewer"}).problem(http.StatusConflict)
	admin.do("PATCH", self, map[string]any{"disabled": true}).problem(http.StatusConflict)
	admin.do("DELETE", self, nil).problem(http.StatusConflict)

	// With a second admin the first may step down.
	admin.do("PATCH", fmt.Sprintf("/api/v1/orgs/%d/users/%d", e.org, e.agro.ID), map[string]any{"role": "admin"}).want(http.StatusOK)
	admin.do("PATCH", self, map[string]any{"role": "viewer"}).want(http.StatusOK)
	admin.do("GET", fmt.Sprintf("/api/v1/orgs/%d/users", e.org), nil).problem(http.StatusForbidden)
}

func TestAdminCannotTakeOverAnotherOrganisationsMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	other, err := CreateOrganisation(ctx, e.db, "Cooperative")
	if err != nil {
		t.Fatal(err)
	}
	// The agronomist also works for the cooperative.
	if err := AddMembership(ctx, e.db, e.agro.ID, other, RoleViewer); err != nil {
		t.Fatal(err)
	}
	admin := e.login("admin@aghali.test")
	one := fmt.Sprintf("/api/v1/orgs/%d/users/%d", e.org, e.agro.ID)
	admin.do("PATCH", one, map[string]any{"password": "taken over now"}).problem(http.StatusForbidden)
	admin.do("PATCH", one, map[string]any{"disabled": true}).problem(http.StatusForbidden)
	admin.do("PATCH", one, map[string]any{"role": "viewer"}).want(http.StatusOK) // the membership is this org's
	e.login("agro@aghali.test")                                                  // the password is unchanged
}

func TestSeedingFunctions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := CreateOrganisation(ctx, e.db, "Aghali village"); err == nil {
		t.Error("duplicate organisation accepted")
	}
	if _, err := CreateUser(ctx, e.db, UserInput{Email: "a@b.test", Password: "123456789", OrgID: e.org, Role: RoleViewer}); err == nil {
		t.Error("9-character password accepted")
	}
	if _, err := CreateUser(ctx, e.db, UserInput{Email: "a@b.test", Password: "1234567890", OrgID: e.org}); err == nil {
		t.Error("membership without a role accepted")
	}
	u, err := CreateUser(ctx, e.db, UserInput{Email: "a@b.test", Password: "1234567890"})
	if err != nil {
		t.Fatal(err)
	}
	if err := GrantFarms(ctx, e.db, u.ID, []int64{e.farmA.ID}); err == nil {
		t.Error("farm granted to someone outside its organisation")
	}
	if err := AddMembership(ctx, e.db, u.ID, e.org, RoleFarmer); err != nil {
		t.Fatal(err)
	}
	if err := GrantFarms(ctx, e.db, u.ID, []int64{e.farmA.ID, e.farmA.ID}); err != nil {
		t.Fatal(err)
	}
	if err := SetPassword(ctx, e.db, u.ID, "0987654321"); err != nil {
		t.Fatal(err)
	}
	got, err := UserByEmail(ctx, e.db, "A@B.test")
	if err != nil || got.ID != u.ID {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	c := e.anon()
	c.do("POST", "/api/v1/auth/login", map[string]string{"email": "a@b.test", "password": "0987654321"}).want(http.StatusOK)
	c.do("GET", fmt.Sprintf("/api/v1/farms/%d", e.farmA.ID), nil).want(http.StatusOK)
	c.do("GET", fmt.Sprintf("/api/v1/farms/%d", e.farmB.ID), nil).problem(http.StatusNotFound)
}
