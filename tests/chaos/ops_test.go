package chaos

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// op is one step of a run, generated from the seed before the run starts,
// so that a seed names a run and a prefix of its list a shorter one. Sel
// picks the target among those the step applies to when it runs, X is its
// parameter (method, amount, ...).
type op struct {
	Kind string
	Sel  uint32
	X    uint32
}

func (o op) String() string { return fmt.Sprintf("%s(%d,%d)", o.Kind, o.Sel, o.X) }

// weights of the operations (faults apart).
var weights = []struct {
	kind string
	w    int
}{
	{"create", 30}, {"create_dup_key", 5}, {"create_dup_nokey", 3},
	{"capture", 8}, {"capture_partial", 5}, {"cancel", 5},
	{"refund_partial", 8}, {"refund_full", 4}, {"refund_too_much", 2},
	{"dispute_customer", 3}, {"dispute_merchant", 2}, {"evidence", 3}, {"accept", 2}, {"withdraw", 2},
	{"resolve_won", 2}, {"resolve_lost", 2},
	{"network_dispute", 2}, {"network_win", 2}, {"network_lose", 1}, {"network_accept", 1},
	{"redeliver", 3},
}

// faultMix are the faults, given a share of the steps by faultEvery.
var faultMix = []string{"kill_worker", "kill_worker", "kill_worker", "kill_api", "restart_db"}

// surely are faults every run with faults has, at these steps, whatever
// the draw: so that even a short run meets each kind (and a prefix of a
// list is still the shorter list).
var surely = map[int]string{10: "kill_worker", 20: "kill_api", 30: "restart_db"}

// generate returns n steps from seed; with faults, about one in
// faultEvery is a fault, and the steps of surely are theirs.
func generate(seed uint64, n int, faultEvery int) []op {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	total := 0
	for _, w := range weights {
		total += w.w
	}
	ops := make([]op, 0, n)
	for i := range n {
		o := op{Sel: rng.Uint32(), X: rng.Uint32()}
		if faultEvery > 0 && rng.IntN(faultEvery) == 0 {
			o.Kind = faultMix[rng.IntN(len(faultMix))]
		} else {
			r := rng.IntN(total)
			for _, w := range weights {
				if r < w.w {
					o.Kind = w.kind
					break
				}
				r -= w.w
			}
		}
		if f, ok := surely[i]; ok && faultEvery > 0 {
			o.Kind = f
		}
		ops = append(ops, o)
	}
	return ops
}

var currencies = []string{"USD", "EUR", "GBP", "JPY"}

// pick returns the Sel-th of the payments that satisfy ok, nil if none.
func (w *world) pick(sel uint32, ok func(p *mPayment) bool) *mPayment {
	var eligible []*mPayment
	for _, p := range w.m.order {
		if ok(p) {
			eligible = append(eligible, p)
		}
	}
	if len(eligible) == 0 {
		return nil
	}
	return eligible[int(sel%uint32(len(eligible)))]
}

// settledAs reports whether the model's status of p is status and was
// confirmed by the platform (an answer or a settle), so a step may build on
// it.
func settledAs(p *mPayment, status string) bool { return p.status == status && p.seen == status }

// step runs one operation; it returns false when no target applied.
func (w *world) step(o op) bool {
	switch o.Kind {
	case "create":
		return w.create(o, 1, true)
	case "create_dup_key":
		return w.create(o, 3, true)
	case "create_dup_nokey":
		return w.create(o, 2, false)
	case "capture", "capture_partial":
		return w.capture(o)
	case "cancel":
		return w.cancel(o)
	case "refund_partial", "refund_full", "refund_too_much":
		return w.refund(o)
	case "dispute_customer", "dispute_merchant":
		return w.openDispute(o)
	case "evidence", "accept", "withdraw", "resolve_won", "resolve_lost":
		return w.actOnDispute(o)
	case "network_dispute":
		return w.networkDispute(o)
	case "network_win", "network_lose", "network_accept":
		return w.actOnNetworkDispute(o)
	case "redeliver":
		return w.redeliver(o)
	case "kill_worker", "kill_api", "restart_db":
		w.fault(o)
		return true
	}
	panic("chaos: unknown step " + o.Kind)
}

