package mail

import (
	"bytes"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent/accountnotice"
)

// AccountFacts are what an account letter says.
type AccountFacts struct {
	// Kind is the account notice's kind.
	Kind accountnotice.Kind
	// Token is the single-use token of a verification or reset letter,
	// valid until Expires.
	Token   string
	Expires time.Time
	// NewEmail is the address an email change goes to.
	NewEmail string
	// Reason is a suspension's reason code.
	Reason string
}

// ComposeAccount renders the letter about an account to its owner, called
// name.
func ComposeAccount(f AccountFacts, name, platform string) (Letter, error) {
	d := letterData{Name: nameOr(name), Platform: platform}
	until := f.Expires.UTC().Format("2 January 2006, 15:04 MST")
	switch f.Kind {
	case accountnotice.KindVerifyEmail:
		d.Subject, d.Headline = "Verify your email address", "Confirm that this email address is yours."
		d.Lines = []string{
			"Use the token below once, before it expires, to verify this address (AuthService.VerifyEmail, or the link of the app you signed up in).",
			"If you did not sign up or change your email, ignore this email.",
		}
		d.Details = [][2]string{{"Verification token", f.Token}, {"Valid until", until}}
	case accountnotice.KindPasswordReset:
		d.Subject, d.Headline = "Reset your password", "Someone asked to reset the password of your account."
		d.Lines = []string{
			"If it was you, use the token below once, before it expires, to choose a new password (AuthService.ResetPassword). Every signed-in device is signed out then.",
			"If it was not you, ignore this email: your password stays as it is.",
		}
		d.Details = [][2]string{{"Reset token", f.Token}, {"Valid until", until}}
	case accountnotice.KindPasswordChanged:
		d.Subject, d.Headline = "Your password was changed", "The password of your account was changed, and every other device was signed out."
		d.Lines = []string{"If you did not do this, reset your password now (AuthService.RequestPasswordReset) and contact support."}
	case accountnotice.KindEmailChangeRequested:
		d.Subject, d.Headline = "Your login email is being changed", "A change of your login email to "+f.NewEmail+" was requested."
		d.Lines = []string{
			"It takes effect when the new address is verified; until then you sign in with this one.",
			"If you did not ask for it, change your password now: someone may be signed in as you.",
		}
	case accountnotice.KindSuspended:
		d.Subject, d.Headline = "Your account is suspended", "An administrator suspended your account; you cannot sign in or be paid meanwhile."
		d.Lines = []string{"Payments, refunds and disputes already under way go on. Contact support to have the suspension reviewed."}
		if f.Reason != "" {
			d.Details = [][2]string{{"Reason", f.Reason}}
		}
	case accountnotice.KindClosed:
		d.Subject, d.Headline = "Your account is closed", "Your account was closed as you asked."
		d.Lines = []string{
			"Your payments, refunds and disputes are kept as records; your name and email are erased after the retention period.",
			"You can register again with this email at any time.",
		}
	default:
		return Letter{}, fmt.Errorf("no account letter of kind %q", f.Kind)
	}
	var text, html bytes.Buffer
	if err := textLetter.Execute(&text, d); err != nil {
		return Letter{}, err
	}
	if err := htmlLetter.Execute(&html, d); err != nil {
		return Letter{}, err
	}
	return Letter{Subject: d.Subject, Text: text.String(), HTML: html.String()}, nil
}
