package payment

// Unit tests of the payment workflow's main paths (versionHardened, the
// version the test suite takes): the first charge, capture, cancel,
// 3-D Secure, the expiry timers and the guards of gateway events. The
// harness (harness_test.go) records every save and gateway call; gateway
// methods a test does not mock fail it when called.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/ent/ledgerentry"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
)

func TestAutomaticCaptureOnTheFastPath(t *testing.T) {
	h := newHarness(t, input(false))
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("create", 1) {
			t.Errorf("create key %q, want %q", c.Req.IdempotencyKey, h.key("create", 1))
		}
		if !c.Local || !c.At.Equal(t0) {
			t.Errorf("create call %d: local %v at %v, want the fast path at the start", n, c.Local, c.At)
		}
		return succeeded("pi_1", amount), nil
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || rec.AmountCapturable != 0 ||
		rec.GatewayReference != "pi_1" || rec.MethodLast4 != "4242" || rec.MethodBrand != "visa" || rec.MethodExpYear != 2030 {
		t.Fatalf("final record %+v", rec)
	}
	if rec.Version != 1 || rec.NeedsAttention || rec.CaptureMethod != entpayment.CaptureMethodAutomatic {
		t.Fatalf("final record %+v", rec)
	}
	// The fast path answered within the first workflow task: one write,
	// with the one journal of the money that moved.
	if s := h.allSaves(); len(s) != 1 {
		t.Fatalf("%d saves, want 1 on the fast path", len(s))
	}
	js := h.journals()
	if len(js) != 1 {
		t.Fatalf("journals %+v, want exactly one", js)
	}
	want := []store.JournalLine{
		{Account: "customer_funding:acct_c", Direction: ledgerentry.DirectionDebit, Amount: amount},
		{Account: "gateway_clearing:sandbox", Direction: ledgerentry.DirectionCredit, Amount: amount},
		{Account: "gateway_clearing:sandbox", Direction: ledgerentry.DirectionDebit, Amount: amount},
		{Account: "merchant_balance:acct_m", Direction: ledgerentry.DirectionCredit, Amount: amount},
	}
	if j := js[0]; j.ID != payID+"/capture" || !reflect.DeepEqual(j.Lines, want) || !j.At.Equal(t0) {
		t.Fatalf("journal %+v", j)
	}
	if h.create.n() != 1 {
		t.Fatalf("%d create calls", h.create.n())
	}
}

func TestGuestJournalAndGatewayAmountDefault(t *testing.T) {
	in := input(false)
	in.CustomerID = ""
	h := newHarness(t, in)
	// A gateway that leaves amount_received empty: the whole amount moved.
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return succeeded("pi_1", 0), nil })
	h.run()
	rec := h.result()
	js := h.journals()
	if rec.AmountReceived != amount || len(js) != 1 || js[0].Lines[0].Account != "customer_funding:guest" {
		t.Fatalf("record %+v journals %+v", rec, js)
	}
}

func TestFallbackReusesTheFastPathKey(t *testing.T) {
	h := newHarness(t, input(false))
	h.onCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if n <= 3 {
			return gateway.Result{}, unavailable()
		}
		return succeeded("pi_3", amount), nil
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusSucceeded || rec.GatewayReference != "pi_3" {
		t.Fatalf("record %+v", rec)
	}
	cs := h.create.all()
	if len(cs) != 4 || !cs[0].Local || cs[1].Local || cs[3].Local || cs[3].Attempt != 3 {
		t.Fatalf("create calls %+v: want the fast path, then three attempts of one regular activity", cs)
	}
	// The same key on the fast path and on every attempt of the fallback:
	// nothing can be charged twice.
	for i, c := range cs {
		if c.Req.IdempotencyKey != h.key("create", 1) {
			t.Fatalf("create call %d has key %q, want %q", i, c.Req.IdempotencyKey, h.key("create", 1))
		}
	}
	// Recorded as processing before the retried call, so it can be read
	// while the gateway is down; then the final state, one journal.
	if st := h.statuses(); !reflect.DeepEqual(st, []entpayment.Status{entpayment.StatusProcessing, entpayment.StatusSucceeded}) {
		t.Fatalf("saved statuses %v", st)
	}
	if len(h.journals()) != 1 {
		t.Fatalf("journals %+v", h.journals())
	}
}

func TestDeclineFails(t *testing.T) {
	h := newHarness(t, input(false))
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) {
		return gateway.Result{Reference: "pi_2", Status: gateway.StatusFailed, FailureCode: "insufficient_funds", FailureMessage: "Your card has insufficient funds."}, nil
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "insufficient_funds" || rec.AmountReceived != 0 || rec.GatewayReference != "pi_2" {
		t.Fatalf("record %+v", rec)
	}
	if len(h.journals()) != 0 {
		t.Fatalf("a decline moved money: %+v", h.journals())
	}
}

