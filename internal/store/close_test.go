package store_test

// Tests of closing accounts (close.go): refused while money is moving,
// final, freeing the email at once, and anonymized after the retention
// period without touching the account's business.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/ent/apikey"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/emailmessage"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refreshtoken"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

const closeRefused = "the account cannot be closed while money is moving: "

// closable is an account with what closing revokes: a session, an API
// key and a mailed token.
type closable struct {
	acc                  *ent.Account
	session, key, mailed string
}

func newClosable(t *testing.T, s *store.Store, email string) closable {
	t.Helper()
	ctx := context.Background()
	acc := mustAccount(t, s, email)
	c := closable{acc: acc, session: "session/" + email, key: "key/" + email, mailed: "mailed/" + email}
	if _, err := s.CreateRefreshToken(ctx, acc.ID, ids.New(ids.Family), hash(c.session), t0.Add(refreshTTL), t0, store.SessionClient{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAPIKey(ctx, acc.ID, "server", "sk_test_"+acc.ID[len(acc.ID)-6:], hash(c.key), t0, store.Audit{At: t0}); err != nil {
		t.Fatal(err)
	}
	issueToken(t, s, acc.ID, accounttoken.PurposeResetPassword, acc.Email, c.mailed, t0)
	return c
}

// state is everything closing changes about c, as text.
func (c closable) state(t *testing.T, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	rt := s.Client.RefreshToken.Query().Where(refreshtoken.TokenHash(hash(c.session))).OnlyX(ctx)
	k := s.Client.APIKey.Query().Where(apikey.KeyHash(hash(c.key))).OnlyX(ctx)
	closedAudits, err := s.ListAuditEvents(ctx, store.AuditFilter{TargetID: c.acc.ID, Type: store.AuditClosed}, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	notices := s.Client.AccountNotice.Query().Where(accountnotice.AccountID(c.acc.ID)).CountX(ctx)
	return fmt.Sprintf("%v\nsession revoked %v\nkey revoked %v\ntoken %v\n%d closed audits, %d notices",
		s.Client.Account.GetX(ctx, c.acc.ID), rt.RevokedAt, k.RevokedAt, tokenRow(t, s, c.mailed), len(closedAudits), notices)
}

// wantClosed checks c is closed at at with everything revoked.
func (c closable) wantClosed(t *testing.T, s *store.Store, at time.Time) {
	t.Helper()
	ctx := context.Background()
	a := s.Client.Account.GetX(ctx, c.acc.ID)
	if a.Status != account.StatusClosed || a.Email != store.ClosedEmail(c.acc.ID) || a.ClosedEmail != c.acc.Email {
		t.Fatalf("account after closing %v", a)
	}
	wantTime(t, "closed_at", a.ClosedAt, at)
	wantTime(t, "session revoked_at", s.Client.RefreshToken.Query().Where(refreshtoken.TokenHash(hash(c.session))).OnlyX(ctx).RevokedAt, at)
	wantTime(t, "API key revoked_at", s.Client.APIKey.Query().Where(apikey.KeyHash(hash(c.key))).OnlyX(ctx).RevokedAt, at)
	wantTime(t, "mailed token superseded_at", tokenRow(t, s, c.mailed).SupersededAt, at)
}

func TestCloseAccountRefusedWhileMoneyIsMoving(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i, tt := range []struct {
			name, kind string
			// block makes something of merchant and customer that blocks
			// their closure and returns its id, and a function that
			// settles it (nil: the test does not settle it).
			block func(t *testing.T, merchant, customer string, at time.Time) (string, func())
		}{
			{"open dispute", "open dispute", func(t *testing.T, m, c string, at time.Time) (string, func()) {
				p := succeededPayment(t, s, m, c, "USD", 1000, at)
				d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 100, at.Add(time.Second)), c)
				if d.Status != dispute.StatusNeedsResponse {
					t.Fatalf("new dispute is %s", d.Status)
				}
				return d.ID, nil
			}},
			{"authorized payment", "uncaptured authorization", func(t *testing.T, m, c string, at time.Time) (string, func()) {
				rec := newPayment(m, c, at)
				rec.CaptureMethod, rec.GatewayReference = payment.CaptureMethodManual, "pi_"+rec.ID
				rec.Status, rec.AmountCapturable = payment.StatusRequiresCapture, rec.Amount
				mustSave(t, s, rec, nil)
				return rec.ID, func() {
					rec.Version, rec.UpdatedAt = 2, at.Add(time.Minute)
					rec.Status, rec.AmountCapturable = payment.StatusCanceled, 0
					mustSave(t, s, rec, nil)
				}
			}},
			{"processing payment", "payment in progress", func(t *testing.T, m, c string, at time.Time) (string, func()) {
				rec := newPayment(m, c, at)
				mustSave(t, s, rec, nil)
				return rec.ID, func() {
					rec.Version, rec.UpdatedAt = 2, at.Add(time.Minute)
					rec.Status, rec.FailureCode = payment.StatusFailed, "card_declined"
					mustSave(t, s, rec, nil)
				}
			}},
			{"payment waiting for the customer", "payment in progress", func(t *testing.T, m, c string, at time.Time) (string, func()) {
				rec := newPayment(m, c, at)
				rec.Status, rec.NextActionType, rec.NextActionURL = payment.StatusRequiresAction, "redirect_to_url", "https://acs.example/3ds"
				mustSave(t, s, rec, nil)
				return rec.ID, nil
			}},
			{"pending refund", "refund in flight", func(t *testing.T, m, c string, at time.Time) (string, func()) {
				p := succeededPayment(t, s, m, c, "USD", 1000, at)
				r, _ := mustCreateRefund(t, s, newRefund(p, 400, at.Add(time.Second)))
				if r.Status != refund.StatusPending || r.CustomerID != c {
					t.Fatalf("new refund %v", r)
				}
				return r.ID, nil
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				at := t0.Add(time.Duration(i) * time.Hour)
				m := newClosable(t, s, fmt.Sprintf("merchant%d@example.com", i))
				c := newClosable(t, s, fmt.Sprintf("customer%d@example.com", i))
				id, settle := tt.block(t, m.acc.ID, c.acc.ID, at)
				want := closeRefused + "1 " + tt.kind + " (" + id + ")"
				for _, side := range []closable{m, c} {
					before := side.state(t, s)
					_, err := s.CloseAccount(ctx, side.acc.ID, at.Add(2*time.Minute), store.Audit{ActorID: side.acc.ID, At: at})
					wantErr(t, err, errs.ErrFailedPrecondition, want)
					if after := side.state(t, s); after != before {
						t.Fatalf("a refused closure changed the account:\nbefore %s\nafter  %s", before, after)
					}
					wantTokenLive(t, s, side.mailed)
				}
				if settle == nil {
					return
				}
				// Once settled, nothing blocks either side.
				settle()
				for _, side := range []closable{m, c} {
					closeAt := at.Add(3 * time.Minute)
					if _, err := s.CloseAccount(ctx, side.acc.ID, closeAt, store.Audit{At: closeAt}); err != nil {
						t.Fatalf("CloseAccount(%s) once the payment is final: %v", side.acc.Email, err)
					}
					side.wantClosed(t, s, closeAt)
				}
			})
		}
	})
}

