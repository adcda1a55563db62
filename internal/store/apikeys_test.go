package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

func TestCreateAPIKeyAndAuthenticate(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "keys@example.com")
		k, err := s.CreateAPIKey(ctx, acc.ID, "checkout server", "sk_test_ab12", hash("sk_test_ab12secret"), t0, store.Audit{})
		if err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
		if !ids.Valid(ids.APIKey, k.ID) || k.AccountID != acc.ID || k.Name != "checkout server" ||
			k.Prefix != "sk_test_ab12" || k.KeyHash != hash("sk_test_ab12secret") || !k.CreatedAt.Equal(t0) ||
			k.LastUsedAt != nil || k.RevokedAt != nil {
			t.Errorf("created %+v", k)
		}

		_, err = s.CreateAPIKey(ctx, ids.New(ids.Account), "x", "sk_x", hash("x"), t0, store.Audit{})
		wantErr(t, err, errs.ErrNotFound, "account not found")
		_, err = s.CreateAPIKey(ctx, acc.ID, "", "sk_x", hash("y"), t0, store.Audit{})
		wantErr(t, err, errs.ErrInvalidArgument, "")
		_, err = s.CreateAPIKey(ctx, acc.ID, "dup", "sk_x", hash("sk_test_ab12secret"), t0, store.Audit{})
		wantErr(t, err, errs.ErrAlreadyExists, "")

		// last_used_at is written on first use, then at most once a minute.
		steps := []struct {
			at, wantLastUsed time.Time
		}{
			{t0.Add(time.Second), t0.Add(time.Second)},
			{t0.Add(30 * time.Second), t0.Add(time.Second)},
			{t0.Add(60*time.Second + time.Second - time.Microsecond), t0.Add(time.Second)},
			{t0.Add(61 * time.Second), t0.Add(61 * time.Second)},
			{t0.Add(62 * time.Second), t0.Add(61 * time.Second)},
		}
		for _, st := range steps {
			gotAcc, gotKey, err := s.AccountByAPIKeyHash(ctx, hash("sk_test_ab12secret"), st.at)
			if err != nil {
				t.Fatalf("AccountByAPIKeyHash at %v: %v", st.at, err)
			}
			if gotAcc.ID != acc.ID || gotKey.ID != k.ID {
				t.Fatalf("authenticated as %s with %s, want %s with %s", gotAcc.ID, gotKey.ID, acc.ID, k.ID)
			}
			wantTime(t, fmt.Sprintf("returned last_used_at at %v", st.at), gotKey.LastUsedAt, st.wantLastUsed)
			stored := s.Client.APIKey.GetX(ctx, k.ID)
			wantTime(t, fmt.Sprintf("stored last_used_at at %v", st.at), stored.LastUsedAt, st.wantLastUsed)
		}

		_, _, err = s.AccountByAPIKeyHash(ctx, hash("unknown"), t0)
		wantErr(t, err, errs.ErrUnauthenticated, "invalid API key")
	})
}

