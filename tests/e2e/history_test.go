package e2e

import (
	"net/http"
	"slices"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

const (
	procListTransactions = "/payments.v1.TransactionService/ListTransactions"
	procGetTransaction   = "/payments.v1.TransactionService/GetTransaction"
)

func (r reply) transactions(t *testing.T) *pb.ListTransactionsResponse {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200 with transactions, got %s", r)
	}
	var res pb.ListTransactionsResponse
	if err := protojson.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("answer is not {transactions}: %v: %s", err, r.body)
	}
	return &res
}

// listAll pages through a filtered history with page_size 1, so every row
// comes through a page token, and returns the rows in order.
func (e *E) listAll(t *testing.T, u user, filter map[string]any) []*pb.Transaction {
	t.Helper()
	var out []*pb.Transaction
	token := ""
	for range 50 {
		req := map[string]any{"page_size": 1}
		for k, v := range filter {
			req[k] = v
		}
		if token != "" {
			req["page_token"] = token
		}
		page := e.post(t, u.Token, procListTransactions, req).transactions(t)
		out = append(out, page.GetTransactions()...)
		if token = page.GetNextPageToken(); token == "" {
			return out
		}
	}
	t.Fatalf("ListTransactions(%v) never ends", filter)
	return nil
}

// The history through the whole platform: a payment, a refund of part of
// it and a declined payment are three movements, newest first, seen by
// both parties and nobody else; the payment's detailed record holds the
// payment, the capture's ledger lines and its timeline; and the history
// agrees with the ledger (checkLedger runs CheckHistory).
func TestHistoryOfPaymentsAndRefunds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c, stranger := e.merchant(t), e.customer(t), e.merchant(t)
	paid := e.create(t, c, pay(m, 5000, "USD", "pm_card_visa"))
	wantStatus(t, paid, "PAYMENT_STATUS_SUCCEEDED")
	re := e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": paid.GetId(), "amount": 1500}).refund(t)
	declined := e.post(t, c.Token, procCreatePayment, pay(m, 700, "USD", "pm_card_chargeDeclined")).payment(t)
	e.waitStatus(t, c, declined.GetId(), "PAYMENT_STATUS_FAILED")

	type row struct {
		source string
		amount int64
		status pb.TransactionStatus
		typ    pb.TransactionType
	}
	want := []row{
		{declined.GetId(), 700, pb.TransactionStatus_TRANSACTION_STATUS_FAILED, pb.TransactionType_TRANSACTION_TYPE_PAYMENT},
		{re.GetId(), -1500, pb.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED, pb.TransactionType_TRANSACTION_TYPE_REFUND},
		{paid.GetId(), 5000, pb.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED, pb.TransactionType_TRANSACTION_TYPE_PAYMENT},
	}
	rows := func(ts []*pb.Transaction) []row {
		var out []row
		for _, x := range ts {
			out = append(out, row{x.GetSourceId(), x.GetAmount(), x.GetStatus(), x.GetType()})
		}
		return out
	}
	for _, u := range []user{m, c} {
		if got := rows(e.listAll(t, u, nil)); !slices.Equal(got, want) {
			t.Errorf("%s's history = %v, want %v", u.Role, got, want)
		}
	}
	if got := e.listAll(t, stranger, nil); len(got) != 0 {
		t.Errorf("another merchant sees %d movements of others: %v", len(got), got)
	}
	succeeded := e.listAll(t, m, map[string]any{"status": "TRANSACTION_STATUS_SUCCEEDED", "amount_min": 0, "currency": "usd"})
	if got := rows(succeeded); !slices.Equal(got, want[2:]) {
		t.Errorf("succeeded, amount >= 0: %v, want %v", got, want[2:])
	}

	txn := succeeded[0]
	r := e.post(t, m.Token, procGetTransaction, map[string]any{"id": txn.GetId()})
	if r.status != http.StatusOK {
		t.Fatalf("GetTransaction: %s", r)
	}
	var detail pb.GetTransactionResponse
	if err := protojson.Unmarshal(r.body, &detail); err != nil {
		t.Fatal(err)
	}
	if detail.GetPayment().GetId() != paid.GetId() || detail.GetPayment().GetAmountRefunded() != 1500 {
		t.Errorf("the source payment: %v", detail.GetPayment())
	}
	if detail.GetWorkflowId() != "payment/"+paid.GetId() || detail.GetWorkflowUrl() == "" {
		t.Errorf("workflow %q at %q", detail.GetWorkflowId(), detail.GetWorkflowUrl())
	}
	var credited int64
	for _, l := range detail.GetLedgerEntries() {
		if l.GetJournalId() != paid.GetId()+"/capture" || l.GetCurrency() != "USD" {
			t.Errorf("ledger line %v is not of the capture journal", l)
		}
		if l.GetAccount() == "merchant_balance:"+m.ID && l.GetDirection() == pb.LedgerDirection_LEDGER_DIRECTION_CREDIT {
			credited += l.GetAmount()
		}
	}
	if len(detail.GetLedgerEntries()) == 0 || credited != 5000 {
		t.Errorf("ledger lines %v credit the merchant %d, want 5000", detail.GetLedgerEntries(), credited)
	}
	var kinds []string
	for _, s := range detail.GetTimeline() {
		kinds = append(kinds, s.GetKind())
	}
	if len(kinds) < 2 || kinds[0] != "payment.created" || !slices.Contains(kinds, "payment.succeeded") {
		t.Errorf("timeline kinds %v, want payment.created first and payment.succeeded", kinds)
	}
	wantCode(t, e.post(t, stranger.Token, procGetTransaction, map[string]any{"id": txn.GetId()}), "not_found")
	e.checkLedger(t)
}
