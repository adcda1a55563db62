package e2e

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/workflows/notify"
)

// webhookDay is how long a simulated day lasts in TestWebhookReceiverDownForADay:
// the delivery schedule is scaled by webhookDay / 24 h for that test (24 s,
// the default, makes an hour of the schedule a second).
var webhookDay = flag.Duration("webhook-day", 24*time.Second,
	"real length of a simulated day in TestWebhookReceiverDownForADay (scales the webhook retry schedule)")

// The bounds on when a webhook attempt of TestWebhookReceiverDownForADay
// comes after its scheduled wait.
const (
	// timerFloor is the shortest a Temporal timer lasts: the server fires
	// no timer earlier than history.timerProcessorMaxTimeShift after it
	// was set, 1 s by default, which the dev server runs with
	// (devserver.SingleWorkerConfig leaves it). The scaled waits shorter
	// than that (Schedule[1] to [3] at the default -webhook-day) last
	// about a second.
	timerFloor = time.Second
	// retrySlack is how much longer than its timer an attempt may take.
	// Real time passes around the timer: the previous attempt's activity
	// (two reads, two writes and a request to the receiver on this
	// machine) and the workflow tasks either side of the timer, for a
	// dozen deliveries at once, on a machine that may be busy with other
	// tests. That took a quarter of a second at most on a two-core machine
	// running other tests beside this one; two seconds leave room for a
	// busier one (CI runs the chaos suite's cluster beside it), and are
	// still less than the step from one scaled wait to the next from
	// Schedule[4] on (3 s and more at the default -webhook-day), so an
	// attempt that waits for the wrong step of the schedule fails.
	retrySlack = 2 * time.Second
)

// scaleSchedule runs the webhook deliveries of this test on
// notify.Schedule scaled by day / 24 h (the same ten attempts, the same
// ratios between the waits) and restores API.md's schedule when the test
// ends. It must be called before the platform starts, so that the restore
// runs after the worker stopped (cleanups run last first), and only from a
// test that is not parallel: the package's parallel tests start after the
// sequential ones have ended, so no other worker reads the schedule
// meanwhile.
func scaleSchedule(t *testing.T, day time.Duration) []time.Duration {
	t.Helper()
	full := notify.Schedule
	scaled := make([]time.Duration, len(full))
	for i, d := range full {
		scaled[i] = time.Duration(float64(d) * float64(day) / float64(24*time.Hour))
		if (d > 0) != (scaled[i] > 0) {
			t.Fatalf("a simulated day of %v makes the wait %v zero: the schedule would change its shape", day, d)
		}
	}
	notify.Schedule = scaled
	t.Cleanup(func() { notify.Schedule = full })
	return scaled
}

// outageReceiver is a merchant's endpoint that is down (503) for a
// simulated day from the first request it gets, then answers 204. Every
// request's signature is checked with the Standard Webhooks library,
// during the outage too, and every request is kept. It is a receiver for
// its server, lock and signing secret, so that e.endpoint registers it,
// but answers with a handler of its own.
type outageReceiver struct {
	*receiver
	day time.Duration

	// Guarded by the receiver's mu.
	start    time.Time // the first request
	requests []outageRequest
}

// outageRequest is one request the receiver got.
type outageRequest struct {
	at      time.Time
	msgID   string // the webhook-id header
	eventID string // the body's id
	typ     string
	status  int   // the answer
	sigErr  error // the signature check's
	bodyErr error
}

func newOutageReceiver(t *testing.T, day time.Duration) *outageReceiver {
	r := &outageReceiver{receiver: &receiver{t: t}, day: day}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *outageReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	got := outageRequest{at: time.Now(), msgID: req.Header.Get("webhook-id")}
	if r.start.IsZero() {
		r.start = got.at
	}
	got.sigErr = verifyWith(r.secret, body, req.Header)
	ev := &pb.Event{}
	got.bodyErr = protojson.Unmarshal(body, ev)
	got.eventID, got.typ = ev.GetId(), ev.GetType()
	switch {
	case got.at.Before(r.start.Add(r.day)):
		got.status = http.StatusServiceUnavailable
	case got.sigErr != nil || got.bodyErr != nil:
		got.status = http.StatusBadRequest
	default:
		got.status = http.StatusNoContent
	}
	r.requests = append(r.requests, got)
	w.WriteHeader(got.status)
}

