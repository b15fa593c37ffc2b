package irrigation_test

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/irrigation"
)

func (f *fixture) schedule(zoneID int64, cron string, durationS int) irrigation.Schedule {
	f.t.Helper()
	s, err := f.store.CreateSchedule(f.ctx, irrigation.Schedule{ZoneID: zoneID, Name: "Morning", Cron: cron, DurationS: durationS, Enabled: true})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) scheduler(store *irrigation.Store, interval time.Duration) *irrigation.Scheduler {
	f.t.Helper()
	sc, err := irrigation.NewScheduler(store, irrigation.SchedulerConfig{Interval: interval})
	if err != nil {
		f.t.Fatal(err)
	}
	return sc
}

// stopLiveRuns ends every live run (their opens were never sent, so they are aborted).
func (f *fixture) stopLiveRuns() {
	f.t.Helper()
	live, err := f.store.Runs(f.ctx, f.farm, true, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range live {
		if _, err := f.store.StopRun(f.ctx, r.ID, nil, "test"); err != nil {
			f.t.Fatal(err)
		}
	}
}

func TestScheduleFiresAtLocalTimeAcrossDaylightSaving(t *testing.T) {
	t.Parallel()
	cases := []struct {
		tz, cron   string
		from, to   time.Time
		want       []string
		concurrent int
	}{
		{
			// Berlin moves to summer time on 29 March 2026: 06:00 local is 05:00 UTC before, 04:00 after.
			"Europe/Berlin", "0 6 * * *",
			time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 30, 12, 0, 0, 0, time.UTC),
			[]string{"2026-03-28T05:00:00Z", "2026-03-29T04:00:00Z", "2026-03-30T04:00:00Z"}, 2,
		},
		{
			// And back on 25 October: 02:30 happens twice, the schedule fires once.
			"Europe/Berlin", "30 2 * * *",
			time.Date(2026, 10, 24, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 26, 12, 0, 0, 0, time.UTC),
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}, 2,
		},
		{
			// Baku keeps UTC+4 all year.
			"Asia/Baku", "30 5 * * *",
			time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 30, 12, 0, 0, 0, time.UTC),
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T01:30:00Z"}, 2,
		},
	}
	for _, c := range cases {
		t.Run(c.tz+" "+c.cron, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, c.tz)
			f.clock.Set(c.from)
			z, _, _ := f.zoneWithValve()
			sc := f.schedule(z.ID, c.cron, 600)
			if sc.Timezone != c.tz {
				t.Fatalf("schedule time zone %q", sc.Timezone)
			}
			// Several instances, each with its own store, all firing at every step.
			var schedulers []*irrigation.Scheduler
			for range c.concurrent {
				schedulers = append(schedulers, f.scheduler(f.newStore(), time.Hour))
			}
			for now := c.from; !now.After(c.to); now = now.Add(5 * time.Minute) {
				f.clock.Set(now)
				var wg sync.WaitGroup
				for _, s := range schedulers {
					wg.Go(func() {
						if _, err := s.FireDue(f.ctx); err != nil {
							t.Errorf("FireDue at %s: %v", now, err)
						}
					})
				}
				wg.Wait()
				f.stopLiveRuns()
			}
			var got []string
			runs := f.runsOf(irrigation.OriginSchedule)
			for i := len(runs) - 1; i >= 0; i-- {
				got = append(got, runs[i].CreatedAt.UTC().Format(time.RFC3339))
				if runs[i].OriginID == nil || *runs[i].OriginID != sc.ID || !strings.Contains(runs[i].Reason, c.tz) {
					t.Errorf("run %+v", runs[i])
				}
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("fired at %v\nwant     %v", got, c.want)
			}
			if len(f.openAlerts()) != 0 {
				t.Errorf("alerts: %+v", f.openAlerts())
			}
		})
	}
}

