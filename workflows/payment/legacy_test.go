package payment

// Unit tests of the first deployed logic (legacy.go). Payments started
// before the payment-hardening change recorded workflow.DefaultVersion for
// changeHardened and go on along legacy.go until they end, so its money
// logic is proven here as the hardened logic is in the other files: every
// test forces the default version with OnGetVersion, and checks the exact
// statuses, amounts, journals, versions, gateway requests and timer
// durations of the legacy path.

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

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/ent/ledgerentry"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

// legacyRef is the gateway reference of every legacy test payment.
const legacyRef = "pi_l"

// The messages legacy.go records for a charge that failed without a
// gateway decline.
const (
	legacyUnreachable = "The payment gateway did not answer for too long; if it charged the card, the charge will be reversed by reconciliation."
	legacyRefused     = "The payment gateway refused the request."
)

// legacyHarness is a harness whose run follows legacy.go: GetVersion
// answers the default version, as it does for a payment started by the
// first deployed code. The input carries a description and a return URL,
// which the legacy create must pass on.
func legacyHarness(t *testing.T, manual bool) *harness {
	t.Helper()
	in := input(manual)
	in.Description, in.ReturnURL = "order 42", "https://shop.test/return"
	h := newHarness(t, in)
	h.ref = legacyRef
	h.env.OnGetVersion(changeHardened, workflow.DefaultVersion, versionHardened).Return(workflow.DefaultVersion)
	return h
}

// runLegacy starts the workflow; Retrieve (which only legacy runs call)
// fails the test when it is called and not mocked, as every other gateway
// method does.
func (h *harness) runLegacy() {
	if !h.mocked["Retrieve(legacy)"] {
		h.env.OnActivity(gw.Retrieve, mock.Anything, mock.Anything).Return(func(_ context.Context, ref string) (gateway.Result, error) {
			h.t.Errorf("unexpected Retrieve %q", ref)
			h.env.CancelWorkflow()
			return gateway.Result{}, errUnexpected
		})
	}
	h.run()
}

// legacyResult is result, plus what every legacy run must show: it never
// touches the NeedsAttention search attribute (it has none).
func (h *harness) legacyResult() store.PaymentRecord {
	h.t.Helper()
	rec := h.result()
	if a := h.attentionChanges(); len(a) != 0 {
		h.t.Errorf("a legacy run set NeedsAttention: %+v", a)
	}
	return rec
}

// onLegacyCreate mocks CreatePayment, checking the request is exactly the
// legacy one: the key workflow id + "/create" (no attempt number), no
// gateway name, every field of the input.
func (h *harness) onLegacyCreate(fn func(n int, c call[gateway.CreateRequest]) (gateway.Result, error)) {
	h.mocked["CreatePayment"] = true
	h.env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, r gateway.CreateRequest) (gateway.Result, error) {
			in := h.in
			want := gateway.CreateRequest{
				IdempotencyKey: h.wf + "/create", PaymentID: in.PaymentID, Amount: in.Amount, Currency: in.Currency,
				PaymentMethod: in.PaymentMethod, ManualCapture: in.ManualCapture, Description: in.Description, ReturnURL: in.ReturnURL,
			}
			if r != want {
				h.t.Errorf("legacy create request %+v, want %+v", r, want)
			}
			c := callOf(ctx, h, r)
			return fn(h.create.add(c), c)
		})
}

// createAnswers answers every legacy create with res.
func createAnswers(h *harness, res gateway.Result) {
	h.onLegacyCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return res, nil })
}

// onLegacyCapture mocks Capture, checking the legacy request: the key is
// per amount, and the request names no gateway or currency.
func (h *harness) onLegacyCapture(fn func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error)) {
	mockGateway(h, "Capture", gw.Capture, &h.capture, fn, func(r gateway.CaptureRequest) string {
		if want := (gateway.CaptureRequest{IdempotencyKey: fmt.Sprintf("%s/capture/%d", h.wf, r.Amount), Reference: h.ref, Amount: r.Amount}); r != want || r.Amount <= 0 {
			return fmt.Sprintf("legacy capture request %+v, want %+v", r, want)
		}
		return ""
	})
}

// onLegacyCancel mocks Cancel, checking the legacy request: the key is
// workflow id + "/" + the step (cancel or expire), with no attempt number.
func (h *harness) onLegacyCancel(fn func(n int, c call[gateway.CancelRequest]) (gateway.Result, error)) {
	mockGateway(h, "Cancel", gw.Cancel, &h.cancel, fn, func(r gateway.CancelRequest) string {
		if r.Gateway != "" || r.Currency != "" || r.Reference != h.ref || r.Reason == "" ||
			(r.IdempotencyKey != h.wf+"/cancel" && r.IdempotencyKey != h.wf+"/expire") {
			return fmt.Sprintf("legacy cancel request %+v", r)
		}
		return ""
	})
}

// cancelAnswers answers every legacy cancel as done.
func cancelAnswers(h *harness) {
	h.onLegacyCancel(func(int, call[gateway.CancelRequest]) (gateway.Result, error) {
		return gateway.Result{Reference: legacyRef, Status: gateway.StatusCanceled}, nil
	})
}

// onLegacyRetrieve mocks Retrieve, the legacy read of the intent by its
// reference.
func (h *harness) onLegacyRetrieve(fn func(n int, c call[string]) (gateway.Result, error)) {
	mockGateway(h, "Retrieve(legacy)", gw.Retrieve, &h.retrieve, fn, func(r string) string {
		if r != h.ref {
			return fmt.Sprintf("retrieve of %q, want %q", r, h.ref)
		}
		return ""
	})
}

