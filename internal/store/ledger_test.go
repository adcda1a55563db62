package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

const (
	debit  = ledgerentry.DirectionDebit
	credit = ledgerentry.DirectionCredit
)

func mustPost(t *testing.T, s *store.Store, j store.Journal) {
	t.Helper()
	if err := s.PostJournal(context.Background(), j); err != nil {
		t.Fatalf("PostJournal(%s): %v", j.ID, err)
	}
}

func wantLedgerRows(t *testing.T, s *store.Store, want int) {
	t.Helper()
	if n := s.Client.LedgerEntry.Query().CountX(context.Background()); n != want {
		t.Fatalf("%d ledger rows, want %d", n, want)
	}
}

func TestPostJournalRefusesBadJournalsAndWritesNothing(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		// A USD payment, so a journal of it in another currency is mixed.
		usd := newPayment(ids.New(ids.Account), "", t0)
		mustSave(t, s, usd, nil)
		good := func(edit func(j *store.Journal)) store.Journal {
			j := store.Journal{ID: usd.ID + "/capture", PaymentID: usd.ID, Currency: "USD", At: t0,
				Lines: []store.JournalLine{
					{Account: "gateway_clearing:sandbox", Direction: debit, Amount: 700},
					{Account: "merchant_balance:" + usd.MerchantID, Direction: credit, Amount: 600},
					{Account: "fees:platform", Direction: credit, Amount: 100},
				}}
			edit(&j)
			return j
		}
		tests := []struct {
			name  string
			j     store.Journal
			field string
		}{
			{"empty", good(func(j *store.Journal) { j.Lines = nil }), "journal.lines"},
			{"zero amount", good(func(j *store.Journal) {
				j.Lines[2].Amount = 0
				j.Lines[0].Amount = 600
			}), "journal.lines[2].amount"},
			{"negative amount", good(func(j *store.Journal) {
				// Balanced, but only thanks to the negative line.
				j.Lines[2].Amount = -100
				j.Lines[0].Amount = 500
			}), "journal.lines[2].amount"},
			{"unbalanced", good(func(j *store.Journal) { j.Lines[0].Amount = 701 }), "journal.lines"},
			{"all debits", good(func(j *store.Journal) {
				j.Lines = []store.JournalLine{{Account: "a", Direction: debit, Amount: 1}}
			}), "journal.lines"},
			{"overflowing sums", good(func(j *store.Journal) {
				j.Lines = []store.JournalLine{
					{Account: "a", Direction: debit, Amount: 1 << 62},
					{Account: "a", Direction: debit, Amount: 1 << 62},
					{Account: "b", Direction: credit, Amount: 1 << 62},
					{Account: "b", Direction: credit, Amount: 1 << 62},
				}
			}), "journal.lines[1].amount"},
			{"unknown direction", good(func(j *store.Journal) { j.Lines[1].Direction = "sideways" }), "journal.lines[1].direction"},
			{"no account", good(func(j *store.Journal) { j.Lines[1].Account = "" }), "journal.lines[1].account"},
			{"account too long", good(func(j *store.Journal) { j.Lines[1].Account = strings.Repeat("a", 121) }), "journal.lines[1].account"},
			{"no id", good(func(j *store.Journal) { j.ID = "" }), "journal.id"},
			{"id too long", good(func(j *store.Journal) { j.ID = strings.Repeat("j", 101) }), "journal.id"},
			{"no time", good(func(j *store.Journal) { j.At = time.Time{} }), "journal.at"},
			{"invalid currency", good(func(j *store.Journal) { j.Currency = "US" }), "journal.currency"},
			{"other currency than its payment", good(func(j *store.Journal) { j.Currency = "EUR" }), "journal.currency"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				wantInvalid(t, s.PostJournal(ctx, tt.j), tt.field)
				wantLedgerRows(t, s, 0)
			})
		}

		// The same journal, right, goes in; in EUR it would be fine for a
		// journal of no payment.
		mustPost(t, s, good(func(*store.Journal) {}))
		wantLedgerRows(t, s, 3)
		mustPost(t, s, good(func(j *store.Journal) { j.ID, j.PaymentID, j.Currency = "adjust/1", "", "eur" }))
		wantEntries(t, s, "adjust/1", "", "EUR", good(func(*store.Journal) {}).Lines, t0)
		if err := s.CheckLedger(ctx); err != nil {
			t.Fatalf("CheckLedger: %v", err)
		}
	})
}