func TestDeclineWithoutACodeIsAProcessingError(t *testing.T) {
	h := newHarness(t, input(false))
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) {
		return gateway.Result{Reference: "pi_2", Status: gateway.StatusFailed}, nil
	})
	h.run()
	if rec := h.result(); rec.Status != entpayment.StatusFailed || rec.FailureCode != "processing_error" {
		t.Fatalf("record %+v", rec)
	}
}

func TestInvalidCreateIsNotRetried(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transient int // fast-path and fallback failures before the refusal
		calls     int
		saves     []entpayment.Status
	}{
		{"fast path", 0, 1, []entpayment.Status{entpayment.StatusFailed}},
		{"fallback", 2, 3, []entpayment.Status{entpayment.StatusProcessing, entpayment.StatusFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(false))
			h.onCreate(func(n int, _ call[gateway.CreateRequest]) (gateway.Result, error) {
				if n <= tc.transient {
					return gateway.Result{}, unavailable()
				}
				return gateway.Result{}, invalidGatewayError("resource_missing")
			})
			h.run()
			rec := h.result()
			if h.create.n() != tc.calls || rec.Status != entpayment.StatusFailed || rec.FailureCode != "resource_missing" ||
				!strings.Contains(rec.FailureMessage, "resource_missing") || strings.Contains(rec.FailureMessage, "refused\"") {
				t.Fatalf("calls=%d record=%+v", h.create.n(), rec)
			}
			if st := h.statuses(); !reflect.DeepEqual(st, tc.saves) {
				t.Fatalf("saved statuses %v, want %v", st, tc.saves)
			}
		})
	}
}

func TestInvalidCreateWithoutDetails(t *testing.T) {
	h := newHarness(t, input(false))
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) {
		return gateway.Result{}, invalidGatewayError("")
	})
	h.run()
	if rec := h.result(); rec.FailureCode != "invalid_request" || rec.Status != entpayment.StatusFailed {
		t.Fatalf("record %+v", rec)
	}
}

// authorize mocks a create that authorizes (manual capture) with
// reference pi_m.
func authorize(h *harness) {
	h.ref = "pi_m"
	h.onCreate(func(_ int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if !c.Req.ManualCapture {
			h.t.Errorf("create without manual capture")
		}
		return authorized("pi_m"), nil
	})
}

// captureOK answers every capture with success, checking the key of call
// n is capture/keys[n-1].
func captureOK(h *harness, keys ...int) {
	h.onCapture(func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		if n > len(keys) {
			h.t.Errorf("capture call %d: %+v", n, c.Req)
		} else if c.Req.IdempotencyKey != h.key("capture", keys[n-1]) {
			h.t.Errorf("capture call %d has key %q, want %q", n, c.Req.IdempotencyKey, h.key("capture", keys[n-1]))
		}
		return gateway.Result{Reference: h.ref, Status: gateway.StatusSucceeded, AmountReceived: c.Req.Amount}, nil
	})
}

func TestCaptureOfExactlyTheAuthorizedAmount(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	captureOK(h, 1)
	over := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: amount + 1})
	exact := h.update(2*time.Hour, UpdateCapture, CaptureRequest{Amount: amount})
	h.run()
	rec := h.result()
	if errType(over.rejected) != ErrTypeFailedPrecondition || !strings.Contains(over.rejected.Error(), "only 5000 is authorized") {
		t.Fatalf("capture of %d: %+v, want rejected by the validator", amount+1, over)
	}
	if !exact.done || exact.err != nil || exact.rejected != nil || exact.rec.Status != entpayment.StatusSucceeded {
		t.Fatalf("capture of exactly the authorized amount: %+v", exact)
	}
	if cs := h.capture.all(); len(cs) != 1 || cs[0].Req.Amount != amount || !cs[0].At.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("capture calls %+v", cs)
	}
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || rec.AmountCapturable != 0 || rec.AuthorizationExpiresAt == nil {
		t.Fatalf("record %+v", rec)
	}
	if st := h.statuses(); !reflect.DeepEqual(st, []entpayment.Status{entpayment.StatusRequiresCapture, entpayment.StatusSucceeded}) {
		t.Fatalf("saved statuses %v", st)
	}
	if js := h.journals(); len(js) != 1 || js[0].Lines[0].Amount != amount {
		t.Fatalf("journals %+v", js)
	}
}

func TestCaptureOfZeroCapturesEverythingCapturable(t *testing.T) {
	h := newHarness(t, input(true))
	h.ref = "pi_m"
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) {
		r := authorized("pi_m")
		r.AmountCapturable = 4000 // the gateway authorized less
		return r, nil
	})
	captureOK(h, 1)
	over := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: 4001})
	all := h.update(2*time.Hour, UpdateCapture, CaptureRequest{})
	h.run()
	rec := h.result()
	if over.rejected == nil {
		t.Fatalf("capture above the capturable amount: %+v", over)
	}
	if all.err != nil || all.rejected != nil {
		t.Fatalf("capture of 0: %+v", all)
	}
	if cs := h.capture.all(); len(cs) != 1 || cs[0].Req.Amount != 4000 {
		t.Fatalf("capture calls %+v, want one of 4000", cs)
	}
	if rec.AmountReceived != 4000 {
		t.Fatalf("record %+v", rec)
	}
	if js := h.journals(); len(js) != 1 || js[0].Lines[0].Amount != 4000 {
		t.Fatalf("journals %+v", js)
	}
}

