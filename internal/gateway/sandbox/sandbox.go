// Package sandbox is the built-in payment gateway that behaves like Stripe's
// test mode: the same test payment method ids (pm_card_visa,
// pm_card_chargeDeclined, pm_card_authenticationRequired, ...), the same
// decline codes and messages, the same rules for amounts and states, 3-D
// Secure through a redirect URL, and the asynchronous 3-D Secure result, the
// late failure of a refund and the course of a dispute delivered as signed
// Stripe events to the platform's own POST /webhooks/stripe route, the way
// Stripe delivers them.
//
// # State
//
// The sandbox plays an external provider, so it keeps what a provider keeps,
// in a State that every process playing it shares (Options.State, the
// platform's database): its payment intents with their refunds and
// disputes, the answers it saved per idempotency key, the attempt counters
// of its flaky test tokens, and which payments were voided. The API (which
// serves the 3-D Secure page) and every worker (which call the gateway) thus
// behave as one provider, also across restarts. Nothing that matters is
// kept in memory (but the timers of a refund's late failure, see Refund, and
// of a dispute's opening and closing, see Disputes below); the 3-D Secure
// links are signed with an HMAC keyed by the webhook secret so that they
// cannot be forged into another amount or payment.
//
// # Idempotency
//
// As at Stripe, a call that executed saves its answer under its idempotency
// key, a success or a refusal (a 4xx error) alike, and a retry with the same
// key and the same parameters gets the saved answer, even if the intent has
// moved on since; the same key with other parameters is refused with
// idempotency_error. Not saved, because they never executed: refusals of
// parameter validation (an unknown payment method, an amount or currency
// the gateway does not take), which a retry meets again anyway, and the
// simulated transient failures (the 503s of pm_sandbox_flaky, the 429 of
// pm_sandbox_ratelimited, an outage from SetDown), which never reached the
// provider, so a retry can succeed. The reference of a payment (pi_sbx_...)
// is derived from its create's idempotency key (Reference).
//
// # Payment methods
//
// CreateRequest.PaymentMethod:
//   - pm_card_visa (visa 4242), pm_card_mastercard (mastercard 4444),
//     pm_card_amex (amex 8431): approved; succeeded, or requires_capture
//     with manual capture;
//   - pm_card_chargeDeclined (card_declined), ...InsufficientFunds
//     (insufficient_funds), ...ExpiredCard (expired_card), ...IncorrectCvc
//     (incorrect_cvc): declined, a Result with Status failed and Stripe's
//     message;
//   - pm_card_authenticationRequired, pm_card_threeDSecure2Required:
//     requires_action, RedirectURL on the 3-D Secure page (see Handler);
//   - pm_card_refundFail (visa 5126, Stripe's 4000 0000 0000 5126): approved;
//     a refund of it answers succeeded, then fails RefundFailureDelay later
//     with failure_reason expired_or_canceled_card: the sandbox records it
//     as failed (its amount is refundable again) and delivers a signed
//     charge.refund.updated event to PublicURL/webhooks/stripe (see Refund);
//   - pm_card_createDispute (visa 0259, Stripe's 4000 0000 0000 0259):
//     approved; DisputeDelay after the payment succeeded (at its create with
//     automatic capture, at its capture with manual), the card network
//     disputes it as fraudulent (see Disputes below);
//   - pm_sandbox_flaky: FlakyFailures transient 503 errors per idempotency
//     key, then approved; pm_sandbox_ratelimited: one 429 per key, then
//     approved. The attempts are counted in the State, so the failures
//     happen that many times in total, whichever process serves them;
//   - mm:<provider>:<msisdn>, provider mpesa, mtn, airtel or orange, msisdn
//     8 to 15 digits (E.164 without +): approved, or declined with
//     insufficient_funds when the number ends in 0000; automatic capture only;
//   - anything else: an Invalid error, as Stripe's "No such PaymentMethod".
//
// # Amounts
//
// Amounts are in ISO 4217 minor units, and the sandbox takes what Stripe
// takes (gateway.UnitsFor): CreatePayment, Capture and Refund refuse a
// currency Stripe does not charge in (funds such as CHE or CLF) with
// currency_not_supported, and an amount it cannot write (a KWD amount not
// ending in 0, ISK or JPY-like amounts with decimals) with amount_invalid.
//
// # Intents
//
// Capture takes a requires_capture intent, up to its capturable amount (more
// is amount_too_large); a partial capture releases the rest. Cancel takes an
// intent that is not succeeded or canceled. Both refuse other states with
// payment_intent_unexpected_state, as Stripe does: a capture of a succeeded
// intent is refused unless it replays the key that captured it. Retrieve
// reports the stored intent (an unknown reference is resource_missing, as
// at Stripe), Find the intent of a reference or a payment. Refund refunds a succeeded intent, up to what it
// received and was not refunded yet (a failed refund gives its amount back);
// RetrieveRefund reports a refund as it stands now. Void cancels whatever intent of a
// payment could still take money and marks the payment voided: a create for
// a voided payment that arrives afterwards (a late request, say one the
// platform gave up on and the network delivered anyway) makes an intent
// that is canceled at once and took no money. That is the sandbox's model
// of a late-arriving intent.
//
// # Disputes
//
// A dispute is opened on a succeeded payment of pm_card_createDispute
// Options.DisputeDelay (DefaultDisputeDelay, 2 s) after it succeeded, or at
// once on any succeeded payment by OpenDispute, which Handler serves at
// POST /sandbox/payment_intents/{ref}/dispute for `dev`. Its id is
// DisputeReference(ref) (dp_sbx_..., from the intent's own, so that it is
// opened once whichever process opens it); it disputes what the payment
// received, as fraudulent, status needs_response, evidence due 7 days
// later; it is stored with the intent, and charge.dispute.created then
// charge.dispute.funds_withdrawn are delivered. UpdateDispute stages
// evidence, or submits it: the dispute is then under_review and
// charge.dispute.updated is delivered; as in Stripe's test mode, evidence
// whose uncategorized text (or explanation) holds winning_evidence closes
// the dispute as won DisputeDelay later (charge.dispute.closed, then
// charge.dispute.funds_reinstated), and losing_evidence as lost
// (charge.dispute.closed). CloseDispute concedes a dispute, as Stripe's
// close: it is lost at once, and charge.dispute.closed (status lost, the
// same event id as a close by losing_evidence) is delivered DisputeDelay
// later. A closed dispute takes no more evidence and cannot be closed
// again (dispute_already_closed; a retry of the close that closed it,
// with its key, answers as it did), and a disputed payment takes no
// refund, unless the dispute was won. Every event has an id derived from
// the dispute and the event (DisputeEventID, DisputeUpdatedEventID),
// delivered again, the same, when the call that set it off is retried.
// RetrieveDispute reports a dispute as it stands now.
package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
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