// wantJournal asserts js is exactly the one capture journal of amount a,
// posted at at.
func wantJournal(t *testing.T, js []store.Journal, a int64, at time.Time) {
	t.Helper()
	want := []store.JournalLine{
		{Account: "customer_funding:acct_c", Direction: ledgerentry.DirectionDebit, Amount: a},
		{Account: "gateway_clearing:sandbox", Direction: ledgerentry.DirectionCredit, Amount: a},
		{Account: "gateway_clearing:sandbox", Direction: ledgerentry.DirectionDebit, Amount: a},
		{Account: "merchant_balance:acct_m", Direction: ledgerentry.DirectionCredit, Amount: a},
	}
	if len(js) != 1 || js[0].ID != payID+"/capture" || js[0].PaymentID != payID || js[0].Currency != currency ||
		!js[0].At.Equal(at) || !reflect.DeepEqual(js[0].Lines, want) {
		t.Fatalf("journals %+v, want one capture journal of %d at %v", js, a, at.Sub(t0))
	}
}

// wantSaves asserts the accepted saves have these statuses, at these
// times after t0.
func wantSaves(t *testing.T, h *harness, statuses []entpayment.Status, at []time.Duration) {
	t.Helper()
	saves := h.accepted()
	if len(saves) != len(statuses) {
		t.Fatalf("saved statuses %v, want %v", h.statuses(), statuses)
	}
	for i, s := range saves {
		if s.Rec.Status != statuses[i] || !s.At.Equal(t0.Add(at[i])) || !s.Rec.UpdatedAt.Equal(s.At) || s.Rec.NeedsAttention {
			t.Fatalf("save %d: %s at %v (updated %v, attention %v), want %s at %v",
				i, s.Rec.Status, s.At.Sub(t0), s.Rec.UpdatedAt.Sub(t0), s.Rec.NeedsAttention, statuses[i], at[i])
		}
	}
}

func TestLegacyChargeOnTheFastPath(t *testing.T) {
	for _, tc := range []struct {
		name     string
		res      gateway.Result
		status   entpayment.Status
		received int64
		code     string
		msg      string
	}{
		{name: "succeeded", res: succeeded(legacyRef, amount), status: entpayment.StatusSucceeded, received: amount},
		{name: "succeeded without amount", res: succeeded(legacyRef, 0), status: entpayment.StatusSucceeded, received: amount},
		{name: "declined", res: gateway.Result{Reference: legacyRef, Status: gateway.StatusFailed, FailureCode: "insufficient_funds", FailureMessage: "Your card has insufficient funds."},
			status: entpayment.StatusFailed, code: "insufficient_funds", msg: "Your card has insufficient funds."},
		{name: "declined without code", res: gateway.Result{Reference: legacyRef, Status: gateway.StatusFailed},
			status: entpayment.StatusFailed, code: "processing_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := legacyHarness(t, false)
			h.onLegacyCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
				if !c.Local || !c.At.Equal(t0) {
					t.Errorf("create call %d: local %v at %v, want the fast path at the start", n, c.Local, c.At.Sub(t0))
				}
				return tc.res, nil
			})
			h.runLegacy()
			rec := h.legacyResult()
			if rec.Status != tc.status || rec.AmountReceived != tc.received || rec.AmountCapturable != 0 || rec.GatewayReference != legacyRef ||
				rec.FailureCode != tc.code || rec.FailureMessage != tc.msg || rec.Version != 1 || rec.CaptureMethod != entpayment.CaptureMethodAutomatic {
				t.Fatalf("record %+v", rec)
			}
			if tc.status == entpayment.StatusSucceeded && (rec.MethodLast4 != "4242" || rec.MethodBrand != "visa" || rec.MethodExpYear != 2030) {
				t.Fatalf("method of %+v", rec)
			}
			// One write: the final state, with the journal of the money
			// that moved.
			wantSaves(t, h, []entpayment.Status{tc.status}, []time.Duration{0})
			if tc.received != 0 {
				wantJournal(t, h.journals(), tc.received, t0)
			} else if js := h.journals(); len(js) != 0 {
				t.Fatalf("a decline moved money: %+v", js)
			}
			if h.create.n() != 1 || len(h.scheduledOf("CreatePayment")) != 0 {
				t.Fatalf("%d creates, %d as activities", h.create.n(), len(h.scheduledOf("CreatePayment")))
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if want := []string{"processing", string(tc.status)}; !reflect.DeepEqual(h.statusAttr, want) {
				t.Fatalf("PaymentStatus upserts %q, want %q", h.statusAttr, want)
			}
		})
	}
}

// When the fast path fails, the payment is recorded as processing and the
// create is retried as a regular activity with the same key.
func TestLegacyFastPathFailureRetriesTheCreateAsAnActivity(t *testing.T) {
	h := legacyHarness(t, false)
	h.onLegacyCreate(func(n int, c call[gateway.CreateRequest]) (gateway.Result, error) {
		if n <= 3 {
			return gateway.Result{}, unavailable()
		}
		return succeeded(legacyRef, amount), nil
	})
	h.runLegacy()
	rec := h.legacyResult()
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || rec.Version != 2 || rec.FailureCode != "" {
		t.Fatalf("record %+v", rec)
	}
	// The fast path and two attempts of the activity failed; the third,
	// 0.5+1 s after the first, answered.
	cs := h.create.all()
	if len(cs) != 4 || !cs[0].Local || cs[1].Local || cs[3].Local || !cs[1].At.Equal(t0) || !cs[3].At.Equal(t0.Add(1500*time.Millisecond)) {
		t.Fatalf("create calls %+v", cs)
	}
	wantSaves(t, h, []entpayment.Status{entpayment.StatusProcessing, entpayment.StatusSucceeded}, []time.Duration{0, 1500 * time.Millisecond})
	if first := h.accepted()[0]; first.Journal != nil || first.Rec.GatewayReference != "" || first.Rec.Version != 1 {
		t.Fatalf("first save %+v", first)
	}
	wantJournal(t, h.journals(), amount, t0.Add(1500*time.Millisecond))
	// Retried for as long as the gateway keeps the key, never an
	// invalid request.
	opts := h.scheduledOf("CreatePayment")
	if len(opts) != 1 || opts[0].Opts.ScheduleToCloseTimeout != presets.GatewayRetryWindow || opts[0].Opts.RetryPolicy == nil ||
		opts[0].Opts.RetryPolicy.MaximumInterval != 10*time.Minute ||
		!reflect.DeepEqual(opts[0].Opts.RetryPolicy.NonRetryableErrorTypes, []string{activities.ErrTypeGatewayInvalid}) {
		t.Fatalf("create activity options %+v", opts)
	}
}

