package web_test

import (
	"encoding/json"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/aghali/aghali/web/browsertest"
)

// TestModulesInTheBrowser checks pieces of the app in isolation, in the browser that runs them:
// the refresh loop's timing rules and the formatting of readings and times per language.
func TestModulesInTheBrowser(t *testing.T) {
	t.Parallel()
	srv := newStandIn().serve(t)
	ctx := browsertest.New(t)
	// Any page of the app gives the modules' origin and import map; it stops at the sign-in form.
	do(t, ctx, "open the app", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(tid("login-form")))

	t.Run("refresher", func(t *testing.T) {
		raw := eval[[]byte](t, ctx, `(async () => {
			const { Refresher } = await import('/js/refresher.js');
			const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
			const setVisibility = (v) => {
				Object.defineProperty(document, 'visibilityState', { value: v, configurable: true });
				document.dispatchEvent(new Event('visibilitychange'));
			};
			const phases = [];
			let runs = 0;
			let fail = false;
			const r = new Refresher(async () => { runs++; if (fail) throw new Error('down'); },
				{ interval: 100, onState: (s) => phases.push([s.phase, s.retryAt ? s.retryAt - Date.now() : 0]) });
			r.start();
			await sleep(350);
			const visibleRuns = runs;
			setVisibility('hidden');
			const before = runs;
			await sleep(300);
			const hiddenRuns = runs - before;
			setVisibility('visible');
			await sleep(30);
			const onReturn = runs - before;
			fail = true;
			r.now();
			await sleep(20);
			const failed = phases.at(-1);
			const atFailure = runs;
			await sleep(300);
			const duringBackoff = runs - atFailure;
			fail = false;
			window.dispatchEvent(new Event('online'));
			await sleep(20);
			const recovered = phases.at(-1)[0];
			r.stop();
			const stoppedAt = runs;
			await sleep(250);
			delete document.visibilityState;
			return { visibleRuns, hiddenRuns, onReturn, failedPhase: failed[0], retryIn: failed[1], duringBackoff, recovered, afterStop: runs - stoppedAt };
		})()`)
		var got struct {
			VisibleRuns, HiddenRuns, OnReturn, RetryIn, DuringBackoff, AfterStop int
			FailedPhase, Recovered                                               string
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got.VisibleRuns < 3 || got.VisibleRuns > 5 {
			t.Errorf("in 350 ms at a 100 ms interval it ran %d times, want 3 to 5", got.VisibleRuns)
		}
		if got.HiddenRuns != 0 {
			t.Errorf("it ran %d times while the page was hidden", got.HiddenRuns)
		}
		if got.OnReturn != 1 {
			t.Errorf("coming back after longer than the interval ran it %d times, want 1 at once", got.OnReturn)
		}
		if got.FailedPhase != "failed" || got.RetryIn < 4000 || got.RetryIn > 5000 {
			t.Errorf("after a failure: phase %q, retry in %d ms; want failed and the first retry in 5 s", got.FailedPhase, got.RetryIn)
		}
		if got.DuringBackoff != 0 {
			t.Errorf("it ran %d times during the back-off", got.DuringBackoff)
		}
		if got.Recovered != "ok" {
			t.Errorf("coming back online: phase %q, want ok", got.Recovered)
		}
		if got.AfterStop != 0 {
			t.Errorf("it ran %d times after stop", got.AfterStop)
		}
	})

	t.Run("formatting", func(t *testing.T) {
		raw := eval[[]byte](t, ctx, `(async () => {
			const i18n = await import('/js/i18n.js');
			const fmt = await import('/js/format.js');
			const ago = (ms) => new Date(Date.now() - ms).toISOString();
			const out = {};
			for (const l of ['az', 'ru', 'en']) {
				i18n.setLang(l);
				out[l] = [
					fmt.metric('soil_vwc', 0.234).text,
					fmt.metric('air_temp_c', -3.25).text,
					fmt.metric('flow_lpm', 1234.5).text,
					fmt.metric('battery_pct', 87).text,
					fmt.metric('wind_dir_deg', 270).text,
					fmt.metric('my_sensor', 1.23456).label + '=' + fmt.metric('my_sensor', 1.23456).text,
					fmt.relative(ago(3 * 60000)),
					fmt.relative(new Date(Date.now() + 2 * 3600000 + 1000).toISOString()),
					fmt.relative(ago(5000)),
					fmt.clock('2020-07-06T05:00:00Z', 'Asia/Baku'),
					fmt.clock(new Date().toISOString().slice(0, 10) + 'T08:00:00Z', 'UTC'),
					fmt.number(null),
				];
			}
			i18n.setLang('en');
			return out;
		})()`)
		var got map[string][]string
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		want := map[string][]string{
			"az": {"23,4%", "-3,3 °C", "1.234,5 l/dəq", "87%", "270°", "my_sensor=1,235", "3 dəq əvvəl", "2 saat sonra", "indicə", "06.07.2020 09:00", "08:00", "–"},
			"ru": {"23,4\u00a0%", "-3,3 °C", "1\u00a0234,5 л/мин", "87\u00a0%", "270°", "my_sensor=1,235", "3 мин назад", "через 2 ч", "только что", "06.07.2020 09:00", "08:00", "–"},
			"en": {"23.4%", "-3.3 °C", "1,234.5 L/min", "87%", "270°", "my_sensor=1.235", "3 min ago", "in 2 h", "just now", "06.07.2020 09:00", "08:00", "–"},
		}
		for l, w := range want {
			for i := range w {
				if i >= len(got[l]) || got[l][i] != w[i] {
					t.Errorf("%s: got %q, want %q", l, got[l], w)
					break
				}
			}
		}
	})
}
