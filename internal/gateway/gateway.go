// Package gateway is the boundary to the payment provider. Two
// implementations exist: Stripe (stripe-go) when STRIPE_SECRET_KEY is set, and
// a built-in sandbox that behaves like Stripe's test mode so that `dev` and
// the tests need no keys and no network.
//
// Every call carries an idempotency key derived from the workflow id and a
// stable step name, so an activity retried after a crash never charges twice.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is a PaymentIntent's status, as Stripe names it.
type Status string

// The statuses a gateway reports.
const (
	StatusProcessing      Status = "processing"
	StatusRequiresAction  Status = "requires_action"
	StatusRequiresCapture Status = "requires_capture"
	StatusSucceeded       Status = "succeeded"
	StatusFailed          Status = "failed" // Stripe: requires_payment_method after a decline
	StatusCanceled        Status = "canceled"
)

// MethodDetails describes the instrument without card data beyond brand,
// last four digits and expiry.
type MethodDetails struct {
	Type     string // "card" or "mobile_money"
	Brand    string
	Last4    string
	ExpMonth int32
	ExpYear  int32
	Provider string // mobile money provider
}

// CreateRequest creates and confirms a payment at the gateway.
type CreateRequest struct {
	IdempotencyKey string
	PaymentID      string // our pay_ id, sent as metadata so webhooks find the payment
	Amount         int64  // minor units
	Currency       string // upper-case ISO 4217
	PaymentMethod  string // gateway token such as pm_card_visa, or mm:<provider>:<msisdn>
	ManualCapture  bool
	Description    string
	// ReturnURL is where the customer's browser goes after 3-D Secure.
	ReturnURL string
}

// CaptureRequest captures an authorized payment.
type CaptureRequest struct {
	IdempotencyKey string
	Reference      string // the gateway's id (pi_...)
	Amount         int64  // to capture; the rest is released
}

// CancelRequest cancels a payment that has not succeeded.
type CancelRequest struct {
	IdempotencyKey string
	Reference      string
	Reason         string
}

// Result is the gateway's view of a payment after a call.
type Result struct {
	Reference        string
	Status           Status
	Amount           int64
	AmountCapturable int64
	AmountReceived   int64
	Method           MethodDetails
	// RedirectURL is set when Status is requires_action.
	RedirectURL string
	// FailureCode and FailureMessage are set when Status is failed, e.g.
	// card_declined / insufficient_funds / expired_card.
	FailureCode    string
	FailureMessage string
}

// Gateway is a payment provider.
type Gateway interface {
	// Name is "stripe" or "sandbox".
	Name() string
	// CreatePayment creates and confirms a payment. A decline is not an
	// error: it is a Result with Status failed and a failure code.
	CreatePayment(ctx context.Context, r CreateRequest) (Result, error)
	// Capture captures an authorized payment, in full or in part.
	Capture(ctx context.Context, r CaptureRequest) (Result, error)
	// Cancel cancels a payment that has not succeeded.
	Cancel(ctx context.Context, r CancelRequest) (Result, error)
	// Retrieve returns the payment's current state.
	Retrieve(ctx context.Context, reference string) (Result, error)
}

// ErrorKind classifies gateway errors once, at the boundary.
type ErrorKind int

// The kinds of gateway errors.
const (
	// Transient errors (network, 5xx, lock timeouts) are retried.
	Transient ErrorKind = iota
	// RateLimited errors are retried after RetryAfter.
	RateLimited
	// Invalid requests (bad parameters, wrong state) are never retried.
	Invalid
)

// Error is a classified gateway failure.
type Error struct {
	Kind       ErrorKind
	Code       string // the provider's error code, if any
	Message    string
	StatusCode int
	RetryAfter time.Duration
	Err        error
}

// Error describes the failure for logs.
func (e *Error) Error() string {
	return fmt.Sprintf("gateway: %s (code %q, http %d)", e.Message, e.Code, e.StatusCode)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a gateway error; unknown errors are transient.
func KindOf(err error) ErrorKind {
	var ge *Error
	if errors.As(err, &ge) {
		return ge.Kind
	}
	return Transient
}

// LooksLikeID reports whether s has the shape of a provider object id (a
// lower-case prefix, an underscore, then letters, digits and underscores),
// so that it is safe to repeat in a message: a card number never has it.
func LooksLikeID(s string) bool {
	prefix, rest, ok := strings.Cut(s, "_")
	if !ok || prefix == "" || rest == "" || len(s) > 255 {
		return false
	}
	for i := range len(prefix) {
		if prefix[i] < 'a' || prefix[i] > 'z' {
			return false
		}
	}
	for i := range len(rest) {
		c := rest[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
