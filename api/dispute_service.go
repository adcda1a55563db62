package api

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	entdispute "github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
	"github.com/payments-platform/payments/workflows/dispute"
)

type disputeService struct{ s *Server }

var disputeStatusToProto = map[entdispute.Status]paymentsv1.DisputeStatus{
	entdispute.StatusNeedsResponse: paymentsv1.DisputeStatus_DISPUTE_STATUS_NEEDS_RESPONSE,
	entdispute.StatusUnderReview:   paymentsv1.DisputeStatus_DISPUTE_STATUS_UNDER_REVIEW,
	entdispute.StatusWon:           paymentsv1.DisputeStatus_DISPUTE_STATUS_WON,
	entdispute.StatusLost:          paymentsv1.DisputeStatus_DISPUTE_STATUS_LOST,
	entdispute.StatusAccepted:      paymentsv1.DisputeStatus_DISPUTE_STATUS_ACCEPTED,
	entdispute.StatusWithdrawn:     paymentsv1.DisputeStatus_DISPUTE_STATUS_WITHDRAWN,
}

var disputeStatusFromProto = inverse(disputeStatusToProto)

var disputeReasonToProto = map[entdispute.Reason]paymentsv1.DisputeReason{
	entdispute.ReasonFraudulent:           paymentsv1.DisputeReason_DISPUTE_REASON_FRAUDULENT,
	entdispute.ReasonDuplicate:            paymentsv1.DisputeReason_DISPUTE_REASON_DUPLICATE,
	entdispute.ReasonProductNotReceived:   paymentsv1.DisputeReason_DISPUTE_REASON_PRODUCT_NOT_RECEIVED,
	entdispute.ReasonProductUnacceptable:  paymentsv1.DisputeReason_DISPUTE_REASON_PRODUCT_UNACCEPTABLE,
	entdispute.ReasonSubscriptionCanceled: paymentsv1.DisputeReason_DISPUTE_REASON_SUBSCRIPTION_CANCELED,
	entdispute.ReasonCreditNotProcessed:   paymentsv1.DisputeReason_DISPUTE_REASON_CREDIT_NOT_PROCESSED,
	entdispute.ReasonUnrecognized:         paymentsv1.DisputeReason_DISPUTE_REASON_UNRECOGNIZED,
	entdispute.ReasonGeneral:              paymentsv1.DisputeReason_DISPUTE_REASON_GENERAL,
}

var disputeReasonFromProto = inverse(disputeReasonToProto)

var disputePartyToProto = map[entdispute.OpenedBy]paymentsv1.DisputeParty{
	entdispute.OpenedByCustomer: paymentsv1.DisputeParty_DISPUTE_PARTY_CUSTOMER,
	entdispute.OpenedByMerchant: paymentsv1.DisputeParty_DISPUTE_PARTY_MERCHANT,
	entdispute.OpenedByNetwork:  paymentsv1.DisputeParty_DISPUTE_PARTY_NETWORK,
}

var disputePartyFromProto = inverse(disputePartyToProto)

var disputeSettlementToProto = map[entdispute.Settlement]paymentsv1.DisputeSettlement{
	entdispute.SettlementNone:       paymentsv1.DisputeSettlement_DISPUTE_SETTLEMENT_NONE,
	entdispute.SettlementPending:    paymentsv1.DisputeSettlement_DISPUTE_SETTLEMENT_PENDING,
	entdispute.SettlementRefunded:   paymentsv1.DisputeSettlement_DISPUTE_SETTLEMENT_REFUNDED,
	entdispute.SettlementWithdrawn:  paymentsv1.DisputeSettlement_DISPUTE_SETTLEMENT_FUNDS_WITHDRAWN,
	entdispute.SettlementReinstated: paymentsv1.DisputeSettlement_DISPUTE_SETTLEMENT_FUNDS_REINSTATED,
}

