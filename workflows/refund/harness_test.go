package refund

// The test harness of the refund workflow's unit tests: a Temporal test
// environment whose store and gateway mocks record every call (with the
// workflow time it was made at and whether it ran as a local activity) and
// check what every request must carry. A gateway call or a LoadRefund that
// a test did not mock fails the test.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
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
	entrefund "github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
)

// t0 is when every test refund starts.
var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// The refund every test makes: the whole of what is left of payment
// payID, which the store (not the input) knows is 2500 USD.
const (
	refundID   = "re_01test"
	payID      = "pay_01test"
	merchantID = "acct_m"
	customerID = "acct_c"
	amount     = int64(2500)
	currency   = "USD"
	gwName     = "sandbox"
	payRef     = "pi_paid" // the payment's intent at the gateway
	gwRef      = "re_gw_1" // the gateway's id of the refund
)

// wfID is the refund's workflow id, as the API starts it.
var wfID = WorkflowID(refundID)

// key is the idempotency key of the refund's one gateway call.
var key = wfID + "/refund/1"

// input is a refund of everything still refundable (Amount 0, Currency
// ""): the amount and currency the gateway is asked for can only come from
// the store's answer.
func input() Input {
	return Input{
		RefundID: refundID, PaymentID: payID, MerchantID: merchantID,
		Reason: "requested_by_customer", Metadata: map[string]string{"order": "o_1"}, CreatedAt: t0,
	}
}

// createdOf is the refund the store creates for req: pending at version 1,
// with the payment's amount left, currency, customer and gateway.
func createdOf(req store.RefundRecord) store.RefundRecord {
	reason := req.Reason
	if reason == "" {
		reason = entrefund.ReasonUnspecified
	}
	return store.RefundRecord{
		ID: req.ID, PaymentID: req.PaymentID, MerchantID: req.MerchantID, CustomerID: customerID,
		Amount: amount, Currency: currency, Status: entrefund.StatusPending, Reason: reason,
		Gateway: gwName, WorkflowID: req.WorkflowID, Metadata: req.Metadata,
		Version: 1, CreatedAt: req.CreatedAt, UpdatedAt: req.CreatedAt,
	}
}

// call is one recorded activity call.
type call[R any] struct {
	Req     R
	At      time.Time // workflow time of the attempt
	Local   bool
	Attempt int32
}

// saveCall is one SaveRefund call.
type saveCall struct {
	Rec     store.RefundRecord
	Journal *store.Journal
	At      time.Time
	Err     error
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

	mu sync.Mutex
	// createErr, when set, answers CreateRefund call n instead of the
	// store's created refund.
	createErr  func(n int) error
	creates    []call[store.RefundRecord]
	loaded     *store.RefundRecord // what LoadRefund answers; nil: not expected
	loads      []call[string]
	saves      []saveCall
	refuseSave func(n int, rec store.RefundRecord) error
	refunds    []call[gateway.RefundRequest]
	refundFn   func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error)
	statusAttr []string // RefundStatus upserts
	attention  []attrChange
	scheduled  []optsCall
	// gwReason is the reason every gateway call must carry.
	gwReason string
	// running: the test expects the workflow still to run when the
	// guard at maxLife fires (it then cancels it without failing).
	running bool
}

// maxLife is how long a test refund may run before the harness ends it.
const maxLife = 60 * 24 * time.Hour

