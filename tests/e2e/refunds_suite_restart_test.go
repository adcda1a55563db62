package e2e

import (
	"context"
	"encoding/base64"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/internal/gateway"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// restartEnv is a platform whose worker the test stops and starts again
// (testenv's StopWorker, StartWorker), with the sandbox behind a
// refundGateway that counts refunds and can hold the gateway's answer.
type restartEnv struct {
	*E
	refunds *refundGateway
}

func newRestartEnv(t *testing.T, paymentWait time.Duration) *restartEnv {
	t.Helper()
	e := newEnv(t, withPaymentWait(paymentWait), withLogs())
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	return &restartEnv{E: e, refunds: refundsOf(e)}
}

func (re *restartEnv) startWorker(t *testing.T) { t.Helper(); re.StartWorker(t) }

func (re *restartEnv) stopWorker(t *testing.T) { t.Helper(); re.StopWorker(t) }

var refundIDPattern = regexp.MustCompile(`re_[0-9a-z]{26}`)

// TestRefundWorkerRestartMidRefund: the gateway makes a refund but its
// answer is lost while the worker stops; CreateRefund has answered PENDING
// after the bounded wait, with the amount already taken from the balance.
// A new worker finishes the refund with the same gateway key: SUCCEEDED,
// with the reference of the refund the gateway made, exactly one refund at
// the gateway (the rest of the payment is still refundable there).
func TestRefundWorkerRestartMidRefund(t *testing.T) {
	t.Parallel()
	const wait = 2 * time.Second
	re := newRestartEnv(t, wait)
	m, c := re.merchant(t), re.customer(t)
	p := re.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
	wantStatus(t, p, stSucceeded)

	re.refunds.setHold(true)
	began := time.Now()
	r := re.refundR(t, m, refundBody(p.GetId(), 400)).refund(t)
	took := time.Since(began)
	if r.GetStatus() != pb.RefundStatus_REFUND_STATUS_PENDING || r.GetAmount() != 400 || r.GetGatewayReference() != "" {
		t.Fatalf("CreateRefund while the gateway's answer is held: %v, want PENDING 400 without a reference", r)
	}
	if took < wait {
		t.Fatalf("CreateRefund answered PENDING after %v, before the bounded wait of %v", took, wait)
	}
	var made gateway.RefundResult
	select {
	case made = <-re.refunds.reached:
	case <-time.After(waitFor):
		t.Fatalf("the refund never reached the gateway")
	}
	re.stopWorker(t)
	// The amount is held for the pending refund.
	re.wantRefunded(t, m, p.GetId(), 400, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
	if got := re.getRefundR(t, m, r.GetId()).refund(t); got.GetStatus() != pb.RefundStatus_REFUND_STATUS_PENDING {
		t.Fatalf("with the worker stopped the refund is %s", got.GetStatus())
	}

	re.refunds.setHold(false)
	re.startWorker(t)
	done := re.waitRefund(t, m, r.GetId(), pb.RefundStatus_REFUND_STATUS_SUCCEEDED)
	if done.GetAmount() != 400 || done.GetGatewayReference() != made.Reference {
		t.Fatalf("after the restart: %v, want 400 with the gateway's reference %s", done, made.Reference)
	}
	requests, refunds, calls := re.refunds.counts()
	if requests != 1 || refunds != 1 || calls < 2 {
		t.Fatalf("gateway: %d refund requests, %d refunds made, %d calls; want 1, 1 and at least 2 calls", requests, refunds, calls)
	}
	// The gateway refunded 400 once: the remaining 600 is still there to refund.
	rest := re.refundOK(t, m, p.GetId(), 0, 600)
	if rest.GetGatewayReference() == made.Reference {
		t.Fatalf("the second refund has the first one's reference")
	}
	re.wantRefunded(t, m, p.GetId(), 1000, pb.PaymentRefundState_PAYMENT_REFUND_STATE_REFUNDED)
	if b := re.balance(t, "merchant_balance:"+m.ID, "USD"); b != 0 {
		t.Fatalf("merchant balance %d after refunding everything, want 0", b)
	}
	re.checkLedger(t)
}

// TestRefundWithWorkerDown: with no worker at all, a CreateRefund with a
// deadline answers unavailable naming the refund that may exist (there is
// no row to answer PENDING with: the workflow stores it); GetRefund finds
// nothing until a worker starts, and then the refund succeeds, made once.
func TestRefundWithWorkerDown(t *testing.T) {
	t.Parallel()
	const wait = time.Second
	re := newRestartEnv(t, wait)
	m, c := re.merchant(t), re.customer(t)
	p := re.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
	re.stopWorker(t)

	began := time.Now()
	r := re.refundR(t, m, refundBody(p.GetId(), 300), "Connect-Timeout-Ms", "4000")
	took := time.Since(began)
	wantCode(t, r, "unavailable")
	if took > 6*time.Second {
		t.Fatalf("CreateRefund answered after %v with a 4 s deadline", took)
	}
	id := refundIDPattern.FindString(r.msg)
	if id == "" || !strings.Contains(r.msg, "GetRefund") {
		t.Fatalf("unavailable without the refund's id: %q", r.msg)
	}
	if info := errorInfo(t, r); info.GetReason() != api.ReasonRefundMayExist || info.GetMetadata()["refund_id"] != id {
		t.Fatalf("ErrorInfo %v, want %s with refund_id %s", info, api.ReasonRefundMayExist, id)
	}
	wantCode(t, re.getRefundR(t, m, id), "not_found")
	re.wantRefunded(t, m, p.GetId(), 0, pb.PaymentRefundState_PAYMENT_REFUND_STATE_NONE)

	re.startWorker(t)
	done := re.waitRefund(t, m, id, pb.RefundStatus_REFUND_STATUS_SUCCEEDED)
	if done.GetAmount() != 300 || done.GetPaymentId() != p.GetId() {
		t.Fatalf("the refund after the worker started: %v", done)
	}
	if requests, refunds, _ := re.refunds.counts(); requests != 1 || refunds != 1 {
		t.Fatalf("gateway: %d refund requests, %d refunds made; want 1, 1", requests, refunds)
	}
	re.wantRefunded(t, m, p.GetId(), 300, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
	if got := re.refundIDsListed(t, m, map[string]any{"payment_id": p.GetId()}); len(got) != 1 || got[0] != id {
		t.Fatalf("refunds listed %v, want [%s]", got, id)
	}
}

// TestRefundWorkerDownAnswersWithinTheBoundedWait: CreateRefund "answers
// once the gateway has, or after the bounded wait with the refund pending"
// (its doc comment in api/refund_service.go); a client that sends no
// deadline should not wait for the worker to come back. Today the API waits
// for the refund's row, which only the workflow writes, until the client
// gives up (CreatePayment behaves the same).
func TestRefundWorkerDownAnswersWithinTheBoundedWait(t *testing.T) {
	t.Parallel()
	const wait = time.Second
	re := newRestartEnv(t, wait)
	m, c := re.merchant(t), re.customer(t)
	p := re.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
	re.stopWorker(t)

	ctx, cancel := context.WithTimeout(ctxT(t), wait+10*time.Second)
	defer cancel()
	began := time.Now()
	r := re.send(ctx, m.Token, procCreateRefund, refundBody(p.GetId(), 300))
	took := time.Since(began)
	// Let the refund the request started finish before the env stops.
	re.startWorker(t)
	if r.err != nil {
		t.Fatalf("CreateRefund without a client deadline gave no answer in %v while the worker was down (bounded wait %v): %v",
			took.Round(time.Millisecond), wait, r.err)
	}
	if r.status == http.StatusOK {
		if got := r.refund(t); got.GetStatus() != pb.RefundStatus_REFUND_STATUS_PENDING {
			t.Fatalf("answer %v, want PENDING", got)
		}
	} else {
		wantCode(t, r, "unavailable")
	}
}

// errorInfo decodes the google.rpc.ErrorInfo detail of an error answer.
func errorInfo(t *testing.T, r reply) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range r.details {
		if d.Type != "google.rpc.ErrorInfo" {
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
		if err != nil {
			t.Fatalf("ErrorInfo is not base64: %v", err)
		}
		var info errdetails.ErrorInfo
		if err := proto.Unmarshal(raw, &info); err != nil {
			t.Fatalf("ErrorInfo: %v", err)
		}
		return &info
	}
	t.Fatalf("no ErrorInfo in %s", r)
	return nil
}
