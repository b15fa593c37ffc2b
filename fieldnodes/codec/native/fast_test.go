package native

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var at = time.Date(2026, 7, 6, 5, 15, 0, 0, time.UTC)

// The fast path takes the common payloads...
func TestFastTakesCommonPayloads(t *testing.T) {
	for _, p := range []string{
		`{"ts":"2026-07-06T05:00:00Z","readings":{"soil_vwc":0.234,"soil_temp_c":18.2},"battery_v":3.61,"rssi":-71}`,
		` {"readings":{"soil_vwc":1e-1,"x_1":-0,"made_up":12.5E+2}, "firmware":{"v":[1,2,"3\n"],"ok":true,"n":null}} `,
		`{"readings":{"battery_v":3.2},"battery_v":3.3}`,
	} {
		fast, ok := decodeFast([]byte(p), at)
		if !ok {
			t.Errorf("fast path gave up on %s", p)
			continue
		}
		general, err := decodeGeneral([]byte(p), at)
		if err != nil || !reflect.DeepEqual(fast, general) {
			t.Errorf("%s: fast %v, general %v %v", p, fast, general, err)
		}
	}
	// ...and leaves the others to the general path.
	for _, p := range []string{
		`{"TS":"2026-07-06T05:00:00Z","readings":{"soil_vwc":0.2}}`,
		`{"readings":{"soil_vwc":0.2,"soil_vwc":0.3}}`,
		`{"readings":{"soil\u005fvwc":0.2}}`,
		`{"readings":{"soil_vwc":1e400}}`,
		`{"readings":{"soil_vwc":"0.2"}}`,
		`{"readings":{"soil_vwc":0.2}} x`,
		`{}`,
	} {
		if ms, ok := decodeFast([]byte(p), at); ok {
			t.Errorf("fast path took %s: %v", p, ms)
		}
	}
}

// FuzzFastMatchesGeneral: whatever the fast path takes, it decodes as the general path does.
func FuzzFastMatchesGeneral(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"readings":{"a":1,"b":-2.5e3},"x":[{"y":"\u00e9"}],"battery_v":null,"rssi":-90}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		fast, ok := decodeFast(p, at)
		if !ok {
			return
		}
		general, err := decodeGeneral(p, at)
		if err != nil || !reflect.DeepEqual(fast, general) {
			t.Fatalf("%q: fast %v, general %v, %v", p, fast, general, err)
		}
	})
}

// BenchmarkDecode: the common native payload through Decode (the fast path) and through the
// general path alone.
func BenchmarkDecode(b *testing.B) {
	p := []byte(`{"ts":"2026-07-06T05:00:00Z","readings":{"soil_vwc":0.234,"soil_temp_c":18.2,"soil_ec_ds_m":0.41},"battery_v":3.61,"rssi":-71}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := Decode(p, at); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := decodeGeneral(p, at); err != nil {
				b.Fatal(err)
			}
		}
	})
}