func TestMissedOccurrencesAreSkippedAndRecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	sc := f.schedule(z.ID, "0 6 * * *", 1800) // 02:00 UTC, half an hour
	s := f.scheduler(f.store, time.Hour)

	// Ten minutes late (a restart): fires, and says so.
	f.clock.Set(time.Date(2026, 7, 7, 2, 10, 0, 0, time.UTC))
	if n, err := s.FireDue(f.ctx); err != nil || n != 1 {
		t.Fatalf("FireDue 10 min late: %d, %v", n, err)
	}
	runs := f.runsOf(irrigation.OriginSchedule)
	if len(runs) != 1 || !strings.Contains(runs[0].Reason, "2026-07-07 06:00 +04") || !strings.Contains(runs[0].Reason, "10m late") {
		t.Fatalf("runs = %+v", runs)
	}
	f.stopLiveRuns()

	// Down for three days: the latest occurrence is 7 h old, older than the run's 30 min.
	f.clock.Set(time.Date(2026, 7, 10, 9, 0, 0, 0, time.UTC))
	if n, err := s.FireDue(f.ctx); err != nil || n != 0 {
		t.Fatalf("FireDue after three days down: %d, %v", n, err)
	}
	a, ok := f.alert(irrigation.AlertScheduleSkipped, "schedule:"+itoa(sc.ID))
	if !ok || !strings.Contains(a.Message, "3 occurrence(s) missed") || !strings.Contains(a.Message, "2026-07-10 06:00 +04") || a.Severity != irrigation.SeverityInfo {
		t.Fatalf("skip alert = %+v, %v", a, ok)
	}
	if n, err := s.FireDue(f.ctx); err != nil || n != 0 || len(f.runsOf(irrigation.OriginSchedule)) != 1 {
		t.Fatalf("the skipped occurrences fired after all: %d, %v", n, err)
	}
	got, err := f.store.Schedule(f.ctx, sc.ID)
	if err != nil || got.LastFiredAt == nil || !got.LastFiredAt.Equal(time.Date(2026, 7, 7, 2, 10, 0, 0, time.UTC)) {
		t.Fatalf("last_fired_at = %v, %v", got.LastFiredAt, err)
	}
	if got.NextAt == nil || !got.NextAt.Equal(time.Date(2026, 7, 11, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("next_at = %v", got.NextAt)
	}

	// Back to normal: the next occurrence fires on time and the skip alert is resolved.
	f.clock.Set(time.Date(2026, 7, 11, 2, 0, 30, 0, time.UTC))
	if n, err := s.FireDue(f.ctx); err != nil || n != 1 {
		t.Fatalf("FireDue on time: %d, %v", n, err)
	}
	if _, ok := f.alert(irrigation.AlertScheduleSkipped, "schedule:"+itoa(sc.ID)); ok {
		t.Error("skip alert still open")
	}

	// An occurrence that finds the valve busy is skipped and recorded too.
	f.clock.Set(time.Date(2026, 7, 12, 2, 0, 0, 0, time.UTC)) // yesterday's run is still live
	if n, err := s.FireDue(f.ctx); err != nil || n != 0 {
		t.Fatalf("FireDue with the valve busy: %d, %v", n, err)
	}
	if a, ok := f.alert(irrigation.AlertScheduleSkipped, "schedule:"+itoa(sc.ID)); !ok || !strings.Contains(a.Message, "busy") {
		t.Fatalf("busy skip alert = %+v, %v", a, ok)
	}
}

