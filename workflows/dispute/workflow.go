package dispute

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	entdispute "github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

// Nil receivers that name activity methods.
var (
	gw *activities.Gateway
	db *activities.Store
)

// versionFirst is the first logic of the dispute workflow.
const versionFirst workflow.Version = 1

// run is one dispute's state inside its workflow. rec is always what the
// database holds: changes are made to a copy and become rec only once saved.
type run struct {
	in      Input
	rec     store.DisputeRecord
	payRef  string // the payment's intent at the gateway
	stored  bool
	refused error // the payment refused the dispute: no row, the run ends
	busy    bool
	events  map[string]bool
	// timer is the running timer of the next timed step (at timerAt);
	// cancelTimer cancels it.
	timer       workflow.Future
	timerAt     time.Time
	cancelTimer workflow.CancelFunc
	// evidenceTry numbers the requests of a network dispute's evidence
	// sent since the last save, and lastEvidence is the last of them: a
	// request the gateway did not answer is sent again with its key, a
	// different one with a key of its own.
	evidenceTry  int
	lastEvidence *gateway.DisputeUpdateRequest
	// attributes as last upserted
	attrStatus entdispute.Status
	attrDue    time.Time
	attrAttn   bool
}

// Workflow runs one dispute from its opening to its outcome and the money
// the outcome moves.
func Workflow(ctx workflow.Context, in Input) (store.DisputeRecord, error) {
	if in.Logic < 0 || in.Logic > versionFirst {
		// As workflow.GetVersion does for a version it does not know: the
		// task fails and is tried again until a worker that knows it runs.
		panic(fmt.Sprintf("dispute workflow: the run declares logic version %d; this code knows %d", in.Logic, versionFirst))
	}
	r := &run{in: in, events: map[string]bool{}, attrStatus: entdispute.StatusNeedsResponse, attrDue: in.ResponseDueBy}
	if err := r.registerHandlers(ctx); err != nil {
		return r.rec, err
	}
	sigCh := workflow.GetSignalChannel(ctx, SignalGatewayEvent)
	if err := r.create(ctx); err != nil {
		return r.rec, err
	}
	if r.refused != nil {
		err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
		return r.rec, err
	}
	if err := r.notifyRespondent(ctx); err != nil {
		return r.rec, err
	}
	for store.IsOpen(r.rec.Status) {
		var ev GatewayEvent
		for sigCh.ReceiveAsync(&ev) {
			r.onEvent(ctx, ev)
		}
		if !store.IsOpen(r.rec.Status) {
			break
		}
		version := r.rec.Version
		wake := func() bool { return sigCh.Len() > 0 || (!r.busy && r.rec.Version != version) }
		at, step := r.nextStep(workflow.Now(ctx))
		if step == "" {
			r.stopTimer()
			if err := workflow.Await(ctx, wake); err != nil {
				return r.rec, err
			}
			continue
		}
		if wait := at.Sub(workflow.Now(ctx)); wait > 0 {
			// One timer per step's time, kept across wakes (an update,
			// an event) that leave the step where it was, and cancelled
			// when the step moves: no timer fires for nothing.
			if r.timer == nil || !r.timerAt.Equal(at) {
				r.stopTimer()
				tctx, cancel := workflow.WithCancel(ctx)
				r.timer, r.timerAt, r.cancelTimer = workflow.NewTimer(tctx, wait), at, cancel
			}
			timer := r.timer
			if err := workflow.Await(ctx, func() bool { return timer.IsReady() || wake() }); err != nil {
				return r.rec, err
			}
			if !timer.IsReady() {
				continue
			}
			r.timer, r.cancelTimer = nil, nil
		}
		if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
			return r.rec, err
		}
		if r.rec.Version != version {
			continue // an update moved the dispute meanwhile: look again
		}
		if err := r.onTimer(ctx, step, at); err != nil {
			return r.rec, err
		}
	}
	r.stopTimer()
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return r.rec, err
	}
	if err := r.settle(ctx); err != nil {
		return r.rec, err
	}
	// Late gateway events of a closed dispute change nothing; the run ends
	// once every update has answered.
	if err := workflow.Await(ctx, func() bool { return !r.busy && workflow.AllHandlersFinished(ctx) }); err != nil {
		return r.rec, err
	}
	return r.rec, nil
}

