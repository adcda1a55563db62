package dispute

// Unit tests of the dispute workflow's paths: the decisions (an admin's,
// the merchant's concession, the claimant's withdrawal, the missed
// deadline), the evidence rules, the refund the customer's win makes (once,
// with one key, however often the gateway is retried), the network's
// disputes decided by the gateway's events, the refused opening, the
// gateway's refusal of the refund, the size of the history and the logic
// version guard. The harness (harness_test.go) records every call and
// checks every save; a gateway call a test does not mock fails it.

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	entdispute "github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
)

// Shorthands of the timeline's kinds and system actors.
const (
	kOpened    = disputes.KindOpened
	kNotified  = disputes.KindRespondentNotified
	kStaged    = disputes.KindEvidenceStaged
	kSubmitted = disputes.KindEvidenceSubmitted
	kDueSoon   = disputes.KindResponseDueSoon
	kMissed    = disputes.KindDeadlineMissed
	kReview    = disputes.KindUnderReview
	kAccepted  = disputes.KindAccepted
	kWithdrawn = disputes.KindWithdrawn
	kWon       = disputes.KindWon
	kLost      = disputes.KindLost
	kRefunded  = disputes.KindRefunded
	kRefFailed = disputes.KindRefundFailed
	kFundsOut  = disputes.KindFundsWithdrawn
	kFundsBack = disputes.KindFundsReinstated
	kGwUpdated = disputes.KindGatewayUpdated
	system     = disputes.ActorSystem
	network    = disputes.ActorNetwork
)

// at0 is t0+d.
func at0(d time.Duration) time.Time { return t0.Add(d) }

// Some evidence.
var (
	evA = disputes.Evidence{Explanation: "tracking shows delivery", ShippingTrackingNumber: "1Z999"}
	evB = disputes.Evidence{Explanation: "tracking shows delivery; signed by the customer", ShippingTrackingNumber: "1Z999", RefundPolicy: "30 days"}
	evC = disputes.Evidence{Explanation: "final: signed for on 25 November", ShippingTrackingNumber: "1Z999", CustomerCommunication: "mails attached", ProductDescription: "a lamp"}
	evX = disputes.Evidence{Explanation: "it never came", CustomerCommunication: "I wrote twice"}
)

// refundReq is the gateway request that refunds the customer of the test
// dispute opened on the platform: the held amount (the store's, not the
// input's), to the payment's intent, with the dispute's one key.
func refundReq() gateway.RefundRequest {
	return gateway.RefundRequest{
		Gateway: gwName, IdempotencyKey: refundKey, PaymentID: payID, Reference: payRef,
		Amount: left, Currency: currency,
	}
}

// The lines of the dispute's refund (the customer gets the held amount)
// and of the network's reinstatement (the merchant gets the network's
// amount back), spelled out.
var (
	refundLines = []store.JournalLine{
		{Account: "merchant_balance:" + merchantID, Direction: ledgerentry.DirectionDebit, Amount: left},
		{Account: "gateway_clearing:" + gwName, Direction: ledgerentry.DirectionCredit, Amount: left},
		{Account: "gateway_clearing:" + gwName, Direction: ledgerentry.DirectionDebit, Amount: left},
		{Account: "customer_funding:" + customerID, Direction: ledgerentry.DirectionCredit, Amount: left},
	}
	reinstatedLines = []store.JournalLine{
		{Account: "customer_funding:" + customerID, Direction: ledgerentry.DirectionDebit, Amount: netAmount},
		{Account: "gateway_clearing:" + gwName, Direction: ledgerentry.DirectionCredit, Amount: netAmount},
		{Account: "gateway_clearing:" + gwName, Direction: ledgerentry.DirectionDebit, Amount: netAmount},
		{Account: "merchant_balance:" + merchantID, Direction: ledgerentry.DirectionCredit, Amount: netAmount},
	}
)

// checkCreate asserts the workflow asked the store once, at t0, in a
// local activity, to create the dispute in: its fields, the opener, and
// the first timeline entries (opened, and for a network dispute the funds
// the network took).
func checkCreate(t *testing.T, h *harness, in Input) {
	t.Helper()
	cs := h.allCreates()
	if len(cs) != 1 || !cs[0].At.Equal(t0) || !cs[0].Local {
		t.Fatalf("CreateDispute calls %+v, want one local call at t0", cs)
	}
	req := cs[0].Req
	if req.OpenerID != in.OpenerID {
		t.Errorf("opener %q, want %q", req.OpenerID, in.OpenerID)
	}
	want := store.DisputeRecord{
		ID: in.DisputeID, PaymentID: in.PaymentID, MerchantID: in.MerchantID,
		OpenedBy: entdispute.OpenedBy(in.OpenedBy), Reason: entdispute.Reason(in.Reason),
		Description: in.Description, Amount: in.Amount, Currency: in.Currency,
		ResponseDueBy: in.ResponseDueBy, GatewayReference: in.GatewayReference,
		WorkflowID: wfID, CreatedAt: in.CreatedAt,
	}
	got := req.Dispute
	got.Timeline = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CreateDispute request\n got %+v\nwant %+v", got, want)
	}
	if in.OpenedBy == "network" {
		checkSteps(t, req.Dispute, step{kOpened, network, t0}, step{kFundsOut, network, t0})
	} else {
		checkSteps(t, req.Dispute, step{kOpened, in.OpenerID, t0})
		if req.Dispute.Timeline[0].Note != in.Description {
			t.Errorf("opened with note %q, want the description", req.Dispute.Timeline[0].Note)
		}
	}
}

// checkNoMoney asserts nothing moved: no gateway refund, no journal, no
// settlement.
func checkNoMoney(t *testing.T, h *harness, rec store.DisputeRecord) {
	t.Helper()
	if rs := h.allRefunds(); len(rs) != 0 {
		t.Errorf("gateway refunds %+v, want none", rs)
	}
	if js := h.journals(); len(js) != 0 {
		t.Errorf("journals %+v, want none", js)
	}
	if rec.Settlement != entdispute.SettlementNone || rec.RefundReference != "" {
		t.Errorf("settlement %s (refund %q), want none", rec.Settlement, rec.RefundReference)
	}
}

// checkRefunded asserts the customer was refunded once, at at: one
// gateway call (refundReq), the last save refunded with the gateway's
// reference and the refund's journal, the only journal.
func checkRefunded(t *testing.T, h *harness, at time.Time) store.DisputeRecord {
	t.Helper()
	rs := h.allRefunds()
	if len(rs) != 1 || rs[0].Req != refundReq() || !rs[0].At.Equal(at) {
		t.Fatalf("gateway refunds %+v, want one of %+v at t0+%v", rs, refundReq(), at.Sub(t0))
	}
	saves := h.allSaves()
	last := saves[len(saves)-1]
	rec := last.Rec
	if rec.Settlement != entdispute.SettlementRefunded || rec.RefundReference != gwRefundID || !last.At.Equal(at) || rec.NeedsAttention {
		t.Errorf("last save at t0+%v: %+v, want refunded (%s) at t0+%v", last.At.Sub(t0), rec, gwRefundID, at.Sub(t0))
	}
	if want := store.DisputeRefundJournal(rec, at); last.Journal == nil || !reflect.DeepEqual(*last.Journal, *want) {
		t.Errorf("refund journal %+v, want %+v", last.Journal, want)
	}
	js := h.journals()
	if len(js) != 1 || js[0].ID != disputeID+"/refund" || !reflect.DeepEqual(js[0].Lines, refundLines) {
		t.Errorf("journals %+v, want only the refund's, of %d", js, left)
	}
	pending := saves[len(saves)-2].Rec
	if pending.Settlement != entdispute.SettlementPending || !store.CustomerPrevails(pending.Status) || pending.Status != rec.Status {
		t.Errorf("the save before the refund %+v, want the outcome with settlement pending", pending)
	}
	return rec
}

// 1. A customer opens; the merchant (the respondent) stages evidence
// twice, then submits it: under review; an admin resolves won. Nothing
// moves.
func TestRespondentSubmitsAndAdminResolvesWon(t *testing.T) {
	h := newHarness(t, customerInput())
	recorded := h.update(0, UpdateAwaitRecorded, nil)
	s1 := h.evidence(time.Hour, merchant, evA, false)
	s2 := h.evidence(2*time.Hour, merchant, evB, false)
	sub := h.evidence(3*time.Hour, merchant, evC, true)
	h.at(4*time.Hour, func() {
		if got := h.query(); got.Status != entdispute.StatusUnderReview || got.Version != 5 || !got.EvidenceSubmitted || got.Evidence != evC {
			t.Errorf("under review: %+v", got)
		}
	})
	res := h.update(5*time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "won", Note: "delivery proven"})
	h.run()
	rec := h.result()

	checkCreate(t, h, customerInput())
	created := recorded.ok(t)
	if created.Version != 1 || created.Status != entdispute.StatusNeedsResponse || created.Amount != left || created.AmountHeld != left ||
		created.Currency != currency || created.CustomerID != customerID {
		t.Errorf("await_recorded answered %+v, want the created dispute", created)
	}
	if r := s1.ok(t); r.Version != 3 || r.Evidence != evA || r.EvidenceSubmitted || r.Status != entdispute.StatusNeedsResponse {
		t.Errorf("first staging answered %+v", r)
	}
	if r := s2.ok(t); r.Version != 4 || r.Evidence != evB || r.EvidenceSubmitted || r.Status != entdispute.StatusNeedsResponse {
		t.Errorf("second staging answered %+v", r)
	}
	if r := sub.ok(t); r.Version != 5 || r.Evidence != evC || !r.EvidenceSubmitted || r.Status != entdispute.StatusUnderReview {
		t.Errorf("submission answered %+v", r)
	}
	won := res.ok(t)
	if !reflect.DeepEqual(won, rec) {
		t.Errorf("resolve answered\n %+v\nthe run ended with\n %+v", won, rec)
	}
	h.checkVersions()
	wantSt := []entdispute.Status{"needs_response", "needs_response", "needs_response", "under_review", "won"}
	if got := h.statuses(); !reflect.DeepEqual(got, wantSt) {
		t.Errorf("saved statuses %v, want %v", got, wantSt)
	}
	if rec.Status != entdispute.StatusWon || rec.Version != 6 || rec.OutcomeNote != "delivery proven" || !rec.UpdatedAt.Equal(at0(5*time.Hour)) ||
		rec.Evidence != evC || !rec.EvidenceSubmitted || rec.ClaimantEvidenceSubmitted || rec.NeedsAttention {
		t.Errorf("result %+v", rec)
	}
	checkSteps(t, rec,
		step{kOpened, customerID, t0},
		step{kNotified, system, t0},
		step{kStaged, merchantID, at0(time.Hour)},
		step{kStaged, merchantID, at0(2 * time.Hour)},
		step{kSubmitted, merchantID, at0(3 * time.Hour)},
		step{kReview, system, at0(3 * time.Hour)},
		step{kWon, adminID, at0(5 * time.Hour)},
	)
	if n := rec.Timeline[1].Note; !strings.Contains(n, "merchant (acct_m)") || !strings.Contains(n, "2026-12-04T09:00:00Z") {
		t.Errorf("respondent notified with %q", n)
	}
	checkNoMoney(t, h, rec)
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"under_review", "won"}) {
		t.Errorf("DisputeStatus upserts %q", got)
	}
	if got := h.attentionAttrs(); len(got) != 0 {
		t.Errorf("NeedsAttention upserts %v", got)
	}
}

