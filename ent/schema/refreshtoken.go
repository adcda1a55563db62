package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// RefreshToken is one opaque refresh token, stored only as its hash. Every
// rotation creates a new token in the same family, so reuse of a rotated token
// can revoke every session that descends from the same login.
type RefreshToken struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (RefreshToken) Annotations() []schema.Annotation { return tableOptions() }

// Fields of the RefreshToken.
func (RefreshToken) Fields() []ent.Field {
	return []ent.Field{
		idField(),
		field.String("account_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// Shared by every token that descends from one login.
		field.String("family_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// Lower-case hex SHA-256 of the token; the token itself is never stored.
		field.String("token_hash").MaxLen(64).Match(regexp.MustCompile(sha256Hex)).
			Unique().Immutable(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("expires_at").SchemaType(mysqlTime).Immutable(),
		// Set once, when the token is exchanged for its successor.
		field.Time("rotated_at").SchemaType(mysqlTime).Optional().Nillable(),
		field.Time("revoked_at").SchemaType(mysqlTime).Optional().Nillable(),
		// The id of the successor token.
		field.String("replaced_by").MaxLen(idMaxLen).Optional().Nillable(),
		// When the family's login happened (copied along rotations), and
		// the User-Agent and client address of the request that created
		// this token: ListSessions shows them.
		field.Time("family_created_at").SchemaType(mysqlTime).Optional().Immutable(),
		field.String("user_agent").MaxRuneLen(512).Default("").Immutable(),
		field.String("client_ip").MaxLen(64).Default("").Immutable(),
	}
}

// Edges of the RefreshToken.
func (RefreshToken) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("account", Account.Type).Ref("refresh_tokens").Field("account_id").
			Unique().Required().Immutable(),
	}
}

// Indexes serve family revocation, revocation of all of an account's
// sessions, and the purge of expired tokens.
func (RefreshToken) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("family_id"),
		index.Fields("account_id"),
		// The live tokens of an account, newest first: its sessions.
		index.Fields("account_id", "created_at", "id"),
		index.Fields("expires_at"),
	}
}
