package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Delivery is one attempt to POST an event to a webhook endpoint: pending
// while it is being made, then succeeded or failed with the receiver's
// answer, and when the next attempt is due.
type Delivery struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (Delivery) Annotations() []schema.Annotation {
	return tableOptions()
}

// Fields of the Delivery.
func (Delivery) Fields() []ent.Field {
	return []ent.Field{
		// whd_ + a ULID derived from (workflow, attempt), so that a retried
		// activity finds the same row.
		field.String("id").MaxLen(idMaxLen).NotEmpty().Immutable().
			Match(regexp.MustCompile(`^whd_[0-9a-z]+$`)),
		field.String("event_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// No foreign key: the attempts outlive a deleted endpoint.
		field.String("endpoint_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// The endpoint's owner.
		field.String("account_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// 1 for the first attempt of a delivery.
		field.Int("attempt").Positive().Immutable(),
		field.Enum("status").Values("pending", "succeeded", "failed").Default("pending"),
		// The receiver's HTTP status; 0 when none came.
		field.Int("response_status").Default(0),
		// Why the attempt failed, for the merchant; never the response body.
		field.String("error").MaxRuneLen(500).Default(""),
		// The first KiB of the receiver's answer, for operators.
		field.String("response_body").MaxLen(1024).Default(""),
		field.Time("next_attempt_at").SchemaType(mysqlTime).Optional().Nillable(),
		// The workflow that makes the attempts.
		field.String("workflow_id").MaxLen(255).NotEmpty().Immutable(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
	}
}

// Indexes serve the keyset listings (newest first by created_at, id) of one
// event's, one endpoint's, one owner's and everyone's attempts, most
// selective first (the store's listingIndex).
func (Delivery) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("event_id", "created_at", "id"),
		index.Fields("endpoint_id", "created_at", "id"),
		index.Fields("account_id", "created_at", "id"),
		index.Fields("created_at", "id"),
	}
}
