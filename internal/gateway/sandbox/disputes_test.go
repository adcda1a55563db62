package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
)

// disputes is a sandbox whose disputes open and close at once, posting to
// a fake webhook route.
type disputes struct {
	sb  *Sandbox
	rc  *receiver
	now time.Time
}

func newDisputes(t *testing.T, st State) *disputes {
	t.Helper()
	rc := newReceiver(t)
	// The receiver checks the signature's timestamp against the real clock.
	now := time.Now().Truncate(time.Second)
	return &disputes{sb: disputesOn(t, st, rc, now), rc: rc, now: now}
}

// disputesOn is another sandbox (process) on st, posting to rc.
func disputesOn(t *testing.T, st State, rc *receiver, now time.Time) *Sandbox {
	t.Helper()
	sb, err := New(Options{State: st, PublicURL: rc.srv.URL, WebhookSecret: testSecret,
		Now: func() time.Time { return now }, DisputeDelay: -1, RefundFailureDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	sb.eventRetryBackoff = time.Millisecond
	// No goroutine outlives the test (and its state).
	t.Cleanup(sb.background.Wait)
	return sb
}

// disputed makes a payment of pm_card_createDispute succeed (captured when
// manual) and waits for its dispute to open.
func (x *disputes) disputed(t *testing.T, key string, manual bool) gateway.Result {
	t.Helper()
	res, err := x.sb.CreatePayment(t.Context(), createReq(key, "pm_card_createDispute", manual))
	if err != nil {
		t.Fatal(err)
	}
	if manual {
		res, err = x.sb.Capture(t.Context(), gateway.CaptureRequest{IdempotencyKey: key + "/capture", Reference: res.Reference})
		if err != nil {
			t.Fatal(err)
		}
	}
	x.sb.background.Wait()
	return res
}

// update calls UpdateDispute on the dispute of x's payment ref.
func (x *disputes) update(t *testing.T, key, ref string, ev gateway.DisputeEvidence, submit bool) (gateway.DisputeResult, error) {
	t.Helper()
	res, err := x.sb.UpdateDispute(t.Context(), gateway.DisputeUpdateRequest{Gateway: Name, IdempotencyKey: key,
		Reference: DisputeReference(ref), Currency: "USD", Evidence: ev, Submit: submit})
	x.sb.background.Wait()
	return res, err
}

// opened is the dispute x's sandbox opens on the payment ref of 1234 USD.
func (x *disputes) opened(ref string) gateway.DisputeResult {
	return gateway.DisputeResult{Reference: DisputeReference(ref), PaymentReference: ref,
		Status: gateway.DisputeNeedsResponse, Amount: 1234, Currency: "USD", Reason: "fraudulent",
		DueBy: x.now.Add(7 * 24 * time.Hour).UTC()}
}

// disputeOf decodes the Dispute a delivered event carries, checking the
// signature and the envelope.
func disputeOf(t *testing.T, d delivery, wantID, wantType string) stripego.Dispute {
	t.Helper()
	if d.verifyErr != nil {
		t.Fatalf("delivery's signature does not verify: %v", d.verifyErr)
	}
	if d.path != "POST "+WebhookPath {
		t.Errorf("delivered to %s, want POST %s", d.path, WebhookPath)
	}
	if d.event.ID != wantID || d.event.Type != stripego.EventType(wantType) || d.event.Livemode ||
		d.event.APIVersion != APIVersion || d.event.Object != "event" {
		t.Errorf("event %s %s (livemode %v, api %s), want %s %s", d.event.ID, d.event.Type, d.event.Livemode,
			d.event.APIVersion, wantID, wantType)
	}
	var dp stripego.Dispute
	if err := json.Unmarshal(d.event.Data.Raw, &dp); err != nil {
		t.Fatalf("data.object is not a Dispute: %v: %s", err, d.event.Data.Raw)
	}
	return dp
}

// types lists the types of the deliveries.
func types(ds []delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.event.Type)
	}
	return out
}

func wantTypes(t *testing.T, ds []delivery, want ...string) {
	t.Helper()
	if got := strings.Join(types(ds), " "); got != strings.Join(want, " ") {
		t.Fatalf("deliveries\n got %s\nwant %s", got, strings.Join(want, " "))
	}
}

