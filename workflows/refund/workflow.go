package refund

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	entrefund "github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

// Nil receivers that name activity methods.
var (
	gw *activities.Gateway
	db *activities.Store
)

// run is one refund's state inside its workflow. rec is always what the
// database holds: changes are made to a copy and become rec only once saved.
type run struct {
	in      Input
	rec     store.RefundRecord
	payRef  string // the payment's intent at the gateway
	stored  bool   // the refund has a row
	refused error  // the balance refused the refund: no row, the run ends
	// answered: the gateway has given its first answer (or the refund
	// was refused), so UpdateAwaitResult may return.
	answered bool
	// accepted: the gateway took the refund (pending or succeeded), so its
	// journal is posted and a later failure must reverse it.
	accepted  bool
	busy      bool
	events    map[string]bool
	attrState entrefund.Status
	attrAttn  bool
}

// Workflow runs one refund: it takes the amount from the payment's balance
// and stores the refund, asks the gateway (a fast local attempt, then a
// regular activity with the same key), records each answer with its
// journal, and waits for the gateway's events while the refund is pending.
// A run with in.Resume handles a late event about a refund whose first run
// has ended.
func Workflow(ctx workflow.Context, in Input) (store.RefundRecord, error) {
	if in.Logic < 0 || in.Logic > versionFirst {
		// As workflow.GetVersion does for a version it does not know: the
		// task fails and is tried again until a worker that knows it runs.
		panic(fmt.Sprintf("refund workflow: the run declares logic version %d; this code knows %d", in.Logic, versionFirst))
	}
	r := &run{in: in, events: map[string]bool{}, attrState: entrefund.StatusPending}
	if err := r.registerHandlers(ctx); err != nil {
		return r.rec, err
	}
	sigCh := workflow.GetSignalChannel(ctx, SignalGatewayEvent)
	if in.Resume {
		if err := r.load(ctx); err != nil {
			return r.rec, err
		}
	} else if err := r.create(ctx); err != nil {
		return r.rec, err
	}
	if r.refused != nil {
		// The refusal is the update's answer to the caller; the run itself
		// did its job (nothing to refund) and completes, with no row, its
		// RefundStatus "refused" for operators.
		err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
		return r.rec, err
	}
	for {
		var ev GatewayEvent
		for sigCh.ReceiveAsync(&ev) {
			r.onEvent(ctx, ev)
		}
		if r.rec.Status != entrefund.StatusPending {
			// Final, or succeeded (a later failure comes as an event to a
			// new run, Resume): done once no event waits.
			if sigCh.Len() == 0 {
				break
			}
			continue
		}
		// Pending at the gateway: wait for its event, asking operators to
		// look once it has taken long.
		waited := workflow.Now(ctx).Sub(r.rec.CreatedAt)
		if wait := PendingAttentionAfter - waited; wait > 0 && !r.rec.NeedsAttention {
			if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return sigCh.Len() > 0 }); err != nil {
				return r.rec, err
			}
			continue
		}
		if !r.rec.NeedsAttention {
			next := r.rec
			next.NeedsAttention = true
			next.AttentionReason = "the gateway has not confirmed the refund for " + PendingAttentionAfter.String()
			if err := r.commit(ctx, next, nil); err != nil {
				return r.rec, err
			}
		}
		if err := workflow.Await(ctx, func() bool { return sigCh.Len() > 0 }); err != nil {
			return r.rec, err
		}
	}
	if err := workflow.Await(ctx, func() bool { return !r.busy && workflow.AllHandlersFinished(ctx) }); err != nil {
		return r.rec, err
	}
	return r.rec, nil
}

// versionFirst is the first logic of the refund workflow.
const versionFirst workflow.Version = 1

func (r *run) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (store.RefundRecord, error) {
		return r.rec, nil
	}); err != nil {
		return err
	}
	await := func(done func() bool) func(workflow.Context) (store.RefundRecord, error) {
		return func(ctx workflow.Context) (store.RefundRecord, error) {
			if err := workflow.Await(ctx, done); err != nil {
				return r.rec, err
			}
			if r.refused != nil {
				return r.rec, r.refused
			}
			return r.rec, nil
		}
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateAwaitResult,
		await(func() bool { return r.answered || r.refused != nil })); err != nil {
		return err
	}
	return workflow.SetUpdateHandler(ctx, UpdateAwaitRecorded,
		await(func() bool { return r.stored || r.refused != nil }))
}

