package maintenance

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"
)

// TestEnsureSchedule: the schedule is created once, hourly, starting Purge
// on the worker's task queue; a schedule that exists already is fine (every
// worker calls this at start); any other refusal is an error.
func TestEnsureSchedule(t *testing.T) {
	for _, tc := range []struct {
		name    string
		create  error
		wantErr bool
	}{
		{"created", nil, false},
		{"exists already", temporal.ErrScheduleAlreadyRunning, false},
		{"refused", errors.New("permission denied"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := &mocks.ScheduleClient{}
			var got client.ScheduleOptions
			sc.On("Create", mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
				got = args.Get(1).(client.ScheduleOptions)
			}).Return(nil, tc.create).Once()
			c := &mocks.Client{}
			c.On("ScheduleClient").Return(sc)
			err := EnsureSchedule(context.Background(), c, "payments-q")
			if (err != nil) != tc.wantErr || (tc.wantErr && !errors.Is(err, tc.create)) {
				t.Fatalf("EnsureSchedule = %v, want error: %v", err, tc.wantErr)
			}
			sc.AssertExpectations(t)
			action, ok := got.Action.(*client.ScheduleWorkflowAction)
			if got.ID != ScheduleID || len(got.Spec.Intervals) != 1 || got.Spec.Intervals[0].Every != Every || !ok ||
				action.Workflow != PurgeWorkflowName || action.TaskQueue != "payments-q" || action.WorkflowExecutionTimeout != Every {
				t.Fatalf("schedule options %+v, action %+v", got, got.Action)
			}
		})
	}
}
