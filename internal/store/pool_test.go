package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// waitPool polls the pool's statistics until ok accepts them.
func waitPool(t *testing.T, s *store.Store, what string, ok func(st sql.DBStats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(s.PoolStats()) {
		if time.Now().After(deadline) {
			t.Fatalf("pool: %s did not happen within 10 s: %+v", what, s.PoolStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// query runs one statement, taking a connection from the pool and giving it
// back.
func query(ctx context.Context, s *store.Store) error {
	_, err := s.Client.Account.Query().Count(ctx)
	return err
}

func TestConfigurePoolReachesTheDatabase(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()

		s.ConfigurePool(store.PoolOptions{MaxOpenConns: 7, MaxIdleConns: 0})
		if got := s.PoolStats().MaxOpenConnections; got != 7 {
			t.Fatalf("MaxOpenConnections = %d, want 7", got)
		}
		// No idle connection is kept: the one just used is closed.
		closedBefore := s.PoolStats().MaxIdleClosed
		if err := query(ctx, s); err != nil {
			t.Fatal(err)
		}
		if st := s.PoolStats(); st.Idle != 0 || st.MaxIdleClosed <= closedBefore {
			t.Fatalf("with MaxIdleConns 0: %d idle, %d closed for idleness (before %d)", st.Idle, st.MaxIdleClosed, closedBefore)
		}

		s.ConfigurePool(store.PoolOptions{MaxOpenConns: 7, MaxIdleConns: 2})
		if err := query(ctx, s); err != nil {
			t.Fatal(err)
		}
		if st := s.PoolStats(); st.Idle != 1 {
			t.Fatalf("with MaxIdleConns 2 after one query: %d idle, want 1", st.Idle)
		}

		// The cap holds: with one connection held by a transaction, the
		// next statement waits for it.
		s.ConfigurePool(store.PoolOptions{MaxOpenConns: 1, MaxIdleConns: 1})
		if got := s.PoolStats().MaxOpenConnections; got != 1 {
			t.Fatalf("MaxOpenConnections = %d, want 1", got)
		}
		tx, err := s.Client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waits := s.PoolStats().WaitCount
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err = query(short, s)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a second statement while the only connection is held: %v, want a deadline", err)
		}
		if got := s.PoolStats().WaitCount; got <= waits {
			t.Fatalf("WaitCount %d (before %d): the statement did not wait for the pool", got, waits)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := query(ctx, s); err != nil {
			t.Fatalf("after the transaction: %v", err)
		}
	})
}

// TestConfigurePoolRecyclesMySQLConnections: the lifetimes reach MySQL's
// pool. SQLite ignores them (there is no server that times connections out).
func TestConfigurePoolRecyclesMySQLConnections(t *testing.T) {
	s := storetest.NewMySQL(t)
	if s.Dialect() != dialect.MySQL {
		t.Fatalf("dialect %s", s.Dialect())
	}
	ctx := context.Background()

	s.ConfigurePool(store.PoolOptions{MaxOpenConns: 4, MaxIdleConns: 4, ConnMaxIdleTime: 50 * time.Millisecond})
	if err := query(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitPool(t, s, "closing a connection idle for longer than ConnMaxIdleTime", func(st sql.DBStats) bool {
		return st.MaxIdleTimeClosed > 0
	})

	s.ConfigurePool(store.PoolOptions{MaxOpenConns: 4, MaxIdleConns: 4, ConnMaxLifetime: 50 * time.Millisecond})
	if err := query(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitPool(t, s, "closing a connection older than ConnMaxLifetime", func(st sql.DBStats) bool {
		return st.MaxLifetimeClosed > 0
	})
}
