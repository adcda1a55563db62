package payment

import "go.temporal.io/sdk/workflow"

// The payment workflow is deployed code: a payment may wait for days (an
// authorization lasts 7), so a worker with new code replays histories that
// older code recorded. Every change to its logic is made behind
// workflow.GetVersion here, the runs of an older version keep the path they
// recorded (legacy.go), and the histories of every version stay in testdata
// and are replayed by TestReplayRecordedHistories.
const (
	// changeHardened names the hardening of the payment path (issue 6): a
	// charge whose outcome is unknown is looked up at the gateway instead
	// of failed, gateway events are read from the start, capture, cancel
	// and expiry never fail the workflow, gateway keys carry the step's
	// attempt, refused saves wait on a timer, and charges reported for
	// failed payments are refunded.
	changeHardened = "payment-hardening"
	// versionLegacy is the first deployed logic (legacy.go).
	versionLegacy = workflow.DefaultVersion
	// versionHardened is the logic of workflow.go.
	versionHardened workflow.Version = 1

	// changeReportAttention: a gateway report still waiting to be
	// reconciled keeps the payment marked NeedsAttention when a void step
	// ends or a pending step is dropped. Hardened runs before it cleared the
	// mark there until the report's next failed try set it again. The
	// marker is recorded only by runs that reach that point with a report
	// waiting (reportsWaiting), so no other run's history changes.
	changeReportAttention                   = "payment-report-attention"
	versionReportAttention workflow.Version = 1
)

// logicVersion returns the version of the logic this run follows. It is
// called once, first thing in the workflow, so a new run records its marker
// before any other command.
func logicVersion(ctx workflow.Context) workflow.Version {
	return workflow.GetVersion(ctx, changeHardened, versionLegacy, versionHardened)
}
