package payment

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/ent/ledgerentry"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

// Nil receivers that name activity methods.
var (
	gw *activities.Gateway
	db *activities.Store
)

// run is one payment's state inside its workflow. rec is always what the
// database holds: changes are made to a copy and become rec only once saved.
type run struct {
	in       Input
	rec      store.PaymentRecord
	hardened bool // the run follows versionHardened (else legacy.go)
	answered bool // the gateway has given its first answer
	recorded bool // the payment has a row
	busy     bool // a gateway call or a save is in flight
	handling int  // gateway events taken from the channel and not yet handled
	// attrStatus and attrAttention are the search attributes as last set.
	attrStatus    entpayment.Status
	attrAttention bool
	events        map[string]bool
	// attempts counts the attempts of each gateway step, for its keys.
	attempts map[string]int

	// charging is set while the first charge is unanswered; an event that
	// proves its outcome is put in chargeEvent and stops the retries.
	charging     bool
	chargeEvent  *GatewayEvent
	cancelCreate workflow.CancelFunc

	// pending is a step the gateway has not confirmed (or a follow-up such
	// as a void), tried again at pending.at.
	pending *pendingStep
	// unsaved is a state the store refused, saved again at unsaved.at.
	unsaved *unsavedState
	// reports are gateway reports about the finished payment that
	// contradict it, to reconcile.
	reports []GatewayEvent
	// retryReports is when reports are tried again after a failure.
	retryReports time.Time
	reportTries  int
}

// The steps that may be pending.
const (
	opCapture = "capture"
	opCancel  = "cancel"
	opExpire  = "expire"
	opVoid    = "void"
)

// pendingStep is a step to try again.
type pendingStep struct {
	op     string
	amount int64  // capture
	reason string // cancel, expire, void: the failure code to record
	tries  int
	at     time.Time
	// final marks the void sent again after presets.SearchLag.
	final bool
}

// unsavedState is a state the store refused for good, with its journal.
type unsavedState struct {
	next    store.PaymentRecord
	journal *store.Journal
	tries   int
	at      time.Time
	err     string
}

// Workflow runs one payment to a final state and returns it.
func Workflow(ctx workflow.Context, in Input) (store.PaymentRecord, error) {
	r := &run{in: in, events: map[string]bool{}, attempts: map[string]int{}}
	// The logic version is declared by the input or recorded by
	// workflow.GetVersion before any other command (versions.go): runs
	// started by the first version's code go on in legacy.go.
	r.hardened = logicVersion(ctx, in) >= versionHardened
	r.rec = store.PaymentRecord{
		ID: in.PaymentID, MerchantID: in.MerchantID, CustomerID: in.CustomerID,
		Amount: in.Amount, Currency: in.Currency,
		Status:        entpayment.StatusProcessing,
		CaptureMethod: entpayment.CaptureMethodAutomatic,
		PaymentMethod: in.PaymentMethod, Description: in.Description, Metadata: in.Metadata,
		Gateway: in.Gateway, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		CreatedAt: in.CreatedAt, UpdatedAt: in.CreatedAt,
	}
	if in.ManualCapture {
		r.rec.CaptureMethod = entpayment.CaptureMethodManual
	}
	if err := r.registerHandlers(ctx); err != nil {
		return r.rec, err
	}
	// The starter normally sets the search attributes (no extra history
	// event); a workflow started without them sets them itself.
	r.attrStatus = entpayment.StatusProcessing
	if _, ok := workflow.GetTypedSearchAttributes(ctx).GetKeyword(AttrPaymentID); !ok {
		if err := workflow.UpsertTypedSearchAttributes(ctx, StartAttributes(in)...); err != nil {
			return r.rec, err
		}
	}
	if !r.hardened {
		return r.runLegacy(ctx)
	}
	return r.runHardened(ctx)
}

// runHardened reads gateway events from the start (an event may settle a
// charge whose call is still being retried), makes the first charge, then
// waits for updates, events and timers until the payment is final and no
// step is left to confirm.
func (r *run) runHardened(ctx workflow.Context) (store.PaymentRecord, error) {
	sigCh := workflow.GetSignalChannel(ctx, SignalGatewayEvent)
	// Events stay in the channel until they are taken here (a blocked
	// Receive would take one out of sight of the end-of-run drain below),
	// and r.handling counts those taken and not yet handled: the run does
	// not end while one is, or it would be lost (a late success needs a
	// refund).
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			if err := workflow.Await(ctx, func() bool { return sigCh.Len() > 0 }); err != nil {
				return
			}
			var ev GatewayEvent
			if !sigCh.ReceiveAsync(&ev) {
				continue
			}
			r.handling++
			r.onEvent(ctx, ev)
			r.handling--
		}
	})
	if err := r.charge(ctx); err != nil {
		return r.rec, err
	}
	// An event that proved the outcome while the fast path was in flight
	// was kept for the charge, which took the fast path's answer instead:
	// it is handled as any later event (it may be ahead of that answer, or
	// contradict it).
	if ev := r.chargeEvent; ev != nil && !r.events[ev.EventID] {
		r.onEvent(ctx, *ev)
	}
	for {
		if err := r.loop(ctx); err != nil {
			return r.rec, err
		}
		// Events delivered with the last workflow task are handled before
		// the run ends: a late success may need a refund.
		drained := false
		for {
			var ev GatewayEvent
			if !sigCh.ReceiveAsync(&ev) {
				break
			}
			r.onEvent(ctx, ev)
			drained = true
		}
		if drained || !r.done() {
			continue
		}
		// Let update handlers that are finishing complete before the run
		// ends; an event that came meanwhile is handled first.
		if err := workflow.Await(ctx, func() bool { return !r.busy && workflow.AllHandlersFinished(ctx) }); err != nil {
			return r.rec, err
		}
		if sigCh.Len() == 0 && r.done() {
			break
		}
	}
	return r.rec, nil
}

