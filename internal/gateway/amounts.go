package gateway

import (
	"errors"
	"fmt"
	"math"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/money"
)

// Units says how a gateway writes amounts of one currency. The platform's
// API and ledger always count in ISO 4217 minor units; a gateway may count in
// other units (Stripe writes ISK with two decimals, MGA with none) or refuse
// some amounts or currencies altogether. Every conversion goes through Units,
// exactly, in integers.
//
// Stripe's rules (docs.stripe.com/currencies: "Zero-decimal",
// "Three-decimal" and "Special cases"), as they bear on charges and refunds:
//   - BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF are
//     zero-decimal. All but MGA are zero-decimal in ISO too; MGA has two ISO
//     decimals, so its ISO amounts must be whole ariary (multiples of 100).
//   - ISK is zero-decimal in ISO but Stripe kept two decimals that must be
//     00: 5 ISK is written 500, and Stripe refuses anything not divisible by
//     100.
//   - BHD JOD KWD OMR TND keep ISO's three decimals, but the last digit must
//     be 0 (5.124 KWD cannot be charged; 5.120 can).
//   - HUF, TWD and UGX have special rules for payouts only; charges follow
//     the lists above.
//
// A currency Stripe does not list at all, but whose decimals are not in
// doubt, is left to Stripe to refuse (invalid_request_error, never
// retried): no money can move, and a local copy of Stripe's list, which
// varies by account country and grows, would refuse currencies Stripe
// accepts. What is refused here is what cannot be converted safely: funds
// and units of account, three-decimal currencies Stripe does not define
// (IQD, LYD), and anything with more decimals.
type Units struct {
	// Currency is the ISO 4217 currency.
	Currency money.Currency
	// Payable is false for what the gateway cannot charge in at all; Why
	// then says why.
	Payable bool
	Why     string
	// Exponent is the number of decimals the gateway writes amounts with.
	Exponent int
	// Step is what an amount in ISO minor units must be a multiple of: 10
	// for Stripe's three-decimal currencies (the last digit must be 0), 100
	// for MGA (ISO has two decimals, Stripe none); 1 otherwise.
	Step int64
}

// ErrInexact is wrapped by FromGateway's error for an amount that is not a
// whole number of ISO minor units, such as 550 for ISK at Stripe (5.5 ISK).
var ErrInexact = errors.New("amount is not a whole number of ISO minor units")

// stripeZeroDecimal are the currencies Stripe writes without decimals.
var stripeZeroDecimal = set("BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF")

// stripeThreeDecimal are the three-decimal currencies Stripe charges in; it
// requires their amounts to end in 0.
var stripeThreeDecimal = set("BHD", "JOD", "KWD", "OMR", "TND")

// stripeTwoDecimal are the currencies Stripe writes with two decimals
// although ISO 4217 gives them none. ISK became zero-decimal, and Stripe
// kept two decimals for compatibility: 5 ISK is 500, and the decimals must be
// 00.
var stripeTwoDecimal = set("ISK")

// notPayable are ISO 4217 codes no gateway charges in: funds and units of
// account (XAD, the Arab Monetary Fund's accounting dinar, is one too),
// precious metals, testing and "no currency" codes. The metals and test
// codes are not in the money table at all; the funds are.
var notPayable = set("BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW", "XAD",
	"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX")

func set(codes ...string) map[string]bool {
	m := make(map[string]bool, len(codes))
	for _, c := range codes {
		m[c] = true
	}
	return m
}

var pow10 = [...]int64{1, 10, 100, 1000, 10000, 100000}

