package store_test

// Tests of webhook endpoints and delivery attempts (webhooks.go).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/delivery"
	"github.com/payments-platform/payments/ent/webhookendpoint"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// endpointRecord is a new endpoint of accountID created at at.
func endpointRecord(accountID string, at time.Time) store.EndpointRecord {
	return store.EndpointRecord{
		ID: ids.NewAt(ids.Endpoint, at), AccountID: accountID,
		URL: "https://hooks.example.com/" + accountID, Description: "orders",
		Secret: "sealed:" + accountID, EnabledEvents: []string{"payment.succeeded", "refund.failed"},
		CreatedAt: at,
	}
}

func mustCreateEndpoint(t *testing.T, s *store.Store, rec store.EndpointRecord) *ent.WebhookEndpoint {
	t.Helper()
	ep, err := s.CreateEndpoint(context.Background(), rec)
	if err != nil {
		t.Fatalf("CreateEndpoint(%s of %s): %v", rec.ID, rec.AccountID, err)
	}
	return ep
}

func mustAdmin(t *testing.T, s *store.Store, email string) *ent.Account {
	t.Helper()
	acc, err := s.CreateAccount(context.Background(), store.NewAccount{
		Email: email, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", Role: account.RoleAdmin,
	})
	if err != nil {
		t.Fatalf("CreateAccount(admin %s): %v", email, err)
	}
	return acc
}

