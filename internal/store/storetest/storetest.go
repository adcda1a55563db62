// Package storetest gives tests a fresh, migrated store on SQLite and, when
// PAYMENTS_TEST_MYSQL_DSN is set, on MySQL/MariaDB, so every store-backed test
// runs on both databases the platform supports.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/payments-platform/payments/internal/store"
)

// MySQLDSNEnv names the variable with a go-sql-driver DSN of a MySQL or
// MariaDB server on which tests may create and drop databases, such as
// root@tcp(127.0.0.1:3306)/test (a mysql:// prefix is accepted).
const MySQLDSNEnv = "PAYMENTS_TEST_MYSQL_DSN"

// setupTimeout bounds creating, migrating and dropping a test database.
const setupTimeout = time.Minute

// ForEachDB runs fn as the subtest "sqlite" on a fresh SQLite file and as the
// subtest "mysql" on a fresh MySQL database. Without PAYMENTS_TEST_MYSQL_DSN
// the mysql subtest is skipped with a message saying so, and one line per
// package in `go test` output (announceSkip); with it, an unreachable server
// fails the test rather than passing silently.
func ForEachDB(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, NewSQLite(t)) })
	t.Run("mysql", func(t *testing.T) { fn(t, NewMySQL(t)) })
}

// NewSQLite opens a fresh, migrated store on a SQLite file in a temporary
// directory; it is closed when the test ends.
func NewSQLite(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	path := filepath.Join(t.TempDir(), "payments.db")
	s, err := store.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatalf("open SQLite store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate SQLite store: %v", err)
	}
	return s
}

// NewMySQL creates a uniquely named database (payments_t_<random>) on the
// server of PAYMENTS_TEST_MYSQL_DSN, opens and migrates a store on it, and
// drops it when the test ends. It skips the test, loudly, when the variable
// is unset, and fails it when the server cannot be used.
func NewMySQL(t testing.TB) *store.Store {
	t.Helper()
	raw := strings.TrimSpace(os.Getenv(MySQLDSNEnv))
	if raw == "" {
		announceSkip()
		t.Skip(skipMessage)
	}
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(raw, "mysql://"))
	if err != nil {
		t.Fatalf("%s is not a valid go-sql-driver DSN: %v", MySQLDSNEnv, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	// The server connection, without a database, creates and drops ours.
	admin := cfg.Clone()
	admin.DBName = ""
	admin.Timeout = 5 * time.Second
	connector, err := mysql.NewConnector(admin)
	if err != nil {
		t.Fatalf("%s: %v", MySQLDSNEnv, err)
	}
	server := sql.OpenDB(connector)
	t.Cleanup(func() { _ = server.Close() })
	if err := server.PingContext(ctx); err != nil {
		t.Fatalf("%s is set but the MySQL server at %s cannot be reached: %v", MySQLDSNEnv, cfg.Addr, err)
	}
	name := "payments_t_" + randomHex(t, 8)
	if _, err := server.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if _, err := server.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})

	db := cfg.Clone()
	db.DBName = name
	s, err := store.Open(ctx, "mysql://"+db.FormatDSN())
	if err != nil {
		t.Fatalf("open MySQL store: %v", err)
	}
	// Registered after the drop, so it runs before it: close, then drop.
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate MySQL store: %v", err)
	}
	return s
}

const skipMessage = "MySQL store tests not run: set " + MySQLDSNEnv + " (e.g. root@tcp(127.0.0.1:3306)/test)"

var skipAnnounced sync.Once

// announceSkip says once per test binary (one package's run) that the MySQL
// half is skipped, where `go test ./...` shows it. The go command prints a
// passing package's output only with -v, so a t.Skip alone would go unseen
// and a machine without the variable would pass for one that ran both
// databases. The line goes to the go command's own standard error (on
// Linux, its /proc entry), falling back to ours.
func announceSkip() {
	skipAnnounced.Do(func() {
		pkg := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
		line := fmt.Sprintf("storetest: %s: %s\n", pkg, skipMessage)
		if f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/2", os.Getppid()), os.O_WRONLY|os.O_APPEND, 0); err == nil {
			defer f.Close()
			if _, err := f.WriteString(line); err == nil {
				return
			}
		}
		_, _ = os.Stderr.WriteString(line)
	})
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random database name: %v", err)
	}
	return hex.EncodeToString(b)
}
