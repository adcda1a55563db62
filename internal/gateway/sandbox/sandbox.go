// Package sandbox is the built-in payment gateway that behaves like Stripe's
// test mode: the same test payment method ids (pm_card_visa,
// pm_card_chargeDeclined, pm_card_authenticationRequired, ...), the same
// decline codes and messages, 3-D Secure through a redirect URL, and the
// asynchronous 3-D Secure result delivered as a signed Stripe event to the
// platform's own POST /webhooks/stripe route, the way Stripe delivers it.
//
// The sandbox keeps no state that a correct result depends on, so several
// processes (API, workers) can each build their own and agree:
//   - the reference (pi_sbx_...) is derived from the idempotency key, so a
//     retried call returns the same reference and the same result;
//   - the outcome of a payment follows from its payment method token;
//   - the 3-D Secure page carries everything it needs in its URL, signed with
//     an HMAC keyed by the webhook secret so it cannot be forged into another
//     amount or payment.
//
// Payment methods (CreateRequest.PaymentMethod):
//   - pm_card_visa (visa 4242), pm_card_mastercard (mastercard 4444),
//     pm_card_amex (amex 8431): approved; succeeded, or requires_capture
//     with manual capture;
//   - pm_card_chargeDeclined (card_declined), ...InsufficientFunds
//     (insufficient_funds), ...ExpiredCard (expired_card), ...IncorrectCvc
//     (incorrect_cvc): declined, a Result with Status failed and Stripe's
//     message;
//   - pm_card_authenticationRequired, pm_card_threeDSecure2Required:
//     requires_action, RedirectURL on the 3-D Secure page (see Handler);
//   - pm_sandbox_flaky: FlakyFailures transient 503 errors per idempotency
//     key, then approved; pm_sandbox_ratelimited: one 429 per key, then
//     approved;
//   - mm:<provider>:<msisdn>, provider mpesa, mtn, airtel or orange, msisdn
//     8 to 15 digits (E.164 without +): approved, or declined with
//     insufficient_funds when the number ends in 0000; automatic capture only;
//   - anything else: an Invalid error, as Stripe's "No such PaymentMethod".
//
// Two things are remembered in memory, per process: the attempt counters of
// the pm_sandbox_flaky and pm_sandbox_ratelimited test tokens, and the last
// known state of each payment, which Retrieve reports on a best-effort basis.
package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/money"
)

// Name is what Sandbox.Name returns.
const Name = "sandbox"

// ReferencePrefix starts every reference the sandbox makes. Stripe's
// PaymentIntent ids start with "pi_"; "sbx_" makes sandbox ones obvious.
const ReferencePrefix = "pi_sbx_"

// The sandbox's own test tokens, beside Stripe's test payment method ids.
const (
	// MethodFlaky fails the first FlakyFailures attempts of each idempotency
	// key with a transient 503, then succeeds like pm_card_visa.
	MethodFlaky = "pm_sandbox_flaky"
	// MethodRateLimited fails the first attempt of each idempotency key with
	// a 429 that asks to retry after RateLimitRetryAfter, then succeeds like
	// pm_card_visa.
	MethodRateLimited = "pm_sandbox_ratelimited"
)

const (
	// FlakyFailures is how many attempts of one idempotency key with
	// MethodFlaky fail before one succeeds.
	FlakyFailures = 3
	// RateLimitRetryAfter is the RetryAfter of MethodRateLimited's 429.
	RateLimitRetryAfter = 2 * time.Second
)

// Expiry of every sandbox test card. Stripe accepts any future date for its
// test cards; a fixed one keeps results identical across retries.
const (
	testCardExpMonth = 12
	testCardExpYear  = 2034
)

// refHashChars is how many base32 characters of the key's SHA-256 a
// reference keeps: 120 bits, far beyond any chance of collision.
const refHashChars = 24

// maxRemembered bounds the best-effort memory of payment states and attempt
// counters; when a map grows past it, it starts over.
const maxRemembered = 100_000

