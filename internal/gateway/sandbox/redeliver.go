package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/payments-platform/payments/internal/gateway"
)

// Redeliver delivers again every event the sandbox has recorded for the
// intent reference: the events of its dispute and the failures of its
// refunds, each with its id and content as first sent. Stripe delivers an
// event at least once, late when the receiver was down, and in no
// guaranteed order; the chaos suite uses Redeliver to make the sandbox do
// all three: shuffle, when not nil, orders the events first (as
// rand.Shuffle takes them). It returns how many events were delivered; an
// event the webhook route would not take (after the usual retries) is an
// error, the others are still delivered.
func (s *Sandbox) Redeliver(ctx context.Context, reference string, shuffle func(n int, swap func(i, j int))) (int, error) {
	if err := checkReference(reference); err != nil {
		return 0, err
	}
	in, found, err := get[intent](ctx, s, reference)
	switch {
	case err != nil:
		return 0, err
	case !found:
		return 0, noSuchIntent(reference)
	}
	type recorded struct {
		id, typ string
		payload []byte
	}
	var events []recorded
	add := func(id, typ string, ev any) error {
		payload, err := json.Marshal(ev)
		if err != nil { // plain structs: cannot happen
			return fmt.Errorf("encode event %s: %w", id, err)
		}
		events = append(events, recorded{id, typ, payload})
		return nil
	}
	if in.Dispute != nil {
		for _, e := range in.Dispute.Events {
			if ev, ok := disputeEvent(&in, e.ID); ok {
				if err := add(ev.ID, ev.Type, ev); err != nil {
					return 0, err
				}
			}
		}
	}
	for _, rf := range in.Refunds {
		if rf.Status == string(gateway.RefundFailed) {
			ev := refundFailedEvent(&in, rf)
			if err := add(ev.ID, ev.Type, ev); err != nil {
				return 0, err
			}
		}
	}
	if shuffle != nil {
		shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	}
	var errs []error
	n := 0
	for _, e := range events {
		if err := s.deliverRetrying(ctx, e.id, e.typ, e.payload); err != nil {
			errs = append(errs, fmt.Errorf("event %s (%s): %w", e.id, e.typ, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Charge is what the provider holds of one intent made for a payment, as
// an auditor compares it with the platform's books.
type Charge struct {
	Reference string
	Status    gateway.Status
	// Received, Refunded (refunds that have not failed) and Disputed (what
	// a dispute the cardholder has not lost withdrew) are in ISO minor
	// units of Currency.
	Received, Refunded, Disputed int64
	Currency                     string
	// Refunds counts the refunds made, failed ones included.
	Refunds int
	// DisputeStatus is its dispute's status, "" without one.
	DisputeStatus gateway.DisputeStatus
}

// Charges lists every intent the sandbox made for paymentID, oldest first:
// a payment charged once has at most one that received money, whatever
// retries and races reached the provider.
func (s *Sandbox) Charges(ctx context.Context, paymentID string) ([]Charge, error) {
	intents, err := s.paymentIntents(ctx, paymentID)
	if err != nil {
		return nil, err
	}
	out := make([]Charge, 0, len(intents))
	for _, in := range intents {
		c := Charge{Reference: in.ID, Status: gateway.Status(in.Status), Received: in.AmountReceived,
			Refunded: in.AmountRefunded, Currency: in.Currency, Refunds: len(in.Refunds)}
		if d := in.Dispute; d != nil {
			c.DisputeStatus = gateway.DisputeStatus(d.Status)
			if d.Status != string(gateway.DisputeWon) {
				c.Disputed = d.Amount
			}
		}
		out = append(out, c)
	}
	return out, nil
}
