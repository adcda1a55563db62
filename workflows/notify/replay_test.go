package notify_test

// Replay test: the notify workflows must still replay the histories
// recorded from real runs (record_test.go, PAYMENTS_RECORD_HISTORIES=1),
// so a change that would break deliveries already running (an attempt
// more or less, a timer moved before the activity, another activity)
// fails here. Every history in testdata is replayed with both workflows
// registered as the platform's worker registers them.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/ent/delivery"
	"github.com/payments-platform/payments/workflows/notify"
)

// recordedShape is what each recorded history must show, so a file that
// lost its point (re-recorded from another scenario) fails.
type recordedShape struct {
	workflow   string
	activities int // scheduled, in order of attempts
	timers     []time.Duration
	result     *notify.DeliveryResult // nil for the email workflow
}

// recorded are the histories the current version must have.
var recorded = map[string]recordedShape{
	// fails twice (a 503), succeeds at the third attempt, on the real schedule
	"v1/delivery_retried_succeeded": {notify.DeliveryWorkflowName, 3, []time.Duration{5 * time.Second, 5 * time.Minute},
		&notify.DeliveryResult{Status: string(delivery.StatusSucceeded), Attempts: 3}},
	// never succeeds: ten attempts, nine timers (recorded with 1 s waits:
	// record_test.go says why; replay does not compare durations)
	"v1/delivery_exhausted": {notify.DeliveryWorkflowName, 10, slices.Repeat([]time.Duration{time.Second}, 9),
		&notify.DeliveryResult{Status: string(delivery.StatusFailed), Attempts: 10}},
	// a redelivery whose first attempt, on the API's row, succeeds
	"v1/redelivery_succeeded": {notify.DeliveryWorkflowName, 1, nil,
		&notify.DeliveryResult{Status: string(delivery.StatusSucceeded), Attempts: 1}},
	// the emails, sent by the activity's second try
	"v1/email_retried": {notify.EmailWorkflowName, 1, nil, nil},
	// an account letter, sent by the activity's second try
	"v1/account_email_retried": {notify.AccountEmailWorkflowName, 1, nil, nil},
}

func replayer(deliver, email, accountEmail any) worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(deliver, workflow.RegisterOptions{Name: notify.DeliveryWorkflowName})
	r.RegisterWorkflowWithOptions(email, workflow.RegisterOptions{Name: notify.EmailWorkflowName})
	r.RegisterWorkflowWithOptions(accountEmail, workflow.RegisterOptions{Name: notify.AccountEmailWorkflowName})
	return r
}

func historyFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata")
	}
	return files
}

func TestReplayRecordedHistories(t *testing.T) {
	files := historyFiles(t)
	for name := range recorded {
		if !slices.Contains(files, filepath.Join("testdata", name+".json")) {
			t.Errorf("testdata/%s.json is missing", name)
		}
	}
	for _, path := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.ToSlash(path), "testdata/"), ".json")
		t.Run(name, func(t *testing.T) {
			if want, ok := recorded[name]; ok {
				checkHistory(t, path, want)
			}
			if err := replayer(notify.DeliveryWorkflow, notify.EmailWorkflow, notify.AccountEmailWorkflow).ReplayWorkflowHistoryFromJSONFile(quiet(), path); err != nil {
				t.Fatalf("the workflows no longer replay %s: %v", path, err)
			}
		})
	}
}

// Workflows that take another path under the same names fail to replay
// every recorded history: the replay test can catch a break.
func TestReplayDetectsIncompatibleCode(t *testing.T) {
	// No activity at all.
	noDelivery := func(ctx workflow.Context, in notify.DeliveryInput) (notify.DeliveryResult, error) {
		return notify.DeliveryResult{}, nil
	}
	noEmail := func(ctx workflow.Context, eventID string) error { return nil }
	// A timer before the workflow's own first command.
	timerFirst := func(ctx workflow.Context, in notify.DeliveryInput) (notify.DeliveryResult, error) {
		_ = workflow.Sleep(ctx, time.Second)
		return notify.DeliveryWorkflow(ctx, in)
	}
	emailTimerFirst := func(ctx workflow.Context, eventID string) error {
		_ = workflow.Sleep(ctx, time.Second)
		return notify.EmailWorkflow(ctx, eventID)
	}
	accountTimerFirst := func(ctx workflow.Context, noticeID string) error {
		_ = workflow.Sleep(ctx, time.Second)
		return notify.AccountEmailWorkflow(ctx, noticeID)
	}
	// A schedule of nine attempts: only a delivery that ran out of the
	// schedule shows it.
	nineAttempts := func(ctx workflow.Context, in notify.DeliveryInput) (notify.DeliveryResult, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
		var a *activities.Webhooks
		var out activities.DeliverOutput
		for i := range 9 {
			if i > 0 {
				if err := workflow.Sleep(ctx, time.Second); err != nil {
					return notify.DeliveryResult{}, err
				}
			}
			err := workflow.ExecuteActivity(ctx, a.DeliverWebhook, activities.DeliverInput{Attempt: i + 1}).Get(ctx, &out)
			if err != nil || out.Done {
				return notify.DeliveryResult{Status: out.Status, Attempts: i + 1}, err
			}
		}
		return notify.DeliveryResult{Status: out.Status, Attempts: 9}, nil
	}
	for _, path := range historyFiles(t) {
		divergent := map[string]worker.WorkflowReplayer{
			"no activity": replayer(noDelivery, noEmail, noEmail),
			"timer first": replayer(timerFirst, emailTimerFirst, accountTimerFirst),
		}
		if strings.Contains(path, "exhausted") {
			divergent["nine attempts"] = replayer(nineAttempts, notify.EmailWorkflow, notify.AccountEmailWorkflow)
		}
		for name, r := range divergent {
			if err := r.ReplayWorkflowHistoryFromJSONFile(quiet(), path); err == nil {
				t.Errorf("%s replays with an incompatible workflow (%s)", path, name)
			}
		}
	}
}

