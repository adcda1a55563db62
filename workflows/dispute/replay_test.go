package dispute_test

// Replay test: the dispute workflow must still replay the histories of
// real disputes recorded from the end-to-end tests (tests/e2e,
// PAYMENTS_RECORD_HISTORIES=1), so a change that would break disputes
// already running, which may run for weeks (a reordered call, a new
// activity, a timer more or less), fails here. Histories of a version are
// never re-recorded once it shipped; a later version goes behind
// workflow.GetVersion (or a declared Input.Logic) and gets a folder of its
// own.

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
	"github.com/payments-platform/payments/workflows/dispute"
)

// recorded are the histories each version must have, one per main path.
var recorded = []string{
	"customer_lost_after_evidence", // staged and submitted evidence, an admin decides lost, refund
	"merchant_missed_deadline",     // both reminders, the default decision, refund
	"customer_missed_deadline",     // a merchant's dispute the customer lets lapse: won
	"accepted",                     // the merchant concedes: refund
	"withdrawn",                    // the customer takes it back: nothing moves
	"network_won",                  // the gateway opens it, evidence to the gateway, won: funds reinstated
	"network_lost",                 // the same, lost: the funds stay withdrawn
	"network_accepted",             // the merchant concedes: the gateway closes it, the funds stay withdrawn
}

// versionFolders hold each version's histories.
var versionFolders = []string{"v1"}

func replayer(wf any) worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: dispute.WorkflowName})
	return r
}

func quiet() sdklog.Logger { return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)) }

func TestReplayRecordedHistories(t *testing.T) {
	for _, folder := range versionFolders {
		for _, name := range recorded {
			path := filepath.Join("testdata", folder, name+".json")
			t.Run(folder+"/"+name, func(t *testing.T) {
				checkHistory(t, path)
				if err := replayer(dispute.Workflow).ReplayWorkflowHistoryFromJSONFile(quiet(), path); err != nil {
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
	divergent := func(ctx workflow.Context, in dispute.Input) (store.DisputeRecord, error) {
		return store.DisputeRecord{ID: in.DisputeID}, nil
	}
	for _, f := range files {
		if err := replayer(divergent).ReplayWorkflowHistoryFromJSONFile(quiet(), f); err == nil {
			t.Errorf("%s replays with an incompatible workflow", f)
		}
	}
}

// checkHistory makes sure a file is a whole, completed history of this
// workflow type, of a run that declared its logic version.
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
	start := events[0].GetWorkflowExecutionStartedEventAttributes()
	if got := start.GetWorkflowType().GetName(); got != dispute.WorkflowName {
		t.Fatalf("%s is a history of %q", path, got)
	}
	if last := events[len(events)-1].GetEventType(); last != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("%s ends with %s", path, last)
	}
	if !strings.HasPrefix(start.GetWorkflowId(), "dispute/dp_") {
		t.Fatalf("%s: workflow id %q", path, start.GetWorkflowId())
	}
	if in := string(start.GetInput().GetPayloads()[0].GetData()); !strings.Contains(in, `"Logic":1`) {
		t.Fatalf("%s: the run does not declare logic version 1: %s", path, in)
	}
}
