package sandbox

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
)

const testSecret = "whsec_sandbox_test_secret"

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func newSandbox(t *testing.T) *Sandbox {
	t.Helper()
	return New(Options{
		PublicURL:     "http://payments.test:8080/",
		WebhookSecret: testSecret,
		Now:           func() time.Time { return fixedNow },
	})
}

func createReq(key, method string, manual bool) gateway.CreateRequest {
	return gateway.CreateRequest{
		IdempotencyKey: key,
		PaymentID:      "pay_01testpayment",
		Amount:         1234,
		Currency:       "USD",
		PaymentMethod:  method,
		ManualCapture:  manual,
		Description:    "order 42",
	}
}

// wantGatewayError checks err is a *gateway.Error of kind, code and HTTP
// status, and returns it.
func wantGatewayError(t *testing.T, err error, kind gateway.ErrorKind, code string, status int) *gateway.Error {
	t.Helper()
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		t.Fatalf("error = %v (%T), want *gateway.Error", err, err)
	}
	if ge.Kind != kind || ge.Code != code || ge.StatusCode != status {
		t.Fatalf("error = kind %d code %q status %d (%s), want kind %d code %q status %d",
			ge.Kind, ge.Code, ge.StatusCode, ge.Message, kind, code, status)
	}
	if gateway.KindOf(err) != kind {
		t.Fatalf("KindOf = %d, want %d", gateway.KindOf(err), kind)
	}
	return ge
}

func TestName(t *testing.T) {
	if got := newSandbox(t).Name(); got != "sandbox" {
		t.Fatalf("Name() = %q", got)
	}
}

