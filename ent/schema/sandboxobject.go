package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// SandboxObject is the state of the built-in sandbox gateway, which plays
// the part of an external provider: its payment intents, refunds, saved
// idempotent answers and test-token attempt counters. Keeping them in the
// database makes the sandbox behave the same whichever process serves a call
// and across restarts, as a real provider does. Only the sandbox reads and
// writes these rows; the platform's own records never depend on them.
type SandboxObject struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (SandboxObject) Annotations() []schema.Annotation {
	return append(tableOptions(), entsql.Checks(map[string]string{
		"sandbox_objects_version_check": "version >= 0",
	}))
}

// Fields of the SandboxObject.
func (SandboxObject) Fields() []ent.Field {
	return []ent.Field{
		// The sandbox's own id: a reference (pi_sbx_..., re_sbx_...) or a
		// namespaced key such as "idem:<key>".
		field.String("id").MaxLen(255).NotEmpty().Immutable(),
		// What the row holds, e.g. "payment_intent", "refund", "idempotency".
		field.String("kind").MaxLen(32).NotEmpty().Immutable(),
		// The platform payment it concerns ("" if none), so that intents can
		// be searched by payment as Stripe searches metadata.
		field.String("payment_id").MaxLen(idMaxLen).Default(""),
		// The object as the sandbox serialises it (JSON).
		field.Text("data"),
		// Bumped on every change; writers compare and swap on it.
		field.Int64("version").NonNegative().Default(0),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
	}
}

// Indexes serve the search of a payment's intents.
func (SandboxObject) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("payment_id", "kind"),
	}
}
