package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
)

// Handlers of field nodes (sensors) and their MQTT secrets.

type latestJSON struct {
	Value float64   `json:"value"`
	TS    time.Time `json:"ts"`
}

type nodeJSON struct {
	ID                int64                 `json:"id"`
	UID               string                `json:"uid"`
	FarmID            int64                 `json:"farm_id"`
	ZoneID            *int64                `json:"zone_id"`
	Name              string                `json:"name"`
	Profile           string                `json:"profile"`
	DevEUI            *string               `json:"dev_eui"`
	Location          json.RawMessage       `json:"location"` // Point or null
	DepthM            *float64              `json:"depth_m"`
	HeightM           *float64              `json:"height_m"`
	ExpectedIntervalS int                   `json:"expected_interval_s"`
	LastSeenAt        *time.Time            `json:"last_seen_at"`
	BatteryV          *float64              `json:"battery_v"`
	BatteryPct        *float64              `json:"battery_pct"`
	RSSIDBm           *float64              `json:"rssi_dbm"`
	SNRDB             *float64              `json:"snr_db"`
	Stale             bool                  `json:"stale"`
	Latest            map[string]latestJSON `json:"latest"`
}

// nodeCreatedJSON is the answer to POST: the node and, for an MQTT node, its secret, shown
// this once.
type nodeCreatedJSON struct {
	nodeJSON
	Secret *string `json:"secret,omitempty"`
}

// staleAfterIntervals: a node is stale when it has not been heard from for this many of its
// expected reporting intervals.
const staleAfterIntervals = 3

// nodeStale reports whether a node has been silent for staleAfterIntervals intervals, counted
// from its last report or, before its first, from its registration.
func nodeStale(n fieldnodes.Node, now time.Time) bool {
	since := n.CreatedAt
	if n.LastSeenAt != nil {
		since = *n.LastSeenAt
	}
	interval := time.Duration(n.ExpectedIntervalS) * time.Second
	if interval <= 0 {
		interval = fieldnodes.DefaultExpectedIntervalS * time.Second
	}
	return now.Sub(since) > staleAfterIntervals*interval
}

func latestOf(l map[string]fieldnodes.LatestValue) map[string]latestJSON {
	out := make(map[string]latestJSON, len(l))
	for name, v := range l {
		out[name] = latestJSON{Value: v.Value, TS: utc(v.TS)}
	}
	return out
}

func nodeOf(n fieldnodes.Node, now time.Time) (nodeJSON, error) {
	loc, err := geo.Marshal(n.Location)
	if err != nil {
		return nodeJSON{}, err
	}
	var eui *string
	if n.DevEUI != "" {
		eui = &n.DevEUI
	}
	return nodeJSON{
		ID: n.ID, UID: n.UID, FarmID: n.FarmID, ZoneID: n.ZoneID, Name: n.Name, Profile: n.Profile, DevEUI: eui,
		Location: loc, DepthM: n.DepthM, HeightM: n.HeightM, ExpectedIntervalS: n.ExpectedIntervalS,
		LastSeenAt: utcp(n.LastSeenAt), BatteryV: n.BatteryV, BatteryPct: n.BatteryPct, RSSIDBm: n.RSSIDBm, SNRDB: n.SNRDB,
		Stale: nodeStale(n, now), Latest: latestOf(n.Latest),
	}, nil
}

// nodeInput is the body of POST (uid required) and PATCH (all optional; uid may be sent but not
// changed, since it is the device's MQTT login).
type nodeInput struct {
	UID               *string           `json:"uid"`
	ZoneID            nullable[int64]   `json:"zone_id"`
	Name              *string           `json:"name"`
	Profile           *string           `json:"profile"`
	DevEUI            nullable[string]  `json:"dev_eui"`
	Location          json.RawMessage   `json:"location"` // absent: unchanged; null: none
	DepthM            nullable[float64] `json:"depth_m"`
	HeightM           nullable[float64] `json:"height_m"`
	ExpectedIntervalS *int              `json:"expected_interval_s"`
}

func (in nodeInput) apply(n *fieldnodes.Node) error {
	in.ZoneID.apply(&n.ZoneID)
	set(&n.Name, in.Name)
	set(&n.Profile, in.Profile)
	if in.DevEUI.Set {
		n.DevEUI = ""
		set(&n.DevEUI, in.DevEUI.Value)
	}
	in.DepthM.apply(&n.DepthM)
	in.HeightM.apply(&n.HeightM)
	if in.ExpectedIntervalS != nil {
		if *in.ExpectedIntervalS <= 0 {
			// The store reads 0 as "the default"; a person who sends 0 means something else.
			return &ValidationError{Field: "expected_interval_s", Problem: "must be a positive number of seconds"}
		}
		n.ExpectedIntervalS = *in.ExpectedIntervalS
	}
	if in.Location != nil {
		p, err := geo.ParsePoint(in.Location)
		if err != nil {
			return renameField(err, "location")
		}
		n.Location = p
	}
	return nil
}