// 2. The same course resolved lost: the outcome is saved with the
// settlement pending, then the customer is refunded the held amount once,
// with the refund's journal.
func TestRespondentSubmitsAndAdminResolvesLost(t *testing.T) {
	h := newHarness(t, customerInput())
	h.refundsSucceed()
	h.evidence(time.Hour, merchant, evA, false)
	h.evidence(2*time.Hour, merchant, evB, false)
	h.evidence(3*time.Hour, merchant, evC, true)
	res := h.update(5*time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "lost", Note: "no proof of delivery"})
	h.run()
	rec := h.result()

	lost := res.ok(t)
	if lost.Status != entdispute.StatusLost || lost.Settlement != entdispute.SettlementPending || lost.Version != 6 || lost.OutcomeNote != "no proof of delivery" {
		t.Errorf("resolve answered %+v, want lost with the refund pending", lost)
	}
	h.checkVersions()
	done := checkRefunded(t, h, at0(5*time.Hour))
	if !reflect.DeepEqual(done, rec) || rec.Version != 7 || rec.Status != entdispute.StatusLost || rec.OutcomeNote != "no proof of delivery" {
		t.Errorf("result %+v", rec)
	}
	if saves := h.allSaves(); len(saves) != 6 || !reflect.DeepEqual(saves[4].Rec, lost) || saves[4].Journal != nil {
		t.Errorf("saves %+v, want the outcome (no journal) then the refund", saves)
	}
	checkSteps(t, rec,
		step{kOpened, customerID, t0},
		step{kNotified, system, t0},
		step{kStaged, merchantID, at0(time.Hour)},
		step{kStaged, merchantID, at0(2 * time.Hour)},
		step{kSubmitted, merchantID, at0(3 * time.Hour)},
		step{kReview, system, at0(3 * time.Hour)},
		step{kLost, adminID, at0(5 * time.Hour)},
		step{kRefunded, system, at0(5 * time.Hour)},
	)
	if n := rec.Timeline[7].Note; !strings.Contains(n, gwRefundID) {
		t.Errorf("refunded with note %q, want the gateway's reference", n)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"under_review", "lost"}) {
		t.Errorf("DisputeStatus upserts %q", got)
	}
}

// 3. Money moves once when the refund activity is retried: the gateway
// does not answer twice, then takes the refund; every attempt carries the
// same request and key, and one refund is recorded with one journal.
func TestRefundRetriedMovesMoneyOnce(t *testing.T) {
	h := newHarness(t, customerInput())
	h.onRefund(func(n int, _ call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		if n <= 2 {
			return gateway.RefundResult{}, unavailable()
		}
		return gateway.RefundResult{Reference: gwRefundID, Status: gateway.RefundPending, Amount: left}, nil
	})
	h.update(time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "lost"})
	h.run()
	rec := h.result()

	rs := h.allRefunds()
	if len(rs) != 3 {
		t.Fatalf("%d gateway refund attempts, want 3", len(rs))
	}
	// Backoff 0.5 s, doubling.
	wantAt := []time.Duration{time.Hour, time.Hour + 500*time.Millisecond, time.Hour + 1500*time.Millisecond}
	for i, r := range rs {
		if r.Req != refundReq() || r.Attempt != int32(i+1) || !r.At.Equal(at0(wantAt[i])) || r.Local {
			t.Errorf("attempt %d: %+v, want attempt %d of %+v at t0+%v", i+1, r, i+1, refundReq(), wantAt[i])
		}
	}
	h.checkVersions()
	refunded := 0
	for _, s := range h.allSaves() {
		if s.Rec.Settlement == entdispute.SettlementRefunded {
			refunded++
		}
	}
	if refunded != 1 {
		t.Errorf("%d saves recorded the refund, want 1", refunded)
	}
	if js := h.journals(); len(js) != 1 || js[0].ID != disputeID+"/refund" || !js[0].At.Equal(at0(wantAt[2])) {
		t.Errorf("journals %+v, want one, when the gateway took the refund", js)
	}
	if rec.Settlement != entdispute.SettlementRefunded || rec.RefundReference != gwRefundID || rec.Version != 4 || rec.OutcomeNote != "" {
		t.Errorf("result %+v", rec)
	}
	checkSteps(t, rec,
		step{kOpened, customerID, t0},
		step{kNotified, system, t0},
		step{kLost, adminID, at0(time.Hour)},
		step{kRefunded, system, at0(wantAt[2])},
	)
}

// The gateway's refund carries the dispute's reason when Stripe has it
// (fraudulent, duplicate), none otherwise.
func TestRefundCarriesTheGatewaysReasons(t *testing.T) {
	for _, tc := range []struct{ reason, gw string }{
		{"fraudulent", "fraudulent"},
		{"duplicate", "duplicate"},
		{"product_not_received", ""},
		{"general", ""},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			in := customerInput()
			in.Reason = tc.reason
			h := newHarness(t, in)
			h.refundsSucceed()
			h.update(time.Hour, UpdateAccept, Action{Actor: merchant})
			h.run()
			h.result()
			want := refundReq()
			want.Reason = tc.gw
			if rs := h.allRefunds(); len(rs) != 1 || rs[0].Req != want {
				t.Fatalf("gateway refunds %+v, want one of %+v", rs, want)
			}
		})
	}
}

// 4. The merchant never answers a customer's dispute (the 7-day window):
// reminded at exactly due-72h and due-24h, on the workflow's clock; at
// the deadline the dispute is lost by default (by "system") and the
// customer refunded.
func TestMerchantMissesTheDeadline(t *testing.T) {
	h := newHarness(t, customerInput())
	h.refundsSucceed()
	first, second := due.Add(-72*time.Hour), due.Add(-24*time.Hour)
	h.at(first.Sub(t0)-time.Second, func() {
		if got := h.query(); got.Version != 2 || len(got.Timeline) != 2 {
			t.Errorf("a second before the first reminder: %+v", got)
		}
	})
	h.at(due.Sub(t0)-time.Second, func() {
		if got := h.query(); got.Version != 4 || got.Status != entdispute.StatusNeedsResponse {
			t.Errorf("a second before the deadline: %+v", got)
		}
	})
	h.run()
	rec := h.result()

	h.checkVersions()
	saves := h.allSaves()
	wantAt := []time.Time{t0, first, second, due, due}
	if len(saves) != len(wantAt) {
		t.Fatalf("%d saves, want %d", len(saves), len(wantAt))
	}
	for i, s := range saves {
		if !s.At.Equal(wantAt[i]) {
			t.Errorf("save %d at t0+%v, want t0+%v", i, s.At.Sub(t0), wantAt[i].Sub(t0))
		}
	}
	checkRefunded(t, h, due)
	checkSteps(t, rec,
		step{kOpened, customerID, t0},
		step{kNotified, system, t0},
		step{kDueSoon, system, first},
		step{kDueSoon, system, second},
		step{kMissed, system, due},
		step{kLost, system, due},
		step{kRefunded, system, due},
	)
	for i, left := range map[int]string{2: "72h0m0s left", 3: "24h0m0s left"} {
		if n := rec.Timeline[i].Note; !strings.Contains(n, "merchant is reminded") || !strings.Contains(n, left) {
			t.Errorf("reminder %d: %q", i, n)
		}
	}
	if rec.Status != entdispute.StatusLost || rec.OutcomeNote != "the merchant did not respond in time" || rec.Version != 6 {
		t.Errorf("result %+v", rec)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"lost"}) {
		t.Errorf("DisputeStatus upserts %q", got)
	}
	// A timer per step, no more: to the first reminder, the second, the
	// deadline.
	if want := []time.Duration{72*time.Hour + 24*time.Hour, 48 * time.Hour, 24 * time.Hour}; !reflect.DeepEqual(h.timers, want) {
		t.Errorf("timers %v, want %v", h.timers, want)
	}
}

// 5. The customer never answers a merchant's dispute: reminded, then the
// merchant wins by default; nothing moves.
func TestCustomerMissesTheDeadlineOfAMerchantDispute(t *testing.T) {
	h := newHarness(t, merchantInput())
	h.run()
	rec := h.result()

	checkCreate(t, h, merchantInput())
	h.checkVersions()
	checkNoMoney(t, h, rec)
	checkSteps(t, rec,
		step{kOpened, merchantID, t0},
		step{kNotified, system, t0},
		step{kDueSoon, system, due.Add(-72 * time.Hour)},
		step{kDueSoon, system, due.Add(-24 * time.Hour)},
		step{kMissed, system, due},
		step{kWon, system, due},
	)
	if n := rec.Timeline[1].Note; !strings.Contains(n, "customer (acct_c)") {
		t.Errorf("respondent notified with %q, want the customer", n)
	}
	if n := rec.Timeline[2].Note; !strings.Contains(n, "customer is reminded") {
		t.Errorf("reminder %q, want the customer reminded", n)
	}
	if rec.Status != entdispute.StatusWon || rec.OutcomeNote != "the customer did not respond in time" || rec.Version != 5 || !rec.UpdatedAt.Equal(due) {
		t.Errorf("result %+v", rec)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"won"}) {
		t.Errorf("DisputeStatus upserts %q", got)
	}
}

