package store_test

// Tests of the events outbox (events.go): which saves of payments, refunds
// and disputes record which events, with what; that a save repeated, stale
// or rolled back records none; and the readers of the outbox (ListEvents,
// EventByID, UndispatchedEvents, MarkDispatched).

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/event"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/events"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	"github.com/payments-platform/payments/internal/timeline"
)

// wantEvent is one event a test expects of an object: its type, its
// sequence (the 1-based position of its step in the object's timeline),
// and the object's status and version in its data (the row the save that
// recorded it stored).
type wantEvent struct {
	typ     string
	seq     int64
	status  string
	version int64
}

func (w wantEvent) String() string {
	return fmt.Sprintf("%s#%d(%s v%d)", w.typ, w.seq, w.status, w.version)
}

// objectEvents returns the stored events of one object, by sequence.
func objectEvents(t *testing.T, s *store.Store, objectID string) []*ent.Event {
	t.Helper()
	es, err := s.Client.Event.Query().Where(event.ObjectID(objectID)).
		Order(ent.Asc(event.FieldSequence)).All(context.Background())
	if err != nil {
		t.Fatalf("events of %s: %v", objectID, err)
	}
	return es
}

func countEvents(t *testing.T, s *store.Store) int {
	t.Helper()
	n, err := s.Client.Event.Query().Count(context.Background())
	if err != nil {
		t.Fatalf("count events: %v", err)
	}
	return n
}

// eventState is the status, version and amount of the object in an
// event's data, read back as the API reads it (into the object's entity).
func eventState(t *testing.T, e *ent.Event) (status string, version, amount int64) {
	t.Helper()
	switch e.ObjectType {
	case event.ObjectTypePayment:
		var p ent.Payment
		if err := json.Unmarshal(e.Data, &p); err != nil {
			t.Fatalf("event %s: data is not a payment: %v\n%s", e.ID, err, e.Data)
		}
		if p.ID != e.ObjectID {
			t.Fatalf("event %s: data is payment %q, want %s", e.ID, p.ID, e.ObjectID)
		}
		return string(p.Status), p.Version, p.Amount
	case event.ObjectTypeRefund:
		var r ent.Refund
		if err := json.Unmarshal(e.Data, &r); err != nil {
			t.Fatalf("event %s: data is not a refund: %v\n%s", e.ID, err, e.Data)
		}
		if r.ID != e.ObjectID {
			t.Fatalf("event %s: data is refund %q, want %s", e.ID, r.ID, e.ObjectID)
		}
		return string(r.Status), r.Version, r.Amount
	case event.ObjectTypeDispute:
		var d ent.Dispute
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatalf("event %s: data is not a dispute: %v\n%s", e.ID, err, e.Data)
		}
		if d.ID != e.ObjectID {
			t.Fatalf("event %s: data is dispute %q, want %s", e.ID, d.ID, e.ObjectID)
		}
		return string(d.Status), d.Version, d.Amount
	}
	t.Fatalf("event %s: object type %q", e.ID, e.ObjectType)
	return "", 0, 0
}

// object is what the events of one object share.
type object struct {
	typ                    event.ObjectType
	id, merchant, customer string
	amount                 int64
	// steps is the object's stored timeline.
	steps []timeline.Entry
}

func paymentObject(p *ent.Payment) object {
	return object{event.ObjectTypePayment, p.ID, p.MerchantID, p.CustomerID, p.Amount, p.Timeline}
}

func refundObject(r *ent.Refund) object {
	return object{event.ObjectTypeRefund, r.ID, r.MerchantID, r.CustomerID, r.Amount, r.Timeline}
}

func disputeObject(d *ent.Dispute) object {
	return object{event.ObjectTypeDispute, d.ID, d.MerchantID, d.CustomerID, d.Amount, d.Timeline}
}

