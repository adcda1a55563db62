package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/money"
)

// A payment's refundable balance is amount_received minus amount_refunded
// (refunds that have not failed or been canceled) minus amount_disputed. It
// outlives the payment's workflow by months, and refunds (and disputes) of
// one payment may be asked for at the same moment, so it has one writer: the
// database. CreateRefund takes a refund's amount from it with a conditional
// UPDATE in the same transaction that inserts the refund, and SaveRefund
// gives it back in the transaction that records the refund as failed or
// canceled. Nothing else changes those two columns (SavePayment leaves them
// alone), and a CHECK constraint holds the sum to amount_received whatever
// code runs.

// RefundRecord is a refund's whole state as its workflow sees it.
type RefundRecord struct {
	ID, PaymentID, MerchantID, CustomerID string
	// Amount is positive, in minor units of Currency (the payment's).
	Amount   int64
	Currency string
	Status   refund.Status
	Reason   refund.Reason
	// FailureReason is the gateway's code when Status is failed.
	FailureReason                         string
	Gateway, GatewayReference, WorkflowID string
	Metadata                              map[string]string
	// NeedsAttention is set, with AttentionReason, while the refund's
	// outcome is unknown and its step is retried on a timer.
	NeedsAttention  bool
	AttentionReason string
	// Version orders the saves: the API's insert is 1, each save of the
	// workflow one more; only a higher version replaces the stored row.
	Version              int64
	CreatedAt, UpdatedAt time.Time
}

// Holds reports whether a refund in status st holds its amount of the
// payment's balance: pending and succeeded refunds do, failed and canceled
// ones gave it back.
func Holds(st refund.Status) bool {
	return st == refund.StatusPending || st == refund.StatusSucceeded
}

// Refundable is what is left of a payment's balance to refund.
func Refundable(p *ent.Payment) int64 {
	return p.AmountReceived - p.AmountRefunded - p.AmountDisputed
}

// CreateRefund takes rec.Amount (0: everything still refundable) from the
// payment's refundable balance and inserts the refund, pending at version 1,
// in one transaction, and returns it with the payment as it stands after.
// Refused, with nothing written:
//   - NotFound: no payment rec.PaymentID, or it is not rec.MerchantID's (when
//     MerchantID is set; admins leave it empty);
//   - FailedPrecondition: the payment has not succeeded (the message says
//     what to do instead), or less is refundable than asked, or nothing; the
//     message names what is still refundable;
//   - InvalidArgument: a currency other than the payment's, a negative
//     amount.
//
// The payment row is locked first (SELECT ... FOR UPDATE on MySQL; SQLite's
// transaction holds the write lock from BEGIN IMMEDIATE), so concurrent
// refunds of one payment take their amounts one after the other; the
// UPDATE's own condition (and the CHECK constraint behind it) would refuse an
// over-refund even without the lock.
func (s *Store) CreateRefund(ctx context.Context, rec RefundRecord) (*ent.Refund, *ent.Payment, error) {
	if rec.Amount < 0 {
		return nil, nil, errs.InvalidArgument("amount", "amount must not be negative")
	}
	var created *ent.Refund
	var after *ent.Payment
	err := s.ledgerTx(ctx, func(tx *ent.Tx) error {
		q := tx.Payment.Query().Where(payment.ID(rec.PaymentID))
		if s.dialect == dialect.MySQL {
			// SQLite has no row locks and needs none: the immediate
			// transaction holds the database's write lock.
			q = q.ForUpdate()
		}
		p, err := q.Only(ctx)
		switch {
		case ent.IsNotFound(err):
			return errs.NotFound("payment")
		case err != nil:
			return err
		case rec.MerchantID != "" && p.MerchantID != rec.MerchantID:
			return errs.NotFound("payment")
		case rec.Currency != "" && !strings.EqualFold(rec.Currency, p.Currency):
			return errs.InvalidArgument("currency", "the payment is in %s, not %s: a refund is in the payment's currency",
				p.Currency, strings.ToUpper(rec.Currency))
		}
		// A refund stored by an earlier attempt (a retry whose first answer
		// was lost) is AlreadyExists, whatever the balance says now.
		if n, err := tx.Refund.Query().Where(refund.ID(rec.ID)).Count(ctx); err != nil || n > 0 {
			if err != nil {
				return err
			}
			return errs.AlreadyExists("refund %s exists already", rec.ID)
		}
		amount := rec.Amount
		if amount == 0 {
			amount = Refundable(p)
		}
		if err := CheckRefundable(p, amount); err != nil {
			return err
		}
		n, err := tx.Payment.Update().
			Where(payment.ID(p.ID), payment.StatusEQ(payment.StatusSucceeded), payment.OpenDisputeID(""),
				refundableAtLeast(amount)).
			AddAmountRefunded(amount).
			Save(ctx)
		switch {
		case err != nil:
			return err
		case n != 1:
			// Only without the lock (a bug): the balance moved meanwhile.
			return errs.Aborted("the payment's balance changed meanwhile; retry")
		}
		r := tx.Refund.Create().
			SetID(rec.ID).SetPaymentID(p.ID).SetMerchantID(p.MerchantID).SetCustomerID(p.CustomerID).
			SetAmount(amount).SetCurrency(p.Currency).SetStatus(refund.StatusPending).
			SetReason(reasonOr(rec.Reason)).SetGateway(p.Gateway).SetWorkflowID(rec.WorkflowID).
			SetMetadata(metadataOr(rec.Metadata)).SetVersion(1).
			SetTimeline(refundSteps(nil, nil, RefundRecord{ID: rec.ID, PaymentID: p.ID, Amount: amount, Currency: p.Currency, CreatedAt: utc(rec.CreatedAt)})).
			SetCreatedAt(utc(rec.CreatedAt)).SetUpdatedAt(utc(rec.CreatedAt))
		if created, err = r.Save(ctx); err != nil {
			return err
		}
		if err := recordEvents(ctx, tx, refundEvents(created, 0)); err != nil {
			return err
		}
		if err := recordMovement(ctx, tx, refundMovement(created, "")); err != nil {
			return err
		}
		after, err = tx.Payment.Get(ctx, p.ID)
		return err
	})
	if err != nil {
		return nil, nil, wrap(refundErr(err), "create refund of payment "+rec.PaymentID)
	}
	return created, after, nil
}

