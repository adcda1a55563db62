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
	tk := NewTokens(key, "paymentsd", "payments-api", 15*time.Minute, clock(epoch))
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
func sign(t *testing.T, method jwt.SigningMethod, k any, claims jwt.MapClaims, typ string) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if typ != "" {
		tok.Header["typ"] = typ
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
	tk := NewTokens(key, "paymentsd", "payments-api", 15*time.Minute, clock(epoch))
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
