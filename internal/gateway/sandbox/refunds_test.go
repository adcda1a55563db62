package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
)

// refundFail is a sandbox whose refunds of pm_card_refundFail fail at once,
// posting to a fake webhook route, and a payment of 1234 USD with it.
type refundFail struct {
	sb   *Sandbox
	rc   *receiver
	paid gateway.Result
}

func newRefundFail(t *testing.T, st State, key string) *refundFail {
	t.Helper()
	rc := newReceiver(t)
	// The receiver checks the signature's timestamp against the real clock.
	now := time.Now().Truncate(time.Second)
	sb, err := New(Options{State: st, PublicURL: rc.srv.URL, WebhookSecret: testSecret,
		Now: func() time.Time { return now }, RefundFailureDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	sb.eventRetryBackoff = time.Millisecond
	// No goroutine outlives the test (and its state).
	t.Cleanup(sb.background.Wait)
	paid, err := sb.CreatePayment(t.Context(), createReq(key, "pm_card_refundFail", false))
	if err != nil || paid.Status != gateway.StatusSucceeded || paid.AmountReceived != 1234 {
		t.Fatalf("CreatePayment(pm_card_refundFail) = %+v, %v; want succeeded", paid, err)
	}
	return &refundFail{sb: sb, rc: rc, paid: paid}
}

func (x *refundFail) refund(t *testing.T, key string, amount int64) (gateway.RefundResult, error) {
	t.Helper()
	return x.sb.Refund(t.Context(), gateway.RefundRequest{IdempotencyKey: key, PaymentID: "pay_01testpayment",
		Reference: x.paid.Reference, Amount: amount, Currency: "USD", Reason: "requested_by_customer"})
}

// refundOf decodes the Refund a delivered event carries.
func refundOf(t *testing.T, d delivery) stripego.Refund {
	t.Helper()
	if d.verifyErr != nil {
		t.Fatalf("delivery's signature does not verify: %v", d.verifyErr)
	}
	var re stripego.Refund
	if err := json.Unmarshal(d.event.Data.Raw, &re); err != nil {
		t.Fatalf("data.object is not a Refund: %v: %s", err, d.event.Data.Raw)
	}
	return re
}

// TestRefundFailsLater: a refund of pm_card_refundFail answers succeeded,
// then fails: the state says failed (RetrieveRefund), its amount is
// refundable again, and a signed charge.refund.updated event with Stripe's
// Refund object reaches the webhook route. A retry of the refund with its
// key answers succeeded, as saved, and delivers the same event again.
func TestRefundFailsLater(t *testing.T) {
	x := newRefundFail(t, newState(t), "refundfail/1")
	ctx := t.Context()
	key := "refund/re_1/refund/1"
	want := gateway.RefundResult{Reference: RefundPrefix + digest(key), Status: gateway.RefundSucceeded, Amount: 1000}
	got, err := x.refund(t, key, 1000)
	if err != nil || got != want {
		t.Fatalf("Refund = %+v, %v; want %+v", got, err, want)
	}
	x.sb.background.Wait()

	deliveries := x.rc.got()
	if len(deliveries) != 1 {
		t.Fatalf("%d deliveries, want 1", len(deliveries))
	}
	d := deliveries[0]
	if d.path != "POST "+WebhookPath {
		t.Errorf("delivered to %s, want POST %s", d.path, WebhookPath)
	}
	re := refundOf(t, d)
	if d.event.ID != RefundFailedEventID(want.Reference) || d.event.Type != EventRefundUpdated || d.event.Livemode {
		t.Errorf("event %s %s, want %s %s", d.event.ID, d.event.Type, RefundFailedEventID(want.Reference), EventRefundUpdated)
	}
	if re.ID != want.Reference || re.Object != "refund" || re.Status != stripego.RefundStatusFailed ||
		re.FailureReason != stripego.RefundFailureReasonExpiredOrCanceledCard || re.Amount != 1000 ||
		re.Currency != "usd" || re.Metadata["payment_id"] != "pay_01testpayment" ||
		re.PaymentIntent == nil || re.PaymentIntent.ID != x.paid.Reference || re.Reason != stripego.RefundReasonRequestedByCustomer {
		t.Errorf("refund in the event = %+v", re)
	}

	failed := gateway.RefundResult{Reference: want.Reference, Status: gateway.RefundFailed, Amount: 1000,
		FailureCode: RefundFailureExpiredOrCanceledCard}
	if got, err := x.sb.RetrieveRefund(ctx, want.Reference); err != nil || got != failed {
		t.Fatalf("RetrieveRefund = %+v, %v; want %+v", got, err, failed)
	}
	// Another process on the state agrees.
	other := newSandboxOn(t, x.sb.state)
	if got, err := other.RetrieveRefund(ctx, want.Reference); err != nil || got != failed {
		t.Fatalf("RetrieveRefund from another sandbox = %+v, %v; want %+v", got, err, failed)
	}
	// The intent still reports what it received.
	if got, err := x.sb.Retrieve(ctx, x.paid.Reference); err != nil || got != x.paid {
		t.Fatalf("Retrieve = %+v, %v; want %+v", got, err, x.paid)
	}

	// The saved answer is replayed; the failure is told again, the same.
	if again, err := x.refund(t, key, 1000); err != nil || again != want {
		t.Fatalf("Refund replay = %+v, %v; want %+v", again, err, want)
	}
	_, err = x.refund(t, key, 999)
	wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
	x.sb.background.Wait()
	deliveries = x.rc.got()
	if len(deliveries) != 2 || !bytes.Equal(deliveries[1].body, d.body) {
		t.Fatalf("after the replay: %d deliveries (want 2), the second the same as the first: %s", len(deliveries), deliveries[len(deliveries)-1].body)
	}
	if got, _ := x.sb.RetrieveRefund(ctx, want.Reference); got != failed {
		t.Fatalf("RetrieveRefund after the replay = %+v, want %+v", got, failed)
	}

	// What failed is refundable again: all of it, in one refund, which
	// fails in turn.
	all, err := x.refund(t, "refund/re_2/refund/1", 1234)
	if err != nil || all.Status != gateway.RefundSucceeded || all.Amount != 1234 {
		t.Fatalf("refund of everything after the failure = %+v, %v", all, err)
	}
	x.sb.background.Wait()
	deliveries = x.rc.got()
	if len(deliveries) != 3 || deliveries[2].event.ID != RefundFailedEventID(all.Reference) {
		t.Fatalf("%d deliveries, want a third about %s", len(deliveries), all.Reference)
	}
	if re := refundOf(t, deliveries[2]); re.Amount != 1234 || re.Status != stripego.RefundStatusFailed {
		t.Fatalf("second failure's refund = %+v", re)
	}
}

// TestRefundOfOtherMethodsDoesNotFail: only pm_card_refundFail's refunds
// fail; the others send nothing.
func TestRefundOfOtherMethodsDoesNotFail(t *testing.T) {
	x := newRefundFail(t, newState(t), "refundfail/visa")
	paid, err := x.sb.CreatePayment(t.Context(), createReq("refundfail/visa/2", "pm_card_visa", false))
	if err != nil {
		t.Fatal(err)
	}
	rf, err := x.sb.Refund(t.Context(), gateway.RefundRequest{IdempotencyKey: "refund/visa", Reference: paid.Reference, Amount: 100})
	if err != nil || rf.Status != gateway.RefundSucceeded {
		t.Fatalf("Refund = %+v, %v", rf, err)
	}
	x.sb.background.Wait()
	if n := len(x.rc.got()); n != 0 {
		t.Fatalf("%d events for a refund of pm_card_visa, want none", n)
	}
	if got, err := x.sb.RetrieveRefund(t.Context(), rf.Reference); err != nil || got != rf {
		t.Fatalf("RetrieveRefund = %+v, %v; want %+v", got, err, rf)
	}
	for _, ref := range []string{"re_unknown", RefundPrefix + digest("never used"), rf.Reference + "x"} {
		_, err := x.sb.RetrieveRefund(t.Context(), ref)
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
	}
}

// flakyRoute answers 503 to the first fail requests, then 200, and
// counts them.
func flakyRoute(t *testing.T, fail int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= fail {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestRefundFailureDeliveryRetries: a route that refuses the event (a 503,
// as the platform answers before it has stored the refund's reference) gets
// it again, a bounded number of times; the refund is failed in the state
// whether or not the event got through.
func TestRefundFailureDeliveryRetries(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fail      int64
		wantPosts int64
	}{
		{"taken at the third", 2, 3},
		{"never taken", 1000, eventAttempts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, posts := flakyRoute(t, tc.fail)
			sb, err := New(Options{State: newState(t), PublicURL: srv.URL, WebhookSecret: testSecret, RefundFailureDelay: -1})
			if err != nil {
				t.Fatal(err)
			}
			sb.eventRetryBackoff = time.Millisecond
			paid, err := sb.CreatePayment(t.Context(), createReq("retry/"+tc.name, "pm_card_refundFail", false))
			if err != nil {
				t.Fatal(err)
			}
			rf, err := sb.Refund(t.Context(), gateway.RefundRequest{IdempotencyKey: "refund/" + tc.name, Reference: paid.Reference, Amount: 1234})
			if err != nil || rf.Status != gateway.RefundSucceeded {
				t.Fatalf("Refund = %+v, %v", rf, err)
			}
			sb.background.Wait()
			if got := posts.Load(); got != tc.wantPosts {
				t.Fatalf("%d deliveries, want %d", got, tc.wantPosts)
			}
			if got, _ := sb.RetrieveRefund(t.Context(), rf.Reference); got.Status != gateway.RefundFailed {
				t.Fatalf("RetrieveRefund = %+v, want failed", got)
			}
		})
	}
}

// TestRefundFailsOnce: retries of a refund racing with its failure, from
// two sandboxes on one state, fail it once: its amount is given back once,
// and every delivery is the same event.
func TestRefundFailsOnce(t *testing.T) { forEachState(t, testRefundFailsOnce) }

func testRefundFailsOnce(t *testing.T, st State) {
	x := newRefundFail(t, st, "refundfail/once")
	other, err := New(Options{State: st, PublicURL: x.rc.srv.URL, WebhookSecret: testSecret,
		Now: x.sb.now, RefundFailureDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	other.eventRetryBackoff = time.Millisecond
	t.Cleanup(other.background.Wait)
	const calls = 6
	var wg sync.WaitGroup
	for i := range calls {
		sb := []*Sandbox{x.sb, other}[i%2]
		wg.Go(func() {
			rf, err := sb.Refund(t.Context(), gateway.RefundRequest{IdempotencyKey: "refund/once", PaymentID: "pay_01testpayment",
				Reference: x.paid.Reference, Amount: 1000})
			if err != nil || rf.Status != gateway.RefundSucceeded {
				t.Errorf("Refund %d = %+v, %v", i, rf, err)
			}
		})
	}
	wg.Wait()
	x.sb.background.Wait()
	other.background.Wait()
	in, _, err := x.sb.loadIntent(t.Context(), x.paid.Reference)
	if err != nil {
		t.Fatal(err)
	}
	if in.AmountRefunded != 0 || len(in.Refunds) != 1 || in.Refunds[0].Status != string(gateway.RefundFailed) {
		t.Fatalf("intent after the failure: refunded %d, refunds %+v; want 0 and one failed", in.AmountRefunded, in.Refunds)
	}
	deliveries := x.rc.got()
	if len(deliveries) != calls {
		t.Fatalf("%d deliveries, want one per call (%d)", len(deliveries), calls)
	}
	for i, d := range deliveries {
		if !bytes.Equal(d.body, deliveries[0].body) {
			t.Fatalf("delivery %d differs from the first:\n%s\n%s", i, d.body, deliveries[0].body)
		}
	}
}

// TestRefundFailedEventAmounts: the event carries the refund's amount in
// the gateway's units (5 ISK is 500), as Stripe's do.
func TestRefundFailedEventAmounts(t *testing.T) {
	in := &intent{ID: Reference("isk"), Currency: "ISK", PaymentID: "pay_isk"}
	ev := refundFailedEvent(in, refundState{ID: RefundPrefix + digest("isk"), Amount: 5, Status: string(gateway.RefundFailed),
		FailureReason: RefundFailureExpiredOrCanceledCard, Created: 10, Failed: 20})
	obj := ev.Data.Object
	if obj.Amount != 500 || obj.Currency != "isk" || ev.Created != 20 || obj.Created != 10 ||
		obj.Reason != nil || obj.Charge != nil || len(obj.Metadata) != 0 {
		t.Fatalf("event = %+v", ev)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"reason":null`, `"charge":null`, `"metadata":{}`, `"failure_reason":"expired_or_canceled_card"`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("event JSON lacks %s: %s", want, raw)
		}
	}
}

// TestRefundFailureDelayOption: zero is the default delay, a negative
// delay is none.
func TestRefundFailureDelayOption(t *testing.T) {
	for _, tc := range []struct{ opt, want time.Duration }{
		{0, DefaultRefundFailureDelay},
		{-1, 0},
		{time.Minute, time.Minute},
	} {
		sb, err := New(Options{State: newState(t), RefundFailureDelay: tc.opt})
		if err != nil {
			t.Fatal(err)
		}
		if sb.refundFailureDelay != tc.want {
			t.Errorf("RefundFailureDelay %v: delay %v, want %v", tc.opt, sb.refundFailureDelay, tc.want)
		}
	}
	if DefaultRefundFailureDelay < time.Second || DefaultRefundFailureDelay > 10*time.Second {
		t.Errorf("DefaultRefundFailureDelay = %v, want a few seconds", DefaultRefundFailureDelay)
	}
}
