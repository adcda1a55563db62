package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/payments-platform/payments/internal/gateway"
)

// Stripe's event types about a dispute, which the sandbox delivers.
const (
	// EventDisputeCreated is sent when a dispute is opened.
	EventDisputeCreated = "charge.dispute.created"
	// EventDisputeFundsWithdrawn is sent with it: the disputed amount is
	// taken back from the merchant's balance at once.
	EventDisputeFundsWithdrawn = "charge.dispute.funds_withdrawn"
	// EventDisputeUpdated is sent when evidence is submitted.
	EventDisputeUpdated = "charge.dispute.updated"
	// EventDisputeClosed is sent when the dispute is won or lost, by
	// evidence or by CloseDispute.
	EventDisputeClosed = "charge.dispute.closed"
	// EventDisputeFundsReinstated is sent with it when the dispute is won:
	// the amount comes back to the merchant.
	EventDisputeFundsReinstated = "charge.dispute.funds_reinstated"
)

// The words that, in submitted evidence (UncategorizedText or
// Explanation), decide a dispute's outcome, as in Stripe's test mode.
const (
	// WinningEvidence closes the dispute as won.
	WinningEvidence = "winning_evidence"
	// LosingEvidence closes the dispute as lost.
	LosingEvidence = "losing_evidence"
)

// DisputeReasonFraudulent is the reason of every dispute the sandbox
// opens, as of Stripe's test card 4000 0000 0000 0259.
const DisputeReasonFraudulent = "fraudulent"

// Prefixes of the ids of a disputed intent's dispute and charge. Both end
// in the intent's digest, so that each is derived from the intent, and the
// intent from the dispute's id.
const (
	// DisputePrefix starts every dispute id the sandbox makes, as
	// Stripe's start with "dp_".
	DisputePrefix = "dp_sbx_"
	chargePrefix  = "ch_sbx_"
)

const (
	// disputeResponseWindow is how long the merchant has to respond to a
	// dispute (evidence_details.due_by): Stripe's test disputes give about
	// a week.
	disputeResponseWindow = 7 * 24 * time.Hour
	// maxEvidenceChars is Stripe's limit on one text field of evidence.
	maxEvidenceChars = 20_000
)

// DisputeReference returns the id of the dispute the sandbox opens on the
// payment reference (a pi_sbx_... id), "" when it is not a sandbox
// reference. The dispute exists only once opened.
func DisputeReference(reference string) string {
	if !validReference(reference) {
		return ""
	}
	return DisputePrefix + strings.TrimPrefix(reference, ReferencePrefix)
}

// DisputeEventID is the id of the event of eventType about the dispute
// disputeRef, for the events a dispute has at most once (created,
// funds_withdrawn, closed, funds_reinstated): the same on every delivery,
// so the receiver's dedupe recognises a repeated one.
func DisputeEventID(disputeRef, eventType string) string {
	return "evt_sbx_" + digest("dispute|"+disputeRef+"|"+eventType)
}

// DisputeUpdatedEventID is the id of the charge.dispute.updated event
// about the submission-th submission of evidence (1 for the first) to the
// dispute disputeRef: one event per submission, the same on every delivery.
func DisputeUpdatedEventID(disputeRef string, submission int64) string {
	return "evt_sbx_" + digest("dispute|"+disputeRef+"|"+EventDisputeUpdated+"|"+strconv.FormatInt(submission, 10))
}

// disputeIntent is the reference of the intent whose dispute is
// disputeRef.
func disputeIntent(disputeRef string) (string, bool) {
	d, ok := strings.CutPrefix(disputeRef, DisputePrefix)
	if !ok || !validDigest(d) {
		return "", false
	}
	return ReferencePrefix + d, true
}

// chargeID is the id the sandbox gives the charge of the intent ref.
func chargeID(ref string) string {
	return chargePrefix + strings.TrimPrefix(ref, ReferencePrefix)
}

