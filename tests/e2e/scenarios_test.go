package e2e

// The main happy paths, written once and run on SQLite (TestHappyPaths) and
// on MySQL/MariaDB (TestHappyPathsMySQL). Each scenario registers its own
// accounts and compares gateway counters and ledger balances by difference,
// so scenarios do not depend on each other.

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	"github.com/payments-platform/payments/internal/store"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/workflows/payment"
)

var happyPaths = []struct {
	name string
	run  func(t *testing.T, e *E)
}{
	{"CustomerPaysMerchant", scenarioCustomerPaysMerchant},
	{"MerchantChargesCustomerAndGuest", scenarioMerchantCharges},
	{"ManualCapture", scenarioManualCapture},
	{"Declines", scenarioDeclines},
	{"ThreeDSecure", scenarioThreeDSecure},
	{"Cancel", scenarioCancel},
	{"ConcurrentIdempotentCreate", func(t *testing.T, e *E) { scenarioConcurrentIdempotentCreate(t, e, 50) }},
}

func runHappyPaths(t *testing.T, e *E) {
	for _, s := range happyPaths {
		t.Run(s.name, func(t *testing.T) {
			s.run(t, e)
			e.checkLedger(t)
		})
	}
}

// queryState asks the payment's workflow for its live state.
func (e *E) queryState(t *testing.T, workflowID string) store.PaymentRecord {
	t.Helper()
	v, err := e.Temporal.QueryWorkflow(ctxT(t), workflowID, "", payment.QueryState)
	if err != nil {
		t.Fatalf("query %s on %s: %v", payment.QueryState, workflowID, err)
	}
	var rec store.PaymentRecord
	if err := v.Get(&rec); err != nil {
		t.Fatalf("decode state of %s: %v", workflowID, err)
	}
	return rec
}

// oneWorkflow checks that exactly one workflow execution has the payment's
// workflow id (never a second one), once visibility has caught up.
func (e *E) oneWorkflow(t *testing.T, p *pb.Payment) {
	t.Helper()
	rows := e.waitVisible(t, fmt.Sprintf("WorkflowId = '%s'", p.GetWorkflowId()), func(r []*workflowExecution) bool { return len(r) > 0 })
	if len(rows) != 1 {
		t.Fatalf("%d executions of %s, want exactly one", len(rows), p.GetWorkflowId())
	}
	if got := rows[0].GetType().GetName(); got != payment.WorkflowName {
		t.Fatalf("workflow type %q, want %q", got, payment.WorkflowName)
	}
}

func wantCard(t *testing.T, p *pb.Payment, brand, last4 string) {
	t.Helper()
	pm := p.GetPaymentMethod()
	if pm.GetType() != "card" || pm.GetBrand() != brand || pm.GetLast4() != last4 || pm.GetExpMonth() != 12 || pm.GetExpYear() != 2034 {
		t.Fatalf("payment_method = %v, want card %s ...%s 12/2034", pm, brand, last4)
	}
}

func scenarioCustomerPaysMerchant(t *testing.T, e *E) {
	m, c := e.merchant(t), e.customer(t)
	before := e.gw.counts()
	req := pay(m, 2599, "usd", "pm_card_visa").
		set("description", "order 1001").
		set("metadata", map[string]string{"order_id": "1001", "channel": "web"})
	p := e.create(t, c, req)
	wantStatus(t, p, stSucceeded)
	wantAmounts(t, p, 0, 2599)
	wantCard(t, p, "visa", "4242")
	if p.GetMerchantId() != m.ID || p.GetCustomerId() != c.ID {
		t.Fatalf("parties = %s/%s, want merchant %s, customer %s", p.GetMerchantId(), p.GetCustomerId(), m.ID, c.ID)
	}
	if p.GetCurrency() != "USD" || p.GetCaptureMethod() != pb.CaptureMethod_CAPTURE_METHOD_AUTOMATIC {
		t.Fatalf("currency %q, capture %s", p.GetCurrency(), p.GetCaptureMethod())
	}
	if p.GetDescription() != "order 1001" || p.GetMetadata()["order_id"] != "1001" || p.GetMetadata()["channel"] != "web" {
		t.Fatalf("description/metadata not kept: %q %v", p.GetDescription(), p.GetMetadata())
	}
	if p.GetFailureCode() != "" || p.GetNextAction() != nil {
		t.Fatalf("failure %q, next_action %v", p.GetFailureCode(), p.GetNextAction())
	}
	// The merchant sees the same payment, and the gateway's reference of it
	// (which is not the customer's business).
	asMerchant := e.get(t, m, p.GetId())
	if !strings.HasPrefix(asMerchant.GetGatewayReference(), sandbox.ReferencePrefix) {
		t.Fatalf("the merchant sees gateway_reference %q, want %s...", asMerchant.GetGatewayReference(), sandbox.ReferencePrefix)
	}
	if p.GetGatewayReference() != "" {
		t.Fatalf("the customer sees gateway_reference %q", p.GetGatewayReference())
	}
	if !protoEqual(customerView(asMerchant), p) {
		t.Fatalf("the merchant sees another payment:\ncustomer %v\nmerchant %v", p, asMerchant)
	}
	if d := e.gw.counts().creates - before.creates; d != 1 {
		t.Fatalf("%d gateway charges, want 1", d)
	}
	e.wantBalances(t, m.ID, c.ID, "USD", 2599)
	e.oneWorkflow(t, p)
	e.waitClosed(t, p.GetWorkflowId())
	if st := e.queryState(t, p.GetWorkflowId()); st.Status != entpayment.StatusSucceeded || st.AmountReceived != 2599 || st.ID != p.GetId() {
		t.Fatalf("query state of a finished payment: %+v", st)
	}
	e.wantDeclaredLogic(t, p.GetWorkflowId())
	e.recordHistory(t, "automatic_success", p.GetWorkflowId())
}

