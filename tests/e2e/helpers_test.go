// Package e2e tests payments end to end, as an integrator sees them: a real
// Temporal dev server, the worker with the sandbox gateway, a real database
// and the API on a local port (internal/testenv), called over HTTP with JSON
// (net/http, Connect protocol) and, in a few tests, with the generated
// Connect client. Every test starts its own platform and registers fresh
// accounts, so tests are independent.
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	"github.com/payments-platform/payments/internal/mail"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	"github.com/payments-platform/payments/internal/testenv"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/workflows/payment"
)

const (
	// password is the password of every account the tests register.
	password = "correct horse battery staple"
	// waitFor bounds every poll for a state.
	waitFor = 30 * time.Second
	// pollEvery is the pause between two polls.
	pollEvery = 25 * time.Millisecond
	// recordEnv makes the scenarios that feed the replay test write their
	// workflow histories to workflows/payment/testdata.
	recordEnv = "PAYMENTS_RECORD_HISTORIES"
	// testdataDir is where recorded histories go, from this package: one
	// folder per version of the payment workflow's logic, since the
	// histories of every version must be kept and replayed (the legacy
	// version's are the files directly in testdata).
	testdataDir = "../../workflows/payment/testdata/declared"
)

// Procedures, as integrators POST them.
const (
	procRegister       = "/payments.v1.AuthService/Register"
	procLogin          = "/payments.v1.AuthService/Login"
	procCreatePayment  = "/payments.v1.PaymentService/CreatePayment"
	procGetPayment     = "/payments.v1.PaymentService/GetPayment"
	procListPayments   = "/payments.v1.PaymentService/ListPayments"
	procCapturePayment = "/payments.v1.PaymentService/CapturePayment"
	procCancelPayment  = "/payments.v1.PaymentService/CancelPayment"
)

// Payment statuses as they travel in JSON.
const (
	stProcessing      = "PAYMENT_STATUS_PROCESSING"
	stRequiresAction  = "PAYMENT_STATUS_REQUIRES_ACTION"
	stRequiresCapture = "PAYMENT_STATUS_REQUIRES_CAPTURE"
	stSucceeded       = "PAYMENT_STATUS_SUCCEEDED"
	stFailed          = "PAYMENT_STATUS_FAILED"
	stCanceled        = "PAYMENT_STATUS_CANCELED"
)

// migrateMu serialises creating stores: store.Migrate is not safe for
// concurrent use (ent's migration shares package-level table definitions),
// and the tests of this package run in parallel.
var migrateMu sync.Mutex

func newSQLiteStore(t *testing.T) *store.Store {
	t.Helper()
	migrateMu.Lock()
	defer migrateMu.Unlock()
	return storetest.NewSQLite(t)
}

func newMySQLStore(t *testing.T) *store.Store {
	t.Helper()
	migrateMu.Lock()
	defer migrateMu.Unlock()
	return storetest.NewMySQL(t)
}

// openSQLiteAt opens and migrates a SQLite store at path, so a test can read
// the database files afterwards.
func openSQLiteAt(t *testing.T, path string) *store.Store {
	t.Helper()
	migrateMu.Lock()
	defer migrateMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatalf("open SQLite store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate SQLite store: %v", err)
	}
	return st
}

// countingGateway counts what reaches the gateway and lets a test hold a
// CreatePayment (to make CreatePayment's bounded wait run out).
//
// Calls are counted raw, and operations as distinct requests: a charge is a
// distinct CreatePayment idempotency key, a capture a distinct (key, amount),
// a cancel a distinct key. A retried or re-executed call of one operation
// reuses its key (which is what keeps it single at Stripe), so "exactly one
// charge" is one distinct key, however many calls carried it.
type countingGateway struct {
	gateway.Gateway
	// beforeCreate, if set, runs before each CreatePayment reaches the
	// sandbox; an error is returned as the gateway's.
	beforeCreate func(context.Context, gateway.CreateRequest) error

	mu  sync.Mutex
	c   gatewayCounts
	ops map[string]bool
}

// gatewayCounts are distinct operations and raw calls.
type gatewayCounts struct {
	creates, captures, cancels int64 // distinct operations
	calls, createCalls         int64 // raw calls: all, CreatePayment
}

func (g *countingGateway) count(op string, create bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ops == nil {
		g.ops = map[string]bool{}
	}
	g.c.calls++
	if create {
		g.c.createCalls++
	}
	if g.ops[op] {
		return
	}
	g.ops[op] = true
	switch {
	case strings.HasPrefix(op, "create|"):
		g.c.creates++
	case strings.HasPrefix(op, "capture|"):
		g.c.captures++
	case strings.HasPrefix(op, "cancel|"):
		g.c.cancels++
	}
}

