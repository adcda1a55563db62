package sandbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/money"
)

// APIVersion is the Stripe API version the sandbox's events claim; it is the
// version stripe-go v76 pins, so webhook.ConstructEvent accepts them.
const APIVersion = "2023-10-16"

// WebhookPath is the platform's Stripe webhook route the sandbox posts to.
const WebhookPath = "/webhooks/stripe"

// ThreeDSPath is the prefix of the sandbox's 3-D Secure pages, which
// Handler serves.
const ThreeDSPath = "/sandbox/3ds/"

// The outcomes the 3-D Secure page posts in its form field "outcome".
const (
	OutcomeSucceed = "succeed"
	OutcomeFail    = "fail"
)

// Stripe's event types the 3-D Secure page delivers.
const (
	// EventSucceeded is sent when authentication succeeds and capture is automatic.
	EventSucceeded = "payment_intent.succeeded"
	// EventCapturable is sent when authentication succeeds and capture is
	// manual: the payment is then requires_capture.
	EventCapturable = "payment_intent.amount_capturable_updated"
	// EventPaymentFailed is sent when authentication fails: the payment is
	// then requires_payment_method, with last_payment_error.
	EventPaymentFailed = "payment_intent.payment_failed"
)

// The failure a failed authentication reports, in last_payment_error.
const (
	authFailureCode    = "authentication_required"
	authFailureMessage = "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again."
)

const (
	// maxFormBytes bounds the body of the page's POST.
	maxFormBytes = 64 << 10
	// maxReceiverErrorBytes bounds how much of a failed webhook answer is shown.
	maxReceiverErrorBytes = 512
)

// linkKeyLabel separates the key that signs 3-D Secure links from the
// webhook secret it is derived from.
const linkKeyLabel = "payments sandbox 3-D Secure link v1"

