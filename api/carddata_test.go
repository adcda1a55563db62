package api

import (
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/payments-platform/payments/internal/errs"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"google.golang.org/protobuf/proto"
)

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

// TestCardNumbersBehindInvisibleCharacters: characters that show nothing
// (zero-width spaces and joiners, word joiners, BOMs, soft hyphens,
// combining marks, keycaps, variation selectors, Hangul fillers) neither
// split a card number nor lengthen the separator between its groups.
func TestCardNumbersBehindInvisibleCharacters(t *testing.T) {
	for _, s := range []string{
		"4242 \u200b-\u200b 4242 \u200b-\u200b 4242 \u200b-\u200b 4242", // a spaced dash, four characters wide to the detector before
		"4242 \u200b\u2060 4242 \u200b\u2060 4242 \u200b\u2060 4242",
		"5555\u200d\u200c\u2060\ufeff5555\u200d\u200c\u2060\ufeff5555\u200d\u200c\u2060\ufeff4444",
		"4\u03322\u03324\u03322\u03324\u03322\u03324\u03322\u03324\u03322\u03324\u03322\u03324\u03322\u03324\u03322\u0332",
		"4\ufe0f\u20e32\ufe0f\u20e34\ufe0f\u20e32\ufe0f\u20e34\ufe0f\u20e32\ufe0f\u20e34\ufe0f\u20e32\ufe0f\u20e3" +
			"4\ufe0f\u20e32\ufe0f\u20e34\ufe0f\u20e32\ufe0f\u20e34\ufe0f\u20e32\ufe0f\u20e34\ufe0f\u20e32\ufe0f\u20e3",
		"4242\u31644242\u31644242\u31644242", // Hangul fillers are letters to unicode.IsLetter
		"3782\u00ad822463\u00ad10005",
	} {
		if !looksLikeCardNumber(s) {
			t.Errorf("looksLikeCardNumber(%q) = false", s)
		}
	}
	// Invisible characters do not make a number of something else.
	for _, s := range []string{"4242\u200b apples and 4242\u200b pears", "order\u200b12345", "4242424242424241\u200b"} {
		if looksLikeCardNumber(s) {
			t.Errorf("looksLikeCardNumber(%q) = true", s)
		}
	}
}

// TestDigitValueOfEveryDecimalDigit: every decimal digit of every script
// has its value, including the 50 mathematical digits that follow each
// other without a gap (U+1D7CE..U+1D7FF), whose last block read as all
// zeros: a card number half in monospace digits passed, and any twelve
// monospace digits were taken for one.
func TestDigitValueOfEveryDecimalDigit(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !unicode.IsDigit(r) {
			continue
		}
		// Every block starts at a digit whose predecessor, 10 earlier or
		// more, is not a digit; values count up from there.
		start := r
		for unicode.IsDigit(start - 1) {
			start--
		}
		if want := int(r-start) % 10; digitValue(r) != want {
			t.Fatalf("digitValue(%U) = %d, want %d", r, digitValue(r), want)
		}
	}
	mono := func(s string) string {
		return strings.Map(func(r rune) rune { return r - '0' + 0x1D7F6 }, s)
	}
	if !looksLikeCardNumber("5555" + mono("5555") + "5555" + mono("4444")) {
		t.Error("a card number half in monospace digits is not card data")
	}
	if looksLikeCardNumber(mono("123456789012")) {
		t.Error("twelve monospace digits that fail the Luhn check are card data")
	}
}

// TestCheckURL: a card number in a URL is refused as written and as its
// percent-encoding decodes, even beside a malformed escape.
func TestCheckURL(t *testing.T) {
	for _, u := range []string{
		"https://shop.example/back?card=4242424242424242",
		"https://shop.example/back?card=4242%204242%204242%204242",
		"https://shop.example/back?card=%34%32%34%32%34%32%34%32%34%32%34%32%34%32%34%32",
		"https://shop.example/back?card=%EF%BC%94%EF%BC%92%EF%BC%94%EF%BC%92%EF%BC%94%EF%BC%92%EF%BC%94%EF%BC%92" +
			"%EF%BC%94%EF%BC%92%EF%BC%94%EF%BC%92%EF%BC%94%EF%BC%92%EF%BC%94%EF%BC%92",
		"https://shop.example/back?x=%zz&card=5555%2D5555%2D5555%2D4444",
		"https://shop.example/back?card=3782%2520822463%252010005", // encoded twice
	} {
		if err := checkURL("return_url", u); err == nil {
			t.Errorf("checkURL(%q) accepted", u)
		}
	}
	for _, u := range []string{"", "https://shop.example/back?order=42&ref=4242424242424241", "https://shop.example/a%20b?x=%zz"} {
		if err := checkURL("return_url", u); err != nil {
			t.Errorf("checkURL(%q) = %v", u, err)
		}
	}
}

// TestCheckCardDataWalksEveryField: the interceptor's walk finds card data
// in any string field, nested messages and string maps, names the field
// by its path, and leaves secrets, tokens, the payment method, emails and
// webhook URLs alone.
func TestCheckCardDataWalksEveryField(t *testing.T) {
	const pan = "4242 4242 4242 4242"
	refused := map[string]proto.Message{
		"description":                 &paymentsv1.OpenDisputeRequest{PaymentId: "pay_1", Description: pan},
		"evidence.uncategorized_text": &paymentsv1.SubmitEvidenceRequest{DisputeId: "dp_1", Evidence: &paymentsv1.Evidence{UncategorizedText: pan}},
		"metadata":                    &paymentsv1.CreateRefundRequest{PaymentId: "pay_1", Metadata: map[string]string{"note": pan}},
		"return_url":                  &paymentsv1.CreatePaymentRequest{ReturnUrl: "https://shop.example/?c=4242%204242%204242%204242"},
		"display_name":                &paymentsv1.RegisterRequest{Email: "a@b.example", DisplayName: pan},
		"note":                        &paymentsv1.SuspendAccountRequest{Id: "acct_1", Note: pan},
		"name":                        &paymentsv1.CreateApiKeyRequest{Name: pan},
	}
	for field, msg := range refused {
		var de *errs.Error
		err := checkCardData(msg.ProtoReflect(), "")
		if !errors.As(err, &de) || errs.KindOf(err) != errs.KindInvalidArgument || de.Field != field {
			t.Errorf("%T with card data in %s: %v, want invalid_argument on %s", msg, field, err, field)
		}
	}
	// A metadata key named like a card field.
	if err := checkCardData((&paymentsv1.CreatePaymentRequest{Metadata: map[string]string{"card_cvc": "123"}}).ProtoReflect(), ""); err == nil {
		t.Error("a metadata key named cvc was accepted")
	}
	accepted := []proto.Message{
		&paymentsv1.LoginRequest{Email: "4242424242424242@b.example", Password: pan},
		&paymentsv1.ChangePasswordRequest{CurrentPassword: pan, NewPassword: pan},
		&paymentsv1.ResetPasswordRequest{Token: pan, NewPassword: pan},
		&paymentsv1.RefreshTokenRequest{RefreshToken: pan},
		&paymentsv1.CreateWebhookEndpointRequest{Url: "https://discord.example/api/webhooks/4242424242424242/x"},
		&paymentsv1.CreatePaymentRequest{PaymentMethod: "pm_card_visa", Description: "order 4242 of 12 May"},
	}
	for _, msg := range accepted {
		if err := checkCardData(msg.ProtoReflect(), ""); err != nil {
			t.Errorf("%T: %v", msg, err)
		}
	}
}
