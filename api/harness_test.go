package api_test

// The harness builds the real handler stack (api.New(...).Handler()) on a
// fresh, migrated store and serves it with the production http.Server
// configuration (api.HTTPServer: HTTP/1.1 and h2c on one port). Tests call it
// as integrators do: through the generated Connect clients (Connect protocol
// with JSON, and gRPC), and with raw JSON over net/http.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/apikey"
	"github.com/payments-platform/payments/ent/refreshtoken"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	"github.com/payments-platform/payments/internal/testenv"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

const (
	tokenIssuer   = "paymentsd"
	tokenAudience = "payments-api"
	accessTTL     = 15 * time.Minute
	// password is the password of every account the harness registers.
	password = "correct horse battery staple"
	// callTimeout bounds every call of the harness.
	callTimeout = 20 * time.Second
)

// signingKey is the server's JWT key; tests forge tokens with it and others.
var signingKey = []byte("api-test-signing-key-0123456789abcdef")

// cheapPassword keeps argon2id fast in tests; production uses OWASP's costs.
var cheapPassword = auth.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// testClock is the injected clock of the server and of its token service.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// transport is how a test reaches the API.
type transport string

const (
	// connectJSON is the generated client, Connect protocol, JSON codec, h2c.
	connectJSON transport = "connect+json"
	// grpcProto is the generated client, gRPC protocol, binary codec, h2c.
	grpcProto transport = "grpc"
	// httpJSON is raw JSON over HTTP/1.1 with net/http, as with curl.
	httpJSON transport = "http+json"
)

var allTransports = []transport{connectJSON, grpcProto, httpJSON}

// rpcClients are the generated clients of one transport.
type rpcClients struct {
	auth    paymentsv1connect.AuthServiceClient
	account paymentsv1connect.AccountServiceClient
	payment paymentsv1connect.PaymentServiceClient
	refund  paymentsv1connect.RefundServiceClient
	dispute paymentsv1connect.DisputeServiceClient
}

// env is one server with its own database, clock and logs.
type env struct {
	st     *store.Store
	clock  *testClock
	tokens *auth.Tokens
	logs   *testenv.SyncBuffer
	url    string
	// h2c speaks HTTP/2 without TLS (prior knowledge), as gRPC clients do.
	h2c *http.Client
	// h1 speaks HTTP/1.1, as curl does.
	h1      *http.Client
	clients map[transport]*rpcClients
	// checks are the readiness checks' results by name; nil is healthy.
	checks map[string]*atomic.Pointer[error]
	seq    atomic.Int64
}

type envOption func(*api.Deps)

// withChecks installs readiness checks named names whose results the test
// sets with env.setCheck.
func withChecks(names ...string) envOption {
	return func(d *api.Deps) {
		for _, n := range names {
			d.Checks[n] = nil
		}
	}
}

// migrateMu serialises the creation of test stores. store.Migrate is not
// safe for concurrent use (ent's migration writes the package-level table
// definitions of ent/migrate; see TestConcurrentStoreMigrationsDoNotRace), so
// parallel tests must not migrate two databases at once.
var migrateMu sync.Mutex

// newSQLite is storetest.NewSQLite, one migration at a time.
func newSQLite(t *testing.T) *store.Store {
	t.Helper()
	migrateMu.Lock()
	defer migrateMu.Unlock()
	return storetest.NewSQLite(t)
}

// newEnv starts the API on a fresh SQLite database.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, newSQLite(t), opts...)
}

// newEnvOn starts the API on st.
func newEnvOn(t *testing.T, st *store.Store, opts ...envOption) *env {
	t.Helper()
	e := &env{
		st:     st,
		clock:  newClock(),
		logs:   &testenv.SyncBuffer{},
		checks: map[string]*atomic.Pointer[error]{},
	}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.tokens = auth.NewTokens(signingKey, nil, tokenIssuer, tokenAudience, accessTTL, e.clock.Now)
	d := api.Deps{
		Store:          st,
		Tokens:         e.tokens,
		Logger:         logger,
		PasswordParams: cheapPassword,
		Now:            e.clock.Now,
		Checks:         map[string]func(context.Context) error{},
	}
	for _, o := range opts {
		o(&d)
	}
	for name := range d.Checks {
		p := new(atomic.Pointer[error])
		e.checks[name] = p
		d.Checks[name] = func(context.Context) error {
			if err := p.Load(); err != nil {
				return *err
			}
			return nil
		}
	}
	h := api.New(d).Handler()
	srv := httptest.NewUnstartedServer(h)
	// The production server: HTTP/1.1 and h2c on one port, its timeouts.
	srv.Config = api.HTTPServer("127.0.0.1:0", h, logger)
	srv.Start()
	t.Cleanup(srv.Close)
	e.url = srv.URL

	h2 := new(http.Protocols)
	h2.SetUnencryptedHTTP2(true)
	e.h2c = &http.Client{Transport: &http.Transport{Protocols: h2}, Timeout: callTimeout}
	e.h1 = &http.Client{Transport: &http.Transport{}, Timeout: callTimeout}
	t.Cleanup(e.h2c.CloseIdleConnections)
	t.Cleanup(e.h1.CloseIdleConnections)

	e.clients = map[transport]*rpcClients{
		connectJSON: e.newClients(connect.WithProtoJSON()),
		grpcProto:   e.newClients(connect.WithGRPC()),
	}
	return e
}

