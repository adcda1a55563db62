package schema

import (
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Transaction is one money movement on a merchant's balance, as the history
// (TransactionService) lists it: a payment, a refund, a refund that failed
// after the gateway accepted it, a dispute's debit or its reversal. The
// store writes it in the transaction that saves its source (the payment,
// refund or dispute) and posts the ledger journal it summarises, so the
// history and the ledger cannot disagree; a movement that has not moved
// money yet (a pending payment, a refund the gateway has not accepted) has
// no journal.
type Transaction struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation.
func (Transaction) Annotations() []schema.Annotation {
	return append(tableOptions(), entsql.Checks(map[string]string{
		"transactions_amount_check": "amount <> 0",
	}))
}

// Fields of the Transaction.
func (Transaction) Fields() []ent.Field {
	return []ent.Field{
		// txn_ + a ULID of created_at, derived from (source_id, movement),
		// so that a repeated save finds the same row.
		field.String("id").MaxLen(idMaxLen).NotEmpty().Immutable().
			Match(regexp.MustCompile(`^txn_[0-9a-z]+$`)),
		field.Enum("type").Values("payment", "refund", "dispute").Immutable(),
		// What the movement is within its source: the payment itself, a
		// refund, a refund's failure (its money back on the balance), a
		// dispute's debit, its reversal (funds reinstated).
		field.Enum("movement").Values("payment", "refund", "refund_failure", "dispute", "dispute_reversal").Immutable(),
		// The payment, refund or dispute that moved the money.
		field.String("source_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// The payment the source concerns (the source itself for payments).
		field.String("payment_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		// In minor units of currency, signed from the merchant's balance:
		// positive when money comes in, negative when it leaves.
		field.Int64("amount"),
		// ISO 4217 code, upper case.
		field.String("currency").MaxLen(3).Immutable().
			Match(regexp.MustCompile(`^[A-Z]{3}$`)),
		field.Enum("status").Values("pending", "succeeded", "failed"),
		field.String("merchant_id").MaxLen(idMaxLen).NotEmpty().Immutable(),
		field.String("customer_id").MaxLen(idMaxLen).Default("").Immutable(),
		field.String("description").MaxRuneLen(1000).Default(""),
		// The ledger journal the movement posted; "" while none.
		field.String("journal_id").MaxLen(100).Default(""),
		field.String("workflow_id").MaxLen(255).Default("").Immutable(),
		// When the movement started; the history's order, never changed.
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
		field.Time("updated_at").SchemaType(mysqlTime),
	}
}

// Indexes serve the history's keyset listing, newest first by (created_at,
// id), within each scope (one merchant, one customer, everyone), so that
// every page is an index range read in order and never a sort of the
// matches. A merchant's index also carries every other filter column after
// the order, so that InnoDB checks type, status, currency and amount on the
// index entries (index condition pushdown) and reads only the rows of the
// page: a rare status costs index entries, not row lookups. Everyone's
// listing has status and type prefixes for the admins' usual filters. The
// listing indexes are declared most selective first: a listing reads
// through the first whose leading columns its filter fixes (the store's
// listingIndex), so a merchant looking up one customer reads the
// customer's few rows. (source_id, movement) makes a movement's row one.
func (Transaction) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("source_id", "movement").Unique(),
		index.Fields("customer_id", "created_at", "id"),
		// MySQL's names are at most 64 characters; the store's index hints
		// name it.
		index.Fields("merchant_id", "created_at", "id", "type", "status", "currency", "amount").
			StorageKey("transaction_merchant_id_created_at_id_filters"),
		index.Fields("status", "created_at", "id"),
		index.Fields("type", "created_at", "id"),
		index.Fields("created_at", "id"),
		index.Fields("journal_id"),
	}
}
