// Package disputes holds the parts of a dispute that every layer shares and
// the database stores as JSON: the parties' evidence and the timeline. It
// imports nothing of the platform, so the ent schema, the store, the
// workflow and the API can all use it.
package disputes

import (
	"unicode/utf8"

	"github.com/payments-platform/payments/internal/timeline"
)

// MaxFieldChars is Stripe's limit on each evidence text. Stripe also caps
// all texts together at 150,000 characters (the proto's CEL rule says so
// too), which six fields of at most 20,000 can never reach: no check here.
const MaxFieldChars = 20000

// Evidence is one party's case, text only (files are not taken).
type Evidence struct {
	Explanation            string `json:"explanation,omitempty"`
	ProductDescription     string `json:"product_description,omitempty"`
	CustomerCommunication  string `json:"customer_communication,omitempty"`
	ShippingTrackingNumber string `json:"shipping_tracking_number,omitempty"`
	RefundPolicy           string `json:"refund_policy,omitempty"`
	UncategorizedText      string `json:"uncategorized_text,omitempty"`
}

// Fields names each text field with its value, in the contract's order.
func (e Evidence) Fields() []Field {
	return []Field{
		{"explanation", e.Explanation},
		{"product_description", e.ProductDescription},
		{"customer_communication", e.CustomerCommunication},
		{"shipping_tracking_number", e.ShippingTrackingNumber},
		{"refund_policy", e.RefundPolicy},
		{"uncategorized_text", e.UncategorizedText},
	}
}

// Field is one named text of Evidence.
type Field struct{ Name, Value string }

// Check returns the name of the first field over MaxFieldChars and a
// message; "" when the evidence is within the limits. Characters are
// Unicode code points, as the API's validation counts them.
func (e Evidence) Check() (field, message string) {
	for _, f := range e.Fields() {
		if utf8.RuneCountInString(f.Value) > MaxFieldChars {
			return "evidence." + f.Name, "at most 20000 characters"
		}
	}
	return "", ""
}

// TimelineEntry is one step of a dispute: when, what, who and why; the
// same entry as payments' and refunds' timelines.
type TimelineEntry = timeline.Entry

// The kinds of timeline entries.
const (
	KindOpened             = "dispute.opened"
	KindRespondentNotified = "dispute.respondent_notified"
	KindEvidenceStaged     = "dispute.evidence_staged"
	KindEvidenceSubmitted  = "dispute.evidence_submitted"
	KindResponseDueSoon    = "dispute.response_due_soon"
	KindDeadlineMissed     = "dispute.response_deadline_missed"
	KindUnderReview        = "dispute.under_review"
	KindAccepted           = "dispute.accepted"
	KindWithdrawn          = "dispute.withdrawn"
	KindWon                = "dispute.won"
	KindLost               = "dispute.lost"
	KindRefunded           = "dispute.refunded"
	KindRefundFailed       = "dispute.refund_failed"
	KindFundsWithdrawn     = "dispute.funds_withdrawn"
	KindFundsReinstated    = "dispute.funds_reinstated"
	KindGatewayUpdated     = "dispute.gateway_updated"
)

// The actors of timeline entries that are not accounts.
const (
	ActorSystem  = "system"
	ActorNetwork = "gateway"
)