// Steps the run waits for on a timer.
const (
	stepReminder = "reminder"
	stepDeadline = "deadline"
)

// stopTimer cancels the running timer, if any.
func (r *run) stopTimer() {
	if r.cancelTimer != nil {
		r.cancelTimer()
	}
	r.timer, r.cancelTimer = nil, nil
}

// nextStep is the next timed step and when it is due, as of now: the next
// reminder not yet sent (none once the deadline has come: a reminder late
// for it is moot), then (for a dispute opened on the platform) the
// deadline; nothing once the respondent has submitted (under_review waits
// for a decision without a timer).
func (r *run) nextStep(now time.Time) (time.Time, string) {
	if r.rec.Status != entdispute.StatusNeedsResponse {
		return time.Time{}, ""
	}
	due := r.rec.ResponseDueBy
	leads := r.in.ReminderLeads
	if len(leads) == 0 {
		leads = ReminderLeads
	}
	for _, lead := range leads {
		at := due.Add(-lead)
		if !at.After(r.rec.CreatedAt) || !now.Before(due) || r.reminded(at) {
			continue
		}
		return at, stepReminder
	}
	if r.rec.OpenedBy == entdispute.OpenedByNetwork {
		// The gateway decides when its deadline passes, and says so.
		return time.Time{}, ""
	}
	return due, stepDeadline
}

// reminded reports whether a reminder was sent at or after at (a later
// reminder makes an earlier one moot).
func (r *run) reminded(at time.Time) bool {
	return slices.ContainsFunc(r.rec.Timeline, func(e disputes.TimelineEntry) bool {
		return e.Kind == disputes.KindResponseDueSoon && !e.At.Before(at)
	})
}

// onTimer runs a timed step.
func (r *run) onTimer(ctx workflow.Context, step string, at time.Time) error {
	r.busy = true
	defer func() { r.busy = false }()
	now := workflow.Now(ctx)
	next := r.copyRec()
	due := r.rec.ResponseDueBy
	switch step {
	case stepReminder:
		if !now.Before(due) {
			return nil // the deadline has come: no reminder of it
		}
		next.Timeline = append(next.Timeline, disputes.TimelineEntry{
			At: maxTime(now, at), Kind: disputes.KindResponseDueSoon, Actor: disputes.ActorSystem,
			Note: fmt.Sprintf("the %s is reminded: a response is due by %s (%s left)",
				r.rec.Respondent(), due.UTC().Format(time.RFC3339), due.Sub(now).Round(time.Minute)),
		})
		return r.commit(ctx, next, nil)
	case stepDeadline:
		// The respondent missed the deadline and loses by default.
		next.Timeline = append(next.Timeline, disputes.TimelineEntry{
			At: now, Kind: disputes.KindDeadlineMissed, Actor: disputes.ActorSystem,
			Note: fmt.Sprintf("the %s did not respond by %s", r.rec.Respondent(), due.UTC().Format(time.RFC3339)),
		})
		outcome := entdispute.StatusWon // the customer was the respondent
		if r.rec.Respondent() == entdispute.OpenedByMerchant {
			outcome = entdispute.StatusLost
		}
		r.decide(&next, outcome, disputes.ActorSystem, "the "+string(r.rec.Respondent())+" did not respond in time", now)
		return r.commit(ctx, next, nil)
	}
	return nil
}

