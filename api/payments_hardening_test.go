package api_test

// Tests of the payment RPCs and the Stripe webhook against a fake Temporal
// client: what the API sends to Temporal, how it retries an ambiguous start,
// and what each role sees of a payment. The fake runs no workflow; where a
// test needs one to have run, the fake saves the payment as the workflow's
// first save would.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/workflows/payment"
)

const (
	fakeUIURL       = "http://temporal-ui.test"
	fakeWebhookKey  = "whsec_fake0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
	fakeGatewayRef  = "pi_fake_"
	attentionReason = "the gateway did not confirm the capture; retrying"
)

// fakeStart is the fake's start operation: it keeps what the API asked.
type fakeStart struct {
	opts client.StartWorkflowOptions
	in   payment.Input
}

func (o *fakeStart) Get(context.Context) (client.WorkflowRun, error) {
	return nil, errors.New("the fake runs no workflow")
}

// fakeCall is one UpdateWithStartWorkflow as the fake received it.
type fakeCall struct {
	startID, updateWorkflowID, update string
}

// fakeSignal is one SignalWorkflow.
type fakeSignal struct {
	workflowID, name string
	event            payment.GatewayEvent
}

// fakeHandle is an update's handle whose result is rec.
type fakeHandle struct {
	wid string
	rec store.PaymentRecord
}

func (h fakeHandle) WorkflowID() string { return h.wid }
func (h fakeHandle) RunID() string      { return "run" }
func (h fakeHandle) UpdateID() string   { return "update" }
func (h fakeHandle) Get(_ context.Context, out any) error {
	if p, ok := out.(*store.PaymentRecord); ok {
		*p = h.rec
	}
	return nil
}

// fakeTemporal is a client.Client for the API's payment calls. Any method it
// does not implement is the nil embedded interface's and panics, which
// fails the test: the API called what it should not have.
type fakeTemporal struct {
	client.Client
	st *store.Store
	// fail decides the outcome of the n-th UpdateWithStartWorkflow (from
	// 1); nil lets the start succeed (the fake saves the payment).
	fail func(ctx context.Context, n int, update string) error

	mu      sync.Mutex
	ops     []*fakeStart
	calls   []fakeCall
	updates []client.UpdateWorkflowOptions
	signals []fakeSignal
}

func (f *fakeTemporal) NewWithStartWorkflowOperation(opts client.StartWorkflowOptions, _ any, args ...any) client.WithStartWorkflowOperation {
	op := &fakeStart{opts: opts}
	if len(args) == 1 {
		op.in, _ = args[0].(payment.Input)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, op)
	return op
}

func (f *fakeTemporal) UpdateWithStartWorkflow(ctx context.Context, o client.UpdateWithStartWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	op := o.StartWorkflowOperation.(*fakeStart)
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{startID: op.opts.ID, updateWorkflowID: o.UpdateOptions.WorkflowID, update: o.UpdateOptions.UpdateName})
	n := len(f.calls)
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(ctx, n, o.UpdateOptions.UpdateName); err != nil {
			return nil, err
		}
	}
	// The workflow's first save: a processing payment at the gateway.
	in := op.in
	now := in.CreatedAt
	rec := store.PaymentRecord{
		ID: in.PaymentID, MerchantID: in.MerchantID, CustomerID: in.CustomerID,
		Amount: in.Amount, Currency: in.Currency, Status: entpayment.StatusProcessing,
		PaymentMethod: in.PaymentMethod, Gateway: in.Gateway, GatewayReference: fakeGatewayRef + in.PaymentID,
		WorkflowID: op.opts.ID, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if _, err := f.st.SavePayment(ctx, rec, nil); err != nil {
		return nil, err
	}
	return fakeHandle{wid: op.opts.ID, rec: rec}, nil
}

func (f *fakeTemporal) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, o)
	return fakeHandle{wid: o.WorkflowID}, nil
}

func (f *fakeTemporal) SignalWorkflow(_ context.Context, workflowID, _ string, name string, arg any) error {
	ev, _ := arg.(payment.GatewayEvent)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, fakeSignal{workflowID: workflowID, name: name, event: ev})
	return nil
}

func (f *fakeTemporal) snapshot() (calls []fakeCall, ops int, updates []client.UpdateWorkflowOptions, signals []fakeSignal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls), len(f.ops), slices.Clone(f.updates), slices.Clone(f.signals)
}

