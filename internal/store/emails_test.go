package store_test

// Tests of the email claims (emails.go): each event's message to an
// account is sent at most once, unless its sending failed.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/emailmessage"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

func emailState(m *ent.EmailMessage) string {
	return fmt.Sprintf("id=%s event=%s account=%s to=%s subject=%q status=%s detail=%q created=%s updated=%s",
		m.ID, m.EventID, m.AccountID, m.Recipient, m.Subject, m.Status, m.Detail,
		m.CreatedAt.UTC().Format(time.RFC3339Nano), m.UpdatedAt.UTC().Format(time.RFC3339Nano))
}

func emailsOf(t *testing.T, s *store.Store, eventID string) []string {
	t.Helper()
	ms, err := s.EmailsOf(context.Background(), eventID)
	if err != nil {
		t.Fatalf("EmailsOf(%s): %v", eventID, err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, emailState(m))
	}
	return out
}

func TestEmailClaims(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		evtAt := t0
		evt := store.EventID(ids.New(ids.Payment), 3, evtAt)
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		claim := func(acct string, at time.Time) store.EmailClaim {
			return store.EmailClaim{EventID: evt, AccountID: acct, Recipient: acct + "@example.com",
				Subject: "Payment succeeded", EventAt: evtAt, At: at}
		}
		mID := store.EmailID(evt, merchant, evtAt)
		cID := store.EmailID(evt, customer, evtAt)
		row := func(id, acct, status, detail string, created, updated time.Time) string {
			return emailState(&ent.EmailMessage{ID: id, EventID: evt, AccountID: acct, Recipient: acct + "@example.com",
				Subject: "Payment succeeded", Status: emailmessage.Status(status), Detail: detail, CreatedAt: created, UpdatedAt: updated})
		}
		t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)

		steps := []struct {
			name string
			do   func() (id string, claimed bool, err error)
			// wantID and wantClaimed are the claim's answer ("" when the
			// step is not a claim).
			wantID      string
			wantClaimed bool
			// want are the event's messages after the step, oldest first.
			want []string
		}{
			{"the merchant's first claim", func() (string, bool, error) { return s.ClaimEmail(ctx, claim(merchant, t1)) },
				mID, true, []string{row(mID, merchant, "sending", "", t1, t1)}},
			{"claimed again, later: not claimed", func() (string, bool, error) { return s.ClaimEmail(ctx, claim(merchant, t2)) },
				mID, false, []string{row(mID, merchant, "sending", "", t1, t1)}},
			{"the customer's, of the same event", func() (string, bool, error) { return s.ClaimEmail(ctx, claim(customer, t2)) },
				cID, true, []string{row(mID, merchant, "sending", "", t1, t1), row(cID, customer, "sending", "", t2, t2)}},
			{"the merchant's released (not accepted)", func() (string, bool, error) { return "", false, s.ReleaseEmail(ctx, mID) },
				"", false, []string{row(cID, customer, "sending", "", t2, t2)}},
			{"the merchant's claimed again after the release", func() (string, bool, error) { return s.ClaimEmail(ctx, claim(merchant, t3)) },
				mID, true, []string{row(cID, customer, "sending", "", t2, t2), row(mID, merchant, "sending", "", t3, t3)}},
			{"the customer's sent", func() (string, bool, error) { return "", false, s.EmailSent(ctx, cID, "queued as 4F2A", t3) },
				"", false, []string{row(cID, customer, "sent", "queued as 4F2A", t2, t3), row(mID, merchant, "sending", "", t3, t3)}},
			{"a sent message is not released", func() (string, bool, error) { return "", false, s.ReleaseEmail(ctx, cID) },
				"", false, []string{row(cID, customer, "sent", "queued as 4F2A", t2, t3), row(mID, merchant, "sending", "", t3, t3)}},
			{"nor claimed again", func() (string, bool, error) { return s.ClaimEmail(ctx, claim(customer, t3.Add(time.Hour))) },
				cID, false, []string{row(cID, customer, "sent", "queued as 4F2A", t2, t3), row(mID, merchant, "sending", "", t3, t3)}},
			{"releasing an unknown message: nothing", func() (string, bool, error) { return "", false, s.ReleaseEmail(ctx, "msg_unknown") },
				"", false, []string{row(cID, customer, "sent", "queued as 4F2A", t2, t3), row(mID, merchant, "sending", "", t3, t3)}},
		}
		for _, st := range steps {
			id, claimed, err := st.do()
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if id != st.wantID || claimed != st.wantClaimed {
				t.Fatalf("%s: answered (%q, %v), want (%q, %v)", st.name, id, claimed, st.wantID, st.wantClaimed)
			}
			got := emailsOf(t, s, evt)
			if strings.Join(got, "\n") != strings.Join(st.want, "\n") {
				t.Fatalf("%s: messages\n%s\nwant\n%s", st.name, strings.Join(got, "\n"), strings.Join(st.want, "\n"))
			}
		}
		if got := emailsOf(t, s, store.EventID(ids.New(ids.Payment), 1, t0)); len(got) != 0 {
			t.Fatalf("EmailsOf an event with no messages = %v", got)
		}
		if err := s.EmailSent(ctx, "msg_unknown", "x", t3); err == nil {
			t.Fatalf("EmailSent of an unknown message succeeded")
		}
	})
}

func TestEmailIDAndLimits(t *testing.T) {
	evt := store.EventID(ids.New(ids.Payment), 1, t0)
	acct := ids.New(ids.Account)
	id := store.EmailID(evt, acct, t0)
	for _, c := range []struct {
		name  string
		other string
		same  bool
	}{
		{"the same inputs", store.EmailID(evt, acct, t0), true},
		{"another account", store.EmailID(evt, ids.New(ids.Account), t0), false},
		{"another event", store.EmailID(store.EventID(ids.New(ids.Payment), 1, t0), acct, t0), false},
	} {
		if (c.other == id) != c.same {
			t.Fatalf("%s: EmailID %s vs %s, equal = %v, want %v", c.name, c.other, id, c.other == id, c.same)
		}
	}
	if !ids.Valid("msg_", id) {
		t.Fatalf("EmailID = %q, want msg_ and a ULID", id)
	}

	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		subject := strings.Repeat("é", 301)
		detail := strings.Repeat("ü", 1001)
		id, claimed, err := s.ClaimEmail(ctx, store.EmailClaim{EventID: evt, AccountID: acct, Recipient: "a@example.com",
			Subject: subject, EventAt: t0, At: t0})
		if err != nil || !claimed {
			t.Fatalf("ClaimEmail = %v, %v", claimed, err)
		}
		if err := s.EmailSent(ctx, id, detail, t0); err != nil {
			t.Fatalf("EmailSent: %v", err)
		}
		ms, err := s.EmailsOf(ctx, evt)
		if err != nil || len(ms) != 1 {
			t.Fatalf("EmailsOf = %v, %v", ms, err)
		}
		if n := utf8.RuneCountInString(ms[0].Subject); n != 300 || !strings.HasPrefix(subject, ms[0].Subject) {
			t.Fatalf("subject has %d runes, want the first 300", n)
		}
		if n := utf8.RuneCountInString(ms[0].Detail); n != 1000 || !strings.HasPrefix(detail, ms[0].Detail) {
			t.Fatalf("detail has %d runes, want the first 1000", n)
		}
	})
}
