package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// ignoredEvents are Stripe events the platform does not act on; their
// objects carry statuses that, read as an outcome, would fail a payment.
var ignoredEvents = []string{"payment_intent.created", "payment_intent.partially_funded", "charge.failed"}

// postIgnored posts each of ignoredEvents about payment p, and checks that
// each is acknowledged and that none reached the payment's workflow or was
// recorded.
func (e *E) postIgnored(t *testing.T, p *pb.Payment, ref string) {
	t.Helper()
	for i, typ := range ignoredEvents {
		ev := intentEvent(fmt.Sprintf("evt_e2e_ignored_%d_%s", i, p.GetId()), typ, ref, p.GetId(), "requires_payment_method", p.GetAmount(), 0, 0)
		if got := e.postWebhook(t, ev, e.sign(ev, time.Now())); got != http.StatusOK {
			t.Fatalf("%s: HTTP %d, want 200", typ, got)
		}
	}
	if n := e.settle(t, p.GetWorkflowId()); n != 0 {
		t.Fatalf("%d signals after events of no interest, want 0", n)
	}
	if ids := e.eventIDs(t, p.GetId()); len(ids) != 0 {
		t.Fatalf("events of no interest were recorded: %v", ids)
	}
}

// TestStripeWebhookIgnoresEventsItDoesNotKnow: payment_intent.created (whose
// intent is in requires_payment_method, Stripe's status after a decline too)
// and other events outside the whitelist are acknowledged and ignored. A
// payment waiting for 3-D Secure, or still being charged, is not failed by
// them, and settles on the event or answer that matters.
func TestStripeWebhookIgnoresEventsItDoesNotKnow(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	hold := func(ctx context.Context, r gateway.CreateRequest) error {
		if r.PaymentMethod != "pm_card_visa" {
			return nil
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e := newEnv(t, withCreateHook(hold), withPaymentWait(300*time.Millisecond))
	t.Cleanup(releaseAll) // before the platform stops, should a check fail first
	m, c := e.merchant(t), e.customer(t)

	t.Run("waiting for 3-D Secure", func(t *testing.T) {
		p := e.post(t, c.Token, procCreatePayment, pay(m, 4200, "USD", "pm_card_authenticationRequired")).payment(t)
		wantStatus(t, p, stRequiresAction)
		ref := e.get(t, m, p.GetId()).GetGatewayReference()
		e.postIgnored(t, p, ref)
		if got := e.get(t, c, p.GetId()); !protoEqual(got, p) {
			t.Fatalf("ignored events changed the payment:\n%v\n%v", p, got)
		}
		// The event that matters: the customer completes 3-D Secure and the
		// provider sends payment_intent.succeeded.
		e.threeDS(t, p, sandbox.OutcomeSucceed)
		wantAmounts(t, e.waitStatus(t, c, p.GetId(), stSucceeded), 0, 4200)
		if ids := e.eventIDs(t, p.GetId()); len(ids) != 1 || ids[0] != sandbox.EventID(ref, sandbox.OutcomeSucceed) {
			t.Fatalf("recorded events %v, want only the provider's payment_intent.succeeded", ids)
		}
		e.wantBalances(t, m.ID, c.ID, "USD", 4200)
	})

	t.Run("still being charged", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		p := e.post(t, c.Token, procCreatePayment, pay(m, 5100, "USD", "pm_card_visa")).payment(t)
		wantStatus(t, p, stProcessing)
		e.postIgnored(t, p, "pi_not_known_yet")
		if got := e.get(t, c, p.GetId()); got.GetStatus().String() != stProcessing {
			t.Fatalf("after ignored events the payment is %s, want still processing", got.GetStatus())
		}
		releaseAll()
		wantAmounts(t, e.waitStatus(t, c, p.GetId(), stSucceeded), 0, 5100)
		e.wantBalances(t, m.ID, c.ID, "USD", 5100)
	})
}

// TestGatewayReferenceIsForMerchantsAndAdmins: the customer never sees the
// gateway's reference of its payment, in any answer; the payment's merchant
// does.
func TestGatewayReferenceIsForMerchantsAndAdmins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	created := e.post(t, c.Token, procCreatePayment, pay(m, 2500, "USD", "pm_card_visa")).payment(t)
	wantStatus(t, created, stSucceeded)
	r := e.post(t, c.Token, procListPayments, map[string]any{})
	listed := &pb.ListPaymentsResponse{}
	if err := protojsonUnmarshal(r.body, listed); err != nil || r.status != http.StatusOK || len(listed.GetPayments()) != 1 {
		t.Fatalf("ListPayments: %s", r)
	}
	if strings.Contains(string(r.body), sandbox.ReferencePrefix) {
		t.Errorf("the customer's ListPayments answer holds a gateway reference: %s", r.body)
	}
	for what, p := range map[string]*pb.Payment{
		"CreatePayment": created, "GetPayment": e.get(t, c, created.GetId()), "ListPayments": listed.GetPayments()[0],
	} {
		if p.GetGatewayReference() != "" || p.GetNeedsAttention() || p.GetAttentionReason() != "" {
			t.Errorf("%s shows the customer gateway_reference %q, needs_attention %v %q", what, p.GetGatewayReference(), p.GetNeedsAttention(), p.GetAttentionReason())
		}
	}
	if ref := e.get(t, m, created.GetId()).GetGatewayReference(); !strings.HasPrefix(ref, sandbox.ReferencePrefix) {
		t.Fatalf("the merchant sees gateway_reference %q, want %s...", ref, sandbox.ReferencePrefix)
	}
}