func (g *countingGateway) counts() gatewayCounts {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.c
}

// charges is how many distinct payments were created at the gateway.
func (g *countingGateway) charges() int { return int(g.counts().creates) }

func (g *countingGateway) CreatePayment(ctx context.Context, r gateway.CreateRequest) (gateway.Result, error) {
	g.count("create|"+r.IdempotencyKey, true)
	if g.beforeCreate != nil {
		if err := g.beforeCreate(ctx, r); err != nil {
			return gateway.Result{}, err
		}
	}
	return g.Gateway.CreatePayment(ctx, r)
}

func (g *countingGateway) Capture(ctx context.Context, r gateway.CaptureRequest) (gateway.Result, error) {
	g.count(fmt.Sprintf("capture|%s|%d", r.IdempotencyKey, r.Amount), false)
	return g.Gateway.Capture(ctx, r)
}

func (g *countingGateway) Cancel(ctx context.Context, r gateway.CancelRequest) (gateway.Result, error) {
	g.count("cancel|"+r.IdempotencyKey, false)
	return g.Gateway.Cancel(ctx, r)
}

// E is one running platform, as a test sees it.
type E struct {
	*testenv.Env
	gw   *countingGateway
	hc   *http.Client
	logs *testenv.SyncBuffer // nil unless withLogs
	// record allows writing histories for the replay test.
	record bool
	seq    atomic.Int64
}

type envConfig struct {
	opts   testenv.Options
	logs   bool
	hook   func(context.Context, gateway.CreateRequest) error
	record bool
}

type envOption func(*envConfig)

// withStore runs the platform on st instead of a fresh SQLite database.
func withStore(st *store.Store) envOption { return func(c *envConfig) { c.opts.Store = st } }

// withPaymentWait bounds CreatePayment's wait for the gateway.
func withPaymentWait(d time.Duration) envOption {
	return func(c *envConfig) { c.opts.PaymentWait = d }
}

// withClock gives the API a clock the test controls.
func withClock(now func() time.Time) envOption { return func(c *envConfig) { c.opts.Now = now } }

// withLogs captures every log line of the API and the worker.
func withLogs() envOption { return func(c *envConfig) { c.logs = true } }

// withCreateHook runs fn before each CreatePayment reaches the gateway.
func withCreateHook(fn func(context.Context, gateway.CreateRequest) error) envOption {
	return func(c *envConfig) { c.hook = fn }
}

// withMailer sends the events' emails to m.
func withMailer(m mail.Mailer) envOption { return func(c *envConfig) { c.opts.Mailer = m } }

// recording lets the env write histories when PAYMENTS_RECORD_HISTORIES=1.
func recording() envOption { return func(c *envConfig) { c.record = true } }

// newEnv starts a platform for t (on a fresh SQLite database unless
// withStore) and, when t ends, checks that the ledger balances.
func newEnv(t *testing.T, options ...envOption) *E {
	t.Helper()
	var c envConfig
	for _, o := range options {
		o(&c)
	}
	if c.opts.Store == nil {
		c.opts.Store = newSQLiteStore(t)
	}
	e := &E{gw: &countingGateway{beforeCreate: c.hook}, hc: testenv.HTTPClient(), record: c.record}
	c.opts.WrapGateway = func(g gateway.Gateway) gateway.Gateway {
		e.gw.Gateway = g
		return e.gw
	}
	if c.logs {
		e.logs = &testenv.SyncBuffer{}
		c.opts.LogWriter = e.logs
	}
	start := time.Now()
	e.Env = startWithRetry(t, c.opts)
	t.Logf("platform up in %v: %s", time.Since(start).Round(time.Millisecond), e.Env)
	// Registered after testenv's cleanups, so it runs before them (while
	// the store is open): every scenario ends with a balanced ledger.
	t.Cleanup(func() { e.checkLedger(t) })
	return e
}

// startFailed is how startTB stops testenv.Start.
type startFailed struct{ msg string }

// startTB is t for testenv.Start, except that a failure to start the
// Temporal dev server can be retried instead of failing the test.
type startTB struct{ testing.TB }

func (s startTB) Fatal(args ...any) { panic(startFailed{fmt.Sprint(args...)}) }
func (s startTB) Fatalf(format string, args ...any) {
	panic(startFailed{fmt.Sprintf(format, args...)})
}

