package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// secret is what a failing dependency might put in its error: it must reach
// the logs and never a caller.
const secret = "root:hunter2@tcp(10.9.8.7:3306)"

var errSecret = errors.New("dial " + secret + ": connection refused")

func (e *env) get(t *testing.T, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, body
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// TestHealth: /healthz is liveness only; /readyz and the gRPC health Check
// follow the readiness checks and name the failing one without its error.
func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withChecks("database", "temporal"))
	checkers := map[string]*grpchealth.Client{
		"grpc":          grpchealth.NewClient(e.h2c, e.url, connect.WithGRPC()),
		"connect+proto": grpchealth.NewClient(e.h2c, e.url),
		"connect+json":  grpchealth.NewClient(e.h1, e.url, connect.WithProtoJSON()),
	}
	tests := []struct {
		name     string
		failing  string
		status   int
		body     readiness
		grpcWant grpchealth.Status
	}{
		{"all checks pass", "", http.StatusOK,
			readiness{"ok", map[string]string{"database": "ok", "temporal": "ok"}}, grpchealth.StatusServing},
		{"temporal fails", "temporal", http.StatusServiceUnavailable,
			readiness{"unavailable", map[string]string{"database": "ok", "temporal": "unavailable"}}, grpchealth.StatusNotServing},
		{"database fails", "database", http.StatusServiceUnavailable,
			readiness{"unavailable", map[string]string{"database": "unavailable", "temporal": "ok"}}, grpchealth.StatusNotServing},
		{"recovered", "", http.StatusOK,
			readiness{"ok", map[string]string{"database": "ok", "temporal": "ok"}}, grpchealth.StatusServing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for name := range e.checks {
				var err error
				if name == tc.failing {
					err = errSecret
				}
				e.setCheck(t, name, err)
			}
			status, hdr, raw := e.get(t, "/readyz")
			var got readiness
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("/readyz body: %v\n%s", err, raw)
			}
			if status != tc.status || got.Status != tc.body.Status || len(got.Checks) != len(tc.body.Checks) {
				t.Errorf("/readyz = %d %s, want %d %+v", status, raw, tc.status, tc.body)
			}
			for k, v := range tc.body.Checks {
				if got.Checks[k] != v {
					t.Errorf("/readyz check %s = %q, want %q", k, got.Checks[k], v)
				}
			}
			if strings.Contains(string(raw), "hunter2") || hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("/readyz leaks the error or is cacheable: %s (Cache-Control %q)", raw, hdr.Get("Cache-Control"))
			}
			for name, c := range checkers {
				res, err := c.Check(ctxT(t), &grpchealth.CheckRequest{})
				if err != nil {
					t.Fatalf("%s health Check: %v", name, err)
				}
				if res.Status != tc.grpcWant {
					t.Errorf("%s health Check = %v, want %v", name, res.Status, tc.grpcWant)
				}
			}
			// Liveness does not depend on the checks.
			if status, _, raw := e.get(t, "/healthz"); status != http.StatusOK || strings.TrimSpace(string(raw)) != `{"status":"ok"}` {
				t.Errorf("/healthz = %d %s", status, raw)
			}
		})
	}
	if !strings.Contains(e.logs.String(), "hunter2") {
		t.Error("the failing check's error was not logged for operators")
	}
}

// TestReadyzWithoutChecks: no checks means ready.
func TestReadyzWithoutChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if status, _, raw := e.get(t, "/readyz"); status != http.StatusOK || !strings.Contains(string(raw), `"status":"ok"`) {
		t.Errorf("/readyz = %d %s", status, raw)
	}
}

// TestInternalErrorsDoNotLeak: a store failure is answered as internal with
// the message "internal error" on every transport; the cause reaches only
// the logs.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.merchant(t)
	key, _ := e.apiKey(t, m, "shop")

	// Faults are switched on per entity; requests run only while one is on.
	var failAccounts, failKeys, failCreate atomic.Bool
	e.st.Client.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			switch q.(type) {
			case *ent.AccountQuery:
				if failAccounts.Load() {
					return nil, errSecret
				}
			case *ent.APIKeyQuery:
				if failKeys.Load() {
					return nil, errSecret
				}
			}
			return next.Query(ctx, q)
		})
	}))
	e.st.Client.Account.Use(func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, mu ent.Mutation) (ent.Value, error) {
			if failCreate.Load() && mu.Op().Is(ent.OpCreate) {
				return nil, errSecret
			}
			return next.Mutate(ctx, mu)
		})
	})

	tests := []struct {
		name  string
		fault *atomic.Bool
		authz string
		req   proto.Message
	}{
		{"GetMe reading the account", &failAccounts, m.authz(), &pb.GetMeRequest{}},
		{"Login reading the account", &failAccounts, "", &pb.LoginRequest{Email: m.email, Password: password}},
		{"UpdateMe reading the account", &failAccounts, m.authz(), &pb.UpdateMeRequest{NewPassword: new("another good password"), CurrentPassword: new(password)}},
		{"Register creating the account", &failCreate, "", &pb.RegisterRequest{Email: "leak@example.com", Password: password, Role: pb.Role_ROLE_CUSTOMER}},
		{"API key lookup", &failKeys, bearer(key), &pb.GetMeRequest{}},
		{"ListApiKeys", &failKeys, m.authz(), &pb.ListApiKeysRequest{}},
	}
	var requestIDs []string
	for _, tc := range tests {
		for _, tr := range allTransports {
			t.Run(tc.name+"/"+string(tr), func(t *testing.T) {
				before := e.snapshot(t)
				tc.fault.Store(true)
				r := e.call(t, tr, tc.authz, tc.req)
				tc.fault.Store(false)
				r.wantErr(t, want{code: connect.CodeInternal, exactMsg: "internal error"})
				requestIDs = append(requestIDs, r.header.Get(api.RequestIDHeader))
				for k, vs := range r.header {
					for _, v := range vs {
						if strings.Contains(v, "hunter2") {
							t.Errorf("header %s leaks the cause: %q", k, v)
						}
					}
				}
				if strings.Contains(string(r.body), "hunter2") || len(r.detailTypes) != 0 {
					t.Errorf("answer leaks the cause: %s (details %v)", r.body, r.detailTypes)
				}
				e.unchanged(t, before)
			})
		}
	}
	if logs := e.logs.String(); !strings.Contains(logs, "internal error") || !strings.Contains(logs, "hunter2") {
		t.Errorf("the causes were not logged for operators:\n%s", logs)
	}
	// Each failure's log line names the request id its answer carried, so
	// a support question finds it.
	for _, id := range requestIDs {
		if id == "" || !strings.Contains(e.logs.String(), id) {
			t.Errorf("request id %q is not in the logs", id)
		}
	}
	// With the faults off, everything works again.
	wantOK[*pb.GetMeResponse](t, e.me(t, httpJSON, bearer(key)))
}
