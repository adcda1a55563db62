package gateway

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/money"
)

// What a currency is at a gateway, as the expectation table says it.
const (
	payable     = ""            // charged in
	fund        = "fund"        // a fund or unit of account: never charged in
	unsupported = "unsupported" // a real currency whose gateway units are unknown
)

// currencyRule is the expectation for one ISO 4217 currency at Stripe (and
// so at the sandbox, which copies Stripe's rules).
type currencyRule struct {
	code string
	// iso is ISO 4217's exponent, repeated here so that a change to the
	// money table is noticed in this test as well.
	iso int
	// not is payable, fund or unsupported.
	not string
	// stripe is the number of decimals Stripe writes amounts with, and step
	// what an ISO amount must be a multiple of; both only when payable.
	stripe int
	step   int64
}

// stripeRules lists every currency of money.All(), written out from
// Stripe's documentation (docs.stripe.com/currencies), not derived from the
// code under test: a change of either the table or the rules fails here.
var stripeRules = []currencyRule{
	{code: "AED", iso: 2, stripe: 2, step: 1},
	{code: "AFN", iso: 2, stripe: 2, step: 1},
	{code: "ALL", iso: 2, stripe: 2, step: 1},
	{code: "AMD", iso: 2, stripe: 2, step: 1},
	{code: "AOA", iso: 2, stripe: 2, step: 1},
	{code: "ARS", iso: 2, stripe: 2, step: 1},
	{code: "AUD", iso: 2, stripe: 2, step: 1},
	{code: "AWG", iso: 2, stripe: 2, step: 1},
	{code: "AZN", iso: 2, stripe: 2, step: 1},
	{code: "BAM", iso: 2, stripe: 2, step: 1},
	{code: "BBD", iso: 2, stripe: 2, step: 1},
	{code: "BDT", iso: 2, stripe: 2, step: 1},
	{code: "BHD", iso: 3, stripe: 3, step: 10}, // three-decimal: last digit 0
	{code: "BIF", iso: 0, stripe: 0, step: 1},
	{code: "BMD", iso: 2, stripe: 2, step: 1},
	{code: "BND", iso: 2, stripe: 2, step: 1},
	{code: "BOB", iso: 2, stripe: 2, step: 1},
	{code: "BOV", iso: 2, not: fund},
	{code: "BRL", iso: 2, stripe: 2, step: 1},
	{code: "BSD", iso: 2, stripe: 2, step: 1},
	{code: "BTN", iso: 2, stripe: 2, step: 1},
	{code: "BWP", iso: 2, stripe: 2, step: 1},
	{code: "BYN", iso: 2, stripe: 2, step: 1},
	{code: "BZD", iso: 2, stripe: 2, step: 1},
	{code: "CAD", iso: 2, stripe: 2, step: 1},
	{code: "CDF", iso: 2, stripe: 2, step: 1},
	{code: "CHE", iso: 2, not: fund},
	{code: "CHF", iso: 2, stripe: 2, step: 1},
	{code: "CHW", iso: 2, not: fund},
	{code: "CLF", iso: 4, not: fund},
	{code: "CLP", iso: 0, stripe: 0, step: 1},
	{code: "CNY", iso: 2, stripe: 2, step: 1},
	{code: "COP", iso: 2, stripe: 2, step: 1},
	{code: "COU", iso: 2, not: fund},
	{code: "CRC", iso: 2, stripe: 2, step: 1},
	{code: "CUP", iso: 2, stripe: 2, step: 1},
	{code: "CVE", iso: 2, stripe: 2, step: 1},
	{code: "CZK", iso: 2, stripe: 2, step: 1},
	{code: "DJF", iso: 0, stripe: 0, step: 1},
	{code: "DKK", iso: 2, stripe: 2, step: 1},
	{code: "DOP", iso: 2, stripe: 2, step: 1},
	{code: "DZD", iso: 2, stripe: 2, step: 1},
	{code: "EGP", iso: 2, stripe: 2, step: 1},
	{code: "ERN", iso: 2, stripe: 2, step: 1},
	{code: "ETB", iso: 2, stripe: 2, step: 1},
	{code: "EUR", iso: 2, stripe: 2, step: 1},
	{code: "FJD", iso: 2, stripe: 2, step: 1},
	{code: "FKP", iso: 2, stripe: 2, step: 1},
	{code: "GBP", iso: 2, stripe: 2, step: 1},
	{code: "GEL", iso: 2, stripe: 2, step: 1},
	{code: "GHS", iso: 2, stripe: 2, step: 1},
	{code: "GIP", iso: 2, stripe: 2, step: 1},
	{code: "GMD", iso: 2, stripe: 2, step: 1},
	{code: "GNF", iso: 0, stripe: 0, step: 1},
	{code: "GTQ", iso: 2, stripe: 2, step: 1},
	{code: "GYD", iso: 2, stripe: 2, step: 1},
	{code: "HKD", iso: 2, stripe: 2, step: 1},
	{code: "HNL", iso: 2, stripe: 2, step: 1},
	{code: "HTG", iso: 2, stripe: 2, step: 1},
	{code: "HUF", iso: 2, stripe: 2, step: 1}, // zero-decimal for payouts only
	{code: "IDR", iso: 2, stripe: 2, step: 1},
	{code: "ILS", iso: 2, stripe: 2, step: 1},
	{code: "INR", iso: 2, stripe: 2, step: 1},
	{code: "IQD", iso: 3, not: unsupported},
	{code: "IRR", iso: 2, stripe: 2, step: 1},
	{code: "ISK", iso: 0, stripe: 2, step: 1}, // two decimals at Stripe, always 00
	{code: "JMD", iso: 2, stripe: 2, step: 1},
	{code: "JOD", iso: 3, stripe: 3, step: 10},
	{code: "JPY", iso: 0, stripe: 0, step: 1},
	{code: "KES", iso: 2, stripe: 2, step: 1},
	{code: "KGS", iso: 2, stripe: 2, step: 1},
	{code: "KHR", iso: 2, stripe: 2, step: 1},
	{code: "KMF", iso: 0, stripe: 0, step: 1},
	{code: "KPW", iso: 2, stripe: 2, step: 1},
	{code: "KRW", iso: 0, stripe: 0, step: 1},
	{code: "KWD", iso: 3, stripe: 3, step: 10},
	{code: "KYD", iso: 2, stripe: 2, step: 1},
	{code: "KZT", iso: 2, stripe: 2, step: 1},
	{code: "LAK", iso: 2, stripe: 2, step: 1},
	{code: "LBP", iso: 2, stripe: 2, step: 1},
	{code: "LKR", iso: 2, stripe: 2, step: 1},
	{code: "LRD", iso: 2, stripe: 2, step: 1},
	{code: "LSL", iso: 2, stripe: 2, step: 1},
	{code: "LYD", iso: 3, not: unsupported},
	{code: "MAD", iso: 2, stripe: 2, step: 1},
	{code: "MDL", iso: 2, stripe: 2, step: 1},
	{code: "MGA", iso: 2, stripe: 0, step: 100}, // zero-decimal at Stripe, two in ISO
	{code: "MKD", iso: 2, stripe: 2, step: 1},
	{code: "MMK", iso: 2, stripe: 2, step: 1},
	{code: "MNT", iso: 2, stripe: 2, step: 1},
	{code: "MOP", iso: 2, stripe: 2, step: 1},
	{code: "MRU", iso: 2, stripe: 2, step: 1},
	{code: "MUR", iso: 2, stripe: 2, step: 1},
	{code: "MVR", iso: 2, stripe: 2, step: 1},
	{code: "MWK", iso: 2, stripe: 2, step: 1},
	{code: "MXN", iso: 2, stripe: 2, step: 1},
	{code: "MXV", iso: 2, not: fund},
	{code: "MYR", iso: 2, stripe: 2, step: 1},
	{code: "MZN", iso: 2, stripe: 2, step: 1},
	{code: "NAD", iso: 2, stripe: 2, step: 1},
	{code: "NGN", iso: 2, stripe: 2, step: 1},
	{code: "NIO", iso: 2, stripe: 2, step: 1},
	{code: "NOK", iso: 2, stripe: 2, step: 1},
	{code: "NPR", iso: 2, stripe: 2, step: 1},
	{code: "NZD", iso: 2, stripe: 2, step: 1},
	{code: "OMR", iso: 3, stripe: 3, step: 10},
	{code: "PAB", iso: 2, stripe: 2, step: 1},
	{code: "PEN", iso: 2, stripe: 2, step: 1},
	{code: "PGK", iso: 2, stripe: 2, step: 1},
	{code: "PHP", iso: 2, stripe: 2, step: 1},
	{code: "PKR", iso: 2, stripe: 2, step: 1},
	{code: "PLN", iso: 2, stripe: 2, step: 1},
	{code: "PYG", iso: 0, stripe: 0, step: 1},
	{code: "QAR", iso: 2, stripe: 2, step: 1},
	{code: "RON", iso: 2, stripe: 2, step: 1},
	{code: "RSD", iso: 2, stripe: 2, step: 1},
	{code: "RUB", iso: 2, stripe: 2, step: 1},
	{code: "RWF", iso: 0, stripe: 0, step: 1},
	{code: "SAR", iso: 2, stripe: 2, step: 1},
	{code: "SBD", iso: 2, stripe: 2, step: 1},
	{code: "SCR", iso: 2, stripe: 2, step: 1},
	{code: "SDG", iso: 2, stripe: 2, step: 1},
	{code: "SEK", iso: 2, stripe: 2, step: 1},
	{code: "SGD", iso: 2, stripe: 2, step: 1},
	{code: "SHP", iso: 2, stripe: 2, step: 1},
	{code: "SLE", iso: 2, stripe: 2, step: 1},
	{code: "SOS", iso: 2, stripe: 2, step: 1},
	{code: "SRD", iso: 2, stripe: 2, step: 1},
	{code: "SSP", iso: 2, stripe: 2, step: 1},
	{code: "STN", iso: 2, stripe: 2, step: 1},
	{code: "SVC", iso: 2, stripe: 2, step: 1},
	{code: "SYP", iso: 2, stripe: 2, step: 1},
	{code: "SZL", iso: 2, stripe: 2, step: 1},
	{code: "THB", iso: 2, stripe: 2, step: 1},
	{code: "TJS", iso: 2, stripe: 2, step: 1},
	{code: "TMT", iso: 2, stripe: 2, step: 1},
	{code: "TND", iso: 3, stripe: 3, step: 10},
	{code: "TOP", iso: 2, stripe: 2, step: 1},
	{code: "TRY", iso: 2, stripe: 2, step: 1},
	{code: "TTD", iso: 2, stripe: 2, step: 1},
	{code: "TWD", iso: 2, stripe: 2, step: 1}, // zero-decimal for payouts only
	{code: "TZS", iso: 2, stripe: 2, step: 1},
	{code: "UAH", iso: 2, stripe: 2, step: 1},
	{code: "UGX", iso: 0, stripe: 0, step: 1}, // two-decimal for payouts only
	{code: "USD", iso: 2, stripe: 2, step: 1},
	{code: "USN", iso: 2, not: fund},
	{code: "UYI", iso: 0, not: fund},
	{code: "UYU", iso: 2, stripe: 2, step: 1},
	{code: "UYW", iso: 4, not: fund},
	{code: "UZS", iso: 2, stripe: 2, step: 1},
	{code: "VED", iso: 2, stripe: 2, step: 1},
	{code: "VES", iso: 2, stripe: 2, step: 1},
	{code: "VND", iso: 0, stripe: 0, step: 1},
	{code: "VUV", iso: 0, stripe: 0, step: 1},
	{code: "WST", iso: 2, stripe: 2, step: 1},
	{code: "XAD", iso: 2, not: fund}, // Arab Accounting Dinar: a unit of account
	{code: "XAF", iso: 0, stripe: 0, step: 1},
	{code: "XCD", iso: 2, stripe: 2, step: 1},
	{code: "XCG", iso: 2, stripe: 2, step: 1},
	{code: "XOF", iso: 0, stripe: 0, step: 1},
	{code: "XPF", iso: 0, stripe: 0, step: 1},
	{code: "YER", iso: 2, stripe: 2, step: 1},
	{code: "ZAR", iso: 2, stripe: 2, step: 1},
	{code: "ZMW", iso: 2, stripe: 2, step: 1},
	{code: "ZWG", iso: 2, stripe: 2, step: 1},
}

