package payment

// Unit tests of reconciliation (issue 6, item 2): gateway reports that
// contradict a finished payment, handled by the payment's own workflow
// while it runs and by the Reconcile workflow once it has ended.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

func TestContradiction(t *testing.T) {
	reported := []gateway.Status{"", gateway.StatusProcessing, gateway.StatusRequiresAction, gateway.StatusRequiresCapture,
		gateway.StatusSucceeded, gateway.StatusFailed, gateway.StatusCanceled}
	want := map[entpayment.Status]map[gateway.Status]reconciliationcase.Kind{
		entpayment.StatusFailed: {
			gateway.StatusSucceeded: reconciliationcase.KindUnexpectedCharge, gateway.StatusRequiresCapture: reconciliationcase.KindUnexpectedCharge,
		},
		entpayment.StatusCanceled: {
			gateway.StatusSucceeded: reconciliationcase.KindUnexpectedCharge, gateway.StatusRequiresCapture: reconciliationcase.KindUnexpectedCharge,
		},
		entpayment.StatusSucceeded: {
			gateway.StatusFailed: reconciliationcase.KindContradictingState, gateway.StatusCanceled: reconciliationcase.KindContradictingState,
		},
		entpayment.StatusProcessing:      {},
		entpayment.StatusRequiresAction:  {},
		entpayment.StatusRequiresCapture: {},
	}
	for recorded, kinds := range want {
		for _, rep := range reported {
			if got := Contradiction(recorded, rep); got != kinds[rep] {
				t.Errorf("Contradiction(%s, %q) = %q, want %q", recorded, rep, got, kinds[rep])
			}
		}
	}
}

func TestCaseID(t *testing.T) {
	p := store.PaymentRecord{ID: "pay_01abc"}
	if got := caseID(p, reconciliationcase.KindUnexpectedCharge, GatewayEvent{EventID: "evt_1"}); got != "rcn_01abc_charge" {
		t.Fatalf("unexpected charge case %q", got)
	}
	// One unexpected-charge case per payment, whatever reported it.
	if a, b := caseID(p, reconciliationcase.KindUnexpectedCharge, GatewayEvent{EventID: "evt_1"}),
		caseID(p, reconciliationcase.KindUnexpectedCharge, GatewayEvent{EventID: "void/pi_1"}); a != b {
		t.Fatalf("%q != %q", a, b)
	}
	sum := sha256.Sum256([]byte("evt_2"))
	want := "rcn_01abc_" + hex.EncodeToString(sum[:6])
	got := caseID(p, reconciliationcase.KindContradictingState, GatewayEvent{EventID: "evt_2"})
	if got != want || len(got) != len("rcn_01abc_")+12 {
		t.Fatalf("contradicting state case %q, want %q", got, want)
	}
	// One contradicting-state case per report: the same event gives the
	// same id, another event another.
	if again := caseID(p, reconciliationcase.KindContradictingState, GatewayEvent{EventID: "evt_2"}); again != got {
		t.Fatalf("%q != %q", again, got)
	}
	if other := caseID(p, reconciliationcase.KindContradictingState, GatewayEvent{EventID: "evt_3"}); other == got {
		t.Fatalf("two events, one case %q", other)
	}
}

func TestUnexpectedJournalsAreBalancedMirrors(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(&recLogger{})
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.ExecuteWorkflow(func(ctx workflow.Context) ([]store.Journal, error) {
		p := store.PaymentRecord{ID: payID, Currency: currency, Gateway: "stripe", CustomerID: ""}
		return []store.Journal{unexpectedJournal(ctx, p, 1234, false), unexpectedJournal(ctx, p, 1234, true)}, nil
	})
	var js []store.Journal
	if err := env.GetWorkflowResult(&js); err != nil {
		t.Fatal(err)
	}
	charge, refund := js[0], js[1]
	if charge.ID != payID+"/unexpected_charge" || refund.ID != payID+"/unexpected_refund" {
		t.Fatalf("ids %q %q", charge.ID, refund.ID)
	}
	for _, j := range js {
		checkBalanced(t, j, 1234)
		if j.PaymentID != payID || j.Currency != currency || !j.At.Equal(t0) || len(j.Lines) != 2 {
			t.Fatalf("journal %+v", j)
		}
	}
	// The charge moves the guest's money into the gateway's clearing
	// account; the refund moves it back.
	if charge.Lines[0].Account != "customer_funding:guest" || charge.Lines[0].Direction != "debit" ||
		charge.Lines[1].Account != "gateway_clearing:stripe" || charge.Lines[1].Direction != "credit" {
		t.Fatalf("charge %+v", charge.Lines)
	}
	if refund.Lines[0].Account != "gateway_clearing:stripe" || refund.Lines[0].Direction != "debit" ||
		refund.Lines[1].Account != "customer_funding:guest" || refund.Lines[1].Direction != "credit" {
		t.Fatalf("refund %+v", refund.Lines)
	}
}

