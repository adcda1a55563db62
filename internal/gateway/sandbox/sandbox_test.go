package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

const testSecret = "whsec_sandbox_test_secret"

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// migrated is a migrated SQLite database that newState copies: migrating
// takes far longer than copying, and these tests want a fresh database each.
var migrated struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if migrated.dir != "" {
		_ = os.RemoveAll(migrated.dir)
	}
	os.Exit(code)
}

// newState is a fresh state on SQLite, one per test: the platform's store,
// on a copy of a freshly migrated database.
func newState(t *testing.T) State {
	t.Helper()
	migrated.once.Do(func() {
		if migrated.dir, migrated.err = os.MkdirTemp("", "sandbox-test-"); migrated.err != nil {
			return
		}
		migrated.path = filepath.Join(migrated.dir, "payments.db")
		st, err := store.Open(context.Background(), "sqlite://"+migrated.path)
		if err != nil {
			migrated.err = err
			return
		}
		migrated.err = errors.Join(st.Migrate(context.Background()), st.Close())
	})
	if migrated.err != nil {
		t.Fatalf("migrated database: %v", migrated.err)
	}
	data, err := os.ReadFile(migrated.path)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "payments.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// A test database need not survive a power cut: no fsync.
	st, err := store.Open(context.Background(), "sqlite://"+path+"?_pragma=synchronous(OFF)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// forEachState runs fn on a fresh SQLite state and, when
// PAYMENTS_TEST_MYSQL_DSN is set, on a fresh MySQL/MariaDB one: the
// concurrent tests run on both databases the platform supports.
func forEachState(t *testing.T, fn func(t *testing.T, st State)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, newState(t)) })
	t.Run("mysql", func(t *testing.T) { fn(t, storetest.NewMySQL(t)) })
}

// newSandbox is a sandbox on a fresh state.
func newSandbox(t *testing.T) *Sandbox {
	t.Helper()
	return newSandboxOn(t, newState(t))
}

