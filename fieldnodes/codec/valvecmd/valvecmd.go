package valvecmd

import (
	"encoding/binary"
	"encoding/hex"

	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Version is the layout version, the high nibble of every message's first byte.
const Version = 1

// Opcodes, the low nibble of the first byte. Downlinks 0x1–0x4, uplinks 0x8–0xA.
const (
	OpOpenSeconds = 0x1 // open; duration in seconds
	OpOpenMinutes = 0x2 // open; duration in minutes (durations over 65,535 s)
	OpClose       = 0x3
	OpCloseAll    = 0x4
	OpAckOK       = 0x8
	OpAckRejected = 0x9
	OpState       = 0xA
)

// Actions, as in the JSON contract.
const (
	ActionOpen     = "open"
	ActionClose    = "close"
	ActionCloseAll = "close_all"
)

// MaxCommandSize is the longest encoded command (an open).
const MaxCommandSize = 10

// Command is a valve command.
type Command struct {
	Action    string
	Ref       uint16 // the command's reference: RefOf(its UUID); the ack carries it back
	Valve     int    // 1–255; open and close
	DurationS int    // open: > 0
	ExpiresAt time.Time
}

func (c Command) String() string {
	s := fmt.Sprintf("%s ref=%04x expires=%s", c.Action, c.Ref, c.ExpiresAt.UTC().Format(time.RFC3339))
	if c.Action != ActionCloseAll {
		s += fmt.Sprintf(" valve=%d", c.Valve)
	}
	if c.Action == ActionOpen {
		s += fmt.Sprintf(" duration_s=%d", c.DurationS)
	}
	return s
}

// RefOf is the 16-bit reference of a command UUID: its first two bytes. Zero for a malformed id.
func RefOf(id string) uint16 {
	h := strings.ReplaceAll(id, "-", "")
	if len(h) < 4 {
		return 0
	}
	b, err := hex.DecodeString(h[:4])
	if err != nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// Error is a message that cannot be encoded or decoded.
type Error struct{ Problem string }

func (e *Error) Error() string { return "valvecmd: " + e.Problem }

func errorf(format string, args ...any) error { return &Error{Problem: fmt.Sprintf(format, args...)} }

// EncodeCommand returns the downlink for c. ExpiresAt is rounded down to the second, and a
// duration over 65,535 s down to the minute, so the controller never acts later or longer
// than the server asked.
func EncodeCommand(c Command) ([]byte, error) {
	exp := c.ExpiresAt.Unix()
	if c.ExpiresAt.IsZero() || exp <= 0 || exp > math.MaxUint32 {
		return nil, errorf("expires_at %s is outside 1970–2106", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	b := make([]byte, 7, MaxCommandSize)
	binary.BigEndian.PutUint16(b[1:3], c.Ref)
	binary.BigEndian.PutUint32(b[3:7], uint32(exp))
	valve := func() error {
		if c.Valve < 1 || c.Valve > 255 {
			return errorf("valve %d is not 1–255", c.Valve)
		}
		b = append(b, byte(c.Valve))
		return nil
	}
	switch c.Action {
	case ActionOpen:
		op, d := byte(OpOpenSeconds), c.DurationS
		if d > math.MaxUint16 {
			op, d = OpOpenMinutes, d/60
		}
		if c.DurationS <= 0 || d > math.MaxUint16 {
			return nil, errorf("duration_s %d is not 1–%d", c.DurationS, math.MaxUint16*60)
		}
		b[0] = Version<<4 | op
		if err := valve(); err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint16(b, uint16(d))
	case ActionClose:
		b[0] = Version<<4 | OpClose
		if err := valve(); err != nil {
			return nil, err
		}
	case ActionCloseAll:
		b[0] = Version<<4 | OpCloseAll
	default:
		return nil, errorf("action %q is not open, close or close_all", c.Action)
	}
	return b, nil
}

// DecodeCommand reads a downlink, as a controller does.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) < 7 {
		return Command{}, errorf("command of %d bytes: at least 7", len(b))
	}
	if v := b[0] >> 4; v != Version {
		return Command{}, errorf("version %d: want %d", v, Version)
	}
	c := Command{Ref: binary.BigEndian.Uint16(b[1:3]), ExpiresAt: time.Unix(int64(binary.BigEndian.Uint32(b[3:7])), 0).UTC()}
	if c.ExpiresAt.Unix() == 0 {
		return Command{}, errorf("expires_at is 0")
	}
	want := 0
	switch op := b[0] & 0x0f; op {
	case OpOpenSeconds, OpOpenMinutes:
		c.Action, want = ActionOpen, 10
		if len(b) == want {
			c.Valve = int(b[7])
			c.DurationS = int(binary.BigEndian.Uint16(b[8:10]))
			if op == OpOpenMinutes {
				c.DurationS *= 60
			}
			if c.DurationS == 0 {
				return Command{}, errorf("open with duration 0")
			}
		}
	case OpClose:
		c.Action, want = ActionClose, 8
		if len(b) == want {
			c.Valve = int(b[7])
		}
	case OpCloseAll:
		c.Action, want = ActionCloseAll, 7
	default:
		return Command{}, errorf("opcode 0x%x is not a command", op)
	}
	if len(b) != want {
		return Command{}, errorf("%s of %d bytes: want %d", c.Action, len(b), want)
	}
	if c.Action != ActionCloseAll && c.Valve == 0 {
		return Command{}, errorf("valve 0")
	}
	return c, nil
}

// Reasons a controller gives for rejecting a command (the byte after an OpAckRejected's ref).
const (
	ReasonExpired      = 1
	ReasonUnknownValve = 2
	ReasonMalformed    = 3
	ReasonFault        = 4
)

var reasonText = map[byte]string{ReasonExpired: "expired", ReasonUnknownValve: "valve unknown",
	ReasonMalformed: "malformed command", ReasonFault: "controller fault"}

// Ack is a controller's answer to a command.
type Ack struct {
	Ref  uint16
	OK   bool
	Code byte // rejected: one of the Reason codes (others are kept as they are)
}

// Reason is the rejection in words.
func (a Ack) Reason() string {
	if a.OK {
		return ""
	}
	if s, ok := reasonText[a.Code]; ok {
		return s
	}
	return fmt.Sprintf("reason code %d", a.Code)
}

// State is a controller's report of its valves and meter.
type State struct {
	TS       time.Time    // zero: the controller has no clock (the receive time is used)
	Channels int          // valves 1…Channels are reported
	Open     map[int]bool // valve → open
	FlowLPM  *float64     // 0.1 L/min resolution, up to 6,553.4
	VolumeL  *float64     // whole litres, up to 4,294,967,294
}

// Uplink is one decoded uplink: an ack or a state report.
type Uplink struct {
	Ack   *Ack
	State *State
}

func (u Uplink) String() string {
	switch {
	case u.Ack != nil && u.Ack.OK:
		return fmt.Sprintf("ack ok ref=%04x", u.Ack.Ref)
	case u.Ack != nil:
		return fmt.Sprintf("ack rejected ref=%04x reason=%q", u.Ack.Ref, u.Ack.Reason())
	}
	s := u.State
	var b strings.Builder
	b.WriteString("state")
	if !s.TS.IsZero() {
		b.WriteString(" ts=" + s.TS.UTC().Format(time.RFC3339))
	}
	for ch := 1; ch <= s.Channels; ch++ {
		state := "closed"
		if s.Open[ch] {
			state = "open"
		}
		fmt.Fprintf(&b, " %d=%s", ch, state)
	}
	if s.FlowLPM != nil {
		fmt.Fprintf(&b, " flow_lpm=%.1f", *s.FlowLPM)
	}
	if s.VolumeL != nil {
		fmt.Fprintf(&b, " volume_l=%.0f", *s.VolumeL)
	}
	return b.String()
}

// EncodeAck returns the uplink of an ack.
func EncodeAck(a Ack) []byte {
	if a.OK {
		return []byte{Version<<4 | OpAckOK, byte(a.Ref >> 8), byte(a.Ref)}
	}
	return []byte{Version<<4 | OpAckRejected, byte(a.Ref >> 8), byte(a.Ref), a.Code}
}

const (
	noFlow   = math.MaxUint16
	noVolume = math.MaxUint32
)

// EncodeState returns the uplink of a state report.
func EncodeState(s State) ([]byte, error) {
	if s.Channels < 1 || s.Channels > 255 {
		return nil, errorf("channels %d is not 1–255", s.Channels)
	}
	b := []byte{Version<<4 | OpState, 0, 0, 0, 0, byte(s.Channels)}
	if !s.TS.IsZero() {
		if s.TS.Unix() <= 0 || s.TS.Unix() > math.MaxUint32 {
			return nil, errorf("ts outside 1970–2106")
		}
		binary.BigEndian.PutUint32(b[1:5], uint32(s.TS.Unix()))
	}
	bitmap := make([]byte, (s.Channels+7)/8)
	for ch, open := range s.Open {
		if ch < 1 || ch > s.Channels {
			return nil, errorf("valve %d is outside 1–%d", ch, s.Channels)
		}
		if open {
			bitmap[(ch-1)/8] |= 1 << ((ch - 1) % 8)
		}
	}
	b = append(b, bitmap...)
	flow := uint16(noFlow)
	if s.FlowLPM != nil {
		f := math.Round(*s.FlowLPM * 10)
		if math.IsNaN(f) || f < 0 || f >= noFlow {
			return nil, errorf("flow_lpm %v is outside 0–6553.4", *s.FlowLPM)
		}
		flow = uint16(f)
	}
	b = binary.BigEndian.AppendUint16(b, flow)
	vol := uint32(noVolume)
	if s.VolumeL != nil {
		v := math.Round(*s.VolumeL)
		if math.IsNaN(v) || v < 0 || v >= noVolume {
			return nil, errorf("volume_l %v is outside 0–4294967294", *s.VolumeL)
		}
		vol = uint32(v)
	}
	return binary.BigEndian.AppendUint32(b, vol), nil
}

// DecodeUplink reads an uplink from a controller.
func DecodeUplink(b []byte) (Uplink, error) {
	if len(b) < 3 {
		return Uplink{}, errorf("uplink of %d bytes: at least 3", len(b))
	}
	if v := b[0] >> 4; v != Version {
		return Uplink{}, errorf("version %d: want %d", v, Version)
	}
	switch op := b[0] & 0x0f; op {
	case OpAckOK:
		if len(b) != 3 {
			return Uplink{}, errorf("ack of %d bytes: want 3", len(b))
		}
		return Uplink{Ack: &Ack{Ref: binary.BigEndian.Uint16(b[1:3]), OK: true}}, nil
	case OpAckRejected:
		if len(b) != 4 {
			return Uplink{}, errorf("rejection of %d bytes: want 4", len(b))
		}
		return Uplink{Ack: &Ack{Ref: binary.BigEndian.Uint16(b[1:3]), Code: b[3]}}, nil
	case OpState:
		if len(b) < 6 {
			return Uplink{}, errorf("state of %d bytes: at least 6", len(b))
		}
		s := State{Channels: int(b[5]), Open: map[int]bool{}}
		if s.Channels == 0 {
			return Uplink{}, errorf("state of 0 valves")
		}
		n := (s.Channels + 7) / 8
		if len(b) != 6+n+6 {
			return Uplink{}, errorf("state of %d valves in %d bytes: want %d", s.Channels, len(b), 6+n+6)
		}
		if ts := binary.BigEndian.Uint32(b[1:5]); ts != 0 {
			s.TS = time.Unix(int64(ts), 0).UTC()
		}
		for ch := 1; ch <= s.Channels; ch++ {
			s.Open[ch] = b[6+(ch-1)/8]&(1<<((ch-1)%8)) != 0
		}
		if pad := b[6+n-1] >> (s.Channels - (n-1)*8); s.Channels%8 != 0 && pad != 0 {
			return Uplink{}, errorf("bits set beyond valve %d", s.Channels)
		}
		if f := binary.BigEndian.Uint16(b[6+n:]); f != noFlow {
			v := float64(f) / 10
			s.FlowLPM = &v
		}
		if vol := binary.BigEndian.Uint32(b[6+n+2:]); vol != noVolume {
			v := float64(vol)
			s.VolumeL = &v
		}
		return Uplink{State: &s}, nil
	default:
		return Uplink{}, errorf("opcode 0x%x is not an uplink", op)
	}
}

// OpenValves lists the open valves of a state, in order.
func (s State) OpenValves() []int {
	var out []int
	for ch, open := range s.Open {
		if open {
			out = append(out, ch)
		}
	}
	slices.Sort(out)
	return out
}
