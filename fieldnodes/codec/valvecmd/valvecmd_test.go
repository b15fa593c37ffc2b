package valvecmd_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec/codectest"
	"github.com/aghali/aghali/fieldnodes/codec/valvecmd"
)

var update = flag.Bool("update-valvecmd", false, "rewrite testdata/*.golden")

// decodeFixture decodes a fixture as what its name says it is (cmd_ or up_) and returns the
// text its golden file must hold: the decoded message, or the error.
func decodeFixture(name string, b []byte) (string, error) {
	if strings.HasPrefix(name, "cmd_") {
		c, err := valvecmd.DecodeCommand(b)
		return c.String(), err
	}
	u, err := valvecmd.DecodeUplink(b)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// TestFixtures: testdata/{cmd,up}_{ok,bad}_*.hex against their .golden files; ok commands
// must also encode back to the same bytes.
func TestFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.hex")
	if err != nil || len(files) < 10 {
		t.Fatalf("fixtures: %v (%d)", err, len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".hex")
		t.Run(name, func(t *testing.T) {
			b := codectest.ReadFixture(t, file)
			got, err := decodeFixture(name, b)
			ok := strings.Contains(name, "_ok_")
			switch {
			case ok && err != nil:
				t.Fatalf("decode: %v", err)
			case !ok:
				var ve *valvecmd.Error
				if !errors.As(err, &ve) {
					t.Fatalf("decode = %q, %v; want a *valvecmd.Error", got, err)
				}
				got = err.Error()
			}
			golden := strings.TrimSuffix(file, ".hex") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got+"\n" != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if ok && strings.HasPrefix(name, "cmd_") {
				c, _ := valvecmd.DecodeCommand(b)
				again, err := valvecmd.EncodeCommand(c)
				if err != nil || !bytes.Equal(again, b) {
					t.Errorf("re-encoded % x, %v; want % x", again, err, b)
				}
			}
			if ok && strings.HasPrefix(name, "up_") {
				u, _ := valvecmd.DecodeUplink(b)
				var again []byte
				if u.Ack != nil {
					again = valvecmd.EncodeAck(*u.Ack)
				} else {
					again, _ = valvecmd.EncodeState(*u.State)
				}
				if !bytes.Equal(again, b) {
					t.Errorf("re-encoded % x; want % x", again, b)
				}
			}
		})
	}
}

var exp = time.Date(2026, 7, 6, 5, 1, 0, 0, time.UTC)

func TestEncodeNeverLaterOrLonger(t *testing.T) {
	c := valvecmd.Command{Action: valvecmd.ActionOpen, Ref: valvecmd.RefOf("2b7e1516-28ae-4d2a-a6d2-abf7158809cf"), Valve: 3,
		DurationS: 65536 + 59, ExpiresAt: exp.Add(999 * time.Millisecond)}
	b, err := valvecmd.EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > valvecmd.MaxCommandSize || len(b) > 11 {
		t.Fatalf("%d bytes: more than US915 DR0 carries", len(b))
	}
	got, err := valvecmd.DecodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Ref != 0x2b7e || got.ExpiresAt.After(c.ExpiresAt) || !got.ExpiresAt.Equal(exp) || got.DurationS > c.DurationS || got.DurationS != 65580 {
		t.Errorf("decoded %v from %v", got, c)
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, c := range map[string]valvecmd.Command{
		"no expiry":   {Action: valvecmd.ActionCloseAll},
		"valve 0":     {Action: valvecmd.ActionClose, ExpiresAt: exp},
		"valve 256":   {Action: valvecmd.ActionOpen, Valve: 256, DurationS: 1, ExpiresAt: exp},
		"no duration": {Action: valvecmd.ActionOpen, Valve: 1, ExpiresAt: exp},
		"too long":    {Action: valvecmd.ActionOpen, Valve: 1, DurationS: 65536 * 60, ExpiresAt: exp},
		"action":      {Action: "flush", ExpiresAt: exp},
	} {
		if b, err := valvecmd.EncodeCommand(c); err == nil {
			t.Errorf("%s: encoded % x", name, b)
		}
	}
	if _, err := valvecmd.EncodeState(valvecmd.State{Channels: 2, Open: map[int]bool{3: true}}); err == nil {
		t.Error("a state with valve 3 of 2 encoded")
	}
}

func FuzzDecodeCommand(f *testing.F) {
	seeds(f, "testdata/cmd_*.hex")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := valvecmd.DecodeCommand(b)
		if err != nil {
			return
		}
		again, err := valvecmd.EncodeCommand(c)
		if err != nil || !bytes.Equal(again, b) {
			// Minutes encode back as seconds when they fit; otherwise it must round-trip.
			if c.Action != valvecmd.ActionOpen || b[0]&0x0f != valvecmd.OpOpenMinutes {
				t.Fatalf("decoded %v from % x but it encodes to % x, %v", c, b, again, err)
			}
		}
		if len(again) > valvecmd.MaxCommandSize {
			t.Fatalf("%d bytes", len(again))
		}
	})
}

func FuzzDecodeUplink(f *testing.F) {
	seeds(f, "testdata/up_*.hex")
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := valvecmd.DecodeUplink(b)
		if err != nil {
			return
		}
		if (u.Ack == nil) == (u.State == nil) {
			t.Fatalf("uplink % x decoded to %+v", b, u)
		}
		if u.State != nil {
			if _, err := valvecmd.EncodeState(*u.State); err != nil {
				t.Fatalf("state % x decoded but does not encode: %v", b, err)
			}
		}
	})
}

func seeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, file := range files {
		f.Add(codectest.ReadFixture(f, file))
	}
}
