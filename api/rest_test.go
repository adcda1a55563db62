package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/ids"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// httpRule is the google.api.http annotation of md: its HTTP method, its
// path template and whether the request message is the body.
func httpRule(t *testing.T, md protoreflect.MethodDescriptor) (method, template string, body bool) {
	t.Helper()
	rule, ok := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	if !ok || rule == nil {
		t.Fatalf("%s has no google.api.http annotation", md.FullName())
	}
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		method, template = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		method, template = http.MethodPost, p.Post
	case *annotations.HttpRule_Patch:
		method, template = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		method, template = http.MethodDelete, p.Delete
	default:
		t.Fatalf("%s: unexpected HTTP rule %v", md.FullName(), rule)
	}
	switch rule.GetBody() {
	case "*":
		body = true
	case "":
	default:
		t.Fatalf("%s: body %q, want * or none", md.FullName(), rule.GetBody())
	}
	return method, template, body
}

// restRequest is req as an integrator sends it to its REST route, reading
// the route off the RPC's annotation: the path's {fields} filled in from
// req, the other fields set in the JSON body, or in the query for a route
// without one.
func (e *env) restRequest(t *testing.T, req proto.Message) *http.Request {
	t.Helper()
	md := methodOf(t, req)
	method, template, hasBody := httpRule(t, md)
	raw, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	text := func(v json.RawMessage) string {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
		return string(v)
	}
	path := template
	for {
		open := strings.IndexByte(path, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(path, '}')
		fd := md.Input().Fields().ByName(protoreflect.Name(path[open+1 : end]))
		if fd == nil {
			t.Fatalf("%s: path variable %s is not a field", md.FullName(), path[open:end+1])
		}
		path = path[:open] + url.PathEscape(text(fields[fd.JSONName()])) + path[end+1:]
		delete(fields, fd.JSONName())
	}
	var body io.Reader
	if hasBody {
		b, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	} else {
		q := url.Values{}
		for k, v := range fields {
			q.Set(k, text(v))
		}
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
	}
	r, err := http.NewRequestWithContext(ctxT(t), method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if hasBody {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// rest calls req's REST route with the Authorization header authz and the
// headers hdr, and reads the answer as a Connect unary answer: REST routes
// answer the RPC's JSON and Connect's JSON errors.
func (e *env) rest(t *testing.T, authz string, req proto.Message, hdr http.Header) result {
	t.Helper()
	r := e.restRequest(t, req)
	for k, vs := range hdr {
		r.Header[k] = vs
	}
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	res, err := e.h1.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return decodeRaw(t, methodOf(t, req), res, raw)
}

// sameResult fails t unless the REST answer and the Connect answer are the
// same result: the same HTTP status and, on success, equal responses, on
// failure the same code, message and violations.
func sameResult(t *testing.T, restRes, rpcRes result) {
	t.Helper()
	if restRes.status != rpcRes.status || restRes.code != rpcRes.code || restRes.msg != rpcRes.msg {
		t.Fatalf("REST: %d %v %q, Connect: %d %v %q", restRes.status, codeName(restRes.code), restRes.msg,
			rpcRes.status, codeName(rpcRes.code), rpcRes.msg)
	}
	if !proto.Equal(restRes.resp, rpcRes.resp) {
		t.Fatalf("REST answered\n%v\nConnect answered\n%v", restRes.resp, rpcRes.resp)
	}
	if got, want := strings.Join(restRes.fields(), ","), strings.Join(rpcRes.fields(), ","); got != want {
		t.Fatalf("REST violations name %q, Connect's %q", got, want)
	}
}

// TestRESTRoutesAnswerAsTheirRPC calls every RPC of every service through
// its REST route and through Connect JSON with the same request, and wants
// the same result. Reads are compared on real data (query filters, page
// sizes, path ids); calls that would change something are compared on a
// refusal, which still goes through the route's mapping, authentication,
// decoding, validation and handler. A REST call to a route whose request
// carries a path id must reach the same object as the RPC.
func TestRESTRoutesAnswerAsTheirRPC(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withWebhookDeps(t))
	m, c, adm := e.merchant(t), e.customer(t), e.admin(t)
	e.apiKey(t, m, "first")
	e.apiKey(t, m, "second")
	paid := e.savePayment(t, m, c, "EUR", 1999, entpayment.StatusSucceeded, false)
	e.savePayment(t, m, c, "EUR", 500, entpayment.StatusFailed, false)
	e.savePayment(t, m, c, "USD", 700, entpayment.StatusSucceeded, false)
	endpoint := wantOK[*pb.CreateWebhookEndpointResponse](t, e.call(t, httpJSON, m.authz(),
		&pb.CreateWebhookEndpointRequest{Url: hookURL, EnabledEvents: []string{"payment.succeeded"}})).GetWebhookEndpoint()
	since := timestamppb.New(paid.CreatedAt.Add(-1))
	pay := func() string { return ids.New(ids.Payment) }

	rows := []struct {
		name  string
		authz string
		req   proto.Message
	}{
		// AuthService.
		{"Register with a short password", "", &pb.RegisterRequest{Email: e.email("rest"), Password: "short", Role: pb.Role_ROLE_MERCHANT}},
		{"Login with an unknown email", "", &pb.LoginRequest{Email: e.email("nobody"), Password: password}},
		{"RefreshToken with a forged token", "", &pb.RefreshTokenRequest{RefreshToken: "rt_forged"}},
		{"Logout without a known token", m.authz(), &pb.LogoutRequest{RefreshToken: "rt_unknown"}},
		{"VerifyEmail with a forged token", "", &pb.VerifyEmailRequest{Token: "vfy_forged"}},
		{"RequestPasswordReset of an unknown email", "", &pb.RequestPasswordResetRequest{Email: e.email("nobody")}},
		{"ResetPassword with a forged token", "", &pb.ResetPasswordRequest{Token: "rst_forged", NewPassword: password}},
		// AccountService.
		{"GetMe", m.authz(), &pb.GetMeRequest{}},
		{"UpdateMe with a too long name", m.authz(), &pb.UpdateMeRequest{DisplayName: proto.String(strings.Repeat("n", 101))}},
		{"CreateApiKey without a name", m.authz(), &pb.CreateApiKeyRequest{}},
		{"ListApiKeys, a page of 1", m.authz(), &pb.ListApiKeysRequest{PageSize: 1}},
		{"RevokeApiKey of an unknown key", m.authz(), &pb.RevokeApiKeyRequest{Id: ids.New(ids.APIKey)}},
		{"ChangePassword to a short one", m.authz(), &pb.ChangePasswordRequest{CurrentPassword: password, NewPassword: "short"}},
		{"ListSessions", m.authz(), &pb.ListSessionsRequest{}},
		{"RevokeSession of an unknown session", m.authz(), &pb.RevokeSessionRequest{Id: "rtf_unknown"}},
		{"ResendVerification anonymously", "", &pb.ResendVerificationRequest{}},
		{"CloseAccount without a password", c.authz(), &pb.CloseAccountRequest{}},
		// PaymentService.
		{"CreatePayment of nothing", m.authz(), &pb.CreatePaymentRequest{Amount: 0, Currency: "eur", PaymentMethod: "pm_card_visa"}},
		{"CreatePayment with card data", c.authz(), &pb.CreatePaymentRequest{MerchantId: m.acct.GetId(), Amount: 1000, Currency: "eur", PaymentMethod: "4242 4242 4242 4242"}},
		{"GetPayment", m.authz(), &pb.GetPaymentRequest{Id: paid.ID}},
		{"GetPayment of another's payment", adm.authz(), &pb.GetPaymentRequest{Id: pay()}},
		{"ListPayments filtered", m.authz(), &pb.ListPaymentsRequest{Status: pb.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, PageSize: 1, CreatedAfter: since}},
		{"ListPayments of a customer", c.authz(), &pb.ListPaymentsRequest{MerchantId: m.acct.GetId()}},
		{"CapturePayment of an unknown payment", m.authz(), &pb.CapturePaymentRequest{Id: pay()}},
		{"CancelPayment of an unknown payment", m.authz(), &pb.CancelPaymentRequest{Id: pay(), Reason: "abandoned"}},
		// RefundService.
		{"CreateRefund of an unknown payment", m.authz(), &pb.CreateRefundRequest{PaymentId: pay(), Amount: 100}},
		{"GetRefund of an unknown refund", m.authz(), &pb.GetRefundRequest{Id: ids.New(ids.Refund)}},
		{"ListRefunds of a payment", m.authz(), &pb.ListRefundsRequest{PaymentId: paid.ID}},
		// DisputeService.
		{"OpenDispute of an unknown payment", c.authz(), &pb.OpenDisputeRequest{PaymentId: pay(), Reason: pb.DisputeReason_DISPUTE_REASON_FRAUDULENT}},
		{"GetDispute of an unknown dispute", m.authz(), &pb.GetDisputeRequest{Id: ids.New(ids.Dispute)}},
		{"ListDisputes filtered", m.authz(), &pb.ListDisputesRequest{PaymentId: paid.ID, PageSize: 5}},
		{"SubmitEvidence to an unknown dispute", m.authz(), &pb.SubmitEvidenceRequest{DisputeId: ids.New(ids.Dispute), Evidence: &pb.Evidence{Explanation: "delivered"}}},
		{"AcceptDispute of an unknown dispute", m.authz(), &pb.AcceptDisputeRequest{DisputeId: ids.New(ids.Dispute)}},
		{"WithdrawDispute of an unknown dispute", c.authz(), &pb.WithdrawDisputeRequest{DisputeId: ids.New(ids.Dispute)}},
		{"ResolveDispute of an unknown dispute", adm.authz(), &pb.ResolveDisputeRequest{DisputeId: ids.New(ids.Dispute), Outcome: pb.DisputeOutcome_DISPUTE_OUTCOME_WON}},
		// TransactionService.
		{"ListTransactions filtered", m.authz(), &pb.ListTransactionsRequest{PageSize: 2, CreatedAfter: since}},
		{"GetTransaction of an unknown transaction", m.authz(), &pb.GetTransactionRequest{Id: ids.New(ids.Txn)}},
		// WebhookService.
		{"CreateWebhookEndpoint to a loopback URL", m.authz(), &pb.CreateWebhookEndpointRequest{Url: "https://127.0.0.1/hook", EnabledEvents: []string{"payment.succeeded"}}},
		{"GetWebhookEndpoint", m.authz(), &pb.GetWebhookEndpointRequest{Id: endpoint.GetId()}},
		{"ListWebhookEndpoints", m.authz(), &pb.ListWebhookEndpointsRequest{PageSize: 10}},
		{"UpdateWebhookEndpoint to a private URL", m.authz(), &pb.UpdateWebhookEndpointRequest{Id: endpoint.GetId(), Url: proto.String("https://private.example.test/hook")}},
		{"DeleteWebhookEndpoint of an unknown endpoint", m.authz(), &pb.DeleteWebhookEndpointRequest{Id: ids.New(ids.Endpoint)}},
		{"RotateWebhookSecret of an unknown endpoint", m.authz(), &pb.RotateWebhookSecretRequest{Id: ids.New(ids.Endpoint)}},
		{"ListEvents filtered", m.authz(), &pb.ListEventsRequest{Type: "payment.succeeded", ObjectId: paid.ID}},
		{"GetEvent of an unknown event", m.authz(), &pb.GetEventRequest{Id: ids.New(ids.Event)}},
		{"ListDeliveries of an endpoint", m.authz(), &pb.ListDeliveriesRequest{EndpointId: endpoint.GetId()}},
		{"RedeliverEvent of an unknown event", m.authz(), &pb.RedeliverEventRequest{EventId: ids.New(ids.Event), EndpointId: endpoint.GetId()}},
		// AdminService.
		{"ListReconciliationCases", adm.authz(), &pb.ListReconciliationCasesRequest{}},
		{"ResolveReconciliationCase of an unknown case", adm.authz(), &pb.ResolveReconciliationCaseRequest{Id: ids.New("rcn_"), Note: "checked"}},
		{"CreateAdmin with a short password", adm.authz(), &pb.CreateAdminRequest{Email: e.email("admin"), Password: "short"}},
		{"ListAccounts filtered", adm.authz(), &pb.ListAccountsRequest{Role: pb.Role_ROLE_MERCHANT, EmailPrefix: "merchant", PageSize: 10}},
		{"GetAccount", adm.authz(), &pb.GetAccountRequest{Id: m.acct.GetId()}},
		{"SuspendAccount of an unknown account", adm.authz(), &pb.SuspendAccountRequest{Id: ids.New(ids.Account), Reason: pb.SuspensionReason_SUSPENSION_REASON_FRAUD}},
		{"ReactivateAccount of an unknown account", adm.authz(), &pb.ReactivateAccountRequest{Id: ids.New(ids.Account)}},
		{"ListAuditEvents of an account", adm.authz(), &pb.ListAuditEventsRequest{TargetId: m.acct.GetId()}},
	}

	covered := map[protoreflect.FullName]bool{}
	for _, row := range rows {
		covered[methodOf(t, row.req).FullName()] = true
		t.Run(row.name, func(t *testing.T) {
			rpcRes := e.call(t, httpJSON, row.authz, row.req)
			restRes := e.rest(t, row.authz, row.req, nil)
			sameResult(t, restRes, rpcRes)
		})
	}
	for _, md := range methods {
		if !covered[md.FullName()] {
			t.Errorf("%s has no row: call its REST route here", md.FullName())
		}
	}
}

// TestRESTIdempotencyKey: a REST POST with an Idempotency-Key runs once; the
// same key and body answer the first result again, through REST and through
// Connect alike, since both are the same procedure.
func TestRESTIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	adm, m := e.admin(t), e.merchant(t)
	key := http.Header{"Idempotency-Key": {"suspend-" + m.acct.GetId()}}
	req := &pb.SuspendAccountRequest{Id: m.acct.GetId(), Reason: pb.SuspensionReason_SUSPENSION_REASON_FRAUD, Note: "REST"}

	first := e.rest(t, adm.authz(), req, key)
	suspended := wantOK[*pb.SuspendAccountResponse](t, first).GetAccount()
	if suspended.GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_DISABLED {
		t.Fatalf("SuspendAccount answered %v", suspended)
	}
	if got := first.header.Get("Idempotent-Replayed"); got != "false" {
		t.Errorf("first answer: Idempotent-Replayed %q, want false", got)
	}
	again := e.rest(t, adm.authz(), req, key)
	if got := again.header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("retry: Idempotent-Replayed %q, want true", got)
	}
	sameResult(t, again, first)
	if !bytes.Equal(again.body, first.body) {
		t.Errorf("retry answered\n%s\nthe first answer was\n%s", again.body, first.body)
	}

	body, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	rpcHdr := key.Clone()
	rpcHdr.Set("Authorization", adm.authz())
	viaRPC := e.rawCall(t, methodOf(t, req), "application/json", body, rpcHdr)
	if got := viaRPC.header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("the same call through Connect: Idempotent-Replayed %q, want true", got)
	}
	sameResult(t, viaRPC, first)

	other := proto.Clone(req).(*pb.SuspendAccountRequest)
	other.Note = "another request"
	e.rest(t, adm.authz(), other, key).wantErr(t, want{code: connect.CodeInvalidArgument, msg: "different request"})
}