// whyWords is what Units.Why must say for each reason a currency is not
// payable.
var whyWords = map[string]string{
	fund:        "fund or unit of account",
	unsupported: "does not charge in",
}

// gatewayNames are the gateways whose rules the table describes: the
// sandbox copies Stripe's.
var gatewayNames = []string{"stripe", "sandbox"}

func TestRulesListEveryCurrency(t *testing.T) {
	listed := make(map[string]bool, len(stripeRules))
	for _, r := range stripeRules {
		if listed[r.code] {
			t.Errorf("%s listed twice", r.code)
		}
		listed[r.code] = true
	}
	for _, c := range money.All() {
		if !listed[c.Code] {
			t.Errorf("%s is in money.All() but not in stripeRules: add it with its Stripe rules", c.Code)
		}
		delete(listed, c.Code)
	}
	for code := range listed {
		t.Errorf("%s is in stripeRules but not in money.All()", code)
	}
}

func TestUnitsEveryCurrency(t *testing.T) {
	for _, want := range stripeRules {
		cur, ok := money.Lookup(want.code)
		if !ok {
			continue // reported by TestRulesListEveryCurrency
		}
		if cur.Exponent != want.iso {
			t.Errorf("%s: ISO exponent %d, table says %d", want.code, cur.Exponent, want.iso)
			continue
		}
		stripe := StripeUnits(want.code)
		for _, name := range gatewayNames {
			for _, code := range []string{want.code, strings.ToLower(want.code)} {
				if got := UnitsFor(name, code); got != stripe {
					t.Errorf("UnitsFor(%q, %q) = %+v, want Stripe's %+v", name, code, got, stripe)
				}
			}
		}
		t.Run(want.code, func(t *testing.T) {
			u := stripe
			if u.Currency != cur {
				t.Errorf("Currency %+v, want %+v", u.Currency, cur)
			}
			if want.not != payable {
				checkNotPayable(t, u, want)
				return
			}
			if !u.Payable || u.Why != "" {
				t.Fatalf("Payable %v (%q), want payable", u.Payable, u.Why)
			}
			if u.Exponent != want.stripe || u.Step != want.step {
				t.Fatalf("Exponent %d Step %d, want %d and %d", u.Exponent, u.Step, want.stripe, want.step)
			}
			checkConversions(t, u, want)
		})
	}
}

