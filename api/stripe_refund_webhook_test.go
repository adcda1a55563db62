package api_test

// Tests of the Stripe webhook's refund events against a fake Temporal
// client: which events reach which refund's workflow, with what, and how a
// refund whose workflow has ended gets a new run.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent"
	entdispute "github.com/payments-platform/payments/ent/dispute"
	entpayment "github.com/payments-platform/payments/ent/payment"
	entrefund "github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/refund"
)

// refundSignal is one signal the fake received, with or without a start.
type refundSignal struct {
	workflowID, name string
	event            refund.GatewayEvent
	// start is set for a SignalWithStartWorkflow.
	start *refundStart
}

type refundStart struct {
	opts     client.StartWorkflowOptions
	workflow any
	in       refund.Input
}

// refundTemporal is a client.Client for the webhook's refund path: it
// records signals, and SignalWorkflow answers signalErr(workflowID). Any
// other method is the nil embedded interface's and panics.
type refundTemporal struct {
	client.Client
	signalErr func(workflowID string) error

	mu      sync.Mutex
	signals []refundSignal
}

func (f *refundTemporal) SignalWorkflow(_ context.Context, workflowID, _ string, name string, arg any) error {
	if f.signalErr != nil {
		if err := f.signalErr(workflowID); err != nil {
			return err
		}
	}
	ev, _ := arg.(refund.GatewayEvent)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, refundSignal{workflowID: workflowID, name: name, event: ev})
	return nil
}

func (f *refundTemporal) SignalWithStartWorkflow(_ context.Context, workflowID, name string, arg any,
	opts client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	ev, _ := arg.(refund.GatewayEvent)
	st := &refundStart{opts: opts, workflow: wf}
	if len(args) == 1 {
		st.in, _ = args[0].(refund.Input)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, refundSignal{workflowID: workflowID, name: name, event: ev, start: st})
	return nil, nil
}

func (f *refundTemporal) got() []refundSignal {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.signals)
}

// newRefundWebhookEnv starts the API with the fake on a fresh database.
func newRefundWebhookEnv(t *testing.T, signalErr func(string) error) (*env, *refundTemporal) {
	t.Helper()
	f := &refundTemporal{signalErr: signalErr}
	e := newEnvOn(t, newSQLite(t), func(d *api.Deps) {
		d.Temporal = f
		d.TaskQueue = "payments"
		d.GatewayName = sandbox.Name
		d.TemporalUIURL = fakeUIURL
		d.TemporalNamespace = "default"
		d.StripeWebhookSecret = fakeWebhookKey
	})
	return e, f
}

// refundFixture is a succeeded payment of 50.00 USD and a refund of 15.00
// of it, stored as their workflows store them.
type refundFixture struct {
	pay store.PaymentRecord
	re  *ent.Refund
}

