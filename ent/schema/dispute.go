package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/payments-platform/payments/internal/disputes"
)

// Dispute is the read model and durable record of one dispute. Its
// workflow (dispute/<id>) inserts it, with its amount taken from the
// payment's balance in the same transaction (store.CreateDispute), and is
// its single writer from then on, with versioned saves as for payments.
type Dispute struct {
	ent.Schema
}

// Annotations pins the MySQL charset and the money invariants.
func (Dispute) Annotations() []schema.Annotation {
	return append(tableOptions(), entsql.Checks(map[string]string{
		"disputes_amount_check":  "amount > 0",
		"disputes_held_check":    "amount_held >= 0 AND amount_held <= amount",
		"disputes_version_check": "version >= 1",
	}))
}

// Fields of the Dispute. Amounts are int64 minor units of currency.
func (Dispute) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").MaxLen(idMaxLen).NotEmpty().Immutable().
			Match(regexp.MustCompile(`^dp_[0-9a-z]+$`)),
		field.String("payment_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// The payment's parties, copied so that listings need no join.
		field.String("merchant_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		field.String("customer_id").MaxLen(idMaxLen).Default("").Immutable(),
		// Who opened it; the other party (the merchant for a network
		// dispute) is the respondent.
		field.Enum("opened_by").Values("customer", "merchant", "network").Immutable(),
		field.Enum("reason").Values("fraudulent", "duplicate", "product_not_received", "product_unacceptable",
			"subscription_canceled", "credit_not_processed", "unrecognized", "general").Immutable(),
		field.String("description").MaxRuneLen(5000).Default("").Immutable(),
		field.Int64("amount").Positive().Immutable(),
		// What the dispute took from the payment's balance when it opened
		// (amount_disputed): the amount, or less for a network dispute of
		// more than was left.
		field.Int64("amount_held").NonNegative().Immutable(),
		// ISO 4217 code, upper case: the payment's.
		field.String("currency").MaxLen(3).Immutable().
			Match(regexp.MustCompile(`^[A-Z]{3}$`)),
		field.Enum("status").Values("needs_response", "under_review", "won", "lost", "accepted", "withdrawn"),
		// The respondent's evidence, and whether it was finally submitted.
		field.JSON("evidence", disputes.Evidence{}),
		field.Bool("evidence_submitted").Default(false),
		// The claimant's evidence (none for a network dispute).
		field.JSON("claimant_evidence", disputes.Evidence{}),
		field.Bool("claimant_evidence_submitted").Default(false),
		field.Time("response_due_by").SchemaType(mysqlTime),
		field.String("outcome_note").MaxRuneLen(5000).Default(""),
		// How the outcome moved money: none (nothing to move, or not
		// decided), pending (the customer prevailed and the refund is being
		// made), refunded (it was), withdrawn (a network dispute's funds,
		// lost), reinstated (a network dispute's funds, won back).
		field.Enum("settlement").Values("none", "pending", "refunded", "withdrawn", "reinstated").Default("none"),
		// The gateway's id of the refund made when the customer prevailed.
		field.String("refund_reference").MaxLen(255).Default(""),
		// The gateway that holds the payment; for a network dispute, the
		// gateway's id of the dispute (Stripe's dp_...).
		field.String("gateway").MaxLen(50).Default("").Immutable(),
		field.String("gateway_reference").MaxLen(255).Default(""),
		field.String("workflow_id").MaxLen(255).Immutable(),
		// Every step so far, oldest first.
		field.JSON("timeline", []disputes.TimelineEntry{}),
		// Set while money the outcome must move has not moved (a refund
		// the gateway refused or never answered), for operators.
		field.Bool("needs_attention").Default(false),
		field.String("attention_reason").MaxRuneLen(1000).Default(""),
		// The workflow's state version; only a higher one may replace the
		// row. The insert is version 1.
		field.Int64("version").Positive(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
		field.Time("closed_at").SchemaType(mysqlTime).Optional().Nillable(),
	}
}

// Indexes serve the keyset listings (newest first by created_at, id) of one
// payment's, one customer's, one merchant's, one status's and everyone's
// disputes ("due before" is checked on the rows of the status's range: a
// (status, response_due_by) index made MariaDB range-scan it and sort), and
// the lookup of a gateway's event by the dispute's reference. The listing
// indexes are declared most selective first: a listing reads through the
// first whose leading columns its filter fixes (the store's listingIndex).
func (Dispute) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("payment_id", "created_at", "id"),
		index.Fields("customer_id", "created_at", "id"),
		index.Fields("merchant_id", "created_at", "id"),
		index.Fields("status", "created_at", "id"),
		index.Fields("created_at", "id"),
		index.Fields("gateway_reference"),
	}
}
