// Package stripe is the gateway to Stripe, through stripe-go v76. Each
// Gateway has its own client (no stripe-go globals), with stripe-go's own
// network retries off: retries are Temporal's, driven by the error kinds this
// package assigns once, in classify.
//
// Amounts cross to Stripe converted from ISO 4217 minor units into Stripe's
// own units (gateway.UnitsFor), and back; what Stripe cannot represent is
// refused before any request (CodeAmountInvalid, CodeCurrencyNotSupported).
//
// STRIPE_API_BASE (Options.APIBase) points the client at stripe-mock for the
// contract tests.
package stripe

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/payments-platform/payments/internal/gateway"
)

// Name is what Gateway.Name returns.
const Name = "stripe"

// DefaultHTTPTimeout bounds one request when Options.HTTPClient is nil. The
// activity's context usually ends a call sooner.
const DefaultHTTPTimeout = 30 * time.Second

// maxIdempotencyKey is Stripe's limit on an Idempotency-Key.
const maxIdempotencyKey = 255

// expandMethod asks Stripe to embed the PaymentMethod in the PaymentIntent,
// so brand, last four digits and expiry come back in the same call.
const expandMethod = "payment_method"

// Options configures a Gateway.
type Options struct {
	// SecretKey is the Stripe secret key (STRIPE_SECRET_KEY), sk_test_... or
	// sk_live_... (or a restricted rk_ key).
	SecretKey string
	// APIBase is the API's base URL (STRIPE_API_BASE), e.g. stripe-mock's
	// http://127.0.0.1:12111; "" means Stripe itself.
	APIBase string
	// HTTPClient makes the requests; nil means a client with
	// DefaultHTTPTimeout.
	HTTPClient *http.Client
	// Logger receives this package's records and stripe-go's own (at debug
	// level); nil discards them.
	Logger *slog.Logger
}

// Gateway is a gateway.Gateway backed by Stripe PaymentIntents. It is safe
// for concurrent use.
type Gateway struct {
	api *client.API
	log *slog.Logger
}

var _ gateway.Gateway = (*Gateway)(nil)

// New returns a Gateway with its own stripe-go client.
func New(opts Options) *Gateway {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	httpClient := &http.Client{Timeout: DefaultHTTPTimeout}
	if opts.HTTPClient != nil {
		c := *opts.HTTPClient // a copy: the caller's client is left as it was
		httpClient = &c
	}
	base := httpClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	httpClient.Transport = jsonErrors{base: base}
	cfg := &stripego.BackendConfig{
		HTTPClient: httpClient,
		// Temporal retries the activity with the same idempotency key;
		// stripe-go retrying underneath would only hide the failures.
		MaxNetworkRetries: stripego.Int64(0),
		LeveledLogger:     leveledLogger{logger},
		EnableTelemetry:   stripego.Bool(false),
	}
	if opts.APIBase != "" {
		cfg.URL = stripego.String(strings.TrimRight(opts.APIBase, "/"))
	}
	backends := &stripego.Backends{
		API:     stripego.GetBackendWithConfig(stripego.APIBackend, cfg),
		Connect: stripego.GetBackendWithConfig(stripego.ConnectBackend, cloneConfig(cfg)),
		Uploads: stripego.GetBackendWithConfig(stripego.UploadsBackend, cloneConfig(cfg)),
	}
	return &Gateway{api: client.New(opts.SecretKey, backends), log: logger}
}

// cloneConfig copies cfg without its URL, which is per backend: only the
// API backend is pointed at APIBase.
func cloneConfig(cfg *stripego.BackendConfig) *stripego.BackendConfig {
	c := *cfg
	c.URL = nil
	return &c
}

// Name returns "stripe".
func (g *Gateway) Name() string { return Name }