// Options configures a Sandbox.
type Options struct {
	// PublicURL is where the platform's HTTP API is served, as the customer's
	// browser reaches it, e.g. http://127.0.0.1:8080. The 3-D Secure page is
	// PublicURL/sandbox/3ds/{ref} and events are POSTed to
	// PublicURL/webhooks/stripe.
	PublicURL string
	// WebhookSecret signs the events (Stripe-Signature) and the 3-D Secure
	// links. It must be the secret the webhook route verifies with
	// (STRIPE_WEBHOOK_SECRET); an empty secret makes links forgeable.
	WebhookSecret string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the sandbox's log records; nil discards them.
	Logger *slog.Logger
	// HTTPClient posts events to the webhook route; nil means a client with
	// a 10 s timeout.
	HTTPClient *http.Client
}

// Sandbox is a gateway.Gateway that behaves like Stripe's test mode. It is
// safe for concurrent use.
type Sandbox struct {
	publicURL string
	secret    string
	now       func() time.Time
	log       *slog.Logger
	http      *http.Client

	mu       sync.Mutex
	attempts map[string]int            // idempotency key -> attempts of a flaky/rate-limited token
	known    map[string]gateway.Result // reference -> last state this process saw
}

var _ gateway.Gateway = (*Sandbox)(nil)

// New returns a Sandbox.
func New(opts Options) *Sandbox {
	s := &Sandbox{
		publicURL: strings.TrimRight(opts.PublicURL, "/"),
		secret:    opts.WebhookSecret,
		now:       opts.Now,
		log:       opts.Logger,
		http:      opts.HTTPClient,
		attempts:  make(map[string]int),
		known:     make(map[string]gateway.Result),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.http == nil {
		s.http = &http.Client{Timeout: 10 * time.Second}
	}
	return s
}

// Name returns "sandbox".
func (s *Sandbox) Name() string { return Name }

// outcome is what a test payment method does.
type outcome int

const (
	outcomeSucceed outcome = iota
	outcomeDecline
	outcome3DS
	outcomeFlaky
	outcomeRateLimited
)

// testMethod is one of Stripe's test payment methods (or ours).
type testMethod struct {
	brand, last4 string
	outcome      outcome
	// declineCode and declineMessage are Stripe's, for outcomeDecline.
	declineCode, declineMessage string
}

// testMethods are Stripe's test payment method ids, with the brand and last
// four digits of the test card behind each, and the sandbox's own tokens.
var testMethods = map[string]testMethod{
	"pm_card_visa":       {brand: "visa", last4: "4242"},
	"pm_card_mastercard": {brand: "mastercard", last4: "4444"},
	"pm_card_amex":       {brand: "amex", last4: "8431"},

	"pm_card_chargeDeclined": {brand: "visa", last4: "0002", outcome: outcomeDecline,
		declineCode: "card_declined", declineMessage: "Your card was declined."},
	"pm_card_chargeDeclinedInsufficientFunds": {brand: "visa", last4: "9995", outcome: outcomeDecline,
		declineCode: "insufficient_funds", declineMessage: "Your card has insufficient funds."},
	"pm_card_chargeDeclinedExpiredCard": {brand: "visa", last4: "0069", outcome: outcomeDecline,
		declineCode: "expired_card", declineMessage: "Your card has expired."},
	"pm_card_chargeDeclinedIncorrectCvc": {brand: "visa", last4: "0127", outcome: outcomeDecline,
		declineCode: "incorrect_cvc", declineMessage: "Your card's security code is incorrect."},

	"pm_card_authenticationRequired": {brand: "visa", last4: "3184", outcome: outcome3DS},
	"pm_card_threeDSecure2Required":  {brand: "visa", last4: "3220", outcome: outcome3DS},

	MethodFlaky:       {brand: "visa", last4: "4242", outcome: outcomeFlaky},
	MethodRateLimited: {brand: "visa", last4: "4242", outcome: outcomeRateLimited},
}

// Mobile money providers the sandbox accepts in mm:<provider>:<msisdn>.
var mobileMoneyProviders = map[string]bool{"mpesa": true, "mtn": true, "airtel": true, "orange": true}

// Reference returns the reference the sandbox gives the payment created with
// idempotencyKey: "pi_sbx_" and 24 base32 characters of the key's SHA-256.
func Reference(idempotencyKey string) string {
	return ReferencePrefix + digest(idempotencyKey)
}

// digest is a short, lower-case, stable digest of s.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])
	return strings.ToLower(enc[:refHashChars])
}

