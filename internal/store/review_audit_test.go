package store_test

import (
	"context"
	"testing"
	"time"

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
		for i := range 2 {
			if _, err := s.ReactivateAccount(ctx, m.ID, at.Add(time.Duration(i+1)*time.Minute), store.Audit{ActorID: "acct_admin2"}); err != nil {
				t.Fatal(err)
			}
		}
		if got := rows(store.AuditReactivated, m.ID); len(got) != 1 || got[0] != "acct_admin2 " {
			t.Fatalf("reactivation rows %q, want one by acct_admin2", got)
		}

		k, err := s.CreateAPIKey(ctx, m.ID, "shop", "sk_a", hash("audited-key"), t0, store.Audit{ActorID: m.ID})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := s.RevokeAPIKey(ctx, m.ID, k.ID, at, store.Audit{ActorID: m.ID}); err != nil {
				t.Fatal(err)
			}
		}
		if got := rows(store.AuditAPIKeyRevoked, m.ID); len(got) != 1 || got[0] != m.ID+" "+k.ID {
			t.Fatalf("revocation rows %q, want one naming %s", got, k.ID)
		}
		if got := rows(store.AuditAPIKeyCreated, m.ID); len(got) != 1 || got[0] != m.ID+" "+k.ID {
			t.Fatalf("creation rows %q, want one naming %s", got, k.ID)
		}
	})
}