// checkNotPayable checks that every use of a currency the gateway does not
// charge in is refused, naming the currency field.
func checkNotPayable(t *testing.T, u Units, want currencyRule) {
	t.Helper()
	if u.Payable {
		t.Fatalf("payable, want not payable (%s)", want.not)
	}
	if !strings.Contains(u.Why, whyWords[want.not]) || !strings.Contains(u.Why, want.code) {
		t.Errorf("Why %q, want it to name %s and say %q", u.Why, want.code, whyWords[want.not])
	}
	wantField(t, u.Check("payment_currency", "payment_amount", 100), "payment_currency")
	_, err := u.ToGateway(100)
	wantField(t, err, "currency")
	if _, err := u.FromGateway(100); err == nil {
		t.Error("FromGateway converted an amount of a currency the gateway does not charge in")
	}
}

// checkConversions checks, for a payable currency, that sample amounts
// convert exactly both ways, that amounts off the step are refused naming
// the amount field, that inexact gateway amounts are refused, and that
// MaxAmount does not overflow.
func checkConversions(t *testing.T, u Units, want currencyRule) {
	t.Helper()
	// factor is what an ISO amount is multiplied by (shift > 0) or divided
	// by (shift < 0) to get Stripe's amount.
	shift := want.stripe - want.iso
	toStripe := func(iso int64) int64 {
		switch {
		case shift > 0:
			return iso * int64(math.Pow10(shift))
		case shift < 0:
			return iso / int64(math.Pow10(-shift))
		}
		return iso
	}
	largest := money.MaxAmount - money.MaxAmount%want.step
	for _, iso := range []int64{want.step, 7 * want.step, 100 * want.step, 12_345 * want.step, largest} {
		if err := u.Check("currency", "amount", iso); err != nil {
			t.Errorf("Check(%d): %v", iso, err)
		}
		got, err := u.ToGateway(iso)
		if err != nil || got != toStripe(iso) {
			t.Errorf("ToGateway(%d) = %d, %v; want %d", iso, got, err, toStripe(iso))
			continue
		}
		back, err := u.FromGateway(got)
		if err != nil || back != iso {
			t.Errorf("FromGateway(%d) = %d, %v; want %d back", got, back, err, iso)
		}
	}
	if want.step > 1 {
		for _, off := range []int64{1, want.step + 1, want.step*3 - 1, largest + 1} {
			wantField(t, u.Check("capture_currency", "capture_amount", off), "capture_amount")
			_, err := u.ToGateway(off)
			wantField(t, err, "amount")
		}
	}
	if shift > 0 {
		// Half a unit more than a whole ISO amount: not exact.
		inexact := toStripe(5) + int64(math.Pow10(shift))/2
		if got, err := u.FromGateway(inexact); !errors.Is(err, ErrInexact) {
			t.Errorf("FromGateway(%d) = %d, %v; want ErrInexact", inexact, got, err)
		}
	}
}

