package store_test

// Tests of the audit trail (audit.go): its listing, that it is
// append-only, and the records a change writes in its transaction.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/auditevent"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// requestIDs are the request ids of es, which name the rows in these tests.
func requestIDs(es []*ent.AuditEvent) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.RequestID)
	}
	return out
}

func TestListAuditEvents(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const actorA, actorB, targetX, targetY = "acct_a", "acct_b", "acct_x", "acct_y"
		seed := []store.Audit{
			{RequestID: "e1", ActorID: actorA, TargetID: targetX, Type: store.AuditSuspended, At: t0,
				Detail: map[string]string{"reason": "fraud"}},
			{RequestID: "e2", ActorID: actorA, TargetID: targetY, Type: store.AuditReactivated, At: t0.Add(time.Second)},
			// e3 and e4 at the same time: their ids order them.
			{RequestID: "e3", ActorID: actorB, TargetID: targetX, Type: store.AuditSuspended, At: t0.Add(2 * time.Second)},
			{RequestID: "e4", TargetID: targetX, Type: store.AuditLoginLocked, At: t0.Add(2 * time.Second),
				ClientIP: strings.Repeat("9", 70)},
			{RequestID: "e5", ActorID: actorB, TargetID: targetY, Type: store.AuditSuspended, At: t0.Add(3 * time.Second)},
		}
		for _, a := range seed {
			if err := s.RecordAudit(ctx, a); err != nil {
				t.Fatalf("RecordAudit(%s): %v", a.RequestID, err)
			}
		}

		all, err := s.ListAuditEvents(ctx, store.AuditFilter{}, store.Page{Limit: 100})
		if err != nil || len(all) != len(seed) {
			t.Fatalf("ListAuditEvents(all) = %d rows, %v; want %d", len(all), err, len(seed))
		}
		byReq := map[string]*ent.AuditEvent{}
		for _, e := range all {
			byReq[e.RequestID] = e
		}
		for _, a := range seed {
			e := byReq[a.RequestID]
			if e == nil || !strings.HasPrefix(e.ID, "aud_") || e.Type != a.Type || e.ActorID != a.ActorID || e.TargetID != a.TargetID ||
				!e.CreatedAt.Equal(a.At) {
				t.Fatalf("row %s = %v, want %+v", a.RequestID, e, a)
			}
		}
		if d := byReq["e1"].Detail; !maps.Equal(d, map[string]string{"reason": "fraud"}) {
			t.Fatalf("e1 detail = %v", d)
		}
		if ip := byReq["e4"].ClientIP; ip != strings.Repeat("9", 64) {
			t.Fatalf("e4 client_ip = %q, want it cut to 64 characters", ip)
		}

		// Newest first: created_at, then id, descending.
		order := slices.Clone(seed)
		slices.SortFunc(order, func(x, y store.Audit) int {
			if c := y.At.Compare(x.At); c != 0 {
				return c
			}
			return strings.Compare(byReq[y.RequestID].ID, byReq[x.RequestID].ID)
		})
		var want []string
		for _, a := range order {
			want = append(want, a.RequestID)
		}
		if got := requestIDs(all); !slices.Equal(got, want) {
			t.Fatalf("order %v, want %v", got, want)
		}
		for i := 1; i < len(all); i++ {
			if !olderThan(store.AuditCursor(all[i]), store.AuditCursor(all[i-1])) {
				t.Fatalf("row %d is not older than row %d: %v", i, i-1, requestIDs(all))
			}
		}
		// wantOf is want restricted to the rows keep selects, in order.
		wantOf := func(keep func(a store.Audit) bool) []string {
			out := []string{}
			for _, a := range order {
				if keep(a) {
					out = append(out, a.RequestID)
				}
			}
			return out
		}

		after, before := t0.Add(time.Second), t0.Add(3*time.Second)
		for _, tt := range []struct {
			name string
			f    store.AuditFilter
			keep func(a store.Audit) bool
		}{
			{"actor", store.AuditFilter{ActorID: actorA}, func(a store.Audit) bool { return a.ActorID == actorA }},
			{"target", store.AuditFilter{TargetID: targetX}, func(a store.Audit) bool { return a.TargetID == targetX }},
			{"type", store.AuditFilter{Type: store.AuditSuspended}, func(a store.Audit) bool { return a.Type == store.AuditSuspended }},
			{"actor and type", store.AuditFilter{ActorID: actorB, Type: store.AuditSuspended},
				func(a store.Audit) bool { return a.ActorID == actorB && a.Type == store.AuditSuspended }},
			{"target and type", store.AuditFilter{TargetID: targetY, Type: store.AuditSuspended},
				func(a store.Audit) bool { return a.TargetID == targetY && a.Type == store.AuditSuspended }},
			{"created in [after, before)", store.AuditFilter{CreatedAfter: &after, CreatedBefore: &before},
				func(a store.Audit) bool { return !a.At.Before(after) && a.At.Before(before) }},
			{"created after", store.AuditFilter{CreatedAfter: &before}, func(a store.Audit) bool { return !a.At.Before(before) }},
			{"created before, of a target", store.AuditFilter{TargetID: targetX, CreatedBefore: &after},
				func(a store.Audit) bool { return a.TargetID == targetX && a.At.Before(after) }},
			{"nobody's", store.AuditFilter{ActorID: "acct_nobody"}, func(store.Audit) bool { return false }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ListAuditEvents(ctx, tt.f, store.Page{Limit: 100})
				if err != nil {
					t.Fatalf("ListAuditEvents: %v", err)
				}
				if w := wantOf(tt.keep); !slices.Equal(requestIDs(got), w) {
					t.Fatalf("rows %v, want %v", requestIDs(got), w)
				}
			})
		}

		// Pages of two: the page boundary falls between e3 and e4, which
		// share their created_at.
		var pages [][]string
		var cursor *store.Cursor
		for range 4 {
			page, err := s.ListAuditEvents(ctx, store.AuditFilter{}, store.Page{Limit: 2, After: cursor})
			if err != nil {
				t.Fatalf("page %d: %v", len(pages), err)
			}
			pages = append(pages, requestIDs(page))
			if len(page) == 0 {
				break
			}
			c := store.AuditCursor(page[len(page)-1])
			cursor = &c
		}
		if got, w := fmt.Sprint(pages), fmt.Sprint([][]string{want[:2], want[2:4], want[4:], {}}); got != w {
			t.Fatalf("pages %s, want %s", got, w)
		}
		// And a filtered listing pages the same way.
		first, err := s.ListAuditEvents(ctx, store.AuditFilter{Type: store.AuditSuspended}, store.Page{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		c := store.AuditCursor(first[len(first)-1])
		second, err := s.ListAuditEvents(ctx, store.AuditFilter{Type: store.AuditSuspended}, store.Page{Limit: 2, After: &c})
		if err != nil {
			t.Fatal(err)
		}
		suspended := wantOf(func(a store.Audit) bool { return a.Type == store.AuditSuspended })
		if got := append(requestIDs(first), requestIDs(second)...); !slices.Equal(got, suspended) || len(first) != 2 {
			t.Fatalf("suspensions in pages of two: %v then %v, want %v", requestIDs(first), requestIDs(second), suspended)
		}

		_, err = s.ListAuditEvents(ctx, store.AuditFilter{}, store.Page{})
		wantErr(t, err, errs.ErrInvalidArgument, "")
		_, err = s.ListAuditEvents(ctx, store.AuditFilter{CreatedAfter: &before, CreatedBefore: &after}, store.Page{Limit: 10})
		wantErr(t, err, errs.ErrInvalidArgument, "")
	})
}

