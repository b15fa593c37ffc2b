package fieldnodes

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// NewSecret gives device uid (kind KindNode or KindController) a new random secret, its MQTT
// password, and returns it; only its argon2id hash is stored, so it cannot be shown again. The
// previous secret stops working at once in this process (other processes may accept it until
// their login cache expires, StoreConfig.AuthCacheTTL). A uid is one kind for ever: asking for
// the other kind is ErrConflict.
func (s *Store) NewSecret(ctx context.Context, uid, kind string) (string, error) {
	if !ValidUID(uid) {
		return "", invalid("uid", "must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if kind != KindNode && kind != KindController {
		return "", invalid("kind", "must be %q or %q", KindNode, KindController)
	}
	secret, err := newSecretString()
	if err != nil {
		return "", err
	}
	if err := s.acquireHashSlot(ctx); err != nil {
		return "", err
	}
	phc, err := hashSecret(secret)
	s.releaseHashSlot()
	if err != nil {
		return "", err
	}
	tag, err := s.db.Exec(ctx, `
		INSERT INTO device_secrets (uid, kind, secret_hash) VALUES ($1, $2, $3)
		ON CONFLICT (uid) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, created_at = now()
		WHERE device_secrets.kind = EXCLUDED.kind`, uid, kind, phc)
	if err != nil {
		return "", interpretError(err, "new secret")
	}
	if tag.RowsAffected() == 0 {
		return "", fmt.Errorf("new secret: %w: uid %s is not a %s", ErrConflict, uid, kind)
	}
	s.auth.forget(uid)
	return secret, nil
}

// Authenticate checks a device's login (MQTT user name uid, password secret) and returns its
// kind (KindNode or KindController). A wrong uid or secret is ErrBadCredentials; other errors
// mean the check could not be made. Store satisfies broker.Authenticator with it.
func (s *Store) Authenticate(ctx context.Context, uid, secret string) (string, error) {
	if !ValidUID(uid) || secret == "" {
		return "", ErrBadCredentials
	}
	key := authKey(uid, secret)
	if kind, ok := s.auth.get(key, s.now()); ok {
		return kind, nil
	}
	var kind, phc string
	err := s.db.QueryRow(ctx, `SELECT kind, secret_hash FROM device_secrets WHERE uid = $1`, uid).Scan(&kind, &phc)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrBadCredentials
	}
	if err != nil {
		return "", fmt.Errorf("authenticate %s: %w", uid, err)
	}
	if err := s.acquireHashSlot(ctx); err != nil {
		return "", err
	}
	ok, err := verifySecret(phc, secret)
	s.releaseHashSlot()
	if err != nil {
		return "", fmt.Errorf("authenticate %s: %w", uid, err)
	}
	if !ok {
		return "", ErrBadCredentials
	}
	s.auth.put(key, uid, kind, s.now())
	return kind, nil
}

func (s *Store) acquireHashSlot(ctx context.Context) error {
	select {
	case s.hashSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting to hash a secret: %w", ctx.Err())
	}
}

func (s *Store) releaseHashSlot() { <-s.hashSlots }