// done reports whether nothing is left to do: the payment is final and no
// step, save, report or event waits.
func (r *run) done() bool {
	return r.final() && r.pending == nil && r.unsaved == nil && len(r.reports) == 0 && !r.busy && r.handling == 0
}

// loop runs the payment's life after the first charge: expiry timers,
// pending steps and refused saves retried on durable timers, and reports
// about a finished payment, until done.
func (r *run) loop(ctx workflow.Context) error {
	for {
		if r.busy {
			if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
				return err
			}
			continue
		}
		now := workflow.Now(ctx)
		switch {
		case r.unsaved != nil && !now.Before(r.unsaved.at):
			r.retrySave(ctx)
			continue
		case r.unsaved == nil && len(r.reports) > 0 && !now.Before(r.retryReports):
			r.reconcileReports(ctx)
			continue
		case r.unsaved == nil && r.pending != nil && !now.Before(r.pending.at):
			r.runPending(ctx)
			continue
		case r.done():
			return nil
		}
		wake, expires := r.nextWake()
		status, pend, unsaved, reports, handling := r.rec.Status, r.pending, r.unsaved, len(r.reports), r.handling
		changed := func() bool {
			return r.rec.Status != status || r.busy || r.pending != pend || r.unsaved != unsaved || len(r.reports) != reports
		}
		if wake.IsZero() {
			// Final, and an event is being handled: wait for its outcome.
			if err := workflow.Await(ctx, func() bool { return changed() || r.handling != handling }); err != nil {
				return err
			}
			continue
		}
		if wait := wake.Sub(now); wait > 0 {
			changed, err := workflow.AwaitWithTimeout(ctx, wait, changed)
			if err != nil {
				return err
			}
			if changed {
				continue
			}
		}
		if expires {
			r.expire(ctx)
		}
	}
}

// nextWake is when the loop must act next without being woken, and whether
// that is the expiry of the current status (rather than a retry).
func (r *run) nextWake() (time.Time, bool) {
	var wake time.Time
	expires := false
	consider := func(t time.Time, isExpiry bool) {
		if wake.IsZero() || t.Before(wake) {
			wake, expires = t, isExpiry
		}
	}
	if r.unsaved != nil {
		consider(r.unsaved.at, false)
	} else {
		if len(r.reports) > 0 {
			consider(r.retryReports, false)
		}
		if r.pending != nil {
			consider(r.pending.at, false)
		}
	}
	// A pending capture or cancel decides the authorization's fate itself;
	// nothing expires while a state is unsaved.
	if !r.final() && r.pending == nil && r.unsaved == nil {
		consider(r.deadline(), true)
	}
	return wake, expires
}

// key returns the idempotency key of the next attempt of a gateway step:
// workflow id, step, and the step's attempt number, counted in the
// workflow's state. A gateway saves its answer per key, refusals included
// (Stripe keeps them 24 hours), so a step tried again after a refusal or an
// unconfirmed attempt needs a key of its own.
func (r *run) key(step string) string {
	r.attempts[step]++
	return fmt.Sprintf("%s/%s/%d", r.rec.WorkflowID, step, r.attempts[step])
}

// createRequest is the first charge. Its key is made once: every retry of
// the create uses it, or a second intent could be made.
func (r *run) createRequest() gateway.CreateRequest {
	in := r.in
	return gateway.CreateRequest{
		Gateway: in.Gateway, IdempotencyKey: r.key("create"),
		PaymentID: in.PaymentID, Amount: in.Amount, Currency: in.Currency,
		PaymentMethod: in.PaymentMethod, ManualCapture: in.ManualCapture,
		Description: in.Description, ReturnURL: in.ReturnURL,
	}
}