// A success reported for a payment recorded FAILED, while its workflow
// still runs (waiting to send the void again): refunded, both movements in
// the ledger, a case; the payment stays FAILED.
func TestSuccessEventForAFailedPaymentIsRefunded(t *testing.T) {
	h := newHarness(t, input(false))
	h.setWorkflowID(WorkflowID(payID))
	noIntent(h)
	ev := GatewayEvent{EventID: "evt_late", Type: "payment_intent.succeeded", Reference: "pi_evt", Status: gateway.StatusSucceeded, AmountReceived: amount}
	h.onVoid(func(n int, c call[gateway.VoidRequest]) (gateway.Found, error) {
		if n == 1 {
			// The webhook arrives a minute after the void, twice.
			h.env.RegisterDelayedCallback(func() {
				h.env.SignalWorkflow(SignalGatewayEvent, ev)
				h.env.SignalWorkflow(SignalGatewayEvent, ev)
			}, time.Minute)
		}
		return gateway.Found{}, nil
	})
	h.onRefund(func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		if c.Req.IdempotencyKey != WorkflowID(payID)+"/unexpected_refund/pi_evt" || c.Req.Reference != "pi_evt" || c.Req.Amount != amount {
			t.Errorf("refund %+v", c.Req)
		}
		return gateway.RefundResult{Reference: "re_1", Status: gateway.RefundSucceeded, Amount: amount}, nil
	})
	h.onRecordReconciliation(nil)
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "gateway_unreachable" {
		t.Fatalf("record %+v", rec)
	}
	if h.refund.n() != 1 {
		t.Fatalf("%d refunds", h.refund.n())
	}
	rs := h.allRecons()
	if len(rs) != 1 {
		t.Fatalf("reconciliations %+v", rs)
	}
	checkUnexpectedCharge(t, rs[0], "pi_evt", "refunded", "re_1", entpayment.StatusFailed)
	if rs[0].Case.EventID != "evt_late" || !rs[0].At.Equal(h.void.all()[0].At.Add(time.Minute)) {
		t.Fatalf("case %+v at %v", rs[0].Case, rs[0].At)
	}
	if h.void.n() != 2 {
		t.Fatalf("%d voids", h.void.n())
	}
	if len(h.journals()) != 0 {
		t.Fatalf("payment journals %+v", h.journals())
	}
}

