package gateway

import "testing"

func TestLooksLikeID(t *testing.T) {
	for s, want := range map[string]bool{
		"pm_card_visa": true, "pi_3Nx9Z": true, "pi_sbx_abc123": true,
		"4242424242424242": false, "": false, "pm_": false, "_x": false,
		"PM_card": false, "pm_card visa": false, "pm_card-visa": false,
	} {
		if got := LooksLikeID(s); got != want {
			t.Errorf("LooksLikeID(%q) = %v, want %v", s, got, want)
		}
	}
}
