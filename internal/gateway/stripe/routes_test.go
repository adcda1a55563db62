package stripe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// answer is one canned answer of routedStripe.
type answer struct {
	status int
	body   string
}

// routedStripe answers each "METHOD /path" with its own queue of answers
// (the last one repeats), and records every request. A request to a route
// it was not given fails the test.
type routedStripe struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	routes   map[string][]answer
	requests []request
}

func newRouted(t *testing.T, routes map[string][]answer) *routedStripe {
	t.Helper()
	f := &routedStripe{t: t, routes: routes}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		if r.Method == http.MethodGet {
			form = r.URL.Query()
		}
		key := r.Method + " " + r.URL.Path
		f.mu.Lock()
		f.requests = append(f.requests, request{method: r.Method, path: r.URL.Path, form: form, header: r.Header.Clone()})
		queue, ok := f.routes[key]
		var a answer
		if ok && len(queue) > 0 {
			a = queue[0]
			if len(queue) > 1 {
				f.routes[key] = queue[1:]
			}
		}
		f.mu.Unlock()
		if !ok {
			t.Errorf("unexpected request %s", key)
			a = answer{status: 404, body: `{"error": {"type": "invalid_request_error", "message": "no route in the test"}}`}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_routed")
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *routedStripe) gateway(log *slog.Logger) *Gateway {
	return New(Options{SecretKey: testKey, APIBase: f.srv.URL, HTTPClient: f.srv.Client(), Logger: log})
}

func (f *routedStripe) got() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

// calls lists the requests as "METHOD /path".
func (f *routedStripe) calls() []string {
	var out []string
	for _, r := range f.got() {
		out = append(out, r.method+" "+r.path)
	}
	return out
}

// intent describes a PaymentIntent for piJSON.
type intent struct {
	id, status, currency string
	amount, capturable   int64
	received, created    int64
	paymentID            string
}

// piJSON renders a PaymentIntent as Stripe does, amounts in Stripe's units.
func piJSON(p intent) string {
	m := map[string]any{
		"id": p.id, "object": "payment_intent", "status": p.status, "currency": p.currency,
		"amount": p.amount, "amount_capturable": p.capturable, "amount_received": p.received,
		"created": p.created, "metadata": map[string]string{},
	}
	if p.paymentID != "" {
		m["metadata"] = map[string]string{"payment_id": p.paymentID}
	}
	b, _ := json.Marshal(m) // strings, numbers and maps: cannot fail
	return string(b)
}

// searchJSON renders a search result page.
func searchJSON(hasMore bool, nextPage string, pis ...intent) string {
	data := make([]json.RawMessage, len(pis))
	for i, p := range pis {
		data[i] = json.RawMessage(piJSON(p))
	}
	m := map[string]any{"object": "search_result", "url": "/v1/payment_intents/search", "data": data,
		"has_more": hasMore, "next_page": nil}
	if nextPage != "" {
		m["next_page"] = nextPage
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func stripeError(code, message string) string {
	return fmt.Sprintf(`{"error": {"type": "invalid_request_error", "code": %q, "message": %q}}`, code, message)
}

// logRecords is a slog handler that keeps records, for asserting what was
// logged at which level.
type logRecords struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecords) WithGroup(string) slog.Handler      { return h }

// at returns the messages logged at level.
func (h *logRecords) at(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if r.Level == level {
			out = append(out, r.Message)
		}
	}
	return out
}
