package api

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/money"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
	"github.com/payments-platform/payments/workflows/dispute"
	"github.com/payments-platform/payments/workflows/payment"
)

type paymentService struct{ s *Server }

// reasonOr is a suspension's reason code, "other" when none was recorded.
func reasonOr(code string) string {
	if code == "" {
		return "other"
	}
	return code
}

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
	if errors.Is(err, errs.ErrNotFound) || (err == nil && m.Role != account.RoleMerchant) {
		return "", "", errs.InvalidArgument("merchant_id", "no such merchant")
	}
	if err != nil {
		return "", "", err
	}
	switch {
	case m.Status == account.StatusClosed:
		return "", "", errs.FailedPrecondition("merchant %s has closed its account and cannot be paid", m.ID)
	case m.Status != account.StatusActive:
		// The reason's code, never the admin's note.
		return "", "", errs.FailedPrecondition("merchant %s is suspended (%s) and cannot be paid", m.ID, reasonOr(m.SuspensionReason))
	case h.s.d.RequireVerifiedMerchants && !m.EmailVerified:
		return "", "", errs.FailedPrecondition("merchant %s has not verified its email (merchant_unverified) and cannot be paid until it does", m.ID)
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
	cur, err := money.Normalize("currency", m.Currency)
	if err != nil {
		return nil, err
	}
	if err := money.CheckAmount("amount", m.Amount); err != nil {
		return nil, err
	}
	// What the gateway cannot represent exactly (KWD not ending in 0 at
	// Stripe, a fund code) is refused now, not by a payment that fails.
	if err := gateway.UnitsFor(h.s.d.GatewayName, cur.Code).Check("currency", "amount", m.Amount); err != nil {
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
				Logic: payment.CurrentLogic,
			}
			call.SideEffects()
			rec, err := h.s.startPayment(ctx, in)
			if err != nil {
				return nil, err
			}
			return &paymentsv1.CreatePaymentResponse{Payment: h.s.paymentToProto(rec, p)}, nil
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

// Retries of an ambiguous start: the attempts of one update-with-start, and
// the pause before the second (doubled before each next one). Short, as a
// customer is waiting; Temporal's client has already retried each call.
const (
	startAttempts = 4
	startBackoff  = 100 * time.Millisecond
)

// answerMargin is kept from the request's deadline for answering: a client
// whose deadline passes learns nothing, not even the id of the payment that
// may now exist.
const answerMargin = 250 * time.Millisecond

// startPayment starts the payment's workflow (never a second one for the
// same id) and waits, bounded, for the gateway's first answer.
//
// A start that fails with `unavailable` or runs out of time may have been
// written all the same. It is retried with the same workflow id, which
// USE_EXISTING makes safe: a second attempt joins the workflow the first one
// started. If the outcome is still unknown when the attempts or the
// request's deadline run out, the answer is `unavailable` naming the payment
// (startUnknown), so that the client asks GetPayment instead of paying twice.
func (s *Server) startPayment(ctx context.Context, in payment.Input) (*ent.Payment, error) {
	work := ctx
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		work, cancel = context.WithDeadline(ctx, dl.Add(-answerMargin))
		defer cancel()
	}
	waitCtx, cancel := context.WithTimeout(work, s.d.PaymentWait)
	defer cancel()
	var rec store.PaymentRecord
	err := s.updateWithStart(waitCtx, in, payment.UpdateAwaitResult, &rec)
	if err == nil {
		return s.d.Store.PaymentByID(ctx, in.PaymentID)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// The bounded wait is over, or the workflow has already finished (a
	// replay after a crash): answer with what is recorded, once it is.
	if p, perr := s.d.Store.PaymentByID(ctx, in.PaymentID); perr == nil {
		return p, nil
	}
	switch {
	case work.Err() != nil:
		return nil, startUnknown(in.PaymentID, err)
	case waitCtx.Err() == nil && ambiguous(err):
		// Every attempt failed without an answer.
		return nil, startUnknown(in.PaymentID, err)
	case waitCtx.Err() == nil:
		return nil, temporalError(err)
	}
	// The gateway is slow, or the start was never written: wait for the
	// recorded payment, starting the workflow if nobody did.
	err = s.updateWithStart(work, in, payment.UpdateAwaitRecorded, &rec)
	if err == nil {
		return s.d.Store.PaymentByID(ctx, in.PaymentID)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if p, perr := s.d.Store.PaymentByID(ctx, in.PaymentID); perr == nil {
		return p, nil
	}
	if work.Err() != nil || ambiguous(err) {
		return nil, startUnknown(in.PaymentID, err)
	}
	return nil, temporalError(err)
}

// workflowStart names a workflow to start, if it does not run, for an
// update-with-start: one object's workflow, its id from the business key.
type workflowStart struct {
	ID, Name string
	Input    any
	Attrs    []temporal.SearchAttributeUpdate
	// What for the log ("payment_id", "pay_...").
	ObjectKey, ObjectID string
}

// startPaymentOp is a payment's workflow start.
func startPaymentOp(in payment.Input) workflowStart {
	return workflowStart{ID: payment.WorkflowID(in.PaymentID), Name: payment.WorkflowName, Input: in,
		Attrs: payment.StartAttributes(in), ObjectKey: "payment_id", ObjectID: in.PaymentID}
}

// updateWithStart sends the update to the payment's workflow, starting it
// if it does not run, and decodes the result into out.
func (s *Server) updateWithStart(ctx context.Context, in payment.Input, update string, out any) error {
	return s.updateWithStartOp(ctx, startPaymentOp(in), update, out)
}

// updateWithStartOp sends the update to a workflow, starting it if it does
// not run (an id that ran before is never started again), and decodes the
// result into out. An ambiguous failure is retried with the same workflow
// id while ctx and the attempts last. Every object's workflow (payments,
// refunds) is started this way.
func (s *Server) updateWithStartOp(ctx context.Context, w workflowStart, update string, out any) error {
	backoff := startBackoff
	for attempt := 1; ; attempt++ {
		// An operation is spent by one call; each attempt needs its own.
		start := s.d.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
			ID:                       w.ID,
			TaskQueue:                s.d.TaskQueue,
			WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			TypedSearchAttributes:    temporal.NewSearchAttributes(w.Attrs...),
		}, w.Name, w.Input)
		handle, err := s.d.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
			StartWorkflowOperation: start,
			UpdateOptions: client.UpdateWorkflowOptions{
				WorkflowID:   w.ID,
				UpdateName:   update,
				WaitForStage: client.WorkflowUpdateStageCompleted,
			},
		})
		if err == nil {
			err = handle.Get(ctx, out)
		}
		if err == nil || !ambiguous(err) || attempt == startAttempts || ctx.Err() != nil {
			return err
		}
		s.log.WarnContext(ctx, "the start of a workflow is unconfirmed; trying again",
			w.ObjectKey, w.ObjectID, "update", update, "attempt", attempt, "err", err)
		pause := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			pause.Stop()
			return err
		case <-pause.C:
		}
		backoff *= 2
	}
}

