package notify_test

// The harness of the notify workflows' unit tests: a Temporal test
// environment (whose timers are skipped, so the three-day schedule runs at
// once) in which DeliverWebhook and SendEventEmails are mocked on the nil
// receivers the workflows reference them by. Every call is recorded with
// the workflow time it ran at and Temporal's attempt of the activity, and
// the options of every scheduled activity are recorded by an interceptor
// (the test suite's activities do not see them).

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/ent/delivery"
	"github.com/payments-platform/payments/workflows/notify"
)

// t0 is when every test workflow starts; not on a whole second, so a
// workflow that rounds its clock shows. (Its zone would not matter: the
// test suite's clock runs in time.Local whatever the start time's zone,
// and a real worker's workflow.Now is UTC already.)
var t0 = time.Date(2026, 11, 27, 9, 0, 0, 123_000_000, time.UTC)

const (
	eventID    = "evt_01test"
	endpointID = "we_01test"
)

// wfID is the delivery's workflow id, as the relay starts it.
var wfID = notify.DeliveryWorkflowID(eventID, endpointID)

// The nil receivers the workflows name their activities by.
var (
	wh *activities.Webhooks
	ml *activities.Mail
)

// deliverCall is one DeliverWebhook call.
type deliverCall struct {
	In  activities.DeliverInput
	Now time.Time // workflow time of the call
	Try int32     // Temporal's attempt of this activity (1 for the first)
}

// emailCall is one SendEventEmails call.
type emailCall struct {
	EventID string
	Now     time.Time
	Try     int32
}

// scheduled is an activity the workflow scheduled, with its options.
type scheduled struct {
	Activity string
	At       time.Time
	Opts     workflow.ActivityOptions
}

type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment

	mu        sync.Mutex
	delivers  []deliverCall
	deliverFn func(n int, c deliverCall) (activities.DeliverOutput, error)
	emails    []emailCall
	emailFn   func(n int, c emailCall) error
	scheds    []scheduled
}

// errUnexpected answers a call the test did not expect.
var errUnexpected = temporal.NewNonRetryableApplicationError("unexpected call", "Unexpected", nil)

func quiet() sdklog.Logger { return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)) }

// newHarness makes a test environment started at t0 with workflow id id,
// with both activities registered and mocked: a call the test gave no
// answer for fails the test.
func newHarness(t *testing.T, id string) *harness {
	t.Helper()
	h := &harness{t: t}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quiet())
	h.env = s.NewTestWorkflowEnvironment()
	h.env.SetStartTime(t0)
	h.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	// Wall-clock bound only: the workflow's own time is skipped.
	h.env.SetTestTimeout(time.Minute)
	h.env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{&optsInterceptor{h: h}}})
	h.env.RegisterWorkflowWithOptions(notify.DeliveryWorkflow, workflow.RegisterOptions{Name: notify.DeliveryWorkflowName})
	h.env.RegisterWorkflowWithOptions(notify.EmailWorkflow, workflow.RegisterOptions{Name: notify.EmailWorkflowName})
	h.env.RegisterActivity(&activities.Webhooks{})
	h.env.RegisterActivity(&activities.Mail{})

	h.env.OnActivity(wh.DeliverWebhook, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.DeliverInput) (activities.DeliverOutput, error) {
			c := deliverCall{In: in, Now: h.env.Now(), Try: activity.GetInfo(ctx).Attempt}
			h.mu.Lock()
			h.delivers = append(h.delivers, c)
			n, fn := len(h.delivers), h.deliverFn
			h.mu.Unlock()
			if fn == nil {
				t.Errorf("unexpected DeliverWebhook %+v", in)
				return activities.DeliverOutput{}, errUnexpected
			}
			return fn(n, c)
		})
	h.env.OnActivity(ml.SendEventEmails, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, id string) error {
			c := emailCall{EventID: id, Now: h.env.Now(), Try: activity.GetInfo(ctx).Attempt}
			h.mu.Lock()
			h.emails = append(h.emails, c)
			n, fn := len(h.emails), h.emailFn
			h.mu.Unlock()
			if fn == nil {
				t.Errorf("unexpected SendEventEmails(%q)", id)
				return errUnexpected
			}
			return fn(n, c)
		})
	return h
}

// onDeliver answers DeliverWebhook call n (1-based, every try counted).
func (h *harness) onDeliver(fn func(n int, c deliverCall) (activities.DeliverOutput, error)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deliverFn = fn
}

// onEmail answers SendEventEmails call n (1-based).
func (h *harness) onEmail(fn func(n int, c emailCall) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.emailFn = fn
}

func (h *harness) deliverCalls() []deliverCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]deliverCall(nil), h.delivers...)
}

func (h *harness) emailCalls() []emailCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]emailCall(nil), h.emails...)
}

func (h *harness) scheduledActivities() []scheduled {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]scheduled(nil), h.scheds...)
}

// deliver runs the delivery workflow with in to its end.
func (h *harness) deliver(in notify.DeliveryInput) {
	h.env.ExecuteWorkflow(notify.DeliveryWorkflowName, in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("the delivery workflow did not complete")
	}
}

// result is the completed workflow's result; the test fails if it failed.
func (h *harness) result() notify.DeliveryResult {
	h.t.Helper()
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow failed: %v", err)
	}
	var r notify.DeliveryResult
	if err := h.env.GetWorkflowResult(&r); err != nil {
		h.t.Fatal(err)
	}
	return r
}

// elapsed is how much workflow time has passed since t0.
func (h *harness) elapsed() time.Duration { return h.env.Now().Sub(t0) }

// Answers of DeliverWebhook, as the activity gives them.

// retryLater is a failed attempt with a next one to come (a 503).
func retryLater() activities.DeliverOutput {
	return activities.DeliverOutput{Done: false, Status: string(delivery.StatusFailed), ResponseStatus: 503}
}

// succeeded is a 2xx.
func succeeded() activities.DeliverOutput {
	return activities.DeliverOutput{Done: true, Status: string(delivery.StatusSucceeded), ResponseStatus: 204}
}

// failedForGood is a failure without a retry (a 4xx, a 410, the endpoint
// disabled or deleted).
func failedForGood(status int) activities.DeliverOutput {
	return activities.DeliverOutput{Done: true, Status: string(delivery.StatusFailed), ResponseStatus: status}
}

// offset is when attempt a (1-based) follows the workflow's start on the
// schedule: the sum of the waits before it.
func offset(a int) time.Duration {
	var d time.Duration
	for _, w := range notify.Schedule[:a] {
		d += w
	}
	return d
}

// errType is the type of the application error in err's chain, or "".
func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// optsInterceptor records the options every activity is scheduled with.
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
	o.h.scheds = append(o.h.scheds, scheduled{Activity: activityType, At: workflow.Now(ctx), Opts: workflow.GetActivityOptions(ctx)})
	o.h.mu.Unlock()
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}
