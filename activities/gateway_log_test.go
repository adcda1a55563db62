package activities

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/internal/gateway"
)

// logRecord is one captured log record, its attributes flattened.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

// captureHandler is a slog.Handler that keeps every record, for tests
// that assert what was logged at which level.
type captureHandler struct {
	mu      *sync.Mutex
	records *[]logRecord
	attrs   []slog.Attr
}

func newCapture() captureHandler {
	return captureHandler{mu: new(sync.Mutex), records: new([]logRecord)}
}

func (h captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h captureHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]any{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.Resolve().Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Resolve().Any()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, rec)
	return nil
}

func (h captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return h
}

func (h captureHandler) WithGroup(string) slog.Handler { return h }

// all returns the records kept so far.
func (h captureHandler) all() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), *h.records...)
}

// flakyGW fails its first failures creates with a 503, as the sandbox's
// pm_sandbox_flaky does, then succeeds.
type flakyGW struct {
	fakeGW
	failures int
}

func (f *flakyGW) CreatePayment(context.Context, gateway.CreateRequest) (gateway.Result, error) {
	f.calls++
	if f.calls <= f.failures {
		return gateway.Result{}, &gateway.Error{Kind: gateway.Transient, Code: "api_error",
			StatusCode: http.StatusServiceUnavailable, Message: "simulated outage"}
	}
	return gateway.Result{Status: gateway.StatusSucceeded}, nil
}

// A gateway that fails three times before it answers, under the retry
// policy of the workflows' gateway steps: each failure is one WARN record
// with the attempt Temporal made (1, 2, 3), the SDK's own "Activity error."
// is downgraded to debug, and nothing is logged at ERROR.
func TestRetriedGatewayFailuresAreWarnings(t *testing.T) {
	capture := newCapture()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(sdklog.NewStructuredLogger(slog.New(capture)))
	env := suite.NewTestWorkflowEnvironment()
	gw := &Gateway{GW: &flakyGW{fakeGW: fakeGW{name: "sandbox"}, failures: 3}, Logger: slog.New(capture)}
	env.RegisterActivity(gw)
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) (gateway.Result, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout:    30 * time.Second,
			ScheduleToCloseTimeout: 2 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
				NonRetryableErrorTypes: []string{ErrTypeGatewayInvalid},
			},
		})
		var res gateway.Result
		err := workflow.ExecuteActivity(ctx, gw.CreatePayment, gateway.CreateRequest{PaymentID: "pay_1"}).Get(ctx, &res)
		return res, err
	}, workflow.RegisterOptions{Name: "charge"})
	env.ExecuteWorkflow("charge")
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("the charge failed: %v", err)
	}

	var warned, sdkErrors []int64
	for _, r := range capture.all() {
		switch {
		case r.level >= slog.LevelError:
			t.Errorf("logged at %v: %s %v", r.level, r.msg, r.attrs)
		case r.level == slog.LevelWarn && r.msg == "gateway call failed; Temporal retries it":
			warned = append(warned, attempt(t, r.attrs["attempt"]))
			if r.attrs["activity"] != "CreatePayment" || r.attrs["next_attempt_in"] == nil || r.attrs["retried_until"] == nil {
				t.Errorf("warning without the activity, the next attempt or the deadline: %v", r.attrs)
			}
		case r.msg == "Activity error.":
			sdkErrors = append(sdkErrors, attempt(t, r.attrs["Attempt"]))
		}
	}
	if want := []int64{1, 2, 3}; !slices.Equal(warned, want) || !slices.Equal(sdkErrors, want) {
		t.Errorf("warnings of attempts %v and SDK records of attempts %v, want %v for both", warned, sdkErrors, want)
	}
}

// attempt reads an attempt number, logged as an int32.
func attempt(t *testing.T, v any) int64 {
	t.Helper()
	switch n := v.(type) {
	case int64:
		return n
	case int32:
		return int64(n)
	}
	t.Fatalf("attempt %v (%T) is not a number", v, v)
	return 0
}

