package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditEvent is one security event or admin action: who (actor) did what
// (type) to whom (target), when, from where (client address) and in which
// request. Rows are only ever inserted: the ledger's appendOnly hook
// refuses updates and deletes. Details hold ids and reason codes, never a secret, token or
// password.
type AuditEvent struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (AuditEvent) Annotations() []schema.Annotation { return tableOptions() }

// Fields of the AuditEvent.
func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		idField(),
		// Such as account.suspended (internal/store/audit.go lists them).
		field.String("type").MaxLen(64).NotEmpty().Immutable(),
		// The account that acted; empty for the platform itself (the
		// maintenance workflow) or an unauthenticated caller.
		field.String("actor_id").MaxLen(idMaxLen).Default("").Immutable(),
		// The API key the actor used, if any.
		field.String("api_key_id").MaxLen(idMaxLen).Default("").Immutable(),
		// The account acted on.
		field.String("target_id").MaxLen(idMaxLen).Default("").Immutable(),
		field.String("client_ip").MaxLen(64).Default("").Immutable(),
		field.String("request_id").MaxLen(128).Default("").Immutable(),
		field.JSON("detail", map[string]string{}).Optional().Immutable(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
	}
}

// Indexes serve the admins' keyset listing (newest first by created_at,
// id) by actor, by target, by type and all, most selective first (the
// store's listingIndex).
func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("target_id", "created_at", "id"),
		index.Fields("actor_id", "created_at", "id"),
		index.Fields("type", "created_at", "id"),
		index.Fields("created_at", "id"),
	}
}

// Hooks make the trail append-only through ent, as the ledger is.
func (AuditEvent) Hooks() []ent.Hook {
	return []ent.Hook{appendOnly}
}
