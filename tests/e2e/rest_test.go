package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// restCall is one REST call of the walkthrough and the Connect call it must
// answer as.
type restCall struct {
	method, path string
	body         any
	procedure    string
	rpcBody      any
}

// same calls c through REST and through Connect as token, until both answer
// alike (a payment may still move between two reads: a gateway event lands),
// and returns the REST answer.
func (e *E) same(t *testing.T, token string, c restCall) reply {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		rest := e.do(ctxT(t), c.method, token, c.path, c.body)
		rpc := e.post(t, token, c.procedure, c.rpcBody)
		if rest.err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, rest.err)
		}
		var restJSON, rpcJSON any
		if rest.status == rpc.status && json.Unmarshal(rest.body, &restJSON) == nil &&
			json.Unmarshal(rpc.body, &rpcJSON) == nil && reflect.DeepEqual(restJSON, rpcJSON) {
			return rest
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s answered %s\n%s answered %s", c.method, c.path, rest, c.procedure, rpc)
		}
		time.Sleep(pollEvery)
	}
}

// TestRESTWalkthrough: the payment walkthrough through the REST routes
// only: a merchant charges with manual capture under an Idempotency-Key
// (the retry is replayed), captures part, refunds part and lists with
// filters; a customer pays, disputes and withdraws; another payment is
// canceled. Every read answers what the same RPC answers.
func TestRESTWalkthrough(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)

	charge := map[string]any{"amount": "1999", "currency": "eur", "payment_method": "pm_card_visa",
		"capture_method": "CAPTURE_METHOD_MANUAL", "description": "Order #1001"}
	created := e.do(ctxT(t), http.MethodPost, m.Token, "/v1/payments", charge, "Idempotency-Key", "order-1001")
	p := created.payment(t)
	wantStatus(t, p, stRequiresCapture)
	if got := created.header.Get("Idempotent-Replayed"); got != "false" {
		t.Errorf("first POST /v1/payments: Idempotent-Replayed %q, want false", got)
	}
	replayed := e.do(ctxT(t), http.MethodPost, m.Token, "/v1/payments", charge, "Idempotency-Key", "order-1001")
	if got := replayed.header.Get("Idempotent-Replayed"); got != "true" || replayed.payment(t).GetId() != p.GetId() {
		t.Fatalf("retried POST /v1/payments: Idempotent-Replayed %q, payment %s; want true, %s", got, replayed.payment(t).GetId(), p.GetId())
	}
	if n := e.paymentRows(t); n != 1 {
		t.Fatalf("%d payments after a replayed POST /v1/payments, want 1", n)
	}

	captured := e.do(ctxT(t), http.MethodPost, m.Token, "/v1/payments/"+p.GetId()+"/capture", map[string]any{"amount": "1500"}).payment(t)
	wantStatus(t, captured, stSucceeded)
	wantAmounts(t, captured, 0, 1500)
	e.same(t, m.Token, restCall{http.MethodGet, "/v1/payments/" + p.GetId(), nil, procGetPayment, map[string]any{"id": p.GetId()}})

	refund := e.do(ctxT(t), http.MethodPost, m.Token, "/v1/refunds", map[string]any{"payment_id": p.GetId(), "amount": "500"},
		"Idempotency-Key", "order-1001-refund").refund(t)
	e.same(t, m.Token, restCall{http.MethodGet, "/v1/refunds/" + refund.GetId(), nil, procGetRefund, map[string]any{"id": refund.GetId()}})
	e.same(t, m.Token, restCall{http.MethodGet, "/v1/refunds?payment_id=" + p.GetId(), nil, procListRefunds, map[string]any{"payment_id": p.GetId()}})

	// A customer's payment, disputed then withdrawn.
	paid := e.do(ctxT(t), http.MethodPost, c.Token, "/v1/payments", map[string]any{"merchant_id": m.ID, "amount": 700,
		"currency": "usd", "payment_method": "pm_card_visa"}).payment(t)
	wantStatus(t, paid, stSucceeded)
	dispute := e.do(ctxT(t), http.MethodPost, c.Token, "/v1/disputes", map[string]any{"payment_id": paid.GetId(),
		"reason": "DISPUTE_REASON_PRODUCT_NOT_RECEIVED"}).dispute(t)
	e.same(t, m.Token, restCall{http.MethodGet, "/v1/disputes/" + dispute.GetId(), nil, procGetDispute, map[string]any{"id": dispute.GetId()}})
	withdrawn := e.do(ctxT(t), http.MethodPost, c.Token, "/v1/disputes/"+dispute.GetId()+"/withdraw", map[string]any{}).dispute(t)
	if withdrawn.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_WITHDRAWN {
		t.Fatalf("POST /v1/disputes/%s/withdraw answered %v", dispute.GetId(), withdrawn)
	}

	// A third payment, canceled.
	held := e.do(ctxT(t), http.MethodPost, m.Token, "/v1/payments", charge).payment(t)
	canceled := e.do(ctxT(t), http.MethodPost, m.Token, "/v1/payments/"+held.GetId()+"/cancel", map[string]any{"reason": "abandoned"}).payment(t)
	wantStatus(t, canceled, stCanceled)

	// Lists, their filters in the query.
	q := url.Values{"status": {stSucceeded}, "currency": {"EUR"}, "page_size": {"1"}}
	list := e.same(t, m.Token, restCall{http.MethodGet, "/v1/payments?" + q.Encode(), nil, procListPayments,
		map[string]any{"status": stSucceeded, "currency": "EUR", "page_size": 1}})
	var payments pb.ListPaymentsResponse
	if err := protojsonUnmarshal(list.body, &payments); err != nil || len(payments.GetPayments()) != 1 || payments.GetPayments()[0].GetId() != p.GetId() {
		t.Fatalf("GET /v1/payments?%s answered %s (%v), want the captured payment", q.Encode(), list, err)
	}
	e.same(t, m.Token, restCall{http.MethodGet, "/v1/payments?status=" + stCanceled, nil, procListPayments, map[string]any{"status": stCanceled}})
	since := p.GetCreatedAt().AsTime().Add(-time.Second).Format(time.RFC3339)
	e.same(t, m.Token, restCall{http.MethodGet, "/v1/transactions?currency=eur&createdAfter=" + url.QueryEscape(since), nil, procListTransactions,
		map[string]any{"currency": "eur", "created_after": since}})
	e.same(t, c.Token, restCall{http.MethodGet, "/v1/disputes?payment_id=" + paid.GetId(), nil, procListDisputes, map[string]any{"payment_id": paid.GetId()}})
}
