package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

const (
	msgInvalidRefresh = "invalid or expired refresh token"
	msgReused         = "refresh token was already used; every session of this login has been revoked"
)

var refreshTTL = 30 * 24 * time.Hour

func TestCreateRefreshToken(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "rt@example.com")
		fam := ids.New(ids.Family)
		rt, err := s.CreateRefreshToken(ctx, acc.ID, fam, hash("t1"), t0.Add(refreshTTL), t0, store.SessionClient{})
		if err != nil {
			t.Fatalf("CreateRefreshToken: %v", err)
		}
		if !ids.Valid(ids.Refresh, rt.ID) || rt.AccountID != acc.ID || rt.FamilyID != fam ||
			rt.TokenHash != hash("t1") || !rt.CreatedAt.Equal(t0) || !rt.ExpiresAt.Equal(t0.Add(refreshTTL)) ||
			rt.RotatedAt != nil || rt.RevokedAt != nil || rt.ReplacedBy != nil {
			t.Errorf("created %+v", rt)
		}
		got, err := s.Client.RefreshToken.Get(ctx, rt.ID)
		if err != nil || !got.CreatedAt.Equal(t0) || !got.ExpiresAt.Equal(rt.ExpiresAt) {
			t.Fatalf("read back %+v, %v", got, err)
		}

		_, err = s.CreateRefreshToken(ctx, ids.New(ids.Account), fam, hash("t2"), t0.Add(refreshTTL), t0, store.SessionClient{})
		wantErr(t, err, errs.ErrNotFound, "account not found")
		_, err = s.CreateRefreshToken(ctx, acc.ID, fam, "NOT-A-HASH", t0.Add(refreshTTL), t0, store.SessionClient{})
		wantErr(t, err, errs.ErrInvalidArgument, "")
		_, err = s.CreateRefreshToken(ctx, acc.ID, fam, hash("t1"), t0.Add(refreshTTL), t0, store.SessionClient{})
		wantErr(t, err, errs.ErrAlreadyExists, "")
	})
}

func TestRotateRefreshToken(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "rot@example.com")
		fam := ids.New(ids.Family)
		first, err := s.CreateRefreshToken(ctx, acc.ID, fam, hash("1"), t0.Add(refreshTTL), t0, store.SessionClient{})
		if err != nil {
			t.Fatal(err)
		}
		t1 := t0.Add(time.Hour)
		next, gotAcc, err := s.RotateRefreshToken(ctx, hash("1"), hash("2"), t1.Add(refreshTTL), t1, 0, store.SessionClient{})
		if err != nil {
			t.Fatalf("RotateRefreshToken: %v", err)
		}
		if gotAcc.ID != acc.ID || gotAcc.Email != acc.Email {
			t.Errorf("account = %+v", gotAcc)
		}
		if next.ID == first.ID || next.FamilyID != fam || next.AccountID != acc.ID || next.TokenHash != hash("2") ||
			!next.CreatedAt.Equal(t1) || !next.ExpiresAt.Equal(t1.Add(refreshTTL)) {
			t.Errorf("new token = %+v", next)
		}
		old, err := s.Client.RefreshToken.Get(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantTime(t, "old rotated_at", old.RotatedAt, t1)
		wantTime(t, "old revoked_at", old.RevokedAt, time.Time{})
		if old.ReplacedBy == nil || *old.ReplacedBy != next.ID {
			t.Errorf("old replaced_by = %v, want %s", old.ReplacedBy, next.ID)
		}

		// The chain goes on.
		t2 := t1.Add(time.Hour)
		third, _, err := s.RotateRefreshToken(ctx, hash("2"), hash("3"), t2.Add(refreshTTL), t2, 0, store.SessionClient{})
		if err != nil {
			t.Fatalf("second rotation: %v", err)
		}
		if third.FamilyID != fam {
			t.Errorf("family = %s, want %s", third.FamilyID, fam)
		}
	})
}

