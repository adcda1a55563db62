package payment

// The logic of the first deployed version (versionLegacy), kept unchanged so
// that payments started by it replay as they were recorded and finish as
// they began. Nothing new calls it; it can be deleted once no run of that
// version is left (the longest a payment waits is an authorization's 7 days,
// plus the namespace's retention).

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

// runLegacy is the body of the legacy workflow after its handlers are set.
func (r *run) runLegacy(ctx workflow.Context) (store.PaymentRecord, error) {
	if err := r.chargeLegacy(ctx); err != nil {
		return r.rec, err
	}

	sigCh := workflow.GetSignalChannel(ctx, SignalGatewayEvent)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var ev GatewayEvent
			sigCh.Receive(ctx, &ev)
			r.onEventLegacy(ctx, ev)
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
		if err := r.expireLegacy(ctx); err != nil {
			return r.rec, err
		}
	}
	// Let update handlers that are finishing complete before the run ends.
	if err := workflow.Await(ctx, func() bool { return !r.busy && workflow.AllHandlersFinished(ctx) }); err != nil {
		return r.rec, err
	}
	return r.rec, nil
}

// chargeLegacy makes the first gateway call. Its fast path usually answers within
// the first workflow task, and then one write records the payment in its
// final state. Otherwise the payment is recorded as processing and the call
// is retried as a regular activity, with the same idempotency key, for as
// long as the gateway keeps idempotency keys: an unanswered charge may have
// happened, so it is never given up on early.
func (r *run) chargeLegacy(ctx workflow.Context) error {
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
		code, msg := failureOfLegacy(err)
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

// expireLegacy ends a payment whose authorization or customer action ran out: it
// is canceled at the gateway. If the gateway refuses (it canceled on its own
// clock already, or the payment is still processing there), the gateway's
// own state is fetched and applied instead.
func (r *run) expireLegacy(ctx workflow.Context) error {
	status := r.rec.Status
	reason := "action_expired"
	if status == entpayment.StatusRequiresCapture {
		reason = "authorization_expired"
	}
	workflow.GetLogger(ctx).Info("payment expired", "status", status)
	err := r.cancelAtGatewayLegacy(ctx, "expire", reason)
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

// captureLegacy captures the authorization with a key per amount.
func (r *run) captureLegacy(ctx workflow.Context, req CaptureRequest) (store.PaymentRecord, error) {
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

// cancelLegacy cancels at the gateway and records it.
func (r *run) cancelLegacy(ctx workflow.Context, req CancelRequest) (store.PaymentRecord, error) {
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return r.rec, err
	}
	if err := r.validateCancel(ctx, req); err != nil {
		return r.rec, err
	}
	if err := r.cancelAtGatewayLegacy(ctx, "cancel", cancelCode(req.Reason)); err != nil {
		if isInvalid(err) {
			return r.rec, refused("cancel", err)
		}
		return r.rec, err
	}
	return r.rec, nil
}

// cancelAtGatewayLegacy cancels the intent (if the gateway has one) and records it.
func (r *run) cancelAtGatewayLegacy(ctx workflow.Context, step, reason string) error {
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

// onEventLegacy applies an event once no gateway call is in flight.
func (r *run) onEventLegacy(ctx workflow.Context, ev GatewayEvent) {
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

// failureOfLegacy turns a refused or unanswered first charge into a failure. The
// provider's own error text can name parameters or configuration, so only
// its code reaches the payment.
func failureOfLegacy(err error) (string, string) {
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
