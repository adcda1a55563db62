package e2e

import (
	"strings"
	"testing"
)

const replayedHeader = "Idempotent-Replayed"

// wantReplayed checks the Idempotent-Replayed header of an answer.
func wantReplayed(t *testing.T, r reply, want string) {
	t.Helper()
	if got := r.header.Get(replayedHeader); got != want {
		t.Fatalf("%s = %q, want %q (%s)", replayedHeader, got, want, r)
	}
}

// TestIdempotencyKeys: CreatePayment, CapturePayment and CancelPayment
// honour Idempotency-Key: a replay returns the same payment with
// Idempotent-Replayed: true and does nothing again; the same key with another
// request is invalid_argument; keys are scoped to the caller's account.
func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	t.Run("CreatePayment", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		rows, calls := e.paymentRows(t), e.gw.counts()
		req := pay(m, 1500, "USD", "pm_card_visa").set("metadata", map[string]string{"order": "A-1"})
		first := e.post(t, c.Token, procCreatePayment, req, "Idempotency-Key", "create-A-1")
		p := first.payment(t)
		wantReplayed(t, first, "false")
		wantStatus(t, p, stSucceeded)

		again := e.post(t, c.Token, procCreatePayment, req, "Idempotency-Key", "create-A-1")
		wantReplayed(t, again, "true")
		if got := again.payment(t); !protoEqual(got, p) {
			t.Fatalf("the replay differs:\nfirst  %v\nreplay %v", p, got)
		}
		// The same request in another spelling (camelCase, lower-case
		// currency is a different request body, so it is refused below).
		camel := map[string]any{"merchantId": m.ID, "amount": "1500", "currency": "USD", "paymentMethod": "pm_card_visa", "metadata": map[string]string{"order": "A-1"}}
		wantReplayed(t, e.post(t, c.Token, procCreatePayment, camel, "Idempotency-Key", "create-A-1"), "true")

		for name, other := range map[string]payReq{
			"another amount":   req.set("amount", int64(1501)),
			"another currency": req.set("currency", "EUR"),
			"another method":   req.set("payment_method", "pm_card_mastercard"),
			"another metadata": req.set("metadata", map[string]string{"order": "A-2"}),
			"manual capture":   req.manual(),
		} {
			r := e.post(t, c.Token, procCreatePayment, other, "Idempotency-Key", "create-A-1")
			wantCode(t, r, "invalid_argument")
			if !strings.Contains(strings.ToLower(r.msg), "idempotency-key") {
				t.Fatalf("%s: message %q does not name the Idempotency-Key", name, r.msg)
			}
		}
		// The key of a CreatePayment, reused for another RPC.
		wantCode(t, e.cancelR(t, c, p.GetId(), "", "Idempotency-Key", "create-A-1"), "invalid_argument")

		if got := e.paymentRows(t) - rows; got != 1 {
			t.Fatalf("%d payment rows, want 1", got)
		}
		if got := e.gw.counts(); got.creates-calls.creates != 1 || got.cancels != calls.cancels {
			t.Fatalf("gateway calls %+v (before %+v), want one create", got, calls)
		}
		if got := e.get(t, c, p.GetId()); !protoEqual(got, p) {
			t.Fatalf("the payment changed:\n%v\n%v", p, got)
		}
		e.wantBalances(t, m.ID, c.ID, "USD", 1500)

		// Keys belong to an account: another customer's identical key is a
		// new payment.
		c2 := e.customer(t)
		r := e.post(t, c2.Token, procCreatePayment, req, "Idempotency-Key", "create-A-1")
		wantReplayed(t, r, "false")
		if other := r.payment(t); other.GetId() == p.GetId() || other.GetCustomerId() != c2.ID {
			t.Fatalf("another account's key replayed the first payment: %v", other)
		}

		// Keys are 1..255 characters.
		long := strings.Repeat("k", 256)
		rows = e.paymentRows(t)
		wantCode(t, e.post(t, c.Token, procCreatePayment, req.set("amount", int64(9)), "Idempotency-Key", long), "invalid_argument")
		if got := e.paymentRows(t); got != rows {
			t.Fatalf("a refused key created a payment")
		}
		r = e.post(t, c.Token, procCreatePayment, req.set("amount", int64(9)), "Idempotency-Key", long[:255])
		wantReplayed(t, r, "false")
		wantStatus(t, r.payment(t), stSucceeded)
	})

	t.Run("CapturePayment", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa").manual())
		calls := e.gw.counts()
		first := e.captureR(t, m, p.GetId(), 300, "Idempotency-Key", "capture-1")
		wantReplayed(t, first, "false")
		captured := first.payment(t)
		wantStatus(t, captured, stSucceeded)
		wantAmounts(t, captured, 0, 300)

		again := e.captureR(t, m, p.GetId(), 300, "Idempotency-Key", "capture-1")
		wantReplayed(t, again, "true")
		if got := again.payment(t); !protoEqual(got, captured) {
			t.Fatalf("the replay differs:\nfirst  %v\nreplay %v", captured, got)
		}
		wantCode(t, e.captureR(t, m, p.GetId(), 400, "Idempotency-Key", "capture-1"), "invalid_argument")
		// Without the key, a second capture is refused by the state machine.
		wantCode(t, e.captureR(t, m, p.GetId(), 300), "failed_precondition")
		if got := e.gw.counts(); got.captures-calls.captures != 1 {
			t.Fatalf("%d gateway captures, want 1", got.captures-calls.captures)
		}
		e.wantBalances(t, m.ID, c.ID, "USD", 300)
	})

	t.Run("CancelPayment", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa").manual())
		calls := e.gw.counts()
		first := e.cancelR(t, m, p.GetId(), "abandoned", "Idempotency-Key", "cancel-1")
		wantReplayed(t, first, "false")
		canceled := first.payment(t)
		wantStatus(t, canceled, stCanceled)

		again := e.cancelR(t, m, p.GetId(), "abandoned", "Idempotency-Key", "cancel-1")
		wantReplayed(t, again, "true")
		if got := again.payment(t); !protoEqual(got, canceled) {
			t.Fatalf("the replay differs:\nfirst  %v\nreplay %v", canceled, got)
		}
		wantCode(t, e.cancelR(t, m, p.GetId(), "fraudulent", "Idempotency-Key", "cancel-1"), "invalid_argument")
		if got := e.gw.counts(); got.cancels-calls.cancels != 1 {
			t.Fatalf("%d gateway cancels, want 1", got.cancels-calls.cancels)
		}

		// A refused request replays as refused.
		done := e.create(t, c, pay(m, 100, "USD", "pm_card_visa"))
		r := e.cancelR(t, m, done.GetId(), "", "Idempotency-Key", "cancel-2")
		wantCode(t, r, "failed_precondition")
		r2 := e.cancelR(t, m, done.GetId(), "", "Idempotency-Key", "cancel-2")
		wantCode(t, r2, "failed_precondition")
		wantReplayed(t, r2, "true")
		if r2.msg != r.msg {
			t.Fatalf("replayed error message %q, first %q", r2.msg, r.msg)
		}

		// A refusal with a field violation replays with the same violation.
		unknown := pay(m, 100, "USD", "pm_card_visa").set("merchant_id", "acct_01m8aaaaaaaaaaaaaaaaaaaaaa")
		f1 := e.post(t, c.Token, procCreatePayment, unknown, "Idempotency-Key", "unknown-merchant-1")
		f2 := e.post(t, c.Token, procCreatePayment, unknown, "Idempotency-Key", "unknown-merchant-1")
		wantCode(t, f1, "invalid_argument")
		wantCode(t, f2, "invalid_argument")
		wantReplayed(t, f2, "true")
		if a, b := f1.fields(t), f2.fields(t); len(a) != 1 || a[0] != "merchant_id" || len(b) != 1 || b[0] != a[0] || f2.msg != f1.msg {
			t.Fatalf("first refusal %q %v, replay %q %v", f1.msg, a, f2.msg, b)
		}
		e.checkLedger(t)
	})
}
