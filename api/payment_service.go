package api

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/money"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
	"github.com/payments-platform/payments/workflows/payment"
)

type paymentService struct{ s *Server }

// resolveParties decides merchant and customer from the caller's role: a
// customer pays a merchant; a merchant charges one of its customers.
func (h *paymentService) resolveParties(ctx context.Context, role, caller, merchantID, customerID string) (string, string, error) {
	switch role {
	case roleCustomer:
		if merchantID == "" {
			return "", "", errs.InvalidArgument("merchant_id", "merchant_id is required when a customer pays")
		}
		if customerID != "" && customerID != caller {
			return "", "", errs.InvalidArgument("customer_id", "a customer can only pay for itself; leave customer_id empty")
		}
		customerID = caller
	case roleMerchant:
		if merchantID != "" && merchantID != caller {
			return "", "", errs.InvalidArgument("merchant_id", "a merchant can only charge for itself; leave merchant_id empty")
		}
		merchantID = caller
	default:
		return "", "", errs.PermissionDenied("only merchants and customers create payments")
	}
	if merchantID == customerID {
		return "", "", errs.InvalidArgument("merchant_id", "a payment needs two different parties")
	}
	m, err := h.s.d.Store.AccountByID(ctx, merchantID)
	if errors.Is(err, errs.ErrNotFound) || (err == nil && (m.Role != account.RoleMerchant || m.Status != account.StatusActive)) {
		return "", "", errs.InvalidArgument("merchant_id", "no such merchant")
	}
	if err != nil {
		return "", "", err
	}
	if customerID != "" {
		c, err := h.s.d.Store.AccountByID(ctx, customerID)
		if errors.Is(err, errs.ErrNotFound) || (err == nil && (c.Role != account.RoleCustomer || c.Status != account.StatusActive)) {
			return "", "", errs.InvalidArgument("customer_id", "no such customer")
		}
		if err != nil {
			return "", "", err
		}
		if role == roleMerchant {
			// "One of its customers": one who has paid this merchant before.
			// Anyone else is charged as a guest, so that no merchant can put
			// charges into an unrelated customer's history.
			ok, err := h.s.d.Store.HasPaid(ctx, customerID, merchantID)
			if err != nil {
				return "", "", err
			}
			if !ok {
				return "", "", errs.InvalidArgument("customer_id", "not a customer of this merchant (no earlier payment); leave customer_id empty to charge as a guest")
			}
		}
	}
	return merchantID, customerID, nil
}