// TestDisputeOpensAfterSuccess: a payment of pm_card_createDispute is
// approved like pm_card_visa (visa 0259) and disputed once it succeeded,
// at its create or at its capture: the dispute is stored (another sandbox
// on the state sees it) and charge.dispute.created then
// charge.dispute.funds_withdrawn reach the webhook route, signed, with
// Stripe's Dispute object. A retry of the call that made it succeed opens
// nothing more and delivers the same events again.
func TestDisputeOpensAfterSuccess(t *testing.T) {
	for _, manual := range []bool{false, true} {
		t.Run(map[bool]string{false: "automatic", true: "manual"}[manual], func(t *testing.T) {
			ctx := t.Context()
			st := newState(t)
			x := newDisputes(t, st)
			key := "payment/pay_dispute/create/1"
			res, err := x.sb.CreatePayment(ctx, createReq(key, "pm_card_createDispute", manual))
			if err != nil {
				t.Fatal(err)
			}
			wantMethod := gateway.MethodDetails{Type: "card", Brand: "visa", Last4: "0259", ExpMonth: 12, ExpYear: 2034}
			if res.Method != wantMethod {
				t.Errorf("method %+v, want %+v", res.Method, wantMethod)
			}
			disputeRef := DisputeReference(res.Reference)
			if manual {
				if res.Status != gateway.StatusRequiresCapture {
					t.Fatalf("create: %+v", res)
				}
				x.sb.background.Wait()
				if n := len(x.rc.got()); n != 0 {
					t.Fatalf("%d events before the capture, want none", n)
				}
				_, err := x.sb.RetrieveDispute(ctx, disputeRef)
				wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
				if res, err = x.sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "capture/1", Reference: res.Reference}); err != nil {
					t.Fatal(err)
				}
			}
			if res.Status != gateway.StatusSucceeded || res.AmountReceived != 1234 {
				t.Fatalf("payment %+v, want succeeded", res)
			}
			x.sb.background.Wait()

			want := x.opened(res.Reference)
			for _, sb := range []*Sandbox{x.sb, newSandboxOn(t, st)} {
				if got, err := sb.RetrieveDispute(ctx, disputeRef); err != nil || got != want {
					t.Fatalf("RetrieveDispute = %+v, %v; want %+v", got, err, want)
				}
			}
			deliveries := x.rc.got()
			wantTypes(t, deliveries, EventDisputeCreated, EventDisputeFundsWithdrawn)
			for i, typ := range []string{EventDisputeCreated, EventDisputeFundsWithdrawn} {
				dp := disputeOf(t, deliveries[i], DisputeEventID(disputeRef, typ), typ)
				if dp.ID != disputeRef || dp.Object != "dispute" || dp.Amount != 1234 || dp.Currency != "usd" ||
					dp.Status != stripego.DisputeStatusNeedsResponse || dp.Reason != stripego.DisputeReasonFraudulent ||
					dp.PaymentIntent == nil || dp.PaymentIntent.ID != res.Reference ||
					dp.Charge == nil || dp.Charge.ID != chargeID(res.Reference) || !strings.HasPrefix(dp.Charge.ID, "ch_sbx_") ||
					dp.IsChargeRefundable || dp.Livemode || dp.Created != x.now.Unix() ||
					dp.Metadata["payment_id"] != "pay_01testpayment" || len(dp.Metadata) != 1 || len(dp.BalanceTransactions) != 0 {
					t.Errorf("%s: dispute %+v", typ, dp)
				}
				if ed := dp.EvidenceDetails; ed == nil || ed.DueBy != want.DueBy.Unix() || ed.HasEvidence || ed.PastDue || ed.SubmissionCount != 0 {
					t.Errorf("%s: evidence_details %+v", typ, dp.EvidenceDetails)
				}
				if deliveries[i].event.Created != x.now.Unix() {
					t.Errorf("%s: created %d", typ, deliveries[i].event.Created)
				}
			}

			// The retry of the call that made the payment succeed.
			if manual {
				_, err = x.sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "capture/1", Reference: res.Reference})
			} else {
				_, err = x.sb.CreatePayment(ctx, createReq(key, "pm_card_createDispute", manual))
			}
			if err != nil {
				t.Fatal(err)
			}
			x.sb.background.Wait()
			again := x.rc.got()
			wantTypes(t, again, EventDisputeCreated, EventDisputeFundsWithdrawn, EventDisputeCreated, EventDisputeFundsWithdrawn)
			for i := range 2 {
				if !bytes.Equal(again[2+i].body, deliveries[i].body) {
					t.Errorf("redelivery %d differs:\n%s\n%s", i, again[2+i].body, deliveries[i].body)
				}
			}
			if got, err := x.sb.RetrieveDispute(ctx, disputeRef); err != nil || got != want {
				t.Fatalf("RetrieveDispute after the retry = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

// TestDisputeOpensOnce: sandboxes on one state opening the same payment's
// dispute at once (the retries of its create and OpenDispute) open one,
// and every delivery of an event is the same.
func TestDisputeOpensOnce(t *testing.T) { forEachState(t, testDisputeOpensOnce) }

func testDisputeOpensOnce(t *testing.T, st State) {
	x := newDisputes(t, st)
	other := disputesOn(t, st, x.rc, x.now)
	key := "payment/pay_once/create/1"
	const calls = 6
	var wg sync.WaitGroup
	for i := range calls {
		sb := []*Sandbox{x.sb, other}[i%2]
		wg.Go(func() {
			res, err := sb.CreatePayment(t.Context(), createReq(key, "pm_card_createDispute", false))
			if err != nil || res.Status != gateway.StatusSucceeded {
				t.Errorf("CreatePayment %d = %+v, %v", i, res, err)
				return
			}
			if i%3 == 0 {
				if _, err := sb.OpenDispute(t.Context(), res.Reference); err != nil {
					t.Errorf("OpenDispute %d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	x.sb.background.Wait()
	other.background.Wait()
	ref := Reference(key)
	in, _, err := x.sb.loadIntent(t.Context(), ref)
	if err != nil || in.Dispute == nil || len(in.Dispute.Events) != 2 {
		t.Fatalf("intent's dispute %+v, %v; want one, with two events", in.Dispute, err)
	}
	bodies := map[string][]byte{}
	for _, d := range x.rc.got() {
		if first, ok := bodies[d.event.ID]; ok && !bytes.Equal(first, d.body) {
			t.Fatalf("two deliveries of %s differ:\n%s\n%s", d.event.ID, first, d.body)
		}
		bodies[d.event.ID] = d.body
	}
	if len(bodies) != 2 {
		t.Fatalf("%d distinct events, want 2", len(bodies))
	}
}

// TestUpdateDisputeStageAndSubmit: staged evidence changes nothing but the
// evidence and sends nothing; a submission makes the dispute under_review,
// counts, and delivers charge.dispute.updated; evidence that decides no
// outcome leaves it under review. A retry with the key answers the same
// and delivers the same event; the key with other evidence is refused; a
// second submission is another event.
func TestUpdateDisputeStageAndSubmit(t *testing.T) {
	ctx := t.Context()
	x := newDisputes(t, newState(t))
	paid := x.disputed(t, "payment/pay_stage/create/1", false)
	disputeRef := DisputeReference(paid.Reference)
	opened := x.opened(paid.Reference)

	staged, err := x.update(t, "dispute/stage/1", paid.Reference, gateway.DisputeEvidence{ProductDescription: "A kettle"}, false)
	if err != nil || staged != opened {
		t.Fatalf("staging = %+v, %v; want %+v", staged, err, opened)
	}
	wantTypes(t, x.rc.got(), EventDisputeCreated, EventDisputeFundsWithdrawn)
	in, _, _ := x.sb.loadIntent(ctx, paid.Reference)
	if in.Dispute.Evidence.ProductDescription != "A kettle" {
		t.Fatalf("staged evidence %+v", in.Dispute.Evidence)
	}

	ev := gateway.DisputeEvidence{Explanation: "Delivered.", ShippingTrackingNumber: "1Z999", UncategorizedText: "Order 42"}
	submitted, err := x.update(t, "dispute/submit/1", paid.Reference, ev, true)
	want := opened
	want.Status, want.SubmissionCount = gateway.DisputeUnderReview, 1
	if err != nil || submitted != want {
		t.Fatalf("submission = %+v, %v; want %+v", submitted, err, want)
	}
	in, _, _ = x.sb.loadIntent(ctx, paid.Reference)
	if e := in.Dispute.Evidence; e.ProductDescription != "A kettle" || e.ShippingTrackingNumber != "1Z999" ||
		e.Explanation != "Delivered." || e.UncategorizedText != "Order 42" {
		t.Fatalf("evidence after the submission %+v: the staged field must stay", e)
	}
	deliveries := x.rc.got()
	wantTypes(t, deliveries, EventDisputeCreated, EventDisputeFundsWithdrawn, EventDisputeUpdated)
	dp := disputeOf(t, deliveries[2], DisputeUpdatedEventID(disputeRef, 1), EventDisputeUpdated)
	if dp.Status != stripego.DisputeStatusUnderReview || dp.EvidenceDetails == nil || !dp.EvidenceDetails.HasEvidence ||
		dp.EvidenceDetails.SubmissionCount != 1 || dp.EvidenceDetails.PastDue || dp.Amount != 1234 {
		t.Errorf("dispute in the update %+v %+v", dp, dp.EvidenceDetails)
	}
	if got, err := x.sb.RetrieveDispute(ctx, disputeRef); err != nil || got != want {
		t.Fatalf("RetrieveDispute = %+v, %v; want %+v (no outcome: stays under review)", got, err, want)
	}

	// The retry.
	if again, err := x.update(t, "dispute/submit/1", paid.Reference, ev, true); err != nil || again != want {
		t.Fatalf("retry = %+v, %v; want %+v", again, err, want)
	}
	retried := x.rc.got()
	wantTypes(t, retried, EventDisputeCreated, EventDisputeFundsWithdrawn, EventDisputeUpdated, EventDisputeUpdated)
	if !bytes.Equal(retried[3].body, deliveries[2].body) {
		t.Errorf("redelivery differs:\n%s\n%s", retried[3].body, deliveries[2].body)
	}
	other := ev
	other.UncategorizedText = "something else"
	_, err = x.update(t, "dispute/submit/1", paid.Reference, other, true)
	wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)

	// A second submission is counted, and told with an event of its own.
	second, err := x.update(t, "dispute/submit/2", paid.Reference, other, true)
	if err != nil || second.SubmissionCount != 2 || second.Status != gateway.DisputeUnderReview {
		t.Fatalf("second submission = %+v, %v", second, err)
	}
	last := x.rc.got()
	if len(last) != 5 || last[4].event.ID != DisputeUpdatedEventID(disputeRef, 2) {
		t.Fatalf("deliveries %v, want a fifth, %s", types(last), DisputeUpdatedEventID(disputeRef, 2))
	}
	if dp := disputeOf(t, last[4], DisputeUpdatedEventID(disputeRef, 2), EventDisputeUpdated); dp.EvidenceDetails.SubmissionCount != 2 {
		t.Errorf("second update: %+v", dp.EvidenceDetails)
	}
}

// TestDisputeOutcome: as in Stripe's test mode, submitted evidence holding
// winning_evidence closes the dispute as won (closed, funds_reinstated),
// losing_evidence as lost (closed); a closed dispute takes no more
// evidence, and a disputed payment no refund unless the dispute was won.
func TestDisputeOutcome(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ev     gateway.DisputeEvidence
		status gateway.DisputeStatus
		events []string
	}{
		{"winning text", gateway.DisputeEvidence{UncategorizedText: "see winning_evidence"}, gateway.DisputeWon,
			[]string{EventDisputeClosed, EventDisputeFundsReinstated}},
		{"winning explanation", gateway.DisputeEvidence{Explanation: "winning_evidence"}, gateway.DisputeWon,
			[]string{EventDisputeClosed, EventDisputeFundsReinstated}},
		{"losing text", gateway.DisputeEvidence{UncategorizedText: "losing_evidence"}, gateway.DisputeLost,
			[]string{EventDisputeClosed}},
		{"losing explanation", gateway.DisputeEvidence{Explanation: "it is losing_evidence"}, gateway.DisputeLost,
			[]string{EventDisputeClosed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			x := newDisputes(t, newState(t))
			paid := x.disputed(t, "payment/pay_outcome/create/1", false)
			disputeRef := DisputeReference(paid.Reference)

			// Refused while disputed.
			_, err := x.sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "refund/1", Reference: paid.Reference, Amount: 100})
			wantGatewayError(t, err, gateway.Invalid, "charge_disputed", http.StatusBadRequest)

			res, err := x.update(t, "dispute/submit/1", paid.Reference, tc.ev, true)
			if err != nil || res.Status != gateway.DisputeUnderReview || res.SubmissionCount != 1 {
				t.Fatalf("submission = %+v, %v; want under_review (it closes later)", res, err)
			}
			want := x.opened(paid.Reference)
			want.Status, want.SubmissionCount = tc.status, 1
			if got, err := x.sb.RetrieveDispute(ctx, disputeRef); err != nil || got != want {
				t.Fatalf("RetrieveDispute = %+v, %v; want %+v", got, err, want)
			}
			deliveries := x.rc.got()
			wantTypes(t, deliveries, append([]string{EventDisputeCreated, EventDisputeFundsWithdrawn, EventDisputeUpdated}, tc.events...)...)
			for i, typ := range tc.events {
				dp := disputeOf(t, deliveries[3+i], DisputeEventID(disputeRef, typ), typ)
				if string(dp.Status) != string(tc.status) || dp.EvidenceDetails.SubmissionCount != 1 || !dp.EvidenceDetails.HasEvidence {
					t.Errorf("%s: dispute %+v %+v", typ, dp, dp.EvidenceDetails)
				}
			}

			// Closed: no more evidence, staged or submitted, whatever the key.
			for _, submit := range []bool{false, true} {
				_, err = x.update(t, "dispute/late/"+tc.name+map[bool]string{false: "/stage", true: "/submit"}[submit],
					paid.Reference, gateway.DisputeEvidence{UncategorizedText: "more"}, submit)
				ge := wantGatewayError(t, err, gateway.Invalid, "dispute_already_closed", http.StatusBadRequest)
				if !strings.Contains(ge.Message, string(tc.status)) {
					t.Errorf("message %q does not say %s", ge.Message, tc.status)
				}
			}
			// The retry of the submission answers as it did, and tells the
			// submission and the closing again, the same.
			if again, err := x.update(t, "dispute/submit/1", paid.Reference, tc.ev, true); err != nil || again != res {
				t.Fatalf("retry = %+v, %v; want %+v", again, err, res)
			}
			again := x.rc.got()
			if len(again) != 2*len(deliveries)-2 {
				t.Fatalf("deliveries after the retry: %v", types(again))
			}
			for i, d := range again[len(deliveries):] {
				if !bytes.Equal(d.body, deliveries[2+i].body) {
					t.Errorf("redelivery %d differs:\n%s\n%s", i, d.body, deliveries[2+i].body)
				}
			}

			_, err = x.sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "refund/2", Reference: paid.Reference, Amount: 100})
			if tc.status == gateway.DisputeWon {
				if err != nil {
					t.Fatalf("refund after a won dispute: %v", err)
				}
			} else {
				wantGatewayError(t, err, gateway.Invalid, "charge_disputed", http.StatusBadRequest)
			}
		})
	}
}

// TestUpdateDisputeRefusals: an unknown dispute is resource_missing (404),
// whether its id is not the sandbox's, names no payment, or names one not
// disputed; another currency than the payment's, and evidence longer than
// Stripe takes, are refused.
func TestUpdateDisputeRefusals(t *testing.T) {
	ctx := t.Context()
	x := newDisputes(t, newState(t))
	paid := x.disputed(t, "payment/pay_refusals/create/1", false)
	visa := mkPayment(t, x.sb, "payment/pay_visa/create/1", "pay_visa", "pm_card_visa", false)
	for _, ref := range []string{"", "dp_1Abc", "dp_sbx_x", DisputeReference(Reference("never made")), DisputeReference(visa.Reference)} {
		_, err := x.sb.UpdateDispute(ctx, gateway.DisputeUpdateRequest{IdempotencyKey: "dispute/unknown/" + ref, Reference: ref, Submit: true})
		ge := wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
		if !strings.Contains(ge.Message, "No such dispute") {
			t.Errorf("%q: message %q", ref, ge.Message)
		}
		_, err = x.sb.RetrieveDispute(ctx, ref)
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
	}
	r := gateway.DisputeUpdateRequest{IdempotencyKey: "dispute/eur", Reference: DisputeReference(paid.Reference), Currency: "EUR", Submit: true}
	_, err := x.sb.UpdateDispute(ctx, r)
	wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)
	r.Currency = "XXXX"
	_, err = x.sb.UpdateDispute(ctx, r)
	wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)

	r = gateway.DisputeUpdateRequest{IdempotencyKey: "dispute/long", Reference: DisputeReference(paid.Reference), Submit: true,
		Evidence: gateway.DisputeEvidence{RefundPolicy: strings.Repeat("é", maxEvidenceChars+1)}}
	_, err = x.sb.UpdateDispute(ctx, r)
	ge := wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)
	if !strings.Contains(ge.Message, "refund_policy") {
		t.Errorf("message %q names no field", ge.Message)
	}
	// Not saved: the key is free, and the longest text is taken.
	r.Evidence.RefundPolicy = strings.Repeat("é", maxEvidenceChars)
	if res, err := x.sb.UpdateDispute(ctx, r); err != nil || res.SubmissionCount != 1 {
		t.Fatalf("after the refusal: %+v, %v", res, err)
	}
	x.sb.background.Wait()

	// Down: nothing reaches the provider.
	x.sb.SetDown(true)
	_, err = x.sb.UpdateDispute(ctx, r)
	wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
	_, err = x.sb.RetrieveDispute(ctx, r.Reference)
	wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
}