func scenarioMerchantCharges(t *testing.T, e *E) {
	m, c := e.merchant(t), e.customer(t)
	// A merchant cannot charge a customer who never paid it (that would put
	// charges into an unrelated customer's history)...
	rowsBefore := e.paymentRows(t)
	r := e.post(t, m.Token, "/payments.v1.PaymentService/CreatePayment",
		payReq{"customer_id": c.ID, "amount": int64(4200), "currency": "EUR", "payment_method": "pm_card_mastercard"})
	wantCode(t, r, "invalid_argument")
	if rows := e.paymentRows(t); rows != rowsBefore {
		t.Fatalf("%d payment rows after a refused charge, want %d", rows, rowsBefore)
	}
	// ...but once the customer has paid it, the customer is one of its customers.
	first := e.create(t, c, pay(m, 1000, "EUR", "pm_card_visa"))
	wantStatus(t, first, stSucceeded)
	p := e.create(t, m, payReq{"customer_id": c.ID, "amount": int64(4200), "currency": "EUR", "payment_method": "pm_card_mastercard"})
	wantStatus(t, p, stSucceeded)
	wantCard(t, p, "mastercard", "4444")
	if p.GetMerchantId() != m.ID || p.GetCustomerId() != c.ID {
		t.Fatalf("parties = %s/%s, want %s/%s", p.GetMerchantId(), p.GetCustomerId(), m.ID, c.ID)
	}
	if got := e.get(t, c, p.GetId()); got.GetId() != p.GetId() {
		t.Fatalf("the customer cannot see the payment: %v", got)
	}
	e.wantBalances(t, m.ID, c.ID, "EUR", 1000+4200)

	// ...or a guest (no customer_id).
	guestBefore := e.balance(t, "customer_funding:guest", "EUR")
	g := e.create(t, m, payReq{"amount": int64(1500), "currency": "eur", "payment_method": "pm_card_visa"})
	wantStatus(t, g, stSucceeded)
	if g.GetMerchantId() != m.ID || g.GetCustomerId() != "" {
		t.Fatalf("guest charge parties = %s/%q", g.GetMerchantId(), g.GetCustomerId())
	}
	if got := e.balance(t, "merchant_balance:"+m.ID, "EUR"); got != -(1000 + 4200 + 1500) {
		t.Fatalf("merchant balance %d, want %d", got, -(1000 + 4200 + 1500))
	}
	if got := e.balance(t, "customer_funding:guest", "EUR") - guestBefore; got != 1500 {
		t.Fatalf("customer_funding:guest moved by %d, want 1500", got)
	}
	e.checkLedger(t)
}

