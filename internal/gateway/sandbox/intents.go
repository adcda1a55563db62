package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/money"
)

// Capture captures a requires_capture intent: r.Amount, or all that is
// capturable when it is 0; a partial capture releases the rest. Another
// state is refused with payment_intent_unexpected_state, a bigger amount
// with amount_too_large. The answer, refusals included, is saved under
// r.IdempotencyKey when there is one.
func (s *Sandbox) Capture(ctx context.Context, r gateway.CaptureRequest) (gateway.Result, error) {
	if err := s.reachable(ctx); err != nil {
		return gateway.Result{}, err
	}
	if err := checkReference(r.Reference); err != nil {
		return gateway.Result{}, err
	}
	currency, err := s.checkOptionalAmount(r.Currency, r.Amount)
	if err != nil {
		return gateway.Result{}, err
	}
	fp := fingerprint("capture", r.Reference, r.Amount)
	if r.IdempotencyKey != "" {
		if err := s.claimKey(ctx, r.IdempotencyKey, fp, r.Reference, ""); err != nil {
			return gateway.Result{}, err
		}
	}
	ans, in, err := s.applyOnceFrom(ctx, r.Reference, r.IdempotencyKey, fp, nil, func(in *intent) answer {
		if in.Status != string(gateway.StatusRequiresCapture) {
			return refused(invalid(http.StatusBadRequest, "payment_intent_unexpected_state", fmt.Sprintf(
				"This PaymentIntent could not be captured because it has a status of %s.", stripeStatus(in.Status))))
		}
		if e := sameCurrency(currency, in); e != nil {
			return refused(e)
		}
		amount := r.Amount
		if amount == 0 {
			amount = in.AmountCapturable
		}
		if amount > in.AmountCapturable {
			return refused(invalid(http.StatusBadRequest, "amount_too_large", fmt.Sprintf(
				"The amount to capture (%d) is greater than the amount capturable (%d).", amount, in.AmountCapturable)))
		}
		if e := checkUnits(in.Currency, amount); e != nil {
			return refused(e)
		}
		in.Status = string(gateway.StatusSucceeded)
		in.AmountReceived = amount
		in.AmountCapturable = 0 // the rest is released
		return in.snapshot()
	})
	if err != nil {
		return gateway.Result{}, err
	}
	res, err := answerResult(ans)
	if err == nil && res.Status == gateway.StatusSucceeded && testMethods[in.PaymentMethod].disputed {
		// A replay sets it off again, as a refund's late failure: see
		// disputeLater.
		s.disputeLater(r.Reference)
	}
	return res, err
}

// Cancel cancels an intent that has not succeeded and is not canceled
// already (Stripe refuses both with payment_intent_unexpected_state); what
// was capturable is released. The answer is saved under r.IdempotencyKey
// when there is one.
func (s *Sandbox) Cancel(ctx context.Context, r gateway.CancelRequest) (gateway.Result, error) {
	if err := s.reachable(ctx); err != nil {
		return gateway.Result{}, err
	}
	if err := checkReference(r.Reference); err != nil {
		return gateway.Result{}, err
	}
	fp := fingerprint("cancel", r.Reference, r.Reason)
	if r.IdempotencyKey != "" {
		if err := s.claimKey(ctx, r.IdempotencyKey, fp, r.Reference, ""); err != nil {
			return gateway.Result{}, err
		}
	}
	ans, err := s.applyOnce(ctx, r.Reference, r.IdempotencyKey, fp, func(in *intent) answer {
		if !cancelable(in.Status) {
			return refused(invalid(http.StatusBadRequest, "payment_intent_unexpected_state", fmt.Sprintf(
				"You cannot cancel this PaymentIntent because it has a status of %s.", stripeStatus(in.Status))))
		}
		cancelIntent(in, r.Reason)
		return in.snapshot()
	})
	if err != nil {
		return gateway.Result{}, err
	}
	return answerResult(ans)
}

// cancelable reports whether Cancel takes an intent in status st: Stripe
// cancels requires_payment_method (our failed), requires_capture,
// requires_action, processing and requires_confirmation.
func cancelable(st string) bool {
	switch gateway.Status(st) {
	case gateway.StatusFailed, gateway.StatusRequiresCapture, gateway.StatusRequiresAction,
		gateway.StatusProcessing, statusRequiresConfirmation:
		return true
	}
	return false
}

