// Package presets holds the activity timeouts and retry policies that every
// workflow uses, so they are tuned in one place.
package presets

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
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

// LocalStoreWrite is for the writes that record a workflow's state, as local
// activities (inside the workflow task, no round trip through the task
// queue). They retry until the database takes them, however long it is
// down: the workflow must not move on from a state it has not recorded.
// Writes the store refuses for good are not retried.
func LocalStoreWrite(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeStoreInvalid},
		},
	})
}

// GatewayCall is for calls to the payment gateway: regular activities (they
// may take long and must survive the loss of a worker), retried with backoff
// for up to 23 hours. An unanswered call may have charged, so it is retried
// with the same idempotency key while the gateway still remembers the key
// (Stripe keeps them 24 hours); invalid requests are never retried.
func GatewayCall(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: GatewayRetryWindow,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        500 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeGatewayInvalid},
		},
	})
}

// GatewayRetryWindow bounds the retries of one gateway call.
const GatewayRetryWindow = 23 * time.Hour

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