// charge makes the first gateway call. Its fast path usually answers within
// the first workflow task, and then one write records the payment in its
// final state. Otherwise the payment is recorded as processing and the
// outcome is pursued until the gateway tells it; an unanswered charge may
// have happened, so it is never recorded as failed on a guess:
//   - the create is retried as a regular activity with the same key, in
//     rounds (retries at most 30 s apart while a customer may be waiting,
//     the first hour; 10 minutes apart after), for as long as the gateway
//     remembers the key;
//   - after each round the gateway is asked what it holds for the payment
//     (Find): an intent in any state but processing settles the payment;
//   - an event that proves the outcome settles it too, and stops the
//     retries;
//   - once the create has failed for an hour and the gateway answers that
//     it holds no intent for the payment, the payment fails
//     (gateway_unreachable), and a void is sent anyway (and again once the
//     gateway's search has caught up), so that a create still in flight
//     cannot take money later.
func (r *run) charge(ctx workflow.Context) error {
	req := r.createRequest()
	r.busy, r.charging = true, true
	defer func() { r.busy, r.charging = false, false }()
	var res gateway.Result
	err := workflow.ExecuteLocalActivity(presets.GatewayFastPath(ctx), gw.CreatePayment, req).Get(ctx, &res)
	switch {
	case err == nil:
		return r.settle(ctx, res)
	case isInvalid(err):
		return r.refuse(ctx, err)
	}
	log := workflow.GetLogger(ctx)
	log.Info("gateway fast path failed; retrying as an activity", "err", err)
	if err := r.save(ctx, r.rec, nil); err != nil {
		return err
	}
	started := workflow.Now(ctx)
	for {
		if ev := r.chargeEvent; ev != nil {
			r.events[ev.EventID] = true
			return r.settle(ctx, ev.result())
		}
		roundStart := workflow.Now(ctx)
		elapsed := roundStart.Sub(started)
		waiting := elapsed < presets.CustomerWaiting
		if elapsed < presets.GatewayRetryWindow {
			interval, round := presets.FastRetryInterval, presets.FastRound
			if !waiting {
				interval, round = presets.SlowRetryInterval, presets.SlowRound
			}
			actx, cancel := workflow.WithCancel(ctx)
			r.cancelCreate = cancel
			err := workflow.ExecuteActivity(presets.GatewayRound(actx, interval, round), gw.CreatePayment, req).Get(ctx, &res)
			r.cancelCreate = nil
			switch {
			case r.chargeEvent != nil:
				continue
			case err == nil:
				return r.settle(ctx, res)
			case isInvalid(err):
				return r.refuse(ctx, err)
			}
			log.Warn("the gateway has not answered the charge; asking it what it holds", "err", err, "for", elapsed)
		}
		var found gateway.Found
		ferr := workflow.ExecuteActivity(presets.GatewayLookup(ctx), gw.Find, r.findRequest()).Get(ctx, &found)
		switch {
		case r.chargeEvent != nil:
			continue
		case ferr == nil && found.Exists && found.Result.Status != gateway.StatusProcessing && found.Result.Status != "":
			return r.settle(ctx, found.Result)
		case ferr == nil && !found.Exists && !waiting:
			return r.failUnreachable(ctx)
		}
		if !waiting && !r.rec.NeedsAttention {
			next := r.rec
			attention(&next, "the gateway has not answered the charge for over an hour; it is retried and looked up until it does")
			if err := r.save(ctx, next, nil); err != nil {
				return err
			}
		}
		// Rounds are at least a retry interval apart, on a timer that an
		// event cuts short: once the key is forgotten only lookups are
		// left, and a round can end at once (a rate limit asking for more
		// time than the round has left) without making the loop spin.
		pause := presets.FastRetryInterval
		if !waiting {
			pause = presets.SlowRetryInterval
		}
		if rest := pause - workflow.Now(ctx).Sub(roundStart); rest > 0 {
			if _, err := workflow.AwaitWithTimeout(ctx, rest, func() bool { return r.chargeEvent != nil }); err != nil {
				return err
			}
		}
	}
}

func (r *run) findRequest() gateway.FindRequest {
	return gateway.FindRequest{Gateway: r.in.Gateway, PaymentID: r.rec.ID, Reference: r.rec.GatewayReference, Currency: r.rec.Currency}
}

// settle records the gateway's first answer.
func (r *run) settle(ctx workflow.Context, res gateway.Result) error {
	next := r.rec
	apply(ctx, &next, res)
	calm(&next)
	err := r.save(ctx, next, journalFor(ctx, next))
	r.answered = true
	return err
}

// refuse records a charge the gateway refused for good.
func (r *run) refuse(ctx workflow.Context, err error) error {
	next := r.rec
	code, msg := failureOf(err)
	fail(&next, code, msg)
	calm(&next)
	serr := r.save(ctx, next, nil)
	r.answered = true
	return serr
}

// failUnreachable fails a charge the gateway never answered and holds no
// intent for, and schedules the void that makes sure none can appear.
func (r *run) failUnreachable(ctx workflow.Context) error {
	next := r.rec
	fail(&next, "gateway_unreachable", "The payment gateway did not answer and holds no charge for this payment: nothing was taken.")
	calm(&next)
	err := r.save(ctx, next, nil)
	r.answered = true
	r.pending = &pendingStep{op: opVoid, reason: "abandoned", at: workflow.Now(ctx)}
	return err
}

// deadline is when the current status expires.
func (r *run) deadline() time.Time {
	switch {
	case r.rec.Status == entpayment.StatusRequiresCapture && r.rec.AuthorizationExpiresAt != nil:
		return *r.rec.AuthorizationExpiresAt
	case r.rec.Status == entpayment.StatusRequiresAction && r.rec.NextActionExpiresAt != nil:
		return *r.rec.NextActionExpiresAt
	}
	return r.rec.UpdatedAt.Add(ActionTTL)
}

// expire ends a payment whose authorization or customer action ran out: it
// is canceled at the gateway, as a pending step would be (see
// cancelStep).
func (r *run) expire(ctx workflow.Context) {
	reason := "action_expired"
	if r.rec.Status == entpayment.StatusRequiresCapture {
		reason = "authorization_expired"
	}
	workflow.GetLogger(ctx).Info("payment expired", "status", r.rec.Status)
	r.busy = true
	defer func() { r.busy = false }()
	r.cancelStep(ctx, &pendingStep{op: opExpire, reason: reason})
}

