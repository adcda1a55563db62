package payment

// Unit tests of the first charge when the gateway does not answer it
// (issue 6, items 1, 2 and 15): the create retried in rounds with one key,
// the gateway asked what it holds after each round, events that settle the
// charge while it is retried, the failure when the gateway holds nothing,
// and the void and reconciliation that follow.

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/ent/ledgerentry"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

// createFails makes every create fail as unanswered, checking each
// carries the first create key.
func createFails(h *harness) {
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("create", 1) {
			h.t.Errorf("create call %d has key %q, want %q", n, c.Req.IdempotencyKey, h.key("create", 1))
		}
		return gateway.Result{}, unavailable()
	})
}

func TestUnansweredChargeIsSettledByWhatTheGatewayHolds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		manual bool
		found  gateway.Result
		status entpayment.Status
		// then ends the payment once it is settled.
		then     func(h *harness, at time.Duration)
		final    entpayment.Status
		code     string
		journals int
	}{
		{name: "succeeded", found: succeeded("pi_f", amount), status: entpayment.StatusSucceeded, final: entpayment.StatusSucceeded, journals: 1},
		{name: "failed", found: gateway.Result{Reference: "pi_f", Status: gateway.StatusFailed, FailureCode: "card_declined"},
			status: entpayment.StatusFailed, final: entpayment.StatusFailed, code: "card_declined"},
		{name: "canceled", found: gateway.Result{Reference: "pi_f", Status: gateway.StatusCanceled},
			status: entpayment.StatusCanceled, final: entpayment.StatusCanceled},
		{name: "requires_capture", manual: true, found: authorized("pi_f"), status: entpayment.StatusRequiresCapture,
			then: func(h *harness, at time.Duration) {
				captureOK(h, 1)
				h.update(at+time.Hour, UpdateCapture, CaptureRequest{})
			}, final: entpayment.StatusSucceeded, journals: 1},
		{name: "requires_action", found: requiresAction("pi_f"), status: entpayment.StatusRequiresAction,
			then: func(h *harness, at time.Duration) {
				h.onCancel(func(_ int, c call[gateway.CancelRequest]) (gateway.Result, error) {
					found := h.find.all()[0].At
					if !c.At.Equal(found.Add(ActionTTL)) || c.Req.IdempotencyKey != h.key("expire", 1) {
						h.t.Errorf("cancel %+v at %v, want ActionTTL after the lookup at %v", c.Req, c.At.Sub(t0), found.Sub(t0))
					}
					return gateway.Result{Reference: "pi_f", Status: gateway.StatusCanceled}, nil
				})
			}, final: entpayment.StatusCanceled, code: "action_expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(tc.manual))
			h.ref = "pi_f"
			createFails(h)
			var foundAt time.Time
			h.onFind(func(n int, c call[gateway.FindRequest]) (gateway.Found, error) {
				if n != 1 || c.Req.Reference != "" {
					t.Errorf("find call %d: %+v", n, c.Req)
				}
				foundAt = c.At
				return gateway.Found{Exists: true, Result: tc.found}, nil
			})
			// The first round of the create lasts at most presets.FastRound.
			settledBy := presets.FastRound
			if tc.then != nil {
				tc.then(h, settledBy)
			}
			h.at(settledBy, func() {
				if got := h.query(); got.Status != tc.status || got.GatewayReference != "pi_f" {
					t.Errorf("after the lookup: %+v", got)
				}
			})
			h.run()
			rec := h.result()
			if rec.Status != tc.final || rec.FailureCode != tc.code || rec.GatewayReference != "pi_f" || rec.NeedsAttention {
				t.Fatalf("record %+v", rec)
			}
			// Find was asked once, after the round of creates, and no create
			// was sent after it.
			cs := h.create.live()
			if len(cs) != 11 || !cs[0].Local || foundAt.IsZero() || cs[len(cs)-1].At.After(foundAt) {
				t.Fatalf("creates %+v, lookup at %v", cs, foundAt)
			}
			st := h.statuses()
			if len(st) < 2 || st[0] != entpayment.StatusProcessing || st[1] != tc.status {
				t.Fatalf("saved statuses %v", st)
			}
			if h.allSaves()[1].At != foundAt {
				t.Fatalf("settled at %v, found at %v", h.allSaves()[1].At, foundAt)
			}
			if js := h.journals(); len(js) != tc.journals {
				t.Fatalf("journals %+v", js)
			}
		})
	}
}

