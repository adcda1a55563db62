package api

import (
	"context"
	"time"

	"connectrpc.com/connect"

	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// The limits of mailed links, counted per request (not per failure) on the
// login throttle table under keys of their own.
var (
	// resetEmailLimit allows 5 reset requests (or verification resends)
	// per email or account an hour, then none for 15 minutes, up to an
	// hour: enough for a person whose mail is slow, too few to flood
	// their mailbox.
	resetEmailLimit = store.ThrottlePolicy{MaxFailures: 5, Window: time.Hour, BaseBlock: 15 * time.Minute, MaxBlock: time.Hour}
	// resetAddrLimit allows 20 reset requests an hour from one client
	// address, across emails.
	resetAddrLimit = store.ThrottlePolicy{MaxFailures: 20, Window: time.Hour, BaseBlock: 15 * time.Minute, MaxBlock: time.Hour}
	// resetConfirmAddrLimit allows 20 refused reset tokens per 15 minutes
	// from one client address (a used or expired link clicked again).
	resetConfirmAddrLimit = store.ThrottlePolicy{MaxFailures: 20, Window: 15 * time.Minute, BaseBlock: time.Minute, MaxBlock: 15 * time.Minute}
)

// RequestPasswordReset does the same work whatever the email: it counts
// the request on the email's and the address's limits and writes a
// notice for the email. The worker looks the account up when it sends, so
// neither the answer nor its time tells whether the email has an account.
func (h *authService) RequestPasswordReset(ctx context.Context, req *connect.Request[paymentsv1.RequestPasswordResetRequest]) (*connect.Response[paymentsv1.RequestPasswordResetResponse], error) {
	now := h.s.now()
	email := normEmail(req.Msg.Email)
	limits := append([]store.ThrottleLimit{{Key: limitKey("reset-email", email), Policy: resetEmailLimit}},
		h.s.addrLimit("reset-ip", req.Peer().Addr, req.Header(), resetAddrLimit)...)
	if _, err := h.s.spend(ctx, now, always("password reset requests"), limits...); err != nil {
		return nil, err
	}
	who := h.s.whoOf(ctx, req)
	if err := h.s.d.Store.AddNotice(ctx, store.Notice{
		Kind: accountnotice.KindPasswordReset, Recipient: email, At: now,
		Data: map[string]string{"client_ip": who.ClientIP, "request_id": who.RequestID},
	}); err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.RequestPasswordResetResponse{}), nil
}

// ResetPassword hashes the new password first (a busy hasher must not
// spend the token), then spends the token, sets the password and signs
// every session out in one transaction. A refused token counts against
// the client address.
func (h *authService) ResetPassword(ctx context.Context, req *connect.Request[paymentsv1.ResetPasswordRequest]) (*connect.Response[paymentsv1.ResetPasswordResponse], error) {
	now := h.s.now()
	limits := h.s.addrLimit("reset-confirm-ip", req.Peer().Addr, req.Header(), resetConfirmAddrLimit)
	res, err := h.s.spend(ctx, now, always("password reset attempts from this address"), limits...)
	if err != nil {
		return nil, err
	}
	release := func() {
		for _, l := range limits {
			h.s.releaseLoginAttempt(ctx, res, l.Key)
		}
	}
	hash, err := h.s.guards.hasher.HashPassword(ctx, req.Msg.NewPassword)
	if err != nil {
		release()
		return nil, hashErr("hash password", err)
	}
	acct, err := h.s.d.Store.ResetPassword(ctx, auth.HashSecret(req.Msg.Token), hash, now, h.s.whoOf(ctx, req))
	if err != nil {
		if errs.KindOf(err) != errs.KindInvalidArgument {
			release()
		}
		return nil, err
	}
	release()
	// The owner proved access to the mailbox: a lockout of their email
	// from someone guessing ends here.
	if err := h.s.d.Store.ResetLoginFailures(ctx, throttleKey(acct.Email)); err != nil {
		h.s.log.WarnContext(ctx, "login failures not reset after a password reset", "account_id", acct.ID, "err", err)
	}
	h.s.log.InfoContext(ctx, "password reset; every session signed out", "account_id", acct.ID)
	return connect.NewResponse(&paymentsv1.ResetPasswordResponse{}), nil
}

// VerifyEmail spends a verification token.
func (h *authService) VerifyEmail(ctx context.Context, req *connect.Request[paymentsv1.VerifyEmailRequest]) (*connect.Response[paymentsv1.VerifyEmailResponse], error) {
	acct, err := h.s.d.Store.VerifyEmail(ctx, auth.HashSecret(req.Msg.Token), h.s.now(), h.s.whoOf(ctx, req))
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "email verified", "account_id", acct.ID)
	return connect.NewResponse(&paymentsv1.VerifyEmailResponse{Account: accountToProto(acct)}), nil
}

// ResendVerification mails a new link for the address waiting to be
// verified: a pending new email, else the account's own.
func (h *accountService) ResendVerification(ctx context.Context, req *connect.Request[paymentsv1.ResendVerificationRequest]) (*connect.Response[paymentsv1.ResendVerificationResponse], error) {
	acct, err := h.callerAccount(ctx)
	if err != nil {
		return nil, err
	}
	to := acct.PendingEmail
	if to == "" {
		if acct.EmailVerified {
			return nil, errs.FailedPrecondition("the email %s is verified already", acct.Email)
		}
		to = acct.Email
	}
	return idempotent(ctx, h.s, paymentsv1connect.AccountServiceResendVerificationProcedure, acct.ID, req.Header(), req.Msg,
		func(ctx context.Context, _ idemCall) (*paymentsv1.ResendVerificationResponse, error) {
			now := h.s.now()
			if _, err := h.s.spend(ctx, now, always("verification emails for this account"),
				store.ThrottleLimit{Key: limitKey("verify", acct.ID), Policy: resetEmailLimit}); err != nil {
				return nil, err
			}
			if err := h.s.d.Store.AddNotice(ctx, store.Notice{Kind: accountnotice.KindVerifyEmail, AccountID: acct.ID, Recipient: to, At: now}); err != nil {
				return nil, err
			}
			return &paymentsv1.ResendVerificationResponse{Email: to}, nil
		})
}

// CloseAccount checks the password as a login does, then closes the
// account (store.CloseAccount says when it may not) and forgets its
// status here, so its access tokens stop at once on this instance and
// within seconds on the others (its sessions and API keys stop at once
// everywhere: they are revoked in the same transaction).
func (h *accountService) CloseAccount(ctx context.Context, req *connect.Request[paymentsv1.CloseAccountRequest]) (*connect.Response[paymentsv1.CloseAccountResponse], error) {
	acct, err := h.confirmPassword(ctx, req, req.Msg.Password, "password is incorrect")
	if err != nil {
		return nil, err
	}
	closed, err := h.s.d.Store.CloseAccount(ctx, acct.ID, h.s.now(), h.s.whoOf(ctx, req))
	if err != nil {
		return nil, err
	}
	h.s.guards.status.forget(acct.ID)
	h.s.log.InfoContext(ctx, "account closed", "account_id", acct.ID)
	return connect.NewResponse(&paymentsv1.CloseAccountResponse{Account: accountToProto(closed)}), nil
}
