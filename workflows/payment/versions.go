package payment

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

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

// CurrentLogic is the version of the logic new runs follow: the starter
// puts it in Input.Logic.
const CurrentLogic = versionHardened

// logicVersion returns the version of the logic this run follows, first
// thing in the workflow.
//
// A run whose input declares its version (Input.Logic, in the first event
// of its history) follows it, and records no marker. A version marker costs
// every payment two history events and a visibility write (the Go SDK
// upserts the TemporalChangeVersion search attribute with it), about 7% of
// make bench's payments per second on the dev server, for a choice the
// starter can make once and for all.
//
// A run whose input does not say was started before inputs declared it:
// workflow.GetVersion decides, as it did when the run began. Its history
// holds the payment-hardening marker (hardened) or none (legacy), so the
// call records nothing new on replay. Changes made later in a run's life
// still go behind workflow.GetVersion at the point of change, as
// changeReportAttention does.
func logicVersion(ctx workflow.Context, in Input) workflow.Version {
	switch {
	case in.Logic == 0:
		return workflow.GetVersion(ctx, changeHardened, versionLegacy, versionHardened)
	case in.Logic < versionLegacy || in.Logic > versionHardened:
		// As workflow.GetVersion does for a version it does not know: the
		// workflow task fails, and is tried again until a worker with code
		// that knows the version takes it.
		panic(fmt.Sprintf("payment workflow: the run declares logic version %d; this code knows %d to %d",
			in.Logic, versionLegacy, versionHardened))
	}
	return in.Logic
}
