package payment

// Unit tests of the steps that change an authorized payment when the
// gateway or the store does not confirm them (issue 6, items 3 and 4): an
// unconfirmed capture, cancel or expiry stays pending, is tried again on a
// durable timer with the next key and never fails the workflow; a save the
// store refuses is tried again on a timer while the payment keeps its
// recorded state.

import (
	"reflect"
	"strings"
	"testing"
	"time"

	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/workflows/presets"
)

// downUntil answers calls before t with an unanswered error.
func downUntil(t time.Time, at time.Time) bool { return at.Before(t) }

// retrieveAuthorized answers every Retrieve with the standing
// authorization.
func retrieveAuthorized(h *harness) {
	h.onRetrieve(func(int, call[string]) (gateway.Result, error) { return authorized(h.ref), nil })
}

// checkSequentialKeys asserts the distinct keys of a step's calls are
// attempts 1, 2, ..., n, each used by consecutive retries only.
func checkSequentialKeys(t *testing.T, h *harness, step string, keys []string, n int) {
	t.Helper()
	d := distinctKeys(keys)
	if len(d) != n {
		t.Fatalf("%s keys %q, want %d distinct", step, d, n)
	}
	for i, k := range d {
		if k != h.key(step, i+1) {
			t.Fatalf("%s key %d is %q, want %q", step, i+1, k, h.key(step, i+1))
		}
	}
}

// attentionSaves are the accepted saves that set NeedsAttention.
func attentionSaves(h *harness) []saveCall {
	var out []saveCall
	for _, s := range h.accepted() {
		if s.Rec.NeedsAttention {
			out = append(out, s)
		}
	}
	return out
}

func TestUnconfirmedCaptureIsRetriedOnATimerWithTheNextKey(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	up := t0.Add(time.Hour + 3*time.Minute)
	h.onCapture(func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		if c.Req.Amount != 3000 {
			t.Errorf("capture of %d", c.Req.Amount)
		}
		if downUntil(up, c.At) {
			return gateway.Result{}, unavailable()
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: 3000}, nil
	})
	retrieveAuthorized(h)
	capture := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: 3000})
	var during store.PaymentRecord
	var again, cancel *updateResult
	h.at(time.Hour+150*time.Second, func() {
		during = h.query()
		if !h.attentionNow() {
			t.Errorf("NeedsAttention search attribute not set while the capture is unconfirmed")
		}
		// Another capture, or a cancel, while this one is pending.
		again, cancel = &updateResult{}, &updateResult{}
		h.updateNow(UpdateCapture, CaptureRequest{Amount: 1000}, again)
		h.updateNow(UpdateCancel, CancelRequest{}, cancel)
	})
	h.run()
	rec := h.result()
	if errType(capture.err) != ErrTypeUnconfirmed || !capture.done {
		t.Fatalf("capture update: %+v, want an Unconfirmed error", capture)
	}
	if during.Status != entpayment.StatusRequiresCapture || !during.NeedsAttention || !strings.Contains(during.AttentionReason, "capture") {
		t.Fatalf("while unconfirmed: %+v", during)
	}
	if errType(again.rejected) != ErrTypeFailedPrecondition || errType(cancel.rejected) != ErrTypeFailedPrecondition {
		t.Fatalf("updates while a capture is pending: capture %+v cancel %+v", again, cancel)
	}
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != 3000 || rec.NeedsAttention || rec.AttentionReason != "" {
		t.Fatalf("record %+v", rec)
	}
	// The first attempt's key for all its retries, then the next one.
	checkSequentialKeys(t, h, "capture", keysOf(h.capture.all(), captureKey), 2)
	// Retried presets.StepRetryDelay(1) after the first attempt gave up.
	firstGaveUp := capture.at
	var retried time.Time
	for _, c := range h.capture.all() {
		if c.Req.IdempotencyKey == h.key("capture", 2) {
			retried = c.At
			break
		}
	}
	if !retried.Equal(firstGaveUp.Add(presets.StepRetryDelay(1))) {
		t.Fatalf("retried at %v, the first attempt gave up at %v", retried.Sub(t0), firstGaveUp.Sub(t0))
	}
	if js := h.journals(); len(js) != 1 || js[0].Lines[0].Amount != 3000 {
		t.Fatalf("journals %+v", js)
	}
	if st := h.statuses(); !reflect.DeepEqual(st, []entpayment.Status{entpayment.StatusRequiresCapture, entpayment.StatusRequiresCapture, entpayment.StatusSucceeded}) {
		t.Fatalf("saved statuses %v", st)
	}
	if a := h.attentionChanges(); len(a) != 2 || !a[0].On || !a[0].At.Equal(firstGaveUp) || a[1].On {
		t.Fatalf("NeedsAttention changes %+v", a)
	}
}

