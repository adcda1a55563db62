package stripe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
)

const testKey = "sk_test_gateway"

// request is one request the fake Stripe received.
type request struct {
	method, path string
	form         url.Values
	header       http.Header
}

// fakeStripe answers every request with status, headers and body, and
// records what it received.
type fakeStripe struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []request
	status   int
	header   http.Header
	body     string
}

func newFake(t *testing.T, status int, body string) *fakeStripe {
	t.Helper()
	f := &fakeStripe{status: status, body: body, header: http.Header{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		if r.Method == http.MethodGet {
			form = r.URL.Query()
		}
		f.mu.Lock()
		f.requests = append(f.requests, request{method: r.Method, path: r.URL.Path, form: form, header: r.Header.Clone()})
		status, body := f.status, f.body
		for k, vs := range f.header {
			w.Header()[k] = vs
		}
		f.mu.Unlock()
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set("Request-Id", "req_test123")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeStripe) gateway() *Gateway {
	return New(Options{SecretKey: testKey, APIBase: f.srv.URL, HTTPClient: f.srv.Client()})
}

func (f *fakeStripe) got() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

func (f *fakeStripe) only(t *testing.T) request {
	t.Helper()
	got := f.got()
	if len(got) != 1 {
		t.Fatalf("fake Stripe got %d requests, want exactly 1 (stripe-go must not retry)", len(got))
	}
	return got[0]
}

const piSucceeded = `{
  "id": "pi_3Abc", "object": "payment_intent", "amount": 1234, "amount_capturable": 0, "amount_received": 1234,
  "currency": "usd", "status": "succeeded", "capture_method": "automatic",
  "metadata": {"payment_id": "pay_1"},
  "payment_method": {"id": "pm_1", "object": "payment_method", "type": "card",
    "card": {"brand": "visa", "last4": "4242", "exp_month": 8, "exp_year": 2031}}
}`

const piRequiresCapture = `{
  "id": "pi_3Cap", "object": "payment_intent", "amount": 1234, "amount_capturable": 1234, "amount_received": 0,
  "currency": "usd", "status": "requires_capture", "capture_method": "manual",
  "payment_method": "pm_1",
  "latest_charge": {"id": "ch_1", "object": "charge", "payment_method_details": {"type": "card",
    "card": {"brand": "mastercard", "last4": "4444", "exp_month": 1, "exp_year": 2030}}}
}`

func createRequest() gateway.CreateRequest {
	return gateway.CreateRequest{
		IdempotencyKey: "payment/pay_1/create",
		PaymentID:      "pay_1",
		Amount:         1234,
		Currency:       "USD",
		PaymentMethod:  "pm_card_visa",
		Description:    "order 42",
		ReturnURL:      "https://shop.test/back",
	}
}

func wantError(t *testing.T, err error, kind gateway.ErrorKind) *gateway.Error {
	t.Helper()
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		t.Fatalf("error = %v (%T), want *gateway.Error", err, err)
	}
	if ge.Kind != kind {
		t.Fatalf("kind = %s (%s), want %s", kindName(ge.Kind), ge.Message, kindName(kind))
	}
	return ge
}

func TestName(t *testing.T) {
	if got := New(Options{SecretKey: testKey}).Name(); got != "stripe" {
		t.Fatalf("Name() = %q", got)
	}
}

func TestCreatePaymentParameters(t *testing.T) {
	for _, manual := range []bool{false, true} {
		f := newFake(t, 200, piSucceeded)
		r := createRequest()
		r.ManualCapture = manual
		res, err := f.gateway().CreatePayment(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		req := f.only(t)
		if req.method != http.MethodPost || req.path != "/v1/payment_intents" {
			t.Fatalf("%s %s", req.method, req.path)
		}
		capture := map[bool]string{false: "automatic", true: "manual"}[manual]
		want := url.Values{
			"amount":                  {"1234"},
			"currency":                {"usd"},
			"payment_method":          {"pm_card_visa"},
			"confirm":                 {"true"},
			"capture_method":          {capture},
			"metadata[payment_id]":    {"pay_1"},
			"description":             {"order 42"},
			"return_url":              {"https://shop.test/back"},
			"payment_method_types[0]": {"card"},
			"expand[0]":               {"payment_method"},
		}
		if req.form.Encode() != want.Encode() {
			t.Errorf("manual=%v: form\n got %s\nwant %s", manual, req.form.Encode(), want.Encode())
		}
		for h, want := range map[string]string{
			"Idempotency-Key": "payment/pay_1/create",
			"Authorization":   "Bearer " + testKey,
			"Stripe-Version":  stripego.APIVersion,
		} {
			if got := req.header.Get(h); got != want {
				t.Errorf("header %s = %q, want %q", h, got, want)
			}
		}
		if res.Reference != "pi_3Abc" || res.Status != gateway.StatusSucceeded || res.AmountReceived != 1234 {
			t.Errorf("result %+v", res)
		}
		if want := (gateway.MethodDetails{Type: "card", Brand: "visa", Last4: "4242", ExpMonth: 8, ExpYear: 2031}); res.Method != want {
			t.Errorf("method %+v, want %+v", res.Method, want)
		}
	}
}

func TestCreatePaymentOptionalParameters(t *testing.T) {
	f := newFake(t, 200, piSucceeded)
	r := createRequest()
	r.Description, r.ReturnURL, r.PaymentID = "", "", ""
	if _, err := f.gateway().CreatePayment(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	form := f.only(t).form
	for _, absent := range []string{"description", "return_url", "metadata[payment_id]"} {
		if form.Has(absent) {
			t.Errorf("%s sent although empty: %q", absent, form.Get(absent))
		}
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*gateway.CreateRequest)
		code   string
	}{
		{"no idempotency key", func(r *gateway.CreateRequest) { r.IdempotencyKey = "" }, "idempotency_key_missing"},
		{"blank idempotency key", func(r *gateway.CreateRequest) { r.IdempotencyKey = "  " }, "idempotency_key_missing"},
		{"long idempotency key", func(r *gateway.CreateRequest) { r.IdempotencyKey = strings.Repeat("k", 256) }, "idempotency_key_too_long"},
		{"mobile money", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:mpesa:254712345678" }, "payment_method_unsupported"},
		{"card number", func(r *gateway.CreateRequest) { r.PaymentMethod = "4242424242424242" }, "resource_missing"},
		{"card number with spaces", func(r *gateway.CreateRequest) { r.PaymentMethod = "4242 4242 4242 4242" }, "resource_missing"},
	}
	f := newFake(t, 200, piSucceeded)
	g := f.gateway()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := createRequest()
			tc.mutate(&r)
			_, err := g.CreatePayment(t.Context(), r)
			ge := wantError(t, err, gateway.Invalid)
			if ge.Code != tc.code {
				t.Errorf("code %q, want %q", ge.Code, tc.code)
			}
			if strings.Contains(ge.Message, "4242") {
				t.Errorf("message repeats card data: %q", ge.Message)
			}
		})
	}
	for _, ref := range []string{"", "pi_1/../../v1/charges", "pi_1?x=1", "../x"} {
		_, err := g.Capture(t.Context(), gateway.CaptureRequest{IdempotencyKey: "k", Reference: ref})
		wantError(t, err, gateway.Invalid)
		_, err = g.Cancel(t.Context(), gateway.CancelRequest{IdempotencyKey: "k", Reference: ref})
		wantError(t, err, gateway.Invalid)
		_, err = g.Retrieve(t.Context(), ref)
		wantError(t, err, gateway.Invalid)
	}
	_, err := g.Capture(t.Context(), gateway.CaptureRequest{Reference: "pi_1"})
	wantError(t, err, gateway.Invalid)
	_, err = g.Cancel(t.Context(), gateway.CancelRequest{Reference: "pi_1"})
	wantError(t, err, gateway.Invalid)
	if n := len(f.got()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

// Stripe's answer to a decline during confirm: HTTP 402, a card_error that
// carries the PaymentIntent.
const declineBody = `{"error": {
  "charge": "ch_3Dec", "code": "card_declined", "decline_code": "insufficient_funds",
  "doc_url": "https://stripe.com/docs/error-codes/card-declined",
  "message": "Your card has insufficient funds.",
  "payment_intent": {"id": "pi_3Dec", "object": "payment_intent", "amount": 1234, "amount_capturable": 0,
    "amount_received": 0, "currency": "usd", "status": "requires_payment_method",
    "last_payment_error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
      "message": "Your card has insufficient funds."},
    "payment_method": null},
  "payment_method": {"id": "pm_9", "object": "payment_method", "type": "card",
    "card": {"brand": "visa", "last4": "9995", "exp_month": 12, "exp_year": 2034}},
  "request_log_url": "https://dashboard.stripe.com/test/logs/req_x",
  "type": "card_error"
}}`

func TestCreatePaymentDecline(t *testing.T) {
	f := newFake(t, http.StatusPaymentRequired, declineBody)
	res, err := f.gateway().CreatePayment(t.Context(), createRequest())
	if err != nil {
		t.Fatalf("a decline is not an error: %v", err)
	}
	want := gateway.Result{
		Reference: "pi_3Dec", Status: gateway.StatusFailed, Amount: 1234,
		Method:      gateway.MethodDetails{Type: "card", Brand: "visa", Last4: "9995", ExpMonth: 12, ExpYear: 2034},
		FailureCode: "insufficient_funds", FailureMessage: "Your card has insufficient funds.",
	}
	if res != want {
		t.Fatalf("result\n got %+v\nwant %+v", res, want)
	}
	f.only(t)
}

func TestCreatePaymentDeclineWithoutIntent(t *testing.T) {
	f := newFake(t, http.StatusPaymentRequired,
		`{"error": {"type": "card_error", "code": "expired_card", "message": "Your card has expired."}}`)
	res, err := f.gateway().CreatePayment(t.Context(), createRequest())
	if err != nil {
		t.Fatal(err)
	}
	want := gateway.Result{Status: gateway.StatusFailed, Amount: 1234, FailureCode: "expired_card", FailureMessage: "Your card has expired."}
	if res != want {
		t.Fatalf("result\n got %+v\nwant %+v", res, want)
	}
}

// TestHTTPErrors runs Stripe-like error answers through the real stripe-go
// client and checks their classification, and that stripe-go did not retry.
func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		kind       gateway.ErrorKind
		code       string
		retryAfter time.Duration
		inMessage  string
	}{
		{name: "429 with Retry-After", status: 429, header: http.Header{"Retry-After": {"7"}},
			body: `{"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests hit the API too quickly."}}`,
			kind: gateway.RateLimited, code: "rate_limit", retryAfter: 7 * time.Second, inMessage: "Too many requests"},
		{name: "429 without Retry-After", status: 429,
			body: `{"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests hit the API too quickly."}}`,
			kind: gateway.RateLimited, code: "rate_limit", retryAfter: time.Second},
		{name: "429 lock timeout", status: 429,
			body: `{"error": {"type": "invalid_request_error", "code": "lock_timeout", "message": "This object cannot be accessed right now because another API request or Stripe process is currently accessing it."}}`,
			kind: gateway.Transient, code: "lock_timeout"},
		{name: "500 api_error", status: 500,
			body: `{"error": {"type": "api_error", "message": "An unknown error occurred"}}`,
			kind: gateway.Transient, inMessage: "req_test123"},
		{name: "503 html from a proxy", status: 503, header: http.Header{"Content-Type": {"text/html"}},
			body: "<html><body>\n  Service Unavailable\n</body></html>", kind: gateway.Transient,
			inMessage: "non-JSON body: <html><body> Service Unavailable </body></html>"},
		{name: "401 plain text from a proxy", status: 401, header: http.Header{"Content-Type": {"text/plain"}},
			body: "Unauthorized", kind: gateway.Invalid, inMessage: "STRIPE_SECRET_KEY"},
		{name: "429 plain text from a proxy", status: 429, header: http.Header{"Content-Type": {"text/plain"}, "Retry-After": {"4"}},
			body: "slow down", kind: gateway.RateLimited, retryAfter: 4 * time.Second, inMessage: "slow down"},
		{name: "404 without a body", status: 404, header: http.Header{"Content-Type": {"text/plain"}},
			kind: gateway.Invalid, inMessage: "HTTP 404 Not Found"},
		{name: "400 resource_missing", status: 400,
			body: `{"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "payment_method", "message": "No such PaymentMethod: 'pm_nope'"}}`,
			kind: gateway.Invalid, code: "resource_missing", inMessage: "(param payment_method)"},
		{name: "404", status: 404,
			body: `{"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such payment_intent: 'pi_x'"}}`,
			kind: gateway.Invalid, code: "resource_missing"},
		{name: "400 idempotency_error", status: 400,
			body: `{"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters they were first used with."}}`,
			kind: gateway.Invalid},
		{name: "409 idempotency key in use", status: 409,
			body: `{"error": {"type": "idempotency_error", "code": "idempotency_key_in_use", "message": "There is currently another in-progress request using this Idempotent Key."}}`,
			kind: gateway.Transient, code: "idempotency_key_in_use"},
		{name: "409 should retry", status: 409, header: http.Header{"Stripe-Should-Retry": {"true"}},
			body: `{"error": {"type": "invalid_request_error", "message": "conflict"}}`, kind: gateway.Transient},
		{name: "401", status: 401,
			body: `{"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****ewat"}}`,
			kind: gateway.Invalid, inMessage: "STRIPE_SECRET_KEY"},
		{name: "403", status: 403,
			body: `{"error": {"type": "invalid_request_error", "message": "The provided key does not have the required permissions."}}`,
			kind: gateway.Invalid, inMessage: "STRIPE_SECRET_KEY"},
	}
	calls := map[string]func(*Gateway, context.Context) error{
		"create": func(g *Gateway, ctx context.Context) error {
			r := createRequest()
			_, err := g.CreatePayment(ctx, r)
			return err
		},
		"capture": func(g *Gateway, ctx context.Context) error {
			_, err := g.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "k", Reference: "pi_1", Amount: 5, Currency: "USD"})
			return err
		},
		"cancel": func(g *Gateway, ctx context.Context) error {
			_, err := g.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "k", Reference: "pi_1"})
			return err
		},
		"retrieve": func(g *Gateway, ctx context.Context) error {
			_, err := g.Retrieve(ctx, "pi_1")
			return err
		},
	}
	for _, tc := range tests {
		for op, call := range calls {
			t.Run(tc.name+"/"+op, func(t *testing.T) {
				f := newFake(t, tc.status, tc.body)
				for k, vs := range tc.header {
					f.header[k] = vs
				}
				err := call(f.gateway(), t.Context())
				ge := wantError(t, err, tc.kind)
				if ge.Code != tc.code {
					t.Errorf("code %q, want %q", ge.Code, tc.code)
				}
				if ge.StatusCode != tc.status {
					t.Errorf("status %d, want %d", ge.StatusCode, tc.status)
				}
				if ge.RetryAfter != tc.retryAfter {
					t.Errorf("RetryAfter %v, want %v", ge.RetryAfter, tc.retryAfter)
				}
				if !strings.Contains(ge.Message, tc.inMessage) {
					t.Errorf("message %q lacks %q", ge.Message, tc.inMessage)
				}
				if ge.Unwrap() == nil {
					t.Error("cause dropped")
				}
				f.only(t)
			})
		}
	}
}

