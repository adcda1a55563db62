package notify_test

// Unit tests of EmailWorkflow: one SendEventEmails of the event, retried
// by Temporal while the mail server or the database is away, not when the
// store refuses for good.

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/workflows/notify"
)

func runEmail(t *testing.T, fn func(n int, c emailCall) error) *harness {
	t.Helper()
	h := newHarness(t, notify.EmailWorkflowID(eventID))
	h.onEmail(fn)
	h.env.ExecuteWorkflow(notify.EmailWorkflowName, eventID)
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("the email workflow did not complete")
	}
	return h
}

func TestEmailSendsTheEventsEmails(t *testing.T) {
	h := runEmail(t, func(int, emailCall) error { return nil })
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	calls := h.emailCalls()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	if calls[0].EventID != eventID || calls[0].Try != 1 || !calls[0].Now.Equal(t0) {
		t.Errorf("call %+v, want SendEventEmails(%q) at once", calls[0], eventID)
	}
	if n := len(h.deliverCalls()); n != 0 {
		t.Errorf("the email workflow made %d deliveries", n)
	}
}

func TestEmailRetriedWhileTheServerIsAway(t *testing.T) {
	h := runEmail(t, func(n int, c emailCall) error {
		if n == 1 {
			return errors.New("smtp: 421 try again later")
		}
		return nil
	})
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow failed: %v", err)
	}
	calls := h.emailCalls()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	for i, c := range calls {
		if c.EventID != eventID || c.Try != int32(i+1) {
			t.Errorf("call %d: %+v", i+1, c)
		}
	}
	if d := calls[1].Now.Sub(calls[0].Now); d != 5*time.Second {
		t.Errorf("the retry came %v later, want the policy's first interval, 5s", d)
	}
}

func TestEmailStoreInvalidFails(t *testing.T) {
	h := runEmail(t, func(int, emailCall) error {
		return temporal.NewApplicationError("event not readable", activities.ErrTypeStoreInvalid)
	})
	err := h.env.GetWorkflowError()
	if err == nil {
		t.Fatal("the workflow succeeded")
	}
	if errType(err) != activities.ErrTypeStoreInvalid {
		t.Errorf("workflow error %v, want one of type %s", err, activities.ErrTypeStoreInvalid)
	}
	if calls := h.emailCalls(); len(calls) != 1 {
		t.Errorf("%d calls, want 1 (no retry)", len(calls))
	}
}

// The activity is retried with backoff for a day, each try bounded.
func TestEmailActivityOptions(t *testing.T) {
	h := runEmail(t, func(int, emailCall) error { return nil })
	s := h.scheduledActivities()
	if len(s) != 1 || s[0].Activity != "SendEventEmails" {
		t.Fatalf("scheduled %+v, want SendEventEmails once", s)
	}
	o := s[0].Opts
	if o.StartToCloseTimeout != 2*time.Minute || o.ScheduleToCloseTimeout != 24*time.Hour {
		t.Errorf("timeouts: start-to-close %v, schedule-to-close %v", o.StartToCloseTimeout, o.ScheduleToCloseTimeout)
	}
	p := o.RetryPolicy
	if p == nil {
		t.Fatal("no retry policy")
	}
	if p.InitialInterval != 5*time.Second || p.BackoffCoefficient != 2 || p.MaximumInterval != 30*time.Minute ||
		!slices.Equal(p.NonRetryableErrorTypes, []string{activities.ErrTypeStoreInvalid, activities.ErrTypeNotFound}) {
		t.Errorf("retry policy %+v", *p)
	}
}
