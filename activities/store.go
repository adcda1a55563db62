// Package activities holds the platform's Temporal activities, as methods on
// structs built once in cmd/paymentsd with their clients. Activities never
// import workflows.
package activities

import (
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/internal/config"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
)

// Store holds the activities that write to the database.
type Store struct {
	DB     *store.Store
	Logger *slog.Logger
	// ClosedAccountRetention is how long a closed account's name and
	// email are kept (PAYMENTS_CLOSED_ACCOUNT_RETENTION); the
	// configuration's default when zero.
	ClosedAccountRetention time.Duration
}

// PurgeResult counts the rows a purge removed.
type PurgeResult struct {
	IdempotencyKeys int
	RefreshTokens   int
	LoginThrottles  int
	GatewayEvents   int
	AccountTokens   int
	AccountNotices  int
}

// PurgeExpired deletes idempotency keys past their expiry, long-expired
// refresh tokens and idle login throttles. now comes from the workflow so the
// activity is deterministic about what it removes.
func (a *Store) PurgeExpired(ctx context.Context, now time.Time) (PurgeResult, error) {
	r, err := a.DB.PurgeExpired(ctx, now)
	if err != nil {
		return PurgeResult{}, err
	}
	a.Logger.InfoContext(ctx, "purged expired rows", "idempotency_keys", r.IdempotencyKeys, "refresh_tokens", r.RefreshTokens, "login_throttles", r.LoginThrottles, "gateway_events", r.GatewayEvents)
	return PurgeResult(r), nil
}

// AnonymizeClosedAccounts erases the name and email of every account
// closed longer than the retention period ago (as of now, the workflow's
// time), and returns how many.
func (a *Store) AnonymizeClosedAccounts(ctx context.Context, now time.Time) (int, error) {
	retention := a.ClosedAccountRetention
	if retention <= 0 {
		retention = config.DefaultClosedAccountRetention
	}
	n, err := a.DB.AnonymizeClosedAccounts(ctx, now.Add(-retention), now)
	if err != nil {
		return n, err
	}
	if n > 0 {
		a.Logger.InfoContext(ctx, "closed accounts anonymized", "accounts", n)
	}
	return n, nil
}

// SavePayment stores a payment's whole state and, atomically with it, the
// ledger journal of money that moved. It runs as a local activity: retries
// are harmless because the store ignores versions it has already seen.
func (a *Store) SavePayment(ctx context.Context, rec store.PaymentRecord, journal *store.Journal) error {
	_, err := a.DB.SavePayment(ctx, rec, journal)
	return refusedForGood(err)
}

// refusedForGood makes what the store refuses for good non-retryable: a
// constraint or validation (invalid argument), or a journal id posted
// before with other lines (already exists). Retrying cannot help, and the
// workflow must not pretend it was saved; anything else (the database
// unreachable, a deadlock) is retried.
func refusedForGood(err error) error {
	switch errs.KindOf(err) {
	case errs.KindInvalidArgument, errs.KindAlreadyExists:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeStoreInvalid, err)
	}
	return err
}

// RecordReconciliation records a disagreement with the gateway and the
// journals of the money it concerns, in one transaction.
func (a *Store) RecordReconciliation(ctx context.Context, c store.ReconciliationCase, journals []store.Journal) error {
	return refusedForGood(a.DB.RecordReconciliation(ctx, c, journals))
}

// LoadPayment returns a payment's recorded state.
func (a *Store) LoadPayment(ctx context.Context, id string) (store.PaymentRecord, error) {
	rec, err := a.DB.PaymentRecord(ctx, id)
	if errs.KindOf(err) == errs.KindNotFound {
		return rec, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeStoreInvalid, err)
	}
	return rec, err
}

// ErrTypeStoreInvalid is the application error type of writes the store
// refuses for good.
const ErrTypeStoreInvalid = "StoreInvalid"
