package stripe

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/payments-platform/payments/internal/gateway"
)

const (
	payID       = "pay_01jz8v6k2m4n5p6q7r8s9t0abc"
	searchRoute = "GET /v1/payment_intents/search"
)

func TestFindByReference(t *testing.T) {
	f := newRouted(t, map[string][]answer{
		"GET /v1/payment_intents/pi_Isk": {{200, piJSON(intent{id: "pi_Isk", status: "requires_capture", currency: "isk",
			amount: 500, capturable: 500, paymentID: payID})}},
	})
	found, err := f.gateway(nil).Find(t.Context(), gateway.FindRequest{PaymentID: payID, Reference: "pi_Isk", Currency: "ISK"})
	if err != nil {
		t.Fatal(err)
	}
	want := gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_Isk", Status: gateway.StatusRequiresCapture,
		Amount: 5, AmountCapturable: 5}}
	if found != want {
		t.Fatalf("found %+v, want %+v (ISK read back in ISO units)", found, want)
	}
	req := f.got()[0]
	if req.form.Get("expand[0]") != "payment_method" || req.header.Get("Idempotency-Key") != "" {
		t.Errorf("retrieve sent %v, Idempotency-Key %q", req.form, req.header.Get("Idempotency-Key"))
	}
	if calls := f.calls(); len(calls) != 1 {
		t.Errorf("calls %v: a known reference needs no search", calls)
	}
}

func TestFindByReferenceAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answer  answer
		exists  bool
		wantErr bool
		kind    gateway.ErrorKind
		code    string
	}{
		{name: "404 means none", answer: answer{404, stripeError("resource_missing", "No such payment_intent: 'pi_X'")}},
		{name: "no metadata is accepted", answer: answer{200, piJSON(intent{id: "pi_X", status: "succeeded", currency: "usd",
			amount: 100, received: 100})}, exists: true},
		{name: "another payment's intent", answer: answer{200, piJSON(intent{id: "pi_X", status: "succeeded", currency: "usd",
			amount: 100, received: 100, paymentID: "pay_other"})}, wantErr: true, kind: gateway.Invalid, code: CodeReferenceMismatch},
		{name: "400 resource_missing is not none", answer: answer{400, stripeError("resource_missing", "No such parameter")},
			wantErr: true, kind: gateway.Invalid, code: "resource_missing"},
		{name: "500", answer: answer{500, `{"error": {"type": "api_error", "message": "boom"}}`}, wantErr: true, kind: gateway.Transient},
		{name: "429", answer: answer{429, stripeError("rate_limit", "slow down")}, wantErr: true, kind: gateway.RateLimited, code: "rate_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRouted(t, map[string][]answer{"GET /v1/payment_intents/pi_X": {tc.answer}})
			found, err := f.gateway(nil).Find(t.Context(), gateway.FindRequest{PaymentID: payID, Reference: "pi_X", Currency: "USD"})
			if tc.wantErr {
				ge := wantError(t, err, tc.kind)
				if ge.Code != tc.code {
					t.Errorf("code %q, want %q", ge.Code, tc.code)
				}
				if found.Exists {
					t.Error("Exists with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if found.Exists != tc.exists {
				t.Fatalf("found %+v, want Exists %v", found, tc.exists)
			}
		})
	}
}

