package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// TestForbiddenTransitions: every move the state machine forbids is
// failed_precondition and changes nothing: not the payment, not the gateway,
// not the ledger; a refused capture leaves the authorization capturable.
func TestForbiddenTransitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	// Each state is reached with fresh accounts.
	type fixture struct {
		m, c user
		p    *pb.Payment
	}
	reach := map[string]func(t *testing.T) fixture{
		stSucceeded: func(t *testing.T) fixture {
			m, c := e.merchant(t), e.customer(t)
			p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
			wantStatus(t, p, stSucceeded)
			return fixture{m, c, p}
		},
		stFailed: func(t *testing.T) fixture {
			m, c := e.merchant(t), e.customer(t)
			p := e.create(t, c, pay(m, 1000, "USD", "pm_card_chargeDeclined"))
			wantStatus(t, p, stFailed)
			return fixture{m, c, p}
		},
		stCanceled: func(t *testing.T) fixture {
			m, c := e.merchant(t), e.customer(t)
			p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa").manual())
			p = e.cancelR(t, m, p.GetId(), "").payment(t)
			wantStatus(t, p, stCanceled)
			return fixture{m, c, p}
		},
		stRequiresCapture: func(t *testing.T) fixture {
			m, c := e.merchant(t), e.customer(t)
			p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa").manual())
			wantStatus(t, p, stRequiresCapture)
			return fixture{m, c, p}
		},
		stRequiresAction: func(t *testing.T) fixture {
			m, c := e.merchant(t), e.customer(t)
			p := e.create(t, c, pay(m, 1000, "USD", "pm_card_authenticationRequired").manual())
			wantStatus(t, p, stRequiresAction)
			return fixture{m, c, p}
		},
	}
	tests := []struct {
		name   string
		from   string
		op     string // capture or cancel
		amount int64  // for capture; 0 = everything
	}{
		{"capture a succeeded payment", stSucceeded, "capture", 0},
		{"partially capture a succeeded payment", stSucceeded, "capture", 500},
		{"cancel after success", stSucceeded, "cancel", 0},
		{"capture a failed payment", stFailed, "capture", 0},
		{"cancel a failed payment", stFailed, "cancel", 0},
		{"capture a canceled payment", stCanceled, "capture", 0},
		{"cancel a canceled payment", stCanceled, "cancel", 0},
		{"capture above the authorized amount", stRequiresCapture, "capture", 1001},
		{"capture before authentication", stRequiresAction, "capture", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := reach[tc.from](t)
			if slices.Contains([]string{stSucceeded, stFailed, stCanceled}, tc.from) {
				e.waitClosed(t, f.p.GetWorkflowId())
			}
			before := e.get(t, f.m, f.p.GetId())
			calls, rows := e.gw.counts(), e.paymentRows(t)
			balance := e.balance(t, "merchant_balance:"+f.m.ID, "USD")

			var r reply
			if tc.op == "capture" {
				r = e.captureR(t, f.m, f.p.GetId(), tc.amount)
			} else {
				r = e.cancelR(t, f.m, f.p.GetId(), "")
			}
			wantCode(t, r, "failed_precondition")
			if r.msg == "" {
				t.Fatal("failed_precondition without a message")
			}

			if after := e.get(t, f.m, f.p.GetId()); !protoEqual(after, before) {
				t.Fatalf("a refused %s changed the payment:\nbefore %v\nafter  %v", tc.op, before, after)
			}
			if got := e.gw.counts(); got != calls {
				t.Fatalf("a refused %s reached the gateway: %+v, before %+v", tc.op, got, calls)
			}
			if got := e.paymentRows(t); got != rows {
				t.Fatalf("payment rows %d, before %d", got, rows)
			}
			if got := e.balance(t, "merchant_balance:"+f.m.ID, "USD"); got != balance {
				t.Fatalf("merchant balance %d, before %d", got, balance)
			}
			e.checkLedger(t)

			// Still where it was: a refused capture left the authorization.
			switch tc.from {
			case stRequiresCapture:
				if st := e.queryState(t, f.p.GetWorkflowId()); st.Status != entpayment.StatusRequiresCapture || st.AmountCapturable != 1000 {
					t.Fatalf("workflow state after a refused capture: %s, %d capturable", st.Status, st.AmountCapturable)
				}
				got := e.captureR(t, f.m, f.p.GetId(), 1000).payment(t)
				wantStatus(t, got, stSucceeded)
				e.wantBalances(t, f.m.ID, f.c.ID, "USD", 1000)
			case stRequiresAction:
				e.threeDS(t, f.p, sandbox.OutcomeSucceed)
				e.waitStatus(t, f.c, f.p.GetId(), stRequiresCapture)
				got := e.captureR(t, f.m, f.p.GetId(), 0).payment(t)
				wantAmounts(t, got, 0, 1000)
				e.wantBalances(t, f.m.ID, f.c.ID, "USD", 1000)
			}
		})
	}
}

