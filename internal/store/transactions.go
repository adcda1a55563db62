package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/ent/transaction"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
)

// The transaction history is a read model of the money movements on
// merchants' balances, one row per movement, written by the store in the
// database transaction that saves the movement's source (a payment, a
// refund, a dispute) and posts its ledger journal; it is never written
// anywhere else. A row is created when its source is (a pending payment or
// refund shows in the history before money moves), follows its source's
// status, and gains the journal's id in the transaction that posts the
// journal; a refund's failure after the gateway accepted it and a
// dispute's reversal are rows of their own, created with their journals.
// So every journal of a merchant's balance has exactly one row, with the
// merchant's side of the journal as its amount (CheckHistory verifies it).
//
// Reconciliation journals (money the gateway took for a payment recorded
// as failed, and its refund) never touch a merchant's balance; they are
// the reconciliation cases' and are not in the history.

// movementRow is a transaction row as its source's save derives it.
type movementRow struct {
	movement                                                        transaction.Movement
	typ                                                             transaction.Type
	sourceID, paymentID, merchantID, customerID, currency, workflow string
	// amount is signed from the merchant's balance.
	amount               int64
	status               transaction.Status
	description          string
	journalID            string
	createdAt, updatedAt time.Time
}

// TransactionID is the id of a movement's row: a ULID of the movement's
// time whose random part is derived from the source and the movement, so
// that every save of the source names the same row.
func TransactionID(sourceID string, movement transaction.Movement, createdAt time.Time) string {
	return ids.Derive(ids.Txn, utc(createdAt), []byte(sourceID+"/"+string(movement)))
}

// recordMovement inserts or updates a movement's row in tx: the status,
// amount and description follow the source; the journal id, once set, is
// kept.
func recordMovement(ctx context.Context, tx *ent.Tx, m movementRow) error {
	if m.amount == 0 {
		return fmt.Errorf("movement %s of %s has no amount", m.movement, m.sourceID)
	}
	c := tx.Transaction.Create().
		SetID(TransactionID(m.sourceID, m.movement, m.createdAt)).
		SetType(m.typ).SetMovement(m.movement).
		SetSourceID(m.sourceID).SetPaymentID(m.paymentID).
		SetMerchantID(m.merchantID).SetCustomerID(m.customerID).
		SetCurrency(m.currency).SetWorkflowID(m.workflow).
		SetAmount(m.amount).SetStatus(m.status).SetDescription(truncateRunes(m.description, 1000)).
		SetJournalID(m.journalID).
		SetCreatedAt(utc(m.createdAt)).SetUpdatedAt(utc(m.updatedAt))
	err := c.OnConflictColumns(transaction.FieldSourceID, transaction.FieldMovement).
		Update(func(u *ent.TransactionUpsert) {
			u.UpdateAmount().UpdateStatus().UpdateDescription().UpdateUpdatedAt()
			if m.journalID != "" {
				u.UpdateJournalID()
			}
		}).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record transaction of %s: %w", m.sourceID, err)
	}
	return nil
}

// recordMovements records the movement rows of a source after its save, in
// the transaction that posted j (nil: the save posted no journal): its own
// row, naming j when j is the movement's own journal (a capture, a refund,
// the funds a chargeback withdrew); and, when j reverses the movement (a
// refund that failed after it was accepted, a chargeback's funds
// reinstated), the reversal's row from reversal (nil for payments, which
// have none). A journal of neither kind names no row: it is not a movement
// truncateBytes is s cut to at most n bytes, on a rune boundary.
func truncateBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut]
}

