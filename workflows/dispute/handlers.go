package dispute

import (
	"fmt"
	"strconv"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	entdispute "github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

func (r *run) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (store.DisputeRecord, error) {
		return r.rec, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateAwaitRecorded, func(ctx workflow.Context) (store.DisputeRecord, error) {
		if err := workflow.Await(ctx, func() bool { return r.stored || r.refused != nil }); err != nil {
			return r.rec, err
		}
		return r.rec, r.refused
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSubmitEvidence,
		func(ctx workflow.Context, u EvidenceUpdate) (store.DisputeRecord, error) {
			return r.act(ctx, func() error { return r.checkEvidence(u) }, func(next *store.DisputeRecord) error {
				return r.applyEvidence(ctx, next, u)
			})
		},
		workflow.UpdateHandlerOptions{Validator: func(u EvidenceUpdate) error { return r.checkEvidence(u) }},
	); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAccept,
		func(ctx workflow.Context, a Action) (store.DisputeRecord, error) {
			return r.act(ctx, func() error { return r.checkAccept(a) }, func(next *store.DisputeRecord) error {
				return r.accept(ctx, next, a)
			})
		},
		workflow.UpdateHandlerOptions{Validator: func(a Action) error { return r.checkAccept(a) }},
	); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateWithdraw,
		func(ctx workflow.Context, a Action) (store.DisputeRecord, error) {
			return r.act(ctx, func() error { return r.checkWithdraw(a) }, func(next *store.DisputeRecord) error {
				r.decide(next, entdispute.StatusWithdrawn, a.Actor.AccountID, "the "+string(r.rec.OpenedBy)+" withdrew the dispute", workflow.Now(ctx))
				return nil
			})
		},
		workflow.UpdateHandlerOptions{Validator: func(a Action) error { return r.checkWithdraw(a) }},
	); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateResolve,
		func(ctx workflow.Context, res Resolution) (store.DisputeRecord, error) {
			return r.act(ctx, func() error { return r.checkResolve(res) }, func(next *store.DisputeRecord) error {
				st := entdispute.StatusWon
				if res.Outcome == "lost" {
					st = entdispute.StatusLost
				}
				r.decide(next, st, res.Actor.AccountID, res.Note, workflow.Now(ctx))
				if res.Note == "" {
					next.OutcomeNote = ""
				}
				return nil
			})
		},
		workflow.UpdateHandlerOptions{Validator: func(res Resolution) error { return r.checkResolve(res) }},
	)
}

// act runs an action's change once the run is free: the check again
// (another update may have won meanwhile), the change on a copy, the save.
// The caller gets the dispute as saved, or the refusal.
func (r *run) act(ctx workflow.Context, check func() error, change func(next *store.DisputeRecord) error) (store.DisputeRecord, error) {
	if err := workflow.Await(ctx, func() bool { return !r.busy && r.stored }); err != nil {
		return r.rec, err
	}
	if err := check(); err != nil {
		return r.rec, err
	}
	r.busy = true
	defer func() { r.busy = false }()
	next := r.copyRec()
	if err := change(&next); err != nil {
		return r.rec, err
	}
	if err := r.commit(ctx, next, nil); err != nil {
		return r.rec, err
	}
	r.evidenceTry, r.lastEvidence = 0, nil
	return r.rec, nil
}

func refuse(typ, format string, a ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, a...), typ, nil)
}

// party is the side actor takes in the dispute: customer or merchant, ""
// for anyone else (an admin is no party).
func (r *run) party(a Actor) entdispute.OpenedBy {
	switch {
	case a.AccountID == "":
		return ""
	case a.AccountID == r.rec.MerchantID:
		return entdispute.OpenedByMerchant
	case a.AccountID == r.rec.CustomerID:
		return entdispute.OpenedByCustomer
	}
	return ""
}