// TestTenantIsolation: another tenant's payment is not_found, exactly like
// a payment that does not exist, for reads and for changes; lists show only
// the caller's payments.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	otherM, otherC := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 2500, "USD", "pm_card_visa").manual())
	wantStatus(t, p, stRequiresCapture)
	asMerchant := e.get(t, m, p.GetId())
	mine := e.create(t, otherC, pay(otherM, 100, "USD", "pm_card_visa"))

	// Each call on the other tenant's payment answers exactly as on a payment
	// that does not exist: not_found (customers may not capture at all:
	// permission_denied, whatever the payment).
	const missing = "pay_01jzzzzzzzzzzzzzzzzzzzzzzz"
	for _, u := range []user{otherM, otherC} {
		calls := []struct {
			name string
			call func(id string) reply
			want string
		}{
			{"GetPayment", func(id string) reply { return e.getR(t, u, id) }, "not_found"},
			{"CapturePayment", func(id string) reply { return e.captureR(t, u, id, 0) }, "not_found"},
			{"CancelPayment", func(id string) reply { return e.cancelR(t, u, id, "fraudulent") }, "not_found"},
		}
		if u.Role == "ROLE_CUSTOMER" {
			calls[1].want = "permission_denied"
		}
		for _, c := range calls {
			theirs, none := c.call(p.GetId()), c.call(missing)
			wantCode(t, none, c.want)
			wantCode(t, theirs, c.want)
			if theirs.msg != none.msg {
				t.Fatalf("%s by another %s: message %q differs from an unknown payment's %q: it reveals the payment exists",
					c.name, u.Role, theirs.msg, none.msg)
			}
		}
		list := e.post(t, u.Token, procListPayments, map[string]any{"page_size": 100})
		var res pb.ListPaymentsResponse
		if err := protojsonUnmarshal(list.body, &res); err != nil || list.status != http.StatusOK {
			t.Fatalf("ListPayments: %s", list)
		}
		ids := paymentIDs(res.GetPayments())
		if slices.Contains(ids, p.GetId()) || !slices.Contains(ids, mine.GetId()) {
			t.Fatalf("ListPayments of another tenant: %v (the payment is %s, theirs %s)", ids, p.GetId(), mine.GetId())
		}
	}
	// Both parties list it.
	for _, u := range []user{m, c} {
		list := e.post(t, u.Token, procListPayments, map[string]any{})
		var res pb.ListPaymentsResponse
		if err := protojsonUnmarshal(list.body, &res); err != nil || list.status != http.StatusOK {
			t.Fatalf("ListPayments: %s", list)
		}
		if ids := paymentIDs(res.GetPayments()); !slices.Equal(ids, []string{p.GetId()}) {
			t.Fatalf("ListPayments of a party: %v, want [%s]", ids, p.GetId())
		}
	}
	// Nothing changed, as either party sees it; the payment's own merchant
	// can still capture.
	if got := e.get(t, c, p.GetId()); !protoEqual(got, p) {
		t.Fatalf("the payment changed:\n%v\n%v", p, got)
	}
	if got := e.get(t, m, p.GetId()); !protoEqual(got, asMerchant) {
		t.Fatalf("the payment changed, as its merchant sees it:\n%v\n%v", asMerchant, got)
	}
	got := e.captureR(t, m, p.GetId(), 0).payment(t)
	wantAmounts(t, got, 0, 2500)
	e.wantBalances(t, m.ID, c.ID, "USD", 2500)
}

func paymentIDs(ps []*pb.Payment) []string {
	var ids []string
	for _, p := range ps {
		ids = append(ids, p.GetId())
	}
	return ids
}

