package presets_test

import (
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/workflows/presets"
)

// A state write is retried for as long as the database may be down, not
// for the 10 s of one attempt: the SDK takes the start-to-close timeout as
// the schedule-to-close bound when none is set, which failed a workflow
// whose database was down for more than 10 s.
func TestLocalStoreWriteOutlastsAnOutage(t *testing.T) {
	var got workflow.LocalActivityOptions
	wf := func(ctx workflow.Context) error {
		got = workflow.GetLocalActivityOptions(presets.LocalStoreWrite(ctx))
		return nil
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(wf)
	env.ExecuteWorkflow(wf)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if got.ScheduleToCloseTimeout != presets.StoreOutageBound || presets.StoreOutageBound < 30*24*time.Hour {
		t.Fatalf("schedule-to-close %v (bound %v), want the outage bound of at least 30 days", got.ScheduleToCloseTimeout, presets.StoreOutageBound)
	}
	if got.StartToCloseTimeout != 10*time.Second || got.RetryPolicy == nil || got.RetryPolicy.MaximumAttempts != 0 {
		t.Fatalf("options %+v: want 10 s attempts retried without a count limit", got)
	}
}
