package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	entrefund "github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/ids"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// ---- helpers of the refund suite ----

// refundGateway wraps the env's sandbox to see every refund that reaches
// the gateway (the harness's countingGateway counts charges, captures and
// cancels, not refunds), to refuse refunds of chosen amounts as a gateway
// would, and to lose the answer of a refund the sandbox has made.
type refundGateway struct {
	gateway.Gateway

	mu    sync.Mutex
	keys  map[string]bool // distinct refund requests (idempotency keys)
	refs  map[string]bool // distinct refunds the sandbox made
	calls int             // raw Refund calls
	// refuse maps an amount to the code the gateway refuses it with.
	refuse map[int64]string
	// hold, while set, keeps a refund the sandbox has made from answering
	// until the caller's context is done (the answer is lost); reached
	// gets the sandbox's answer of each held call.
	hold    bool
	reached chan gateway.RefundResult
}

// refundsOf puts a refundGateway between the env's worker and its sandbox.
// It must run before the env's first gateway call.
func refundsOf(e *E) *refundGateway {
	g := &refundGateway{Gateway: e.gw.Gateway, reached: make(chan gateway.RefundResult, 16)}
	e.gw.Gateway = g
	return g
}

func (g *refundGateway) Refund(ctx context.Context, r gateway.RefundRequest) (gateway.RefundResult, error) {
	g.mu.Lock()
	if g.keys == nil {
		g.keys, g.refs = map[string]bool{}, map[string]bool{}
	}
	g.calls++
	g.keys[r.IdempotencyKey] = true
	code, refuse := g.refuse[r.Amount]
	hold := g.hold
	g.mu.Unlock()
	if refuse {
		return gateway.RefundResult{}, &gateway.Error{Kind: gateway.Invalid, Code: code, StatusCode: http.StatusBadRequest,
			Message: "the test gateway refuses refunds of " + fmt.Sprint(r.Amount)}
	}
	res, err := g.Gateway.Refund(ctx, r)
	if err == nil {
		g.mu.Lock()
		g.refs[res.Reference] = true
		g.mu.Unlock()
	}
	if err != nil || !hold {
		return res, err
	}
	g.reached <- res
	<-ctx.Done()
	return gateway.RefundResult{}, ctx.Err()
}

// refuseAmount makes the gateway refuse refunds of amount with code.
func (g *refundGateway) refuseAmount(amount int64, code string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refuse == nil {
		g.refuse = map[int64]string{}
	}
	g.refuse[amount] = code
}

func (g *refundGateway) setHold(hold bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = hold
}

// counts returns the distinct refund requests, the distinct refunds made and
// the raw calls.
func (g *refundGateway) counts() (requests, made, calls int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys), len(g.refs), g.calls
}

// refundBody is a CreateRefund request; amount 0 leaves the field out.
func refundBody(paymentID string, amount int64) map[string]any {
	b := map[string]any{"payment_id": paymentID}
	if amount != 0 {
		b["amount"] = amount
	}
	return b
}

func (e *E) refundR(t *testing.T, u user, body map[string]any, headers ...string) reply {
	t.Helper()
	return e.post(t, u.Token, procCreateRefund, body, headers...)
}

// refundOK creates a refund and checks it succeeded with amount.
func (e *E) refundOK(t *testing.T, u user, paymentID string, amount, want int64) *pb.Refund {
	t.Helper()
	r := e.refundR(t, u, refundBody(paymentID, amount)).refund(t)
	if r.GetStatus() == pb.RefundStatus_REFUND_STATUS_PENDING {
		r = e.waitRefund(t, u, r.GetId(), pb.RefundStatus_REFUND_STATUS_SUCCEEDED)
	}
	if r.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || r.GetAmount() != want || r.GetPaymentId() != paymentID ||
		!strings.HasPrefix(r.GetId(), "re_") || r.GetWorkflowId() != "refund/"+r.GetId() {
		t.Fatalf("refund of %d of %s: %v, want succeeded with amount %d", amount, paymentID, r, want)
	}
	return r
}

func (e *E) getRefundR(t *testing.T, u user, id string) reply {
	t.Helper()
	return e.post(t, u.Token, procGetRefund, map[string]any{"id": id})
}

// waitRefund polls GetRefund until the refund is in status (not_found is
// accepted meanwhile: a refund has no row until its workflow runs).
func (e *E) waitRefund(t *testing.T, u user, id string, status pb.RefundStatus) *pb.Refund {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	last := "not found"
	for {
		r := e.getRefundR(t, u, id)
		switch {
		case r.status == http.StatusOK:
			rf := r.refund(t)
			if rf.GetStatus() == status {
				return rf
			}
			last = rf.GetStatus().String()
		case r.code != "not_found":
			t.Fatalf("GetRefund(%s): %s", id, r)
		}
		if time.Now().After(deadline) {
			t.Fatalf("refund %s is %s after %v, want %s", id, last, waitFor, status)
		}
		time.Sleep(pollEvery)
	}
}

