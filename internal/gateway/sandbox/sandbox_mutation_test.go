package sandbox

// Tests added where mutation testing (make mutate, docs/TESTING.md) found a
// changed line that no test noticed.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
)

// mkPayment creates a payment's intent under key, or fails the test.
func mkPayment(t *testing.T, sb *Sandbox, key, payment, method string, manual bool) gateway.Result {
	t.Helper()
	r := createReq(key, method, manual)
	r.PaymentID = payment
	res, err := sb.CreatePayment(t.Context(), r)
	if err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
	return res
}

// wantStatus checks the stored intent's status.
func wantStatus(t *testing.T, sb *Sandbox, ref string, want gateway.Status) {
	t.Helper()
	got, err := sb.Retrieve(t.Context(), ref)
	if err != nil || got.Status != want {
		t.Fatalf("Retrieve(%s) = %+v, %v; want status %s", ref, got, err, want)
	}
}

// TestKeyIsBoundToOneCall: an idempotency key that captured (or canceled)
// one intent is refused for another intent, as Stripe refuses a key reused
// with other parameters; calls without a key bind nothing, so any number of
// them act on their own.
func TestKeyIsBoundToOneCall(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	a := mkPayment(t, sb, "bound/a", "pay_bound_a", "pm_card_visa", true)
	b := mkPayment(t, sb, "bound/b", "pay_bound_b", "pm_card_visa", true)
	if _, err := sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "bound/capture", Reference: a.Reference}); err != nil {
		t.Fatal(err)
	}
	_, err := sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "bound/capture", Reference: b.Reference})
	wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
	wantStatus(t, sb, b.Reference, gateway.StatusRequiresCapture)

	c := mkPayment(t, sb, "bound/c", "pay_bound_c", "pm_card_visa", true)
	if _, err := sb.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "bound/cancel", Reference: b.Reference}); err != nil {
		t.Fatal(err)
	}
	_, err = sb.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "bound/cancel", Reference: c.Reference})
	wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
	wantStatus(t, sb, c.Reference, gateway.StatusRequiresCapture)

	// Without keys: two captures of two intents, two cancels of two more.
	for i, op := range []string{"capture", "capture", "cancel", "cancel"} {
		ref := mkPayment(t, sb, "bound/keyless/"+string(rune('a'+i)), "pay_bound_keyless", "pm_card_visa", true).Reference
		var err error
		want := gateway.StatusSucceeded
		if op == "capture" {
			_, err = sb.Capture(ctx, gateway.CaptureRequest{Reference: ref})
		} else {
			_, err = sb.Cancel(ctx, gateway.CancelRequest{Reference: ref, Reason: "abandoned"})
			want = gateway.StatusCanceled
		}
		if err != nil {
			t.Fatalf("keyless %s #%d: %v", op, i, err)
		}
		wantStatus(t, sb, ref, want)
	}
}

// TestKeyClaimedMeanwhile: when another call claims the same key between
// this call's look-up and its claim, this call compares with that claim and
// is refused if its parameters differ, rather than acting on its own intent.
func TestKeyClaimedMeanwhile(t *testing.T) {
	ctx := t.Context()
	st := newState(t)
	api := newSandboxOn(t, st)
	a := mkPayment(t, api, "meanwhile/a", "pay_meanwhile_a", "pm_card_visa", true)
	b := mkPayment(t, api, "meanwhile/b", "pay_meanwhile_b", "pm_card_visa", true)
	const key = "meanwhile/capture"
	var (
		once     sync.Once
		otherErr error
	)
	hooked := &hookState{State: st, hook: func(op, id string) {
		if op == "get" && id == claimPrefix+keyID(key) {
			once.Do(func() {
				_, otherErr = api.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: key, Reference: b.Reference})
			})
		}
	}}
	_, err := newSandboxOn(t, hooked).Capture(ctx, gateway.CaptureRequest{IdempotencyKey: key, Reference: a.Reference})
	if otherErr != nil {
		t.Fatalf("the other capture: %v", otherErr)
	}
	wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
	wantStatus(t, api, a.Reference, gateway.StatusRequiresCapture)
	wantStatus(t, api, b.Reference, gateway.StatusSucceeded)
}