func TestFindSearchQuery(t *testing.T) {
	f := newRouted(t, map[string][]answer{searchRoute: {{200, searchJSON(false, "")}}})
	found, err := f.gateway(nil).Find(t.Context(), gateway.FindRequest{PaymentID: payID, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if found.Exists {
		t.Fatalf("found %+v in an empty search", found)
	}
	got := f.got()
	if len(got) != 1 {
		t.Fatalf("calls %v", f.calls())
	}
	req := got[0]
	for k, want := range map[string]string{
		"query":     "metadata['payment_id']:'" + payID + "'",
		"limit":     "100",
		"expand[0]": "data.payment_method",
	} {
		if v := req.form.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if len(req.form) != 3 {
		t.Errorf("search sent %v", req.form)
	}
	if req.header.Get("Idempotency-Key") != "" {
		t.Error("a search with an Idempotency-Key")
	}
}

func TestFindRefusesPaymentIDs(t *testing.T) {
	f := newRouted(t, map[string][]answer{})
	g := f.gateway(nil)
	for _, id := range []string{"", "pay_", "pay", "PAY_abc", "pay_ABC", "pay_abc'", "pay_abc' OR metadata['x']:'y",
		"pay_a\\b", "pay_a b", "pay_a-b", "pay_a_b", "acct_abc", "pay_\u00e9", "pay_" + strings.Repeat("a", 61)} {
		_, err := g.Find(t.Context(), gateway.FindRequest{PaymentID: id})
		ge := wantError(t, err, gateway.Invalid)
		if ge.Code != CodePaymentIDInvalid {
			t.Errorf("%q: code %q", id, ge.Code)
		}
		_, err = g.Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "k", PaymentID: id})
		wantError(t, err, gateway.Invalid)
	}
	if !validPaymentID("pay_" + strings.Repeat("a", 60)) {
		t.Error("a 64-character id refused")
	}
	if calls := f.calls(); len(calls) != 0 {
		t.Fatalf("sent %v", calls)
	}
}

func TestFindSearchResults(t *testing.T) {
	older, newer, newest := int64(1_700_000_000), int64(1_700_000_100), int64(1_700_000_200)
	for _, tc := range []struct {
		name     string
		pis      []intent
		want     gateway.Found
		errorLog bool
	}{
		{name: "none", pis: nil, want: gateway.Found{}},
		{name: "one", pis: []intent{{id: "pi_A", status: "processing", currency: "jpy", amount: 500, created: older, paymentID: payID}},
			want: gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_A", Status: gateway.StatusProcessing, Amount: 500}}},
		{name: "another payment's intents are ignored", pis: []intent{
			{id: "pi_Other", status: "succeeded", currency: "jpy", amount: 900, received: 900, created: newest, paymentID: payID + "x"},
			{id: "pi_NoMeta", status: "succeeded", currency: "jpy", amount: 900, received: 900, created: newest},
		}, want: gateway.Found{}},
		{name: "the one that succeeded wins over newer ones", pis: []intent{
			{id: "pi_New", status: "requires_payment_method", currency: "jpy", amount: 500, created: newest, paymentID: payID},
			{id: "pi_Ok", status: "succeeded", currency: "jpy", amount: 500, received: 500, created: older, paymentID: payID},
			{id: "pi_Mid", status: "processing", currency: "jpy", amount: 500, created: newer, paymentID: payID},
		}, want: gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_Ok", Status: gateway.StatusSucceeded, Amount: 500, AmountReceived: 500}}},
		{name: "an authorization wins over newer ones", pis: []intent{
			{id: "pi_Auth", status: "requires_capture", currency: "jpy", amount: 500, capturable: 500, created: older, paymentID: payID},
			{id: "pi_New", status: "canceled", currency: "jpy", amount: 500, created: newest, paymentID: payID},
		}, want: gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_Auth", Status: gateway.StatusRequiresCapture, Amount: 500, AmountCapturable: 500}}},
		{name: "succeeded wins over an authorization, and both are logged", pis: []intent{
			{id: "pi_Auth", status: "requires_capture", currency: "jpy", amount: 500, capturable: 500, created: newest, paymentID: payID},
			{id: "pi_Ok", status: "succeeded", currency: "jpy", amount: 500, received: 500, created: older, paymentID: payID},
		}, want: gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_Ok", Status: gateway.StatusSucceeded, Amount: 500, AmountReceived: 500}},
			errorLog: true},
		{name: "else the newest", pis: []intent{
			{id: "pi_Old", status: "requires_payment_method", currency: "jpy", amount: 500, created: older, paymentID: payID},
			{id: "pi_New", status: "requires_action", currency: "jpy", amount: 500, created: newest, paymentID: payID},
			{id: "pi_Mid", status: "canceled", currency: "jpy", amount: 500, created: newer, paymentID: payID},
		}, want: gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_New", Status: gateway.StatusRequiresAction, Amount: 500}}},
		{name: "same second: the greatest id", pis: []intent{
			{id: "pi_B", status: "canceled", currency: "jpy", amount: 500, created: older, paymentID: payID},
			{id: "pi_C", status: "canceled", currency: "jpy", amount: 500, created: older, paymentID: payID},
			{id: "pi_A", status: "canceled", currency: "jpy", amount: 500, created: older, paymentID: payID},
		}, want: gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_C", Status: gateway.StatusCanceled, Amount: 500}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][]intent{tc.pis, reversed(tc.pis)} {
				f := newRouted(t, map[string][]answer{searchRoute: {{200, searchJSON(false, "", order...)}}})
				logs := &logRecords{}
				found, err := f.gateway(slog.New(logs)).Find(t.Context(), gateway.FindRequest{PaymentID: payID, Currency: "JPY"})
				if err != nil {
					t.Fatal(err)
				}
				if found != tc.want {
					t.Fatalf("found %+v\nwant %+v", found, tc.want)
				}
				if got := len(logs.at(slog.LevelError)) > 0; got != tc.errorLog {
					t.Errorf("error logged: %v, want %v (%v)", got, tc.errorLog, logs.at(slog.LevelError))
				}
			}
		})
	}
}

func reversed(pis []intent) []intent {
	out := slices.Clone(pis)
	slices.Reverse(out)
	return out
}

func TestFindSearchPages(t *testing.T) {
	f := newRouted(t, map[string][]answer{searchRoute: {
		{200, searchJSON(true, "page_2", intent{id: "pi_A", status: "canceled", currency: "usd", amount: 100, created: 1, paymentID: payID})},
		{200, searchJSON(false, "", intent{id: "pi_B", status: "succeeded", currency: "usd", amount: 100, received: 100, created: 2, paymentID: payID})},
	}})
	found, err := f.gateway(nil).Find(t.Context(), gateway.FindRequest{PaymentID: payID, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if found.Result.Reference != "pi_B" {
		t.Fatalf("found %+v, want the intent of the second page", found)
	}
	got := f.got()
	if len(got) != 2 || got[1].form.Get("page") != "page_2" || got[1].form.Get("query") != got[0].form.Get("query") {
		t.Fatalf("requests %+v", got)
	}
}

func TestFindSearchErrors(t *testing.T) {
	for _, tc := range []struct {
		answer answer
		kind   gateway.ErrorKind
	}{
		{answer{500, `{"error": {"type": "api_error", "message": "boom"}}`}, gateway.Transient},
		{answer{400, stripeError("parameter_invalid_string", "bad query")}, gateway.Invalid},
		{answer{429, stripeError("rate_limit", "slow down")}, gateway.RateLimited},
		{answer{401, `{"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}`}, gateway.Invalid},
	} {
		f := newRouted(t, map[string][]answer{searchRoute: {tc.answer}})
		found, err := f.gateway(nil).Find(t.Context(), gateway.FindRequest{PaymentID: payID, Currency: "USD"})
		wantError(t, err, tc.kind)
		if found.Exists {
			t.Errorf("%d: Exists with an error", tc.answer.status)
		}
		_, err = f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "k", PaymentID: payID, Currency: "USD"})
		wantError(t, err, tc.kind)
	}
}

func TestFindUnreadableAnswer(t *testing.T) {
	for name, pi := range map[string]intent{
		"inexact ISK":      {id: "pi_A", status: "succeeded", currency: "isk", amount: 550, received: 550, paymentID: payID},
		"another currency": {id: "pi_A", status: "succeeded", currency: "eur", amount: 500, received: 500, paymentID: payID},
	} {
		t.Run(name, func(t *testing.T) {
			f := newRouted(t, map[string][]answer{searchRoute: {{200, searchJSON(false, "", pi)}}})
			logs := &logRecords{}
			_, err := f.gateway(slog.New(logs)).Find(t.Context(), gateway.FindRequest{PaymentID: payID, Currency: "ISK"})
			ge := wantError(t, err, gateway.Transient)
			if ge.Code != CodeUnexpectedAnswer {
				t.Errorf("code %q", ge.Code)
			}
			if len(logs.at(slog.LevelError)) != 1 {
				t.Errorf("error logs %v", logs.at(slog.LevelError))
			}
		})
	}
}

// voidRoutes answers a search with pis, and each cancel with a canceled
// intent.
func voidRoutes(pis ...intent) map[string][]answer {
	routes := map[string][]answer{searchRoute: {{200, searchJSON(false, "", pis...)}}}
	for _, p := range pis {
		after := p
		after.status = "canceled"
		after.capturable = 0
		routes["POST /v1/payment_intents/"+p.id+"/cancel"] = []answer{{200, piJSON(after)}}
	}
	return routes
}

func TestVoidCancelsWhatCanStillTakeMoney(t *testing.T) {
	for _, status := range []string{"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture", "processing"} {
		t.Run(status, func(t *testing.T) {
			pi := intent{id: "pi_V", status: status, currency: "mga", amount: 1500, created: 1, paymentID: payID}
			if status == "requires_capture" {
				pi.capturable = 1500
			}
			f := newRouted(t, voidRoutes(pi))
			found, err := f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "payment/pay_1/void/1",
				PaymentID: payID, Currency: "MGA", Reason: "abandoned"})
			if err != nil {
				t.Fatal(err)
			}
			want := gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_V", Status: gateway.StatusCanceled, Amount: 150_000}}
			if found != want {
				t.Fatalf("found %+v, want %+v", found, want)
			}
			if calls := f.calls(); !slices.Equal(calls, []string{searchRoute, "POST /v1/payment_intents/pi_V/cancel"}) {
				t.Fatalf("calls %v", calls)
			}
			cancel := f.got()[1]
			if k := cancel.header.Get("Idempotency-Key"); k != "payment/pay_1/void/1/pi_V" {
				t.Errorf("Idempotency-Key %q", k)
			}
			if cancel.form.Get("cancellation_reason") != "abandoned" || cancel.form.Get("expand[0]") != "payment_method" {
				t.Errorf("cancel form %v", cancel.form)
			}
		})
	}
}

func TestVoidLeavesFinalIntents(t *testing.T) {
	for status, want := range map[string]gateway.Status{"succeeded": gateway.StatusSucceeded, "canceled": gateway.StatusCanceled} {
		pi := intent{id: "pi_F", status: status, currency: "usd", amount: 1234, created: 1, paymentID: payID}
		if status == "succeeded" {
			pi.received = 1234
		}
		f := newRouted(t, voidRoutes(pi))
		found, err := f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "k", PaymentID: payID, Currency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		if !found.Exists || found.Result.Status != want || found.Result.AmountReceived != pi.received {
			t.Errorf("%s: found %+v", status, found)
		}
		if calls := f.calls(); !slices.Equal(calls, []string{searchRoute}) {
			t.Errorf("%s: calls %v, want no cancel", status, calls)
		}
	}
}

func TestVoidNothingFound(t *testing.T) {
	f := newRouted(t, voidRoutes())
	found, err := f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "k", PaymentID: payID, Currency: "USD"})
	if err != nil || found.Exists {
		t.Fatalf("found %+v, %v", found, err)
	}
	f = newRouted(t, map[string][]answer{"GET /v1/payment_intents/pi_Gone": {{404, stripeError("resource_missing", "No such payment_intent")}}})
	found, err = f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "k", PaymentID: payID, Reference: "pi_Gone", Currency: "USD"})
	if err != nil || found.Exists {
		t.Fatalf("by reference: found %+v, %v", found, err)
	}
}

