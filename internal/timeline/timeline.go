// Package timeline is the durable record of what happened to a payment, a
// refund or a dispute: one entry per step, oldest first, as GetDispute and
// GetTransaction show it.
package timeline

import "time"

// Entry is one step: when, what, who and why.
type Entry struct {
	At time.Time `json:"at"`
	// Kind is a stable machine-readable name, <object>.<step>, named as the
	// notification events are where one exists (payment.succeeded,
	// refund.failed, dispute.opened, ...).
	Kind string `json:"kind"`
	// Actor is an account id, "gateway" (the payment gateway, or the card
	// network through it) or "system" (the object's workflow: timers,
	// deadlines, money moved).
	Actor string `json:"actor"`
	Note  string `json:"note,omitempty"`
}

// Actors that are not accounts.
const (
	ActorSystem  = "system"
	ActorGateway = "gateway"
)

// Append adds e unless the last entry already has its kind: the store
// appends when a save changes an object's state, and a save repeated (a
// retried local activity, a late attempt) must not record the step twice.
func Append(entries []Entry, e Entry) []Entry {
	if n := len(entries); n > 0 && entries[n-1].Kind == e.Kind {
		return entries
	}
	return append(entries, e)
}
