package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// TestRegisterRefused: every refused registration has its exact code, names
// the field at fault and creates nothing, over every transport.
func TestRegisterRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	taken := e.merchant(t)

	good := func(mod func(r *pb.RegisterRequest)) *pb.RegisterRequest {
		r := &pb.RegisterRequest{Email: "new.person@example.com", Password: password, Role: pb.Role_ROLE_CUSTOMER}
		mod(r)
		return r
	}
	tests := []struct {
		name string
		req  *pb.RegisterRequest
		want want
	}{
		{"duplicate email", good(func(r *pb.RegisterRequest) { r.Email = taken.email }),
			want{code: connect.CodeAlreadyExists, exactMsg: "an account with this email already exists"}},
		{"duplicate email in another case", good(func(r *pb.RegisterRequest) { r.Email = strings.ToUpper(taken.email) }),
			want{code: connect.CodeAlreadyExists, exactMsg: "an account with this email already exists"}},
		{"duplicate email as another role", good(func(r *pb.RegisterRequest) { r.Email = taken.email; r.Role = pb.Role_ROLE_CUSTOMER }),
			want{code: connect.CodeAlreadyExists}},
		{"malformed email", good(func(r *pb.RegisterRequest) { r.Email = "not-an-email" }),
			want{code: connect.CodeInvalidArgument, field: "email"}},
		{"empty email", good(func(r *pb.RegisterRequest) { r.Email = "" }),
			want{code: connect.CodeInvalidArgument, field: "email"}},
		{"password of 11 characters", good(func(r *pb.RegisterRequest) { r.Password = "12345678901" }),
			want{code: connect.CodeInvalidArgument, field: "password"}},
		{"password of 257 characters", good(func(r *pb.RegisterRequest) { r.Password = strings.Repeat("p", 257) }),
			want{code: connect.CodeInvalidArgument, field: "password"}},
		{"unknown role 7", good(func(r *pb.RegisterRequest) { r.Role = pb.Role(7) }),
			want{code: connect.CodeInvalidArgument, field: "role"}},
		{"ROLE_UNSPECIFIED", good(func(r *pb.RegisterRequest) { r.Role = pb.Role_ROLE_UNSPECIFIED }),
			want{code: connect.CodeInvalidArgument, field: "role"}},
		{"ROLE_ADMIN", good(func(r *pb.RegisterRequest) { r.Role = pb.Role_ROLE_ADMIN }),
			want{code: connect.CodeInvalidArgument, field: "role", msg: "role must be ROLE_MERCHANT or ROLE_CUSTOMER"}},
		{"default_currency usd1", good(func(r *pb.RegisterRequest) { r.DefaultCurrency = "usd1" }),
			want{code: connect.CodeInvalidArgument, field: "default_currency"}},
		// XXX matches the pattern; the handler refuses it. Its message says
		// "unknown currency", the detail names the field.
		{"default_currency XXX", good(func(r *pb.RegisterRequest) { r.DefaultCurrency = "XXX" }),
			want{code: connect.CodeInvalidArgument, field: "default_currency", msg: `unknown currency "XXX"`}},
		{"default_currency QQQ", good(func(r *pb.RegisterRequest) { r.DefaultCurrency = "qqq" }),
			want{code: connect.CodeInvalidArgument, field: "default_currency", msg: "currency"}},
		{"display_name of 101 characters", good(func(r *pb.RegisterRequest) { r.DisplayName = strings.Repeat("d", 101) }),
			want{code: connect.CodeInvalidArgument, field: "display_name"}},
	}
	for _, tc := range tests {
		for _, tr := range allTransports {
			t.Run(tc.name+"/"+string(tr), func(t *testing.T) {
				before := e.snapshot(t)
				accounts := e.countAccounts(t)
				e.call(t, tr, "", tc.req).wantErr(t, tc.want)
				if n := e.countAccounts(t); n != accounts {
					t.Errorf("accounts: %d after the refused call, %d before", n, accounts)
				}
				e.unchanged(t, before)
			})
		}
	}
}

