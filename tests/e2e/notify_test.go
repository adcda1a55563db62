package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/payments-platform/payments/internal/mail"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

const (
	procCreateEndpoint  = "/payments.v1.WebhookService/CreateWebhookEndpoint"
	procListEvents      = "/payments.v1.WebhookService/ListEvents"
	procGetEvent        = "/payments.v1.WebhookService/GetEvent"
	procListDeliveries  = "/payments.v1.WebhookService/ListDeliveries"
	procRedeliverEvent  = "/payments.v1.WebhookService/RedeliverEvent"
	procRotateSecret    = "/payments.v1.WebhookService/RotateWebhookSecret"
	procUpdateEndpoint  = "/payments.v1.WebhookService/UpdateWebhookEndpoint"
	procDeleteEndpoint  = "/payments.v1.WebhookService/DeleteWebhookEndpoint"
	procListEndpoints   = "/payments.v1.WebhookService/ListWebhookEndpoints"
	procGetEndpoint     = "/payments.v1.WebhookService/GetWebhookEndpoint"
	webhookWaitDeadline = 30 * time.Second
)

// receiver is a merchant's webhook endpoint: it verifies every request
// with the Standard Webhooks library (not the platform's code) and keeps
// what it got.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	// also verifies with a second secret (a rotation's old one) when set.
	also   string
	status int // answered; 204 when 0
	hits   int
	got    []receivedEvent
	bad    []string
	notify chan struct{}
}

type receivedEvent struct {
	id, msgID string
	event     *pb.Event
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, notify: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hits++
	defer func() {
		select {
		case r.notify <- struct{}{}:
		default:
		}
	}()
	err := verifyWith(r.secret, body, req.Header)
	if err == nil && r.also != "" {
		err = verifyWith(r.also, body, req.Header)
	}
	if err != nil {
		r.bad = append(r.bad, err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	ev := &pb.Event{}
	if err := protojson.Unmarshal(body, ev); err != nil {
		r.bad = append(r.bad, "body: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	status := r.status
	if status == 0 {
		status = http.StatusNoContent
		r.got = append(r.got, receivedEvent{id: ev.GetId(), msgID: req.Header.Get("webhook-id"), event: ev})
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, "receiver-private-detail")
}

// verifyWith checks a request's signature with one secret, using the
// Standard Webhooks library.
func verifyWith(secret string, body []byte, h http.Header) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	return wh.Verify(body, h)
}

// set changes what the receiver answers and which secrets it checks.
func (r *receiver) set(secret, also string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret, r.also, r.status = secret, also, status
}

// endpoint registers the receiver for merchant u and returns its id.
func (e *E) endpoint(t *testing.T, u user, r *receiver, types ...string) string {
	t.Helper()
	res := e.post(t, u.Token, procCreateEndpoint, map[string]any{"url": r.srv.URL + "/hooks", "enabled_events": types})
	if res.status != http.StatusOK {
		t.Fatalf("CreateWebhookEndpoint: %s", res)
	}
	var created pb.CreateWebhookEndpointResponse
	if err := protojson.Unmarshal(res.body, &created); err != nil {
		t.Fatal(err)
	}
	r.set(created.GetSecret(), "", 0)
	return created.GetWebhookEndpoint().GetId()
}

// deliveries polls ListDeliveries (with a deadline) until ok accepts them.
func (e *E) deliveries(t *testing.T, u user, filter map[string]any, ok func([]*pb.Delivery) bool) []*pb.Delivery {
	t.Helper()
	deadline := time.Now().Add(webhookWaitDeadline)
	for {
		r := e.post(t, u.Token, procListDeliveries, filter)
		var ds pb.ListDeliveriesResponse
		if r.status != http.StatusOK || protojson.Unmarshal(r.body, &ds) != nil {
			t.Fatalf("ListDeliveries: %s", r)
		}
		if ok(ds.GetDeliveries()) {
			return ds.GetDeliveries()
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries never as wanted: %s", r.body)
		}
		time.Sleep(pollEvery) // polling with a deadline
	}
}

// waitHits waits until the receiver was called at least n times.
func (r *receiver) waitHits(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(webhookWaitDeadline)
	for {
		r.mu.Lock()
		hits := r.hits
		r.mu.Unlock()
		if hits >= n {
			return
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("receiver called %d times, want %d", hits, n)
		}
	}
}

// waitFor waits until the receiver holds an event of each type.
func (r *receiver) waitFor(t *testing.T, types ...string) []receivedEvent {
	t.Helper()
	deadline := time.After(webhookWaitDeadline)
	for {
		r.mu.Lock()
		var have []string
		for _, g := range r.got {
			have = append(have, g.event.GetType())
		}
		got, bad := slices.Clone(r.got), slices.Clone(r.bad)
		r.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("receiver refused deliveries: %v", bad)
		}
		all := true
		for _, ty := range types {
			all = all && slices.Contains(have, ty)
		}
		if all {
			return got
		}
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("receiver got %v, want %v", have, types)
		}
	}
}

// memMailer keeps the emails it is given.
type memMailer struct {
	mu   sync.Mutex
	sent []mail.Message
}

func (m *memMailer) Send(_ context.Context, msg mail.Message) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, msg)
	return "memory", nil
}

