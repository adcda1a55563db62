package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeBehindTLSProxy runs `paymentsd serve` as a TLS-terminating proxy
// would have it, over plain HTTP with PAYMENTS_PUBLIC_URL=https://...: the
// answers carry HSTS, a browser page asked for over plain HTTP
// (X-Forwarded-Proto: http) is redirected to the public URL with 308, an API
// call over plain HTTP is refused; and PAYMENTS_CORS_ORIGINS reaches the
// API's CORS policy.
func TestServeBehindTLSProxy(t *testing.T) {
	const public, shop = "https://pay.example", "https://shop.example"
	client := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base, _ := startServe(t, map[string]string{"PAYMENTS_PUBLIC_URL": public, "PAYMENTS_CORS_ORIGINS": shop}, "http", client)
	call := func(method, path string, header map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}

	res := call("GET", "/docs", map[string]string{"X-Forwarded-Proto": "http"})
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != public+"/docs" ||
		!strings.HasPrefix(res.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Fatalf("GET /docs over plain HTTP: %d %v, want 308 to %s/docs with HSTS", res.StatusCode, res.Header, public)
	}
	res = call("POST", "/payments.v1.AuthService/Login", map[string]string{"X-Forwarded-Proto": "http", "Content-Type": "application/json"})
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("POST Login over plain HTTP: %d %v, want 403", res.StatusCode, res.Header)
	}
	res = call("GET", "/healthz", map[string]string{"X-Forwarded-Proto": "https"})
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Strict-Transport-Security"), "max-age=") ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET /healthz over HTTPS: %d %v, want 200 with HSTS and nosniff", res.StatusCode, res.Header)
	}
	res = call("OPTIONS", "/payments.v1.AuthService/Login", map[string]string{
		"Origin": shop, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	if res.Header.Get("Access-Control-Allow-Origin") != shop {
		t.Fatalf("preflight from %s: %d %v, want it allowed", shop, res.StatusCode, res.Header)
	}
}