// wantField asserts err is an invalid_argument naming field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Errorf("error %v (%T), want an *errs.Error naming %q", err, err, field)
		return
	}
	if e.Kind != errs.KindInvalidArgument || e.Field != field {
		t.Errorf("error kind %d field %q (%s), want invalid_argument naming %q", e.Kind, e.Field, e.Message, field)
	}
}

// TestStripeExamples pins the examples of Stripe's documentation and of the
// issue, literally.
func TestStripeExamples(t *testing.T) {
	for _, tc := range []struct {
		code      string
		iso, sent int64
	}{
		{"ISK", 5, 500},        // "to charge 5 ISK, provide an amount value of 500"
		{"ISK", 40, 4000},      // whole krónur only
		{"JPY", 500, 500},      // "to charge ¥500, provide an amount value of 500"
		{"USD", 1000, 1000},    // "to charge 10 USD, provide an amount value of 1000"
		{"KWD", 5120, 5120},    // "5.124 KWD must be rounded to 5120 or 5130"
		{"MGA", 150_000, 1500}, // 1,500 ariary
		{"usd", 1234, 1234},    // any case
	} {
		got, err := StripeUnits(tc.code).ToGateway(tc.iso)
		if err != nil || got != tc.sent {
			t.Errorf("%s: ToGateway(%d) = %d, %v; want %d", tc.code, tc.iso, got, err, tc.sent)
		}
		back, err := StripeUnits(tc.code).FromGateway(tc.sent)
		if err != nil || back != tc.iso {
			t.Errorf("%s: FromGateway(%d) = %d, %v; want %d", tc.code, tc.sent, back, err, tc.iso)
		}
	}
	_, err := StripeUnits("KWD").ToGateway(5124)
	wantField(t, err, "amount")
	_, err = StripeUnits("MGA").ToGateway(150_050) // half an ariary
	wantField(t, err, "amount")
	for _, inexact := range []int64{550, 501, 599, -550} {
		if _, err := StripeUnits("ISK").FromGateway(inexact); !errors.Is(err, ErrInexact) {
			t.Errorf("FromGateway(%d ISK) = %v, want ErrInexact", inexact, err)
		}
	}
}

