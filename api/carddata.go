package api

import (
	"regexp"
	"strings"

	"github.com/payments-platform/payments/internal/errs"
)

// Card data never enters the platform: a field that holds what looks like a
// card number (12 to 19 digits, Luhn-valid, spaces or dashes allowed between
// digits) or is named like a card field is refused before anything is logged,
// stored or sent to a workflow. The refusal never repeats the value.

var (
	digitRunAny   = regexp.MustCompile(`\d(?:[ -]?\d)+`)
	cardFieldName = regexp.MustCompile(`(?i)^(cvc|cvv|cvv2|cvc2|csc|cid|card[_-]?(number|no|num|cvc|cvv|code)|pan|track[_-]?[12]?|magstripe|exp(iry)?[_-]?(date)?)$`)
	gatewayToken  = regexp.MustCompile(`^(pm|tok|card|src)_[A-Za-z0-9_]{1,200}$`)
	mobileMoney   = regexp.MustCompile(`^mm:([a-z]{2,20}):(\d{8,15})$`)
)

// luhn reports whether digits passes the Luhn check.
func luhn(digits string) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// looksLikeCardNumber reports whether s holds a plausible card number: a
// run of 12 to 19 digits, possibly grouped by spaces or dashes, that passes
// the Luhn check. Consecutive groups are tried too, so a card number followed
// by a CVC ("4242 4242 4242 4242 123") is still caught.
func looksLikeCardNumber(s string) bool {
	for _, m := range digitRunAny.FindAllString(s, -1) {
		groups := strings.FieldsFunc(m, func(r rune) bool { return r == ' ' || r == '-' })
		for i := range groups {
			d := ""
			for j := i; j < len(groups); j++ {
				d += groups[j]
				if len(d) > 19 {
					break
				}
				if len(d) >= 12 && luhn(d) {
					return true
				}
			}
		}
	}
	return false
}

var errCardData = func(field string) error {
	return errs.InvalidArgument(field, "%s looks like card data; card numbers and CVCs are never accepted: send a gateway token such as pm_card_visa", field)
}

// checkPaymentMethod accepts gateway tokens and mobile money only.
func checkPaymentMethod(pm string) error {
	if mobileMoney.MatchString(pm) {
		return nil
	}
	if looksLikeCardNumber(pm) {
		return errCardData("payment_method")
	}
	if !gatewayToken.MatchString(pm) {
		return errs.InvalidArgument("payment_method", "payment_method must be a gateway token such as pm_card_visa, or mm:<provider>:<msisdn> for mobile money")
	}
	return nil
}

// checkFreeText refuses card data in a free text field (description,
// reason) and in metadata.
func checkFreeText(field, text string, metadata map[string]string) error {
	if looksLikeCardNumber(text) {
		return errCardData(field)
	}
	for k, v := range metadata {
		if cardFieldName.MatchString(k) {
			return errs.InvalidArgument("metadata", "metadata key looks like a card field; card data is never accepted")
		}
		if looksLikeCardNumber(k) || looksLikeCardNumber(v) {
			return errCardData("metadata")
		}
	}
	return nil
}