// newHarness makes a test environment for in, started as the API starts
// it (workflow id WorkflowID(in.RefundID)), whose store creates the refund
// and takes every save unless the test says otherwise, and whose gateway
// fails the test when called unless the test mocks it.
func newHarness(t *testing.T, in Input) *harness {
	t.Helper()
	h := &harness{t: t, log: &recLogger{}, in: in, gwReason: "requested_by_customer"}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(h.log)
	h.env = s.NewTestWorkflowEnvironment()
	h.env.SetStartTime(t0)
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: WorkflowID(in.RefundID)})
	h.env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&optsInterceptor{h: h}}})
	h.env.RegisterActivity(gw)
	h.env.RegisterActivity(db)

	h.env.OnActivity(db.CreateRefund, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, req store.RefundRecord) (activities.CreatedRefund, error) {
			c := callOf(ctx, h, req)
			if !c.Local {
				t.Errorf("CreateRefund ran as a regular activity")
			}
			h.mu.Lock()
			h.creates = append(h.creates, c)
			n, refuse := len(h.creates), h.createErr
			h.mu.Unlock()
			if refuse != nil {
				if err := refuse(n); err != nil {
					return activities.CreatedRefund{}, err
				}
			}
			return activities.CreatedRefund{Refund: createdOf(req), PaymentReference: payRef}, nil
		})
	h.env.OnActivity(db.LoadRefund, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, id string) (store.RefundRecord, error) {
			c := callOf(ctx, h, id)
			if !c.Local {
				t.Errorf("LoadRefund ran as a regular activity")
			}
			if id != h.in.RefundID {
				t.Errorf("LoadRefund(%q), want %q", id, h.in.RefundID)
			}
			h.mu.Lock()
			h.loads = append(h.loads, c)
			loaded := h.loaded
			h.mu.Unlock()
			if loaded == nil {
				t.Errorf("unexpected LoadRefund(%q)", id)
				return store.RefundRecord{}, errUnexpected
			}
			return *loaded, nil
		})
	h.env.OnActivity(db.SaveRefund, mock.Anything, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, rec store.RefundRecord, j *store.Journal) error {
			if !activity.GetInfo(ctx).IsLocalActivity {
				t.Errorf("SaveRefund ran as a regular activity")
			}
			h.checkSave(rec, j)
			h.mu.Lock()
			n, refuse := len(h.saves)+1, h.refuseSave
			h.mu.Unlock()
			var err error
			if refuse != nil {
				err = refuse(n, rec)
			}
			h.mu.Lock()
			h.saves = append(h.saves, saveCall{Rec: rec, Journal: j, At: h.env.Now(), Err: err})
			h.mu.Unlock()
			return err
		})
	h.env.OnActivity(gw.Refund, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, r gateway.RefundRequest) (gateway.RefundResult, error) {
			c := callOf(ctx, h, r)
			h.mu.Lock()
			h.refunds = append(h.refunds, c)
			n, fn := len(h.refunds), h.refundFn
			h.mu.Unlock()
			if fn == nil {
				t.Errorf("unexpected gateway Refund %+v", r)
				return gateway.RefundResult{}, errUnexpected
			}
			h.checkRefundRequest(r)
			return fn(n, c)
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

// onRefund mocks the gateway's Refund: fn answers call n (1-based).
func (h *harness) onRefund(fn func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refundFn = fn
}

// checkRefundRequest asserts what every gateway call of the test refund
// carries: the one key, and the amount, currency, gateway and payment
// reference of the created refund.
func (h *harness) checkRefundRequest(r gateway.RefundRequest) {
	want := gateway.RefundRequest{
		Gateway: gwName, IdempotencyKey: key, PaymentID: payID, Reference: payRef,
		Amount: amount, Currency: currency, Reason: h.gwReason,
	}
	if r != want {
		h.t.Errorf("gateway refund request\n got %+v\nwant %+v", r, want)
	}
}

// checkSave asserts what every save must carry.
func (h *harness) checkSave(rec store.RefundRecord, j *store.Journal) {
	t := h.t
	if rec.ID != refundID || rec.PaymentID != payID || rec.MerchantID != merchantID || rec.CustomerID != customerID ||
		rec.Amount != amount || rec.Currency != currency || rec.Gateway != gwName || rec.WorkflowID != wfID {
		t.Errorf("save of another refund: %+v", rec)
	}
	if rec.NeedsAttention != (rec.AttentionReason != "") {
		t.Errorf("save with NeedsAttention %v and reason %q", rec.NeedsAttention, rec.AttentionReason)
	}
	if !rec.UpdatedAt.Equal(h.env.Now()) {
		t.Errorf("save at %v has UpdatedAt %v", h.env.Now(), rec.UpdatedAt)
	}
	if j != nil {
		checkBalanced(t, *j, rec.Amount)
	}
}

// checkBalanced asserts that j's debits equal its credits and that it
// moves exactly amount on every line.
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

func (h *harness) allCreates() []call[store.RefundRecord] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[store.RefundRecord](nil), h.creates...)
}