// disputeState is a dispute as the sandbox stores it, in its intent.
type disputeState struct {
	ID string `json:"id"`
	// Amount is in ISO minor units of the intent's currency.
	Amount          int64         `json:"amount"`
	Reason          string        `json:"reason"`
	Status          string        `json:"status"` // a gateway.DisputeStatus
	DueBy           int64         `json:"due_by"` // Unix seconds
	SubmissionCount int64         `json:"submission_count"`
	PastDue         bool          `json:"past_due,omitempty"`
	Evidence        evidenceState `json:"evidence"`
	// Outcome is won or lost once evidence that decides it was submitted
	// (WinningEvidence, LosingEvidence), until the dispute closes with it;
	// a later submission without either word clears it.
	Outcome string `json:"outcome,omitempty"`
	Created int64  `json:"created"`
	// Events are the events of the dispute, as they were when they
	// happened: every delivery of one sends the same.
	Events []disputeEventState `json:"events"`
}

// evidenceState is gateway.DisputeEvidence as stored.
type evidenceState struct {
	Explanation            string `json:"explanation,omitempty"`
	ProductDescription     string `json:"product_description,omitempty"`
	CustomerCommunication  string `json:"customer_communication,omitempty"`
	ShippingTrackingNumber string `json:"shipping_tracking_number,omitempty"`
	RefundPolicy           string `json:"refund_policy,omitempty"`
	UncategorizedText      string `json:"uncategorized_text,omitempty"`
}

// evidenceField is one text field of evidence, by its name in Stripe's API
// (but for explanation, which Stripe has not).
type evidenceField struct {
	name string
	v    *string
}

// fields lists the evidence's fields, always in the same order.
func (e *evidenceState) fields() []evidenceField {
	return []evidenceField{
		{"explanation", &e.Explanation},
		{"product_description", &e.ProductDescription},
		{"customer_communication", &e.CustomerCommunication},
		{"shipping_tracking_number", &e.ShippingTrackingNumber},
		{"refund_policy", &e.RefundPolicy},
		{"uncategorized_text", &e.UncategorizedText},
	}
}

// merge stages the fields of e that are given over what is staged, as
// Stripe does with the fields an update sends: the Stripe gateway sends no
// empty field.
func (e *evidenceState) merge(update evidenceState) {
	theirs := update.fields()
	for i, f := range e.fields() {
		if v := *theirs[i].v; v != "" {
			*f.v = v
		}
	}
}

// empty reports whether no evidence is staged.
func (e *evidenceState) empty() bool {
	for _, f := range e.fields() {
		if *f.v != "" {
			return false
		}
	}
	return true
}

// outcome is the outcome the evidence asks Stripe's test mode for: won,
// lost, or "" for none. Winning wins when both words are there.
func (e *evidenceState) outcome() string {
	text := e.Explanation + "\n" + e.UncategorizedText
	switch {
	case strings.Contains(text, WinningEvidence):
		return string(gateway.DisputeWon)
	case strings.Contains(text, LosingEvidence):
		return string(gateway.DisputeLost)
	}
	return ""
}

func evidenceOf(e gateway.DisputeEvidence) evidenceState {
	return evidenceState{
		Explanation: e.Explanation, ProductDescription: e.ProductDescription,
		CustomerCommunication: e.CustomerCommunication, ShippingTrackingNumber: e.ShippingTrackingNumber,
		RefundPolicy: e.RefundPolicy, UncategorizedText: e.UncategorizedText,
	}
}

// disputeEventState is one event of a dispute: what changes of the
// dispute, as it was when the event happened.
type disputeEventState struct {
	ID              string `json:"id"`
	Type            string `json:"type"`
	Created         int64  `json:"created"`
	Status          string `json:"status"`
	SubmissionCount int64  `json:"submission_count"`
	HasEvidence     bool   `json:"has_evidence"`
	PastDue         bool   `json:"past_due"`
}