// 6. The merchant accepts a customer's dispute: accepted, the customer
// refunded. The customer (or anyone else) cannot accept it.
func TestMerchantAcceptsACustomerDispute(t *testing.T) {
	h := newHarness(t, customerInput())
	h.refundsSucceed()
	byCustomer := h.update(30*time.Minute, UpdateAccept, Action{Actor: customer})
	byStranger := h.update(30*time.Minute, UpdateAccept, Action{Actor: stranger})
	byAdmin := h.update(30*time.Minute, UpdateAccept, Action{Actor: admin})
	acc := h.update(time.Hour, UpdateAccept, Action{Actor: merchant})
	h.run()
	rec := h.result()

	byCustomer.refusedBy(t, ErrTypePermissionDenied)
	byStranger.refusedBy(t, ErrTypePermissionDenied)
	byAdmin.refusedBy(t, ErrTypePermissionDenied)
	if r := acc.ok(t); r.Status != entdispute.StatusAccepted || r.Settlement != entdispute.SettlementPending || r.Version != 3 {
		t.Errorf("accept answered %+v", r)
	}
	h.checkVersions()
	if got := h.statuses(); !reflect.DeepEqual(got, []entdispute.Status{"needs_response", "accepted", "accepted"}) {
		t.Errorf("saved statuses %v (a refused accept saved?)", got)
	}
	checkRefunded(t, h, at0(time.Hour))
	checkSteps(t, rec,
		step{kOpened, customerID, t0},
		step{kNotified, system, t0},
		step{kAccepted, merchantID, at0(time.Hour)},
		step{kRefunded, system, at0(time.Hour)},
	)
	if rec.Status != entdispute.StatusAccepted || rec.OutcomeNote != "the merchant accepted the dispute" {
		t.Errorf("result %+v", rec)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"accepted"}) {
		t.Errorf("DisputeStatus upserts %q", got)
	}
}

// 6b. A dispute the merchant opened cannot be accepted: the merchant
// withdraws it instead (FailedPrecondition), the customer is no merchant
// (PermissionDenied). The merchant, its claimant, then withdraws it.
func TestAcceptOfAMerchantDisputeIsRefused(t *testing.T) {
	h := newHarness(t, merchantInput())
	byMerchant := h.update(time.Hour, UpdateAccept, Action{Actor: merchant})
	byCustomer := h.update(time.Hour, UpdateAccept, Action{Actor: customer})
	wd := h.update(2*time.Hour, UpdateWithdraw, Action{Actor: merchant})
	h.run()
	rec := h.result()

	byMerchant.refusedBy(t, ErrTypeFailedPrecondition)
	byCustomer.refusedBy(t, ErrTypePermissionDenied)
	wd.ok(t)
	h.checkVersions()
	checkNoMoney(t, h, rec)
	checkSteps(t, rec,
		step{kOpened, merchantID, t0},
		step{kNotified, system, t0},
		step{kWithdrawn, merchantID, at0(2 * time.Hour)},
	)
	if rec.Status != entdispute.StatusWithdrawn || rec.OutcomeNote != "the merchant withdrew the dispute" || len(h.allSaves()) != 2 {
		t.Errorf("result %+v after %d saves", rec, len(h.allSaves()))
	}
}

// 7. The customer withdraws the dispute it opened: withdrawn, nothing
// moves. The merchant (the respondent) cannot withdraw it.
func TestClaimantWithdraws(t *testing.T) {
	h := newHarness(t, customerInput())
	byMerchant := h.update(30*time.Minute, UpdateWithdraw, Action{Actor: merchant})
	byAdmin := h.update(30*time.Minute, UpdateWithdraw, Action{Actor: admin})
	wd := h.update(time.Hour, UpdateWithdraw, Action{Actor: customer})
	h.run()
	rec := h.result()

	byMerchant.refusedBy(t, ErrTypePermissionDenied)
	byAdmin.refusedBy(t, ErrTypePermissionDenied)
	if r := wd.ok(t); !reflect.DeepEqual(r, rec) {
		t.Errorf("withdraw answered %+v, the run ended with %+v", r, rec)
	}
	h.checkVersions()
	checkNoMoney(t, h, rec)
	checkSteps(t, rec,
		step{kOpened, customerID, t0},
		step{kNotified, system, t0},
		step{kWithdrawn, customerID, at0(time.Hour)},
	)
	if rec.Status != entdispute.StatusWithdrawn || rec.OutcomeNote != "the customer withdrew the dispute" || rec.Version != 3 {
		t.Errorf("result %+v", rec)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"withdrawn"}) {
		t.Errorf("DisputeStatus upserts %q", got)
	}
}

// 8. Only an admin resolves, and only won or lost: the validator refuses
// the others before anything is saved.
func TestResolveByANonAdminIsRejected(t *testing.T) {
	h := newHarness(t, customerInput())
	byMerchant := h.update(time.Hour, UpdateResolve, Resolution{Actor: merchant, Outcome: "won"})
	byCustomer := h.update(time.Hour, UpdateResolve, Resolution{Actor: customer, Outcome: "lost"})
	// Admin is what makes an admin, not the account.
	notAdmin := h.update(time.Hour, UpdateResolve, Resolution{Actor: Actor{AccountID: adminID}, Outcome: "won"})
	badOutcome := h.update(time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "draw"})
	h.at(90*time.Minute, func() {
		if got := h.query(); got.Version != 2 || got.Status != entdispute.StatusNeedsResponse {
			t.Errorf("after the refused resolutions: %+v", got)
		}
	})
	ok := h.update(2*time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "won"})
	h.run()
	rec := h.result()

	byMerchant.refusedBy(t, ErrTypePermissionDenied)
	byCustomer.refusedBy(t, ErrTypePermissionDenied)
	notAdmin.refusedBy(t, ErrTypePermissionDenied)
	badOutcome.refusedBy(t, ErrTypeInvalidArgument)
	ok.ok(t)
	for _, s := range h.allSaves() {
		if s.At.Equal(at0(time.Hour)) {
			t.Errorf("a refused resolution saved %+v", s.Rec)
		}
	}
	if len(h.allSaves()) != 2 || rec.Status != entdispute.StatusWon || rec.OutcomeNote != "" {
		t.Errorf("result %+v after %d saves", rec, len(h.allSaves()))
	}
	checkSteps(t, rec, step{kOpened, customerID, t0}, step{kNotified, system, t0}, step{kWon, adminID, at0(2 * time.Hour)})
	checkNoMoney(t, h, rec)
}

// 8b. Once decided, the dispute takes no more actions: while the refund
// is being made (the gateway's first attempt got no answer), every action
// is rejected by its validator (FailedPrecondition: closed) and a gateway
// event changes nothing. Once the run has completed, the test environment
// no longer answers an update at all (a server answers that the workflow
// execution has completed); the query still answers the final state.
func TestActionsAfterTheOutcome(t *testing.T) {
	h := newHarness(t, customerInput())
	h.onRefund(func(n int, _ call[gateway.RefundRequest]) (gateway.RefundResult, error) {
		if n == 1 {
			return gateway.RefundResult{}, unavailable()
		}
		return gateway.RefundResult{Reference: gwRefundID, Status: gateway.RefundSucceeded}, nil
	})
	h.update(time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "lost"})
	during := time.Hour + 100*time.Millisecond // the refund's retry is due at +500 ms
	late := []*updateResult{
		h.update(during, UpdateAccept, Action{Actor: merchant}),
		h.update(during, UpdateWithdraw, Action{Actor: customer}),
		h.evidence(during, merchant, evA, true),
		h.evidence(during, customer, evX, false),
		h.update(during, UpdateResolve, Resolution{Actor: admin, Outcome: "won"}),
	}
	h.signal(during, GatewayEvent{EventID: "evt_late", Reference: gwDispute, Status: gateway.DisputeWon})
	h.at(during+time.Millisecond, func() {
		if got := h.query(); got.Status != entdispute.StatusLost || got.Settlement != entdispute.SettlementPending || got.Version != 3 {
			t.Errorf("while the refund is made: %+v", got)
		}
	})
	h.run()
	rec := h.result()

	for _, u := range late {
		u.refusedBy(t, ErrTypeFailedPrecondition)
		if !strings.Contains(u.rejected.Error(), "closed") {
			t.Errorf("%s refused with %v", u.name, u.rejected)
		}
	}
	if rs := h.allRefunds(); len(rs) != 2 || rs[1].Req != refundReq() {
		t.Errorf("gateway refunds %+v", rs)
	}
	if rec.Status != entdispute.StatusLost || rec.Settlement != entdispute.SettlementRefunded || rec.Version != 4 || len(h.allSaves()) != 3 {
		t.Errorf("result %+v after %d saves", rec, len(h.allSaves()))
	}

	// After completion.
	after := &updateResult{name: "resolve after completion"}
	h.updateNow(after, UpdateResolve, Resolution{Actor: admin, Outcome: "won"})
	if after.done || after.accepted {
		t.Errorf("an update after completion was answered: %+v", after)
	}
	if got := h.query(); !reflect.DeepEqual(got, rec) {
		t.Errorf("query after completion %+v, want the result", got)
	}
	if len(h.allSaves()) != 3 {
		t.Errorf("saves after completion: %+v", h.allSaves())
	}
}

