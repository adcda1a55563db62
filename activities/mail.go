package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/ent/event"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/events"
	"github.com/payments-platform/payments/internal/mail"
	"github.com/payments-platform/payments/internal/store"
	"go.temporal.io/sdk/temporal"
)

// Mail holds the activities that email: an event's letters to the
// parties, and an account notice's letter to its owner.
type Mail struct {
	DB     *store.Store
	Mailer mail.Mailer
	// From is the sender, e.g. "Payments <no-reply@example.com>".
	From string
	// Platform names the platform in the letters' footer.
	Platform string
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (a *Mail) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// SendEventEmails sends an event's letters (mail.Recipients) to the
// parties who have not turned the event's category off. Each message is
// claimed in the database first and sent only by the call that claimed it;
// a message the server refused is released, and the activity's retry sends
// it. So a message is sent at most once per event and recipient, however
// often the activity runs.
func (a *Mail) SendEventEmails(ctx context.Context, eventID string) error {
	ev, err := a.DB.EventByID(ctx, eventID)
	if err != nil {
		return eventGone(err)
	}
	roles := mail.Recipients(ev.Type)
	if len(roles) == 0 {
		return nil
	}
	facts, err := eventFacts(ev)
	if err != nil {
		return unrenderable(err)
	}
	parties := map[mail.Role]*ent.Account{}
	for role, id := range map[mail.Role]string{mail.Merchant: ev.MerchantID, mail.Customer: ev.CustomerID} {
		if id == "" {
			continue
		}
		acct, err := a.DB.AccountByID(ctx, id)
		if err != nil {
			return err
		}
		parties[role] = acct
	}
	if m := parties[mail.Merchant]; m != nil {
		facts.MerchantName = firstNonEmpty(m.BusinessName, m.DisplayName, m.Email)
	}
	if c := parties[mail.Customer]; c != nil {
		facts.CustomerName = firstNonEmpty(c.DisplayName, c.Email)
	}
	for _, role := range roles {
		acct := parties[role]
		if acct == nil || slices.Contains(acct.EmailOptOut, events.Category(ev.Type)) {
			continue
		}
		letter, err := mail.Compose(facts, role, acct.DisplayName, a.Platform)
		if err != nil {
			return unrenderable(err)
		}
		id, claimed, err := a.DB.ClaimEmail(ctx, store.EmailClaim{
			EventID: ev.ID, AccountID: acct.ID, Recipient: acct.Email, Subject: letter.Subject,
			EventAt: ev.CreatedAt, At: a.now(),
		})
		if err != nil {
			return err
		}
		if !claimed {
			continue
		}
		if err := a.sendClaimed(ctx, id, acct.Email, letter, ev.Type, acct.ID); err != nil {
			return err
		}
	}
	return nil
}

// sendClaimed sends the claimed message id to the address, then records it
// sent; a message the server refused is released, so that the activity's
// retry sends it. what (an event type, a notice kind) and accountID name it
// in errors and logs.
func (a *Mail) sendClaimed(ctx context.Context, id, to string, letter mail.Letter, what, accountID string) error {
	detail, err := a.Mailer.Send(ctx, mail.Message{
		From: a.From, To: to, Subject: letter.Subject, Text: letter.Text, HTML: letter.HTML,
		MessageID: id + "@" + domainOf(a.From), Date: a.now(),
	})
	if err != nil {
		return a.release(ctx, id, fmt.Errorf("send %s to %s: %w", what, accountID, err))
	}
	if err := a.DB.EmailSent(ctx, id, detail, a.now()); err != nil {
		return err
	}
	a.Logger.InfoContext(ctx, "email sent", "email_id", id, "about", what, "account_id", accountID, "to", detail)
	return nil
}

// eventFacts reads what a letter says from an event's data.
func eventFacts(ev *ent.Event) (mail.Facts, error) {
	f := mail.Facts{Type: ev.Type, ObjectID: ev.ObjectID}
	switch ev.ObjectType {
	case event.ObjectTypePayment:
		var p ent.Payment
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			return f, err
		}
		f.PaymentID, f.Amount, f.Currency, f.Reason = p.ID, p.Amount, p.Currency, p.FailureMessage
	case event.ObjectTypeRefund:
		var r ent.Refund
		if err := json.Unmarshal(ev.Data, &r); err != nil {
			return f, err
		}
		f.PaymentID, f.Amount, f.Currency, f.Reason = r.PaymentID, r.Amount, r.Currency, r.FailureReason
	case event.ObjectTypeDispute:
		var d ent.Dispute
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return f, err
		}
		due := d.ResponseDueBy
		f.PaymentID, f.Amount, f.Currency, f.DueBy = d.PaymentID, d.Amount, d.Currency, &due
		f.Reason = strings.ReplaceAll(string(d.Reason), "_", " ")
	default:
		return f, fmt.Errorf("event %s: unknown object type %q", ev.ID, ev.ObjectType)
	}
	return f, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// domainOf is the domain of the sender's address, for Message-IDs.
func domainOf(from string) string {
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		return strings.TrimRight(from[i+1:], ">")
	}
	return "payments.local"
}

// How long mailed tokens are valid.
const (
	VerifyTokenTTL = 24 * time.Hour
	ResetTokenTTL  = 30 * time.Minute
)