func TestWebhookPaymentSucceededIsSignedAndListed(t *testing.T) {
	mailer := &memMailer{}
	e := newEnv(t, withMailer(mailer))
	m, c := e.merchant(t), e.customer(t)
	rcv := newReceiver(t)

	r := e.post(t, m.Token, procCreateEndpoint, map[string]any{"url": rcv.srv.URL + "/hooks", "enabled_events": []string{"payment.succeeded"}})
	if r.status != http.StatusOK {
		t.Fatalf("CreateWebhookEndpoint: %s", r)
	}
	var created pb.CreateWebhookEndpointResponse
	if err := protojson.Unmarshal(r.body, &created); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.secret = created.GetSecret()
	rcv.mu.Unlock()

	p := e.create(t, c, pay(m, 1234, "USD", "pm_card_visa"))
	got := rcv.waitFor(t, "payment.succeeded")
	if len(got) != 1 {
		t.Fatalf("receiver got %d events, want 1", len(got))
	}
	ev := got[0].event
	if ev.GetObjectId() != p.GetId() || got[0].msgID != ev.GetId() || ev.GetSequence() < 1 {
		t.Fatalf("event %v (webhook-id %s) for payment %s", ev, got[0].msgID, p.GetId())
	}
	if ev.GetData().GetFields()["id"].GetStringValue() != p.GetId() || ev.GetData().GetFields()["status"].GetStringValue() != "PAYMENT_STATUS_SUCCEEDED" {
		t.Fatalf("event data %v", ev.GetData())
	}

	r = e.post(t, m.Token, procListEvents, map[string]any{"object_id": p.GetId()})
	var evs pb.ListEventsResponse
	if r.status != http.StatusOK || protojson.Unmarshal(r.body, &evs) != nil {
		t.Fatalf("ListEvents: %s", r)
	}
	var types []string
	for _, x := range evs.GetEvents() {
		types = append(types, x.GetType())
	}
	if !slices.Contains(types, "payment.succeeded") {
		t.Fatalf("ListEvents types %v", types)
	}

	// The delivery's attempt is recorded as succeeded (its row is saved
	// right after the receiver answers).
	deadline := time.Now().Add(webhookWaitDeadline)
	for {
		r = e.post(t, m.Token, procListDeliveries, map[string]any{"event_id": ev.GetId()})
		var ds pb.ListDeliveriesResponse
		if r.status != http.StatusOK || protojson.Unmarshal(r.body, &ds) != nil {
			t.Fatalf("ListDeliveries: %s", r)
		}
		if len(ds.GetDeliveries()) == 1 && ds.GetDeliveries()[0].GetStatus() == pb.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED {
			if d := ds.GetDeliveries()[0]; d.GetResponseStatus() != 204 || d.GetAttempt() != 1 {
				t.Fatalf("delivery %v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %s", r.body)
		}
		time.Sleep(pollEvery) // polling with a deadline
	}

	// Both parties got the confirmation email.
	deadline = time.Now().Add(webhookWaitDeadline)
	for {
		mailer.mu.Lock()
		var to []string
		for _, msg := range mailer.sent {
			if msg.Subject == "Verify your email address" {
				continue // the registrations' letters, not the confirmation
			}
			to = append(to, msg.To)
		}
		mailer.mu.Unlock()
		if slices.Contains(to, m.Email) && slices.Contains(to, c.Email) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("emails to %v", to)
		}
		time.Sleep(pollEvery) // polling with a deadline
	}
}