func (h *paymentService) CreatePayment(ctx context.Context, req *connect.Request[paymentsv1.CreatePaymentRequest]) (*connect.Response[paymentsv1.CreatePaymentResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	// Card data is refused first, before the request is hashed, stored or logged.
	if err := checkPaymentMethod(m.PaymentMethod); err != nil {
		return nil, err
	}
	if err := checkFreeText("description", m.Description, m.Metadata); err != nil {
		return nil, err
	}
	if err := checkFreeText("return_url", m.ReturnUrl, nil); err != nil {
		return nil, err
	}
	cur, err := money.Normalize("currency", m.Currency)
	if err != nil {
		return nil, err
	}
	if err := money.CheckAmount("amount", m.Amount); err != nil {
		return nil, err
	}
	return idempotent(ctx, h.s, paymentsv1connect.PaymentServiceCreatePaymentProcedure, p.AccountID, req.Header(), m,
		func(ctx context.Context, call idemCall) (*paymentsv1.CreatePaymentResponse, error) {
			merchantID, customerID, err := h.resolveParties(ctx, p.Role, p.AccountID, m.MerchantId, m.CustomerId)
			if err != nil {
				return nil, err
			}
			payID := ids.New(ids.Payment)
			if call.Seed != nil {
				payID = ids.Derive(ids.Payment, call.At, call.Seed)
			}
			in := payment.Input{
				PaymentID: payID, MerchantID: merchantID, CustomerID: customerID,
				Amount: m.Amount, Currency: cur.Code, PaymentMethod: m.PaymentMethod,
				ManualCapture: m.CaptureMethod == paymentsv1.CaptureMethod_CAPTURE_METHOD_MANUAL,
				Description:   m.Description, Metadata: m.Metadata,
				Gateway: h.s.d.GatewayName, ReturnURL: returnURL(h.s.d, m.ReturnUrl), CreatedAt: call.At,
			}
			call.SideEffects()
			rec, err := h.s.startPayment(ctx, in)
			if err != nil {
				return nil, err
			}
			return &paymentsv1.CreatePaymentResponse{Payment: h.s.paymentToProto(rec)}, nil
		})
}

// returnURL is where 3-D Secure sends the browser back. Stripe needs one to
// offer a redirect at all; the sandbox shows its own page without.
func returnURL(d Deps, asked string) string {
	if asked == "" && d.GatewayName == "stripe" {
		return d.PublicURL
	}
	return asked
}

// startPayment starts the payment's workflow (never a second one for the
// same id) and waits, bounded, for the gateway's first answer.
func (s *Server) startPayment(ctx context.Context, in payment.Input) (*ent.Payment, error) {
	wid := payment.WorkflowID(in.PaymentID)
	start := s.d.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                s.d.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(payment.StartAttributes(in)...),
	}, payment.WorkflowName, in)
	waitCtx, cancel := context.WithTimeout(ctx, s.d.PaymentWait)
	defer cancel()
	handle, err := s.d.Temporal.UpdateWithStartWorkflow(waitCtx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			WorkflowID:   wid,
			UpdateName:   payment.UpdateAwaitResult,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err == nil {
		var rec store.PaymentRecord
		if err = handle.Get(waitCtx, &rec); err == nil {
			return s.d.Store.PaymentByID(ctx, in.PaymentID)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// The bounded wait is over, or the workflow has already finished (a
	// replay after a crash): answer with what is recorded, once it is.
	if p, perr := s.d.Store.PaymentByID(ctx, in.PaymentID); perr == nil {
		return p, nil
	}
	if !errors.Is(waitCtx.Err(), context.DeadlineExceeded) {
		return nil, temporalError(err)
	}
	h, err := s.d.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: wid, UpdateName: payment.UpdateAwaitRecorded, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return nil, temporalError(err)
	}
	var rec store.PaymentRecord
	if err := h.Get(ctx, &rec); err != nil {
		return nil, temporalError(err)
	}
	return s.d.Store.PaymentByID(ctx, in.PaymentID)
}

// temporalError maps workflow and update failures to domain errors.
func temporalError(err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case payment.ErrTypeFailedPrecondition:
			return errs.FailedPrecondition("%s", appErr.Message())
		case payment.ErrTypeInvalidArgument:
			return errs.InvalidArgument("amount", "%s", appErr.Message())
		}
	}
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var activityErr *temporal.ActivityError
	switch {
	case errors.As(err, &unavailable) || errors.As(err, &deadline):
		return errs.Unavailable("the workflow service is unavailable; retry", err)
	case errors.As(err, &activityErr):
		return errs.Unavailable("the payment gateway is unavailable; retry", err)
	}
	return err
}

// visible reports whether the caller may see the payment; others get
// not_found, never a hint that it exists.
func visible(p auth.Principal, pay *ent.Payment) bool {
	return p.Role == roleAdmin || pay.MerchantID == p.AccountID || (pay.CustomerID != "" && pay.CustomerID == p.AccountID)
}

// load returns a payment the caller may see, and the caller.
func (h *paymentService) load(ctx context.Context, id string) (*ent.Payment, auth.Principal, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, p, err
	}
	pay, err := h.s.d.Store.PaymentByID(ctx, id)
	if err != nil {
		return nil, p, err
	}
	if !visible(p, pay) {
		return nil, p, errs.NotFound("payment")
	}
	return pay, p, nil
}

func (h *paymentService) GetPayment(ctx context.Context, req *connect.Request[paymentsv1.GetPaymentRequest]) (*connect.Response[paymentsv1.GetPaymentResponse], error) {
	pay, _, err := h.load(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.GetPaymentResponse{Payment: h.s.paymentToProto(pay)}), nil
}

