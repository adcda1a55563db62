package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/errs"

	// The schema has hooks (the ledger's append-only guard), so ent generates
	// the code that installs hooks, defaults and validators in this package,
	// which must be linked into every program that uses the client. The store
	// opens every client, so importing it here covers them all.
	_ "github.com/payments-platform/payments/ent/runtime"
)

// ledgerTxAttempts bounds the reruns of a transaction that posts a journal.
// A rerun follows a MySQL deadlock victim (concurrent first saves of one
// payment race for one new primary key) or a journal posted by a concurrent
// transaction between our read and our insert; each attempt was rolled back
// entirely, and the next one sees what the winner committed.
const ledgerTxAttempts = 8

// maxImbalances bounds how many unbalanced currencies and journals
// CheckLedger names in its error.
const maxImbalances = 20

// errJournalRace says a concurrent transaction posted the same journal id
// first; the transaction is rolled back and run again.
var errJournalRace = errors.New("journal posted concurrently")

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// JournalLine is one side of a money movement.
type JournalLine struct {
	Account   string
	Direction ledgerentry.Direction
	// Amount is positive, in minor units of the journal's currency.
	Amount int64
}

// Journal is a balanced set of ledger lines in one currency.
type Journal struct {
	// ID names the movement and makes posting it idempotent, e.g.
	// "pay_.../capture".
	ID string
	// PaymentID is the payment the movement concerns, or "".
	PaymentID string
	// Currency is an ISO 4217 code in any case; it is stored upper case.
	Currency string
	Lines    []JournalLine
	// At is when the money moved.
	At time.Time
}

// PostJournal appends a journal to the ledger, all lines or none. It refuses
// (InvalidArgument, nothing written) an empty journal, a line with a
// non-positive amount, an unknown direction or no account, a journal whose
// debits and credits differ, and a journal of a payment in another currency
// than the payment's. Posting a journal id again with identical lines (and
// currency and payment) is a no-op, with anything different AlreadyExists.
func (s *Store) PostJournal(ctx context.Context, j Journal) error {
	j = normalizeJournal(j)
	if err := validateJournal(j); err != nil {
		return err
	}
	err := s.ledgerTx(ctx, func(tx *ent.Tx) error {
		if j.PaymentID != "" {
			p, err := tx.Payment.Query().Where(payment.ID(j.PaymentID)).Select(payment.FieldCurrency).Only(ctx)
			switch {
			case ent.IsNotFound(err):
				// The payment's first save may follow; the ledger does not
				// depend on the read model.
			case err != nil:
				return fmt.Errorf("read payment: %w", err)
			case p.Currency != j.Currency:
				return errs.InvalidArgument("journal.currency",
					"journal %s is in %s, payment %s in %s", j.ID, j.Currency, j.PaymentID, p.Currency)
			}
		}
		return postJournal(ctx, tx, j)
	})
	if err != nil {
		return wrap(err, "post journal "+j.ID)
	}
	return nil
}

// postJournal writes a validated journal in tx unless it is there already.
func postJournal(ctx context.Context, tx *ent.Tx, j Journal) error {
	posted, err := tx.LedgerEntry.Query().
		Where(ledgerentry.JournalID(j.ID)).
		Order(ent.Asc(ledgerentry.FieldLine)).
		All(ctx)
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	if len(posted) > 0 {
		if !samePosting(posted, j) {
			return errs.AlreadyExists("journal %s was already posted with different lines", j.ID)
		}
		return nil
	}
	err = tx.LedgerEntry.MapCreateBulk(j.Lines, func(c *ent.LedgerEntryCreate, i int) {
		l := j.Lines[i]
		c.SetJournalID(j.ID).
			SetLine(i).
			SetPaymentID(j.PaymentID).
			SetAccount(l.Account).
			SetCurrency(j.Currency).
			SetDirection(l.Direction).
			SetAmount(l.Amount).
			SetCreatedAt(j.At)
	}).Exec(ctx)
	switch {
	case err == nil:
		return nil
	case isUniqueViolation(err):
		return errJournalRace
	case ent.IsValidationError(err):
		return invalid(err)
	}
	return fmt.Errorf("insert journal: %w", err)
}