// checkOpen refuses an action on a dispute that is closed, or not stored
// yet (validators run before the run has created it).
func (r *run) checkOpen() error {
	if !r.stored {
		return refuse(ErrTypeFailedPrecondition, "dispute %s is being opened; try again", r.in.DisputeID)
	}
	if !store.IsOpen(r.rec.Status) {
		return refuse(ErrTypeFailedPrecondition, "dispute %s is %s: it is closed", r.rec.ID, r.rec.Status)
	}
	return nil
}

func (r *run) checkEvidence(u EvidenceUpdate) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	p := r.party(u.Actor)
	if p == "" {
		return refuse(ErrTypePermissionDenied, "only the payment's customer or merchant submits evidence")
	}
	if field, msg := u.Evidence.Check(); field != "" {
		return refuse(ErrTypeInvalidArgument, "%s: %s", field, msg)
	}
	respondent := p == r.rec.Respondent()
	if !respondent && r.rec.OpenedBy == entdispute.OpenedByNetwork {
		return refuse(ErrTypeFailedPrecondition, "the card network opened dispute %s: only the merchant responds to it", r.rec.ID)
	}
	submitted := r.rec.ClaimantEvidenceSubmitted
	if respondent {
		submitted = r.rec.EvidenceSubmitted
	}
	if submitted {
		return refuse(ErrTypeFailedPrecondition, "the %s's evidence for dispute %s was submitted already: it cannot change", p, r.rec.ID)
	}
	return nil
}

// applyEvidence stages or submits a party's evidence; the respondent's
// submission puts the dispute under review. A network dispute's evidence
// goes to the gateway first: what the gateway did not take is not saved.
func (r *run) applyEvidence(ctx workflow.Context, next *store.DisputeRecord, u EvidenceUpdate) error {
	now := workflow.Now(ctx)
	respondent := r.party(u.Actor) == r.rec.Respondent()
	kind := disputes.KindEvidenceStaged
	if u.Submit {
		kind = disputes.KindEvidenceSubmitted
	}
	if respondent {
		next.Evidence, next.EvidenceSubmitted = u.Evidence, u.Submit
	} else {
		next.ClaimantEvidence, next.ClaimantEvidenceSubmitted = u.Evidence, u.Submit
	}
	if r.rec.OpenedBy == entdispute.OpenedByNetwork {
		req := gateway.DisputeUpdateRequest{
			Gateway: r.rec.Gateway, Reference: r.rec.GatewayReference, Currency: r.rec.Currency,
			Evidence: gateway.DisputeEvidence{
				Explanation: u.Evidence.Explanation, ProductDescription: u.Evidence.ProductDescription,
				CustomerCommunication: u.Evidence.CustomerCommunication, ShippingTrackingNumber: u.Evidence.ShippingTrackingNumber,
				RefundPolicy: u.Evidence.RefundPolicy, UncategorizedText: u.Evidence.UncategorizedText,
			},
			Submit: u.Submit,
		}
		// One key per save; a request the gateway did not answer goes
		// again with its key, a different one (new evidence after no
		// answer) with its own, as a gateway refuses a key reused with
		// other parameters.
		if r.lastEvidence == nil || !sameEvidenceRequest(*r.lastEvidence, req) {
			if r.lastEvidence != nil {
				r.evidenceTry++
			}
			r.lastEvidence = &req
		}
		req.IdempotencyKey = r.rec.WorkflowID + "/evidence/" + strconv.FormatInt(r.rec.Version+1, 10)
		if r.evidenceTry > 0 {
			req.IdempotencyKey += "." + strconv.Itoa(r.evidenceTry)
		}
		var res gateway.DisputeResult
		err := workflow.ExecuteActivity(presets.GatewayStep(ctx), gw.UpdateDispute, req).Get(ctx, &res)
		switch {
		case activities.IsGatewayRefusal(err):
			return refuse(ErrTypeFailedPrecondition, "the gateway refused the evidence for dispute %s (%s)", r.rec.ID, refusalCode(err))
		case err != nil:
			return refuse(ErrTypeUnavailable, "the gateway did not take the evidence for dispute %s in time; try again", r.rec.ID)
		}
		if !res.DueBy.IsZero() {
			next.ResponseDueBy = res.DueBy
		}
	}
	next.Timeline = append(next.Timeline, disputes.TimelineEntry{At: now, Kind: kind, Actor: u.Actor.AccountID,
		Note: "by the " + string(r.party(u.Actor))})
	if respondent && u.Submit && next.Status == entdispute.StatusNeedsResponse {
		next.Status = entdispute.StatusUnderReview
		next.Timeline = append(next.Timeline, disputes.TimelineEntry{At: now, Kind: disputes.KindUnderReview, Actor: disputes.ActorSystem,
			Note: "the respondent's evidence is in: the dispute waits for a decision"})
	}
	return nil
}