// SignPayload returns the Stripe-Signature header value for payload signed
// with secret at t: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t.payload)>",
// the scheme Stripe uses and stripe-go's webhook package verifies.
func SignPayload(secret string, payload []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(payload)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// threeDSParams is what the 3-D Secure page needs; it travels, signed, in
// the page's query string.
type threeDSParams struct {
	PaymentID     string
	Amount        int64
	Currency      string // upper case
	Manual        bool
	PaymentMethod string
	ReturnURL     string
}

func (p threeDSParams) values() url.Values {
	v := url.Values{}
	v.Set("payment_id", p.PaymentID)
	v.Set("amount", strconv.FormatInt(p.Amount, 10))
	v.Set("currency", p.Currency)
	if p.Manual {
		v.Set("capture", "manual")
	} else {
		v.Set("capture", "automatic")
	}
	if p.PaymentMethod != "" {
		v.Set("pm", p.PaymentMethod)
	}
	if p.ReturnURL != "" {
		v.Set("return_url", p.ReturnURL)
	}
	return v
}

// threeDSURL is the page the customer is sent to for 3-D Secure.
func (s *Sandbox) threeDSURL(ref string, p threeDSParams) string {
	v := p.values()
	v.Set("sig", s.linkSignature(ref, v))
	return s.publicURL + ThreeDSPath + ref + "?" + v.Encode()
}

// linkSignature signs ref and v (without any "sig"); url.Values.Encode
// sorts by key, which makes the message canonical.
func (s *Sandbox) linkSignature(ref string, v url.Values) string {
	unsigned := url.Values{}
	for k, vs := range v {
		if k != "sig" {
			unsigned[k] = vs
		}
	}
	key := hmac.New(sha256.New, []byte(s.secret))
	key.Write([]byte(linkKeyLabel))
	mac := hmac.New(sha256.New, key.Sum(nil))
	mac.Write([]byte(ref))
	mac.Write([]byte("?"))
	mac.Write([]byte(unsigned.Encode()))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// errBadLink is why a 3-D Secure link is refused.
var errBadLink = errors.New("this 3-D Secure link is invalid or was altered")

// verifyLink checks the signature of a 3-D Secure link and parses it.
func (s *Sandbox) verifyLink(ref string, q url.Values) (threeDSParams, error) {
	if !validReference(ref) || len(q["sig"]) != 1 {
		return threeDSParams{}, errBadLink
	}
	got, err := base64.RawURLEncoding.DecodeString(q.Get("sig"))
	if err != nil {
		return threeDSParams{}, errBadLink
	}
	want, _ := base64.RawURLEncoding.DecodeString(s.linkSignature(ref, q))
	if !hmac.Equal(got, want) {
		return threeDSParams{}, errBadLink
	}
	// Signed by us, so well-formed; checked anyway so a bug cannot turn
	// into a page with a nonsense amount.
	for k, vs := range q {
		if len(vs) != 1 {
			return threeDSParams{}, fmt.Errorf("%w: repeated %q", errBadLink, k)
		}
	}
	p := threeDSParams{
		PaymentID:     q.Get("payment_id"),
		PaymentMethod: q.Get("pm"),
		ReturnURL:     q.Get("return_url"),
	}
	if p.Amount, err = strconv.ParseInt(q.Get("amount"), 10, 64); err != nil || p.Amount <= 0 {
		return threeDSParams{}, fmt.Errorf("%w: bad amount", errBadLink)
	}
	cur, ok := money.Lookup(q.Get("currency"))
	if !ok {
		return threeDSParams{}, fmt.Errorf("%w: bad currency", errBadLink)
	}
	p.Currency = cur.Code
	switch q.Get("capture") {
	case "manual":
		p.Manual = true
	case "automatic":
	default:
		return threeDSParams{}, fmt.Errorf("%w: bad capture", errBadLink)
	}
	return p, nil
}

// Handler serves the sandbox's 3-D Secure pages; mount it on the platform's
// public mux under ThreeDSPath (e.g. mux.Handle("/sandbox/", s.Handler())):
//   - GET  /sandbox/3ds/{ref}?...&sig=...: the authentication page, with the
//     amount and two buttons, "Complete authentication" and "Fail
//     authentication";
//   - POST /sandbox/3ds/{ref}?...&sig=... with form field outcome=succeed|fail:
//     delivers the result as a signed Stripe event to PublicURL/webhooks/stripe
//     and redirects the browser (303) to the return URL, or to
//   - GET  /sandbox/3ds/{ref}/complete: a small "authentication complete" page.
//
// A link whose signature does not verify is refused with 400 and sends
// nothing. If the webhook route cannot be reached or does not answer 2xx, the
// POST answers 502 and the customer can click again: the event id is stable
// per reference and outcome, so the receiver's dedupe sees the same event.
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ThreeDSPath+"{ref}", s.servePage)
	mux.HandleFunc("POST "+ThreeDSPath+"{ref}", s.serveOutcome)
	mux.HandleFunc("GET "+ThreeDSPath+"{ref}/complete", s.serveComplete)
	return mux
}

// servePage shows the authentication page.
func (s *Sandbox) servePage(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	p, err := s.verifyLink(ref, r.URL.Query())
	if err != nil {
		s.log.WarnContext(r.Context(), "sandbox: refused 3-D Secure link", "reference", ref, "error", err)
		writePage(w, http.StatusBadRequest, "Invalid link", "<p>"+html.EscapeString(errBadLink.Error())+".</p>")
		return
	}
	cur, _ := money.Lookup(p.Currency)
	action := ThreeDSPath + ref + "?" + r.URL.RawQuery
	later := ""
	if p.Manual {
		later = ", to be captured later"
	}
	body := fmt.Sprintf(`<p class="amount">%s</p>
<p>Payment <code>%s</code>, reference <code>%s</code>%s.</p>
<p>This is the sandbox gateway: no bank is involved. Choose how the card issuer answers.</p>
<form method="post" action="%s">
<button type="submit" name="outcome" value="%s">Complete authentication</button>
<button type="submit" name="outcome" value="%s" class="fail">Fail authentication</button>
</form>`,
		html.EscapeString(money.Format(p.Amount, cur)),
		html.EscapeString(p.PaymentID), html.EscapeString(ref),
		later,
		html.EscapeString(action), OutcomeSucceed, OutcomeFail)
	writePage(w, http.StatusOK, "3-D Secure authentication", body)
}