// storeRefund stores a payment and a refund of it in status st, with the
// gateway's reference ref ("" keeps it pending without one, as before the
// gateway answers).
func storeRefund(t *testing.T, s *store.Store, st entrefund.Status, ref string) refundFixture {
	t.Helper()
	ctx := ctxT(t)
	now := time.Now().UTC().Truncate(time.Second)
	payID := ids.New(ids.Payment)
	pay := store.PaymentRecord{
		ID: payID, MerchantID: "acct_refund_merchant", CustomerID: "acct_refund_customer",
		Amount: 5000, AmountReceived: 5000, Currency: "USD", Status: entpayment.StatusSucceeded,
		CaptureMethod: entpayment.CaptureMethodAutomatic, PaymentMethod: "pm_card_refundFail",
		Gateway: sandbox.Name, GatewayReference: sandbox.Reference("payment/" + payID + "/create/1"),
		WorkflowID: "payment/" + payID, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if _, err := s.SavePayment(ctx, pay, nil); err != nil {
		t.Fatal(err)
	}
	reID := ids.New(ids.Refund)
	re, _, err := s.CreateRefund(ctx, store.RefundRecord{ID: reID, PaymentID: payID, MerchantID: pay.MerchantID,
		Amount: 1500, Currency: "USD", WorkflowID: refund.WorkflowID(reID), CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if st != entrefund.StatusPending || ref != "" {
		rec := store.RefundRecordOf(re)
		rec.Status, rec.GatewayReference, rec.Version, rec.UpdatedAt = st, ref, 2, now
		if st == entrefund.StatusFailed {
			rec.FailureReason = "declined"
		}
		if re, err = s.SaveRefund(ctx, rec, nil); err != nil {
			t.Fatal(err)
		}
	}
	return refundFixture{pay: pay, re: re}
}

// refundObject is a Stripe Refund object, as charge.refund.updated,
// refund.updated and refund.failed carry it.
func refundObject(ref, payID, paymentIntent, status, failureReason string, amount int64) map[string]any {
	obj := map[string]any{"id": ref, "object": "refund", "amount": amount, "currency": "usd", "status": status,
		"charge": nil, "created": time.Now().Unix(), "failure_reason": nil, "reason": nil,
		"metadata": map[string]string{}, "payment_intent": paymentIntent}
	if payID != "" {
		obj["metadata"] = map[string]string{"payment_id": payID}
	}
	if failureReason != "" {
		obj["failure_reason"] = failureReason
	}
	return obj
}

// postStripe signs (with secret) and posts an event whose data.object is
// obj, and returns the HTTP status.
func (e *env) postStripe(t *testing.T, secret, id, typ string, obj map[string]any) int {
	t.Helper()
	body, err := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": sandbox.APIVersion,
		"created": time.Now().Unix(), "type": typ, "livemode": false, "data": map[string]any{"object": obj}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.url+sandbox.WebhookPath, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", sandbox.SignPayload(secret, body, time.Now()))
	res, err := e.h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func (e *env) seen(t *testing.T, eventID string) bool {
	t.Helper()
	ok, err := e.st.GatewayEventSeen(ctxT(t), eventID)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestStripeRefundEventsReachTheRefund: the three refund events are
// whitelisted and signal the refund's workflow, found by its gateway
// reference, with the status Stripe's refund status maps to; each event id
// once. Other refund events, and refund events with a status of no refund,
// are acknowledged and change nothing.
func TestStripeRefundEventsReachTheRefund(t *testing.T) {
	t.Parallel()
	e, f := newRefundWebhookEnv(t, nil)
	const ref = "re_sbx_webhookrefund00000000000"
	fx := storeRefund(t, e.st, entrefund.StatusSucceeded, ref)

	ignored := []struct{ typ, status string }{
		{"refund.created", "failed"},
		{"charge.refunded", "failed"},
		{"charge.refund.created", "failed"},
		{"charge.refund.updated", "no_such_status"},
	}
	for i, ev := range ignored {
		id := fmt.Sprintf("evt_refund_ignored_%d", i)
		if got := e.postStripe(t, fakeWebhookKey, id, ev.typ, refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, ev.status, "declined", 1500)); got != http.StatusOK {
			t.Fatalf("%s (%s): HTTP %d, want 200", ev.typ, ev.status, got)
		}
		if e.seen(t, id) {
			t.Errorf("%s (%s): recorded as seen, but nothing was done with it", ev.typ, ev.status)
		}
	}
	if got := f.got(); len(got) != 0 {
		t.Fatalf("ignored events reached a workflow: %+v", got)
	}

	known := []struct {
		typ, status, reason string
		want                gateway.RefundStatus
		wantCode            string
	}{
		{"charge.refund.updated", "failed", "expired_or_canceled_card", gateway.RefundFailed, "expired_or_canceled_card"},
		{"refund.failed", "failed", "lost_or_stolen_card", gateway.RefundFailed, "lost_or_stolen_card"},
		{"refund.updated", "succeeded", "", gateway.RefundSucceeded, ""},
		{"refund.updated", "pending", "", gateway.RefundPending, ""},
		{"refund.updated", "requires_action", "", gateway.RefundPending, ""},
		{"charge.refund.updated", "canceled", "merchant_request", gateway.RefundCanceled, "merchant_request"},
		// A failure_reason on a refund that did not fail is not a failure code.
		{"charge.refund.updated", "succeeded", "unknown", gateway.RefundSucceeded, ""},
	}
	for i, ev := range known {
		id := fmt.Sprintf("evt_refund_known_%d", i)
		if got := e.postStripe(t, fakeWebhookKey, id, ev.typ, refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, ev.status, ev.reason, 1500)); got != http.StatusOK {
			t.Fatalf("%s (%s): HTTP %d, want 200", ev.typ, ev.status, got)
		}
		if !e.seen(t, id) {
			t.Errorf("%s: not recorded as seen after it was signalled", id)
		}
	}
	signals := f.got()
	if len(signals) != len(known) {
		t.Fatalf("%d signals, want %d: %+v", len(signals), len(known), signals)
	}
	for i, ev := range known {
		want := refund.GatewayEvent{EventID: fmt.Sprintf("evt_refund_known_%d", i), Type: ev.typ, Reference: ref,
			Status: ev.want, FailureCode: ev.wantCode}
		s := signals[i]
		if s.workflowID != refund.WorkflowID(fx.re.ID) || s.name != refund.SignalGatewayEvent || s.start != nil || s.event != want {
			t.Errorf("%s (%s): %s %s %+v, want %+v to %s", ev.typ, ev.status, s.name, s.workflowID, s.event, want, refund.WorkflowID(fx.re.ID))
		}
	}
	evs, err := e.st.Client.GatewayEvent.Query().All(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.PaymentID != fx.pay.ID {
			t.Errorf("event %s recorded for payment %q, want the refund's payment %s", ev.ID, ev.PaymentID, fx.pay.ID)
		}
	}

	// A redelivery is acknowledged and not acted on again.
	if got := e.postStripe(t, fakeWebhookKey, "evt_refund_known_0", "charge.refund.updated",
		refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, "failed", "expired_or_canceled_card", 1500)); got != http.StatusOK {
		t.Fatalf("redelivery: HTTP %d, want 200", got)
	}
	if n := len(f.got()); n != len(known) {
		t.Fatalf("the redelivery was signalled: %d signals, want %d", n, len(known))
	}

	// The signature is checked as for every event.
	if got := e.postStripe(t, "whsec_not_the_secret_0123456789abcdef", "evt_refund_forged", "charge.refund.updated",
		refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, "failed", "expired_or_canceled_card", 1500)); got != http.StatusBadRequest {
		t.Fatalf("forged event: HTTP %d, want 400", got)
	}
	if n := len(f.got()); n != len(known) || e.seen(t, "evt_refund_forged") {
		t.Fatal("a forged refund event was acted on")
	}
}

// TestStripeRefundEventAfterTheWorkflowEnded: when the refund's workflow
// has ended, an event that can move the refund starts a new run of the
// same workflow id with Resume, which gets it as a signal; one that cannot
// (the refund is final, or already in the reported status) is old news.
// Either way the event is recorded once handled.
func TestStripeRefundEventAfterTheWorkflowEnded(t *testing.T) {
	t.Parallel()
	ended := func(string) error { return serviceerror.NewNotFound("workflow execution already completed") }
	e, f := newRefundWebhookEnv(t, ended)
	const ref = "re_sbx_webhookresume000000000000"
	fx := storeRefund(t, e.st, entrefund.StatusSucceeded, ref)

	if got := e.postStripe(t, fakeWebhookKey, "evt_late_failure", "charge.refund.updated",
		refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, "failed", "expired_or_canceled_card", 1500)); got != http.StatusOK {
		t.Fatalf("late failure: HTTP %d, want 200", got)
	}
	signals := f.got()
	if len(signals) != 1 || signals[0].start == nil {
		t.Fatalf("signals %+v, want one signal-with-start", signals)
	}
	s, wid := signals[0], refund.WorkflowID(fx.re.ID)
	wantEv := refund.GatewayEvent{EventID: "evt_late_failure", Type: "charge.refund.updated", Reference: ref,
		Status: gateway.RefundFailed, FailureCode: "expired_or_canceled_card"}
	if s.workflowID != wid || s.name != refund.SignalGatewayEvent || s.event != wantEv {
		t.Errorf("signal %s %s %+v, want %s %s %+v", s.workflowID, s.name, s.event, wid, refund.SignalGatewayEvent, wantEv)
	}
	wantIn := refund.Input{RefundID: fx.re.ID, PaymentID: fx.pay.ID, MerchantID: fx.pay.MerchantID, Resume: true, Logic: refund.CurrentLogic}
	if o := s.start.opts; o.ID != wid || o.TaskQueue != "payments" ||
		o.WorkflowIDReusePolicy != enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE {
		t.Errorf("start options %+v, want id %s, task queue payments, reuse ALLOW_DUPLICATE", o, wid)
	}
	if s.start.workflow != refund.WorkflowName || s.start.in.RefundID != wantIn.RefundID || s.start.in.PaymentID != wantIn.PaymentID ||
		s.start.in.MerchantID != wantIn.MerchantID || !s.start.in.Resume || s.start.in.Logic != wantIn.Logic ||
		s.start.in.Amount != 0 || s.start.in.Currency != "" {
		t.Errorf("start %v %+v, want %s %+v", s.start.workflow, s.start.in, refund.WorkflowName, wantIn)
	}
	// The run starts with the stored refund's search attributes.
	attrs := s.start.opts.TypedSearchAttributes
	if v, _ := attrs.GetKeyword(refund.AttrStatus); v != "succeeded" {
		t.Errorf("RefundStatus attribute %q, want the stored succeeded", v)
	}
	for key, want := range map[string]string{"RefundId": fx.re.ID, "PaymentId": fx.pay.ID, "MerchantId": fx.pay.MerchantID} {
		found := false
		for k, v := range attrs.GetUntypedValues() {
			if k.GetName() == key {
				found = v == want
			}
		}
		if !found {
			t.Errorf("search attribute %s is not %s: %v", key, want, attrs.GetUntypedValues())
		}
	}
	if !e.seen(t, "evt_late_failure") {
		t.Error("the event was not recorded after the start")
	}

	// Old news: the stored refund is already what the event says, or final.
	if got := e.postStripe(t, fakeWebhookKey, "evt_old_news", "refund.updated",
		refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, "succeeded", "", 1500)); got != http.StatusOK {
		t.Fatalf("old news: HTTP %d, want 200", got)
	}
	failed := storeRefund(t, e.st, entrefund.StatusFailed, "re_sbx_webhookfinal0000000000000")
	for i, st := range []string{"failed", "succeeded", "canceled"} {
		if got := e.postStripe(t, fakeWebhookKey, fmt.Sprintf("evt_final_%d", i), "charge.refund.updated",
			refundObject("re_sbx_webhookfinal0000000000000", failed.pay.ID, failed.pay.GatewayReference, st, "declined", 1500)); got != http.StatusOK {
			t.Fatalf("event about a failed refund: HTTP %d, want 200", got)
		}
	}
	if n := len(f.got()); n != 1 {
		t.Fatalf("%d signals after events that cannot move the refunds, want still 1: %+v", n, f.got())
	}
	if !e.seen(t, "evt_old_news") || !e.seen(t, "evt_final_0") {
		t.Error("old news was not recorded as handled")
	}
}

