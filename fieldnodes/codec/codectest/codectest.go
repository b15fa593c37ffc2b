// Package codectest is what the codec packages' tests share: golden-file fixture runs and the
// invariants a fuzz target checks on every decoder's output. Test code only.
package codectest

import (
	"encoding/hex"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aghali/aghali/fieldnodes/codec"
)

// Update is the -update flag: rewrite golden files instead of comparing with them.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// ReadFixture reads a fixture file. Files ending in .hex hold hexadecimal bytes, with blanks,
// line breaks and "#" comments ignored; any other file is taken as it is.
func ReadFixture(t testing.TB, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(file, ".hex") {
		return raw
	}
	var digits strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return b
}

// Golden decodes every fixture matching pattern (e.g. "testdata/*.hex"): ok_* must decode to
// the measurements its .golden file lists (one per line, Measurement.String), bad_* must fail
// with a *codec.Error whose text is its .golden file.
func Golden(t *testing.T, pattern string, decode func([]byte) ([]codec.Measurement, error)) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures match %s: %v", pattern, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		t.Run(name, func(t *testing.T) {
			ms, err := decode(ReadFixture(t, file))
			var got string
			switch {
			case strings.HasPrefix(name, "ok_"):
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				Check(t, ms, nil)
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
			golden := strings.TrimSuffix(file, filepath.Ext(file)) + ".golden"
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

// Seeds adds every fixture matching pattern to a fuzz corpus.
func Seeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		f.Fatalf("no fixtures match %s", pattern)
	}
	for _, file := range files {
		f.Add(ReadFixture(f, file))
	}
}

// Check fails t unless (ms, err) keeps the promises of package codec: an error is a
// *codec.Error and comes without measurements; success has at least one measurement, each with
// a metric, a finite value and a time within codec.InRange.
func Check(t testing.TB, ms []codec.Measurement, err error) {
	t.Helper()
	if err != nil {
		var ce *codec.Error
		if !errors.As(err, &ce) || ms != nil {
			t.Fatalf("error %v (%T) with %d measurements", err, err, len(ms))
		}
		switch ce.Reason {
		case codec.ReasonSyntax, codec.ReasonSchema, codec.ReasonValue:
		default:
			t.Fatalf("error reason %q", ce.Reason)
		}
		if ce.Codec == "" || ce.Detail == "" {
			t.Fatalf("incomplete error %+v", ce)
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
}
