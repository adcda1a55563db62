// Package luhn is the Luhn check (ISO/IEC 7812-1) that card numbers pass:
// the API refuses card data with it (api/carddata.go) and the chaos
// suite's scan looks for card numbers with it (tests/chaos).
package luhn

// Valid reports whether digits, ASCII digits only, passes the Luhn check.
func Valid(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}
