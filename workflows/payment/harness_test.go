package payment

// The test harness of the payment workflow's unit tests: a Temporal test
// environment whose store and gateway mocks record every call (with the
// workflow time it was made at) and check what every request must carry,
// and whose gateway methods that a test does not mock fail the test when
// called.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/ent/ledgerentry"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
)

// t0 is when every test payment starts.
var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// testWF is the test suite's workflow id unless a test sets one.
const testWF = "default-test-workflow-id"

// The payment every test makes.
const (
	payID    = "pay_01test"
	amount   = int64(5000)
	currency = "USD"
)

func input(manual bool) Input {
	return Input{
		PaymentID: payID, MerchantID: "acct_m", CustomerID: "acct_c",
		Amount: amount, Currency: currency, PaymentMethod: "pm_card_visa", ManualCapture: manual,
		Gateway: "sandbox", CreatedAt: t0,
	}
}

// call is one recorded activity call.
type call[R any] struct {
	Req     R
	At      time.Time // workflow time of the attempt
	Local   bool
	Attempt int32
	// Canceled is true when the attempt ran after the workflow had
	// canceled the activity (the test suite still runs a retry it had
	// scheduled; a real server does not).
	Canceled bool
}

// calls records the calls of one activity.
type calls[R any] struct {
	mu   sync.Mutex
	list []call[R]
}

func (c *calls[R]) add(cl call[R]) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, cl)
	return len(c.list)
}

func (c *calls[R]) all() []call[R] {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]call[R](nil), c.list...)
}

func (c *calls[R]) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.list)
}

// live are the calls a real server would have made (not the test suite's
// retries of a canceled activity).
func (c *calls[R]) live() []call[R] {
	var out []call[R]
	for _, cl := range c.all() {
		if !cl.Canceled {
			out = append(out, cl)
		}
	}
	return out
}

// saveCall is one SavePayment call.
type saveCall struct {
	Rec     store.PaymentRecord
	Journal *store.Journal
	At      time.Time
	Err     error
}

// reconCall is one RecordReconciliation call.
type reconCall struct {
	Case     store.ReconciliationCase
	Journals []store.Journal
	At       time.Time
}

// attrChange is one upsert of the NeedsAttention search attribute.
type attrChange struct {
	On bool
	At time.Time
}

// optsCall is the options a regular activity was scheduled with.
type optsCall struct {
	Activity string
	At       time.Time
	Opts     workflow.ActivityOptions
}

type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	log *recLogger
	in  Input
	wf  string // the workflow id
	ref string // the gateway reference requests about the intent must carry

	mu         sync.Mutex
	saves      []saveCall
	refuseSave func(store.PaymentRecord, *store.Journal) error
	recons     []reconCall
	reconErr   func(n int) error
	attention  []attrChange
	statusAttr []string // PaymentStatus upserts
	scheduled  []optsCall
	mocked     map[string]bool

	create   calls[gateway.CreateRequest]
	capture  calls[gateway.CaptureRequest]
	cancel   calls[gateway.CancelRequest]
	retrieve calls[string]
	find     calls[gateway.FindRequest]
	void     calls[gateway.VoidRequest]
	refund   calls[gateway.RefundRequest]
}

// newHarness makes a test environment for in, with a store that takes
// every save unless refuseSave says otherwise.
func newHarness(t *testing.T, in Input) *harness {
	t.Helper()
	h := &harness{t: t, log: &recLogger{}, in: in, wf: testWF, mocked: map[string]bool{}}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(h.log)
	h.env = s.NewTestWorkflowEnvironment()
	h.env.SetStartTime(t0)
	h.env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&optsInterceptor{h: h}}})
	h.env.RegisterActivity(gw)
	h.env.RegisterActivity(db)
	h.env.OnActivity(db.SavePayment, mock.Anything, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, rec store.PaymentRecord, j *store.Journal) error {
			if !activity.GetInfo(ctx).IsLocalActivity {
				t.Errorf("SavePayment ran as a regular activity")
			}
			h.checkSave(rec, j)
			h.mu.Lock()
			refuse := h.refuseSave
			h.mu.Unlock()
			var err error
			if refuse != nil {
				err = refuse(rec, j)
			}
			h.mu.Lock()
			h.saves = append(h.saves, saveCall{Rec: rec, Journal: j, At: h.env.Now(), Err: err})
			h.mu.Unlock()
			return err
		})
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa, ok := args.Get(0).(temporal.SearchAttributes)
		if !ok {
			t.Errorf("search attributes of type %T", args.Get(0))
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if on, ok := sa.GetBool(AttrNeedsAttention); ok {
			h.attention = append(h.attention, attrChange{On: on, At: h.env.Now()})
		}
		if st, ok := sa.GetKeyword(AttrStatus); ok {
			h.statusAttr = append(h.statusAttr, st)
		}
	}).Return(nil)
	return h
}