// of a merchant's balance (CheckHistory would say so).
func recordMovements(ctx context.Context, tx *ent.Tx, sourceID string, j *Journal,
	own func(journalID string) movementRow, reversal func(Journal) movementRow,
) error {
	kind := ""
	if j != nil {
		kind = strings.TrimPrefix(j.ID, sourceID)
	}
	switch kind {
	case captureSuffix, refundSuffix, fundsWithdrawnSuffix:
		return recordMovement(ctx, tx, own(j.ID))
	case refundFailedSuffix, fundsReinstatedSuffix:
		if reversal == nil {
			break
		}
		if err := recordMovement(ctx, tx, own("")); err != nil {
			return err
		}
		return recordMovement(ctx, tx, reversal(*j))
	}
	return recordMovement(ctx, tx, own(""))
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// words writes an enum value for people: "product_not_received" is
// "product not received".
func words(v string) string { return strings.ReplaceAll(v, "_", " ") }

// paymentMovement is a payment's row: pending until it succeeds (the
// received amount, with the capture journal) or fails or is canceled
// (failed, with the amount asked: no money moved).
func paymentMovement(p *ent.Payment, journalID string) movementRow {
	m := movementRow{
		movement: transaction.MovementPayment, typ: transaction.TypePayment,
		sourceID: p.ID, paymentID: p.ID, merchantID: p.MerchantID, customerID: p.CustomerID,
		currency: p.Currency, workflow: p.WorkflowID, amount: p.Amount,
		status: transaction.StatusPending, journalID: journalID,
		createdAt: p.CreatedAt, updatedAt: p.UpdatedAt,
	}
	switch p.Status {
	case payment.StatusSucceeded:
		m.status = transaction.StatusSucceeded
		if p.AmountReceived > 0 {
			m.amount = p.AmountReceived
		}
	case payment.StatusFailed, payment.StatusCanceled:
		m.status = transaction.StatusFailed
	}
	m.description = p.Description
	if m.description == "" {
		m.description = "Payment"
		if p.MethodType == "mobile_money" {
			m.description = "Mobile money payment"
		} else if p.MethodType != "" {
			m.description = "Card payment"
		}
		if p.MethodBrand != "" && p.MethodLast4 != "" {
			m.description += fmt.Sprintf(" (%s •••• %s)", p.MethodBrand, p.MethodLast4)
		}
	}
	switch p.Status {
	case payment.StatusCanceled:
		m.description += " — canceled"
	case payment.StatusFailed:
		m.description += " — failed"
	}
	return m
}

// refundMovement is a refund's row: the amount leaving the balance,
// pending, succeeded, or failed (a refused, failed or canceled refund).
func refundMovement(r *ent.Refund, journalID string) movementRow {
	m := movementRow{
		movement: transaction.MovementRefund, typ: transaction.TypeRefund,
		sourceID: r.ID, paymentID: r.PaymentID, merchantID: r.MerchantID, customerID: r.CustomerID,
		currency: r.Currency, workflow: r.WorkflowID, amount: -r.Amount,
		status: transaction.StatusPending, journalID: journalID,
		createdAt: r.CreatedAt, updatedAt: r.UpdatedAt,
		description: "Refund of " + r.PaymentID,
	}
	switch r.Status {
	case refund.StatusSucceeded:
		m.status = transaction.StatusSucceeded
	case refund.StatusFailed, refund.StatusCanceled:
		m.status = transaction.StatusFailed
	}
	if r.Reason != refund.ReasonUnspecified && r.Reason != "" {
		m.description += " (" + words(string(r.Reason)) + ")"
	}
	if r.Status == refund.StatusCanceled {
		m.description += " — canceled"
	}
	return m
}

// refundFailureMovement is the row of a refund that failed after the
// gateway had accepted it: its amount is back on the balance.
func refundFailureMovement(r *ent.Refund, j Journal) movementRow {
	m := refundMovement(r, j.ID)
	m.movement, m.amount, m.status = transaction.MovementRefundFailure, r.Amount, transaction.StatusFailed
	m.createdAt, m.updatedAt = j.At, j.At
	m.description = "Refund " + r.ID + " failed at the gateway: the amount is back on the balance"
	if r.FailureReason != "" {
		m.description += " (" + r.FailureReason + ")"
	}
	return m
}

// disputeMovement is a dispute's debit. A network dispute's funds leave the
// balance when it opens (succeeded, with the withdrawal journal); a
// dispute opened on the platform is pending while open, succeeded when the
// customer prevailed and was refunded, and failed when it closed with the
// money staying with the merchant.
func disputeMovement(d *ent.Dispute, journalID string) movementRow {
	m := movementRow{
		movement: transaction.MovementDispute, typ: transaction.TypeDispute,
		sourceID: d.ID, paymentID: d.PaymentID, merchantID: d.MerchantID, customerID: d.CustomerID,
		currency: d.Currency, workflow: d.WorkflowID, amount: -d.AmountHeld,
		status: transaction.StatusPending, journalID: journalID,
		createdAt: d.CreatedAt, updatedAt: d.UpdatedAt,
		description: "Dispute of " + d.PaymentID + " (" + words(string(d.Reason)) + ")",
	}
	switch {
	case d.OpenedBy == dispute.OpenedByNetwork:
		// The whole amount left the balance, even when less than that was
		// left of the payment to hold (amount_held).
		m.amount, m.status = -d.Amount, transaction.StatusSucceeded
		m.description = "Chargeback of " + d.PaymentID + " (" + words(string(d.Reason)) + ")"
	case d.Settlement == dispute.SettlementRefunded:
		m.status = transaction.StatusSucceeded
	case !IsOpen(d.Status) && d.Settlement != dispute.SettlementPending:
		m.status = transaction.StatusFailed
	}
	return m
}

// disputeReversalMovement is the row of a network dispute's funds coming
// back to the balance when the merchant won.
func disputeReversalMovement(d *ent.Dispute, j Journal) movementRow {
	m := disputeMovement(d, j.ID)
	m.movement, m.amount, m.status = transaction.MovementDisputeReversal, d.Amount, transaction.StatusSucceeded
	m.createdAt, m.updatedAt = j.At, j.At
	m.description = "Chargeback of " + d.PaymentID + " won: the funds are reinstated"
	return m
}

// TransactionFilter narrows ListTransactions; zero fields do not filter.
type TransactionFilter struct {
	// Party restricts to movements where this account is the merchant or
	// the customer; "" = everyone's (admins).
	Party                            string
	MerchantID, CustomerID, Currency string
	Type                             transaction.Type   // "" = any
	Status                           transaction.Status // "" = any
	CreatedAfter, CreatedBefore      *time.Time         // [after, before)
	// AmountMin and AmountMax bound the signed amount, inclusive.
	AmountMin, AmountMax *int64
}

// ListTransactions returns a page of the movements that match f, newest
// first (see list).
func (s *Store) ListTransactions(ctx context.Context, f TransactionFilter, p Page) ([]*ent.Transaction, error) {
	if f.AmountMin != nil && f.AmountMax != nil && *f.AmountMin > *f.AmountMax {
		return nil, errs.InvalidArgument("amount_min", "amount_min must not exceed amount_max")
	}
	var w where
	w.eq(transaction.FieldMerchantID, f.MerchantID)
	w.eq(transaction.FieldCustomerID, f.CustomerID)
	w.upper(transaction.FieldCurrency, f.Currency)
	w.eq(transaction.FieldType, string(f.Type))
	w.eq(transaction.FieldStatus, string(f.Status))
	w.intRange(transaction.FieldAmount, f.AmountMin, f.AmountMax)
	ts, err := list(ctx, migrate.TransactionsTable, w, Filter{f.Party, f.CreatedAfter, f.CreatedBefore}, p, TransactionCursor,
		func(ctx context.Context, q keyset) ([]*ent.Transaction, error) {
			return s.Client.Transaction.Query().Where(predicate.Transaction(q.Where)).Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list transactions")
	}
	return ts, nil
}

// TransactionCursor is a movement's position in a list.
func TransactionCursor(t *ent.Transaction) Cursor { return Cursor{t.CreatedAt, t.ID} }

// TransactionByID returns one movement, NotFound when there is none.
func (s *Store) TransactionByID(ctx context.Context, id string) (*ent.Transaction, error) {
	t, err := s.Client.Transaction.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "transaction")
	}
	return t, nil
}

