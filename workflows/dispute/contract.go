// Package dispute is the durable process behind every dispute: one workflow
// per dispute (`dispute/<dp_id>`), the dispute's single writer from its
// first row to its outcome and the money the outcome moves. A dispute runs
// for days or weeks, mostly asleep on a durable timer (the reminders, the
// response deadline) or waiting for a party's Update, an admin's decision
// or the gateway's event; it never polls, so its history stays small.
//
// The disputed amount comes from the payment's refundable balance, shared
// with refunds. Its single writer is the database, as for refunds (see
// workflows/refund): the dispute's workflow takes the amount with one
// conditional UPDATE in the transaction that inserts the dispute
// (store.CreateDispute), which also marks the dispute open on the payment
// (at most one is; refunds are refused while it is), and moves it on in the
// transaction that records the outcome or the refund the outcome made
// (store.SaveDispute).
//
// Steps: open (refused → the run ends, nothing stored), notify the
// respondent, remind the respondent 72 h and 24 h before response_due_by,
// take evidence from either party (staged, or submitted once per party; the
// respondent's submission moves the dispute to under_review), and decide:
// an admin resolves won or lost, the merchant accepts, the claimant
// withdraws, or the respondent misses the deadline and loses by default.
// When the customer prevails (lost, accepted), the disputed amount is
// refunded through the gateway with an idempotency key derived from the
// workflow id, and recorded with its journal once. A network dispute
// (opened by the card network through the gateway's webhook) is decided by
// the gateway's events instead: the network took the funds when it opened
// it; won, they are reinstated.
package dispute

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/gateway"
)

// Names and ids other code relies on.
const (
	// WorkflowName is the registered workflow type.
	WorkflowName = "dispute.Dispute"
	// UpdateAwaitRecorded returns the dispute once its row is stored (or
	// the payment refused it: an error of one of the ErrType types).
	UpdateAwaitRecorded = "await_recorded"
	// UpdateSubmitEvidence stages or submits a party's evidence
	// (EvidenceUpdate).
	UpdateSubmitEvidence = "submit_evidence"
	// UpdateAccept concedes the dispute: the merchant, as respondent
	// (Action).
	UpdateAccept = "accept"
	// UpdateWithdraw takes the dispute back: the claimant (Action).
	UpdateWithdraw = "withdraw"
	// UpdateResolve decides the dispute: an admin (Resolution).
	UpdateResolve = "resolve"
	// SignalGatewayEvent delivers a gateway's webhook event about a network
	// dispute (GatewayEvent).
	SignalGatewayEvent = "gateway_event"
	// QueryState returns the live state.
	QueryState = "state"

	// The types of the application errors by which the workflow refuses an
	// action; the API maps them to Connect codes.
	ErrTypeFailedPrecondition = activities.ErrTypeFailedPrecondition
	ErrTypeInvalidArgument    = activities.ErrTypeInvalidArgument
	ErrTypeNotFound           = activities.ErrTypeNotFound
	ErrTypeAlreadyExists      = activities.ErrTypeAlreadyExists
	ErrTypePermissionDenied   = "PermissionDenied"
	// ErrTypeUnavailable marks evidence the gateway did not take in time
	// (a network dispute's); nothing was saved and the caller may retry.
	ErrTypeUnavailable = "Unavailable"

	// DefaultResponseWindow is how long the respondent of a dispute opened
	// on the platform has to respond (PAYMENTS_DISPUTE_RESPONSE_WINDOW).
	DefaultResponseWindow = 7 * 24 * time.Hour
)

// ReminderLeads are how long before response_due_by the respondent is
// reminded (dispute.response_due_soon) by default, earliest first
// (PAYMENTS_DISPUTE_REMINDERS). A reminder whose time is not after the
// dispute's opening is not sent.
var ReminderLeads = []time.Duration{72 * time.Hour, 24 * time.Hour}

// WorkflowID is the dispute's workflow id, derived from the business key.
func WorkflowID(disputeID string) string { return "dispute/" + disputeID }