func TestLegacyRefusedChargeFailsWithTheGatewaysCode(t *testing.T) {
	noDetails := temporal.NewNonRetryableApplicationError("refused", activities.ErrTypeGatewayInvalid, nil)
	for _, tc := range []struct {
		name    string
		errs    []error // of the create calls, the last one repeated
		creates int
		saves   []entpayment.Status
		code    string
		msg     string
	}{
		{"on the fast path", []error{invalidGatewayError("resource_missing")}, 1,
			[]entpayment.Status{entpayment.StatusFailed}, "resource_missing", "The payment gateway refused the request (resource_missing)."},
		{"by the activity", []error{unavailable(), invalidGatewayError("card_declined")}, 2,
			[]entpayment.Status{entpayment.StatusProcessing, entpayment.StatusFailed}, "card_declined", "The payment gateway refused the request (card_declined)."},
		{"without a code", []error{unavailable(), noDetails}, 2,
			[]entpayment.Status{entpayment.StatusProcessing, entpayment.StatusFailed}, "invalid_request", legacyRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := legacyHarness(t, false)
			h.onLegacyCreate(func(n int, _ call[gateway.CreateRequest]) (gateway.Result, error) {
				return gateway.Result{}, tc.errs[min(n, len(tc.errs))-1]
			})
			h.runLegacy()
			rec := h.legacyResult()
			if rec.Status != entpayment.StatusFailed || rec.FailureCode != tc.code || rec.FailureMessage != tc.msg || rec.AmountReceived != 0 {
				t.Fatalf("record %+v", rec)
			}
			if h.create.n() != tc.creates {
				t.Fatalf("%d creates, want %d: a refusal is not retried", h.create.n(), tc.creates)
			}
			if !reflect.DeepEqual(h.statuses(), tc.saves) {
				t.Fatalf("saved statuses %v, want %v", h.statuses(), tc.saves)
			}
			if js := h.journals(); len(js) != 0 {
				t.Fatalf("journals %+v", js)
			}
		})
	}
}

// A create the gateway never answers fails the payment once the retry
// window (as long as the gateway keeps the key) is over.
func TestLegacyUnansweredChargeFailsAfterTheRetryWindow(t *testing.T) {
	h := legacyHarness(t, false)
	h.onLegacyCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return gateway.Result{}, unavailable() })
	h.runLegacy()
	rec := h.legacyResult()
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "gateway_unreachable" || rec.FailureMessage != legacyUnreachable || rec.Version != 2 {
		t.Fatalf("record %+v", rec)
	}
	saves := h.accepted()
	if len(saves) != 2 || saves[0].Rec.Status != entpayment.StatusProcessing || !saves[0].At.Equal(t0) {
		t.Fatalf("saves %+v", saves)
	}
	// The test suite ends the retries after 10 attempts (a server, after
	// the activity's retry window, checked above): failed when the last
	// attempt failed.
	cs := h.create.all()
	if len(cs) != 1+suiteAttempts || !saves[1].At.Equal(cs[len(cs)-1].At) || !saves[1].At.Equal(t0.Add(suiteRetries)) {
		t.Fatalf("%d creates, the last at %v; failed at %v", len(cs), cs[len(cs)-1].At.Sub(t0), saves[1].At.Sub(t0))
	}
	if opts := h.scheduledOf("CreatePayment"); len(opts) != 1 || opts[0].Opts.ScheduleToCloseTimeout != presets.GatewayRetryWindow {
		t.Fatalf("create activity options %+v", opts)
	}
}

// The test suite runs at most suiteAttempts attempts of an activity, the
// last suiteRetries after the first (backoff from 0.5 s, doubling).
const (
	suiteAttempts = 10
	suiteRetries  = 255500 * time.Millisecond
)

func TestFailureOfLegacy(t *testing.T) {
	// As an activity's error reaches the workflow: its details encoded.
	fc := temporal.GetDefaultFailureConverter()
	wrongDetails := fc.FailureToError(fc.ErrorToFailure(temporal.NewApplicationErrorWithOptions("refused", activities.ErrTypeGatewayInvalid,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{"not the details"}})))
	emptyCode := temporal.NewApplicationErrorWithOptions("refused", activities.ErrTypeGatewayInvalid,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.GatewayErrorDetails{Message: "refused"}}})
	for _, tc := range []struct {
		name      string
		err       error
		code, msg string
	}{
		{"unanswered", unavailable(), "gateway_unreachable", legacyUnreachable},
		{"not an application error", errors.New("deadline exceeded"), "gateway_unreachable", legacyUnreachable},
		{"refused with a code", invalidGatewayError("card_declined"), "card_declined", "The payment gateway refused the request (card_declined)."},
		{"refused, wrapped", fmt.Errorf("create: %w", invalidGatewayError("expired_card")), "expired_card", "The payment gateway refused the request (expired_card)."},
		{"refused without details", temporal.NewNonRetryableApplicationError("refused", activities.ErrTypeGatewayInvalid, nil), "invalid_request", legacyRefused},
		{"refused with other details", wrongDetails, "invalid_request", legacyRefused},
		{"refused with an empty code", emptyCode, "invalid_request", legacyRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, msg := failureOfLegacy(tc.err); code != tc.code || msg != tc.msg {
				t.Fatalf("failureOfLegacy(%v) = %q, %q; want %q, %q", tc.err, code, msg, tc.code, tc.msg)
			}
		})
	}
}

