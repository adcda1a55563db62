package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/event"
	"github.com/payments-platform/payments/internal/events"
	"github.com/payments-platform/payments/internal/mail"
	"github.com/payments-platform/payments/internal/store"
)

// Mail holds the activity that emails an event to the parties.
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
		return refusedForGood(err)
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
			return refusedForGood(err)
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
		detail, err := a.Mailer.Send(ctx, mail.Message{
			From: a.From, To: acct.Email, Subject: letter.Subject, Text: letter.Text, HTML: letter.HTML,
			MessageID: id + "@" + domainOf(a.From), Date: a.now(),
		})
		if err != nil {
			if rerr := a.DB.ReleaseEmail(ctx, id); rerr != nil {
				a.Logger.ErrorContext(ctx, "email claim not released: the message will not be retried", "email_id", id, "error", rerr)
			}
			return fmt.Errorf("send %s to %s: %w", ev.Type, acct.ID, err)
		}
		if err := a.DB.EmailSent(ctx, id, detail, a.now()); err != nil {
			return err
		}
		a.Logger.InfoContext(ctx, "email sent", "event_id", ev.ID, "type", ev.Type, "account_id", acct.ID, "to", detail)
	}
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