// A card error outside a confirm is not a decline of a new payment.
func TestCardErrorOnCaptureIsInvalid(t *testing.T) {
	f := newFake(t, http.StatusPaymentRequired, declineBody)
	_, err := f.gateway().Capture(t.Context(), gateway.CaptureRequest{IdempotencyKey: "k", Reference: "pi_3Dec", Amount: 1, Currency: "USD"})
	ge := wantError(t, err, gateway.Invalid)
	if ge.Code != "card_declined" || ge.StatusCode != 402 {
		t.Fatalf("%+v", ge)
	}
}

func TestNetworkErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		base := srv.URL
		srv.Close()
		g := New(Options{SecretKey: testKey, APIBase: base})
		_, err := g.CreatePayment(t.Context(), createRequest())
		wantError(t, err, gateway.Transient)
	})
	t.Run("deadline", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select { // hold the request until the client gives up
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		g := New(Options{SecretKey: testKey, APIBase: srv.URL})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := g.Retrieve(ctx, "pi_1")
		ge := wantError(t, err, gateway.Transient)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(ge.Message, "timed out") {
			t.Fatalf("%v", err)
		}
	})
}

func TestClassify(t *testing.T) {
	withHeader := func(se *stripego.Error, h http.Header) *stripego.Error {
		se.SetLastResponse(&stripego.APIResponse{Header: h, StatusCode: se.HTTPStatusCode})
		return se
	}
	date := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		err        error
		kind       gateway.ErrorKind
		retryAfter time.Duration // 0: not checked beyond == 0 for non rate-limited
		minRetry   time.Duration
	}{
		{name: "card error", err: &stripego.Error{Type: stripego.ErrorTypeCard, HTTPStatusCode: 402, Code: "card_declined"}, kind: gateway.Invalid},
		{name: "invalid request 400", err: &stripego.Error{Type: stripego.ErrorTypeInvalidRequest, HTTPStatusCode: 400}, kind: gateway.Invalid},
		{name: "invalid request 404", err: &stripego.Error{Type: stripego.ErrorTypeInvalidRequest, HTTPStatusCode: 404, Code: "resource_missing"}, kind: gateway.Invalid},
		{name: "idempotency", err: &stripego.Error{Type: stripego.ErrorTypeIdempotency, HTTPStatusCode: 400}, kind: gateway.Invalid},
		{name: "idempotency in use", err: &stripego.Error{Type: stripego.ErrorTypeIdempotency, HTTPStatusCode: 409, Code: "idempotency_key_in_use"}, kind: gateway.Transient},
		{name: "unauthorized", err: &stripego.Error{Type: stripego.ErrorTypeInvalidRequest, HTTPStatusCode: 401}, kind: gateway.Invalid},
		{name: "forbidden", err: &stripego.Error{HTTPStatusCode: 403}, kind: gateway.Invalid},
		{name: "rate limit", err: &stripego.Error{Type: stripego.ErrorTypeInvalidRequest, HTTPStatusCode: 429, Code: "rate_limit"},
			kind: gateway.RateLimited, retryAfter: time.Second},
		{name: "rate limit code only", err: &stripego.Error{Code: "rate_limit"}, kind: gateway.RateLimited, retryAfter: time.Second},
		{name: "rate limit seconds", err: withHeader(&stripego.Error{HTTPStatusCode: 429}, http.Header{"Retry-After": {"3"}}),
			kind: gateway.RateLimited, retryAfter: 3 * time.Second},
		{name: "rate limit huge", err: withHeader(&stripego.Error{HTTPStatusCode: 429}, http.Header{"Retry-After": {"86400"}}),
			kind: gateway.RateLimited, retryAfter: 5 * time.Minute},
		{name: "rate limit garbage", err: withHeader(&stripego.Error{HTTPStatusCode: 429}, http.Header{"Retry-After": {"soon"}}),
			kind: gateway.RateLimited, retryAfter: time.Second},
		{name: "rate limit negative", err: withHeader(&stripego.Error{HTTPStatusCode: 429}, http.Header{"Retry-After": {"-4"}}),
			kind: gateway.RateLimited, retryAfter: time.Second},
		{name: "rate limit date", err: withHeader(&stripego.Error{HTTPStatusCode: 429}, http.Header{"Retry-After": {date}}),
			kind: gateway.RateLimited, minRetry: 20 * time.Second},
		{name: "lock timeout", err: &stripego.Error{Type: stripego.ErrorTypeInvalidRequest, HTTPStatusCode: 429, Code: "lock_timeout"}, kind: gateway.Transient},
		{name: "api error", err: &stripego.Error{Type: stripego.ErrorTypeAPI, HTTPStatusCode: 500}, kind: gateway.Transient},
		{name: "api error no status", err: &stripego.Error{Type: stripego.ErrorTypeAPI}, kind: gateway.Transient},
		{name: "502", err: &stripego.Error{HTTPStatusCode: 502}, kind: gateway.Transient},
		{name: "should retry", err: withHeader(&stripego.Error{Type: stripego.ErrorTypeInvalidRequest, HTTPStatusCode: 400},
			http.Header{"Stripe-Should-Retry": {"true"}}), kind: gateway.Transient},
		{name: "wrapped", err: errors.Join(errors.New("ctx"), &stripego.Error{HTTPStatusCode: 400, Type: stripego.ErrorTypeInvalidRequest}), kind: gateway.Invalid},
		{name: "plain error", err: errors.New("stripe: could not decode"), kind: gateway.Transient},
		{name: "deadline", err: &url.Error{Op: "Post", URL: "https://api.stripe.com", Err: context.DeadlineExceeded}, kind: gateway.Transient},
		{name: "canceled", err: context.Canceled, kind: gateway.Transient},
		{name: "already classified", err: &gateway.Error{Kind: gateway.Invalid, Code: "x"}, kind: gateway.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ge := classify(tc.err)
			if ge.Kind != tc.kind {
				t.Fatalf("kind %s, want %s (%s)", kindName(ge.Kind), kindName(tc.kind), ge.Message)
			}
			if gateway.KindOf(ge) != tc.kind {
				t.Fatalf("KindOf disagrees")
			}
			switch {
			case tc.minRetry > 0:
				if ge.RetryAfter < tc.minRetry || ge.RetryAfter > 5*time.Minute {
					t.Errorf("RetryAfter %v, want >= %v", ge.RetryAfter, tc.minRetry)
				}
			case ge.RetryAfter != tc.retryAfter:
				t.Errorf("RetryAfter %v, want %v", ge.RetryAfter, tc.retryAfter)
			}
			if !errors.Is(ge, tc.err) && ge != tc.err {
				t.Errorf("cause not kept")
			}
		})
	}
}

