package stripe

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/gateway"
)

// amountCases are ISO amounts and what Stripe must receive for them.
var amountCases = []struct {
	currency  string
	iso, sent int64
}{
	{"ISK", 5, 500}, // two decimals at Stripe, always 00
	{"ISK", 12_345, 1_234_500},
	{"MGA", 150_000, 1500}, // two decimals in ISO, none at Stripe
	{"KWD", 1230, 1230},    // three decimals, last one 0
	{"JPY", 500, 500},
	{"USD", 1234, 1234},
	{"usd", 1234, 1234},
}

func TestCreatePaymentAmounts(t *testing.T) {
	for _, tc := range amountCases {
		t.Run(fmt.Sprintf("%s %d", tc.currency, tc.iso), func(t *testing.T) {
			f := newFake(t, 200, piJSON(intent{id: "pi_Amt", status: "succeeded", currency: strings.ToLower(tc.currency),
				amount: tc.sent, received: tc.sent, paymentID: "pay_1"}))
			r := createRequest()
			r.Currency, r.Amount = tc.currency, tc.iso
			res, err := f.gateway().CreatePayment(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			form := f.only(t).form
			if form.Get("amount") != strconv.FormatInt(tc.sent, 10) || form.Get("currency") != strings.ToLower(tc.currency) {
				t.Errorf("sent amount=%s currency=%s, want %d %s", form.Get("amount"), form.Get("currency"), tc.sent, strings.ToLower(tc.currency))
			}
			if res.Amount != tc.iso || res.AmountReceived != tc.iso || res.AmountCapturable != 0 {
				t.Errorf("result amounts %d/%d/%d, want %d back in ISO units", res.Amount, res.AmountReceived, res.AmountCapturable, tc.iso)
			}
		})
	}
}

func TestCaptureAmounts(t *testing.T) {
	for _, tc := range amountCases {
		t.Run(fmt.Sprintf("%s %d", tc.currency, tc.iso), func(t *testing.T) {
			f := newFake(t, 200, piJSON(intent{id: "pi_Cap", status: "succeeded", currency: strings.ToLower(tc.currency),
				amount: tc.sent * 2, received: tc.sent}))
			res, err := f.gateway().Capture(t.Context(), gateway.CaptureRequest{IdempotencyKey: "k", Reference: "pi_Cap",
				Currency: tc.currency, Amount: tc.iso})
			if err != nil {
				t.Fatal(err)
			}
			req := f.only(t)
			if got := req.form.Get("amount_to_capture"); got != strconv.FormatInt(tc.sent, 10) {
				t.Errorf("amount_to_capture=%s, want %d", got, tc.sent)
			}
			if res.Amount != tc.iso*2 || res.AmountReceived != tc.iso {
				t.Errorf("result %+v, want amount %d received %d", res, tc.iso*2, tc.iso)
			}
		})
	}
}

// A capture from a workflow older than CaptureRequest.Currency learns the
// currency from the intent before converting.
func TestCaptureWithoutCurrency(t *testing.T) {
	f := newRouted(t, map[string][]answer{
		"GET /v1/payment_intents/pi_Old": {{200, piJSON(intent{id: "pi_Old", status: "requires_capture", currency: "isk",
			amount: 1000, capturable: 1000})}},
		"POST /v1/payment_intents/pi_Old/capture": {{200, piJSON(intent{id: "pi_Old", status: "succeeded", currency: "isk",
			amount: 1000, received: 500})}},
	})
	res, err := f.gateway(nil).Capture(t.Context(), gateway.CaptureRequest{IdempotencyKey: "k", Reference: "pi_Old", Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	if calls := f.calls(); !slices.Equal(calls, []string{"GET /v1/payment_intents/pi_Old", "POST /v1/payment_intents/pi_Old/capture"}) {
		t.Fatalf("calls %v", calls)
	}
	if got := f.got()[1].form.Get("amount_to_capture"); got != "500" {
		t.Errorf("amount_to_capture=%s, want 500 (5 ISK)", got)
	}
	if res.Amount != 10 || res.AmountReceived != 5 {
		t.Errorf("result %+v", res)
	}

	// Capturing everything needs no currency and no lookup.
	f = newRouted(t, map[string][]answer{
		"POST /v1/payment_intents/pi_Old/capture": {{200, piJSON(intent{id: "pi_Old", status: "succeeded", currency: "isk",
			amount: 1000, received: 1000})}},
	})
	res, err = f.gateway(nil).Capture(t.Context(), gateway.CaptureRequest{IdempotencyKey: "k", Reference: "pi_Old"})
	if err != nil || res.AmountReceived != 10 {
		t.Fatalf("capture all: %+v, %v", res, err)
	}
}

// refusal is an amount or currency Stripe cannot take, with the error code
// and request field it must be refused with.
var refusals = []struct {
	currency string
	amount   int64
	code     string
	field    string
}{
	{"KWD", 1234, CodeAmountInvalid, "amount"}, // last of three decimals not 0
	{"BHD", 5, CodeAmountInvalid, "amount"},
	{"MGA", 150_050, CodeAmountInvalid, "amount"}, // half an ariary
	{"IQD", 1000, CodeCurrencyNotSupported, "currency"},
	{"LYD", 1000, CodeCurrencyNotSupported, "currency"},
	{"BOV", 1000, CodeCurrencyNotSupported, "currency"}, // a fund
	{"XAU", 1000, CodeCurrencyNotSupported, "currency"}, // a metal
	{"XXX", 1000, CodeCurrencyNotSupported, "currency"},
	{"", 1000, CodeCurrencyNotSupported, "currency"},
	{"ISK", 100_000_000_000, CodeAmountInvalid, "amount"}, // beyond MaxAmount, would be multiplied
}

// wantRefusal asserts err is an Invalid gateway.Error with code, naming the
// field in its message and keeping the errs.Error naming it.
func wantRefusal(t *testing.T, err error, code, field string) {
	t.Helper()
	ge := wantError(t, err, gateway.Invalid)
	if ge.Code != code {
		t.Errorf("code %q, want %q (%s)", ge.Code, code, ge.Message)
	}
	if !strings.HasPrefix(ge.Message, "stripe: "+field+": ") {
		t.Errorf("message %q does not name the field %q", ge.Message, field)
	}
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.KindInvalidArgument || e.Field != field {
		t.Errorf("cause %v does not name the field %q", e, field)
	}
}

func TestAmountsRefusedBeforeSending(t *testing.T) {
	f := newFake(t, 200, piSucceeded)
	g := f.gateway()
	for _, tc := range refusals {
		t.Run(fmt.Sprintf("%s %d", tc.currency, tc.amount), func(t *testing.T) {
			r := createRequest()
			r.Currency, r.Amount = tc.currency, tc.amount
			_, err := g.CreatePayment(t.Context(), r)
			wantRefusal(t, err, tc.code, tc.field)

			if tc.currency != "" { // a capture without currency asks the intent for it
				_, err = g.Capture(t.Context(), gateway.CaptureRequest{IdempotencyKey: "k", Reference: "pi_1", Currency: tc.currency, Amount: tc.amount})
				wantRefusal(t, err, tc.code, tc.field)
			}

			_, err = g.Refund(t.Context(), gateway.RefundRequest{IdempotencyKey: "k", PaymentID: "pay_1", Reference: "pi_1",
				Currency: tc.currency, Amount: tc.amount})
			wantRefusal(t, err, tc.code, tc.field)
		})
	}
	_, err := g.Capture(t.Context(), gateway.CaptureRequest{IdempotencyKey: "k", Reference: "pi_1", Currency: "USD", Amount: -1})
	wantRefusal(t, err, CodeAmountInvalid, "amount")
	if n := len(f.got()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func TestRetrieveAmounts(t *testing.T) {
	f := newFake(t, 200, piJSON(intent{id: "pi_R", status: "requires_capture", currency: "mga", amount: 1500, capturable: 1500}))
	res, err := f.gateway().Retrieve(t.Context(), "pi_R")
	if err != nil {
		t.Fatal(err)
	}
	if res.Amount != 150_000 || res.AmountCapturable != 150_000 {
		t.Fatalf("result %+v, want MGA in ISO minor units", res)
	}
}

// Answers that cannot be read exactly are Transient, never a refusal: the
// call may have taken effect at Stripe.
func TestUnreadableAnswers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		currency string
	}{
		{"inexact ISK", piJSON(intent{id: "pi_U", status: "succeeded", currency: "isk", amount: 550, received: 550}), "ISK"},
		{"inexact ISK capturable", piJSON(intent{id: "pi_U", status: "requires_capture", currency: "isk", amount: 500, capturable: 501}), "ISK"},
		{"another currency", piJSON(intent{id: "pi_U", status: "succeeded", currency: "jpy", amount: 500, received: 500}), "USD"},
		{"a currency not charged in", piJSON(intent{id: "pi_U", status: "succeeded", currency: "iqd", amount: 500, received: 500}), ""},
		{"no currency at all", `{"id": "pi_U", "object": "payment_intent", "amount": 10, "status": "succeeded"}`, ""},
		{"an unknown currency", piJSON(intent{id: "pi_U", status: "succeeded", currency: "zzz", amount: 500, received: 500}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, 200, tc.body)
			logs := &logRecords{}
			g := New(Options{SecretKey: testKey, APIBase: f.srv.URL, HTTPClient: f.srv.Client(), Logger: slog.New(logs)})
			var err error
			if tc.currency == "" {
				_, err = g.Retrieve(t.Context(), "pi_U")
			} else {
				r := createRequest()
				r.Currency, r.Amount = tc.currency, 5
				_, err = g.CreatePayment(t.Context(), r)
			}
			ge := wantError(t, err, gateway.Transient)
			if ge.Code != CodeUnexpectedAnswer {
				t.Errorf("code %q (%s)", ge.Code, ge.Message)
			}
			if len(logs.at(slog.LevelError)) != 1 {
				t.Errorf("error logs %v, want one", logs.at(slog.LevelError))
			}
		})
	}
}

// An answer without a currency (not Stripe's habit, but possible in a
// fixture) is read in the request's currency.
func TestAnswerWithoutCurrency(t *testing.T) {
	f := newFake(t, 200, `{"id": "pi_N", "object": "payment_intent", "amount": 500, "amount_received": 500, "status": "succeeded"}`)
	res, err := f.gateway().Cancel(t.Context(), gateway.CancelRequest{IdempotencyKey: "k", Reference: "pi_N", Currency: "ISK"})
	if err != nil || res.Amount != 5 || res.AmountReceived != 5 {
		t.Fatalf("result %+v, %v", res, err)
	}
}

func TestDeclineAmounts(t *testing.T) {
	body := `{"error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined.",
	  "payment_intent": {"id": "pi_D", "object": "payment_intent", "amount": 500, "currency": "isk", "status": "requires_payment_method"}}}`
	f := newFake(t, http.StatusPaymentRequired, body)
	r := createRequest()
	r.Currency, r.Amount = "ISK", 5
	res, err := f.gateway().CreatePayment(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reference != "pi_D" || res.Status != gateway.StatusFailed || res.Amount != 5 || res.FailureCode != "generic_decline" {
		t.Fatalf("result %+v", res)
	}
	if got := f.only(t).form.Get("amount"); got != "500" {
		t.Errorf("sent amount %s", got)
	}

	// A decline whose intent cannot be read exactly is not taken for a
	// decline: Transient, so it is looked at again.
	f = newFake(t, http.StatusPaymentRequired, strings.Replace(body, `"amount": 500`, `"amount": 550`, 1))
	_, err = f.gateway().CreatePayment(t.Context(), r)
	if ge := wantError(t, err, gateway.Transient); ge.Code != CodeUnexpectedAnswer {
		t.Fatalf("code %q", ge.Code)
	}
}
