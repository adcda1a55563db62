package api_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/payments-platform/payments/api"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// refreshAs refreshes token with the generated client, sending a
// User-Agent; it may run on any goroutine.
func (e *env) refreshAs(t *testing.T, userAgent, token string) (*pb.RefreshTokenResponse, error) {
	req := connect.NewRequest(&pb.RefreshTokenRequest{RefreshToken: token})
	req.Header().Set("User-Agent", userAgent)
	res, err := e.clients[connectJSON].auth.RefreshToken(ctxT(t), req)
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// Two tabs refreshing the same token at once (or a retried request) all get
// the same successor within the reuse grace, and the login lives on; the
// successor then works, and the family is intact.
func TestConcurrentRefreshesWithinTheGraceShareTheSuccessor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.customer(t)
	const tabs = 8
	var wg sync.WaitGroup
	got := make([]string, tabs)
	errsSeen := make([]error, tabs)
	for i := range tabs {
		wg.Go(func() {
			res, err := e.refreshAs(t, "tab", u.refresh)
			errsSeen[i] = err
			if err == nil {
				got[i] = res.GetRefreshToken()
			}
		})
	}
	wg.Wait()
	for i := range tabs {
		if errsSeen[i] != nil {
			t.Fatalf("tab %d: %v (a concurrent refresh within the grace must not sign the person out)", i, errsSeen[i])
		}
		if got[i] != got[0] || got[i] == u.refresh {
			t.Fatalf("tab %d got %q, tab 0 %q: every tab must get the same successor", i, got[i], got[0])
		}
	}
	next, err := e.refreshAs(t, "tab", got[0])
	if err != nil || next.GetRefreshToken() == got[0] {
		t.Fatalf("refresh of the shared successor: %v %v", next, err)
	}
}

// Outside the grace, reuse still revokes the whole family; with the grace
// turned off (negative), at once.
func TestRefreshReuseAfterTheGraceRevokesTheFamily(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		grace time.Duration
		wait  time.Duration
	}{
		{"default grace (10 s), reused after 11 s", 0, 11 * time.Second},
		{"30 s grace, reused after 31 s", 30 * time.Second, 31 * time.Second},
		{"grace off, reused at once", -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(d *api.Deps) { d.RefreshReuseGrace = tc.grace })
			u := e.customer(t)
			first, err := e.refreshAs(t, "a", u.refresh)
			if err != nil {
				t.Fatal(err)
			}
			if tc.grace > 0 {
				// Just inside the grace, the repeat gets the successor.
				e.clock.Advance(tc.grace - time.Second)
				again, err := e.refreshAs(t, "a", u.refresh)
				if err != nil || again.GetRefreshToken() != first.GetRefreshToken() {
					t.Fatalf("repeat inside the grace: %v %v", again, err)
				}
				e.clock.Advance(tc.wait - tc.grace + time.Second)
			} else {
				e.clock.Advance(tc.wait)
			}
			_, err = e.refreshAs(t, "a", u.refresh)
			wantLoginErr(t, "reuse", err, connect.CodeUnauthenticated, "already used")
			_, err = e.refreshAs(t, "a", first.GetRefreshToken())
			wantLoginErr(t, "the successor after reuse", err, connect.CodeUnauthenticated, "")
		})
	}
}

// ListSessions shows each login with the device and address that last used
// it; RevokeSession signs one out (its refresh token dies) and leaves the
// others; another account's session is not_found; an API key may not list
// or revoke sessions.
func TestSessionsListAndRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTrustedProxies())
	u := e.merchant(t)
	other := e.customer(t)
	// A second login from a phone.
	req := connect.NewRequest(&pb.LoginRequest{Email: u.email, Password: password})
	req.Header().Set("User-Agent", "Phone/1.0")
	req.Header().Set("X-Forwarded-For", "203.0.113.9")
	phoneRes, err := e.clients[connectJSON].auth.Login(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	phone := phoneRes.Msg
	e.clock.Advance(time.Minute)
	laptop, err := e.refreshAs(t, "Laptop/2.0", u.refresh)
	if err != nil {
		t.Fatal(err)
	}

	list := wantOK[*pb.ListSessionsResponse](t, e.call(t, httpJSON, u.authz(), &pb.ListSessionsRequest{}))
	if len(list.GetSessions()) != 2 {
		t.Fatalf("sessions %v, want the two logins", list.GetSessions())
	}
	newest, older := list.GetSessions()[0], list.GetSessions()[1]
	if newest.GetUserAgent() != "Laptop/2.0" || older.GetUserAgent() != "Phone/1.0" || older.GetClientIp() != "203.0.113.9" {
		t.Fatalf("sessions %v", list.GetSessions())
	}
	if !newest.GetLastUsedAt().AsTime().After(newest.GetCreatedAt().AsTime()) || !strings.HasPrefix(newest.GetId(), "rtf_") {
		t.Fatalf("the refreshed session: created %v, last used %v, id %s", newest.GetCreatedAt().AsTime(), newest.GetLastUsedAt().AsTime(), newest.GetId())
	}
	// Paging: one at a time, newest first.
	p1 := wantOK[*pb.ListSessionsResponse](t, e.call(t, httpJSON, u.authz(), &pb.ListSessionsRequest{PageSize: 1}))
	p2 := wantOK[*pb.ListSessionsResponse](t, e.call(t, httpJSON, u.authz(), &pb.ListSessionsRequest{PageSize: 1, PageToken: p1.GetNextPageToken()}))
	if len(p1.GetSessions()) != 1 || len(p2.GetSessions()) != 1 || p1.GetSessions()[0].GetId() != newest.GetId() ||
		p2.GetSessions()[0].GetId() != older.GetId() || p2.GetNextPageToken() != "" {
		t.Fatalf("pages %v / %v", p1, p2)
	}

	e.call(t, httpJSON, other.authz(), &pb.RevokeSessionRequest{Id: older.GetId()}).wantErr(t, want{code: connect.CodeNotFound})
	e.call(t, httpJSON, u.authz(), &pb.RevokeSessionRequest{Id: "key_x"}).wantErr(t, want{code: connect.CodeInvalidArgument, field: "id"})
	key, _ := e.apiKey(t, u, "backend")
	e.call(t, httpJSON, bearer(key), &pb.ListSessionsRequest{}).wantErr(t, want{code: connect.CodePermissionDenied})
	e.call(t, httpJSON, bearer(key), &pb.RevokeSessionRequest{Id: older.GetId()}).wantErr(t, want{code: connect.CodePermissionDenied})

	wantOK[*pb.RevokeSessionResponse](t, e.call(t, httpJSON, u.authz(), &pb.RevokeSessionRequest{Id: older.GetId()}))
	wantOK[*pb.RevokeSessionResponse](t, e.call(t, httpJSON, u.authz(), &pb.RevokeSessionRequest{Id: older.GetId()}))
	if _, err := e.refreshAs(t, "Phone/1.0", phone.GetRefreshToken()); err == nil {
		t.Fatal("the revoked session's refresh token still works")
	}
	if _, err := e.refreshAs(t, "Laptop/2.0", laptop.GetRefreshToken()); err != nil {
		t.Fatalf("the other session was signed out too: %v", err)
	}
	list = wantOK[*pb.ListSessionsResponse](t, e.call(t, httpJSON, u.authz(), &pb.ListSessionsRequest{}))
	if len(list.GetSessions()) != 1 || list.GetSessions()[0].GetId() != newest.GetId() {
		t.Fatalf("sessions after the revocation %v", list.GetSessions())
	}
}

