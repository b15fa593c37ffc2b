package fieldnodes

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
)

// controllerCodec names the controller JSON payloads in errors and rejection records.
const controllerCodec = "controller"

// decodeAck decodes a controller's ack: {"id":"<uuid>","status":"ok"} or
// {"id":"<uuid>","status":"rejected","reason":"valve 9 unknown"}.
func decodeAck(uid string, payload []byte, received time.Time) (ControllerAck, error) {
	var v struct {
		ID     *string `json:"id"`
		Status *string `json:"status"`
		Reason string  `json:"reason"`
	}
	if err := unmarshalObject(payload, &v); err != nil {
		return ControllerAck{}, err
	}
	if v.ID == nil || strings.TrimSpace(*v.ID) == "" {
		return ControllerAck{}, codec.Errorf(controllerCodec, codec.ReasonSchema, "ack: id is required")
	}
	if v.Status == nil || (*v.Status != "ok" && *v.Status != "rejected") {
		return ControllerAck{}, codec.Errorf(controllerCodec, codec.ReasonSchema, `ack: status must be "ok" or "rejected"`)
	}
	return ControllerAck{ControllerUID: uid, CommandID: *v.ID, Status: *v.Status, Reason: v.Reason, ReceivedAt: received}, nil
}

// decodeState decodes a controller's state report:
// {"ts":"...","valves":{"1":"closed","3":"open"},"flow_lpm":12.5,"volume_l":10342.0}; ts is
// optional (the receive time when absent).
func decodeState(uid string, payload []byte, received time.Time) (ControllerState, error) {
	var v struct {
		TS      *string           `json:"ts"`
		Valves  map[string]string `json:"valves"`
		FlowLPM *float64          `json:"flow_lpm"`
		VolumeL *float64          `json:"volume_l"`
	}
	if err := unmarshalObject(payload, &v); err != nil {
		return ControllerState{}, err
	}
	st := ControllerState{ControllerUID: uid, TS: received, ReceivedAt: received, Valves: make(map[int]string, len(v.Valves)),
		FlowLPM: v.FlowLPM, VolumeL: v.VolumeL}
	if v.TS != nil {
		ts, err := time.Parse(time.RFC3339Nano, *v.TS)
		if err != nil || !codec.InRange(ts) {
			return ControllerState{}, codec.Errorf(controllerCodec, codec.ReasonValue, "state: ts %q is not an RFC 3339 time", *v.TS)
		}
		st.TS = ts.UTC()
	}
	for k, s := range v.Valves {
		n, err := strconv.Atoi(k)
		if err != nil || n < 1 || n > 255 {
			return ControllerState{}, codec.Errorf(controllerCodec, codec.ReasonValue, "state: valve %q is not a number from 1 to 255", k)
		}
		if s != "open" && s != "closed" {
			return ControllerState{}, codec.Errorf(controllerCodec, codec.ReasonValue, `state: valve %d is %q, want "open" or "closed"`, n, s)
		}
		st.Valves[n] = s
	}
	for name, f := range map[string]*float64{"flow_lpm": v.FlowLPM, "volume_l": v.VolumeL} {
		if f != nil && (math.IsNaN(*f) || math.IsInf(*f, 0)) {
			return ControllerState{}, codec.Errorf(controllerCodec, codec.ReasonValue, "state: %s out of range", name)
		}
	}
	return st, nil
}

func unmarshalObject(payload []byte, v any) error {
	if !json.Valid(payload) {
		return codec.Errorf(controllerCodec, codec.ReasonSyntax, "not JSON")
	}
	if err := json.Unmarshal(payload, v); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			field := te.Field
			if field == "" {
				field = "payload"
			}
			return codec.Errorf(controllerCodec, codec.ReasonSchema, "%s: wrong type (JSON %s)", field, te.Value)
		}
		return codec.Errorf(controllerCodec, codec.ReasonSchema, "%v", err)
	}
	return nil
}
