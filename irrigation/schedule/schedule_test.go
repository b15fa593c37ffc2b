package schedule_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/irrigation/schedule"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func parse(t *testing.T, expr string, loc *time.Location) *schedule.Spec {
	t.Helper()
	s, err := schedule.Parse(expr, loc)
	if err != nil {
		t.Fatalf("Parse(%q): %v", expr, err)
	}
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// occurrences lists the occurrences in (from, to].
func occurrences(s *schedule.Spec, from, to time.Time) []string {
	var out []string
	for o := s.Next(from); !o.IsZero() && !o.After(to); o = s.Next(o) {
		out = append(out, o.Format(time.RFC3339))
	}
	return out
}

func TestParse(t *testing.T) {
	baku := zone(t, "Asia/Baku")
	for _, expr := range []string{"0 6 * * *", "*/15 5-7 * * mon-fri", "30 4 1,15 * *", "@daily", "  0   6 * * *  "} {
		if _, err := schedule.Parse(expr, baku); err != nil {
			t.Errorf("Parse(%q): %v", expr, err)
		}
	}
	for expr, want := range map[string]string{
		"":               "empty",
		"0 6 * *":        "5 fields",
		"0 0 6 * * *":    "5 fields",
		"61 * * * *":     "",
		"@every 1h":      "@every",
		"TZ=UTC 0 6 * *": "time zone",
		"0 0 30 2 *":     "never",
		"0 6 * * funday": "",
	} {
		_, err := schedule.Parse(expr, baku)
		if err == nil {
			t.Errorf("Parse(%q) accepted", expr)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want it to mention %q", expr, err, want)
		}
	}
	if s := parse(t, "  0   6 * * *  ", baku); s.String() != "0 6 * * *" {
		t.Errorf("normalised to %q", s.String())
	}
}

func TestBakuHasNoDaylightSaving(t *testing.T) {
	s := parse(t, "0 6 * * *", zone(t, "Asia/Baku"))
	got := occurrences(s, utc("2026-03-27T00:00:00Z"), utc("2026-03-31T00:00:00Z"))
	want := []string{"2026-03-27T02:00:00Z", "2026-03-28T02:00:00Z", "2026-03-29T02:00:00Z", "2026-03-30T02:00:00Z"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestBerlinKeepsLocalTimeAcrossDaylightSaving(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	cases := []struct {
		name, expr string
		from, to   string
		want       []string
	}{
		{
			// 06:00 local is 05:00 UTC in winter and 04:00 UTC in summer.
			"spring forward, daily 06:00", "0 6 * * *", "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z",
			[]string{"2026-03-28T05:00:00Z", "2026-03-29T04:00:00Z", "2026-03-30T04:00:00Z"},
		},
		{
			"autumn back, daily 06:00", "0 6 * * *", "2026-10-24T00:00:00Z", "2026-10-26T12:00:00Z",
			[]string{"2026-10-24T04:00:00Z", "2026-10-25T05:00:00Z", "2026-10-26T05:00:00Z"},
		},
		{
			// 02:30 does not exist on 29 March: it fires when the clocks jump (03:00 CEST).
			"spring forward, daily 02:30", "30 2 * * *", "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z",
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
		},
		{
			// 02:30 happens twice on 25 October: it fires once, the first time.
			"autumn back, daily 02:30", "30 2 * * *", "2026-10-24T00:00:00Z", "2026-10-26T12:00:00Z",
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
		},
		{
			// Every 30 minutes through the repeated hour: the repeated wall times are skipped.
			"autumn back, half-hourly", "*/30 1-3 25 10 *", "2026-10-24T22:00:00Z", "2026-10-25T03:00:00Z",
			[]string{"2026-10-24T23:00:00Z", "2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z",
				"2026-10-25T02:00:00Z", "2026-10-25T02:30:00Z"},
		},
		{
			// Several matches inside the skipped hour still give one occurrence at the jump.
			"spring forward, every 20 min in the gap", "*/20 2 29 3 *", "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z",
			[]string{"2026-03-29T01:00:00Z"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := occurrences(parse(t, c.expr, berlin), utc(c.from), utc(c.to))
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	s := parse(t, "0 6 * * *", zone(t, "Asia/Baku")) // 02:00 UTC
	anchor := utc("2026-07-01T03:00:00Z")
	cases := []struct {
		name    string
		now     string
		maxLate time.Duration
		want    schedule.Decision
	}{
		{"nothing due", "2026-07-02T01:59:59Z", time.Hour, schedule.Decision{}},
		{"on time", "2026-07-02T02:00:00Z", time.Hour,
			schedule.Decision{Due: true, Fire: true, Occurrence: utc("2026-07-02T02:00:00Z")}},
		{"a little late", "2026-07-02T02:40:00Z", time.Hour,
			schedule.Decision{Due: true, Fire: true, Occurrence: utc("2026-07-02T02:00:00Z"), Late: 40 * time.Minute}},
		{"too late", "2026-07-02T03:00:01Z", time.Hour,
			schedule.Decision{Due: true, Occurrence: utc("2026-07-02T02:00:00Z"), Late: time.Hour + time.Second, Missed: 1}},
		{"down for days, latest recent", "2026-07-05T02:10:00Z", time.Hour,
			schedule.Decision{Due: true, Fire: true, Occurrence: utc("2026-07-05T02:00:00Z"), Late: 10 * time.Minute, Missed: 3}},
		{"down for days, latest stale", "2026-07-05T09:00:00Z", time.Hour,
			schedule.Decision{Due: true, Occurrence: utc("2026-07-05T02:00:00Z"), Late: 7 * time.Hour, Missed: 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := s.Decide(anchor, utc(c.now), c.maxLate); got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
	// Years of minutes missed: counting stops, and the decision is still quick.
	every := parse(t, "* * * * *", time.UTC)
	start := time.Now()
	d := every.Decide(utc("2020-01-01T00:00:00Z"), utc("2026-07-05T09:00:30Z"), time.Minute)
	if !d.Fire || !d.MissedCapped || !d.Occurrence.Equal(utc("2026-07-05T09:00:00Z")) {
		t.Errorf("got %+v", d)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Decide took %s", time.Since(start))
	}
}
