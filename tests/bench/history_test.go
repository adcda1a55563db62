package bench

// BenchmarkHistory measures the transaction history (TransactionService.
// ListTransactions) on MySQL/MariaDB as the table grows, and what the API's
// stack costs on top of the query. Method:
//
//   - A fresh database (bench_history_<random>) on the server of
//     PAYMENTS_TEST_MYSQL_DSN (default root@tcp(127.0.0.1:3306)/test) is
//     migrated by the store and dropped at the end.
//   - Rows are seeded with multi-row INSERTs through database/sql, in
//     created_at order: one merchant holds ~90% of them, 50 others the
//     rest, ~10,000 customers, mostly succeeded USD payments with refunds
//     and disputes mixed in, over two years. First BENCH_HISTORY_SMALL rows
//     (10,000: an even sample of the whole two years), then the rest up to
//     BENCH_HISTORY_ROWS (1,000,000), then ANALYZE TABLE.
//   - Latencies are p50s of BENCH_HISTORY_CALLS (300) sequential calls
//     after a warm-up (a listing slower than BENCH_HISTORY_CALL_SECONDS,
//     30, stops there, with at least 5 calls), through the full stack: real
//     HTTP requests (Connect JSON, HTTP/1.1 keep-alive) with the merchant's
//     Bearer JWT to an in-process httptest server running
//     api.New(...).Handler() on the store. The first page (page_size 20)
//     is measured at 10k rows and again at 1M; the deep page at 1M starts
//     from a token built with (*api.Server).PageTokenAt at a row ~90%
//     into the merchant's matching rows (found with ORDER BY created_at
//     DESC, id DESC LIMIT 1 OFFSET n).
//     Each is measured unfiltered, with type+status+currency, and with a
//     created range. Target: deep page at 1M <= 1.5 x first page at 10k.
//     As the machine's speed drifts (other work, a shared VM), the 10k
//     rows are also copied into a database of their own with its own API
//     server, and at the end the first page there and the deep page at 1M
//     are timed again in alternation, call by call.
//   - Throughput: BENCH_HISTORY_CLIENTS (8) concurrent clients, for
//     BENCH_HISTORY_SECONDS (6) per side in BENCH_HISTORY_ROUNDS (3)
//     alternating rounds, on the first page (unfiltered) and on the deep
//     page (type+status+currency), against the full stack and against a
//     bare net/http + database/sql handler that checks only that a Bearer
//     token is there, runs the SQL the store runs for a merchant (two
//     keyset queries, merchant_id and customer_id, merged; text and
//     arguments are checked to be ent's own, and the rows answered to be
//     the full stack's), scans the rows into paymentsv1.Transaction and
//     encodes the same ListTransactionsResponse with protojson. The full
//     stack is called as Go's client calls it (it asks for gzip, which
//     Connect then applies) and again with Accept-Encoding: identity, as
//     the bare handler answers. Target: full stack >= 0.7 x bare. A
//     listing whose p50 exceeds 100 ms (a plan that scans) is skipped.
//   - The plans of the store's queries (MariaDB ANALYZE: chosen index, rows
//     estimated and read) are printed with the figures.
//
// Everything (load generator, API, MariaDB) shares the machine's CPUs; the
// summary shows the load average, as other work on the machine skews the
// figures. BENCH_HISTORY_KEEP=1 keeps the database for a look at the plans.
// Other knobs: BENCH_HISTORY_BATCH (2000 rows per INSERT),
// BENCH_HISTORY_SEED_WORKERS (2), BENCH_HISTORY_SEED (the rows' generator).

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/go-sql-driver/mysql"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	enttxn "github.com/payments-platform/payments/ent/transaction"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/testenv"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
)

const (
	historyPageSize     = 20
	historyDefaultDSN   = "root@tcp(127.0.0.1:3306)/test"
	historyListPath     = "/payments.v1.TransactionService/ListTransactions"
	historyDeepFraction = 0.9
	// historySlowListing: a listing slower than this (sequentially) gets
	// no throughput comparison.
	historySlowListing = 100 * time.Millisecond
	historyOtherMerch  = 50
	historyCustomers   = 10_000
	historySpan        = 730 * 24 * time.Hour
	// historyColumns are the transactions table's columns in ent's order,
	// which is the order of ent's SELECT.
	historyColumns = "id, type, movement, source_id, payment_id, amount, currency, status, merchant_id, customer_id, description, journal_id, workflow_id, created_at, updated_at"
)

// historyQuery is one listing the benchmark measures: the request without
// a page token.
type historyQuery struct {
	name string
	req  *paymentsv1.ListTransactionsRequest
}

// historyBench is the state of one run.
type historyBench struct {
	b         *testing.B
	ctx       context.Context
	cfg       *mysql.Config // the bench database, as the store opens it
	admin     *mysql.Config // the server's DSN
	server    *sql.DB       // the server, without a database
	tokens    *auth.Tokens
	key       []byte
	smallURL  string  // the full stack on the copy of the small table
	seedDB    *sql.DB // client-side interpolation, for bulk inserts and ANALYZE
	bareDB    *sql.DB // configured as the store's pool, for the bare handler
	st        *store.Store
	srv       *api.Server
	fullURL   string
	bareURL   string
	merchant  string
	principal auth.Principal
	jwt       string
	bareKey   []byte
	budget    time.Duration // of one p50
	calls     int           // of one p50

	// seeding
	start      time.Time
	total      int
	small      int
	step       int
	others     []string
	customers  []string
	seed       uint64
	batch      int
	seedWorker int
}

