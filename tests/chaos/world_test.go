package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// Procedures the suite calls.
const (
	pRegister       = "/payments.v1.AuthService/Register"
	pLogin          = "/payments.v1.AuthService/Login"
	pCreatePayment  = "/payments.v1.PaymentService/CreatePayment"
	pGetPayment     = "/payments.v1.PaymentService/GetPayment"
	pListPayments   = "/payments.v1.PaymentService/ListPayments"
	pCapture        = "/payments.v1.PaymentService/CapturePayment"
	pCancel         = "/payments.v1.PaymentService/CancelPayment"
	pCreateRefund   = "/payments.v1.RefundService/CreateRefund"
	pGetRefund      = "/payments.v1.RefundService/GetRefund"
	pOpenDispute    = "/payments.v1.DisputeService/OpenDispute"
	pGetDispute     = "/payments.v1.DisputeService/GetDispute"
	pListDisputes   = "/payments.v1.DisputeService/ListDisputes"
	pSubmitEvidence = "/payments.v1.DisputeService/SubmitEvidence"
	pAcceptDispute  = "/payments.v1.DisputeService/AcceptDispute"
	pWithdraw       = "/payments.v1.DisputeService/WithdrawDispute"
	pResolveDispute = "/payments.v1.DisputeService/ResolveDispute"

	pListTransactions = "/payments.v1.TransactionService/ListTransactions"
)

const password = "chaos correct horse battery staple"

// actor is a signed-in account.
type actor struct {
	id, email string

	mu    sync.Mutex
	token string
}

func (a *actor) bearer() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token
}

// world is one lane of a run: its accounts, the model of their payments,
// and its random source; the cluster, the admin, the tally and the faults
// are the run's, shared by its lanes. Lanes run their steps at the same
// time, each on merchants and customers of its own, so that a lane's
// model is the whole truth about its accounts' money.
type world struct {
	t    testing.TB
	c    *cluster
	api  *apiClient
	m    *model
	rng  *rand.Rand
	lane int

	merchants, customers []*actor
	admin                *actor

	tally *tally
	// dirty are the payments touched since the last settle.
	dirty map[string]bool
	seq   int
	// halted: a fault could not bring the platform back; the run stops.
	halted *atomic.Bool
	// orphans are keyless creates whose outcome is unknown.
	orphans []orphan
	faults  *faultGate
	// pans and cvcs are what the card data scan found.
	pans, cvcs int
}

// faultGate lets one fault run at a time, whichever lane draws it, and
// lets a settle wait for the one in progress.
type faultGate struct {
	mu sync.Mutex // held while a fault is admitted
	wg sync.WaitGroup
}

// start runs fault on a goroutine of its own once the fault in progress,
// if any, is over.
func (g *faultGate) start(fault func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.wg.Wait()
	g.wg.Go(fault)
}

// wait returns when no fault is in progress.
func (g *faultGate) wait() { g.wg.Wait() }

// tally counts what the run did, for the report: checks are comparisons
// that can fail (a violation); notes are events worth counting.
type tally struct {
	mu         sync.Mutex
	ops        map[string]int
	faults     map[string]int
	checks     map[string]int
	notes      map[string]int
	violations []string
	retries    int
	// log, if set, prints each violation as it is found.
	log func(string)
}

func newTally() *tally {
	return &tally{ops: map[string]int{}, faults: map[string]int{}, checks: map[string]int{}, notes: map[string]int{}}
}

func (t *tally) op(kind string)            { t.mu.Lock(); t.ops[kind]++; t.mu.Unlock() }
func (t *tally) fault(kind string)         { t.mu.Lock(); t.faults[kind]++; t.mu.Unlock() }
func (t *tally) check(name string)         { t.mu.Lock(); t.checks[name]++; t.mu.Unlock() }
func (t *tally) checkN(name string, n int) { t.mu.Lock(); t.checks[name] += n; t.mu.Unlock() }
func (t *tally) note(name string)          { t.noteN(name, 1) }
func (t *tally) noteN(name string, n int)  { t.mu.Lock(); t.notes[name] += n; t.mu.Unlock() }
func (t *tally) retried(n int)             { t.mu.Lock(); t.retries += n; t.mu.Unlock() }