// snapshot is what the receiver got so far and when its outage began.
func (r *outageReceiver) snapshot() (time.Time, []outageRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.start, slices.Clone(r.requests)
}

// listEvents is every event ListEvents shows u, all pages.
func (e *E) listEvents(t *testing.T, u user) []*pb.Event {
	t.Helper()
	var out []*pb.Event
	token := ""
	for {
		req := map[string]any{"page_size": 100}
		if token != "" {
			req["page_token"] = token
		}
		r := e.post(t, u.Token, procListEvents, req)
		var page pb.ListEventsResponse
		if r.status != http.StatusOK || protojson.Unmarshal(r.body, &page) != nil {
			t.Fatalf("ListEvents: %s", r)
		}
		out = append(out, page.GetEvents()...)
		if token = page.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// TestWebhookReceiverDownForADay: a merchant's receiver is down (503) for a
// simulated day from its first event, while the merchant's payments and
// refunds make events of several types. Afterwards every event ListEvents
// shows arrived with a valid signature, exactly once per event id among
// the 2xx answers, and ListDeliveries shows each event's failed attempts,
// each with its next attempt on the schedule, then the success.
//
// The Temporal dev server cannot skip time, so the retry schedule is
// scaled (scaleSchedule, -webhook-day) with its shape kept. Not parallel:
// it changes notify.Schedule, a package variable every worker reads.
func TestWebhookReceiverDownForADay(t *testing.T) {
	day := *webhookDay
	scaled := scaleSchedule(t, day)
	t.Logf("a simulated day lasts %v; the scaled schedule is %v", day, scaled)
	began := time.Now()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	rcv := newOutageReceiver(t, day)
	epID := e.endpoint(t, m, rcv.receiver, "*")

	// The merchant's business while its receiver is down.
	made := time.Now()
	wantStatus(t, e.create(t, c, pay(m, 1000, "USD", "pm_card_visa")), stSucceeded)
	p2 := e.create(t, c, pay(m, 2000, "EUR", "pm_card_mastercard"))
	wantStatus(t, p2, stSucceeded)
	e.refundOK(t, m, p2.GetId(), 500, 500)
	p3 := e.create(t, c, pay(m, 3000, "USD", "pm_card_amex"))
	wantStatus(t, p3, stSucceeded)
	e.refundOK(t, m, p3.GetId(), 0, 3000)
	wantStatus(t, e.create(t, c, pay(m, 700, "GBP", "pm_card_chargeDeclined")), stFailed)
	p5 := e.create(t, c, pay(m, 4000, "USD", "pm_card_visa").manual())
	wantStatus(t, p5, stRequiresCapture)
	wantStatus(t, e.captureR(t, m, p5.GetId(), 0).payment(t), stSucceeded)
	p6 := e.create(t, c, pay(m, 1500, "USD", "pm_card_visa").manual())
	wantStatus(t, p6, stRequiresCapture)
	wantStatus(t, e.cancelR(t, m, p6.GetId(), "").payment(t), stCanceled)
	wantStatus(t, e.create(t, c, pay(m, 2500, "JPY", "pm_card_authenticationRequired")), stRequiresAction)
	wantStatus(t, e.create(t, c, pay(m, 990, "USD", "pm_card_visa")), stSucceeded)

	events := e.listEvents(t, m)
	types := map[string]bool{}
	for _, ev := range events {
		types[ev.GetType()] = true
	}
	if len(events) < 10 || len(types) < 5 {
		t.Fatalf("the merchant has %d events of %d types (%v), want at least 10 of 5 types", len(events), len(types), types)
	}
	start, _ := rcv.snapshot()
	if start.IsZero() || time.Since(start) > day/2 {
		// Every event must be made well inside the outage, so that each
		// one's first attempt fails; a slow machine needs a longer day.
		t.Fatalf("the events took %v to make (outage began %v after the first), want less than half a simulated day (%v): run with a longer -webhook-day",
			time.Since(made), start.Sub(made), day/2)
	}
	t.Logf("%d events of %d types made in %v; the receiver is down until %v after its first request",
		len(events), len(types), time.Since(made).Round(time.Millisecond), day)

	// Wait (polling, with a deadline) until every listed event has been
	// answered 2xx. The latest first success is about 1.6 simulated days
	// after the outage began (the 8th attempt of an event made at its start).
	deadline := start.Add(2*day + waitFor)
	for {
		events = e.listEvents(t, m)
		_, reqs := rcv.snapshot()
		ok := map[string]bool{}
		for _, q := range reqs {
			if q.status/100 == 2 {
				ok[q.msgID] = true
			}
		}
		var missing []string
		for _, ev := range events {
			if !ok[ev.GetId()] {
				missing = append(missing, ev.GetId()+" "+ev.GetType())
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after the outage began, %d of %d events have not arrived: %v", time.Since(start), len(missing), len(events), missing)
		}
		time.Sleep(4 * pollEvery) // polling with a deadline
	}
	t.Logf("every event arrived %v after the outage began", time.Since(start).Round(time.Millisecond))

	// What the receiver saw: valid signatures on every request, the
	// webhook-id the event's id, and per event id one 2xx answer (the
	// receiver gives it only after the outage), the last request, following
	// the 503s.
	start, reqs := rcv.snapshot()
	listed := map[string]*pb.Event{}
	for _, ev := range events {
		listed[ev.GetId()] = ev
	}
	byID := map[string][]outageRequest{}
	for _, q := range reqs {
		if q.sigErr != nil || q.bodyErr != nil {
			t.Errorf("request at %v for %s: signature %v, body %v", q.at.Sub(start), q.msgID, q.sigErr, q.bodyErr)
		}
		if q.msgID == "" || q.msgID != q.eventID {
			t.Errorf("request at %v: webhook-id %q for the event %q", q.at.Sub(start), q.msgID, q.eventID)
		}
		if listed[q.msgID] == nil {
			t.Errorf("the receiver got %s (%s), which ListEvents does not show the merchant", q.msgID, q.typ)
		}
		byID[q.msgID] = append(byID[q.msgID], q)
	}
	for _, ev := range events {
		got := byID[ev.GetId()]
		succeeded, unavailable := 0, 0
		for i, q := range got {
			switch q.status {
			case http.StatusNoContent:
				succeeded++
				if i != len(got)-1 {
					t.Errorf("%s (%s): answered 204 at %v, request %d of %d", ev.GetId(), ev.GetType(), q.at.Sub(start), i+1, len(got))
				}
			case http.StatusServiceUnavailable:
				unavailable++
			default:
				t.Errorf("%s (%s): answered %d", ev.GetId(), ev.GetType(), q.status)
			}
			if q.typ != ev.GetType() {
				t.Errorf("%s: the receiver got type %q, ListEvents shows %q", ev.GetId(), q.typ, ev.GetType())
			}
		}
		if succeeded != 1 || unavailable == 0 {
			t.Errorf("%s (%s): %d successful deliveries after %d refused ones, want exactly 1 after at least 1",
				ev.GetId(), ev.GetType(), succeeded, unavailable)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// What ListDeliveries shows: for each event, attempts 1..n to the
	// endpoint, the first n-1 failed with the 503 and their next attempt
	// due on the scaled schedule, the last succeeded with the 204; as many
	// attempts as the receiver got requests. (The success's row is saved
	// right after the receiver answered: polled, with a deadline.)
	var latest time.Duration // the latest an attempt came after its timer
	for _, ev := range events {
		n := len(byID[ev.GetId()])
		ds := e.deliveries(t, m, map[string]any{"event_id": ev.GetId(), "page_size": 100}, func(ds []*pb.Delivery) bool {
			return len(ds) == n && ds[0].GetStatus() == pb.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED
		})
		sort.Slice(ds, func(i, j int) bool { return ds[i].GetAttempt() < ds[j].GetAttempt() })
		describe := func() string {
			s := ""
			for _, d := range ds {
				s += fmt.Sprintf("\n  attempt %d %s %d %q at %s next %v", d.GetAttempt(), d.GetStatus(), d.GetResponseStatus(), d.GetError(),
					d.GetCreatedAt().AsTime().Sub(start).Round(time.Millisecond), d.GetNextAttemptAt().AsTime().Sub(start).Round(time.Millisecond))
			}
			return s
		}
		for i, d := range ds {
			attempt := i + 1
			if d.GetAttempt() != int32(attempt) || d.GetEventId() != ev.GetId() || d.GetEndpointId() != epID {
				t.Fatalf("%s (%s): attempts are not 1..%d to %s:%s", ev.GetId(), ev.GetType(), n, epID, describe())
			}
			if attempt < n {
				next := d.GetNextAttemptAt()
				if d.GetStatus() != pb.DeliveryStatus_DELIVERY_STATUS_FAILED || d.GetResponseStatus() != http.StatusServiceUnavailable ||
					d.GetError() != "HTTP 503" || next == nil {
					t.Fatalf("%s (%s): attempt %d is not a failed 503 with a next attempt:%s", ev.GetId(), ev.GetType(), attempt, describe())
				}
				// The next attempt is due the scaled wait after this one
				// (counted from when this attempt's answer came, so at most
				// retrySlack more), and came then: no sooner than the wait
				// (less the database's rounding of the times), and at most
				// retrySlack after its timer (the wait, or the shortest
				// timer when that is longer).
				created := d.GetCreatedAt().AsTime()
				if wait := next.AsTime().Sub(created); wait < scaled[attempt] || wait > scaled[attempt]+retrySlack {
					t.Errorf("%s (%s): attempt %d's next attempt is due %v after it, want %v (Schedule[%d] scaled) to %v more",
						ev.GetId(), ev.GetType(), attempt, wait, scaled[attempt], attempt, retrySlack)
				}
				timer := max(scaled[attempt], timerFloor)
				gap := ds[i+1].GetCreatedAt().AsTime().Sub(created)
				if gap < scaled[attempt]-time.Millisecond || gap > timer+retrySlack {
					t.Errorf("%s (%s): attempt %d came %v after attempt %d, want %v (Schedule[%d] scaled) to %v",
						ev.GetId(), ev.GetType(), attempt+1, gap, attempt, scaled[attempt], attempt, timer+retrySlack)
				}
				latest = max(latest, gap-timer)
				continue
			}
			if d.GetStatus() != pb.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED || d.GetResponseStatus() != http.StatusNoContent ||
				d.GetError() != "" || d.GetNextAttemptAt() != nil {
				t.Fatalf("%s (%s): the last attempt is not the 204 success:%s", ev.GetId(), ev.GetType(), describe())
			}
		}
		t.Logf("%s %-24s %d attempts, the last at %v", ev.GetId(), ev.GetType(), n,
			ds[n-1].GetCreatedAt().AsTime().Sub(start).Round(time.Millisecond))
		if n < 2 || n > len(scaled) {
			t.Errorf("%s (%s): %d attempts, want 2 to %d", ev.GetId(), ev.GetType(), n, len(scaled))
		}
	}
	t.Logf("the attempts came at most %v after their timers (allowed: %v)", latest.Round(time.Millisecond), retrySlack)
	t.Logf("test ran %v (platform start included)", time.Since(began).Round(time.Millisecond))
}