func TestUnknownCodesAreNotPayable(t *testing.T) {
	for _, code := range []string{"", "XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XSU", "XUA",
		"HRK", "BGN", "ANG", "abc", "US", "USDX", "12$"} {
		for _, name := range gatewayNames {
			u := UnitsFor(name, code)
			if u.Payable || !strings.Contains(u.Why, "not an ISO 4217 currency") {
				t.Errorf("UnitsFor(%q, %q) = %+v, want not payable as not an ISO 4217 currency", name, code, u)
			}
			wantField(t, u.Check("currency", "amount", 100), "currency")
			if _, err := u.FromGateway(100); err == nil {
				t.Errorf("%q: FromGateway converted an amount of an unknown currency", code)
			}
		}
	}
}

func TestToGatewayRange(t *testing.T) {
	// ISK multiplies; past MaxAmount it refuses rather than risk overflow.
	isk := StripeUnits("ISK")
	for _, amount := range []int64{money.MaxAmount + 1, math.MaxInt64, -money.MaxAmount - 1, math.MinInt64} {
		_, err := isk.ToGateway(amount)
		wantField(t, err, "amount")
	}
	if got, err := isk.ToGateway(money.MaxAmount); err != nil || got != money.MaxAmount*100 {
		t.Errorf("ToGateway(MaxAmount ISK) = %d, %v", got, err)
	}
}

func TestFromGatewayRange(t *testing.T) {
	// MGA multiplies on the way back; an absurd report must not wrap.
	mga := StripeUnits("MGA")
	for _, amount := range []int64{math.MaxInt64/100 + 1, math.MaxInt64, math.MinInt64} {
		if got, err := mga.FromGateway(amount); err == nil {
			t.Errorf("FromGateway(%d MGA) = %d, want an out-of-range error", amount, got)
		}
	}
	if got, err := mga.FromGateway(math.MaxInt64 / 100); err != nil || got != math.MaxInt64/100*100 {
		t.Errorf("FromGateway(MaxInt64/100 MGA) = %d, %v", got, err)
	}
}
