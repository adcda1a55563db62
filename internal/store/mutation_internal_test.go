package store

// Tests of unexported helpers, added where mutation testing (make mutate,
// docs/TESTING.md) found a changed line that no test noticed.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/internal/errs"
)

// openTestSQLite opens a store on a fresh SQLite file (storetest imports this
// package, so an internal test cannot use it).
func openTestSQLite(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "payments.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestLedgerTxAttempts: a transaction that keeps losing the journal race is
// run exactly ledgerTxAttempts times and then refused as Aborted; one that
// keeps being a deadlock victim gets the deadlock back after as many runs;
// one that loses once and then wins succeeds.
func TestLedgerTxAttempts(t *testing.T) {
	s := openTestSQLite(t)
	ctx := context.Background()
	errTooMany := errors.New("run more often than ledgerTxAttempts")
	keepFailing := func(fail error) (func(*ent.Tx) error, *int) {
		calls := 0
		return func(*ent.Tx) error {
			calls++
			if calls > ledgerTxAttempts {
				return errTooMany // ends a runaway loop
			}
			return fail
		}, &calls
	}

	fn, calls := keepFailing(errJournalRace)
	err := s.ledgerTx(ctx, fn)
	if !errors.Is(err, errs.ErrAborted) || *calls != ledgerTxAttempts {
		t.Fatalf("journal race every time: %v after %d runs, want Aborted after %d", err, *calls, ledgerTxAttempts)
	}

	deadlock := &mysql.MySQLError{Number: mysqlDeadlock, Message: "Deadlock found when trying to get lock"}
	fn, calls = keepFailing(deadlock)
	err = s.ledgerTx(ctx, fn)
	if !errors.Is(err, deadlock) || *calls != ledgerTxAttempts {
		t.Fatalf("deadlock every time: %v after %d runs, want the deadlock after %d", err, *calls, ledgerTxAttempts)
	}

	n := 0
	err = s.ledgerTx(ctx, func(*ent.Tx) error {
		if n++; n == 1 {
			return errJournalRace
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("race then success: %v after %d runs, want nil after 2", err, n)
	}

	other := errors.New("not retried")
	n = 0
	if err := s.ledgerTx(ctx, func(*ent.Tx) error { n++; return other }); !errors.Is(err, other) || n != 1 {
		t.Fatalf("other error: %v after %d runs, want it after 1", err, n)
	}
}

// TestValidateJournalSumBound: debits (and credits) may add up to exactly
// MaxInt64; one more minor unit is refused as an overflow.
func TestValidateJournalSumBound(t *testing.T) {
	line := func(account string, d ledgerentry.Direction, amount int64) JournalLine {
		return JournalLine{Account: account, Direction: d, Amount: amount}
	}
	j := Journal{ID: "j/bound", Currency: "USD", At: time.Unix(1, 0), Lines: []JournalLine{
		line("a", ledgerentry.DirectionDebit, maxInt64-1), line("b", ledgerentry.DirectionDebit, 1),
		line("c", ledgerentry.DirectionCredit, maxInt64-1), line("d", ledgerentry.DirectionCredit, 1),
	}}
	if err := validateJournal(j); err != nil {
		t.Fatalf("sums of exactly MaxInt64 refused: %v", err)
	}
	j.Lines[1].Amount, j.Lines[3].Amount = 2, 2
	if err := validateJournal(j); !errors.Is(err, errs.ErrInvalidArgument) {
		t.Fatalf("sums past MaxInt64: %v, want InvalidArgument", err)
	}
}

// TestCheckName finds the constraint's name in each driver's message.
func TestCheckName(t *testing.T) {
	for msg, want := range map[string]string{
		"constraint failed: CHECK constraint failed: payments_amount_check (275)":             "payments_amount_check",
		"Error 4025 (23000): CONSTRAINT `payments_amount_check` failed for `test`.`payments`": "payments_amount_check",
		"Error 3819 (HY000): Check constraint 'ledger_entries_amount_check' is violated.":     "ledger_entries_amount_check",
		"_check at the start": "_check",
		"no name here":        "check constraint",
		`pq: new row violates check constraint "x_check"`: "x_check",
	} {
		if got := checkName(errors.New(msg)); got != want {
			t.Errorf("checkName(%q) = %q, want %q", msg, got, want)
		}
	}
}

// TestIsCheckViolation recognises MySQL's and MariaDB's error numbers for a
// refused CHECK constraint, and no other.
func TestIsCheckViolation(t *testing.T) {
	for err, want := range map[error]bool{
		&mysql.MySQLError{Number: mysqlCheckViolated}:   true,
		&mysql.MySQLError{Number: mariadbCheckViolated}: true,
		&mysql.MySQLError{Number: mysqlDeadlock}:        false,
		errors.New("CHECK constraint failed"):           false,
	} {
		if got := isCheckViolation(err); got != want {
			t.Errorf("isCheckViolation(%v) = %v, want %v", err, got, want)
		}
	}
}

// TestOpenSQLiteKeepsExtraParameters: parameters after the path reach the
// driver, after the store's own, and win: synchronous is NORMAL (1) by
// default, FULL (2) when DATABASE_URL asks for it.
func TestOpenSQLiteKeepsExtraParameters(t *testing.T) {
	ctx := context.Background()
	for extra, want := range map[string]int{"": 1, "?_pragma=synchronous(FULL)": 2, "?_pragma=synchronous(OFF)": 0} {
		s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "payments.db")+extra)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := s.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		if got != want {
			t.Errorf("Open with %q: PRAGMA synchronous = %d, want %d", extra, got, want)
		}
	}
}

// TestDSNPasswordEdges: the password is what precedes the last '@' before
// the last '/', as the driver splits a DSN; after that '/' is the database.
func TestDSNPasswordEdges(t *testing.T) {
	for dsn, want := range map[string]string{
		"/user:pw@host":          "", // all of it is the database name
		"u:pw@tcp(h)/db":         "pw",
		"@tcp(h)/db":             "",
		"u:p@w@tcp(h)/db?x=/y":   "p@w",
		"no-slash-user:secret@h": "secret",
	} {
		if got := dsnPassword(dsn); got != want {
			t.Errorf("dsnPassword(%q) = %q, want %q", dsn, got, want)
		}
	}
}

// TestWithTxRetriesDeadlocksOnly: a deadlock victim is run again, up to
// maxTxAttempts runs in all; success and other errors end at once.
func TestWithTxRetriesDeadlocksOnly(t *testing.T) {
	s := openTestSQLite(t)
	ctx := context.Background()
	deadlock := &mysql.MySQLError{Number: mysqlDeadlock, Message: "Deadlock found when trying to get lock"}
	errTooMany := errors.New("run more often than maxTxAttempts")
	for _, tc := range []struct {
		name      string
		deadlocks int // runs that fail with a deadlock before one succeeds
		other     error
		wantRuns  int
		wantErr   error
	}{
		{"success", 0, nil, 1, nil},
		{"two deadlocks, then success", 2, nil, 3, nil},
		{"deadlocks throughout", 1 << 30, nil, maxTxAttempts, deadlock},
		{"another error", 0, errors.New("constraint"), 1, nil},
	} {
		runs := 0
		err := s.withTx(ctx, func(*ent.Tx) error {
			runs++
			switch {
			case runs > maxTxAttempts:
				return errTooMany
			case runs <= tc.deadlocks:
				return deadlock
			}
			return tc.other
		})
		want := tc.wantErr
		if tc.other != nil {
			want = tc.other
		}
		if runs != tc.wantRuns || !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%s: %v after %d runs, want %v after %d", tc.name, err, runs, want, tc.wantRuns)
		}
	}
}