// authorizeLegacy makes the legacy create authorize the whole amount.
func authorizeLegacy(h *harness) {
	createAnswers(h, authorized(legacyRef))
}

func TestLegacyCapture(t *testing.T) {
	for _, tc := range []struct {
		name     string
		req      int64 // the capture update's amount
		captured int64 // sent to the gateway
		answer   int64 // the gateway's amount_received
		received int64 // recorded
	}{
		{"everything", 0, amount, amount, amount},
		{"everything, the gateway says nothing of the amount", 0, amount, 0, amount},
		{"part", 3000, 3000, 3000, 3000},
		{"part, the gateway says nothing of the amount", 3000, 3000, 0, 3000},
		{"part, the gateway received less", 3000, 3000, 2500, 2500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := legacyHarness(t, true)
			authorizeLegacy(h)
			h.onLegacyCapture(func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
				if c.Req.Amount != tc.captured || !c.At.Equal(t0.Add(time.Hour)) {
					t.Errorf("capture call %d: %+v at %v", n, c.Req, c.At.Sub(t0))
				}
				return gateway.Result{Reference: legacyRef, Status: gateway.StatusSucceeded, AmountReceived: tc.answer}, nil
			})
			h.at(30*time.Minute, func() {
				got := h.query()
				if got.Status != entpayment.StatusRequiresCapture || got.AmountCapturable != amount || got.AuthorizationExpiresAt == nil ||
					!got.AuthorizationExpiresAt.Equal(t0.Add(AuthorizationTTL)) || got.CaptureMethod != entpayment.CaptureMethodManual {
					t.Errorf("authorized: %+v", got)
				}
			})
			up := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: tc.req})
			h.runLegacy()
			rec := h.legacyResult()
			if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != tc.received || rec.AmountCapturable != 0 || rec.Version != 2 {
				t.Fatalf("record %+v", rec)
			}
			if !up.done || up.err != nil || up.rejected != nil || up.rec.Status != entpayment.StatusSucceeded || up.rec.Version != 2 ||
				up.rec.AmountReceived != tc.received || !up.at.Equal(t0.Add(time.Hour)) {
				t.Fatalf("capture update %+v", up)
			}
			if h.capture.n() != 1 {
				t.Fatalf("%d captures", h.capture.n())
			}
			wantSaves(t, h, []entpayment.Status{entpayment.StatusRequiresCapture, entpayment.StatusSucceeded}, []time.Duration{0, time.Hour})
			wantJournal(t, h.journals(), tc.received, t0.Add(time.Hour))
		})
	}
}

func TestLegacyCaptureValidation(t *testing.T) {
	h := legacyHarness(t, true)
	authorizeLegacy(h)
	h.onLegacyCapture(func(_ int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		return gateway.Result{Reference: legacyRef, Status: gateway.StatusSucceeded, AmountReceived: c.Req.Amount}, nil
	})
	over := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: amount + 1})
	neg := h.update(time.Hour+time.Minute, UpdateCapture, CaptureRequest{Amount: -1})
	exact := h.update(2*time.Hour, UpdateCapture, CaptureRequest{Amount: amount})
	h.runLegacy()
	rec := h.legacyResult()
	if errType(over.rejected) != ErrTypeFailedPrecondition || errType(neg.rejected) != ErrTypeInvalidArgument {
		t.Fatalf("over %+v, negative %+v: want rejected", over, neg)
	}
	if exact.err != nil || rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount {
		t.Fatalf("capture %+v, record %+v", exact, rec)
	}
	if cs := h.capture.all(); len(cs) != 1 || cs[0].Req.Amount != amount || !cs[0].At.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("capture calls %+v", cs)
	}
}

// A capture the gateway refuses fails the update with the gateway's code
// and leaves the authorization, which then expires after
// AuthorizationTTL: canceled at the gateway with the expiry's key.
func TestLegacyRefusedCaptureLeavesTheAuthorizationToExpire(t *testing.T) {
	h := legacyHarness(t, true)
	authorizeLegacy(h)
	h.onLegacyCapture(func(int, call[gateway.CaptureRequest]) (gateway.Result, error) {
		return gateway.Result{}, invalidGatewayError("amount_too_large")
	})
	cancelAnswers(h)
	up := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: 100})
	h.at(2*time.Hour, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresCapture || got.AmountCapturable != amount || got.Version != 1 {
			t.Errorf("after a refused capture: %+v", got)
		}
	})
	h.runLegacy()
	rec := h.legacyResult()
	if errType(up.err) != ErrTypeFailedPrecondition || !strings.Contains(up.err.Error(), "refused the capture (amount_too_large)") ||
		up.rec.Status != entpayment.StatusRequiresCapture {
		t.Fatalf("capture update %+v, want FailedPrecondition naming the gateway's code", up)
	}
	if h.capture.n() != 1 {
		t.Fatalf("%d captures: a refusal is not retried", h.capture.n())
	}
	checkLegacyExpired(t, h, rec, "authorization_expired", AuthorizationTTL)
}