func TestIntentStillProcessingKeepsTheCreateGoing(t *testing.T) {
	h := newHarness(t, input(false))
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("create", 1) {
			t.Errorf("create key %q", c.Req.IdempotencyKey)
		}
		if h.find.n() == 0 {
			return gateway.Result{}, unavailable()
		}
		return succeeded("pi_p", amount), nil
	})
	h.onFind(func(n int, c call[gateway.FindRequest]) (gateway.Found, error) {
		if n != 1 {
			t.Errorf("find call %d", n)
		}
		return gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_p", Status: gateway.StatusProcessing}}, nil
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusSucceeded || rec.GatewayReference != "pi_p" {
		t.Fatalf("record %+v", rec)
	}
	// A second round of creates, after the lookup, with the same key: the
	// fast path, ten attempts (the test suite's cap) and the one that
	// answered.
	cs := h.create.all()
	if f := h.find.all(); len(f) != 1 || len(cs) != 12 || cs[11].Attempt != 1 || cs[11].At.Before(f[0].At) {
		t.Fatalf("lookups %+v creates %d", f, len(cs))
	}
	if rounds := h.scheduledOf("CreatePayment"); len(rounds) != 2 || !rounds[1].At.Equal(h.find.all()[0].At) {
		t.Fatalf("create rounds %+v, want two", rounds)
	}
}

// slowUnavailable is an unanswered call whose gateway asks for the next
// attempt in presets.FastRound/2.
func slowUnavailable() error {
	return temporal.NewApplicationErrorWithOptions("503 from gateway", "GatewayUnavailable",
		temporal.ApplicationErrorOptions{NextRetryDelay: presets.FastRound / 2})
}

// createFailsSlowly makes every create fail as unanswered, asking for the
// next attempt in presets.FastRound/2; each carries the first create key.
func createFailsSlowly(h *harness) {
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("create", 1) {
			h.t.Errorf("create call %d has key %q, want %q", n, c.Req.IdempotencyKey, h.key("create", 1))
		}
		return gateway.Result{}, slowUnavailable()
	})
}

// noIntent is a gateway that never answers a create and holds no intent
// for the payment. Its errors ask for the next attempt in 2.5 minutes (the
// retry intervals are TestGatewayDownThenUp's business), so that a round
// makes three attempts and the tests that wait past the first hour stay
// fast.
func noIntent(h *harness) {
	createFailsSlowly(h)
	h.onFind(func(_ int, c call[gateway.FindRequest]) (gateway.Found, error) {
		if c.Req.Reference != "" {
			h.t.Errorf("find by reference %q: none is known", c.Req.Reference)
		}
		return gateway.Found{}, nil
	})
}