func TestAuditEventsAreAppendOnly(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.RecordAudit(ctx, store.Audit{Type: store.AuditLoginLocked, TargetID: "acct_x", RequestID: "kept", At: t0}); err != nil {
			t.Fatal(err)
		}
		rows := s.Client.AuditEvent.Query().AllX(ctx)
		if len(rows) != 1 {
			t.Fatalf("%d rows, want 1", len(rows))
		}
		id, before := rows[0].ID, rows[0].String()
		tamper := func(u *sql.UpdateBuilder) { u.Set(auditevent.FieldType, "tampered") }

		for name, err := range map[string]error{
			"update one":           s.Client.AuditEvent.UpdateOneID(id).Modify(tamper).Exec(ctx),
			"update one, no field": s.Client.AuditEvent.UpdateOneID(id).Exec(ctx),
			"update many":          s.Client.AuditEvent.Update().Where(auditevent.ID(id)).Modify(tamper).Exec(ctx),
			"delete all":           func() error { _, err := s.Client.AuditEvent.Delete().Exec(ctx); return err }(),
			"delete one":           s.Client.AuditEvent.DeleteOneID(id).Exec(ctx),
		} {
			if err == nil || !strings.Contains(err.Error(), "AuditEvent rows are immutable") {
				t.Errorf("%s: error %v, want the trail's append-only refusal", name, err)
			}
		}
		// In a transaction too.
		tx, err := s.Client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.AuditEvent.Delete().Exec(ctx); err == nil {
			t.Errorf("delete in a transaction succeeded")
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}

		after := s.Client.AuditEvent.Query().AllX(ctx)
		if len(after) != 1 || after[0].String() != before {
			t.Fatalf("rows after the attempts %v, want %s", after, before)
		}
	})
}