func TestVoidByReference(t *testing.T) {
	pi := intent{id: "pi_R", status: "requires_capture", currency: "kwd", amount: 1230, capturable: 1230, created: 1, paymentID: payID}
	after := pi
	after.status, after.capturable = "canceled", 0
	f := newRouted(t, map[string][]answer{
		"GET /v1/payment_intents/pi_R":         {{200, piJSON(pi)}},
		"POST /v1/payment_intents/pi_R/cancel": {{200, piJSON(after)}},
	})
	found, err := f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "k", PaymentID: payID, Reference: "pi_R", Currency: "KWD"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_R", Status: gateway.StatusCanceled, Amount: 1230}}); found != want {
		t.Fatalf("found %+v, want %+v", found, want)
	}
	if calls := f.calls(); !slices.Equal(calls, []string{"GET /v1/payment_intents/pi_R", "POST /v1/payment_intents/pi_R/cancel"}) {
		t.Fatalf("calls %v", calls)
	}
}

// The intent succeeds between the search and the cancel: Stripe refuses the
// cancel, and Void reports the success instead of an error.
func TestVoidRaceWithSuccess(t *testing.T) {
	pi := intent{id: "pi_Race", status: "requires_capture", currency: "isk", amount: 500, capturable: 500, created: 1, paymentID: payID}
	done := pi
	done.status, done.capturable, done.received = "succeeded", 0, 500
	f := newRouted(t, map[string][]answer{
		searchRoute: {{200, searchJSON(false, "", pi)}},
		"POST /v1/payment_intents/pi_Race/cancel": {{400, stripeError("payment_intent_unexpected_state",
			"You cannot cancel this PaymentIntent because it has a status of succeeded.")}},
		"GET /v1/payment_intents/pi_Race": {{200, piJSON(done)}},
	})
	found, err := f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "k", PaymentID: payID, Currency: "ISK"})
	if err != nil {
		t.Fatal(err)
	}
	want := gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_Race", Status: gateway.StatusSucceeded, Amount: 5, AmountReceived: 5}}
	if found != want {
		t.Fatalf("found %+v, want %+v", found, want)
	}
	if calls := f.calls(); !slices.Equal(calls, []string{searchRoute, "POST /v1/payment_intents/pi_Race/cancel", "GET /v1/payment_intents/pi_Race"}) {
		t.Fatalf("calls %v", calls)
	}
}

