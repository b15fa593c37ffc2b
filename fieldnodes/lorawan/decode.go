package lorawan

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"

	"github.com/aghali/aghali/fieldnodes/codec"
)

// DecodeObject reads a network server's JSON message into v, with the reasons the adapters give
// (network names them): an empty payload or one that is not JSON is a syntax error; anything
// but an object, or a field of the wrong type, a schema error.
func DecodeObject(network string, payload []byte, v any) error {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return codec.Errorf(network, codec.ReasonSyntax, "empty payload")
	}
	if !json.Valid(trimmed) {
		return codec.Errorf(network, codec.ReasonSyntax, "not JSON")
	}
	if trimmed[0] != '{' {
		return codec.Errorf(network, codec.ReasonSchema, "want a JSON object")
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return codec.Errorf(network, codec.ReasonSchema, "%s: wrong type (JSON %s)", typ.Field, typ.Value)
		}
		return codec.Errorf(network, codec.ReasonSchema, "%v", err)
	}
	return nil
}

// Finite reports whether an optional number is absent or finite.
func Finite(p *float64) bool { return p == nil || !math.IsNaN(*p) && !math.IsInf(*p, 0) }