// 8c. Two decisions at the same instant: both pass their validators, the
// first saved wins and the second's handler, checking again, answers
// FailedPrecondition; one outcome is saved.
func TestConcurrentDecisionsOneWins(t *testing.T) {
	h := newHarness(t, customerInput())
	h.refundsSucceed()
	var acc, wd *updateResult
	h.at(time.Hour, func() {
		acc, wd = &updateResult{name: "accept"}, &updateResult{name: "withdraw"}
		h.updateNow(acc, UpdateAccept, Action{Actor: merchant})
		h.updateNow(wd, UpdateWithdraw, Action{Actor: customer})
	})
	h.run()
	rec := h.result()

	acc.ok(t)
	wd.failedWith(t, ErrTypeFailedPrecondition)
	closing := 0
	for _, s := range h.allSaves() {
		if s.Rec.Status == entdispute.StatusWithdrawn {
			t.Errorf("the losing withdrawal was saved: %+v", s.Rec)
		}
		if s.Rec.Status == entdispute.StatusAccepted && s.Rec.Settlement == entdispute.SettlementPending {
			closing++
		}
	}
	if closing != 1 || rec.Status != entdispute.StatusAccepted {
		t.Errorf("%d closing saves, result %+v", closing, rec)
	}
	checkRefunded(t, h, at0(time.Hour))
}

// 9. A party's evidence is final once submitted: more of it, staged or
// submitted, is refused (FailedPrecondition) and nothing is saved.
func TestEvidenceAfterFinalSubmissionIsRefused(t *testing.T) {
	h := newHarness(t, customerInput())
	sub := h.evidence(time.Hour, merchant, evC, true)
	again := h.evidence(2*time.Hour, merchant, evA, false)
	resubmit := h.evidence(2*time.Hour, merchant, evB, true)
	h.update(3*time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "won"})
	h.run()
	rec := h.result()

	sub.ok(t)
	again.refusedBy(t, ErrTypeFailedPrecondition)
	resubmit.refusedBy(t, ErrTypeFailedPrecondition)
	if rec.Evidence != evC || !rec.EvidenceSubmitted || len(h.allSaves()) != 3 {
		t.Errorf("result %+v after %d saves, want the submitted evidence kept", rec, len(h.allSaves()))
	}
}

// 9b. Evidence over the limits is refused by the validator
// (InvalidArgument): a field of 20001 characters (counted in runes: 20000
// two-byte runes are within), every field over it at once.
func TestEvidenceOverTheLimitsIsRefused(t *testing.T) {
	runes := func(n int) string { return strings.Repeat("é", n) }
	h := newHarness(t, customerInput())
	long := h.evidence(time.Hour, merchant, disputes.Evidence{Explanation: runes(20001)}, false)
	longLast := h.evidence(time.Hour, merchant, disputes.Evidence{UncategorizedText: runes(20001)}, true)
	f := runes(25001)
	total := h.evidence(time.Hour, merchant, disputes.Evidence{Explanation: f, ProductDescription: f, CustomerCommunication: f,
		ShippingTrackingNumber: f, RefundPolicy: f, UncategorizedText: f}, false)
	claimant := h.evidence(time.Hour, customer, disputes.Evidence{RefundPolicy: runes(20001)}, false)
	atLimit := disputes.Evidence{Explanation: runes(20000), ProductDescription: runes(20000), CustomerCommunication: runes(20000),
		ShippingTrackingNumber: runes(20000), RefundPolicy: runes(20000), UncategorizedText: runes(20000)}
	within := h.evidence(2*time.Hour, merchant, atLimit, false)
	h.update(3*time.Hour, UpdateWithdraw, Action{Actor: customer})
	h.run()
	rec := h.result()

	for _, u := range []*updateResult{long, longLast, total, claimant} {
		u.refusedBy(t, ErrTypeInvalidArgument)
	}
	if m := long.rejected.Error(); !strings.Contains(m, "evidence.explanation") {
		t.Errorf("refused with %q, want the field named", m)
	}
	if m := longLast.rejected.Error(); !strings.Contains(m, "evidence.uncategorized_text") {
		t.Errorf("refused with %q, want the field named", m)
	}
	if r := within.ok(t); r.Evidence != atLimit {
		t.Errorf("evidence at the limits not saved as sent")
	}
	if len(h.allSaves()) != 3 || rec.Evidence != atLimit {
		t.Errorf("%d saves, want the notice, the evidence within the limits and the withdrawal", len(h.allSaves()))
	}
}

// 9c. The claimant stages and submits its own evidence: saved as the
// claimant's, the status unchanged (the respondent's submission moves it);
// its submission is final too. The claimant's saves wake the run, but do
// not move the reminders.
func TestClaimantEvidenceDoesNotChangeTheStatus(t *testing.T) {
	h := newHarness(t, customerInput())
	staged := h.evidence(time.Hour, customer, evA, false)
	submitted := h.evidence(2*time.Hour, customer, evX, true)
	again := h.evidence(3*time.Hour, customer, evB, false)
	respondent := h.evidence(4*time.Hour, merchant, evC, false)
	h.evidence(3*24*time.Hour, customer, evB, false) // refused too, a day before the reminder
	res := h.update(due.Sub(t0)-12*time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "won"})
	h.run()
	rec := h.result()

	if r := staged.ok(t); r.ClaimantEvidence != evA || r.ClaimantEvidenceSubmitted || r.Status != entdispute.StatusNeedsResponse || r.Evidence != (disputes.Evidence{}) {
		t.Errorf("claimant staging answered %+v", r)
	}
	if r := submitted.ok(t); r.ClaimantEvidence != evX || !r.ClaimantEvidenceSubmitted || r.Status != entdispute.StatusNeedsResponse || r.EvidenceSubmitted {
		t.Errorf("claimant submission answered %+v", r)
	}
	again.refusedBy(t, ErrTypeFailedPrecondition)
	if r := respondent.ok(t); r.Evidence != evC || r.ClaimantEvidence != evX || r.Status != entdispute.StatusNeedsResponse {
		t.Errorf("the respondent's staging after the claimant's submission answered %+v", r)
	}
	res.ok(t)
	h.checkVersions()
	checkSteps(t, rec,
		step{kOpened, customerID, t0},
		step{kNotified, system, t0},
		step{kStaged, customerID, at0(time.Hour)},
		step{kSubmitted, customerID, at0(2 * time.Hour)},
		step{kStaged, merchantID, at0(4 * time.Hour)},
		step{kDueSoon, system, due.Add(-72 * time.Hour)},
		step{kDueSoon, system, due.Add(-24 * time.Hour)},
		step{kWon, adminID, due.Add(-12 * time.Hour)},
	)
	if n := rec.Timeline[3].Note; n != "by the customer" {
		t.Errorf("claimant's submission noted %q", n)
	}
	checkNoMoney(t, h, rec)
}

// 9d. Who is no party to the payment submits no evidence
// (PermissionDenied): an admin, another account, no account.
func TestEvidenceByANonPartyIsRefused(t *testing.T) {
	h := newHarness(t, customerInput())
	byAdmin := h.evidence(time.Hour, admin, evA, false)
	byStranger := h.evidence(time.Hour, stranger, evA, true)
	byNobody := h.evidence(time.Hour, Actor{Admin: true}, evA, false)
	h.update(2*time.Hour, UpdateWithdraw, Action{Actor: customer})
	h.run()
	rec := h.result()

	byAdmin.refusedBy(t, ErrTypePermissionDenied)
	byStranger.refusedBy(t, ErrTypePermissionDenied)
	byNobody.refusedBy(t, ErrTypePermissionDenied)
	if len(h.allSaves()) != 2 || rec.Evidence != (disputes.Evidence{}) || rec.ClaimantEvidence != (disputes.Evidence{}) {
		t.Errorf("result %+v after %d saves", rec, len(h.allSaves()))
	}
}

// An action sent with the start, before the dispute is stored, is
// refused (FailedPrecondition: being opened) rather than queued.
func TestActionBeforeTheDisputeIsStoredIsRefused(t *testing.T) {
	h := newHarness(t, customerInput())
	early := h.evidence(0, merchant, evA, false)
	h.update(time.Hour, UpdateWithdraw, Action{Actor: customer})
	h.run()
	h.result()
	early.refusedBy(t, ErrTypeFailedPrecondition)
	if !strings.Contains(early.rejected.Error(), "being opened") {
		t.Errorf("refused with %v", early.rejected)
	}
}

// gatewayTakes answers every UpdateDispute with the dispute as the
// gateway holds it, deadline dueBy.
func gatewayTakes(dueBy time.Time) func(int, call[gateway.DisputeUpdateRequest]) (gateway.DisputeResult, error) {
	return func(_ int, c call[gateway.DisputeUpdateRequest]) (gateway.DisputeResult, error) {
		st := gateway.DisputeNeedsResponse
		if c.Req.Submit {
			st = gateway.DisputeUnderReview
		}
		return gateway.DisputeResult{Reference: gwDispute, PaymentReference: payRef, Status: st, Amount: netAmount, Currency: currency, DueBy: dueBy}, nil
	}
}

// evidenceReq is the gateway request that carries ev for the save of
// version v.
func evidenceReq(ev disputes.Evidence, submit bool, v int) gateway.DisputeUpdateRequest {
	return gateway.DisputeUpdateRequest{
		Gateway: gwName, IdempotencyKey: fmt.Sprintf("%s/evidence/%d", wfID, v), Reference: gwDispute, Currency: currency,
		Evidence: gateway.DisputeEvidence{
			Explanation: ev.Explanation, ProductDescription: ev.ProductDescription, CustomerCommunication: ev.CustomerCommunication,
			ShippingTrackingNumber: ev.ShippingTrackingNumber, RefundPolicy: ev.RefundPolicy, UncategorizedText: ev.UncategorizedText,
		},
		Submit: submit,
	}
}

