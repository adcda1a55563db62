package notify_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	"github.com/payments-platform/payments/workflows/notify"
)

// noticeStarter is the part of the Temporal client the relay uses, for
// account notices: it keeps every start in order (workflow name, options
// and input), answers AlreadyStarted for an id started before or listed in
// running, and fails the starts of the ids in fail.
type noticeStarter struct {
	client.Client
	mu      sync.Mutex
	starts  []noticeStart
	running []string
	fail    map[string]error
	calls   int
}

type noticeStart struct {
	id, name, queue string
	reuse           enums.WorkflowIdReusePolicy
	input           any
}

func (f *noticeStarter) ExecuteWorkflow(_ context.Context, o client.StartWorkflowOptions, wf any, args ...any) (client.WorkflowRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err := f.fail[o.ID]; err != nil {
		return nil, err
	}
	if slices.Contains(f.running, o.ID) || slices.ContainsFunc(f.starts, func(s noticeStart) bool { return s.id == o.ID }) {
		return nil, serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "")
	}
	name, _ := wf.(string)
	var input any
	if len(args) > 0 {
		input = args[0]
	}
	f.starts = append(f.starts, noticeStart{id: o.ID, name: name, queue: o.TaskQueue, reuse: o.WorkflowIDReusePolicy, input: input})
	return nil, nil
}

func (f *noticeStarter) started() []noticeStart {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.starts)
}

func (f *noticeStarter) startedIDs() []string {
	var out []string
	for _, s := range f.started() {
		out = append(out, s.id)
	}
	return out
}

func (f *noticeStarter) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// relayNoticeAt is when the first test notice was written.
var relayNoticeAt = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

