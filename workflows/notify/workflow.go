// Package notify is the durable delivery of the platform's events: one
// workflow per (event, endpoint) that POSTs the event on API.md's
// schedule, and the relay that starts them, and the events' emails, from
// the store's outbox.
//
// One workflow per delivery rather than one per endpoint with ordering: an
// event's attempts then follow their own schedule whatever the endpoint's
// other events do, so one event a receiver keeps refusing (a 400 on a
// payload it cannot parse) never holds the others back, and a delivery's
// whole story (every attempt, every timer) is one short history an
// operator opens by its id, webhook/<evt_id>/<we_id>. Receivers order an
// object's events by their sequence, as API.md promises, rather than by
// arrival: Standard Webhooks makes no ordering promise either, and retries
// reorder events anyway.
package notify

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/workflows/presets"
)

// Schedule is API.md's: when each attempt follows the previous one, ten
// attempts over about three days and four hours.
var Schedule = []time.Duration{
	0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

// DeliveryWorkflow makes the attempts of one delivery: the first at once,
// each further one on a durable timer after a failure that is worth a
// retry, until one succeeds, one fails for good (a 4xx other than 408,
// 409 and 429; a 410, which disables the endpoint), the endpoint is
// deleted or disabled, or the schedule runs out.
func DeliveryWorkflow(ctx workflow.Context, in DeliveryInput) (DeliveryResult, error) {
	ctx = presets.WebhookAttempt(ctx)
	var a *activities.Webhooks
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	var out activities.DeliverOutput
	for i, wait := range Schedule {
		if wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return DeliveryResult{}, err
			}
		}
		attempt := i + 1
		at := workflow.Now(ctx).UTC()
		rowID := DeliveryID(id, attempt, at)
		if attempt == 1 && in.FirstDeliveryID != "" {
			rowID, at = in.FirstDeliveryID, in.FirstAt
		}
		var next time.Duration
		if attempt < len(Schedule) {
			next = Schedule[attempt]
		}
		err := workflow.ExecuteActivity(ctx, a.DeliverWebhook, activities.DeliverInput{
			EventID: in.EventID, EndpointID: in.EndpointID, WorkflowID: id,
			Attempt: attempt, DeliveryID: rowID, At: at, NextDelay: next,
		}).Get(ctx, &out)
		if err != nil {
			return DeliveryResult{}, err
		}
		if out.Done {
			return DeliveryResult{Status: out.Status, Attempts: attempt}, nil
		}
	}
	return DeliveryResult{Status: out.Status, Attempts: len(Schedule)}, nil
}
