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

// Payment is the read model and durable record of one payment. Its workflow
// is the single writer: it saves the whole state with an increasing version,
// and the store never lets an older version overwrite a newer one.
type Payment struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation, and the money invariants
// that must hold in every state: no negative amount, nothing captured beyond
// the amount, nothing refunded or disputed beyond what was received.
func (Payment) Annotations() []schema.Annotation {
	return append(tableOptions(), entsql.Checks(map[string]string{
		"payments_amount_check":            "amount >= 0",
		"payments_amount_capturable_check": "amount_capturable >= 0 AND amount_capturable <= amount",
		"payments_amount_received_check":   "amount_received >= 0 AND amount_received <= amount",
		"payments_amount_refunded_check":   "amount_refunded >= 0 AND amount_refunded <= amount_received",
		"payments_amount_disputed_check":   "amount_disputed >= 0 AND amount_disputed <= amount_received",
		// Refunds that have not failed and disputes hold parts of one
		// balance: together never more than was received.
		"payments_amount_returned_check": "amount_refunded + amount_disputed <= amount_received",
		"payments_version_check":         "version >= 0",
	}))
}

// Fields of the Payment. Amounts are int64 minor units of currency.
func (Payment) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").MaxLen(idMaxLen).NotEmpty().Immutable().
			Match(regexp.MustCompile(`^pay_[0-9a-z]+$`)),
		field.String("merchant_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// "" when a customer is not known (a merchant charging a guest).
		field.String("customer_id").MaxLen(idMaxLen).Default(""),
		field.Int64("amount").NonNegative(),
		// Authorized and not yet captured.
		field.Int64("amount_capturable").NonNegative().Default(0),
		field.Int64("amount_received").NonNegative().Default(0),
		// Refunds that have not failed or been canceled (pending ones
		// included), and disputed amounts: the payment's refundable balance
		// is amount_received minus both. Only the store's balance operations
		// change them (store.CreateRefund, store.SaveRefund,
		// store.CreateDispute, store.SaveDispute), never a save of
		// the payment's workflow.
		field.Int64("amount_refunded").NonNegative().Default(0),
		field.Int64("amount_disputed").NonNegative().Default(0),
		// The dispute open on the payment, "" when none is: at most one is
		// (store.CreateDispute sets it with a conditional UPDATE), and
		// refunds are refused while it is set.
		field.String("open_dispute_id").MaxLen(idMaxLen).Default(""),
		// ISO 4217 code, upper case.
		field.String("currency").MaxLen(3).Immutable().
			Match(regexp.MustCompile(`^[A-Z]{3}$`)),
		field.Enum("status").Values("processing", "requires_action", "requires_capture",
			"succeeded", "failed", "canceled"),
		field.Enum("capture_method").Values("automatic", "manual").Default("automatic"),
		// The gateway's token for the payment method (pm_..., mm:<provider>:<msisdn>);
		// never card data.
		field.String("payment_method").MaxLen(255).Default(""),
		// What the gateway told us about the method, for display.
		field.String("method_type").MaxLen(50).Default(""),
		field.String("method_brand").MaxLen(50).Default(""),
		field.String("method_last4").MaxLen(4).Default(""),
		field.Int32("method_exp_month").Range(0, 12).Default(0),
		field.Int32("method_exp_year").NonNegative().Default(0),
		field.String("method_provider").MaxLen(50).Default(""),
		field.String("failure_code").MaxLen(100).Default(""),
		field.String("failure_message").MaxRuneLen(1000).Default(""),
		// The step the customer must take (e.g. a 3-D Secure redirect).
		field.String("next_action_type").MaxLen(50).Default(""),
		field.String("next_action_url").MaxLen(2048).Default(""),
		field.Time("next_action_expires_at").SchemaType(mysqlTime).Optional().Nillable(),
		field.String("description").MaxRuneLen(1000).Default(""),
		field.JSON("metadata", map[string]string{}),
		// The gateway that holds the payment ("stripe", "sandbox") and its id there.
		field.String("gateway").MaxLen(50).Default(""),
		field.String("gateway_reference").MaxLen(255).Default(""),
		field.String("workflow_id").MaxLen(255).Default(""),
		// When an uncaptured authorization lapses.
		field.Time("authorization_expires_at").SchemaType(mysqlTime).Optional().Nillable(),
		// Set while money may be in an unknown state or a step is stuck (a
		// capture or cancel the gateway has not confirmed, a save the store
		// refused): the workflow retries on a durable timer, and operators
		// find these payments by it (and by the NeedsAttention search
		// attribute).
		field.Bool("needs_attention").Default(false),
		// What needs attention, for operators; "" when nothing does.
		field.String("attention_reason").MaxRuneLen(1000).Default(""),
		// The workflow's state version; only a higher one may replace the row.
		field.Int64("version").NonNegative(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
		// What happened, oldest first: each change of status, the capture,
		// attention raised and cleared (the store appends on save).
		field.JSON("timeline", []timeline.Entry{}).Optional(),
	}
}

// Indexes serve the keyset listings (newest first by created_at, id: the
// order every list shares) of one merchant's or one customer's payments, of
// one status, of one currency and of everyone's, so each page reads only its
// own rows in index order; and the lookup of a gateway's webhook by its
// reference. The listing indexes are declared most selective first: a
// listing reads through the first whose leading columns its filter fixes
// (the store's listingIndex).
func (Payment) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("customer_id", "created_at", "id"),
		index.Fields("merchant_id", "created_at", "id"),
		index.Fields("status", "created_at", "id"),
		index.Fields("currency", "created_at", "id"),
		index.Fields("created_at", "id"),
		index.Fields("gateway_reference"),
	}
}
