package api

import (
	"context"
	"slices"
	"strings"

	"connectrpc.com/connect"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/money"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
)

type accountService struct{ s *Server }

func (h *accountService) GetMe(ctx context.Context, _ *connect.Request[paymentsv1.GetMeRequest]) (*connect.Response[paymentsv1.GetMeResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	acct, err := h.s.d.Store.AccountByID(ctx, p.AccountID)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.GetMeResponse{Account: accountToProto(acct)}), nil
}

func (h *accountService) UpdateMe(ctx context.Context, req *connect.Request[paymentsv1.UpdateMeRequest]) (*connect.Response[paymentsv1.UpdateMeResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	var u store.AccountUpdate
	if m.DisplayName != nil {
		v := strings.TrimSpace(m.GetDisplayName())
		u.DisplayName = &v
	}
	if m.BusinessName != nil {
		v := strings.TrimSpace(m.GetBusinessName())
		u.BusinessName = &v
	}
	if m.DefaultCurrency != nil {
		cur, err := money.Normalize("default_currency", m.GetDefaultCurrency())
		if err != nil {
			return nil, err
		}
		u.DefaultCurrency = &cur.Code
	}
	if m.EmailPreferences != nil {
		off := slices.Clone(m.EmailPreferences.GetDisabledCategories())
		slices.Sort(off)
		if off == nil {
			off = []string{}
		}
		u.EmailOptOut = &off
	}
	if m.NewPassword != nil {
		acct, err := h.s.d.Store.AccountByID(ctx, p.AccountID)
		if err != nil {
			return nil, err
		}
		ok, err := h.s.guards.hasher.CheckPassword(ctx, m.GetCurrentPassword(), acct.PasswordHash)
		if err != nil {
			return nil, hashErr("check password of "+acct.ID, err)
		}
		if !ok {
			return nil, errs.InvalidArgument("current_password", "current_password is incorrect")
		}
		hash, err := h.s.guards.hasher.HashPassword(ctx, m.GetNewPassword())
		if err != nil {
			return nil, hashErr("hash password", err)
		}
		u.PasswordHash = &hash
	}
	acct, err := h.s.d.Store.UpdateAccount(ctx, p.AccountID, u, h.s.now())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.UpdateMeResponse{Account: accountToProto(acct)}), nil
}

func (h *accountService) CreateApiKey(ctx context.Context, req *connect.Request[paymentsv1.CreateApiKeyRequest]) (*connect.Response[paymentsv1.CreateApiKeyResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	secret, hash, err := auth.NewSecret(auth.APIKeyPrefix)
	if err != nil {
		return nil, err
	}
	key, err := h.s.d.Store.CreateAPIKey(ctx, p.AccountID, strings.TrimSpace(req.Msg.Name), auth.ShownPrefix(secret), hash, h.s.now())
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "api key created", "account_id", p.AccountID, "api_key_id", key.ID)
	return connect.NewResponse(&paymentsv1.CreateApiKeyResponse{ApiKey: apiKeyToProto(key), Secret: secret}), nil
}

func (h *accountService) ListApiKeys(ctx context.Context, req *connect.Request[paymentsv1.ListApiKeysRequest]) (*connect.Response[paymentsv1.ListApiKeysResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	keys, next, err := listPage(h.s, "api_keys", p, req.Msg, store.APIKeyCursor,
		func(page store.Page) ([]*ent.APIKey, error) { return h.s.d.Store.ListAPIKeys(ctx, p.AccountID, page) })
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListApiKeysResponse{NextPageToken: next}
	for _, k := range keys {
		res.ApiKeys = append(res.ApiKeys, apiKeyToProto(k))
	}
	return connect.NewResponse(res), nil
}

func (h *accountService) RevokeApiKey(ctx context.Context, req *connect.Request[paymentsv1.RevokeApiKeyRequest]) (*connect.Response[paymentsv1.RevokeApiKeyResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	key, err := h.s.d.Store.RevokeAPIKey(ctx, p.AccountID, req.Msg.Id, h.s.now())
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "api key revoked", "account_id", p.AccountID, "api_key_id", key.ID)
	return connect.NewResponse(&paymentsv1.RevokeApiKeyResponse{ApiKey: apiKeyToProto(key)}), nil
}
