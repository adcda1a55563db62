package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestCardDataNeverEnters: a request carrying what looks like card data (a
// Luhn-valid 12..19 digit number in payment_method, description, metadata or
// a cancel reason, or a metadata key named like a card field) is
// invalid_argument; nothing is
// stored (no payment row, and the number is nowhere in the database files),
// the gateway is not called, and the number appears neither in the logs nor
// in any workflow history of the namespace. A Luhn-invalid number in a
// description is accepted and serves as the positive control that each of
// these searches finds what is there.
func TestCardDataNeverEnters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "payments.db")
	e := newEnv(t, withLogs(), withStore(openSQLiteAt(t, dbPath)))
	m, c := e.merchant(t), e.customer(t)
	good := pay(m, 1000, "USD", "pm_card_visa")

	// Stripe's test card numbers, each Luhn-valid.
	tests := []struct {
		name   string
		req    payReq
		number string // as sent
	}{
		{"payment_method is a card number", good.set("payment_method", "4242424242424242"), "4242424242424242"},
		{"payment_method is a spaced card number", good.set("payment_method", "5555 5555 5555 4444"), "5555 5555 5555 4444"},
		{"payment_method hides a card number in a token", good.set("payment_method", "pm_4000056655665556"), "4000056655665556"},
		{"payment_method is a 12-digit card number", good.set("payment_method", "817263540913"), "817263540913"},
		{"payment_method is a 19-digit card number", good.set("payment_method", "4938172650438172653"), "4938172650438172653"},
		{"description holds a card number", good.set("description", "card 4000-0566-5566-5556 exp 12/34"), "4000-0566-5566-5556"},
		{"description holds a card number and CVC", good.set("description", "6011 1111 1111 1117 737"), "6011 1111 1111 1117"},
		{"metadata value holds a card number", good.set("metadata", map[string]string{"note": "amex 378282246310005"}), "378282246310005"},
		{"metadata key holds a card number", good.set("metadata", map[string]string{"3056930009020004": "diners"}), "3056930009020004"},
		{"metadata key cvc", good.set("metadata", map[string]string{"cvc": "cvc-e2e-secret-7351"}), "cvc-e2e-secret-7351"},
		{"metadata key CVV", good.set("metadata", map[string]string{"CVV": "cvv-e2e-secret-8462"}), "cvv-e2e-secret-8462"},
		{"metadata key card_number", good.set("metadata", map[string]string{"card_number": "3566-0020-2036-0505"}), "3566-0020-2036-0505"},
	}
	// The numbers, as sent and as bare digits.
	var secrets []string
	for _, tc := range tests {
		secrets = append(secrets, tc.number)
		if d := digitsOnly(tc.number); d != tc.number {
			secrets = append(secrets, d)
		}
	}

	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, calls := e.paymentRows(t), e.gw.counts()
			// With an Idempotency-Key too: it must not keep the request either.
			r := e.post(t, c.Token, procCreatePayment, tc.req, "Idempotency-Key", fmt.Sprintf("card-%d", i))
			wantCode(t, r, "invalid_argument")
			if strings.Contains(r.msg, tc.number) || strings.Contains(string(r.body), digitsOnly(tc.number)) {
				t.Fatalf("the refusal repeats the number: %s", r)
			}
			if got := e.paymentRows(t); got != rows {
				t.Fatalf("payment rows %d, before %d", got, rows)
			}
			if got := e.gw.counts(); got != calls {
				t.Fatal("the gateway was called")
			}
		})
	}

	// A cancel reason is free text too: the payment stays authorized.
	const inReason = "6011 0009 9013 9424"
	secrets = append(secrets, inReason, digitsOnly(inReason))
	held := e.create(t, c, good.manual())
	wantStatus(t, held, stRequiresCapture)
	// As the merchant (who cancels) sees it, with the gateway's reference.
	heldAsMerchant := e.get(t, m, held.GetId())
	calls := e.gw.counts()
	r := e.post(t, m.Token, procCancelPayment, map[string]any{"id": held.GetId(), "reason": "refund to card " + inReason},
		"Idempotency-Key", "cancel-card")
	wantCode(t, r, "invalid_argument")
	if strings.Contains(string(r.body), digitsOnly(inReason)) || strings.Contains(string(r.body), inReason) {
		t.Fatalf("the refusal repeats the number: %s", r)
	}
	if got := e.get(t, m, held.GetId()); !protoEqual(got, heldAsMerchant) {
		t.Fatalf("a refused cancel changed the payment:\n%v\n%v", heldAsMerchant, got)
	}
	if got := e.gw.counts(); got != calls {
		t.Fatal("a refused cancel reached the gateway")
	}

	// The positive control: a Luhn-invalid 16-digit reference is not card data.
	const control = "4242424242424241"
	p := e.create(t, c, good.set("description", "invoice "+control).set("metadata", map[string]string{"ref": control}))
	wantStatus(t, p, stSucceeded)
	if p.GetDescription() != "invoice "+control {
		t.Fatalf("description = %q", p.GetDescription())
	}
	e.waitClosed(t, p.GetWorkflowId())

	// Workflow histories: every workflow of the namespace, once the control
	// payment's is visible (visibility is eventually consistent).
	e.waitVisible(t, fmt.Sprintf("WorkflowId = '%s'", p.GetWorkflowId()), func(r []*workflowExecution) bool { return len(r) == 1 })
	all := e.listWorkflows(t, "")
	if len(all) == 0 {
		t.Fatal("no workflows listed")
	}
	controlSeen := false
	for _, w := range all {
		id := w.GetExecution().GetWorkflowId()
		var text bytes.Buffer
		for _, ev := range e.history(t, id) {
			// Payload data is bytes: binary protobuf holds it verbatim,
			// protojson as base64; search both.
			b, err := proto.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			j, err := protojson.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			text.Write(b)
			text.Write(j)
		}
		if s := findAny(text.String(), secrets); s != "" {
			t.Errorf("card number %q found in the history of workflow %s", s, id)
		}
		if strings.Contains(text.String(), control) {
			controlSeen = controlSeen || id == p.GetWorkflowId()
		}
	}
	if !controlSeen {
		t.Fatalf("the control number is not in the control payment's history: the history search is blind")
	}

	// Logs.
	logs := e.logs.String()
	if s := findAny(logs, secrets); s != "" {
		t.Errorf("card number %q found in the logs", s)
	}
	// The capture saw the refused requests (one rpc line each) and the
	// accounts: it is not blind.
	if n := strings.Count(logs, "code=invalid_argument"); n < len(tests) || !strings.Contains(logs, c.ID) {
		t.Fatalf("the log capture is blind: %d refused requests logged (want %d), customer %s mentioned: %v:\n%s",
			n, len(tests), c.ID, strings.Contains(logs, c.ID), logs)
	}

	// The database files (main file and write-ahead log).
	matches, _ := filepath.Glob(dbPath + "*")
	var db bytes.Buffer
	for _, f := range matches {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		db.Write(b)
	}
	if s := findAny(db.String(), secrets); s != "" {
		t.Errorf("card number %q found in the database files %v", s, matches)
	}
	if !strings.Contains(db.String(), control) {
		t.Fatalf("the control number is not in the database files %v: the search is blind", matches)
	}
}

