package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/payments-platform/payments/api"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// oneMiB is the contract's request size limit.
const oneMiB = 1 << 20

func TestMaxRequestBytesIsOneMiB(t *testing.T) {
	if api.MaxRequestBytes != oneMiB {
		t.Errorf("api.MaxRequestBytes = %d, want 1 MiB", api.MaxRequestBytes)
	}
}

func md(t *testing.T, req proto.Message) protoreflect.MethodDescriptor {
	t.Helper()
	return methodOf(t, req)
}

// padTo pads the JSON object body with spaces before its closing brace to
// exactly n bytes.
func padTo(t *testing.T, body string, n int) []byte {
	t.Helper()
	if !strings.HasSuffix(body, "}") || len(body) > n {
		t.Fatalf("cannot pad %q to %d bytes", body, n)
	}
	return []byte(body[:len(body)-1] + strings.Repeat(" ", n-len(body)) + "}")
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestWireRefusals: malformed, mistyped, unknown and oversized requests are
// refused with the right code over raw HTTP and change nothing.
func TestWireRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.merchant(t)
	register := md(t, &pb.RegisterRequest{})
	getMe := md(t, &pb.GetMeRequest{})
	valid := `{"email":"wire@example.com","password":"` + password + `","role":"ROLE_MERCHANT"}`
	withField := func(extra string) string { return strings.TrimSuffix(valid, "}") + "," + extra + "}" }
	over := padTo(t, valid, oneMiB+1)

	tests := []struct {
		name     string
		method   protoreflect.MethodDescriptor
		authz    string
		encoding string
		body     []byte
		h2c      bool
		want     want
	}{
		{name: "unknown field", method: register, body: []byte(withField(`"nickname":"x"`)),
			want: want{code: connect.CodeInvalidArgument, msg: "nickname"}},
		{name: "unknown field on GetMe", method: getMe, authz: u.authz(), body: []byte(`{"accountId":"acct_x"}`),
			want: want{code: connect.CodeInvalidArgument, msg: "accountId"}},
		{name: "role is an object", method: register, body: []byte(`{"email":"wire@example.com","password":"` + password + `","role":{}}`),
			want: want{code: connect.CodeInvalidArgument, msg: "role"}},
		{name: "password is a number", method: register, body: []byte(`{"email":"wire@example.com","password":5,"role":"ROLE_MERCHANT"}`),
			want: want{code: connect.CodeInvalidArgument, msg: "password"}},
		{name: "email is an array", method: register, body: []byte(`{"email":["wire@example.com"],"password":"` + password + `","role":1}`),
			want: want{code: connect.CodeInvalidArgument, msg: "email"}},
		{name: "unknown enum name", method: register, body: []byte(`{"email":"wire@example.com","password":"` + password + `","role":"ROLE_ROOT"}`),
			want: want{code: connect.CodeInvalidArgument, msg: "ROLE_ROOT"}},
		{name: "field given twice, snake and camel", method: register, body: []byte(withField(`"display_name":"a","displayName":"b"`)),
			want: want{code: connect.CodeInvalidArgument}},
		{name: "truncated JSON", method: register, body: []byte(`{"email":"wire@example.com",`),
			want: want{code: connect.CodeInvalidArgument}},
		{name: "JSON array", method: register, body: []byte(`[]`),
			want: want{code: connect.CodeInvalidArgument}},
		{name: "form encoding", method: register, body: []byte(`email=wire@example.com&password=x`),
			want: want{code: connect.CodeInvalidArgument}},
		{name: "trailing garbage", method: register, body: []byte(valid + `{}`),
			want: want{code: connect.CodeInvalidArgument}},
		{name: "empty body on Register", method: register, body: nil,
			want: want{code: connect.CodeInvalidArgument, field: "email"}},
		{name: "body over 1 MiB", method: register, body: over,
			want: want{code: connect.CodeResourceExhausted, status: http.StatusRequestEntityTooLarge}},
		{name: "body over 1 MiB over h2c", method: register, body: over, h2c: true,
			want: want{code: connect.CodeResourceExhausted, status: http.StatusRequestEntityTooLarge}},
		{name: "body over 1 MiB on an authenticated RPC", method: getMe, authz: u.authz(), body: padTo(t, `{}`, oneMiB+1),
			want: want{code: connect.CodeResourceExhausted, status: http.StatusRequestEntityTooLarge}},
		{name: "gzip body inflating to over 1 MiB", method: register, encoding: "gzip", body: gzipped(t, over),
			want: want{code: connect.CodeResourceExhausted, status: http.StatusRequestEntityTooLarge}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot(t)
			hdr := http.Header{}
			if tc.authz != "" {
				hdr.Set("Authorization", tc.authz)
			}
			if tc.encoding != "" {
				hdr.Set("Content-Encoding", tc.encoding)
			}
			client := e.h1
			if tc.h2c {
				client = e.h2c
			}
			r := e.rawPost(t, client, procedureOf(tc.method), tc.method, "application/json", tc.body, hdr)
			r.wantErr(t, tc.want)
			e.unchanged(t, before)
		})
	}

	// The generated clients hit the same limit.
	for _, tr := range []transport{connectJSON, grpcProto} {
		t.Run("over 1 MiB/"+string(tr), func(t *testing.T) {
			before := e.snapshot(t)
			e.call(t, tr, "", &pb.RegisterRequest{
				Email: "big@example.com", Password: password, Role: pb.Role_ROLE_MERCHANT,
				DisplayName: strings.Repeat("x", oneMiB),
			}).wantErr(t, want{code: connect.CodeResourceExhausted})
			e.unchanged(t, before)
		})
	}

	t.Run("unsupported content type", func(t *testing.T) {
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, e.url+procedureOf(register), strings.NewReader(valid))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain")
		res, err := e.h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("status = %d, want 415", res.StatusCode)
		}
		if n := e.countAccounts(t); n != 1 {
			t.Errorf("%d accounts, want 1", n)
		}
	})
}