// An event that agrees with the finished payment changes nothing.
func TestAgreeingLateEventDoesNothing(t *testing.T) {
	h := newHarness(t, input(false))
	noIntent(h)
	h.onVoid(func(n int, c call[gateway.VoidRequest]) (gateway.Found, error) {
		if n == 1 {
			h.env.RegisterDelayedCallback(func() {
				h.env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_f", Status: gateway.StatusFailed, FailureCode: "card_declined"})
				h.env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_c", Status: gateway.StatusCanceled})
			}, time.Minute)
		}
		return gateway.Found{}, nil
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "gateway_unreachable" || len(h.accepted()) != 2 {
		t.Fatalf("record %+v, %d saves", rec, len(h.accepted()))
	}
	if logged := h.log.find("INFO", "agrees"); len(logged) != 2 {
		t.Fatalf("logged %+v", logged)
	}
}

// A report about a payment that is settled while the report is in
// flight: the event arrives while the step that finishes the payment is
// at the gateway, and must not be lost when the workflow ends.
func TestReportArrivingWhileThePaymentFinishesIsReconciled(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ev       GatewayEvent
		step     string // the update in flight
		kind     reconciliationcase.Kind
		recorded entpayment.Status
	}{
		{"failure reported during the capture", GatewayEvent{EventID: "evt_fail", Status: gateway.StatusFailed, FailureCode: "card_declined"},
			UpdateCapture, reconciliationcase.KindContradictingState, entpayment.StatusSucceeded},
		{"cancel reported during the capture", GatewayEvent{EventID: "evt_cancel", Status: gateway.StatusCanceled},
			UpdateCapture, reconciliationcase.KindContradictingState, entpayment.StatusSucceeded},
		{"success reported during the cancel", GatewayEvent{EventID: "evt_ok", Status: gateway.StatusSucceeded, AmountReceived: amount},
			UpdateCancel, reconciliationcase.KindUnexpectedCharge, entpayment.StatusCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(true))
			h.setWorkflowID(WorkflowID(payID))
			authorize(h)
			ev := tc.ev
			ev.Reference = "pi_m"
			if tc.step == UpdateCapture {
				h.onCapture(func(_ int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
					h.env.SignalWorkflow(SignalGatewayEvent, ev)
					return gateway.Result{Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: c.Req.Amount}, nil
				})
				h.update(time.Hour, UpdateCapture, CaptureRequest{})
			} else {
				h.onCancel(func(int, call[gateway.CancelRequest]) (gateway.Result, error) {
					h.env.SignalWorkflow(SignalGatewayEvent, ev)
					return gateway.Result{Reference: "pi_m", Status: gateway.StatusCanceled}, nil
				})
				h.update(time.Hour, UpdateCancel, CancelRequest{})
				h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
					return gateway.RefundResult{Reference: "re_1", Status: gateway.RefundSucceeded, Amount: amount}, nil
				})
			}
			h.onRecordReconciliation(nil)
			h.run()
			rec := h.result()
			if rec.Status != tc.recorded {
				t.Fatalf("record %+v", rec)
			}
			rs := h.allRecons()
			if len(rs) != 1 {
				t.Fatalf("the report was lost: reconciliations %+v", rs)
			}
			c := rs[0].Case
			if c.Kind != tc.kind || c.EventID != ev.EventID || c.PaymentStatus != string(tc.recorded) || c.GatewayStatus != string(ev.Status) {
				t.Fatalf("case %+v", c)
			}
			if tc.kind == reconciliationcase.KindContradictingState {
				// Recorded for a person: no journal, no gateway call (Refund
				// and Void are not mocked).
				if len(rs[0].Journals) != 0 || c.Action != "none" || c.Amount != amount || c.ID != caseID(rec, tc.kind, ev) {
					t.Fatalf("reconciliation %+v", rs[0])
				}
			} else {
				checkUnexpectedCharge(t, rs[0], "pi_m", "refunded", "re_1", entpayment.StatusCanceled)
			}
		})
	}
}

// reconcileHarness runs the Reconcile workflow for a payment recorded as
// p; the events are delivered as the run starts (signal-with-start).
func reconcileHarness(t *testing.T, p store.PaymentRecord, events ...GatewayEvent) *harness {
	h := newHarness(t, input(false))
	h.setWorkflowID(ReconcileWorkflowID(p.ID))
	h.env.OnActivity(db.LoadPayment, mock.Anything, mock.Anything).Return(func(ctx context.Context, id string) (store.PaymentRecord, error) {
		if id != p.ID {
			t.Errorf("load of %q", id)
		}
		for _, ev := range events {
			h.env.SignalWorkflow(SignalGatewayEvent, ev)
		}
		return p, nil
	})
	return h
}

func (h *harness) runReconcile() error {
	h.forbidUnmocked()
	h.env.ExecuteWorkflow(Reconcile, ReconcileInput{PaymentID: payID})
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("the reconciliation did not complete")
	}
	if len(h.allSaves()) != 0 {
		h.t.Fatalf("the reconciliation saved the payment: %+v", h.allSaves())
	}
	return h.env.GetWorkflowError()
}

