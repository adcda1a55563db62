package payment

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
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/payments-platform/payments/activities"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func input(manual bool) Input {
	return Input{
		PaymentID: "pay_01test", MerchantID: "acct_m", CustomerID: "acct_c",
		Amount: 5000, Currency: "USD", PaymentMethod: "pm_card_visa", ManualCapture: manual,
		Gateway: "sandbox", CreatedAt: t0,
	}
}

// saves records every SavePayment call, like the database would.
type saves struct {
	mu       sync.Mutex
	records  []store.PaymentRecord
	journals []*store.Journal
}

func (s *saves) save(_ context.Context, rec store.PaymentRecord, j *store.Journal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, rec)
	if j != nil {
		s.journals = append(s.journals, j)
	}
	return nil
}

func (s *saves) last() store.PaymentRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records[len(s.records)-1]
}

// checkVersions asserts every save carries a higher version than the one before.
func (s *saves) checkVersions(t *testing.T) {
	t.Helper()
	for i := 1; i < len(s.records); i++ {
		if s.records[i].Version <= s.records[i-1].Version {
			t.Fatalf("save %d has version %d after %d", i, s.records[i].Version, s.records[i-1].Version)
		}
	}
}

// balanced asserts each journal's debits equal its credits.
func balanced(t *testing.T, journals []*store.Journal) {
	t.Helper()
	for _, j := range journals {
		var d, c int64
		for _, l := range j.Lines {
			if l.Direction == "debit" {
				d += l.Amount
			} else {
				c += l.Amount
			}
		}
		if d != c || d == 0 {
			t.Fatalf("journal %s: debits %d, credits %d", j.ID, d, c)
		}
	}
}

func newEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *saves) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger{})
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.RegisterActivity(gw)
	env.RegisterActivity(db)
	sv := &saves{}
	env.OnActivity(db.SavePayment, mock.Anything, mock.Anything, mock.Anything).Return(sv.save)
	return env, sv
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) store.PaymentRecord {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	var rec store.PaymentRecord
	if err := env.GetWorkflowResult(&rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestAutomaticCaptureSucceeds(t *testing.T) {
	env, sv := newEnv(t)
	env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(
		func(_ context.Context, r gateway.CreateRequest) (gateway.Result, error) {
			if r.IdempotencyKey != "default-test-workflow-id/create" && r.IdempotencyKey == "" {
				t.Errorf("no idempotency key")
			}
			if r.Amount != 5000 || r.Currency != "USD" || r.PaymentMethod != "pm_card_visa" || r.ManualCapture || r.PaymentID != "pay_01test" {
				t.Errorf("gateway request %+v", r)
			}
			return gateway.Result{Reference: "pi_1", Status: gateway.StatusSucceeded, AmountReceived: 5000,
				Method: gateway.MethodDetails{Type: "card", Brand: "visa", Last4: "4242"}}, nil
		})
	env.ExecuteWorkflow(Workflow, input(false))
	rec := result(t, env)
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != 5000 || rec.AmountCapturable != 0 || rec.GatewayReference != "pi_1" || rec.MethodLast4 != "4242" {
		t.Fatalf("final record %+v", rec)
	}
	// The fast path answered within the first workflow task: one write.
	if len(sv.records) != 1 {
		t.Fatalf("%d saves, want 1 on the fast path", len(sv.records))
	}
	if sv.last().Status != entpayment.StatusSucceeded {
		t.Fatalf("last save %s", sv.last().Status)
	}
	sv.checkVersions(t)
	if len(sv.journals) != 1 || sv.journals[0].Currency != "USD" {
		t.Fatalf("journals %+v", sv.journals)
	}
	balanced(t, sv.journals)
}

func TestDeclineFails(t *testing.T) {
	env, sv := newEnv(t)
	env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(gateway.Result{
		Reference: "pi_2", Status: gateway.StatusFailed, FailureCode: "insufficient_funds", FailureMessage: "Your card has insufficient funds.",
	}, nil)
	env.ExecuteWorkflow(Workflow, input(false))
	rec := result(t, env)
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "insufficient_funds" || rec.AmountReceived != 0 {
		t.Fatalf("record %+v", rec)
	}
	if len(sv.journals) != 0 {
		t.Fatalf("a decline moved money: %+v", sv.journals)
	}
}

func TestGatewayRetriesTransientErrors(t *testing.T) {
	env, sv := newEnv(t)
	calls := 0
	env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(
		func(context.Context, gateway.CreateRequest) (gateway.Result, error) {
			calls++
			if calls <= 3 {
				return gateway.Result{}, temporal.NewApplicationError("503 from gateway", "GatewayUnavailable")
			}
			return gateway.Result{Reference: "pi_3", Status: gateway.StatusSucceeded, AmountReceived: 5000}, nil
		})
	env.ExecuteWorkflow(Workflow, input(false))
	rec := result(t, env)
	if calls != 4 || rec.Status != entpayment.StatusSucceeded {
		t.Fatalf("calls=%d status=%s", calls, rec.Status)
	}
	// When the fast path fails, the payment is recorded as processing before
	// the retried call, so it can be read while the gateway is down.
	if first := sv.records[0]; first.Status != entpayment.StatusProcessing || len(sv.records) != 2 {
		t.Fatalf("saves %+v, want processing then the final state", sv.records)
	}
}

func TestInvalidGatewayRequestIsNotRetried(t *testing.T) {
	env, _ := newEnv(t)
	calls := 0
	env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(
		func(context.Context, gateway.CreateRequest) (gateway.Result, error) {
			calls++
			return gateway.Result{}, temporal.NewApplicationErrorWithOptions("No such PaymentMethod", activities.ErrTypeGatewayInvalid,
				temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.GatewayErrorDetails{Code: "resource_missing", Message: "No such PaymentMethod"}}})
		})
	env.ExecuteWorkflow(Workflow, input(false))
	rec := result(t, env)
	if calls != 1 || rec.Status != entpayment.StatusFailed || rec.FailureCode != "resource_missing" {
		t.Fatalf("calls=%d record=%+v", calls, rec)
	}
}

func authorize(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(gateway.Result{
		Reference: "pi_m", Status: gateway.StatusRequiresCapture, AmountCapturable: 5000}, nil)
}

type updateResult struct {
	rec      store.PaymentRecord
	err      error
	rejected error
	done     bool
}

func sendUpdate(env *testsuite.TestWorkflowEnvironment, after time.Duration, name string, arg any, out *updateResult) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(name, fmt.Sprintf("%s-%v", name, after), &testsuite.TestUpdateCallback{
			OnReject: func(err error) { out.rejected = err; out.done = true },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				out.err = err
				if rec, ok := v.(store.PaymentRecord); ok {
					out.rec = rec
				}
				out.done = true
			},
		}, arg)
	}, after)
}

func TestManualPartialCapture(t *testing.T) {
	env, sv := newEnv(t)
	authorize(env)
	env.OnActivity(gw.Capture, mock.Anything, mock.Anything).Return(
		func(_ context.Context, r gateway.CaptureRequest) (gateway.Result, error) {
			if r.Amount != 3000 || r.Reference != "pi_m" || r.IdempotencyKey == "" {
				t.Errorf("capture request %+v", r)
			}
			return gateway.Result{Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: 3000}, nil
		})
	var over, ok updateResult
	sendUpdate(env, time.Hour, UpdateCapture, CaptureRequest{Amount: 6000}, &over)
	sendUpdate(env, 2*time.Hour, UpdateCapture, CaptureRequest{Amount: 3000}, &ok)
	env.ExecuteWorkflow(Workflow, input(true))
	rec := result(t, env)
	if over.rejected == nil {
		t.Fatal("capture above the authorized amount was not rejected")
	}
	if !ok.done || ok.err != nil || ok.rec.Status != entpayment.StatusSucceeded {
		t.Fatalf("capture: %+v", ok)
	}
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != 3000 || rec.AmountCapturable != 0 {
		t.Fatalf("record %+v", rec)
	}
	if len(sv.journals) != 1 || sv.journals[0].Lines[0].Amount != 3000 {
		t.Fatalf("journals %+v", sv.journals)
	}
	balanced(t, sv.journals)
}

