package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
	"github.com/aghali/aghali/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const password = "correct horse battery"

// env is a server on a fresh database with one organisation, two farms and one user per role:
// the farmer and the viewer are granted farm A only.
type env struct {
	t      testing.TB
	db     *pgxpool.Pool
	srv    *Server
	url    string
	clock  *testClock
	logs   *syncBuffer
	org    int64
	farmA  geo.Farm
	farmB  geo.Farm
	admin  User
	agro   User
	farmer User
	viewer User
	// nodes and irr are the stores the server was given, for tests to set things up directly.
	nodes *fieldnodes.Store
	irr   *irrigation.Store
}

func newEnv(t testing.TB, configure func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: pgtest.NewDB(t), clock: &testClock{now: time.Date(2026, 7, 6, 5, 0, 0, 0, time.UTC)}, logs: &syncBuffer{}}
	var err error
	if e.org, err = CreateOrganisation(ctx, e.db, "Aghali village"); err != nil {
		t.Fatal(err)
	}
	store := geo.NewStore(e.db)
	if e.farmA, err = store.CreateFarm(ctx, geo.Farm{OrgID: e.org, Name: "Hakari bank", Location: geo.NewPoint(46.63, 39.09)}); err != nil {
		t.Fatal(err)
	}
	if e.farmB, err = store.CreateFarm(ctx, geo.Farm{OrgID: e.org, Name: "Upper terraces"}); err != nil {
		t.Fatal(err)
	}
	mk := func(email string, role Role, farms ...int64) User {
		u, err := CreateUser(ctx, e.db, UserInput{Email: email, Name: strings.Split(email, "@")[0], Password: password,
			OrgID: e.org, Role: role, FarmIDs: farms})
		if err != nil {
			t.Fatalf("create %s: %v", email, err)
		}
		return u
	}
	e.admin = mk("admin@aghali.test", RoleAdmin)
	e.agro = mk("agro@aghali.test", RoleAgronomist)
	e.farmer = mk("farmer@aghali.test", RoleFarmer, e.farmA.ID)
	e.viewer = mk("viewer@aghali.test", RoleViewer, e.farmA.ID)

	if e.nodes, err = fieldnodes.NewStore(fieldnodes.StoreConfig{Pool: e.db, Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if e.irr, err = irrigation.NewStore(e.db, e.nodes, irrigation.Config{Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		DB:         e.db,
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        e.clock.Now,
		Nodes:      e.nodes,
		Irrigation: e.irr,
	}
	if configure != nil {
		configure(&cfg)
	}
	if e.srv, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(e.srv.Handler())
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

// syncBuffer collects the server's log lines, written from its goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// client is a browser (cookie jar, CSRF token) or a script (bearer token).
type client struct {
	t      testing.TB
	base   string
	hc     *http.Client
	csrf   string
	bearer string
	header http.Header // added to every request
}

func (e *env) anon() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &client{t: e.t, base: e.url, hc: &http.Client{Jar: jar}, header: http.Header{}}
}

// login logs in as email and keeps the session's CSRF token.
func (e *env) login(email string) *client {
	e.t.Helper()
	c := e.anon()
	r := c.do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password})
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", email, r.status, r.body)
	}
	var s struct {
		CSRF string `json:"csrf_token"`
	}
	r.decode(&s)
	c.csrf = s.CSRF
	return c
}

type response struct {
	t      testing.TB
	status int
	header http.Header
	body   []byte
}

// do sends body (a string as it is, an io.Reader chunked, anything else as JSON) with the CSRF token of the session.
func (c *client) do(method, path string, body any) *response {
	c.t.Helper()
	return c.doWith(method, path, body, nil)
}

func (c *client) doWith(method, path string, body any, header http.Header) *response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case io.Reader: // sent without Content-Length
		rd = b
	default:
		js, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return &response{t: c.t, status: res.StatusCode, header: res.Header, body: b}
}

func (r *response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.body, err)
	}
}

// want fails the test unless the status is status.
func (r *response) want(status int) *response {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// problem checks the response is problem+json with status and returns it.
func (r *response) problem(status int) Problem {
	r.t.Helper()
	r.want(status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		r.t.Fatalf("Content-Type %q, want application/problem+json", ct)
	}
	var p Problem
	r.decode(&p)
	if p.Status != status || !strings.HasPrefix(p.Type, problemBase) || p.Title == "" {
		r.t.Fatalf("problem %+v: want status %d, a type under %s and a title", p, status, problemBase)
	}
	return p
}

// auditRows returns the audit entries with that action, oldest first.
func (e *env) auditRows(action string) []auditJSON {
	e.t.Helper()
	rows, err := e.db.Query(context.Background(), `SELECT id, at, org_id, user_id, actor, action, entity, entity_id, detail
		FROM audit_log WHERE action = $1 ORDER BY id`, action)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []auditJSON
	for rows.Next() {
		var a auditJSON
		if err := rows.Scan(&a.ID, &a.At, &a.OrgID, &a.UserID, &a.Actor, &a.Action, &a.Entity, &a.EntityID, &a.Detail); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// A 100 m × 100 m square near Aghali, clockwise (the wrong way round for RFC 7946).
const squareCW = `{"type":"Polygon","coordinates":[[[46.63,39.09],[46.63,39.0909],[46.6312,39.0909],[46.6312,39.09],[46.63,39.09]]]}`

// A bow tie: its edges cross at (46.635, 39.095).
const bowTie = `{"type":"Polygon","coordinates":[[[46.63,39.09],[46.64,39.10],[46.64,39.09],[46.63,39.10],[46.63,39.09]]]}`

func fieldBody(name, geometry string) string {
	return `{"name":"` + name + `","crop":"tomato","geometry":` + geometry + `}`
}