func TestNoIntentFailsThePaymentOnlyAfterTheFirstHourThenVoidsTwice(t *testing.T) {
	h := newHarness(t, input(false))
	noIntent(h)
	h.onVoid(func(n int, c call[gateway.VoidRequest]) (gateway.Found, error) {
		if c.Req.IdempotencyKey != h.key("void", n) || c.Req.Reference != "" || c.Req.Reason != "abandoned" {
			t.Errorf("void call %d: %+v", n, c.Req)
		}
		return gateway.Found{}, nil
	})
	h.at(presets.CustomerWaiting-time.Second, func() {
		if got := h.query(); got.Status != entpayment.StatusProcessing {
			t.Errorf("failed in the first hour: %+v", got)
		}
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "gateway_unreachable" || !strings.Contains(rec.FailureMessage, "nothing was taken") || rec.NeedsAttention {
		t.Fatalf("record %+v", rec)
	}
	saves := h.accepted()
	if len(saves) != 2 || saves[0].Rec.Status != entpayment.StatusProcessing {
		t.Fatalf("saves %+v", saves)
	}
	failedAt := saves[1].At
	if failedAt.Before(t0.Add(presets.CustomerWaiting)) {
		t.Fatalf("failed at %v, within the first hour", failedAt.Sub(t0))
	}
	// "None" during the first hour did not fail it: the create went on.
	finds := h.find.all()
	if len(finds) < 2 || !finds[0].At.Before(t0.Add(presets.CustomerWaiting)) {
		t.Fatalf("lookups %+v", finds)
	}
	if last := finds[len(finds)-1]; !last.At.Equal(failedAt) {
		t.Fatalf("failed at %v, last lookup at %v", failedAt, last.At)
	}
	var after int
	for _, c := range h.create.all() {
		if c.At.After(finds[0].At) && c.At.Before(t0.Add(presets.CustomerWaiting)) {
			after++
		}
		if c.At.After(failedAt) {
			t.Fatalf("create at %v after the payment failed", c.At.Sub(t0))
		}
	}
	if after == 0 {
		t.Fatalf("no create after a lookup that found nothing in the first hour")
	}
	// The void: at once, and again after the gateway's search caught up.
	vs := h.void.all()
	if len(vs) != 2 || !vs[0].At.Equal(failedAt) || !vs[1].At.Equal(failedAt.Add(presets.SearchLag)) {
		t.Fatalf("voids %+v, failed at %v", vs, failedAt)
	}
	if len(h.journals()) != 0 {
		t.Fatalf("journals %+v", h.journals())
	}
}

func TestVoidOfAFailedChargeThatSucceededAnywayIsRefunded(t *testing.T) {
	h := newHarness(t, input(false))
	h.setWorkflowID(WorkflowID(payID))
	noIntent(h)
	late := succeeded("pi_late", amount)
	// The late intent shows up in the gateway's search after the
	// payment failed: each void finds it succeeded.
	h.onVoid(func(n int, c call[gateway.VoidRequest]) (gateway.Found, error) {
		if c.Req.IdempotencyKey != h.key("void", n) {
			t.Errorf("void call %d key %q", n, c.Req.IdempotencyKey)
		}
		return gateway.Found{Exists: true, Result: late}, nil
	})
	h.onRefund(func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		want := gateway.RefundRequest{Gateway: "sandbox", IdempotencyKey: WorkflowID(payID) + "/unexpected_refund/pi_late",
			PaymentID: payID, Reference: "pi_late", Amount: amount, Currency: currency}
		if c.Req != want {
			t.Errorf("refund call %d: %+v, want %+v", n, c.Req, want)
		}
		return gateway.RefundResult{Reference: "re_1", Status: gateway.RefundSucceeded, Amount: amount}, nil
	})
	h.onRecordReconciliation(nil)
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "gateway_unreachable" {
		t.Fatalf("the payment did not stay failed: %+v", rec)
	}
	if st := h.statuses(); !reflect.DeepEqual(st, []entpayment.Status{entpayment.StatusProcessing, entpayment.StatusFailed}) {
		t.Fatalf("saved statuses %v", st)
	}
	if h.void.n() != 2 {
		t.Fatalf("%d voids", h.void.n())
	}
	if h.refund.n() != 1 {
		t.Fatalf("%d refunds of one unexpected charge, want 1", h.refund.n())
	}
	rs := h.allRecons()
	if len(rs) != 1 {
		t.Fatalf("%d reconciliation records, want 1: %+v", len(rs), rs)
	}
	checkUnexpectedCharge(t, rs[0], "pi_late", "refunded", "re_1", entpayment.StatusFailed)
	if logged := h.log.find("ERROR", "RECONCILE"); len(logged) == 0 || logged[0].kv("payment_id") != payID {
		t.Fatalf("no error-level log naming the payment: %+v", logged)
	}
}

// checkUnexpectedCharge asserts a reconciliation of an unexpected charge
// of the whole amount, refunded: the case, and both journals, balanced.
func checkUnexpectedCharge(t *testing.T, r reconCall, ref, action, refundRef string, recorded entpayment.Status) {
	t.Helper()
	c := r.Case
	if c.ID != "rcn_01test_charge" || c.PaymentID != payID || c.Kind != reconciliationcase.KindUnexpectedCharge || c.Action != action ||
		c.RefundReference != refundRef || c.GatewayReference != ref || c.Amount != amount || c.Currency != currency ||
		c.PaymentStatus != string(recorded) || c.GatewayStatus != string(gateway.StatusSucceeded) || c.Gateway != "sandbox" || c.Details == "" {
		t.Fatalf("case %+v", c)
	}
	if !c.At.Equal(r.At) {
		t.Fatalf("case at %v, recorded at %v", c.At, r.At)
	}
	want := []store.Journal{
		{ID: payID + "/unexpected_charge", PaymentID: payID, Currency: currency, At: r.At, Lines: []store.JournalLine{
			{Account: "customer_funding:acct_c", Direction: ledgerentry.DirectionDebit, Amount: amount},
			{Account: "gateway_clearing:sandbox", Direction: ledgerentry.DirectionCredit, Amount: amount},
		}},
		{ID: payID + "/unexpected_refund", PaymentID: payID, Currency: currency, At: r.At, Lines: []store.JournalLine{
			{Account: "gateway_clearing:sandbox", Direction: ledgerentry.DirectionDebit, Amount: amount},
			{Account: "customer_funding:acct_c", Direction: ledgerentry.DirectionCredit, Amount: amount},
		}},
	}
	if action != "refunded" && action != "refund_pending" {
		want = want[:1]
	}
	if !sameJournals(r.Journals, want) {
		t.Fatalf("journals %+v, want %+v", r.Journals, want)
	}
	for _, j := range r.Journals {
		checkBalanced(t, j, amount)
	}
}

// outage is a gateway that answers nothing until up. wasCharged says
// whether a create sent during the outage reached it (the answer was
// lost): then the intent exists, succeeded, from the first attempt on.
type outage struct {
	h          *harness
	up         time.Time
	wasCharged bool

	mu      sync.Mutex
	created bool
}

func (o *outage) install() {
	h := o.h
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("create", 1) {
			h.t.Errorf("create call %d has key %q", n, c.Req.IdempotencyKey)
		}
		if c.At.Before(o.up) {
			return gateway.Result{}, unavailable()
		}
		o.mu.Lock()
		o.created = true
		o.mu.Unlock()
		return succeeded("pi_o", amount), nil
	})
	h.onFind(func(n int, c call[gateway.FindRequest]) (gateway.Found, error) {
		if c.At.Before(o.up) {
			return gateway.Found{}, unavailable()
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.created || o.wasCharged {
			return gateway.Found{Exists: true, Result: succeeded("pi_o", amount)}, nil
		}
		return gateway.Found{}, nil
	})
}