// setWorkflowID runs the workflow with id (the production id is
// WorkflowID(payment id)).
func (h *harness) setWorkflowID(id string) {
	h.wf = id
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
}

// checkSave asserts what every save must carry.
func (h *harness) checkSave(rec store.PaymentRecord, j *store.Journal) {
	t := h.t
	if rec.ID != h.in.PaymentID || rec.Amount != h.in.Amount || rec.Currency != h.in.Currency || rec.Gateway != h.in.Gateway ||
		rec.MerchantID != h.in.MerchantID || rec.WorkflowID != h.wf {
		t.Errorf("save of another payment: %+v", rec)
	}
	if rec.AmountReceived < 0 || rec.AmountReceived > rec.Amount || rec.AmountCapturable < 0 || rec.AmountCapturable > rec.Amount {
		t.Errorf("save with impossible amounts: %+v", rec)
	}
	if rec.NeedsAttention != (rec.AttentionReason != "") {
		t.Errorf("NeedsAttention %v with reason %q", rec.NeedsAttention, rec.AttentionReason)
	}
	if j == nil {
		return
	}
	if rec.Status != entpayment.StatusSucceeded {
		t.Errorf("journal %s saved with a %s payment", j.ID, rec.Status)
	}
	if j.PaymentID != rec.ID || j.Currency != rec.Currency || j.ID != rec.ID+"/capture" {
		t.Errorf("journal %+v for payment %s", j, rec.ID)
	}
	checkBalanced(t, *j, rec.AmountReceived)
}

// checkBalanced asserts that j's debits equal its credits and that it
// moves exactly amount through every account it touches.
func checkBalanced(t *testing.T, j store.Journal, amount int64) {
	t.Helper()
	var d, c int64
	for _, l := range j.Lines {
		if l.Amount != amount {
			t.Errorf("journal %s: line %+v, want amount %d", j.ID, l, amount)
		}
		switch l.Direction {
		case ledgerentry.DirectionDebit:
			d += l.Amount
		case ledgerentry.DirectionCredit:
			c += l.Amount
		default:
			t.Errorf("journal %s: line direction %q", j.ID, l.Direction)
		}
	}
	if d != c || d == 0 {
		t.Errorf("journal %s: debits %d, credits %d", j.ID, d, c)
	}
}

func (h *harness) allSaves() []saveCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]saveCall(nil), h.saves...)
}

// accepted are the saves the store took.
func (h *harness) accepted() []saveCall {
	var out []saveCall
	for _, s := range h.allSaves() {
		if s.Err == nil {
			out = append(out, s)
		}
	}
	return out
}

// last is the last state the store took.
func (h *harness) last() store.PaymentRecord {
	a := h.accepted()
	if len(a) == 0 {
		h.t.Fatal("nothing was saved")
	}
	return a[len(a)-1].Rec
}

// journals are the journals the store took.
func (h *harness) journals() []store.Journal {
	var out []store.Journal
	for _, s := range h.accepted() {
		if s.Journal != nil {
			out = append(out, *s.Journal)
		}
	}
	return out
}

// checkVersions asserts that the first accepted save has version 1, each
// next one exactly the previous + 1, and that a refused save carried the
// version after the last accepted one.
func (h *harness) checkVersions() {
	h.t.Helper()
	var v int64
	for i, s := range h.allSaves() {
		if s.Rec.Version != v+1 {
			h.t.Errorf("save %d (%s, err %v) has version %d, want %d", i, s.Rec.Status, s.Err, s.Rec.Version, v+1)
		}
		if s.Err == nil {
			v = s.Rec.Version
		}
	}
}