// TestUpdateDisputePastDue: evidence submitted after due_by is taken, and
// marked past_due, as at Stripe.
func TestUpdateDisputePastDue(t *testing.T) {
	x := newDisputes(t, newState(t))
	paid := x.disputed(t, "payment/pay_late/create/1", false)
	x.sb.now = func() time.Time { return x.now.Add(8 * 24 * time.Hour) }
	if _, err := x.update(t, "dispute/late", paid.Reference, gateway.DisputeEvidence{UncategorizedText: "late"}, true); err != nil {
		t.Fatal(err)
	}
	in, _, _ := x.sb.loadIntent(t.Context(), paid.Reference)
	if !in.Dispute.PastDue {
		t.Fatalf("dispute %+v: want past_due", in.Dispute)
	}
}

// TestOpenDispute: any succeeded payment can be disputed, once; one that
// has not succeeded, or was refunded in full, is refused; an unknown one
// is resource_missing.
func TestOpenDispute(t *testing.T) {
	ctx := t.Context()
	x := newDisputes(t, newState(t))
	visa := mkPayment(t, x.sb, "payment/pay_open/create/1", "pay_open", "pm_card_visa", false)
	x.sb.SetDown(true) // the network's doing, not a call to the provider
	got, err := x.sb.OpenDispute(ctx, visa.Reference)
	want := x.opened(visa.Reference)
	if err != nil || got != want {
		t.Fatalf("OpenDispute = %+v, %v; want %+v", got, err, want)
	}
	x.sb.SetDown(false)
	x.sb.background.Wait() // the two calls' deliveries in turn
	if again, err := x.sb.OpenDispute(ctx, visa.Reference); err != nil || again != want {
		t.Fatalf("OpenDispute again = %+v, %v; want %+v", again, err, want)
	}
	x.sb.background.Wait()
	deliveries := x.rc.got()
	wantTypes(t, deliveries, EventDisputeCreated, EventDisputeFundsWithdrawn, EventDisputeCreated, EventDisputeFundsWithdrawn)
	if dp := disputeOf(t, deliveries[0], DisputeEventID(want.Reference, EventDisputeCreated), EventDisputeCreated); dp.Metadata["payment_id"] != "pay_open" {
		t.Errorf("metadata %v", dp.Metadata)
	}

	for _, tc := range []struct {
		name, method string
		manual       bool
		code         string
	}{
		{"requires_capture", "pm_card_visa", true, "payment_intent_unexpected_state"},
		{"failed", "pm_card_chargeDeclined", false, "payment_intent_unexpected_state"},
		{"requires_action", "pm_card_authenticationRequired", false, "payment_intent_unexpected_state"},
	} {
		res := mkPayment(t, x.sb, "payment/pay_"+tc.name+"/create/1", "pay_"+tc.name, tc.method, tc.manual)
		_, err := x.sb.OpenDispute(ctx, res.Reference)
		wantGatewayError(t, err, gateway.Invalid, tc.code, http.StatusBadRequest)
	}
	refunded := mkPayment(t, x.sb, "payment/pay_refunded/create/1", "pay_refunded", "pm_card_visa", false)
	if _, err := x.sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "refund/all", Reference: refunded.Reference}); err != nil {
		t.Fatal(err)
	}
	_, err = x.sb.OpenDispute(ctx, refunded.Reference)
	wantGatewayError(t, err, gateway.Invalid, "charge_already_refunded", http.StatusBadRequest)
	for _, ref := range []string{"pi_1Abc", Reference("never made")} {
		_, err = x.sb.OpenDispute(ctx, ref)
		wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
	}
	x.sb.background.Wait()
	if n := len(x.rc.got()); n != len(deliveries) {
		t.Fatalf("%d deliveries after the refusals, want %d", n, len(deliveries))
	}
}

