package payment_test

// Replay test: the workflow code must still replay the histories of real
// payments recorded from the end-to-end tests (tests/e2e, with
// PAYMENTS_RECORD_HISTORIES=1), so a change that would break payments
// already running in production (a reordered call, a new activity, a timer
// more or less) fails here, before deployment. After an intended change that
// is compatible only for new payments (versioned with workflow.GetVersion),
// keep the old histories and add new ones; re-record only with care.

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/payment"
)

// recorded are the histories that must exist for every version of the
// workflow's logic, one per main path: the legacy version's directly in
// testdata, each later version's in a folder of its own
// (testdata/<folder>). Histories of a version are never re-recorded once it
// was deployed: they are what running payments of that version look like.
var recorded = []string{
	"automatic_success", // pm_card_visa, automatic capture
	"decline",           // pm_card_chargeDeclined
	"manual_capture",    // manual capture, then a partial CapturePayment
	"threeds_completed", // 3-D Secure, completed through /webhooks/stripe
	"cancel",            // manual capture, then CancelPayment
	"flaky_retry",       // pm_sandbox_flaky: the gateway call retried
}

// versionFolders are the folders of testdata that hold each version's
// histories ("" is the legacy version's; "hardened" the hardened version's
// as runs recorded it with a GetVersion marker before inputs declared their
// version; "declared" the same version declared by the input, no marker).
var versionFolders = []string{"", "hardened", "declared"}

func quietLogger() sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))
}

func newReplayer(wf any) worker.WorkflowReplayer {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(wf, workflow.RegisterOptions{Name: payment.WorkflowName})
	return r
}

func TestReplayRecordedHistories(t *testing.T) {
	var files []string
	for _, folder := range versionFolders {
		dir := filepath.Join("testdata", folder)
		found, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, f := range found {
			have[strings.TrimSuffix(filepath.Base(f), ".json")] = true
		}
		for _, name := range recorded {
			if !have[name] {
				t.Errorf("%s/%s.json is missing", dir, name)
			}
		}
		files = append(files, found...)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.ToSlash(f), "testdata/"), ".json")
		t.Run(name, func(t *testing.T) {
			checkHistory(t, f)
			checkVersionRecord(t, f)
			if err := newReplayer(payment.Workflow).ReplayWorkflowHistoryFromJSONFile(quietLogger(), f); err != nil {
				t.Fatalf("the workflow no longer replays %s: %v", f, err)
			}
		})
	}
}

// TestReplayDetectsIncompatibleCode proves the replay test is not vacuous:
// a workflow that takes another path under the same name fails to replay
// every recorded history.
func TestReplayDetectsIncompatibleCode(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	more, _ := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata: this test would prove nothing")
	}
	divergent := func(ctx workflow.Context, in payment.Input) (store.PaymentRecord, error) {
		// Skips the search attributes and the first save: another order of
		// commands than any recorded payment.
		return store.PaymentRecord{ID: in.PaymentID}, nil
	}
	for _, f := range files {
		if err := newReplayer(divergent).ReplayWorkflowHistoryFromJSONFile(quietLogger(), f); err == nil {
			t.Errorf("%s replays with an incompatible workflow: the replay test cannot catch a break", f)
		}
	}
}

// checkHistory makes sure a file is a whole history of this workflow type.
func checkHistory(t *testing.T, path string) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
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
	if got := start.GetWorkflowType().GetName(); got != payment.WorkflowName {
		t.Fatalf("%s is a history of %q, want %q", path, got, payment.WorkflowName)
	}
	if last := events[len(events)-1].GetEventType(); last != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Fatalf("%s ends with %s, want a completed workflow", path, last)
	}
}

// checkVersionRecord makes sure each folder holds what it says: legacy runs
// neither declare a version nor record a marker, "hardened" runs record the
// marker, "declared" runs declare the version in their input and record no
// marker.
func checkVersionRecord(t *testing.T, path string) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	h, err := client.HistoryFromJSON(fh, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatal(err)
	}
	events := h.GetEvents()
	var in payment.Input
	payload := events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(payload) != 1 || converter.GetDefaultDataConverter().FromPayload(payload[0], &in) != nil {
		t.Fatalf("%s: the start event has no payment input", path)
	}
	markers := 0
	for _, e := range events {
		if e.GetMarkerRecordedEventAttributes().GetMarkerName() == "Version" {
			markers++
		}
	}
	want := map[string]struct {
		logic   workflow.Version
		markers int
	}{
		"testdata":          {0, 0},
		"testdata/hardened": {0, 1},
		"testdata/declared": {payment.CurrentLogic, 0},
	}[filepath.ToSlash(filepath.Dir(path))]
	if in.Logic != want.logic || markers != want.markers {
		t.Fatalf("%s: input declares logic %d and the history has %d version markers, want %d and %d",
			path, in.Logic, markers, want.logic, want.markers)
	}
}
