// Package store is the platform's persistence layer: accounts, sessions, API
// keys, login throttling and idempotency records, on SQLite (dev) or
// MySQL/MariaDB (CI and production) through one ent client.
//
// The store returns domain errors from internal/errs for everything a caller
// can cause (not found, already exists, invalid credentials); any other error
// is unexpected and surfaces as internal. Every method that changes state takes
// the current time from the caller, so tests and workflows control the clock.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/internal/errs"
)

// pingTimeout bounds the reachability check of Open, so a wrong address fails
// start-up quickly instead of hanging on a TCP timeout.
const pingTimeout = 5 * time.Second

// maxTxAttempts bounds the retries of a transaction that MySQL chose as a
// deadlock victim; such a transaction was rolled back entirely and is safe to
// run again.
const maxTxAttempts = 3

// Store is the persistence layer. Client is exposed for packages that own
// their own entities (payments, refunds, ...) and share the connection pool.
type Store struct {
	// Client is the generated ent client on the store's database.
	Client *ent.Client

	db      *sql.DB
	dialect string
}

// Open connects to the database named by a DATABASE_URL: sqlite://<path>
// (relative or absolute; the directory is created) or mysql://<go-sql-driver
// DSN>. It checks that the database answers, so a misconfiguration fails at
// start-up with a message that names the variable and never the password.
// Open does not create or update the schema; call Migrate for that.
func Open(ctx context.Context, databaseURL string) (*Store, error) {
	scheme, rest, ok := strings.Cut(databaseURL, "://")
	if ok {
		switch strings.ToLower(scheme) {
		case "sqlite":
			return openSQLite(ctx, rest)
		case "mysql":
			return openMySQL(ctx, rest)
		}
	}
	if !ok || !isScheme(scheme) {
		// Never echo what is not a scheme: it may be a bare DSN with a
		// password, whose parameters happen to contain "://".
		scheme = ""
	}
	return nil, fmt.Errorf("DATABASE_URL: unsupported scheme %q (want sqlite:// or mysql://)", scheme)
}

// isScheme reports whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, "+", "-" or ".").
func isScheme(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// sqliteParams make SQLite behave as a server database for our purposes:
// foreign keys enforced, readers not blocked by the writer (WAL), writers that
// wait for each other instead of failing (busy_timeout, and BEGIN IMMEDIATE so
// a transaction never has to upgrade its lock, which could fail at once), and
// times written in one UTC format so that comparing them as text is
// chronological.
//
// synchronous=NORMAL, SQLite's advice for WAL: a commit appends to the WAL
// without waiting for the disk, which is synced at checkpoints. The database
// stays consistent whatever happens and a crash of the process loses
// nothing; a power loss or an OS crash may lose the last commits. SQLite is
// the embedded database of `dev` and the tests, where SQLite's one writer
// waiting for an fsync per commit was the bottleneck of make bench
// (docs/PERFORMANCE.md); production runs on MySQL. A SQLite deployment that
// must survive power loss adds ?_pragma=synchronous(FULL) to DATABASE_URL,
// which replaces this one (other parameters there are added to these).
const sqliteParams = "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
	sqliteSynchronous + "&_txlock=immediate&_time_format=sqlite&_timezone=UTC"

// sqliteSynchronous is the synchronous pragma of sqliteParams.
const sqliteSynchronous = "&_pragma=synchronous(NORMAL)"

func openSQLite(ctx context.Context, rest string) (*Store, error) {
	path, extra, _ := strings.Cut(rest, "?")
	switch {
	case path == "":
		return nil, errors.New("DATABASE_URL: sqlite:// needs a file path, as in sqlite://.data/payments.db")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		// Each pooled connection would get its own empty in-memory database.
		return nil, fmt.Errorf("DATABASE_URL: sqlite:// needs a plain file path, not %q", path)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("DATABASE_URL: cannot create the directory of the SQLite database: %w", err)
		}
	}
	params := sqliteParams
	if strings.Contains(extra, "synchronous(") {
		// The driver runs repeated pragmas in its own order, not the URL's:
		// the caller's synchronous replaces ours.
		params = strings.Replace(params, sqliteSynchronous, "", 1)
	}
	dsn := path + "?" + params
	if extra != "" {
		dsn += "&" + extra
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: cannot open the SQLite database %s: %w", path, err)
	}
	if err := ping(ctx, db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("DATABASE_URL: cannot open the SQLite database %s: %w", path, err)
	}
	return newStore(db, dialect.SQLite), nil
}

