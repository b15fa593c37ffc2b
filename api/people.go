package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file owns the SQL of organisations, users, memberships and farm grants. Its exported
// functions are what the CLI and the demo seed call to create people without HTTP.

// Role is what a user may do in one organisation. Each role may do everything the roles below it
// may: admin > agronomist > farmer > viewer.
type Role string

// The roles (docs/api.md, Roles).
const (
	RoleAdmin      Role = "admin"      // everything, including users
	RoleAgronomist Role = "agronomist" // the farms' contents: fields, zones, devices, rules
	RoleFarmer     Role = "farmer"     // operate valves, acknowledge alerts
	RoleViewer     Role = "viewer"     // read
)

func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 4
	case RoleAgronomist:
		return 3
	case RoleFarmer:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// atLeast reports whether r includes min's permissions.
func (r Role) atLeast(min Role) bool { return r.rank() > 0 && r.rank() >= min.rank() }

// seesWholeOrg: admins and agronomists see every farm of the organisation; the others only the
// farms granted to them.
func (r Role) seesWholeOrg() bool { return r.atLeast(RoleAgronomist) }

func checkRole(r Role) error {
	if r.rank() == 0 {
		return &ValidationError{Field: "role", Problem: fmt.Sprintf("%q is not one of admin, agronomist, farmer, viewer", r)}
	}
	return nil
}

// User is a person who can log in.
type User struct {
	ID        int64
	Email     string
	Name      string
	Locale    string
	Disabled  bool
	CreatedAt time.Time
}

// UserInput is a new user; with OrgID set they become a member of that organisation with Role,
// granted FarmIDs (farms of that organisation; relevant to farmers and viewers).
type UserInput struct {
	Email    string
	Name     string
	Password string // at least 10 characters
	Locale   string // az, ru or en; default en
	OrgID    int64  // 0: no membership yet
	Role     Role   // required with OrgID
	FarmIDs  []int64
}

// Membership is a user's role in one organisation.
type Membership struct {
	OrgID   int64
	OrgName string
	Role    Role
}

// CreateOrganisation stores a new organisation (a village, a cooperative) and returns its id.
func CreateOrganisation(ctx context.Context, db *pgxpool.Pool, name string) (int64, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 200 {
		return 0, &ValidationError{Field: "name", Problem: "required, at most 200 characters"}
	}
	var id int64
	err := db.QueryRow(ctx, `INSERT INTO organisations (name) VALUES ($1) RETURNING id`, name).Scan(&id)
	return id, dbError(err, "organisation")
}

// CreateUser stores a new user, and their membership and farm grants when in.OrgID is set.
func CreateUser(ctx context.Context, db *pgxpool.Pool, in UserInput) (User, error) {
	email, err := normaliseEmail(in.Email)
	if err != nil {
		return User{}, err
	}
	name, locale, err := checkProfile(in.Name, in.Locale)
	if err != nil {
		return User{}, err
	}
	if err := checkPassword(in.Password); err != nil {
		return User{}, err
	}
	if in.OrgID != 0 {
		if err := checkRole(in.Role); err != nil {
			return User{}, err
		}
	} else if len(in.FarmIDs) > 0 {
		return User{}, &ValidationError{Field: "farm_ids", Problem: "farms are granted within an organisation; OrgID is missing"}
	}
	hash, err := hashPassword(in.Password)
	if err != nil {
		return User{}, err
	}
	var u User
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO users (email, name, password_hash, locale) VALUES ($1, $2, $3, $4)
			RETURNING `+userColumns, email, name, hash, locale).
			Scan(&u.ID, &u.Email, &u.Name, &u.Locale, &u.Disabled, &u.CreatedAt)
		if err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("e-mail %s is already registered: %w", email, ErrConflict)
			}
			return dbError(err, "user")
		}
		if in.OrgID == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO memberships (user_id, org_id, role) VALUES ($1, $2, $3)`,
			u.ID, in.OrgID, in.Role); err != nil {
			return dbError(err, "org_id")
		}
		return setOrgFarms(ctx, tx, u.ID, in.OrgID, in.FarmIDs)
	})
	if err != nil {
		return User{}, err
	}
	return u, nil
}

