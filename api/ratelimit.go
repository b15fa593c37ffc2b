package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LoginRate limits login attempts, successful or not. An attacker spraying passwords from one
// address meets PerAddress; one guessing a single account's password from many addresses meets
// PerEmail. (The price of PerEmail: someone who floods an account's e-mail delays its owner's
// login by up to Every; sessions already open are unaffected.)
type LoginRate struct {
	// PerAddress is the allowance of one client address. Default: 20 at once, then one every 6 s.
	PerAddress RateLimit
	// PerEmail is the allowance of one e-mail address. Default: 5 at once, then one a minute.
	PerEmail RateLimit
}

// RateLimit is a token bucket: Burst attempts at once, then one more every Every.
// A zero value takes the default; a negative Burst disables the limit.
type RateLimit struct {
	Burst int
	Every time.Duration
}

func (l LoginRate) withDefaults() LoginRate {
	fill := func(r, def RateLimit) RateLimit {
		if r.Burst == 0 {
			r.Burst = def.Burst
		}
		if r.Every <= 0 {
			r.Every = def.Every
		}
		return r
	}
	l.PerAddress = fill(l.PerAddress, RateLimit{Burst: 20, Every: 6 * time.Second})
	l.PerEmail = fill(l.PerEmail, RateLimit{Burst: 5, Every: time.Minute})
	return l
}

// keyedLimiter is one token bucket per key (client address or e-mail). Buckets that have filled
// up again are forgotten, so memory stays bounded by the keys active within Burst×Every.
type keyedLimiter struct {
	limit RateLimit
	mu    sync.Mutex
	keys  map[string]*rate.Limiter
	swept time.Time
}

func newKeyedLimiter(l RateLimit) *keyedLimiter {
	return &keyedLimiter{limit: l, keys: map[string]*rate.Limiter{}}
}

// allow takes one attempt for key at now; when none is left it returns false and how long until
// one is.
func (k *keyedLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	if k.limit.Burst < 0 {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweep(now)
	lim, ok := k.keys[key]
	if !ok {
		lim = rate.NewLimiter(rate.Every(k.limit.Every), k.limit.Burst)
		k.keys[key] = lim
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, time.Duration(missing * float64(k.limit.Every))
}

// sweep forgets full buckets, at most once per Every (a full bucket behaves as a new one).
func (k *keyedLimiter) sweep(now time.Time) {
	if now.Sub(k.swept) < k.limit.Every {
		return
	}
	k.swept = now
	for key, lim := range k.keys {
		if lim.TokensAt(now) >= float64(k.limit.Burst) {
			delete(k.keys, key)
		}
	}
}
