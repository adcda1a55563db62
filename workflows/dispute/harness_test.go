package dispute

// The test harness of the dispute workflow's unit tests: a Temporal test
// environment (time skipping) whose store and gateway mocks record every
// call with the workflow time it was made at, and check what every save
// must carry: the next version, the fields that never change, a timeline
// that only grows, the settlement moves the store allows, a balanced
// journal. A gateway call a test did not mock fails the test.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/payments-platform/payments/activities"
	entdispute "github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
)

// t0 is when every test dispute opens (and its workflow starts).
var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// The dispute every test opens, of payment payID. The store (not the
// input, which asks for "everything", Amount 0) knows what is left of the
// payment to dispute: left.
const (
	disputeID  = "dp_01test"
	payID      = "pay_01test"
	merchantID = "acct_m"
	customerID = "acct_c"
	adminID    = "acct_admin"
	strangerID = "acct_x"
	left       = int64(1800) // what is left of the 2500 USD payment
	currency   = "USD"
	gwName     = "sandbox"
	payRef     = "pi_paid"   // the payment's intent at the gateway
	gwRefundID = "re_gw_1"   // the gateway's id of the dispute's refund
	gwDispute  = "dp_gw_1"   // the gateway's id of a network dispute
	netAmount  = int64(2500) // what the network disputes
)

// wfID is the dispute's workflow id, as the API starts it.
var wfID = WorkflowID(disputeID)

// refundKey is the idempotency key of the dispute's one refund.
var refundKey = wfID + "/refund/1"

// due is the response deadline of a dispute opened on the platform at t0.
var due = t0.Add(DefaultResponseWindow)

// The actors of the tests.
var (
	customer = Actor{AccountID: customerID}
	merchant = Actor{AccountID: merchantID}
	admin    = Actor{AccountID: adminID, Admin: true}
	stranger = Actor{AccountID: strangerID}
)

// customerInput is a dispute the customer opens of everything left.
func customerInput() Input {
	return Input{
		DisputeID: disputeID, PaymentID: payID, MerchantID: merchantID,
		OpenedBy: "customer", OpenerID: customerID, Reason: "product_not_received",
		Description: "the parcel never came", ResponseDueBy: due, CreatedAt: t0,
	}
}

// merchantInput is a dispute the merchant opens (the customer responds).
func merchantInput() Input {
	in := customerInput()
	in.OpenedBy, in.OpenerID, in.Reason, in.Description = "merchant", merchantID, "general", "the customer keeps the goods and the money"
	return in
}

// networkDue is the gateway's evidence deadline of a network dispute.
var networkDue = t0.Add(10 * 24 * time.Hour)

// networkInput is a dispute the card network opens through the gateway's
// webhook, of netAmount.
func networkInput() Input {
	return Input{
		DisputeID: disputeID, PaymentID: payID, MerchantID: merchantID,
		OpenedBy: "network", Reason: "fraudulent", Amount: netAmount, Currency: currency,
		ResponseDueBy: networkDue, GatewayReference: gwDispute, CreatedAt: t0,
	}
}

// call is one recorded activity call.
type call[R any] struct {
	Req     R
	At      time.Time // workflow time of the attempt
	Local   bool
	Attempt int32
}

// saveCall is one SaveDispute call.
type saveCall struct {
	Rec     store.DisputeRecord
	Journal *store.Journal
	At      time.Time
}

// attr is one upsert of search attributes, as the test reads it.
type attr struct {
	Status    string
	Attention *bool
	Due       *time.Time
	At        time.Time
}

