package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
)

// TestOneProvider: an intent created through one sandbox is retrieved,
// captured, refunded, found and replayed through others on the same state,
// as the API and several workers share the platform's database.
func TestOneProvider(t *testing.T) { forEachState(t, testOneProvider) }

func testOneProvider(t *testing.T, st State) {
	ctx := t.Context()
	worker1, worker2 := newSandboxOn(t, st), newSandboxOn(t, st)

	auth, err := worker1.CreatePayment(ctx, createReq("one/1", "pm_card_mastercard", true))
	if err != nil || auth.Status != gateway.StatusRequiresCapture {
		t.Fatalf("authorize: %+v, %v", auth, err)
	}
	if got, err := worker2.Retrieve(ctx, auth.Reference); err != nil || got != auth {
		t.Fatalf("Retrieve elsewhere = %+v, %v; want %+v", got, err, auth)
	}
	captured, err := worker2.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "one/1/capture", Reference: auth.Reference, Currency: "USD"})
	want := gateway.Result{Reference: auth.Reference, Status: gateway.StatusSucceeded, Amount: 1234, AmountReceived: 1234, Method: auth.Method}
	if err != nil || captured != want {
		t.Fatalf("Capture elsewhere (all) = %+v, %v; want %+v", captured, err, want)
	}
	restarted := newSandboxOn(t, st)
	if got, err := restarted.Retrieve(ctx, auth.Reference); err != nil || got != want {
		t.Fatalf("Retrieve after a restart = %+v, %v; want %+v", got, err, want)
	}
	rf, err := restarted.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "one/1/refund", PaymentID: "pay_01testpayment",
		Reference: auth.Reference, Amount: 234, Currency: "USD", Reason: "requested_by_customer"})
	if err != nil || rf.Amount != 234 || rf.Status != gateway.RefundSucceeded || !strings.HasPrefix(rf.Reference, RefundPrefix) {
		t.Fatalf("Refund = %+v, %v", rf, err)
	}
	// Retried elsewhere: the same refund, not a second one.
	again, err := worker1.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "one/1/refund", PaymentID: "pay_01testpayment",
		Reference: auth.Reference, Amount: 234, Currency: "USD", Reason: "requested_by_customer"})
	if err != nil || again != rf {
		t.Fatalf("Refund replay = %+v, %v; want %+v", again, err, rf)
	}
	// The replayed create still answers what it answered first.
	if replay, err := worker2.CreatePayment(ctx, createReq("one/1", "pm_card_mastercard", true)); err != nil || replay != auth {
		t.Fatalf("create replay = %+v, %v; want %+v", replay, err, auth)
	}
	found, err := worker1.Find(ctx, gateway.FindRequest{PaymentID: "pay_01testpayment"})
	if err != nil || !found.Exists || found.Result != want {
		t.Fatalf("Find = %+v, %v; want %+v", found, err, want)
	}
	// 1000 is left to refund, not 766.
	_, err = worker2.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "one/1/refund2", Reference: auth.Reference, Amount: 1001})
	ge := wantGatewayError(t, err, gateway.Invalid, "amount_too_large", http.StatusBadRequest)
	if !strings.Contains(ge.Message, "(1000)") {
		t.Fatalf("message %q", ge.Message)
	}
}

