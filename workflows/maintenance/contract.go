// Package maintenance is the platform's housekeeping process: a scheduled
// workflow that purges expired idempotency keys, refresh tokens, login
// throttles, mailed tokens and old notices, so those tables stay small
// however long the platform runs, and erases the name and email of
// accounts closed longer ago than the retention period.
package maintenance

import "time"

// The contract of this package: names and ids that other code relies on.
const (
	// PurgeWorkflowName is the registered workflow type.
	PurgeWorkflowName = "maintenance.Purge"
	// ScheduleID is the Temporal Schedule that starts Purge.
	ScheduleID = "maintenance/purge"
	// WorkflowIDPrefix prefixes each scheduled run's workflow id.
	WorkflowIDPrefix = "maintenance/purge"
	// Every is how often Purge runs.
	Every = time.Hour
)

// PurgeInput is Purge's input; empty today, a struct so fields can be added
// without breaking running schedules.
type PurgeInput struct{}