// serveOutcome delivers the customer's choice as a Stripe event.
func (s *Sandbox) serveOutcome(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ref := r.PathValue("ref")
	p, err := s.verifyLink(ref, r.URL.Query())
	if err != nil {
		s.log.WarnContext(ctx, "sandbox: refused 3-D Secure link", "reference", ref, "error", err)
		writePage(w, http.StatusBadRequest, "Invalid link", "<p>"+html.EscapeString(errBadLink.Error())+"; nothing was sent.</p>")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writePage(w, http.StatusBadRequest, "Bad request", "<p>The form could not be read.</p>")
		return
	}
	outcome := r.PostForm.Get("outcome")
	if outcome != OutcomeSucceed && outcome != OutcomeFail {
		writePage(w, http.StatusBadRequest, "Bad request",
			"<p>The form field outcome must be succeed or fail; nothing was sent.</p>")
		return
	}

	ev, res := s.threeDSEvent(ref, p, outcome)
	payload, err := json.Marshal(ev)
	if err != nil { // plain structs: cannot happen, but never send half an event
		writePage(w, http.StatusInternalServerError, "Error", "<p>The event could not be encoded.</p>")
		return
	}
	target := s.publicURL + WebhookPath
	if err := s.deliver(ctx, target, payload); err != nil {
		s.log.WarnContext(ctx, "sandbox: 3-D Secure result not delivered", "reference", ref,
			"event_id", ev.ID, "type", ev.Type, "url", target, "error", err)
		retry := ThreeDSPath + ref + "?" + r.URL.RawQuery
		writePage(w, http.StatusBadGateway, "Result not delivered", fmt.Sprintf(
			`<p>The sandbox could not deliver the result (event <code>%s</code>, %s) to the platform's webhook route <code>POST %s</code>: %s.</p>
<p>The payment is unchanged. <a href="%s">Go back</a> and click again once the platform is reachable.</p>`,
			html.EscapeString(ev.ID), html.EscapeString(ev.Type), html.EscapeString(target),
			html.EscapeString(err.Error()), html.EscapeString(retry)))
		return
	}
	s.remember(res)
	s.log.InfoContext(ctx, "sandbox: 3-D Secure result delivered", "reference", ref,
		"payment_id", p.PaymentID, "event_id", ev.ID, "type", ev.Type)

	status := "succeeded"
	if outcome == OutcomeFail {
		status = "failed"
	}
	http.Redirect(w, r, completeURL(ref, p.ReturnURL, status), http.StatusSeeOther)
}

// completeURL is where the browser goes after the page: the return URL with
// Stripe's payment_intent and redirect_status parameters, or the sandbox's
// own "authentication complete" page.
func completeURL(ref, returnURL, status string) string {
	if returnURL != "" {
		if u, err := url.Parse(returnURL); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			q := u.Query()
			q.Set("payment_intent", ref)
			q.Set("redirect_status", status)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return ThreeDSPath + ref + "/complete?redirect_status=" + status
}

// serveComplete is the page shown when there is no return URL.
func (s *Sandbox) serveComplete(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("redirect_status") == "failed" {
		writePage(w, http.StatusOK, "Authentication failed",
			"<p>Authentication failed: the payment was not made. You can close this window.</p>")
		return
	}
	writePage(w, http.StatusOK, "Authentication complete",
		"<p>Authentication complete. You can close this window.</p>")
}

// deliver POSTs a signed event to the webhook route.
func (s *Sandbox) deliver(ctx context.Context, target string, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks) payments-sandbox")
	req.Header.Set("Stripe-Signature", SignPayload(s.secret, payload, s.now()))
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReceiverErrorBytes))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := strings.TrimSpace(string(body))
		if msg == "" {
			return fmt.Errorf("it answered %s", resp.Status)
		}
		return fmt.Errorf("it answered %s: %s", resp.Status, msg)
	}
	return nil
}

// event is a Stripe event, with the fields Stripe sends.
type event struct {
	ID              string       `json:"id"`
	Object          string       `json:"object"`
	APIVersion      string       `json:"api_version"`
	Created         int64        `json:"created"`
	Data            eventData    `json:"data"`
	Livemode        bool         `json:"livemode"`
	PendingWebhooks int          `json:"pending_webhooks"`
	Request         eventRequest `json:"request"`
	Type            string       `json:"type"`
}

