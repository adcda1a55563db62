package api

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
)

var roleToProto = map[account.Role]paymentsv1.Role{
	account.RoleMerchant: paymentsv1.Role_ROLE_MERCHANT,
	account.RoleCustomer: paymentsv1.Role_ROLE_CUSTOMER,
	account.RoleAdmin:    paymentsv1.Role_ROLE_ADMIN,
}

var roleFromProto = map[paymentsv1.Role]account.Role{
	paymentsv1.Role_ROLE_MERCHANT: account.RoleMerchant,
	paymentsv1.Role_ROLE_CUSTOMER: account.RoleCustomer,
}

func accountToProto(a *ent.Account) *paymentsv1.Account {
	status := paymentsv1.AccountStatus_ACCOUNT_STATUS_ACTIVE
	email := a.Email
	switch a.Status {
	case account.StatusDisabled:
		status = paymentsv1.AccountStatus_ACCOUNT_STATUS_DISABLED
	case account.StatusClosed:
		status = paymentsv1.AccountStatus_ACCOUNT_STATUS_CLOSED
		// The address it had until it is anonymized; the placeholder after.
		if a.ClosedEmail != "" {
			email = a.ClosedEmail
		}
	}
	return &paymentsv1.Account{
		Id:              a.ID,
		Email:           email,
		Role:            roleToProto[a.Role],
		DisplayName:     a.DisplayName,
		BusinessName:    a.BusinessName,
		DefaultCurrency: a.DefaultCurrency,
		Status:          status,
		CreatedAt:       timestamppb.New(a.CreatedAt),
		UpdatedAt:       timestamppb.New(a.UpdatedAt),
		EmailPreferences: &paymentsv1.EmailPreferences{
			DisabledCategories: a.EmailOptOut,
		},
		SuspensionReason: a.SuspensionReason,
		EmailVerified:    a.EmailVerified,
		PendingEmail:     a.PendingEmail,
		ClosedAt:         optTime(a.ClosedAt),
	}
}

func apiKeyToProto(k *ent.APIKey) *paymentsv1.ApiKey {
	return &paymentsv1.ApiKey{
		Id:         k.ID,
		Name:       k.Name,
		Prefix:     k.Prefix,
		CreatedAt:  timestamppb.New(k.CreatedAt),
		LastUsedAt: optTime(k.LastUsedAt),
		RevokedAt:  optTime(k.RevokedAt),
	}
}

func optTime(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}
