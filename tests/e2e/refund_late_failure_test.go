package e2e

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/internal/gateway/sandbox"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/workflows/refund"
)

// refundEvent is a Stripe event about a Refund (charge.refund.updated,
// refund.updated, refund.failed), in the shape Stripe (and the sandbox)
// sends: amount in the gateway's units, metadata['payment_id'] as the
// platform sets it.
func refundEvent(id, typ, ref, paymentID, paymentIntent, status, failureReason string, amount int64) []byte {
	obj := map[string]any{
		"id": ref, "object": "refund", "amount": amount, "currency": "usd", "status": status,
		"charge": nil, "created": time.Now().Unix(), "reason": nil, "failure_reason": nil,
		"metadata": map[string]string{"payment_id": paymentID}, "payment_intent": paymentIntent,
	}
	if failureReason != "" {
		obj["failure_reason"] = failureReason
	}
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": sandbox.APIVersion, "created": time.Now().Unix(),
		"type": typ, "livemode": false, "data": map[string]any{"object": obj},
	})
	return b
}

// readRefund calls GetRefund as u.
func (e *E) readRefund(t *testing.T, u user, id string) *pb.Refund {
	t.Helper()
	return e.post(t, u.Token, procGetRefund, map[string]any{"id": id}).refund(t)
}

// pollRefund polls GetRefund until the refund is in status.
func (e *E) pollRefund(t *testing.T, u user, id string, status pb.RefundStatus) *pb.Refund {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		r := e.readRefund(t, u, id)
		if r.GetStatus() == status {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("refund %s is %s after %v, want %s\n%s", id, r.GetStatus(), waitFor, status, e.explain(r.GetWorkflowId()))
		}
		time.Sleep(pollEvery)
	}
}

