package stripe

import (
	"errors"
	"fmt"
	"strings"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/gateway"
)

// Codes of the errors this package makes itself, before or after a request.
// They are stable: workflows, logs and dashboards may match on them.
const (
	// CodeAmountInvalid (Invalid, nothing sent): an amount Stripe cannot
	// represent in its currency, such as 1.234 KWD (Stripe wants the last of
	// three decimals to be 0) or half an ariary (MGA is zero-decimal at
	// Stripe), or a refund or capture amount that is not positive. The
	// message names the request field, "amount".
	CodeAmountInvalid = "amount_invalid"
	// CodeCurrencyNotSupported (Invalid, nothing sent): a currency this
	// gateway does not charge in: funds and units of account, three-decimal
	// currencies Stripe does not define (IQD, LYD), and codes that are not
	// ISO 4217. The message names the request field, "currency".
	CodeCurrencyNotSupported = "currency_not_supported"
	// CodeUnexpectedAnswer (Transient): Stripe answered, but with amounts
	// that do not convert exactly into ISO minor units, or in a currency
	// other than the payment's. The call may have taken effect at Stripe,
	// so this is never reported as a refusal: the caller retries and, if it
	// persists, an operator looks.
	CodeUnexpectedAnswer = "unexpected_answer"
)

// toStripe converts an amount in ISO minor units of currency into Stripe's
// units, or refuses it before any request with CodeCurrencyNotSupported or
// CodeAmountInvalid. The errs.Error that names the field ("currency" or
// "amount") is kept as the cause.
func toStripe(currency string, amount int64) (int64, error) {
	v, err := gateway.UnitsFor(Name, currency).ToGateway(amount)
	if err == nil {
		return v, nil
	}
	code, field, msg := CodeAmountInvalid, "amount", err.Error()
	var e *errs.Error
	if errors.As(err, &e) {
		if e.Field == "currency" {
			code = CodeCurrencyNotSupported
		}
		if e.Field != "" {
			field = e.Field
		}
		msg = e.Message
	}
	return 0, &gateway.Error{Kind: gateway.Invalid, Code: code,
		Message: fmt.Sprintf("stripe: %s: %s", field, msg), Err: err}
}

// notPositive refuses an amount that must be greater than zero.
func notPositive(amount int64) error {
	err := errs.InvalidArgument("amount", "amount must be greater than 0, got %d", amount)
	return &gateway.Error{Kind: gateway.Invalid, Code: CodeAmountInvalid, Message: "stripe: amount: " + err.Error(), Err: err}
}

// answerUnits returns the units to read amounts of an object Stripe
// returned in currency got, for a request about a payment in currency want
// ("" when the request does not say, as from a workflow older than the
// field). An object without a currency is read in want's.
func answerUnits(got stripego.Currency, want string) (gateway.Units, error) {
	code := strings.ToUpper(string(got))
	switch {
	case code == "" && want == "":
		return gateway.Units{}, unexpected("the answer names no currency")
	case code == "":
		code = want
	case want != "" && !strings.EqualFold(code, want):
		return gateway.Units{}, unexpected(fmt.Sprintf("the answer is in %s, the payment in %s", code, strings.ToUpper(want)))
	}
	return gateway.UnitsFor(Name, code), nil
}

// fromStripe converts Stripe amounts, in place, into ISO minor units.
func fromStripe(u gateway.Units, amounts ...*int64) error {
	for _, a := range amounts {
		v, err := u.FromGateway(*a)
		if err != nil {
			return unexpected(err.Error())
		}
		*a = v
	}
	return nil
}

// unexpected is the error of an answer this package cannot read exactly.
func unexpected(why string) *gateway.Error {
	return &gateway.Error{Kind: gateway.Transient, Code: CodeUnexpectedAnswer,
		Message: "stripe: unexpected answer: " + why}
}
