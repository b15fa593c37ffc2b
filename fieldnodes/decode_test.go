package fieldnodes

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
)

var received = time.Date(2026, 7, 6, 5, 15, 0, 0, time.UTC)

func TestParseTopic(t *testing.T) {
	cases := []struct {
		topic string
		kind  topicKind
		uid   string
	}{
		{"aghali/nodes/soil-01/up", topicUplink, "soil-01"},
		{"aghali/controllers/v.1/ack", topicAck, "v.1"},
		{"aghali/controllers/v_1/state", topicState, "v_1"},
		{"aghali/controllers/v1/cmd", topicOther, ""},
		{"aghali/nodes/soil-01/up/extra", topicOther, ""},
		{"aghali/nodes/bad uid/up", topicOther, ""},
		{"aghali/nodes//up", topicOther, ""},
		{"other/nodes/soil-01/up", topicOther, ""},
		{"aghalix/nodes/soil-01/up", topicOther, ""},
	}
	for _, c := range cases {
		kind, uid := parseTopic("aghali", c.topic)
		if kind != c.kind || uid != c.uid {
			t.Errorf("parseTopic(%q) = %v %q, want %v %q", c.topic, kind, uid, c.kind, c.uid)
		}
	}
}

func TestNamesDevice(t *testing.T) {
	for device, want := range map[string]bool{
		"soil-01": true, "urn:dev:aghali:soil-01": true, "farm/soil-01": true,
		"soil-02": false, "xsoil-01": false, "urn:dev:soil-011": false, "soil-01:x": false,
	} {
		if got := namesDevice(device, "soil-01"); got != want {
			t.Errorf("namesDevice(%q) = %v", device, got)
		}
	}
}

func TestDecodeUplinkChecks(t *testing.T) {
	tooMany := "[" + strings.Repeat(`{"n":"soil_vwc","v":1},`, maxReadingsPerMessage) + `{"n":"soil_vwc","v":1}]`
	cases := map[string]string{
		`{"readings":{"soil_vwc":0.2}}`:                    "",
		`[{"bn":"soil-01:","n":"soil_vwc","v":0.2}]`:       "",
		`  [{"n":"soil_vwc","v":0.2}]`:                     "",
		`{"readings":{"soil_vwc":0.2`:                      RejectMalformed,
		`[{"n":"soil_vwc","vs":"x"}]`:                      RejectInvalid,
		`{"readings":{"SoilVWC":0.2}}`:                     RejectMetricName,
		`[{"bn":"soil-02:","n":"soil_vwc","v":0.2}]`:       RejectForeignDevice,
		`{"ts":"2026-07-07T06:00:00Z","readings":{"x":1}}`: RejectFuture,
		`{"ts":"2026-07-07T05:00:00Z","readings":{"x":1}}`: "",
		tooMany: RejectTooLarge,
		``:      RejectMalformed,
	}
	for payload, want := range cases {
		ms, rej := decodeUplink("soil-01", []byte(payload), received, 24*time.Hour)
		got := ""
		if rej != nil {
			got = rej.reason
			if rej.detail == "" {
				t.Errorf("%.40s: rejection without detail", payload)
			}
		} else if len(ms) == 0 {
			t.Errorf("%.40s: no rejection and no readings", payload)
		}
		if got != want {
			t.Errorf("%.60s: reason %q, want %q (%v)", payload, got, want, rej)
		}
	}
}

func TestControllerPayloads(t *testing.T) {
	ack, err := decodeAck("v1", []byte(`{"id":"c-1","status":"rejected","reason":"valve 9 unknown"}`), received)
	if err != nil || ack.CommandID != "c-1" || ack.Status != "rejected" || ack.Reason != "valve 9 unknown" || ack.ControllerUID != "v1" || !ack.ReceivedAt.Equal(received) {
		t.Errorf("ack = %+v, %v", ack, err)
	}
	st, err := decodeState("v1", []byte(`{"valves":{"1":"open"}}`), received)
	if err != nil || !st.TS.Equal(received) || st.Valves[1] != "open" || st.FlowLPM != nil {
		t.Errorf("state = %+v, %v", st, err)
	}
	bad := map[string][]string{
		"ack": {`{"status":"ok"}`, `{"id":"x","status":"done"}`, `{"id":1,"status":"ok"}`, `[1]`, `{oops`, `null`},
		"state": {`{"valves":{"0":"open"}}`, `{"valves":{"1":"ajar"}}`, `{"ts":"soon"}`, `{"flow_lpm":"1"}`, `{oops`,
			`{"valves":{"x":"open"}}`},
	}
	for kind, payloads := range bad {
		for _, p := range payloads {
			var err error
			if kind == "ack" {
				_, err = decodeAck("v1", []byte(p), received)
			} else {
				_, err = decodeState("v1", []byte(p), received)
			}
			var ce *codec.Error
			if !errors.As(err, &ce) {
				t.Errorf("%s %s: err = %v, want a *codec.Error", kind, p, err)
			}
		}
	}
}

func FuzzControllerPayloads(f *testing.F) {
	for _, s := range []string{
		`{"id":"c-1","status":"ok"}`, `{"id":"c-1","status":"rejected","reason":"x"}`,
		`{"ts":"2026-07-06T05:00:00Z","valves":{"1":"closed","3":"open"},"flow_lpm":12.5,"volume_l":10342.0}`,
		`{"valves":{"256":"open"}}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		if ack, err := decodeAck("v1", payload, received); err == nil && (ack.CommandID == "" || (ack.Status != "ok" && ack.Status != "rejected")) {
			t.Fatalf("accepted ack %+v", ack)
		}
		if st, err := decodeState("v1", payload, received); err == nil {
			for n, s := range st.Valves {
				if n < 1 || n > 255 || (s != "open" && s != "closed") {
					t.Fatalf("accepted state %+v", st)
				}
			}
		}
	})
}