// sameEvidenceRequest reports whether two evidence requests are the same
// call (the key aside).
func sameEvidenceRequest(a, b gateway.DisputeUpdateRequest) bool {
	a.IdempotencyKey, b.IdempotencyKey = "", ""
	return a == b
}

// refusalCode is the gateway's code of a refusal: only the code reaches
// the caller (the provider's text can name parameters or configuration).
func refusalCode(err error) string {
	if code := activities.GatewayRefusalCode(err); code != "" {
		return code
	}
	return "invalid_request"
}

func (r *run) checkAccept(a Action) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	switch {
	case r.party(a.Actor) != entdispute.OpenedByMerchant:
		return refuse(ErrTypePermissionDenied, "only the payment's merchant accepts a dispute")
	case r.rec.OpenedBy == entdispute.OpenedByMerchant:
		return refuse(ErrTypeFailedPrecondition, "the merchant opened dispute %s: withdraw it instead", r.rec.ID)
	}
	return nil
}

// accept records the merchant's concession. A network dispute is conceded
// at the gateway first (Stripe's close: the dispute is lost there, the
// funds stay with the cardholder); what the gateway did not take is not
// saved.
func (r *run) accept(ctx workflow.Context, next *store.DisputeRecord, a Action) error {
	if r.rec.OpenedBy == entdispute.OpenedByNetwork {
		req := gateway.DisputeCloseRequest{
			Gateway: r.rec.Gateway, Reference: r.rec.GatewayReference, Currency: r.rec.Currency,
			// One concession per dispute: every try is the same request.
			IdempotencyKey: r.rec.WorkflowID + "/close/1",
		}
		var res gateway.DisputeResult
		err := workflow.ExecuteActivity(presets.GatewayStep(ctx), gw.CloseDispute, req).Get(ctx, &res)
		switch {
		case activities.IsGatewayRefusal(err):
			return refuse(ErrTypeFailedPrecondition, "the gateway refused to close dispute %s (%s)", r.rec.ID, refusalCode(err))
		case err != nil:
			return refuse(ErrTypeUnavailable, "the gateway did not confirm the concession of dispute %s in time; try again", r.rec.ID)
		}
	}
	r.decide(next, entdispute.StatusAccepted, a.Actor.AccountID, "the merchant accepted the dispute", workflow.Now(ctx))
	if r.rec.OpenedBy == entdispute.OpenedByNetwork {
		next.Settlement = entdispute.SettlementWithdrawn
	}
	return nil
}

func (r *run) checkWithdraw(a Action) error {
	if err := r.checkOpen(); err != nil {
		return err
	}
	switch {
	case r.rec.OpenedBy == entdispute.OpenedByNetwork:
		return refuse(ErrTypeFailedPrecondition, "the card network opened dispute %s: only the cardholder's bank can withdraw it", r.rec.ID)
	case r.party(a.Actor) != r.rec.OpenedBy:
		return refuse(ErrTypePermissionDenied, "only the %s who opened the dispute withdraws it", r.rec.OpenedBy)
	}
	return nil
}

