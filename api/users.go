package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Handlers of an organisation's users (admins only).

type memberJSON struct {
	ID        int64     `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Locale    string    `json:"locale"`
	Disabled  bool      `json:"disabled"`
	Role      Role      `json:"role"`
	FarmIDs   []int64   `json:"farm_ids"`
	CreatedAt time.Time `json:"created_at"`
}

func memberOf(m orgMember) memberJSON {
	ids := m.FarmIDs
	if ids == nil {
		ids = []int64{}
	}
	return memberJSON{ID: m.ID, Email: m.Email, Name: m.Name, Locale: m.Locale, Disabled: m.Disabled,
		Role: m.Role, FarmIDs: ids, CreatedAt: m.CreatedAt.UTC()}
}

// listOrgUsers: GET /orgs/{org}/users.
func (s *Server) listOrgUsers(c echo.Context) error {
	orgID, err := pathID(c, "org")
	if err != nil {
		return err
	}
	if err := requireOrg(c, orgID, RoleAdmin); err != nil {
		return err
	}
	ms, err := orgMembers(c.Request().Context(), s.db, orgID)
	if err != nil {
		return err
	}
	out := make([]memberJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, memberOf(m))
	}
	return c.JSON(http.StatusOK, out)
}

type newUserInput struct {
	Email    string  `json:"email"`
	Name     string  `json:"name"`
	Password string  `json:"password"`
	Role     Role    `json:"role"`
	Locale   string  `json:"locale"`
	FarmIDs  []int64 `json:"farm_ids"`
}

// createOrgUser: POST /orgs/{org}/users → 201 user. An e-mail already registered is 409.
func (s *Server) createOrgUser(c echo.Context) error {
	orgID, err := pathID(c, "org")
	if err != nil {
		return err
	}
	if err := requireOrg(c, orgID, RoleAdmin); err != nil {
		return err
	}
	var in newUserInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err := CreateUser(ctx, s.db, UserInput{Email: in.Email, Name: in.Name, Password: in.Password,
		Locale: in.Locale, OrgID: orgID, Role: in.Role, FarmIDs: in.FarmIDs})
	if err != nil {
		return err
	}
	m, err := getOrgMember(ctx, s.db, orgID, u.ID)
	if err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: orgID, Action: "create", Entity: "user", EntityID: u.ID,
		Detail: map[string]any{"email": u.Email, "role": m.Role, "farm_ids": m.FarmIDs}})
	return c.JSON(http.StatusCreated, memberOf(m))
}

type userChangeInput struct {
	Role     *Role    `json:"role"`
	FarmIDs  *[]int64 `json:"farm_ids"`
	Name     *string  `json:"name"`
	Locale   *string  `json:"locale"`
	Password *string  `json:"password"`
	Disabled *bool    `json:"disabled"`
}

// updateOrgUser: PATCH /orgs/{org}/users/{user}. Role and farm grants are the organisation's;
// name, locale, password and disabled belong to the person, so only an admin of every
// organisation they are in may change those (403 otherwise).
func (s *Server) updateOrgUser(c echo.Context) error {
	orgID, userID, err := s.orgMemberPath(c)
	if err != nil {
		return err
	}
	var in userChangeInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	ch := memberChange{Role: in.Role, FarmIDs: in.FarmIDs, Name: in.Name, Locale: in.Locale,
		Password: in.Password, Disabled: in.Disabled}
	ctx := c.Request().Context()
	if ch.global() {
		ok, err := onlyInOrgsAdministeredBy(ctx, s.db, userID, caller(c).User.ID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: the user also belongs to an organisation you do not administer; only role and farm_ids may be changed", errForbidden)
		}
	}
	if err := updateOrgMember(ctx, s.db, orgID, userID, ch); err != nil {
		return err
	}
	m, err := getOrgMember(ctx, s.db, orgID, userID)
	if err != nil {
		return err
	}
	detail := map[string]any{}
	if in.Role != nil {
		detail["role"] = *in.Role
	}
	if in.FarmIDs != nil {
		detail["farm_ids"] = m.FarmIDs
	}
	if in.Name != nil {
		detail["name"] = m.Name
	}
	if in.Locale != nil {
		detail["locale"] = m.Locale
	}
	if in.Password != nil {
		detail["password"] = "changed" // never the password itself
	}
	if in.Disabled != nil {
		detail["disabled"] = *in.Disabled
	}
	s.audit(c, auditEntry{OrgID: orgID, Action: "update", Entity: "user", EntityID: userID, Detail: detail})
	return c.JSON(http.StatusOK, memberOf(m))
}

// removeOrgUser: DELETE /orgs/{org}/users/{user} ends the membership (the account stays).
func (s *Server) removeOrgUser(c echo.Context) error {
	orgID, userID, err := s.orgMemberPath(c)
	if err != nil {
		return err
	}
	if err := removeOrgMember(c.Request().Context(), s.db, orgID, userID); err != nil {
		return err
	}
	s.audit(c, auditEntry{OrgID: orgID, Action: "delete", Entity: "membership", EntityID: userID})
	return c.NoContent(http.StatusNoContent)
}

// orgMemberPath reads {org} and {user}, checks the caller administers the organisation and that
// the user is one of its members (else 404).
func (s *Server) orgMemberPath(c echo.Context) (orgID, userID int64, err error) {
	if orgID, err = pathID(c, "org"); err != nil {
		return 0, 0, err
	}
	if err = requireOrg(c, orgID, RoleAdmin); err != nil {
		return 0, 0, err
	}
	if userID, err = pathID(c, "user"); err != nil {
		return 0, 0, err
	}
	if _, err = getOrgMember(c.Request().Context(), s.db, orgID, userID); err != nil {
		return 0, 0, err
	}
	return orgID, userID, nil
}
