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

// PaymentIntentsPath is the prefix of the sandbox's routes about a payment
// intent, which Handler serves: POST PaymentIntentsPath{ref}/dispute opens
// a dispute on it (OpenDispute).
const PaymentIntentsPath = "/sandbox/payment_intents/"

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

// Handler serves the sandbox's 3-D Secure pages and its dispute route;
// mount it on the platform's public mux under "/sandbox/" (e.g.
// mux.Handle("/sandbox/", s.Handler())):
//   - GET  /sandbox/3ds/{ref}?...&sig=...: the authentication page, with the
//     amount and two buttons, "Complete authentication" and "Fail
//     authentication";
//   - POST /sandbox/3ds/{ref}?...&sig=... with form field outcome=succeed|fail:
//     records the result in the stored intent (succeeded or requires_capture,
//     or failed with authentication_required), delivers it as a signed
//     Stripe event to PublicURL/webhooks/stripe and redirects the browser
//     (303) to the return URL, or to
//   - GET  /sandbox/3ds/{ref}/complete: a small "authentication complete" page;
//   - POST /sandbox/payment_intents/{ref}/dispute: opens a dispute on the
//     succeeded payment ref, as a card network does (see OpenDispute), and
//     answers it as JSON: {"reference", "payment_reference", "status",
//     "amount" (ISO minor units), "currency", "reason", "due_by" (RFC 3339),
//     "submission_count"}; or {"error": {"code", "message"}} with 404 for
//     an unknown payment, 400 for one that has not succeeded or was
//     refunded in full. It takes no body and asks for no credentials, as
//     the 3-D Secure pages: it exists for `dev` and the tests, the sandbox
//     moves no money, and only who knows a payment's reference (a 120-bit
//     digest) can name it.
//
// A link whose signature does not verify is refused with 400 and sends
// nothing; so is a payment the State does not hold (404), and a POST for
// one no longer awaiting authentication, canceled by a void say (409). The first result
// recorded is final: another click sends its event again. If the webhook
// route cannot be reached or does not answer 2xx, the POST answers 502 and
// the customer can click again: the event id is stable per reference and
// outcome, so the receiver's dedupe sees the same event. The pages work
// whether or not the sandbox is down (SetDown).
func (s *Sandbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ThreeDSPath+"{ref}", s.servePage)
	mux.HandleFunc("POST "+ThreeDSPath+"{ref}", s.serveOutcome)
	mux.HandleFunc("GET "+ThreeDSPath+"{ref}/complete", s.serveComplete)
	mux.HandleFunc("POST "+PaymentIntentsPath+"{ref}/dispute", s.serveOpenDispute)
	return mux
}

// servePage shows the authentication page, or, when the customer already
// chose, a button that sends that result again.
func (s *Sandbox) servePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ref := r.PathValue("ref")
	p, err := s.verifyLink(ref, r.URL.Query())
	if err != nil {
		s.log.WarnContext(ctx, "sandbox: refused 3-D Secure link", "reference", ref, "error", err)
		writePage(w, http.StatusBadRequest, "Invalid link", "<p>"+html.EscapeString(errBadLink.Error())+".</p>")
		return
	}
	in, found, err := s.loadIntent(ctx, ref)
	if !s.pageIntent(w, r, ref, found, err) {
		return
	}
	cur, _ := money.Lookup(p.Currency)
	action := html.EscapeString(ThreeDSPath + ref + "?" + r.URL.RawQuery)
	later := ""
	if p.Manual {
		later = ", to be captured later"
	}
	about := fmt.Sprintf(`<p class="amount">%s</p>
<p>Payment <code>%s</code>, reference <code>%s</code>%s.</p>`,
		html.EscapeString(money.Format(p.Amount, cur)),
		html.EscapeString(p.PaymentID), html.EscapeString(ref), later)
	switch {
	case in.ThreeDS != "":
		writePage(w, http.StatusOK, "Authentication "+outcomeWord(in.ThreeDS), fmt.Sprintf(`%s
<p>Authentication was already %s. If the shop did not hear of it, send the result again.</p>
<form method="post" action="%s">
<button type="submit" name="outcome" value="%s">Send the result again</button>
</form>`, about, outcomeWord(in.ThreeDS), action, html.EscapeString(in.ThreeDS)))
	case in.Status != string(gateway.StatusRequiresAction):
		writePage(w, http.StatusOK, "Not awaiting authentication", fmt.Sprintf(
			"%s\n<p>This payment is no longer awaiting authentication: it is %s.</p>",
			about, html.EscapeString(stripeStatus(in.Status))))
	default:
		writePage(w, http.StatusOK, "3-D Secure authentication", fmt.Sprintf(`%s
<p>This is the sandbox gateway: no bank is involved. Choose how the card issuer answers.</p>
<form method="post" action="%s">
<button type="submit" name="outcome" value="%s">Complete authentication</button>
<button type="submit" name="outcome" value="%s" class="fail">Fail authentication</button>
</form>`, about, action, OutcomeSucceed, OutcomeFail))
	}
}

// pageIntent writes the page for an intent that could not be read or does
// not exist, and reports whether the caller may go on.
func (s *Sandbox) pageIntent(w http.ResponseWriter, r *http.Request, ref string, found bool, err error) bool {
	switch {
	case err != nil:
		s.log.ErrorContext(r.Context(), "sandbox: 3-D Secure page cannot read the payment", "reference", ref, "error", err)
		writePage(w, http.StatusServiceUnavailable, "Unavailable",
			"<p>The sandbox cannot read this payment right now; nothing was changed. Try again in a moment.</p>")
		return false
	case !found:
		writePage(w, http.StatusNotFound, "No such payment",
			"<p>The sandbox holds no payment with this reference; nothing was sent.</p>")
		return false
	}
	return true
}

