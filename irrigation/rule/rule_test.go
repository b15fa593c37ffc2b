package rule_test

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/irrigation/rule"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// Conditions that must be refused when saved, each with where and why.
func TestCompileErrorsGolden(t *testing.T) {
	sources := []string{
		``,
		`   `,
		`foo > 1`,
		`mean(metric, "1h") < 0.2`,
		`mean("soil_vwc") < 0.2`,
		`mean("Soil VWC", "1h") < 0.2`,
		`mean("soil_vwc", "1y") < 0.2`,
		`mean("soil_vwc", "0s") < 0.2`,
		`mean("soil_vwc", "40d") < 0.2`,
		`mean("soil_vwc", "1h", "field") < 0.2`,
		`mean("soil_vwc", "1h", "zone", "x") < 0.2`,
		`last() > 1`,
		`mean("soil_vwc", "1h") <`,
		`mean("soil_vwc", "1h") < 0.18 &&`,
		"rain_24h < 2 &&\n  mean(\"soil_vwc\", \"1h\") < 0.18 &&\n  frost",
		`hour`,
		`rain_24h + 1`,
		`weekday > 3`,
		`hour == "5"`,
		`1..10 == 1`,
		`repeat("x", 1000000) != ""`,
		`len(weekday) == 3`,
		`map([1, 2], # * 2) == [2, 4]`,
		`let x = 1; x > 0`,
		`{"a": 1}.a == 1`,
		`rain_24h == nil`,
		`default(rain_24h) < 2`,
		`max() > 1`,
		`now() > 1`,
		`env["rain_24h"] > 1`,
		`__series["x"] > 1`,
		`mean("soil_vwc", "1h") < 0.2 and unknownfn(1)`,
	}
	var b strings.Builder
	for _, src := range sources {
		_, err := rule.Compile(src)
		var e *rule.Error
		if !errors.As(err, &e) {
			t.Fatalf("%q: error %v (%T), want *rule.Error", src, err, err)
		}
		if e.Line < 1 || e.Column < 1 {
			t.Errorf("%q: position %d:%d", src, e.Line, e.Column)
		}
		fmt.Fprintf(&b, "%q\n  %d:%d %s\n", src, e.Line, e.Column, e.Message)
		if e.Snippet != "" {
			for _, l := range strings.Split(e.Snippet, "\n") {
				fmt.Fprintf(&b, "  %s\n", l)
			}
		}
	}
	golden(t, "compile_errors.golden", b.String())
}

// long builds a condition with n comparisons.
func long(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("hour != %d", i%24)
	}
	return strings.Join(parts, " && ")
}

func TestCompileBoundsCost(t *testing.T) {
	if _, err := rule.Compile(long(100)); err == nil {
		t.Error("a condition of more than MaxNodes nodes compiled")
	}
	if _, err := rule.Compile(long(10)); err != nil {
		t.Errorf("a modest condition was refused: %v", err)
	}
	many := make([]string, rule.MaxSeries+1)
	for i := range many {
		many[i] = fmt.Sprintf(`mean("m%d", "1h") > 0`, i)
	}
	if _, err := rule.Compile(strings.Join(many, " || ")); err == nil {
		t.Error("a condition with more than MaxSeries reading functions compiled")
	}
	if _, err := rule.Compile(strings.Repeat(" ", rule.MaxSourceLen) + "hour > 1"); err == nil {
		t.Error("a condition longer than MaxSourceLen compiled")
	}
}

