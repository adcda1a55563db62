package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/payments-platform/payments/internal/devserver"
)

// chromium finds Debian's Chromium (`make test` installs the
// chromium package); PAYMENTS_CHROMIUM names another binary.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PAYMENTS_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("this test needs Chromium: `make test` installs Debian's chromium package " +
		"(apt-get install chromium), or set PAYMENTS_CHROMIUM to a Chromium or Chrome binary")
	return ""
}

// docsPage drives the /docs page of base in a headless Chromium.
type docsPage struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string // exceptions, errors and CSP violations the page reported
}

func openDocs(t *testing.T, base string) *docsPage {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // root in CI
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 2000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	p := &docsPage{t: t, ctx: ctx}
	// The console, from before the page loads: an exception, an error or a
	// refusal of the page's CSP is a problem of the page.
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The one answer that is not 200 is GetMe's 401 before Authorize,
			// which the browser logs as a failed resource.
			expected := m.Source == "network" && strings.Contains(m.Text, "status of 401")
			if !expected && (m.IsException() || m.Type == chromedp.ConsoleError || strings.Contains(m.Text, "Content Security Policy")) {
				p.mu.Lock()
				p.problems = append(p.problems, m.String())
				p.mu.Unlock()
			}
		}
	}()
	p.do("open /docs", chromedp.Navigate(base+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(`#operations-AccountService-AccountService_GetMe`)))
	return p
}

// do runs steps, each bounded by a minute.
func (p *docsPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.screenshot("failed")
		p.t.Fatalf("%s: %v", what, err)
	}
}

// get runs an action that returns a value.
func get[T any](p *docsPage, what string, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.screenshot("failed")
		p.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshot saves the whole page as a JPEG in the test's temp dir, or in
// PAYMENTS_SCREENSHOT_DIR when it is set (to look at it after the test).
func (p *docsPage) screenshot(name string) string {
	img, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(80))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	dir := os.Getenv("PAYMENTS_SCREENSHOT_DIR")
	if dir == "" {
		dir = p.t.TempDir()
	}
	path := filepath.Join(dir, name+".jpg")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

// setValue sets the value of a React-controlled input or textarea the way
// typing does, so that Swagger UI sees it.
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	selJSON, _ := json.Marshal(sel)
	valueJSON, _ := json.Marshal(value)
	set := chromedp.Evaluate[bool](fmt.Sprintf(`((sel, value) => {
	const el = document.querySelector(sel);
	if (!el) throw new Error("no " + sel);
	const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
	Object.getOwnPropertyDescriptor(proto, "value").set.call(el, value);
	el.dispatchEvent(new Event("input", {bubbles: true}));
	el.dispatchEvent(new Event("change", {bubbles: true}));
	return true;
})(%s, %s)`, selJSON, valueJSON))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := set(ctx, t)
		return chromedp.Void{}, err
	}
}

// authorize enters a bearer token in the page's Authorize dialog.
func (p *docsPage) authorize(token string) {
	p.t.Helper()
	p.do("authorize",
		chromedp.Click(chromedp.CSS(`.scheme-container button.authorize`)),
		chromedp.WaitVisible(chromedp.CSS(`.modal-ux .auth-container input`)),
		setValue(`.modal-ux .auth-container input`, token),
		chromedp.Click(chromedp.CSS(`.modal-ux .auth-btn-wrapper button.authorize`)),
		chromedp.WaitVisible(chromedp.CSS(`.modal-ux .auth-btn-wrapper button.btn-done`)),
		chromedp.Click(chromedp.CSS(`.modal-ux .auth-btn-wrapper button.btn-done`)),
		chromedp.WaitNotPresent(chromedp.CSS(`.modal-ux`)),
	)
}

