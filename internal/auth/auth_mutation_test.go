package auth

// Tests added where mutation testing (make mutate, docs/TESTING.md) found a
// changed line that no test noticed.

import (
	"errors"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestEmptyPreviousKeyIsIgnored: an empty entry in JWT_SIGNING_KEYS (a
// trailing comma) must not become a verification key, or anyone could sign
// tokens with the empty HMAC key under its kid.
func TestEmptyPreviousKeyIsIgnored(t *testing.T) {
	tk := NewTokens(key, [][]byte{{}, nil}, "paymentsd", "payments-api", 15*time.Minute, clock(epoch))
	forged := withKid(t, []byte{}, goodClaims(), KeyID(nil))
	if p, err := tk.Verify(forged); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token signed with the empty key: Verify = %+v, %v; want ErrInvalidToken", p, err)
	}
	// The signing key still works.
	if _, err := tk.Verify(withKid(t, key, goodClaims(), KeyID(key))); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
}

// TestVerifyToleratesFiveSecondsOfClockSkew pins the leeway: a token a few
// seconds past its expiry, or issued a few seconds in the verifier's future
// (another server's clock), is accepted; past the leeway it is refused.
func TestVerifyToleratesFiveSecondsOfClockSkew(t *testing.T) {
	tk := NewTokens(key, nil, "paymentsd", "payments-api", 15*time.Minute, clock(epoch))
	for _, tc := range []struct {
		name  string
		claim string
		at    time.Time
		ok    bool
	}{
		{"expired 3 s ago", "exp", epoch.Add(-3 * time.Second), true},
		{"expired 6 s ago", "exp", epoch.Add(-6 * time.Second), false},
		{"issued 3 s ahead", "iat", epoch.Add(3 * time.Second), true},
		{"issued 6 s ahead", "iat", epoch.Add(6 * time.Second), false},
		{"valid from 3 s ahead", "nbf", epoch.Add(3 * time.Second), true},
		{"valid from 6 s ahead", "nbf", epoch.Add(6 * time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tk.Verify(withKid(t, key, with(goodClaims(), tc.claim, tc.at.Unix()), KeyID(key)))
			if tc.ok && err != nil {
				t.Fatalf("refused within the leeway: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v past the leeway, want ErrInvalidToken", err)
			}
		})
	}
}

// TestDummyHash: the hash unknown emails are checked against is a real
// argon2id hash with the given costs (so the check costs as much as a real
// one), of a random password (so no password matches it).
func TestDummyHash(t *testing.T) {
	h := DummyHash(fastParams)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("DummyHash = %q, want a PHC argon2id hash with m=1024,t=1,p=1", h)
	}
	for _, guess := range []string{"", "password", "correct horse battery"} {
		if ok, err := CheckPassword(guess, h); err != nil || ok {
			t.Fatalf("CheckPassword(%q, dummy) = %v, %v; want false, nil", guess, ok, err)
		}
	}
	if DummyHash(fastParams) == h {
		t.Fatal("two dummy hashes are equal: the password is not random")
	}
}

// cgroupLimit is the lowest real limit of the cgroup files memoryLimit reads
// on this machine, 0 if none: the part of its answer a test cannot set.
func cgroupLimit() int64 {
	limit := int64(0)
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if v := readLimit(f); v > 0 && v < noMemoryLimit && (limit == 0 || v < limit) {
			limit = v
		}
	}
	return limit
}

// TestMemoryLimit sets the runtime's memory limit (GOMEMLIMIT) and checks
// that memoryLimit takes the lowest real limit, ignores "no limit" values,
// and only reads the runtime's limit, never changes it.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	cg := cgroupLimit()
	lowest := func(v int64) int64 {
		if cg > 0 && cg < v {
			return cg
		}
		return v
	}
	const gib = 1 << 30
	cases := []struct {
		name    string
		runtime int64
		want    int64
	}{
		{"no runtime limit", math.MaxInt64, cg},
		{"runtime limit of 4 GiB", 4 * gib, lowest(4 * gib)},
		{"runtime limit at the no-limit bound", noMemoryLimit, cg},
		{"runtime limit just under the bound", noMemoryLimit - 1, lowest(noMemoryLimit - 1)},
	}
	if cg > 0 {
		// Where the machine has a cgroup limit, one above and one below it.
		if cg/2 > 0 {
			cases = append(cases, struct {
				name    string
				runtime int64
				want    int64
			}{"runtime limit under the cgroup's", cg / 2, cg / 2})
		}
		if cg < noMemoryLimit/2 {
			cases = append(cases, struct {
				name    string
				runtime int64
				want    int64
			}{"runtime limit over the cgroup's", cg * 2, cg})
		}
	}
	for _, tc := range cases {
		debug.SetMemoryLimit(tc.runtime)
		got := memoryLimit()
		if after := debug.SetMemoryLimit(-1); after != tc.runtime {
			t.Fatalf("%s: memoryLimit changed the runtime's limit from %d to %d", tc.name, tc.runtime, after)
		}
		if got != tc.want {
			t.Errorf("%s: memoryLimit() = %d, want %d (cgroup limit %d)", tc.name, got, tc.want, cg)
		}
	}
	// DefaultHashConcurrency follows the limit: under 64 MiB, a quarter
	// (16 MiB) holds no 19 MiB hash, and the cap is its floor of 1.
	debug.SetMemoryLimit(64 << 20)
	if n := DefaultHashConcurrency(DefaultPasswordParams); n != 1 {
		t.Errorf("DefaultHashConcurrency under a 64 MiB limit = %d, want 1", n)
	}
}

// TestDefaultHashWait pins the wait docs/PERFORMANCE.md states: a hash that
// finds every slot taken waits at most 2 s for one.
func TestDefaultHashWait(t *testing.T) {
	if DefaultHashWait != 2*time.Second {
		t.Fatalf("DefaultHashWait = %v, want 2s", DefaultHashWait)
	}
}