// create makes a payment, sending it n times at once: with one
// Idempotency-Key (one payment must result) or without (n payments).
func (w *world) create(o op, n int, keyed bool) bool {
	merchant := w.merchants[o.X%uint32(len(w.merchants))]
	customer := w.customers[o.Sel%uint32(len(w.customers))]
	meth := methods[(o.X>>4)%uint32(len(methods))]
	manual := (o.X>>12)&1 == 1 && !meth.automaticOnly
	currency := currencies[(o.X>>16)%uint32(len(currencies))]
	amount := int64(100 + (o.Sel>>8)%5000)
	capture := pb.CaptureMethod_CAPTURE_METHOD_AUTOMATIC
	if manual {
		capture = pb.CaptureMethod_CAPTURE_METHOD_MANUAL
	}
	tag := w.key("pay")
	key := ""
	if keyed {
		key = tag
	}
	type answer struct {
		res *pb.Payment
		err *callErr
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		req := &pb.CreatePaymentRequest{MerchantId: merchant.id, Amount: amount, Currency: currency,
			PaymentMethod: meth.token, CaptureMethod: capture, Description: fmt.Sprintf("chaos %s #%d", tag, i)}
		if keyed {
			req.Description = "chaos " + tag
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var res pb.CreatePaymentResponse
			var err *callErr
			if keyed {
				err = w.as(customer, pCreatePayment, req, &res, key)
			} else {
				// Without a key a retry would pay twice: one attempt only.
				err = w.api.call(w.ctx(), customer.bearer(), pCreatePayment, req, &res, "")
				if err != nil && err.code == "unauthenticated" {
					if lerr := w.login(customer); lerr != nil {
						w.tally.violate("%v", lerr)
					}
					err = w.api.call(w.ctx(), customer.bearer(), pCreatePayment, req, &res, "")
				}
			}
			answers[i] = answer{res.GetPayment(), err}
		}()
	}
	wg.Wait()
	status, received := created(meth, manual, amount)
	ids := map[string]bool{}
	for i, a := range answers {
		switch {
		case a.err != nil && !a.err.definitive():
			if keyed {
				continue // reported as a lost request by as()
			}
			// The request may or may not have made a payment: found at
			// the next settle by its description.
			w.orphan(customer, merchant, fmt.Sprintf("chaos %s #%d", tag, i), meth, manual, amount, currency)
			w.tally.note("keyless_unknown_outcome")
			continue
		case a.err != nil:
			w.tally.violate("CreatePayment %s %d %s (%s) refused: %v", meth.token, amount, currency, key, a.err)
			continue
		}
		id := a.res.GetId()
		switch {
		case keyed && len(ids) > 0 && !ids[id]:
			w.tally.violate("one Idempotency-Key %s made two payments: %v and %s", key, ids, id)
		case !keyed && ids[id]:
			w.tally.violate("two keyless requests (%s) answered one payment %s", tag, id)
		}
		if ids[id] {
			continue
		}
		ids[id] = true
		p := &mPayment{id: id, merchant: merchant.id, customer: customer.id, amount: amount, currency: currency,
			method: meth, manual: manual, status: status, received: received}
		if status == psSucceeded {
			// The sandbox's timer of the network's dispute starts now.
			p.succeededAt = time.Now()
		}
		w.m.add(p)
		w.dirty[id] = true
		w.observe(p, a.res, false)
	}
	if len(ids) > 0 {
		w.tally.check(map[bool]string{true: "idempotent_create", false: "keyless_creates_distinct"}[keyed])
	}
	return true
}

// orphan is a keyless create whose outcome is unknown.
type orphan struct {
	customer, merchant *actor
	desc               string
	meth               method
	manual             bool
	amount             int64
	currency           string
	after              time.Time
}

func (w *world) orphan(customer, merchant *actor, desc string, meth method, manual bool, amount int64, currency string) {
	w.orphans = append(w.orphans, orphan{customer, merchant, desc, meth, manual, amount, currency, time.Now().Add(-time.Minute)})
}

func (w *world) capture(o op) bool {
	p := w.pick(o.Sel, func(p *mPayment) bool { return settledAs(p, psRequiresCapture) })
	if p == nil {
		return false
	}
	req := &pb.CapturePaymentRequest{Id: p.id}
	amount := p.amount
	if o.Kind == "capture_partial" {
		amount = max(1, p.amount*int64(1+o.X%3)/4)
		req.Amount = &amount
	}
	var res pb.CapturePaymentResponse
	if err := w.as(w.merchantOf(p), pCapture, req, &res, w.key("capture")); err != nil {
		if err.definitive() {
			w.tally.violate("capture of %s (%s) refused: %v", p.id, p.describe(), err)
		}
		return true
	}
	p.status, p.received, p.succeededAt = psSucceeded, amount, time.Now()
	w.dirty[p.id] = true
	w.observe(p, res.GetPayment(), false)
	return true
}