// TestBoundedWait: when the gateway has not answered within the bounded
// wait, CreatePayment answers PROCESSING, and the payment can be read at
// once; it moves on when the gateway answers. A capture while PROCESSING is
// failed_precondition.
func TestBoundedWait(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	const wait = time.Second
	e := newEnv(t, withPaymentWait(wait), withCreateHook(func(ctx context.Context, r gateway.CreateRequest) error {
		if r.Description != "hold" {
			return nil
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	m, c := e.merchant(t), e.customer(t)

	start := time.Now()
	p := e.create(t, c, pay(m, 6100, "USD", "pm_card_visa").set("description", "hold"))
	took := time.Since(start)
	wantStatus(t, p, stProcessing)
	if took < wait || took > wait+10*time.Second {
		t.Fatalf("CreatePayment answered after %v; the bounded wait is %v", took, wait)
	}
	if got := e.get(t, c, p.GetId()); got.GetStatus() != pb.PaymentStatus_PAYMENT_STATUS_PROCESSING {
		t.Fatalf("GetPayment while the gateway holds: %s", got.GetStatus())
	}
	qStart := time.Now()
	if st := e.queryState(t, p.GetWorkflowId()); st.Status != entpayment.StatusProcessing {
		t.Fatalf("query state while the gateway holds: %s", st.Status)
	}
	t.Logf("query %q answered in %v while the gateway call is held", "state", time.Since(qStart).Round(time.Millisecond))
	// Forbidden while processing.
	cStart := time.Now()
	wantCode(t, e.captureR(t, m, p.GetId(), 0), "failed_precondition")
	t.Logf("CapturePayment refused in %v while the gateway call is held", time.Since(cStart).Round(time.Millisecond))
	if got := e.get(t, c, p.GetId()); got.GetStatus() != pb.PaymentStatus_PAYMENT_STATUS_PROCESSING {
		t.Fatalf("a refused capture moved the payment to %s", got.GetStatus())
	}

	close(release)
	got := e.waitStatus(t, c, p.GetId(), stSucceeded)
	wantAmounts(t, got, 0, 6100)
	e.wantBalances(t, m.ID, c.ID, "USD", 6100)
	if n := e.gw.charges(); n != 1 {
		t.Fatalf("%d gateway charges (distinct idempotency keys), want 1", n)
	}
	// A payment that is not held still answers with its final status.
	quick := e.create(t, c, pay(m, 100, "USD", "pm_card_visa"))
	wantStatus(t, quick, stSucceeded)
}

// TestGatewayRetries: pm_sandbox_flaky fails with 503 a few times, then
// succeeds; the retries are visible in the workflow history (an activity
// started and completed on an attempt > 1), and the payment is charged once.
// pm_sandbox_ratelimited succeeds after its 429.
func TestGatewayRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, recording())
	t.Run(sandbox.MethodFlaky, func(t *testing.T) {
		t.Parallel()
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 4321, "USD", sandbox.MethodFlaky))
		wantStatus(t, p, stSucceeded)
		wantAmounts(t, p, 0, 4321)
		e.wantBalances(t, m.ID, c.ID, "USD", 4321)

		var started, completed int
		var attempt int32
		for _, ev := range e.history(t, p.GetWorkflowId()) {
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				started++
				attempt = max(attempt, ev.GetActivityTaskStartedEventAttributes().GetAttempt())
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				completed++
			}
		}
		if attempt < 2 || started != 1 || completed != 1 {
			t.Fatalf("history: %d activities started (last attempt %d), %d completed; want the gateway call completed on a retry (attempt > 1)",
				started, attempt, completed)
		}
		// The history's ActivityTaskStarted names the attempt that succeeded.
		// Describe agrees that nothing is pending any more.
		d, err := e.Temporal.DescribeWorkflowExecution(ctxT(t), p.GetWorkflowId(), "")
		if err != nil {
			t.Fatal(err)
		}
		if n := len(d.GetPendingActivities()); n != 0 {
			t.Fatalf("%d pending activities after success", n)
		}
		e.recordHistory(t, "flaky_retry", p.GetWorkflowId())
	})
	t.Run(sandbox.MethodRateLimited, func(t *testing.T) {
		t.Parallel()
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 1234, "USD", sandbox.MethodRateLimited))
		wantStatus(t, p, stSucceeded)
		wantAmounts(t, p, 0, 1234)
		e.wantBalances(t, m.ID, c.ID, "USD", 1234)
	})
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		// Every failed attempt was followed by one more, and none after the
		// success: flaky FlakyFailures+1 attempts, rate limited 2; two charges.
		if got, want := e.gw.counts().createCalls, int64(sandbox.FlakyFailures+1+2); got != want {
			t.Errorf("%d gateway attempts, want %d", got, want)
		}
		if got := e.gw.charges(); got != 2 {
			t.Errorf("%d gateway charges, want 2", got)
		}
	})
}