// TestDriverErrorClassifiers check each MySQL error number and no other;
// the SQLite codes are exercised by the store tests.
func TestDriverErrorClassifiers(t *testing.T) {
	numbers := []uint16{mysqlDuplicateKey, mysqlNoReferenced, mysqlDeadlock, mysqlCheckViolated, 1146}
	for _, tc := range []struct {
		name string
		fn   func(error) bool
		yes  uint16
	}{
		{"isUniqueViolation", isUniqueViolation, mysqlDuplicateKey},
		{"isForeignKeyViolation", isForeignKeyViolation, mysqlNoReferenced},
		{"isDeadlock", isDeadlock, mysqlDeadlock},
	} {
		for _, n := range numbers {
			err := fmt.Errorf("wrapped: %w", &mysql.MySQLError{Number: n})
			if got := tc.fn(err); got != (n == tc.yes) {
				t.Errorf("%s(MySQL error %d) = %v", tc.name, n, got)
			}
		}
		if tc.fn(errors.New("Error 1213: Deadlock found")) {
			t.Errorf("%s(a plain error) = true", tc.name)
		}
	}
}

// TestWrap: domain errors pass as they are, since their message is for the
// caller; anything else gets the context.
func TestWrap(t *testing.T) {
	domain := errs.NotFound("payment")
	if got := wrap(domain, "read payment"); got != domain {
		t.Errorf("wrap(domain error) = %v, want it unchanged", got)
	}
	boom := errors.New("boom")
	if got := wrap(boom, "read payment"); got.Error() != "read payment: boom" || !errors.Is(got, boom) {
		t.Errorf("wrap(boom) = %v, want \"read payment: boom\" wrapping it", got)
	}
}

// TestThrottleBlockEdges: a policy with MaxFailures 0 never blocks, whatever
// its durations; doubling stops at the cap even when the cap is so large
// that one more doubling would overflow.
func TestThrottleBlockEdges(t *testing.T) {
	off := ThrottlePolicy{MaxFailures: 0, Window: time.Hour, BaseBlock: time.Minute, MaxBlock: time.Hour}
	if got := off.block(100); got != 0 {
		t.Errorf("MaxFailures 0: block(100) = %v, want 0", got)
	}
	huge := ThrottlePolicy{MaxFailures: 1, Window: time.Hour, BaseBlock: 1 << 61, MaxBlock: 1 << 62}
	for _, failures := range []int{1, 2, 3, 10} {
		want := time.Duration(1 << 62)
		if failures == 1 {
			want = 1 << 61
		}
		if got := huge.block(failures); got != want {
			t.Errorf("cap 2^62 ns: block(%d) = %v, want %v", failures, got, want)
		}
	}
}