func scenarioManualCapture(t *testing.T, e *E) {
	m, c := e.merchant(t), e.customer(t)
	before := e.gw.counts()
	p := e.create(t, c, pay(m, 10000, "USD", "pm_card_visa").manual())
	wantStatus(t, p, stRequiresCapture)
	wantAmounts(t, p, 10000, 0)
	if p.GetCaptureMethod() != pb.CaptureMethod_CAPTURE_METHOD_MANUAL {
		t.Fatalf("capture_method = %s", p.GetCaptureMethod())
	}
	// Nothing moved yet.
	if got := e.balance(t, "merchant_balance:"+m.ID, "USD"); got != 0 {
		t.Fatalf("merchant balance %d before capture, want 0", got)
	}
	// The live state, as an operator queries it.
	st := e.queryState(t, p.GetWorkflowId())
	if st.Status != entpayment.StatusRequiresCapture || st.AmountCapturable != 10000 || st.AuthorizationExpiresAt == nil {
		t.Fatalf("query state = %+v, want requires_capture with 10000 capturable and an expiry", st)
	}
	// Only the merchant captures.
	wantCode(t, e.captureR(t, c, p.GetId(), 0), "permission_denied")

	// A partial capture; the rest is released.
	r := e.captureR(t, m, p.GetId(), 6000)
	got := r.payment(t)
	wantStatus(t, got, stSucceeded)
	wantAmounts(t, got, 0, 6000)
	if again := e.get(t, m, p.GetId()); !protoEqual(again, got) {
		t.Fatalf("GetPayment after capture differs:\n%v\n%v", again, got)
	}
	// The customer sees the same payment, without the merchant's fields.
	if again := e.get(t, c, p.GetId()); !protoEqual(again, customerView(got)) {
		t.Fatalf("the customer's GetPayment after capture differs:\n%v\n%v", again, got)
	}
	e.wantBalances(t, m.ID, c.ID, "USD", 6000)
	if d := e.gw.counts(); d.creates-before.creates != 1 || d.captures-before.captures != 1 {
		t.Fatalf("gateway calls %+v (before %+v), want one create and one capture", d, before)
	}
	e.recordHistory(t, "manual_capture", p.GetWorkflowId())

	// A full capture (no amount) takes everything authorized.
	m2, c2 := e.merchant(t), e.customer(t)
	p2 := e.create(t, c2, pay(m2, 777, "USD", "pm_card_mastercard").manual())
	wantStatus(t, p2, stRequiresCapture)
	got = e.captureR(t, m2, p2.GetId(), 0).payment(t)
	wantStatus(t, got, stSucceeded)
	wantAmounts(t, got, 0, 777)
	e.wantBalances(t, m2.ID, c2.ID, "USD", 777)
}

