package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
)

// t0 has microseconds on purpose: both databases must keep them.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

// hash is how the callers of the store hash tokens and keys.
func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func mustAccount(t *testing.T, s *store.Store, email string) *ent.Account {
	t.Helper()
	acc, err := s.CreateAccount(context.Background(), store.NewAccount{
		Email:        email,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		Role:         account.RoleMerchant,
	})
	if err != nil {
		t.Fatalf("CreateAccount(%s): %v", email, err)
	}
	return acc
}

// wantErr checks that err is a domain error of the sentinel's kind and, when
// msg is not empty, that its message is msg.
func wantErr(t *testing.T, err, sentinel error, msg string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error = %v (%T), want kind %v", err, err, errs.KindOf(sentinel))
	}
	var e *errs.Error
	if msg != "" && (!errors.As(err, &e) || e.Message != msg) {
		t.Fatalf("error message = %q, want %q", err.Error(), msg)
	}
}

func wantTime(t *testing.T, what string, got *time.Time, want time.Time) {
	t.Helper()
	switch {
	case got == nil && !want.IsZero():
		t.Fatalf("%s = nil, want %v", what, want)
	case got != nil && want.IsZero():
		t.Fatalf("%s = %v, want nil", what, *got)
	case got != nil && !got.Equal(want):
		t.Fatalf("%s = %v, want %v", what, *got, want)
	}
}

// concurrently runs fn n times at once and returns the results in order.
func concurrently[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// olderThan reports whether c comes after prev in a list's newest-first
// order (created_at, then id, descending).
func olderThan(c, prev store.Cursor) bool {
	return c.CreatedAt.Before(prev.CreatedAt) || c.CreatedAt.Equal(prev.CreatedAt) && c.ID < prev.ID
}