// TestOpenDisputeRoute: Handler serves OpenDispute at POST
// /sandbox/payment_intents/{ref}/dispute, answering JSON.
func TestOpenDisputeRoute(t *testing.T) {
	x := newDisputes(t, newState(t))
	visa := mkPayment(t, x.sb, "payment/pay_route/create/1", "pay_route", "pm_card_visa", false)
	held := mkPayment(t, x.sb, "payment/pay_held/create/1", "pay_held", "pm_card_visa", true)
	h := x.sb.Handler()
	post := func(method, ref string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, PaymentIntentsPath+ref+"/dispute", nil))
		return w
	}

	w := post(http.MethodPost, visa.Reference)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("POST: %d %s\n%s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var got disputeJSON
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := disputeJSON{Reference: DisputeReference(visa.Reference), PaymentReference: visa.Reference,
		Status: "needs_response", Amount: 1234, Currency: "USD", Reason: "fraudulent",
		DueBy: x.now.Add(7 * 24 * time.Hour).UTC().Format(time.RFC3339)}
	if got != want {
		t.Fatalf("answer %+v, want %+v", got, want)
	}
	x.sb.background.Wait()
	wantTypes(t, x.rc.got(), EventDisputeCreated, EventDisputeFundsWithdrawn)

	for _, tc := range []struct {
		method, ref string
		status      int
		code        string
	}{
		{http.MethodPost, held.Reference, http.StatusBadRequest, "payment_intent_unexpected_state"},
		{http.MethodPost, Reference("never made"), http.StatusNotFound, "resource_missing"},
		{http.MethodPost, "pi_nope", http.StatusNotFound, "resource_missing"},
		{http.MethodGet, visa.Reference, http.StatusMethodNotAllowed, ""},
	} {
		w := post(tc.method, tc.ref)
		if w.Code != tc.status {
			t.Errorf("%s %s: %d, want %d\n%s", tc.method, tc.ref, w.Code, tc.status, w.Body)
			continue
		}
		if tc.code == "" {
			continue
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != tc.code || e.Error.Message == "" {
			t.Errorf("%s %s: %v %s", tc.method, tc.ref, err, w.Body)
		}
	}
}

// TestDisputeEventAmounts: the event carries the dispute's amount in the
// gateway's units (5 ISK is 500), as Stripe's do, and Stripe's shape.
func TestDisputeEventAmounts(t *testing.T) {
	ref := Reference("isk")
	d := &disputeState{ID: DisputeReference(ref), Amount: 5, Reason: "fraudulent", Status: "needs_response", DueBy: 30, Created: 10}
	d.record(DisputeEventID(d.ID, EventDisputeCreated), EventDisputeCreated, 20)
	in := &intent{ID: ref, Currency: "ISK", Dispute: d}
	ev, ok := disputeEvent(in, DisputeEventID(d.ID, EventDisputeCreated))
	if !ok {
		t.Fatal("no event")
	}
	obj := ev.Data.Object
	if obj.Amount != 500 || obj.Currency != "isk" || ev.Created != 20 || obj.Created != 10 || len(obj.Metadata) != 0 ||
		obj.EvidenceDetails.DueBy != 30 || ev.Type != EventDisputeCreated {
		t.Fatalf("event = %+v", ev)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"balance_transactions":[]`, `"metadata":{}`, `"is_charge_refundable":false`,
		`"charge":"ch_sbx_`, `"object":"dispute"`, `"evidence_details":{"due_by":30,"has_evidence":false,"past_due":false,"submission_count":0}`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("event JSON lacks %s: %s", want, raw)
		}
	}
	if _, ok := disputeEvent(in, DisputeEventID(d.ID, EventDisputeClosed)); ok {
		t.Error("an event the dispute did not record was built")
	}
}

