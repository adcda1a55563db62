package stripe

import (
	"context"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/stripe/stripemock"
)

// startStripeMock runs stripe-mock for one test, or fails the test: the
// contract tests are never skipped because the tool is missing.
func startStripeMock(t *testing.T) *stripemock.Server {
	t.Helper()
	bin, err := stripemock.Find()
	if err != nil {
		t.Fatalf("the gateway contract tests need stripe-mock: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), stripemock.DefaultStartTimeout)
	defer cancel()
	srv, err := stripemock.Start(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestContractStripeMock sends every call this gateway makes, with every
// parameter it sets, through the real stripe-go client to stripe-mock, which
// validates requests against Stripe's OpenAPI spec (unknown parameters and
// bad enum values are refused) and answers with canned fixtures. So it
// asserts that Stripe would accept the requests and that the answers map,
// not business outcomes: stripe-mock's PaymentIntent fixture is always
// requires_payment_method, which maps to failed.
func TestContractStripeMock(t *testing.T) {
	srv := startStripeMock(t)
	g := New(Options{SecretKey: stripemock.TestKey, APIBase: srv.URL()})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	check := func(op string, res gateway.Result, err error) gateway.Result {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v\nstripe-mock output:\n%s", op, err, srv.Output())
		}
		if !strings.HasPrefix(res.Reference, "pi_") {
			t.Errorf("%s: reference %q", op, res.Reference)
		}
		switch res.Status {
		case gateway.StatusProcessing, gateway.StatusRequiresAction, gateway.StatusRequiresCapture,
			gateway.StatusSucceeded, gateway.StatusFailed, gateway.StatusCanceled:
		default:
			t.Errorf("%s: status %q", op, res.Status)
		}
		if res.Status == gateway.StatusFailed && res.FailureCode == "" {
			t.Errorf("%s: failed without a failure code", op)
		}
		return res
	}

	var created []gateway.Result
	for _, manual := range []bool{false, true} {
		r := gateway.CreateRequest{
			IdempotencyKey: "payment/pay_contract/create/" + map[bool]string{false: "automatic", true: "manual"}[manual],
			PaymentID:      "pay_contract",
			Amount:         1234,
			Currency:       "USD",
			PaymentMethod:  "pm_card_visa",
			ManualCapture:  manual,
			Description:    "contract test",
			ReturnURL:      "https://shop.test/back",
		}
		res, err := g.CreatePayment(ctx, r)
		res = check("create", res, err)
		// stripe-mock echoes the request's amount into its fixture.
		if res.Amount != 1234 {
			t.Errorf("create manual=%v: amount %d, want 1234", manual, res.Amount)
		}
		created = append(created, res)
	}

	// stripe-mock answers captures and cancels with its usd fixture.
	res, err := g.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "payment/pay_contract/capture", Reference: created[1].Reference,
		Amount: 1000, Currency: "USD"})
	check("capture", res, err)
	res, err = g.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "payment/pay_contract/capture-all", Reference: created[1].Reference,
		Currency: "USD"})
	check("capture everything", res, err)

	for _, reason := range []string{"requested_by_customer", "abandoned", "duplicate", "fraudulent", "expired"} {
		res, err = g.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "payment/pay_contract/cancel/" + reason, Reference: created[0].Reference,
			Reason: reason, Currency: "USD"})
		check("cancel "+reason, res, err)
	}

	res, err = g.Retrieve(ctx, created[0].Reference)
	res = check("retrieve", res, err)
	// On a GET stripe-mock expands payment_method into its card fixture.
	if res.Method.Type != "card" || res.Method.Brand == "" || len(res.Method.Last4) != 4 {
		t.Errorf("retrieve: method details not mapped from the expanded payment_method: %+v", res.Method)
	}
}

// TestContractStripeMockErrors checks that stripe-mock's real error answers
// are classified: a refused parameter is Invalid (never retried), and a
// missing key is Invalid with the configuration hint.
func TestContractStripeMockErrors(t *testing.T) {
	srv := startStripeMock(t)
	ctx := t.Context()
	g := New(Options{SecretKey: stripemock.TestKey, APIBase: srv.URL()})

	// A parameter Stripe does not know, through this gateway's own client.
	params := &stripego.PaymentIntentParams{Amount: stripego.Int64(100), Currency: stripego.String("usd")}
	params.AddExtra("no_such_parameter", "1")
	params.Context = ctx
	_, err := g.api.PaymentIntents.New(params)
	if err == nil {
		t.Fatal("stripe-mock accepted an unknown parameter: the contract test would prove nothing")
	}
	ge := classify(err)
	if ge.Kind != gateway.Invalid || ge.StatusCode != 400 {
		t.Errorf("unknown parameter: kind %s, status %d: %s", kindName(ge.Kind), ge.StatusCode, ge.Message)
	}

	// An enum value Stripe does not know: why Cancel sends only four reasons.
	cancelParams := &stripego.PaymentIntentCancelParams{CancellationReason: stripego.String("expired")}
	cancelParams.Context = ctx
	if _, err := g.api.PaymentIntents.Cancel("pi_123", cancelParams); err == nil || classify(err).Kind != gateway.Invalid {
		t.Errorf("unknown cancellation_reason: %v", err)
	}

	noKey := New(Options{SecretKey: "", APIBase: srv.URL()})
	_, err = noKey.Retrieve(ctx, "pi_123")
	ge = wantError(t, err, gateway.Invalid)
	if ge.StatusCode != 401 || !strings.Contains(ge.Message, "STRIPE_SECRET_KEY") {
		t.Errorf("missing key: %+v", ge)
	}
}
