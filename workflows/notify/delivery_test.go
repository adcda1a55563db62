package notify_test

// Unit tests of DeliveryWorkflow: one attempt per step of the schedule
// until one is done, the attempts' inputs (number, row id, time, the next
// attempt's delay), the ends (success, failure for good, schedule run out,
// an activity error), redeliveries and the activity's options.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/ent/delivery"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/workflows/notify"
)

// apiSchedule is the schedule spelled out: ten attempts, the first at
// once, over about three days ("retried with backoff for about 3 days",
// docs/API.md).
var apiSchedule = []time.Duration{
	0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour,
}

func TestScheduleIsAPIs(t *testing.T) {
	if !slices.Equal(notify.Schedule, apiSchedule) {
		t.Fatalf("Schedule = %v, want %v", notify.Schedule, apiSchedule)
	}
	var total time.Duration
	for _, d := range notify.Schedule {
		total += d
	}
	if total != 75*time.Hour+35*time.Minute+5*time.Second {
		t.Errorf("the schedule lasts %v", total)
	}
	if total <= 72*time.Hour || total >= 80*time.Hour {
		t.Errorf("the schedule lasts %v, not about 3 days", total)
	}
}

func input() notify.DeliveryInput {
	return notify.DeliveryInput{EventID: eventID, EndpointID: endpointID}
}

// checkAttempt asserts that c is attempt a (1-based) of workflow id, made
// on schedule with the row id derived from the workflow, its time and a.
func checkAttempt(t *testing.T, c deliverCall, id string, a int) {
	t.Helper()
	in := c.In
	at := t0.Add(offset(a)).UTC()
	if in.Attempt != a {
		t.Errorf("call %+v: attempt %d, want %d", in, in.Attempt, a)
	}
	if in.EventID != eventID || in.EndpointID != endpointID {
		t.Errorf("attempt %d delivers event %q to endpoint %q, want %q to %q", a, in.EventID, in.EndpointID, eventID, endpointID)
	}
	if in.WorkflowID != id {
		t.Errorf("attempt %d: WorkflowID %q, want %q", a, in.WorkflowID, id)
	}
	if !c.Now.Equal(at) {
		t.Errorf("attempt %d made at t0+%v, want t0+%v (the schedule's)", a, c.Now.Sub(t0), offset(a))
	}
	if !in.At.Equal(at) || in.At.Location() != time.UTC {
		t.Errorf("attempt %d: At %v, want %v (the workflow's time, in UTC)", a, in.At, at)
	}
	if want := notify.DeliveryID(id, a, at); in.DeliveryID != want {
		t.Errorf("attempt %d: DeliveryID %q, want DeliveryID(%q, %d, %v) = %q", a, in.DeliveryID, id, a, at, want)
	}
	var next time.Duration
	if a < len(apiSchedule) {
		next = apiSchedule[a]
	}
	if in.NextDelay != next {
		t.Errorf("attempt %d: NextDelay %v, want %v", a, in.NextDelay, next)
	}
}

// checkDistinctRows asserts that no two calls name the same row.
func checkDistinctRows(t *testing.T, calls []deliverCall) {
	t.Helper()
	seen := map[string]int{}
	for _, c := range calls {
		if a, dup := seen[c.In.DeliveryID]; dup {
			t.Errorf("attempts %d and %d share the row %s", a, c.In.Attempt, c.In.DeliveryID)
		}
		seen[c.In.DeliveryID] = c.In.Attempt
		if !ids.Valid(ids.Delivery, c.In.DeliveryID) {
			t.Errorf("attempt %d: row id %q is not a delivery id", c.In.Attempt, c.In.DeliveryID)
		}
	}
}

func TestFirstAttemptSucceeds(t *testing.T) {
	h := newHarness(t, wfID)
	h.onDeliver(func(int, deliverCall) (activities.DeliverOutput, error) { return succeeded(), nil })
	h.deliver(input())

	r := h.result()
	if want := (notify.DeliveryResult{Status: string(delivery.StatusSucceeded), Attempts: 1}); r != want {
		t.Errorf("result %+v, want %+v", r, want)
	}
	calls := h.deliverCalls()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1: %+v", len(calls), calls)
	}
	checkAttempt(t, calls[0], wfID, 1)
	if calls[0].In.NextDelay != 5*time.Second {
		t.Errorf("NextDelay %v, want Schedule[1] = 5s", calls[0].In.NextDelay)
	}
	if calls[0].Try != 1 {
		t.Errorf("the activity ran as Temporal's attempt %d", calls[0].Try)
	}
	if h.elapsed() != 0 {
		t.Errorf("the delivery took %v of workflow time, want none", h.elapsed())
	}
}

