package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
)

const (
	// DefaultRetryAfter is the delay after a 429 that names none.
	DefaultRetryAfter = time.Second
	// maxRetryAfter caps a Retry-After header, so a bad value cannot park a
	// payment for hours.
	maxRetryAfter = 5 * time.Minute
)

// Stripe error codes with a kind of their own.
const (
	codeLockTimeout      = "lock_timeout"           // another request holds the object: retry
	codeIdempotencyInUse = "idempotency_key_in_use" // the same key is still being processed: retry
	codeRateLimit        = "rate_limit"
)

// Headers Stripe answers with.
const (
	headerShouldRetry = "Stripe-Should-Retry"
	headerRetryAfter  = "Retry-After"
)

// authenticationHint ends the message of a refused key.
const authenticationHint = "check STRIPE_SECRET_KEY (and STRIPE_API_BASE)"

// What a card error that names no code or message is reported as.
const (
	defaultDeclineCode    = "card_declined"
	defaultDeclineMessage = "Your card was declined."
)

// declined reports whether err is a card error (a decline during confirm),
// and if so the Result it stands for: Status failed, the decline code (or the
// error code), Stripe's message, and the PaymentIntent's id and amounts when
// Stripe returned the PaymentIntent with the error. amount is the request's,
// in ISO minor units of currency; the PaymentIntent's amounts are converted
// from Stripe's units, and an error is returned when they cannot be exactly.
func declined(err error, amount int64, currency string) (gateway.Result, bool, error) {
	var se *stripego.Error
	if !errors.As(err, &se) || se.Type != stripego.ErrorTypeCard {
		return gateway.Result{}, false, nil
	}
	res := gateway.Result{Amount: amount}
	if se.PaymentIntent != nil && se.PaymentIntent.ID != "" {
		var rerr error
		if res, rerr = resultOf(se.PaymentIntent, currency); rerr != nil {
			return gateway.Result{}, true, rerr
		}
		if res.Amount == 0 {
			res.Amount = amount
		}
	}
	res.Status = gateway.StatusFailed
	res.RedirectURL = ""
	res.AmountCapturable, res.AmountReceived = 0, 0
	if res.Method.Type == "" {
		res.Method = methodOfPM(se.PaymentMethod)
	}
	res.FailureCode = string(se.DeclineCode)
	if res.FailureCode == "" {
		res.FailureCode = string(se.Code)
	}
	if res.FailureCode == "" {
		res.FailureCode = defaultDeclineCode
	}
	res.FailureMessage = se.Msg
	if res.FailureMessage == "" {
		res.FailureMessage = defaultDeclineMessage
	}
	return res, true, nil
}

// classify turns any error of a stripe-go call into a *gateway.Error, once:
//   - 429 (Stripe's rate_limit) is RateLimited, after Retry-After or
//     DefaultRetryAfter;
//   - lock_timeout, idempotency_key_in_use, or any answer with
//     Stripe-Should-Retry: true is Transient;
//   - 401 and 403 are Invalid: a misconfigured key never heals by retrying;
//   - other 4xx (invalid_request_error, idempotency_error, a card_error
//     outside a confirm) are Invalid;
//   - 5xx, api_error, undecodable answers, network errors, timeouts and
//     anything else are Transient.
func classify(err error) *gateway.Error {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return ge
	}
	var se *stripego.Error
	if errors.As(err, &se) {
		return classifyStripe(se, err)
	}
	msg := "stripe: " + err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = "stripe: request timed out: " + err.Error()
	case errors.Is(err, context.Canceled):
		msg = "stripe: request canceled: " + err.Error()
	}
	// Network errors, timeouts and answers stripe-go could not decode (a
	// proxy's HTML 502, say) all end here.
	return &gateway.Error{Kind: gateway.Transient, Message: msg, Err: err}
}

// classifyStripe classifies an error Stripe answered.
func classifyStripe(se *stripego.Error, err error) *gateway.Error {
	status := se.HTTPStatusCode
	var header http.Header
	if se.LastResponse != nil {
		header = se.LastResponse.Header
		if status == 0 {
			status = se.LastResponse.StatusCode
		}
	}
	ge := &gateway.Error{
		Code:       string(se.Code),
		Message:    message(se),
		StatusCode: status,
		Err:        err,
	}
	shouldRetry := strings.EqualFold(header.Get(headerShouldRetry), "true")
	switch {
	case status == http.StatusTooManyRequests && ge.Code != codeLockTimeout,
		ge.Code == codeRateLimit:
		ge.Kind = gateway.RateLimited
		ge.RetryAfter = retryAfter(header, time.Now())
	case ge.Code == codeLockTimeout, ge.Code == codeIdempotencyInUse:
		ge.Kind = gateway.Transient
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		ge.Kind = gateway.Invalid
		ge.Message = fmt.Sprintf("stripe: the secret key was refused (HTTP %d): %s; %s",
			status, strings.TrimPrefix(ge.Message, "stripe: "), authenticationHint)
	case shouldRetry:
		ge.Kind = gateway.Transient
	case status >= 500, se.Type == stripego.ErrorTypeAPI:
		ge.Kind = gateway.Transient
	case status >= 400,
		se.Type == stripego.ErrorTypeInvalidRequest,
		se.Type == stripego.ErrorTypeIdempotency,
		se.Type == stripego.ErrorTypeCard:
		ge.Kind = gateway.Invalid
	default:
		ge.Kind = gateway.Transient
	}
	return ge
}

// message is Stripe's message with the parameter it names and the request
// id, for the logs and the workflow history.
func message(se *stripego.Error) string {
	var b strings.Builder
	b.WriteString("stripe: ")
	if se.Msg != "" {
		b.WriteString(se.Msg)
	} else {
		b.WriteString(string(se.Type))
	}
	if se.Param != "" {
		b.WriteString(" (param ")
		b.WriteString(se.Param)
		b.WriteString(")")
	}
	if se.RequestID != "" {
		b.WriteString(" [request ")
		b.WriteString(se.RequestID)
		b.WriteString("]")
	}
	return b.String()
}

// retryAfter reads a Retry-After header (seconds or an HTTP date), capped at
// maxRetryAfter; DefaultRetryAfter when absent or unusable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get(headerRetryAfter))
	if v == "" {
		return DefaultRetryAfter
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		d = time.Duration(min(secs, int64(maxRetryAfter/time.Second)+1)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	switch {
	case d <= 0:
		return DefaultRetryAfter
	case d > maxRetryAfter:
		return maxRetryAfter
	}
	return d
}

// kindName names an error kind for the logs.
func kindName(k gateway.ErrorKind) string {
	switch k {
	case gateway.Transient:
		return "transient"
	case gateway.RateLimited:
		return "rate_limited"
	case gateway.Invalid:
		return "invalid"
	}
	return "unknown"
}
