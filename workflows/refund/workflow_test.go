package refund

// Unit tests of the refund workflow's paths: the fast path, the fallback
// activity with the same key, the gateway's refusal and its silence, the
// balance's refusal, the gateway's events (in the first run and in a
// Resume run), the attention timer, the await updates and the logic
// version guard. The harness (harness_test.go) records every call; a
// gateway call a test does not mock fails it.

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/ent/ledgerentry"
	entrefund "github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

// createReq is what the workflow asks the store to create for input().
func createReq() store.RefundRecord {
	in := input()
	return store.RefundRecord{
		ID: in.RefundID, PaymentID: in.PaymentID, MerchantID: in.MerchantID,
		Reason: entrefund.ReasonRequestedByCustomer, Metadata: in.Metadata,
		WorkflowID: wfID, CreatedAt: in.CreatedAt,
	}
}

// created is the refund the store creates for input().
func created() store.RefundRecord { return createdOf(createReq()) }

// after is rec saved at version v, at workflow time t0+d, with status st.
func after(rec store.RefundRecord, v int64, d time.Duration, st entrefund.Status) store.RefundRecord {
	rec.Version, rec.UpdatedAt, rec.Status = v, t0.Add(d), st
	return rec
}

// The lines of the refund's journal and of its reversal, spelled out.
var (
	refundLines = []store.JournalLine{
		{Account: "merchant_balance:" + merchantID, Direction: ledgerentry.DirectionDebit, Amount: amount},
		{Account: "gateway_clearing:" + gwName, Direction: ledgerentry.DirectionCredit, Amount: amount},
		{Account: "gateway_clearing:" + gwName, Direction: ledgerentry.DirectionDebit, Amount: amount},
		{Account: "customer_funding:" + customerID, Direction: ledgerentry.DirectionCredit, Amount: amount},
	}
	reversalLines = []store.JournalLine{
		{Account: "customer_funding:" + customerID, Direction: ledgerentry.DirectionDebit, Amount: amount},
		{Account: "gateway_clearing:" + gwName, Direction: ledgerentry.DirectionCredit, Amount: amount},
		{Account: "gateway_clearing:" + gwName, Direction: ledgerentry.DirectionDebit, Amount: amount},
		{Account: "merchant_balance:" + merchantID, Direction: ledgerentry.DirectionCredit, Amount: amount},
	}
)

// checkJournal asserts that s posted exactly want (nil: no journal).
func checkJournal(t *testing.T, what string, s saveCall, want *store.Journal) {
	t.Helper()
	switch {
	case want == nil && s.Journal != nil:
		t.Errorf("%s: journal %+v, want none", what, *s.Journal)
	case want != nil && s.Journal == nil:
		t.Errorf("%s: no journal, want %+v", what, *want)
	case want != nil && !reflect.DeepEqual(*s.Journal, *want):
		t.Errorf("%s: journal\n got %+v\nwant %+v", what, *s.Journal, *want)
	}
}

// checkSaves asserts the saves are exactly want (records, times, and
// journals).
func checkSaves(t *testing.T, h *harness, want []saveCall) {
	t.Helper()
	got := h.allSaves()
	if len(got) != len(want) {
		for i, s := range got {
			t.Logf("save %d at %v: %+v journal %v", i, s.At.Sub(t0), s.Rec, s.Journal != nil)
		}
		t.Fatalf("%d saves, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].Rec, want[i].Rec) {
			t.Errorf("save %d\n got %+v\nwant %+v", i, got[i].Rec, want[i].Rec)
		}
		if !got[i].At.Equal(want[i].At) {
			t.Errorf("save %d at %v, want %v", i, got[i].At.Sub(t0), want[i].At.Sub(t0))
		}
		checkJournal(t, fmt.Sprintf("save %d", i), got[i], want[i].Journal)
	}
}

// onlyFastPath asserts the gateway was called once, on the fast path at
// t0, and no regular activity was scheduled.
func onlyFastPath(t *testing.T, h *harness) {
	t.Helper()
	if cs := h.allRefunds(); len(cs) != 1 || !cs[0].Local || !cs[0].At.Equal(t0) || cs[0].Req.IdempotencyKey != key {
		t.Errorf("gateway calls %+v, want one local call at the start with key %q", cs, key)
	}
	if s := h.scheduledOf("Refund"); len(s) != 0 {
		t.Errorf("regular Refund activities scheduled: %+v", s)
	}
}

