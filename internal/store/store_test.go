package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	_ "modernc.org/sqlite"

	"github.com/payments-platform/payments/ent/apikey"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

func TestOpenRejectsBadURLs(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, wantPrefix string
	}{
		{"postgres", "postgres://app:s3cr3tpw@db:5432/payments",
			`DATABASE_URL: unsupported scheme "postgres" (want sqlite:// or mysql://)`},
		{"empty", "", `DATABASE_URL: unsupported scheme "" (want sqlite:// or mysql://)`},
		{"bare DSN without scheme", "app:s3cr3tpw@tcp(127.0.0.1:3306)/payments",
			`DATABASE_URL: unsupported scheme "" (want sqlite:// or mysql://)`},
		{"bare DSN with a URL parameter", "app:s3cr3tpw@tcp(127.0.0.1:3306)/payments?x=http://y",
			`DATABASE_URL: unsupported scheme "" (want sqlite:// or mysql://)`},
		{"upper-case scheme of another database", "POSTGRESQL+ssl://app:s3cr3tpw@db/payments",
			`DATABASE_URL: unsupported scheme "POSTGRESQL+ssl" (want sqlite:// or mysql://)`},
		{"malformed MySQL DSN", "mysql://app:s3cr3tpw@tcp(127.0.0.1:3306)payments",
			"DATABASE_URL: malformed MySQL DSN: "},
		{"malformed MySQL parameter", "mysql://app:s3cr3tpw@tcp(127.0.0.1:3306)/payments?parseTime=maybe",
			"DATABASE_URL: malformed MySQL DSN: "},
		{"unreachable MySQL", "mysql://app:s3cr3tpw@tcp(127.0.0.1:1)/payments",
			"DATABASE_URL: cannot reach the database at 127.0.0.1:1: "},
		{"sqlite without path", "sqlite://", "DATABASE_URL: sqlite:// needs a file path"},
		{"sqlite in memory", "sqlite://:memory:", "DATABASE_URL: sqlite:// needs a plain file path"},
		{"sqlite under a file", "sqlite://" + filepath.Join(notADir, "x.db"),
			"DATABASE_URL: cannot create the directory of the SQLite database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := store.Open(ctx, tt.url)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tt.url)
			}
			if !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Errorf("error = %q, want prefix %q", err, tt.wantPrefix)
			}
			if strings.Contains(err.Error(), "s3cr3tpw") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

func TestOpenSQLiteCreatesDirectoryForRelativeAndAbsolutePaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, url := range []string{
		"sqlite://.data/payments.db",
		"sqlite://" + filepath.Join(dir, "abs", "nested", "payments.db"),
	} {
		t.Run(url, func(t *testing.T) {
			ctx := context.Background()
			s, err := store.Open(ctx, url)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			path := strings.TrimPrefix(url, "sqlite://")
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("database file: %v", err)
			}
			if got := s.Dialect(); got != dialect.SQLite {
				t.Errorf("Dialect() = %q, want %q", got, dialect.SQLite)
			}
			for pragma, want := range map[string]string{
				"journal_mode": "wal",
				"foreign_keys": "1",
				"busy_timeout": "10000",
			} {
				rows, err := s.Client.QueryContext(ctx, "PRAGMA "+pragma)
				if err != nil {
					t.Fatal(err)
				}
				var got string
				if !rows.Next() {
					t.Fatalf("PRAGMA %s: no row", pragma)
				}
				if err := rows.Scan(&got); err != nil {
					t.Fatal(err)
				}
				_ = rows.Close()
				if got != want {
					t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
				}
			}
		})
	}
}

// TestOpenSQLiteWritesUTC checks the text format of stored times, on which the
// chronological comparisons of every query depend.
func TestOpenSQLiteWritesUTC(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	local := t0.In(time.FixedZone("UTC+5", 5*3600))
	if err := s.ResetLoginFailures(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordLoginFailure(ctx, "k", local, store.DefaultThrottlePolicy); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var raw string
	if err := db.QueryRow("SELECT CAST(updated_at AS TEXT) FROM login_throttles").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if want := "2030-01-02 03:04:05.123456+00:00"; raw != want {
		t.Errorf("stored time = %q, want %q", raw, want)
	}
}

func TestMigrateIsIdempotentAndComplete(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		pending := func() string {
			t.Helper()
			var buf bytes.Buffer
			if err := s.Client.Schema.WriteTo(ctx, &buf); err != nil {
				t.Fatalf("WriteTo: %v", err)
			}
			return strings.TrimSpace(buf.String())
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		if p := pending(); p != "" {
			t.Fatalf("schema differs after migrating twice:\n%s", p)
		}
		// Prove that the check above can see a difference.
		drop := "DROP INDEX refreshtoken_family_id"
		if s.Dialect() == dialect.MySQL {
			drop += " ON refresh_tokens"
		}
		if _, err := s.Client.ExecContext(ctx, drop); err != nil {
			t.Fatal(err)
		}
		if p := pending(); !strings.Contains(p, "refreshtoken_family_id") {
			t.Fatalf("pending changes after dropping an index = %q, want the index", p)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if p := pending(); p != "" {
			t.Fatalf("schema differs after migrating:\n%s", p)
		}
	})
}

func TestPingAndClose(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		want := map[bool]string{true: dialect.MySQL, false: dialect.SQLite}[strings.HasSuffix(t.Name(), "/mysql")]
		if got := s.Dialect(); got != want {
			t.Errorf("Dialect() = %q, want %q", got, want)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		err := s.Ping(ctx)
		if !errors.Is(err, errs.ErrUnavailable) {
			t.Fatalf("Ping after Close = %v, want unavailable", err)
		}
	})
}

// TestConcurrentReadThenWriteTransactions guards the transaction mode other
// packages rely on: on SQLite a transaction that reads before it writes must
// wait for a concurrent writer instead of failing with "database is locked".
func TestConcurrentReadThenWriteTransactions(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "tx@example.com")
		const n = 10
		results := concurrently(n, func(i int) error {
			tx, err := s.Client.Tx(ctx)
			if err != nil {
				return err
			}
			if _, err := tx.APIKey.Query().Where(apikey.AccountID(acc.ID)).Count(ctx); err != nil {
				_ = tx.Rollback()
				return err
			}
			if _, err := tx.APIKey.Create().SetID(ids.New(ids.APIKey)).SetAccountID(acc.ID).SetName("k").
				SetPrefix("sk_").SetKeyHash(hash(fmt.Sprint(i))).SetCreatedAt(t0).Save(ctx); err != nil {
				_ = tx.Rollback()
				return err
			}
			return tx.Commit()
		})
		for _, err := range results {
			if err != nil {
				t.Fatalf("transaction: %v", err)
			}
		}
		if c := s.Client.APIKey.Query().CountX(ctx); c != n {
			t.Fatalf("%d keys, want %d", c, n)
		}
	})
}
