package notify_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	"github.com/payments-platform/payments/workflows/notify"
)

// fakeStarter is the part of the Temporal client the relay uses: it keeps
// the workflows started, answers AlreadyStarted for an id started before
// (as Temporal does with REJECT_DUPLICATE), and fails while fail is set.
type fakeStarter struct {
	client.Client
	mu      sync.Mutex
	started []string
	inputs  map[string]any
	fail    error
}

func (f *fakeStarter) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	if slices.Contains(f.started, o.ID) {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "")
	}
	f.started = append(f.started, o.ID)
	if f.inputs == nil {
		f.inputs = map[string]any{}
	}
	f.inputs[o.ID] = args[0]
	return nil, nil
}

func (f *fakeStarter) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.started)
	slices.Sort(out)
	return out
}

// The relay starts one delivery per enabled endpoint subscribed to the
// event (the merchant's own and admins' all-merchant endpoints, never
// another merchant's or a disabled one) and the event's email workflow,
// then marks the event dispatched; nothing is started twice, and an event
// whose starts fail stays in the outbox for the next round.
func TestRelayDispatchesEachEventOnce(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		acct := func(email string, role account.Role) *ent.Account {
			a, err := db.CreateAccount(ctx, store.NewAccount{Email: email, PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", Role: role})
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		m, other, admin := acct("m@x.test", account.RoleMerchant), acct("o@x.test", account.RoleMerchant), acct("a@x.test", account.RoleAdmin)
		c := acct("c@x.test", account.RoleCustomer)
		endpoint := func(owner *ent.Account, all bool, types ...string) string {
			ep, err := db.CreateEndpoint(ctx, store.EndpointRecord{ID: ids.New(ids.Endpoint), AccountID: owner.ID, AllMerchants: all,
				URL: "https://example.com/" + owner.ID, Secret: "v1:x", EnabledEvents: types, CreatedAt: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			return ep.ID
		}
		all := endpoint(m, false, "*")
		onlySucceeded := endpoint(m, false, "payment.succeeded")
		onlyRefunds := endpoint(m, false, "refund.created")
		disabled := endpoint(m, false, "*")
		yes := true
		if _, err := db.UpdateEndpoint(ctx, disabled, store.EndpointChange{Disabled: &yes, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		endpoint(other, false, "*")
		platform := endpoint(admin, true, "*")

		at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
		id := ids.NewAt(ids.Payment, at)
		rec := store.PaymentRecord{ID: id, MerchantID: m.ID, CustomerID: c.ID, Amount: 100, Currency: "USD",
			Status: payment.StatusSucceeded, AmountReceived: 100, CaptureMethod: payment.CaptureMethodAutomatic,
			PaymentMethod: "pm_card_visa", Gateway: "sandbox", WorkflowID: "payment/" + id, Version: 1, CreatedAt: at, UpdatedAt: at}
		if _, err := db.SavePayment(ctx, rec, nil); err != nil {
			t.Fatal(err)
		}
		evs, err := db.UndispatchedEvents(ctx, 10)
		if err != nil || len(evs) != 1 || evs[0].Type != "payment.succeeded" {
			t.Fatalf("outbox %v %v", evs, err)
		}
		ev := evs[0]

		starter := &fakeStarter{fail: errors.New("temporal unavailable")}
		relay := &notify.Relay{Store: db, Temporal: starter, TaskQueue: "q", Logger: slog.New(slog.DiscardHandler), Emails: true}
		if n, err := relay.Drain(ctx); err == nil || n != 0 {
			t.Fatalf("Drain with Temporal away: %d %v", n, err)
		}
		if evs, _ := db.UndispatchedEvents(ctx, 10); len(evs) != 1 {
			t.Fatalf("an event whose starts failed left the outbox: %v", evs)
		}

		starter.mu.Lock()
		starter.fail = nil
		starter.started = []string{notify.DeliveryWorkflowID(ev.ID, all)} // started before a crash
		starter.mu.Unlock()
		if n, err := relay.Drain(ctx); err != nil || n != 1 {
			t.Fatalf("Drain: %d %v", n, err)
		}
		want := []string{
			notify.DeliveryWorkflowID(ev.ID, all),
			notify.DeliveryWorkflowID(ev.ID, onlySucceeded),
			notify.DeliveryWorkflowID(ev.ID, platform),
			notify.EmailWorkflowID(ev.ID),
		}
		slices.Sort(want)
		if got := starter.ids(); !slices.Equal(got, want) {
			t.Fatalf("started %v, want %v (not %s, %s, nor the other merchant's)", got, want, onlyRefunds, disabled)
		}
		in, ok := starter.inputs[notify.DeliveryWorkflowID(ev.ID, onlySucceeded)].(notify.DeliveryInput)
		if !ok || in.EventID != ev.ID || in.EndpointID != onlySucceeded || in.FirstDeliveryID != "" {
			t.Fatalf("delivery input %+v", starter.inputs[notify.DeliveryWorkflowID(ev.ID, onlySucceeded)])
		}
		if evs, _ := db.UndispatchedEvents(ctx, 10); len(evs) != 0 {
			t.Fatalf("dispatched event still in the outbox: %v", evs)
		}
		if n, err := relay.Drain(ctx); err != nil || n != 0 || len(starter.ids()) != len(want) {
			t.Fatalf("second Drain: %d %v, %d started", n, err, len(starter.ids()))
		}

		// Without a mailer, no email workflow.
		relay.Emails = false
		rec.ID, rec.WorkflowID = ids.NewAt(ids.Payment, at), "payment/x"
		if _, err := db.SavePayment(ctx, rec, nil); err != nil {
			t.Fatal(err)
		}
		before := starter.ids()
		if n, err := relay.Drain(ctx); err != nil || n != 1 {
			t.Fatalf("Drain: %d %v", n, err)
		}
		var fresh []string
		for _, id := range starter.ids() {
			if !slices.Contains(before, id) {
				fresh = append(fresh, id)
			}
		}
		if len(fresh) != 3 || slices.ContainsFunc(fresh, func(id string) bool { return strings.HasPrefix(id, "email/") }) {
			t.Fatalf("started for the second event %v, want its 3 deliveries and no email workflow", fresh)
		}
	})
}

// Run dispatches at once and then on every tick until its context ends; a
// round that fails is logged and tried again on the next tick.
func TestRelayRunDispatchesUntilCanceled(t *testing.T) {
	db := storetest.NewSQLite(t)
	ctx := context.Background()
	m, err := db.CreateAccount(ctx, store.NewAccount{Email: "m@x.test", PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", Role: account.RoleMerchant})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := db.CreateEndpoint(ctx, store.EndpointRecord{ID: ids.New(ids.Endpoint), AccountID: m.ID, URL: "https://example.com/h",
		Secret: "v1:x", EnabledEvents: []string{"*"}, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	save := func() string {
		at := time.Now().UTC()
		id := ids.NewAt(ids.Payment, at)
		rec := store.PaymentRecord{ID: id, MerchantID: m.ID, Amount: 100, Currency: "USD", Status: payment.StatusSucceeded,
			AmountReceived: 100, CaptureMethod: payment.CaptureMethodAutomatic, PaymentMethod: "pm_card_visa", Gateway: "sandbox",
			WorkflowID: "payment/" + id, Version: 1, CreatedAt: at, UpdatedAt: at}
		if _, err := db.SavePayment(ctx, rec, nil); err != nil {
			t.Fatal(err)
		}
		evs, err := db.ListEvents(ctx, store.EventFilter{ObjectID: id}, store.Page{Limit: 5})
		if err != nil || len(evs) != 1 {
			t.Fatalf("events %v %v", evs, err)
		}
		return notify.DeliveryWorkflowID(evs[0].ID, ep.ID)
	}
	first := save()
	var logs strings.Builder
	var logMu sync.Mutex
	starter := &fakeStarter{fail: errors.New("temporal unavailable")}
	relay := &notify.Relay{Store: db, Temporal: starter, TaskQueue: "q", Interval: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.Run(runCtx)
	}()
	waitUntil := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("never: %s", what)
			}
			time.Sleep(5 * time.Millisecond) // polling with a deadline
		}
	}
	waitUntil("a failed round logged", func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(logs.String(), "event relay: will retry")
	})
	starter.mu.Lock()
	starter.fail = nil
	starter.mu.Unlock()
	waitUntil("the first event dispatched", func() bool { return slices.Contains(starter.ids(), first) })
	second := save()
	waitUntil("an event saved while running dispatched", func() bool { return slices.Contains(starter.ids(), second) })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

type lockedWriter struct {
	w  *strings.Builder
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