// TestPickPrefersTheNewestOfARank: of intents equally far along, Find and
// Void report the newest (the last attempt).
func TestPickPrefersTheNewestOfARank(t *testing.T) {
	for _, st := range []gateway.Status{gateway.StatusFailed, gateway.StatusCanceled, gateway.StatusSucceeded} {
		f := pick([]intent{{ID: "pi_sbx_old", Status: string(st)}, {ID: "pi_sbx_new", Status: string(st)}})
		if !f.Exists || f.Result.Reference != "pi_sbx_new" {
			t.Errorf("pick of two %s intents = %+v, want pi_sbx_new", st, f)
		}
	}
	// A better rank wins over a newer one.
	f := pick([]intent{{ID: "pi_sbx_old", Status: string(gateway.StatusSucceeded)}, {ID: "pi_sbx_new", Status: string(gateway.StatusFailed)}})
	if f.Result.Reference != "pi_sbx_old" {
		t.Errorf("pick = %+v, want the succeeded pi_sbx_old", f)
	}
}

// TestVoidReportsTheNamedIntent: a void naming a reference reports that
// intent, even when another intent of the payment ranks higher, and cancels
// a named intent that belongs to another payment too.
func TestVoidReportsTheNamedIntent(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	// The payment's intents are listed oldest first, then by reference (the
	// clock is fixed here): the declined one comes first, so that the
	// named intent is the first one seen.
	declinedKey := "named/declined"
	for i := 0; Reference(declinedKey) > Reference("named/paid"); i++ {
		declinedKey = fmt.Sprintf("named/declined/%d", i)
	}
	declined := mkPayment(t, sb, declinedKey, "pay_named", "pm_card_chargeDeclined", false)
	paid := mkPayment(t, sb, "named/paid", "pay_named", "pm_card_visa", false)
	f, err := sb.Void(ctx, gateway.VoidRequest{PaymentID: "pay_named", Reference: declined.Reference})
	if err != nil || !f.Exists || f.Result.Reference != declined.Reference || f.Result.Status != gateway.StatusFailed {
		t.Fatalf("Void naming the declined intent = %+v, %v; want it (failed), not %s", f, err, paid.Reference)
	}

	mine := mkPayment(t, sb, "named/mine", "pay_named_mine", "pm_card_visa", true)
	other := mkPayment(t, sb, "named/other", "pay_named_other", "pm_card_visa", true)
	f, err = sb.Void(ctx, gateway.VoidRequest{PaymentID: "pay_named_mine", Reference: other.Reference, Reason: "abandoned"})
	if err != nil || !f.Exists || f.Result.Reference != other.Reference || f.Result.Status != gateway.StatusCanceled {
		t.Fatalf("Void naming another payment's intent = %+v, %v", f, err)
	}
	wantStatus(t, sb, mine.Reference, gateway.StatusCanceled)
	wantStatus(t, sb, other.Reference, gateway.StatusCanceled)

	// By reference alone.
	lone := mkPayment(t, sb, "named/lone", "pay_named_lone", "pm_card_visa", true)
	f, err = sb.Void(ctx, gateway.VoidRequest{Reference: lone.Reference})
	if err != nil || !f.Exists || f.Result.Reference != lone.Reference || f.Result.Status != gateway.StatusCanceled {
		t.Fatalf("Void by reference alone = %+v, %v", f, err)
	}
}

// TestPaymentIDLengthBound: a payment id of exactly maxPaymentIDLen
// characters is taken by CreatePayment and Void; one more is refused.
func TestPaymentIDLengthBound(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	longest := "pay_" + strings.Repeat("x", maxPaymentIDLen-4)
	res := mkPayment(t, sb, "idlen/1", longest, "pm_card_visa", true)
	if f, err := sb.Void(ctx, gateway.VoidRequest{PaymentID: longest}); err != nil || f.Result.Reference != res.Reference {
		t.Fatalf("Void of a %d-character payment id = %+v, %v", len(longest), f, err)
	}
	tooLong := longest + "x"
	r := createReq("idlen/2", "pm_card_visa", false)
	r.PaymentID = tooLong
	_, err := sb.CreatePayment(ctx, r)
	wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)
	_, err = sb.Void(ctx, gateway.VoidRequest{PaymentID: tooLong})
	wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)
}

