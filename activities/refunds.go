package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
)

// Types of the application errors by which the balance refuses a refund;
// the API maps them to Connect codes (the payment workflow's update errors
// use the same names).
const (
	ErrTypeFailedPrecondition = "FailedPrecondition"
	ErrTypeInvalidArgument    = "InvalidArgument"
	ErrTypeNotFound           = "NotFound"
)

// CreatedRefund is a refund as CreateRefund stored it, with what the
// gateway call needs of its payment.
type CreatedRefund struct {
	Refund store.RefundRecord
	// PaymentReference is the payment's intent at the gateway.
	PaymentReference string
}

// CreateRefund takes the refund's amount from the payment's balance and
// stores the refund, pending, in one transaction (store.CreateRefund). A
// refusal (no such payment, a payment that cannot be refunded, more than is
// left) is final: a non-retryable error of the matching type, whose message
// is for the caller. A refund stored by an earlier attempt (a retry after a
// lost answer) is returned as it stands.
func (a *Store) CreateRefund(ctx context.Context, rec store.RefundRecord) (CreatedRefund, error) {
	r, p, err := a.DB.CreateRefund(ctx, rec)
	if errs.KindOf(err) == errs.KindAlreadyExists {
		stored, serr := a.DB.RefundByID(ctx, rec.ID)
		if serr != nil {
			return CreatedRefund{}, serr
		}
		pay, perr := a.DB.PaymentByID(ctx, stored.PaymentID)
		if perr != nil {
			return CreatedRefund{}, perr
		}
		return CreatedRefund{Refund: store.RefundRecordOf(stored), PaymentReference: pay.GatewayReference}, nil
	}
	if err != nil {
		return CreatedRefund{}, refusal(err)
	}
	return CreatedRefund{Refund: store.RefundRecordOf(r), PaymentReference: p.GatewayReference}, nil
}

// refusal makes the balance's answers non-retryable, typed errors; anything
// else (the database down) is retried.
func refusal(err error) error {
	var e *errs.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Kind {
	case errs.KindFailedPrecondition:
		return temporal.NewNonRetryableApplicationError(e.Message, ErrTypeFailedPrecondition, nil)
	case errs.KindInvalidArgument:
		return temporal.NewNonRetryableApplicationError(e.Message, ErrTypeInvalidArgument, nil)
	case errs.KindNotFound:
		return temporal.NewNonRetryableApplicationError(e.Message, ErrTypeNotFound, nil)
	case errs.KindAlreadyExists:
		return temporal.NewNonRetryableApplicationError(e.Message, ErrTypeAlreadyExists, nil)
	}
	return err
}

// SaveRefund stores a refund's new state and the journal of the money it
// moved, in one transaction (store.SaveRefund). Local activity; retries
// are harmless (versions). A save the store refuses for good is not
// retried.
func (a *Store) SaveRefund(ctx context.Context, rec store.RefundRecord, journal *store.Journal) error {
	_, err := a.DB.SaveRefund(ctx, rec, journal)
	if errs.KindOf(err) == errs.KindFailedPrecondition {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeStoreInvalid, err)
	}
	return refusedForGood(err)
}

// LoadRefund returns a refund's stored state.
func (a *Store) LoadRefund(ctx context.Context, id string) (store.RefundRecord, error) {
	r, err := a.DB.RefundByID(ctx, id)
	if errs.KindOf(err) == errs.KindNotFound {
		return store.RefundRecord{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeStoreInvalid, err)
	}
	if err != nil {
		return store.RefundRecord{}, err
	}
	return store.RefundRecordOf(r), nil
}