// cancelIntent cancels in, releasing what was capturable.
func cancelIntent(in *intent, reason string) {
	in.Status = string(gateway.StatusCanceled)
	in.AmountCapturable = 0
	in.CancellationReason = reason
}

// Retrieve returns the stored intent; an unknown reference is refused with
// resource_missing (404), as Stripe does.
func (s *Sandbox) Retrieve(ctx context.Context, reference string) (gateway.Result, error) {
	if err := s.reachable(ctx); err != nil {
		return gateway.Result{}, err
	}
	if err := checkReference(reference); err != nil {
		return gateway.Result{}, err
	}
	in, found, err := s.loadIntent(ctx, reference)
	switch {
	case err != nil:
		return gateway.Result{}, err
	case !found:
		return gateway.Result{}, noSuchIntent(reference)
	}
	return in.result(), nil
}

// Find returns the intent r.Reference names, or else the intent made for
// r.PaymentID (see pick); Found.Exists is false when there is none. A
// reference that is not a sandbox one is refused with resource_missing.
func (s *Sandbox) Find(ctx context.Context, r gateway.FindRequest) (gateway.Found, error) {
	if err := s.reachable(ctx); err != nil {
		return gateway.Found{}, err
	}
	if r.PaymentID == "" && r.Reference == "" {
		return gateway.Found{}, invalid(http.StatusBadRequest, "parameter_missing",
			"sandbox: a search needs the payment id or the reference")
	}
	if r.Reference != "" {
		if err := checkReference(r.Reference); err != nil {
			return gateway.Found{}, err
		}
		in, found, err := s.loadIntent(ctx, r.Reference)
		if err != nil {
			return gateway.Found{}, err
		}
		if found {
			return gateway.Found{Exists: true, Result: in.result()}, nil
		}
	}
	intents, err := s.paymentIntents(ctx, r.PaymentID)
	if err != nil {
		return gateway.Found{}, err
	}
	return pick(intents), nil
}

// paymentIntents returns the intents made for paymentID, oldest first.
func (s *Sandbox) paymentIntents(ctx context.Context, paymentID string) ([]intent, error) {
	ids, err := s.state.SandboxObjectIDs(ctx, paymentID, kindIntent)
	if err != nil {
		return nil, stateError(err)
	}
	out := make([]intent, 0, len(ids))
	for _, id := range ids {
		in, found, err := s.loadIntent(ctx, id)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, in)
		}
	}
	return out, nil
}

// pick chooses, of a payment's intents (oldest first), the one Find
// reports: the one that took or may still take money if any (succeeded,
// then requires_capture, then one under way), else the newest.
func pick(intents []intent) gateway.Found {
	best, bestRank := -1, 0
	for i, in := range intents {
		rank := pickRank(in.Status)
		if best < 0 || rank <= bestRank { // <=: the newest of a rank
			best, bestRank = i, rank
		}
	}
	if best < 0 {
		return gateway.Found{}
	}
	return gateway.Found{Exists: true, Result: intents[best].result()}
}

// pickRank orders statuses for pick, lowest first.
func pickRank(st string) int {
	switch gateway.Status(st) {
	case gateway.StatusSucceeded:
		return 0
	case gateway.StatusRequiresCapture:
		return 1
	case gateway.StatusRequiresAction, gateway.StatusProcessing, statusRequiresConfirmation:
		return 2
	}
	return 3
}

