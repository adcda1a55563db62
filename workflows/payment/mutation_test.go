package payment

// Unit tests that pin behaviour of workflow.go and reconcile.go that the
// main-path tests left unproven (found by mutation testing, make mutate):
// the back-off of reports that cannot be reconciled yet, a run canceled
// while it waits or while a capture is at the gateway, the round that
// starts exactly when a customer stops waiting, an event that settles a
// pending step, the saves of refused and repeatedly unconfirmed steps, the
// expiry of an action recorded late, and the contract's durations.

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

func TestContractDurations(t *testing.T) {
	if AuthorizationTTL != 7*24*time.Hour || ActionTTL != 24*time.Hour {
		t.Fatalf("AuthorizationTTL %v, ActionTTL %v; the contract says 7 days and 24 hours", AuthorizationTTL, ActionTTL)
	}
}

// TestReportsThatCannotBeReconciledBackOff: a report the store refuses
// to record is tried again after StepRetryDelay(1), (2), ... and the payment
// stays marked NeedsAttention from its first failure until it is recorded,
// also across the second void that ends meanwhile (changeReportAttention);
// runs from before that change cleared the mark at the void.
func TestReportsThatCannotBeReconciledBackOff(t *testing.T) {
	for _, before := range []bool{false, true} {
		t.Run(map[bool]string{false: "current", true: "before changeReportAttention"}[before], func(t *testing.T) {
			h := newHarness(t, input(false))
			h.setWorkflowID(WorkflowID(payID))
			if before {
				h.env.OnGetVersion(changeReportAttention, workflow.DefaultVersion, versionReportAttention).Return(workflow.DefaultVersion)
			}
			noIntent(h)
			h.onVoid(func(int, call[gateway.VoidRequest]) (gateway.Found, error) {
				return gateway.Found{Exists: true, Result: succeeded("pi_late", amount)}, nil
			})
			refundOK(h, "pi_late")
			const refusals = 4
			h.onRecordReconciliation(func(n int) error {
				if n <= refusals {
					return storeRefusal()
				}
				return nil
			})
			h.run()
			rec := h.result()
			if rec.Status != entpayment.StatusFailed || rec.FailureCode != "gateway_unreachable" {
				t.Fatalf("record %+v", rec)
			}
			rs := h.allRecons()
			if len(rs) != refusals+1 {
				t.Fatalf("%d reconciliations, want %d", len(rs), refusals+1)
			}
			for i := 1; i < len(rs); i++ {
				if want := rs[i-1].At.Add(presets.StepRetryDelay(i)); !rs[i].At.Equal(want) {
					t.Fatalf("reconciliation %d at %v, want %v (StepRetryDelay(%d) after the one before)", i+1, rs[i].At.Sub(t0), want.Sub(t0), i)
				}
			}
			for _, r := range rs {
				checkUnexpectedCharge(t, r, "pi_late", "refunded", "re_1", entpayment.StatusFailed)
			}
			a := h.attentionChanges()
			if len(a) == 0 || !a[0].On || !a[0].At.Equal(rs[0].At) || a[len(a)-1].On || a[len(a)-1].At.Before(rs[refusals].At) {
				t.Fatalf("NeedsAttention changes %+v: want on at the first failure (%v), off once recorded (%v)", a, rs[0].At.Sub(t0), rs[refusals].At.Sub(t0))
			}
			if !before && len(a) != 2 {
				t.Fatalf("NeedsAttention changes %+v: want on, then off only once the report is recorded", a)
			}
			if before && len(a) <= 2 {
				t.Fatalf("NeedsAttention changes %+v: runs before the change clear it at the second void", a)
			}
		})
	}
}

// A run canceled (by an operator) while it waits for a capture ends at
// once, canceled, without a call to the gateway or a save.
func TestCanceledRunEndsWithoutTouchingTheGateway(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := "hardened"
		if legacy {
			name = "legacy"
		}
		t.Run(name, func(t *testing.T) {
			var h *harness
			if legacy {
				h = legacyHarness(t, true)
				authorizeLegacy(h)
			} else {
				h = newHarness(t, input(true))
				authorize(h)
			}
			h.at(time.Hour, func() { h.env.CancelWorkflow() })
			if legacy {
				h.runLegacy()
			} else {
				h.run()
			}
			if !h.env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			var canceled *temporal.CanceledError
			if err := h.env.GetWorkflowError(); !errors.As(err, &canceled) {
				t.Fatalf("workflow error %v, want canceled", err)
			}
			if st := h.statuses(); len(st) != 1 || st[0] != entpayment.StatusRequiresCapture {
				t.Fatalf("saved statuses %v", st)
			}
			if h.capture.n()+h.cancel.n()+h.retrieve.n() != 0 {
				t.Fatalf("gateway calls after the cancel: %d captures, %d cancels, %d retrieves", h.capture.n(), h.cancel.n(), h.retrieve.n())
			}
		})
	}
}

