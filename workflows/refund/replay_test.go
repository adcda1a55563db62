package refund_test

// Replay test: the refund workflow must still replay the histories of real
// refunds recorded from the end-to-end tests (tests/e2e,
// PAYMENTS_RECORD_HISTORIES=1), so a change that would break refunds
// already running (a reordered call, a new activity, a timer more or less)
// fails here. Histories of a version are never re-recorded once it
// shipped; a later version goes behind workflow.GetVersion and gets a
// folder of its own.

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/refund"
)

// recorded are the histories each version must have, one per main path.
var recorded = []string{
	"partial_succeeded", // a partial refund the gateway answers succeeded
	"refused",           // the balance refuses: no row, the run completes
	// a refund that succeeded fails later at the gateway: the event comes
	// to a new run (Resume), which records it with the reversal journal
	"late_failure_resumed",
}

// versionFolders hold each version's histories.
var versionFolders = []string{"v1"}

func replayer(wf any) worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: refund.WorkflowName})
	return r
}

func quiet() sdklog.Logger { return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)) }

func TestReplayRecordedHistories(t *testing.T) {
	for _, folder := range versionFolders {
		for _, name := range recorded {
			path := filepath.Join("testdata", folder, name+".json")
			t.Run(folder+"/"+name, func(t *testing.T) {
				checkHistory(t, path)
				if err := replayer(refund.Workflow).ReplayWorkflowHistoryFromJSONFile(quiet(), path); err != nil {
					t.Fatalf("the workflow no longer replays %s: %v", path, err)
				}
			})
		}
	}
}

// A workflow that takes another path under the same name fails to replay
// every recorded history: the replay test can catch a break.
func TestReplayDetectsIncompatibleCode(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata: this test would prove nothing")
	}
	divergent := func(ctx workflow.Context, in refund.Input) (store.RefundRecord, error) {
		return store.RefundRecord{ID: in.RefundID}, nil
	}
	for _, f := range files {
		if err := replayer(divergent).ReplayWorkflowHistoryFromJSONFile(quiet(), f); err == nil {
			t.Errorf("%s replays with an incompatible workflow", f)
		}
	}
}

// checkHistory makes sure a file is a whole, completed history of this
// workflow type.
func checkHistory(t *testing.T, path string) {
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
	if got := events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName(); got != refund.WorkflowName {
		t.Fatalf("%s is a history of %q", path, got)
	}
	if last := events[len(events)-1].GetEventType(); last != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("%s ends with %s", path, last)
	}
	if !strings.HasPrefix(events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowId(), "refund/re_") {
		t.Fatalf("%s: workflow id %q", path, events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowId())
	}
}
