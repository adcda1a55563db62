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
// down (StoreOutageBound): the workflow must not move on from a state it
// has not recorded, nor fail while money may have moved. Writes the store
// refuses for good are not retried.
//
// The schedule-to-close bound must be set: left out, the SDK takes the
// start-to-close timeout for it, and a database down for more than 10 s
// failed the workflow.
func LocalStoreWrite(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: StoreOutageBound,
		StartToCloseTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeStoreInvalid},
		},
	})
}

// StoreOutageBound is how long a workflow's state write is retried while
// the database refuses it: a year, "however long" in practice (operators
// see the outage long before, in the workflow's pending local activity).
const StoreOutageBound = 365 * 24 * time.Hour

// GatewayCall is for calls to the payment gateway: regular activities (they
// may take long and must survive the loss of a worker), retried with backoff
// for up to 23 hours. An unanswered call may have charged, so it is retried
// with the same idempotency key while the gateway still remembers the key
// (Stripe keeps them 24 hours); invalid requests are never retried.
func GatewayCall(ctx workflow.Context) workflow.Context {
	return gatewayActivity(ctx, GatewayRetryWindow, 10*time.Minute)
}

// GatewayRetryWindow bounds the retries of one gateway call (legacy
// payments), and of the first charge's create with one idempotency key: a
// gateway forgets keys after 24 hours (Stripe does), and a create sent with
// a forgotten key could make a second intent.
const GatewayRetryWindow = 23 * time.Hour

// CustomerWaiting is how long after a charge was started a customer may
// still be waiting for it (at checkout, or for the merchant's answer):
// while it lasts, unanswered gateway calls are retried at most
// FastRetryInterval apart, so a payment settles within that long of the
// gateway answering again.
const CustomerWaiting = time.Hour

// Retry intervals of an unanswered charge: short while a customer may be
// waiting, longer after.
const (
	FastRetryInterval = 30 * time.Second
	SlowRetryInterval = 10 * time.Minute
)

// Rounds of an unanswered charge: the create is retried for one round, then
// the gateway is asked what it holds for the payment, and so on.
const (
	FastRound = 5 * time.Minute
	SlowRound = 30 * time.Minute
)

// SearchLag is how far behind a gateway's search may lag its writes
// (Stripe documents about a minute, more during incidents): an intent
// created just before a search may be missing from it, so the void that
// follows a failed charge is sent again after SearchLag.
const SearchLag = 5 * time.Minute

// GatewayRound is one round of retries of an unanswered first charge, as a
// regular activity with the same idempotency key: attempts at most
// maxInterval apart for up to round.
func GatewayRound(ctx workflow.Context, maxInterval, round time.Duration) workflow.Context {
	return gatewayActivity(ctx, round, maxInterval)
}

// GatewayLookup is for reading what the gateway holds (Find, Retrieve):
// quick attempts for up to two minutes; a caller that still has no answer
// tries again later on a durable timer.
func GatewayLookup(ctx workflow.Context) workflow.Context {
	return gatewayActivity(ctx, 2*time.Minute, 15*time.Second)
}

// GatewayStep is for a step that changes an intent (capture, cancel, void,
// refund): attempts at most FastRetryInterval apart for up to two minutes,
// with the step attempt's idempotency key. When it runs out, the workflow
// asks the gateway whether the step happened and, if not, tries again on a
// durable timer with the next attempt's key; it never fails the workflow.
func GatewayStep(ctx workflow.Context) workflow.Context {
	return gatewayActivity(ctx, 2*time.Minute, FastRetryInterval)
}

// gatewayActivity is a regular activity calling the gateway: attempts of
// at most 30 s, from half a second apart doubling to maxInterval, for up to
// window; refusals (invalid requests) are never retried.
func gatewayActivity(ctx workflow.Context, window, maxInterval time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: window,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        500 * time.Millisecond,
			BackoffCoefficient:     2,
			MaximumInterval:        maxInterval,
			NonRetryableErrorTypes: []string{activities.ErrTypeGatewayInvalid},
		},
	})
}

// StepRetryDelay is how long a workflow waits before trying a step again
// that the gateway (or the store) did not confirm: 1, 5, 15 minutes, then
// hourly.
func StepRetryDelay(attempt int) time.Duration {
	switch {
	case attempt <= 1:
		return time.Minute
	case attempt == 2:
		return 5 * time.Minute
	case attempt == 3:
		return 15 * time.Minute
	}
	return time.Hour
}

// LocalStoreRead is for quick reads a workflow needs (a payment's recorded
// state), as a local activity retried while the database is unreachable.
func LocalStoreRead(ctx workflow.Context) workflow.Context {
	return LocalStoreWrite(ctx)
}

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

// WebhookAttempt is for one attempt of a webhook delivery: the HTTP call
// is bounded at 15 s (its failures are the delivery's outcome, returned,
// not errors); errors are the database's, retried with backoff until it
// answers. An attempt the store refuses for good, or about an event that
// is not there, is not retried.
func WebhookAttempt(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeStoreInvalid, activities.ErrTypeNotFound},
		},
	})
}

// EventEmails is for sending an event's emails: retried with backoff for a
// day while the mail server or the database is away (each message is
// claimed before it is sent, so retries never send one twice).
func EventEmails(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    2 * time.Minute,
		ScheduleToCloseTimeout: 24 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        5 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeStoreInvalid, activities.ErrTypeNotFound},
		},
	})
}