func TestCapture(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	auth, err := sb.CreatePayment(ctx, createReq("cap/1", "pm_card_mastercard", true))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "cap/1/too-much", Reference: auth.Reference, Amount: 1235})
	wantGatewayError(t, err, gateway.Invalid, "amount_too_large", http.StatusBadRequest)

	// A partial capture releases the rest.
	capture := gateway.CaptureRequest{IdempotencyKey: "cap/1/capture", Reference: auth.Reference, Amount: 1000}
	res, err := sb.Capture(ctx, capture)
	want := gateway.Result{Reference: auth.Reference, Status: gateway.StatusSucceeded, Amount: 1234, AmountReceived: 1000, Method: auth.Method}
	if err != nil || res != want {
		t.Fatalf("Capture = %+v, %v; want %+v", res, err, want)
	}
	if got, err := sb.Retrieve(ctx, auth.Reference); err != nil || got != want {
		t.Fatalf("Retrieve after capture = %+v, %v; want %+v", got, err, want)
	}
	// The same key replays the capture; another is refused, as Stripe
	// refuses to capture a succeeded intent.
	if again, err := sb.Capture(ctx, capture); err != nil || again != want {
		t.Fatalf("Capture replay = %+v, %v", again, err)
	}
	_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "cap/1/capture-again", Reference: auth.Reference, Amount: 1000})
	ge := wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)
	if !strings.Contains(ge.Message, "status of succeeded") {
		t.Fatalf("message %q", ge.Message)
	}
	// A retried create does not roll the state back.
	if _, err := sb.CreatePayment(ctx, createReq("cap/1", "pm_card_mastercard", true)); err != nil {
		t.Fatal(err)
	}
	if got, _ := sb.Retrieve(ctx, auth.Reference); got != want {
		t.Fatalf("Retrieve after a replayed create = %+v", got)
	}

	// Only requires_capture intents can be captured.
	for _, method := range []string{"pm_card_visa", "pm_card_chargeDeclined", "pm_card_authenticationRequired"} {
		res, err := sb.CreatePayment(ctx, createReq("cap/state/"+method, method, false))
		if err != nil {
			t.Fatal(err)
		}
		_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "cap/state/" + method + "/capture", Reference: res.Reference})
		wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)
	}
	// An unknown reference.
	_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "cap/unknown", Reference: Reference("never-created")})
	wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
}

// TestSavedRefusal: a refusal is saved under its key like a success, so a
// retry with that key gets it even once the state would allow the call; a
// new key is evaluated afresh.
func TestSavedRefusal(t *testing.T) {
	x := newThreeDS(t, "refusal/1", true, "")
	ctx := t.Context()
	capture := gateway.CaptureRequest{IdempotencyKey: "refusal/1/capture#1", Reference: x.res.Reference}
	_, err := x.worker.Capture(ctx, capture)
	wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)

	if w := x.do(http.MethodPost, x.pageURL(), OutcomeSucceed); w.Code != http.StatusSeeOther {
		t.Fatalf("3-D Secure: %d %s", w.Code, w.Body)
	}
	// Now requires_capture, yet the key still answers its refusal, from
	// any process.
	for _, sb := range []*Sandbox{x.worker, x.sb} {
		_, err = sb.Capture(ctx, capture)
		wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)
	}
	res, err := x.worker.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "refusal/1/capture#2", Reference: x.res.Reference})
	if err != nil || res.Status != gateway.StatusSucceeded || res.AmountReceived != 1234 {
		t.Fatalf("capture with a new key: %+v, %v", res, err)
	}
}

func TestCancel(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	tests := []struct {
		method string
		manual bool
		ok     bool
	}{
		{"pm_card_visa", true, true},                    // requires_capture
		{"pm_card_authenticationRequired", false, true}, // requires_action
		{"pm_card_chargeDeclined", false, true},         // requires_payment_method
		{"pm_card_visa", false, false},                  // succeeded
	}
	for _, tc := range tests {
		key := fmt.Sprintf("cancel/%s/%v", tc.method, tc.manual)
		created, err := sb.CreatePayment(ctx, createReq(key, tc.method, tc.manual))
		if err != nil {
			t.Fatal(err)
		}
		cancel := gateway.CancelRequest{IdempotencyKey: key + "/cancel", Reference: created.Reference, Reason: "abandoned"}
		res, err := sb.Cancel(ctx, cancel)
		if !tc.ok {
			ge := wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)
			if !strings.Contains(ge.Message, "status of succeeded") {
				t.Errorf("%s: message %q", key, ge.Message)
			}
			continue
		}
		want := gateway.Result{Reference: created.Reference, Status: gateway.StatusCanceled, Amount: 1234, Method: created.Method}
		if err != nil || res != want {
			t.Errorf("%s: Cancel = %+v, %v; want %+v", key, res, err, want)
		}
		if got, _ := sb.Retrieve(ctx, created.Reference); got != want {
			t.Errorf("%s: Retrieve = %+v", key, got)
		}
		// Replayed with its key; refused with another, as Stripe refuses
		// to cancel a canceled intent.
		if again, err := sb.Cancel(ctx, cancel); err != nil || again != want {
			t.Errorf("%s: replay = %+v, %v", key, again, err)
		}
		cancel.IdempotencyKey += "#2"
		_, err = sb.Cancel(ctx, cancel)
		wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)
		_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: key + "/capture", Reference: created.Reference})
		wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)
	}
	_, err := sb.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "cancel/unknown", Reference: Reference("never-created")})
	wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
}