// The attempts that fail with a retry to come are followed by the next one
// on the schedule, until one succeeds.
func TestRetriesFollowTheSchedule(t *testing.T) {
	for _, k := range []int{1, 2, 3, 5, 9} {
		t.Run(fmt.Sprintf("%d failures", k), func(t *testing.T) {
			h := newHarness(t, wfID)
			h.onDeliver(func(n int, c deliverCall) (activities.DeliverOutput, error) {
				if c.In.Attempt <= k {
					return retryLater(), nil
				}
				return succeeded(), nil
			})
			h.deliver(input())

			r := h.result()
			if want := (notify.DeliveryResult{Status: string(delivery.StatusSucceeded), Attempts: k + 1}); r != want {
				t.Errorf("result %+v, want %+v", r, want)
			}
			calls := h.deliverCalls()
			if len(calls) != k+1 {
				t.Fatalf("%d calls, want %d", len(calls), k+1)
			}
			for i, c := range calls {
				checkAttempt(t, c, wfID, i+1)
				if c.Try != 1 {
					t.Errorf("attempt %d ran as Temporal's attempt %d: a failed delivery is no activity error", i+1, c.Try)
				}
			}
			checkDistinctRows(t, calls)
			if h.elapsed() != offset(k+1) {
				t.Errorf("the delivery took %v, want %v", h.elapsed(), offset(k+1))
			}
		})
	}
}

// Every attempt asks for another: ten attempts over the whole schedule,
// about three days, and the last one is told none follows.
func TestScheduleExhausted(t *testing.T) {
	h := newHarness(t, wfID)
	h.onDeliver(func(n int, c deliverCall) (activities.DeliverOutput, error) {
		out := retryLater()
		out.ResponseStatus = 500 + n // tells the attempts' answers apart
		return out, nil
	})
	h.deliver(input())

	r := h.result()
	if want := (notify.DeliveryResult{Status: string(delivery.StatusFailed), Attempts: 10}); r != want {
		t.Errorf("result %+v, want %+v", r, want)
	}
	calls := h.deliverCalls()
	if len(calls) != len(notify.Schedule) || len(calls) != 10 {
		t.Fatalf("%d calls, want 10", len(calls))
	}
	for i, c := range calls {
		checkAttempt(t, c, wfID, i+1)
	}
	checkDistinctRows(t, calls)
	if last := calls[len(calls)-1].In; last.NextDelay != 0 {
		t.Errorf("the last attempt was told the next follows after %v", last.NextDelay)
	}
	total := 75*time.Hour + 35*time.Minute + 5*time.Second
	if h.elapsed() != total || calls[9].Now.Sub(t0) != total {
		t.Errorf("the delivery took %v (last attempt at t0+%v), want the schedule's %v", h.elapsed(), calls[9].Now.Sub(t0), total)
	}
	if h.elapsed() <= 72*time.Hour || h.elapsed() >= 80*time.Hour {
		t.Errorf("the delivery took %v, not about 3 days", h.elapsed())
	}
}

// An attempt that fails for good ends the delivery, failed, whatever the
// schedule has left.
func TestFailedForGoodStops(t *testing.T) {
	for _, status := range []int{400, 410, 0 /* endpoint deleted or disabled */} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			h := newHarness(t, wfID)
			h.onDeliver(func(n int, c deliverCall) (activities.DeliverOutput, error) {
				if c.In.Attempt == 3 {
					return failedForGood(status), nil
				}
				return retryLater(), nil
			})
			h.deliver(input())

			r := h.result()
			if want := (notify.DeliveryResult{Status: string(delivery.StatusFailed), Attempts: 3}); r != want {
				t.Errorf("result %+v, want %+v", r, want)
			}
			calls := h.deliverCalls()
			if len(calls) != 3 {
				t.Fatalf("%d calls, want 3", len(calls))
			}
			for i, c := range calls {
				checkAttempt(t, c, wfID, i+1)
			}
			if h.elapsed() != 5*time.Second+5*time.Minute {
				t.Errorf("the workflow ended at t0+%v, want t0+5m5s (no timer after the end)", h.elapsed())
			}
		})
	}
}

// The last attempt that succeeds: the result counts all ten.
func TestLastAttemptSucceeds(t *testing.T) {
	h := newHarness(t, wfID)
	h.onDeliver(func(n int, c deliverCall) (activities.DeliverOutput, error) {
		if c.In.Attempt == 10 {
			return succeeded(), nil
		}
		return retryLater(), nil
	})
	h.deliver(input())
	if r, want := h.result(), (notify.DeliveryResult{Status: string(delivery.StatusSucceeded), Attempts: 10}); r != want {
		t.Errorf("result %+v, want %+v", r, want)
	}
}