// violate records an invariant violation (the run goes on, to report
// them all, and fails at the end).
func (t *tally) violate(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := fmt.Sprintf(format, args...)
	t.violations = append(t.violations, v)
	if t.log != nil {
		t.log("chaos: VIOLATION: " + v)
	}
}

func (t *tally) violationCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.violations)
}

// newLanes registers the run's admin, then n lanes, each with two
// merchants and three customers of its own; lane 0 draws from the seed as
// a run of one lane always did.
func newLanes(t testing.TB, c *cluster, seed uint64, n int) []*world {
	tl := newTally()
	tl.log = func(s string) { t.Log(s) }
	admin := &actor{email: "admin@chaos.test"}
	if err := c.run(strings.NewReader(password+"\n"), "admin", "create", "--email", admin.email, "--password-stdin"); err != nil {
		t.Fatalf("chaos: paymentsd admin create: %v", err)
	}
	halted, faults := new(atomic.Bool), new(faultGate)
	lanes := make([]*world, n)
	for j := range lanes {
		w := &world{t: t, c: c, api: newAPIClient(c.apiURL), m: newModel(), lane: j,
			rng:   rand.New(rand.NewPCG(seed, (seed^0x9e3779b97f4a7c15)+uint64(j))),
			admin: admin, tally: tl, dirty: map[string]bool{}, halted: halted, faults: faults}
		for i := range 2 {
			w.merchants = append(w.merchants, w.register("ROLE_MERCHANT", fmt.Sprintf("lane%s-merchant%d", letters(uint64(j)), i)))
		}
		for i := range 3 {
			w.customers = append(w.customers, w.register("ROLE_CUSTOMER", fmt.Sprintf("lane%s-customer%d", letters(uint64(j)), i)))
		}
		lanes[j] = w
	}
	if err := lanes[0].login(admin); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	return lanes
}

func (w *world) ctx() context.Context { return context.Background() }

func (w *world) register(role, name string) *actor {
	a := &actor{email: fmt.Sprintf("%s-%d@chaos.test", name, time.Now().UnixNano())}
	req := &pb.RegisterRequest{Email: a.email, Password: password, Role: pb.Role(pb.Role_value[role]), DisplayName: name}
	if role == "ROLE_MERCHANT" {
		req.BusinessName = "Shop " + name
	}
	var res pb.RegisterResponse
	if err := w.api.until(w.ctx(), func() string { return "" }, pRegister, req, &res, "", nil); err != nil {
		w.t.Fatalf("chaos: Register %s: %v", a.email, err)
	}
	a.id = res.GetAccount().GetId()
	if err := w.login(a); err != nil {
		w.t.Fatalf("chaos: %v", err)
	}
	return a
}

// login signs a in again (any goroutine may: it returns its failure).
func (w *world) login(a *actor) error {
	var res pb.LoginResponse
	if err := w.api.until(w.ctx(), func() string { return "" }, pLogin, &pb.LoginRequest{Email: a.email, Password: password}, &res, "", nil); err != nil {
		return fmt.Errorf("Login %s: %w", a.email, err)
	}
	a.mu.Lock()
	a.token = res.GetAccessToken()
	if a.id == "" {
		a.id = res.GetAccount().GetId()
	}
	a.mu.Unlock()
	return nil
}

