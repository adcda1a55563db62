package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
)

type principalKey struct{}

// principalFrom returns the authenticated caller; handlers behind the auth
// interceptor always have one.
func principalFrom(ctx context.Context) (auth.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(auth.Principal)
	return p, ok
}

// mustPrincipal is principalFrom for handlers of non-open procedures.
func mustPrincipal(ctx context.Context) (auth.Principal, error) {
	p, ok := principalFrom(ctx)
	if !ok {
		return auth.Principal{}, errs.Unauthenticated("authentication required")
	}
	return p, nil
}

// errorInterceptor is the outermost interceptor: every error leaving a
// handler or another interceptor is turned into a Connect error here.
func errorInterceptor(log *slog.Logger) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			res, err := next(ctx, req)
			if err != nil {
				err = toConnectError(ctx, log, req.Spec().Procedure, err)
				log.DebugContext(ctx, "rpc", "procedure", req.Spec().Procedure, "code", connect.CodeOf(err).String(), "duration", time.Since(start))
			}
			return res, err
		}
	}
}

// authenticator resolves credentials to a principal.
type authenticator interface {
	// APIKey returns the principal of a merchant secret key.
	APIKey(ctx context.Context, secret string) (auth.Principal, error)
	// AccessToken returns the principal of a JWT access token.
	AccessToken(token string) (auth.Principal, error)
}

// unauthenticatedMsg is the same for every bad token, so a caller learns
// nothing about why a forged token failed.
const unauthenticatedMsg = "invalid or expired credentials"

// authInterceptor authenticates every non-open procedure and enforces the
// role table. It runs before validation so that anonymous callers learn
// nothing about request shapes.
func authInterceptor(a authenticator, log *slog.Logger) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			procedure := req.Spec().Procedure
			pol, known := policies[procedure]
			if !known {
				return nil, errs.PermissionDenied("this procedure is not available")
			}
			if pol.open {
				return next(ctx, req)
			}
			header := req.Header().Get("Authorization")
			scheme, token, found := strings.Cut(header, " ")
			if header == "" {
				return nil, errs.Unauthenticated("missing credentials: send Authorization: Bearer <access token or API key>")
			}
			if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
				return nil, errs.Unauthenticated("malformed Authorization header: want Bearer <token>")
			}
			token = strings.TrimSpace(token)
			var (
				p   auth.Principal
				err error
			)
			if strings.HasPrefix(token, auth.APIKeyPrefix) {
				p, err = a.APIKey(ctx, token)
			} else {
				p, err = a.AccessToken(token)
			}
			if err != nil {
				if errs.KindOf(err) == errs.KindInternal && !errors.Is(err, auth.ErrInvalidToken) {
					return nil, err
				}
				log.DebugContext(ctx, "authentication failed", "procedure", procedure, "err", err)
				return nil, errs.Unauthenticated(unauthenticatedMsg)
			}
			if !pol.allows(p.Role) {
				return nil, errs.PermissionDenied("the " + p.Role + " role may not call " + procedure)
			}
			if pol.userOnly && p.APIKeyID != "" {
				return nil, errs.PermissionDenied("API keys may not call " + procedure + "; sign in as a user")
			}
			return next(context.WithValue(ctx, principalKey{}, p), req)
		}
	}
}
