package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

func TestCreateAccount(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		before := time.Now().Add(-time.Second)
		acc, err := s.CreateAccount(ctx, store.NewAccount{
			Email:           "Ada.Lovelace@Example.COM",
			PasswordHash:    "hash-1",
			Role:            account.RoleCustomer,
			DisplayName:     "Ada",
			BusinessName:    "Engines Ltd",
			DefaultCurrency: "eur",
		})
		if err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		if !ids.Valid(ids.Account, acc.ID) {
			t.Errorf("id = %q, want an %s id", acc.ID, ids.Account)
		}
		if acc.Email != "ada.lovelace@example.com" || acc.Role != account.RoleCustomer ||
			acc.DisplayName != "Ada" || acc.BusinessName != "Engines Ltd" ||
			acc.DefaultCurrency != "EUR" || acc.Status != account.StatusActive {
			t.Errorf("created account = %+v", acc)
		}
		if acc.CreatedAt.Before(before) || !acc.UpdatedAt.Equal(acc.CreatedAt) {
			t.Errorf("created_at = %v, updated_at = %v", acc.CreatedAt, acc.UpdatedAt)
		}
		got, err := s.AccountByID(ctx, acc.ID)
		if err != nil {
			t.Fatalf("AccountByID: %v", err)
		}
		if got.Email != acc.Email || got.PasswordHash != "hash-1" || !got.CreatedAt.Equal(acc.CreatedAt) ||
			got.DefaultCurrency != "EUR" {
			t.Errorf("read back %+v, want %+v", got, acc)
		}

		plain, err := s.CreateAccount(ctx, store.NewAccount{Email: "b@example.com", PasswordHash: "h", Role: account.RoleMerchant})
		if err != nil {
			t.Fatal(err)
		}
		if plain.DefaultCurrency != "USD" || plain.DisplayName != "" {
			t.Errorf("defaults: currency %q, display name %q", plain.DefaultCurrency, plain.DisplayName)
		}
	})
}

func TestCreateAccountRejects(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mustAccount(t, s, "taken@example.com")
		tests := []struct {
			name      string
			in        store.NewAccount
			sentinel  error
			wantField string
		}{
			{"same email", store.NewAccount{Email: "taken@example.com", PasswordHash: "h", Role: account.RoleMerchant}, errs.ErrAlreadyExists, ""},
			{"same email, other case", store.NewAccount{Email: "TAKEN@Example.com", PasswordHash: "h", Role: account.RoleCustomer}, errs.ErrAlreadyExists, ""},
			{"unknown role", store.NewAccount{Email: "r@example.com", PasswordHash: "h", Role: "root"}, errs.ErrInvalidArgument, "role"},
			{"bad currency", store.NewAccount{Email: "c@example.com", PasswordHash: "h", Role: account.RoleMerchant, DefaultCurrency: "EURO"}, errs.ErrInvalidArgument, "default_currency"},
			{"empty email", store.NewAccount{PasswordHash: "h", Role: account.RoleMerchant}, errs.ErrInvalidArgument, "email"},
			{"long email", store.NewAccount{Email: strings.Repeat("a", 250) + "@x.io", PasswordHash: "h", Role: account.RoleMerchant}, errs.ErrInvalidArgument, "email"},
			{"no password", store.NewAccount{Email: "p@example.com", Role: account.RoleMerchant}, errs.ErrInvalidArgument, "password_hash"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.CreateAccount(ctx, tt.in)
				if tt.sentinel == errs.ErrAlreadyExists {
					wantErr(t, err, errs.ErrAlreadyExists, "an account with this email already exists")
					return
				}
				wantErr(t, err, tt.sentinel, "")
				var e *errs.Error
				if errors.As(err, &e); e.Field != tt.wantField {
					t.Errorf("field = %q, want %q", e.Field, tt.wantField)
				}
			})
		}
		if n := s.Client.Account.Query().CountX(ctx); n != 1 {
			t.Errorf("%d accounts exist, want 1", n)
		}
	})
}

func TestConcurrentRegistrationsOfOneEmail(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		results := concurrently(10, func(i int) error {
			email := "race@example.com"
			if i%2 == 1 {
				email = "RACE@example.com"
			}
			_, err := s.CreateAccount(ctx, store.NewAccount{Email: email, PasswordHash: "h", Role: account.RoleCustomer})
			return err
		})
		ok := 0
		for _, err := range results {
			if err == nil {
				ok++
				continue
			}
			wantErr(t, err, errs.ErrAlreadyExists, "an account with this email already exists")
		}
		if ok != 1 {
			t.Fatalf("%d registrations succeeded, want exactly 1", ok)
		}
	})
}

