package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/timeline"
)

// steps writes a timeline as "kind(actor): note" lines, to compare whole.
func steps(tl []timeline.Entry) string {
	var b strings.Builder
	for _, e := range tl {
		fmt.Fprintf(&b, "%s(%s): %s\n", e.Kind, e.Actor, e.Note)
	}
	return b.String()
}

// TestPaymentSteps pins what each kind of save appends to a payment's
// timeline: its kinds, actors and notes.
func TestPaymentSteps(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	base := PaymentRecord{ID: "pay_1", Amount: 1999, Currency: "USD", Gateway: "sandbox",
		Status: payment.StatusProcessing, CreatedAt: at, UpdatedAt: at.Add(time.Second)}
	created := paymentSteps(nil, nil, base)
	if got, want := steps(created), "payment.created(system): 19.99 USD from a guest\n"; got != want {
		t.Fatalf("a new guest payment's timeline:\n%s\nwant\n%s", got, want)
	}
	withCustomer := base
	withCustomer.CustomerID = "acct_c"
	if got := steps(paymentSteps(nil, nil, withCustomer)); got != "payment.created(system): 19.99 USD from acct_c\n" {
		t.Errorf("a customer's payment: %s", got)
	}
	processing := &ent.Payment{ID: "pay_1", Status: payment.StatusProcessing, Gateway: "sandbox"}
	tests := []struct {
		name string
		prev *ent.Payment
		edit func(r *PaymentRecord)
		want string
	}{
		{"3-D Secure asked, with the gateway's reference", processing, func(r *PaymentRecord) {
			r.Status, r.GatewayReference = payment.StatusRequiresAction, "pi_1"
		}, "payment.submitted(gateway): the sandbox gateway answered as pi_1\n" +
			"payment.requires_action(gateway): the customer must authenticate (3-D Secure)\n"},
		{"a reference of no named gateway", processing, func(r *PaymentRecord) {
			r.Gateway, r.GatewayReference = "", "pi_2"
		}, "payment.submitted(gateway): the gateway answered as pi_2\n"},
		{"a reference already known adds nothing", &ent.Payment{Status: payment.StatusProcessing, GatewayReference: "pi_1"},
			func(r *PaymentRecord) { r.GatewayReference = "pi_1" }, ""},
		{"authorized", processing, func(r *PaymentRecord) {
			r.Status, r.AmountCapturable = payment.StatusRequiresCapture, 1999
		}, "payment.requires_capture(gateway): 19.99 USD authorized; capture it to take the money\n"},
		{"paid at once", processing, func(r *PaymentRecord) {
			r.Status, r.AmountReceived = payment.StatusSucceeded, 1999
		}, "payment.succeeded(gateway): 19.99 USD received\n"},
		{"captured", &ent.Payment{Status: payment.StatusRequiresCapture}, func(r *PaymentRecord) {
			r.Status, r.AmountReceived = payment.StatusSucceeded, 1500
		}, "payment.captured(gateway): 15.00 USD received\n"},
		{"failed", processing, func(r *PaymentRecord) {
			r.Status, r.FailureMessage = payment.StatusFailed, "Your card was declined."
		}, "payment.failed(gateway): Your card was declined.\n"},
		{"canceled", &ent.Payment{Status: payment.StatusRequiresCapture}, func(r *PaymentRecord) {
			r.Status, r.FailureMessage = payment.StatusCanceled, "abandoned"
		}, "payment.canceled(system): abandoned\n"},
		{"attention raised", processing, func(r *PaymentRecord) {
			r.NeedsAttention, r.AttentionReason = true, "the gateway does not answer"
		}, "payment.needs_attention(system): the gateway does not answer\n"},
		{"attention cleared", &ent.Payment{Status: payment.StatusProcessing, NeedsAttention: true}, func(r *PaymentRecord) {},
			"payment.attention_cleared(system): \n"},
		{"nothing changed", processing, func(r *PaymentRecord) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := base
			tt.edit(&rec)
			got := steps(paymentSteps(created, tt.prev, rec))
			if want := steps(created) + tt.want; got != want {
				t.Errorf("timeline:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestRefundSteps pins what each kind of save appends to a refund's
// timeline.
func TestRefundSteps(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	rec := RefundRecord{ID: "re_1", PaymentID: "pay_1", Amount: 500, Currency: "EUR", Status: refund.StatusPending,
		CreatedAt: at, UpdatedAt: at.Add(time.Second)}
	created := refundSteps(nil, nil, rec)
	if got := steps(created); got != "refund.created(system): 5.00 EUR of pay_1\n" {
		t.Fatalf("a new refund's timeline: %s", got)
	}
	pending := &ent.Refund{Status: refund.StatusPending, Gateway: "sandbox"}
	accepted := &ent.Refund{Status: refund.StatusPending, Gateway: "sandbox", GatewayReference: "re_gw"}
	tests := []struct {
		name string
		prev *ent.Refund
		edit func(r *RefundRecord)
		want string
	}{
		{"accepted", pending, func(r *RefundRecord) { r.GatewayReference = "re_gw" },
			"refund.submitted(gateway): the sandbox gateway accepted it as re_gw\n"},
		{"accepted by no named gateway", &ent.Refund{Status: refund.StatusPending}, func(r *RefundRecord) { r.GatewayReference = "re_gw" },
			"refund.submitted(gateway): the gateway accepted it as re_gw\n"},
		{"succeeded", accepted, func(r *RefundRecord) { r.Status, r.GatewayReference = refund.StatusSucceeded, "re_gw" },
			"refund.succeeded(gateway): 5.00 EUR returned to the customer\n"},
		{"refused, no reason", pending, func(r *RefundRecord) { r.Status = refund.StatusFailed },
			"refund.failed(gateway): the gateway failed it\n"},
		{"failed after it was accepted", accepted, func(r *RefundRecord) {
			r.Status, r.GatewayReference, r.FailureReason = refund.StatusFailed, "re_gw", "expired_card"
		}, "refund.failed(gateway): the gateway failed it (expired_card); the amount is back on the merchant's balance\n"},
		{"failed after it succeeded", &ent.Refund{Status: refund.StatusSucceeded}, func(r *RefundRecord) { r.Status = refund.StatusFailed },
			"refund.failed(gateway): the gateway failed it; the amount is back on the merchant's balance\n"},
		{"canceled", pending, func(r *RefundRecord) { r.Status = refund.StatusCanceled },
			"refund.canceled(gateway): canceled; the amount is refundable again\n"},
		{"attention raised", pending, func(r *RefundRecord) { r.NeedsAttention, r.AttentionReason = true, "no answer" },
			"refund.needs_attention(system): no answer\n"},
		{"nothing changed", pending, func(r *RefundRecord) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rec
			tt.edit(&r)
			got := steps(refundSteps(created, tt.prev, r))
			if want := steps(created) + tt.want; got != want {
				t.Errorf("timeline:\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestMovementDescriptions pins the history's descriptions, which people
// read in place of the source object.
func TestMovementDescriptions(t *testing.T) {
	pay := func(edit func(p *ent.Payment)) string {
		p := &ent.Payment{ID: "pay_1", Amount: 100, Currency: "USD", Status: payment.StatusSucceeded, AmountReceived: 100}
		edit(p)
		return paymentMovement(p, "").description
	}
	re := func(edit func(r *ent.Refund)) string {
		r := &ent.Refund{ID: "re_1", PaymentID: "pay_1", Amount: 100, Currency: "USD", Status: refund.StatusSucceeded, Reason: refund.ReasonUnspecified}
		edit(r)
		return refundMovement(r, "").description
	}
	failure := func(reason string) string {
		r := &ent.Refund{ID: "re_1", PaymentID: "pay_1", Amount: 100, Currency: "USD", Status: refund.StatusFailed, FailureReason: reason}
		return refundFailureMovement(r, Journal{ID: "re_1/refund_failed"}).description
	}
	for _, tc := range []struct{ got, want string }{
		{pay(func(p *ent.Payment) {}), "Payment"},
		{pay(func(p *ent.Payment) { p.Description = "Order 42" }), "Order 42"},
		{pay(func(p *ent.Payment) { p.MethodType = "card" }), "Card payment"},
		{pay(func(p *ent.Payment) { p.MethodType, p.MethodBrand, p.MethodLast4 = "card", "visa", "4242" }), "Card payment (visa •••• 4242)"},
		{pay(func(p *ent.Payment) { p.MethodType, p.MethodBrand = "card", "visa" }), "Card payment"},
		{pay(func(p *ent.Payment) { p.MethodType, p.MethodLast4 = "card", "4242" }), "Card payment"},
		{pay(func(p *ent.Payment) { p.MethodType = "mobile_money" }), "Mobile money payment"},
		{pay(func(p *ent.Payment) { p.Status = payment.StatusCanceled }), "Payment — canceled"},
		{pay(func(p *ent.Payment) { p.Status = payment.StatusFailed }), "Payment — failed"},
		{re(func(r *ent.Refund) {}), "Refund of pay_1"},
		{re(func(r *ent.Refund) { r.Reason = refund.ReasonRequestedByCustomer }), "Refund of pay_1 (requested by customer)"},
		{re(func(r *ent.Refund) { r.Status = refund.StatusCanceled }), "Refund of pay_1 — canceled"},
		{failure(""), "Refund re_1 failed at the gateway: the amount is back on the balance"},
		{failure("expired_card"), "Refund re_1 failed at the gateway: the amount is back on the balance (expired_card)"},
	} {
		if tc.got != tc.want {
			t.Errorf("description %q, want %q", tc.got, tc.want)
		}
	}
}
