package activities

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/delivery"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/webhookendpoint"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/mail"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	"github.com/payments-platform/payments/internal/webhooks"
)

// renderEvent stands in for api.EventPayload (api imports this package).
func renderEvent(e *ent.Event) ([]byte, error) {
	return json.Marshal(map[string]any{"id": e.ID, "type": e.Type, "objectId": e.ObjectID})
}

// notifyFixture is a merchant and a customer with a succeeded payment and
// its payment.succeeded event.
type notifyFixture struct {
	db                 *store.Store
	merchant, customer *ent.Account
	event              *ent.Event
}

func newNotifyFixture(t *testing.T, db *store.Store) notifyFixture {
	t.Helper()
	ctx := context.Background()
	mk := func(email string, role account.Role) *ent.Account {
		a, err := db.CreateAccount(ctx, store.NewAccount{Email: email, PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", Role: role,
			DefaultCurrency: "USD", DisplayName: "Name of " + email, BusinessName: "Shop of " + email})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	m, c := mk("m@example.com", account.RoleMerchant), mk("c@example.com", account.RoleCustomer)
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	id := ids.NewAt(ids.Payment, at)
	rec := store.PaymentRecord{
		ID: id, MerchantID: m.ID, CustomerID: c.ID, Amount: 1234, Currency: "KWD",
		Status: payment.StatusSucceeded, AmountReceived: 1234, CaptureMethod: payment.CaptureMethodAutomatic,
		PaymentMethod: "pm_card_visa", Gateway: "sandbox", WorkflowID: "payment/" + id, Version: 1,
		CreatedAt: at, UpdatedAt: at,
	}
	if _, err := db.SavePayment(ctx, rec, nil); err != nil {
		t.Fatal(err)
	}
	evs, err := db.ListEvents(ctx, store.EventFilter{ObjectID: id, Type: "payment.succeeded"}, store.Page{Limit: 10})
	if err != nil || len(evs) != 1 {
		t.Fatalf("payment.succeeded events: %v %v", evs, err)
	}
	return notifyFixture{db: db, merchant: m, customer: c, event: evs[0]}
}

// flakyMailer keeps what it sends and refuses the first message to fail.
type flakyMailer struct {
	mu   sync.Mutex
	fail string
	sent []mail.Message
}

func (m *flakyMailer) Send(_ context.Context, msg mail.Message) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if msg.To == m.fail {
		m.fail = ""
		return "", errors.New("452 mailbox busy")
	}
	m.sent = append(m.sent, msg)
	return "memory", nil
}

func (m *flakyMailer) to() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for _, s := range m.sent {
		out[s.To]++
	}
	return out
}

// A message is sent at most once per event and recipient however often the
// activity runs; one the server refused is sent by the retry.
func TestSendEventEmailsAtMostOncePerRecipient(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		f := newNotifyFixture(t, db)
		mailer := &flakyMailer{fail: f.customer.Email}
		a := &Mail{DB: db, Mailer: mailer, From: "Payments <no-reply@payments.test>", Platform: "Payments", Logger: slog.New(slog.DiscardHandler)}

		if err := a.SendEventEmails(ctx, f.event.ID); err == nil {
			t.Fatal("the refused message must fail the activity, so that it is retried")
		}
		for range 3 {
			if err := a.SendEventEmails(ctx, f.event.ID); err != nil {
				t.Fatal(err)
			}
		}
		got := mailer.to()
		if got[f.merchant.Email] != 1 || got[f.customer.Email] != 1 || len(got) != 2 {
			t.Fatalf("messages per recipient %v, want one each", got)
		}
		for _, msg := range mailer.sent {
			if !strings.Contains(msg.Text, "1.234 KWD") || !strings.HasSuffix(msg.MessageID, "@payments.test") {
				t.Fatalf("message %q: %q", msg.Subject, msg.Text)
			}
		}
		ms, err := db.EmailsOf(ctx, f.event.ID)
		if err != nil || len(ms) != 2 || ms[0].Status != "sent" || ms[1].Status != "sent" {
			t.Fatalf("email rows %v %v", ms, err)
		}
	})
}