// TestDisputeEventIDs: ids are stable, and differ per dispute, type and
// submission.
func TestDisputeEventIDs(t *testing.T) {
	a, b := DisputeReference(Reference("a")), DisputeReference(Reference("b"))
	ids := map[string]bool{}
	for _, id := range []string{
		DisputeEventID(a, EventDisputeCreated), DisputeEventID(a, EventDisputeFundsWithdrawn), DisputeEventID(a, EventDisputeClosed),
		DisputeEventID(a, EventDisputeFundsReinstated), DisputeEventID(b, EventDisputeCreated),
		DisputeUpdatedEventID(a, 1), DisputeUpdatedEventID(a, 2), DisputeUpdatedEventID(b, 1),
	} {
		if ids[id] || !strings.HasPrefix(id, "evt_sbx_") {
			t.Fatalf("id %s repeated or malformed", id)
		}
		ids[id] = true
	}
	if DisputeEventID(a, EventDisputeCreated) != DisputeEventID(a, EventDisputeCreated) {
		t.Fatal("unstable id")
	}
	if got := DisputeReference(Reference("a")); !strings.HasPrefix(got, DisputePrefix) || len(got) != len(DisputePrefix)+refHashChars {
		t.Fatalf("DisputeReference = %q", got)
	}
	if DisputeReference("pi_1Abc") != "" {
		t.Fatal("a dispute reference for a payment that is not the sandbox's")
	}
}