func countEndpoints(t *testing.T, s *store.Store, accountID string) int {
	t.Helper()
	n, err := s.Client.WebhookEndpoint.Query().Where(webhookendpoint.AccountID(accountID)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// endpointState renders every column of an endpoint, so a test can compare
// a whole row.
func endpointState(ep *ent.WebhookEndpoint) string {
	exp := "nil"
	if ep.PreviousSecretExpiresAt != nil {
		exp = ep.PreviousSecretExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("id=%s account=%s all=%v url=%s events=%v description=%q status=%s reason=%q secret=%q previous=%q previous_expires=%s created=%s updated=%s",
		ep.ID, ep.AccountID, ep.AllMerchants, ep.URL, ep.EnabledEvents, ep.Description, ep.Status, ep.DisabledReason,
		ep.Secret, ep.PreviousSecret, exp, ep.CreatedAt.UTC().Format(time.RFC3339Nano), ep.UpdatedAt.UTC().Format(time.RFC3339Nano))
}

func endpointIDs(eps []*ent.WebhookEndpoint) []string {
	var out []string
	for _, ep := range eps {
		out = append(out, ep.ID)
	}
	return out
}

func TestCreateEndpointIsLimitedPerAccount(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "limit-a@example.com")
		b := mustAccount(t, s, "limit-b@example.com")
		for i := range store.MaxEndpoints {
			rec := endpointRecord(a.ID, t0.Add(time.Duration(i)*time.Second))
			ep := mustCreateEndpoint(t, s, rec)
			if i == 0 {
				// The first one, column by column.
				want := fmt.Sprintf("id=%s account=%s all=false url=%s events=[payment.succeeded refund.failed] description=\"orders\" status=enabled reason=\"\" secret=%q previous=\"\" previous_expires=nil created=%s updated=%s",
					rec.ID, a.ID, rec.URL, rec.Secret, t0.Format(time.RFC3339Nano), t0.Format(time.RFC3339Nano))
				if got := endpointState(ep); got != want {
					t.Fatalf("created endpoint:\n got %s\nwant %s", got, want)
				}
				read, err := s.EndpointByID(ctx, rec.ID)
				if err != nil {
					t.Fatalf("EndpointByID: %v", err)
				}
				if got := endpointState(read); got != want {
					t.Fatalf("endpoint read back:\n got %s\nwant %s", got, want)
				}
			}
		}
		steps := []struct {
			name    string
			account string
			kind    errs.Kind
			wantA   int
		}{
			{"the 17th of the account", a.ID, errs.KindResourceExhausted, store.MaxEndpoints},
			{"another 17th", a.ID, errs.KindResourceExhausted, store.MaxEndpoints},
			{"another account's first", b.ID, 0, store.MaxEndpoints},
			{"an unknown account", ids.New(ids.Account), errs.KindNotFound, store.MaxEndpoints},
		}
		for _, st := range steps {
			t.Run(st.name, func(t *testing.T) {
				_, err := s.CreateEndpoint(ctx, endpointRecord(st.account, t0.Add(time.Hour)))
				switch {
				case st.kind == 0 && err != nil:
					t.Fatalf("CreateEndpoint: %v", err)
				case st.kind != 0 && errs.KindOf(err) != st.kind:
					t.Fatalf("CreateEndpoint: error %v (kind %v), want kind %v", err, errs.KindOf(err), st.kind)
				}
				if n := countEndpoints(t, s, a.ID); n != st.wantA {
					t.Fatalf("account A has %d endpoints, want %d", n, st.wantA)
				}
			})
		}
		// Once one is deleted, there is room for one.
		eps, err := s.ListEndpoints(ctx, a.ID, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteEndpoint(ctx, eps[0].ID); err != nil {
			t.Fatal(err)
		}
		mustCreateEndpoint(t, s, endpointRecord(a.ID, t0.Add(2*time.Hour)))
		if _, err := s.CreateEndpoint(ctx, endpointRecord(a.ID, t0.Add(3*time.Hour))); errs.KindOf(err) != errs.KindResourceExhausted {
			t.Fatalf("CreateEndpoint past the limit again: %v, want resource_exhausted", err)
		}
	})
}

// Creations at once for one account never take it past the limit: the
// account's row is locked (MySQL), the database's write lock held (SQLite).
func TestCreateEndpointConcurrentlyNeverExceedsTheLimit(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		const n = 3 * store.MaxEndpoints
		a := mustAccount(t, s, "race@example.com")
		other := mustAccount(t, s, "race-other@example.com")
		// A few already there, so the race is for the last places.
		for i := range 5 {
			mustCreateEndpoint(t, s, endpointRecord(a.ID, t0.Add(time.Duration(i)*time.Millisecond)))
		}
		errsOf := concurrently(n, func(i int) error {
			acct := a.ID
			if i%8 == 7 {
				acct = other.ID
			}
			_, err := s.CreateEndpoint(context.Background(), endpointRecord(acct, t0.Add(time.Second+time.Duration(i)*time.Millisecond)))
			return err
		})
		var created, exhausted, otherCreated int
		for i, err := range errsOf {
			switch {
			case err == nil && i%8 == 7:
				otherCreated++
			case err == nil:
				created++
			case errs.KindOf(err) == errs.KindResourceExhausted && i%8 != 7:
				exhausted++
			default:
				t.Errorf("creation %d: %v", i, err)
			}
		}
		others := n / 8
		if created != store.MaxEndpoints-5 || exhausted != n-others-created || otherCreated != others {
			t.Fatalf("%d created, %d refused as exhausted, %d of the other account created; want %d, %d, %d",
				created, exhausted, otherCreated, store.MaxEndpoints-5, n-others-(store.MaxEndpoints-5), others)
		}
		if got := countEndpoints(t, s, a.ID); got != store.MaxEndpoints {
			t.Fatalf("account has %d endpoints after the race, want %d", got, store.MaxEndpoints)
		}
	})
}

