package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

// TestRoutingErrorsAreConnectJSON: a request that reaches no procedure (an
// unknown route, a Content-Type no protocol accepts, a method the route
// does not serve, a body over the limit) is answered with Connect's JSON
// error body and an HTTP status that says what went wrong, with a message
// that says what to send.
func TestRoutingErrorsAreConnectJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.merchant(t)
	register := `{"email":"routing@example.com","password":"` + password + `","role":"ROLE_MERCHANT"}`
	over := string(padTo(t, register, oneMiB+1))

	tests := []struct {
		name, method, path, contentType, authz, body string
		// chunked hides the body's length from the server.
		chunked bool
		status  int
		code    connect.Code
		msg     []string
		header  [2]string
	}{
		{name: "unknown route", method: http.MethodPost, path: "/x", status: http.StatusNotFound, code: connect.CodeNotFound,
			msg: []string{"no route POST /x", "/payments.v1.<Service>/<Method>", "/v1/", "/docs"}},
		{name: "unknown route under /v1", method: http.MethodGet, path: "/v1/nothing", status: http.StatusNotFound, code: connect.CodeNotFound,
			msg: []string{"no route GET /v1/nothing"}},
		{name: "unknown procedure of a service", method: http.MethodPost, path: "/payments.v1.PaymentService/RefundEverything",
			contentType: "application/json", body: "{}", status: http.StatusNotFound, code: connect.CodeNotFound,
			msg: []string{"no route POST /payments.v1.PaymentService/RefundEverything"}},
		{name: "RPC without Content-Type", method: http.MethodPost, path: "/payments.v1.AuthService/Register", body: register,
			status: http.StatusUnsupportedMediaType, code: connect.CodeInvalidArgument,
			msg: []string{"missing Content-Type", "send Content-Type: application/json", "application/proto", "application/grpc"}},
		{name: "RPC with text/plain", method: http.MethodPost, path: "/payments.v1.AccountService/GetMe", contentType: "text/plain",
			authz: u.authz(), body: "{}", status: http.StatusUnsupportedMediaType, code: connect.CodeInvalidArgument,
			msg: []string{`unsupported Content-Type "text/plain"`, "application/json"}},
		{name: "REST route with text/plain", method: http.MethodPost, path: "/v1/auth/login", contentType: "text/plain", body: "{}",
			status: http.StatusUnsupportedMediaType, code: connect.CodeInvalidArgument,
			msg: []string{`unsupported Content-Type "text/plain"`, "send Content-Type: application/json"}},
		{name: "GET of a procedure with side effects", method: http.MethodGet, path: "/payments.v1.AuthService/Register",
			status: http.StatusMethodNotAllowed, code: connect.CodeUnimplemented, msg: []string{"send POST"}, header: [2]string{"Allow", "POST"}},
		{name: "method a REST route does not serve", method: http.MethodPut, path: "/v1/me", contentType: "application/json",
			authz: u.authz(), body: "{}", status: http.StatusMethodNotAllowed, code: connect.CodeUnimplemented, msg: []string{"PUT /v1/me", "GET"}},
		{name: "RPC body over 1 MiB", method: http.MethodPost, path: "/payments.v1.AuthService/Register", contentType: "application/json",
			body: over, status: http.StatusRequestEntityTooLarge, code: connect.CodeResourceExhausted},
		{name: "RPC body over 1 MiB, of unknown length", method: http.MethodPost, path: "/payments.v1.AuthService/Register",
			contentType: "application/json", body: over, chunked: true, status: http.StatusRequestEntityTooLarge, code: connect.CodeResourceExhausted},
		{name: "REST body over 1 MiB", method: http.MethodPost, path: "/v1/auth/register", contentType: "application/json",
			body: over, status: http.StatusRequestEntityTooLarge, code: connect.CodeResourceExhausted},
		{name: "REST body over 1 MiB, of unknown length", method: http.MethodPost, path: "/v1/auth/register", contentType: "application/json",
			body: over, chunked: true, status: http.StatusRequestEntityTooLarge, code: connect.CodeResourceExhausted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot(t)
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body)
			}
			r, err := http.NewRequestWithContext(ctxT(t), tc.method, e.url+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			res, err := e.h1.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s, want %d application/json\n%s", res.StatusCode, res.Header.Get("Content-Type"), tc.status, raw)
			}
			var wire struct {
				Code    connect.Code `json:"code"`
				Message string       `json:"message"`
			}
			if err := json.Unmarshal(raw, &wire); err != nil {
				t.Fatalf("not a Connect JSON error: %v\n%s", err, raw)
			}
			if wire.Code != tc.code {
				t.Errorf("code %v, want %v", wire.Code, tc.code)
			}
			for _, m := range tc.msg {
				if !strings.Contains(wire.Message, m) {
					t.Errorf("message %q does not say %q", wire.Message, m)
				}
			}
			if k := tc.header[0]; k != "" && res.Header.Get(k) != tc.header[1] {
				t.Errorf("%s: %q, want %q", k, res.Header.Get(k), tc.header[1])
			}
			e.unchanged(t, before)
		})
	}
}