func TestPartialCapture(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	// The gateway leaves amount_received empty: the captured amount moved.
	h.onCapture(func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		if c.Req.Amount != 3000 || c.Req.IdempotencyKey != h.key("capture", 1) {
			t.Errorf("capture request %+v", c.Req)
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusSucceeded}, nil
	})
	neg := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: -1})
	ok := h.update(2*time.Hour, UpdateCapture, CaptureRequest{Amount: 3000})
	h.run()
	rec := h.result()
	if errType(neg.rejected) != ErrTypeInvalidArgument {
		t.Fatalf("capture of -1: %+v", neg)
	}
	if ok.err != nil || ok.rec.Status != entpayment.StatusSucceeded || ok.rec.AmountReceived != 3000 {
		t.Fatalf("capture: %+v", ok)
	}
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != 3000 || rec.AmountCapturable != 0 {
		t.Fatalf("record %+v", rec)
	}
	js := h.journals()
	if len(js) != 1 {
		t.Fatalf("journals %+v", js)
	}
	checkBalanced(t, js[0], 3000)
}

func TestCaptureRefusedByTheGatewayKeepsTheAuthorizationAndTheNextUsesANewKey(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCapture(func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("capture", n) {
			t.Errorf("capture call %d has key %q, want %q", n, c.Req.IdempotencyKey, h.key("capture", n))
		}
		if n == 1 {
			return gateway.Result{}, invalidGatewayError("amount_too_large")
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: c.Req.Amount}, nil
	})
	// After the refusal the intent is looked at: the authorization stands.
	h.onRetrieve(func(int, call[string]) (gateway.Result, error) { return authorized("pi_m"), nil })
	first := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: 100})
	h.at(90*time.Minute, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresCapture || got.AmountCapturable != amount || got.NeedsAttention {
			t.Errorf("after a refused capture: %+v", got)
		}
	})
	second := h.update(2*time.Hour, UpdateCapture, CaptureRequest{Amount: 100})
	h.run()
	rec := h.result()
	if errType(first.err) != ErrTypeFailedPrecondition || !strings.Contains(first.err.Error(), "amount_too_large") || strings.Contains(first.err.Error(), "refused)") {
		t.Fatalf("capture error %v, want FailedPrecondition naming the gateway's code", first.err)
	}
	if second.err != nil || rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != 100 {
		t.Fatalf("second capture %+v record %+v", second, rec)
	}
	if h.capture.n() != 2 || h.retrieve.n() != 1 {
		t.Fatalf("%d captures, %d retrieves", h.capture.n(), h.retrieve.n())
	}
}

func TestCancelUsesItsKeyAndAStableCode(t *testing.T) {
	for _, tc := range []struct{ reason, code string }{
		{"duplicate", "duplicate"},
		{"fraudulent", "fraudulent"},
		{"abandoned", "abandoned"},
		{"requested_by_customer", "requested_by_customer"},
		{"the customer phoned", "requested_by_customer"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			h := newHarness(t, input(true))
			authorize(h)
			h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
				if n != 1 || c.Req.IdempotencyKey != h.key("cancel", 1) || c.Req.Reason != tc.code || !c.At.Equal(t0.Add(time.Minute)) {
					t.Errorf("cancel call %d: %+v at %v", n, c.Req, c.At)
				}
				return gateway.Result{Reference: "pi_m", Status: gateway.StatusCanceled}, nil
			})
			cancel := h.update(time.Minute, UpdateCancel, CancelRequest{Reason: tc.reason})
			h.run()
			rec := h.result()
			if cancel.err != nil || cancel.rejected != nil || cancel.rec.Status != entpayment.StatusCanceled {
				t.Fatalf("cancel %+v", cancel)
			}
			if rec.Status != entpayment.StatusCanceled || rec.FailureCode != tc.code || rec.AmountCapturable != 0 || len(h.journals()) != 0 {
				t.Fatalf("record %+v", rec)
			}
			if h.cancel.n() != 1 {
				t.Fatalf("%d cancel calls", h.cancel.n())
			}
		})
	}
}

func TestCancelWithoutAGatewayIntent(t *testing.T) {
	// A processing payment that the gateway has no reference for yet is
	// canceled without a gateway call (none is mocked).
	h := newHarness(t, input(false))
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) {
		return gateway.Result{Status: gateway.StatusProcessing}, nil
	})
	cancel := h.update(time.Minute, UpdateCancel, CancelRequest{Reason: "abandoned"})
	h.run()
	rec := h.result()
	if cancel.err != nil || rec.Status != entpayment.StatusCanceled || rec.FailureCode != "abandoned" {
		t.Fatalf("cancel %+v record %+v", cancel, rec)
	}
}

