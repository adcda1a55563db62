package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/payments-platform/payments/internal/events"
	"github.com/payments-platform/payments/internal/money"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var (
	textLetter = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/letter.txt.tmpl"))
	htmlLetter = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/letter.html.tmpl"))
)

// Role is who a letter is for.
type Role string

// The parties of a payment.
const (
	Merchant Role = "merchant"
	Customer Role = "customer"
)

// Facts are what an event's letter says about its object.
type Facts struct {
	// Type is the event type.
	Type string
	// ObjectID is the payment, refund or dispute; PaymentID the payment.
	ObjectID, PaymentID string
	Amount              int64
	Currency            string
	// The parties' names as the letters show them.
	MerchantName, CustomerName string
	// Why: a failure's message, a dispute's reason.
	Reason string
	// DueBy is a dispute's response deadline.
	DueBy *time.Time
}

// Recipients are the parties an event type's letter goes to: payment
// confirmations to both parties (a failure or cancellation to the
// customer, who tried to pay), every refund update and every dispute step
// to both; none for the steps on the way (requires_action, captured).
func Recipients(eventType string) []Role {
	switch eventType {
	case "payment.succeeded":
		return []Role{Merchant, Customer}
	case "payment.failed", "payment.canceled":
		return []Role{Customer}
	case "payment.requires_action", "payment.captured":
		return nil
	}
	if events.IsType(eventType) {
		return []Role{Merchant, Customer}
	}
	return nil
}

// Letter is a rendered email's subject and bodies.
type Letter struct {
	Subject, Text, HTML string
}

// letterData is what the templates see.
type letterData struct {
	Subject, Name, Headline, Platform, Category string
	Lines                                       []string
	Details                                     [][2]string
}

// Compose renders the letter of f for role, to a recipient called name.
func Compose(f Facts, role Role, name, platform string) (Letter, error) {
	amount := FormatAmount(f.Amount, f.Currency)
	other, otherRole := f.CustomerName, "the customer"
	if role == Customer {
		other, otherRole = f.MerchantName, "the merchant"
	}
	if other == "" {
		other = otherRole
	}
	subject, headline, lines := words(f, role, amount, other)
	if subject == "" {
		return Letter{}, fmt.Errorf("no letter for %s to the %s", f.Type, role)
	}
	d := letterData{
		Subject: subject, Name: nameOr(name), Headline: headline, Lines: lines,
		Platform: platform, Category: events.Category(f.Type),
		Details: [][2]string{{"Amount", amount}},
	}
	if f.PaymentID != "" {
		d.Details = append(d.Details, [2]string{"Payment", f.PaymentID})
	}
	if f.ObjectID != f.PaymentID {
		kind, _, _ := strings.Cut(f.Type, ".")
		d.Details = append(d.Details, [2]string{strings.ToUpper(kind[:1]) + kind[1:], f.ObjectID})
	}
	if f.Reason != "" {
		d.Details = append(d.Details, [2]string{"Reason", f.Reason})
	}
	if f.DueBy != nil && strings.HasPrefix(f.Type, "dispute.") {
		d.Details = append(d.Details, [2]string{"Response due by", f.DueBy.UTC().Format("2 January 2006, 15:04 MST")})
	}
	var text, html bytes.Buffer
	if err := textLetter.Execute(&text, d); err != nil {
		return Letter{}, err
	}
	if err := htmlLetter.Execute(&html, d); err != nil {
		return Letter{}, err
	}
	return Letter{Subject: subject, Text: text.String(), HTML: html.String()}, nil
}

func nameOr(name string) string {
	if strings.TrimSpace(name) == "" {
		return "there"
	}
	return name
}

// FormatAmount writes an amount in major units with its currency's
// exponent (ISO 4217): "12.34 USD", "1000 JPY", "1.500 KWD".
func FormatAmount(amount int64, currency string) string {
	c, ok := money.Lookup(currency)
	if !ok {
		return fmt.Sprintf("%d %s (minor units)", amount, currency)
	}
	return money.Format(amount, c)
}

// words are a letter's subject, headline and further lines.
func words(f Facts, role Role, amount, other string) (subject, headline string, lines []string) {
	merchant := role == Merchant
	switch f.Type {
	case "payment.succeeded":
		if merchant {
			return "Payment received: " + amount, "You received " + amount + " from " + other + ".", nil
		}
		return "Payment confirmation: " + amount, "Your payment of " + amount + " to " + other + " succeeded.",
			[]string{"Keep this email as your receipt."}
	case "payment.failed":
		return "Payment failed: " + amount, "Your payment of " + amount + " to " + other + " failed.",
			[]string{"No money was taken. You can try again with another payment method."}
	case "payment.canceled":
		return "Payment canceled: " + amount, "Your payment of " + amount + " to " + other + " was canceled.",
			[]string{"Any amount held on your card is released."}
	case "refund.created":
		if merchant {
			return "Refund started: " + amount, "You are refunding " + amount + " to " + other + ".", nil
		}
		return "Refund on its way: " + amount, other + " is refunding " + amount + " to you.", nil
	case "refund.succeeded":
		if merchant {
			return "Refund completed: " + amount, "Your refund of " + amount + " to " + other + " went through.", nil
		}
		return "Refund completed: " + amount, "Your refund of " + amount + " from " + other + " went through.",
			[]string{"It can take 5 to 10 business days to show on your statement."}
	case "refund.failed":
		if merchant {
			return "Refund failed: " + amount, "Your refund of " + amount + " to " + other + " failed; the amount is back on your balance.", nil
		}
		return "Refund failed: " + amount, "The refund of " + amount + " from " + other + " failed.",
			[]string{"Contact " + other + " about it."}
	case "dispute.opened":
		return "Dispute opened: " + amount, "A dispute of " + amount + " was opened on a payment between you and " + other + ".",
			[]string{"Each side may submit evidence before the response deadline."}
	case "dispute.evidence_submitted":
		return "Dispute evidence submitted", "Evidence was submitted in the dispute of " + amount + " with " + other + ".", nil
	case "dispute.response_due_soon":
		return "Dispute response due soon", "The response to the dispute of " + amount + " with " + other + " is due soon.",
			[]string{"Submit evidence or accept the dispute before the deadline, or it is decided without your response."}
	case "dispute.won":
		return "Dispute decided: the merchant won", "The dispute of " + amount + " with " + other + " was decided in the merchant's favour.", nil
	case "dispute.lost":
		return "Dispute decided: the customer won", "The dispute of " + amount + " with " + other + " was decided in the customer's favour.", nil
	case "dispute.accepted":
		if merchant {
			return "Dispute accepted", "You accepted the dispute of " + amount + " with " + other + "; " + other + " is refunded.", nil
		}
		return "Dispute accepted", other + " accepted the dispute of " + amount + "; you are refunded.", nil
	case "dispute.withdrawn":
		return "Dispute withdrawn", "The dispute of " + amount + " with " + other + " was withdrawn.", nil
	}
	return "", "", nil
}