// Options configures a Sandbox.
type Options struct {
	// State keeps the sandbox's intents, saved answers and counters; it is
	// required (New refuses nil: a sandbox that forgot on restart would
	// not behave like a provider). Every process playing the sandbox must
	// share one, normally the platform's *store.Store.
	State State
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
	// RefundFailureDelay is how long after answering a refund of
	// pm_card_refundFail the sandbox fails it and delivers the event: zero
	// means DefaultRefundFailureDelay, a negative value at once (tests).
	RefundFailureDelay time.Duration
	// DisputeDelay is how long after a payment of pm_card_createDispute
	// succeeded the sandbox opens a dispute on it, how long after
	// evidence that decides the outcome (winning_evidence,
	// losing_evidence) was submitted it closes the dispute, and how long
	// after CloseDispute it delivers charge.dispute.closed: zero means
	// DefaultDisputeDelay, a negative value at once (tests).
	DisputeDelay time.Duration
}

// DefaultRefundFailureDelay is the default of Options.RefundFailureDelay:
// long enough that the platform has recorded the refund's answer first, as
// it has when Stripe fails a refund days later.
const DefaultRefundFailureDelay = 3 * time.Second

// DefaultDisputeDelay is the default of Options.DisputeDelay: long enough
// that the platform has recorded the payment's (or the evidence's) answer
// before it hears of the dispute's change, as it has when a network opens
// a dispute weeks later.
const DefaultDisputeDelay = 2 * time.Second