// wantEvents checks the stored events of o: exactly want, in order, and
// exactly one per step of o's timeline whose kind is an event type, each
// with the step's time, the object's parties and its deterministic id.
func wantEvents(t *testing.T, s *store.Store, what string, o object, want []wantEvent) {
	t.Helper()
	got := objectEvents(t, s, o.id)
	var gotDesc []string
	for _, e := range got {
		st, v, _ := eventState(t, e)
		gotDesc = append(gotDesc, wantEvent{e.Type, e.Sequence, st, v}.String())
	}
	var wantDesc []string
	for _, w := range want {
		wantDesc = append(wantDesc, w.String())
	}
	if !slices.Equal(gotDesc, wantDesc) {
		t.Fatalf("%s: events of %s = %v, want %v", what, o.id, gotDesc, wantDesc)
	}

	// The same, from the timeline: one event per step of an event type.
	var fromTimeline []string
	for i, step := range o.steps {
		if events.IsType(step.Kind) {
			fromTimeline = append(fromTimeline, fmt.Sprintf("%s#%d", step.Kind, i+1))
		}
	}
	var gotSteps []string
	for _, e := range got {
		gotSteps = append(gotSteps, fmt.Sprintf("%s#%d", e.Type, e.Sequence))
	}
	if !slices.Equal(gotSteps, fromTimeline) {
		t.Fatalf("%s: events of %s = %v, but its timeline's event steps are %v", what, o.id, gotSteps, fromTimeline)
	}

	var prev int64
	for _, e := range got {
		step := o.steps[e.Sequence-1]
		at := step.At.UTC().Truncate(time.Microsecond)
		_, _, amount := eventState(t, e)
		switch {
		case e.Sequence <= prev:
			t.Fatalf("%s: event %s has sequence %d after %d", what, e.ID, e.Sequence, prev)
		case e.ObjectType != o.typ || e.ObjectID != o.id:
			t.Fatalf("%s: event %s is about %s %s, want %s %s", what, e.ID, e.ObjectType, e.ObjectID, o.typ, o.id)
		case e.MerchantID != o.merchant || e.CustomerID != o.customer:
			t.Fatalf("%s: event %s has merchant %q customer %q, want %q %q", what, e.ID, e.MerchantID, e.CustomerID, o.merchant, o.customer)
		case !e.CreatedAt.Equal(at):
			t.Fatalf("%s: event %s (%s) created_at = %v, want its step's time %v", what, e.ID, e.Type, e.CreatedAt, at)
		case e.ID != store.EventID(o.id, e.Sequence, step.At):
			t.Fatalf("%s: event id %s, want EventID(%s, %d, %v) = %s", what, e.ID, o.id, e.Sequence, step.At,
				store.EventID(o.id, e.Sequence, step.At))
		case e.DispatchedAt != nil:
			t.Fatalf("%s: new event %s is dispatched already (%v)", what, e.ID, *e.DispatchedAt)
		case amount != o.amount:
			t.Fatalf("%s: event %s data amount %d, want %d", what, e.ID, amount, o.amount)
		}
		prev = e.Sequence
	}
}

// paySave is one save of a payment's workflow: edit turns the previous
// record into this save's (the version and the time move on by
// themselves); adds are the events it records.
type paySave struct {
	name    string
	edit    func(r *store.PaymentRecord)
	journal bool
	adds    []string
}

func captured(r *store.PaymentRecord) {
	r.Status, r.AmountReceived, r.AmountCapturable = payment.StatusSucceeded, r.Amount, 0
}

func submitted(r *store.PaymentRecord) { r.GatewayReference = "pi_" + r.ID }

func TestEventsOfAPaymentsLifecycle(t *testing.T) {
	cases := []struct {
		name   string
		manual bool
		saves  []paySave
	}{
		{name: "automatic: processing, submitted, succeeded", saves: []paySave{
			{name: "processing", edit: func(*store.PaymentRecord) {}},
			{name: "submitted", edit: submitted},
			{name: "succeeded", edit: captured, journal: true, adds: []string{"payment.succeeded#3"}},
		}},
		{name: "succeeded in its first save", saves: []paySave{
			{name: "succeeded", edit: func(r *store.PaymentRecord) { submitted(r); captured(r) }, journal: true,
				adds: []string{"payment.succeeded#3"}},
		}},
		{name: "manual capture: requires_capture, then captured", manual: true, saves: []paySave{
			{name: "processing", edit: func(*store.PaymentRecord) {}},
			{name: "requires_capture", edit: func(r *store.PaymentRecord) {
				submitted(r)
				r.Status, r.AmountCapturable = payment.StatusRequiresCapture, r.Amount
			}},
			{name: "captured", edit: captured, journal: true, adds: []string{"payment.captured#4"}},
		}},
		{name: "3-D Secure: requires_action, then succeeded", saves: []paySave{
			{name: "processing", edit: func(*store.PaymentRecord) {}},
			{name: "requires_action", edit: func(r *store.PaymentRecord) {
				submitted(r)
				r.Status, r.NextActionType, r.NextActionURL = payment.StatusRequiresAction, "redirect_to_url", "https://acs.example/3ds"
			}, adds: []string{"payment.requires_action#3"}},
			{name: "succeeded", edit: func(r *store.PaymentRecord) {
				captured(r)
				r.NextActionType, r.NextActionURL = "", ""
			}, journal: true, adds: []string{"payment.succeeded#4"}},
		}},
		{name: "declined", saves: []paySave{
			{name: "processing", edit: func(*store.PaymentRecord) {}},
			{name: "failed", edit: func(r *store.PaymentRecord) {
				r.Status, r.FailureCode, r.FailureMessage = payment.StatusFailed, "card_declined", "The card was declined."
			}, adds: []string{"payment.failed#2"}},
		}},
		{name: "authorized, then canceled", manual: true, saves: []paySave{
			{name: "requires_capture", edit: func(r *store.PaymentRecord) {
				submitted(r)
				r.Status, r.AmountCapturable = payment.StatusRequiresCapture, r.Amount
			}},
			{name: "canceled", edit: func(r *store.PaymentRecord) {
				r.Status, r.AmountCapturable, r.FailureMessage = payment.StatusCanceled, 0, "canceled by the merchant"
			}, adds: []string{"payment.canceled#4"}},
		}},
		{name: "attention raised, then succeeded and cleared", saves: []paySave{
			{name: "processing", edit: func(*store.PaymentRecord) {}},
			{name: "needs attention", edit: func(r *store.PaymentRecord) {
				r.NeedsAttention, r.AttentionReason = true, "the gateway did not answer"
			}},
			{name: "succeeded, cleared", edit: func(r *store.PaymentRecord) {
				submitted(r)
				captured(r)
				r.NeedsAttention, r.AttentionReason = false, ""
			}, journal: true, adds: []string{"payment.succeeded#4"}},
		}},
	}
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rec := newPayment(ids.New(ids.Account), ids.New(ids.Account), t0)
				if tc.manual {
					rec.CaptureMethod = payment.CaptureMethodManual
				}
				var want []wantEvent
				for i, sv := range tc.saves {
					if i > 0 {
						rec.Version++
						rec.UpdatedAt = rec.UpdatedAt.Add(time.Minute)
					}
					sv.edit(&rec)
					var j *store.Journal
					if sv.journal {
						j = &store.Journal{ID: rec.ID + "/capture", Currency: rec.Currency, At: rec.UpdatedAt,
							Lines: captureLines(rec.MerchantID, rec.Amount)}
					}
					saved := mustSave(t, s, rec, j)
					for _, a := range sv.adds {
						typ, seq, _ := strings.Cut(a, "#")
						var n int64
						fmt.Sscan(seq, &n)
						want = append(want, wantEvent{typ, n, string(rec.Status), rec.Version})
					}
					what := fmt.Sprintf("save %d (%s)", i+1, sv.name)
					wantEvents(t, s, what, paymentObject(saved), want)

					// The same save again (a retried local activity): no
					// error, the same row, no event more.
					again, err := s.SavePayment(ctx, rec, j)
					if err != nil {
						t.Fatalf("%s repeated: %v", what, err)
					}
					if again.Version != rec.Version || again.Status != rec.Status {
						t.Fatalf("%s repeated: got v%d %s, want v%d %s", what, again.Version, again.Status, rec.Version, rec.Status)
					}
					wantEvents(t, s, what+" repeated", paymentObject(again), want)

					// A stale save (a late attempt of an older version) that
					// would fail the payment: ignored, no event.
					if rec.Version > 1 {
						stale := rec
						stale.Version--
						stale.Status, stale.FailureCode = payment.StatusFailed, "late"
						if rec.Status == payment.StatusFailed {
							stale.Status = payment.StatusCanceled
						}
						old, err := s.SavePayment(ctx, stale, nil)
						if err != nil {
							t.Fatalf("%s, stale v%d: %v", what, stale.Version, err)
						}
						if old.Version != rec.Version || old.Status != rec.Status {
							t.Fatalf("%s, stale v%d: stored v%d %s, want v%d %s", what, stale.Version, old.Version, old.Status, rec.Version, rec.Status)
						}
						wantEvents(t, s, what+", then a stale save", paymentObject(old), want)
					}
				}
			})
		}
	})
}

