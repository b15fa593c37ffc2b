package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/aghali/aghali/fieldnodes/profile"
)

// Device profiles: how a device type's payloads become readings (fieldnodes/profile). The
// built-in ones are read only; custom ones are shared by every organisation, so only admins
// change them. The JSON form is profile.Profile's.

// listDeviceProfiles: GET /device-profiles (any) → every profile, built-in and custom, by name.
func (s *Server) listDeviceProfiles(c echo.Context) error {
	list, err := s.nodes.Profiles(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]profile.Profile, 0, len(list))
	for _, p := range list {
		out = append(out, p.Profile)
	}
	return c.JSON(http.StatusOK, out)
}

// getDeviceProfile: GET /device-profiles/{profile} (any).
func (s *Server) getDeviceProfile(c echo.Context) error {
	p, err := s.nodes.Profile(c.Request().Context(), c.Param("profile"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p.Profile)
}

// putDeviceProfile: PUT /device-profiles/{profile} (admin of any organisation) → 200 the custom
// profile as stored (created or replaced); a built-in name is 409, a profile that does not
// hold together 422 naming the member.
func (s *Server) putDeviceProfile(c echo.Context) error {
	if err := adminOfAny(c); err != nil {
		return err
	}
	var in profile.Profile
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	name := c.Param("profile")
	if in.Name != "" && in.Name != name {
		return &ValidationError{Field: "name", Problem: "differs from the name in the path"}
	}
	in.Name = name
	p, err := s.nodes.PutProfile(c.Request().Context(), in)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{Action: "update", Entity: "device_profile", EntityID: p.Name, Detail: p.Profile})
	return c.JSON(http.StatusOK, p.Profile)
}

// deleteDeviceProfile: DELETE /device-profiles/{profile} (admin of any organisation) → 204; a
// built-in profile, or one that nodes use, is 409.
func (s *Server) deleteDeviceProfile(c echo.Context) error {
	if err := adminOfAny(c); err != nil {
		return err
	}
	name := c.Param("profile")
	if err := s.nodes.DeleteProfile(c.Request().Context(), name); err != nil {
		return err
	}
	s.audit(c, auditEntry{Action: "delete", Entity: "device_profile", EntityID: name})
	return c.NoContent(http.StatusNoContent)
}
