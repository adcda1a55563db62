package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// disputeTestdataDir is where the dispute workflow's recorded histories go
// (PAYMENTS_RECORD_HISTORIES=1), one folder per logic version.
const disputeTestdataDir = "../../workflows/dispute/testdata/v1"

const (
	procOpenDispute     = "/payments.v1.DisputeService/OpenDispute"
	procGetDispute      = "/payments.v1.DisputeService/GetDispute"
	procListDisputes    = "/payments.v1.DisputeService/ListDisputes"
	procSubmitEvidence  = "/payments.v1.DisputeService/SubmitEvidence"
	procAcceptDispute   = "/payments.v1.DisputeService/AcceptDispute"
	procWithdrawDispute = "/payments.v1.DisputeService/WithdrawDispute"
	procResolveDispute  = "/payments.v1.DisputeService/ResolveDispute"
)

// withDisputeWindow shortens the respondent's time to answer a dispute.
func withDisputeWindow(d time.Duration) envOption {
	return func(c *envConfig) { c.opts.DisputeResponseWindow = d }
}

// withDisputeReminders sets the reminders' leads before the deadline.
func withDisputeReminders(leads ...time.Duration) envOption {
	return func(c *envConfig) { c.opts.DisputeReminders = leads }
}

// dispute decodes the {"dispute": {...}} of a dispute RPC's answer.
func (r reply) dispute(t *testing.T) *pb.Dispute {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200 with a dispute, got %s", r)
	}
	var res pb.GetDisputeResponse
	if err := protojson.Unmarshal(r.body, &res); err != nil || res.GetDispute().GetId() == "" {
		t.Fatalf("answer is not {dispute}: %v: %s", err, r.body)
	}
	return res.GetDispute()
}

// disputes decodes a ListDisputes answer.
func (r reply) disputes(t *testing.T) *pb.ListDisputesResponse {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200 with disputes, got %s", r)
	}
	var res pb.ListDisputesResponse
	if err := protojson.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("answer is not a list of disputes: %v: %s", err, r.body)
	}
	return &res
}

// waitDispute polls GetDispute until ok holds, within a deadline.
func (e *E) waitDispute(t *testing.T, u user, id string, what string, ok func(*pb.Dispute) bool) *pb.Dispute {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := e.post(t, u.Token, procGetDispute, map[string]any{"id": id}).dispute(t)
		if ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("dispute %s never became %s: %v", id, what, d)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline, not waiting for state
	}
}

func kinds(d *pb.Dispute) []string {
	var out []string
	for _, e := range d.GetTimeline() {
		out = append(out, e.GetKind())
	}
	return out
}

