package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/workflows/payment"
)

// stripeTolerance is how old a signed webhook may be (Stripe's default).
const stripeTolerance = 300 * time.Second

// stripeEvent is the part of a Stripe event the platform reads.
type stripeEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data struct {
		Object struct {
			ID               string            `json:"id"`
			Object           string            `json:"object"`
			Status           string            `json:"status"`
			AmountCapturable int64             `json:"amount_capturable"`
			AmountReceived   int64             `json:"amount_received"`
			Currency         string            `json:"currency"`
			Metadata         map[string]string `json:"metadata"`
			LastPaymentError *struct {
				Code        string `json:"code"`
				DeclineCode string `json:"decline_code"`
				Message     string `json:"message"`
			} `json:"last_payment_error"`
		} `json:"object"`
	} `json:"data"`
}

// stripeWebhook receives Stripe's events (and the sandbox's, which use the
// same format): the signature is verified, each event id is acted on once,
// payment_intent events go to the payment's workflow as a signal, and refund
// events to the refund's (stripeRefundWebhook).
// Answers: 400 for a bad signature or body (Stripe will not retry those
// usefully), 503 when the workflow service is down (Stripe retries), 200
// otherwise, also for events of no interest.
func (s *Server) stripeWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusBadRequest)
		return
	}
	if s.d.StripeWebhookSecret == "" {
		http.Error(w, "webhooks are not configured (STRIPE_WEBHOOK_SECRET)", http.StatusServiceUnavailable)
		return
	}
	if _, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), s.d.StripeWebhookSecret,
		webhook.ConstructEventOptions{Tolerance: stripeTolerance, IgnoreAPIVersionMismatch: true}); err != nil {
		s.log.WarnContext(r.Context(), "stripe webhook refused", "err", err)
		http.Error(w, "invalid Stripe-Signature", http.StatusBadRequest)
		return
	}
	var ev stripeEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		http.Error(w, "malformed event", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	status, known := intentEvents[ev.Type]
	refundEvent := refundEvents[ev.Type]
	disputeEvent := disputeEvents[ev.Type]
	if !known && !refundEvent && !disputeEvent {
		// No event of ours: acknowledged, so that Stripe does not retry
		// it, and ignored.
		w.WriteHeader(http.StatusOK)
		return
	}
	seen, err := s.d.Store.GatewayEventSeen(ctx, ev.ID)
	if err != nil {
		s.log.ErrorContext(ctx, "looking up a stripe event", "event", ev.ID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if seen {
		// A redelivery: acknowledged, not acted on again.
		w.WriteHeader(http.StatusOK)
		return
	}
	if refundEvent {
		s.stripeRefundWebhook(w, r, ev.ID, ev.Type, body)
		return
	}
	if disputeEvent {
		s.stripeDisputeWebhook(w, r, ev.ID, ev.Type, body)
		return
	}
	obj := ev.Data.Object
	payID, err := s.eventPaymentID(ctx, obj.Metadata, obj.ID)
	if err != nil {
		// Not knowing is not "unknown payment": let the gateway retry.
		s.log.ErrorContext(ctx, "looking up a stripe event's payment", "event", ev.ID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if payID == "" {
		s.log.InfoContext(ctx, "stripe event for an unknown payment", "event", ev.ID, "intent", obj.ID)
		w.WriteHeader(http.StatusOK)
		return
	}
	// Stripe writes amounts in its own units (5 ISK is 500); the payment's
	// workflow counts in ISO minor units.
	capturable, received := obj.AmountCapturable, obj.AmountReceived
	if obj.Currency != "" {
		units := gateway.UnitsFor(s.d.GatewayName, obj.Currency)
		c, cerr := units.FromGateway(capturable)
		rcv, rerr := units.FromGateway(received)
		if err := errors.Join(cerr, rerr); err != nil {
			// Not a state any payment of ours can be in: acknowledged (a
			// retry cannot change it) and left to a person.
			s.log.ErrorContext(ctx, "RECONCILE: a stripe event with amounts that cannot be read exactly", "event", ev.ID, "payment_id", payID, "err", err)
			w.WriteHeader(http.StatusOK)
			return
		}
		capturable, received = c, rcv
	}
	sig := payment.GatewayEvent{EventID: ev.ID, Type: ev.Type, Reference: obj.ID, Status: status,
		AmountCapturable: capturable, AmountReceived: received}
	if e := obj.LastPaymentError; e != nil && sig.Status == gateway.StatusFailed {
		sig.FailureCode, sig.FailureMessage = e.Code, e.Message
		if e.DeclineCode != "" {
			sig.FailureCode = e.DeclineCode
		}
	}
	// Signal first, then remember the event: a crash in between makes Stripe
	// redeliver, and the workflow ignores an event id it has seen.
	err = s.d.Temporal.SignalWorkflow(ctx, payment.WorkflowID(payID), "", payment.SignalGatewayEvent, sig)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		err = s.reconcileFinished(ctx, payID, sig)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "delivering a stripe event", "event", ev.ID, "payment_id", payID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	s.recordStripeEvent(ctx, ev.ID, ev.Type, payID)
	w.WriteHeader(http.StatusOK)
}

// eventPaymentID is the payment a gateway event concerns: the one its
// object's metadata names (payment_id, which every intent we make
// carries), or the one whose intent is intentRef; "" when neither is
// known. An error is a lookup that failed: the gateway should retry.
func (s *Server) eventPaymentID(ctx context.Context, metadata map[string]string, intentRef string) (string, error) {
	if id := metadata["payment_id"]; id != "" {
		return id, nil
	}
	if intentRef == "" {
		return "", nil
	}
	p, err := s.d.Store.PaymentByGatewayReference(ctx, intentRef)
	switch {
	case err == nil:
		return p.ID, nil
	case errors.Is(err, errs.ErrNotFound):
		return "", nil
	}
	return "", err
}

// recordStripeEvent remembers an event that was handed to its workflow, so
// that a redelivery is acknowledged and not acted on again. A failure is
// only logged: the event was delivered, and a redelivery is one the
// workflow tolerates.
func (s *Server) recordStripeEvent(ctx context.Context, id, typ, paymentID string) {
	if _, err := s.d.Store.RecordGatewayEvent(ctx, id, typ, paymentID, s.now()); err != nil && errs.KindOf(err) != errs.KindAlreadyExists {
		s.log.ErrorContext(ctx, "recording a stripe event", "event", id, "err", err)
	}
}

// reconcileFinished handles an event about a payment whose workflow has
// ended. An event that agrees with the recorded outcome is old news; one
// that contradicts it (money taken for a payment recorded as failed, say)
// goes to the payment's reconciliation workflow, which refunds or records
// it (payment.Reconcile). An error makes the gateway deliver it again.
func (s *Server) reconcileFinished(ctx context.Context, payID string, sig payment.GatewayEvent) error {
	p, err := s.d.Store.PaymentByID(ctx, payID)
	switch {
	case errors.Is(err, errs.ErrNotFound):
		s.log.InfoContext(ctx, "stripe event for an unknown payment", "event", sig.EventID, "payment_id", payID)
		return nil
	case err != nil:
		return err
	}
	if payment.Contradiction(p.Status, sig.Status) == "" {
		if !payment.IsFinal(p.Status) {
			s.log.ErrorContext(ctx, "stripe event for a payment whose workflow is gone before it finished",
				"event", sig.EventID, "payment_id", payID, "recorded", p.Status, "reported", sig.Status)
			return nil
		}
		s.log.InfoContext(ctx, "stripe event for a finished payment", "event", sig.EventID, "payment_id", payID)
		return nil
	}
	s.log.WarnContext(ctx, "stripe event contradicts a finished payment; reconciling",
		"event", sig.EventID, "payment_id", payID, "recorded", p.Status, "reported", sig.Status)
	wid := payment.ReconcileWorkflowID(payID)
	_, err = s.d.Temporal.SignalWithStartWorkflow(ctx, wid, payment.SignalGatewayEvent, sig, client.StartWorkflowOptions{
		ID:                    wid,
		TaskQueue:             s.d.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, payment.ReconcileWorkflowName, payment.ReconcileInput{PaymentID: payID})
	return err
}

// intentEvents are the PaymentIntent events that change a payment, with the
// status each one reports: a whitelist. Every other event
// (payment_intent.created, .partially_funded, charge.* but the refund
// events of refundEvents, ...) is acknowledged and ignored, whatever status
// its object shows: a created intent says requires_payment_method, which
// after a decline would mean "failed", and must not fail a payment that is
// still being charged.
var intentEvents = map[string]gateway.Status{
	"payment_intent.succeeded":                 gateway.StatusSucceeded,
	"payment_intent.amount_capturable_updated": gateway.StatusRequiresCapture,
	"payment_intent.payment_failed":            gateway.StatusFailed,
	"payment_intent.canceled":                  gateway.StatusCanceled,
	"payment_intent.requires_action":           gateway.StatusRequiresAction,
	"payment_intent.processing":                gateway.StatusProcessing,
}
