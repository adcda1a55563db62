package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
)

// EventRefundUpdated is the event the sandbox sends when a refund fails
// after it answered succeeded (pm_card_refundFail), as Stripe does.
const EventRefundUpdated = "charge.refund.updated"

// RefundFailureExpiredOrCanceledCard is the failure_reason of a failed
// refund of pm_card_refundFail, Stripe's for its test card 4000 0000 0000
// 5126.
const RefundFailureExpiredOrCanceledCard = "expired_or_canceled_card"

const (
	// eventAttempts bounds the deliveries of a refund's failure event.
	eventAttempts = 6
	// defaultEventRetryBackoff is the first pause between two of them;
	// it doubles after each, so the last comes about 8 s after the first.
	defaultEventRetryBackoff = 250 * time.Millisecond
	// failLaterTimeout bounds the work of a refund's late failure once its
	// delay is over: the change of the state and every delivery.
	failLaterTimeout = time.Minute
)

// RefundFailedEventID is the id of the event that tells of the failure of
// refund refundRef (a refund of pm_card_refundFail): the same on every
// delivery, so the receiver's dedupe recognises a repeated one.
func RefundFailedEventID(refundRef string) string {
	return "evt_sbx_" + digest("refund_failed|"+refundRef)
}

// failRefundLater fails the refund refundID of the intent ref, and delivers
// the event, from a goroutine, after the configured delay.
func (s *Sandbox) failRefundLater(ref, refundID string) {
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		if s.refundFailureDelay > 0 {
			time.Sleep(s.refundFailureDelay)
		}
		ctx, cancel := context.WithTimeout(context.Background(), failLaterTimeout)
		defer cancel()
		if err := s.failRefund(ctx, ref, refundID); err != nil {
			s.log.WarnContext(ctx, "sandbox: a refund's late failure was not delivered", "reference", ref,
				"refund", refundID, "event_id", RefundFailedEventID(refundID), "error", err)
		}
	}()
}

// failRefund records the refund refundID of the intent ref as failed, with
// the failure_reason it was made to fail with, unless it has failed
// already, and gives its amount back to the intent; the change comes first,
// so that whoever hears of the event and asks sees the same state. Then it
// delivers the event of the failure, again if it was delivered before.
func (s *Sandbox) failRefund(ctx context.Context, ref, refundID string) error {
	var failedNow bool
	in, found, err := update(ctx, s, ref, func(in *intent) (bool, error) {
		failedNow = false
		rf := in.refund(refundID)
		switch {
		case rf == nil:
			return false, stateError(fmt.Errorf("intent %s holds no refund %s", ref, refundID))
		case rf.FailsWith == "" || rf.Status != string(gateway.RefundSucceeded):
			return false, nil // not one that fails, or failed already
		}
		rf.Status = string(gateway.RefundFailed)
		rf.FailureReason = rf.FailsWith
		rf.Failed = s.now().Unix()
		in.AmountRefunded -= rf.Amount
		failedNow = true
		return true, nil
	})
	switch {
	case err != nil:
		return err
	case !found:
		return noSuchIntent(ref)
	}
	rf := in.refund(refundID)
	if rf.Status != string(gateway.RefundFailed) {
		return nil
	}
	if failedNow {
		s.log.InfoContext(ctx, "sandbox: refund failed", "reference", ref, "refund", refundID,
			"payment_id", rf.PaymentID, "failure_reason", rf.FailureReason)
	}
	ev := refundFailedEvent(&in, *rf)
	payload, err := json.Marshal(ev)
	if err != nil { // plain structs: cannot happen, but never send half an event
		return fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return s.deliverRetrying(ctx, ev.ID, ev.Type, payload)
}

// deliverRetrying delivers an event to the webhook route, trying up to
// eventAttempts times, with a pause that doubles between two attempts, as
// long as the route does not answer 2xx: the receiver answers 503 when it
// cannot act on the event yet.
func (s *Sandbox) deliverRetrying(ctx context.Context, eventID, typ string, payload []byte) error {
	target := s.publicURL + WebhookPath
	pause := s.eventRetryBackoff
	for attempt := 1; ; attempt++ {
		err := s.deliver(ctx, target, payload)
		if err == nil {
			s.log.InfoContext(ctx, "sandbox: event delivered", "event_id", eventID, "type", typ, "attempt", attempt)
			return nil
		}
		if attempt == eventAttempts {
			return fmt.Errorf("POST %s, %d attempts: %w", target, attempt, err)
		}
		s.log.DebugContext(ctx, "sandbox: event not delivered; trying again", "event_id", eventID, "type", typ,
			"url", target, "attempt", attempt, "error", err)
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("POST %s, %d attempts: %w (last: %w)", target, attempt, ctx.Err(), err)
		case <-timer.C:
		}
		pause *= 2
	}
}

