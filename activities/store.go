// Package activities holds the platform's Temporal activities, as methods on
// structs built once in cmd/paymentsd with their clients. Activities never
// import workflows.
package activities

import (
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
)

// Store holds the activities that write to the database.
type Store struct {
	DB     *store.Store
	Logger *slog.Logger
}

// PurgeResult counts the rows a purge removed.
type PurgeResult struct {
	IdempotencyKeys int
	RefreshTokens   int
	LoginThrottles  int
}

// PurgeExpired deletes idempotency keys past their expiry, long-expired
// refresh tokens and idle login throttles. now comes from the workflow so the
// activity is deterministic about what it removes.
func (a *Store) PurgeExpired(ctx context.Context, now time.Time) (PurgeResult, error) {
	r, err := a.DB.PurgeExpired(ctx, now)
	if err != nil {
		return PurgeResult{}, err
	}
	a.Logger.InfoContext(ctx, "purged expired rows", "idempotency_keys", r.IdempotencyKeys, "refresh_tokens", r.RefreshTokens, "login_throttles", r.LoginThrottles)
	return PurgeResult(r), nil
}

// SavePayment stores a payment's whole state and, atomically with it, the
// ledger journal of money that moved. It runs as a local activity: retries
// are harmless because the store ignores versions it has already seen.
func (a *Store) SavePayment(ctx context.Context, rec store.PaymentRecord, journal *store.Journal) error {
	_, err := a.DB.SavePayment(ctx, rec, journal)
	if errs.KindOf(err) == errs.KindInvalidArgument {
		// The store refuses this state for good (a constraint): retrying
		// cannot help, and the workflow must not pretend it was saved.
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeStoreInvalid, err)
	}
	return err
}

// ErrTypeStoreInvalid is the application error type of writes the store
// refuses for good.
const ErrTypeStoreInvalid = "StoreInvalid"