// record adds the event id of type typ, at now, with the dispute as it is.
func (d *disputeState) record(id, typ string, now int64) {
	d.Events = append(d.Events, disputeEventState{ID: id, Type: typ, Created: now, Status: d.Status,
		SubmissionCount: d.SubmissionCount, HasEvidence: !d.Evidence.empty(), PastDue: d.PastDue})
}

// closed reports whether the dispute is over: it takes no more evidence.
func (d *disputeState) closed() bool {
	switch gateway.DisputeStatus(d.Status) {
	case gateway.DisputeWon, gateway.DisputeLost, gateway.DisputeWarningClosed:
		return true
	}
	return false
}

// disputeResultState is gateway.DisputeResult as saved.
type disputeResultState struct {
	Reference        string `json:"reference"`
	PaymentReference string `json:"payment_reference"`
	Status           string `json:"status"`
	Amount           int64  `json:"amount"`
	Currency         string `json:"currency"`
	Reason           string `json:"reason"`
	DueBy            int64  `json:"due_by"`
	SubmissionCount  int64  `json:"submission_count"`
}

// disputeResultOf is the dispute of in as the gateway reports it, saved.
func disputeResultOf(in *intent) *disputeResultState {
	d := in.Dispute
	return &disputeResultState{Reference: d.ID, PaymentReference: in.ID, Status: d.Status, Amount: d.Amount,
		Currency: in.Currency, Reason: d.Reason, DueBy: d.DueBy, SubmissionCount: d.SubmissionCount}
}

func (r *disputeResultState) result() gateway.DisputeResult {
	res := gateway.DisputeResult{Reference: r.Reference, PaymentReference: r.PaymentReference,
		Status: gateway.DisputeStatus(r.Status), Amount: r.Amount, Currency: r.Currency, Reason: r.Reason,
		SubmissionCount: r.SubmissionCount}
	if r.DueBy > 0 {
		res.DueBy = time.Unix(r.DueBy, 0).UTC()
	}
	return res
}

// disputeLater opens a dispute on the intent ref, DisputeDelay from now,
// and delivers its events, from a goroutine: what a card network does to a
// payment of pm_card_createDispute once it succeeded. Called again (a
// retry of the call that made the payment succeed), it opens nothing more,
// and delivers the same events again, with the same ids; so a process that
// stopped before the dispute opened (the timer is kept in memory) leaves it
// to the next retry, as a refund's late failure.
func (s *Sandbox) disputeLater(ref string) {
	s.inBackground(s.disputeDelay, func(ctx context.Context) {
		in, err := s.openDispute(ctx, ref)
		if err != nil {
			// Refunded in full meanwhile, say: nothing left to dispute.
			s.log.WarnContext(ctx, "sandbox: the dispute of a payment of pm_card_createDispute was not opened",
				"reference", ref, "error", err)
			return
		}
		s.tellOpened(ctx, &in)
	})
}

// inBackground runs fn from a goroutine after delay (none when it is not
// positive), with a context bounded by failLaterTimeout; the goroutine
// counts in s.background.
func (s *Sandbox) inBackground(delay time.Duration, fn func(ctx context.Context)) {
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		if delay > 0 {
			time.Sleep(delay)
		}
		ctx, cancel := context.WithTimeout(context.Background(), failLaterTimeout)
		defer cancel()
		fn(ctx)
	}()
}

