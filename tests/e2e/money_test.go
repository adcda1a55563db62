package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// TestCurrencies: amounts in minor units go through exactly in currencies
// of every exponent (JPY 0, USD/EUR/KES/NGN 2, KWD 3), the currency is
// accepted in any case and answered in upper case, and the ledger moves the
// exact amount in that currency. KWD amounts end in 0: Stripe (and the
// sandbox, which follows it) charges three-decimal currencies in steps of 10.
func TestCurrencies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		sent, code string
		amount     int64
	}{
		{"jpy", "JPY", 5000},        // ¥5,000: no minor unit
		{"USD", "USD", 1999},        // $19.99
		{"eur", "EUR", 250},         // €2.50
		{"Kwd", "KWD", 12340},       // 12.340 KD: three decimals
		{"kes", "KES", 150000},      // KSh 1,500.00
		{"NGN", "NGN", 500000},      // ₦5,000.00
		{"usd", "USD", 1},           // the smallest amount
		{"JPY", "JPY", 99999999999}, // the largest amount
		{"kwd", "KWD", 99999999990}, // the largest amount a gateway takes in three decimals
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s_%d", tc.code, tc.amount), func(t *testing.T) {
			m, c := e.merchant(t), e.customer(t)
			p := e.create(t, c, pay(m, tc.amount, tc.sent, "pm_card_visa"))
			wantStatus(t, p, stSucceeded)
			if p.GetCurrency() != tc.code || p.GetAmount() != tc.amount {
				t.Fatalf("payment is %d %s, want %d %s", p.GetAmount(), p.GetCurrency(), tc.amount, tc.code)
			}
			wantAmounts(t, p, 0, tc.amount)
			e.wantBalances(t, m.ID, c.ID, tc.code, tc.amount)
			// Nothing in another currency.
			if other := e.balance(t, "merchant_balance:"+m.ID, "XTS"); other != 0 {
				t.Fatalf("balance in another currency: %d", other)
			}
			// Lists filter by currency in any case.
			r := e.post(t, m.Token, procListPayments, map[string]any{"currency": strings.ToLower(tc.code)})
			var list pb.ListPaymentsResponse
			if err := protojsonUnmarshal(r.body, &list); err != nil || r.status != http.StatusOK {
				t.Fatalf("ListPayments: %s", r)
			}
			if ids := paymentIDs(list.GetPayments()); !slices.Equal(ids, []string{p.GetId()}) {
				t.Fatalf("ListPayments(currency=%s) = %v, want [%s]", strings.ToLower(tc.code), ids, p.GetId())
			}
		})
	}

	t.Run("partial capture in KWD", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 12340, "kwd", "pm_card_visa").manual())
		wantAmounts(t, p, 12340, 0)
		// 10.001 KD cannot be captured at the gateway: refused, nothing moves.
		r := e.captureR(t, m, p.GetId(), 10001)
		wantCode(t, r, "invalid_argument")
		if !slices.Contains(r.fields(t), "amount") {
			t.Fatalf("field violations %v, want amount", r.fields(t))
		}
		got := e.captureR(t, m, p.GetId(), 10010).payment(t)
		if got.GetCurrency() != "KWD" {
			t.Fatalf("currency %q", got.GetCurrency())
		}
		wantAmounts(t, got, 0, 10010)
		e.wantBalances(t, m.ID, c.ID, "KWD", 10010)
	})
}