func (w *world) cancel(o op) bool {
	p := w.pick(o.Sel, func(p *mPayment) bool {
		return settledAs(p, psRequiresCapture) || settledAs(p, psRequiresAction)
	})
	if p == nil {
		return false
	}
	who := w.merchantOf(p)
	if p.status == psRequiresAction {
		who = w.customerOf(p)
	}
	var res pb.CancelPaymentResponse
	if err := w.as(who, pCancel, &pb.CancelPaymentRequest{Id: p.id, Reason: "requested_by_customer"}, &res, w.key("cancel")); err != nil {
		if err.definitive() {
			w.tally.violate("cancel of %s (%s) refused: %v", p.id, p.describe(), err)
		}
		return true
	}
	p.status = psCanceled
	w.dirty[p.id] = true
	w.observe(p, res.GetPayment(), false)
	return true
}

// refundable: succeeded, money left, no dispute ever (disputes and refunds
// of one payment are exercised by the platform disputes' own steps).
//
// A payment of pm_card_refundFail takes one refund and no dispute: each of
// its refunds fails at the gateway some time after it succeeded (or never,
// when the worker holding the sandbox's timer died), so what is left of it
// is not known between settles; and a dispute's settlement refund that
// fails there is a documented case for a person (logged RECONCILE, see
// docs/API.md, Disputes), not something the model can settle.
func refundable(p *mPayment) bool {
	if p.method.refundFails && len(p.refunds) > 0 {
		return false
	}
	return settledAs(p, psSucceeded) && p.left() > 0 && p.openDispute() == nil && !p.method.networkDispute &&
		!p.networkAsked && !hasNetworkDispute(p)
}

// disputable: refundable, and not of pm_card_refundFail (see refundable).
func disputable(p *mPayment) bool { return refundable(p) && !p.method.refundFails }

func (w *world) refund(o op) bool {
	p := w.pick(o.Sel, refundable)
	if p == nil {
		return false
	}
	left := p.left()
	req := &pb.CreateRefundRequest{PaymentId: p.id}
	switch o.Kind {
	case "refund_partial":
		req.Amount = max(1, left*int64(1+o.X%3)/4)
	case "refund_too_much":
		req.Amount = left + 1 + int64(o.X%100)
	}
	var res pb.CreateRefundResponse
	err := w.as(w.merchantOf(p), pCreateRefund, req, &res, w.key("refund"))
	if o.Kind == "refund_too_much" {
		w.tally.check("refund_over_balance_refused")
		if err == nil || err.code != "failed_precondition" {
			w.tally.violate("a refund of %d of %s with %d left answered %v (refund %s), want failed_precondition",
				req.Amount, p.id, left, err, res.GetRefund().GetId())
		}
		w.dirty[p.id] = true
		return true
	}
	if err != nil {
		if err.definitive() {
			w.tally.violate("refund of %d of %s (%s) refused: %v", req.Amount, p.id, p.describe(), err)
		}
		return true
	}
	amount := req.Amount
	if amount == 0 {
		amount = left
	}
	rf := res.GetRefund()
	if rf.GetAmount() != amount {
		w.tally.violate("refund %s of %s is %d, asked %d", rf.GetId(), p.id, rf.GetAmount(), amount)
	}
	// The sandbox's timer of a refund's failure starts now.
	p.refunds = append(p.refunds, &mRefund{id: rf.GetId(), amount: amount, seenAt: time.Now()})
	w.dirty[p.id] = true
	return true
}

func (w *world) openDispute(o op) bool {
	p := w.pick(o.Sel, disputable)
	if p == nil {
		return false
	}
	opener, party := w.customerOf(p), "customer"
	if o.Kind == "dispute_merchant" {
		opener, party = w.merchantOf(p), "merchant"
	}
	left := p.left()
	req := &pb.OpenDisputeRequest{PaymentId: p.id, Reason: pb.DisputeReason_DISPUTE_REASON_PRODUCT_NOT_RECEIVED,
		Description: "chaos"}
	if o.X%2 == 1 {
		req.Amount = max(1, left/2)
	}
	var res pb.OpenDisputeResponse
	if err := w.as(opener, pOpenDispute, req, &res, w.key("dispute")); err != nil {
		if err.definitive() {
			w.tally.violate("dispute of %s by %s (%s) refused: %v", p.id, party, p.describe(), err)
		}
		return true
	}
	amount := req.Amount
	if amount == 0 {
		amount = left
	}
	d := res.GetDispute()
	if d.GetAmount() != amount || d.GetStatus().String() != dsNeedsResponse {
		w.tally.violate("dispute %s of %s: %d %s, want %d %s", d.GetId(), p.id, d.GetAmount(), d.GetStatus(), amount, dsNeedsResponse)
	}
	p.disputes = append(p.disputes, &mDispute{id: d.GetId(), openedBy: party, amount: amount, status: dsNeedsResponse})
	w.dirty[p.id] = true
	return true
}