// AddMembership makes the user a member of the organisation with role, or changes their role.
func AddMembership(ctx context.Context, db *pgxpool.Pool, userID, orgID int64, role Role) error {
	if err := checkRole(role); err != nil {
		return err
	}
	_, err := db.Exec(ctx, `INSERT INTO memberships (user_id, org_id, role) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, org_id) DO UPDATE SET role = excluded.role`, userID, orgID, role)
	return dbError(err, "membership")
}

// GrantFarms lets the user see the farms (added to what they had). Each farm must belong to an
// organisation the user is a member of.
func GrantFarms(ctx context.Context, db *pgxpool.Pool, userID int64, farmIDs []int64) error {
	var foreign []int64
	err := db.QueryRow(ctx, `SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM unnest($2::bigint[]) AS x
		WHERE NOT EXISTS (SELECT 1 FROM farms f JOIN memberships m ON m.org_id = f.org_id
		                  WHERE f.id = x AND m.user_id = $1)`, userID, farmIDs).Scan(&foreign)
	if err != nil {
		return dbError(err, "farm_ids")
	}
	if len(foreign) > 0 {
		return &ValidationError{Field: "farm_ids", Problem: fmt.Sprintf("farms %v are not in an organisation of the user", foreign)}
	}
	_, err = db.Exec(ctx, `INSERT INTO farm_access (user_id, farm_id) SELECT $1, unnest($2::bigint[])
		ON CONFLICT DO NOTHING`, userID, farmIDs)
	return dbError(err, "farm_ids")
}

// SetPassword changes a user's password and ends their sessions.
func SetPassword(ctx context.Context, db *pgxpool.Pool, userID int64, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := hashPassword(password)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, userID, hash)
		if err != nil {
			return dbError(err, "user")
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("user %d: %w", userID, ErrNotFound)
		}
		_, err = tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
		return dbError(err, "sessions")
	})
}

