package fieldnodes

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters for new device secrets (OWASP's "m=19456, t=2, p=1"). They are written
// into each PHC string, so changing them later leaves existing hashes verifiable.
const (
	hashMemoryKiB = 19 * 1024
	hashTime      = 2
	hashThreads   = 1
	hashKeyLen    = 32
	hashSaltLen   = 16
	secretBytes   = 24 // 192 random bits, 32 characters of base64url
)

// newSecretString returns a random secret suitable as an MQTT password.
func newSecretString() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashSecret returns the PHC string of secret: $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func hashSecret(secret string) (string, error) {
	salt := make([]byte, hashSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("random salt: %w", err)
	}
	key := argon2.IDKey([]byte(secret), salt, hashTime, hashMemoryKiB, hashThreads, hashKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, hashMemoryKiB, hashTime, hashThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// verifySecret reports whether secret matches the PHC string phc.
func verifySecret(phc, secret string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errors.New("secret hash: not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("secret hash: unsupported argon2 version %q", parts[2])
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 1<<22 {
		return false, fmt.Errorf("secret hash: bad parameters %q", parts[3])
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errors.New("secret hash: bad salt")
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errors.New("secret hash: bad hash")
	}
	got := argon2.IDKey([]byte(secret), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// authCache remembers successful logins for a while, keyed by SHA-256 of uid and secret so the
// secret itself is not kept in memory. Only successes are stored.
type authCache struct {
	ttl     time.Duration // ≤ 0: disabled
	mu      sync.Mutex
	entries map[[32]byte]authEntry
	puts    int
}

type authEntry struct {
	uid     string
	kind    string
	expires time.Time
}

func authKey(uid, secret string) [32]byte {
	h := sha256.New()
	h.Write([]byte(uid))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *authCache) get(key [32]byte, now time.Time) (string, bool) {
	if c.ttl <= 0 {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.After(e.expires) {
		return "", false
	}
	return e.kind, true
}

func (c *authCache) put(key [32]byte, uid, kind string, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = authEntry{uid: uid, kind: kind, expires: now.Add(c.ttl)}
	c.puts++
	if c.puts%1024 == 0 { // sweep now and then, so the map holds roughly the live devices
		for k, e := range c.entries {
			if now.After(e.expires) {
				delete(c.entries, k)
			}
		}
	}
}

// forget drops every cached login of uid (its secret changed or it was deleted).
func (c *authCache) forget(uid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.uid == uid {
			delete(c.entries, k)
		}
	}
}
