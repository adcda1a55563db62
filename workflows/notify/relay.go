package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/internal/events"
	"github.com/payments-platform/payments/internal/store"
)

// Relay moves committed events from the store's outbox to Temporal: for
// each event not yet dispatched, oldest first, it starts the delivery
// workflow of every enabled endpoint subscribed to it and the event's email
// workflow, then marks the event dispatched. Workflow ids are derived from
// the event, and a start that finds its workflow there already is a
// success, so a relay that dies between a start and the mark, or two
// workers' relays racing, never deliver an event twice. Every worker
// process runs one.
type Relay struct {
	Store     *store.Store
	Temporal  client.Client
	TaskQueue string
	Logger    *slog.Logger
	// Interval is how often the outbox is read; 500 ms when zero.
	Interval time.Duration
	// Emails starts the events' email workflows too.
	Emails bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// relayBatch is how many events one read of the outbox takes.
const relayBatch = 100

// Run dispatches events until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.Drain(ctx); err != nil && ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "event relay: will retry", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Drain dispatches every event and account notice not yet dispatched and
// returns how many it dispatched. Each of the two outboxes stops at the
// first row it cannot dispatch (the next Drain starts there again); one
// outbox failing does not hold the other back (a reset letter does not
// wait for a webhook endpoint's trouble).
func (r *Relay) Drain(ctx context.Context) (int, error) {
	n, errEvents := r.drainEvents(ctx)
	m, errNotices := r.drainNotices(ctx)
	return n + m, errors.Join(errEvents, errNotices)
}

// drainNotices starts the email workflow of every account notice not yet
// dispatched, oldest first (none without a mailer: they are marked
// dispatched all the same, as events are).
func (r *Relay) drainNotices(ctx context.Context) (int, error) {
	n := 0
	for {
		ns, err := r.Store.UndispatchedNotices(ctx, relayBatch)
		if err != nil || len(ns) == 0 {
			return n, err
		}
		for _, nt := range ns {
			if r.Emails {
				if err := r.start(ctx, AccountEmailWorkflowID(nt.ID), AccountEmailWorkflowName, nt.ID); err != nil {
					return n, err
				}
			}
			if err := r.Store.MarkNoticeDispatched(ctx, nt.ID, r.now()); err != nil {
				return n, err
			}
			n++
		}
	}
}

func (r *Relay) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Relay) drainEvents(ctx context.Context) (int, error) {
	n := 0
	for {
		evs, err := r.Store.UndispatchedEvents(ctx, relayBatch)
		if err != nil || len(evs) == 0 {
			return n, err
		}
		for _, ev := range evs {
			if err := r.dispatch(ctx, ev); err != nil {
				return n, err
			}
			n++
		}
	}
}

func (r *Relay) dispatch(ctx context.Context, ev *ent.Event) error {
	eps, err := r.Store.EndpointsFor(ctx, ev.MerchantID)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if !events.Subscribed(ep.EnabledEvents, ev.Type) {
			continue
		}
		err := r.start(ctx, DeliveryWorkflowID(ev.ID, ep.ID), DeliveryWorkflowName,
			DeliveryInput{EventID: ev.ID, EndpointID: ep.ID})
		if err != nil {
			return err
		}
	}
	if r.Emails {
		if err := r.start(ctx, EmailWorkflowID(ev.ID), EmailWorkflowName, ev.ID); err != nil {
			return err
		}
	}
	return r.Store.MarkDispatched(ctx, ev.ID, r.now())
}

// start starts a workflow once: a workflow with its id, running or closed,
// counts as started.
func (r *Relay) start(ctx context.Context, id, name string, input any) error {
	_, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             r.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, name, input)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return fmt.Errorf("start %s: %w", id, err)
	}
	return nil
}
