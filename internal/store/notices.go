package store

import (
	"context"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
)

// noticePrefix prefixes account notice ids.
const noticePrefix = "ntc_"

// Notice is a letter owed to a person about their account (an
// AccountNotice row): the relay starts its email workflow.
type Notice struct {
	Kind accountnotice.Kind
	// AccountID is empty for a password reset asked by email.
	AccountID, Recipient string
	Data                 map[string]string
	At                   time.Time
}

func (n Notice) create(ctx context.Context, db *ent.Client) error {
	at := utc(n.At)
	if n.At.IsZero() {
		at = utc(time.Now())
	}
	c := db.AccountNotice.Create().
		SetID(ids.NewAt(noticePrefix, at)).SetKind(n.Kind).
		SetAccountID(n.AccountID).SetRecipient(normalizeEmail(n.Recipient)).
		SetCreatedAt(at)
	if len(n.Data) > 0 {
		c.SetData(n.Data)
	}
	if err := c.Exec(ctx); err != nil {
		return fmt.Errorf("notice %s: %w", n.Kind, err)
	}
	return nil
}

// AddNotice writes a notice on its own (a password reset request, a
// verification link sent again).
func (s *Store) AddNotice(ctx context.Context, n Notice) error {
	return n.create(ctx, s.Client)
}

// NoticeByID returns a notice, or NotFound.
func (s *Store) NoticeByID(ctx context.Context, id string) (*ent.AccountNotice, error) {
	n, err := s.Client.AccountNotice.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "notice")
	}
	return n, nil
}

// UndispatchedNotices returns up to limit notices the relay has not
// dispatched, oldest first.
func (s *Store) UndispatchedNotices(ctx context.Context, limit int) ([]*ent.AccountNotice, error) {
	ns, err := s.Client.AccountNotice.Query().
		Where(accountnotice.DispatchedAtIsNil()).
		Order(ent.Asc(accountnotice.FieldCreatedAt), ent.Asc(accountnotice.FieldID)).
		Limit(limit).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("undispatched notices: %w", err)
	}
	return ns, nil
}

// MarkNoticeDispatched records that the notice's email workflow started
// (the first time only, as MarkDispatched for events); NotFound for a
// notice that does not exist.
func (s *Store) MarkNoticeDispatched(ctx context.Context, id string, at time.Time) error {
	n, err := s.Client.AccountNotice.Update().
		Where(accountnotice.ID(id), accountnotice.DispatchedAtIsNil()).
		SetDispatchedAt(utc(at)).Save(ctx)
	if err == nil && n == 0 {
		var ok bool
		if ok, err = s.Client.AccountNotice.Query().Where(accountnotice.ID(id)).Exist(ctx); err == nil && !ok {
			return errs.NotFound("notice")
		}
	}
	if err != nil {
		return fmt.Errorf("mark notice %s dispatched: %w", id, err)
	}
	return nil
}
