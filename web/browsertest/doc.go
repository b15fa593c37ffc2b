// Package browsertest starts a real headless Chromium for tests that drive the web app, through
// github.com/chromedp/chromedp. It is used by the web package's own tests and by end-to-end tests
// elsewhere.
//
// Each [New] starts a fresh browser with a fresh temporary profile, so tests share no cookies or
// storage, and stops it when the test ends. The browser is Debian's chromium package at
// /usr/bin/chromium (scripts/setup.sh installs it); without it the test fails, never skips.
//
// The machine running tests may have no network at all: the browser is started with the flags
// that keep it from calling home (background networking, component updates, sync, QUIC), which
// would otherwise retry refused connections for the whole run.
//
// Page problems fail the test: an uncaught exception or unhandled promise rejection, and any
// Content-Security-Policy violation. Every other console message is logged with t.Logf.
package browsertest
