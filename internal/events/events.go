// Package events names the notification events of API.md: which steps of a
// payment's, refund's or dispute's timeline are announced, to whom an
// endpoint subscribes, and which email category each belongs to.
package events

import (
	"slices"
	"strings"
)

// Types are the event types, as API.md lists them. Each is the kind of the
// timeline step it announces (internal/timeline).
var Types = []string{
	"payment.succeeded",
	"payment.failed",
	"payment.canceled",
	"payment.requires_action",
	"payment.captured",
	"refund.created",
	"refund.succeeded",
	"refund.failed",
	"dispute.opened",
	"dispute.evidence_submitted",
	"dispute.response_due_soon",
	"dispute.won",
	"dispute.lost",
	"dispute.accepted",
	"dispute.withdrawn",
}

// All is the subscription to every type.
const All = "*"

// IsType reports whether t is an event type.
func IsType(t string) bool {
	return slices.Contains(Types, t)
}

// Subscribed reports whether an endpoint with enabled event types receives
// events of type t.
func Subscribed(enabled []string, t string) bool {
	return slices.Contains(enabled, All) || slices.Contains(enabled, t)
}

// Category is the email category of event type t, which an account can
// turn email off for (UpdateMe: payments, refunds, disputes): its object's
// plural.
func Category(t string) string {
	object, _, _ := strings.Cut(t, ".")
	return object + "s"
}