// The records a change writes (here a registration's) get the new
// account's id; they are written with it or not at all.
func TestCreateAccountWritesItsRecords(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc, err := s.CreateAccount(ctx, store.NewAccount{
			Email: "New.User@Example.com", PasswordHash: "h", Role: account.RoleMerchant,
			Records: store.Records{
				Audits: []store.Audit{{Type: store.AuditRegistered, ClientIP: "192.0.2.1", RequestID: "req-register", At: t0}},
				Notices: []store.Notice{{Kind: accountnotice.KindVerifyEmail, Recipient: "New.User@Example.com", At: t0,
					Data: map[string]string{"request_id": "req-register"}}},
			},
		})
		if err != nil {
			t.Fatalf("CreateAccount: %v", err)
		}
		if acc.EmailVerified {
			t.Fatal("a registered account's email is verified")
		}
		es, err := s.ListAuditEvents(ctx, store.AuditFilter{TargetID: acc.ID}, store.Page{Limit: 10})
		if err != nil || len(es) != 1 {
			t.Fatalf("audit rows of the account %v, %v; want one", es, err)
		}
		if e := es[0]; e.Type != store.AuditRegistered || e.ClientIP != "192.0.2.1" || e.RequestID != "req-register" || !e.CreatedAt.Equal(t0) {
			t.Fatalf("registration audit row %v", e)
		}
		ns := s.Client.AccountNotice.Query().Where(accountnotice.AccountID(acc.ID)).AllX(ctx)
		if len(ns) != 1 {
			t.Fatalf("notices of the account %v, want one", ns)
		}
		if n := ns[0]; n.Kind != accountnotice.KindVerifyEmail || n.Recipient != "new.user@example.com" ||
			!maps.Equal(n.Data, map[string]string{"request_id": "req-register"}) || !n.CreatedAt.Equal(t0) || n.DispatchedAt != nil {
			t.Fatalf("verification notice %v", n)
		}

		// An account an admin vouches for is verified from the start.
		admin, err := s.CreateAccount(ctx, store.NewAccount{Email: "admin@example.com", PasswordHash: "h", Role: account.RoleAdmin, EmailVerified: true})
		if err != nil || !admin.EmailVerified || !s.Client.Account.GetX(ctx, admin.ID).EmailVerified {
			t.Fatalf("CreateAccount(verified) = %v, %v", admin, err)
		}

		// A record that cannot be written takes the account with it.
		_, err = s.CreateAccount(ctx, store.NewAccount{
			Email: "rolled.back@example.com", PasswordHash: "h", Role: account.RoleMerchant,
			Records: store.Records{
				Audits:  []store.Audit{{Type: store.AuditRegistered, At: t0}},
				Notices: []store.Notice{{Kind: accountnotice.KindVerifyEmail, Recipient: "", At: t0}},
			},
		})
		if err == nil {
			t.Fatal("CreateAccount with a notice to nobody succeeded")
		}
		_, err = s.AccountByEmail(ctx, "rolled.back@example.com")
		wantErr(t, err, errs.ErrNotFound, "account not found")
		if n := s.Client.AuditEvent.Query().CountX(ctx); n != 1 {
			t.Fatalf("%d audit rows, want only the first registration's", n)
		}
	})
}

// A row with an id of its own is recorded once: a retry of whatever
// records it (a relay handling a notice again) leaves the first row.
func TestRecordAuditWithAnIDIsOnceOnly(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		id := store.AuditID("ntc_subject", t0)
		if id != store.AuditID("ntc_subject", t0) || id == store.AuditID("ntc_other", t0) || !strings.HasPrefix(id, "aud_") {
			t.Fatalf("AuditID is not a stable aud_ id of its subject: %s", id)
		}
		first := store.Audit{ID: id, Type: store.AuditPasswordResetAsked, ClientIP: "192.0.2.1", RequestID: "first", At: t0}
		if err := s.RecordAudit(ctx, first); err != nil {
			t.Fatalf("RecordAudit: %v", err)
		}
		again := first
		again.RequestID, again.At = "again", t0.Add(time.Minute)
		if err := s.RecordAudit(ctx, again); err != nil {
			t.Fatalf("RecordAudit again: %v", err)
		}
		rows := s.Client.AuditEvent.Query().AllX(ctx)
		if len(rows) != 1 || rows[0].ID != id || rows[0].RequestID != "first" || !rows[0].CreatedAt.Equal(t0) {
			t.Fatalf("rows %v, want the first one only", rows)
		}
		// Without an id, each call is a row.
		for range 2 {
			if err := s.RecordAudit(ctx, store.Audit{Type: store.AuditLoginLocked, At: t0}); err != nil {
				t.Fatal(err)
			}
		}
		if n := s.Client.AuditEvent.Query().CountX(ctx); n != 3 {
			t.Fatalf("%d rows, want 3", n)
		}
	})
}
