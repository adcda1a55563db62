package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/gateway"
)

// fakeGW answers every call and counts them; it only reaches a call the
// activity let through.
type fakeGW struct {
	name  string
	calls int
}

func (f *fakeGW) Name() string { return f.name }
func (f *fakeGW) CreatePayment(context.Context, gateway.CreateRequest) (gateway.Result, error) {
	f.calls++
	return gateway.Result{Status: gateway.StatusSucceeded}, nil
}
func (f *fakeGW) Capture(context.Context, gateway.CaptureRequest) (gateway.Result, error) {
	f.calls++
	return gateway.Result{}, nil
}
func (f *fakeGW) Cancel(context.Context, gateway.CancelRequest) (gateway.Result, error) {
	f.calls++
	return gateway.Result{}, nil
}
func (f *fakeGW) Retrieve(context.Context, string) (gateway.Result, error) {
	f.calls++
	return gateway.Result{}, nil
}
func (f *fakeGW) Find(context.Context, gateway.FindRequest) (gateway.Found, error) {
	f.calls++
	return gateway.Found{}, nil
}
func (f *fakeGW) Void(context.Context, gateway.VoidRequest) (gateway.Found, error) {
	f.calls++
	return gateway.Found{}, nil
}
func (f *fakeGW) Refund(context.Context, gateway.RefundRequest) (gateway.RefundResult, error) {
	f.calls++
	return gateway.RefundResult{}, nil
}
func (f *fakeGW) UpdateDispute(context.Context, gateway.DisputeUpdateRequest) (gateway.DisputeResult, error) {
	f.calls++
	return gateway.DisputeResult{}, nil
}
func (f *fakeGW) CloseDispute(context.Context, gateway.DisputeCloseRequest) (gateway.DisputeResult, error) {
	f.calls++
	return gateway.DisputeResult{}, nil
}

// TestWorkerRefusesAnotherGatewaysPayment: a request made for a gateway this
// worker does not run never reaches its gateway (a Stripe payment must not
// "succeed" in the sandbox), and the error is retryable, so the task is
// left for a worker that has the gateway; requests that name no gateway
// (from workflows older than the field) and requests for this one pass.
func TestWorkerRefusesAnotherGatewaysPayment(t *testing.T) {
	ctx := context.Background()
	calls := map[string]func(a *Gateway, gw string) error{
		"create": func(a *Gateway, gw string) error {
			_, err := a.CreatePayment(ctx, gateway.CreateRequest{Gateway: gw, PaymentID: "pay_1"})
			return err
		},
		"capture": func(a *Gateway, gw string) error {
			_, err := a.Capture(ctx, gateway.CaptureRequest{Gateway: gw, Reference: "pi_1"})
			return err
		},
		"cancel": func(a *Gateway, gw string) error {
			_, err := a.Cancel(ctx, gateway.CancelRequest{Gateway: gw, Reference: "pi_1"})
			return err
		},
		"find": func(a *Gateway, gw string) error {
			_, err := a.Find(ctx, gateway.FindRequest{Gateway: gw, PaymentID: "pay_1"})
			return err
		},
		"void": func(a *Gateway, gw string) error {
			_, err := a.Void(ctx, gateway.VoidRequest{Gateway: gw, PaymentID: "pay_1"})
			return err
		},
		"retrieve": func(a *Gateway, gw string) error {
			_, err := a.RetrieveIntent(ctx, gateway.FindRequest{Gateway: gw, PaymentID: "pay_1", Reference: "pi_1"})
			return err
		},
		"refund": func(a *Gateway, gw string) error {
			_, err := a.Refund(ctx, gateway.RefundRequest{Gateway: gw, PaymentID: "pay_1"})
			return err
		},
		"update dispute": func(a *Gateway, gw string) error {
			_, err := a.UpdateDispute(ctx, gateway.DisputeUpdateRequest{Gateway: gw, Reference: "dp_1"})
			return err
		},
		"close dispute": func(a *Gateway, gw string) error {
			_, err := a.CloseDispute(ctx, gateway.DisputeCloseRequest{Gateway: gw, Reference: "dp_1"})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			f := &fakeGW{name: "sandbox"}
			a := &Gateway{GW: f, Logger: slog.New(slog.DiscardHandler)}
			err := call(a, "stripe")
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != ErrTypeGatewayMismatch || appErr.NonRetryable() {
				t.Fatalf("a stripe request on a sandbox worker: %v, want a retryable %s", err, ErrTypeGatewayMismatch)
			}
			if !strings.Contains(appErr.Message(), "PAYMENTS_GATEWAY=stripe") || f.calls != 0 {
				t.Fatalf("message %q, %d gateway calls", appErr.Message(), f.calls)
			}
			for _, ok := range []string{"sandbox", ""} {
				if err := call(a, ok); err != nil {
					t.Fatalf("a request for %q refused: %v", ok, err)
				}
			}
			if f.calls != 2 {
				t.Fatalf("%d gateway calls, want 2", f.calls)
			}
		})
	}
}

