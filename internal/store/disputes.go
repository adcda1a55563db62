package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/errs"
)

// A dispute takes its amount from the same refundable balance as refunds
// (amount_received - amount_refunded - amount_disputed), with the same
// single writer, the database: CreateDispute adds it to amount_disputed
// with a conditional UPDATE in the transaction that inserts the dispute, and
// SaveDispute moves it on in the transaction that records the outcome:
//   - won or withdrawn: nothing moves, the amount is disputable and
//     refundable again (amount_disputed goes down);
//   - lost or accepted, opened on the platform: the customer is refunded
//     through the gateway; once the refund is made (settlement refunded)
//     the amount moves from amount_disputed to amount_refunded;
//   - a network dispute: the network took the funds when it opened (the
//     funds_withdrawn journal); lost, they stay out (amount_disputed keeps
//     them), won, they come back (funds_reinstated, amount_disputed down).
//
// payments.open_dispute_id holds the open dispute, set and cleared by the
// same two operations: at most one dispute is open per payment, and
// CreateRefund refuses a refund while one is.

// DisputeRecord is a dispute's whole state as its workflow sees it.
type DisputeRecord struct {
	ID, PaymentID, MerchantID, CustomerID string
	OpenedBy                              dispute.OpenedBy
	Reason                                dispute.Reason
	Description                           string
	// Amount is positive, in minor units of Currency (the payment's);
	// AmountHeld is what the dispute took from the payment's balance.
	Amount, AmountHeld int64
	Currency           string
	Status             dispute.Status
	// Evidence is the respondent's, ClaimantEvidence the claimant's.
	Evidence, ClaimantEvidence                   disputes.Evidence
	EvidenceSubmitted, ClaimantEvidenceSubmitted bool
	ResponseDueBy                                time.Time
	OutcomeNote                                  string
	Settlement                                   dispute.Settlement
	RefundReference                              string
	Gateway, GatewayReference, WorkflowID        string
	Timeline                                     []disputes.TimelineEntry
	NeedsAttention                               bool
	AttentionReason                              string
	// Version orders the saves: the insert is 1, each save of the workflow
	// one more; only a higher version replaces the stored row.
	Version              int64
	CreatedAt, UpdatedAt time.Time
	ClosedAt             *time.Time
}

// openDisputeStatuses are the statuses of a dispute still waiting for an
// outcome.
var openDisputeStatuses = []dispute.Status{dispute.StatusNeedsResponse, dispute.StatusUnderReview}

// IsOpen reports whether a dispute in status st still waits for an outcome.
func IsOpen(st dispute.Status) bool {
	return slices.Contains(openDisputeStatuses, st)
}

// Respondent is the party that answers a dispute: the merchant, unless the
// merchant opened it.
func Respondent(openedBy dispute.OpenedBy) dispute.OpenedBy {
	if openedBy == dispute.OpenedByMerchant {
		return dispute.OpenedByCustomer
	}
	return dispute.OpenedByMerchant
}

// CustomerPrevails reports whether an outcome goes to the customer, from
// the merchant's side: lost or accepted.
func CustomerPrevails(st dispute.Status) bool {
	return st == dispute.StatusLost || st == dispute.StatusAccepted
}

