package fieldnodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aghali/aghali/fieldnodes/profile"
)

// profileCache remembers compiled custom profiles for a while (built-in ones need no cache), so
// that the ingest does not read device_profiles for every batch. A change made through this
// Store is seen at once; one made by another process within StoreConfig.ProfileCacheTTL.
type profileCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	entries map[string]profileEntry
}

type profileEntry struct {
	p       *profile.Compiled // nil: no such profile
	expires time.Time
}

// Profile returns the device profile called name, built-in or custom; ErrNotFound when there is
// none.
func (s *Store) Profile(ctx context.Context, name string) (*profile.Compiled, error) {
	if p, ok := profile.Builtin(name); ok {
		return p, nil
	}
	now := s.now()
	s.profiles.mu.Lock()
	e, ok := s.profiles.entries[name]
	s.profiles.mu.Unlock()
	if ok && now.Before(e.expires) {
		if e.p == nil {
			return nil, fmt.Errorf("profile %q: %w", name, ErrNotFound)
		}
		return e.p, nil
	}
	var def []byte
	err := s.db.QueryRow(ctx, `SELECT definition FROM device_profiles WHERE name = $1`, name).Scan(&def)
	var p *profile.Compiled
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("profile %q: %w", name, err)
	default:
		if p, err = profile.Parse(def); err != nil {
			return nil, fmt.Errorf("profile %q as stored: %w", name, err)
		}
	}
	s.profiles.mu.Lock()
	if len(s.profiles.entries) > 10_000 {
		clear(s.profiles.entries)
	}
	s.profiles.entries[name] = profileEntry{p: p, expires: now.Add(s.profiles.ttl)}
	s.profiles.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("profile %q: %w", name, ErrNotFound)
	}
	return p, nil
}

// Profiles returns every device profile: built-in and custom, by name.
func (s *Store) Profiles(ctx context.Context) ([]*profile.Compiled, error) {
	out := profile.Builtins()
	rows, err := s.db.Query(ctx, `SELECT name, definition FROM device_profiles ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var def []byte
		if err := rows.Scan(&name, &def); err != nil {
			return nil, fmt.Errorf("profiles: %w", err)
		}
		p, err := profile.Parse(def)
		if err != nil {
			s.log.Error("stored device profile does not parse", "profile", name, "err", err)
			continue
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("profiles: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PutProfile creates or replaces the custom profile p.Name. A built-in name is ErrConflict; a
// profile that does not compile is a *ValidationError naming the field.
func (s *Store) PutProfile(ctx context.Context, p profile.Profile) (*profile.Compiled, error) {
	p.BuiltIn = false
	if _, ok := profile.Builtin(p.Name); ok {
		return nil, fmt.Errorf("profile %q: %w: a built-in profile cannot be changed; save it under another name", p.Name, ErrConflict)
	}
	c, err := p.Compile()
	if err != nil {
		var pe *profile.Error
		if errors.As(err, &pe) {
			return nil, invalid(pe.Field, "%s", pe.Problem)
		}
		return nil, err
	}
	def, err := json.Marshal(c.Profile)
	if err != nil {
		return nil, fmt.Errorf("profile %q: %w", p.Name, err)
	}
	if _, err := s.db.Exec(ctx, `
		INSERT INTO device_profiles (name, definition) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()`, c.Name, def); err != nil {
		return nil, interpretError(err, "save profile")
	}
	s.forgetProfile(c.Name)
	return c, nil
}

// DeleteProfile deletes the custom profile name; one that nodes use is ErrConflict.
func (s *Store) DeleteProfile(ctx context.Context, name string) error {
	if _, ok := profile.Builtin(name); ok {
		return fmt.Errorf("profile %q: %w: built-in", name, ErrConflict)
	}
	defer s.forgetProfile(name)
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var users int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM nodes WHERE profile = $1`, name).Scan(&users); err != nil {
			return interpretError(err, "delete profile")
		}
		if users > 0 {
			return fmt.Errorf("profile %q: %w: %d nodes use it", name, ErrConflict, users)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM device_profiles WHERE name = $1`, name)
		if err != nil {
			return interpretError(err, "delete profile")
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("profile %q: %w", name, ErrNotFound)
		}
		return nil
	})
}

func (s *Store) forgetProfile(name string) {
	s.profiles.mu.Lock()
	delete(s.profiles.entries, name)
	s.profiles.mu.Unlock()
}

// checkProfile is the node's profile check: the name must be a profile.
func (s *Store) checkProfile(ctx context.Context, name string) error {
	if _, err := s.Profile(ctx, name); err != nil {
		if errors.Is(err, ErrNotFound) {
			return invalid("profile", "%q is not a device profile (GET /api/v1/device-profiles lists them)", name)
		}
		return err
	}
	return nil
}