func TestListEndpoints(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := mustAccount(t, s, "list-a@example.com")
		b := mustAccount(t, s, "list-b@example.com")
		// Newest first: created_at, then id; two of A's at one instant.
		var all []*ent.WebhookEndpoint
		for i, spec := range []struct {
			acct string
			at   time.Duration
		}{{a.ID, 0}, {b.ID, time.Second}, {a.ID, 2 * time.Second}, {a.ID, 2 * time.Second}, {b.ID, 3 * time.Second}, {a.ID, 4 * time.Second}} {
			rec := endpointRecord(spec.acct, t0.Add(spec.at))
			rec.ID = fmt.Sprintf("%s%026d", ids.Endpoint, i) // ids in creation order
			all = append(all, mustCreateEndpoint(t, s, rec))
		}
		newest := func(keep func(*ent.WebhookEndpoint) bool) []string {
			var out []string
			for i := len(all) - 1; i >= 0; i-- {
				if keep(all[i]) {
					out = append(out, all[i].ID)
				}
			}
			return out
		}
		cases := []struct {
			name    string
			account string
			want    []string
		}{
			{"account A", a.ID, newest(func(ep *ent.WebhookEndpoint) bool { return ep.AccountID == a.ID })},
			{"account B", b.ID, newest(func(ep *ent.WebhookEndpoint) bool { return ep.AccountID == b.ID })},
			{"everyone's", "", newest(func(*ent.WebhookEndpoint) bool { return true })},
			{"an account with none", ids.New(ids.Account), nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				for _, limit := range []int{1, 2, 100} {
					var got []string
					var after *store.Cursor
					for pages := 0; ; pages++ {
						if pages > len(all)+1 {
							t.Fatalf("runaway paging")
						}
						page, err := s.ListEndpoints(ctx, tc.account, store.Page{Limit: limit, After: after})
						if err != nil {
							t.Fatalf("ListEndpoints: %v", err)
						}
						got = append(got, endpointIDs(page)...)
						if len(page) < limit {
							break
						}
						c := store.EndpointCursor(page[len(page)-1])
						after = &c
					}
					if !slices.Equal(got, tc.want) {
						t.Fatalf("paged by %d: %v, want %v", limit, got, tc.want)
					}
				}
			})
		}
		if _, err := s.ListEndpoints(ctx, a.ID, store.Page{}); errs.KindOf(err) != errs.KindInvalidArgument {
			t.Fatalf("ListEndpoints with no page size: %v, want invalid_argument", err)
		}
	})
}

