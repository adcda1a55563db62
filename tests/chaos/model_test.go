package chaos

import (
	"fmt"
	"strings"
	"time"
)

// The reference model: what each payment, refund and dispute must be, and
// what each merchant's balance must be, from the operations alone and the
// documented behaviour of the sandbox's test payment methods (docs/API.md).
// It knows nothing of the implementation. Where the documented behaviour
// leaves a choice to the world (a refund of pm_card_refundFail fails later
// or, if the process holding its timer died first, does not; the network
// decides a dispute under review whenever it likes), the model takes what
// is observed, within what is allowed, and then holds the platform to it.

// Payment statuses, as the API names them.
const (
	psProcessing      = "PAYMENT_STATUS_PROCESSING"
	psRequiresAction  = "PAYMENT_STATUS_REQUIRES_ACTION"
	psRequiresCapture = "PAYMENT_STATUS_REQUIRES_CAPTURE"
	psSucceeded       = "PAYMENT_STATUS_SUCCEEDED"
	psFailed          = "PAYMENT_STATUS_FAILED"
	psCanceled        = "PAYMENT_STATUS_CANCELED"
)

// rank orders payment statuses: statuses only move forward.
func rank(status string) int {
	switch status {
	case psProcessing:
		return 1
	case psRequiresAction:
		return 2
	case psRequiresCapture:
		return 3
	case psSucceeded, psFailed, psCanceled:
		return 4
	}
	return 0
}

// final reports a status that never changes.
func final(status string) bool { return rank(status) == 4 }

// forward reports whether a payment may move from one observed status to
// the next: never back, never from one final status to another.
func forward(from, to string) bool {
	if from == "" || from == to {
		return true
	}
	if final(from) {
		return false
	}
	return rank(to) >= rank(from)
}

// method is one of the sandbox's test payment methods, and what it does.
type method struct {
	token   string
	approve bool   // approved (succeeds, or waits for capture)
	decline string // the failure_code of a decline
	action  bool   // 3-D Secure: waits in REQUIRES_ACTION
	// refundFails: each refund answers succeeded, then may fail later.
	refundFails bool
	// networkDispute: the network disputes it once it succeeded.
	networkDispute bool
	// automaticOnly: no manual capture (mobile money).
	automaticOnly bool
}

// methods are every test payment method of docs/API.md.
var methods = []method{
	{token: "mm:mtn:256770000001", approve: true, automaticOnly: true},
	{token: "mm:airtel:254700000000", decline: "insufficient_funds", automaticOnly: true},
	{token: "pm_card_visa", approve: true},
	{token: "pm_card_mastercard", approve: true},
	{token: "pm_card_amex", approve: true},
	{token: "pm_sandbox_flaky", approve: true},
	{token: "pm_sandbox_ratelimited", approve: true},
	{token: "pm_card_refundFail", approve: true, refundFails: true},
	{token: "pm_card_createDispute", approve: true, networkDispute: true},
	{token: "pm_card_chargeDeclined", decline: "card_declined"},
	{token: "pm_card_chargeDeclinedInsufficientFunds", decline: "insufficient_funds"},
	{token: "pm_card_chargeDeclinedExpiredCard", decline: "expired_card"},
	{token: "pm_card_chargeDeclinedIncorrectCvc", decline: "incorrect_cvc"},
	{token: "pm_card_authenticationRequired", action: true},
	{token: "pm_card_threeDSecure2Required", action: true},
}

func methodOf(token string) method {
	for _, m := range methods {
		if m.token == token {
			return m
		}
	}
	panic("chaos: unknown test payment method " + token)
}

// mPayment is what the model holds of a payment.
type mPayment struct {
	id                 string
	merchant, customer string
	amount             int64
	currency           string
	method             method
	manual             bool
	status             string // what it must be now ("" until created)
	received           int64
	refunds            []*mRefund
	disputes           []*mDispute
	// seen is the last status observed, for the forward-only check.
	seen string
	// ref is the gateway's reference, once read.
	ref string
	// networkAsked: the suite asked the network to dispute it.
	networkAsked bool
	// succeededAt is when a step or a settle first saw it succeeded (for
	// the network's dispute of pm_card_createDispute, see
	// disputesSettled).
	succeededAt time.Time
	// redelivered is when the suite last had the gateway deliver its
	// events again (see world.gatewayAgrees).
	redelivered time.Time
}

// mRefund is what the model holds of a refund.
type mRefund struct {
	id     string
	amount int64
	// failed: the gateway failed it after it succeeded (observed); only
	// refunds of pm_card_refundFail may.
	failed bool
	// seenAt is when it was made (or a settle first saw it succeeded).
	seenAt time.Time
}