func TestVoidCancelErrors(t *testing.T) {
	for _, tc := range []struct {
		answer answer
		kind   gateway.ErrorKind
		code   string
	}{
		{answer{500, `{"error": {"type": "api_error", "message": "boom"}}`}, gateway.Transient, ""},
		{answer{429, stripeError("lock_timeout", "locked")}, gateway.Transient, "lock_timeout"},
		{answer{400, stripeError("resource_missing", "No such payment_intent")}, gateway.Invalid, "resource_missing"},
	} {
		pi := intent{id: "pi_E", status: "requires_action", currency: "usd", amount: 100, created: 1, paymentID: payID}
		f := newRouted(t, map[string][]answer{
			searchRoute:                            {{200, searchJSON(false, "", pi)}},
			"POST /v1/payment_intents/pi_E/cancel": {tc.answer},
		})
		_, err := f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "k", PaymentID: payID, Currency: "USD"})
		ge := wantError(t, err, tc.kind)
		if ge.Code != tc.code {
			t.Errorf("code %q, want %q", ge.Code, tc.code)
		}
		if calls := f.calls(); len(calls) != 2 {
			t.Errorf("calls %v: an error other than unexpected_state is not followed by a retrieve", calls)
		}
	}
}

func TestVoidCancelsEveryLiveIntent(t *testing.T) {
	a := intent{id: "pi_A", status: "requires_payment_method", currency: "usd", amount: 100, created: 1, paymentID: payID}
	b := intent{id: "pi_B", status: "processing", currency: "usd", amount: 100, created: 2, paymentID: payID}
	c := intent{id: "pi_C", status: "succeeded", currency: "usd", amount: 100, received: 100, created: 0, paymentID: payID}
	f := newRouted(t, voidRoutes(a, b, c))
	found, err := f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: "wf/void/1", PaymentID: payID, Currency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	if found.Result.Reference != "pi_C" || found.Result.Status != gateway.StatusSucceeded {
		t.Fatalf("found %+v, want the one that succeeded", found)
	}
	keys := map[string]string{}
	for _, r := range f.got() {
		if r.method == http.MethodPost {
			keys[r.path] = r.header.Get("Idempotency-Key")
		}
	}
	want := map[string]string{
		"/v1/payment_intents/pi_A/cancel": "wf/void/1/pi_A",
		"/v1/payment_intents/pi_B/cancel": "wf/void/1/pi_B",
	}
	if len(keys) != len(want) || keys["/v1/payment_intents/pi_A/cancel"] != want["/v1/payment_intents/pi_A/cancel"] ||
		keys["/v1/payment_intents/pi_B/cancel"] != want["/v1/payment_intents/pi_B/cancel"] {
		t.Fatalf("cancels %v, want %v", keys, want)
	}
}