// A refusal names at most three blockers of a kind, in id order, and
// every kind.
func TestCloseAccountRefusalNamesTheBlockers(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := mustAccount(t, s, "busy@example.com")
		var pending []string
		for i := range 4 {
			rec := newPayment(m.ID, "", t0.Add(time.Duration(i)*time.Second))
			mustSave(t, s, rec, nil)
			pending = append(pending, rec.ID)
		}
		auth := newPayment(m.ID, "", t0.Add(time.Minute))
		auth.Status, auth.AmountCapturable, auth.CaptureMethod = payment.StatusRequiresCapture, auth.Amount, payment.CaptureMethodManual
		mustSave(t, s, auth, nil)
		slices.Sort(pending)

		_, err := s.CloseAccount(ctx, m.ID, t0.Add(time.Hour), store.Audit{At: t0})
		wantErr(t, err, errs.ErrFailedPrecondition, closeRefused+
			"1 uncaptured authorization ("+auth.ID+"); 4 payments in progress ("+strings.Join(pending[:3], ", ")+", ...)")
		if a := s.Client.Account.GetX(ctx, m.ID); a.Status != account.StatusActive || a.Email != "busy@example.com" {
			t.Fatalf("account after the refusal %v", a)
		}
	})
}

func TestCloseAccount(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newClosable(t, s, "Closing@Example.com")
		bystander := newClosable(t, s, "bystander@example.com")
		// A second session, a mailed token used already, a pending email
		// change and finished business do not stand in the way.
		if _, err := s.CreateRefreshToken(ctx, c.acc.ID, ids.New(ids.Family), hash("second"), t0.Add(refreshTTL), t0, store.SessionClient{}); err != nil {
			t.Fatal(err)
		}
		issueToken(t, s, c.acc.ID, accounttoken.PurposeVerifyEmail, c.acc.Email, "used", t0)
		if _, err := s.VerifyEmail(ctx, hash("used"), t0.Add(time.Second), store.Audit{At: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateAccount(ctx, c.acc.ID, store.AccountUpdate{PendingEmail: ptr("next@example.com")}, t0); err != nil {
			t.Fatal(err)
		}
		p := succeededPayment(t, s, c.acc.ID, bystander.acc.ID, "USD", 1000, t0)
		r, _ := mustCreateRefund(t, s, newRefund(p, 300, t0.Add(time.Second)))
		mustSaveRefund(t, s, next(store.RefundRecordOf(r), refund.StatusFailed, func(r *store.RefundRecord) { r.FailureReason = "declined" }), nil)
		bystanderBefore := bystander.state(t, s)

		now := t0.Add(time.Hour)
		audit := store.Audit{ActorID: c.acc.ID, ClientIP: "198.51.100.4", RequestID: "req-close", At: now}
		got, err := s.CloseAccount(ctx, c.acc.ID, now, audit)
		if err != nil {
			t.Fatalf("CloseAccount: %v", err)
		}
		if got.Status != account.StatusClosed || got.Email != store.ClosedEmail(c.acc.ID) || got.ClosedEmail != "closing@example.com" ||
			got.PendingEmail != "" || !got.UpdatedAt.Equal(now) || got.ClosedAt == nil || !got.ClosedAt.Equal(now) {
			t.Fatalf("closed account %v", got)
		}
		if !strings.HasSuffix(got.Email, ".invalid") {
			t.Fatalf("placeholder email %q can receive mail", got.Email)
		}
		c.wantClosed(t, s, now)
		wantTime(t, "second session revoked_at",
			s.Client.RefreshToken.Query().Where(refreshtoken.TokenHash(hash("second"))).OnlyX(ctx).RevokedAt, now)
		used := tokenRow(t, s, "used")
		wantTime(t, "used token used_at", used.UsedAt, t0.Add(time.Second))
		wantTime(t, "used token superseded_at", used.SupersededAt, time.Time{})
		if after := bystander.state(t, s); after != bystanderBefore {
			t.Fatalf("closing an account changed another:\nbefore %s\nafter  %s", bystanderBefore, after)
		}

		es, err := s.ListAuditEvents(ctx, store.AuditFilter{TargetID: c.acc.ID, Type: store.AuditClosed}, store.Page{Limit: 10})
		if err != nil || len(es) != 1 {
			t.Fatalf("closure audit rows %v, %v; want one", es, err)
		}
		if e := es[0]; e.ActorID != c.acc.ID || e.ClientIP != "198.51.100.4" || e.RequestID != "req-close" || !e.CreatedAt.Equal(now) {
			t.Fatalf("closure audit row %v", e)
		}
		ns := s.Client.AccountNotice.Query().Where(accountnotice.AccountID(c.acc.ID), accountnotice.KindEQ(accountnotice.KindClosed)).AllX(ctx)
		if len(ns) != 1 || ns[0].Recipient != "closing@example.com" || !ns[0].CreatedAt.Equal(now) {
			t.Fatalf("closure notices %v, want one to the old address", ns)
		}

		// The address is free at once; the closed account is not found by it.
		_, err = s.AccountByEmail(ctx, "closing@example.com")
		wantErr(t, err, errs.ErrNotFound, "account not found")
		again, err := s.CreateAccount(ctx, store.NewAccount{Email: "CLOSING@example.com", PasswordHash: "h", Role: account.RoleMerchant})
		if err != nil || again.ID == c.acc.ID || again.Status != account.StatusActive {
			t.Fatalf("registering the closed account's email = %v, %v", again, err)
		}

		// Closed is final.
		_, err = s.CloseAccount(ctx, c.acc.ID, now.Add(time.Hour), audit)
		wantErr(t, err, errs.ErrFailedPrecondition, "account "+c.acc.ID+" is closed")
		_, err = s.ReactivateAccount(ctx, c.acc.ID, now.Add(time.Hour), audit)
		wantErr(t, err, errs.ErrFailedPrecondition, "")
		_, err = s.SuspendAccount(ctx, c.acc.ID, store.Suspension{Reason: "other", Audit: store.Audit{At: now.Add(time.Hour)}})
		wantErr(t, err, errs.ErrFailedPrecondition, "")
		if a := s.Client.Account.GetX(ctx, c.acc.ID); a.Status != account.StatusClosed || !a.UpdatedAt.Equal(now) {
			t.Fatalf("account after the refused changes %v", a)
		}
		if es, _ := s.ListAuditEvents(ctx, store.AuditFilter{TargetID: c.acc.ID, Type: store.AuditClosed}, store.Page{Limit: 10}); len(es) != 1 {
			t.Fatalf("%d closure audit rows after closing again, want 1", len(es))
		}
		_, err = s.CloseAccount(ctx, ids.New(ids.Account), now, audit)
		wantErr(t, err, errs.ErrNotFound, "account not found")

		// Nor is the last active admin, while another admin may close.
		admin, err := s.CreateAccount(ctx, store.NewAccount{Email: "admin1@example.com", PasswordHash: "h", Role: account.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.CloseAccount(ctx, admin.ID, now, audit)
		wantErr(t, err, errs.ErrFailedPrecondition, admin.ID+" is the last active admin: make another admin first")
		if a := s.Client.Account.GetX(ctx, admin.ID); a.Status != account.StatusActive {
			t.Fatalf("last admin after the refusal %v", a)
		}
		admin2, err := s.CreateAccount(ctx, store.NewAccount{Email: "admin2@example.com", PasswordHash: "h", Role: account.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CloseAccount(ctx, admin.ID, now, audit); err != nil {
			t.Fatalf("CloseAccount of an admin with another active: %v", err)
		}
		_, err = s.CloseAccount(ctx, admin2.ID, now, audit)
		wantErr(t, err, errs.ErrFailedPrecondition, admin2.ID+" is the last active admin: make another admin first")

		// A suspended account is not closed either.
		sus := mustAccount(t, s, "suspended-close@example.com")
		if _, err := s.SuspendAccount(ctx, sus.ID, store.Suspension{Reason: "fraud", Audit: store.Audit{At: now}}); err != nil {
			t.Fatal(err)
		}
		_, err = s.CloseAccount(ctx, sus.ID, now, audit)
		wantErr(t, err, errs.ErrFailedPrecondition, "account "+sus.ID+" is disabled")
	})
}

func TestAnonymizeClosedAccounts(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mk := func(email string) *ent.Account {
			a, err := s.CreateAccount(ctx, store.NewAccount{Email: email, PasswordHash: "h", Role: account.RoleMerchant,
				DisplayName: "Name of " + email, BusinessName: "Business of " + email})
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		closeAt := func(a *ent.Account, at time.Time) {
			if _, err := s.CloseAccount(ctx, a.ID, at, store.Audit{At: at}); err != nil {
				t.Fatalf("CloseAccount(%s): %v", a.Email, err)
			}
		}
		claim := func(a *ent.Account) string {
			evt := store.EventID(ids.New(ids.Payment), 3, t0)
			id, ok, err := s.ClaimEmail(ctx, store.EmailClaim{EventID: evt, AccountID: a.ID, Recipient: a.Email,
				Subject: "Payment succeeded", EventAt: t0, At: t0})
			if err != nil || !ok {
				t.Fatalf("ClaimEmail(%s) = %v, %v", a.Email, ok, err)
			}
			return id
		}
		cutoff := t0.Add(2 * time.Hour)
		early, atCutoff, late, active := mk("early@example.com"), mk("cutoff@example.com"), mk("late@example.com"), mk("active@example.com")
		mails := map[string]string{}
		for _, a := range []*ent.Account{early, atCutoff, late, active} {
			mails[a.ID] = claim(a)
		}
		p := succeededPayment(t, s, early.ID, active.ID, "USD", 1000, t0)
		paymentBefore := s.Client.Payment.GetX(ctx, p.ID).String()
		for _, a := range []*ent.Account{early, late} {
			issueToken(t, s, a.ID, accounttoken.PurposeResetPassword, a.Email, "token/"+a.Email, t0)
		}
		closeAt(early, t0.Add(time.Hour))
		closeAt(atCutoff, cutoff)
		closeAt(late, cutoff.Add(time.Microsecond))
		// The relay sent the closure letters of early and late; that of
		// atCutoff is still owed.
		for _, a := range []*ent.Account{early, late} {
			n := s.Client.AccountNotice.Query().Where(accountnotice.AccountID(a.ID), accountnotice.KindEQ(accountnotice.KindClosed)).OnlyX(ctx)
			if err := s.MarkNoticeDispatched(ctx, n.ID, cutoff.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		noticesOf := func(a *ent.Account) int {
			return s.Client.AccountNotice.Query().Where(accountnotice.AccountID(a.ID)).CountX(ctx)
		}
		tokensOf := func(a *ent.Account) int {
			return s.Client.AccountToken.Query().Where(accounttoken.AccountID(a.ID)).CountX(ctx)
		}
		lateBefore := s.Client.Account.GetX(ctx, late.ID).String()
		activeBefore := s.Client.Account.GetX(ctx, active.ID).String()

		now := t0.Add(400 * 24 * time.Hour)
		n, err := s.AnonymizeClosedAccounts(ctx, cutoff, now)
		if err != nil || n != 2 {
			t.Fatalf("AnonymizeClosedAccounts = %d, %v; want 2", n, err)
		}
		for _, a := range []*ent.Account{early, atCutoff} {
			got := s.Client.Account.GetX(ctx, a.ID)
			if got.Status != account.StatusClosed || got.Email != store.ClosedEmail(a.ID) || got.ClosedEmail != "" ||
				got.DisplayName != store.ClosedName || got.BusinessName != "" || !got.UpdatedAt.Equal(now) {
				t.Fatalf("anonymized account %v", got)
			}
			wantTime(t, a.Email+" anonymized_at", got.AnonymizedAt, now)
			if m := s.Client.EmailMessage.GetX(ctx, mails[a.ID]); m.Recipient != store.ClosedEmail(a.ID) {
				t.Fatalf("%s's email still addressed to %q", a.Email, m.Recipient)
			}
			es, err := s.ListAuditEvents(ctx, store.AuditFilter{TargetID: a.ID, Type: store.AuditAnonymized}, store.Page{Limit: 10})
			if err != nil || len(es) != 1 || es[0].ActorID != "" || !es[0].CreatedAt.Equal(now) {
				t.Fatalf("%s's anonymization audit rows %v, %v; want one", a.Email, es, err)
			}
		}
		// The letters sent and the tokens mailed go; a letter still owed
		// stays for the relay.
		if k, m := noticesOf(early), tokensOf(early); k != 0 || m != 0 {
			t.Fatalf("early keeps %d notices and %d tokens, want none", k, m)
		}
		if k := noticesOf(atCutoff); k != 1 {
			t.Fatalf("atCutoff keeps %d notices, want its undispatched closure letter", k)
		}
		if k, m := noticesOf(late), tokensOf(late); k != 1 || m != 1 {
			t.Fatalf("late keeps %d notices and %d tokens, want 1 and 1", k, m)
		}
		if got := s.Client.Account.GetX(ctx, late.ID).String(); got != lateBefore {
			t.Fatalf("an account closed after the cutoff changed:\nbefore %s\nafter  %s", lateBefore, got)
		}
		if got := s.Client.Account.GetX(ctx, active.ID).String(); got != activeBefore {
			t.Fatalf("an active account changed:\nbefore %s\nafter  %s", activeBefore, got)
		}
		for _, a := range []*ent.Account{late, active} {
			if m := s.Client.EmailMessage.GetX(ctx, mails[a.ID]); m.Recipient != a.Email {
				t.Fatalf("%s's email readdressed to %q", a.Email, m.Recipient)
			}
		}
		if got := s.Client.Payment.GetX(ctx, p.ID).String(); got != paymentBefore {
			t.Fatalf("anonymizing changed the account's payment:\nbefore %s\nafter  %s", paymentBefore, got)
		}
		if k := s.Client.EmailMessage.Query().Where(emailmessage.RecipientIn("early@example.com", "cutoff@example.com")).CountX(ctx); k != 0 {
			t.Fatalf("%d emails still name an anonymized address", k)
		}

		// Once only.
		if n, err := s.AnonymizeClosedAccounts(ctx, cutoff, now.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("second AnonymizeClosedAccounts = %d, %v; want 0", n, err)
		}
		if got := s.Client.Account.GetX(ctx, early.ID); !got.AnonymizedAt.Equal(now) {
			t.Fatalf("anonymized_at moved to %v", got.AnonymizedAt)
		}
		// A later cutoff takes the late one.
		if n, err := s.AnonymizeClosedAccounts(ctx, cutoff.Add(time.Microsecond), now); err != nil || n != 1 {
			t.Fatalf("AnonymizeClosedAccounts with a later cutoff = %d, %v; want 1", n, err)
		}
		if got := s.Client.Account.GetX(ctx, late.ID); got.ClosedEmail != "" || got.AnonymizedAt == nil {
			t.Fatalf("late account after its cutoff %v", got)
		}
		if got := s.Client.Account.GetX(ctx, active.ID).String(); got != activeBefore {
			t.Fatalf("an active account changed:\nbefore %s\nafter  %s", activeBefore, got)
		}
	})
}

// Nobody can take a closed account's placeholder email first (which would
// make its closure fail on the unique index): addresses under .invalid
// are refused at registration and as a new email.
func TestPlaceholderEmailsCannotBeTaken(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		victim, err := s.CreateAccount(ctx, store.NewAccount{Email: "victim@example.com", PasswordHash: "$argon2id$x", Role: account.RoleCustomer})
		if err != nil {
			t.Fatal(err)
		}
		for _, email := range []string{store.ClosedEmail(victim.ID), strings.ToUpper(store.ClosedEmail(victim.ID)), "someone@mail.invalid"} {
			if _, err := s.CreateAccount(ctx, store.NewAccount{Email: email, PasswordHash: "$argon2id$x", Role: account.RoleMerchant}); errs.KindOf(err) != errs.KindInvalidArgument {
				t.Errorf("registering %s: %v, want invalid_argument", email, err)
			}
			pending := email
			if _, err := s.UpdateAccount(ctx, victim.ID, store.AccountUpdate{PendingEmail: &pending}, time.Now()); errs.KindOf(err) != errs.KindInvalidArgument {
				t.Errorf("changing to %s: %v, want invalid_argument", email, err)
			}
		}
		closed, err := s.CloseAccount(ctx, victim.ID, time.Now(), store.Audit{})
		if err != nil || closed.Email != store.ClosedEmail(victim.ID) {
			t.Fatalf("close: %v %v", closed, err)
		}
	})
}
