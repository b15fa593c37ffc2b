package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file owns the SQL of sessions and bearer tokens. Only SHA-256 hashes of their tokens are
// stored, so a copy of the database lets nobody in.

// touchEvery is how stale last_seen_at may get before a request refreshes it (and slides the
// session's expiry): writing on every request would cost a row version per API call.
const touchEvery = time.Minute

// session is a browser login.
type session struct {
	hash      []byte
	userID    int64
	csrf      string
	createdAt time.Time
	expiresAt time.Time
}

// createSession stores a new session of userID and returns the cookie value.
func (s *Server) createSession(ctx context.Context, userID int64, ip, userAgent string) (string, session, error) {
	token := newSessionToken()
	now := s.now()
	sess := session{
		hash:      tokenHash(token),
		userID:    userID,
		csrf:      randomToken(32),
		createdAt: now,
		expiresAt: now.Add(s.cfg.SessionIdle),
	}
	if len(userAgent) > 512 {
		userAgent = strings.ToValidUTF8(userAgent[:512], "")
	}
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// Forget this user's expired sessions while here, so the table does not grow forever.
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2`, userID, now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, last_seen_at, ip, user_agent)
			VALUES ($1, $2, $3, $4, $5, $4, $6, $7)`, sess.hash, userID, sess.csrf, now, sess.expiresAt, ip, userAgent)
		return err
	})
	if err != nil {
		return "", session{}, dbError(err, "session")
	}
	return token, sess, nil
}

// sessionUser returns the live session with that cookie value and its (enabled) user, sliding
// the session's expiry; errUnauthenticated when there is none.
func (s *Server) sessionUser(ctx context.Context, token string) (User, session, error) {
	now := s.now()
	sess := session{hash: tokenHash(token)}
	var u User
	var lastSeen time.Time
	err := s.db.QueryRow(ctx, `SELECT s.user_id, s.csrf_token, s.created_at, s.expires_at, s.last_seen_at,
			u.id, u.email, u.name, u.locale, u.disabled, u.created_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT u.disabled`, sess.hash, now).
		Scan(&sess.userID, &sess.csrf, &sess.createdAt, &sess.expiresAt, &lastSeen,
			&u.ID, &u.Email, &u.Name, &u.Locale, &u.Disabled, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, session{}, errUnauthenticated
	}
	if err != nil {
		return User{}, session{}, dbError(err, "session")
	}
	if now.Sub(lastSeen) >= touchEvery {
		exp := now.Add(s.cfg.SessionIdle)
		if limit := sess.createdAt.Add(s.cfg.SessionMaxAge); limit.Before(exp) {
			exp = limit
		}
		if _, err := s.db.Exec(ctx, `UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE token_hash = $1`,
			sess.hash, now, exp); err != nil {
			return User{}, session{}, dbError(err, "session")
		}
		sess.expiresAt = exp
	}
	return u, sess, nil
}

func (s *Server) deleteSession(ctx context.Context, hash []byte) error {
	_, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, hash)
	return dbError(err, "session")
}

// Token is a bearer token as its owner sees it after creation (the secret is not kept).
type Token struct {
	ID         int64
	UserID     int64
	Name       string
	CreatedAt  time.Time
	ExpiresAt  *time.Time // nil: never
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

const tokenColumns = `id, user_id, name, created_at, expires_at, last_used_at, revoked_at`

func scanToken(r pgx.Row) (Token, error) {
	var t Token
	err := r.Scan(&t.ID, &t.UserID, &t.Name, &t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt)
	return t, err
}

// CreateToken stores a new bearer token of the user (expiring at expiresAt; nil: never) and
// returns it with the secret, which is shown once and cannot be recovered.
func CreateToken(ctx context.Context, db *pgxpool.Pool, userID int64, name string, expiresAt *time.Time) (Token, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return Token{}, "", &ValidationError{Field: "name", Problem: "required, at most 100 characters"}
	}
	secret := newBearerToken()
	t, err := scanToken(db.QueryRow(ctx, `INSERT INTO api_tokens (user_id, name, token_hash, expires_at)
		VALUES ($1, $2, $3, $4) RETURNING `+tokenColumns, userID, name, tokenHash(secret), expiresAt))
	if err != nil {
		return Token{}, "", dbError(err, "token")
	}
	return t, secret, nil
}

// tokensOf lists the user's tokens, newest first, revoked ones included.
func tokensOf(ctx context.Context, db *pgxpool.Pool, userID int64) ([]Token, error) {
	rows, err := db.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE user_id = $1 ORDER BY id DESC`, userID)
	if err != nil {
		return nil, dbError(err, "tokens")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Token, error) { return scanToken(r) })
	return out, dbError(err, "tokens")
}

// revokeUserToken revokes one of the user's tokens; ErrNotFound when they have no such live token.
func revokeUserToken(ctx context.Context, db *pgxpool.Pool, userID, id int64, now time.Time) (Token, error) {
	t, err := scanToken(db.QueryRow(ctx, `UPDATE api_tokens SET revoked_at = $3
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING `+tokenColumns, id, userID, now))
	return t, dbError(err, fmt.Sprintf("token %d", id))
}

// tokenUser returns the live token with that secret and its (enabled) user;
// errUnauthenticated when there is none.
func (s *Server) tokenUser(ctx context.Context, secret string) (User, Token, error) {
	if !strings.HasPrefix(secret, bearerPrefix) {
		return User{}, Token{}, errUnauthenticated
	}
	now := s.now()
	var u User
	var t Token
	err := s.db.QueryRow(ctx, `SELECT t.id, t.user_id, t.name, t.created_at, t.expires_at, t.last_used_at, t.revoked_at,
			u.id, u.email, u.name, u.locale, u.disabled, u.created_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)
		  AND NOT u.disabled`, tokenHash(secret), now).
		Scan(&t.ID, &t.UserID, &t.Name, &t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt,
			&u.ID, &u.Email, &u.Name, &u.Locale, &u.Disabled, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, Token{}, errUnauthenticated
	}
	if err != nil {
		return User{}, Token{}, dbError(err, "token")
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= touchEvery {
		if _, err := s.db.Exec(ctx, `UPDATE api_tokens SET last_used_at = $2 WHERE id = $1`, t.ID, now); err != nil {
			return User{}, Token{}, dbError(err, "token")
		}
		t.LastUsedAt = &now
	}
	return u, t, nil
}