// BenchmarkHistory runs once (use -benchtime 1x); see the comment above.
func BenchmarkHistory(b *testing.B) {
	h := &historyBench{
		b: b, ctx: context.Background(),
		total:      envInt("BENCH_HISTORY_ROWS", 1_000_000),
		small:      envInt("BENCH_HISTORY_SMALL", 10_000),
		batch:      envInt("BENCH_HISTORY_BATCH", 2_000),
		seedWorker: envInt("BENCH_HISTORY_SEED_WORKERS", 2),
		seed:       uint64(envInt("BENCH_HISTORY_SEED", 20260101)),
	}
	if h.total < h.small {
		h.small = h.total
	}
	h.step = h.total / h.small
	h.calls = envInt("BENCH_HISTORY_CALLS", 300)
	calls := h.calls
	h.budget = time.Duration(envInt("BENCH_HISTORY_CALL_SECONDS", 30)) * time.Second
	clients := envInt("BENCH_HISTORY_CLIENTS", 8)
	seconds := envInt("BENCH_HISTORY_SECONDS", 6)
	rounds := envInt("BENCH_HISTORY_ROUNDS", 3)
	loadStart := loadAverage()
	h.open()
	h.startServers()

	end := time.Now().UTC().Truncate(24 * time.Hour)
	h.start = end.Add(-historySpan)
	mid := h.start.Add(historySpan / 4)
	queries := []historyQuery{
		{"unfiltered", &paymentsv1.ListTransactionsRequest{PageSize: historyPageSize}},
		{"type+status+currency", &paymentsv1.ListTransactionsRequest{
			PageSize: historyPageSize,
			Type:     paymentsv1.TransactionType_TRANSACTION_TYPE_PAYMENT,
			Status:   paymentsv1.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED,
			Currency: "USD",
		}},
		{"created range (12 months)", &paymentsv1.ListTransactionsRequest{
			PageSize:      historyPageSize,
			CreatedAfter:  timestamppb.New(mid),
			CreatedBefore: timestamppb.New(mid.Add(historySpan / 2)),
		}},
	}

	// Stage 1: the small table.
	seedSmall := h.seedRows(true)
	h.analyze()
	fmt.Fprintf(os.Stdout, "\nhistory: seeded %d rows in %v\n", h.rowCount(), seedSmall.Round(time.Millisecond))
	first10k := make([]time.Duration, len(queries))
	for i, q := range queries {
		h.checkSameSQL(q.req, nil)
		first10k[i] = h.p50(q.name+", first page @"+human(h.small), h.fullBody(q.req))
	}
	plans := h.plans("first page @"+human(h.small), queries, nil)
	h.keepSmall()

	// Stage 2: the large table.
	seedLarge := h.seedRows(false)
	analyzeStart := time.Now()
	h.analyze()
	analyzeTime := time.Since(analyzeStart)
	rows := h.rowCount()
	merchantRows := h.count(&paymentsv1.ListTransactionsRequest{})
	fmt.Fprintf(os.Stdout, "history: seeded %d more rows in %v (%.0f rows/s), ANALYZE TABLE %v; %d rows, %d of the merchant\n",
		rows-h.small, seedLarge.Round(time.Millisecond), float64(rows-h.small)/seedLarge.Seconds(),
		analyzeTime.Round(time.Millisecond), rows, merchantRows)
	first1M := make([]time.Duration, len(queries))
	deep1M := make([]time.Duration, len(queries))
	cursors := make([]*store.Cursor, len(queries))
	offsets := make([]int, len(queries))
	for i, q := range queries {
		cursors[i], offsets[i] = h.deepCursor(q.req)
		h.checkSameSQL(q.req, nil)
		h.checkSameSQL(q.req, cursors[i])
	}
	for i, q := range queries {
		first1M[i] = h.p50(q.name+", first page @"+human(rows), h.fullBody(q.req))
		deep1M[i] = h.p50(q.name+", deep page @"+human(rows), h.fullBody(h.withFullToken(q.req, cursors[i])))
	}
	// Again, first pages of the small table's copy in alternation with
	// deep pages of the large one.
	altFirst := make([]time.Duration, len(queries))
	altDeep := make([]time.Duration, len(queries))
	for i, q := range queries {
		p := h.p50s(
			historyTarget{q.name + ", first page @" + human(h.small) + " (alternated)", h.smallURL, h.fullBody(q.req)},
			historyTarget{q.name + ", deep page @" + human(rows) + " (alternated)", h.fullURL, h.fullBody(h.withFullToken(q.req, cursors[i]))},
		)
		altFirst[i], altDeep[i] = p[0], p[1]
	}
	plans += h.plans("first page @"+human(rows), queries, nil)
	plans += h.plans("deep page @"+human(rows), queries, cursors)

	// Throughput: the full stack against the bare handler, on the first
	// page and on the deep filtered page.
	type tput struct {
		name string
		// rates and latencies of the full stack (gzip as Go's client
		// asks, then identity) and of the bare handler
		full, ident, bare          float64
		fullLat, identLat, bareLat []time.Duration
	}
	d := time.Duration(seconds) * time.Second
	slice := d / time.Duration(rounds)
	var tputs []tput
	var skipped []string
	for _, c := range []struct {
		name string
		full string
		bare string
		p50  time.Duration // sequential, full stack
	}{
		{"first page, unfiltered", h.fullBody(queries[0].req), h.bareBody(queries[0].req, nil), first1M[0]},
		{"deep page, type+status+currency", h.fullBody(h.withFullToken(queries[1].req, cursors[1])), h.bareBody(queries[1].req, cursors[1]), deep1M[1]},
	} {
		if c.p50 > historySlowListing {
			// The database's scan would be all there is to see, slowly.
			skipped = append(skipped, fmt.Sprintf("  %-33s skipped: its p50 is %v (see its plan below)\n", c.name, c.p50.Round(time.Millisecond)))
			continue
		}
		h.checkSameAnswer(c.full, c.bare)
		hc := testenv.HTTPClient()
		full := func(int64) error { return h.call(hc, h.fullURL, c.full, false) }
		ident := func(int64) error { return h.call(hc, h.fullURL, c.full, true) }
		bare := func(int64) error { return h.call(hc, h.bareURL, c.bare, false) }
		_ = phase(b, clients, time.Second, full)
		_ = phase(b, clients, time.Second, ident)
		_ = phase(b, clients, time.Second, bare)
		var t tput
		t.name = c.name
		for r := 0; r < rounds; r++ {
			sides := []func(){
				func() { t.fullLat = append(t.fullLat, phase(b, clients, slice, full)...) },
				func() { t.identLat = append(t.identLat, phase(b, clients, slice, ident)...) },
				func() { t.bareLat = append(t.bareLat, phase(b, clients, slice, bare)...) },
			}
			for k := range sides {
				sides[(r+k)%len(sides)]()
			}
		}
		hc.CloseIdleConnections()
		t.full = float64(len(t.fullLat)) / d.Seconds()
		t.ident = float64(len(t.identLat)) / d.Seconds()
		t.bare = float64(len(t.bareLat)) / d.Seconds()
		tputs = append(tputs, t)
	}

	// The figures.
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nBenchmarkHistory on MySQL %s, %d CPUs (GOMAXPROCS %d), %s; load average %s at the start, %s at the end\n",
		h.serverVersion(), runtime.NumCPU(), runtime.GOMAXPROCS(0), h.cfg.Addr, loadStart, loadAverage())
	fmt.Fprintf(&out, "  seeding: %d rows in %v, then %d more in %v (%.0f rows/s, batches of %d, %d workers), ANALYZE %v\n",
		h.small, seedSmall.Round(time.Millisecond), rows-h.small, seedLarge.Round(time.Millisecond),
		float64(rows-h.small)/seedLarge.Seconds(), h.batch, h.seedWorker, analyzeTime.Round(time.Millisecond))
	fmt.Fprintf(&out, "  the merchant holds %d of %d rows; latency = p50 of %d sequential calls after warm-up, full stack, page_size %d\n",
		merchantRows, rows, calls, historyPageSize)
	fmt.Fprintf(&out, "  in stages (first pages measured right after seeding %s, the others after %s):\n", human(h.small), human(rows))
	fmt.Fprintf(&out, "  %-26s %12s %12s %12s %10s  %s\n", "ListTransactions", "first@"+human(h.small), "first@"+human(rows), "deep@"+human(rows), "deep/first", "target <= 1.5")
	for i, q := range queries {
		ratio := float64(deep1M[i]) / float64(first10k[i])
		fmt.Fprintf(&out, "  %-26s %10.2fms %10.2fms %10.2fms %10.2f  %s (deep offset %d)\n",
			q.name, ms(first10k[i]), ms(first1M[i]), ms(deep1M[i]), ratio, met(ratio <= 1.5), offsets[i])
	}
	fmt.Fprintf(&out, "  alternated (call by call: the first page on a copy of the %s rows, the deep page on the %s):\n", human(h.small), human(rows))
	fmt.Fprintf(&out, "  %-26s %12s %12s %10s  %s\n", "ListTransactions", "first@"+human(h.small), "deep@"+human(rows), "deep/first", "target <= 1.5")
	for i, q := range queries {
		ratio := float64(altDeep[i]) / float64(altFirst[i])
		fmt.Fprintf(&out, "  %-26s %10.2fms %10.2fms %10.2f  %s\n", q.name, ms(altFirst[i]), ms(altDeep[i]), ratio, met(ratio <= 1.5))
		key := strings.NewReplacer(" ", "_", "+", "_", "(", "", ")", "").Replace(q.name)
		b.ReportMetric(ms(first10k[i]), key+"_first_small_p50_ms")
		b.ReportMetric(ms(deep1M[i]), key+"_deep_large_p50_ms")
		b.ReportMetric(float64(deep1M[i])/float64(first10k[i]), key+"_deep/first")
		b.ReportMetric(ratio, key+"_alternated_deep/first")
	}
	fmt.Fprintf(&out, "  throughput, %d clients, %v per side in %d alternating rounds; the full stack as Go's client calls it (asks for gzip,\n"+
		"  which Connect applies) and with Accept-Encoding: identity; bare: the two queries of the store for a merchant, protojson:\n",
		clients, d, rounds)
	fmt.Fprintf(&out, "  %-33s %22s %22s %22s %9s %9s\n", "", "full (gzip)", "full (identity)", "bare (identity)", "full/bare", "ident/bare")
	for _, t := range tputs {
		ratio, iratio := t.full/t.bare, t.ident/t.bare
		fmt.Fprintf(&out, "  %-33s %7.1f/s p50 %6.2fms %7.1f/s p50 %6.2fms %7.1f/s p50 %6.2fms %9.2f %9.2f  target >= 0.7 %s (identity: %s)\n",
			t.name, t.full, ms(pct(t.fullLat, .5)), t.ident, ms(pct(t.identLat, .5)), t.bare, ms(pct(t.bareLat, .5)),
			ratio, iratio, met(ratio >= 0.7), met(iratio >= 0.7))
		key := strings.NewReplacer(" ", "_", ",", "", "+", "_").Replace(t.name)
		b.ReportMetric(t.full, key+"_full_req/s")
		b.ReportMetric(t.ident, key+"_full_identity_req/s")
		b.ReportMetric(t.bare, key+"_bare_req/s")
		b.ReportMetric(ratio, key+"_full/bare")
	}
	for _, s := range skipped {
		out.WriteString(s)
	}
	out.WriteString(plans)
	fmt.Fprint(os.Stdout, out.String())
}