// newSandboxOn is a sandbox on st: several on one state play another
// process each, or the same process after a restart.
func newSandboxOn(t *testing.T, st State) *Sandbox {
	t.Helper()
	sb, err := New(Options{
		State:         st,
		PublicURL:     "http://payments.test:8080/",
		WebhookSecret: testSecret,
		Now:           func() time.Time { return fixedNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func TestNewRequiresState(t *testing.T) {
	var nilStore *store.Store
	for name, st := range map[string]State{"nil": nil, "nil *store.Store": nilStore} {
		sb, err := New(Options{State: st, PublicURL: "http://payments.test:8080", WebhookSecret: testSecret})
		if err == nil || sb != nil || !strings.Contains(err.Error(), "State is required") {
			t.Fatalf("New with a %s state = %v, %v; want an error", name, sb, err)
		}
	}
}

func createReq(key, method string, manual bool) gateway.CreateRequest {
	return gateway.CreateRequest{
		IdempotencyKey: key,
		PaymentID:      "pay_01testpayment",
		Amount:         1234,
		Currency:       "USD",
		PaymentMethod:  method,
		ManualCapture:  manual,
		Description:    "order 42",
	}
}

// wantGatewayError checks err is a *gateway.Error of kind, code and HTTP
// status, and returns it.
func wantGatewayError(t *testing.T, err error, kind gateway.ErrorKind, code string, status int) *gateway.Error {
	t.Helper()
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		t.Fatalf("error = %v (%T), want *gateway.Error", err, err)
	}
	if ge.Kind != kind || ge.Code != code || ge.StatusCode != status {
		t.Fatalf("error = kind %d code %q status %d (%s), want kind %d code %q status %d",
			ge.Kind, ge.Code, ge.StatusCode, ge.Message, kind, code, status)
	}
	if gateway.KindOf(err) != kind {
		t.Fatalf("KindOf = %d, want %d", gateway.KindOf(err), kind)
	}
	return ge
}

func TestName(t *testing.T) {
	if got := newSandbox(t).Name(); got != "sandbox" {
		t.Fatalf("Name() = %q", got)
	}
}

func TestTestPaymentMethods(t *testing.T) {
	card := func(brand, last4 string) gateway.MethodDetails {
		return gateway.MethodDetails{Type: "card", Brand: brand, Last4: last4, ExpMonth: 12, ExpYear: 2034}
	}
	tests := []struct {
		method      string
		manual      bool
		status      gateway.Status
		capturable  int64
		received    int64
		failureCode string
		failureMsg  string
		details     gateway.MethodDetails
	}{
		{method: "pm_card_visa", status: gateway.StatusSucceeded, received: 1234, details: card("visa", "4242")},
		{method: "pm_card_visa", manual: true, status: gateway.StatusRequiresCapture, capturable: 1234, details: card("visa", "4242")},
		{method: "pm_card_mastercard", status: gateway.StatusSucceeded, received: 1234, details: card("mastercard", "4444")},
		{method: "pm_card_mastercard", manual: true, status: gateway.StatusRequiresCapture, capturable: 1234, details: card("mastercard", "4444")},
		{method: "pm_card_amex", status: gateway.StatusSucceeded, received: 1234, details: card("amex", "8431")},
		{method: "pm_card_amex", manual: true, status: gateway.StatusRequiresCapture, capturable: 1234, details: card("amex", "8431")},
		{method: "pm_card_chargeDeclined", status: gateway.StatusFailed, failureCode: "card_declined",
			failureMsg: "Your card was declined.", details: card("visa", "0002")},
		{method: "pm_card_chargeDeclined", manual: true, status: gateway.StatusFailed, failureCode: "card_declined",
			failureMsg: "Your card was declined.", details: card("visa", "0002")},
		{method: "pm_card_chargeDeclinedInsufficientFunds", status: gateway.StatusFailed, failureCode: "insufficient_funds",
			failureMsg: "Your card has insufficient funds.", details: card("visa", "9995")},
		{method: "pm_card_chargeDeclinedExpiredCard", status: gateway.StatusFailed, failureCode: "expired_card",
			failureMsg: "Your card has expired.", details: card("visa", "0069")},
		{method: "pm_card_chargeDeclinedIncorrectCvc", status: gateway.StatusFailed, failureCode: "incorrect_cvc",
			failureMsg: "Your card's security code is incorrect.", details: card("visa", "0127")},
		{method: "pm_card_authenticationRequired", status: gateway.StatusRequiresAction, details: card("visa", "3184")},
		{method: "pm_card_threeDSecure2Required", manual: true, status: gateway.StatusRequiresAction, details: card("visa", "3220")},
		// Its refunds fail later (refunds_test.go); the charge is approved.
		{method: "pm_card_refundFail", status: gateway.StatusSucceeded, received: 1234, details: card("visa", "5126")},
		{method: "pm_card_refundFail", manual: true, status: gateway.StatusRequiresCapture, capturable: 1234, details: card("visa", "5126")},
		{method: "mm:mpesa:254712345678", status: gateway.StatusSucceeded, received: 1234,
			details: gateway.MethodDetails{Type: "mobile_money", Provider: "mpesa", Last4: "5678"}},
		{method: "mm:mtn:23350123456", status: gateway.StatusSucceeded, received: 1234,
			details: gateway.MethodDetails{Type: "mobile_money", Provider: "mtn", Last4: "3456"}},
		{method: "mm:airtel:25670012345", status: gateway.StatusSucceeded, received: 1234,
			details: gateway.MethodDetails{Type: "mobile_money", Provider: "airtel", Last4: "2345"}},
		{method: "mm:orange:22507123456", status: gateway.StatusSucceeded, received: 1234,
			details: gateway.MethodDetails{Type: "mobile_money", Provider: "orange", Last4: "3456"}},
		{method: "mm:mpesa:254700000000", status: gateway.StatusFailed, failureCode: "insufficient_funds",
			failureMsg: "The mobile money account has insufficient funds.",
			details:    gateway.MethodDetails{Type: "mobile_money", Provider: "mpesa", Last4: "0000"}},
	}
	sb := newSandbox(t)
	for _, tc := range tests {
		name := tc.method
		if tc.manual {
			name += "/manual"
		}
		t.Run(name, func(t *testing.T) {
			key := "payment/pay_x/create/" + name
			res, err := sb.CreatePayment(t.Context(), createReq(key, tc.method, tc.manual))
			if err != nil {
				t.Fatalf("CreatePayment: %v", err)
			}
			if res.Reference != Reference(key) {
				t.Errorf("Reference = %q, want %q", res.Reference, Reference(key))
			}
			if res.Status != tc.status {
				t.Errorf("Status = %q, want %q", res.Status, tc.status)
			}
			if res.Amount != 1234 || res.AmountCapturable != tc.capturable || res.AmountReceived != tc.received {
				t.Errorf("amounts = %d/%d/%d, want 1234/%d/%d", res.Amount, res.AmountCapturable, res.AmountReceived,
					tc.capturable, tc.received)
			}
			if res.FailureCode != tc.failureCode || res.FailureMessage != tc.failureMsg {
				t.Errorf("failure = %q %q, want %q %q", res.FailureCode, res.FailureMessage, tc.failureCode, tc.failureMsg)
			}
			if res.Method != tc.details {
				t.Errorf("Method = %+v, want %+v", res.Method, tc.details)
			}
			if (tc.status == gateway.StatusRequiresAction) != (res.RedirectURL != "") {
				t.Errorf("RedirectURL = %q with status %q", res.RedirectURL, res.Status)
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	st := newState(t)
	sb := newSandboxOn(t, st)
	for _, method := range []string{"pm_card_visa", "pm_card_chargeDeclined", "pm_card_authenticationRequired", "mm:mtn:233501234567"} {
		t.Run(method, func(t *testing.T) {
			first, err := sb.CreatePayment(t.Context(), createReq("k1/"+method, method, false))
			if err != nil {
				t.Fatal(err)
			}
			// A second process on the same state must agree.
			for _, other := range []*Sandbox{sb, newSandboxOn(t, st)} {
				again, err := other.CreatePayment(t.Context(), createReq("k1/"+method, method, false))
				if err != nil {
					t.Fatal(err)
				}
				if again != first {
					t.Fatalf("same key gave\n%+v\nthen\n%+v", first, again)
				}
			}
			different, err := sb.CreatePayment(t.Context(), createReq("k2/"+method, method, false))
			if err != nil {
				t.Fatal(err)
			}
			if different.Reference == first.Reference {
				t.Fatalf("different keys gave the same reference %q", first.Reference)
			}
		})
	}
}

func TestReferenceFormat(t *testing.T) {
	re := regexp.MustCompile(`^pi_sbx_[a-z2-7]{24}$`)
	for _, key := range []string{"a", "payment/pay_1/create", strings.Repeat("x", 255), "ключ"} {
		ref := Reference(key)
		if !re.MatchString(ref) {
			t.Errorf("Reference(%q) = %q, want %s", key, ref, re)
		}
		if !validReference(ref) {
			t.Errorf("validReference(%q) = false", ref)
		}
	}
	for _, bad := range []string{"", "pi_123", "pi_sbx_", "pi_sbx_" + strings.Repeat("A", 24), "pi_sbx_" + strings.Repeat("a", 25), "pi_sbx_" + strings.Repeat("1", 24)} {
		if validReference(bad) {
			t.Errorf("validReference(%q) = true", bad)
		}
	}
}

func TestFlaky(t *testing.T) {
	sb := newSandbox(t)
	req := createReq("flaky/1", MethodFlaky, false)
	for attempt := 1; attempt <= FlakyFailures; attempt++ {
		res, err := sb.CreatePayment(t.Context(), req)
		wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
		if res != (gateway.Result{}) {
			t.Fatalf("attempt %d: result %+v with an error", attempt, res)
		}
	}
	// Another key has its own count.
	if _, err := sb.CreatePayment(t.Context(), createReq("flaky/2", MethodFlaky, false)); err == nil {
		t.Fatal("first attempt of another key succeeded")
	}
	res, err := sb.CreatePayment(t.Context(), req)
	if err != nil {
		t.Fatalf("attempt %d: %v", FlakyFailures+1, err)
	}
	if res.Status != gateway.StatusSucceeded || res.AmountReceived != 1234 || res.Reference != Reference("flaky/1") {
		t.Fatalf("after the failures: %+v", res)
	}
	// And it stays successful, like Stripe replaying a key's answer.
	if again, err := sb.CreatePayment(t.Context(), req); err != nil || again != res {
		t.Fatalf("replay: %+v, %v", again, err)
	}
}

// TestFlakyConcurrent sends attempts of one key at once through two
// sandboxes on one state, as two workers would: the failures are counted
// once for both, and every success is the same answer.
func TestFlakyConcurrent(t *testing.T) { forEachState(t, testFlakyConcurrent) }

func testFlakyConcurrent(t *testing.T, st State) {
	sbs := []*Sandbox{newSandboxOn(t, st), newSandboxOn(t, st)}
	req := createReq("flaky/concurrent", MethodFlaky, true)
	const n = 20
	type outcome struct {
		res gateway.Result
		err error
	}
	out := make(chan outcome, n)
	for i := range n {
		go func() {
			res, err := sbs[i%2].CreatePayment(t.Context(), req)
			out <- outcome{res, err}
		}()
	}
	failures := 0
	var first gateway.Result
	for range n {
		o := <-out
		if o.err != nil {
			wantGatewayError(t, o.err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
			failures++
			continue
		}
		if first == (gateway.Result{}) {
			first = o.res
		}
		if o.res != first || o.res.Status != gateway.StatusRequiresCapture {
			t.Errorf("success %+v, another was %+v", o.res, first)
		}
	}
	if failures != FlakyFailures {
		t.Fatalf("%d of %d concurrent attempts failed, want exactly %d", failures, n, FlakyFailures)
	}
}

// TestFlakyAcrossProcessesAndRestarts: the count of pm_sandbox_flaky lives
// in the state, so its failures happen FlakyFailures times in total whichever
// process serves the attempts, and a restarted process continues the count.
func TestFlakyAcrossProcessesAndRestarts(t *testing.T) {
	forEachState(t, testFlakyAcrossProcessesAndRestarts)
}

func testFlakyAcrossProcessesAndRestarts(t *testing.T, st State) {
	ctx := t.Context()
	worker1, worker2 := newSandboxOn(t, st), newSandboxOn(t, st)
	req := createReq("flaky/processes", MethodFlaky, false)

	_, err := worker1.CreatePayment(ctx, req)
	ge := wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
	if !strings.Contains(ge.Message, "call 1 with this idempotency key; the first 3 fail") {
		t.Fatalf("first attempt: %s", ge.Message)
	}
	_, err = worker2.CreatePayment(ctx, req)
	ge = wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
	if !strings.Contains(ge.Message, "call 2 with this idempotency key; the first 3 fail") {
		t.Fatalf("second attempt, other process: %s", ge.Message)
	}
	restarted := newSandboxOn(t, st) // worker1 after a restart
	_, err = restarted.CreatePayment(ctx, req)
	ge = wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
	if !strings.Contains(ge.Message, "call 3 with this idempotency key; the first 3 fail") {
		t.Fatalf("third attempt, after a restart: %s", ge.Message)
	}
	res, err := worker2.CreatePayment(ctx, req)
	if err != nil || res.Status != gateway.StatusSucceeded {
		t.Fatalf("fourth attempt: %+v, %v", res, err)
	}
	for _, sb := range []*Sandbox{worker1, restarted, newSandboxOn(t, st)} {
		if again, err := sb.CreatePayment(ctx, req); err != nil || again != res {
			t.Fatalf("replay: %+v, %v; want %+v", again, err, res)
		}
	}
	// The rate-limited token too: one 429 per key in total.
	rl := createReq("ratelimited/processes", MethodRateLimited, false)
	_, err = worker1.CreatePayment(ctx, rl)
	wantGatewayError(t, err, gateway.RateLimited, "rate_limit", http.StatusTooManyRequests)
	if res, err := newSandboxOn(t, st).CreatePayment(ctx, rl); err != nil || res.Status != gateway.StatusSucceeded {
		t.Fatalf("rate-limited token after its 429, other process: %+v, %v", res, err)
	}
}

// TestIdempotencyError: a key reused with other parameters is refused, as
// Stripe refuses it, whatever call it was first used for.
func TestIdempotencyError(t *testing.T) {
	ctx := t.Context()
	st := newState(t)
	sb := newSandboxOn(t, st)
	first, err := sb.CreatePayment(ctx, createReq("idem/1", "pm_card_visa", true))
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string]func(*gateway.CreateRequest){
		"amount":   func(r *gateway.CreateRequest) { r.Amount++ },
		"currency": func(r *gateway.CreateRequest) { r.Currency = "EUR" },
		"method":   func(r *gateway.CreateRequest) { r.PaymentMethod = "pm_card_mastercard" },
		"capture":  func(r *gateway.CreateRequest) { r.ManualCapture = false },
		"payment":  func(r *gateway.CreateRequest) { r.PaymentID = "pay_01other" },
	}
	for name, change := range changes {
		req := createReq("idem/1", "pm_card_visa", true)
		change(&req)
		_, err := newSandboxOn(t, st).CreatePayment(ctx, req)
		ge := wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
		if !strings.Contains(ge.Message, "idem/1") {
			t.Errorf("%s: message %q does not name the key", name, ge.Message)
		}
	}
	// The same key for another call.
	_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "idem/1", Reference: first.Reference})
	wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
	capture := gateway.CaptureRequest{IdempotencyKey: "idem/1/capture", Reference: first.Reference, Amount: 1000}
	if _, err := sb.Capture(ctx, capture); err != nil {
		t.Fatal(err)
	}
	capture.Amount = 1200
	_, err = sb.Capture(ctx, capture)
	wantGatewayError(t, err, gateway.Invalid, "idempotency_error", http.StatusBadRequest)
	// Nothing of the refused calls happened.
	if got, _ := sb.Retrieve(ctx, first.Reference); got.AmountReceived != 1000 || got.Amount != 1234 {
		t.Fatalf("after refused calls: %+v", got)
	}
}

// TestValidationNotSaved: a request that fails validation did not execute,
// so, as at Stripe, its key is free for a corrected request.
func TestValidationNotSaved(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	bad := createReq("validation/1", "pm_card_nope", false)
	_, err := sb.CreatePayment(ctx, bad)
	wantGatewayError(t, err, gateway.Invalid, "resource_missing", http.StatusBadRequest)
	res, err := sb.CreatePayment(ctx, createReq("validation/1", "pm_card_visa", false))
	if err != nil || res.Status != gateway.StatusSucceeded {
		t.Fatalf("corrected request with the same key: %+v, %v", res, err)
	}
}

// TestOutage: while the sandbox is down every call fails with a transient
// 503 that is not saved; once up, the same calls succeed as if the failed
// attempts never happened.
func TestOutage(t *testing.T) {
	ctx := t.Context()
	st := newState(t)
	sb := newSandboxOn(t, st)
	auth, err := sb.CreatePayment(ctx, createReq("outage/auth", "pm_card_visa", true))
	if err != nil {
		t.Fatal(err)
	}
	paid, err := sb.CreatePayment(ctx, createReq("outage/paid", "pm_card_visa", false))
	if err != nil {
		t.Fatal(err)
	}

	sb.SetDown(true)
	flaky := createReq("outage/flaky", MethodFlaky, false)
	calls := map[string]func() error{
		"create": func() error {
			_, err := sb.CreatePayment(ctx, createReq("outage/new", "pm_card_visa", false))
			return err
		},
		"flaky": func() error { _, err := sb.CreatePayment(ctx, flaky); return err },
		"capture": func() error {
			_, err := sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "outage/capture", Reference: auth.Reference})
			return err
		},
		"cancel": func() error {
			_, err := sb.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "outage/cancel", Reference: auth.Reference})
			return err
		},
		"retrieve": func() error { _, err := sb.Retrieve(ctx, auth.Reference); return err },
		"find":     func() error { _, err := sb.Find(ctx, gateway.FindRequest{PaymentID: "pay_01testpayment"}); return err },
		"void":     func() error { _, err := sb.Void(ctx, gateway.VoidRequest{PaymentID: "pay_01voided"}); return err },
		"refund": func() error {
			_, err := sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "outage/refund", Reference: paid.Reference, Amount: 1})
			return err
		},
	}
	for round := range 5 { // more rounds than the flaky token fails
		for name, call := range calls {
			err := call()
			ge := wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
			if !strings.Contains(ge.Message, "simulated outage") {
				t.Fatalf("round %d, %s: %s", round, name, ge.Message)
			}
		}
	}
	// Another process on the same state is not cut off, and sees that
	// nothing happened.
	other := newSandboxOn(t, st)
	if got, err := other.Retrieve(ctx, auth.Reference); err != nil || got != auth {
		t.Fatalf("other process during the outage: %+v, %v; want %+v", got, err, auth)
	}
	if found, err := other.Find(ctx, gateway.FindRequest{PaymentID: "pay_01voided"}); err != nil || found.Exists {
		t.Fatalf("a void during the outage left %+v, %v", found, err)
	}

	sb.SetDown(false)
	res, err := sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "outage/capture", Reference: auth.Reference})
	if err != nil || res.Status != gateway.StatusSucceeded || res.AmountReceived != 1234 {
		t.Fatalf("capture after the outage: %+v, %v", res, err)
	}
	rf, err := sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "outage/refund", Reference: paid.Reference, Amount: 1})
	if err != nil || rf.Amount != 1 || rf.Status != gateway.RefundSucceeded {
		t.Fatalf("refund after the outage: %+v, %v", rf, err)
	}
	// The flaky token's count did not move while down: it fails its three
	// times now.
	for attempt := 1; attempt <= FlakyFailures; attempt++ {
		_, err := sb.CreatePayment(ctx, flaky)
		ge := wantGatewayError(t, err, gateway.Transient, "api_error", http.StatusServiceUnavailable)
		if want := fmt.Sprintf("call %d with this idempotency key", attempt); !strings.Contains(ge.Message, want) {
			t.Fatalf("after the outage: %s, want %q", ge.Message, want)
		}
	}
	if res, err := sb.CreatePayment(ctx, flaky); err != nil || res.Status != gateway.StatusSucceeded {
		t.Fatalf("flaky after its failures: %+v, %v", res, err)
	}
}