// checkRetryOptions asserts each round of the create was scheduled with
// the retry interval and length for when it started: at most
// FastRetryInterval apart while a customer may be waiting, then
// SlowRetryInterval; and that the attempts of a round were indeed no
// further apart than that.
func checkRetryOptions(t *testing.T, h *harness) {
	t.Helper()
	rounds := h.scheduledOf("CreatePayment")
	if len(rounds) == 0 {
		t.Fatal("the create was never retried as an activity")
	}
	for _, r := range rounds {
		interval, round := presets.FastRetryInterval, presets.FastRound
		if !r.At.Before(t0.Add(presets.CustomerWaiting)) {
			interval, round = presets.SlowRetryInterval, presets.SlowRound
		}
		p := r.Opts.RetryPolicy
		if p == nil || p.MaximumInterval != interval || r.Opts.ScheduleToCloseTimeout != round || r.Opts.StartToCloseTimeout <= 0 ||
			!reflect.DeepEqual(p.NonRetryableErrorTypes, []string{"GatewayInvalid"}) {
			t.Fatalf("round at %v scheduled with %+v (retry %+v), want interval %v round %v", r.At.Sub(t0), r.Opts, p, interval, round)
		}
	}
	for _, l := range h.scheduledOf("Find") {
		if p := l.Opts.RetryPolicy; p == nil || p.MaximumInterval > presets.FastRetryInterval || l.Opts.ScheduleToCloseTimeout > 2*time.Minute {
			t.Fatalf("lookup scheduled with %+v", l.Opts)
		}
	}
	cs := h.create.live()
	maxFast := time.Duration(0)
	for i := 1; i < len(cs); i++ {
		if cs[i].Local || cs[i].Attempt == 1 {
			continue // a new round
		}
		gap := cs[i].At.Sub(cs[i-1].At)
		if cs[i-1].At.Before(t0.Add(presets.CustomerWaiting)) && h.roundStart(cs[i-1].At).Before(t0.Add(presets.CustomerWaiting)) {
			if gap > presets.FastRetryInterval {
				t.Fatalf("attempts at %v and %v: %v apart while a customer may be waiting", cs[i-1].At.Sub(t0), cs[i].At.Sub(t0), gap)
			}
			maxFast = max(maxFast, gap)
		}
	}
	if maxFast != presets.FastRetryInterval {
		t.Fatalf("attempts in the first hour at most %v apart, want the cap %v reached", maxFast, presets.FastRetryInterval)
	}
}

