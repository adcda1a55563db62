package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fastParams keep tests quick; the format and verification path are the same.
var fastParams = PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

func TestPasswordHashRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id", h)
	}
	if ok, err := CheckPassword("correct horse battery", h); err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if ok, err := CheckPassword("correct horse batterY", h); err != nil || ok {
		t.Fatalf("wrong password: ok=%v err=%v", ok, err)
	}
	h2, _ := HashPassword("correct horse battery", fastParams)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
}

func TestDefaultParamsAreOWASP(t *testing.T) {
	p := DefaultPasswordParams
	if p.MemoryKiB < 19*1024 || p.Iterations < 2 || p.Parallelism < 1 {
		t.Fatalf("default argon2id params %+v are below OWASP's m=19MiB,t=2,p=1", p)
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=18$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=x$AAAA$AAAA", "$argon2id$v=19$m=1,t=1,p=1$!!$AAAA"} {
		if _, err := CheckPassword("x", h); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("CheckPassword(%q) err = %v, want ErrMalformedHash", h, err)
		}
	}
}

func TestSecrets(t *testing.T) {
	s, h, err := NewSecret(APIKeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "sk_") || len(s) < 40 {
		t.Fatalf("secret %q", s)
	}
	if h != HashSecret(s) || len(h) != 64 || strings.Contains(h, s) {
		t.Fatalf("hash %q of %q", h, s)
	}
	if ShownPrefix(s) != s[:APIKeyShownPrefixLen] {
		t.Fatal("shown prefix")
	}
	s2, _, _ := NewSecret(APIKeyPrefix)
	if s == s2 {
		t.Fatal("two secrets are equal")
	}
}

var (
	key   = []byte("0123456789abcdef0123456789abcdef0123456789")
	epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
)

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestAccessTokenRoundTrip(t *testing.T) {
	tk := NewTokens(key, nil, "paymentsd", "payments-api", 15*time.Minute, clock(epoch))
	tok, exp, err := tk.Issue("acct_01abc", "merchant")
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(epoch.Add(15 * time.Minute)) {
		t.Fatalf("expiry %v", exp)
	}
	p, err := tk.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.AccountID != "acct_01abc" || p.Role != "merchant" || p.APIKeyID != "" {
		t.Fatalf("principal %+v", p)
	}
}

// sign makes a token with arbitrary header and claims, for forgeries.
// The kid is that of k for HMAC keys, so each case changes one thing only.
func sign(t *testing.T, method jwt.SigningMethod, k any, claims jwt.MapClaims, typ string) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if typ != "" {
		tok.Header["typ"] = typ
	}
	if raw, ok := k.([]byte); ok {
		tok.Header["kid"] = KeyID(raw)
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withKid signs an HS256 access token with k and the header kid (a string
// "" leaves kid out).
func withKid(t *testing.T, k []byte, claims jwt.MapClaims, kid any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["typ"] = "at+jwt"
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "paymentsd", "aud": []string{"payments-api"}, "sub": "acct_01abc", "role": "customer",
		"iat": epoch.Unix(), "nbf": epoch.Unix(), "exp": epoch.Add(10 * time.Minute).Unix(),
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for kk, vv := range c {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestAccessTokenRejections(t *testing.T) {
	tk := NewTokens(key, nil, "paymentsd", "payments-api", 15*time.Minute, clock(epoch))
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	noneToken := b64.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + b64.EncodeToString([]byte(`{"iss":"paymentsd","aud":"payments-api","sub":"acct_01abc","role":"admin","iat":1795000000,"exp":4102444800}`)) + "."

	cases := map[string]string{
		"good control":         "", // filled below; must pass
		"alg none":             noneToken,
		"other key":            sign(t, jwt.SigningMethodHS256, []byte("another-key-another-key-another-key!!"), goodClaims(), "at+jwt"),
		"other key, our kid":   withKid(t, []byte("another-key-another-key-another-key!!"), goodClaims(), KeyID(key)),
		"no kid":               withKid(t, key, goodClaims(), ""),
		"unknown kid":          withKid(t, key, goodClaims(), "0123456789abcdef"),
		"kid not a string":     withKid(t, key, goodClaims(), 42),
		"other HMAC alg":       sign(t, jwt.SigningMethodHS512, key, goodClaims(), "at+jwt"),
		"ES256":                sign(t, jwt.SigningMethodES256, ecKey, goodClaims(), "at+jwt"),
		"expired":              sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "exp", epoch.Add(-time.Minute).Unix()), "at+jwt"),
		"no exp":               sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "exp", nil), "at+jwt"),
		"not yet valid":        sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "nbf", epoch.Add(time.Hour).Unix()), "at+jwt"),
		"issued in the future": sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "iat", epoch.Add(time.Hour).Unix()), "at+jwt"),
		"no iat":               sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "iat", nil), "at+jwt"),
		"wrong audience":       sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "aud", "other-api"), "at+jwt"),
		"wrong issuer":         sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "iss", "evil"), "at+jwt"),
		"no subject":           sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "sub", nil), "at+jwt"),
		"foreign subject":      sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "sub", "user-1"), "at+jwt"),
		"unknown role":         sign(t, jwt.SigningMethodHS256, key, with(goodClaims(), "role", "root"), "at+jwt"),
		"not an access token":  sign(t, jwt.SigningMethodHS256, key, goodClaims(), "JWT"),
		"refresh token":        "rt_" + strings.Repeat("A", 43),
		"garbage":              "not.a.jwt",
		"empty":                "",
	}
	cases["good control"] = sign(t, jwt.SigningMethodHS256, key, goodClaims(), "at+jwt")
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := tk.Verify(tok)
			if name == "good control" {
				if err != nil {
					t.Fatalf("control token refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %v, want ErrInvalidToken", err)
			}
		})
	}
}

