package e2e

// Attack table 4 of issue 12: card numbers in every free-text field of
// every mutating RPC, written in every separator style and digit script a
// person (or a copy and paste) produces. carddata_test.go covers the
// payment's own fields with ASCII separators and full-width digits; this
// table takes the same detector (api/carddata.go) to every other field of
// the protos and to the styles beyond those. Every row is invalid_argument
// for card data, and the database is unchanged.

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/store"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// atkPANs are Luhn-valid test card numbers: Visa, Mastercard, Amex.
var atkPANs = []string{"4242424242424242", "5555555555554444", "378282246310005"}

// atkGroups splits a PAN as it is printed: 4-4-4-4, or 4-6-5 for Amex.
func atkGroups(pan string) []string {
	if len(pan) == 15 {
		return []string{pan[:4], pan[4:10], pan[10:]}
	}
	var out []string
	for i := 0; i < len(pan); i += 4 {
		out = append(out, pan[i:min(i+4, len(pan))])
	}
	return out
}

// atkScript writes ASCII digits in the script whose zero is zero.
func atkScript(s string, zero rune) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return zero + (r - '0')
		}
		return r
	}, s)
}

// atkBetweenDigits puts sep (cycling through seps) between every two digits.
func atkBetweenDigits(pan string, seps ...string) string {
	var b strings.Builder
	for i, r := range pan {
		if i > 0 {
			b.WriteString(seps[(i-1)%len(seps)])
		}
		b.WriteRune(r)
	}
	return b.String()
}

// atkEachDigit writes every digit followed by suffix.
func atkEachDigit(pan, suffix string) string {
	var b strings.Builder
	for _, r := range pan {
		b.WriteRune(r)
		b.WriteString(suffix)
	}
	return b.String()
}

// atkStyle writes a PAN one way.
type atkStyle struct {
	name  string
	write func(pan string) string
}

func atkJoin(sep string) func(string) string {
	return func(pan string) string { return strings.Join(atkGroups(pan), sep) }
}

// atkTextStyles: separators, digit scripts and invisible characters.
var atkTextStyles = []atkStyle{
	{"no separator", func(p string) string { return p }},
	{"spaces", atkJoin(" ")},
	{"dashes", atkJoin("-")},
	{"dots", atkJoin(".")},
	{"mixed separators", func(p string) string {
		g, seps := atkGroups(p), []string{" ", "-", ".", "/"}
		out := g[0]
		for i, x := range g[1:] {
			out += seps[i%len(seps)] + x
		}
		return out
	}},
	{"spaces around dashes", atkJoin(" - ")},
	{"CRLF between groups", atkJoin("\r\n")},
	{"no-break spaces", atkJoin("\u00a0")},
	{"full-width digits", func(p string) string { return atkScript(atkJoin(" ")(p), '０') }},
	{"Arabic-Indic digits", func(p string) string { return atkScript(p, '٠') }},
	{"Extended Arabic-Indic (Persian) digits", func(p string) string { return atkScript(atkJoin(" ")(p), '۰') }},
	{"Devanagari digits", func(p string) string { return atkScript(p, '०') }},
	{"Bengali digits", func(p string) string { return atkScript(atkJoin("-")(p), '০') }},
	{"Thai digits", func(p string) string { return atkScript(p, '๐') }},
	{"a different script per group", func(p string) string {
		zeros := []rune{'0', '٠', '०', '０'}
		var out []string
		for i, g := range atkGroups(p) {
			out = append(out, atkScript(g, zeros[i%len(zeros)]))
		}
		return strings.Join(out, " ")
	}},
	{"ASCII and monospace mathematical digits", func(p string) string {
		var out []string
		for i, g := range atkGroups(p) {
			if i%2 == 1 {
				g = atkScript(g, '\U0001D7F6')
			}
			out = append(out, g)
		}
		return strings.Join(out, "")
	}},
	{"zero-width spaces between digits", func(p string) string { return atkBetweenDigits(p, "\u200b") }},
	{"zero-width joiners, non-joiners, word joiners and BOMs between digits", func(p string) string {
		return atkBetweenDigits(p, "\u200d", "\u200c", "\u2060", "\ufeff")
	}},
	{"soft hyphens between digits", func(p string) string { return atkBetweenDigits(p, "\u00ad") }},
	{"zero-width characters around spaced dashes", atkJoin(" \u200b-\u200b ")},
	{"a zero-width space and a word joiner between groups of spaced digits", atkJoin(" \u200b\u2060 ")},
	{"Hangul fillers (invisible letters) between groups", atkJoin("\u3164")},
	{"combining low line under every digit", func(p string) string { return atkEachDigit(p, "\u0332") }},
	{"keycap digits", func(p string) string { return atkEachDigit(p, "\ufe0f\u20e3") }},
}