func TestUnconfirmedCaptureThatTheGatewayMadeIsRecorded(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCapture(func(int, call[gateway.CaptureRequest]) (gateway.Result, error) {
		return gateway.Result{}, unavailable()
	})
	// The capture went through; the gateway leaves amount_received empty.
	h.onRetrieve(func(int, call[string]) (gateway.Result, error) {
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusSucceeded}, nil
	})
	capture := h.update(time.Hour, UpdateCapture, CaptureRequest{Amount: 3000})
	h.run()
	rec := h.result()
	if capture.err != nil || capture.rec.Status != entpayment.StatusSucceeded {
		t.Fatalf("capture %+v", capture)
	}
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != 3000 || rec.NeedsAttention {
		t.Fatalf("record %+v", rec)
	}
	if len(attentionSaves(h)) != 0 || len(h.attentionChanges()) != 0 {
		t.Fatalf("NeedsAttention set for a capture the gateway confirmed")
	}
	checkSequentialKeys(t, h, "capture", keysOf(h.capture.all(), captureKey), 1)
	if js := h.journals(); len(js) != 1 || js[0].Lines[0].Amount != 3000 {
		t.Fatalf("journals %+v", js)
	}
}

func TestUnconfirmedCaptureOfAnAuthorizationVoidedMeanwhile(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCapture(func(int, call[gateway.CaptureRequest]) (gateway.Result, error) {
		return gateway.Result{}, unavailable()
	})
	h.onRetrieve(func(n int, _ call[string]) (gateway.Result, error) {
		if n == 1 {
			return authorized("pi_m"), nil
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusCanceled}, nil
	})
	capture := h.update(time.Hour, UpdateCapture, CaptureRequest{})
	h.run()
	rec := h.result()
	if errType(capture.err) != ErrTypeUnconfirmed {
		t.Fatalf("capture %+v", capture)
	}
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "authorization_expired" || rec.NeedsAttention || len(h.journals()) != 0 {
		t.Fatalf("record %+v", rec)
	}
	if h.capture.live()[0].Req.IdempotencyKey != h.key("capture", 1) || len(distinctKeys(keysOf(h.capture.all(), captureKey))) != 1 {
		t.Fatalf("captures %+v", h.capture.all())
	}
}