// checkHistory makes sure a file is a whole, completed history of the
// scenario it is named for.
func checkHistory(t *testing.T, path string, want recordedShape) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatalf("%s is missing: %v", path, err)
	}
	defer fh.Close()
	h, err := client.HistoryFromJSON(fh, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("%s is not a history: %v", path, err)
	}
	events := h.GetEvents()
	if len(events) < 3 {
		t.Fatalf("%s has %d events", path, len(events))
	}
	started := events[0].GetWorkflowExecutionStartedEventAttributes()
	if got := started.GetWorkflowType().GetName(); got != want.workflow {
		t.Fatalf("%s is a history of %q, want %q", path, got, want.workflow)
	}
	last := events[len(events)-1]
	if last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("%s ends with %s", path, last.GetEventType())
	}
	acts, timers := activitiesOf(events), timersOf(events)
	if len(acts) != want.activities {
		t.Errorf("%s schedules %d activities, want %d", path, len(acts), want.activities)
	}
	if !slices.Equal(timers, want.timers) {
		t.Errorf("%s starts timers %v, want %v", path, timers, want.timers)
	}
	dc := converter.GetDefaultDataConverter()
	emails := map[string][2]string{ // workflow: id prefix, activity
		notify.EmailWorkflowName:        {"email/evt_", "SendEventEmails"},
		notify.AccountEmailWorkflowName: {"account-email/ntc_", "SendAccountEmail"},
	}
	if e, ok := emails[want.workflow]; ok {
		if !strings.HasPrefix(started.GetWorkflowId(), e[0]) {
			t.Errorf("%s: workflow id %q", path, started.GetWorkflowId())
		}
		for _, a := range acts {
			if a.GetActivityType().GetName() != e[1] {
				t.Errorf("%s schedules %s", path, a.GetActivityType().GetName())
			}
		}
		// The first try failed: the activity's start says it was the second.
		for _, ev := range events {
			if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() != 2 {
				t.Errorf("%s: the emails were sent by try %d, want 2", path, a.GetAttempt())
			}
		}
		return
	}
	if !strings.HasPrefix(started.GetWorkflowId(), "webhook/evt_") {
		t.Errorf("%s: workflow id %q", path, started.GetWorkflowId())
	}
	for i, a := range acts {
		var in activities.DeliverInput
		if a.GetActivityType().GetName() != "DeliverWebhook" {
			t.Errorf("%s schedules %s", path, a.GetActivityType().GetName())
			continue
		}
		if err := dc.FromPayloads(a.GetInput(), &in); err != nil {
			t.Fatalf("%s: activity input: %v", path, err)
		}
		if in.Attempt != i+1 || in.WorkflowID != started.GetWorkflowId() {
			t.Errorf("%s: activity %d is attempt %d of %q", path, i+1, in.Attempt, in.WorkflowID)
		}
	}
	var res notify.DeliveryResult
	if err := dc.FromPayloads(last.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res); err != nil {
		t.Fatalf("%s: result: %v", path, err)
	}
	if res != *want.result {
		t.Errorf("%s: result %+v, want %+v", path, res, *want.result)
	}
}

func activitiesOf(events []*historypb.HistoryEvent) []*historypb.ActivityTaskScheduledEventAttributes {
	var out []*historypb.ActivityTaskScheduledEventAttributes
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			out = append(out, a)
		}
	}
	return out
}

func timersOf(events []*historypb.HistoryEvent) []time.Duration {
	var out []time.Duration
	for _, ev := range events {
		if a := ev.GetTimerStartedEventAttributes(); a != nil {
			out = append(out, a.GetStartToFireTimeout().AsDuration())
		}
	}
	return out
}