// checkLegacyExpired asserts the payment was canceled at the gateway at
// t0+after, with the expiry's key and reason, and recorded canceled.
func checkLegacyExpired(t *testing.T, h *harness, rec store.PaymentRecord, reason string, after time.Duration) {
	t.Helper()
	cs := h.cancel.all()
	want := gateway.CancelRequest{IdempotencyKey: h.wf + "/expire", Reference: legacyRef, Reason: reason}
	if len(cs) == 0 || cs[len(cs)-1].Req != want || !cs[len(cs)-1].At.Equal(t0.Add(after)) {
		t.Fatalf("cancel calls %+v, want %+v at %v", cs, want, after)
	}
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != reason || rec.FailureMessage != "canceled: "+reason ||
		rec.AmountCapturable != 0 || rec.AmountReceived != 0 || rec.NextActionURL != "" || rec.NextActionType != "" || rec.NextActionExpiresAt != nil {
		t.Fatalf("record %+v", rec)
	}
	saves := h.accepted()
	if last := saves[len(saves)-1]; !last.At.Equal(t0.Add(after)) || last.Journal != nil {
		t.Fatalf("last save %+v", last)
	}
	if js := h.journals(); len(js) != 0 {
		t.Fatalf("journals %+v", js)
	}
}

// A capture the gateway does not answer fails the update, after the retry
// window, with the gateway's error (not a refusal); the authorization
// stands and expires.
func TestLegacyUnansweredCaptureFailsTheUpdate(t *testing.T) {
	h := legacyHarness(t, true)
	authorizeLegacy(h)
	h.onLegacyCapture(func(int, call[gateway.CaptureRequest]) (gateway.Result, error) {
		return gateway.Result{}, unavailable()
	})
	cancelAnswers(h)
	up := h.update(time.Hour, UpdateCapture, CaptureRequest{})
	h.runLegacy()
	rec := h.legacyResult()
	if !up.done || up.err == nil || errType(up.err) == ErrTypeFailedPrecondition || up.rec.Status != entpayment.StatusRequiresCapture {
		t.Fatalf("capture update %+v, want the gateway's error", up)
	}
	if h.capture.n() != suiteAttempts || !up.at.Equal(t0.Add(time.Hour+suiteRetries)) {
		t.Fatalf("%d captures; the update answered at %v, want after the last", h.capture.n(), up.at.Sub(t0))
	}
	if opts := h.scheduledOf("Capture"); len(opts) != 1 || opts[0].Opts.ScheduleToCloseTimeout != presets.GatewayRetryWindow {
		t.Fatalf("capture activity options %+v", opts)
	}
	checkLegacyExpired(t, h, rec, "authorization_expired", AuthorizationTTL)
	wantSaves(t, h, []entpayment.Status{entpayment.StatusRequiresCapture, entpayment.StatusCanceled}, []time.Duration{0, AuthorizationTTL})
}

// A captured state the store refuses fails the update with the store's
// error: the payment stays as recorded.
func TestLegacyCaptureTheStoreRefusesFailsTheUpdate(t *testing.T) {
	h := legacyHarness(t, true)
	authorizeLegacy(h)
	h.onLegacyCapture(func(_ int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		return gateway.Result{Reference: legacyRef, Status: gateway.StatusSucceeded, AmountReceived: c.Req.Amount}, nil
	})
	cancelAnswers(h)
	h.refuseSave = func(rec store.PaymentRecord, _ *store.Journal) error {
		if rec.Status == entpayment.StatusSucceeded {
			return storeRefusal()
		}
		return nil
	}
	up := h.update(time.Hour, UpdateCapture, CaptureRequest{})
	h.at(2*time.Hour, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresCapture || got.Version != 1 {
			t.Errorf("after a refused save: %+v", got)
		}
	})
	h.runLegacy()
	rec := h.legacyResult()
	if errType(up.err) != activities.ErrTypeStoreInvalid || up.rec.Status != entpayment.StatusRequiresCapture {
		t.Fatalf("capture update %+v, want the store's refusal", up)
	}
	if all := h.allSaves(); len(all) != 3 || all[1].Err == nil || all[1].Rec.Status != entpayment.StatusSucceeded {
		t.Fatalf("saves %+v", all)
	}
	checkLegacyExpired(t, h, rec, "authorization_expired", AuthorizationTTL)
}

func TestLegacyCancel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		manual bool
		create gateway.Result
		reason string
		code   string
	}{
		{"authorized, a code", true, authorized(legacyRef), "duplicate", "duplicate"},
		{"authorized, free text", true, authorized(legacyRef), "changed my mind", "requested_by_customer"},
		{"waiting for 3-D Secure", false, requiresAction(legacyRef), "abandoned", "abandoned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := legacyHarness(t, tc.manual)
			createAnswers(h, tc.create)
			cancelAnswers(h)
			up := h.update(time.Minute, UpdateCancel, CancelRequest{Reason: tc.reason})
			h.runLegacy()
			rec := h.legacyResult()
			want := gateway.CancelRequest{IdempotencyKey: h.wf + "/cancel", Reference: legacyRef, Reason: tc.code}
			if cs := h.cancel.all(); len(cs) != 1 || cs[0].Req != want || !cs[0].At.Equal(t0.Add(time.Minute)) {
				t.Fatalf("cancel calls %+v, want %+v", cs, want)
			}
			if rec.Status != entpayment.StatusCanceled || rec.FailureCode != tc.code || rec.FailureMessage != "canceled: "+tc.code ||
				rec.AmountCapturable != 0 || rec.NextActionURL != "" || rec.NextActionExpiresAt != nil || rec.Version != 2 {
				t.Fatalf("record %+v", rec)
			}
			if up.err != nil || up.rejected != nil || up.rec.Status != entpayment.StatusCanceled || up.rec.Version != 2 {
				t.Fatalf("cancel update %+v", up)
			}
			wantSaves(t, h, []entpayment.Status{entpayment.Status(tc.create.Status), entpayment.StatusCanceled}, []time.Duration{0, time.Minute})
		})
	}
}