func (e *env) newClients(opts ...connect.ClientOption) *rpcClients {
	return &rpcClients{
		auth:    paymentsv1connect.NewAuthServiceClient(e.h2c, e.url, opts...),
		account: paymentsv1connect.NewAccountServiceClient(e.h2c, e.url, opts...),
		payment: paymentsv1connect.NewPaymentServiceClient(e.h2c, e.url, opts...),
		refund:  paymentsv1connect.NewRefundServiceClient(e.h2c, e.url, opts...),
		dispute: paymentsv1connect.NewDisputeServiceClient(e.h2c, e.url, opts...),
	}
}

// setCheck makes the readiness check name fail with err (nil: pass).
func (e *env) setCheck(t *testing.T, name string, err error) {
	t.Helper()
	p, ok := e.checks[name]
	if !ok {
		t.Fatalf("no readiness check %q installed", name)
	}
	if err == nil {
		p.Store(nil)
		return
	}
	p.Store(&err)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

func bearer(token string) string { return "Bearer " + token }

// ---- calling the API -------------------------------------------------------

// result is what a call returned, whatever the transport.
type result struct {
	tr transport
	// code is 0 on success.
	code connect.Code
	msg  string
	// violations are the buf.validate.Violations details of an error.
	violations []*validate.Violation
	// detailTypes are the type names of every error detail.
	detailTypes []string
	// resp is the decoded response on success.
	resp proto.Message
	// status and body are the raw HTTP answer (httpJSON only).
	status int
	body   []byte
	header http.Header
}

func (r result) ok() bool { return r.code == 0 }

// methods maps each request message of package payments.v1 to its method.
var methods = func() map[protoreflect.FullName]protoreflect.MethodDescriptor {
	out := map[protoreflect.FullName]protoreflect.MethodDescriptor{}
	protoregistry.GlobalFiles.RangeFilesByPackage("payments.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				md := sd.Methods().Get(j)
				out[md.Input().FullName()] = md
			}
		}
		return true
	})
	return out
}()

func procedureOf(md protoreflect.MethodDescriptor) string {
	return "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
}

func methodOf(t *testing.T, req proto.Message) protoreflect.MethodDescriptor {
	t.Helper()
	md, ok := methods[req.ProtoReflect().Descriptor().FullName()]
	if !ok {
		t.Fatalf("%T is not the request of any payments.v1 RPC", req)
	}
	return md
}

// call sends req over tr with the Authorization header authz ("" for none).
func (e *env) call(t *testing.T, tr transport, authz string, req proto.Message) result {
	t.Helper()
	if tr == httpJSON {
		body, err := protojson.Marshal(req)
		if err != nil {
			t.Fatalf("marshal %T: %v", req, err)
		}
		hdr := http.Header{}
		if authz != "" {
			hdr.Set("Authorization", authz)
		}
		return e.rawCall(t, methodOf(t, req), "application/json", body, hdr)
	}
	c, ok := e.clients[tr]
	if !ok {
		t.Fatalf("unknown transport %q", tr)
	}
	res, err := c.invoke(ctxT(t), authz, req)
	if err != nil {
		return connectErrResult(t, tr, err)
	}
	return result{tr: tr, resp: res}
}

// rawCall POSTs body to the procedure of md with net/http over HTTP/1.1.
func (e *env) rawCall(t *testing.T, md protoreflect.MethodDescriptor, contentType string, body []byte, hdr http.Header) result {
	t.Helper()
	return e.rawPost(t, e.h1, procedureOf(md), md, contentType, body, hdr)
}