func TestBadReferences(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	for _, ref := range []string{"pi_3abc", "pi_sbx_short", Reference("never-created")} {
		_, err := sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "k", Reference: ref, Amount: 1})
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
		_, err = sb.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "k2", Reference: ref})
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
		_, err = sb.Retrieve(ctx, ref)
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
		_, err = sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "k3", Reference: ref, Amount: 1})
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
	}
	_, err := sb.Find(ctx, gateway.FindRequest{Reference: "pi_3abc"})
	wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
	_, err = sb.Void(ctx, gateway.VoidRequest{Reference: "pi_3abc"})
	wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
	_, err = sb.Find(ctx, gateway.FindRequest{})
	wantGatewayError(t, err, gateway.Invalid, "parameter_missing", http.StatusBadRequest)
	_, err = sb.Void(ctx, gateway.VoidRequest{})
	wantGatewayError(t, err, gateway.Invalid, "parameter_missing", http.StatusBadRequest)
}

func TestRetrieve(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	created, err := sb.CreatePayment(ctx, createReq("ret/1", "pm_card_chargeDeclinedExpiredCard", false))
	if err != nil {
		t.Fatal(err)
	}
	got, err := sb.Retrieve(ctx, created.Reference)
	if err != nil || got != created {
		t.Fatalf("Retrieve = %+v, %v; want %+v", got, err, created)
	}
	// No more guessing "processing" for what the provider does not hold.
	_, err = sb.Retrieve(ctx, Reference("ret/unknown"))
	ge := wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
	if !strings.Contains(ge.Message, Reference("ret/unknown")) {
		t.Fatalf("message %q", ge.Message)
	}
}