func TestVoidRefusedBeforeSending(t *testing.T) {
	f := newRouted(t, map[string][]answer{})
	g := f.gateway(nil)
	for _, r := range []gateway.VoidRequest{
		{PaymentID: payID},
		{IdempotencyKey: " ", PaymentID: payID},
		{IdempotencyKey: strings.Repeat("k", 256), PaymentID: payID},
		{IdempotencyKey: "k", PaymentID: payID, Reference: "pi_1/../../v1/charges"},
	} {
		_, err := g.Void(t.Context(), r)
		wantError(t, err, gateway.Invalid)
	}
	_, err := g.Find(t.Context(), gateway.FindRequest{PaymentID: payID, Reference: "pi_1?x=1"})
	wantError(t, err, gateway.Invalid)
	if calls := f.calls(); len(calls) != 0 {
		t.Fatalf("sent %v", calls)
	}
}

func TestVoidDerivedKeyTooLong(t *testing.T) {
	pi := intent{id: "pi_Long", status: "requires_action", currency: "usd", amount: 100, created: 1, paymentID: payID}
	f := newRouted(t, voidRoutes(pi))
	_, err := f.gateway(nil).Void(t.Context(), gateway.VoidRequest{IdempotencyKey: strings.Repeat("k", 250), PaymentID: payID, Currency: "USD"})
	ge := wantError(t, err, gateway.Invalid)
	if ge.Code != "idempotency_key_too_long" {
		t.Fatalf("code %q", ge.Code)
	}
	if calls := f.calls(); !slices.Equal(calls, []string{searchRoute}) {
		t.Fatalf("calls %v", calls)
	}
}