func (e *env) rawPost(t *testing.T, client *http.Client, path string, md protoreflect.MethodDescriptor, contentType string, body []byte, hdr http.Header) result {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read answer of POST %s: %v", path, err)
	}
	return decodeRaw(t, md, res, raw)
}

// decodeRaw reads a Connect unary JSON answer.
func decodeRaw(t *testing.T, md protoreflect.MethodDescriptor, res *http.Response, raw []byte) result {
	t.Helper()
	r := result{tr: httpJSON, status: res.StatusCode, body: raw, header: res.Header}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" && ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type of the answer = %q (status %d, body %s), want application/json", ct, res.StatusCode, raw)
	}
	if res.StatusCode == http.StatusOK {
		if md == nil {
			return r
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
		if err != nil {
			t.Fatal(err)
		}
		m := mt.New().Interface()
		// Strict: a field the client does not know would fail here.
		if err := protojson.Unmarshal(raw, m); err != nil {
			t.Fatalf("answer is not a %s: %v\n%s", md.Output().FullName(), err, raw)
		}
		r.resp = m
		return r
	}
	var wire struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"details"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		t.Fatalf("error answer (status %d) is not Connect error JSON: %v\n%s", res.StatusCode, err, raw)
	}
	if err := r.code.UnmarshalText([]byte(wire.Code)); err != nil || r.code == 0 {
		t.Fatalf("error answer (status %d) has code %q: %v\n%s", res.StatusCode, wire.Code, err, raw)
	}
	r.msg = wire.Message
	for _, d := range wire.Details {
		r.detailTypes = append(r.detailTypes, d.Type)
		if d.Type != "buf.validate.Violations" {
			continue
		}
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
		if err != nil {
			t.Fatalf("detail value is not base64: %v", err)
		}
		var v validate.Violations
		if err := proto.Unmarshal(b, &v); err != nil {
			t.Fatalf("detail is not buf.validate.Violations: %v", err)
		}
		r.violations = append(r.violations, v.GetViolations()...)
	}
	return r
}

func connectErrResult(t *testing.T, tr transport, err error) result {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: error %v (%T) is not a *connect.Error", tr, err, err)
	}
	r := result{tr: tr, code: ce.Code(), msg: ce.Message(), header: ce.Meta()}
	for _, d := range ce.Details() {
		r.detailTypes = append(r.detailTypes, d.Type())
		if d.Type() != "buf.validate.Violations" {
			continue
		}
		v, err := d.Value()
		if err != nil {
			t.Fatalf("%s: detail %s: %v", tr, d.Type(), err)
		}
		r.violations = append(r.violations, v.(*validate.Violations).GetViolations()...)
	}
	return r
}

// invoke calls the generated client method of req.
func (c *rpcClients) invoke(ctx context.Context, authz string, req proto.Message) (proto.Message, error) {
	switch m := req.(type) {
	case *pb.RegisterRequest:
		return unary(ctx, authz, m, c.auth.Register)
	case *pb.LoginRequest:
		return unary(ctx, authz, m, c.auth.Login)
	case *pb.RefreshTokenRequest:
		return unary(ctx, authz, m, c.auth.RefreshToken)
	case *pb.LogoutRequest:
		return unary(ctx, authz, m, c.auth.Logout)
	case *pb.GetMeRequest:
		return unary(ctx, authz, m, c.account.GetMe)
	case *pb.UpdateMeRequest:
		return unary(ctx, authz, m, c.account.UpdateMe)
	case *pb.CreateApiKeyRequest:
		return unary(ctx, authz, m, c.account.CreateApiKey)
	case *pb.ListApiKeysRequest:
		return unary(ctx, authz, m, c.account.ListApiKeys)
	case *pb.RevokeApiKeyRequest:
		return unary(ctx, authz, m, c.account.RevokeApiKey)
	case *pb.CapturePaymentRequest:
		return unary(ctx, authz, m, c.payment.CapturePayment)
	case *pb.GetPaymentRequest:
		return unary(ctx, authz, m, c.payment.GetPayment)
	case *pb.CreateRefundRequest:
		return unary(ctx, authz, m, c.refund.CreateRefund)
	case *pb.AcceptDisputeRequest:
		return unary(ctx, authz, m, c.dispute.AcceptDispute)
	case *pb.GetDisputeRequest:
		return unary(ctx, authz, m, c.dispute.GetDispute)
	}
	return nil, fmt.Errorf("harness has no generated client method for %T", req)
}

