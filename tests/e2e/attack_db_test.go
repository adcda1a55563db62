package e2e

// The "nothing changed" half of the attack tables (issue 12): a fingerprint
// of the whole database, taken before and after each refused request, so
// that a refusal which still wrote something (a row, a counter, a changed
// field) fails its row, whatever table it wrote to.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, as internal/store uses it
)

// dbWatch fingerprints one SQLite database file, opened read-only beside
// the platform's own connections. Every table and column counts, but for
// the last_used_at of the API keys in keysInUse.
type dbWatch struct {
	db *sql.DB
	// keysInUse are the API keys the table's callers present. A valid key
	// records when it was last used (at most once a minute,
	// internal/store/apikeys.go) whatever the request then does: a caller
	// using its OWN key leaves that trace on that key, and only there.
	keysInUse []string
}

// useKeys leaves the last_used_at of the API keys keyIDs out of the
// fingerprint, as the keys the table's callers present.
func (w *dbWatch) useKeys(keyIDs ...string) { w.keysInUse = append(w.keysInUse, keyIDs...) }

// skipped says whether the fingerprint leaves out column of the row of
// table whose primary key is key.
func (w *dbWatch) skipped(table, key, column string) bool {
	return table == "api_keys" && column == "last_used_at" && slices.Contains(w.keysInUse, key)
}

// dbPrint is a fingerprint: per table, per primary key, a hash of the row.
type dbPrint map[string]map[string]string

// attackEnv starts a platform on a SQLite file in t.TempDir() (so the test
// knows the file) and opens the file read-only for fingerprints.
func attackEnv(t *testing.T, options ...envOption) (*E, *dbWatch) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "payments.db")
	e := newEnv(t, append([]envOption{withStore(openSQLiteAt(t, path))}, options...)...)
	// mode=ro: this handle can never write, whatever a bug in the helper
	// does; query_only is a second lock on the same door.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		t.Fatalf("open %s read-only: %v", path, err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	w := &dbWatch{db: db}
	// The helper must see the platform's writes (WAL included) and every
	// table: an empty or blind fingerprint would pass every row.
	p := w.print(t)
	for _, must := range []string{"accounts", "payments", "refresh_tokens", "audit_events"} {
		if _, ok := p[must]; !ok {
			t.Fatalf("fingerprint of %s has no table %q (tables: %v)", path, must, slices.Sorted(maps.Keys(p)))
		}
	}
	return e, w
}

// print takes a fingerprint in one read transaction, so it is a consistent
// snapshot even while the platform writes.
func (w *dbWatch) print(t *testing.T) dbPrint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	conn, err := w.db.Conn(ctx)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatalf("fingerprint: begin: %v", err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), "ROLLBACK") }()

	var tables []string
	rows, err := conn.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
	if err != nil {
		t.Fatalf("fingerprint: list tables: %v", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	out := dbPrint{}
	for _, table := range tables {
		out[table] = w.table(ctx, t, conn, table)
	}
	return out
}

// table hashes every row of table, in primary-key order, leaving out the
// cells w skips; rows are keyed by their primary key.
func (w *dbWatch) table(ctx context.Context, t *testing.T, conn *sql.Conn, table string) map[string]string {
	t.Helper()
	var cols []tableColumn
	info, err := conn.QueryContext(ctx, "SELECT name, pk FROM pragma_table_info(?)", table)
	if err != nil {
		t.Fatalf("fingerprint: columns of %s: %v", table, err)
	}
	for info.Next() {
		var c tableColumn
		if err := info.Scan(&c.name, &c.pk); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := info.Close(); err != nil {
		t.Fatal(err)
	}
	var pk, names, keep []string
	for _, c := range cols {
		if c.pk > 0 {
			pk = append(pk, c.name)
		}
		names = append(names, c.name)
		keep = append(keep, quoteIdent(c.name))
	}
	// pragma_table_info numbers the key's columns in key order.
	slices.SortFunc(pk, func(a, b string) int {
		return pkPos(cols, a) - pkPos(cols, b)
	})
	key := []string{"rowid"}
	if len(pk) > 0 {
		key = nil
		for _, k := range pk {
			key = append(key, quoteIdent(k))
		}
	}
	q := fmt.Sprintf("SELECT %s, %s FROM %s ORDER BY %s", strings.Join(key, ", "), strings.Join(keep, ", "),
		quoteIdent(table), strings.Join(key, ", "))
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		t.Fatalf("fingerprint: %s: %v", q, err)
	}
	defer rows.Close()
	out := map[string]string{}
	n := len(key) + len(keep)
	for rows.Next() {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("fingerprint: scan %s: %v", table, err)
		}
		var k []string
		for _, v := range vals[:len(key)] {
			k = append(k, fmt.Sprint(v))
		}
		rowKey := strings.Join(k, "|")
		h := sha256.New()
		for i, v := range vals[len(key):] {
			if w.skipped(table, rowKey, names[i]) {
				continue
			}
			h.Write([]byte(keep[i]))
			hashValue(h, v)
		}
		out[rowKey] = hex.EncodeToString(h.Sum(nil))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("fingerprint: rows of %s: %v", table, err)
	}
	return out
}

