package api

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"connectrpc.com/connect"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/luhn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Card data never enters the platform: a field that holds what looks like a
// card number (12 to 19 digits, Luhn-valid, spaces or dashes allowed between
// digits) or is named like a card field is refused before anything is logged,
// stored or sent to a workflow. The refusal never repeats the value.

var (
	gatewayToken = regexp.MustCompile(`^(pm|tok|card|src)_[A-Za-z0-9_]{1,200}$`)
	mobileMoney  = regexp.MustCompile(`^mm:([a-z]{2,20}):(\d{8,15})$`)
)

// maxSeparatorRun is how many non-alphanumeric characters may stand
// between two digit groups of one card number ("4242 4242", "4242 - 4242",
// "4242.4242", "4242/4242", tabs and line breaks).
const maxSeparatorRun = 3

// maxDigitBlock bounds the walk back to the start of a block of decimal
// digits. Unicode lays each script's digits out as a contiguous run 0..9,
// and some runs follow each other without a gap: the mathematical digits
// (bold, double-struck, sans-serif, sans-serif bold, monospace:
// U+1D7CE..U+1D7FF) are 50 in a row. The walk must reach the start of the
// longest such block, or the later digits of it read as 0.
const maxDigitBlock = 64

// digitValue returns the value of a decimal digit in any script (ASCII,
// full-width, Arabic-Indic, mathematical, ...), or -1.
func digitValue(r rune) int {
	if r >= '0' && r <= '9' {
		return int(r - '0')
	}
	if !unicode.IsDigit(r) {
		return -1
	}
	k := 0
	for k < maxDigitBlock && unicode.IsDigit(r-rune(k+1)) {
		k++
	}
	return k % 10
}

// invisible reports characters that show nothing of their own: format
// characters (zero-width space, joiners, word joiner, BOM, soft hyphen,
// bidi controls), combining and enclosing marks (an underline, a keycap),
// variation selectors and the other default-ignorable code points (Hangul
// fillers). They neither separate digit groups nor count toward a
// separator's length, so "4242 \u200b-\u200b 4242" reads as "4242 - 4242",
// as the eye sees it.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Mn, unicode.Me, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// digitRuns splits s into runs of digits joined by short separators, each
// returned as its groups of ASCII digits.
func digitRuns(s string) [][]string {
	var (
		runs   [][]string
		groups []string
		cur    []byte
		gap    int
	)
	flushGroup := func() {
		if len(cur) > 0 {
			groups = append(groups, string(cur))
			cur = cur[:0]
		}
	}
	flushRun := func() {
		flushGroup()
		if len(groups) > 0 {
			runs = append(runs, groups)
			groups = nil
		}
		gap = 0
	}
	for _, r := range s {
		if v := digitValue(r); v >= 0 {
			if gap > 0 {
				flushGroup()
			}
			gap = 0
			cur = append(cur, byte('0'+v))
			continue
		}
		if invisible(r) {
			continue
		}
		if unicode.IsLetter(r) {
			flushRun()
			continue
		}
		gap++
		if gap > maxSeparatorRun {
			flushRun()
		}
	}
	flushRun()
	return runs
}

// looksLikeCardNumber reports whether s holds a plausible card number: 12 to
// 19 digits, possibly grouped by short runs of separators, that pass the Luhn
// check. Consecutive groups are tried from every group on, so a card number
// followed or preceded by other digit groups ("4242 4242 4242 4242 123") is
// still caught. An ungrouped run of more than 19 digits is not a card number
// (scanning its windows would refuse most long references).
func looksLikeCardNumber(s string) bool {
	for _, groups := range digitRuns(s) {
		for i := range groups {
			d := ""
			for j := i; j < len(groups); j++ {
				d += groups[j]
				if len(d) > 19 {
					break
				}
				if len(d) >= 12 && luhn.Valid(d) {
					return true
				}
			}
		}
	}
	return false
}

// cardKeyTokens are what a metadata key names when it holds card data; keys
// are compared lower-cased with everything but letters and digits removed,
// so "card[cvc]", "Card.CVC " and "card_security_code" all match.
var (
	cardKeyContains = []string{"cvc", "cvv", "cvn", "securitycode", "verificationcode", "verificationvalue",
		"cardnumber", "cardnum", "cardno", "trackdata", "track1", "track2", "magstripe", "primaryaccountnumber"}
	cardKeyExact = map[string]bool{"pan": true, "cardpan": true, "csc": true, "cardcsc": true, "cid": true, "cardcid": true,
		"track": true, "expiry": true, "expdate": true, "expirydate": true, "cardexpiry": true}
)

