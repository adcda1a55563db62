package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/money"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
)

type authService struct{ s *Server }

// releaseTimeout bounds giving back a login attempt after the request
// itself may have ended.
const releaseTimeout = 5 * time.Second

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
	hash, err := h.s.guards.hasher.HashPassword(ctx, m.Password)
	if err != nil {
		return nil, hashErr("hash password", err)
	}
	acct, err := h.s.d.Store.CreateAccount(ctx, store.NewAccount{
		Email:           strings.TrimSpace(m.Email),
		PasswordHash:    hash,
		Role:            role,
		DisplayName:     strings.TrimSpace(m.DisplayName),
		BusinessName:    strings.TrimSpace(m.BusinessName),
		DefaultCurrency: currency,
		Records: store.Records{
			Audits:  []store.Audit{h.s.whoOf(ctx, req).Of(store.AuditRegistered, "", map[string]string{"role": string(role)})},
			Notices: []store.Notice{{Kind: accountnotice.KindVerifyEmail, Recipient: strings.TrimSpace(m.Email), At: h.s.now()}},
		},
	})
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "account registered", "account_id", acct.ID, "role", role)
	return connect.NewResponse(&paymentsv1.RegisterResponse{Account: accountToProto(acct)}), nil
}

// authGuards are the defences of authentication that keep state across
// requests: the cap on password hashing, the cache of account statuses
// behind access tokens and the per-address login limit.
type authGuards struct {
	hasher passwordHasher
	status *accountStatusCache
	// ipThrottle limits failed logins per client address, across emails.
	ipThrottle store.ThrottlePolicy
}

// passwordHasher is what the handlers need of auth.Hasher: every password
// hash and check goes through it, within its cap. Tests wrap it to count.
type passwordHasher interface {
	HashPassword(ctx context.Context, password string) (string, error)
	CheckPassword(ctx context.Context, password, hash string) (bool, error)
}

func newAuthGuards(d Deps) *authGuards {
	return &authGuards{
		hasher: auth.NewHasher(d.PasswordParams, d.PasswordHashConcurrency, auth.DefaultHashWait),
		status: newAccountStatusCache(accountStatusTTL, accountStatusEntries, d.Now, func(ctx context.Context, id string) (bool, error) {
			acct, err := d.Store.AccountByID(ctx, id)
			switch {
			case errors.Is(err, errs.ErrNotFound):
				return false, nil
			case err != nil:
				return false, err
			}
			return acct.Status == account.StatusActive, nil
		}),
		ipThrottle: store.DefaultIPThrottlePolicy,
	}
}

