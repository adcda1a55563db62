package api

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	pb "github.com/payments-platform/payments/proto/payments/v1"
	c "github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// TestPoliciesCoverEveryProcedure: every method of every service of
// payments.v1 has exactly one entry in the role table, the table has no
// entry for a method that does not exist, and the open procedures are
// exactly Register, Login and RefreshToken.
func TestPoliciesCoverEveryProcedure(t *testing.T) {
	// The generated files of the package; all register on import.
	files := []protoreflect.FileDescriptor{
		pb.File_payments_v1_auth_proto,
		pb.File_payments_v1_account_proto,
		pb.File_payments_v1_payment_proto,
		pb.File_payments_v1_refund_proto,
		pb.File_payments_v1_dispute_proto,
		pb.File_payments_v1_transaction_proto,
		pb.File_payments_v1_webhook_proto,
		pb.File_payments_v1_common_proto,
		pb.File_payments_v1_admin_proto,
	}
	registered := map[string]bool{}
	procedures := map[string]bool{}
	var services []string
	protoregistry.GlobalFiles.RangeFilesByPackage("payments.v1", func(fd protoreflect.FileDescriptor) bool {
		registered[fd.Path()] = true
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			services = append(services, string(sd.FullName()))
			for j := range sd.Methods().Len() {
				proc := "/" + string(sd.FullName()) + "/" + string(sd.Methods().Get(j).Name())
				if procedures[proc] {
					t.Errorf("procedure %s found twice", proc)
				}
				procedures[proc] = true
				if _, ok := policies[proc]; !ok {
					t.Errorf("procedure %s has no entry in policies: it is refused for everyone", proc)
				}
			}
		}
		return true
	})
	for _, fd := range files {
		if !registered[fd.Path()] {
			t.Errorf("generated file %s is not in the registry's payments.v1 package", fd.Path())
		}
	}
	slices.Sort(services)
	wantServices := []string{
		"payments.v1.AccountService", "payments.v1.AdminService", "payments.v1.AuthService", "payments.v1.DisputeService",
		"payments.v1.PaymentService", "payments.v1.RefundService", "payments.v1.TransactionService",
		"payments.v1.WebhookService",
	}
	if !slices.Equal(services, wantServices) {
		t.Errorf("services = %v, want %v", services, wantServices)
	}
	if len(procedures) != len(policies) {
		t.Errorf("%d procedures, %d policies", len(procedures), len(policies))
	}

	var open []string
	for proc, p := range policies {
		if !procedures[proc] {
			t.Errorf("policies has an entry for %s, which is no procedure of payments.v1", proc)
		}
		if p.open {
			open = append(open, proc)
			if len(p.roles) != 0 || p.userOnly {
				t.Errorf("open procedure %s also names roles %v / userOnly %v", proc, p.roles, p.userOnly)
			}
		}
		for _, r := range p.roles {
			if r != roleMerchant && r != roleCustomer && r != roleAdmin {
				t.Errorf("policy of %s names unknown role %q", proc, r)
			}
		}
	}
	slices.Sort(open)
	wantOpen := []string{c.AuthServiceLoginProcedure, c.AuthServiceRefreshTokenProcedure, c.AuthServiceRegisterProcedure,
		c.AuthServiceVerifyEmailProcedure, c.AuthServiceRequestPasswordResetProcedure, c.AuthServiceResetPasswordProcedure}
	slices.Sort(wantOpen)
	if !slices.Equal(open, wantOpen) {
		t.Errorf("open procedures = %v, want exactly %v", open, wantOpen)
	}
}

// TestPolicyDecisions spells out the table for the implemented services and
// the examples of the contract, so a change to it is a visible decision.
func TestPolicyDecisions(t *testing.T) {
	type who struct{ merchant, customer, admin, apiKey bool }
	tests := []struct {
		proc string
		want who
	}{
		{c.AuthServiceLogoutProcedure, who{true, true, true, false}},
		{c.AccountServiceGetMeProcedure, who{true, true, true, true}},
		{c.AccountServiceUpdateMeProcedure, who{true, true, true, false}},
		{c.AccountServiceCreateApiKeyProcedure, who{true, false, false, false}},
		{c.AccountServiceListApiKeysProcedure, who{true, false, false, true}},
		{c.AccountServiceRevokeApiKeyProcedure, who{true, false, false, false}},
		{c.PaymentServiceCapturePaymentProcedure, who{true, false, true, true}},
		{c.PaymentServiceCreatePaymentProcedure, who{true, true, false, true}},
		{c.RefundServiceCreateRefundProcedure, who{true, false, true, true}},
		{c.DisputeServiceResolveDisputeProcedure, who{false, false, true, false}},
	}
	for _, tc := range tests {
		p, ok := policies[tc.proc]
		if !ok {
			t.Errorf("%s: no policy", tc.proc)
			continue
		}
		got := who{
			merchant: p.allows(roleMerchant),
			customer: p.allows(roleCustomer),
			admin:    p.allows(roleAdmin),
			apiKey:   p.allows(roleMerchant) && !p.userOnly,
		}
		if got != tc.want || p.open {
			t.Errorf("%s: allows %+v (open %v), want %+v", tc.proc, got, p.open, tc.want)
		}
	}
}