// TestValidMSISDNEdges: 8 to 15 digits, every digit 0-9, no leading 0.
func TestValidMSISDNEdges(t *testing.T) {
	for n, want := range map[string]bool{
		"12345678": true, "123456789012345": true, "1234567": false, "1234567890123456": false,
		"19999999": true, "10000000": true, "02345678": false,
		"1234567/": false, "1234567:": false, "1234567a": false,
	} {
		if got := validMSISDN(n); got != want {
			t.Errorf("validMSISDN(%q) = %v, want %v", n, got, want)
		}
	}
}

// TestDefaultWebhookClientTimeout: without Options.HTTPClient, events are
// posted with a 10 s timeout, as documented.
func TestDefaultWebhookClientTimeout(t *testing.T) {
	if got := newSandbox(t).http.Timeout; got != 10*time.Second {
		t.Fatalf("default HTTP client timeout = %v, want 10s", got)
	}
}

// TestFingerprintFormat pins the fingerprint: it is stored with claims and
// answers and compared by every process on the state, whatever its
// version, so it is SHA-256 of the JSON array of the operation and its
// parameters, which keeps ("a b") and ("a", "b") apart.
func TestFingerprintFormat(t *testing.T) {
	sum := sha256.Sum256([]byte(`["capture","pi_sbx_x",500]`))
	if got := fingerprint("capture", "pi_sbx_x", int64(500)); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("fingerprint = %s, want SHA-256 of the JSON array", got)
	}
	if fingerprint("cancel", "a b") == fingerprint("cancel", "a", "b") {
		t.Fatal("fingerprints of different parameter lists are equal")
	}
}