func TestAuthorizationExpiresAfterSevenDays(t *testing.T) {
	env, _ := newEnv(t)
	authorize(env)
	var canceled gateway.CancelRequest
	env.OnActivity(gw.Cancel, mock.Anything, mock.Anything).Return(
		func(_ context.Context, r gateway.CancelRequest) (gateway.Result, error) {
			canceled = r
			return gateway.Result{Reference: r.Reference, Status: gateway.StatusCanceled}, nil
		})
	env.ExecuteWorkflow(Workflow, input(true))
	rec := result(t, env)
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "authorization_expired" {
		t.Fatalf("record %+v", rec)
	}
	if canceled.Reference != "pi_m" {
		t.Fatalf("gateway cancel %+v", canceled)
	}
}

func TestCancelRules(t *testing.T) {
	env, _ := newEnv(t)
	authorize(env)
	env.OnActivity(gw.Cancel, mock.Anything, mock.Anything).Return(gateway.Result{Status: gateway.StatusCanceled}, nil)
	var cancel updateResult
	sendUpdate(env, time.Minute, UpdateCancel, CancelRequest{Reason: "duplicate"}, &cancel)
	env.ExecuteWorkflow(Workflow, input(true))
	rec := result(t, env)
	if cancel.err != nil || cancel.rejected != nil || rec.Status != entpayment.StatusCanceled || rec.FailureCode != "duplicate" {
		t.Fatalf("cancel %+v record %+v", cancel, rec)
	}
	// That a canceled (or expired) payment refuses capture is the
	// validator's job: TestFinalStatesRefuseCaptureAndCancel. The test
	// suite delivers no update to a finished workflow.
}

func TestFinalStatesRefuseCaptureAndCancel(t *testing.T) {
	for _, st := range []entpayment.Status{entpayment.StatusSucceeded, entpayment.StatusFailed, entpayment.StatusCanceled} {
		r := run{rec: store.PaymentRecord{Status: st, AmountCapturable: 0}}
		if err := r.validateCancel(nil, CancelRequest{}); err == nil {
			t.Errorf("cancel of a %s payment validated", st)
		}
		if err := r.validateCapture(nil, CaptureRequest{}); err == nil {
			t.Errorf("capture of a %s payment validated", st)
		}
	}
	r := run{rec: store.PaymentRecord{Status: entpayment.StatusRequiresAction}}
	if err := r.validateCapture(nil, CaptureRequest{}); err == nil {
		t.Error("capture before authorization validated")
	}
	if err := r.validateCancel(nil, CancelRequest{}); err != nil {
		t.Errorf("cancel during 3-D Secure refused: %v", err)
	}
}

func TestThreeDSecureCompletesThroughTheGatewayEvent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		event  GatewayEvent
		status entpayment.Status
		code   string
	}{
		{"completed", GatewayEvent{EventID: "evt_1", Type: "payment_intent.succeeded", Status: gateway.StatusSucceeded, AmountReceived: 5000}, entpayment.StatusSucceeded, ""},
		{"failed", GatewayEvent{EventID: "evt_2", Type: "payment_intent.payment_failed", Status: gateway.StatusFailed, FailureCode: "authentication_required"}, entpayment.StatusFailed, "authentication_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, sv := newEnv(t)
			env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(gateway.Result{
				Reference: "pi_3ds", Status: gateway.StatusRequiresAction, RedirectURL: "http://127.0.0.1:8080/sandbox/3ds/pi_3ds"}, nil)
			env.RegisterDelayedCallback(func() {
				if got := sv.last(); got.Status != entpayment.StatusRequiresAction || got.NextActionURL == "" {
					t.Errorf("before the event: %+v", got)
				}
				env.SignalWorkflow(SignalGatewayEvent, tc.event)
				env.SignalWorkflow(SignalGatewayEvent, tc.event) // a redelivery changes nothing
			}, 10*time.Minute)
			env.ExecuteWorkflow(Workflow, input(false))
			rec := result(t, env)
			if rec.Status != tc.status || rec.FailureCode != tc.code || rec.NextActionURL != "" {
				t.Fatalf("record %+v", rec)
			}
			balanced(t, sv.journals)
		})
	}
}