// CreatePayment creates and confirms a PaymentIntent. A card decline during
// confirmation is not an error: it is a Result with Status failed, the
// decline code (or the error code) as FailureCode, and the PaymentIntent's
// id as Reference when Stripe returned it.
func (g *Gateway) CreatePayment(ctx context.Context, r gateway.CreateRequest) (gateway.Result, error) {
	if err := checkKey(r.IdempotencyKey); err != nil {
		return gateway.Result{}, err
	}
	amount, err := toStripe(r.Currency, r.Amount)
	if err != nil {
		return gateway.Result{}, err
	}
	if strings.HasPrefix(r.PaymentMethod, "mm:") {
		return gateway.Result{}, &gateway.Error{Kind: gateway.Invalid, Code: "payment_method_unsupported",
			Message: "stripe: mobile money (mm:...) is not available through Stripe; use the sandbox gateway"}
	}
	if !gateway.LooksLikeID(r.PaymentMethod) {
		// Not sent: Stripe's "No such PaymentMethod" would repeat what may
		// be card data into errors and logs.
		return gateway.Result{}, &gateway.Error{Kind: gateway.Invalid, Code: "resource_missing",
			Message: "stripe: payment_method must be a Stripe PaymentMethod id such as pm_card_visa"}
	}
	captureMethod := stripego.PaymentIntentCaptureMethodAutomatic
	if r.ManualCapture {
		captureMethod = stripego.PaymentIntentCaptureMethodManual
	}
	params := &stripego.PaymentIntentParams{
		Amount:        stripego.Int64(amount),
		Currency:      stripego.String(strings.ToLower(r.Currency)),
		PaymentMethod: stripego.String(r.PaymentMethod),
		Confirm:       stripego.Bool(true),
		CaptureMethod: stripego.String(string(captureMethod)),
		// Naming the types turns automatic payment methods off (Stripe
		// refuses both at once), so nothing but the card is attempted.
		PaymentMethodTypes: stripego.StringSlice([]string{"card"}),
	}
	if r.Description != "" {
		params.Description = stripego.String(r.Description)
	}
	if r.ReturnURL != "" {
		params.ReturnURL = stripego.String(r.ReturnURL)
	}
	if r.PaymentID != "" {
		params.AddMetadata("payment_id", r.PaymentID)
	}
	params.AddExpand(expandMethod)
	params.Context = ctx
	params.SetIdempotencyKey(r.IdempotencyKey)

	pi, err := g.api.PaymentIntents.New(params)
	if err != nil {
		res, ok, uerr := declined(err, r.Amount, r.Currency)
		if uerr != nil {
			return gateway.Result{}, g.unreadable(ctx, "create", uerr)
		}
		if ok {
			g.log.DebugContext(ctx, "stripe: payment declined", "payment_id", r.PaymentID,
				"reference", res.Reference, "failure_code", res.FailureCode)
			return res, nil
		}
		return gateway.Result{}, g.fail(ctx, "create", err)
	}
	return g.result(ctx, "create", pi, r.Currency)
}

// Capture captures a PaymentIntent that requires capture. An Amount of 0
// captures everything authorized; any other amount is converted with
// Currency. A request without Currency (from a workflow older than the
// field) learns it from the PaymentIntent first.
func (g *Gateway) Capture(ctx context.Context, r gateway.CaptureRequest) (gateway.Result, error) {
	if err := checkKey(r.IdempotencyKey); err != nil {
		return gateway.Result{}, err
	}
	if err := checkReference(r.Reference); err != nil {
		return gateway.Result{}, err
	}
	if r.Amount < 0 {
		return gateway.Result{}, notPositive(r.Amount)
	}
	params := &stripego.PaymentIntentCaptureParams{}
	if r.Amount > 0 {
		if r.Currency == "" {
			pi, err := g.get(ctx, r.Reference)
			if err != nil {
				return gateway.Result{}, g.fail(ctx, "capture", err)
			}
			r.Currency = strings.ToUpper(string(pi.Currency))
		}
		amount, err := toStripe(r.Currency, r.Amount)
		if err != nil {
			return gateway.Result{}, err
		}
		params.AmountToCapture = stripego.Int64(amount)
	}
	params.AddExpand(expandMethod)
	params.Context = ctx
	params.SetIdempotencyKey(r.IdempotencyKey)
	pi, err := g.api.PaymentIntents.Capture(r.Reference, params)
	if err != nil {
		return gateway.Result{}, g.fail(ctx, "capture", err)
	}
	return g.result(ctx, "capture", pi, r.Currency)
}

// Cancel cancels a PaymentIntent. Reason is passed as Stripe's
// cancellation_reason when it is one Stripe knows (requested_by_customer,
// abandoned, duplicate, fraudulent); anything else is left unset.
func (g *Gateway) Cancel(ctx context.Context, r gateway.CancelRequest) (gateway.Result, error) {
	if err := checkKey(r.IdempotencyKey); err != nil {
		return gateway.Result{}, err
	}
	if err := checkReference(r.Reference); err != nil {
		return gateway.Result{}, err
	}
	params := &stripego.PaymentIntentCancelParams{}
	if reason, ok := cancellationReason(r.Reason); ok {
		params.CancellationReason = stripego.String(string(reason))
	}
	params.AddExpand(expandMethod)
	params.Context = ctx
	params.SetIdempotencyKey(r.IdempotencyKey)
	pi, err := g.api.PaymentIntents.Cancel(r.Reference, params)
	if err != nil {
		return gateway.Result{}, g.fail(ctx, "cancel", err)
	}
	return g.result(ctx, "cancel", pi, r.Currency)
}

