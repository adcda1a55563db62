package gateway

// Tests added where mutation testing (make mutate, docs/TESTING.md) found a
// changed line that no test noticed: the edges of each range.

import (
	"math"
	"strings"
	"testing"

	"github.com/payments-platform/payments/internal/money"
)

// TestLooksLikeIDEdges tries the first and last character of every range
// LooksLikeID accepts, the characters just outside each, and the length
// bound.
func TestLooksLikeIDEdges(t *testing.T) {
	cases := map[string]bool{
		"a_a": true, "z_z": true, "az_AZaz09_": true, "pi_0": true, "pi_9": true, "pi_A": true, "pi_Z": true, "pi__": true,
		"`_a": false, "{_a": false, "A_a": false, "pi_`": false, "pi_{": false,
		"pi_@": false, "pi_[": false, "pi_/": false, "pi_:": false,
		"pi_" + strings.Repeat("x", 252): true, // 255 bytes
		"pi_" + strings.Repeat("x", 253): false,
	}
	for s, want := range cases {
		if got := LooksLikeID(s); got != want {
			t.Errorf("LooksLikeID(%.20q, %d bytes) = %v, want %v", s, len(s), got, want)
		}
	}
}

// TestToGatewayRangeEdges: the range check of a multiplying conversion
// (ISK) holds MaxAmount in both signs exactly.
func TestToGatewayRangeEdges(t *testing.T) {
	isk := StripeUnits("ISK")
	for _, amount := range []int64{money.MaxAmount, -money.MaxAmount} {
		if got, err := isk.ToGateway(amount); err != nil || got != amount*100 {
			t.Errorf("ToGateway(%d ISK) = %d, %v; want %d", amount, got, err, amount*100)
		}
	}
}

// TestFromGatewayNegativeAndEdges: a dividing-back currency (MGA, whose
// Stripe amounts are whole ariary) converts negative amounts too, and the
// overflow bound holds exactly in both signs.
func TestFromGatewayNegativeAndEdges(t *testing.T) {
	mga := StripeUnits("MGA")
	for _, tc := range []struct{ in, want int64 }{
		{-5, -500},
		{-1500, -150_000},
		{math.MinInt64 / 100, math.MinInt64 / 100 * 100},
	} {
		if got, err := mga.FromGateway(tc.in); err != nil || got != tc.want {
			t.Errorf("FromGateway(%d MGA) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if got, err := mga.FromGateway(math.MinInt64/100 - 1); err == nil {
		t.Errorf("FromGateway(MinInt64/100-1 MGA) = %d, want an out-of-range error", got)
	}
}

// TestToGatewayIdentityHasNoRangeCheck: where the gateway's units are ISO's
// (USD) the amount passes as it is, whatever its size: only a multiplying
// conversion bounds it, against overflow; MaxAmount is the API's to apply.
func TestToGatewayIdentityHasNoRangeCheck(t *testing.T) {
	usd := StripeUnits("USD")
	for _, amount := range []int64{money.MaxAmount + 1, math.MaxInt64, -money.MaxAmount - 1} {
		if got, err := usd.ToGateway(amount); err != nil || got != amount {
			t.Errorf("ToGateway(%d USD) = %d, %v; want it unchanged", amount, got, err)
		}
	}
}