// roundStart is when the round of creates running at t was scheduled.
func (h *harness) roundStart(t time.Time) time.Time {
	var start time.Time
	for _, r := range h.scheduledOf("CreatePayment") {
		if !r.At.After(t) {
			start = r.At
		}
	}
	return start
}

// Issue 6, item 15: a gateway down for every call, then up.
func TestGatewayDownThenUp(t *testing.T) {
	for _, tc := range []struct {
		name       string
		down       time.Duration
		wasCharged bool
		within     time.Duration
		attention  bool
	}{
		{"40 minutes", 40 * time.Minute, false, time.Minute, false},
		{"40 minutes, charged during the outage", 40 * time.Minute, true, time.Minute, false},
		{"3 hours, charged during the outage", 3 * time.Hour, true, presets.SlowRetryInterval, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(false))
			h.ref = "pi_o"
			o := &outage{h: h, up: t0.Add(tc.down), wasCharged: tc.wasCharged}
			o.install()
			h.run()
			rec := h.result()
			saves := h.accepted()
			var settled saveCall
			for _, s := range saves {
				if s.Rec.Status != entpayment.StatusProcessing {
					settled = s
					break
				}
			}
			if settled.At.Before(o.up) || settled.At.Sub(o.up) > tc.within {
				t.Fatalf("settled at %v, the gateway answered again at %v: want within %v", settled.At.Sub(t0), tc.down, tc.within)
			}
			// Nothing charged during the outage: the create made the intent
			// once the gateway answered (a lookup that found nothing in the
			// first hour did not fail the payment).
			if rec.Status != entpayment.StatusSucceeded || rec.GatewayReference != "pi_o" || len(h.journals()) != 1 {
				t.Fatalf("record %+v journals %+v", rec, h.journals())
			}
			// NeedsAttention: set (on the row and the search attribute)
			// once the charge was unanswered for an hour, cleared when it
			// settled.
			var marked []saveCall
			for _, s := range saves {
				if s.Rec.NeedsAttention {
					marked = append(marked, s)
				}
			}
			attr := h.attentionChanges()
			if !tc.attention {
				if len(marked) != 0 || len(attr) != 0 {
					t.Fatalf("NeedsAttention set during a %v outage: %+v %+v", tc.down, marked, attr)
				}
			} else {
				if len(marked) != 1 || marked[0].Rec.Status != entpayment.StatusProcessing || marked[0].At.Before(t0.Add(presets.CustomerWaiting)) ||
					marked[0].At.After(t0.Add(presets.CustomerWaiting+presets.SlowRound+2*time.Minute)) || marked[0].Rec.AttentionReason == "" {
					t.Fatalf("saves with NeedsAttention %+v", marked)
				}
				if len(attr) != 2 || !attr[0].On || !attr[0].At.Equal(marked[0].At) || attr[1].On || !attr[1].At.Equal(settled.At) {
					t.Fatalf("NeedsAttention changes %+v", attr)
				}
			}
			checkRetryOptions(t, h)
		})
	}
}

