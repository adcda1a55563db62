package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/payments-platform/payments/internal/gateway"
)

// delivery is one request the fake webhook route received.
type delivery struct {
	path      string
	signature string
	body      []byte
	event     stripego.Event
	verifyErr error
}

// receiver stands in for the platform's POST /webhooks/stripe: it verifies
// the Stripe-Signature with stripe-go, as the real route does, and records
// every request.
type receiver struct {
	srv *httptest.Server

	mu         sync.Mutex
	deliveries []delivery
	status     int
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{status: http.StatusOK}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{path: r.Method + " " + r.URL.Path, signature: r.Header.Get("Stripe-Signature"), body: body}
		d.event, d.verifyErr = webhook.ConstructEventWithOptions(body, d.signature, testSecret, webhook.ConstructEventOptions{})
		rc.mu.Lock()
		rc.deliveries = append(rc.deliveries, d)
		status := rc.status
		rc.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "receiver is down", status)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setStatus(s int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status = s
}

func (rc *receiver) got() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.deliveries...)
}

// threeDS is a sandbox whose PublicURL is a fake webhook receiver, and a
// payment waiting for 3-D Secure. As in production, one sandbox (a worker)
// created the payment and another on the same state (the API) serves the
// page.
type threeDS struct {
	st      State
	sb      *Sandbox // serves the page
	worker  *Sandbox // made the payment
	rc      *receiver
	handler http.Handler
	now     time.Time
	res     gateway.Result
	link    *url.URL
}

