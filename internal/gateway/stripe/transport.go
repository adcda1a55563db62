package stripe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// maxForeignBody bounds how much of a non-JSON error answer is kept.
const maxForeignBody = 512

// jsonErrors rewrites an error answer that is not JSON (a proxy's or load
// balancer's HTML 502, a gateway's plain-text 429) into Stripe's error shape,
// so that stripe-go returns a *stripe.Error that keeps the HTTP status and
// headers, and classify can tell a 503 from a 401. Without it stripe-go
// returns a bare decoding error, which would be retried whatever the status.
type jsonErrors struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t jsonErrors) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 || isJSON(resp.Header.Get("Content-Type")) {
		return resp, err
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxForeignBody))
	_ = resp.Body.Close()
	typ := "invalid_request_error"
	if resp.StatusCode >= 500 {
		typ = "api_error"
	}
	snippet := strings.Join(strings.Fields(string(raw)), " ")
	msg := fmt.Sprintf("HTTP %s from the Stripe API with a non-JSON body", resp.Status)
	if snippet != "" {
		msg += ": " + snippet
	}
	body, err := json.Marshal(map[string]any{"error": map[string]string{"type": typ, "message": msg}})
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header = resp.Header.Clone()
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.Header.Del("Content-Encoding")
	return resp, nil
}

// isJSON reports whether a Content-Type names JSON.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