// load reads a stored refund, for a run that handles a late event.
func (r *run) load(ctx workflow.Context) error {
	var rec store.RefundRecord
	if err := workflow.ExecuteLocalActivity(presets.LocalStoreWrite(ctx), db.LoadRefund, r.in.RefundID).Get(ctx, &rec); err != nil {
		return err
	}
	r.rec, r.stored, r.answered = rec, true, true
	// The refund's journal was posted when the gateway took it: a refund
	// that succeeded, or is pending with the gateway's reference (pending
	// without one: the gateway never answered).
	r.accepted = rec.Status == entrefund.StatusSucceeded ||
		(rec.Status == entrefund.StatusPending && rec.GatewayReference != "")
	r.attrState, r.attrAttn = rec.Status, rec.NeedsAttention
	return nil
}

// create takes the amount from the payment's balance and stores the
// refund, then asks the gateway.
func (r *run) create(ctx workflow.Context) error {
	in := r.in
	r.busy = true
	defer func() { r.busy = false }()
	var created activities.CreatedRefund
	err := workflow.ExecuteLocalActivity(presets.LocalStoreWrite(ctx), db.CreateRefund, store.RefundRecord{
		ID: in.RefundID, PaymentID: in.PaymentID, MerchantID: in.MerchantID,
		Amount: in.Amount, Currency: in.Currency, Reason: entrefund.Reason(in.Reason),
		Metadata: in.Metadata, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		CreatedAt: in.CreatedAt,
	}).Get(ctx, &created)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && (appErr.Type() == ErrTypeFailedPrecondition ||
		appErr.Type() == ErrTypeInvalidArgument || appErr.Type() == ErrTypeNotFound) {
		workflow.GetLogger(ctx).Info("refund refused by the payment's balance", "refund_id", in.RefundID, "reason", appErr.Message())
		r.refused = temporal.NewNonRetryableApplicationError(appErr.Message(), appErr.Type(), nil)
		return workflow.UpsertTypedSearchAttributes(ctx, AttrStatus.ValueSet("refused"))
	}
	if err != nil {
		return err
	}
	r.rec, r.payRef, r.stored = created.Refund, created.PaymentReference, true
	return r.refund(ctx)
}

// request is the gateway call; its key is the workflow id and the step,
// made once, so every retry of it refunds at most once.
func (r *run) request() gateway.RefundRequest {
	reason := string(r.rec.Reason)
	switch r.rec.Reason {
	case entrefund.ReasonUnspecified, entrefund.ReasonOther:
		reason = ""
	}
	return gateway.RefundRequest{
		Gateway: r.rec.Gateway, IdempotencyKey: r.rec.WorkflowID + "/refund/1",
		PaymentID: r.rec.PaymentID, Reference: r.payRef,
		Amount: r.rec.Amount, Currency: r.rec.Currency, Reason: reason,
	}
}

// refund asks the gateway: once as a local activity inside the workflow
// task, and if that gets no answer, as a regular activity retried with the
// same key while the gateway remembers it. A refusal fails the refund (and
// frees its amount); no answer at all leaves it pending, marked for
// operators: a refund that may have been made is never recorded as failed
// on a guess, and a new key could refund twice.
func (r *run) refund(ctx workflow.Context) error {
	req := r.request()
	var res gateway.RefundResult
	err := workflow.ExecuteLocalActivity(presets.GatewayFastPath(ctx), gw.Refund, req).Get(ctx, &res)
	if err != nil && !isInvalid(err) {
		workflow.GetLogger(ctx).Info("gateway fast path failed; retrying as an activity", "err", err)
		r.answered = true // the caller gets the pending refund meanwhile
		res = gateway.RefundResult{}
		err = workflow.ExecuteActivity(presets.GatewayCall(ctx), gw.Refund, req).Get(ctx, &res)
	}
	// The caller gets the answer once it is recorded.
	defer func() { r.answered = true }()
	next := r.rec
	switch {
	case isInvalid(err):
		next.Status, next.FailureReason = entrefund.StatusFailed, failureCode(err)
		return r.commit(ctx, next, nil)
	case err != nil:
		next.NeedsAttention = true
		next.AttentionReason = "the gateway did not answer the refund: " + err.Error()
		return r.commit(ctx, next, nil)
	}
	return r.apply(ctx, res.Status, res.Reference, res.FailureCode)
}