// CreateDispute takes rec.Amount (0: everything still disputable) from the
// payment's balance, marks the dispute open on the payment and inserts it,
// in needs_response at version 1, in one transaction; a network dispute's
// funds_withdrawn journal is posted in it too. openerID is the account that
// opens it: the payment's customer or merchant as rec.OpenedBy says; ""
// for a network dispute.
//
// Refused, with nothing written:
//   - NotFound: no payment rec.PaymentID, or openerID is not the party of
//     it that rec.OpenedBy names;
//   - AlreadyExists: the payment has an open dispute, or rec.ID exists
//     (an earlier attempt stored it);
//   - FailedPrecondition: the payment has not succeeded, or less is
//     disputable than asked, or nothing; the message says what is left;
//   - InvalidArgument: a negative amount, a currency other than the
//     payment's.
//
// A network dispute is the card network's decision, not a request: it is
// recorded even when another dispute is open or less is left than it
// takes (it then holds what is left and asks operators to look).
func (s *Store) CreateDispute(ctx context.Context, rec DisputeRecord, openerID string) (*ent.Dispute, error) {
	if rec.Amount < 0 {
		return nil, errs.InvalidArgument("amount", "amount must not be negative")
	}
	network := rec.OpenedBy == dispute.OpenedByNetwork
	var created *ent.Dispute
	err := s.ledgerTx(ctx, func(tx *ent.Tx) error {
		q := tx.Payment.Query().Where(payment.ID(rec.PaymentID))
		if s.dialect == dialect.MySQL {
			q = q.ForUpdate()
		}
		p, err := q.Only(ctx)
		switch {
		case ent.IsNotFound(err):
			return errs.NotFound("payment")
		case err != nil:
			return err
		case !network && !isParty(p, rec.OpenedBy, openerID):
			return errs.NotFound("payment")
		case rec.Currency != "" && !strings.EqualFold(rec.Currency, p.Currency):
			return errs.InvalidArgument("currency", "the payment is in %s, not %s", p.Currency, strings.ToUpper(rec.Currency))
		}
		if n, err := tx.Dispute.Query().Where(dispute.ID(rec.ID)).Count(ctx); err != nil || n > 0 {
			if err != nil {
				return err
			}
			return errs.AlreadyExists("dispute %s exists already", rec.ID)
		}
		amount, held := rec.Amount, rec.Amount
		rec.NeedsAttention, rec.AttentionReason = false, ""
		if network {
			held = min(amount, max(Refundable(p), 0))
			switch {
			case p.Status == payment.StatusProcessing || p.Status == payment.StatusRequiresAction ||
				p.Status == payment.StatusRequiresCapture:
				// The gateway's event came before the payment's own: the
				// dispute waits (the activity retries) until it settles.
				return errs.Aborted(fmt.Sprintf("payment %s is still %s: the network's dispute waits for it to settle", p.ID, p.Status))
			case p.Status != payment.StatusSucceeded:
				// Our record says no money came in: the network's word is
				// recorded, nothing is held, and operators look.
				held = 0
				rec.NeedsAttention = true
				rec.AttentionReason = fmt.Sprintf("the network disputes payment %s, which is %s here", p.ID, p.Status)
			case p.OpenDisputeID != "":
				rec.NeedsAttention = true
				rec.AttentionReason = "the network opened a dispute while dispute " + p.OpenDisputeID + " was open on the payment"
			case held < amount:
				rec.NeedsAttention = true
				rec.AttentionReason = fmt.Sprintf("the network disputes %d while only %d was left of the payment's balance", amount, held)
			}
		} else {
			if amount == 0 {
				amount = Refundable(p)
			}
			if err := CheckDisputable(p, amount); err != nil {
				return err
			}
			held = amount
		}
		up := tx.Payment.Update().
			Where(payment.ID(p.ID), refundableAtLeast(held)).
			AddAmountDisputed(held)
		if !network {
			up = up.Where(payment.StatusEQ(payment.StatusSucceeded))
		}
		if p.OpenDisputeID == "" {
			up = up.Where(payment.OpenDisputeID("")).SetOpenDisputeID(rec.ID)
		}
		n, err := up.Save(ctx)
		switch {
		case err != nil:
			return err
		case n != 1:
			return errs.Aborted("the payment's balance changed meanwhile; retry")
		}
		c := tx.Dispute.Create().
			SetID(rec.ID).SetPaymentID(p.ID).SetMerchantID(p.MerchantID).SetCustomerID(p.CustomerID).
			SetOpenedBy(rec.OpenedBy).SetReason(rec.Reason).SetDescription(rec.Description).
			SetAmount(amount).SetAmountHeld(held).SetCurrency(p.Currency).
			SetStatus(dispute.StatusNeedsResponse).
			SetEvidence(rec.Evidence).SetClaimantEvidence(rec.ClaimantEvidence).
			SetResponseDueBy(utc(rec.ResponseDueBy)).
			SetGateway(p.Gateway).SetGatewayReference(rec.GatewayReference).
			SetWorkflowID(rec.WorkflowID).SetTimeline(timelineOr(rec.Timeline)).
			SetNeedsAttention(rec.NeedsAttention).SetAttentionReason(rec.AttentionReason).
			SetVersion(1).SetCreatedAt(utc(rec.CreatedAt)).SetUpdatedAt(utc(rec.CreatedAt))
		if created, err = c.Save(ctx); err != nil {
			return err
		}
		if err := recordEvents(ctx, tx, disputeEvents(created, 0)); err != nil {
			return err
		}
		var posted *Journal
		if network {
			j := normalizeJournal(*DisputeFundsWithdrawnJournal(DisputeRecordOf(created), rec.CreatedAt))
			if err := postJournal(ctx, tx, j); err != nil {
				return err
			}
			posted = &j
		}
		return recordMovements(ctx, tx, created.ID, posted,
			func(journalID string) movementRow { return disputeMovement(created, journalID) }, nil)
	})
	if err != nil {
		return nil, wrap(disputeErr(err), "open dispute of payment "+rec.PaymentID)
	}
	return created, nil
}

