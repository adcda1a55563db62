package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
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

// errorInterceptor is the outermost interceptor after markReached (which
// only records a request's progress): every error leaving a handler or
// another interceptor is turned into a Connect error here.
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

// unauthenticatedMsg is the same for every bad token, so a caller learns
// nothing about why a forged token failed.
const unauthenticatedMsg = "invalid or expired credentials"

// authenticate checks credentials and the role table before a request body
// is read, so that anonymous callers learn nothing about request shapes or
// limits: every non-open procedure answers unauthenticated first. Errors are
// written in the caller's protocol (Connect, gRPC or gRPC-Web).
func (s *Server) authenticate(next http.Handler) http.Handler {
	errWriter := connect.NewErrorWriter()
	fail := func(w http.ResponseWriter, r *http.Request, err error) {
		cerr := toConnectError(r.Context(), s.log, r.URL.Path, err)
		if errWriter.IsSupported(r) {
			_ = errWriter.Write(w, r, cerr)
			return
		}
		// Not an RPC at all (say a browser GET without the Connect query):
		// answer Connect's JSON error shape anyway.
		_ = connect.NewErrorWriter(connect.WithRequireConnectProtocolHeader()).Write(w, r, cerr)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pol, known := policies[r.URL.Path]
		if !known || pol.open {
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.principal(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			fail(w, r, err)
			return
		}
		if !pol.allows(p.Role) {
			fail(w, r, errs.PermissionDenied("the "+p.Role+" role may not call "+r.URL.Path[1:]))
			return
		}
		if pol.userOnly && p.APIKeyID != "" {
			fail(w, r, errs.PermissionDenied("API keys may not call "+r.URL.Path[1:]+"; sign in as a user"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// principal resolves an Authorization header to the caller.
func (s *Server) principal(ctx context.Context, header string) (auth.Principal, error) {
	scheme, token, found := strings.Cut(header, " ")
	if header == "" {
		return auth.Principal{}, errs.Unauthenticated("missing credentials: send Authorization: Bearer <access token or API key>")
	}
	token = strings.TrimSpace(token)
	if !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return auth.Principal{}, errs.Unauthenticated("malformed Authorization header: want Bearer <token>")
	}
	var (
		p   auth.Principal
		err error
	)
	if strings.HasPrefix(token, auth.APIKeyPrefix) {
		// The store refuses the keys of disabled accounts itself.
		p, err = s.APIKey(ctx, token)
	} else if p, err = s.AccessToken(token); err == nil {
		err = s.accountActive(ctx, p.AccountID)
	}
	if err != nil {
		if errs.KindOf(err) == errs.KindInternal && !errors.Is(err, auth.ErrInvalidToken) {
			return auth.Principal{}, err
		}
		s.log.DebugContext(ctx, "authentication failed", "err", err)
		return auth.Principal{}, errs.Unauthenticated(unauthenticatedMsg)
	}
	return p, nil
}

// accountActive refuses the access token of an account that is disabled or
// gone. A token is valid on its own until it expires; checking the account's
// status, as read at most accountStatusTTL ago, ends a disabled account's
// access within seconds instead.
func (s *Server) accountActive(ctx context.Context, accountID string) error {
	active, err := s.guards.status.active(ctx, accountID)
	switch {
	case err != nil:
		return err
	case !active:
		return errs.Unauthenticated("this account is disabled")
	}
	return nil
}

// requirePolicy is a last line of defence behind authenticate: a procedure
// without an entry in the policy table is refused, and a non-open one
// without a principal is unauthenticated.
func requirePolicy() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			pol, known := policies[req.Spec().Procedure]
			if !known {
				return nil, errs.PermissionDenied("this procedure is not available")
			}
			if _, ok := principalFrom(ctx); !ok && !pol.open {
				return nil, errs.Unauthenticated("authentication required")
			}
			return next(ctx, req)
		}
	}
}
