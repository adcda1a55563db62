package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	entrefund "github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/refund"
)

// refundEvents are the Refund events that change a refund: a whitelist.
// charge.refund.updated (the Charges API's name) and refund.updated and
// refund.failed (the Refunds API's) all carry a Refund object. Every other
// event about refunds (refund.created, charge.refunded, ...) is acknowledged
// and ignored: the refund's workflow learns of a refund from the gateway's
// answer, and of its later changes from these.
var refundEvents = map[string]bool{
	"charge.refund.updated": true,
	"refund.updated":        true,
	"refund.failed":         true,
}

// stripeRefundStatuses maps a Stripe refund's status. requires_action (the
// customer must supply details for some payment methods) is pending, as the
// Stripe gateway reads it in its answers.
var stripeRefundStatuses = map[string]gateway.RefundStatus{
	"pending":         gateway.RefundPending,
	"requires_action": gateway.RefundPending,
	"succeeded":       gateway.RefundSucceeded,
	"failed":          gateway.RefundFailed,
	"canceled":        gateway.RefundCanceled,
}

// stripeRefundEvent is the part of a Stripe refund event the platform
// reads: its data.object is a Refund.
type stripeRefundEvent struct {
	Data struct {
		Object stripeRefund `json:"object"`
	} `json:"data"`
}

// stripeRefund is the part of Stripe's Refund object the platform reads.
type stripeRefund struct {
	ID     string `json:"id"`
	Object string `json:"object"`
	// Amount is in the gateway's units of Currency.
	Amount        int64             `json:"amount"`
	Currency      string            `json:"currency"`
	Status        string            `json:"status"`
	FailureReason string            `json:"failure_reason"`
	Metadata      map[string]string `json:"metadata"`
	PaymentIntent expandable        `json:"payment_intent"`
}

// expandable is a Stripe field that holds an object's id, or the object
// itself when the request expanded it; either way it reads as the id.
type expandable string

func (x *expandable) UnmarshalJSON(b []byte) error {
	var id string
	if err := json.Unmarshal(b, &id); err == nil {
		*x = expandable(id)
		return nil
	}
	var obj struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &obj); err != nil {
		return err
	}
	*x = expandable(obj.ID)
	return nil
}