// isParty reports whether account is the party of p that role names.
func isParty(p *ent.Payment, role dispute.OpenedBy, account string) bool {
	switch role {
	case dispute.OpenedByCustomer:
		return account != "" && p.CustomerID == account
	case dispute.OpenedByMerchant:
		return account != "" && p.MerchantID == account
	}
	return false
}

// CheckDisputable refuses a dispute of amount that the payment's state
// rules out, saying why: a payment that did not succeed, one with an open
// dispute (AlreadyExists), nothing or less left than asked (refunds and
// earlier disputes took it; the message names what is left). The API asks
// it first for a quick answer; CreateDispute asks it again with the row
// locked.
func CheckDisputable(p *ent.Payment, amount int64) error {
	switch p.Status {
	case payment.StatusSucceeded:
	case payment.StatusRequiresCapture:
		return errs.FailedPrecondition("payment %s is authorized and not captured: nothing was paid to dispute", p.ID)
	case payment.StatusProcessing, payment.StatusRequiresAction:
		return errs.FailedPrecondition("payment %s is still %s: only a succeeded payment can be disputed", p.ID, p.Status)
	default:
		return errs.FailedPrecondition("payment %s is %s: only a succeeded payment can be disputed", p.ID, p.Status)
	}
	if p.OpenDisputeID != "" {
		return errs.AlreadyExists("payment %s has an open dispute, %s: follow that one", p.ID, p.OpenDisputeID)
	}
	left := Refundable(p)
	if left <= 0 {
		return errs.FailedPrecondition("payment %s is refunded or disputed in full already: nothing is left to dispute", p.ID)
	}
	if amount > left {
		return errs.FailedPrecondition("payment %s has %s left to dispute (%d in minor units); %d asked",
			p.ID, FormatAmount(left, p.Currency), left, amount)
	}
	return nil
}

func timelineOr(t []disputes.TimelineEntry) []disputes.TimelineEntry {
	if t == nil {
		return []disputes.TimelineEntry{}
	}
	return t
}

