package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
)

// TestStripeWebhookSignature: POST /webhooks/stripe acts only on events
// whose Stripe-Signature verifies with the platform's secret within 300 s;
// anything else is 400 and changes nothing (no signal, no recorded event).
//
// The event is true at the provider: the sandbox charged the payment, but
// its answer is held from the platform (the create never returns), so the
// payment stays PROCESSING until the provider's payment_intent.succeeded,
// which the test signs as Stripe would, tells the outcome.
func TestStripeWebhookSignature(t *testing.T) {
	t.Parallel()
	var env atomic.Pointer[E]
	var charged atomic.Pointer[gateway.Result]
	var held atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	e := newEnv(t, withPaymentWait(time.Second), withCreateHook(func(ctx context.Context, r gateway.CreateRequest) error {
		if r.Description != "signed" {
			return nil
		}
		// The provider executes the create (the same key each attempt, so
		// one intent) and its answer is lost on the way back.
		res, err := env.Load().gw.Gateway.CreatePayment(ctx, r)
		if err != nil {
			return err
		}
		charged.Store(&res)
		held.Add(1)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	env.Store(e)
	t.Cleanup(releaseAll) // before the platform stops
	m, c := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 3000, "USD", "pm_card_visa").set("description", "signed"))
	wantStatus(t, p, stProcessing)
	// Once the charge is retried as an activity (the fast path held, then
	// timed out), the payment is recorded as processing and stays so.
	deadline := time.Now().Add(waitFor)
	for held.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the charge was not retried as an activity within %v (%d held calls)", waitFor, held.Load())
		}
		time.Sleep(pollEvery)
	}
	res := charged.Load()
	if res.Status != gateway.StatusSucceeded || !strings.HasPrefix(res.Reference, sandbox.ReferencePrefix) || res.AmountReceived != 3000 {
		t.Fatalf("the provider answered %+v, want succeeded with 3000 received", res)
	}
	ref := res.Reference
	p = e.get(t, c, p.GetId())
	wantStatus(t, p, stProcessing)
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
	if got := e.get(t, m, p.GetId()).GetGatewayReference(); got != ref {
		t.Fatalf("gateway_reference %q, want the provider's %q", got, ref)
	}

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
//
// The first delivery is the provider's own: the customer completes 3-D
// Secure on the sandbox's page, which authorizes the intent and sends
// payment_intent.amount_capturable_updated with the id
// sandbox.EventID(ref, succeed); the redeliveries reuse that id.
func TestStripeWebhookDeduplication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 5000, "USD", "pm_card_authenticationRequired").manual())
	wantStatus(t, p, stRequiresAction)
	ref, wid := e.get(t, m, p.GetId()).GetGatewayReference(), p.GetWorkflowId()
	if !strings.HasPrefix(ref, sandbox.ReferencePrefix) {
		t.Fatalf("the merchant sees gateway_reference %q", ref)
	}

	e.threeDS(t, p, sandbox.OutcomeSucceed)
	id := sandbox.EventID(ref, sandbox.OutcomeSucceed)
	authorized := e.waitStatus(t, c, p.GetId(), stRequiresCapture)
	wantAmounts(t, authorized, 5000, 0)
	if ids := e.eventIDs(t, p.GetId()); len(ids) != 1 || ids[0] != id {
		t.Fatalf("recorded events %v, want the page's [%s]", ids, id)
	}
	capturable := intentEvent(id, "payment_intent.amount_capturable_updated", ref, p.GetId(), "requires_capture", 5000, 5000, 0)

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
