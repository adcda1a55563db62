package stripe

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/stripe/stripemock"
)

// sent is one request as it went over the wire.
type sent struct {
	method, path string
	params       url.Values // the form body, or the query of a GET
	key          string     // Idempotency-Key
}

// recorder is an http.RoundTripper that keeps what was sent, so contract
// tests can assert on the request: stripe-mock answers with fixtures, not
// with what it received.
type recorder struct {
	base http.RoundTripper

	mu   sync.Mutex
	sent []sent
}

// RoundTrip implements http.RoundTripper.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	s := sent{method: req.Method, path: req.URL.Path, params: req.URL.Query(), key: req.Header.Get("Idempotency-Key")}
	if req.Body != nil {
		raw, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(raw))
		if req.Method != http.MethodGet {
			if s.params, err = url.ParseQuery(string(raw)); err != nil {
				return nil, err
			}
		}
	}
	r.mu.Lock()
	r.sent = append(r.sent, s)
	r.mu.Unlock()
	return r.base.RoundTrip(req)
}

// take returns what was sent since the last take.
func (r *recorder) take() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.sent
	r.sent = nil
	return out
}

func contractGateway(t *testing.T) (*Gateway, *recorder, *stripemock.Server) {
	t.Helper()
	srv := startStripeMock(t)
	rec := &recorder{base: http.DefaultTransport}
	g := New(Options{SecretKey: stripemock.TestKey, APIBase: srv.URL(), HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second}})
	return g, rec, srv
}

// TestContractStripeMockAmounts sends converted amounts to stripe-mock,
// which checks the requests against Stripe's spec and echoes amount and
// currency into its PaymentIntent fixture: so both what was sent (5 ISK as
// 500) and the conversion back are visible.
func TestContractStripeMockAmounts(t *testing.T) {
	g, rec, srv := contractGateway(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		currency   string
		iso        int64
		sentAmount string
	}{
		{"ISK", 5, "500"},
		{"MGA", 150_000, "1500"},
		{"KWD", 1230, "1230"},
		{"JPY", 500, "500"},
		{"USD", 1234, "1234"},
	} {
		res, err := g.CreatePayment(ctx, gateway.CreateRequest{IdempotencyKey: "payment/pay_contract" + strings.ToLower(tc.currency) + "/create/1",
			PaymentID: "pay_contract" + strings.ToLower(tc.currency), Amount: tc.iso, Currency: tc.currency, PaymentMethod: "pm_card_visa"})
		if err != nil {
			t.Fatalf("%s: %v\nstripe-mock output:\n%s", tc.currency, err, srv.Output())
		}
		got := rec.take()
		if len(got) != 1 || got[0].path != "/v1/payment_intents" {
			t.Fatalf("%s: sent %+v", tc.currency, got)
		}
		if a, c := got[0].params.Get("amount"), got[0].params.Get("currency"); a != tc.sentAmount || c != strings.ToLower(tc.currency) {
			t.Errorf("%s: sent amount=%s currency=%s, want %s %s", tc.currency, a, c, tc.sentAmount, strings.ToLower(tc.currency))
		}
		if res.Amount != tc.iso {
			t.Errorf("%s: the echoed amount read back as %d, want %d", tc.currency, res.Amount, tc.iso)
		}
	}

	// Captures and refunds: stripe-mock accepts the converted amount, then
	// answers with its usd fixture, which must not be read as ISK.
	_, err := g.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "payment/pay_contract/capture/1", Reference: "pi_123", Amount: 5, Currency: "ISK"})
	if got := rec.take(); len(got) != 1 || got[0].params.Get("amount_to_capture") != "500" {
		t.Errorf("capture sent %+v", got)
	}
	if ge := wantError(t, err, gateway.Transient); ge.Code != CodeUnexpectedAnswer {
		t.Errorf("capture answered in usd for an ISK payment: %+v", ge)
	}
	_, err = g.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "refund/re_contract/create/1", PaymentID: "pay_contract",
		Reference: "pi_123", Amount: 5, Currency: "ISK"})
	if got := rec.take(); len(got) != 1 || got[0].params.Get("amount") != "500" {
		t.Errorf("refund sent %+v", got)
	}
	if ge := wantError(t, err, gateway.Transient); ge.Code != CodeUnexpectedAnswer {
		t.Errorf("refund answered in usd for an ISK payment: %+v", ge)
	}
}