func TestDeclined(t *testing.T) {
	amount := int64(700)
	tests := []struct {
		name string
		err  error
		ok   bool
		want gateway.Result
	}{
		{name: "not a card error", err: &stripego.Error{Type: stripego.ErrorTypeInvalidRequest}},
		{name: "network", err: errors.New("boom")},
		{name: "decline code wins", err: &stripego.Error{Type: stripego.ErrorTypeCard, Code: "card_declined", DeclineCode: "do_not_honor", Msg: "Your card was declined."},
			ok: true, want: gateway.Result{Status: gateway.StatusFailed, Amount: 700, FailureCode: "do_not_honor", FailureMessage: "Your card was declined."}},
		{name: "code without decline code", err: &stripego.Error{Type: stripego.ErrorTypeCard, Code: "incorrect_cvc", Msg: "Your card's security code is incorrect."},
			ok: true, want: gateway.Result{Status: gateway.StatusFailed, Amount: 700, FailureCode: "incorrect_cvc", FailureMessage: "Your card's security code is incorrect."}},
		{name: "bare", err: &stripego.Error{Type: stripego.ErrorTypeCard},
			ok: true, want: gateway.Result{Status: gateway.StatusFailed, Amount: 700, FailureCode: "card_declined", FailureMessage: "Your card was declined."}},
		{name: "with intent", err: &stripego.Error{Type: stripego.ErrorTypeCard, Code: "card_declined", DeclineCode: "generic_decline", Msg: "Your card was declined.",
			PaymentIntent: &stripego.PaymentIntent{ID: "pi_9", Amount: 650, Status: stripego.PaymentIntentStatusRequiresPaymentMethod,
				PaymentMethod: &stripego.PaymentMethod{Type: "card", Card: &stripego.PaymentMethodCard{Brand: "visa", Last4: "0002", ExpMonth: 3, ExpYear: 2030}}}},
			ok: true, want: gateway.Result{Reference: "pi_9", Status: gateway.StatusFailed, Amount: 650,
				Method:      gateway.MethodDetails{Type: "card", Brand: "visa", Last4: "0002", ExpMonth: 3, ExpYear: 2030},
				FailureCode: "generic_decline", FailureMessage: "Your card was declined."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := declined(tc.err, amount, "USD")
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || got != tc.want {
				t.Fatalf("declined = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestResultOf(t *testing.T) {
	visa := &stripego.PaymentMethod{ID: "pm_1", Type: "card", Card: &stripego.PaymentMethodCard{Brand: "visa", Last4: "4242", ExpMonth: 8, ExpYear: 2031}}
	visaDetails := gateway.MethodDetails{Type: "card", Brand: "visa", Last4: "4242", ExpMonth: 8, ExpYear: 2031}
	tests := []struct {
		name string
		pi   stripego.PaymentIntent
		want gateway.Result
	}{
		{name: "succeeded", pi: stripego.PaymentIntent{ID: "pi_1", Status: "succeeded", Amount: 100, AmountReceived: 100, PaymentMethod: visa},
			want: gateway.Result{Reference: "pi_1", Status: gateway.StatusSucceeded, Amount: 100, AmountReceived: 100, Method: visaDetails}},
		{name: "requires capture", pi: stripego.PaymentIntent{ID: "pi_2", Status: "requires_capture", Amount: 100, AmountCapturable: 100},
			want: gateway.Result{Reference: "pi_2", Status: gateway.StatusRequiresCapture, Amount: 100, AmountCapturable: 100}},
		{name: "requires action", pi: stripego.PaymentIntent{ID: "pi_3", Status: "requires_action", Amount: 100, PaymentMethod: visa,
			NextAction: &stripego.PaymentIntentNextAction{Type: "redirect_to_url",
				RedirectToURL: &stripego.PaymentIntentNextActionRedirectToURL{URL: "https://hooks.stripe.com/3d_secure_2/x", ReturnURL: "https://shop.test"}}},
			want: gateway.Result{Reference: "pi_3", Status: gateway.StatusRequiresAction, Amount: 100, Method: visaDetails,
				RedirectURL: "https://hooks.stripe.com/3d_secure_2/x"}},
		{name: "requires action by sdk", pi: stripego.PaymentIntent{ID: "pi_3", Status: "requires_action", Amount: 100,
			NextAction: &stripego.PaymentIntentNextAction{Type: "use_stripe_sdk"}},
			want: gateway.Result{Reference: "pi_3", Status: gateway.StatusRequiresAction, Amount: 100}},
		{name: "failed", pi: stripego.PaymentIntent{ID: "pi_4", Status: "requires_payment_method", Amount: 100,
			LastPaymentError: &stripego.Error{Type: "card_error", Code: "card_declined", DeclineCode: "insufficient_funds", Msg: "Your card has insufficient funds."}},
			want: gateway.Result{Reference: "pi_4", Status: gateway.StatusFailed, Amount: 100,
				FailureCode: "insufficient_funds", FailureMessage: "Your card has insufficient funds."}},
		{name: "failed with code only", pi: stripego.PaymentIntent{ID: "pi_4", Status: "requires_payment_method", Amount: 100,
			LastPaymentError: &stripego.Error{Code: "authentication_required", Msg: "auth"}},
			want: gateway.Result{Reference: "pi_4", Status: gateway.StatusFailed, Amount: 100, FailureCode: "authentication_required", FailureMessage: "auth"}},
		{name: "failed without error", pi: stripego.PaymentIntent{ID: "pi_5", Status: "requires_payment_method", Amount: 100},
			want: gateway.Result{Reference: "pi_5", Status: gateway.StatusFailed, Amount: 100, FailureCode: "payment_failed", FailureMessage: "The payment failed."}},
		{name: "canceled", pi: stripego.PaymentIntent{ID: "pi_6", Status: "canceled", Amount: 100},
			want: gateway.Result{Reference: "pi_6", Status: gateway.StatusCanceled, Amount: 100}},
		{name: "processing", pi: stripego.PaymentIntent{ID: "pi_7", Status: "processing", Amount: 100},
			want: gateway.Result{Reference: "pi_7", Status: gateway.StatusProcessing, Amount: 100}},
		{name: "requires confirmation", pi: stripego.PaymentIntent{ID: "pi_8", Status: "requires_confirmation", Amount: 100},
			want: gateway.Result{Reference: "pi_8", Status: gateway.StatusProcessing, Amount: 100}},
		{name: "details from the charge", pi: stripego.PaymentIntent{ID: "pi_9", Status: "succeeded", Amount: 100, AmountReceived: 100,
			PaymentMethod: &stripego.PaymentMethod{ID: "pm_1"},
			LatestCharge: &stripego.Charge{ID: "ch_1", PaymentMethodDetails: &stripego.ChargePaymentMethodDetails{
				Card: &stripego.ChargePaymentMethodDetailsCard{Brand: "amex", Last4: "8431", ExpMonth: 2, ExpYear: 2029}}}},
			want: gateway.Result{Reference: "pi_9", Status: gateway.StatusSucceeded, Amount: 100, AmountReceived: 100,
				Method: gateway.MethodDetails{Type: "card", Brand: "amex", Last4: "8431", ExpMonth: 2, ExpYear: 2029}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resultOf(&tc.pi, "USD")
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCapture(t *testing.T) {
	for _, tc := range []struct {
		amount int64
		want   url.Values
	}{
		{amount: 500, want: url.Values{"amount_to_capture": {"500"}, "expand[0]": {"payment_method"}}},
		{amount: 0, want: url.Values{"expand[0]": {"payment_method"}}}, // everything authorized
	} {
		f := newFake(t, 200, piRequiresCapture)
		res, err := f.gateway().Capture(t.Context(), gateway.CaptureRequest{IdempotencyKey: "payment/pay_1/capture", Reference: "pi_3Cap", Amount: tc.amount, Currency: "USD"})
		if err != nil {
			t.Fatal(err)
		}
		req := f.only(t)
		if req.method != http.MethodPost || req.path != "/v1/payment_intents/pi_3Cap/capture" {
			t.Fatalf("%s %s", req.method, req.path)
		}
		if req.form.Encode() != tc.want.Encode() {
			t.Errorf("form %s, want %s", req.form.Encode(), tc.want.Encode())
		}
		if req.header.Get("Idempotency-Key") != "payment/pay_1/capture" {
			t.Errorf("Idempotency-Key %q", req.header.Get("Idempotency-Key"))
		}
		// The fake's canned answer: mapped, details from the expanded charge.
		want := gateway.Result{Reference: "pi_3Cap", Status: gateway.StatusRequiresCapture, Amount: 1234, AmountCapturable: 1234,
			Method: gateway.MethodDetails{Type: "card", Brand: "mastercard", Last4: "4444", ExpMonth: 1, ExpYear: 2030}}
		if res != want {
			t.Errorf("result %+v, want %+v", res, want)
		}
	}
}

func TestCancelReasons(t *testing.T) {
	for reason, want := range map[string]string{
		"requested_by_customer": "requested_by_customer",
		"Abandoned":             "abandoned",
		" duplicate ":           "duplicate",
		"fraudulent":            "fraudulent",
		"":                      "",
		"authorization expired": "",
		"automatic":             "", // Stripe's own reason, not one a caller may send
	} {
		f := newFake(t, 200, `{"id": "pi_c", "object": "payment_intent", "amount": 10, "currency": "usd", "status": "canceled"}`)
		res, err := f.gateway().Cancel(t.Context(), gateway.CancelRequest{IdempotencyKey: "payment/pay_1/cancel", Reference: "pi_c", Reason: reason})
		if err != nil {
			t.Fatal(err)
		}
		req := f.only(t)
		if req.path != "/v1/payment_intents/pi_c/cancel" || req.header.Get("Idempotency-Key") != "payment/pay_1/cancel" {
			t.Fatalf("%s %s %v", req.method, req.path, req.header)
		}
		if got := req.form.Get("cancellation_reason"); got != want || (want == "" && req.form.Has("cancellation_reason")) {
			t.Errorf("reason %q: sent %q, want %q", reason, got, want)
		}
		if res.Status != gateway.StatusCanceled || res.Reference != "pi_c" {
			t.Errorf("result %+v", res)
		}
	}
}

func TestRetrieve(t *testing.T) {
	f := newFake(t, 200, piSucceeded)
	res, err := f.gateway().Retrieve(t.Context(), "pi_3Abc")
	if err != nil {
		t.Fatal(err)
	}
	req := f.only(t)
	if req.method != http.MethodGet || req.path != "/v1/payment_intents/pi_3Abc" || req.form.Get("expand[0]") != "payment_method" {
		t.Fatalf("%s %s %v", req.method, req.path, req.form)
	}
	if req.header.Get("Idempotency-Key") != "" {
		t.Errorf("GET with an Idempotency-Key")
	}
	if res.Status != gateway.StatusSucceeded || res.Method.Last4 != "4242" {
		t.Fatalf("%+v", res)
	}
}

func TestCallerHTTPClientUntouched(t *testing.T) {
	f := newFake(t, 200, piSucceeded)
	client := f.srv.Client()
	transport := client.Transport
	g := New(Options{SecretKey: testKey, APIBase: f.srv.URL, HTTPClient: client})
	if _, err := g.Retrieve(t.Context(), "pi_3Abc"); err != nil {
		t.Fatal(err)
	}
	if client.Transport != transport {
		t.Fatal("New replaced the caller's transport")
	}
}
