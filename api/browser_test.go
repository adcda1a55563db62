package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/payments-platform/payments/api"
)

// withBrowserPolicy sets the browser policy's configuration:
// PAYMENTS_CORS_ORIGINS and PAYMENTS_PUBLIC_URL.
func withBrowserPolicy(publicURL string, origins ...string) envOption {
	return func(d *api.Deps) {
		d.PublicURL = publicURL
		d.CORSOrigins = origins
	}
}

// browserCall is one request of the browser tables, with the headers a
// browser (or a server) would send.
type browserCall struct {
	method, path string
	header       map[string]string
	body         string
}

// do sends c over HTTP/1.1 and returns the answer with its body read.
func (e *env) do(t *testing.T, c browserCall) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, e.url+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	// Redirects are what some tests check, not followed.
	client := *e.h1
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// connectCode is the code of a Connect JSON error body, "" for another body.
func connectCode(body string) string {
	var wire struct{ Code string }
	_ = json.Unmarshal([]byte(body), &wire)
	return wire.Code
}

const shop = "https://shop.example"

// The CSRF and CORS table: with PAYMENTS_CORS_ORIGINS=https://shop.example,
// that origin's pages get preflights answered and may call the API; any
// other site's page is refused before anything runs, whether its browser
// sends Sec-Fetch-Site or only Origin; the API's own pages, servers
// (no Origin) and Stripe's webhooks pass; reads pass but stay unreadable to
// other origins (no CORS header).
func TestCrossOriginRequests(t *testing.T) {
	e := newEnv(t, withBrowserPolicy("", shop), func(d *api.Deps) { d.StripeWebhookSecret = "whsec_test_secret_0123456789" })
	u := e.merchant(t)
	getMe := "/payments.v1.AccountService/GetMe"
	register := "/payments.v1.AuthService/Register"
	json := "application/json"
	registration := func(email string) string {
		return `{"email":"` + email + `","password":"` + password + `","role":"ROLE_CUSTOMER"}`
	}

	t.Run("preflight from an allowed origin", func(t *testing.T) {
		for _, c := range []struct{ method, path, headers string }{
			{"POST", "/payments.v1.PaymentService/CreatePayment", "authorization,connect-protocol-version,connect-timeout-ms,content-type,idempotency-key"},
			{"POST", "/payments.v1.PaymentService/CreatePayment", "content-type,grpc-timeout,x-grpc-web,x-user-agent"},
			{"GET", getMe, "authorization,connect-protocol-version,x-request-id"},
			{"PATCH", "/v1/webhook_endpoints/we_1", "authorization,content-type,idempotency-key"},
			{"DELETE", "/v1/webhook_endpoints/we_1", "authorization"},
		} {
			res, _ := e.do(t, browserCall{method: "OPTIONS", path: c.path, header: map[string]string{
				"Origin": shop, "Sec-Fetch-Site": "cross-site",
				"Access-Control-Request-Method": c.method, "Access-Control-Request-Headers": c.headers,
			}})
			h := res.Header
			if res.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != shop ||
				h.Get("Access-Control-Allow-Methods") != c.method || h.Get("Access-Control-Allow-Headers") != c.headers ||
				h.Get("Access-Control-Max-Age") != "7200" || h.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("preflight %s %s with %s: %d %v", c.method, c.path, c.headers, res.StatusCode, h)
			}
		}
	})
	t.Run("preflight of a header the API does not read", func(t *testing.T) {
		res, _ := e.do(t, browserCall{method: "OPTIONS", path: register, header: map[string]string{
			"Origin": shop, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-evil",
		}})
		if res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight with x-evil allowed: %v", res.Header)
		}
	})
	t.Run("preflight from another origin", func(t *testing.T) {
		res, _ := e.do(t, browserCall{method: "OPTIONS", path: register, header: map[string]string{
			"Origin": "https://evil.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
		}})
		if res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight from evil.example answered with CORS headers: %v", res.Header)
		}
	})
	t.Run("actual request from an allowed origin", func(t *testing.T) {
		res, body := e.do(t, browserCall{method: "POST", path: register, body: registration("shop-customer@example.com"), header: map[string]string{
			"Origin": shop, "Sec-Fetch-Site": "cross-site", "Content-Type": json,
		}})
		exposed := res.Header.Get("Access-Control-Expose-Headers")
		if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != shop {
			t.Fatalf("POST from %s: %d %v %s", shop, res.StatusCode, res.Header, body)
		}
		for _, h := range []string{"Idempotent-Replayed", "X-Request-Id", "Grpc-Status", "Grpc-Message"} {
			if !strings.Contains(exposed, h) {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
			}
		}
	})

	refused := []struct {
		name   string
		call   browserCall
		target string // the email whose registration must not exist
	}{
		{"POST from another site", browserCall{method: "POST", path: register, body: registration("csrf1@example.com"),
			header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": json}}, "csrf1@example.com"},
		{"POST from a sibling subdomain", browserCall{method: "POST", path: register, body: registration("csrf2@example.com"),
			header: map[string]string{"Origin": "https://evil.shop.example", "Sec-Fetch-Site": "same-site", "Content-Type": json}}, "csrf2@example.com"},
		{"POST from an old browser (Origin only)", browserCall{method: "POST", path: register, body: registration("csrf3@example.com"),
			header: map[string]string{"Origin": "https://evil.example", "Content-Type": json}}, "csrf3@example.com"},
		{"form POST of a sandboxed page", browserCall{method: "POST", path: register, body: registration("csrf4@example.com"),
			header: map[string]string{"Origin": "null", "Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}}, "csrf4@example.com"},
		{"REST POST from another site", browserCall{method: "POST", path: "/v1/auth/register", body: registration("csrf5@example.com"),
			header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": json}}, "csrf5@example.com"},
		{"webhook POST from a browser page", browserCall{method: "POST", path: "/webhooks/stripe", body: "{}",
			header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Content-Type": json}}, ""},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			res, body := e.do(t, c.call)
			if res.StatusCode != http.StatusForbidden || connectCode(body) != "permission_denied" ||
				!strings.Contains(body, "cross-origin request") || res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("%d %v %s, want 403 permission_denied without CORS headers", res.StatusCode, res.Header, body)
			}
			if c.target != "" {
				if res, body := e.do(t, browserCall{method: "POST", path: "/payments.v1.AuthService/Login", header: map[string]string{"Content-Type": json},
					body: `{"email":"` + c.target + `","password":"` + password + `"}`}); res.StatusCode != http.StatusUnauthorized {
					t.Fatalf("the refused registration of %s ran: login %d %s", c.target, res.StatusCode, body)
				}
			}
		})
	}

	allowed := []struct {
		name string
		call browserCall
		want int
	}{
		{"same origin (Sec-Fetch-Site)", browserCall{method: "POST", path: register, body: registration("same1@example.com"),
			header: map[string]string{"Origin": e.url, "Sec-Fetch-Site": "same-origin", "Content-Type": json}}, http.StatusOK},
		{"same origin (old browser)", browserCall{method: "POST", path: register, body: registration("same2@example.com"),
			header: map[string]string{"Origin": e.url, "Content-Type": json}}, http.StatusOK},
		{"typed into the address bar", browserCall{method: "POST", path: register, body: registration("same3@example.com"),
			header: map[string]string{"Sec-Fetch-Site": "none", "Content-Type": json}}, http.StatusOK},
		{"server to server (no Origin)", browserCall{method: "POST", path: register, body: registration("server@example.com"),
			header: map[string]string{"Content-Type": json}}, http.StatusOK},
		{"server to server with a key", browserCall{method: "POST", path: getMe, body: "{}",
			header: map[string]string{"Content-Type": json, "Authorization": u.authz()}}, http.StatusOK},
		// Stripe signs its POST and sends no Origin: the handler answers
		// (here refusing the missing signature), not the browser policy.
		{"Stripe's webhook POST", browserCall{method: "POST", path: "/webhooks/stripe", body: "{}",
			header: map[string]string{"Content-Type": json, "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}}, http.StatusBadRequest},
	}
	for _, c := range allowed {
		t.Run(c.name, func(t *testing.T) {
			res, body := e.do(t, c.call)
			if res.StatusCode != c.want || res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("%d %v %s, want %d without CORS headers", res.StatusCode, res.Header, body, c.want)
			}
		})
	}

	t.Run("GET from another site is served unreadable", func(t *testing.T) {
		for _, path := range []string{"/healthz", getMe + "?encoding=json&message=%7B%7D", "/v1/me"} {
			res, body := e.do(t, browserCall{method: "GET", path: path, header: map[string]string{
				"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Authorization": u.authz(),
			}})
			if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("GET %s from evil.example: %d %v %s, want 200 without CORS headers", path, res.StatusCode, res.Header, body)
			}
		}
	})
}

// Without PAYMENTS_CORS_ORIGINS no answer carries a CORS header, preflights
// included, and every other site's state-changing request is refused.
func TestNoCORSByDefault(t *testing.T) {
	e := newEnv(t)
	res, _ := e.do(t, browserCall{method: "OPTIONS", path: "/payments.v1.AuthService/Register", header: map[string]string{
		"Origin": shop, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
	}})
	for k := range res.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("preflight answered %s: %v", k, res.Header)
		}
	}
	res, body := e.do(t, browserCall{method: "POST", path: "/payments.v1.AuthService/Register", body: "{}", header: map[string]string{
		"Origin": shop, "Sec-Fetch-Site": "cross-site", "Content-Type": "application/json",
	}})
	if res.StatusCode != http.StatusForbidden || connectCode(body) != "permission_denied" {
		t.Fatalf("POST from %s: %d %s, want 403 permission_denied", shop, res.StatusCode, body)
	}
}

// Every answer carries the security headers, whatever answered it: a
// handler, the router's 404, the browser policy's own refusal. The docs
// page has its own CSP; HSTS is sent only over HTTPS (here plain HTTP with
// an http public URL).
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, withBrowserPolicy("http://127.0.0.1:8080", shop))
	u := e.merchant(t)
	for _, c := range []struct {
		call   browserCall
		status int
		csp    string
	}{
		{browserCall{method: "GET", path: "/healthz"}, http.StatusOK, ""},
		{browserCall{method: "GET", path: "/readyz"}, http.StatusOK, ""},
		{browserCall{method: "POST", path: "/payments.v1.AccountService/GetMe", body: "{}",
			header: map[string]string{"Content-Type": "application/json", "Authorization": u.authz()}}, http.StatusOK, ""},
		{browserCall{method: "POST", path: "/payments.v1.AccountService/GetMe", body: "{}",
			header: map[string]string{"Content-Type": "application/json"}}, http.StatusUnauthorized, ""},
		{browserCall{method: "GET", path: "/v1/me", header: map[string]string{"Authorization": u.authz()}}, http.StatusOK, ""},
		{browserCall{method: "GET", path: "/no/such/route"}, http.StatusNotFound, ""},
		{browserCall{method: "GET", path: "/openapi.yaml"}, http.StatusOK, ""},
		{browserCall{method: "GET", path: "/docs"}, http.StatusOK, api.DocsCSP},
		{browserCall{method: "GET", path: "/docs/swagger-ui.css"}, http.StatusOK, api.DocsCSP},
		{browserCall{method: "POST", path: "/payments.v1.AuthService/Login", body: "{}", header: map[string]string{
			"Content-Type": "application/json", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}}, http.StatusForbidden, ""},
		{browserCall{method: "OPTIONS", path: "/payments.v1.AuthService/Login", header: map[string]string{
			"Origin": shop, "Access-Control-Request-Method": "POST"}}, http.StatusNoContent, ""},
	} {
		res, body := e.do(t, c.call)
		if res.StatusCode != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.call.method, c.call.path, res.StatusCode, body, c.status)
		}
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		if c.csp != "" && csp != c.csp || c.csp == "" && !strings.HasPrefix(csp, "default-src 'none'; frame-ancestors 'none'") {
			t.Errorf("%s %s: Content-Security-Policy %q", c.call.method, c.call.path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s %s: security headers missing: %v", c.call.method, c.call.path, h)
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s %s: HSTS over plain HTTP with an http public URL: %v", c.call.method, c.call.path, h)
		}
		if h.Get(api.RequestIDHeader) == "" {
			t.Errorf("%s %s: no %s", c.call.method, c.call.path, api.RequestIDHeader)
		}
	}
}

// DocsCSP allows exactly what the docs page needs: every inline script and
// style of the page served at /docs by its hash, and every script and
// stylesheet it loads from this server. A change of swgui or of the page's
// configuration changes the hashes: the failure prints the policy to use.
func TestDocsCSPAllowsThePage(t *testing.T) {
	e := newEnv(t)
	res, page := e.do(t, browserCall{method: "GET", path: "/docs"})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /docs: %d", res.StatusCode)
	}
	policy := map[string][]string{}
	for _, d := range strings.Split(api.DocsCSP, ";") {
		f := strings.Fields(d)
		policy[f[0]] = f[1:]
	}
	has := func(directive, source string) bool {
		for _, s := range policy[directive] {
			if s == source {
				return true
			}
		}
		return false
	}
	var missing []string
	inline := regexp.MustCompile(`(?s)<(script|style)>(.*?)</(?:script|style)>`)
	for _, m := range inline.FindAllStringSubmatch(page, -1) {
		sum := sha256.Sum256([]byte(m[2]))
		source := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if directive := m[1] + "-src"; !has(directive, source) {
			missing = append(missing, directive+" "+source)
		}
	}
	if len(missing) > 0 {
		t.Errorf("DocsCSP does not allow the page's inline code; add %s", strings.Join(missing, ", "))
	}
	// Every script and stylesheet comes from this server ('self').
	external := regexp.MustCompile(`<(?:script src|link rel="stylesheet" type="text/css" href)="([^"]+)"`)
	refs := external.FindAllStringSubmatch(page, -1)
	if len(refs) < 3 {
		t.Fatalf("the docs page loads %d scripts and stylesheets, want Swagger UI's 3:\n%s", len(refs), page)
	}
	for _, m := range refs {
		if !strings.HasPrefix(m[1], "/") || strings.HasPrefix(m[1], "//") {
			t.Errorf("the docs page loads %s from another origin", m[1])
		}
	}
}

