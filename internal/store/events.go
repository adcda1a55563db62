package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/delivery"
	"github.com/payments-platform/payments/ent/emailmessage"
	"github.com/payments-platform/payments/ent/event"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/internal/events"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/timeline"
)

// Events are the transactional outbox of the notifications: the store
// writes them in the transaction that saves a payment, refund or dispute,
// one per new step of its timeline whose kind is an event type, with the
// object's row as the event's data. A save that rolls back leaves no
// event; a save repeated (a retried local activity) finds its events there
// and adds none. The relay (workflows/notify) dispatches them after
// commit.

// eventSource is a saved object as recordEvents needs it.
type eventSource struct {
	objectType           event.ObjectType
	id                   string
	merchantID, customer string
	steps                []timeline.Entry
	// from is how many steps the object had before the save.
	from int
	// row is the saved row, the events' data.
	row any
}

// paymentEvents is a saved payment as recordEvents needs it; from is how
// many steps it had before the save.
func paymentEvents(p *ent.Payment, from int) eventSource {
	return eventSource{
		objectType: event.ObjectTypePayment, id: p.ID, merchantID: p.MerchantID, customer: p.CustomerID,
		steps: p.Timeline, from: from, row: p,
	}
}

// refundEvents is a saved refund as recordEvents needs it; from is how
// many steps it had before the save.
func refundEvents(r *ent.Refund, from int) eventSource {
	return eventSource{
		objectType: event.ObjectTypeRefund, id: r.ID, merchantID: r.MerchantID, customer: r.CustomerID,
		steps: r.Timeline, from: from, row: r,
	}
}

// disputeEvents is a saved dispute as recordEvents needs it; from is how
// many steps it had before the save.
func disputeEvents(d *ent.Dispute, from int) eventSource {
	return eventSource{
		objectType: event.ObjectTypeDispute, id: d.ID, merchantID: d.MerchantID, customer: d.CustomerID,
		steps: d.Timeline, from: from, row: d,
	}
}

// EventID is the id of an object's event at sequence: a ULID of the step's
// time whose random part is derived from the object and the sequence.
func EventID(objectID string, sequence int64, at time.Time) string {
	return ids.Derive(ids.Event, utc(at), []byte(objectID+"/"+strconv.FormatInt(sequence, 10)))
}

// recordEvents inserts, in tx, an event for each step of src from src.from
// on whose kind is an event type; an event already there is left as it is.
func recordEvents(ctx context.Context, tx *ent.Tx, src eventSource) error {
	var data json.RawMessage
	for i := max(src.from, 0); i < len(src.steps); i++ {
		step := src.steps[i]
		if !events.IsType(step.Kind) {
			continue
		}
		if data == nil {
			var err error
			if data, err = json.Marshal(src.row); err != nil {
				return fmt.Errorf("event data of %s: %w", src.id, err)
			}
		}
		seq := int64(i + 1)
		err := tx.Event.Create().
			SetID(EventID(src.id, seq, step.At)).
			SetType(step.Kind).
			SetObjectType(src.objectType).SetObjectID(src.id).
			SetSequence(seq).
			SetMerchantID(src.merchantID).SetCustomerID(src.customer).
			SetData(data).
			SetCreatedAt(utc(step.At)).
			OnConflictColumns(event.FieldObjectID, event.FieldSequence).Ignore().
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("record event %s of %s: %w", step.Kind, src.id, err)
		}
	}
	return nil
}

// EventFilter selects events; the zero value selects all.
type EventFilter struct {
	// MerchantID restricts to one merchant's events (about its payments
	// and their refunds and disputes); "" = everyone's (admins).
	MerchantID                  string
	Type                        string
	ObjectID                    string
	CreatedAfter, CreatedBefore *time.Time
}