// platformDispute picks an open dispute opened on the platform.
func (w *world) platformDispute(sel uint32, ok func(p *mPayment, d *mDispute) bool) (*mPayment, *mDispute) {
	p := w.pick(sel, func(p *mPayment) bool {
		d := p.openDispute()
		return d != nil && d.openedBy != "network" && ok(p, d)
	})
	if p == nil {
		return nil, nil
	}
	return p, p.openDispute()
}

func (w *world) actOnDispute(o op) bool {
	var p *mPayment
	var d *mDispute
	switch o.Kind {
	case "evidence":
		p, d = w.platformDispute(o.Sel, func(_ *mPayment, d *mDispute) bool { return d.status == dsNeedsResponse })
	case "accept":
		p, d = w.platformDispute(o.Sel, func(_ *mPayment, d *mDispute) bool { return d.openedBy == "customer" })
	default:
		p, d = w.platformDispute(o.Sel, func(*mPayment, *mDispute) bool { return true })
	}
	if p == nil {
		return false
	}
	var res pb.SubmitEvidenceResponse // every dispute action answers {dispute}
	var err *callErr
	var want string
	switch o.Kind {
	case "evidence":
		respondent := w.merchantOf(p)
		if d.openedBy == "merchant" {
			respondent = w.customerOf(p)
		}
		err = w.as(respondent, pSubmitEvidence, &pb.SubmitEvidenceRequest{DisputeId: d.id, Submit: true,
			Evidence: &pb.Evidence{Explanation: "chaos: delivered, tracking attached"}}, &res, w.key("evidence"))
		want = dsUnderReview
	case "accept":
		err = w.as(w.merchantOf(p), pAcceptDispute, &pb.AcceptDisputeRequest{DisputeId: d.id}, &res, w.key("accept"))
		want = dsAccepted
	case "withdraw":
		opener := w.customerOf(p)
		if d.openedBy == "merchant" {
			opener = w.merchantOf(p)
		}
		err = w.as(opener, pWithdraw, &pb.WithdrawDisputeRequest{DisputeId: d.id}, &res, w.key("withdraw"))
		want = dsWithdrawn
	case "resolve_won", "resolve_lost":
		outcome, st := pb.DisputeOutcome_DISPUTE_OUTCOME_WON, dsWon
		if o.Kind == "resolve_lost" {
			outcome, st = pb.DisputeOutcome_DISPUTE_OUTCOME_LOST, dsLost
		}
		err = w.as(w.admin, pResolveDispute, &pb.ResolveDisputeRequest{DisputeId: d.id, Outcome: outcome, Note: "chaos"}, &res, w.key("resolve"))
		want = st
	}
	if err != nil {
		if err.definitive() {
			w.tally.violate("%s of dispute %s (%s) refused: %v", o.Kind, d.id, p.describe(), err)
		}
		return true
	}
	if got := res.GetDispute().GetStatus().String(); got != want {
		w.tally.violate("%s of dispute %s answered %s, want %s", o.Kind, d.id, got, want)
	}
	d.status = want
	w.dirty[p.id] = true
	return true
}

// networkDispute has the card network dispute a payment, through the
// sandbox's route (as `paymentsd dev` offers it): the dispute reaches the
// platform as gateway events, and is adopted at the next settle.
func (w *world) networkDispute(o op) bool {
	p := w.pick(o.Sel, func(p *mPayment) bool {
		return settledAs(p, psSucceeded) && len(p.refunds) == 0 && len(p.disputes) == 0 && !p.networkAsked &&
			!p.method.networkDispute && !p.method.refundFails
	})
	if p == nil {
		return false
	}
	got, err := w.getPayment(p)
	if err != nil {
		return true
	}
	// The route is the API's: retried through its restarts, as any call.
	status, herr := 0, error(nil)
	for deadline, pause := time.Now().Add(retryWindow), 50*time.Millisecond; ; pause = min(2*pause, time.Second) {
		var res *http.Response
		if res, herr = w.api.hc.Post(w.c.apiURL+"/sandbox/payment_intents/"+got.GetGatewayReference()+"/dispute", "application/json", nil); herr == nil {
			res.Body.Close()
			status = res.StatusCode
		}
		if (herr == nil && status < 500) || time.Now().After(deadline) {
			break
		}
		time.Sleep(pause) // a client's backoff between retries
	}
	if status != http.StatusOK {
		w.tally.violate("the sandbox did not dispute %s (%s): HTTP %d %v", p.id, got.GetGatewayReference(), status, herr)
		return true
	}
	p.networkAsked, p.ref = true, got.GetGatewayReference()
	w.dirty[p.id] = true
	return true
}