// samePosting reports whether the stored lines of a journal are exactly j.
// The time is not compared: a retry may well compute it anew.
func samePosting(posted []*ent.LedgerEntry, j Journal) bool {
	if len(posted) != len(j.Lines) {
		return false
	}
	for i, e := range posted {
		l := j.Lines[i]
		if e.Line != i || e.PaymentID != j.PaymentID || e.Currency != j.Currency ||
			e.Account != l.Account || e.Direction != l.Direction || e.Amount != l.Amount {
			return false
		}
	}
	return true
}

func normalizeJournal(j Journal) Journal {
	j.Currency = strings.ToUpper(j.Currency)
	j.At = utc(j.At)
	return j
}

// validateJournal refuses what must never reach the ledger, before anything
// is written.
func validateJournal(j Journal) error {
	switch {
	case j.ID == "" || len(j.ID) > 100:
		return errs.InvalidArgument("journal.id", "a journal needs an id of 1 to 100 characters")
	case !currencyCode.MatchString(j.Currency):
		return errs.InvalidArgument("journal.currency", "journal %s: invalid currency %q", j.ID, j.Currency)
	case j.At.IsZero():
		return errs.InvalidArgument("journal.at", "journal %s has no time", j.ID)
	case len(j.Lines) == 0:
		return errs.InvalidArgument("journal.lines", "journal %s has no lines", j.ID)
	}
	var debits, credits int64
	for i, l := range j.Lines {
		field := fmt.Sprintf("journal.lines[%d]", i)
		switch {
		case l.Account == "" || len(l.Account) > 120:
			return errs.InvalidArgument(field+".account", "journal %s line %d needs an account of 1 to 120 characters", j.ID, i)
		case l.Amount <= 0:
			return errs.InvalidArgument(field+".amount", "journal %s line %d: amount %d is not positive", j.ID, i, l.Amount)
		}
		sum := &debits
		switch l.Direction {
		case ledgerentry.DirectionDebit:
		case ledgerentry.DirectionCredit:
			sum = &credits
		default:
			return errs.InvalidArgument(field+".direction", "journal %s line %d: invalid direction %q", j.ID, i, l.Direction)
		}
		if *sum > maxInt64-l.Amount {
			return errs.InvalidArgument(field+".amount", "journal %s: the %ss overflow", j.ID, l.Direction)
		}
		*sum += l.Amount
	}
	if debits != credits {
		return errs.InvalidArgument("journal.lines", "journal %s does not balance: debits %d, credits %d %s",
			j.ID, debits, credits, j.Currency)
	}
	return nil
}

const maxInt64 = 1<<63 - 1

// ledgerTx runs fn in a transaction, again after a deadlock or a journal
// race; see ledgerTxAttempts.
func (s *Store) ledgerTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, fn)
		retry := isDeadlock(err) || errors.Is(err, errJournalRace)
		switch {
		case !retry:
			return err
		case attempt == ledgerTxAttempts && errors.Is(err, errJournalRace):
			return errs.Aborted("the journal is being posted concurrently; retry")
		case attempt == ledgerTxAttempts:
			return err
		}
	}
}

// signedAmount is a ledger row's amount with debits positive and credits
// negative, as SQL.
var signedAmount = fmt.Sprintf("CASE WHEN %s = '%s' THEN %s ELSE -%s END",
	ledgerentry.FieldDirection, ledgerentry.DirectionDebit, ledgerentry.FieldAmount, ledgerentry.FieldAmount)