// listRefunds calls ListRefunds, which must answer 200.
func (e *E) listRefunds(t *testing.T, u user, req map[string]any) *pb.ListRefundsResponse {
	t.Helper()
	r := e.post(t, u.Token, procListRefunds, req)
	if r.status != http.StatusOK {
		t.Fatalf("ListRefunds(%v): %s", req, r)
	}
	var res pb.ListRefundsResponse
	if err := protojson.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("ListRefunds answer: %v: %s", err, r.body)
	}
	return &res
}

// refundIDsListed is every refund ListRefunds shows u for req, all pages.
func (e *E) refundIDsListed(t *testing.T, u user, req map[string]any) []string {
	t.Helper()
	var out []string
	q := map[string]any{"page_size": 100}
	for k, v := range req {
		q[k] = v
	}
	for pages := 0; ; pages++ {
		res := e.listRefunds(t, u, q)
		out = append(out, refundIDs(res.GetRefunds())...)
		if res.GetNextPageToken() == "" {
			return out
		}
		if pages > 100 {
			t.Fatalf("ListRefunds(%v) never ends", req)
		}
		q["page_token"] = res.GetNextPageToken()
	}
}

func refundIDs(rs []*pb.Refund) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.GetId())
	}
	return out
}

// refundRows is the number of refund rows of a payment in the database.
func (e *E) refundRows(t *testing.T, paymentID string) int {
	t.Helper()
	n, err := e.Store.Client.Refund.Query().Where(entrefund.PaymentID(paymentID)).Count(ctxT(t))
	if err != nil {
		t.Fatalf("count refunds: %v", err)
	}
	return n
}

// wantRefunded checks the payment's amount_refunded and refund_state as u
// sees them.
func (e *E) wantRefunded(t *testing.T, u user, paymentID string, refunded int64, state pb.PaymentRefundState) *pb.Payment {
	t.Helper()
	p := e.get(t, u, paymentID)
	if p.GetAmountRefunded() != refunded || p.GetRefundState() != state {
		t.Fatalf("payment %s: amount_refunded %d, refund_state %s; want %d, %s",
			paymentID, p.GetAmountRefunded(), p.GetRefundState(), refunded, state)
	}
	return p
}

// wantNothingWritten checks that a refused refund left the payment as it
// was: amount_refunded unchanged, the same refunds listed and stored.
func (e *E) wantNothingWritten(t *testing.T, adm user, paymentID string, refunded int64, refunds []string) {
	t.Helper()
	if p := e.get(t, adm, paymentID); p.GetAmountRefunded() != refunded {
		t.Fatalf("payment %s: amount_refunded %d after a refused refund, want %d", paymentID, p.GetAmountRefunded(), refunded)
	}
	if got := e.refundIDsListed(t, adm, map[string]any{"payment_id": paymentID}); !slices.Equal(got, refunds) {
		t.Fatalf("refunds of %s after a refused refund: %v, want %v", paymentID, got, refunds)
	}
	if n := e.refundRows(t, paymentID); n != len(refunds) {
		t.Fatalf("%d refund rows of %s after a refused refund, want %d", n, paymentID, len(refunds))
	}
}

// sameIDs reports whether two id lists hold the same ids, in any order.
func sameIDs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// onBothDBs runs fn on a platform on SQLite and, as the subtest mysql, on
// MySQL/MariaDB (skipped, saying so, without PAYMENTS_TEST_MYSQL_DSN).
func onBothDBs(t *testing.T, fn func(t *testing.T, e *E)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, newEnv(t))
	})
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		fn(t, newEnv(t, withStore(newMySQLStore(t))))
	})
}

// ---- 1. concurrent partial refunds ----

// concurrentPartialRefunds sends 20 refunds of 70 of a 1000 payment at once:
// exactly 14 succeed (980), every other is failed_precondition naming the
// 0.20 USD left, and the payment, the listing and the ledger agree.
func concurrentPartialRefunds(t *testing.T, e *E) {
	const (
		received = 1000
		n        = 20
		each     = 70
		winners  = received / each // 14
		left     = received - winners*each
	)
	m, c := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, received, "USD", "pm_card_visa"))
	wantStatus(t, p, stSucceeded)

	replies := make([]reply, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	ctx := ctxT(t)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			replies[i] = e.send(ctx, m.Token, procCreateRefund, map[string]any{
				"payment_id": p.GetId(), "amount": each, "metadata": map[string]string{"n": fmt.Sprint(i)},
			})
		}()
	}
	close(start)
	wg.Wait()

	var won []string
	var sum int64
	wantMsg := []string{fmt.Sprintf("0.%02d USD left to refund", left), fmt.Sprintf("(%d in minor units)", left), p.GetId()}
	for i, r := range replies {
		if r.err != nil {
			t.Fatalf("refund %d: %v", i, r.err)
		}
		if r.status != http.StatusOK {
			if r.code != "failed_precondition" {
				t.Fatalf("refund %d: %s, want 200 or failed_precondition", i, r)
			}
			for _, s := range wantMsg {
				if !strings.Contains(r.msg, s) {
					t.Fatalf("refund %d refused with %q: it does not say %q", i, r.msg, s)
				}
			}
			continue
		}
		rf := r.refund(t)
		if rf.GetStatus() == pb.RefundStatus_REFUND_STATUS_PENDING {
			rf = e.waitRefund(t, m, rf.GetId(), pb.RefundStatus_REFUND_STATUS_SUCCEEDED)
		}
		if rf.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || rf.GetAmount() != each || rf.GetMetadata()["n"] != fmt.Sprint(i) {
			t.Fatalf("refund %d: %v", i, rf)
		}
		won = append(won, rf.GetId())
		sum += rf.GetAmount()
	}
	if len(won) != winners || sum != winners*each || sum > received {
		t.Fatalf("%d refunds succeeded for %d, want %d for %d (of %d received)", len(won), sum, winners, winners*each, received)
	}
	e.wantRefunded(t, m, p.GetId(), sum, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
	listed := e.refundIDsListed(t, m, map[string]any{"payment_id": p.GetId()})
	if !sameIDs(listed, won) {
		t.Fatalf("ListRefunds(payment_id) = %v, want the %d winners %v", listed, len(won), won)
	}
	if n := e.refundRows(t, p.GetId()); n != winners {
		t.Fatalf("%d refund rows, want %d", n, winners)
	}
	if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != -left {
		t.Fatalf("merchant balance %d, want %d", b, -left)
	}
	if b := e.balance(t, "customer_funding:"+c.ID, "USD"); b != left {
		t.Fatalf("customer funding %d, want %d", b, left)
	}
	e.checkLedger(t)
}

