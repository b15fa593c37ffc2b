package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLoginSetsSessionCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.anon()
	r := c.do("POST", "/api/v1/auth/login", map[string]string{"email": " Agro@Aghali.test ", "password": password}).want(http.StatusOK)

	var cookie *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == sessionCookie {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatalf("no %s cookie in %v", sessionCookie, r.header["Set-Cookie"])
	}
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" || cookie.Secure {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax, Path=/, not Secure", cookie)
	}
	if len(cookie.Value) < 43 {
		t.Errorf("session token %q is shorter than 32 random bytes", cookie.Value)
	}
	var got sessionJSON
	r.decode(&got)
	if got.User.Email != "agro@aghali.test" || got.CSRFToken == "" || len(got.Memberships) != 1 ||
		got.Memberships[0].Role != RoleAgronomist || got.Memberships[0].OrgName != "Aghali village" {
		t.Errorf("session = %+v", got)
	}

	// Only the SHA-256 of the token is stored.
	var stored int
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE token_hash = $1`,
		tokenHash(cookie.Value)).Scan(&stored); err != nil || stored != 1 {
		t.Errorf("sessions with the token's hash: %d, %v", stored, err)
	}

	c.csrf = got.CSRFToken
	var again sessionJSON
	c.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK).decode(&again)
	if again.User.ID != e.agro.ID || again.CSRFToken != got.CSRFToken {
		t.Errorf("GET /auth/session = %+v", again)
	}

	c.do("POST", "/api/v1/auth/logout", nil).want(http.StatusNoContent)
	c.do("GET", "/api/v1/auth/session", nil).problem(http.StatusUnauthorized)
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM sessions`).Scan(&stored); err != nil || stored != 0 {
		t.Errorf("sessions after logout: %d, %v", stored, err)
	}
	if len(e.auditRows("login")) != 1 || len(e.auditRows("logout")) != 1 {
		t.Errorf("login/logout not audited")
	}
}

func TestSecureCookiesWhenConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.SecureCookies = true })
	r := e.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "agro@aghali.test", "password": password}).want(http.StatusOK)
	if sc := r.header.Get("Set-Cookie"); !strings.Contains(sc, "; Secure") {
		t.Errorf("Set-Cookie %q lacks Secure", sc)
	}
}

func TestLoginFailuresLookAlikeAndAreAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.db.Exec(ctx, `UPDATE users SET disabled = true WHERE id = $1`, e.viewer.ID); err != nil {
		t.Fatal(err)
	}
	attempts := map[string]map[string]string{
		"wrong password":   {"email": "agro@aghali.test", "password": "not the password"},
		"unknown e-mail":   {"email": "nobody@aghali.test", "password": password},
		"account disabled": {"email": "viewer@aghali.test", "password": password},
	}
	var details []string
	for reason, body := range attempts {
		r := e.anon().do("POST", "/api/v1/auth/login", body)
		p := r.problem(http.StatusUnauthorized)
		details = append(details, p.Detail)
		if len(r.header["Set-Cookie"]) != 0 {
			t.Errorf("%s: a cookie was set", reason)
		}
		if !strings.Contains(e.logs.String(), "reason=\""+reason+"\"") {
			t.Errorf("%s: not logged; log:\n%s", reason, e.logs.String())
		}
	}
	if details[0] != details[1] || details[1] != details[2] {
		t.Errorf("failures are distinguishable: %q", details)
	}
	rows := e.auditRows("login_failed")
	if len(rows) != 3 {
		t.Fatalf("%d login_failed audit rows, want 3", len(rows))
	}
	actors := map[string]bool{}
	for _, r := range rows {
		actors[r.Actor] = true
		if !strings.Contains(string(r.Detail), `"reason"`) {
			t.Errorf("audit detail %s lacks the reason", r.Detail)
		}
	}
	if !actors["nobody@aghali.test"] || !actors["agro@aghali.test"] {
		t.Errorf("audit actors %v", actors)
	}
}

func TestLoginRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.LoginRate = LoginRate{PerAddress: RateLimit{Burst: 3, Every: time.Minute}, PerEmail: RateLimit{Burst: -1}}
	})
	bad := map[string]string{"email": "agro@aghali.test", "password": "wrong password!"}
	for i := range 3 {
		if r := e.anon().do("POST", "/api/v1/auth/login", bad); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, r.status)
		}
	}
	// Past the limit even the right password is refused, with Retry-After.
	r := e.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "farmer@aghali.test", "password": password})
	p := r.problem(http.StatusTooManyRequests)
	if p.Type != problemBase+"rate-limited" {
		t.Errorf("type %q", p.Type)
	}
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 60 {
		t.Errorf("Retry-After %q, want 1..60 seconds", r.header.Get("Retry-After"))
	}
	// A minute later one more attempt is allowed.
	e.clock.Advance(time.Minute)
	e.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "farmer@aghali.test", "password": password}).want(http.StatusOK)
	e.anon().do("POST", "/api/v1/auth/login", map[string]string{"email": "farmer@aghali.test", "password": password}).problem(http.StatusTooManyRequests)
}

func TestLoginRateLimitPerEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.TrustProxyHeaders = true // the test's requests come through "proxies" with many client addresses
		c.LoginRate = LoginRate{PerEmail: RateLimit{Burst: 2, Every: time.Hour}}
	})
	bad := map[string]string{"email": "admin@aghali.test", "password": "guess guess guess"}
	from := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
	e.anon().doWith("POST", "/api/v1/auth/login", bad, from("203.0.113.1")).want(http.StatusUnauthorized)
	e.anon().doWith("POST", "/api/v1/auth/login", bad, from("203.0.113.2")).want(http.StatusUnauthorized)
	r := e.anon().doWith("POST", "/api/v1/auth/login", bad, from("203.0.113.3"))
	r.problem(http.StatusTooManyRequests)
	if secs, _ := strconv.Atoi(r.header.Get("Retry-After")); secs < 3500 || secs > 3600 {
		t.Errorf("Retry-After %q, want about an hour", r.header.Get("Retry-After"))
	}
	// Other accounts are unaffected.
	e.anon().doWith("POST", "/api/v1/auth/login", map[string]string{"email": "agro@aghali.test", "password": password},
		from("203.0.113.3")).want(http.StatusOK)
}

func TestSessionSlidesAndExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.SessionIdle = time.Hour
		c.SessionMaxAge = 3 * time.Hour
	})
	c := e.login("viewer@aghali.test")
	for range 3 { // used every 50 minutes: alive for 2½ hours although idle is 1 hour
		e.clock.Advance(50 * time.Minute)
		c.do("GET", "/api/v1/auth/session", nil).want(http.StatusOK)
	}
	e.clock.Advance(50 * time.Minute) // 3h20m after login: past the maximum age
	c.do("GET", "/api/v1/auth/session", nil).problem(http.StatusUnauthorized)

	idle := e.login("viewer@aghali.test")
	e.clock.Advance(61 * time.Minute)
	idle.do("GET", "/api/v1/auth/session", nil).problem(http.StatusUnauthorized)
}

func TestCSRFRequiredForCookieAuthenticatedWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.login("agro@aghali.test")
	path := "/api/v1/farms/" + strconv.FormatInt(e.farmA.ID, 10) + "/fields"

	token := c.csrf
	c.csrf = ""
	p := c.do("POST", path, fieldBody("North", squareCW)).problem(http.StatusForbidden)
	if p.Type != problemBase+"csrf" || !strings.Contains(p.Detail, "X-CSRF-Token") {
		t.Errorf("without token: %+v", p)
	}
	c.csrf = "x" + token[1:]
	c.do("POST", path, fieldBody("North", squareCW)).problem(http.StatusForbidden)

	c.csrf = token
	foreign := http.Header{"Origin": {"https://evil.example"}}
	c.doWith("POST", path, fieldBody("North", squareCW), foreign).problem(http.StatusForbidden)

	// GET needs no token; the right token from the page's own origin works.
	c.csrf = ""
	c.do("GET", path, nil).want(http.StatusOK)
	c.csrf = token
	c.doWith("POST", path, fieldBody("North", squareCW), http.Header{"Origin": {e.url}}).want(http.StatusCreated)

	var n int
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM fields`).Scan(&n); err != nil || n != 1 {
		t.Errorf("fields stored: %d, %v; want only the one with the token", n, err)
	}
}

func TestTrustedOriginMayPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.TrustedOrigins = []string{"https://app.aghali.example/"} })
	c := e.login("agro@aghali.test")
	path := "/api/v1/farms/" + strconv.FormatInt(e.farmA.ID, 10) + "/fields"
	c.doWith("POST", path, fieldBody("North", squareCW), http.Header{"Origin": {"https://app.aghali.example"}}).want(http.StatusCreated)
	c.doWith("POST", path, fieldBody("South", squareCW), http.Header{"Origin": {"https://other.example"}}).problem(http.StatusForbidden)
}

func TestLoginFromForeignOriginRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.anon().doWith("POST", "/api/v1/auth/login", map[string]string{"email": "agro@aghali.test", "password": password},
		http.Header{"Origin": {"https://evil.example"}}).problem(http.StatusForbidden)
}
