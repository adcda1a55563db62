package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// LoginThrottle counts recent failed logins for one throttle key (such as a
// hash of the email), so password guessing is slowed down without locking the
// owner out for long.
type LoginThrottle struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation and the non-negative count.
func (LoginThrottle) Annotations() []schema.Annotation {
	return append(tableOptions(), entsql.Checks(map[string]string{
		"login_throttles_failures_check": "failures >= 0",
	}))
}

// Fields of the LoginThrottle.
func (LoginThrottle) Fields() []ent.Field {
	return []ent.Field{
		// The throttle key chosen by the caller.
		field.String("id").MaxLen(128).NotEmpty().Immutable(),
		field.Int("failures").NonNegative().Default(0),
		field.Time("window_started_at").SchemaType(mysqlTime),
		field.Time("blocked_until").SchemaType(mysqlTime).Optional().Nillable(),
		field.Time("updated_at").SchemaType(mysqlTime),
	}
}

// Indexes serve the purge of idle rows.
func (LoginThrottle) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("updated_at"),
	}
}