// A 410 answer disables the endpoint at once: the attempt is failed with
// the status, no next attempt, and the endpoint shows why. A 400 fails the
// delivery without a retry; a 500 schedules the next attempt 5 s later.
// The receiver's body is never echoed in the attempt's error.
func TestWebhookReceiverAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		status   int
		retry    bool
		disabled bool
	}{
		{http.StatusGone, false, true},
		{http.StatusBadRequest, false, false},
		{http.StatusInternalServerError, true, false},
		{http.StatusTooManyRequests, true, false},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			m, c := e.merchant(t), e.customer(t)
			rcv := newReceiver(t)
			epID := e.endpoint(t, m, rcv, "*")
			rcv.mu.Lock()
			rcv.status = tc.status
			rcv.mu.Unlock()
			e.create(t, c, pay(m, 500, "EUR", "pm_card_visa"))
			ds := e.deliveries(t, m, map[string]any{"endpoint_id": epID}, func(ds []*pb.Delivery) bool {
				return len(ds) > 0 && ds[len(ds)-1].GetStatus() == pb.DeliveryStatus_DELIVERY_STATUS_FAILED
			})
			first := ds[len(ds)-1]
			if first.GetResponseStatus() != int32(tc.status) || first.GetAttempt() != 1 {
				t.Fatalf("attempt %v", first)
			}
			if strings.Contains(first.GetError(), "receiver-private-detail") {
				t.Fatalf("the receiver's body is echoed: %q", first.GetError())
			}
			if got := first.GetNextAttemptAt() != nil; got != tc.retry {
				t.Fatalf("next attempt set = %v, want %v: %v", got, tc.retry, first)
			}
			if tc.retry {
				if d := first.GetNextAttemptAt().AsTime().Sub(first.GetCreatedAt().AsTime()); d < 4*time.Second || d > 30*time.Second {
					t.Fatalf("next attempt %v after the first, want about 5 s", d)
				}
			}
			r := e.post(t, m.Token, procGetEndpoint, map[string]any{"id": epID})
			var got pb.GetWebhookEndpointResponse
			if r.status != http.StatusOK || protojson.Unmarshal(r.body, &got) != nil {
				t.Fatalf("GetWebhookEndpoint: %s", r)
			}
			disabled := got.GetWebhookEndpoint().GetStatus() == pb.WebhookEndpointStatus_WEBHOOK_ENDPOINT_STATUS_DISABLED
			if disabled != tc.disabled || (tc.disabled && got.GetWebhookEndpoint().GetDisabledReason() != "gone") {
				t.Fatalf("endpoint after HTTP %d: %v", tc.status, got.GetWebhookEndpoint())
			}
		})
	}
}