func TestUpdateEndpoint(t *testing.T) {
	str := func(s string) *string { return &s }
	yes, no := true, false
	t1 := t0.Add(time.Hour)
	expires := t0.Add(25 * time.Hour)
	cases := []struct {
		name string
		// disabled first disables the endpoint (by its owner).
		disabled bool
		change   store.EndpointChange
		// edit turns the created row's state into the expected one.
		edit func(ep *ent.WebhookEndpoint)
	}{
		{"nothing but the time", false, store.EndpointChange{}, func(*ent.WebhookEndpoint) {}},
		{"url", false, store.EndpointChange{URL: str("https://new.example.com/hook")},
			func(ep *ent.WebhookEndpoint) { ep.URL = "https://new.example.com/hook" }},
		{"description", false, store.EndpointChange{Description: str("billing")},
			func(ep *ent.WebhookEndpoint) { ep.Description = "billing" }},
		{"description emptied", false, store.EndpointChange{Description: str("")},
			func(ep *ent.WebhookEndpoint) { ep.Description = "" }},
		{"enabled events", false, store.EndpointChange{EnabledEvents: []string{"*"}},
			func(ep *ent.WebhookEndpoint) { ep.EnabledEvents = []string{"*"} }},
		{"empty enabled events keep them", false, store.EndpointChange{EnabledEvents: []string{}}, func(*ent.WebhookEndpoint) {}},
		{"disabled", false, store.EndpointChange{Disabled: &yes},
			func(ep *ent.WebhookEndpoint) {
				ep.Status, ep.DisabledReason = webhookendpoint.StatusDisabled, store.DisabledByOwner
			}},
		{"disabled again", true, store.EndpointChange{Disabled: &yes},
			func(ep *ent.WebhookEndpoint) {
				ep.Status, ep.DisabledReason = webhookendpoint.StatusDisabled, store.DisabledByOwner
			}},
		{"re-enabled", true, store.EndpointChange{Disabled: &no},
			func(ep *ent.WebhookEndpoint) { ep.Status, ep.DisabledReason = webhookendpoint.StatusEnabled, "" }},
		{"enabled while enabled", false, store.EndpointChange{Disabled: &no}, func(*ent.WebhookEndpoint) {}},
		{"disabled left as it is", true, store.EndpointChange{URL: str("https://x.example.com/")},
			func(ep *ent.WebhookEndpoint) {
				ep.URL, ep.Status, ep.DisabledReason = "https://x.example.com/", webhookendpoint.StatusDisabled, store.DisabledByOwner
			}},
		{"secret rotated with an overlap", false, store.EndpointChange{Secret: str("sealed:new"), PreviousSecret: str("sealed:old"), PreviousExpiresAt: &expires},
			func(ep *ent.WebhookEndpoint) {
				ep.Secret, ep.PreviousSecret, ep.PreviousSecretExpiresAt = "sealed:new", "sealed:old", &expires
			}},
		{"secret rotated without an overlap", false, store.EndpointChange{Secret: str("sealed:new"), PreviousSecret: str("")},
			func(ep *ent.WebhookEndpoint) { ep.Secret = "sealed:new" }},
		{"every field", false, store.EndpointChange{URL: str("https://all.example.com/"), Description: str("all"),
			EnabledEvents: []string{"dispute.opened"}, Disabled: &yes, Secret: str("sealed:all")},
			func(ep *ent.WebhookEndpoint) {
				ep.URL, ep.Description, ep.EnabledEvents, ep.Secret = "https://all.example.com/", "all", []string{"dispute.opened"}, "sealed:all"
				ep.Status, ep.DisabledReason = webhookendpoint.StatusDisabled, store.DisabledByOwner
			}},
	}
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acct := mustAccount(t, s, "update@example.com")
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ep := mustCreateEndpoint(t, s, endpointRecord(acct.ID, t0))
				if tc.disabled {
					var err error
					if ep, err = s.UpdateEndpoint(ctx, ep.ID, store.EndpointChange{Disabled: &yes, At: t0}); err != nil {
						t.Fatal(err)
					}
				}
				want := *ep
				want.EnabledEvents = slices.Clone(ep.EnabledEvents)
				tc.edit(&want)
				want.UpdatedAt = t1
				c := tc.change
				c.At = t1
				got, err := s.UpdateEndpoint(ctx, ep.ID, c)
				if err != nil {
					t.Fatalf("UpdateEndpoint: %v", err)
				}
				if g, w := endpointState(got), endpointState(&want); g != w {
					t.Fatalf("UpdateEndpoint returned\n got %s\nwant %s", g, w)
				}
				read, err := s.EndpointByID(ctx, ep.ID)
				if err != nil {
					t.Fatal(err)
				}
				if g, w := endpointState(read), endpointState(&want); g != w {
					t.Fatalf("stored\n got %s\nwant %s", g, w)
				}
			})
		}

		t.Run("previous secret replaced, then cleared", func(t *testing.T) {
			ep := mustCreateEndpoint(t, s, endpointRecord(acct.ID, t0))
			for _, st := range []struct {
				change      store.EndpointChange
				prev        string
				prevExpires *time.Time
			}{
				{store.EndpointChange{Secret: str("s2"), PreviousSecret: str("s1"), PreviousExpiresAt: &expires}, "s1", &expires},
				// A rotation that sets no previous secret leaves it.
				{store.EndpointChange{Description: str("d")}, "s1", &expires},
				{store.EndpointChange{Secret: str("s3"), PreviousSecret: str("")}, "", nil},
			} {
				st.change.At = t1
				got, err := s.UpdateEndpoint(ctx, ep.ID, st.change)
				if err != nil {
					t.Fatal(err)
				}
				if got.PreviousSecret != st.prev {
					t.Fatalf("previous secret %q, want %q", got.PreviousSecret, st.prev)
				}
				want := time.Time{}
				if st.prevExpires != nil {
					want = *st.prevExpires
				}
				wantTime(t, "previous_secret_expires_at", got.PreviousSecretExpiresAt, want)
			}
		})

		t.Run("unknown endpoint", func(t *testing.T) {
			_, err := s.UpdateEndpoint(ctx, ids.New(ids.Endpoint), store.EndpointChange{Disabled: &yes, At: t1})
			wantErr(t, err, errs.ErrNotFound, "")
		})
	})
}

