// Package presets holds the activity timeouts and retry policies that every
// workflow uses, so they are tuned in one place.
package presets

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// StoreWrite is for quick database writes: short attempts, retried with
// backoff for up to ten minutes (a database fail-over), never forever.
func StoreWrite(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// LocalStoreWrite is StoreWrite as a local activity: it runs inside the
// workflow task, saving a round trip through the task queue.
func LocalStoreWrite(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout:    10 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    200 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
		},
	})
}

// GatewayCall is for calls to the payment gateway: regular activities (they
// may take long and must survive the loss of a worker), retried with backoff
// for five minutes; declines and invalid requests are never retried.
func GatewayCall(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        500 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: []string{NonRetryableGatewayError},
		},
	})
}

// NonRetryableGatewayError is the application error type of invalid gateway
// requests; it equals activities.ErrTypeGatewayInvalid.
const NonRetryableGatewayError = "GatewayInvalid"

// GatewayFastPath is one quick try of a gateway call as a local activity,
// inside the workflow task: most calls answer in milliseconds, and this saves
// a round trip through the task queue. A failure falls back to GatewayCall
// (a regular activity with retries, visible in the history), with the same
// idempotency key, so nothing is ever charged twice.
func GatewayFastPath(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 5 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
}