// TestRefundConcurrentPartialRefundsSQLite: 20 concurrent partial refunds
// of one payment on SQLite.
func TestRefundConcurrentPartialRefundsSQLite(t *testing.T) {
	t.Parallel()
	concurrentPartialRefunds(t, newEnv(t))
}

// TestRefundConcurrentPartialRefundsMySQL: the same on MySQL/MariaDB
// (skipped, saying so, without PAYMENTS_TEST_MYSQL_DSN).
func TestRefundConcurrentPartialRefundsMySQL(t *testing.T) {
	t.Parallel()
	concurrentPartialRefunds(t, newEnv(t, withStore(newMySQLStore(t))))
}

// ---- 2. amounts ----

// TestRefundAmounts: an absent or zero amount refunds everything still
// refundable; partial refunds are exact in JPY (no decimals) and KWD (three
// decimals, which the sandbox takes in steps of 10 as Stripe does), and the
// payment's amount_refunded and refund_state follow.
func TestRefundAmounts(t *testing.T) {
	t.Parallel()
	onBothDBs(t, refundAmounts)
}

func refundAmounts(t *testing.T, e *E) {
	m, c := e.merchant(t), e.customer(t)

	t.Run("absent amount refunds the rest", func(t *testing.T) {
		p := e.create(t, c, pay(m, 2500, "USD", "pm_card_visa"))
		e.wantRefunded(t, m, p.GetId(), 0, pb.PaymentRefundState_PAYMENT_REFUND_STATE_NONE)
		e.refundOK(t, m, p.GetId(), 1000, 1000)
		e.wantRefunded(t, m, p.GetId(), 1000, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
		e.refundOK(t, m, p.GetId(), 0, 1500)
		e.wantRefunded(t, m, p.GetId(), 2500, pb.PaymentRefundState_PAYMENT_REFUND_STATE_REFUNDED)
		r := e.refundR(t, m, refundBody(p.GetId(), 0))
		wantCode(t, r, "failed_precondition")
		if !strings.Contains(r.msg, "nothing is left to refund") {
			t.Fatalf("a refund of a refunded payment: %q", r.msg)
		}
	})

	t.Run("zero amount refunds everything", func(t *testing.T) {
		p := e.create(t, c, pay(m, 777, "EUR", "pm_card_visa"))
		r := e.refundR(t, m, map[string]any{"payment_id": p.GetId(), "amount": 0}).refund(t)
		if r.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || r.GetAmount() != 777 || r.GetCurrency() != "EUR" {
			t.Fatalf("refund with amount 0: %v", r)
		}
		e.wantRefunded(t, c, p.GetId(), 777, pb.PaymentRefundState_PAYMENT_REFUND_STATE_REFUNDED)
	})

	t.Run("JPY", func(t *testing.T) {
		p := e.create(t, c, pay(m, 1000, "JPY", "pm_card_visa"))
		r := e.refundR(t, m, map[string]any{"payment_id": p.GetId(), "amount": 333, "currency": "jpy"}).refund(t)
		if r.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || r.GetAmount() != 333 || r.GetCurrency() != "JPY" {
			t.Fatalf("refund of ¥333: %v", r)
		}
		e.wantRefunded(t, m, p.GetId(), 333, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
		if b := e.balance(t, "merchant_balance:"+m.ID, "JPY"); b != -667 {
			t.Fatalf("merchant JPY balance %d, want -667", b)
		}
		e.refundOK(t, m, p.GetId(), 0, 667)
		e.wantRefunded(t, m, p.GetId(), 1000, pb.PaymentRefundState_PAYMENT_REFUND_STATE_REFUNDED)
		if b := e.balance(t, "merchant_balance:"+m.ID, "JPY"); b != 0 {
			t.Fatalf("merchant JPY balance %d, want 0", b)
		}
	})

	t.Run("KWD", func(t *testing.T) {
		p := e.create(t, c, pay(m, 10000, "KWD", "pm_card_visa"))
		// CreatePayment refuses KWD amounts not ending in 0 for the
		// sandbox (as Stripe); so does CreateRefund, before anything.
		r := e.refundR(t, m, refundBody(p.GetId(), 1235))
		wantCode(t, r, "invalid_argument")
		if f := r.fields(t); !slices.Equal(f, []string{"amount"}) {
			t.Fatalf("1.235 KWD refused on fields %v, want [amount]: %s", f, r)
		}
		e.wantRefunded(t, m, p.GetId(), 0, pb.PaymentRefundState_PAYMENT_REFUND_STATE_NONE)
		e.refundOK(t, m, p.GetId(), 1230, 1230)
		e.wantRefunded(t, m, p.GetId(), 1230, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
		if b := e.balance(t, "merchant_balance:"+m.ID, "KWD"); b != -8770 {
			t.Fatalf("merchant KWD balance %d, want -8770", b)
		}
		e.refundOK(t, m, p.GetId(), 0, 8770)
		e.wantRefunded(t, m, p.GetId(), 10000, pb.PaymentRefundState_PAYMENT_REFUND_STATE_REFUNDED)
	})
	e.checkLedger(t)
}

// ---- 3. idempotency ----

// TestRefundIdempotency: the same Idempotency-Key and body replay the same
// refund with Idempotent-Replayed: true, making one refund and one gateway
// refund; the same key with another amount is invalid_argument.
func TestRefundIdempotency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := refundsOf(e)
	m, c := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
	body := map[string]any{"payment_id": p.GetId(), "amount": 300, "reason": "REFUND_REASON_DUPLICATE",
		"metadata": map[string]string{"ticket": "T-1"}}

	first := e.refundR(t, m, body, "Idempotency-Key", "refund-T-1")
	wantReplayed(t, first, "false")
	r := first.refund(t)
	if r.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || r.GetAmount() != 300 ||
		r.GetReason() != pb.RefundReason_REFUND_REASON_DUPLICATE || r.GetMetadata()["ticket"] != "T-1" {
		t.Fatalf("first refund: %v", r)
	}
	again := e.refundR(t, m, body, "Idempotency-Key", "refund-T-1")
	wantReplayed(t, again, "true")
	if got := again.refund(t); !proto.Equal(got, r) {
		t.Fatalf("the replay differs:\nfirst  %v\nreplay %v", r, got)
	}
	other := e.refundR(t, m, map[string]any{"payment_id": p.GetId(), "amount": 400, "reason": "REFUND_REASON_DUPLICATE",
		"metadata": map[string]string{"ticket": "T-1"}}, "Idempotency-Key", "refund-T-1")
	wantCode(t, other, "invalid_argument")
	if !strings.Contains(strings.ToLower(other.msg), "idempotency-key") {
		t.Fatalf("another amount under the key: %q does not name the Idempotency-Key", other.msg)
	}
	if got := e.refundIDsListed(t, m, map[string]any{"payment_id": p.GetId()}); !slices.Equal(got, []string{r.GetId()}) {
		t.Fatalf("refunds listed %v, want [%s]", got, r.GetId())
	}
	if requests, made, _ := g.counts(); requests != 1 || made != 1 {
		t.Fatalf("gateway: %d refund requests, %d refunds made; want 1, 1", requests, made)
	}
	e.wantRefunded(t, m, p.GetId(), 300, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
	e.checkLedger(t)
}

// TestRefundIdempotentReplayAfterTheBalanceMoved: a replay must answer the
// first result even when the refund it replays took what is left (a client
// that lost the answer of a large or full refund retries with its key).
func TestRefundIdempotentReplayAfterTheBalanceMoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := refundsOf(e)
	m, c := e.merchant(t), e.customer(t)

	for _, tc := range []struct {
		name   string
		amount int64 // 0: everything
		want   int64
	}{
		{"most of the payment", 700, 700},
		{"all of the payment", 0, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
			key := "refund-" + p.GetId()
			first := e.refundR(t, m, refundBody(p.GetId(), tc.amount), "Idempotency-Key", key)
			wantReplayed(t, first, "false")
			r := first.refund(t)
			if r.GetStatus() != pb.RefundStatus_REFUND_STATUS_SUCCEEDED || r.GetAmount() != tc.want {
				t.Fatalf("first refund: %v", r)
			}
			again := e.refundR(t, m, refundBody(p.GetId(), tc.amount), "Idempotency-Key", key)
			if again.status != http.StatusOK {
				t.Fatalf("the replay of refund %s with its key: %s; want 200 with the same refund and %s: true "+
					"(CreateRefund checks the payment's balance before it looks the key up)", r.GetId(), again, replayedHeader)
			}
			wantReplayed(t, again, "true")
			if got := again.refund(t); got.GetId() != r.GetId() {
				t.Fatalf("the replay answered refund %s, want %s", got.GetId(), r.GetId())
			}
			if got := e.refundIDsListed(t, m, map[string]any{"payment_id": p.GetId()}); !slices.Equal(got, []string{r.GetId()}) {
				t.Fatalf("refunds listed %v, want [%s]", got, r.GetId())
			}
		})
	}
	t.Run("another amount over what is left", func(t *testing.T) {
		p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
		key := "refund-" + p.GetId()
		r := e.refundR(t, m, refundBody(p.GetId(), 700), "Idempotency-Key", key).refund(t)
		other := e.refundR(t, m, refundBody(p.GetId(), 800), "Idempotency-Key", key)
		if other.code != "invalid_argument" || !strings.Contains(strings.ToLower(other.msg), "idempotency-key") {
			t.Fatalf("key of refund %s reused for another amount: %s; want invalid_argument naming the Idempotency-Key", r.GetId(), other)
		}
	})
	if requests, made, _ := g.counts(); requests != 3 || made != 3 {
		t.Fatalf("gateway: %d refund requests, %d refunds made; want 3, 3", requests, made)
	}
}

// ---- 4. refusals ----

// TestRefundRefusals: each refusal answers its exact Connect code and writes
// nothing: the payment's amount_refunded is unchanged and no refund is
// listed or stored, nor sent to the gateway.
func TestRefundRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := refundsOf(e)
	m, c, adm := e.merchant(t), e.customer(t), e.admin(t)
	other := e.merchant(t)
	p := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
	wantStatus(t, p, stSucceeded)

	// refused sends body as u and checks the answer's code, and that the
	// payment is as it was.
	refused := func(t *testing.T, u user, payment *pb.Payment, body map[string]any, code string) reply {
		t.Helper()
		before := e.get(t, adm, payment.GetId())
		listed := e.refundIDsListed(t, adm, map[string]any{"payment_id": payment.GetId()})
		requests, _, _ := g.counts()
		r := e.refundR(t, u, body)
		wantCode(t, r, code)
		e.wantNothingWritten(t, adm, payment.GetId(), before.GetAmountRefunded(), listed)
		if now, _, _ := g.counts(); now != requests {
			t.Fatalf("a refused refund reached the gateway: %d requests, before %d", now, requests)
		}
		return r
	}

	t.Run("the payment's customer", func(t *testing.T) {
		refused(t, c, p, refundBody(p.GetId(), 100), "permission_denied")
	})
	t.Run("another merchant", func(t *testing.T) {
		r := refused(t, other, p, refundBody(p.GetId(), 100), "not_found")
		missing := e.refundR(t, other, refundBody(ids.New(ids.Payment), 100))
		wantCode(t, missing, "not_found")
		if r.msg != missing.msg {
			t.Fatalf("another merchant's payment answers %q, a missing one %q: the answer tells that it exists", r.msg, missing.msg)
		}
	})
	t.Run("a failed payment", func(t *testing.T) {
		failed := e.create(t, c, pay(m, 1000, "USD", "pm_card_chargeDeclined"))
		wantStatus(t, failed, stFailed)
		r := refused(t, m, failed, refundBody(failed.GetId(), 0), "failed_precondition")
		if !strings.Contains(r.msg, failed.GetId()) || !strings.Contains(r.msg, "received no money") {
			t.Fatalf("refund of a failed payment: %q", r.msg)
		}
	})
	t.Run("a canceled payment", func(t *testing.T) {
		held := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa").manual())
		canceled := e.cancelR(t, m, held.GetId(), "").payment(t)
		wantStatus(t, canceled, stCanceled)
		r := refused(t, m, canceled, refundBody(canceled.GetId(), 500), "failed_precondition")
		if !strings.Contains(r.msg, "canceled") || !strings.Contains(r.msg, "received no money") {
			t.Fatalf("refund of a canceled payment: %q", r.msg)
		}
	})
	t.Run("an authorized payment", func(t *testing.T) {
		held := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa").manual())
		wantStatus(t, held, stRequiresCapture)
		r := refused(t, m, held, refundBody(held.GetId(), 0), "failed_precondition")
		if !strings.Contains(r.msg, "cancel the payment instead") {
			t.Fatalf("refund of an uncaptured payment: %q does not say to cancel it", r.msg)
		}
		// Nothing was captured or canceled meanwhile.
		wantStatus(t, e.get(t, m, held.GetId()), stRequiresCapture)
	})
	t.Run("a negative amount", func(t *testing.T) {
		r := refused(t, m, p, refundBody(p.GetId(), -100), "invalid_argument")
		if f := r.fields(t); !slices.Equal(f, []string{"amount"}) {
			t.Fatalf("negative amount refused on %v: %s", f, r)
		}
	})
	t.Run("more than is left", func(t *testing.T) {
		q := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
		e.refundOK(t, m, q.GetId(), 600, 600)
		r := refused(t, m, q, refundBody(q.GetId(), 401), "failed_precondition")
		for _, s := range []string{q.GetId(), "4.00 USD left to refund", "(400 in minor units)", "401 asked"} {
			if !strings.Contains(r.msg, s) {
				t.Fatalf("over-refund refused with %q: it does not say %q", r.msg, s)
			}
		}
		e.wantRefunded(t, m, q.GetId(), 600, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
	})
	t.Run("another currency", func(t *testing.T) {
		r := refused(t, m, p, map[string]any{"payment_id": p.GetId(), "amount": 100, "currency": "EUR"}, "invalid_argument")
		if f := r.fields(t); !slices.Equal(f, []string{"currency"}) || !strings.Contains(r.msg, "USD") {
			t.Fatalf("another currency refused with %q on %v, want the field currency naming USD", r.msg, f)
		}
	})
	t.Run("a card field in metadata", func(t *testing.T) {
		r := refused(t, m, p, map[string]any{"payment_id": p.GetId(), "amount": 100, "metadata": map[string]string{"card_number": "x"}}, "invalid_argument")
		if f := r.fields(t); !slices.Equal(f, []string{"metadata"}) {
			t.Fatalf("a card field in metadata refused on %v: %s", f, r)
		}
	})
	t.Run("a card number in metadata", func(t *testing.T) {
		const pan = "4242424242424242"
		r := refused(t, m, p, map[string]any{"payment_id": p.GetId(), "amount": 100, "metadata": map[string]string{"note": pan}}, "invalid_argument")
		if strings.Contains(string(r.body), pan) || strings.Contains(string(r.body), "424242") {
			t.Fatalf("the refusal repeats the card number: %s", r.body)
		}
		if f := r.fields(t); !slices.Equal(f, []string{"metadata"}) {
			t.Fatalf("a card number in metadata refused on %v: %s", f, r)
		}
	})
	e.wantRefunded(t, m, p.GetId(), 0, pb.PaymentRefundState_PAYMENT_REFUND_STATE_NONE)
	if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != -1400 {
		t.Fatalf("merchant balance %d, want -1400 (1000 + 1000 received, 600 refunded)", b)
	}
}

// ---- 5. GetRefund ----

// TestRefundGetVisibility: a refund is visible to the payment's merchant,
// its customer and admins, with the gateway's reference for the merchant
// and admins only; another merchant or customer gets not_found, as for a
// refund that does not exist. An admin may refund too.
func TestRefundGetVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c, adm := e.merchant(t), e.customer(t), e.admin(t)
	m2, c2 := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 2000, "USD", "pm_card_visa"))
	r := e.refundR(t, m, map[string]any{"payment_id": p.GetId(), "amount": 500,
		"reason": "REFUND_REASON_REQUESTED_BY_CUSTOMER", "metadata": map[string]string{"order": "O-7"}}).refund(t)

	asMerchant := e.getRefundR(t, m, r.GetId()).refund(t)
	if !proto.Equal(asMerchant, r) {
		t.Fatalf("GetRefund differs from CreateRefund's answer:\ncreate %v\nget    %v", r, asMerchant)
	}
	if !strings.HasPrefix(asMerchant.GetGatewayReference(), "re_sbx_") || asMerchant.GetAmount() != 500 ||
		asMerchant.GetReason() != pb.RefundReason_REFUND_REASON_REQUESTED_BY_CUSTOMER || asMerchant.GetMetadata()["order"] != "O-7" ||
		asMerchant.GetCreatedAt() == nil || asMerchant.GetUpdatedAt() == nil {
		t.Fatalf("the merchant's refund: %v", asMerchant)
	}
	asAdmin := e.getRefundR(t, adm, r.GetId()).refund(t)
	if !proto.Equal(asAdmin, asMerchant) {
		t.Fatalf("the admin's refund differs from the merchant's:\n%v\n%v", asAdmin, asMerchant)
	}
	asCustomer := e.getRefundR(t, c, r.GetId()).refund(t)
	if asCustomer.GetGatewayReference() != "" {
		t.Fatalf("the customer sees gateway_reference %q", asCustomer.GetGatewayReference())
	}
	want := proto.Clone(asMerchant).(*pb.Refund)
	want.GatewayReference = ""
	if !proto.Equal(asCustomer, want) {
		t.Fatalf("the customer's refund, without the reference, differs:\n%v\n%v", asCustomer, want)
	}

	missing := e.getRefundR(t, m, ids.New(ids.Refund))
	wantCode(t, missing, "not_found")
	for name, u := range map[string]user{"another merchant": m2, "another customer": c2} {
		got := e.getRefundR(t, u, r.GetId())
		wantCode(t, got, "not_found")
		if got.msg != missing.msg {
			t.Fatalf("%s: %q, a missing refund %q", name, got.msg, missing.msg)
		}
	}

	// An admin refunds the merchant's payment.
	byAdmin := e.refundOK(t, adm, p.GetId(), 0, 1500)
	if got := e.getRefundR(t, m, byAdmin.GetId()).refund(t); got.GetGatewayReference() == "" || got.GetAmount() != 1500 {
		t.Fatalf("the admin's refund as the merchant sees it: %v", got)
	}
	e.wantRefunded(t, c, p.GetId(), 2000, pb.PaymentRefundState_PAYMENT_REFUND_STATE_REFUNDED)
}