func TestRefreshTokenReuseRevokesFamily(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "reuse@example.com")
		exp := t0.Add(refreshTTL)
		if _, err := s.CreateRefreshToken(ctx, acc.ID, ids.New(ids.Family), hash("A"), exp, t0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		// A second login of the same account: another family.
		if _, err := s.CreateRefreshToken(ctx, acc.ID, ids.New(ids.Family), hash("other-login"), exp, t0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RotateRefreshToken(ctx, hash("A"), hash("B"), exp, t0.Add(time.Minute), 0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RotateRefreshToken(ctx, hash("B"), hash("C"), exp, t0.Add(2*time.Minute), 0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}

		// A thief replays A.
		reuseAt := t0.Add(3 * time.Minute)
		_, _, err := s.RotateRefreshToken(ctx, hash("A"), hash("X"), exp, reuseAt, 0, store.SessionClient{})
		wantErr(t, err, errs.ErrUnauthenticated, msgReused)

		// The newest token of the family is dead too.
		_, _, err = s.RotateRefreshToken(ctx, hash("C"), hash("D"), exp, reuseAt.Add(time.Second), 0, store.SessionClient{})
		wantErr(t, err, errs.ErrUnauthenticated, msgInvalidRefresh)
		c, err := s.Client.RefreshToken.Query().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range c {
			if r.TokenHash == hash("other-login") {
				if r.RevokedAt != nil {
					t.Errorf("the other login's token was revoked")
				}
				continue
			}
			wantTime(t, "revoked_at of "+r.ID, r.RevokedAt, reuseAt)
		}
		if n := s.Client.RefreshToken.Query().CountX(ctx); n != 4 {
			t.Errorf("%d tokens, want 4 (no token made by the failed calls)", n)
		}
		// The other session still works.
		if _, _, err := s.RotateRefreshToken(ctx, hash("other-login"), hash("other-2"), exp, reuseAt, 0, store.SessionClient{}); err != nil {
			t.Fatalf("other login: %v", err)
		}
	})
}

func TestRotateRefreshTokenRefuses(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "refuse@example.com")
		disabled := mustAccount(t, s, "disabled@example.com")
		exp := t0.Add(time.Hour)
		for _, h := range []string{"live", "revoked", "expiring"} {
			if _, err := s.CreateRefreshToken(ctx, acc.ID, ids.New(ids.Family), hash(h), exp, t0, store.SessionClient{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.CreateRefreshToken(ctx, disabled.ID, ids.New(ids.Family), hash("disabled"), exp, t0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeRefreshFamily(ctx, acc.ID, hash("revoked"), t0); err != nil {
			t.Fatal(err)
		}
		s.Client.Account.UpdateOneID(disabled.ID).SetStatus(account.StatusDisabled).ExecX(ctx)

		tests := []struct {
			name, token string
			at          time.Time
			msg         string
		}{
			{"unknown", "nope", t0, msgInvalidRefresh},
			{"revoked", "revoked", t0.Add(time.Minute), msgInvalidRefresh},
			{"expired at expires_at", "expiring", exp, msgInvalidRefresh},
			{"expired later", "expiring", exp.Add(time.Hour), msgInvalidRefresh},
			{"disabled account", "disabled", t0.Add(time.Minute), "this account is disabled"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := s.RotateRefreshToken(ctx, hash(tt.token), hash(tt.name+"-next"), tt.at.Add(time.Hour), tt.at, 0, store.SessionClient{})
				wantErr(t, err, errs.ErrUnauthenticated, tt.msg)
			})
		}
		// One microsecond before expiry still works: precision is kept.
		if _, _, err := s.RotateRefreshToken(ctx, hash("expiring"), hash("fresh"), exp.Add(time.Hour), exp.Add(-time.Microsecond), 0, store.SessionClient{}); err != nil {
			t.Fatalf("rotation just before expiry: %v", err)
		}
		if _, _, err := s.RotateRefreshToken(ctx, hash("live"), hash("live-2"), exp, t0.Add(time.Minute), 0, store.SessionClient{}); err != nil {
			t.Fatalf("live token: %v", err)
		}
	})
}

func TestConcurrentRotationsOfOneToken(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "race@example.com")
		exp := t0.Add(refreshTTL)
		if _, err := s.CreateRefreshToken(ctx, acc.ID, ids.New(ids.Family), hash("shared"), exp, t0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		const n = 20
		type result struct {
			newHash string
			err     error
		}
		results := concurrently(n, func(i int) result {
			h := hash(fmt.Sprint("next-", i))
			_, _, err := s.RotateRefreshToken(ctx, hash("shared"), h, exp, t0.Add(time.Minute), 0, store.SessionClient{})
			return result{h, err}
		})
		var winner string
		for _, r := range results {
			if r.err == nil {
				if winner != "" {
					t.Fatalf("two rotations succeeded")
				}
				winner = r.newHash
				continue
			}
			wantErr(t, r.err, errs.ErrUnauthenticated, "")
		}
		if winner == "" {
			t.Fatalf("no rotation succeeded: %v", results[0].err)
		}
		if n := s.Client.RefreshToken.Query().CountX(ctx); n != 2 {
			t.Errorf("%d tokens, want 2 (the old one and one successor)", n)
		}
		// The losers presented a token that had been rotated: reuse, so the
		// winner's token is revoked too.
		_, _, err := s.RotateRefreshToken(ctx, winner, hash("after"), exp, t0.Add(2*time.Minute), 0, store.SessionClient{})
		wantErr(t, err, errs.ErrUnauthenticated, msgInvalidRefresh)
	})
}