func unary[Req, Res any](ctx context.Context, authz string, m *Req, fn func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error)) (proto.Message, error) {
	req := connect.NewRequest(m)
	if authz != "" {
		req.Header().Set("Authorization", authz)
	}
	res, err := fn(ctx, req)
	if err != nil {
		return nil, err
	}
	return any(res.Msg).(proto.Message), nil
}

// ---- assertions -------------------------------------------------------------

// httpStatusOf is the Connect protocol's HTTP status of each code.
var httpStatusOf = map[connect.Code]int{
	connect.CodeCanceled:           499,
	connect.CodeUnknown:            500,
	connect.CodeInvalidArgument:    400,
	connect.CodeDeadlineExceeded:   504,
	connect.CodeNotFound:           404,
	connect.CodeAlreadyExists:      409,
	connect.CodePermissionDenied:   403,
	connect.CodeResourceExhausted:  429,
	connect.CodeFailedPrecondition: 400,
	connect.CodeAborted:            409,
	connect.CodeOutOfRange:         400,
	connect.CodeUnimplemented:      501,
	connect.CodeInternal:           500,
	connect.CodeUnavailable:        503,
	connect.CodeDataLoss:           500,
	connect.CodeUnauthenticated:    401,
}

// want describes an expected error.
type want struct {
	code connect.Code
	// msg must be contained in the message ("" = not checked).
	msg string
	// exactMsg must be the whole message ("" = not checked).
	exactMsg string
	// field must be named by a buf.validate.Violations detail and, unless
	// msg is set, by the message ("" = no detail required).
	field string
	// violation must be contained in a violation's message (for
	// message-level rules, which name no field).
	violation string
	// status is the HTTP status of a raw HTTP answer when it is not the
	// one Connect gives the code (413 for a body over the limit).
	status int
}

// fieldPath renders a violation's field path as protovalidate does.
func fieldPath(v *validate.Violation) string {
	var parts []string
	for _, el := range v.GetField().GetElements() {
		parts = append(parts, el.GetFieldName())
	}
	return strings.Join(parts, ".")
}

func (r result) fields() []string {
	var out []string
	for _, v := range r.violations {
		out = append(out, fieldPath(v))
	}
	return out
}

// wantErr asserts that r is the error w, with the HTTP status of its code for
// raw HTTP.
func (r result) wantErr(t *testing.T, w want) {
	t.Helper()
	if r.code != w.code {
		t.Fatalf("%s: code = %v (message %q), want %v", r.tr, codeName(r.code), r.msg, w.code)
	}
	if r.tr == httpJSON {
		want := httpStatusOf[w.code]
		if w.status != 0 {
			want = w.status
		}
		if r.status != want {
			t.Errorf("%s: HTTP status = %d, want %d for %v", r.tr, r.status, want, w.code)
		}
	}
	if w.exactMsg != "" && r.msg != w.exactMsg {
		t.Errorf("%s: message = %q, want %q", r.tr, r.msg, w.exactMsg)
	}
	if w.msg != "" && !strings.Contains(r.msg, w.msg) {
		t.Errorf("%s: message = %q, want it to contain %q", r.tr, r.msg, w.msg)
	}
	if w.field != "" {
		if !slices.Contains(r.fields(), w.field) {
			t.Errorf("%s: violations name fields %q (details %q), want %q", r.tr, r.fields(), r.detailTypes, w.field)
		}
		if w.msg == "" && !strings.Contains(r.msg, w.field) {
			t.Errorf("%s: message %q does not name the field %q", r.tr, r.msg, w.field)
		}
	}
	if w.violation != "" {
		found := false
		for _, v := range r.violations {
			found = found || strings.Contains(v.GetMessage(), w.violation) || strings.Contains(v.GetRuleId(), w.violation)
		}
		if !found {
			t.Errorf("%s: no buf.validate.Violations detail mentions %q (details %q, violations %v)", r.tr, w.violation, r.detailTypes, r.violations)
		}
	}
}