func (h *harness) allLoads() []call[string] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[string](nil), h.loads...)
}

func (h *harness) allRefunds() []call[gateway.RefundRequest] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[gateway.RefundRequest](nil), h.refunds...)
}

func (h *harness) statusAttrs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.statusAttr...)
}

func (h *harness) attentionChanges() []attrChange {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]attrChange(nil), h.attention...)
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

// journals are the journals of the saves the store took.
func (h *harness) journals() []store.Journal {
	var out []store.Journal
	for _, s := range h.allSaves() {
		if s.Err == nil && s.Journal != nil {
			out = append(out, *s.Journal)
		}
	}
	return out
}

// statuses are the statuses of the saves the store took, in order.
func (h *harness) statuses() []entrefund.Status {
	var out []entrefund.Status
	for _, s := range h.allSaves() {
		if s.Err == nil {
			out = append(out, s.Rec.Status)
		}
	}
	return out
}

// checkVersions asserts that the saves follow the version first-1 (the
// created or loaded refund's) one by one; a refused save carries the
// version after the last taken one.
func (h *harness) checkVersions(first int64) {
	h.t.Helper()
	v := first - 1
	for i, s := range h.allSaves() {
		if s.Rec.Version != v+1 {
			h.t.Errorf("save %d (%s, err %v) has version %d, want %d", i, s.Rec.Status, s.Err, s.Rec.Version, v+1)
		}
		if s.Err == nil {
			v = s.Rec.Version
		}
	}
}

// query returns the workflow's live state.
func (h *harness) query() store.RefundRecord {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryState)
	if err != nil {
		h.t.Errorf("query: %v", err)
		return store.RefundRecord{}
	}
	var rec store.RefundRecord
	if err := v.Get(&rec); err != nil {
		h.t.Error(err)
	}
	return rec
}

// at runs f at workflow time t0+d (d 0: before the first workflow task,
// as with SignalWithStart).
func (h *harness) at(d time.Duration, f func()) {
	h.env.RegisterDelayedCallback(f, d)
}

// signal delivers evs, in order, at t0+d.
func (h *harness) signal(d time.Duration, evs ...GatewayEvent) {
	h.at(d, func() {
		for _, ev := range evs {
			h.env.SignalWorkflow(SignalGatewayEvent, ev)
		}
	})
}

// updateResult is the outcome of one update.
type updateResult struct {
	rec      store.RefundRecord
	err      error
	rejected error
	done     bool
	at       time.Time
}

// update sends an update at t0+d.
func (h *harness) update(d time.Duration, name string) *updateResult {
	out := &updateResult{}
	h.at(d, func() { h.updateNow(name, out) })
	return out
}

var updateSeq int

func (h *harness) updateNow(name string, out *updateResult) {
	updateSeq++
	h.env.UpdateWorkflow(name, fmt.Sprintf("%s-%d", name, updateSeq), &testsuite.TestUpdateCallback{
		OnReject: func(err error) { out.rejected, out.done, out.at = err, true, h.env.Now() },
		OnAccept: func() {},
		OnComplete: func(v any, err error) {
			out.err, out.done, out.at = err, true, h.env.Now()
			if rec, ok := v.(store.RefundRecord); ok {
				out.rec = rec
			}
		},
	})
}