func TestFind(t *testing.T) {
	ctx := t.Context()
	// A clock that moves, so that "newer" means something.
	var tick atomic.Int64
	sb, err := New(Options{State: newState(t), PublicURL: "http://payments.test:8080", WebhookSecret: testSecret,
		Now: func() time.Time { return fixedNow.Add(time.Duration(tick.Add(1)) * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(key, payment, method string, manual bool) gateway.Result {
		t.Helper()
		r := createReq(key, method, manual)
		r.PaymentID = payment
		res, err := sb.CreatePayment(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	find := func(r gateway.FindRequest) gateway.Found {
		t.Helper()
		f, err := sb.Find(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	if f := find(gateway.FindRequest{PaymentID: "pay_find_none"}); f.Exists {
		t.Fatalf("Find(no intent) = %+v", f)
	}
	if f := find(gateway.FindRequest{PaymentID: "pay_find_none", Reference: Reference("find/none")}); f.Exists {
		t.Fatalf("Find(unknown reference, no intent) = %+v", f)
	}

	// A declined first try, then an approved one: the approved one.
	declined := mk("find/a/1", "pay_find_a", "pm_card_chargeDeclined", false)
	approved := mk("find/a/2", "pay_find_a", "pm_card_visa", true)
	if f := find(gateway.FindRequest{PaymentID: "pay_find_a"}); !f.Exists || f.Result != approved {
		t.Fatalf("Find(pay_find_a) = %+v, want %+v", f, approved)
	}
	// A reference is looked up directly.
	if f := find(gateway.FindRequest{PaymentID: "pay_find_a", Reference: declined.Reference}); !f.Exists || f.Result != declined {
		t.Fatalf("Find(by reference) = %+v, want %+v", f, declined)
	}
	// An unknown reference falls back on the payment.
	if f := find(gateway.FindRequest{PaymentID: "pay_find_a", Reference: Reference("find/a/unknown")}); f.Result != approved {
		t.Fatalf("Find(unknown reference) = %+v, want %+v", f, approved)
	}
	// Of two declines, the newer.
	mk("find/b/1", "pay_find_b", "pm_card_chargeDeclined", false)
	newer := mk("find/b/2", "pay_find_b", "pm_card_chargeDeclinedExpiredCard", false)
	if f := find(gateway.FindRequest{PaymentID: "pay_find_b"}); f.Result != newer {
		t.Fatalf("Find(pay_find_b) = %+v, want %+v", f, newer)
	}
	// Other payments' intents are not found.
	if f := find(gateway.FindRequest{PaymentID: "pay_find"}); f.Exists {
		t.Fatalf("Find(a prefix) = %+v", f)
	}
}

func TestVoid(t *testing.T) {
	ctx := t.Context()
	st := newState(t)
	sb := newSandboxOn(t, st)
	mk := func(key, payment, method string, manual bool) gateway.Result {
		t.Helper()
		r := createReq(key, method, manual)
		r.PaymentID = payment
		res, err := sb.CreatePayment(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	t.Run("authorized", func(t *testing.T) {
		auth := mk("void/auth", "pay_void_auth", "pm_card_visa", true)
		want := gateway.Result{Reference: auth.Reference, Status: gateway.StatusCanceled, Amount: 1234, Method: auth.Method}
		for range 2 { // a void converges: again, the same answer
			f, err := sb.Void(ctx, gateway.VoidRequest{IdempotencyKey: "void/auth/void", PaymentID: "pay_void_auth", Reason: "abandoned"})
			if err != nil || !f.Exists || f.Result != want {
				t.Fatalf("Void = %+v, %v; want %+v", f, err, want)
			}
		}
		if got, _ := newSandboxOn(t, st).Retrieve(ctx, auth.Reference); got != want {
			t.Fatalf("Retrieve elsewhere = %+v", got)
		}
		_, err := sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "void/auth/capture", Reference: auth.Reference})
		wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)
	})

	t.Run("final intents stay", func(t *testing.T) {
		paid := mk("void/paid", "pay_void_paid", "pm_card_visa", false)
		f, err := sb.Void(ctx, gateway.VoidRequest{PaymentID: "pay_void_paid", Reference: paid.Reference})
		if err != nil || f.Result != paid {
			t.Fatalf("Void(succeeded) = %+v, %v; want %+v", f, err, paid)
		}
		declined := mk("void/declined", "pay_void_declined", "pm_card_chargeDeclined", false)
		f, err = sb.Void(ctx, gateway.VoidRequest{PaymentID: "pay_void_declined"})
		if err != nil || f.Result != declined {
			t.Fatalf("Void(failed) = %+v, %v; want %+v", f, err, declined)
		}
	})

	t.Run("every live intent of the payment", func(t *testing.T) {
		a := mk("void/many/1", "pay_void_many", "pm_card_authenticationRequired", false)
		b := mk("void/many/2", "pay_void_many", "pm_card_visa", true)
		if _, err := sb.Void(ctx, gateway.VoidRequest{PaymentID: "pay_void_many", Reference: b.Reference}); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{a.Reference, b.Reference} {
			if got, _ := sb.Retrieve(ctx, ref); got.Status != gateway.StatusCanceled || got.AmountCapturable != 0 || got.RedirectURL != "" {
				t.Fatalf("after the void: %+v", got)
			}
		}
	})

	t.Run("late create", func(t *testing.T) {
		f, err := sb.Void(ctx, gateway.VoidRequest{PaymentID: "pay_void_late", Reason: "abandoned"})
		if err != nil || f.Exists {
			t.Fatalf("Void(no intent) = %+v, %v", f, err)
		}
		// The create the platform gave up on arrives, through another process.
		late := createReq("void/late", "pm_card_visa", false)
		late.PaymentID = "pay_void_late"
		res, err := newSandboxOn(t, st).CreatePayment(ctx, late)
		want := gateway.Result{Reference: Reference("void/late"), Status: gateway.StatusCanceled, Amount: 1234,
			Method: gateway.MethodDetails{Type: "card", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2034}}
		if err != nil || res != want {
			t.Fatalf("late create = %+v, %v; want %+v", res, err, want)
		}
		if again, err := sb.CreatePayment(ctx, late); err != nil || again != want {
			t.Fatalf("late create replayed = %+v, %v", again, err)
		}
		if f, err := sb.Find(ctx, gateway.FindRequest{PaymentID: "pay_void_late"}); err != nil || f.Result != want {
			t.Fatalf("Find = %+v, %v", f, err)
		}
		// Each later create too, whatever its method.
		late3ds := createReq("void/late/3ds", "pm_card_authenticationRequired", true)
		late3ds.PaymentID = "pay_void_late"
		if res, err := sb.CreatePayment(ctx, late3ds); err != nil || res.Status != gateway.StatusCanceled || res.RedirectURL != "" {
			t.Fatalf("late 3-D Secure create = %+v, %v", res, err)
		}
		// Other payments are not affected.
		if res := mk("void/other", "pay_void_other", "pm_card_visa", false); res.Status != gateway.StatusSucceeded {
			t.Fatalf("another payment: %+v", res)
		}
	})
}

// TestVoidRacesCreate runs a create and a void of one payment at once,
// through two processes, many times: whatever the interleaving, the void
// never reports "no intent" or "canceled" while the create took the money.
func TestVoidRacesCreate(t *testing.T) { forEachState(t, testVoidRacesCreate) }

func testVoidRacesCreate(t *testing.T, st State) {
	ctx := t.Context()
	worker, api := newSandboxOn(t, st), newSandboxOn(t, st)
	const rounds = 15
	canceled, succeeded := 0, 0
	for i := range rounds {
		payment := fmt.Sprintf("pay_race_%d", i)
		req := createReq("race/"+payment, "pm_card_visa", false)
		req.PaymentID = payment
		var (
			wg      sync.WaitGroup
			created gateway.Result
			found   gateway.Found
			cErr    error
			vErr    error
		)
		wg.Go(func() { created, cErr = worker.CreatePayment(ctx, req) })
		wg.Go(func() { found, vErr = api.Void(ctx, gateway.VoidRequest{PaymentID: payment, Reason: "abandoned"}) })
		wg.Wait()
		if cErr != nil || vErr != nil {
			t.Fatalf("round %d: create %v, void %v", i, cErr, vErr)
		}
		final, err := worker.Retrieve(ctx, created.Reference)
		if err != nil {
			t.Fatal(err)
		}
		if final != created {
			t.Fatalf("round %d: create answered %+v, the intent is %+v", i, created, final)
		}
		switch final.Status {
		case gateway.StatusCanceled:
			canceled++
			if final.AmountReceived != 0 {
				t.Fatalf("round %d: canceled but received %d", i, final.AmountReceived)
			}
		case gateway.StatusSucceeded:
			succeeded++
			if !found.Exists || found.Result != final {
				t.Fatalf("round %d: the create took the money but the void reported %+v", i, found)
			}
		default:
			t.Fatalf("round %d: status %q", i, final.Status)
		}
	}
	t.Logf("%d creates canceled by the void, %d before it", canceled, succeeded)
}

func TestRefund(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	paid, err := sb.CreatePayment(ctx, createReq("refund/1", "pm_card_visa", false))
	if err != nil {
		t.Fatal(err)
	}
	refund := func(key string, amount int64) (gateway.RefundResult, error) {
		return sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: key, PaymentID: "pay_01testpayment",
			Reference: paid.Reference, Amount: amount, Currency: "USD", Reason: "requested_by_customer"})
	}
	r1, err := refund("refund/1/a", 1000)
	if err != nil || r1 != (gateway.RefundResult{Reference: RefundPrefix + digest("refund/1/a"), Status: gateway.RefundSucceeded, Amount: 1000}) {
		t.Fatalf("first refund = %+v, %v", r1, err)
	}
	if again, err := refund("refund/1/a", 1000); err != nil || again != r1 {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	_, err = refund("refund/1/a", 999)
	wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
	_, err = refund("refund/1/b", 235)
	wantGatewayError(t, err, gateway.Invalid, "amount_too_large", http.StatusBadRequest)
	// Amount 0 is what is left.
	r2, err := refund("refund/1/c", 0)
	if err != nil || r2.Amount != 234 || r2.Reference == r1.Reference {
		t.Fatalf("refund of the rest = %+v, %v", r2, err)
	}
	_, err = refund("refund/1/d", 1)
	wantGatewayError(t, err, gateway.Invalid, "charge_already_refunded", http.StatusBadRequest)
	// The intent still reports what it received.
	if got, _ := sb.Retrieve(ctx, paid.Reference); got != paid {
		t.Fatalf("Retrieve after refunds = %+v", got)
	}

	// Only what succeeded can be refunded.
	auth, err := sb.CreatePayment(ctx, createReq("refund/2", "pm_card_visa", true))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "refund/2/a", Reference: auth.Reference, Amount: 1})
	wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)

	_, err = sb.Refund(ctx, gateway.RefundRequest{Reference: paid.Reference, Amount: 1})
	wantGatewayError(t, err, gateway.Invalid, "parameter_missing", http.StatusBadRequest)
	_, err = sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "refund/1/e", Reference: paid.Reference, Amount: -1})
	wantGatewayError(t, err, gateway.Invalid, "amount_too_small", http.StatusBadRequest)
	_, err = sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "refund/1/f", Reference: paid.Reference, Amount: 1, Reason: "because"})
	wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)
}