// startWithRetry is testenv.Start, tried again when the Temporal dev server
// does not come up: devserver picks its ports by listening on port 0 and
// closing them before the child binds them, so under parallel tests another
// socket can take one in between (the child then exits with status 2).
func startWithRetry(t *testing.T, o testenv.Options) (env *testenv.Env) {
	t.Helper()
	const attempts = 3
	for i := 1; ; i++ {
		msg, ok := func() (msg string, ok bool) {
			defer func() {
				if r := recover(); r != nil {
					f, isStart := r.(startFailed)
					if !isStart {
						panic(r)
					}
					msg = f.msg
				}
			}()
			env = testenv.Start(startTB{t}, o)
			return "", true
		}()
		if ok {
			return env
		}
		if i == attempts || !strings.Contains(msg, "Temporal dev server") {
			t.Fatalf("start the platform (attempt %d): %s", i, msg)
		}
		t.Logf("start the platform, attempt %d: %s; retrying", i, msg)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// checkLedger fails t unless every currency and journal balances and the
// transaction history agrees with the ledger.
func (e *E) checkLedger(t *testing.T) {
	t.Helper()
	if err := e.Store.CheckLedger(ctxT(t)); err != nil {
		t.Errorf("CheckLedger: %v", err)
	}
	if err := e.Store.CheckHistory(ctxT(t)); err != nil {
		t.Errorf("CheckHistory: %v", err)
	}
}

// balance is the ledger balance (debits - credits) of an account.
func (e *E) balance(t *testing.T, account, currency string) int64 {
	t.Helper()
	b, err := e.Store.AccountBalance(ctxT(t), account, currency)
	if err != nil {
		t.Fatalf("AccountBalance(%s, %s): %v", account, currency, err)
	}
	return b
}

// paymentRows counts the payment rows in the database.
func (e *E) paymentRows(t *testing.T) int {
	t.Helper()
	n, err := e.Store.Client.Payment.Query().Count(ctxT(t))
	if err != nil {
		t.Fatalf("count payments: %v", err)
	}
	return n
}

// ---- HTTP, as an integrator calls the API ----

// reply is one HTTP answer of the API.
type reply struct {
	status int
	header http.Header
	body   []byte
	// code and msg are the Connect error's, empty on success.
	code, msg string
	details   []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	}
	// err is a transport error (send only).
	err error
}

func (r reply) String() string {
	if r.err != nil {
		return "transport error: " + r.err.Error()
	}
	return fmt.Sprintf("HTTP %d %s", r.status, bytes.TrimSpace(r.body))
}

// fields are the request fields named by the error's field violations.
func (r reply) fields(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, d := range r.details {
		if d.Type != "buf.validate.Violations" {
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
		if err != nil {
			t.Fatalf("error detail value is not base64: %v", err)
		}
		var v validate.Violations
		if err := proto.Unmarshal(raw, &v); err != nil {
			t.Fatalf("error detail is not buf.validate.Violations: %v", err)
		}
		for _, vi := range v.GetViolations() {
			var names []string
			for _, el := range vi.GetField().GetElements() {
				names = append(names, el.GetFieldName())
			}
			out = append(out, strings.Join(names, "."))
		}
	}
	return out
}

// payment decodes the {"payment": {...}} of a payment RPC's answer.
func (r reply) payment(t *testing.T) *pb.Payment {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200 with a payment, got %s", r)
	}
	var res pb.GetPaymentResponse // every payment RPC answers {payment}
	if err := protojson.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("answer is not {payment}: %v: %s", err, r.body)
	}
	if res.GetPayment().GetId() == "" {
		t.Fatalf("answer has no payment: %s", r.body)
	}
	return res.GetPayment()
}

// post sends body (JSON-encoded unless it is a string) to the API's path,
// with a bearer token when token is not empty and headers as name, value
// pairs. It must be called from the test's goroutine; others use send.
func (e *E) post(t *testing.T, token, path string, body any, headers ...string) reply {
	t.Helper()
	r := e.send(ctxT(t), token, path, body, headers...)
	if r.err != nil {
		t.Fatalf("POST %s: %v", path, r.err)
	}
	return r
}

// send is post for any goroutine: a transport error is in reply.err.
func (e *E) send(ctx context.Context, token, path string, body any, headers ...string) reply {
	return e.do(ctx, http.MethodPost, token, path, body, headers...)
}

// do is send with any HTTP method, for the REST routes; a nil body sends
// none, without a Content-Type.
func (e *E) do(ctx context.Context, method, token, path string, body any, headers ...string) reply {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return reply{err: fmt.Errorf("encode request: %w", err)}
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, e.URL+path, bytes.NewReader(raw))
	if err != nil {
		return reply{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{err: fmt.Errorf("read answer: %w", err)}
	}
	r := reply{status: resp.StatusCode, header: resp.Header, body: data}
	if resp.StatusCode != http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var ce struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details []struct {
				Type  string `json:"type"`
				Value string `json:"value"`
			} `json:"details"`
		}
		if err := json.Unmarshal(data, &ce); err == nil {
			r.code, r.msg = ce.Code, ce.Message
			r.details = append(r.details, ce.Details...)
		}
	}
	return r
}