// ChangePassword checks the current password (a wrong one is
// unauthenticated and counts as a failed login), refuses a weak new one,
// and on success signs every session out and starts a fresh one.
func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.customer(t)
	tablet := e.login(t, u.email, password)
	const next = "a-brand-new-passphrase-2026"

	before := e.snapshot(t)
	e.call(t, httpJSON, u.authz(), &pb.ChangePasswordRequest{CurrentPassword: "not it", NewPassword: next}).
		wantErr(t, want{code: connect.CodeUnauthenticated, msg: "current_password"})
	e.call(t, httpJSON, u.authz(), &pb.ChangePasswordRequest{CurrentPassword: password, NewPassword: "short"}).
		wantErr(t, want{code: connect.CodeInvalidArgument, field: "new_password"})
	e.call(t, httpJSON, u.authz(), &pb.ChangePasswordRequest{NewPassword: next}).
		wantErr(t, want{code: connect.CodeInvalidArgument, field: "current_password"})
	e.unchanged(t, before)

	res := wantOK[*pb.ChangePasswordResponse](t, e.call(t, httpJSON, u.authz(), &pb.ChangePasswordRequest{CurrentPassword: password, NewPassword: next}))
	if res.GetAccessToken() == "" || res.GetRefreshToken() == "" || res.GetRefreshTokenExpiresAt() == nil {
		t.Fatalf("answer %v", res)
	}
	for name, old := range map[string]string{"this session's old token": u.refresh, "the tablet's": tablet.refresh} {
		if _, err := e.refreshAs(t, "x", old); err == nil {
			t.Fatalf("%s still refreshes after the password change", name)
		}
	}
	if _, err := e.refreshAs(t, "x", res.GetRefreshToken()); err != nil {
		t.Fatalf("the fresh session does not refresh: %v", err)
	}
	e.call(t, httpJSON, "", &pb.LoginRequest{Email: u.email, Password: password}).wantErr(t, want{code: connect.CodeUnauthenticated})
	wantOK[*pb.LoginResponse](t, e.call(t, httpJSON, "", &pb.LoginRequest{Email: u.email, Password: next}))
	key := e.merchant(t)
	secret, _ := e.apiKey(t, key, "k")
	e.call(t, httpJSON, bearer(secret), &pb.ChangePasswordRequest{CurrentPassword: password, NewPassword: next}).
		wantErr(t, want{code: connect.CodePermissionDenied})
}

// Wrong current passwords (ChangePassword's and UpdateMe's) count against
// the login throttle of the email:
// after the allowance, ChangePassword (and Login) are refused for a while,
// even with the right password.
func TestChangePasswordIsThrottledLikeLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.customer(t)
	// UpdateMe's password change counts on the same limit.
	for i := range 5 {
		guess := "wrong guess " + string(rune('a'+i))
		if i%2 == 0 {
			e.call(t, httpJSON, u.authz(), &pb.ChangePasswordRequest{CurrentPassword: guess, NewPassword: "another-long-passphrase"}).
				wantErr(t, want{code: connect.CodeUnauthenticated})
			continue
		}
		np := "another-long-passphrase"
		e.call(t, httpJSON, u.authz(), &pb.UpdateMeRequest{CurrentPassword: &guess, NewPassword: &np}).
			wantErr(t, want{code: connect.CodeInvalidArgument, field: "current_password"})
	}
	e.call(t, httpJSON, u.authz(), &pb.ChangePasswordRequest{CurrentPassword: password, NewPassword: "another-long-passphrase"}).
		wantErr(t, want{code: connect.CodeResourceExhausted})
	e.call(t, httpJSON, "", &pb.LoginRequest{Email: u.email, Password: password}).
		wantErr(t, want{code: connect.CodeResourceExhausted})
}
