package mail

import (
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent/accountnotice"
)

// The account letters' kinds, with their subjects.
var accountSubjects = map[accountnotice.Kind]string{
	accountnotice.KindVerifyEmail:          "Verify your email address",
	accountnotice.KindPasswordReset:        "Reset your password",
	accountnotice.KindPasswordChanged:      "Your password was changed",
	accountnotice.KindEmailChangeRequested: "Your login email is being changed",
	accountnotice.KindSuspended:            "Your account is suspended",
	accountnotice.KindClosed:               "Your account is closed",
}

// accountFactsFor are facts of kind with every field a letter may show.
func accountFactsFor(kind accountnotice.Kind) AccountFacts {
	return AccountFacts{
		Kind: kind, Token: "tok_" + string(kind) + "_secret",
		Expires:  time.Date(2027, 1, 4, 9, 15, 0, 0, time.FixedZone("CET", 3600)),
		NewEmail: "new.address@example.org", Reason: "terms_violation",
	}
}

// Every kind renders its subject, a greeting, text and HTML.
func TestComposeAccountEveryKind(t *testing.T) {
	t.Parallel()
	for kind, subject := range accountSubjects {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			l, err := ComposeAccount(accountFactsFor(kind), "Dana Scully", "Acme Payments")
			if err != nil {
				t.Fatal(err)
			}
			if l.Subject != subject {
				t.Errorf("subject %q, want %q", l.Subject, subject)
			}
			if !strings.HasPrefix(l.Text, "Hello Dana Scully,") {
				t.Errorf("text does not greet the owner:\n%s", l.Text)
			}
			if !strings.Contains(l.HTML, "<title>"+subject+"</title>") || !strings.Contains(l.HTML, "Hello Dana Scully,") {
				t.Errorf("HTML lacks the subject or the greeting:\n%s", l.HTML)
			}
			if !strings.Contains(l.Text, "Acme Payments") || !strings.Contains(l.HTML, "Acme Payments") {
				t.Errorf("the letter does not name the platform:\n%s", l.Text)
			}
			// Text and HTML say the same: every text line of the headline
			// and the details appears in the HTML.
			lines := strings.Split(l.Text, "\n")
			if len(lines) < 3 || !strings.Contains(l.HTML, lines[2]) {
				t.Errorf("the HTML lacks the headline %q:\n%s", lines[2], l.HTML)
			}
			if strings.Contains(l.Text, "<no value>") || strings.Contains(l.HTML, "<no value>") {
				t.Errorf("a template field is missing:\n%s", l.Text)
			}
		})
	}
}

// An unnamed owner is greeted generically.
func TestComposeAccountGreeting(t *testing.T) {
	t.Parallel()
	l, err := ComposeAccount(accountFactsFor(accountnotice.KindPasswordChanged), "  ", "Payments")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(l.Text, "Hello there,") || !strings.Contains(l.HTML, "Hello there,") {
		t.Fatalf("greeting of an unnamed owner:\n%s", l.Text)
	}
}

// Verification and reset letters carry the token and say until when it is
// valid, in UTC; the other letters carry neither.
func TestComposeAccountTokenAndExpiry(t *testing.T) {
	t.Parallel()
	const until = "4 January 2027, 08:15 UTC"
	for kind, label := range map[accountnotice.Kind]string{accountnotice.KindVerifyEmail: "Verification token", accountnotice.KindPasswordReset: "Reset token"} {
		f := accountFactsFor(kind)
		l, err := ComposeAccount(f, "Dana", "Payments")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(l.Text, label+": "+f.Token+"\n") || !strings.Contains(l.Text, "Valid until: "+until+"\n") {
			t.Errorf("%s text lacks the token or its expiry:\n%s", kind, l.Text)
		}
		if !strings.Contains(l.HTML, label) || !strings.Contains(l.HTML, "<strong>"+f.Token+"</strong>") ||
			!strings.Contains(l.HTML, "Valid until") || !strings.Contains(l.HTML, "<strong>"+until+"</strong>") {
			t.Errorf("%s HTML lacks the token or its expiry:\n%s", kind, l.HTML)
		}
	}
	for _, kind := range []accountnotice.Kind{accountnotice.KindPasswordChanged, accountnotice.KindEmailChangeRequested, accountnotice.KindSuspended, accountnotice.KindClosed} {
		f := accountFactsFor(kind)
		l, err := ComposeAccount(f, "Dana", "Payments")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(l.Text, f.Token) || strings.Contains(l.HTML, f.Token) ||
			strings.Contains(l.Text, "Valid until") || strings.Contains(l.HTML, "Valid until") {
			t.Errorf("%s letter shows a token:\n%s", kind, l.Text)
		}
	}
}

