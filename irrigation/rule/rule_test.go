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

func TestEvaluateGolden(t *testing.T) {
	soilDry := rule.Condition{Metric: "soil_vwc", Aggregate: rule.Mean, Op: rule.Less, Threshold: 0.18, Window: time.Hour}
	cases := []struct {
		name  string
		cond  rule.Condition
		value float64
		n     int
	}{
		{"dry soil fires", soilDry, 0.152, 3},
		{"wet soil holds back", soilDry, 0.23, 3},
		{"at the threshold holds back", soilDry, 0.18, 2},
		{"no readings never fires", soilDry, 0, 0},
		{"one reading", soilDry, 0.1, 1},
		{"NaN never fires", soilDry, math.NaN(), 4},
		{"hot air", rule.Condition{Metric: "air_temp_c", Aggregate: rule.Max, Op: rule.GreaterEqual, Threshold: 35, Window: 90 * time.Minute}, 36.4, 12},
		{"cold night", rule.Condition{Metric: "air_temp_c", Aggregate: rule.Min, Op: rule.LessEqual, Threshold: 2, Window: 12 * time.Hour}, 2, 48},
		{"last reading", rule.Condition{Metric: "water_level_m", Aggregate: rule.Last, Op: rule.Greater, Threshold: 1.25, Window: 15 * time.Minute}, 1.3, 1},
		{"large value", rule.Condition{Metric: "volume_l", Aggregate: rule.Max, Op: rule.Greater, Threshold: 100000, Window: 26 * time.Hour}, 123456.7, 5},
		{"tiny value", rule.Condition{Metric: "soil_ec_ds_m", Aggregate: rule.Mean, Op: rule.Less, Threshold: 0.001, Window: 45 * time.Second}, 0.00042, 2},
	}
	var b strings.Builder
	for _, c := range cases {
		r := c.cond.Evaluate(c.value, c.n)
		fmt.Fprintf(&b, "%s\tfire=%v\t%s\n", c.name, r.Fire, r.Reason)
	}
	golden(t, "evaluate.golden", b.String())
}

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

func TestCompare(t *testing.T) {
	for _, c := range []struct {
		op   string
		v, t float64
		want bool
	}{
		{"<", 1, 2, true}, {"<", 2, 2, false}, {"<=", 2, 2, true}, {">", 3, 2, true}, {">", 2, 2, false},
		{">=", 2, 2, true}, {">=", 1, 2, false}, {"==", 2, 2, false},
	} {
		if got := rule.Compare(c.op, c.v, c.t); got != c.want {
			t.Errorf("Compare(%q, %g, %g) = %v", c.op, c.v, c.t, got)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := rule.Condition{Metric: "soil_vwc", Aggregate: rule.Mean, Op: rule.Less, Threshold: 0.2, Window: time.Hour}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, mod := range map[string]func(*rule.Condition){
		"metric":    func(c *rule.Condition) { c.Metric = "Soil VWC" },
		"aggregate": func(c *rule.Condition) { c.Aggregate = "median" },
		"op":        func(c *rule.Condition) { c.Op = "=" },
		"threshold": func(c *rule.Condition) { c.Threshold = math.Inf(1) },
		"window_s":  func(c *rule.Condition) { c.Window = 0 },
	} {
		c := ok
		mod(&c)
		var ie *rule.InvalidError
		if err := c.Validate(); !errors.As(err, &ie) || ie.Field != field {
			t.Errorf("%s: err = %v", field, err)
		}
	}
}

func TestReady(t *testing.T) {
	now := time.Date(2026, 7, 6, 12, 0, 0, 0, time.UTC)
	if ok, _ := rule.Ready(nil, time.Hour, now); !ok {
		t.Error("a rule that never fired is not ready")
	}
	last := now.Add(-30 * time.Minute)
	ok, at := rule.Ready(&last, time.Hour, now)
	if ok || !at.Equal(now.Add(30*time.Minute)) {
		t.Errorf("inside cooldown: %v, %s", ok, at)
	}
	if ok, _ := rule.Ready(&last, 30*time.Minute, now); !ok {
		t.Error("at the end of the cooldown the rule is not ready")
	}
	if ok, _ := rule.Ready(&last, 0, now); !ok {
		t.Error("no cooldown, not ready")
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		45 * time.Second: "45s", 15 * time.Minute: "15m", time.Hour: "1h", 90 * time.Minute: "1h30m",
		48 * time.Hour: "2d", 30*time.Hour + 5*time.Second: "1d6h5s", 0: "0s",
	} {
		if got := rule.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
