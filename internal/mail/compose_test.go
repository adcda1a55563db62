package mail

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/events"
)

func TestRecipients(t *testing.T) {
	t.Parallel()
	both := []Role{Merchant, Customer}
	want := map[string][]Role{
		"payment.succeeded":       both,
		"payment.failed":          {Customer},
		"payment.canceled":        {Customer},
		"payment.requires_action": nil,
		"payment.captured":        nil,
	}
	for _, typ := range events.Types {
		w, ok := want[typ]
		if !ok {
			if !strings.HasPrefix(typ, "refund.") && !strings.HasPrefix(typ, "dispute.") {
				t.Errorf("event type %q has no expectation in this test", typ)
				continue
			}
			w = both
		}
		if got := Recipients(typ); !slices.Equal(got, w) {
			t.Errorf("Recipients(%q) = %v, want %v", typ, got, w)
		}
	}
	for _, typ := range []string{"", "unknown.type", "payment", "refund.unknown", "dispute.", "*"} {
		if got := Recipients(typ); len(got) != 0 {
			t.Errorf("Recipients(%q) = %v, want none", typ, got)
		}
	}
}

// factsFor are complete facts for an event type.
func factsFor(typ string) Facts {
	f := Facts{
		Type: typ, ObjectID: "pay_123", PaymentID: "pay_123",
		Amount: 1234, Currency: "USD",
		MerchantName: "Acme Shop", CustomerName: "Jane Roe",
	}
	switch {
	case strings.HasPrefix(typ, "refund."):
		f.ObjectID = "re_456"
	case strings.HasPrefix(typ, "dispute."):
		f.ObjectID = "dp_789"
		f.Reason = "fraudulent"
		due := time.Date(2026, 5, 17, 23, 59, 0, 0, time.FixedZone("EST", -5*3600))
		f.DueBy = &due
	case typ == "payment.failed":
		f.Reason = "Your card was declined."
	}
	return f
}

func TestComposeEveryLetter(t *testing.T) {
	t.Parallel()
	n := 0
	for _, typ := range events.Types {
		for _, role := range Recipients(typ) {
			n++
			t.Run(typ+"/"+string(role), func(t *testing.T) {
				t.Parallel()
				f := factsFor(typ)
				l, err := Compose(f, role, "Recipient Name", "Payments")
				if err != nil {
					t.Fatalf("Compose: %v", err)
				}
				if strings.TrimSpace(l.Subject) == "" || strings.TrimSpace(l.Text) == "" || strings.TrimSpace(l.HTML) == "" {
					t.Fatalf("empty part: subject %q, text %d bytes, html %d bytes", l.Subject, len(l.Text), len(l.HTML))
				}
				if strings.ContainsAny(l.Subject, "\r\n") {
					t.Errorf("subject %q has a line break", l.Subject)
				}
				other := f.CustomerName
				if role == Customer {
					other = f.MerchantName
				}
				for _, part := range []struct{ name, s string }{{"text", l.Text}, {"html", l.HTML}} {
					if !strings.Contains(part.s, "12.34 USD") {
						t.Errorf("%s does not contain the amount 12.34 USD:\n%s", part.name, excerpt(part.s))
					}
					if !strings.Contains(part.s, other) {
						t.Errorf("%s of %s to the %s does not name the other party %q (every letter should; "+
							"compose.go words() for this type leaves it out); headline and details:\n%s",
							part.name, typ, role, other, excerpt(part.s))
					}
					if !strings.Contains(part.s, "Recipient Name") {
						t.Errorf("%s does not greet the recipient", part.name)
					}
					if !strings.Contains(part.s, "pay_123") {
						t.Errorf("%s does not show the payment id", part.name)
					}
					if f.ObjectID != f.PaymentID && !strings.Contains(part.s, f.ObjectID) {
						t.Errorf("%s does not show the object id %s", part.name, f.ObjectID)
					}
					if f.Reason != "" && !strings.Contains(part.s, f.Reason) {
						t.Errorf("%s does not show the reason %q", part.name, f.Reason)
					}
				}
				if !strings.Contains(l.Text, "Hello Recipient Name,") {
					t.Errorf("text does not start with the greeting:\n%s", l.Text)
				}
				if !strings.Contains(l.HTML, "<title>"+l.Subject+"</title>") {
					t.Errorf("html title is not the subject %q", l.Subject)
				}
			})
		}
	}
	// 1 (payment.succeeded) counted twice, failed and canceled once, 3
	// refunds and 7 disputes twice each.
	if n != 2+1+1+2*3+2*7 {
		t.Errorf("%d letters composed, want 24", n)
	}
}