// A customer's dispute, as the README walks it: opened on a succeeded
// payment, the merchant stages and submits evidence, an admin decides LOST,
// and the disputed amount is refunded to the customer once, with the
// ledger. Refunds are refused while it is open; the second dispute, a
// stranger, a non-admin's decision and late evidence are refused with
// their codes.
func TestDisputeCustomerToAdminDecision(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLogs(), recording())
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	m, c, stranger, adm := e.merchant(t), e.customer(t), e.customer(t), e.admin(t)
	p := e.create(t, c, pay(m, 5000, "USD", "pm_card_visa"))
	wantStatus(t, p, "PAYMENT_STATUS_SUCCEEDED")

	wantCode(t, e.post(t, stranger.Token, procOpenDispute, map[string]any{"payment_id": p.GetId(), "reason": "DISPUTE_REASON_PRODUCT_NOT_RECEIVED"}), "not_found")
	wantCode(t, e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p.GetId(), "reason": "DISPUTE_REASON_PRODUCT_NOT_RECEIVED", "amount": 5001}), "failed_precondition")
	opened := time.Now()
	d := e.post(t, c.Token, procOpenDispute, map[string]any{
		"payment_id": p.GetId(), "reason": "DISPUTE_REASON_PRODUCT_NOT_RECEIVED", "amount": 3000,
		"description": "The parcel never arrived.",
	}).dispute(t)
	if d.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_NEEDS_RESPONSE || d.GetOpenedBy() != pb.DisputeParty_DISPUTE_PARTY_CUSTOMER ||
		d.GetRespondent() != pb.DisputeParty_DISPUTE_PARTY_MERCHANT || d.GetAmount() != 3000 || d.GetCurrency() != "USD" ||
		d.GetWorkflowId() != "dispute/"+d.GetId() || d.GetMerchantId() != m.ID || d.GetCustomerId() != c.ID {
		t.Fatalf("opened dispute: %v", d)
	}
	if due := d.GetResponseDueBy().AsTime(); due.Before(opened.Add(7*24*time.Hour-time.Minute)) || due.After(time.Now().Add(7*24*time.Hour+time.Minute)) {
		t.Fatalf("response due by %v, want 7 days after %v", due, opened)
	}
	d = e.waitDispute(t, c, d.GetId(), "notified", func(d *pb.Dispute) bool {
		return strings.Join(kinds(d), ",") == "dispute.opened,dispute.respondent_notified"
	})
	if got := e.get(t, m, p.GetId()); got.GetAmountDisputed() != 3000 {
		t.Fatalf("payment disputes %d, want 3000", got.GetAmountDisputed())
	}
	wantCode(t, e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId(), "amount": 100}), "failed_precondition")
	wantCode(t, e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p.GetId(), "reason": "DISPUTE_REASON_DUPLICATE"}), "already_exists")
	wantCode(t, e.post(t, stranger.Token, procGetDispute, map[string]any{"id": d.GetId()}), "not_found")

	ev := map[string]any{"explanation": "Shipped on time.", "shipping_tracking_number": "1Z999"}
	staged := e.post(t, m.Token, procSubmitEvidence, map[string]any{"dispute_id": d.GetId(), "evidence": ev}).dispute(t)
	if staged.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_NEEDS_RESPONSE || staged.GetEvidence().GetShippingTrackingNumber() != "1Z999" || staged.GetEvidenceSubmitted() {
		t.Fatalf("staged evidence: %v", staged)
	}
	// The customer does not see the merchant's staged evidence.
	if got := e.post(t, c.Token, procGetDispute, map[string]any{"id": d.GetId()}).dispute(t); got.GetEvidence().GetShippingTrackingNumber() != "" {
		t.Fatalf("the customer sees staged evidence: %v", got.GetEvidence())
	}
	ev["product_description"] = "A blue teapot."
	sub := e.post(t, m.Token, procSubmitEvidence, map[string]any{"dispute_id": d.GetId(), "evidence": ev, "submit": true}).dispute(t)
	if sub.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_UNDER_REVIEW || !sub.GetEvidenceSubmitted() || sub.GetEvidence().GetProductDescription() != "A blue teapot." {
		t.Fatalf("submitted evidence: %v", sub)
	}
	wantCode(t, e.post(t, m.Token, procSubmitEvidence, map[string]any{"dispute_id": d.GetId(), "evidence": ev, "submit": true}), "failed_precondition")
	wantCode(t, e.post(t, m.Token, procResolveDispute, map[string]any{"dispute_id": d.GetId(), "outcome": "DISPUTE_OUTCOME_WON"}), "permission_denied")
	wantCode(t, e.post(t, c.Token, procAcceptDispute, map[string]any{"dispute_id": d.GetId()}), "permission_denied")

	lost := e.post(t, adm.Token, procResolveDispute, map[string]any{"dispute_id": d.GetId(), "outcome": "DISPUTE_OUTCOME_LOST", "note": "No proof of delivery to the customer's address."}).dispute(t)
	if lost.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_LOST || lost.GetOutcomeNote() != "No proof of delivery to the customer's address." || lost.GetClosedAt() == nil {
		t.Fatalf("resolved: %v", lost)
	}
	// The admin's decision is in the audit trail, with the admin as actor.
	var trail pb.ListAuditEventsResponse
	if r := e.post(t, adm.Token, "/payments.v1.AdminService/ListAuditEvents", map[string]any{"type": "dispute.resolved", "target_id": m.ID}); protojson.Unmarshal(r.body, &trail) != nil ||
		len(trail.GetAuditEvents()) != 1 || trail.GetAuditEvents()[0].GetActorId() != adm.ID ||
		trail.GetAuditEvents()[0].GetDetail()["dispute_id"] != d.GetId() || trail.GetAuditEvents()[0].GetDetail()["outcome"] != "lost" {
		t.Fatalf("audit of the decision: %s", r)
	}
	done := e.waitDispute(t, c, d.GetId(), "refunded", func(d *pb.Dispute) bool {
		return d.GetSettlement() == pb.DisputeSettlement_DISPUTE_SETTLEMENT_REFUNDED
	})
	want := "dispute.opened,dispute.respondent_notified,dispute.evidence_staged,dispute.evidence_submitted,dispute.under_review,dispute.lost,dispute.refunded"
	if got := strings.Join(kinds(done), ","); got != want {
		t.Fatalf("timeline %s, want %s", got, want)
	}
	got := e.get(t, m, p.GetId())
	if got.GetAmountDisputed() != 0 || got.GetAmountRefunded() != 3000 {
		t.Fatalf("after the lost dispute: disputed %d refunded %d, want 0 and 3000", got.GetAmountDisputed(), got.GetAmountRefunded())
	}
	// Debits minus credits: the merchant holds the 2000 not refunded.
	if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != -2000 {
		t.Fatalf("merchant balance %d, want -2000 (5000 received, 3000 refunded for the dispute)", b)
	}
	wantCode(t, e.post(t, adm.Token, procResolveDispute, map[string]any{"dispute_id": d.GetId(), "outcome": "DISPUTE_OUTCOME_WON"}), "failed_precondition")
	wantCode(t, e.post(t, c.Token, procSubmitEvidence, map[string]any{"dispute_id": d.GetId(), "evidence": ev}), "failed_precondition")
	// The rest of the payment is refundable again.
	r := e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId()}).refund(t)
	if r.GetAmount() != 2000 {
		t.Fatalf("refund of the rest: %v", r)
	}
	e.waitClosed(t, d.GetWorkflowId())
	e.recordHistoryIn(t, disputeTestdataDir, "customer_lost_after_evidence", d.GetWorkflowId())
	e.checkLedger(t)
}

