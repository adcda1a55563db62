package activities

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/ent/emailmessage"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/mail"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// accountMailer keeps every message it is given, sent or refused, and
// refuses the first failFirst of them.
type accountMailer struct {
	mu        sync.Mutex
	failFirst int
	tried     []mail.Message
	sent      []mail.Message
}

func (m *accountMailer) Send(_ context.Context, msg mail.Message) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tried = append(m.tried, msg)
	if m.failFirst > 0 {
		m.failFirst--
		return "", errors.New("451 try again later")
	}
	m.sent = append(m.sent, msg)
	return "memory", nil
}

func (m *accountMailer) sentMessages() []mail.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

func (m *accountMailer) triedMessages() []mail.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.tried)
}

// accountMailClock is the activity's clock in these tests.
var accountMailClock = time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)

func newAccountMail(db *store.Store, mailer mail.Mailer) *Mail {
	return &Mail{
		DB: db, Mailer: mailer, From: "Payments <no-reply@payments.test>", Platform: "Payments",
		Now: func() time.Time { return accountMailClock }, Logger: slog.New(slog.DiscardHandler),
	}
}

func newMailAccount(t *testing.T, db *store.Store, email string) *ent.Account {
	t.Helper()
	a, err := db.CreateAccount(context.Background(), store.NewAccount{
		Email: email, PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA",
		Role: account.RoleMerchant, DisplayName: "Dana of " + email,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// noticeIDs are the ids of every notice in the store.
func noticeIDs(t *testing.T, db *store.Store) []string {
	t.Helper()
	ids, err := db.Client.AccountNotice.Query().IDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// newNoticeSince is the one notice written since before (the ids then).
func newNoticeSince(t *testing.T, db *store.Store, before []string) *ent.AccountNotice {
	t.Helper()
	var fresh []string
	for _, id := range noticeIDs(t, db) {
		if !slices.Contains(before, id) {
			fresh = append(fresh, id)
		}
	}
	if len(fresh) != 1 {
		t.Fatalf("%d new notices %v, want one", len(fresh), fresh)
	}
	n, err := db.NoticeByID(context.Background(), fresh[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// addNotice writes n with AddNotice and returns its row, found among the
// undispatched notices.
func addNotice(t *testing.T, db *store.Store, n store.Notice) *ent.AccountNotice {
	t.Helper()
	ctx := context.Background()
	before := noticeIDs(t, db)
	if n.At.IsZero() {
		n.At = accountMailClock.Add(-time.Minute)
	}
	if err := db.AddNotice(ctx, n); err != nil {
		t.Fatal(err)
	}
	ntc := newNoticeSince(t, db, before)
	pending, err := db.UndispatchedNotices(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(pending, func(p *ent.AccountNotice) bool { return p.ID == ntc.ID }) {
		t.Fatalf("notice %s not among the undispatched notices", ntc.ID)
	}
	if ntc.Kind != n.Kind || ntc.AccountID != n.AccountID {
		t.Fatalf("notice %+v, want kind %s of account %q", ntc, n.Kind, n.AccountID)
	}
	return ntc
}

func tokensOf(t *testing.T, db *store.Store, accountID string) []*ent.AccountToken {
	t.Helper()
	ts, err := db.Client.AccountToken.Query().Where(accounttoken.AccountID(accountID)).
		Order(ent.Asc(accounttoken.FieldCreatedAt), ent.Asc(accounttoken.FieldID)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func allTokens(t *testing.T, db *store.Store) int {
	t.Helper()
	n, err := db.Client.AccountToken.Query().Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	verifyTokenRE = regexp.MustCompile(`vfy_[A-Za-z0-9_-]+`)
	resetTokenRE  = regexp.MustCompile(`rst_[A-Za-z0-9_-]+`)
)

// tokenIn is the one token of re in msg's text; the HTML carries the same.
func tokenIn(t *testing.T, re *regexp.Regexp, msg mail.Message) string {
	t.Helper()
	found := re.FindAllString(msg.Text, -1)
	if len(found) != 1 {
		t.Fatalf("tokens %q in the text %q, want one", found, msg.Text)
	}
	if !strings.Contains(msg.HTML, found[0]) {
		t.Fatalf("the HTML lacks the token %s: %q", found[0], msg.HTML)
	}
	return found[0]
}

// A verification notice mails one token, whose hash alone is stored for
// the recipient, valid 24 hours; running the activity again sends nothing.
func TestSendAccountEmailVerifyEmail(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		acct := newMailAccount(t, db, "dana@example.com")
		ntc := addNotice(t, db, store.Notice{Kind: accountnotice.KindVerifyEmail, AccountID: acct.ID, Recipient: acct.Email})
		mailer := &accountMailer{}
		a := newAccountMail(db, mailer)

		if err := a.SendAccountEmail(ctx, ntc.ID); err != nil {
			t.Fatal(err)
		}
		sent := mailer.sentMessages()
		if len(sent) != 1 {
			t.Fatalf("%d messages, want one", len(sent))
		}
		msg := sent[0]
		if msg.To != acct.Email || msg.Subject != "Verify your email address" || msg.From != a.From ||
			!strings.HasSuffix(msg.MessageID, "@payments.test") {
			t.Fatalf("message %+v", msg)
		}
		secret := tokenIn(t, verifyTokenRE, msg)
		if resetTokenRE.MatchString(msg.Text) {
			t.Fatalf("a reset token in a verification letter: %q", msg.Text)
		}
		ts := tokensOf(t, db, acct.ID)
		if len(ts) != 1 {
			t.Fatalf("%d tokens, want one", len(ts))
		}
		tok := ts[0]
		if tok.TokenHash != auth.HashSecret(secret) || tok.Purpose != accounttoken.PurposeVerifyEmail || tok.Email != acct.Email {
			t.Fatalf("token row %+v, want the hash of %s for %s", tok, secret, acct.Email)
		}
		if tok.TokenHash == secret || strings.Contains(tok.TokenHash, "vfy_") {
			t.Fatal("the token is stored in clear")
		}
		if !tok.ExpiresAt.Equal(accountMailClock.Add(24*time.Hour)) || !tok.ExpiresAt.Equal(tok.CreatedAt.Add(VerifyTokenTTL)) {
			t.Fatalf("token created %v, expires %v, want 24h after %v", tok.CreatedAt, tok.ExpiresAt, accountMailClock)
		}
		if tok.UsedAt != nil || tok.SupersededAt != nil {
			t.Fatalf("fresh token %+v", tok)
		}
		if want := accountMailClock.Add(24 * time.Hour).Format("2 January 2006, 15:04 MST"); !strings.Contains(msg.Text, want) {
			t.Fatalf("the letter does not say the token is valid until %s: %q", want, msg.Text)
		}
		ms, err := db.EmailsOf(ctx, ntc.ID)
		if err != nil || len(ms) != 1 || ms[0].Status != emailmessage.StatusSent || ms[0].AccountID != acct.ID || ms[0].Recipient != acct.Email {
			t.Fatalf("email rows %v %v", ms, err)
		}

		// Claimed: running the activity again sends and issues nothing.
		for range 2 {
			if err := a.SendAccountEmail(ctx, ntc.ID); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(mailer.triedMessages()); n != 1 {
			t.Fatalf("%d messages after the activity ran again, want one", n)
		}
		if ts := tokensOf(t, db, acct.ID); len(ts) != 1 || ts[0].SupersededAt != nil {
			t.Fatalf("tokens after the activity ran again %+v", ts)
		}
		// The mailed token works.
		got, err := db.VerifyEmail(ctx, auth.HashSecret(secret), accountMailClock, store.Audit{})
		if err != nil || !got.EmailVerified {
			t.Fatalf("VerifyEmail with the mailed token: %+v %v", got, err)
		}
	})
}

// A verification letter to the account's pending new email is sent; one to
// an address that is neither its email nor its pending email (the change
// was replaced meanwhile) is not.
func TestSendAccountEmailVerifyOnlyTheAccountsAddresses(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		acct := newMailAccount(t, db, "dana@example.com")
		pending := "dana.new@example.com"
		if _, err := db.UpdateAccount(ctx, acct.ID, store.AccountUpdate{PendingEmail: &pending}, accountMailClock); err != nil {
			t.Fatal(err)
		}
		stale := addNotice(t, db, store.Notice{Kind: accountnotice.KindVerifyEmail, AccountID: acct.ID, Recipient: "dana.old-change@example.com"})
		toPending := addNotice(t, db, store.Notice{Kind: accountnotice.KindVerifyEmail, AccountID: acct.ID, Recipient: pending})
		mailer := &accountMailer{}
		a := newAccountMail(db, mailer)

		if err := a.SendAccountEmail(ctx, stale.ID); err != nil {
			t.Fatal(err)
		}
		if n := len(mailer.triedMessages()); n != 0 {
			t.Fatalf("%d messages to an address the account no longer asks for", n)
		}
		if n := allTokens(t, db); n != 0 {
			t.Fatalf("%d tokens issued for a stale address", n)
		}
		if ms, err := db.EmailsOf(ctx, stale.ID); err != nil || len(ms) != 0 {
			t.Fatalf("email rows of the stale notice %v %v", ms, err)
		}

		if err := a.SendAccountEmail(ctx, toPending.ID); err != nil {
			t.Fatal(err)
		}
		sent := mailer.sentMessages()
		if len(sent) != 1 || sent[0].To != pending {
			t.Fatalf("messages %+v, want one to %s", sent, pending)
		}
		secret := tokenIn(t, verifyTokenRE, sent[0])
		if ts := tokensOf(t, db, acct.ID); len(ts) != 1 || ts[0].Email != pending || ts[0].TokenHash != auth.HashSecret(secret) {
			t.Fatalf("tokens %+v, want one for %s", ts, pending)
		}
	})
}

// A reset asked by email mails a 30-minute token to the account of that
// email and records the request on the account, with where it came from.
func TestSendAccountEmailPasswordReset(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		acct := newMailAccount(t, db, "dana@example.com")
		asked := accountMailClock.Add(-2 * time.Minute)
		ntc := addNotice(t, db, store.Notice{Kind: accountnotice.KindPasswordReset, Recipient: acct.Email, At: asked,
			Data: map[string]string{"client_ip": "203.0.113.7", "request_id": "req-reset-1"}})
		mailer := &accountMailer{}
		a := newAccountMail(db, mailer)

		if err := a.SendAccountEmail(ctx, ntc.ID); err != nil {
			t.Fatal(err)
		}
		sent := mailer.sentMessages()
		if len(sent) != 1 || sent[0].To != acct.Email || sent[0].Subject != "Reset your password" {
			t.Fatalf("messages %+v, want one reset letter to %s", sent, acct.Email)
		}
		secret := tokenIn(t, resetTokenRE, sent[0])
		if verifyTokenRE.MatchString(sent[0].Text) {
			t.Fatalf("a verification token in a reset letter: %q", sent[0].Text)
		}
		ts := tokensOf(t, db, acct.ID)
		if len(ts) != 1 {
			t.Fatalf("%d tokens, want one", len(ts))
		}
		tok := ts[0]
		if tok.TokenHash != auth.HashSecret(secret) || tok.Purpose != accounttoken.PurposeResetPassword || tok.Email != acct.Email {
			t.Fatalf("token row %+v", tok)
		}
		if !tok.ExpiresAt.Equal(accountMailClock.Add(30 * time.Minute)) {
			t.Fatalf("token expires %v, want 30 minutes after %v", tok.ExpiresAt, accountMailClock)
		}

		audits, err := db.ListAuditEvents(ctx, store.AuditFilter{Type: store.AuditPasswordResetAsked}, store.Page{Limit: 10})
		if err != nil || len(audits) != 1 {
			t.Fatalf("reset request audit rows %v %v, want one", audits, err)
		}
		au := audits[0]
		if au.TargetID != acct.ID || au.ClientIP != "203.0.113.7" || au.RequestID != "req-reset-1" || au.ActorID != "" {
			t.Fatalf("audit row %+v", au)
		}
		if !au.CreatedAt.Equal(asked) {
			t.Fatalf("audit row at %v, want the request's time %v", au.CreatedAt, asked)
		}
		for k, v := range au.Detail {
			if strings.Contains(v, secret) || strings.Contains(v, acct.Email) {
				t.Fatalf("audit detail %s=%q holds a secret or an email", k, v)
			}
		}

		// Claimed: nothing more on a rerun, and no second audit row.
		if err := a.SendAccountEmail(ctx, ntc.ID); err != nil {
			t.Fatal(err)
		}
		if n := len(mailer.triedMessages()); n != 1 {
			t.Fatalf("%d messages after a rerun", n)
		}
		if audits, _ := db.ListAuditEvents(ctx, store.AuditFilter{Type: store.AuditPasswordResetAsked}, store.Page{Limit: 10}); len(audits) != 1 {
			t.Fatalf("%d audit rows after a rerun", len(audits))
		}
		// The token resets the password.
		if _, err := db.ResetPassword(ctx, auth.HashSecret(secret), "$argon2id$v=19$m=1,t=1,p=1$BBBB$BBBB", accountMailClock, store.Audit{}); err != nil {
			t.Fatalf("ResetPassword with the mailed token: %v", err)
		}
	})
}

// A reset for an email without an account, or for a suspended account,
// sends nothing, issues nothing and records nothing, without an error (the
// API answered the same either way).
func TestSendAccountEmailPasswordResetWithoutActiveAccount(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		suspended := newMailAccount(t, db, "suspended@example.com")
		if _, err := db.SuspendAccount(ctx, suspended.ID, store.Suspension{Reason: "fraud", Audit: store.Audit{ActorID: "acct_admin", At: accountMailClock}}); err != nil {
			t.Fatal(err)
		}
		if got, err := db.AccountByID(ctx, suspended.ID); err != nil || got.Status != account.StatusDisabled {
			t.Fatalf("suspended account %+v %v", got, err)
		}
		mailer := &accountMailer{}
		a := newAccountMail(db, mailer)
		for _, email := range []string{"nobody@example.com", suspended.Email} {
			ntc := addNotice(t, db, store.Notice{Kind: accountnotice.KindPasswordReset, Recipient: email,
				Data: map[string]string{"client_ip": "203.0.113.9", "request_id": "req-" + email}})
			if err := a.SendAccountEmail(ctx, ntc.ID); err != nil {
				t.Fatalf("reset for %s: %v", email, err)
			}
			if n := len(mailer.triedMessages()); n != 0 {
				t.Fatalf("reset for %s: %d messages, want none", email, n)
			}
			if n := allTokens(t, db); n != 0 {
				t.Fatalf("reset for %s: %d tokens, want none", email, n)
			}
			if ms, err := db.EmailsOf(ctx, ntc.ID); err != nil || len(ms) != 0 {
				t.Fatalf("reset for %s: email rows %v %v", email, ms, err)
			}
			audits, err := db.ListAuditEvents(ctx, store.AuditFilter{Type: store.AuditPasswordResetAsked}, store.Page{Limit: 10})
			if err != nil || len(audits) != 0 {
				t.Fatalf("reset for %s: audit rows %v %v, want none", email, audits, err)
			}
		}
	})
}

// A letter the server refuses fails the activity and is released; the
// retry sends it with a new token, and the unsent first token no longer
// works.
func TestSendAccountEmailRetryIssuesANewToken(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		acct := newMailAccount(t, db, "dana@example.com")
		ntc := addNotice(t, db, store.Notice{Kind: accountnotice.KindVerifyEmail, AccountID: acct.ID, Recipient: acct.Email})
		mailer := &accountMailer{failFirst: 1}
		a := newAccountMail(db, mailer)

		if err := a.SendAccountEmail(ctx, ntc.ID); err == nil {
			t.Fatal("a refused letter must fail the activity, so that it is retried")
		}
		if ms, err := db.EmailsOf(ctx, ntc.ID); err != nil || len(ms) != 0 {
			t.Fatalf("the claim of the refused letter was kept: %v %v", ms, err)
		}
		tried := mailer.triedMessages()
		if len(tried) != 1 || len(mailer.sentMessages()) != 0 {
			t.Fatalf("%d tried, %d sent after the refusal", len(tried), len(mailer.sentMessages()))
		}
		first := tokenIn(t, verifyTokenRE, tried[0])

		if err := a.SendAccountEmail(ctx, ntc.ID); err != nil {
			t.Fatalf("retry: %v", err)
		}
		sent := mailer.sentMessages()
		if len(sent) != 1 || sent[0].To != acct.Email {
			t.Fatalf("messages after the retry %+v, want one", sent)
		}
		second := tokenIn(t, verifyTokenRE, sent[0])
		if second == first {
			t.Fatal("the retry mailed the refused letter's token again")
		}
		ts := tokensOf(t, db, acct.ID)
		if len(ts) != 2 {
			t.Fatalf("%d tokens, want the refused one and the sent one", len(ts))
		}
		byHash := map[string]*ent.AccountToken{ts[0].TokenHash: ts[0], ts[1].TokenHash: ts[1]}
		if old, ok := byHash[auth.HashSecret(first)]; !ok || old.SupersededAt == nil {
			t.Fatalf("the first token %+v is not superseded", old)
		}
		if cur, ok := byHash[auth.HashSecret(second)]; !ok || cur.SupersededAt != nil || cur.UsedAt != nil {
			t.Fatalf("the mailed token %+v is not the live one", cur)
		}
		ms, err := db.EmailsOf(ctx, ntc.ID)
		if err != nil || len(ms) != 1 || ms[0].Status != emailmessage.StatusSent {
			t.Fatalf("email rows after the retry %v %v", ms, err)
		}

		_, err = db.VerifyEmail(ctx, auth.HashSecret(first), accountMailClock, store.Audit{})
		if !errors.Is(err, errs.ErrInvalidArgument) {
			t.Fatalf("VerifyEmail with the superseded token: %v, want invalid_argument", err)
		}
		got, err := db.VerifyEmail(ctx, auth.HashSecret(second), accountMailClock, store.Audit{})
		if err != nil || !got.EmailVerified {
			t.Fatalf("VerifyEmail with the mailed token: %+v %v", got, err)
		}

		// Sent: a further run does nothing.
		if err := a.SendAccountEmail(ctx, ntc.ID); err != nil {
			t.Fatal(err)
		}
		if n := len(mailer.triedMessages()); n != 2 {
			t.Fatalf("%d attempts after a further run, want 2", n)
		}
	})
}

// The notices without a token each send one letter with their subject and
// facts, to a suspended or closed account too.
func TestSendAccountEmailNoticesWithoutToken(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		mailer := &accountMailer{}
		a := newAccountMail(db, mailer)
		check := func(ntc *ent.AccountNotice, to, subject string, says ...string) {
			t.Helper()
			before := len(mailer.triedMessages())
			if err := a.SendAccountEmail(ctx, ntc.ID); err != nil {
				t.Fatalf("%s: %v", ntc.Kind, err)
			}
			if err := a.SendAccountEmail(ctx, ntc.ID); err != nil {
				t.Fatalf("%s again: %v", ntc.Kind, err)
			}
			tried := mailer.triedMessages()[before:]
			if len(tried) != 1 {
				t.Fatalf("%s: %d messages, want one", ntc.Kind, len(tried))
			}
			msg := tried[0]
			if msg.To != to || msg.Subject != subject {
				t.Fatalf("%s: message to %s, %q; want to %s, %q", ntc.Kind, msg.To, msg.Subject, to, subject)
			}
			for _, s := range says {
				if !strings.Contains(msg.Text, s) || !strings.Contains(msg.HTML, s) {
					t.Fatalf("%s: the letter does not say %q: %q", ntc.Kind, s, msg.Text)
				}
			}
			if verifyTokenRE.MatchString(msg.Text) || resetTokenRE.MatchString(msg.Text) || strings.Contains(msg.Text, "Valid until") {
				t.Fatalf("%s: a token in the letter: %q", ntc.Kind, msg.Text)
			}
			if ms, err := db.EmailsOf(ctx, ntc.ID); err != nil || len(ms) != 1 || ms[0].Status != emailmessage.StatusSent {
				t.Fatalf("%s: email rows %v %v", ntc.Kind, ms, err)
			}
			if n := allTokens(t, db); n != 0 {
				t.Fatalf("%s: %d tokens issued", ntc.Kind, n)
			}
		}

		changed := newMailAccount(t, db, "changed@example.com")
		check(addNotice(t, db, store.Notice{Kind: accountnotice.KindPasswordChanged, AccountID: changed.ID, Recipient: changed.Email}),
			changed.Email, "Your password was changed")

		moving := newMailAccount(t, db, "moving@example.com")
		check(addNotice(t, db, store.Notice{Kind: accountnotice.KindEmailChangeRequested, AccountID: moving.ID, Recipient: moving.Email,
			Data: map[string]string{"new_email": "moved@example.org"}}),
			moving.Email, "Your login email is being changed", "moved@example.org")

		// The notices the store writes when an account is suspended or closed.
		suspended := newMailAccount(t, db, "suspended@example.com")
		before := noticeIDs(t, db)
		if _, err := db.SuspendAccount(ctx, suspended.ID, store.Suspension{Reason: "excessive_disputes", Audit: store.Audit{ActorID: "acct_admin", At: accountMailClock}}); err != nil {
			t.Fatal(err)
		}
		ntc := newNoticeSince(t, db, before)
		if ntc.Kind != accountnotice.KindSuspended || ntc.Data["reason"] != "excessive_disputes" {
			t.Fatalf("suspension notice %+v", ntc)
		}
		check(ntc, suspended.Email, "Your account is suspended", "excessive_disputes")

		closing := newMailAccount(t, db, "closing@example.com")
		before = noticeIDs(t, db)
		if _, err := db.CloseAccount(ctx, closing.ID, accountMailClock, store.Audit{}); err != nil {
			t.Fatal(err)
		}
		ntc = newNoticeSince(t, db, before)
		if ntc.Kind != accountnotice.KindClosed {
			t.Fatalf("closure notice %+v", ntc)
		}
		// The letter goes to the address the account had, not the placeholder.
		check(ntc, closing.Email, "Your account is closed")

		// The same kinds through AddNotice.
		suspended2 := newMailAccount(t, db, "suspended2@example.com")
		check(addNotice(t, db, store.Notice{Kind: accountnotice.KindSuspended, AccountID: suspended2.ID, Recipient: suspended2.Email,
			Data: map[string]string{"reason": "terms_violation"}}),
			suspended2.Email, "Your account is suspended", "terms_violation")
		closed2 := newMailAccount(t, db, "closed2@example.com")
		check(addNotice(t, db, store.Notice{Kind: accountnotice.KindClosed, AccountID: closed2.ID, Recipient: closed2.Email}),
			closed2.Email, "Your account is closed")
	})
}