// 1. The fast path: the store creates the refund, the gateway (a local
// activity, with the created refund's amount, currency and payment
// reference) answers succeeded, and one save records it with its journal.
func TestFastPathSucceeds(t *testing.T) {
	h := newHarness(t, input())
	h.onRefund(func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		if n != 1 {
			t.Errorf("gateway call %d", n)
		}
		return answer(gateway.RefundSucceeded), nil
	})
	h.run()
	rec := h.result(2)

	if cs := h.allCreates(); len(cs) != 1 || !reflect.DeepEqual(cs[0].Req, createReq()) || !cs[0].At.Equal(t0) {
		t.Fatalf("CreateRefund calls %+v, want one of %+v at the start", cs, createReq())
	}
	onlyFastPath(t, h)
	if got := h.allRefunds()[0].Req; got.IdempotencyKey != "refund/re_01test/refund/1" || got.Amount != 2500 || got.Currency != "USD" || got.Reference != "pi_paid" {
		t.Fatalf("gateway request %+v", got)
	}

	want := created()
	want.Status, want.GatewayReference, want.Version, want.UpdatedAt = entrefund.StatusSucceeded, gwRef, 2, t0
	checkSaves(t, h, []saveCall{{Rec: want, At: t0, Journal: store.RefundJournal(want, t0)}})
	if js := h.journals(); len(js) != 1 || js[0].ID != refundID+"/refund" || js[0].PaymentID != payID || js[0].Currency != currency ||
		!js[0].At.Equal(t0) || !reflect.DeepEqual(js[0].Lines, refundLines) {
		t.Fatalf("journals %+v, want the refund's lines %+v", js, refundLines)
	}
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("result\n got %+v\nwant %+v", rec, want)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"succeeded"}) {
		t.Fatalf("RefundStatus upserts %q, want [succeeded]", got)
	}
	if a := h.attentionChanges(); len(a) != 0 {
		t.Fatalf("NeedsAttention upserts %+v", a)
	}
}

// The gateway's refund reasons are Stripe's; the others are left out.
func TestGatewayReasons(t *testing.T) {
	for _, tc := range []struct{ reason, gw string }{
		{"duplicate", "duplicate"},
		{"fraudulent", "fraudulent"},
		{"requested_by_customer", "requested_by_customer"},
		{"other", ""},
		{"unspecified", ""},
		{"", ""},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			in := input()
			in.Reason = tc.reason
			h := newHarness(t, in)
			h.gwReason = tc.gw
			h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
				return answer(gateway.RefundSucceeded), nil
			})
			h.run()
			if rec := h.result(2); rec.Status != entrefund.StatusSucceeded || len(h.allRefunds()) != 1 {
				t.Fatalf("record %+v, %d gateway calls", rec, len(h.allRefunds()))
			}
		})
	}
}

// 2a. The gateway takes the refund as pending (its journal is posted
// then); its event says succeeded: saved succeeded, no second journal.
func TestPendingThenSucceededByEvent(t *testing.T) {
	h := newHarness(t, input())
	h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		return answer(gateway.RefundPending), nil
	})
	pending := created()
	pending.Status, pending.GatewayReference, pending.Version, pending.UpdatedAt = entrefund.StatusPending, gwRef, 2, t0
	h.at(30*time.Minute, func() {
		if got := h.query(); !reflect.DeepEqual(got, pending) {
			t.Errorf("while pending:\n got %+v\nwant %+v", got, pending)
		}
	})
	h.signal(time.Hour, GatewayEvent{EventID: "evt_1", Type: "refund.updated", Reference: gwRef, Status: gateway.RefundSucceeded})
	h.run()
	rec := h.result(2)

	onlyFastPath(t, h)
	done := after(pending, 3, time.Hour, entrefund.StatusSucceeded)
	checkSaves(t, h, []saveCall{
		{Rec: pending, At: t0, Journal: store.RefundJournal(pending, t0)},
		{Rec: done, At: t0.Add(time.Hour)},
	})
	if js := h.journals(); len(js) != 1 || !reflect.DeepEqual(js[0].Lines, refundLines) {
		t.Fatalf("journals %+v, want only the refund's", js)
	}
	if !reflect.DeepEqual(rec, done) {
		t.Fatalf("result\n got %+v\nwant %+v", rec, done)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"succeeded"}) {
		t.Fatalf("RefundStatus upserts %q", got)
	}
}

// 2b. A succeeded refund fails later: the event starts a new run
// (Resume, the event delivered with the start), which loads the stored
// refund and records the failure with the reversal of its journal.
func TestResumeRunRecordsALateFailureWithTheReversal(t *testing.T) {
	in := input()
	in.Resume, in.CreatedAt = true, t0.Add(-20*24*time.Hour)
	h := newHarness(t, in)
	stored := created()
	stored.Status, stored.GatewayReference, stored.Version = entrefund.StatusSucceeded, gwRef, 3
	stored.CreatedAt, stored.UpdatedAt = t0.Add(-20*24*time.Hour), t0.Add(-20*24*time.Hour+time.Hour)
	h.loaded = &stored
	h.signal(0, GatewayEvent{EventID: "evt_9", Type: "refund.failed", Reference: gwRef, Status: gateway.RefundFailed, FailureCode: "expired_or_canceled_card"})
	h.run()
	rec := h.result(4)

	if cs := h.allCreates(); len(cs) != 0 {
		t.Fatalf("a Resume run created the refund: %+v", cs)
	}
	if ls := h.allLoads(); len(ls) != 1 || ls[0].Req != refundID || !ls[0].At.Equal(t0) {
		t.Fatalf("LoadRefund calls %+v", ls)
	}
	if cs := h.allRefunds(); len(cs) != 0 {
		t.Fatalf("a Resume run called the gateway: %+v", cs)
	}
	failed := after(stored, 4, 0, entrefund.StatusFailed)
	failed.FailureReason = "expired_or_canceled_card"
	checkSaves(t, h, []saveCall{{Rec: failed, At: t0, Journal: store.RefundReversalJournal(failed, t0)}})
	if js := h.journals(); len(js) != 1 || js[0].ID != refundID+"/refund_failed" || !reflect.DeepEqual(js[0].Lines, reversalLines) {
		t.Fatalf("journals %+v, want the reversal's lines %+v", js, reversalLines)
	}
	if !reflect.DeepEqual(rec, failed) {
		t.Fatalf("result\n got %+v\nwant %+v", rec, failed)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"failed"}) {
		t.Fatalf("RefundStatus upserts %q", got)
	}
}