// The respondent who misses the deadline loses by default: the merchant on
// a customer's dispute (the customer is refunded), the customer on a
// merchant's (nothing moves). The whole course runs, on a window of
// seconds instead of days: both reminders at their time before the
// deadline, the default decision, the refund.
func TestDisputeDeadlineMissed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLogs(), withDisputeWindow(3*time.Second), withDisputeReminders(2*time.Second, time.Second), recording())
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	m, c := e.merchant(t), e.customer(t)
	p1 := e.create(t, c, pay(m, 1200, "EUR", "pm_card_visa"))
	p2 := e.create(t, c, pay(m, 800, "EUR", "pm_card_visa"))
	d1 := e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p1.GetId(), "reason": "DISPUTE_REASON_FRAUDULENT"}).dispute(t)
	d2 := e.post(t, m.Token, procOpenDispute, map[string]any{"payment_id": p2.GetId(), "reason": "DISPUTE_REASON_DUPLICATE"}).dispute(t)
	if d1.GetAmount() != 1200 || d2.GetOpenedBy() != pb.DisputeParty_DISPUTE_PARTY_MERCHANT || d2.GetRespondent() != pb.DisputeParty_DISPUTE_PARTY_CUSTOMER {
		t.Fatalf("opened: %v / %v", d1, d2)
	}
	lost := e.waitDispute(t, c, d1.GetId(), "refunded", func(d *pb.Dispute) bool {
		return d.GetSettlement() == pb.DisputeSettlement_DISPUTE_SETTLEMENT_REFUNDED
	})
	want := "dispute.opened,dispute.respondent_notified,dispute.response_due_soon,dispute.response_due_soon," +
		"dispute.response_deadline_missed,dispute.lost,dispute.refunded"
	if got := strings.Join(kinds(lost), ","); lost.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_LOST || got != want {
		t.Fatalf("merchant missed the deadline: timeline %s, want %s: %v", got, want, lost)
	}
	due := lost.GetResponseDueBy().AsTime()
	for i, lead := range []time.Duration{2 * time.Second, time.Second} {
		at := lost.GetTimeline()[2+i].GetAt().AsTime()
		if at.Before(due.Add(-lead)) || at.After(due.Add(-lead).Add(time.Second)) {
			t.Errorf("reminder %d at %v, want just after %v (%v before the deadline)", i+1, at, due.Add(-lead), lead)
		}
		if lost.GetTimeline()[2+i].GetActor() != "system" {
			t.Errorf("reminder %d by %q", i+1, lost.GetTimeline()[2+i].GetActor())
		}
	}
	if missed := lost.GetTimeline()[4].GetAt().AsTime(); missed.Before(due) {
		t.Errorf("decided by default at %v, before the deadline %v", missed, due)
	}
	won := e.waitDispute(t, m, d2.GetId(), "won", func(d *pb.Dispute) bool { return d.GetStatus() == pb.DisputeStatus_DISPUTE_STATUS_WON })
	if won.GetSettlement() != pb.DisputeSettlement_DISPUTE_SETTLEMENT_NONE {
		t.Fatalf("customer missed the deadline: %v", won)
	}
	if g := e.get(t, m, p1.GetId()); g.GetAmountRefunded() != 1200 || g.GetAmountDisputed() != 0 {
		t.Fatalf("payment 1: refunded %d disputed %d", g.GetAmountRefunded(), g.GetAmountDisputed())
	}
	if g := e.get(t, m, p2.GetId()); g.GetAmountRefunded() != 0 || g.GetAmountDisputed() != 0 {
		t.Fatalf("payment 2: refunded %d disputed %d", g.GetAmountRefunded(), g.GetAmountDisputed())
	}
	e.waitClosed(t, d1.GetWorkflowId())
	// The whole course, reminders included, in a small history (the
	// issue's bound is 200 events).
	if n := len(e.history(t, d1.GetWorkflowId())); n > 100 {
		t.Errorf("a full dispute course took %d history events", n)
	} else {
		t.Logf("a full dispute course (2 reminders, deadline, refund): %d history events", n)
	}
	e.recordHistoryIn(t, disputeTestdataDir, "merchant_missed_deadline", d1.GetWorkflowId())
	e.waitClosed(t, d2.GetWorkflowId())
	e.recordHistoryIn(t, disputeTestdataDir, "customer_missed_deadline", d2.GetWorkflowId())
}