// listNodes: GET /farms/{farm}/nodes.
func (s *Server) listNodes(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	nodes, err := s.nodes.Nodes(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	now := s.now()
	out := make([]nodeJSON, 0, len(nodes))
	for _, n := range nodes {
		j, err := nodeOf(n, now)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

// createNode: POST /farms/{farm}/nodes (agronomist) → 201 node with its MQTT secret, unless it
// is a LoRaWAN node (dev_eui given), which reaches Aghali through its network server and has
// none.
func (s *Server) createNode(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in nodeInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.UID == nil {
		return &ValidationError{Field: "uid", Problem: "required"}
	}
	n := fieldnodes.Node{FarmID: farm.ID, UID: *in.UID}
	if err := in.apply(&n); err != nil {
		return err
	}
	ctx := c.Request().Context()
	n, err = s.nodes.CreateNode(ctx, n)
	if err != nil {
		return err
	}
	out := nodeCreatedJSON{}
	if n.DevEUI == "" {
		secret, err := s.nodes.NewSecret(ctx, n.UID, fieldnodes.KindNode)
		if err != nil {
			// A node nobody can log in as, and whose secret nobody saw, is of no use: undo.
			s.undoNode(ctx, n.ID)
			if errors.Is(err, fieldnodes.ErrConflict) {
				return &refusal{detail: fmt.Sprintf("uid %q is taken by a controller", n.UID), cause: err}
			}
			return fmt.Errorf("issue the secret of node %q: %w", n.UID, err)
		}
		out.Secret = &secret
	}
	if out.nodeJSON, err = nodeOf(n, s.now()); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "create", Entity: "node", EntityID: n.ID, Detail: out.nodeJSON})
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) undoNode(ctx context.Context, id int64) {
	if err := s.nodes.DeleteNode(context.WithoutCancel(ctx), id); err != nil {
		s.log.Error("node without a secret left behind", "node", id, "err", err)
	}
}

func (s *Server) nodeOfPath(c echo.Context, min Role) (fieldnodes.Node, geo.Farm, error) {
	return onFarm(s, c, "node", min, s.nodes.Node, func(n fieldnodes.Node) int64 { return n.FarmID })
}

// getNode: GET /nodes/{node}.
func (s *Server) getNode(c echo.Context) error {
	n, _, err := s.nodeOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	out, err := nodeOf(n, s.now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// updateNode: PATCH /nodes/{node} (agronomist). The uid and the farm stay.
func (s *Server) updateNode(c echo.Context) error {
	n, farm, err := s.nodeOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in nodeInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.UID != nil && *in.UID != n.UID {
		return &ValidationError{Field: "uid", Problem: "cannot be changed (it is the device's login); register a new node instead"}
	}
	if err := in.apply(&n); err != nil {
		return err
	}
	n, err = s.nodes.UpdateNode(c.Request().Context(), n)
	if err != nil {
		return err
	}
	out, err := nodeOf(n, s.now())
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "node", EntityID: n.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// deleteNode: DELETE /nodes/{node} (agronomist); its MQTT secret goes with it.
func (s *Server) deleteNode(c echo.Context) error {
	n, farm, err := s.nodeOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	if err := s.nodes.DeleteNode(c.Request().Context(), n.ID); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "delete", Entity: "node", EntityID: n.ID, Detail: map[string]string{"uid": n.UID, "name": n.Name}})
	return c.NoContent(http.StatusNoContent)
}

// secretJSON is a device's new MQTT password, shown once.
type secretJSON struct {
	UID    string `json:"uid"`
	Secret string `json:"secret"`
}

// rotateNodeSecret: POST /nodes/{node}/secret (agronomist) → a new MQTT secret; the old one
// stops working. A LoRaWAN node (dev_eui set) has none: 422.
func (s *Server) rotateNodeSecret(c echo.Context) error {
	n, farm, err := s.nodeOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	if n.DevEUI != "" {
		return &ValidationError{Field: "dev_eui", Problem: "a LoRaWAN node reaches Aghali through its network server and has no MQTT secret"}
	}
	secret, err := s.nodes.NewSecret(c.Request().Context(), n.UID, fieldnodes.KindNode)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "rotate_secret", Entity: "node", EntityID: n.ID, Detail: map[string]string{"uid": n.UID}})
	return c.JSON(http.StatusOK, secretJSON{UID: n.UID, Secret: secret})
}
