package store_test

// Tests of the account notices (notices.go), the outbox of account
// emails, and of their purge and that of the mailed tokens (purge.go).

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// recipients are the recipients of ns, which name the notices in these tests.
func recipients(ns []*ent.AccountNotice) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.Recipient)
	}
	return out
}

// noticeTo is the notice to recipient.
func noticeTo(t *testing.T, s *store.Store, recipient string) *ent.AccountNotice {
	t.Helper()
	n, err := s.Client.AccountNotice.Query().Where(accountnotice.Recipient(recipient)).Only(context.Background())
	if err != nil {
		t.Fatalf("notice to %s: %v", recipient, err)
	}
	return n
}

func TestNotices(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "notices@example.com")
		for _, n := range []store.Notice{
			// A reset asked for an email: no account id.
			{Kind: accountnotice.KindPasswordReset, Recipient: "Third@Example.com", At: t0.Add(2 * time.Second),
				Data: map[string]string{"client_ip": "192.0.2.9", "request_id": "req-1"}},
			{Kind: accountnotice.KindVerifyEmail, AccountID: acc.ID, Recipient: "first@example.com", At: t0},
			// Two at the same time: their ids order them.
			{Kind: accountnotice.KindSuspended, AccountID: acc.ID, Recipient: "second-a@example.com", At: t0.Add(time.Second)},
			{Kind: accountnotice.KindClosed, AccountID: acc.ID, Recipient: "second-b@example.com", At: t0.Add(time.Second)},
		} {
			if err := s.AddNotice(ctx, n); err != nil {
				t.Fatalf("AddNotice(%s): %v", n.Recipient, err)
			}
		}
		third := noticeTo(t, s, "third@example.com")
		if !strings.HasPrefix(third.ID, "ntc_") || third.Kind != accountnotice.KindPasswordReset || third.AccountID != "" ||
			!maps.Equal(third.Data, map[string]string{"client_ip": "192.0.2.9", "request_id": "req-1"}) ||
			!third.CreatedAt.Equal(t0.Add(2*time.Second)) || third.DispatchedAt != nil {
			t.Fatalf("stored notice %v", third)
		}
		if got, err := s.NoticeByID(ctx, third.ID); err != nil || got.String() != third.String() {
			t.Fatalf("NoticeByID = %v, %v; want %v", got, err, third)
		}
		_, err := s.NoticeByID(ctx, "ntc_unknown")
		wantErr(t, err, errs.ErrNotFound, "notice not found")

		// Oldest first, then by id.
		a, b := noticeTo(t, s, "second-a@example.com"), noticeTo(t, s, "second-b@example.com")
		tied := []string{a.Recipient, b.Recipient}
		if b.ID < a.ID {
			tied = []string{b.Recipient, a.Recipient}
		}
		want := append(append([]string{"first@example.com"}, tied...), "third@example.com")
		all, err := s.UndispatchedNotices(ctx, 10)
		if err != nil || !slices.Equal(recipients(all), want) {
			t.Fatalf("UndispatchedNotices(10) = %v, %v; want %v", recipients(all), err, want)
		}
		some, err := s.UndispatchedNotices(ctx, 2)
		if err != nil || !slices.Equal(recipients(some), want[:2]) {
			t.Fatalf("UndispatchedNotices(2) = %v, %v; want %v", recipients(some), err, want[:2])
		}

		// A dispatched notice is no longer handed out.
		first := all[0]
		at := t0.Add(time.Minute)
		if err := s.MarkNoticeDispatched(ctx, first.ID, at); err != nil {
			t.Fatalf("MarkNoticeDispatched: %v", err)
		}
		got, err := s.NoticeByID(ctx, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantTime(t, "dispatched_at", got.DispatchedAt, at)
		rest, err := s.UndispatchedNotices(ctx, 10)
		if err != nil || !slices.Equal(recipients(rest), want[1:]) {
			t.Fatalf("UndispatchedNotices after a dispatch = %v, %v; want %v", recipients(rest), err, want[1:])
		}
		if err := s.MarkNoticeDispatched(ctx, "ntc_unknown", at); err == nil {
			t.Fatal("MarkNoticeDispatched of an unknown notice succeeded")
		}

		// A notice needs a recipient and a known kind.
		for _, bad := range []store.Notice{
			{Kind: accountnotice.KindClosed, AccountID: acc.ID, At: t0},
			{Kind: "welcome", AccountID: acc.ID, Recipient: "x@example.com", At: t0},
		} {
			if err := s.AddNotice(ctx, bad); err == nil {
				t.Fatalf("AddNotice(%+v) succeeded", bad)
			}
		}
		if n := s.Client.AccountNotice.Query().CountX(ctx); n != 4 {
			t.Fatalf("%d notices, want 4", n)
		}
	})
}

