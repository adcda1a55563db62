package api_test

// Authentication under attack: logins are counted before they are answered,
// per email and per client address; access tokens name their key and stop
// working soon after their account is disabled; password hashing is capped.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/golang-jwt/jwt/v5"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/store"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// forgeWithKid signs claims (HS256, typ at+jwt) with key and names kid in
// the header ("" leaves kid out).
func forgeWithKid(t *testing.T, key []byte, kid string, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["typ"] = "at+jwt"
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withTrustedProxies makes the server believe X-Forwarded-For from loopback,
// where the tests connect from, so a test can speak for any client address.
func withTrustedProxies() envOption {
	return func(d *api.Deps) {
		d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
}

// loginFrom logs in with the generated Connect client, sending
// X-Forwarded-For xff if it is not empty. It may run on any goroutine.
func (e *env) loginFrom(ctx context.Context, xff, email, pw string) (*pb.LoginResponse, error) {
	req := connect.NewRequest(&pb.LoginRequest{Email: email, Password: pw})
	if xff != "" {
		req.Header().Set("X-Forwarded-For", xff)
	}
	res, err := e.clients[connectJSON].auth.Login(ctx, req)
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// wantLoginErr asserts a login's error code and that its message contains msg.
func wantLoginErr(t *testing.T, what string, err error, code connect.Code, msg string) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: error %v, want %v", what, err, code)
	}
	if ce.Code() != code || !strings.Contains(ce.Message(), msg) {
		t.Fatalf("%s: %v %q, want %v containing %q", what, ce.Code(), ce.Message(), code, msg)
	}
}

// TestLoginLimitPerAddress: password spraying (one guess at each of many
// emails) from one client address is blocked after 20 failures, whatever
// the emails; the sprayer's own successful login gives back only its own
// attempt; other addresses are unaffected; and the address is the one the
// trusted proxy saw, not one the client wrote into X-Forwarded-For.
func TestLoginLimitPerAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTrustedProxies())
	own := e.customer(t)
	victims := []user{e.merchant(t), e.customer(t), e.merchant(t)}
	const sprayer, bystander = "203.0.113.7", "198.51.100.1"
	allowance := store.DefaultIPThrottlePolicy.MaxFailures
	spray := func(i int) string {
		if i < len(victims) {
			return victims[i].email
		}
		return fmt.Sprintf("sprayed%d@example.com", i)
	}

	for i := range allowance - 1 {
		_, err := e.loginFrom(ctxT(t), sprayer, spray(i), "Summer2026!Summer")
		wantLoginErr(t, fmt.Sprintf("guess %d", i+1), err, connect.CodeUnauthenticated, "invalid email or password")
	}
	// The sprayer logs into their own account: allowed, and it does not
	// clear the address's failures.
	if _, err := e.loginFrom(ctxT(t), sprayer, own.email, password); err != nil {
		t.Fatalf("own login: %v", err)
	}
	_, err := e.loginFrom(ctxT(t), sprayer, spray(allowance), "Summer2026!Summer")
	wantLoginErr(t, "the 20th guess", err, connect.CodeUnauthenticated, "invalid email or password")
	_, err = e.loginFrom(ctxT(t), sprayer, spray(allowance+1), "Summer2026!Summer")
	wantLoginErr(t, "the 21st guess", err, connect.CodeResourceExhausted, "too many failed logins from this address; try again in 60 s")
	// Prepending another address does not help: the proxy appended the
	// sprayer's real one.
	_, err = e.loginFrom(ctxT(t), "192.0.2.99, "+sprayer, spray(allowance+2), "Summer2026!Summer")
	wantLoginErr(t, "spoofed X-Forwarded-For", err, connect.CodeResourceExhausted, "from this address")
	// Every login from the address waits, the right password included.
	_, err = e.loginFrom(ctxT(t), sprayer, own.email, password)
	wantLoginErr(t, "own login while the address is blocked", err, connect.CodeResourceExhausted, "from this address")

	// The victims, from their own addresses, are not affected.
	for _, v := range victims {
		if _, err := e.loginFrom(ctxT(t), bystander, v.email, password); err != nil {
			t.Fatalf("victim %s from another address: %v", v.email, err)
		}
	}
	e.clock.Advance(time.Minute)
	if _, err := e.loginFrom(ctxT(t), sprayer, own.email, password); err != nil {
		t.Fatalf("own login after the block: %v", err)
	}
}

// TestXForwardedForFromUntrustedPeersIsIgnored: without trusted proxies a
// client cannot escape the per-address limit by naming a new address in
// each request.
func TestXForwardedForFromUntrustedPeersIsIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	allowance := store.DefaultIPThrottlePolicy.MaxFailures
	for i := range allowance {
		_, err := e.loginFrom(ctxT(t), fmt.Sprintf("198.51.100.%d", i+1), fmt.Sprintf("nobody%d@example.com", i), "a wrong password")
		wantLoginErr(t, fmt.Sprintf("guess %d", i+1), err, connect.CodeUnauthenticated, "invalid email or password")
	}
	_, err := e.loginFrom(ctxT(t), "198.51.100.200", "nobody-else@example.com", "a wrong password")
	wantLoginErr(t, "the 21st guess", err, connect.CodeResourceExhausted, "from this address")
}

