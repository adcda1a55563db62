package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent/idempotencykey"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// TestTakeoverAfterTheFirstRunActed: the API crashed after a request had
// its effect and before it recorded its answer under the Idempotency-Key
// (found by the chaos suite: a refund made, the API killed, the retry
// refused with "refunded in full already"). Once the lease has run out, a
// retry with the key takes it over and must answer with what the first run
// did, not refuse because it was done: a capture, a cancel, a refund, a
// dispute opened, a dispute withdrawn. The crash is played by putting the
// key back as the first run left it after a completed request.
func TestTakeoverAfterTheFirstRunActed(t *testing.T) {
	clock := &manualClock{t: time.Now().UTC()}
	e := newEnv(t, withClock(clock.Now))
	m, c := e.merchant(t), e.customer(t)

	// crash puts key back as a run that acted and died before recording
	// its answer left it (store.BeginIdempotency's record, never
	// completed): in progress, with no response code and no stored body.
	// The clock then passes the lease, so that the retry takes it over.
	crash := func(t *testing.T, key string) {
		t.Helper()
		n, err := e.Store.Client.IdempotencyKey.Update().
			Where(idempotencykey.Key(key)).
			SetState(idempotencykey.StateInProgress).
			SetResponseCode(0).
			ClearResponseBody().
			Save(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("put key %s back in progress: %d rows, %v", key, n, err)
		}
		clock.Advance(2 * time.Minute)
	}

	t.Run("capture", func(t *testing.T) {
		p := e.create(t, c, pay(m, 3000, "EUR", "pm_card_visa").manual())
		first := e.captureR(t, m, p.GetId(), 1200, "Idempotency-Key", "takeover-capture").payment(t)
		wantStatus(t, first, stSucceeded)
		crash(t, "takeover-capture")
		again := e.captureR(t, m, p.GetId(), 1200, "Idempotency-Key", "takeover-capture").payment(t)
		wantStatus(t, again, stSucceeded)
		if again.GetId() != first.GetId() || again.GetAmountReceived() != 1200 {
			t.Fatalf("the retry answered %v, the first run %v", again, first)
		}
		// A capture of another request is still refused.
		wantCode(t, e.captureR(t, m, p.GetId(), 0, "Idempotency-Key", "another-capture"), "failed_precondition")
	})
	t.Run("cancel", func(t *testing.T) {
		p := e.create(t, c, pay(m, 2500, "EUR", "pm_card_visa").manual())
		first := e.cancelR(t, m, p.GetId(), "abandoned", "Idempotency-Key", "takeover-cancel").payment(t)
		wantStatus(t, first, stCanceled)
		crash(t, "takeover-cancel")
		again := e.cancelR(t, m, p.GetId(), "abandoned", "Idempotency-Key", "takeover-cancel").payment(t)
		wantStatus(t, again, stCanceled)
		if again.GetId() != first.GetId() {
			t.Fatalf("the retry answered %v, the first run %v", again, first)
		}
	})
	t.Run("refund", func(t *testing.T) {
		p := e.create(t, c, pay(m, 900, "USD", "pm_card_visa"))
		body := map[string]any{"payment_id": p.GetId()}
		first := e.post(t, m.Token, procCreateRefund, body, "Idempotency-Key", "takeover-refund").refund(t)
		crash(t, "takeover-refund")
		again := e.post(t, m.Token, procCreateRefund, body, "Idempotency-Key", "takeover-refund").refund(t)
		if again.GetId() != first.GetId() || again.GetAmount() != 900 {
			t.Fatalf("the retry answered %v, the first run %v", again, first)
		}
		if got := e.get(t, m, p.GetId()); got.GetAmountRefunded() != 900 {
			t.Fatalf("refunded %d after the retry, want 900 once", got.GetAmountRefunded())
		}
	})
	t.Run("dispute opened, then withdrawn", func(t *testing.T) {
		p := e.create(t, c, pay(m, 700, "GBP", "pm_card_visa"))
		open := map[string]any{"payment_id": p.GetId(), "reason": "DISPUTE_REASON_PRODUCT_NOT_RECEIVED"}
		dp := e.post(t, c.Token, procOpenDispute, open, "Idempotency-Key", "takeover-open").dispute(t)
		crash(t, "takeover-open")
		if again := e.post(t, c.Token, procOpenDispute, open, "Idempotency-Key", "takeover-open").dispute(t); again.GetId() != dp.GetId() {
			t.Fatalf("the retry answered dispute %s, want %s", again.GetId(), dp.GetId())
		}
		w := map[string]any{"dispute_id": dp.GetId()}
		first := e.post(t, c.Token, procWithdrawDispute, w, "Idempotency-Key", "takeover-withdraw").dispute(t)
		if first.GetId() != dp.GetId() || first.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_WITHDRAWN {
			t.Fatalf("the withdrawal answered %v, want dispute %s withdrawn", first, dp.GetId())
		}
		crash(t, "takeover-withdraw")
		again := e.post(t, c.Token, procWithdrawDispute, w, "Idempotency-Key", "takeover-withdraw").dispute(t)
		if again.GetId() != dp.GetId() || again.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_WITHDRAWN {
			t.Fatalf("the withdrawal's retry answered %v, want dispute %s withdrawn", again, dp.GetId())
		}
	})
	e.checkLedger(t)
}