// TestRESTAuthentication: REST routes take the same credentials as the RPCs
// and check them before reading the request.
func TestRESTAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant(t)
	secret, _ := e.apiKey(t, m, "server")

	t.Run("no credentials", func(t *testing.T) {
		e.rest(t, "", &pb.GetMeRequest{}, nil).wantErr(t, want{code: connect.CodeUnauthenticated, msg: "Authorization: Bearer"})
	})
	t.Run("no credentials and a malformed body", func(t *testing.T) {
		r := e.restRequest(t, &pb.CreatePaymentRequest{})
		r.Body = io.NopCloser(strings.NewReader(`{"amount":`))
		r.ContentLength = -1
		res, err := e.h1.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		decodeRaw(t, nil, res, raw).wantErr(t, want{code: connect.CodeUnauthenticated})
	})
	t.Run("a forged token", func(t *testing.T) {
		e.rest(t, bearer("forged"), &pb.GetMeRequest{}, nil).wantErr(t, want{code: connect.CodeUnauthenticated})
	})
	t.Run("an API key", func(t *testing.T) {
		got := wantOK[*pb.GetMeResponse](t, e.rest(t, bearer(secret), &pb.GetMeRequest{}, nil)).GetAccount()
		if got.GetId() != m.acct.GetId() {
			t.Errorf("GET /v1/me with the API key answered %s, want %s", got.GetId(), m.acct.GetId())
		}
	})
	t.Run("a role that may not", func(t *testing.T) {
		e.rest(t, m.authz(), &pb.ListAccountsRequest{}, nil).wantErr(t, want{code: connect.CodePermissionDenied})
	})
	t.Run("register and sign in", func(t *testing.T) {
		email := e.email("rest")
		reg := wantOK[*pb.RegisterResponse](t, e.rest(t, "", &pb.RegisterRequest{Email: email, Password: password, Role: pb.Role_ROLE_CUSTOMER}, nil))
		login := wantOK[*pb.LoginResponse](t, e.rest(t, "", &pb.LoginRequest{Email: email, Password: password}, nil))
		me := wantOK[*pb.GetMeResponse](t, e.rest(t, bearer(login.GetAccessToken()), &pb.GetMeRequest{}, nil)).GetAccount()
		if me.GetId() != reg.GetAccount().GetId() || me.GetEmail() != email {
			t.Errorf("GET /v1/me answered %v, registered %v", me, reg.GetAccount())
		}
	})
}