// TestClassify pins how gateway errors become retry decisions.
func TestClassify(t *testing.T) {
	if classify(nil) != nil {
		t.Fatal("nil error classified")
	}
	var appErr *temporal.ApplicationError
	err := classify(&gateway.Error{Kind: gateway.Invalid, Code: "card_declined", Message: "no"})
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeGatewayInvalid || !appErr.NonRetryable() {
		t.Fatalf("invalid: %v", err)
	}
	var d GatewayErrorDetails
	if err := appErr.Details(&d); err != nil || d.Code != "card_declined" {
		t.Fatalf("details %+v %v", d, err)
	}
	err = classify(&gateway.Error{Kind: gateway.RateLimited, RetryAfter: 3 * time.Second})
	if !errors.As(err, &appErr) || appErr.NonRetryable() || appErr.NextRetryDelay() != 3*time.Second {
		t.Fatalf("rate limited: %v", err)
	}
	err = classify(&gateway.Error{Kind: gateway.Transient})
	if !errors.As(err, &appErr) || appErr.NonRetryable() || appErr.Type() != "GatewayUnavailable" {
		t.Fatalf("transient: %v", err)
	}
	plain := errors.New("boom")
	if classify(plain) != plain {
		t.Fatal("an unclassified error was changed")
	}
}

// TestRefusedForGood: what the store refuses for good is not retried, the
// rest is.
func TestRefusedForGood(t *testing.T) {
	var appErr *temporal.ApplicationError
	for _, err := range []error{errs.InvalidArgument("x", "bad"), errs.AlreadyExists("journal posted with other lines")} {
		got := refusedForGood(err)
		if !errors.As(got, &appErr) || appErr.Type() != ErrTypeStoreInvalid || !appErr.NonRetryable() {
			t.Fatalf("%v: %v", err, got)
		}
	}
	for _, err := range []error{errors.New("connection refused"), errs.Aborted("race"), nil} {
		if got := refusedForGood(err); got != err {
			t.Fatalf("%v became %v", err, got)
		}
	}
}

// Every workflow reads a gateway's refusal through these two: a refusal
// carries the gateway's code (none: ""), an outage or a rate limit is no
// refusal, and the reading survives wrapping (the workflow sees the
// activity's error inside Temporal's).
func TestGatewayRefusalCode(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		refusal bool
		code    string
	}{
		{"refused with a code", classify(&gateway.Error{Kind: gateway.Invalid, Code: "card_declined", Message: "declined"}), true, "card_declined"},
		{"refused without a code", classify(&gateway.Error{Kind: gateway.Invalid, Message: "bad"}), true, ""},
		{"wrapped", fmt.Errorf("activity: %w", classify(&gateway.Error{Kind: gateway.Invalid, Code: "amount_too_large"})), true, "amount_too_large"},
		{"unavailable", classify(&gateway.Error{Kind: gateway.Transient, Code: "api_error"}), false, ""},
		{"rate limited", classify(&gateway.Error{Kind: gateway.RateLimited, Code: "rate_limit"}), false, ""},
		{"not a gateway error", errors.New("boom"), false, ""},
		{"nil", nil, false, ""},
	} {
		if got := IsGatewayRefusal(tc.err); got != tc.refusal {
			t.Errorf("%s: IsGatewayRefusal = %v, want %v", tc.name, got, tc.refusal)
		}
		if got := GatewayRefusalCode(tc.err); got != tc.code {
			t.Errorf("%s: GatewayRefusalCode = %q, want %q", tc.name, got, tc.code)
		}
	}
}