// TransactionsOf returns the movements of one source, oldest first.
func (s *Store) TransactionsOf(ctx context.Context, sourceID string) ([]*ent.Transaction, error) {
	ts, err := s.Client.Transaction.Query().
		Where(transaction.SourceID(sourceID)).
		Order(ent.Asc(transaction.FieldCreatedAt), ent.Asc(transaction.FieldID)).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read transactions of %s: %w", sourceID, err)
	}
	return ts, nil
}

// JournalEntries returns a journal's ledger lines in order; none for "".
func (s *Store) JournalEntries(ctx context.Context, journalID string) ([]*ent.LedgerEntry, error) {
	if journalID == "" {
		return nil, nil
	}
	es, err := s.Client.LedgerEntry.Query().
		Where(ledgerentry.JournalID(journalID)).
		Order(ent.Asc(ledgerentry.FieldLine)).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read journal %s: %w", journalID, err)
	}
	return es, nil
}

// maxHistoryProblems bounds how many disagreements CheckHistory names.
const maxHistoryProblems = 20

// CheckHistory verifies that the history and the ledger agree, over every
// row: each journal that moves a merchant's balance has exactly one
// transaction, whose journal it is; each transaction with a journal
// names an existing journal, of its merchant, whose merchant balance line
// is the transaction's amount (credit positive, debit negative), in its
// currency. It returns nil when they agree, and otherwise an error naming
// the disagreements. It reads both tables whole: for tests and audits.
func (s *Store) CheckHistory(ctx context.Context) error {
	entries, err := s.Client.LedgerEntry.Query().
		Where(ledgerentry.AccountHasPrefix(merchantAccountPrefix)).
		All(ctx)
	if err != nil {
		return fmt.Errorf("check history: %w", err)
	}
	type side struct {
		account, currency string
		amount            int64
	}
	journals := map[string]side{}
	for _, e := range entries {
		sd := journals[e.JournalID]
		sd.account, sd.currency = e.Account, e.Currency
		if e.Direction == ledgerentry.DirectionCredit {
			sd.amount += e.Amount
		} else {
			sd.amount -= e.Amount
		}
		journals[e.JournalID] = sd
	}
	txns, err := s.Client.Transaction.Query().Where(transaction.JournalIDNEQ("")).All(ctx)
	if err != nil {
		return fmt.Errorf("check history: %w", err)
	}
	var problems []string
	problem := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	seen := map[string]string{}
	for _, t := range txns {
		sd, ok := journals[t.JournalID]
		switch {
		case seen[t.JournalID] != "":
			problem("journal %s has transactions %s and %s", t.JournalID, seen[t.JournalID], t.ID)
		case !ok:
			problem("transaction %s names journal %s, which moves no merchant balance", t.ID, t.JournalID)
		case sd.account != merchantAccountPrefix+t.MerchantID || sd.currency != t.Currency || sd.amount != t.Amount:
			problem("transaction %s is %d %s of %s; journal %s moves %d %s on %s",
				t.ID, t.Amount, t.Currency, t.MerchantID, t.JournalID, sd.amount, sd.currency, sd.account)
		}
		seen[t.JournalID] = t.ID
	}
	for id := range journals {
		if seen[id] == "" {
			problem("journal %s moves a merchant balance and has no transaction", id)
		}
	}
	if len(problems) > 0 {
		more := ""
		if len(problems) > maxHistoryProblems {
			problems, more = problems[:maxHistoryProblems], "; and more"
		}
		return fmt.Errorf("the history and the ledger disagree: %s%s", strings.Join(problems, "; "), more)
	}
	return nil
}

// merchantAccountPrefix starts a merchant's balance account in the ledger.
const merchantAccountPrefix = "merchant_balance:"
