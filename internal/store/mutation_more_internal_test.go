package store

// More tests of unexported code that mutation testing (make mutate,
// docs/TESTING.md) found unchecked.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/ent/refreshtoken"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
)

// TestIsScheme pins the edges of each character class of a URL scheme.
func TestIsScheme(t *testing.T) {
	for s, want := range map[string]bool{
		"": false, "a": true, "z": true, "A": true, "Z": true, "mysql": true, "SQLite": true,
		"a0": true, "a9": true, "a+b": true, "a-b": true, "a.b": true, "x1+y-z.w": true,
		"0a": false, "9": false, "+a": false, "-a": false, ".a": false,
		"`": false, "{": false, "@": false, "[": false, // just outside a-z and A-Z
		"a/": false, "a:": false, // just outside 0-9
		"a*": false, "a,": false, "a b": false, "é": false,
	} {
		if got := isScheme(s); got != want {
			t.Errorf("isScheme(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestValidateJournalLengths: a journal id of 100 characters and an account
// of 120 are accepted, one more is refused.
func TestValidateJournalLengths(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mk := func(id, acct string) Journal {
		return Journal{ID: id, Currency: "USD", At: at, Lines: []JournalLine{
			{Account: acct, Direction: ledgerentry.DirectionDebit, Amount: 5},
			{Account: "merchant:m/available", Direction: ledgerentry.DirectionCredit, Amount: 5},
		}}
	}
	if err := validateJournal(mk(strings.Repeat("j", 100), strings.Repeat("a", 120))); err != nil {
		t.Fatalf("the longest id and account: %v", err)
	}
	if err := validateJournal(mk(strings.Repeat("j", 101), "a")); !errors.Is(err, errs.ErrInvalidArgument) || !strings.Contains(err.Error(), "1 to 100") {
		t.Fatalf("an id of 101 characters: %v", err)
	}
	if err := validateJournal(mk("j", strings.Repeat("a", 121))); !errors.Is(err, errs.ErrInvalidArgument) || !strings.Contains(err.Error(), "1 to 120") {
		t.Fatalf("an account of 121 characters: %v", err)
	}
}

// raceRotation runs between with the store, once, right after
// RotateRefreshToken has read the token it rotates: what a concurrent call
// would do in that window.
func raceRotation(t *testing.T, s *Store, between func(ctx context.Context)) {
	t.Helper()
	var done atomic.Bool
	s.Client.RefreshToken.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			v, err := next.Query(ctx, q)
			// Not sync.Once: between queries too, and Once.Do would wait
			// for itself.
			if done.CompareAndSwap(false, true) {
				between(ctx)
			}
			return v, err
		})
	}))
}

// TestRotationLostToAConcurrentRotation: of two rotations of one token, the
// one that loses the conditional update treats it as reuse: the whole family
// is revoked, the winner's new token with it. A token revoked (not rotated)
// in the window is only refused, as invalid.
func TestRotationLostToAConcurrentRotation(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	exp := now.Add(24 * time.Hour)
	setup := func(t *testing.T) (*Store, string) {
		s := openTestSQLite(t)
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		acc, err := s.CreateAccount(ctx, NewAccount{Email: "race@example.com", PasswordHash: "h", Role: account.RoleCustomer})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateRefreshToken(ctx, acc.ID, ids.New(ids.Family), tokenHash("old"), exp, now, SessionClient{}); err != nil {
			t.Fatal(err)
		}
		return s, acc.ID
	}

	t.Run("rotated meanwhile", func(t *testing.T) {
		s, _ := setup(t)
		var winErr error
		raceRotation(t, s, func(ctx context.Context) {
			_, _, winErr = s.RotateRefreshToken(ctx, tokenHash("old"), tokenHash("winner"), exp, now, 0, SessionClient{})
		})
		_, _, err := s.RotateRefreshToken(ctx, tokenHash("old"), tokenHash("loser"), exp, now, 0, SessionClient{})
		if winErr != nil {
			t.Fatalf("the winning rotation: %v", winErr)
		}
		if !errors.Is(err, errs.ErrUnauthenticated) || !strings.Contains(err.Error(), msgReusedRefresh) {
			t.Fatalf("the losing rotation = %v, want %q", err, msgReusedRefresh)
		}
		won, err := s.Client.RefreshToken.Query().Where(refreshtoken.TokenHash(tokenHash("winner"))).Only(ctx)
		if err != nil || won.RevokedAt == nil {
			t.Fatalf("the winner's token after the reuse: %+v, %v; want revoked", won, err)
		}
	})

	t.Run("revoked meanwhile", func(t *testing.T) {
		s, accountID := setup(t)
		var revErr error
		raceRotation(t, s, func(ctx context.Context) {
			revErr = s.RevokeAllRefreshTokens(ctx, accountID, now)
		})
		_, _, err := s.RotateRefreshToken(ctx, tokenHash("old"), tokenHash("late"), exp, now, 0, SessionClient{})
		if revErr != nil {
			t.Fatal(revErr)
		}
		if !errors.Is(err, errs.ErrUnauthenticated) || !strings.Contains(err.Error(), msgInvalidRefresh) {
			t.Fatalf("rotation of a token revoked meanwhile = %v, want %q", err, msgInvalidRefresh)
		}
	})

	t.Run("deleted meanwhile", func(t *testing.T) {
		s, _ := setup(t)
		raceRotation(t, s, func(ctx context.Context) {
			if _, err := s.Client.RefreshToken.Delete().Exec(ctx); err != nil {
				t.Error(err)
			}
		})
		_, _, err := s.RotateRefreshToken(ctx, tokenHash("old"), tokenHash("late"), exp, now, 0, SessionClient{})
		if !errors.Is(err, errs.ErrUnauthenticated) || !strings.Contains(err.Error(), msgInvalidRefresh) {
			t.Fatalf("rotation of a token deleted meanwhile = %v, want %q", err, msgInvalidRefresh)
		}
	})
}

// tokenHash hashes a refresh token as the callers of the store do.
func tokenHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