// The rounds of an unanswered create that start before the first hour is
// over are fast ones; one that starts exactly an hour after the charge
// began is slow: no customer waits any longer, and a gateway that holds no
// intent then fails the payment.
func TestRoundStartingExactlyAfterTheFirstHourIsSlow(t *testing.T) {
	h := newHarness(t, input(false))
	// Every create fails at once (an answer that is not worth retrying
	// within the round): a round ends as it starts, and the next starts
	// FastRetryInterval later, so one starts exactly at t0+1h.
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("create", 1) {
			t.Errorf("create call %d has key %q", n, c.Req.IdempotencyKey)
		}
		return gateway.Result{}, temporal.NewNonRetryableApplicationError("bad gateway", "GatewayUnavailable", nil)
	})
	h.onFind(func(int, call[gateway.FindRequest]) (gateway.Found, error) { return gateway.Found{}, nil })
	h.onVoid(func(int, call[gateway.VoidRequest]) (gateway.Found, error) { return gateway.Found{}, nil })
	h.run()
	rec := h.result()
	hour := t0.Add(presets.CustomerWaiting)
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "gateway_unreachable" || !rec.UpdatedAt.Equal(hour) {
		t.Fatalf("record %+v, want failed at %v", rec, presets.CustomerWaiting)
	}
	rounds := h.scheduledOf("CreatePayment")
	if n := int(presets.CustomerWaiting/presets.FastRetryInterval) + 1; len(rounds) != n {
		t.Fatalf("%d rounds, want %d", len(rounds), n)
	}
	for i, r := range rounds {
		at := t0.Add(time.Duration(i) * presets.FastRetryInterval)
		interval, round := presets.FastRetryInterval, presets.FastRound
		if !at.Before(hour) {
			interval, round = presets.SlowRetryInterval, presets.SlowRound
		}
		if !r.At.Equal(at) || r.Opts.ScheduleToCloseTimeout != round || r.Opts.RetryPolicy == nil || r.Opts.RetryPolicy.MaximumInterval != interval {
			t.Fatalf("round %d at %v with %v/%v, want at %v with %v/%v", i, r.At.Sub(t0), r.Opts.ScheduleToCloseTimeout,
				r.Opts.RetryPolicy, at.Sub(t0), round, interval)
		}
	}
	// No attention: the payment failed as the first slow round's lookup
	// answered.
	for _, s := range h.accepted() {
		if s.Rec.NeedsAttention {
			t.Fatalf("save with NeedsAttention %+v", s)
		}
	}
}

// An event that settles a pending capture clears the step and the
// NeedsAttention mark at once, is not reported as a failed save, and its
// redelivery is recognized as seen.
func TestEventSettlingAPendingCaptureClearsItAtOnce(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCapture(func(int, call[gateway.CaptureRequest]) (gateway.Result, error) {
		return gateway.Result{}, unavailable()
	})
	h.onRetrieve(func(int, call[string]) (gateway.Result, error) { return authorized("pi_m"), nil })
	capture := h.update(time.Hour, UpdateCapture, CaptureRequest{})
	at := time.Hour + 150*time.Second
	ev := GatewayEvent{EventID: "evt_cap", Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: amount}
	h.signal(at, ev)
	h.signal(at+time.Second, ev)
	h.run()
	rec := h.result()
	if errType(capture.err) != ErrTypeUnconfirmed {
		t.Fatalf("capture update %+v", capture)
	}
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || rec.NeedsAttention || !rec.UpdatedAt.Equal(t0.Add(at)) {
		t.Fatalf("record %+v", rec)
	}
	if a := h.attentionChanges(); len(a) != 2 || !a[0].On || !a[0].At.Equal(capture.at) || a[1].On || !a[1].At.Equal(t0.Add(at)) {
		t.Fatalf("NeedsAttention changes %+v, want on at %v and off at %v", a, capture.at.Sub(t0), at)
	}
	if h.retrieve.n() != 1 {
		t.Fatalf("%d retrieves: the settled step was looked at again", h.retrieve.n())
	}
	if logged := h.log.find("ERROR", "saving a gateway event failed"); len(logged) != 0 {
		t.Fatalf("logged %+v", logged)
	}
	if logged := h.log.find("INFO", "agrees"); len(logged) != 0 {
		t.Fatalf("the redelivery was handled as a new event: %+v", logged)
	}
	wantSavesAt := []time.Time{t0, capture.at, t0.Add(at)}
	if saves := h.accepted(); len(saves) != 3 || !saves[1].At.Equal(wantSavesAt[1]) || !saves[2].At.Equal(wantSavesAt[2]) {
		t.Fatalf("saves %+v", saves)
	}
}

