package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// ReconciliationCase records a disagreement between the platform and the
// gateway that money was involved in: a charge the gateway reports for a
// payment the parties were told had failed (refunded automatically), or a
// gateway state that contradicts a finished payment. Admins list them; the
// payment's workflow (or, once it has ended, its reconciliation workflow)
// writes them.
type ReconciliationCase struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation, and the amount's sign.
func (ReconciliationCase) Annotations() []schema.Annotation {
	return append(tableOptions(), entsql.Checks(map[string]string{
		"reconciliation_cases_amount_check": "amount >= 0",
	}))
}

// Fields of the ReconciliationCase.
func (ReconciliationCase) Fields() []ent.Field {
	return []ent.Field{
		// Chosen by the writer from the payment and what happened, so that a
		// retried write finds the case it made before.
		field.String("id").MaxLen(80).NotEmpty().Immutable().
			Match(regexp.MustCompile(`^rcn_[0-9a-z_]+$`)),
		field.String("payment_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// unexpected_charge: the gateway charged a payment recorded as failed
		// or canceled; contradicting_state: the gateway reports a state that
		// contradicts a finished payment and nothing was done automatically.
		field.Enum("kind").Values("unexpected_charge", "contradicting_state").Immutable(),
		field.Enum("status").Values("open", "resolved").Default("open"),
		// The payment's status when the case was opened.
		field.String("payment_status").MaxLen(30).Default(""),
		// What the gateway reported, e.g. "succeeded".
		field.String("gateway_status").MaxLen(30).Default(""),
		field.String("gateway").MaxLen(50).Default(""),
		field.String("gateway_reference").MaxLen(255).Default(""),
		// The gateway event that revealed it, if any.
		field.String("event_id").MaxLen(255).Default(""),
		// Minor units of currency: what the gateway took.
		field.Int64("amount").NonNegative().Default(0),
		field.String("currency").MaxLen(3).Default(""),
		// What the platform did about it, e.g. "refunded" (with the refund's
		// gateway reference) or "none".
		field.String("action").MaxLen(50).Default(""),
		field.String("refund_reference").MaxLen(255).Default(""),
		// A human explanation for the operator.
		field.String("details").MaxRuneLen(2000).Default(""),
		// How an admin closed it.
		field.String("resolution_note").MaxRuneLen(2000).Default(""),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
	}
}

// Indexes serve the admins' listing (newest first by created_at, id: all
// cases, one status's) and the cases of one payment, most selective first:
// a listing reads through the first whose leading columns its filter fixes
// (the store's listingIndex).
func (ReconciliationCase) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("payment_id", "created_at", "id"),
		index.Fields("status", "created_at", "id"),
		index.Fields("created_at", "id"),
	}
}