// A Resume run whose event changes nothing (a redelivery of the success)
// saves nothing and ends.
func TestResumeRunWithAStaleEventSavesNothing(t *testing.T) {
	in := input()
	in.Resume = true
	h := newHarness(t, in)
	stored := created()
	stored.Status, stored.GatewayReference, stored.Version = entrefund.StatusSucceeded, gwRef, 3
	h.loaded = &stored
	h.signal(0, GatewayEvent{EventID: "evt_1", Type: "refund.updated", Reference: gwRef, Status: gateway.RefundSucceeded})
	h.run()
	if rec := h.result(4); !reflect.DeepEqual(rec, stored) || len(h.allSaves()) != 0 || len(h.statusAttrs()) != 0 {
		t.Fatalf("record %+v, saves %+v", rec, h.allSaves())
	}
}

// 3. A refund the gateway took as pending fails (or is canceled) at the
// gateway: recorded with its code and the reversal of its journal (the
// amount it frees is the store's business).
func TestPendingThenFailedEventReversesTheJournal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status gateway.RefundStatus
		code   string
		want   entrefund.Status
		reason string
	}{
		{"failed", gateway.RefundFailed, "insufficient_funds", entrefund.StatusFailed, "insufficient_funds"},
		{"failed without a code", gateway.RefundFailed, "", entrefund.StatusFailed, "unknown"},
		{"canceled", gateway.RefundCanceled, "", entrefund.StatusCanceled, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input())
			h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
				return answer(gateway.RefundPending), nil
			})
			h.signal(2*time.Hour, GatewayEvent{EventID: "evt_f", Type: "refund.failed", Reference: gwRef, Status: tc.status, FailureCode: tc.code})
			h.run()
			rec := h.result(2)
			pending := created()
			pending.GatewayReference, pending.Version, pending.UpdatedAt = gwRef, 2, t0
			end := after(pending, 3, 2*time.Hour, tc.want)
			end.FailureReason = tc.reason
			checkSaves(t, h, []saveCall{
				{Rec: pending, At: t0, Journal: store.RefundJournal(pending, t0)},
				{Rec: end, At: t0.Add(2 * time.Hour), Journal: store.RefundReversalJournal(end, t0.Add(2*time.Hour))},
			})
			if js := h.journals(); len(js) != 2 || !reflect.DeepEqual(js[0].Lines, refundLines) || !reflect.DeepEqual(js[1].Lines, reversalLines) {
				t.Fatalf("journals %+v", js)
			}
			if !reflect.DeepEqual(rec, end) {
				t.Fatalf("result\n got %+v\nwant %+v", rec, end)
			}
			if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{string(tc.want)}) {
				t.Fatalf("RefundStatus upserts %q", got)
			}
		})
	}
}

// The gateway answers failed at once: the refund never moved money, so
// there is no journal to post or reverse.
func TestGatewayAnswersFailedAtOnce(t *testing.T) {
	h := newHarness(t, input())
	h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		return gateway.RefundResult{Reference: gwRef, Status: gateway.RefundFailed, FailureCode: "charge_disputed"}, nil
	})
	h.run()
	rec := h.result(2)
	want := after(created(), 2, 0, entrefund.StatusFailed)
	want.GatewayReference, want.FailureReason = gwRef, "charge_disputed"
	checkSaves(t, h, []saveCall{{Rec: want, At: t0}})
	if !reflect.DeepEqual(rec, want) {
		t.Fatalf("result %+v", rec)
	}
}

// 4. The gateway refuses the refund for good on the fast path: failed
// with its code, no journal, no regular activity.
func TestGatewayRefusalFailsTheRefund(t *testing.T) {
	for _, tc := range []struct{ code, reason string }{
		{"charge_already_refunded", "charge_already_refunded"},
		{"", "refused"}, // a refusal without details
	} {
		t.Run(tc.reason, func(t *testing.T) {
			h := newHarness(t, input())
			h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
				return gateway.RefundResult{}, invalidGatewayError(tc.code)
			})
			h.run()
			rec := h.result(2)
			onlyFastPath(t, h)
			want := after(created(), 2, 0, entrefund.StatusFailed)
			want.FailureReason = tc.reason
			checkSaves(t, h, []saveCall{{Rec: want, At: t0}})
			if !reflect.DeepEqual(rec, want) {
				t.Fatalf("result\n got %+v\nwant %+v", rec, want)
			}
			if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"failed"}) {
				t.Fatalf("RefundStatus upserts %q", got)
			}
			if cs := h.allCreates(); len(cs) != 1 {
				t.Fatalf("CreateRefund calls %+v", cs)
			}
		})
	}
}