func TestPostJournalIsIdempotentPerJournalID(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		j := store.Journal{ID: "pay_x/capture", PaymentID: "pay_x", Currency: "JPY", At: t0,
			Lines: []store.JournalLine{
				{Account: "gateway_clearing:sandbox", Direction: debit, Amount: big},
				{Account: "merchant_balance:acct_m", Direction: credit, Amount: big},
			}}

		// Concurrent first posts: all succeed, one writes.
		for i, err := range concurrently(10, func(int) error { return s.PostJournal(ctx, j) }) {
			if err != nil {
				t.Fatalf("concurrent post %d: %v", i, err)
			}
		}
		wantEntries(t, s, j.ID, "pay_x", "JPY", j.Lines, t0)

		// A replay, even at another time, is a no-op.
		replay := j
		replay.At = t0.Add(time.Hour)
		mustPost(t, s, replay)
		wantEntries(t, s, j.ID, "pay_x", "JPY", j.Lines, t0)

		edits := map[string]func(j *store.Journal){
			"other amounts": func(j *store.Journal) {
				j.Lines = []store.JournalLine{
					{Account: "gateway_clearing:sandbox", Direction: debit, Amount: 1},
					{Account: "merchant_balance:acct_m", Direction: credit, Amount: 1},
				}
			},
			"other account": func(j *store.Journal) {
				j.Lines = []store.JournalLine{
					{Account: "gateway_clearing:stripe", Direction: debit, Amount: big},
					{Account: "merchant_balance:acct_m", Direction: credit, Amount: big},
				}
			},
			"swapped lines": func(j *store.Journal) {
				j.Lines = []store.JournalLine{j.Lines[1], j.Lines[0]}
			},
			"extra lines": func(j *store.Journal) {
				j.Lines = append(j.Lines[:2:2],
					store.JournalLine{Account: "a", Direction: debit, Amount: 1},
					store.JournalLine{Account: "b", Direction: credit, Amount: 1})
			},
			"other currency": func(j *store.Journal) { j.Currency = "KWD" },
			"other payment":  func(j *store.Journal) { j.PaymentID = "pay_y" },
		}
		for name, edit := range edits {
			t.Run(name, func(t *testing.T) {
				other := j
				edit(&other)
				err := s.PostJournal(ctx, other)
				wantErr(t, err, errs.ErrAlreadyExists, "journal pay_x/capture was already posted with different lines")
				wantLedgerRows(t, s, 2)
			})
		}
		if err := s.CheckLedger(ctx); err != nil {
			t.Fatalf("CheckLedger: %v", err)
		}
	})
}