// openDispute opens the dispute of the intent ref unless it has one, and
// returns the intent as it stands after. An intent that has not succeeded,
// or that was refunded in full, is refused (Invalid): there is no money to
// dispute.
func (s *Sandbox) openDispute(ctx context.Context, ref string) (intent, error) {
	var openedNow bool
	in, found, err := update(ctx, s, ref, func(in *intent) (bool, error) {
		openedNow = false
		switch {
		case in.Dispute != nil:
			return false, nil
		case in.Status != string(gateway.StatusSucceeded):
			return false, invalid(http.StatusBadRequest, "payment_intent_unexpected_state", fmt.Sprintf(
				"sandbox: this PaymentIntent has no successful charge to dispute (status %s).", stripeStatus(in.Status)))
		case in.AmountReceived-in.AmountRefunded <= 0:
			return false, invalid(http.StatusBadRequest, "charge_already_refunded", fmt.Sprintf(
				"sandbox: PaymentIntent %s has been refunded in full: there is nothing to dispute.", in.ID))
		}
		now := s.now()
		d := &disputeState{
			ID:     DisputeReference(in.ID),
			Amount: in.AmountReceived,
			Reason: DisputeReasonFraudulent,
			Status: string(gateway.DisputeNeedsResponse),
			// Unix seconds: truncated to the second, as Stripe's.
			DueBy:   now.Add(disputeResponseWindow).Unix(),
			Created: now.Unix(),
		}
		d.record(DisputeEventID(d.ID, EventDisputeCreated), EventDisputeCreated, d.Created)
		d.record(DisputeEventID(d.ID, EventDisputeFundsWithdrawn), EventDisputeFundsWithdrawn, d.Created)
		in.Dispute = d
		openedNow = true
		return true, nil
	})
	switch {
	case err != nil:
		return intent{}, err
	case !found:
		return intent{}, noSuchIntent(ref)
	}
	if openedNow {
		s.log.InfoContext(ctx, "sandbox: dispute opened", "reference", ref, "dispute", in.Dispute.ID,
			"payment_id", in.PaymentID, "amount", in.Dispute.Amount, "currency", in.Currency)
	}
	return in, nil
}

// tellOpened delivers the events of the opening of in's dispute, in order.
func (s *Sandbox) tellOpened(ctx context.Context, in *intent) {
	id := in.Dispute.ID
	s.tell(ctx, in, DisputeEventID(id, EventDisputeCreated), DisputeEventID(id, EventDisputeFundsWithdrawn))
}

// tell delivers, in order, the events ids of in's dispute; one it has not
// recorded is skipped. A failure is logged: the dispute has changed
// whether or not its event got through, and a retry of the call that set
// it off tells it again.
func (s *Sandbox) tell(ctx context.Context, in *intent, ids ...string) {
	for _, id := range ids {
		ev, ok := disputeEvent(in, id)
		if !ok {
			continue
		}
		payload, err := json.Marshal(ev)
		if err == nil {
			err = s.deliverRetrying(ctx, ev.ID, ev.Type, payload)
		}
		if err != nil {
			s.log.WarnContext(ctx, "sandbox: a dispute's event was not delivered", "reference", in.ID,
				"dispute", in.Dispute.ID, "event_id", ev.ID, "type", ev.Type, "error", err)
		}
	}
}

// OpenDispute opens a dispute on the succeeded payment reference (a
// pi_sbx_... id), as a card network does, and delivers its events
// (charge.dispute.created, then charge.dispute.funds_withdrawn) from a
// goroutine, as for a payment of pm_card_createDispute, but without
// waiting DisputeDelay. A payment that is disputed already is not disputed
// again: its dispute is returned, and its events delivered again. A
// payment that has not succeeded, or that was refunded in full, is refused
// with an Invalid error, an unknown one with resource_missing (404).
//
// It is the provider's doing, not a call to it: it works whether or not
// the sandbox is down (SetDown). Handler serves it at
// POST /sandbox/payment_intents/{ref}/dispute, for `dev`.
func (s *Sandbox) OpenDispute(ctx context.Context, reference string) (gateway.DisputeResult, error) {
	if err := ctx.Err(); err != nil {
		return gateway.DisputeResult{}, canceled(err)
	}
	if err := checkReference(reference); err != nil {
		return gateway.DisputeResult{}, err
	}
	in, err := s.openDispute(ctx, reference)
	if err != nil {
		return gateway.DisputeResult{}, err
	}
	s.inBackground(0, func(ctx context.Context) { s.tellOpened(ctx, &in) })
	return disputeResultOf(&in).result(), nil
}

