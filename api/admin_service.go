package api

import (
	"context"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// adminService serves the operators' RPCs; the policy table admits admins
// only, signed in as a person.
type adminService struct {
	paymentsv1connect.UnimplementedAdminServiceHandler
	s *Server
}

var caseStatusFromProto = map[paymentsv1.ReconciliationCaseStatus]reconciliationcase.Status{
	paymentsv1.ReconciliationCaseStatus_RECONCILIATION_CASE_STATUS_OPEN:     reconciliationcase.StatusOpen,
	paymentsv1.ReconciliationCaseStatus_RECONCILIATION_CASE_STATUS_RESOLVED: reconciliationcase.StatusResolved,
}

func (h *adminService) ListReconciliationCases(ctx context.Context, req *connect.Request[paymentsv1.ListReconciliationCasesRequest]) (*connect.Response[paymentsv1.ListReconciliationCasesResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	f := store.ReconciliationFilter{Status: caseStatusFromProto[m.Status], PaymentID: m.PaymentId}
	cs, next, err := listPage(h.s, "reconciliation_cases", p, m, store.ReconciliationCaseCursor,
		func(page store.Page) ([]*ent.ReconciliationCase, error) {
			return h.s.d.Store.ListReconciliationCases(ctx, f, page)
		})
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListReconciliationCasesResponse{NextPageToken: next}
	for _, c := range cs {
		res.ReconciliationCases = append(res.ReconciliationCases, caseToProto(c))
	}
	return connect.NewResponse(res), nil
}

func (h *adminService) ResolveReconciliationCase(ctx context.Context, req *connect.Request[paymentsv1.ResolveReconciliationCaseRequest]) (*connect.Response[paymentsv1.ResolveReconciliationCaseResponse], error) {
	if err := checkFreeText("note", req.Msg.Note, nil); err != nil {
		return nil, err
	}
	c, err := h.s.d.Store.ResolveReconciliationCase(ctx, req.Msg.Id, req.Msg.Note, h.s.now())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.ResolveReconciliationCaseResponse{ReconciliationCase: caseToProto(c)}), nil
}

func caseToProto(c *ent.ReconciliationCase) *paymentsv1.ReconciliationCase {
	kind := paymentsv1.ReconciliationCaseKind_RECONCILIATION_CASE_KIND_CONTRADICTING_STATE
	if c.Kind == reconciliationcase.KindUnexpectedCharge {
		kind = paymentsv1.ReconciliationCaseKind_RECONCILIATION_CASE_KIND_UNEXPECTED_CHARGE
	}
	status := paymentsv1.ReconciliationCaseStatus_RECONCILIATION_CASE_STATUS_OPEN
	if c.Status == reconciliationcase.StatusResolved {
		status = paymentsv1.ReconciliationCaseStatus_RECONCILIATION_CASE_STATUS_RESOLVED
	}
	return &paymentsv1.ReconciliationCase{
		Id: c.ID, PaymentId: c.PaymentID, Kind: kind, Status: status,
		PaymentStatus: c.PaymentStatus, GatewayStatus: c.GatewayStatus,
		Gateway: c.Gateway, GatewayReference: c.GatewayReference, EventId: c.EventID,
		Amount: c.Amount, Currency: c.Currency, Action: c.Action, RefundReference: c.RefundReference,
		Details: c.Details, ResolutionNote: c.ResolutionNote,
		CreatedAt: timestamppb.New(c.CreatedAt), UpdatedAt: timestamppb.New(c.UpdatedAt),
	}
}

// CreateAdmin makes another admin, hashed like any password.
func (h *adminService) CreateAdmin(ctx context.Context, req *connect.Request[paymentsv1.CreateAdminRequest]) (*connect.Response[paymentsv1.CreateAdminResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	hash, err := h.s.guards.hasher.HashPassword(ctx, m.Password)
	if err != nil {
		return nil, hashErr("hash password", err)
	}
	acct, err := h.s.d.Store.CreateAccount(ctx, store.NewAccount{
		Email: strings.TrimSpace(m.Email), PasswordHash: hash, Role: account.RoleAdmin,
		DisplayName: strings.TrimSpace(m.DisplayName), DefaultCurrency: "USD",
	})
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "admin created", "account_id", acct.ID, "by", p.AccountID)
	return connect.NewResponse(&paymentsv1.CreateAdminResponse{Account: accountToProto(acct)}), nil
}