// TestRegister: a registration returns the account in canonical form, and
// the password is stored only as an argon2id hash and never returned.
func TestRegister(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			local := "Mixed.Case" + string(rune('A'+i))
			req := &pb.RegisterRequest{
				Email:           local + "@Example.COM",
				Password:        password,
				Role:            pb.Role_ROLE_MERCHANT,
				DisplayName:     "  Shop  ",
				BusinessName:    "Shop Ltd",
				DefaultCurrency: "eur",
			}
			before := e.countAccounts(t)
			r := e.call(t, tr, "", req)
			a := wantOK[*pb.RegisterResponse](t, r).GetAccount()
			wantEmail := strings.ToLower(req.Email)
			switch {
			case !strings.HasPrefix(a.GetId(), "acct_"):
				t.Errorf("id = %q, want acct_...", a.GetId())
			case a.GetEmail() != wantEmail:
				t.Errorf("email = %q, want %q", a.GetEmail(), wantEmail)
			case a.GetDefaultCurrency() != "EUR":
				t.Errorf("default_currency = %q, want EUR", a.GetDefaultCurrency())
			case a.GetRole() != pb.Role_ROLE_MERCHANT:
				t.Errorf("role = %v", a.GetRole())
			case a.GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_ACTIVE:
				t.Errorf("status = %v", a.GetStatus())
			case a.GetDisplayName() != "Shop" || a.GetBusinessName() != "Shop Ltd":
				t.Errorf("names = %q, %q", a.GetDisplayName(), a.GetBusinessName())
			case a.GetCreatedAt() == nil || a.GetCreatedAt().AsTime().IsZero():
				t.Errorf("created_at missing")
			}
			if n := e.countAccounts(t); n != before+1 {
				t.Errorf("accounts = %d, want %d", n, before+1)
			}
			if tr == httpJSON {
				body := string(r.body)
				for _, leak := range []string{"password", "Password", "argon2", password} {
					if strings.Contains(body, leak) {
						t.Errorf("response JSON contains %q: %s", leak, body)
					}
				}
			}
			stored, err := e.st.AccountByID(ctxT(t), a.GetId())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") || strings.Contains(stored.PasswordHash, password) {
				t.Errorf("stored password hash = %q, want an argon2id hash", stored.PasswordHash)
			}
			// The new account signs in with the email in any case.
			e.login(t, strings.ToUpper(req.Email), password)
		})
	}
	t.Run("currency defaults to USD", func(t *testing.T) {
		a := wantOK[*pb.RegisterResponse](t, e.call(t, connectJSON, "", &pb.RegisterRequest{
			Email: e.email("usd"), Password: password, Role: pb.Role_ROLE_CUSTOMER,
		})).GetAccount()
		if a.GetDefaultCurrency() != "USD" || a.GetRole() != pb.Role_ROLE_CUSTOMER {
			t.Errorf("account = %v, want USD customer", a)
		}
	})
}

// TestLoginFailures: a wrong password and an unknown email are the same
// unauthenticated answer, and neither creates a session.
func TestLoginFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.customer(t)
	tests := []struct {
		name string
		req  *pb.LoginRequest
		want want
	}{
		{"wrong password", &pb.LoginRequest{Email: u.email, Password: password + "!"},
			want{code: connect.CodeUnauthenticated, exactMsg: "invalid email or password"}},
		{"unknown email", &pb.LoginRequest{Email: "nobody@example.com", Password: password},
			want{code: connect.CodeUnauthenticated, exactMsg: "invalid email or password"}},
		{"empty password", &pb.LoginRequest{Email: u.email},
			want{code: connect.CodeInvalidArgument, field: "password"}},
		{"empty email", &pb.LoginRequest{Password: password},
			want{code: connect.CodeInvalidArgument, field: "email"}},
	}
	for _, tc := range tests {
		for _, tr := range allTransports {
			t.Run(tc.name+"/"+string(tr), func(t *testing.T) {
				before := e.snapshot(t)
				e.call(t, tr, "", tc.req).wantErr(t, tc.want)
				e.unchanged(t, before)
			})
		}
	}
}