// TestAmountRules: the sandbox takes the amounts and currencies Stripe
// takes, in ISO minor units.
func TestAmountRules(t *testing.T) {
	ctx := t.Context()
	sb := newSandbox(t)
	tests := []struct {
		currency string
		amount   int64
		code     string // "" = accepted
	}{
		{"USD", 1, ""},
		{"JPY", 5000, ""},
		{"ISK", 5, ""}, // whole krónur in ISO terms; Stripe writes 500
		{"KWD", 1230, ""},
		{"KWD", 1235, "amount_invalid"}, // Stripe's three-decimal amounts end in 0
		{"MGA", 200, ""},                // ISO has 2 decimals, Stripe none
		{"MGA", 250, "amount_invalid"},  // so whole ariary only
		{"IQD", 1000, "currency_not_supported"},
		{"CHE", 1000, "currency_not_supported"}, // a fund, not a currency
		{"CLF", 1000, "currency_not_supported"},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s %d", tc.currency, tc.amount)
		req := createReq("amounts/"+name, "pm_card_visa", true)
		req.Currency, req.Amount = tc.currency, tc.amount
		res, err := sb.CreatePayment(ctx, req)
		if tc.code == "" {
			if err != nil || res.Status != gateway.StatusRequiresCapture || res.AmountCapturable != tc.amount {
				t.Errorf("%s: %+v, %v", name, res, err)
			}
			continue
		}
		ge := wantGatewayError(t, err, gateway.Invalid, tc.code, http.StatusBadRequest)
		if !strings.Contains(ge.Message, tc.currency) {
			t.Errorf("%s: message %q does not name the currency", name, ge.Message)
		}
	}

	// Capture and refund follow the same rules.
	req := createReq("amounts/capture", "pm_card_visa", true)
	req.Currency, req.Amount = "KWD", 1230
	auth, err := sb.CreatePayment(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "amounts/c1", Reference: auth.Reference, Currency: "KWD", Amount: 1005})
	wantGatewayError(t, err, gateway.Invalid, "amount_invalid", http.StatusBadRequest)
	_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "amounts/c2", Reference: auth.Reference, Currency: "CHE", Amount: 1000})
	wantGatewayError(t, err, gateway.Invalid, "currency_not_supported", http.StatusBadRequest)
	// Without a currency, the intent's rules apply.
	_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "amounts/c3", Reference: auth.Reference, Amount: 1005})
	wantGatewayError(t, err, gateway.Invalid, "amount_invalid", http.StatusBadRequest)
	_, err = sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "amounts/c4", Reference: auth.Reference, Currency: "USD", Amount: 1000})
	wantGatewayError(t, err, gateway.Invalid, "parameter_invalid_string", http.StatusBadRequest)
	res, err := sb.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "amounts/c5", Reference: auth.Reference, Currency: "KWD", Amount: 1000})
	if err != nil || res.AmountReceived != 1000 {
		t.Fatalf("capture of 1.000 KWD: %+v, %v", res, err)
	}
	_, err = sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "amounts/r1", Reference: auth.Reference, Currency: "KWD", Amount: 5})
	wantGatewayError(t, err, gateway.Invalid, "amount_invalid", http.StatusBadRequest)
	_, err = sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "amounts/r2", Reference: auth.Reference, Amount: 5})
	wantGatewayError(t, err, gateway.Invalid, "amount_invalid", http.StatusBadRequest)
	rf, err := sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "amounts/r3", Reference: auth.Reference, Currency: "KWD", Amount: 10})
	if err != nil || rf.Amount != 10 {
		t.Fatalf("refund of 0.010 KWD: %+v, %v", rf, err)
	}
}