// TestKeyID: 16 hex digits of the key's SHA-256, different per key.
func TestKeyID(t *testing.T) {
	// echo -n 0123456789abcdef0123456789abcdef0123456789 | sha256sum
	if got, want := KeyID(key), "1a77b7fec89866d1"; got != want {
		t.Fatalf("KeyID = %q, want %q", got, want)
	}
	if KeyID([]byte("another key")) == KeyID(key) {
		t.Fatal("two keys share a kid")
	}
}

// TestIssuedTokensCarryTheSigningKeysKid: the header names the key that
// signed, and never a previous key.
func TestIssuedTokensCarryTheSigningKeysKid(t *testing.T) {
	old := []byte("the-previous-signing-key-0123456789abcdef")
	tk := NewTokens(key, [][]byte{old}, "paymentsd", "payments-api", 15*time.Minute, clock(epoch))
	tok, _, err := tk.Issue("acct_01abc", "merchant")
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, &Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if kid := parsed.Header["kid"]; kid != KeyID(key) {
		t.Fatalf("kid = %v, want %s (the signing key's)", kid, KeyID(key))
	}
	// Signed with the current key: verifying with the current key alone works.
	if _, err := NewTokens(key, nil, "paymentsd", "payments-api", 15*time.Minute, clock(epoch)).Verify(tok); err != nil {
		t.Fatalf("token not signed with the current key: %v", err)
	}
}

// TestKeyRotation: a token signed with the old key is accepted while the old
// key is among the previous keys and refused once it is not; the current key
// keeps working throughout.
func TestKeyRotation(t *testing.T) {
	oldKey := []byte("the-previous-signing-key-0123456789abcdef")
	newKey := []byte("the-new-signing-key-0123456789abcdef-0123")
	mk := func(k []byte, prev ...[]byte) *Tokens {
		return NewTokens(k, prev, "paymentsd", "payments-api", 15*time.Minute, clock(epoch))
	}
	oldTok, _, err := mk(oldKey).Issue("acct_01old", "customer")
	if err != nil {
		t.Fatal(err)
	}
	newTok, _, err := mk(newKey, oldKey).Issue("acct_01new", "merchant")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		verifier  *Tokens
		tok       string
		wantActor string // "" = refused
	}{
		{"old token, old key among previous", mk(newKey, oldKey), oldTok, "acct_01old"},
		{"old token, old key among several previous", mk(newKey, []byte("yet-another-key-0123456789abcdef-xyz"), oldKey, nil), oldTok, "acct_01old"},
		{"old token, previous keys dropped", mk(newKey), oldTok, ""},
		{"old token, other previous key", mk(newKey, []byte("yet-another-key-0123456789abcdef-xyz")), oldTok, ""},
		{"new token, during rotation", mk(newKey, oldKey), newTok, "acct_01new"},
		{"new token, after rotation", mk(newKey), newTok, "acct_01new"},
		{"new token, rolled back to the old key", mk(oldKey), newTok, ""},
		{"new token, rolled back with the new key as previous", mk(oldKey, newKey), newTok, "acct_01new"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.verifier.Verify(tc.tok)
			if tc.wantActor == "" {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", p, err)
				}
				return
			}
			if err != nil || p.AccountID != tc.wantActor {
				t.Fatalf("Verify = %+v, %v; want %s", p, err, tc.wantActor)
			}
		})
	}
	// A previous key never signs.
	tok, _, err := mk(newKey, oldKey).Issue("acct_01x", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mk(oldKey).Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("a token of the rotated service verifies with the old key alone: %v", err)
	}
}