type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	in  Input

	mu sync.Mutex
	// createErr, when set, answers CreateDispute instead of the store.
	createErr error
	// heldLess, when set, is what the store holds of a network dispute
	// (less was left of the payment), with attention asked.
	heldLess int64
	creates  []call[activities.OpenDisputeRequest]
	saves    []saveCall
	// saveErr, when set, answers a save (its attempt) instead of the
	// store: a save it fails is not taken (failedSaves counts them).
	saveErr     func(rec store.DisputeRecord) error
	failedSaves int
	last        *store.DisputeRecord // what the store holds
	refunds     []call[gateway.RefundRequest]
	refundFn    func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error)
	updates     []call[gateway.DisputeUpdateRequest]
	updateFn    func(n int, c call[gateway.DisputeUpdateRequest]) (gateway.DisputeResult, error)
	closes      []call[gateway.DisputeCloseRequest]
	closeFn     func(n int, c call[gateway.DisputeCloseRequest]) (gateway.DisputeResult, error)
	attrs       []attr
	timers      []time.Duration // durations of the timers the workflow started
	canceled    int             // timers canceled
	localActs   int             // local activity attempts
	acts        int             // regular activity attempts
	seq         int             // update ids
	// running: the test expects the workflow still to run when the
	// guard at maxLife fires (it then cancels it without failing).
	running bool
}

// maxLife is how long a test dispute may run before the harness ends it.
const maxLife = 90 * 24 * time.Hour

// newHarness makes a test environment for in, started as the API starts
// it (workflow id WorkflowID(in.DisputeID)), whose store creates the
// dispute and takes every save, and whose gateway fails the test when
// called unless the test mocks it.
func newHarness(t *testing.T, in Input) *harness {
	t.Helper()
	h := &harness{t: t, in: in}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quiet{})
	h.env = s.NewTestWorkflowEnvironment()
	h.env.SetStartTime(t0)
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: WorkflowID(in.DisputeID)})
	h.env.RegisterActivity(gw)
	h.env.RegisterActivity(db)

	h.env.OnActivity(db.CreateDispute, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, req activities.OpenDisputeRequest) (activities.CreatedDispute, error) {
			c := callOf(ctx, h, req)
			if !c.Local {
				t.Errorf("CreateDispute ran as a regular activity")
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			h.creates = append(h.creates, c)
			if h.createErr != nil {
				return activities.CreatedDispute{}, h.createErr
			}
			rec := h.createdOf(req)
			h.last = &rec
			return activities.CreatedDispute{Dispute: rec, PaymentReference: payRef}, nil
		})
	h.env.OnActivity(db.SaveDispute, mock.Anything, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, rec store.DisputeRecord, j *store.Journal) error {
			if !activity.GetInfo(ctx).IsLocalActivity {
				t.Errorf("SaveDispute ran as a regular activity")
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.saveErr != nil {
				if err := h.saveErr(rec); err != nil {
					h.failedSaves++
					return err
				}
			}
			h.checkSave(rec, j)
			h.saves = append(h.saves, saveCall{Rec: rec, Journal: j, At: h.env.Now()})
			h.last = &rec
			return nil
		})
	h.env.OnActivity(gw.Refund, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, r gateway.RefundRequest) (gateway.RefundResult, error) {
			c := callOf(ctx, h, r)
			if c.Local {
				t.Errorf("the gateway's Refund ran as a local activity")
			}
			h.mu.Lock()
			h.refunds = append(h.refunds, c)
			n, fn := len(h.refunds), h.refundFn
			h.mu.Unlock()
			if fn == nil {
				t.Errorf("unexpected gateway Refund %+v", r)
				return gateway.RefundResult{}, errUnexpected
			}
			return fn(n, c)
		})
	h.env.OnActivity(gw.UpdateDispute, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, r gateway.DisputeUpdateRequest) (gateway.DisputeResult, error) {
			c := callOf(ctx, h, r)
			h.mu.Lock()
			h.updates = append(h.updates, c)
			n, fn := len(h.updates), h.updateFn
			h.mu.Unlock()
			if fn == nil {
				t.Errorf("unexpected gateway UpdateDispute %+v", r)
				return gateway.DisputeResult{}, errUnexpected
			}
			return fn(n, c)
		})
	h.env.OnActivity(gw.CloseDispute, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, r gateway.DisputeCloseRequest) (gateway.DisputeResult, error) {
			c := callOf(ctx, h, r)
			h.mu.Lock()
			h.closes = append(h.closes, c)
			n, fn := len(h.closes), h.closeFn
			h.mu.Unlock()
			if fn == nil {
				t.Errorf("unexpected gateway CloseDispute %+v", r)
				return gateway.DisputeResult{}, errUnexpected
			}
			return fn(n, c)
		})
	h.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa, ok := args.Get(0).(temporal.SearchAttributes)
		if !ok {
			t.Errorf("search attributes of type %T", args.Get(0))
			return
		}
		a := attr{At: h.env.Now()}
		a.Status, _ = sa.GetKeyword(AttrStatus)
		if on, ok := sa.GetBool(AttrNeedsAttention); ok {
			a.Attention = &on
		}
		if d, ok := sa.GetTime(AttrResponseDueBy); ok {
			a.Due = &d
		}
		h.mu.Lock()
		h.attrs = append(h.attrs, a)
		h.mu.Unlock()
	}).Return(nil)
	h.env.SetOnTimerScheduledListener(func(_ string, d time.Duration) {
		h.mu.Lock()
		h.timers = append(h.timers, d)
		h.mu.Unlock()
	})
	h.env.SetOnTimerCanceledListener(func(string) {
		h.mu.Lock()
		h.canceled++
		h.mu.Unlock()
	})
	h.env.SetOnLocalActivityStartedListener(func(*activity.Info, context.Context, []any) {
		h.mu.Lock()
		h.localActs++
		h.mu.Unlock()
	})
	h.env.SetOnActivityStartedListener(func(*activity.Info, context.Context, converter.EncodedValues) {
		h.mu.Lock()
		h.acts++
		h.mu.Unlock()
	})
	return h
}

