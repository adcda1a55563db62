package notify

import (
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/workflows/presets"
)

// EmailWorkflowName is the registered email workflow type.
const EmailWorkflowName = "notify.Email"

// EmailWorkflowID is the id of an event's email workflow.
func EmailWorkflowID(eventID string) string { return "email/" + eventID }

// EmailWorkflow sends an event's emails to the parties. The activity
// retries with backoff for a day while the mail server is away; each
// message is claimed in the database before it is sent, so a retry never
// sends one twice.
func EmailWorkflow(ctx workflow.Context, eventID string) error {
	ctx = presets.EventEmails(ctx)
	var a *activities.Mail
	return workflow.ExecuteActivity(ctx, a.SendEventEmails, eventID).Get(ctx, nil)
}

// AccountEmailWorkflowName is the registered account email workflow type.
const AccountEmailWorkflowName = "notify.AccountEmail"

// AccountEmailWorkflowID is the id of an account notice's email workflow.
func AccountEmailWorkflowID(noticeID string) string { return "account-email/" + noticeID }

// AccountEmailWorkflow sends an account notice's letter (a verification or
// reset token, a security notice), with the event emails' retries; the
// activity claims the message before it sends, so it is sent once.
func AccountEmailWorkflow(ctx workflow.Context, noticeID string) error {
	ctx = presets.EventEmails(ctx)
	var a *activities.Mail
	return workflow.ExecuteActivity(ctx, a.SendAccountEmail, noticeID).Get(ctx, nil)
}
