package payment

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/ent/ledgerentry"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

// Reconciliation: what to do when the gateway reports a state that
// contradicts a finished payment. The payment's workflow does it while it
// runs; once it has ended, the webhook receiver starts the payment's
// reconciliation workflow (Reconcile) with the report instead. Both use
// reconcileReport, and every effect is keyed by the payment (the refund's
// idempotency key, the journals' and the case's ids), so a report handled
// twice, by either, changes nothing the second time.

// Contradiction says how a gateway status reported for a finished payment
// contradicts its recorded status: "" when it agrees (or says nothing new),
// unexpected_charge when money was taken for a payment the parties were
// told had failed or was canceled (and, with requires_capture, money held
// for it), contradicting_state when money the platform counts as received
// is not.
func Contradiction(recorded entpayment.Status, reported gateway.Status) reconciliationcase.Kind {
	switch recorded {
	case entpayment.StatusFailed, entpayment.StatusCanceled:
		if reported == gateway.StatusSucceeded || reported == gateway.StatusRequiresCapture {
			return reconciliationcase.KindUnexpectedCharge
		}
	case entpayment.StatusSucceeded:
		if reported == gateway.StatusFailed || reported == gateway.StatusCanceled {
			return reconciliationcase.KindContradictingState
		}
	}
	return ""
}

// reconcileReports handles the reports queued by the payment's run; one
// the gateway does not answer is tried again on a durable timer.
func (r *run) reconcileReports(ctx workflow.Context) {
	r.busy = true
	defer func() { r.busy = false }()
	for len(r.reports) > 0 {
		if err := reconcileReport(ctx, r.rec, r.reports[0]); err != nil {
			r.reportTries++
			r.retryReports = workflow.Now(ctx).Add(presets.StepRetryDelay(r.reportTries))
			workflow.GetLogger(ctx).Error("payment needs attention: a gateway report could not be reconciled yet", "err", err, "retry_at", r.retryReports)
			r.setAttention(ctx, true)
			return
		}
		r.reports = r.reports[1:]
	}
	r.reportTries = 0
	r.setAttention(ctx, r.rec.NeedsAttention || r.pending != nil || r.unsaved != nil)
}

// caseID is the id of the case a report opens: one unexpected-charge case
// per payment (an intent succeeds once), one contradicting-state case per
// report.
func caseID(p store.PaymentRecord, kind reconciliationcase.Kind, ev GatewayEvent) string {
	base := "rcn_" + strings.TrimPrefix(p.ID, "pay_")
	if kind == reconciliationcase.KindUnexpectedCharge {
		return base + "_charge"
	}
	sum := sha256.Sum256([]byte(ev.EventID))
	return base + "_" + hex.EncodeToString(sum[:6])
}

// reconcileReport acts on one report about finished payment p and records
// the case. An unexpected charge is refunded at the gateway (a durable
// step with a key of its own), and both movements go into the ledger with
// the case, in one transaction; money merely held (requires_capture) is
// voided. A contradicting state is recorded for a person. It returns an
// error when the gateway did not answer, for the caller to try again.
func reconcileReport(ctx workflow.Context, p store.PaymentRecord, ev GatewayEvent) error {
	kind := Contradiction(p.Status, ev.Status)
	if kind == "" {
		return nil
	}
	log := workflow.GetLogger(ctx)
	ref := ev.Reference
	if ref == "" {
		ref = p.GatewayReference
	}
	c := store.ReconciliationCase{
		ID: caseID(p, kind, ev), PaymentID: p.ID, Kind: kind,
		PaymentStatus: string(p.Status), GatewayStatus: string(ev.Status),
		Gateway: p.Gateway, GatewayReference: ref, EventID: ev.EventID,
		Currency: p.Currency, Action: "none", At: workflow.Now(ctx),
	}
	var journals []store.Journal
	switch {
	case kind == reconciliationcase.KindContradictingState:
		c.Amount = p.AmountReceived
		c.Details = fmt.Sprintf("The gateway reports %s for a payment recorded as %s with %d received; nothing was changed automatically.",
			ev.Status, p.Status, p.AmountReceived)
		log.Error("RECONCILE: the gateway contradicts a finished payment", "payment_id", p.ID, "recorded", p.Status, "reported", ev.Status, "event", ev.EventID)
	case ev.Status == gateway.StatusRequiresCapture:
		c.Amount = ev.AmountCapturable
		log.Error("RECONCILE: the gateway holds an authorization for a payment recorded as "+string(p.Status)+"; voiding it", "payment_id", p.ID, "reference", ref)
		var found gateway.Found
		err := workflow.ExecuteActivity(presets.GatewayStep(ctx), gw.Void, gateway.VoidRequest{
			Gateway: p.Gateway, IdempotencyKey: WorkflowID(p.ID) + "/reconcile_void/" + ref,
			PaymentID: p.ID, Reference: ref, Currency: p.Currency, Reason: "abandoned",
		}).Get(ctx, &found)
		if err != nil && !isInvalid(err) {
			return err
		}
		if err == nil && found.Exists && found.Result.Status == gateway.StatusSucceeded {
			// Captured meanwhile: it is an unexpected charge after all.
			ev.Status, ev.AmountReceived = gateway.StatusSucceeded, found.Result.AmountReceived
			return reconcileReport(ctx, p, ev)
		}
		c.Action = "voided"
		c.Details = "The gateway held an authorization for a payment the parties were told had " + string(p.Status) + "; it was canceled at the gateway, and no money moved."
	default:
		amount := ev.AmountReceived
		if amount == 0 {
			amount = p.Amount
		}
		c.Amount = amount
		log.Error("RECONCILE: the gateway charged a payment recorded as "+string(p.Status)+"; refunding it", "payment_id", p.ID, "reference", ref, "amount", amount)
		var rr gateway.RefundResult
		err := workflow.ExecuteActivity(presets.GatewayStep(ctx), gw.Refund, gateway.RefundRequest{
			Gateway: p.Gateway, IdempotencyKey: WorkflowID(p.ID) + "/unexpected_refund/" + ref,
			PaymentID: p.ID, Reference: ref, Amount: amount, Currency: p.Currency,
		}).Get(ctx, &rr)
		if err != nil && !isInvalid(err) {
			return err
		}
		journals = append(journals, unexpectedJournal(ctx, p, amount, false))
		switch {
		case err != nil:
			c.Action = "refund_refused"
			c.Details = "The gateway took money for a payment the parties were told had " + string(p.Status) + ", and refused to refund it automatically: refund it by hand. " + err.Error()
		case rr.Status == gateway.RefundFailed || rr.Status == gateway.RefundCanceled:
			c.Action, c.RefundReference = "refund_failed", rr.Reference
			c.Details = "The gateway took money for a payment the parties were told had " + string(p.Status) + "; the automatic refund " + string(rr.Status) + " (" + rr.FailureCode + "): refund it by hand."
		default:
			c.Action, c.RefundReference = "refunded", rr.Reference
			if rr.Status == gateway.RefundPending {
				c.Action = "refund_pending"
			}
			c.Details = "The gateway took money for a payment the parties were told had " + string(p.Status) + "; it was refunded automatically."
			journals = append(journals, unexpectedJournal(ctx, p, amount, true))
		}
	}
	return workflow.ExecuteLocalActivity(presets.LocalStoreWrite(ctx), db.RecordReconciliation, c, journals).Get(ctx, nil)
}