// ambiguous reports a failure after which a start may or may not have been
// written: the workflow service did not answer, or time ran out while it
// worked.
func ambiguous(err error) bool {
	var unavailable *serviceerror.Unavailable
	var deadline *serviceerror.DeadlineExceeded
	var timeout *client.WorkflowUpdateServiceTimeoutOrCanceledError
	return errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &timeout) ||
		errors.Is(err, context.DeadlineExceeded)
}

// ReasonPaymentMayExist is the google.rpc.ErrorInfo reason of an
// `unavailable` CreatePayment whose payment may have been created; its
// metadata holds the payment's id under "payment_id".
const ReasonPaymentMayExist = "PAYMENT_MAY_EXIST"

// startUnknown is the answer when it stays unknown whether a payment's
// workflow was started. The payment's id is in the message and in an
// ErrorInfo detail: GetPayment tells the client whether it exists (it may
// appear a moment later), where a blind retry would create a second one.
func startUnknown(paymentID string, cause error) error {
	return &errs.Error{
		Kind: errs.KindUnavailable,
		Message: fmt.Sprintf("the workflow service did not confirm the payment in time; payment %s may have been created: "+
			"call GetPayment with this id before trying again", paymentID),
		// Flattened: a cause that unwraps to context.DeadlineExceeded would
		// turn the answer into deadline_exceeded, without the id.
		Err:  errors.New(cause.Error()),
		Info: &errs.Info{Reason: ReasonPaymentMayExist, Metadata: map[string]string{"payment_id": paymentID}},
	}
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
		case activities.ErrTypeNotFound:
			return errs.NotFound("payment")
		case activities.ErrTypeAlreadyExists:
			return errs.AlreadyExists("%s", appErr.Message())
		case dispute.ErrTypePermissionDenied:
			return errs.PermissionDenied(appErr.Message())
		case dispute.ErrTypeUnavailable:
			return errs.Unavailable(appErr.Message(), err)
		case payment.ErrTypeUnconfirmed:
			// The step is being retried by the payment's workflow; the
			// payment shows needs_attention until the gateway answers.
			return errs.Unavailable(appErr.Message(), err)
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
	return sees(p, pay.MerchantID, pay.CustomerID)
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
	pay, p, err := h.load(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.GetPaymentResponse{Payment: h.s.paymentToProto(pay, p)}), nil
}