// TestBadInput: requests that can never be right are refused with the right
// code, naming the field at fault, and change nothing: no payment row, no
// gateway call, no workflow.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	m2, c2 := e.merchant(t), e.customer(t)
	const unknownAcct = "acct_01jzzzzzzzzzzzzzzzzzzzzzzz"
	good := pay(m, 1000, "USD", "pm_card_visa")

	tests := []struct {
		name  string
		as    user
		req   any
		code  string
		field string // the field violation the error names, "" = not checked
	}{
		{"amount 0", c, good.set("amount", 0), "invalid_argument", "amount"},
		{"negative amount", c, good.set("amount", -500), "invalid_argument", "amount"},
		{"amount over 99_999_999_999", c, good.set("amount", int64(100_000_000_000)), "invalid_argument", "amount"},
		{"amount far over", c, good.set("amount", "9223372036854775807"), "invalid_argument", "amount"},
		{"no amount", c, payReq{"merchant_id": m.ID, "currency": "USD", "payment_method": "pm_card_visa"}, "invalid_argument", "amount"},
		{"currency XXX", c, good.set("currency", "XXX"), "invalid_argument", "currency"},
		{"currency xts", c, good.set("currency", "xts"), "invalid_argument", "currency"},
		{"currency usd1", c, good.set("currency", "usd1"), "invalid_argument", "currency"},
		{"currency US", c, good.set("currency", "US"), "invalid_argument", "currency"},
		{"no currency", c, good.set("currency", ""), "invalid_argument", "currency"},
		{"KWD not ending in 0", c, good.set("currency", "KWD").set("amount", 1005), "invalid_argument", "amount"},
		{"currency CHE (a fund)", c, good.set("currency", "CHE"), "invalid_argument", "currency"},
		{"currency BOV (a fund)", c, good.set("currency", "bov"), "invalid_argument", "currency"},
		{"unknown merchant", c, good.set("merchant_id", unknownAcct), "invalid_argument", "merchant_id"},
		{"merchant_id of a customer", c, good.set("merchant_id", c2.ID), "invalid_argument", "merchant_id"},
		{"merchant_id that is no account id", c, good.set("merchant_id", "merchant-1"), "invalid_argument", "merchant_id"},
		{"a customer without merchant_id", c, good.set("merchant_id", ""), "invalid_argument", "merchant_id"},
		{"a customer paying itself", c, good.set("merchant_id", c.ID), "invalid_argument", "merchant_id"},
		{"a customer paying for another customer", c, good.set("customer_id", c2.ID), "invalid_argument", "customer_id"},
		{"a merchant charging itself", m, payReq{"customer_id": m.ID, "amount": 1000, "currency": "USD", "payment_method": "pm_card_visa"}, "invalid_argument", ""},
		{"a merchant charging for another merchant", m, good.set("merchant_id", m2.ID), "invalid_argument", "merchant_id"},
		{"a merchant charging an unknown customer", m, payReq{"customer_id": unknownAcct, "amount": 1000, "currency": "USD", "payment_method": "pm_card_visa"}, "invalid_argument", "customer_id"},
		{"a merchant charging another merchant", m, payReq{"customer_id": m2.ID, "amount": 1000, "currency": "USD", "payment_method": "pm_card_visa"}, "invalid_argument", "customer_id"},
		{"no payment_method", c, good.set("payment_method", ""), "invalid_argument", "payment_method"},
		{"payment_method that is no token", c, good.set("payment_method", "visa please"), "invalid_argument", "payment_method"},
		{"capture_method out of range", c, good.set("capture_method", 7), "invalid_argument", "capture_method"},
		{"unknown field", c, good.set("amout", 1000), "invalid_argument", ""},
		{"metadata key too long", c, good.set("metadata", map[string]string{strings.Repeat("k", 41): "v"}), "invalid_argument", "metadata"},
		{"not JSON", c, "{amount: 1000", "invalid_argument", ""},
		{"no token", user{}, good, "unauthenticated", ""},
		{"a forged token", user{Token: c.Token + "x"}, good, "unauthenticated", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, calls := e.paymentRows(t), e.gw.counts()
			r := e.post(t, tc.as.Token, procCreatePayment, tc.req)
			wantCode(t, r, tc.code)
			if r.msg == "" {
				t.Fatalf("%s without a message", tc.code)
			}
			if tc.field != "" && !slices.Contains(r.fields(t), tc.field) {
				t.Fatalf("field violations %v, want one for %q (%s)", r.fields(t), tc.field, r)
			}
			if got := e.paymentRows(t); got != rows {
				t.Fatalf("payment rows %d, before %d", got, rows)
			}
			if got := e.gw.counts(); got != calls {
				t.Fatalf("the gateway was called: %+v, before %+v", got, calls)
			}
		})
	}

	// Captures and cancels that can never be right.
	p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa").manual())
	wantStatus(t, p, stRequiresCapture)
	// As the merchant sees it (with the gateway's reference, which the
	// customer's answer leaves out).
	asMerchant := e.get(t, m, p.GetId())
	ops := []struct {
		name string
		body map[string]any
		proc string
		code string
	}{
		{"capture amount 0", map[string]any{"id": p.GetId(), "amount": 0}, procCapturePayment, "invalid_argument"},
		{"capture a negative amount", map[string]any{"id": p.GetId(), "amount": -1}, procCapturePayment, "invalid_argument"},
		{"capture over the maximum", map[string]any{"id": p.GetId(), "amount": int64(100_000_000_000)}, procCapturePayment, "invalid_argument"},
		{"capture an id that is no payment id", map[string]any{"id": "ch_123"}, procCapturePayment, "invalid_argument"},
		{"capture an unknown payment", map[string]any{"id": "pay_01jzzzzzzzzzzzzzzzzzzzzzzz"}, procCapturePayment, "not_found"},
		{"cancel an unknown payment", map[string]any{"id": "pay_01jzzzzzzzzzzzzzzzzzzzzzzz"}, procCancelPayment, "not_found"},
		{"cancel with a reason too long", map[string]any{"id": p.GetId(), "reason": strings.Repeat("r", 501)}, procCancelPayment, "invalid_argument"},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			calls := e.gw.counts()
			wantCode(t, e.post(t, m.Token, op.proc, op.body), op.code)
			if got := e.get(t, m, p.GetId()); !protoEqual(got, asMerchant) {
				t.Fatalf("the payment changed:\n%v\n%v", asMerchant, got)
			}
			if got := e.gw.counts(); got != calls {
				t.Fatalf("the gateway was called")
			}
		})
	}

	// No workflow was started for the refused requests: once a payment
	// created afterwards is visible, the merchant's workflows are only the
	// one above, and other merchant's none.
	later := e.create(t, c, pay(m, 2000, "USD", "pm_card_visa"))
	rows := e.waitVisible(t, fmt.Sprintf("MerchantId = '%s'", m.ID), func(r []*workflowExecution) bool {
		for _, x := range r {
			if x.GetExecution().GetWorkflowId() == later.GetWorkflowId() {
				return true
			}
		}
		return false
	})
	if len(rows) != 2 {
		t.Fatalf("%d workflows for the merchant, want 2 (the refused requests started none)", len(rows))
	}
	if others := e.listWorkflows(t, fmt.Sprintf("MerchantId = '%s'", m2.ID)); len(others) != 0 {
		t.Fatalf("%d workflows for the other merchant, want 0", len(others))
	}
	if got := e.paymentRows(t); got != 2 {
		t.Fatalf("%d payment rows, want 2", got)
	}
}