// decide records an outcome on next: the status, the note, the timeline
// entry, and the settlement it calls for.
func (r *run) decide(next *store.DisputeRecord, st entdispute.Status, actor, note string, now time.Time) {
	next.Status = st
	if note != "" {
		next.OutcomeNote = note
	}
	kind := map[entdispute.Status]string{
		entdispute.StatusWon: disputes.KindWon, entdispute.StatusLost: disputes.KindLost,
		entdispute.StatusAccepted: disputes.KindAccepted, entdispute.StatusWithdrawn: disputes.KindWithdrawn,
	}[st]
	next.Timeline = append(next.Timeline, disputes.TimelineEntry{At: now, Kind: kind, Actor: actor, Note: note})
	if next.OpenedBy != entdispute.OpenedByNetwork && store.CustomerPrevails(st) {
		next.Settlement = entdispute.SettlementPending
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// copyRec is a copy of rec whose slices a change may append to.
func (r *run) copyRec() store.DisputeRecord {
	next := r.rec
	next.Timeline = slices.Clone(r.rec.Timeline)
	return next
}

// create takes the amount from the payment's balance and stores the
// dispute, opened, with its first timeline entries.
func (r *run) create(ctx workflow.Context) error {
	in := r.in
	r.busy = true
	defer func() { r.busy = false }()
	opener := in.OpenerID
	if in.OpenedBy == string(entdispute.OpenedByNetwork) {
		opener = disputes.ActorNetwork
	}
	timeline := []disputes.TimelineEntry{{At: in.CreatedAt, Kind: disputes.KindOpened, Actor: opener, Note: in.Description}}
	if in.OpenedBy == string(entdispute.OpenedByNetwork) {
		timeline = append(timeline, disputes.TimelineEntry{At: in.CreatedAt, Kind: disputes.KindFundsWithdrawn,
			Actor: disputes.ActorNetwork, Note: "the card network took the disputed funds back from the merchant"})
	}
	var created activities.CreatedDispute
	err := workflow.ExecuteLocalActivity(presets.LocalStoreWrite(ctx), db.CreateDispute, activities.OpenDisputeRequest{
		OpenerID: in.OpenerID,
		Dispute: store.DisputeRecord{
			ID: in.DisputeID, PaymentID: in.PaymentID, MerchantID: in.MerchantID,
			OpenedBy: entdispute.OpenedBy(in.OpenedBy), Reason: entdispute.Reason(in.Reason),
			Description: in.Description, Amount: in.Amount, Currency: in.Currency,
			ResponseDueBy: in.ResponseDueBy, GatewayReference: in.GatewayReference,
			WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Timeline: timeline, CreatedAt: in.CreatedAt,
		},
	}).Get(ctx, &created)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case ErrTypeFailedPrecondition, ErrTypeInvalidArgument, ErrTypeNotFound, ErrTypeAlreadyExists:
			workflow.GetLogger(ctx).Info("dispute refused by the payment", "dispute_id", in.DisputeID, "reason", appErr.Message())
			r.refused = temporal.NewNonRetryableApplicationError(appErr.Message(), appErr.Type(), nil)
			return workflow.UpsertTypedSearchAttributes(ctx, AttrStatus.ValueSet("refused"))
		}
	}
	if err != nil {
		return err
	}
	r.rec, r.payRef, r.stored = created.Dispute, created.PaymentReference, true
	r.attrDue, r.attrAttn = r.rec.ResponseDueBy, r.rec.NeedsAttention
	if r.rec.NeedsAttention {
		return workflow.UpsertTypedSearchAttributes(ctx, AttrNeedsAttention.ValueSet(true))
	}
	return nil
}

// notifyRespondent records that the respondent was told to respond, with
// the deadline: the step that sends them the notice.
func (r *run) notifyRespondent(ctx workflow.Context) error {
	r.busy = true
	defer func() { r.busy = false }()
	next := r.copyRec()
	who := r.rec.MerchantID
	if r.rec.Respondent() == entdispute.OpenedByCustomer {
		who = r.rec.CustomerID
	}
	next.Timeline = append(next.Timeline, disputes.TimelineEntry{
		At: workflow.Now(ctx), Kind: disputes.KindRespondentNotified, Actor: disputes.ActorSystem,
		Note: fmt.Sprintf("the %s (%s) was asked to respond by %s", r.rec.Respondent(), who,
			r.rec.ResponseDueBy.UTC().Format(time.RFC3339)),
	})
	return r.commit(ctx, next, nil)
}