// statuses are the statuses of the accepted saves, in order.
func (h *harness) statuses() []entpayment.Status {
	var out []entpayment.Status
	for _, s := range h.accepted() {
		out = append(out, s.Rec.Status)
	}
	return out
}

func (h *harness) allRecons() []reconCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]reconCall(nil), h.recons...)
}

func (h *harness) attentionChanges() []attrChange {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]attrChange(nil), h.attention...)
}

// attentionNow is the NeedsAttention search attribute as last set.
func (h *harness) attentionNow() bool {
	a := h.attentionChanges()
	return len(a) > 0 && a[len(a)-1].On
}

func (h *harness) scheduledOf(activity string) []optsCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []optsCall
	for _, o := range h.scheduled {
		if o.Activity == activity {
			out = append(out, o)
		}
	}
	return out
}

// query returns the workflow's live state.
func (h *harness) query() store.PaymentRecord {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryState)
	if err != nil {
		h.t.Errorf("query: %v", err)
		return store.PaymentRecord{}
	}
	var rec store.PaymentRecord
	if err := v.Get(&rec); err != nil {
		h.t.Error(err)
	}
	return rec
}

// at runs f at workflow time t0+d.
func (h *harness) at(d time.Duration, f func()) {
	h.env.RegisterDelayedCallback(f, d)
}

// signal delivers ev at t0+d.
func (h *harness) signal(d time.Duration, ev GatewayEvent) {
	h.at(d, func() { h.env.SignalWorkflow(SignalGatewayEvent, ev) })
}

// updateResult is the outcome of one update.
type updateResult struct {
	rec      store.PaymentRecord
	err      error
	rejected error
	done     bool
	at       time.Time
}

// update sends an update at t0+d.
func (h *harness) update(d time.Duration, name string, arg any) *updateResult {
	out := &updateResult{}
	h.at(d, func() { h.updateNow(name, arg, out) })
	return out
}

var updateSeq int

func (h *harness) updateNow(name string, arg any, out *updateResult) {
	updateSeq++
	var args []any
	if arg != nil {
		args = append(args, arg)
	}
	h.env.UpdateWorkflow(name, fmt.Sprintf("%s-%d", name, updateSeq), &testsuite.TestUpdateCallback{
		OnReject: func(err error) { out.rejected, out.done, out.at = err, true, h.env.Now() },
		OnAccept: func() {},
		OnComplete: func(v any, err error) {
			out.err, out.done, out.at = err, true, h.env.Now()
			if rec, ok := v.(store.PaymentRecord); ok {
				out.rec = rec
			}
		},
	}, args...)
}

// run starts the workflow after making every gateway method the test did
// not mock fail the test when called.
func (h *harness) run() {
	h.forbidUnmocked()
	h.env.ExecuteWorkflow(Workflow, h.in)
}

// forbidUnmocked makes every gateway (and reconciliation) activity that
// the test did not mock fail the test, and end the workflow, when called;
// and ends a workflow still running after 30 days (no test payment lives
// that long).
func (h *harness) forbidUnmocked() {
	h.at(30*24*time.Hour, func() {
		if !h.env.IsWorkflowCompleted() {
			h.t.Errorf("the workflow still runs after 30 days")
			h.env.CancelWorkflow()
		}
	})
	h.forbid()
}

// result asserts the workflow completed without an error and returns its
// result, after the checks every test makes: versions, journals.
func (h *harness) result() store.PaymentRecord {
	h.t.Helper()
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
	var rec store.PaymentRecord
	if err := h.env.GetWorkflowResult(&rec); err != nil {
		h.t.Fatal(err)
	}
	h.checkVersions()
	h.checkJournalIDs()
	if last := h.last(); last.Version != rec.Version || last.Status != rec.Status || last.NeedsAttention != rec.NeedsAttention {
		h.t.Errorf("the workflow ended with %s v%d (attention %v), the store holds %s v%d (attention %v)",
			rec.Status, rec.Version, rec.NeedsAttention, last.Status, last.Version, last.NeedsAttention)
	}
	if h.attentionNow() {
		h.t.Errorf("the workflow ended with NeedsAttention=true")
	}
	return rec
}

// checkJournalIDs asserts each journal was posted once.
func (h *harness) checkJournalIDs() {
	seen := map[string]bool{}
	for _, j := range h.journals() {
		if seen[j.ID] {
			h.t.Errorf("journal %s posted twice", j.ID)
		}
		seen[j.ID] = true
	}
}