// isInvalid reports whether the gateway refused a request for good.
func isInvalid(err error) bool { return activities.IsGatewayRefusal(err) }

// isStoreRefusal reports whether the store refused a save for good.
func isStoreRefusal(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeStoreInvalid
}

func (r *run) final() bool { return isFinal(r.rec.Status) }

// IsFinal reports whether a payment in status s can no longer change.
func IsFinal(s entpayment.Status) bool { return isFinal(s) }

func isFinal(s entpayment.Status) bool {
	switch s {
	case entpayment.StatusSucceeded, entpayment.StatusFailed, entpayment.StatusCanceled:
		return true
	}
	return false
}

// allowed is the state machine for what the gateway reports: payments only
// move forward, so a late or replayed event never undoes a later state.
func allowed(from entpayment.Status, to gateway.Status) bool {
	switch from {
	case entpayment.StatusProcessing:
		return to != gateway.StatusProcessing && to != ""
	case entpayment.StatusRequiresAction:
		switch to {
		case gateway.StatusRequiresCapture, gateway.StatusSucceeded, gateway.StatusFailed, gateway.StatusCanceled:
			return true
		}
	case entpayment.StatusRequiresCapture:
		// Captured or voided outside this workflow (the gateway's dashboard,
		// its own expiry).
		return to == gateway.StatusSucceeded || to == gateway.StatusCanceled
	}
	return false
}

func (r *run) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (store.PaymentRecord, error) { return r.rec, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateAwaitResult, func(ctx workflow.Context) (store.PaymentRecord, error) {
		err := workflow.Await(ctx, func() bool { return r.answered })
		return r.rec, err
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateAwaitRecorded, func(ctx workflow.Context) (store.PaymentRecord, error) {
		err := workflow.Await(ctx, func() bool { return r.recorded })
		return r.rec, err
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateCapture, r.capture, workflow.UpdateHandlerOptions{Validator: r.validateCapture}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateCancel, r.cancel, workflow.UpdateHandlerOptions{Validator: r.validateCancel})
}

func precondition(format string, a ...any) error {
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(format, a...), ErrTypeFailedPrecondition, temporal.ApplicationErrorOptions{NonRetryable: true})
}

// unconfirmed tells an update's caller that the gateway has not confirmed
// the step: the workflow goes on trying, and the payment shows it.
func unconfirmed(format string, a ...any) error {
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(format, a...), ErrTypeUnconfirmed, temporal.ApplicationErrorOptions{NonRetryable: true})
}

// refused turns the gateway's final refusal into a failed_precondition for
// the update's caller, with its code only (never the provider's text).
func refused(op string, err error) error {
	code := activities.GatewayRefusalCode(err)
	if code == "" {
		code = "invalid_request"
	}
	return precondition("the payment gateway refused the %s (%s)", op, code)
}

// settling refuses a change while an earlier one is still being confirmed
// with the gateway or recorded.
func (r *run) settling() error {
	switch {
	case r.unsaved != nil:
		return precondition("the payment's last change is not recorded yet; retry later")
	case r.pending != nil && r.pending.op == opCapture:
		return precondition("a capture of this payment is being confirmed with the gateway; retry later")
	case r.pending != nil && (r.pending.op == opCancel || r.pending.op == opExpire):
		return precondition("a cancellation of this payment is being confirmed with the gateway; retry later")
	}
	return nil
}

// validateCapture refuses, without a trace in the history, what the state
// machine forbids.
func (r *run) validateCapture(_ workflow.Context, req CaptureRequest) error {
	if r.rec.Status != entpayment.StatusRequiresCapture {
		return precondition("only a payment in PAYMENT_STATUS_REQUIRES_CAPTURE can be captured; this one is %s", statusName(r.rec.Status))
	}
	if req.Amount < 0 {
		return temporal.NewApplicationErrorWithOptions("amount must be positive", ErrTypeInvalidArgument, temporal.ApplicationErrorOptions{NonRetryable: true})
	}
	if req.Amount > r.rec.AmountCapturable {
		return precondition("cannot capture %d: only %d is authorized", req.Amount, r.rec.AmountCapturable)
	}
	return r.settling()
}

func (r *run) capture(ctx workflow.Context, req CaptureRequest) (store.PaymentRecord, error) {
	if !r.hardened {
		return r.captureLegacy(ctx, req)
	}
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return r.rec, err
	}
	// Another update may have won while this one waited.
	if err := r.validateCapture(ctx, req); err != nil {
		return r.rec, err
	}
	amount := req.Amount
	if amount == 0 {
		amount = r.rec.AmountCapturable
	}
	r.busy = true
	defer func() { r.busy = false }()
	err := r.captureStep(ctx, &pendingStep{op: opCapture, amount: amount})
	return r.rec, err
}

// captureStep captures p.amount with the next attempt's key. A refusal
// leaves the authorization as it is; an unanswered capture is looked up and,
// when the gateway cannot tell, left pending: retried on a timer with the
// payment marked as needing attention, never failed.
func (r *run) captureStep(ctx workflow.Context, p *pendingStep) error {
	var res gateway.Result
	err := workflow.ExecuteActivity(presets.GatewayStep(ctx), gw.Capture, gateway.CaptureRequest{
		Gateway: r.in.Gateway, Currency: r.rec.Currency,
		IdempotencyKey: r.key("capture"), Reference: r.rec.GatewayReference, Amount: p.amount,
	}).Get(ctx, &res)
	if err == nil {
		if res.AmountReceived == 0 {
			res.AmountReceived = p.amount
		}
		res.Status, res.AmountCapturable = gateway.StatusSucceeded, 0
		return r.resolve(ctx, res)
	}
	if isInvalid(err) {
		// The authorization stands, or it is gone: the gateway says which.
		r.resolveRefusal(ctx, p)
		return refused("capture", err)
	}
	return r.unknownOutcome(ctx, p, err)
}