func newThreeDS(t *testing.T, key string, manual bool, returnURL string) *threeDS {
	t.Helper()
	rc := newReceiver(t)
	// The receiver checks the signature's timestamp against the real clock.
	now := time.Now().Truncate(time.Second)
	st := newState(t)
	mk := func() *Sandbox {
		sb, err := New(Options{State: st, PublicURL: rc.srv.URL, WebhookSecret: testSecret, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return sb
	}
	sb, worker := mk(), mk()
	req := createReq(key, "pm_card_authenticationRequired", manual)
	req.ReturnURL = returnURL
	res, err := worker.CreatePayment(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != gateway.StatusRequiresAction {
		t.Fatalf("status %q, want requires_action", res.Status)
	}
	link, err := url.Parse(res.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	return &threeDS{st: st, sb: sb, worker: worker, rc: rc, handler: sb.Handler(), now: now, res: res, link: link}
}

// do sends a request to the sandbox's handler.
func (x *threeDS) do(method, pathAndQuery, outcome string) *httptest.ResponseRecorder {
	var body io.Reader
	if outcome != "" {
		body = strings.NewReader(url.Values{"outcome": {outcome}}.Encode())
	}
	r := httptest.NewRequest(method, pathAndQuery, body)
	if body != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	w := httptest.NewRecorder()
	x.handler.ServeHTTP(w, r)
	return w
}

func (x *threeDS) pageURL() string { return x.link.RequestURI() }

func TestThreeDSRedirectURL(t *testing.T) {
	for _, manual := range []bool{false, true} {
		x := newThreeDS(t, fmt.Sprintf("3ds/url/%v", manual), manual, "https://shop.test/back?order=7")
		prefix := x.rc.srv.URL + "/sandbox/3ds/" + x.res.Reference + "?"
		if !strings.HasPrefix(x.res.RedirectURL, prefix) {
			t.Fatalf("RedirectURL %q does not start with %q", x.res.RedirectURL, prefix)
		}
		q := x.link.Query()
		capture := map[bool]string{false: "automatic", true: "manual"}[manual]
		for k, want := range map[string]string{
			"payment_id": "pay_01testpayment", "amount": "1234", "currency": "USD", "capture": capture,
			"pm": "pm_card_authenticationRequired", "return_url": "https://shop.test/back?order=7",
		} {
			if got := q.Get(k); got != want {
				t.Errorf("manual=%v: query %s = %q, want %q", manual, k, got, want)
			}
		}
		if q.Get("sig") == "" {
			t.Errorf("no sig in %q", x.res.RedirectURL)
		}
	}
}

func TestThreeDSPage(t *testing.T) {
	x := newThreeDS(t, "3ds/page", false, "")
	w := x.do(http.MethodGet, x.pageURL(), "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET: %d %s", w.Code, w.Body)
	}
	page := w.Body.String()
	for _, want := range []string{
		"Complete authentication", "Fail authentication", "12.34 USD", "pay_01testpayment",
		`name="outcome" value="succeed"`, `name="outcome" value="fail"`, `method="post"`,
		`action="/sandbox/3ds/` + x.res.Reference + `?`, "sig=",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	for _, external := range []string{"<script", "<link", "src=", "url(", "@import"} {
		if strings.Contains(page, external) {
			t.Errorf("page loads something (%q)", external)
		}
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if n := len(x.rc.got()); n != 0 {
		t.Fatalf("GET sent %d events", n)
	}
}

func TestThreeDSPageZeroDecimalCurrency(t *testing.T) {
	rc := newReceiver(t)
	sb, err := New(Options{State: newState(t), PublicURL: rc.srv.URL, WebhookSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	req := createReq("3ds/jpy", "pm_card_threeDSecure2Required", false)
	req.Currency, req.Amount = "jpy", 5000
	res, err := sb.CreatePayment(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(res.RedirectURL)
	w := httptest.NewRecorder()
	sb.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, u.RequestURI(), nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "5000 JPY") {
		t.Fatalf("GET: %d\n%s", w.Code, w.Body)
	}
}

// eventObject is the PaymentIntent inside an event, decoded as JSON so the
// test sees exactly what was sent.
type eventObject struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Amount           int64             `json:"amount"`
	AmountCapturable int64             `json:"amount_capturable"`
	AmountReceived   int64             `json:"amount_received"`
	Currency         string            `json:"currency"`
	Status           string            `json:"status"`
	CaptureMethod    string            `json:"capture_method"`
	Metadata         map[string]string `json:"metadata"`
	LastPaymentError *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_payment_error"`
}

func TestThreeDSOutcome(t *testing.T) {
	tests := []struct {
		name             string
		manual           bool
		outcome          string
		returnURL        string
		eventType        string
		status           string
		capturable       int64
		received         int64
		failed           bool
		location         string // want; {ref} is replaced
		resultStatus     gateway.Status
		resultCapturable int64
		resultReceived   int64
	}{
		{name: "succeed automatic", outcome: "succeed", eventType: "payment_intent.succeeded",
			status: "succeeded", received: 1234,
			location:     "/sandbox/3ds/{ref}/complete?redirect_status=succeeded",
			resultStatus: gateway.StatusSucceeded, resultReceived: 1234},
		{name: "succeed manual", manual: true, outcome: "succeed", eventType: "payment_intent.amount_capturable_updated",
			status: "requires_capture", capturable: 1234, returnURL: "https://shop.test/back?order=7",
			location:     "https://shop.test/back?order=7&payment_intent={ref}&redirect_status=succeeded",
			resultStatus: gateway.StatusRequiresCapture, resultCapturable: 1234},
		{name: "fail automatic", outcome: "fail", eventType: "payment_intent.payment_failed",
			status: "requires_payment_method", failed: true, returnURL: "http://127.0.0.1:3000/done",
			location:     "http://127.0.0.1:3000/done?payment_intent={ref}&redirect_status=failed",
			resultStatus: gateway.StatusFailed},
		{name: "fail manual", manual: true, outcome: "fail", eventType: "payment_intent.payment_failed",
			status: "requires_payment_method", failed: true,
			location:     "/sandbox/3ds/{ref}/complete?redirect_status=failed",
			resultStatus: gateway.StatusFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newThreeDS(t, "3ds/outcome/"+tc.name, tc.manual, tc.returnURL)
			ref := x.res.Reference
			w := x.do(http.MethodPost, x.pageURL(), tc.outcome)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("POST: %d %s", w.Code, w.Body)
			}
			if got, want := w.Header().Get("Location"), strings.ReplaceAll(tc.location, "{ref}", ref); got != want {
				t.Errorf("Location = %q, want %q", got, want)
			}

			got := x.rc.got()
			if len(got) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(got))
			}
			d := got[0]
			if d.path != "POST /webhooks/stripe" {
				t.Errorf("sent to %q", d.path)
			}
			if d.verifyErr != nil {
				t.Fatalf("stripe-go refused the event: %v\nheader %s\nbody %s", d.verifyErr, d.signature, d.body)
			}
			if want := "t=" + strconv.FormatInt(x.now.Unix(), 10) + ",v1="; !strings.HasPrefix(d.signature, want) {
				t.Errorf("Stripe-Signature %q does not start with %q", d.signature, want)
			}
			ev := d.event
			if ev.ID != EventID(ref, tc.outcome) || !strings.HasPrefix(ev.ID, "evt_") {
				t.Errorf("event id %q, want %q", ev.ID, EventID(ref, tc.outcome))
			}
			if string(ev.Type) != tc.eventType || ev.Object != "event" || ev.APIVersion != stripego.APIVersion {
				t.Errorf("event type %q object %q api_version %q", ev.Type, ev.Object, ev.APIVersion)
			}
			if ev.Created != x.now.Unix() || ev.Livemode {
				t.Errorf("created %d livemode %v", ev.Created, ev.Livemode)
			}

			var obj eventObject
			if err := json.Unmarshal(ev.Data.Raw, &obj); err != nil {
				t.Fatal(err)
			}
			if obj.ID != ref || obj.Object != "payment_intent" || obj.Amount != 1234 || obj.Currency != "usd" ||
				obj.Status != tc.status || obj.AmountCapturable != tc.capturable || obj.AmountReceived != tc.received {
				t.Errorf("object = %+v", obj)
			}
			if want := map[bool]string{false: "automatic", true: "manual"}[tc.manual]; obj.CaptureMethod != want {
				t.Errorf("capture_method %q, want %q", obj.CaptureMethod, want)
			}
			if obj.Metadata["payment_id"] != "pay_01testpayment" {
				t.Errorf("metadata %v", obj.Metadata)
			}
			if tc.failed != (obj.LastPaymentError != nil) {
				t.Fatalf("last_payment_error = %+v", obj.LastPaymentError)
			}
			if tc.failed && (obj.LastPaymentError.Code != "authentication_required" || obj.LastPaymentError.Message == "") {
				t.Errorf("last_payment_error = %+v", obj.LastPaymentError)
			}

			// stripe-go decodes it into a PaymentIntent, as the webhook route will.
			var pi stripego.PaymentIntent
			if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil {
				t.Fatal(err)
			}
			if pi.ID != ref || string(pi.Status) != tc.status || pi.Metadata["payment_id"] != "pay_01testpayment" ||
				pi.Currency != stripego.CurrencyUSD {
				t.Errorf("stripe-go PaymentIntent = %s %s %v %s", pi.ID, pi.Status, pi.Metadata, pi.Currency)
			}

			// The state moved, for every process: the worker that made the
			// payment, and one started afresh.
			for _, sb := range []*Sandbox{x.worker, x.sb, newSandboxOn(t, x.st)} {
				res, err := sb.Retrieve(t.Context(), ref)
				if err != nil {
					t.Fatal(err)
				}
				if res.Status != tc.resultStatus || res.AmountCapturable != tc.resultCapturable || res.AmountReceived != tc.resultReceived ||
					res.Amount != 1234 || res.Method != x.res.Method {
					t.Errorf("Retrieve = %+v", res)
				}
				if tc.failed && res.FailureCode != "authentication_required" {
					t.Errorf("Retrieve failure code %q", res.FailureCode)
				}
				found, err := sb.Find(t.Context(), gateway.FindRequest{PaymentID: "pay_01testpayment"})
				if err != nil || !found.Exists || found.Result != res {
					t.Errorf("Find = %+v, %v; want %+v", found, err, res)
				}
			}
		})
	}
}

func TestThreeDSSameClickTwice(t *testing.T) {
	x := newThreeDS(t, "3ds/twice", false, "")
	for i := range 2 {
		if w := x.do(http.MethodPost, x.pageURL(), "succeed"); w.Code != http.StatusSeeOther {
			t.Fatalf("click %d: %d %s", i+1, w.Code, w.Body)
		}
	}
	got := x.rc.got()
	if len(got) != 2 {
		t.Fatalf("receiver got %d events, want 2", len(got))
	}
	if got[0].verifyErr != nil || got[1].verifyErr != nil {
		t.Fatalf("signature: %v, %v", got[0].verifyErr, got[1].verifyErr)
	}
	if got[0].event.ID != got[1].event.ID {
		t.Fatalf("event ids differ: %q, %q", got[0].event.ID, got[1].event.ID)
	}
	// The other outcome is another event.
	if EventID(x.res.Reference, "fail") == got[0].event.ID {
		t.Fatal("succeed and fail share an event id")
	}
}

func TestThreeDSTamperedLinks(t *testing.T) {
	x := newThreeDS(t, "3ds/tamper", false, "https://shop.test/back")
	q := x.link.Query()
	path := x.link.Path
	with := func(mutate func(url.Values)) string {
		v := url.Values{}
		for k, vs := range q {
			v[k] = append([]string(nil), vs...)
		}
		mutate(v)
		return path + "?" + v.Encode()
	}
	otherSecret, err := New(Options{State: newState(t), PublicURL: x.rc.srv.URL, WebhookSecret: "whsec_other"})
	if err != nil {
		t.Fatal(err)
	}
	otherRes, err := otherSecret.CreatePayment(t.Context(), createReq("3ds/tamper", "pm_card_authenticationRequired", false))
	if err != nil {
		t.Fatal(err)
	}
	otherLink, _ := url.Parse(otherRes.RedirectURL)

	tests := map[string]string{
		"changed amount":     with(func(v url.Values) { v.Set("amount", "1") }),
		"bigger amount":      with(func(v url.Values) { v.Set("amount", "999999") }),
		"changed currency":   with(func(v url.Values) { v.Set("currency", "EUR") }),
		"changed capture":    with(func(v url.Values) { v.Set("capture", "manual") }),
		"changed payment":    with(func(v url.Values) { v.Set("payment_id", "pay_someoneelse") }),
		"changed return url": with(func(v url.Values) { v.Set("return_url", "https://evil.test/") }),
		"added parameter":    with(func(v url.Values) { v.Set("extra", "1") }),
		"repeated amount":    with(func(v url.Values) { v.Add("amount", "1") }),
		"no signature":       with(func(v url.Values) { v.Del("sig") }),
		"garbage signature":  with(func(v url.Values) { v.Set("sig", "AAAA") }),
		"other reference":    "/sandbox/3ds/" + Reference("someone else") + "?" + x.link.RawQuery,
		"other secret":       otherLink.RequestURI(),
		"malformed ref":      "/sandbox/3ds/pi_123?" + x.link.RawQuery,
	}
	for name, target := range tests {
		t.Run(name, func(t *testing.T) {
			if w := x.do(http.MethodGet, target, ""); w.Code != http.StatusBadRequest {
				t.Errorf("GET: %d, want 400", w.Code)
			}
			w := x.do(http.MethodPost, target, "succeed")
			if w.Code != http.StatusBadRequest {
				t.Errorf("POST: %d, want 400", w.Code)
			}
			if !strings.Contains(w.Body.String(), "invalid or was altered") {
				t.Errorf("POST body: %s", w.Body)
			}
			if n := len(x.rc.got()); n != 0 {
				t.Fatalf("a tampered link sent %d events", n)
			}
		})
	}
	// The untampered link still works, so the refusals above are real.
	if w := x.do(http.MethodPost, x.pageURL(), "succeed"); w.Code != http.StatusSeeOther {
		t.Fatalf("untampered POST: %d %s", w.Code, w.Body)
	}
	if n := len(x.rc.got()); n != 1 {
		t.Fatalf("untampered POST sent %d events", n)
	}
}

func TestThreeDSBadOutcome(t *testing.T) {
	x := newThreeDS(t, "3ds/outcome/bad", false, "")
	for _, outcome := range []string{"", "maybe", "SUCCEED"} {
		w := x.do(http.MethodPost, x.pageURL(), outcome)
		if w.Code != http.StatusBadRequest {
			t.Errorf("outcome %q: %d, want 400", outcome, w.Code)
		}
	}
	// outcome in the query string (not the form) does not count.
	w := x.do(http.MethodPost, x.pageURL()+"&outcome=succeed", "")
	if w.Code != http.StatusBadRequest {
		t.Errorf("outcome in the query: %d, want 400", w.Code)
	}
	if n := len(x.rc.got()); n != 0 {
		t.Fatalf("sent %d events", n)
	}
}

// TestThreeDSReceiverDown: the customer's choice is recorded even when its
// event cannot be delivered (the platform can learn it through Find), and a
// later click, of either button, sends that first choice's event again.
func TestThreeDSReceiverDown(t *testing.T) {
	x := newThreeDS(t, "3ds/down", true, "")
	x.rc.setStatus(http.StatusInternalServerError)
	w := x.do(http.MethodPost, x.pageURL(), "succeed")
	if w.Code != http.StatusBadGateway {
		t.Fatalf("POST with the receiver down: %d, want 502", w.Code)
	}
	body := w.Body.String()
	for _, want := range []string{"/webhooks/stripe", "500", "Click again", EventID(x.res.Reference, "succeed"),
		`name="outcome" value="succeed"`, `method="post"`} {
		if !strings.Contains(body, want) {
			t.Errorf("502 page lacks %q:\n%s", want, body)
		}
	}
	found, err := x.worker.Find(t.Context(), gateway.FindRequest{PaymentID: "pay_01testpayment"})
	if err != nil || found.Result.Status != gateway.StatusRequiresCapture || found.Result.AmountCapturable != 1234 {
		t.Fatalf("Find after an undelivered result: %+v, %v", found, err)
	}
	// The page now offers to send the result again, not to choose.
	w = x.do(http.MethodGet, x.pageURL(), "")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Send the result again") ||
		strings.Contains(w.Body.String(), "Fail authentication") {
		t.Fatalf("GET after the choice: %d\n%s", w.Code, w.Body)
	}

	x.rc.setStatus(http.StatusOK)
	// Even "fail" now sends the recorded success: the issuer answered once.
	w = x.do(http.MethodPost, x.pageURL(), "fail")
	if w.Code != http.StatusSeeOther || !strings.HasSuffix(w.Header().Get("Location"), "redirect_status=succeeded") {
		t.Fatalf("second click: %d %s %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	got := x.rc.got()
	if len(got) != 2 || got[0].event.ID != got[1].event.ID || got[1].verifyErr != nil ||
		string(got[1].event.Type) != EventCapturable {
		t.Fatalf("deliveries: %d", len(got))
	}
	if res, _ := x.sb.Retrieve(t.Context(), x.res.Reference); res.Status != gateway.StatusRequiresCapture {
		t.Fatalf("state after delivery: %+v", res)
	}
}

// TestThreeDSAfterVoid: a payment voided while the customer was on the page
// is no longer awaiting authentication: the page says so and sends nothing.
func TestThreeDSAfterVoid(t *testing.T) {
	x := newThreeDS(t, "3ds/voided", false, "")
	found, err := x.worker.Void(t.Context(), gateway.VoidRequest{PaymentID: "pay_01testpayment", Reason: "abandoned"})
	if err != nil || found.Result.Status != gateway.StatusCanceled {
		t.Fatalf("Void: %+v, %v", found, err)
	}
	if w := x.do(http.MethodGet, x.pageURL(), ""); w.Code != http.StatusOK ||
		!strings.Contains(w.Body.String(), "no longer awaiting authentication: it is canceled") ||
		strings.Contains(w.Body.String(), "<button") {
		t.Fatalf("GET: %d\n%s", w.Code, w.Body)
	}
	if w := x.do(http.MethodPost, x.pageURL(), "succeed"); w.Code != http.StatusConflict ||
		!strings.Contains(w.Body.String(), "Nothing was sent") {
		t.Fatalf("POST: %d\n%s", w.Code, w.Body)
	}
	if n := len(x.rc.got()); n != 0 {
		t.Fatalf("sent %d events", n)
	}
	if res, _ := x.sb.Retrieve(t.Context(), x.res.Reference); res.Status != gateway.StatusCanceled {
		t.Fatalf("state: %+v", res)
	}
}

// TestThreeDSUnknownPayment: a well-signed link for a payment the state
// does not hold (another database, say) is refused.
func TestThreeDSUnknownPayment(t *testing.T) {
	x := newThreeDS(t, "3ds/unknown", false, "")
	elsewhere := newSandboxOn(t, newState(t)) // same secret, another database
	handler := elsewhere.Handler()
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		r := httptest.NewRequest(method, x.pageURL(), strings.NewReader("outcome=succeed"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "No such payment") {
			t.Errorf("%s: %d\n%s", method, w.Code, w.Body)
		}
	}
	if n := len(x.rc.got()); n != 0 {
		t.Fatalf("sent %d events", n)
	}
}

// TestThreeDSWhileDown: the pages do not go through the gateway's network,
// so an outage of the sandbox does not stop them.
func TestThreeDSWhileDown(t *testing.T) {
	x := newThreeDS(t, "3ds/while-down", false, "")
	x.sb.SetDown(true)
	x.worker.SetDown(true)
	if w := x.do(http.MethodPost, x.pageURL(), "succeed"); w.Code != http.StatusSeeOther {
		t.Fatalf("POST while down: %d %s", w.Code, w.Body)
	}
	x.worker.SetDown(false)
	if res, err := x.worker.Retrieve(t.Context(), x.res.Reference); err != nil || res.Status != gateway.StatusSucceeded {
		t.Fatalf("after the outage: %+v, %v", res, err)
	}
}

func TestThreeDSReceiverUnreachable(t *testing.T) {
	x := newThreeDS(t, "3ds/unreachable", false, "")
	x.rc.srv.Close()
	w := x.do(http.MethodPost, x.pageURL(), "fail")
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "could not deliver") {
		t.Fatalf("POST with no receiver: %d\n%s", w.Code, w.Body)
	}
}

func TestThreeDSCompletePage(t *testing.T) {
	x := newThreeDS(t, "3ds/complete", false, "")
	for status, want := range map[string]string{"succeeded": "Authentication complete", "failed": "Authentication failed"} {
		w := x.do(http.MethodGet, "/sandbox/3ds/"+x.res.Reference+"/complete?redirect_status="+status, "")
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: %d\n%s", status, w.Code, w.Body)
		}
	}
}

func TestSignPayload(t *testing.T) {
	payload := []byte(`{"id":"evt_1","object":"event","type":"payment_intent.succeeded","api_version":"` + stripego.APIVersion + `","data":{"object":{}}}`)
	now := time.Now()
	header := SignPayload("whsec_abc", payload, now)
	if want := "t=" + strconv.FormatInt(now.Unix(), 10) + ",v1="; !strings.HasPrefix(header, want) || len(header) != len(want)+64 {
		t.Fatalf("header %q", header)
	}
	if err := webhook.ValidatePayload(payload, header, "whsec_abc"); err != nil {
		t.Fatalf("stripe-go refused a good signature: %v", err)
	}
	if err := webhook.ValidatePayload(payload, header, "whsec_other"); err == nil {
		t.Fatal("stripe-go accepted the wrong secret")
	}
	if err := webhook.ValidatePayload(append(payload, ' '), header, "whsec_abc"); err == nil {
		t.Fatal("stripe-go accepted a changed payload")
	}
	old := SignPayload("whsec_abc", payload, now.Add(-10*time.Minute))
	if err := webhook.ValidatePayload(payload, old, "whsec_abc"); err == nil {
		t.Fatal("stripe-go accepted a stale timestamp")
	}
}
