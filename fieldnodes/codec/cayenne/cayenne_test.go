package cayenne_test

import (
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/codec/cayenne"
	"github.com/aghali/aghali/fieldnodes/codec/codectest"
)

// received is the receive time every fixture is decoded with.
var received = time.Date(2026, 7, 6, 5, 15, 0, 0, time.UTC)

func decode(b []byte) ([]codec.Measurement, error) { return cayenne.Decode(b, received) }

// TestFixtures decodes every testdata/*.hex against its .golden file.
func TestFixtures(t *testing.T) { codectest.Golden(t, "testdata/*.hex", decode) }

// The network-server fixture of ../../../shared/fixtures: channel 3 and 5 temperatures.
func TestChirpStackFixturePayload(t *testing.T) {
	ms, err := cayenne.Decode([]byte{0x03, 0x67, 0x01, 0x10, 0x05, 0x67, 0x00, 0xFF}, received)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Metric != "temperature_3" || ms[0].Value != 27.2 || ms[1].Metric != "temperature_5" ||
		ms[1].Value != 25.5 || !ms[0].Time.Equal(received) {
		t.Errorf("got %v", ms)
	}
}

func TestEveryTypeDecodesItsSize(t *testing.T) {
	for _, typ := range cayenne.Types() {
		payload := append([]byte{7, typ.Code}, make([]byte, typ.Size)...)
		if typ.Code == cayenne.TypeUnixtime {
			payload = append(payload, 7, 103, 0, 1) // a unixtime alone is no reading
			payload[5] = 1                          // and 0 is refused
		}
		ms, err := cayenne.Decode(payload, received)
		if err != nil {
			t.Errorf("type %d (%s): %v", typ.Code, typ.Name, err)
			continue
		}
		codectest.Check(t, ms, nil)
		if _, err := cayenne.Decode(payload[:len(payload)-1], received); err == nil && typ.Code != cayenne.TypeUnixtime {
			t.Errorf("type %d (%s): a value one byte short decoded", typ.Code, typ.Name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	codectest.Seeds(f, "testdata/*.hex")
	f.Fuzz(func(t *testing.T, payload []byte) {
		ms, err := cayenne.Decode(payload, received)
		codectest.Check(t, ms, err)
	})
}

func BenchmarkDecode(b *testing.B) {
	p := []byte{0x01, 0x67, 0x00, 0xC8, 0x02, 0x68, 0x50, 0x03, 0x02, 0x01, 0x2C, 0x04, 0x74, 0x01, 0x69}
	b.ReportAllocs()
	for range b.N {
		if _, err := cayenne.Decode(p, received); err != nil {
			b.Fatal(err)
		}
	}
}