// A notice that is not there fails the activity for good.
func TestSendAccountEmailWithoutTheNotice(t *testing.T) {
	db := storetest.NewSQLite(t)
	a := newAccountMail(db, &accountMailer{})
	err := a.SendAccountEmail(context.Background(), "ntc_01jdoesnotexist0000000000")
	if err == nil {
		t.Fatal("a missing notice did not fail the activity")
	}
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeNotFound || !appErr.NonRetryable() {
		t.Fatalf("missing notice: %v, want a non-retryable %s", err, ErrTypeNotFound)
	}
}

// Of two reset requests, only the later one's token works, whatever order
// their letters go out in: in order, both are sent and the first token is
// superseded; the later letter first, the earlier one is not sent at all
// (it would carry a dead link), without an error.
func TestSendAccountEmailOnlyTheLatestRequestsTokenWorks(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		reset := func(acct *ent.Account, ago time.Duration) *ent.AccountNotice {
			return addNotice(t, db, store.Notice{Kind: accountnotice.KindPasswordReset, Recipient: acct.Email, At: accountMailClock.Add(-ago)})
		}
		resetWith := func(secret string) error {
			_, err := db.ResetPassword(ctx, auth.HashSecret(secret), "$argon2id$v=19$m=1,t=1,p=1$CCCC$CCCC", accountMailClock, store.Audit{})
			return err
		}

		// In order.
		inOrder := newMailAccount(t, db, "in-order@example.com")
		first, second := reset(inOrder, 2*time.Minute), reset(inOrder, time.Minute)
		mailer := &accountMailer{}
		a := newAccountMail(db, mailer)
		for _, n := range []*ent.AccountNotice{first, second} {
			if err := a.SendAccountEmail(ctx, n.ID); err != nil {
				t.Fatal(err)
			}
		}
		sent := mailer.sentMessages()
		if len(sent) != 2 {
			t.Fatalf("%d messages, want both", len(sent))
		}
		old, cur := tokenIn(t, resetTokenRE, sent[0]), tokenIn(t, resetTokenRE, sent[1])
		if err := resetWith(old); !errors.Is(err, errs.ErrInvalidArgument) {
			t.Fatalf("the first request's token: %v, want invalid_argument", err)
		}
		if err := resetWith(cur); err != nil {
			t.Fatalf("the later request's token: %v", err)
		}

		// The later letter first.
		outOfOrder := newMailAccount(t, db, "out-of-order@example.com")
		first, second = reset(outOfOrder, 2*time.Minute), reset(outOfOrder, time.Minute)
		mailer = &accountMailer{}
		a = newAccountMail(db, mailer)
		if err := a.SendAccountEmail(ctx, second.ID); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := a.SendAccountEmail(ctx, first.ID); err != nil {
				t.Fatalf("the earlier request after the later one: %v, want nil (not retried)", err)
			}
		}
		sent = mailer.sentMessages()
		if len(sent) != 1 || len(mailer.triedMessages()) != 1 {
			t.Fatalf("%d messages, want only the later request's", len(mailer.triedMessages()))
		}
		if ts := tokensOf(t, db, outOfOrder.ID); len(ts) != 1 || ts[0].SupersededAt != nil {
			t.Fatalf("tokens %+v, want the later request's alone, live", ts)
		}
		if ms, err := db.EmailsOf(ctx, first.ID); err != nil || len(ms) != 0 {
			t.Fatalf("email rows of the unsent letter %v %v", ms, err)
		}
		if err := resetWith(tokenIn(t, resetTokenRE, sent[0])); err != nil {
			t.Fatalf("the later request's token: %v", err)
		}
	})
}

