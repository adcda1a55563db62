package api

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	entrefund "github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/money"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
	"github.com/payments-platform/payments/workflows/refund"
)

type refundService struct{ s *Server }

var refundStatusToProto = map[entrefund.Status]paymentsv1.RefundStatus{
	entrefund.StatusPending:   paymentsv1.RefundStatus_REFUND_STATUS_PENDING,
	entrefund.StatusSucceeded: paymentsv1.RefundStatus_REFUND_STATUS_SUCCEEDED,
	entrefund.StatusFailed:    paymentsv1.RefundStatus_REFUND_STATUS_FAILED,
	entrefund.StatusCanceled:  paymentsv1.RefundStatus_REFUND_STATUS_CANCELED,
}

var refundStatusFromProto = inverse(refundStatusToProto)

var refundReasonToProto = map[entrefund.Reason]paymentsv1.RefundReason{
	entrefund.ReasonUnspecified:         paymentsv1.RefundReason_REFUND_REASON_UNSPECIFIED,
	entrefund.ReasonDuplicate:           paymentsv1.RefundReason_REFUND_REASON_DUPLICATE,
	entrefund.ReasonFraudulent:          paymentsv1.RefundReason_REFUND_REASON_FRAUDULENT,
	entrefund.ReasonRequestedByCustomer: paymentsv1.RefundReason_REFUND_REASON_REQUESTED_BY_CUSTOMER,
	entrefund.ReasonOther:               paymentsv1.RefundReason_REFUND_REASON_OTHER,
}

var refundReasonFromProto = inverse(refundReasonToProto)

// CreateRefund refunds a payment through the refund's workflow, which takes
// the amount from the payment's balance (refused over-refunds end it at
// once), asks the gateway and answers once the gateway has, or after the
// bounded wait with the refund pending.
func (h *refundService) CreateRefund(ctx context.Context, req *connect.Request[paymentsv1.CreateRefundRequest]) (*connect.Response[paymentsv1.CreateRefundResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if p.Role == roleCustomer {
		return nil, errs.PermissionDenied("only the payment's merchant or an admin can refund it")
	}
	pay, err := h.s.d.Store.PaymentByID(ctx, m.PaymentId)
	if err != nil {
		return nil, err
	}
	if p.Role != roleAdmin && pay.MerchantID != p.AccountID {
		return nil, errs.NotFound("payment")
	}
	if m.Currency != "" {
		cur, err := money.Normalize("currency", m.Currency)
		if err != nil {
			return nil, err
		}
		if cur.Code != pay.Currency {
			return nil, errs.InvalidArgument("currency", "the payment is in %s, not %s: a refund is in the payment's currency", pay.Currency, cur.Code)
		}
	}
	if m.Amount != 0 {
		// What the gateway cannot represent exactly is refused now, not by
		// a refund that fails.
		if err := gateway.UnitsFor(pay.Gateway, pay.Currency).Check("amount", "amount", m.Amount); err != nil {
			return nil, err
		}
	}
	return idempotent(ctx, h.s, paymentsv1connect.RefundServiceCreateRefundProcedure, p.AccountID, req.Header(), m,
		func(ctx context.Context, call idemCall) (*paymentsv1.CreateRefundResponse, error) {
			// The common refusals answer at once, without a workflow; the
			// balance decides for good (a concurrent refund may take what
			// is left meanwhile). Inside the idempotent call: a replay of a
			// refund that took the rest gets its refund, not a refusal.
			reID, prior, exists, err := objectID(ctx, call, ids.Refund, h.s.d.Store.RefundByID)
			if err != nil {
				return nil, err
			}
			if exists {
				return &paymentsv1.CreateRefundResponse{Refund: h.s.refundToProto(prior, p)}, nil
			}
			amount := m.Amount
			if amount == 0 {
				amount = store.Refundable(pay)
			}
			if err := store.CheckRefundable(pay, amount); err != nil {
				return nil, err
			}
			in := refund.Input{
				RefundID: reID, PaymentID: pay.ID, MerchantID: pay.MerchantID,
				Amount: m.Amount, Currency: pay.Currency, Reason: string(refundReasonFromProto[m.Reason]),
				Metadata: m.Metadata, CreatedAt: call.At, Logic: refund.CurrentLogic,
			}
			call.SideEffects()
			rec, err := h.s.startRefund(ctx, in)
			if err != nil {
				return nil, err
			}
			return &paymentsv1.CreateRefundResponse{Refund: h.s.refundToProto(rec, p)}, nil
		})
}

// startRefund starts the refund's workflow and waits, within the bounded
// wait, for the gateway's answer; after it, for the refund's row, and
// answers with it pending.
func (s *Server) startRefund(ctx context.Context, in refund.Input) (*ent.Refund, error) {
	work := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, dl.Add(-answerMargin))
		defer cancel()
	}
	op := workflowStart{ID: refund.WorkflowID(in.RefundID), Name: refund.WorkflowName, Input: in,
		Attrs: refund.StartAttributes(in), ObjectKey: "refund_id", ObjectID: in.RefundID}
	waitCtx, cancel := context.WithTimeout(work, s.d.PaymentWait)
	defer cancel()
	var rec store.RefundRecord
	err := s.updateWithStartOp(waitCtx, op, refund.UpdateAwaitResult, &rec)
	if err == nil {
		return s.d.Store.RefundByID(ctx, in.RefundID)
	}
	if refusal := temporalError(err); isDomain(refusal) {
		return nil, refusal
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if r, rerr := s.d.Store.RefundByID(ctx, in.RefundID); rerr == nil {
		return r, nil
	}
	if work.Err() != nil || (waitCtx.Err() == nil && ambiguous(err)) {
		return nil, refundStartUnknown(in.RefundID, err)
	}
	if waitCtx.Err() == nil {
		return nil, temporalError(err)
	}
	// The gateway is slow, or no worker runs the workflow: wait for the
	// refund's row, once more at most as long, and then say that the
	// refund may exist rather than hold the caller without a bound.
	recordedCtx, cancelRecorded := context.WithTimeout(work, s.d.PaymentWait)
	defer cancelRecorded()
	err = s.updateWithStartOp(recordedCtx, op, refund.UpdateAwaitRecorded, &rec)
	if err == nil {
		return s.d.Store.RefundByID(ctx, in.RefundID)
	}
	if refusal := temporalError(err); isDomain(refusal) {
		return nil, refusal
	}
	if r, rerr := s.d.Store.RefundByID(ctx, in.RefundID); rerr == nil {
		return r, nil
	}
	return nil, refundStartUnknown(in.RefundID, err)
}

