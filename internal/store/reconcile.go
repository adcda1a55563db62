package store

import (
	"context"
	"strings"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/errs"
)

// ReconciliationCase is a disagreement between the platform and the gateway
// about a payment, as its writer (the payment's workflow, or its
// reconciliation workflow once the payment's has ended) records it.
type ReconciliationCase struct {
	// ID is chosen by the writer from the payment and what happened, so a
	// retried or repeated write reaches the same case.
	ID        string
	PaymentID string
	Kind      reconciliationcase.Kind
	// PaymentStatus is the payment's recorded status; GatewayStatus what
	// the gateway reported.
	PaymentStatus, GatewayStatus string
	Gateway, GatewayReference    string
	EventID                      string
	// Amount is what the gateway took, in minor units of Currency.
	Amount   int64
	Currency string
	// Action is what the platform did ("refunded", "refund_pending",
	// "refund_failed", "none"), RefundReference the refund's gateway id.
	Action, RefundReference string
	Details                 string
	At                      time.Time
}

// RecordReconciliation records a case and, in the same transaction, the
// journals of the money it concerns (an unexpected charge and its refund),
// so the ledger and the cases never disagree. Recording a case id again
// updates what the writer learnt since (gateway status, action, refund
// reference, details) while the case is open, and posts journals
// idempotently like SavePayment does; a resolved case is left as it is.
func (s *Store) RecordReconciliation(ctx context.Context, c ReconciliationCase, journals []Journal) error {
	c.Currency = strings.ToUpper(c.Currency)
	c.At = utc(c.At)
	js := make([]Journal, len(journals))
	for i, j := range journals {
		j = normalizeJournal(j)
		if j.PaymentID == "" {
			j.PaymentID = c.PaymentID
		}
		if j.PaymentID != c.PaymentID {
			return errs.InvalidArgument("journal.payment_id", "journal %s concerns payment %s, not %s", j.ID, j.PaymentID, c.PaymentID)
		}
		if err := validateJournal(j); err != nil {
			return err
		}
		js[i] = j
	}
	err := s.ledgerTx(ctx, func(tx *ent.Tx) error {
		create := tx.ReconciliationCase.Create().
			SetID(c.ID).
			SetPaymentID(c.PaymentID).
			SetKind(c.Kind).
			SetPaymentStatus(c.PaymentStatus).
			SetGatewayStatus(c.GatewayStatus).
			SetGateway(c.Gateway).
			SetGatewayReference(c.GatewayReference).
			SetEventID(c.EventID).
			SetAmount(c.Amount).
			SetCurrency(c.Currency).
			SetAction(c.Action).
			SetRefundReference(c.RefundReference).
			SetDetails(c.Details).
			SetCreatedAt(c.At).
			SetUpdatedAt(c.At)
		if err := create.OnConflictColumns(reconciliationcase.FieldID).Ignore().Exec(ctx); err != nil {
			return invalid(err)
		}
		if _, err := tx.ReconciliationCase.Update().
			Where(reconciliationcase.ID(c.ID), reconciliationcase.StatusEQ(reconciliationcase.StatusOpen)).
			SetGatewayStatus(c.GatewayStatus).
			SetAction(c.Action).
			SetRefundReference(c.RefundReference).
			SetDetails(c.Details).
			SetUpdatedAt(c.At).
			Save(ctx); err != nil {
			return invalid(err)
		}
		for _, j := range js {
			if err := postJournal(ctx, tx, j); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(err, "record reconciliation case "+c.ID)
	}
	return nil
}

// ReconciliationFilter narrows ListReconciliationCases; zero fields do not
// filter.
type ReconciliationFilter struct {
	Status    reconciliationcase.Status
	PaymentID string
}

// ListReconciliationCases returns a page of the cases that match f, newest
// first (see list).
func (s *Store) ListReconciliationCases(ctx context.Context, f ReconciliationFilter, p Page) ([]*ent.ReconciliationCase, error) {
	var w where
	w.eq(reconciliationcase.FieldStatus, string(f.Status))
	w.eq(reconciliationcase.FieldPaymentID, f.PaymentID)
	cs, err := list(ctx, migrate.ReconciliationCasesTable, w, Filter{}, p, ReconciliationCaseCursor,
		func(ctx context.Context, q keyset) ([]*ent.ReconciliationCase, error) {
			return s.Client.ReconciliationCase.Query().Where(predicate.ReconciliationCase(q.Where)).Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list reconciliation cases")
	}
	return cs, nil
}

// ReconciliationCaseCursor is a case's position in a list.
func ReconciliationCaseCursor(c *ent.ReconciliationCase) Cursor { return Cursor{c.CreatedAt, c.ID} }

// ResolveReconciliationCase closes an open case with the admin's note;
// NotFound for an unknown id, FailedPrecondition for a resolved case.
func (s *Store) ResolveReconciliationCase(ctx context.Context, id, note string, now time.Time, audit Audit) (*ent.ReconciliationCase, error) {
	var out *ent.ReconciliationCase
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		n, err := tx.ReconciliationCase.Update().
			Where(reconciliationcase.ID(id), reconciliationcase.StatusEQ(reconciliationcase.StatusOpen)).
			SetStatus(reconciliationcase.StatusResolved).
			SetResolutionNote(note).
			SetUpdatedAt(utc(now)).
			Save(ctx)
		if err != nil {
			return invalid(err)
		}
		out, err = tx.ReconciliationCase.Get(ctx, id)
		if err != nil {
			return notFound(err, "reconciliation case")
		}
		if n == 0 {
			return errs.FailedPrecondition("reconciliation case %s is already resolved", id)
		}
		// The admin's decision, audited with it; the target is the
		// payment's merchant.
		merchant, err := tx.Payment.Query().Where(payment.ID(out.PaymentID)).Select(payment.FieldMerchantID).String(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return err
		}
		return Records{Audits: []Audit{audit.Of(AuditReconciliationResolved, merchant,
			map[string]string{"reconciliation_case_id": id, "payment_id": out.PaymentID})}}.write(ctx, tx, merchant)
	})
	if err != nil {
		return nil, wrap(err, "resolve reconciliation case "+id)
	}
	return out, nil
}

// PaymentRecord returns a payment's recorded state as its workflow sees it,
// for the workflows that act on a payment after its own has ended.
func (s *Store) PaymentRecord(ctx context.Context, id string) (PaymentRecord, error) {
	p, err := s.PaymentByID(ctx, id)
	if err != nil {
		return PaymentRecord{}, err
	}
	return PaymentRecordOf(p), nil
}

// PaymentRecordOf is the stored payment as its workflow sees it.
func PaymentRecordOf(p *ent.Payment) PaymentRecord {
	return PaymentRecord{
		ID: p.ID, MerchantID: p.MerchantID, CustomerID: p.CustomerID,
		Amount: p.Amount, AmountCapturable: p.AmountCapturable, AmountReceived: p.AmountReceived,
		AmountRefunded: p.AmountRefunded, AmountDisputed: p.AmountDisputed,
		Currency: p.Currency, Status: p.Status, CaptureMethod: p.CaptureMethod,
		PaymentMethod: p.PaymentMethod, MethodType: p.MethodType, MethodBrand: p.MethodBrand,
		MethodLast4: p.MethodLast4, MethodProvider: p.MethodProvider,
		MethodExpMonth: p.MethodExpMonth, MethodExpYear: p.MethodExpYear,
		FailureCode: p.FailureCode, FailureMessage: p.FailureMessage,
		NextActionType: p.NextActionType, NextActionURL: p.NextActionURL, NextActionExpiresAt: p.NextActionExpiresAt,
		Description: p.Description, Metadata: p.Metadata,
		Gateway: p.Gateway, GatewayReference: p.GatewayReference, WorkflowID: p.WorkflowID,
		AuthorizationExpiresAt: p.AuthorizationExpiresAt,
		NeedsAttention:         p.NeedsAttention, AttentionReason: p.AttentionReason,
		Version: p.Version, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
}
