package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/ent/transaction"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// The listings promise (listing.go) that every page is an index range read
// in (created_at, id) order, never a scan or a sort of the matches. These
// tests hold MariaDB to it: on tables seeded with a realistic skew (one
// merchant with most rows), they capture the exact statements each listing
// runs, for every combination of scope, filters and cursor, and EXPLAIN
// them. A plan row of the listed table with type ALL, no key, "Using
// filesort", or after a cursor any access but a range, fails the test, and is reported with the query, the key MariaDB
// chose and its Extra, so that the indexes can be fixed.

// explainStore is a fresh MariaDB store; without PAYMENTS_TEST_MYSQL_DSN
// the test is skipped, saying so (storetest announces it once per package
// run, outside -v too).
func explainStore(t *testing.T) *store.Store {
	t.Helper()
	if strings.TrimSpace(os.Getenv(storetest.MySQLDSNEnv)) == "" {
		t.Logf("query plans not checked: %s is unset, and the plans this test checks are MariaDB's", storetest.MySQLDSNEnv)
	}
	return storetest.NewMySQL(t)
}

// statement is one statement a listing ran, with its arguments.
type statement struct {
	query string
	args  []any
}

// planRow is one row of EXPLAIN's answer.
type planRow struct {
	table, typ, possibleKeys, key, rows, extra string
}

func (r planRow) String() string {
	return fmt.Sprintf("type=%s key=%s rows=%s possible_keys=%s Extra=%q", r.typ, orNull(r.key), r.rows, r.possibleKeys, r.extra)
}

func orNull(s string) string {
	if s == "" {
		return "NULL"
	}
	return s
}