// TestWireAccepts: what protojson integrators may send is accepted.
func TestWireAccepts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.merchant(t)
	register := md(t, &pb.RegisterRequest{})
	post := func(t *testing.T, m protoreflect.MethodDescriptor, contentType, authz, body string) result {
		t.Helper()
		hdr := http.Header{}
		if authz != "" {
			hdr.Set("Authorization", authz)
		}
		return e.rawCall(t, m, contentType, []byte(body), hdr)
	}

	t.Run("body of exactly 1 MiB", func(t *testing.T) {
		body := padTo(t, `{"email":"mib@example.com","password":"`+password+`","role":"ROLE_CUSTOMER"}`, oneMiB)
		wantOK[*pb.RegisterResponse](t, e.rawCall(t, register, "application/json", body, nil))
	})
	t.Run("empty body on GetMe", func(t *testing.T) {
		a := wantOK[*pb.GetMeResponse](t, post(t, md(t, &pb.GetMeRequest{}), "application/json", u.authz(), "")).GetAccount()
		if a.GetId() != u.acct.GetId() {
			t.Errorf("GetMe = %v", a)
		}
	})
	t.Run("charset in the content type", func(t *testing.T) {
		wantOK[*pb.GetMeResponse](t, post(t, md(t, &pb.GetMeRequest{}), "application/json; charset=utf-8", u.authz(), "{}"))
	})

	names := []struct {
		name, body string
		role       pb.Role
	}{
		{"snake_case, enum name", `{"email":"%s","password":"%s","role":"ROLE_CUSTOMER","display_name":"Dee","business_name":"Biz","default_currency":"gbp"}`, pb.Role_ROLE_CUSTOMER},
		{"camelCase, enum number", `{"email":"%s","password":"%s","role":2,"displayName":"Dee","businessName":"Biz","defaultCurrency":"gbp"}`, pb.Role_ROLE_CUSTOMER},
		{"camelCase, merchant by name", `{"email":"%s","password":"%s","role":"ROLE_MERCHANT","displayName":"Dee","businessName":"Biz","defaultCurrency":"gbp"}`, pb.Role_ROLE_MERCHANT},
		{"snake_case, merchant by number", `{"email":"%s","password":"%s","role":1,"display_name":"Dee","business_name":"Biz","default_currency":"gbp"}`, pb.Role_ROLE_MERCHANT},
	}
	for _, tc := range names {
		t.Run(tc.name, func(t *testing.T) {
			email := e.email("names")
			body := strings.Replace(strings.Replace(tc.body, "%s", email, 1), "%s", password, 1)
			a := wantOK[*pb.RegisterResponse](t, post(t, register, "application/json", "", body)).GetAccount()
			if a.GetRole() != tc.role || a.GetDisplayName() != "Dee" || a.GetBusinessName() != "Biz" || a.GetDefaultCurrency() != "GBP" {
				t.Errorf("account = %v", a)
			}
		})
	}
	t.Run("snake_case and camelCase on UpdateMe and ListApiKeys", func(t *testing.T) {
		v := e.merchant(t)
		um := md(t, &pb.UpdateMeRequest{})
		wantOK[*pb.UpdateMeResponse](t, post(t, um, "application/json", v.authz(),
			`{"new_password":"the second password","current_password":"`+password+`"}`))
		wantOK[*pb.UpdateMeResponse](t, post(t, um, "application/json", v.authz(),
			`{"newPassword":"the third password!","currentPassword":"the second password"}`))
		e.login(t, v.email, "the third password!")
		e.apiKey(t, v, "one")
		e.apiKey(t, v, "two")
		lk := md(t, &pb.ListApiKeysRequest{})
		for _, body := range []string{`{"page_size":1}`, `{"pageSize":1}`} {
			res := wantOK[*pb.ListApiKeysResponse](t, post(t, lk, "application/json", v.authz(), body))
			if len(res.GetApiKeys()) != 1 || res.GetNextPageToken() == "" {
				t.Errorf("%s: %d keys, next %q", body, len(res.GetApiKeys()), res.GetNextPageToken())
			}
		}
	})

	t.Run("responses use lowerCamelCase and enum names", func(t *testing.T) {
		r := post(t, md(t, &pb.LoginRequest{}), "application/json", "", `{"email":"`+u.email+`","password":"`+password+`"}`)
		wantOK[*pb.LoginResponse](t, r)
		top := jsonKeys(t, r.body)
		for _, k := range []string{"accessToken", "refreshToken", "accessTokenExpiresAt", "refreshTokenExpiresAt", "account"} {
			if _, ok := top[k]; !ok {
				t.Errorf("login response lacks %q: %s", k, r.body)
			}
		}
		acct := jsonKeys(t, top["account"])
		for _, k := range []string{"id", "email", "role", "displayName", "businessName", "defaultCurrency", "status", "createdAt", "updatedAt"} {
			if _, ok := acct[k]; !ok {
				t.Errorf("account lacks %q: %s", k, top["account"])
			}
		}
		for _, obj := range []map[string]json.RawMessage{top, acct} {
			for k := range obj {
				if strings.Contains(k, "_") {
					t.Errorf("response key %q is not lowerCamelCase", k)
				}
			}
		}
		if string(acct["role"]) != `"ROLE_MERCHANT"` || string(acct["status"]) != `"ACCOUNT_STATUS_ACTIVE"` {
			t.Errorf("role %s, status %s: want enum names", acct["role"], acct["status"])
		}
		var exp string
		if err := json.Unmarshal(top["accessTokenExpiresAt"], &exp); err != nil {
			t.Fatal(err)
		}
		if at, err := time.Parse(time.RFC3339, exp); err != nil || !at.Equal(e.clock.Now().Add(accessTTL)) {
			t.Errorf("accessTokenExpiresAt = %q (%v), want RFC 3339 of now+15m", exp, err)
		}
	})

	t.Run("Connect GET on a read-only RPC", func(t *testing.T) {
		q := url.Values{"connect": {"v1"}, "encoding": {"json"}, "message": {"{}"}}
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.url+procedureOf(md(t, &pb.GetMeRequest{}))+"?"+q.Encode(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", u.authz())
		res, err := e.h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		r := decodeRaw(t, md(t, &pb.GetMeRequest{}), res, raw)
		if got := wantOK[*pb.GetMeResponse](t, r); got.GetAccount().GetId() != u.acct.GetId() {
			t.Errorf("GET GetMe = %v", got)
		}
		// The generated client's GET mode agrees.
		c := paymentsv1connect.NewAccountServiceClient(e.h1, e.url, connect.WithProtoJSON(), connect.WithHTTPGet())
		creq := connect.NewRequest(&pb.GetMeRequest{})
		creq.Header().Set("Authorization", u.authz())
		cres, err := c.GetMe(ctxT(t), creq)
		if err != nil {
			t.Fatal(err)
		}
		if cres.Msg.GetAccount().GetId() != u.acct.GetId() {
			t.Errorf("client GET GetMe = %v", cres.Msg)
		}
	})
}

