package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// EmailMessage is the claim on one email: an event's message to one
// account. The mailer inserts it before it sends, and sends only when the
// insert was its own, so a retried activity never sends a message twice
// (at most once: a crash between the claim and the send loses that one
// message, and the row says so by staying "sending").
type EmailMessage struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (EmailMessage) Annotations() []schema.Annotation {
	return tableOptions()
}

// Fields of the EmailMessage.
func (EmailMessage) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		field.String("event_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		field.String("account_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// Replaced by a placeholder when a closed account is anonymized.
		field.String("recipient").MaxLen(320).NotEmpty(),
		field.String("subject").MaxRuneLen(300).Immutable(),
		field.Enum("status").Values("sending", "sent", "failed").Default("sending"),
		// Why sending failed; where a dev mailer wrote the message.
		field.String("detail").MaxRuneLen(1000).Default(""),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
	}
}

// Indexes make an event's message to an account one, and find an
// account's messages.
func (EmailMessage) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("event_id", "account_id").Unique(),
		// An account's messages, whose addresses anonymization replaces.
		index.Fields("account_id"),
	}
}