func TestDisableGoneEndpointAndDeleteEndpoint(t *testing.T) {
	yes := true
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acct := mustAccount(t, s, "gone@example.com")
		t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
		cases := []struct {
			name string
			// ownerDisabled disables it first, by its owner, at t1.
			ownerDisabled bool
			wantStatus    webhookendpoint.Status
			wantReason    string
			wantUpdated   time.Time
		}{
			{"enabled: disabled as gone", false, webhookendpoint.StatusDisabled, store.DisabledGone, t2},
			{"disabled by its owner: left as it is", true, webhookendpoint.StatusDisabled, store.DisabledByOwner, t1},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ep := mustCreateEndpoint(t, s, endpointRecord(acct.ID, t0))
				if tc.ownerDisabled {
					if _, err := s.UpdateEndpoint(ctx, ep.ID, store.EndpointChange{Disabled: &yes, At: t1}); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.DisableGoneEndpoint(ctx, ep.ID, t2); err != nil {
					t.Fatalf("DisableGoneEndpoint: %v", err)
				}
				got, err := s.EndpointByID(ctx, ep.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != tc.wantStatus || got.DisabledReason != tc.wantReason || !got.UpdatedAt.Equal(tc.wantUpdated) {
					t.Fatalf("endpoint is %s (%q) updated %v, want %s (%q) updated %v",
						got.Status, got.DisabledReason, got.UpdatedAt, tc.wantStatus, tc.wantReason, tc.wantUpdated)
				}
			})
		}
		t.Run("an unknown endpoint: nothing", func(t *testing.T) {
			if err := s.DisableGoneEndpoint(ctx, ids.New(ids.Endpoint), t2); err != nil {
				t.Fatalf("DisableGoneEndpoint: %v", err)
			}
		})
		t.Run("delete", func(t *testing.T) {
			keep := mustCreateEndpoint(t, s, endpointRecord(acct.ID, t0))
			ep := mustCreateEndpoint(t, s, endpointRecord(acct.ID, t0))
			if err := s.DeleteEndpoint(ctx, ep.ID); err != nil {
				t.Fatalf("DeleteEndpoint: %v", err)
			}
			_, err := s.EndpointByID(ctx, ep.ID)
			wantErr(t, err, errs.ErrNotFound, "")
			wantErr(t, s.DeleteEndpoint(ctx, ep.ID), errs.ErrNotFound, "")
			wantErr(t, s.DeleteEndpoint(ctx, ids.New(ids.Endpoint)), errs.ErrNotFound, "")
			if _, err := s.EndpointByID(ctx, keep.ID); err != nil {
				t.Fatalf("the other endpoint: %v", err)
			}
		})
	})
}

func TestEndpointsFor(t *testing.T) {
	yes := true
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m1 := mustAccount(t, s, "for-m1@example.com")
		m2 := mustAccount(t, s, "for-m2@example.com")
		admin := mustAdmin(t, s, "for-admin@example.com")
		named := map[string]string{}
		at := t0
		create := func(name, acct string, all, disabled bool) {
			t.Helper()
			at = at.Add(time.Second)
			rec := endpointRecord(acct, at)
			rec.AllMerchants = all
			ep := mustCreateEndpoint(t, s, rec)
			if disabled {
				if _, err := s.UpdateEndpoint(ctx, ep.ID, store.EndpointChange{Disabled: &yes, At: at}); err != nil {
					t.Fatal(err)
				}
			}
			named[ep.ID] = name
		}
		create("adminAll", admin.ID, true, false)
		create("m1", m1.ID, false, false)
		create("m1Disabled", m1.ID, false, true)
		create("m2", m2.ID, false, false)
		create("adminAllDisabled", admin.ID, true, true)
		create("adminOwn", admin.ID, false, false)
		create("m1Second", m1.ID, false, false)
		// Gone after a 410.
		at = at.Add(time.Second)
		gone := mustCreateEndpoint(t, s, endpointRecord(m2.ID, at))
		named[gone.ID] = "m2Gone"
		if err := s.DisableGoneEndpoint(ctx, gone.ID, at); err != nil {
			t.Fatal(err)
		}

		cases := []struct {
			name     string
			merchant string
			want     []string
		}{
			{"merchant 1: its enabled ones and the admin's for all, oldest first", m1.ID, []string{"adminAll", "m1", "m1Second"}},
			{"merchant 2", m2.ID, []string{"adminAll", "m2"}},
			{"a merchant with none", ids.New(ids.Account), []string{"adminAll"}},
			{"the admin's own id", admin.ID, []string{"adminAll", "adminOwn"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				eps, err := s.EndpointsFor(ctx, tc.merchant)
				if err != nil {
					t.Fatalf("EndpointsFor: %v", err)
				}
				var got []string
				for _, ep := range eps {
					got = append(got, named[ep.ID])
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("EndpointsFor = %v, want %v", got, tc.want)
				}
			})
		}
	})
}

