package api

import (
	"strings"
	"testing"
	"time"
)

func TestPasswordHashing(t *testing.T) {
	t.Parallel()
	h, err := hashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Count(h, "$") != 5 {
		t.Errorf("PHC string %q", h)
	}
	h2, _ := hashPassword("correct horse battery")
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt?")
	}
	if ok, err := verifyPassword(h, "correct horse battery"); !ok || err != nil {
		t.Errorf("right password: %v, %v", ok, err)
	}
	if ok, err := verifyPassword(h, "correct horse batterY"); ok || err != nil {
		t.Errorf("wrong password: %v, %v", ok, err)
	}
	// Parameters come from the stored string: a hash made with other parameters still verifies.
	weaker := strings.Replace(h, "m=19456,t=2", "m=8192,t=1", 1)
	if ok, _ := verifyPassword(weaker, "correct horse battery"); ok {
		t.Error("changed parameters verified against the old key")
	}
	for _, bad := range []string{"", "plain", "$2a$10$abc", "$argon2id$v=19$m=0,t=1,p=1$c2FsdA$a2V5", "$argon2i$v=19$m=8,t=1,p=1$c2FsdA$a2V5"} {
		if ok, err := verifyPassword(bad, "x"); ok || err == nil {
			t.Errorf("verifyPassword(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

func TestKeyedLimiter(t *testing.T) {
	t.Parallel()
	l := newKeyedLimiter(RateLimit{Burst: 2, Every: 10 * time.Second})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 2 {
		if ok, _ := l.allow("a", t0); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	ok, wait := l.allow("a", t0.Add(4*time.Second))
	if ok || wait != 6*time.Second {
		t.Errorf("third attempt: %v, wait %v; want refused, 6s", ok, wait)
	}
	if ok, _ := l.allow("b", t0); !ok {
		t.Error("another key was limited")
	}
	if ok, _ := l.allow("a", t0.Add(10*time.Second)); !ok {
		t.Error("no attempt after refill")
	}
	// Full buckets are forgotten.
	l.allow("c", t0.Add(time.Hour))
	if len(l.keys) != 1 {
		t.Errorf("%d keys kept, want 1 (only c)", len(l.keys))
	}
	if ok, _ := newKeyedLimiter(RateLimit{Burst: -1}).allow("x", t0); !ok {
		t.Error("disabled limiter refused")
	}
}