func TestPurgeExpiredAccountNoticesAndTokens(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := t0.Add(90 * 24 * time.Hour)
		day := 24 * time.Hour

		// Notices: deleted once dispatched 30 days ago or more; never
		// while not dispatched.
		dispatched := map[string]time.Time{
			"dispatched-31d@example.com":    now.Add(-31 * day),
			"dispatched-30d@example.com":    now.Add(-30 * day),
			"dispatched-29d23h@example.com": now.Add(-30*day + time.Hour),
			"dispatched-now@example.com":    now,
		}
		for to, at := range dispatched {
			if err := s.AddNotice(ctx, store.Notice{Kind: accountnotice.KindPasswordChanged, Recipient: to, At: at.Add(-time.Minute)}); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkNoticeDispatched(ctx, noticeTo(t, s, to).ID, at); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddNotice(ctx, store.Notice{Kind: accountnotice.KindVerifyEmail, Recipient: "waiting@example.com", At: now.Add(-80 * day)}); err != nil {
			t.Fatal(err)
		}

		// Tokens: deleted once expired for a day or more, used or not
		// (superseded too: issued in this order, each supersedes the one
		// before).
		acc := mustAccount(t, s, "tokens@example.com")
		for _, tk := range []struct {
			token string
			exp   time.Time
		}{
			{"expired-2d", now.Add(-2 * day)},
			{"expired-1d", now.Add(-day)},
			{"expired-23h", now.Add(-23 * time.Hour)},
			{"live", now.Add(time.Hour)},
		} {
			err := s.IssueAccountToken(ctx, store.NewAccountToken{AccountID: acc.ID, Purpose: accounttoken.PurposeResetPassword,
				Email: acc.Email, Hash: hash(tk.token), ExpiresAt: tk.exp, At: tk.exp.Add(-tokTTL)}, store.Records{})
			if err != nil {
				t.Fatalf("IssueAccountToken(%s): %v", tk.token, err)
			}
		}
		// One used before it expired.
		issueToken(t, s, acc.ID, accounttoken.PurposeVerifyEmail, acc.Email, "used-expired-3d", now.Add(-3*day-tokTTL))
		if _, err := s.VerifyEmail(ctx, hash("used-expired-3d"), now.Add(-3*day-time.Minute), store.Audit{At: now}); err != nil {
			t.Fatal(err)
		}

		got, err := s.PurgeExpired(ctx, now)
		if err != nil {
			t.Fatalf("PurgeExpired: %v", err)
		}
		if want := (store.PurgeResult{AccountNotices: 2, AccountTokens: 3}); got != want {
			t.Fatalf("PurgeExpired = %+v, want %+v", got, want)
		}
		var left []string
		for _, n := range s.Client.AccountNotice.Query().AllX(ctx) {
			left = append(left, n.Recipient)
		}
		slices.Sort(left)
		if want := []string{"dispatched-29d23h@example.com", "dispatched-now@example.com", "waiting@example.com"}; !slices.Equal(left, want) {
			t.Fatalf("notices left %v, want %v", left, want)
		}
		leftTokens := map[string]bool{}
		for _, r := range s.Client.AccountToken.Query().AllX(ctx) {
			leftTokens[r.TokenHash] = true
		}
		for _, token := range []string{"expired-2d", "expired-1d", "expired-23h", "live", "used-expired-3d"} {
			if want := token == "expired-23h" || token == "live"; leftTokens[hash(token)] != want {
				t.Errorf("token %s left = %v, want %v", token, leftTokens[hash(token)], want)
			}
		}
		if len(leftTokens) != 2 {
			t.Errorf("%d tokens left, want 2", len(leftTokens))
		}

		again, err := s.PurgeExpired(ctx, now)
		if err != nil || again != (store.PurgeResult{}) {
			t.Fatalf("second PurgeExpired = %+v, %v; want nothing", again, err)
		}
	})
}