// TestContractStripeMockFindVoidRefund runs Find, Void and Refund against
// stripe-mock: the search, retrieve, cancel and refund requests are ones
// Stripe's spec accepts, and the answers parse.
func TestContractStripeMockFindVoidRefund(t *testing.T) {
	g, rec, srv := contractGateway(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fail := func(op string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\nstripe-mock output:\n%s", op, err, srv.Output())
		}
	}

	// The search itself: stripe-mock answers with one fixture intent, which
	// parses and maps.
	it := g.api.PaymentIntents.Search(searchParams(ctx, "pay_contract"))
	var n int
	for it.Next() {
		n++
		res, err := resultOf(it.PaymentIntent(), "")
		fail("map a search result", err)
		if !strings.HasPrefix(res.Reference, "pi_") || res.Status == "" || res.Method.Type != "card" {
			t.Errorf("search result mapped to %+v (payment_method expanded through data.payment_method?)", res)
		}
	}
	fail("search", it.Err())
	if n == 0 {
		t.Fatal("stripe-mock's search returned no intent: the parse was not exercised")
	}
	got := rec.take()
	if len(got) != 1 || got[0].method != http.MethodGet || got[0].path != "/v1/payment_intents/search" ||
		got[0].params.Get("query") != "metadata['payment_id']:'pay_contract'" {
		t.Fatalf("search sent %+v", got)
	}

	// Find by search: the fixture does not carry our payment id in its
	// metadata, so it is not taken for this payment's.
	found, err := g.Find(ctx, gateway.FindRequest{PaymentID: "pay_contract", Currency: "USD"})
	fail("find by search", err)
	if found.Exists {
		t.Errorf("find took a fixture without our metadata for the payment's intent: %+v", found)
	}
	rec.take()

	// Find by reference.
	found, err = g.Find(ctx, gateway.FindRequest{PaymentID: "pay_contract", Reference: "pi_contract", Currency: "USD"})
	fail("find by reference", err)
	if !found.Exists || found.Result.Reference != "pi_contract" {
		t.Errorf("find by reference: %+v", found)
	}
	rec.take()

	// Void by reference: retrieve, then cancel (the fixture's status,
	// requires_payment_method, allows it) with the derived key.
	found, err = g.Void(ctx, gateway.VoidRequest{IdempotencyKey: "payment/pay_contract/void/1", PaymentID: "pay_contract",
		Reference: "pi_contract", Currency: "USD", Reason: "abandoned"})
	fail("void", err)
	if !found.Exists || !strings.HasPrefix(found.Result.Reference, "pi_") {
		t.Errorf("void: %+v", found)
	}
	got = rec.take()
	if len(got) != 2 || got[0].path != "/v1/payment_intents/pi_contract" || got[1].path != "/v1/payment_intents/pi_contract/cancel" ||
		got[1].key != "payment/pay_contract/void/1/pi_contract" || got[1].params.Get("cancellation_reason") != "abandoned" {
		t.Errorf("void sent %+v", got)
	}

	// Void by search: nothing of ours found, nothing canceled.
	found, err = g.Void(ctx, gateway.VoidRequest{IdempotencyKey: "payment/pay_contract/void/2", PaymentID: "pay_contract", Currency: "USD"})
	fail("void by search", err)
	if found.Exists {
		t.Errorf("void by search: %+v", found)
	}
	if got := rec.take(); len(got) != 1 {
		t.Errorf("void by search sent %+v, want the search only", got)
	}

	// Refund: stripe-mock echoes the amount; its fixture is in usd.
	for _, reason := range []string{"duplicate", "fraudulent", "requested_by_customer", ""} {
		rr, err := g.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "refund/re_contract/create/" + reason, PaymentID: "pay_contract",
			Reference: "pi_contract", Amount: 1234, Currency: "USD", Reason: reason})
		fail("refund "+reason, err)
		if !strings.HasPrefix(rr.Reference, "re_") || rr.Amount != 1234 {
			t.Errorf("refund %s: %+v", reason, rr)
		}
		switch rr.Status {
		case gateway.RefundPending, gateway.RefundSucceeded, gateway.RefundFailed, gateway.RefundCanceled:
		default:
			t.Errorf("refund %s: status %q", reason, rr.Status)
		}
		got := rec.take()
		if len(got) != 1 || got[0].path != "/v1/refunds" || got[0].params.Get("payment_intent") != "pi_contract" ||
			got[0].params.Get("metadata[payment_id]") != "pay_contract" || got[0].params.Get("reason") != reason {
			t.Errorf("refund sent %+v", got)
		}
	}
}
