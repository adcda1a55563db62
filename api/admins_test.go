package api_test

import (
	"strings"
	"testing"

	"connectrpc.com/connect"

	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// An admin makes another admin, who can sign in and act as one; nobody
// else may, and bad requests change nothing.
func TestCreateAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	adm, m, c := e.admin(t), e.merchant(t), e.customer(t)
	email := e.email("second-admin")
	tr := httpJSON
	before := e.snapshot(t)
	for _, u := range []user{m, c} {
		e.call(t, tr, u.authz(), &pb.CreateAdminRequest{Email: email, Password: password}).wantErr(t, want{code: connect.CodePermissionDenied})
	}
	e.call(t, tr, "", &pb.CreateAdminRequest{Email: email, Password: password}).wantErr(t, want{code: connect.CodeUnauthenticated})
	e.call(t, tr, adm.authz(), &pb.CreateAdminRequest{Email: "not an email", Password: password}).wantErr(t, want{code: connect.CodeInvalidArgument, field: "email"})
	e.call(t, tr, adm.authz(), &pb.CreateAdminRequest{Email: email, Password: "short"}).wantErr(t, want{code: connect.CodeInvalidArgument, field: "password"})
	e.call(t, tr, adm.authz(), &pb.CreateAdminRequest{Email: strings.ToUpper(m.email), Password: password}).wantErr(t, want{code: connect.CodeAlreadyExists})
	e.unchanged(t, before)
	key, _ := e.apiKey(t, m, "k")
	e.call(t, tr, bearer(key), &pb.CreateAdminRequest{Email: email, Password: password}).wantErr(t, want{code: connect.CodePermissionDenied})
	res := wantOK[*pb.CreateAdminResponse](t, e.call(t, httpJSON, adm.authz(), &pb.CreateAdminRequest{Email: email, Password: password, DisplayName: " Ops "}))
	if res.GetAccount().GetRole() != pb.Role_ROLE_ADMIN || res.GetAccount().GetEmail() != email || res.GetAccount().GetDisplayName() != "Ops" {
		t.Fatalf("created %v", res.GetAccount())
	}
	second := e.login(t, email, password)
	wantOK[*pb.ListReconciliationCasesResponse](t, e.call(t, httpJSON, second.authz(), &pb.ListReconciliationCasesRequest{}))
	wantOK[*pb.CreateAdminResponse](t, e.call(t, httpJSON, second.authz(), &pb.CreateAdminRequest{Email: e.email("third-admin"), Password: password}))
}
