package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	"go.temporal.io/api/serviceerror"

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
// and payment_intent events go to the payment's workflow as a signal.
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
	if !strings.HasPrefix(ev.Type, "payment_intent.") {
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
	obj := ev.Data.Object
	payID := obj.Metadata["payment_id"]
	if payID == "" {
		p, err := s.d.Store.PaymentByGatewayReference(ctx, obj.ID)
		switch {
		case err == nil:
			payID = p.ID
		case !errors.Is(err, errs.ErrNotFound):
			// Not knowing is not "unknown payment": let the gateway retry.
			s.log.ErrorContext(ctx, "looking up a stripe event's payment", "event", ev.ID, "err", err)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	if payID == "" {
		s.log.InfoContext(ctx, "stripe event for an unknown payment", "event", ev.ID, "intent", obj.ID)
		w.WriteHeader(http.StatusOK)
		return
	}
	sig := payment.GatewayEvent{EventID: ev.ID, Type: ev.Type, Status: intentStatus(ev.Type, obj.Status),
		AmountCapturable: obj.AmountCapturable, AmountReceived: obj.AmountReceived}
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
	switch {
	case errors.As(err, &notFound):
		s.reconcileFinished(ctx, ev.ID, payID, sig.Status)
	case err != nil:
		s.log.ErrorContext(ctx, "delivering a stripe event", "event", ev.ID, "payment_id", payID, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if _, err := s.d.Store.RecordGatewayEvent(ctx, ev.ID, ev.Type, payID, s.now()); err != nil && errs.KindOf(err) != errs.KindAlreadyExists {
		s.log.ErrorContext(ctx, "recording a stripe event", "event", ev.ID, "err", err)
	}
	w.WriteHeader(http.StatusOK)
}

// reconcileFinished handles an event about a payment whose workflow has
// ended. Agreeing events are old news; one that contradicts the recorded
// outcome (money taken for a payment recorded as failed) needs a person, so
// it is logged as an error for reconciliation.
func (s *Server) reconcileFinished(ctx context.Context, eventID, payID string, reported gateway.Status) {
	p, err := s.d.Store.PaymentByID(ctx, payID)
	if err != nil {
		s.log.ErrorContext(ctx, "stripe event for a payment that cannot be read", "event", eventID, "payment_id", payID, "err", err)
		return
	}
	if reported == "" || string(reported) == string(p.Status) ||
		(reported == gateway.StatusRequiresCapture && p.AmountReceived > 0) {
		s.log.InfoContext(ctx, "stripe event for a finished payment", "event", eventID, "payment_id", payID)
		return
	}
	s.log.ErrorContext(ctx, "RECONCILE: the gateway reports a state that contradicts a finished payment",
		"event", eventID, "payment_id", payID, "recorded", p.Status, "reported", reported)
}

// intentStatus maps a PaymentIntent event to the gateway status it reports;
// "" for events that say nothing about the status.
func intentStatus(typ, status string) gateway.Status {
	switch typ {
	case "payment_intent.succeeded":
		return gateway.StatusSucceeded
	case "payment_intent.amount_capturable_updated":
		return gateway.StatusRequiresCapture
	case "payment_intent.payment_failed":
		return gateway.StatusFailed
	case "payment_intent.canceled":
		return gateway.StatusCanceled
	case "payment_intent.requires_action":
		return gateway.StatusRequiresAction
	}
	switch status {
	case "requires_payment_method":
		return gateway.StatusFailed
	case "succeeded", "requires_capture", "requires_action", "canceled", "processing":
		return gateway.Status(status)
	}
	return ""
}