// run starts the workflow; one still running after maxLife is canceled,
// and fails the test unless h.running says the test expects it.
func (h *harness) run() {
	h.at(maxLife, func() {
		if !h.env.IsWorkflowCompleted() {
			if !h.running {
				h.t.Errorf("the workflow still runs after %v", maxLife)
			}
			h.env.CancelWorkflow()
		}
	})
	h.env.ExecuteWorkflow(Workflow, h.in)
}

// result asserts the workflow completed without an error and returns its
// result, after the checks every test makes: versions (from first), one
// post of each journal, the result is what the store holds.
func (h *harness) result(first int64) store.RefundRecord {
	h.t.Helper()
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
	var rec store.RefundRecord
	if err := h.env.GetWorkflowResult(&rec); err != nil {
		h.t.Fatal(err)
	}
	h.checkVersions(first)
	seen := map[string]bool{}
	for _, j := range h.journals() {
		if seen[j.ID] {
			h.t.Errorf("journal %s posted twice", j.ID)
		}
		seen[j.ID] = true
	}
	var last *store.RefundRecord
	for _, s := range h.allSaves() {
		if s.Err == nil {
			last = &s.Rec
		}
	}
	if last != nil && (last.Version != rec.Version || last.Status != rec.Status || last.NeedsAttention != rec.NeedsAttention) {
		h.t.Errorf("the workflow ended with %s v%d (attention %v), the store holds %s v%d (attention %v)",
			rec.Status, rec.Version, rec.NeedsAttention, last.Status, last.Version, last.NeedsAttention)
	}
	return rec
}

func callOf[R any](ctx context.Context, h *harness, req R) call[R] {
	info := activity.GetInfo(ctx)
	return call[R]{Req: req, At: h.env.Now(), Local: info.IsLocalActivity, Attempt: info.Attempt}
}

var errUnexpected = temporal.NewNonRetryableApplicationError("unexpected call", "Unexpected", nil)

// Gateway answers.

// unavailable is what an unanswered gateway call returns (retried).
func unavailable() error {
	return temporal.NewApplicationError("503 from gateway", "GatewayUnavailable")
}

// invalidGatewayError is a refusal for good, with the gateway's code ("":
// without details).
func invalidGatewayError(code string) error {
	opts := temporal.ApplicationErrorOptions{NonRetryable: true}
	if code != "" {
		opts.Details = []any{activities.GatewayErrorDetails{Code: code, Message: "refused"}}
	}
	return temporal.NewApplicationErrorWithOptions("refused", activities.ErrTypeGatewayInvalid, opts)
}

func answer(st gateway.RefundStatus) gateway.RefundResult {
	return gateway.RefundResult{Reference: gwRef, Status: st, Amount: amount}
}

// errType is the type of an application error, or "".
func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// errMessage is the message of an application error, or "".
func errMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
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

// withKV returns the entries that logged value under key.
func withKV(es []logEntry, key string, value any) []logEntry {
	var out []logEntry
	for _, e := range es {
		if e.kv(key) == value {
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
// with (the test suite's activities do not see the retry policy).
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

// ExecuteActivity records the options, and gives a retry policy without
// MaximumAttempts the server's meaning (unlimited: attempts until the
// ScheduleToCloseTimeout runs out) instead of the test suite's (10
// attempts), so a retry window is tried out in full.
func (o *optsOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	opts := workflow.GetActivityOptions(ctx)
	o.h.mu.Lock()
	o.h.scheduled = append(o.h.scheduled, optsCall{Activity: activityType, At: workflow.Now(ctx), Opts: opts})
	o.h.mu.Unlock()
	if p := opts.RetryPolicy; p != nil && p.MaximumAttempts == 0 {
		unlimited := *p
		unlimited.MaximumAttempts = math.MaxInt32
		ctx = workflow.WithRetryPolicy(ctx, unlimited)
	}
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

// sameChanges reports whether a and b are the same upserts at the same
// times.
func sameChanges(a, b []attrChange) bool {
	return slices.EqualFunc(a, b, func(x, y attrChange) bool { return x.On == y.On && x.At.Equal(y.At) })
}
