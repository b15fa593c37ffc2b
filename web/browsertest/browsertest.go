package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser. The environment
// variable AGHALI_CHROMIUM overrides it (a developer machine with Chromium elsewhere).
const ChromiumPath = "/usr/bin/chromium"

// DefaultTimeout bounds a whole browser session, so a stuck wait fails the test instead of
// hanging until go test's own timeout.
const DefaultTimeout = 5 * time.Minute

type config struct {
	width, height int64
	phone         bool
	timeout       time.Duration
}

// Option changes how [New] sets up the browser.
type Option func(*config)

// Viewport sets a desktop viewport (default 1280×800).
func Viewport(width, height int) Option {
	return func(c *config) { c.width, c.height, c.phone = int64(width), int64(height), false }
}

// Phone emulates a phone held upright: the given CSS viewport (360×740 is a common small Android
// screen), a device pixel ratio of 2, the mobile flag and touch input, so taps send touch events.
func Phone(width, height int) Option {
	return func(c *config) { c.width, c.height, c.phone = int64(width), int64(height), true }
}

// Timeout replaces [DefaultTimeout].
func Timeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

// New starts headless Chromium and returns the context of its one tab, ready for chromedp.Do and
// chromedp.Run. Everything is torn down when the test ends.
func New(t testing.TB, opts ...Option) context.Context {
	t.Helper()
	cfg := config{width: 1280, height: 800, timeout: DefaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	exe := ChromiumPath
	if p := os.Getenv("AGHALI_CHROMIUM"); p != "" {
		exe = p
	}
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("browsertest: Chromium not found at %s (%v); install with: sudo apt-get install chromium (or run make test)", exe, err)
		return nil
	}
	// Registered before the browser's cleanup, so removed after the browser has exited.
	profile := t.TempDir()

	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		// WebGL (MapLibre) in software: recent Chromium no longer falls back to SwiftShader silently.
		chromedp.Flag("enable-unsafe-swiftshader", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.Env("LANGUAGE=en_US:en"),
		chromedp.WindowSize(int(cfg.width), int(cfg.height)),
	)
	base, cancelTimeout := context.WithTimeout(context.Background(), cfg.timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(base, allocOpts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf), chromedp.WithErrorf(t.Logf))

	watched := make(chan struct{})
	watching := false
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		cancelTimeout()
		if watching {
			<-watched
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: starting %s: %v", exe, err)
	}
	console := chromedp.Console(ctx)
	watching = true
	go func() {
		defer close(watched)
		for m, err := range console {
			if err != nil {
				return
			}
			switch {
			case m.IsException():
				t.Errorf("browser: uncaught %s (%s:%d)", m.Text, m.URL, m.Line+1)
			case strings.Contains(m.Text, "Content Security Policy"):
				t.Errorf("browser: CSP violation: %s", m.Text)
			default:
				t.Logf("browser %s: %s", m.Type, m.Text)
			}
		}
	}()

	var emulate []chromedp.EmulateViewportOption
	if cfg.phone {
		emulate = append(emulate, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(cfg.width, cfg.height, emulate...)); err != nil {
		t.Fatalf("browsertest: setting the viewport: %v", err)
	}
	return ctx
}

// Screenshot saves a PNG of the tab's viewport to path, creating its directory.
func Screenshot(ctx context.Context, t testing.TB, path string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("browsertest: screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("browsertest: screenshot: %v", err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("browsertest: screenshot: %v", err)
	}
	t.Logf("browsertest: screenshot saved to %s", path)
}

// ScreenshotFromEnv saves a screenshot to the path named by the environment variable env, when it
// is set (normal runs write nothing). A relative path is taken from the module root, the directory
// holding go.mod, so AGHALI_SCREENSHOT=docs/screenshot.png means the same file from any package.
// It returns the path written, or "".
func ScreenshotFromEnv(ctx context.Context, t testing.TB, env string) string {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		return ""
	}
	if !filepath.IsAbs(path) {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("browsertest: %s=%s: %v", env, path, err)
		}
		path = filepath.Join(root, path)
	}
	Screenshot(ctx, t, path)
	return path
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
