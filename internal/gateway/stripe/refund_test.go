package stripe

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/payments-platform/payments/internal/gateway"
)

// refundJSON renders a Refund as Stripe does.
func refundJSON(id, status, currency string, amount int64, failure string) string {
	fr := "null"
	if failure != "" {
		fr = strconv.Quote(failure)
	}
	return fmt.Sprintf(`{"id": %q, "object": "refund", "amount": %d, "currency": %q, "status": %q, "failure_reason": %s,
	  "payment_intent": "pi_Paid", "reason": null, "metadata": {"payment_id": "pay_1"}}`, id, amount, currency, status, fr)
}

func refundRequest() gateway.RefundRequest {
	return gateway.RefundRequest{IdempotencyKey: "refund/re_1/create/1", PaymentID: "pay_1", Reference: "pi_Paid",
		Amount: 1234, Currency: "USD", Reason: "requested_by_customer"}
}

func TestRefundRequest(t *testing.T) {
	for _, tc := range amountCases {
		t.Run(fmt.Sprintf("%s %d", tc.currency, tc.iso), func(t *testing.T) {
			f := newFake(t, 200, refundJSON("re_X", "succeeded", strings.ToLower(tc.currency), tc.sent, ""))
			r := refundRequest()
			r.Currency, r.Amount = tc.currency, tc.iso
			res, err := f.gateway().Refund(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			req := f.only(t)
			if req.method != http.MethodPost || req.path != "/v1/refunds" {
				t.Fatalf("%s %s", req.method, req.path)
			}
			want := url.Values{
				"payment_intent":       {"pi_Paid"},
				"amount":               {strconv.FormatInt(tc.sent, 10)},
				"reason":               {"requested_by_customer"},
				"metadata[payment_id]": {"pay_1"},
			}
			if req.form.Encode() != want.Encode() {
				t.Errorf("form\n got %s\nwant %s", req.form.Encode(), want.Encode())
			}
			if k := req.header.Get("Idempotency-Key"); k != "refund/re_1/create/1" {
				t.Errorf("Idempotency-Key %q", k)
			}
			if want := (gateway.RefundResult{Reference: "re_X", Status: gateway.RefundSucceeded, Amount: tc.iso}); res != want {
				t.Errorf("result %+v, want %+v", res, want)
			}
		})
	}
}

func TestRefundReasons(t *testing.T) {
	for reason, want := range map[string]string{
		"duplicate": "duplicate", " Fraudulent ": "fraudulent", "requested_by_customer": "requested_by_customer",
		"": "", "other": "", "expired_uncaptured_charge": "",
	} {
		f := newFake(t, 200, refundJSON("re_X", "pending", "usd", 1234, ""))
		r := refundRequest()
		r.Reason = reason
		if _, err := f.gateway().Refund(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		form := f.only(t).form
		if form.Get("reason") != want || (want == "" && form.Has("reason")) {
			t.Errorf("reason %q: sent %q, want %q", reason, form.Get("reason"), want)
		}
	}
	f := newFake(t, 200, refundJSON("re_X", "pending", "usd", 1234, ""))
	r := refundRequest()
	r.PaymentID = ""
	if _, err := f.gateway().Refund(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	if f.only(t).form.Has("metadata[payment_id]") {
		t.Error("empty payment id sent as metadata")
	}
}

func TestRefundStatuses(t *testing.T) {
	for _, tc := range []struct {
		status, failure string
		want            gateway.RefundStatus
		code            string
	}{
		{"pending", "", gateway.RefundPending, ""},
		{"requires_action", "", gateway.RefundPending, ""},
		{"succeeded", "", gateway.RefundSucceeded, ""},
		{"failed", "lost_or_stolen_card", gateway.RefundFailed, "lost_or_stolen_card"},
		{"failed", "expired_or_canceled_card", gateway.RefundFailed, "expired_or_canceled_card"},
		{"failed", "", gateway.RefundFailed, "unknown"},
		{"canceled", "", gateway.RefundCanceled, ""},
		{"something_new", "", gateway.RefundPending, ""},
	} {
		f := newFake(t, 200, refundJSON("re_S", tc.status, "isk", 500, tc.failure))
		r := refundRequest()
		r.Currency, r.Amount = "ISK", 5
		res, err := f.gateway().Refund(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		want := gateway.RefundResult{Reference: "re_S", Status: tc.want, Amount: 5, FailureCode: tc.code}
		if res != want {
			t.Errorf("%s/%s: %+v, want %+v", tc.status, tc.failure, res, want)
		}
	}
}

func TestRefundErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		kind   gateway.ErrorKind
		code   string
	}{
		{400, stripeError("charge_already_refunded", "Charge ch_1 has already been refunded."), gateway.Invalid, "charge_already_refunded"},
		{400, `{"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters"}}`, gateway.Invalid, ""},
		{500, `{"error": {"type": "api_error", "message": "boom"}}`, gateway.Transient, ""},
		{429, stripeError("rate_limit", "slow down"), gateway.RateLimited, "rate_limit"},
		// Stripe answers in another currency: never read as this payment's.
		{200, refundJSON("re_X", "succeeded", "eur", 1234, ""), gateway.Transient, CodeUnexpectedAnswer},
	} {
		f := newFake(t, tc.status, tc.body)
		_, err := f.gateway().Refund(t.Context(), refundRequest())
		ge := wantError(t, err, tc.kind)
		if ge.Code != tc.code {
			t.Errorf("%d: code %q, want %q", tc.status, ge.Code, tc.code)
		}
		f.only(t)
	}
}

func TestRefundRefusedBeforeSending(t *testing.T) {
	f := newFake(t, 200, refundJSON("re_X", "succeeded", "usd", 1234, ""))
	g := f.gateway()
	for name, mutate := range map[string]func(*gateway.RefundRequest){
		"no key":          func(r *gateway.RefundRequest) { r.IdempotencyKey = "" },
		"long key":        func(r *gateway.RefundRequest) { r.IdempotencyKey = strings.Repeat("k", 256) },
		"no reference":    func(r *gateway.RefundRequest) { r.Reference = "" },
		"path reference":  func(r *gateway.RefundRequest) { r.Reference = "pi_1/../x" },
		"zero amount":     func(r *gateway.RefundRequest) { r.Amount = 0 },
		"negative amount": func(r *gateway.RefundRequest) { r.Amount = -5 },
	} {
		r := refundRequest()
		mutate(&r)
		_, err := g.Refund(t.Context(), r)
		ge := wantError(t, err, gateway.Invalid)
		if strings.Contains(name, "amount") {
			wantRefusal(t, err, CodeAmountInvalid, "amount")
		} else if ge.Code == CodeAmountInvalid {
			t.Errorf("%s: code %q", name, ge.Code)
		}
	}
	if n := len(f.got()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}