func TestValidatorsRefuseWhatTheStateMachineForbids(t *testing.T) {
	for _, st := range []entpayment.Status{entpayment.StatusSucceeded, entpayment.StatusFailed, entpayment.StatusCanceled} {
		r := run{rec: store.PaymentRecord{Status: st, AmountCapturable: 0}}
		if err := r.validateCancel(nil, CancelRequest{}); errType(err) != ErrTypeFailedPrecondition {
			t.Errorf("cancel of a %s payment: %v", st, err)
		}
		if err := r.validateCapture(nil, CaptureRequest{}); errType(err) != ErrTypeFailedPrecondition {
			t.Errorf("capture of a %s payment: %v", st, err)
		}
	}
	for _, st := range []entpayment.Status{entpayment.StatusProcessing, entpayment.StatusRequiresAction} {
		r := run{rec: store.PaymentRecord{Status: st, AmountCapturable: amount}}
		if err := r.validateCapture(nil, CaptureRequest{}); errType(err) != ErrTypeFailedPrecondition {
			t.Errorf("capture of a %s payment: %v", st, err)
		}
		if err := r.validateCancel(nil, CancelRequest{}); err != nil {
			t.Errorf("cancel of a %s payment refused: %v", st, err)
		}
	}
	auth := store.PaymentRecord{Status: entpayment.StatusRequiresCapture, AmountCapturable: amount}
	r := run{rec: auth}
	for _, a := range []int64{0, 1, amount} {
		if err := r.validateCapture(nil, CaptureRequest{Amount: a}); err != nil {
			t.Errorf("capture of %d refused: %v", a, err)
		}
	}
	if err := r.validateCapture(nil, CaptureRequest{Amount: amount + 1}); errType(err) != ErrTypeFailedPrecondition {
		t.Errorf("capture of %d: %v", amount+1, err)
	}
	if err := r.validateCapture(nil, CaptureRequest{Amount: -1}); errType(err) != ErrTypeInvalidArgument {
		t.Errorf("capture of -1: %v", err)
	}
	// While a step is being confirmed or a state is unsaved, nothing else
	// is admitted.
	for _, tc := range []struct {
		name string
		r    run
	}{
		{"capture pending", run{rec: auth, pending: &pendingStep{op: opCapture}}},
		{"cancel pending", run{rec: auth, pending: &pendingStep{op: opCancel}}},
		{"expiry pending", run{rec: auth, pending: &pendingStep{op: opExpire}}},
		{"unsaved", run{rec: auth, unsaved: &unsavedState{}}},
	} {
		if err := tc.r.validateCapture(nil, CaptureRequest{}); errType(err) != ErrTypeFailedPrecondition {
			t.Errorf("%s: capture %v", tc.name, err)
		}
		if err := tc.r.validateCancel(nil, CancelRequest{}); errType(err) != ErrTypeFailedPrecondition {
			t.Errorf("%s: cancel %v", tc.name, err)
		}
	}
}

func TestAuthorizationExpiresAtExactlySevenDays(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
		if n != 1 || c.Req.IdempotencyKey != h.key("expire", 1) || c.Req.Reason != "authorization_expired" {
			t.Errorf("cancel call %d: %+v", n, c.Req)
		}
		if !c.At.Equal(t0.Add(AuthorizationTTL)) {
			t.Errorf("the authorization was canceled at %v, want %v", c.At, t0.Add(AuthorizationTTL))
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusCanceled}, nil
	})
	h.at(AuthorizationTTL-time.Second, func() {
		got := h.query()
		if got.Status != entpayment.StatusRequiresCapture || got.AuthorizationExpiresAt == nil || !got.AuthorizationExpiresAt.Equal(t0.Add(AuthorizationTTL)) {
			t.Errorf("a second before expiry: %+v", got)
		}
		if h.cancel.n() != 0 {
			t.Errorf("canceled before the authorization expired")
		}
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "authorization_expired" || rec.AmountCapturable != 0 || h.cancel.n() != 1 {
		t.Fatalf("record %+v", rec)
	}
	if !rec.UpdatedAt.Equal(t0.Add(AuthorizationTTL)) {
		t.Fatalf("canceled at %v", rec.UpdatedAt)
	}
}

func TestAuthorizationByAnEventExpiresSevenDaysAfterTheEvent(t *testing.T) {
	h := newHarness(t, input(true))
	h.ref = "pi_3ds"
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return requiresAction("pi_3ds"), nil })
	authAt := 10 * time.Minute
	h.signal(authAt, GatewayEvent{EventID: "evt_auth", Type: "payment_intent.amount_capturable_updated", Reference: "pi_3ds",
		Status: gateway.StatusRequiresCapture, AmountCapturable: amount})
	h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
		if n != 1 || c.Req.IdempotencyKey != h.key("expire", 1) || c.Req.Reason != "authorization_expired" || !c.At.Equal(t0.Add(authAt+AuthorizationTTL)) {
			t.Errorf("cancel call %d: %+v at %v, want at %v", n, c.Req, c.At, t0.Add(authAt+AuthorizationTTL))
		}
		return gateway.Result{Reference: "pi_3ds", Status: gateway.StatusCanceled}, nil
	})
	h.at(authAt+AuthorizationTTL-time.Second, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresCapture || got.NextActionURL != "" {
			t.Errorf("a second before expiry: %+v", got)
		}
	})
	h.run()
	if rec := h.result(); rec.Status != entpayment.StatusCanceled || rec.FailureCode != "authorization_expired" {
		t.Fatalf("record %+v", rec)
	}
}