// 5. The fast path gets no answer; the regular activity, with exactly the
// same key on every attempt, gets the gateway's answer on its third.
func TestFallbackActivityReusesTheFastPathKey(t *testing.T) {
	h := newHarness(t, input())
	h.onRefund(func(n int, c call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		if n <= 3 {
			return gateway.RefundResult{}, unavailable()
		}
		return answer(gateway.RefundSucceeded), nil
	})
	h.run()
	rec := h.result(2)
	cs := h.allRefunds()
	type shape struct {
		Local   bool
		Attempt int32
		At      time.Duration
		Key     string
	}
	var got []shape
	for _, c := range cs {
		got = append(got, shape{c.Local, c.Attempt, c.At.Sub(t0), c.Req.IdempotencyKey})
	}
	want := []shape{
		{true, 1, 0, key},
		{false, 1, 0, key},
		{false, 2, 500 * time.Millisecond, key},
		{false, 3, 1500 * time.Millisecond, key},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("gateway calls\n got %+v\nwant %+v", got, want)
	}
	s := h.scheduledOf("Refund")
	if len(s) != 1 || s[0].Opts.ScheduleToCloseTimeout != presets.GatewayRetryWindow || s[0].Opts.RetryPolicy == nil ||
		!slices.Contains(s[0].Opts.RetryPolicy.NonRetryableErrorTypes, activities.ErrTypeGatewayInvalid) {
		t.Fatalf("scheduled %+v, want one activity retried for %v", s, presets.GatewayRetryWindow)
	}
	at := 1500 * time.Millisecond
	done := after(created(), 2, at, entrefund.StatusSucceeded)
	done.GatewayReference = gwRef
	checkSaves(t, h, []saveCall{{Rec: done, At: t0.Add(at), Journal: store.RefundJournal(done, t0.Add(at))}})
	if !reflect.DeepEqual(rec, done) {
		t.Fatalf("result %+v", rec)
	}
}

// 6. The gateway never answers in the whole retry window (23 hours of
// attempts with the one key): the refund stays pending, marked for
// operators; it is never recorded as failed, and the workflow keeps
// waiting for the gateway's event.
func TestGatewayThatNeverAnswersLeavesTheRefundPendingForOperators(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event bool // a gateway event comes on day 20
	}{
		{"then an event settles it", true},
		{"and nothing ever comes", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input())
			h.running = !tc.event
			h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
				return gateway.RefundResult{}, unavailable()
			})
			h.at(22*time.Hour, func() {
				if got := h.query(); got.Status != entrefund.StatusPending || got.Version != 1 || got.NeedsAttention {
					t.Errorf("while the activity retries: %+v", got)
				}
			})
			var marked store.RefundRecord
			for _, d := range []time.Duration{24 * time.Hour, PendingAttentionAfter + 24*time.Hour, 19 * 24 * time.Hour} {
				h.at(d, func() {
					got := h.query()
					if got.Status != entrefund.StatusPending || got.Version != 2 || !got.NeedsAttention ||
						!strings.HasPrefix(got.AttentionReason, "the gateway did not answer the refund: ") ||
						!strings.Contains(got.AttentionReason, "503 from gateway") {
						t.Errorf("after %v: %+v", d, got)
					}
					if marked.Version == 0 {
						marked = got
					} else if !reflect.DeepEqual(got, marked) {
						t.Errorf("after %v the refund changed: %+v", d, got)
					}
				})
			}
			day20 := 20 * 24 * time.Hour
			if tc.event {
				h.signal(day20, GatewayEvent{EventID: "evt_late", Type: "refund.updated", Reference: gwRef, Status: gateway.RefundSucceeded})
			}
			h.run()

			cs := h.allRefunds()
			if len(cs) < 100 || !cs[0].Local {
				t.Fatalf("%d gateway calls, want the fast path then attempts for the whole window", len(cs))
			}
			last := cs[len(cs)-1]
			for _, c := range cs {
				if c.Req.IdempotencyKey != key {
					t.Fatalf("gateway call with key %q", c.Req.IdempotencyKey)
				}
			}
			window := presets.GatewayRetryWindow
			if last.Local || last.At.After(t0.Add(window)) || last.At.Before(t0.Add(window-10*time.Minute)) {
				t.Fatalf("last attempt %d at %v, want within the last 10 minutes of %v", last.Attempt, last.At.Sub(t0), window)
			}
			gaveUp := last.At.Sub(t0)
			pending := after(created(), 2, gaveUp, entrefund.StatusPending)
			pending.NeedsAttention, pending.AttentionReason = true, h.allSaves()[0].Rec.AttentionReason
			want := []saveCall{{Rec: pending, At: last.At}}
			wantAttn := []attrChange{{true, last.At}}
			if tc.event {
				done := after(pending, 3, day20, entrefund.StatusSucceeded)
				done.GatewayReference, done.NeedsAttention, done.AttentionReason = gwRef, false, ""
				// The gateway's first word that it took the refund: its
				// journal is posted now.
				want = append(want, saveCall{Rec: done, At: t0.Add(day20), Journal: store.RefundJournal(done, t0.Add(day20))})
				wantAttn = append(wantAttn, attrChange{false, t0.Add(day20)})
				if rec := h.result(2); !reflect.DeepEqual(rec, done) {
					t.Fatalf("result %+v", rec)
				}
			} else {
				if err := h.env.GetWorkflowError(); !temporal.IsCanceledError(err) {
					t.Fatalf("workflow error %v, want canceled by the test after %v", err, maxLife)
				}
				h.checkVersions(2)
			}
			checkSaves(t, h, want)
			for _, st := range h.statuses() {
				if st == entrefund.StatusFailed || st == entrefund.StatusCanceled {
					t.Fatalf("an unanswered refund was recorded as %s", st)
				}
			}
			if got := h.attentionChanges(); !sameChanges(got, wantAttn) {
				t.Fatalf("NeedsAttention upserts %+v, want %+v", got, wantAttn)
			}
		})
	}
}