func TestRevokeRefreshFamily(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "a@example.com")
		b := mustAccount(t, s, "b@example.com")
		exp := t0.Add(refreshTTL)
		fam := ids.New(ids.Family)
		if _, err := s.CreateRefreshToken(ctx, a.ID, fam, hash("a1"), exp, t0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RotateRefreshToken(ctx, hash("a1"), hash("a2"), exp, t0.Add(time.Minute), 0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateRefreshToken(ctx, a.ID, ids.New(ids.Family), hash("a-other"), exp, t0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateRefreshToken(ctx, b.ID, ids.New(ids.Family), hash("b1"), exp, t0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}

		wantErr(t, s.RevokeRefreshFamily(ctx, b.ID, hash("a2"), t0), errs.ErrNotFound, "refresh token not found")
		wantErr(t, s.RevokeRefreshFamily(ctx, a.ID, hash("unknown"), t0), errs.ErrNotFound, "refresh token not found")
		// B's attempt did nothing.
		if _, _, err := s.RotateRefreshToken(ctx, hash("a2"), hash("a3"), exp, t0.Add(2*time.Minute), 0, store.SessionClient{}); err != nil {
			t.Fatalf("A's session after B's revoke attempt: %v", err)
		}

		logout := t0.Add(3 * time.Minute)
		if err := s.RevokeRefreshFamily(ctx, a.ID, hash("a3"), logout); err != nil {
			t.Fatalf("RevokeRefreshFamily: %v", err)
		}
		if err := s.RevokeRefreshFamily(ctx, a.ID, hash("a3"), logout.Add(time.Hour)); err != nil {
			t.Fatalf("second RevokeRefreshFamily: %v", err)
		}
		for _, r := range s.Client.RefreshToken.Query().AllX(ctx) {
			want := time.Time{}
			if r.FamilyID == fam {
				want = logout // the first revocation time is kept
			}
			wantTime(t, "revoked_at of "+r.ID, r.RevokedAt, want)
		}
		_, _, err := s.RotateRefreshToken(ctx, hash("a3"), hash("a4"), exp, logout, 0, store.SessionClient{})
		wantErr(t, err, errs.ErrUnauthenticated, msgInvalidRefresh)
	})
}

func TestRevokeAllRefreshTokens(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "a@example.com")
		b := mustAccount(t, s, "b@example.com")
		exp := t0.Add(refreshTTL)
		for i, acc := range []string{a.ID, a.ID, a.ID, b.ID} {
			if _, err := s.CreateRefreshToken(ctx, acc, ids.New(ids.Family), hash(fmt.Sprint(i)), exp, t0, store.SessionClient{}); err != nil {
				t.Fatal(err)
			}
		}
		early := t0.Add(time.Minute)
		if err := s.RevokeRefreshFamily(ctx, a.ID, hash("0"), early); err != nil {
			t.Fatal(err)
		}
		all := t0.Add(time.Hour)
		if err := s.RevokeAllRefreshTokens(ctx, a.ID, all); err != nil {
			t.Fatalf("RevokeAllRefreshTokens: %v", err)
		}
		want := map[string]time.Time{hash("0"): early, hash("1"): all, hash("2"): all, hash("3"): {}}
		for _, r := range s.Client.RefreshToken.Query().AllX(ctx) {
			wantTime(t, "revoked_at of "+r.ID, r.RevokedAt, want[r.TokenHash])
		}
	})
}

