package e2e

import (
	"net/http"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

const (
	procCreateRefund = "/payments.v1.RefundService/CreateRefund"
	procGetRefund    = "/payments.v1.RefundService/GetRefund"
	procListRefunds  = "/payments.v1.RefundService/ListRefunds"
)

// refundOf decodes the {"refund": {...}} of a refund RPC's answer.
func (r reply) refund(t *testing.T) *pb.Refund {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200 with a refund, got %s", r)
	}
	var res pb.GetRefundResponse
	if err := protojson.Unmarshal(r.body, &res); err != nil || res.GetRefund().GetId() == "" {
		t.Fatalf("answer is not {refund}: %v: %s", err, r.body)
	}
	return res.GetRefund()
}

// A partial and then a full refund of one payment, as the README walks
// through: each answers succeeded, the payment shows what went back, and
// the ledger balances.
func TestRefundPartialThenFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLogs())
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	m, c := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 5000, "USD", "pm_card_visa"))
	wantStatus(t, p, "PAYMENT_STATUS_SUCCEEDED")

	r1 := e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId(), "amount": 1500, "reason": "REFUND_REASON_REQUESTED_BY_CUSTOMER"}).refund(t)
	if r1.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || r1.GetAmount() != 1500 || r1.GetCurrency() != "USD" || r1.GetWorkflowId() != "refund/"+r1.GetId() {
		t.Fatalf("partial refund: %v", r1)
	}
	got := e.get(t, m, p.GetId())
	if got.GetAmountRefunded() != 1500 || got.GetRefundState() != pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED {
		t.Fatalf("after the partial refund: refunded %d, state %s", got.GetAmountRefunded(), got.GetRefundState())
	}
	r2 := e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId()}).refund(t)
	if r2.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || r2.GetAmount() != 3500 {
		t.Fatalf("full refund of the rest: %v", r2)
	}
	got = e.get(t, m, p.GetId())
	if got.GetAmountRefunded() != 5000 || got.GetRefundState() != pb.PaymentRefundState_PAYMENT_REFUND_STATE_REFUNDED {
		t.Fatalf("after the full refund: refunded %d, state %s", got.GetAmountRefunded(), got.GetRefundState())
	}
	wantCode(t, e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId(), "amount": 1}), "failed_precondition")
	if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != 0 {
		t.Fatalf("merchant balance %d after refunding everything, want 0", b)
	}
	e.checkLedger(t)
}