// 7. The payment's balance refuses the refund: no row, no gateway call,
// no save; the await updates (waiting from the start, as the API's
// update-with-start) return the refusal, its type and message for the
// caller; RefundStatus says "refused"; the run itself completes without
// an error (commit 37ca260: the refusal is the update's answer) and
// returns no refund.
func TestBalanceRefusalAnswersTheUpdatesAndCompletesTheRun(t *testing.T) {
	for _, tc := range []struct{ typ, msg string }{
		{activities.ErrTypeFailedPrecondition, "payment pay_x has 10.00 USD left to refund"},
		{activities.ErrTypeInvalidArgument, "the payment is in USD, not EUR: a refund is in the payment's currency"},
		{activities.ErrTypeNotFound, "payment not found"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			h := newHarness(t, input())
			h.createErr = func(int) error { return temporal.NewNonRetryableApplicationError(tc.msg, tc.typ, nil) }
			result := h.update(0, UpdateAwaitResult)
			recorded := h.update(0, UpdateAwaitRecorded)
			h.run()
			if !h.env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			if err := h.env.GetWorkflowError(); err != nil {
				t.Fatalf("workflow error %v, want the run to complete (the refusal is the update's answer)", err)
			}
			var rec store.RefundRecord
			if err := h.env.GetWorkflowResult(&rec); err != nil || !reflect.DeepEqual(rec, store.RefundRecord{}) {
				t.Fatalf("result %+v (err %v), want no refund", rec, err)
			}
			for name, u := range map[string]*updateResult{UpdateAwaitResult: result, UpdateAwaitRecorded: recorded} {
				if !u.done || u.rejected != nil || errType(u.err) != tc.typ || errMessage(u.err) != tc.msg {
					t.Errorf("%s: done %v rejected %v err %v, want %s %q", name, u.done, u.rejected, u.err, tc.typ, tc.msg)
				}
			}
			if n := len(h.allCreates()); n != 1 {
				t.Errorf("%d CreateRefund calls, want 1 (a refusal is final)", n)
			}
			if cs := h.allRefunds(); len(cs) != 0 {
				t.Errorf("gateway calls %+v", cs)
			}
			if s := h.allSaves(); len(s) != 0 {
				t.Errorf("saves %+v", s)
			}
			if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"refused"}) {
				t.Errorf("RefundStatus upserts %q", got)
			}
		})
	}
}