// RetrieveDispute returns the dispute disputeRef as it stands now, as
// Stripe's GET /v1/disputes/{id} does; an unknown dispute is refused with
// resource_missing (404).
func (s *Sandbox) RetrieveDispute(ctx context.Context, disputeRef string) (gateway.DisputeResult, error) {
	if err := s.reachable(ctx); err != nil {
		return gateway.DisputeResult{}, err
	}
	ref, ok := disputeIntent(disputeRef)
	if !ok {
		return gateway.DisputeResult{}, noSuchDispute(disputeRef)
	}
	in, found, err := s.loadIntent(ctx, ref)
	switch {
	case err != nil:
		return gateway.DisputeResult{}, err
	case !found || in.Dispute == nil || in.Dispute.ID != disputeRef:
		return gateway.DisputeResult{}, noSuchDispute(disputeRef)
	}
	return disputeResultOf(&in).result(), nil
}

// UpdateDispute stages (r.Submit false) or submits (r.Submit true) evidence
// for the dispute r.Reference, as Stripe's POST /v1/disputes/{id}, and
// returns the dispute as it stands after. The fields of r.Evidence that are
// given replace the staged ones; the others stay, as at Stripe, to which
// the Stripe gateway sends no empty field. A field longer than Stripe's
// 20,000 characters is refused.
//
// A submission makes the dispute under_review, counts in submission_count
// (past_due when after due_by) and delivers a charge.dispute.updated event
// (DisputeUpdatedEventID) from a goroutine. Then, as in Stripe's test
// mode, evidence whose UncategorizedText or Explanation holds
// WinningEvidence closes the dispute as won DisputeDelay later, delivering
// charge.dispute.closed and charge.dispute.funds_reinstated; LosingEvidence
// closes it as lost, delivering charge.dispute.closed; without either it
// stays under_review. Staging sends no event.
//
// A dispute that is closed (won or lost) is refused with
// dispute_already_closed, an unknown one with resource_missing (404), and
// a currency other than the payment's with parameter_invalid_string. The
// answer, refusals included, is saved under r.IdempotencyKey when there is
// one; a retry with the key answers the same, and tells the submission's
// events again (same ids).
func (s *Sandbox) UpdateDispute(ctx context.Context, r gateway.DisputeUpdateRequest) (gateway.DisputeResult, error) {
	ref, currency, err := s.disputeCall(ctx, r.Reference, r.Currency)
	if err != nil {
		return gateway.DisputeResult{}, err
	}
	ev := evidenceOf(r.Evidence)
	for _, f := range ev.fields() {
		if n := utf8.RuneCountInString(*f.v); n > maxEvidenceChars {
			return gateway.DisputeResult{}, invalid(http.StatusBadRequest, "parameter_invalid_string", fmt.Sprintf(
				"sandbox: evidence %s is %d characters long; at most %d are allowed", f.name, n, maxEvidenceChars))
		}
	}
	fp := fingerprint("dispute_update", r.Reference, ev, r.Submit)
	saved, err := s.changeDispute(ctx, ref, r.Reference, currency, r.IdempotencyKey, fp, "it no longer takes evidence",
		func(d *disputeState) {
			d.Evidence.merge(ev)
			if r.Submit {
				now := s.now().Unix()
				d.Status = string(gateway.DisputeUnderReview)
				d.SubmissionCount++
				d.PastDue = now > d.DueBy
				d.Outcome = d.Evidence.outcome()
				d.record(DisputeUpdatedEventID(d.ID, d.SubmissionCount), EventDisputeUpdated, now)
			}
		})
	if err != nil {
		return gateway.DisputeResult{}, err
	}
	res := saved.result()
	if r.Submit {
		s.submittedLater(ref, res.SubmissionCount)
	}
	return res, nil
}

