// Package platform assembles the Temporal worker from its parts, so that
// paymentsd and the integration tests run exactly the same worker.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/mail"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/webhooks"
	"github.com/payments-platform/payments/workflows/dispute"
	"github.com/payments-platform/payments/workflows/maintenance"
	"github.com/payments-platform/payments/workflows/notify"
	"github.com/payments-platform/payments/workflows/payment"
	"github.com/payments-platform/payments/workflows/refund"
)

// WorkerOptions are what a worker needs besides its Temporal client.
type WorkerOptions struct {
	Namespace string
	TaskQueue string
	Store     *store.Store
	Gateway   gateway.Gateway
	Logger    *slog.Logger
	// Schedules creates the housekeeping schedules (off in most tests).
	Schedules bool

	// WebhookURLs is where deliveries may go (checked again at send time).
	WebhookURLs webhooks.URLPolicy
	// WebhookSealer opens the endpoints' signing secrets: the API's key.
	WebhookSealer *webhooks.Sealer
	// RenderEvent is a webhook's body; api.EventPayload when nil.
	RenderEvent func(*ent.Event) ([]byte, error)
	// Mailer sends the events' emails; without one no email is sent.
	Mailer   mail.Mailer
	MailFrom string
	// Relay runs the outbox relay in this worker: every worker process of
	// the platform does (see notify.Relay).
	Relay bool
	// ClosedAccountRetention is how long closed accounts keep their name
	// and email (config.DefaultClosedAccountRetention when zero).
	ClosedAccountRetention time.Duration
	// StopTimeout is how long Stop waits for running activities to finish
	// (PAYMENTS_WORKER_STOP_TIMEOUT); zero interrupts them at once.
	StopTimeout time.Duration
}

// deliveryTimeout bounds one webhook attempt (connect, TLS, answer).
const deliveryTimeout = 15 * time.Second

// platformWorker is the Temporal worker and, with WorkerOptions.Relay, the
// outbox relay: Stop stops both.
type platformWorker struct {
	worker.Worker
	stopRelay context.CancelFunc
	relayDone chan struct{}
}

func (w *platformWorker) Stop() {
	if w.stopRelay != nil {
		w.stopRelay()
		<-w.relayDone
	}
	w.Worker.Stop()
}

// SearchAttributeTypes names every custom search attribute of the
// platform's workflows with its type, for registration: the payment
// workflow's, and those the refund workflow adds.
func SearchAttributeTypes() map[string]string {
	all := maps.Clone(payment.SearchAttributeTypes)
	maps.Copy(all, refund.SearchAttributeTypes)
	maps.Copy(all, dispute.SearchAttributeTypes)
	return all
}

// EnsureSearchAttributes registers the search attributes that are missing;
// the workflows keep them current, and operators search by them.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	attrs := map[string]enums.IndexedValueType{}
	for name, typ := range SearchAttributeTypes() {
		v, ok := enums.IndexedValueType_shorthandValue[typ]
		if !ok {
			return fmt.Errorf("search attribute %s: unknown type %s", name, typ)
		}
		attrs[name] = enums.IndexedValueType(v)
	}
	list, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	for name := range attrs {
		if _, ok := list.GetCustomAttributes()[name]; ok {
			delete(attrs, name)
		}
	}
	if len(attrs) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: attrs})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

// StartWorker registers every workflow and activity and starts polling.
func StartWorker(ctx context.Context, c client.Client, o WorkerOptions) (worker.Worker, error) {
	if o.WebhookSealer == nil {
		return nil, errors.New("start worker: no WebhookSealer to open the webhook endpoints' secrets with")
	}
	if err := EnsureSearchAttributes(ctx, c, o.Namespace); err != nil {
		return nil, err
	}
	w := worker.New(c, o.TaskQueue, worker.Options{WorkerStopTimeout: o.StopTimeout})
	maintenance.Register(w)
	w.RegisterWorkflowWithOptions(payment.Workflow, workflow.RegisterOptions{Name: payment.WorkflowName})
	w.RegisterWorkflowWithOptions(payment.Reconcile, workflow.RegisterOptions{Name: payment.ReconcileWorkflowName})
	w.RegisterWorkflowWithOptions(refund.Workflow, workflow.RegisterOptions{Name: refund.WorkflowName})
	w.RegisterWorkflowWithOptions(dispute.Workflow, workflow.RegisterOptions{Name: dispute.WorkflowName})
	w.RegisterActivity(&activities.Store{DB: o.Store, Logger: o.Logger, ClosedAccountRetention: o.ClosedAccountRetention})
	w.RegisterActivity(&activities.Gateway{GW: o.Gateway, Logger: o.Logger})
	w.RegisterWorkflowWithOptions(notify.DeliveryWorkflow, workflow.RegisterOptions{Name: notify.DeliveryWorkflowName})
	w.RegisterWorkflowWithOptions(notify.EmailWorkflow, workflow.RegisterOptions{Name: notify.EmailWorkflowName})
	w.RegisterWorkflowWithOptions(notify.AccountEmailWorkflow, workflow.RegisterOptions{Name: notify.AccountEmailWorkflowName})
	render := o.RenderEvent
	if render == nil {
		render = api.EventPayload
	}
	w.RegisterActivity(&activities.Webhooks{
		DB: o.Store, Client: o.WebhookURLs.Client(deliveryTimeout), Policy: o.WebhookURLs,
		Sealer: o.WebhookSealer, Render: render, Logger: o.Logger,
	})
	w.RegisterActivity(&activities.Mail{DB: o.Store, Mailer: o.Mailer, From: o.MailFrom, Platform: "Payments", Logger: o.Logger})
	if err := w.Start(); err != nil {
		return nil, fmt.Errorf("start worker on task queue %q: %w", o.TaskQueue, err)
	}
	if o.Schedules {
		if err := maintenance.EnsureSchedule(ctx, c, o.TaskQueue); err != nil {
			w.Stop()
			return nil, err
		}
	}
	pw := &platformWorker{Worker: w}
	if o.Relay {
		relay := &notify.Relay{Store: o.Store, Temporal: c, TaskQueue: o.TaskQueue, Logger: o.Logger, Emails: o.Mailer != nil}
		var relayCtx context.Context
		relayCtx, pw.stopRelay = context.WithCancel(context.WithoutCancel(ctx))
		pw.relayDone = make(chan struct{})
		go func() {
			defer close(pw.relayDone)
			relay.Run(relayCtx)
		}()
	}
	return pw, nil
}