// AcceptDispute refunds the customer; WithdrawDispute moves nothing; each
// only by its party; ListDisputes filters and scopes by party.
func TestDisputeAcceptWithdrawAndList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLogs(), recording())
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	m, c, other, adm := e.merchant(t), e.customer(t), e.merchant(t), e.admin(t)
	p1 := e.create(t, c, pay(m, 900, "GBP", "pm_card_visa"))
	p2 := e.create(t, c, pay(m, 700, "GBP", "pm_card_visa"))
	failed := e.create(t, c, pay(m, 700, "GBP", "pm_card_chargeDeclined"))
	wantCode(t, e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": failed.GetId(), "reason": "DISPUTE_REASON_GENERAL"}), "failed_precondition")
	wantCode(t, e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p1.GetId(), "reason": "DISPUTE_REASON_UNSPECIFIED"}), "invalid_argument")
	big := strings.Repeat("x", 20001)
	d1 := e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p1.GetId(), "reason": "DISPUTE_REASON_PRODUCT_UNACCEPTABLE"}).dispute(t)
	wantCode(t, e.post(t, m.Token, procSubmitEvidence, map[string]any{"dispute_id": d1.GetId(), "evidence": map[string]any{"explanation": big}}), "invalid_argument")
	d2 := e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p2.GetId(), "reason": "DISPUTE_REASON_CREDIT_NOT_PROCESSED"}).dispute(t)

	// Lists: the parties see both, another merchant none, filters combine.
	dueWeek := time.Now().Add(8 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for _, u := range []user{m, c, adm} {
		l := e.post(t, u.Token, procListDisputes, map[string]any{"status": "DISPUTE_STATUS_NEEDS_RESPONSE", "response_due_before": dueWeek, "opened_by": "DISPUTE_PARTY_CUSTOMER"}).disputes(t)
		n := 0
		for _, d := range l.GetDisputes() {
			if d.GetId() == d1.GetId() || d.GetId() == d2.GetId() {
				n++
			}
		}
		if n != 2 {
			t.Fatalf("%s lists %d of the 2 disputes due this week: %v", u.Role, n, l)
		}
	}
	if l := e.post(t, other.Token, procListDisputes, map[string]any{}).disputes(t); len(l.GetDisputes()) != 0 {
		t.Fatalf("another merchant lists %v", l.GetDisputes())
	}
	if l := e.post(t, m.Token, procListDisputes, map[string]any{"response_due_before": time.Now().UTC().Format(time.RFC3339)}).disputes(t); len(l.GetDisputes()) != 0 {
		t.Fatalf("nothing is due yet, got %v", l.GetDisputes())
	}
	if l := e.post(t, m.Token, procListDisputes, map[string]any{"payment_id": p2.GetId()}).disputes(t); len(l.GetDisputes()) != 1 || l.GetDisputes()[0].GetId() != d2.GetId() {
		t.Fatalf("by payment: %v", l.GetDisputes())
	}
	page := e.post(t, m.Token, procListDisputes, map[string]any{"page_size": 1}).disputes(t)
	if len(page.GetDisputes()) != 1 || page.GetDisputes()[0].GetId() != d2.GetId() || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v", page)
	}
	page = e.post(t, m.Token, procListDisputes, map[string]any{"page_size": 1, "page_token": page.GetNextPageToken()}).disputes(t)
	if len(page.GetDisputes()) != 1 || page.GetDisputes()[0].GetId() != d1.GetId() {
		t.Fatalf("second page: %v", page)
	}

	wantCode(t, e.post(t, m.Token, procWithdrawDispute, map[string]any{"dispute_id": d1.GetId()}), "permission_denied")
	acc := e.post(t, m.Token, procAcceptDispute, map[string]any{"dispute_id": d1.GetId()}).dispute(t)
	if acc.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_ACCEPTED {
		t.Fatalf("accepted: %v", acc)
	}
	e.waitDispute(t, m, d1.GetId(), "refunded", func(d *pb.Dispute) bool {
		return d.GetSettlement() == pb.DisputeSettlement_DISPUTE_SETTLEMENT_REFUNDED
	})
	w := e.post(t, c.Token, procWithdrawDispute, map[string]any{"dispute_id": d2.GetId()}).dispute(t)
	if w.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_WITHDRAWN || w.GetSettlement() != pb.DisputeSettlement_DISPUTE_SETTLEMENT_NONE {
		t.Fatalf("withdrawn: %v", w)
	}
	wantCode(t, e.post(t, m.Token, procAcceptDispute, map[string]any{"dispute_id": d2.GetId()}), "failed_precondition")
	if g := e.get(t, m, p1.GetId()); g.GetAmountRefunded() != 900 || g.GetAmountDisputed() != 0 {
		t.Fatalf("accepted payment: refunded %d disputed %d", g.GetAmountRefunded(), g.GetAmountDisputed())
	}
	if g := e.get(t, m, p2.GetId()); g.GetAmountRefunded() != 0 || g.GetAmountDisputed() != 0 {
		t.Fatalf("withdrawn payment: refunded %d disputed %d", g.GetAmountRefunded(), g.GetAmountDisputed())
	}
	// A new dispute may be opened once the last one is closed.
	again := e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p2.GetId(), "reason": "DISPUTE_REASON_GENERAL", "amount": 100}).dispute(t)
	if again.GetAmount() != 100 {
		t.Fatalf("second dispute after withdrawal: %v", again)
	}
	e.waitClosed(t, d1.GetWorkflowId())
	e.recordHistoryIn(t, disputeTestdataDir, "accepted", d1.GetWorkflowId())
	e.waitClosed(t, d2.GetWorkflowId())
	e.recordHistoryIn(t, disputeTestdataDir, "withdrawn", d2.GetWorkflowId())
}

