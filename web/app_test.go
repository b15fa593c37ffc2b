package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/aghali/aghali/web/browsertest"
)

// These tests drive the real app in headless Chromium against the stand-in API (standin_test.go).
// Set AGHALI_SCREENSHOT=docs/screenshot.png to save the phone test's screenshot.

const waitTimeout = 60 * time.Second

func tid(name string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + name + `"]`) }

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until expr is truthy in the page.
func waitJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("Boolean("+expr+")", chromedp.WithPollingTimeout(waitTimeout))); err != nil {
		t.Fatalf("waiting for %s: %v", expr, err)
	}
}

// waitFor polls the Go side (what the stand-in received) until ok.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func signIn(t *testing.T, ctx context.Context, password string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.WaitVisible(tid("login-form")),
		chromedp.SetValue(chromedp.ID("login-email"), testEmail),
		chromedp.SetValue(chromedp.ID("login-password"), password),
		chromedp.Click(tid("login-submit")),
	)
}

func waitMapReady(t *testing.T, ctx context.Context) int {
	t.Helper()
	waitJS(t, ctx, "window.aghaliMapReady === true")
	return eval[int](t, ctx, "Number(document.querySelector('#map').dataset.features)")
}

// tapPoint returns the page coordinates of a map position, once the map canvas has its
// container's size (a panel opening or closing resizes it).
func tapPoint(t *testing.T, ctx context.Context, lonlat [2]float64) (float64, float64) {
	t.Helper()
	waitJS(t, ctx, "Math.round(aghaliMap.getCanvas().getBoundingClientRect().width) === document.querySelector('#map').clientWidth")
	xy := eval[[]float64](t, ctx, fmt.Sprintf(
		"(() => { const p = aghaliMap.project([%f, %f]); const r = document.querySelector('#map').getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; })()",
		lonlat[0], lonlat[1]))
	return xy[0], xy[1]
}

func sheetShows(key string) string {
	return fmt.Sprintf(`!document.querySelector('#sheet').hidden && document.querySelector('#sheet').dataset.key === %q`, key)
}

func checkCommand(t *testing.T, what string, c command, wantBody map[string]any) {
	t.Helper()
	if c.CSRF != testCSRF {
		t.Errorf("%s: X-CSRF-Token %q, want %q", what, c.CSRF, testCSRF)
	}
	if wantBody == nil {
		return
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(c.Body), &got); err != nil {
		t.Fatalf("%s: body %q: %v", what, c.Body, err)
	}
	if !reflect.DeepEqual(got, wantBody) {
		t.Errorf("%s: body %s, want %v", what, c.Body, wantBody)
	}
	if !strings.HasPrefix(c.ContentType, "application/json") {
		t.Errorf("%s: Content-Type %q", what, c.ContentType)
	}
}