func (h *paymentService) ListPayments(ctx context.Context, req *connect.Request[paymentsv1.ListPaymentsRequest]) (*connect.Response[paymentsv1.ListPaymentsResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	f := store.PaymentFilter{MerchantID: m.MerchantId, CustomerID: m.CustomerId, Status: statusFromProto[m.Status]}
	f.Party, f.CreatedAfter, f.CreatedBefore = listScope(p, m.CreatedAfter, m.CreatedBefore)
	if f.Currency, err = currencyFilter(m.Currency); err != nil {
		return nil, err
	}
	pays, next, err := listPage(h.s, "payments", p, m, store.PaymentCursor,
		func(page store.Page) ([]*ent.Payment, error) { return h.s.d.Store.ListPayments(ctx, f, page) })
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListPaymentsResponse{NextPageToken: next}
	for _, pay := range pays {
		res.Payments = append(res.Payments, h.s.paymentToProto(pay, p))
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
	if req.Msg.Amount != nil {
		// The amount is the caller's only field here, so it is the one
		// named even when the payment's currency is what the gateway
		// refuses (a payment created before the rule).
		if err := gateway.UnitsFor(pay.Gateway, pay.Currency).Check("amount", "amount", req.Msg.GetAmount()); err != nil {
			return nil, err
		}
	}
	return idempotent(ctx, h.s, paymentsv1connect.PaymentServiceCapturePaymentProcedure, p.AccountID, req.Header(), req.Msg,
		func(ctx context.Context, call idemCall) (*paymentsv1.CapturePaymentResponse, error) {
			call.SideEffects()
			rec, err := h.s.updatePayment(ctx, pay, call.updateID(payment.UpdateCapture), payment.UpdateCapture,
				payment.CaptureRequest{Amount: req.Msg.GetAmount()})
			if err != nil {
				return nil, err
			}
			return &paymentsv1.CapturePaymentResponse{Payment: h.s.paymentToProto(rec, p)}, nil
		})
}

func (h *paymentService) CancelPayment(ctx context.Context, req *connect.Request[paymentsv1.CancelPaymentRequest]) (*connect.Response[paymentsv1.CancelPaymentResponse], error) {
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
			rec, err := h.s.updatePayment(ctx, pay, call.updateID(payment.UpdateCancel), payment.UpdateCancel,
				payment.CancelRequest{Reason: req.Msg.Reason})
			if err != nil {
				return nil, err
			}
			return &paymentsv1.CancelPaymentResponse{Payment: h.s.paymentToProto(rec, p)}, nil
		})
}

// updatePayment sends an update (named updateID, see idemCall.updateID)
// to the payment's workflow and returns the recorded payment. A finished
// workflow means a final status: whatever the update asked, the state
// machine says no, unless the workflow took this very update before it
// finished (a retry after a crash), which answers as it did.
func (s *Server) updatePayment(ctx context.Context, pay *ent.Payment, updateID, name string, arg any) (*ent.Payment, error) {
	var rec store.PaymentRecord
	finished, err := s.sendUpdate(ctx, pay.WorkflowID, updateID, name, arg, &rec)
	if err != nil {
		return nil, err
	}
	cur, err := s.d.Store.PaymentByID(ctx, pay.ID)
	if err != nil {
		return nil, err
	}
	if finished {
		return nil, errs.FailedPrecondition("the payment is %s and can no longer change", statusName(cur.Status))
	}
	return cur, nil
}