// 10. A network dispute is reminded about, but its deadline decides
// nothing here (the gateway says what happened): past due_by it still
// waits; the network's "lost" then closes it with the funds withdrawn (the
// network took them at the opening: no journal, no refund).
func TestNetworkDisputeRemindsButHasNoDefaultDeadline(t *testing.T) {
	h := newHarness(t, networkInput())
	h.at(networkDue.Sub(t0)+24*time.Hour, func() {
		got := h.query()
		if got.Status != entdispute.StatusNeedsResponse || got.Version != 4 {
			t.Errorf("a day past due_by: %+v", got)
		}
		for _, e := range got.Timeline {
			if e.Kind == kMissed || e.Kind == kLost || e.Kind == kWon {
				t.Errorf("a network dispute decided by its deadline: %+v", got.Timeline)
			}
		}
	})
	decided := networkDue.Add(5 * 24 * time.Hour)
	h.signal(decided.Sub(t0), GatewayEvent{EventID: "evt_lost", Type: "charge.dispute.closed", Reference: gwDispute, Status: gateway.DisputeLost})
	h.run()
	rec := h.result()

	checkCreate(t, h, networkInput())
	h.checkVersions()
	checkSteps(t, rec,
		step{kOpened, network, t0},
		step{kFundsOut, network, t0},
		step{kNotified, system, t0},
		step{kDueSoon, system, networkDue.Add(-72 * time.Hour)},
		step{kDueSoon, system, networkDue.Add(-24 * time.Hour)},
		step{kLost, network, decided},
	)
	if rec.Status != entdispute.StatusLost || rec.Settlement != entdispute.SettlementWithdrawn || rec.Version != 5 ||
		rec.OutcomeNote != "the card network decided for the cardholder" || rec.AmountHeld != netAmount {
		t.Errorf("result %+v", rec)
	}
	if rs := h.allRefunds(); len(rs) != 0 {
		t.Errorf("gateway refunds %+v", rs)
	}
	if js := h.journals(); len(js) != 0 {
		t.Errorf("journals %+v, want none (the network took the funds at the opening)", js)
	}
	// Two reminders' timers, none for the deadline.
	if want := []time.Duration{7 * 24 * time.Hour, 48 * time.Hour}; !reflect.DeepEqual(h.timers, want) {
		t.Errorf("timers %v, want %v", h.timers, want)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"lost"}) {
		t.Errorf("DisputeStatus upserts %q", got)
	}
}

// 10b. The merchant's evidence of a network dispute goes to the gateway
// first, with a key per save; its submission puts the dispute under
// review; the network's "won" closes it and gives the funds back
// (reinstated, the reinstatement journal of the network's amount).
func TestNetworkEvidenceGoesToTheGatewayThenWon(t *testing.T) {
	h := newHarness(t, networkInput())
	later := networkDue.Add(48 * time.Hour) // the gateway's new due_by
	h.onUpdateDispute(gatewayTakes(later))
	staged := h.evidence(time.Hour, merchant, evA, false)
	sub := h.evidence(2*time.Hour, merchant, evC, true)
	won := 5 * 24 * time.Hour
	h.signal(won, GatewayEvent{EventID: "evt_won", Type: "charge.dispute.closed", Reference: gwDispute, Status: gateway.DisputeWon})
	h.run()
	rec := h.result()

	us := h.allUpdates()
	if len(us) != 2 || us[0].Req != evidenceReq(evA, false, 3) || us[1].Req != evidenceReq(evC, true, 4) ||
		!us[0].At.Equal(at0(time.Hour)) || !us[1].At.Equal(at0(2*time.Hour)) || us[0].Local {
		t.Fatalf("gateway UpdateDispute calls %+v, want the staging (key .../evidence/3) then the submission (.../evidence/4)", us)
	}
	if r := staged.ok(t); r.Version != 3 || r.Evidence != evA || !r.ResponseDueBy.Equal(later) || r.Status != entdispute.StatusNeedsResponse {
		t.Errorf("staging answered %+v, want the gateway's due_by", r)
	}
	if r := sub.ok(t); r.Version != 4 || r.Status != entdispute.StatusUnderReview || !r.EvidenceSubmitted {
		t.Errorf("submission answered %+v", r)
	}
	h.checkVersions()
	checkSteps(t, rec,
		step{kOpened, network, t0},
		step{kFundsOut, network, t0},
		step{kNotified, system, t0},
		step{kStaged, merchantID, at0(time.Hour)},
		step{kSubmitted, merchantID, at0(2 * time.Hour)},
		step{kReview, system, at0(2 * time.Hour)},
		step{kWon, network, at0(won)},
		step{kFundsBack, network, at0(won)},
	)
	if rec.Status != entdispute.StatusWon || rec.Settlement != entdispute.SettlementReinstated || rec.Version != 5 {
		t.Errorf("result %+v", rec)
	}
	saves := h.allSaves()
	last := saves[len(saves)-1]
	if want := store.DisputeFundsReinstatedJournal(rec, at0(won)); last.Journal == nil || !reflect.DeepEqual(*last.Journal, *want) {
		t.Errorf("journal %+v, want %+v", last.Journal, want)
	}
	if js := h.journals(); len(js) != 1 || js[0].ID != disputeID+"/funds_reinstated" || !reflect.DeepEqual(js[0].Lines, reinstatedLines) {
		t.Errorf("journals %+v, want only the reinstatement of %d", js, netAmount)
	}
	if rs := h.allRefunds(); len(rs) != 0 {
		t.Errorf("gateway refunds %+v", rs)
	}
	if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"under_review", "won"}) {
		t.Errorf("DisputeStatus upserts %q", got)
	}
	var dues []time.Time
	for _, a := range h.allAttrs() {
		if a.Due != nil {
			dues = append(dues, *a.Due)
		}
	}
	if len(dues) != 1 || !dues[0].Equal(later) {
		t.Errorf("ResponseDueBy upserts %v, want the gateway's %v", dues, later)
	}
}

// 10c. The network decides for the cardholder after the merchant's
// evidence: lost, the funds stay withdrawn; no journal, no refund.
func TestNetworkDisputeLost(t *testing.T) {
	h := newHarness(t, networkInput())
	h.onUpdateDispute(gatewayTakes(networkDue))
	h.evidence(time.Hour, merchant, evC, true)
	h.signal(3*24*time.Hour, GatewayEvent{EventID: "evt_lost", Type: "charge.dispute.closed", Reference: gwDispute, Status: gateway.DisputeLost})
	h.run()
	rec := h.result()

	h.checkVersions()
	if rec.Status != entdispute.StatusLost || rec.Settlement != entdispute.SettlementWithdrawn || rec.Version != 4 {
		t.Errorf("result %+v", rec)
	}
	if rs := h.allRefunds(); len(rs) != 0 {
		t.Errorf("gateway refunds %+v", rs)
	}
	if js := h.journals(); len(js) != 0 {
		t.Errorf("journals %+v", js)
	}
	checkSteps(t, rec,
		step{kOpened, network, t0},
		step{kFundsOut, network, t0},
		step{kNotified, system, t0},
		step{kSubmitted, merchantID, at0(time.Hour)},
		step{kReview, system, at0(time.Hour)},
		step{kLost, network, at0(3 * 24 * time.Hour)},
	)
}

// 10d. The guards of the gateway's events: one about another dispute is
// ignored (nothing saved, even a "won"); an event id is applied once (its
// redelivery saves nothing); a new due_by moves the deadline (and its
// attribute) and is noted.
func TestNetworkEventGuards(t *testing.T) {
	h := newHarness(t, networkInput())
	h.signal(time.Hour, GatewayEvent{EventID: "evt_other", Type: "charge.dispute.closed", Reference: "dp_gw_other", Status: gateway.DisputeWon})
	h.at(90*time.Minute, func() {
		if got := h.query(); got.Version != 2 || got.Status != entdispute.StatusNeedsResponse {
			t.Errorf("after an event about another dispute: %+v", got)
		}
	})
	newDue := networkDue.Add(24 * time.Hour)
	review := GatewayEvent{EventID: "evt_review", Type: "charge.dispute.updated", Reference: gwDispute, Status: gateway.DisputeUnderReview, DueBy: newDue}
	h.signal(2*time.Hour, review, review)
	h.signal(3*time.Hour, review)
	h.signal(4*time.Hour, GatewayEvent{EventID: "evt_won", Type: "charge.dispute.closed", Reference: gwDispute, Status: gateway.DisputeWon},
		GatewayEvent{EventID: "evt_won", Type: "charge.dispute.closed", Reference: gwDispute, Status: gateway.DisputeWon})
	h.run()
	rec := h.result()

	h.checkVersions()
	saves := h.allSaves()
	wantAt := []time.Time{t0, at0(2 * time.Hour), at0(4 * time.Hour)}
	if len(saves) != len(wantAt) {
		t.Fatalf("%d saves, want %d (the notice, the review once, the outcome)", len(saves), len(wantAt))
	}
	for i, s := range saves {
		if !s.At.Equal(wantAt[i]) {
			t.Errorf("save %d at t0+%v, want t0+%v", i, s.At.Sub(t0), wantAt[i].Sub(t0))
		}
	}
	if r := saves[1].Rec; r.Status != entdispute.StatusUnderReview || !r.ResponseDueBy.Equal(newDue) {
		t.Errorf("the review saved %+v", r)
	}
	checkSteps(t, rec,
		step{kOpened, network, t0},
		step{kFundsOut, network, t0},
		step{kNotified, system, t0},
		step{kReview, network, at0(2 * time.Hour)},
		step{kGwUpdated, network, at0(2 * time.Hour)},
		step{kWon, network, at0(4 * time.Hour)},
		step{kFundsBack, network, at0(4 * time.Hour)},
	)
	if js := h.journals(); len(js) != 1 || js[0].ID != disputeID+"/funds_reinstated" {
		t.Errorf("journals %+v, want the reinstatement once", js)
	}
}

// 10e. A new due_by from the gateway moves the reminders: none at the old
// deadline's times, both at the new one's.
func TestNetworkDueByMovesTheReminders(t *testing.T) {
	h := newHarness(t, networkInput())
	newDue := networkDue.Add(10 * 24 * time.Hour)
	h.signal(time.Hour, GatewayEvent{EventID: "evt_due", Type: "charge.dispute.updated", Reference: gwDispute, Status: gateway.DisputeNeedsResponse, DueBy: newDue})
	h.signal(newDue.Sub(t0)+time.Hour, GatewayEvent{EventID: "evt_lost", Reference: gwDispute, Status: gateway.DisputeLost})
	h.run()
	rec := h.result()

	checkSteps(t, rec,
		step{kOpened, network, t0},
		step{kFundsOut, network, t0},
		step{kNotified, system, t0},
		step{kGwUpdated, network, at0(time.Hour)},
		step{kDueSoon, system, newDue.Add(-72 * time.Hour)},
		step{kDueSoon, system, newDue.Add(-24 * time.Hour)},
		step{kLost, network, newDue.Add(time.Hour)},
	)
	if !rec.ResponseDueBy.Equal(newDue) || rec.Status != entdispute.StatusLost || rec.Settlement != entdispute.SettlementWithdrawn {
		t.Errorf("result %+v", rec)
	}
}

