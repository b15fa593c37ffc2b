package devicesim

import (
	"encoding/json"
	"fmt"
	"os"
)

// Fleet describes the simulated devices and the zones whose soil they share.
type Fleet struct {
	Zones       []Zone       `json:"zones"`
	Nodes       []Node       `json:"nodes"`
	Controllers []Controller `json:"controllers"`
}

// Zone is a patch of soil shared by the nodes and valves that point at it.
type Zone struct {
	Name          string  `json:"name"`
	VWC           float64 `json:"vwc"`             // starting volumetric water content, m3/m3
	FieldCapacity float64 `json:"field_capacity"`  // m3/m3; above it water drains away quickly
	WiltingPoint  float64 `json:"wilting_point"`   // m3/m3; the soil does not dry below it
	RootDepthM    float64 `json:"root_depth_m"`    // depth over which water spreads
	RateMMH       float64 `json:"application_mmh"` // water added while a valve is open
	DailyETmm     float64 `json:"daily_et_mm"`     // water lost over a whole day
}

// Node is a simulated sensor node.
type Node struct {
	UID    string `json:"uid"`
	Secret string `json:"secret"`
	Kind   string `json:"kind"` // "soil" or "weather"
	Zone   int    `json:"zone"` // index into Fleet.Zones (soil nodes)
}

// Controller is a simulated valve controller.
type Controller struct {
	UID    string  `json:"uid"`
	Secret string  `json:"secret"`
	Valves []Valve `json:"valves"`
}

// Valve is one channel of a controller.
type Valve struct {
	Channel int     `json:"channel"`
	Zone    int     `json:"zone"`     // index into Fleet.Zones; -1 for none
	FlowLPM float64 `json:"flow_lpm"` // flow while open
}

// Validate checks that every reference in the fleet points somewhere.
func (f Fleet) Validate() error {
	for i, z := range f.Zones {
		if z.RootDepthM <= 0 || z.FieldCapacity <= z.WiltingPoint {
			return fmt.Errorf("zone %d (%s): needs root_depth_m > 0 and field_capacity > wilting_point", i, z.Name)
		}
	}
	for _, n := range f.Nodes {
		if n.UID == "" || n.Secret == "" {
			return fmt.Errorf("node %q: uid and secret are required", n.UID)
		}
		switch n.Kind {
		case "soil":
			if n.Zone < 0 || n.Zone >= len(f.Zones) {
				return fmt.Errorf("node %s: zone %d does not exist", n.UID, n.Zone)
			}
		case "weather":
		default:
			return fmt.Errorf("node %s: kind %q is neither soil nor weather", n.UID, n.Kind)
		}
	}
	for _, c := range f.Controllers {
		if c.UID == "" || c.Secret == "" {
			return fmt.Errorf("controller %q: uid and secret are required", c.UID)
		}
		seen := map[int]bool{}
		for _, v := range c.Valves {
			if v.Channel < 1 || seen[v.Channel] {
				return fmt.Errorf("controller %s: valve channel %d is not a unique number ≥ 1", c.UID, v.Channel)
			}
			seen[v.Channel] = true
			if v.Zone >= len(f.Zones) {
				return fmt.Errorf("controller %s valve %d: zone %d does not exist", c.UID, v.Channel, v.Zone)
			}
		}
	}
	return nil
}

// LoadFleet reads a fleet from a JSON file (as written by `aghali demo`).
func LoadFleet(path string) (Fleet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Fleet{}, err
	}
	var f Fleet
	if err := json.Unmarshal(b, &f); err != nil {
		return Fleet{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, f.Validate()
}
