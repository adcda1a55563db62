// Package money holds the platform's currencies and the rules for amounts.
//
// An amount is always an int64 count of the currency's minor units (cents for
// USD, yen for JPY, fils for KWD) paired with an ISO 4217 alphabetic code.
// Nothing here uses floating point: formatting and parsing are exact integer
// arithmetic.
package money

import (
	"strconv"

	"github.com/payments-platform/payments/internal/errs"
)

// Currency is one ISO 4217 currency or fund.
type Currency struct {
	// Code is the alphabetic code, upper case, e.g. "USD".
	Code string
	// Numeric is the ISO 4217 numeric code, e.g. 840 for USD.
	Numeric int
	// Exponent is the number of decimal places of the minor unit: 2 for
	// USD (cents), 0 for JPY, 3 for KWD, 4 for CLF.
	Exponent int
	// Name is the English name from the ISO 4217 list, e.g. "US Dollar".
	Name string
}

// MaxAmount is the largest amount, in minor units, the API accepts anywhere.
const MaxAmount int64 = 99_999_999_999

// maxExponent bounds Currency.Exponent; pow10 covers it.
const maxExponent = 4

var pow10 = [maxExponent + 1]uint64{1, 10, 100, 1000, 10000}

// index maps a code's three letters (A-Z each) to 1 + its position in
// table; 0 means unknown.
var index [26 * 26 * 26]uint8

// init builds the index. The table's invariants (three letters, unique,
// sorted, exponents within pow10, fewer than 256 entries) are checked by
// TestTable rather than at start.
func init() {
	for i, c := range table {
		if k, ok := key(c.Code); ok {
			index[k] = uint8(i + 1)
		}
	}
}

// key returns the index slot of a three-letter code in either case.
func key(code string) (int, bool) {
	if len(code) != 3 {
		return 0, false
	}
	k := 0
	for i := range 3 {
		b := code[i] | 0x20 // ASCII lower case; non-letters stay out of range
		if b < 'a' || b > 'z' {
			return 0, false
		}
		k = k*26 + int(b-'a')
	}
	return k, true
}

// Lookup returns the currency with the given alphabetic code, in any case.
// It reports false for anything that is not an active ISO 4217 code with a
// minor unit, including XXX, XTS, the precious metals and withdrawn codes.
// It does not allocate.
func Lookup(code string) (Currency, bool) {
	k, ok := key(code)
	if !ok || index[k] == 0 {
		return Currency{}, false
	}
	return table[index[k]-1], true
}

// Normalize looks up code, in any case, for the request field named field.
// The returned Currency's Code is upper case. An unknown or malformed code is
// an errs.InvalidArgument error naming field.
func Normalize(field, code string) (Currency, error) {
	c, ok := Lookup(code)
	if !ok {
		return Currency{}, errs.InvalidArgument(field, "unknown currency %q: want an ISO 4217 code such as USD", code)
	}
	return c, nil
}

// CheckAmount checks that amount, in minor units, is greater than zero and at
// most MaxAmount. Otherwise it returns an errs.InvalidArgument error naming
// field.
func CheckAmount(field string, amount int64) error {
	name := field
	if name == "" {
		name = "amount"
	}
	switch {
	case amount <= 0:
		return errs.InvalidArgument(field, "%s must be greater than 0, got %d", name, amount)
	case amount > MaxAmount:
		return errs.InvalidArgument(field, "%s must be at most %d minor units, got %d", name, MaxAmount, amount)
	}
	return nil
}

// All returns every known currency, sorted by code. The slice is a copy the
// caller may change.
func All() []Currency {
	out := make([]Currency, len(table))
	copy(out, table[:])
	return out
}

// Format renders amount, in minor units of c, as a decimal number in major
// units followed by a space and the code: "12.34 USD", "1000 JPY",
// "1.500 KWD", "-0.05 EUR". There is no grouping of thousands. The result
// parses back to amount with ParseMajor. c should come from Lookup,
// Normalize or All; a zero Currency formats as a bare integer.
func Format(amount int64, c Currency) string {
	exp := c.Exponent
	if exp < 0 || exp > maxExponent {
		exp = 0
	}
	u := uint64(amount)
	if amount < 0 {
		u = -u // also right for math.MinInt64
	}
	var buf [48]byte
	b := buf[:0]
	if amount < 0 {
		b = append(b, '-')
	}
	b = strconv.AppendUint(b, u/pow10[exp], 10)
	if exp > 0 {
		b = append(b, '.')
		frac := u % pow10[exp]
		for p := pow10[exp] / 10; p > 0; p /= 10 {
			b = append(b, byte('0'+frac/p%10))
		}
	}
	if c.Code != "" {
		b = append(b, ' ')
		b = append(b, c.Code...)
	}
	return string(b)
}

// ParseMajor parses a decimal amount in major units of c, such as "12.34"
// for USD, and returns it in minor units (1234). It accepts an optional
// leading '-' or '+', at least one integer digit and, if there is a '.', one
// to c.Exponent decimals; "1000" for JPY has none. A trailing space and the
// currency's own code, as Format writes, is allowed: "12.34 USD". It refuses
// more decimals than the currency has, grouping, exponents and values outside
// int64; it does not apply MaxAmount (see CheckAmount). Errors are
// errs.InvalidArgument with no field.
func ParseMajor(s string, c Currency) (int64, error) {
	num := s
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			num = s[:i]
			if other, ok := Lookup(s[i+1:]); !ok || other.Code != c.Code {
				return 0, errs.InvalidArgument("", "malformed amount %q: want a number optionally followed by a space and %s", s, c.Code)
			}
			break
		}
	}
	exp := c.Exponent
	if exp < 0 || exp > maxExponent {
		return 0, errs.InvalidArgument("", "currency %q has no valid exponent", c.Code)
	}
	neg := false
	if num != "" && (num[0] == '-' || num[0] == '+') {
		neg = num[0] == '-'
		num = num[1:]
	}
	intPart, fracPart := num, ""
	hasPoint := false
	for i := 0; i < len(num); i++ {
		if num[i] == '.' {
			intPart, fracPart, hasPoint = num[:i], num[i+1:], true
			break
		}
	}
	if intPart == "" || !allDigits(intPart) || (hasPoint && (fracPart == "" || !allDigits(fracPart))) {
		return 0, errs.InvalidArgument("", "malformed amount %q: want digits with an optional '.' and decimals, such as 12.34", s)
	}
	if len(fracPart) > exp {
		if exp == 0 {
			return 0, errs.InvalidArgument("", "amount %q has decimals but %s has no minor unit", s, c.Code)
		}
		return 0, errs.InvalidArgument("", "amount %q has more than %d decimals allowed for %s", s, exp, c.Code)
	}

	// Accumulate every digit, then pad the decimals with zeros, in uint64
	// with an overflow check against the int64 bound for the sign.
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	var n uint64
	push := func(d uint64) bool {
		if n > (limit-d)/10 {
			return false
		}
		n = n*10 + d
		return true
	}
	ok := true
	for i := 0; i < len(intPart) && ok; i++ {
		ok = push(uint64(intPart[i] - '0'))
	}
	for i := 0; i < len(fracPart) && ok; i++ {
		ok = push(uint64(fracPart[i] - '0'))
	}
	for i := len(fracPart); i < exp && ok; i++ {
		ok = push(0)
	}
	if !ok {
		return 0, errs.InvalidArgument("", "amount %q is out of range", s)
	}
	if neg {
		return int64(-n), nil // -(1<<63) wraps to math.MinInt64 as intended
	}
	return int64(n), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