// createdOf is the dispute the store creates for req: needs_response at
// version 1, with the payment's parties, currency and gateway, holding
// what the payment had left (an opening on the platform of Amount 0) or
// the network's amount.
func (h *harness) createdOf(req activities.OpenDisputeRequest) store.DisputeRecord {
	d := req.Dispute
	d.MerchantID, d.CustomerID, d.Currency, d.Gateway = merchantID, customerID, currency, gwName
	if d.Amount == 0 {
		d.Amount = left
	}
	d.AmountHeld = d.Amount
	if d.OpenedBy == entdispute.OpenedByNetwork && h.heldLess > 0 {
		d.AmountHeld, d.NeedsAttention = h.heldLess, true
		d.AttentionReason = fmt.Sprintf("the network disputes %d while only %d was left of the payment's balance", d.Amount, h.heldLess)
	}
	d.Status, d.Settlement = entdispute.StatusNeedsResponse, entdispute.SettlementNone
	d.Version, d.UpdatedAt = 1, d.CreatedAt
	return d
}

// checkSave asserts what the store requires of every save (SaveDispute
// and checkDisputeMove), and what the workflow promises: the next version,
// the time of the save, a timeline that only grows. Called with h.mu held.
func (h *harness) checkSave(rec store.DisputeRecord, j *store.Journal) {
	t := h.t
	old := h.last
	if old == nil {
		t.Errorf("save of %+v before the dispute was created", rec)
		return
	}
	if rec.Version != old.Version+1 {
		t.Errorf("save with version %d after %d", rec.Version, old.Version)
	}
	if rec.ID != old.ID || rec.PaymentID != old.PaymentID || rec.MerchantID != old.MerchantID || rec.CustomerID != old.CustomerID ||
		rec.OpenedBy != old.OpenedBy || rec.Reason != old.Reason || rec.Description != old.Description ||
		rec.Amount != old.Amount || rec.AmountHeld != old.AmountHeld || rec.Currency != old.Currency ||
		rec.Gateway != old.Gateway || rec.GatewayReference != old.GatewayReference || rec.WorkflowID != old.WorkflowID ||
		!rec.CreatedAt.Equal(old.CreatedAt) {
		t.Errorf("save changed what never changes:\n old %+v\n new %+v", *old, rec)
	}
	if len(rec.Timeline) < len(old.Timeline) || !reflect.DeepEqual(rec.Timeline[:len(old.Timeline)], old.Timeline) {
		t.Errorf("save rewrote the timeline:\n old %+v\n new %+v", old.Timeline, rec.Timeline)
	}
	// A save is made at once unless the store refused earlier attempts
	// (then it carries the time of its first).
	if !rec.UpdatedAt.Equal(h.env.Now()) && (h.saveErr == nil || rec.UpdatedAt.After(h.env.Now())) {
		t.Errorf("save at %v has UpdatedAt %v", h.env.Now(), rec.UpdatedAt)
	}
	if rec.NeedsAttention != (rec.AttentionReason != "") {
		t.Errorf("save with NeedsAttention %v and reason %q", rec.NeedsAttention, rec.AttentionReason)
	}
	if f, msg := rec.Evidence.Check(); f != "" {
		t.Errorf("save of evidence the store refuses: %s %s", f, msg)
	}
	if f, msg := rec.ClaimantEvidence.Check(); f != "" {
		t.Errorf("save of claimant evidence the store refuses: %s %s", f, msg)
	}
	if !store.IsOpen(old.Status) && rec.Status != old.Status {
		t.Errorf("closed dispute (%s) saved as %s", old.Status, rec.Status)
	}
	if rec.Settlement != old.Settlement {
		network := old.OpenedBy == entdispute.OpenedByNetwork
		ok := false
		switch rec.Settlement {
		case entdispute.SettlementPending:
			ok = !network && store.CustomerPrevails(rec.Status) && old.Settlement == entdispute.SettlementNone
		case entdispute.SettlementRefunded:
			ok = !network && store.CustomerPrevails(rec.Status) &&
				(old.Settlement == entdispute.SettlementNone || old.Settlement == entdispute.SettlementPending)
		case entdispute.SettlementWithdrawn:
			ok = network && store.CustomerPrevails(rec.Status) && old.Settlement == entdispute.SettlementNone
		case entdispute.SettlementReinstated:
			ok = network && rec.Status == entdispute.StatusWon && old.Settlement == entdispute.SettlementNone
		}
		if !ok {
			t.Errorf("settlement %s -> %s (%s, opened by %s): the store refuses it", old.Settlement, rec.Settlement, rec.Status, rec.OpenedBy)
		}
	}
	if j != nil {
		if j.PaymentID != rec.PaymentID || j.Currency != rec.Currency {
			t.Errorf("journal %s of payment %s in %s, dispute of %s in %s", j.ID, j.PaymentID, j.Currency, rec.PaymentID, rec.Currency)
		}
		checkBalanced(t, *j)
	}
}