func TestThreeDSecureCompletesThroughTheGatewayEvent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		event    GatewayEvent
		status   entpayment.Status
		code     string
		journals int
	}{
		{"succeeded", GatewayEvent{EventID: "evt_1", Type: "payment_intent.succeeded", Reference: "pi_3ds", Status: gateway.StatusSucceeded, AmountReceived: amount}, entpayment.StatusSucceeded, "", 1},
		{"failed", GatewayEvent{EventID: "evt_2", Type: "payment_intent.payment_failed", Reference: "pi_3ds", Status: gateway.StatusFailed, FailureCode: "authentication_required"}, entpayment.StatusFailed, "authentication_required", 0},
		{"canceled", GatewayEvent{EventID: "evt_3", Type: "payment_intent.canceled", Reference: "pi_3ds", Status: gateway.StatusCanceled}, entpayment.StatusCanceled, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(false))
			h.ref = "pi_3ds"
			h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return requiresAction("pi_3ds"), nil })
			h.at(10*time.Minute, func() {
				got := h.query()
				if got.Status != entpayment.StatusRequiresAction || got.NextActionURL != "https://gw.test/3ds/pi_3ds" ||
					got.NextActionType != "redirect_to_url" || got.NextActionExpiresAt == nil || !got.NextActionExpiresAt.Equal(t0.Add(ActionTTL)) {
					t.Errorf("before the event: %+v", got)
				}
				h.env.SignalWorkflow(SignalGatewayEvent, tc.event)
				h.env.SignalWorkflow(SignalGatewayEvent, tc.event) // a redelivery changes nothing
			})
			h.run()
			rec := h.result()
			if rec.Status != tc.status || rec.FailureCode != tc.code || rec.NextActionURL != "" || rec.NextActionExpiresAt != nil {
				t.Fatalf("record %+v", rec)
			}
			if js := h.journals(); len(js) != tc.journals {
				t.Fatalf("journals %+v, want %d", js, tc.journals)
			}
			if s := h.allSaves(); len(s) != 2 || !s[1].At.Equal(t0.Add(10*time.Minute)) {
				t.Fatalf("saves %+v, want the action and the event's outcome", s)
			}
		})
	}
}

func TestThreeDSecureActionExpiresAtExactlyActionTTL(t *testing.T) {
	h := newHarness(t, input(false))
	h.ref = "pi_3ds"
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return requiresAction("pi_3ds"), nil })
	h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
		if n != 1 || c.Req.IdempotencyKey != h.key("expire", 1) || c.Req.Reason != "action_expired" || !c.At.Equal(t0.Add(ActionTTL)) {
			t.Errorf("cancel call %d: %+v at %v, want at %v", n, c.Req, c.At, t0.Add(ActionTTL))
		}
		return gateway.Result{Reference: "pi_3ds", Status: gateway.StatusCanceled}, nil
	})
	h.at(ActionTTL-time.Second, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresAction {
			t.Errorf("a second before the action expired: %+v", got)
		}
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "action_expired" || rec.NextActionURL != "" {
		t.Fatalf("record %+v", rec)
	}
}

func TestProcessingPaymentIsCanceledAfterActionTTLWithoutNews(t *testing.T) {
	h := newHarness(t, input(false))
	h.ref = "pi_p"
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) {
		return gateway.Result{Reference: "pi_p", Status: gateway.StatusProcessing}, nil
	})
	h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
		if !c.At.Equal(t0.Add(ActionTTL)) || c.Req.IdempotencyKey != h.key("expire", 1) {
			t.Errorf("cancel %+v at %v", c.Req, c.At)
		}
		return gateway.Result{Reference: "pi_p", Status: gateway.StatusCanceled}, nil
	})
	h.run()
	if rec := h.result(); rec.Status != entpayment.StatusCanceled {
		t.Fatalf("record %+v", rec)
	}
}

