package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/fieldnodes"
	"github.com/aghali/aghali/geo"
	"github.com/aghali/aghali/irrigation"
)

// Handlers of valve controllers and their MQTT secrets.

type controllerJSON struct {
	ID         int64           `json:"id"`
	UID        string          `json:"uid"`
	FarmID     int64           `json:"farm_id"`
	Name       string          `json:"name"`
	Transport  string          `json:"transport"`
	DevEUI     *string         `json:"dev_eui"`
	Location   json.RawMessage `json:"location"` // Point or null
	LastSeenAt *time.Time      `json:"last_seen_at"`
	FlowLPM    *float64        `json:"flow_lpm"`
	VolumeL    *float64        `json:"volume_l"`
	// LoRaWAN controllers: device class (A or C) and the FPort of commands and acks.
	LoRaWANClass *string `json:"lorawan_class"`
	LoRaWANFPort *int    `json:"lorawan_fport"`
	// Where a LoRaWAN controller was last heard (read-only, learned from its events): its network
	// server (chirpstack, tts) and its topic's placeholders, which its downlinks go by; null
	// until it is first heard.
	LoRaWANNetwork *string           `json:"lorawan_network"`
	LoRaWANRoute   map[string]string `json:"lorawan_route"`
}

// controllerCreatedJSON is the answer to POST: the controller and, for an MQTT controller, its
// secret, shown this once.
type controllerCreatedJSON struct {
	controllerJSON
	Secret *string `json:"secret,omitempty"`
}

func controllerOf(ctl irrigation.Controller) (controllerJSON, error) {
	loc, err := geo.Marshal(ctl.Location)
	if err != nil {
		return controllerJSON{}, err
	}
	return controllerJSON{ID: ctl.ID, UID: ctl.UID, FarmID: ctl.FarmID, Name: ctl.Name, Transport: ctl.Transport,
		DevEUI: ctl.DevEUI, Location: loc, LastSeenAt: utcp(ctl.LastSeenAt), FlowLPM: ctl.FlowLPM, VolumeL: ctl.VolumeL,
		LoRaWANClass: ctl.LoRaWANClass, LoRaWANFPort: ctl.LoRaWANFPort, LoRaWANNetwork: ctl.LoRaWANNetwork, LoRaWANRoute: ctl.LoRaWANRoute}, nil
}

// controllerInput is the body of POST (uid required) and PATCH (all optional; uid and transport
// may be sent but not changed).
type controllerInput struct {
	UID       *string          `json:"uid"`
	Name      *string          `json:"name"`
	Transport *string          `json:"transport"`
	DevEUI    nullable[string] `json:"dev_eui"`
	Location  json.RawMessage  `json:"location"` // absent: unchanged; null: none
	// LoRaWAN controllers only.
	LoRaWANClass nullable[string] `json:"lorawan_class"`
	LoRaWANFPort nullable[int]    `json:"lorawan_fport"`
}

func (in controllerInput) apply(ctl *irrigation.Controller) error {
	set(&ctl.Name, in.Name)
	in.DevEUI.apply(&ctl.DevEUI)
	in.LoRaWANClass.apply(&ctl.LoRaWANClass)
	in.LoRaWANFPort.apply(&ctl.LoRaWANFPort)
	if in.Location != nil {
		p, err := geo.ParsePoint(in.Location)
		if err != nil {
			return renameField(err, "location")
		}
		ctl.Location = p
	}
	return nil
}

// listControllers: GET /farms/{farm}/controllers.
func (s *Server) listControllers(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	list, err := s.irr.Controllers(c.Request().Context(), farm.ID)
	if err != nil {
		return err
	}
	out := make([]controllerJSON, 0, len(list))
	for _, ctl := range list {
		j, err := controllerOf(ctl)
		if err != nil {
			return err
		}
		out = append(out, j)
	}
	return c.JSON(http.StatusOK, out)
}