// 8. A refund pending at the gateway for PendingAttentionAfter without an
// event is marked for operators (at exactly that time, counted from its
// creation) and still waits; the event then settles it and clears the
// mark.
func TestLongPendingRefundAsksForAttentionAndKeepsWaiting(t *testing.T) {
	h := newHarness(t, input())
	h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		return answer(gateway.RefundPending), nil
	})
	pending := created()
	pending.GatewayReference, pending.Version, pending.UpdatedAt = gwRef, 2, t0
	marked := after(pending, 3, PendingAttentionAfter, entrefund.StatusPending)
	marked.NeedsAttention, marked.AttentionReason = true, "the gateway has not confirmed the refund for 168h0m0s"
	h.at(PendingAttentionAfter-time.Second, func() {
		if got := h.query(); !reflect.DeepEqual(got, pending) {
			t.Errorf("a second before %v:\n got %+v\nwant %+v", PendingAttentionAfter, got, pending)
		}
	})
	h.at(PendingAttentionAfter+time.Hour, func() {
		if got := h.query(); !reflect.DeepEqual(got, marked) {
			t.Errorf("after %v:\n got %+v\nwant %+v", PendingAttentionAfter, got, marked)
		}
		if h.env.IsWorkflowCompleted() {
			t.Errorf("the workflow ended while the refund is pending")
		}
	})
	settle := PendingAttentionAfter + 48*time.Hour
	h.signal(settle, GatewayEvent{EventID: "evt_1", Type: "refund.updated", Reference: gwRef, Status: gateway.RefundSucceeded})
	h.run()
	rec := h.result(2)
	done := after(marked, 4, settle, entrefund.StatusSucceeded)
	done.NeedsAttention, done.AttentionReason = false, ""
	checkSaves(t, h, []saveCall{
		{Rec: pending, At: t0, Journal: store.RefundJournal(pending, t0)},
		{Rec: marked, At: t0.Add(PendingAttentionAfter)},
		{Rec: done, At: t0.Add(settle)},
	})
	if !reflect.DeepEqual(rec, done) {
		t.Fatalf("result %+v", rec)
	}
	want := []attrChange{{true, t0.Add(PendingAttentionAfter)}, {false, t0.Add(settle)}}
	if got := h.attentionChanges(); !sameChanges(got, want) {
		t.Fatalf("NeedsAttention upserts %+v, want %+v", got, want)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"succeeded"}) {
		t.Fatalf("RefundStatus upserts %q", got)
	}
}

// 9. The guards of gateway events: an event about another refund of the
// gateway is ignored; an event id is applied once (a redelivery does not
// even reach the forward-move check); a backward move (succeeded to
// pending) is ignored.
func TestEventGuards(t *testing.T) {
	h := newHarness(t, input())
	h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		return answer(gateway.RefundPending), nil
	})
	pending := created()
	pending.GatewayReference, pending.Version, pending.UpdatedAt = gwRef, 2, t0
	h.signal(time.Hour, GatewayEvent{EventID: "evt_other", Type: "refund.failed", Reference: "re_other", Status: gateway.RefundFailed, FailureCode: "x"})
	h.at(2*time.Hour, func() {
		if got := h.query(); !reflect.DeepEqual(got, pending) {
			t.Errorf("after an event about another refund:\n got %+v\nwant %+v", got, pending)
		}
		if l := withKV(h.log.find("ERROR", "another refund ignored"), "event", "evt_other"); len(l) != 1 {
			t.Errorf("logged %+v", h.log.find("ERROR", ""))
		}
	})
	h.signal(3*time.Hour,
		GatewayEvent{EventID: "evt_1", Type: "refund.updated", Reference: gwRef, Status: gateway.RefundSucceeded},
		GatewayEvent{EventID: "evt_1", Type: "refund.updated", Reference: gwRef, Status: gateway.RefundSucceeded},
		GatewayEvent{EventID: "evt_2", Type: "refund.updated", Reference: gwRef, Status: gateway.RefundPending},
	)
	h.run()
	rec := h.result(2)
	done := after(pending, 3, 3*time.Hour, entrefund.StatusSucceeded)
	checkSaves(t, h, []saveCall{
		{Rec: pending, At: t0, Journal: store.RefundJournal(pending, t0)},
		{Rec: done, At: t0.Add(3 * time.Hour)},
	})
	if !reflect.DeepEqual(rec, done) {
		t.Fatalf("result %+v", rec)
	}
	ignored := h.log.find("INFO", "not a forward move")
	if l := withKV(ignored, "event", "evt_2"); len(l) != 1 || l[0].kv("from") != entrefund.StatusSucceeded || l[0].kv("to") != gateway.RefundPending {
		t.Fatalf("backward move logged %+v", ignored)
	}
	if l := withKV(ignored, "event", "evt_1"); len(l) != 0 {
		t.Fatalf("the redelivered evt_1 was handled again: %+v", l)
	}
}

// An event whose save the store refuses is not marked as seen: its
// redelivery is applied.
func TestEventWhoseSaveFailedIsAppliedOnRedelivery(t *testing.T) {
	h := newHarness(t, input())
	h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		return answer(gateway.RefundPending), nil
	})
	h.refuseSave = func(n int, _ store.RefundRecord) error {
		if n == 2 {
			return temporal.NewNonRetryableApplicationError("refused", activities.ErrTypeStoreInvalid, nil)
		}
		return nil
	}
	ev := GatewayEvent{EventID: "evt_1", Type: "refund.updated", Reference: gwRef, Status: gateway.RefundSucceeded}
	h.signal(time.Hour, ev)
	h.signal(2*time.Hour, ev)
	h.run()
	rec := h.result(2)
	if st := h.statuses(); !reflect.DeepEqual(st, []entrefund.Status{entrefund.StatusPending, entrefund.StatusSucceeded}) {
		t.Fatalf("saved statuses %v", st)
	}
	s := h.allSaves()
	if len(s) != 3 || s[1].Err == nil || !s[2].At.Equal(t0.Add(2*time.Hour)) || rec.Status != entrefund.StatusSucceeded || rec.Version != 3 {
		t.Fatalf("saves %+v record %+v", s, rec)
	}
}

