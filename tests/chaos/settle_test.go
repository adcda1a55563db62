package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// settleWindow bounds how long a settle waits for the platform to finish
// what the steps started, faults included.
const settleWindow = 5 * time.Minute

// settleAll settles a run between two stretches of steps (its lanes are
// idle): it waits for the fault in progress to end, settles the lanes at
// the same time, then checks the books of the whole platform.
func settleAll(lanes []*world) {
	w := lanes[0]
	w.faults.wait()
	w.tally.note("settles")
	var wg sync.WaitGroup
	for _, l := range lanes {
		wg.Go(l.settle)
	}
	wg.Wait()
	w.books()
}

// settle waits for every payment of the lane touched since the last
// settle to reach a final or documented waiting state, compares each with
// the model strictly, then checks the balances of the lane's merchants.
func (w *world) settle() {
	w.adoptOrphans()
	deadline := time.Now().Add(settleWindow)
	for _, p := range w.m.order {
		if volatile(p) {
			w.dirty[p.id] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(w.dirty)) {
		p := w.m.payments[id]
		if p == nil {
			continue
		}
		w.settlePayment(p, deadline)
	}
	w.balances()
	w.dirty = map[string]bool{}
}

// volatile reports whether p may still change with nobody acting on it:
// a refund of pm_card_refundFail the model holds succeeded (the gateway
// fails it a few seconds later), or a network dispute under review whose
// evidence decided it (the network closes it a few seconds later). Each
// change is made by a timer of the process that made the refund or
// submitted the evidence, so it may come after a settle took the waiting
// state, or never (the process was killed, or the database was down when
// the timer fired). Such payments are settled again at every settle, and
// before a merchant's balance is called wrong.
func volatile(p *mPayment) bool {
	if p.method.refundFails {
		for _, rf := range p.refunds {
			if !rf.failed {
				return true
			}
		}
	}
	for _, d := range p.disputes {
		if d.openedBy == "network" && d.status == dsUnderReview && d.decides != "" {
			return true
		}
	}
	return false
}

// quiet reports whether a payment as answered is in a final state or a
// documented waiting one (authorized, waiting for 3-D Secure), with
// nothing in flight on it.
func quiet(got *pb.Payment) bool {
	switch got.GetStatus().String() {
	case psProcessing:
		return false
	}
	return !got.GetNeedsAttention()
}

func (w *world) settlePayment(p *mPayment, deadline time.Time) {
	var got *pb.Payment
	for {
		// Refunds, then the payment, then the refunds again: a refund
		// that fails at the gateway meanwhile (pm_card_refundFail) is
		// read on both sides of the payment or the round starts over.
		if w.refundsSettled(p) && w.disputesSettled(p) {
			g, err := w.getPayment(p)
			if err == nil {
				got = g
				mid := failedRefunds(p)
				if quiet(g) && w.refundsSettled(p) && failedRefunds(p) == mid && w.gatewayAgrees(p, g) {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			w.tally.violate("payment %s did not settle within %s: %v %v (%s)", p.id, settleWindow, got.GetStatus(),
				got.GetAttentionReason(), p.describe())
			return
		}
		time.Sleep(100 * time.Millisecond) // polling for the workflows to finish
	}
	if p.ref == "" {
		p.ref = got.GetGatewayReference()
	}
	w.observe(p, got, true)
	w.checkGateway(p, got)
}

// failedRefunds counts the refunds of p the model holds as failed.
func failedRefunds(p *mPayment) int {
	n := 0
	for _, rf := range p.refunds {
		if rf.failed {
			n++
		}
	}
	return n
}

// gatewayAgrees: for pm_card_refundFail, the gateway fails a refund first
// and tells the platform after; the settle waits until the platform has
// heard (checkGateway then holds it to the gateway's figures).
func (w *world) gatewayAgrees(p *mPayment, got *pb.Payment) bool {
	if !p.method.refundFails || len(p.refunds) == 0 {
		return true
	}
	g, err := w.atGateway(p)
	if err != nil {
		return false
	}
	if g.refunded == got.GetAmountRefunded() {
		return true
	}
	w.retryEvents(p, got.GetGatewayReference())
	return false
}

// gatewayView is what the sandbox holds of a payment, all its intents
// together.
type gatewayView struct {
	charges                      []sandbox.Charge
	received, refunded, disputed int64
	paid                         int // intents that received money
	ref                          string
	dispute                      gateway.DisputeStatus
}

func (w *world) atGateway(p *mPayment) (gatewayView, error) {
	charges, err := w.c.sbx.Charges(w.ctx(), p.id)
	g := gatewayView{charges: charges}
	for _, c := range charges {
		if c.Received > 0 {
			g.paid++
		}
		g.received += c.Received
		g.refunded += c.Refunded
		g.disputed += c.Disputed
		if c.DisputeStatus != "" {
			g.dispute, g.ref = c.DisputeStatus, c.Reference
		}
	}
	return g, err
}

// retryEvents plays Stripe's retries of undelivered events. The sandbox
// changes its state (a refund failed, a dispute opened or decided), then
// delivers the event from the process that made the change; a process
// killed in between loses the event, where Stripe would deliver it again
// for days. So while a settle waits for the platform to hear of such a
// change, the payment's events are delivered again, at most every two
// seconds.
func (w *world) retryEvents(p *mPayment, ref string) {
	if ref == "" || time.Since(p.redelivered) < 2*time.Second {
		return
	}
	p.redelivered = time.Now()
	if n, err := w.c.sbx.Redeliver(w.ctx(), ref, nil); err == nil {
		w.tally.noteN("events_redelivered_as_stripe_retries", n)
	}
}

// refundsSettled reads each refund of p until none is pending; a refund
// that failed is taken as the gateway's doing only for pm_card_refundFail.
func (w *world) refundsSettled(p *mPayment) bool {
	for _, rf := range p.refunds {
		var res pb.GetRefundResponse
		if err := w.as(w.merchantOf(p), pGetRefund, &pb.GetRefundRequest{Id: rf.id}, &res, ""); err != nil {
			return false
		}
		switch st := res.GetRefund().GetStatus(); st {
		case pb.RefundStatus_REFUND_STATUS_PENDING:
			return false
		case pb.RefundStatus_REFUND_STATUS_FAILED:
			if !p.method.refundFails {
				w.tally.violate("refund %s of %s (%s) failed: %s", rf.id, p.id, p.method.token, res.GetRefund().GetFailureReason())
			}
			rf.failed = true
		case pb.RefundStatus_REFUND_STATUS_SUCCEEDED:
			if rf.failed {
				w.tally.violate("refund %s of %s failed, then succeeded", rf.id, p.id)
			}
			if p.method.refundFails {
				// It fails about 3 s after it succeeded, unless the
				// worker holding the sandbox's timer was killed first:
				// still succeeded 15 s after it was made (or a settle
				// first saw it), it stays so.
				if rf.seenAt.IsZero() {
					rf.seenAt = time.Now()
				}
				if time.Since(rf.seenAt) < 15*time.Second {
					return false
				}
			}
		default:
			w.tally.violate("refund %s of %s is %s", rf.id, p.id, st)
		}
	}
	return true
}

// disputesSettled adopts the network's disputes of p once they reached
// the platform, and reads each dispute until its money is settled.
func (w *world) disputesSettled(p *mPayment) bool {
	if p.networkAsked || p.method.networkDispute {
		var res pb.ListDisputesResponse
		if err := w.as(w.merchantOf(p), pListDisputes, &pb.ListDisputesRequest{PaymentId: p.id}, &res, ""); err != nil {
			return false
		}
		for _, d := range res.GetDisputes() {
			if d.GetOpenedBy() != pb.DisputeParty_DISPUTE_PARTY_NETWORK || p.dispute(d.GetId()) != nil {
				continue
			}
			w.tally.note("network_disputes_adopted")
			p.disputes = append(p.disputes, &mDispute{id: d.GetId(), openedBy: "network", amount: p.received, status: dsNeedsResponse})
		}
		if p.networkAsked && !hasNetworkDispute(p) {
			// Asked, not yet arrived (the events are on their way).
			w.retryEvents(p, p.ref)
			return false
		}
		if p.method.networkDispute && !hasNetworkDispute(p) && p.status == psSucceeded {
			// pm_card_createDispute: the network disputes it about 2 s
			// after it succeeded, unless the worker holding the sandbox's
			// timer was killed first. Opened at the gateway: wait for the
			// platform to hear of it; not opened within 15 s of the
			// success: the timer was lost, and no dispute comes.
			switch {
			case w.networkOpened(p):
				w.retryEvents(p, p.ref)
				return false
			case p.succeededAt.IsZero():
				p.succeededAt = time.Now()
				return false
			case time.Since(p.succeededAt) < 15*time.Second:
				return false
			}
		}
	}
	for _, d := range p.disputes {
		var res pb.GetDisputeResponse
		if err := w.as(w.merchantOf(p), pGetDispute, &pb.GetDisputeRequest{Id: d.id}, &res, ""); err != nil {
			return false
		}
		got := res.GetDispute()
		if got.GetSettlement() == pb.DisputeSettlement_DISPUTE_SETTLEMENT_PENDING || got.GetNeedsAttention() {
			return false
		}
		st := got.GetStatus().String()
		if d.openedBy == "network" && st == dsUnderReview && w.networkDecided(p) {
			// Decided at the gateway, not yet heard of.
			w.retryEvents(p, p.ref)
			return false
		}
		switch {
		case d.openedBy == "network" && d.status == dsUnderReview && (st == dsUnderReview || st == d.decides):
			// The network decides when it likes (and its timer in a
			// killed worker never fires): under review is a waiting state.
			if st == dsUnderReview && d.decides != "" {
				w.tally.note("network_disputes_waiting")
			}
			d.status = st
		case st != d.status:
			w.tally.violate("dispute %s of %s is %s, the model says %s (%s)", d.id, p.id, st, d.status, p.describe())
			d.status = st
		}
		if got.GetAmount() != d.amount {
			w.tally.violate("dispute %s of %s is of %d, the model says %d", d.id, p.id, got.GetAmount(), d.amount)
		}
	}
	return true
}

// networkOpened reports whether the gateway has opened a dispute on p.
func (w *world) networkOpened(p *mPayment) bool {
	g, err := w.atGateway(p)
	if err != nil || g.dispute == "" {
		return false
	}
	if p.ref == "" {
		p.ref = g.ref
	}
	return true
}

// networkDecided reports whether the gateway has decided p's dispute.
func (w *world) networkDecided(p *mPayment) bool {
	g, err := w.atGateway(p)
	return err == nil && (g.dispute == gateway.DisputeWon || g.dispute == gateway.DisputeLost)
}

func hasNetworkDispute(p *mPayment) bool {
	for _, d := range p.disputes {
		if d.openedBy == "network" {
			return true
		}
	}
	return false
}

func (p *mPayment) dispute(id string) *mDispute {
	for _, d := range p.disputes {
		if d.id == id {
			return d
		}
	}
	return nil
}

// checkGateway compares the payment with what the sandbox holds: charged
// once, refunded and disputed what the platform says.
func (w *world) checkGateway(p *mPayment, got *pb.Payment) {
	g, err := w.atGateway(p)
	if err != nil {
		w.tally.violate("the sandbox's charges of %s: %v", p.id, err)
		return
	}
	w.tally.check("gateway_charged_once")
	if g.paid > 1 {
		w.tally.violate("payment %s was charged %d times at the gateway: %+v", p.id, g.paid, g.charges)
	}
	w.tally.check("gateway_matches_ledger")
	if g.received != got.GetAmountReceived() || g.refunded != got.GetAmountRefunded() {
		w.tally.violate("payment %s: the gateway received %d and refunded %d, the platform says %d and %d (%s)",
			p.id, g.received, g.refunded, got.GetAmountReceived(), got.GetAmountRefunded(), p.describe())
	}
	// What the network withdrew, none when the model knows of no network
	// dispute (one the platform never heard of shows here).
	var wantDisputed int64
	for _, d := range p.disputes {
		if d.openedBy == "network" && d.status != dsWon {
			wantDisputed += d.amount
		}
	}
	if g.disputed != wantDisputed {
		w.tally.violate("payment %s: the network withdrew %d, the model says %d", p.id, g.disputed, wantDisputed)
	}
	for _, c := range g.charges {
		if c.Received == 0 && c.Status == gateway.StatusSucceeded {
			w.tally.violate("payment %s: intent %s succeeded without money", p.id, c.Reference)
		}
	}
}

// adoptOrphans finds what keyless creates with unknown outcomes made: the
// customer's payments of that description.
func (w *world) adoptOrphans() {
	for _, o := range w.orphans {
		found := 0
		token := ""
		for {
			var res pb.ListPaymentsResponse
			req := &pb.ListPaymentsRequest{PageSize: 100, PageToken: token, MerchantId: o.merchant.id,
				CreatedAfter: timestamppb.New(o.after)}
			if err := w.as(o.customer, pListPayments, req, &res, ""); err != nil {
				break
			}
			for _, got := range res.GetPayments() {
				if got.GetDescription() != o.desc || w.m.payments[got.GetId()] != nil {
					continue
				}
				found++
				status, received := created(o.meth, o.manual, o.amount)
				p := &mPayment{id: got.GetId(), merchant: o.merchant.id, customer: o.customer.id, amount: o.amount,
					currency: o.currency, method: o.meth, manual: o.manual, status: status, received: received}
				w.m.add(p)
				w.dirty[p.id] = true
			}
			if token = res.GetNextPageToken(); token == "" {
				break
			}
		}
		w.tally.check("keyless_outcomes_resolved")
		if found > 1 {
			w.tally.violate("one keyless request (%s) made %d payments", o.desc, found)
		}
	}
	w.orphans = nil
}

// books checks the whole platform's books: every ledger journal balances,
// and the history agrees with the ledger.
func (w *world) books() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w.tally.check("ledger_journals_balance")
	if err := w.c.st.CheckLedger(ctx); err != nil {
		w.tally.violate("%v", err)
	}
	w.tally.check("history_agrees_with_ledger")
	if err := w.c.st.CheckHistory(ctx); err != nil {
		w.tally.violate("%v", err)
	}
}

// balances checks that each merchant of the lane has the model's balance,
// in the ledger and in its history as the API lists it.
func (w *world) balances() {
	for _, m := range w.merchants {
		w.tally.check("merchant_balance_matches_model")
		w.tally.check("transaction_list_matches_balance")
		wrong := w.balanceWrong(m)
		if len(wrong) > 0 && w.settleVolatile(m) {
			// A late change of a volatile payment (see volatile) may
			// have landed since its settle: settled again, the model
			// has it, and the balance is read again.
			wrong = w.balanceWrong(m)
			if len(wrong) == 0 {
				w.tally.note("balances_right_once_late_changes_settled")
			}
		}
		for _, v := range wrong {
			w.tally.violate("%s", v)
		}
	}
}

// settleVolatile settles the volatile payments of merchant m again; it
// reports whether m has any.
func (w *world) settleVolatile(m *actor) bool {
	deadline := time.Now().Add(settleWindow)
	found := false
	for _, p := range w.m.order {
		if p.merchant == m.id && volatile(p) {
			found = true
			w.settlePayment(p, deadline)
		}
	}
	return found
}

// balanceWrong compares merchant m's balance in the ledger and the sum of
// its history as the API lists it with the model's balance, and returns
// what differs.
func (w *world) balanceWrong(m *actor) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	want := w.m.balances()[m.id]
	got, err := w.c.st.AccountBalances(ctx, "merchant_balance:"+m.id)
	if err != nil {
		return []string{fmt.Sprintf("balances of %s: %v", m.id, err)}
	}
	var wrong []string
	for _, cur := range currencies {
		// The ledger counts debits positive: a merchant's balance is
		// credited.
		if g, e := -got[cur], want[cur]; g != e {
			wrong = append(wrong, fmt.Sprintf("merchant %s balance in %s is %d, the model says %d", m.id, cur, g, e))
		}
	}
	for cur := range got {
		if !slices.Contains(currencies, cur) {
			wrong = append(wrong, fmt.Sprintf("merchant %s has a balance in %s, which no step paid in", m.id, cur))
		}
	}
	return append(wrong, w.historyWrong(m, want)...)
}

// historyWrong compares the merchant's history as the API lists it
// with the model's balance: once everything is settled, the movements
// that moved money are the SUCCEEDED ones (a refund that failed after it
// succeeded leaves two FAILED rows, its debit and its reversal, which
// cancel out), so their amounts add up to the balance, per currency.
func (w *world) historyWrong(m *actor, want map[string]int64) []string {
	got := map[string]int64{}
	token := ""
	for {
		var res pb.ListTransactionsResponse
		req := &pb.ListTransactionsRequest{PageSize: 100, PageToken: token, Status: pb.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED}
		if err := w.as(m, pListTransactions, req, &res, ""); err != nil {
			return []string{fmt.Sprintf("ListTransactions of %s: %v", m.id, err)}
		}
		for _, tx := range res.GetTransactions() {
			got[strings.ToUpper(tx.GetCurrency())] += tx.GetAmount()
		}
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	var wrong []string
	for _, cur := range currencies {
		if got[cur] != want[cur] {
			wrong = append(wrong, fmt.Sprintf("merchant %s: ListTransactions' succeeded movements in %s add up to %d, the model's balance is %d",
				m.id, cur, got[cur], want[cur]))
		}
	}
	return wrong
}
