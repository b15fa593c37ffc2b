package irrigation_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