// addRelayNotices writes one notice per kind, a minute apart, newest
// first (so that the order they were written in is not the order they are
// due in), and returns their ids oldest first.
func addRelayNotices(t *testing.T, db *store.Store, kinds ...accountnotice.Kind) []string {
	t.Helper()
	ctx := context.Background()
	var oldestFirst []string
	for i := len(kinds) - 1; i >= 0; i-- {
		before, err := db.Client.AccountNotice.Query().IDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := store.Notice{Kind: kinds[i], Recipient: "owner@example.com", At: relayNoticeAt.Add(time.Duration(i) * time.Minute)}
		if kinds[i] != accountnotice.KindPasswordReset {
			n.AccountID = "acct_relaytest"
		}
		if err := db.AddNotice(ctx, n); err != nil {
			t.Fatal(err)
		}
		after, err := db.Client.AccountNotice.Query().IDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var fresh []string
		for _, id := range after {
			if !slices.Contains(before, id) {
				fresh = append(fresh, id)
			}
		}
		if len(fresh) != 1 {
			t.Fatalf("%d new notices, want one", len(fresh))
		}
		oldestFirst = append([]string{fresh[0]}, oldestFirst...)
	}
	pending, err := db.UndispatchedNotices(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range pending {
		got = append(got, n.ID)
	}
	if !slices.Equal(got, oldestFirst) {
		t.Fatalf("undispatched notices %v, want %v", got, oldestFirst)
	}
	return oldestFirst
}

func wantWorkflowIDs(noticeIDs []string) []string {
	var out []string
	for _, id := range noticeIDs {
		out = append(out, notify.AccountEmailWorkflowID(id))
	}
	return out
}

func undispatchedNoticeIDs(t *testing.T, db *store.Store) []string {
	t.Helper()
	ns, err := db.UndispatchedNotices(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

func noticeRow(t *testing.T, db *store.Store, id string) *ent.AccountNotice {
	t.Helper()
	n, err := db.NoticeByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Drain starts one account email workflow per undispatched notice, oldest
// first, with the notice's id, and marks each dispatched; the next Drain
// starts nothing.
func TestRelayStartsAccountEmailPerNotice(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		ntcs := addRelayNotices(t, db, accountnotice.KindVerifyEmail, accountnotice.KindPasswordReset, accountnotice.KindClosed)
		starter := &noticeStarter{}
		dispatchedAt := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
		relay := &notify.Relay{Store: db, Temporal: starter, TaskQueue: "payments-q", Logger: slog.New(slog.DiscardHandler),
			Emails: true, Now: func() time.Time { return dispatchedAt }}

		n, err := relay.Drain(ctx)
		if err != nil || n != len(ntcs) {
			t.Fatalf("Drain: %d %v, want %d", n, err, len(ntcs))
		}
		starts := starter.started()
		if got, want := starter.startedIDs(), wantWorkflowIDs(ntcs); !slices.Equal(got, want) {
			t.Fatalf("started %v, want %v (oldest first)", got, want)
		}
		for i, s := range starts {
			if s.name != notify.AccountEmailWorkflowName || s.input != ntcs[i] || s.queue != "payments-q" ||
				s.reuse != enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE {
				t.Fatalf("start %d: %+v, want %s of %s on payments-q rejecting duplicates", i, s, notify.AccountEmailWorkflowName, ntcs[i])
			}
		}
		if left := undispatchedNoticeIDs(t, db); len(left) != 0 {
			t.Fatalf("notices still undispatched %v", left)
		}
		for _, id := range ntcs {
			if row := noticeRow(t, db, id); row.DispatchedAt == nil || !row.DispatchedAt.Equal(dispatchedAt) {
				t.Fatalf("notice %s dispatched at %v, want %v", id, row.DispatchedAt, dispatchedAt)
			}
		}

		calls := starter.callCount()
		if n, err := relay.Drain(ctx); err != nil || n != 0 {
			t.Fatalf("second Drain: %d %v", n, err)
		}
		if starter.callCount() != calls || len(starter.started()) != len(ntcs) {
			t.Fatalf("second Drain started %d workflows", starter.callCount()-calls)
		}
	})
}

// Without a mailer no workflow starts, but the notices leave the outbox.
func TestRelayWithoutEmailsMarksNoticesDispatched(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		ntcs := addRelayNotices(t, db, accountnotice.KindPasswordChanged, accountnotice.KindSuspended)
		starter := &noticeStarter{}
		relay := &notify.Relay{Store: db, Temporal: starter, TaskQueue: "q", Logger: slog.New(slog.DiscardHandler), Emails: false}
		if n, err := relay.Drain(ctx); err != nil || n != len(ntcs) {
			t.Fatalf("Drain: %d %v, want %d", n, err, len(ntcs))
		}
		if starter.callCount() != 0 {
			t.Fatalf("started %v without a mailer", starter.startedIDs())
		}
		if left := undispatchedNoticeIDs(t, db); len(left) != 0 {
			t.Fatalf("notices still undispatched %v", left)
		}
		for _, id := range ntcs {
			if noticeRow(t, db, id).DispatchedAt == nil {
				t.Fatalf("notice %s not marked dispatched", id)
			}
		}
	})
}

// A notice whose workflow was started already (a relay that died between
// the start and the mark, or another worker's relay) counts as started.
func TestRelayNoticeAlreadyStartedCountsAsStarted(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		ntcs := addRelayNotices(t, db, accountnotice.KindVerifyEmail, accountnotice.KindEmailChangeRequested)
		starter := &noticeStarter{running: []string{notify.AccountEmailWorkflowID(ntcs[0])}}
		relay := &notify.Relay{Store: db, Temporal: starter, TaskQueue: "q", Logger: slog.New(slog.DiscardHandler), Emails: true}
		if n, err := relay.Drain(ctx); err != nil || n != 2 {
			t.Fatalf("Drain: %d %v, want 2", n, err)
		}
		if starter.callCount() != 2 {
			t.Fatalf("%d starts, want 2", starter.callCount())
		}
		if got, want := starter.startedIDs(), wantWorkflowIDs(ntcs[1:]); !slices.Equal(got, want) {
			t.Fatalf("newly started %v, want %v", got, want)
		}
		if left := undispatchedNoticeIDs(t, db); len(left) != 0 {
			t.Fatalf("notices still undispatched %v", left)
		}
	})
}

