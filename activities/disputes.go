package activities

import (
	"context"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
)

// ErrTypeAlreadyExists marks a dispute the payment refuses because another
// one is open on it.
const ErrTypeAlreadyExists = "AlreadyExists"

// CreatedDispute is a dispute as CreateDispute stored it, with what the
// gateway calls of its workflow need of its payment.
type CreatedDispute struct {
	Dispute store.DisputeRecord
	// PaymentReference is the payment's intent at the gateway.
	PaymentReference string
}

// OpenDisputeRequest is what CreateDispute stores, and who opens it.
type OpenDisputeRequest struct {
	Dispute store.DisputeRecord
	// OpenerID is the account that opens it ("" for the network).
	OpenerID string
}

// CreateDispute takes the dispute's amount from the payment's balance and
// stores the dispute, in one transaction (store.CreateDispute). A refusal
// (no such payment or not the opener's, a payment that cannot be disputed,
// a dispute open already, more than is left) is final: a non-retryable
// error of the matching type, whose message is for the caller. A dispute
// stored by an earlier attempt (a retry after a lost answer) is returned
// as it stands.
func (a *Store) CreateDispute(ctx context.Context, r OpenDisputeRequest) (CreatedDispute, error) {
	d, err := a.DB.CreateDispute(ctx, r.Dispute, r.OpenerID)
	if errs.KindOf(err) == errs.KindAlreadyExists {
		stored, serr := a.DB.DisputeByID(ctx, r.Dispute.ID)
		switch {
		case serr == nil:
			d, err = stored, nil
		case errs.KindOf(serr) == errs.KindNotFound:
			// Not ours: another dispute is open on the payment.
			return CreatedDispute{}, refusal(err)
		default:
			return CreatedDispute{}, serr
		}
	}
	if err != nil {
		return CreatedDispute{}, refusal(err)
	}
	pay, err := a.DB.PaymentByID(ctx, d.PaymentID)
	if err != nil {
		return CreatedDispute{}, err
	}
	return CreatedDispute{Dispute: store.DisputeRecordOf(d), PaymentReference: pay.GatewayReference}, nil
}

// SaveDispute stores a dispute's new state and the journal of the money it
// moved, in one transaction (store.SaveDispute). Local activity; retries
// are harmless (versions). A save the store refuses for good is not
// retried.
func (a *Store) SaveDispute(ctx context.Context, rec store.DisputeRecord, journal *store.Journal) error {
	_, err := a.DB.SaveDispute(ctx, rec, journal)
	if errs.KindOf(err) == errs.KindFailedPrecondition {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeStoreInvalid, err)
	}
	return refusedForGood(err)
}