// open checks the server, creates the bench database, migrates it with
// the store and opens the raw pools on it; all is dropped at the end.
func (h *historyBench) open() {
	b := h.b
	raw := strings.TrimSpace(os.Getenv("PAYMENTS_TEST_MYSQL_DSN"))
	if raw == "" {
		raw = historyDefaultDSN
	}
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(raw, "mysql://"))
	if err != nil {
		b.Fatalf("BenchmarkHistory: PAYMENTS_TEST_MYSQL_DSN is not a valid go-sql-driver DSN: %v", err)
	}
	admin := cfg.Clone()
	admin.DBName = ""
	admin.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(admin)
	if err != nil {
		b.Fatalf("BenchmarkHistory: %v", err)
	}
	server := sql.OpenDB(conn)
	b.Cleanup(func() { _ = server.Close() })
	if err := server.PingContext(h.ctx); err != nil {
		b.Fatalf("BenchmarkHistory needs MySQL/MariaDB, and the server at %s cannot be reached: %v\n"+
			"(set PAYMENTS_TEST_MYSQL_DSN to a go-sql-driver DSN of a server where this user may create databases; default %s)",
			cfg.Addr, err, historyDefaultDSN)
	}
	h.server, h.admin = server, cfg
	var rnd [6]byte
	_, _ = crand.Read(rnd[:])
	name := "bench_history_" + hex.EncodeToString(rnd[:])
	var db *mysql.Config
	h.st, db = h.createDB(name)

	// The bare handler's pool, as store.Open configures its own.
	db.ParseTime = true
	db.Loc = time.UTC
	if err := db.Apply(mysql.Charset("utf8mb4", "")); err != nil {
		b.Fatal(err)
	}
	h.cfg = db
	h.bareDB = openDB(b, db)
	h.bareDB.SetMaxIdleConns(store.DefaultPool.MaxIdleConns)
	h.bareDB.SetConnMaxLifetime(store.DefaultPool.ConnMaxLifetime)
	h.bareDB.SetConnMaxIdleTime(store.DefaultPool.ConnMaxIdleTime)
	seed := db.Clone()
	seed.InterpolateParams = true
	h.seedDB = openDB(b, seed)
	h.seedDB.SetMaxIdleConns(16)
}

