package api

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"
)

// The security headers. apiCSP is the policy of every response but the docs
// page's (DocsCSP): the API answers data, never a page, so nothing in a
// response may load or run anything, even if a browser is tricked into
// rendering it. Another page that needs more sets its own policy over it
// (the sandbox's 3-D Secure pages do).
const (
	apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
	// hstsValue asks browsers to use HTTPS only for a year, on the API's
	// host and its subdomains; not preload, which is the operator's own
	// commitment.
	hstsValue = "max-age=31536000; includeSubDomains"
)

// DocsCSP is the Content-Security-Policy of the docs page (GET /docs):
// Swagger UI's scripts, styles and images from this server only; its calls
// ("Try it out", the OpenAPI document) to this server only; no framing, no
// plugins, no <base>. Its page has two inline scripts and one inline style,
// allowed by their SHA-256 hashes rather than 'unsafe-inline', so that no
// injected script could run; TestDocsCSPAllowsThePage fails (printing the
// hashes) when a change of the page's configuration or of swgui changes
// them.
const DocsCSP = "default-src 'none'; " +
	"script-src 'self' 'sha256-f8nHtu9VNwE6XLrjOLLtgQlwWIn4+lHqAAPNFnZmaPU=' 'sha256-DHRbDw/U44PHctYSMNIvo4yw1LfK2oJ1US4GGI9L1Q8='; " +
	"style-src 'self' 'sha256-/9bMfF7o2bA8s86mVvZMwDxEGY8erDaTuv17nSCkaUc='; " +
	"img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// corsMaxAge is how long a browser may reuse a preflight's answer, in
// seconds: two hours, the most Chromium honours.
const corsMaxAge = 2 * 60 * 60

// browserGuard keeps browsers safe on every route of the public port.
// Browsers are the one kind of client that holds a person's credentials and
// runs other sites' code beside them; the guard gives them:
//
//   - security headers on every response, HSTS whenever the API is reached
//     over HTTPS;
//   - CORS for the origins of PAYMENTS_CORS_ORIGINS only (none by default,
//     and then no CORS header at all);
//   - the refusal of a cross-origin request that may change state (any
//     method but GET, HEAD and OPTIONS) from any other origin, so that a
//     page of another site can never act with a browser's credentials;
//   - behind a TLS-terminating proxy (PAYMENTS_PUBLIC_URL is https), a
//     redirect to HTTPS for a browser page asked for over plain HTTP, and a
//     refusal for an API call that came so.
//
// Clients that are not browsers send neither Origin nor Sec-Fetch-Site
// (curl, SDKs, gRPC clients, Stripe's webhook POST) and pass unchanged.
type browserGuard struct {
	// public is PAYMENTS_PUBLIC_URL without a trailing slash when it is
	// https; "" otherwise.
	public string
	csrf   *http.CrossOriginProtection
	// cors answers preflights and marks answers readable by the allowed
	// origins; nil when there are none.
	cors *cors.Cors
}

// newBrowserGuard builds the policy from the API's dependencies. An origin
// that is not one (config.FromEnv refuses those) is logged and trusted
// neither for CORS nor as a cross-origin caller.
func (s *Server) newBrowserGuard() *browserGuard {
	g := &browserGuard{csrf: http.NewCrossOriginProtection()}
	if u, err := url.Parse(s.d.PublicURL); err == nil && u.Scheme == "https" && u.Host != "" {
		g.public = strings.TrimSuffix(s.d.PublicURL, "/")
	}
	var origins []string
	for _, o := range s.d.CORSOrigins {
		if err := g.csrf.AddTrustedOrigin(o); err != nil {
			s.log.Error("PAYMENTS_CORS_ORIGINS: origin ignored", "origin", o, "err", err)
			continue
		}
		origins = append(origins, o)
	}
	if len(origins) > 0 {
		g.cors = cors.New(cors.Options{
			// rs/cors treats an empty list as every origin: never built
			// without one.
			AllowedOrigins: origins,
			// Connect's (GET for read-only RPCs, POST) and REST's.
			AllowedMethods: append(connectcors.AllowedMethods(), http.MethodPatch, http.MethodDelete),
			AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", idempotencyHeader, RequestIDHeader),
			ExposedHeaders: append(connectcors.ExposedHeaders(), replayedHeader, RequestIDHeader),
			MaxAge:         corsMaxAge,
			// Credentials are bearer tokens in the Authorization header,
			// which a script sends itself; the API sets no cookie, so a
			// browser need not and may not send its own.
			AllowCredentials: false,
		})
	}
	return g
}