// TestCreateForVoidedPaymentIsLogged: the sandbox says in its log when a
// create for a voided payment cancels its intent at once, and only then.
func TestCreateForVoidedPaymentIsLogged(t *testing.T) {
	ctx := t.Context()
	var buf bytes.Buffer
	var mu sync.Mutex
	sb, err := New(Options{
		State: newState(t), PublicURL: "http://payments.test:8080/", WebhookSecret: testSecret,
		Now:    func() time.Time { return fixedNow },
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	const line = "create for a voided payment"
	mkPayment(t, sb, "logged/normal", "pay_logged_normal", "pm_card_visa", false)
	mkPayment(t, sb, "logged/declined", "pay_logged_normal", "pm_card_chargeDeclined", false)
	mu.Lock()
	if strings.Contains(buf.String(), line) {
		t.Fatalf("log of ordinary creates says %q:\n%s", line, buf.String())
	}
	mu.Unlock()
	if _, err := sb.Void(ctx, gateway.VoidRequest{PaymentID: "pay_logged_void"}); err != nil {
		t.Fatal(err)
	}
	res := mkPayment(t, sb, "logged/voided", "pay_logged_void", "pm_card_visa", false)
	if res.Status != gateway.StatusCanceled {
		t.Fatalf("create after a void = %+v, want canceled", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), line) || !strings.Contains(buf.String(), "payment_id=pay_logged_void") {
		t.Fatalf("log lacks %q for pay_logged_void:\n%s", line, buf.String())
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestSignedLinkWithNonPositiveAmount: even a link we signed is refused when
// its amount is not positive, so a bug cannot show a page for nothing.
func TestSignedLinkWithNonPositiveAmount(t *testing.T) {
	sb := newSandbox(t)
	ref := Reference("link/amount")
	for _, amount := range []int64{0, -5} {
		q := threeDSParams{PaymentID: "pay_link", Amount: amount, Currency: "USD", PaymentMethod: "pm_card_threeDSecure2Required"}.values()
		q.Set("sig", sb.linkSignature(ref, q))
		if p, err := sb.verifyLink(ref, q); !errors.Is(err, errBadLink) {
			t.Errorf("amount %d: verifyLink = %+v, %v; want errBadLink", amount, p, err)
		}
	}
	q := threeDSParams{PaymentID: "pay_link", Amount: 1, Currency: "USD"}.values()
	q.Set("sig", sb.linkSignature(ref, q))
	if p, err := sb.verifyLink(ref, q); err != nil || p.Amount != 1 {
		t.Fatalf("amount 1: verifyLink = %+v, %v", p, err)
	}
}

func TestOutcomeWord(t *testing.T) {
	if got := outcomeWord(OutcomeFail); got != "failed" {
		t.Errorf("outcomeWord(fail) = %q", got)
	}
	if got := outcomeWord(OutcomeSucceed); got != "completed" {
		t.Errorf("outcomeWord(succeed) = %q", got)
	}
}

// TestDeliverStatuses: any 2xx answer delivers the event; anything else is
// an error that says the status and, when there is one, the answer's body.
func TestDeliverStatuses(t *testing.T) {
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	sb := newSandbox(t)
	for _, tc := range []struct {
		status  int
		body    string
		wantErr string // "" = delivered
	}{
		{200, "", ""},
		{299, "", ""},
		{300, "", "it answered 300 Multiple Choices"},
		{500, "", "it answered 500 Internal Server Error"},
		{400, "  bad signature \n", "it answered 400 Bad Request: bad signature"},
	} {
		status, body = tc.status, tc.body
		err := sb.deliver(t.Context(), srv.URL, []byte(`{}`))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("status %d: deliver = %v, want delivered", tc.status, err)
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("status %d: deliver = %v, want %q", tc.status, err, tc.wantErr)
		}
	}
}

// TestThreeDSEventFields: the event carries the payment method when there
// is one (null otherwise), and its amounts in the gateway's units (5 ISK is
// 500), as Stripe's events do.
func TestThreeDSEventFields(t *testing.T) {
	sb := newSandbox(t)
	ref := Reference("event/fields")
	ev := sb.threeDSEvent(ref, threeDSParams{PaymentID: "pay_ev", Amount: 5, Currency: "ISK", PaymentMethod: "pm_card_threeDSecure2Required"}, OutcomeSucceed)
	pi := ev.Data.Object
	if pi.PaymentMethod == nil || *pi.PaymentMethod != "pm_card_threeDSecure2Required" {
		t.Errorf("payment_method = %v, want pm_card_threeDSecure2Required", pi.PaymentMethod)
	}
	if pi.Amount != 500 || pi.AmountReceived != 500 || pi.AmountCapturable != 0 || pi.Currency != "isk" {
		t.Errorf("ISK event amounts = %d/%d/%d %s, want 500/500/0 isk", pi.Amount, pi.AmountReceived, pi.AmountCapturable, pi.Currency)
	}
	ev = sb.threeDSEvent(ref, threeDSParams{PaymentID: "pay_ev", Amount: 1234, Currency: "USD", Manual: true}, OutcomeSucceed)
	pi = ev.Data.Object
	if pi.PaymentMethod != nil {
		t.Errorf("payment_method = %q, want null", *pi.PaymentMethod)
	}
	if pi.Amount != 1234 || pi.AmountCapturable != 1234 || pi.AmountReceived != 0 {
		t.Errorf("USD manual event amounts = %d/%d/%d, want 1234/1234/0", pi.Amount, pi.AmountCapturable, pi.AmountReceived)
	}
}

// TestReusedKeyRefusedBeforeFlakiness: a create reusing a key with other
// parameters is refused at once with idempotency_error, even with a flaky
// test token, whose simulated failures come only for a key not yet used.
func TestReusedKeyRefusedBeforeFlakiness(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	mkPayment(t, sb, "reused/key", "pay_reused", "pm_card_visa", false)
	_, err := sb.CreatePayment(ctx, createReq("reused/key", MethodFlaky, false))
	wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
}
