package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	"github.com/payments-platform/payments/internal/store"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

const (
	procListReconciliationCases   = "/payments.v1.AdminService/ListReconciliationCases"
	procResolveReconciliationCase = "/payments.v1.AdminService/ResolveReconciliationCase"
)

// sandboxOf is the env's sandbox gateway, to play the provider's part.
func (e *E) sandboxOf(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sbx, ok := e.gw.Gateway.(*sandbox.Sandbox)
	if !ok {
		t.Fatalf("the env's gateway is %T, not the sandbox", e.gw.Gateway)
	}
	return sbx
}

// admin makes an admin (admins never register) and logs it in.
func (e *E) admin(t *testing.T) user {
	t.Helper()
	email := "admin-" + strings.ToLower(time.Now().Format("150405.000000000")) + "@example.test"
	hash, err := auth.HashPassword(password, auth.DefaultPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := e.Store.CreateAccount(ctxT(t), store.NewAccount{Email: email, PasswordHash: hash, Role: account.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	r := e.post(t, "", procLogin, map[string]any{"email": email, "password": password})
	if r.status != http.StatusOK {
		t.Fatalf("admin Login: %s", r)
	}
	var login pb.LoginResponse
	if err := protojson.Unmarshal(r.body, &login); err != nil {
		t.Fatal(err)
	}
	return user{ID: acct.ID, Email: email, Token: login.GetAccessToken(), Role: "ROLE_ADMIN"}
}

// TestGatewayOutageThenRecovery: with the gateway down for every call, a
// payment answers PROCESSING after the bounded wait, its charge is retried
// with one key, and once the gateway is back it settles by itself, charged
// once. (The hour-long outage and the retry-interval cap are proven on the
// workflow's clock by its unit tests.)
func TestGatewayOutageThenRecovery(t *testing.T) {
	e := newEnv(t, withPaymentWait(2*time.Second))
	m, c := e.merchant(t), e.customer(t)
	sbx := e.sandboxOf(t)
	sbx.SetDown(true)
	p := e.create(t, c, pay(m, 1500, "eur", "pm_card_visa"))
	wantStatus(t, p, stProcessing)
	before := e.gw.counts().createCalls
	// Wait until the retries are visibly under way, then bring it back.
	deadline := time.Now().Add(waitFor)
	for e.gw.counts().createCalls < before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("the charge was not retried while the gateway was down: %d calls", e.gw.counts().createCalls)
		}
		time.Sleep(pollEvery)
	}
	sbx.SetDown(false)
	up := time.Now()
	got := e.waitStatus(t, c, p.GetId(), stSucceeded)
	t.Logf("settled %v after the gateway came back", time.Since(up).Round(time.Millisecond))
	wantAmounts(t, got, 0, 1500)
	if n := e.gw.charges(); n != 1 {
		t.Fatalf("%d distinct charges, want exactly 1", n)
	}
	e.wantBalances(t, m.ID, c.ID, "EUR", 1500)
}

// TestUnexpectedChargeIsRefundedAndRecorded: the gateway reports a charge
// for a payment the parties were told had failed, after its workflow ended.
// The charge is refunded at the gateway, both movements are in the ledger,
// an admin sees the case, and a redelivery changes nothing.
func TestUnexpectedChargeIsRefundedAndRecorded(t *testing.T) {
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	adm := e.admin(t)
	p := e.create(t, c, pay(m, 2400, "usd", "pm_card_chargeDeclined"))
	wantStatus(t, p, stFailed)
	e.waitClosed(t, p.GetWorkflowId())

	// The provider holds a successful charge for the payment after all (a
	// create that arrived late, say).
	sbx := e.sandboxOf(t)
	late, err := sbx.CreatePayment(ctxT(t), gateway.CreateRequest{
		IdempotencyKey: "late-create-" + p.GetId(), PaymentID: p.GetId(), Amount: 2400, Currency: "USD", PaymentMethod: "pm_card_visa",
	})
	if err != nil || late.Status != gateway.StatusSucceeded {
		t.Fatalf("late charge: %+v %v", late, err)
	}
	ev := intentEvent("evt_late_"+p.GetId(), "payment_intent.succeeded", late.Reference, p.GetId(), "succeeded", 2400, 0, 2400)
	if code := e.postWebhook(t, ev, e.sign(ev, time.Now())); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	cs := e.waitCases(t, adm, p.GetId(), func(cs []*pb.ReconciliationCase) bool {
		return len(cs) == 1 && cs[0].GetAction() == "refunded"
	})
	got := cs[0]
	if got.GetKind() != pb.ReconciliationCaseKind_RECONCILIATION_CASE_KIND_UNEXPECTED_CHARGE || got.GetAmount() != 2400 ||
		got.GetCurrency() != "USD" || got.GetGatewayReference() != late.Reference || got.GetRefundReference() == "" ||
		got.GetPaymentStatus() != "failed" || got.GetStatus() != pb.ReconciliationCaseStatus_RECONCILIATION_CASE_STATUS_OPEN {
		t.Fatalf("case %v", got)
	}
	// The parties were told it failed, and it stays failed; the money went
	// out and came back.
	wantStatus(t, e.get(t, c, p.GetId()), stFailed)
	if b := e.balance(t, "customer_funding:"+c.ID, "USD"); b != 0 {
		t.Fatalf("customer funding balance %d after the refund", b)
	}
	if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != 0 {
		t.Fatalf("merchant balance %d: a failed payment paid the merchant", b)
	}
	// A second delivery (another event id) refunds nothing more.
	ev2 := intentEvent("evt_late2_"+p.GetId(), "payment_intent.succeeded", late.Reference, p.GetId(), "succeeded", 2400, 0, 2400)
	if code := e.postWebhook(t, ev2, e.sign(ev2, time.Now())); code != http.StatusOK {
		t.Fatalf("webhook answered %d", code)
	}
	e.waitClosed(t, "payment-reconcile/"+p.GetId())
	if _, err := sbx.Refund(ctxT(t), gateway.RefundRequest{
		IdempotencyKey: "probe-" + p.GetId(), PaymentID: p.GetId(), Reference: late.Reference, Amount: 1, Currency: "USD",
	}); err == nil {
		t.Fatal("the sandbox still had money to refund: the charge was not refunded in full")
	}
	cs = e.waitCases(t, adm, p.GetId(), func(cs []*pb.ReconciliationCase) bool { return len(cs) == 1 })
	if cs[0].GetRefundReference() != got.GetRefundReference() {
		t.Fatalf("the redelivery refunded again: %v", cs[0])
	}
	// Customers and merchants cannot list cases.
	r := e.post(t, m.Token, procListReconciliationCases, map[string]any{})
	wantCode(t, r, "permission_denied")

	// An admin closes the case with a note; it leaves the open list, and
	// closing it twice is refused.
	r = e.post(t, adm.Token, procResolveReconciliationCase, map[string]any{"id": got.GetId(), "note": "refund seen on the card statement"})
	if r.status != http.StatusOK {
		t.Fatalf("ResolveReconciliationCase: %s", r)
	}
	var resolved pb.ResolveReconciliationCaseResponse
	if err := protojson.Unmarshal(r.body, &resolved); err != nil {
		t.Fatal(err)
	}
	if c := resolved.GetReconciliationCase(); c.GetStatus() != pb.ReconciliationCaseStatus_RECONCILIATION_CASE_STATUS_RESOLVED ||
		c.GetResolutionNote() != "refund seen on the card statement" {
		t.Fatalf("resolved case %v", c)
	}
	r = e.post(t, adm.Token, procListReconciliationCases, map[string]any{"status": "RECONCILIATION_CASE_STATUS_OPEN", "payment_id": p.GetId()})
	var open pb.ListReconciliationCasesResponse
	if err := protojson.Unmarshal(r.body, &open); err != nil || len(open.GetReconciliationCases()) != 0 {
		t.Fatalf("open cases after resolving: %s %v", r, err)
	}
	wantCode(t, e.post(t, adm.Token, procResolveReconciliationCase, map[string]any{"id": got.GetId(), "note": "again"}), "failed_precondition")
	wantCode(t, e.post(t, adm.Token, procResolveReconciliationCase, map[string]any{"id": got.GetId()}), "invalid_argument")
	// The resolution, and only the one that happened, is in the audit trail.
	var trail pb.ListAuditEventsResponse
	r = e.post(t, adm.Token, "/payments.v1.AdminService/ListAuditEvents", map[string]any{"type": "reconciliation_case.resolved", "actor_id": adm.ID})
	if err := protojson.Unmarshal(r.body, &trail); err != nil || len(trail.GetAuditEvents()) != 1 ||
		trail.GetAuditEvents()[0].GetDetail()["reconciliation_case_id"] != got.GetId() || trail.GetAuditEvents()[0].GetDetail()["payment_id"] != p.GetId() {
		t.Fatalf("audit of the resolution: %s %v", r, err)
	}
}

// waitCases polls the admins' list of a payment's cases until ok.
func (e *E) waitCases(t *testing.T, adm user, paymentID string, ok func([]*pb.ReconciliationCase) bool) []*pb.ReconciliationCase {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		r := e.post(t, adm.Token, procListReconciliationCases, map[string]any{"payment_id": paymentID})
		if r.status != http.StatusOK {
			t.Fatalf("ListReconciliationCases: %s", r)
		}
		var res pb.ListReconciliationCasesResponse
		if err := protojson.Unmarshal(r.body, &res); err != nil {
			t.Fatal(err)
		}
		if ok(res.GetReconciliationCases()) {
			return res.GetReconciliationCases()
		}
		if time.Now().After(deadline) {
			t.Fatalf("cases of %s after %v: %v", paymentID, waitFor, res.GetReconciliationCases())
		}
		time.Sleep(pollEvery)
	}
}