func TestTestPaymentMethods(t *testing.T) {
	card := func(brand, last4 string) gateway.MethodDetails {
		return gateway.MethodDetails{Type: "card", Brand: brand, Last4: last4, ExpMonth: 12, ExpYear: 2034}
	}
	tests := []struct {
		method      string
		manual      bool
		status      gateway.Status
		capturable  int64
		received    int64
		failureCode string
		failureMsg  string
		details     gateway.MethodDetails
	}{
		{method: "pm_card_visa", status: gateway.StatusSucceeded, received: 1234, details: card("visa", "4242")},
		{method: "pm_card_visa", manual: true, status: gateway.StatusRequiresCapture, capturable: 1234, details: card("visa", "4242")},
		{method: "pm_card_mastercard", status: gateway.StatusSucceeded, received: 1234, details: card("mastercard", "4444")},
		{method: "pm_card_mastercard", manual: true, status: gateway.StatusRequiresCapture, capturable: 1234, details: card("mastercard", "4444")},
		{method: "pm_card_amex", status: gateway.StatusSucceeded, received: 1234, details: card("amex", "8431")},
		{method: "pm_card_amex", manual: true, status: gateway.StatusRequiresCapture, capturable: 1234, details: card("amex", "8431")},
		{method: "pm_card_chargeDeclined", status: gateway.StatusFailed, failureCode: "card_declined",
			failureMsg: "Your card was declined.", details: card("visa", "0002")},
		{method: "pm_card_chargeDeclined", manual: true, status: gateway.StatusFailed, failureCode: "card_declined",
			failureMsg: "Your card was declined.", details: card("visa", "0002")},
		{method: "pm_card_chargeDeclinedInsufficientFunds", status: gateway.StatusFailed, failureCode: "insufficient_funds",
			failureMsg: "Your card has insufficient funds.", details: card("visa", "9995")},
		{method: "pm_card_chargeDeclinedExpiredCard", status: gateway.StatusFailed, failureCode: "expired_card",
			failureMsg: "Your card has expired.", details: card("visa", "0069")},
		{method: "pm_card_chargeDeclinedIncorrectCvc", status: gateway.StatusFailed, failureCode: "incorrect_cvc",
			failureMsg: "Your card's security code is incorrect.", details: card("visa", "0127")},
		{method: "pm_card_authenticationRequired", status: gateway.StatusRequiresAction, details: card("visa", "3184")},
		{method: "pm_card_threeDSecure2Required", manual: true, status: gateway.StatusRequiresAction, details: card("visa", "3220")},
		{method: "mm:mpesa:254712345678", status: gateway.StatusSucceeded, received: 1234,
			details: gateway.MethodDetails{Type: "mobile_money", Provider: "mpesa", Last4: "5678"}},
		{method: "mm:mtn:23350123456", status: gateway.StatusSucceeded, received: 1234,
			details: gateway.MethodDetails{Type: "mobile_money", Provider: "mtn", Last4: "3456"}},
		{method: "mm:airtel:25670012345", status: gateway.StatusSucceeded, received: 1234,
			details: gateway.MethodDetails{Type: "mobile_money", Provider: "airtel", Last4: "2345"}},
		{method: "mm:orange:22507123456", status: gateway.StatusSucceeded, received: 1234,
			details: gateway.MethodDetails{Type: "mobile_money", Provider: "orange", Last4: "3456"}},
		{method: "mm:mpesa:254700000000", status: gateway.StatusFailed, failureCode: "insufficient_funds",
			failureMsg: "The mobile money account has insufficient funds.",
			details:    gateway.MethodDetails{Type: "mobile_money", Provider: "mpesa", Last4: "0000"}},
	}
	sb := newSandbox(t)
	for _, tc := range tests {
		name := tc.method
		if tc.manual {
			name += "/manual"
		}
		t.Run(name, func(t *testing.T) {
			key := "payment/pay_x/create/" + name
			res, err := sb.CreatePayment(t.Context(), createReq(key, tc.method, tc.manual))
			if err != nil {
				t.Fatalf("CreatePayment: %v", err)
			}
			if res.Reference != Reference(key) {
				t.Errorf("Reference = %q, want %q", res.Reference, Reference(key))
			}
			if res.Status != tc.status {
				t.Errorf("Status = %q, want %q", res.Status, tc.status)
			}
			if res.Amount != 1234 || res.AmountCapturable != tc.capturable || res.AmountReceived != tc.received {
				t.Errorf("amounts = %d/%d/%d, want 1234/%d/%d", res.Amount, res.AmountCapturable, res.AmountReceived,
					tc.capturable, tc.received)
			}
			if res.FailureCode != tc.failureCode || res.FailureMessage != tc.failureMsg {
				t.Errorf("failure = %q %q, want %q %q", res.FailureCode, res.FailureMessage, tc.failureCode, tc.failureMsg)
			}
			if res.Method != tc.details {
				t.Errorf("Method = %+v, want %+v", res.Method, tc.details)
			}
			if (tc.status == gateway.StatusRequiresAction) != (res.RedirectURL != "") {
				t.Errorf("RedirectURL = %q with status %q", res.RedirectURL, res.Status)
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	sb := newSandbox(t)
	for _, method := range []string{"pm_card_visa", "pm_card_chargeDeclined", "pm_card_authenticationRequired", "mm:mtn:233501234567"} {
		t.Run(method, func(t *testing.T) {
			first, err := sb.CreatePayment(t.Context(), createReq("k1/"+method, method, false))
			if err != nil {
				t.Fatal(err)
			}
			// A second process must agree: use a fresh sandbox too.
			for _, other := range []*Sandbox{sb, newSandbox(t)} {
				again, err := other.CreatePayment(t.Context(), createReq("k1/"+method, method, false))
				if err != nil {
					t.Fatal(err)
				}
				if again != first {
					t.Fatalf("same key gave\n%+v\nthen\n%+v", first, again)
				}
			}
			different, err := sb.CreatePayment(t.Context(), createReq("k2/"+method, method, false))
			if err != nil {
				t.Fatal(err)
			}
			if different.Reference == first.Reference {
				t.Fatalf("different keys gave the same reference %q", first.Reference)
			}
		})
	}
}

func TestReferenceFormat(t *testing.T) {
	re := regexp.MustCompile(`^pi_sbx_[a-z2-7]{24}$`)
	for _, key := range []string{"a", "payment/pay_1/create", strings.Repeat("x", 255), "ключ"} {
		ref := Reference(key)
		if !re.MatchString(ref) {
			t.Errorf("Reference(%q) = %q, want %s", key, ref, re)
		}
		if !validReference(ref) {
			t.Errorf("validReference(%q) = false", ref)
		}
	}
	for _, bad := range []string{"", "pi_123", "pi_sbx_", "pi_sbx_" + strings.Repeat("A", 24), "pi_sbx_" + strings.Repeat("a", 25), "pi_sbx_" + strings.Repeat("1", 24)} {
		if validReference(bad) {
			t.Errorf("validReference(%q) = true", bad)
		}
	}
}

func TestFlaky(t *testing.T) {
	sb := newSandbox(t)
	req := createReq("flaky/1", MethodFlaky, false)
	for attempt := 1; attempt <= FlakyFailures; attempt++ {
		res, err := sb.CreatePayment(t.Context(), req)
		wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
		if res != (gateway.Result{}) {
			t.Fatalf("attempt %d: result %+v with an error", attempt, res)
		}
	}
	// Another key has its own count.
	if _, err := sb.CreatePayment(t.Context(), createReq("flaky/2", MethodFlaky, false)); err == nil {
		t.Fatal("first attempt of another key succeeded")
	}
	res, err := sb.CreatePayment(t.Context(), req)
	if err != nil {
		t.Fatalf("attempt %d: %v", FlakyFailures+1, err)
	}
	if res.Status != gateway.StatusSucceeded || res.AmountReceived != 1234 || res.Reference != Reference("flaky/1") {
		t.Fatalf("after the failures: %+v", res)
	}
	// And it stays successful, like Stripe replaying a key's answer.
	if again, err := sb.CreatePayment(t.Context(), req); err != nil || again != res {
		t.Fatalf("replay: %+v, %v", again, err)
	}
}

func TestFlakyConcurrent(t *testing.T) {
	sb := newSandbox(t)
	req := createReq("flaky/concurrent", MethodFlaky, true)
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := sb.CreatePayment(t.Context(), req)
			errs <- err
		}()
	}
	failures := 0
	for range n {
		if err := <-errs; err != nil {
			failures++
		}
	}
	if failures != FlakyFailures {
		t.Fatalf("%d of %d concurrent attempts failed, want exactly %d", failures, n, FlakyFailures)
	}
}

func TestRateLimited(t *testing.T) {
	sb := newSandbox(t)
	req := createReq("rl/1", MethodRateLimited, true)
	_, err := sb.CreatePayment(t.Context(), req)
	ge := wantGatewayError(t, err, gateway.RateLimited, "rate_limit", http.StatusTooManyRequests)
	if ge.RetryAfter != 2*time.Second {
		t.Fatalf("RetryAfter = %v, want 2s", ge.RetryAfter)
	}
	res, err := sb.CreatePayment(t.Context(), req)
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if res.Status != gateway.StatusRequiresCapture || res.AmountCapturable != 1234 {
		t.Fatalf("second attempt: %+v", res)
	}
}

func TestInvalidRequests(t *testing.T) {
	sb := newSandbox(t)
	tests := []struct {
		name    string
		mutate  func(*gateway.CreateRequest)
		code    string
		message string
	}{
		{"unknown pm", func(r *gateway.CreateRequest) { r.PaymentMethod = "pm_card_nope" },
			"resource_missing", "No such PaymentMethod: 'pm_card_nope'"},
		{"case matters", func(r *gateway.CreateRequest) { r.PaymentMethod = "pm_card_VISA" },
			"resource_missing", "No such PaymentMethod"},
		{"raw card number", func(r *gateway.CreateRequest) { r.PaymentMethod = "4242424242424242" },
			"resource_missing", "No such PaymentMethod: want a test payment method id"},
		{"unknown provider", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:paypal:254712345678" },
			"payment_method_invalid_parameter", "provider"},
		{"no msisdn", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:mpesa" },
			"payment_method_invalid_parameter", "provider"},
		{"short msisdn", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:mpesa:1234567" },
			"payment_method_invalid_parameter", "8 to 15 digits"},
		{"long msisdn", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:mpesa:1234567890123456" },
			"payment_method_invalid_parameter", "8 to 15 digits"},
		{"plus msisdn", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:mpesa:+254712345678" },
			"payment_method_invalid_parameter", "8 to 15 digits"},
		{"mobile money manual capture", func(r *gateway.CreateRequest) {
			r.PaymentMethod = "mm:mpesa:254712345678"
			r.ManualCapture = true
		}, "payment_intent_invalid_parameter", "manual capture"},
		{"zero amount", func(r *gateway.CreateRequest) { r.Amount = 0 }, "amount_too_small", "amount"},
		{"bad currency", func(r *gateway.CreateRequest) { r.Currency = "XYZ" }, "parameter_invalid_string", "currency"},
		{"no key", func(r *gateway.CreateRequest) { r.IdempotencyKey = "" }, "parameter_missing", "idempotency key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := createReq("invalid/"+tc.name, "pm_card_visa", false)
			tc.mutate(&req)
			res, err := sb.CreatePayment(t.Context(), req)
			ge := wantGatewayError(t, err, gateway.Invalid, tc.code, http.StatusBadRequest)
			if !strings.Contains(ge.Message, tc.message) {
				t.Errorf("message %q does not contain %q", ge.Message, tc.message)
			}
			// Card numbers and phone numbers never reach errors (and logs).
			if digits := regexp.MustCompile(`[0-9]{7,}`).FindString(req.PaymentMethod); digits != "" && strings.Contains(ge.Message, digits) {
				t.Errorf("message %q repeats %q", ge.Message, digits)
			}
			if res != (gateway.Result{}) {
				t.Errorf("result %+v with an error", res)
			}
		})
	}
}

func TestCurrencyAnyCase(t *testing.T) {
	req := createReq("currency/lower", "pm_card_visa", false)
	req.Currency = "usd"
	res, err := newSandbox(t).CreatePayment(t.Context(), req)
	if err != nil || res.Status != gateway.StatusSucceeded {
		t.Fatalf("lower-case currency: %+v, %v", res, err)
	}
}

func TestCaptureAndCancel(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	auth, err := sb.CreatePayment(ctx, createReq("cap/1", "pm_card_mastercard", true))
	if err != nil || auth.Status != gateway.StatusRequiresCapture {
		t.Fatalf("authorize: %+v, %v", auth, err)
	}

	// Capture trusts the amount it is given, even from a process that never
	// saw the payment.
	other := newSandbox(t)
	res, err := other.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "cap/1/capture", Reference: auth.Reference, Amount: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := gateway.Result{Reference: auth.Reference, Status: gateway.StatusSucceeded, Amount: 1000, AmountReceived: 1000}
	if res != want {
		t.Fatalf("Capture elsewhere = %+v, want %+v", res, want)
	}

	// The process that authorized it fills in the rest.
	res, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "cap/1/capture", Reference: auth.Reference, Amount: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want = gateway.Result{Reference: auth.Reference, Status: gateway.StatusSucceeded, Amount: 1234, AmountReceived: 1000, Method: auth.Method}
	if res != want {
		t.Fatalf("Capture = %+v, want %+v", res, want)
	}
	if got, err := sb.Retrieve(ctx, auth.Reference); err != nil || got != want {
		t.Fatalf("Retrieve after capture = %+v, %v; want %+v", got, err, want)
	}
	// A retried create does not roll the state back.
	if _, err := sb.CreatePayment(ctx, createReq("cap/1", "pm_card_mastercard", true)); err != nil {
		t.Fatal(err)
	}
	if got, _ := sb.Retrieve(ctx, auth.Reference); got.Status != gateway.StatusSucceeded {
		t.Fatalf("Retrieve after a replayed create = %+v", got)
	}
	// Succeeded payments cannot be canceled.
	_, err = sb.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "cap/1/cancel", Reference: auth.Reference})
	wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)

	// Cancel an authorization.
	auth2, err := sb.CreatePayment(ctx, createReq("cap/2", "pm_card_visa", true))
	if err != nil {
		t.Fatal(err)
	}
	res, err = sb.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "cap/2/cancel", Reference: auth2.Reference, Reason: "abandoned"})
	if err != nil {
		t.Fatal(err)
	}
	want = gateway.Result{Reference: auth2.Reference, Status: gateway.StatusCanceled, Amount: 1234, Method: auth2.Method}
	if res != want {
		t.Fatalf("Cancel = %+v, want %+v", res, want)
	}
	// Canceled payments cannot be captured.
	_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "cap/2/capture", Reference: auth2.Reference, Amount: 1234})
	wantGatewayError(t, err, gateway.Invalid, "payment_intent_unexpected_state", http.StatusBadRequest)
	// Cancel in a process that never saw it.
	res, err = other.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "x", Reference: Reference("never-seen")})
	if err != nil || res.Status != gateway.StatusCanceled || res.Reference != Reference("never-seen") {
		t.Fatalf("Cancel elsewhere = %+v, %v", res, err)
	}
}

