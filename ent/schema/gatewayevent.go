package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// GatewayEvent remembers a webhook event of a payment provider by the
// provider's event id, so a redelivered event is recognised and handled once.
type GatewayEvent struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (GatewayEvent) Annotations() []schema.Annotation { return tableOptions() }

// Fields of the GatewayEvent.
func (GatewayEvent) Fields() []ent.Field {
	return []ent.Field{
		// The provider's event id (e.g. Stripe's "evt_..."); the primary key
		// decides which of concurrent deliveries is the first.
		field.String("id").MaxLen(255).NotEmpty().Immutable(),
		field.String("type").MaxLen(100).NotEmpty().Immutable(),
		// The payment the event concerns, "" if none or not known.
		field.String("payment_id").MaxLen(idMaxLen).Default("").Immutable(),
		field.Time("received_at").SchemaType(mysqlTime).Immutable(),
	}
}

// Indexes serve the purge of old events.
func (GatewayEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("received_at"),
	}
}