// refund returns the refund id of the intent, nil if it has none.
func (in *intent) refund(id string) *refundState {
	for i := range in.Refunds {
		if in.Refunds[i].ID == id {
			return &in.Refunds[i]
		}
	}
	return nil
}

// stripeRefund is the part of Stripe's Refund object the sandbox sends.
type stripeRefund struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	Amount        int64             `json:"amount"`
	Charge        *string           `json:"charge"`
	Created       int64             `json:"created"`
	Currency      string            `json:"currency"`
	FailureReason *string           `json:"failure_reason"`
	Metadata      map[string]string `json:"metadata"`
	PaymentIntent string            `json:"payment_intent"`
	Reason        *string           `json:"reason"`
	Status        string            `json:"status"`
}

// refundFailedEvent is the event about the failed refund rf of in, built
// from the stored state alone, so that every delivery sends the same.
func refundFailedEvent(in *intent, rf refundState) event[stripeRefund] {
	obj := stripeRefund{
		ID:            rf.ID,
		Object:        "refund",
		Amount:        rf.Amount,
		Created:       rf.Created,
		Currency:      strings.ToLower(in.Currency),
		Metadata:      map[string]string{},
		PaymentIntent: in.ID,
		Status:        rf.Status,
	}
	if rf.FailureReason != "" {
		obj.FailureReason = &rf.FailureReason
	}
	if rf.Reason != "" {
		obj.Reason = &rf.Reason
	}
	if rf.PaymentID != "" {
		obj.Metadata["payment_id"] = rf.PaymentID
	}
	// In the gateway's units, as Stripe's events are (5 ISK is 500).
	if v, err := gateway.UnitsFor(Name, in.Currency).ToGateway(obj.Amount); err == nil {
		obj.Amount = v
	}
	return event[stripeRefund]{
		ID:         RefundFailedEventID(rf.ID),
		Object:     "event",
		APIVersion: APIVersion,
		Created:    rf.Failed,
		Data:       eventData[stripeRefund]{Object: obj},
		Type:       EventRefundUpdated,
	}
}

// RetrieveRefund returns the refund refundRef as it stands now, as Stripe's
// GET /v1/refunds/{id} does: a refund of pm_card_refundFail is failed, with
// its failure_reason, once it has failed, whatever its creation answered.
// An unknown refund is refused with resource_missing (404).
func (s *Sandbox) RetrieveRefund(ctx context.Context, refundRef string) (gateway.RefundResult, error) {
	if err := s.reachable(ctx); err != nil {
		return gateway.RefundResult{}, err
	}
	kid, ok := strings.CutPrefix(refundRef, RefundPrefix)
	if !ok || !validDigest(kid) {
		return gateway.RefundResult{}, noSuchRefund(refundRef)
	}
	// The refund's reference is its key's; the key's claim names the
	// intent that holds it.
	c, found, err := get[claim](ctx, s, claimPrefix+kid)
	switch {
	case err != nil:
		return gateway.RefundResult{}, err
	case !found:
		return gateway.RefundResult{}, noSuchRefund(refundRef)
	}
	in, found, err := s.loadIntent(ctx, c.Object)
	switch {
	case err != nil:
		return gateway.RefundResult{}, err
	case !found:
		return gateway.RefundResult{}, noSuchRefund(refundRef)
	}
	rf := in.refund(refundRef)
	if rf == nil {
		return gateway.RefundResult{}, noSuchRefund(refundRef)
	}
	return rf.result(), nil
}

// noSuchRefund is Stripe's answer for an unknown refund id.
func noSuchRefund(ref string) error {
	return invalid(http.StatusNotFound, "resource_missing", fmt.Sprintf("No such refund: '%s'", ref))
}
