package fieldnodes

import "time"

// Reading is one measured value of a node.
type Reading struct {
	NodeID int64
	Metric string
	TS     time.Time
	Value  float64
}