// execute opens an operation (tag Service, operationId Service_Method),
// puts body in its request body editor when body is not empty, presses
// Execute and returns the HTTP status and the response body the page shows.
func (p *docsPage) execute(service, method, body string) (int, map[string]any) {
	p.t.Helper()
	op := "#operations-" + service + "-" + service + "_" + method
	if !get(p, "look at "+method, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q).classList.contains("is-open")`, op))) {
		p.do("open "+method, chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
			chromedp.WaitVisible(chromedp.CSS(op+" button.execute")))
	}
	if get(p, "look at "+method, chromedp.Evaluate[bool](fmt.Sprintf(`!!document.querySelector(%q)`, op+" button.btn-clear"))) {
		p.do("clear "+method, chromedp.Click(chromedp.CSS(op+" button.btn-clear")),
			chromedp.WaitNotPresent(chromedp.CSS(op+" .live-responses-table")))
	}
	if body != "" {
		p.do("fill "+method, chromedp.WaitVisible(chromedp.CSS(op+" textarea.body-param__text")),
			setValue(op+" textarea.body-param__text", body))
	}
	p.do("execute "+method, chromedp.Click(chromedp.CSS(op+" button.execute")),
		chromedp.WaitVisible(chromedp.CSS(op+" .live-responses-table tr.response .response-col_status")))
	status := get(p, "read "+method, chromedp.Text(chromedp.CSS(op+" .live-responses-table tr.response .response-col_status")))
	text := get(p, "read "+method, chromedp.Text(chromedp.CSS(op+" .live-responses-table tr.response .response-col_description pre")))
	var code int
	if _, err := fmt.Sscanf(strings.TrimSpace(status), "%d", &code); err != nil {
		p.screenshot(method)
		p.t.Fatalf("%s: the page shows the status %q", method, status)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		p.screenshot(method)
		p.t.Fatalf("%s: the page shows a response body that is not JSON (%v): %q", method, err, text)
	}
	return code, m
}

// TestDocsPageInABrowser is what the README promises a newcomer: after
// `paymentsd dev`, /docs in a browser registers a merchant and a customer,
// logs the customer in, authorizes with the access token, shows GetMe and
// pays the merchant, all from the page (Swagger UI calling the REST routes
// under the page's own CSP). A screenshot of the page is left in the test's
// temp dir.
func TestDocsPageInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("TestDocsPageInABrowser: skipped in -short mode (it starts paymentsd dev and Chromium)")
	}
	if _, err := devserver.Find(); err != nil {
		t.Fatalf("this test needs the Temporal CLI: %v", err)
	}
	chromium(t)
	dir := t.TempDir()
	httpAddr := freeAddr(t)
	vars := map[string]string{
		"PAYMENTS_DATA_DIR":  dir,
		"PAYMENTS_HTTP_ADDR": httpAddr,
		"TEMPORAL_ADDRESS":   freeAddr(t),
		"TEMPORAL_UI_URL":    "http://" + freeAddr(t),
	}
	base := startDev(t, vars)

	p := openDocs(t, base)
	code, merchant := p.execute("AuthService", "Register",
		`{"email":"shop@example.com","password":"correct-horse-battery","role":"ROLE_MERCHANT","businessName":"Example Shop","defaultCurrency":"eur"}`)
	merchantID, _ := merchant["account"].(map[string]any)["id"].(string)
	if code != 200 || !strings.HasPrefix(merchantID, "acct_") {
		t.Fatalf("Register the merchant from the page: %d %v", code, merchant)
	}
	if code, body := p.execute("AuthService", "Register",
		`{"email":"ada@example.com","password":"analytical-engine-1843","role":"ROLE_CUSTOMER","displayName":"Ada"}`); code != 200 {
		t.Fatalf("Register the customer from the page: %d %v", code, body)
	}
	code, login := p.execute("AuthService", "Login", `{"email":"ada@example.com","password":"analytical-engine-1843"}`)
	token, _ := login["accessToken"].(string)
	if code != 200 || token == "" {
		t.Fatalf("Login from the page: %d %v", code, login)
	}

	// Before authorizing, GetMe is refused; after, it answers the account.
	if code, body := p.execute("AccountService", "GetMe", ""); code != 401 || body["code"] != "unauthenticated" {
		t.Fatalf("GetMe from the page without a token: %d %v, want 401 unauthenticated", code, body)
	}
	p.authorize(token)
	code, me := p.execute("AccountService", "GetMe", "")
	if acct, _ := me["account"].(map[string]any); code != 200 || acct["email"] != "ada@example.com" || acct["role"] != "ROLE_CUSTOMER" {
		t.Fatalf("GetMe from the page: %d %v, want 200 with Ada's account", code, me)
	}
	shown := get(p, "read GetMe's answer on the page", chromedp.Text(chromedp.CSS(`#operations-AccountService-AccountService_GetMe .live-responses-table tr.response .response-col_description pre`)))
	if !strings.Contains(shown, `"email": "ada@example.com"`) && !strings.Contains(shown, `"email":"ada@example.com"`) {
		t.Fatalf("the page shows GetMe's answer as %q", shown)
	}

	code, paid := p.execute("PaymentService", "CreatePayment",
		`{"merchantId":"`+merchantID+`","amount":"1999","currency":"eur","paymentMethod":"pm_card_visa","description":"Two books"}`)
	if payment, _ := paid["payment"].(map[string]any); code != 200 || payment["status"] != "PAYMENT_STATUS_SUCCEEDED" || payment["amountReceived"] != "1999" {
		t.Fatalf("CreatePayment from the page: %d %v, want 200 and a succeeded payment", code, paid)
	}
	if shot := p.screenshot("docs"); shot == "" {
		t.Error("no screenshot of the page")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.problems) > 0 {
		t.Errorf("the page reported problems:\n%s", strings.Join(p.problems, "\n"))
	}
}
