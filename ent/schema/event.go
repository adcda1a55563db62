package schema

import (
	"encoding/json"
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Event is one announced change of a payment, refund or dispute (API.md's
// event types): the transactional outbox. The store writes it in the
// transaction that saves the change, one per new step of the object's
// timeline whose kind is an event type, so an event exists exactly when its
// change was committed. The webhook relay reads the events not yet
// dispatched and starts their deliveries.
type Event struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (Event) Annotations() []schema.Annotation {
	return tableOptions()
}

// Fields of the Event.
func (Event) Fields() []ent.Field {
	return []ent.Field{
		// evt_ + a ULID of created_at, derived from (object_id, sequence), so
		// that a repeated save finds the same event.
		field.String("id").MaxLen(idMaxLen).NotEmpty().Immutable().
			Match(regexp.MustCompile(`^evt_[0-9a-z]+$`)),
		// Such as payment.succeeded.
		field.String("type").MaxLen(64).NotEmpty().Immutable(),
		field.Enum("object_type").Values("payment", "refund", "dispute").Immutable(),
		field.String("object_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// The position of the step in the object's timeline, from 1: it
		// grows per object, so receivers can order an object's events.
		field.Int64("sequence").Positive().Immutable(),
		field.String("merchant_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		field.String("customer_id").MaxLen(idMaxLen).Default("").Immutable(),
		// The object's row as it was after the change (the store's JSON of
		// it); the API renders it as the object's API message.
		field.JSON("data", json.RawMessage{}).Immutable(),
		// When the change happened (the timeline step's time).
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		// When the relay started the event's deliveries and emails; nil
		// until then.
		field.Time("dispatched_at").SchemaType(mysqlTime).Optional().Nillable(),
	}
}

// Indexes serve the keyset listings (newest first by created_at, id) of one
// object's, one merchant's, one type's and everyone's events, most selective
// first (the store's listingIndex), the relay's oldest-first read of the
// events not dispatched, and make an object's step one event.
func (Event) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("object_id", "sequence").Unique(),
		index.Fields("object_id", "created_at", "id"),
		index.Fields("merchant_id", "created_at", "id"),
		index.Fields("type", "created_at", "id"),
		index.Fields("created_at", "id"),
		index.Fields("dispatched_at", "created_at"),
	}
}