func TestAccountLookups(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "grace@example.com")
		mustAccount(t, s, "other@example.com")
		for _, email := range []string{"grace@example.com", "GRACE@EXAMPLE.COM", "Grace@Example.com"} {
			got, err := s.AccountByEmail(ctx, email)
			if err != nil {
				t.Fatalf("AccountByEmail(%q): %v", email, err)
			}
			if got.ID != acc.ID {
				t.Errorf("AccountByEmail(%q) = %s, want %s", email, got.ID, acc.ID)
			}
		}
		_, err := s.AccountByEmail(ctx, "nobody@example.com")
		wantErr(t, err, errs.ErrNotFound, "account not found")
		_, err = s.AccountByID(ctx, ids.New(ids.Account))
		wantErr(t, err, errs.ErrNotFound, "account not found")
		got, err := s.AccountByID(ctx, acc.ID)
		if err != nil || got.Email != "grace@example.com" {
			t.Fatalf("AccountByID = %v, %v", got, err)
		}
	})
}

func TestUpdateAccount(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "upd@example.com")
		t1 := t0.Add(time.Hour)

		got, err := s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{DisplayName: ptr("New Name")}, t1)
		if err != nil {
			t.Fatalf("UpdateAccount: %v", err)
		}
		if got.DisplayName != "New Name" || got.BusinessName != acc.BusinessName ||
			got.DefaultCurrency != "USD" || got.PasswordHash != acc.PasswordHash || !got.UpdatedAt.Equal(t1) {
			t.Errorf("after display name update: %+v", got)
		}

		got, err = s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{
			BusinessName: ptr("Shop"), DefaultCurrency: ptr("jpy"), DisplayName: ptr(""),
		}, t1)
		if err != nil {
			t.Fatalf("UpdateAccount: %v", err)
		}
		reread, err := s.AccountByID(ctx, acc.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []*ent.Account{got, reread} {
			if a.DisplayName != "" || a.BusinessName != "Shop" || a.DefaultCurrency != "JPY" {
				t.Errorf("after update: %+v", a)
			}
		}

		_, err = s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{DefaultCurrency: ptr("yen!")}, t1)
		wantErr(t, err, errs.ErrInvalidArgument, "")
		_, err = s.UpdateAccount(ctx, ids.New(ids.Account), store.AccountUpdate{DisplayName: ptr("x")}, t1)
		wantErr(t, err, errs.ErrNotFound, "account not found")
	})
}

func TestPasswordChangeRevokesSessions(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "pw@example.com")
		other := mustAccount(t, s, "bystander@example.com")
		exp := t0.Add(30 * 24 * time.Hour)
		for i, a := range []*ent.Account{acc, acc, other} {
			if _, err := s.CreateRefreshToken(ctx, a.ID, ids.New(ids.Family), hash(string(rune('a'+i))), exp, t0, store.SessionClient{}); err != nil {
				t.Fatal(err)
			}
		}

		// A profile change keeps the sessions.
		if _, err := s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{DisplayName: ptr("x")}, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RotateRefreshToken(ctx, hash("a"), hash("a2"), exp, t0.Add(2*time.Minute), 0, store.SessionClient{}); err != nil {
			t.Fatalf("rotation after a profile change: %v", err)
		}

		changed := t0.Add(3 * time.Minute)
		got, err := s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{PasswordHash: ptr("hash-2")}, changed)
		if err != nil {
			t.Fatal(err)
		}
		if got.PasswordHash != "hash-2" {
			t.Errorf("password hash = %q", got.PasswordHash)
		}
		for _, h := range []string{hash("a2"), hash("b")} {
			_, _, err := s.RotateRefreshToken(ctx, h, hash(h+"next"), exp, changed.Add(time.Minute), 0, store.SessionClient{})
			wantErr(t, err, errs.ErrUnauthenticated, "invalid or expired refresh token")
		}
		rt, err := s.Client.RefreshToken.Query().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rt {
			switch {
			case r.AccountID == other.ID && r.RevokedAt != nil:
				t.Errorf("the other account's token was revoked")
			case r.AccountID == acc.ID && (r.RevokedAt == nil || !r.RevokedAt.Equal(changed)):
				t.Errorf("token %s: revoked_at = %v, want %v", r.ID, r.RevokedAt, changed)
			}
		}
		if _, _, err := s.RotateRefreshToken(ctx, hash("c"), hash("c2"), exp, changed, 0, store.SessionClient{}); err != nil {
			t.Fatalf("the other account's session: %v", err)
		}
	})
}
