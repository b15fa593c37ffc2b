package fieldnodes

import "time"

// Reading is one measured value of a node.
type Reading struct {
	NodeID int64
	Metric string
	TS     time.Time
	Value  float64
	// Flags: FlagOutOfRange when the value lies outside its metric's plausible range (kept,
	// but flagged).
	Flags int16
}

// FlagOutOfRange marks a reading outside its metric's plausible range (readings.flags bit 0).
const FlagOutOfRange int16 = 1