func TestRateLimited(t *testing.T) {
	sb := newSandbox(t)
	req := createReq("rl/1", MethodRateLimited, true)
	_, err := sb.CreatePayment(t.Context(), req)
	ge := wantGatewayError(t, err, gateway.RateLimited, "rate_limit", http.StatusTooManyRequests)
	if ge.RetryAfter != 2*time.Second {
		t.Fatalf("RetryAfter = %v, want 2s", ge.RetryAfter)
	}
	res, err := sb.CreatePayment(t.Context(), req)
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if res.Status != gateway.StatusRequiresCapture || res.AmountCapturable != 1234 {
		t.Fatalf("second attempt: %+v", res)
	}
}

func TestInvalidRequests(t *testing.T) {
	sb := newSandbox(t)
	tests := []struct {
		name    string
		mutate  func(*gateway.CreateRequest)
		code    string
		message string
	}{
		{"unknown pm", func(r *gateway.CreateRequest) { r.PaymentMethod = "pm_card_nope" },
			"resource_missing", "No such PaymentMethod: 'pm_card_nope'"},
		{"case matters", func(r *gateway.CreateRequest) { r.PaymentMethod = "pm_card_VISA" },
			"resource_missing", "No such PaymentMethod"},
		{"raw card number", func(r *gateway.CreateRequest) { r.PaymentMethod = "4242424242424242" },
			"resource_missing", "No such PaymentMethod: want a test payment method id"},
		{"unknown provider", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:paypal:254712345678" },
			"payment_method_invalid_parameter", "provider"},
		{"no msisdn", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:mpesa" },
			"payment_method_invalid_parameter", "provider"},
		{"short msisdn", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:mpesa:1234567" },
			"payment_method_invalid_parameter", "8 to 15 digits"},
		{"long msisdn", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:mpesa:1234567890123456" },
			"payment_method_invalid_parameter", "8 to 15 digits"},
		{"plus msisdn", func(r *gateway.CreateRequest) { r.PaymentMethod = "mm:mpesa:+254712345678" },
			"payment_method_invalid_parameter", "8 to 15 digits"},
		{"mobile money manual capture", func(r *gateway.CreateRequest) {
			r.PaymentMethod = "mm:mpesa:254712345678"
			r.ManualCapture = true
		}, "payment_intent_invalid_parameter", "manual capture"},
		{"zero amount", func(r *gateway.CreateRequest) { r.Amount = 0 }, "amount_too_small", "amount"},
		{"bad currency", func(r *gateway.CreateRequest) { r.Currency = "XYZ" }, "parameter_invalid_string", "currency"},
		{"no key", func(r *gateway.CreateRequest) { r.IdempotencyKey = "" }, "parameter_missing", "idempotency key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := createReq("invalid/"+tc.name, "pm_card_visa", false)
			tc.mutate(&req)
			res, err := sb.CreatePayment(t.Context(), req)
			ge := wantGatewayError(t, err, gateway.Invalid, tc.code, http.StatusBadRequest)
			if !strings.Contains(ge.Message, tc.message) {
				t.Errorf("message %q does not contain %q", ge.Message, tc.message)
			}
			// Card numbers and phone numbers never reach errors (and logs).
			if digits := regexp.MustCompile(`[0-9]{7,}`).FindString(req.PaymentMethod); digits != "" && strings.Contains(ge.Message, digits) {
				t.Errorf("message %q repeats %q", ge.Message, digits)
			}
			if res != (gateway.Result{}) {
				t.Errorf("result %+v with an error", res)
			}
		})
	}
}

func TestCurrencyAnyCase(t *testing.T) {
	req := createReq("currency/lower", "pm_card_visa", false)
	req.Currency = "usd"
	res, err := newSandbox(t).CreatePayment(t.Context(), req)
	if err != nil || res.Status != gateway.StatusSucceeded {
		t.Fatalf("lower-case currency: %+v, %v", res, err)
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newSandbox(t).CreatePayment(ctx, createReq("ctx/1", "pm_card_visa", false))
	if !errors.Is(err, context.Canceled) || gateway.KindOf(err) != gateway.Transient {
		t.Fatalf("err = %v", err)
	}
}