// A cancel the gateway refuses fails the update with its code; one it does
// not answer fails it with its error. Either way the authorization stands
// and expires.
func TestLegacyCancelNotDone(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		typ  string
	}{
		{"refused", invalidGatewayError("payment_intent_unexpected_state"), ErrTypeFailedPrecondition},
		{"unanswered", unavailable(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := legacyHarness(t, true)
			authorizeLegacy(h)
			h.onLegacyCancel(func(_ int, c call[gateway.CancelRequest]) (gateway.Result, error) {
				if c.Req.IdempotencyKey == h.wf+"/cancel" {
					return gateway.Result{}, tc.err
				}
				return gateway.Result{Reference: legacyRef, Status: gateway.StatusCanceled}, nil
			})
			up := h.update(time.Minute, UpdateCancel, CancelRequest{Reason: "duplicate"})
			h.runLegacy()
			rec := h.legacyResult()
			if !up.done || up.err == nil || up.rec.Status != entpayment.StatusRequiresCapture || up.rec.Version != 1 {
				t.Fatalf("cancel update %+v", up)
			}
			if tc.typ != "" && (errType(up.err) != tc.typ || !strings.Contains(up.err.Error(), "refused the cancel (payment_intent_unexpected_state)")) {
				t.Fatalf("cancel error %v", up.err)
			}
			if tc.typ == "" && errType(up.err) == ErrTypeFailedPrecondition {
				t.Fatalf("cancel error %v, want the gateway's", up.err)
			}
			checkLegacyExpired(t, h, rec, "authorization_expired", AuthorizationTTL)
			wantSaves(t, h, []entpayment.Status{entpayment.StatusRequiresCapture, entpayment.StatusCanceled}, []time.Duration{0, AuthorizationTTL})
		})
	}
}

func TestLegacyUnfinishedThreeDSecureExpires(t *testing.T) {
	h := legacyHarness(t, false)
	createAnswers(h, requiresAction(legacyRef))
	cancelAnswers(h)
	h.at(time.Hour, func() {
		got := h.query()
		if got.Status != entpayment.StatusRequiresAction || got.NextActionType != "redirect_to_url" || got.NextActionURL != "https://gw.test/3ds/"+legacyRef ||
			got.NextActionExpiresAt == nil || !got.NextActionExpiresAt.Equal(t0.Add(ActionTTL)) {
			t.Errorf("waiting for 3-D Secure: %+v", got)
		}
	})
	h.runLegacy()
	rec := h.legacyResult()
	checkLegacyExpired(t, h, rec, "action_expired", ActionTTL)
	wantSaves(t, h, []entpayment.Status{entpayment.StatusRequiresAction, entpayment.StatusCanceled}, []time.Duration{0, ActionTTL})
}

// An expiry the gateway refuses to cancel records what the intent shows,
// or cancels the payment when it shows nothing it can move to.
func TestLegacyExpiryTheGatewayRefuses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		create    gateway.Result
		retrieved gateway.Result
		after     time.Duration
		status    entpayment.Status
		code      string
		msg       string
		received  int64
	}{
		{name: "voided there", create: authorized(legacyRef), retrieved: gateway.Result{Reference: legacyRef, Status: gateway.StatusCanceled},
			after: AuthorizationTTL, status: entpayment.StatusCanceled, code: "authorization_expired", msg: "canceled: authorization_expired"},
		{name: "captured there", create: authorized(legacyRef), retrieved: succeeded(legacyRef, amount),
			after: AuthorizationTTL, status: entpayment.StatusSucceeded, received: amount},
		{name: "captured there, no amount", create: authorized(legacyRef), retrieved: gateway.Result{Reference: legacyRef, Status: gateway.StatusSucceeded},
			after: AuthorizationTTL, status: entpayment.StatusSucceeded, received: amount},
		{name: "still authorized there", create: authorized(legacyRef), retrieved: authorized(legacyRef),
			after: AuthorizationTTL, status: entpayment.StatusCanceled, code: "authorization_expired", msg: "canceled: authorization_expired"},
		{name: "3-D Secure failed there", create: requiresAction(legacyRef),
			retrieved: gateway.Result{Reference: legacyRef, Status: gateway.StatusFailed, FailureCode: "authentication_required"},
			after:     ActionTTL, status: entpayment.StatusFailed, code: "authentication_required"},
		{name: "processing there", create: requiresAction(legacyRef), retrieved: gateway.Result{Reference: legacyRef, Status: gateway.StatusProcessing},
			after: ActionTTL, status: entpayment.StatusCanceled, code: "action_expired", msg: "canceled: action_expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := legacyHarness(t, tc.create.Status == gateway.StatusRequiresCapture)
			createAnswers(h, tc.create)
			h.onLegacyCancel(func(int, call[gateway.CancelRequest]) (gateway.Result, error) {
				return gateway.Result{}, invalidGatewayError("payment_intent_unexpected_state")
			})
			h.onLegacyRetrieve(func(_ int, c call[string]) (gateway.Result, error) {
				if !c.At.Equal(t0.Add(tc.after)) {
					t.Errorf("retrieve at %v", c.At.Sub(t0))
				}
				return tc.retrieved, nil
			})
			h.runLegacy()
			rec := h.legacyResult()
			if rec.Status != tc.status || rec.FailureCode != tc.code || rec.FailureMessage != tc.msg || rec.AmountReceived != tc.received ||
				rec.AmountCapturable != 0 || rec.NextActionURL != "" || rec.NextActionExpiresAt != nil || rec.Version != 2 {
				t.Fatalf("record %+v", rec)
			}
			if h.cancel.n() != 1 || h.retrieve.n() != 1 {
				t.Fatalf("%d cancels, %d retrieves", h.cancel.n(), h.retrieve.n())
			}
			wantSaves(t, h, []entpayment.Status{entpayment.Status(tc.create.Status), tc.status}, []time.Duration{0, tc.after})
			if tc.received != 0 {
				wantJournal(t, h.journals(), tc.received, t0.Add(tc.after))
			} else if js := h.journals(); len(js) != 0 {
				t.Fatalf("journals %+v", js)
			}
		})
	}
}