// CheckLedger verifies the ledger's invariants over every row, including
// rows written behind the store's back: for each currency and for each
// journal, debits equal credits, and no journal mixes currencies. It returns
// nil when they hold, and otherwise an error that names each offending
// currency and journal with debits minus credits. It reads the whole ledger;
// it is meant for tests and periodic audits, not for request paths.
func (s *Store) CheckLedger(ctx context.Context) error {
	checks := []struct {
		query  string
		format string
	}{{
		fmt.Sprintf("SELECT %[1]s, SUM(%[2]s) FROM %[3]s GROUP BY %[1]s HAVING SUM(%[2]s) <> 0 ORDER BY %[1]s",
			ledgerentry.FieldCurrency, signedAmount, ledgerentry.Table),
		"currency %s: debits - credits = %d",
	}, {
		fmt.Sprintf("SELECT %[1]s, %[2]s, SUM(%[3]s) FROM %[4]s GROUP BY %[1]s, %[2]s HAVING SUM(%[3]s) <> 0 ORDER BY %[1]s, %[2]s",
			ledgerentry.FieldJournalID, ledgerentry.FieldCurrency, signedAmount, ledgerentry.Table),
		"journal %s: debits - credits = %d",
	}, {
		fmt.Sprintf("SELECT %[1]s, COUNT(DISTINCT %[2]s) FROM %[3]s GROUP BY %[1]s HAVING COUNT(DISTINCT %[2]s) > 1 ORDER BY %[1]s",
			ledgerentry.FieldJournalID, ledgerentry.FieldCurrency, ledgerentry.Table),
		"journal %s: lines in %d currencies",
	}}
	var problems []string
	for _, c := range checks {
		found, more, err := s.scanImbalances(ctx, c.query)
		if err != nil {
			return fmt.Errorf("check ledger: %w", err)
		}
		for _, f := range found {
			problems = append(problems, fmt.Sprintf(c.format, f.key, f.n))
		}
		if more {
			problems = append(problems, "and more")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the ledger does not balance: %s", strings.Join(problems, "; "))
	}
	return nil
}

type imbalance struct {
	key string // "USD", or "journal (USD)"
	n   int64
}

// scanImbalances runs a query whose rows are one or two key columns and a
// number, and returns up to maxImbalances of them, and whether there were
// more.
func (s *Store) scanImbalances(ctx context.Context, query string) (found []imbalance, more bool, err error) {
	rows, err := s.Client.QueryContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, false, err
	}
	for rows.Next() {
		if len(found) == maxImbalances {
			return found, true, nil
		}
		var key, currency string
		var n int64
		dest := []any{&key, &n}
		if len(cols) == 3 {
			dest = []any{&key, &currency, &n}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, false, err
		}
		if currency != "" {
			key += " (" + currency + ")"
		}
		found = append(found, imbalance{key, n})
	}
	return found, false, rows.Err()
}

// AccountBalances is AccountBalance in every currency the account has
// entries in.
func (s *Store) AccountBalances(ctx context.Context, account string) (map[string]int64, error) {
	query := fmt.Sprintf("SELECT %s, COALESCE(SUM(%s), 0) FROM %s WHERE %s = ? GROUP BY %s",
		ledgerentry.FieldCurrency, signedAmount, ledgerentry.Table, ledgerentry.FieldAccount, ledgerentry.FieldCurrency)
	rows, err := s.Client.QueryContext(ctx, query, account)
	if err != nil {
		return nil, fmt.Errorf("balances of %s: %w", account, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var currency string
		var balance int64
		if err := rows.Scan(&currency, &balance); err != nil {
			return nil, fmt.Errorf("balances of %s: %w", account, err)
		}
		out[currency] = balance
	}
	return out, rows.Err()
}

// AccountBalance is the sum of an account's debits minus its credits in one
// currency (0 for an account without entries). Which sign means "owed to
// the account" depends on the account's kind.
func (s *Store) AccountBalance(ctx context.Context, account, currency string) (int64, error) {
	query := fmt.Sprintf("SELECT COALESCE(SUM(%s), 0) FROM %s WHERE %s = ? AND %s = ?",
		signedAmount, ledgerentry.Table, ledgerentry.FieldAccount, ledgerentry.FieldCurrency)
	rows, err := s.Client.QueryContext(ctx, query, account, strings.ToUpper(currency))
	if err != nil {
		return 0, fmt.Errorf("account balance: %w", err)
	}
	defer rows.Close()
	var balance int64
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("account balance: %w", err)
		}
		return 0, errors.New("account balance: no result row")
	}
	if err := rows.Scan(&balance); err != nil {
		return 0, fmt.Errorf("account balance: %w", err)
	}
	return balance, rows.Err()
}