// isDomain reports a refusal with a code of its own (not a failure of the
// workflow service).
func isDomain(err error) bool {
	switch errs.KindOf(err) {
	case errs.KindFailedPrecondition, errs.KindInvalidArgument, errs.KindNotFound:
		return true
	}
	return false
}

// ReasonRefundMayExist is the google.rpc.ErrorInfo reason of an
// `unavailable` CreateRefund whose refund may have been created; its
// metadata holds the refund's id under "refund_id".
const ReasonRefundMayExist = "REFUND_MAY_EXIST"

// refundStartUnknown answers when it stays unknown whether the refund's
// workflow was started: GetRefund with the id tells, where a blind retry
// (without Idempotency-Key) could refund twice.
func refundStartUnknown(refundID string, cause error) error {
	return &errs.Error{
		Kind: errs.KindUnavailable,
		Message: "the workflow service did not confirm the refund in time; refund " + refundID +
			" may have been created: call GetRefund with this id before trying again",
		Err:  errors.New(cause.Error()),
		Info: &errs.Info{Reason: ReasonRefundMayExist, Metadata: map[string]string{"refund_id": refundID}},
	}
}

func (h *refundService) GetRefund(ctx context.Context, req *connect.Request[paymentsv1.GetRefundRequest]) (*connect.Response[paymentsv1.GetRefundResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := h.s.d.Store.RefundByID(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	if !refundVisible(p, r) {
		return nil, errs.NotFound("refund")
	}
	return connect.NewResponse(&paymentsv1.GetRefundResponse{Refund: h.s.refundToProto(r, p)}), nil
}

// refundVisible: admins, and the parties of the refunded payment.
func refundVisible(p auth.Principal, r *ent.Refund) bool {
	return sees(p, r.MerchantID, r.CustomerID)
}

func (h *refundService) ListRefunds(ctx context.Context, req *connect.Request[paymentsv1.ListRefundsRequest]) (*connect.Response[paymentsv1.ListRefundsResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := checkIDFilters(idFilter{"payment_id", m.PaymentId, ids.Payment}); err != nil {
		return nil, err
	}
	f := store.RefundFilter{PaymentID: m.PaymentId, Status: refundStatusFromProto[m.Status]}
	f.Party, f.CreatedAfter, f.CreatedBefore = listScope(p, m.CreatedAfter, m.CreatedBefore)
	rs, next, err := listPage(h.s, "refunds", p, m, store.RefundCursor,
		func(page store.Page) ([]*ent.Refund, error) { return h.s.d.Store.ListRefunds(ctx, f, page) })
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListRefundsResponse{NextPageToken: next}
	for _, r := range rs {
		res.Refunds = append(res.Refunds, h.s.refundToProto(r, p))
	}
	return connect.NewResponse(res), nil
}

// refundToProto renders a refund for caller: the gateway's reference goes
// to admins and the merchant, workflow_url to admins (or everyone in dev),
// as for payments.
func (s *Server) refundToProto(r *ent.Refund, caller auth.Principal) *paymentsv1.Refund {
	out := &paymentsv1.Refund{
		Id: r.ID, PaymentId: r.PaymentID, Amount: r.Amount, Currency: r.Currency,
		Status: refundStatusToProto[r.Status], Reason: refundReasonToProto[r.Reason],
		FailureReason: r.FailureReason, WorkflowId: r.WorkflowID, Metadata: r.Metadata,
		CreatedAt: timestamppb.New(r.CreatedAt), UpdatedAt: timestamppb.New(r.UpdatedAt),
	}
	if caller.Role == roleAdmin || (caller.Role == roleMerchant && r.MerchantID == caller.AccountID) {
		out.GatewayReference = r.GatewayReference
	}
	if caller.Role == roleAdmin || s.d.ShowWorkflowURLs {
		out.WorkflowUrl = s.workflowURL(r.WorkflowID)
	}
	return out
}
