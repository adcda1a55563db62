package store

import (
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/timeline"
)

// Payments' and refunds' timelines are written by their saves: each save
// that changes what a person would want to know (the gateway took the
// request, a status, the capture, attention raised or cleared) appends an
// entry, at the save's time, and a repeated save appends nothing
// (timeline.Append). Disputes write their own, in their workflow.

// paymentSteps returns the timeline after a save that moves a payment from
// prev (nil: the save inserts it) to rec.
func paymentSteps(tl []timeline.Entry, prev *ent.Payment, rec PaymentRecord) []timeline.Entry {
	if len(tl) == 0 {
		tl = append(tl, timeline.Entry{At: rec.CreatedAt, Kind: "payment.created", Actor: timeline.ActorSystem,
			Note: fmt.Sprintf("%s from %s", FormatAmount(rec.Amount, rec.Currency), partyName(rec.CustomerID))})
	}
	at := rec.UpdatedAt
	was := prev
	if was == nil {
		// A payment starts processing, with no reference and no mark.
		was = &ent.Payment{Status: payment.StatusProcessing}
	}
	if was.GatewayReference == "" && rec.GatewayReference != "" {
		tl = timeline.Append(tl, timeline.Entry{At: at, Kind: "payment.submitted", Actor: timeline.ActorGateway,
			Note: fmt.Sprintf("%s answered as %s", gatewayName(rec.Gateway), rec.GatewayReference)})
	}
	if rec.Status != was.Status {
		e := timeline.Entry{At: at, Kind: "payment." + string(rec.Status), Actor: timeline.ActorGateway}
		switch rec.Status {
		case payment.StatusRequiresAction:
			e.Note = "the customer must authenticate (3-D Secure)"
		case payment.StatusRequiresCapture:
			e.Note = fmt.Sprintf("%s authorized; capture it to take the money", FormatAmount(rec.AmountCapturable, rec.Currency))
		case payment.StatusSucceeded:
			e.Note = fmt.Sprintf("%s received", FormatAmount(rec.AmountReceived, rec.Currency))
			if was.Status == payment.StatusRequiresCapture {
				e.Kind = "payment.captured"
			}
		case payment.StatusFailed:
			e.Note = rec.FailureMessage
		case payment.StatusCanceled:
			e.Actor = timeline.ActorSystem
			e.Note = rec.FailureMessage
		}
		tl = timeline.Append(tl, e)
	}
	tl = attentionSteps(tl, "payment", at, was.NeedsAttention, rec.NeedsAttention, rec.AttentionReason)
	return tl
}

// refundSteps returns the timeline after a save that moves a refund from
// prev (nil: the refund is being created) to rec.
func refundSteps(tl []timeline.Entry, prev *ent.Refund, rec RefundRecord) []timeline.Entry {
	if prev == nil {
		return timeline.Append(tl, timeline.Entry{At: rec.CreatedAt, Kind: "refund.created", Actor: timeline.ActorSystem,
			Note: fmt.Sprintf("%s of %s", FormatAmount(rec.Amount, rec.Currency), rec.PaymentID)})
	}
	at := utc(rec.UpdatedAt)
	if prev.GatewayReference == "" && rec.GatewayReference != "" {
		tl = timeline.Append(tl, timeline.Entry{At: at, Kind: "refund.submitted", Actor: timeline.ActorGateway,
			Note: fmt.Sprintf("%s accepted it as %s", gatewayName(prev.Gateway), rec.GatewayReference)})
	}
	if rec.Status != prev.Status {
		e := timeline.Entry{At: at, Kind: "refund." + string(rec.Status), Actor: timeline.ActorGateway}
		switch rec.Status {
		case refund.StatusSucceeded:
			e.Note = FormatAmount(rec.Amount, rec.Currency) + " returned to the customer"
		case refund.StatusFailed:
			e.Note = "the gateway failed it"
			if rec.FailureReason != "" {
				e.Note += " (" + rec.FailureReason + ")"
			}
			if prev.Status == refund.StatusSucceeded || prev.GatewayReference != "" {
				e.Note += "; the amount is back on the merchant's balance"
			}
		case refund.StatusCanceled:
			e.Note = "canceled; the amount is refundable again"
		}
		tl = timeline.Append(tl, e)
	}
	return attentionSteps(tl, "refund", at, prev.NeedsAttention, rec.NeedsAttention, rec.AttentionReason)
}

// attentionSteps records an object's attention mark being raised or
// cleared.
func attentionSteps(tl []timeline.Entry, object string, at time.Time, was, is bool, reason string) []timeline.Entry {
	switch {
	case is && !was:
		return timeline.Append(tl, timeline.Entry{At: at, Kind: object + ".needs_attention", Actor: timeline.ActorSystem, Note: reason})
	case was && !is:
		return timeline.Append(tl, timeline.Entry{At: at, Kind: object + ".attention_cleared", Actor: timeline.ActorSystem})
	}
	return tl
}

func partyName(customerID string) string {
	if customerID == "" {
		return "a guest"
	}
	return customerID
}

func gatewayName(gw string) string {
	if gw == "" {
		return "the gateway"
	}
	return "the " + gw + " gateway"
}