// UserByEmail returns the user with that e-mail (case-insensitive).
func UserByEmail(ctx context.Context, db *pgxpool.Pool, email string) (User, error) {
	var u User
	err := db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`,
		strings.ToLower(strings.TrimSpace(email))).
		Scan(&u.ID, &u.Email, &u.Name, &u.Locale, &u.Disabled, &u.CreatedAt)
	return u, dbError(err, "user")
}

const userColumns = `id, email, name, locale, disabled, created_at`

// memberships lists the user's organisations with their role, by organisation name.
func memberships(ctx context.Context, db *pgxpool.Pool, userID int64) ([]Membership, error) {
	rows, err := db.Query(ctx, `SELECT m.org_id, o.name, m.role FROM memberships m
		JOIN organisations o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name, o.id`, userID)
	if err != nil {
		return nil, dbError(err, "memberships")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Membership, error) {
		var m Membership
		err := r.Scan(&m.OrgID, &m.OrgName, &m.Role)
		return m, err
	})
}

// grantedFarms lists the farms granted to the user.
func grantedFarms(ctx context.Context, db *pgxpool.Pool, userID int64) ([]int64, error) {
	rows, err := db.Query(ctx, `SELECT farm_id FROM farm_access WHERE user_id = $1`, userID)
	if err != nil {
		return nil, dbError(err, "farm grants")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, dbError(err, "farm grants")
}

// orgMember is a user as an organisation's admin sees them.
type orgMember struct {
	User
	Role    Role
	FarmIDs []int64
}

const orgMemberSelect = `SELECT u.id, u.email, u.name, u.locale, u.disabled, u.created_at, m.role,
	coalesce((SELECT array_agg(fa.farm_id ORDER BY fa.farm_id) FROM farm_access fa
	          JOIN farms f ON f.id = fa.farm_id WHERE fa.user_id = u.id AND f.org_id = m.org_id), '{}')
	FROM memberships m JOIN users u ON u.id = m.user_id`

func scanOrgMember(r pgx.Row) (orgMember, error) {
	var m orgMember
	err := r.Scan(&m.ID, &m.Email, &m.Name, &m.Locale, &m.Disabled, &m.CreatedAt, &m.Role, &m.FarmIDs)
	return m, err
}

func orgMembers(ctx context.Context, db *pgxpool.Pool, orgID int64) ([]orgMember, error) {
	rows, err := db.Query(ctx, orgMemberSelect+` WHERE m.org_id = $1 ORDER BY u.email`, orgID)
	if err != nil {
		return nil, dbError(err, "users")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (orgMember, error) { return scanOrgMember(r) })
	return out, dbError(err, "users")
}

func getOrgMember(ctx context.Context, db *pgxpool.Pool, orgID, userID int64) (orgMember, error) {
	m, err := scanOrgMember(db.QueryRow(ctx, orgMemberSelect+` WHERE m.org_id = $1 AND m.user_id = $2`, orgID, userID))
	return m, dbError(err, "user")
}

// memberChange is what an organisation's admin changes of a member; nil members stay as they are.
type memberChange struct {
	Role     *Role
	FarmIDs  *[]int64
	Name     *string
	Locale   *string
	Password *string
	Disabled *bool
}

// global reports whether the change touches the person rather than their membership (and so
// matters to every organisation they belong to).
func (ch memberChange) global() bool {
	return ch.Name != nil || ch.Locale != nil || ch.Password != nil || ch.Disabled != nil
}

// updateOrgMember applies ch in one transaction; the organisation always keeps an admin.
func updateOrgMember(ctx context.Context, db *pgxpool.Pool, orgID, userID int64, ch memberChange) error {
	var hash string
	if ch.Password != nil {
		if err := checkPassword(*ch.Password); err != nil {
			return err
		}
		var err error
		if hash, err = hashPassword(*ch.Password); err != nil {
			return err
		}
	}
	if ch.Role != nil {
		if err := checkRole(*ch.Role); err != nil {
			return err
		}
	}
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := lockOrg(ctx, tx, orgID); err != nil {
			return err
		}
		var current Role
		if err := tx.QueryRow(ctx, `SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2`,
			orgID, userID).Scan(&current); err != nil {
			return dbError(err, "user")
		}
		if ch.Role != nil && *ch.Role != current {
			if current == RoleAdmin {
				if err := keepAnAdmin(ctx, tx, orgID, userID); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2`,
				orgID, userID, *ch.Role); err != nil {
				return dbError(err, "role")
			}
		}
		if ch.FarmIDs != nil {
			if err := setOrgFarms(ctx, tx, userID, orgID, *ch.FarmIDs); err != nil {
				return err
			}
		}
		if ch.Name != nil || ch.Locale != nil {
			var name, locale string
			if err := tx.QueryRow(ctx, `SELECT name, locale FROM users WHERE id = $1`, userID).Scan(&name, &locale); err != nil {
				return dbError(err, "user")
			}
			if ch.Name != nil {
				name = *ch.Name
			}
			if ch.Locale != nil {
				locale = *ch.Locale
			}
			name, locale, err := checkProfile(name, locale)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE users SET name = $2, locale = $3 WHERE id = $1`, userID, name, locale); err != nil {
				return dbError(err, "user")
			}
		}
		if ch.Password != nil {
			if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, userID, hash); err != nil {
				return dbError(err, "password")
			}
		}
		if ch.Disabled != nil {
			if *ch.Disabled && current == RoleAdmin {
				if err := keepAnAdmin(ctx, tx, orgID, userID); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE users SET disabled = $2 WHERE id = $1`, userID, *ch.Disabled); err != nil {
				return dbError(err, "disabled")
			}
		}
		if ch.Password != nil || (ch.Disabled != nil && *ch.Disabled) {
			// A new password or a disabled account ends the sessions it had.
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
				return dbError(err, "sessions")
			}
		}
		return nil
	})
}

// removeOrgMember ends a membership and the farm grants that came with it; the organisation
// always keeps an admin.
func removeOrgMember(ctx context.Context, db *pgxpool.Pool, orgID, userID int64) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := lockOrg(ctx, tx, orgID); err != nil {
			return err
		}
		var current Role
		if err := tx.QueryRow(ctx, `SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2`,
			orgID, userID).Scan(&current); err != nil {
			return dbError(err, "user")
		}
		if current == RoleAdmin {
			if err := keepAnAdmin(ctx, tx, orgID, userID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM farm_access fa USING farms f
			WHERE fa.farm_id = f.id AND f.org_id = $1 AND fa.user_id = $2`, orgID, userID); err != nil {
			return dbError(err, "farm grants")
		}
		_, err := tx.Exec(ctx, `DELETE FROM memberships WHERE org_id = $1 AND user_id = $2`, orgID, userID)
		return dbError(err, "membership")
	})
}

// onlyInOrgsAdministeredBy reports whether every organisation of user is one where admin is an
// admin: only then may admin change what belongs to the person (password, name, disabled).
func onlyInOrgsAdministeredBy(ctx context.Context, db *pgxpool.Pool, userID, adminID int64) (bool, error) {
	var ok bool
	err := db.QueryRow(ctx, `SELECT NOT EXISTS (
		SELECT 1 FROM memberships m WHERE m.user_id = $1 AND NOT EXISTS (
			SELECT 1 FROM memberships a WHERE a.user_id = $2 AND a.org_id = m.org_id AND a.role = 'admin'))`,
		userID, adminID).Scan(&ok)
	return ok, dbError(err, "memberships")
}

// lockOrg serialises membership changes of one organisation, so two admins demoting each other
// at once cannot leave it without one.
func lockOrg(ctx context.Context, tx pgx.Tx, orgID int64) error {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM organisations WHERE id = $1 FOR UPDATE`, orgID).Scan(&id)
	return dbError(err, "organisation")
}