// A pending capture decides the authorization's fate: it does not expire
// while the capture is being confirmed, even past AuthorizationTTL.
func TestAuthorizationDoesNotExpireWhileACaptureIsPending(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	captureAt := AuthorizationTTL - time.Hour
	up := t0.Add(AuthorizationTTL + 2*time.Hour)
	h.onCapture(func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		if downUntil(up, c.At) {
			return gateway.Result{}, unavailable()
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: amount}, nil
	})
	// The lookups fail too while the gateway is down.
	h.onRetrieve(func(_ int, c call[string]) (gateway.Result, error) {
		if downUntil(up, c.At) {
			return gateway.Result{}, unavailable()
		}
		return authorized("pi_m"), nil
	})
	capture := h.update(captureAt, UpdateCapture, CaptureRequest{})
	h.at(AuthorizationTTL+time.Hour, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresCapture || !got.NeedsAttention {
			t.Errorf("an hour past the authorization's expiry: %+v", got)
		}
	})
	h.run() // Cancel is not mocked: an expiry would fail the test.
	rec := h.result()
	if errType(capture.err) != ErrTypeUnconfirmed {
		t.Fatalf("capture %+v", capture)
	}
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || rec.NeedsAttention {
		t.Fatalf("record %+v", rec)
	}
	if rec.UpdatedAt.Before(up) || rec.UpdatedAt.After(up.Add(time.Hour)) {
		t.Fatalf("captured at %v, the gateway answered again at %v", rec.UpdatedAt.Sub(t0), up.Sub(t0))
	}
	// Tried again after 1, 5, 15 minutes, then hourly, each time with the
	// next key once the intent could be looked at.
	keys := distinctKeys(keysOf(h.capture.all(), captureKey))
	checkSequentialKeys(t, h, "capture", keys, len(keys))
	if len(keys) != 2 {
		t.Fatalf("capture keys %q: the capture is sent again only once the intent can be looked at", keys)
	}
	// The capture gave up; each lookup of the intent then failed and
	// the next one started presets.StepRetryDelay(n) after it gave up:
	// 1, 5, 15 minutes, then hourly.
	spans := activitySpans(h.retrieve.all())
	if len(spans) < 6 {
		t.Fatalf("lookups %v", spans)
	}
	gaveUp := activitySpans(h.capture.all())[0][1]
	if !spans[0][0].Equal(gaveUp) || !capture.at.Equal(spans[0][1]) {
		t.Fatalf("first lookup at %v, the capture gave up at %v, the update answered at %v", spans[0][0].Sub(t0), gaveUp.Sub(t0), capture.at.Sub(t0))
	}
	for i := 1; i < len(spans)-1; i++ {
		if want := spans[i-1][1].Add(presets.StepRetryDelay(i)); !spans[i][0].Equal(want) {
			t.Fatalf("lookup %d at %v, want %v (StepRetryDelay(%d) after the previous gave up)", i, spans[i][0].Sub(t0), want.Sub(t0), i)
		}
	}
}

// activitySpans are the first and last attempt times of each activity
// in calls (a new activity starts at attempt 1).
func activitySpans[R any](calls []call[R]) [][2]time.Time {
	var out [][2]time.Time
	for _, c := range calls {
		if c.Attempt == 1 || len(out) == 0 {
			out = append(out, [2]time.Time{c.At, c.At})
			continue
		}
		out[len(out)-1][1] = c.At
	}
	return out
}

func TestGatewayEventSettlesAPendingCapture(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCapture(func(int, call[gateway.CaptureRequest]) (gateway.Result, error) {
		return gateway.Result{}, unavailable()
	})
	h.onRetrieve(func(_ int, c call[string]) (gateway.Result, error) {
		if c.At.After(t0.Add(time.Hour + 3*time.Minute)) {
			t.Errorf("retrieve at %v after the event settled the payment", c.At.Sub(t0))
		}
		return authorized("pi_m"), nil
	})
	h.update(time.Hour, UpdateCapture, CaptureRequest{})
	// The capture's webhook arrives before the retry.
	h.signal(time.Hour+150*time.Second, GatewayEvent{EventID: "evt_cap", Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: amount})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusSucceeded || rec.NeedsAttention || !rec.UpdatedAt.Equal(t0.Add(time.Hour+150*time.Second)) {
		t.Fatalf("record %+v", rec)
	}
	if len(distinctKeys(keysOf(h.capture.all(), captureKey))) != 1 {
		t.Fatalf("the capture was sent again after the event: %+v", h.capture.all())
	}
	if a := h.attentionChanges(); len(a) != 2 || a[1].On {
		t.Fatalf("NeedsAttention changes %+v", a)
	}
	if len(h.journals()) != 1 {
		t.Fatalf("journals %+v", h.journals())
	}
}

func TestRefusedCaptureRetryClearsTheAttentionAndTheAuthorizationExpires(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	h.onCapture(func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
		if n == 1 || c.Req.IdempotencyKey == h.key("capture", 1) {
			return gateway.Result{}, unavailable()
		}
		return gateway.Result{}, invalidGatewayError("amount_too_large")
	})
	retrieveAuthorized(h)
	h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
		if n != 1 || c.Req.IdempotencyKey != h.key("expire", 1) || !c.At.Equal(t0.Add(AuthorizationTTL)) {
			t.Errorf("cancel %d %+v at %v", n, c.Req, c.At.Sub(t0))
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusCanceled}, nil
	})
	h.update(time.Hour, UpdateCapture, CaptureRequest{})
	h.at(2*time.Hour, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresCapture || got.NeedsAttention || h.attentionNow() {
			t.Errorf("after the gateway refused the retried capture: %+v", got)
		}
	})
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "authorization_expired" {
		t.Fatalf("record %+v", rec)
	}
	checkSequentialKeys(t, h, "capture", keysOf(h.capture.all(), captureKey), 2)
}