// TestDisputeDelayOption: zero is the default delay, a negative delay is
// none.
func TestDisputeDelayOption(t *testing.T) {
	for _, tc := range []struct{ opt, want time.Duration }{
		{0, DefaultDisputeDelay},
		{-1, 0},
		{time.Minute, time.Minute},
	} {
		sb, err := New(Options{State: newState(t), DisputeDelay: tc.opt})
		if err != nil {
			t.Fatal(err)
		}
		if sb.disputeDelay != tc.want {
			t.Errorf("DisputeDelay %v: delay %v, want %v", tc.opt, sb.disputeDelay, tc.want)
		}
	}
	if DefaultDisputeDelay != 2*time.Second {
		t.Errorf("DefaultDisputeDelay = %v, want 2s", DefaultDisputeDelay)
	}
}

// closeDispute calls CloseDispute on the dispute of x's payment ref and
// waits for its deliveries.
func (x *disputes) closeDispute(t *testing.T, key, ref string) (gateway.DisputeResult, error) {
	t.Helper()
	res, err := x.sb.CloseDispute(t.Context(), gateway.DisputeCloseRequest{Gateway: Name, IdempotencyKey: key,
		Reference: DisputeReference(ref), Currency: "USD"})
	x.sb.background.Wait()
	return res, err
}

