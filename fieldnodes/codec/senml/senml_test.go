package senml_test

import (
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/codec/senml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// received is the receive time every fixture is decoded with.
var received = time.Date(2026, 7, 6, 5, 15, 0, 0, time.UTC)

// TestFixtures decodes every testdata/*.json: ok_* must decode to what ok_*.golden lists, bad_*
// must fail with the error in bad_*.golden.
func TestFixtures(t *testing.T) {
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
			ms, err := senml.Decode(payload, received)
			var got string
			switch {
			case strings.HasPrefix(name, "ok_"):
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				for _, m := range ms {
					got += m.String() + "\n"
				}
			case strings.HasPrefix(name, "bad_"):
				var ce *codec.Error
				if !errors.As(err, &ce) {
					t.Fatalf("Decode = %v, %v; want a *codec.Error", ms, err)
				}
				if ms != nil {
					t.Errorf("measurements returned with an error: %v", ms)
				}
				got = err.Error() + "\n"
			default:
				t.Fatalf("fixture names start with ok_ or bad_")
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

func TestReasons(t *testing.T) {
	cases := map[string]string{
		`[{"n":"soil_vwc","v":0.2}`:           codec.ReasonSyntax,
		`{"n":"soil_vwc","v":0.2}`:            codec.ReasonSchema,
		`[{"n":"soil_vwc","v":"x"}]`:          codec.ReasonSchema,
		`[{"n":"soil_vwc","vs":"x"}]`:         codec.ReasonValue,
		`[{"n":"soil_vwc","v":1,"t":-1e300}]`: codec.ReasonValue,
	}
	for payload, reason := range cases {
		_, err := senml.Decode([]byte(payload), received)
		var ce *codec.Error
		if !errors.As(err, &ce) || ce.Reason != reason {
			t.Errorf("Decode(%s) = %v, want reason %s", payload, err, reason)
		}
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ms, err := senml.Decode(payload, received)
		if err != nil {
			var ce *codec.Error
			if !errors.As(err, &ce) || ms != nil {
				t.Fatalf("error %v (%T) with %d measurements", err, err, len(ms))
			}
			return
		}
		if len(ms) == 0 {
			t.Fatal("no error and no measurements")
		}
		for _, m := range ms {
			if m.Metric == "" || math.IsNaN(m.Value) || math.IsInf(m.Value, 0) || m.Time.IsZero() || !codec.InRange(m.Time) {
				t.Fatalf("invalid measurement %+v", m)
			}
		}
	})
}