// recorded is a finished payment as the store holds it.
func recorded(st entpayment.Status) store.PaymentRecord {
	p := store.PaymentRecord{ID: payID, MerchantID: "acct_m", CustomerID: "acct_c", Amount: amount, Currency: currency,
		Status: st, Gateway: "sandbox", GatewayReference: "pi_x", WorkflowID: WorkflowID(payID), Version: 3}
	if st == entpayment.StatusSucceeded {
		p.AmountReceived = amount
	} else {
		p.FailureCode = "gateway_unreachable"
	}
	return p
}

func refundOK(h *harness, ref string) {
	h.onRefund(func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		want := gateway.RefundRequest{Gateway: "sandbox", IdempotencyKey: WorkflowID(payID) + "/unexpected_refund/" + ref,
			PaymentID: payID, Reference: ref, Amount: amount, Currency: currency}
		if c.Req != want {
			h.t.Errorf("refund %d: %+v, want %+v", n, c.Req, want)
		}
		return gateway.RefundResult{Reference: "re_1", Status: gateway.RefundSucceeded, Amount: amount}, nil
	})
}

func TestReconcileRefundsOnceWhenTheEventIsDeliveredTwice(t *testing.T) {
	ev := GatewayEvent{EventID: "evt_1", Type: "payment_intent.succeeded", Reference: "pi_late", Status: gateway.StatusSucceeded, AmountReceived: amount}
	h := reconcileHarness(t, recorded(entpayment.StatusFailed), ev, ev)
	// Delivered once more while the refund is at the gateway.
	h.onRefund(func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		if c.Req.IdempotencyKey != WorkflowID(payID)+"/unexpected_refund/pi_late" || c.Req.Amount != amount || c.Req.Reference != "pi_late" {
			t.Errorf("refund %+v", c.Req)
		}
		h.env.SignalWorkflow(SignalGatewayEvent, ev)
		return gateway.RefundResult{Reference: "re_1", Status: gateway.RefundSucceeded, Amount: amount}, nil
	})
	h.onRecordReconciliation(nil)
	if err := h.runReconcile(); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if h.refund.n() != 1 {
		t.Fatalf("%d refunds", h.refund.n())
	}
	rs := h.allRecons()
	if len(rs) != 1 {
		t.Fatalf("reconciliations %+v", rs)
	}
	checkUnexpectedCharge(t, rs[0], "pi_late", "refunded", "re_1", entpayment.StatusFailed)
}

func TestReconcileVoidsAnAuthorizationHeldForAFailedPayment(t *testing.T) {
	ev := GatewayEvent{EventID: "evt_auth", Reference: "pi_late", Status: gateway.StatusRequiresCapture, AmountCapturable: amount}
	h := reconcileHarness(t, recorded(entpayment.StatusCanceled), ev)
	h.onVoid(func(n int, c call[gateway.VoidRequest]) (gateway.Found, error) {
		want := gateway.VoidRequest{Gateway: "sandbox", IdempotencyKey: WorkflowID(payID) + "/reconcile_void/pi_late",
			PaymentID: payID, Reference: "pi_late", Currency: currency, Reason: "abandoned"}
		if n != 1 || c.Req != want {
			t.Errorf("void %d: %+v, want %+v", n, c.Req, want)
		}
		return gateway.Found{Exists: true, Result: gateway.Result{Reference: "pi_late", Status: gateway.StatusCanceled}}, nil
	})
	h.onRecordReconciliation(nil)
	if err := h.runReconcile(); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	rs := h.allRecons()
	if len(rs) != 1 {
		t.Fatalf("reconciliations %+v", rs)
	}
	c := rs[0].Case
	if c.Kind != reconciliationcase.KindUnexpectedCharge || c.Action != "voided" || c.Amount != amount || c.GatewayReference != "pi_late" ||
		c.ID != "rcn_01test_charge" || len(rs[0].Journals) != 0 {
		t.Fatalf("reconciliation %+v", rs[0])
	}
}