// Sandbox is a gateway.Gateway that behaves like Stripe's test mode. It is
// safe for concurrent use, and any number of Sandboxes on one State behave
// as one provider.
type Sandbox struct {
	state     State
	publicURL string
	secret    string
	now       func() time.Time
	log       *slog.Logger
	http      *http.Client

	// refundFailureDelay is Options.RefundFailureDelay and disputeDelay
	// Options.DisputeDelay, 0 for at once; eventRetryBackoff is the first
	// pause between two deliveries of an event the webhook route did not
	// take (doubling after each).
	refundFailureDelay time.Duration
	disputeDelay       time.Duration
	eventRetryBackoff  time.Duration
	// background counts the goroutines that fail refunds and open, tell
	// of and close disputes later.
	background sync.WaitGroup

	// down simulates an outage of the network to the provider (SetDown).
	down atomic.Bool
}

var _ gateway.Gateway = (*Sandbox)(nil)

// New returns a Sandbox on opts.State. It fails without a State.
func New(opts Options) (*Sandbox, error) {
	if st := reflect.ValueOf(opts.State); !st.IsValid() || st.Kind() == reflect.Pointer && st.IsNil() {
		return nil, errors.New("sandbox: Options.State is required: the sandbox keeps its intents in the shared database")
	}
	s := &Sandbox{
		state:     opts.State,
		publicURL: strings.TrimRight(opts.PublicURL, "/"),
		secret:    opts.WebhookSecret,
		now:       opts.Now,
		log:       opts.Logger,
		http:      opts.HTTPClient,

		refundFailureDelay: max(opts.RefundFailureDelay, 0),
		disputeDelay:       max(opts.DisputeDelay, 0),
		eventRetryBackoff:  defaultEventRetryBackoff,
	}
	if opts.RefundFailureDelay == 0 {
		s.refundFailureDelay = DefaultRefundFailureDelay
	}
	if opts.DisputeDelay == 0 {
		s.disputeDelay = DefaultDisputeDelay
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
	return s, nil
}

// Name returns "sandbox".
func (s *Sandbox) Name() string { return Name }

// SetDown simulates an outage of the provider, for tests: while down, every
// call of this Sandbox (every gateway.Gateway method but Name) fails with a
// Transient 503 error before it reaches the provider, so nothing executes
// and nothing is saved; once up again, retries proceed as if the failed
// attempts never happened. It is this instance's view (the network between
// it and the provider): other Sandboxes on the same State are unaffected,
// and so are the 3-D Secure pages, which the customer's browser reaches by
// another road.
func (s *Sandbox) SetDown(down bool) {
	s.down.Store(down)
	s.log.Info("sandbox: simulated outage", "down", down)
}

// reachable refuses a call when the context is done or the sandbox is down.
func (s *Sandbox) reachable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return canceled(err)
	}
	if s.down.Load() {
		return &gateway.Error{Kind: gateway.Transient, Code: "api_error", StatusCode: http.StatusServiceUnavailable,
			Message: "sandbox: the gateway is unreachable (simulated outage)"}
	}
	return nil
}

// canceled is the error of a call whose context is done.
func canceled(err error) error {
	return &gateway.Error{Kind: gateway.Transient, Message: "sandbox: " + err.Error(), Err: err}
}

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
	// refundFailure, when set, is the failure_reason with which every
	// refund of the method fails some time after it answered succeeded.
	refundFailure string
	// disputed methods have their payments disputed some time after they
	// succeeded.
	disputed bool
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

	"pm_card_refundFail": {brand: "visa", last4: "5126", refundFailure: RefundFailureExpiredOrCanceledCard},

	"pm_card_createDispute": {brand: "visa", last4: "0259", disputed: true},

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
	return ok && validDigest(rest)
}