// TestLoginThrottle: after five failures the sixth attempt is refused with
// resource_exhausted even with the right password, until the block expires;
// a success resets the count.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			u := e.merchant(t)
			wrong := &pb.LoginRequest{Email: u.email, Password: "wrong password 123"}
			right := &pb.LoginRequest{Email: u.email, Password: password}
			badLogin := want{code: connect.CodeUnauthenticated, exactMsg: "invalid email or password"}
			throttled := want{code: connect.CodeResourceExhausted, msg: "too many failed logins"}

			for i := range 5 {
				// The count is per email, whatever its case.
				req := wrong
				if i%2 == 1 {
					req = &pb.LoginRequest{Email: strings.ToUpper(u.email), Password: wrong.Password}
				}
				e.call(t, tr, "", req).wantErr(t, badLogin)
			}
			before := e.snapshot(t)
			e.call(t, tr, "", right).wantErr(t, throttled)
			e.call(t, tr, "", wrong).wantErr(t, throttled)
			e.unchanged(t, before)

			e.clock.Advance(59 * time.Second)
			e.call(t, tr, "", right).wantErr(t, throttled)
			e.clock.Advance(2 * time.Second)
			wantOK[*pb.LoginResponse](t, e.call(t, tr, "", right))

			// The success reset the count: four more failures do not block.
			for range 4 {
				e.call(t, tr, "", wrong).wantErr(t, badLogin)
			}
			wantOK[*pb.LoginResponse](t, e.call(t, tr, "", right))
		})
	}
	t.Run("unknown email is throttled alike", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		ghost := &pb.LoginRequest{Email: "ghost@example.com", Password: password}
		for range 5 {
			e.call(t, httpJSON, "", ghost).wantErr(t, want{code: connect.CodeUnauthenticated, exactMsg: "invalid email or password"})
		}
		e.call(t, httpJSON, "", ghost).wantErr(t, want{code: connect.CodeResourceExhausted, msg: "too many failed logins"})
	})
	t.Run("other emails are not blocked", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		victim, other := e.merchant(t), e.customer(t)
		for range 6 {
			e.call(t, connectJSON, "", &pb.LoginRequest{Email: victim.email, Password: "wrong password 123"})
		}
		e.call(t, connectJSON, "", &pb.LoginRequest{Email: victim.email, Password: password}).
			wantErr(t, want{code: connect.CodeResourceExhausted})
		e.login(t, other.email, password)
	})
}