// Retrieve returns the PaymentIntent's current state, its amounts read in
// its own currency.
func (g *Gateway) Retrieve(ctx context.Context, reference string) (gateway.Result, error) {
	if err := checkReference(reference); err != nil {
		return gateway.Result{}, err
	}
	pi, err := g.get(ctx, reference)
	if err != nil {
		return gateway.Result{}, g.fail(ctx, "retrieve", err)
	}
	return g.result(ctx, "retrieve", pi, "")
}

// get retrieves a PaymentIntent, with its payment method expanded. The
// reference must have passed checkReference.
func (g *Gateway) get(ctx context.Context, reference string) (*stripego.PaymentIntent, error) {
	params := &stripego.PaymentIntentParams{}
	params.AddExpand(expandMethod)
	params.Context = ctx
	return g.api.PaymentIntents.Get(reference, params)
}

// result maps a PaymentIntent Stripe returned for a payment in currency
// ("" if unknown); an answer that cannot be read exactly is logged at error
// level, as it means Stripe and this package disagree about amounts.
func (g *Gateway) result(ctx context.Context, op string, pi *stripego.PaymentIntent, currency string) (gateway.Result, error) {
	res, err := resultOf(pi, currency)
	if err != nil {
		return gateway.Result{}, g.unreadable(ctx, op, err)
	}
	return res, nil
}

// unreadable logs an answer that could not be read exactly and returns its
// error.
func (g *Gateway) unreadable(ctx context.Context, op string, err error) error {
	ge := classify(err)
	g.log.ErrorContext(ctx, "stripe: answer not readable exactly", "op", op, "code", ge.Code, "error", ge.Message)
	return ge
}

// fail classifies err and logs it once.
func (g *Gateway) fail(ctx context.Context, op string, err error) error {
	ge := classify(err)
	g.log.DebugContext(ctx, "stripe: call failed", "op", op, "kind", kindName(ge.Kind),
		"code", ge.Code, "http_status", ge.StatusCode, "error", ge.Message)
	return ge
}

// checkKey refuses a call without a usable idempotency key: without one a
// retried activity could charge twice, and stripe-go refuses a key longer
// than Stripe's limit with an error that would otherwise look transient.
func checkKey(key string) error {
	switch {
	case strings.TrimSpace(key) == "":
		return &gateway.Error{Kind: gateway.Invalid, Code: "idempotency_key_missing",
			Message: "stripe: an idempotency key is required"}
	case len(key) > maxIdempotencyKey:
		return &gateway.Error{Kind: gateway.Invalid, Code: "idempotency_key_too_long",
			Message: fmt.Sprintf("stripe: idempotency key is %d characters, at most %d allowed", len(key), maxIdempotencyKey)}
	}
	return nil
}

// checkReference refuses a reference that is not an object id before it is
// put into a URL path.
func checkReference(ref string) error {
	if !gateway.LooksLikeID(ref) {
		return &gateway.Error{Kind: gateway.Invalid, Code: "resource_missing",
			Message: fmt.Sprintf("stripe: invalid PaymentIntent id %q", ref)}
	}
	return nil
}

// cancellationReason maps a cancel reason onto Stripe's enumeration.
func cancellationReason(reason string) (stripego.PaymentIntentCancellationReason, bool) {
	switch r := stripego.PaymentIntentCancellationReason(strings.ToLower(strings.TrimSpace(reason))); r {
	case stripego.PaymentIntentCancellationReasonRequestedByCustomer,
		stripego.PaymentIntentCancellationReasonAbandoned,
		stripego.PaymentIntentCancellationReasonDuplicate,
		stripego.PaymentIntentCancellationReasonFraudulent:
		return r, true
	}
	return "", false
}