func TestEventsOfRefunds(t *testing.T) {
	type refundSave struct {
		status refund.Status
		edit   func(r *store.RefundRecord)
		adds   []string
	}
	gwRef := func(r *store.RefundRecord) { r.GatewayReference = "re_gw_" + r.ID }
	cases := []struct {
		name  string
		saves []refundSave
	}{
		{"created only", nil},
		{"succeeded", []refundSave{
			{refund.StatusSucceeded, gwRef, []string{"refund.succeeded#3"}},
		}},
		{"accepted, then succeeded", []refundSave{
			{refund.StatusPending, gwRef, nil},
			{refund.StatusSucceeded, nil, []string{"refund.succeeded#3"}},
		}},
		{"failed at once", []refundSave{
			{refund.StatusFailed, func(r *store.RefundRecord) { r.FailureReason = "insufficient_funds" }, []string{"refund.failed#2"}},
		}},
		{"accepted, then failed", []refundSave{
			{refund.StatusPending, gwRef, nil},
			{refund.StatusFailed, func(r *store.RefundRecord) { r.FailureReason = "expired_or_canceled_card" }, []string{"refund.failed#3"}},
		}},
		{"needs attention, then succeeded", []refundSave{
			{refund.StatusPending, func(r *store.RefundRecord) { r.NeedsAttention, r.AttentionReason = true, "no answer" }, nil},
			{refund.StatusSucceeded, func(r *store.RefundRecord) {
				gwRef(r)
				r.NeedsAttention, r.AttentionReason = false, ""
			}, []string{"refund.succeeded#4"}},
		}},
		// refund.canceled is a step, not an event type.
		{"canceled", []refundSave{{refund.StatusCanceled, nil, nil}}},
	}
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
				created, _ := mustCreateRefund(t, s, newRefund(p, 400, t0.Add(time.Minute)))
				want := []wantEvent{{"refund.created", 1, "pending", 1}}
				wantEvents(t, s, "CreateRefund", refundObject(created), want)
				if created.CustomerID != p.CustomerID || created.MerchantID != p.MerchantID {
					t.Fatalf("refund parties %s/%s, want the payment's %s/%s", created.MerchantID, created.CustomerID, p.MerchantID, p.CustomerID)
				}

				rec := store.RefundRecordOf(created)
				for i, sv := range tc.saves {
					rec = next(rec, sv.status, sv.edit)
					saved := mustSaveRefund(t, s, rec, nil)
					for _, a := range sv.adds {
						typ, seq, _ := strings.Cut(a, "#")
						var n int64
						fmt.Sscan(seq, &n)
						want = append(want, wantEvent{typ, n, string(rec.Status), rec.Version})
					}
					what := fmt.Sprintf("save %d (%s)", i+1, sv.status)
					wantEvents(t, s, what, refundObject(saved), want)

					// Repeated, and stale: nothing more.
					if _, err := s.SaveRefund(ctx, rec, nil); err != nil {
						t.Fatalf("%s repeated: %v", what, err)
					}
					stale := rec
					stale.Version--
					stale.Status = refund.StatusFailed
					if rec.Status == refund.StatusFailed {
						stale.Status = refund.StatusSucceeded
					}
					if _, err := s.SaveRefund(ctx, stale, nil); err != nil {
						t.Fatalf("%s, stale v%d: %v", what, stale.Version, err)
					}
					r, err := s.RefundByID(ctx, rec.ID)
					if err != nil {
						t.Fatal(err)
					}
					wantEvents(t, s, what+", repeated and stale", refundObject(r), want)
				}
			})
		}
	})
}