// createController: POST /farms/{farm}/controllers (agronomist) → 201 controller with its MQTT
// secret (none for a LoRaWAN controller).
func (s *Server) createController(c echo.Context) error {
	farm, err := s.farmOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in controllerInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.UID == nil {
		return &ValidationError{Field: "uid", Problem: "required"}
	}
	ctl := irrigation.Controller{FarmID: farm.ID, UID: *in.UID}
	set(&ctl.Transport, in.Transport)
	if err := in.apply(&ctl); err != nil {
		return err
	}
	ctl, secret, err := s.irr.CreateController(c.Request().Context(), ctl)
	if err != nil {
		return err
	}
	out := controllerCreatedJSON{}
	if out.controllerJSON, err = controllerOf(ctl); err != nil {
		return err
	}
	if secret != "" {
		out.Secret = &secret
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "create", Entity: "controller", EntityID: ctl.ID, Detail: out.controllerJSON})
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) controllerOfPath(c echo.Context, min Role) (irrigation.Controller, geo.Farm, error) {
	return onFarm(s, c, "id", min, s.irr.Controller, func(ctl irrigation.Controller) int64 { return ctl.FarmID })
}

// getController: GET /controllers/{id}.
func (s *Server) getController(c echo.Context) error {
	ctl, _, err := s.controllerOfPath(c, RoleViewer)
	if err != nil {
		return err
	}
	out, err := controllerOf(ctl)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// updateController: PATCH /controllers/{id} (agronomist): name, dev_eui, location. The uid and
// transport are the device's identity and stay.
func (s *Server) updateController(c echo.Context) error {
	ctl, farm, err := s.controllerOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	var in controllerInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	if in.UID != nil && *in.UID != ctl.UID {
		return &ValidationError{Field: "uid", Problem: "cannot be changed (it is the device's login); register a new controller instead"}
	}
	if in.Transport != nil && *in.Transport != ctl.Transport {
		return &ValidationError{Field: "transport", Problem: "cannot be changed; register a new controller instead"}
	}
	if err := in.apply(&ctl); err != nil {
		return err
	}
	ctl, err = s.irr.UpdateController(c.Request().Context(), ctl)
	if err != nil {
		return err
	}
	out, err := controllerOf(ctl)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "update", Entity: "controller", EntityID: ctl.ID, Detail: out})
	return c.JSON(http.StatusOK, out)
}

// deleteController: DELETE /controllers/{id} (agronomist) deletes it with its valves; one with a
// valve being watered is 409.
func (s *Server) deleteController(c echo.Context) error {
	ctl, farm, err := s.controllerOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	if err := s.irr.DeleteController(c.Request().Context(), ctl.ID); err != nil {
		if errors.Is(err, irrigation.ErrBusy) {
			return &refusal{detail: "a valve of this controller is being watered; stop it before deleting the controller", cause: err}
		}
		return err
	}
	if ctl.Transport == irrigation.TransportMQTT {
		s.retireControllerSecret(c.Request().Context(), ctl)
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "delete", Entity: "controller", EntityID: ctl.ID, Detail: map[string]string{"uid": ctl.UID, "name": ctl.Name}})
	return c.NoContent(http.StatusNoContent)
}

// retireControllerSecret makes a deleted controller's MQTT password useless: neither store
// revokes a controller's secret (irrigation leaves it to fieldnodes, which has no call for it),
// so it is replaced by one nobody is shown. A failure is logged, not returned: the controller is
// gone already.
func (s *Server) retireControllerSecret(ctx context.Context, ctl irrigation.Controller) {
	if _, err := s.nodes.NewSecret(context.WithoutCancel(ctx), ctl.UID, fieldnodes.KindController); err != nil {
		s.log.Error("deleted controller keeps its MQTT secret", "controller", ctl.ID, "uid", ctl.UID, "err", err)
	}
}

// rotateControllerSecret: POST /controllers/{id}/secret (agronomist) → a new MQTT secret; the old
// one stops working. A LoRaWAN controller has none: 422.
func (s *Server) rotateControllerSecret(c echo.Context) error {
	ctl, farm, err := s.controllerOfPath(c, RoleAgronomist)
	if err != nil {
		return err
	}
	secret, err := s.irr.RotateControllerSecret(c.Request().Context(), ctl.ID)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: farm.OrgID, Action: "rotate_secret", Entity: "controller", EntityID: ctl.ID, Detail: map[string]string{"uid": ctl.UID}})
	return c.JSON(http.StatusOK, secretJSON{UID: ctl.UID, Secret: secret})
}