// Void makes sure no intent of the payment can still take money: it marks
// r.PaymentID voided (so that a create arriving later makes a canceled
// intent, see CreatePayment), then cancels every intent of the payment, and
// the one r.Reference names, that is not final, and returns the payment's
// intent as Find would. Found.Exists is false when there is none. Void
// converges rather than replays: called again, it finds the same state, so
// it saves no answer.
func (s *Sandbox) Void(ctx context.Context, r gateway.VoidRequest) (gateway.Found, error) {
	if err := s.reachable(ctx); err != nil {
		return gateway.Found{}, err
	}
	if r.PaymentID == "" && r.Reference == "" {
		return gateway.Found{}, invalid(http.StatusBadRequest, "parameter_missing",
			"sandbox: a void needs the payment id or the reference")
	}
	if r.Reference != "" {
		if err := checkReference(r.Reference); err != nil {
			return gateway.Found{}, err
		}
	}
	if len(r.PaymentID) > maxPaymentIDLen {
		return gateway.Found{}, invalid(http.StatusBadRequest, "parameter_invalid_string",
			fmt.Sprintf("sandbox: the payment id is longer than %d characters", maxPaymentIDLen))
	}
	if r.PaymentID != "" {
		// The mark first, then the search: see CreatePayment.
		mark := &voidMark{Reason: r.Reason, Created: s.now().Unix()}
		if _, err := create(ctx, s, voidID(r.PaymentID), kindVoid, r.PaymentID, mark); err != nil {
			return gateway.Found{}, err
		}
	}
	refs, err := s.state.SandboxObjectIDs(ctx, r.PaymentID, kindIntent)
	if err != nil {
		return gateway.Found{}, stateError(err)
	}
	if r.Reference != "" && !contains(refs, r.Reference) {
		refs = append(refs, r.Reference)
	}
	named := -1
	intents := make([]intent, 0, len(refs))
	for _, ref := range refs {
		var canceledNow bool
		in, found, err := update(ctx, s, ref, func(in *intent) (bool, error) {
			canceledNow = false
			if in.Status == string(gateway.StatusFailed) || !cancelable(in.Status) {
				return false, nil // final: failed, succeeded or canceled
			}
			cancelIntent(in, r.Reason)
			canceledNow = true
			return true, nil
		})
		if err != nil {
			return gateway.Found{}, err
		}
		if !found {
			continue
		}
		if canceledNow {
			s.log.InfoContext(ctx, "sandbox: intent canceled by a void", "reference", ref, "payment_id", r.PaymentID)
		}
		if ref == r.Reference {
			named = len(intents)
		}
		intents = append(intents, in)
	}
	if named >= 0 {
		return gateway.Found{Exists: true, Result: intents[named].result()}, nil
	}
	return pick(intents), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Refund refunds r.Amount, or all that is left when it is 0, of what a
// succeeded intent received: more than is left is refused with
// amount_too_large, or charge_already_refunded when nothing is left; an
// intent that has not succeeded is refused with
// payment_intent_unexpected_state. The refund succeeds at once and is
// stored with the intent; the answer, refusals included, is saved under
// r.IdempotencyKey, which is required: it derives the refund's reference.
// A disputed intent is refused with charge_disputed, as Stripe refuses to
// refund a charge that was charged back, unless the dispute was won.
//
// A refund of pm_card_refundFail answers succeeded too, and fails later, as
// Stripe's test card 4000 0000 0000 5126 does: Options.RefundFailureDelay
// after the answer, a goroutine records it as failed with failure_reason
// expired_or_canceled_card (which gives its amount back to the intent) and
// delivers a charge.refund.updated event about it (RefundFailedEventID),
// signed, to PublicURL/webhooks/stripe, trying again a few times when the
// route does not take it. A retry of the call with its key answers what the
// first call answered (succeeded), as Stripe replays a saved answer, and
// sets the failure off again: it fails the refund if it has not failed yet
// and delivers the event, with the same id, either way. So a process that
// stopped before the failure (the timer is the one thing the sandbox keeps
// in memory) leaves it to the next retry, and a failure whose event was
// lost is told again; RetrieveRefund says failed once it has failed.
func (s *Sandbox) Refund(ctx context.Context, r gateway.RefundRequest) (gateway.RefundResult, error) {
	if err := s.reachable(ctx); err != nil {
		return gateway.RefundResult{}, err
	}
	if r.IdempotencyKey == "" {
		return gateway.RefundResult{}, invalid(http.StatusBadRequest, "parameter_missing",
			"sandbox: an idempotency key is required: it derives the refund's reference")
	}
	if err := checkReference(r.Reference); err != nil {
		return gateway.RefundResult{}, err
	}
	currency, err := s.checkOptionalAmount(r.Currency, r.Amount)
	if err != nil {
		return gateway.RefundResult{}, err
	}
	switch r.Reason {
	case "", "duplicate", "fraudulent", "requested_by_customer":
	default:
		return gateway.RefundResult{}, invalid(http.StatusBadRequest, "parameter_invalid_string",
			fmt.Sprintf("sandbox: invalid refund reason %q: want duplicate, fraudulent or requested_by_customer", r.Reason))
	}
	fp := fingerprint("refund", r.Reference, r.Amount, r.Reason)
	if err := s.claimKey(ctx, r.IdempotencyKey, fp, r.Reference, r.PaymentID); err != nil {
		return gateway.RefundResult{}, err
	}
	refundRef := RefundPrefix + keyID(r.IdempotencyKey)
	ans, err := s.applyOnce(ctx, r.Reference, r.IdempotencyKey, fp, func(in *intent) answer {
		if in.Status != string(gateway.StatusSucceeded) {
			return refused(invalid(http.StatusBadRequest, "payment_intent_unexpected_state", fmt.Sprintf(
				"This PaymentIntent does not have a successful charge to refund (status %s).", stripeStatus(in.Status))))
		}
		if d := in.Dispute; d != nil && d.Status != string(gateway.DisputeWon) {
			return refused(invalid(http.StatusBadRequest, "charge_disputed", fmt.Sprintf(
				"Charge %s has been charged back; cannot issue a refund.", chargeID(in.ID))))
		}
		if e := sameCurrency(currency, in); e != nil {
			return refused(e)
		}
		left := in.AmountReceived - in.AmountRefunded
		if left <= 0 {
			return refused(invalid(http.StatusBadRequest, "charge_already_refunded",
				fmt.Sprintf("PaymentIntent %s has already been refunded.", in.ID)))
		}
		amount := r.Amount
		if amount == 0 {
			amount = left
		}
		if amount > left {
			return refused(invalid(http.StatusBadRequest, "amount_too_large", fmt.Sprintf(
				"Refund amount (%d) is greater than unrefunded amount on charge (%d)", amount, left)))
		}
		if e := checkUnits(in.Currency, amount); e != nil {
			return refused(e)
		}
		rf := refundState{ID: refundRef, Amount: amount, Status: string(gateway.RefundSucceeded),
			Reason: r.Reason, Created: s.now().Unix(), PaymentID: r.PaymentID,
			FailsWith: testMethods[in.PaymentMethod].refundFailure}
		in.Refunds = append(in.Refunds, rf)
		in.AmountRefunded += amount
		return answer{Refund: &rf}
	})
	if err != nil {
		return gateway.RefundResult{}, err
	}
	if err := ans.err(); err != nil {
		return gateway.RefundResult{}, err
	}
	if ans.Refund == nil {
		return gateway.RefundResult{}, stateError(fmt.Errorf("the answer saved for refund %s holds no refund", refundRef))
	}
	if ans.Refund.FailsWith != "" {
		s.failRefundLater(r.Reference, ans.Refund.ID)
	}
	return ans.Refund.result(), nil
}

// checkOptionalAmount checks the amount of a capture or refund, where 0
// means "all of it", and its currency when given ("" leaves it to the
// intent's). It returns the upper-case currency.
func (s *Sandbox) checkOptionalAmount(currency string, amount int64) (string, error) {
	if amount != 0 {
		if err := money.CheckAmount("amount", amount); err != nil {
			return "", invalid(http.StatusBadRequest, "amount_too_small", "sandbox: "+err.Error())
		}
	}
	if currency == "" {
		return "", nil
	}
	code, err := checkCurrency(currency)
	if err != nil {
		return "", err
	}
	if err := checkUnits(code, amount); err != nil {
		return "", err
	}
	return code, nil
}

// sameCurrency refuses a request in a currency other than the intent's.
func sameCurrency(currency string, in *intent) *gateway.Error {
	if currency != "" && !strings.EqualFold(currency, in.Currency) {
		return invalid(http.StatusBadRequest, "parameter_invalid_string", fmt.Sprintf(
			"sandbox: the request's currency %s is not the PaymentIntent's (%s)", currency, in.Currency))
	}
	return nil
}

// checkReference refuses what is not a sandbox reference, as Stripe refuses
// an unknown PaymentIntent id.
func checkReference(ref string) error {
	if !validReference(ref) {
		return noSuchIntent(ref)
	}
	return nil
}

// stripeStatus is the PaymentIntent status Stripe would show for st.
func stripeStatus(st string) string {
	switch gateway.Status(st) {
	case gateway.StatusFailed:
		return "requires_payment_method"
	}
	return st
}