// explain runs EXPLAIN on a statement with its arguments bound.
func explain(ctx context.Context, s *store.Store, st statement) ([]planRow, error) {
	rows, err := s.Client.QueryContext(ctx, "EXPLAIN "+st.query, st.args...)
	if err != nil {
		return nil, fmt.Errorf("EXPLAIN %s %v: %w", st.query, st.args, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var plan []planRow
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		var r planRow
		for i, c := range cols {
			switch strings.ToLower(c) {
			case "table":
				r.table = vals[i].String
			case "type":
				r.typ = vals[i].String
			case "possible_keys":
				r.possibleKeys = vals[i].String
			case "key":
				r.key = vals[i].String
			case "rows":
				r.rows = vals[i].String
			case "extra":
				r.extra = vals[i].String
			}
		}
		plan = append(plan, r)
	}
	return plan, rows.Err()
}

// badPlan says what is wrong with a plan row of table, or "". A page after
// a cursor must be a range read that starts at the cursor: "ref" access on
// the scope's columns alone reads every row of the scope newer than the
// cursor first (seconds for a deep page of a large merchant).
func badPlan(table string, r planRow, afterCursor bool) string {
	if r.table != table {
		// Rows of no table: "Impossible WHERE" and the like.
		return ""
	}
	var bad []string
	if r.typ == "ALL" {
		bad = append(bad, "a full table scan")
	}
	if r.key == "" {
		bad = append(bad, "no index")
	}
	if strings.Contains(r.extra, "Using filesort") {
		bad = append(bad, "a sort of the matches")
	}
	if afterCursor && r.typ != "range" && r.typ != "ALL" {
		bad = append(bad, "a read from the scope's newest row rather than from the cursor")
	}
	return strings.Join(bad, ", ")
}

// setting is one named change to a listing's filter: who lists (an
// admin, a merchant or a customer, as Party), or one filter it offers set
// to one value.
type setting[F any] struct {
	name string
	set  func(f *F)
}

// valueSet is one choice of filter values: the busiest (values matching
// most rows, where a sort would hurt most) or rare ones (where MariaDB is
// most tempted by another index).
type valueSet[F any] struct {
	name    string
	scopes  []setting[F]
	filters []setting[F]
	cursor  store.Cursor
}

// planFailure is one statement of one combination whose plan is bad.
type planFailure struct {
	combination string
	statement   string // which of the listing's statements
	query       string
	args        []any
	row         planRow
	why         string
}

// explainListing runs list for every value set, scope, subset of the
// filters, and with and without the value set's cursor, on a store that
// records its statements, EXPLAINs each statement and returns the bad
// plans. It fails the test when a listing errs or runs no statement.
func explainListing[F any](t *testing.T, s *store.Store, table string, sets []valueSet[F],
	list func(ctx context.Context, s *store.Store, f F, p store.Page) error,
) (failures []planFailure, combinations, statements int) {
	t.Helper()
	ctx := context.Background()
	type job struct {
		name string
		f    F
		p    store.Page
	}
	var jobs []job
	for _, vs := range sets {
		n := len(vs.filters)
		for _, sc := range vs.scopes {
			for mask := range 1 << n {
				var f F
				sc.set(&f)
				var names []string
				for i, fl := range vs.filters {
					if mask&(1<<i) != 0 {
						fl.set(&f)
						names = append(names, fl.name)
					}
				}
				for _, withCursor := range []bool{false, true} {
					p := store.Page{Limit: 20}
					what := "first page"
					if withCursor {
						c := vs.cursor
						p.After, what = &c, "page after a cursor"
					}
					jobs = append(jobs, job{
						name: fmt.Sprintf("%s, %s values, filters {%s}, %s", sc.name, vs.name, strings.Join(names, ", "), what),
						f:    f, p: p,
					})
				}
			}
		}
	}
	var mu sync.Mutex
	var errMsgs []string
	work := make(chan job)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for j := range work {
				var ran []statement
				rec := store.RecordQueries(s, func(query string, args []any) {
					ran = append(ran, statement{query, slices.Clone(args)})
				})
				err := list(ctx, rec, j.f, j.p)
				if err == nil && len(ran) == 0 {
					err = fmt.Errorf("no statement ran")
				}
				var found []planFailure
				for i, st := range ran {
					if err != nil {
						break
					}
					which := "the query"
					if len(ran) == 2 {
						// list runs a party's listing as merchant, then as
						// customer.
						which = [2]string{"merchant_id = party", "customer_id = party"}[i]
					}
					var plan []planRow
					plan, err = explain(ctx, s, st)
					for _, r := range plan {
						if why := badPlan(table, r, j.p.After != nil); why != "" {
							found = append(found, planFailure{j.name, which, st.query, st.args, r, why})
						}
					}
				}
				mu.Lock()
				if err != nil {
					errMsgs = append(errMsgs, fmt.Sprintf("%s: %v", j.name, err))
				}
				failures = append(failures, found...)
				statements += len(ran)
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	for _, e := range errMsgs {
		t.Error(e)
	}
	slices.SortFunc(failures, func(a, b planFailure) int {
		return strings.Compare(a.combination+a.statement, b.combination+b.statement)
	})
	return failures, len(jobs), statements
}

// reportPlans fails the test with every bad plan: one line per statement,
// and each distinct query shape's SQL, arguments and plan once.
func reportPlans(t *testing.T, listing string, failures []planFailure, combinations, statements int) {
	t.Helper()
	t.Logf("%s: %d combinations, %d statements explained, %d bad plans", listing, combinations, statements, len(failures))
	if len(failures) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d statements are not an index range read in order.\n", listing, len(failures), statements)
	// First the plans, each with how many statements got it.
	type shape struct{ statement, key, typ, extra string }
	count := map[shape]int{}
	var shapes []shape
	for _, f := range failures {
		sh := shape{f.statement, f.row.key, f.row.typ, f.row.extra}
		if count[sh] == 0 {
			shapes = append(shapes, sh)
		}
		count[sh]++
	}
	b.WriteString("the plans:\n")
	for _, sh := range shapes {
		fmt.Fprintf(&b, "  %3d x [%s] type=%s key=%s Extra=%q\n", count[sh], sh.statement, sh.typ, orNull(sh.key), sh.extra)
	}
	b.WriteString("the combinations:\n")
	shown := map[string]bool{}
	for _, f := range failures {
		fmt.Fprintf(&b, "  %s [%s]: %s; %s\n", f.combination, f.statement, f.why, f.row)
	}
	b.WriteString("the queries, once per plan:\n")
	for _, f := range failures {
		shape := f.row.key + "|" + f.row.extra + "|" + f.row.typ
		if shown[shape] {
			continue
		}
		shown[shape] = true
		fmt.Fprintf(&b, "  %s [%s]: %s\n    %s\n    args %v\n", f.combination, f.statement, f.row, f.query, f.args)
	}
	t.Error(b.String())
}

// analyze refreshes MariaDB's statistics of tables, as a production server
// would have them.
func analyze(t *testing.T, s *store.Store, tables ...string) {
	t.Helper()
	for _, table := range tables {
		rows, err := s.Client.QueryContext(context.Background(), "ANALYZE TABLE "+table)
		if err != nil {
			t.Fatalf("ANALYZE TABLE %s: %v", table, err)
		}
		for rows.Next() {
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("ANALYZE TABLE %s: %v", table, err)
		}
		rows.Close()
	}
}

// skewedParties are the seeded accounts: merchants[0] holds most rows,
// merchants[len-1] few; customers[0] is a frequent customer of everyone,
// customers[len-1] a rare one; a tenth of rows have no customer.
type skewedParties struct {
	merchants, customers []string
}

func newSkewedParties(nm, nc int) skewedParties {
	var p skewedParties
	for range nm {
		p.merchants = append(p.merchants, ids.New(ids.Account))
	}
	for range nc {
		p.customers = append(p.customers, ids.New(ids.Account))
	}
	return p
}

func (p skewedParties) merchant(rng *rand.Rand) string {
	switch r := rng.IntN(100); {
	case r < 60:
		return p.merchants[0]
	case r < 61:
		return p.merchants[len(p.merchants)-1]
	default:
		return p.merchants[1+rng.IntN(len(p.merchants)-2)]
	}
}

func (p skewedParties) customer(rng *rand.Rand) string {
	switch r := rng.IntN(1000); {
	case r < 100:
		return ""
	case r < 130:
		return p.customers[0]
	case r < 131:
		return p.customers[len(p.customers)-1]
	default:
		return p.customers[1+rng.IntN(len(p.customers)-2)]
	}
}

// weighted picks one of vs, the first most often.
func weighted[T any](rng *rand.Rand, vs ...T) T {
	for _, v := range vs[:len(vs)-1] {
		if rng.IntN(3) != 0 {
			return v
		}
	}
	return vs[len(vs)-1]
}

// year is the seeded rows' span: created_at in [t0, t0+year).
const year = 365 * 24 * time.Hour

func seededAt(rng *rand.Rand) time.Time {
	return t0.Add(time.Duration(rng.Int64N(int64(year))))
}

// midCursor is a position in the middle of the rows: the seeded row at the
// middle of the year.
func midCursor() store.Cursor {
	at := t0.Add(year / 2)
	return store.Cursor{CreatedAt: at, ID: ids.NewAt(ids.Txn, at)}
}

func TestExplainListTransactions(t *testing.T) {
	s := explainStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	parties := newSkewedParties(12, 3000)
	start := time.Now()
	var rows []*ent.Transaction
	for range 30_000 {
		r := randomTxn(rng, parties.merchant(rng), parties.customer(rng), []string{"USD"}, seededAt(rng))
		r.Currency = weighted(rng, "USD", "EUR", "KWD")
		r.Status = weighted(rng, transaction.StatusSucceeded, transaction.StatusFailed, transaction.StatusPending)
		rows = append(rows, r)
	}
	if err := insertTxnsIn(ctx, s, rows, 1000); err != nil {
		t.Fatal(err)
	}
	analyze(t, s, "transactions")
	t.Logf("seeded %d transactions in %v", len(rows), time.Since(start))

	type F = store.TransactionFilter
	m0, mRare := parties.merchants[0], parties.merchants[len(parties.merchants)-1]
	c0, cRare := parties.customers[0], parties.customers[len(parties.customers)-1]
	sets := []valueSet[F]{{
		name: "busiest",
		scopes: []setting[F]{
			{"admin", func(f *F) {}},
			{"merchant " + m0, func(f *F) { f.Party = m0 }},
			{"customer " + c0, func(f *F) { f.Party = c0 }},
		},
		filters: []setting[F]{
			{"type payment", func(f *F) { f.Type = transaction.TypePayment }},
			{"status succeeded", func(f *F) { f.Status = transaction.StatusSucceeded }},
			{"currency usd", func(f *F) { f.Currency = "usd" }},
			{"created in the second half", func(f *F) { f.CreatedAfter, f.CreatedBefore = ptr(t0.Add(year/2)), ptr(t0.Add(year)) }},
			{"amount in [0, 5000]", func(f *F) { f.AmountMin, f.AmountMax = ptr[int64](0), ptr[int64](5000) }},
			{"customer " + c0, func(f *F) { f.CustomerID = c0 }},
			{"merchant " + m0, func(f *F) { f.MerchantID = m0 }},
		},
		cursor: midCursor(),
	}, {
		name: "rare",
		scopes: []setting[F]{
			{"admin", func(f *F) {}},
			{"merchant " + mRare, func(f *F) { f.Party = mRare }},
			{"customer " + cRare, func(f *F) { f.Party = cRare }},
		},
		filters: []setting[F]{
			{"type dispute", func(f *F) { f.Type = transaction.TypeDispute }},
			{"status pending", func(f *F) { f.Status = transaction.StatusPending }},
			{"currency kwd", func(f *F) { f.Currency = "kwd" }},
			{"created in one week", func(f *F) {
				f.CreatedAfter, f.CreatedBefore = ptr(t0.Add(100*24*time.Hour)), ptr(t0.Add(107*24*time.Hour))
			}},
			{"amount in [-100, -1]", func(f *F) { f.AmountMin, f.AmountMax = ptr[int64](-100), ptr[int64](-1) }},
			{"customer " + cRare, func(f *F) { f.CustomerID = cRare }},
			{"merchant " + mRare, func(f *F) { f.MerchantID = mRare }},
		},
		cursor: midCursor(),
	}}
	failures, n, statements := explainListing(t, s, "transactions", sets,
		func(ctx context.Context, s *store.Store, f F, p store.Page) error {
			_, err := s.ListTransactions(ctx, f, p)
			return err
		})
	reportPlans(t, "ListTransactions", failures, n, statements)
}

func TestExplainListPayments(t *testing.T) {
	s := explainStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	parties := newSkewedParties(10, 1000)
	var rows []store.PaymentRecord
	for range 5000 {
		at := seededAt(rng)
		p := newPayment(parties.merchant(rng), parties.customer(rng), at)
		p.Currency = weighted(rng, "USD", "EUR", "KWD")
		p.Status = weighted(rng, payment.StatusSucceeded, payment.StatusFailed, payment.StatusProcessing,
			payment.StatusRequiresCapture, payment.StatusCanceled, payment.StatusRequiresAction)
		rows = append(rows, p)
	}
	for c := range slices.Chunk(rows, 500) {
		err := s.Client.Payment.MapCreateBulk(c, func(b *ent.PaymentCreate, i int) {
			p := c[i]
			b.SetID(p.ID).SetMerchantID(p.MerchantID).SetCustomerID(p.CustomerID).
				SetAmount(p.Amount).SetCurrency(p.Currency).SetStatus(p.Status).
				SetMetadata(p.Metadata).SetVersion(1).SetCreatedAt(p.CreatedAt).SetUpdatedAt(p.UpdatedAt)
		}).Exec(ctx)
		if err != nil {
			t.Fatalf("seed payments: %v", err)
		}
	}
	analyze(t, s, "payments")

	type F = store.PaymentFilter
	m0, mRare := parties.merchants[0], parties.merchants[len(parties.merchants)-1]
	c0, cRare := parties.customers[0], parties.customers[len(parties.customers)-1]
	mid := midCursor()
	mid.ID = ids.NewAt(ids.Payment, mid.CreatedAt)
	sets := []valueSet[F]{{
		name: "busiest",
		scopes: []setting[F]{
			{"admin", func(f *F) {}},
			{"merchant " + m0, func(f *F) { f.Party = m0 }},
			{"customer " + c0, func(f *F) { f.Party = c0 }},
		},
		filters: []setting[F]{
			{"merchant " + m0, func(f *F) { f.MerchantID = m0 }},
			{"customer " + c0, func(f *F) { f.CustomerID = c0 }},
			{"currency usd", func(f *F) { f.Currency = "usd" }},
			{"status succeeded", func(f *F) { f.Status = payment.StatusSucceeded }},
			{"created in the second half", func(f *F) { f.CreatedAfter, f.CreatedBefore = ptr(t0.Add(year/2)), ptr(t0.Add(year)) }},
		},
		cursor: mid,
	}, {
		name: "rare",
		scopes: []setting[F]{
			{"admin", func(f *F) {}},
			{"merchant " + mRare, func(f *F) { f.Party = mRare }},
			{"customer " + cRare, func(f *F) { f.Party = cRare }},
		},
		filters: []setting[F]{
			{"merchant " + mRare, func(f *F) { f.MerchantID = mRare }},
			{"customer " + cRare, func(f *F) { f.CustomerID = cRare }},
			{"currency kwd", func(f *F) { f.Currency = "kwd" }},
			{"status requires_action", func(f *F) { f.Status = payment.StatusRequiresAction }},
			{"created in one week", func(f *F) {
				f.CreatedAfter, f.CreatedBefore = ptr(t0.Add(100*24*time.Hour)), ptr(t0.Add(107*24*time.Hour))
			}},
		},
		cursor: mid,
	}}
	failures, n, statements := explainListing(t, s, "payments", sets,
		func(ctx context.Context, s *store.Store, f F, p store.Page) error {
			_, err := s.ListPayments(ctx, f, p)
			return err
		})
	reportPlans(t, "ListPayments", failures, n, statements)
}

// seededPayments are payments to hang refunds and disputes on: ids and
// parties only (the refund and dispute tables are listed alone). The
// first is the busiest merchant's and has many refunds and disputes; the
// last has one.
func seededPayments(rng *rand.Rand, parties skewedParties, n int) []store.PaymentRecord {
	var ps []store.PaymentRecord
	for i := range n {
		p := newPayment(parties.merchant(rng), parties.customer(rng), seededAt(rng))
		if i == 0 {
			p.MerchantID, p.CustomerID = parties.merchants[0], parties.customers[0]
		}
		p.Currency = weighted(rng, "USD", "EUR", "KWD")
		ps = append(ps, p)
	}
	return ps
}

// ofPayment picks the payment a seeded refund or dispute is of: the first
// for one row in fifty, the last never but once.
func ofPayment(rng *rand.Rand, ps []store.PaymentRecord) store.PaymentRecord {
	if rng.IntN(50) == 0 {
		return ps[0]
	}
	return ps[1+rng.IntN(len(ps)-2)]
}

func TestExplainListRefunds(t *testing.T) {
	s := explainStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	parties := newSkewedParties(10, 1000)
	ps := seededPayments(rng, parties, 2000)
	var rows []store.RefundRecord
	for i := range 4000 {
		p := ofPayment(rng, ps)
		if i == 0 {
			p = ps[len(ps)-1]
		}
		r := newRefund(p, 1+rng.Int64N(1000), p.CreatedAt.Add(time.Duration(rng.Int64N(int64(30*24*time.Hour)))))
		r.CustomerID = p.CustomerID
		r.Status = weighted(rng, refund.StatusSucceeded, refund.StatusPending, refund.StatusFailed, refund.StatusCanceled)
		rows = append(rows, r)
	}
	for c := range slices.Chunk(rows, 500) {
		err := s.Client.Refund.MapCreateBulk(c, func(b *ent.RefundCreate, i int) {
			r := c[i]
			b.SetID(r.ID).SetPaymentID(r.PaymentID).SetMerchantID(r.MerchantID).SetCustomerID(r.CustomerID).
				SetAmount(r.Amount).SetCurrency(r.Currency).SetStatus(r.Status).SetReason(r.Reason).
				SetWorkflowID(r.WorkflowID).SetMetadata(r.Metadata).SetVersion(1).
				SetCreatedAt(r.CreatedAt).SetUpdatedAt(r.CreatedAt)
		}).Exec(ctx)
		if err != nil {
			t.Fatalf("seed refunds: %v", err)
		}
	}
	analyze(t, s, "refunds")

	type F = store.RefundFilter
	m0, mRare := parties.merchants[0], parties.merchants[len(parties.merchants)-1]
	c0, cRare := parties.customers[0], parties.customers[len(parties.customers)-1]
	mid := midCursor()
	mid.ID = ids.NewAt(ids.Refund, mid.CreatedAt)
	sets := []valueSet[F]{{
		name: "busiest",
		scopes: []setting[F]{
			{"admin", func(f *F) {}},
			{"merchant " + m0, func(f *F) { f.Party = m0 }},
			{"customer " + c0, func(f *F) { f.Party = c0 }},
		},
		filters: []setting[F]{
			{"merchant " + m0, func(f *F) { f.MerchantID = m0 }},
			{"payment " + ps[0].ID, func(f *F) { f.PaymentID = ps[0].ID }},
			{"status succeeded", func(f *F) { f.Status = refund.StatusSucceeded }},
			{"created in the second half", func(f *F) { f.CreatedAfter, f.CreatedBefore = ptr(t0.Add(year/2)), ptr(t0.Add(year)) }},
		},
		cursor: mid,
	}, {
		name: "rare",
		scopes: []setting[F]{
			{"admin", func(f *F) {}},
			{"merchant " + mRare, func(f *F) { f.Party = mRare }},
			{"customer " + cRare, func(f *F) { f.Party = cRare }},
		},
		filters: []setting[F]{
			{"merchant " + mRare, func(f *F) { f.MerchantID = mRare }},
			{"payment " + ps[len(ps)-1].ID, func(f *F) { f.PaymentID = ps[len(ps)-1].ID }},
			{"status canceled", func(f *F) { f.Status = refund.StatusCanceled }},
			{"created in one week", func(f *F) {
				f.CreatedAfter, f.CreatedBefore = ptr(t0.Add(100*24*time.Hour)), ptr(t0.Add(107*24*time.Hour))
			}},
		},
		cursor: mid,
	}}
	failures, n, statements := explainListing(t, s, "refunds", sets,
		func(ctx context.Context, s *store.Store, f F, p store.Page) error {
			_, err := s.ListRefunds(ctx, f, p)
			return err
		})
	reportPlans(t, "ListRefunds", failures, n, statements)
}

func TestExplainListDisputes(t *testing.T) {
	s := explainStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	parties := newSkewedParties(10, 1000)
	ps := seededPayments(rng, parties, 2000)
	var rows []store.DisputeRecord
	for i := range 4000 {
		p := ofPayment(rng, ps)
		if i == 0 {
			p = ps[len(ps)-1]
		}
		by := weighted(rng, dispute.OpenedByCustomer, dispute.OpenedByNetwork, dispute.OpenedByMerchant)
		d := newDispute(p, by, 1+rng.Int64N(1000), p.CreatedAt.Add(time.Duration(rng.Int64N(int64(30*24*time.Hour)))))
		d.MerchantID, d.CustomerID, d.AmountHeld = p.MerchantID, p.CustomerID, d.Amount
		d.Status = weighted(rng, dispute.StatusWon, dispute.StatusLost, dispute.StatusNeedsResponse,
			dispute.StatusUnderReview, dispute.StatusAccepted, dispute.StatusWithdrawn)
		rows = append(rows, d)
	}
	for c := range slices.Chunk(rows, 500) {
		err := s.Client.Dispute.MapCreateBulk(c, func(b *ent.DisputeCreate, i int) {
			d := c[i]
			b.SetID(d.ID).SetPaymentID(d.PaymentID).SetMerchantID(d.MerchantID).SetCustomerID(d.CustomerID).
				SetOpenedBy(d.OpenedBy).SetReason(d.Reason).SetAmount(d.Amount).SetAmountHeld(d.AmountHeld).
				SetCurrency(d.Currency).SetStatus(d.Status).
				SetEvidence(disputes.Evidence{}).SetClaimantEvidence(d.ClaimantEvidence).
				SetResponseDueBy(d.ResponseDueBy).SetWorkflowID(d.WorkflowID).SetTimeline(d.Timeline).
				SetVersion(1).SetCreatedAt(d.CreatedAt).SetUpdatedAt(d.CreatedAt)
		}).Exec(ctx)
		if err != nil {
			t.Fatalf("seed disputes: %v", err)
		}
	}
	analyze(t, s, "disputes")

	type F = store.DisputeFilter
	m0, mRare := parties.merchants[0], parties.merchants[len(parties.merchants)-1]
	c0, cRare := parties.customers[0], parties.customers[len(parties.customers)-1]
	mid := midCursor()
	mid.ID = ids.NewAt(ids.Dispute, mid.CreatedAt)
	sets := []valueSet[F]{{
		name: "busiest",
		scopes: []setting[F]{
			{"admin", func(f *F) {}},
			{"merchant " + m0, func(f *F) { f.Party = m0 }},
			{"customer " + c0, func(f *F) { f.Party = c0 }},
		},
		filters: []setting[F]{
			{"merchant " + m0, func(f *F) { f.MerchantID = m0 }},
			{"payment " + ps[0].ID, func(f *F) { f.PaymentID = ps[0].ID }},
			{"status won", func(f *F) { f.Status = dispute.StatusWon }},
			{"opened by customer", func(f *F) { f.OpenedBy = dispute.OpenedByCustomer }},
			{"due before the end", func(f *F) { f.DueBefore = ptr(t0.Add(year)) }},
			{"created in the second half", func(f *F) { f.CreatedAfter, f.CreatedBefore = ptr(t0.Add(year/2)), ptr(t0.Add(year)) }},
		},
		cursor: mid,
	}, {
		name: "rare",
		scopes: []setting[F]{
			{"admin", func(f *F) {}},
			{"merchant " + mRare, func(f *F) { f.Party = mRare }},
			{"customer " + cRare, func(f *F) { f.Party = cRare }},
		},
		filters: []setting[F]{
			{"merchant " + mRare, func(f *F) { f.MerchantID = mRare }},
			{"payment " + ps[len(ps)-1].ID, func(f *F) { f.PaymentID = ps[len(ps)-1].ID }},
			{"status needs_response", func(f *F) { f.Status = dispute.StatusNeedsResponse }},
			{"opened by merchant", func(f *F) { f.OpenedBy = dispute.OpenedByMerchant }},
			{"due within the first week", func(f *F) { f.DueBefore = ptr(t0.Add(14 * 24 * time.Hour)) }},
			{"created in one week", func(f *F) {
				f.CreatedAfter, f.CreatedBefore = ptr(t0.Add(100*24*time.Hour)), ptr(t0.Add(107*24*time.Hour))
			}},
		},
		cursor: mid,
	}}
	failures, n, statements := explainListing(t, s, "disputes", sets,
		func(ctx context.Context, s *store.Store, f F, p store.Page) error {
			_, err := s.ListDisputes(ctx, f, p)
			return err
		})
	reportPlans(t, "ListDisputes", failures, n, statements)
}