// The expire branch: the gateway refuses the cancel of an expired
// authorization or action, and the intent tells why.
func TestExpiryWhenTheCancelIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name      string
		manual    bool
		retrieved []gateway.Result // answer of each Retrieve
		cancels   int              // cancels refused before one succeeds (0: none succeeds)
		status    entpayment.Status
		code      string
		journals  int
		endAt     time.Duration
	}{
		{name: "the gateway captured it", manual: true, retrieved: []gateway.Result{succeeded("pi_x", amount)},
			status: entpayment.StatusSucceeded, journals: 1, endAt: AuthorizationTTL},
		{name: "the gateway voided it already", manual: true, retrieved: []gateway.Result{{Reference: "pi_x", Status: gateway.StatusCanceled}},
			status: entpayment.StatusCanceled, code: "authorization_expired", endAt: AuthorizationTTL},
		{name: "the action's intent failed", retrieved: []gateway.Result{{Reference: "pi_x", Status: gateway.StatusFailed}},
			status: entpayment.StatusCanceled, code: "action_expired", endAt: ActionTTL},
		// Still processing at the gateway (the customer just finished
		// 3-D Secure): the expiry waits and is tried again, with the next
		// key, after presets.StepRetryDelay(1); then the intent succeeded.
		{name: "still processing, then succeeded", retrieved: []gateway.Result{{Reference: "pi_x", Status: gateway.StatusProcessing}, succeeded("pi_x", amount)},
			status: entpayment.StatusSucceeded, journals: 1, endAt: ActionTTL + time.Minute},
		// Still requires_action: tried again and then canceled.
		{name: "still requires_action", retrieved: []gateway.Result{requiresAction("pi_x"), requiresAction("pi_x")}, cancels: 1,
			status: entpayment.StatusCanceled, code: "action_expired", endAt: ActionTTL + time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(tc.manual))
			h.ref = "pi_x"
			h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) {
				if tc.manual {
					return authorized("pi_x"), nil
				}
				return requiresAction("pi_x"), nil
			})
			ttl := ActionTTL
			if tc.manual {
				ttl = AuthorizationTTL
			}
			h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
				if c.Req.IdempotencyKey != h.key("expire", n) {
					t.Errorf("cancel call %d has key %q, want %q", n, c.Req.IdempotencyKey, h.key("expire", n))
				}
				if n == 1 && !c.At.Equal(t0.Add(ttl)) {
					t.Errorf("first cancel at %v, want %v", c.At, t0.Add(ttl))
				}
				if tc.cancels > 0 && n > tc.cancels {
					return gateway.Result{Reference: "pi_x", Status: gateway.StatusCanceled}, nil
				}
				return gateway.Result{}, invalidGatewayError("payment_intent_unexpected_state")
			})
			h.onRetrieve(func(n int, _ call[string]) (gateway.Result, error) {
				if n > len(tc.retrieved) {
					t.Errorf("retrieve call %d", n)
					return gateway.Result{}, errUnexpected
				}
				return tc.retrieved[n-1], nil
			})
			if len(tc.retrieved) > 1 {
				h.at(ttl+30*time.Second, func() {
					got := h.query()
					if got.Status == entpayment.StatusCanceled || got.Status == entpayment.StatusSucceeded || !got.NeedsAttention || got.AttentionReason == "" || !h.attentionNow() {
						t.Errorf("while the expiry is unconfirmed: %+v", got)
					}
				})
			}
			h.run()
			rec := h.result() // the workflow ends normally, not with an error
			if rec.Status != tc.status || rec.FailureCode != tc.code || rec.AmountCapturable != 0 || rec.NeedsAttention {
				t.Fatalf("record %+v", rec)
			}
			if tc.status == entpayment.StatusSucceeded && rec.AmountReceived != amount {
				t.Fatalf("record %+v", rec)
			}
			if js := h.journals(); len(js) != tc.journals {
				t.Fatalf("journals %+v, want %d", js, tc.journals)
			}
			if !rec.UpdatedAt.Equal(t0.Add(tc.endAt)) {
				t.Fatalf("settled at %v, want %v", rec.UpdatedAt.Sub(t0), tc.endAt)
			}
		})
	}
}

// The impossible-amount guard: an event that reports more than the
// payment's amount, or a negative amount, is ignored and logged.
func TestEventsWithImpossibleAmountsAreIgnored(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   GatewayEvent
	}{
		{"received above the amount", GatewayEvent{Status: gateway.StatusSucceeded, AmountReceived: amount + 1}},
		{"capturable above the amount", GatewayEvent{Status: gateway.StatusRequiresCapture, AmountCapturable: amount + 1}},
		{"negative received", GatewayEvent{Status: gateway.StatusSucceeded, AmountReceived: -1}},
		{"negative capturable", GatewayEvent{Status: gateway.StatusRequiresCapture, AmountCapturable: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(false))
			h.ref = "pi_3ds"
			h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return requiresAction("pi_3ds"), nil })
			ev := tc.ev
			ev.EventID, ev.Type, ev.Reference = "evt_bad", "payment_intent."+string(ev.Status), "pi_3ds"
			h.signal(time.Hour, ev)
			h.at(2*time.Hour, func() {
				if got := h.query(); got.Status != entpayment.StatusRequiresAction || got.AmountReceived != 0 || got.AmountCapturable != 0 || got.Version != 1 {
					t.Errorf("after the event: %+v", got)
				}
				logged := h.log.find("ERROR", "impossible amounts")
				if len(logged) != 1 || logged[0].kv("event") != "evt_bad" {
					t.Errorf("logged %+v", logged)
				}
			})
			// The action then expires as if the event never came.
			h.onCancel(func(int, call[gateway.CancelRequest]) (gateway.Result, error) {
				return gateway.Result{Reference: "pi_3ds", Status: gateway.StatusCanceled}, nil
			})
			h.run()
			rec := h.result()
			if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "action_expired" || len(h.journals()) != 0 || len(h.allSaves()) != 2 {
				t.Fatalf("record %+v saves %d", rec, len(h.allSaves()))
			}
		})
	}
}