func TestLedgerEntriesAreImmutableThroughEnt(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		j := store.Journal{ID: "pay_x/capture", Currency: "USD", At: t0, Lines: captureLines("acct_m", 1000)}
		mustPost(t, s, j)
		first := s.Client.LedgerEntry.Query().Where(ledgerentry.Line(0)).OnlyX(ctx)

		attempts := map[string]func() error{
			"Update": func() error {
				_, err := s.Client.LedgerEntry.Update().Where(ledgerentry.JournalID(j.ID)).Save(ctx)
				return err
			},
			"UpdateOne": func() error {
				_, err := s.Client.LedgerEntry.UpdateOne(first).Save(ctx)
				return err
			},
			"UpdateOneID": func() error {
				_, err := s.Client.LedgerEntry.UpdateOneID(first.ID).Save(ctx)
				return err
			},
			"Delete": func() error {
				_, err := s.Client.LedgerEntry.Delete().Exec(ctx)
				return err
			},
			"DeleteOne": func() error { return s.Client.LedgerEntry.DeleteOne(first).Exec(ctx) },
			"DeleteOneID": func() error {
				return s.Client.LedgerEntry.DeleteOneID(first.ID).Exec(ctx)
			},
			"Delete in a transaction": func() error {
				tx, err := s.Client.Tx(ctx)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				if _, err := tx.LedgerEntry.Delete().Where(ledgerentry.JournalID(j.ID)).Exec(ctx); err != nil {
					return err
				}
				return tx.Commit()
			},
		}
		for name, attempt := range attempts {
			t.Run(name, func(t *testing.T) {
				err := attempt()
				if err == nil || !strings.Contains(err.Error(), "LedgerEntry rows are immutable") {
					t.Fatalf("error = %v, want the immutability hook's", err)
				}
				wantEntries(t, s, j.ID, "", "USD", j.Lines, t0)
			})
		}
	})
}

// insertRaw writes a ledger row behind the store's back, as a buggy or
// malicious writer with database access could.
func insertRaw(ctx context.Context, s *store.Store, journalID string, line int, currency string, dir ledgerentry.Direction, amount int64) error {
	_, err := s.Client.ExecContext(ctx,
		"INSERT INTO ledger_entries (journal_id, line, payment_id, account, currency, direction, amount, created_at) "+
			"VALUES (?, ?, '', 'rogue', ?, ?, ?, ?)",
		journalID, line, currency, string(dir), amount, t0)
	return err
}

func TestCheckLedger(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.CheckLedger(ctx); err != nil {
			t.Fatalf("CheckLedger on an empty ledger: %v", err)
		}
		// Balanced journals in currencies of every exponent.
		for i, cur := range []string{"USD", "JPY", "KWD"} {
			mustPost(t, s, store.Journal{ID: fmt.Sprint("pay_", i, "/capture"), Currency: cur, At: t0,
				Lines: captureLines("acct_m", big)})
			mustPost(t, s, store.Journal{ID: fmt.Sprint("pay_", i, "/refund"), Currency: cur, At: t0,
				Lines: refundLines("acct_m", 1)})
		}
		if err := s.CheckLedger(ctx); err != nil {
			t.Fatalf("CheckLedger on balanced data: %v", err)
		}

		// The database itself refuses non-positive amounts.
		for _, amount := range []int64{0, -5} {
			if err := insertRaw(ctx, s, "rogue/0", 0, "USD", debit, amount); err == nil {
				t.Fatalf("raw insert of amount %d succeeded, want the CHECK constraint to refuse it", amount)
			}
		}
		if err := s.CheckLedger(ctx); err != nil {
			t.Fatalf("CheckLedger after refused inserts: %v", err)
		}

		// An unbalanced row behind the store's back.
		if err := insertRaw(ctx, s, "rogue/1", 0, "USD", debit, 5); err != nil {
			t.Fatal(err)
		}
		err := s.CheckLedger(ctx)
		if err == nil || !containsAll(err.Error(),
			"currency USD: debits - credits = 5", "journal rogue/1 (USD): debits - credits = 5") {
			t.Fatalf("CheckLedger = %v, want USD and rogue/1 unbalanced by 5", err)
		}
		if strings.Contains(err.Error(), "JPY") || strings.Contains(err.Error(), "pay_") {
			t.Fatalf("CheckLedger = %v, names balanced currencies or journals", err)
		}

		// A journal balanced in sum but across currencies: each currency is
		// off, and the journal mixes them.
		if err := insertRaw(ctx, s, "rogue/2", 0, "JPY", debit, 7); err != nil {
			t.Fatal(err)
		}
		if err := insertRaw(ctx, s, "rogue/2", 1, "KWD", credit, 7); err != nil {
			t.Fatal(err)
		}
		err = s.CheckLedger(ctx)
		if err == nil || !containsAll(err.Error(),
			"currency JPY: debits - credits = 7", "currency KWD: debits - credits = -7",
			"journal rogue/2 (JPY): debits - credits = 7", "journal rogue/2 (KWD): debits - credits = -7",
			"journal rogue/2: lines in 2 currencies") {
			t.Fatalf("CheckLedger = %v, want rogue/2 reported", err)
		}
	})
}

