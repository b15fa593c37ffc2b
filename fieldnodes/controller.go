package fieldnodes

import (
	"context"
	"time"
)

// Command is a valve command, server → controller (DESIGN.md: MQTT contract). The JSON form is
// what is published on {prefix}/controllers/{uid}/cmd.
type Command struct {
	ID        string    `json:"id"` // UUID
	Action    string    `json:"action"`
	Valve     int       `json:"valve,omitempty"`
	DurationS int       `json:"duration_s,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Command actions.
const (
	ActionOpen     = "open"
	ActionClose    = "close"
	ActionCloseAll = "close_all"
)

// ControllerAck is a controller's answer to a command.
type ControllerAck struct {
	ControllerUID string
	CommandID     string
	Status        string // "ok" or "rejected"
	Reason        string
	ReceivedAt    time.Time
}

// ControllerState is a controller's report of its valves and flow.
type ControllerState struct {
	ControllerUID string
	TS            time.Time      // the controller's time; ReceivedAt when it sent none
	Valves        map[int]string // valve number → "open" | "closed"
	FlowLPM       *float64
	VolumeL       *float64
	ReceivedAt    time.Time
}

// ControllerHandler takes what controllers send. Package irrigation satisfies it; the MQTT
// message is acknowledged to the broker only after the handler returns nil.
type ControllerHandler interface {
	HandleAck(ctx context.Context, ack ControllerAck) error
	HandleState(ctx context.Context, st ControllerState) error
}

// ReadingsListener is told which nodes in irrigation zones got new readings, as soon as they
// are committed (before the node upkeep, node_latest and last seen, is written behind), and
// when; package irrigation evaluates the rules of their zones. It must not block for long.
type ReadingsListener interface {
	ReadingsCommitted(ctx context.Context, nodeIDs []int64, committedAt time.Time)
}
