package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBearerTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	browser := e.login("agro@aghali.test")

	var created tokenJSON
	browser.do("POST", "/api/v1/auth/tokens", map[string]any{"name": "weather script", "expires_days": 30}).
		want(http.StatusCreated).decode(&created)
	if !strings.HasPrefix(created.Token, "agh_") || len(created.Token) < 40 {
		t.Fatalf("token %q", created.Token)
	}
	if created.ExpiresAt == nil || !created.ExpiresAt.Equal(e.clock.Now().Add(30*24*time.Hour)) {
		t.Errorf("expires_at %v", created.ExpiresAt)
	}
	// Only the hash is kept.
	var n int
	if err := e.db.QueryRow(ctx, `SELECT count(*) FROM api_tokens WHERE token_hash = $1`, tokenHash(created.Token)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("tokens with the hash: %d, %v", n, err)
	}

	// A script: no cookie, no CSRF header.
	script := e.anon()
	script.bearer = created.Token
	path := "/api/v1/farms/" + strconv.FormatInt(e.farmA.ID, 10) + "/fields"
	script.do("POST", path, fieldBody("By script", squareCW)).want(http.StatusCreated)
	var s sessionJSON
	script.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK).decode(&s)
	if s.User.ID != e.agro.ID || s.CSRFToken != "" {
		t.Errorf("session of a token: %+v", s)
	}
	rows := e.auditRows("create")
	if last := rows[len(rows)-1]; last.Entity != "field" || !strings.Contains(last.Actor, `token "weather script"`) {
		t.Errorf("audit of a token's change: %+v", last)
	}

	script.do("POST", "/api/v1/auth/tokens", map[string]any{"name": "successor"}).problem(http.StatusForbidden)

	var list []tokenJSON
	browser.do("GET", "/api/v1/auth/tokens", nil).want(http.StatusOK).decode(&list)
	if len(list) != 1 || list[0].Token != "" || list[0].Name != "weather script" || list[0].LastUsedAt == nil {
		t.Errorf("list = %+v; want the token without its secret, with last_used_at", list)
	}

	// Others cannot revoke it; its owner can, and then it no longer works.
	other := e.login("admin@aghali.test")
	other.do("DELETE", "/api/v1/auth/tokens/"+strconv.FormatInt(created.ID, 10), nil).problem(http.StatusNotFound)
	browser.do("DELETE", "/api/v1/auth/tokens/"+strconv.FormatInt(created.ID, 10), nil).want(http.StatusNoContent)
	script.do("GET", "/api/v1/farms", nil).problem(http.StatusUnauthorized)
	browser.do("DELETE", "/api/v1/auth/tokens/"+strconv.FormatInt(created.ID, 10), nil).problem(http.StatusNotFound)
	if len(e.auditRows("revoke")) != 1 {
		t.Error("revocation not audited")
	}
}

func TestBearerTokenExpiresAndIsCheckedStrictly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	browser := e.login("viewer@aghali.test")
	var created tokenJSON
	browser.do("POST", "/api/v1/auth/tokens", map[string]any{"name": "short", "expires_days": 1}).want(http.StatusCreated).decode(&created)
	script := e.anon()
	script.bearer = created.Token
	script.do("GET", "/api/v1/farms", nil).want(http.StatusOK)

	wrong := e.anon()
	wrong.bearer = created.Token[:len(created.Token)-1] + "x"
	wrong.do("GET", "/api/v1/farms", nil).problem(http.StatusUnauthorized)
	basic := e.anon()
	basic.header.Set("Authorization", "Basic "+created.Token)
	basic.do("GET", "/api/v1/farms", nil).problem(http.StatusUnauthorized)

	e.clock.Advance(24*time.Hour + time.Second)
	script.do("GET", "/api/v1/farms", nil).problem(http.StatusUnauthorized)

	browser.do("POST", "/api/v1/auth/tokens", map[string]any{"name": "forever", "expires_days": 0}).problem(http.StatusUnprocessableEntity)
	browser.do("POST", "/api/v1/auth/tokens", map[string]any{"name": ""}).problem(http.StatusUnprocessableEntity)
}

func TestCreateTokenForScripts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tok, secret, err := CreateToken(context.Background(), e.db, e.admin.ID, "seed", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ExpiresAt != nil || tok.UserID != e.admin.ID {
		t.Errorf("token %+v", tok)
	}
	script := e.anon()
	script.bearer = secret
	var orgs []orgJSON
	script.do("GET", "/api/v1/orgs", nil).want(http.StatusOK).decode(&orgs)
	if len(orgs) != 1 || orgs[0].Role != RoleAdmin {
		t.Errorf("orgs %+v", orgs)
	}
}