// deliveryState renders every column of a delivery.
func deliveryState(d *ent.Delivery) string {
	next := "nil"
	if d.NextAttemptAt != nil {
		next = d.NextAttemptAt.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("id=%s event=%s endpoint=%s account=%s workflow=%s attempt=%d status=%s response=%d error=%q body=%q next=%s created=%s updated=%s",
		d.ID, d.EventID, d.EndpointID, d.AccountID, d.WorkflowID, d.Attempt, d.Status, d.ResponseStatus, d.Error, d.ResponseBody,
		next, d.CreatedAt.UTC().Format(time.RFC3339Nano), d.UpdatedAt.UTC().Format(time.RFC3339Nano))
}

func deliveryRecord(eventID, endpointID, accountID string, attempt int, at time.Time) store.DeliveryRecord {
	return store.DeliveryRecord{
		ID: ids.NewAt(ids.Delivery, at), EventID: eventID, EndpointID: endpointID, AccountID: accountID,
		WorkflowID: "webhook/" + eventID + "/" + endpointID, Attempt: attempt, Status: delivery.StatusPending, At: at,
	}
}

func TestSaveDeliveryInsertsThenUpdates(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		evt := store.EventID(ids.New(ids.Payment), 2, t0)
		rec := deliveryRecord(evt, ids.New(ids.Endpoint), ids.New(ids.Account), 3, t0)
		retryAt := t0.Add(5 * time.Minute)
		later := t0.Add(10 * time.Minute)
		steps := []struct {
			name string
			edit func(r *store.DeliveryRecord)
			// want is the row, with the first save's created_at and the
			// fields that never change.
			status   delivery.Status
			response int
			err      string
			body     string
			next     *time.Time
			updated  time.Time
		}{
			{"pending, inserted", func(r *store.DeliveryRecord) {}, delivery.StatusPending, 0, "", "", nil, t0},
			{"failed, retry due", func(r *store.DeliveryRecord) {
				r.Status, r.ResponseStatus, r.Error, r.ResponseBody, r.NextAttemptAt, r.At =
					delivery.StatusFailed, 503, "HTTP 503", "busy", &retryAt, t0.Add(time.Minute)
			}, delivery.StatusFailed, 503, "HTTP 503", "busy", &retryAt, t0.Add(time.Minute)},
			{"the same again (a retried activity)", func(r *store.DeliveryRecord) {}, delivery.StatusFailed, 503, "HTTP 503", "busy", &retryAt, t0.Add(time.Minute)},
			{"succeeded: next attempt cleared", func(r *store.DeliveryRecord) {
				r.Status, r.ResponseStatus, r.Error, r.ResponseBody, r.NextAttemptAt, r.At =
					delivery.StatusSucceeded, 200, "", "ok", nil, later
			}, delivery.StatusSucceeded, 200, "", "ok", nil, later},
			// What never changes is the first save's, whatever a later
			// record says.
			{"immutable fields kept", func(r *store.DeliveryRecord) {
				r.Attempt, r.WorkflowID, r.At = 9, "other", later.Add(time.Minute)
			}, delivery.StatusSucceeded, 200, "", "ok", nil, later.Add(time.Minute)},
		}
		for _, st := range steps {
			st.edit(&rec)
			got, err := s.SaveDelivery(ctx, rec)
			if err != nil {
				t.Fatalf("%s: SaveDelivery: %v", st.name, err)
			}
			want := &ent.Delivery{
				ID: rec.ID, EventID: evt, EndpointID: rec.EndpointID, AccountID: rec.AccountID,
				WorkflowID: "webhook/" + evt + "/" + rec.EndpointID, Attempt: 3,
				Status: st.status, ResponseStatus: st.response, Error: st.err, ResponseBody: st.body,
				NextAttemptAt: st.next, CreatedAt: t0, UpdatedAt: st.updated,
			}
			if g, w := deliveryState(got), deliveryState(want); g != w {
				t.Fatalf("%s:\n got %s\nwant %s", st.name, g, w)
			}
			read, err := s.DeliveryByID(ctx, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := deliveryState(read), deliveryState(want); g != w {
				t.Fatalf("%s, read back:\n got %s\nwant %s", st.name, g, w)
			}
		}
		_, err := s.DeliveryByID(ctx, ids.New(ids.Delivery))
		wantErr(t, err, errs.ErrNotFound, "")
	})
}