// A capture the gateway refuses outright, with the authorization standing,
// saves nothing: the payment is as recorded.
func TestRefusedCaptureSavesNothing(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCapture(func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		if n == 1 {
			return gateway.Result{}, invalidGatewayError("amount_too_large")
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: c.Req.Amount}, nil
	})
	retrieveAuthorized(h)
	first := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: 100})
	second := h.update(2*time.Hour, UpdateCapture, CaptureRequest{Amount: 100})
	h.run()
	rec := h.result()
	if errType(first.err) != ErrTypeFailedPrecondition || first.rec.Version != 1 || second.err != nil {
		t.Fatalf("captures %+v, %+v", first, second)
	}
	saves := h.allSaves()
	if len(saves) != 2 || !saves[1].At.Equal(t0.Add(2*time.Hour)) || rec.Version != 2 || rec.AmountReceived != 100 {
		t.Fatalf("saves %+v, record %+v", saves, rec)
	}
	if a := h.attentionChanges(); len(a) != 0 {
		t.Fatalf("NeedsAttention changes %+v", a)
	}
}

// A step the gateway leaves unconfirmed several times in a row marks the
// payment once: the mark's save is not repeated while its reason stands.
func TestStepUnconfirmedAgainIsMarkedOnce(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCapture(func(_ int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("capture", 3) {
			return gateway.Result{}, unavailable()
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: c.Req.Amount}, nil
	})
	retrieveAuthorized(h)
	capture := h.update(time.Hour, UpdateCapture, CaptureRequest{})
	h.run()
	rec := h.result()
	if errType(capture.err) != ErrTypeUnconfirmed || rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || rec.Version != 3 {
		t.Fatalf("capture %+v, record %+v", capture, rec)
	}
	checkSequentialKeys(t, h, "capture", keysOf(h.capture.all(), captureKey), 3)
	marked := attentionSaves(h)
	if len(marked) != 1 || !marked[0].At.Equal(capture.at) || !strings.Contains(marked[0].Rec.AttentionReason, "capture") {
		t.Fatalf("saves with NeedsAttention %+v, want one when the capture was first unconfirmed", marked)
	}
	if st := h.statuses(); len(st) != 3 {
		t.Fatalf("saved statuses %v", st)
	}
}

// A customer action whose state the store first refused, and took a
// minute later, still expires ActionTTL after the gateway asked for it.
func TestActionRecordedLateExpiresOnTime(t *testing.T) {
	h := newHarness(t, input(false))
	h.ref = "pi_3ds"
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return requiresAction("pi_3ds"), nil })
	refused := 0
	h.refuseSave = func(rec store.PaymentRecord, _ *store.Journal) error {
		if rec.Status == entpayment.StatusRequiresAction && refused == 0 {
			refused++
			return storeRefusal()
		}
		return nil
	}
	h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
		if n != 1 || c.Req.IdempotencyKey != h.key("expire", 1) || c.Req.Reason != "action_expired" || !c.At.Equal(t0.Add(ActionTTL)) {
			t.Errorf("cancel %d %+v at %v, want the expiry at %v", n, c.Req, c.At.Sub(t0), ActionTTL)
		}
		return gateway.Result{Reference: "pi_3ds", Status: gateway.StatusCanceled}, nil
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "action_expired" || !rec.UpdatedAt.Equal(t0.Add(ActionTTL)) {
		t.Fatalf("record %+v", rec)
	}
	saves := h.accepted()
	if len(saves) != 2 || !saves[0].At.Equal(t0.Add(presets.StepRetryDelay(1))) || saves[0].Rec.NextActionExpiresAt == nil ||
		!saves[0].Rec.NextActionExpiresAt.Equal(t0.Add(ActionTTL)) {
		t.Fatalf("saves %+v", saves)
	}
	went := h.log.find("INFO", "a refused save went through")
	if len(went) != 1 || went[0].kv("tries") != 2 {
		t.Fatalf("logged %+v, want one entry with tries 2", went)
	}
}

// A run canceled while a capture is at the gateway ends canceled.
func TestRunCanceledDuringACaptureEnds(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCapture(func(int, call[gateway.CaptureRequest]) (gateway.Result, error) {
		return gateway.Result{}, unavailable()
	})
	retrieveAuthorized(h)
	h.update(time.Hour, UpdateCapture, CaptureRequest{})
	h.at(time.Hour+time.Second, func() { h.env.CancelWorkflow() })
	h.run()
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var canceled *temporal.CanceledError
	if err := h.env.GetWorkflowError(); !errors.As(err, &canceled) {
		t.Fatalf("workflow error %v, want canceled", err)
	}
	for _, c := range h.capture.live() {
		if c.At.After(t0.Add(time.Hour + time.Second)) {
			t.Fatalf("capture at %v, after the run was canceled", c.At.Sub(t0))
		}
	}
	if st := h.statuses(); st[len(st)-1] != entpayment.StatusRequiresCapture {
		t.Fatalf("saved statuses %v", st)
	}
}