func TestUnconfirmedCancelIsRetriedOnATimerWithTheNextKey(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	up := t0.Add(time.Hour + 10*time.Minute)
	h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
		if c.Req.Reason != "duplicate" {
			t.Errorf("cancel reason %q", c.Req.Reason)
		}
		if downUntil(up, c.At) {
			return gateway.Result{}, unavailable()
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusCanceled}, nil
	})
	retrieveAuthorized(h)
	cancel := h.update(time.Hour, UpdateCancel, CancelRequest{Reason: "duplicate"})
	var capture *updateResult
	h.at(time.Hour+150*time.Second, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresCapture || !got.NeedsAttention || !strings.Contains(got.AttentionReason, "cancellation") {
			t.Errorf("while the cancel is unconfirmed: %+v", got)
		}
		capture = &updateResult{}
		h.updateNow(UpdateCapture, CaptureRequest{}, capture)
	})
	h.run()
	rec := h.result()
	if errType(cancel.err) != ErrTypeUnconfirmed {
		t.Fatalf("cancel update %+v", cancel)
	}
	if errType(capture.rejected) != ErrTypeFailedPrecondition || !strings.Contains(capture.rejected.Error(), "cancellation") {
		t.Fatalf("capture while a cancel is pending: %+v", capture)
	}
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "duplicate" || rec.NeedsAttention || len(h.journals()) != 0 {
		t.Fatalf("record %+v", rec)
	}
	// Retried after 1, then 5 minutes: three attempts, three keys.
	checkSequentialKeys(t, h, "cancel", keysOf(h.cancel.all(), cancelKey), 3)
	if h.capture.n() != 0 {
		t.Fatalf("captured")
	}
}

func TestUnconfirmedExpiryIsRetriedOnATimerWithTheNextKey(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	up := t0.Add(AuthorizationTTL + 10*time.Minute)
	h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
		if c.Req.Reason != "authorization_expired" {
			t.Errorf("cancel reason %q", c.Req.Reason)
		}
		if n == 1 && !c.At.Equal(t0.Add(AuthorizationTTL)) {
			t.Errorf("first cancel at %v", c.At.Sub(t0))
		}
		if downUntil(up, c.At) {
			return gateway.Result{}, unavailable()
		}
		return gateway.Result{Reference: "pi_m", Status: gateway.StatusCanceled}, nil
	})
	h.onRetrieve(func(_ int, c call[string]) (gateway.Result, error) {
		if downUntil(up, c.At) {
			return gateway.Result{}, unavailable()
		}
		return authorized("pi_m"), nil
	})
	var capture *updateResult
	// The cancel gives up after 91.5 s of retries, the lookup after 75.5 s
	// more; the expiry is then pending.
	h.at(AuthorizationTTL+200*time.Second, func() {
		if got := h.query(); got.Status != entpayment.StatusRequiresCapture || !got.NeedsAttention || !h.attentionNow() {
			t.Errorf("while the expiry is unconfirmed: %+v", got)
		}
		capture = &updateResult{}
		h.updateNow(UpdateCapture, CaptureRequest{}, capture)
	})
	h.run()
	rec := h.result()
	if errType(capture.rejected) != ErrTypeFailedPrecondition {
		t.Fatalf("capture while the expiry is pending: %+v", capture)
	}
	if rec.Status != entpayment.StatusCanceled || rec.FailureCode != "authorization_expired" || rec.NeedsAttention {
		t.Fatalf("record %+v", rec)
	}
	checkSequentialKeys(t, h, "expire", keysOf(h.cancel.all(), cancelKey), 2)
	if a := h.attentionChanges(); len(a) != 2 || !a[0].On || a[1].On {
		t.Fatalf("NeedsAttention changes %+v", a)
	}
}

