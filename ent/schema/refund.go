package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/payments-platform/payments/internal/timeline"
)

// Refund is the read model and durable record of one refund. It is created,
// with its amount taken from the payment's refundable balance, in one
// transaction by the API (store.CreateRefund); from then on its workflow
// (refund/<id>) is its single writer, with versioned saves as for payments.
type Refund struct {
	ent.Schema
}

// Annotations pins the MySQL charset and the money invariants.
func (Refund) Annotations() []schema.Annotation {
	return append(tableOptions(), entsql.Checks(map[string]string{
		"refunds_amount_check":  "amount > 0",
		"refunds_version_check": "version >= 1",
	}))
}

// Fields of the Refund. The amount is int64 minor units of currency.
func (Refund) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").MaxLen(idMaxLen).NotEmpty().Immutable().
			Match(regexp.MustCompile(`^re_[0-9a-z]+$`)),
		field.String("payment_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// The payment's parties, copied so that listings need no join.
		field.String("merchant_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		field.String("customer_id").MaxLen(idMaxLen).Default("").Immutable(),
		field.Int64("amount").Positive().Immutable(),
		// ISO 4217 code, upper case: the payment's.
		field.String("currency").MaxLen(3).Immutable().
			Match(regexp.MustCompile(`^[A-Z]{3}$`)),
		field.Enum("status").Values("pending", "succeeded", "failed", "canceled"),
		field.Enum("reason").Values("unspecified", "duplicate", "fraudulent", "requested_by_customer", "other").
			Default("unspecified").Immutable(),
		// Why the gateway refused or failed it (its code), when failed.
		field.String("failure_reason").MaxLen(100).Default(""),
		// The gateway that holds the payment and the refund's id there.
		field.String("gateway").MaxLen(50).Default("").Immutable(),
		field.String("gateway_reference").MaxLen(255).Default(""),
		field.String("workflow_id").MaxLen(255).Immutable(),
		field.JSON("metadata", map[string]string{}).Immutable(),
		// Set while the refund's outcome is not known and its step is
		// retried on a timer, for operators.
		field.Bool("needs_attention").Default(false),
		field.String("attention_reason").MaxRuneLen(1000).Default(""),
		// The workflow's state version; only a higher one may replace the
		// row. The API's insert is version 1.
		field.Int64("version").Positive(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
		// What happened, oldest first (the store appends on save).
		field.JSON("timeline", []timeline.Entry{}).Optional(),
	}
}

// Indexes serve the keyset listings (newest first by created_at, id) of one
// payment's, one customer's, one merchant's, one status's and everyone's
// refunds, and the lookup of a gateway webhook by the refund's reference.
// The listing indexes are declared most selective first: a listing reads
// through the first whose leading columns its filter fixes (the store's
// listingIndex).
func (Refund) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("payment_id", "created_at", "id"),
		index.Fields("customer_id", "created_at", "id"),
		index.Fields("merchant_id", "created_at", "id"),
		index.Fields("status", "created_at", "id"),
		index.Fields("created_at", "id"),
		index.Fields("gateway_reference"),
	}
}
