package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/money"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
)

type authService struct{ s *Server }

// badLogin is one message for a wrong password and an unknown email, so the
// answer never tells whether an email has an account.
const badLogin = "invalid email or password"

func (h *authService) Register(ctx context.Context, req *connect.Request[paymentsv1.RegisterRequest]) (*connect.Response[paymentsv1.RegisterResponse], error) {
	m := req.Msg
	role, ok := roleFromProto[m.Role]
	if !ok {
		return nil, errs.InvalidArgument("role", "role must be ROLE_MERCHANT or ROLE_CUSTOMER")
	}
	currency := "USD"
	if m.DefaultCurrency != "" {
		cur, err := money.Normalize("default_currency", m.DefaultCurrency)
		if err != nil {
			return nil, err
		}
		currency = cur.Code
	}
	hash, err := auth.HashPassword(m.Password, h.s.d.PasswordParams)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	acct, err := h.s.d.Store.CreateAccount(ctx, store.NewAccount{
		Email:           strings.TrimSpace(m.Email),
		PasswordHash:    hash,
		Role:            role,
		DisplayName:     strings.TrimSpace(m.DisplayName),
		BusinessName:    strings.TrimSpace(m.BusinessName),
		DefaultCurrency: currency,
	})
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "account registered", "account_id", acct.ID, "role", role)
	return connect.NewResponse(&paymentsv1.RegisterResponse{Account: accountToProto(acct)}), nil
}

// throttleKey identifies an email in the throttle table without storing it.
func throttleKey(email string) string {
	sum := sha256.Sum256([]byte("login:" + strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

func (h *authService) Login(ctx context.Context, req *connect.Request[paymentsv1.LoginRequest]) (*connect.Response[paymentsv1.LoginResponse], error) {
	now := h.s.now()
	key := throttleKey(req.Msg.Email)
	blockedUntil, err := h.s.d.Store.LoginBlockedUntil(ctx, key, now)
	if err != nil {
		return nil, err
	}
	if !blockedUntil.IsZero() && now.Before(blockedUntil) {
		return nil, throttled(blockedUntil.Sub(now))
	}
	acct, err := h.s.d.Store.AccountByEmail(ctx, req.Msg.Email)
	switch {
	case errors.Is(err, errs.ErrNotFound):
		// Spend the time of a real check so timing does not reveal the email is unknown.
		_, _ = auth.CheckPassword(req.Msg.Password, h.s.dummyHash)
		return nil, h.loginFailed(ctx, key, now)
	case err != nil:
		return nil, err
	}
	ok, err := auth.CheckPassword(req.Msg.Password, acct.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("check password of %s: %w", acct.ID, err)
	}
	if !ok {
		return nil, h.loginFailed(ctx, key, now)
	}
	if acct.Status != account.StatusActive {
		return nil, errs.Unauthenticated("this account is disabled")
	}
	if err := h.s.d.Store.ResetLoginFailures(ctx, key); err != nil {
		return nil, err
	}
	pair, err := h.s.newSession(ctx, acct, ids.New(ids.Family))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.LoginResponse{
		AccessToken:           pair.access,
		RefreshToken:          pair.refresh,
		AccessTokenExpiresAt:  timestamppb.New(pair.accessExpires),
		RefreshTokenExpiresAt: timestamppb.New(pair.refreshExpires),
		Account:               accountToProto(acct),
	}), nil
}

func (h *authService) loginFailed(ctx context.Context, key string, now time.Time) error {
	if _, err := h.s.d.Store.RecordLoginFailure(ctx, key, now, h.s.d.LoginThrottle); err != nil {
		return err
	}
	return errs.Unauthenticated(badLogin)
}

// throttled is resource_exhausted with the wait, rounded up to a second.
func throttled(wait time.Duration) error {
	secs := int(math.Ceil(wait.Seconds()))
	return errs.ResourceExhausted(fmt.Sprintf("too many failed logins for this email; try again in %d s", secs))
}

type tokenPair struct {
	access, refresh               string
	accessExpires, refreshExpires time.Time
}

// newSession issues an access token and the first refresh token of a family.
func (s *Server) newSession(ctx context.Context, acct *ent.Account, family string) (tokenPair, error) {
	now := s.now()
	access, accessExp, err := s.d.Tokens.Issue(acct.ID, string(acct.Role))
	if err != nil {
		return tokenPair{}, fmt.Errorf("issue access token: %w", err)
	}
	refresh, hash, err := auth.NewSecret(auth.RefreshTokenPrefix)
	if err != nil {
		return tokenPair{}, err
	}
	refreshExp := now.Add(s.d.RefreshTokenTTL)
	if _, err := s.d.Store.CreateRefreshToken(ctx, acct.ID, family, hash, refreshExp, now); err != nil {
		return tokenPair{}, err
	}
	return tokenPair{access: access, refresh: refresh, accessExpires: accessExp, refreshExpires: refreshExp}, nil
}

func (h *authService) RefreshToken(ctx context.Context, req *connect.Request[paymentsv1.RefreshTokenRequest]) (*connect.Response[paymentsv1.RefreshTokenResponse], error) {
	now := h.s.now()
	next, nextHash, err := auth.NewSecret(auth.RefreshTokenPrefix)
	if err != nil {
		return nil, err
	}
	refreshExp := now.Add(h.s.d.RefreshTokenTTL)
	_, acct, err := h.s.d.Store.RotateRefreshToken(ctx, auth.HashSecret(req.Msg.RefreshToken), nextHash, refreshExp, now)
	if err != nil {
		if errs.KindOf(err) == errs.KindUnauthenticated {
			h.s.log.WarnContext(ctx, "refresh token refused", "reason", err.Error())
		}
		return nil, err
	}
	access, accessExp, err := h.s.d.Tokens.Issue(acct.ID, string(acct.Role))
	if err != nil {
		return nil, fmt.Errorf("issue access token: %w", err)
	}
	return connect.NewResponse(&paymentsv1.RefreshTokenResponse{
		AccessToken:           access,
		RefreshToken:          next,
		AccessTokenExpiresAt:  timestamppb.New(accessExp),
		RefreshTokenExpiresAt: timestamppb.New(refreshExp),
		Account:               accountToProto(acct),
	}), nil
}

func (h *authService) Logout(ctx context.Context, req *connect.Request[paymentsv1.LogoutRequest]) (*connect.Response[paymentsv1.LogoutResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if req.Msg.RefreshToken == "" {
		err = h.s.d.Store.RevokeAllRefreshTokens(ctx, p.AccountID, h.s.now())
	} else {
		err = h.s.d.Store.RevokeRefreshFamily(ctx, p.AccountID, auth.HashSecret(req.Msg.RefreshToken), h.s.now())
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.LogoutResponse{}), nil
}
