package luhn

import "testing"

func TestValid(t *testing.T) {
	cases := map[string]bool{
		"4242424242424242": true, "5555555555554444": true, "378282246310005": true, "6011111111111117": true,
		"79927398713": true, "0": true,
		"4242424242424241": false, "5555555555554445": false, "378282246310006": false, "79927398710": false, "1": false,
	}
	for digits, want := range cases {
		if got := Valid(digits); got != want {
			t.Errorf("Valid(%q) = %v, want %v", digits, got, want)
		}
	}
}