// unknownOutcome handles a capture or cancel the gateway did not answer:
// the intent is retrieved, and what it shows is recorded; if the gateway
// cannot tell either, the step stays pending.
func (r *run) unknownOutcome(ctx workflow.Context, p *pendingStep, cause error) error {
	workflow.GetLogger(ctx).Warn("the gateway did not confirm a step; retrieving the intent", "step", p.op, "err", cause)
	var cur gateway.Result
	if err := workflow.ExecuteActivity(presets.GatewayLookup(ctx), gw.RetrieveIntent, r.findRequest()).Get(ctx, &cur); err == nil {
		if done, err := r.applyRetrieved(ctx, p, cur); done {
			return err
		}
	}
	r.postpone(ctx, p, fmt.Sprintf("the gateway did not confirm the %s; it is retried automatically", stepName(p.op)))
	return unconfirmed("the payment gateway did not confirm the %s; it is retried automatically, and the payment shows the outcome", stepName(p.op))
}

// applyRetrieved records what a retrieved intent says of step p: true when
// that settles the step (with the error for an update's caller, if any),
// false when the step must be tried again.
func (r *run) applyRetrieved(ctx workflow.Context, p *pendingStep, cur gateway.Result) (bool, error) {
	switch {
	case cur.Status == gateway.StatusSucceeded:
		// Captured, by this step or otherwise: money moved.
		if cur.AmountReceived == 0 && p.op == opCapture {
			cur.AmountReceived = p.amount
		}
		return true, r.resolve(ctx, cur)
	case cur.Status == gateway.StatusCanceled || cur.Status == gateway.StatusFailed:
		next := r.rec
		next.Status, next.AmountCapturable = entpayment.StatusCanceled, 0
		clearAction(&next)
		reason := p.reason
		if p.op == opCapture || reason == "" {
			reason = "authorization_expired"
		}
		next.FailureCode, next.FailureMessage = reason, "canceled: "+reason
		calm(&next)
		if err := r.save(ctx, next, nil); err != nil {
			return true, err
		}
		r.clearPending(ctx)
		if p.op == opCapture {
			return true, precondition("the authorization is no longer valid at the gateway; the payment is canceled")
		}
		return true, nil
	}
	return false, nil
}

// resolve records the gateway's confirmation of a step (or of another
// state it moved to meanwhile) and clears what was pending.
func (r *run) resolve(ctx workflow.Context, res gateway.Result) error {
	next := r.rec
	if allowed(next.Status, res.Status) {
		apply(ctx, &next, res)
	}
	calm(&next)
	if err := r.save(ctx, next, journalFor(ctx, next)); err != nil {
		return err
	}
	r.clearPending(ctx)
	return nil
}

// clearPending forgets the pending step once the gateway settled it, and
// clears the NeedsAttention search attribute unless something else still
// needs it (the save above set it while the step was still pending).
func (r *run) clearPending(ctx workflow.Context) {
	r.pending = nil
	r.setAttention(ctx, r.rec.NeedsAttention || r.unsaved != nil)
}

// resolveRefusal clears a pending step the gateway refused, after checking
// what the intent shows (an authorization may have expired meanwhile).
func (r *run) resolveRefusal(ctx workflow.Context, p *pendingStep) {
	var cur gateway.Result
	if err := workflow.ExecuteActivity(presets.GatewayLookup(ctx), gw.RetrieveIntent, r.findRequest()).Get(ctx, &cur); err == nil {
		if done, _ := r.applyRetrieved(ctx, p, cur); done {
			return
		}
	}
	if r.pending != nil || r.rec.NeedsAttention {
		next := r.rec
		calm(&next)
		_ = r.save(ctx, next, nil)
		r.clearPending(ctx)
	}
}

// postpone keeps p pending, to try again after a delay, and marks the
// payment as needing attention.
func (r *run) postpone(ctx workflow.Context, p *pendingStep, reason string) {
	p.tries++
	p.at = workflow.Now(ctx).Add(presets.StepRetryDelay(p.tries))
	r.pending = p
	workflow.GetLogger(ctx).Error("payment needs attention: a gateway step is unconfirmed", "step", p.op, "tries", p.tries, "retry_at", p.at)
	if !r.rec.NeedsAttention || r.rec.AttentionReason != reason {
		next := r.rec
		attention(&next, reason)
		_ = r.save(ctx, next, nil)
	}
	r.setAttention(ctx, true)
}

