package maintenance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/payments-platform/payments/activities"
)

func TestPurgeCallsTheActivityWithWorkflowTime(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	start := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	var a *activities.Store
	env.RegisterActivity(a)
	var got time.Time
	env.OnActivity(a.PurgeExpired, mock.Anything, mock.Anything).Return(
		func(_ context.Context, now time.Time) (activities.PurgeResult, error) {
			got = now
			return activities.PurgeResult{IdempotencyKeys: 3, RefreshTokens: 2, LoginThrottles: 1}, nil
		})
	var anonymizedAt time.Time
	env.OnActivity(a.AnonymizeClosedAccounts, mock.Anything, mock.Anything).Return(
		func(_ context.Context, now time.Time) (int, error) {
			anonymizedAt = now
			return 2, nil
		}).Once()
	env.ExecuteWorkflow(Purge, PurgeInput{})
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r activities.PurgeResult
	if err := env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	if r != (activities.PurgeResult{IdempotencyKeys: 3, RefreshTokens: 2, LoginThrottles: 1}) {
		t.Fatalf("result %+v", r)
	}
	if !got.Equal(start) {
		t.Fatalf("activity got now=%v, want the workflow's start time %v", got, start)
	}
	if !anonymizedAt.Equal(start) {
		t.Fatalf("closed accounts anonymized as of %v, want the workflow's start time %v", anonymizedAt, start)
	}
}

// TestPurgeFailsWhenAnonymizingGivesUp: the anonymizing step's failure is
// the run's, so the schedule's next run tries again and the failure shows.
func TestPurgeFailsWhenAnonymizingGivesUp(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Store
	env.RegisterActivity(a)
	env.OnActivity(a.PurgeExpired, mock.Anything, mock.Anything).Return(activities.PurgeResult{}, nil).Once()
	env.OnActivity(a.AnonymizeClosedAccounts, mock.Anything, mock.Anything).Return(
		0, temporal.NewNonRetryableApplicationError("accounts table is gone", "fatal", nil)).Once()
	env.ExecuteWorkflow(Purge, PurgeInput{})
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != "fatal" {
		t.Fatalf("workflow error = %v, want the anonymizing step's fatal error", err)
	}
}

func TestPurgeRetriesTransientFailures(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Store
	env.RegisterActivity(a)
	calls := 0
	env.OnActivity(a.PurgeExpired, mock.Anything, mock.Anything).Return(
		func(context.Context, time.Time) (activities.PurgeResult, error) {
			calls++
			if calls < 3 {
				return activities.PurgeResult{}, errors.New("database is restarting")
			}
			return activities.PurgeResult{RefreshTokens: 1}, nil
		})
	env.OnActivity(a.AnonymizeClosedAccounts, mock.Anything, mock.Anything).Return(0, nil).Once()
	env.ExecuteWorkflow(Purge, PurgeInput{})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed after transient errors: %v", err)
	}
	if calls != 3 {
		t.Fatalf("activity called %d times, want 3", calls)
	}
}

// TestPurgeFailsWhenTheActivityGivesUp: an error that is not retried ends
// the workflow with it; the run is not reported as done.
func TestPurgeFailsWhenTheActivityGivesUp(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Store
	env.RegisterActivity(a)
	env.OnActivity(a.PurgeExpired, mock.Anything, mock.Anything).Return(
		activities.PurgeResult{}, temporal.NewNonRetryableApplicationError("schema is gone", "fatal", nil)).Once()
	env.ExecuteWorkflow(Purge, PurgeInput{})
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != "fatal" {
		t.Fatalf("workflow error = %v, want the activity's fatal error", err)
	}
}