func openMySQL(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: malformed MySQL DSN: %s", redact(err.Error(), dsnPassword(dsn)))
	}
	// Times are stored and read as UTC with their fraction; utf8mb4 keeps every
	// Unicode character (MySQL's "utf8" does not).
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: malformed MySQL DSN: %s", redact(err.Error(), dsnPassword(dsn)))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = pingTimeout
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: malformed MySQL DSN: %s", redact(err.Error(), dsnPassword(dsn)))
	}
	db := sql.OpenDB(conn)
	st := newStore(db, dialect.MySQL)
	st.ConfigurePool(DefaultPool)
	if err := ping(ctx, db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("DATABASE_URL: cannot reach the database at %s: %s", cfg.Addr, redact(err.Error(), cfg.Passwd))
	}
	return st, nil
}

// PoolOptions limit the connection pool of one process (paymentsd reads them
// from DATABASE_MAX_OPEN_CONNS, DATABASE_MAX_IDLE_CONNS,
// DATABASE_CONN_MAX_LIFETIME and DATABASE_CONN_MAX_IDLE_TIME). A MySQL
// server refuses connections beyond its max_connections (151 by default)
// to all processes together, so each process must stay within its share.
type PoolOptions struct {
	// MaxOpenConns caps the connections in use and idle; 0 means no cap.
	MaxOpenConns int
	// MaxIdleConns is how many connections are kept open while idle; 0
	// keeps none.
	MaxIdleConns int
	// ConnMaxLifetime and ConnMaxIdleTime recycle connections before the
	// server closes them (MySQL's wait_timeout); 0 means never.
	ConnMaxLifetime time.Duration
	ConnMaxIdleTime time.Duration
}

// DefaultPool is what Open sets on MySQL until ConfigurePool is called: no
// cap on open connections (tests and tools), 16 idle, recycled before a
// server's idle timeout.
var DefaultPool = PoolOptions{MaxIdleConns: 16, ConnMaxLifetime: 5 * time.Minute, ConnMaxIdleTime: time.Minute}

// ConfigurePool applies the pool limits. On SQLite only the connection
// counts apply: there is no server to close an idle connection, and
// recycling one would only throw away its page cache.
func (s *Store) ConfigurePool(o PoolOptions) {
	s.db.SetMaxOpenConns(max(o.MaxOpenConns, 0))
	s.db.SetMaxIdleConns(max(o.MaxIdleConns, 0))
	if s.dialect == dialect.SQLite {
		return
	}
	s.db.SetConnMaxLifetime(max(o.ConnMaxLifetime, 0))
	s.db.SetConnMaxIdleTime(max(o.ConnMaxIdleTime, 0))
}

// PoolStats reports the connection pool's limits and use, for operators
// and tests.
func (s *Store) PoolStats() sql.DBStats { return s.db.Stats() }

// redact removes a password from an error message. The driver does not echo
// passwords today; this keeps it that way should one of its messages change.
func redact(msg, password string) string {
	if password == "" {
		return msg
	}
	return strings.ReplaceAll(msg, password, "***")
}

// dsnPassword finds the password of a DSN the driver could not parse, the way
// the driver splits it: "user:password@" before the last '@' that precedes
// the last '/'.
func dsnPassword(dsn string) string {
	if slash := strings.LastIndex(dsn, "/"); slash >= 0 {
		dsn = dsn[:slash]
	}
	at := strings.LastIndex(dsn, "@")
	if at < 0 {
		return ""
	}
	_, pass, _ := strings.Cut(dsn[:at], ":")
	return pass
}

