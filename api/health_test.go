package api

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aghali/aghali/geo"
)

func TestHealthReadinessMetricsAndWeb(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	e := newEnv(t, func(c *Config) {
		c.Ready = func(ctx context.Context) error {
			if down.Load() {
				return errors.New("broker: dial tcp 10.0.0.7:1883: connection refused")
			}
			return nil
		}
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "aghali_up 1")
		})
		c.Web = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "web app at "+r.URL.Path)
		})
	})
	c := e.anon()
	c.do("GET", "/healthz", nil).want(http.StatusOK)
	c.do("GET", "/readyz", nil).want(http.StatusOK)
	down.Store(true)
	r := c.do("GET", "/readyz", nil)
	r.problem(http.StatusServiceUnavailable)
	if strings.Contains(string(r.body), "10.0.0.7") {
		t.Errorf("readiness failure leaks its cause: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "10.0.0.7") {
		t.Error("readiness failure not logged")
	}
	if r := c.do("GET", "/metrics", nil).want(http.StatusOK); string(r.body) != "aghali_up 1\n" {
		t.Errorf("/metrics = %q", r.body)
	}
	if r := c.do("GET", "/fields/12", nil).want(http.StatusOK); string(r.body) != "web app at /fields/12" {
		t.Errorf("web app: %q", r.body)
	}
	if r := c.do("GET", "/", nil).want(http.StatusOK); string(r.body) != "web app at /" {
		t.Errorf("web app at /: %q", r.body)
	}
	c.do("GET", "/api/v1/nothing-here", nil).problem(http.StatusNotFound) // never the web app
}

func TestWithoutWebOrMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.anon()
	c.do("GET", "/", nil).problem(http.StatusNotFound)
	c.do("GET", "/metrics", nil).problem(http.StatusNotFound)
	c.do("GET", "/readyz", nil).want(http.StatusOK) // default: the database answers
}

func TestLargeJSONIsGzipped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	store := geo.NewStore(e.db)
	mp, err := geo.ParseMultiPolygon([]byte(squareCW))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := store.CreateField(context.Background(), geo.Field{FarmID: e.farmA.ID, Name: fmt.Sprintf("Plot %d", i), Geom: mp}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.login("viewer@aghali.test")
	path := fmt.Sprintf("/api/v1/farms/%d/fields", e.farmA.ID) // the map compresses itself: farm_map_test.go
	r := c.doWith("GET", path, nil, http.Header{"Accept-Encoding": {"gzip"}}).want(http.StatusOK)
	if r.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", r.header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(strings.NewReader(string(r.body)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !strings.Contains(string(plain), `"Plot 19"`) || len(plain) <= len(r.body) {
		t.Errorf("decompressed %d bytes from %d (%v)", len(plain), len(r.body), err)
	}
	// Small answers are not worth compressing.
	small := c.doWith("GET", "/api/v1/orgs", nil, http.Header{"Accept-Encoding": {"gzip"}}).want(http.StatusOK)
	if small.header.Get("Content-Encoding") != "" {
		t.Errorf("small answer compressed")
	}
}

func TestHTTPServerServesTheHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	hs := e.srv.HTTPServer("127.0.0.1:0")
	if hs.ReadHeaderTimeout == 0 || hs.IdleTimeout == 0 || hs.Handler == nil {
		t.Fatalf("server %+v lacks timeouts or handler", hs)
	}
	ln, err := net.Listen("tcp", hs.Addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d", res.StatusCode)
	}
	if err := hs.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
}
