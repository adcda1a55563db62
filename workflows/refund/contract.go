// Package refund is the durable process behind every refund: one workflow
// per refund (`refund/<re_id>`), the refund's single writer from its first
// row to its final state.
//
// The payment's refundable balance outlives the payment's workflow by
// months and is shared by every refund (and dispute) of the payment, so it
// cannot belong to any one workflow. Its single writer is the database: the
// refund's workflow takes its amount with one conditional UPDATE
// (amount_received - amount_refunded - amount_disputed >= amount), in the
// transaction that inserts the refund (store.CreateRefund), and gives it
// back in the transaction that records the refund as failed or canceled
// (store.SaveRefund); a CHECK constraint holds the sum to what was received
// whatever code runs. We chose this over a per-payment coordinator workflow
// (balance/<pay_id>) because a reservation then costs one row lock instead
// of an Update round trip through Temporal and a second workflow per
// refund, it holds on MySQL and SQLite alike under any concurrency, and
// disputes take their part of the same balance with the same UPDATE.
//
// The workflow inserts the refund itself, as its first step, rather than
// the API before starting it: a refund row then never exists without the
// workflow that will finish it, even if the API dies between the two. A
// refund the balance refuses leaves no row: the refusal is the answer of
// the caller's update, and the run completes (RefundStatus "refused").
package refund

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/internal/gateway"
)

// Names and ids other code relies on.
const (
	// WorkflowName is the registered workflow type.
	WorkflowName = "refund.Refund"
	// UpdateAwaitResult returns the refund once the gateway has answered
	// (or the balance refused it: an error of type ErrTypeFailedPrecondition).
	UpdateAwaitResult = "await_result"
	// UpdateAwaitRecorded returns the refund once its row is stored.
	UpdateAwaitRecorded = "await_recorded"
	// SignalGatewayEvent delivers a gateway's webhook event about the refund.
	SignalGatewayEvent = "gateway_event"
	// QueryState returns the live state.
	QueryState = "state"

	// ErrTypeFailedPrecondition marks a refund the payment's state or
	// balance refuses (over-refund, an uncaptured payment).
	ErrTypeFailedPrecondition = activities.ErrTypeFailedPrecondition
	// ErrTypeInvalidArgument marks a refund the request makes impossible
	// (another currency than the payment's).
	ErrTypeInvalidArgument = activities.ErrTypeInvalidArgument
	// ErrTypeNotFound marks a refund of a payment that does not exist or
	// is another merchant's.
	ErrTypeNotFound = activities.ErrTypeNotFound

	// PendingAttentionAfter is how long a refund may stay pending at the
	// gateway before operators are asked to look (NeedsAttention); the
	// workflow keeps waiting for the gateway's answer.
	PendingAttentionAfter = 7 * 24 * time.Hour
)

// WorkflowID is the refund's workflow id, derived from the business key.
func WorkflowID(refundID string) string { return "refund/" + refundID }

// Search attributes the workflow keeps current, for operators in the
// Temporal UI. PaymentId, MerchantId and NeedsAttention are the payment
// workflow's own keys, so one query finds a payment and its refunds.
var (
	AttrRefundID       = temporal.NewSearchAttributeKeyKeyword("RefundId")
	AttrPaymentID      = temporal.NewSearchAttributeKeyKeyword("PaymentId")
	AttrMerchantID     = temporal.NewSearchAttributeKeyKeyword("MerchantId")
	AttrStatus         = temporal.NewSearchAttributeKeyKeyword("RefundStatus")
	AttrNeedsAttention = temporal.NewSearchAttributeKeyBool("NeedsAttention")
)

// SearchAttributeTypes names the attributes this package adds to the
// payment workflow's, with their types, for registration.
var SearchAttributeTypes = map[string]string{"RefundId": "Keyword", "RefundStatus": "Keyword"}

// StartAttributes are the search attributes a refund starts with; the
// starter passes them in the start options (no history event).
func StartAttributes(in Input) []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{
		AttrRefundID.ValueSet(in.RefundID), AttrPaymentID.ValueSet(in.PaymentID),
		AttrMerchantID.ValueSet(in.MerchantID), AttrStatus.ValueSet("pending"),
	}
}

// CurrentLogic is the version of the logic new runs follow; the starter
// puts it in Input.Logic.
const CurrentLogic = versionFirst

// Input starts a refund.
type Input struct {
	RefundID  string
	PaymentID string
	// MerchantID is the payment's merchant (for the search attribute and
	// as a guard: the balance refuses a payment of another merchant).
	MerchantID string
	// Amount in minor units of the payment's currency; 0 refunds
	// everything still refundable.
	Amount int64
	// Currency is the caller's, checked against the payment's; "" = the
	// payment's.
	Currency string
	// Reason is the stored reason (duplicate, fraudulent,
	// requested_by_customer, other, unspecified).
	Reason   string
	Metadata map[string]string
	// CreatedAt is when the API took the request.
	CreatedAt time.Time
	// Resume starts a run for a refund whose workflow has ended, to handle
	// a late gateway event: the run loads the stored refund instead of
	// creating it.
	Resume bool
	// Logic is the version of the workflow's logic the run follows; new
	// runs are version 1. Zero is read as 1 (no run predates it).
	Logic workflow.Version `json:",omitempty"`
}

// GatewayEvent is a gateway's webhook event about a refund.
type GatewayEvent struct {
	EventID string
	Type    string
	// Reference is the gateway's id of the refund.
	Reference   string
	Status      gateway.RefundStatus
	FailureCode string
}