// runPending tries the pending step again.
func (r *run) runPending(ctx workflow.Context) {
	p := r.pending
	r.busy = true
	defer func() { r.busy = false }()
	switch p.op {
	case opVoid:
		r.voidStep(ctx, p)
		return
	case opCapture:
		if r.rec.Status != entpayment.StatusRequiresCapture {
			r.dropPending(ctx)
			return
		}
	case opCancel, opExpire:
		if r.final() {
			r.dropPending(ctx)
			return
		}
	}
	// Did the last attempt happen after all?
	var cur gateway.Result
	if err := workflow.ExecuteActivity(presets.GatewayLookup(ctx), gw.RetrieveIntent, r.findRequest()).Get(ctx, &cur); err != nil {
		r.postpone(ctx, p, r.rec.AttentionReason)
		return
	}
	if done, _ := r.applyRetrieved(ctx, p, cur); done {
		return
	}
	if p.op == opCapture {
		_ = r.captureStep(ctx, p)
		return
	}
	r.cancelStep(ctx, p)
}

// dropPending forgets a step the payment no longer needs (it moved on).
func (r *run) dropPending(ctx workflow.Context) {
	r.pending = nil
	if r.rec.NeedsAttention {
		next := r.rec
		calm(&next)
		_ = r.save(ctx, next, nil)
	}
	r.setAttention(ctx, r.unsaved != nil || r.reportsWaiting(ctx))
}

func (r *run) validateCancel(_ workflow.Context, _ CancelRequest) error {
	if r.final() {
		return precondition("a payment in %s cannot be canceled", statusName(r.rec.Status))
	}
	return r.settling()
}

func (r *run) cancel(ctx workflow.Context, req CancelRequest) (store.PaymentRecord, error) {
	if !r.hardened {
		return r.cancelLegacy(ctx, req)
	}
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return r.rec, err
	}
	if err := r.validateCancel(ctx, req); err != nil {
		return r.rec, err
	}
	r.busy = true
	defer func() { r.busy = false }()
	err := r.cancelStep(ctx, &pendingStep{op: opCancel, reason: cancelCode(req.Reason)})
	return r.rec, err
}

// cancelCode is the stable failure_code of a cancellation; the caller's
// free-text reason is not a code.
func cancelCode(reason string) string {
	switch reason {
	case "duplicate", "fraudulent", "requested_by_customer", "abandoned":
		return reason
	}
	return "requested_by_customer"
}

// cancelStep cancels the intent (if the gateway has one) with the next
// attempt's key and records it. A refusal means the intent moved on (it
// succeeded, or the gateway voided it already): what it shows is recorded.
// An unanswered cancel stays pending.
func (r *run) cancelStep(ctx workflow.Context, p *pendingStep) error {
	if r.rec.GatewayReference != "" {
		var res gateway.Result
		err := workflow.ExecuteActivity(presets.GatewayStep(ctx), gw.Cancel, gateway.CancelRequest{
			Gateway: r.in.Gateway, Currency: r.rec.Currency,
			IdempotencyKey: r.key(p.op), Reference: r.rec.GatewayReference, Reason: p.reason,
		}).Get(ctx, &res)
		if err != nil {
			// Refused (the intent moved on: it succeeded, or the gateway
			// voided it already, or it is still processing there) or not
			// answered: the intent tells which.
			return r.unknownOutcome(ctx, p, err)
		}
	}
	next := r.rec
	next.Status = entpayment.StatusCanceled
	next.AmountCapturable = 0
	clearAction(&next)
	next.FailureCode, next.FailureMessage = p.reason, "canceled: "+p.reason
	calm(&next)
	if err := r.save(ctx, next, nil); err != nil {
		return err
	}
	r.clearPending(ctx)
	return nil
}

// voidStep sends the void of a failed charge: now, and once more after
// the gateway's search has caught up. A charge the void finds succeeded is
// reconciled (refunded).
func (r *run) voidStep(ctx workflow.Context, p *pendingStep) {
	var found gateway.Found
	err := workflow.ExecuteActivity(presets.GatewayStep(ctx), gw.Void, gateway.VoidRequest{
		Gateway: r.in.Gateway, IdempotencyKey: r.key("void"), PaymentID: r.rec.ID,
		Reference: r.rec.GatewayReference, Currency: r.rec.Currency, Reason: p.reason,
	}).Get(ctx, &found)
	if err != nil && !isInvalid(err) {
		r.postpone(ctx, p, "the void of a charge the gateway never answered is not confirmed; it is retried automatically")
		return
	}
	if err == nil && found.Exists && found.Result.Status == gateway.StatusSucceeded {
		// Reported once: the void sent again after presets.SearchLag finds
		// the same charge, refunded already.
		res := found.Result
		if id := "void/" + res.Reference; !r.events[id] {
			r.events[id] = true
			r.reports = append(r.reports, GatewayEvent{
				EventID: id, Type: "void", Status: res.Status,
				AmountReceived: res.AmountReceived, Reference: res.Reference,
			})
		}
	}
	if p.final {
		r.dropPending(ctx)
		return
	}
	r.pending = &pendingStep{op: opVoid, reason: p.reason, final: true, at: workflow.Now(ctx).Add(presets.SearchLag)}
	if r.rec.NeedsAttention {
		next := r.rec
		calm(&next)
		_ = r.save(ctx, next, nil)
	}
	r.setAttention(ctx, r.unsaved != nil || r.reportsWaiting(ctx))
}

