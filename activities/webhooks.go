package activities

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/delivery"
	"github.com/payments-platform/payments/ent/webhookendpoint"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/webhooks"
)

// Webhooks holds the activity that sends an event to an endpoint.
type Webhooks struct {
	DB *store.Store
	// Client is the deliveries' HTTP client (webhooks.URLPolicy.Client).
	Client *http.Client
	// Policy is checked again on the endpoint's URL before each attempt.
	Policy webhooks.URLPolicy
	// Sealer opens the endpoints' signing secrets.
	Sealer *webhooks.Sealer
	// Render is an event's JSON body, as the merchant sees it.
	Render func(*ent.Event) ([]byte, error)
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// DeliverInput is one attempt of a delivery.
type DeliverInput struct {
	EventID, EndpointID string
	// WorkflowID is the delivery's workflow, Attempt its attempt (1 for the
	// first), DeliveryID the attempt's row.
	WorkflowID string
	Attempt    int
	DeliveryID string
	// At is when the workflow started the attempt: the row's created_at.
	At time.Time
	// NextDelay is how long after a failed attempt the next one follows;
	// 0 after the last attempt.
	NextDelay time.Duration
}

// DeliverOutput is the attempt's outcome for the workflow.
type DeliverOutput struct {
	// Done: no further attempt (it succeeded, failed for good, or the
	// endpoint is gone or disabled).
	Done bool
	// Status is the row's status: succeeded, failed or pending (never for
	// a done delivery).
	Status string
	// ResponseStatus is the receiver's HTTP status, 0 when none came.
	ResponseStatus int
}

func (a *Webhooks) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// DeliverWebhook makes one attempt and records it: a pending row while it
// runs, then the outcome, with the next attempt's time when one follows. A
// 410 disables the endpoint. An endpoint deleted or disabled meanwhile ends
// the delivery (a disabled one with a failed row saying so). Retries of the
// activity (a crash, the database away) reach the same row.
func (a *Webhooks) DeliverWebhook(ctx context.Context, in DeliverInput) (DeliverOutput, error) {
	ev, err := a.DB.EventByID(ctx, in.EventID)
	if err != nil {
		return DeliverOutput{}, eventGone(err)
	}
	ep, err := a.DB.EndpointByID(ctx, in.EndpointID)
	if errs.KindOf(err) == errs.KindNotFound {
		a.Logger.InfoContext(ctx, "webhook delivery ends: endpoint deleted", "event_id", in.EventID, "endpoint_id", in.EndpointID)
		return DeliverOutput{Done: true, Status: string(delivery.StatusFailed)}, nil
	}
	if err != nil {
		return DeliverOutput{}, err
	}
	rec := store.DeliveryRecord{
		ID: in.DeliveryID, EventID: ev.ID, EndpointID: ep.ID, AccountID: ep.AccountID,
		WorkflowID: in.WorkflowID, Attempt: in.Attempt, Status: delivery.StatusPending, At: in.At,
	}
	fail := func(msg string) (DeliverOutput, error) {
		rec.Status, rec.Error = delivery.StatusFailed, msg
		if _, err := a.DB.SaveDelivery(ctx, rec); err != nil {
			return DeliverOutput{}, err
		}
		return DeliverOutput{Done: true, Status: string(rec.Status)}, nil
	}
	if ep.Status != webhookendpoint.StatusEnabled {
		return fail("the endpoint is disabled")
	}
	secrets, err := a.secrets(ep)
	if err != nil {
		a.Logger.ErrorContext(ctx, "webhook secret cannot be opened", "endpoint_id", ep.ID, "error", err)
		return fail("the endpoint's signing secret cannot be read; rotate it")
	}
	// The URL's form and host name; the address is checked by the
	// client's dialer on the address it dials, so a name that does not
	// resolve just now is a connection error, retried on the schedule.
	if err := a.Policy.CheckURL(ep.URL); err != nil {
		return fail("refused: " + err.Error())
	}
	body, err := a.Render(ev)
	if err != nil {
		return DeliverOutput{}, unrenderable(err)
	}
	if _, err := a.DB.SaveDelivery(ctx, rec); err != nil {
		return DeliverOutput{}, err
	}
	res := webhooks.Send(ctx, a.Client, webhooks.Message{URL: ep.URL, ID: ev.ID, Secrets: secrets, Body: body, At: a.now()})
	rec.ResponseStatus, rec.Error, rec.ResponseBody = res.Status, res.Error, res.Body
	out := DeliverOutput{ResponseStatus: res.Status, Done: true}
	switch {
	case res.Verdict == webhooks.Succeeded:
		rec.Status = delivery.StatusSucceeded
	case res.Verdict == webhooks.Retry && in.NextDelay > 0:
		rec.Status = delivery.StatusFailed
		next := a.now().Add(in.NextDelay)
		rec.NextAttemptAt, out.Done = &next, false
	default:
		rec.Status = delivery.StatusFailed
	}
	if res.Verdict == webhooks.Gone {
		if err := a.DB.DisableGoneEndpoint(ctx, ep.ID, a.now()); err != nil {
			return DeliverOutput{}, err
		}
		a.Logger.WarnContext(ctx, "webhook endpoint disabled: the receiver answered 410", "endpoint_id", ep.ID)
	}
	rec.At = in.At
	if _, err := a.DB.SaveDelivery(ctx, rec); err != nil {
		return DeliverOutput{}, err
	}
	out.Status = string(rec.Status)
	return out, nil
}

// eventGone makes a missing event final (it never comes back: events are
// not deleted, so this is a bug to see, not to retry forever); other
// errors are the store's.
func eventGone(err error) error {
	if errs.KindOf(err) == errs.KindNotFound {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotFound, err)
	}
	return refusedForGood(err)
}

// secrets are the endpoint's signing secrets, current first, then the
// previous one while its overlap lasts.
func (a *Webhooks) secrets(ep *ent.WebhookEndpoint) ([]string, error) {
	cur, err := a.Sealer.Open(ep.Secret)
	if err != nil {
		return nil, err
	}
	out := []string{cur}
	if ep.PreviousSecret != "" && ep.PreviousSecretExpiresAt != nil && a.now().Before(*ep.PreviousSecretExpiresAt) {
		prev, err := a.Sealer.Open(ep.PreviousSecret)
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	return out, nil
}
