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

type run struct {
	in       Input
	rec      store.PaymentRecord
	answered bool // the gateway has given its first answer
	recorded bool // the first row is stored
	busy     bool // a gateway call is in flight
	// attrStatus is the PaymentStatus search attribute as last set.
	attrStatus entpayment.Status
	events     map[string]bool
}

// Workflow runs one payment to a final state and returns it.
func Workflow(ctx workflow.Context, in Input) (store.PaymentRecord, error) {
	log := workflow.GetLogger(ctx)
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

	// The first gateway call. Its fast path usually answers within the
	// first workflow task, and then one write records the payment in its
	// final state. When it does not, the payment is recorded as processing
	// before the call is retried as a regular activity.
	req := gateway.CreateRequest{
		IdempotencyKey: r.rec.WorkflowID + "/create",
		PaymentID:      in.PaymentID, Amount: in.Amount, Currency: in.Currency,
		PaymentMethod: in.PaymentMethod, ManualCapture: in.ManualCapture,
		Description: in.Description, ReturnURL: in.ReturnURL,
	}
	r.busy = true
	var res gateway.Result
	err := workflow.ExecuteLocalActivity(presets.GatewayFastPath(ctx), gw.CreatePayment, req).Get(ctx, &res)
	if err != nil && !isInvalid(err) {
		workflow.GetLogger(ctx).Info("gateway fast path failed; retrying as an activity", "err", err)
		if err := r.save(ctx, nil); err != nil {
			return r.rec, err
		}
		r.recorded = true
		res = gateway.Result{}
		err = workflow.ExecuteActivity(presets.GatewayCall(ctx), gw.CreatePayment, req).Get(ctx, &res)
	}
	r.busy = false
	if err != nil {
		r.fail(failureOf(err))
	} else {
		r.apply(ctx, res)
	}
	if err := r.save(ctx, r.journalFor(ctx)); err != nil {
		return r.rec, err
	}
	r.recorded = true
	r.answered = true

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
		var deadline time.Time
		switch status {
		case entpayment.StatusRequiresCapture:
			deadline = *r.rec.AuthorizationExpiresAt
		case entpayment.StatusRequiresAction:
			deadline = *r.rec.NextActionExpiresAt
		default:
			deadline = r.rec.UpdatedAt.Add(ActionTTL)
		}
		wait := deadline.Sub(workflow.Now(ctx))
		changed := true
		if wait > 0 {
			var err error
			changed, err = workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.rec.Status != status || r.busy })
			if err != nil {
				return r.rec, err
			}
		} else {
			changed = false
		}
		if changed || r.busy {
			continue
		}
		log.Info("payment expired", "status", status)
		reason := "authorization_expired"
		if status != entpayment.StatusRequiresCapture {
			reason = "action_expired"
		}
		if err := r.cancelAtGateway(ctx, "expire", reason); err != nil {
			return r.rec, err
		}
	}
	// Let update handlers that are finishing complete before the run ends.
	if err := workflow.Await(ctx, func() bool { return !r.busy && workflow.AllHandlersFinished(ctx) }); err != nil {
		return r.rec, err
	}
	return r.rec, nil
}

// isInvalid reports whether the gateway refused a request for good.
func isInvalid(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeGatewayInvalid
}

func (r *run) final() bool {
	switch r.rec.Status {
	case entpayment.StatusSucceeded, entpayment.StatusFailed, entpayment.StatusCanceled:
		return true
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
		IdempotencyKey: r.rec.WorkflowID + "/capture", Reference: r.rec.GatewayReference, Amount: amount,
	}).Get(ctx, &res)
	if err != nil {
		// The authorization stands; the caller may retry.
		return r.rec, err
	}
	if res.AmountReceived == 0 {
		res.AmountReceived = amount
	}
	res.AmountCapturable = 0
	r.apply(ctx, res)
	if err := r.save(ctx, r.journalFor(ctx)); err != nil {
		return r.rec, err
	}
	return r.rec, nil
}

func (r *run) validateCancel(_ workflow.Context, _ CancelRequest) error {
	switch r.rec.Status {
	case entpayment.StatusSucceeded, entpayment.StatusFailed, entpayment.StatusCanceled:
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
	reason := req.Reason
	if reason == "" {
		reason = "requested_by_customer"
	}
	if err := r.cancelAtGateway(ctx, "cancel", reason); err != nil {
		return r.rec, err
	}
	return r.rec, nil
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
	r.rec.Status = entpayment.StatusCanceled
	r.rec.AmountCapturable = 0
	r.rec.NextActionType, r.rec.NextActionURL, r.rec.NextActionExpiresAt = "", "", nil
	r.rec.FailureCode, r.rec.FailureMessage = reason, "canceled: "+reason
	return r.save(ctx, nil)
}

func (r *run) onEvent(ctx workflow.Context, ev GatewayEvent) {
	// Events wait for a gateway call in flight; its result may make them moot.
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return
	}
	if r.events[ev.EventID] || r.final() {
		return
	}
	r.events[ev.EventID] = true
	res := gateway.Result{Reference: r.rec.GatewayReference, Status: ev.Status, AmountCapturable: ev.AmountCapturable,
		AmountReceived: ev.AmountReceived, FailureCode: ev.FailureCode, FailureMessage: ev.FailureMessage,
		Method: gateway.MethodDetails{Type: r.rec.MethodType, Brand: r.rec.MethodBrand, Last4: r.rec.MethodLast4,
			ExpMonth: r.rec.MethodExpMonth, ExpYear: r.rec.MethodExpYear, Provider: r.rec.MethodProvider}}
	if string(res.Status) == string(r.rec.Status) {
		return
	}
	r.busy = true
	defer func() { r.busy = false }()
	r.apply(ctx, res)
	if err := r.save(ctx, r.journalFor(ctx)); err != nil {
		workflow.GetLogger(ctx).Error("saving a gateway event failed", "event", ev.EventID, "err", err)
	}
}

