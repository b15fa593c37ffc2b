package object_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/codec/codectest"
	"github.com/aghali/aghali/fieldnodes/codec/object"
)

// received is the receive time every fixture is decoded with.
var received = time.Date(2026, 7, 6, 5, 15, 0, 0, time.UTC)

func decode(b []byte) ([]codec.Measurement, error) { return object.Decode(b, received) }

// TestFixtures decodes every testdata/*.json against its .golden file.
func TestFixtures(t *testing.T) { codectest.Golden(t, "testdata/*.json", decode) }

func TestTooManyValues(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range object.MaxValues + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"v%d":%d`, i, i)
	}
	b.WriteString("}")
	ms, err := object.Decode([]byte(b.String()), received)
	if err == nil || !strings.Contains(err.Error(), "more than 1000") {
		t.Errorf("got %d measurements, %v", len(ms), err)
	}
}

func FuzzDecode(f *testing.F) {
	codectest.Seeds(f, "testdata/*.json")
	f.Fuzz(func(t *testing.T, payload []byte) {
		ms, err := object.Decode(payload, received)
		codectest.Check(t, ms, err)
	})
}
