package store

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"

	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/internal/errs"
)

// Every list of the platform (payments, refunds, disputes, transactions,
// reconciliation cases) is one keyset listing, built here and nowhere else:
// newest first by (created_at, id), both immutable, so a page's position is
// the last row's pair (a Cursor) and rows inserted while a client pages
// never shift the pages after it: nothing is read twice or skipped. Each
// table has an index per scope that starts with the scope's equality
// columns and ends with (created_at, id), so a page is one index range read
// in order, however many rows precede it.

// Column names every listed table shares.
const (
	colCreatedAt  = "created_at"
	colID         = "id"
	colMerchantID = "merchant_id"
	colCustomerID = "customer_id"
)

// Cursor is a position in a list: the created_at and id of the last row of
// the previous page. The API carries it in a signed page token.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// Page is the part of a list request every list shares: up to Limit rows
// after After (nil: from the newest).
type Page struct {
	Limit int
	After *Cursor
}

// Filter is the part of a filter every list shares.
type Filter struct {
	// Party restricts to rows where this account is the merchant or the
	// customer; "" = everyone's (admins).
	Party string
	// CreatedAfter and CreatedBefore bound created_at, [after, before).
	CreatedAfter, CreatedBefore *time.Time
}

// where collects a filter's conditions on one table's columns; the zero
// value of each filter field adds none. It keeps the columns compared for
// equality apart, as they decide which indexes serve the listing.
type where struct {
	conds []func(*sql.Selector)
	eqs   []string
}

// is adds column = v.
func (w *where) is(column, v string) {
	w.add(sql.FieldEQ(column, v))
	w.eqs = append(w.eqs, column)
}

// eq adds column = v unless v is "".
func (w *where) eq(column, v string) {
	if v != "" {
		w.is(column, v)
	}
}

// add adds a condition.
func (w *where) add(cond func(*sql.Selector)) {
	w.conds = append(w.conds, cond)
}

// with is a copy of w with column = v added; w is left as it is.
func (w where) with(column, v string) where {
	w.conds = slices.Clip(w.conds)
	w.eqs = slices.Clip(w.eqs)
	w.is(column, v)
	return w
}

// upper adds column = upper(v) unless v is "" (ISO 4217 codes).
func (w *where) upper(column, v string) {
	w.eq(column, strings.ToUpper(v))
}

// timeRange adds from <= column < to for the bounds that are set. The
// databases keep microseconds, so a bound between two microseconds is
// rounded up: a row at T is after T-1ns and before T+1ns.
func (w *where) timeRange(column string, from, to *time.Time) {
	if from != nil {
		w.add(sql.FieldGTE(column, ceilMicro(*from)))
	}
	if to != nil {
		w.add(sql.FieldLT(column, ceilMicro(*to)))
	}
}

// ceilMicro is t in UTC rounded up to the microsecond.
func ceilMicro(t time.Time) time.Time {
	u := utc(t)
	if u.Before(t) {
		u = u.Add(time.Microsecond)
	}
	return u
}

// before adds column < t when t is set.
func (w *where) before(column string, t *time.Time) {
	w.timeRange(column, nil, t)
}

// intRange adds min <= column <= max for the bounds that are set.
func (w *where) intRange(column string, min, max *int64) {
	if min != nil {
		w.add(sql.FieldGTE(column, *min))
	}
	if max != nil {
		w.add(sql.FieldLTE(column, *max))
	}
}

// all is the conjunction of the conditions.
func (w where) all() func(*sql.Selector) {
	return sql.AndPredicates(w.conds...)
}

// newestFirst orders a listing: created_at, then id, descending.
func newestFirst(s *sql.Selector) {
	s.OrderBy(sql.Desc(s.C(colCreatedAt)), sql.Desc(s.C(colID)))
}

// after is the keyset condition: rows strictly after c in newestFirst
// order. It is written as created_at <= ? AND (created_at < ? OR id < ?)
// rather than a row comparison, which MariaDB does not turn into an index
// range.
func after(c Cursor) func(*sql.Selector) {
	at := utc(c.CreatedAt)
	return func(s *sql.Selector) {
		s.Where(sql.And(
			sql.LTE(s.C(colCreatedAt), at),
			sql.Or(sql.LT(s.C(colCreatedAt), at), sql.LT(s.C(colID), c.ID)),
		))
	}
}

// keyset is one keyset query of a listing: its conditions (the filter's,
// the page's), the index hint to apply with the query builder's Modify, and
// the number of rows to read.
type keyset struct {
	Where func(*sql.Selector)
	Index func(*sql.Selector)
	Limit int
}