// validReference reports whether ref looks like one Reference makes.
func validReference(ref string) bool {
	rest, ok := strings.CutPrefix(ref, ReferencePrefix)
	if !ok || len(rest) != refHashChars {
		return false
	}
	for _, c := range rest {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// CreatePayment creates and confirms a payment. The outcome follows from
// r.PaymentMethod, as in Stripe's test mode; see the package documentation.
// A decline is a Result with Status failed, not an error.
func (s *Sandbox) CreatePayment(ctx context.Context, r gateway.CreateRequest) (gateway.Result, error) {
	if err := ctx.Err(); err != nil {
		return gateway.Result{}, &gateway.Error{Kind: gateway.Transient, Message: "sandbox: " + err.Error(), Err: err}
	}
	if r.IdempotencyKey == "" {
		return gateway.Result{}, invalid(400, "parameter_missing", "sandbox: an idempotency key is required: it derives the reference")
	}
	if err := money.CheckAmount("amount", r.Amount); err != nil {
		return gateway.Result{}, invalid(400, "amount_too_small", "sandbox: "+err.Error())
	}
	cur, ok := money.Lookup(r.Currency)
	if !ok {
		return gateway.Result{}, invalid(400, "parameter_invalid_string",
			fmt.Sprintf("sandbox: invalid currency: %q", r.Currency))
	}
	ref := Reference(r.IdempotencyKey)

	if rest, ok := strings.CutPrefix(r.PaymentMethod, "mm:"); ok {
		return s.mobileMoney(ref, rest, r)
	}

	m, ok := testMethods[r.PaymentMethod]
	if !ok {
		if !gateway.LooksLikeID(r.PaymentMethod) {
			// Never echo what may be card data into errors and logs.
			return gateway.Result{}, invalid(400, "resource_missing",
				"No such PaymentMethod: want a test payment method id such as pm_card_visa, or mm:<provider>:<msisdn>")
		}
		return gateway.Result{}, invalid(400, "resource_missing",
			fmt.Sprintf("No such PaymentMethod: '%s'", r.PaymentMethod))
	}
	res := gateway.Result{
		Reference: ref,
		Amount:    r.Amount,
		Method: gateway.MethodDetails{
			Type: "card", Brand: m.brand, Last4: m.last4,
			ExpMonth: testCardExpMonth, ExpYear: testCardExpYear,
		},
	}

	switch m.outcome {
	case outcomeFlaky:
		if n := s.attempt(r.IdempotencyKey); n <= FlakyFailures {
			s.log.DebugContext(ctx, "sandbox: simulated outage", "reference", ref, "attempt", n)
			return gateway.Result{}, &gateway.Error{
				Kind: gateway.Transient, Code: "api_error", StatusCode: http.StatusServiceUnavailable,
				Message: fmt.Sprintf("sandbox: simulated gateway outage (attempt %d of %d fails)", n, FlakyFailures),
			}
		}
	case outcomeRateLimited:
		if n := s.attempt(r.IdempotencyKey); n == 1 {
			s.log.DebugContext(ctx, "sandbox: simulated rate limit", "reference", ref)
			return gateway.Result{}, &gateway.Error{
				Kind: gateway.RateLimited, Code: "rate_limit", StatusCode: http.StatusTooManyRequests,
				RetryAfter: RateLimitRetryAfter,
				Message:    "sandbox: Too many requests hit the API too quickly.",
			}
		}
	case outcomeDecline:
		res.Status = gateway.StatusFailed
		res.FailureCode = m.declineCode
		res.FailureMessage = m.declineMessage
		s.rememberFirst(res)
		return res, nil
	case outcome3DS:
		res.Status = gateway.StatusRequiresAction
		res.RedirectURL = s.threeDSURL(ref, threeDSParams{
			PaymentID: r.PaymentID, Amount: r.Amount, Currency: cur.Code,
			Manual: r.ManualCapture, PaymentMethod: r.PaymentMethod, ReturnURL: r.ReturnURL,
		})
		s.rememberFirst(res)
		return res, nil
	}

	authorized(&res, r.ManualCapture)
	s.rememberFirst(res)
	return res, nil
}

// authorized completes res for an approved payment.
func authorized(res *gateway.Result, manual bool) {
	if manual {
		res.Status = gateway.StatusRequiresCapture
		res.AmountCapturable = res.Amount
		return
	}
	res.Status = gateway.StatusSucceeded
	res.AmountReceived = res.Amount
}

// mobileMoney handles mm:<provider>:<msisdn>; spec is what follows "mm:".
func (s *Sandbox) mobileMoney(ref, spec string, r gateway.CreateRequest) (gateway.Result, error) {
	// The messages do not repeat the phone number: errors end up in logs.
	provider, msisdn, ok := strings.Cut(spec, ":")
	if !ok || !mobileMoneyProviders[provider] {
		return gateway.Result{}, invalid(400, "payment_method_invalid_parameter",
			"sandbox: invalid mobile money method: want mm:<provider>:<msisdn> with provider one of mpesa, mtn, airtel, orange")
	}
	if !validMSISDN(msisdn) {
		return gateway.Result{}, invalid(400, "payment_method_invalid_parameter",
			fmt.Sprintf("sandbox: invalid %s number: want 8 to 15 digits, E.164 without +", provider))
	}
	if r.ManualCapture {
		return gateway.Result{}, invalid(400, "payment_intent_invalid_parameter",
			"sandbox: mobile money payments do not support manual capture")
	}
	res := gateway.Result{
		Reference: ref,
		Amount:    r.Amount,
		Method:    gateway.MethodDetails{Type: "mobile_money", Provider: provider, Last4: msisdn[len(msisdn)-4:]},
	}
	if strings.HasSuffix(msisdn, "0000") {
		res.Status = gateway.StatusFailed
		res.FailureCode = "insufficient_funds"
		res.FailureMessage = "The mobile money account has insufficient funds."
	} else {
		authorized(&res, false)
	}
	s.rememberFirst(res)
	return res, nil
}

// validMSISDN reports whether n is 8 to 15 digits not starting with 0.
func validMSISDN(n string) bool {
	if len(n) < 8 || len(n) > 15 || n[0] == '0' {
		return false
	}
	for i := range len(n) {
		if n[i] < '0' || n[i] > '9' {
			return false
		}
	}
	return true
}

// Capture captures an authorized payment. It trusts r.Amount (the workflow
// checks it against the authorized amount); an amount of 0 means the
// authorized amount, which the sandbox knows only if this process authorized
// the payment.
func (s *Sandbox) Capture(ctx context.Context, r gateway.CaptureRequest) (gateway.Result, error) {
	if err := ctx.Err(); err != nil {
		return gateway.Result{}, &gateway.Error{Kind: gateway.Transient, Message: "sandbox: " + err.Error(), Err: err}
	}
	if err := checkReference(r.Reference); err != nil {
		return gateway.Result{}, err
	}
	prev, known := s.lookup(r.Reference)
	if known {
		switch prev.Status {
		case gateway.StatusCanceled, gateway.StatusFailed:
			return gateway.Result{}, invalid(400, "payment_intent_unexpected_state",
				fmt.Sprintf("This PaymentIntent could not be captured because it has a status of %s.", stripeStatus(prev.Status)))
		case gateway.StatusSucceeded:
			return prev, nil // already captured: the same answer again
		}
	}
	amount := r.Amount
	if amount <= 0 {
		if !known || prev.AmountCapturable <= 0 {
			return gateway.Result{}, invalid(400, "parameter_missing",
				"sandbox: the amount to capture is required (this process does not know the authorized amount)")
		}
		amount = prev.AmountCapturable
	}
	res := gateway.Result{
		Reference:      r.Reference,
		Status:         gateway.StatusSucceeded,
		Amount:         max(prev.Amount, amount),
		AmountReceived: amount,
		Method:         prev.Method,
	}
	s.remember(res)
	return res, nil
}

// Cancel cancels a payment that has not succeeded.
func (s *Sandbox) Cancel(ctx context.Context, r gateway.CancelRequest) (gateway.Result, error) {
	if err := ctx.Err(); err != nil {
		return gateway.Result{}, &gateway.Error{Kind: gateway.Transient, Message: "sandbox: " + err.Error(), Err: err}
	}
	if err := checkReference(r.Reference); err != nil {
		return gateway.Result{}, err
	}
	prev, known := s.lookup(r.Reference)
	if known && prev.Status == gateway.StatusSucceeded {
		return gateway.Result{}, invalid(400, "payment_intent_unexpected_state",
			"You cannot cancel this PaymentIntent because it has a status of succeeded.")
	}
	res := gateway.Result{
		Reference: r.Reference,
		Status:    gateway.StatusCanceled,
		Amount:    prev.Amount,
		Method:    prev.Method,
	}
	s.remember(res)
	return res, nil
}

// Retrieve returns the last state of the payment this process saw (created,
// captured, canceled, or completed on the 3-D Secure page served by this
// process). A well-formed reference this process has not seen is reported
// as processing, the status of a payment whose outcome is not known yet.
func (s *Sandbox) Retrieve(ctx context.Context, reference string) (gateway.Result, error) {
	if err := ctx.Err(); err != nil {
		return gateway.Result{}, &gateway.Error{Kind: gateway.Transient, Message: "sandbox: " + err.Error(), Err: err}
	}
	if err := checkReference(reference); err != nil {
		return gateway.Result{}, err
	}
	if res, ok := s.lookup(reference); ok {
		return res, nil
	}
	return gateway.Result{Reference: reference, Status: gateway.StatusProcessing}, nil
}

// checkReference refuses what is not a sandbox reference, as Stripe refuses
// an unknown PaymentIntent id.
func checkReference(ref string) error {
	if !validReference(ref) {
		return invalid(404, "resource_missing", fmt.Sprintf("No such payment_intent: '%s'", ref))
	}
	return nil
}

// stripeStatus is the PaymentIntent status Stripe would show for st.
func stripeStatus(st gateway.Status) string {
	if st == gateway.StatusFailed {
		return "requires_payment_method"
	}
	return string(st)
}

// invalid is a non-retryable gateway error.
func invalid(status int, code, msg string) *gateway.Error {
	return &gateway.Error{Kind: gateway.Invalid, Code: code, Message: msg, StatusCode: status}
}

// attempt counts one more attempt of key and returns the count.
func (s *Sandbox) attempt(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.attempts) >= maxRemembered {
		clear(s.attempts)
	}
	s.attempts[key]++
	return s.attempts[key]
}

// lookup returns what this process last saw of ref.
func (s *Sandbox) lookup(ref string) (gateway.Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, ok := s.known[ref]
	return res, ok
}

// remember records res as the latest state of its payment.
func (s *Sandbox) remember(res gateway.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store(res)
}

// rememberFirst records the result of a create unless the payment already
// moved on: a create retried after a capture must not roll Retrieve back.
func (s *Sandbox) rememberFirst(res gateway.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.known[res.Reference]; !ok {
		s.store(res)
	}
}

// store records res; s.mu is held.
func (s *Sandbox) store(res gateway.Result) {
	if _, ok := s.known[res.Reference]; !ok && len(s.known) >= maxRemembered {
		clear(s.known)
	}
	s.known[res.Reference] = res
}