// wantCode fails t unless r is the Connect error code.
func wantCode(t *testing.T, r reply, code string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want %s, got %s", code, r)
	}
}

// user is a registered, logged-in account.
type user struct {
	ID, Email, Token, Role string
}

// register creates and logs in a fresh account; role is ROLE_MERCHANT or
// ROLE_CUSTOMER.
func (e *E) register(t *testing.T, role string) user {
	t.Helper()
	n := e.seq.Add(1)
	email := fmt.Sprintf("%s-%d-%d@example.test", strings.ToLower(strings.TrimPrefix(role, "ROLE_")), time.Now().UnixNano(), n)
	body := map[string]any{"email": email, "password": password, "role": role, "display_name": fmt.Sprintf("Test %d", n)}
	if role == "ROLE_MERCHANT" {
		body["business_name"] = fmt.Sprintf("Shop %d", n)
	}
	r := e.post(t, "", procRegister, body)
	if r.status != http.StatusOK {
		t.Fatalf("Register: %s", r)
	}
	var reg pb.RegisterResponse
	if err := protojson.Unmarshal(r.body, &reg); err != nil {
		t.Fatalf("Register answer: %v", err)
	}
	r = e.post(t, "", procLogin, map[string]any{"email": email, "password": password})
	if r.status != http.StatusOK {
		t.Fatalf("Login: %s", r)
	}
	var login pb.LoginResponse
	if err := protojson.Unmarshal(r.body, &login); err != nil {
		t.Fatalf("Login answer: %v", err)
	}
	if login.GetAccessToken() == "" || login.GetAccount().GetId() != reg.GetAccount().GetId() {
		t.Fatalf("Login answered %s", r.body)
	}
	return user{ID: reg.GetAccount().GetId(), Email: email, Token: login.GetAccessToken(), Role: role}
}

func (e *E) merchant(t *testing.T) user { t.Helper(); return e.register(t, "ROLE_MERCHANT") }
func (e *E) customer(t *testing.T) user { t.Helper(); return e.register(t, "ROLE_CUSTOMER") }

// payReq is a CreatePayment body; fields are added with set.
type payReq map[string]any

// pay is a customer's payment to merchant m with the given method.
func pay(m user, amount int64, currency, method string) payReq {
	return payReq{"merchant_id": m.ID, "amount": amount, "currency": currency, "payment_method": method}
}

func (p payReq) set(k string, v any) payReq {
	out := payReq{}
	for key, val := range p {
		out[key] = val
	}
	out[k] = v
	return out
}

func (p payReq) manual() payReq { return p.set("capture_method", "CAPTURE_METHOD_MANUAL") }

// create calls CreatePayment and checks what every created payment must
// satisfy: it can be read back at once with GetPayment, in the status the
// answer gave (or a later one after PROCESSING); its workflow is
// payment/<id>, linked from workflow_url; amount and currency are exact.
func (e *E) create(t *testing.T, u user, req payReq, headers ...string) *pb.Payment {
	t.Helper()
	r := e.post(t, u.Token, procCreatePayment, req, headers...)
	p := r.payment(t)
	got := e.get(t, u, p.GetId())
	if p.GetStatus() == pb.PaymentStatus_PAYMENT_STATUS_PROCESSING {
		if got.GetId() != p.GetId() {
			t.Fatalf("GetPayment right after CreatePayment: %v", got)
		}
	} else if !proto.Equal(got, p) {
		t.Fatalf("GetPayment right after CreatePayment differs:\ncreate: %v\nget:    %v", p, got)
	}
	e.checkPaymentBasics(t, p)
	if want, ok := req["amount"].(int64); ok && p.GetAmount() != want {
		t.Fatalf("amount = %d, want %d", p.GetAmount(), want)
	}
	if c, ok := req["currency"].(string); ok && p.GetCurrency() != strings.ToUpper(c) {
		t.Fatalf("currency = %q, want %q", p.GetCurrency(), strings.ToUpper(c))
	}
	// The JSON itself: int64 as strings, enums by their full names.
	var raw map[string]map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	if got := raw["payment"]["amount"]; got != fmt.Sprint(p.GetAmount()) {
		t.Fatalf(`JSON "amount" = %#v, want the string %q`, got, fmt.Sprint(p.GetAmount()))
	}
	if got := raw["payment"]["status"]; got != p.GetStatus().String() {
		t.Fatalf(`JSON "status" = %#v, want %q`, got, p.GetStatus().String())
	}
	return p
}

