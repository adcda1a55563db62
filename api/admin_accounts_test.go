package api_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	entdispute "github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/ledgerentry"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// ListAccounts pages every account newest first with combinable filters;
// only admins signed in as people may call it.
func TestAdminListAccounts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	adm := e.admin(t)
	m1, c1 := e.merchant(t), e.customer(t)
	e.clock.Advance(time.Minute)
	m2 := e.merchant(t)
	all := func(req *pb.ListAccountsRequest) []string {
		t.Helper()
		var ids []string
		req.PageSize = 1
		for range 20 {
			res := wantOK[*pb.ListAccountsResponse](t, e.call(t, httpJSON, adm.authz(), req))
			for _, a := range res.GetAccounts() {
				ids = append(ids, a.GetId())
			}
			if req.PageToken = res.GetNextPageToken(); req.PageToken == "" {
				return ids
			}
		}
		t.Fatal("ListAccounts never ends")
		return nil
	}
	if got := all(&pb.ListAccountsRequest{Role: pb.Role_ROLE_MERCHANT}); strings.Join(got, ",") != m2.acct.GetId()+","+m1.acct.GetId() {
		t.Fatalf("merchants %v, want %s then %s", got, m2.acct.GetId(), m1.acct.GetId())
	}
	if got := all(&pb.ListAccountsRequest{EmailPrefix: strings.ToUpper(c1.email[:12])}); len(got) != 1 || got[0] != c1.acct.GetId() {
		t.Fatalf("by email prefix %q: %v", c1.email[:12], got)
	}
	if got := all(&pb.ListAccountsRequest{Role: pb.Role_ROLE_ADMIN}); len(got) != 1 || got[0] != adm.acct.GetId() {
		t.Fatalf("admins %v", got)
	}
	if got := all(&pb.ListAccountsRequest{Status: pb.AccountStatus_ACCOUNT_STATUS_DISABLED}); len(got) != 0 {
		t.Fatalf("suspended %v, want none", got)
	}
	if got := all(&pb.ListAccountsRequest{}); len(got) != 4 {
		t.Fatalf("all %v, want 4 accounts", got)
	}
	e.call(t, httpJSON, m1.authz(), &pb.ListAccountsRequest{}).wantErr(t, want{code: connect.CodePermissionDenied})
	e.call(t, httpJSON, adm.authz(), &pb.ListAccountsRequest{Role: pb.Role(9)}).wantErr(t, want{code: connect.CodeInvalidArgument, field: "role"})
}