// The prefixes of mailed tokens: a token says what it is for.
const (
	VerifyTokenPrefix = "vfy_"
	ResetTokenPrefix  = "rst_"
)

// SendAccountEmail sends an account notice's letter once. A password
// reset notice names an email, not an account: an email without an
// active account gets no letter (the API answered the same anyway). A
// letter with a token (verification, reset) is claimed first, and its
// token issued only by the call that claimed it, so a retry never mails
// two working tokens; a letter the server refused is released, and the
// retry issues a fresh token (the unsent one is superseded).
func (a *Mail) SendAccountEmail(ctx context.Context, noticeID string) error {
	n, err := a.DB.NoticeByID(ctx, noticeID)
	if err != nil {
		return eventGone(err)
	}
	var acct *ent.Account
	if n.AccountID != "" {
		acct, err = a.DB.AccountByID(ctx, n.AccountID)
	} else {
		acct, err = a.DB.AccountByEmail(ctx, n.Recipient)
	}
	switch {
	case errors.Is(err, errs.ErrNotFound):
		a.Logger.InfoContext(ctx, "account email not sent: no such account", "notice_id", n.ID, "kind", n.Kind)
		return nil
	case err != nil:
		return err
	}
	facts := mail.AccountFacts{Kind: n.Kind, NewEmail: n.Data["new_email"], Reason: n.Data["reason"]}
	// The token the letter carries, if any: its purpose and lifetime.
	var purpose accounttoken.Purpose
	var ttl time.Duration
	switch n.Kind {
	case accountnotice.KindVerifyEmail:
		switch {
		case acct.Status != account.StatusActive, n.Recipient != acct.Email && n.Recipient != acct.PendingEmail:
			// Closed, suspended, or the change was replaced meanwhile.
			return nil
		case n.Recipient == acct.Email && acct.EmailVerified:
			// Verified meanwhile (a resend raced the first link's use).
			return nil
		}
		purpose, ttl = accounttoken.PurposeVerifyEmail, VerifyTokenTTL
	case accountnotice.KindPasswordReset:
		if acct.Status != account.StatusActive {
			return nil
		}
		purpose, ttl = accounttoken.PurposeResetPassword, ResetTokenTTL
		// Once per request, whether its letter goes out, is retried or is
		// overtaken by a later request's.
		if err := a.DB.RecordAudit(ctx, store.Audit{
			ID: store.AuditID(n.ID, n.CreatedAt), Type: store.AuditPasswordResetAsked, TargetID: acct.ID, At: n.CreatedAt,
			ClientIP: n.Data["client_ip"], RequestID: n.Data["request_id"],
		}); err != nil {
			return err
		}
	}
	letterFor := func(tok string, expires time.Time) (mail.Letter, error) {
		f := facts
		f.Token, f.Expires = tok, expires
		return mail.ComposeAccount(f, acct.DisplayName, a.Platform)
	}
	// The subject does not depend on the token: compose once to claim.
	letter, err := letterFor("", a.now())
	if err != nil {
		return unrenderable(err)
	}
	id, claimed, err := a.DB.ClaimEmail(ctx, store.EmailClaim{
		EventID: n.ID, AccountID: acct.ID, Recipient: n.Recipient, Subject: letter.Subject,
		EventAt: n.CreatedAt, At: a.now(),
	})
	if err != nil || !claimed {
		return err
	}
	if purpose != "" {
		prefix := VerifyTokenPrefix
		if purpose == accounttoken.PurposeResetPassword {
			prefix = ResetTokenPrefix
		}
		secret, hash, err := auth.NewSecret(prefix)
		if err != nil {
			return a.release(ctx, id, err)
		}
		now := a.now()
		t := store.NewAccountToken{AccountID: acct.ID, Purpose: purpose, Email: n.Recipient, Hash: hash,
			ExpiresAt: now.Add(ttl), At: now, RequestedAt: n.CreatedAt}
		err = a.DB.IssueAccountToken(ctx, t, store.Records{})
		if errors.Is(err, store.ErrStaleToken) {
			// A later request's letter went out first: this one would
			// carry a dead link, so it is not sent (and not retried).
			a.Logger.InfoContext(ctx, "account email not sent: a newer one was sent", "notice_id", n.ID, "kind", n.Kind)
			return a.release(ctx, id, nil)
		}
		if err != nil {
			return a.release(ctx, id, err)
		}
		if letter, err = letterFor(secret, t.ExpiresAt); err != nil {
			return a.release(ctx, id, unrenderable(err))
		}
	}
	return a.sendClaimed(ctx, id, n.Recipient, letter, string(n.Kind), acct.ID)
}

// ErrTypeUnrenderable is the error type of an event or a letter that
// cannot be rendered (data that does not decode, a template that fails):
// the same input fails the same way, so it is not retried.
const ErrTypeUnrenderable = "Unrenderable"

// unrenderable makes a rendering error final.
func unrenderable(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeUnrenderable, err)
}

// release gives a claimed message back after err, so the activity's retry
// sends it.
func (a *Mail) release(ctx context.Context, id string, err error) error {
	if rerr := a.DB.ReleaseEmail(ctx, id); rerr != nil {
		a.Logger.ErrorContext(ctx, "email claim not released: the message will not be retried", "email_id", id, "error", rerr)
	}
	return err
}