// ---- 6. ListRefunds ----

// TestRefundList: newest first, pages of 2 over 5 refunds without
// duplicates or gaps, the status filter, the creation window, a customer's
// listing of its payments' refunds, and forged page tokens.
func TestRefundList(t *testing.T) {
	t.Parallel()
	onBothDBs(t, refundList)
}

func refundList(t *testing.T, e *E) {
	g := refundsOf(e)
	g.refuseAmount(13, "charge_disputed")
	m, c, adm := e.merchant(t), e.customer(t), e.admin(t)
	m2, c2 := e.merchant(t), e.customer(t)
	p1 := e.create(t, c, pay(m, 5000, "USD", "pm_card_visa"))
	p2 := e.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
	p3 := e.create(t, c2, pay(m, 1000, "USD", "pm_card_visa"))

	var rs []*pb.Refund // oldest first
	for i := int64(1); i <= 5; i++ {
		rs = append(rs, e.refundOK(t, m, p1.GetId(), 100*i, 100*i))
	}
	failed := e.refundR(t, m, refundBody(p2.GetId(), 13)).refund(t)
	if failed.GetStatus() != pb.RefundStatus_REFUND_STATUS_FAILED || failed.GetFailureReason() != "charge_disputed" {
		t.Fatalf("a refund the gateway refuses: %v", failed)
	}
	// A failed refund frees its amount.
	e.wantRefunded(t, m, p2.GetId(), 0, pb.PaymentRefundState_PAYMENT_REFUND_STATE_NONE)
	theirs := e.refundOK(t, m, p3.GetId(), 50, 50)
	newestFirst := []string{rs[4].GetId(), rs[3].GetId(), rs[2].GetId(), rs[1].GetId(), rs[0].GetId()}

	t.Run("pages of 2", func(t *testing.T) {
		var seen []string
		token := ""
		for page := 1; ; page++ {
			q := map[string]any{"payment_id": p1.GetId(), "page_size": 2}
			if token != "" {
				q["page_token"] = token
			}
			res := e.listRefunds(t, m, q)
			got := refundIDs(res.GetRefunds())
			want := newestFirst[min(2*(page-1), 5):min(2*page, 5)]
			if !slices.Equal(got, want) {
				t.Fatalf("page %d: %v, want %v", page, got, want)
			}
			seen = append(seen, got...)
			token = res.GetNextPageToken()
			if (page < 3) != (token != "") {
				t.Fatalf("page %d: next_page_token %q", page, token)
			}
			if token == "" {
				break
			}
		}
		if !slices.Equal(seen, newestFirst) {
			t.Fatalf("all pages: %v, want %v", seen, newestFirst)
		}
	})

	t.Run("the merchant's refunds", func(t *testing.T) {
		want := append([]string{theirs.GetId(), failed.GetId()}, newestFirst...)
		if got := e.refundIDsListed(t, m, nil); !slices.Equal(got, want) {
			t.Fatalf("the merchant's refunds: %v, want %v", got, want)
		}
		if got := e.refundIDsListed(t, m2, nil); len(got) != 0 {
			t.Fatalf("another merchant lists %v", got)
		}
		if got := e.refundIDsListed(t, m2, map[string]any{"payment_id": p1.GetId()}); len(got) != 0 {
			t.Fatalf("another merchant lists %v of %s", got, p1.GetId())
		}
		if got := e.refundIDsListed(t, adm, map[string]any{"payment_id": p3.GetId()}); !slices.Equal(got, []string{theirs.GetId()}) {
			t.Fatalf("an admin lists %v of %s", got, p3.GetId())
		}
	})

	t.Run("status", func(t *testing.T) {
		for status, want := range map[string][]string{
			"REFUND_STATUS_SUCCEEDED": append([]string{theirs.GetId()}, newestFirst...),
			"REFUND_STATUS_FAILED":    {failed.GetId()},
			"REFUND_STATUS_PENDING":   {},
			"REFUND_STATUS_CANCELED":  {},
		} {
			if got := e.refundIDsListed(t, m, map[string]any{"status": status}); !slices.Equal(got, want) {
				t.Fatalf("status %s: %v, want %v", status, got, want)
			}
		}
		if got := e.refundIDsListed(t, m, map[string]any{"status": "REFUND_STATUS_SUCCEEDED", "payment_id": p2.GetId()}); len(got) != 0 {
			t.Fatalf("succeeded refunds of %s: %v", p2.GetId(), got)
		}
	})

	t.Run("created window", func(t *testing.T) {
		ts := func(r *pb.Refund) string { return r.GetCreatedAt().AsTime().Format(time.RFC3339Nano) }
		for _, tc := range []struct {
			after, before *pb.Refund
			want          []string
		}{
			{rs[1], rs[3], []string{rs[2].GetId(), rs[1].GetId()}}, // [after, before)
			{rs[3], nil, []string{rs[4].GetId(), rs[3].GetId()}},
			{nil, rs[1], []string{rs[0].GetId()}},
			{rs[2], rs[2], []string{}},
		} {
			q := map[string]any{"payment_id": p1.GetId()}
			if tc.after != nil {
				q["created_after"] = ts(tc.after)
			}
			if tc.before != nil {
				q["created_before"] = ts(tc.before)
			}
			if got := e.refundIDsListed(t, m, q); !slices.Equal(got, tc.want) {
				t.Fatalf("ListRefunds(%v) = %v, want %v", q, got, tc.want)
			}
		}
	})

	t.Run("a customer", func(t *testing.T) {
		want := append([]string{failed.GetId()}, newestFirst...)
		if got := e.refundIDsListed(t, c, nil); !slices.Equal(got, want) {
			t.Fatalf("the customer's refunds: %v, want %v", got, want)
		}
		res := e.listRefunds(t, c, map[string]any{"payment_id": p1.GetId(), "page_size": 10})
		for _, r := range res.GetRefunds() {
			if r.GetGatewayReference() != "" {
				t.Fatalf("the customer's listing shows gateway_reference %q", r.GetGatewayReference())
			}
		}
		if got := e.refundIDsListed(t, c2, nil); !slices.Equal(got, []string{theirs.GetId()}) {
			t.Fatalf("the other customer's refunds: %v, want [%s]", got, theirs.GetId())
		}
		if got := e.refundIDsListed(t, c2, map[string]any{"payment_id": p1.GetId()}); len(got) != 0 {
			t.Fatalf("another customer lists %v of %s", got, p1.GetId())
		}
	})

	t.Run("a payment_id that is not one", func(t *testing.T) {
		r := e.post(t, m.Token, procListRefunds, map[string]any{"payment_id": rs[0].GetId()})
		wantCode(t, r, "invalid_argument")
		if f := r.fields(t); !slices.Equal(f, []string{"payment_id"}) {
			t.Fatalf("payment_id %q refused on %v", rs[0].GetId(), f)
		}
	})

	t.Run("forged page tokens", func(t *testing.T) {
		for _, token := range []string{
			"%%%not-base64",
			base64.RawURLEncoding.EncodeToString([]byte("pay:" + p1.GetId())), // another list's
			base64.RawURLEncoding.EncodeToString([]byte("forged")),
			base64.RawURLEncoding.EncodeToString([]byte("re:")),
		} {
			r := e.post(t, m.Token, procListRefunds, map[string]any{"page_token": token})
			wantCode(t, r, "invalid_argument")
			if f := r.fields(t); !slices.Equal(f, []string{"page_token"}) {
				t.Fatalf("page_token %q refused on %v", token, f)
			}
		}
	})
	e.checkLedger(t)
}

