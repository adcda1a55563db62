package activities

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

func TestPurgeExpiredRemovesOnlyExpiredRows(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
		acct, err := db.CreateAccount(ctx, store.NewAccount{Email: "a@example.com", PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", Role: account.RoleCustomer, DefaultCurrency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.BeginIdempotency(ctx, acct.ID, "old", "/x", strings.Repeat("a", 64), now.Add(-48*time.Hour), now.Add(-24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.BeginIdempotency(ctx, acct.ID, "live", "/x", strings.Repeat("a", 64), now, now.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		a := &Store{DB: db, Logger: slog.New(slog.DiscardHandler)}
		r, err := a.PurgeExpired(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if r.IdempotencyKeys != 1 {
			t.Fatalf("purged %+v, want exactly the one expired idempotency key", r)
		}
		n, err := db.Client.IdempotencyKey.Query().Count(ctx)
		if err != nil || n != 1 {
			t.Fatalf("idempotency keys left: %d %v", n, err)
		}
	})
}