func TestComposeEscapesHTML(t *testing.T) {
	t.Parallel()
	const evil = `<script>alert(1)</script>`
	const escaped = `&lt;script&gt;alert(1)&lt;/script&gt;`
	tests := []struct {
		name      string
		typ       string
		role      Role
		recipient string
		merchant  string
		customer  string
		reason    string
	}{
		{"other party name", "payment.succeeded", Customer, "Jane", evil, "Jane", ""},
		{"recipient name", "payment.succeeded", Merchant, evil, "Acme", "Jane", ""},
		{"reason", "dispute.opened", Merchant, "Acme", "Acme", "Jane", evil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := factsFor(tt.typ)
			f.MerchantName, f.CustomerName, f.Reason = tt.merchant, tt.customer, tt.reason
			l, err := Compose(f, tt.role, tt.recipient, "Payments")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(l.HTML, evil) || strings.Contains(strings.ToLower(l.HTML), "<script") {
				t.Errorf("HTML contains the raw name:\n%s", l.HTML)
			}
			if !strings.Contains(l.HTML, escaped) {
				t.Errorf("HTML does not contain the escaped form %q:\n%s", escaped, l.HTML)
			}
			if !strings.Contains(l.Text, evil) {
				t.Errorf("text does not keep the name as is:\n%s", l.Text)
			}
		})
	}
}

func TestFormatAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{1234, "USD", "12.34 USD"},
		{1234, "usd", "12.34 USD"},
		{5, "EUR", "0.05 EUR"},
		{1000, "JPY", "1000 JPY"},
		{1500, "KWD", "1.500 KWD"},
		{1234, "ZZZ", "1234 ZZZ (minor units)"},
		{1234, "XXX", "1234 XXX (minor units)"},
		{99, "", "99  (minor units)"},
	}
	for _, tt := range tests {
		if got := FormatAmount(tt.amount, tt.currency); got != tt.want {
			t.Errorf("FormatAmount(%d, %q) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}

func TestComposeAmountByExponent(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		amount   int64
		currency string
		want     string
	}{
		{1234, "USD", "12.34 USD"},
		{1000, "JPY", "1000 JPY"},
		{1500, "KWD", "1.500 KWD"},
		{1234, "ZZZ", "1234 ZZZ (minor units)"},
	} {
		f := factsFor("payment.succeeded")
		f.Amount, f.Currency = tt.amount, tt.currency
		l, err := Compose(f, Merchant, "Acme", "Payments")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(l.Subject, tt.want) || !strings.Contains(l.Text, "Amount: "+tt.want) || !strings.Contains(l.HTML, tt.want) {
			t.Errorf("%d %s: letter does not show %q:\nsubject %q\n%s", tt.amount, tt.currency, tt.want, l.Subject, l.Text)
		}
	}
}

func TestComposeDisputeDueBy(t *testing.T) {
	t.Parallel()
	const want = "18 May 2026, 04:59 UTC" // 23:59 EST the day before
	for _, typ := range events.Types {
		if !strings.HasPrefix(typ, "dispute.") {
			continue
		}
		l, err := Compose(factsFor(typ), Merchant, "Acme", "Payments")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(l.Text, "Response due by: "+want) {
			t.Errorf("%s text does not show \"Response due by: %s\":\n%s", typ, want, l.Text)
		}
		if !strings.Contains(l.HTML, "Response due by") || !strings.Contains(l.HTML, want) {
			t.Errorf("%s html does not show the response deadline:\n%s", typ, l.HTML)
		}
	}
	// Only disputes have a deadline.
	f := factsFor("refund.created")
	due := time.Now()
	f.DueBy = &due
	l, err := Compose(f, Customer, "Jane", "Payments")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(l.Text, "Response due by") {
		t.Errorf("refund letter shows a response deadline:\n%s", l.Text)
	}
	// A dispute without a deadline shows none.
	f = factsFor("dispute.opened")
	f.DueBy = nil
	if l, _ = Compose(f, Customer, "Jane", "Payments"); strings.Contains(l.Text, "Response due by") {
		t.Errorf("dispute letter without DueBy shows a deadline:\n%s", l.Text)
	}
}

func TestComposeGreeting(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "   "} {
		l, err := Compose(factsFor("payment.succeeded"), Customer, name, "Payments")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(l.Text, "Hello there,") {
			t.Errorf("name %q: text starts %q, want \"Hello there,\"", name, l.Text[:min(len(l.Text), 30)])
		}
		if !strings.Contains(l.HTML, "<p>Hello there,</p>") {
			t.Errorf("name %q: html does not say Hello there", name)
		}
	}
}

func TestComposeOtherPartyUnnamed(t *testing.T) {
	t.Parallel()
	f := factsFor("payment.succeeded")
	f.MerchantName, f.CustomerName = "", ""
	l, err := Compose(f, Merchant, "Acme", "Payments")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.Text, "from the customer") {
		t.Errorf("merchant letter without a customer name:\n%s", l.Text)
	}
	l, err = Compose(f, Customer, "Jane", "Payments")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.Text, "to the merchant") {
		t.Errorf("customer letter without a merchant name:\n%s", l.Text)
	}
}

func TestComposeFooterCategory(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ typ, category string }{
		{"payment.succeeded", "payments"},
		{"payment.failed", "payments"},
		{"refund.created", "refunds"},
		{"refund.failed", "refunds"},
		{"dispute.opened", "disputes"},
		{"dispute.won", "disputes"},
	} {
		l, err := Compose(factsFor(tt.typ), Customer, "Jane", "Acme Payments")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(l.Text, "about your "+tt.category) || !strings.Contains(l.Text, `"`+tt.category+`"`) {
			t.Errorf("%s text footer does not name %q:\n%s", tt.typ, tt.category, l.Text)
		}
		if !strings.Contains(l.HTML, "about your "+tt.category) || !strings.Contains(l.HTML, "&ldquo;"+tt.category+"&rdquo;") {
			t.Errorf("%s html footer does not name %q:\n%s", tt.typ, tt.category, l.HTML)
		}
		if !strings.Contains(l.Text, "Acme Payments") || !strings.Contains(l.HTML, "Acme Payments") {
			t.Errorf("%s footer does not name the platform", tt.typ)
		}
	}
}

func TestComposeNoLetter(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{"payment.requires_action", "payment.captured", "unknown.type", ""} {
		for _, role := range []Role{Merchant, Customer} {
			if l, err := Compose(factsFor(typ), role, "X", "Payments"); err == nil {
				t.Errorf("Compose(%q, %s) = %+v, want an error", typ, role, l)
			}
		}
	}
}

// excerpt is a letter without its footer, for failure messages.
func excerpt(s string) string {
	if i := strings.Index(s, "--\n"); i >= 0 {
		return s[:i]
	}
	if i := strings.Index(s, "<h1"); i >= 0 {
		if j := strings.Index(s[i:], "</h1>"); j >= 0 {
			return s[i : i+j+5]
		}
	}
	return s
}