// list runs one page of a listing on table: the filter's conditions w, its
// shared part f, the page p. run executes a keyset query with newestFirst
// order; cursor gives a row's position.
//
// A party's listing runs as two keyset queries, one with merchant_id and
// one with customer_id, each reading at most p.Limit rows, merged here: in
// effect a UNION. A single "merchant_id = ? OR customer_id = ?" query would
// make both databases collect and sort every row of the party before the
// first row of a page.
func list[T any](ctx context.Context, table *schema.Table, w where, f Filter, p Page, cursor func(T) Cursor,
	run func(context.Context, keyset) ([]T, error),
) ([]T, error) {
	if p.Limit <= 0 {
		return nil, errs.InvalidArgument("page_size", "page size must be positive")
	}
	if f.CreatedAfter != nil && f.CreatedBefore != nil && f.CreatedAfter.After(*f.CreatedBefore) {
		return nil, errs.InvalidArgument("created_after", "created_after must not be later than created_before")
	}
	w.conds = slices.Clip(w.conds)
	w.timeRange(colCreatedAt, f.CreatedAfter, f.CreatedBefore)
	if p.After != nil {
		w.add(after(*p.After))
	}
	query := func(w where) keyset {
		return keyset{Where: w.all(), Index: useIndex(listingTables[table], w.eqs), Limit: p.Limit}
	}
	if f.Party == "" {
		return run(ctx, query(w))
	}
	m, err := run(ctx, query(w.with(colMerchantID, f.Party)))
	if err != nil {
		return nil, err
	}
	c, err := run(ctx, query(w.with(colCustomerID, f.Party)))
	if err != nil {
		return nil, err
	}
	return mergeNewest(m, c, p.Limit, cursor), nil
}

// listingTable is what the index hints need of a table: its name and its
// indexes' names and columns.
type listingTable struct {
	name    string
	indexes []listingTableIndex
}

type listingTableIndex struct {
	name    string
	columns []string
}

// tableOf copies what the hints need of one of ent's tables.
func tableOf(t *schema.Table) listingTable {
	lt := listingTable{name: t.Name}
	for _, idx := range t.Indexes {
		li := listingTableIndex{name: idx.Name}
		for _, c := range idx.Columns {
			li.columns = append(li.columns, c.Name)
		}
		lt.indexes = append(lt.indexes, li)
	}
	return lt
}

// listingTables are ent's tables as the hints see them, copied when the
// package starts: ent's migration writes to its schema tables, so reading
// them while another store migrates (tests do, in parallel) would race.
var listingTables = func() map[*schema.Table]listingTable {
	m := make(map[*schema.Table]listingTable, len(migrate.Tables))
	for _, t := range migrate.Tables {
		m[t] = tableOf(t)
	}
	return m
}()

// listingIndex is the index that serves a listing of table whose equality
// columns are eqs: the first of the table's indexes laid out as (equality
// columns..., created_at, id, ...) whose equality columns are all among
// eqs; "" when none is. Read backwards from the cursor, that index yields
// the page's rows in order, without a sort. The schemas declare these
// indexes most selective first (a payment's, a customer's, a merchant's,
// then status and the like, then (created_at, id) last, which serves any
// listing).
func listingIndex(table listingTable, eqs []string) string {
	for _, idx := range table.indexes {
		cols := idx.columns
		i := slices.Index(cols, colCreatedAt)
		if i < 0 || i+1 == len(cols) || cols[i+1] != colID {
			continue
		}
		if !slices.ContainsFunc(cols[:i], func(c string) bool { return !slices.Contains(eqs, c) }) {
			return idx.name
		}
	}
	return ""
}

// useIndex is the hint that makes MySQL read a keyset query through its
// listingIndex: FROM table FORCE INDEX (name). Left to itself, MariaDB
// reads a deep page of a large tenant with "ref" access on the equality
// columns alone, from the tenant's newest row down to the cursor (810,000
// index entries for a page 90% into a million rows, seconds), where the
// range access on (equality columns, created_at) that a single forced index
// gets starts at the cursor (22 entries, under a millisecond). Naming more
// than one index brings the "ref" plan back, so the hint names exactly one.
// SQLite plans these queries well by itself and gets no hint.
func useIndex(table listingTable, eqs []string) func(*sql.Selector) {
	name := listingIndex(table, eqs)
	return func(s *sql.Selector) {
		if name == "" || s.Dialect() != dialect.MySQL {
			return
		}
		var b sql.Builder
		b.SetDialect(dialect.MySQL)
		b.Ident(table.name).WriteString(" FORCE INDEX (").Ident(name).WriteByte(')')
		s.FromExpr(sql.Expr(b.String()))
	}
}

// mergeNewest merges the two keyset pages of a party's listing (as
// merchant, as customer), each in newestFirst order, into one page of at
// most limit rows. A row of an account with itself comes from both queries
// and is kept once.
func mergeNewest[T any](a, b []T, limit int, cursor func(T) Cursor) []T {
	all := append(slices.Clip(a), b...)
	slices.SortFunc(all, func(x, y T) int { return compareNewest(cursor(x), cursor(y)) })
	all = slices.CompactFunc(all, func(x, y T) bool { return cursor(x).ID == cursor(y).ID })
	return all[:min(len(all), limit)]
}

// compareNewest orders cursors as newestFirst does: later created_at first,
// then the greater id.
func compareNewest(x, y Cursor) int {
	if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(y.ID, x.ID)
}
