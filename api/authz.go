package api

import (
	"maps"
	"slices"

	c "github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// Role names as stored and as carried in access tokens.
const (
	roleMerchant = "merchant"
	roleCustomer = "customer"
	roleAdmin    = "admin"
)

// policy says who may call a procedure.
type policy struct {
	// open procedures need no credentials at all.
	open bool
	// roles that may call; empty means every signed-in role.
	roles []string
	// userOnly refuses merchant API keys: what a leaked key must never do
	// (mint more keys, revoke them, change the password) needs a person.
	userOnly bool
}

func (p policy) allows(role string) bool {
	if len(p.roles) == 0 {
		return true
	}
	for _, r := range p.roles {
		if r == role {
			return true
		}
	}
	return false
}

var (
	anyone      = policy{}
	merchants   = policy{roles: []string{roleMerchant}}
	parties     = policy{roles: []string{roleMerchant, roleCustomer}}
	merchantsOp = policy{roles: []string{roleMerchant, roleAdmin}}
	admins      = policy{roles: []string{roleAdmin}}
)

// policies is the single table of who may call what. A test checks that every
// procedure of every service has an entry, so a new RPC cannot be forgotten:
// a procedure missing here is refused for everyone.
var policies = map[string]policy{
	c.AuthServiceRegisterProcedure:     {open: true},
	c.AuthServiceLoginProcedure:        {open: true},
	c.AuthServiceRefreshTokenProcedure: {open: true},
	c.AuthServiceLogoutProcedure:       {userOnly: true},
	// Mailed links: the token is the credential.
	c.AuthServiceVerifyEmailProcedure:          {open: true},
	c.AuthServiceRequestPasswordResetProcedure: {open: true},
	c.AuthServiceResetPasswordProcedure:        {open: true},

	c.AccountServiceGetMeProcedure:              anyone,
	c.AccountServiceUpdateMeProcedure:           {userOnly: true},
	c.AccountServiceCreateApiKeyProcedure:       {roles: []string{roleMerchant}, userOnly: true},
	c.AccountServiceListApiKeysProcedure:        merchants,
	c.AccountServiceRevokeApiKeyProcedure:       {roles: []string{roleMerchant}, userOnly: true},
	c.AccountServiceChangePasswordProcedure:     {userOnly: true},
	c.AccountServiceListSessionsProcedure:       {userOnly: true},
	c.AccountServiceRevokeSessionProcedure:      {userOnly: true},
	c.AccountServiceResendVerificationProcedure: {userOnly: true},
	c.AccountServiceCloseAccountProcedure:       {userOnly: true},

	c.PaymentServiceCreatePaymentProcedure:  parties,
	c.PaymentServiceGetPaymentProcedure:     anyone,
	c.PaymentServiceListPaymentsProcedure:   anyone,
	c.PaymentServiceCapturePaymentProcedure: merchantsOp,
	c.PaymentServiceCancelPaymentProcedure:  anyone,

	c.RefundServiceCreateRefundProcedure: merchantsOp,
	c.RefundServiceGetRefundProcedure:    anyone,
	c.RefundServiceListRefundsProcedure:  anyone,

	c.DisputeServiceOpenDisputeProcedure:     parties,
	c.DisputeServiceGetDisputeProcedure:      anyone,
	c.DisputeServiceListDisputesProcedure:    anyone,
	c.DisputeServiceSubmitEvidenceProcedure:  parties,
	c.DisputeServiceAcceptDisputeProcedure:   merchants,
	c.DisputeServiceWithdrawDisputeProcedure: parties,
	c.DisputeServiceResolveDisputeProcedure:  admins,

	c.TransactionServiceListTransactionsProcedure: anyone,
	c.TransactionServiceGetTransactionProcedure:   anyone,

	c.WebhookServiceCreateWebhookEndpointProcedure: merchantsOp,
	c.WebhookServiceGetWebhookEndpointProcedure:    merchantsOp,
	c.WebhookServiceListWebhookEndpointsProcedure:  merchantsOp,
	c.WebhookServiceUpdateWebhookEndpointProcedure: merchantsOp,
	c.WebhookServiceDeleteWebhookEndpointProcedure: merchantsOp,
	c.WebhookServiceRotateWebhookSecretProcedure:   merchantsOp,
	c.WebhookServiceListEventsProcedure:            merchantsOp,
	c.WebhookServiceGetEventProcedure:              merchantsOp,
	c.WebhookServiceListDeliveriesProcedure:        merchantsOp,
	c.WebhookServiceRedeliverEventProcedure:        merchantsOp,

	c.AdminServiceListReconciliationCasesProcedure:   {roles: []string{roleAdmin}, userOnly: true},
	c.AdminServiceResolveReconciliationCaseProcedure: {roles: []string{roleAdmin}, userOnly: true},
	c.AdminServiceCreateAdminProcedure:               {roles: []string{roleAdmin}, userOnly: true},
	c.AdminServiceListAccountsProcedure:              {roles: []string{roleAdmin}, userOnly: true},
	c.AdminServiceGetAccountProcedure:                {roles: []string{roleAdmin}, userOnly: true},
	c.AdminServiceSuspendAccountProcedure:            {roles: []string{roleAdmin}, userOnly: true},
	c.AdminServiceReactivateAccountProcedure:         {roles: []string{roleAdmin}, userOnly: true},
	c.AdminServiceListAuditEventsProcedure:           {roles: []string{roleAdmin}, userOnly: true},
}

// ProcedureAccess is who may call a procedure and how, as the OpenAPI
// document tells integrators (cmd/openapi-gen).
type ProcedureAccess struct {
	// Procedure is the path, /payments.v1.<Service>/<Method>.
	Procedure string
	// Open procedures need no credentials.
	Open bool
	// Roles may call it ("merchant", "customer", "admin"); every signed-in
	// role when empty.
	Roles []string
	// UserOnly procedures refuse API keys.
	UserOnly bool
	// Idempotent procedures honour an Idempotency-Key header.
	Idempotent bool
}

// Access is every procedure's entry of the role table, by procedure.
func Access() []ProcedureAccess {
	out := make([]ProcedureAccess, 0, len(policies))
	for _, proc := range slices.Sorted(maps.Keys(policies)) {
		p := policies[proc]
		out = append(out, ProcedureAccess{Procedure: proc, Open: p.open, Roles: slices.Clone(p.roles),
			UserOnly: p.userOnly, Idempotent: idempotentProcedures[proc]})
	}
	return out
}