// An event with exactly the payment's amount is not impossible.
func TestEventWithExactlyTheAmountIsApplied(t *testing.T) {
	h := newHarness(t, input(true))
	h.ref = "pi_3ds"
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return requiresAction("pi_3ds"), nil })
	h.signal(time.Hour, GatewayEvent{EventID: "evt_ok", Reference: "pi_3ds", Status: gateway.StatusRequiresCapture, AmountCapturable: amount})
	captureOK(h, 1)
	h.update(2*time.Hour, UpdateCapture, CaptureRequest{})
	h.run()
	if rec := h.result(); rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount {
		t.Fatalf("record %+v", rec)
	}
}

func TestLateEventsNeverMoveAPaymentBackwards(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	captureOK(h, 1)
	h.at(time.Minute, func() {
		// A replayed 3-D Secure event, a late failure after authorization
		// and an event without a status.
		h.env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_late_1", Type: "payment_intent.requires_action", Status: gateway.StatusRequiresAction})
		h.env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_late_2", Type: "payment_intent.payment_failed", Status: gateway.StatusFailed, FailureCode: "authentication_required"})
		h.env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_late_3", Type: "payment_intent.unknown"})
		h.env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_late_4", Type: "payment_intent.processing", Status: gateway.StatusProcessing})
	})
	capture := h.update(time.Hour, UpdateCapture, CaptureRequest{})
	h.run()
	rec := h.result()
	if capture.err != nil || capture.rejected != nil || rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount {
		t.Fatalf("capture %+v, record %+v", capture, rec)
	}
	if st := h.statuses(); !reflect.DeepEqual(st, []entpayment.Status{entpayment.StatusRequiresCapture, entpayment.StatusSucceeded}) {
		t.Fatalf("a late event was applied: %v", st)
	}
}

func TestAllowedTransitions(t *testing.T) {
	all := []gateway.Status{"", gateway.StatusProcessing, gateway.StatusRequiresAction, gateway.StatusRequiresCapture,
		gateway.StatusSucceeded, gateway.StatusFailed, gateway.StatusCanceled}
	want := map[entpayment.Status][]gateway.Status{
		entpayment.StatusProcessing:      {gateway.StatusRequiresAction, gateway.StatusRequiresCapture, gateway.StatusSucceeded, gateway.StatusFailed, gateway.StatusCanceled},
		entpayment.StatusRequiresAction:  {gateway.StatusRequiresCapture, gateway.StatusSucceeded, gateway.StatusFailed, gateway.StatusCanceled},
		entpayment.StatusRequiresCapture: {gateway.StatusSucceeded, gateway.StatusCanceled},
		entpayment.StatusSucceeded:       nil,
		entpayment.StatusFailed:          nil,
		entpayment.StatusCanceled:        nil,
	}
	for from, tos := range want {
		ok := map[gateway.Status]bool{}
		for _, to := range tos {
			ok[to] = true
		}
		for _, to := range all {
			if got := allowed(from, to); got != ok[to] {
				t.Errorf("allowed(%s, %q) = %v", from, to, got)
			}
		}
	}
}

// A run whose GetVersion marker is the default version (started by the
// first deployed code) follows legacy.go: its create key has no attempt
// number.
func TestDefaultVersionTakesTheLegacyPath(t *testing.T) {
	h := newHarness(t, input(false))
	h.env.OnGetVersion(changeHardened, workflow.DefaultVersion, versionHardened).Return(workflow.DefaultVersion)
	h.mocked["CreatePayment"] = true
	var keys []string
	h.env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(func(_ context.Context, r gateway.CreateRequest) (gateway.Result, error) {
		keys = append(keys, r.IdempotencyKey)
		return succeeded("pi_l", amount), nil
	})
	h.run()
	rec := h.result()
	if !reflect.DeepEqual(keys, []string{testWF + "/create"}) || rec.Status != entpayment.StatusSucceeded {
		t.Fatalf("keys %q record %+v, want the legacy key", keys, rec)
	}
}