func (r *run) checkResolve(res Resolution) error {
	switch {
	case !res.Actor.Admin:
		return refuse(ErrTypePermissionDenied, "only an admin resolves a dispute")
	case res.Outcome != "won" && res.Outcome != "lost":
		return refuse(ErrTypeInvalidArgument, "outcome must be won or lost, not %q", res.Outcome)
	}
	if err := r.checkOpen(); err != nil {
		return err
	}
	if r.rec.OpenedBy == entdispute.OpenedByNetwork {
		return refuse(ErrTypeFailedPrecondition, "the card network decides dispute %s; its outcome comes from the gateway", r.rec.ID)
	}
	return nil
}

// onEvent applies a gateway event about a network dispute, each event
// once: a new deadline, under review, or the network's decision (won: the
// funds come back; lost: they stay with the cardholder).
func (r *run) onEvent(ctx workflow.Context, ev GatewayEvent) {
	log := workflow.GetLogger(ctx)
	if r.events[ev.EventID] {
		return
	}
	if err := workflow.Await(ctx, func() bool { return !r.busy }); err != nil {
		return
	}
	if r.rec.OpenedBy != entdispute.OpenedByNetwork || (ev.Reference != "" && ev.Reference != r.rec.GatewayReference) {
		log.Error("gateway event about another dispute ignored", "event", ev.EventID, "reference", ev.Reference)
		r.events[ev.EventID] = true
		return
	}
	if !store.IsOpen(r.rec.Status) {
		r.events[ev.EventID] = true
		return
	}
	now := workflow.Now(ctx)
	next := r.copyRec()
	var journal *store.Journal
	note := fmt.Sprintf("the gateway reports %s (%s)", ev.Status, ev.Type)
	switch ev.Status {
	case gateway.DisputeWon:
		r.decide(&next, entdispute.StatusWon, disputes.ActorNetwork, "the card network decided for the merchant", now)
		next.Settlement = entdispute.SettlementReinstated
		next.Timeline = append(next.Timeline, disputes.TimelineEntry{At: now, Kind: disputes.KindFundsReinstated,
			Actor: disputes.ActorNetwork, Note: "the disputed funds are back with the merchant"})
		journal = store.DisputeFundsReinstatedJournal(next, now)
	case gateway.DisputeLost:
		r.decide(&next, entdispute.StatusLost, disputes.ActorNetwork, "the card network decided for the cardholder", now)
		next.Settlement = entdispute.SettlementWithdrawn
	case gateway.DisputeUnderReview, gateway.DisputeWarningUnderReview:
		if next.Status == entdispute.StatusNeedsResponse {
			next.Status = entdispute.StatusUnderReview
			next.Timeline = append(next.Timeline, disputes.TimelineEntry{At: now, Kind: disputes.KindUnderReview, Actor: disputes.ActorNetwork, Note: note})
		}
	default:
		if ev.DueBy.IsZero() || ev.DueBy.Equal(next.ResponseDueBy) {
			r.events[ev.EventID] = true
			return
		}
	}
	if !ev.DueBy.IsZero() && !ev.DueBy.Equal(next.ResponseDueBy) {
		next.ResponseDueBy = ev.DueBy
		next.Timeline = append(next.Timeline, disputes.TimelineEntry{At: now, Kind: disputes.KindGatewayUpdated, Actor: disputes.ActorNetwork,
			Note: "the response is due by " + ev.DueBy.UTC().Format("2006-01-02T15:04:05Z07:00")})
	}
	if journal == nil && next.Status == r.rec.Status && len(next.Timeline) == len(r.rec.Timeline) &&
		next.ResponseDueBy.Equal(r.rec.ResponseDueBy) {
		// Nothing new (Stripe repeats charge.dispute.updated): no save.
		r.events[ev.EventID] = true
		return
	}
	r.busy = true
	defer func() { r.busy = false }()
	if err := r.commit(ctx, next, journal); err != nil {
		// Not marked as seen: a redelivery may apply it.
		log.Error("saving a gateway event failed", "event", ev.EventID, "err", err)
		return
	}
	r.events[ev.EventID] = true
}
