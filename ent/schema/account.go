package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Account is a merchant, customer or admin: the tenant that owns every other
// object, and the identity behind logins and API keys.
type Account struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (Account) Annotations() []schema.Annotation { return tableOptions() }

// Fields of the Account.
func (Account) Fields() []ent.Field {
	return []ent.Field{
		idField(),
		// The store lower-cases emails, so the unique index makes them unique
		// regardless of case.
		field.String("email").MaxLen(254).NotEmpty().Unique(),
		// An argon2id encoded hash; never logged or printed.
		field.String("password_hash").MaxLen(255).NotEmpty().Sensitive(),
		field.Enum("role").Values("merchant", "customer", "admin"),
		field.String("display_name").MaxRuneLen(200).Default(""),
		field.String("business_name").MaxRuneLen(200).Default(""),
		// ISO 4217 code, upper case.
		field.String("default_currency").MaxLen(3).Default("USD").
			Match(regexp.MustCompile(`^[A-Z]{3}$`)),
		// closed is final: the owner closed it (CloseAccount).
		field.Enum("status").Values("active", "disabled", "closed").Default("active"),
		// Whether the owner proved the email is theirs (VerifyEmail).
		field.Bool("email_verified").Default(false),
		// A new email asked for by UpdateMe, waiting for its verification;
		// it replaces email when its token is used.
		field.String("pending_email").MaxLen(254).Default(""),
		// Why an admin suspended the account (a code: fraud,
		// terms_violation, excessive_disputes, requested_by_owner, other),
		// the admin's note (admins only), when and by whom; cleared when
		// it is reactivated.
		field.String("suspension_reason").MaxLen(40).Default(""),
		field.String("suspension_note").MaxRuneLen(1000).Default(""),
		field.Time("suspended_at").SchemaType(mysqlTime).Optional().Nillable(),
		field.String("suspended_by").MaxLen(idMaxLen).Default(""),
		// The email categories (payments, refunds, disputes) the account
		// turned off; none by default.
		field.JSON("email_opt_out", []string{}).Optional(),
		// When the owner closed the account. Closing frees the email for a
		// new registration at once (email becomes a placeholder) and keeps
		// the address in closed_email until the retention period ends; then
		// the maintenance workflow clears it and the names and sets
		// anonymized_at.
		field.Time("closed_at").SchemaType(mysqlTime).Optional().Nillable(),
		field.String("closed_email").MaxLen(254).Default(""),
		field.Time("anonymized_at").SchemaType(mysqlTime).Optional().Nillable(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
	}
}

// Indexes serve the admins' keyset listing of accounts (newest first by
// created_at, id) by role, by status and all, most selective first (the
// store's listingIndex).
func (Account) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("role", "created_at", "id"),
		index.Fields("status", "created_at", "id"),
		index.Fields("created_at", "id"),
		// The maintenance workflow's read of closed accounts past retention.
		index.Fields("closed_at"),
	}
}

// Edges of the Account. Sessions and keys die with their account.
func (Account) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("refresh_tokens", RefreshToken.Type).
			Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("api_keys", APIKey.Type).
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}