// createDB creates a database on the server, dropped at the end, and
// opens and migrates a store on it.
func (h *historyBench) createDB(name string) (*store.Store, *mysql.Config) {
	b := h.b
	if _, err := h.server.ExecContext(h.ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		b.Fatalf("create database %s: %v", name, err)
	}
	b.Cleanup(func() {
		if os.Getenv("BENCH_HISTORY_KEEP") == "1" {
			fmt.Fprintf(os.Stdout, "history: BENCH_HISTORY_KEEP=1: database %s kept; drop it with DROP DATABASE `%s`\n", name, name)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if _, err := h.server.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			b.Errorf("drop database %s: %v", name, err)
		}
	})
	db := h.admin.Clone()
	db.DBName = name
	st, err := store.Open(h.ctx, "mysql://"+db.FormatDSN())
	if err != nil {
		b.Fatalf("open the store on %s: %v", name, err)
	}
	b.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(h.ctx); err != nil {
		b.Fatalf("migrate %s: %v", name, err)
	}
	return st, db
}

// keepSmall copies the small table (and the accounts) into a database of
// its own with its own API server, so that first pages at 10k rows can be
// measured again later in alternation with deep pages at 1M, under the
// same conditions.
func (h *historyBench) keepSmall() {
	big := h.cfg.DBName
	name := big + "_small"
	st, _ := h.createDB(name)
	for _, table := range []string{"accounts", "transactions"} {
		if _, err := h.seedDB.ExecContext(h.ctx, "INSERT INTO `"+name+"`.`"+table+"` SELECT * FROM `"+big+"`.`"+table+"`"); err != nil {
			h.b.Fatalf("copy %s: %v", table, err)
		}
	}
	if _, err := h.seedDB.ExecContext(h.ctx, "ANALYZE TABLE `"+name+"`.transactions"); err != nil {
		h.b.Fatal(err)
	}
	h.smallURL = h.serve(st)
}

func openDB(b *testing.B, cfg *mysql.Config) *sql.DB {
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		b.Fatal(err)
	}
	db := sql.OpenDB(conn)
	b.Cleanup(func() { _ = db.Close() })
	return db
}

// startServers starts the full stack and the bare handler, and makes the
// merchant with its access token.
func (h *historyBench) startServers() {
	b := h.b
	h.key = []byte("bench-history-signing-key-0123456789abcdef")
	h.tokens = auth.NewTokens(h.key, nil, "paymentsd", "payments-api", 2*time.Hour, nil)
	h.fullURL = h.serve(h.st)
	tokens := h.tokens

	h.bareKey = []byte("bench-history-bare-key")
	bare := httptest.NewServer(http.HandlerFunc(h.serveBare))
	b.Cleanup(bare.Close)
	h.bareURL = bare.URL + historyListPath

	hash, err := auth.HashPassword("correct-horse-battery", auth.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		b.Fatal(err)
	}
	a, err := h.st.CreateAccount(h.ctx, store.NewAccount{Email: "history-merchant@example.com", PasswordHash: hash, Role: account.RoleMerchant})
	if err != nil {
		b.Fatal(err)
	}
	h.merchant = a.ID
	h.principal = auth.Principal{AccountID: a.ID, Role: string(account.RoleMerchant)}
	if h.jwt, _, err = tokens.Issue(a.ID, string(account.RoleMerchant)); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now().Add(-historySpan)
	for range historyOtherMerch {
		h.others = append(h.others, ids.NewAt(ids.Account, t0))
	}
	for range historyCustomers {
		h.customers = append(h.customers, ids.NewAt(ids.Account, t0))
	}
}

// serve starts the full stack on st, as paymentsd configures its HTTP
// server, and returns the URL of ListTransactions. Every server shares the
// keys, so tokens work on all of them.
func (h *historyBench) serve(st *store.Store) string {
	logger := slog.New(slog.DiscardHandler)
	srv := api.New(api.Deps{Store: st, Tokens: h.tokens, PageTokenSecret: h.key, Logger: logger,
		PasswordParams: auth.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}})
	if h.srv == nil {
		h.srv = srv
	}
	handler := srv.Handler()
	full := httptest.NewUnstartedServer(handler)
	full.Config = api.HTTPServer("127.0.0.1:0", handler, logger)
	full.Start()
	h.b.Cleanup(full.Close)
	return full.URL + historyListPath
}