// TestCloseDispute: a close makes the dispute lost at once (with whatever
// evidence it had staged or submitted) and delivers charge.dispute.closed,
// signed, status lost, with the id of a close by losing_evidence; a retry
// with the key answers the same and delivers the same event again; the
// lost dispute takes no other close, no evidence, and the payment no
// refund.
func TestCloseDispute(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ev        *gateway.DisputeEvidence // before the close, if any
		submit    bool
		submitted int64
	}{
		{name: "needs_response"},
		{name: "staged", ev: &gateway.DisputeEvidence{UncategorizedText: "staged"}},
		{name: "under_review", ev: &gateway.DisputeEvidence{UncategorizedText: "no decision"}, submit: true, submitted: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			st := newState(t)
			x := newDisputes(t, st)
			paid := x.disputed(t, "payment/pay_close/create/1", false)
			disputeRef := DisputeReference(paid.Reference)
			before := []string{EventDisputeCreated, EventDisputeFundsWithdrawn}
			if tc.ev != nil {
				if _, err := x.update(t, "dispute/evidence/1", paid.Reference, *tc.ev, tc.submit); err != nil {
					t.Fatal(err)
				}
				if tc.submit {
					before = append(before, EventDisputeUpdated)
				}
			}

			res, err := x.closeDispute(t, "dispute/close/1", paid.Reference)
			want := x.opened(paid.Reference)
			want.Status, want.SubmissionCount = gateway.DisputeLost, tc.submitted
			if err != nil || res != want {
				t.Fatalf("CloseDispute = %+v, %v; want %+v", res, err, want)
			}
			for _, sb := range []*Sandbox{x.sb, newSandboxOn(t, st)} {
				if got, err := sb.RetrieveDispute(ctx, disputeRef); err != nil || got != want {
					t.Fatalf("RetrieveDispute = %+v, %v; want %+v", got, err, want)
				}
			}
			deliveries := x.rc.got()
			wantTypes(t, deliveries, append(before, EventDisputeClosed)...)
			closed := deliveries[len(before)]
			dp := disputeOf(t, closed, DisputeEventID(disputeRef, EventDisputeClosed), EventDisputeClosed)
			if dp.ID != disputeRef || dp.Status != stripego.DisputeStatusLost || dp.Amount != 1234 || dp.Currency != "usd" ||
				dp.PaymentIntent == nil || dp.PaymentIntent.ID != paid.Reference || dp.Metadata["payment_id"] != "pay_01testpayment" {
				t.Errorf("closed: dispute %+v", dp)
			}
			if ed := dp.EvidenceDetails; ed == nil || ed.SubmissionCount != tc.submitted || ed.HasEvidence != (tc.ev != nil) {
				t.Errorf("closed: evidence_details %+v", dp.EvidenceDetails)
			}
			if closed.event.Created != x.now.Unix() {
				t.Errorf("closed: created %d", closed.event.Created)
			}

			// The retry, from this process or another: the same answer, the
			// same event again.
			other := disputesOn(t, st, x.rc, x.now)
			for i, sb := range []*Sandbox{x.sb, other} {
				again, err := sb.CloseDispute(ctx, gateway.DisputeCloseRequest{Gateway: Name, IdempotencyKey: "dispute/close/1",
					Reference: disputeRef, Currency: "USD"})
				sb.background.Wait()
				if err != nil || again != want {
					t.Fatalf("retry %d = %+v, %v; want %+v", i, again, err, want)
				}
				got := x.rc.got()
				if len(got) != len(deliveries)+i+1 {
					t.Fatalf("deliveries after retry %d: %v", i, types(got))
				}
				if d := got[len(got)-1]; !bytes.Equal(d.body, closed.body) {
					t.Errorf("redelivery %d differs:\n%s\n%s", i, d.body, closed.body)
				}
			}
			n := len(x.rc.got())

			// Lost: no other close, no evidence, no refund; nothing sent.
			_, err = x.closeDispute(t, "dispute/close/2", paid.Reference)
			ge := wantGatewayError(t, err, gateway.Invalid, "dispute_already_closed", http.StatusBadRequest)
			if !strings.Contains(ge.Message, "lost") {
				t.Errorf("message %q does not say lost", ge.Message)
			}
			for _, submit := range []bool{false, true} {
				_, err = x.update(t, "dispute/after-close/"+map[bool]string{false: "stage", true: "submit"}[submit],
					paid.Reference, gateway.DisputeEvidence{UncategorizedText: "winning_evidence"}, submit)
				wantGatewayError(t, err, gateway.Invalid, "dispute_already_closed", http.StatusBadRequest)
			}
			_, err = x.sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "refund/1", Reference: paid.Reference, Amount: 100})
			wantGatewayError(t, err, gateway.Invalid, "charge_disputed", http.StatusBadRequest)
			// The close's key names the close alone.
			_, err = x.update(t, "dispute/close/1", paid.Reference, gateway.DisputeEvidence{}, false)
			wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
			if got, err := x.sb.RetrieveDispute(ctx, disputeRef); err != nil || got != want {
				t.Fatalf("RetrieveDispute at the end = %+v, %v; want %+v", got, err, want)
			}
			x.sb.background.Wait()
			if got := x.rc.got(); len(got) != n {
				t.Fatalf("deliveries after the refusals: %v", types(got))
			}
		})
	}
}

// TestCloseDisputeRefusals: an unknown dispute is resource_missing (404),
// as for UpdateDispute; a dispute closed by its evidence, won or lost, is
// dispute_already_closed, even for a retry of the submission's key; another
// currency than the payment's is refused (the refusal saved under its key,
// as UpdateDispute's); down, nothing reaches the provider.
func TestCloseDisputeRefusals(t *testing.T) {
	ctx := t.Context()
	x := newDisputes(t, newState(t))
	visa := mkPayment(t, x.sb, "payment/pay_visa/create/1", "pay_visa", "pm_card_visa", false)
	for _, ref := range []string{"", "dp_1Abc", "dp_sbx_x", DisputeReference(Reference("never made")), DisputeReference(visa.Reference)} {
		_, err := x.sb.CloseDispute(ctx, gateway.DisputeCloseRequest{IdempotencyKey: "dispute/unknown/" + ref, Reference: ref})
		ge := wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusNotFound)
		if !strings.Contains(ge.Message, "No such dispute") {
			t.Errorf("%q: message %q", ref, ge.Message)
		}
	}

	for _, tc := range []struct {
		word   string
		status gateway.DisputeStatus
	}{{WinningEvidence, gateway.DisputeWon}, {LosingEvidence, gateway.DisputeLost}} {
		paid := x.disputed(t, "payment/pay_"+tc.word+"/create/1", false)
		decided, err := x.update(t, "dispute/"+tc.word, paid.Reference, gateway.DisputeEvidence{UncategorizedText: tc.word}, true)
		if err != nil {
			t.Fatal(err)
		}
		n := len(x.rc.got())
		_, err = x.closeDispute(t, "dispute/close/"+tc.word, paid.Reference)
		ge := wantGatewayError(t, err, gateway.Invalid, "dispute_already_closed", http.StatusBadRequest)
		if !strings.Contains(ge.Message, string(tc.status)) {
			t.Errorf("%s: message %q does not say %s", tc.word, ge.Message, tc.status)
		}
		// The refusal is saved: the retry is refused alike.
		_, err = x.closeDispute(t, "dispute/close/"+tc.word, paid.Reference)
		wantGatewayError(t, err, gateway.Invalid, "dispute_already_closed", http.StatusBadRequest)
		// The submission's key is the submission's.
		_, err = x.closeDispute(t, "dispute/"+tc.word, paid.Reference)
		wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
		want := decided
		want.Status = tc.status
		if got, err := x.sb.RetrieveDispute(ctx, DisputeReference(paid.Reference)); err != nil || got != want {
			t.Fatalf("%s: RetrieveDispute = %+v, %v; want %+v", tc.word, got, err, want)
		}
		if got := x.rc.got(); len(got) != n {
			t.Fatalf("%s: deliveries after the refusals: %v", tc.word, types(got[n:]))
		}
	}

	paid := x.disputed(t, "payment/pay_currency/create/1", false)
	r := gateway.DisputeCloseRequest{IdempotencyKey: "dispute/eur", Reference: DisputeReference(paid.Reference), Currency: "EUR"}
	_, err := x.sb.CloseDispute(ctx, r)
	wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)
	r.Currency = "XXXX"
	_, err = x.sb.CloseDispute(ctx, r)
	wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)
	r.Currency = "USD"
	_, err = x.sb.CloseDispute(ctx, r)
	wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)
	if got, err := x.sb.RetrieveDispute(ctx, r.Reference); err != nil || got.Status != gateway.DisputeNeedsResponse {
		t.Fatalf("after the refusals: %+v, %v", got, err)
	}

	// Down: nothing reaches the provider, and the retry closes it.
	x.sb.SetDown(true)
	r.IdempotencyKey, r.Currency = "dispute/close", "usd"
	_, err = x.sb.CloseDispute(ctx, r)
	wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
	x.sb.SetDown(false)
	if res, err := x.sb.CloseDispute(ctx, r); err != nil || res.Status != gateway.DisputeLost {
		t.Fatalf("after the outage: %+v, %v", res, err)
	}
}

