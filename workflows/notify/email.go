package notify

import (
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/workflows/presets"
)

// EmailWorkflow sends an event's emails to the parties. The activity
// retries with backoff for a day while the mail server is away; each
// message is claimed in the database before it is sent, so a retry never
// sends one twice.
func EmailWorkflow(ctx workflow.Context, eventID string) error {
	ctx = presets.EventEmails(ctx)
	var a *activities.Mail
	return workflow.ExecuteActivity(ctx, a.SendEventEmails, eventID).Get(ctx, nil)
}

// AccountEmailWorkflow sends an account notice's letter (a verification or
// reset token, a security notice), with the event emails' retries; the
// activity claims the message before it sends, so it is sent once.
func AccountEmailWorkflow(ctx workflow.Context, noticeID string) error {
	ctx = presets.EventEmails(ctx)
	var a *activities.Mail
	return workflow.ExecuteActivity(ctx, a.SendAccountEmail, noticeID).Get(ctx, nil)
}