// Once the gateway has forgotten the create's key (presets.GatewayRetryWindow),
// the create is no longer sent (it could make a second intent): only
// lookups are left, presets.SlowRetryInterval apart. The gateway here
// rate-limits every create (Retry-After: 2 minutes, then 10) and reports
// the intent processing, for 25 hours.
func TestNoCreateAfterTheKeyIsForgotten(t *testing.T) {
	h := newHarness(t, input(false))
	h.ref = "pi_o"
	up := t0.Add(presets.GatewayRetryWindow + 2*time.Hour)
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("create", 1) {
			t.Errorf("create call %d has key %q", n, c.Req.IdempotencyKey)
		}
		after := 2 * time.Minute
		if !c.At.Before(t0.Add(presets.CustomerWaiting)) {
			after = presets.SlowRetryInterval
		}
		return gateway.Result{}, temporal.NewApplicationErrorWithOptions("429", "GatewayRateLimited", temporal.ApplicationErrorOptions{NextRetryDelay: after})
	})
	h.onFind(func(n int, c call[gateway.FindRequest]) (gateway.Found, error) {
		if c.At.Before(up) {
			return gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_o", Status: gateway.StatusProcessing}}, nil
		}
		return gateway.Found{Exists: true, Result: succeeded("pi_o", amount)}, nil
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusSucceeded || rec.NeedsAttention || !rec.UpdatedAt.Before(up.Add(presets.SlowRetryInterval+time.Second)) {
		t.Fatalf("record %+v", rec)
	}
	window := t0.Add(presets.GatewayRetryWindow)
	for _, r := range h.scheduledOf("CreatePayment") {
		if !r.At.Before(window) {
			t.Fatalf("a round of creates started at %v, after the key was forgotten", r.At.Sub(t0))
		}
	}
	for _, c := range h.create.all() {
		if c.At.After(window.Add(presets.SlowRound)) {
			t.Fatalf("a create at %v, after the key was forgotten", c.At.Sub(t0))
		}
	}
	var late []time.Time
	for _, r := range h.scheduledOf("Find") {
		if r.At.After(window.Add(presets.SlowRound)) {
			late = append(late, r.At)
		}
	}
	if len(late) < 6 {
		t.Fatalf("lookups after the window: %v", late)
	}
	for i := 1; i < len(late); i++ {
		if gap := late[i].Sub(late[i-1]); gap != presets.SlowRetryInterval {
			t.Fatalf("lookups %v apart", gap)
		}
	}
	// NeedsAttention was set after the first hour, and cleared.
	if a := h.attentionChanges(); len(a) != 2 || !a[0].On || a[0].At.Before(t0.Add(presets.CustomerWaiting)) || a[1].On {
		t.Fatalf("NeedsAttention changes %+v", a)
	}
}

// Issue 6, item 2: an event that proves the outcome settles a charge
// whose create is being retried, and stops the retries.
func TestEventSettlesAChargeBeingRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		at     time.Duration
		ev     GatewayEvent
		status entpayment.Status
		code   string
		then   func(h *harness)
		final  entpayment.Status
		// lookups is whether the gateway is asked (the event came after
		// the first round).
		lookups bool
	}{
		{name: "succeeded", at: 20 * time.Second, ev: GatewayEvent{Status: gateway.StatusSucceeded, AmountReceived: amount},
			status: entpayment.StatusSucceeded, final: entpayment.StatusSucceeded},
		{name: "succeeded without an amount", at: 20 * time.Second, ev: GatewayEvent{Status: gateway.StatusSucceeded},
			status: entpayment.StatusSucceeded, final: entpayment.StatusSucceeded},
		{name: "failed", at: 20 * time.Second, ev: GatewayEvent{Status: gateway.StatusFailed, FailureCode: "card_declined", FailureMessage: "declined"},
			status: entpayment.StatusFailed, code: "card_declined", final: entpayment.StatusFailed},
		{name: "canceled", at: 20 * time.Second, ev: GatewayEvent{Status: gateway.StatusCanceled},
			status: entpayment.StatusCanceled, final: entpayment.StatusCanceled},
		{name: "requires_capture", at: 20 * time.Second, ev: GatewayEvent{Status: gateway.StatusRequiresCapture, AmountCapturable: amount},
			status: entpayment.StatusRequiresCapture, final: entpayment.StatusSucceeded, then: func(h *harness) {
				captureOK(h, 1)
				h.update(time.Hour, UpdateCapture, CaptureRequest{})
			}},
		// After the first hour, with NeedsAttention set: the event clears it.
		{name: "succeeded after the first hour", at: 90 * time.Minute, ev: GatewayEvent{Status: gateway.StatusSucceeded, AmountReceived: amount},
			status: entpayment.StatusSucceeded, final: entpayment.StatusSucceeded, lookups: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(tc.status == entpayment.StatusRequiresCapture))
			h.ref = "pi_ev"
			if !tc.lookups {
				createFails(h)
			} else {
				// Past the first hour: the gateway asks for every next
				// attempt in 2.5 minutes (fewer calls to simulate).
				createFailsSlowly(h)
				h.onFind(func(int, call[gateway.FindRequest]) (gateway.Found, error) { return gateway.Found{}, slowUnavailable() })
			}
			ev := tc.ev
			ev.EventID, ev.Type, ev.Reference = "evt_1", "payment_intent."+string(ev.Status), "pi_ev"
			h.signal(tc.at, ev)
			h.signal(tc.at+time.Second, ev) // a redelivery changes nothing
			if tc.then != nil {
				tc.then(h)
			}
			h.run()
			rec := h.result()
			if rec.Status != tc.final || rec.FailureCode != tc.code || rec.GatewayReference != "pi_ev" || rec.NeedsAttention {
				t.Fatalf("record %+v", rec)
			}
			// Settled when the event came, and not a create after it.
			var settled saveCall
			for _, s := range h.accepted() {
				if s.Rec.Status != entpayment.StatusProcessing {
					settled = s
					break
				}
			}
			eventAt := t0.Add(tc.at)
			if settled.Rec.Status != tc.status || !settled.At.Equal(eventAt) || settled.Rec.NeedsAttention {
				t.Fatalf("settled %+v at %v, want %s when the event came", settled.Rec, settled.At.Sub(t0), tc.status)
			}
			for _, c := range h.create.live() {
				if c.At.After(eventAt) {
					t.Fatalf("create at %v after the event settled the charge", c.At.Sub(t0))
				}
			}
			if n := len(h.create.live()); n < 3 {
				t.Fatalf("%d creates before the event", n)
			}
			if tc.status == entpayment.StatusSucceeded {
				js := h.journals()
				if len(js) != 1 || js[0].Lines[0].Amount != amount {
					t.Fatalf("journals %+v", js)
				}
			}
			if tc.status == entpayment.StatusRequiresCapture && !settled.Rec.AuthorizationExpiresAt.Equal(eventAt.Add(AuthorizationTTL)) {
				t.Fatalf("authorization expires at %v", settled.Rec.AuthorizationExpiresAt)
			}
			if tc.lookups {
				if a := h.attentionChanges(); len(a) != 2 || !a[0].On || a[1].On || !a[1].At.Equal(eventAt) {
					t.Fatalf("NeedsAttention changes %+v", a)
				}
			}
		})
	}
}

