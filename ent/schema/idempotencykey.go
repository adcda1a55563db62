package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// IdempotencyKey records one Idempotency-Key of one account: the request it
// was first used with (by hash) and, once done, the response to replay. The
// unique (account_id, key) index is what makes concurrent duplicates lose.
type IdempotencyKey struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation and the non-negative code.
func (IdempotencyKey) Annotations() []schema.Annotation {
	return append(tableOptions(), entsql.Checks(map[string]string{
		"idempotency_keys_response_code_check": "response_code >= 0",
	}))
}

// Fields of the IdempotencyKey.
func (IdempotencyKey) Fields() []ent.Field {
	return []ent.Field{
		idField(),
		// The scope of the key: the caller's account id.
		field.String("account_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// The client's header value, compared byte for byte: VARBINARY on MySQL
		// because even binary collations ignore trailing spaces there.
		field.String("key").MaxLen(255).NotEmpty().Immutable().
			SchemaType(map[string]string{dialect.MySQL: "varbinary(255)"}),
		// The RPC procedure, e.g. "/payments.v1.PaymentService/CreatePayment".
		field.String("method").MaxLen(200).NotEmpty().Immutable(),
		// Lower-case hex SHA-256 of the canonical request.
		field.String("request_hash").MaxLen(64).Match(regexp.MustCompile(sha256Hex)).Immutable(),
		field.Enum("state").Values("in_progress", "completed").Default("in_progress"),
		// 0 is OK, otherwise the Connect error code.
		field.Int("response_code").NonNegative().Default(0),
		// The serialized response (or error) to replay, up to about 1 MiB; NULL
		// (nil) until completed.
		field.Bytes("response_body").Optional().
			SchemaType(map[string]string{dialect.MySQL: "mediumblob"}),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
		field.Time("expires_at").SchemaType(mysqlTime),
	}
}

// Indexes of the IdempotencyKey.
func (IdempotencyKey) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("account_id", "key").Unique(),
		index.Fields("expires_at"),
	}
}