// 10f. What belongs to a dispute opened on the platform is refused on a
// network dispute (FailedPrecondition): the customer's evidence, an
// admin's resolution, the merchant's concession, a withdrawal.
func TestNetworkDisputeRefusesThePlatformsActions(t *testing.T) {
	h := newHarness(t, networkInput())
	custEvidence := h.evidence(time.Hour, customer, evX, false)
	resolve := h.update(time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "lost"})
	accept := h.update(time.Hour, UpdateAccept, Action{Actor: customer})
	wdCustomer := h.update(time.Hour, UpdateWithdraw, Action{Actor: customer})
	wdMerchant := h.update(time.Hour, UpdateWithdraw, Action{Actor: merchant})
	h.signal(2*time.Hour, GatewayEvent{EventID: "evt_won", Reference: gwDispute, Status: gateway.DisputeWon})
	h.run()
	rec := h.result()

	for _, u := range []*updateResult{custEvidence, resolve, wdCustomer, wdMerchant} {
		u.refusedBy(t, ErrTypeFailedPrecondition)
	}
	accept.refusedBy(t, ErrTypePermissionDenied)
	if us := h.allUpdates(); len(us) != 0 {
		t.Errorf("gateway UpdateDispute calls %+v", us)
	}
	if rec.Status != entdispute.StatusWon || len(h.allSaves()) != 2 {
		t.Errorf("result %+v after %d saves", rec, len(h.allSaves()))
	}
}

// 10g. Evidence the gateway refuses (FailedPrecondition, with the
// gateway's message) or does not take in time (Unavailable) is not saved.
func TestNetworkEvidenceTheGatewayDoesNotTake(t *testing.T) {
	h := newHarness(t, networkInput())
	h.onUpdateDispute(func(n int, c call[gateway.DisputeUpdateRequest]) (gateway.DisputeResult, error) {
		switch n {
		case 1:
			return gateway.DisputeResult{}, invalidGatewayError("evidence_too_large", "the evidence is too large")
		case 2:
			return gateway.DisputeResult{}, temporal.NewNonRetryableApplicationError("deadline", "GatewayTimeout", nil)
		}
		return gatewayTakes(networkDue)(n, c)
	})
	refused := h.evidence(time.Hour, merchant, evA, true)
	noAnswer := h.evidence(2*time.Hour, merchant, evA, true)
	taken := h.evidence(3*time.Hour, merchant, evA, true)
	h.signal(4*time.Hour, GatewayEvent{EventID: "evt_won", Reference: gwDispute, Status: gateway.DisputeWon})
	h.run()
	rec := h.result()

	refused.failedWith(t, ErrTypeFailedPrecondition)
	// Only the gateway's code reaches the caller, never its text.
	if msg := refused.err.Error(); !strings.Contains(msg, "(evidence_too_large)") || strings.Contains(msg, "the evidence is too large") {
		t.Errorf("refusal %v, want the gateway's code and not its text", refused.err)
	}
	noAnswer.failedWith(t, ErrTypeUnavailable)
	if r := taken.ok(t); r.Version != 3 || r.Status != entdispute.StatusUnderReview {
		t.Errorf("evidence taken answered %+v", r)
	}
	h.checkVersions()
	if len(h.allSaves()) != 3 || rec.Status != entdispute.StatusWon {
		t.Errorf("result %+v after %d saves", rec, len(h.allSaves()))
	}
}

// A network dispute of more than the payment had left holds what was
// left and asks operators to look from the start.
func TestNetworkDisputeOfMoreThanIsLeftAsksForAttention(t *testing.T) {
	h := newHarness(t, networkInput())
	h.heldLess = 1000
	h.signal(time.Hour, GatewayEvent{EventID: "evt_lost", Reference: gwDispute, Status: gateway.DisputeLost})
	h.run()
	rec := h.result()
	if got := h.attentionAttrs(); !reflect.DeepEqual(got, []bool{true}) || !h.allAttrs()[0].At.Equal(t0) {
		t.Errorf("NeedsAttention upserts %+v, want true at the opening", h.allAttrs())
	}
	if !rec.NeedsAttention || rec.AmountHeld != 1000 || rec.Status != entdispute.StatusLost {
		t.Errorf("result %+v", rec)
	}
}

// A reminder whose time is not after the opening is not sent: a network
// dispute due in two days is reminded once, 24 hours before.
func TestReminderBeforeTheOpeningIsSkipped(t *testing.T) {
	in := networkInput()
	in.ResponseDueBy = t0.Add(48 * time.Hour)
	h := newHarness(t, in)
	h.signal(72*time.Hour, GatewayEvent{EventID: "evt_lost", Reference: gwDispute, Status: gateway.DisputeLost})
	h.run()
	rec := h.result()
	checkSteps(t, rec,
		step{kOpened, network, t0},
		step{kFundsOut, network, t0},
		step{kNotified, system, t0},
		step{kDueSoon, system, t0.Add(24 * time.Hour)},
		step{kLost, network, t0.Add(72 * time.Hour)},
	)
}

// 11. The payment refuses the dispute: await_recorded (waiting from the
// start) answers the refusal, its type and message; the run completes
// without an error and without a save; DisputeStatus says "refused".
func TestRefusedOpening(t *testing.T) {
	for _, tc := range []struct{ typ, msg string }{
		{activities.ErrTypeAlreadyExists, "payment pay_01test has an open dispute, dp_other: follow that one"},
		{activities.ErrTypeFailedPrecondition, "payment pay_01test is refunded or disputed in full already: nothing is left to dispute"},
		{activities.ErrTypeNotFound, "payment not found"},
		{activities.ErrTypeInvalidArgument, "the payment is in USD, not EUR"},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			h := newHarness(t, customerInput())
			h.createErr = temporal.NewNonRetryableApplicationError(tc.msg, tc.typ, nil)
			recorded := h.update(0, UpdateAwaitRecorded, nil)
			h.run()
			if !h.env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			if err := h.env.GetWorkflowError(); err != nil {
				t.Fatalf("workflow error %v, want the run to complete (the refusal is the update's answer)", err)
			}
			var rec store.DisputeRecord
			if err := h.env.GetWorkflowResult(&rec); err != nil || !reflect.DeepEqual(rec, store.DisputeRecord{}) {
				t.Fatalf("result %+v (err %v), want no dispute", rec, err)
			}
			recorded.failedWith(t, tc.typ)
			var appErr *temporal.ApplicationError
			if errors.As(recorded.err, &appErr); appErr.Message() != tc.msg || !appErr.NonRetryable() {
				t.Errorf("await_recorded answered %v, want %q", recorded.err, tc.msg)
			}
			if n := len(h.allCreates()); n != 1 {
				t.Errorf("%d CreateDispute calls, want 1 (a refusal is final)", n)
			}
			if s := h.allSaves(); len(s) != 0 {
				t.Errorf("saves %+v", s)
			}
			if rs, us := h.allRefunds(), h.allUpdates(); len(rs)+len(us) != 0 {
				t.Errorf("gateway calls %+v %+v", rs, us)
			}
			if got := h.statusAttrs(); !reflect.DeepEqual(got, []string{"refused"}) {
				t.Errorf("DisputeStatus upserts %q", got)
			}
			if !h.env.Now().Equal(t0) {
				t.Errorf("the refused run ended at t0+%v, want at once", h.env.Now().Sub(t0))
			}
		})
	}
}

// 12. The gateway refuses the customer's refund for good (or answers it
// failed): the dispute keeps its outcome with the settlement pending and
// no journal, marked for operators (refund_failed, NeedsAttention), and
// the run completes.
func TestGatewayRefusesTheSettlementRefund(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   func() (gateway.RefundResult, error)
		attempts int
		reason   string
	}{
		{"refused", func() (gateway.RefundResult, error) {
			return gateway.RefundResult{}, invalidGatewayError("charge_disputed", "the charge is disputed")
		}, 1, "the gateway refused the dispute's refund: "},
		{"answered failed", func() (gateway.RefundResult, error) {
			return gateway.RefundResult{Reference: gwRefundID, Status: gateway.RefundFailed, FailureCode: "expired_or_canceled_card"}, nil
		}, 1, "the gateway answered the dispute's refund failed expired_or_canceled_card"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, customerInput())
			h.onRefund(func(int, call[gateway.RefundRequest]) (gateway.RefundResult, error) { return tc.answer() })
			h.update(time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "lost"})
			h.run()
			rec := h.result()

			if rs := h.allRefunds(); len(rs) != tc.attempts || rs[0].Req != refundReq() {
				t.Errorf("gateway refunds %+v", rs)
			}
			h.checkVersions()
			if rec.Status != entdispute.StatusLost || rec.Settlement != entdispute.SettlementPending || !rec.NeedsAttention ||
				!strings.HasPrefix(rec.AttentionReason, tc.reason) || rec.RefundReference != "" || rec.Version != 4 {
				t.Errorf("result %+v", rec)
			}
			if js := h.journals(); len(js) != 0 {
				t.Errorf("journals %+v, want none", js)
			}
			checkSteps(t, rec,
				step{kOpened, customerID, t0},
				step{kNotified, system, t0},
				step{kLost, adminID, at0(time.Hour)},
				step{kRefFailed, system, at0(time.Hour)},
			)
			if n := rec.Timeline[3].Note; n != rec.AttentionReason {
				t.Errorf("refund_failed noted %q, want the attention reason", n)
			}
			if got := h.attentionAttrs(); !reflect.DeepEqual(got, []bool{true}) {
				t.Errorf("NeedsAttention upserts %v", got)
			}
		})
	}
}