// apply records what the gateway says about the refund, with the journal
// of the money that moved: the refund's when the gateway first takes it,
// the reversal when a taken refund fails.
func (r *run) apply(ctx workflow.Context, st gateway.RefundStatus, ref, code string) error {
	next := r.rec
	if ref != "" {
		next.GatewayReference = ref
	}
	next.NeedsAttention, next.AttentionReason = false, ""
	var journal *store.Journal
	switch st {
	case gateway.RefundPending, gateway.RefundSucceeded:
		next.Status = entrefund.StatusPending
		if st == gateway.RefundSucceeded {
			next.Status = entrefund.StatusSucceeded
		}
		if !r.accepted {
			journal = store.RefundJournal(next, workflow.Now(ctx))
		}
	case gateway.RefundFailed, gateway.RefundCanceled:
		next.Status = entrefund.StatusFailed
		if st == gateway.RefundCanceled {
			next.Status = entrefund.StatusCanceled
		}
		next.FailureReason = code
		if next.FailureReason == "" && st == gateway.RefundFailed {
			next.FailureReason = "unknown"
		}
		if r.accepted {
			journal = store.RefundReversalJournal(next, workflow.Now(ctx))
		}
	default:
		workflow.GetLogger(ctx).Error("gateway answered a refund status this workflow does not know", "status", st)
		return nil
	}
	if err := r.commit(ctx, next, journal); err != nil {
		return err
	}
	if store.Holds(next.Status) {
		r.accepted = true
	}
	return nil
}

// onEvent applies a gateway event: only forward moves (pending to a final
// state, succeeded to failed), each event once.
func (r *run) onEvent(ctx workflow.Context, ev GatewayEvent) {
	log := workflow.GetLogger(ctx)
	if r.events[ev.EventID] {
		return
	}
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return
	}
	if ev.Reference != "" && r.rec.GatewayReference != "" && ev.Reference != r.rec.GatewayReference {
		log.Error("gateway event about another refund ignored", "event", ev.EventID, "reference", ev.Reference)
		return
	}
	if !forward(r.rec.Status, ev.Status) {
		log.Info("gateway event ignored: not a forward move", "event", ev.EventID, "from", r.rec.Status, "to", ev.Status)
		r.events[ev.EventID] = true
		return
	}
	r.busy = true
	defer func() { r.busy = false }()
	if err := r.apply(ctx, ev.Status, ev.Reference, ev.FailureCode); err != nil {
		// Not marked as seen: a redelivery may apply it.
		log.Error("saving a gateway event failed", "event", ev.EventID, "err", err)
		return
	}
	r.events[ev.EventID] = true
}

// forward reports whether a refund in status from may move to what the
// gateway reports.
func forward(from entrefund.Status, to gateway.RefundStatus) bool {
	switch from {
	case entrefund.StatusPending:
		return to == gateway.RefundSucceeded || to == gateway.RefundFailed || to == gateway.RefundCanceled
	case entrefund.StatusSucceeded:
		return to == gateway.RefundFailed
	}
	return false
}

// commit saves next (with the next version) and its journal in a local
// activity; only then does next become the run's state.
func (r *run) commit(ctx workflow.Context, next store.RefundRecord, j *store.Journal) error {
	next.Version = r.rec.Version + 1
	next.UpdatedAt = workflow.Now(ctx)
	if err := workflow.ExecuteLocalActivity(presets.LocalStoreWrite(ctx), db.SaveRefund, next, j).Get(ctx, nil); err != nil {
		return err
	}
	r.rec = next
	var attrs []temporal.SearchAttributeUpdate
	if next.Status != r.attrState {
		attrs = append(attrs, AttrStatus.ValueSet(string(next.Status)))
		r.attrState = next.Status
	}
	if next.NeedsAttention != r.attrAttn {
		attrs = append(attrs, AttrNeedsAttention.ValueSet(next.NeedsAttention))
		r.attrAttn = next.NeedsAttention
	}
	if len(attrs) > 0 {
		return workflow.UpsertTypedSearchAttributes(ctx, attrs...)
	}
	return nil
}

// isInvalid reports whether the gateway refused the request for good.
func isInvalid(err error) bool { return activities.IsGatewayRefusal(err) }

// failureCode is the gateway's code of a refusal, "refused" without one.
func failureCode(err error) string {
	if code := activities.GatewayRefusalCode(err); code != "" {
		return code
	}
	return "refused"
}