func TestSaveDeliveryTruncatesErrorAndBody(t *testing.T) {
	cases := []struct {
		name          string
		errText, body string
		// wantErrRunes and wantBodyBytes are the lengths stored.
		wantErrRunes, wantBodyBytes int
	}{
		{"short", "connection refused", "ok", 18, 2},
		{"error of exactly 500 runes", strings.Repeat("é", 500), "", 500, 0},
		{"error of 501 two-byte runes", strings.Repeat("é", 501), "", 500, 0},
		{"error of 600 four-byte runes", strings.Repeat("😀", 600), "", 500, 0},
		{"error of 1000 ASCII", strings.Repeat("x", 1000), "", 500, 0},
		{"body of exactly 1024 bytes", "", strings.Repeat("b", 1024), 0, 1024},
		{"body of 1025 ASCII bytes", "", strings.Repeat("b", 1025), 0, 1024},
		{"body of two-byte runes ending on the limit", "", strings.Repeat("é", 600), 0, 1024},
		{"body of two-byte runes across the limit", "", "a" + strings.Repeat("é", 600), 0, 1023},
		{"body of three-byte runes", "", strings.Repeat("€", 400), 0, 1023},
		{"body of four-byte runes, one across", "", "ab" + strings.Repeat("😀", 300), 0, 1022},
		{"body of four-byte runes ending on the limit", "", strings.Repeat("😀", 300), 0, 1024},
		{"body of 1024 bytes of two-byte runes", "", strings.Repeat("é", 512), 0, 1024},
	}
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rec := deliveryRecord(store.EventID(ids.New(ids.Payment), 1, t0), ids.New(ids.Endpoint), ids.New(ids.Account), 1, t0.Add(time.Duration(i)*time.Second))
				rec.Status, rec.ResponseStatus, rec.Error, rec.ResponseBody = delivery.StatusFailed, 500, tc.errText, tc.body
				if _, err := s.SaveDelivery(ctx, rec); err != nil {
					t.Fatalf("SaveDelivery: %v", err)
				}
				d, err := s.DeliveryByID(ctx, rec.ID)
				if err != nil {
					t.Fatal(err)
				}
				check := func(field, got, in string, wantLen int, byRunes bool) {
					t.Helper()
					n, whole := len(got), len(in)
					if byRunes {
						n, whole = utf8.RuneCountInString(got), utf8.RuneCountInString(in)
					}
					exact := whole == wantLen
					switch {
					case !utf8.ValidString(got):
						t.Fatalf("%s is not valid UTF-8: %q", field, got)
					case !strings.HasPrefix(in, got):
						t.Fatalf("%s %q is not a prefix of what was saved", field, got)
					case n != wantLen:
						t.Fatalf("%s has %d (runes: %v), want %d", field, n, byRunes, wantLen)
					case exact != (got == in):
						t.Fatalf("%s kept whole = %v, want %v", field, got == in, exact)
					}
				}
				check("error", d.Error, tc.errText, tc.wantErrRunes, true)
				check("response_body", d.ResponseBody, tc.body, tc.wantBodyBytes, false)
			})
		}
	})
}

