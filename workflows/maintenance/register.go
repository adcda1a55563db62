package maintenance

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Register adds the workflow to a worker.
func Register(w worker.Registry) {
	w.RegisterWorkflowWithOptions(Purge, workflow.RegisterOptions{Name: PurgeWorkflowName})
}

// EnsureSchedule creates the hourly purge schedule unless it exists already;
// every worker calls it at start, so it must be idempotent.
func EnsureSchedule(ctx context.Context, c client.Client, taskQueue string) error {
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   ScheduleID,
		Spec: client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: Every}}},
		Action: &client.ScheduleWorkflowAction{
			ID:                       WorkflowIDPrefix,
			Workflow:                 PurgeWorkflowName,
			Args:                     []any{PurgeInput{}},
			TaskQueue:                taskQueue,
			WorkflowExecutionTimeout: Every,
		},
		Overlap: 0, // skip a run while the previous one is still going
	})
	if err != nil && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create schedule %s: %w", ScheduleID, err)
	}
	return nil
}