// TestConcurrentRefunds: refunds racing on one intent never refund more
// than it received.
func TestConcurrentRefunds(t *testing.T) { forEachState(t, testConcurrentRefunds) }

func testConcurrentRefunds(t *testing.T, st State) {
	ctx := t.Context()
	sbs := []*Sandbox{newSandboxOn(t, st), newSandboxOn(t, st)}
	paid, err := sbs[0].CreatePayment(ctx, createReq("refund/race", "pm_card_visa", false))
	if err != nil {
		t.Fatal(err)
	}
	const n = 8 // of 300 each, on 1234: four fit
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for i := range n {
		wg.Go(func() {
			_, err := sbs[i%2].Refund(ctx, gateway.RefundRequest{IdempotencyKey: fmt.Sprintf("refund/race/%d", i),
				Reference: paid.Reference, Amount: 300})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				ok++
				return
			}
			if gateway.KindOf(err) != gateway.Invalid {
				t.Errorf("refund %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok != 4 {
		t.Fatalf("%d refunds of 300 on 1234 succeeded, want 4", ok)
	}
}

// hookState calls hook after each call of the State it wraps, so that a
// test can run something exactly between two steps of the sandbox.
type hookState struct {
	State
	hook func(op, id string)
}

func (h *hookState) GetSandboxObject(ctx context.Context, id string) (string, int64, bool, error) {
	data, v, found, err := h.State.GetSandboxObject(ctx, id)
	h.hook("get", id)
	return data, v, found, err
}

func (h *hookState) CreateSandboxObject(ctx context.Context, id, kind, paymentID, data string, now time.Time) (bool, error) {
	created, err := h.State.CreateSandboxObject(ctx, id, kind, paymentID, data, now)
	h.hook("create", id)
	return created, err
}

func (h *hookState) CreateSandboxObjects(ctx context.Context, objs []NewObject, now time.Time) (bool, error) {
	created, err := h.State.CreateSandboxObjects(ctx, objs, now)
	for _, o := range objs {
		h.hook("create", o.ID)
	}
	return created, err
}

// TestVoidDuringCreate runs a void at each step of a create of the same
// payment: the void either finds the intent and cancels it, or the create
// finds the void and cancels its own intent; the money is never taken
// behind the void's back.
func TestVoidDuringCreate(t *testing.T) {
	const payment = "pay_void_during"
	key := "void/during/create"
	ref := Reference(key)
	tests := []struct {
		name      string
		op, id    string // the void runs right after this call
		voidFinds bool   // whether the void sees the intent
	}{
		{"after the key was looked up", "get", claimPrefix + keyID(key), false},
		{"after the claim and the intent are stored", "create", ref, true},
		{"after the void mark was read", "get", voidID(payment), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			st := newState(t)
			api := newSandboxOn(t, st)
			var (
				once  sync.Once
				found gateway.Found
				vErr  error
			)
			hooked := &hookState{State: st, hook: func(op, id string) {
				if op == tc.op && id == tc.id {
					once.Do(func() {
						found, vErr = api.Void(ctx, gateway.VoidRequest{PaymentID: payment, Reason: "abandoned"})
					})
				}
			}}
			worker := newSandboxOn(t, hooked)
			req := createReq(key, "pm_card_visa", false)
			req.PaymentID = payment
			res, err := worker.CreatePayment(ctx, req)
			if err != nil || vErr != nil {
				t.Fatalf("create: %v; void: %v", err, vErr)
			}
			var ran bool
			once.Do(func() { ran = true })
			if ran {
				t.Fatal("the void never ran: the hook point is wrong")
			}
			want := gateway.Result{Reference: ref, Status: gateway.StatusCanceled, Amount: 1234,
				Method: gateway.MethodDetails{Type: "card", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2034}}
			if res != want {
				t.Fatalf("create = %+v, want %+v", res, want)
			}
			if found.Exists != tc.voidFinds || (found.Exists && found.Result != want) {
				t.Fatalf("void found %+v", found)
			}
			if got, err := api.Retrieve(ctx, ref); err != nil || got != want {
				t.Fatalf("Retrieve = %+v, %v", got, err)
			}
		})
	}
}

// failingState fails the first compare-and-swap of one object, as a crash
// or a lost connection between two steps of a call would.
type failingState struct {
	State
	id     string
	failed atomic.Bool
}

func (f *failingState) UpdateSandboxObject(ctx context.Context, id string, version int64, data string, now time.Time) (bool, error) {
	if id == f.id && f.failed.CompareAndSwap(false, true) {
		return false, errors.New("connection lost")
	}
	return f.State.UpdateSandboxObject(ctx, id, version, data, now)
}

// TestInterruptedCreate: a create interrupted after storing its intent
// leaves it processing, taking no money, and its retry finishes it.
func TestInterruptedCreate(t *testing.T) {
	ctx := t.Context()
	st := newState(t)
	req := createReq("interrupted/1", "pm_card_visa", false)
	flaky := newSandboxOn(t, &failingState{State: st, id: Reference("interrupted/1")})
	_, err := flaky.CreatePayment(ctx, req)
	ge := wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusInternalServerError)
	if !strings.Contains(ge.Message, "connection lost") {
		t.Fatalf("message %q", ge.Message)
	}
	other := newSandboxOn(t, st)
	got, err := other.Retrieve(ctx, Reference("interrupted/1"))
	if err != nil || got.Status != gateway.StatusProcessing || got.AmountReceived != 0 {
		t.Fatalf("Retrieve of the interrupted intent = %+v, %v", got, err)
	}
	res, err := other.CreatePayment(ctx, req)
	if err != nil || res.Status != gateway.StatusSucceeded || res.AmountReceived != 1234 {
		t.Fatalf("retried create = %+v, %v", res, err)
	}
	if again, err := flaky.CreatePayment(ctx, req); err != nil || again != res {
		t.Fatalf("replay = %+v, %v", again, err)
	}
}

// countingState counts the reads and the writes that change something (each
// a commit) of the State it wraps.
type countingState struct {
	State
	reads, writes atomic.Int64
}

func (c *countingState) GetSandboxObject(ctx context.Context, id string) (string, int64, bool, error) {
	c.reads.Add(1)
	return c.State.GetSandboxObject(ctx, id)
}

func (c *countingState) CreateSandboxObject(ctx context.Context, id, kind, paymentID, data string, now time.Time) (bool, error) {
	created, err := c.State.CreateSandboxObject(ctx, id, kind, paymentID, data, now)
	if created {
		c.writes.Add(1)
	}
	return created, err
}

func (c *countingState) CreateSandboxObjects(ctx context.Context, objs []NewObject, now time.Time) (bool, error) {
	created, err := c.State.CreateSandboxObjects(ctx, objs, now)
	if created {
		c.writes.Add(1)
	}
	return created, err
}

func (c *countingState) UpdateSandboxObject(ctx context.Context, id string, version int64, data string, now time.Time) (bool, error) {
	ok, err := c.State.UpdateSandboxObject(ctx, id, version, data, now)
	if ok {
		c.writes.Add(1)
	}
	return ok, err
}

// TestCreateCommits: a first create stores the key's claim and the intent
// in one write and confirms it in a second, reading only the claim and the
// void mark; its replay writes nothing. The sandbox's state is on the
// platform's database, so each commit here is one more in `make bench`.
func TestCreateCommits(t *testing.T) {
	ctx := t.Context()
	c := &countingState{State: newState(t)}
	sb := newSandboxOn(t, c)
	req := createReq("commits/1", "pm_card_visa", false)
	first, err := sb.CreatePayment(ctx, req)
	if err != nil || first.Status != gateway.StatusSucceeded {
		t.Fatalf("create = %+v, %v", first, err)
	}
	if r, w := c.reads.Load(), c.writes.Load(); r != 2 || w != 2 {
		t.Fatalf("a first create made %d reads and %d writes, want 2 and 2", r, w)
	}
	c.reads.Store(0)
	c.writes.Store(0)
	again, err := sb.CreatePayment(ctx, req)
	if err != nil || again != first {
		t.Fatalf("replay = %+v, %v; want %+v", again, err, first)
	}
	if w := c.writes.Load(); w != 0 {
		t.Fatalf("a replayed create committed %d writes", w)
	}
}

// TestCreateKeyClaimedMeanwhile: when a create with the same key and other
// parameters claims it between this create's look-up and its write, this
// create stores nothing of its own and is refused; with the same
// parameters, it answers as the other did, with one intent between them.
func TestCreateKeyClaimedMeanwhile(t *testing.T) {
	for _, same := range []bool{false, true} {
		t.Run(map[bool]string{false: "other parameters", true: "same parameters"}[same], func(t *testing.T) {
			ctx := t.Context()
			st := newState(t)
			api := newSandboxOn(t, st)
			key := fmt.Sprintf("meanwhile/create/%v", same)
			ref := Reference(key)
			other := createReq(key, "pm_card_visa", false)
			if !same {
				other.Amount = 999
			}
			var (
				once     sync.Once
				otherRes gateway.Result
				otherErr error
			)
			hooked := &hookState{State: st, hook: func(op, id string) {
				if op == "get" && id == claimPrefix+keyID(key) {
					once.Do(func() { otherRes, otherErr = api.CreatePayment(ctx, other) })
				}
			}}
			res, err := newSandboxOn(t, hooked).CreatePayment(ctx, createReq(key, "pm_card_visa", false))
			if otherErr != nil || otherRes.Status != gateway.StatusSucceeded || otherRes.Amount != other.Amount {
				t.Fatalf("the other create = %+v, %v", otherRes, otherErr)
			}
			if !same {
				wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
			} else if err != nil || res != otherRes {
				t.Fatalf("create = %+v, %v; want the other's %+v", res, err, otherRes)
			}
			if got, err := api.Retrieve(ctx, ref); err != nil || got != otherRes {
				t.Fatalf("Retrieve = %+v, %v; want %+v", got, err, otherRes)
			}
			ids, err := st.SandboxObjectIDs(ctx, other.PaymentID, kindIntent)
			if err != nil || len(ids) != 1 || ids[0] != ref {
				t.Fatalf("intents of the payment = %v, %v; want only %s", ids, err, ref)
			}
		})
	}
}