// secureBrowsers wraps next with the browser policy of the API's
// configuration (see browserGuard).
func (s *Server) secureBrowsers(next http.Handler) http.Handler {
	return s.newBrowserGuard().wrap(next)
}

// wrap puts the guard in front of next. The headers are set first, so that
// every answer has them, the guard's own refusals and redirects included;
// CORS comes before the cross-origin check, which lets the preflights and
// the allowed origins' requests through.
func (g *browserGuard) wrap(next http.Handler) http.Handler {
	checked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.csrf.Check(r); err != nil {
			refuseCrossOrigin(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
	var inner http.Handler = checked
	if g.cors != nil {
		inner = g.cors.Handler(checked)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.setHeaders(w.Header(), r)
		if g.public != "" && forwardedPlainHTTP(r) && !isHealthProbe(r.URL.Path) {
			g.upgrade(w, r)
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// setHeaders sets the security headers of r's answer; a handler may set
// its own Content-Security-Policy over the default.
func (g *browserGuard) setHeaders(h http.Header, r *http.Request) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if isDocsPage(r.URL.Path) {
		h.Set("Content-Security-Policy", DocsCSP)
	} else {
		h.Set("Content-Security-Policy", apiCSP)
	}
	if (r.TLS != nil || g.public != "") && !isLocalhost(r.Host) {
		h.Set("Strict-Transport-Security", hstsValue)
	}
}

// upgrade answers a request that reached the TLS-terminating proxy over
// plain HTTP. A browser page is redirected to the same path on the public
// HTTPS URL, with 308 so that the method is kept. An API call is refused
// rather than redirected: it has already sent its credentials and body in
// clear, and a client that followed a redirect would go on doing so
// unnoticed, where a refusal is found at the first test.
func (g *browserGuard) upgrade(w http.ResponseWriter, r *http.Request) {
	if isBrowserPage(r) {
		http.Redirect(w, r, g.public+r.URL.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	_ = errorBodies.Write(w, r, connect.NewError(connect.CodePermissionDenied, fmt.Errorf(
		"plain HTTP is refused and this request was not run: send it to %s%s (HTTPS)", g.public, r.URL.Path)))
}

// isHealthProbe reports whether path is a health route, which a load
// balancer may probe over plain HTTP through the same proxy: it is answered
// whatever the scheme, as it holds no secret.
func isHealthProbe(path string) bool { return path == "/healthz" || path == "/readyz" }

// refuseCrossOrigin answers a state-changing request that a browser sent
// from a page of an origin not in PAYMENTS_CORS_ORIGINS, in the error format
// of the request's protocol.
func refuseCrossOrigin(w http.ResponseWriter, r *http.Request) {
	from := r.Header.Get("Origin")
	if from == "" {
		from = "another site"
	}
	_ = errorBodies.Write(w, r, connect.NewError(connect.CodePermissionDenied, errors.New(
		"cross-origin request from "+from+" refused: browsers may call this API only from its own pages "+
			"and the origins its operator allows (PAYMENTS_CORS_ORIGINS); servers send no Origin header")))
}

// forwardedPlainHTTP reports whether the proxy in front says the client
// came over plain HTTP. Only the first X-Forwarded-Proto counts, the one the
// proxy nearest the client wrote.
func forwardedPlainHTTP(r *http.Request) bool {
	proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "http")
}

// isDocsPage reports whether path is the docs page or one of its assets.
func isDocsPage(path string) bool {
	return path == "/docs" || strings.HasPrefix(path, "/docs/")
}

// isBrowserPage reports whether r asks for a page a person opens in a
// browser (the docs, the OpenAPI document, the sandbox's 3-D Secure pages)
// rather than calls the API.
func isBrowserPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return isDocsPage(r.URL.Path) || r.URL.Path == "/openapi.yaml" || strings.HasPrefix(r.URL.Path, "/sandbox/")
}

// isLocalhost reports whether host (with or without a port) is localhost:
// browsers keep HSTS per host name, not per port, so HSTS from an API tried
// over TLS on localhost would force HTTPS on every other local server the
// developer runs, for a year. (Browsers ignore HSTS from IP addresses.)
func isLocalhost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
