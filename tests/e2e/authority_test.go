package e2e

import "testing"

// TestOnlyTheMerchantVoidsAnAuthorization: once a payment is authorized, the
// order is the merchant's to capture or void; the customer may cancel only
// while the payment is still pending on their side (3-D Secure).
func TestOnlyTheMerchantVoidsAnAuthorization(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	p := e.create(t, c, pay(m, 3000, "USD", "pm_card_visa").manual())
	wantStatus(t, p, stRequiresCapture)
	wantCode(t, e.cancelR(t, c, p.GetId(), ""), "permission_denied")
	wantStatus(t, e.get(t, m, p.GetId()), stRequiresCapture)
	if r := e.cancelR(t, m, p.GetId(), "duplicate"); r.status != 200 {
		t.Fatalf("merchant cancel: %s", r)
	}
	got := e.get(t, c, p.GetId())
	wantStatus(t, got, "PAYMENT_STATUS_CANCELED")
	if got.GetFailureCode() != "duplicate" {
		t.Fatalf("failure_code %q", got.GetFailureCode())
	}
}

// TestCardDataInOtherFieldsIsRefused covers the fields beside payment_method,
// description and metadata: the 3-D Secure return URL and mobile money numbers.
func TestCardDataInOtherFieldsIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	before := e.paymentRows(t)
	for name, req := range map[string]payReq{
		"return_url":          pay(m, 100, "USD", "pm_card_authenticationRequired").set("return_url", "https://shop.example/back?card=4242424242424242"),
		"mobile money number": pay(m, 100, "KES", "mm:mpesa:378282246310005"),
		"unknown provider":    pay(m, 100, "KES", "mm:ab:254712345679"),
	} {
		t.Run(name, func(t *testing.T) {
			r := e.post(t, c.Token, "/payments.v1.PaymentService/CreatePayment", req)
			wantCode(t, r, "invalid_argument")
		})
	}
	if rows := e.paymentRows(t); rows != before {
		t.Fatalf("%d payment rows after refusals, want %d", rows, before)
	}
	if n := e.gw.charges(); n != 0 {
		t.Fatalf("%d gateway charges after refusals", n)
	}
}