// Events that do not prove the outcome, or are impossible, leave the
// create going.
func TestEventsThatProveNothingLeaveTheCreateGoing(t *testing.T) {
	h := newHarness(t, input(false))
	h.ref = "pi_c"
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.At.Before(t0.Add(time.Minute)) {
			return gateway.Result{}, unavailable()
		}
		return succeeded("pi_c", amount), nil
	})
	h.onFind(func(int, call[gateway.FindRequest]) (gateway.Found, error) { return gateway.Found{}, unavailable() })
	h.signal(10*time.Second, GatewayEvent{EventID: "evt_action", Reference: "pi_c", Status: gateway.StatusRequiresAction})
	h.signal(20*time.Second, GatewayEvent{EventID: "evt_processing", Reference: "pi_c", Status: gateway.StatusProcessing})
	h.signal(25*time.Second, GatewayEvent{EventID: "evt_bad", Reference: "pi_c", Status: gateway.StatusSucceeded, AmountReceived: amount * 2})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount {
		t.Fatalf("record %+v", rec)
	}
	last := h.create.all()[h.create.n()-1]
	if last.At.Before(t0.Add(time.Minute)) {
		t.Fatalf("the create stopped at %v", last.At.Sub(t0))
	}
	if st := h.statuses(); !reflect.DeepEqual(st, []entpayment.Status{entpayment.StatusProcessing, entpayment.StatusSucceeded}) {
		t.Fatalf("saved statuses %v", st)
	}
	if logged := h.log.find("ERROR", "impossible amounts"); len(logged) != 1 {
		t.Fatalf("impossible event logged %d times", len(logged))
	}
}