// key is the idempotency key of attempt n of step.
func (h *harness) key(step string, n int) string {
	return fmt.Sprintf("%s/%s/%d", h.wf, step, n)
}

// keys are the idempotency keys of a list of calls.
func keysOf[R any](cs []call[R], key func(R) string) []string {
	var out []string
	for _, c := range cs {
		out = append(out, key(c.Req))
	}
	return out
}

func captureKey(r gateway.CaptureRequest) string { return r.IdempotencyKey }
func cancelKey(r gateway.CancelRequest) string   { return r.IdempotencyKey }
func voidKey(r gateway.VoidRequest) string       { return r.IdempotencyKey }

// distinctKeys is keys without consecutive repeats (the retries of one
// activity).
func distinctKeys(keys []string) []string {
	var out []string
	for _, k := range keys {
		if len(out) == 0 || out[len(out)-1] != k {
			out = append(out, k)
		}
	}
	return out
}

func callOf[R any](ctx context.Context, h *harness, req R) call[R] {
	info := activity.GetInfo(ctx)
	return call[R]{Req: req, At: h.env.Now(), Local: info.IsLocalActivity, Attempt: info.Attempt, Canceled: ctx.Err() != nil}
}

// mockGateway mocks the gateway activity act, marked as name in h.mocked:
// problem says what is wrong with a request ("" when nothing), calls
// records every call, and fn answers call n (1-based).
func mockGateway[Req, Res any](h *harness, name string, act any, calls *calls[Req], fn func(n int, c call[Req]) (Res, error), problem func(Req) string) {
	h.mocked[name] = true
	h.env.OnActivity(act, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, r Req) (Res, error) {
			if p := problem(r); p != "" {
				h.t.Error(p)
			}
			c := callOf(ctx, h, r)
			return fn(calls.add(c), c)
		})
}

// onCreate mocks CreatePayment; fn answers call n (1-based) of c.
func (h *harness) onCreate(fn func(n int, c call[gateway.CreateRequest]) (gateway.Result, error)) {
	mockGateway(h, "CreatePayment", gw.CreatePayment, &h.create, fn, func(r gateway.CreateRequest) string {
		if in := h.in; r.Gateway != in.Gateway || r.PaymentID != in.PaymentID || r.Amount != in.Amount || r.Currency != in.Currency ||
			r.PaymentMethod != in.PaymentMethod || r.ManualCapture != in.ManualCapture || r.ReturnURL != in.ReturnURL {
			return fmt.Sprintf("create request %+v for input %+v", r, in)
		}
		return ""
	})
}

// onCapture mocks Capture.
func (h *harness) onCapture(fn func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error)) {
	mockGateway(h, "Capture", gw.Capture, &h.capture, fn, func(r gateway.CaptureRequest) string {
		if r.Gateway != h.in.Gateway || r.Currency != h.in.Currency || r.Reference != h.ref || r.Amount <= 0 {
			return fmt.Sprintf("capture request %+v", r)
		}
		return ""
	})
}

// onCancel mocks Cancel.
func (h *harness) onCancel(fn func(n int, c call[gateway.CancelRequest]) (gateway.Result, error)) {
	mockGateway(h, "Cancel", gw.Cancel, &h.cancel, fn, func(r gateway.CancelRequest) string {
		if r.Gateway != h.in.Gateway || r.Currency != h.in.Currency || r.Reference != h.ref || r.Reason == "" {
			return fmt.Sprintf("cancel request %+v", r)
		}
		return ""
	})
}

// onRetrieve mocks Retrieve.
func (h *harness) onRetrieve(fn func(n int, c call[string]) (gateway.Result, error)) {
	h.mocked["Retrieve"] = true
	h.env.OnActivity(gw.RetrieveIntent, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, r gateway.FindRequest) (gateway.Result, error) {
			if r.Reference != h.ref || r.Gateway != h.in.Gateway || r.PaymentID != h.in.PaymentID || r.Currency != h.in.Currency {
				h.t.Errorf("retrieve %+v, want reference %q of %s at %s", r, h.ref, h.in.PaymentID, h.in.Gateway)
			}
			c := callOf(ctx, h, r.Reference)
			return fn(h.retrieve.add(c), c)
		})
}

