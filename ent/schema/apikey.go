package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// APIKey is a merchant's secret API key, stored only as its hash; the prefix
// lets the owner recognise a key without the secret being kept.
type APIKey struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (APIKey) Annotations() []schema.Annotation { return tableOptions() }

// Fields of the APIKey.
func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		idField(),
		field.String("account_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		field.String("name").MaxRuneLen(100).NotEmpty(),
		// The first characters of the secret (e.g. "sk_live_ab12"), shown to users.
		field.String("prefix").MaxLen(32).NotEmpty().Immutable(),
		// Lower-case hex SHA-256 of the secret.
		field.String("key_hash").MaxLen(64).Match(regexp.MustCompile(sha256Hex)).
			Unique().Immutable(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("last_used_at").SchemaType(mysqlTime).Optional().Nillable(),
		field.Time("revoked_at").SchemaType(mysqlTime).Optional().Nillable(),
	}
}

// Edges of the APIKey.
func (APIKey) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("account", Account.Type).Ref("api_keys").Field("account_id").
			Unique().Required().Immutable(),
	}
}

// Indexes: (account_id, id) serves the newest-first keyset listing of one
// account's keys (and the foreign key).
func (APIKey) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("account_id", "created_at", "id"),
	}
}
