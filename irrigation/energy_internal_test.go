package irrigation

import (
	"testing"
	"time"
)

func TestEnergyWindows(t *testing.T) {
	baku, err := time.LoadLocation("Asia/Baku")
	if err != nil {
		t.Fatal(err)
	}
	day := []EnergyWindow{{From: "08:00", To: "17:00"}}
	night := []EnergyWindow{{From: "22:00", To: "06:00"}} // hydro at night: spans midnight
	at := func(h, m int) time.Time { return time.Date(2026, 7, 6, h, m, 0, 0, baku) }
	for _, c := range []struct {
		windows []EnergyWindow
		at      time.Time
		in      bool
		next    time.Time
	}{
		{nil, at(3, 0), true, at(3, 0)},
		{day, at(7, 59), false, at(8, 0)},
		{day, at(8, 0), true, at(8, 0)},
		{day, at(16, 59), true, at(16, 59)},
		{day, at(17, 0), false, at(8, 0).AddDate(0, 0, 1)},
		{night, at(23, 0), true, at(23, 0)},
		{night, at(5, 59), true, at(5, 59)},
		{night, at(6, 0), false, at(22, 0)},
		{append(day, night...), at(19, 0), false, at(22, 0)},
	} {
		if got := inEnergyWindow(c.windows, c.at); got != c.in {
			t.Errorf("%v at %s: in = %v", c.windows, c.at.Format("15:04"), got)
		}
		next, ok := nextEnergyWindow(c.windows, c.at)
		if !ok || !next.Equal(c.next) {
			t.Errorf("%v at %s: next = %v %v, want %v", c.windows, c.at.Format("15:04"), next, ok, c.next)
		}
	}
}