func TestEventsOfDisputes(t *testing.T) {
	// A save of the dispute's workflow: its status and the steps it adds.
	type disputeSave struct {
		status dispute.Status
		kinds  []string
		edit   func(r *store.DisputeRecord)
		adds   []string
	}
	evidence := func(r *store.DisputeRecord) {
		r.Evidence = disputes.Evidence{Explanation: "delivered, signed for"}
		r.EvidenceSubmitted = true
	}
	cases := []struct {
		name  string
		by    dispute.OpenedBy
		saves []disputeSave
	}{
		{"opened only", dispute.OpenedByCustomer, nil},
		{"evidence staged, reminded, submitted, won", dispute.OpenedByCustomer, []disputeSave{
			{dispute.StatusNeedsResponse, []string{disputes.KindRespondentNotified, disputes.KindEvidenceStaged}, nil, nil},
			{dispute.StatusNeedsResponse, []string{disputes.KindResponseDueSoon}, nil, []string{"dispute.response_due_soon#4"}},
			{dispute.StatusUnderReview, []string{disputes.KindEvidenceSubmitted, disputes.KindUnderReview}, evidence,
				[]string{"dispute.evidence_submitted#5"}},
			{dispute.StatusWon, []string{disputes.KindWon}, nil, []string{"dispute.won#7"}},
		}},
		{"lost after the deadline", dispute.OpenedByCustomer, []disputeSave{
			{dispute.StatusLost, []string{disputes.KindDeadlineMissed, disputes.KindLost}, nil, []string{"dispute.lost#3"}},
		}},
		{"accepted", dispute.OpenedByCustomer, []disputeSave{
			{dispute.StatusAccepted, []string{disputes.KindAccepted}, nil, []string{"dispute.accepted#2"}},
		}},
		{"withdrawn by the merchant that opened it", dispute.OpenedByMerchant, []disputeSave{
			{dispute.StatusWithdrawn, []string{disputes.KindWithdrawn}, nil, []string{"dispute.withdrawn#2"}},
		}},
		{"network: opened with funds withdrawn, gateway updates", dispute.OpenedByNetwork, []disputeSave{
			{dispute.StatusNeedsResponse, []string{disputes.KindGatewayUpdated}, nil, nil},
			{dispute.StatusLost, []string{disputes.KindLost}, nil, []string{"dispute.lost#4"}},
		}},
		{"two event steps in one save", dispute.OpenedByCustomer, []disputeSave{
			{dispute.StatusUnderReview, []string{disputes.KindEvidenceSubmitted, disputes.KindResponseDueSoon}, evidence,
				[]string{"dispute.evidence_submitted#2", "dispute.response_due_soon#3"}},
		}},
	}
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
				created := mustCreateDispute(t, s, newDispute(p, tc.by, 600, t0.Add(time.Hour)), openerOf(p, tc.by))
				want := []wantEvent{{"dispute.opened", 1, "needs_response", 1}}
				wantEvents(t, s, "CreateDispute", disputeObject(created), want)

				rec := store.DisputeRecordOf(created)
				for i, sv := range tc.saves {
					rec.Version++
					rec.Status = sv.status
					rec.UpdatedAt = rec.UpdatedAt.Add(time.Minute)
					rec.Timeline = slices.Clone(rec.Timeline)
					for _, k := range sv.kinds {
						rec.Timeline = append(rec.Timeline, disputes.TimelineEntry{At: rec.UpdatedAt, Kind: k, Actor: disputes.ActorSystem})
					}
					if sv.edit != nil {
						sv.edit(&rec)
					}
					saved := mustSaveDispute(t, s, rec, nil)
					for _, a := range sv.adds {
						typ, seq, _ := strings.Cut(a, "#")
						var n int64
						fmt.Sscan(seq, &n)
						want = append(want, wantEvent{typ, n, string(rec.Status), rec.Version})
					}
					what := fmt.Sprintf("save %d (%s %v)", i+1, sv.status, sv.kinds)
					wantEvents(t, s, what, disputeObject(saved), want)

					// Repeated: nothing more. Stale, with a step more: nothing.
					if _, err := s.SaveDispute(ctx, rec, nil); err != nil {
						t.Fatalf("%s repeated: %v", what, err)
					}
					stale := rec
					stale.Version--
					stale.Timeline = append(slices.Clone(rec.Timeline), disputes.TimelineEntry{
						At: rec.UpdatedAt, Kind: disputes.KindWon, Actor: disputes.ActorSystem})
					if _, err := s.SaveDispute(ctx, stale, nil); err != nil {
						t.Fatalf("%s, stale v%d: %v", what, stale.Version, err)
					}
					d, err := s.DisputeByID(ctx, rec.ID)
					if err != nil {
						t.Fatal(err)
					}
					wantEvents(t, s, what+", repeated and stale", disputeObject(d), want)
				}
			})
		}
	})
}