// checkBalanced asserts that j's debits equal its credits and that every
// line moves the same positive amount.
func checkBalanced(t *testing.T, j store.Journal) {
	t.Helper()
	var d, c int64
	for _, l := range j.Lines {
		if len(j.Lines) > 0 && l.Amount != j.Lines[0].Amount {
			t.Errorf("journal %s: lines of different amounts %+v", j.ID, j.Lines)
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
	if d != c || d <= 0 {
		t.Errorf("journal %s: debits %d, credits %d", j.ID, d, c)
	}
}

// onRefund mocks the gateway's Refund: fn answers call n (1-based).
func (h *harness) onRefund(fn func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refundFn = fn
}

// refundsSucceed makes the gateway take every refund.
func (h *harness) refundsSucceed() {
	h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		return gateway.RefundResult{Reference: gwRefundID, Status: gateway.RefundSucceeded, Amount: left}, nil
	})
}

// onUpdateDispute mocks the gateway's UpdateDispute.
func (h *harness) onUpdateDispute(fn func(n int, c call[gateway.DisputeUpdateRequest]) (gateway.DisputeResult, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.updateFn = fn
}

func (h *harness) allSaves() []saveCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]saveCall(nil), h.saves...)
}

func (h *harness) allCreates() []call[activities.OpenDisputeRequest] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[activities.OpenDisputeRequest](nil), h.creates...)
}

