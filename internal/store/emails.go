package store

import (
	"context"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/emailmessage"
	"github.com/payments-platform/payments/internal/ids"
)

// EmailClaim is an event's message to an account, claimed before sending.
type EmailClaim struct {
	EventID, AccountID, Recipient, Subject string
	// EventAt is the event's time (the message's id derives from it), At
	// the claim's.
	EventAt, At time.Time
}

// EmailID is the id of an event's message to an account.
func EmailID(eventID, accountID string, at time.Time) string {
	return ids.Derive("msg_", utc(at), []byte(eventID+"/"+accountID))
}

// ClaimEmail records that the message is being sent and reports whether
// this call made the claim: false when the message was claimed (sent, or
// being sent) before, and must not be sent again.
func (s *Store) ClaimEmail(ctx context.Context, c EmailClaim) (string, bool, error) {
	id := EmailID(c.EventID, c.AccountID, c.EventAt)
	err := s.Client.EmailMessage.Create().
		SetID(id).SetEventID(c.EventID).SetAccountID(c.AccountID).
		SetRecipient(c.Recipient).SetSubject(truncateRunes(c.Subject, 300)).
		SetCreatedAt(utc(c.At)).SetUpdatedAt(utc(c.At)).
		Exec(ctx)
	switch {
	case isUniqueViolation(err):
		return id, false, nil
	case err != nil:
		return "", false, fmt.Errorf("claim email %s: %w", id, err)
	}
	return id, true, nil
}

// ReleaseEmail drops a claim whose message the mail server did not accept,
// so a retry may send it.
func (s *Store) ReleaseEmail(ctx context.Context, id string) error {
	if _, err := s.Client.EmailMessage.Delete().Where(emailmessage.ID(id), emailmessage.StatusEQ(emailmessage.StatusSending)).Exec(ctx); err != nil {
		return fmt.Errorf("release email %s: %w", id, err)
	}
	return nil
}

// EmailSent records that the mail server accepted a claimed message, and
// where it went.
func (s *Store) EmailSent(ctx context.Context, id, detail string, at time.Time) error {
	err := s.Client.EmailMessage.UpdateOneID(id).
		SetStatus(emailmessage.StatusSent).SetDetail(truncateRunes(detail, 1000)).SetUpdatedAt(utc(at)).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("record email %s sent: %w", id, err)
	}
	return nil
}

// EmailsOf returns an event's messages.
func (s *Store) EmailsOf(ctx context.Context, eventID string) ([]*ent.EmailMessage, error) {
	ms, err := s.Client.EmailMessage.Query().Where(emailmessage.EventID(eventID)).
		Order(ent.Asc(emailmessage.FieldCreatedAt), ent.Asc(emailmessage.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("emails of %s: %w", eventID, err)
	}
	return ms, nil
}