// keepAnAdmin fails with ErrConflict unless the organisation has an enabled admin besides userID.
func keepAnAdmin(ctx context.Context, tx pgx.Tx, orgID, userID int64) error {
	var others int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = $1 AND m.role = 'admin' AND m.user_id <> $2 AND NOT u.disabled`, orgID, userID).Scan(&others)
	if err != nil {
		return dbError(err, "memberships")
	}
	if others == 0 {
		return fmt.Errorf("the organisation's last admin cannot be removed, demoted or disabled: %w", ErrConflict)
	}
	return nil
}

// setOrgFarms replaces the user's grants on the organisation's farms with farmIDs.
func setOrgFarms(ctx context.Context, tx pgx.Tx, userID, orgID int64, farmIDs []int64) error {
	farmIDs = slices.Compact(slices.Sorted(slices.Values(farmIDs)))
	if farmIDs == nil {
		farmIDs = []int64{}
	}
	var foreign []int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM unnest($1::bigint[]) AS x
		WHERE NOT EXISTS (SELECT 1 FROM farms f WHERE f.id = x AND f.org_id = $2)`, farmIDs, orgID).Scan(&foreign); err != nil {
		return dbError(err, "farm_ids")
	}
	if len(foreign) > 0 {
		return &ValidationError{Field: "farm_ids", Problem: fmt.Sprintf("farms %v are not farms of this organisation", foreign)}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM farm_access fa USING farms f
		WHERE fa.farm_id = f.id AND f.org_id = $1 AND fa.user_id = $2 AND NOT fa.farm_id = ANY($3)`,
		orgID, userID, farmIDs); err != nil {
		return dbError(err, "farm_ids")
	}
	_, err := tx.Exec(ctx, `INSERT INTO farm_access (user_id, farm_id) SELECT $1, unnest($2::bigint[])
		ON CONFLICT DO NOTHING`, userID, farmIDs)
	return dbError(err, "farm_ids")
}

func normaliseEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(s, " \t\r\n,;<>") || len(s) > 254 {
		return "", &ValidationError{Field: "email", Problem: "not an e-mail address"}
	}
	return s, nil
}

func checkProfile(name, locale string) (string, string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 200 {
		return "", "", &ValidationError{Field: "name", Problem: "at most 200 characters"}
	}
	switch locale {
	case "":
		locale = "en"
	case "az", "ru", "en":
	default:
		return "", "", &ValidationError{Field: "locale", Problem: fmt.Sprintf("%q is not one of az, ru, en", locale)}
	}
	return name, locale, nil
}

func checkPassword(p string) error {
	n := utf8.RuneCountInString(p)
	if n < minPasswordLen {
		return &ValidationError{Field: "password", Problem: fmt.Sprintf("at least %d characters", minPasswordLen)}
	}
	if n > maxPasswordLen {
		return &ValidationError{Field: "password", Problem: fmt.Sprintf("at most %d characters", maxPasswordLen)}
	}
	return nil
}

// dbError translates driver errors into this package's errors, once; what names the thing
// concerned (it becomes the field of a validation error).
func dbError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w", what, ErrConflict)
		case "23503": // foreign_key_violation
			return &ValidationError{Field: what, Problem: "refers to something that does not exist"}
		case "23514", "22P02": // check_violation, invalid_text_representation
			return &ValidationError{Field: what, Problem: "not an accepted value"}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isUniqueViolation(err error) bool {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pe.Code == "23505"
}