// TestStripeRefundEventForAnUnknownRefund: an event for a refund no
// reference names is acknowledged and logged, unless its payment has a
// refund of its amount under way whose reference is not stored yet (the
// gateway's event overtook the workflow's save of its answer): then 503, so
// that the gateway delivers it again, and the redelivery, once the
// reference is stored, reaches the refund.
func TestStripeRefundEventForAnUnknownRefund(t *testing.T) {
	t.Parallel()
	e, f := newRefundWebhookEnv(t, nil)
	const ref = "re_sbx_webhookunknown00000000000"

	// Nobody's refund.
	if got := e.postStripe(t, fakeWebhookKey, "evt_unknown_1", "charge.refund.updated",
		refundObject(ref, "pay_01nosuchpayment0000000000", "pi_sbx_nosuchintent", "failed", "declined", 1500)); got != http.StatusOK {
		t.Fatalf("unknown refund: HTTP %d, want 200", got)
	}
	if !strings.Contains(e.logs.String(), "stripe event for an unknown refund") {
		t.Error("the unknown refund was not logged")
	}

	fx := storeRefund(t, e.st, entrefund.StatusPending, "")
	// Another amount than the refund under way: not it.
	if got := e.postStripe(t, fakeWebhookKey, "evt_unknown_2", "charge.refund.updated",
		refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, "failed", "declined", 999)); got != http.StatusOK {
		t.Fatalf("refund of another amount: HTTP %d, want 200", got)
	}
	// Its amount, found by metadata or by the PaymentIntent: maybe it.
	for _, payID := range []string{fx.pay.ID, ""} {
		if got := e.postStripe(t, fakeWebhookKey, "evt_early", "charge.refund.updated",
			refundObject(ref, payID, fx.pay.GatewayReference, "failed", "expired_or_canceled_card", 1500)); got != http.StatusServiceUnavailable {
			t.Fatalf("event before the reference is stored (payment_id %q): HTTP %d, want 503", payID, got)
		}
	}
	if got := f.got(); len(got) != 0 || e.seen(t, "evt_early") || e.seen(t, "evt_unknown_1") || e.seen(t, "evt_unknown_2") {
		t.Fatalf("events for unknown refunds were acted on or recorded: %+v", got)
	}

	// The workflow stores the gateway's answer; the redelivery gets through.
	rec := store.RefundRecordOf(fx.re)
	rec.Status, rec.GatewayReference, rec.Version, rec.UpdatedAt = entrefund.StatusSucceeded, ref, 2, time.Now().UTC()
	if _, err := e.st.SaveRefund(ctxT(t), rec, nil); err != nil {
		t.Fatal(err)
	}
	if got := e.postStripe(t, fakeWebhookKey, "evt_early", "charge.refund.updated",
		refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, "failed", "expired_or_canceled_card", 1500)); got != http.StatusOK {
		t.Fatalf("redelivery: HTTP %d, want 200", got)
	}
	if got := f.got(); len(got) != 1 || got[0].workflowID != refund.WorkflowID(fx.re.ID) || got[0].event.Status != gateway.RefundFailed {
		t.Fatalf("signals %+v, want the failure to %s", got, refund.WorkflowID(fx.re.ID))
	}
}