// seedRows inserts the small sample (every step-th row) or all the other
// rows, in created_at order, and returns how long it took.
func (h *historyBench) seedRows(small bool) time.Duration {
	b := h.b
	type chunk struct{ lo, hi int } // row numbers [lo, hi)
	chunks := make(chan chunk)
	var (
		wg       sync.WaitGroup
		failed   atomic.Pointer[error]
		inserted atomic.Int64
	)
	began := time.Now()
	for range h.seedWorker {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := h.seedDB.Conn(h.ctx)
			if err != nil {
				failed.Store(&err)
				return
			}
			defer conn.Close()
			// The rows are unique by construction.
			if _, err := conn.ExecContext(h.ctx, "SET SESSION unique_checks = 0"); err != nil {
				failed.Store(&err)
				return
			}
			var (
				q    strings.Builder
				args []any
			)
			for c := range chunks {
				if failed.Load() != nil {
					continue
				}
				q.Reset()
				args = args[:0]
				q.WriteString("INSERT INTO transactions (" + historyColumns + ") VALUES ")
				n := 0
				for i := c.lo; i < c.hi; i++ {
					if (i%h.step == 0) != small {
						continue
					}
					if n > 0 {
						q.WriteByte(',')
					}
					q.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
					args = h.row(i, args)
					n++
				}
				if n == 0 {
					continue
				}
				if _, err := conn.ExecContext(h.ctx, q.String(), args...); err != nil {
					err = fmt.Errorf("insert rows %d..%d: %w", c.lo, c.hi, err)
					failed.Store(&err)
					continue
				}
				inserted.Add(int64(n))
			}
		}()
	}
	span := h.batch
	if small {
		span = h.batch * h.step
	}
	done := make(chan struct{})
	go func() {
		// Progress, for a long seeding.
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				n := inserted.Load()
				fmt.Fprintf(os.Stdout, "history: seeding, %d rows in %v (%.0f rows/s)\n", n, time.Since(began).Round(time.Second), float64(n)/time.Since(began).Seconds())
			}
		}
	}()
	for lo := 0; lo < h.total; lo += span {
		chunks <- chunk{lo, min(lo+span, h.total)}
	}
	close(chunks)
	wg.Wait()
	close(done)
	if err := failed.Load(); err != nil {
		b.Fatalf("seeding: %v", *err)
	}
	return time.Since(began)
}

// row appends the columns of row i: created at start + i/total of two
// years (so ids and created_at grow with i), the rest drawn from a
// generator seeded by i.
func (h *historyBench) row(i int, args []any) []any {
	rng := rand.New(rand.NewPCG(h.seed, uint64(i)))
	gap := historySpan / time.Duration(h.total)
	at := h.start.Add(time.Duration(i)*gap + time.Duration(rng.Int64N(int64(gap)))).Truncate(time.Microsecond)
	merchant := h.merchant
	if rng.Float64() >= 0.9 {
		merchant = h.others[rng.IntN(len(h.others))]
	}
	customer := ""
	if rng.Float64() >= 0.03 {
		customer = h.customers[rng.IntN(len(h.customers))]
	}
	currency := "USD"
	switch c := rng.Float64(); {
	case c < 0.07:
		currency = "EUR"
	case c < 0.11:
		currency = "GBP"
	case c < 0.13:
		currency = "CAD"
	case c < 0.14:
		currency = "KES"
	case c < 0.15:
		currency = "NGN"
	}
	// Log-uniform between 1.00 and 5,000.00.
	amount := int64(100 * math.Exp(rng.Float64()*math.Log(5000)))
	status := func(succeeded, pending float64) enttxn.Status {
		switch s := rng.Float64(); {
		case s < succeeded:
			return enttxn.StatusSucceeded
		case s < succeeded+pending:
			return enttxn.StatusPending
		}
		return enttxn.StatusFailed
	}
	earlier := func() time.Time { return at.Add(-time.Duration(rng.Int64N(int64(30 * 24 * time.Hour)))) }
	var (
		typ         enttxn.Type
		movement    enttxn.Movement
		st          enttxn.Status
		source, pay string
		description string
		workflow    string
	)
	switch k := rng.Float64(); {
	case k < 0.86:
		typ, movement, st = enttxn.TypePayment, enttxn.MovementPayment, status(0.90, 0.03)
		source = ids.NewAt(ids.Payment, at)
		pay, workflow = source, "payment/"+source
		brand := [...]string{"visa", "mastercard", "amex"}[rng.IntN(3)]
		description = fmt.Sprintf("Card payment (%s •••• %04d)", brand, rng.IntN(10000))
		if rng.Float64() < 0.08 {
			description = "Mobile money payment"
		}
		if st == enttxn.StatusFailed {
			description += " — failed"
		}
	case k < 0.95:
		typ, movement, st = enttxn.TypeRefund, enttxn.MovementRefund, status(0.92, 0.04)
		source, pay = ids.NewAt(ids.Refund, at), ids.NewAt(ids.Payment, earlier())
		amount, workflow = -amount, "refund/"+source
		description = "Refund of " + pay + " (requested by customer)"
	case k < 0.955:
		typ, movement, st = enttxn.TypeRefund, enttxn.MovementRefundFailure, enttxn.StatusFailed
		source, pay = ids.NewAt(ids.Refund, earlier()), ids.NewAt(ids.Payment, earlier())
		workflow = "refund/" + source
		description = "Refund " + source + " failed at the gateway: the amount is back on the balance"
	case k < 0.99:
		typ, movement, st = enttxn.TypeDispute, enttxn.MovementDispute, status(0.6, 0.25)
		source, pay = ids.NewAt(ids.Dispute, at), ids.NewAt(ids.Payment, earlier())
		amount, workflow = -amount, "dispute/"+source
		description = "Chargeback of " + pay + " (fraudulent)"
	default:
		typ, movement, st = enttxn.TypeDispute, enttxn.MovementDisputeReversal, enttxn.StatusSucceeded
		source, pay = ids.NewAt(ids.Dispute, earlier()), ids.NewAt(ids.Payment, earlier())
		workflow = "dispute/" + source
		description = "Chargeback of " + pay + " won: the funds are reinstated"
	}
	journal := ""
	if st == enttxn.StatusSucceeded || movement == enttxn.MovementRefundFailure {
		journal = source + "/" + string(movement)
	}
	updated := at.Add(time.Duration(rng.Int64N(int64(10 * time.Minute)))).Truncate(time.Microsecond)
	return append(args, ids.NewAt(ids.Txn, at), string(typ), string(movement), source, pay, amount, currency,
		string(st), merchant, customer, description, journal, workflow, at, updated)
}