// OpenDispute opens a dispute through its workflow, which takes the amount
// from the payment's balance (a refusal ends it at once) and answers once
// the dispute is stored.
func (h *disputeService) OpenDispute(ctx context.Context, req *connect.Request[paymentsv1.OpenDisputeRequest]) (*connect.Response[paymentsv1.OpenDisputeResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	pay, err := h.s.d.Store.PaymentByID(ctx, m.PaymentId)
	if err != nil {
		return nil, err
	}
	var openedBy entdispute.OpenedBy
	switch {
	case pay.MerchantID == p.AccountID:
		openedBy = entdispute.OpenedByMerchant
	case pay.CustomerID != "" && pay.CustomerID == p.AccountID:
		openedBy = entdispute.OpenedByCustomer
	default:
		return nil, errs.NotFound("payment")
	}
	return idempotent(ctx, h.s, paymentsv1connect.DisputeServiceOpenDisputeProcedure, p.AccountID, req.Header(), m,
		func(ctx context.Context, call idemCall) (*paymentsv1.OpenDisputeResponse, error) {
			dpID, prior, exists, err := objectID(ctx, call, ids.Dispute, h.s.d.Store.DisputeByID)
			if err != nil {
				return nil, err
			}
			if exists {
				return &paymentsv1.OpenDisputeResponse{Dispute: h.s.disputeToProto(prior, p)}, nil
			}
			// The common refusals answer at once, without a workflow; the
			// balance decides for good.
			amount := m.Amount
			if amount == 0 {
				amount = store.Refundable(pay)
			}
			if err := store.CheckDisputable(pay, amount); err != nil {
				return nil, err
			}
			in := dispute.Input{
				DisputeID: dpID, PaymentID: pay.ID, MerchantID: pay.MerchantID,
				OpenedBy: string(openedBy), OpenerID: p.AccountID,
				Reason: string(disputeReasonFromProto[m.Reason]), Description: m.Description,
				Amount: m.Amount, Currency: pay.Currency,
				ResponseDueBy: call.At.Add(h.s.d.DisputeResponseWindow), ReminderLeads: h.s.d.DisputeReminders,
				CreatedAt: call.At, Logic: dispute.CurrentLogic,
			}
			call.SideEffects()
			d, err := h.s.startDispute(ctx, in)
			if err != nil {
				return nil, err
			}
			return &paymentsv1.OpenDisputeResponse{Dispute: h.s.disputeToProto(d, p)}, nil
		})
}

// startDispute starts the dispute's workflow and waits for its row.
func (s *Server) startDispute(ctx context.Context, in dispute.Input) (*ent.Dispute, error) {
	op := workflowStart{ID: dispute.WorkflowID(in.DisputeID), Name: dispute.WorkflowName, Input: in,
		Attrs: dispute.StartAttributes(in), ObjectKey: "dispute_id", ObjectID: in.DisputeID}
	waitCtx, cancel := context.WithTimeout(ctx, s.d.PaymentWait)
	defer cancel()
	var rec store.DisputeRecord
	err := s.updateWithStartOp(waitCtx, op, dispute.UpdateAwaitRecorded, &rec)
	if err == nil {
		return s.d.Store.DisputeByID(ctx, in.DisputeID)
	}
	if refusal := temporalError(err); isDomain(refusal) || errs.KindOf(refusal) == errs.KindAlreadyExists {
		return nil, refusal
	}
	if d, derr := s.d.Store.DisputeByID(ctx, in.DisputeID); derr == nil {
		return d, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, &errs.Error{
		Kind: errs.KindUnavailable,
		Message: "the workflow service did not confirm the dispute in time; dispute " + in.DisputeID +
			" may have been opened: call GetDispute with this id before trying again",
		Err:  errors.New(err.Error()),
		Info: &errs.Info{Reason: ReasonDisputeMayExist, Metadata: map[string]string{"dispute_id": in.DisputeID}},
	}
}

// ReasonDisputeMayExist is the google.rpc.ErrorInfo reason of an
// `unavailable` OpenDispute whose dispute may have been opened; its
// metadata holds the dispute's id under "dispute_id".
const ReasonDisputeMayExist = "DISPUTE_MAY_EXIST"

func (h *disputeService) GetDispute(ctx context.Context, req *connect.Request[paymentsv1.GetDisputeRequest]) (*connect.Response[paymentsv1.GetDisputeResponse], error) {
	d, p, err := h.load(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.GetDisputeResponse{Dispute: h.s.disputeToProto(d, p)}), nil
}

// load returns a dispute the caller may see (admins, and the parties of
// the disputed payment; others get not_found), and the caller.
func (h *disputeService) load(ctx context.Context, id string) (*ent.Dispute, auth.Principal, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, p, err
	}
	d, err := h.s.d.Store.DisputeByID(ctx, id)
	if err != nil {
		return nil, p, err
	}
	if !sees(p, d.MerchantID, d.CustomerID) {
		return nil, p, errs.NotFound("dispute")
	}
	return d, p, nil
}

func (h *disputeService) ListDisputes(ctx context.Context, req *connect.Request[paymentsv1.ListDisputesRequest]) (*connect.Response[paymentsv1.ListDisputesResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := checkIDFilters(idFilter{"payment_id", m.PaymentId, ids.Payment}, idFilter{"merchant_id", m.MerchantId, ids.Account}); err != nil {
		return nil, err
	}
	f := store.DisputeFilter{
		PaymentID: m.PaymentId, MerchantID: m.MerchantId,
		Status: disputeStatusFromProto[m.Status], OpenedBy: disputePartyFromProto[m.OpenedBy],
	}
	f.Party, f.CreatedAfter, f.CreatedBefore = listScope(p, m.CreatedAfter, m.CreatedBefore)
	if m.ResponseDueBefore != nil {
		t := m.ResponseDueBefore.AsTime()
		f.DueBefore = &t
	}
	ds, next, err := listPage(h.s, "disputes", p, m, store.DisputeCursor,
		func(page store.Page) ([]*ent.Dispute, error) { return h.s.d.Store.ListDisputes(ctx, f, page) })
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListDisputesResponse{NextPageToken: next}
	for _, d := range ds {
		res.Disputes = append(res.Disputes, h.s.disputeToProto(d, p))
	}
	return connect.NewResponse(res), nil
}

func (h *disputeService) SubmitEvidence(ctx context.Context, req *connect.Request[paymentsv1.SubmitEvidenceRequest]) (*connect.Response[paymentsv1.SubmitEvidenceResponse], error) {
	m := req.Msg
	ev := evidenceFromProto(m.Evidence)
	return disputeAction(ctx, h, m.DisputeId, paymentsv1connect.DisputeServiceSubmitEvidenceProcedure, req.Header(), m,
		dispute.UpdateSubmitEvidence, func(a dispute.Actor) any { return dispute.EvidenceUpdate{Actor: a, Evidence: ev, Submit: m.Submit} },
		func(d *paymentsv1.Dispute) *paymentsv1.SubmitEvidenceResponse {
			return &paymentsv1.SubmitEvidenceResponse{Dispute: d}
		})
}

func (h *disputeService) AcceptDispute(ctx context.Context, req *connect.Request[paymentsv1.AcceptDisputeRequest]) (*connect.Response[paymentsv1.AcceptDisputeResponse], error) {
	return disputeAction(ctx, h, req.Msg.DisputeId, paymentsv1connect.DisputeServiceAcceptDisputeProcedure, req.Header(), req.Msg,
		dispute.UpdateAccept, func(a dispute.Actor) any { return dispute.Action{Actor: a} },
		func(d *paymentsv1.Dispute) *paymentsv1.AcceptDisputeResponse {
			return &paymentsv1.AcceptDisputeResponse{Dispute: d}
		})
}

func (h *disputeService) WithdrawDispute(ctx context.Context, req *connect.Request[paymentsv1.WithdrawDisputeRequest]) (*connect.Response[paymentsv1.WithdrawDisputeResponse], error) {
	return disputeAction(ctx, h, req.Msg.DisputeId, paymentsv1connect.DisputeServiceWithdrawDisputeProcedure, req.Header(), req.Msg,
		dispute.UpdateWithdraw, func(a dispute.Actor) any { return dispute.Action{Actor: a} },
		func(d *paymentsv1.Dispute) *paymentsv1.WithdrawDisputeResponse {
			return &paymentsv1.WithdrawDisputeResponse{Dispute: d}
		})
}

func (h *disputeService) ResolveDispute(ctx context.Context, req *connect.Request[paymentsv1.ResolveDisputeRequest]) (*connect.Response[paymentsv1.ResolveDisputeResponse], error) {
	m := req.Msg
	outcome := "won"
	if m.Outcome == paymentsv1.DisputeOutcome_DISPUTE_OUTCOME_LOST {
		outcome = "lost"
	}
	return disputeAction(ctx, h, m.DisputeId, paymentsv1connect.DisputeServiceResolveDisputeProcedure, req.Header(), m,
		dispute.UpdateResolve, func(a dispute.Actor) any { return dispute.Resolution{Actor: a, Outcome: outcome, Note: m.Note} },
		func(d *paymentsv1.Dispute) *paymentsv1.ResolveDisputeResponse {
			// An admin's decision: in the audit trail, once (a replay
			// under the same Idempotency-Key does not come here, and a
			// takeover of the key finds the row by its id, derived from the
			// dispute and its closing time).
			a := h.s.whoOf(ctx, req).Of(store.AuditDisputeResolved, d.GetMerchantId(),
				map[string]string{"dispute_id": d.GetId(), "outcome": outcome})
			a.ID = store.AuditID(d.GetId()+"/resolved", d.GetClosedAt().AsTime())
			h.s.auditAfter(ctx, a)
			return &paymentsv1.ResolveDisputeResponse{Dispute: d}
		})
}

// disputeAction is every action on a dispute: the caller must see the
// dispute (not_found otherwise), the action is idempotent under its key,
// and the dispute's workflow decides as an Update, answering with the
// dispute's new state or the refusal.
func disputeAction[Res any, PRes interface {
	*Res
	proto.Message
}](ctx context.Context, h *disputeService, id, procedure string, header http.Header,
	msg proto.Message, update string, arg func(dispute.Actor) any, wrapRes func(*paymentsv1.Dispute) PRes,
) (*connect.Response[Res], error) {
	d, p, err := h.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return idempotent(ctx, h.s, procedure, p.AccountID, header, msg,
		func(ctx context.Context, call idemCall) (PRes, error) {
			updateID := call.updateID(update)
			if !store.IsOpen(d.Status) {
				// Closed: by this very action, if it is a retry after a
				// crash that the workflow answered before it finished.
				var rec store.DisputeRecord
				took, err := h.s.firstOutcome(ctx, d.WorkflowID, updateID, &rec)
				switch {
				case err != nil:
					return nil, err
				case !took:
					return nil, errs.FailedPrecondition("dispute %s is %s: it is closed", d.ID, d.Status)
				}
				return wrapRes(h.s.disputeToProto(d, p)), nil
			}
			actor := dispute.Actor{AccountID: p.AccountID, Admin: p.Role == roleAdmin}
			after, err := h.s.updateDispute(ctx, d, updateID, update, arg(actor))
			if err != nil {
				return nil, err
			}
			return wrapRes(h.s.disputeToProto(after, p)), nil
		})
}

// updateDispute sends an update (named updateID, see idemCall.updateID)
// to the dispute's workflow and returns the dispute as stored after it. A
// finished workflow means a closed dispute, unless it took this very
// update before it finished (a retry after a crash).
func (s *Server) updateDispute(ctx context.Context, d *ent.Dispute, updateID, name string, arg any) (*ent.Dispute, error) {
	var rec store.DisputeRecord
	finished, err := s.sendUpdate(ctx, d.WorkflowID, updateID, name, arg, &rec)
	if err != nil {
		return nil, err
	}
	cur, err := s.d.Store.DisputeByID(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	if finished {
		return nil, errs.FailedPrecondition("dispute %s is %s: it is closed", cur.ID, cur.Status)
	}
	return cur, nil
}

func evidenceFromProto(e *paymentsv1.Evidence) disputes.Evidence {
	if e == nil {
		return disputes.Evidence{}
	}
	return disputes.Evidence{
		Explanation: e.Explanation, ProductDescription: e.ProductDescription,
		CustomerCommunication: e.CustomerCommunication, ShippingTrackingNumber: e.ShippingTrackingNumber,
		RefundPolicy: e.RefundPolicy, UncategorizedText: e.UncategorizedText,
	}
}

func evidenceToProto(e disputes.Evidence) *paymentsv1.Evidence {
	return &paymentsv1.Evidence{
		Explanation: e.Explanation, ProductDescription: e.ProductDescription,
		CustomerCommunication: e.CustomerCommunication, ShippingTrackingNumber: e.ShippingTrackingNumber,
		RefundPolicy: e.RefundPolicy, UncategorizedText: e.UncategorizedText,
	}
}

// disputeToProto renders a dispute for caller. Both parties see both
// parties' evidence once it is submitted; staged evidence only its own
// party (and admins) see. The gateway's reference goes to admins and the
// merchant, workflow_url to admins (or everyone in dev), as for payments.
func (s *Server) disputeToProto(d *ent.Dispute, caller auth.Principal) *paymentsv1.Dispute {
	out := &paymentsv1.Dispute{
		Id: d.ID, PaymentId: d.PaymentID, MerchantId: d.MerchantID, CustomerId: d.CustomerID,
		OpenedBy: disputePartyToProto[d.OpenedBy], Respondent: disputePartyToProto[store.Respondent(d.OpenedBy)],
		Reason: disputeReasonToProto[d.Reason], Description: d.Description,
		Amount: d.Amount, AmountHeld: d.AmountHeld, Currency: d.Currency, Status: disputeStatusToProto[d.Status],
		EvidenceSubmitted: d.EvidenceSubmitted, ClaimantEvidenceSubmitted: d.ClaimantEvidenceSubmitted,
		ResponseDueBy: timestamppb.New(d.ResponseDueBy), OutcomeNote: d.OutcomeNote,
		Settlement: disputeSettlementToProto[d.Settlement], NeedsAttention: d.NeedsAttention,
		WorkflowId: d.WorkflowID,
		CreatedAt:  timestamppb.New(d.CreatedAt), UpdatedAt: timestamppb.New(d.UpdatedAt),
	}
	if d.ClosedAt != nil {
		out.ClosedAt = timestamppb.New(*d.ClosedAt)
	}
	admin := caller.Role == roleAdmin
	party := func(p entdispute.OpenedBy) bool {
		switch p {
		case entdispute.OpenedByMerchant:
			return d.MerchantID == caller.AccountID
		case entdispute.OpenedByCustomer:
			return d.CustomerID != "" && d.CustomerID == caller.AccountID
		}
		return false
	}
	respondent := store.Respondent(d.OpenedBy)
	if admin || d.EvidenceSubmitted || party(respondent) {
		out.Evidence = evidenceToProto(d.Evidence)
	}
	if admin || d.ClaimantEvidenceSubmitted || party(d.OpenedBy) {
		out.ClaimantEvidence = evidenceToProto(d.ClaimantEvidence)
	}
	if admin || d.MerchantID == caller.AccountID {
		out.GatewayReference = d.GatewayReference
	}
	out.Timeline = timelineToProto(d.Timeline)
	if admin || s.d.ShowWorkflowURLs {
		out.WorkflowUrl = s.workflowURL(d.WorkflowID)
	}
	return out
}
