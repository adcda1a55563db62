package api

import "testing"

func TestLooksLikeCardNumber(t *testing.T) {
	cases := map[string]bool{
		"4242424242424242":          true,
		"4242 4242 4242 4242":       true,
		"4242-4242-4242-4242":       true,
		"card 4000056655665556 exp": true,
		"4242 4242 4242 4242 123":   true,
		"378282246310005":           true, // amex, 15 digits
		"6011111111111117":          true,
		"4242424242424241":          false, // Luhn fails
		"order 12345":               false,
		"":                          false,
		"2026-11-27":                false,
		"pm_card_visa":              false,
		"12345678901":               false, // 11 digits
	}
	for in, want := range cases {
		if got := looksLikeCardNumber(in); got != want {
			t.Errorf("looksLikeCardNumber(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestCheckPaymentMethod(t *testing.T) {
	ok := []string{"pm_card_visa", "pm_card_chargeDeclined", "tok_visa", "mm:mpesa:254712345679", "mm:mtn:23324123456", "pm_sandbox_flaky"}
	bad := []string{"4242424242424242", "4242 4242 4242 4242", "visa", "pm_", "mm:mpesa:12", "pm_card_visa;drop", "",
		"mm:ab:378282246310005", "mm:mpesa:378282246310005", "mm:unknown:254712345679"}
	for _, pm := range ok {
		if err := checkPaymentMethod(pm); err != nil {
			t.Errorf("checkPaymentMethod(%q) = %v", pm, err)
		}
	}
	for _, pm := range bad {
		if err := checkPaymentMethod(pm); err == nil {
			t.Errorf("checkPaymentMethod(%q) accepted", pm)
		}
	}
}

func TestCheckFreeText(t *testing.T) {
	if err := checkFreeText("description", "two books", map[string]string{"order": "A-1001"}); err != nil {
		t.Fatal(err)
	}
	for name, md := range map[string]map[string]string{
		"cvc key":       {"cvc": "123"},
		"card_number":   {"card_number": "x"},
		"number value":  {"note": "4242424242424242"},
		"number in key": {"4242424242424242": "x"},
	} {
		if err := checkFreeText("description", "", md); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := checkFreeText("reason", "pay with 4242 4242 4242 4242", nil); err == nil {
		t.Error("card number in description accepted")
	}
}

func TestCardNumbersInDisguise(t *testing.T) {
	for _, s := range []string{
		"4242.4242.4242.4242", "4242/4242/4242/4242", "4242_4242_4242_4242", "4242\t4242\t4242\t4242",
		"4242\n4242\n4242\n4242", "4242  4242  4242  4242", "4242 - 4242 - 4242 - 4242",
		"４２４２４２４２４２４２４２４２", "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢",
	} {
		if !looksLikeCardNumber(s) {
			t.Errorf("looksLikeCardNumber(%q) = false", s)
		}
	}
	for _, s := range []string{"order 2026-11-27 12:00", "4242 apples and 4242 pears", "12345678901", "ref 00004242424242424242001234"} {
		if looksLikeCardNumber(s) {
			t.Errorf("looksLikeCardNumber(%q) = true", s)
		}
	}
}

func TestCardFieldNames(t *testing.T) {
	for _, k := range []string{"cvc", "CVV2", "card[cvc]", "card.cvc", "cvc ", "security_code", "card_security_code", "cardNumber", "pan", "Track2", "exp_date"} {
		if !isCardFieldName(k) {
			t.Errorf("isCardFieldName(%q) = false", k)
		}
	}
	for _, k := range []string{"order_id", "company", "expand", "incident", "decide", "panel", "customer_note"} {
		if isCardFieldName(k) {
			t.Errorf("isCardFieldName(%q) = true", k)
		}
	}
}