// An email change letter names the new address; a suspension letter its
// reason, and no reason line without one.
func TestComposeAccountFacts(t *testing.T) {
	t.Parallel()
	l, err := ComposeAccount(accountFactsFor(accountnotice.KindEmailChangeRequested), "Dana", "Payments")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.Text, "new.address@example.org") || !strings.Contains(l.HTML, "new.address@example.org") {
		t.Errorf("email change letter does not name the new address:\n%s", l.Text)
	}
	l, err = ComposeAccount(accountFactsFor(accountnotice.KindSuspended), "Dana", "Payments")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(l.Text, "Reason: terms_violation\n") || !strings.Contains(l.HTML, "<strong>terms_violation</strong>") {
		t.Errorf("suspension letter does not give its reason:\n%s", l.Text)
	}
	f := accountFactsFor(accountnotice.KindSuspended)
	f.Reason = ""
	if l, err = ComposeAccount(f, "Dana", "Payments"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(l.Text, "Reason:") || strings.Contains(l.HTML, "Reason") {
		t.Errorf("suspension letter without a reason shows a reason line:\n%s", l.Text)
	}
}

// Account letters are about security: they are sent whatever the email
// preferences, and say so instead of offering an opt-out; event letters
// keep their category's opt-out footer.
func TestComposeAccountSecurityFooter(t *testing.T) {
	t.Parallel()
	const security = "This is about the security of your account, so it is sent whatever your"
	for kind := range accountSubjects {
		l, err := ComposeAccount(accountFactsFor(kind), "Dana", "Payments")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(l.Text, security) || !strings.Contains(l.HTML, security) {
			t.Errorf("%s letter lacks the security footer:\n%s", kind, l.Text)
		}
		for _, body := range []string{l.Text, l.HTML} {
			lower := strings.ToLower(body)
			if strings.Contains(lower, "to stop them") || strings.Contains(lower, "you receive these emails") ||
				strings.Contains(body, "AccountService.UpdateMe") || strings.Contains(body, "turn off") {
				t.Errorf("%s letter offers an opt-out:\n%s", kind, body)
			}
		}
	}
	for _, typ := range []string{"payment.succeeded", "refund.created", "dispute.opened"} {
		l, err := Compose(factsFor(typ), Merchant, "Acme", "Payments")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(l.Text, "To stop them, turn off") || !strings.Contains(l.Text, "in your email preferences (AccountService.UpdateMe)") ||
			!strings.Contains(l.HTML, "to stop them, turn off") {
			t.Errorf("%s letter lost its opt-out footer:\n%s", typ, l.Text)
		}
		if strings.Contains(l.Text, "security of your account") || strings.Contains(l.HTML, "security of your account") {
			t.Errorf("%s letter has the security footer:\n%s", typ, l.Text)
		}
	}
}

func TestComposeAccountUnknownKind(t *testing.T) {
	t.Parallel()
	for _, kind := range []accountnotice.Kind{"", "password_reset_done", "VERIFY_EMAIL"} {
		l, err := ComposeAccount(AccountFacts{Kind: kind, Token: "x"}, "Dana", "Payments")
		if err == nil {
			t.Errorf("kind %q: letter %q, want an error", kind, l.Subject)
			continue
		}
		if !strings.Contains(err.Error(), "no account letter") || (l != Letter{}) {
			t.Errorf("kind %q: %v, %+v", kind, err, l)
		}
	}
}

// The HTML escapes what came from a person: a new email address, a name.
func TestComposeAccountEscapesHTML(t *testing.T) {
	t.Parallel()
	const evil = `<script>alert(1)</script>@example.org`
	const escaped = `&lt;script&gt;alert(1)&lt;/script&gt;@example.org`
	f := accountFactsFor(accountnotice.KindEmailChangeRequested)
	f.NewEmail = evil
	l, err := ComposeAccount(f, `<b>Dana</b>`, "Payments")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(l.HTML), "<script") || strings.Contains(l.HTML, "<b>Dana</b>") {
		t.Fatalf("HTML contains raw markup:\n%s", l.HTML)
	}
	if !strings.Contains(l.HTML, escaped) || !strings.Contains(l.HTML, "&lt;b&gt;Dana&lt;/b&gt;") {
		t.Fatalf("HTML lacks the escaped forms:\n%s", l.HTML)
	}
	// The text part is plain text: the address as it is.
	if !strings.Contains(l.Text, evil) {
		t.Fatalf("text does not name the address as it is:\n%s", l.Text)
	}
}