// resultOf maps a PaymentIntent onto a gateway.Result, its amounts
// converted into ISO minor units of the PaymentIntent's own currency. The
// payment's currency (want, "" if unknown) stands in when the
// PaymentIntent names none, and a PaymentIntent in another currency is an
// error (CodeUnexpectedAnswer): its amounts would be read in the wrong
// unit.
func resultOf(pi *stripego.PaymentIntent, want string) (gateway.Result, error) {
	res := gateway.Result{
		Reference:        pi.ID,
		Status:           statusOf(pi.Status),
		Amount:           pi.Amount,
		AmountCapturable: pi.AmountCapturable,
		AmountReceived:   pi.AmountReceived,
		Method:           methodOf(pi),
	}
	u, err := answerUnits(pi.Currency, want)
	if err != nil {
		return gateway.Result{}, err
	}
	if err := fromStripe(u, &res.Amount, &res.AmountCapturable, &res.AmountReceived); err != nil {
		return gateway.Result{}, err
	}
	if res.Status == gateway.StatusRequiresAction && pi.NextAction != nil && pi.NextAction.RedirectToURL != nil {
		res.RedirectURL = pi.NextAction.RedirectToURL.URL
	}
	if res.Status == gateway.StatusFailed {
		res.FailureCode, res.FailureMessage = failureOf(pi.LastPaymentError)
	}
	return res, nil
}

// statusOf maps Stripe's PaymentIntent status. requires_payment_method after
// a confirm means the attempt failed; requires_confirmation does not happen
// here (every PaymentIntent is confirmed at creation) and, like any status
// this package does not know, is reported as processing.
func statusOf(s stripego.PaymentIntentStatus) gateway.Status {
	switch s {
	case stripego.PaymentIntentStatusSucceeded:
		return gateway.StatusSucceeded
	case stripego.PaymentIntentStatusRequiresCapture:
		return gateway.StatusRequiresCapture
	case stripego.PaymentIntentStatusRequiresAction:
		return gateway.StatusRequiresAction
	case stripego.PaymentIntentStatusRequiresPaymentMethod:
		return gateway.StatusFailed
	case stripego.PaymentIntentStatusCanceled:
		return gateway.StatusCanceled
	default:
		return gateway.StatusProcessing
	}
}

// genericFailure is the failure code of a failed PaymentIntent that carries
// no last_payment_error.
const genericFailure = "payment_failed"

// failureOf returns the failure code (decline code first, as it is the more
// precise) and message of a payment error.
func failureOf(e *stripego.Error) (code, message string) {
	if e == nil {
		return genericFailure, "The payment failed."
	}
	code = string(e.DeclineCode)
	if code == "" {
		code = string(e.Code)
	}
	if code == "" {
		code = genericFailure
	}
	return code, e.Msg
}

// methodOf returns the instrument's details from the expanded payment
// method, else from the expanded latest charge.
func methodOf(pi *stripego.PaymentIntent) gateway.MethodDetails {
	if m := methodOfPM(pi.PaymentMethod); m.Type != "" {
		return m
	}
	if ch := pi.LatestCharge; ch != nil && ch.PaymentMethodDetails != nil {
		if c := ch.PaymentMethodDetails.Card; c != nil {
			return gateway.MethodDetails{Type: "card", Brand: string(c.Brand), Last4: c.Last4,
				ExpMonth: int32(c.ExpMonth), ExpYear: int32(c.ExpYear)}
		}
		if t := ch.PaymentMethodDetails.Type; t != "" {
			return gateway.MethodDetails{Type: string(t)}
		}
	}
	return gateway.MethodDetails{}
}

// methodOfPM maps an expanded PaymentMethod; an unexpanded one (id only)
// gives nothing.
func methodOfPM(pm *stripego.PaymentMethod) gateway.MethodDetails {
	if pm == nil {
		return gateway.MethodDetails{}
	}
	if c := pm.Card; c != nil {
		return gateway.MethodDetails{Type: "card", Brand: string(c.Brand), Last4: c.Last4,
			ExpMonth: int32(c.ExpMonth), ExpYear: int32(c.ExpYear)}
	}
	return gateway.MethodDetails{Type: string(pm.Type)}
}

// leveledLogger sends stripe-go's log lines to slog at debug level: this
// package classifies and reports failures itself, so stripe-go's own error
// lines would only repeat them.
type leveledLogger struct{ l *slog.Logger }

func (a leveledLogger) logf(format string, v []any) {
	if a.l.Enabled(context.Background(), slog.LevelDebug) {
		a.l.Debug("stripe-go: " + fmt.Sprintf(format, v...))
	}
}

// Debugf implements stripe.LeveledLoggerInterface.
func (a leveledLogger) Debugf(format string, v ...any) { a.logf(format, v) }

// Infof implements stripe.LeveledLoggerInterface.
func (a leveledLogger) Infof(format string, v ...any) { a.logf(format, v) }

// Warnf implements stripe.LeveledLoggerInterface.
func (a leveledLogger) Warnf(format string, v ...any) { a.logf(format, v) }

// Errorf implements stripe.LeveledLoggerInterface.
func (a leveledLogger) Errorf(format string, v ...any) { a.logf(format, v) }