func TestCaptureFullAmount(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	auth, err := sb.CreatePayment(ctx, createReq("full/1", "pm_card_amex", true))
	if err != nil {
		t.Fatal(err)
	}
	res, err := sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "full/1/capture", Reference: auth.Reference})
	if err != nil || res.AmountReceived != 1234 {
		t.Fatalf("Capture with amount 0 where the authorization is known: %+v, %v", res, err)
	}
	_, err = newSandbox(t).Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "full/1/capture", Reference: auth.Reference})
	wantGatewayError(t, err, gateway.Invalid, "parameter_missing", http.StatusBadRequest)
}

func TestBadReferences(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	for _, ref := range []string{"", "pi_3abc", "pi_sbx_short"} {
		_, err := sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "k", Reference: ref, Amount: 1})
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
		_, err = sb.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "k", Reference: ref})
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
		_, err = sb.Retrieve(ctx, ref)
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
	}
}

func TestRetrieve(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	created, err := sb.CreatePayment(ctx, createReq("ret/1", "pm_card_chargeDeclinedExpiredCard", false))
	if err != nil {
		t.Fatal(err)
	}
	got, err := sb.Retrieve(ctx, created.Reference)
	if err != nil || got != created {
		t.Fatalf("Retrieve = %+v, %v; want %+v", got, err, created)
	}
	unknown := Reference("ret/unknown")
	got, err = sb.Retrieve(ctx, unknown)
	if err != nil || got != (gateway.Result{Reference: unknown, Status: gateway.StatusProcessing}) {
		t.Fatalf("Retrieve(unknown) = %+v, %v", got, err)
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newSandbox(t).CreatePayment(ctx, createReq("ctx/1", "pm_card_visa", false))
	if !errors.Is(err, context.Canceled) || gateway.KindOf(err) != gateway.Transient {
		t.Fatalf("err = %v", err)
	}
}