// ListEvents returns one page of events, newest first.
func (s *Store) ListEvents(ctx context.Context, f EventFilter, p Page) ([]*ent.Event, error) {
	var w where
	w.eq(event.FieldMerchantID, f.MerchantID)
	w.eq(event.FieldType, f.Type)
	w.eq(event.FieldObjectID, f.ObjectID)
	es, err := list(ctx, migrate.EventsTable, w, Filter{CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore}, p, EventCursor,
		func(ctx context.Context, q keyset) ([]*ent.Event, error) {
			return s.Client.Event.Query().Where(predicate.Event(q.Where)).Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list events")
	}
	return es, nil
}

// EventCursor is an event's position in a list.
func EventCursor(e *ent.Event) Cursor { return Cursor{e.CreatedAt, e.ID} }

// EventByID returns one event, NotFound when there is none.
func (s *Store) EventByID(ctx context.Context, id string) (*ent.Event, error) {
	e, err := s.Client.Event.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "event")
	}
	return e, nil
}

// UndispatchedEvents returns up to limit events the relay has not
// dispatched, oldest first.
func (s *Store) UndispatchedEvents(ctx context.Context, limit int) ([]*ent.Event, error) {
	es, err := s.Client.Event.Query().
		Where(event.DispatchedAtIsNil()).
		Order(ent.Asc(event.FieldCreatedAt), ent.Asc(event.FieldID)).
		Limit(limit).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read undispatched events: %w", err)
	}
	return es, nil
}

// MarkDispatched records that an event's deliveries and emails started.
func (s *Store) MarkDispatched(ctx context.Context, id string, at time.Time) error {
	err := s.Client.Event.Update().
		Where(event.ID(id), event.DispatchedAtIsNil()).
		SetDispatchedAt(utc(at)).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("mark event %s dispatched: %w", id, err)
	}
	return nil
}

// Timeline kinds of the notifications NotificationSteps lists.
const (
	KindWebhookAttempt = "notification.webhook_attempt"
	KindEmailSent      = "notification.email_sent"
)

// NotificationSteps are the notifications about an object as timeline
// steps, oldest first: every webhook attempt for its events and every email
// sent, so that a detailed record shows what was announced, to whom, and
// how it went.
func (s *Store) NotificationSteps(ctx context.Context, objectID string) ([]timeline.Entry, error) {
	// Ids and types only: an event's data is a whole row (a dispute's
	// evidence, say), not needed here.
	evs, err := s.Client.Event.Query().Where(event.ObjectID(objectID)).Select(event.FieldID, event.FieldType).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", objectID, err)
	}
	if len(evs) == 0 {
		return nil, nil
	}
	typeOf := make(map[string]string, len(evs))
	evIDs := make([]string, 0, len(evs))
	for _, e := range evs {
		typeOf[e.ID] = e.Type
		evIDs = append(evIDs, e.ID)
	}
	ds, err := s.Client.Delivery.Query().Where(delivery.EventIDIn(evIDs...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("deliveries of %s: %w", objectID, err)
	}
	ms, err := s.Client.EmailMessage.Query().
		Where(emailmessage.EventIDIn(evIDs...), emailmessage.StatusEQ(emailmessage.StatusSent)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("emails of %s: %w", objectID, err)
	}
	var steps []timeline.Entry
	for _, d := range ds {
		note := fmt.Sprintf("%s to endpoint %s, attempt %d: %s", typeOf[d.EventID], d.EndpointID, d.Attempt, d.Status)
		if d.ResponseStatus != 0 {
			note += fmt.Sprintf(" (HTTP %d)", d.ResponseStatus)
		} else if d.Error != "" {
			note += " (" + d.Error + ")"
		}
		if d.NextAttemptAt != nil {
			note += ", next attempt " + d.NextAttemptAt.UTC().Format(time.RFC3339)
		}
		steps = append(steps, timeline.Entry{At: d.CreatedAt, Kind: KindWebhookAttempt, Actor: timeline.ActorSystem, Note: note})
	}
	for _, m := range ms {
		steps = append(steps, timeline.Entry{At: m.UpdatedAt, Kind: KindEmailSent, Actor: timeline.ActorSystem,
			Note: fmt.Sprintf("%s emailed to account %s", typeOf[m.EventID], m.AccountID)})
	}
	slices.SortStableFunc(steps, func(a, b timeline.Entry) int { return a.At.Compare(b.At) })
	return steps, nil
}