// Whether a failed attempt is retried decides how it is logged: a WARN
// record with the attempt and the policy's maximum, the error benign; or,
// when the retries are exhausted (the maximum attempts, the schedule-to-close
// deadline, a Retry-After beyond it) or the request is refused, no record
// here and an error that is not benign, which the SDK logs at ERROR with
// its attempt number.
func TestGatewayFailureLogLevels(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	policy := &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second}
	unavailable := &gateway.Error{Kind: gateway.Transient, Code: "api_error", StatusCode: http.StatusServiceUnavailable, Message: "503"}
	limited := &gateway.Error{Kind: gateway.RateLimited, Code: "rate_limit", StatusCode: http.StatusTooManyRequests, RetryAfter: 10 * time.Minute, Message: "429"}
	cases := []struct {
		name    string
		info    activity.Info
		err     error
		retried bool   // a WARN record, the error benign
		msg     string // the WARN record's message
		max     int32  // its max_attempts, 0 for none
	}{
		{"first of three attempts", activity.Info{Attempt: 1, RetryPolicy: withMax(policy, 3)}, unavailable,
			true, "gateway call failed; Temporal retries it", 3},
		{"second of three attempts", activity.Info{Attempt: 2, RetryPolicy: withMax(policy, 3)}, unavailable,
			true, "gateway call failed; Temporal retries it", 3},
		{"last of three attempts", activity.Info{Attempt: 3, RetryPolicy: withMax(policy, 3)}, unavailable, false, "", 0},
		{"within the schedule-to-close window", activity.Info{Attempt: 4, RetryPolicy: policy,
			ScheduledTime: now.Add(-time.Minute), ScheduleToCloseTimeout: 2 * time.Minute}, unavailable,
			true, "gateway call failed; Temporal retries it", 0},
		{"next attempt after the window", activity.Info{Attempt: 5, RetryPolicy: policy,
			ScheduledTime: now.Add(-115 * time.Second), ScheduleToCloseTimeout: 2 * time.Minute}, unavailable, false, "", 0},
		{"Retry-After beyond the window", activity.Info{Attempt: 1, RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Hour},
			ScheduledTime: now, ScheduleToCloseTimeout: 5 * time.Minute}, limited, false, "", 0},
		{"Retry-After capped by the maximum interval", activity.Info{Attempt: 1, RetryPolicy: policy,
			ScheduledTime: now, ScheduleToCloseTimeout: 5 * time.Minute}, limited,
			true, "gateway call failed; Temporal retries it", 0},
		{"refused", activity.Info{Attempt: 1, RetryPolicy: policy}, &gateway.Error{Kind: gateway.Invalid, Code: "amount_too_small"}, false, "", 0},
		{"the fast path", activity.Info{Attempt: 1, IsLocalActivity: true, RetryPolicy: withMax(policy, 1)}, unavailable,
			true, "gateway call failed; the workflow retries it as an activity", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			capture := newCapture()
			a := &Gateway{GW: &fakeGW{name: "sandbox"}, Logger: slog.New(capture)}
			tc.info.ActivityType.Name = "CreatePayment"
			err := a.report(context.Background(), tc.info, tc.err, now)
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("error %v is not an application error", err)
			}
			if benign := appErr.Category() == temporal.ApplicationErrorCategoryBenign; benign != tc.retried {
				t.Errorf("benign %v, want %v", benign, tc.retried)
			}
			records := capture.all()
			if !tc.retried {
				if len(records) != 0 {
					t.Errorf("logged %v; the SDK logs the last failure at ERROR", records)
				}
				return
			}
			if len(records) != 1 || records[0].level != slog.LevelWarn || records[0].msg != tc.msg {
				t.Fatalf("records %v, want one WARN %q", records, tc.msg)
			}
			got := records[0].attrs
			if n := attempt(t, got["attempt"]); n != int64(tc.info.Attempt) {
				t.Errorf("attempt %d, want %d", n, tc.info.Attempt)
			}
			switch m, ok := got["max_attempts"]; {
			case tc.max == 0 && ok:
				t.Errorf("max_attempts %v of a policy without one", m)
			case tc.max != 0 && (!ok || attempt(t, m) != int64(tc.max)):
				t.Errorf("max_attempts %v, want %d", m, tc.max)
			}
		})
	}
}

// withMax is p with at most n attempts (0: no limit).
func withMax(p *temporal.RetryPolicy, n int32) *temporal.RetryPolicy {
	q := *p
	q.MaximumAttempts = n
	return &q
}