// A redelivery's first row was written by the API before the workflow
// started: the first attempt writes that row, at its time; the next ones
// derive their own.
func TestRedeliveryFirstAttemptUsesItsRow(t *testing.T) {
	id := notify.RedeliveryWorkflowID(eventID, endpointID, "01jx")
	firstAt := t0.Add(-1500 * time.Millisecond).UTC() // the API's clock, before the start
	firstID := notify.DeliveryID(id, 1, firstAt)
	h := newHarness(t, id)
	h.onDeliver(func(n int, c deliverCall) (activities.DeliverOutput, error) {
		if c.In.Attempt < 3 {
			return retryLater(), nil
		}
		return succeeded(), nil
	})
	in := input()
	in.FirstDeliveryID, in.FirstAt = firstID, firstAt
	h.deliver(in)

	if r, want := h.result(), (notify.DeliveryResult{Status: string(delivery.StatusSucceeded), Attempts: 3}); r != want {
		t.Errorf("result %+v, want %+v", r, want)
	}
	calls := h.deliverCalls()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	first := calls[0].In
	if first.DeliveryID != firstID || !first.At.Equal(firstAt) {
		t.Errorf("first attempt: row %q at %v, want the API's row %q at %v", first.DeliveryID, first.At, firstID, firstAt)
	}
	if first.Attempt != 1 || first.WorkflowID != id || first.NextDelay != 5*time.Second || !calls[0].Now.Equal(t0) {
		t.Errorf("first attempt %+v at t0+%v", first, calls[0].Now.Sub(t0))
	}
	for i, c := range calls[1:] {
		checkAttempt(t, c, id, i+2)
	}
	checkDistinctRows(t, calls)
}

// A FirstAt without a FirstDeliveryID names no row: the first attempt
// derives its own, at the workflow's time.
func TestFirstAtAloneIsIgnored(t *testing.T) {
	h := newHarness(t, wfID)
	h.onDeliver(func(int, deliverCall) (activities.DeliverOutput, error) { return succeeded(), nil })
	in := input()
	in.FirstAt = t0.Add(-time.Hour)
	h.deliver(in)
	h.result()
	calls := h.deliverCalls()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	checkAttempt(t, calls[0], wfID, 1)
}

// An activity error that may pass (the database away) is retried by
// Temporal, one second later, with the same input: the same attempt, the
// same row.
func TestActivityErrorIsRetried(t *testing.T) {
	h := newHarness(t, wfID)
	h.onDeliver(func(n int, c deliverCall) (activities.DeliverOutput, error) {
		if n == 1 {
			return activities.DeliverOutput{}, errors.New("database is away")
		}
		return succeeded(), nil
	})
	h.deliver(input())

	if r, want := h.result(), (notify.DeliveryResult{Status: string(delivery.StatusSucceeded), Attempts: 1}); r != want {
		t.Errorf("result %+v, want %+v", r, want)
	}
	calls := h.deliverCalls()
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	if calls[0].In != calls[1].In {
		t.Errorf("the retry changed the input:\n got %+v\nwant %+v", calls[1].In, calls[0].In)
	}
	checkAttempt(t, calls[0], wfID, 1)
	if calls[0].Try != 1 || calls[1].Try != 2 {
		t.Errorf("Temporal attempts %d, %d, want 1, 2", calls[0].Try, calls[1].Try)
	}
	if d := calls[1].Now.Sub(calls[0].Now); d != time.Second {
		t.Errorf("the retry came %v later, want the policy's first interval, 1s", d)
	}
}

// An activity error later in the schedule is retried too and the
// schedule goes on from there.
func TestActivityErrorOnALaterAttempt(t *testing.T) {
	h := newHarness(t, wfID)
	h.onDeliver(func(n int, c deliverCall) (activities.DeliverOutput, error) {
		switch {
		case n == 2: // attempt 2, first try
			return activities.DeliverOutput{}, errors.New("connection reset")
		case c.In.Attempt < 3:
			return retryLater(), nil
		}
		return succeeded(), nil
	})
	h.deliver(input())
	if r, want := h.result(), (notify.DeliveryResult{Status: string(delivery.StatusSucceeded), Attempts: 3}); r != want {
		t.Errorf("result %+v, want %+v", r, want)
	}
	calls := h.deliverCalls()
	if len(calls) != 4 {
		t.Fatalf("%d calls, want 4", len(calls))
	}
	if got := []int{calls[0].In.Attempt, calls[1].In.Attempt, calls[2].In.Attempt, calls[3].In.Attempt}; !slices.Equal(got, []int{1, 2, 2, 3}) {
		t.Errorf("attempts %v, want [1 2 2 3]", got)
	}
	// The third attempt follows the second's workflow time by the
	// schedule's 5 minutes plus the activity's 1 s retry.
	if d := calls[3].Now.Sub(t0); d != 5*time.Second+time.Second+5*time.Minute {
		t.Errorf("attempt 3 at t0+%v, want t0+5m6s", d)
	}
	at := t0.Add(5*time.Second + time.Second + 5*time.Minute).UTC()
	if want := notify.DeliveryID(wfID, 3, at); calls[3].In.DeliveryID != want || !calls[3].In.At.Equal(at) {
		t.Errorf("attempt 3: row %q at %v, want %q at %v", calls[3].In.DeliveryID, calls[3].In.At, want, at)
	}
}