// settle moves the money the outcome calls for: when the customer
// prevailed in a dispute opened on the platform, the disputed amount is
// refunded through the gateway, with one idempotency key for every retry,
// and recorded with its journal. A refusal or no answer leaves the money
// held (nothing is refundable twice) and asks operators to look.
func (r *run) settle(ctx workflow.Context) error {
	if r.rec.Settlement != entdispute.SettlementPending {
		return nil
	}
	r.busy = true
	defer func() { r.busy = false }()
	req := gateway.RefundRequest{
		Gateway: r.rec.Gateway, IdempotencyKey: r.rec.WorkflowID + "/refund/1",
		PaymentID: r.rec.PaymentID, Reference: r.payRef,
		Amount: r.rec.AmountHeld, Currency: r.rec.Currency,
	}
	if r.rec.Reason == entdispute.ReasonFraudulent || r.rec.Reason == entdispute.ReasonDuplicate {
		req.Reason = string(r.rec.Reason)
	}
	var res gateway.RefundResult
	err := workflow.ExecuteActivity(presets.GatewayCall(ctx), gw.Refund, req).Get(ctx, &res)
	now := workflow.Now(ctx)
	next := r.copyRec()
	switch {
	case err == nil && (res.Status == gateway.RefundPending || res.Status == gateway.RefundSucceeded):
		next.Settlement, next.RefundReference = entdispute.SettlementRefunded, res.Reference
		next.NeedsAttention, next.AttentionReason = false, ""
		next.Timeline = append(next.Timeline, disputes.TimelineEntry{At: now, Kind: disputes.KindRefunded, Actor: disputes.ActorSystem,
			Note: fmt.Sprintf("%s refunded to the customer (%s)", store.FormatAmount(r.rec.AmountHeld, r.rec.Currency), res.Reference)})
		return r.commit(ctx, next, store.DisputeRefundJournal(next, now))
	case err == nil:
		next.AttentionReason = "the gateway answered the dispute's refund " + string(res.Status) + " " + res.FailureCode
	case activities.IsGatewayRefusal(err):
		next.AttentionReason = "the gateway refused the dispute's refund: " + err.Error()
	default:
		next.AttentionReason = "the gateway did not answer the dispute's refund: " + err.Error()
	}
	workflow.GetLogger(ctx).Error("a dispute's refund was not made", "dispute_id", r.rec.ID, "reason", next.AttentionReason)
	next.NeedsAttention = true
	next.Timeline = append(next.Timeline, disputes.TimelineEntry{At: now, Kind: disputes.KindRefundFailed, Actor: disputes.ActorSystem,
		Note: next.AttentionReason})
	return r.commit(ctx, next, nil)
}

// commit saves next (with the next version) and its journal in a local
// activity; only then does next become the run's state.
func (r *run) commit(ctx workflow.Context, next store.DisputeRecord, j *store.Journal) error {
	next.Version = r.rec.Version + 1
	next.UpdatedAt = workflow.Now(ctx)
	if err := workflow.ExecuteLocalActivity(presets.LocalStoreWrite(ctx), db.SaveDispute, next, j).Get(ctx, nil); err != nil {
		return err
	}
	r.rec = next
	var attrs []temporal.SearchAttributeUpdate
	if next.Status != r.attrStatus {
		attrs = append(attrs, AttrStatus.ValueSet(string(next.Status)))
		r.attrStatus = next.Status
	}
	if !next.ResponseDueBy.Equal(r.attrDue) {
		attrs = append(attrs, AttrResponseDueBy.ValueSet(next.ResponseDueBy))
		r.attrDue = next.ResponseDueBy
	}
	if next.NeedsAttention != r.attrAttn {
		attrs = append(attrs, AttrNeedsAttention.ValueSet(next.NeedsAttention))
		r.attrAttn = next.NeedsAttention
	}
	if len(attrs) > 0 {
		return workflow.UpsertTypedSearchAttributes(ctx, attrs...)
	}
	return nil
}