// A payment the gateway left processing (its own state, say waiting for a
// bank) expires after ActionTTL without news; when the gateway refuses the
// cancel and still shows it pending, it waits another ActionTTL.
func TestLegacyProcessingPaymentWaitsWhileTheGatewayShowsItPending(t *testing.T) {
	h := legacyHarness(t, false)
	createAnswers(h, gateway.Result{Reference: legacyRef, Status: gateway.StatusProcessing})
	h.onLegacyCancel(func(int, call[gateway.CancelRequest]) (gateway.Result, error) {
		return gateway.Result{}, invalidGatewayError("payment_intent_unexpected_state")
	})
	h.onLegacyRetrieve(func(n int, _ call[string]) (gateway.Result, error) {
		if n == 1 {
			// A state of the gateway's own this payment knows as processing.
			return gateway.Result{Reference: legacyRef, Status: "requires_confirmation"}, nil
		}
		return gateway.Result{Reference: legacyRef, Status: gateway.StatusCanceled}, nil
	})
	h.runLegacy()
	rec := h.legacyResult()
	wantSaves(t, h, []entpayment.Status{entpayment.StatusProcessing, entpayment.StatusProcessing, entpayment.StatusCanceled},
		[]time.Duration{0, ActionTTL, 2 * ActionTTL})
	if second := h.accepted()[1].Rec; second.NextActionExpiresAt != nil || second.NextActionURL != "" || second.FailureCode != "" || second.Version != 2 {
		t.Fatalf("still processing: %+v", second)
	}
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "action_expired" || rec.FailureMessage != "canceled: action_expired" || rec.Version != 3 {
		t.Fatalf("record %+v", rec)
	}
	cs := h.cancel.all()
	if len(cs) != 2 || !cs[0].At.Equal(t0.Add(ActionTTL)) || !cs[1].At.Equal(t0.Add(2*ActionTTL)) || cs[1].Req.Reason != "action_expired" {
		t.Fatalf("cancel calls %+v", cs)
	}
}

// An expiry whose cancel or lookup the gateway never answers fails the
// legacy workflow with the gateway's error, once the retry window is over.
func TestLegacyUnansweredExpiryFailsTheWorkflow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cancel   error
		retrieve bool
	}{
		{"cancel unanswered", unavailable(), false},
		{"cancel refused, lookup unanswered", invalidGatewayError("payment_intent_unexpected_state"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := legacyHarness(t, true)
			authorizeLegacy(h)
			h.onLegacyCancel(func(int, call[gateway.CancelRequest]) (gateway.Result, error) { return gateway.Result{}, tc.cancel })
			if tc.retrieve {
				h.onLegacyRetrieve(func(int, call[string]) (gateway.Result, error) { return gateway.Result{}, unavailable() })
			}
			h.runLegacy()
			if !h.env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			err := h.env.GetWorkflowError()
			var canceled *temporal.CanceledError
			if err == nil || errors.As(err, &canceled) || !strings.Contains(err.Error(), "503 from gateway") {
				t.Fatalf("workflow error %v, want the gateway's", err)
			}
			if st := h.statuses(); !reflect.DeepEqual(st, []entpayment.Status{entpayment.StatusRequiresCapture}) {
				t.Fatalf("saved statuses %v", st)
			}
			n := h.cancel.n()
			if tc.retrieve {
				n = h.retrieve.n()
				if h.cancel.n() != 1 {
					t.Fatalf("%d cancels", h.cancel.n())
				}
			}
			if n != suiteAttempts {
				t.Fatalf("%d attempts", n)
			}
		})
	}
}

// threeDS is a legacy payment waiting for 3-D Secure, then ended by what
// the test sends (or expired after ActionTTL).
func threeDS(t *testing.T) *harness {
	h := legacyHarness(t, false)
	createAnswers(h, requiresAction(legacyRef))
	cancelAnswers(h)
	return h
}

func TestLegacyGatewayEventsMoveThePayment(t *testing.T) {
	at := 10 * time.Minute
	for _, tc := range []struct {
		name       string
		ev         GatewayEvent
		status     entpayment.Status
		received   int64
		capturable int64
		code       string
	}{
		{name: "succeeded", ev: GatewayEvent{Status: gateway.StatusSucceeded, AmountReceived: amount}, status: entpayment.StatusSucceeded, received: amount},
		{name: "succeeded, no amount", ev: GatewayEvent{Status: gateway.StatusSucceeded}, status: entpayment.StatusSucceeded, received: amount},
		{name: "succeeded, part", ev: GatewayEvent{Status: gateway.StatusSucceeded, AmountReceived: 1}, status: entpayment.StatusSucceeded, received: 1},
		{name: "failed", ev: GatewayEvent{Status: gateway.StatusFailed, FailureCode: "authentication_required", FailureMessage: "3-D Secure failed."},
			status: entpayment.StatusFailed, code: "authentication_required"},
		{name: "canceled", ev: GatewayEvent{Status: gateway.StatusCanceled}, status: entpayment.StatusCanceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := threeDS(t)
			ev := tc.ev
			ev.EventID, ev.Type, ev.Reference = "evt_1", "payment_intent."+string(ev.Status), legacyRef
			h.signal(at, ev)
			// A redelivery changes nothing.
			h.signal(at+time.Minute, ev)
			h.runLegacy()
			rec := h.legacyResult()
			if rec.Status != tc.status || rec.AmountReceived != tc.received || rec.AmountCapturable != tc.capturable || rec.FailureCode != tc.code ||
				rec.FailureMessage != ev.FailureMessage || rec.NextActionURL != "" || rec.NextActionExpiresAt != nil || rec.Version != 2 {
				t.Fatalf("record %+v", rec)
			}
			wantSaves(t, h, []entpayment.Status{entpayment.StatusRequiresAction, tc.status}, []time.Duration{0, at})
			if tc.received != 0 {
				wantJournal(t, h.journals(), tc.received, t0.Add(at))
			} else if js := h.journals(); len(js) != 0 {
				t.Fatalf("journals %+v", js)
			}
			if h.cancel.n() != 0 {
				t.Fatalf("%d cancels", h.cancel.n())
			}
		})
	}
}