func TestRevokeAPIKey(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "a@example.com")
		b := mustAccount(t, s, "b@example.com")
		ka, err := s.CreateAPIKey(ctx, a.ID, "a", "sk_a", hash("ka"), t0, store.Audit{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateAPIKey(ctx, b.ID, "b", "sk_b", hash("kb"), t0, store.Audit{}); err != nil {
			t.Fatal(err)
		}

		_, err = s.RevokeAPIKey(ctx, b.ID, ka.ID, t0.Add(time.Minute), store.Audit{})
		wantErr(t, err, errs.ErrNotFound, "API key not found")
		_, err = s.RevokeAPIKey(ctx, a.ID, ids.New(ids.APIKey), t0.Add(time.Minute), store.Audit{})
		wantErr(t, err, errs.ErrNotFound, "API key not found")
		if _, _, err := s.AccountByAPIKeyHash(ctx, hash("ka"), t0.Add(time.Minute)); err != nil {
			t.Fatalf("A's key after B's revoke attempt: %v", err)
		}

		revokedAt := t0.Add(time.Hour)
		got, err := s.RevokeAPIKey(ctx, a.ID, ka.ID, revokedAt, store.Audit{})
		if err != nil {
			t.Fatalf("RevokeAPIKey: %v", err)
		}
		wantTime(t, "revoked_at", got.RevokedAt, revokedAt)
		again, err := s.RevokeAPIKey(ctx, a.ID, ka.ID, revokedAt.Add(time.Hour), store.Audit{})
		if err != nil {
			t.Fatalf("second RevokeAPIKey: %v", err)
		}
		wantTime(t, "revoked_at after revoking again", again.RevokedAt, revokedAt)

		_, _, err = s.AccountByAPIKeyHash(ctx, hash("ka"), revokedAt.Add(time.Second))
		wantErr(t, err, errs.ErrUnauthenticated, "invalid API key")
		if _, _, err := s.AccountByAPIKeyHash(ctx, hash("kb"), revokedAt); err != nil {
			t.Fatalf("B's key after A's revocation: %v", err)
		}

		s.Client.Account.UpdateOneID(b.ID).SetStatus(account.StatusDisabled).ExecX(ctx)
		_, _, err = s.AccountByAPIKeyHash(ctx, hash("kb"), revokedAt)
		wantErr(t, err, errs.ErrUnauthenticated, "this account is disabled")
	})
}

func TestListAPIKeysPages(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "a@example.com")
		b := mustAccount(t, s, "b@example.com")
		var want []string // newest first
		for i := range 7 {
			at := t0.Add(time.Duration(i) * time.Second)
			k, err := s.CreateAPIKey(ctx, a.ID, fmt.Sprint("key ", i), "sk_a", hash(fmt.Sprint("a", i)), at, store.Audit{})
			if err != nil {
				t.Fatal(err)
			}
			want = append([]string{k.ID}, want...)
			// Another account's keys, interleaved, must never show up.
			if _, err := s.CreateAPIKey(ctx, b.ID, "b", "sk_b", hash(fmt.Sprint("b", i)), at, store.Audit{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.RevokeAPIKey(ctx, a.ID, want[1], t0.Add(time.Hour), store.Audit{}); err != nil {
			t.Fatal(err)
		}

		var pages [][]*ent.APIKey
		var after *store.Cursor
		for range 5 {
			page, err := s.ListAPIKeys(ctx, a.ID, store.Page{Limit: 3, After: after})
			if err != nil {
				t.Fatalf("ListAPIKeys(after %v): %v", after, err)
			}
			pages = append(pages, page)
			if len(page) < 3 {
				break
			}
			after = ptr(store.APIKeyCursor(page[len(page)-1]))
		}
		wantSizes := []int{3, 3, 1}
		if len(pages) != len(wantSizes) {
			t.Fatalf("got %d pages, want %d", len(pages), len(wantSizes))
		}
		var got []string
		for i, p := range pages {
			if len(p) != wantSizes[i] {
				t.Errorf("page %d has %d keys, want %d", i, len(p), wantSizes[i])
			}
			for _, k := range p {
				if k.AccountID != a.ID {
					t.Errorf("listed key %s of account %s", k.ID, k.AccountID)
				}
				got = append(got, k.ID)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("listed %v, want newest first %v", got, want)
		}
		if pages[0][1].RevokedAt == nil {
			t.Errorf("revoked keys are listed with their revoked_at")
		}

		page, err := s.ListAPIKeys(ctx, a.ID, store.Page{Limit: 100})
		if err != nil || len(page) != 7 {
			t.Fatalf("one big page: %d keys, %v", len(page), err)
		}
		page, err = s.ListAPIKeys(ctx, a.ID, store.Page{Limit: 3, After: ptr(store.APIKeyCursor(page[6]))})
		if err != nil || len(page) != 0 {
			t.Fatalf("after the last key: %d keys, %v", len(page), err)
		}
		_, err = s.ListAPIKeys(ctx, a.ID, store.Page{})
		wantErr(t, err, errs.ErrInvalidArgument, "")
	})
}
