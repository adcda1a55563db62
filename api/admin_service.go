package api

import (
	"context"
	"maps"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/errs"
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
	c, err := h.s.d.Store.ResolveReconciliationCase(ctx, req.Msg.Id, req.Msg.Note, h.s.now(), h.s.whoOf(ctx, req))
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
		// An admin vouches for the address it gives.
		EmailVerified: true,
		Records:       store.Records{Audits: []store.Audit{h.s.whoOf(ctx, req).Of(store.AuditAdminCreated, "", nil)}},
	})
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "admin created", "account_id", acct.ID, "by", p.AccountID)
	return connect.NewResponse(&paymentsv1.CreateAdminResponse{Account: accountToProto(acct)}), nil
}

var (
	suspensionToProto = map[string]paymentsv1.SuspensionReason{
		"fraud":              paymentsv1.SuspensionReason_SUSPENSION_REASON_FRAUD,
		"terms_violation":    paymentsv1.SuspensionReason_SUSPENSION_REASON_TERMS_VIOLATION,
		"excessive_disputes": paymentsv1.SuspensionReason_SUSPENSION_REASON_EXCESSIVE_DISPUTES,
		"requested_by_owner": paymentsv1.SuspensionReason_SUSPENSION_REASON_REQUESTED_BY_OWNER,
		"other":              paymentsv1.SuspensionReason_SUSPENSION_REASON_OTHER,
	}
	suspensionFromProto = inverse(suspensionToProto)
	// anyRoleFromProto is every role (roleFromProto has the registrable
	// ones only).
	anyRoleFromProto       = inverse(roleToProto)
	accountStatusFromProto = map[paymentsv1.AccountStatus]account.Status{
		paymentsv1.AccountStatus_ACCOUNT_STATUS_ACTIVE:   account.StatusActive,
		paymentsv1.AccountStatus_ACCOUNT_STATUS_DISABLED: account.StatusDisabled,
		paymentsv1.AccountStatus_ACCOUNT_STATUS_CLOSED:   account.StatusClosed,
	}
)

func (h *adminService) ListAccounts(ctx context.Context, req *connect.Request[paymentsv1.ListAccountsRequest]) (*connect.Response[paymentsv1.ListAccountsResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	f := store.AccountFilter{Status: accountStatusFromProto[m.Status], EmailPrefix: strings.TrimSpace(m.EmailPrefix)}
	if m.Role != paymentsv1.Role_ROLE_UNSPECIFIED {
		f.Role = anyRoleFromProto[m.Role]
	}
	_, f.CreatedAfter, f.CreatedBefore = listScope(p, m.CreatedAfter, m.CreatedBefore)
	as, next, err := listPage(h.s, "accounts", p, m, store.AccountCursor,
		func(page store.Page) ([]*ent.Account, error) { return h.s.d.Store.ListAccounts(ctx, f, page) })
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListAccountsResponse{NextPageToken: next}
	for _, a := range as {
		res.Accounts = append(res.Accounts, accountToProto(a))
	}
	return connect.NewResponse(res), nil
}

func (h *adminService) GetAccount(ctx context.Context, req *connect.Request[paymentsv1.GetAccountRequest]) (*connect.Response[paymentsv1.GetAccountResponse], error) {
	a, err := h.s.d.Store.AccountByID(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	act, err := h.s.d.Store.AccountActivityOf(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(adminAccountView(a, act)), nil
}

// adminAccountView is an account as admins see it, with its activity.
func adminAccountView(a *ent.Account, act store.AccountActivity) *paymentsv1.GetAccountResponse {
	res := &paymentsv1.GetAccountResponse{
		Account: accountToProto(a), PaymentsCount: int64(act.Payments), OpenDisputesCount: int64(act.OpenDisputes),
		SuspensionReason: suspensionToProto[a.SuspensionReason], SuspensionNote: a.SuspensionNote,
		SuspendedAt: optTime(a.SuspendedAt), SuspendedBy: a.SuspendedBy,
	}
	for _, cur := range slices.Sorted(maps.Keys(act.Balances)) {
		res.Balances = append(res.Balances, &paymentsv1.Balance{Amount: act.Balances[cur], Currency: cur})
	}
	return res
}

func (h *adminService) SuspendAccount(ctx context.Context, req *connect.Request[paymentsv1.SuspendAccountRequest]) (*connect.Response[paymentsv1.SuspendAccountResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if m.Id == p.AccountID {
		return nil, errs.FailedPrecondition("an admin cannot suspend itself")
	}
	return idempotent(ctx, h.s, paymentsv1connect.AdminServiceSuspendAccountProcedure, p.AccountID, req.Header(), m,
		func(ctx context.Context, _ idemCall) (*paymentsv1.SuspendAccountResponse, error) {
			a, err := h.s.d.Store.SuspendAccount(ctx, m.Id, store.Suspension{
				Reason: suspensionFromProto[m.Reason], Note: strings.TrimSpace(m.Note), Audit: h.s.whoOf(ctx, req),
			})
			if err != nil {
				return nil, err
			}
			h.s.guards.status.forget(a.ID)
			h.s.log.InfoContext(ctx, "account suspended", "account_id", a.ID, "reason", a.SuspensionReason, "by", p.AccountID)
			return &paymentsv1.SuspendAccountResponse{Account: accountToProto(a)}, nil
		})
}

func (h *adminService) ReactivateAccount(ctx context.Context, req *connect.Request[paymentsv1.ReactivateAccountRequest]) (*connect.Response[paymentsv1.ReactivateAccountResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	return idempotent(ctx, h.s, paymentsv1connect.AdminServiceReactivateAccountProcedure, p.AccountID, req.Header(), req.Msg,
		func(ctx context.Context, _ idemCall) (*paymentsv1.ReactivateAccountResponse, error) {
			a, err := h.s.d.Store.ReactivateAccount(ctx, req.Msg.Id, h.s.now(), h.s.whoOf(ctx, req))
			if err != nil {
				return nil, err
			}
			h.s.guards.status.forget(a.ID)
			h.s.log.InfoContext(ctx, "account reactivated", "account_id", a.ID, "by", p.AccountID)
			return &paymentsv1.ReactivateAccountResponse{Account: accountToProto(a)}, nil
		})
}