// CheckRefundable refuses a refund of amount (0: what is left) that the
// payment's state rules out, saying why and what to do instead: a payment
// that received no money, one authorized and not captured, nothing or less
// left than asked (the message names what is left). The API asks it first
// for a quick answer; CreateRefund asks it again with the row locked.
func CheckRefundable(p *ent.Payment, amount int64) error {
	switch p.Status {
	case payment.StatusSucceeded:
	case payment.StatusRequiresCapture:
		return errs.FailedPrecondition("payment %s is authorized and not captured: cancel the payment instead of refunding it", p.ID)
	case payment.StatusProcessing, payment.StatusRequiresAction:
		return errs.FailedPrecondition("payment %s is still %s: only a succeeded payment can be refunded", p.ID, p.Status)
	default:
		return errs.FailedPrecondition("payment %s is %s: it received no money to refund", p.ID, p.Status)
	}
	if p.OpenDisputeID != "" {
		return errs.FailedPrecondition("payment %s has an open dispute, %s: it cannot be refunded until the dispute is closed",
			p.ID, p.OpenDisputeID)
	}
	left := Refundable(p)
	if left <= 0 {
		return errs.FailedPrecondition("payment %s is refunded in full already: nothing is left to refund", p.ID)
	}
	if amount > left {
		return errs.FailedPrecondition("payment %s has %s left to refund (%d in minor units); %d asked",
			p.ID, FormatAmount(left, p.Currency), left, amount)
	}
	return nil
}

// refundableAtLeast is the UPDATE's guard: at least amount is left.
func refundableAtLeast(amount int64) predicate.Payment {
	return predicate.Payment(func(s *sql.Selector) {
		s.Where(sql.ExprP(fmt.Sprintf("%s - %s - %s >= ?",
			s.C(payment.FieldAmountReceived), s.C(payment.FieldAmountRefunded), s.C(payment.FieldAmountDisputed)), amount))
	})
}

// FormatAmount writes an amount for a person ("12.50 USD").
func FormatAmount(amount int64, code string) string {
	if c, ok := money.Lookup(code); ok {
		return money.Format(amount, c)
	}
	return fmt.Sprintf("%d %s", amount, code)
}

func reasonOr(r refund.Reason) refund.Reason {
	if r == "" {
		return refund.ReasonUnspecified
	}
	return r
}