// networkDispute has the customer pay m with pm_card_createDispute and
// waits for the dispute the card network opens on it.
func (e *E) networkDispute(t *testing.T, m, c user, amount int64) (*pb.Payment, *pb.Dispute) {
	t.Helper()
	p := e.create(t, c, pay(m, amount, "USD", "pm_card_createDispute"))
	wantStatus(t, p, "PAYMENT_STATUS_SUCCEEDED")
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := e.post(t, m.Token, procListDisputes, map[string]any{"payment_id": p.GetId()}).disputes(t)
		if len(l.GetDisputes()) == 1 {
			d := e.waitDispute(t, m, l.GetDisputes()[0].GetId(), "notified", func(d *pb.Dispute) bool { return len(d.GetTimeline()) >= 3 })
			return p, d
		}
		if time.Now().After(deadline) {
			t.Fatalf("the network dispute never appeared: %v", l)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// The merchant concedes a network dispute: the gateway closes it (lost
// there), the dispute is ACCEPTED with the funds left withdrawn, nothing
// is refunded, and the gateway's closed event that follows changes
// nothing.
func TestDisputeNetworkAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLogs(), recording())
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	m, c := e.merchant(t), e.customer(t)
	p, d := e.networkDispute(t, m, c, 3000)
	acc := e.post(t, m.Token, procAcceptDispute, map[string]any{"dispute_id": d.GetId()}).dispute(t)
	if acc.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_ACCEPTED || acc.GetSettlement() != pb.DisputeSettlement_DISPUTE_SETTLEMENT_FUNDS_WITHDRAWN {
		t.Fatalf("accepted: %v", acc)
	}
	e.waitClosed(t, d.GetWorkflowId())
	got := e.post(t, m.Token, procGetDispute, map[string]any{"id": d.GetId()}).dispute(t)
	if got.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_ACCEPTED || len(got.GetTimeline()) != len(acc.GetTimeline()) {
		t.Fatalf("after the gateway's close event: %v", got)
	}
	if g := e.get(t, m, p.GetId()); g.GetAmountDisputed() != 3000 || g.GetAmountRefunded() != 0 {
		t.Fatalf("payment: disputed %d refunded %d, want 3000 and 0", g.GetAmountDisputed(), g.GetAmountRefunded())
	}
	if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != 0 {
		t.Fatalf("merchant balance %d, want 0 (the network kept the funds)", b)
	}
	e.recordHistoryIn(t, disputeTestdataDir, "network_accepted", d.GetWorkflowId())
}