// A save that fails after its events were inserted in its transaction
// leaves none: the outbox commits with the change or not at all.
func TestEventsOfASaveThatRollsBackAreNotRecorded(t *testing.T) {
	type setup struct {
		// objectID is the object whose events must stay as they were.
		objectID string
		// save is the refused call.
		save func() error
	}
	eurJournal := func(id string, amount int64, merchant string, at time.Time) *store.Journal {
		return &store.Journal{ID: id, Currency: "EUR", At: at, Lines: captureLines(merchant, amount)}
	}
	cases := []struct {
		name string
		kind errs.Kind
		// arrange saves what comes before and returns the refused save.
		arrange func(t *testing.T, s *store.Store) setup
	}{
		{"a payment inserted as succeeded with a journal in another currency", errs.KindInvalidArgument,
			func(t *testing.T, s *store.Store) setup {
				rec := newPayment(ids.New(ids.Account), ids.New(ids.Account), t0)
				submitted(&rec)
				captured(&rec)
				return setup{rec.ID, func() error {
					_, err := s.SavePayment(context.Background(), rec, eurJournal(rec.ID+"/capture", rec.Amount, rec.MerchantID, t0))
					return err
				}}
			}},
		{"a payment's succeeded save with a journal in another currency", errs.KindInvalidArgument,
			func(t *testing.T, s *store.Store) setup {
				rec := newPayment(ids.New(ids.Account), ids.New(ids.Account), t0)
				mustSave(t, s, rec, nil)
				rec.Version, rec.UpdatedAt = 2, t0.Add(time.Minute)
				submitted(&rec)
				captured(&rec)
				return setup{rec.ID, func() error {
					_, err := s.SavePayment(context.Background(), rec, eurJournal(rec.ID+"/capture", rec.Amount, rec.MerchantID, rec.UpdatedAt))
					return err
				}}
			}},
		{"a payment's failed save whose journal was posted before with other lines", errs.KindAlreadyExists,
			func(t *testing.T, s *store.Store) setup {
				rec := newPayment(ids.New(ids.Account), ids.New(ids.Account), t0)
				mustSave(t, s, rec, nil)
				if err := s.PostJournal(context.Background(), store.Journal{ID: rec.ID + "/fee", PaymentID: rec.ID,
					Currency: "USD", At: t0, Lines: captureLines(rec.MerchantID, 1)}); err != nil {
					t.Fatal(err)
				}
				rec.Version, rec.UpdatedAt = 2, t0.Add(time.Minute)
				rec.Status, rec.FailureCode = payment.StatusFailed, "card_declined"
				return setup{rec.ID, func() error {
					_, err := s.SavePayment(context.Background(), rec, &store.Journal{ID: rec.ID + "/fee", Currency: "USD",
						At: rec.UpdatedAt, Lines: captureLines(rec.MerchantID, 2)})
					return err
				}}
			}},
		{"a payment's save by another merchant", errs.KindInvalidArgument,
			func(t *testing.T, s *store.Store) setup {
				rec := newPayment(ids.New(ids.Account), ids.New(ids.Account), t0)
				mustSave(t, s, rec, nil)
				rec.Version, rec.UpdatedAt = 2, t0.Add(time.Minute)
				rec.Status, rec.MerchantID = payment.StatusFailed, ids.New(ids.Account)
				return setup{rec.ID, func() error {
					_, err := s.SavePayment(context.Background(), rec, nil)
					return err
				}}
			}},
		{"a refund's succeeded save with a journal in another currency", errs.KindInvalidArgument,
			func(t *testing.T, s *store.Store) setup {
				p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
				created, _ := mustCreateRefund(t, s, newRefund(p, 400, t0.Add(time.Minute)))
				rec := next(store.RefundRecordOf(created), refund.StatusSucceeded, func(r *store.RefundRecord) {
					r.GatewayReference = "re_gw_" + r.ID
				})
				j := store.RefundJournal(rec, rec.UpdatedAt)
				j.Currency = "EUR"
				return setup{rec.ID, func() error {
					_, err := s.SaveRefund(context.Background(), rec, j)
					return err
				}}
			}},
		{"a dispute's won save with a journal in another currency", errs.KindInvalidArgument,
			func(t *testing.T, s *store.Store) setup {
				p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
				d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 600, t0.Add(time.Hour)), "")
				rec := store.DisputeRecordOf(d)
				rec.Version, rec.Status, rec.Settlement = 2, dispute.StatusWon, dispute.SettlementReinstated
				rec.UpdatedAt = rec.UpdatedAt.Add(time.Minute)
				rec.Timeline = append(slices.Clone(rec.Timeline), disputes.TimelineEntry{At: rec.UpdatedAt, Kind: disputes.KindWon, Actor: disputes.ActorNetwork})
				j := store.DisputeFundsReinstatedJournal(rec, rec.UpdatedAt)
				j.Currency = "EUR"
				return setup{rec.ID, func() error {
					_, err := s.SaveDispute(context.Background(), rec, j)
					return err
				}}
			}},
	}
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				su := tc.arrange(t, s)
				before := objectEvents(t, s, su.objectID)
				total := countEvents(t, s)
				err := su.save()
				if err == nil {
					t.Fatalf("the save succeeded; want it refused (%v)", tc.kind)
				}
				if k := errs.KindOf(err); k != tc.kind {
					t.Fatalf("error %v is %v, want %v", err, k, tc.kind)
				}
				after := objectEvents(t, s, su.objectID)
				if len(after) != len(before) || countEvents(t, s) != total {
					var types []string
					for _, e := range after {
						types = append(types, fmt.Sprintf("%s#%d", e.Type, e.Sequence))
					}
					t.Fatalf("a refused save left events: %s has %v (%d before), %d events in all (%d before)",
						su.objectID, types, len(before), countEvents(t, s), total)
				}
			})
		}
	})
}

