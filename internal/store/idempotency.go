package store

import (
	"context"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/idempotencykey"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
)

// beginAttempts bounds the insert/read/replace loop of BeginIdempotency. Each
// extra round needs another client to delete the row we just saw (abandon or
// expiry) at exactly the wrong moment, so a few rounds always suffice.
const beginAttempts = 5

// BeginIdempotency claims an Idempotency-Key of an account for a request.
//
// fresh is true when this call created the record (in_progress): the caller
// runs the request and then completes or abandons it. fresh is false when a
// live record exists: the caller compares its method and request hash with
// its own and replays the stored response, waits for it to complete, or
// refuses a different request. An expired record is replaced. The unique
// (account_id, key) index decides races, so of any number of concurrent calls
// exactly one gets fresh = true.
func (s *Store) BeginIdempotency(ctx context.Context, accountID, key, method, requestHash string, now, expiresAt time.Time) (rec *ent.IdempotencyKey, fresh bool, err error) {
	now, expiresAt = utc(now), utc(expiresAt)
	for range beginAttempts {
		rec, err = s.Client.IdempotencyKey.Create().
			SetID(ids.NewAt(ids.Idempotency, now)).
			SetAccountID(accountID).
			SetKey(key).
			SetMethod(method).
			SetRequestHash(requestHash).
			SetState(idempotencykey.StateInProgress).
			SetResponseCode(0).
			SetCreatedAt(now).
			SetUpdatedAt(now).
			SetExpiresAt(expiresAt).
			Save(ctx)
		switch {
		case err == nil:
			return rec, true, nil
		case ent.IsValidationError(err):
			return nil, false, invalid(err)
		case isDeadlock(err):
			// MySQL chose this insert as the victim of a deadlock with a
			// concurrent caller replacing the expired row (its gap lock):
			// the insert was rolled back whole; try again.
			continue
		case !isUniqueViolation(err):
			return nil, false, fmt.Errorf("create idempotency key: %w", err)
		}

		existing, err := s.Client.IdempotencyKey.Query().
			Where(idempotencykey.AccountID(accountID), idempotencykey.Key(key)).
			Only(ctx)
		switch {
		case ent.IsNotFound(err):
			continue // abandoned or purged meanwhile: try to claim it again
		case err != nil:
			return nil, false, fmt.Errorf("read idempotency key: %w", err)
		case now.Before(existing.ExpiresAt):
			return existing, false, nil
		}
		// Expired: delete exactly the row we saw (a concurrent caller may
		// already have replaced it with a live one) and claim the key again.
		if _, err := s.Client.IdempotencyKey.Delete().
			Where(idempotencykey.ID(existing.ID)).
			Exec(ctx); err != nil && !isDeadlock(err) {
			return nil, false, fmt.Errorf("replace expired idempotency key: %w", err)
		}
	}
	return nil, false, errs.Aborted("the idempotency key is contended; retry the request")
}

// CompleteIdempotency stores the outcome of the request that claimed the
// record, for replay: responseCode 0 with the response, or a Connect error
// code with the error. Only an in_progress record can complete, so a late
// duplicate of the request can never overwrite the first outcome.
func (s *Store) CompleteIdempotency(ctx context.Context, id string, responseCode int, responseBody []byte, now time.Time) error {
	up := s.Client.IdempotencyKey.Update().
		Where(idempotencykey.ID(id), idempotencykey.StateEQ(idempotencykey.StateInProgress)).
		SetState(idempotencykey.StateCompleted).
		SetResponseCode(responseCode).
		SetUpdatedAt(utc(now))
	if responseBody == nil {
		up.ClearResponseBody()
	} else {
		up.SetResponseBody(responseBody)
	}
	n, err := up.Save(ctx)
	switch {
	case ent.IsValidationError(err):
		return invalid(err)
	case err != nil:
		return fmt.Errorf("complete idempotency key: %w", err)
	case n == 0:
		return s.notInProgress(ctx, id)
	}
	return nil
}

// AbandonIdempotency deletes an in_progress record whose request failed in a
// way worth retrying (it did nothing), so the client may retry with the same
// key. A completed record stays: its outcome is what a retry must see.
func (s *Store) AbandonIdempotency(ctx context.Context, id string) error {
	n, err := s.Client.IdempotencyKey.Delete().
		Where(idempotencykey.ID(id), idempotencykey.StateEQ(idempotencykey.StateInProgress)).
		Exec(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("abandon idempotency key: %w", err)
	case n == 0:
		return s.notInProgress(ctx, id)
	}
	return nil
}

// notInProgress explains why a record could not leave in_progress.
func (s *Store) notInProgress(ctx context.Context, id string) error {
	exists, err := s.Client.IdempotencyKey.Query().Where(idempotencykey.ID(id)).Exist(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("read idempotency key: %w", err)
	case !exists:
		return errs.NotFound("idempotency key")
	}
	return errs.FailedPrecondition("the idempotency key is already completed")
}

// IdempotencyByID reads a record again, for a caller waiting for another
// request with the same key to complete.
func (s *Store) IdempotencyByID(ctx context.Context, id string) (*ent.IdempotencyKey, error) {
	rec, err := s.Client.IdempotencyKey.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "idempotency key")
	}
	return rec, nil
}

// ClaimIdempotency takes over an in-progress key whose holder went quiet
// (its last sign of life is older than staleBefore), for instance after a
// crash between the first request's side effects and its completion. Exactly
// one of concurrent claimants wins (a conditional update on updated_at); the
// winner re-runs the request with the key's original seed, which handlers
// make reach the same objects again.
func (s *Store) ClaimIdempotency(ctx context.Context, id string, staleBefore, now time.Time) (bool, error) {
	n, err := s.Client.IdempotencyKey.Update().
		Where(idempotencykey.ID(id), idempotencykey.StateEQ(idempotencykey.StateInProgress),
			idempotencykey.UpdatedAtLT(utc(staleBefore))).
		SetUpdatedAt(utc(now)).
		Save(ctx)
	if err != nil {
		return false, fmt.Errorf("claim idempotency key: %w", err)
	}
	return n == 1, nil
}
