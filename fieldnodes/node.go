package fieldnodes

import (
	"math"
	"strings"
	"time"

	"github.com/twpayne/go-geom"
)

// Node is a registered field node (sensor). UID is its MQTT user name and the id in its topics.
type Node struct {
	ID                int64
	UID               string
	FarmID            int64
	ZoneID            *int64 // nil: not in a zone
	Name              string
	Profile           string // device profile; "native" (the default) for Aghali's own payloads
	DevEUI            string // LoRaWAN DevEUI, 16 lower-case hex digits; "" when none
	Location          *geom.Point
	DepthM            *float64 // sensor depth below ground (soil probes)
	HeightM           *float64 // sensor height above ground (wind, air)
	ExpectedIntervalS int      // how often it reports; default 900
	LastSeenAt        *time.Time
	BatteryV          *float64
	BatteryPct        *float64
	RSSIDBm           *float64 // best gateway's for LoRaWAN nodes
	SNRDB             *float64
	// What the LoRaWAN network server last said about the node's link (nil: not LoRaWAN, or not
	// said yet). FCntResets counts frame counter resets seen (device reboots, rejoins).
	Gateways           *int
	SpreadingFactor    *int
	FrequencyHz        *int64
	FCnt               *int64
	FCntResets         int
	LinkMarginDB       *float64
	LastJoinAt         *time.Time
	LastDownlinkAt     *time.Time
	LastDownlinkStatus string // acked, nacked, sent, failed: <why>
	CreatedAt          time.Time
	// Latest is the newest value of each metric (by metric name); filled by the read methods.
	Latest map[string]LatestValue
}

// LatestValue is a metric's newest value and its time.
type LatestValue struct {
	Value float64
	TS    time.Time
}

// DefaultExpectedIntervalS is a node's reporting interval when none is given.
const DefaultExpectedIntervalS = 900

// Device kinds: the two kinds of MQTT device that log in with a uid and secret.
const (
	KindNode       = "node"
	KindController = "controller"
)

// ValidUID reports whether uid may be a device uid (and so appear in a topic): the schema's rule
// ^[A-Za-z0-9._-]{1,64}$ for nodes.uid, controllers.uid and device_secrets.uid.
func ValidUID(uid string) bool {
	if len(uid) == 0 || len(uid) > 64 {
		return false
	}
	for i := 0; i < len(uid); i++ {
		c := uid[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidMetricName reports whether name may be a metric name: the schema's rule ^[a-z0-9_]{1,64}$.
func ValidMetricName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// normalize fills defaults and checks n, so the database is asked to store only what it accepts.
func (n *Node) normalize() error {
	n.UID = strings.TrimSpace(n.UID)
	if !ValidUID(n.UID) {
		return invalid("uid", "must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if n.FarmID <= 0 {
		return invalid("farm_id", "required")
	}
	if n.ZoneID != nil && *n.ZoneID <= 0 {
		return invalid("zone_id", "must be a zone id")
	}
	n.Name = strings.TrimSpace(n.Name)
	n.Profile = strings.TrimSpace(n.Profile)
	if n.Profile == "" {
		n.Profile = "native"
	}
	n.DevEUI = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(n.DevEUI), ":", ""))
	if n.DevEUI != "" && !validDevEUI(n.DevEUI) {
		return invalid("dev_eui", "must be 16 hexadecimal digits")
	}
	if n.ExpectedIntervalS == 0 {
		n.ExpectedIntervalS = DefaultExpectedIntervalS
	}
	if n.ExpectedIntervalS < 0 {
		return invalid("expected_interval_s", "must be positive")
	}
	if n.Location != nil {
		if n.Location.Empty() || n.Location.Layout() != geom.XY && n.Location.Layout() != geom.XYZ {
			return invalid("location", "must be a point with longitude and latitude")
		}
		lon, lat := n.Location.X(), n.Location.Y()
		if math.IsNaN(lon) || math.IsNaN(lat) || lon < -180 || lon > 180 || lat < -90 || lat > 90 {
			return invalid("location", "not [longitude, latitude] in degrees")
		}
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"depth_m", n.DepthM}, {"height_m", n.HeightM}} {
		if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0)) {
			return invalid(f.name, "must be a number")
		}
	}
	return nil
}

func validDevEUI(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