// apply moves the record to the gateway's view.
func (r *run) apply(ctx workflow.Context, res gateway.Result) {
	now := workflow.Now(ctx)
	if res.Reference != "" {
		r.rec.GatewayReference = res.Reference
	}
	if res.Method.Type != "" {
		r.rec.MethodType, r.rec.MethodBrand, r.rec.MethodLast4 = res.Method.Type, res.Method.Brand, res.Method.Last4
		r.rec.MethodExpMonth, r.rec.MethodExpYear, r.rec.MethodProvider = res.Method.ExpMonth, res.Method.ExpYear, res.Method.Provider
	}
	r.rec.NextActionType, r.rec.NextActionURL, r.rec.NextActionExpiresAt = "", "", nil
	switch res.Status {
	case gateway.StatusSucceeded:
		r.rec.Status = entpayment.StatusSucceeded
		r.rec.AmountReceived = res.AmountReceived
		if r.rec.AmountReceived == 0 {
			r.rec.AmountReceived = r.rec.Amount
		}
		r.rec.AmountCapturable = 0
	case gateway.StatusRequiresCapture:
		r.rec.Status = entpayment.StatusRequiresCapture
		r.rec.AmountCapturable = res.AmountCapturable
		if r.rec.AmountCapturable == 0 {
			r.rec.AmountCapturable = r.rec.Amount
		}
		exp := now.Add(AuthorizationTTL)
		r.rec.AuthorizationExpiresAt = &exp
	case gateway.StatusRequiresAction:
		r.rec.Status = entpayment.StatusRequiresAction
		r.rec.NextActionType, r.rec.NextActionURL = "redirect_to_url", res.RedirectURL
		exp := now.Add(ActionTTL)
		r.rec.NextActionExpiresAt = &exp
	case gateway.StatusCanceled:
		r.rec.Status = entpayment.StatusCanceled
		r.rec.AmountCapturable = 0
	case gateway.StatusFailed:
		r.fail(res.FailureCode, res.FailureMessage)
	default:
		r.rec.Status = entpayment.StatusProcessing
	}
}

func (r *run) fail(code, msg string) {
	r.rec.Status = entpayment.StatusFailed
	r.rec.AmountCapturable = 0
	if code == "" {
		code = "processing_error"
	}
	r.rec.FailureCode, r.rec.FailureMessage = code, msg
}

// failureOf turns an activity error that exhausted its retries into a failure.
func failureOf(err error) (string, string) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeGatewayInvalid {
		var details activities.GatewayErrorDetails
		if appErr.HasDetails() && appErr.Details(&details) == nil && details.Code != "" {
			return details.Code, details.Message
		}
		return "invalid_request", appErr.Message()
	}
	return "processing_error", "the payment gateway did not answer; nothing was charged"
}

// journalFor returns the ledger journal of money that moved in the last
// transition, or nil. A capture moves the received amount from the
// customer's funding through the gateway's clearing account to the
// merchant's balance.
func (r *run) journalFor(ctx workflow.Context) *store.Journal {
	if r.rec.Status != entpayment.StatusSucceeded || r.rec.AmountReceived == 0 {
		return nil
	}
	customer := r.rec.CustomerID
	if customer == "" {
		customer = "guest"
	}
	a := r.rec.AmountReceived
	clearing := "gateway_clearing:" + r.rec.Gateway
	return &store.Journal{
		ID: r.rec.ID + "/capture", PaymentID: r.rec.ID, Currency: r.rec.Currency, At: workflow.Now(ctx),
		Lines: []store.JournalLine{
			{Account: "customer_funding:" + customer, Direction: ledgerentry.DirectionDebit, Amount: a},
			{Account: clearing, Direction: ledgerentry.DirectionCredit, Amount: a},
			{Account: clearing, Direction: ledgerentry.DirectionDebit, Amount: a},
			{Account: "merchant_balance:" + r.rec.MerchantID, Direction: ledgerentry.DirectionCredit, Amount: a},
		},
	}
}

// save stores the whole state with the next version, in a local activity.
func (r *run) save(ctx workflow.Context, j *store.Journal) error {
	r.rec.Version++
	r.rec.UpdatedAt = workflow.Now(ctx)
	if r.rec.Status != r.attrStatus {
		if err := workflow.UpsertTypedSearchAttributes(ctx, AttrStatus.ValueSet(string(r.rec.Status))); err != nil {
			return err
		}
		r.attrStatus = r.rec.Status
	}
	return workflow.ExecuteLocalActivity(presets.LocalStoreWrite(ctx), db.SavePayment, r.rec, j).Get(ctx, nil)
}

func statusName(s entpayment.Status) string {
	return "PAYMENT_STATUS_" + strings.ToUpper(string(s))
}
