package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// refundTestdataDir is where the refund workflow's recorded histories go
// (PAYMENTS_RECORD_HISTORIES=1), one folder per logic version.
const refundTestdataDir = "../../workflows/refund/testdata/v1"

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
	e := newEnv(t, withLogs(), recording())
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
	e.waitClosed(t, r1.GetWorkflowId())
	e.recordHistoryIn(t, refundTestdataDir, "partial_succeeded", r1.GetWorkflowId())
	// Refused by the balance: the API's quick check answers first, so the
	// workflow's own refusal is seen by racing two refunds of the rest.
	over := e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId(), "amount": 1})
	wantCode(t, over, "failed_precondition")
	if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != 0 {
		t.Fatalf("merchant balance %d after refunding everything, want 0", b)
	}
	e.checkLedger(t)
}

// Two refunds of most of a payment at once both pass the API's quick check;
// the balance in the database lets one through and the other's workflow
// refuses it: failed_precondition for its caller, a completed workflow with
// RefundStatus "refused" and no refund row.
func TestRefundRefusedByTheBalance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, recording())
	m, c := e.merchant(t), e.customer(t)
	for try := 1; ; try++ {
		p := e.create(t, c, pay(m, 5000, "USD", "pm_card_visa"))
		var wg sync.WaitGroup
		replies := make([]reply, 2)
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies[i] = e.send(ctxT(t), m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId(), "amount": 3000})
			}()
		}
		wg.Wait()
		codes := map[string]int{}
		for _, r := range replies {
			if r.err != nil {
				t.Fatal(r.err)
			}
			codes[r.code]++
		}
		if codes[""] != 1 || codes["failed_precondition"] != 1 {
			t.Fatalf("two refunds of 3000 of 5000: %v, want one each of success and failed_precondition", replies)
		}
		if got := e.get(t, m, p.GetId()); got.GetAmountRefunded() != 3000 {
			t.Fatalf("amount_refunded %d, want 3000", got.GetAmountRefunded())
		}
		// Visibility is eventually consistent: once the winner's status
		// shows, so does the loser's (both were set before the answers).
		e.waitVisible(t, fmt.Sprintf("PaymentId = '%s' AND RefundStatus = 'succeeded'", p.GetId()),
			func(rows []*workflowExecution) bool { return len(rows) == 1 })
		refused := e.listWorkflows(t, fmt.Sprintf("PaymentId = '%s' AND RefundStatus = 'refused'", p.GetId()))
		if len(refused) == 0 {
			// The API's check saw the first refund already: try again.
			if try == 5 {
				t.Fatal("in 5 tries the API's check always refused first; the workflow's refusal was never exercised")
			}
			continue
		}
		wid := refused[0].GetExecution().GetWorkflowId()
		e.waitClosed(t, wid)
		for _, r := range replies {
			if r.code == "failed_precondition" && !strings.Contains(r.msg, "2000 in minor units") {
				t.Fatalf("refusal %q does not name the 20.00 USD left", r.msg)
			}
		}
		e.recordHistoryIn(t, refundTestdataDir, "refused", wid)
		e.checkLedger(t)
		return
	}
}