func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// findAny returns the first of needles found in haystack, or "".
func findAny(haystack string, needles []string) string {
	for _, n := range needles {
		if strings.Contains(haystack, n) {
			return n
		}
	}
	return ""
}

// TestCardNumberWithOtherSeparatorsIsRefused: a Luhn-valid card number
// is card data however its digit groups are separated.
//
// Regression (fixed): api/carddata.go only joins digit groups separated
// by a single space or dash (`\d(?:[ -]?\d)+`), so the same number written
// with dots, slashes, underscores, a tab, a line break or two spaces passes,
// is stored in the payment's description or metadata, sent to the workflow
// (history) and shown to both parties. Fix: in looksLikeCardNumber, join
// digits across any short run of non-alphanumeric separators (for instance
// `\d(?:[^\p{L}\p{N}]{0,3}\d)+`, then strip non-digits), and fold Unicode
// digits (full-width ４２４２...) to ASCII before the Luhn check.
func TestCardNumberWithOtherSeparatorsIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	good := pay(m, 1000, "USD", "pm_card_visa")
	for name, req := range map[string]payReq{
		"dots in description":        good.set("description", "card 4242.4242.4242.4242"),
		"slashes in description":     good.set("description", "card 4242/4242/4242/4242"),
		"two spaces in description":  good.set("description", "card 4242  4242  4242  4242"),
		"tabs in description":        good.set("description", "card 4242\t4242\t4242\t4242"),
		"line breaks in description": good.set("description", "card\n4242\n4242\n4242\n4242"),
		"underscores in metadata":    good.set("metadata", map[string]string{"note": "5555_5555_5555_4444"}),
		"full-width digits":          good.set("description", "４２４２４２４２４２４２４２４２"),
	} {
		t.Run(name, func(t *testing.T) {
			rows := e.paymentRows(t)
			r := e.post(t, c.Token, procCreatePayment, req)
			if r.code != "invalid_argument" {
				t.Errorf("a card number was accepted (%s); payment rows %d -> %d", r, rows, e.paymentRows(t))
			}
		})
	}
}

// TestCVCUnderOtherKeyNamesIsRefused: a metadata key naming a card
// verification code is refused whatever its spelling.
//
// Regression (fixed): cardFieldName in api/carddata.go matches whole
// keys from a short list, so a CVC under Stripe's own form parameter name
// card[cvc], with a trailing space, or named security_code is accepted and
// stored (a CVC has too few digits for the Luhn check to catch). Fix:
// normalise the key (lower case, drop everything but letters and digits) and
// refuse keys containing cvc, cvv, cvn, csc, cid as a word, securitycode,
// verificationcode/value, cardnumber or pan.
func TestCVCUnderOtherKeyNamesIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m, c := e.merchant(t), e.customer(t)
	good := pay(m, 1000, "USD", "pm_card_visa")
	for _, key := range []string{"card[cvc]", "card.cvc", "cvc ", "security_code", "card_security_code"} {
		t.Run(key, func(t *testing.T) {
			r := e.post(t, c.Token, procCreatePayment, good.set("metadata", map[string]string{key: "737"}))
			if r.code != "invalid_argument" {
				t.Errorf("metadata key %q holding a CVC was accepted: %s", key, r)
			}
		})
	}
}