// facts is a set of facts for the evaluation table.
func facts() rule.Facts {
	f := rule.Facts{Vars: map[string]rule.Value{}, Series: map[rule.Series]rule.Value{}}
	for _, v := range rule.Vars() {
		switch v.Kind {
		case rule.Number:
			f.Vars[v.Name] = rule.NumberValue(0)
		case rule.Integer:
			f.Vars[v.Name] = rule.Value{V: 0}
		case rule.Bool:
			f.Vars[v.Name] = rule.Value{V: false}
		case rule.Text:
			f.Vars[v.Name] = rule.Value{V: ""}
		}
	}
	set := func(name string, v any) { f.Vars[name] = rule.Value{V: v} }
	set(rule.VarRain24h, 0.4)
	set(rule.VarET0Today, 5.8)
	set(rule.VarDepletion, 31.5)
	set(rule.VarRAW, 30.0)
	set(rule.VarTAW, 75.0)
	set(rule.VarNeedsWater, true)
	set(rule.VarHour, 5)
	set(rule.VarTimeOfDay, 5.5)
	set(rule.VarWeekday, "mon")
	set(rule.VarSunrise, 5.62)
	set(rule.VarHoursSinceIrr, 51.0)
	f.Vars[rule.VarForecastRain24h] = rule.Missing("no forecast source")
	zone := func(fn, metric, window string, v float64, n int) {
		d, _ := rule.ParseDuration(window)
		f.Series[rule.Series{Func: fn, Metric: metric, Window: d, Scope: rule.ScopeZone}] = rule.Value{V: v, N: n}
	}
	zone("mean", "soil_vwc", "1h", 0.152, 3)
	zone("min", "soil_vwc", "1h", 0.149, 3)
	zone("last", "soil_vwc", "1d", 0.151, 1)
	zone("trend", "soil_vwc", "6h", -0.004, 24)
	zone("count", "soil_vwc", "1h", 3, 3)
	f.Series[rule.Series{Func: "min", Metric: "air_temp_c", Window: 3 * time.Hour, Scope: rule.ScopeFarm}] = rule.Value{V: 1.5, N: 12, Note: "2 nodes"}
	f.Series[rule.Series{Func: "mean", Metric: "leaf_wetness", Window: time.Hour, Scope: rule.ScopeZone}] = rule.Missing("")
	f.Series[rule.Series{Func: "count", Metric: "leaf_wetness", Window: time.Hour, Scope: rule.ScopeZone}] = rule.Missing("")
	return f
}

func TestEvalGolden(t *testing.T) {
	sources := []string{
		`mean("soil_vwc", "1h") < 0.18`,
		`mean("soil_vwc", "1h") < 0.15`,
		`mean("soil_vwc", "1h") < 0.18 && rain_24h < 2`,
		`min("soil_vwc", "1h") < 0.15 or last("soil_vwc") < 0.15`,
		`trend("soil_vwc", "6h") < -0.002 and hour >= 5 and hour < 9`,
		`min("air_temp_c", "3h", "farm") <= 2`,
		`depletion_mm >= raw_mm`,
		`needs_water && et0_today > 5`,
		`depletion_mm / taw_mm > 0.4`,
		`weekday in ["sat", "sun"]`,
		`weekday not in ["sat", "sun"] && time_of_day >= sunrise - 1`,
		`hours_since_irrigation > 48`,
		`max(rain_24h, 0.5) < 1 && min(hour, 3) == 3`,
		`abs(trend("soil_vwc", "6h")) > 0.001`,
		`round(depletion_mm) == 32`,
		`forecast_rain_24h < 5`,
		`default(forecast_rain_24h, 0) < 5`,
		`mean("leaf_wetness", "1h") > 0.5`,
		`count("leaf_wetness", "1h") == 0`,
		`count("soil_vwc", "1h") >= 3 and mean("soil_vwc", "1h") < 0.2`,
		`hour >= 5 ? mean("soil_vwc", "1h") < 0.2 : false`,
		"rain_24h < 2 &&\n  mean(\"soil_vwc\", \"1h\") < 0.18",
	}
	var b strings.Builder
	for _, src := range sources {
		p, err := rule.Compile(src)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		o, err := p.Eval(facts())
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if !o.Known && o.Holds {
			t.Errorf("%q: unknown but holds", src)
		}
		fmt.Fprintf(&b, "known=%v holds=%v\t%s\n", o.Known, o.Holds, o.Explain(p))
	}
	golden(t, "eval.golden", b.String())
}

