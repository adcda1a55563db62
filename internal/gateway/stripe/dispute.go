package stripe

import (
	"context"
	"fmt"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
)

// fileIDPrefix starts the id of a Stripe File upload.
const fileIDPrefix = "file_"

// customerCommunicationHeading introduces, in uncategorized_text, a
// customer communication given as text (see disputeEvidenceParams).
const customerCommunicationHeading = "Customer communication:\n"

// UpdateDispute stages (Submit false) or submits (Submit true) evidence
// for a dispute, through Stripe's POST /v1/disputes/{id}, and returns the
// dispute as Stripe answers it. submit is always sent, false included:
// Stripe's default is to submit, and evidence once submitted cannot be
// taken back.
//
// The evidence is sent in Stripe's fields (see disputeEvidenceParams); an
// empty field is not sent, so it leaves what Stripe holds as it is.
func (g *Gateway) UpdateDispute(ctx context.Context, r gateway.DisputeUpdateRequest) (gateway.DisputeResult, error) {
	if err := checkKey(r.IdempotencyKey); err != nil {
		return gateway.DisputeResult{}, err
	}
	if !gateway.LooksLikeID(r.Reference) {
		return gateway.DisputeResult{}, &gateway.Error{Kind: gateway.Invalid, Code: "resource_missing",
			Message: fmt.Sprintf("stripe: invalid dispute id %q", r.Reference)}
	}
	params := &stripego.DisputeParams{
		Evidence: disputeEvidenceParams(r.Evidence),
		Submit:   stripego.Bool(r.Submit),
	}
	params.Context = ctx
	params.SetIdempotencyKey(r.IdempotencyKey)
	dp, err := g.api.Disputes.Update(r.Reference, params)
	if err != nil {
		return gateway.DisputeResult{}, g.fail(ctx, "dispute_update", err)
	}
	res, err := disputeResultOf(dp, r.Currency)
	if err != nil {
		return gateway.DisputeResult{}, g.unreadable(ctx, "dispute_update", err)
	}
	g.log.DebugContext(ctx, "stripe: dispute updated", "dispute", res.Reference, "reference", res.PaymentReference,
		"status", string(res.Status), "submitted", r.Submit, "submission_count", res.SubmissionCount)
	return res, nil
}

// CloseDispute concedes a dispute, through Stripe's POST
// /v1/disputes/{id}/close, and returns the dispute as Stripe answers it:
// a dispute that needed a response is then lost. Closing cannot be undone.
// Nothing but the idempotency key is sent: the route takes no parameters.
func (g *Gateway) CloseDispute(ctx context.Context, r gateway.DisputeCloseRequest) (gateway.DisputeResult, error) {
	if err := checkKey(r.IdempotencyKey); err != nil {
		return gateway.DisputeResult{}, err
	}
	if !gateway.LooksLikeID(r.Reference) {
		return gateway.DisputeResult{}, &gateway.Error{Kind: gateway.Invalid, Code: "resource_missing",
			Message: fmt.Sprintf("stripe: invalid dispute id %q", r.Reference)}
	}
	params := &stripego.DisputeParams{}
	params.Context = ctx
	params.SetIdempotencyKey(r.IdempotencyKey)
	dp, err := g.api.Disputes.Close(r.Reference, params)
	if err != nil {
		return gateway.DisputeResult{}, g.fail(ctx, "dispute_close", err)
	}
	res, err := disputeResultOf(dp, r.Currency)
	if err != nil {
		return gateway.DisputeResult{}, g.unreadable(ctx, "dispute_close", err)
	}
	g.log.DebugContext(ctx, "stripe: dispute closed", "dispute", res.Reference, "reference", res.PaymentReference,
		"status", string(res.Status))
	return res, nil
}

// disputeEvidenceParams maps our evidence onto Stripe's fields:
//   - ProductDescription and ShippingTrackingNumber onto their text fields;
//   - RefundPolicy onto refund_policy when it is the id of a File upload
//     (file_...), else, as text, onto refund_policy_disclosure: Stripe's
//     refund_policy takes only a file id, and refuses text;
//   - CustomerCommunication onto customer_communication when it is a file
//     id; text has no field of its own at Stripe (customer_communication
//     takes only a file id), so it goes into uncategorized_text, under a
//     heading;
//   - uncategorized_text is Explanation, UncategorizedText and the customer
//     communication as text, those given, separated by a blank line:
//     Explanation has no field of its own either, and comes first, as the
//     reviewer reads it first.
func disputeEvidenceParams(e gateway.DisputeEvidence) *stripego.DisputeEvidenceParams {
	p := &stripego.DisputeEvidenceParams{}
	set := func(dst **string, v string) {
		if v != "" {
			*dst = stripego.String(v)
		}
	}
	set(&p.ProductDescription, e.ProductDescription)
	set(&p.ShippingTrackingNumber, e.ShippingTrackingNumber)
	if isFileID(e.RefundPolicy) {
		set(&p.RefundPolicy, e.RefundPolicy)
	} else {
		set(&p.RefundPolicyDisclosure, e.RefundPolicy)
	}
	var text []string
	for _, part := range []string{e.Explanation, e.UncategorizedText} {
		if part != "" {
			text = append(text, part)
		}
	}
	if isFileID(e.CustomerCommunication) {
		set(&p.CustomerCommunication, e.CustomerCommunication)
	} else if e.CustomerCommunication != "" {
		text = append(text, customerCommunicationHeading+e.CustomerCommunication)
	}
	set(&p.UncategorizedText, strings.Join(text, "\n\n"))
	return p
}

// isFileID reports whether s is the id of a Stripe File upload.
func isFileID(s string) bool {
	return strings.HasPrefix(s, fileIDPrefix) && gateway.LooksLikeID(s)
}

// disputeResultOf maps a Dispute onto a gateway.DisputeResult, its amount
// in ISO minor units of its own currency (want standing in when it names
// none; another currency is an error, CodeUnexpectedAnswer). Stripe's
// statuses are gateway.DisputeStatus's, so the status passes as it is.
func disputeResultOf(dp *stripego.Dispute, want string) (gateway.DisputeResult, error) {
	res := gateway.DisputeResult{
		Reference: dp.ID,
		Status:    gateway.DisputeStatus(dp.Status),
		Amount:    dp.Amount,
		Currency:  strings.ToUpper(string(dp.Currency)),
		Reason:    string(dp.Reason),
	}
	if res.Currency == "" {
		res.Currency = strings.ToUpper(want)
	}
	u, err := answerUnits(dp.Currency, want)
	if err != nil {
		return gateway.DisputeResult{}, err
	}
	if err := fromStripe(u, &res.Amount); err != nil {
		return gateway.DisputeResult{}, err
	}
	if dp.PaymentIntent != nil {
		res.PaymentReference = dp.PaymentIntent.ID
	}
	if ed := dp.EvidenceDetails; ed != nil {
		res.SubmissionCount = ed.SubmissionCount
		// Stripe's 0 means no response is allowed, so none is due.
		if ed.DueBy > 0 {
			res.DueBy = time.Unix(ed.DueBy, 0).UTC()
		}
	}
	return res, nil
}