// onFind mocks Find.
func (h *harness) onFind(fn func(n int, c call[gateway.FindRequest]) (gateway.Found, error)) {
	mockGateway(h, "Find", gw.Find, &h.find, fn, func(r gateway.FindRequest) string {
		if r.Gateway != h.in.Gateway || r.PaymentID != h.in.PaymentID || r.Currency != h.in.Currency {
			return fmt.Sprintf("find request %+v", r)
		}
		return ""
	})
}

// onVoid mocks Void.
func (h *harness) onVoid(fn func(n int, c call[gateway.VoidRequest]) (gateway.Found, error)) {
	mockGateway(h, "Void", gw.Void, &h.void, fn, func(r gateway.VoidRequest) string {
		if r.Gateway != h.in.Gateway || r.PaymentID != h.in.PaymentID || r.Currency != h.in.Currency || r.Reason == "" {
			return fmt.Sprintf("void request %+v", r)
		}
		return ""
	})
}

// onRefund mocks Refund.
func (h *harness) onRefund(fn func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error)) {
	mockGateway(h, "Refund", gw.Refund, &h.refund, fn, func(r gateway.RefundRequest) string {
		if r.Gateway != h.in.Gateway || r.PaymentID != h.in.PaymentID || r.Currency != h.in.Currency || r.Amount <= 0 || r.Reference == "" {
			return fmt.Sprintf("refund request %+v", r)
		}
		return ""
	})
}

// onRecordReconciliation records reconciliation cases; err, if set,
// answers call n.
func (h *harness) onRecordReconciliation(err func(n int) error) {
	h.mocked["RecordReconciliation"] = true
	h.reconErr = err
	h.env.OnActivity(db.RecordReconciliation, mock.Anything, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, c store.ReconciliationCase, js []store.Journal) error {
			if !activity.GetInfo(ctx).IsLocalActivity {
				h.t.Errorf("RecordReconciliation ran as a regular activity")
			}
			h.mu.Lock()
			h.recons = append(h.recons, reconCall{Case: c, Journals: js, At: h.env.Now()})
			n := len(h.recons)
			h.mu.Unlock()
			if h.reconErr != nil {
				return h.reconErr(n)
			}
			return nil
		})
}

var errUnexpected = temporal.NewNonRetryableApplicationError("unexpected call", "Unexpected", nil)

func (h *harness) forbid() {
	t := h.t
	if !h.mocked["CreatePayment"] {
		h.env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(func(_ context.Context, r gateway.CreateRequest) (gateway.Result, error) {
			t.Errorf("unexpected CreatePayment %+v", r)
			h.env.CancelWorkflow()
			return gateway.Result{}, errUnexpected
		})
	}
	if !h.mocked["Capture"] {
		h.env.OnActivity(gw.Capture, mock.Anything, mock.Anything).Return(func(_ context.Context, r gateway.CaptureRequest) (gateway.Result, error) {
			t.Errorf("unexpected Capture %+v", r)
			h.env.CancelWorkflow()
			return gateway.Result{}, errUnexpected
		})
	}
	if !h.mocked["Cancel"] {
		h.env.OnActivity(gw.Cancel, mock.Anything, mock.Anything).Return(func(_ context.Context, r gateway.CancelRequest) (gateway.Result, error) {
			t.Errorf("unexpected Cancel %+v", r)
			h.env.CancelWorkflow()
			return gateway.Result{}, errUnexpected
		})
	}
	if !h.mocked["Retrieve"] {
		h.env.OnActivity(gw.RetrieveIntent, mock.Anything, mock.Anything).Return(func(_ context.Context, r gateway.FindRequest) (gateway.Result, error) {
			t.Errorf("unexpected Retrieve %+v", r)
			h.env.CancelWorkflow()
			return gateway.Result{}, errUnexpected
		})
	}
	if !h.mocked["Find"] {
		h.env.OnActivity(gw.Find, mock.Anything, mock.Anything).Return(func(_ context.Context, r gateway.FindRequest) (gateway.Found, error) {
			t.Errorf("unexpected Find %+v", r)
			h.env.CancelWorkflow()
			return gateway.Found{}, errUnexpected
		})
	}
	if !h.mocked["Void"] {
		h.env.OnActivity(gw.Void, mock.Anything, mock.Anything).Return(func(_ context.Context, r gateway.VoidRequest) (gateway.Found, error) {
			t.Errorf("unexpected Void %+v", r)
			h.env.CancelWorkflow()
			return gateway.Found{}, errUnexpected
		})
	}
	if !h.mocked["Refund"] {
		h.env.OnActivity(gw.Refund, mock.Anything, mock.Anything).Return(func(_ context.Context, r gateway.RefundRequest) (gateway.RefundResult, error) {
			t.Errorf("unexpected Refund %+v", r)
			h.env.CancelWorkflow()
			return gateway.RefundResult{}, errUnexpected
		})
	}
	if !h.mocked["RecordReconciliation"] {
		h.env.OnActivity(db.RecordReconciliation, mock.Anything, mock.Anything, mock.Anything).Return(func(_ context.Context, c store.ReconciliationCase, _ []store.Journal) error {
			t.Errorf("unexpected RecordReconciliation %+v", c)
			h.env.CancelWorkflow()
			return errUnexpected
		})
	}
}

