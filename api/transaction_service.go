package api

import (
	"context"
	"slices"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/ledgerentry"
	enttxn "github.com/payments-platform/payments/ent/transaction"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/timeline"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// transactionService serves the history of money movements (see
// store/transactions.go): merchants see their own, customers theirs,
// admins everyone's.
type transactionService struct {
	paymentsv1connect.UnimplementedTransactionServiceHandler
	s *Server
}

var (
	txnTypeToProto = map[enttxn.Type]paymentsv1.TransactionType{
		enttxn.TypePayment: paymentsv1.TransactionType_TRANSACTION_TYPE_PAYMENT,
		enttxn.TypeRefund:  paymentsv1.TransactionType_TRANSACTION_TYPE_REFUND,
		enttxn.TypeDispute: paymentsv1.TransactionType_TRANSACTION_TYPE_DISPUTE,
	}
	txnTypeFromProto = inverse(txnTypeToProto)
	txnStatusToProto = map[enttxn.Status]paymentsv1.TransactionStatus{
		enttxn.StatusPending:   paymentsv1.TransactionStatus_TRANSACTION_STATUS_PENDING,
		enttxn.StatusSucceeded: paymentsv1.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED,
		enttxn.StatusFailed:    paymentsv1.TransactionStatus_TRANSACTION_STATUS_FAILED,
	}
	txnStatusFromProto = inverse(txnStatusToProto)
)

func (h *transactionService) ListTransactions(ctx context.Context, req *connect.Request[paymentsv1.ListTransactionsRequest]) (*connect.Response[paymentsv1.ListTransactionsResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := checkIDFilters(idFilter{"customer_id", m.CustomerId, ids.Account}, idFilter{"merchant_id", m.MerchantId, ids.Account}); err != nil {
		return nil, err
	}
	f := store.TransactionFilter{
		MerchantID: m.MerchantId, CustomerID: m.CustomerId,
		Type: txnTypeFromProto[m.Type], Status: txnStatusFromProto[m.Status],
		AmountMin: m.AmountMin, AmountMax: m.AmountMax,
	}
	f.Party, f.CreatedAfter, f.CreatedBefore = listScope(p, m.CreatedAfter, m.CreatedBefore)
	if f.Currency, err = currencyFilter(m.Currency); err != nil {
		return nil, err
	}
	ts, next, err := listPage(h.s, "transactions", p, m, store.TransactionCursor,
		func(page store.Page) ([]*ent.Transaction, error) { return h.s.d.Store.ListTransactions(ctx, f, page) })
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListTransactionsResponse{NextPageToken: next}
	for _, t := range ts {
		res.Transactions = append(res.Transactions, transactionToProto(t))
	}
	return connect.NewResponse(res), nil
}

func (h *transactionService) GetTransaction(ctx context.Context, req *connect.Request[paymentsv1.GetTransactionRequest]) (*connect.Response[paymentsv1.GetTransactionResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	t, err := h.s.d.Store.TransactionByID(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	if !sees(p, t.MerchantID, t.CustomerID) {
		return nil, errs.NotFound("transaction")
	}
	res := &paymentsv1.GetTransactionResponse{Transaction: transactionToProto(t), WorkflowId: t.WorkflowID}
	if p.Role == roleAdmin || h.s.d.ShowWorkflowURLs {
		res.WorkflowUrl = h.s.workflowURL(t.WorkflowID)
	}
	var steps []timeline.Entry
	switch t.Type {
	case enttxn.TypePayment:
		pay, err := h.s.d.Store.PaymentByID(ctx, t.SourceID)
		if err != nil {
			return nil, err
		}
		res.Source = &paymentsv1.GetTransactionResponse_Payment{Payment: h.s.paymentToProto(pay, p)}
		steps = pay.Timeline
	case enttxn.TypeRefund:
		r, err := h.s.d.Store.RefundByID(ctx, t.SourceID)
		if err != nil {
			return nil, err
		}
		res.Source = &paymentsv1.GetTransactionResponse_Refund{Refund: h.s.refundToProto(r, p)}
		steps = r.Timeline
	case enttxn.TypeDispute:
		d, err := h.s.d.Store.DisputeByID(ctx, t.SourceID)
		if err != nil {
			return nil, err
		}
		res.Source = &paymentsv1.GetTransactionResponse_Dispute{Dispute: h.s.disputeToProto(d, p)}
		steps = d.Timeline
	}
	notes, err := h.s.d.Store.NotificationSteps(ctx, t.SourceID)
	if err != nil {
		return nil, err
	}
	steps = append(slices.Clip(steps), notes...)
	slices.SortStableFunc(steps, func(a, b timeline.Entry) int { return a.At.Compare(b.At) })
	res.Timeline = timelineToProto(steps)
	entries, err := h.s.d.Store.JournalEntries(ctx, t.JournalID)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		res.LedgerEntries = append(res.LedgerEntries, ledgerEntryToProto(e))
	}
	return connect.NewResponse(res), nil
}

// sees reports whether caller may see an object of these parties: admins
// all, merchants and customers their own (others' are not_found).
func sees(caller auth.Principal, merchantID, customerID string) bool {
	return caller.Role == roleAdmin || merchantID == caller.AccountID || (customerID != "" && customerID == caller.AccountID)
}

func transactionToProto(t *ent.Transaction) *paymentsv1.Transaction {
	return &paymentsv1.Transaction{
		Id: t.ID, Type: txnTypeToProto[t.Type], SourceId: t.SourceID, PaymentId: t.PaymentID,
		Amount: t.Amount, Currency: t.Currency, Status: txnStatusToProto[t.Status],
		MerchantId: t.MerchantID, CustomerId: t.CustomerID, Description: t.Description,
		CreatedAt: timestamppb.New(t.CreatedAt), UpdatedAt: timestamppb.New(t.UpdatedAt),
	}
}

// timelineToProto renders a payment's, refund's or dispute's timeline.
func timelineToProto(steps []timeline.Entry) []*paymentsv1.TimelineEntry {
	out := make([]*paymentsv1.TimelineEntry, 0, len(steps))
	for _, e := range steps {
		out = append(out, &paymentsv1.TimelineEntry{At: timestamppb.New(e.At), Kind: e.Kind, Actor: e.Actor, Note: e.Note})
	}
	return out
}

func ledgerEntryToProto(e *ent.LedgerEntry) *paymentsv1.LedgerEntry {
	dir := paymentsv1.LedgerDirection_LEDGER_DIRECTION_DEBIT
	if e.Direction == ledgerentry.DirectionCredit {
		dir = paymentsv1.LedgerDirection_LEDGER_DIRECTION_CREDIT
	}
	return &paymentsv1.LedgerEntry{
		JournalId: e.JournalID, Line: int32(e.Line), Account: e.Account, Direction: dir,
		Amount: e.Amount, Currency: e.Currency, CreatedAt: timestamppb.New(e.CreatedAt),
	}
}
