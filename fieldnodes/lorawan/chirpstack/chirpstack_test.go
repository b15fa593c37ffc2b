package chirpstack_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/lorawan"
	"github.com/aghali/aghali/fieldnodes/lorawan/chirpstack"
	"github.com/aghali/aghali/fieldnodes/lorawan/lorawantest"
)

func TestFixtures(t *testing.T) { lorawantest.Golden(t, chirpstack.Parse) }

// The shared fixture, field by field: what ../../../../shared/fixtures/README.md says a correct
// ingest keeps of it.
func TestUpFixture(t *testing.T) {
	b, err := os.ReadFile("testdata/ok_up_cayenne.json")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := chirpstack.Parse("up", b)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 7, 6, 5, 0, 15, 775023242, time.UTC)
	if ev.Kind != lorawan.KindUp || ev.DevEUI != "0101010101010101" || !ev.Time.Equal(want) || ev.FCnt != 17 || ev.FPort != 1 ||
		string(ev.Payload) != "\x03\x67\x01\x10\x05\x67\x00\xff" || *ev.Link.RSSI != -36 || *ev.Link.SNR != 10.5 ||
		ev.Link.Gateways != 1 || ev.Link.SF != 11 || ev.Link.FrequencyHz != 867100000 {
		t.Errorf("event %s", ev)
	}
}

func TestOtherEventsIgnored(t *testing.T) {
	for _, ev := range []string{"log", "location", "integration", "up/extra", ""} {
		if _, err := chirpstack.Parse(ev, []byte(`{}`)); !errors.Is(err, chirpstack.ErrIgnored) {
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
		ev, err := chirpstack.Parse(event, payload)
		lorawantest.Check(t, ev, err, chirpstack.ErrIgnored)
	})
}
