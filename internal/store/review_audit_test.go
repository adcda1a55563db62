package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// A reactivation and an API key's revocation each write their audit row
// with the change, once: doing either again changes nothing and writes
// nothing.
func TestReactivationAndKeyRevocationAreAuditedOnce(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rows := func(typ, target string) []string {
			t.Helper()
			evs, err := s.ListAuditEvents(ctx, store.AuditFilter{Type: typ, TargetID: target}, store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var actors []string
			for _, e := range evs {
				actors = append(actors, e.ActorID+" "+e.Detail["api_key_id"])
			}
			return actors
		}
		m := mustAccount(t, s, "audited-twice@example.com")
		at := t0.Add(time.Hour)
		if _, err := s.SuspendAccount(ctx, m.ID, store.Suspension{Reason: "fraud", Audit: store.Audit{ActorID: "acct_admin1", At: at}}); err != nil {
			t.Fatal(err)
		}
		// The suspension's row and letter are written with it.
		if got := rows(store.AuditSuspended, m.ID); len(got) != 1 || got[0] != "acct_admin1 " {
			t.Fatalf("suspension rows %q, want one by acct_admin1", got)
		}
		if n := undispatched(t, s, "suspended", m.ID); n != 1 {
			t.Fatalf("%d suspension notices, want 1", n)
		}
		// The reactivation that lifted it is the one audited (checked after
		// each call: a row by the second, an already active account's,
		// would be the wrong one).
		for i, admin := range []string{"acct_admin2", "acct_admin3"} {
			if _, err := s.ReactivateAccount(ctx, m.ID, at.Add(time.Duration(i+1)*time.Minute), store.Audit{ActorID: admin}); err != nil {
				t.Fatal(err)
			}
			if got := rows(store.AuditReactivated, m.ID); len(got) != 1 || got[0] != "acct_admin2 " {
				t.Fatalf("after reactivation %d: rows %q, want one by acct_admin2", i+1, got)
			}
		}

		k, err := s.CreateAPIKey(ctx, m.ID, "shop", "sk_a", hash("audited-key"), t0, store.Audit{ActorID: m.ID})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if _, err := s.RevokeAPIKey(ctx, m.ID, k.ID, at, store.Audit{ActorID: m.ID}); err != nil {
				t.Fatal(err)
			}
			if got := rows(store.AuditAPIKeyRevoked, m.ID); len(got) != 1 || got[0] != m.ID+" "+k.ID {
				t.Fatalf("after revocation %d: rows %q, want one naming %s", i+1, got, k.ID)
			}
		}
		if got := rows(store.AuditAPIKeyCreated, m.ID); len(got) != 1 || got[0] != m.ID+" "+k.ID {
			t.Fatalf("creation rows %q, want one naming %s", got, k.ID)
		}
	})
}

// TestPasswordChangeIsRecordedWithIt: UpdateAccount with a new password
// revokes every session (refresh token family) the account had before it,
// at the change's time, and writes the change's audit row and letter, one
// each.
func TestPasswordChangeIsRecordedWithIt(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := mustAccount(t, s, "new-password@example.com")
		session, err := s.CreateRefreshToken(ctx, m.ID, ids.New(ids.Family), hash("before-the-change"), t0.Add(refreshTTL), t0, store.SessionClient{})
		if err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Hour)
		if live, err := s.ListSessions(ctx, m.ID, at, store.Page{Limit: 10}); err != nil || len(live) != 1 {
			t.Fatalf("sessions before the change %v, %v; want the one", live, err)
		}
		hashed := "argon2id$new"
		_, err = s.UpdateAccount(ctx, m.ID, store.AccountUpdate{PasswordHash: &hashed, Records: store.Records{
			Audits:  []store.Audit{store.Audit{ActorID: m.ID, At: at}.Of(store.AuditPasswordChanged, m.ID, nil)},
			Notices: []store.Notice{{Kind: accountnotice.KindPasswordChanged, Recipient: m.Email, At: at}},
		}}, at)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Client.RefreshToken.Get(ctx, session.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantTime(t, "the session's revoked_at", got.RevokedAt, at)
		if live, err := s.ListSessions(ctx, m.ID, at, store.Page{Limit: 10}); err != nil || len(live) != 0 {
			t.Fatalf("sessions after the change %v, %v; want none", live, err)
		}
		evs, err := s.ListAuditEvents(ctx, store.AuditFilter{Type: store.AuditPasswordChanged, TargetID: m.ID}, store.Page{Limit: 10})
		if err != nil || len(evs) != 1 {
			t.Fatalf("password change rows %v, %v; want one", evs, err)
		}
		if n := undispatched(t, s, "password_changed", m.ID); n != 1 {
			t.Fatalf("%d password change notices, want 1", n)
		}
	})
}

// undispatched counts the account's notices of kind waiting to be sent.
func undispatched(t *testing.T, s *store.Store, kind, accountID string) int {
	t.Helper()
	ns, err := s.UndispatchedNotices(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range ns {
		if string(x.Kind) == kind && x.AccountID == accountID {
			n++
		}
	}
	return n
}
