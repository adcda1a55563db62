package api

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/money"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

type accountService struct{ s *Server }

func (h *accountService) GetMe(ctx context.Context, _ *connect.Request[paymentsv1.GetMeRequest]) (*connect.Response[paymentsv1.GetMeResponse], error) {
	acct, err := h.callerAccount(ctx)
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
	if m.NewPassword != nil || m.Email != nil {
		acct, err := h.s.d.Store.AccountByID(ctx, p.AccountID)
		if err != nil {
			return nil, err
		}
		ok, err := h.checkCurrentPassword(ctx, req.Peer().Addr, req.Header(), acct, m.GetCurrentPassword())
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errs.InvalidArgument("current_password", "current_password is incorrect")
		}
		who := h.s.whoOf(ctx, req)
		if m.NewPassword != nil {
			hash, err := h.s.guards.hasher.HashPassword(ctx, m.GetNewPassword())
			if err != nil {
				return nil, hashErr("hash password", err)
			}
			u.PasswordHash = &hash
			u.Records = passwordChanged(who, acct)
		}
		if m.Email != nil {
			emailChange(&u, who, acct, m.GetEmail())
		}
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
	key, err := h.s.d.Store.CreateAPIKey(ctx, p.AccountID, strings.TrimSpace(req.Msg.Name), auth.ShownPrefix(secret), hash, h.s.now(), h.s.whoOf(ctx, req))
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
	key, err := h.s.d.Store.RevokeAPIKey(ctx, p.AccountID, req.Msg.Id, h.s.now(), h.s.whoOf(ctx, req))
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "api key revoked", "account_id", p.AccountID, "api_key_id", key.ID)
	return connect.NewResponse(&paymentsv1.RevokeApiKeyResponse{ApiKey: apiKeyToProto(key)}), nil
}

// ChangePassword checks the current password as a login does (the attempt
// counts against the email's and the address's failed-login limits), sets
// the new one, signs every session of the account out (in the same
// transaction) and starts a fresh one for the caller.
func (h *accountService) ChangePassword(ctx context.Context, req *connect.Request[paymentsv1.ChangePasswordRequest]) (*connect.Response[paymentsv1.ChangePasswordResponse], error) {
	acct, err := h.confirmPassword(ctx, req, req.Msg.CurrentPassword, "current_password is incorrect")
	if err != nil {
		return nil, err
	}
	now := h.s.now()
	hash, err := h.s.guards.hasher.HashPassword(ctx, req.Msg.NewPassword)
	if err != nil {
		return nil, hashErr("hash password", err)
	}
	u := store.AccountUpdate{PasswordHash: &hash, Records: passwordChanged(h.s.whoOf(ctx, req), acct)}
	if acct, err = h.s.d.Store.UpdateAccount(ctx, acct.ID, u, now); err != nil {
		return nil, err
	}
	pair, err := h.s.newSession(ctx, acct, ids.New(ids.Family), h.s.sessionClient(req.Peer().Addr, req.Header()))
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "password changed; every other session signed out", "account_id", acct.ID)
	return connect.NewResponse(&paymentsv1.ChangePasswordResponse{
		AccessToken: pair.access, RefreshToken: pair.refresh,
		AccessTokenExpiresAt: timestamppb.New(pair.accessExpires), RefreshTokenExpiresAt: timestamppb.New(pair.refreshExpires),
	}), nil
}

// callerAccount is the signed-in caller's account.
func (h *accountService) callerAccount(ctx context.Context) (*ent.Account, error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	return h.s.d.Store.AccountByID(ctx, p.AccountID)
}

// confirmPassword is the caller's account once its password is confirmed
// (checkCurrentPassword); a wrong one is unauthenticated with wrong as
// the message.
func (h *accountService) confirmPassword(ctx context.Context, req connect.AnyRequest, password, wrong string) (*ent.Account, error) {
	acct, err := h.callerAccount(ctx)
	if err != nil {
		return nil, err
	}
	ok, err := h.checkCurrentPassword(ctx, req.Peer().Addr, req.Header(), acct, password)
	if err != nil {
		return nil, err
	}
	if !ok {
		h.s.log.WarnContext(ctx, "refused: wrong password", "procedure", req.Spec().Procedure, "account_id", acct.ID)
		return nil, errs.Unauthenticated(wrong)
	}
	return acct, nil
}