// unexpectedJournal is the ledger's record of an unexpected charge (the
// customer's money arrived at the gateway, and stays in its clearing
// account: the merchant was told the payment failed) or of its refund.
func unexpectedJournal(ctx workflow.Context, p store.PaymentRecord, amount int64, refund bool) store.Journal {
	customer := p.CustomerID
	if customer == "" {
		customer = "guest"
	}
	funding, clearing := "customer_funding:"+customer, "gateway_clearing:"+p.Gateway
	j := store.Journal{ID: p.ID + "/unexpected_charge", PaymentID: p.ID, Currency: p.Currency, At: workflow.Now(ctx),
		Lines: []store.JournalLine{
			{Account: funding, Direction: ledgerentry.DirectionDebit, Amount: amount},
			{Account: clearing, Direction: ledgerentry.DirectionCredit, Amount: amount},
		}}
	if refund {
		j.ID = p.ID + "/unexpected_refund"
		j.Lines = []store.JournalLine{
			{Account: clearing, Direction: ledgerentry.DirectionDebit, Amount: amount},
			{Account: funding, Direction: ledgerentry.DirectionCredit, Amount: amount},
		}
	}
	return j
}

// ReconcileWorkflowName is the registered type of Reconcile.
const ReconcileWorkflowName = "payment.Reconcile"

// ReconcileWorkflowID is the id of a payment's reconciliation workflow.
func ReconcileWorkflowID(paymentID string) string { return "payment-reconcile/" + paymentID }

// ReconcileInput starts a payment's reconciliation.
type ReconcileInput struct {
	PaymentID string
}

// Reconcile handles gateway reports about a payment whose own workflow has
// ended, delivered as SignalGatewayEvent (the receiver starts it with
// signal-with-start, one run at a time per payment). It reads the payment's
// recorded state, reconciles every report, trying again on a durable timer
// while the gateway does not answer, and ends when none is left.
func Reconcile(ctx workflow.Context, in ReconcileInput) error {
	var p store.PaymentRecord
	if err := workflow.ExecuteLocalActivity(presets.LocalStoreRead(ctx), db.LoadPayment, in.PaymentID).Get(ctx, &p); err != nil {
		return err
	}
	if !isFinal(p.Status) {
		return temporal.NewNonRetryableApplicationError("payment "+p.ID+" is not finished: its own workflow handles its events", "NotFinished", nil)
	}
	sigCh := workflow.GetSignalChannel(ctx, SignalGatewayEvent)
	seen := map[string]bool{}
	var queue []GatewayEvent
	tries := 0
	for {
		for {
			var ev GatewayEvent
			if !sigCh.ReceiveAsync(&ev) {
				break
			}
			if !seen[ev.EventID] {
				seen[ev.EventID] = true
				queue = append(queue, ev)
			}
		}
		if len(queue) == 0 {
			return nil
		}
		if err := reconcileReport(ctx, p, queue[0]); err != nil {
			tries++
			workflow.GetLogger(ctx).Error("a gateway report could not be reconciled yet", "payment_id", p.ID, "err", err, "tries", tries)
			if err := workflow.Sleep(ctx, presets.StepRetryDelay(tries)); err != nil {
				return err
			}
			continue
		}
		tries = 0
		queue = queue[1:]
	}
}