// withTemporal wires the fake (and the settings that go with a Temporal
// client) into the server.
func withTemporal(f *fakeTemporal, wait time.Duration) envOption {
	return func(d *api.Deps) {
		d.Temporal = f
		d.TaskQueue = "payments"
		d.GatewayName = sandbox.Name
		d.PaymentWait = wait
		d.TemporalUIURL = fakeUIURL
		d.TemporalNamespace = "default"
		d.StripeWebhookSecret = fakeWebhookKey
	}
}

// newPaymentsEnv starts the API with a fake Temporal on a fresh database.
func newPaymentsEnv(t *testing.T, wait time.Duration, fail func(context.Context, int, string) error, opts ...envOption) (*env, *fakeTemporal) {
	t.Helper()
	st := newSQLite(t)
	f := &fakeTemporal{st: st, fail: fail}
	return newEnvOn(t, st, append([]envOption{withTemporal(f, wait)}, opts...)...), f
}

// createPayment calls CreatePayment with the generated Connect client.
func (e *env) createPayment(ctx context.Context, u user, req *pb.CreatePaymentRequest) (*pb.Payment, error) {
	r := connect.NewRequest(req)
	r.Header().Set("Authorization", u.authz())
	res, err := e.clients[connectJSON].payment.CreatePayment(ctx, r)
	if err != nil {
		return nil, err
	}
	return res.Msg.GetPayment(), nil
}

func payReq(m user, amount int64, currency string) *pb.CreatePaymentRequest {
	return &pb.CreatePaymentRequest{MerchantId: m.acct.GetId(), Amount: amount, Currency: currency, PaymentMethod: "pm_card_visa"}
}

// wantOneWorkflowID asserts that every call went to the payment's one
// workflow, and returns that payment's id.
func wantOneWorkflowID(t *testing.T, calls []fakeCall) string {
	t.Helper()
	if len(calls) == 0 {
		t.Fatal("Temporal was not called")
	}
	wid := calls[0].startID
	for i, c := range calls {
		if c.startID != wid || c.updateWorkflowID != wid {
			t.Fatalf("call %d went to start %q / update %q, call 1 to %q: a retry must reuse the workflow id", i+1, c.startID, c.updateWorkflowID, wid)
		}
	}
	id, ok := strings.CutPrefix(wid, "payment/")
	if !ok || !strings.HasPrefix(id, "pay_") {
		t.Fatalf("workflow id %q is not payment/pay_...", wid)
	}
	return id
}

func TestAmbiguousStartIsRetriedWithTheSameWorkflowID(t *testing.T) {
	t.Parallel()
	unavailable := func(_ context.Context, n int, _ string) error {
		if n <= 2 {
			return serviceerror.NewUnavailable("connection refused")
		}
		return nil
	}
	e, f := newPaymentsEnv(t, 5*time.Second, unavailable)
	m, c := e.merchant(t), e.customer(t)

	p, err := e.createPayment(ctxT(t), c, payReq(m, 1999, "USD"))
	if err != nil {
		t.Fatalf("CreatePayment after two unavailable answers: %v", err)
	}
	calls, ops, _, _ := f.snapshot()
	if len(calls) != 3 || ops != 3 {
		t.Fatalf("%d update-with-start calls with %d start operations, want 3 and 3", len(calls), ops)
	}
	if id := wantOneWorkflowID(t, calls); id != p.GetId() {
		t.Fatalf("the workflow is payment/%s, the answer payment %s", id, p.GetId())
	}
	for _, call := range calls {
		if call.update != payment.UpdateAwaitResult {
			t.Fatalf("update %q, want %q", call.update, payment.UpdateAwaitResult)
		}
	}
	if n := e.st.Client.Payment.Query().CountX(ctxT(t)); n != 1 {
		t.Fatalf("%d payments, want 1", n)
	}
}