// TestRefreshToken: rotation, reuse detection revoking the family, and the
// independence of other logins.
func TestRefreshToken(t *testing.T) {
	t.Parallel()
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			u := e.customer(t)
			second := e.login(t, u.email, password)
			invalid := want{code: connect.CodeUnauthenticated, exactMsg: "invalid or expired refresh token"}
			reused := want{code: connect.CodeUnauthenticated, msg: "already used"}

			r1 := wantOK[*pb.RefreshTokenResponse](t, e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: u.refresh}))
			if r1.GetRefreshToken() == u.refresh || !strings.HasPrefix(r1.GetRefreshToken(), auth.RefreshTokenPrefix) {
				t.Fatalf("rotation returned refresh token %q (old %q)", r1.GetRefreshToken(), u.refresh)
			}
			if r1.GetAccount().GetId() != u.acct.GetId() || r1.GetAccessToken() == "" || r1.GetAccessTokenExpiresAt() == nil {
				t.Fatalf("rotation answer = %v", r1)
			}
			// The new access token works.
			if got := wantOK[*pb.GetMeResponse](t, e.me(t, tr, bearer(r1.GetAccessToken()))); got.GetAccount().GetId() != u.acct.GetId() {
				t.Fatalf("GetMe with the rotated access token = %v", got)
			}
			// Presented again within the reuse grace (two tabs, a request
			// retried after its answer was lost): the same successor, and
			// nobody is signed out.
			again := wantOK[*pb.RefreshTokenResponse](t, e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: u.refresh}))
			if again.GetRefreshToken() != r1.GetRefreshToken() || again.GetRefreshTokenExpiresAt().AsTime() != r1.GetRefreshTokenExpiresAt().AsTime() {
				t.Fatalf("repeat within the grace = %q (expires %v), want the first rotation's %q (%v)", again.GetRefreshToken(),
					again.GetRefreshTokenExpiresAt().AsTime(), r1.GetRefreshToken(), r1.GetRefreshTokenExpiresAt().AsTime())
			}
			r2 := wantOK[*pb.RefreshTokenResponse](t, e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: r1.GetRefreshToken()}))

			// After the grace, reusing the first, rotated, token revokes the family...
			e.clock.Advance(11 * time.Second)
			e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: u.refresh}).wantErr(t, reused)
			// ...so the newest token of that family is dead too.
			e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: r2.GetRefreshToken()}).wantErr(t, invalid)
			e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: r1.GetRefreshToken()}).wantErr(t, reused)
			// The second login is another family and untouched.
			wantOK[*pb.RefreshTokenResponse](t, e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: second.refresh}))

			before := e.snapshot(t)
			for _, bad := range []string{"rt_" + strings.Repeat("A", 43), "garbage", u.access} {
				e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: bad}).wantErr(t, invalid)
			}
			e.call(t, tr, "", &pb.RefreshTokenRequest{}).wantErr(t, want{code: connect.CodeInvalidArgument, field: "refresh_token"})
			e.unchanged(t, before)
		})
	}
	t.Run("expired refresh token", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		u := e.customer(t)
		e.clock.Advance(30*24*time.Hour + time.Second)
		e.call(t, httpJSON, "", &pb.RefreshTokenRequest{RefreshToken: u.refresh}).
			wantErr(t, want{code: connect.CodeUnauthenticated, exactMsg: "invalid or expired refresh token"})
	})
}

// TestLogout: with a refresh token it ends that login only; without one it
// ends every login; another account's token is not_found.
func TestLogout(t *testing.T) {
	t.Parallel()
	for _, tr := range allTransports {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			u := e.merchant(t)
			other := e.login(t, u.email, password)
			stranger := e.customer(t)
			invalid := want{code: connect.CodeUnauthenticated, exactMsg: "invalid or expired refresh token"}

			// Another account's refresh token: not_found, nothing revoked.
			before := e.snapshot(t)
			e.call(t, tr, u.authz(), &pb.LogoutRequest{RefreshToken: stranger.refresh}).
				wantErr(t, want{code: connect.CodeNotFound})
			e.call(t, tr, u.authz(), &pb.LogoutRequest{RefreshToken: "rt_unknown"}).
				wantErr(t, want{code: connect.CodeNotFound})
			e.unchanged(t, before)

			// Rotate first, then log out with the rotated-to token: the
			// whole family ends.
			rot := wantOK[*pb.RefreshTokenResponse](t, e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: u.refresh}))
			wantOK[*pb.LogoutResponse](t, e.call(t, tr, u.authz(), &pb.LogoutRequest{RefreshToken: rot.GetRefreshToken()}))
			e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: rot.GetRefreshToken()}).wantErr(t, invalid)
			// Logging out again is fine.
			wantOK[*pb.LogoutResponse](t, e.call(t, tr, u.authz(), &pb.LogoutRequest{RefreshToken: rot.GetRefreshToken()}))

			// The other login of the same account still works.
			other2 := wantOK[*pb.RefreshTokenResponse](t, e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: other.refresh}))
			third := e.login(t, u.email, password)

			// Logout without a token ends every login of the caller only.
			wantOK[*pb.LogoutResponse](t, e.call(t, tr, u.authz(), &pb.LogoutRequest{}))
			e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: other2.GetRefreshToken()}).wantErr(t, invalid)
			e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: third.refresh}).wantErr(t, invalid)
			wantOK[*pb.RefreshTokenResponse](t, e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: stranger.refresh}))

			// Logout needs an access token.
			e.call(t, tr, "", &pb.LogoutRequest{}).wantErr(t, want{code: connect.CodeUnauthenticated})
		})
	}
}

