package stripe

// Tests added where mutation testing (make mutate, docs/TESTING.md) found a
// changed line that no test noticed.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
)

// TestRefundFailureCodeOnlyWhenOver: a canceled refund keeps the reason
// Stripe gives; a refund that did not fail or get canceled reports none,
// whatever else the answer carries.
func TestRefundFailureCodeOnlyWhenOver(t *testing.T) {
	for _, tc := range []struct {
		status, failure string
		want            gateway.RefundStatus
		code            string
	}{
		{"canceled", "expired_or_canceled_card", gateway.RefundCanceled, "expired_or_canceled_card"},
		{"succeeded", "lost_or_stolen_card", gateway.RefundSucceeded, ""},
		{"pending", "lost_or_stolen_card", gateway.RefundPending, ""},
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

// TestClip: what a caller sent is repeated up to 80 bytes, then cut with
// an ellipsis.
func TestClip(t *testing.T) {
	exact := strings.Repeat("x", 80)
	if got := clip(exact); got != exact {
		t.Errorf("clip(80 bytes) = %q, want it whole", got)
	}
	if got := clip(exact + "yz"); got != exact+"..." {
		t.Errorf("clip(82 bytes) = %q, want the first 80 and ...", got)
	}
}

// TestClassifyStatusFromTheResponse: an error whose HTTP status stripe-go
// left at 0 takes it from the response it kept.
func TestClassifyStatusFromTheResponse(t *testing.T) {
	se := &stripego.Error{Msg: "upstream failed"}
	se.SetLastResponse(&stripego.APIResponse{Header: http.Header{}, StatusCode: http.StatusServiceUnavailable})
	ge := classify(se)
	if ge.StatusCode != http.StatusServiceUnavailable || ge.Kind != gateway.Transient {
		t.Fatalf("classify = status %d kind %s, want 503 transient", ge.StatusCode, kindName(ge.Kind))
	}
	// A status stripe-go set wins over the response's.
	se = &stripego.Error{Msg: "refused", HTTPStatusCode: http.StatusBadRequest, Type: stripego.ErrorTypeInvalidRequest}
	se.SetLastResponse(&stripego.APIResponse{Header: http.Header{}, StatusCode: http.StatusBadGateway})
	if ge := classify(se); ge.StatusCode != http.StatusBadRequest || ge.Kind != gateway.Invalid {
		t.Fatalf("classify = status %d kind %s, want 400 invalid", ge.StatusCode, kindName(ge.Kind))
	}
}

// answerWith is a RoundTripper that answers every request with status,
// content type and body.
type answerWith struct {
	status      int
	contentType string
	body        string
}

func (a answerWith) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: a.status, Status: fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)),
		Header: http.Header{"Content-Type": {a.contentType}}, Body: io.NopCloser(strings.NewReader(a.body)), Request: req,
	}, nil
}

// TestJSONErrorsBoundaries: a non-JSON answer from 400 up becomes Stripe's
// error shape, an invalid_request_error below 500 and an api_error from
// 500; below 400 it passes as it is.
func TestJSONErrorsBoundaries(t *testing.T) {
	for _, tc := range []struct {
		status  int
		errType string // "" = passed unchanged
	}{
		{399, ""},
		{400, "invalid_request_error"},
		{499, "invalid_request_error"},
		{500, "api_error"},
		{502, "api_error"},
	} {
		req, _ := http.NewRequest(http.MethodPost, "https://api.stripe.com/v1/payment_intents", nil)
		resp, err := jsonErrors{base: answerWith{tc.status, "text/html", "<h1>busy</h1>"}}.RoundTrip(req)
		if err != nil {
			t.Fatalf("%d: %v", tc.status, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		if tc.errType == "" {
			if string(raw) != "<h1>busy</h1>" || resp.Header.Get("Content-Type") != "text/html" {
				t.Errorf("%d: rewritten to %s %q", tc.status, resp.Header.Get("Content-Type"), raw)
			}
			continue
		}
		var body struct {
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(raw, &body); err != nil || body.Error.Type != tc.errType || !strings.Contains(body.Error.Message, "busy") {
			t.Errorf("%d: body %q (%v), want a %s naming the snippet", tc.status, raw, err, tc.errType)
		}
	}
}

// TestMethodOfLatestCharge: without an expanded payment method, the
// instrument comes from the latest charge: its card, else its type.
func TestMethodOfLatestCharge(t *testing.T) {
	pi := &stripego.PaymentIntent{LatestCharge: &stripego.Charge{PaymentMethodDetails: &stripego.ChargePaymentMethodDetails{Type: "sepa_debit"}}}
	if got := methodOf(pi); got != (gateway.MethodDetails{Type: "sepa_debit"}) {
		t.Errorf("methodOf(sepa_debit charge) = %+v", got)
	}
	pi.LatestCharge.PaymentMethodDetails.Type = ""
	if got := methodOf(pi); got != (gateway.MethodDetails{}) {
		t.Errorf("methodOf(charge without a type) = %+v, want nothing", got)
	}
}

// TestClassifyWithoutTypeOrStatus: where Stripe's answer lacks a type, the
// status decides (from 500 transient, from 400 invalid); where it lacks a
// status, the type decides; with neither, the error is transient.
func TestClassifyWithoutTypeOrStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		se   *stripego.Error
		want gateway.ErrorKind
	}{
		{"500, no type", &stripego.Error{HTTPStatusCode: 500}, gateway.Transient},
		{"499, no type", &stripego.Error{HTTPStatusCode: 499}, gateway.Invalid},
		{"400, no type", &stripego.Error{HTTPStatusCode: 400}, gateway.Invalid},
		{"404, no type", &stripego.Error{HTTPStatusCode: 404}, gateway.Invalid},
		{"399, no type", &stripego.Error{HTTPStatusCode: 399}, gateway.Transient},
		{"invalid request, no status", &stripego.Error{Type: stripego.ErrorTypeInvalidRequest}, gateway.Invalid},
		{"idempotency, no status", &stripego.Error{Type: stripego.ErrorTypeIdempotency}, gateway.Invalid},
		{"card, no status", &stripego.Error{Type: stripego.ErrorTypeCard}, gateway.Invalid},
		{"no status, no type", &stripego.Error{Msg: "?"}, gateway.Transient},
	} {
		if got := classify(tc.se).Kind; got != tc.want {
			t.Errorf("%s: kind %s, want %s", tc.name, kindName(got), kindName(tc.want))
		}
	}
}

// TestIdempotencyKeyLengthBound: a key of exactly Stripe's 255 characters is
// sent; one more is refused before sending.
func TestIdempotencyKeyLengthBound(t *testing.T) {
	if err := checkKey(strings.Repeat("k", maxIdempotencyKey)); err != nil {
		t.Fatalf("a %d-character key: %v", maxIdempotencyKey, err)
	}
	if err := checkKey(strings.Repeat("k", maxIdempotencyKey+1)); err == nil {
		t.Fatalf("a %d-character key was accepted", maxIdempotencyKey+1)
	}
	if maxIdempotencyKey != 255 {
		t.Fatalf("maxIdempotencyKey = %d, want Stripe's 255", maxIdempotencyKey)
	}
}

// TestDefaultHTTPTimeout pins the bound on one request of a gateway made
// without an HTTP client: 30 s (an http.Client's 0 would mean none).
func TestDefaultHTTPTimeout(t *testing.T) {
	if DefaultHTTPTimeout != 30*time.Second {
		t.Fatalf("DefaultHTTPTimeout = %v, want 30s", DefaultHTTPTimeout)
	}
}