func (h *historyBench) analyze() {
	if _, err := h.seedDB.ExecContext(h.ctx, "ANALYZE TABLE transactions"); err != nil {
		h.b.Fatalf("ANALYZE TABLE: %v", err)
	}
}

func (h *historyBench) rowCount() int {
	var n int
	if err := h.seedDB.QueryRowContext(h.ctx, "SELECT COUNT(*) FROM transactions").Scan(&n); err != nil {
		h.b.Fatal(err)
	}
	return n
}

func (h *historyBench) serverVersion() string {
	var v string
	_ = h.seedDB.QueryRowContext(h.ctx, "SELECT VERSION()").Scan(&v)
	return v
}

// count is how many of the merchant's rows match req's filters.
func (h *historyBench) count(req *paymentsv1.ListTransactionsRequest) int {
	conds, args := bareConds(req, nil)
	conds = append(conds, "merchant_id = ?")
	args = append(args, h.merchant)
	var n int
	if err := h.seedDB.QueryRowContext(h.ctx, "SELECT COUNT(*) FROM transactions WHERE "+strings.Join(conds, " AND "), args...).Scan(&n); err != nil {
		h.b.Fatal(err)
	}
	return n
}

// deepCursor is the position ~90% into the merchant's rows that match req
// (the merchant is nobody's customer, so these are all its rows).
func (h *historyBench) deepCursor(req *paymentsv1.ListTransactionsRequest) (*store.Cursor, int) {
	n := int(float64(h.count(req)) * historyDeepFraction)
	conds, args := bareConds(req, nil)
	conds = append(conds, "merchant_id = ?")
	args = append(args, h.merchant, n)
	var c store.Cursor
	err := h.seedDB.QueryRowContext(h.ctx, "SELECT created_at, id FROM transactions WHERE "+strings.Join(conds, " AND ")+
		" ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?", args...).Scan(&c.CreatedAt, &c.ID)
	if err != nil {
		h.b.Fatalf("deep cursor: %v", err)
	}
	return &c, n
}

func (h *historyBench) withFullToken(req *paymentsv1.ListTransactionsRequest, c *store.Cursor) *paymentsv1.ListTransactionsRequest {
	tok, err := h.srv.PageTokenAt("transactions", h.principal, req, *c)
	if err != nil {
		h.b.Fatal(err)
	}
	r := proto.CloneOf(req)
	r.PageToken = tok
	return r
}

func (h *historyBench) fullBody(req *paymentsv1.ListTransactionsRequest) string {
	out, err := protojson.Marshal(req)
	if err != nil {
		h.b.Fatal(err)
	}
	return string(out)
}

func (h *historyBench) bareBody(req *paymentsv1.ListTransactionsRequest, c *store.Cursor) string {
	r := proto.CloneOf(req)
	if c != nil {
		r.PageToken = h.bareToken(*c)
	}
	return h.fullBody(r)
}

// call posts body and checks that a page came back. Go's client asks
// for gzip unless identity is set, and then undoes it itself.
func (h *historyBench) call(hc *http.Client, url, body string, identity bool) error {
	_, err := h.callPage(hc, url, body, identity)
	return err
}

func (h *historyBench) callPage(hc *http.Client, url, body string, identity bool) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.jwt)
	if identity {
		req.Header.Set("Accept-Encoding", "identity")
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ListTransactions: %d %s", res.StatusCode, out)
	}
	// Cheaper than decoding: a page of page_size rows has a next token.
	if !bytes.Contains(out, []byte(`"nextPageToken":"`)) || bytes.Contains(out, []byte(`"nextPageToken":""`)) {
		return nil, fmt.Errorf("ListTransactions: no next page: %.300s", out)
	}
	return out, nil
}

// historyTarget is one listing to time: a request to a server.
type historyTarget struct{ what, url, body string }

// p50 is the median latency of one listing on the large database's server.
func (h *historyBench) p50(what, body string) time.Duration {
	return h.p50s(historyTarget{what, h.fullURL, body})[0]
}

// p50s times the targets in alternation, one call at a time, so that all
// see the same conditions: h.calls calls of each after h.calls/5 warm-up
// rounds. Slow listings stop at the time budget (warm-up included), with
// at least 5 calls of each. It returns each target's median.
func (h *historyBench) p50s(targets ...historyTarget) []time.Duration {
	hc := testenv.HTTPClient()
	defer hc.CloseIdleConnections()
	began := time.Now()
	for _, t := range targets {
		out, err := h.callPage(hc, t.url, t.body, false)
		if err != nil {
			h.b.Fatalf("%s: %v", t.what, err)
		}
		var res paymentsv1.ListTransactionsResponse
		if err := protojson.Unmarshal(out, &res); err != nil || len(res.Transactions) != historyPageSize {
			h.b.Fatalf("%s: want %d transactions: %v %.300s", t.what, historyPageSize, err, out)
		}
	}
	for range h.calls / 5 {
		if time.Since(began) > h.budget/4 {
			break
		}
		for _, t := range targets {
			if err := h.call(hc, t.url, t.body, false); err != nil {
				h.b.Fatalf("%s: %v", t.what, err)
			}
		}
	}
	lats := make([][]time.Duration, len(targets))
	for n := 0; n < h.calls && (n < 5 || time.Since(began) < h.budget); n++ {
		for i, t := range targets {
			start := time.Now()
			if err := h.call(hc, t.url, t.body, false); err != nil {
				h.b.Fatalf("%s: %v", t.what, err)
			}
			lats[i] = append(lats[i], time.Since(start))
		}
	}
	out := make([]time.Duration, len(targets))
	for i, t := range targets {
		out[i] = pct(lats[i], .5)
		fmt.Fprintf(os.Stdout, "history: %-58s p50 %9v  p90 %9v  (%d calls)\n",
			t.what, out[i].Round(time.Microsecond), pct(lats[i], .9).Round(time.Microsecond), len(lats[i]))
	}
	return out
}