// ---- 7. operators ----

// TestRefundOperatorVisibility: operators find a refund's workflow by
// RefundId, and a payment's refunds by PaymentId and RefundStatus; an
// admin's refund links its workflow.
func TestRefundOperatorVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := refundsOf(e)
	g.refuseAmount(13, "charge_disputed")
	m, c, adm := e.merchant(t), e.customer(t), e.admin(t)
	p := e.create(t, c, pay(m, 3000, "USD", "pm_card_visa"))
	r1 := e.refundOK(t, m, p.GetId(), 1000, 1000)
	r2 := e.refundOK(t, m, p.GetId(), 500, 500)
	rf := e.refundR(t, m, refundBody(p.GetId(), 13)).refund(t)
	if rf.GetStatus() != pb.RefundStatus_REFUND_STATUS_FAILED {
		t.Fatalf("refused refund: %v", rf)
	}

	wfIDs := func(rows []*workflowExecution) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.GetExecution().GetWorkflowId())
		}
		return out
	}
	rows := e.waitVisible(t, fmt.Sprintf("RefundId = '%s'", r1.GetId()), func(rows []*workflowExecution) bool {
		return len(rows) == 1 && rows[0].keyword(t, "RefundStatus") == "succeeded"
	})
	w := rows[0]
	if w.GetExecution().GetWorkflowId() != "refund/"+r1.GetId() || w.GetType().GetName() != "refund.Refund" {
		t.Fatalf("RefundId = %s finds %s of type %s", r1.GetId(), w.GetExecution().GetWorkflowId(), w.GetType().GetName())
	}
	for name, want := range map[string]string{"RefundId": r1.GetId(), "PaymentId": p.GetId(), "MerchantId": m.ID} {
		if got := w.keyword(t, name); got != want {
			t.Fatalf("search attribute %s = %q, want %q", name, got, want)
		}
	}
	for query, want := range map[string][]string{
		fmt.Sprintf("PaymentId = '%s' AND RefundStatus = 'succeeded'", p.GetId()): {"refund/" + r1.GetId(), "refund/" + r2.GetId()},
		fmt.Sprintf("PaymentId = '%s' AND RefundStatus = 'failed'", p.GetId()):    {"refund/" + rf.GetId()},
		fmt.Sprintf("PaymentId = '%s'", p.GetId()):                                {"payment/" + p.GetId(), "refund/" + r1.GetId(), "refund/" + r2.GetId(), "refund/" + rf.GetId()},
		fmt.Sprintf("MerchantId = '%s' AND RefundId IS NOT NULL", m.ID):           {"refund/" + r1.GetId(), "refund/" + r2.GetId(), "refund/" + rf.GetId()},
	} {
		e.waitVisible(t, query, func(rows []*workflowExecution) bool { return sameIDs(wfIDs(rows), want) })
	}

	got := e.getRefundR(t, adm, r1.GetId()).refund(t)
	if want := e.UIURL + "/namespaces/default/workflows/refund%2F" + r1.GetId(); got.GetWorkflowUrl() != want {
		t.Fatalf("the admin's workflow_url = %q, want %q", got.GetWorkflowUrl(), want)
	}
	if got.GetWorkflowId() != "refund/"+r1.GetId() {
		t.Fatalf("workflow_id = %q", got.GetWorkflowId())
	}
	e.wantRefunded(t, m, p.GetId(), 1500, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
}
