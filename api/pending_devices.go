package api

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
)

// Claiming a pending device: a device that published before it was registered (devices.go
// lists them) becomes a node of a farm, and what it sent so far becomes its readings.

// claimInput is the body of POST /pending-devices/{id}/claim.
type claimInput struct {
	FarmID            int64           `json:"farm_id"`
	ZoneID            *int64          `json:"zone_id"`
	UID               string          `json:"uid"`     // LoRaWAN only; a native device keeps its own
	Name              string          `json:"name"`    // default: the network server's name for it
	Profile           string          `json:"profile"` // default: native (MQTT), cayenne (LoRaWAN)
	Location          json.RawMessage `json:"location"`
	DepthM            *float64        `json:"depth_m"`
	HeightM           *float64        `json:"height_m"`
	ExpectedIntervalS int             `json:"expected_interval_s"` // 0: the profile's
}

type claimJSON struct {
	Node     nodeJSON `json:"node"`
	Readings int      `json:"readings"` // stored from the payloads it had sent
	Skipped  int      `json:"skipped"`  // payloads the profile could not use
}

// claimPendingDevice: POST /pending-devices/{id}/claim (admin of the farm's organisation) →
// 201 the node, and how many readings its kept payloads gave. A native device keeps the MQTT
// secret it already logs in with; none is issued.
func (s *Server) claimPendingDevice(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in claimInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.FarmID <= 0 {
		return &ValidationError{Field: "farm_id", Problem: "required"}
	}
	farm, err := s.requireFarm(c, in.FarmID, RoleAdmin)
	if err != nil {
		return err
	}
	claim := fieldnodes.Claim{UID: in.UID, FarmID: farm.ID, ZoneID: in.ZoneID, Name: in.Name, Profile: in.Profile,
		DepthM: in.DepthM, HeightM: in.HeightM, ExpectedIntervalS: in.ExpectedIntervalS}
	if in.ExpectedIntervalS < 0 {
		return &ValidationError{Field: "expected_interval_s", Problem: "must be a positive number of seconds"}
	}
	if len(in.Location) > 0 && string(in.Location) != "null" {
		if claim.Location, err = geo.ParsePoint(in.Location); err != nil {
			return renameField(err, "location")
		}
	}
	res, err := s.nodes.ClaimPending(c.Request().Context(), id, claim)
	if err != nil {
		return err
	}
	out := claimJSON{Readings: res.Readings, Skipped: res.Skipped}
	if out.Node, err = nodeOf(res.Node, s.now()); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "claim", Entity: "node", EntityID: res.Node.ID, Detail: out})
	return c.JSON(http.StatusCreated, out)
}