func TestEventIDIsDeterministic(t *testing.T) {
	obj := ids.NewAt(ids.Payment, t0)
	base := store.EventID(obj, 3, t0)
	cases := []struct {
		name     string
		id       string
		sameAsID bool
	}{
		{"the same inputs", store.EventID(obj, 3, t0), true},
		{"the same instant in another zone", store.EventID(obj, 3, t0.In(time.FixedZone("X", 3600))), true},
		{"another sequence", store.EventID(obj, 4, t0), false},
		{"another object", store.EventID(ids.NewAt(ids.Payment, t0), 3, t0), false},
		{"another time", store.EventID(obj, 3, t0.Add(time.Second)), false},
		{"a sequence whose digits could run into the id", store.EventID(obj+"1", 3, t0), false},
	}
	if !strings.HasPrefix(base, ids.Event) || !ids.Valid(ids.Event, base) {
		t.Fatalf("EventID = %q, want a valid %s id", base, ids.Event)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !ids.Valid(ids.Event, tc.id) {
				t.Fatalf("EventID = %q, not a valid %s id", tc.id, ids.Event)
			}
			if (tc.id == base) != tc.sameAsID {
				t.Fatalf("EventID = %s, base %s: equal = %v, want %v", tc.id, base, tc.id == base, tc.sameAsID)
			}
		})
	}
	// The time orders the ids, as every id of the platform.
	if later := store.EventID(obj, 1, t0.Add(time.Millisecond)); later <= store.EventID(obj, 9, t0) {
		t.Fatalf("a later event's id %s does not sort after an earlier one's", later)
	}
}

// seededEvent is an event the listing tests seeded, as they reckon it.
type seededEvent struct {
	name, id, typ, object, merchant string
	at                              time.Time
}

// seedEvents writes, through the store, eight events of two merchants:
//
//	name  merchant type               object  at
//	e1    mA       payment.succeeded  pA1     +1m
//	e2    mA       payment.failed     pA2     +2m
//	e3    mB       payment.succeeded  pB1     +2m (same instant as e2)
//	e4    mB       payment.failed     pB2     +3m
//	e5    mA       refund.created     rA1     +4m (of pA1)
//	e6    mA       payment.failed     pA3     +5m
//	e7    mB       payment.canceled   pB3     +5m
//	e8    mB       payment.failed     pB4     +5m
func seedEvents(t *testing.T, s *store.Store) (mA, mB string, seeded []seededEvent) {
	t.Helper()
	mA, mB = ids.New(ids.Account), ids.New(ids.Account)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	add := func(name, typ, object, merchant string, when time.Time) {
		t.Helper()
		es := objectEvents(t, s, object)
		if len(es) == 0 {
			t.Fatalf("%s: %s has no event", name, object)
		}
		e := es[len(es)-1]
		if e.Type != typ || !e.CreatedAt.Equal(when) {
			t.Fatalf("%s: last event of %s is %s at %v, want %s at %v", name, object, e.Type, e.CreatedAt, typ, when)
		}
		seeded = append(seeded, seededEvent{name, e.ID, typ, object, merchant, when})
	}
	fail := func(name, merchant string, created, failed time.Time, status payment.Status) {
		t.Helper()
		rec := newPayment(merchant, ids.New(ids.Account), created)
		mustSave(t, s, rec, nil)
		rec.Version, rec.UpdatedAt, rec.Status = 2, failed, status
		mustSave(t, s, rec, nil)
		add(name, "payment."+string(status), rec.ID, merchant, failed)
	}
	pA1 := succeededPayment(t, s, mA, ids.New(ids.Account), "USD", 1000, at(1))
	add("e1", "payment.succeeded", pA1.ID, mA, at(1))
	fail("e2", mA, at(0), at(2), payment.StatusFailed)
	pB1 := succeededPayment(t, s, mB, ids.New(ids.Account), "USD", 1000, at(2))
	add("e3", "payment.succeeded", pB1.ID, mB, at(2))
	fail("e4", mB, at(1), at(3), payment.StatusFailed)
	r, _ := mustCreateRefund(t, s, newRefund(pA1, 100, at(4)))
	add("e5", "refund.created", r.ID, mA, at(4))
	fail("e6", mA, at(4), at(5), payment.StatusFailed)
	fail("e7", mB, at(3), at(5), payment.StatusCanceled)
	fail("e8", mB, at(4), at(5), payment.StatusFailed)
	return mA, mB, seeded
}