func ping(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return db.PingContext(ctx)
}

func newStore(db *sql.DB, name string) *Store {
	drv := entsql.OpenDB(name, db)
	return &Store{Client: ent.NewClient(ent.Driver(drv)), db: db, dialect: name}
}

// Migrate creates or updates the schema to match ent/schema. It adds tables,
// columns and indexes and drops indexes the schema no longer has, but never
// drops a column or table, so running an older binary's migration cannot lose
// data. Running it again is a no-op. On the first start after the upgrade
// that added the transaction history (an empty history, payments saved),
// it backfills the history (BackfillHistory).
func (s *Store) Migrate(ctx context.Context) error {
	// ent's migration writes package-level table definitions, so two
	// migrations in one process (parallel tests) must not overlap.
	migrateMu.Lock()
	defer migrateMu.Unlock()
	if err := s.Client.Schema.Create(ctx, migrate.WithDropIndex(true)); err != nil {
		return fmt.Errorf("migrate the %s schema: %w", s.dialect, err)
	}
	history, err := s.Client.Transaction.Query().Exist(ctx)
	if err != nil || history {
		return err
	}
	if payments, err := s.Client.Payment.Query().Exist(ctx); err != nil || !payments {
		return err
	}
	_, err = s.BackfillHistory(ctx)
	return err
}

var migrateMu sync.Mutex

// Ping reports whether the database answers; readiness probes use it.
func (s *Store) Ping(ctx context.Context) error {
	if err := ping(ctx, s.db); err != nil {
		return errs.Unavailable("the database is unreachable", err)
	}
	return nil
}

// Close releases the connection pool.
func (s *Store) Close() error {
	return s.Client.Close()
}

// Dialect is the ent dialect name ("sqlite3" or "mysql"), for the rare caller
// that must write dialect-specific SQL.
func (s *Store) Dialect() string { return s.dialect }

// withTx runs fn in a transaction, committed when fn returns nil. A MySQL
// deadlock victim is retried, so fn must not have effects outside the
// transaction.
func (s *Store) withTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, fn)
		if err == nil || attempt == maxTxAttempts || !isDeadlock(err) {
			return err
		}
	}
}

func (s *Store) tryTx(ctx context.Context, fn func(tx *ent.Tx) error) (err error) {
	tx, err := s.Client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// utc normalises a time to what both databases store: UTC, microseconds, no
// monotonic reading. Storing exactly what was passed keeps returned entities
// equal to what a later read gives.
func utc(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// MySQL error numbers and SQLite extended result codes we act upon.
const (
	mysqlDuplicateKey   = 1062
	mysqlNoReferenced   = 1452
	mysqlDeadlock       = 1213
	sqliteUniqueCode    = sqlite3.SQLITE_CONSTRAINT_UNIQUE
	sqlitePrimaryKey    = sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	sqliteForeignKeyErr = sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
)

// isUniqueViolation reports a unique-index violation. It checks the driver's
// error codes rather than message text, which for MySQL includes the
// offending value and so could contain anything.
func isUniqueViolation(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlDuplicateKey
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteUniqueCode || se.Code() == sqlitePrimaryKey
	}
	return false
}

// isForeignKeyViolation reports an insert that references a missing row.
func isForeignKeyViolation(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlNoReferenced
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteForeignKeyErr
	}
	return false
}

func isDeadlock(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == mysqlDeadlock
}

// invalid turns an ent validator failure (a value the schema forbids) into an
// invalid-argument error naming the field; other errors pass through.
func invalid(err error) error {
	var ve *ent.ValidationError
	if errors.As(err, &ve) {
		return errs.InvalidArgument(ve.Name, "invalid %s: %v", ve.Name, ve.Unwrap())
	}
	return err
}

// wrap adds context to an unexpected error and returns domain errors as they
// are, since their message is meant for the caller.
func wrap(err error, context string) error {
	if err == nil || errs.KindOf(err) != errs.KindInternal {
		return err
	}
	return fmt.Errorf("%s: %w", context, err)
}