// Behind a TLS-terminating proxy (PAYMENTS_PUBLIC_URL is https): every
// answer carries HSTS; a browser page asked for over plain HTTP (the proxy
// says X-Forwarded-Proto: http) is redirected with 308 to the same path on
// the public URL; an API call over plain HTTP is refused, not run, in its
// protocol's error format; health probes are answered.
func TestBehindTLSProxy(t *testing.T) {
	const public = "https://pay.example"
	e := newEnv(t, withBrowserPolicy(public+"/"))
	plain := map[string]string{"X-Forwarded-Proto": "http"}

	for _, c := range []struct{ method, path string }{
		{"GET", "/docs"}, {"GET", "/docs/swagger-ui.css"}, {"HEAD", "/openapi.yaml"}, {"GET", "/openapi.yaml?download=1"},
		{"GET", "/sandbox/3ds/ref_1?sig=abc"},
	} {
		res, body := e.do(t, browserCall{method: c.method, path: c.path, header: plain})
		if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != public+c.path ||
			res.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s %s over plain HTTP: %d %v %s, want 308 to %s", c.method, c.path, res.StatusCode, res.Header, body, public+c.path)
		}
	}

	register := `{"email":"plain@example.com","password":"` + password + `","role":"ROLE_CUSTOMER"}`
	for _, c := range []browserCall{
		{method: "POST", path: "/payments.v1.AuthService/Register", body: register,
			header: map[string]string{"X-Forwarded-Proto": "http", "Content-Type": "application/json"}},
		{method: "POST", path: "/v1/auth/register", body: register,
			header: map[string]string{"X-Forwarded-Proto": "http", "Content-Type": "application/json"}},
		{method: "GET", path: "/v1/me", header: plain},
	} {
		res, body := e.do(t, c)
		if res.StatusCode != http.StatusForbidden || connectCode(body) != "permission_denied" ||
			!strings.Contains(body, "send it to "+public+c.path) || res.Header.Get("Location") != "" {
			t.Errorf("%s %s over plain HTTP: %d %v %s, want 403 permission_denied naming the https URL", c.method, c.path, res.StatusCode, res.Header, body)
		}
	}
	if res, body := e.do(t, browserCall{method: "POST", path: "/payments.v1.AuthService/Login", header: map[string]string{"Content-Type": "application/json"},
		body: `{"email":"plain@example.com","password":"` + password + `"}`}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a registration refused over plain HTTP ran: login %d %s", res.StatusCode, body)
	}

	for _, c := range []browserCall{
		{method: "GET", path: "/healthz", header: plain},
		{method: "GET", path: "/docs", header: map[string]string{"X-Forwarded-Proto": "https"}},
		{method: "GET", path: "/docs"}, // straight to the API, not through the proxy
		{method: "POST", path: "/payments.v1.AuthService/Register", body: register,
			header: map[string]string{"X-Forwarded-Proto": "https", "Content-Type": "application/json"}},
	} {
		res, body := e.do(t, c)
		if res.StatusCode != http.StatusOK || res.Header.Get("Strict-Transport-Security") != "max-age=31536000; includeSubDomains" {
			t.Errorf("%s %s %v: %d %v %s, want 200 with HSTS", c.method, c.path, c.header, res.StatusCode, res.Header, body)
		}
	}
	// Browsers keep HSTS per host name whatever the port: localhost gets
	// none, or every local server would be forced to HTTPS.
	if res, _ := e.do(t, browserCall{method: "GET", path: "/healthz", header: map[string]string{"Host": "localhost:8443"}}); res.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS sent to localhost: %v", res.Header)
	}
}

// X-Forwarded-Proto is believed only when the operator says a TLS proxy is
// in front (an https public URL): otherwise the header changes nothing.
func TestForwardedProtoIgnoredWithoutHTTPSPublicURL(t *testing.T) {
	e := newEnv(t, withBrowserPolicy("http://127.0.0.1:8080"))
	res, _ := e.do(t, browserCall{method: "GET", path: "/docs", header: map[string]string{"X-Forwarded-Proto": "http"}})
	if res.StatusCode != http.StatusOK || res.Header.Get("Strict-Transport-Security") != "" {
		t.Fatalf("GET /docs with X-Forwarded-Proto: http and an http public URL: %d %v", res.StatusCode, res.Header)
	}
}