// sameJournals compares journals, their times by instant.
func sameJournals(a, b []store.Journal) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.At.Equal(y.At) {
			return false
		}
		x.At, y.At = time.Time{}, time.Time{}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func TestUnansweredVoidIsRetriedWithTheNextKey(t *testing.T) {
	h := newHarness(t, input(false))
	noIntent(h)
	h.onVoid(func(n int, c call[gateway.VoidRequest]) (gateway.Found, error) {
		if c.Req.IdempotencyKey == h.key("void", 1) {
			return gateway.Found{}, unavailable()
		}
		return gateway.Found{}, nil
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "gateway_unreachable" || rec.NeedsAttention {
		t.Fatalf("record %+v", rec)
	}
	spans := activitySpans(h.void.all())
	checkSequentialKeys(t, h, "void", keysOf(h.void.all(), voidKey), 3)
	if len(spans) != 3 || !spans[1][0].Equal(spans[0][1].Add(presets.StepRetryDelay(1))) || !spans[2][0].Equal(spans[1][1].Add(presets.SearchLag)) {
		t.Fatalf("voids at %v", spans)
	}
	marked := attentionSaves(h)
	if len(marked) != 1 || marked[0].Rec.Status != entpayment.StatusFailed || !marked[0].At.Equal(spans[0][1]) || !strings.Contains(marked[0].Rec.AttentionReason, "void") {
		t.Fatalf("attention saves %+v", marked)
	}
	if a := h.attentionChanges(); len(a) != 2 || !a[0].On || a[1].On || !a[1].At.Equal(spans[1][0]) {
		t.Fatalf("NeedsAttention changes %+v", a)
	}
}

// An event that arrives while the fast path's create is in flight is not
// lost when the fast path answers.
func TestEventDuringTheFastPathIsHandledAfterIt(t *testing.T) {
	t.Run("ahead of the answer", func(t *testing.T) {
		h := newHarness(t, input(false))
		h.ref = "pi_mm"
		h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
			h.env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_ok", Reference: "pi_mm", Status: gateway.StatusSucceeded, AmountReceived: amount})
			return gateway.Result{Reference: "pi_mm", Status: gateway.StatusProcessing}, nil
		})
		h.run()
		rec := h.result()
		if rec.Status != entpayment.StatusSucceeded || !rec.UpdatedAt.Equal(t0) || len(h.journals()) != 1 {
			t.Fatalf("record %+v journals %d", rec, len(h.journals()))
		}
		if st := h.statuses(); !reflect.DeepEqual(st, []entpayment.Status{entpayment.StatusProcessing, entpayment.StatusSucceeded}) {
			t.Fatalf("saved statuses %v", st)
		}
	})
	t.Run("contradicting a refusal", func(t *testing.T) {
		h := newHarness(t, input(false))
		h.setWorkflowID(WorkflowID(payID))
		h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
			h.env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_ok", Reference: "pi_late", Status: gateway.StatusSucceeded, AmountReceived: amount})
			return gateway.Result{}, invalidGatewayError("parameter_invalid")
		})
		refundOK(h, "pi_late")
		h.onRecordReconciliation(nil)
		h.run()
		rec := h.result()
		if rec.Status != entpayment.StatusFailed || rec.FailureCode != "parameter_invalid" {
			t.Fatalf("record %+v", rec)
		}
		rs := h.allRecons()
		if len(rs) != 1 || h.refund.n() != 1 {
			t.Fatalf("reconciliations %+v refunds %d", rs, h.refund.n())
		}
		checkUnexpectedCharge(t, rs[0], "pi_late", "refunded", "re_1", entpayment.StatusFailed)
	})
}

// A gateway that rate-limits every call with a delay longer than a round
// ends each round at once: the rounds still come at least a retry interval
// apart (no spinning loop that fills the history), and the charge settles
// once the gateway answers.
func TestRateLimitedRoundsDoNotSpin(t *testing.T) {
	h := newHarness(t, input(false))
	h.ref = "pi_rl"
	up := t0.Add(20 * time.Minute)
	limited := func() error {
		return temporal.NewApplicationErrorWithOptions("429", "GatewayRateLimited", temporal.ApplicationErrorOptions{NextRetryDelay: 2 * time.Hour})
	}
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.At.Before(up) {
			return gateway.Result{}, limited()
		}
		return succeeded("pi_rl", amount), nil
	})
	h.onFind(func(n int, c call[gateway.FindRequest]) (gateway.Found, error) {
		return gateway.Found{}, limited()
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusSucceeded || !rec.UpdatedAt.Before(up.Add(presets.FastRetryInterval+time.Second)) {
		t.Fatalf("record %+v", rec)
	}
	rounds := h.scheduledOf("CreatePayment")
	if len(rounds) < 2 || len(rounds) > int(20*time.Minute/presets.FastRetryInterval)+2 {
		t.Fatalf("%d rounds in 20 minutes", len(rounds))
	}
	for i := 1; i < len(rounds); i++ {
		if gap := rounds[i].At.Sub(rounds[i-1].At); gap < presets.FastRetryInterval {
			t.Fatalf("rounds %d and %d are %v apart", i-1, i, gap)
		}
	}
}