func metadataOr(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// SaveRefund stores a refund's new state, from its workflow, and posts the
// journal of the money it moved, in one transaction. Only a higher version
// than the stored one replaces the row; an equal or older one (a retried
// local activity) changes nothing and returns the stored row, and its
// journal, idempotent, is posted again as a no-op.
//
// A refund that stops holding its amount (pending or succeeded to failed or
// canceled) gives it back to the payment's balance in the same transaction,
// once: only the save that makes that move does. A failed or canceled
// refund is final: a save that would move it on is refused
// (FailedPrecondition), as is one that changes what never changes (payment,
// amount, currency).
func (s *Store) SaveRefund(ctx context.Context, rec RefundRecord, journal *Journal) (*ent.Refund, error) {
	var j Journal
	if journal != nil {
		j = normalizeJournal(*journal)
		if j.PaymentID == "" {
			j.PaymentID = rec.PaymentID
		}
		if j.PaymentID != rec.PaymentID {
			return nil, errs.InvalidArgument("journal.payment_id",
				"journal %s concerns payment %s, not %s", j.ID, j.PaymentID, rec.PaymentID)
		}
		if err := validateJournal(j); err != nil {
			return nil, err
		}
	}
	var saved *ent.Refund
	err := s.ledgerTx(ctx, func(tx *ent.Tx) error {
		q := tx.Refund.Query().Where(refund.ID(rec.ID))
		if s.dialect == dialect.MySQL {
			q = q.ForUpdate()
		}
		old, err := q.Only(ctx)
		switch {
		case ent.IsNotFound(err):
			return errs.NotFound("refund")
		case err != nil:
			return err
		case old.PaymentID != rec.PaymentID || old.Amount != rec.Amount || !strings.EqualFold(old.Currency, rec.Currency):
			return errs.InvalidArgument("refund", "refund %s is %d %s of payment %s, not %d %s of %s",
				old.ID, old.Amount, old.Currency, old.PaymentID, rec.Amount, rec.Currency, rec.PaymentID)
		}
		saved = old
		if rec.Version > old.Version {
			if !Holds(old.Status) && rec.Status != old.Status {
				return errs.FailedPrecondition("refund %s is %s: it cannot become %s", old.ID, old.Status, rec.Status)
			}
			up := tx.Refund.UpdateOneID(old.ID).Where(refund.VersionLT(rec.Version)).
				SetStatus(rec.Status).SetFailureReason(rec.FailureReason).
				SetGatewayReference(rec.GatewayReference).
				SetNeedsAttention(rec.NeedsAttention).SetAttentionReason(rec.AttentionReason).
				SetVersion(rec.Version).SetUpdatedAt(utc(rec.UpdatedAt)).
				SetTimeline(refundSteps(old.Timeline, old, rec))
			if saved, err = up.Save(ctx); err != nil {
				return err
			}
			if err := recordEvents(ctx, tx, refundEvents(saved, len(old.Timeline))); err != nil {
				return err
			}
			if Holds(old.Status) && !Holds(rec.Status) {
				n, err := tx.Payment.Update().
					Where(payment.ID(old.PaymentID), payment.AmountRefundedGTE(old.Amount)).
					AddAmountRefunded(-old.Amount).
					Save(ctx)
				if err != nil {
					return err
				}
				if n != 1 {
					return fmt.Errorf("payment %s holds less than refund %s's %d", old.PaymentID, old.ID, old.Amount)
				}
			}
		}
		var posted *Journal
		if journal != nil {
			if j.Currency != saved.Currency {
				return errs.InvalidArgument("journal.currency",
					"journal %s is in %s, refund %s in %s", j.ID, j.Currency, saved.ID, saved.Currency)
			}
			if err := postJournal(ctx, tx, j); err != nil {
				return err
			}
			posted = &j
		}
		return recordMovements(ctx, tx, saved.ID, posted,
			func(journalID string) movementRow { return refundMovement(saved, journalID) },
			func(j Journal) movementRow { return refundFailureMovement(saved, j) })
	})
	if err != nil {
		return nil, wrap(refundErr(err), "save refund "+rec.ID)
	}
	return saved, nil
}

// refundErr turns the database's refusals into domain errors: a refund id
// taken already, a broken money constraint.
func refundErr(err error) error {
	err = invalid(err)
	switch {
	case ent.IsConstraintError(err) && isUniqueViolation(err):
		return errs.AlreadyExists("the refund exists already")
	case isCheckViolation(err):
		return errs.FailedPrecondition("the refund would break the payment's balance (%s)", checkName(err))
	}
	return err
}

// RefundByID returns one refund, NotFound when there is none.
func (s *Store) RefundByID(ctx context.Context, id string) (*ent.Refund, error) {
	r, err := s.Client.Refund.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errs.NotFound("refund")
	}
	if err != nil {
		return nil, fmt.Errorf("read refund %s: %w", id, err)
	}
	return r, nil
}

// RefundByGatewayReference returns the refund a gateway's id names.
func (s *Store) RefundByGatewayReference(ctx context.Context, ref string) (*ent.Refund, error) {
	if ref == "" {
		return nil, errs.NotFound("refund")
	}
	r, err := s.Client.Refund.Query().Where(refund.GatewayReference(ref)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, errs.NotFound("refund")
	}
	if err != nil {
		return nil, fmt.Errorf("read refund by reference: %w", err)
	}
	return r, nil
}