func (r *run) onEvent(ctx workflow.Context, ev GatewayEvent) {
	log := workflow.GetLogger(ctx)
	if r.events[ev.EventID] {
		return
	}
	if ev.AmountReceived > r.rec.Amount || ev.AmountCapturable > r.rec.Amount || ev.AmountReceived < 0 || ev.AmountCapturable < 0 {
		log.Error("gateway event with impossible amounts ignored", "event", ev.EventID, "received", ev.AmountReceived, "capturable", ev.AmountCapturable)
		r.events[ev.EventID] = true
		return
	}
	if r.charging && r.chargeEvent == nil && ev.proves() {
		// The outcome of the charge being retried: it settles the payment.
		r.chargeEvent = &ev
		if r.cancelCreate != nil {
			r.cancelCreate()
		}
		return
	}
	// Other events wait for a gateway call in flight (its result may make
	// them moot), and for a state the store refused to be saved: the event
	// was acknowledged to the gateway, which will not send it again, so it
	// applies to the state recorded next.
	if err := workflow.Await(ctx, func() bool { return !r.busy && r.unsaved == nil }); err != nil {
		return
	}
	if r.events[ev.EventID] {
		return
	}
	if r.final() {
		r.events[ev.EventID] = true
		if kind := Contradiction(r.rec.Status, ev.Status); kind != "" {
			r.reports = append(r.reports, ev)
			return
		}
		log.Info("gateway event for a finished payment agrees with it", "event", ev.EventID, "type", ev.Type)
		return
	}
	if !allowed(r.rec.Status, ev.Status) {
		log.Info("gateway event ignored by the state machine", "event", ev.EventID, "type", ev.Type, "from", r.rec.Status, "to", ev.Status)
		return
	}
	r.busy = true
	defer func() { r.busy = false }()
	next := r.rec
	apply(ctx, &next, ev.result())
	if r.pending != nil && isFinal(next.Status) {
		calm(&next)
	}
	if err := r.save(ctx, next, journalFor(ctx, next)); err != nil || r.unsaved != nil {
		// Not marked as seen: a redelivery may apply it.
		log.Error("saving a gateway event failed", "event", ev.EventID, "err", err)
		return
	}
	if r.pending != nil && r.final() {
		r.pending = nil
		r.setAttention(ctx, false)
	}
	r.events[ev.EventID] = true
}

// proves reports whether an event tells the outcome of a charge.
func (ev GatewayEvent) proves() bool {
	switch ev.Status {
	case gateway.StatusSucceeded, gateway.StatusRequiresCapture, gateway.StatusFailed, gateway.StatusCanceled:
		return true
	}
	return false
}

// result is what the event says, as a gateway result.
func (ev GatewayEvent) result() gateway.Result {
	return gateway.Result{Reference: ev.Reference, Status: ev.Status, AmountCapturable: ev.AmountCapturable,
		AmountReceived: ev.AmountReceived, FailureCode: ev.FailureCode, FailureMessage: ev.FailureMessage}
}

// apply moves p to the gateway's view.
func apply(ctx workflow.Context, p *store.PaymentRecord, res gateway.Result) {
	now := workflow.Now(ctx)
	if res.Reference != "" {
		p.GatewayReference = res.Reference
	}
	if res.Method.Type != "" {
		p.MethodType, p.MethodBrand, p.MethodLast4 = res.Method.Type, res.Method.Brand, res.Method.Last4
		p.MethodExpMonth, p.MethodExpYear, p.MethodProvider = res.Method.ExpMonth, res.Method.ExpYear, res.Method.Provider
	}
	clearAction(p)
	switch res.Status {
	case gateway.StatusSucceeded:
		p.Status = entpayment.StatusSucceeded
		p.AmountReceived = res.AmountReceived
		if p.AmountReceived == 0 {
			p.AmountReceived = p.Amount
		}
		p.AmountCapturable = 0
	case gateway.StatusRequiresCapture:
		p.Status = entpayment.StatusRequiresCapture
		p.AmountCapturable = res.AmountCapturable
		if p.AmountCapturable == 0 {
			p.AmountCapturable = p.Amount
		}
		exp := now.Add(AuthorizationTTL)
		p.AuthorizationExpiresAt = &exp
	case gateway.StatusRequiresAction:
		p.Status = entpayment.StatusRequiresAction
		p.NextActionType, p.NextActionURL = "redirect_to_url", res.RedirectURL
		exp := now.Add(ActionTTL)
		p.NextActionExpiresAt = &exp
	case gateway.StatusCanceled:
		p.Status = entpayment.StatusCanceled
		p.AmountCapturable = 0
	case gateway.StatusFailed:
		fail(p, res.FailureCode, res.FailureMessage)
	default:
		p.Status = entpayment.StatusProcessing
	}
}

func clearAction(p *store.PaymentRecord) {
	p.NextActionType, p.NextActionURL, p.NextActionExpiresAt = "", "", nil
}

func fail(p *store.PaymentRecord, code, msg string) {
	p.Status = entpayment.StatusFailed
	p.AmountCapturable = 0
	if code == "" {
		code = "processing_error"
	}
	p.FailureCode, p.FailureMessage = code, msg
}

// attention marks p as needing an operator's eye, with why.
func attention(p *store.PaymentRecord, reason string) {
	p.NeedsAttention, p.AttentionReason = true, reason
}

// calm clears the attention mark: the step it was about is settled.
func calm(p *store.PaymentRecord) {
	p.NeedsAttention, p.AttentionReason = false, ""
}

// failureOf turns a charge the gateway refused for good into a failure. The
// provider's own error text can name parameters or configuration, so only
// its code reaches the payment.
func failureOf(err error) (string, string) {
	if code := activities.GatewayRefusalCode(err); code != "" {
		return code, "The payment gateway refused the request (" + code + ")."
	}
	return "invalid_request", "The payment gateway refused the request."
}