func TestReconcileRefundsAnAuthorizationCapturedBeforeTheVoid(t *testing.T) {
	ev := GatewayEvent{EventID: "evt_auth", Reference: "pi_late", Status: gateway.StatusRequiresCapture, AmountCapturable: amount}
	h := reconcileHarness(t, recorded(entpayment.StatusFailed), ev)
	h.onVoid(func(int, call[gateway.VoidRequest]) (gateway.Found, error) {
		return gateway.Found{Exists: true, Result: succeeded("pi_late", amount)}, nil
	})
	refundOK(h, "pi_late")
	h.onRecordReconciliation(nil)
	if err := h.runReconcile(); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	rs := h.allRecons()
	if len(rs) != 1 || h.refund.n() != 1 {
		t.Fatalf("reconciliations %+v, %d refunds", rs, h.refund.n())
	}
	checkUnexpectedCharge(t, rs[0], "pi_late", "refunded", "re_1", entpayment.StatusFailed)
}

func TestReconcileRetriesAnUnansweredRefundOnATimer(t *testing.T) {
	ev := GatewayEvent{EventID: "evt_1", Reference: "pi_late", Status: gateway.StatusSucceeded, AmountReceived: amount}
	h := reconcileHarness(t, recorded(entpayment.StatusFailed), ev)
	up := t0.Add(5 * time.Minute)
	h.onRefund(func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		if c.Req.IdempotencyKey != WorkflowID(payID)+"/unexpected_refund/pi_late" {
			t.Errorf("refund key %q", c.Req.IdempotencyKey)
		}
		if c.At.Before(up) {
			return gateway.RefundResult{}, unavailable()
		}
		return gateway.RefundResult{Reference: "re_1", Status: gateway.RefundSucceeded, Amount: amount}, nil
	})
	h.onRecordReconciliation(nil)
	if err := h.runReconcile(); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	spans := activitySpans(h.refund.all())
	// Two minutes of retries, then 1 minute, 2 more minutes of retries, 5
	// minutes: the third refund activity answers.
	if len(spans) != 3 {
		t.Fatalf("refund activities %v", spans)
	}
	for i := 1; i < len(spans); i++ {
		if want := spans[i-1][1].Add(presets.StepRetryDelay(i)); !spans[i][0].Equal(want) {
			t.Fatalf("refund %d at %v, want %v", i, spans[i][0].Sub(t0), want.Sub(t0))
		}
	}
	rs := h.allRecons()
	if len(rs) != 1 {
		t.Fatalf("reconciliations %+v", rs)
	}
	checkUnexpectedCharge(t, rs[0], "pi_late", "refunded", "re_1", entpayment.StatusFailed)
}

func TestReconcileRecordsWhatTheRefundCameTo(t *testing.T) {
	for _, tc := range []struct {
		name   string
		res    gateway.RefundResult
		err    error
		action string
		ref    string
	}{
		{"pending", gateway.RefundResult{Reference: "re_p", Status: gateway.RefundPending}, nil, "refund_pending", "re_p"},
		{"failed", gateway.RefundResult{Reference: "re_f", Status: gateway.RefundFailed, FailureCode: "expired_or_canceled_card"}, nil, "refund_failed", "re_f"},
		{"canceled", gateway.RefundResult{Reference: "re_c", Status: gateway.RefundCanceled}, nil, "refund_failed", "re_c"},
		{"refused", gateway.RefundResult{}, invalidGatewayError("charge_disputed"), "refund_refused", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := GatewayEvent{EventID: "evt_1", Reference: "pi_late", Status: gateway.StatusSucceeded} // no amount: the payment's
			h := reconcileHarness(t, recorded(entpayment.StatusFailed), ev)
			h.onRefund(func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error) {
				if c.Req.Amount != amount {
					t.Errorf("refund of %d", c.Req.Amount)
				}
				return tc.res, tc.err
			})
			h.onRecordReconciliation(nil)
			if err := h.runReconcile(); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			rs := h.allRecons()
			if len(rs) != 1 || h.refund.n() != 1 {
				t.Fatalf("reconciliations %+v, %d refunds", rs, h.refund.n())
			}
			checkUnexpectedCharge(t, rs[0], "pi_late", tc.action, tc.ref, entpayment.StatusFailed)
			if tc.action != "refund_pending" && !strings.Contains(rs[0].Case.Details, "by hand") {
				t.Fatalf("details %q", rs[0].Case.Details)
			}
		})
	}
}