// SaveDispute stores a dispute's new state, from its workflow, and posts
// the journal of the money it moved, in one transaction. Only a higher
// version than the stored one replaces the row; an equal or older one (a
// retried local activity) changes nothing, and its journal, idempotent, is
// posted again as a no-op.
//
// The payment's balance follows the dispute's moves, each made once
// because only the save that makes the move does it: closing clears the
// payment's open dispute, and gives the held amount back when nothing
// moves (won, withdrawn); settlement refunded moves it from disputed to
// refunded. A closed dispute stays closed (FailedPrecondition), and what
// never changes (payment, amounts, currency, who opened it) must not.
func (s *Store) SaveDispute(ctx context.Context, rec DisputeRecord, journal *Journal) (*ent.Dispute, error) {
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
	if field, msg := rec.Evidence.Check(); field != "" {
		return nil, errs.InvalidArgument(field, "%s", msg)
	}
	if field, msg := rec.ClaimantEvidence.Check(); field != "" {
		return nil, errs.InvalidArgument(field, "%s", msg)
	}
	var saved *ent.Dispute
	err := s.ledgerTx(ctx, func(tx *ent.Tx) error {
		q := tx.Dispute.Query().Where(dispute.ID(rec.ID))
		if s.dialect == dialect.MySQL {
			q = q.ForUpdate()
		}
		old, err := q.Only(ctx)
		switch {
		case ent.IsNotFound(err):
			return errs.NotFound("dispute")
		case err != nil:
			return err
		case old.PaymentID != rec.PaymentID || old.Amount != rec.Amount || old.AmountHeld != rec.AmountHeld ||
			!strings.EqualFold(old.Currency, rec.Currency) || old.OpenedBy != rec.OpenedBy:
			return errs.InvalidArgument("dispute", "dispute %s is %d %s of payment %s opened by %s, not %d %s of %s opened by %s",
				old.ID, old.Amount, old.Currency, old.PaymentID, old.OpenedBy, rec.Amount, rec.Currency, rec.PaymentID, rec.OpenedBy)
		}
		saved = old
		if rec.Version > old.Version {
			if err := checkDisputeMove(old, rec); err != nil {
				return err
			}
			up := tx.Dispute.UpdateOneID(old.ID).Where(dispute.VersionLT(rec.Version)).
				SetStatus(rec.Status).
				SetEvidence(rec.Evidence).SetEvidenceSubmitted(rec.EvidenceSubmitted).
				SetClaimantEvidence(rec.ClaimantEvidence).SetClaimantEvidenceSubmitted(rec.ClaimantEvidenceSubmitted).
				SetResponseDueBy(utc(rec.ResponseDueBy)).SetOutcomeNote(rec.OutcomeNote).
				SetSettlement(rec.Settlement).SetRefundReference(rec.RefundReference).
				SetGatewayReference(rec.GatewayReference).SetTimeline(timelineOr(rec.Timeline)).
				SetNeedsAttention(rec.NeedsAttention).SetAttentionReason(rec.AttentionReason).
				SetVersion(rec.Version).SetUpdatedAt(utc(rec.UpdatedAt))
			if !IsOpen(rec.Status) && old.ClosedAt == nil {
				up = up.SetClosedAt(utc(rec.UpdatedAt))
			}
			if saved, err = up.Save(ctx); err != nil {
				return err
			}
			if err := recordEvents(ctx, tx, disputeEvents(saved, len(old.Timeline))); err != nil {
				return err
			}
			if err := moveDisputeBalance(ctx, tx, old, rec); err != nil {
				return err
			}
		}
		var posted *Journal
		if journal != nil {
			if j.Currency != saved.Currency {
				return errs.InvalidArgument("journal.currency",
					"journal %s is in %s, dispute %s in %s", j.ID, j.Currency, saved.ID, saved.Currency)
			}
			if err := postJournal(ctx, tx, j); err != nil {
				return err
			}
			posted = &j
		}
		return recordMovements(ctx, tx, saved.ID, posted,
			func(journalID string) movementRow { return disputeMovement(saved, journalID) },
			func(j Journal) movementRow { return disputeReversalMovement(saved, j) })
	})
	if err != nil {
		return nil, wrap(disputeErr(err), "save dispute "+rec.ID)
	}
	return saved, nil
}