// TestDisabledAccountsTokensStopWithinSeconds: an access token is checked
// against its account's status as read at most 5 s before, on the server's
// clock; API keys and refresh tokens of a disabled account are refused at
// once.
func TestDisabledAccountsTokensStopWithinSeconds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, fresh := e.merchant(t), e.customer(t)
	key, _ := e.apiKey(t, u, "shop") // also reads u's status into the cache
	wantOK[*pb.GetMeResponse](t, e.me(t, httpJSON, u.authz()))
	generic := want{code: connect.CodeUnauthenticated, exactMsg: "invalid or expired credentials"}

	for _, a := range []user{u, fresh} {
		e.st.Client.Account.UpdateOneID(a.acct.GetId()).SetStatus(account.StatusDisabled).ExecX(ctxT(t))
	}
	// A token whose account was not read recently is refused at once.
	e.me(t, connectJSON, fresh.authz()).wantErr(t, generic)
	// The cached status holds for at most the TTL...
	e.clock.Advance(4 * time.Second)
	wantOK[*pb.GetMeResponse](t, e.me(t, httpJSON, u.authz()))
	// ...and then the token is refused, on every transport.
	e.clock.Advance(time.Second)
	for _, tr := range allTransports {
		e.me(t, tr, u.authz()).wantErr(t, generic)
	}
	// The other credentials are refused by the store without any delay.
	e.me(t, grpcProto, bearer(key)).wantErr(t, generic)
	e.call(t, connectJSON, "", &pb.RefreshTokenRequest{RefreshToken: u.refresh}).
		wantErr(t, want{code: connect.CodeUnauthenticated, msg: "disabled"})

	// Enabled again, the token works again within the TTL.
	e.st.Client.Account.UpdateOneID(u.acct.GetId()).SetStatus(account.StatusActive).ExecX(ctxT(t))
	e.clock.Advance(5 * time.Second)
	wantOK[*pb.GetMeResponse](t, e.me(t, connectJSON, u.authz()))
}

// TestSigningKeyRotation: a token signed with the old key keeps working
// while the old key is among the previous keys (JWT_SIGNING_KEYS), and is
// refused once it is not; tokens issued after the rotation name the new key.
func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	st := newSQLite(t)
	oldKey, newKey := signingKey, []byte("the-new-signing-key-after-rotation-0123")
	before := newEnvOn(t, st) // signs with oldKey (signingKey)
	u := before.customer(t)

	withKeys := func(key []byte, previous ...[]byte) envOption {
		return func(d *api.Deps) {
			d.Tokens = auth.NewTokens(key, previous, tokenIssuer, tokenAudience, accessTTL, d.Now)
		}
	}
	during := newEnvOn(t, st, withKeys(newKey, oldKey))
	after := newEnvOn(t, st, withKeys(newKey))
	// Each server has its own clock; a token must not be from their future.
	during.clock.Advance(time.Second)
	after.clock.Advance(time.Second)
	generic := want{code: connect.CodeUnauthenticated, exactMsg: "invalid or expired credentials"}

	for _, tr := range allTransports {
		if got := wantOK[*pb.GetMeResponse](t, during.me(t, tr, u.authz())); got.GetAccount().GetId() != u.acct.GetId() {
			t.Fatalf("%s: old token during the rotation: %v", tr, got)
		}
		after.me(t, tr, u.authz()).wantErr(t, generic)
	}
	// A login during the rotation gets a token of the new key, which the
	// server after the rotation accepts and the old one does not.
	fresh := during.login(t, u.email, password)
	parsed, _, err := jwt.NewParser().ParseUnverified(fresh.access, &auth.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if kid := parsed.Header["kid"]; kid != auth.KeyID(newKey) {
		t.Fatalf("kid of a token issued during the rotation = %v, want %s", kid, auth.KeyID(newKey))
	}
	after.clock.Advance(time.Second)
	wantOK[*pb.GetMeResponse](t, after.me(t, httpJSON, fresh.authz()))
	before.clock.Advance(2 * time.Second)
	before.me(t, httpJSON, fresh.authz()).wantErr(t, generic)
}

// TestPasswordHashingCapRefusesTheExcess: with a cap of one hash at a time,
// a burst of registrations gets some through and refuses the rest, after the
// bounded wait, with resource_exhausted; nothing else.
func TestPasswordHashingCapRefusesTheExcess(t *testing.T) {
	t.Parallel()
	// Costly enough that the burst cannot finish within the 2 s wait with
	// one hash at a time, however fast the machine.
	costly := auth.PasswordParams{MemoryKiB: 16 * 1024, Iterations: 3, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	e := newEnv(t, func(d *api.Deps) {
		d.PasswordParams = costly
		d.PasswordHashConcurrency = 1
	})
	const n = 300
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = e.clients[connectJSON].auth.Register(ctxT(t), connect.NewRequest(&pb.RegisterRequest{
				Email: fmt.Sprintf("burst%d@example.com", i), Password: password, Role: pb.Role_ROLE_CUSTOMER,
			}))
		})
	}
	close(start)
	wg.Wait()
	ok, busy := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case connect.CodeOf(err) == connect.CodeResourceExhausted:
			wantLoginErr(t, fmt.Sprintf("registration %d", i), err, connect.CodeResourceExhausted, "the server is busy hashing passwords; retry in a moment")
			busy++
		default:
			t.Fatalf("registration %d: %v", i, err)
		}
	}
	if ok == 0 || busy == 0 {
		t.Fatalf("%d registered, %d refused as busy; want some of each", ok, busy)
	}
	if got := e.countAccounts(t); got != ok {
		t.Fatalf("%d accounts for %d successful registrations", got, ok)
	}
	t.Logf("cap 1: %d registered, %d refused as busy", ok, busy)
}