func TestStartThatTimedOutIsResumedNotRepeated(t *testing.T) {
	t.Parallel()
	// The first call hangs until the bounded wait is over, as a Temporal
	// that accepted the start and then stalled would; the next succeeds.
	hang := func(ctx context.Context, n int, _ string) error {
		if n == 1 {
			<-ctx.Done()
			return client.NewWorkflowUpdateServiceTimeoutOrCanceledError(ctx.Err())
		}
		return nil
	}
	e, f := newPaymentsEnv(t, 300*time.Millisecond, hang)
	m, c := e.merchant(t), e.customer(t)
	p, err := e.createPayment(ctxT(t), c, payReq(m, 500, "EUR"))
	if err != nil {
		t.Fatalf("CreatePayment: %v", err)
	}
	if p.GetStatus() != pb.PaymentStatus_PAYMENT_STATUS_PROCESSING {
		t.Fatalf("status %s, want processing", p.GetStatus())
	}
	calls, _, _, _ := f.snapshot()
	if len(calls) != 2 || calls[1].update != payment.UpdateAwaitRecorded {
		t.Fatalf("calls %+v, want the wait and then an update-with-start of %s", calls, payment.UpdateAwaitRecorded)
	}
	if id := wantOneWorkflowID(t, calls); id != p.GetId() {
		t.Fatalf("the workflow is payment/%s, the answer payment %s", id, p.GetId())
	}
}

// paymentMayExist returns the payment id of an unavailable error's
// ErrorInfo detail, failing t unless err is one.
func paymentMayExist(t *testing.T, err error) string {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable {
		t.Fatalf("error %v, want unavailable", err)
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			t.Fatalf("detail %s: %v", d.Type(), derr)
		}
		if info, ok := v.(*errdetails.ErrorInfo); ok {
			if info.GetReason() != api.ReasonPaymentMayExist {
				t.Fatalf("ErrorInfo reason %q, want %q", info.GetReason(), api.ReasonPaymentMayExist)
			}
			id := info.GetMetadata()["payment_id"]
			if !strings.Contains(ce.Message(), id) {
				t.Fatalf("message %q does not name payment %s", ce.Message(), id)
			}
			return id
		}
	}
	t.Fatalf("unavailable without an ErrorInfo detail: %v", ce)
	return ""
}

func TestUnknownStartNamesThePayment(t *testing.T) {
	t.Parallel()
	t.Run("unavailable every time", func(t *testing.T) {
		t.Parallel()
		down := func(context.Context, int, string) error { return serviceerror.NewUnavailable("connection refused") }
		e, f := newPaymentsEnv(t, 5*time.Second, down)
		m, c := e.merchant(t), e.customer(t)
		_, err := e.createPayment(ctxT(t), c, payReq(m, 1999, "USD"))
		id := paymentMayExist(t, err)
		calls, _, _, _ := f.snapshot()
		if got := wantOneWorkflowID(t, calls); got != id {
			t.Fatalf("the error names %s, the workflow is payment/%s", id, got)
		}
		if len(calls) < 2 || len(calls) > 8 {
			t.Fatalf("%d attempts, want a few (retried, bounded)", len(calls))
		}
		// The client's next step: GetPayment with that id (not found
		// here, as the fake wrote nothing), never a second payment.
		_, gerr := e.clients[connectJSON].payment.GetPayment(ctxT(t), authed(c, &pb.GetPaymentRequest{Id: id}))
		if connect.CodeOf(gerr) != connect.CodeNotFound {
			t.Fatalf("GetPayment(%s): %v, want not_found", id, gerr)
		}
		// Every transport carries the detail.
		r := e.call(t, httpJSON, c.authz(), payReq(m, 1999, "USD"))
		r.wantErr(t, want{code: connect.CodeUnavailable, msg: "GetPayment"})
		if !slices.Contains(r.detailTypes, "google.rpc.ErrorInfo") {
			t.Fatalf("http+json details %q, want google.rpc.ErrorInfo", r.detailTypes)
		}
	})
	t.Run("no answer before the request's deadline", func(t *testing.T) {
		t.Parallel()
		hang := func(ctx context.Context, _ int, _ string) error {
			<-ctx.Done()
			return ctx.Err()
		}
		// The default wait (10 s) is longer than the client's deadline.
		e, f := newPaymentsEnv(t, 0, hang)
		m, c := e.merchant(t), e.customer(t)
		ctx, cancel := context.WithTimeout(ctxT(t), 2*time.Second)
		defer cancel()
		_, err := e.createPayment(ctx, c, payReq(m, 1999, "USD"))
		id := paymentMayExist(t, err)
		calls, _, _, _ := f.snapshot()
		if got := wantOneWorkflowID(t, calls); got != id {
			t.Fatalf("the error names %s, the workflow is payment/%s", id, got)
		}
	})
	t.Run("a refusal is not retried", func(t *testing.T) {
		t.Parallel()
		refuse := func(context.Context, int, string) error {
			return temporal.NewNonRetryableApplicationError("amount exceeds the limit", payment.ErrTypeInvalidArgument, nil)
		}
		e, f := newPaymentsEnv(t, 5*time.Second, refuse)
		m, c := e.merchant(t), e.customer(t)
		_, err := e.createPayment(ctxT(t), c, payReq(m, 1999, "USD"))
		if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("error %v, want invalid_argument", err)
		}
		if calls, _, _, _ := f.snapshot(); len(calls) != 1 {
			t.Fatalf("%d calls, want 1", len(calls))
		}
	})
}