// CloseDispute concedes the dispute r.Reference, as Stripe's POST
// /v1/disputes/{id}/close, and returns the dispute as it stands after: lost,
// as Stripe marks a closed dispute. The dispute is lost at once (a
// submission's decided outcome still to come is dropped), and
// charge.dispute.closed (status lost; DisputeEventID, so the same event
// whoever closed the dispute) is delivered DisputeDelay later from a
// goroutine, as when losing_evidence closes it.
//
// A dispute that is closed (won or lost) is refused with
// dispute_already_closed, as UpdateDispute refuses it, an unknown one with
// resource_missing (404), and a currency other than the payment's with
// parameter_invalid_string. The answer, refusals included, is saved under
// r.IdempotencyKey when there is one; a retry with the key answers the
// same (lost, once this close closed the dispute) and tells
// charge.dispute.closed again (same id, same body).
func (s *Sandbox) CloseDispute(ctx context.Context, r gateway.DisputeCloseRequest) (gateway.DisputeResult, error) {
	ref, currency, err := s.disputeCall(ctx, r.Reference, r.Currency)
	if err != nil {
		return gateway.DisputeResult{}, err
	}
	fp := fingerprint("dispute_close", r.Reference)
	saved, err := s.changeDispute(ctx, ref, r.Reference, currency, r.IdempotencyKey, fp, "it cannot be closed again",
		func(d *disputeState) {
			d.Status, d.Outcome = string(gateway.DisputeLost), ""
			d.record(DisputeEventID(d.ID, EventDisputeClosed), EventDisputeClosed, s.now().Unix())
		})
	if err != nil {
		return gateway.DisputeResult{}, err
	}
	s.closedLater(ref)
	return saved.result(), nil
}

// disputeCall begins a call about the dispute reference, as Stripe checks
// one: the sandbox is reachable, reference names a dispute (of the intent
// ref), and currency, when given, is one (returned upper case).
func (s *Sandbox) disputeCall(ctx context.Context, reference, currency string) (ref, code string, err error) {
	if err := s.reachable(ctx); err != nil {
		return "", "", err
	}
	ref, ok := disputeIntent(reference)
	if !ok {
		return "", "", noSuchDispute(reference)
	}
	if currency != "" {
		if code, err = checkCurrency(currency); err != nil {
			return "", "", err
		}
	}
	return ref, code, nil
}

// changeDispute applies change to the open dispute reference of the intent
// ref, once per idempotency key (fp fingerprints the request), and returns
// the dispute as saved. Refused, and saved as such under the key: an
// unknown dispute (resource_missing), a closed one (dispute_already_closed;
// closed says what it no longer does), a currency other than the
// payment's.
func (s *Sandbox) changeDispute(ctx context.Context, ref, reference, currency, key, fp, closed string,
	change func(d *disputeState),
) (*disputeResultState, error) {
	if key != "" {
		if err := s.claimKey(ctx, key, fp, ref, ""); err != nil {
			return nil, err
		}
	}
	ans, err := s.applyOnce(ctx, ref, key, fp, func(in *intent) answer {
		d := in.Dispute
		switch {
		case d == nil || d.ID != reference:
			return refused(noSuchDispute(reference))
		case d.closed():
			return refused(invalid(http.StatusBadRequest, "dispute_already_closed", fmt.Sprintf(
				"This dispute is already closed (status %s): %s.", d.Status, closed)))
		}
		if e := sameCurrency(currency, in); e != nil {
			return refused(e)
		}
		change(d)
		return answer{Dispute: disputeResultOf(in)}
	})
	if err != nil {
		var ge *gateway.Error
		if errors.As(err, &ge) && ge.Code == "resource_missing" {
			return nil, noSuchDispute(reference) // the intent, so no dispute
		}
		return nil, err
	}
	if err := ans.err(); err != nil {
		return nil, err
	}
	if ans.Dispute == nil {
		return nil, stateError(fmt.Errorf("the answer saved for dispute %s holds no dispute", reference))
	}
	return ans.Dispute, nil
}

// closedLater delivers, DisputeDelay from now, from a goroutine, the
// events of the closing of the dispute of the intent ref (see
// closeDispute), as submittedLater does for evidence that decided it.
func (s *Sandbox) closedLater(ref string) {
	s.inBackground(s.disputeDelay, func(ctx context.Context) {
		if err := s.closeDispute(ctx, ref); err != nil {
			s.log.WarnContext(ctx, "sandbox: a dispute's closing was not told", "reference", ref, "error", err)
		}
	})
}

