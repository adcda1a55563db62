package api_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/internal/auth"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// forge signs claims with method and key; typ "" leaves the header's typ
// out. An HMAC key's token names it as kid, as the server's tokens do.
func forge(t *testing.T, method jwt.SigningMethod, key any, typ string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if typ == "" {
		delete(tok.Header, "typ")
	} else {
		tok.Header["typ"] = typ
	}
	if k, ok := key.([]byte); ok {
		tok.Header["kid"] = auth.KeyID(k)
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// claimsFor are the claims the server would issue for u at now, changed by mod.
func claimsFor(u user, now time.Time, mod func(c *auth.Claims)) *auth.Claims {
	c := &auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   u.acct.GetId(),
			Audience:  jwt.ClaimStrings{tokenAudience},
			ExpiresAt: jwt.NewNumericDate(now.Add(accessTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
		},
		Role: "merchant",
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// TestTokens: every bad credential is unauthenticated, bad tokens all with
// one generic message, and none of them changes anything.
func TestTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant(t)
	now := e.clock.Now()
	hs256 := func(mod func(c *auth.Claims)) string {
		return forge(t, jwt.SigningMethodHS256, signingKey, "at+jwt", claimsFor(m, now, mod))
	}
	revokedKey, revokedID := e.apiKey(t, m, "to revoke")
	wantOK[*pb.RevokeApiKeyResponse](t, e.call(t, connectJSON, m.authz(), &pb.RevokeApiKeyRequest{Id: revokedID}))
	otherTokens := auth.NewTokens([]byte("another-key-of-the-same-length-0123456"), nil, tokenIssuer, tokenAudience, accessTTL, e.clock.Now)
	other, _, err := otherTokens.Issue(m.acct.GetId(), "merchant")
	if err != nil {
		t.Fatal(err)
	}
	// A token whose payload says admin but whose signature is the merchant's.
	parts := strings.Split(m.access, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"role":"merchant"`, `"role":"admin"`, 1)))
	tampered := strings.Join(parts, ".")
	if tampered == m.access {
		t.Fatal("tampering changed nothing")
	}

	generic := want{code: connect.CodeUnauthenticated, exactMsg: "invalid or expired credentials"}
	malformed := want{code: connect.CodeUnauthenticated, msg: "malformed Authorization header"}
	tests := []struct {
		name  string
		authz string
		want  want
	}{
		{"no Authorization header", "", want{code: connect.CodeUnauthenticated, msg: "missing credentials"}},
		{"Basic credentials", "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pass")), malformed},
		{"Bearer with empty token", "Bearer ", malformed},
		{"Bearer alone", "Bearer", malformed},
		{"token without scheme", m.access, malformed},
		{"garbage token", bearer("not.a.jwt"), generic},
		{"alg none", bearer(forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "at+jwt", claimsFor(m, now, nil))), generic},
		{"signed with another key", bearer(other), generic},
		{"signed with another key, our kid", bearer(forgeWithKid(t, []byte("another-key-of-the-same-length-0123456"), auth.KeyID(signingKey), claimsFor(m, now, nil))), generic},
		{"no kid", bearer(forgeWithKid(t, signingKey, "", claimsFor(m, now, nil))), generic},
		{"unknown kid", bearer(forgeWithKid(t, signingKey, "0123456789abcdef", claimsFor(m, now, nil))), generic},
		{"HS512 with the right key", bearer(forge(t, jwt.SigningMethodHS512, signingKey, "at+jwt", claimsFor(m, now, nil))), generic},
		{"HS384 with the right key", bearer(forge(t, jwt.SigningMethodHS384, signingKey, "at+jwt", claimsFor(m, now, nil))), generic},
		{"expired", bearer(hs256(func(c *auth.Claims) {
			c.IssuedAt = jwt.NewNumericDate(now.Add(-time.Hour))
			c.NotBefore = c.IssuedAt
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
		})), generic},
		{"nbf in the future", bearer(hs256(func(c *auth.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(10 * time.Minute)) })), generic},
		{"iat in the future", bearer(hs256(func(c *auth.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(10 * time.Minute)) })), generic},
		{"no exp", bearer(hs256(func(c *auth.Claims) { c.ExpiresAt = nil })), generic},
		{"no iat", bearer(hs256(func(c *auth.Claims) { c.IssuedAt = nil })), generic},
		{"wrong aud", bearer(hs256(func(c *auth.Claims) { c.Audience = jwt.ClaimStrings{"another-api"} })), generic},
		{"no aud", bearer(hs256(func(c *auth.Claims) { c.Audience = nil })), generic},
		{"wrong iss", bearer(hs256(func(c *auth.Claims) { c.Issuer = "evil" })), generic},
		{"subject not an account", bearer(hs256(func(c *auth.Claims) { c.Subject = "key_123" })), generic},
		{"unknown role", bearer(hs256(func(c *auth.Claims) { c.Role = "root" })), generic},
		{"typ JWT instead of at+jwt", bearer(forge(t, jwt.SigningMethodHS256, signingKey, "JWT", claimsFor(m, now, nil))), generic},
		{"no typ", bearer(forge(t, jwt.SigningMethodHS256, signingKey, "", claimsFor(m, now, nil))), generic},
		{"payload tampered", bearer(tampered), generic},
		{"refresh token as access token", bearer(m.refresh), generic},
		{"revoked API key", bearer(revokedKey), generic},
		{"random sk_ key", bearer("sk_" + strings.Repeat("x", 43)), generic},
		{"bare sk_", bearer("sk_"), generic},
	}
	for _, tc := range tests {
		for _, tr := range allTransports {
			t.Run(tc.name+"/"+string(tr), func(t *testing.T) {
				before := e.snapshot(t)
				e.me(t, tr, tc.authz).wantErr(t, tc.want)
				e.unchanged(t, before)
			})
		}
	}

	// The controls: the forger makes tokens the server accepts, so each
	// refusal above is for the one thing the case changed.
	t.Run("controls", func(t *testing.T) {
		for _, authz := range []string{m.authz(), bearer(hs256(nil)), "bearer " + m.access, "Bearer   " + m.access} {
			for _, tr := range allTransports {
				got := wantOK[*pb.GetMeResponse](t, e.me(t, tr, authz))
				if got.GetAccount().GetId() != m.acct.GetId() {
					t.Fatalf("%s: GetMe = %v", tr, got)
				}
			}
		}
	})
}

// TestAccessTokenExpiresOnTheInjectedClock: a token that worked stops
// working once the clock passes its expiry (plus the 5 s leeway).
func TestAccessTokenExpiresOnTheInjectedClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.customer(t)
	e.clock.Advance(accessTTL)
	wantOK[*pb.GetMeResponse](t, e.me(t, httpJSON, u.authz()))
	e.clock.Advance(6 * time.Second)
	for _, tr := range allTransports {
		e.me(t, tr, u.authz()).wantErr(t, want{code: connect.CodeUnauthenticated, exactMsg: "invalid or expired credentials"})
	}
}

// passesRoleGate asserts that a call reached its handler: unimplemented, or
// not_found for an object that does not exist.
func passesRoleGate(t *testing.T, r result) {
	t.Helper()
	if r.code != connect.CodeUnimplemented && r.code != connect.CodeNotFound {
		t.Errorf("%s: code %v (%q), want unimplemented or not_found (past the role gate)", r.tr, codeName(r.code), r.msg)
	}
	if r.tr == httpJSON && r.status != httpStatusOf[r.code] {
		t.Errorf("%s: HTTP status %d for %v", r.tr, r.status, r.code)
	}
}

// TestRoles: the role table is enforced before validation and handlers.
func TestRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cust := e.customer(t)
	merch := e.merchant(t)
	keySecret, keyID := e.apiKey(t, merch, "shop")
	key := bearer(keySecret)

	denied := want{code: connect.CodePermissionDenied}
	tests := []struct {
		name  string
		authz string
		req   proto.Message
		want  *want // nil: success
		check func(t *testing.T, r result)
	}{
		{"customer CreateApiKey", cust.authz(), &pb.CreateApiKeyRequest{Name: "mine"}, &want{code: connect.CodePermissionDenied, msg: "customer role may not call"}, nil},
		{"customer ListApiKeys", cust.authz(), &pb.ListApiKeysRequest{}, &denied, nil},
		{"customer RevokeApiKey", cust.authz(), &pb.RevokeApiKeyRequest{Id: keyID}, &denied, nil},
		{"customer RevokeApiKey with an invalid request", cust.authz(), &pb.RevokeApiKeyRequest{Id: "nope"}, &denied, nil},
		{"API key CreateApiKey", key, &pb.CreateApiKeyRequest{Name: "minted"}, &want{code: connect.CodePermissionDenied, msg: "API keys may not call"}, nil},
		{"API key RevokeApiKey", key, &pb.RevokeApiKeyRequest{Id: keyID}, &denied, nil},
		{"API key UpdateMe", key, &pb.UpdateMeRequest{NewPassword: new("a brand new password"), CurrentPassword: new(password)}, &denied, nil},
		{"API key Logout", key, &pb.LogoutRequest{}, &denied, nil},
		// Merchant RPCs: the role gate refuses customers before anything
		// else, and lets merchants and their API keys through to the
		// handler, which may not exist yet.
		{"customer CapturePayment", cust.authz(), &pb.CapturePaymentRequest{Id: "pay_123"}, &want{code: connect.CodePermissionDenied, msg: "customer role may not call"}, nil},
		{"customer CreateRefund", cust.authz(), &pb.CreateRefundRequest{PaymentId: "pay_123"}, &denied, nil},
		{"customer AcceptDispute", cust.authz(), &pb.AcceptDisputeRequest{DisputeId: "dp_123"}, &denied, nil},
		{"merchant CreateRefund", merch.authz(), &pb.CreateRefundRequest{PaymentId: "pay_123"}, &want{code: connect.CodeNotFound, msg: "payment not found"}, nil},
		// A dispute that does not exist: past the role gate, not_found.
		{"merchant AcceptDispute", merch.authz(), &pb.AcceptDisputeRequest{DisputeId: "dp_123"}, &want{code: connect.CodeNotFound}, nil},
		{"API key AcceptDispute", key, &pb.AcceptDisputeRequest{DisputeId: "dp_123"}, &want{code: connect.CodeNotFound}, nil},
		{"customer GetDispute", cust.authz(), &pb.GetDisputeRequest{Id: "dp_123"}, &want{code: connect.CodeNotFound}, nil},
		// CapturePayment is unimplemented at the commit this suite was
		// written against and being implemented alongside; either way a
		// merchant passes the role gate (a payment that does not exist is
		// not_found once it is implemented).
		{"merchant CapturePayment", merch.authz(), &pb.CapturePaymentRequest{Id: "pay_123"}, nil, passesRoleGate},
		{"API key CapturePayment", key, &pb.CapturePaymentRequest{Id: "pay_123"}, nil, passesRoleGate},
		{"anonymous CapturePayment", "", &pb.CapturePaymentRequest{Id: "pay_123"}, &want{code: connect.CodeUnauthenticated}, nil},
	}
	for _, tc := range tests {
		for _, tr := range allTransports {
			t.Run(tc.name+"/"+string(tr), func(t *testing.T) {
				before := e.snapshot(t)
				r := e.call(t, tr, tc.authz, tc.req)
				if tc.want != nil {
					r.wantErr(t, *tc.want)
					e.unchanged(t, before)
					return
				}
				tc.check(t, r)
			})
		}
	}
}

// TestUpdateMe: profile changes, and password changes that need the current
// password and end every session.
func TestUpdateMe(t *testing.T) {
	t.Parallel()
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			u := e.merchant(t)
			second := e.login(t, u.email, password)

			a := wantOK[*pb.UpdateMeResponse](t, e.call(t, tr, u.authz(), &pb.UpdateMeRequest{
				DisplayName: new("  New Name "), DefaultCurrency: new("jpy"),
			})).GetAccount()
			if a.GetDisplayName() != "New Name" || a.GetDefaultCurrency() != "JPY" || a.GetEmail() != u.email {
				t.Fatalf("UpdateMe = %v", a)
			}
			if got := wantOK[*pb.GetMeResponse](t, e.me(t, tr, u.authz())).GetAccount(); got.GetDisplayName() != "New Name" {
				t.Fatalf("GetMe after UpdateMe = %v", got)
			}
			// Unset fields stay as they are.
			a = wantOK[*pb.UpdateMeResponse](t, e.call(t, tr, u.authz(), &pb.UpdateMeRequest{BusinessName: new("Biz")})).GetAccount()
			if a.GetDisplayName() != "New Name" || a.GetBusinessName() != "Biz" || a.GetDefaultCurrency() != "JPY" {
				t.Fatalf("UpdateMe(business_name) = %v", a)
			}

			newPassword := "a much better passphrase"
			refused := []struct {
				name string
				req  *pb.UpdateMeRequest
				want want
			}{
				{"new password without current_password", &pb.UpdateMeRequest{NewPassword: new(newPassword)},
					want{code: connect.CodeInvalidArgument, msg: "current_password", violation: "current_password"}},
				{"wrong current_password", &pb.UpdateMeRequest{NewPassword: new(newPassword), CurrentPassword: new("not my password")},
					want{code: connect.CodeInvalidArgument, field: "current_password"}},
				{"empty current_password", &pb.UpdateMeRequest{NewPassword: new(newPassword), CurrentPassword: new("")},
					want{code: connect.CodeInvalidArgument, field: "current_password"}},
				{"new password of 11 characters", &pb.UpdateMeRequest{NewPassword: new("12345678901"), CurrentPassword: new(password)},
					want{code: connect.CodeInvalidArgument, field: "new_password"}},
				{"bad default_currency", &pb.UpdateMeRequest{DefaultCurrency: new("usd1")},
					want{code: connect.CodeInvalidArgument, field: "default_currency"}},
				{"unknown default_currency", &pb.UpdateMeRequest{DefaultCurrency: new("XXX")},
					want{code: connect.CodeInvalidArgument, field: "default_currency", msg: "unknown currency"}},
				{"display_name too long", &pb.UpdateMeRequest{DisplayName: new(strings.Repeat("n", 101))},
					want{code: connect.CodeInvalidArgument, field: "display_name"}},
			}
			for _, tc := range refused {
				t.Run(tc.name, func(t *testing.T) {
					before := e.snapshot(t)
					e.call(t, tr, u.authz(), tc.req).wantErr(t, tc.want)
					e.unchanged(t, before)
				})
			}

			wantOK[*pb.UpdateMeResponse](t, e.call(t, tr, u.authz(), &pb.UpdateMeRequest{
				NewPassword: new(newPassword), CurrentPassword: new(password),
			}))
			dead := want{code: connect.CodeUnauthenticated, exactMsg: "invalid or expired refresh token"}
			for _, rt := range []string{u.refresh, second.refresh} {
				e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: rt}).wantErr(t, dead)
			}
			e.call(t, tr, "", &pb.LoginRequest{Email: u.email, Password: password}).
				wantErr(t, want{code: connect.CodeUnauthenticated, exactMsg: "invalid email or password"})
			fresh := wantOK[*pb.LoginResponse](t, e.call(t, tr, "", &pb.LoginRequest{Email: u.email, Password: newPassword}))
			wantOK[*pb.RefreshTokenResponse](t, e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: fresh.GetRefreshToken()}))
		})
	}
}

// TestAPIKeys: creation shows the secret once, lists never show it and
// paginate, revocation is tenant-scoped and immediate.
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			m := e.merchant(t)
			rival := e.merchant(t)
			_, rivalKey := e.apiKey(t, rival, "rival")

			const n = 5
			secrets := map[string]string{} // id -> secret
			var ids []string               // oldest first
			for i := range n {
				e.clock.Advance(time.Millisecond) // ids are time-ordered
				r := e.call(t, tr, m.authz(), &pb.CreateApiKeyRequest{Name: "key " + string(rune('A'+i))})
				res := wantOK[*pb.CreateApiKeyResponse](t, r)
				k := res.GetApiKey()
				if !strings.HasPrefix(res.GetSecret(), "sk_") || len(res.GetSecret()) < 40 {
					t.Fatalf("secret = %q, want sk_ and 32 random bytes", res.GetSecret())
				}
				if !strings.HasPrefix(k.GetId(), "key_") || k.GetPrefix() != res.GetSecret()[:len(k.GetPrefix())] || len(k.GetPrefix()) >= len(res.GetSecret())/2 {
					t.Fatalf("key = %v for secret %q", k, res.GetSecret())
				}
				if k.GetName() != "key "+string(rune('A'+i)) || k.GetRevokedAt() != nil || k.GetCreatedAt() == nil {
					t.Fatalf("key = %v", k)
				}
				secrets[k.GetId()] = res.GetSecret()
				ids = append(ids, k.GetId())
				// Only a hash is stored.
				stored, err := e.st.Client.APIKey.Get(ctxT(t), k.GetId())
				if err != nil {
					t.Fatal(err)
				}
				if stored.KeyHash != auth.HashSecret(res.GetSecret()) || strings.Contains(stored.KeyHash, res.GetSecret()) {
					t.Fatalf("stored key hash %q is not the hash of the secret", stored.KeyHash)
				}
			}

			// Pages of 2: newest first, no secrets, an empty token at the end.
			var listed []string
			token := ""
			for page := 0; ; page++ {
				if page > n {
					t.Fatal("pagination does not end")
				}
				r := e.call(t, tr, m.authz(), &pb.ListApiKeysRequest{PageSize: 2, PageToken: token})
				res := wantOK[*pb.ListApiKeysResponse](t, r)
				if tr == httpJSON {
					for _, s := range secrets {
						if strings.Contains(string(r.body), s) || strings.Contains(string(r.body), auth.HashSecret(s)) {
							t.Fatalf("list contains a secret or its hash: %s", r.body)
						}
					}
				}
				if len(res.GetApiKeys()) > 2 || len(res.GetApiKeys()) == 0 {
					t.Fatalf("page %d has %d keys", page, len(res.GetApiKeys()))
				}
				for _, k := range res.GetApiKeys() {
					listed = append(listed, k.GetId())
				}
				token = res.GetNextPageToken()
				if token == "" {
					break
				}
			}
			newestFirst := make([]string, 0, n)
			for i := n - 1; i >= 0; i-- {
				newestFirst = append(newestFirst, ids[i])
			}
			if strings.Join(listed, ",") != strings.Join(newestFirst, ",") {
				t.Fatalf("paged list = %v, want newest first %v", listed, newestFirst)
			}
			// A page that ends exactly at the last key has no next token.
			last := wantOK[*pb.ListApiKeysResponse](t, e.call(t, tr, m.authz(), &pb.ListApiKeysRequest{PageSize: n}))
			if len(last.GetApiKeys()) != n || last.GetNextPageToken() != "" {
				t.Fatalf("page of %d: %d keys, next %q", n, len(last.GetApiKeys()), last.GetNextPageToken())
			}
			for _, size := range []int32{0, 1, 100} {
				res := wantOK[*pb.ListApiKeysResponse](t, e.call(t, tr, m.authz(), &pb.ListApiKeysRequest{PageSize: size}))
				wantLen := min(n, int(size))
				if size == 0 {
					wantLen = n // default 20
				}
				if len(res.GetApiKeys()) != wantLen {
					t.Errorf("page_size %d: %d keys, want %d", size, len(res.GetApiKeys()), wantLen)
				}
			}

			b64 := base64.RawURLEncoding.EncodeToString
			refused := []struct {
				name string
				req  *pb.ListApiKeysRequest
				want want
			}{
				{"page_size 101", &pb.ListApiKeysRequest{PageSize: 101}, want{code: connect.CodeInvalidArgument, field: "page_size"}},
				{"page_size -1", &pb.ListApiKeysRequest{PageSize: -1}, want{code: connect.CodeInvalidArgument, field: "page_size"}},
				{"page_token not base64", &pb.ListApiKeysRequest{PageToken: "***"}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
				{"page_token of another list", &pb.ListApiKeysRequest{PageToken: b64([]byte("pay:pay_01"))}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
				{"page_token without an id", &pb.ListApiKeysRequest{PageToken: b64([]byte("key:"))}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
				{"page_token without a kind", &pb.ListApiKeysRequest{PageToken: b64([]byte("key_01"))}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
				{"page_token too long", &pb.ListApiKeysRequest{PageToken: strings.Repeat("a", 513)}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
			}
			for _, tc := range refused {
				t.Run(tc.name, func(t *testing.T) {
					e.call(t, tr, m.authz(), tc.req).wantErr(t, tc.want)
				})
			}

			// Another merchant's key: not_found, and it keeps working.
			before := e.snapshot(t)
			e.call(t, tr, m.authz(), &pb.RevokeApiKeyRequest{Id: rivalKey}).
				wantErr(t, want{code: connect.CodeNotFound, exactMsg: "API key not found"})
			e.call(t, tr, m.authz(), &pb.RevokeApiKeyRequest{Id: "key_01nonexistent"}).
				wantErr(t, want{code: connect.CodeNotFound, exactMsg: "API key not found"})
			e.call(t, tr, m.authz(), &pb.RevokeApiKeyRequest{Id: "acct_1"}).
				wantErr(t, want{code: connect.CodeInvalidArgument, field: "id"})
			e.unchanged(t, before)

			// Revoke: the key stops working at once, others do not.
			victim := ids[1]
			wantOK[*pb.GetMeResponse](t, e.me(t, tr, bearer(secrets[victim])))
			// Using a key records when.
			for _, k := range wantOK[*pb.ListApiKeysResponse](t, e.call(t, tr, m.authz(), &pb.ListApiKeysRequest{})).GetApiKeys() {
				if used := k.GetLastUsedAt() != nil; used != (k.GetId() == victim) {
					t.Errorf("key %s: last_used_at %v after only %s was used", k.GetId(), k.GetLastUsedAt(), victim)
				} else if used && !k.GetLastUsedAt().AsTime().Equal(e.clock.Now()) {
					t.Errorf("last_used_at = %v, want %v", k.GetLastUsedAt().AsTime(), e.clock.Now())
				}
			}
			rk := wantOK[*pb.RevokeApiKeyResponse](t, e.call(t, tr, m.authz(), &pb.RevokeApiKeyRequest{Id: victim})).GetApiKey()
			if rk.GetId() != victim || rk.GetRevokedAt() == nil {
				t.Fatalf("revoked key = %v", rk)
			}
			e.me(t, tr, bearer(secrets[victim])).wantErr(t, want{code: connect.CodeUnauthenticated, exactMsg: "invalid or expired credentials"})
			wantOK[*pb.GetMeResponse](t, e.me(t, tr, bearer(secrets[ids[0]])))
			// Revoking again returns it unchanged.
			e.clock.Advance(time.Minute)
			again := wantOK[*pb.RevokeApiKeyResponse](t, e.call(t, tr, m.authz(), &pb.RevokeApiKeyRequest{Id: victim})).GetApiKey()
			if !again.GetRevokedAt().AsTime().Equal(rk.GetRevokedAt().AsTime()) {
				t.Errorf("second revoke moved revoked_at from %v to %v", rk.GetRevokedAt().AsTime(), again.GetRevokedAt().AsTime())
			}
			// The list still shows it, revoked.
			all := wantOK[*pb.ListApiKeysResponse](t, e.call(t, tr, m.authz(), &pb.ListApiKeysRequest{})).GetApiKeys()
			revoked := 0
			for _, k := range all {
				if k.GetRevokedAt() != nil {
					revoked++
					if k.GetId() != victim {
						t.Errorf("key %s is revoked", k.GetId())
					}
				}
			}
			if len(all) != n || revoked != 1 {
				t.Errorf("list after revoke: %d keys, %d revoked", len(all), revoked)
			}
			// The rival's list is its own.
			if rl := wantOK[*pb.ListApiKeysResponse](t, e.call(t, tr, rival.authz(), &pb.ListApiKeysRequest{})).GetApiKeys(); len(rl) != 1 || rl[0].GetId() != rivalKey {
				t.Errorf("rival's list = %v", rl)
			}

			e.call(t, tr, m.authz(), &pb.CreateApiKeyRequest{}).wantErr(t, want{code: connect.CodeInvalidArgument, field: "name"})
		})
	}
}
