// Package lorawantest runs the network-server adapters' fixture tests: testdata files named
// ok_<event>_<what>.json must parse to the Event their .golden file shows, bad_<event>_<what>.json
// must fail with the *codec.Error in theirs. Test code only.
package lorawantest

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/lorawan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// EventOf is the event name in a fixture's file name: "down/ack" for ok_down-ack_x.json.
func EventOf(file string) string {
	parts := strings.SplitN(strings.TrimSuffix(filepath.Base(file), ".json"), "_", 3)
	if len(parts) < 3 {
		return ""
	}
	return strings.ReplaceAll(parts[1], "-", "/")
}

// Golden checks every testdata/*.json fixture with parse.
func Golden(t *testing.T, parse func(event string, payload []byte) (lorawan.Event, error)) {
	t.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			payload, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := parse(EventOf(file), payload)
			var got string
			switch {
			case strings.HasPrefix(name, "ok_"):
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				got = ev.String() + "\n"
			case strings.HasPrefix(name, "bad_"):
				var ce *codec.Error
				if !errors.As(err, &ce) {
					t.Fatalf("Parse = %v, %v; want a *codec.Error", ev, err)
				}
				got = err.Error() + "\n"
			default:
				t.Fatal("fixture names start with ok_ or bad_")
			}
			golden := strings.TrimSuffix(file, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// Check fails t unless (ev, err) keeps the adapters' promises (package lorawan).
func Check(t testing.TB, ev lorawan.Event, err error, ignored error) {
	t.Helper()
	if err != nil {
		var ce *codec.Error
		if !errors.As(err, &ce) && !errors.Is(err, ignored) {
			t.Fatalf("error %v (%T)", err, err)
		}
		return
	}
	if ev.DevEUI != "" {
		if eui, ok := lorawan.NormalizeDevEUI(ev.DevEUI); !ok || eui != ev.DevEUI {
			t.Fatalf("DevEUI %q", ev.DevEUI)
		}
	}
	if !ev.Time.IsZero() && !codec.InRange(ev.Time) {
		t.Fatalf("time %v", ev.Time)
	}
	for _, p := range []*float64{ev.Link.RSSI, ev.Link.SNR, ev.BatteryPct, ev.MarginDB} {
		if p != nil && (*p != *p || *p > 1e308 || *p < -1e308) {
			t.Fatalf("a figure is not finite: %+v", ev)
		}
	}
	if ev.Link.Gateways < 0 || (ev.Link.RSSI != nil || ev.Link.SNR != nil) && ev.Link.Gateways == 0 {
		t.Fatalf("link %+v", ev.Link)
	}
}