func (h *harness) allRefunds() []call[gateway.RefundRequest] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[gateway.RefundRequest](nil), h.refunds...)
}

func (h *harness) allCloses() []call[gateway.DisputeCloseRequest] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[gateway.DisputeCloseRequest](nil), h.closes...)
}

func (h *harness) allUpdates() []call[gateway.DisputeUpdateRequest] {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call[gateway.DisputeUpdateRequest](nil), h.updates...)
}

func (h *harness) allAttrs() []attr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]attr(nil), h.attrs...)
}

// statusAttrs are the DisputeStatus upserts, in order.
func (h *harness) statusAttrs() []string {
	var out []string
	for _, a := range h.allAttrs() {
		if a.Status != "" {
			out = append(out, a.Status)
		}
	}
	return out
}

// attentionAttrs are the NeedsAttention upserts, in order.
func (h *harness) attentionAttrs() []bool {
	var out []bool
	for _, a := range h.allAttrs() {
		if a.Attention != nil {
			out = append(out, *a.Attention)
		}
	}
	return out
}

// journals are the journals of the saves, in order.
func (h *harness) journals() []store.Journal {
	var out []store.Journal
	for _, s := range h.allSaves() {
		if s.Journal != nil {
			out = append(out, *s.Journal)
		}
	}
	return out
}

// statuses are the statuses of the saves, in order.
func (h *harness) statuses() []entdispute.Status {
	var out []entdispute.Status
	for _, s := range h.allSaves() {
		out = append(out, s.Rec.Status)
	}
	return out
}

// stored is what the store holds now.
func (h *harness) stored() store.DisputeRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		return store.DisputeRecord{}
	}
	return *h.last
}

// query returns the workflow's live state.
func (h *harness) query() store.DisputeRecord {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryState)
	if err != nil {
		h.t.Errorf("query: %v", err)
		return store.DisputeRecord{}
	}
	var rec store.DisputeRecord
	if err := v.Get(&rec); err != nil {
		h.t.Error(err)
	}
	return rec
}

// at runs f at workflow time t0+d (d 0: with the start).
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
	name     string
	accepted bool
	rejected error // by the validator
	done     bool  // completed or rejected
	rec      store.DisputeRecord
	err      error // the handler's
	at       time.Time
}

// update sends an update at t0+d; arg nil sends none (await_recorded).
func (h *harness) update(d time.Duration, name string, arg any) *updateResult {
	out := &updateResult{name: name}
	h.at(d, func() { h.updateNow(out, name, arg) })
	return out
}

func (h *harness) updateNow(out *updateResult, name string, arg any) {
	h.seq++
	var args []any
	if arg != nil {
		args = []any{arg}
	}
	h.env.UpdateWorkflow(name, fmt.Sprintf("%s-%d", name, h.seq), &testsuite.TestUpdateCallback{
		OnReject: func(err error) { out.rejected, out.done, out.at = err, true, h.env.Now() },
		OnAccept: func() { out.accepted = true },
		OnComplete: func(v any, err error) {
			out.err, out.done, out.at = err, true, h.env.Now()
			if rec, ok := v.(store.DisputeRecord); ok {
				out.rec = rec
			}
		},
	}, args...)
}