// A notice whose start fails stays undispatched (and so do the newer ones:
// Drain stops there); the next Drain retries it.
func TestRelayRetriesAFailedNoticeStart(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		ntcs := addRelayNotices(t, db, accountnotice.KindPasswordReset, accountnotice.KindVerifyEmail, accountnotice.KindClosed)
		failing := notify.AccountEmailWorkflowID(ntcs[1])
		starter := &noticeStarter{fail: map[string]error{failing: errors.New("temporal unavailable")}}
		relay := &notify.Relay{Store: db, Temporal: starter, TaskQueue: "q", Logger: slog.New(slog.DiscardHandler), Emails: true}

		n, err := relay.Drain(ctx)
		if err == nil || n != 1 {
			t.Fatalf("Drain with a failing start: %d %v, want 1 and an error", n, err)
		}
		if got := undispatchedNoticeIDs(t, db); !slices.Equal(got, ntcs[1:]) {
			t.Fatalf("undispatched %v, want %v", got, ntcs[1:])
		}
		if noticeRow(t, db, ntcs[0]).DispatchedAt == nil {
			t.Fatal("the notice started before the failure is not marked dispatched")
		}
		if noticeRow(t, db, ntcs[1]).DispatchedAt != nil {
			t.Fatal("the notice whose start failed is marked dispatched")
		}

		starter.mu.Lock()
		starter.fail = nil
		starter.mu.Unlock()
		if n, err := relay.Drain(ctx); err != nil || n != 2 {
			t.Fatalf("Drain after the failure: %d %v, want 2", n, err)
		}
		if got, want := starter.startedIDs(), wantWorkflowIDs(ntcs); !slices.Equal(got, want) {
			t.Fatalf("started %v, want %v", got, want)
		}
		if left := undispatchedNoticeIDs(t, db); len(left) != 0 {
			t.Fatalf("notices still undispatched %v", left)
		}
	})
}

// An event the relay cannot dispatch (its starts fail) does not hold the
// account notices back: they are started in the same Drain, which reports
// the event's failure.
func TestRelayNoticesDoNotWaitForAFailingEvent(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		acct := func(email string, role account.Role) *ent.Account {
			a, err := db.CreateAccount(ctx, store.NewAccount{Email: email, PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", Role: role})
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		m, c := acct("m@x.test", account.RoleMerchant), acct("c@x.test", account.RoleCustomer)
		id := ids.NewAt(ids.Payment, relayNoticeAt)
		if _, err := db.SavePayment(ctx, store.PaymentRecord{ID: id, MerchantID: m.ID, CustomerID: c.ID, Amount: 100, Currency: "USD",
			Status: payment.StatusSucceeded, AmountReceived: 100, CaptureMethod: payment.CaptureMethodAutomatic,
			PaymentMethod: "pm_card_visa", Gateway: "sandbox", WorkflowID: "payment/" + id, Version: 1,
			CreatedAt: relayNoticeAt, UpdatedAt: relayNoticeAt}, nil); err != nil {
			t.Fatal(err)
		}
		evs, err := db.UndispatchedEvents(ctx, 10)
		if err != nil || len(evs) != 1 {
			t.Fatalf("outbox %v %v", evs, err)
		}
		ntcs := addRelayNotices(t, db, accountnotice.KindPasswordReset, accountnotice.KindVerifyEmail)
		starter := &noticeStarter{fail: map[string]error{notify.EmailWorkflowID(evs[0].ID): errors.New("temporal unavailable")}}
		relay := &notify.Relay{Store: db, Temporal: starter, TaskQueue: "q", Logger: slog.New(slog.DiscardHandler), Emails: true}

		n, err := relay.Drain(ctx)
		if err == nil || n != 2 {
			t.Fatalf("Drain with a failing event: %d %v, want the 2 notices and the event's error", n, err)
		}
		if got := undispatchedNoticeIDs(t, db); len(got) != 0 {
			t.Fatalf("notices left behind the failing event: %v", got)
		}
		if got, want := starter.startedIDs(), wantWorkflowIDs(ntcs); !slices.Equal(got, want) {
			t.Fatalf("started %v, want %v", got, want)
		}
		if evs, _ := db.UndispatchedEvents(ctx, 10); len(evs) != 1 {
			t.Fatalf("the failing event left the outbox: %v", evs)
		}
	})
}
