package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway/sandbox"
)

// TestStripeWebhookSignature: POST /webhooks/stripe acts only on events
// whose Stripe-Signature verifies with the platform's secret within 300 s;
// anything else is 400 and changes nothing (no signal, no recorded event).
func TestStripeWebhookSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 3000, "USD", "pm_card_authenticationRequired"))
	wantStatus(t, p, stRequiresAction)
	ref := p.GetGatewayReference()
	payload := intentEvent("evt_e2e_sig_"+p.GetId(), "payment_intent.succeeded", ref, p.GetId(), "succeeded", 3000, 0, 3000)
	now := time.Now()
	tampered := intentEvent("evt_e2e_sig_"+p.GetId(), "payment_intent.succeeded", ref, p.GetId(), "succeeded", 3000, 0, 1)

	refused := []struct {
		name, signature string
		body            []byte
	}{
		{"missing", "", payload},
		{"wrong secret", sandbox.SignPayload("whsec_not_the_platforms_secret", payload, now), payload},
		{"older than 300 s", e.sign(payload, now.Add(-301*time.Second)), payload},
		{"much older", e.sign(payload, now.Add(-time.Hour)), payload},
		{"body changed after signing", e.sign(payload, now), tampered},
		{"malformed header", "t=notatime,v1=zz", payload},
		{"no timestamp", "v1=" + e.sign(payload, now)[len("t=0000000000,v1="):], payload},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.postWebhook(t, tc.body, tc.signature); got != http.StatusBadRequest {
				t.Fatalf("HTTP %d, want 400", got)
			}
		})
	}
	// Nothing reached the payment.
	if n := e.settle(t, p.GetWorkflowId()); n != 0 {
		t.Fatalf("%d signals after refused webhooks, want 0", n)
	}
	if got := e.get(t, c, p.GetId()); !protoEqual(got, p) {
		t.Fatalf("refused webhooks changed the payment:\n%v\n%v", p, got)
	}
	if ids := e.eventIDs(t, p.GetId()); len(ids) != 0 {
		t.Fatalf("refused webhooks were recorded: %v", ids)
	}

	// Within the tolerance (signed 4 minutes ago) the event is acted upon.
	if got := e.postWebhook(t, payload, e.sign(payload, now.Add(-240*time.Second))); got != http.StatusOK {
		t.Fatalf("a valid event: HTTP %d, want 200", got)
	}
	done := e.waitStatus(t, c, p.GetId(), stSucceeded)
	wantAmounts(t, done, 0, 3000)
	e.wantBalances(t, m.ID, c.ID, "USD", 3000)

	// A redelivery (Stripe signs each delivery anew) is 200 and changes nothing.
	if got := e.postWebhook(t, payload, e.sign(payload, time.Now())); got != http.StatusOK {
		t.Fatalf("a redelivered event: HTTP %d, want 200", got)
	}
	e.settle(t, p.GetWorkflowId())
	if got := e.get(t, c, p.GetId()); !protoEqual(got, done) {
		t.Fatalf("a redelivery changed the payment:\n%v\n%v", done, got)
	}
	if ids := e.eventIDs(t, p.GetId()); len(ids) != 1 || ids[0] != "evt_e2e_sig_"+p.GetId() {
		t.Fatalf("recorded events %v, want the one event once", ids)
	}
	e.wantBalances(t, m.ID, c.ID, "USD", 3000)

	// A well-signed body that is not an event is 400 too.
	junk := []byte(`{"object":"event"}`)
	if got := e.postWebhook(t, junk, e.sign(junk, time.Now())); got != http.StatusBadRequest {
		t.Fatalf("a signed body without id and type: HTTP %d, want 400", got)
	}
}

// TestStripeWebhookDeduplication: events are acted on once per event id,
// also while the payment is still pending: a redelivery, even one whose body
// claims something else, changes nothing; events of no interest or for
// unknown payments are 200 and change nothing.
func TestStripeWebhookDeduplication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 5000, "USD", "pm_card_authenticationRequired").manual())
	wantStatus(t, p, stRequiresAction)
	ref, wid := p.GetGatewayReference(), p.GetWorkflowId()

	id := "evt_e2e_dedupe_" + p.GetId()
	capturable := intentEvent(id, "payment_intent.amount_capturable_updated", ref, p.GetId(), "requires_capture", 5000, 5000, 0)
	if got := e.postWebhook(t, capturable, e.sign(capturable, time.Now())); got != http.StatusOK {
		t.Fatalf("HTTP %d, want 200", got)
	}
	authorized := e.waitStatus(t, c, p.GetId(), stRequiresCapture)
	wantAmounts(t, authorized, 5000, 0)

	redeliveries := []struct {
		name string
		body []byte
	}{
		{"the same event again", capturable},
		{"the same event id claiming a failure", intentEvent(id, "payment_intent.payment_failed", ref, p.GetId(), "requires_payment_method", 5000, 0, 0)},
		{"the same event id claiming success", intentEvent(id, "payment_intent.succeeded", ref, p.GetId(), "succeeded", 5000, 0, 5000)},
	}
	for _, tc := range redeliveries {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.postWebhook(t, tc.body, e.sign(tc.body, time.Now())); got != http.StatusOK {
				t.Fatalf("HTTP %d, want 200", got)
			}
			e.settle(t, wid)
			if got := e.get(t, c, p.GetId()); !protoEqual(got, authorized) {
				t.Fatalf("a redelivered event id changed the payment:\nbefore %v\nafter  %v", authorized, got)
			}
			if ids := e.eventIDs(t, p.GetId()); len(ids) != 1 || ids[0] != id {
				t.Fatalf("recorded events %v, want [%s]", ids, id)
			}
			if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != 0 {
				t.Fatalf("merchant balance %d before capture", b)
			}
		})
	}

	// Events of no interest, or for payments the platform does not know.
	other := []byte(`{"id":"evt_e2e_charge","object":"event","type":"charge.refunded","data":{"object":{"id":"ch_1","object":"charge"}}}`)
	unknown := intentEvent("evt_e2e_unknown", "payment_intent.succeeded", "pi_unknown", "pay_01jzzzzzzzzzzzzzzzzzzzzzzz", "succeeded", 1, 0, 1)
	for _, body := range [][]byte{other, unknown} {
		if got := e.postWebhook(t, body, e.sign(body, time.Now())); got != http.StatusOK {
			t.Fatalf("HTTP %d for %s, want 200", got, body)
		}
	}
	rows := e.paymentRows(t)
	if rows != 1 {
		t.Fatalf("%d payment rows, want 1", rows)
	}

	// The payment goes on normally.
	got := e.captureR(t, m, p.GetId(), 0).payment(t)
	wantStatus(t, got, stSucceeded)
	wantAmounts(t, got, 0, 5000)
	e.wantBalances(t, m.ID, c.ID, "USD", 5000)
}