// TestOtherPaymentMethods: mobile money (mm:<provider>:<msisdn>) in KES and
// NGN, its decline, and tokens the gateway refuses for good (not retried:
// one gateway call), each ending in a recorded payment with the gateway's
// code and a balanced ledger.
func TestOtherPaymentMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name, method, currency string
		manual                 bool
		status, code           string
		provider, last4        string
	}{
		{"M-Pesa", "mm:mpesa:254712345678", "kes", false, stSucceeded, "", "mpesa", "5678"},
		{"MTN", "mm:mtn:2348031234567", "NGN", false, stSucceeded, "", "mtn", "4567"},
		{"M-Pesa without funds", "mm:mpesa:254700000000", "KES", false, stFailed, "insufficient_funds", "mpesa", "0000"},
		{"mobile money cannot be captured later", "mm:airtel:256701234569", "USD", true, stFailed, "payment_intent_invalid_parameter", "", ""},
		{"unknown test card", "pm_card_doesNotExist", "USD", false, stFailed, "resource_missing", "", ""},
		{"amex", "pm_card_amex", "USD", false, stSucceeded, "", "", "8431"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, c := e.merchant(t), e.customer(t)
			calls := e.gw.counts()
			req := pay(m, 250000, tc.currency, tc.method)
			if tc.manual {
				req = req.manual()
			}
			p := e.create(t, c, req)
			wantStatus(t, p, tc.status)
			if p.GetFailureCode() != tc.code {
				t.Fatalf("failure_code %q, want %q", p.GetFailureCode(), tc.code)
			}
			if tc.last4 != "" && (p.GetPaymentMethod().GetLast4() != tc.last4 || p.GetPaymentMethod().GetProvider() != tc.provider) {
				t.Fatalf("payment_method %v, want provider %q last4 %q", p.GetPaymentMethod(), tc.provider, tc.last4)
			}
			if got := e.gw.counts().createCalls - calls.createCalls; got != 1 {
				t.Fatalf("%d gateway calls, want 1 (refusals are not retried)", got)
			}
			received := int64(0)
			if tc.status == stSucceeded {
				received = 250000
			}
			wantAmounts(t, p, 0, received)
			e.wantBalances(t, m.ID, c.ID, strings.ToUpper(tc.currency), received)
		})
	}
}