func TestScheduleCRUD(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Europe/Berlin")
	z := f.zone()
	for _, bad := range []string{"", "61 * * * *", "@every 1h", "0 6 * *"} {
		_, err := f.store.CreateSchedule(f.ctx, irrigation.Schedule{ZoneID: z.ID, Name: "x", Cron: bad, DurationS: 60, Enabled: true})
		if !isValidation(err, "cron") {
			t.Errorf("cron %q: %v", bad, err)
		}
	}
	if _, err := f.store.CreateSchedule(f.ctx, irrigation.Schedule{ZoneID: 424242, Name: "x", Cron: "0 6 * * *", DurationS: 60}); !isValidation(err, "zone_id") {
		t.Errorf("unknown zone: %v", err)
	}
	// t0 is 07:00 in Berlin (summer): today's 06:00 is gone, the next is tomorrow 04:00 UTC.
	sc := f.schedule(z.ID, "0 6 * * *", 900)
	if sc.NextAt == nil || !sc.NextAt.Equal(time.Date(2026, 7, 7, 4, 0, 0, 0, time.UTC)) || sc.FarmID != f.farm {
		t.Fatalf("schedule = %+v (next %v)", sc, sc.NextAt)
	}
	sc.Enabled = false
	sc, err := f.store.UpdateSchedule(f.ctx, sc)
	if err != nil || sc.NextAt != nil {
		t.Fatalf("disabled schedule: next %v, %v", sc.NextAt, err)
	}
	// Enabling it again starts afresh: occurrences while disabled are not "missed".
	f.clock.Set(time.Date(2026, 7, 9, 4, 30, 0, 0, time.UTC))
	sc.Enabled = true
	sc.Cron = "0 7 * * *"
	if sc, err = f.store.UpdateSchedule(f.ctx, sc); err != nil {
		t.Fatal(err)
	}
	if !sc.NextAt.Equal(time.Date(2026, 7, 9, 5, 0, 0, 0, time.UTC)) {
		t.Fatalf("next after update %v", sc.NextAt)
	}
	s := f.scheduler(f.store, time.Hour)
	if n, err := s.FireDue(f.ctx); err != nil || n != 0 || len(f.openAlerts()) != 0 {
		t.Fatalf("re-enabled schedule fired %d (%v) or reported misses: %+v", n, err, f.openAlerts())
	}
	list, err := f.store.Schedules(f.ctx, z.ID)
	if err != nil || len(list) != 1 || list[0].Cron != "0 7 * * *" {
		t.Fatalf("Schedules = %+v, %v", list, err)
	}
	if err := f.store.DeleteSchedule(f.ctx, sc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Schedule(f.ctx, sc.ID); err == nil {
		t.Fatal("deleted schedule still there")
	}
}

// leaderPID is the backend holding the scheduler's advisory lock in this database (0: none).
func (f *fixture) leaderPID() int {
	f.t.Helper()
	var pid int
	err := f.db.QueryRow(f.ctx, `SELECT COALESCE(max(pid), 0) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid)
	if err != nil {
		f.t.Fatal(err)
	}
	return pid
}

func leaders(ss ...*irrigation.Scheduler) int {
	n := 0
	for _, s := range ss {
		if s.IsLeader() {
			n++
		}
	}
	return n
}

func TestSchedulerLeaderFailover(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	f.schedule(z.ID, "0 6 * * *", 600) // 02:00 UTC
	a := f.scheduler(f.newStore(), 20*time.Millisecond)
	b := f.scheduler(f.newStore(), 20*time.Millisecond)
	for _, s := range []*irrigation.Scheduler{a, b} {
		if err := s.Start(f.ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
	}
	eventually(t, "one leader", func() bool { return leaders(a, b) == 1 && f.leaderPID() != 0 })
	time.Sleep(100 * time.Millisecond)
	if n := leaders(a, b); n != 1 {
		t.Fatalf("%d leaders", n)
	}

	// Only the leader fires, once, when the occurrence comes.
	f.clock.Set(time.Date(2026, 7, 7, 2, 0, 0, 0, time.UTC))
	eventually(t, "the schedule to fire", func() bool { return len(f.runsOf(irrigation.OriginSchedule)) == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := len(f.runsOf(irrigation.OriginSchedule)); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}

	// The leader's connection dies: its lock goes with it and a new session takes the lead.
	old := f.leaderPID()
	if _, err := f.db.Exec(f.ctx, `SELECT pg_terminate_backend($1)`, old); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new leader", func() bool {
		pid := f.leaderPID()
		return pid != 0 && pid != old && leaders(a, b) == 1
	})

	// The leader stops: the other takes over.
	first, second := a, b
	if b.IsLeader() {
		first, second = b, a
	}
	first.Stop()
	eventually(t, "the other scheduler to lead", second.IsLeader)
	if first.IsLeader() {
		t.Fatal("a stopped scheduler still claims to lead")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (f *fixture) decider() *irrigation.Decider {
	f.t.Helper()
	d, err := irrigation.NewDecider(f.store, f.nodeStore(), irrigation.DeciderConfig{Engine: irrigation.EngineConfig{Interval: time.Hour}})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fixture) deciderScheduler() *irrigation.Scheduler {
	f.t.Helper()
	sc, err := irrigation.NewScheduler(f.store, irrigation.SchedulerConfig{Interval: time.Hour, Decider: f.decider()})
	if err != nil {
		f.t.Fatal(err)
	}
	return sc
}

func (f *fixture) createSchedule(s irrigation.Schedule) irrigation.Schedule {
	f.t.Helper()
	s.Enabled = true
	if s.Name == "" {
		s.Name = "Morning"
	}
	s, err := f.store.CreateSchedule(f.ctx, s)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// fireEvery steps the clock from from to to by step, firing due schedules and ending every run
// after each step, and returns when runs started (UTC, RFC 3339) with their durations.
func (f *fixture) fireEvery(s *irrigation.Scheduler, from, to time.Time, step time.Duration, origin string) []string {
	f.t.Helper()
	var got []string
	seen := map[int64]bool{}
	for now := from; !now.After(to); now = now.Add(step) {
		f.clock.Set(now)
		if _, err := s.FireDue(f.ctx); err != nil {
			f.t.Fatalf("FireDue at %s: %v", now, err)
		}
		runs := f.runsOf(origin)
		for i := len(runs) - 1; i >= 0; i-- {
			if !seen[runs[i].ID] {
				seen[runs[i].ID] = true
				got = append(got, runs[i].CreatedAt.UTC().Format(time.RFC3339)+" "+strconv.Itoa(runs[i].DurationS))
			}
		}
		f.stopLiveRuns()
	}
	return got
}

// Weekday and odd/even-day restrictions are read on the farm's calendar; restricted days are no
// occurrences at all (nothing missed, nothing recorded).
func TestScheduleDayRestrictions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z1, _, _ := f.zoneWithValve()
	z2, _, _ := f.zoneWithValve()
	weekly := f.createSchedule(irrigation.Schedule{ZoneID: z1.ID, Cron: "0 6 * * *", DurationS: 600, Weekdays: []string{"wed", "Monday", "fri"}})
	odd := f.createSchedule(irrigation.Schedule{ZoneID: z2.ID, Cron: "0 6 * * *", DurationS: 300, DayParity: "odd"})
	if strings.Join(weekly.Weekdays, ",") != "mon,wed,fri" || weekly.NextAt == nil ||
		!weekly.NextAt.Equal(time.Date(2026, 7, 8, 2, 0, 0, 0, time.UTC)) { // t0 is Monday 09:00: next is Wednesday 06:00
		t.Fatalf("weekly = %+v, next %v", weekly, weekly.NextAt)
	}
	if odd.NextAt == nil || !odd.NextAt.Equal(time.Date(2026, 7, 7, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("odd next %v", odd.NextAt)
	}
	s := f.scheduler(f.store, time.Hour)
	got := f.fireEvery(s, t0, time.Date(2026, 7, 14, 3, 0, 0, 0, time.UTC), 30*time.Minute, irrigation.OriginSchedule)
	sort.Strings(got)
	want := []string{
		"2026-07-07T02:00:00Z 300", // Tue 7th: odd
		"2026-07-08T02:00:00Z 600", // Wed
		"2026-07-09T02:00:00Z 300", // Thu 9th
		"2026-07-10T02:00:00Z 600", // Fri
		"2026-07-11T02:00:00Z 300", // Sat 11th
		"2026-07-13T02:00:00Z 300", // Mon 13th: both
		"2026-07-13T02:00:00Z 600",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fired\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(f.openAlerts()) != 0 {
		t.Errorf("restricted days reported as missed: %+v", f.openAlerts())
	}
	if _, err := f.store.CreateSchedule(f.ctx, irrigation.Schedule{ZoneID: z1.ID, Name: "x", Cron: "0 6 * * *", DurationS: 60,
		Weekdays: []string{"someday"}}); !isValidation(err, "weekdays") {
		t.Errorf("bad weekday: %v", err)
	}
	if _, err := f.store.CreateSchedule(f.ctx, irrigation.Schedule{ZoneID: z1.ID, Name: "x", Cron: "0 6 31 * *", DurationS: 60,
		DayParity: "even"}); !isValidation(err, "day_parity") {
		t.Errorf("the 31st on even days never happens: %v", err)
	}
}

// Sundays at 02:30 in Berlin across both clock changes of 2026, both on a Sunday: on 29 March
// 02:30 does not exist and the schedule fires when the clocks jump (03:00 CEST, 01:00 UTC); on
// 25 October 02:30 happens twice and the schedule fires once.
func TestScheduleWeekdayAcrossDaylightSaving(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		from, to time.Time
		want     []string
	}{
		{time.Date(2026, 3, 21, 12, 0, 0, 0, time.UTC), time.Date(2026, 4, 6, 0, 0, 0, 0, time.UTC),
			[]string{"2026-03-22T01:30:00Z 600", "2026-03-29T01:00:00Z 600", "2026-04-05T00:30:00Z 600"}},
		{time.Date(2026, 10, 17, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC),
			[]string{"2026-10-18T00:30:00Z 600", "2026-10-25T00:30:00Z 600", "2026-11-01T01:30:00Z 600"}},
	} {
		f := newFixture(t, "Europe/Berlin")
		f.clock.Set(c.from)
		z, _, _ := f.zoneWithValve()
		f.createSchedule(irrigation.Schedule{ZoneID: z.ID, Cron: "30 2 * * *", DurationS: 600, Weekdays: []string{"sun"}})
		got := f.fireEvery(f.scheduler(f.store, time.Hour), c.from, c.to, 10*time.Minute, irrigation.OriginSchedule)
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("fired %v\nwant  %v", got, c.want)
		}
	}
}

// Skip conditions: rain, wet soil, frost and wind each skip an occurrence, recorded as a
// decision with the value that decided it; a condition without data does not skip.
func TestScheduleSkipConditions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	probe, station := f.node(z.ID), f.node(0, func(n *fieldnodes.Node) { n.HeightM = ptr(2.0) })
	sc := f.createSchedule(irrigation.Schedule{ZoneID: z.ID, Cron: "0 6 * * *", DurationS: 900,
		SkipRainMM: ptr(5.0), SkipSoilVWC: ptr(0.30), SkipFrostC: ptr(2.0), SkipWindMS: ptr(8.0), SkipForecastRainMM: ptr(10.0)})
	s := f.deciderScheduler()
	day := func(d int) time.Time { return time.Date(2026, 7, d, 2, 0, 0, 0, time.UTC) } // 06:00 in Baku
	at := func(d int, before time.Duration) time.Time { return day(d).Add(-before) }
	// Readings arrive as time goes by: each day's before its occurrence.
	readings := map[int][]fieldnodes.Reading{
		7: { // 6 mm of rain in the night
			{NodeID: station, Metric: "rain_mm", TS: at(7, 5*time.Hour), Value: 6},
			{NodeID: probe, Metric: "soil_vwc", TS: at(7, 10*time.Minute), Value: 0.22},
		},
		8: { // wet soil
			{NodeID: station, Metric: "rain_mm", TS: at(8, 5*time.Hour), Value: 0},
			{NodeID: probe, Metric: "soil_vwc", TS: at(8, 10*time.Minute), Value: 0.33},
		},
		9: { // frost at dawn
			{NodeID: probe, Metric: "soil_vwc", TS: at(9, 10*time.Minute), Value: 0.22},
			{NodeID: station, Metric: "air_temp_c", TS: at(9, 20*time.Minute), Value: 1.5},
		},
		10: { // a gale
			{NodeID: probe, Metric: "soil_vwc", TS: at(10, 10*time.Minute), Value: 0.22},
			{NodeID: station, Metric: "air_temp_c", TS: at(10, 20*time.Minute), Value: 12},
			{NodeID: station, Metric: "wind_speed_ms", TS: at(10, 15*time.Minute), Value: 9.5},
		},
		11: { // fine, but the probe has been silent for a day
			{NodeID: station, Metric: "air_temp_c", TS: at(11, 20*time.Minute), Value: 14},
			{NodeID: station, Metric: "wind_speed_ms", TS: at(11, 15*time.Minute), Value: 2},
		},
	}
	var got []string
	for d := 7; d <= 11; d++ {
		f.insert(readings[d]...)
		got = append(got, f.fireEvery(s, day(d), day(d), time.Minute, irrigation.OriginSchedule)...)
	}
	ds := f.decisions(irrigation.OriginSchedule)
	if len(got) != 1 || got[0] != "2026-07-11T02:00:00Z 900" {
		for _, d := range ds {
			t.Log(d.At, d.Action, d.Reason, d.Facts)
		}
		t.Fatalf("fired %v, want only on the 11th", got)
	}
	if len(ds) != 5 {
		t.Fatalf("%d decisions: %+v", len(ds), ds)
	}
	wants := []string{
		"not checked", // 11th: waters, saying what it could not check
		"mean wind over the last 30 min (m/s) 9.5 ≥ 8", // 10th
		"lowest air temperature over the last hour (°C) 1.5 ≤ 2",
		"soil moisture over the last hour (m³/m³) 0.33 ≥ 0.3",
		"rain over the last 24 h (mm) 6 ≥ 5",
	}
	for i, w := range wants {
		if !strings.Contains(ds[i].Reason, w) || *ds[i].OriginID != sc.ID {
			t.Errorf("decision %d: %q lacks %q", i, ds[i].Reason, w)
		}
	}
	if ds[0].Action != irrigation.DecisionIrrigate || ds[1].Action != irrigation.DecisionSkip || ds[4].Facts["rain_24h"] != 6.0 {
		t.Errorf("decisions %+v", ds)
	}
	// Skips are decisions, not trouble: no alert.
	if len(f.openAlerts()) != 0 {
		t.Errorf("alerts: %+v", f.openAlerts())
	}
	// A forecast of 12 mm over 24 h, 22 h of which fall in the next 24: 11 mm, skips the next day.
	if err := f.store.SetForecast(f.ctx, f.farm, "test", []irrigation.ForecastPeriod{{From: day(12).Add(-2 * time.Hour),
		To: day(12).Add(22 * time.Hour), RainMM: 12}}); err != nil {
		t.Fatal(err)
	}
	f.fireEvery(s, day(12), day(12), time.Hour, irrigation.OriginSchedule)
	if ds := f.decisions(irrigation.OriginSchedule); !strings.Contains(ds[0].Reason, "forecast rain over the next 24 h (mm) 11 ≥ 10") {
		t.Errorf("forecast skip: %+v", ds[0])
	}
}

// The seasonal adjustment scales the duration; cycle-and-soak splits it into cycles with soaks
// between, each started by the scheduler when its soak is over.
func TestScheduleSeasonalAdjustmentAndCycleSoak(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	f.createSchedule(irrigation.Schedule{ZoneID: z.ID, Cron: "0 6 * * *", DurationS: 3600, SeasonalPct: 70,
		CycleS: 900, SoakS: 1200})
	s := f.scheduler(f.store, time.Hour)
	// 3600 s × 70 % = 2520 s: cycles of 900, 900 and 720 s, each 15 + 20 min after the last.
	got := f.fireEvery(s, time.Date(2026, 7, 7, 1, 55, 0, 0, time.UTC), time.Date(2026, 7, 7, 4, 0, 0, 0, time.UTC), 5*time.Minute,
		irrigation.OriginSchedule)
	want := []string{"2026-07-07T02:00:00Z 900", "2026-07-07T02:35:00Z 900", "2026-07-07T03:10:00Z 720"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("fired %v\nwant  %v", got, want)
	}
	runs := f.runsOf(irrigation.OriginSchedule)
	if !strings.Contains(runs[2].Reason, "1h × seasonal adjustment 70 %") || !strings.Contains(runs[2].Reason, "42m in 3 cycles of up to 15m, 20m soak") ||
		!strings.Contains(runs[0].Reason, "next cycle: 12m of the remaining 12m") {
		t.Errorf("reasons:\n%s\n%s", runs[2].Reason, runs[0].Reason)
	}
	sc, err := f.store.Schedules(f.ctx, z.ID)
	if err != nil || sc[0].PendingS != 0 || sc[0].PendingAt != nil {
		t.Fatalf("cycles left: %+v, %v", sc, err)
	}
	if ds := f.decisions(irrigation.OriginSchedule); len(ds) != 3 || ds[0].DurationS != 720 || ds[0].RunID == nil {
		t.Fatalf("decisions %+v", ds)
	}
}

// The water-balance mode waters what the root zone lacks once depletion reaches RAW, with
// origin water_balance, and nothing while it does not.
func TestScheduleWaterBalanceMode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z := f.tenDays()
	sc := f.createSchedule(irrigation.Schedule{ZoneID: z.ID, Name: "By the balance", Cron: "0 5 * * *",
		Mode: irrigation.ModeWaterBalance, CycleS: 2 * 3600, SoakS: 1800})
	s := f.deciderScheduler()
	// 9 July, 05:00: Dr 20.463 + a little is below RAW 26.2: nothing.
	f.fireEvery(s, time.Date(2026, 7, 9, 1, 0, 0, 0, time.UTC), time.Date(2026, 7, 9, 1, 0, 0, 0, time.UTC), time.Hour,
		irrigation.OriginWaterBalance)
	ds := f.decisions(irrigation.OriginWaterBalance)
	if len(ds) != 1 || ds[0].Action != irrigation.DecisionNone || !strings.Contains(ds[0].Reason, "does not need water") ||
		len(f.runsOf(irrigation.OriginWaterBalance)) != 0 {
		t.Fatalf("9 July: %+v", ds)
	}
	// 11 July, 05:00: Dr 28.593 + 0.6 · 6.770 · 5/24 = 29.439 ≥ RAW 26.251: 29.439 mm net,
	// 32.711 mm gross, 6.542 h = 23 552 s at 5 mm/h (rounded up), in cycles of 2 h.
	got := f.fireEvery(s, time.Date(2026, 7, 11, 1, 0, 0, 0, time.UTC), time.Date(2026, 7, 11, 1, 0, 0, 0, time.UTC), time.Hour,
		irrigation.OriginWaterBalance)
	runs := f.runsOf(irrigation.OriginWaterBalance)
	if len(got) != 1 || len(runs) != 1 || runs[0].DurationS != 7200 || *runs[0].OriginID != sc.ID ||
		!strings.Contains(runs[0].Reason, "refill 29.4 mm net, 32.7 mm gross at 5 mm/h (efficiency 0.9)") {
		t.Fatalf("11 July: %v %+v", got, runs)
	}
	got2, err := f.store.Schedule(f.ctx, sc.ID)
	if err != nil || got2.PendingS != 23552-7200 {
		t.Fatalf("pending %+v, %v", got2, err)
	}
}

// A skip rule in effect vetoes a schedule's occurrence.
func TestSkipRuleVetoesSchedule(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "Asia/Baku")
	z, _, _ := f.zoneWithValve()
	f.rule(z.ID, func(r *irrigation.Rule) {
		r.Name, r.Action, r.DurationS = "Not on Tuesdays", "skip", 0
		r.Condition = `weekday == "tue"`
	})
	f.createSchedule(irrigation.Schedule{ZoneID: z.ID, Cron: "0 6 * * *", DurationS: 600})
	got := f.fireEvery(f.deciderScheduler(), time.Date(2026, 7, 7, 1, 0, 0, 0, time.UTC), time.Date(2026, 7, 8, 3, 0, 0, 0, time.UTC),
		time.Hour, irrigation.OriginSchedule)
	if len(got) != 1 || got[0] != "2026-07-08T02:00:00Z 600" {
		t.Fatalf("fired %v: want Wednesday only", got)
	}
	if ds := f.decisions(irrigation.OriginSchedule); len(ds) != 2 || !strings.Contains(ds[1].Reason, `skip rule "Not on Tuesdays" is in effect`) {
		t.Fatalf("decisions %+v", ds)
	}
}