// RefundRecordOf is the stored refund as its workflow sees it.
func RefundRecordOf(r *ent.Refund) RefundRecord {
	return RefundRecord{
		ID: r.ID, PaymentID: r.PaymentID, MerchantID: r.MerchantID, CustomerID: r.CustomerID,
		Amount: r.Amount, Currency: r.Currency, Status: r.Status, Reason: r.Reason,
		FailureReason: r.FailureReason, Gateway: r.Gateway, GatewayReference: r.GatewayReference,
		WorkflowID: r.WorkflowID, Metadata: r.Metadata,
		NeedsAttention: r.NeedsAttention, AttentionReason: r.AttentionReason,
		Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
}

// RefundJournal is the journal of a refund's money going back: from the
// merchant's balance through the gateway's clearing account to the
// customer's funding source, the capture journal's lines reversed. It is
// posted when the gateway accepts the refund (pending or succeeded).
func RefundJournal(r RefundRecord, at time.Time) *Journal {
	return moneyBack(r.ID+refundSuffix, r.PaymentID, r.Currency, r.MerchantID, r.CustomerID, r.Gateway, r.Amount, at, false)
}

// RefundReversalJournal compensates RefundJournal when an accepted refund
// fails later at the gateway: the money is back with the merchant.
func RefundReversalJournal(r RefundRecord, at time.Time) *Journal {
	return moneyBack(r.ID+refundFailedSuffix, r.PaymentID, r.Currency, r.MerchantID, r.CustomerID, r.Gateway, r.Amount, at, true)
}

// The journals' ids are the source's id and one of these.
const (
	captureSuffix         = "/capture"
	refundSuffix          = "/refund"
	refundFailedSuffix    = "/refund_failed"
	fundsWithdrawnSuffix  = "/funds_withdrawn"
	fundsReinstatedSuffix = "/funds_reinstated"
)

// moneyBack is the one journal of money going from a payment's merchant
// back to its customer (refunds, disputes the customer wins, funds a card
// network withdraws): merchant balance to the gateway's clearing account to
// the customer's funding source, the capture journal's lines reversed; with
// reverse, the other way (a refund that failed, funds reinstated).
func moneyBack(id, paymentID, currency, merchantID, customerID, gw string, amount int64, at time.Time, reverse bool) *Journal {
	merchant, clearing, funding := partyAccounts(merchantID, customerID, gw)
	from, to := merchant, funding
	if reverse {
		from, to = funding, merchant
	}
	return &Journal{
		ID: id, PaymentID: paymentID, Currency: currency, At: at,
		Lines: []JournalLine{
			{Account: from, Direction: ledgerentry.DirectionDebit, Amount: amount},
			{Account: clearing, Direction: ledgerentry.DirectionCredit, Amount: amount},
			{Account: clearing, Direction: ledgerentry.DirectionDebit, Amount: amount},
			{Account: to, Direction: ledgerentry.DirectionCredit, Amount: amount},
		},
	}
}

// partyAccounts names the ledger accounts of a payment's parties, as the
// payment's capture journal does.
func partyAccounts(merchantID, customerID, gw string) (merchant, clearing, funding string) {
	if customerID == "" {
		customerID = "guest"
	}
	return merchantAccountPrefix + merchantID, "gateway_clearing:" + gw, "customer_funding:" + customerID
}

// RefundFilter selects refunds; empty fields match everything.
type RefundFilter struct {
	// Party: refunds of payments where this account is the merchant or
	// the customer.
	Party                       string
	MerchantID, PaymentID       string
	Status                      refund.Status
	CreatedAfter, CreatedBefore *time.Time // [after, before)
}

// ListRefunds returns a page of the refunds that match f, newest first (see
// list).
func (s *Store) ListRefunds(ctx context.Context, f RefundFilter, p Page) ([]*ent.Refund, error) {
	var w where
	w.eq(refund.FieldMerchantID, f.MerchantID)
	w.eq(refund.FieldPaymentID, f.PaymentID)
	w.eq(refund.FieldStatus, string(f.Status))
	rs, err := list(ctx, migrate.RefundsTable, w, Filter{f.Party, f.CreatedAfter, f.CreatedBefore}, p, RefundCursor,
		func(ctx context.Context, q keyset) ([]*ent.Refund, error) {
			return s.Client.Refund.Query().Where(predicate.Refund(q.Where)).Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list refunds")
	}
	return rs, nil
}

// RefundCursor is a refund's position in a list.
func RefundCursor(r *ent.Refund) Cursor { return Cursor{r.CreatedAt, r.ID} }