// Issue 6, item 3: a save the store refuses for good.
func TestRefusedSaveIsRetriedOnATimerWhileThePaymentKeepsItsRecordedState(t *testing.T) {
	h := newHarness(t, input(true))
	authorize(h)
	captureOK(h, 1)
	refused := 0
	h.refuseSave = func(rec store.PaymentRecord, _ *store.Journal) error {
		if rec.Status == entpayment.StatusSucceeded && refused < 2 {
			refused++
			return storeRefusal()
		}
		return nil
	}
	capture := h.update(time.Hour, UpdateCapture, CaptureRequest{})
	var during store.PaymentRecord
	var again, cancel *updateResult
	h.at(time.Hour+30*time.Second, func() {
		during = h.query()
		if !h.attentionNow() {
			t.Errorf("NeedsAttention search attribute not set while a state is unsaved")
		}
		again, cancel = &updateResult{}, &updateResult{}
		h.updateNow(UpdateCapture, CaptureRequest{}, again)
		h.updateNow(UpdateCancel, CancelRequest{}, cancel)
		// An event while the state is unsaved.
		h.env.SignalWorkflow(SignalGatewayEvent, GatewayEvent{EventID: "evt_cap", Reference: "pi_m", Status: gateway.StatusSucceeded, AmountReceived: amount})
	})
	h.run()
	rec := h.result()
	if capture.err != nil || capture.rejected != nil {
		t.Fatalf("capture %+v", capture)
	}
	if during.Status != entpayment.StatusRequiresCapture || during.Version != 1 {
		t.Fatalf("the query showed %+v, want the recorded authorization", during)
	}
	for _, u := range []*updateResult{again, cancel} {
		if errType(u.rejected) != ErrTypeFailedPrecondition || !strings.Contains(u.rejected.Error(), "not recorded") {
			t.Fatalf("update while a state is unsaved: %+v", u)
		}
	}
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || rec.Version != 2 {
		t.Fatalf("record %+v", rec)
	}
	// Tried again after StepRetryDelay(1), then (2): three tries of one
	// version, the journal with each.
	saves := h.allSaves()
	if len(saves) != 4 {
		t.Fatalf("%d saves", len(saves))
	}
	at := []time.Time{t0.Add(time.Hour), t0.Add(time.Hour + presets.StepRetryDelay(1)), t0.Add(time.Hour + presets.StepRetryDelay(1) + presets.StepRetryDelay(2))}
	for i, s := range saves[1:] {
		if !s.At.Equal(at[i]) || s.Journal == nil || s.Rec.Status != entpayment.StatusSucceeded || s.Rec.Version != 2 {
			t.Fatalf("save %d: %+v at %v, want at %v", i+1, s.Rec, s.At.Sub(t0), at[i].Sub(t0))
		}
	}
	if h.capture.n() != 1 {
		t.Fatalf("%d captures", h.capture.n())
	}
	if a := h.attentionChanges(); len(a) != 2 || !a[0].On || !a[0].At.Equal(at[0]) || a[1].On || !a[1].At.Equal(at[2]) {
		t.Fatalf("NeedsAttention changes %+v", a)
	}
	if logged := h.log.find("ERROR", "store refused"); len(logged) == 0 {
		t.Fatalf("the refusal was not logged")
	}
}

func TestStoreThatKeepsRefusingNeitherFailsNorEndsTheWorkflow(t *testing.T) {
	h := newHarness(t, input(false))
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return succeeded("pi_1", amount), nil })
	h.refuseSave = func(store.PaymentRecord, *store.Journal) error { return storeRefusal() }
	var saves []saveCall
	h.at(3*time.Hour, func() {
		saves = h.allSaves()
		if got := h.query(); got.Version != 0 || got.Status != entpayment.StatusProcessing {
			t.Errorf("the query shows %+v, nothing was recorded", got)
		}
		if !h.attentionNow() {
			t.Errorf("NeedsAttention not set")
		}
		h.env.CancelWorkflow()
	})
	h.run()
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("the workflow did not end when canceled")
	}
	// 0, +1, +5, +15 minutes, then hourly.
	want := []time.Duration{0, time.Minute, 6 * time.Minute, 21 * time.Minute, 81 * time.Minute, 141 * time.Minute}
	if len(saves) != len(want) {
		t.Fatalf("%d saves by 3h, want %d", len(saves), len(want))
	}
	for i, s := range saves {
		if !s.At.Equal(t0.Add(want[i])) || s.Rec.Version != 1 || s.Rec.Status != entpayment.StatusSucceeded || s.Journal == nil {
			t.Fatalf("save %d: %+v at %v, want at %v", i, s.Rec, s.At.Sub(t0), want[i])
		}
	}
}

