package chaos

import (
	"context"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/internal/gateway"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// settleWindow bounds how long a settle waits for the platform to finish
// what the steps started, faults included.
const settleWindow = 5 * time.Minute

// settle waits for the faults in progress to end and for every payment
// touched since the last settle to reach a final or documented waiting
// state, then compares each with the model strictly and checks every
// invariant over the whole platform.
func (w *world) settle() {
	w.faults.Wait()
	w.tally.check("settles")
	w.adoptOrphans()
	deadline := time.Now().Add(settleWindow)
	for _, id := range sortedKeys(w.dirty) {
		p := w.m.payments[id]
		if p == nil {
			continue
		}
		w.settlePayment(p, deadline)
	}
	w.invariants()
	w.dirty = map[string]bool{}
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
	charges, err := w.c.sbx.Charges(w.ctx(), p.id)
	if err != nil {
		return false
	}
	var refunded int64
	for _, c := range charges {
		refunded += c.Refunded
	}
	if refunded == got.GetAmountRefunded() {
		return true
	}
	w.retryEvents(p, got.GetGatewayReference())
	return false
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
		w.tally.checkN("events_redelivered_as_stripe_retries", n)
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
			w.tally.check("network_disputes_adopted")
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
				w.tally.check("network_disputes_waiting")
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
	charges, err := w.c.sbx.Charges(w.ctx(), p.id)
	if err != nil {
		return false
	}
	for _, c := range charges {
		if c.DisputeStatus != "" {
			if p.ref == "" {
				p.ref = c.Reference
			}
			return true
		}
	}
	return false
}

// networkDecided reports whether the gateway has decided p's dispute.
func (w *world) networkDecided(p *mPayment) bool {
	charges, err := w.c.sbx.Charges(w.ctx(), p.id)
	if err != nil {
		return false
	}
	for _, c := range charges {
		if c.DisputeStatus == gateway.DisputeWon || c.DisputeStatus == gateway.DisputeLost {
			return true
		}
	}
	return false
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
	charges, err := w.c.sbx.Charges(w.ctx(), p.id)
	if err != nil {
		w.tally.violate("the sandbox's charges of %s: %v", p.id, err)
		return
	}
	w.tally.check("gateway_charged_once")
	var received, refunded, disputed int64
	paid := 0
	for _, c := range charges {
		if c.Received > 0 {
			paid++
		}
		received += c.Received
		refunded += c.Refunded
		disputed += c.Disputed
	}
	if paid > 1 {
		w.tally.violate("payment %s was charged %d times at the gateway: %+v", p.id, paid, charges)
	}
	w.tally.check("gateway_matches_ledger")
	if received != got.GetAmountReceived() || refunded != got.GetAmountRefunded() {
		w.tally.violate("payment %s: the gateway received %d and refunded %d, the platform says %d and %d (%s)",
			p.id, received, refunded, got.GetAmountReceived(), got.GetAmountRefunded(), p.describe())
	}
	if hasNetworkDispute(p) {
		var wantDisputed int64
		for _, d := range p.disputes {
			if d.openedBy == "network" && d.status != dsWon {
				wantDisputed += d.amount
			}
		}
		if disputed != wantDisputed {
			w.tally.violate("payment %s: the network withdrew %d, the model says %d", p.id, disputed, wantDisputed)
		}
	}
	for _, c := range charges {
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

// invariants checks the whole platform: the ledger balances, each
// merchant's balance is the model's, and the history agrees with the
// ledger.
func (w *world) invariants() {
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
	want := w.m.balances()
	for _, m := range w.merchants {
		got, err := w.c.st.AccountBalances(ctx, "merchant_balance:"+m.id)
		if err != nil {
			w.tally.violate("balances of %s: %v", m.id, err)
			continue
		}
		w.tally.check("merchant_balance_matches_model")
		for _, cur := range currencies {
			// The ledger counts debits positive: a merchant's balance is
			// credited.
			if g, e := -got[cur], want[m.id][cur]; g != e {
				w.tally.violate("merchant %s balance in %s is %d, the model says %d", m.id, cur, g, e)
			}
		}
		for cur := range got {
			if !strings.Contains(strings.Join(currencies, ","), cur) {
				w.tally.violate("merchant %s has a balance in %s, which no step paid in", m.id, cur)
			}
		}
		w.historyMatches(m, want[m.id])
	}
}

// historyMatches checks the merchant's history as the API lists it
// against the model's balance: once everything is settled, the movements
// that moved money are the SUCCEEDED ones (a refund that failed after it
// succeeded leaves two FAILED rows, its debit and its reversal, which
// cancel out), so their amounts add up to the balance, per currency.
func (w *world) historyMatches(m *actor, want map[string]int64) {
	got := map[string]int64{}
	token := ""
	for {
		var res pb.ListTransactionsResponse
		req := &pb.ListTransactionsRequest{PageSize: 100, PageToken: token, Status: pb.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED}
		if err := w.as(m, pListTransactions, req, &res, ""); err != nil {
			w.tally.violate("ListTransactions of %s: %v", m.id, err)
			return
		}
		for _, tx := range res.GetTransactions() {
			got[strings.ToUpper(tx.GetCurrency())] += tx.GetAmount()
		}
		if token = res.GetNextPageToken(); token == "" {
			break
		}
	}
	w.tally.check("transaction_list_matches_balance")
	for _, cur := range currencies {
		if got[cur] != want[cur] {
			w.tally.violate("merchant %s: ListTransactions' succeeded movements in %s add up to %d, the model's balance is %d",
				m.id, cur, got[cur], want[cur])
		}
	}
}
