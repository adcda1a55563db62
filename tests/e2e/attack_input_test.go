package e2e

// Attack table 3 of issue 12: hostile input. Oversized and deeply nested
// bodies, invalid UTF-8, numbers outside int64 or not numbers, unknown
// fields, SQL metacharacters and NUL bytes in every string filter of every
// List RPC, and page tokens that were edited, truncated, swapped between
// accounts or replayed against other filters or lists. Every row is refused
// with its documented code (never `internal`) or, for a filter, answers an
// empty list (never anyone's rows); the database is unchanged.

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/store"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// atkInputRow is one hostile request.
type atkInputRow struct {
	name    string
	as      user
	proc    string
	body    any // JSON-encoded unless a string or []byte (sent as is)
	headers []string
	code    string // the Connect code; atkEmpty: 200 with empty lists
	field   string // the field violation the refusal must name ("" = not checked)
}

// atkEmpty marks a row that may answer 200, with every list empty.
const atkEmpty = "empty"

// TestAttackInput: see the file comment.
func TestAttackInput(t *testing.T) {
	t.Parallel()
	e, db := attackEnv(t)
	m, c := e.merchant(t), e.customer(t)
	other, otherC := e.merchant(t), e.customer(t)
	adm := e.admin(t)
	e.loginAs(t, m.Email, password) // a second session
	atkAPIKey(t, e, m, "key one")
	atkAPIKey(t, e, m, "key two")
	rcvA, rcvB := newReceiver(t), newReceiver(t)
	e.endpoint(t, m, rcvA, "*")
	e.endpoint(t, m, rcvB, "*")

	var paid []*pb.Payment
	for i := range 5 {
		p := e.create(t, c, pay(m, int64(1000+i), "USD", "pm_card_visa"))
		wantStatus(t, p, stSucceeded)
		paid = append(paid, p)
	}
	for _, p := range paid[:2] {
		e.post(t, m.Token, procCreateRefund, map[string]any{"payment_id": p.GetId(), "amount": 100}).refund(t)
	}
	for _, p := range paid[3:5] {
		e.post(t, c.Token, procOpenDispute, map[string]any{"payment_id": p.GetId(), "reason": "DISPUTE_REASON_GENERAL"}).dispute(t)
	}
	held := e.create(t, c, pay(m, 3000, "USD", "pm_card_visa").manual())
	wantStatus(t, held, stRequiresCapture)
	for i := range 2 {
		e.create(t, otherC, pay(other, int64(2000+i), "USD", "pm_card_visa"))
	}
	for i := range 2 {
		atkCheck(t, e.Store.RecordReconciliation(ctxT(t), store.ReconciliationCase{
			ID: fmt.Sprintf("rcn_atk_input_%d_%s", i, strings.ToLower(paid[i].GetId()[4:])), PaymentID: paid[i].GetId(),
			Kind: reconciliationcase.KindUnexpectedCharge, PaymentStatus: "failed", GatewayStatus: "succeeded",
			Gateway: "sandbox", Amount: 500, Currency: "USD", Action: "none", At: time.Now(),
		}, nil))
	}
	rcvA.waitFor(t, "payment.succeeded", "refund.succeeded", "dispute.opened")
	rcvB.waitFor(t, "payment.succeeded", "refund.succeeded", "dispute.opened")

	good := pay(m, 1000, "USD", "pm_card_visa")
	goodJSON := string(atkJSON(t, good))
	// withRaw is good with a field k added, its value raw JSON text.
	withRaw := func(k, raw string) string {
		return strings.TrimSuffix(goodJSON, "}") + `,"` + k + `":` + raw + `}`
	}
	// replaceRaw is good with field k's value replaced by raw JSON text
	// (which may be anything: invalid UTF-8, numbers out of range).
	replaceRaw := func(k, raw string) []byte {
		var obj map[string]json.RawMessage
		atkCheck(t, json.Unmarshal([]byte(goodJSON), &obj))
		obj[k] = json.RawMessage(raw)
		var b bytes.Buffer
		b.WriteString("{")
		first := true
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			if !first {
				b.WriteString(",")
			}
			first = false
			fmt.Fprintf(&b, "%q:", key)
			b.Write(obj[key])
		}
		b.WriteString("}")
		return b.Bytes()
	}
	const createPayment, capture, refund, dispute = procCreatePayment, procCapturePayment, procCreateRefund, procOpenDispute
	limit := api.MaxRequestBytes
	pad := func(body string, n int) []byte {
		return []byte(body[:len(body)-1] + strings.Repeat(" ", n-len(body)) + "}")
	}
	nest := func(open, close string, depth int, inner string) string {
		return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(pad(goodJSON, limit+1))
	atkCheck(t, zw.Close())

	rows := []atkInputRow{
		// ---- oversized bodies (api.MaxRequestBytes, 1 MiB) ----
		{name: "CreatePayment padded to 1 MiB + 1", as: c, proc: createPayment, body: pad(goodJSON, limit+1), code: "resource_exhausted"},
		{name: "CreatePayment with a 1 MiB description", as: c, proc: createPayment, body: good.set("description", strings.Repeat("d", limit)), code: "resource_exhausted"},
		{name: "CreatePayment with 1 MiB of metadata", as: c, proc: createPayment, body: good.set("metadata", atkBigMetadata(limit)), code: "resource_exhausted"},
		{name: "CreatePayment gzip inflating to 1 MiB + 1", as: c, proc: createPayment, body: gz.Bytes(), headers: []string{"Content-Encoding", "gzip"}, code: "resource_exhausted"},
		{name: "ListPayments padded to 1 MiB + 1", as: m, proc: procListPayments, body: pad(`{}`, limit+1), code: "resource_exhausted"},
		{name: "Register padded to 1 MiB + 1", proc: procRegister, body: pad(`{"email":"big@example.test","password":"`+password+`","role":"ROLE_MERCHANT"}`, limit+1), code: "resource_exhausted"},
		{name: "anonymous CreatePayment over 1 MiB is refused before the body", proc: createPayment, body: pad(goodJSON, limit+1), code: "unauthenticated"},

		// ---- deeply nested JSON ----
		{name: "description nested 100000 arrays deep", as: c, proc: createPayment, body: withRaw("description", nest("[", "]", 100000, `"x"`)), code: "invalid_argument"},
		{name: "unknown field nested 100000 objects deep", as: c, proc: createPayment, body: withRaw("x", nest(`{"x":`, "}", 100000, "1")), code: "invalid_argument"},
		{name: "metadata value nested 50000 objects deep", as: c, proc: createPayment, body: replaceRaw("metadata", `{"k":`+nest(`{"k":`, "}", 50000, `"v"`)+`}`), code: "invalid_argument"},
		{name: "amount nested 100000 arrays deep", as: c, proc: createPayment, body: replaceRaw("amount", nest("[", "]", 100000, "1000")), code: "invalid_argument"},
		{name: "created_after nested 50000 objects deep", as: m, proc: procListPayments, body: `{"created_after":` + nest(`{"seconds":`, "}", 50000, "1") + `}`, code: "invalid_argument"},
		{name: "a body of 400000 open brackets", as: c, proc: createPayment, body: strings.Repeat("[", 400000), code: "invalid_argument"},

		// ---- invalid UTF-8 ----
		{name: "description with 0xff 0xfe", as: c, proc: createPayment, body: replaceRaw("description", "\"bad \xff\xfe\""), code: "invalid_argument"},
		{name: "description with an overlong '/'", as: c, proc: createPayment, body: replaceRaw("description", "\"a\xc0\xafb\""), code: "invalid_argument"},
		{name: "description with a UTF-8 encoded surrogate", as: c, proc: createPayment, body: replaceRaw("description", "\"a\xed\xa0\x80b\""), code: "invalid_argument"},
		{name: "description with a lone surrogate escape", as: c, proc: createPayment, body: replaceRaw("description", `"a\ud800b"`), code: "invalid_argument"},
		{name: "description truncated mid-character", as: c, proc: createPayment, body: replaceRaw("description", "\"caf\xc3\""), code: "invalid_argument"},
		{name: "metadata key with invalid UTF-8", as: c, proc: createPayment, body: replaceRaw("metadata", "{\"k\xc3\x28\":\"v\"}"), code: "invalid_argument"},
		{name: "metadata value with invalid UTF-8", as: c, proc: createPayment, body: replaceRaw("metadata", "{\"k\":\"v\x80\"}"), code: "invalid_argument"},
		{name: "payment_method with invalid UTF-8", as: c, proc: createPayment, body: replaceRaw("payment_method", "\"pm_card_visa\xff\""), code: "invalid_argument"},
		{name: "a field name with invalid UTF-8", as: c, proc: createPayment, body: []byte(strings.TrimSuffix(goodJSON, "}") + ",\"descr\xffiption\":\"x\"}"), code: "invalid_argument"},
		{name: "ListPayments filter with invalid UTF-8", as: m, proc: procListPayments, body: "{\"customer_id\":\"acct_\xff\"}", code: "invalid_argument"},
		{name: "Register display_name with invalid UTF-8", proc: procRegister, body: "{\"email\":\"utf8@example.test\",\"password\":\"" + password + "\",\"role\":\"ROLE_CUSTOMER\",\"display_name\":\"\xfe\"}", code: "invalid_argument"},

		// ---- numbers: out of int64, not numbers, numbers as odd strings ----
		{name: "amount 2^63 as a string", as: c, proc: createPayment, body: replaceRaw("amount", `"9223372036854775808"`), code: "invalid_argument"},
		{name: "amount 2^63 as a number", as: c, proc: createPayment, body: replaceRaw("amount", `9223372036854775808`), code: "invalid_argument"},
		{name: "amount -2^63-1", as: c, proc: createPayment, body: replaceRaw("amount", `-9223372036854775809`), code: "invalid_argument"},
		{name: "amount -2^63-1 as a string", as: c, proc: createPayment, body: replaceRaw("amount", `"-9223372036854775809"`), code: "invalid_argument"},
		{name: "amount 2^64", as: c, proc: createPayment, body: replaceRaw("amount", `18446744073709551616`), code: "invalid_argument"},
		{name: "amount 1e19", as: c, proc: createPayment, body: replaceRaw("amount", `1e19`), code: "invalid_argument"},
		{name: "amount 1e400", as: c, proc: createPayment, body: replaceRaw("amount", `1e400`), code: "invalid_argument"},
		{name: "amount of 30 digits as a string", as: c, proc: createPayment, body: replaceRaw("amount", `"999999999999999999999999999999"`), code: "invalid_argument"},
		{name: "amount int64 max (over the 99,999,999,999 cap)", as: c, proc: createPayment, body: replaceRaw("amount", `"9223372036854775807"`), code: "invalid_argument", field: "amount"},
		{name: "amount int64 min", as: c, proc: createPayment, body: replaceRaw("amount", `"-9223372036854775808"`), code: "invalid_argument", field: "amount"},
		{name: "amount 1000.5", as: c, proc: createPayment, body: replaceRaw("amount", `1000.5`), code: "invalid_argument"},
		{name: "amount \"1000.5\"", as: c, proc: createPayment, body: replaceRaw("amount", `"1000.5"`), code: "invalid_argument"},
		{name: "amount hexadecimal", as: c, proc: createPayment, body: replaceRaw("amount", `"0x3e8"`), code: "invalid_argument"},
		{name: "amount with a leading space", as: c, proc: createPayment, body: replaceRaw("amount", `" 1000"`), code: "invalid_argument"},
		{name: "amount with a plus sign", as: c, proc: createPayment, body: replaceRaw("amount", `"+1000"`), code: "invalid_argument"},
		{name: "amount with a thousands separator", as: c, proc: createPayment, body: replaceRaw("amount", `"1,000"`), code: "invalid_argument"},
		{name: "amount in Arabic-Indic digits", as: c, proc: createPayment, body: replaceRaw("amount", `"١٠٠٠"`), code: "invalid_argument"},
		{name: "amount in full-width digits", as: c, proc: createPayment, body: replaceRaw("amount", `"１０００"`), code: "invalid_argument"},
		{name: "amount NaN", as: c, proc: createPayment, body: replaceRaw("amount", `"NaN"`), code: "invalid_argument"},
		{name: "amount Infinity", as: c, proc: createPayment, body: replaceRaw("amount", `"Infinity"`), code: "invalid_argument"},
		{name: "amount empty string", as: c, proc: createPayment, body: replaceRaw("amount", `""`), code: "invalid_argument"},
		{name: "amount true", as: c, proc: createPayment, body: replaceRaw("amount", `true`), code: "invalid_argument"},
		{name: "amount an object", as: c, proc: createPayment, body: replaceRaw("amount", `{"value":1000}`), code: "invalid_argument"},
		{name: "amount with a leading zero", as: c, proc: createPayment, body: replaceRaw("amount", `01000`), code: "invalid_argument"},
		{name: "capture amount 2^63", as: m, proc: capture, body: `{"id":"` + held.GetId() + `","amount":"9223372036854775808"}`, code: "invalid_argument"},
		{name: "capture amount -1", as: m, proc: capture, body: map[string]any{"id": held.GetId(), "amount": -1}, code: "invalid_argument", field: "amount"},
		{name: "capture amount 1e19", as: m, proc: capture, body: `{"id":"` + held.GetId() + `","amount":1e19}`, code: "invalid_argument"},
		{name: "capture amount 2.5", as: m, proc: capture, body: `{"id":"` + held.GetId() + `","amount":2.5}`, code: "invalid_argument"},
		{name: "refund amount 2^63", as: m, proc: refund, body: `{"payment_id":"` + paid[2].GetId() + `","amount":"9223372036854775808"}`, code: "invalid_argument"},
		{name: "refund amount -5", as: m, proc: refund, body: map[string]any{"payment_id": paid[2].GetId(), "amount": -5}, code: "invalid_argument", field: "amount"},
		{name: "refund amount 1e30", as: m, proc: refund, body: `{"payment_id":"` + paid[2].GetId() + `","amount":1e30}`, code: "invalid_argument"},
		{name: "dispute amount 2^63", as: c, proc: dispute, body: `{"payment_id":"` + paid[2].GetId() + `","reason":"DISPUTE_REASON_GENERAL","amount":"9223372036854775808"}`, code: "invalid_argument"},
		{name: "dispute amount -1", as: c, proc: dispute, body: map[string]any{"payment_id": paid[2].GetId(), "reason": "DISPUTE_REASON_GENERAL", "amount": -1}, code: "invalid_argument", field: "amount"},
		{name: "transactions amount_min 2^63", as: m, proc: procListTransactions, body: `{"amount_min":"9223372036854775808"}`, code: "invalid_argument"},
		{name: "transactions amount_max -2^63-1", as: m, proc: procListTransactions, body: `{"amount_max":-9223372036854775809}`, code: "invalid_argument"},
		{name: "transactions amount_min above amount_max", as: m, proc: procListTransactions, body: map[string]any{"amount_min": 10, "amount_max": 5}, code: "invalid_argument"},
		{name: "page_size 2^31", as: m, proc: procListPayments, body: `{"page_size":2147483648}`, code: "invalid_argument"},
		{name: "page_size 101", as: m, proc: procListPayments, body: map[string]any{"page_size": 101}, code: "invalid_argument", field: "page_size"},
		{name: "page_size -1", as: m, proc: procListPayments, body: map[string]any{"page_size": -1}, code: "invalid_argument", field: "page_size"},
		{name: "page_size \"1e9\"", as: m, proc: procListPayments, body: `{"page_size":"1e9"}`, code: "invalid_argument"},

		// ---- unknown fields (and other shapes protojson must not guess) ----
		{name: "CreatePayment with a misspelt field", as: c, proc: createPayment, body: good.set("amout", 1000), code: "invalid_argument"},
		{name: "CreatePayment with a field in the wrong case", as: c, proc: createPayment, body: good.set("Description", "x"), code: "invalid_argument"},
		{name: "CreatePayment with __proto__", as: c, proc: createPayment, body: good.set("__proto__", map[string]any{"admin": true}), code: "invalid_argument"},
		{name: "CreatePayment with a status", as: c, proc: createPayment, body: good.set("status", "PAYMENT_STATUS_SUCCEEDED"), code: "invalid_argument"},
		{name: "CreatePayment with a field given twice", as: c, proc: createPayment, body: strings.TrimSuffix(goodJSON, "}") + `,"amount":1}`, code: "invalid_argument"},
		{name: "CreatePayment with the snake and camel name of a field", as: c, proc: createPayment, body: strings.TrimSuffix(goodJSON, "}") + `,"paymentMethod":"pm_card_mastercard"}`, code: "invalid_argument"},
		{name: "GetPayment with merchant_id", as: other, proc: procGetPayment, body: map[string]any{"id": paid[0].GetId(), "merchant_id": m.ID}, code: "invalid_argument"},
		{name: "ListPayments with a party", as: other, proc: procListPayments, body: map[string]any{"party": m.ID}, code: "invalid_argument"},
		{name: "CreateRefund with force", as: m, proc: refund, body: map[string]any{"payment_id": paid[2].GetId(), "amount": 100, "force": true}, code: "invalid_argument"},
		{name: "CapturePayment with amount_to_capture", as: m, proc: capture, body: map[string]any{"id": held.GetId(), "amount_to_capture": 10}, code: "invalid_argument"},
		{name: "CancelPayment with void", as: m, proc: procCancelPayment, body: map[string]any{"id": held.GetId(), "void": true}, code: "invalid_argument"},
		{name: "CancelPayment with a reason that is not a code", as: m, proc: procCancelPayment, body: map[string]any{"id": held.GetId(), "reason": "customer changed their mind"}, code: "invalid_argument", field: "reason"},
		{name: "GetMe with account_id", as: c, proc: rpcGetMe, body: map[string]any{"account_id": m.ID}, code: "invalid_argument"},
		{name: "Register with role admin", proc: procRegister, body: map[string]any{"email": "root@example.test", "password": password, "role": "ROLE_ADMIN"}, code: "invalid_argument", field: "role"},
		{name: "Register with an unknown role number", proc: procRegister, body: map[string]any{"email": "root2@example.test", "password": password, "role": 99}, code: "invalid_argument"},
		{name: "capture_method out of the enum", as: c, proc: createPayment, body: good.set("capture_method", 3), code: "invalid_argument"},
		{name: "a JSON array body", as: c, proc: createPayment, body: `[` + goodJSON + `]`, code: "invalid_argument"},
		{name: "two JSON objects", as: c, proc: createPayment, body: goodJSON + goodJSON, code: "invalid_argument"},
	}

	// ---- SQL metacharacters and NUL bytes in every string filter of every List RPC ----
	payloads := []string{
		`' OR '1'='1`, `" OR ""="`, `%`, `_`, `\`, `'; DROP TABLE payments; --`, `') OR 1=1 --`,
		"\x00", "\x00' OR '1'='1", `*`, `%' UNION SELECT email, password_hash FROM accounts --`,
	}
	prefixOf := map[string]string{
		"merchant_id": "acct_", "customer_id": "acct_", "actor_id": "acct_", "target_id": "acct_",
		"payment_id": "pay_", "object_id": "pay_", "event_id": "evt_", "endpoint_id": "we_",
		"email_prefix": "merchant", "type": "payment.",
	}
	filters := 0
	for _, proc := range atkProcedures(t) {
		method := proc[strings.LastIndex(proc, "/")+1:]
		if !strings.HasPrefix(method, "List") {
			continue
		}
		fields := atkStringFields(t, proc)
		for _, who := range []user{m, adm} {
			// Callers the list serves at all (a control without filters):
			// the list answers, or refuses the role; any other answer is
			// the list broken, and its rows would prove nothing.
			r := e.post(t, who.Token, proc, map[string]any{})
			if r.code == "permission_denied" {
				continue
			}
			if r.status != http.StatusOK {
				t.Fatalf("control: %s without filters as %s: want 200 or permission_denied, got %s", method, who.Role, r)
			}
			for _, f := range fields {
				filters++
				for i, p := range payloads {
					for _, value := range []string{p, prefixOf[f] + p} {
						rows = append(rows, atkInputRow{
							name: fmt.Sprintf("%s %s %d as %s (%q)", method, f, i, strings.ToLower(strings.TrimPrefix(who.Role, "ROLE_")), value),
							as:   who, proc: proc, body: map[string]any{f: value}, code: "invalid_argument|" + atkEmpty,
						})
					}
				}
			}
		}
	}
	if filters < 20 {
		t.Fatalf("only %d (list, caller, string filter) combinations found", filters)
	}
	// Controls: the filters the payloads go through do filter, and would
	// have matched rows had a wildcard or a quote escaped: "merchant_"
	// matches every merchant's email if "_" were a LIKE wildcard.
	for _, ctl := range []struct {
		as   user
		proc string
		body map[string]any
	}{
		{adm, atkRPC("AdminService", "ListAccounts"), map[string]any{"email_prefix": "merchant"}},
		{m, procListPayments, map[string]any{"customer_id": c.ID}},
		{adm, procListTransactions, map[string]any{"merchant_id": m.ID}},
		{m, procListEvents, map[string]any{"object_id": paid[0].GetId()}},
		{adm, rpcListAuditEvents, map[string]any{"type": "account.registered"}},
	} {
		if r := e.post(t, ctl.as.Token, ctl.proc, ctl.body); r.status != http.StatusOK || atkListed(t, r) == 0 {
			t.Fatalf("control: %s %v lists nothing: %s", ctl.proc, ctl.body, r)
		}
	}

	// ---- page tokens ----
	type tokenOf struct {
		name string
		as   user
		proc string
	}
	lists := []tokenOf{
		{"payments", m, procListPayments},
		{"refunds", m, procListRefunds},
		{"disputes", m, procListDisputes},
		{"transactions", m, procListTransactions},
		{"events", m, procListEvents},
		{"deliveries", m, procListDeliveries},
		{"webhook endpoints", m, procListEndpoints},
		{"api keys", m, atkRPC("AccountService", "ListApiKeys")},
		{"sessions", m, atkRPC("AccountService", "ListSessions")},
		{"accounts", adm, atkRPC("AdminService", "ListAccounts")},
		{"audit events", adm, rpcListAuditEvents},
		{"reconciliation cases", adm, procListReconciliationCases},
	}
	tokens := map[string]string{}
	for _, l := range lists {
		r := e.post(t, l.as.Token, l.proc, map[string]any{"page_size": 1})
		var page struct {
			Next string `json:"nextPageToken"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &page) != nil || page.Next == "" {
			t.Fatalf("%s: no page token for a first page of one: %s", l.name, r)
		}
		tokens[l.name] = page.Next
		// The control: the token as given reads the next page.
		if r := e.post(t, l.as.Token, l.proc, map[string]any{"page_size": 1, "page_token": page.Next}); r.status != http.StatusOK {
			t.Fatalf("%s: the untouched token is refused: %s", l.name, r)
		}
	}
	edits := []struct {
		name string
		edit func(string) string
	}{
		{"version byte flipped", atkFlipBit(t, 0)},
		{"time flipped", atkFlipBit(t, 5)},
		{"id flipped", atkFlipBit(t, 12)},
		{"tag flipped", atkFlipBit(t, -1)},
		{"last character dropped", func(s string) string { return s[:len(s)-1] }},
		{"truncated to half", func(s string) string { return s[:len(s)/2] }},
		{"truncated to 8 characters", func(s string) string { return s[:8] }},
		{"one character appended", func(s string) string { return s + "A" }},
		{"four characters appended", func(s string) string { return s + "AAAA" }},
		{"padded like standard base64", func(s string) string { return s + "==" }},
		{"standard base64 alphabet", func(s string) string {
			return strings.NewReplacer("-", "+", "_", "/").Replace(s) + "+/"
		}},
		{"a NUL appended", func(s string) string { return s + "\x00" }},
		{"over 512 characters", func(s string) string { return s + strings.Repeat("A", 520) }},
	}
	for _, l := range lists {
		for _, ed := range edits {
			rows = append(rows, atkInputRow{name: "page token of " + l.name + ": " + ed.name, as: l.as, proc: l.proc,
				body: map[string]any{"page_size": 1, "page_token": ed.edit(tokens[l.name])}, code: "invalid_argument", field: "page_token"})
		}
	}
	// Swapped between accounts, replayed against other filters, and taken
	// to other lists.
	pt := tokens["payments"]
	moved := []atkInputRow{
		{name: "merchant A's payments token used by merchant B", as: other, proc: procListPayments, body: map[string]any{"page_token": pt}},
		{name: "merchant A's payments token used by A's customer", as: c, proc: procListPayments, body: map[string]any{"page_token": pt}},
		{name: "merchant A's payments token used by an admin", as: adm, proc: procListPayments, body: map[string]any{"page_token": pt}},
		{name: "merchant A's transactions token used by merchant B", as: other, proc: procListTransactions, body: map[string]any{"page_token": tokens["transactions"]}},
		{name: "merchant A's events token used by merchant B", as: other, proc: procListEvents, body: map[string]any{"page_token": tokens["events"]}},
		{name: "merchant A's api keys token used by merchant B", as: other, proc: atkRPC("AccountService", "ListApiKeys"), body: map[string]any{"page_token": tokens["api keys"]}},
		{name: "merchant A's sessions token used by merchant B", as: other, proc: atkRPC("AccountService", "ListSessions"), body: map[string]any{"page_token": tokens["sessions"]}},
		{name: "payments token with a status filter added", as: m, proc: procListPayments, body: map[string]any{"page_token": pt, "status": "PAYMENT_STATUS_SUCCEEDED"}},
		{name: "payments token with a currency filter added", as: m, proc: procListPayments, body: map[string]any{"page_token": pt, "currency": "usd"}},
		{name: "payments token with a customer filter added", as: m, proc: procListPayments, body: map[string]any{"page_token": pt, "customer_id": c.ID}},
		{name: "payments token with a created range added", as: m, proc: procListPayments, body: map[string]any{"page_token": pt, "created_after": "2000-01-01T00:00:00Z"}},
		{name: "transactions token with a type filter added", as: m, proc: procListTransactions, body: map[string]any{"page_token": tokens["transactions"], "type": "TRANSACTION_TYPE_REFUND"}},
		{name: "events token with an object filter added", as: m, proc: procListEvents, body: map[string]any{"page_token": tokens["events"], "object_id": paid[0].GetId()}},
		{name: "accounts token with a role filter added", as: adm, proc: atkRPC("AdminService", "ListAccounts"), body: map[string]any{"page_token": tokens["accounts"], "role": "ROLE_ADMIN"}},
		{name: "payments token on ListRefunds", as: m, proc: procListRefunds, body: map[string]any{"page_token": pt}},
		{name: "payments token on ListTransactions", as: m, proc: procListTransactions, body: map[string]any{"page_token": pt}},
		{name: "payments token on ListDisputes", as: m, proc: procListDisputes, body: map[string]any{"page_token": pt}},
		{name: "refunds token on ListPayments", as: m, proc: procListPayments, body: map[string]any{"page_token": tokens["refunds"]}},
		{name: "admin's accounts token on ListPayments", as: adm, proc: procListPayments, body: map[string]any{"page_token": tokens["accounts"]}},
		{name: "admin's audit token on ListAccounts", as: adm, proc: atkRPC("AdminService", "ListAccounts"), body: map[string]any{"page_token": tokens["audit events"]}},
	}
	for _, r := range moved {
		r.code, r.field = "invalid_argument", "page_token"
		rows = append(rows, r)
	}

	db.quiet(t)
	answers := map[string]int{} // filter rows by answer, for the log
	for _, row := range rows {
		ok := t.Run(row.name, func(t *testing.T) {
			r := db.refusedUnchanged(t, func() reply { return e.post(t, row.as.Token, row.proc, row.body, row.headers...) })
			if strings.Contains(row.code, atkEmpty) {
				answers[fmt.Sprintf("%d %s", r.status, r.code)]++
			}
			if r.code == "internal" || r.status >= 500 {
				t.Fatalf("a hostile request is an internal error: %s", r)
			}
			codes := strings.Split(row.code, "|")
			switch {
			case r.status == http.StatusOK && slices.Contains(codes, atkEmpty):
				if n := atkListed(t, r); n != 0 {
					t.Fatalf("a filter that matches nothing listed %d rows: %s", n, r)
				}
			case !slices.Contains(codes, r.code):
				t.Fatalf("want %s, got %s", row.code, r)
			case row.field != "" && !slices.Contains(r.fields(t), row.field):
				t.Fatalf("the refusal names %v, want %q: %s", r.fields(t), row.field, r)
			}
		})
		if !ok {
			db.quiet(t) // a failed row must not leave its writes to the next
		}
	}
	t.Logf("input table: %d rows (%d string filters of List RPCs x %d payloads x raw and prefixed: answered %v)",
		len(rows), filters, len(payloads), answers)
}

// atkBigMetadata is 50 metadata pairs adding up to more than n bytes.
func atkBigMetadata(n int) map[string]string {
	md := map[string]string{}
	for i := range 50 {
		md[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", n/50+1)
	}
	return md
}

// atkStringFields are the singular string fields of an RPC's request, but
// the page token (its own rows).
func atkStringFields(t *testing.T, proc string) []string {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(proc, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(parts[0]))
	if err != nil {
		t.Fatalf("%s: %v", proc, err)
	}
	md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(parts[1]))
	var out []string
	fs := md.Input().Fields()
	for i := range fs.Len() {
		f := fs.Get(i)
		if f.Kind() == protoreflect.StringKind && f.Cardinality() != protoreflect.Repeated && f.Name() != "page_token" {
			out = append(out, string(f.Name()))
		}
	}
	return out
}

// atkListed counts the rows of every list in a 200 answer.
func atkListed(t *testing.T, r reply) int {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(r.body, &obj); err != nil {
		t.Fatalf("answer is not JSON: %s", r)
	}
	n := 0
	for _, v := range obj {
		if list, ok := v.([]any); ok {
			n += len(list)
		}
	}
	return n
}

// atkFlipBit flips the lowest bit of byte i of the token's decoded bytes
// (i < 0 counts from the end) and encodes it again. A token that is not
// base64url, or too short for byte i, fails t: the row would edit
// something else than it says.
func atkFlipBit(t *testing.T, i int) func(string) string {
	return func(tok string) string {
		t.Helper()
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatalf("page token %q is not base64url: %v", tok, err)
		}
		j := i
		if j < 0 {
			j += len(raw)
		}
		if j < 0 || j >= len(raw) {
			t.Fatalf("page token %q has %d bytes: no byte %d to flip", tok, len(raw), i)
		}
		raw[j] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(raw)
	}
}