// hashErr passes the hasher's busy refusal and the caller's cancellation on
// as they are and makes anything else an internal error about what.
func hashErr(what string, err error) error {
	if errors.Is(err, auth.ErrBusy) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Login counts every attempt before it checks the password: the attempt is
// reserved on the email's counter and on the client address's counter in
// one locked transaction (store.ReserveLoginAttempt), so that of any number
// of concurrent guesses no more than the allowance is evaluated, and the
// rest are refused unseen. A success forgets the email's failures and gives
// back only its own attempt on the address's counter, so a sprayer cannot
// clear that counter by logging into an account of their own.
func (h *authService) Login(ctx context.Context, req *connect.Request[paymentsv1.LoginRequest]) (*connect.Response[paymentsv1.LoginResponse], error) {
	now := h.s.now()
	res, emailKey, ipKey, err := h.s.reserveLoginAttempt(ctx, now, req.Msg.Email, req.Peer().Addr, req.Header())
	if err != nil {
		return nil, err
	}
	acct, ok, err := h.checkLogin(ctx, req.Msg.Email, req.Msg.Password)
	if err != nil {
		// The password was never checked (the hasher was busy, the
		// account could not be read): give the attempt back.
		h.s.releaseLoginAttempt(ctx, res, emailKey, ipKey)
		return nil, err
	}
	if !ok {
		// The reserved attempt stays counted: it was a failure.
		target := ""
		if acct != nil {
			target = acct.ID
		}
		h.s.auditLockout(ctx, h.s.whoOf(ctx, req), res, emailKey, ipKey, target)
		return nil, errs.Unauthenticated(badLogin)
	}
	if acct.Status != account.StatusActive {
		return nil, errs.Unauthenticated("this account is disabled")
	}
	if err := h.s.d.Store.ResetLoginFailures(ctx, emailKey); err != nil {
		return nil, err
	}
	h.s.releaseLoginAttempt(ctx, res, ipKey)
	pair, err := h.s.newSession(ctx, acct, ids.New(ids.Family), h.s.sessionClient(req.Peer().Addr, req.Header()))
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

// reserveLoginAttempt counts a password check before it happens, on the
// email's failed-login counter and on the client address's, in one locked
// transaction; resource_exhausted while either is blocked. It returns the
// reservation and the counters' keys ("" for an address it cannot tell).
func (s *Server) reserveLoginAttempt(ctx context.Context, now time.Time, email, peer string, hdr http.Header) (store.LoginReservation, string, string, error) {
	emailKey := throttleKey(email)
	limits := append([]store.ThrottleLimit{{Key: emailKey, Policy: s.d.LoginThrottle}},
		s.addrLimit(loginAddrScope, peer, hdr, s.guards.ipThrottle)...)
	var ipKey string
	if len(limits) > 1 {
		ipKey = limits[1].Key
	}
	res, err := s.spend(ctx, now, func(blocked string) string {
		if blocked == ipKey {
			return "failed logins from this address"
		}
		return "failed logins for this email"
	}, limits...)
	if err != nil {
		return res, "", "", err
	}
	return res, emailKey, ipKey, nil
}

// auditLockout records in the audit trail a failed attempt that started
// (or lengthened) a block of the email's or the address's logins. Best
// effort: the refusal stands if the row cannot be written.
func (s *Server) auditLockout(ctx context.Context, who store.Audit, res store.LoginReservation, emailKey, ipKey, target string) {
	var by []string
	if res.Started(emailKey) {
		by = append(by, "email")
	}
	if ipKey != "" && res.Started(ipKey) {
		by = append(by, "address")
	}
	if len(by) == 0 {
		return
	}
	s.auditAfter(ctx, who.Of(store.AuditLoginLocked, target, map[string]string{"by": strings.Join(by, ",")}))
}

// checkLogin checks the password of email's account. An unknown email is
// checked against a dummy hash of the same cost, through the same cap, so
// that neither timing nor a busy answer tells which emails have accounts.
func (h *authService) checkLogin(ctx context.Context, email, password string) (*ent.Account, bool, error) {
	acct, err := h.s.d.Store.AccountByEmail(ctx, email)
	switch {
	case errors.Is(err, errs.ErrNotFound):
		// Only the cap's refusal (which a known email would get as well)
		// is passed on: an answer of its own would reveal the email unknown.
		if _, err := h.s.guards.hasher.CheckPassword(ctx, password, h.s.dummyHash); err != nil && !errors.Is(err, auth.ErrMalformedHash) {
			return nil, false, hashErr("check dummy password", err)
		}
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	ok, err := h.s.guards.hasher.CheckPassword(ctx, password, acct.PasswordHash)
	if err != nil {
		return nil, false, hashErr("check password of "+acct.ID, err)
	}
	return acct, ok, nil
}

// releaseLoginAttempt gives back the reserved attempt on each non-empty key. It is best
// effort: an attempt it fails to give back stays counted, which errs on the
// side of the limit, so the failure is logged and not returned.
func (s *Server) releaseLoginAttempt(ctx context.Context, res store.LoginReservation, keys ...string) {
	// A caller that went away still gets its unchecked attempt back.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for _, k := range keys {
		if k == "" {
			continue
		}
		if err := s.d.Store.ReleaseLoginAttempt(ctx, res, k); err != nil {
			s.log.WarnContext(ctx, "login attempt not given back", "err", err)
		}
	}
}

type tokenPair struct {
	access, refresh               string
	accessExpires, refreshExpires time.Time
}

// sessionClient is who is calling, as a session records it.
func (s *Server) sessionClient(peer string, h http.Header) store.SessionClient {
	c := store.SessionClient{UserAgent: h.Get("User-Agent")}
	if ip := clientIP(peer, h, s.d.TrustedProxies); ip.IsValid() {
		c.IP = ip.String()
	}
	return c
}

// rotatedToken is the successor of a refresh token: derived from it with
// the server's key, so that the same token presented twice within the
// reuse grace names the same successor (store.RotateRefreshToken), and
// unguessable without the key.
func (s *Server) rotatedToken(presented string) string {
	m := hmac.New(sha256.New, s.rotationKey)
	m.Write([]byte(presented))
	return auth.RefreshTokenPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession issues an access token and the first refresh token of a family.
func (s *Server) newSession(ctx context.Context, acct *ent.Account, family string, client store.SessionClient) (tokenPair, error) {
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
	if _, err := s.d.Store.CreateRefreshToken(ctx, acct.ID, family, hash, refreshExp, now, client); err != nil {
		return tokenPair{}, err
	}
	return tokenPair{access: access, refresh: refresh, accessExpires: accessExp, refreshExpires: refreshExp}, nil
}

func (h *authService) RefreshToken(ctx context.Context, req *connect.Request[paymentsv1.RefreshTokenRequest]) (*connect.Response[paymentsv1.RefreshTokenResponse], error) {
	now := h.s.now()
	next := h.s.rotatedToken(req.Msg.RefreshToken)
	refreshExp := now.Add(h.s.d.RefreshTokenTTL)
	rt, acct, err := h.s.d.Store.RotateRefreshToken(ctx, auth.HashSecret(req.Msg.RefreshToken), auth.HashSecret(next), refreshExp, now,
		h.s.d.RefreshReuseGrace, h.s.sessionClient(req.Peer().Addr, req.Header()))
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
		RefreshTokenExpiresAt: timestamppb.New(rt.ExpiresAt),
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
