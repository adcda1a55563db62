// Package gateway is the boundary to the payment provider. Two
// implementations exist, chosen explicitly (PAYMENTS_GATEWAY): Stripe
// (stripe-go), and a built-in sandbox that behaves like Stripe's test mode so
// that `dev` and the tests need no keys and no network.
//
// Every call that changes something carries an idempotency key derived from
// the workflow id, a stable step name and the step's attempt number, so an
// activity retried after a crash never charges twice, and a step tried again
// after a refusal is not answered with the refusal the provider saved for the
// old key.
//
// Amounts cross this boundary in ISO 4217 minor units; each gateway converts
// exactly to its own units (see Units).
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
	// Gateway names the gateway the payment was made with (Gateway.Name);
	// a worker refuses a request for a gateway it does not have. Every
	// request below carries it too; "" (a request from a workflow older
	// than the field) is not checked.
	Gateway        string
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
	Gateway string
	// Currency is the payment's currency, for converting amounts.
	Currency       string
	IdempotencyKey string
	Reference      string // the gateway's id (pi_...)
	Amount         int64  // to capture; the rest is released
}

// CancelRequest cancels a payment that has not succeeded.
type CancelRequest struct {
	Gateway        string
	Currency       string
	IdempotencyKey string
	Reference      string
	Reason         string
}

// FindRequest asks what the gateway knows of the intent made for a payment.
type FindRequest struct {
	Gateway string
	// PaymentID is our pay_ id, which every intent carries in its metadata.
	PaymentID string
	// Reference is the gateway's id of the intent, when known; it is looked
	// up directly, without a search.
	Reference string
	// Currency is the payment's currency, for converting amounts.
	Currency string
}

// VoidRequest makes sure no intent of a payment can still take money: the
// intent found for the payment, if any and not final, is canceled.
type VoidRequest struct {
	Gateway        string
	IdempotencyKey string
	PaymentID      string
	Reference      string
	Currency       string
	Reason         string
}

// Found is the answer of Find and Void.
type Found struct {
	// Exists is false only when the gateway answered that it holds no
	// intent for the payment; an error, not Exists false, is returned when
	// it could not tell.
	Exists bool
	// Result is the intent's state when Exists.
	Result Result
}

// RefundRequest gives money the gateway received for a payment back to the
// customer.
type RefundRequest struct {
	Gateway        string
	IdempotencyKey string
	PaymentID      string
	// Reference is the payment's intent at the gateway.
	Reference string
	// Amount is in ISO minor units of Currency.
	Amount   int64
	Currency string
	// Reason is one of duplicate, fraudulent, requested_by_customer, or ""
	// (Stripe's refund reasons).
	Reason string
}

// RefundStatus is a refund's status, as Stripe names it.
type RefundStatus string

// The statuses of a refund.
const (
	RefundPending   RefundStatus = "pending"
	RefundSucceeded RefundStatus = "succeeded"
	RefundFailed    RefundStatus = "failed"
	RefundCanceled  RefundStatus = "canceled"
)

// RefundResult is the gateway's view of a refund.
type RefundResult struct {
	// Reference is the gateway's id of the refund (re_...).
	Reference string
	Status    RefundStatus
	// Amount is in ISO minor units.
	Amount      int64
	FailureCode string
}

// DisputeEvidence is the respondent's case as the gateway takes it: the
// text fields of Stripe's dispute evidence. Explanation has no field of its
// own at Stripe; the Stripe gateway sends it at the head of
// uncategorized_text.
type DisputeEvidence struct {
	Explanation            string
	ProductDescription     string
	CustomerCommunication  string
	ShippingTrackingNumber string
	RefundPolicy           string
	UncategorizedText      string
}

// DisputeUpdateRequest stages (Submit false) or submits (Submit true) the
// evidence of a dispute the card network opened.
type DisputeUpdateRequest struct {
	Gateway        string
	IdempotencyKey string
	// Reference is the gateway's id of the dispute (Stripe's dp_...).
	Reference string
	// Currency is the payment's, for converting amounts in the answer.
	Currency string
	Evidence DisputeEvidence
	Submit   bool
}

// DisputeCloseRequest concedes a dispute the card network opened: the
// merchant accepts it, and the gateway records it lost (Stripe's close).
type DisputeCloseRequest struct {
	Gateway        string
	IdempotencyKey string
	// Reference is the gateway's id of the dispute (Stripe's dp_...).
	Reference string
	// Currency is the payment's, for converting amounts in the answer.
	Currency string
}

// DisputeStatus is a dispute's status, as Stripe names it.
type DisputeStatus string

// The statuses of a dispute at the gateway.
const (
	DisputeWarningNeedsResponse DisputeStatus = "warning_needs_response"
	DisputeWarningUnderReview   DisputeStatus = "warning_under_review"
	DisputeWarningClosed        DisputeStatus = "warning_closed"
	DisputeNeedsResponse        DisputeStatus = "needs_response"
	DisputeUnderReview          DisputeStatus = "under_review"
	DisputeWon                  DisputeStatus = "won"
	DisputeLost                 DisputeStatus = "lost"
)

// DisputeResult is the gateway's view of a dispute.
type DisputeResult struct {
	// Reference is the gateway's id of the dispute (dp_...).
	Reference string
	// PaymentReference is the disputed payment's intent (pi_...).
	PaymentReference string
	Status           DisputeStatus
	// Amount is in ISO minor units of Currency (upper case).
	Amount   int64
	Currency string
	// Reason is the network's reason code as Stripe names it (fraudulent,
	// duplicate, product_not_received, ...).
	Reason string
	// DueBy is when evidence must be submitted; zero when none is due.
	DueBy time.Time
	// SubmissionCount is how many times evidence was submitted.
	SubmissionCount int64
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
	// Find returns the intent made for a payment: by reference when one is
	// known, otherwise by searching the payment id in the intents' metadata.
	// Found.Exists is false only when the gateway answered that there is
	// none.
	Find(ctx context.Context, r FindRequest) (Found, error)
	// Void cancels the payment's intent unless it is final, so that a charge
	// whose outcome was never learned cannot capture later, and returns its
	// state afterwards (canceled, or succeeded or failed if it had finished).
	Void(ctx context.Context, r VoidRequest) (Found, error)
	// Refund refunds part or all of what a payment received.
	Refund(ctx context.Context, r RefundRequest) (RefundResult, error)
	// UpdateDispute stages or submits evidence for a dispute the card
	// network opened, and returns the dispute as it stands after.
	UpdateDispute(ctx context.Context, r DisputeUpdateRequest) (DisputeResult, error)
	// CloseDispute concedes a dispute the card network opened (it is then
	// lost) and returns the dispute as it stands after.
	CloseDispute(ctx context.Context, r DisputeCloseRequest) (DisputeResult, error)
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