// Dispute statuses and settlements, as the API names them.
const (
	dsNeedsResponse = "DISPUTE_STATUS_NEEDS_RESPONSE"
	dsUnderReview   = "DISPUTE_STATUS_UNDER_REVIEW"
	dsWon           = "DISPUTE_STATUS_WON"
	dsLost          = "DISPUTE_STATUS_LOST"
	dsAccepted      = "DISPUTE_STATUS_ACCEPTED"
	dsWithdrawn     = "DISPUTE_STATUS_WITHDRAWN"
)

// mDispute is what the model holds of a dispute.
type mDispute struct {
	id       string
	openedBy string // customer, merchant or network
	amount   int64
	status   string
	// decides is what the network decides a network dispute under review
	// will be (the evidence said so); it may not have decided yet.
	decides string
}

func (d *mDispute) open() bool { return d.status == dsNeedsResponse || d.status == dsUnderReview }

// customerPrevailed: the merchant gives the disputed money back.
func (d *mDispute) customerPrevailed() bool {
	if d.openedBy == "network" {
		// The network took the funds when it opened; won gives them back.
		return d.status != dsWon
	}
	return d.status == dsLost || d.status == dsAccepted
}

// refunded is what the payment's refunds took, failed ones excluded.
func (p *mPayment) refunded() int64 {
	var n int64
	for _, r := range p.refunds {
		if !r.failed {
			n += r.amount
		}
	}
	return n
}

// openDispute is the payment's open dispute, nil when none is.
func (p *mPayment) openDispute() *mDispute {
	for _, d := range p.disputes {
		if d.open() {
			return d
		}
	}
	return nil
}

// amounts are the payment's amount_refunded and amount_disputed as the API
// must show them: a platform dispute the customer won moves its amount
// from disputed to refunded (the held amount is refunded through the
// gateway); a network dispute's amount stays disputed unless won.
func (p *mPayment) amounts() (refunded, disputed int64) {
	refunded = p.refunded()
	for _, d := range p.disputes {
		switch {
		case d.open():
			disputed += d.amount
		case d.openedBy == "network" && d.customerPrevailed():
			disputed += d.amount
		case d.openedBy != "network" && d.customerPrevailed():
			refunded += d.amount
		}
	}
	return refunded, disputed
}

// left is what can still be refunded or disputed.
func (p *mPayment) left() int64 {
	r, d := p.amounts()
	return p.received - r - d
}

// balanceEffect is the payment's effect on its merchant's balance: what it
// received, less what left by refunds and by disputes the customer
// prevailed in; an open network dispute has taken its funds already, an
// open platform dispute holds them without moving them.
func (p *mPayment) balanceEffect() int64 {
	n := p.received - p.refunded()
	for _, d := range p.disputes {
		switch {
		case d.openedBy == "network" && d.customerPrevailed():
			n -= d.amount
		case d.openedBy != "network" && !d.open() && d.customerPrevailed():
			n -= d.amount
		}
	}
	return n
}

// model is the whole reference.
type model struct {
	payments map[string]*mPayment
	order    []*mPayment // creation order
}

func newModel() *model { return &model{payments: map[string]*mPayment{}} }

func (m *model) add(p *mPayment) {
	m.payments[p.id] = p
	m.order = append(m.order, p)
}

// balances are the merchants' balances per currency the model expects.
func (m *model) balances() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, p := range m.order {
		if out[p.merchant] == nil {
			out[p.merchant] = map[string]int64{}
		}
		// A payment that took no money leaves no balance behind.
		if e := p.balanceEffect(); e != 0 || p.received > 0 {
			out[p.merchant][p.currency] += e
		}
	}
	return out
}

// created is the status a payment has right after its create, when the
// gateway answered.
func created(meth method, manual bool, amount int64) (status string, received int64) {
	switch {
	case meth.decline != "":
		return psFailed, 0
	case meth.action:
		return psRequiresAction, 0
	case manual:
		return psRequiresCapture, 0
	}
	return psSucceeded, amount
}

// describe renders a payment for a failure's report.
func (p *mPayment) describe() string {
	r, d := p.amounts()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %d %s manual=%v status=%s received=%d refunded=%d disputed=%d", p.id, p.method.token,
		p.amount, p.currency, p.manual, p.status, p.received, r, d)
	for _, rf := range p.refunds {
		fmt.Fprintf(&b, " refund(%s %d failed=%v)", rf.id, rf.amount, rf.failed)
	}
	for _, dp := range p.disputes {
		fmt.Fprintf(&b, " dispute(%s by %s %d %s)", dp.id, dp.openedBy, dp.amount, dp.status)
	}
	return b.String()
}