func normalizeKey(k string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(k) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isCardFieldName reports whether a metadata key names card data.
func isCardFieldName(k string) bool {
	n := normalizeKey(k)
	if cardKeyExact[n] {
		return true
	}
	for _, t := range cardKeyContains {
		if strings.Contains(n, t) {
			return true
		}
	}
	return false
}

var errCardData = func(field string) error {
	return errs.InvalidArgument(field, "%s looks like card data; card numbers and CVCs are never accepted: send a gateway token such as pm_card_visa", field)
}

// mobileMoneyProviders are the mobile money networks the platform routes.
var mobileMoneyProviders = map[string]bool{"mpesa": true, "mtn": true, "airtel": true, "orange": true}

// checkPaymentMethod accepts gateway tokens and mobile money only.
func checkPaymentMethod(pm string) error {
	if m := mobileMoney.FindStringSubmatch(pm); m != nil {
		if !mobileMoneyProviders[m[1]] {
			return errs.InvalidArgument("payment_method", "unknown mobile money provider: want mpesa, mtn, airtel or orange")
		}
		// A phone number never passes for a card number: refuse a
		// Luhn-valid 12+ digit "msisdn" rather than store what may be a PAN.
		if looksLikeCardNumber(m[2]) {
			return errCardData("payment_method")
		}
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
		if isCardFieldName(k) {
			return errs.InvalidArgument("metadata", "metadata key looks like a card field; card data is never accepted")
		}
		if looksLikeCardNumber(k) || looksLikeCardNumber(v) {
			return errCardData("metadata")
		}
	}
	return nil
}

// checkURL refuses card data in a URL (CreatePayment's return_url): as
// written, and as its percent-encoding decodes ("4242%204242...",
// "%34%32%34%32...", full-width digits sent as UTF-8 escapes), twice over
// for a doubly encoded one.
func checkURL(field, raw string) error {
	for i, s := 0, raw; i < 3; i++ {
		if looksLikeCardNumber(s) {
			return errCardData(field)
		}
		next := percentDecode(s)
		if next == s {
			break
		}
		s = next
	}
	return nil
}

// percentDecode decodes every well-formed %XX escape of s and leaves
// everything else as it is, so that one malformed escape does not hide the
// others.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// notFreeText are the request fields the card data walk leaves alone:
// secrets and opaque tokens (random, never stored as sent), the payment
// method (checkPaymentMethod's own rule), email addresses (validated as
// such; their local parts are often long numbers joined by dashes, a
// timestamp say, that can pass the Luhn check) and webhook endpoint URLs
// (receivers' URLs carry numeric ids, such as Discord's 17 to 19 digit
// snowflakes, one in ten of which passes the Luhn check).
var notFreeText = map[protoreflect.Name]bool{
	"password": true, "current_password": true, "new_password": true,
	"refresh_token": true, "token": true, "page_token": true,
	"payment_method": true, "email": true, "email_prefix": true, "url": true,
}

// refuseCardData is the interceptor that refuses card data anywhere in a
// request, before the handler hashes, stores or logs any of it: every
// string field, nested messages (evidence) and every string map
// (metadata: its keys named like card fields too), at any depth, but the
// fields of notFreeText. A field added to the API is covered without a
// word in its handler.
func refuseCardData() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if m, ok := req.Any().(proto.Message); ok {
				if err := checkCardData(m.ProtoReflect(), ""); err != nil {
					return nil, err
				}
			}
			return next(ctx, req)
		}
	}
}

// checkCardData walks the message m, whose fields are named prefix+name.
func checkCardData(m protoreflect.Message, prefix string) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if notFreeText[fd.Name()] {
			return true
		}
		name := prefix + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapKey().Kind() == protoreflect.StringKind && fd.MapValue().Kind() == protoreflect.StringKind {
				texts := make(map[string]string, v.Map().Len())
				v.Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
					texts[k.String()] = v.String()
					return true
				})
				err = checkFreeText(name, "", texts)
			}
		case fd.IsList():
			for i, list := 0, v.List(); i < list.Len() && err == nil; i++ {
				switch fd.Kind() {
				case protoreflect.StringKind:
					err = checkFreeText(name, list.Get(i).String(), nil)
				case protoreflect.MessageKind:
					err = checkCardData(list.Get(i).Message(), name+".")
				}
			}
		case fd.Kind() == protoreflect.StringKind && fd.Name() == "return_url":
			err = checkURL(name, v.String())
		case fd.Kind() == protoreflect.StringKind:
			err = checkFreeText(name, v.String(), nil)
		case fd.Kind() == protoreflect.MessageKind:
			err = checkCardData(v.Message(), name+".")
		}
		return err == nil
	})
	return err
}