// checkPaymentBasics checks the fields every payment has.
func (e *E) checkPaymentBasics(t *testing.T, p *pb.Payment) {
	t.Helper()
	if !strings.HasPrefix(p.GetId(), "pay_") {
		t.Fatalf("payment id %q lacks the pay_ prefix", p.GetId())
	}
	if want := "payment/" + p.GetId(); p.GetWorkflowId() != want {
		t.Fatalf("workflow_id = %q, want %q", p.GetWorkflowId(), want)
	}
	if want := e.UIURL + "/namespaces/default/workflows/payment%2F" + p.GetId(); p.GetWorkflowUrl() != want {
		t.Fatalf("workflow_url = %q, want %q", p.GetWorkflowUrl(), want)
	}
	if p.GetGateway() != sandbox.Name {
		t.Fatalf("gateway = %q, want sandbox", p.GetGateway())
	}
	if p.GetCreatedAt() == nil || p.GetUpdatedAt() == nil {
		t.Fatalf("payment lacks created_at/updated_at: %v", p)
	}
}

// getR calls GetPayment and returns the raw answer.
func (e *E) getR(t *testing.T, u user, id string) reply {
	t.Helper()
	return e.post(t, u.Token, procGetPayment, map[string]any{"id": id})
}

func (e *E) get(t *testing.T, u user, id string) *pb.Payment {
	t.Helper()
	return e.getR(t, u, id).payment(t)
}

func (e *E) captureR(t *testing.T, u user, id string, amount int64, headers ...string) reply {
	t.Helper()
	body := map[string]any{"id": id}
	if amount != 0 {
		body["amount"] = amount
	}
	return e.post(t, u.Token, procCapturePayment, body, headers...)
}

func (e *E) cancelR(t *testing.T, u user, id, reason string, headers ...string) reply {
	t.Helper()
	body := map[string]any{"id": id}
	if reason != "" {
		body["reason"] = reason
	}
	return e.post(t, u.Token, procCancelPayment, body, headers...)
}

// waitStatus polls GetPayment until the payment is in status.
func (e *E) waitStatus(t *testing.T, u user, id, status string) *pb.Payment {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		p := e.get(t, u, id)
		if p.GetStatus().String() == status {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment %s is %s after %v, want %s", id, p.GetStatus(), waitFor, status)
		}
		time.Sleep(pollEvery)
	}
}

// wantStatus fails t unless p is in status.
func wantStatus(t *testing.T, p *pb.Payment, status string) {
	t.Helper()
	if p.GetStatus().String() != status {
		t.Fatalf("payment %s is %s (failure %q %q), want %s", p.GetId(), p.GetStatus(), p.GetFailureCode(), p.GetFailureMessage(), status)
	}
}

// wantAmounts checks what may be captured and what was received.
func wantAmounts(t *testing.T, p *pb.Payment, capturable, received int64) {
	t.Helper()
	if p.GetAmountCapturable() != capturable || p.GetAmountReceived() != received {
		t.Fatalf("payment %s: amount_capturable %d, amount_received %d; want %d, %d",
			p.GetId(), p.GetAmountCapturable(), p.GetAmountReceived(), capturable, received)
	}
}

// wantBalances checks the ledger after a payment of received to merchant
// m by customer (or "guest"): the merchant's balance is credited (negative:
// balances are debits minus credits), the customer's funding debited, and the
// gateway's clearing account is back to zero.
func (e *E) wantBalances(t *testing.T, merchantID, customer, currency string, received int64) {
	t.Helper()
	if got := e.balance(t, "merchant_balance:"+merchantID, currency); got != -received {
		t.Fatalf("merchant_balance:%s = %d %s, want %d (credited by %d)", merchantID, got, currency, -received, received)
	}
	if got := e.balance(t, "customer_funding:"+customer, currency); got != received {
		t.Fatalf("customer_funding:%s = %d %s, want %d", customer, got, currency, received)
	}
	if got := e.balance(t, "gateway_clearing:sandbox", currency); got != 0 {
		t.Fatalf("gateway_clearing:sandbox = %d %s, want 0", got, currency)
	}
	e.checkLedger(t)
}

// ---- Temporal, as an operator sees it ----

// history returns the workflow's whole history.
func (e *E) history(t *testing.T, workflowID string) []*historypb.HistoryEvent {
	t.Helper()
	it := e.Temporal.GetWorkflowHistory(ctxT(t), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []*historypb.HistoryEvent
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", workflowID, err)
		}
		out = append(out, ev)
	}
	return out
}