// During a rotation's overlap every delivery is signed with both secrets
// (each verifies on its own); RedeliverEvent sends the same event again
// under the same webhook-id, as a new delivery listed beside the first.
func TestWebhookRotationAndRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	rcv := newReceiver(t)
	epID := e.endpoint(t, m, rcv, "payment.succeeded")
	rcv.mu.Lock()
	oldSecret := rcv.secret
	rcv.mu.Unlock()

	r := e.post(t, m.Token, procRotateSecret, map[string]any{"id": epID, "previous_secret_overlap": "3600s"})
	var rot pb.RotateWebhookSecretResponse
	if r.status != http.StatusOK || protojson.Unmarshal(r.body, &rot) != nil {
		t.Fatalf("RotateWebhookSecret: %s", r)
	}
	if rot.GetSecret() == oldSecret || !strings.HasPrefix(rot.GetSecret(), "whsec_") || rot.GetWebhookEndpoint().GetPreviousSecretExpiresAt() == nil {
		t.Fatalf("rotation: %s", r.body)
	}
	rcv.set(rot.GetSecret(), oldSecret, 0)

	p := e.create(t, c, pay(m, 900, "USD", "pm_card_visa"))
	got := rcv.waitFor(t, "payment.succeeded")
	evID := got[0].id

	r = e.post(t, m.Token, procRedeliverEvent, map[string]any{"event_id": evID}, "Idempotency-Key", "redeliver-"+evID)
	var red pb.RedeliverEventResponse
	if r.status != http.StatusOK || protojson.Unmarshal(r.body, &red) != nil || len(red.GetDeliveries()) != 1 {
		t.Fatalf("RedeliverEvent: %s", r)
	}
	// Asked again under the same key (a retry): the same redelivery, not a
	// second one (the receiver below gets two deliveries in all, not three).
	again := e.post(t, m.Token, procRedeliverEvent, map[string]any{"event_id": evID}, "Idempotency-Key", "redeliver-"+evID)
	var red2 pb.RedeliverEventResponse
	if again.status != http.StatusOK || protojson.Unmarshal(again.body, &red2) != nil || again.header.Get("Idempotent-Replayed") != "true" ||
		len(red2.GetDeliveries()) != 1 || red2.GetDeliveries()[0].GetId() != red.GetDeliveries()[0].GetId() {
		t.Fatalf("RedeliverEvent again under its key: %s", again)
	}
	if d := red.GetDeliveries()[0]; d.GetStatus() != pb.DeliveryStatus_DELIVERY_STATUS_PENDING || d.GetEndpointId() != epID || d.GetAttempt() != 1 {
		t.Fatalf("redelivery %v", d)
	}
	rcv.waitHits(t, 2)
	rcv.mu.Lock()
	all := slices.Clone(rcv.got)
	rcv.mu.Unlock()
	if len(all) != 2 || all[1].id != evID || all[1].msgID != evID || all[1].event.GetObjectId() != p.GetId() {
		t.Fatalf("redelivered: %v", all)
	}
	e.deliveries(t, m, map[string]any{"event_id": evID}, func(ds []*pb.Delivery) bool {
		n := 0
		for _, d := range ds {
			if d.GetStatus() == pb.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED {
				n++
			}
		}
		return n == 2
	})
}

// An account that turns payment emails off gets none; the other party
// still does. The detailed record of the payment lists the webhook attempt
// and the email among its steps.
func TestEmailPreferencesAndNotificationTimeline(t *testing.T) {
	t.Parallel()
	mailer := &memMailer{}
	e := newEnv(t, withMailer(mailer))
	m, c := e.merchant(t), e.customer(t)
	r := e.post(t, c.Token, "/payments.v1.AccountService/UpdateMe", map[string]any{"email_preferences": map[string]any{"disabled_categories": []string{"payments"}}})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"disabledCategories":["payments"]`) {
		t.Fatalf("UpdateMe: %s", r)
	}
	rcv := newReceiver(t)
	e.endpoint(t, m, rcv, "*")
	p := e.create(t, c, pay(m, 2500, "JPY", "pm_card_visa"))
	rcv.waitFor(t, "payment.succeeded")

	var txnID string
	deadline := time.Now().Add(webhookWaitDeadline)
	for {
		mailer.mu.Lock()
		var to, subjects []string
		for _, msg := range mailer.sent {
			if msg.Subject == "Verify your email address" {
				continue // account letters are sent whatever the preferences
			}
			to = append(to, msg.To)
			subjects = append(subjects, msg.Subject)
		}
		mailer.mu.Unlock()
		if len(to) > 0 {
			if len(to) != 1 || to[0] != m.Email || subjects[0] != "Payment received: 2500 JPY" {
				t.Fatalf("emails to %v (%q), want only the merchant's", to, subjects)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no email")
		}
		time.Sleep(pollEvery) // polling with a deadline
	}
	for _, tx := range e.listAll(t, m, map[string]any{}) {
		if tx.GetSourceId() == p.GetId() {
			txnID = tx.GetId()
		}
	}
	deadline = time.Now().Add(webhookWaitDeadline)
	for {
		r := e.post(t, m.Token, procGetTransaction, map[string]any{"id": txnID})
		var res pb.GetTransactionResponse
		if r.status != http.StatusOK || protojson.Unmarshal(r.body, &res) != nil {
			t.Fatalf("GetTransaction: %s", r)
		}
		var kinds []string
		for _, s := range res.GetTimeline() {
			kinds = append(kinds, s.GetKind())
		}
		if slices.Contains(kinds, "notification.webhook_attempt") && slices.Contains(kinds, "notification.email_sent") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timeline kinds %v", kinds)
		}
		time.Sleep(pollEvery) // polling with a deadline
	}
}