// Errors the store refuses for good, and a missing object, are not
// retried: the workflow fails with the activity's error.
func TestNonRetryableActivityErrorFailsTheWorkflow(t *testing.T) {
	for _, typ := range []string{activities.ErrTypeStoreInvalid, activities.ErrTypeNotFound} {
		for _, onAttempt := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s on attempt %d", typ, onAttempt), func(t *testing.T) {
				h := newHarness(t, wfID)
				h.onDeliver(func(n int, c deliverCall) (activities.DeliverOutput, error) {
					if c.In.Attempt == onAttempt {
						// As the activity returns it: marked retryable, but
						// of a type the policy refuses to retry.
						return activities.DeliverOutput{}, temporal.NewApplicationError("refused", typ)
					}
					return retryLater(), nil
				})
				h.deliver(input())

				err := h.env.GetWorkflowError()
				if err == nil {
					t.Fatal("the workflow succeeded")
				}
				if errType(err) != typ {
					t.Errorf("workflow error %v, want one of type %s", err, typ)
				}
				var actErr *temporal.ActivityError
				if !errors.As(err, &actErr) {
					t.Errorf("workflow error %v is not the activity's", err)
				}
				if calls := h.deliverCalls(); len(calls) != onAttempt {
					t.Errorf("%d calls, want %d (no retry)", len(calls), onAttempt)
				}
			})
		}
	}
}

// A delivery canceled while it waits for the next attempt makes no more.
func TestCanceledWhileWaiting(t *testing.T) {
	h := newHarness(t, wfID)
	h.onDeliver(func(int, deliverCall) (activities.DeliverOutput, error) { return retryLater(), nil })
	h.env.RegisterDelayedCallback(h.env.CancelWorkflow, time.Minute) // during the 5 min wait
	h.deliver(input())

	err := h.env.GetWorkflowError()
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("workflow error %v, want canceled", err)
	}
	if calls := h.deliverCalls(); len(calls) != 2 {
		t.Errorf("%d calls, want 2", len(calls))
	}
	if h.elapsed() != time.Minute {
		t.Errorf("the workflow ended at t0+%v, want t0+1m", h.elapsed())
	}
}

// The attempts run as regular activities with a one-minute bound, retried
// (from 1 s, doubling, up to 5 min) unless the store refuses for good or
// the object is not there.
func TestDeliveryActivityOptions(t *testing.T) {
	h := newHarness(t, wfID)
	h.onDeliver(func(n int, c deliverCall) (activities.DeliverOutput, error) {
		if n < 2 {
			return retryLater(), nil
		}
		return succeeded(), nil
	})
	h.deliver(input())
	h.result()
	s := h.scheduledActivities()
	if len(s) != 2 {
		t.Fatalf("%d activities scheduled, want 2: %+v", len(s), s)
	}
	for _, a := range s {
		if a.Activity != "DeliverWebhook" {
			t.Errorf("scheduled %q, want DeliverWebhook", a.Activity)
		}
		o := a.Opts
		if o.StartToCloseTimeout != time.Minute {
			t.Errorf("StartToCloseTimeout %v, want 1m", o.StartToCloseTimeout)
		}
		p := o.RetryPolicy
		if p == nil {
			t.Fatal("no retry policy")
		}
		// (MaximumAttempts is not checked: the test suite sets its own 10
		// on the policy when it is 0, as here.)
		if p.InitialInterval != time.Second || p.BackoffCoefficient != 2 || p.MaximumInterval != 5*time.Minute {
			t.Errorf("retry policy %+v", *p)
		}
		want := []string{activities.ErrTypeStoreInvalid, activities.ErrTypeNotFound}
		if !slices.Equal(p.NonRetryableErrorTypes, want) {
			t.Errorf("non-retryable types %v, want %v", p.NonRetryableErrorTypes, want)
		}
	}
}
