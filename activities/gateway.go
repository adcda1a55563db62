package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/internal/gateway"
)

// ErrTypeGatewayInvalid is the application error type of gateway requests
// that can never succeed (bad parameters, wrong state, misconfiguration).
const ErrTypeGatewayInvalid = "GatewayInvalid"

// ErrTypeGatewayMismatch is the application error type of a request for a
// gateway this worker does not run. It is retried, so the task goes to
// another worker (or to this one once it is configured right); the payment
// waits meanwhile and is never failed for it.
const ErrTypeGatewayMismatch = "GatewayMismatch"

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
	if err := a.check(ctx, r.Gateway, r.PaymentID); err != nil {
		return gateway.Result{}, err
	}
	res, err := a.GW.CreatePayment(ctx, r)
	return res, a.failed(ctx, err)
}

// Capture captures an authorized payment.
func (a *Gateway) Capture(ctx context.Context, r gateway.CaptureRequest) (gateway.Result, error) {
	if err := a.check(ctx, r.Gateway, r.Reference); err != nil {
		return gateway.Result{}, err
	}
	res, err := a.GW.Capture(ctx, r)
	return res, a.failed(ctx, err)
}

// Cancel cancels a payment at the gateway.
func (a *Gateway) Cancel(ctx context.Context, r gateway.CancelRequest) (gateway.Result, error) {
	if err := a.check(ctx, r.Gateway, r.Reference); err != nil {
		return gateway.Result{}, err
	}
	res, err := a.GW.Cancel(ctx, r)
	return res, a.failed(ctx, err)
}

// Find returns what the gateway holds for a payment.
func (a *Gateway) Find(ctx context.Context, r gateway.FindRequest) (gateway.Found, error) {
	if err := a.check(ctx, r.Gateway, r.PaymentID); err != nil {
		return gateway.Found{}, err
	}
	res, err := a.GW.Find(ctx, r)
	return res, a.failed(ctx, err)
}

// Void cancels whatever intent the gateway holds for a payment, unless final.
func (a *Gateway) Void(ctx context.Context, r gateway.VoidRequest) (gateway.Found, error) {
	if err := a.check(ctx, r.Gateway, r.PaymentID); err != nil {
		return gateway.Found{}, err
	}
	res, err := a.GW.Void(ctx, r)
	return res, a.failed(ctx, err)
}

// Refund refunds money the gateway received for a payment.
func (a *Gateway) Refund(ctx context.Context, r gateway.RefundRequest) (gateway.RefundResult, error) {
	if err := a.check(ctx, r.Gateway, r.PaymentID); err != nil {
		return gateway.RefundResult{}, err
	}
	res, err := a.GW.Refund(ctx, r)
	return res, a.failed(ctx, err)
}

// UpdateDispute forwards evidence of a network dispute to the gateway.
func (a *Gateway) UpdateDispute(ctx context.Context, r gateway.DisputeUpdateRequest) (gateway.DisputeResult, error) {
	if err := a.check(ctx, r.Gateway, r.Reference); err != nil {
		return gateway.DisputeResult{}, err
	}
	res, err := a.GW.UpdateDispute(ctx, r)
	return res, a.failed(ctx, err)
}

// CloseDispute concedes a network dispute at the gateway.
func (a *Gateway) CloseDispute(ctx context.Context, r gateway.DisputeCloseRequest) (gateway.DisputeResult, error) {
	if err := a.check(ctx, r.Gateway, r.Reference); err != nil {
		return gateway.DisputeResult{}, err
	}
	res, err := a.GW.CloseDispute(ctx, r)
	return res, a.failed(ctx, err)
}

// check refuses a request made for another gateway than this worker's: the
// payment was recorded with the gateway the API runs, and a worker with
// another one must not touch it (a Stripe payment sent to the sandbox would
// "succeed" without money). "" is a request from a workflow that predates
// the field and is not checked.
func (a *Gateway) check(ctx context.Context, want, object string) error {
	if want == "" || want == a.GW.Name() {
		return nil
	}
	msg := fmt.Sprintf("this worker runs the %s gateway but %s was made with %s: left for a worker with PAYMENTS_GATEWAY=%s",
		a.GW.Name(), object, want, want)
	a.Logger.ErrorContext(ctx, "gateway mismatch", "worker_gateway", a.GW.Name(), "payment_gateway", want, "object", object)
	return temporal.NewApplicationErrorWithOptions(msg, ErrTypeGatewayMismatch, temporal.ApplicationErrorOptions{})
}

// classify turns gateway errors into what Temporal's retry policy needs:
// invalid requests are non-retryable, rate limits set the next retry delay,
// everything else is retried with backoff.
func classify(err error) error {
	return classifyAs(err, temporal.ApplicationErrorCategoryUnspecified)
}

// classifyAs is classify with the category of a retryable error: benign
// for a failure Temporal retries, which the SDK then logs at debug instead
// of ERROR ("Activity error.") and leaves out of its failure metrics.
func classifyAs(err error, retried temporal.ApplicationErrorCategory) error {
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
		return temporal.NewApplicationErrorWithOptions(ge.Message, errTypeGatewayRateLimited, temporal.ApplicationErrorOptions{
			Cause: err, NextRetryDelay: ge.RetryAfter, Category: retried,
		})
	default:
		return temporal.NewApplicationErrorWithOptions(ge.Message, errTypeGatewayUnavailable, temporal.ApplicationErrorOptions{
			Cause: err, Category: retried,
		})
	}
}