// as calls procedure as a until a definitive answer, with key as its
// Idempotency-Key; an expired token is renewed once.
func (w *world) as(a *actor, procedure string, req, res proto.Message, key string) *callErr {
	var retries int
	err := w.api.until(w.ctx(), a.bearer, procedure, req, res, key, &retries)
	if err != nil && err.code == "unauthenticated" {
		if lerr := w.login(a); lerr != nil {
			w.tally.violate("%v", lerr)
		}
		err = w.api.until(w.ctx(), a.bearer, procedure, req, res, key, &retries)
	}
	w.tally.retried(retries)
	if err != nil && !err.definitive() {
		w.tally.violate("lost request: %s as %s (key %q) had no definitive answer within %s: %v", procedure, a.email, key, retryWindow, err)
	}
	return err
}

// key is a fresh Idempotency-Key.
func (w *world) key(what string) string {
	w.seq++
	// Letters only: runs of digits joined by dashes can pass the Luhn check
	// and be refused as card data (as they should).
	return fmt.Sprintf("chaos-%s-%s-%s-%s", what, letters(uint64(w.lane)), letters(uint64(w.seq)), letters(w.rng.Uint64()))
}

// letters writes n in base 26 with the letters a to z.
func letters(n uint64) string {
	var b []byte
	for {
		b = append(b, byte('a'+n%26))
		if n /= 26; n == 0 {
			return string(b)
		}
	}
}

func (w *world) merchantOf(p *mPayment) *actor { return w.actorByID(w.merchants, p.merchant) }
func (w *world) customerOf(p *mPayment) *actor { return w.actorByID(w.customers, p.customer) }
func (w *world) actorByID(as []*actor, id string) *actor {
	for _, a := range as {
		if a.id == id {
			return a
		}
	}
	panic("chaos: no actor " + id)
}

// observe checks a payment as the API answered it against the model:
// statuses only move forward, and what the model knows holds.
func (w *world) observe(p *mPayment, got *pb.Payment, strict bool) {
	w.tally.check("payment_forward_only")
	st := got.GetStatus().String()
	if !forward(p.seen, st) {
		w.tally.violate("payment %s moved back: %s -> %s", p.id, p.seen, st)
	}
	if rank(st) >= rank(p.seen) {
		p.seen = st
	}
	w.tally.check("refunds_and_disputes_within_received")
	if got.GetAmountRefunded()+got.GetAmountDisputed() > got.GetAmountReceived() {
		w.tally.violate("payment %s: refunded %d + disputed %d > received %d", p.id, got.GetAmountRefunded(),
			got.GetAmountDisputed(), got.GetAmountReceived())
	}
	if got.GetAmount() != p.amount || !strings.EqualFold(got.GetCurrency(), p.currency) || got.GetMerchantId() != p.merchant {
		w.tally.violate("payment %s: amount %d %s merchant %s, model %d %s %s", p.id, got.GetAmount(), got.GetCurrency(),
			got.GetMerchantId(), p.amount, p.currency, p.merchant)
	}
	if !strict {
		// A pending status is allowed on the way; a final one must be
		// the model's.
		if final(st) && final(p.status) && st != p.status {
			w.tally.violate("payment %s is %s, the model says %s (%s)", p.id, st, p.status, p.describe())
		}
		return
	}
	w.tally.check("payment_matches_model")
	refunded, disputed := p.amounts()
	if st != p.status || got.GetAmountReceived() != p.received || got.GetAmountRefunded() != refunded || got.GetAmountDisputed() != disputed {
		w.tally.violate("payment %s is %s received=%d refunded=%d disputed=%d; model: %s", p.id, st,
			got.GetAmountReceived(), got.GetAmountRefunded(), got.GetAmountDisputed(), p.describe())
	}
	if p.method.decline != "" && got.GetFailureCode() != p.method.decline {
		w.tally.violate("payment %s failed with %q, want %q", p.id, got.GetFailureCode(), p.method.decline)
	}
}

// getPayment reads a payment as its merchant.
func (w *world) getPayment(p *mPayment) (*pb.Payment, *callErr) {
	var res pb.GetPaymentResponse
	err := w.as(w.merchantOf(p), pGetPayment, &pb.GetPaymentRequest{Id: p.id}, &res, "")
	return res.GetPayment(), err
}
