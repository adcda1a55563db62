package e2e

import (
	"fmt"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"

	entpayment "github.com/payments-platform/payments/ent/payment"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// saStatus is the PaymentStatus search attribute of an API status:
// PAYMENT_STATUS_REQUIRES_CAPTURE is requires_capture.
func saStatus(apiStatus string) string {
	return strings.ToLower(strings.TrimPrefix(apiStatus, "PAYMENT_STATUS_"))
}

// TestOperatorVisibility: operators find a merchant's payments with a
// visibility query on the search attributes, which the workflows keep
// current (PaymentStatus follows the payment), and query a running payment's
// live state.
func TestOperatorVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	other := e.merchant(t)

	ok := e.create(t, c, pay(m, 1100, "USD", "pm_card_visa"))
	held := e.create(t, c, pay(m, 2200, "eur", "pm_card_visa").manual())
	declined := e.create(t, c, pay(m, 3300, "USD", "pm_card_chargeDeclinedInsufficientFunds"))
	action := e.create(t, m, payReq{"customer_id": c.ID, "amount": int64(4400), "currency": "KWD", "payment_method": "pm_card_authenticationRequired"})
	guest := e.create(t, m, payReq{"amount": int64(5500), "currency": "JPY", "payment_method": "pm_card_visa"})
	e.create(t, c, pay(other, 6600, "USD", "pm_card_visa"))
	payments := []*pb.Payment{ok, held, declined, action, guest}

	// want maps payment id to the payment as the API last showed it.
	want := map[string]*pb.Payment{}
	for _, p := range payments {
		want[p.GetId()] = p
	}
	matches := func(rows []*workflowExecution) bool {
		if len(rows) != len(want) {
			return false
		}
		for _, r := range rows {
			p, ok := want[strings.TrimPrefix(r.GetExecution().GetWorkflowId(), "payment/")]
			if !ok || r.keyword(t, "PaymentStatus") != saStatus(p.GetStatus().String()) {
				return false
			}
		}
		return true
	}
	byMerchant := fmt.Sprintf("MerchantId = '%s'", m.ID)
	rows := e.waitVisible(t, byMerchant, matches)
	for _, r := range rows {
		p := want[strings.TrimPrefix(r.GetExecution().GetWorkflowId(), "payment/")]
		var amount int64
		if !r.attr(t, "Amount", &amount) || amount != p.GetAmount() {
			t.Fatalf("%s: Amount = %d, want %d", p.GetId(), amount, p.GetAmount())
		}
		for name, v := range map[string]string{
			"PaymentId": p.GetId(), "MerchantId": m.ID, "CustomerId": p.GetCustomerId(), "Currency": p.GetCurrency(),
		} {
			if got := r.keyword(t, name); got != v {
				t.Fatalf("%s: search attribute %s = %q, want %q", p.GetId(), name, got, v)
			}
		}
		if r.GetType().GetName() != "payment.Payment" {
			t.Fatalf("%s: workflow type %q", p.GetId(), r.GetType().GetName())
		}
	}

	// Narrower queries, as an operator types them.
	for query, ids := range map[string][]string{
		byMerchant + " AND PaymentStatus = 'requires_capture'":      {held.GetId()},
		byMerchant + " AND PaymentStatus = 'failed'":                {declined.GetId()},
		fmt.Sprintf("CustomerId = '%s' AND Currency = 'KWD'", c.ID): {action.GetId()},
		fmt.Sprintf("PaymentId = '%s'", guest.GetId()):              {guest.GetId()},
		byMerchant + " AND Amount >= 3000 AND Amount < 5000":        {declined.GetId(), action.GetId()},
		byMerchant + " AND ExecutionStatus = 'Running'":             {held.GetId(), action.GetId()},
	} {
		e.waitVisible(t, query, func(rows []*workflowExecution) bool {
			if len(rows) != len(ids) {
				return false
			}
			for _, r := range rows {
				if !containsString(ids, strings.TrimPrefix(r.GetExecution().GetWorkflowId(), "payment/")) {
					return false
				}
			}
			return true
		})
	}

	// The live state of running payments.
	st := e.queryState(t, held.GetWorkflowId())
	if st.Status != entpayment.StatusRequiresCapture || st.AmountCapturable != 2200 || st.Currency != "EUR" || st.MerchantID != m.ID {
		t.Fatalf("state of %s: %+v", held.GetId(), st)
	}
	st = e.queryState(t, action.GetWorkflowId())
	if st.Status != entpayment.StatusRequiresAction || st.NextActionURL != action.GetNextAction().GetRedirectUrl() {
		t.Fatalf("state of %s: status %s, next action %q", action.GetId(), st.Status, st.NextActionURL)
	}

	// PaymentStatus follows the payment.
	want[held.GetId()] = e.captureR(t, m, held.GetId(), 0).payment(t)
	want[action.GetId()] = e.cancelR(t, c, action.GetId(), "").payment(t)
	wantStatus(t, want[held.GetId()], stSucceeded)
	wantStatus(t, want[action.GetId()], stCanceled)
	e.waitVisible(t, byMerchant, matches)
	e.waitVisible(t, byMerchant+" AND ExecutionStatus = 'Running'", func(r []*workflowExecution) bool { return len(r) == 0 })
	if st := e.queryState(t, held.GetWorkflowId()); st.Status != entpayment.StatusSucceeded || st.AmountReceived != 2200 {
		t.Fatalf("state of %s after capture: %s, %d received", held.GetId(), st.Status, st.AmountReceived)
	}

	// Every payment's workflow is payment/<id>, closed and completed.
	for _, p := range payments {
		d, err := e.Temporal.DescribeWorkflowExecution(ctxT(t), p.GetWorkflowId(), "")
		if err != nil {
			t.Fatalf("describe %s: %v", p.GetWorkflowId(), err)
		}
		if s := d.GetWorkflowExecutionInfo().GetStatus(); s != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			t.Fatalf("%s is %s, want completed", p.GetWorkflowId(), s)
		}
	}
	e.wantBalances(t, m.ID, c.ID, "EUR", 2200)
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