// stepName is how a step is named to people.
func stepName(op string) string {
	switch op {
	case opCapture:
		return "capture"
	case opVoid:
		return "void"
	}
	return "cancellation"
}

// journalFor returns the ledger journal of money that moved in p's last
// transition, or nil. A capture moves the received amount from the
// customer's funding through the gateway's clearing account to the
// merchant's balance.
func journalFor(ctx workflow.Context, p store.PaymentRecord) *store.Journal {
	if p.Status != entpayment.StatusSucceeded || p.AmountReceived == 0 {
		return nil
	}
	customer := p.CustomerID
	if customer == "" {
		customer = "guest"
	}
	a := p.AmountReceived
	clearing := "gateway_clearing:" + p.Gateway
	return &store.Journal{
		ID: p.ID + "/capture", PaymentID: p.ID, Currency: p.Currency, At: workflow.Now(ctx),
		Lines: []store.JournalLine{
			{Account: "customer_funding:" + customer, Direction: ledgerentry.DirectionDebit, Amount: a},
			{Account: clearing, Direction: ledgerentry.DirectionCredit, Amount: a},
			{Account: clearing, Direction: ledgerentry.DirectionDebit, Amount: a},
			{Account: "merchant_balance:" + p.MerchantID, Direction: ledgerentry.DirectionCredit, Amount: a},
		},
	}
}

// commit saves next (with the next version) and the journal of money that
// moved, in a local activity; only then does next become the run's state.
// Saves retry until the database takes them; a save the store refuses for
// good returns at once with the error (see save).
func (r *run) commit(ctx workflow.Context, next store.PaymentRecord, j *store.Journal) error {
	next.Version = r.rec.Version + 1
	next.UpdatedAt = workflow.Now(ctx)
	if err := workflow.ExecuteLocalActivity(presets.LocalStoreWrite(ctx), db.SavePayment, next, j).Get(ctx, nil); err != nil {
		return err
	}
	r.rec = next
	r.recorded = true
	if next.Status != r.attrStatus {
		if err := workflow.UpsertTypedSearchAttributes(ctx, AttrStatus.ValueSet(string(next.Status))); err != nil {
			return err
		}
		r.attrStatus = next.Status
	}
	if r.hardened {
		r.setAttention(ctx, next.NeedsAttention || r.pending != nil || r.unsaved != nil)
	}
	return nil
}

// save commits next; a state the store refuses for good (a constraint, a
// journal posted before with other lines: a bug, or data changed behind the
// workflow's back) does not fail the workflow or lock the payment: it is
// logged, the payment is flagged for operators (search attribute
// NeedsAttention), and the save is tried again on a durable timer, while
// the payment keeps answering queries with its recorded state.
func (r *run) save(ctx workflow.Context, next store.PaymentRecord, j *store.Journal) error {
	err := r.commit(ctx, next, j)
	if err == nil && r.unsaved != nil {
		// A later state went through (the charge goes on after the store
		// refused its processing state): the refused one is superseded, and
		// saving it again would move the payment back.
		r.unsaved = nil
		r.setAttention(ctx, r.rec.NeedsAttention || r.pending != nil)
	}
	if err == nil || !isStoreRefusal(err) {
		return err
	}
	workflow.GetLogger(ctx).Error("payment needs attention: the store refused its state; saving again later",
		"status", next.Status, "err", err)
	u := &unsavedState{next: next, journal: j, err: err.Error()}
	u.tries = 1
	u.at = workflow.Now(ctx).Add(presets.StepRetryDelay(u.tries))
	r.unsaved = u
	r.setAttention(ctx, true)
	return nil
}

// retrySave tries a refused save again.
func (r *run) retrySave(ctx workflow.Context) {
	u := r.unsaved
	r.busy = true
	defer func() { r.busy = false }()
	err := r.commit(ctx, u.next, u.journal)
	switch {
	case err == nil:
		r.unsaved = nil
		r.setAttention(ctx, r.rec.NeedsAttention || r.pending != nil)
		workflow.GetLogger(ctx).Info("a refused save went through", "tries", u.tries+1)
	default:
		u.tries++
		u.at = workflow.Now(ctx).Add(presets.StepRetryDelay(u.tries))
		u.err = err.Error()
		workflow.GetLogger(ctx).Error("payment needs attention: the store still refuses its state", "tries", u.tries, "err", err)
	}
}

// reportsWaiting reports whether gateway reports wait to be reconciled,
// which keeps the payment marked for operators. Runs from before
// changeReportAttention did not count them here.
func (r *run) reportsWaiting(ctx workflow.Context) bool {
	return len(r.reports) > 0 &&
		workflow.GetVersion(ctx, changeReportAttention, workflow.DefaultVersion, versionReportAttention) >= versionReportAttention
}

// setAttention keeps the NeedsAttention search attribute current.
func (r *run) setAttention(ctx workflow.Context, on bool) {
	if on == r.attrAttention {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrNeedsAttention.ValueSet(on)); err != nil {
		workflow.GetLogger(ctx).Error("setting NeedsAttention", "err", err)
		return
	}
	r.attrAttention = on
}

func statusName(s entpayment.Status) string {
	return "PAYMENT_STATUS_" + strings.ToUpper(string(s))
}