// validDigest reports whether d looks like one digest makes.
func validDigest(d string) bool {
	if len(d) != refHashChars {
		return false
	}
	for _, c := range d {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// checkUnits refuses, as Stripe does, a currency it does not charge in
// (currency_not_supported) or an amount it cannot write (amount_invalid).
// code must be a currency money.Lookup knows.
func checkUnits(code string, amount int64) *gateway.Error {
	u := gateway.UnitsFor(Name, code)
	if err := u.Check("currency", "amount", amount); err != nil {
		if !u.Payable {
			return invalid(http.StatusBadRequest, "currency_not_supported", "sandbox: "+err.Error())
		}
		return invalid(http.StatusBadRequest, "amount_invalid", "sandbox: "+err.Error())
	}
	return nil
}

// checkCurrency refuses a currency that is not ISO 4217 and returns its
// upper-case code.
func checkCurrency(code string) (string, error) {
	cur, ok := money.Lookup(code)
	if !ok {
		return "", invalid(http.StatusBadRequest, "parameter_invalid_string", fmt.Sprintf("sandbox: invalid currency: %q", code))
	}
	return cur.Code, nil
}

// method is a payment method resolved from its token.
type method struct {
	details gateway.MethodDetails
	outcome outcome
	// declineCode and declineMessage are Stripe's, for outcomeDecline.
	declineCode, declineMessage string
}

// resolveMethod validates r's payment method and says what it does.
func resolveMethod(r gateway.CreateRequest) (method, error) {
	if rest, ok := strings.CutPrefix(r.PaymentMethod, "mm:"); ok {
		return mobileMoney(rest, r.ManualCapture)
	}
	m, ok := testMethods[r.PaymentMethod]
	if !ok {
		if !gateway.LooksLikeID(r.PaymentMethod) {
			// Never echo what may be card data into errors and logs.
			return method{}, invalid(http.StatusBadRequest, "resource_missing",
				"No such PaymentMethod: want a test payment method id such as pm_card_visa, or mm:<provider>:<msisdn>")
		}
		return method{}, invalid(http.StatusBadRequest, "resource_missing",
			fmt.Sprintf("No such PaymentMethod: '%s'", r.PaymentMethod))
	}
	return method{
		details: gateway.MethodDetails{
			Type: "card", Brand: m.brand, Last4: m.last4,
			ExpMonth: testCardExpMonth, ExpYear: testCardExpYear,
		},
		outcome: m.outcome, declineCode: m.declineCode, declineMessage: m.declineMessage,
	}, nil
}

// mobileMoney resolves mm:<provider>:<msisdn>; spec is what follows "mm:".
func mobileMoney(spec string, manual bool) (method, error) {
	// The messages do not repeat the phone number: errors end up in logs.
	provider, msisdn, ok := strings.Cut(spec, ":")
	if !ok || !mobileMoneyProviders[provider] {
		return method{}, invalid(http.StatusBadRequest, "payment_method_invalid_parameter",
			"sandbox: invalid mobile money method: want mm:<provider>:<msisdn> with provider one of mpesa, mtn, airtel, orange")
	}
	if !validMSISDN(msisdn) {
		return method{}, invalid(http.StatusBadRequest, "payment_method_invalid_parameter",
			fmt.Sprintf("sandbox: invalid %s number: want 8 to 15 digits, E.164 without +", provider))
	}
	if manual {
		return method{}, invalid(http.StatusBadRequest, "payment_intent_invalid_parameter",
			"sandbox: mobile money payments do not support manual capture")
	}
	m := method{details: gateway.MethodDetails{Type: "mobile_money", Provider: provider, Last4: msisdn[len(msisdn)-4:]}}
	if strings.HasSuffix(msisdn, "0000") {
		m.outcome = outcomeDecline
		m.declineCode = "insufficient_funds"
		m.declineMessage = "The mobile money account has insufficient funds."
	}
	return m, nil
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

// CreatePayment creates and confirms a payment. The outcome follows from
// r.PaymentMethod, as in Stripe's test mode; see the package documentation.
// A decline is a Result with Status failed, not an error. The answer is
// saved under r.IdempotencyKey, which is required: it derives the
// reference.
//
// The intent is stored first, unconfirmed, and confirmed only after the
// payment was checked for a void. With Void marking the payment before it
// looks for intents, one of the two always sees the other: either the void
// finds the intent (and cancels it if it can still take money) or the create
// finds the mark (and cancels its own intent), never neither.
func (s *Sandbox) CreatePayment(ctx context.Context, r gateway.CreateRequest) (gateway.Result, error) {
	if err := s.reachable(ctx); err != nil {
		return gateway.Result{}, err
	}
	if r.IdempotencyKey == "" {
		return gateway.Result{}, invalid(http.StatusBadRequest, "parameter_missing",
			"sandbox: an idempotency key is required: it derives the reference")
	}
	if err := money.CheckAmount("amount", r.Amount); err != nil {
		return gateway.Result{}, invalid(http.StatusBadRequest, "amount_too_small", "sandbox: "+err.Error())
	}
	currency, err := checkCurrency(r.Currency)
	if err != nil {
		return gateway.Result{}, err
	}
	if err := checkUnits(currency, r.Amount); err != nil {
		return gateway.Result{}, err
	}
	if len(r.PaymentID) > maxPaymentIDLen {
		return gateway.Result{}, invalid(http.StatusBadRequest, "parameter_invalid_string",
			fmt.Sprintf("sandbox: the payment id is longer than %d characters", maxPaymentIDLen))
	}
	m, err := resolveMethod(r)
	if err != nil {
		return gateway.Result{}, err
	}
	ref := Reference(r.IdempotencyKey)
	fp := fingerprint("create", r.PaymentID, r.Amount, currency, r.PaymentMethod, r.ManualCapture, r.Description, r.ReturnURL)

	manual := r.ManualCapture
	captureMethod := "automatic"
	if manual {
		captureMethod = "manual"
	}
	fresh := &intent{
		ID: ref, PaymentID: r.PaymentID, Status: statusRequiresConfirmation,
		Amount: r.Amount, Currency: currency, CaptureMethod: captureMethod,
		PaymentMethod: r.PaymentMethod, Method: methodInfoOf(m.details),
		Description: r.Description, ReturnURL: r.ReturnURL, Created: s.now().Unix(),
	}
	claimed, err := s.claimed(ctx, r.IdempotencyKey, fp)
	if err != nil {
		return gateway.Result{}, err
	}
	// known is fresh once this call has stored it (at version 1), so that
	// the confirmation below need not read it back.
	var known *intent
	if !claimed {
		// The simulated failures come before the key is claimed: as far as
		// the provider knows, the failed attempts never arrived.
		if err := s.simulateFailure(ctx, r.IdempotencyKey, r.PaymentID, ref, m.outcome); err != nil {
			return gateway.Result{}, err
		}
		// The claim and the intent in one write; if either exists (a
		// concurrent call with the key), one at a time as below.
		stored, err := s.createClaimed(ctx, r.IdempotencyKey, fp, fresh)
		switch {
		case err != nil:
			return gateway.Result{}, err
		case stored:
			known = fresh
		default:
			if err := s.claimKey(ctx, r.IdempotencyKey, fp, ref, r.PaymentID); err != nil {
				return gateway.Result{}, err
			}
		}
	}
	if known == nil {
		stored, err := create(ctx, s, ref, kindIntent, r.PaymentID, fresh)
		if err != nil {
			return gateway.Result{}, err
		}
		if stored {
			known = fresh
		}
	}
	// Read after the intent is stored: see the comment above.
	mark, voided, err := s.voided(ctx, r.PaymentID)
	if err != nil {
		return gateway.Result{}, err
	}
	ans, _, err := s.applyOnceFrom(ctx, ref, r.IdempotencyKey, fp, known, func(in *intent) answer {
		if in.Status != statusRequiresConfirmation {
			// Voided between its creation and now: it stays canceled.
			return in.snapshot()
		}
		if voided {
			in.Status = string(gateway.StatusCanceled)
			in.CancellationReason = mark.Reason
			return in.snapshot()
		}
		switch m.outcome {
		case outcomeDecline:
			in.Status = string(gateway.StatusFailed)
			in.FailureCode, in.FailureMessage = m.declineCode, m.declineMessage
		case outcome3DS:
			in.Status = string(gateway.StatusRequiresAction)
			in.RedirectURL = s.threeDSURL(ref, threeDSParams{
				PaymentID: r.PaymentID, Amount: r.Amount, Currency: currency,
				Manual: manual, PaymentMethod: r.PaymentMethod, ReturnURL: r.ReturnURL,
			})
		default:
			authorize(in, manual)
		}
		return in.snapshot()
	})
	if err != nil {
		return gateway.Result{}, err
	}
	if ans.Result != nil && ans.Result.Status == string(gateway.StatusCanceled) {
		s.log.InfoContext(ctx, "sandbox: create for a voided payment: intent canceled at once",
			"reference", ref, "payment_id", r.PaymentID)
	}
	res, err := answerResult(ans)
	if err == nil && res.Status == gateway.StatusSucceeded && testMethods[r.PaymentMethod].disputed {
		// A replay sets it off again, as a refund's late failure: see
		// disputeLater.
		s.disputeLater(ref)
	}
	return res, err
}

// simulateFailure makes the flaky test tokens fail, counting their attempts
// in the state so that the count is shared by every process.
func (s *Sandbox) simulateFailure(ctx context.Context, key, paymentID, ref string, o outcome) error {
	switch o {
	case outcomeFlaky:
		n, err := s.attempt(ctx, key, paymentID)
		if err != nil {
			return err
		}
		if n <= FlakyFailures {
			// n counts the calls the sandbox received with this key, the
			// workflow's fast path included: it is not the attempt number
			// of the activity that made the call, which its log gives.
			s.log.DebugContext(ctx, "sandbox: simulated outage", "reference", ref, "call", n)
			return &gateway.Error{
				Kind: gateway.Transient, Code: "api_error", StatusCode: http.StatusServiceUnavailable,
				Message: fmt.Sprintf("sandbox: simulated gateway outage (call %d with this idempotency key; the first %d fail)", n, FlakyFailures),
			}
		}
	case outcomeRateLimited:
		n, err := s.attempt(ctx, key, paymentID)
		if err != nil {
			return err
		}
		if n == 1 {
			s.log.DebugContext(ctx, "sandbox: simulated rate limit", "reference", ref)
			return &gateway.Error{
				Kind: gateway.RateLimited, Code: "rate_limit", StatusCode: http.StatusTooManyRequests,
				RetryAfter: RateLimitRetryAfter,
				Message:    "sandbox: Too many requests hit the API too quickly.",
			}
		}
	}
	return nil
}

// authorize makes in an approved payment.
func authorize(in *intent, manual bool) {
	if manual {
		in.Status = string(gateway.StatusRequiresCapture)
		in.AmountCapturable = in.Amount
		return
	}
	in.Status = string(gateway.StatusSucceeded)
	in.AmountReceived = in.Amount
}

// answerResult turns a saved answer into what the call returns.
func answerResult(a answer) (gateway.Result, error) {
	if err := a.err(); err != nil {
		return gateway.Result{}, err
	}
	if a.Result == nil {
		return gateway.Result{}, stateError(errors.New("a saved answer holds no result"))
	}
	return a.Result.result(), nil
}

// invalid is a non-retryable gateway error.
func invalid(status int, code, msg string) *gateway.Error {
	return &gateway.Error{Kind: gateway.Invalid, Code: code, Message: msg, StatusCode: status}
}
