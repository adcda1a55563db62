package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/idempotencykey"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

func TestPurgeExpired(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := t0.Add(10 * 24 * time.Hour)
		acct := ids.New(ids.Account)

		// Idempotency keys: expired when expires_at <= now.
		idem := map[string]time.Time{
			"expired-long-ago": now.Add(-48 * time.Hour),
			"expires-now":      now,
			"live":             now.Add(time.Microsecond),
		}
		for key, exp := range idem {
			if _, _, err := s.BeginIdempotency(ctx, acct, key, method, hash("r"), exp.Add(-idemTTL), exp); err != nil {
				t.Fatal(err)
			}
		}

		// Refresh tokens: deleted once expired for more than a day.
		acc := mustAccount(t, s, "purge@example.com")
		tokens := map[string]time.Time{
			"expired-2d":     now.Add(-48 * time.Hour),
			"expired-1d":     now.Add(-24 * time.Hour),
			"expired-23h":    now.Add(-23 * time.Hour),
			"live":           now.Add(time.Hour),
			"revoked-but-ok": now.Add(time.Hour),
		}
		for h, exp := range tokens {
			if _, err := s.CreateRefreshToken(ctx, acc.ID, ids.New(ids.Family), hash(h), exp, exp.Add(-refreshTTL), store.SessionClient{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RevokeRefreshFamily(ctx, acc.ID, hash("revoked-but-ok"), now.Add(-48*time.Hour)); err != nil {
			t.Fatal(err)
		}

		// Throttles: deleted once idle for more than a day and not blocking.
		long := store.ThrottlePolicy{MaxFailures: 1, Window: time.Hour, BaseBlock: 72 * time.Hour, MaxBlock: 72 * time.Hour}
		for key, at := range map[string]time.Time{
			"idle-2d": now.Add(-48 * time.Hour),
			"idle-1d": now.Add(-24 * time.Hour),
			"recent":  now.Add(-time.Hour),
		} {
			if _, err := s.RecordLoginFailure(ctx, key, at, store.DefaultThrottlePolicy); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.RecordLoginFailure(ctx, "idle-but-blocked", now.Add(-48*time.Hour), long); err != nil {
			t.Fatal(err)
		}

		// Gateway events: deleted once received 30 days ago or more (Stripe
		// redelivers for 3 days, keeps events for resending for 30).
		events := map[string]time.Time{
			"evt_31d":    now.Add(-31 * 24 * time.Hour),
			"evt_30d":    now.Add(-30 * 24 * time.Hour),
			"evt_29d23h": now.Add(-30*24*time.Hour + time.Hour),
			"evt_now":    now,
		}
		for id, at := range events {
			if _, err := s.RecordGatewayEvent(ctx, id, "payment_intent.succeeded", "pay_x", at); err != nil {
				t.Fatal(err)
			}
		}

		got, err := s.PurgeExpired(ctx, now)
		if err != nil {
			t.Fatalf("PurgeExpired: %v", err)
		}
		if want := (store.PurgeResult{IdempotencyKeys: 2, RefreshTokens: 2, LoginThrottles: 2, GatewayEvents: 2}); got != want {
			t.Fatalf("PurgeExpired = %+v, want %+v", got, want)
		}
		var keys []string
		for _, r := range s.Client.IdempotencyKey.Query().AllX(ctx) {
			keys = append(keys, r.Key)
		}
		if fmt.Sprint(keys) != "[live]" {
			t.Errorf("idempotency keys left: %v", keys)
		}
		left := map[string]bool{}
		for _, r := range s.Client.RefreshToken.Query().AllX(ctx) {
			left[r.TokenHash] = true
		}
		for h := range tokens {
			if want := h != "expired-2d" && h != "expired-1d"; left[hash(h)] != want {
				t.Errorf("token %s left = %v, want %v", h, left[hash(h)], want)
			}
		}
		throttles := s.Client.LoginThrottle.Query().IDsX(ctx)
		if fmt.Sprint(slices.Sorted(slices.Values(throttles))) != "[idle-but-blocked recent]" {
			t.Errorf("throttles left: %v", throttles)
		}
		evs := s.Client.GatewayEvent.Query().IDsX(ctx)
		if fmt.Sprint(slices.Sorted(slices.Values(evs))) != "[evt_29d23h evt_now]" {
			t.Errorf("gateway events left: %v", evs)
		}
		// What is left is still recognised as a redelivery.
		if seen, err := s.GatewayEventSeen(ctx, "evt_29d23h"); err != nil || !seen {
			t.Errorf("GatewayEventSeen(evt_29d23h) = %v, %v after the purge", seen, err)
		}

		again, err := s.PurgeExpired(ctx, now)
		if err != nil || again != (store.PurgeResult{}) {
			t.Fatalf("second PurgeExpired = %+v, %v; want nothing", again, err)
		}
	})
}

func TestPurgeExpiredInBatches(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 2345 // more than two batches
		builders := make([]*ent.IdempotencyKeyCreate, n)
		for i := range builders {
			builders[i] = s.Client.IdempotencyKey.Create().
				SetID(ids.NewAt(ids.Idempotency, t0)).
				SetAccountID("acct_batch").
				SetKey(fmt.Sprint("k", i)).
				SetMethod(method).
				SetRequestHash(hash("r")).
				SetCreatedAt(t0).
				SetUpdatedAt(t0).
				SetExpiresAt(t0.Add(time.Hour))
		}
		for start := 0; start < n; start += 500 {
			s.Client.IdempotencyKey.CreateBulk(builders[start:min(start+500, n)]...).ExecX(ctx)
		}
		if _, _, err := s.BeginIdempotency(ctx, "acct_batch", "live", method, hash("r"), t0, t0.Add(48*time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := s.PurgeExpired(ctx, t0.Add(2*time.Hour))
		if err != nil || got.IdempotencyKeys != n {
			t.Fatalf("PurgeExpired = %+v, %v; want %d idempotency keys", got, err, n)
		}
		if left := s.Client.IdempotencyKey.Query().Where(idempotencykey.Key("live")).CountX(ctx); left != 1 {
			t.Fatalf("the live key was purged")
		}
	})
}