// checkCurrentPassword checks a signed-in person's password as Login checks
// one: the attempt is reserved on the email's and the client address's
// failed-login counters first (resource_exhausted while they are blocked),
// a wrong password stays counted, a right one clears the email's failures.
func (h *accountService) checkCurrentPassword(ctx context.Context, peer string, hdr http.Header, acct *ent.Account, password string) (bool, error) {
	res, emailKey, ipKey, err := h.s.reserveLoginAttempt(ctx, h.s.now(), acct.Email, peer, hdr)
	if err != nil {
		return false, err
	}
	ok, err := h.s.guards.hasher.CheckPassword(ctx, password, acct.PasswordHash)
	if err != nil {
		h.s.releaseLoginAttempt(ctx, res, emailKey, ipKey)
		return false, hashErr("check password of "+acct.ID, err)
	}
	if !ok {
		h.s.auditLockout(ctx, h.s.who(ctx, peer, hdr), res, emailKey, ipKey, acct.ID)
		return false, nil
	}
	if err := h.s.d.Store.ResetLoginFailures(ctx, emailKey); err != nil {
		return false, err
	}
	h.s.releaseLoginAttempt(ctx, res, ipKey)
	return true, nil
}

func (h *accountService) ListSessions(ctx context.Context, req *connect.Request[paymentsv1.ListSessionsRequest]) (*connect.Response[paymentsv1.ListSessionsResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	now := h.s.now()
	rts, next, err := listPage(h.s, "sessions", p, req.Msg, store.SessionCursor,
		func(page store.Page) ([]*ent.RefreshToken, error) {
			return h.s.d.Store.ListSessions(ctx, p.AccountID, now, page)
		})
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListSessionsResponse{NextPageToken: next}
	for _, rt := range rts {
		res.Sessions = append(res.Sessions, &paymentsv1.Session{
			Id: rt.FamilyID, UserAgent: rt.UserAgent, ClientIp: rt.ClientIP,
			CreatedAt: timestamppb.New(store.SessionStartedAt(rt)), LastUsedAt: timestamppb.New(rt.CreatedAt),
			ExpiresAt: timestamppb.New(rt.ExpiresAt),
		})
	}
	return connect.NewResponse(res), nil
}

func (h *accountService) RevokeSession(ctx context.Context, req *connect.Request[paymentsv1.RevokeSessionRequest]) (*connect.Response[paymentsv1.RevokeSessionResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	return idempotent(ctx, h.s, paymentsv1connect.AccountServiceRevokeSessionProcedure, p.AccountID, req.Header(), req.Msg,
		func(ctx context.Context, _ idemCall) (*paymentsv1.RevokeSessionResponse, error) {
			if err := h.s.d.Store.RevokeSession(ctx, p.AccountID, req.Msg.Id, h.s.now(), h.s.whoOf(ctx, req)); err != nil {
				return nil, err
			}
			h.s.log.InfoContext(ctx, "session revoked", "account_id", p.AccountID, "session_id", req.Msg.Id)
			return &paymentsv1.RevokeSessionResponse{}, nil
		})
}

// passwordChanged are the records of a password change: its audit row and
// a letter to the owner (who learns of a change they did not make).
func passwordChanged(who store.Audit, acct *ent.Account) store.Records {
	return store.Records{
		Audits:  []store.Audit{who.Of(store.AuditPasswordChanged, acct.ID, nil)},
		Notices: []store.Notice{{Kind: accountnotice.KindPasswordChanged, AccountID: acct.ID, Recipient: acct.Email, At: who.At}},
	}
}

// emailChange adds a change of the login email to u: the new address is
// pending until its verification link is used; the old address is told.
// The current email given again cancels a pending change.
func emailChange(u *store.AccountUpdate, who store.Audit, acct *ent.Account, email string) {
	email = normEmail(email)
	if email == acct.Email {
		none := ""
		u.PendingEmail = &none
		return
	}
	u.PendingEmail = &email
	u.Records.Audits = append(u.Records.Audits, who.Of(store.AuditEmailChangeRequested, acct.ID, nil))
	u.Records.Notices = append(u.Records.Notices,
		store.Notice{Kind: accountnotice.KindVerifyEmail, AccountID: acct.ID, Recipient: email, At: who.At},
		store.Notice{Kind: accountnotice.KindEmailChangeRequested, AccountID: acct.ID, Recipient: acct.Email, At: who.At,
			Data: map[string]string{"new_email": email}})
}