// Within the grace a rotated token presented again with the same successor
// hash gets that successor (concurrently too, on every database); with
// another successor hash, after the grace, or with no grace, it is reuse.
func TestRotateRefreshTokenGrace(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "grace@example.com")
		const grace = 10 * time.Second
		client := store.SessionClient{UserAgent: "UA", IP: "198.51.100.1"}
		newFamily := func(name string) {
			t.Helper()
			if _, err := s.CreateRefreshToken(ctx, acc.ID, ids.New(ids.Family), hash(name), t0.Add(refreshTTL), t0, client); err != nil {
				t.Fatal(err)
			}
		}

		newFamily("g1")
		const tabs = 8
		var wg sync.WaitGroup
		got := make([]string, tabs)
		errsSeen := make([]error, tabs)
		for i := range tabs {
			wg.Go(func() {
				next, _, err := s.RotateRefreshToken(ctx, hash("g1"), hash("g1-next"), t0.Add(refreshTTL), t0.Add(time.Second), grace, client)
				errsSeen[i] = err
				if err == nil {
					got[i] = next.ID
				}
			})
		}
		wg.Wait()
		for i := range tabs {
			if errsSeen[i] != nil || got[i] != got[0] {
				t.Fatalf("concurrent rotation %d: %q %v, want %q", i, got[i], errsSeen[i], got[0])
			}
		}
		next, err := s.Client.RefreshToken.Get(ctx, got[0])
		if err != nil || next.UserAgent != "UA" || next.ClientIP != "198.51.100.1" || !store.SessionStartedAt(next).Equal(t0) {
			t.Fatalf("successor %+v %v", next, err)
		}
		// At the grace's end still the successor; a second later, reuse.
		if again, _, err := s.RotateRefreshToken(ctx, hash("g1"), hash("g1-next"), t0.Add(refreshTTL), t0.Add(time.Second+grace), grace, client); err != nil || again.ID != got[0] {
			t.Fatalf("at the grace's end: %v %v", again, err)
		}
		_, _, err = s.RotateRefreshToken(ctx, hash("g1"), hash("g1-next"), t0.Add(refreshTTL), t0.Add(2*time.Second+grace), grace, client)
		wantErr(t, err, errs.ErrUnauthenticated, msgReused)
		_, _, err = s.RotateRefreshToken(ctx, hash("g1-next"), hash("g1-next-next"), t0.Add(refreshTTL), t0.Add(3*time.Second+grace), grace, client)
		wantErr(t, err, errs.ErrUnauthenticated, msgInvalidRefresh)

		// Another successor (a token derived otherwise: a stolen copy
		// replayed by other means) is reuse even within the grace.
		newFamily("g2")
		if _, _, err := s.RotateRefreshToken(ctx, hash("g2"), hash("g2-next"), t0.Add(refreshTTL), t0.Add(time.Second), grace, client); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.RotateRefreshToken(ctx, hash("g2"), hash("g2-other"), t0.Add(refreshTTL), t0.Add(2*time.Second), grace, client)
		wantErr(t, err, errs.ErrUnauthenticated, msgReused)

		// No grace: at once.
		newFamily("g3")
		if _, _, err := s.RotateRefreshToken(ctx, hash("g3"), hash("g3-next"), t0.Add(refreshTTL), t0.Add(time.Second), 0, client); err != nil {
			t.Fatal(err)
		}
		_, _, err = s.RotateRefreshToken(ctx, hash("g3"), hash("g3-next"), t0.Add(refreshTTL), t0.Add(time.Second), 0, client)
		wantErr(t, err, errs.ErrUnauthenticated, msgReused)
	})
}

// ListSessions lists the live token of each login, newest first, without
// rotated, revoked or expired ones; RevokeSession ends one login of the
// account and refuses another account's.
func TestListAndRevokeSessions(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "sessions@example.com")
		other := mustAccount(t, s, "other-sessions@example.com")
		mk := func(owner string, name string, at time.Time, ttl time.Duration) string {
			t.Helper()
			fam := ids.New(ids.Family)
			if _, err := s.CreateRefreshToken(ctx, owner, fam, hash(name), at.Add(ttl), at, store.SessionClient{UserAgent: name}); err != nil {
				t.Fatal(err)
			}
			return fam
		}
		a := mk(acc.ID, "a", t0, refreshTTL)
		b := mk(acc.ID, "b", t0.Add(time.Minute), refreshTTL)
		mk(acc.ID, "expired", t0.Add(2*time.Minute), time.Minute)
		mk(other.ID, "theirs", t0.Add(3*time.Minute), refreshTTL)
		if _, _, err := s.RotateRefreshToken(ctx, hash("a"), hash("a2"), t0.Add(refreshTTL), t0.Add(5*time.Minute), 0, store.SessionClient{UserAgent: "a2"}); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(10 * time.Minute)
		list := func() []string {
			t.Helper()
			rts, err := s.ListSessions(ctx, acc.ID, now, store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, rt := range rts {
				out = append(out, rt.FamilyID+"/"+rt.UserAgent)
			}
			return out
		}
		if got, want := list(), []string{a + "/a2", b + "/b"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("sessions %v, want %v", got, want)
		}
		wantErr(t, s.RevokeSession(ctx, other.ID, a, now, store.Audit{}), errs.ErrNotFound, "")
		wantErr(t, s.RevokeSession(ctx, acc.ID, ids.New(ids.Family), now, store.Audit{}), errs.ErrNotFound, "")
		if err := s.RevokeSession(ctx, acc.ID, a, now, store.Audit{}); err != nil {
			t.Fatal(err)
		}
		if got, want := list(), []string{b + "/b"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("sessions after revoking %s: %v, want %v", a, got, want)
		}
	})
}
