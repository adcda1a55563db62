package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AccountToken is a single-use token mailed to an account's owner: a link
// that verifies an email address, or one that resets the password. Only its
// hash is stored. A token is spent by its use, and superseded when one of
// the same purpose is issued for the account for a later request.
type AccountToken struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (AccountToken) Annotations() []schema.Annotation { return tableOptions() }

// Fields of the AccountToken.
func (AccountToken) Fields() []ent.Field {
	return []ent.Field{
		idField(),
		field.String("account_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		field.Enum("purpose").Values("verify_email", "reset_password").Immutable(),
		// The address the token was mailed to: for verify_email the address
		// it verifies (a pending new email, or the account's own).
		field.String("email").MaxLen(254).NotEmpty().Immutable(),
		// Lower-case hex SHA-256 of the token; the token itself is never stored.
		field.String("token_hash").MaxLen(64).Match(regexp.MustCompile(sha256Hex)).
			Unique().Immutable(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		// When the person asked for it (the notice's time): of two letters
		// sent out of order, the later request's token is the one that
		// works.
		field.Time("requested_at").SchemaType(mysqlTime).Immutable(),
		field.Time("expires_at").SchemaType(mysqlTime).Immutable(),
		// When it was used; when a newer token of its purpose replaced it.
		field.Time("used_at").SchemaType(mysqlTime).Optional().Nillable(),
		field.Time("superseded_at").SchemaType(mysqlTime).Optional().Nillable(),
	}
}

// Indexes serve superseding an account's earlier tokens of a purpose and
// the purge of expired tokens.
func (AccountToken) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("account_id", "purpose"),
		index.Fields("expires_at"),
	}
}
