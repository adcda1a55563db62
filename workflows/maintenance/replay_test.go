package maintenance_test

// Replay test: Purge must still replay the histories recorded from real
// runs (record_test.go, PAYMENTS_RECORD_HISTORIES=1), so a change that
// would break runs already going (another activity, or one moved, not
// behind workflow.GetVersion) fails here. Every history in testdata is
// replayed with Purge registered as the platform's worker registers it.

import (
	"log/slog"
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
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/workflows/maintenance"
	"github.com/payments-platform/payments/workflows/presets"
)

// recordedShape is what each recorded history must show, so a file that
// lost its point (re-recorded from another scenario) fails.
type recordedShape struct {
	workflow   string
	activities []string // scheduled, in order
	// attempts is, by activity type, the attempt that completed it.
	attempts map[string]int32
	result   activities.PurgeResult
}

// recorded are the histories the current version must have.
var recorded = map[string]recordedShape{
	// one purge, whose first try failed; no GetVersion marker (v1 predates it)
	"v1/purge": {maintenance.PurgeWorkflowName, []string{"PurgeExpired"}, map[string]int32{"PurgeExpired": 2}, recordedPurge},
	// v2: the purge, then the closed accounts anonymized (GetVersion
	// anonymize-closed-accounts = 1)
	"v2/purge": {maintenance.PurgeWorkflowName, []string{"PurgeExpired", "AnonymizeClosedAccounts"},
		map[string]int32{"PurgeExpired": 2, "AnonymizeClosedAccounts": 1}, recordedPurge},
}

func quiet() sdklog.Logger { return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)) }

func replayer(purge any) worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(purge, workflow.RegisterOptions{Name: maintenance.PurgeWorkflowName})
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
			if err := replayer(maintenance.Purge).ReplayWorkflowHistoryFromJSONFile(quiet(), path); err != nil {
				t.Fatalf("Purge no longer replays %s: %v", path, err)
			}
		})
	}
}

// Workflows that take another path under the same name fail to replay
// every recorded history: the replay test can catch a break.
func TestReplayDetectsIncompatibleCode(t *testing.T) {
	var store *activities.Store
	// No activity at all.
	noActivity := func(ctx workflow.Context, _ maintenance.PurgeInput) (activities.PurgeResult, error) {
		return activities.PurgeResult{}, nil
	}
	// A timer before the workflow's own first command.
	timerFirst := func(ctx workflow.Context, in maintenance.PurgeInput) (activities.PurgeResult, error) {
		_ = workflow.Sleep(ctx, time.Second)
		return maintenance.Purge(ctx, in)
	}
	// Another activity after the purge, not behind workflow.GetVersion.
	unversioned := func(ctx workflow.Context, in maintenance.PurgeInput) (activities.PurgeResult, error) {
		var r activities.PurgeResult
		now := workflow.Now(ctx)
		if err := workflow.ExecuteActivity(presets.StoreWrite(ctx), store.PurgeExpired, now).Get(ctx, &r); err != nil {
			return r, err
		}
		var n int
		err := workflow.ExecuteActivity(presets.StoreWrite(ctx), "AnonymizeClosedAccounts", now).Get(ctx, &n)
		return r, err
	}
	for _, path := range historyFiles(t) {
		for name, purge := range map[string]any{
			"no activity":         noActivity,
			"timer first":         timerFirst,
			"unversioned another": unversioned,
		} {
			if name == "unversioned another" && filepath.Base(filepath.Dir(path)) != "v1" {
				// A v2 history has that activity (and a version marker,
				// which the replayer lets code without GetVersion skip).
				continue
			}
			if err := replayer(purge).ReplayWorkflowHistoryFromJSONFile(quiet(), path); err == nil {
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
	if !strings.HasPrefix(started.GetWorkflowId(), maintenance.WorkflowIDPrefix) {
		t.Errorf("%s: workflow id %q", path, started.GetWorkflowId())
	}
	last := events[len(events)-1]
	if last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("%s ends with %s", path, last.GetEventType())
	}
	if got := activityTypes(events); !slices.Equal(got, want.activities) {
		t.Errorf("%s schedules %v, want %v", path, got, want.activities)
	}
	for typ, attempt := range want.attempts {
		if got := completedAttempt(events, typ); got != attempt {
			t.Errorf("%s: %s completed at try %d, want %d", path, typ, got, attempt)
		}
	}
	var res activities.PurgeResult
	if err := converter.GetDefaultDataConverter().FromPayloads(last.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res); err != nil {
		t.Fatalf("%s: result: %v", path, err)
	}
	if res != want.result {
		t.Errorf("%s: result %+v, want %+v", path, res, want.result)
	}
}

func activityTypes(events []*historypb.HistoryEvent) []string {
	var out []string
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			out = append(out, a.GetActivityType().GetName())
		}
	}
	return out
}

// completedAttempt is the attempt of the started event of the activity of
// type typ that completed (0 if none did): a history keeps only the last
// try's start.
func completedAttempt(events []*historypb.HistoryEvent, typ string) int32 {
	types := map[int64]string{}  // scheduled event id -> type
	attempt := map[int64]int32{} // started event id -> attempt
	for _, ev := range events {
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			types[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			attempt[ev.GetEventId()] = a.GetAttempt()
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil && types[a.GetScheduledEventId()] == typ {
			return attempt[a.GetStartedEventId()]
		}
	}
	return 0
}