func TestReconcileRecordsAContradictingStateWithoutMovingMoney(t *testing.T) {
	ev := GatewayEvent{EventID: "evt_fail", Status: gateway.StatusFailed, FailureCode: "card_declined"}
	h := reconcileHarness(t, recorded(entpayment.StatusSucceeded), ev)
	h.onRecordReconciliation(nil)
	if err := h.runReconcile(); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	rs := h.allRecons()
	if len(rs) != 1 {
		t.Fatalf("reconciliations %+v", rs)
	}
	c := rs[0].Case
	if c.Kind != reconciliationcase.KindContradictingState || c.Action != "none" || c.GatewayReference != "pi_x" || c.Amount != amount ||
		c.ID != caseID(recorded(entpayment.StatusSucceeded), c.Kind, ev) || len(rs[0].Journals) != 0 {
		t.Fatalf("reconciliation %+v", rs[0])
	}
}

func TestReconcileIgnoresAgreeingReports(t *testing.T) {
	h := reconcileHarness(t, recorded(entpayment.StatusSucceeded),
		GatewayEvent{EventID: "evt_ok", Status: gateway.StatusSucceeded, AmountReceived: amount})
	if err := h.runReconcile(); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
}

func TestReconcileRefusesAPaymentThatIsNotFinished(t *testing.T) {
	for _, st := range []entpayment.Status{entpayment.StatusProcessing, entpayment.StatusRequiresAction, entpayment.StatusRequiresCapture} {
		t.Run(string(st), func(t *testing.T) {
			h := reconcileHarness(t, recorded(st), GatewayEvent{EventID: "evt_1", Status: gateway.StatusSucceeded})
			err := h.runReconcile()
			if errType(err) != "NotFinished" || !strings.Contains(err.Error(), "not finished") || !strings.Contains(err.Error(), payID) {
				t.Fatalf("error %v", err)
			}
		})
	}
}

// A reconciliation the store refuses is done again on a timer, with the
// same keys: the refund is not made twice.
func TestReconciliationRefusedByTheStoreIsRetried(t *testing.T) {
	h := newHarness(t, input(false))
	h.setWorkflowID(WorkflowID(payID))
	noIntent(h)
	h.onVoid(func(int, call[gateway.VoidRequest]) (gateway.Found, error) {
		return gateway.Found{Exists: true, Result: succeeded("pi_late", amount)}, nil
	})
	refundOK(h, "pi_late")
	h.onRecordReconciliation(func(n int) error {
		if n == 1 {
			return storeRefusal()
		}
		return nil
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusFailed {
		t.Fatalf("record %+v", rec)
	}
	rs := h.allRecons()
	if len(rs) != 2 || h.refund.n() != 2 {
		t.Fatalf("%d reconciliations, %d refunds", len(rs), h.refund.n())
	}
	if !rs[1].At.Equal(rs[0].At.Add(presets.StepRetryDelay(1))) {
		t.Fatalf("retried at %v, refused at %v", rs[1].At.Sub(t0), rs[0].At.Sub(t0))
	}
	for _, r := range rs {
		checkUnexpectedCharge(t, r, "pi_late", "refunded", "re_1", entpayment.StatusFailed)
	}
	// Set when the store refused it, cleared once it went through (the
	// workflow clears it only after the void it still had scheduled; see
	// the report).
	lastVoid := h.void.all()[h.void.n()-1].At
	if a := h.attentionChanges(); len(a) != 2 || !a[0].On || !a[0].At.Equal(rs[0].At) || a[1].On || a[1].At.Before(rs[1].At) || a[1].At.After(lastVoid) {
		t.Fatalf("NeedsAttention changes %+v", a)
	}
}
