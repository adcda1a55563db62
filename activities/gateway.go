package activities

import (
	"context"
	"errors"
	"log/slog"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/internal/gateway"
)

// ErrTypeGatewayInvalid is the application error type of gateway requests
// that can never succeed (bad parameters, wrong state, misconfiguration).
const ErrTypeGatewayInvalid = "GatewayInvalid"

// GatewayErrorDetails travel with a GatewayInvalid error to the workflow.
type GatewayErrorDetails struct {
	Code    string
	Message string
}

// Gateway holds the activities that call the payment gateway.
type Gateway struct {
	GW     gateway.Gateway
	Logger *slog.Logger
}

// CreatePayment creates and confirms the payment at the gateway.
func (a *Gateway) CreatePayment(ctx context.Context, r gateway.CreateRequest) (gateway.Result, error) {
	res, err := a.GW.CreatePayment(ctx, r)
	return res, classify(err)
}

// Capture captures an authorized payment.
func (a *Gateway) Capture(ctx context.Context, r gateway.CaptureRequest) (gateway.Result, error) {
	res, err := a.GW.Capture(ctx, r)
	return res, classify(err)
}

// Cancel cancels a payment at the gateway.
func (a *Gateway) Cancel(ctx context.Context, r gateway.CancelRequest) (gateway.Result, error) {
	res, err := a.GW.Cancel(ctx, r)
	return res, classify(err)
}

// classify turns gateway errors into what Temporal's retry policy needs:
// invalid requests are non-retryable, rate limits set the next retry delay,
// everything else is retried with backoff.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		return err
	}
	switch ge.Kind {
	case gateway.Invalid:
		return temporal.NewApplicationErrorWithOptions(ge.Message, ErrTypeGatewayInvalid, temporal.ApplicationErrorOptions{
			NonRetryable: true, Cause: err, Details: []any{GatewayErrorDetails{Code: ge.Code, Message: ge.Message}},
		})
	case gateway.RateLimited:
		return temporal.NewApplicationErrorWithOptions(ge.Message, "GatewayRateLimited", temporal.ApplicationErrorOptions{
			Cause: err, NextRetryDelay: ge.RetryAfter,
		})
	default:
		return temporal.NewApplicationErrorWithOptions(ge.Message, "GatewayUnavailable", temporal.ApplicationErrorOptions{Cause: err})
	}
}

// Retrieve returns the payment's current state at the gateway.
func (a *Gateway) Retrieve(ctx context.Context, reference string) (gateway.Result, error) {
	res, err := a.GW.Retrieve(ctx, reference)
	return res, classify(err)
}
