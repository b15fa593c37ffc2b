package browsertest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/aghali/aghali/web/browsertest"
)

func page(body string, header ...string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">`+
			`<title>t</title></head><body>`+body+`</body></html>`)
	}))
}

func TestNewDrivesARealPage(t *testing.T) {
	t.Parallel()
	srv := page(`<button id="b" onclick="this.textContent='clicked:'+navigator.language">go</button>`)
	defer srv.Close()
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL), chromedp.Click(chromedp.ID("b"))); err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("b")))
	if err != nil {
		t.Fatal(err)
	}
	if text != "clicked:en-US" {
		t.Errorf("button text = %q, want clicked:en-US (a click, and a fixed browser language)", text)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int]("window.innerWidth"))
	if err != nil {
		t.Fatal(err)
	}
	if width != 1280 {
		t.Errorf("innerWidth = %d, want the default 1280", width)
	}
}

func TestPhoneEmulatesASmallTouchScreen(t *testing.T) {
	t.Parallel()
	srv := page(`<p>phone</p>`)
	defer srv.Close()
	ctx := browsertest.New(t, browsertest.Phone(360, 740))
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		"`${innerWidth}x${innerHeight}@${devicePixelRatio} touch=${'ontouchstart' in window} coarse=${matchMedia('(pointer: coarse)').matches}`"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "360x740@2 touch=true coarse=true"; got != want {
		t.Errorf("phone viewport = %q, want %q", got, want)
	}
}

func TestScreenshotFromEnv(t *testing.T) {
	srv := page(`<h1 style="color:green">shot</h1>`)
	defer srv.Close()
	ctx := browsertest.New(t, browsertest.Viewport(400, 300))
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}

	t.Setenv("BROWSERTEST_SHOT", "")
	if got := browsertest.ScreenshotFromEnv(ctx, t, "BROWSERTEST_SHOT"); got != "" {
		t.Errorf("with the variable empty, ScreenshotFromEnv wrote %q", got)
	}

	want := filepath.Join(t.TempDir(), "sub", "shot.png")
	t.Setenv("BROWSERTEST_SHOT", want)
	if got := browsertest.ScreenshotFromEnv(ctx, t, "BROWSERTEST_SHOT"); got != want {
		t.Fatalf("ScreenshotFromEnv = %q, want %q", got, want)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 200 {
		t.Errorf("screenshot is not a PNG (%d bytes)", len(b))
	}
}

// recorder stands in for a test to observe how the harness reports failures.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errs   []string
	fatals []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) reported(substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range append(r.errs, r.fatals...) {
		if strings.Contains(e, substr) {
			return true
		}
	}
	return false
}

func TestPageProblemsFailTheTest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body, want string
		header           []string
	}{
		{"uncaught exception", `<script>setTimeout(() => { throw new Error("boom-123") })</script>`, "boom-123", nil},
		{"unhandled rejection", `<script>Promise.reject(new Error("nope-456"))</script>`, "nope-456", nil},
		{"CSP violation", `<script>document.title = "inline"</script>`, "CSP violation", []string{"Content-Security-Policy", "script-src 'none'"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := page(tc.body, tc.header...)
			defer srv.Close()
			rec := &recorder{TB: t}
			ctx := browsertest.New(rec)
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(15 * time.Second)
			for !rec.reported(tc.want) {
				if time.Now().After(deadline) {
					t.Fatalf("the harness did not report %q; errors: %q", tc.want, rec.errs)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func TestMissingChromiumFailsWithInstallHint(t *testing.T) {
	t.Setenv("AGHALI_CHROMIUM", filepath.Join(t.TempDir(), "no-chromium-here"))
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		browsertest.New(rec)
		t.Error("New returned without a browser")
	}()
	<-done
	if !rec.reported("install with: sudo apt-get install chromium") {
		t.Errorf("New did not fail with the install hint; fatals: %q", rec.fatals)
	}
}
