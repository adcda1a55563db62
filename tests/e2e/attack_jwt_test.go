package e2e

// Attack table 1 of issue 12: forged, altered, expired, misdirected and
// revoked credentials against authenticated RPCs, through HTTP against the
// real server. Every row is unauthenticated with the one generic message,
// and the database is unchanged.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/ids"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// atkBadCredentials is the one answer to every bad credential (API.md,
// "Errors"; api/interceptors.go).
const atkBadCredentials = "invalid or expired credentials"

// atkSkewClock is the API's clock: real time plus an offset the test moves
// forward (to step out of the refresh-reuse grace without sleeping). Not
// manualClock, which stands still: the tokens the test forges carry the
// real time, and the setup takes longer than the 5 s leeway within which
// the API accepts a token issued in its future.
type atkSkewClock struct{ off atomic.Int64 }

func (c *atkSkewClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *atkSkewClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// atkB64 is a JWT segment's encoding.
func atkB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// atkB64JSON is v as a JWT segment.
func atkB64JSON(t *testing.T, v any) string {
	t.Helper()
	return atkB64(atkJSON(t, v))
}

func atkJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	atkCheck(t, err)
	return b
}

func atkCheck(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// atkJWTParts splits a token into its header, payload and signature.
func atkJWTParts(tok string) (h, p, s string) {
	parts := strings.SplitN(tok, ".", 3)
	if len(parts) != 3 {
		return tok, "", ""
	}
	return parts[0], parts[1], parts[2]
}

// atkPlatformKey is what an attacker would need to forge tokens: the
// platform's signing key, its key id, issuer and audience (testenv exposes
// them to tests), so that the rows about issuer, audience, expiry and the
// like are signed correctly and fail for exactly the one reason they name.
// A positive control proves the forging is right.
type atkPlatformKey struct {
	key           []byte
	kid, iss, aud string
}

func atkPlatformKeyOf(t *testing.T, e *E) atkPlatformKey {
	t.Helper()
	pk := atkPlatformKey{key: e.SigningKey, kid: auth.KeyID(e.SigningKey), iss: e.TokenIssuer, aud: e.TokenAudience}
	if len(pk.key) < 16 || pk.iss == "" || pk.aud == "" {
		t.Fatalf("platform key not exposed by testenv: iss %q aud %q, %d key bytes", pk.iss, pk.aud, len(pk.key))
	}
	return pk
}

// claims are an access token's claims as the platform issues them.
func (k atkPlatformKey) claims(sub, role string, now time.Time) map[string]any {
	return map[string]any{
		"iss": k.iss, "sub": sub, "aud": []string{k.aud}, "role": role,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	}
}

func (k atkPlatformKey) header() map[string]any {
	return map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": k.kid}
}

// atkSignJWT builds header.claims.signature, signed with method and key.
func atkSignJWT(t *testing.T, header, claims map[string]any, method jwt.SigningMethod, key any) string {
	t.Helper()
	input := atkB64JSON(t, header) + "." + atkB64JSON(t, claims)
	sig, err := method.Sign(input, key)
	atkCheck(t, err)
	return input + "." + atkB64(sig)
}

// atkWith returns a copy of m with each key set to its value (nil: the key
// removed).
func atkWith(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// TestAttackJWT: every way of presenting a credential that must not work,
// each against three authenticated RPCs (GetMe, ListPayments, and a
// CreatePayment that would succeed for a real caller), is unauthenticated
// with the one generic message, and changes nothing in the database.
// The refresh-token rows (reuse after the grace revokes the family) are
// last, with their own assertions.
func TestAttackJWT(t *testing.T) {
	t.Parallel()
	clock := &atkSkewClock{}
	e, db := attackEnv(t, withClock(clock.Now))
	k := atkPlatformKeyOf(t, e)

	m, c := e.merchant(t), e.customer(t)
	suspended, closed := e.merchant(t), e.customer(t)
	adm := e.admin(t)
	// A payment, so that ListPayments would have something to show.
	e.create(t, c, pay(m, 1500, "USD", "pm_card_visa"))

	// The suspended merchant's API key and tokens, taken before the suspension.
	suspendedKey := atkAPIKey(t, e, suspended, "suspended shop").GetSecret()
	decodeOK(t, e.post(t, adm.Token, rpcSuspendAccount, map[string]any{"id": suspended.ID, "reason": "SUSPENSION_REASON_FRAUD"}), &pb.SuspendAccountResponse{})
	// The closed customer's token, taken before the closure.
	closedLogin := e.loginAs(t, closed.Email, password)
	decodeOK(t, e.post(t, closed.Token, rpcCloseAccount, map[string]any{"password": password}), &pb.CloseAccountResponse{})
	// A revoked API key.
	revoked := atkAPIKey(t, e, m, "revoked")
	decodeOK(t, e.post(t, m.Token, atkRPC("AccountService", "RevokeApiKey"), map[string]any{"id": revoked.GetApiKey().GetId()}), &pb.RevokeApiKeyResponse{})
	revokedKey := revoked.GetSecret()
	// A refresh token (opaque rt_...) of the merchant, and a live API key
	// (the control: it works as it is).
	mLogin := e.loginAs(t, m.Email, password)
	liveKey := atkAPIKey(t, e, m, "live").GetSecret()
	if me := e.getMe(t, liveKey); me.GetId() != m.ID {
		t.Fatalf("the live API key speaks for %s, want %s", me.GetId(), m.ID)
	}

	now := time.Now()
	good := k.claims(m.ID, "merchant", now)

	// The positive control: a token forged exactly as the platform issues
	// them is accepted, so every row below fails for the one change it makes.
	control := atkSignJWT(t, k.header(), good, jwt.SigningMethodHS256, k.key)
	if me := e.getMe(t, control); me.GetId() != m.ID {
		t.Fatalf("the control token speaks for %s, want %s", me.GetId(), m.ID)
	}

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	atkCheck(t, err)
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	atkCheck(t, err)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	atkCheck(t, err)

	realH, realP, realS := atkJWTParts(m.Token)
	var realClaims map[string]any
	raw, err := base64.RawURLEncoding.DecodeString(realP)
	atkCheck(t, err)
	atkCheck(t, json.Unmarshal(raw, &realClaims))
	tamper := func(kv ...any) string { return realH + "." + atkB64JSON(t, atkWith(realClaims, kv...)) + "." + realS }
	sigBytes, err := base64.RawURLEncoding.DecodeString(realS)
	atkCheck(t, err)
	sigBytes[len(sigBytes)/2] ^= 0x01
	flipped := atkB64(sigBytes)
	hs := func(h, cl map[string]any) string { return atkSignJWT(t, h, cl, jwt.SigningMethodHS256, k.key) }

	type row struct {
		name string
		// authz is the whole Authorization header ("" sends none).
		authz string
		// msg is the message the refusal must have ("" = the generic one).
		msg string
		// asCustomer: the credential speaks for a customer (CreatePayment
		// is then a payment to m).
		asCustomer bool
	}
	bearer := func(tok string) string { return "Bearer " + tok }
	rows := []row{
		// The algorithm is pinned to HS256.
		{name: "alg none, no signature", authz: bearer(atkB64JSON(t, atkWith(k.header(), "alg", "none")) + "." + atkB64JSON(t, good) + ".")},
		{name: "alg None, the real signature", authz: bearer(atkB64JSON(t, atkWith(k.header(), "alg", "None")) + "." + atkB64JSON(t, good) + "." + atkSigPart(control))},
		{name: "alg NONE, no signature part", authz: bearer(atkB64JSON(t, atkWith(k.header(), "alg", "NONE")) + "." + atkB64JSON(t, good))},
		{name: "HS256 keyed with another key's public PEM", authz: bearer(atkSignJWT(t, k.header(), good, jwt.SigningMethodHS256, pubPEM))},
		{name: "HS256 keyed with the platform's public key id", authz: bearer(atkSignJWT(t, k.header(), good, jwt.SigningMethodHS256, []byte(k.kid)))},
		{name: "HS256 keyed with an empty key", authz: bearer(atkSigningInput(t, k.header(), good) + "." + atkB64(atkHMACEmptyKey(atkSigningInput(t, k.header(), good))))},
		{name: "RS256 signed by the attacker's RSA key (RS/HS confusion)", authz: bearer(atkSignJWT(t, atkWith(k.header(), "alg", "RS256"), good, jwt.SigningMethodRS256, rsaKey))},
		{name: "RS256 with the attacker's key embedded as jwk", authz: bearer(atkSignJWT(t, atkWith(k.header(), "alg", "RS256", "jwk", map[string]any{
			"kty": "RSA", "n": atkB64(rsaKey.N.Bytes()), "e": "AQAB"}), good, jwt.SigningMethodRS256, rsaKey))},
		{name: "ES256 signed by the attacker's EC key", authz: bearer(atkSignJWT(t, atkWith(k.header(), "alg", "ES256"), good, jwt.SigningMethodES256, ecKey))},
		{name: "HS512 with the platform's own key (alg not pinned)", authz: bearer(atkSignJWT(t, atkWith(k.header(), "alg", "HS512"), good, jwt.SigningMethodHS512, k.key))},
		{name: "HS384 with the platform's own key (alg not pinned)", authz: bearer(atkSignJWT(t, atkWith(k.header(), "alg", "HS384"), good, jwt.SigningMethodHS384, k.key))},
		// Time.
		{name: "expired an hour ago", authz: bearer(hs(k.header(), atkWith(good, "iat", now.Add(-2*time.Hour).Unix(), "nbf", now.Add(-2*time.Hour).Unix(), "exp", now.Add(-time.Hour).Unix())))},
		{name: "expired 30 s ago (beyond the 5 s leeway)", authz: bearer(hs(k.header(), atkWith(good, "exp", now.Add(-30*time.Second).Unix())))},
		{name: "no expiry", authz: bearer(hs(k.header(), atkWith(good, "exp", nil)))},
		{name: "not valid before an hour from now (nbf)", authz: bearer(hs(k.header(), atkWith(good, "nbf", now.Add(time.Hour).Unix())))},
		{name: "issued an hour from now (iat)", authz: bearer(hs(k.header(), atkWith(good, "iat", now.Add(time.Hour).Unix())))},
		{name: "no issued-at", authz: bearer(hs(k.header(), atkWith(good, "iat", nil)))},
		// Issuer and audience.
		{name: "wrong issuer", authz: bearer(hs(k.header(), atkWith(good, "iss", "https://evil.example")))},
		{name: "no issuer", authz: bearer(hs(k.header(), atkWith(good, "iss", nil)))},
		{name: "wrong audience", authz: bearer(hs(k.header(), atkWith(good, "aud", []string{"another-api"})))},
		{name: "audience as a plain other string", authz: bearer(hs(k.header(), atkWith(good, "aud", "payments-api-staging")))},
		{name: "no audience", authz: bearer(hs(k.header(), atkWith(good, "aud", nil)))},
		// Type, key id, subject, role.
		{name: "typ JWT (not an access token)", authz: bearer(hs(atkWith(k.header(), "typ", "JWT"), good))},
		{name: "no typ", authz: bearer(hs(atkWith(k.header(), "typ", nil), good))},
		{name: "no kid", authz: bearer(hs(atkWith(k.header(), "kid", nil), good))},
		{name: "unknown kid", authz: bearer(hs(atkWith(k.header(), "kid", "0123456789abcdef"), good))},
		{name: "kid path traversal", authz: bearer(hs(atkWith(k.header(), "kid", "../../../../dev/null"), good))},
		{name: "subject without acct_", authz: bearer(hs(k.header(), atkWith(good, "sub", "admin")))},
		{name: "role superuser", authz: bearer(hs(k.header(), atkWith(good, "role", "superuser")))},
		{name: "no role", authz: bearer(hs(k.header(), atkWith(good, "role", nil)))},
		// Someone else's token, altered.
		{name: "tampered payload: subject changed, original signature", authz: bearer(tamper("sub", c.ID, "role", "customer")), asCustomer: true},
		{name: "tampered payload: role admin, original signature", authz: bearer(tamper("role", "admin"))},
		{name: "tampered payload: expiry extended, original signature", authz: bearer(tamper("exp", now.Add(24*time.Hour).Unix()))},
		{name: "tampered header: alg none, original signature", authz: bearer(atkB64JSON(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": k.kid}) + "." + realP + "." + realS)},
		{name: "one bit of the signature flipped", authz: bearer(realH + "." + realP + "." + flipped)},
		{name: "signature removed", authz: bearer(realH + "." + realP + ".")},
		{name: "token truncated", authz: bearer(m.Token[:len(m.Token)-4])},
		// Accounts that are gone or stopped.
		{name: "deleted account (valid token, no such account)", authz: bearer(hs(k.header(), atkWith(good, "sub", ids.New(ids.Account))))},
		{name: "suspended merchant's access token", authz: bearer(suspended.Token)},
		{name: "suspended merchant's freshly forged token", authz: bearer(hs(k.header(), atkWith(good, "sub", suspended.ID)))},
		{name: "suspended merchant's API key", authz: bearer(suspendedKey)},
		{name: "closed customer's access token", authz: bearer(closed.Token), asCustomer: true},
		{name: "closed customer's token from a later login", authz: bearer(closedLogin.GetAccessToken()), asCustomer: true},
		{name: "revoked API key", authz: bearer(revokedKey)},
		// Other credentials in the access token's place.
		{name: "a refresh token used as an access token", authz: bearer(mLogin.GetRefreshToken())},
		{name: "a live API key with its last character changed", authz: bearer(liveKey[:len(liveKey)-1] + atkFlipChar(liveKey[len(liveKey)-1]))},
		{name: "a live API key without the sk_ prefix", authz: bearer(strings.TrimPrefix(liveKey, "sk_"))},
		{name: "a live API key truncated to its shown prefix", authz: bearer(liveKey[:11])},
		{name: "Basic scheme", authz: "Basic " + base64.StdEncoding.EncodeToString([]byte(m.Email+":"+password)),
			msg: "malformed Authorization header: want Bearer <token>"},
		{name: "Bearer without a token", authz: "Bearer ", msg: "malformed Authorization header: want Bearer <token>"},
		{name: "two tokens", authz: bearer(m.Token + " " + m.Token)},
		{name: "no credentials", authz: "", msg: "missing credentials: send Authorization: Bearer <access token or API key>"},
	}

	procs := []struct {
		name string
		body func(asCustomer bool) any
	}{
		{rpcGetMe, func(bool) any { return map[string]any{} }},
		{procListPayments, func(bool) any { return map[string]any{"page_size": 100} }},
		{procCreatePayment, func(asCustomer bool) any {
			if asCustomer {
				return pay(m, 4711, "USD", "pm_card_visa")
			}
			return payReq{"amount": 4711, "currency": "USD", "payment_method": "pm_card_visa"} // a guest charge
		}},
	}
	db.quiet(t)
	n := 0
	for _, r := range rows {
		for _, p := range procs {
			n++
			ok := t.Run(r.name+"/"+p.name[strings.LastIndex(p.name, "/")+1:], func(t *testing.T) {
				got := db.refusedUnchanged(t, func() reply {
					return atkPostAuthz(t, e, r.authz, p.name, p.body(r.asCustomer))
				})
				want := r.msg
				if want == "" {
					want = atkBadCredentials
				}
				if got.code != "unauthenticated" || got.msg != want {
					t.Fatalf("want unauthenticated %q, got %s", want, got)
				}
			})
			if !ok {
				db.quiet(t) // a failed row must not leave its writes to the next
			}
		}
	}
	t.Logf("JWT table: %d credentials x %d RPCs = %d rows", len(rows), len(procs), n)

	// An access token is no refresh token either.
	t.Run("an access token used as a refresh token", func(t *testing.T) {
		got := db.refusedUnchanged(t, func() reply {
			return e.post(t, "", rpcRefreshToken, map[string]any{"refresh_token": m.Token})
		})
		wantRefused(t, got, "unauthenticated")
	})
	// The closed and the suspended accounts' refresh tokens.
	t.Run("closed customer's refresh token", func(t *testing.T) {
		got := db.refusedUnchanged(t, func() reply {
			return e.post(t, "", rpcRefreshToken, map[string]any{"refresh_token": closedLogin.GetRefreshToken()})
		})
		wantRefused(t, got, "unauthenticated")
	})

	t.Run("refresh token reused outside the grace revokes the family", func(t *testing.T) {
		login := e.loginAs(t, c.Email, password)
		rt0 := login.GetRefreshToken()
		next := e.rotateRefresh(t, rt0)
		rt1 := next.GetRefreshToken()
		// Within the grace the same token again is the same successor (the
		// control: the clock is what changes below).
		again := decodeOK(t, e.post(t, "", rpcRefreshToken, map[string]any{"refresh_token": rt0}), &pb.RefreshTokenResponse{})
		if again.GetRefreshToken() != rt1 {
			t.Fatalf("within the grace the repeat got %q, want the same successor %q", again.GetRefreshToken(), rt1)
		}
		clock.Advance(11 * time.Second) // past PAYMENTS_REFRESH_REUSE_GRACE (10 s)
		db.quiet(t)
		before := db.print(t)
		wantRefused(t, e.post(t, "", rpcRefreshToken, map[string]any{"refresh_token": rt0}), "unauthenticated", "already used")
		after := db.print(t)
		// The only change is the family's revocation.
		if tables := before.changedTables(after); len(tables) != 1 || tables[0] != "refresh_tokens" {
			t.Fatalf("the reuse changed %v, want only refresh_tokens: %s", tables, before.diff(after))
		}
		fam, err := e.Store.Client.RefreshToken.Query().All(ctxT(t))
		atkCheck(t, err)
		var family string
		for _, rt := range fam {
			if rt.TokenHash == auth.HashSecret(rt0) {
				family = rt.FamilyID
			}
		}
		revoked := 0
		for _, rt := range fam {
			if rt.FamilyID == family {
				if rt.RevokedAt == nil {
					t.Fatalf("token %s of the reused family is not revoked", rt.ID)
				}
				revoked++
			}
		}
		if family == "" || revoked < 2 {
			t.Fatalf("family %q: %d tokens revoked, want the reused one and its successor", family, revoked)
		}
		// The successor no longer refreshes, and neither does the reused
		// token again; nothing more changes.
		for name, tok := range map[string]string{"successor": rt1, "reused token again": rt0} {
			t.Run(name, func(t *testing.T) {
				got := db.refusedUnchanged(t, func() reply {
					return e.post(t, "", rpcRefreshToken, map[string]any{"refresh_token": tok})
				})
				wantRefused(t, got, "unauthenticated")
			})
		}
	})
}

// atkSigPart is the signature part of a token.
func atkSigPart(tok string) string { _, _, s := atkJWTParts(tok); return s }

func atkSigningInput(t *testing.T, h, cl map[string]any) string {
	return atkB64JSON(t, h) + "." + atkB64JSON(t, cl)
}

// atkHMACEmptyKey is an HS256 signature keyed with an empty key
// (golang-jwt refuses to sign with one, an attacker's tool does not).
func atkHMACEmptyKey(input string) []byte {
	m := hmac.New(sha256.New, nil)
	m.Write([]byte(input))
	return m.Sum(nil)
}

func atkFlipChar(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// atkPostAuthz posts body to path with the whole Authorization header
// given ("" sends none).
func atkPostAuthz(t *testing.T, e *E, authz, path string, body any) reply {
	t.Helper()
	var headers []string
	if authz != "" {
		headers = []string{"Authorization", authz}
	}
	return e.post(t, "", path, body, headers...)
}

// atkAPIKey creates an API key named name for merchant u: the answer holds
// the key (its id) and the secret.
func atkAPIKey(t *testing.T, e *E, u user, name string) *pb.CreateApiKeyResponse {
	t.Helper()
	res := decodeOK(t, e.post(t, u.Token, rpcCreateAPIKey, map[string]any{"name": name}), &pb.CreateApiKeyResponse{})
	if !strings.HasPrefix(res.GetSecret(), "sk_") || res.GetApiKey().GetId() == "" {
		t.Fatalf("CreateApiKey answered %v", res)
	}
	return res
}