// 13. History stays small. The test environment does not keep a history
// (GetInfo's history length is whatever SetCurrentHistoryLength set), so
// this counts what makes one: a full 7-day course (a customer's dispute,
// two reminders, the deadline, the refund) starts a timer per timed step,
// six local activities (markers), one activity and one upsert, and no
// other timer (no polling).
func TestHistoryOfAFullCourseStaysSmall(t *testing.T) {
	h := newHarness(t, customerInput())
	h.refundsSucceed()
	h.run()
	rec := h.result()
	if rec.Settlement != entdispute.SettlementRefunded {
		t.Fatalf("result %+v", rec)
	}
	h.mu.Lock()
	timers, canceled, locals, acts, attrs := len(h.timers), h.canceled, h.localActs, h.acts, len(h.attrs)
	h.mu.Unlock()
	if timers != 3 || canceled != 0 || locals != 6 || acts != 1 || attrs != 1 {
		t.Errorf("%d timers (%d canceled), %d local activities, %d activities, %d upserts; want 3, 0, 6, 1, 1",
			timers, canceled, locals, acts, attrs)
	}
	// An estimate of the server's history: started and completed, a
	// workflow task (3 events) per wake (the start, each timer, the
	// activity's answer), 2 events a timer, a marker a local activity, 3
	// events the activity, 1 the upsert.
	wakes := 1 + timers + acts
	estimate := 2 + 3*wakes + 2*timers + locals + 3*acts + attrs
	t.Logf("estimated history: %d events", estimate)
	if estimate > 50 {
		t.Errorf("estimated history of %d events", estimate)
	}
}

// 13b. Every wake of the run (an update, a signal) before a timed step
// starts a new timer for that step and leaves the earlier one running: it
// fires later for nothing (a TimerStarted, a TimerFired and a workflow
// task each). The SDK's AwaitWithTimeout (v1.51, the flag
// SDKFlagCancelAwaitTimerOnCondition is off by default) does not cancel
// its timer when the condition wins.
func TestWakesLeaveNoTimerBehind(t *testing.T) {
	h := newHarness(t, customerInput())
	h.refundsSucceed()
	for i := 1; i <= 5; i++ {
		h.evidence(time.Duration(i)*time.Hour, merchant, disputes.Evidence{Explanation: fmt.Sprint("draft ", i)}, false)
	}
	h.run()
	h.result()
	h.mu.Lock()
	timers, canceled := len(h.timers), h.canceled
	h.mu.Unlock()
	// Three timed steps (two reminders, the deadline): at most three
	// timers may run out; the others must have been canceled (or never
	// started).
	if timers-canceled > 3 {
		t.Errorf("%d timers started, %d canceled: %d ran out for 3 timed steps", timers, canceled, timers-canceled)
	}
}

// 14. A run that declares a logic version this code does not know fails
// its workflow task (a panic) before doing anything; the current logic
// (and 0, read as it) runs.
func TestUnknownLogicPanicsTheTask(t *testing.T) {
	for _, logic := range []int{int(CurrentLogic) + 1, 7, -1} {
		in := customerInput()
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
	for _, logic := range []workflow.Version{CurrentLogic, 0} {
		in := customerInput()
		in.Logic = logic
		h := newHarness(t, in)
		h.update(time.Hour, UpdateWithdraw, Action{Actor: customer})
		h.run()
		if rec := h.result(); rec.Status != entdispute.StatusWithdrawn {
			t.Fatalf("logic %d: record %+v", logic, rec)
		}
	}
}

// The key of a network dispute's evidence call names the save it is for
// ("one key per save: a retry of this call is the same request"). When
// the gateway did not answer, nothing was saved, and the merchant's next
// evidence, different, goes out with the same key: a gateway that keeps
// keys (Stripe, 24 hours) refuses a key reused with other parameters, or
// answers the first request's result; the merchant cannot change its
// evidence until something else is saved.
func TestNetworkEvidenceAfterNoAnswerGetsItsOwnKey(t *testing.T) {
	h := newHarness(t, networkInput())
	h.onUpdateDispute(func(n int, c call[gateway.DisputeUpdateRequest]) (gateway.DisputeResult, error) {
		if n == 1 {
			return gateway.DisputeResult{}, temporal.NewNonRetryableApplicationError("deadline", "GatewayTimeout", nil)
		}
		return gatewayTakes(networkDue)(n, c)
	})
	first := h.evidence(time.Hour, merchant, evA, false)
	second := h.evidence(2*time.Hour, merchant, evC, true)
	h.signal(3*time.Hour, GatewayEvent{EventID: "evt_won", Reference: gwDispute, Status: gateway.DisputeWon})
	h.run()
	h.result()
	first.failedWith(t, ErrTypeUnavailable)
	second.ok(t)
	us := h.allUpdates()
	if len(us) != 2 {
		t.Fatalf("gateway UpdateDispute calls %+v", us)
	}
	if us[0].Req.IdempotencyKey == us[1].Req.IdempotencyKey {
		t.Errorf("two different evidence requests (%v, submit %v; %v, submit %v) with one key %q",
			us[0].Req.Evidence.Explanation, us[0].Req.Submit, us[1].Req.Evidence.Explanation, us[1].Req.Submit, us[0].Req.IdempotencyKey)
	}
}

// A gateway event that changes nothing (an under_review about a dispute
// under review already, the same due_by) saves nothing: Stripe sends
// charge.dispute.updated for many changes the dispute does not keep.
func TestNetworkEventThatChangesNothingSavesNothing(t *testing.T) {
	h := newHarness(t, networkInput())
	h.onUpdateDispute(gatewayTakes(time.Time{}))
	h.evidence(time.Hour, merchant, evC, true)
	h.signal(2*time.Hour, GatewayEvent{EventID: "evt_upd", Type: "charge.dispute.updated", Reference: gwDispute, Status: gateway.DisputeUnderReview})
	h.signal(3*time.Hour, GatewayEvent{EventID: "evt_won", Reference: gwDispute, Status: gateway.DisputeWon})
	h.run()
	h.result()
	for _, s := range h.allSaves() {
		if s.At.Equal(at0(2 * time.Hour)) {
			t.Errorf("an event that changes nothing saved version %d: %+v", s.Rec.Version, s.Rec)
		}
	}
}

// Each dispute keeps the reminder schedule it opened with
// (Input.ReminderLeads), whatever the package default.
func TestReminderScheduleOfTheInput(t *testing.T) {
	in := customerInput()
	in.ReminderLeads = []time.Duration{96 * time.Hour, 2 * time.Hour}
	h := newHarness(t, in)
	h.refundsSucceed()
	h.run()
	rec := h.result()
	checkSteps(t, rec,
		step{kOpened, customerID, t0},
		step{kNotified, system, t0},
		step{kDueSoon, system, due.Add(-96 * time.Hour)},
		step{kDueSoon, system, due.Add(-2 * time.Hour)},
		step{kMissed, system, due},
		step{kLost, system, due},
		step{kRefunded, system, due},
	)
	if n := rec.Timeline[3].Note; !strings.Contains(n, "2h0m0s left") {
		t.Errorf("second reminder %q", n)
	}
}

// A dispute the merchant opened and the customer answers: the customer's
// submission puts it under review; an admin's "lost" (the merchant's side)
// refunds the customer, as for any outcome the customer prevails in.
func TestMerchantDisputeAnsweredByTheCustomer(t *testing.T) {
	h := newHarness(t, merchantInput())
	h.refundsSucceed()
	claim := h.evidence(time.Hour, merchant, evC, true)
	answer := h.evidence(2*time.Hour, customer, evX, true)
	h.update(3*time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "lost"})
	h.run()
	rec := h.result()
	if r := claim.ok(t); r.ClaimantEvidence != evC || !r.ClaimantEvidenceSubmitted || r.Status != entdispute.StatusNeedsResponse {
		t.Errorf("the merchant's (claimant's) submission answered %+v", r)
	}
	if r := answer.ok(t); r.Evidence != evX || !r.EvidenceSubmitted || r.Status != entdispute.StatusUnderReview {
		t.Errorf("the customer's (respondent's) submission answered %+v", r)
	}
	checkRefunded(t, h, at0(3*time.Hour))
	checkSteps(t, rec,
		step{kOpened, merchantID, t0},
		step{kNotified, system, t0},
		step{kSubmitted, merchantID, at0(time.Hour)},
		step{kSubmitted, customerID, at0(2 * time.Hour)},
		step{kReview, system, at0(2 * time.Hour)},
		step{kLost, adminID, at0(3 * time.Hour)},
		step{kRefunded, system, at0(3 * time.Hour)},
	)
}

// A network dispute's deadline moved by the gateway to a time already
// past (a later event carries the real due_by, earlier than the window
// the first event was given) leaves a reminder due after the deadline:
// the run must skip it and keep waiting for the gateway's decision.
func TestNetworkDueByMovedIntoThePast(t *testing.T) {
	h := newHarness(t, networkInput())
	past := t0.Add(3 * 24 * time.Hour)
	h.signal(5*24*time.Hour, GatewayEvent{EventID: "evt_due", Type: "charge.dispute.updated", Reference: gwDispute, Status: gateway.DisputeNeedsResponse, DueBy: past})
	h.signal(6*24*time.Hour, GatewayEvent{EventID: "evt_lost", Reference: gwDispute, Status: gateway.DisputeLost})
	h.run()
	rec := h.result()
	if rec.Status != entdispute.StatusLost || !rec.ResponseDueBy.Equal(past) {
		t.Errorf("result %+v", rec)
	}
}

// The store is down from before the second reminder until after the
// deadline, while a save of the claimant's evidence retries: when it is
// taken, the reminder's time and the deadline have both passed. The run
// must decide by default (no reminder after the deadline), not loop.
func TestStoreOutageAcrossTheDeadline(t *testing.T) {
	h := newHarness(t, customerInput())
	h.refundsSucceed()
	down, up := due.Add(-25*time.Hour), due.Add(time.Hour)
	h.saveErr = func(store.DisputeRecord) error {
		if now := h.env.Now(); !now.Before(down) && now.Before(up) {
			return errors.New("connection refused")
		}
		return nil
	}
	h.evidence(down.Sub(t0)+time.Minute, customer, evX, false)
	h.run()
	rec := h.result()
	if rec.Status != entdispute.StatusLost || rec.Settlement != entdispute.SettlementRefunded {
		t.Errorf("result %+v", rec)
	}
	for _, e := range rec.Timeline {
		if e.Kind == kDueSoon && !e.At.Before(due) {
			t.Errorf("reminded after the deadline: %+v", e)
		}
	}
}