func codeName(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

// wantOK asserts that r succeeded and returns its response.
func wantOK[T proto.Message](t *testing.T, r result) T {
	t.Helper()
	if !r.ok() {
		t.Fatalf("%s: code %v, message %q, violations %q; want success", r.tr, r.code, r.msg, r.fields())
	}
	if r.tr == httpJSON && r.status != http.StatusOK {
		t.Fatalf("%s: HTTP status %d, want 200", r.tr, r.status)
	}
	m, ok := r.resp.(T)
	if !ok {
		t.Fatalf("%s: response is %T", r.tr, r.resp)
	}
	return m
}

// ---- state ------------------------------------------------------------------

// snapshot renders every account, refresh token and API key, so a test can
// assert that a refused call changed nothing. Login throttles and the
// last_used_at of API keys are left out: refused calls may change them.
func (e *env) snapshot(t *testing.T) string {
	t.Helper()
	ctx := ctxT(t)
	var b strings.Builder
	accts, err := e.st.Client.Account.Query().Order(ent.Asc(account.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d accounts\n", len(accts))
	for _, a := range accts {
		fmt.Fprintf(&b, "%s %s %s %q %q %s %s %s %s\n", a.ID, a.Email, a.Role, a.DisplayName, a.BusinessName,
			a.DefaultCurrency, a.Status, a.PasswordHash, a.UpdatedAt.UTC().Format(time.RFC3339Nano))
	}
	rts, err := e.st.Client.RefreshToken.Query().Order(ent.Asc(refreshtoken.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d refresh tokens\n", len(rts))
	for _, r := range rts {
		fmt.Fprintf(&b, "%s %s %s rotated=%v revoked=%v\n", r.ID, r.AccountID, r.FamilyID, r.RotatedAt != nil, r.RevokedAt != nil)
	}
	keys, err := e.st.Client.APIKey.Query().Order(ent.Asc(apikey.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d api keys\n", len(keys))
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s %q revoked=%v\n", k.ID, k.AccountID, k.Name, k.RevokedAt != nil)
	}
	return b.String()
}

// unchanged asserts that the database still matches before.
func (e *env) unchanged(t *testing.T, before string) {
	t.Helper()
	if after := e.snapshot(t); after != before {
		t.Errorf("a refused call changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func (e *env) countAccounts(t *testing.T) int {
	t.Helper()
	n, err := e.st.Client.Account.Query().Count(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ---- fixtures ---------------------------------------------------------------

// email returns a fresh address unique in this env.
func (e *env) email(prefix string) string {
	return fmt.Sprintf("%s%d@example.com", prefix, e.seq.Add(1))
}

// user is a registered and signed-in account.
type user struct {
	acct    *pb.Account
	email   string
	access  string
	refresh string
}

func (u user) authz() string { return bearer(u.access) }

func (e *env) register(t *testing.T, role pb.Role) user {
	t.Helper()
	email := e.email(strings.ToLower(strings.TrimPrefix(role.String(), "ROLE_")))
	reg := wantOK[*pb.RegisterResponse](t, e.call(t, connectJSON, "", &pb.RegisterRequest{
		Email: email, Password: password, Role: role, DisplayName: "Test " + email,
	}))
	u := e.login(t, email, password)
	if u.acct.GetId() != reg.GetAccount().GetId() {
		t.Fatalf("login of %s returned account %s, registered %s", email, u.acct.GetId(), reg.GetAccount().GetId())
	}
	return u
}

func (e *env) merchant(t *testing.T) user {
	t.Helper()
	return e.register(t, pb.Role_ROLE_MERCHANT)
}

func (e *env) customer(t *testing.T) user {
	t.Helper()
	return e.register(t, pb.Role_ROLE_CUSTOMER)
}

func (e *env) login(t *testing.T, email, pw string) user {
	t.Helper()
	res := wantOK[*pb.LoginResponse](t, e.call(t, connectJSON, "", &pb.LoginRequest{Email: email, Password: pw}))
	if res.GetAccessToken() == "" || !strings.HasPrefix(res.GetRefreshToken(), auth.RefreshTokenPrefix) {
		t.Fatalf("login of %s: access %q, refresh %q", email, res.GetAccessToken(), res.GetRefreshToken())
	}
	return user{acct: res.GetAccount(), email: email, access: res.GetAccessToken(), refresh: res.GetRefreshToken()}
}

// apiKey creates an API key for u and returns its secret and id.
func (e *env) apiKey(t *testing.T, u user, name string) (secret, id string) {
	t.Helper()
	res := wantOK[*pb.CreateApiKeyResponse](t, e.call(t, connectJSON, u.authz(), &pb.CreateApiKeyRequest{Name: name}))
	return res.GetSecret(), res.GetApiKey().GetId()
}

// me calls GetMe with authz over tr.
func (e *env) me(t *testing.T, tr transport, authz string) result {
	t.Helper()
	return e.call(t, tr, authz, &pb.GetMeRequest{})
}
