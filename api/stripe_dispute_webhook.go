package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	entdispute "github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/workflows/dispute"
)

// disputeEvents are the Dispute events that open or drive a network
// dispute: a whitelist. charge.dispute.funds_withdrawn and
// .funds_reinstated are acknowledged and ignored: the dispute's workflow
// writes the funds to the ledger when the dispute opens and when it is won.
var disputeEvents = map[string]bool{
	"charge.dispute.created": true,
	"charge.dispute.updated": true,
	"charge.dispute.closed":  true,
}

// stripeDisputeEvent is the part of a Stripe dispute event the platform
// reads: its data.object is a Dispute.
type stripeDisputeEvent struct {
	Data struct {
		Object struct {
			ID     string `json:"id"`
			Object string `json:"object"`
			// Amount is in the gateway's units of Currency.
			Amount          int64             `json:"amount"`
			Currency        string            `json:"currency"`
			Status          string            `json:"status"`
			Reason          string            `json:"reason"`
			Metadata        map[string]string `json:"metadata"`
			PaymentIntent   expandable        `json:"payment_intent"`
			Created         int64             `json:"created"`
			EvidenceDetails struct {
				DueBy int64 `json:"due_by"`
			} `json:"evidence_details"`
		} `json:"object"`
	} `json:"data"`
}

// stripeDisputeReasons maps Stripe's reasons to ours; any other (bank
// reasons such as insufficient_funds) is general.
var stripeDisputeReasons = map[string]entdispute.Reason{
	"fraudulent":            entdispute.ReasonFraudulent,
	"duplicate":             entdispute.ReasonDuplicate,
	"product_not_received":  entdispute.ReasonProductNotReceived,
	"product_unacceptable":  entdispute.ReasonProductUnacceptable,
	"subscription_canceled": entdispute.ReasonSubscriptionCanceled,
	"credit_not_processed":  entdispute.ReasonCreditNotProcessed,
	"unrecognized":          entdispute.ReasonUnrecognized,
	"general":               entdispute.ReasonGeneral,
}

// NetworkDisputeID is our id of the dispute the gateway names ref: derived
// from it, so every event about it, and every redelivery, reaches the
// same workflow, which the first of them starts.
func NetworkDisputeID(ref string, created time.Time) string {
	return ids.Derive(ids.Dispute, created, []byte("gateway-dispute|"+ref))
}

// stripeDisputeWebhook handles a dispute event that stripeWebhook verified,
// whitelisted (disputeEvents) and found not seen before: the dispute's
// workflow gets it as a signal, started by it if it does not run yet (the
// first event of a network dispute opens it, whichever type it is). An
// event about a dispute whose workflow has ended is old news: the dispute
// is closed.
func (s *Server) stripeDisputeWebhook(w http.ResponseWriter, r *http.Request, eventID, typ string, body []byte) {
	ctx := r.Context()
	var ev stripeDisputeEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Data.Object.ID == "" {
		http.Error(w, "malformed event", http.StatusBadRequest)
		return
	}
	obj := ev.Data.Object
	if obj.Object != "" && obj.Object != "dispute" {
		s.log.WarnContext(ctx, "stripe dispute event without a dispute; ignored", "event", eventID, "type", typ, "object", obj.Object)
		w.WriteHeader(http.StatusOK)
		return
	}
	payID, err := s.eventPaymentID(ctx, obj.Metadata, string(obj.PaymentIntent))
	if err != nil {
		s.log.ErrorContext(ctx, "looking up a stripe dispute event's payment", "event", eventID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	pay, err := s.d.Store.PaymentByID(ctx, payID)
	switch {
	case errors.Is(err, errs.ErrNotFound) || payID == "":
		s.log.WarnContext(ctx, "stripe dispute event for an unknown payment; ignored", "event", eventID,
			"dispute", obj.ID, "intent", string(obj.PaymentIntent))
		w.WriteHeader(http.StatusOK)
		return
	case err != nil:
		s.log.ErrorContext(ctx, "looking up a stripe dispute event's payment", "event", eventID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	amount, err := gateway.UnitsFor(s.d.GatewayName, pay.Currency).FromGateway(obj.Amount)
	if err != nil || !strings.EqualFold(obj.Currency, pay.Currency) || amount <= 0 {
		s.log.ErrorContext(ctx, "RECONCILE: a stripe dispute event whose amount does not fit its payment",
			"event", eventID, "payment_id", pay.ID, "dispute", obj.ID, "amount", obj.Amount, "currency", obj.Currency)
		w.WriteHeader(http.StatusOK)
		return
	}
	// Every event of a dispute carries its creation time: the id derived
	// from it is the same for all of them.
	created := time.Unix(max(obj.Created, 0), 0).UTC()
	var due time.Time
	if obj.EvidenceDetails.DueBy > 0 {
		due = time.Unix(obj.EvidenceDetails.DueBy, 0).UTC()
	}
	sig := dispute.GatewayEvent{EventID: eventID, Type: typ, Reference: obj.ID, Status: gateway.DisputeStatus(obj.Status), DueBy: due}
	reason, ok := stripeDisputeReasons[obj.Reason]
	if !ok {
		reason = entdispute.ReasonGeneral
	}
	if due.IsZero() {
		due = s.now().Add(s.d.DisputeResponseWindow)
	}
	in := dispute.Input{
		DisputeID: NetworkDisputeID(obj.ID, created), PaymentID: pay.ID, MerchantID: pay.MerchantID,
		OpenedBy: string(entdispute.OpenedByNetwork), Reason: string(reason),
		Amount: amount, Currency: pay.Currency, ResponseDueBy: due, GatewayReference: obj.ID,
		ReminderLeads: s.d.DisputeReminders,
		CreatedAt:     s.now(), Logic: dispute.CurrentLogic,
	}
	wid := dispute.WorkflowID(in.DisputeID)
	_, err = s.d.Temporal.SignalWithStartWorkflow(ctx, wid, dispute.SignalGatewayEvent, sig, client.StartWorkflowOptions{
		ID:                    wid,
		TaskQueue:             s.d.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(dispute.StartAttributes(in)...),
	}, dispute.WorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	switch {
	case errors.As(err, &started):
		s.log.InfoContext(ctx, "stripe event for a closed dispute", "event", eventID, "dispute_id", in.DisputeID)
	case err != nil:
		s.log.ErrorContext(ctx, "delivering a stripe dispute event", "event", eventID, "dispute_id", in.DisputeID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	s.recordStripeEvent(ctx, eventID, typ, pay.ID)
	w.WriteHeader(http.StatusOK)
}