// 10. A run that declares a logic version this code does not know fails
// its workflow task (a panic) before doing anything.
func TestUnknownLogicPanicsTheTask(t *testing.T) {
	for _, logic := range []int{int(CurrentLogic) + 1, 7} {
		in := input()
		in.Logic = workflow.Version(logic)
		h := newHarness(t, in)
		h.run()
		var panicErr *temporal.PanicError
		err := h.env.GetWorkflowError()
		if !errors.As(err, &panicErr) || !strings.Contains(err.Error(), fmt.Sprintf("declares logic version %d", logic)) {
			t.Fatalf("logic %d: workflow error %v, want the task to panic", logic, err)
		}
		if len(h.allCreates()) != 0 || len(h.allSaves()) != 0 || len(h.allRefunds()) != 0 {
			t.Fatalf("logic %d: the run did something", logic)
		}
	}
	// The current logic (and 0, read as it) runs.
	in := input()
	in.Logic = CurrentLogic
	h := newHarness(t, in)
	h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		return answer(gateway.RefundSucceeded), nil
	})
	h.run()
	if rec := h.result(2); rec.Status != entrefund.StatusSucceeded {
		t.Fatalf("logic %d: record %+v", CurrentLogic, rec)
	}
}

// 11. While the regular activity retries (the fast path got no answer),
// await_result returns the refund as recorded: pending, version 1; once
// the gateway answers, the next await_result returns the answer.
func TestAwaitResultAnswersPendingWhileTheActivityRetries(t *testing.T) {
	h := newHarness(t, input())
	h.onRefund(func(n int, _ call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		if n <= 4 {
			return gateway.RefundResult{}, unavailable()
		}
		return answer(gateway.RefundSucceeded), nil
	})
	early := h.update(time.Second, UpdateAwaitResult)
	recorded := h.update(time.Second, UpdateAwaitRecorded)
	h.at(time.Second, func() {
		if got := h.query(); !reflect.DeepEqual(got, created()) {
			t.Errorf("while the activity retries:\n got %+v\nwant %+v", got, created())
		}
	})
	h.run()
	rec := h.result(2)
	// The fast path and the attempts at 0, 0.5 and 1.5 s fail; the
	// fourth, at 3.5 s, answers.
	answeredAt := 3500 * time.Millisecond
	if cs := h.allRefunds(); len(cs) != 5 || !cs[4].At.Equal(t0.Add(answeredAt)) {
		t.Fatalf("gateway calls %+v", cs)
	}
	for name, u := range map[string]*updateResult{"await_result": early, "await_recorded": recorded} {
		if !u.done || u.err != nil || u.rejected != nil || !reflect.DeepEqual(u.rec, created()) || !u.at.Equal(t0.Add(time.Second)) {
			t.Errorf("%s at %v: err %v rejected %v rec %+v, want the created refund at once", name, u.at.Sub(t0), u.err, u.rejected, u.rec)
		}
	}
	done := after(created(), 2, answeredAt, entrefund.StatusSucceeded)
	done.GatewayReference = gwRef
	checkSaves(t, h, []saveCall{{Rec: done, At: t0.Add(answeredAt), Journal: store.RefundJournal(done, t0.Add(answeredAt))}})
	if !reflect.DeepEqual(rec, done) {
		t.Fatalf("result %+v, want %+v", rec, done)
	}
}

// The API starts a refund with await_result (update-with-start): a caller
// waiting from the start gets the gateway's first answer as recorded (the
// saved record: its status, the gateway's reference, version 2), not the
// created refund of before the answer.
//
// Fails as of 37ca260: refund() sets r.answered before apply/commit has
// saved the answer, so the waiting handler wakes while SaveRefund runs and
// returns r.rec, still version 1 (testdata/v1/partial_succeeded.json
// recorded that very payload). Moving answered after the save changes the
// order of the update's completion and the SaveRefund marker: it needs a
// new logic version, or that history no longer replays.
func TestAwaitResultFromTheStartReturnsTheRecordedAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func() (gateway.RefundResult, error)
		want   func(store.RefundRecord) store.RefundRecord
	}{
		{"succeeded", func() (gateway.RefundResult, error) { return answer(gateway.RefundSucceeded), nil },
			func(r store.RefundRecord) store.RefundRecord {
				r.Status, r.GatewayReference = entrefund.StatusSucceeded, gwRef
				return r
			}},
		{"pending", func() (gateway.RefundResult, error) { return answer(gateway.RefundPending), nil },
			func(r store.RefundRecord) store.RefundRecord {
				r.GatewayReference = gwRef
				return r
			}},
		{"refused by the gateway", func() (gateway.RefundResult, error) {
			return gateway.RefundResult{}, invalidGatewayError("charge_already_refunded")
		}, func(r store.RefundRecord) store.RefundRecord {
			r.Status, r.FailureReason = entrefund.StatusFailed, "charge_already_refunded"
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input())
			h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) { return tc.answer() })
			result := h.update(0, UpdateAwaitResult)
			recorded := h.update(0, UpdateAwaitRecorded)
			if tc.name == "pending" {
				h.signal(time.Hour, GatewayEvent{EventID: "evt_1", Reference: gwRef, Status: gateway.RefundSucceeded})
			}
			h.run()
			h.result(2)
			want := tc.want(after(created(), 2, 0, entrefund.StatusPending))
			if s := h.allSaves(); len(s) == 0 || !reflect.DeepEqual(s[0].Rec, want) {
				t.Fatalf("first save %+v, want %+v", s, want)
			}
			if !recorded.done || recorded.err != nil || !reflect.DeepEqual(recorded.rec, created()) {
				t.Errorf("await_recorded: err %v rec %+v, want the created refund", recorded.err, recorded.rec)
			}
			if !result.done || result.err != nil || result.rejected != nil || !result.at.Equal(t0) || !reflect.DeepEqual(result.rec, want) {
				t.Fatalf("await_result at %v: err %v rejected %v\n got %+v\nwant %+v (the saved answer)",
					result.at.Sub(t0), result.err, result.rejected, result.rec, want)
			}
		})
	}
}