// submittedLater delivers the event of the submission-th submission of
// evidence to the dispute of the intent ref, then, DisputeDelay later,
// closes the dispute if its evidence decided the outcome, and delivers the
// events of its closing (again, if it was closed before), all from one
// goroutine, so that they arrive in that order.
func (s *Sandbox) submittedLater(ref string, submission int64) {
	s.inBackground(0, func(ctx context.Context) {
		in, found, err := s.loadIntent(ctx, ref)
		if err != nil || !found || in.Dispute == nil {
			s.log.WarnContext(ctx, "sandbox: a dispute's submission was not told", "reference", ref, "found", found, "error", err)
			return
		}
		s.tell(ctx, &in, DisputeUpdatedEventID(in.Dispute.ID, submission))
		if s.disputeDelay > 0 {
			time.Sleep(s.disputeDelay)
		}
		// A context of its own: the pause must not eat the close's time.
		ctx, cancel := context.WithTimeout(context.Background(), failLaterTimeout)
		defer cancel()
		if err := s.closeDispute(ctx, ref); err != nil {
			s.log.WarnContext(ctx, "sandbox: a dispute was not closed", "reference", ref, "error", err)
		}
	})
}

// closeDispute closes the dispute of the intent ref with the outcome its
// submitted evidence decided, if it is under review with one, and delivers
// the events of its closing if it is closed, now or before (by evidence or
// by CloseDispute).
func (s *Sandbox) closeDispute(ctx context.Context, ref string) error {
	var closedNow bool
	in, found, err := update(ctx, s, ref, func(in *intent) (bool, error) {
		closedNow = false
		d := in.Dispute
		if d == nil || d.Status != string(gateway.DisputeUnderReview) || d.Outcome == "" {
			return false, nil
		}
		now := s.now().Unix()
		d.Status, d.Outcome = d.Outcome, ""
		d.record(DisputeEventID(d.ID, EventDisputeClosed), EventDisputeClosed, now)
		if d.Status == string(gateway.DisputeWon) {
			d.record(DisputeEventID(d.ID, EventDisputeFundsReinstated), EventDisputeFundsReinstated, now)
		}
		closedNow = true
		return true, nil
	})
	switch {
	case err != nil:
		return err
	case !found:
		return noSuchIntent(ref)
	case in.Dispute == nil || !in.Dispute.closed():
		return nil
	}
	d := in.Dispute
	if closedNow {
		s.log.InfoContext(ctx, "sandbox: dispute closed", "reference", ref, "dispute", d.ID,
			"payment_id", in.PaymentID, "status", d.Status)
	}
	s.tell(ctx, &in, DisputeEventID(d.ID, EventDisputeClosed), DisputeEventID(d.ID, EventDisputeFundsReinstated))
	return nil
}

// noSuchDispute is Stripe's answer for an unknown dispute id.
func noSuchDispute(ref string) *gateway.Error {
	return invalid(http.StatusNotFound, "resource_missing", fmt.Sprintf("No such dispute: '%s'", ref))
}

// stripeDispute is the part of Stripe's Dispute object the sandbox sends.
type stripeDispute struct {
	ID                  string                `json:"id"`
	Object              string                `json:"object"`
	Amount              int64                 `json:"amount"`
	BalanceTransactions []struct{}            `json:"balance_transactions"`
	Charge              *string               `json:"charge"`
	Created             int64                 `json:"created"`
	Currency            string                `json:"currency"`
	EvidenceDetails     stripeEvidenceDetails `json:"evidence_details"`
	IsChargeRefundable  bool                  `json:"is_charge_refundable"`
	Livemode            bool                  `json:"livemode"`
	Metadata            map[string]string     `json:"metadata"`
	PaymentIntent       string                `json:"payment_intent"`
	Reason              string                `json:"reason"`
	Status              string                `json:"status"`
}