// atkURLStyles are the styles a URL can carry as they are.
var atkURLStyles = []atkStyle{
	{"no separator", func(p string) string { return p }},
	{"dashes", atkJoin("-")},
	{"dots", atkJoin(".")},
	{"plus signs (query-string spaces)", atkJoin("+")},
	{"percent-encoded spaces", atkJoin("%20")},
	{"percent-encoded digits", func(p string) string {
		var b strings.Builder
		for _, r := range p {
			fmt.Fprintf(&b, "%%%02X", r)
		}
		return b.String()
	}},
	{"percent-encoded full-width digits", func(p string) string { return url.QueryEscape(atkScript(p, '０')) }},
}

// atkTextField is one free-text field of a mutating RPC.
type atkTextField struct {
	name string
	as   user
	proc string
	// field is the request field the refusal must name.
	field string
	// body is the request with text in the field.
	body func(text string) any
	// control is the request for the control row (a Luhn-invalid number,
	// accepted); body when nil. Fields whose target a control would change
	// for good (a suspension, a resolution) aim it at a twin.
	control func(text string) any
	// url fields get the URL styles.
	url bool
	// maxRunes is the field's length limit, so that no row is refused for
	// its length instead (0: long enough for every style).
	maxRunes int
}

// TestAttackCardData: see the file comment.
func TestAttackCardData(t *testing.T) {
	t.Parallel()
	e, db := attackEnv(t)
	m, c, adm := e.merchant(t), e.customer(t), e.admin(t)
	victim, twin := e.merchant(t), e.merchant(t)
	rcv := newReceiver(t)
	endpoint := e.endpoint(t, m, rcv, "*")

	mustPay := func(amount int64) *pb.Payment { return e.create(t, c, pay(m, amount, "USD", "pm_card_visa")) }
	paid, toDispute, controlDispute := mustPay(5000), mustPay(4000), mustPay(3000)
	openDispute := func(p *pb.Payment) *pb.Dispute {
		d := e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p.GetId(), "reason": "DISPUTE_REASON_GENERAL", "amount": 1000}).dispute(t)
		return e.waitDispute(t, c, d.GetId(), "notified", func(d *pb.Dispute) bool { return len(d.GetTimeline()) >= 2 })
	}
	d, dTwin := openDispute(toDispute), openDispute(controlDispute)
	spare := mustPay(1500) // OpenDispute's target: no dispute yet
	var cases []string
	for i := range 2 {
		id := fmt.Sprintf("rcn_atk_card_%d_%s", i, strings.ToLower(paid.GetId()[4:]))
		atkCheck(t, e.Store.RecordReconciliation(ctxT(t), store.ReconciliationCase{
			ID: id, PaymentID: paid.GetId(), Kind: reconciliationcase.KindUnexpectedCharge, PaymentStatus: "failed",
			GatewayStatus: "succeeded", Gateway: "sandbox", Amount: 700, Currency: "USD", Action: "none", At: time.Now(),
		}, nil))
		cases = append(cases, id)
	}
	var seq atomic.Int64
	email := func(kind string) string {
		return fmt.Sprintf("card-%s-%d-%d@example.test", kind, time.Now().UnixNano(), seq.Add(1))
	}
	evidence := func(field string) func(string) any {
		return func(text string) any {
			return map[string]any{"dispute_id": d.GetId(), "evidence": map[string]any{field: text}, "submit": false}
		}
	}

	fields := []atkTextField{
		{name: "CreatePayment.description", as: c, proc: procCreatePayment, field: "description",
			body: func(s string) any {
				return pay(m, 1000, "USD", "pm_card_visa").set("description", "order "+s+" thanks")
			}},
		{name: "CreatePayment.metadata value", as: c, proc: procCreatePayment, field: "metadata",
			body: func(s string) any {
				return pay(m, 1000, "USD", "pm_card_visa").set("metadata", map[string]string{"note": s})
			}},
		{name: "CreatePayment.metadata key", as: c, proc: procCreatePayment, field: "metadata", maxRunes: 40,
			body: func(s string) any {
				return pay(m, 1000, "USD", "pm_card_visa").set("metadata", map[string]string{s: "x"})
			}},
		{name: "CreatePayment.payment_method", as: c, proc: procCreatePayment, field: "payment_method",
			body: func(s string) any { return pay(m, 1000, "USD", s) },
			// A payment method is a token or nothing: no control.
			control: func(string) any { return nil }},
		{name: "CreatePayment.return_url", as: c, proc: procCreatePayment, field: "return_url", url: true,
			body: func(s string) any {
				return pay(m, 1000, "USD", "pm_card_visa").set("return_url", "https://shop.example/back?card="+s)
			}},
		// CancelPayment.reason is one of four codes, not free text: anything
		// else is invalid_argument (TestAttackInput).
		{name: "CreateRefund.metadata value", as: m, proc: procCreateRefund, field: "metadata",
			body: func(s string) any {
				return map[string]any{"payment_id": paid.GetId(), "amount": 10, "metadata": map[string]string{"note": s}}
			}},
		{name: "CreateRefund.metadata key", as: m, proc: procCreateRefund, field: "metadata", maxRunes: 40,
			body: func(s string) any {
				return map[string]any{"payment_id": paid.GetId(), "amount": 10, "metadata": map[string]string{s: "x"}}
			}},
		{name: "OpenDispute.description", as: c, proc: procOpenDispute, field: "description",
			body: func(s string) any {
				return map[string]any{"payment_id": spare.GetId(), "reason": "DISPUTE_REASON_FRAUDULENT", "description": "I paid with " + s}
			},
			control: func(string) any { return nil }},
		{name: "SubmitEvidence.explanation", as: m, proc: procSubmitEvidence, field: "evidence.explanation", body: evidence("explanation")},
		{name: "SubmitEvidence.product_description", as: m, proc: procSubmitEvidence, field: "evidence.product_description", body: evidence("product_description")},
		{name: "SubmitEvidence.customer_communication", as: m, proc: procSubmitEvidence, field: "evidence.customer_communication", body: evidence("customer_communication")},
		{name: "SubmitEvidence.shipping_tracking_number", as: m, proc: procSubmitEvidence, field: "evidence.shipping_tracking_number", body: evidence("shipping_tracking_number")},
		{name: "SubmitEvidence.refund_policy", as: m, proc: procSubmitEvidence, field: "evidence.refund_policy", body: evidence("refund_policy")},
		{name: "SubmitEvidence.uncategorized_text", as: m, proc: procSubmitEvidence, field: "evidence.uncategorized_text", body: evidence("uncategorized_text")},
		{name: "SubmitEvidence (the claimant's).explanation", as: c, proc: procSubmitEvidence, field: "evidence.explanation", body: evidence("explanation")},
		{name: "ResolveDispute.note", as: adm, proc: procResolveDispute, field: "note",
			body: func(s string) any {
				return map[string]any{"dispute_id": d.GetId(), "outcome": "DISPUTE_OUTCOME_WON", "note": "card " + s}
			},
			control: func(s string) any {
				return map[string]any{"dispute_id": dTwin.GetId(), "outcome": "DISPUTE_OUTCOME_WON", "note": "card " + s}
			}},
		{name: "SuspendAccount.note", as: adm, proc: rpcSuspendAccount, field: "note",
			body: func(s string) any {
				return map[string]any{"id": victim.ID, "reason": "SUSPENSION_REASON_FRAUD", "note": "used card " + s}
			},
			control: func(s string) any {
				return map[string]any{"id": twin.ID, "reason": "SUSPENSION_REASON_FRAUD", "note": "used card " + s}
			}},
		{name: "ResolveReconciliationCase.note", as: adm, proc: procResolveReconciliationCase, field: "note",
			body:    func(s string) any { return map[string]any{"id": cases[0], "note": "refunded to " + s} },
			control: func(s string) any { return map[string]any{"id": cases[1], "note": "refunded to " + s} }},
		{name: "Register.display_name", proc: procRegister, field: "display_name", maxRunes: 100,
			body: func(s string) any {
				return map[string]any{"email": email("reg"), "password": password, "role": "ROLE_CUSTOMER", "display_name": s}
			}},
		{name: "Register.business_name", proc: procRegister, field: "business_name", maxRunes: 200,
			body: func(s string) any {
				return map[string]any{"email": email("biz"), "password": password, "role": "ROLE_MERCHANT", "business_name": s}
			}},
		{name: "UpdateMe.display_name", as: m, proc: rpcUpdateMe, field: "display_name", maxRunes: 100,
			body: func(s string) any { return map[string]any{"display_name": s} }},
		{name: "UpdateMe.business_name", as: m, proc: rpcUpdateMe, field: "business_name", maxRunes: 200,
			body: func(s string) any { return map[string]any{"business_name": s} }},
		{name: "CreateAdmin.display_name", as: adm, proc: atkRPC("AdminService", "CreateAdmin"), field: "display_name", maxRunes: 100,
			body: func(s string) any {
				return map[string]any{"email": email("adm"), "password": password, "display_name": s}
			}},
		{name: "CreateApiKey.name", as: m, proc: rpcCreateAPIKey, field: "name", maxRunes: 100,
			body: func(s string) any { return map[string]any{"name": s} }},
		{name: "CreateWebhookEndpoint.description", as: m, proc: procCreateEndpoint, field: "description",
			body: func(s string) any {
				return map[string]any{"url": rcv.srv.URL + "/hooks", "enabled_events": []string{"*"}, "description": "card " + s}
			}},
		{name: "UpdateWebhookEndpoint.description", as: m, proc: procUpdateEndpoint, field: "description",
			body: func(s string) any { return map[string]any{"id": endpoint, "description": "card " + s} }},
		// Not in the table: a webhook endpoint's url. Receivers' URLs carry
		// numeric ids (Discord's are 17 to 19 digit snowflakes, one in ten
		// Luhn-valid), so the API does not refuse Luhn-valid numbers there.
	}

	// Controls: each field takes text (a Luhn-invalid number where the
	// style allows) when it is no card number, so a refusal below is the
	// card number's and a miss would have been stored.
	const notACard = "4242424242424241"
	for _, f := range fields {
		body := f.body
		if f.control != nil {
			body = f.control
		}
		req := body(notACard)
		if req == nil {
			continue
		}
		if r := e.post(t, f.as.Token, f.proc, req); r.status != http.StatusOK {
			t.Fatalf("control for %s: a Luhn-invalid number is refused: %s", f.name, r)
		}
	}

	db.quiet(t)
	rows, skipped := 0, 0
	for _, f := range fields {
		styles := atkTextStyles
		if f.url {
			styles = atkURLStyles
		}
		for i, st := range styles {
			pan := atkPANs[i%len(atkPANs)]
			text := st.write(pan)
			if f.maxRunes > 0 && utf8.RuneCountInString(text) > f.maxRunes {
				skipped++
				continue
			}
			rows++
			ok := t.Run(f.name+"/"+st.name, func(t *testing.T) {
				r := db.refusedUnchanged(t, func() reply { return e.post(t, f.as.Token, f.proc, f.body(text)) })
				// The card data refusal (api/carddata.go), not another one
				// the field also has (a payment method that is no gateway
				// token says "a gateway token such as pm_card_visa" too).
				if r.code != "invalid_argument" || !strings.Contains(r.msg, "looks like card data") {
					t.Fatalf("%s written with %s (%q) was not refused as card data: %s", pan, st.name, text, r)
				}
				if got := r.fields(t); !slices.Equal(got, []string{f.field}) {
					t.Fatalf("the refusal names the fields %q, want %q: %s", got, f.field, r)
				}
				// Looked for in the message and the details as decoded: the
				// JSON body escapes some characters (CR, LF, <, >) and
				// carries the details in base64.
				for _, said := range atkRefusalTexts(t, r) {
					if strings.Contains(said, pan) || strings.Contains(said, text) {
						t.Fatalf("the refusal repeats the number (%q): %q", text, said)
					}
				}
			})
			if !ok {
				// What a miss started (a payment's workflow, its events)
				// must not be blamed on the rows after it.
				db.quiet(t)
			}
		}
	}
	t.Logf("card data table: %d fields, %d rows (%d text styles, %d URL styles; %d style x field pairs over the field's length limit)",
		len(fields), rows, len(atkTextStyles), len(atkURLStyles), skipped)
}

// atkRefusalTexts are what a refusal says, decoded: its message and each of
// its error details (the wire form of the detail's message).
func atkRefusalTexts(t *testing.T, r reply) []string {
	t.Helper()
	out := []string{r.msg}
	for _, d := range r.details {
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
		if err != nil {
			t.Fatalf("error detail %s is not base64: %v: %s", d.Type, err, r)
		}
		out = append(out, string(raw))
	}
	return out
}