// newestFirstNames orders seeded events as the listings do and names them.
func newestFirstNames(es []seededEvent) []string {
	es = slices.Clone(es)
	slices.SortFunc(es, func(a, b seededEvent) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
	var out []string
	for _, e := range es {
		out = append(out, e.name)
	}
	return out
}

func namesOf(t *testing.T, got []*ent.Event, seeded []seededEvent) []string {
	t.Helper()
	byID := map[string]string{}
	for _, e := range seeded {
		byID[e.id] = e.name
	}
	var out []string
	for _, e := range got {
		name, ok := byID[e.ID]
		if !ok {
			name = "unseeded " + e.ID
		}
		out = append(out, name)
	}
	return out
}

func TestListEvents(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mA, mB, seeded := seedEvents(t, s)
		at := func(m int) *time.Time { v := t0.Add(time.Duration(m) * time.Minute); return &v }
		plus := func(tm *time.Time, d time.Duration) *time.Time { v := tm.Add(d); return &v }
		where := func(keep func(e seededEvent) bool) []string {
			var es []seededEvent
			for _, e := range seeded {
				if keep(e) {
					es = append(es, e)
				}
			}
			return newestFirstNames(es)
		}
		byName := map[string]seededEvent{}
		for _, e := range seeded {
			byName[e.name] = e
		}
		cases := []struct {
			name string
			f    store.EventFilter
			want []string
		}{
			{"everything", store.EventFilter{}, where(func(seededEvent) bool { return true })},
			{"merchant A", store.EventFilter{MerchantID: mA}, []string{"e6", "e5", "e2", "e1"}},
			{"merchant B", store.EventFilter{MerchantID: mB}, where(func(e seededEvent) bool { return e.merchant == mB })},
			{"unknown merchant", store.EventFilter{MerchantID: ids.New(ids.Account)}, nil},
			{"type payment.failed", store.EventFilter{Type: "payment.failed"}, where(func(e seededEvent) bool { return e.typ == "payment.failed" })},
			{"type with no events", store.EventFilter{Type: "dispute.won"}, nil},
			{"object of e1", store.EventFilter{ObjectID: byName["e1"].object}, []string{"e1"}},
			{"object of the refund", store.EventFilter{ObjectID: byName["e5"].object}, []string{"e5"}},
			{"created [2m, 5m)", store.EventFilter{CreatedAfter: at(2), CreatedBefore: at(5)},
				where(func(e seededEvent) bool { return !e.at.Before(*at(2)) && e.at.Before(*at(5)) })},
			{"created after 5m, inclusive", store.EventFilter{CreatedAfter: at(5)}, where(func(e seededEvent) bool { return e.name >= "e6" })},
			{"created before 2m, exclusive", store.EventFilter{CreatedBefore: at(2)}, []string{"e1"}},
			{"created before 2m and a nanosecond", store.EventFilter{CreatedBefore: plus(at(2), time.Nanosecond)},
				where(func(e seededEvent) bool { return !e.at.After(*at(2)) })},
			{"created after 2m less a nanosecond", store.EventFilter{CreatedAfter: plus(at(2), -time.Nanosecond)},
				where(func(e seededEvent) bool { return !e.at.Before(*at(2)) })},
			{"created after = before", store.EventFilter{CreatedAfter: at(2), CreatedBefore: at(2)}, nil},
			{"merchant B, payment.failed", store.EventFilter{MerchantID: mB, Type: "payment.failed"}, where(func(e seededEvent) bool {
				return e.merchant == mB && e.typ == "payment.failed"
			})},
			{"merchant B, payment.failed, before 5m", store.EventFilter{MerchantID: mB, Type: "payment.failed", CreatedBefore: at(5)}, []string{"e4"}},
			{"merchant A, object of merchant B", store.EventFilter{MerchantID: mA, ObjectID: byName["e3"].object}, nil},
			{"merchant A, type, object, range", store.EventFilter{MerchantID: mA, Type: "payment.failed", ObjectID: byName["e2"].object,
				CreatedAfter: at(1), CreatedBefore: at(3)}, []string{"e2"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.ListEvents(ctx, tc.f, store.Page{Limit: 100})
				if err != nil {
					t.Fatalf("ListEvents: %v", err)
				}
				if names := namesOf(t, got, seeded); !slices.Equal(names, tc.want) {
					t.Fatalf("ListEvents = %v, want %v", names, tc.want)
				}
				// Paged, at each page size: the same rows, in the same order.
				for _, limit := range []int{1, 2, 3} {
					var paged []*ent.Event
					var after *store.Cursor
					for pages := 0; ; pages++ {
						if pages > len(seeded)+1 {
							t.Fatalf("page size %d: runaway paging", limit)
						}
						page, err := s.ListEvents(ctx, tc.f, store.Page{Limit: limit, After: after})
						if err != nil {
							t.Fatalf("ListEvents page %d (size %d): %v", pages+1, limit, err)
						}
						if len(page) > limit {
							t.Fatalf("page %d has %d rows, limit %d", pages+1, len(page), limit)
						}
						paged = append(paged, page...)
						if len(page) < limit {
							break
						}
						c := store.EventCursor(page[len(page)-1])
						after = &c
					}
					if names := namesOf(t, paged, seeded); !slices.Equal(names, tc.want) {
						t.Fatalf("paged by %d: %v, want %v", limit, names, tc.want)
					}
				}
			})
		}

		t.Run("refused", func(t *testing.T) {
			for _, c := range []struct {
				name  string
				f     store.EventFilter
				p     store.Page
				field string
			}{
				{"created_after later than created_before", store.EventFilter{CreatedAfter: at(3), CreatedBefore: at(2)}, store.Page{Limit: 10}, "created_after"},
				{"a nanosecond later", store.EventFilter{CreatedAfter: plus(at(2), time.Nanosecond), CreatedBefore: at(2)}, store.Page{Limit: 10}, "created_after"},
				{"page size 0", store.EventFilter{}, store.Page{}, "page_size"},
			} {
				_, err := s.ListEvents(ctx, c.f, c.p)
				wantInvalid(t, err, c.field)
			}
		})

		t.Run("EventByID", func(t *testing.T) {
			e2 := byName["e2"]
			got, err := s.EventByID(ctx, e2.id)
			if err != nil {
				t.Fatalf("EventByID(%s): %v", e2.id, err)
			}
			if got.ID != e2.id || got.Type != e2.typ || got.ObjectID != e2.object || got.MerchantID != e2.merchant {
				t.Fatalf("EventByID(%s) = %s %s %s %s", e2.id, got.ID, got.Type, got.ObjectID, got.MerchantID)
			}
			_, err = s.EventByID(ctx, store.EventID(e2.object, 99, e2.at))
			wantErr(t, err, errs.ErrNotFound, "")
		})
	})
}

