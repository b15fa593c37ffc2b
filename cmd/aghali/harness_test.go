package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/api"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/migrations/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// server is an `aghali serve` (or demo) running in this test process through run().
type server struct {
	t      *testing.T
	http   string // http://127.0.0.1:port
	mqtt   int    // embedded broker's port
	dbURL  string
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs `aghali <cmd>` with its own ports and waits until /readyz says yes. A port
// freePort found may be taken by someone else (another test's PostgreSQL, say) before the server
// binds it: then it tries again with other ports.
func startServer(t *testing.T, cmd string, env map[string]string, args ...string) *server {
	t.Helper()
	for attempt := 1; ; attempt++ {
		s, err := launchServer(t, cmd, env, args...)
		if err == nil {
			return s
		}
		if !strings.Contains(err.Error(), "address already in use") || attempt == 3 {
			t.Fatalf("aghali %s exited while starting: %v\n%s", cmd, err, s.logs.String())
		}
		t.Logf("aghali %s: %v; again with other ports", cmd, err)
	}
}

// launchServer is one attempt of startServer; it returns the server's error if it exits while
// starting.
func launchServer(t *testing.T, cmd string, env map[string]string, args ...string) (*server, error) {
	t.Helper()
	s := &server{t: t, mqtt: freePort(t), done: make(chan error, 1), logs: &syncBuffer{}}
	httpPort := freePort(t)
	s.http = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	vars := map[string]string{
		"AGHALI_HTTP_ADDR":   fmt.Sprintf("127.0.0.1:%d", httpPort),
		"AGHALI_MQTT_LISTEN": fmt.Sprintf("127.0.0.1:%d", s.mqtt),
		"AGHALI_LOG_LEVEL":   "debug",
	}
	for k, v := range env {
		vars[k] = v
	}
	s.dbURL = vars["AGHALI_DATABASE_URL"]
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.done <- run(ctx, append([]string{cmd}, args...), Env{
			Getenv: func(k string) string { return vars[k] }, Stdin: strings.NewReader(""), Stdout: s.logs, Stderr: s.logs,
		})
	}()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", s.logs.String())
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-s.done:
			s.cancel() // it has exited: nothing for the cleanup to stop
			s.cancel = nil
			if err == nil {
				err = errors.New("exited without an error")
			}
			return s, err
		default:
		}
		resp, err := http.Get(s.http + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("aghali %s not ready after 90 s\n%s", cmd, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop is SIGTERM: cancel the context and wait for a clean exit.
func (s *server) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("aghali exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		s.t.Error("aghali did not stop within 60 s of SIGTERM")
	}
}

// client is a logged-in browser-like API client (cookie session + CSRF token).
type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func login(t *testing.T, base, email, password string) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	var sess struct {
		CSRF string `json:"csrf_token"`
	}
	c.do("POST", "/api/v1/auth/login", map[string]string{"email": email, "password": password}, &sess, http.StatusOK)
	c.csrf = sess.CSRF
	return c
}

// do sends a JSON request and decodes the answer into out, failing unless the status is want.
func (c *client) do(method, path string, body, out any, want int) {
	c.t.Helper()
	if code, raw := c.try(method, path, body, out); code != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, code, want, raw)
	}
}

func (c *client) try(method, path string, body, out any) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// newDatabase returns the URL of a fresh migrated database with an organisation and its admin.
func newDatabase(t *testing.T) (url, email, password string) {
	t.Helper()
	url = pgtest.NewDBURL(t)
	ctx := context.Background()
	pool, err := geo.OpenPool(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	org, err := api.CreateOrganisation(ctx, pool, "Aghali")
	if err != nil {
		t.Fatal(err)
	}
	email, password = "admin@example.org", "correct horse battery"
	if _, err := api.CreateUser(ctx, pool, api.UserInput{Email: email, Password: password, OrgID: org, Role: api.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	return url, email, password
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