var statusToProto = map[entpayment.Status]paymentsv1.PaymentStatus{
	entpayment.StatusProcessing:      paymentsv1.PaymentStatus_PAYMENT_STATUS_PROCESSING,
	entpayment.StatusRequiresAction:  paymentsv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_ACTION,
	entpayment.StatusRequiresCapture: paymentsv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_CAPTURE,
	entpayment.StatusSucceeded:       paymentsv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED,
	entpayment.StatusFailed:          paymentsv1.PaymentStatus_PAYMENT_STATUS_FAILED,
	entpayment.StatusCanceled:        paymentsv1.PaymentStatus_PAYMENT_STATUS_CANCELED,
}

var statusFromProto = inverse(statusToProto)

func statusName(s entpayment.Status) string { return statusToProto[s].String() }

// workflowURL deep-links a workflow in the Temporal UI.
func (s *Server) workflowURL(workflowID string) string {
	if s.d.TemporalUIURL == "" || workflowID == "" {
		return ""
	}
	return strings.TrimRight(s.d.TemporalUIURL, "/") + "/namespaces/" + url.PathEscape(s.d.TemporalNamespace) +
		"/workflows/" + url.PathEscape(workflowID)
}

// paymentToProto renders a payment for caller. The operators' fields are
// not for everyone: the gateway reference and the attention flags go to
// admins and the payment's merchant (who deals with the gateway and with a
// stuck capture), never to customers; workflow_url, a link into the
// platform's internals, goes to admins only, or to every role in dev.
func (s *Server) paymentToProto(p *ent.Payment, caller auth.Principal) *paymentsv1.Payment {
	admin := caller.Role == roleAdmin
	merchant := caller.Role == roleMerchant && p.MerchantID == caller.AccountID
	out := &paymentsv1.Payment{
		Id: p.ID, MerchantId: p.MerchantID, CustomerId: p.CustomerID,
		Amount: p.Amount, Currency: p.Currency,
		AmountCapturable: p.AmountCapturable, AmountReceived: p.AmountReceived,
		AmountRefunded: p.AmountRefunded, AmountDisputed: p.AmountDisputed,
		Status:        statusToProto[p.Status],
		CaptureMethod: paymentsv1.CaptureMethod_CAPTURE_METHOD_AUTOMATIC,
		FailureCode:   p.FailureCode, FailureMessage: p.FailureMessage,
		Description: p.Description, Metadata: p.Metadata,
		Gateway:    p.Gateway,
		WorkflowId: p.WorkflowID,
		CreatedAt:  timestamppb.New(p.CreatedAt), UpdatedAt: timestamppb.New(p.UpdatedAt),
	}
	if admin || merchant {
		out.GatewayReference = p.GatewayReference
		out.NeedsAttention, out.AttentionReason = p.NeedsAttention, p.AttentionReason
	}
	if admin || s.d.ShowWorkflowURLs {
		out.WorkflowUrl = s.workflowURL(p.WorkflowID)
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
	out.RefundState = refundState(p)
	if p.NextActionType != "" {
		out.NextAction = &paymentsv1.NextAction{Type: p.NextActionType, RedirectUrl: p.NextActionURL, ExpiresAt: optTime(p.NextActionExpiresAt)}
	}
	return out
}

// refundState says how much of what the payment received went back.
func refundState(p *ent.Payment) paymentsv1.PaymentRefundState {
	switch {
	case p.AmountRefunded <= 0:
		return paymentsv1.PaymentRefundState_PAYMENT_REFUND_STATE_NONE
	case p.AmountRefunded >= p.AmountReceived:
		return paymentsv1.PaymentRefundState_PAYMENT_REFUND_STATE_REFUNDED
	}
	return paymentsv1.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED
}

// paymentWaitDefault is API.md's bounded wait for the gateway's answer.
const paymentWaitDefault = 10 * time.Second