func TestUnfinishedThreeDSecureIsCanceled(t *testing.T) {
	env, _ := newEnv(t)
	env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(gateway.Result{
		Reference: "pi_3ds", Status: gateway.StatusRequiresAction, RedirectURL: "http://x/3ds"}, nil)
	env.OnActivity(gw.Cancel, mock.Anything, mock.Anything).Return(gateway.Result{Status: gateway.StatusCanceled}, nil)
	env.ExecuteWorkflow(Workflow, input(false))
	rec := result(t, env)
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "action_expired" {
		t.Fatalf("record %+v", rec)
	}
}

// quietLogger keeps the test suite's debug chatter out of test output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

func invalidGatewayError(code string) error {
	return temporal.NewApplicationErrorWithOptions("refused", activities.ErrTypeGatewayInvalid,
		temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{activities.GatewayErrorDetails{Code: code, Message: "refused"}}})
}

func TestLateEventsNeverMoveAPaymentBackwards(t *testing.T) {
	env, sv := newEnv(t)
	authorize(env)
	env.OnActivity(gw.Capture, mock.Anything, mock.Anything).Return(gateway.Result{Status: gateway.StatusSucceeded, AmountReceived: 5000}, nil)
	env.RegisterDelayedCallback(func() {
		// A replayed 3-D Secure event and a late failure after authorization.
		env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_late_1", Type: "payment_intent.requires_action", Status: gateway.StatusRequiresAction})
		env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_late_2", Type: "payment_intent.payment_failed", Status: gateway.StatusFailed, FailureCode: "authentication_required"})
		env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_late_3", Type: "payment_intent.unknown"})
	}, time.Minute)
	var capture updateResult
	sendUpdate(env, time.Hour, UpdateCapture, CaptureRequest{}, &capture)
	env.ExecuteWorkflow(Workflow, input(true))
	rec := result(t, env)
	if capture.err != nil || capture.rejected != nil || rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != 5000 {
		t.Fatalf("capture %+v, record %+v", capture, rec)
	}
	for _, r := range sv.records {
		if r.Status == entpayment.StatusRequiresAction || r.Status == entpayment.StatusFailed {
			t.Fatalf("a late event was applied: %+v", r)
		}
	}
}

func TestExpiryWhenTheGatewayAlreadyVoidedTheAuthorization(t *testing.T) {
	env, _ := newEnv(t)
	authorize(env)
	env.OnActivity(gw.Cancel, mock.Anything, mock.Anything).Return(gateway.Result{}, invalidGatewayError("payment_intent_unexpected_state"))
	env.OnActivity(gw.Retrieve, mock.Anything, mock.Anything).Return(gateway.Result{Reference: "pi_m", Status: gateway.StatusCanceled}, nil)
	env.ExecuteWorkflow(Workflow, input(true))
	rec := result(t, env) // the workflow ends normally, not with an error
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "authorization_expired" || rec.AmountCapturable != 0 {
		t.Fatalf("record %+v", rec)
	}
}

