package store

import (
	"context"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/delivery"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/ent/webhookendpoint"
	"github.com/payments-platform/payments/internal/errs"
)

// MaxEndpoints is how many webhook endpoints an account may have.
const MaxEndpoints = 16

// EndpointRecord is a new webhook endpoint; Secret is already sealed.
type EndpointRecord struct {
	ID, AccountID, URL, Description, Secret string
	AllMerchants                            bool
	EnabledEvents                           []string
	CreatedAt                               time.Time
}

// CreateEndpoint adds an endpoint, ResourceExhausted when the account has
// MaxEndpoints already. The account's row is locked meanwhile (MySQL), so
// two creations at once cannot both take the last place.
func (s *Store) CreateEndpoint(ctx context.Context, rec EndpointRecord) (*ent.WebhookEndpoint, error) {
	var created *ent.WebhookEndpoint
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		if _, err := s.lockAccount(ctx, tx, rec.AccountID); err != nil {
			return err
		}
		n, err := tx.WebhookEndpoint.Query().Where(webhookendpoint.AccountID(rec.AccountID)).Count(ctx)
		if err != nil {
			return err
		}
		if n >= MaxEndpoints {
			return errs.ResourceExhausted(fmt.Sprintf("an account has at most %d webhook endpoints; delete one first", MaxEndpoints))
		}
		created, err = tx.WebhookEndpoint.Create().
			SetID(rec.ID).SetAccountID(rec.AccountID).SetAllMerchants(rec.AllMerchants).
			SetURL(rec.URL).SetEnabledEvents(rec.EnabledEvents).SetDescription(rec.Description).
			SetSecret(rec.Secret).
			SetCreatedAt(utc(rec.CreatedAt)).SetUpdatedAt(utc(rec.CreatedAt)).
			Save(ctx)
		return err
	})
	if err != nil {
		return nil, wrap(err, "create webhook endpoint")
	}
	return created, nil
}

// EndpointByID returns one endpoint, NotFound when there is none.
func (s *Store) EndpointByID(ctx context.Context, id string) (*ent.WebhookEndpoint, error) {
	e, err := s.Client.WebhookEndpoint.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "webhook endpoint")
	}
	return e, nil
}

// ListEndpoints returns one page of an account's endpoints (everyone's for
// ""), newest first.
func (s *Store) ListEndpoints(ctx context.Context, accountID string, p Page) ([]*ent.WebhookEndpoint, error) {
	var w where
	w.eq(webhookendpoint.FieldAccountID, accountID)
	es, err := list(ctx, migrate.WebhookEndpointsTable, w, Filter{}, p, EndpointCursor,
		func(ctx context.Context, q keyset) ([]*ent.WebhookEndpoint, error) {
			return s.Client.WebhookEndpoint.Query().Where(predicate.WebhookEndpoint(q.Where)).
				Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list webhook endpoints")
	}
	return es, nil
}

// EndpointCursor is an endpoint's position in a list.
func EndpointCursor(e *ent.WebhookEndpoint) Cursor { return Cursor{e.CreatedAt, e.ID} }

// EndpointChange is an update of an endpoint: nil fields stay.
type EndpointChange struct {
	URL, Description *string
	EnabledEvents    []string
	// Disabled disables (true) or enables (false) the endpoint.
	Disabled *bool
	// Secret and PreviousSecret (sealed) rotate the signing secret, the
	// previous one signing until PreviousExpiresAt.
	Secret, PreviousSecret *string
	PreviousExpiresAt      *time.Time
	At                     time.Time
}

// UpdateEndpoint applies a change; NotFound when the endpoint is gone.
func (s *Store) UpdateEndpoint(ctx context.Context, id string, c EndpointChange) (*ent.WebhookEndpoint, error) {
	up := s.Client.WebhookEndpoint.UpdateOneID(id).SetUpdatedAt(utc(c.At))
	if c.URL != nil {
		up.SetURL(*c.URL)
	}
	if c.Description != nil {
		up.SetDescription(*c.Description)
	}
	if len(c.EnabledEvents) > 0 {
		up.SetEnabledEvents(c.EnabledEvents)
	}
	switch {
	case c.Disabled == nil:
	case *c.Disabled:
		up.SetStatus(webhookendpoint.StatusDisabled).SetDisabledReason(DisabledByOwner)
	default:
		up.SetStatus(webhookendpoint.StatusEnabled).SetDisabledReason("")
	}
	if c.Secret != nil {
		up.SetSecret(*c.Secret)
	}
	if c.PreviousSecret != nil {
		up.SetPreviousSecret(*c.PreviousSecret)
		if c.PreviousExpiresAt != nil {
			up.SetPreviousSecretExpiresAt(utc(*c.PreviousExpiresAt))
		} else {
			up.ClearPreviousSecretExpiresAt()
		}
	}
	e, err := up.Save(ctx)
	if err != nil {
		return nil, wrap(notFound(err, "webhook endpoint"), "update webhook endpoint "+id)
	}
	return e, nil
}

// Why an endpoint is disabled.
const (
	DisabledByOwner = "owner"
	DisabledGone    = "gone"
)

// DisableGoneEndpoint disables an endpoint whose receiver answered 410.
func (s *Store) DisableGoneEndpoint(ctx context.Context, id string, at time.Time) error {
	err := s.Client.WebhookEndpoint.Update().
		Where(webhookendpoint.ID(id), webhookendpoint.StatusEQ(webhookendpoint.StatusEnabled)).
		SetStatus(webhookendpoint.StatusDisabled).SetDisabledReason(DisabledGone).SetUpdatedAt(utc(at)).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("disable webhook endpoint %s: %w", id, err)
	}
	return nil
}