// TestAccountsOnEachDB runs the account life cycle on SQLite and, with
// PAYMENTS_TEST_MYSQL_DSN, on MySQL/MariaDB. It is not parallel: ForEachDB
// migrates its databases outside migrateMu, so it must run while no parallel
// test does.
func TestAccountsOnEachDB(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st)
		for _, tr := range allTransports {
			t.Run(string(tr), func(t *testing.T) {
				email := e.email("Owner.")
				reg := wantOK[*pb.RegisterResponse](t, e.call(t, tr, "", &pb.RegisterRequest{
					Email: strings.ToUpper(email), Password: password, Role: pb.Role_ROLE_MERCHANT, DefaultCurrency: "kwd",
				})).GetAccount()
				if reg.GetEmail() != strings.ToLower(email) || reg.GetDefaultCurrency() != "KWD" {
					t.Fatalf("registered %v", reg)
				}
				before := e.snapshot(t)
				e.call(t, tr, "", &pb.RegisterRequest{Email: strings.ToLower(email), Password: password, Role: pb.Role_ROLE_CUSTOMER}).
					wantErr(t, want{code: connect.CodeAlreadyExists})
				e.call(t, tr, "", &pb.LoginRequest{Email: email, Password: "not the password"}).
					wantErr(t, want{code: connect.CodeUnauthenticated, exactMsg: "invalid email or password"})
				e.unchanged(t, before)

				login := wantOK[*pb.LoginResponse](t, e.call(t, tr, "", &pb.LoginRequest{Email: email, Password: password}))
				me := wantOK[*pb.GetMeResponse](t, e.me(t, tr, bearer(login.GetAccessToken())))
				if me.GetAccount().GetId() != reg.GetId() {
					t.Fatalf("GetMe = %v, want %s", me, reg.GetId())
				}
				rot := wantOK[*pb.RefreshTokenResponse](t, e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: login.GetRefreshToken()}))
				e.clock.Advance(11 * time.Second) // past the reuse grace
				e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: login.GetRefreshToken()}).
					wantErr(t, want{code: connect.CodeUnauthenticated, msg: "already used"})
				e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: rot.GetRefreshToken()}).
					wantErr(t, want{code: connect.CodeUnauthenticated})

				again := wantOK[*pb.LoginResponse](t, e.call(t, tr, "", &pb.LoginRequest{Email: email, Password: password}))
				wantOK[*pb.LogoutResponse](t, e.call(t, tr, bearer(again.GetAccessToken()), &pb.LogoutRequest{RefreshToken: again.GetRefreshToken()}))
				e.call(t, tr, "", &pb.RefreshTokenRequest{RefreshToken: again.GetRefreshToken()}).
					wantErr(t, want{code: connect.CodeUnauthenticated})
			})
		}
		t.Run("throttle", func(t *testing.T) {
			u := e.customer(t)
			for range 5 {
				e.call(t, httpJSON, "", &pb.LoginRequest{Email: u.email, Password: "not the password"}).
					wantErr(t, want{code: connect.CodeUnauthenticated, exactMsg: "invalid email or password"})
			}
			e.call(t, grpcProto, "", &pb.LoginRequest{Email: u.email, Password: password}).
				wantErr(t, want{code: connect.CodeResourceExhausted})
			e.clock.Advance(time.Minute + time.Second)
			e.login(t, u.email, password)
		})
	})
}

// jsonKeys decodes a JSON object's keys.
func jsonKeys(t *testing.T, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, raw)
	}
	return m
}