func TestListDeliveries(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		accA, accB := ids.New(ids.Account), ids.New(ids.Account)
		epA1, epA2, epB := ids.New(ids.Endpoint), ids.New(ids.Endpoint), ids.New(ids.Endpoint)
		ev1, ev2 := store.EventID(ids.New(ids.Payment), 1, t0), store.EventID(ids.New(ids.Refund), 1, t0)
		type seeded struct{ name, id, event, endpoint, account string }
		var all []seeded // in newest-first order once reversed
		specs := []struct {
			name, event, endpoint, account string
			at                             time.Duration
		}{
			{"d1", ev1, epA1, accA, 0},
			{"d2", ev1, epA2, accA, time.Second},
			{"d3", ev1, epB, accB, time.Second},
			{"d4", ev2, epA1, accA, 2 * time.Second},
			{"d5", ev2, epB, accB, 3 * time.Second},
			{"d6", ev1, epA1, accA, 4 * time.Second}, // the second attempt of d1
		}
		for i, sp := range specs {
			rec := deliveryRecord(sp.event, sp.endpoint, sp.account, 1, t0.Add(sp.at))
			rec.ID = fmt.Sprintf("%s%026d", ids.Delivery, i) // ids in creation order
			if _, err := s.SaveDelivery(ctx, rec); err != nil {
				t.Fatalf("SaveDelivery %s: %v", sp.name, err)
			}
			all = append(all, seeded{sp.name, rec.ID, sp.event, sp.endpoint, sp.account})
		}
		slices.Reverse(all)
		pick := func(keep func(d seeded) bool) []string {
			var out []string
			for _, d := range all {
				if keep(d) {
					out = append(out, d.name)
				}
			}
			return out
		}
		names := map[string]string{}
		for _, d := range all {
			names[d.id] = d.name
		}
		cases := []struct {
			name string
			f    store.DeliveryFilter
			want []string
		}{
			{"everything", store.DeliveryFilter{}, []string{"d6", "d5", "d4", "d3", "d2", "d1"}},
			{"account A", store.DeliveryFilter{AccountID: accA}, pick(func(d seeded) bool { return d.account == accA })},
			{"account B", store.DeliveryFilter{AccountID: accB}, []string{"d5", "d3"}},
			{"event 1", store.DeliveryFilter{EventID: ev1}, pick(func(d seeded) bool { return d.event == ev1 })},
			{"endpoint A1", store.DeliveryFilter{EndpointID: epA1}, []string{"d6", "d4", "d1"}},
			{"account A, event 2", store.DeliveryFilter{AccountID: accA, EventID: ev2}, []string{"d4"}},
			{"event 1, endpoint A1", store.DeliveryFilter{EventID: ev1, EndpointID: epA1}, []string{"d6", "d1"}},
			{"account B, endpoint A1", store.DeliveryFilter{AccountID: accB, EndpointID: epA1}, nil},
			{"unknown event", store.DeliveryFilter{EventID: store.EventID(ids.New(ids.Payment), 1, t0)}, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				for _, limit := range []int{1, 2, 100} {
					var got []string
					var after *store.Cursor
					for pages := 0; ; pages++ {
						if pages > len(all)+1 {
							t.Fatalf("runaway paging")
						}
						page, err := s.ListDeliveries(ctx, tc.f, store.Page{Limit: limit, After: after})
						if err != nil {
							t.Fatalf("ListDeliveries: %v", err)
						}
						for _, d := range page {
							got = append(got, names[d.ID])
						}
						if len(page) < limit {
							break
						}
						c := store.DeliveryCursor(page[len(page)-1])
						after = &c
					}
					if !slices.Equal(got, tc.want) {
						t.Fatalf("paged by %d: %v, want %v", limit, got, tc.want)
					}
				}
			})
		}
	})
}
