package api_test

import (
	"bytes"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// TestCredentialsAreCheckedBeforeTheBody shows that an anonymous caller gets
// unauthenticated whatever it sends: no unknown-field, type or size errors
// that would reveal request shapes or limits.
func TestCredentialsAreCheckedBeforeTheBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	md := methods[(&pb.CreatePaymentRequest{}).ProtoReflect().Descriptor().FullName()]
	huge := bytes.Repeat([]byte("a"), 2<<20)
	cases := map[string][]byte{
		"unknown field": []byte(`{"cardNumber":"x"}`),
		"wrong type":    []byte(`{"amount":{}}`),
		"malformed":     []byte(`{`),
		"over 1 MiB":    append(append([]byte(`{"description":"`), huge...), '"', '}'),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.rawCall(t, md, "application/json", body, nil)
			r.wantErr(t, want{code: connect.CodeUnauthenticated})
			r = e.rawCall(t, md, "application/json", body, http.Header{"Authorization": {"Bearer not-a-token"}})
			r.wantErr(t, want{code: connect.CodeUnauthenticated})
		})
	}
}
