package store_test

// Tests added where mutation testing (make mutate, docs/TESTING.md) found a
// changed line that no test noticed.

import (
	"context"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// TestAPIKeyUseRecordedByAnother: when another request records the key's
// use between this one's read and its conditional write, this write changes
// nothing, and the key returned says what was read, not a use this request
// did not record.
func TestAPIKeyUseRecordedByAnother(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "race@example.com")
		k, err := s.CreateAPIKey(ctx, acc.ID, "race", "sk_test_race", hash("sk_test_race_secret"), t0, store.Audit{})
		if err != nil {
			t.Fatal(err)
		}
		now := t0.Add(time.Hour)
		other := now.Add(-time.Second) // the other request's use, fresh
		raced := false
		s.Client.APIKey.Use(func(next ent.Mutator) ent.Mutator {
			return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
				if !raced && m.Op().Is(ent.OpUpdate) {
					raced = true
					if err := s.Client.APIKey.UpdateOneID(k.ID).SetLastUsedAt(other).Exec(ctx); err != nil {
						return nil, err
					}
				}
				return next.Mutate(ctx, m)
			})
		})
		_, got, err := s.AccountByAPIKeyHash(ctx, hash("sk_test_race_secret"), now)
		if err != nil {
			t.Fatal(err)
		}
		if !raced {
			t.Fatal("the conditional write never ran: the race was not staged")
		}
		if got.LastUsedAt != nil {
			t.Errorf("returned last_used_at = %v, want nil as read (this request wrote nothing)", *got.LastUsedAt)
		}
		wantTime(t, "stored last_used_at", s.Client.APIKey.GetX(ctx, k.ID).LastUsedAt, other)
	})
}

// TestClaimIdempotency: an in-progress key whose last sign of life is older
// than staleBefore is taken over once, by one claimant; a fresh, completed
// or unknown key is not.
func TestClaimIdempotency(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rec, _, err := s.BeginIdempotency(ctx, "acct_claim", "order-claim", method, hash("req"), t0, t0.Add(idemTTL))
		if err != nil {
			t.Fatal(err)
		}
		claim := func(staleBefore, now time.Time) bool {
			t.Helper()
			ok, err := s.ClaimIdempotency(ctx, rec.ID, staleBefore, now)
			if err != nil {
				t.Fatalf("ClaimIdempotency: %v", err)
			}
			return ok
		}
		if claim(t0, t0.Add(time.Minute)) {
			t.Fatal("claimed a key whose last sign of life is exactly staleBefore")
		}
		if !claim(t0.Add(time.Second), t0.Add(2*time.Minute)) {
			t.Fatal("a stale key was not claimed")
		}
		if got, err := s.IdempotencyByID(ctx, rec.ID); err != nil || !got.UpdatedAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("after the claim: %+v, %v; want updated_at %v", got, err, t0.Add(2*time.Minute))
		}
		if claim(t0.Add(time.Second), t0.Add(3*time.Minute)) {
			t.Fatal("a second claimant won with the same view of staleness")
		}
		if err := s.CompleteIdempotency(ctx, rec.ID, 200, []byte(`{}`), t0.Add(4*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if claim(t0.Add(time.Hour), t0.Add(time.Hour)) {
			t.Fatal("claimed a completed key")
		}
		if ok, err := s.ClaimIdempotency(ctx, "idem_unknown", t0.Add(time.Hour), t0.Add(time.Hour)); err != nil || ok {
			t.Fatalf("ClaimIdempotency(unknown) = %v, %v", ok, err)
		}
	})
}

// TestConnLifetimeOnlyOnMySQL: a connection older than ConnMaxLifetime is
// closed when it is next taken from the pool on MySQL; on SQLite the
// lifetimes do not apply, and the connection is reused.
func TestConnLifetimeOnlyOnMySQL(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		s.ConfigurePool(store.PoolOptions{MaxOpenConns: 2, MaxIdleConns: 2, ConnMaxLifetime: time.Nanosecond})
		before := s.PoolStats().MaxLifetimeClosed
		for range 2 {
			if err := query(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		closed := s.PoolStats().MaxLifetimeClosed - before
		if s.Dialect() == dialect.SQLite && closed != 0 {
			t.Fatalf("SQLite closed %d connections for their age", closed)
		}
		if s.Dialect() == dialect.MySQL && closed == 0 {
			t.Fatal("MySQL reused a connection older than ConnMaxLifetime")
		}
	})
}

// TestReserveLoginAttemptRefusesARepeatedKey, wherever the repeat stands in
// the list.
func TestReserveLoginAttemptRefusesARepeatedKey(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		p := store.DefaultThrottlePolicy
		for _, keys := range [][]string{{"a", "a"}, {"a", "b", "a"}, {"b", "a", "c", "b"}} {
			limits := make([]store.ThrottleLimit, len(keys))
			for i, k := range keys {
				limits[i] = store.ThrottleLimit{Key: "email:" + k, Policy: p}
			}
			if _, err := s.ReserveLoginAttempt(context.Background(), t0, limits...); err == nil || !strings.Contains(err.Error(), "given twice") {
				t.Errorf("keys %v: %v, want a key given twice", keys, err)
			}
		}
	})
}

// TestHasPaid: a customer has paid a merchant once a payment between them
// exists, in that direction only.
func TestHasPaid(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer, other := ids.New(ids.Account), ids.New(ids.Account), ids.New(ids.Account)
		has := func(c, m string) bool {
			t.Helper()
			ok, err := s.HasPaid(ctx, c, m)
			if err != nil {
				t.Fatalf("HasPaid: %v", err)
			}
			return ok
		}
		if has(customer, merchant) {
			t.Fatal("HasPaid before any payment")
		}
		mustSave(t, s, newPayment(merchant, customer, t0), nil)
		if !has(customer, merchant) {
			t.Fatal("HasPaid = false after a payment")
		}
		if has(merchant, customer) || has(other, merchant) || has(customer, other) {
			t.Fatal("HasPaid = true for a pair without a payment")
		}
	})
}