// And a run of the newest version takes the hardened path.
func TestNewRunsTakeTheHardenedPath(t *testing.T) {
	h := newHarness(t, input(false))
	h.env.OnGetVersion(changeHardened, workflow.DefaultVersion, versionHardened).Return(versionHardened)
	h.onCreate(func(_ int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if c.Req.IdempotencyKey != h.key("create", 1) {
			t.Errorf("key %q", c.Req.IdempotencyKey)
		}
		return succeeded("pi_h", amount), nil
	})
	h.run()
	if rec := h.result(); rec.Status != entpayment.StatusSucceeded || h.create.n() != 1 {
		t.Fatalf("record %+v", rec)
	}
}

// A run that declares its logic version in its input follows it without
// asking GetVersion (which here would answer the legacy version), so it
// records no marker.
func TestDeclaredLogicNeedsNoVersionMarker(t *testing.T) {
	for _, tc := range []struct {
		logic workflow.Version
		key   string
	}{
		{CurrentLogic, testWF + "/create/1"},
		{versionLegacy, testWF + "/create"},
	} {
		t.Run(fmt.Sprint(tc.logic), func(t *testing.T) {
			in := input(false)
			in.Logic = tc.logic
			h := newHarness(t, in)
			asked := 0
			h.env.OnGetVersion(changeHardened, workflow.DefaultVersion, versionHardened).Run(func(mock.Arguments) { asked++ }).Return(workflow.DefaultVersion)
			h.mocked["CreatePayment"] = true
			var keys []string
			h.env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(func(_ context.Context, r gateway.CreateRequest) (gateway.Result, error) {
				keys = append(keys, r.IdempotencyKey)
				return succeeded("pi_d", amount), nil
			})
			h.run()
			if rec := h.result(); rec.Status != entpayment.StatusSucceeded || asked != 0 || !reflect.DeepEqual(keys, []string{tc.key}) {
				t.Fatalf("record %+v, GetVersion asked %d times, keys %q, want %q and no GetVersion", rec, asked, keys, tc.key)
			}
		})
	}
}

// A run that declares a version this code does not know fails its workflow
// task (a panic, as GetVersion's own) instead of running another logic: the
// task is tried again until a worker that knows the version takes it.
func TestUnknownDeclaredLogicFailsTheTask(t *testing.T) {
	for _, logic := range []workflow.Version{versionHardened + 1, versionLegacy - 1} {
		in := input(false)
		in.Logic = logic
		h := newHarness(t, in)
		h.mocked["CreatePayment"] = true
		h.env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(succeeded("pi_x", amount), nil)
		h.run()
		var panicErr *temporal.PanicError
		if err := h.env.GetWorkflowError(); !errors.As(err, &panicErr) || !strings.Contains(err.Error(), fmt.Sprintf("declares logic version %d", logic)) {
			t.Fatalf("logic %d: workflow error %v, want the task to panic", logic, err)
		}
	}
}

func TestSearchAttributesFollowThePayment(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start bool // the starter set them
		want  []string
	}{
		{"set by the starter", true, []string{"succeeded"}},
		{"set by the workflow", false, []string{"processing", "succeeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(false))
			if tc.start {
				if err := h.env.SetTypedSearchAttributesOnStart(temporal.NewSearchAttributes(StartAttributes(h.in)...)); err != nil {
					t.Fatal(err)
				}
			}
			h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return succeeded("pi_1", amount), nil })
			h.run()
			h.result()
			h.mu.Lock()
			defer h.mu.Unlock()
			if !reflect.DeepEqual(h.statusAttr, tc.want) {
				t.Fatalf("PaymentStatus upserts %q, want %q", h.statusAttr, tc.want)
			}
		})
	}
}

func TestAwaitUpdatesAnswerWhenThePaymentIsRecordedAndAnswered(t *testing.T) {
	h := newHarness(t, input(false))
	h.onCreate(func(n int, _ call[gateway.CreateRequest]) (gateway.Result, error) {
		if n <= 4 {
			return gateway.Result{}, unavailable()
		}
		return succeeded("pi_1", amount), nil
	})
	recorded := h.update(200*time.Millisecond, UpdateAwaitRecorded, nil)
	answered := h.update(200*time.Millisecond, UpdateAwaitResult, nil)
	h.run()
	h.result()
	if recorded.err != nil || recorded.rec.Status != entpayment.StatusProcessing || recorded.rec.Version != 1 || !recorded.at.Equal(t0.Add(200*time.Millisecond)) {
		t.Fatalf("await_recorded %+v", recorded)
	}
	// The fast path and three attempts of the fallback failed: answered
	// by the fourth, 0.5+1+2 s after the fallback started.
	if answered.err != nil || answered.rec.Status != entpayment.StatusSucceeded || !answered.at.Equal(t0.Add(3500*time.Millisecond)) {
		t.Fatalf("await_result %+v at %v", answered, answered.at.Sub(t0))
	}
}