// An account that turned the event's category off gets nothing.
func TestSendEventEmailsHonoursOptOut(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		f := newNotifyFixture(t, db)
		off := []string{"payments"}
		if _, err := db.UpdateAccount(ctx, f.customer.ID, store.AccountUpdate{EmailOptOut: &off}, time.Now()); err != nil {
			t.Fatal(err)
		}
		mailer := &flakyMailer{}
		a := &Mail{DB: db, Mailer: mailer, From: "p@payments.test", Logger: slog.New(slog.DiscardHandler)}
		if err := a.SendEventEmails(ctx, f.event.ID); err != nil {
			t.Fatal(err)
		}
		if got := mailer.to(); got[f.merchant.Email] != 1 || len(got) != 1 {
			t.Fatalf("messages %v, want only the merchant's", got)
		}
	})
}

// webhookFixture is an endpoint of the fixture's merchant at url.
func webhookFixture(t *testing.T, f notifyFixture, sealer *webhooks.Sealer, url string) (*ent.WebhookEndpoint, string) {
	t.Helper()
	secret := webhooks.NewSecret()
	ep, err := f.db.CreateEndpoint(context.Background(), store.EndpointRecord{
		ID: ids.New(ids.Endpoint), AccountID: f.merchant.ID, URL: url, Secret: sealer.Seal(secret),
		EnabledEvents: []string{"*"}, CreatedAt: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return ep, secret
}

func TestDeliverWebhookRecordsEachAttempt(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		f := newNotifyFixture(t, db)
		sealer, err := webhooks.NewSealer([]byte("a test key of enough length 0123"))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		status, sigs := http.StatusNoContent, []string{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			sigs = append(sigs, r.Header.Get("webhook-signature"))
			w.WriteHeader(status)
			_, _ = w.Write([]byte(strings.Repeat("x", 3000)))
		}))
		t.Cleanup(srv.Close)
		ep, _ := webhookFixture(t, f, sealer, srv.URL)
		policy := webhooks.URLPolicy{AllowInsecure: true}
		a := &Webhooks{DB: db, Client: policy.Client(5 * time.Second), Policy: policy, Sealer: sealer,
			Render: renderEvent, Logger: slog.New(slog.DiscardHandler)}
		at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
		in := func(attempt int, next time.Duration) DeliverInput {
			return DeliverInput{EventID: f.event.ID, EndpointID: ep.ID, WorkflowID: "webhook/x", Attempt: attempt,
				DeliveryID: ids.Derive(ids.Delivery, at, []byte{byte(attempt)}), At: at, NextDelay: next}
		}

		// A 500 with attempts left: failed, next attempt set, not done; the
		// activity run again for the same attempt updates the same row.
		mu.Lock()
		status = http.StatusInternalServerError
		mu.Unlock()
		for range 2 {
			out, err := a.DeliverWebhook(ctx, in(1, 5*time.Second))
			if err != nil || out.Done || out.Status != "failed" || out.ResponseStatus != 500 {
				t.Fatalf("500: %+v %v", out, err)
			}
		}
		d, err := db.DeliveryByID(ctx, in(1, 0).DeliveryID)
		if err != nil || d.Status != delivery.StatusFailed || d.NextAttemptAt == nil || len(d.ResponseBody) != 1024 || d.Error != "HTTP 500" {
			t.Fatalf("attempt 1 row %+v %v", d, err)
		}
		if n, _ := db.Client.Delivery.Query().Count(ctx); n != 1 {
			t.Fatalf("%d rows for one attempt", n)
		}
		// The last attempt failing is the end.
		out, err := a.DeliverWebhook(ctx, in(2, 0))
		if err != nil || !out.Done || out.Status != "failed" {
			t.Fatalf("last 500: %+v %v", out, err)
		}
		// Success.
		mu.Lock()
		status = http.StatusOK
		mu.Unlock()
		out, err = a.DeliverWebhook(ctx, in(3, time.Minute))
		if err != nil || !out.Done || out.Status != "succeeded" {
			t.Fatalf("200: %+v %v", out, err)
		}
		if d, _ := db.DeliveryByID(ctx, in(3, 0).DeliveryID); d.NextAttemptAt != nil || d.Status != delivery.StatusSucceeded {
			t.Fatalf("succeeded row %+v", d)
		}
		// A rotation's overlap signs twice; 410 disables the endpoint.
		until := time.Now().Add(time.Hour)
		prev, cur := ep.Secret, sealer.Seal(webhooks.NewSecret())
		if _, err := db.UpdateEndpoint(ctx, ep.ID, store.EndpointChange{Secret: &cur, PreviousSecret: &prev, PreviousExpiresAt: &until, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		status = http.StatusGone
		mu.Unlock()
		out, err = a.DeliverWebhook(ctx, in(4, time.Minute))
		if err != nil || !out.Done || out.ResponseStatus != 410 {
			t.Fatalf("410: %+v %v", out, err)
		}
		mu.Lock()
		last := sigs[len(sigs)-1]
		mu.Unlock()
		if len(strings.Fields(last)) != 2 {
			t.Fatalf("signature during the overlap %q, want two", last)
		}
		got, err := db.EndpointByID(ctx, ep.ID)
		if err != nil || got.Status != webhookendpoint.StatusDisabled || got.DisabledReason != store.DisabledGone {
			t.Fatalf("endpoint after 410: %+v %v", got, err)
		}
		// A disabled endpoint ends the delivery without a request.
		before := len(sigs)
		out, err = a.DeliverWebhook(ctx, in(5, time.Minute))
		if err != nil || !out.Done || out.Status != "failed" || len(sigs) != before {
			t.Fatalf("disabled: %+v %v (%d requests)", out, err, len(sigs)-before)
		}
		// A deleted endpoint ends it too, without a row.
		if err := db.DeleteEndpoint(ctx, ep.ID); err != nil {
			t.Fatal(err)
		}
		out, err = a.DeliverWebhook(ctx, in(6, time.Minute))
		if err != nil || !out.Done {
			t.Fatalf("deleted: %+v %v", out, err)
		}
		if _, err := db.DeliveryByID(ctx, in(6, 0).DeliveryID); err == nil {
			t.Fatal("a delivery to a deleted endpoint wrote a row")
		}
	})
}