// DeleteEndpoint removes an endpoint; NotFound when there is none. Its
// deliveries' attempts stay, and its pending deliveries stop at their next
// attempt.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	if err := s.Client.WebhookEndpoint.DeleteOneID(id).Exec(ctx); err != nil {
		return wrap(notFound(err, "webhook endpoint"), "delete webhook endpoint "+id)
	}
	return nil
}

// EndpointsFor returns the enabled endpoints that receive a merchant's
// events: the merchant's own and the admins' (all merchants).
func (s *Store) EndpointsFor(ctx context.Context, merchantID string) ([]*ent.WebhookEndpoint, error) {
	es, err := s.Client.WebhookEndpoint.Query().
		Where(
			webhookendpoint.StatusEQ(webhookendpoint.StatusEnabled),
			webhookendpoint.Or(webhookendpoint.AccountID(merchantID), webhookendpoint.AllMerchants(true)),
		).
		Order(ent.Asc(webhookendpoint.FieldCreatedAt), ent.Asc(webhookendpoint.FieldID)).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("endpoints of %s: %w", merchantID, err)
	}
	return es, nil
}

// DeliveryRecord is one attempt as the delivery workflow records it.
type DeliveryRecord struct {
	ID, EventID, EndpointID, AccountID, WorkflowID string
	Attempt                                        int
	Status                                         delivery.Status
	ResponseStatus                                 int
	Error, ResponseBody                            string
	NextAttemptAt                                  *time.Time
	At                                             time.Time
}

// SaveDelivery inserts an attempt or updates it (a retried activity, the
// pending row RedeliverEvent wrote); created_at stays the first save's.
func (s *Store) SaveDelivery(ctx context.Context, rec DeliveryRecord) (*ent.Delivery, error) {
	c := s.Client.Delivery.Create().
		SetID(rec.ID).SetEventID(rec.EventID).SetEndpointID(rec.EndpointID).SetAccountID(rec.AccountID).
		SetWorkflowID(rec.WorkflowID).SetAttempt(rec.Attempt).
		SetStatus(rec.Status).SetResponseStatus(rec.ResponseStatus).
		SetError(truncateRunes(rec.Error, 500)).SetResponseBody(truncateBytes(rec.ResponseBody, 1024)).
		SetNillableNextAttemptAt(utcPtr(rec.NextAttemptAt)).
		SetCreatedAt(utc(rec.At)).SetUpdatedAt(utc(rec.At))
	err := c.OnConflictColumns(delivery.FieldID).
		Update(func(u *ent.DeliveryUpsert) {
			u.UpdateStatus().UpdateResponseStatus().UpdateError().UpdateResponseBody().UpdateUpdatedAt()
			if rec.NextAttemptAt != nil {
				u.UpdateNextAttemptAt()
			} else {
				u.ClearNextAttemptAt()
			}
		}).
		Exec(ctx)
	if err != nil {
		return nil, fmt.Errorf("save delivery %s: %w", rec.ID, err)
	}
	return s.DeliveryByID(ctx, rec.ID)
}

// DeliveryByID returns one attempt, NotFound when there is none.
func (s *Store) DeliveryByID(ctx context.Context, id string) (*ent.Delivery, error) {
	d, err := s.Client.Delivery.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "delivery")
	}
	return d, nil
}

// DeliveryFilter selects attempts; the zero value selects all.
type DeliveryFilter struct {
	AccountID, EventID, EndpointID string
}

// ListDeliveries returns one page of attempts, newest first.
func (s *Store) ListDeliveries(ctx context.Context, f DeliveryFilter, p Page) ([]*ent.Delivery, error) {
	var w where
	w.eq(delivery.FieldAccountID, f.AccountID)
	w.eq(delivery.FieldEventID, f.EventID)
	w.eq(delivery.FieldEndpointID, f.EndpointID)
	ds, err := list(ctx, migrate.DeliveriesTable, w, Filter{}, p, DeliveryCursor,
		func(ctx context.Context, q keyset) ([]*ent.Delivery, error) {
			return s.Client.Delivery.Query().Where(predicate.Delivery(q.Where)).
				Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list deliveries")
	}
	return ds, nil
}

// DeliveryCursor is an attempt's position in a list.
func DeliveryCursor(d *ent.Delivery) Cursor { return Cursor{d.CreatedAt, d.ID} }