func TestAppOnDesktop(t *testing.T) {
	t.Parallel()
	api := newStandIn()
	srv := api.serve(t)
	ctx := browsertest.New(t)

	// A deep link before signing in: the server answers with the app, which asks to sign in.
	do(t, ctx, "open a deep link", chromedp.Navigate(srv.URL+"/farms/7"), chromedp.WaitVisible(tid("login-form")))
	if lang := eval[string](t, ctx, "document.documentElement.lang"); lang != "en" {
		t.Errorf("before sign-in the language is %q, want the browser's en", lang)
	}

	// A wrong password shows the problem's detail.
	signIn(t, ctx, "wrong")
	do(t, ctx, "see the sign-in error", chromedp.WaitVisible(tid("login-error")))
	if msg := eval[string](t, ctx, `document.querySelector('[data-testid="login-error"]').textContent`); msg != "wrong e-mail or password" {
		t.Errorf("sign-in error = %q, want the problem detail", msg)
	}

	signIn(t, ctx, testPassword)
	if n := waitMapReady(t, ctx); n != mapFeatures {
		t.Errorf("map drew %d features, want all %d", n, mapFeatures)
	}
	if path := eval[string](t, ctx, "location.pathname"); path != "/farms/7" {
		t.Errorf("path = %q, want the deep link /farms/7", path)
	}
	if lang := eval[string](t, ctx, "document.documentElement.lang"); lang != "az" {
		t.Errorf("after sign-in the language is %q, want the user's locale az", lang)
	}

	// Every language has every string.
	if missing := eval[[]string](t, ctx, `import('/js/i18n.js').then(m => m.LANGS.filter(l => m.keys(l).join() !== m.keys('en').join()))`); len(missing) > 0 {
		t.Errorf("languages with a different set of strings than en: %v", missing)
	}

	// The alert: badge, list, acknowledge.
	do(t, ctx, "see the alerts badge", chromedp.WaitVisible(tid("alerts-badge")))
	if badge := eval[string](t, ctx, `document.querySelector('[data-testid="alerts-badge"]').textContent`); badge != "1" {
		t.Errorf("alerts badge = %q, want 1", badge)
	}
	do(t, ctx, "open the alerts", chromedp.Click(tid("alerts-button")), chromedp.WaitVisible(tid("alert-list")))
	if text := eval[string](t, ctx, `document.querySelector('[data-testid="alert-list"]').textContent`); !strings.Contains(text, "Sensor north-2 is silent") {
		t.Errorf("alert list = %q, want the open alert", text)
	}
	do(t, ctx, "acknowledge", chromedp.Click(tid("alert-ack")), chromedp.WaitVisible(tid("alert-acked")), chromedp.WaitNotVisible(tid("alerts-badge")))
	_, _, acks := api.recorded()
	if len(acks) != 1 {
		t.Fatalf("stand-in got %d acknowledgements, want 1", len(acks))
	}
	checkCommand(t, "ack", acks[0], nil)
	do(t, ctx, "close the alerts", chromedp.Click(tid("sheet-close")), chromedp.WaitNotVisible(tid("sheet")))

	// Tap valve 31 on the map; its panel shows it closed (in Azerbaijani).
	x, y := tapPoint(t, ctx, valve31)
	do(t, ctx, "tap the valve", chromedp.MouseClickXY(x, y))
	waitJS(t, ctx, sheetShows("valve:31"))
	if state := eval[string](t, ctx, `document.querySelector('[data-testid="valve-state"]').textContent`); state != "Bağlı" {
		t.Errorf("valve state = %q, want Bağlı (closed)", state)
	}

	// Open for 25 minutes: nothing is sent before the confirmation; cancel sends nothing either.
	do(t, ctx, "ask to open",
		chromedp.Focus(chromedp.ID("valve-minutes")),
		chromedp.Evaluate[chromedp.Void]("document.activeElement.select()"),
		chromedp.SendKeys(chromedp.ID("valve-minutes"), "25"),
		chromedp.Click(tid("valve-open")),
		chromedp.WaitVisible(tid("valve-confirm")),
	)
	if q := eval[string](t, ctx, `document.querySelector('[data-testid="valve-question"]').textContent`); !strings.Contains(q, "Klapan N-A") || !strings.Contains(q, "25") {
		t.Errorf("confirmation = %q, want the valve's name and 25 minutes", q)
	}
	do(t, ctx, "cancel", chromedp.Click(tid("valve-cancel")), chromedp.WaitVisible(tid("valve-open")))
	if opens, _, _ := api.recorded(); len(opens) != 0 {
		t.Fatalf("a command was sent without confirmation: %+v", opens)
	}
	do(t, ctx, "open, confirmed",
		chromedp.Click(tid("valve-open")),
		chromedp.WaitVisible(tid("valve-confirm")),
		chromedp.Click(tid("valve-confirm")),
	)
	waitFor(t, "the open command", func() bool { o, _, _ := api.recorded(); return len(o) > 0 })
	opens, _, _ := api.recorded()
	if len(opens) != 1 || opens[0].Valve != 31 {
		t.Fatalf("open commands = %+v, want one for valve 31", opens)
	}
	checkCommand(t, "open", opens[0], map[string]any{"minutes": float64(25)})

	// The refresh after the command shows the valve open, with a Stop.
	waitJS(t, ctx, `document.querySelector('[data-testid="valve-state"][data-state="open"]')`)
	do(t, ctx, "stop, confirmed",
		chromedp.Click(tid("valve-stop")),
		chromedp.WaitVisible(tid("valve-confirm")),
		chromedp.Click(tid("valve-confirm")),
	)
	waitFor(t, "the stop command", func() bool { _, s, _ := api.recorded(); return len(s) > 0 })
	_, stops, _ := api.recorded()
	if len(stops) != 1 || stops[0].Valve != 31 {
		t.Fatalf("stop commands = %+v, want one for valve 31", stops)
	}
	checkCommand(t, "stop", stops[0], nil)
	waitJS(t, ctx, `document.querySelector('[data-testid="valve-state"][data-state="closed"]')`)

	// The server fails: the map stays and the status bar says so; a retry recovers.
	api.setFailMap(true)
	do(t, ctx, "lose the server", chromedp.Evaluate[chromedp.Void]("window.dispatchEvent(new Event('online'))"), chromedp.WaitVisible(tid("status")))
	if st := eval[string](t, ctx, `document.querySelector('[data-testid="status"]').dataset.state + ': ' + document.querySelector('[data-testid="status"]').textContent`); !strings.Contains(st, "offline: ") || !strings.Contains(st, "503") {
		t.Errorf("status bar = %q, want offline with HTTP 503", st)
	}
	if n := eval[int](t, ctx, "Number(document.querySelector('#map').dataset.features)"); n != mapFeatures {
		t.Errorf("after a failed refresh the map shows %d features, want the last good %d", n, mapFeatures)
	}
	api.setFailMap(false)
	do(t, ctx, "retry", chromedp.Click(tid("status-retry")), chromedp.WaitNotVisible(tid("status")))

	// Another farm through the picker, and back with the browser's Back button.
	do(t, ctx, "pick the other farm", chromedp.Evaluate[chromedp.Void](
		`(s => { s.value = '8'; s.dispatchEvent(new Event('change')); })(document.querySelector('[data-testid="farm-select"]'))`))
	if n := waitMapReady(t, ctx); n != 2 {
		t.Errorf("farm 8 drew %d features, want 2", n)
	}
	if path := eval[string](t, ctx, "location.pathname"); path != "/farms/8" {
		t.Errorf("after picking farm 8 the path is %q", path)
	}
	do(t, ctx, "go back", chromedp.NavigateBack())
	if n := waitMapReady(t, ctx); n != mapFeatures {
		t.Errorf("back on farm 7 the map drew %d features, want %d", n, mapFeatures)
	}
	if got := eval[string](t, ctx, `location.pathname + ' ' + document.querySelector('[data-testid="farm-select"]').value`); got != "/farms/7 7" {
		t.Errorf("after Back: %q, want /farms/7 with farm 7 picked", got)
	}

	// Switch to Russian; the choice and the session survive a reload.
	do(t, ctx, "switch to Russian", chromedp.Click(tid("menu-button")), chromedp.WaitVisible(tid("menu-lang")),
		chromedp.Evaluate[chromedp.Void](`(s => { s.value = 'ru'; s.dispatchEvent(new Event('change')); })(document.querySelector('[data-testid="menu-lang"]'))`))
	if got := eval[string](t, ctx, `document.documentElement.lang + ' ' + document.querySelector('[data-testid="list-button"]').textContent`); got != "ru Список" {
		t.Errorf("after switching: %q, want ru Список", got)
	}
	do(t, ctx, "reload", chromedp.Reload())
	if n := waitMapReady(t, ctx); n != mapFeatures {
		t.Errorf("after reload the map drew %d features, want %d", n, mapFeatures)
	}
	if got := eval[string](t, ctx, `document.documentElement.lang + ' ' + document.querySelector('#login-view').hidden`); got != "ru true" {
		t.Errorf("after reload: %q, want ru and no sign-in form", got)
	}

	// Sign out: back to the form, and a reload does not bring the session back.
	do(t, ctx, "sign out", chromedp.Click(tid("menu-button")), chromedp.WaitVisible(tid("logout")), chromedp.Click(tid("logout")), chromedp.WaitVisible(tid("login-form")))
	do(t, ctx, "reload signed out", chromedp.Reload(), chromedp.WaitVisible(tid("login-form")))
}