func TestEvalNeedsEveryFact(t *testing.T) {
	p, err := rule.Compile(`mean("soil_vwc", "1h") < 0.18 && rain_24h < 2`)
	if err != nil {
		t.Fatal(err)
	}
	f := facts()
	delete(f.Vars, rule.VarRain24h)
	if _, err := p.Eval(f); !errors.Is(err, rule.ErrMissingFact) {
		t.Errorf("eval without rain_24h: %v", err)
	}
	if got := p.Series(); len(got) != 1 || got[0].Key() != `mean("soil_vwc", "1h")` {
		t.Errorf("series = %v", got)
	}
	if got := p.Vars(); len(got) != 1 || got[0] != rule.VarRain24h || !p.Uses(rule.VarRain24h) {
		t.Errorf("vars = %v", got)
	}
}

func TestNaNNeverHolds(t *testing.T) {
	p, err := rule.Compile(`!(default(mean("soil_vwc", "1h"), 1) >= 0.18)`)
	if err != nil {
		t.Fatal(err)
	}
	f := facts()
	for s := range f.Series {
		if s.Metric == "soil_vwc" && s.Func == "mean" {
			f.Series[s] = rule.Value{V: math.NaN(), Missing: true}
		}
	}
	o, err := p.Eval(f)
	if err != nil || !o.Known || o.Holds {
		t.Errorf("default() of a missing value: %+v, %v", o, err)
	}
}