// stripeEvidenceDetails is Stripe's evidence_details of a Dispute.
type stripeEvidenceDetails struct {
	DueBy           int64 `json:"due_by"`
	HasEvidence     bool  `json:"has_evidence"`
	PastDue         bool  `json:"past_due"`
	SubmissionCount int64 `json:"submission_count"`
}

// disputeEvent is the event id of in's dispute, built from the stored
// state alone, so that every delivery sends the same; ok is false when the
// dispute has recorded no such event.
func disputeEvent(in *intent, id string) (event[stripeDispute], bool) {
	d := in.Dispute
	var e *disputeEventState
	for i := range d.Events {
		if d.Events[i].ID == id {
			e = &d.Events[i]
		}
	}
	if e == nil {
		return event[stripeDispute]{}, false
	}
	charge := chargeID(in.ID)
	obj := stripeDispute{
		ID:                  d.ID,
		Object:              "dispute",
		Amount:              d.Amount,
		BalanceTransactions: []struct{}{},
		Charge:              &charge,
		Created:             d.Created,
		Currency:            strings.ToLower(in.Currency),
		EvidenceDetails: stripeEvidenceDetails{DueBy: d.DueBy, HasEvidence: e.HasEvidence, PastDue: e.PastDue,
			SubmissionCount: e.SubmissionCount},
		Metadata:      map[string]string{},
		PaymentIntent: in.ID,
		Reason:        d.Reason,
		Status:        e.Status,
	}
	if in.PaymentID != "" {
		obj.Metadata["payment_id"] = in.PaymentID
	}
	// In the gateway's units, as Stripe's events are (5 ISK is 500).
	if v, err := gateway.UnitsFor(Name, in.Currency).ToGateway(obj.Amount); err == nil {
		obj.Amount = v
	}
	return event[stripeDispute]{
		ID:         e.ID,
		Object:     "event",
		APIVersion: APIVersion,
		Created:    e.Created,
		Data:       eventData[stripeDispute]{Object: obj},
		Type:       e.Type,
	}, true
}

// disputeJSON is a gateway.DisputeResult as the route of OpenDispute
// answers it.
type disputeJSON struct {
	Reference        string `json:"reference"`
	PaymentReference string `json:"payment_reference"`
	Status           string `json:"status"`
	// Amount is in ISO minor units of Currency.
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Reason   string `json:"reason"`
	// DueBy is RFC 3339, UTC; "" when none is due.
	DueBy           string `json:"due_by"`
	SubmissionCount int64  `json:"submission_count"`
}

// serveOpenDispute is POST /sandbox/payment_intents/{ref}/dispute: it calls
// OpenDispute and answers the dispute as JSON (200), or an error as
// {"error": {"code", "message"}} with the error's HTTP status.
func (s *Sandbox) serveOpenDispute(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	res, err := s.OpenDispute(r.Context(), ref)
	if err != nil {
		status := http.StatusServiceUnavailable
		var ge *gateway.Error
		if errors.As(err, &ge) && ge.Kind == gateway.Invalid && ge.StatusCode != 0 {
			status = ge.StatusCode
		}
		code, msg := "api_error", err.Error()
		if ge != nil {
			code, msg = ge.Code, ge.Message
		}
		s.log.InfoContext(r.Context(), "sandbox: dispute not opened", "reference", ref, "code", code, "error", err)
		writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
		return
	}
	out := disputeJSON{Reference: res.Reference, PaymentReference: res.PaymentReference, Status: string(res.Status),
		Amount: res.Amount, Currency: res.Currency, Reason: res.Reason, SubmissionCount: res.SubmissionCount}
	if !res.DueBy.IsZero() {
		out.DueBy = res.DueBy.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, out)
}

// writeJSON writes v as the JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // plain structs: cannot happen
		status, body = http.StatusInternalServerError, []byte(`{"error":{"code":"api_error","message":"encoding failed"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
