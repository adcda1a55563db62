// Package payment is the durable process behind every payment: one workflow
// per payment (`payment/<pay_id>`), the payment's single writer. It calls the
// gateway, records every state in the database together with the ledger
// journal of any money that moved, and waits (for days if need be) for a
// capture, a cancel, a 3-D Secure result or the authorization to expire.
package payment

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/internal/gateway"
)

// Names and ids other code relies on.
const (
	// WorkflowName is the registered workflow type.
	WorkflowName = "payment.Payment"
	// UpdateAwaitResult returns the payment once the gateway has answered.
	UpdateAwaitResult = "await_result"
	// UpdateAwaitRecorded returns the payment once its first row is stored.
	UpdateAwaitRecorded = "await_recorded"
	// UpdateCapture captures an authorized payment.
	UpdateCapture = "capture"
	// UpdateCancel cancels a payment that has not succeeded.
	UpdateCancel = "cancel"
	// SignalGatewayEvent delivers a provider webhook event.
	SignalGatewayEvent = "gateway_event"
	// QueryState returns the live state.
	QueryState = "state"

	// AuthorizationTTL is how long an uncaptured authorization is held.
	AuthorizationTTL = 7 * 24 * time.Hour
	// ActionTTL is how long a customer has to complete 3-D Secure.
	ActionTTL = 24 * time.Hour

	// ErrTypeFailedPrecondition marks update errors that the state machine refuses.
	ErrTypeFailedPrecondition = "FailedPrecondition"
	// ErrTypeInvalidArgument marks update errors caused by the request.
	ErrTypeInvalidArgument = "InvalidArgument"
	// ErrTypeUnconfirmed marks an update whose gateway step was not
	// confirmed: the workflow retries it on a timer and the payment shows
	// needs_attention until the gateway answers.
	ErrTypeUnconfirmed = "Unconfirmed"
)

// WorkflowID is the payment's workflow id, derived from the business key.
func WorkflowID(paymentID string) string { return "payment/" + paymentID }

// Search attributes the workflow keeps current, for operators in the Temporal UI.
var (
	AttrPaymentID  = temporal.NewSearchAttributeKeyKeyword("PaymentId")
	AttrMerchantID = temporal.NewSearchAttributeKeyKeyword("MerchantId")
	AttrCustomerID = temporal.NewSearchAttributeKeyKeyword("CustomerId")
	AttrStatus     = temporal.NewSearchAttributeKeyKeyword("PaymentStatus")
	AttrAmount     = temporal.NewSearchAttributeKeyInt64("Amount")
	AttrCurrency   = temporal.NewSearchAttributeKeyKeyword("Currency")
	// AttrNeedsAttention is true while a step that may move money is not
	// confirmed by the gateway or a state is not recorded: operators list
	// such payments with NeedsAttention = true.
	AttrNeedsAttention = temporal.NewSearchAttributeKeyBool("NeedsAttention")
)

// SearchAttributeTypes names each attribute's type, for registration.
var SearchAttributeTypes = map[string]string{
	"PaymentId": "Keyword", "MerchantId": "Keyword", "CustomerId": "Keyword",
	"PaymentStatus": "Keyword", "Amount": "Int", "Currency": "Keyword",
	"NeedsAttention": "Bool",
}

// StartAttributes are the search attributes a payment starts with; the
// starter passes them in the start options so that setting them costs no
// history event.
func StartAttributes(in Input) []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{
		AttrPaymentID.ValueSet(in.PaymentID), AttrMerchantID.ValueSet(in.MerchantID),
		AttrCustomerID.ValueSet(in.CustomerID), AttrAmount.ValueSet(in.Amount),
		AttrCurrency.ValueSet(in.Currency), AttrStatus.ValueSet("processing"),
	}
}

// Input starts a payment.
type Input struct {
	PaymentID     string
	MerchantID    string
	CustomerID    string
	Amount        int64
	Currency      string
	PaymentMethod string
	ManualCapture bool
	Description   string
	Metadata      map[string]string
	Gateway       string
	ReturnURL     string
	CreatedAt     time.Time
	// Logic is the version of the workflow's logic the run follows
	// (versions.go), set by the starter to CurrentLogic so that a new run
	// records no version marker. Zero in the input of runs started before
	// runs declared it: workflow.GetVersion decides for them.
	Logic workflow.Version `json:",omitempty"`
}

// CaptureRequest captures Amount (0 = everything capturable).
type CaptureRequest struct {
	Amount int64
}

// CancelRequest cancels the payment.
type CancelRequest struct {
	Reason string
}

// GatewayEvent is a provider webhook event about this payment. Amounts are
// in ISO minor units (the receiver converts the provider's).
type GatewayEvent struct {
	EventID string
	Type    string
	// Reference is the gateway's id of the intent the event is about.
	Reference        string
	Status           gateway.Status
	AmountCapturable int64
	AmountReceived   int64
	FailureCode      string
	FailureMessage   string
}