// settle waits until the workflow has finished a workflow task after the
// last signal in its history (or has closed), so whatever the signals already
// delivered caused is done; it returns the number of signals. A webhook that
// answered has already signalled (SignalWorkflow is synchronous), so calling
// settle after it is enough to observe its effect, or its absence.
func (e *E) settle(t *testing.T, workflowID string) int {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		h := e.history(t, workflowID)
		var lastSignal int64
		signals, done := 0, false
		for _, ev := range h {
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
				signals++
				lastSignal = ev.GetEventId()
				done = false
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
				enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
				if ev.GetEventId() > lastSignal {
					done = true
				}
			}
		}
		if done || signals == 0 {
			return signals
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no workflow task completed after its last signal within %v", workflowID, waitFor)
		}
		time.Sleep(pollEvery)
	}
}

// explain describes a workflow for a failure message: its status, its
// pending workflow task and activities, when the worker last polled the task
// queue, and its history in short (one line per event).
func (e *E) explain(workflowID string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	d, err := e.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		fmt.Fprintf(&b, "describe %s: %v\n", workflowID, err)
	} else {
		fmt.Fprintf(&b, "workflow %s: %s, history length %d\n", workflowID,
			d.GetWorkflowExecutionInfo().GetStatus(), d.GetWorkflowExecutionInfo().GetHistoryLength())
		if wt := d.GetPendingWorkflowTask(); wt != nil {
			fmt.Fprintf(&b, "  pending workflow task: %s, attempt %d, scheduled %v, started %v\n",
				wt.GetState(), wt.GetAttempt(), wt.GetScheduledTime().AsTime().Format(time.RFC3339Nano), wt.GetStartedTime().AsTime().Format(time.RFC3339Nano))
		}
		for _, a := range d.GetPendingActivities() {
			fmt.Fprintf(&b, "  pending activity %s: %s, attempt %d, last failure %v\n",
				a.GetActivityType().GetName(), a.GetState(), a.GetAttempt(), a.GetLastFailure().GetMessage())
		}
	}
	// When the worker last polled: a task that waits while a poll is open
	// points at the Temporal server, not at the worker.
	for _, tq := range []enumspb.TaskQueueType{enumspb.TASK_QUEUE_TYPE_WORKFLOW, enumspb.TASK_QUEUE_TYPE_ACTIVITY} {
		d, err := e.Temporal.DescribeTaskQueue(ctx, e.TaskQueue, tq)
		if err != nil {
			fmt.Fprintf(&b, "  describe task queue %s: %v\n", e.TaskQueue, err)
			continue
		}
		for _, p := range d.GetPollers() {
			fmt.Fprintf(&b, "  %s poller %s: last poll %s (now %s)\n", tq, p.GetIdentity(),
				p.GetLastAccessTime().AsTime().Format("15:04:05.000"), time.Now().Format("15:04:05.000"))
		}
	}
	it := e.Temporal.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			fmt.Fprintf(&b, "  history: %v\n", err)
			break
		}
		fmt.Fprintf(&b, "  %3d %s %s", ev.GetEventId(), ev.GetEventTime().AsTime().Format("15:04:05.000"), ev.GetEventType())
		switch {
		case ev.GetWorkflowTaskFailedEventAttributes() != nil:
			a := ev.GetWorkflowTaskFailedEventAttributes()
			fmt.Fprintf(&b, " cause=%s failure=%q", a.GetCause(), a.GetFailure().GetMessage())
		case ev.GetWorkflowTaskTimedOutEventAttributes() != nil:
			fmt.Fprintf(&b, " timeout=%s", ev.GetWorkflowTaskTimedOutEventAttributes().GetTimeoutType())
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			fmt.Fprintf(&b, " %s", ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName())
		case ev.GetActivityTaskFailedEventAttributes() != nil:
			fmt.Fprintf(&b, " failure=%q", ev.GetActivityTaskFailedEventAttributes().GetFailure().GetMessage())
		case ev.GetWorkflowExecutionUpdateAcceptedEventAttributes() != nil:
			a := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
			fmt.Fprintf(&b, " %s %s", a.GetInput().GetName(), a.GetMeta().GetUpdateId())
		case ev.GetWorkflowExecutionUpdateCompletedEventAttributes() != nil:
			a := ev.GetWorkflowExecutionUpdateCompletedEventAttributes()
			fmt.Fprintf(&b, " %s failure=%q", a.GetMeta().GetUpdateId(), a.GetOutcome().GetFailure().GetMessage())
		case ev.GetMarkerRecordedEventAttributes() != nil:
			a := ev.GetMarkerRecordedEventAttributes()
			fmt.Fprintf(&b, " %s failure=%q", a.GetMarkerName(), a.GetFailure().GetMessage())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// waitClosed waits for the payment's workflow to finish.
func (e *E) waitClosed(t *testing.T, workflowID string) {
	t.Helper()
	if err := e.Temporal.GetWorkflow(ctxT(t), workflowID, "").Get(ctxT(t), nil); err != nil {
		t.Fatalf("workflow %s: %v", workflowID, err)
	}
}

// listWorkflows runs a visibility query, all pages.
func (e *E) listWorkflows(t *testing.T, query string) []*workflowExecution {
	t.Helper()
	var out []*workflowExecution
	var token []byte
	for {
		res, err := e.Temporal.ListWorkflow(ctxT(t), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: e.Namespace, Query: query, NextPageToken: token, PageSize: 1000,
		})
		if err != nil {
			t.Fatalf("ListWorkflow(%q): %v", query, err)
		}
		for _, ex := range res.GetExecutions() {
			out = append(out, &workflowExecution{ex})
		}
		if token = res.GetNextPageToken(); len(token) == 0 {
			return out
		}
	}
}