// TestCloseDisputeBeforeItsOutcome: a close while evidence that decides
// the outcome is under review (its close DisputeDelay away) loses the
// dispute at once; when the evidence's time comes, nothing changes, and
// the close event it delivers is the close's, the same.
func TestCloseDisputeBeforeItsOutcome(t *testing.T) {
	x := newDisputes(t, newState(t))
	paid := x.disputed(t, "payment/pay_race/create/1", false)
	slow, err := New(Options{State: x.sb.state, PublicURL: x.rc.srv.URL, WebhookSecret: testSecret,
		Now: func() time.Time { return x.now }, DisputeDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	slow.eventRetryBackoff = time.Millisecond
	t.Cleanup(slow.background.Wait)
	_, err = slow.UpdateDispute(t.Context(), gateway.DisputeUpdateRequest{IdempotencyKey: "dispute/win", Reference: DisputeReference(paid.Reference),
		Evidence: gateway.DisputeEvidence{UncategorizedText: WinningEvidence}, Submit: true})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(x.rc.got()) < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %v: the submission was not told", types(x.rc.got()))
		}
	}
	res, err := x.closeDispute(t, "dispute/close", paid.Reference)
	if err != nil || res.Status != gateway.DisputeLost || res.SubmissionCount != 1 {
		t.Fatalf("CloseDispute = %+v, %v; want lost", res, err)
	}
	slow.background.Wait()
	if got, err := x.sb.RetrieveDispute(t.Context(), res.Reference); err != nil || got != res {
		t.Fatalf("RetrieveDispute = %+v, %v; want %+v", got, err, res)
	}
	deliveries := x.rc.got()
	wantTypes(t, deliveries, EventDisputeCreated, EventDisputeFundsWithdrawn, EventDisputeUpdated, EventDisputeClosed, EventDisputeClosed)
	if !bytes.Equal(deliveries[3].body, deliveries[4].body) {
		t.Errorf("two different close events:\n%s\n%s", deliveries[3].body, deliveries[4].body)
	}
	if dp := disputeOf(t, deliveries[4], DisputeEventID(res.Reference, EventDisputeClosed), EventDisputeClosed); dp.Status != stripego.DisputeStatusLost {
		t.Errorf("closed: status %s", dp.Status)
	}
}

// TestCloseDisputeOnce: sandboxes on one state closing a dispute at once
// close it once: every call with the close's key answers lost, every
// other is refused as closed, and every delivery is the same event.
func TestCloseDisputeOnce(t *testing.T) { forEachState(t, testCloseDisputeOnce) }

func testCloseDisputeOnce(t *testing.T, st State) {
	x := newDisputes(t, st)
	other := disputesOn(t, st, x.rc, x.now)
	paid := x.disputed(t, "payment/pay_close_once/create/1", false)
	disputeRef := DisputeReference(paid.Reference)
	const calls = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		lost    = map[string]int{}
		refused int
	)
	for i := range calls {
		sb := []*Sandbox{x.sb, other}[i%2]
		key := []string{"dispute/close/a", "dispute/close/b"}[i/2%2]
		wg.Go(func() {
			res, err := sb.CloseDispute(t.Context(), gateway.DisputeCloseRequest{IdempotencyKey: key, Reference: disputeRef})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && res.Status == gateway.DisputeLost:
				lost[key]++
			case gateway.KindOf(err) == gateway.Invalid && strings.Contains(err.Error(), "dispute_already_closed"):
				refused++
			default:
				t.Errorf("CloseDispute %d (%s) = %+v, %v", i, key, res, err)
			}
		})
	}
	wg.Wait()
	x.sb.background.Wait()
	other.background.Wait()
	if len(lost) != 1 || refused != calls/2 {
		t.Fatalf("lost %v, refused %d; want one key's %d calls lost, the other's refused", lost, refused, calls/2)
	}
	in, _, err := x.sb.loadIntent(t.Context(), paid.Reference)
	if err != nil || in.Dispute == nil || in.Dispute.Status != string(gateway.DisputeLost) || len(in.Dispute.Events) != 3 {
		t.Fatalf("intent's dispute %+v, %v; want lost, with three events", in.Dispute, err)
	}
	var closed [][]byte
	for _, d := range x.rc.got() {
		if string(d.event.Type) == EventDisputeClosed {
			closed = append(closed, d.body)
		}
	}
	if len(closed) != calls/2 {
		t.Fatalf("%d close events delivered, want one per call that closed", len(closed))
	}
	for _, b := range closed[1:] {
		if !bytes.Equal(b, closed[0]) {
			t.Fatalf("two close events differ:\n%s\n%s", closed[0], b)
		}
	}
}