// TestConcurrentCaptureAndCancelReachTheGatewayOnce: captures and cancels
// racing on one authorized payment: exactly one wins, every other is
// failed_precondition, the gateway sees exactly one operation (one capture,
// or one cancel), and the ledger agrees with the winner.
//
// Regression (fixed): the workflow called the gateway's Capture and
// Cancel first as local activities (callGateway's fast path). A local
// activity runs inside the workflow task; when that task is lost (here the
// dev server's transient "premature end of stream" after an update, in
// production any worker crash or task timeout), the gateway has already
// captured or canceled, but the history has no trace of it, and the retried
// task may admit the racing updates in another order: the gateway then sees
// a second, different operation (a capture of another amount under the same
// idempotency key, or a cancel of a captured payment), and callers get
// `internal`. At Stripe the second capture is refused (same key, other
// parameters) while the first one moved the money: the platform keeps the
// payment in REQUIRES_CAPTURE and the ledger never records the capture.
// Fix: run Capture and Cancel as regular activities (scheduled in the
// history before they run); keep the fast path for CreatePayment only, whose
// request is fixed by the workflow input.
//
// Known (Temporal dev server 1.29.1, not this platform): now and then the
// racing updates are aborted over and over ("workflow update was aborted")
// and, once the server has refused the worker's answers to two speculative
// workflow tasks ("Workflow task not found"), it hands no task of the queue
// to the worker's open polls until they expire (60 s by default, so every
// request outlived the test's 30 s; nothing reached the gateway and the
// payment settled correctly afterwards). testenv makes polls expire after
// 10 s to bound that stall. A failure prints the workflow's history and when
// the worker last polled, which tells this apart from a real bug.
func TestConcurrentCaptureAndCancelReachTheGatewayOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for round := range 10 {
		m, c := e.merchant(t), e.customer(t)
		p := e.create(t, c, pay(m, 9000, "USD", "pm_card_visa").manual())
		wantStatus(t, p, stRequiresCapture)
		before := e.gw.counts()
		ctx := ctxT(t)
		const n = 6
		replies := make([]reply, 2*n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				replies[i] = e.send(ctx, m.Token, procCapturePayment, map[string]any{"id": p.GetId(), "amount": 1000 * (i + 1)})
			})
			wg.Go(func() {
				<-start
				replies[n+i] = e.send(ctx, m.Token, procCancelPayment, map[string]any{"id": p.GetId()})
			})
		}
		close(start)
		wg.Wait()
		var winner *pb.Payment
		var problems []string
		for i, r := range replies {
			switch {
			case r.status == http.StatusOK && winner == nil:
				winner = r.payment(t)
			case r.status == http.StatusOK:
				problems = append(problems, fmt.Sprintf("request %d: a second winner %s", i, r))
			case r.code != "failed_precondition":
				problems = append(problems, fmt.Sprintf("request %d: %s, want failed_precondition", i, r))
			}
		}
		after := e.gw.counts()
		if ops := after.captures - before.captures + after.cancels - before.cancels; ops != 1 {
			problems = append(problems, fmt.Sprintf("the gateway saw %d operations (%d captures, %d cancels), want 1",
				ops, after.captures-before.captures, after.cancels-before.cancels))
		}
		if winner == nil {
			problems = append(problems, "nobody won")
		} else if final := e.get(t, m, p.GetId()); !protoEqual(final, winner) {
			problems = append(problems, fmt.Sprintf("the payment differs from the winner's answer:\n%v\n%v", winner, final))
		}
		if len(problems) > 0 {
			t.Fatalf("round %d, payment %s:\n%s\n%s", round, p.GetId(), strings.Join(problems, "\n"), e.explain(p.GetWorkflowId()))
		}
		switch winner.GetStatus().String() {
		case stSucceeded:
			e.wantBalances(t, m.ID, c.ID, "USD", winner.GetAmountReceived())
		case stCanceled:
			e.wantBalances(t, m.ID, c.ID, "USD", 0)
		default:
			t.Fatalf("round %d: the winner left the payment %s", round, winner.GetStatus())
		}
	}
}