func TestAccountBalance(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		merchant, customer := "merchant_balance:acct_m", "customer_funding:acct_c"
		// A customer pays big in USD and 500 in EUR, the merchant refunds
		// 1 USD, and a fee goes to the platform.
		mustPost(t, s, store.Journal{ID: "pay_1/capture", Currency: "USD", At: t0, Lines: []store.JournalLine{
			{Account: customer, Direction: debit, Amount: big},
			{Account: merchant, Direction: credit, Amount: big - 30},
			{Account: "platform_fees", Direction: credit, Amount: 30},
		}})
		mustPost(t, s, store.Journal{ID: "pay_1/refund/re_1", Currency: "USD", At: t0, Lines: []store.JournalLine{
			{Account: merchant, Direction: debit, Amount: 1},
			{Account: customer, Direction: credit, Amount: 1},
		}})
		mustPost(t, s, store.Journal{ID: "pay_2/capture", Currency: "EUR", At: t0, Lines: []store.JournalLine{
			{Account: customer, Direction: debit, Amount: 500},
			{Account: merchant, Direction: credit, Amount: 500},
		}})
		wantBalance(t, s, customer, "USD", big-1)
		wantBalance(t, s, merchant, "USD", -(big - 30 - 1))
		wantBalance(t, s, "platform_fees", "usd", -30)
		wantBalance(t, s, merchant, "EUR", -500)
		wantBalance(t, s, customer, "EUR", 500)
		wantBalance(t, s, merchant, "JPY", 0)
		wantBalance(t, s, "merchant_balance:acct_unknown", "USD", 0)
		// Every currency at once: the same figures.
		all, err := s.AccountBalances(context.Background(), merchant)
		if err != nil || len(all) != 2 || all["USD"] != -(big-30-1) || all["EUR"] != -500 {
			t.Fatalf("AccountBalances(merchant) = %v %v", all, err)
		}
		if none, err := s.AccountBalances(context.Background(), "merchant_balance:acct_unknown"); err != nil || len(none) != 0 {
			t.Fatalf("AccountBalances(unknown) = %v %v", none, err)
		}
		if err := s.CheckLedger(context.Background()); err != nil {
			t.Fatalf("CheckLedger: %v", err)
		}
	})
}

func TestDatabaseRefusesInconsistentPayments(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rec := newPayment(ids.New(ids.Account), "", t0)
		rec.AmountReceived = rec.Amount
		mustSave(t, s, rec, nil)
		for _, set := range []string{
			"amount = -1",
			"amount_refunded = amount_received + 1",
			"amount_disputed = amount_received + 1",
			"amount_received = amount + 1",
			"amount_capturable = -1",
		} {
			if _, err := s.Client.ExecContext(ctx, "UPDATE payments SET "+set+" WHERE id = ?", rec.ID); err == nil {
				t.Fatalf("raw UPDATE SET %s succeeded, want a CHECK constraint to refuse it", set)
			}
		}
		wantPayment(t, "after refused raw updates", s.Client.Payment.GetX(ctx, rec.ID), rec)
		if _, err := s.Client.ExecContext(ctx, "UPDATE payments SET amount_refunded = 1 WHERE id = ?", rec.ID); err != nil {
			t.Fatalf("a consistent raw update failed: %v", err)
		}
	})
}
