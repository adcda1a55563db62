package stripe

import (
	"context"
	"strings"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
)

// refundFailureUnknown is the failure code of a failed refund that names no
// failure_reason; it is Stripe's own value for that case.
const refundFailureUnknown = string(stripego.RefundFailureReasonUnknown)

// Refund refunds part of what a PaymentIntent received, or all of it. Amount
// (in ISO minor units of Currency) must be positive: the caller decides how
// much, as it alone keeps the sum of refunds below what was received; Stripe
// refunding "everything left" would hide that number. Reason is sent when it
// is one of Stripe's (duplicate, fraudulent, requested_by_customer), and
// PaymentID as metadata['payment_id'] so webhooks find the payment.
//
// Stripe's refund statuses map one to one, but requires_action (the customer
// must supply details for some payment methods) is pending; a failed refund
// carries Stripe's failure_reason as FailureCode.
func (g *Gateway) Refund(ctx context.Context, r gateway.RefundRequest) (gateway.RefundResult, error) {
	if err := checkKey(r.IdempotencyKey); err != nil {
		return gateway.RefundResult{}, err
	}
	if err := checkReference(r.Reference); err != nil {
		return gateway.RefundResult{}, err
	}
	if r.Amount <= 0 {
		return gateway.RefundResult{}, notPositive(r.Amount)
	}
	amount, err := toStripe(r.Currency, r.Amount)
	if err != nil {
		return gateway.RefundResult{}, err
	}
	params := &stripego.RefundParams{
		PaymentIntent: stripego.String(r.Reference),
		Amount:        stripego.Int64(amount),
	}
	if reason, ok := refundReason(r.Reason); ok {
		params.Reason = stripego.String(string(reason))
	}
	if r.PaymentID != "" {
		params.AddMetadata(metadataPaymentID, r.PaymentID)
	}
	params.Context = ctx
	params.SetIdempotencyKey(r.IdempotencyKey)
	re, err := g.api.Refunds.New(params)
	if err != nil {
		return gateway.RefundResult{}, g.fail(ctx, "refund", err)
	}
	res, err := refundResultOf(re, r.Currency)
	if err != nil {
		return gateway.RefundResult{}, g.unreadable(ctx, "refund", err)
	}
	g.log.DebugContext(ctx, "stripe: refund created", "payment_id", r.PaymentID, "reference", r.Reference,
		"refund", res.Reference, "status", string(res.Status))
	return res, nil
}

// refundReason maps a refund reason onto Stripe's enumeration; Stripe's own
// expired_uncaptured_charge is not one a caller may send.
func refundReason(reason string) (stripego.RefundReason, bool) {
	switch r := stripego.RefundReason(strings.ToLower(strings.TrimSpace(reason))); r {
	case stripego.RefundReasonDuplicate, stripego.RefundReasonFraudulent, stripego.RefundReasonRequestedByCustomer:
		return r, true
	}
	return "", false
}

// refundResultOf maps a Refund onto a gateway.RefundResult, its amount in
// ISO minor units of its own currency (want standing in when it names none;
// another currency is an error).
func refundResultOf(re *stripego.Refund, want string) (gateway.RefundResult, error) {
	res := gateway.RefundResult{Reference: re.ID, Status: refundStatusOf(re.Status), Amount: re.Amount}
	u, err := answerUnits(re.Currency, want)
	if err != nil {
		return gateway.RefundResult{}, err
	}
	if err := fromStripe(u, &res.Amount); err != nil {
		return gateway.RefundResult{}, err
	}
	if res.Status == gateway.RefundFailed || res.Status == gateway.RefundCanceled {
		res.FailureCode = string(re.FailureReason)
	}
	if res.Status == gateway.RefundFailed && res.FailureCode == "" {
		res.FailureCode = refundFailureUnknown
	}
	return res, nil
}

// refundStatusOf maps Stripe's refund status. requires_action and any
// status this package does not know are pending: the refund is neither
// done nor over, and its webhook will say how it ends.
func refundStatusOf(s stripego.RefundStatus) gateway.RefundStatus {
	switch s {
	case stripego.RefundStatusSucceeded:
		return gateway.RefundSucceeded
	case stripego.RefundStatusFailed:
		return gateway.RefundFailed
	case stripego.RefundStatusCanceled:
		return gateway.RefundCanceled
	default:
		return gateway.RefundPending
	}
}