func authed[T any](u user, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	r.Header().Set("Authorization", u.authz())
	return r
}

// ---- what each role sees ----------------------------------------------------

// admin creates an admin account in the store and signs it in.
func (e *env) admin(t *testing.T) user {
	t.Helper()
	hash, err := auth.HashPassword(password, cheapPassword)
	if err != nil {
		t.Fatal(err)
	}
	email := e.email("admin")
	if _, err := e.st.CreateAccount(ctxT(t), store.NewAccount{Email: email, PasswordHash: hash, Role: account.RoleAdmin, DefaultCurrency: "USD"}); err != nil {
		t.Fatal(err)
	}
	return e.login(t, email, password)
}

// savePayment stores a payment of m and c as its workflow would.
func (e *env) savePayment(t *testing.T, m, c user, currency string, amount int64, status entpayment.Status, attention bool) *ent.Payment {
	t.Helper()
	id := ids.New(ids.Payment)
	now := time.Now().UTC()
	rec := store.PaymentRecord{
		ID: id, MerchantID: m.acct.GetId(), CustomerID: c.acct.GetId(), Amount: amount, Currency: currency,
		Status: status, PaymentMethod: "pm_card_visa", Gateway: sandbox.Name, GatewayReference: fakeGatewayRef + id,
		WorkflowID: payment.WorkflowID(id), Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	if status == entpayment.StatusRequiresCapture {
		rec.CaptureMethod = entpayment.CaptureMethodManual
		rec.AmountCapturable = amount
	}
	if attention {
		rec.NeedsAttention, rec.AttentionReason = true, attentionReason
	}
	p, err := e.st.SavePayment(ctxT(t), rec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// views returns the payment as u sees it through GetPayment and through
// ListPayments.
func (e *env) views(t *testing.T, u user, id string) []*pb.Payment {
	t.Helper()
	got, err := e.clients[connectJSON].payment.GetPayment(ctxT(t), authed(u, &pb.GetPaymentRequest{Id: id}))
	if err != nil {
		t.Fatalf("GetPayment as %s: %v", u.acct.GetRole(), err)
	}
	list, err := e.clients[grpcProto].payment.ListPayments(ctxT(t), authed(u, &pb.ListPaymentsRequest{}))
	if err != nil {
		t.Fatalf("ListPayments as %s: %v", u.acct.GetRole(), err)
	}
	out := []*pb.Payment{got.Msg.GetPayment()}
	for _, p := range list.Msg.GetPayments() {
		if p.GetId() == id {
			out = append(out, p)
		}
	}
	if len(out) != 2 {
		t.Fatalf("ListPayments as %s lacks payment %s", u.acct.GetRole(), id)
	}
	return out
}

func TestOperatorFieldsByRole(t *testing.T) {
	t.Parallel()
	type sees struct{ ref, attention, workflowURL bool }
	for _, dev := range []bool{false, true} {
		t.Run(fmt.Sprintf("ShowWorkflowURLs=%v", dev), func(t *testing.T) {
			t.Parallel()
			e, _ := newPaymentsEnv(t, time.Second, nil, func(d *api.Deps) { d.ShowWorkflowURLs = dev })
			m, c, a := e.merchant(t), e.customer(t), e.admin(t)
			key, _ := e.apiKey(t, m, "server")
			mKey := user{acct: m.acct, access: key}
			p := e.savePayment(t, m, c, "USD", 1500, entpayment.StatusRequiresCapture, true)
			wantURL := fakeUIURL + "/namespaces/default/workflows/payment%2F" + p.ID
			for _, tc := range []struct {
				who  string
				u    user
				sees sees
			}{
				{"admin", a, sees{true, true, true}},
				{"merchant", m, sees{true, true, dev}},
				{"merchant API key", mKey, sees{true, true, dev}},
				{"customer", c, sees{false, false, dev}},
			} {
				for _, got := range e.views(t, tc.u, p.ID) {
					if got.GetId() != p.ID || got.GetAmount() != 1500 || got.GetGateway() != sandbox.Name || got.GetWorkflowId() != p.WorkflowID {
						t.Fatalf("%s: payment %v", tc.who, got)
					}
					if has := got.GetGatewayReference() == p.GatewayReference; has != tc.sees.ref || (!has && got.GetGatewayReference() != "") {
						t.Errorf("%s: gateway_reference %q, want it shown: %v", tc.who, got.GetGatewayReference(), tc.sees.ref)
					}
					if has := got.GetNeedsAttention() && got.GetAttentionReason() == attentionReason; has != tc.sees.attention || (!has && (got.GetNeedsAttention() || got.GetAttentionReason() != "")) {
						t.Errorf("%s: needs_attention %v %q, want it shown: %v", tc.who, got.GetNeedsAttention(), got.GetAttentionReason(), tc.sees.attention)
					}
					if has := got.GetWorkflowUrl() == wantURL; has != tc.sees.workflowURL || (!has && got.GetWorkflowUrl() != "") {
						t.Errorf("%s: workflow_url %q, want it shown: %v", tc.who, got.GetWorkflowUrl(), tc.sees.workflowURL)
					}
				}
			}
		})
	}

	t.Run("CreatePayment answers the customer without them", func(t *testing.T) {
		t.Parallel()
		e, _ := newPaymentsEnv(t, 5*time.Second, nil)
		m, c := e.merchant(t), e.customer(t)
		p, err := e.createPayment(ctxT(t), c, payReq(m, 700, "USD"))
		if err != nil {
			t.Fatal(err)
		}
		if p.GetGatewayReference() != "" || p.GetWorkflowUrl() != "" {
			t.Fatalf("the customer's answer shows gateway_reference %q, workflow_url %q", p.GetGatewayReference(), p.GetWorkflowUrl())
		}
		// The merchant of the same payment sees the reference.
		if got := e.views(t, m, p.GetId())[0]; got.GetGatewayReference() != fakeGatewayRef+p.GetId() {
			t.Fatalf("the merchant sees gateway_reference %q", got.GetGatewayReference())
		}
	})
}

// ---- amounts the gateway cannot represent ------------------------------------

func TestAmountsTheGatewayCannotRepresent(t *testing.T) {
	t.Parallel()
	e, f := newPaymentsEnv(t, 5*time.Second, nil)
	m, c := e.merchant(t), e.customer(t)
	refused := []struct {
		name     string
		amount   int64
		currency string
		field    string
	}{
		{"KWD not ending in 0", 1005, "KWD", "amount"},
		{"BHD not ending in 0", 12341, "bhd", "amount"},
		{"a fund code", 1000, "CHE", "currency"},
		{"the Mexican unidad de inversion", 1000, "MXV", "currency"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			w := want{code: connect.CodeInvalidArgument, field: tc.field}
			e.call(t, httpJSON, c.authz(), payReq(m, tc.amount, tc.currency)).wantErr(t, w)
			_, err := e.createPayment(ctxT(t), c, payReq(m, tc.amount, tc.currency))
			connectErrResult(t, connectJSON, err).wantErr(t, w)
		})
	}
	if calls, _, _, _ := f.snapshot(); len(calls) != 0 {
		t.Fatalf("refused payments reached Temporal: %+v", calls)
	}
	// A representable amount goes through.
	if _, err := e.createPayment(ctxT(t), c, payReq(m, 1000, "KWD")); err != nil {
		t.Fatalf("1.000 KWD: %v", err)
	}

	// Captures: a partial amount is checked against the payment's gateway
	// and currency; no amount captures everything and needs no check.
	p := e.savePayment(t, m, c, "KWD", 12340, entpayment.StatusRequiresCapture, false)
	r := e.call(t, connectJSON, m.authz(), &pb.CapturePaymentRequest{Id: p.ID, Amount: ptr(int64(10001))})
	r.wantErr(t, want{code: connect.CodeInvalidArgument, field: "amount"})
	if _, _, updates, _ := f.snapshot(); len(updates) != 0 {
		t.Fatalf("a refused capture reached the workflow: %+v", updates)
	}
	for _, amount := range []*int64{ptr(int64(10010)), nil} {
		wantOK[*pb.CapturePaymentResponse](t, e.call(t, connectJSON, m.authz(), &pb.CapturePaymentRequest{Id: p.ID, Amount: amount}))
	}
	_, _, updates, _ := f.snapshot()
	if len(updates) != 2 {
		t.Fatalf("%d capture updates, want 2", len(updates))
	}
	for i, want := range []int64{10010, 0} {
		req, ok := updates[i].Args[0].(payment.CaptureRequest)
		if !ok || updates[i].UpdateName != payment.UpdateCapture || req.Amount != want {
			t.Fatalf("update %d: %s %+v, want a capture of %d", i, updates[i].UpdateName, updates[i].Args, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// ---- the Stripe webhook's whitelist -----------------------------------------

// postEvent signs and posts a Stripe event about payment payID.
func (e *env) postEvent(t *testing.T, id, typ, object, status, payID string) int {
	t.Helper()
	obj := map[string]any{"id": "pi_x", "object": object, "status": status, "amount": 1000,
		"metadata": map[string]string{"payment_id": payID}}
	if object == "charge" {
		obj["payment_intent"] = "pi_x"
	}
	body, err := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": sandbox.APIVersion,
		"created": time.Now().Unix(), "type": typ, "data": map[string]any{"object": obj}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.url+sandbox.WebhookPath, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", sandbox.SignPayload(fakeWebhookKey, body, time.Now()))
	res, err := e.h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestStripeWebhookActsOnlyOnKnownEvents(t *testing.T) {
	t.Parallel()
	e, f := newPaymentsEnv(t, time.Second, nil)
	const payID = "pay_01jwebhookwhitelist000000"

	// Events of no interest are acknowledged and change nothing, whatever
	// status their object shows: payment_intent.created says
	// requires_payment_method, which must not fail a payment in progress.
	ignored := []struct{ typ, object, status string }{
		{"payment_intent.created", "payment_intent", "requires_payment_method"},
		{"payment_intent.partially_funded", "payment_intent", "requires_payment_method"},
		{"payment_intent.requires_confirmation", "payment_intent", "requires_confirmation"},
		{"payment_intent.unknown_future_event", "payment_intent", "canceled"},
		{"charge.failed", "charge", "failed"},
		{"charge.succeeded", "charge", "succeeded"},
		{"customer.created", "customer", ""},
	}
	for i, ev := range ignored {
		if got := e.postEvent(t, fmt.Sprintf("evt_ignored_%d", i), ev.typ, ev.object, ev.status, payID); got != http.StatusOK {
			t.Fatalf("%s: HTTP %d, want 200", ev.typ, got)
		}
	}
	if _, _, _, signals := f.snapshot(); len(signals) != 0 {
		t.Fatalf("ignored events reached the workflow: %+v", signals)
	}
	if n := e.st.Client.GatewayEvent.Query().CountX(ctxT(t)); n != 0 {
		t.Fatalf("%d ignored events recorded", n)
	}

	// The whitelist, each with the status it reports (not the object's).
	known := []struct {
		typ, status string
		want        gateway.Status
	}{
		{"payment_intent.succeeded", "succeeded", gateway.StatusSucceeded},
		{"payment_intent.amount_capturable_updated", "requires_capture", gateway.StatusRequiresCapture},
		{"payment_intent.payment_failed", "requires_payment_method", gateway.StatusFailed},
		{"payment_intent.canceled", "canceled", gateway.StatusCanceled},
		{"payment_intent.requires_action", "requires_action", gateway.StatusRequiresAction},
		{"payment_intent.processing", "processing", gateway.StatusProcessing},
	}
	for i, ev := range known {
		if got := e.postEvent(t, fmt.Sprintf("evt_known_%d", i), ev.typ, "payment_intent", ev.status, payID); got != http.StatusOK {
			t.Fatalf("%s: HTTP %d, want 200", ev.typ, got)
		}
	}
	_, _, _, signals := f.snapshot()
	if len(signals) != len(known) {
		t.Fatalf("%d signals, want %d: %+v", len(signals), len(known), signals)
	}
	for i, ev := range known {
		s := signals[i]
		if s.workflowID != payment.WorkflowID(payID) || s.name != payment.SignalGatewayEvent ||
			s.event.Type != ev.typ || s.event.Status != ev.want || s.event.EventID != fmt.Sprintf("evt_known_%d", i) {
			t.Errorf("%s: signal %+v, want status %s to %s", ev.typ, s, ev.want, payment.WorkflowID(payID))
		}
	}
}