// checkDisputeMove refuses a save the dispute's state machine rules out: a
// closed dispute that would change its status, a settlement that is not
// the outcome's.
func checkDisputeMove(old *ent.Dispute, rec DisputeRecord) error {
	if !IsOpen(old.Status) && rec.Status != old.Status {
		return errs.FailedPrecondition("dispute %s is %s: it cannot become %s", old.ID, old.Status, rec.Status)
	}
	if rec.Settlement == old.Settlement {
		return nil
	}
	network := old.OpenedBy == dispute.OpenedByNetwork
	ok := false
	switch rec.Settlement {
	case dispute.SettlementPending:
		ok = !network && CustomerPrevails(rec.Status) && old.Settlement == dispute.SettlementNone
	case dispute.SettlementRefunded:
		ok = !network && CustomerPrevails(rec.Status) &&
			(old.Settlement == dispute.SettlementNone || old.Settlement == dispute.SettlementPending)
	case dispute.SettlementWithdrawn:
		ok = network && CustomerPrevails(rec.Status) && old.Settlement == dispute.SettlementNone
	case dispute.SettlementReinstated:
		ok = network && rec.Status == dispute.StatusWon && old.Settlement == dispute.SettlementNone
	}
	if !ok {
		return errs.FailedPrecondition("dispute %s (%s, opened by %s): settlement %s cannot become %s",
			old.ID, rec.Status, old.OpenedBy, old.Settlement, rec.Settlement)
	}
	return nil
}

// moveDisputeBalance makes the payment's balance follow the dispute's
// move from old to rec (see the package comment on disputes above).
func moveDisputeBalance(ctx context.Context, tx *ent.Tx, old *ent.Dispute, rec DisputeRecord) error {
	if IsOpen(old.Status) && !IsOpen(rec.Status) {
		// A network dispute recorded beside this one is still open: the
		// payment stays disputed, now by it.
		still, err := tx.Dispute.Query().
			Where(dispute.PaymentID(old.PaymentID), dispute.IDNEQ(old.ID),
				dispute.StatusIn(openDisputeStatuses...)).
			Order(ent.Asc(dispute.FieldID)).FirstID(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return err
		}
		if _, err := tx.Payment.Update().
			Where(payment.ID(old.PaymentID), payment.OpenDisputeID(old.ID)).
			SetOpenDisputeID(still).Save(ctx); err != nil {
			return err
		}
	}
	var release, refunded bool
	switch {
	case old.Settlement != dispute.SettlementRefunded && rec.Settlement == dispute.SettlementRefunded:
		release, refunded = true, true
	case IsOpen(old.Status) && (rec.Status == dispute.StatusWon || rec.Status == dispute.StatusWithdrawn):
		release = true
	}
	if !release || old.AmountHeld == 0 {
		return nil
	}
	up := tx.Payment.Update().
		Where(payment.ID(old.PaymentID), payment.AmountDisputedGTE(old.AmountHeld)).
		AddAmountDisputed(-old.AmountHeld)
	if refunded {
		up = up.AddAmountRefunded(old.AmountHeld)
	}
	n, err := up.Save(ctx)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("payment %s holds less in disputes than dispute %s's %d", old.PaymentID, old.ID, old.AmountHeld)
	}
	return nil
}

// disputeErr turns the database's refusals into domain errors.
func disputeErr(err error) error {
	err = invalid(err)
	switch {
	case ent.IsConstraintError(err) && isUniqueViolation(err):
		return errs.AlreadyExists("the dispute exists already")
	case isCheckViolation(err):
		return errs.FailedPrecondition("the dispute would break the payment's balance (%s)", checkName(err))
	}
	return err
}

// DisputeByID returns one dispute, NotFound when there is none.
func (s *Store) DisputeByID(ctx context.Context, id string) (*ent.Dispute, error) {
	d, err := s.Client.Dispute.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errs.NotFound("dispute")
	}
	if err != nil {
		return nil, fmt.Errorf("read dispute %s: %w", id, err)
	}
	return d, nil
}

// DisputeByRefundReference returns the dispute whose outcome made the
// gateway's refund ref, NotFound when none did.
func (s *Store) DisputeByRefundReference(ctx context.Context, ref string) (*ent.Dispute, error) {
	if ref == "" {
		return nil, errs.NotFound("dispute")
	}
	d, err := s.Client.Dispute.Query().Where(dispute.RefundReference(ref)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, errs.NotFound("dispute")
	}
	if err != nil {
		return nil, fmt.Errorf("read dispute by refund reference: %w", err)
	}
	return d, nil
}