type eventData struct {
	Object paymentIntent `json:"object"`
}

type eventRequest struct {
	ID             *string `json:"id"`
	IdempotencyKey *string `json:"idempotency_key"`
}

// paymentIntent is the part of Stripe's PaymentIntent the platform reads.
type paymentIntent struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Amount           int64             `json:"amount"`
	AmountCapturable int64             `json:"amount_capturable"`
	AmountReceived   int64             `json:"amount_received"`
	CaptureMethod    string            `json:"capture_method"`
	Created          int64             `json:"created"`
	Currency         string            `json:"currency"`
	LastPaymentError *paymentError     `json:"last_payment_error"`
	Livemode         bool              `json:"livemode"`
	Metadata         map[string]string `json:"metadata"`
	NextAction       *struct{}         `json:"next_action"`
	PaymentMethod    *string           `json:"payment_method"`
	Status           string            `json:"status"`
}

type paymentError struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// threeDSEvent builds the event for the customer's choice on the page, and
// the payment's state after it.
func (s *Sandbox) threeDSEvent(ref string, p threeDSParams, outcome string) (event, gateway.Result) {
	now := s.now().Unix()
	pi := paymentIntent{
		ID:            ref,
		Object:        "payment_intent",
		Amount:        p.Amount,
		CaptureMethod: "automatic",
		Created:       now,
		Currency:      strings.ToLower(p.Currency),
		Metadata:      map[string]string{},
	}
	if p.PaymentID != "" {
		pi.Metadata["payment_id"] = p.PaymentID
	}
	if p.PaymentMethod != "" {
		pi.PaymentMethod = &p.PaymentMethod
	}
	res := gateway.Result{Reference: ref, Amount: p.Amount}
	if m, ok := testMethods[p.PaymentMethod]; ok {
		res.Method = gateway.MethodDetails{Type: "card", Brand: m.brand, Last4: m.last4,
			ExpMonth: testCardExpMonth, ExpYear: testCardExpYear}
	}
	if p.Manual {
		pi.CaptureMethod = "manual"
	}

	var typ string
	switch {
	case outcome == OutcomeFail:
		typ = EventPaymentFailed
		pi.Status = "requires_payment_method"
		pi.LastPaymentError = &paymentError{Type: "card_error", Code: authFailureCode, Message: authFailureMessage}
		res.Status = gateway.StatusFailed
		res.FailureCode = authFailureCode
		res.FailureMessage = authFailureMessage
	case p.Manual:
		typ = EventCapturable
		pi.Status = "requires_capture"
		pi.AmountCapturable = p.Amount
		authorized(&res, true)
	default:
		typ = EventSucceeded
		pi.Status = "succeeded"
		pi.AmountReceived = p.Amount
		authorized(&res, false)
	}
	return event{
		ID:         EventID(ref, outcome),
		Object:     "event",
		APIVersion: APIVersion,
		Created:    now,
		Data:       eventData{Object: pi},
		Type:       typ,
	}, res
}

// EventID is the id of the event the 3-D Secure page sends for reference and
// outcome (OutcomeSucceed or OutcomeFail): the same on every click, so the
// receiver's dedupe recognises a repeated delivery.
func EventID(reference, outcome string) string {
	return "evt_sbx_" + digest("3ds|"+reference+"|"+outcome)
}

// writePage writes a small self-contained HTML page.
func writePage(w http.ResponseWriter, status int, title, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	t := html.EscapeString(title)
	_, _ = io.WriteString(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>`+t+` · sandbox</title>
<style>
body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1a1f36}
.badge{display:inline-block;background:#fde68a;border-radius:4px;padding:0 .4rem;font-size:.8rem}
.amount{font-size:2rem;font-weight:600;margin:.5rem 0}
button{font-size:1rem;padding:.6rem 1rem;margin:.3rem .3rem 0 0;border:0;border-radius:6px;background:#635bff;color:#fff;cursor:pointer}
button.fail{background:#df1b41}
code{font-size:.85rem}
</style></head>
<body><p><span class="badge">SANDBOX</span></p>
<h1>`+t+`</h1>
`+body+`
</body></html>
`)
}
