package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AccountNotice is a letter owed to a person about their account itself
// (verify your email, reset your password, your password changed, your
// account was suspended or closed): the outbox of account emails. It is
// written in the transaction of the change it announces (or, for a
// password reset request, whether or not the email has an account, so the
// request costs the same either way); the notification relay reads the
// notices not yet dispatched and starts their email workflows, which issue
// the letter's token (if it carries one) and send it once.
type AccountNotice struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (AccountNotice) Annotations() []schema.Annotation { return tableOptions() }

// Fields of the AccountNotice.
func (AccountNotice) Fields() []ent.Field {
	return []ent.Field{
		idField(),
		field.Enum("kind").Values(
			"verify_email", "password_reset", "password_changed", "email_change_requested",
			"suspended", "closed",
		).Immutable(),
		// The account; empty for a password reset asked for an email, which
		// the mailer looks up when it sends.
		field.String("account_id").MaxLen(idMaxLen).Default("").Immutable(),
		// Where the letter goes.
		field.String("recipient").MaxLen(254).NotEmpty().Immutable(),
		// What the letter says besides (a suspension's reason code, the
		// new address of an email change), and who asked (client address
		// and request id, for the audit row of a reset request).
		field.JSON("data", map[string]string{}).Optional().Immutable(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("dispatched_at").SchemaType(mysqlTime).Optional().Nillable(),
	}
}

// Indexes serve the relay's oldest-first read of the notices not
// dispatched (and the purge of those dispatched long ago), and an
// account's notices, which anonymization deletes.
func (AccountNotice) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("dispatched_at", "created_at"),
		index.Fields("account_id"),
	}
}