// The store refuses the processing state recorded before the create is
// retried; the create then answers. The answer must win: the refused
// processing state must not be saved over it later.
func TestRefusedProcessingSaveDoesNotOverwriteTheCharge(t *testing.T) {
	h := newHarness(t, input(false))
	h.onCreate(func(n int, _ call[gateway.CreateRequest]) (gateway.Result, error) {
		if n <= 2 {
			return gateway.Result{}, unavailable()
		}
		return succeeded("pi_1", amount), nil
	})
	refused := false
	h.refuseSave = func(rec store.PaymentRecord, _ *store.Journal) error {
		if rec.Status == entpayment.StatusProcessing && !refused {
			refused = true
			return storeRefusal()
		}
		return nil
	}
	h.run()
	rec := h.result()
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount {
		t.Fatalf("record %+v", rec)
	}
	for _, s := range h.accepted() {
		if s.Rec.Status != entpayment.StatusSucceeded {
			t.Fatalf("saved %s after the charge: %+v", s.Rec.Status, h.statuses())
		}
	}
	if len(h.journals()) != 1 {
		t.Fatalf("journals %+v", h.journals())
	}
}

// What the intent shows after a capture or cancel the gateway refused or
// did not answer decides the payment, and what the update's caller hears.
func TestStepOutcomeFollowsTheRetrievedIntent(t *testing.T) {
	canceled := gateway.Result{Reference: "pi_m", Status: gateway.StatusCanceled}
	for _, tc := range []struct {
		name      string
		update    string
		stepErr   error
		retrieved gateway.Result
		retrieveE error
		errType   string // of the update's error, "" for none
		status    entpayment.Status
		code      string
		journals  int
	}{
		{name: "unanswered capture, authorization gone", update: UpdateCapture, stepErr: unavailable(), retrieved: canceled,
			errType: ErrTypeFailedPrecondition, status: entpayment.StatusCanceled, code: "authorization_expired"},
		{name: "unanswered cancel, canceled", update: UpdateCancel, stepErr: unavailable(), retrieved: canceled,
			status: entpayment.StatusCanceled, code: "fraudulent"},
		{name: "unanswered cancel, captured meanwhile", update: UpdateCancel, stepErr: unavailable(), retrieved: succeeded("pi_m", amount),
			status: entpayment.StatusSucceeded, journals: 1},
		{name: "refused cancel, captured meanwhile", update: UpdateCancel, stepErr: invalidGatewayError("payment_intent_unexpected_state"), retrieved: succeeded("pi_m", 0),
			status: entpayment.StatusSucceeded, journals: 1},
		// Captured at the gateway already (its dashboard): recorded, and the
		// caller hears that this capture was refused.
		{name: "refused capture, captured already", update: UpdateCapture, stepErr: invalidGatewayError("payment_intent_unexpected_state"), retrieved: succeeded("pi_m", amount),
			errType: ErrTypeFailedPrecondition, status: entpayment.StatusSucceeded, journals: 1},
		{name: "refused capture, authorization gone", update: UpdateCapture, stepErr: invalidGatewayError("payment_intent_unexpected_state"), retrieved: canceled,
			errType: ErrTypeFailedPrecondition, status: entpayment.StatusCanceled, code: "authorization_expired"},
		{name: "refused capture, intent unreadable", update: UpdateCapture, stepErr: invalidGatewayError("amount_too_large"), retrieveE: unavailable(),
			errType: ErrTypeFailedPrecondition, status: entpayment.StatusRequiresCapture},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, input(true))
			authorize(h)
			if tc.update == UpdateCapture {
				h.onCapture(func(n int, c call[gateway.CaptureRequest]) (gateway.Result, error) {
					if c.Req.IdempotencyKey != h.key("capture", 1) || c.Req.Amount != amount {
						t.Errorf("capture %d %+v", n, c.Req)
					}
					return gateway.Result{}, tc.stepErr
				})
			} else {
				h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
					if c.Req.IdempotencyKey != h.key("cancel", 1) || c.Req.Reason != "fraudulent" {
						t.Errorf("cancel %d %+v", n, c.Req)
					}
					return gateway.Result{}, tc.stepErr
				})
			}
			h.onRetrieve(func(n int, c call[string]) (gateway.Result, error) {
				if c.Attempt == 1 && n > 1 {
					t.Errorf("retrieve %d: one lookup", n)
				}
				return tc.retrieved, tc.retrieveE
			})
			var u *updateResult
			if tc.update == UpdateCapture {
				u = h.update(time.Hour, UpdateCapture, CaptureRequest{})
			} else {
				u = h.update(time.Hour, UpdateCancel, CancelRequest{Reason: "fraudulent"})
			}
			if tc.status == entpayment.StatusRequiresCapture {
				h.onCancel(func(n int, c call[gateway.CancelRequest]) (gateway.Result, error) {
					if c.Req.IdempotencyKey != h.key("expire", 1) || !c.At.Equal(t0.Add(AuthorizationTTL)) {
						t.Errorf("cancel %d %+v at %v", n, c.Req, c.At.Sub(t0))
					}
					return canceled, nil
				})
				h.at(2*time.Hour, func() {
					if got := h.query(); got.Status != entpayment.StatusRequiresCapture || got.NeedsAttention {
						t.Errorf("after the refusal: %+v", got)
					}
				})
			}
			h.run()
			rec := h.result()
			if got := errType(u.err); got != tc.errType || u.rejected != nil {
				t.Fatalf("update: %+v, want error type %q", u, tc.errType)
			}
			if tc.status != entpayment.StatusRequiresCapture && (rec.Status != tc.status || rec.FailureCode != tc.code) {
				t.Fatalf("record %+v", rec)
			}
			if tc.status == entpayment.StatusRequiresCapture && rec.FailureCode != "authorization_expired" {
				t.Fatalf("record %+v, want the authorization to expire as usual", rec)
			}
			if rec.NeedsAttention || len(h.attentionChanges()) != 0 {
				t.Fatalf("NeedsAttention set: %+v", h.attentionChanges())
			}
			if js := h.journals(); len(js) != tc.journals {
				t.Fatalf("journals %+v", js)
			}
			if tc.status == entpayment.StatusSucceeded && rec.AmountReceived != amount {
				t.Fatalf("record %+v", rec)
			}
		})
	}
}

