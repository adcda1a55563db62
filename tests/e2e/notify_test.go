package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
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
	wh, err := standardwebhooks.NewWebhook(r.secret)
	if err == nil {
		err = wh.Verify(body, req.Header)
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
	r.got = append(r.got, receivedEvent{id: ev.GetId(), msgID: req.Header.Get("webhook-id"), event: ev})
	w.WriteHeader(http.StatusNoContent)
	select {
	case r.notify <- struct{}{}:
	default:
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