// TestServerSpeaksHTTP2AndHTTP1: the harness really exercises h2c and
// HTTP/1.1 on one port, as production does.
func TestServerSpeaksHTTP2AndHTTP1(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		client *http.Client
		major  int
	}{{e.h2c, 2}, {e.h1, 1}} {
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.url+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := tc.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.ProtoMajor != tc.major || res.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz: %s %d, want HTTP/%d 200", res.Proto, res.StatusCode, tc.major)
		}
	}
}

// TestEveryProcedureIsServed: every RPC of every service answers on its
// path, and only Register, Login, RefreshToken and the mailed links'
// RPCs (VerifyEmail, RequestPasswordReset, ResetPassword) without
// credentials.
func TestEveryProcedureIsServed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	open := []string{
		paymentsv1connect.AuthServiceRegisterProcedure,
		paymentsv1connect.AuthServiceLoginProcedure,
		paymentsv1connect.AuthServiceRefreshTokenProcedure,
		paymentsv1connect.AuthServiceVerifyEmailProcedure,
		paymentsv1connect.AuthServiceRequestPasswordResetProcedure,
		paymentsv1connect.AuthServiceResetPasswordProcedure,
	}
	n := 0
	for _, m := range methods {
		proc := procedureOf(m)
		n++
		t.Run(proc, func(t *testing.T) {
			r := e.rawPost(t, e.h1, proc, m, "application/json", []byte(`{}`), nil)
			if slices.Contains(open, proc) {
				// Reached validation: the empty request is invalid.
				r.wantErr(t, want{code: connect.CodeInvalidArgument})
				return
			}
			r.wantErr(t, want{code: connect.CodeUnauthenticated, msg: "missing credentials"})
		})
	}
	if n < 35 {
		t.Errorf("only %d procedures found in payments.v1", n)
	}
}

// TestOtherHTTPMethodsRefused: only POST (and GET for read-only RPCs).
func TestOtherHTTPMethodsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPut, e.url+paymentsv1connect.AuthServiceRegisterProcedure, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := e.h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT Register: status %d, want 405", res.StatusCode)
	}
}