// GetAccount shows a merchant's payments, open disputes and what it is
// owed per currency; SuspendAccount stops its tokens and payments to it,
// naming the reason code and never the note; ReactivateAccount lifts it.
func TestAdminSuspendAndReactivate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	adm := e.admin(t)
	m, c := e.merchant(t), e.customer(t)
	now := time.Now().UTC()
	pid := ids.New(ids.Payment)
	p, err := e.st.SavePayment(ctxT(t), store.PaymentRecord{
		ID: pid, MerchantID: m.acct.GetId(), CustomerID: c.acct.GetId(), Amount: 2500, AmountReceived: 2500, Currency: "EUR",
		Status: entpayment.StatusSucceeded, CaptureMethod: entpayment.CaptureMethodAutomatic, PaymentMethod: "pm_card_visa",
		Gateway: "sandbox", WorkflowID: "payment/" + pid, Version: 1, CreatedAt: now, UpdatedAt: now,
	}, &store.Journal{ID: pid + "/capture", PaymentID: pid, Currency: "EUR", At: now, Lines: []store.JournalLine{
		{Account: "gateway_clearing:sandbox", Direction: ledgerentry.DirectionDebit, Amount: 2500},
		{Account: "merchant_balance:" + m.acct.GetId(), Direction: ledgerentry.DirectionCredit, Amount: 2500},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := store.DisputeRecord{ID: ids.New(ids.Dispute), PaymentID: p.ID, OpenedBy: entdispute.OpenedByCustomer,
		Reason: entdispute.ReasonFraudulent, Amount: 1000, Currency: "EUR", ResponseDueBy: time.Now().Add(time.Hour),
		WorkflowID: "dispute/x", CreatedAt: time.Now()}
	if _, err := e.st.CreateDispute(ctxT(t), rec, c.acct.GetId()); err != nil {
		t.Fatal(err)
	}
	got := wantOK[*pb.GetAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.GetAccountRequest{Id: m.acct.GetId()}))
	if got.GetPaymentsCount() != 1 || got.GetOpenDisputesCount() != 1 || len(got.GetBalances()) != 1 ||
		got.GetBalances()[0].GetAmount() != 2500 || got.GetBalances()[0].GetCurrency() != "EUR" || got.GetSuspensionReason() != pb.SuspensionReason_SUSPENSION_REASON_UNSPECIFIED {
		t.Fatalf("merchant's activity %v", got)
	}

	before := e.snapshot(t)
	e.call(t, httpJSON, adm.authz(), &pb.SuspendAccountRequest{Id: adm.acct.GetId(), Reason: pb.SuspensionReason_SUSPENSION_REASON_OTHER}).
		wantErr(t, want{code: connect.CodeFailedPrecondition, msg: "itself"})
	e.call(t, httpJSON, adm.authz(), &pb.SuspendAccountRequest{Id: ids.New(ids.Account), Reason: pb.SuspensionReason_SUSPENSION_REASON_OTHER}).
		wantErr(t, want{code: connect.CodeNotFound})
	e.call(t, httpJSON, adm.authz(), &pb.SuspendAccountRequest{Id: m.acct.GetId()}).
		wantErr(t, want{code: connect.CodeInvalidArgument, field: "reason"})
	e.call(t, httpJSON, c.authz(), &pb.SuspendAccountRequest{Id: m.acct.GetId(), Reason: pb.SuspensionReason_SUSPENSION_REASON_FRAUD}).
		wantErr(t, want{code: connect.CodePermissionDenied})
	e.unchanged(t, before)

	key, _ := e.apiKey(t, m, "backend")
	note := "chargeback ring, case 4471"
	sus := wantOK[*pb.SuspendAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.SuspendAccountRequest{
		Id: m.acct.GetId(), Reason: pb.SuspensionReason_SUSPENSION_REASON_FRAUD, Note: note}))
	if sus.GetAccount().GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_DISABLED || sus.GetAccount().GetSuspensionReason() != "fraud" {
		t.Fatalf("suspended %v", sus.GetAccount())
	}
	// Its access token and API key stop (this instance forgets the cached
	// status at once; others within the cache's few seconds).
	e.me(t, httpJSON, m.authz()).wantErr(t, want{code: connect.CodeUnauthenticated})
	e.me(t, httpJSON, bearer(key)).wantErr(t, want{code: connect.CodeUnauthenticated})
	e.call(t, httpJSON, "", &pb.RefreshTokenRequest{RefreshToken: m.refresh}).wantErr(t, want{code: connect.CodeUnauthenticated})
	// Paying it is refused with the reason's code, not the note.
	r := e.call(t, httpJSON, c.authz(), &pb.CreatePaymentRequest{MerchantId: m.acct.GetId(), Amount: 100, Currency: "EUR", PaymentMethod: "pm_card_visa"})
	r.wantErr(t, want{code: connect.CodeFailedPrecondition, msg: "suspended (fraud)"})
	if strings.Contains(r.msg, "4471") {
		t.Fatalf("the refusal shows the admin's note: %q", r.msg)
	}
	got = wantOK[*pb.GetAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.GetAccountRequest{Id: m.acct.GetId()}))
	if got.GetSuspensionReason() != pb.SuspensionReason_SUSPENSION_REASON_FRAUD || got.GetSuspensionNote() != note ||
		got.GetSuspendedBy() != adm.acct.GetId() || got.GetSuspendedAt() == nil {
		t.Fatalf("suspended account as admins see it %v", got)
	}
	// Suspending again changes nothing.
	wantOK[*pb.SuspendAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.SuspendAccountRequest{Id: m.acct.GetId(), Reason: pb.SuspensionReason_SUSPENSION_REASON_OTHER}))
	if again := wantOK[*pb.GetAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.GetAccountRequest{Id: m.acct.GetId()})); again.GetSuspensionNote() != note {
		t.Fatalf("a second suspension overwrote the first: %v", again)
	}

	re := wantOK[*pb.ReactivateAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.ReactivateAccountRequest{Id: m.acct.GetId()}))
	if re.GetAccount().GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_ACTIVE || re.GetAccount().GetSuspensionReason() != "" {
		t.Fatalf("reactivated %v", re.GetAccount())
	}
	wantOK[*pb.GetMeResponse](t, e.me(t, httpJSON, bearer(key)))
	again := e.login(t, m.email, password)
	wantOK[*pb.GetMeResponse](t, e.me(t, httpJSON, again.authz()))
}

// The last active admin cannot be suspended: with two, one may suspend the
// other, who then cannot suspend back.
func TestAdminLastActiveAdminStays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a1, a2 := e.admin(t), e.admin(t)
	wantOK[*pb.SuspendAccountResponse](t, e.call(t, httpJSON, a1.authz(), &pb.SuspendAccountRequest{Id: a2.acct.GetId(), Reason: pb.SuspensionReason_SUSPENSION_REASON_REQUESTED_BY_OWNER}))
	if _, err := e.st.SuspendAccount(ctxT(t), a1.acct.GetId(), store.Suspension{Reason: "other", Audit: store.Audit{At: time.Now()}}); err == nil || !strings.Contains(err.Error(), "last active admin") {
		t.Fatalf("suspending the last admin: %v", err)
	}
}