func scenarioDeclines(t *testing.T, e *E) {
	declines := []struct {
		method, code, last4 string
	}{
		{"pm_card_chargeDeclined", "card_declined", "0002"},
		{"pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "9995"},
		{"pm_card_chargeDeclinedExpiredCard", "expired_card", "0069"},
	}
	for i, d := range declines {
		t.Run(d.method, func(t *testing.T) {
			m, c := e.merchant(t), e.customer(t)
			p := e.create(t, c, pay(m, 1250, "USD", d.method))
			wantStatus(t, p, stFailed)
			wantAmounts(t, p, 0, 0)
			wantCard(t, p, "visa", d.last4)
			if p.GetFailureCode() != d.code || p.GetFailureMessage() == "" {
				t.Fatalf("failure = %q %q, want code %q and a message", p.GetFailureCode(), p.GetFailureMessage(), d.code)
			}
			// No money moved.
			if got := e.balance(t, "merchant_balance:"+m.ID, "USD"); got != 0 {
				t.Fatalf("merchant balance %d after a decline", got)
			}
			if got := e.balance(t, "customer_funding:"+c.ID, "USD"); got != 0 {
				t.Fatalf("customer funding %d after a decline", got)
			}
			e.checkLedger(t)
			if i == 0 {
				e.recordHistory(t, "decline", p.GetWorkflowId())
			}
		})
	}
}

func scenarioThreeDSecure(t *testing.T, e *E) {
	t.Run("Completed", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		const returnURL = "https://shop.example/checkout/done?order=1001"
		p := e.create(t, c, pay(m, 3100, "USD", "pm_card_authenticationRequired").set("return_url", returnURL))
		wantStatus(t, p, stRequiresAction)
		wantAmounts(t, p, 0, 0)
		ref := e.get(t, m, p.GetId()).GetGatewayReference()
		if !strings.HasPrefix(ref, sandbox.ReferencePrefix) {
			t.Fatalf("the merchant sees gateway_reference %q", ref)
		}
		loc := e.threeDS(t, p, sandbox.OutcomeSucceed)
		u, err := url.Parse(loc)
		if err != nil || !strings.HasPrefix(loc, "https://shop.example/checkout/done?") || u.Query().Get("order") != "1001" ||
			u.Query().Get("redirect_status") != "succeeded" || u.Query().Get("payment_intent") != ref {
			t.Fatalf("after authentication the browser goes to %q, want the return URL with payment_intent and redirect_status", loc)
		}
		got := e.waitStatus(t, c, p.GetId(), stSucceeded)
		wantAmounts(t, got, 0, 3100)
		if got.GetNextAction() != nil {
			t.Fatalf("next_action left after success: %v", got.GetNextAction())
		}
		e.wantBalances(t, m.ID, c.ID, "USD", 3100)
		evID := sandbox.EventID(ref, sandbox.OutcomeSucceed)
		if ids := e.eventIDs(t, p.GetId()); len(ids) != 1 || ids[0] != evID {
			t.Fatalf("gateway events of the payment: %v, want [%s]", ids, evID)
		}
		// A second click redelivers the same event: accepted, nothing changes.
		e.threeDS(t, p, sandbox.OutcomeSucceed)
		e.waitClosed(t, p.GetWorkflowId())
		if again := e.get(t, c, p.GetId()); !protoEqual(again, got) {
			t.Fatalf("a redelivered event changed the payment:\n%v\n%v", got, again)
		}
		e.wantBalances(t, m.ID, c.ID, "USD", 3100)
		e.recordHistory(t, "threeds_completed", p.GetWorkflowId())
	})
	t.Run("Failed", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 3200, "GBP", "pm_card_authenticationRequired"))
		wantStatus(t, p, stRequiresAction)
		loc := e.threeDS(t, p, sandbox.OutcomeFail)
		if u, err := url.Parse(loc); err != nil || u.Query().Get("redirect_status") != "failed" || !strings.HasPrefix(u.Path, sandbox.ThreeDSPath) {
			t.Fatalf("after failed authentication the browser goes to %q", loc)
		}
		got := e.waitStatus(t, c, p.GetId(), stFailed)
		if got.GetFailureCode() != "authentication_required" {
			t.Fatalf("failure_code = %q, want authentication_required", got.GetFailureCode())
		}
		wantAmounts(t, got, 0, 0)
		// The first answer is final: the page no longer offers success, and
		// a success posted anyway (a stale tab) sends the failure again.
		e.waitClosed(t, p.GetWorkflowId())
		ref := e.get(t, m, p.GetId()).GetGatewayReference()
		if page := e.threeDSPage(t, p); strings.Contains(page, `value="`+sandbox.OutcomeSucceed+`"`) ||
			!strings.Contains(page, `value="`+sandbox.OutcomeFail+`"`) {
			t.Fatalf("the page after a failed authentication offers another outcome, or not the failure again:\n%s", page)
		}
		status, loc, body := e.threeDSPost(t, p, sandbox.OutcomeSucceed)
		if u, err := url.Parse(loc); status != http.StatusSeeOther || err != nil || u.Query().Get("redirect_status") != "failed" {
			t.Fatalf("success posted after a failed authentication: HTTP %d to %q, want 303 with redirect_status=failed:\n%s", status, loc, body)
		}
		if ids := e.eventIDs(t, p.GetId()); len(ids) != 1 || ids[0] != sandbox.EventID(ref, sandbox.OutcomeFail) {
			t.Fatalf("gateway events of the payment: %v, want only the failure's", ids)
		}
		if again := e.get(t, c, p.GetId()); !protoEqual(again, got) {
			t.Fatalf("a late success changed a failed payment:\n%v\n%v", got, again)
		}
		if b := e.balance(t, "merchant_balance:"+m.ID, "GBP"); b != 0 {
			t.Fatalf("merchant balance %d after failed authentication", b)
		}
	})
	t.Run("ManualCapture", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 5000, "USD", "pm_card_authenticationRequired").manual())
		wantStatus(t, p, stRequiresAction)
		e.threeDS(t, p, sandbox.OutcomeSucceed)
		got := e.waitStatus(t, c, p.GetId(), stRequiresCapture)
		wantAmounts(t, got, 5000, 0)
		got = e.captureR(t, m, p.GetId(), 0).payment(t)
		wantStatus(t, got, stSucceeded)
		wantAmounts(t, got, 0, 5000)
		e.wantBalances(t, m.ID, c.ID, "USD", 5000)
	})
}

