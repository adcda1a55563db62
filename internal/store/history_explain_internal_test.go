package store

// An export for the external tests (history_explain_test.go): a store whose
// client reports every statement it runs, so a test can EXPLAIN exactly
// what a listing issues.

import (
	"context"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/payments-platform/payments/ent"
)

// RecordQueries returns a store on s's connection pool whose client passes
// each statement it runs outside a transaction, with its arguments as the
// driver gets them, to record before running it. It shares s's pool: close
// s, never the returned store.
//
// It is ent's dialect.DebugWithContext in spirit, but hands over the
// arguments as values rather than formatted text, so that they can be
// bound to an EXPLAIN of the same statement.
func RecordQueries(s *Store, record func(query string, args []any)) *Store {
	drv := recordingDriver{Driver: entsql.OpenDB(s.dialect, s.db), record: record}
	return &Store{Client: ent.NewClient(ent.Driver(drv)), db: s.db, dialect: s.dialect}
}

type recordingDriver struct {
	dialect.Driver
	record func(query string, args []any)
}

func (d recordingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.record(query, argList(args))
	return d.Driver.Query(ctx, query, args, v)
}

func (d recordingDriver) Exec(ctx context.Context, query string, args, v any) error {
	d.record(query, argList(args))
	return d.Driver.Exec(ctx, query, args, v)
}

// argList is the driver's args as a list (ent passes []any, or nil).
func argList(args any) []any {
	if a, ok := args.([]any); ok {
		return a
	}
	return nil
}