// checkSameAnswer checks that the full stack and the bare handler answer
// the same rows.
func (h *historyBench) checkSameAnswer(fullBody, bareBody string) {
	hc := testenv.HTTPClient()
	defer hc.CloseIdleConnections()
	var pages [2]paymentsv1.ListTransactionsResponse
	for i, c := range []struct{ url, body string }{{h.fullURL, fullBody}, {h.bareURL, bareBody}} {
		out, err := h.callPage(hc, c.url, c.body, false)
		if err != nil {
			h.b.Fatal(err)
		}
		if err := protojson.Unmarshal(out, &pages[i]); err != nil {
			h.b.Fatal(err)
		}
		pages[i].NextPageToken = ""
	}
	if !proto.Equal(&pages[0], &pages[1]) || len(pages[0].Transactions) != historyPageSize {
		h.b.Fatalf("the bare handler answers other rows than the full stack:\nfull %v\nbare %v", &pages[0], &pages[1])
	}
}

// recordingDriver records the queries ent runs.
type recordingDriver struct {
	dialect.Driver
	mu      sync.Mutex
	queries []recordedQuery
}

type recordedQuery struct {
	sql  string
	args []any
}

func (d *recordingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.mu.Lock()
	a, _ := args.([]any)
	d.queries = append(d.queries, recordedQuery{query, a})
	d.mu.Unlock()
	return d.Driver.Query(ctx, query, args, v)
}

// storeQueries runs the store's ListTransactions for the merchant as the
// API does for req and returns the SQL it ran.
func (h *historyBench) storeQueries(req *paymentsv1.ListTransactionsRequest, c *store.Cursor) []recordedQuery {
	drv := &recordingDriver{Driver: entsql.OpenDB(dialect.MySQL, h.bareDB)}
	st := &store.Store{Client: ent.NewClient(ent.Driver(drv))}
	f := store.TransactionFilter{Party: h.merchant, Currency: req.Currency,
		Type: bareTypes[req.Type], Status: bareStatuses[req.Status]}
	if req.CreatedAfter != nil {
		t := req.CreatedAfter.AsTime()
		f.CreatedAfter = &t
	}
	if req.CreatedBefore != nil {
		t := req.CreatedBefore.AsTime()
		f.CreatedBefore = &t
	}
	if _, err := st.ListTransactions(h.ctx, f, store.Page{Limit: historyPageSize + 1, After: c}); err != nil {
		h.b.Fatal(err)
	}
	return drv.queries
}

// checkSameSQL checks that the bare handler's SQL is the store's, text and
// arguments.
func (h *historyBench) checkSameSQL(req *paymentsv1.ListTransactionsRequest, c *store.Cursor) {
	got := h.storeQueries(req, c)
	want := bareQueries(req, c, h.merchant)
	if len(got) != len(want) {
		h.b.Fatalf("the store ran %d queries, the bare handler runs %d", len(got), len(want))
	}
	for i := range got {
		if got[i].sql != want[i].sql || fmt.Sprint(got[i].args) != fmt.Sprint(want[i].args) {
			h.b.Fatalf("the bare handler's query is not the store's:\nstore: %s %v\nbare:  %s %v", got[i].sql, got[i].args, want[i].sql, want[i].args)
		}
	}
}

// plans runs MariaDB's ANALYZE on the store's queries of each listing and
// returns the chosen index and the rows estimated and read.
func (h *historyBench) plans(stage string, queries []historyQuery, cursors []*store.Cursor) string {
	var out strings.Builder
	fmt.Fprintf(&out, "  plans, %s (MariaDB ANALYZE of the store's queries: index, rows estimated / read, extra):\n", stage)
	for i, q := range queries {
		var c *store.Cursor
		if cursors != nil {
			c = cursors[i]
		}
		for _, rq := range h.storeQueries(q.req, c) {
			scope := "merchant_id"
			if strings.Contains(rq.sql, "`customer_id` = ?") {
				scope = "customer_id"
			}
			rows, err := h.seedDB.QueryContext(h.ctx, "ANALYZE "+rq.sql, rq.args...)
			if err != nil {
				fmt.Fprintf(&out, "    %-26s %-12s ANALYZE failed: %v\n", q.name, scope, err)
				continue
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]sql.NullString, len(cols))
				ptrs := make([]any, len(cols))
				for j := range vals {
					ptrs[j] = &vals[j]
				}
				if err := rows.Scan(ptrs...); err != nil {
					h.b.Fatal(err)
				}
				get := func(name string) string {
					if j := slices.Index(cols, name); j >= 0 {
						return vals[j].String
					}
					return "?"
				}
				fmt.Fprintf(&out, "    %-26s %-12s %-8s key=%s rows=%s r_rows=%s %s\n",
					q.name, scope, get("type"), get("key"), get("rows"), get("r_rows"), get("Extra"))
			}
			_ = rows.Close()
		}
	}
	return out.String()
}

// The bare handler: a minimal bearer check, the store's SQL through
// database/sql, protojson. Its page token has the API's layout (version,
// created_at in microseconds, id, a 16-byte HMAC tag) with a tag over the
// account and the position only.

var (
	bareTypes = map[paymentsv1.TransactionType]enttxn.Type{
		paymentsv1.TransactionType_TRANSACTION_TYPE_PAYMENT: enttxn.TypePayment,
		paymentsv1.TransactionType_TRANSACTION_TYPE_REFUND:  enttxn.TypeRefund,
		paymentsv1.TransactionType_TRANSACTION_TYPE_DISPUTE: enttxn.TypeDispute,
	}
	bareStatuses = map[paymentsv1.TransactionStatus]enttxn.Status{
		paymentsv1.TransactionStatus_TRANSACTION_STATUS_PENDING:   enttxn.StatusPending,
		paymentsv1.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED: enttxn.StatusSucceeded,
		paymentsv1.TransactionStatus_TRANSACTION_STATUS_FAILED:    enttxn.StatusFailed,
	}
	bareTypesOut  = map[string]paymentsv1.TransactionType{"payment": 1, "refund": 2, "dispute": 3}
	bareStatusOut = map[string]paymentsv1.TransactionStatus{"pending": 1, "succeeded": 2, "failed": 3}
	bareJSON      = protojson.MarshalOptions{EmitDefaultValues: true}
	bareColumns   = func() string {
		cols := strings.Split(historyColumns, ", ")
		for i, c := range cols {
			cols[i] = "`transactions`.`" + c + "`"
		}
		return strings.Join(cols, ", ")
	}()
)