func (w *world) actOnNetworkDispute(o op) bool {
	waiting := func(p *mPayment) *mDispute {
		for _, d := range p.disputes {
			if d.openedBy == "network" && d.status == dsNeedsResponse {
				return d
			}
		}
		return nil
	}
	p := w.pick(o.Sel, func(p *mPayment) bool { return waiting(p) != nil })
	if p == nil {
		return false
	}
	d := waiting(p)
	var res pb.SubmitEvidenceResponse // both actions answer {dispute}
	var err *callErr
	want, decides := dsAccepted, ""
	switch o.Kind {
	case "network_win", "network_lose":
		text := "winning_evidence"
		want, decides = dsUnderReview, dsWon
		if o.Kind == "network_lose" {
			text, decides = "losing_evidence", dsLost
		}
		err = w.as(w.merchantOf(p), pSubmitEvidence, &pb.SubmitEvidenceRequest{DisputeId: d.id, Submit: true,
			Evidence: &pb.Evidence{UncategorizedText: text}}, &res, w.key("nevidence"))
	case "network_accept":
		err = w.as(w.merchantOf(p), pAcceptDispute, &pb.AcceptDisputeRequest{DisputeId: d.id}, &res, w.key("naccept"))
	}
	w.dirty[p.id] = true
	if err != nil {
		if err.definitive() {
			w.tally.violate("%s of network dispute %s refused: %v", o.Kind, d.id, err)
		}
		return true
	}
	// A retry after a crash answers the dispute as it is by then: decided
	// already, perhaps.
	if got := res.GetDispute().GetStatus().String(); got != want && (decides == "" || got != decides) {
		w.tally.violate("%s of network dispute %s answered %s, want %s", o.Kind, d.id, got, want)
	}
	d.status, d.decides = want, decides
	return true
}

// redeliver has the sandbox deliver again, shuffled, every event it sent
// for a payment: late, twice and out of order. Nothing may change.
func (w *world) redeliver(o op) bool {
	p := w.pick(o.Sel, func(p *mPayment) bool {
		return p.ref != "" && (hasNetworkDispute(p) || (p.method.refundFails && len(p.refunds) > 0))
	})
	if p == nil {
		return false
	}
	n, err := w.c.sbx.Redeliver(w.ctx(), p.ref, w.rng.Shuffle)
	if err != nil {
		// The API was down for all of the sandbox's attempts: as Stripe,
		// the events come again at a later step.
		w.t.Logf("chaos: redelivery of %s: %v", p.ref, err)
	}
	w.tally.noteN("events_redelivered", n)
	w.dirty[p.id] = true
	return true
}

// fault injects a fault a moment after the step starts, while the next
// steps run, so that it strikes requests, activities and transactions in
// flight.
func (w *world) fault(o op) {
	delay := time.Duration(o.X%400) * time.Millisecond
	w.faults.start(func() {
		time.Sleep(delay) // the random moment
		var err error
		name := map[string]string{"kill_worker": "worker_sigkill", "kill_api": "api_sigkill"}[o.Kind]
		switch o.Kind {
		case "kill_worker":
			err = w.c.killWorker()
		case "kill_api":
			err = w.c.killAPI()
		case "restart_db":
			sig := syscall.SIGTERM
			name = "mariadb_restart"
			if o.Sel%2 == 1 {
				sig, name = syscall.SIGKILL, "mariadb_sigkill"
			}
			err = w.c.db.restart(sig, time.Duration(o.Sel%1500)*time.Millisecond)
		}
		w.tally.fault(name)
		if err != nil {
			// The platform could not be brought back: nothing after this
			// would say anything; the run stops at the next step.
			w.tally.violate("after the fault %s: %v", name, err)
			w.halted.Store(true)
		}
	})
}

// describeOps renders a list of steps for a failure's report.
func describeOps(ops []op) string {
	parts := make([]string, len(ops))
	for i, o := range ops {
		parts[i] = o.String()
	}
	return strings.Join(parts, " ")
}