// evidence sends a party's evidence at t0+d.
func (h *harness) evidence(d time.Duration, who Actor, ev disputes.Evidence, submit bool) *updateResult {
	return h.update(d, UpdateSubmitEvidence, EvidenceUpdate{Actor: who, Evidence: ev, Submit: submit})
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
// result, after the checks every test makes: the result is what the store
// holds, each journal is posted once.
func (h *harness) result() store.DisputeRecord {
	h.t.Helper()
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
	var rec store.DisputeRecord
	if err := h.env.GetWorkflowResult(&rec); err != nil {
		h.t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, j := range h.journals() {
		if seen[j.ID] {
			h.t.Errorf("journal %s posted twice", j.ID)
		}
		seen[j.ID] = true
	}
	if last := h.stored(); !reflect.DeepEqual(rec, last) {
		h.t.Errorf("the workflow ended with\n %+v\nthe store holds\n %+v", rec, last)
	}
	return rec
}

// ok asserts u passed its validator and completed without an
// error, and returns the dispute it answered.
func (u *updateResult) ok(t *testing.T) store.DisputeRecord {
	t.Helper()
	if !u.done || !u.accepted || u.rejected != nil || u.err != nil {
		t.Fatalf("%s: done %v accepted %v rejected %v err %v, want it done", u.name, u.done, u.accepted, u.rejected, u.err)
	}
	return u.rec
}

// refusedBy asserts the validator rejected u with an error of type typ.
func (u *updateResult) refusedBy(t *testing.T, typ string) {
	t.Helper()
	if !u.done || u.accepted || errType(u.rejected) != typ {
		t.Fatalf("%s: done %v accepted %v rejected %v err %v, want the validator to reject it as %s",
			u.name, u.done, u.accepted, u.rejected, u.err, typ)
	}
}

// failedWith asserts u was accepted and its handler answered an error of
// type typ.
func (u *updateResult) failedWith(t *testing.T, typ string) {
	t.Helper()
	if !u.done || !u.accepted || u.rejected != nil || errType(u.err) != typ {
		t.Fatalf("%s: done %v accepted %v rejected %v err %v, want the handler to answer %s",
			u.name, u.done, u.accepted, u.rejected, u.err, typ)
	}
}

func callOf[R any](ctx context.Context, h *harness, req R) call[R] {
	info := activity.GetInfo(ctx)
	return call[R]{Req: req, At: h.env.Now(), Local: info.IsLocalActivity, Attempt: info.Attempt}
}

var errUnexpected = temporal.NewNonRetryableApplicationError("unexpected call", "Unexpected", nil)

// unavailable is what an unanswered gateway call returns (retried).
func unavailable() error {
	return temporal.NewApplicationError("503 from gateway", "GatewayUnavailable")
}

// invalidGatewayError is the gateway's refusal for good.
func invalidGatewayError(code, msg string) error {
	return temporal.NewApplicationErrorWithOptions(msg, activities.ErrTypeGatewayInvalid, temporal.ApplicationErrorOptions{
		NonRetryable: true, Details: []any{activities.GatewayErrorDetails{Code: code, Message: msg}},
	})
}

// errType is the type of an application error, or "".
func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// step is a timeline entry as the tests compare it: kind, actor, time.
type step struct {
	Kind, Actor string
	At          time.Time
}

// steps are rec's timeline entries as steps.
func steps(rec store.DisputeRecord) []step {
	var out []step
	for _, e := range rec.Timeline {
		out = append(out, step{e.Kind, e.Actor, e.At})
	}
	return out
}

// checkSteps asserts rec's timeline is exactly want.
func checkSteps(t *testing.T, rec store.DisputeRecord, want ...step) {
	t.Helper()
	got := steps(rec)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("timeline:")
		for i := 0; i < max(len(got), len(want)); i++ {
			var g, w string
			if i < len(got) {
				g = fmt.Sprintf("%s by %s at t0+%v", got[i].Kind, got[i].Actor, got[i].At.Sub(t0))
			}
			if i < len(want) {
				w = fmt.Sprintf("%s by %s at t0+%v", want[i].Kind, want[i].Actor, want[i].At.Sub(t0))
			}
			mark := "  "
			if g != w {
				mark = "!="
			}
			t.Errorf("  %2d %s got %-60s want %s", i, mark, g, w)
		}
	}
}

// checkVersions asserts the saves carry the versions 2, 3, ... in order.
func (h *harness) checkVersions() {
	h.t.Helper()
	for i, s := range h.allSaves() {
		if s.Rec.Version != int64(i+2) {
			h.t.Errorf("save %d has version %d, want %d", i, s.Rec.Version, i+2)
		}
	}
}

// quiet drops the workflow's logs.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
