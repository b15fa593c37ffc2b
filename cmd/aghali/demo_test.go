package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/aghali/aghali/api"
	"github.com/aghali/aghali/migrations/pgtest"
	"github.com/aghali/aghali/web/browsertest"
)

func readDemoState(t *testing.T, path string) demoState {
	t.Helper()
	st, ok, err := loadDemoState(path)
	if err != nil || !ok {
		t.Fatalf("demo state %s: ok=%v err=%v", path, ok, err)
	}
	return st
}

func loginOf(t *testing.T, st demoState, role string) demoLogin {
	t.Helper()
	for _, l := range st.Logins {
		if l.Role == role {
			return l
		}
	}
	t.Fatalf("no %s login in the demo state", role)
	return demoLogin{}
}

// `aghali demo` with no database URL runs its own PostgreSQL in the data directory, seeds the
// village once, and finds it again after a restart.
func TestDemoManagedDatabaseSurvivesRestart(t *testing.T) {
	t.Parallel()
	// Not t.TempDir: its parent is private to this user, and PostgreSQL runs as another one
	// when the tests run as root (the cluster would then move to /var/lib/aghali).
	dir, err := os.MkdirTemp("", "aghali-demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := map[string]string{"AGHALI_DATA_DIR": dir}
	srv := startServer(t, "demo", env, "--no-sim")
	state := filepath.Join(dir, "pg", "demo.json")
	st := readDemoState(t, state)
	admin := loginOf(t, st, "admin")
	c := login(t, srv.http, admin.Email, admin.Password)
	var farms []struct{ ID int64 }
	c.do("GET", "/api/v1/farms", nil, &farms, http.StatusOK)
	if len(farms) != 3 {
		t.Fatalf("demo has %d farms, want 3", len(farms))
	}
	srv.stop()

	srv = startServer(t, "demo", env, "--no-sim")
	c = login(t, srv.http, admin.Email, admin.Password) // same password: not seeded again
	c.do("GET", "/api/v1/farms", nil, &farms, http.StatusOK)
	if len(farms) != 3 {
		t.Fatalf("after a restart the demo has %d farms, want 3", len(farms))
	}
}

// The web app in real headless Chromium against the real demo: a farmer logs in, sees the farm
// map drawn from the live API, and opens a valve through the confirmation step.
func TestWebAppOnDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, "demo", map[string]string{"AGHALI_DATABASE_URL": pgtest.NewDBURL(t), "AGHALI_DATA_DIR": dir})
	st := readDemoState(t, filepath.Join(dir, "demo.json"))
	farmer := loginOf(t, st, "farmer")

	ctx := browsertest.New(t, browsertest.Phone(390, 844))
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.http+"/"),
		chromedp.WaitVisible(`[data-testid="login-form"]`),
		chromedp.SetValue("#login-email", farmer.Email),
		chromedp.SetValue("#login-password", farmer.Password),
		chromedp.Click(`[data-testid="login-submit"]`),
	)
	if err == nil {
		_, err = chromedp.Run(ctx, chromedp.Poll[bool](`window.aghaliMapReady === true && Number(document.querySelector('#map').dataset.features) > 0`,
			chromedp.WithPollingTimeout(60*time.Second)))
	}
	if err != nil {
		t.Fatalf("log in and see the map: %v", err)
	}
	features, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#map').dataset.features`))
	if err != nil {
		t.Fatal(err)
	}
	// Hakari Riverside: 2 fields, 4 zones, 4 probes, a weather station, 4 valves, a source.
	if n := atoi(features); n < 10 {
		t.Errorf("map drew %s features, want the whole farm", features)
	}

	// Open the second valve (the first may already be watering, started by its rule) through
	// the list view and the confirmation step.
	err = chromedp.Do(ctx,
		chromedp.Click(`[data-testid="list-button"]`),
		chromedp.WaitVisible(`[data-testid="list-valve"]`),
		chromedp.Click(`[data-testid="list-valve"] li:nth-child(2) [data-testid="list-item"]`),
		chromedp.WaitVisible(`[data-testid="valve-open"]`),
		chromedp.SetValue(`[data-testid="valve-minutes"]`, "12"),
		chromedp.Click(`[data-testid="valve-open"]`),
		chromedp.WaitVisible(`[data-testid="valve-confirm"]`),
		chromedp.Click(`[data-testid="valve-confirm"]`),
	)
	if err != nil {
		t.Fatalf("open a valve: %v", err)
	}
	admin := loginOf(t, st, "admin")
	c := login(t, srv.http, admin.Email, admin.Password)
	eventually(t, 20*time.Second, "a manual run of 12 minutes by the farmer, acked by the simulated controller", func() bool {
		var runs []struct {
			ID        int64  `json:"id"`
			Origin    string `json:"origin"`
			State     string `json:"state"`
			DurationS int    `json:"duration_s"`
			Reason    string `json:"reason"`
		}
		c.do("GET", "/api/v1/farms/1/runs", nil, &runs, http.StatusOK)
		for _, r := range runs {
			if r.Origin == "user" && r.DurationS == 720 && r.State == "open" && strings.Contains(r.Reason, farmer.Email) || strings.Contains(r.Reason, "Elvin") && r.State == "open" {
				return true
			}
		}
		return false
	})
	// The README's picture: the map after a reload, with readings in and a valve watering.
	if _, err := chromedp.Run(ctx, chromedp.Reload()); err == nil {
		_, err = chromedp.Run(ctx, chromedp.Poll[bool](`window.aghaliMapReady === true`, chromedp.WithPollingTimeout(60*time.Second)))
		if err != nil {
			t.Fatalf("map after reload: %v", err)
		}
	}
	browsertest.ScreenshotFromEnv(ctx, t, "AGHALI_SCREENSHOT")
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// `aghali user add` creates the first admin (and the organisation) from the command line.
func TestUserAdd(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDBURL(t)
	var out strings.Builder
	err := run(t.Context(), []string{"user", "add", "--email", "Root@Example.org", "--org", "Aghali", "--role", "admin", "--password-stdin"},
		Env{Getenv: func(k string) string { return map[string]string{"AGHALI_DATABASE_URL": db}[k] }, Stdin: strings.NewReader("long enough secret\n"), Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatalf("user add: %v\n%s", err, out.String())
	}
	srv := startServer(t, "serve", map[string]string{"AGHALI_DATABASE_URL": db})
	c := login(t, srv.http, "root@example.org", "long enough secret")
	var sess struct {
		Memberships []struct {
			OrgName string   `json:"org_name"`
			Role    api.Role `json:"role"`
		} `json:"memberships"`
	}
	c.do("GET", "/api/v1/auth/session", nil, &sess, http.StatusOK)
	if len(sess.Memberships) != 1 || sess.Memberships[0].OrgName != "Aghali" || sess.Memberships[0].Role != api.RoleAdmin {
		t.Fatalf("session = %+v", sess)
	}
	// A short password is refused with a reason.
	err = run(t.Context(), []string{"user", "add", "--email", "b@example.org", "--org", "Aghali", "--role", "viewer", "--password-stdin"},
		Env{Getenv: func(k string) string { return map[string]string{"AGHALI_DATABASE_URL": db}[k] }, Stdin: strings.NewReader("short\n"), Stdout: &out, Stderr: &out})
	if err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("short password: err = %v", err)
	}
}
