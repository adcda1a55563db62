package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// Two admins suspending each other at once: exactly one succeeds, so an
// active admin always remains (the admins' rows are locked on MySQL; SQLite
// serializes writers).
func TestSuspendAccountKeepsAnActiveAdmin(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mk := func(email string) string {
			a, err := s.CreateAccount(ctx, store.NewAccount{Email: email, PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", Role: account.RoleAdmin})
			if err != nil {
				t.Fatal(err)
			}
			return a.ID
		}
		a1, a2 := mk("a1@example.com"), mk("a2@example.com")
		var wg sync.WaitGroup
		errsSeen := make([]error, 2)
		for i, pair := range [][2]string{{a1, a2}, {a2, a1}} {
			wg.Go(func() {
				_, errsSeen[i] = s.SuspendAccount(ctx, pair[1], store.Suspension{Reason: "other", Audit: store.Audit{ActorID: pair[0], At: time.Now()}})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errsSeen {
			switch {
			case err == nil:
				ok++
			case errs.KindOf(err) != errs.KindFailedPrecondition:
				t.Fatalf("suspension failed otherwise: %v", err)
			}
		}
		n, err := s.Client.Account.Query().Where(account.RoleEQ(account.RoleAdmin), account.StatusEQ(account.StatusActive)).Count(ctx)
		if ok != 1 || err != nil || n != 1 {
			t.Fatalf("%d suspensions succeeded, %d active admins left (%v); want 1 and 1", ok, n, err)
		}
		_, err = s.SuspendAccount(ctx, ids.New(ids.Account), store.Suspension{Reason: "other", Audit: store.Audit{At: time.Now()}})
		wantErr(t, err, errs.ErrNotFound, "")
	})
}

// A suspension records its reason, note, author and time and signs the
// account out; a second one changes nothing; reactivation clears them.
func TestSuspendAndReactivateAccount(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := mustAccount(t, s, "suspend-me@example.com")
		if _, err := s.CreateRefreshToken(ctx, m.ID, ids.New(ids.Family), hash("s1"), t0.Add(refreshTTL), t0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Hour)
		got, err := s.SuspendAccount(ctx, m.ID, store.Suspension{Reason: "fraud", Note: "case 1", Audit: store.Audit{ActorID: "acct_admin", At: at}})
		if err != nil || got.Status != account.StatusDisabled || got.SuspensionReason != "fraud" || got.SuspensionNote != "case 1" ||
			got.SuspendedBy != "acct_admin" || got.SuspendedAt == nil || !got.SuspendedAt.Equal(at) {
			t.Fatalf("suspended %+v %v", got, err)
		}
		if rts, err := s.ListSessions(ctx, m.ID, t0, store.Page{Limit: 5}); err != nil || len(rts) != 0 {
			t.Fatalf("sessions after the suspension %v %v", rts, err)
		}
		again, err := s.SuspendAccount(ctx, m.ID, store.Suspension{Reason: "other", Note: "later", Audit: store.Audit{At: at.Add(time.Hour)}})
		if err != nil || again.SuspensionReason != "fraud" || !again.SuspendedAt.Equal(at) {
			t.Fatalf("second suspension %+v %v", again, err)
		}
		re, err := s.ReactivateAccount(ctx, m.ID, at.Add(2*time.Hour), store.Audit{})
		if err != nil || re.Status != account.StatusActive || re.SuspensionReason != "" || re.SuspensionNote != "" || re.SuspendedAt != nil || re.SuspendedBy != "" {
			t.Fatalf("reactivated %+v %v", re, err)
		}
		_, err = s.ReactivateAccount(ctx, ids.New(ids.Account), at, store.Audit{})
		wantErr(t, err, errs.ErrNotFound, "")
	})
}