// With the production policy, an endpoint whose URL now points inside is
// refused at send time without a request.
func TestDeliverWebhookRefusesInternalAddressAtSendTime(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		f := newNotifyFixture(t, db)
		sealer, _ := webhooks.NewSealer([]byte("another test key of enough length"))
		hits := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
		t.Cleanup(srv.Close)
		ep, _ := webhookFixture(t, f, sealer, srv.URL)
		strict := webhooks.URLPolicy{}
		a := &Webhooks{DB: db, Client: strict.Client(time.Second), Policy: strict, Sealer: sealer,
			Render: renderEvent, Logger: slog.New(slog.DiscardHandler)}
		out, err := a.DeliverWebhook(ctx, DeliverInput{EventID: f.event.ID, EndpointID: ep.ID, WorkflowID: "w", Attempt: 1,
			DeliveryID: ids.New(ids.Delivery), At: time.Now(), NextDelay: time.Second})
		if err != nil || !out.Done || out.Status != "failed" || hits != 0 {
			t.Fatalf("internal address: %+v %v, %d requests", out, err, hits)
		}
		ds, _ := db.ListDeliveries(ctx, store.DeliveryFilter{EndpointID: ep.ID}, store.Page{Limit: 5})
		if len(ds) != 1 || !strings.HasPrefix(ds[0].Error, "refused") {
			t.Fatalf("rows %+v", ds)
		}
	})
}

