package store

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/auditevent"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/internal/ids"
)

// The audit event types: every admin action and security event.
const (
	AuditRegistered           = "account.registered"
	AuditEmailVerified        = "account.email_verified"
	AuditEmailChangeRequested = "account.email_change_requested"
	AuditEmailChanged         = "account.email_changed"
	AuditPasswordChanged      = "account.password_changed"
	AuditPasswordResetAsked   = "account.password_reset_requested"
	AuditPasswordReset        = "account.password_reset"
	AuditLoginLocked          = "account.login_locked"
	AuditClosed               = "account.closed"
	AuditAnonymized           = "account.anonymized"
	AuditSuspended            = "account.suspended"
	AuditReactivated          = "account.reactivated"
	AuditAdminCreated         = "admin.created"
	AuditAPIKeyCreated        = "api_key.created"
	AuditAPIKeyRevoked        = "api_key.revoked"
	AuditSessionRevoked       = "session.revoked"
	// Admins' decisions made by workflows or on cases.
	AuditDisputeResolved        = "dispute.resolved"
	AuditReconciliationResolved = "reconciliation_case.resolved"
)

// auditPrefix prefixes audit event ids.
const auditPrefix = "aud_"

// Audit is one row of the audit trail: who did what to whom, from where,
// in which request. Detail holds ids and reason codes only, never a
// secret, a token, a password or an email address.
type Audit struct {
	// ID, when set, makes the row once-only: recording it again is a
	// no-op (RecordAudit). A new id otherwise.
	ID                          string
	Type                        string
	ActorID, APIKeyID, TargetID string
	ClientIP, RequestID         string
	Detail                      map[string]string
	At                          time.Time
}

// Of is a copy of a for another type and target, with detail.
func (a Audit) Of(typ, target string, detail map[string]string) Audit {
	a.Type, a.TargetID, a.Detail = typ, target, maps.Clone(detail)
	return a
}

// create inserts the row with db (a transaction's client, usually: the row
// is written with the change it records, or not at all).
func (a Audit) create(ctx context.Context, db *ent.Client) error {
	at := utc(a.At)
	if a.At.IsZero() {
		at = utc(time.Now())
	}
	id := a.ID
	if id == "" {
		id = ids.NewAt(auditPrefix, at)
	}
	c := db.AuditEvent.Create().
		SetID(id).SetType(a.Type).
		SetActorID(a.ActorID).SetAPIKeyID(a.APIKeyID).SetTargetID(a.TargetID).
		SetClientIP(truncateBytes(a.ClientIP, 64)).SetRequestID(truncateBytes(a.RequestID, 128)).
		SetCreatedAt(at)
	if len(a.Detail) > 0 {
		c.SetDetail(a.Detail)
	}
	if err := c.Exec(ctx); err != nil {
		return fmt.Errorf("audit %s: %w", a.Type, err)
	}
	return nil
}

// RecordAudit appends a row that records no change of its own (a login
// lockout, a reset request). A row with a given ID recorded before is left
// as it is.
func (s *Store) RecordAudit(ctx context.Context, a Audit) error {
	err := a.create(ctx, s.Client)
	if a.ID != "" && isUniqueViolation(err) {
		return nil
	}
	return err
}

// AuditID is the id of the one audit row about subject (a notice, say),
// for Audit.ID.
func AuditID(subject string, at time.Time) string {
	return ids.Derive(auditPrefix, utc(at), []byte(subject))
}

// Records are what a change writes besides itself, in its transaction:
// audit rows and account notices (emails owed).
type Records struct {
	Audits  []Audit
	Notices []Notice
}

// write inserts the records; target fills the audit rows' and notices'
// empty account ids.
func (r Records) write(ctx context.Context, tx *ent.Tx, target string) error {
	for _, a := range r.Audits {
		if a.TargetID == "" {
			a.TargetID = target
		}
		if err := a.create(ctx, tx.Client()); err != nil {
			return err
		}
	}
	for _, n := range r.Notices {
		if n.AccountID == "" {
			n.AccountID = target
		}
		if err := n.create(ctx, tx.Client()); err != nil {
			return err
		}
	}
	return nil
}

// AuditFilter selects audit rows; the zero value selects all.
type AuditFilter struct {
	ActorID, TargetID, Type     string
	CreatedAfter, CreatedBefore *time.Time
}

// ListAuditEvents returns one page of the trail, newest first.
func (s *Store) ListAuditEvents(ctx context.Context, f AuditFilter, p Page) ([]*ent.AuditEvent, error) {
	var w where
	w.eq(auditevent.FieldActorID, f.ActorID)
	w.eq(auditevent.FieldTargetID, f.TargetID)
	w.eq(auditevent.FieldType, f.Type)
	es, err := list(ctx, migrate.AuditEventsTable, w, Filter{CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore}, p, AuditCursor,
		func(ctx context.Context, q keyset) ([]*ent.AuditEvent, error) {
			return s.Client.AuditEvent.Query().Where(predicate.AuditEvent(q.Where)).
				Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list audit events")
	}
	return es, nil
}

// AuditCursor is an audit row's position in a list.
func AuditCursor(e *ent.AuditEvent) Cursor { return Cursor{e.CreatedAt, e.ID} }