func TestCaptureRefusedByTheGatewayKeepsTheAuthorization(t *testing.T) {
	env, sv := newEnv(t)
	authorize(env)
	env.OnActivity(gw.Capture, mock.Anything, mock.Anything).Return(gateway.Result{}, invalidGatewayError("amount_too_large"))
	env.OnActivity(gw.Cancel, mock.Anything, mock.Anything).Return(gateway.Result{Status: gateway.StatusCanceled}, nil)
	var capture updateResult
	sendUpdate(env, time.Hour, UpdateCapture, CaptureRequest{Amount: 100}, &capture)
	env.RegisterDelayedCallback(func() {
		if got := sv.last(); got.Status != entpayment.StatusRequiresCapture || got.AmountCapturable != 5000 {
			t.Errorf("after a refused capture: %+v", got)
		}
	}, 2*time.Hour)
	env.ExecuteWorkflow(Workflow, input(true))
	_ = result(t, env)
	var appErr *temporal.ApplicationError
	if !errors.As(capture.err, &appErr) || appErr.Type() != ErrTypeFailedPrecondition || !strings.Contains(appErr.Message(), "amount_too_large") {
		t.Fatalf("capture error %v, want FailedPrecondition naming the gateway's code", capture.err)
	}
}

func TestUnansweredChargeIsRetriedForHoursThenFails(t *testing.T) {
	env, sv := newEnv(t)
	calls := 0
	var window time.Duration
	env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, _ gateway.CreateRequest) (gateway.Result, error) {
			calls++
			if info := activity.GetInfo(ctx); !info.IsLocalActivity {
				window = info.ScheduleToCloseTimeout
			}
			return gateway.Result{}, temporal.NewApplicationError("gateway timeout", "GatewayUnavailable")
		})
	env.ExecuteWorkflow(Workflow, input(false))
	rec := result(t, env)
	if rec.Status != entpayment.StatusFailed || rec.FailureCode != "gateway_unreachable" {
		t.Fatalf("record %+v", rec)
	}
	// The test suite caps retries at 10 attempts; the real bound is the window.
	if calls < 2 || window < 23*time.Hour {
		t.Fatalf("%d attempts within a %v window: an unanswered charge must be retried for hours", calls, window)
	}
	if sv.records[0].Status != entpayment.StatusProcessing {
		t.Fatalf("the payment was not recorded as processing while the gateway was down: %+v", sv.records[0])
	}
}

func TestRefusedSaveLeavesTheStateAsRecorded(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger{})
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(t0)
	env.RegisterActivity(gw)
	env.RegisterActivity(db)
	saves := 0
	env.OnActivity(db.SavePayment, mock.Anything, mock.Anything, mock.Anything).Return(
		func(_ context.Context, rec store.PaymentRecord, _ *store.Journal) error {
			saves++
			if rec.Status == entpayment.StatusSucceeded {
				return temporal.NewNonRetryableApplicationError("constraint", activities.ErrTypeStoreInvalid, nil)
			}
			return nil
		})
	env.OnActivity(gw.CreatePayment, mock.Anything, mock.Anything).Return(gateway.Result{
		Reference: "pi_3ds", Status: gateway.StatusRequiresAction, RedirectURL: "http://x/3ds"}, nil)
	env.OnActivity(gw.Cancel, mock.Anything, mock.Anything).Return(gateway.Result{Status: gateway.StatusCanceled}, nil)
	var state store.PaymentRecord
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_ok", Type: "payment_intent.succeeded", Status: gateway.StatusSucceeded, AmountReceived: 5000})
	}, time.Minute)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryState)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		_ = v.Get(&state)
	}, 2*time.Minute)
	env.ExecuteWorkflow(Workflow, input(false))
	rec := result(t, env)
	if state.Status != entpayment.StatusRequiresAction {
		t.Fatalf("after a refused save the live state is %s, want requires_action as recorded", state.Status)
	}
	// The action then expires normally.
	if rec.Status != entpayment.StatusCanceled {
		t.Fatalf("final %+v", rec)
	}
}