// The store is down while the merchant's submission, sent a minute before
// the deadline, is being saved; the deadline's timer fires meanwhile.
// The submission was in time: once saved, the dispute is under review and
// the deadline decides nothing.
func TestSubmissionJustBeforeTheDeadlineIsInTime(t *testing.T) {
	h := newHarness(t, customerInput())
	down, up := due.Add(-time.Minute), due.Add(time.Minute)
	h.saveErr = func(store.DisputeRecord) error {
		if now := h.env.Now(); !now.Before(down) && now.Before(up) {
			return errors.New("connection refused")
		}
		return nil
	}
	sub := h.evidence(down.Sub(t0), merchant, evC, true)
	res := h.update(due.Sub(t0)+time.Hour, UpdateResolve, Resolution{Actor: admin, Outcome: "won"})
	h.run()
	rec := h.result()

	if r := sub.ok(t); r.Status != entdispute.StatusUnderReview || !sub.at.After(due) {
		t.Errorf("submission answered at t0+%v: %+v", sub.at.Sub(t0), r)
	}
	res.ok(t)
	if h.failedSaves == 0 {
		t.Fatal("the store never refused a save: the test tests nothing")
	}
	h.checkVersions()
	checkSteps(t, rec,
		step{kOpened, customerID, t0},
		step{kNotified, system, t0},
		step{kDueSoon, system, due.Add(-72 * time.Hour)},
		step{kDueSoon, system, due.Add(-24 * time.Hour)},
		step{kSubmitted, merchantID, down},
		step{kReview, system, down},
		step{kWon, adminID, due.Add(time.Hour)},
	)
	checkNoMoney(t, h, rec)
}

// A reminder whose save could not be made on time (the store was down
// while another save retried) is sent once the run is free, dated when it
// was sent, and sent once.
func TestReminderDelayedByTheStoreIsSentOnce(t *testing.T) {
	h := newHarness(t, customerInput())
	h.refundsSucceed()
	first := due.Add(-72 * time.Hour)
	down, up := first.Add(-time.Minute), first.Add(time.Hour)
	h.saveErr = func(store.DisputeRecord) error {
		if now := h.env.Now(); !now.Before(down) && now.Before(up) {
			return errors.New("connection refused")
		}
		return nil
	}
	h.evidence(down.Sub(t0), customer, evX, false)
	h.run()
	rec := h.result()

	if h.failedSaves == 0 {
		t.Fatal("the store never refused a save: the test tests nothing")
	}
	var reminders []time.Time
	for _, e := range rec.Timeline {
		if e.Kind == kDueSoon {
			reminders = append(reminders, e.At)
		}
	}
	// The claimant's save is taken at the first retry at or after up.
	if len(reminders) != 2 || reminders[0].Before(up) || reminders[0].After(up.Add(time.Minute)) || !reminders[1].Equal(due.Add(-24*time.Hour)) {
		t.Errorf("reminders at %v, want one once the store is back (t0+%v) and one at due-24h", reminders, up.Sub(t0))
	}
	if rec.Status != entdispute.StatusLost || rec.Settlement != entdispute.SettlementRefunded {
		t.Errorf("result %+v", rec)
	}
}

// The gateway's under review (an inquiry's warning_under_review too)
// puts a network dispute under review, once: a later under_review adds no
// second entry.
func TestNetworkUnderReviewEvents(t *testing.T) {
	h := newHarness(t, networkInput())
	h.signal(time.Hour, GatewayEvent{EventID: "evt_w", Type: "charge.dispute.updated", Reference: gwDispute, Status: gateway.DisputeWarningUnderReview})
	h.at(90*time.Minute, func() {
		if got := h.query(); got.Status != entdispute.StatusUnderReview || got.Version != 3 {
			t.Errorf("after warning_under_review: %+v", got)
		}
	})
	h.signal(2*time.Hour, GatewayEvent{EventID: "evt_r", Type: "charge.dispute.updated", Reference: gwDispute, Status: gateway.DisputeUnderReview})
	h.signal(3*time.Hour, GatewayEvent{EventID: "evt_won", Reference: gwDispute, Status: gateway.DisputeWon})
	h.run()
	rec := h.result()
	h.checkVersions()
	checkSteps(t, rec,
		step{kOpened, network, t0},
		step{kFundsOut, network, t0},
		step{kNotified, system, t0},
		step{kReview, network, at0(time.Hour)},
		step{kWon, network, at0(3 * time.Hour)},
		step{kFundsBack, network, at0(3 * time.Hour)},
	)
	// Under review: no reminders (the first was due on day 7).
	if want := []time.Duration{7 * 24 * time.Hour}; !reflect.DeepEqual(h.timers, want) {
		t.Errorf("timers %v, want only the first reminder's, started before the review", h.timers)
	}
}

// A save the store refuses for good fails the run, also the last one (the
// refund's record): the workflow never reports a dispute settled that the
// database does not hold as settled.
func TestStoreRefusingTheSettlementFailsTheRun(t *testing.T) {
	h := newHarness(t, customerInput())
	h.refundsSucceed()
	h.saveErr = func(rec store.DisputeRecord) error {
		if rec.Settlement == entdispute.SettlementRefunded {
			return temporal.NewNonRetryableApplicationError("refused", activities.ErrTypeStoreInvalid, nil)
		}
		return nil
	}
	h.update(time.Hour, UpdateAccept, Action{Actor: merchant})
	h.run()
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err := h.env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("workflow error %v, want the store's refusal of the refund's record", err)
	}
	if got := h.stored(); got.Settlement != entdispute.SettlementPending || got.Status != entdispute.StatusAccepted {
		t.Errorf("stored %+v, want accepted with the refund pending", got)
	}
	if len(h.allRefunds()) != 1 {
		t.Errorf("%d refunds, want 1", len(h.allRefunds()))
	}
}

// A gateway event whose save failed is not taken as seen: the gateway's
// redelivery of it applies it.
func TestEventWhoseSaveFailedIsAppliedOnRedelivery(t *testing.T) {
	h := newHarness(t, networkInput())
	failed := false
	h.saveErr = func(rec store.DisputeRecord) error {
		if rec.Status == entdispute.StatusWon && !failed {
			failed = true
			return temporal.NewNonRetryableApplicationError("refused once", activities.ErrTypeStoreInvalid, nil)
		}
		return nil
	}
	won := GatewayEvent{EventID: "evt_won", Type: "charge.dispute.closed", Reference: gwDispute, Status: gateway.DisputeWon}
	h.signal(time.Hour, won)
	h.at(90*time.Minute, func() {
		if got := h.query(); got.Status != entdispute.StatusNeedsResponse {
			t.Errorf("after the failed save: %+v", got)
		}
	})
	h.signal(2*time.Hour, won)
	h.run()
	rec := h.result()
	if !failed || rec.Status != entdispute.StatusWon || rec.Settlement != entdispute.SettlementReinstated {
		t.Errorf("after the redelivery: %+v (the first save failed: %v)", rec, failed)
	}
	if saves := h.allSaves(); !saves[len(saves)-1].At.Equal(at0(2 * time.Hour)) {
		t.Errorf("the outcome was saved at t0+%v, want at the redelivery", saves[len(saves)-1].At.Sub(t0))
	}
}

// The merchant concedes a network dispute: the gateway closes it (one
// key for every try), the dispute is accepted with the funds left
// withdrawn (no refund, no journal: the network took them at opening),
// and the gateway's later closed event changes nothing. A refusal of the
// gateway, or no answer, saves nothing.
func TestMerchantAcceptsANetworkDispute(t *testing.T) {
	h := newHarness(t, networkInput())
	h.closeFn = func(n int, c call[gateway.DisputeCloseRequest]) (gateway.DisputeResult, error) {
		switch n {
		case 1:
			return gateway.DisputeResult{}, invalidGatewayError("dispute_already_closed", "closed")
		case 2:
			return gateway.DisputeResult{}, temporal.NewNonRetryableApplicationError("deadline", "GatewayTimeout", nil)
		}
		return gateway.DisputeResult{Reference: gwDispute, Status: gateway.DisputeLost}, nil
	}
	refused := h.update(time.Hour, UpdateAccept, Action{Actor: merchant})
	noAnswer := h.update(2*time.Hour, UpdateAccept, Action{Actor: merchant})
	accepted := h.update(3*time.Hour, UpdateAccept, Action{Actor: merchant})
	h.signal(4*time.Hour, GatewayEvent{EventID: "evt_closed", Reference: gwDispute, Status: gateway.DisputeLost})
	h.run()
	rec := h.result()

	refused.failedWith(t, ErrTypeFailedPrecondition)
	if !strings.Contains(refused.err.Error(), "(dispute_already_closed)") {
		t.Errorf("refusal %v, want the gateway's code", refused.err)
	}
	noAnswer.failedWith(t, ErrTypeUnavailable)
	got := accepted.ok(t)
	if got.Status != entdispute.StatusAccepted || got.Settlement != entdispute.SettlementWithdrawn || got.Version != 3 {
		t.Errorf("accepted %+v", got)
	}
	if !reflect.DeepEqual(rec, got) {
		t.Errorf("the closed event changed the dispute: %+v", rec)
	}
	closes := h.allCloses()
	if len(closes) != 3 {
		t.Fatalf("%d gateway closes, want 3", len(closes))
	}
	for _, c := range closes {
		if c.Req.IdempotencyKey != WorkflowID(disputeID)+"/close/1" || c.Req.Reference != gwDispute || c.Req.Currency != rec.Currency {
			t.Errorf("close request %+v", c.Req)
		}
	}
	if len(h.allRefunds()) != 0 || len(h.journals()) != 0 {
		t.Errorf("money moved: refunds %+v, journals %+v", h.allRefunds(), h.journals())
	}
	if len(h.allSaves()) != 2 {
		t.Errorf("%d saves, want the notice and the concession", len(h.allSaves()))
	}
}