// A network dispute, as the sandbox raises one for pm_card_createDispute
// (Stripe's test card): the gateway's charge.dispute.created opens it
// (opened_by NETWORK, the gateway's deadline, funds withdrawn from the
// merchant in the ledger); only the merchant responds, and its evidence
// goes to the gateway, whose verdict closes it: winning_evidence wins (the
// funds are reinstated), losing_evidence loses (they stay withdrawn).
func TestDisputeNetworkWonAndLost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLogs(), recording())
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(e.logs.String())
		}
	})
	m, c, adm := e.merchant(t), e.customer(t), e.admin(t)
	for _, tc := range []struct {
		name, evidence string
		status         pb.DisputeStatus
		settlement     pb.DisputeSettlement
		disputed       int64
		merchant       int64 // ledger balance, debits minus credits
	}{
		{"won", "winning_evidence", pb.DisputeStatus_DISPUTE_STATUS_WON, pb.DisputeSettlement_DISPUTE_SETTLEMENT_FUNDS_REINSTATED, 0, -4000},
		{"lost", "losing_evidence", pb.DisputeStatus_DISPUTE_STATUS_LOST, pb.DisputeSettlement_DISPUTE_SETTLEMENT_FUNDS_WITHDRAWN, 4000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := m
			if tc.name == "lost" {
				m = e.merchant(t) // its own ledger account
			}
			p, d := e.networkDispute(t, m, c, 4000)
			if d.GetOpenedBy() != pb.DisputeParty_DISPUTE_PARTY_NETWORK || d.GetRespondent() != pb.DisputeParty_DISPUTE_PARTY_MERCHANT ||
				d.GetAmount() != 4000 || d.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_NEEDS_RESPONSE ||
				!strings.HasPrefix(d.GetGatewayReference(), "dp_sbx_") || d.GetCustomerId() != c.ID {
				t.Fatalf("network dispute: %v", d)
			}
			if got := strings.Join(kinds(d), ","); got != "dispute.opened,dispute.funds_withdrawn,dispute.respondent_notified" {
				t.Fatalf("timeline %s", got)
			}
			if due := d.GetResponseDueBy().AsTime(); due.Before(time.Now().Add(6*24*time.Hour)) || due.After(time.Now().Add(8*24*time.Hour)) {
				t.Fatalf("the gateway's deadline %v is not about 7 days away", due)
			}
			if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != 0 {
				t.Fatalf("merchant balance %d after the network took the funds, want 0", b)
			}
			// The card network decides: the customer has no say here, nor
			// an admin, and the merchant concedes by not responding.
			wantCode(t, e.post(t, c.Token, procSubmitEvidence, map[string]any{"dispute_id": d.GetId(), "evidence": map[string]any{"explanation": "x"}}), "failed_precondition")
			wantCode(t, e.post(t, adm.Token, procResolveDispute, map[string]any{"dispute_id": d.GetId(), "outcome": "DISPUTE_OUTCOME_WON"}), "failed_precondition")
			wantCode(t, e.post(t, c.Token, procAcceptDispute, map[string]any{"dispute_id": d.GetId()}), "permission_denied")
			wantCode(t, e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId()}), "failed_precondition")

			sub := e.post(t, m.Token, procSubmitEvidence, map[string]any{"dispute_id": d.GetId(), "submit": true,
				"evidence": map[string]any{"explanation": "Delivered and signed for.", "uncategorized_text": tc.evidence}}).dispute(t)
			if sub.GetStatus() != pb.DisputeStatus_DISPUTE_STATUS_UNDER_REVIEW || !sub.GetEvidenceSubmitted() {
				t.Fatalf("submitted: %v", sub)
			}
			done := e.waitDispute(t, m, d.GetId(), "decided", func(d *pb.Dispute) bool { return d.GetStatus() == tc.status })
			if done.GetSettlement() != tc.settlement {
				t.Fatalf("decided: %v", done)
			}
			if g := e.get(t, m, p.GetId()); g.GetAmountDisputed() != tc.disputed || g.GetAmountRefunded() != 0 {
				t.Fatalf("payment: disputed %d refunded %d, want %d and 0", g.GetAmountDisputed(), g.GetAmountRefunded(), tc.disputed)
			}
			if b := e.balance(t, "merchant_balance:"+m.ID, "USD"); b != tc.merchant {
				t.Fatalf("merchant balance %d, want %d", b, tc.merchant)
			}
			e.waitClosed(t, d.GetWorkflowId())
			e.recordHistoryIn(t, disputeTestdataDir, "network_"+tc.name, d.GetWorkflowId())
		})
	}
}
