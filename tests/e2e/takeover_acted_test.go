package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent/idempotencykey"
)

// TestTakeoverAfterTheFirstRunActed: the API crashed after a request had
// its effect and before it recorded its answer under the Idempotency-Key
// (found by the chaos suite: a refund made, the API killed, the retry
// refused with "refunded in full already"). Once the lease has run out, a
// retry with the key takes it over and must answer with what the first run
// did, not refuse because it was done: a capture, a cancel, a refund, a
// dispute opened, a dispute withdrawn. The crash is played by putting the
// key back in progress after a completed request, as the first run left it.
func TestTakeoverAfterTheFirstRunActed(t *testing.T) {
	clock := &manualClock{t: time.Now().UTC()}
	e := newEnv(t, withClock(clock.Now))
	m, c := e.merchant(t), e.customer(t)

	// crash puts key back in progress, as a run that acted and died
	// before recording its answer left it; retry replays the request after
	// the lease.
	crash := func(t *testing.T, key string) {
		t.Helper()
		n, err := e.Store.Client.IdempotencyKey.Update().
			Where(idempotencykey.Key(key)).
			SetState(idempotencykey.StateInProgress).
			Save(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("put key %s back in progress: %d rows, %v", key, n, err)
		}
		clock.Advance(2 * time.Minute)
	}
	idOf := func(t *testing.T, r reply, field string) string {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("want 200, got %s", r)
		}
		var out map[string]map[string]any
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		id, _ := out[field]["id"].(string)
		return id
	}

	t.Run("capture", func(t *testing.T) {
		p := e.create(t, c, pay(m, 3000, "EUR", "pm_card_visa").manual())
		first := e.captureR(t, m, p.Id, 1200, "Idempotency-Key", "takeover-capture")
		crash(t, "takeover-capture")
		again := e.captureR(t, m, p.Id, 1200, "Idempotency-Key", "takeover-capture")
		got := again.payment(t)
		wantStatus(t, got, stSucceeded)
		if got.AmountReceived != 1200 || idOf(t, first, "payment") != got.Id {
			t.Fatalf("the retry answered %s", again)
		}
		// A capture of another request is still refused.
		wantCode(t, e.captureR(t, m, p.Id, 0, "Idempotency-Key", "another-capture"), "failed_precondition")
	})
	t.Run("cancel", func(t *testing.T) {
		p := e.create(t, c, pay(m, 2500, "EUR", "pm_card_visa").manual())
		e.cancelR(t, m, p.Id, "abandoned", "Idempotency-Key", "takeover-cancel")
		crash(t, "takeover-cancel")
		got := e.cancelR(t, m, p.Id, "abandoned", "Idempotency-Key", "takeover-cancel").payment(t)
		wantStatus(t, got, stCanceled)
	})
	t.Run("refund", func(t *testing.T) {
		p := e.create(t, c, pay(m, 900, "USD", "pm_card_visa"))
		body := map[string]any{"payment_id": p.Id}
		first := e.post(t, m.Token, "/payments.v1.RefundService/CreateRefund", body, "Idempotency-Key", "takeover-refund")
		crash(t, "takeover-refund")
		again := e.post(t, m.Token, "/payments.v1.RefundService/CreateRefund", body, "Idempotency-Key", "takeover-refund")
		if id := idOf(t, again, "refund"); id == "" || id != idOf(t, first, "refund") {
			t.Fatalf("the retry answered %s, the first run %s", again, first)
		}
		if got := e.get(t, m, p.Id); got.AmountRefunded != 900 {
			t.Fatalf("refunded %d after the retry, want 900 once", got.AmountRefunded)
		}
	})
	t.Run("dispute opened, then withdrawn", func(t *testing.T) {
		p := e.create(t, c, pay(m, 700, "GBP", "pm_card_visa"))
		open := map[string]any{"payment_id": p.Id, "reason": "DISPUTE_REASON_PRODUCT_NOT_RECEIVED"}
		first := e.post(t, c.Token, "/payments.v1.DisputeService/OpenDispute", open, "Idempotency-Key", "takeover-open")
		dp := idOf(t, first, "dispute")
		crash(t, "takeover-open")
		again := e.post(t, c.Token, "/payments.v1.DisputeService/OpenDispute", open, "Idempotency-Key", "takeover-open")
		if id := idOf(t, again, "dispute"); id != dp {
			t.Fatalf("the retry answered %s, want dispute %s", again, dp)
		}
		w := map[string]any{"dispute_id": dp}
		e.post(t, c.Token, "/payments.v1.DisputeService/WithdrawDispute", w, "Idempotency-Key", "takeover-withdraw")
		crash(t, "takeover-withdraw")
		again = e.post(t, c.Token, "/payments.v1.DisputeService/WithdrawDispute", w, "Idempotency-Key", "takeover-withdraw")
		if id := idOf(t, again, "dispute"); id != dp {
			t.Fatalf("the withdrawal's retry answered %s", again)
		}
	})
	e.checkLedger(t)
}