// TestStripeRefundEventWhileTemporalIsDown: 503, nothing recorded, so the
// gateway's redelivery is acted on.
func TestStripeRefundEventWhileTemporalIsDown(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	down := true
	e, f := newRefundWebhookEnv(t, func(string) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return serviceerror.NewUnavailable("connection refused")
		}
		return nil
	})
	const ref = "re_sbx_webhookdown0000000000000"
	fx := storeRefund(t, e.st, entrefund.StatusSucceeded, ref)
	post := func() int {
		return e.postStripe(t, fakeWebhookKey, "evt_while_down", "refund.failed",
			refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, "failed", "expired_or_canceled_card", 1500))
	}
	if got := post(); got != http.StatusServiceUnavailable {
		t.Fatalf("Temporal down: HTTP %d, want 503", got)
	}
	if e.seen(t, "evt_while_down") {
		t.Fatal("an event that reached no workflow was recorded")
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if got := post(); got != http.StatusOK {
		t.Fatalf("redelivery: HTTP %d, want 200", got)
	}
	if got := f.got(); len(got) != 1 || !e.seen(t, "evt_while_down") {
		t.Fatalf("signals %+v after the redelivery, want 1, recorded", got)
	}
}

// TestStripeRefundEventOfADisputesRefund: the refund a dispute's outcome
// made has no refund row; its events are acknowledged, never retried, and
// a failure is logged for a person to settle (the customer was not paid
// back), naming the dispute.
func TestStripeRefundEventOfADisputesRefund(t *testing.T) {
	t.Parallel()
	e, f := newRefundWebhookEnv(t, nil)
	ctx := ctxT(t)
	const ref = "re_sbx_disputerefund000000000000"
	fx := storeRefund(t, e.st, entrefund.StatusSucceeded, "re_sbx_otherrefund0000000000000")
	now := time.Now().UTC().Truncate(time.Second)
	dpID := ids.New(ids.Dispute)
	d, err := e.st.CreateDispute(ctx, store.DisputeRecord{ID: dpID, PaymentID: fx.pay.ID, OpenedBy: entdispute.OpenedByCustomer,
		Reason: entdispute.ReasonGeneral, Amount: 1000, ResponseDueBy: now.Add(time.Hour), WorkflowID: "dispute/" + dpID, CreatedAt: now},
		fx.pay.CustomerID)
	if err != nil {
		t.Fatal(err)
	}
	rec := store.DisputeRecordOf(d)
	rec.Status, rec.Settlement, rec.Version, rec.UpdatedAt = entdispute.StatusLost, entdispute.SettlementPending, 2, now
	if _, err := e.st.SaveDispute(ctx, rec, nil); err != nil {
		t.Fatal(err)
	}
	rec.Settlement, rec.RefundReference, rec.Version = entdispute.SettlementRefunded, ref, 3
	if _, err := e.st.SaveDispute(ctx, rec, store.DisputeRefundJournal(rec, now)); err != nil {
		t.Fatal(err)
	}

	if got := e.postStripe(t, fakeWebhookKey, "evt_dispute_refund_ok", "charge.refund.updated",
		refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, "succeeded", "", 1000)); got != http.StatusOK {
		t.Fatalf("the dispute's refund succeeded: HTTP %d, want 200", got)
	}
	if strings.Contains(e.logs.String(), "RECONCILE") {
		t.Fatalf("a succeeded refund of a dispute asked for a person: %s", e.logs.String())
	}
	if got := e.postStripe(t, fakeWebhookKey, "evt_dispute_refund_failed", "charge.refund.updated",
		refundObject(ref, fx.pay.ID, fx.pay.GatewayReference, "failed", "expired_or_canceled_card", 1000)); got != http.StatusOK {
		t.Fatalf("the dispute's refund failed: HTTP %d, want 200", got)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "RECONCILE: the refund a dispute's outcome made failed") || !strings.Contains(logs, dpID) {
		t.Fatalf("the failed refund of dispute %s was not logged for a person: %s", dpID, logs)
	}
	if got := f.got(); len(got) != 0 {
		t.Fatalf("signals %+v, want none (no refund workflow made it)", got)
	}
}