// wantDeclaredLogic checks that the API started a payment's workflow with
// the current logic version in its input, and that the run recorded no
// version marker for it (a marker costs two events and a visibility write).
func (e *E) wantDeclaredLogic(t *testing.T, workflowID string) {
	t.Helper()
	events := e.history(t, workflowID)
	var in payment.Input
	payloads := events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(payloads) != 1 || converter.GetDefaultDataConverter().FromPayload(payloads[0], &in) != nil {
		t.Fatalf("%s: no payment input in the start event", workflowID)
	}
	if in.Logic != payment.CurrentLogic {
		t.Fatalf("%s: the API declared logic version %d, want %d", workflowID, in.Logic, payment.CurrentLogic)
	}
	for _, ev := range events {
		if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "Version" {
			t.Fatalf("%s: event %d is a version marker; a declared run needs none", workflowID, ev.GetEventId())
		}
	}
}

// recordHistory writes a payment workflow's history to
// workflows/payment/testdata/declared/<name>.json for the replay test, when
// PAYMENTS_RECORD_HISTORIES=1 and the env records.
func (e *E) recordHistory(t *testing.T, name, workflowID string) {
	t.Helper()
	e.recordHistoryIn(t, testdataDir, name, workflowID)
}

// recordHistoryIn writes a workflow's history to dir/<name>.json, when
// PAYMENTS_RECORD_HISTORIES=1 and the env records.
func (e *E) recordHistoryIn(t *testing.T, testdataDir, name, workflowID string) {
	t.Helper()
	if os.Getenv(recordEnv) != "1" || !e.record {
		return
	}
	e.waitClosed(t, workflowID)
	h := &historypb.History{Events: e.history(t, workflowID)}
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatalf("marshal history: %v", err)
	}
	// protojson's output is deliberately unstable in whitespace; normalise.
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	if err := os.MkdirAll(testdataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(testdataDir, name+".json")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events of %s in %s", len(h.Events), workflowID, path)
}

// ---- Stripe webhooks ----

// intentEvent is a Stripe event about a PaymentIntent, in the shape Stripe
// (and the sandbox) sends.
func intentEvent(id, typ, ref, paymentID, status string, amount, capturable, received int64) []byte {
	obj := map[string]any{
		"id": ref, "object": "payment_intent", "amount": amount, "amount_capturable": capturable,
		"amount_received": received, "status": status, "currency": "usd",
		"metadata": map[string]string{"payment_id": paymentID},
	}
	if typ == "payment_intent.payment_failed" {
		obj["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined",
			"decline_code": "generic_decline", "message": "Your card was declined."}
	}
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": sandbox.APIVersion, "created": time.Now().Unix(),
		"type": typ, "livemode": false, "data": map[string]any{"object": obj},
	})
	return b
}

