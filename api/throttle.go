package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
)

// The request limits of the API (failed logins, password checks, reset
// requests, mailed links) are counters in the store's throttle table
// (store.ReserveLoginAttempt), under keys that name what is counted
// without storing it.

// loginAddrScope is the scope of the failed-login counter of a client
// address.
const loginAddrScope = "login-ip"

// limitKey is the throttle key of id for one limit (scope), without
// storing id.
func limitKey(scope, id string) string {
	sum := sha256.Sum256([]byte(scope + ":" + id))
	return hex.EncodeToString(sum[:])
}

// normEmail is an email as the limits (and the store) compare it.
func normEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// throttleKey identifies an email's failed-login counter.
func throttleKey(email string) string { return limitKey("login", normEmail(email)) }

// addrLimit is the limit p of the client's address for scope, if the
// address is known (none otherwise).
func (s *Server) addrLimit(scope, peer string, hdr http.Header, p store.ThrottlePolicy) []store.ThrottleLimit {
	if ip := clientIP(peer, hdr, s.d.TrustedProxies); ip.IsValid() {
		return []store.ThrottleLimit{{Key: addrThrottleKey(scope, ip), Policy: p}}
	}
	return nil
}

// spend counts one request on the keys of limits and returns the
// reservation; while any key is blocked it is resource_exhausted, "too
// many <what(blocked key)>; try again in N s" (the wait rounded up to a
// second).
func (s *Server) spend(ctx context.Context, now time.Time, what func(blockedKey string) string, limits ...store.ThrottleLimit) (store.LoginReservation, error) {
	res, err := s.d.Store.ReserveLoginAttempt(ctx, now, limits...)
	if err != nil {
		return res, err
	}
	if res.Blocked() {
		secs := int(math.Ceil(res.BlockedUntil.Sub(now).Seconds()))
		return res, errs.ResourceExhausted(fmt.Sprintf("too many %s; try again in %d s", what(res.BlockedKey), secs))
	}
	return res, nil
}

// always is a what for spend that names the same thing whichever key is
// blocked.
func always(what string) func(string) string { return func(string) string { return what } }