// A reset request is audited once: not again when its letter is retried,
// and also when a later request's letter overtook it.
func TestSendAccountEmailAuditsEachResetRequestOnce(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.Store) {
		ctx := context.Background()
		acct := newMailAccount(t, db, "audited@example.com")
		reset := func(ago time.Duration, req string) *ent.AccountNotice {
			return addNotice(t, db, store.Notice{Kind: accountnotice.KindPasswordReset, Recipient: acct.Email,
				At: accountMailClock.Add(-ago), Data: map[string]string{"request_id": req}})
		}
		rows := func() []string {
			t.Helper()
			evs, err := db.ListAuditEvents(ctx, store.AuditFilter{TargetID: acct.ID, Type: store.AuditPasswordResetAsked}, store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var reqs []string
			for _, e := range evs {
				reqs = append(reqs, e.RequestID)
			}
			slices.Sort(reqs)
			return reqs
		}
		// Two refused sends, then the retry that goes through.
		flaky := reset(3*time.Minute, "req-flaky")
		a := newAccountMail(db, &accountMailer{failFirst: 2})
		for i := range 3 {
			err := a.SendAccountEmail(ctx, flaky.ID)
			if (i < 2) != (err != nil) {
				t.Fatalf("try %d: %v", i+1, err)
			}
		}
		if got := rows(); !slices.Equal(got, []string{"req-flaky"}) {
			t.Fatalf("audit rows after a retried letter: %v, want one", got)
		}
		// The later request's letter first; the earlier one is not sent,
		// but was asked for all the same.
		earlier, later := reset(2*time.Minute, "req-earlier"), reset(time.Minute, "req-later")
		a = newAccountMail(db, &accountMailer{})
		for _, n := range []*ent.AccountNotice{later, earlier} {
			if err := a.SendAccountEmail(ctx, n.ID); err != nil {
				t.Fatal(err)
			}
		}
		if got := rows(); !slices.Equal(got, []string{"req-earlier", "req-flaky", "req-later"}) {
			t.Fatalf("audit rows %v, want one per request", got)
		}
	})
}