// DisputeRecordOf is the stored dispute as its workflow sees it.
func DisputeRecordOf(d *ent.Dispute) DisputeRecord {
	return DisputeRecord{
		ID: d.ID, PaymentID: d.PaymentID, MerchantID: d.MerchantID, CustomerID: d.CustomerID,
		OpenedBy: d.OpenedBy, Reason: d.Reason, Description: d.Description,
		Amount: d.Amount, AmountHeld: d.AmountHeld, Currency: d.Currency, Status: d.Status,
		Evidence: d.Evidence, ClaimantEvidence: d.ClaimantEvidence,
		EvidenceSubmitted: d.EvidenceSubmitted, ClaimantEvidenceSubmitted: d.ClaimantEvidenceSubmitted,
		ResponseDueBy: d.ResponseDueBy, OutcomeNote: d.OutcomeNote,
		Settlement: d.Settlement, RefundReference: d.RefundReference,
		Gateway: d.Gateway, GatewayReference: d.GatewayReference, WorkflowID: d.WorkflowID,
		Timeline: d.Timeline, NeedsAttention: d.NeedsAttention, AttentionReason: d.AttentionReason,
		Version: d.Version, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, ClosedAt: d.ClosedAt,
	}
}

// DisputeRefundJournal is the journal of the refund made when the customer
// prevails in a dispute opened on the platform: the refund journal's
// lines.
func DisputeRefundJournal(d DisputeRecord, at time.Time) *Journal {
	return moneyBack(d.ID+refundSuffix, d.PaymentID, d.Currency, d.MerchantID, d.CustomerID, d.Gateway, d.AmountHeld, at, false)
}

// DisputeFundsWithdrawnJournal is the journal of the funds the card
// network takes back from the merchant when it opens a dispute.
func DisputeFundsWithdrawnJournal(d DisputeRecord, at time.Time) *Journal {
	return moneyBack(d.ID+fundsWithdrawnSuffix, d.PaymentID, d.Currency, d.MerchantID, d.CustomerID, d.Gateway, d.Amount, at, false)
}

// DisputeFundsReinstatedJournal gives the merchant back what
// DisputeFundsWithdrawnJournal took, when the merchant wins.
func DisputeFundsReinstatedJournal(d DisputeRecord, at time.Time) *Journal {
	return moneyBack(d.ID+fundsReinstatedSuffix, d.PaymentID, d.Currency, d.MerchantID, d.CustomerID, d.Gateway, d.Amount, at, true)
}

// DisputeFilter selects disputes; empty fields match everything.
type DisputeFilter struct {
	// Party: disputes of payments where this account is the merchant or
	// the customer.
	Party                       string
	MerchantID, PaymentID       string
	Status                      dispute.Status
	OpenedBy                    dispute.OpenedBy
	DueBefore                   *time.Time // response_due_by < DueBefore
	CreatedAfter, CreatedBefore *time.Time // [after, before)
}

// ListDisputes returns a page of the disputes that match f, newest first
// (see list).
func (s *Store) ListDisputes(ctx context.Context, f DisputeFilter, p Page) ([]*ent.Dispute, error) {
	var w where
	w.eq(dispute.FieldMerchantID, f.MerchantID)
	w.eq(dispute.FieldPaymentID, f.PaymentID)
	w.eq(dispute.FieldStatus, string(f.Status))
	w.eq(dispute.FieldOpenedBy, string(f.OpenedBy))
	w.before(dispute.FieldResponseDueBy, f.DueBefore)
	ds, err := list(ctx, migrate.DisputesTable, w, Filter{f.Party, f.CreatedAfter, f.CreatedBefore}, p, DisputeCursor,
		func(ctx context.Context, q keyset) ([]*ent.Dispute, error) {
			return s.Client.Dispute.Query().Where(predicate.Dispute(q.Where)).Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list disputes")
	}
	return ds, nil
}

// DisputeCursor is a dispute's position in a list.
func DisputeCursor(d *ent.Dispute) Cursor { return Cursor{d.CreatedAt, d.ID} }

// Respondent is the party that answers the dispute.
func (d DisputeRecord) Respondent() dispute.OpenedBy { return Respondent(d.OpenedBy) }