// Search attributes the workflow keeps current, for operators in the
// Temporal UI: all disputes due this week are
// `WorkflowType = "dispute.Dispute" AND DisputeStatus = "needs_response" AND
// ResponseDueBy < "<date>"`. PaymentId, MerchantId and NeedsAttention are
// the payment workflow's own keys, so one query finds a payment, its refunds
// and its disputes.
var (
	AttrDisputeID      = temporal.NewSearchAttributeKeyKeyword("DisputeId")
	AttrPaymentID      = temporal.NewSearchAttributeKeyKeyword("PaymentId")
	AttrMerchantID     = temporal.NewSearchAttributeKeyKeyword("MerchantId")
	AttrStatus         = temporal.NewSearchAttributeKeyKeyword("DisputeStatus")
	AttrResponseDueBy  = temporal.NewSearchAttributeKeyTime("ResponseDueBy")
	AttrNeedsAttention = temporal.NewSearchAttributeKeyBool("NeedsAttention")
)

// SearchAttributeTypes names the attributes this package adds to the
// payment workflow's, with their types, for registration.
var SearchAttributeTypes = map[string]string{"DisputeId": "Keyword", "DisputeStatus": "Keyword", "ResponseDueBy": "Datetime"}

// StartAttributes are the search attributes a dispute starts with; the
// starter passes them in the start options (no history event).
func StartAttributes(in Input) []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{
		AttrDisputeID.ValueSet(in.DisputeID), AttrPaymentID.ValueSet(in.PaymentID),
		AttrMerchantID.ValueSet(in.MerchantID), AttrStatus.ValueSet("needs_response"),
		AttrResponseDueBy.ValueSet(in.ResponseDueBy),
	}
}

// CurrentLogic is the version of the logic new runs follow; the starter
// puts it in Input.Logic.
const CurrentLogic = versionFirst

// Input starts a dispute.
type Input struct {
	DisputeID string
	PaymentID string
	// MerchantID is the payment's merchant (for the search attribute).
	MerchantID string
	// OpenedBy is customer, merchant or network.
	OpenedBy string
	// OpenerID is the account that opens it ("" for the network): the
	// store checks that it is the payment's party OpenedBy names.
	OpenerID string
	// Reason is the stored reason (fraudulent, duplicate, ...).
	Reason      string
	Description string
	// Amount in minor units of the payment's currency; 0 disputes
	// everything still disputable (a network dispute names its amount).
	Amount   int64
	Currency string
	// ResponseDueBy is the respondent's deadline: the opening time plus
	// the response window, or the gateway's due_by for a network dispute.
	ResponseDueBy time.Time
	// ReminderLeads are the reminders of this dispute, earliest first: the
	// schedule it was opened with, kept for its whole run whatever the
	// configuration says later. Empty means ReminderLeads.
	ReminderLeads []time.Duration `json:",omitempty"`
	// GatewayReference is the gateway's id of a network dispute.
	GatewayReference string
	// CreatedAt is when the API (or the gateway's event) opened it.
	CreatedAt time.Time
	// Logic is the version of the workflow's logic the run follows; new
	// runs are version 1.
	Logic workflow.Version `json:",omitempty"`
}

// Actor is who asks for an action: an account, and whether it is an admin.
// The API authenticates it; the workflow decides what its party may do.
type Actor struct {
	AccountID string
	Admin     bool
}

// Action is an accept or a withdrawal.
type Action struct {
	Actor Actor
}

// EvidenceUpdate stages (Submit false) or submits a party's evidence; it
// replaces what the party staged before.
type EvidenceUpdate struct {
	Actor    Actor
	Evidence disputes.Evidence
	Submit   bool
}

// Resolution is an admin's decision.
type Resolution struct {
	Actor Actor
	// Outcome is "won" or "lost", from the merchant's side.
	Outcome string
	Note    string
}

// GatewayEvent is a gateway's webhook event about a network dispute.
type GatewayEvent struct {
	EventID string
	Type    string
	// Reference is the gateway's id of the dispute.
	Reference string
	Status    gateway.DisputeStatus
	// DueBy is the gateway's evidence deadline (zero: unchanged).
	DueBy time.Time
}