// postWebhook POSTs an event to /webhooks/stripe with the given
// Stripe-Signature ("" sends none) and returns the HTTP status.
func (e *E) postWebhook(t *testing.T, payload []byte, signature string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.URL+sandbox.WebhookPath, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", sandbox.WebhookPath, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// sign signs payload with the platform's webhook secret at time at.
func (e *E) sign(payload []byte, at time.Time) string {
	return sandbox.SignPayload(e.WebhookSecret, payload, at)
}

// noRedirect is a client that shows redirects instead of following them, as
// the test needs to see the 3-D Secure page's 303.
func noRedirect() *http.Client {
	c := testenv.HTTPClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// threeDS opens the payment's 3-D Secure page (it must be on the API's own
// host and port) and submits outcome there, as the customer's browser does.
// It returns the Location the browser is sent to.
func (e *E) threeDS(t *testing.T, p *pb.Payment, outcome string) string {
	t.Helper()
	body := e.threeDSPage(t, p)
	if !strings.Contains(body, `value="`+outcome+`"`) {
		t.Fatalf("GET 3-D Secure page: want 200 naming the payment and offering %q:\n%s", outcome, body)
	}
	status, loc, answer := e.threeDSPost(t, p, outcome)
	if status != http.StatusSeeOther {
		t.Fatalf("POST 3-D Secure page (outcome %s): HTTP %d, want 303:\n%s", outcome, status, answer)
	}
	return loc
}

// threeDSURL is the payment's 3-D Secure page, checked to be on the API's
// own host and port.
func (e *E) threeDSURL(t *testing.T, p *pb.Payment) string {
	t.Helper()
	na := p.GetNextAction()
	if na.GetType() != "redirect_to_url" || na.GetRedirectUrl() == "" || na.GetExpiresAt() == nil {
		t.Fatalf("payment %s: next_action = %v, want redirect_to_url with a URL and an expiry", p.GetId(), na)
	}
	page, err := url.Parse(na.GetRedirectUrl())
	if err != nil {
		t.Fatalf("redirect_url %q: %v", na.GetRedirectUrl(), err)
	}
	api, _ := url.Parse(e.URL)
	if page.Scheme != api.Scheme || page.Host != api.Host || !strings.HasPrefix(page.Path, sandbox.ThreeDSPath) {
		t.Fatalf("redirect_url %q is not a 3-D Secure page on the API's port %s", na.GetRedirectUrl(), api.Host)
	}
	return page.String()
}

// threeDSPage GETs the payment's 3-D Secure page, which must answer 200
// naming the payment, and returns its HTML.
func (e *E) threeDSPage(t *testing.T, p *pb.Payment) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.threeDSURL(t, p), nil)
	resp, err := noRedirect().Do(req)
	if err != nil {
		t.Fatalf("GET 3-D Secure page: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), p.GetId()) {
		t.Fatalf("GET 3-D Secure page: HTTP %d, want 200 naming the payment:\n%s", resp.StatusCode, body)
	}
	return string(body)
}

// threeDSPost submits outcome on the payment's 3-D Secure page, whatever the
// page offers (as a stale browser tab or a forged form would), and returns
// the HTTP status, the Location and the body of the answer.
func (e *E) threeDSPost(t *testing.T, p *pb.Payment, outcome string) (int, string, string) {
	t.Helper()
	form := url.Values{"outcome": {outcome}}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.threeDSURL(t, p), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noRedirect().Do(req)
	if err != nil {
		t.Fatalf("POST 3-D Secure page: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// customerView is p as the payment's customer sees it: without the fields
// for operators and the merchant (the gateway reference, the attention
// flags), so that a merchant's answer can be compared with a customer's.
func customerView(p *pb.Payment) *pb.Payment {
	out := proto.Clone(p).(*pb.Payment)
	out.GatewayReference, out.NeedsAttention, out.AttentionReason = "", false, ""
	return out
}

// eventIDs returns the ids of gateway events recorded for a payment.
func (e *E) eventIDs(t *testing.T, paymentID string) []string {
	t.Helper()
	evs, err := e.Store.Client.GatewayEvent.Query().All(ctxT(t))
	if err != nil {
		t.Fatalf("read gateway events: %v", err)
	}
	var out []string
	for _, ev := range evs {
		if ev.PaymentID == paymentID {
			out = append(out, ev.ID)
		}
	}
	slices.Sort(out)
	return out
}

// workflowExecution is one row of a visibility query.
type workflowExecution struct {
	*workflowpb.WorkflowExecutionInfo
}

// attr decodes the search attribute name into v; false when it is absent.
func (w *workflowExecution) attr(t *testing.T, name string, v any) bool {
	t.Helper()
	p, ok := w.GetSearchAttributes().GetIndexedFields()[name]
	if !ok {
		return false
	}
	if err := converter.GetDefaultDataConverter().FromPayload(p, v); err != nil {
		t.Fatalf("search attribute %s of %s: %v", name, w.GetExecution().GetWorkflowId(), err)
	}
	return true
}

func (w *workflowExecution) keyword(t *testing.T, name string) string {
	t.Helper()
	var s string
	w.attr(t, name, &s)
	return s
}

// waitVisible polls a visibility query until ok accepts its rows: the
// visibility store is eventually consistent.
func (e *E) waitVisible(t *testing.T, query string, ok func([]*workflowExecution) bool) []*workflowExecution {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		rows := e.listWorkflows(t, query)
		if ok(rows) {
			return rows
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, r := range rows {
				seen = append(seen, fmt.Sprintf("%s(%s)", r.GetExecution().GetWorkflowId(), r.keyword(t, "PaymentStatus")))
			}
			t.Fatalf("visibility query %q: still %v after %v", query, seen, waitFor)
		}
		time.Sleep(4 * pollEvery)
	}
}

// protoEqual compares two payments field by field.
func protoEqual(a, b *pb.Payment) bool { return proto.Equal(a, b) }

func protojsonUnmarshal(b []byte, m proto.Message) error { return protojson.Unmarshal(b, m) }