// A refund the gateway never answered for, then confirmed by an event
// that names no reference (onEvent takes events without one), is
// succeeded with its journal posted but no GatewayReference. When it fails
// later, the Resume run must still reverse that journal: every succeeded
// refund had its journal posted.
//
// Fails as of 37ca260: load derives accepted from the reference
// (GatewayReference != "" && Holds), so the reversal is skipped. Latent:
// the Stripe webhook routes events by a stored reference, so it does not
// send such an event today.
func TestResumeRunReversesASucceededRefundWithoutAReference(t *testing.T) {
	// The first run: no answer in the retry window, then the event.
	h1 := newHarness(t, input())
	h1.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		return gateway.RefundResult{}, unavailable()
	})
	h1.signal(48*time.Hour, GatewayEvent{EventID: "evt_ok", Type: "refund.updated", Status: gateway.RefundSucceeded})
	h1.run()
	first := h1.result(2)
	if first.Status != entrefund.StatusSucceeded || first.GatewayReference != "" || first.Version != 3 {
		t.Fatalf("first run ended with %+v", first)
	}
	if js := h1.journals(); len(js) != 1 || !reflect.DeepEqual(js[0].Lines, refundLines) {
		t.Fatalf("first run's journals %+v, want the refund's", js)
	}

	// The late failure, in a Resume run.
	in := input()
	in.Resume = true
	h2 := newHarness(t, in)
	h2.env.SetStartTime(t0.Add(10 * 24 * time.Hour))
	h2.loaded = &first
	h2.signal(0, GatewayEvent{EventID: "evt_fail", Type: "refund.failed", Reference: gwRef, Status: gateway.RefundFailed, FailureCode: "expired_or_canceled_card"})
	h2.run()
	end := h2.result(4)
	if end.Status != entrefund.StatusFailed || end.FailureReason != "expired_or_canceled_card" {
		t.Fatalf("Resume run ended with %+v", end)
	}
	if js := h2.journals(); len(js) != 1 || js[0].ID != refundID+"/refund_failed" || !reflect.DeepEqual(js[0].Lines, reversalLines) {
		t.Fatalf("the late failure posted %+v, want the reversal of the refund's journal", js)
	}
}

// A Resume run of a refund still pending knows whether its journal was
// posted from the gateway's reference: with one, the gateway took the
// refund (journal posted) and a failure reverses it; without one, the
// gateway never answered, so a failure posts nothing and a success posts
// the refund's journal.
func TestResumeRunOfAPendingRefundKnowsItsJournal(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ref     string
		event   gateway.RefundStatus
		want    entrefund.Status
		journal func(store.RefundRecord) *store.Journal
	}{
		{"taken, then failed", gwRef, gateway.RefundFailed, entrefund.StatusFailed,
			func(r store.RefundRecord) *store.Journal { return store.RefundReversalJournal(r, t0) }},
		{"never answered, then failed", "", gateway.RefundFailed, entrefund.StatusFailed,
			func(store.RefundRecord) *store.Journal { return nil }},
		{"never answered, then succeeded", "", gateway.RefundSucceeded, entrefund.StatusSucceeded,
			func(r store.RefundRecord) *store.Journal { return store.RefundJournal(r, t0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			in.Resume = true
			h := newHarness(t, in)
			stored := created()
			stored.Status, stored.GatewayReference, stored.Version = entrefund.StatusPending, tc.ref, 2
			h.loaded = &stored
			h.signal(0, GatewayEvent{EventID: "evt_p", Type: "refund.updated", Reference: gwRef, Status: tc.event, FailureCode: "declined"})
			h.run()
			h.result(3)
			saves := h.allSaves()
			if len(saves) != 1 || saves[0].Rec.Status != tc.want {
				t.Fatalf("saves %+v, want one %s", saves, tc.want)
			}
			if want := tc.journal(saves[0].Rec); !reflect.DeepEqual(saves[0].Journal, want) {
				t.Fatalf("journal %+v, want %+v", saves[0].Journal, want)
			}
		})
	}
}