func TestAppOnPhone(t *testing.T) {
	t.Parallel()
	api := newStandIn()
	srv := api.serve(t)
	ctx := browsertest.New(t, browsertest.Phone(360, 740))

	do(t, ctx, "open the app", chromedp.Navigate(srv.URL+"/"))
	signIn(t, ctx, testPassword)
	if n := waitMapReady(t, ctx); n != mapFeatures {
		t.Errorf("map drew %d features at 360 px, want all %d", n, mapFeatures)
	}
	if path := eval[string](t, ctx, "location.pathname"); path != "/farms/7" {
		t.Errorf("/ went to %q, want the first farm /farms/7", path)
	}
	if w := eval[int](t, ctx, "document.documentElement.scrollWidth"); w > 360 {
		t.Errorf("page is %d px wide at a 360 px viewport", w)
	}
	small := eval[[]string](t, ctx, `['alerts-button', 'menu-button', 'list-button', 'fit-button', 'farm-select']
		.filter(id => { const r = document.querySelector('[data-testid="' + id + '"]').getBoundingClientRect(); return r.height < 44 || r.width < 44; })`)
	if len(small) > 0 {
		t.Errorf("touch targets smaller than 44 px: %v", small)
	}

	// The list: a node's latest readings, in Azerbaijani number format, unknown metrics by name.
	do(t, ctx, "open the list", chromedp.Tap(tid("list-button")), chromedp.WaitVisible(tid("list-node")))
	do(t, ctx, "pick the node", chromedp.Tap(chromedp.CSS(`[data-testid="list-item"][data-key="node:21"]`)))
	waitJS(t, ctx, sheetShows("node:21"))
	latest := eval[string](t, ctx, `document.querySelector('[data-testid="node-latest"]').textContent`)
	for _, want := range []string{"Torpağın temperaturu", "18,2 °C", "leaf_temp_x", "12,3"} {
		if !strings.Contains(latest, want) {
			t.Errorf("node readings %q lack %q", latest, want)
		}
	}

	// Tap the valve on the map (a touch tap): the bottom sheet shows it and leaves the map visible.
	do(t, ctx, "close the sheet", chromedp.Tap(tid("sheet-close")), chromedp.WaitNotVisible(tid("sheet")))
	x, y := tapPoint(t, ctx, valve31)
	do(t, ctx, "tap the valve", chromedp.TapXY(x, y))
	waitJS(t, ctx, sheetShows("valve:31"))
	box := eval[[]float64](t, ctx, `(r => [r.top, r.bottom, r.width])(document.querySelector('#sheet').getBoundingClientRect())`)
	if box[1] < 739 || box[0] < 740*0.3 || box[2] > 360 {
		t.Errorf("sheet at top %.0f bottom %.0f width %.0f; want a bottom sheet leaving most of the map", box[0], box[1], box[2])
	}
	// The map pans the valve clear of the sheet.
	waitJS(t, ctx, `!aghaliMap.isMoving() && (p => p.y > 0 && p.y < document.querySelector('#sheet').getBoundingClientRect().top - document.querySelector('#map').getBoundingClientRect().top)(aghaliMap.project(`+fmt.Sprintf("[%f, %f]", valve31[0], valve31[1])+`))`)
	browsertest.ScreenshotFromEnv(ctx, t, "AGHALI_SCREENSHOT")

	// Open for 30 minutes with the preset.
	do(t, ctx, "open for 30 minutes",
		chromedp.Tap(chromedp.CSS(`[data-minutes="30"]`)),
		chromedp.Tap(tid("valve-open")),
		chromedp.WaitVisible(tid("valve-confirm")),
		chromedp.Tap(tid("valve-confirm")),
	)
	waitFor(t, "the open command", func() bool { o, _, _ := api.recorded(); return len(o) > 0 })
	opens, _, _ := api.recorded()
	checkCommand(t, "open", opens[0], map[string]any{"minutes": float64(30)})
	waitJS(t, ctx, `document.querySelector('[data-testid="valve-state"][data-state="open"]')`)
}