func TestThreshold(t *testing.T) {
	cases := []struct {
		metric, agg, op string
		threshold       float64
		window          time.Duration
		want            string
	}{
		{"soil_vwc", "mean", "<", 0.18, time.Hour, `mean("soil_vwc", "1h") < 0.18`},
		{"air_temp_c", "max", ">=", 35, 90 * time.Minute, `max("air_temp_c", "1h30m") >= 35`},
		{"air_temp_c", "min", "<=", -2.5, 12 * time.Hour, `min("air_temp_c", "12h") <= -2.5`},
		{"water_level_m", "last", ">", 1.25, 15 * time.Minute, `last("water_level_m", "15m") > 1.25`},
		{"soil_ec_ds_m", "mean", "<", 0.00042, 2 * 24 * time.Hour, `mean("soil_ec_ds_m", "2d") < 0.00042`},
	}
	for _, c := range cases {
		got, err := rule.Threshold(c.metric, c.agg, c.op, c.threshold, c.window)
		if err != nil || got != c.want {
			t.Errorf("Threshold(%v) = %q, %v; want %q", c, got, err, c.want)
			continue
		}
		if _, err := rule.Compile(got); err != nil {
			t.Errorf("%q does not compile: %v", got, err)
		}
	}
	bad := []struct {
		metric, agg, op string
		threshold       float64
		window          time.Duration
		field           string
	}{
		{"Soil", "mean", "<", 1, time.Hour, "metric"},
		{"soil_vwc", "median", "<", 1, time.Hour, "aggregate"},
		{"soil_vwc", "mean", "==", 1, time.Hour, "op"},
		{"soil_vwc", "mean", "<", math.Inf(1), time.Hour, "threshold"},
		{"soil_vwc", "mean", "<", 1, 0, "window_s"},
	}
	for _, c := range bad {
		_, err := rule.Threshold(c.metric, c.agg, c.op, c.threshold, c.window)
		var ie *rule.InvalidError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("Threshold(%v): %v, want a problem with %s", c, err, c.field)
		}
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{"45s": 45 * time.Second, "15m": 15 * time.Minute, "1h": time.Hour,
		"1h30m": 90 * time.Minute, "2d": 48 * time.Hour, "1d6h": 30 * time.Hour, "3600s": time.Hour}
	for in, want := range good {
		if got, err := rule.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got := rule.FormatDuration(want); got != in && in != "3600s" {
			t.Errorf("FormatDuration(%v) = %q, want %q", want, got, in)
		}
	}
	for _, in := range []string{"", "1", "h", "1y", "1m1h", "1h1h", "-1h", "1.5h", "99999999h"} {
		if _, err := rule.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
}

func TestWindows(t *testing.T) {
	baku, err := time.LoadLocation("Asia/Baku")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, h, m int) time.Time { return time.Date(2026, 7, day, h, m, 0, 0, baku) } // 6 July 2026 is a Monday
	morning, err := rule.ParseWindow("05:00", "09:00", nil)
	if err != nil {
		t.Fatal(err)
	}
	night, err := rule.ParseWindow("22:00", "04:00", []string{"sat", "Sunday"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		w    rule.Window
		t    time.Time
		want bool
	}{
		{morning, at(6, 4, 59), false},
		{morning, at(6, 5, 0), true},
		{morning, at(6, 8, 59), true},
		{morning, at(6, 9, 0), false},
		{night, at(11, 23, 0), true},  // Saturday evening
		{night, at(12, 3, 59), true},  // Sunday morning: Saturday's window
		{night, at(12, 4, 0), false},  // Sunday 04:00: closed
		{night, at(12, 22, 30), true}, // Sunday evening
		{night, at(13, 1, 0), true},   // Monday morning: Sunday's window
		{night, at(13, 22, 30), false},
		{night, at(7, 1, 0), false}, // Tuesday morning: Monday had no window
	}
	for _, c := range cases {
		if got := c.w.Contains(c.t); got != c.want {
			t.Errorf("%s contains %s = %v, want %v", rule.Windows{c.w}, c.t.Format("Mon 15:04"), got, c.want)
		}
	}
	if !(rule.Windows{}).Contains(at(6, 12, 0)) {
		t.Error("no windows must mean always")
	}
	if got := (rule.Windows{morning, night}).String(); got != "05:00–09:00; 22:00–04:00 sat,sun" {
		t.Errorf("String = %q", got)
	}
	for _, bad := range [][3]string{{"5:00", "09:00", ""}, {"05:00", "25:00", ""}, {"05:00", "05:00", ""}, {"05:00", "06:00", "someday"}} {
		var days []string
		if bad[2] != "" {
			days = []string{bad[2]}
		}
		if _, err := rule.ParseWindow(bad[0], bad[1], days); err == nil {
			t.Errorf("ParseWindow(%q) accepted", bad)
		}
	}
	if got := rule.WeekdayList(0b0100010); strings.Join(got, ",") != "mon,fri" {
		t.Errorf("WeekdayList = %v", got)
	}
}

// TestDecideGolden replays scenarios through the state machine, one evaluation a line.
func TestDecideGolden(t *testing.T) {
	t0 := time.Date(2026, 7, 6, 1, 0, 0, 0, time.UTC)
	type eval struct {
		min      int  // minutes after t0
		cond     int  // 1 holds, 0 does not, -1 no data
		reset    int  // 1 holds, 0 does not, -1 no reset condition
		inWindow bool // default true below
		outside  bool
	}
	scenarios := []struct {
		name  string
		b     rule.Behaviour
		evals []eval
	}{
		{"irrigate: level-triggered with cooldown 3h", rule.Behaviour{Action: rule.ActionIrrigate, Cooldown: 3 * time.Hour},
			[]eval{{min: 0, cond: 1, reset: -1}, {min: 60, cond: 1, reset: -1}, {min: 179, cond: 1, reset: -1}, {min: 180, cond: 1, reset: -1}, {min: 200, cond: 0, reset: -1}}},
		{"irrigate: must hold 30m; a gap restarts the timer", rule.Behaviour{Action: rule.ActionIrrigate, Hold: 30 * time.Minute},
			[]eval{{min: 0, cond: 1, reset: -1}, {min: 20, cond: 1, reset: -1}, {min: 25, cond: 0, reset: -1}, {min: 30, cond: 1, reset: -1}, {min: 59, cond: 1, reset: -1}, {min: 60, cond: 1, reset: -1}}},
		{"irrigate: no data restarts the hold and never fires", rule.Behaviour{Action: rule.ActionIrrigate, Hold: 10 * time.Minute},
			[]eval{{min: 0, cond: 1, reset: -1}, {min: 5, cond: -1, reset: -1}, {min: 11, cond: 1, reset: -1}, {min: 21, cond: 1, reset: -1}}},
		{"irrigate: hysteresis, dry < 0.18 re-armed by wet > 0.25", rule.Behaviour{Action: rule.ActionIrrigate, HasReset: true},
			[]eval{{min: 0, cond: 1, reset: 0}, {min: 60, cond: 1, reset: 0}, {min: 120, cond: 0, reset: 0}, {min: 180, cond: 0, reset: 1}, {min: 240, cond: 1, reset: 0}}},
		{"irrigate: outside windows waits", rule.Behaviour{Action: rule.ActionIrrigate},
			[]eval{{min: 0, cond: 1, reset: -1, outside: true}, {min: 30, cond: 1, reset: -1}}},
		{"skip: in effect while it holds", rule.Behaviour{Action: rule.ActionSkip},
			[]eval{{min: 0, cond: 1, reset: -1}, {min: 10, cond: 1, reset: -1}, {min: 20, cond: 0, reset: -1}, {min: 30, cond: 1, reset: -1, outside: true}}},
		{"alert: raised once, resolved, cooldown 1h", rule.Behaviour{Action: rule.ActionAlert, Cooldown: time.Hour},
			[]eval{{min: 0, cond: 1, reset: -1}, {min: 5, cond: 1, reset: -1}, {min: 10, cond: 0, reset: -1}, {min: 20, cond: 1, reset: -1}, {min: 61, cond: 1, reset: -1}}},
		{"alert: hysteresis keeps it open until reset", rule.Behaviour{Action: rule.ActionAlert, HasReset: true},
			[]eval{{min: 0, cond: 1, reset: 0}, {min: 10, cond: 0, reset: 0}, {min: 20, cond: 0, reset: 1}, {min: 30, cond: 0, reset: 0}}},
	}
	outcome := func(v int) rule.Outcome {
		switch v {
		case 1:
			return rule.Outcome{Known: true, Holds: true}
		case 0:
			return rule.Outcome{Known: true}
		}
		return rule.Outcome{Missing: []string{`mean("soil_vwc", "1h")`}}
	}
	var b strings.Builder
	for _, sc := range scenarios {
		fmt.Fprintf(&b, "# %s\n", sc.name)
		st := rule.NewState()
		for _, e := range sc.evals {
			in := rule.Input{Now: t0.Add(time.Duration(e.min) * time.Minute), Cond: outcome(e.cond), InWindow: !e.outside}
			if e.reset >= 0 {
				r := outcome(e.reset)
				in.Reset = &r
			}
			step := rule.Decide(sc.b, st, in)
			changed := step.Changed(st)
			st = step.Next
			holding := "-"
			if st.HoldingSince != nil {
				holding = "+" + rule.FormatDuration(in.Now.Sub(*st.HoldingSince))
			}
			fmt.Fprintf(&b, "t+%3dm cond=%2d reset=%2d window=%-5v → act=%-5v release=%-5v armed=%-5v active=%-5v holding=%-4s changed=%-5v %s\n",
				e.min, e.cond, e.reset, !e.outside, step.Act, step.Release, st.Armed, st.Active, holding, changed, step.Reason)
		}
	}
	golden(t, "decide.golden", b.String())
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{`mean("soil_vwc", "1h") < 0.18`, `hour >= 5 && weekday in ["mon"]`, `default(forecast_rain_24h, 0) < 5`,
		`min("air_temp_c", "3h", "farm") <= 2 ? true : false`, "1..3", `max(1, 2) > 1`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, err := rule.Compile(src)
		if err != nil {
			var e *rule.Error
			if !errors.As(err, &e) || e.Line < 1 || e.Column < 1 {
				t.Fatalf("%q: %v (%T)", src, err, err)
			}
			return
		}
		if _, err := p.Eval(facts()); err != nil && !errors.Is(err, rule.ErrMissingFact) {
			// Runtime errors (division by zero on integers, ...) are reported, never panics.
			if strings.Contains(err.Error(), "panic") {
				t.Fatalf("%q: %v", src, err)
			}
		}
	})
}