// tableColumn is a column of a table and its position in the primary key
// (0 when it is not part of it).
type tableColumn struct {
	name string
	pk   int
}

func pkPos(cols []tableColumn, name string) int {
	for _, c := range cols {
		if c.name == name {
			return c.pk
		}
	}
	return 0
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// hashValue writes a typed, length-prefixed encoding of v, so that no two
// different rows can hash alike by shifting bytes between columns.
func hashValue(h interface{ Write([]byte) (int, error) }, v any) {
	var buf [8]byte
	tagged := func(tag byte, b []byte) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(b)))
		h.Write([]byte{tag})
		h.Write(buf[:])
		h.Write(b)
	}
	switch x := v.(type) {
	case nil:
		h.Write([]byte{'N'})
	case int64:
		binary.BigEndian.PutUint64(buf[:], uint64(x))
		tagged('I', buf[:])
	case float64:
		binary.BigEndian.PutUint64(buf[:], math.Float64bits(x))
		tagged('F', buf[:])
	case bool:
		if x {
			tagged('B', []byte{1})
		} else {
			tagged('B', []byte{0})
		}
	case string:
		tagged('S', []byte(x))
	case []byte:
		tagged('Y', x)
	case time.Time:
		tagged('T', []byte(x.UTC().Format(time.RFC3339Nano)))
	default:
		tagged('?', []byte(fmt.Sprintf("%T:%v", x, x)))
	}
}

// diff describes what changed from a to b, table by table ("" if nothing).
func (a dbPrint) diff(b dbPrint) string {
	var out []string
	tables := slices.Sorted(maps.Keys(a))
	for _, tb := range slices.Sorted(maps.Keys(b)) {
		if _, ok := a[tb]; !ok {
			tables = append(tables, tb)
		}
	}
	for _, tb := range tables {
		ra, rb := a[tb], b[tb]
		var added, removed, changed []string
		for k, h := range rb {
			if old, ok := ra[k]; !ok {
				added = append(added, k)
			} else if old != h {
				changed = append(changed, k)
			}
		}
		for k := range ra {
			if _, ok := rb[k]; !ok {
				removed = append(removed, k)
			}
		}
		if len(added)+len(removed)+len(changed) == 0 {
			continue
		}
		slices.Sort(added)
		slices.Sort(removed)
		slices.Sort(changed)
		out = append(out, fmt.Sprintf("%s: added %v, removed %v, changed %v", tb, added, removed, changed))
	}
	return strings.Join(out, "; ")
}

// changedTables are the tables whose rows differ between a and b.
func (a dbPrint) changedTables(b dbPrint) []string {
	var out []string
	for _, line := range strings.Split(a.diff(b), "; ") {
		if name, _, ok := strings.Cut(line, ":"); ok {
			out = append(out, name)
		}
	}
	return out
}

// unchanged fails t if the database differs from before.
func (w *dbWatch) unchanged(t *testing.T, before dbPrint) {
	t.Helper()
	if d := before.diff(w.print(t)); d != "" {
		t.Errorf("the refused request changed the database: %s", d)
	}
}

// quiet waits until the platform has stopped writing (the workflows of the
// setup have finished their steps, the outbox is relayed, deliveries are
// done): the fingerprint must stay the same over several polls spanning at
// least a second. It returns that fingerprint.
func (w *dbWatch) quiet(t *testing.T) dbPrint {
	t.Helper()
	const (
		span  = 1500 * time.Millisecond
		every = 100 * time.Millisecond
	)
	deadline := time.Now().Add(2 * waitFor)
	last := w.print(t)
	since := time.Now()
	for {
		time.Sleep(every) // polling with a deadline
		cur := w.print(t)
		if d := last.diff(cur); d != "" {
			if time.Now().After(deadline) {
				t.Fatalf("the database never settled within %v; still writing: %s", 2*waitFor, d)
			}
			last, since = cur, time.Now()
			continue
		}
		if time.Since(since) >= span {
			return cur
		}
	}
}

// refusedUnchanged runs call, which must be refused, and fails t unless the
// database is the same after it as before. The platform must be quiet.
func (w *dbWatch) refusedUnchanged(t *testing.T, call func() reply) reply {
	t.Helper()
	before := w.print(t)
	r := call()
	w.unchanged(t, before)
	return r
}
