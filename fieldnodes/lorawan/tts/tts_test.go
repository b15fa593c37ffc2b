package tts_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/lorawan"
	"github.com/aghali/aghali/fieldnodes/lorawan/lorawantest"
	"github.com/aghali/aghali/fieldnodes/lorawan/tts"
)

func TestFixtures(t *testing.T) { lorawantest.Golden(t, tts.Parse) }

// The shared fixture: RSSI −35, SNR 5, time from received_at, the decoded payload kept.
func TestUpFixture(t *testing.T) {
	b, err := os.ReadFile("testdata/ok_up_decoded.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := tts.Parse("up", b)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 7, 6, 5, 15, 46, 14773143, time.UTC)
	if ev.Kind != lorawan.KindUp || ev.DevEUI != "0004a30b001c0530" || ev.DeviceID != "dev1" || !ev.Time.Equal(want) || ev.FCnt != 1 ||
		ev.FPort != 15 || string(ev.Object) == "" || *ev.Link.RSSI != -35 || *ev.Link.SNR != 5 || ev.Link.Gateways != 1 ||
		ev.Link.SF != 7 || ev.Link.FrequencyHz != 868300000 {
		t.Errorf("event %s", ev)
	}
}

func TestOtherEventsIgnored(t *testing.T) {
	for _, ev := range []string{"down/queued", "down/sent", "service/data", "location/solved", "status", ""} {
		if _, err := tts.Parse(ev, []byte(`{}`)); !errors.Is(err, tts.ErrIgnored) {
			t.Errorf("Parse(%q) = %v, want ErrIgnored", ev, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(lorawantest.EventOf(file), b)
	}
	f.Fuzz(func(t *testing.T, event string, payload []byte) {
		ev, err := tts.Parse(event, payload)
		lorawantest.Check(t, ev, err, tts.ErrIgnored)
	})
}