// stripeRefundWebhook handles a refund event that stripeWebhook verified,
// whitelisted (refundEvents) and found not seen before: the refund its
// gateway reference names gets the event as a signal to its workflow, or,
// once that has ended, in a new run of it (resumeRefund). The event is
// remembered after it was handed over, as the payment path does, so that a
// redelivery is acknowledged and not acted on again.
func (s *Server) stripeRefundWebhook(w http.ResponseWriter, r *http.Request, eventID, typ string, body []byte) {
	ctx := r.Context()
	var ev stripeRefundEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Data.Object.ID == "" {
		http.Error(w, "malformed event", http.StatusBadRequest)
		return
	}
	obj := ev.Data.Object
	if obj.Object != "" && obj.Object != "refund" {
		s.log.WarnContext(ctx, "stripe refund event without a refund; ignored", "event", eventID, "type", typ, "object", obj.Object)
		w.WriteHeader(http.StatusOK)
		return
	}
	status, known := stripeRefundStatuses[obj.Status]
	if !known {
		// Not a state any refund of ours can be in: acknowledged (a retry
		// cannot change it) and left to a person.
		s.log.ErrorContext(ctx, "stripe refund event with a status the platform does not know; ignored",
			"event", eventID, "refund", obj.ID, "status", obj.Status)
		w.WriteHeader(http.StatusOK)
		return
	}
	re, err := s.d.Store.RefundByGatewayReference(ctx, obj.ID)
	switch {
	case errors.Is(err, errs.ErrNotFound):
		retry, err := s.unknownStripeRefund(ctx, eventID, obj)
		if err != nil {
			// Not knowing is not "unknown refund": let the gateway retry.
			s.log.ErrorContext(ctx, "looking up a stripe refund event's payment", "event", eventID, "err", err)
		}
		if err != nil || retry {
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	case err != nil:
		s.log.ErrorContext(ctx, "looking up a stripe refund event's refund", "event", eventID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	sig := refund.GatewayEvent{EventID: eventID, Type: typ, Reference: obj.ID, Status: status}
	if status == gateway.RefundFailed || status == gateway.RefundCanceled {
		sig.FailureCode = obj.FailureReason
	}
	// Signal first, then remember the event: a crash in between makes the
	// gateway redeliver, and the workflow ignores what is no forward move.
	err = s.d.Temporal.SignalWorkflow(ctx, refund.WorkflowID(re.ID), "", refund.SignalGatewayEvent, sig)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		err = s.resumeRefund(ctx, re.ID, sig)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "delivering a stripe refund event", "event", eventID, "refund_id", re.ID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	s.recordStripeEvent(ctx, eventID, typ, re.PaymentID)
	w.WriteHeader(http.StatusOK)
}

// resumeRefund hands an event to a refund whose workflow has ended: a new
// run of the same workflow id (Input.Resume) loads the stored refund and
// applies the event, so the workflow stays the refund's single writer and
// the refund's version continues. An event that cannot move the stored
// refund (it is failed or canceled already, reports the status it is in,
// or reports pending) is old news and starts nothing; whether any other
// event is a forward move is the workflow's decision.
func (s *Server) resumeRefund(ctx context.Context, refundID string, sig refund.GatewayEvent) error {
	re, err := s.d.Store.RefundByID(ctx, refundID)
	switch {
	case errors.Is(err, errs.ErrNotFound):
		s.log.InfoContext(ctx, "stripe event for an unknown refund", "event", sig.EventID, "refund_id", refundID)
		return nil
	case err != nil:
		return err
	}
	if !store.Holds(re.Status) || sig.Status == gateway.RefundPending || sameRefundStatus(re.Status, sig.Status) {
		s.log.InfoContext(ctx, "stripe event for a finished refund", "event", sig.EventID, "refund_id", re.ID,
			"recorded", re.Status, "reported", sig.Status)
		return nil
	}
	s.log.InfoContext(ctx, "stripe event for a refund whose workflow has ended; resuming it",
		"event", sig.EventID, "refund_id", re.ID, "recorded", re.Status, "reported", sig.Status)
	in := refund.Input{RefundID: re.ID, PaymentID: re.PaymentID, MerchantID: re.MerchantID, Resume: true, Logic: refund.CurrentLogic}
	// The run's search attributes say what the stored refund says, as the
	// run, which loads it, assumes.
	attrs := []temporal.SearchAttributeUpdate{
		refund.AttrRefundID.ValueSet(re.ID), refund.AttrPaymentID.ValueSet(re.PaymentID),
		refund.AttrMerchantID.ValueSet(re.MerchantID), refund.AttrStatus.ValueSet(string(re.Status)),
	}
	if re.NeedsAttention {
		attrs = append(attrs, refund.AttrNeedsAttention.ValueSet(true))
	}
	wid := refund.WorkflowID(re.ID)
	_, err = s.d.Temporal.SignalWithStartWorkflow(ctx, wid, refund.SignalGatewayEvent, sig, client.StartWorkflowOptions{
		ID:                    wid,
		TaskQueue:             s.d.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
	}, refund.WorkflowName, in)
	return err
}

// sameRefundStatus reports whether the gateway reports the status a refund
// is recorded in.
func sameRefundStatus(recorded entrefund.Status, reported gateway.RefundStatus) bool {
	switch reported {
	case gateway.RefundSucceeded:
		return recorded == entrefund.StatusSucceeded
	case gateway.RefundFailed:
		return recorded == entrefund.StatusFailed
	case gateway.RefundCanceled:
		return recorded == entrefund.StatusCanceled
	}
	return recorded == entrefund.StatusPending
}

// unknownStripeRefund decides about an event for a refund that no refund's
// gateway reference names. Usually the refund is not the platform's (made in
// the gateway's dashboard, say): the event is acknowledged and logged. But
// the gateway may send it before the refund's workflow has stored the
// gateway's answer, which carries the reference: when the payment (found by
// the refund's payment_id metadata or its PaymentIntent) has a refund under
// way without a reference, of the event's amount, retry is true, and the
// gateway, answered 503, delivers the event again once the reference is
// stored.
func (s *Server) unknownStripeRefund(ctx context.Context, eventID string, obj stripeRefund) (retry bool, err error) {
	// A refund a dispute's outcome made has no refund row: the dispute
	// names it. One that fails later leaves the customer unpaid while the
	// dispute says refunded: a person must settle it.
	switch d, err := s.d.Store.DisputeByRefundReference(ctx, obj.ID); {
	case err == nil:
		if st := stripeRefundStatuses[obj.Status]; st == gateway.RefundFailed || st == gateway.RefundCanceled {
			s.log.ErrorContext(ctx, "RECONCILE: the refund a dispute's outcome made failed at the gateway; the customer was not paid back",
				"event", eventID, "refund", obj.ID, "dispute_id", d.ID, "payment_id", d.PaymentID, "failure_reason", obj.FailureReason)
		} else {
			s.log.InfoContext(ctx, "stripe event for a dispute's refund", "event", eventID, "refund", obj.ID, "dispute_id", d.ID, "status", obj.Status)
		}
		return false, nil
	case !errors.Is(err, errs.ErrNotFound):
		return false, err
	}
	payID, err := s.eventPaymentID(ctx, obj.Metadata, string(obj.PaymentIntent))
	if err != nil {
		return false, err
	}
	if payID != "" {
		// The event's amount in ISO minor units, when it reads exactly;
		// otherwise any amount matches.
		amount, exact := int64(0), false
		if obj.Currency != "" && obj.Amount > 0 {
			if a, err := gateway.UnitsFor(s.d.GatewayName, obj.Currency).FromGateway(obj.Amount); err == nil {
				amount, exact = a, true
			}
		}
		const page = 100
		var after *store.Cursor
		for {
			rs, err := s.d.Store.ListRefunds(ctx, store.RefundFilter{PaymentID: payID}, store.Page{Limit: page, After: after})
			if err != nil {
				return false, err
			}
			for _, re := range rs {
				if re.GatewayReference == "" && store.Holds(re.Status) && (!exact || re.Amount == amount) {
					s.log.WarnContext(ctx, "stripe event for a refund whose gateway reference is not stored yet; asking for a redelivery",
						"event", eventID, "refund", obj.ID, "payment_id", payID, "refund_under_way", re.ID)
					return true, nil
				}
			}
			if len(rs) < page {
				break
			}
			c := store.RefundCursor(rs[len(rs)-1])
			after = &c
		}
	}
	s.log.InfoContext(ctx, "stripe event for an unknown refund", "event", eventID, "refund", obj.ID, "payment_id", payID)
	return false, nil
}