// An event that arrives while the payment's last state is unsaved is
// applied once the save goes through: the webhook was acknowledged, and
// the gateway does not send it again.
func TestEventWhileAStateIsUnsavedIsAppliedAfterTheSave(t *testing.T) {
	h := newHarness(t, input(true))
	h.ref = "pi_3ds"
	h.onCreate(func(int, call[gateway.CreateRequest]) (gateway.Result, error) { return requiresAction("pi_3ds"), nil })
	refused := false
	h.refuseSave = func(rec store.PaymentRecord, _ *store.Journal) error {
		if rec.Status == entpayment.StatusRequiresCapture && !refused {
			refused = true
			return storeRefusal()
		}
		return nil
	}
	// 3-D Secure completed (authorized), then captured from the gateway's
	// dashboard.
	h.signal(10*time.Minute, GatewayEvent{EventID: "evt_auth", Reference: "pi_3ds", Status: gateway.StatusRequiresCapture, AmountCapturable: amount})
	h.signal(10*time.Minute+20*time.Second, GatewayEvent{EventID: "evt_cap", Reference: "pi_3ds", Status: gateway.StatusSucceeded, AmountReceived: amount})
	h.run()
	rec := h.result()
	retried := t0.Add(10*time.Minute + presets.StepRetryDelay(1))
	if rec.Status != entpayment.StatusSucceeded || rec.AmountReceived != amount || !rec.UpdatedAt.Equal(retried) {
		t.Fatalf("record %+v, want succeeded when the refused save went through at %v", rec, retried.Sub(t0))
	}
	if st := h.statuses(); !reflect.DeepEqual(st, []entpayment.Status{entpayment.StatusRequiresAction, entpayment.StatusRequiresCapture, entpayment.StatusSucceeded}) {
		t.Fatalf("saved statuses %v", st)
	}
}