// bareConds are the SQL conditions of req's filters and of the keyset
// after c, in the store's order, with unqualified columns (for ad-hoc
// queries) when qualify is nil.
func bareConds(req *paymentsv1.ListTransactionsRequest, c *store.Cursor) ([]string, []any) {
	return bareCondsQ(req, c, func(col string) string { return col })
}

func bareCondsQ(req *paymentsv1.ListTransactionsRequest, c *store.Cursor, q func(string) string) ([]string, []any) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if req.Currency != "" {
		add(q("currency")+" = ?", strings.ToUpper(req.Currency))
	}
	if t := bareTypes[req.Type]; t != "" {
		add(q("type")+" = ?", string(t))
	}
	if s := bareStatuses[req.Status]; s != "" {
		add(q("status")+" = ?", string(s))
	}
	if req.CreatedAfter != nil {
		add(q("created_at")+" >= ?", req.CreatedAfter.AsTime())
	}
	if req.CreatedBefore != nil {
		add(q("created_at")+" < ?", req.CreatedBefore.AsTime())
	}
	if c != nil {
		at := c.CreatedAt.UTC()
		conds = append(conds, "("+q("created_at")+" <= ? AND ("+q("created_at")+" < ? OR "+q("id")+" < ?))")
		args = append(args, at, at, c.ID)
	}
	return conds, args
}

// bareQueries are the two keyset queries of a merchant's page, as the
// store writes them.
func bareQueries(req *paymentsv1.ListTransactionsRequest, c *store.Cursor, party string) []recordedQuery {
	qualify := func(col string) string { return "`transactions`.`" + col + "`" }
	conds, args := bareCondsQ(req, c, qualify)
	var out []recordedQuery
	// Each through its scope's index, named as the store's hint names it
	// (on MySQL).
	for _, scope := range []struct{ column, index string }{
		{"merchant_id", "transaction_merchant_id_created_at_id_filters"},
		{"customer_id", "transaction_customer_id_created_at_id"},
	} {
		where := strings.Join(append(slices.Clip(conds), qualify(scope.column)+" = ?"), " AND ")
		out = append(out, recordedQuery{
			sql: "SELECT " + bareColumns + " FROM `transactions` FORCE INDEX (`" + scope.index + "`) WHERE " + where +
				" ORDER BY `transactions`.`created_at` DESC, `transactions`.`id` DESC LIMIT " + fmt.Sprint(historyPageSize+1),
			args: append(slices.Clip(args), party),
		})
	}
	return out
}

func (h *historyBench) bareToken(c store.Cursor) string {
	pos := make([]byte, 0, 9+len(c.ID)+16)
	pos = append(pos, 1)
	pos = binary.BigEndian.AppendUint64(pos, uint64(c.CreatedAt.UnixMicro()))
	pos = append(pos, c.ID...)
	m := hmac.New(sha256.New, h.bareKey)
	m.Write([]byte(h.merchant))
	m.Write(pos)
	return base64.RawURLEncoding.EncodeToString(append(pos, m.Sum(nil)[:16]...))
}

func (h *historyBench) bareCursor(token string) (*store.Cursor, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 9+1+16 || raw[0] != 1 {
		return nil, false
	}
	pos, tag := raw[:len(raw)-16], raw[len(raw)-16:]
	m := hmac.New(sha256.New, h.bareKey)
	m.Write([]byte(h.merchant))
	m.Write(pos)
	if !hmac.Equal(tag, m.Sum(nil)[:16]) {
		return nil, false
	}
	return &store.Cursor{CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(pos[1:9]))).UTC(), ID: string(pos[9:])}, true
}

func (h *historyBench) serveBare(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		http.Error(w, `{"code":"unauthenticated"}`, http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req paymentsv1.ListTransactionsRequest
	if err := protojson.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var after *store.Cursor
	if req.PageToken != "" {
		var ok bool
		if after, ok = h.bareCursor(req.PageToken); !ok {
			http.Error(w, `{"code":"invalid_argument"}`, http.StatusBadRequest)
			return
		}
	}
	var page []*paymentsv1.Transaction
	for _, q := range bareQueries(&req, after, h.merchant) {
		rows, err := h.bareDB.QueryContext(r.Context(), q.sql, q.args...)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for rows.Next() {
			var (
				t                     paymentsv1.Transaction
				typ, movement, status string
				journal, workflow     string
				created, updated      time.Time
			)
			if err := rows.Scan(&t.Id, &typ, &movement, &t.SourceId, &t.PaymentId, &t.Amount, &t.Currency, &status,
				&t.MerchantId, &t.CustomerId, &t.Description, &journal, &workflow, &created, &updated); err != nil {
				_ = rows.Close()
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			t.Type, t.Status = bareTypesOut[typ], bareStatusOut[status]
			t.CreatedAt, t.UpdatedAt = timestamppb.New(created), timestamppb.New(updated)
			page = append(page, &t)
		}
		if err := rows.Close(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	// Merge the two scopes newest first, a row of both once.
	slices.SortFunc(page, func(x, y *paymentsv1.Transaction) int {
		if c := y.CreatedAt.AsTime().Compare(x.CreatedAt.AsTime()); c != 0 {
			return c
		}
		return cmp.Compare(y.Id, x.Id)
	})
	page = slices.CompactFunc(page, func(x, y *paymentsv1.Transaction) bool { return x.Id == y.Id })
	res := &paymentsv1.ListTransactionsResponse{Transactions: page}
	if len(page) > historyPageSize {
		res.Transactions = page[:historyPageSize]
		last := page[historyPageSize-1]
		res.NextPageToken = h.bareToken(store.Cursor{CreatedAt: last.CreatedAt.AsTime(), ID: last.Id})
	}
	out, err := bareJSON.Marshal(res)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// loadAverage is the 1, 5 and 15 minute load averages ("?" if unknown).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// human writes a row count as 10k or 1M.
func human(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000_000:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