// TestRESTRefusesWhatItCannotDecode: an unknown query parameter, a value
// that does not parse or a malformed body is invalid_argument, and the
// procedure does not run.
func TestRESTRefusesWhatItCannotDecode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant(t)
	send := func(t *testing.T, method, path, body string) result {
		t.Helper()
		r, err := http.NewRequestWithContext(ctxT(t), method, e.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", m.authz())
		r.Header.Set("Content-Type", "application/json")
		res, err := e.h1.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return decodeRaw(t, nil, res, raw)
	}
	t.Run("unknown query parameter", func(t *testing.T) {
		send(t, http.MethodGet, "/v1/payments?staus=PAYMENT_STATUS_FAILED", "").wantErr(t, want{code: connect.CodeInvalidArgument, msg: "staus"})
	})
	t.Run("query value that does not parse", func(t *testing.T) {
		send(t, http.MethodGet, "/v1/payments?page_size=ten", "").wantErr(t, want{code: connect.CodeInvalidArgument, msg: "page_size"})
	})
	t.Run("query value out of range", func(t *testing.T) {
		send(t, http.MethodGet, "/v1/payments?pageSize=1000", "").wantErr(t, want{code: connect.CodeInvalidArgument, field: "page_size"})
	})
	t.Run("unknown body field", func(t *testing.T) {
		send(t, http.MethodPatch, "/v1/me", `{"nickname":"x"}`).wantErr(t, want{code: connect.CodeInvalidArgument, msg: "nickname"})
	})
	t.Run("malformed body on a route with a path id", func(t *testing.T) {
		send(t, http.MethodPost, "/v1/payments/"+ids.New(ids.Payment)+"/cancel", `{"reason":`).wantErr(t, want{code: connect.CodeInvalidArgument})
	})
	t.Run("the procedure does not run", func(t *testing.T) {
		// An empty Logout signs every session out: refused for its query,
		// it must leave the refresh token working.
		send(t, http.MethodPost, "/v1/auth/logout?everywhere=true", `{}`).wantErr(t, want{code: connect.CodeInvalidArgument, msg: "everywhere"})
		wantOK[*pb.RefreshTokenResponse](t, e.rest(t, "", &pb.RefreshTokenRequest{RefreshToken: m.refresh}, nil))
	})
}
