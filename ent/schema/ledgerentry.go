package schema

import (
	"context"
	"fmt"
	"regexp"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// LedgerEntry is one line of a double-entry journal: a debit or a credit of
// one account. A journal's lines balance (debits equal credits); rows are
// never changed or removed, so the ledger is its own audit trail and a
// correction is a new, reversing journal.
type LedgerEntry struct {
	ent.Schema
}

// Annotations pins the MySQL charset and collation and the positive amount.
func (LedgerEntry) Annotations() []schema.Annotation {
	return append(tableOptions(), entsql.Checks(map[string]string{
		"ledger_entries_amount_check": "amount > 0",
		"ledger_entries_line_check":   "line >= 0",
	}))
}

// Fields of the LedgerEntry; the id is an auto-increment integer. Every field
// is immutable, and the hook below refuses updates and deletes altogether.
func (LedgerEntry) Fields() []ent.Field {
	return []ent.Field{
		// The journal the line belongs to, e.g. "pay_.../capture"; posting the
		// same journal again is recognised by it.
		field.String("journal_id").MaxLen(100).NotEmpty().Immutable(),
		// The position of the line in its journal, from 0.
		field.Int("line").NonNegative().Immutable(),
		// The payment the journal concerns; "" for journals of no payment.
		field.String("payment_id").MaxLen(idMaxLen).Default("").Immutable(),
		// e.g. "gateway_clearing:sandbox", "merchant_balance:acct_...".
		field.String("account").MaxLen(120).NotEmpty().Immutable(),
		// ISO 4217 code, upper case.
		field.String("currency").MaxLen(3).Immutable().
			Match(regexp.MustCompile(`^[A-Z]{3}$`)),
		field.Enum("direction").Values("debit", "credit").Immutable(),
		field.Int64("amount").Positive().Immutable(),
		field.Time("created_at").SchemaType(mysqlTime).Immutable(),
	}
}

// Indexes: (journal_id, line) identifies a line and makes a journal
// postable once; payment_id serves a payment's ledger and (account,
// currency) an account's balance.
func (LedgerEntry) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("journal_id", "line").Unique(),
		index.Fields("payment_id"),
		index.Fields("account", "currency"),
	}
}

// Hooks make the ledger append-only through ent.
func (LedgerEntry) Hooks() []ent.Hook {
	return []ent.Hook{appendOnly}
}

// appendOnly refuses every mutation but a create. It keeps honest code
// honest; it cannot stop raw SQL, which is why the store can also check that
// the ledger balances.
func appendOnly(next ent.Mutator) ent.Mutator {
	return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
		if !m.Op().Is(ent.OpCreate) {
			return nil, fmt.Errorf("%s rows are immutable: %s refused", m.Type(), m.Op())
		}
		return next.Mutate(ctx, m)
	})
}