// StripeUnits are Stripe's rules for a currency, which the sandbox follows
// too (it behaves like Stripe's test mode). An unknown code is not payable.
func StripeUnits(code string) Units {
	cur, ok := money.Lookup(code)
	if !ok {
		return Units{Currency: money.Currency{Code: code}, Why: fmt.Sprintf("%q is not an ISO 4217 currency", code)}
	}
	u := Units{Currency: cur, Payable: true, Exponent: cur.Exponent, Step: 1}
	switch {
	case notPayable[cur.Code]:
		u.Payable, u.Why = false, cur.Code+" is a fund or unit of account, not a currency payments are made in"
	case stripeZeroDecimal[cur.Code]:
		u.Exponent = 0
	case stripeTwoDecimal[cur.Code]:
		u.Exponent = 2
	case stripeThreeDecimal[cur.Code]:
		u.Step = 10
	case cur.Exponent >= 3:
		// IQD, LYD: Stripe defines no three-decimal currency but the five
		// above, so how it would write their amounts is unknown.
		u.Payable, u.Why = false, "the gateway does not charge in "+cur.Code
	}
	if u.Payable && u.Exponent < cur.Exponent {
		u.Step = max(u.Step, pow10[cur.Exponent-u.Exponent])
	}
	return u
}

// UnitsFor returns the rules of the named gateway ("stripe" or "sandbox")
// for a currency.
func UnitsFor(gatewayName, code string) Units {
	// The sandbox behaves like Stripe's test mode, amounts included; a
	// gateway with rules of its own gets a case here.
	return StripeUnits(code)
}

// Check refuses, with invalid_argument naming the field at fault, a currency
// the gateway cannot charge in (currencyField) or an amount in ISO minor
// units it cannot represent (amountField).
func (u Units) Check(currencyField, amountField string, amount int64) error {
	if !u.Payable {
		return errs.InvalidArgument(currencyField, "%s cannot be charged: %s", u.Currency.Code, u.Why)
	}
	if u.Step > 1 && amount%u.Step != 0 {
		return errs.InvalidArgument(amountField, "%s amounts must be a multiple of %d minor units at this gateway, got %d",
			u.Currency.Code, u.Step, amount)
	}
	return nil
}

// ToGateway converts an amount in ISO minor units into the gateway's units,
// exactly, after Check (with the fields "currency" and "amount").
func (u Units) ToGateway(amount int64) (int64, error) {
	if err := u.Check("currency", "amount", amount); err != nil {
		return 0, err
	}
	d := u.Exponent - u.Currency.Exponent
	switch {
	case d > 0:
		// Beyond MaxAmount the API refuses the amount anyway; the bound
		// keeps the multiplication far from overflowing.
		if amount > money.MaxAmount || amount < -money.MaxAmount {
			return 0, errs.InvalidArgument("amount", "amount %d is out of range", amount)
		}
		return amount * pow10[d], nil
	case d < 0:
		return amount / pow10[-d], nil // exact: Check required a multiple of Step
	}
	return amount, nil
}

// FromGateway converts an amount the gateway reports into ISO minor units.
// An amount the gateway should never report (ISK with decimals, ErrInexact),
// one too large to convert, or any amount of a currency the gateway does not
// charge in (its units are unknown) is an error: the result would not be
// exact. The errors are not errs.Error: they mean the gateway misbehaved,
// not that the caller asked for something wrong.
func (u Units) FromGateway(amount int64) (int64, error) {
	if !u.Payable {
		return 0, fmt.Errorf("gateway amount %d of %s cannot be converted: %s", amount, u.Currency.Code, u.Why)
	}
	d := u.Exponent - u.Currency.Exponent
	switch {
	case d > 0:
		f := pow10[d]
		if amount%f != 0 {
			return 0, fmt.Errorf("gateway amount %d %s (%d decimals): %w", amount, u.Currency.Code, u.Exponent, ErrInexact)
		}
		return amount / f, nil
	case d < 0:
		f := pow10[-d]
		if amount > math.MaxInt64/f || amount < math.MinInt64/f {
			return 0, fmt.Errorf("gateway amount %d %s is out of range", amount, u.Currency.Code)
		}
		return amount * f, nil
	}
	return amount, nil
}
