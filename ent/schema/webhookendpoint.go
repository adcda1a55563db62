package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// WebhookEndpoint is a merchant's URL that receives signed events. Its
// signing secrets are kept encrypted (AES-256-GCM under a key derived from
// the platform's secret), as the platform must sign with them; during a
// rotation the previous secret signs too, until previous_secret_expires_at.
type WebhookEndpoint struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (WebhookEndpoint) Annotations() []schema.Annotation {
	return tableOptions()
}

// Fields of the WebhookEndpoint.
func (WebhookEndpoint) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").MaxLen(idMaxLen).NotEmpty().Immutable().
			Match(regexp.MustCompile(`^we_[0-9a-z]+$`)),
		// The owner: a merchant, whose payments' events it receives, or an
		// admin, whose endpoints receive every merchant's (all_merchants).
		field.String("account_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		field.Bool("all_merchants").Default(false).Immutable(),
		field.String("url").MaxLen(2048).NotEmpty(),
		// Event types, or "*".
		field.JSON("enabled_events", []string{}),
		field.String("description").MaxRuneLen(500).Default(""),
		field.Enum("status").Values("enabled", "disabled").Default("enabled"),
		// Why it is disabled: "owner" (UpdateWebhookEndpoint) or "gone" (the
		// receiver answered 410); "" while enabled.
		field.String("disabled_reason").MaxLen(32).Default(""),
		// The signing secret (whsec_...), encrypted.
		field.String("secret").MaxLen(255).NotEmpty().Sensitive(),
		// The secret before the last rotation, encrypted; it keeps signing
		// until previous_secret_expires_at.
		field.String("previous_secret").MaxLen(255).Default("").Sensitive(),
		field.Time("previous_secret_expires_at").SchemaType(mysqlTime).Optional().Nillable(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
	}
}

// Indexes serve the keyset listing of an account's endpoints and the
// relay's lookup of a merchant's.
func (WebhookEndpoint) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("account_id", "created_at", "id"),
		index.Fields("all_merchants"),
		index.Fields("created_at", "id"),
	}
}