// Gateway answers.

// unavailable is what an unanswered gateway call returns (retried).
func unavailable() error {
	return temporal.NewApplicationError("503 from gateway", "GatewayUnavailable")
}

// invalidGatewayError is a refusal for good, with the gateway's code.
func invalidGatewayError(code string) error {
	return temporal.NewApplicationErrorWithOptions("refused", activities.ErrTypeGatewayInvalid,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.GatewayErrorDetails{Code: code, Message: "refused"}}})
}

// storeRefusal is a save the store refuses for good.
func storeRefusal() error {
	return temporal.NewNonRetryableApplicationError("journal posted before with other lines", activities.ErrTypeStoreInvalid, nil)
}

func succeeded(ref string, received int64) gateway.Result {
	return gateway.Result{Reference: ref, Status: gateway.StatusSucceeded, Amount: amount, AmountReceived: received,
		Method: gateway.MethodDetails{Type: "card", Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030}}
}

func authorized(ref string) gateway.Result {
	return gateway.Result{Reference: ref, Status: gateway.StatusRequiresCapture, Amount: amount, AmountCapturable: amount}
}

func requiresAction(ref string) gateway.Result {
	return gateway.Result{Reference: ref, Status: gateway.StatusRequiresAction, Amount: amount, RedirectURL: "https://gw.test/3ds/" + ref}
}

// errType is the type of an application error, or "".
func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// recLogger records what the workflow logs.
type recLogger struct {
	mu      sync.Mutex
	entries []logEntry
}

type logEntry struct {
	Level, Msg string
	KV         []any
}

func (l *recLogger) add(level, msg string, kv []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, logEntry{level, msg, kv})
}

func (l *recLogger) Debug(string, ...any)        {}
func (l *recLogger) Info(msg string, kv ...any)  { l.add("INFO", msg, kv) }
func (l *recLogger) Warn(msg string, kv ...any)  { l.add("WARN", msg, kv) }
func (l *recLogger) Error(msg string, kv ...any) { l.add("ERROR", msg, kv) }

// find returns the entries at level whose message contains s.
func (l *recLogger) find(level, s string) []logEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logEntry
	for _, e := range l.entries {
		if e.Level == level && strings.Contains(e.Msg, s) {
			out = append(out, e)
		}
	}
	return out
}

// kv returns the value logged under key.
func (e logEntry) kv(key string) any {
	for i := 0; i+1 < len(e.KV); i += 2 {
		if e.KV[i] == key {
			return e.KV[i+1]
		}
	}
	return nil
}

// optsInterceptor records the options every regular activity is scheduled
// with (the test suite does not pass the retry policy to activities).
type optsInterceptor struct {
	interceptor.WorkerInterceptorBase
	h *harness
}

func (i *optsInterceptor) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &optsInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, h: i.h}
}

type optsInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	h *harness
}

func (w *optsInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return w.Next.Init(&optsOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}, h: w.h})
}

type optsOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	h *harness
}

func (o *optsOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	o.h.mu.Lock()
	o.h.scheduled = append(o.h.scheduled, optsCall{Activity: activityType, At: workflow.Now(ctx), Opts: workflow.GetActivityOptions(ctx)})
	o.h.mu.Unlock()
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}