// An event that is not there fails the activities for good (ErrTypeNotFound,
// not retried) rather than being retried forever.
func TestNotifyActivitiesFailForGoodWithoutTheEvent(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		missing := ids.New(ids.Event)
		check := func(what string, err error) {
			t.Helper()
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != ErrTypeNotFound || !appErr.NonRetryable() {
				t.Fatalf("%s of a missing event: %v, want a non-retryable %s", what, err, ErrTypeNotFound)
			}
		}
		w := &Webhooks{DB: db, Logger: slog.New(slog.DiscardHandler)}
		_, err := w.DeliverWebhook(ctx, DeliverInput{EventID: missing, EndpointID: ids.New(ids.Endpoint), Attempt: 1})
		check("DeliverWebhook", err)
		m := &Mail{DB: db, Mailer: &flakyMailer{}, Logger: slog.New(slog.DiscardHandler)}
		check("SendEventEmails", m.SendEventEmails(ctx, missing))
	})
}

// A host name that does not resolve at send time (a DNS outage) is a
// connection error like any other: the attempt fails and the delivery
// goes on on its schedule, instead of ending for good as a refused URL.
func TestDeliverWebhookRetriesWhenTheHostDoesNotResolve(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		f := newNotifyFixture(t, db)
		sealer, _ := webhooks.NewSealer([]byte("a third test key of enough length"))
		ep, _ := webhookFixture(t, f, sealer, "https://receiver.does-not-resolve.invalid/hook")
		strict := webhooks.URLPolicy{}
		a := &Webhooks{DB: db, Client: strict.Client(time.Second), Policy: strict, Sealer: sealer,
			Render: renderEvent, Logger: slog.New(slog.DiscardHandler)}
		out, err := a.DeliverWebhook(ctx, DeliverInput{EventID: f.event.ID, EndpointID: ep.ID, WorkflowID: "w", Attempt: 1,
			DeliveryID: ids.New(ids.Delivery), At: time.Now(), NextDelay: 5 * time.Second})
		if err != nil || out.Done || out.Status != "failed" {
			t.Fatalf("unresolvable host: %+v %v, want a failed attempt with more to come", out, err)
		}
		ds, _ := db.ListDeliveries(ctx, store.DeliveryFilter{EndpointID: ep.ID}, store.Page{Limit: 5})
		if len(ds) != 1 || ds[0].NextAttemptAt == nil || strings.HasPrefix(ds[0].Error, "refused") {
			t.Fatalf("rows %+v", ds)
		}
	})
}

// An event that cannot be rendered fails the same way every time: the
// attempt is final (ErrTypeUnrenderable), not retried for ever.
func TestDeliverWebhookDoesNotRetryAnUnrenderableEvent(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		f := newNotifyFixture(t, db)
		sealer, _ := webhooks.NewSealer([]byte("a fourth test key of enough length"))
		ep, _ := webhookFixture(t, f, sealer, "https://example.com/hook")
		policy := webhooks.URLPolicy{AllowInsecure: true}
		a := &Webhooks{DB: db, Client: policy.Client(time.Second), Policy: policy, Sealer: sealer, Logger: slog.New(slog.DiscardHandler),
			Render: func(*ent.Event) ([]byte, error) { return nil, errors.New("data does not decode") }}
		_, err := a.DeliverWebhook(context.Background(), DeliverInput{EventID: f.event.ID, EndpointID: ep.ID, WorkflowID: "w", Attempt: 1,
			DeliveryID: ids.New(ids.Delivery), At: time.Now(), NextDelay: time.Second})
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrTypeUnrenderable {
			t.Fatalf("render failure: %v, want a non-retryable %s", err, ErrTypeUnrenderable)
		}
	})
}