// resumedRun reports whether the latest run of a refund's workflow is one the
// webhook started for a late event (Input.Resume).
func (e *E) resumedRun(t *testing.T, workflowID string) bool {
	t.Helper()
	var in refund.Input
	payloads := e.history(t, workflowID)[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(payloads) != 1 || converter.GetDefaultDataConverter().FromPayload(payloads[0], &in) != nil {
		t.Fatalf("%s: no refund input in the start event", workflowID)
	}
	return in.Resume
}

// A refund of Stripe's test card 4000 0000 0000 5126 (pm_card_refundFail)
// answers succeeded and fails a moment later: the sandbox delivers a signed
// charge.refund.updated, the webhook hands it to the refund's workflow (a
// new run of it, the first having ended), which records the failure with
// expired_or_canceled_card and gives the amount back to the payment and to
// the merchant's balance. A redelivery of the event changes nothing, and
// the whole amount can then be refunded (and, the card being what it is,
// that refund fails in turn).
func TestRefundFailsLateAtTheGateway(t *testing.T) {
	t.Parallel()
	refundFailsLate(t, newEnv(t, withLogs(), recording()))
}

// The same on MySQL (PAYMENTS_TEST_MYSQL_DSN), where the refund's saves
// lock its rows.
func TestRefundFailsLateAtTheGatewayMySQL(t *testing.T) {
	t.Parallel()
	refundFailsLate(t, newEnv(t, withLogs(), withStore(newMySQLStore(t))))
}

func refundFailsLate(t *testing.T, e *E) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	m, c := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 5000, "USD", "pm_card_refundFail"))
	wantStatus(t, p, stSucceeded)
	if pm := p.GetPaymentMethod(); pm.GetBrand() != "visa" || pm.GetLast4() != "5126" {
		t.Fatalf("payment method %v, want visa 5126", pm)
	}
	p = e.get(t, m, p.GetId()) // the merchant's view, with the gateway reference
	account := "merchant_balance:" + m.ID
	full := e.balance(t, account, "USD")
	if full != -5000 {
		t.Fatalf("%s = %d after the payment, want -5000", account, full)
	}

	r1 := e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId(), "amount": 1500}).refund(t)
	if r1.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || r1.GetAmount() != 1500 || r1.GetFailureReason() != "" {
		t.Fatalf("partial refund: %v, want 1500 SUCCEEDED", r1)
	}

	failed := e.pollRefund(t, m, r1.GetId(), pb.RefundStatus_REFUND_STATUS_FAILED)
	if failed.GetFailureReason() != sandbox.RefundFailureExpiredOrCanceledCard || failed.GetAmount() != 1500 ||
		failed.GetGatewayReference() != r1.GetGatewayReference() || failed.GetGatewayReference() == "" {
		t.Fatalf("failed refund: %v, want failure_reason %s", failed, sandbox.RefundFailureExpiredOrCanceledCard)
	}
	got := e.get(t, m, p.GetId())
	if got.GetAmountRefunded() != 0 || got.GetRefundState() != pb.PaymentRefundState_PAYMENT_REFUND_STATE_NONE ||
		got.GetStatus() != pb.PaymentStatus_PAYMENT_STATUS_SUCCEEDED {
		t.Fatalf("payment after the refund failed: %s, refunded %d, refund state %s; want SUCCEEDED, 0, NONE",
			got.GetStatus(), got.GetAmountRefunded(), got.GetRefundState())
	}
	if b := e.balance(t, account, "USD"); b != full {
		t.Fatalf("%s = %d after the refund failed, want %d (the whole payment)", account, b, full)
	}
	e.checkLedger(t)
	eventID := sandbox.RefundFailedEventID(failed.GetGatewayReference())
	if ids := e.eventIDs(t, p.GetId()); !slices.Contains(ids, eventID) {
		t.Fatalf("events recorded for the payment %v, want the sandbox's %s", ids, eventID)
	}
	wid := r1.GetWorkflowId()
	e.waitClosed(t, wid)
	t.Logf("the failure was applied by a resumed run: %v", e.resumedRun(t, wid))
	e.recordHistoryIn(t, refundTestdataDir, "late_failure_resumed", wid)

	// A redelivery (the same event id), and another event saying the same:
	// acknowledged, and nothing changes.
	signals := e.settle(t, wid)
	for _, id := range []string{eventID, "evt_e2e_refund_failed_again"} {
		ev := refundEvent(id, sandbox.EventRefundUpdated, failed.GetGatewayReference(), p.GetId(), p.GetGatewayReference(),
			"failed", sandbox.RefundFailureExpiredOrCanceledCard, 1500)
		if status := e.postWebhook(t, ev, e.sign(ev, time.Now())); status != http.StatusOK {
			t.Fatalf("delivery of %s again: HTTP %d, want 200", id, status)
		}
	}
	if again := e.readRefund(t, m, r1.GetId()); !proto.Equal(again, failed) {
		t.Fatalf("the refund changed after a redelivery:\nbefore: %v\nafter:  %v", failed, again)
	}
	if again := e.get(t, m, p.GetId()); !proto.Equal(again, got) {
		t.Fatalf("the payment changed after a redelivery:\nbefore: %v\nafter:  %v", got, again)
	}
	if n := e.settle(t, wid); n != signals {
		t.Fatalf("%s got %d signals after the redeliveries, %d before", wid, n, signals)
	}
	if b := e.balance(t, account, "USD"); b != full {
		t.Fatalf("%s = %d after a redelivery, want %d", account, b, full)
	}
	e.checkLedger(t)

	// What failed is refundable again: all of it.
	r2 := e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId(), "amount": 5000}).refund(t)
	if r2.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || r2.GetAmount() != 5000 {
		t.Fatalf("refund of the whole payment after the failure: %v, want 5000 SUCCEEDED", r2)
	}
	// Every refund of this card fails: this one too, and the money is back.
	e.pollRefund(t, m, r2.GetId(), pb.RefundStatus_REFUND_STATUS_FAILED)
	if got := e.get(t, m, p.GetId()); got.GetAmountRefunded() != 0 {
		t.Fatalf("amount_refunded %d after the second failure, want 0", got.GetAmountRefunded())
	}
	if b := e.balance(t, account, "USD"); b != full {
		t.Fatalf("%s = %d after the second failure, want %d", account, b, full)
	}
	e.checkLedger(t)
}