func scenarioCancel(t *testing.T, e *E) {
	t.Run("RequiresCapture", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 8000, "USD", "pm_card_visa").manual())
		wantStatus(t, p, stRequiresCapture)
		before := e.gw.counts()
		got := e.cancelR(t, m, p.GetId(), "duplicate").payment(t)
		wantStatus(t, got, stCanceled)
		wantAmounts(t, got, 0, 0)
		if d := e.gw.counts().cancels - before.cancels; d != 1 {
			t.Fatalf("%d gateway cancels, want 1", d)
		}
		if again := e.get(t, m, p.GetId()); !protoEqual(again, got) {
			t.Fatalf("GetPayment after cancel differs:\n%v\n%v", again, got)
		}
		if again := e.get(t, c, p.GetId()); !protoEqual(again, customerView(got)) {
			t.Fatalf("the customer's GetPayment after cancel differs:\n%v\n%v", again, got)
		}
		if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != 0 {
			t.Fatalf("merchant balance %d after cancel", b)
		}
		e.recordHistory(t, "cancel", p.GetWorkflowId())
	})
	t.Run("RequiresActionByCustomer", func(t *testing.T) {
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 900, "USD", "pm_card_authenticationRequired"))
		wantStatus(t, p, stRequiresAction)
		got := e.cancelR(t, c, p.GetId(), "").payment(t)
		wantStatus(t, got, stCanceled)
		if got.GetNextAction() != nil {
			t.Fatalf("next_action left after cancel: %v", got.GetNextAction())
		}
		// Authenticating afterwards is refused and changes nothing: the page
		// says the payment is no longer awaiting authentication and offers
		// nothing, and a success posted anyway (a stale tab) sends nothing.
		e.waitClosed(t, p.GetWorkflowId())
		if page := e.threeDSPage(t, p); strings.Contains(page, `value="`+sandbox.OutcomeSucceed+`"`) || !strings.Contains(page, "no longer awaiting authentication") {
			t.Fatalf("the page of a canceled payment still offers authentication:\n%s", page)
		}
		if status, _, body := e.threeDSPost(t, p, sandbox.OutcomeSucceed); status != http.StatusConflict {
			t.Fatalf("success posted after cancel: HTTP %d, want 409:\n%s", status, body)
		}
		if ids := e.eventIDs(t, p.GetId()); len(ids) != 0 {
			t.Fatalf("gateway events after authenticating a canceled payment: %v", ids)
		}
		if again := e.get(t, c, p.GetId()); !protoEqual(again, got) {
			t.Fatalf("authentication after cancel changed the payment:\n%v\n%v", got, again)
		}
	})
}

// scenarioConcurrentIdempotentCreate sends n identical CreatePayment
// requests with one Idempotency-Key at once: one payment row, one workflow,
// one gateway charge, and every answer names the same payment.
func scenarioConcurrentIdempotentCreate(t *testing.T, e *E, n int) {
	m, c := e.merchant(t), e.customer(t)
	rowsBefore, before, chargesBefore := e.paymentRows(t), e.gw.counts(), e.gw.charges()
	key := "order-" + c.ID
	req := pay(m, 4999, "USD", "pm_card_visa").set("description", "concurrent")
	var wg sync.WaitGroup
	ctx := ctxT(t)
	replies := make([]reply, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			replies[i] = e.send(ctx, c.Token, procCreatePayment, req, "Idempotency-Key", key)
		})
	}
	close(start)
	wg.Wait()
	ids := map[string]int{}
	fresh := 0
	for i, r := range replies {
		if r.status != 200 {
			t.Fatalf("request %d of %d: %s", i, n, r)
		}
		p := r.payment(t)
		ids[p.GetId()]++
		switch r.header.Get("Idempotent-Replayed") {
		case "false":
			fresh++
		case "true":
		default:
			t.Fatalf("request %d: Idempotent-Replayed = %q", i, r.header.Get("Idempotent-Replayed"))
		}
	}
	if len(ids) != 1 || fresh != 1 {
		t.Fatalf("answers name payments %v with %d first answers, want one payment and one first answer", ids, fresh)
	}
	var id string
	for k := range ids {
		id = k
	}
	if got := e.paymentRows(t) - rowsBefore; got != 1 {
		t.Fatalf("%d payment rows, want 1", got)
	}
	calls := e.gw.counts().createCalls - before.createCalls
	if got := e.gw.charges() - chargesBefore; got != 1 {
		t.Fatalf("%d gateway charges (in %d calls), want 1", got, calls)
	}
	t.Logf("%d identical requests: one payment, one charge, %d gateway call(s)", n, calls)
	p := e.get(t, c, id)
	wantStatus(t, p, stSucceeded)
	e.oneWorkflow(t, p)
	// No other workflow either (visibility may lag: wait for the one).
	rows := e.waitVisible(t, fmt.Sprintf("MerchantId = '%s'", m.ID), func(r []*workflowExecution) bool { return len(r) > 0 })
	if len(rows) != 1 || rows[0].GetExecution().GetWorkflowId() != p.GetWorkflowId() {
		t.Fatalf("%d workflows for the merchant, want only %s", len(rows), p.GetWorkflowId())
	}
	e.wantBalances(t, m.ID, c.ID, "USD", 4999)
}