func TestUndispatchedEventsAndMarkDispatched(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		_, _, seeded := seedEvents(t, s)
		// The relay's order: oldest first, ties by id.
		oldest := newestFirstNames(seeded)
		slices.Reverse(oldest)
		byName := map[string]seededEvent{}
		for _, e := range seeded {
			byName[e.name] = e
		}
		undispatched := func(limit int) []string {
			t.Helper()
			es, err := s.UndispatchedEvents(ctx, limit)
			if err != nil {
				t.Fatalf("UndispatchedEvents(%d): %v", limit, err)
			}
			return namesOf(t, es, seeded)
		}
		without := func(names []string, drop ...string) []string {
			return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(drop, n) })
		}
		dispatchedAt := func(name string) *time.Time {
			t.Helper()
			e, err := s.EventByID(ctx, byName[name].id)
			if err != nil {
				t.Fatal(err)
			}
			return e.DispatchedAt
		}

		if got := undispatched(100); !slices.Equal(got, oldest) {
			t.Fatalf("UndispatchedEvents = %v, want %v", got, oldest)
		}
		if got := undispatched(3); !slices.Equal(got, oldest[:3]) {
			t.Fatalf("UndispatchedEvents(3) = %v, want %v", got, oldest[:3])
		}

		first := t0.Add(time.Hour + 123*time.Microsecond)
		steps := []struct {
			name string
			mark string
			at   time.Time
			// want are the undispatched events after the step.
			want []string
		}{
			{"the oldest", oldest[0], first, without(oldest, oldest[0])},
			{"one of two at the same instant", "e3", first, without(oldest, oldest[0], "e3")},
			{"the oldest again, later: idempotent", oldest[0], first.Add(time.Hour), without(oldest, oldest[0], "e3")},
			{"an unknown event: nothing", store.EventID(ids.New(ids.Payment), 1, t0), first, without(oldest, oldest[0], "e3")},
			{"the newest", oldest[len(oldest)-1], first, without(oldest, oldest[0], "e3", oldest[len(oldest)-1])},
		}
		for _, st := range steps {
			id := st.mark
			if e, ok := byName[st.mark]; ok {
				id = e.id
			}
			if err := s.MarkDispatched(ctx, id, st.at); err != nil {
				t.Fatalf("%s: MarkDispatched(%s): %v", st.name, st.mark, err)
			}
			if got := undispatched(100); !slices.Equal(got, st.want) {
				t.Fatalf("%s: UndispatchedEvents = %v, want %v", st.name, got, st.want)
			}
		}
		// The first mark stays: the repeated one did not move it.
		wantTime(t, "dispatched_at of "+oldest[0], dispatchedAt(oldest[0]), first)
		wantTime(t, "dispatched_at of e3", dispatchedAt("e3"), first)
		wantTime(t, "dispatched_at of e2", dispatchedAt("e2"), time.Time{})
		if got := undispatched(1); !slices.Equal(got, without(oldest, oldest[0], "e3")[:1]) {
			t.Fatalf("UndispatchedEvents(1) = %v", got)
		}
	})
}
