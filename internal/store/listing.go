package store

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"

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
// value of each filter field adds none.
type where []func(*sql.Selector)

// eq adds column = v unless v is "".
func (w *where) eq(column, v string) {
	if v != "" {
		*w = append(*w, sql.FieldEQ(column, v))
	}
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
		*w = append(*w, sql.FieldGTE(column, ceilMicro(*from)))
	}
	if to != nil {
		*w = append(*w, sql.FieldLT(column, ceilMicro(*to)))
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
		*w = append(*w, sql.FieldGTE(column, *min))
	}
	if max != nil {
		*w = append(*w, sql.FieldLTE(column, *max))
	}
}

// all is the conjunction of the conditions.
func (w where) all() func(*sql.Selector) {
	return sql.AndPredicates(w...)
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

// list runs one page of a listing: the filter's conditions w, its shared
// part f, the page p. run executes the query on the listing's table with a
// condition, newestFirst order and a limit; cursor gives a row's position.
//
// A party's listing runs as two keyset queries, one on the (merchant_id,
// created_at, id) index and one on the (customer_id, created_at, id) index,
// each reading at most p.Limit rows, merged here: in effect a UNION. A
// single "merchant_id = ? OR customer_id = ?" query would make both
// databases collect and sort every row of the party before the first row of
// a page.
func list[T any](ctx context.Context, w where, f Filter, p Page, cursor func(T) Cursor,
	run func(ctx context.Context, cond func(*sql.Selector), limit int) ([]T, error),
) ([]T, error) {
	if p.Limit <= 0 {
		return nil, errs.InvalidArgument("page_size", "page size must be positive")
	}
	if f.CreatedAfter != nil && f.CreatedBefore != nil && f.CreatedAfter.After(*f.CreatedBefore) {
		return nil, errs.InvalidArgument("created_after", "created_after must not be later than created_before")
	}
	w = slices.Clip(w)
	w.timeRange(colCreatedAt, f.CreatedAfter, f.CreatedBefore)
	if p.After != nil {
		w = append(w, after(*p.After))
	}
	if f.Party == "" {
		return run(ctx, w.all(), p.Limit)
	}
	m, err := run(ctx, append(slices.Clip(w), sql.FieldEQ(colMerchantID, f.Party)).all(), p.Limit)
	if err != nil {
		return nil, err
	}
	c, err := run(ctx, append(slices.Clip(w), sql.FieldEQ(colCustomerID, f.Party)).all(), p.Limit)
	if err != nil {
		return nil, err
	}
	return mergeNewest(m, c, p.Limit, cursor), nil
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