func (h *paymentService) ListPayments(ctx context.Context, req *connect.Request[paymentsv1.ListPaymentsRequest]) (*connect.Response[paymentsv1.ListPaymentsResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	after, err := decodePageToken("pay", m.PageToken)
	if err != nil {
		return nil, err
	}
	f := store.PaymentFilter{MerchantID: m.MerchantId, CustomerID: m.CustomerId, Status: statusFromProto[m.Status]}
	if p.Role != roleAdmin {
		f.Party = p.AccountID
	}
	if m.Currency != "" {
		cur, err := money.Normalize("currency", m.Currency)
		if err != nil {
			return nil, err
		}
		f.Currency = cur.Code
	}
	if m.CreatedAfter != nil {
		t := m.CreatedAfter.AsTime()
		f.CreatedAfter = &t
	}
	if m.CreatedBefore != nil {
		t := m.CreatedBefore.AsTime()
		f.CreatedBefore = &t
	}
	size := pageSize(m.PageSize)
	pays, err := h.s.d.Store.ListPayments(ctx, f, size+1, after)
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListPaymentsResponse{}
	if len(pays) > size {
		pays = pays[:size]
		res.NextPageToken = encodePageToken("pay", pays[len(pays)-1].ID)
	}
	for _, pay := range pays {
		res.Payments = append(res.Payments, h.s.paymentToProto(pay))
	}
	return connect.NewResponse(res), nil
}

func (h *paymentService) CapturePayment(ctx context.Context, req *connect.Request[paymentsv1.CapturePaymentRequest]) (*connect.Response[paymentsv1.CapturePaymentResponse], error) {
	pay, p, err := h.load(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	if p.Role != roleAdmin && pay.MerchantID != p.AccountID {
		return nil, errs.PermissionDenied("only the payment's merchant can capture it")
	}
	return idempotent(ctx, h.s, paymentsv1connect.PaymentServiceCapturePaymentProcedure, p.AccountID, req.Header(), req.Msg,
		func(ctx context.Context, call idemCall) (*paymentsv1.CapturePaymentResponse, error) {
			call.SideEffects()
			rec, err := h.s.updatePayment(ctx, pay, payment.UpdateCapture, payment.CaptureRequest{Amount: req.Msg.GetAmount()})
			if err != nil {
				return nil, err
			}
			return &paymentsv1.CapturePaymentResponse{Payment: h.s.paymentToProto(rec)}, nil
		})
}

func (h *paymentService) CancelPayment(ctx context.Context, req *connect.Request[paymentsv1.CancelPaymentRequest]) (*connect.Response[paymentsv1.CancelPaymentResponse], error) {
	if err := checkFreeText("reason", req.Msg.Reason, nil); err != nil {
		return nil, err
	}
	pay, p, err := h.load(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	if p.Role == roleCustomer && pay.Status == entpayment.StatusRequiresCapture {
		// Once authorized, the order is the merchant's to fulfil or void.
		return nil, errs.PermissionDenied("only the merchant can cancel an authorized payment")
	}
	return idempotent(ctx, h.s, paymentsv1connect.PaymentServiceCancelPaymentProcedure, p.AccountID, req.Header(), req.Msg,
		func(ctx context.Context, call idemCall) (*paymentsv1.CancelPaymentResponse, error) {
			call.SideEffects()
			rec, err := h.s.updatePayment(ctx, pay, payment.UpdateCancel, payment.CancelRequest{Reason: req.Msg.Reason})
			if err != nil {
				return nil, err
			}
			return &paymentsv1.CancelPaymentResponse{Payment: h.s.paymentToProto(rec)}, nil
		})
}

// updatePayment sends an update to the payment's workflow and returns the
// recorded payment. A finished workflow means a final status: whatever the
// update asked, the state machine says no.
func (s *Server) updatePayment(ctx context.Context, pay *ent.Payment, name string, arg any) (*ent.Payment, error) {
	h, err := s.d.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: pay.WorkflowID, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		var rec store.PaymentRecord
		err = h.Get(ctx, &rec)
	}
	if err != nil {
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) || strings.Contains(err.Error(), "workflow execution already completed") {
			cur, gerr := s.d.Store.PaymentByID(ctx, pay.ID)
			if gerr != nil {
				return nil, gerr
			}
			return nil, errs.FailedPrecondition("the payment is %s and can no longer change", statusName(cur.Status))
		}
		return nil, temporalError(err)
	}
	return s.d.Store.PaymentByID(ctx, pay.ID)
}

var statusToProto = map[entpayment.Status]paymentsv1.PaymentStatus{
	entpayment.StatusProcessing:      paymentsv1.PaymentStatus_PAYMENT_STATUS_PROCESSING,
	entpayment.StatusRequiresAction:  paymentsv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_ACTION,
	entpayment.StatusRequiresCapture: paymentsv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_CAPTURE,
	entpayment.StatusSucceeded:       paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED,
	entpayment.StatusFailed:          paymentsv1.PaymentStatus_PAYMENT_STATUS_FAILED,
	entpayment.StatusCanceled:        paymentsv1.PaymentStatus_PAYMENT_STATUS_CANCELED,
}

var statusFromProto = func() map[paymentsv1.PaymentStatus]entpayment.Status {
	m := map[paymentsv1.PaymentStatus]entpayment.Status{}
	for k, v := range statusToProto {
		m[v] = k
	}
	return m
}()

func statusName(s entpayment.Status) string { return statusToProto[s].String() }

// workflowURL deep-links a workflow in the Temporal UI.
func (s *Server) workflowURL(workflowID string) string {
	if s.d.TemporalUIURL == "" || workflowID == "" {
		return ""
	}
	return strings.TrimRight(s.d.TemporalUIURL, "/") + "/namespaces/" + url.PathEscape(s.d.TemporalNamespace) +
		"/workflows/" + url.PathEscape(workflowID)
}

func (s *Server) paymentToProto(p *ent.Payment) *paymentsv1.Payment {
	out := &paymentsv1.Payment{
		Id: p.ID, MerchantId: p.MerchantID, CustomerId: p.CustomerID,
		Amount: p.Amount, Currency: p.Currency,
		AmountCapturable: p.AmountCapturable, AmountReceived: p.AmountReceived,
		AmountRefunded: p.AmountRefunded, AmountDisputed: p.AmountDisputed,
		Status:        statusToProto[p.Status],
		CaptureMethod: paymentsv1.CaptureMethod_CAPTURE_METHOD_AUTOMATIC,
		FailureCode:   p.FailureCode, FailureMessage: p.FailureMessage,
		Description: p.Description, Metadata: p.Metadata,
		Gateway: p.Gateway, GatewayReference: p.GatewayReference,
		WorkflowId: p.WorkflowID, WorkflowUrl: s.workflowURL(p.WorkflowID),
		CreatedAt: timestamppb.New(p.CreatedAt), UpdatedAt: timestamppb.New(p.UpdatedAt),
	}
	if p.CaptureMethod == entpayment.CaptureMethodManual {
		out.CaptureMethod = paymentsv1.CaptureMethod_CAPTURE_METHOD_MANUAL
	}
	if p.MethodType != "" {
		out.PaymentMethod = &paymentsv1.PaymentMethodDetails{
			Type: p.MethodType, Brand: p.MethodBrand, Last4: p.MethodLast4,
			ExpMonth: p.MethodExpMonth, ExpYear: p.MethodExpYear, Provider: p.MethodProvider,
		}
	}
	if p.NextActionType != "" {
		out.NextAction = &paymentsv1.NextAction{Type: p.NextActionType, RedirectUrl: p.NextActionURL, ExpiresAt: optTime(p.NextActionExpiresAt)}
	}
	return out
}

// paymentWaitDefault is API.md's bounded wait for the gateway's answer.
const paymentWaitDefault = 10 * time.Second
