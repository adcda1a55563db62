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
	answered bool // the gateway has given its first answer
	recorded bool // the payment has a row
	busy     bool // a gateway call or a save is in flight
	// attrStatus is the PaymentStatus search attribute as last set.
	attrStatus entpayment.Status
	events     map[string]bool
}

// Workflow runs one payment to a final state and returns it.
func Workflow(ctx workflow.Context, in Input) (store.PaymentRecord, error) {
	r := &run{in: in, events: map[string]bool{}}
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

	if err := r.charge(ctx); err != nil {
		return r.rec, err
	}

	sigCh := workflow.GetSignalChannel(ctx, SignalGatewayEvent)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var ev GatewayEvent
			sigCh.Receive(ctx, &ev)
			r.onEvent(ctx, ev)
		}
	})
	for !r.final() {
		if r.busy {
			if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
				return r.rec, err
			}
			continue
		}
		status := r.rec.Status
		wait := r.deadline().Sub(workflow.Now(ctx))
		if wait > 0 {
			changed, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.rec.Status != status || r.busy })
			if err != nil {
				return r.rec, err
			}
			if changed {
				continue
			}
		}
		if err := r.expire(ctx); err != nil {
			return r.rec, err
		}
	}
	// Let update handlers that are finishing complete before the run ends.
	if err := workflow.Await(ctx, func() bool { return !r.busy && workflow.AllHandlersFinished(ctx) }); err != nil {
		return r.rec, err
	}
	return r.rec, nil
}