// outcomeWord says an outcome in a sentence.
func outcomeWord(outcome string) string {
	if outcome == OutcomeFail {
		return "failed"
	}
	return "completed"
}

// serveOutcome records the customer's choice in the intent, then delivers it
// as a Stripe event.
//
// The intent changes first, so that whoever hears of the event and asks
// (Retrieve, Find, from any process) sees the same state. The first choice
// is final, as the issuer's answer is: a later click, of either button,
// sends the event of that first choice again (same id, so the receiver's
// dedupe recognises it). If the event cannot be delivered the customer can
// click again; the platform can also learn the result through Find.
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

	decided, in, found, err := s.decide(ctx, ref, outcome)
	if !s.pageIntent(w, r, ref, found, err) {
		return
	}
	if decided == "" {
		writePage(w, http.StatusConflict, "Not awaiting authentication", fmt.Sprintf(
			"<p>This payment is no longer awaiting authentication: it is %s. Nothing was sent.</p>",
			html.EscapeString(stripeStatus(in.Status))))
		return
	}

	ev := s.threeDSEvent(ref, p, decided)
	payload, err := json.Marshal(ev)
	if err != nil { // plain structs: cannot happen, but never send half an event
		writePage(w, http.StatusInternalServerError, "Error", "<p>The event could not be encoded.</p>")
		return
	}
	target := s.publicURL + WebhookPath
	if err := s.deliver(ctx, target, payload); err != nil {
		s.log.WarnContext(ctx, "sandbox: 3-D Secure result not delivered", "reference", ref,
			"event_id", ev.ID, "type", ev.Type, "url", target, "error", err)
		writePage(w, http.StatusBadGateway, "Result not delivered", fmt.Sprintf(
			`<p>Authentication %s, but the sandbox could not deliver the result (event <code>%s</code>, %s) to the platform's webhook route <code>POST %s</code>: %s.</p>
<p>Click again once the platform is reachable: the same event is sent.</p>
<form method="post" action="%s">
<button type="submit" name="outcome" value="%s">Send the result again</button>
</form>`,
			outcomeWord(decided), html.EscapeString(ev.ID), html.EscapeString(ev.Type), html.EscapeString(target),
			html.EscapeString(err.Error()), html.EscapeString(ThreeDSPath+ref+"?"+r.URL.RawQuery), html.EscapeString(decided)))
		return
	}
	s.log.InfoContext(ctx, "sandbox: 3-D Secure result delivered", "reference", ref,
		"payment_id", p.PaymentID, "event_id", ev.ID, "type", ev.Type)

	status := "succeeded"
	if decided == OutcomeFail {
		status = "failed"
	}
	http.Redirect(w, r, completeURL(ref, p.ReturnURL, status), http.StatusSeeOther)
}

// decide records outcome as the result of the intent's 3-D Secure, unless a
// result was recorded already, and returns the recorded one; "" when the
// intent is no longer awaiting authentication (canceled by a void, say).
func (s *Sandbox) decide(ctx context.Context, ref, outcome string) (decided string, in intent, found bool, err error) {
	in, found, err = update(ctx, s, ref, func(in *intent) (bool, error) {
		switch {
		case in.ThreeDS != "":
			decided = in.ThreeDS
			return false, nil
		case in.Status != string(gateway.StatusRequiresAction):
			decided = ""
			return false, nil
		}
		decided = outcome
		in.ThreeDS = outcome
		if outcome == OutcomeFail {
			in.Status = string(gateway.StatusFailed)
			in.FailureCode, in.FailureMessage = authFailureCode, authFailureMessage
		} else {
			authorize(in, in.CaptureMethod == "manual")
		}
		return true, nil
	})
	return decided, in, found, err
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

// event is a Stripe event about an object of type T, with the fields
// Stripe sends.
type event[T any] struct {
	ID              string       `json:"id"`
	Object          string       `json:"object"`
	APIVersion      string       `json:"api_version"`
	Created         int64        `json:"created"`
	Data            eventData[T] `json:"data"`
	Livemode        bool         `json:"livemode"`
	PendingWebhooks int          `json:"pending_webhooks"`
	Request         eventRequest `json:"request"`
	Type            string       `json:"type"`
}

type eventData[T any] struct {
	Object T `json:"object"`
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

// threeDSEvent builds the event for the customer's choice on the page.
func (s *Sandbox) threeDSEvent(ref string, p threeDSParams, outcome string) event[paymentIntent] {
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
	if p.Manual {
		pi.CaptureMethod = "manual"
	}

	var typ string
	switch {
	case outcome == OutcomeFail:
		typ = EventPaymentFailed
		pi.Status = "requires_payment_method"
		pi.LastPaymentError = &paymentError{Type: "card_error", Code: authFailureCode, Message: authFailureMessage}
	case p.Manual:
		typ = EventCapturable
		pi.Status = "requires_capture"
		pi.AmountCapturable = p.Amount
	default:
		typ = EventSucceeded
		pi.Status = "succeeded"
		pi.AmountReceived = p.Amount
	}
	// Events carry amounts in the gateway's units, as Stripe's do (5 ISK
	// is 500); the receiver converts them back, as it does Stripe's.
	units := gateway.UnitsFor(Name, p.Currency)
	for _, a := range []*int64{&pi.Amount, &pi.AmountCapturable, &pi.AmountReceived} {
		if v, err := units.ToGateway(*a); err == nil {
			*a = v
		}
	}
	return event[paymentIntent]{
		ID:         EventID(ref, outcome),
		Object:     "event",
		APIVersion: APIVersion,
		Created:    now,
		Data:       eventData[paymentIntent]{Object: pi},
		Type:       typ,
	}
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
