package fieldnodes

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/aghali/aghali/fieldnodes/codec"
	"github.com/aghali/aghali/fieldnodes/codec/native"
	"github.com/aghali/aghali/fieldnodes/codec/senml"
)

// Rejection reasons: the short codes in rejected_messages.reason and the ingest's metrics.
const (
	RejectMalformed     = "malformed"      // not well-formed (broken JSON, empty)
	RejectInvalid       = "invalid"        // well-formed, but not a valid payload of its format
	RejectFuture        = "future_ts"      // a reading more than IngestConfig.MaxFuture ahead of the receive time
	RejectMetricName    = "metric_name"    // a metric name outside [a-z0-9_]{1,64}
	RejectForeignDevice = "foreign_device" // the payload names another device than its topic
	RejectTooLarge      = "too_large"      // more readings than one message may carry
	RejectTopic         = "topic"          // a topic that does not name a device
	RejectRefused       = "refused"        // the store refused the readings (e.g. too many unknown metrics)
)

// maxReadingsPerMessage bounds one message, so that a single message cannot swamp a batch.
const maxReadingsPerMessage = 1000

// topicKind is what a topic under the prefix is.
type topicKind int

const (
	topicOther topicKind = iota
	topicUplink
	topicAck
	topicState
)

// parseTopic splits {prefix}/nodes/{uid}/up and {prefix}/controllers/{uid}/{ack|state}, without
// allocating (the embedded broker asks for every publish).
func parseTopic(prefix, topic string) (topicKind, string) {
	if len(topic) <= len(prefix) || topic[:len(prefix)] != prefix || topic[len(prefix)] != '/' {
		return topicOther, ""
	}
	rest := topic[len(prefix)+1:]
	kind, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return topicOther, ""
	}
	uid, last, ok := strings.Cut(rest, "/")
	if !ok || !ValidUID(uid) {
		return topicOther, ""
	}
	switch {
	case kind == "nodes" && last == "up":
		return topicUplink, uid
	case kind == "controllers" && last == "ack":
		return topicAck, uid
	case kind == "controllers" && last == "state":
		return topicState, uid
	}
	return topicOther, ""
}

// rejection is why a message cannot be used.
type rejection struct {
	reason string
	detail string
}

// decodeNative decodes Aghali's native payload: a JSON array is a SenML pack, anything else
// the native object.
func decodeNative(payload []byte, received time.Time) ([]codec.Measurement, *rejection) {
	var ms []codec.Measurement
	var err error
	if t := bytes.TrimLeft(payload, " \t\r\n"); len(t) > 0 && t[0] == '[' {
		ms, err = senml.Decode(payload, received)
	} else {
		ms, err = native.Decode(payload, received)
	}
	if err != nil {
		return nil, codecRejection(err)
	}
	if len(ms) > maxReadingsPerMessage {
		return nil, &rejection{RejectTooLarge, fmt.Sprintf("%d readings in one message; at most %d", len(ms), maxReadingsPerMessage)}
	}
	return ms, nil
}

// decodeUplink turns a node's payload into measurements and checks what the codecs leave to
// their caller: metric names, that the payload names no other device, and that no reading is
// too far in the future.
func decodeUplink(uid string, payload []byte, received time.Time, maxFuture time.Duration) ([]codec.Measurement, *rejection) {
	ms, rej := decodeNative(payload, received)
	if rej != nil {
		return nil, rej
	}
	limit := received.Add(maxFuture)
	for _, m := range ms {
		if !ValidMetricName(m.Metric) {
			return nil, &rejection{RejectMetricName, fmt.Sprintf("%q is not a metric name (1 to 64 of a-z, 0-9, _)", m.Metric)}
		}
		if m.Device != "" && !namesDevice(m.Device, uid) {
			return nil, &rejection{RejectForeignDevice, fmt.Sprintf("payload names device %q, topic names %q", m.Device, uid)}
		}
		if m.Time.After(limit) {
			return nil, &rejection{RejectFuture, fmt.Sprintf("%s at %s is more than %v after the receive time %s",
				m.Metric, m.Time.UTC().Format(time.RFC3339), maxFuture, received.UTC().Format(time.RFC3339))}
		}
	}
	return ms, nil
}

// namesDevice: a payload's device name names uid when it is uid or ends in ":uid" or "/uid"
// (SenML base names such as "urn:dev:aghali:node-17").
func namesDevice(device, uid string) bool {
	if device == uid {
		return true
	}
	if !strings.HasSuffix(device, uid) {
		return false
	}
	c := device[len(device)-len(uid)-1]
	return c == ':' || c == '/'
}