// The application error types of gateway failures that are retried.
const (
	errTypeGatewayRateLimited = "GatewayRateLimited"
	errTypeGatewayUnavailable = "GatewayUnavailable"
)

// failed classifies the error of a gateway call (classify) and logs it when
// it is expected: a gateway that fails now and then (a 503, a timeout, the
// sandbox's pm_sandbox_flaky) or asks to slow down is retried by Temporal,
// and each failure Temporal will retry is a warning with the attempt that
// failed, counted as Temporal counts them, and the retry policy's bounds.
// Such a failure is marked benign, so the SDK does not log it again at
// ERROR. The failure of the last attempt, and a refusal (never retried),
// keep the SDK's ERROR, with its attempt number.
func (a *Gateway) failed(ctx context.Context, err error) error {
	if err == nil || !activity.IsActivity(ctx) {
		return classify(err)
	}
	return a.report(ctx, activity.GetInfo(ctx), err, time.Now())
}

// report is failed for the attempt info that failed at now.
func (a *Gateway) report(ctx context.Context, info activity.Info, err error, now time.Time) error {
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Kind == gateway.Invalid {
		return classify(err)
	}
	attrs := []any{"activity", info.ActivityType.Name, "workflow_id", info.WorkflowExecution.ID,
		"attempt", info.Attempt}
	if p := info.RetryPolicy; p != nil && p.MaximumAttempts > 0 {
		attrs = append(attrs, "max_attempts", p.MaximumAttempts)
	}
	if info.IsLocalActivity {
		// The workflows' fast path (presets.GatewayFastPath) tries a call
		// once as a local activity and, when it fails, again as a regular
		// activity with the same idempotency key.
		attrs = append(attrs, "error", ge.Error())
		a.Logger.WarnContext(ctx, "gateway call failed; the workflow retries it as an activity", attrs...)
		return classifyAs(err, temporal.ApplicationErrorCategoryBenign)
	}
	delay, retried := nextRetry(info, ge.RetryAfter, now)
	if !retried {
		return classify(err)
	}
	if info.ScheduleToCloseTimeout > 0 {
		attrs = append(attrs, "retried_until", info.ScheduledTime.Add(info.ScheduleToCloseTimeout))
	}
	attrs = append(attrs, "next_attempt_in", delay, "error", ge.Error())
	a.Logger.WarnContext(ctx, "gateway call failed; Temporal retries it", attrs...)
	return classifyAs(err, temporal.ApplicationErrorCategoryBenign)
}

// nextRetry is when Temporal retries an activity whose attempt failed now,
// as the server decides it: not after the retry policy's last attempt, nor
// when the next attempt would start after the schedule-to-close deadline
// (counted from the first attempt's scheduling); otherwise after the
// error's own delay (a rate limit's Retry-After) or the policy's backoff,
// InitialInterval * BackoffCoefficient^(attempt-1), either at most
// MaximumInterval.
func nextRetry(info activity.Info, errDelay time.Duration, now time.Time) (time.Duration, bool) {
	p := info.RetryPolicy
	if p == nil {
		// A server too old to say which policy it applies: its default.
		p = &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 100 * time.Second}
	}
	if p.MaximumAttempts > 0 && info.Attempt >= p.MaximumAttempts {
		return 0, false
	}
	delay := errDelay
	if delay <= 0 {
		backoff := float64(p.InitialInterval) * math.Pow(p.BackoffCoefficient, float64(info.Attempt-1))
		delay = time.Duration(math.Min(backoff, float64(math.MaxInt64)))
	}
	if p.MaximumInterval > 0 && delay > p.MaximumInterval {
		delay = p.MaximumInterval
	}
	if info.ScheduleToCloseTimeout > 0 && now.Add(delay).After(info.ScheduledTime.Add(info.ScheduleToCloseTimeout)) {
		return 0, false
	}
	return delay, true
}

// RetrieveIntent returns the state of the payment's intent at the gateway
// (r.Reference), refusing, as every call does, a payment of another gateway.
func (a *Gateway) RetrieveIntent(ctx context.Context, r gateway.FindRequest) (gateway.Result, error) {
	if err := a.check(ctx, r.Gateway, r.PaymentID); err != nil {
		return gateway.Result{}, err
	}
	res, err := a.GW.Retrieve(ctx, r.Reference)
	return res, a.failed(ctx, err)
}

// Retrieve returns the payment's current state at the gateway. Only runs of
// the legacy workflow call it; later ones call RetrieveIntent.
func (a *Gateway) Retrieve(ctx context.Context, reference string) (gateway.Result, error) {
	res, err := a.GW.Retrieve(ctx, reference)
	return res, a.failed(ctx, err)
}

// GatewayRefusalCode is the gateway's code of a refusal (IsGatewayRefusal),
// "" without one. Only the code leaves a workflow: the provider's own text
// can name parameters or configuration.
func GatewayRefusalCode(err error) string {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.HasDetails() {
		return ""
	}
	var d GatewayErrorDetails
	if appErr.Details(&d) != nil {
		return ""
	}
	return d.Code
}

// IsGatewayRefusal reports whether a gateway activity failed because the
// gateway refused the request for good (ErrTypeGatewayInvalid): an answer,
// not an outage. Every workflow reads the classification through it.
func IsGatewayRefusal(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == ErrTypeGatewayInvalid
}