// 3-D Secure completed into an authorization (of everything): the
// authorization expires AuthorizationTTL after the event.
func TestLegacyAuthorizationByAnEventExpires(t *testing.T) {
	h := legacyHarness(t, true)
	createAnswers(h, requiresAction(legacyRef))
	cancelAnswers(h)
	at := 10 * time.Minute
	h.signal(at, GatewayEvent{EventID: "evt_auth", Type: "payment_intent.amount_capturable_updated", Reference: legacyRef,
		Status: gateway.StatusRequiresCapture, AmountCapturable: amount})
	h.at(at+time.Minute, func() {
		got := h.query()
		if got.Status != entpayment.StatusRequiresCapture || got.AmountCapturable != amount || got.NextActionURL != "" ||
			got.AuthorizationExpiresAt == nil || !got.AuthorizationExpiresAt.Equal(t0.Add(at+AuthorizationTTL)) {
			t.Errorf("authorized by the event: %+v", got)
		}
	})
	h.runLegacy()
	rec := h.legacyResult()
	checkLegacyExpired(t, h, rec, "authorization_expired", at+AuthorizationTTL)
	wantSaves(t, h, []entpayment.Status{entpayment.StatusRequiresAction, entpayment.StatusRequiresCapture, entpayment.StatusCanceled},
		[]time.Duration{0, at, at + AuthorizationTTL})
}

// Events with impossible amounts, or a move the state machine forbids, or
// about a finished payment, change nothing.
func TestLegacyGatewayEventsThatChangeNothing(t *testing.T) {
	h := threeDS(t)
	ignored := []GatewayEvent{
		{EventID: "evt_a", Status: gateway.StatusSucceeded, AmountReceived: amount + 1},
		{EventID: "evt_b", Status: gateway.StatusRequiresCapture, AmountCapturable: amount + 1},
		{EventID: "evt_c", Status: gateway.StatusFailed, AmountReceived: -1},
		{EventID: "evt_d", Status: gateway.StatusRequiresCapture, AmountCapturable: -1},
		{EventID: "evt_e", Status: gateway.StatusProcessing},
		{EventID: "evt_f", Status: gateway.StatusRequiresAction},
	}
	for i, ev := range ignored {
		h.signal(time.Duration(i+1)*time.Minute, ev)
	}
	h.at(30*time.Minute, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresAction || got.Version != 1 {
			t.Errorf("after events that change nothing: %+v", got)
		}
	})
	h.signal(time.Hour, GatewayEvent{EventID: "evt_ok", Status: gateway.StatusSucceeded, AmountReceived: amount})
	// About the finished payment: a late failure and a new success.
	h.signal(2*time.Hour, GatewayEvent{EventID: "evt_late", Status: gateway.StatusFailed, FailureCode: "card_declined"})
	h.runLegacy()
	rec := h.legacyResult()
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || rec.Version != 2 || rec.FailureCode != "" {
		t.Fatalf("record %+v", rec)
	}
	wantSaves(t, h, []entpayment.Status{entpayment.StatusRequiresAction, entpayment.StatusSucceeded}, []time.Duration{0, time.Hour})
	if got := len(h.log.find("ERROR", "impossible amounts")); got != 4 {
		t.Fatalf("%d events logged with impossible amounts, want 4", got)
	}
	if got := len(h.log.find("INFO", "ignored by the state machine")); got != 2 {
		t.Fatalf("%d events logged as ignored by the state machine, want 2", got)
	}
	if got := len(h.log.find("ERROR", "saving a gateway event failed")); got != 0 {
		t.Fatalf("%d failed saves logged", got)
	}
}

// An event whose state the store refuses is not marked as seen: its
// redelivery applies it.
func TestLegacyEventTheStoreRefusedIsAppliedOnRedelivery(t *testing.T) {
	h := threeDS(t)
	refused := 0
	h.refuseSave = func(rec store.PaymentRecord, _ *store.Journal) error {
		if rec.Status == entpayment.StatusSucceeded && refused == 0 {
			refused++
			return storeRefusal()
		}
		return nil
	}
	ev := GatewayEvent{EventID: "evt_1", Type: "payment_intent.succeeded", Reference: legacyRef, Status: gateway.StatusSucceeded, AmountReceived: amount}
	h.signal(10*time.Minute, ev)
	h.at(20*time.Minute, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresAction || got.Version != 1 {
			t.Errorf("after a refused save: %+v", got)
		}
	})
	h.signal(30*time.Minute, ev)
	h.runLegacy()
	rec := h.legacyResult()
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || rec.Version != 2 {
		t.Fatalf("record %+v", rec)
	}
	wantSaves(t, h, []entpayment.Status{entpayment.StatusRequiresAction, entpayment.StatusSucceeded}, []time.Duration{0, 30 * time.Minute})
	wantJournal(t, h.journals(), amount, t0.Add(30*time.Minute))
	if got := h.log.find("ERROR", "saving a gateway event failed"); len(got) != 1 || got[0].kv("event") != "evt_1" {
		t.Fatalf("failed saves logged: %+v", got)
	}
}