// charge makes the first gateway call. Its fast path usually answers within
// the first workflow task, and then one write records the payment in its
// final state. Otherwise the payment is recorded as processing and the call
// is retried as a regular activity, with the same idempotency key, for as
// long as the gateway keeps idempotency keys: an unanswered charge may have
// happened, so it is never given up on early.
func (r *run) charge(ctx workflow.Context) error {
	in := r.in
	req := gateway.CreateRequest{
		IdempotencyKey: r.rec.WorkflowID + "/create",
		PaymentID:      in.PaymentID, Amount: in.Amount, Currency: in.Currency,
		PaymentMethod: in.PaymentMethod, ManualCapture: in.ManualCapture,
		Description: in.Description, ReturnURL: in.ReturnURL,
	}
	r.busy = true
	defer func() { r.busy = false }()
	var res gateway.Result
	err := workflow.ExecuteLocalActivity(presets.GatewayFastPath(ctx), gw.CreatePayment, req).Get(ctx, &res)
	if err != nil && !isInvalid(err) {
		workflow.GetLogger(ctx).Info("gateway fast path failed; retrying as an activity", "err", err)
		if err := r.commit(ctx, r.rec, nil); err != nil {
			return err
		}
		res = gateway.Result{}
		err = workflow.ExecuteActivity(presets.GatewayCall(ctx), gw.CreatePayment, req).Get(ctx, &res)
	}
	next := r.rec
	if err != nil {
		code, msg := failureOf(err)
		fail(&next, code, msg)
	} else {
		apply(ctx, &next, res)
	}
	if err := r.commit(ctx, next, journalFor(ctx, next)); err != nil {
		return err
	}
	r.answered = true
	return nil
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
// is canceled at the gateway. If the gateway refuses (it canceled on its own
// clock already, or the payment is still processing there), the gateway's
// own state is fetched and applied instead.
func (r *run) expire(ctx workflow.Context) error {
	status := r.rec.Status
	reason := "action_expired"
	if status == entpayment.StatusRequiresCapture {
		reason = "authorization_expired"
	}
	workflow.GetLogger(ctx).Info("payment expired", "status", status)
	err := r.cancelAtGateway(ctx, "expire", reason)
	if err == nil || !isInvalid(err) {
		return err
	}
	r.busy = true
	defer func() { r.busy = false }()
	var res gateway.Result
	if rerr := workflow.ExecuteActivity(presets.GatewayCall(ctx), gw.Retrieve, r.rec.GatewayReference).Get(ctx, &res); rerr != nil {
		return rerr
	}
	next := r.rec
	if res.Status == gateway.StatusCanceled || !allowed(next.Status, res.Status) {
		// Canceled there, or in a state this payment cannot move to: the
		// authorization is void either way.
		next.Status, next.AmountCapturable = entpayment.StatusCanceled, 0
		next.FailureCode, next.FailureMessage = reason, "canceled: "+reason
		clearAction(&next)
	} else {
		apply(ctx, &next, res)
		if next.Status == status {
			// Still pending at the gateway (say processing): wait another period.
			next.UpdatedAt = workflow.Now(ctx)
			if next.Status == entpayment.StatusRequiresAction {
				exp := workflow.Now(ctx).Add(ActionTTL)
				next.NextActionExpiresAt = &exp
			}
		}
	}
	return r.commit(ctx, next, journalFor(ctx, next))
}

// isInvalid reports whether the gateway refused a request for good.
func isInvalid(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeGatewayInvalid
}

func (r *run) final() bool { return isFinal(r.rec.Status) }

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

// refused turns the gateway's final refusal into a failed_precondition for
// the update's caller, with its code only (never the provider's text).
func refused(op string, err error) error {
	var appErr *temporal.ApplicationError
	code := "invalid_request"
	if errors.As(err, &appErr) {
		var d activities.GatewayErrorDetails
		if appErr.HasDetails() && appErr.Details(&d) == nil && d.Code != "" {
			code = d.Code
		}
	}
	return precondition("the payment gateway refused the %s (%s)", op, code)
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
	return nil
}

func (r *run) capture(ctx workflow.Context, req CaptureRequest) (store.PaymentRecord, error) {
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
	var res gateway.Result
	err := workflow.ExecuteActivity(presets.GatewayCall(ctx), gw.Capture, gateway.CaptureRequest{
		IdempotencyKey: fmt.Sprintf("%s/capture/%d", r.rec.WorkflowID, amount), Reference: r.rec.GatewayReference, Amount: amount,
	}).Get(ctx, &res)
	if err != nil {
		// The authorization stands.
		if isInvalid(err) {
			return r.rec, refused("capture", err)
		}
		return r.rec, err
	}
	if res.AmountReceived == 0 {
		res.AmountReceived = amount
	}
	res.Status, res.AmountCapturable = gateway.StatusSucceeded, 0
	next := r.rec
	apply(ctx, &next, res)
	if err := r.commit(ctx, next, journalFor(ctx, next)); err != nil {
		return r.rec, err
	}
	return r.rec, nil
}

func (r *run) validateCancel(_ workflow.Context, _ CancelRequest) error {
	if r.final() {
		return precondition("a payment in %s cannot be canceled", statusName(r.rec.Status))
	}
	return nil
}

func (r *run) cancel(ctx workflow.Context, req CancelRequest) (store.PaymentRecord, error) {
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return r.rec, err
	}
	if err := r.validateCancel(ctx, req); err != nil {
		return r.rec, err
	}
	if err := r.cancelAtGateway(ctx, "cancel", cancelCode(req.Reason)); err != nil {
		if isInvalid(err) {
			return r.rec, refused("cancel", err)
		}
		return r.rec, err
	}
	return r.rec, nil
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

// cancelAtGateway cancels the intent (if the gateway has one) and records it.
func (r *run) cancelAtGateway(ctx workflow.Context, step, reason string) error {
	r.busy = true
	defer func() { r.busy = false }()
	if r.rec.GatewayReference != "" {
		var res gateway.Result
		err := workflow.ExecuteActivity(presets.GatewayCall(ctx), gw.Cancel, gateway.CancelRequest{
			IdempotencyKey: r.rec.WorkflowID + "/" + step, Reference: r.rec.GatewayReference, Reason: reason,
		}).Get(ctx, &res)
		if err != nil {
			return err
		}
	}
	next := r.rec
	next.Status = entpayment.StatusCanceled
	next.AmountCapturable = 0
	clearAction(&next)
	next.FailureCode, next.FailureMessage = reason, "canceled: "+reason
	return r.commit(ctx, next, nil)
}

func (r *run) onEvent(ctx workflow.Context, ev GatewayEvent) {
	// Events wait for a gateway call in flight; its result may make them moot.
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return
	}
	log := workflow.GetLogger(ctx)
	if r.events[ev.EventID] || r.final() {
		return
	}
	if !allowed(r.rec.Status, ev.Status) {
		log.Info("gateway event ignored by the state machine", "event", ev.EventID, "type", ev.Type, "from", r.rec.Status, "to", ev.Status)
		return
	}
	if ev.AmountReceived > r.rec.Amount || ev.AmountCapturable > r.rec.Amount || ev.AmountReceived < 0 || ev.AmountCapturable < 0 {
		log.Error("gateway event with impossible amounts ignored", "event", ev.EventID, "received", ev.AmountReceived, "capturable", ev.AmountCapturable)
		return
	}
	r.busy = true
	defer func() { r.busy = false }()
	next := r.rec
	apply(ctx, &next, gateway.Result{Status: ev.Status, AmountCapturable: ev.AmountCapturable,
		AmountReceived: ev.AmountReceived, FailureCode: ev.FailureCode, FailureMessage: ev.FailureMessage})
	if err := r.commit(ctx, next, journalFor(ctx, next)); err != nil {
		// Not marked as seen: a redelivery may apply it.
		log.Error("saving a gateway event failed", "event", ev.EventID, "err", err)
		return
	}
	r.events[ev.EventID] = true
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

// failureOf turns a refused or unanswered first charge into a failure. The
// provider's own error text can name parameters or configuration, so only
// its code reaches the payment.
func failureOf(err error) (string, string) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeGatewayInvalid {
		var details activities.GatewayErrorDetails
		if appErr.HasDetails() && appErr.Details(&details) == nil && details.Code != "" {
			return details.Code, "The payment gateway refused the request (" + details.Code + ")."
		}
		return "invalid_request", "The payment gateway refused the request."
	}
	return "gateway_unreachable", "The payment gateway did not answer for too long; if it charged the card, the charge will be reversed by reconciliation."
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
// good is a bug, and fails the workflow with the database still agreeing
// with rec.
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
	return nil
}

func statusName(s entpayment.Status) string {
	return "PAYMENT_STATUS_" + strings.ToUpper(string(s))
}
