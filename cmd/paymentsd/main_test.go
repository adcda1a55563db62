package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/testcert"

	"github.com/payments-platform/payments/ent/account"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/config"
	"github.com/payments-platform/payments/internal/devserver"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	"github.com/payments-platform/payments/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	p, err := devserver.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

type cmdResult struct {
	code           int
	stdout, stderr string
}

// runCmd runs a command in-process with exactly the given environment.
func runCmd(ctx context.Context, vars map[string]string, stdin string, args ...string) cmdResult {
	var out, errb testenv.SyncBuffer
	code := run(ctx, args, env{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errb,
		getenv: func(k string) string { return vars[k] },
	})
	return cmdResult{code, out.String(), errb.String()}
}

// waitFor polls fn until it is true or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getStatus(url string) int {
	c := http.Client{Timeout: 3 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

func postJSON(t *testing.T, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
	return res.StatusCode, m
}

// TestDevStack starts `paymentsd dev` with its own Temporal dev server, waits
// for /readyz to turn 200, walks the README's flow, and stops it cleanly.
func TestDevStack(t *testing.T) {
	if _, err := devserver.Find(); err != nil {
		t.Fatalf("this test needs the Temporal CLI: %v", err)
	}
	dir := t.TempDir()
	httpAddr, temporalAddr, uiAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	vars := map[string]string{
		"PAYMENTS_DATA_DIR":  dir,
		"PAYMENTS_HTTP_ADDR": httpAddr,
		"TEMPORAL_ADDRESS":   temporalAddr,
		"TEMPORAL_UI_URL":    "http://" + uiAddr,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan cmdResult, 1)
	go func() { done <- runCmd(ctx, vars, "", "dev") }()

	base := "http://" + httpAddr
	deadline := time.Now().Add(90 * time.Second)
	for getStatus(base+"/readyz") != http.StatusOK {
		select {
		case r := <-done:
			t.Fatalf("paymentsd dev exited early with %d:\n%s", r.code, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not turn 200 within 90 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := getStatus(base + "/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz = %d", got)
	}
	if got := getStatus("http://" + uiAddr + "/"); got != http.StatusOK {
		t.Errorf("Temporal UI at %s answered %d", uiAddr, got)
	}

	code, body := postJSON(t, base+"/payments.v1.AuthService/Register", "",
		`{"email":"shop@example.com","password":"correct-horse-battery","role":"ROLE_MERCHANT","businessName":"Shop"}`)
	if code != http.StatusOK {
		t.Fatalf("Register: %d %v", code, body)
	}
	code, body = postJSON(t, base+"/payments.v1.AuthService/Login", "", `{"email":"shop@example.com","password":"correct-horse-battery"}`)
	if code != http.StatusOK {
		t.Fatalf("Login: %d %v", code, body)
	}
	token, _ := body["accessToken"].(string)
	code, body = postJSON(t, base+"/payments.v1.AccountService/GetMe", token, `{}`)
	if code != http.StatusOK {
		t.Fatalf("GetMe: %d %v", code, body)
	}
	acct, _ := body["account"].(map[string]any)
	if acct["email"] != "shop@example.com" || acct["role"] != "ROLE_MERCHANT" {
		t.Fatalf("GetMe account = %v", body)
	}

	// In dev every role gets the payment's link into the Temporal UI.
	cID, cToken := registerAndLogin(t, base, "ROLE_CUSTOMER")
	merchantID, _ := acct["id"].(string)
	id := savePayment(t, "sqlite://"+filepath.ToSlash(filepath.Join(dir, "payments.db")), merchantID, cID)
	wantURL := "http://" + uiAddr + "/namespaces/default/workflows/payment%2F" + id
	for who, tok := range map[string]string{"merchant": token, "customer": cToken} {
		if got := paymentAs(t, base, tok, id)["workflowUrl"]; got != wantURL {
			t.Errorf("dev: the %s sees workflow_url %v, want %s", who, got, wantURL)
		}
	}

	cancel()
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("paymentsd dev exited with %d:\n%s", r.code, r.stderr)
		}
		for _, want := range []string{"API:          http://" + httpAddr, "Temporal UI:  http://" + uiAddr, "Temporal:     " + temporalAddr} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("banner lacks %q:\n%s", want, r.stdout)
			}
		}
	case <-time.After(60 * time.Second):
		t.Fatal("paymentsd dev did not stop within 60 s of cancellation")
	}
	waitFor(t, 10*time.Second, "the Temporal dev server to stop", func() bool {
		c, err := net.DialTimeout("tcp", temporalAddr, 200*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	for _, f := range []string{"payments.db", "temporal.db", "jwt-signing-key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("state file %s: %v", f, err)
		}
	}
}

// randomKey is a secret as `openssl rand -base64 32` makes one.
func randomKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// sandboxVars are what serve and worker need to run the sandbox gateway.
var sandboxVars = map[string]string{"PAYMENTS_GATEWAY": "sandbox", "PAYMENTS_ALLOW_SANDBOX": "true"}

func TestStartErrorsNameTheVariable(t *testing.T) {
	ctx := context.Background()
	key, whsec := randomKey(t), "whsec_"+randomKey(t)
	cases := []struct {
		name  string
		args  []string
		vars  map[string]string
		code  int
		wants []string
	}{
		{"no command", nil, nil, 2, []string{"usage"}},
		{"unknown command", []string{"launch"}, nil, 2, []string{"unknown command"}},
		{"serve without signing key", []string{"serve"}, map[string]string{"DATABASE_URL": "mysql://root@tcp(127.0.0.1:3306)/test"}, 1, []string{"JWT_SIGNING_KEY"}},
		{"serve without database", []string{"serve"}, map[string]string{"JWT_SIGNING_KEY": key}, 1, []string{"DATABASE_URL"}},
		{"malformed database url", []string{"serve"}, map[string]string{"JWT_SIGNING_KEY": key, "DATABASE_URL": "postgres://x"}, 1, []string{"DATABASE_URL", "unsupported scheme"}},
		{"malformed mysql dsn", []string{"migrate"}, map[string]string{"DATABASE_URL": "mysql://root@127.0.0.1/x"}, 1, []string{"DATABASE_URL"}},
		{"unreachable database", []string{"serve"}, with(sandboxVars, "JWT_SIGNING_KEY", key, "STRIPE_WEBHOOK_SECRET", whsec, "DATABASE_URL", "mysql://root:hunter2@tcp(127.0.0.1:1)/x"), 1, []string{"DATABASE_URL", "cannot reach"}},
		{"serve without webhook secret", []string{"serve"}, with(sandboxVars, "JWT_SIGNING_KEY", key, "DATABASE_URL", "sqlite:///tmp/x.db"), 1, []string{"STRIPE_WEBHOOK_SECRET"}},
		{"bad http address", []string{"serve"}, with(sandboxVars, "JWT_SIGNING_KEY", key, "STRIPE_WEBHOOK_SECRET", whsec, "DATABASE_URL", "sqlite:///tmp/x.db", "PAYMENTS_HTTP_ADDR", "nope"), 1, []string{"PAYMENTS_HTTP_ADDR"}},
		{"stray argument", []string{"migrate", "now"}, nil, 2, []string{"unexpected arguments"}},
		{"pool of no connections", []string{"migrate"}, map[string]string{"DATABASE_URL": "sqlite:///tmp/x.db", "DATABASE_MAX_OPEN_CONNS": "0"}, 1, []string{"DATABASE_MAX_OPEN_CONNS"}},
		{"pool lifetime not a duration", []string{"worker"}, with(sandboxVars, "STRIPE_WEBHOOK_SECRET", whsec, "DATABASE_URL", "sqlite:///tmp/x.db", "DATABASE_CONN_MAX_LIFETIME", "forever"), 1, []string{"DATABASE_CONN_MAX_LIFETIME"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{"PAYMENTS_DATA_DIR": t.TempDir()}
			for k, v := range tc.vars {
				vars[k] = v
			}
			r := runCmd(ctx, vars, "", tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			for _, w := range tc.wants {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("stderr leaks the database password:\n%s", r.stderr)
			}
		})
	}
}

func TestMigrateAndAdminCreate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "p.db"))
	vars := map[string]string{"DATABASE_URL": dbURL, "PAYMENTS_DATA_DIR": dir}

	if r := runCmd(ctx, vars, "", "migrate"); r.code != 0 || !strings.Contains(r.stdout, "up to date") {
		t.Fatalf("migrate: %+v", r)
	}
	if r := runCmd(ctx, vars, "", "migrate"); r.code != 0 {
		t.Fatalf("second migrate: %+v", r)
	}
	r := runCmd(ctx, vars, "a-very-long-admin-password\n", "admin", "create", "--email", "Root@Example.com", "--password-stdin")
	if r.code != 0 || !strings.Contains(r.stdout, "created admin acct_") {
		t.Fatalf("admin create: %+v", r)
	}

	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	acct, err := st.AccountByEmail(ctx, "root@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if acct.Role != account.RoleAdmin {
		t.Fatalf("role %s", acct.Role)
	}
	if strings.Contains(acct.PasswordHash, "a-very-long-admin-password") || !strings.HasPrefix(acct.PasswordHash, "$argon2id$") {
		t.Fatalf("password stored as %q", acct.PasswordHash)
	}

	bad := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"duplicate", "a-very-long-admin-password\n", []string{"admin", "create", "--email", "root@example.com", "--password-stdin"}, 1, "already exists"},
		{"short password", "short\n", []string{"admin", "create", "--email", "b@example.com", "--password-stdin"}, 2, "at least 12"},
		{"no password-stdin", "", []string{"admin", "create", "--email", "b@example.com"}, 2, "--password-stdin"},
		{"bad email", "a-very-long-admin-password\n", []string{"admin", "create", "--email", "nope", "--password-stdin"}, 2, "--email"},
		{"no subcommand", "", []string{"admin"}, 2, "admin create"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(ctx, vars, tc.stdin, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("got %d %q, want %d containing %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
	n, err := st.Client.Account.Query().Count(ctx)
	if err != nil || n != 1 {
		t.Fatalf("accounts after bad admin creates: %d %v", n, err)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	p := testcert.New(t, "paymentsd test")
	certFile, keyFile = p.WriteFiles(t, dir)
	return certFile, keyFile, p.Pool
}

// readCert reads the PEM certificate in file.
func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM block", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// startServe runs `paymentsd serve` against a SQLite file and a Temporal
// address where nothing listens, and returns its base URL and DATABASE_URL.
func startServe(t *testing.T, extra map[string]string, scheme string, client *http.Client) (base, dbURL string) {
	t.Helper()
	dir := t.TempDir()
	dbURL = "sqlite://" + filepath.ToSlash(filepath.Join(dir, "p.db"))
	ctx, cancel := context.WithCancel(context.Background())
	if r := runCmd(ctx, map[string]string{"DATABASE_URL": dbURL}, "", "migrate"); r.code != 0 {
		t.Fatalf("migrate: %+v", r)
	}
	addr := freeAddr(t)
	vars := with(sandboxVars,
		"DATABASE_URL", dbURL,
		"JWT_SIGNING_KEY", randomKey(t),
		"STRIPE_WEBHOOK_SECRET", "whsec_"+randomKey(t),
		"PAYMENTS_HTTP_ADDR", addr,
		"PAYMENTS_ADMIN_ADDR", freeAddr(t),
		"TEMPORAL_ADDRESS", freeAddr(t), // nothing listens here
		"PAYMENTS_DATA_DIR", dir,
	)
	for k, v := range extra {
		vars[k] = v
	}
	done := make(chan cmdResult, 1)
	go func() { done <- runCmd(ctx, vars, "", "serve") }()
	t.Cleanup(func() {
		cancel()
		select {
		case r := <-done:
			if r.code != 0 {
				t.Errorf("serve exited with %d:\n%s", r.code, r.stderr)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30 s")
		}
	})
	base = scheme + "://" + addr
	waitFor(t, 20*time.Second, "serve to listen", func() bool {
		select {
		case r := <-done:
			t.Fatalf("serve exited early with %d:\n%s", r.code, r.stderr)
		default:
		}
		res, err := client.Get(base + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return base, dbURL
}

func TestServeReadinessWithoutTemporal(t *testing.T) {
	base, _ := startServe(t, nil, "http", http.DefaultClient)
	if code, checks := readiness(t, base+"/readyz"); code != http.StatusServiceUnavailable || checks["temporal"] != "unavailable" || checks["database"] != "ok" {
		t.Fatalf("/readyz = %d %v, want 503 with temporal unavailable and database ok", code, checks)
	}
}

func TestServeSpeaksH2CAndHTTP1(t *testing.T) {
	base, _ := startServe(t, nil, "http", http.DefaultClient)
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: protocols}, Timeout: 5 * time.Second}
	res, err := h2c.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("h2c request answered over %s", res.Proto)
	}
	res, err = http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 1 {
		t.Fatalf("HTTP/1.1 request answered over %s", res.Proto)
	}
}

// TestServeTLS serves HTTPS from PAYMENTS_TLS_CERT and PAYMENTS_TLS_KEY:
// HTTP/2 through ALPN, HSTS on the answers, and a certificate replaced on
// disk served from the next connection on, without a restart.
func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	newCert, newKey, _ := selfSigned(t, t.TempDir())
	renewed := readCert(t, newCert)
	pool.AddCert(renewed)
	// Each request on a new connection, so each sees the certificate of
	// the moment.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DisableKeepAlives: true,
	}}
	base, _ := startServe(t, map[string]string{"PAYMENTS_TLS_CERT": certFile, "PAYMENTS_TLS_KEY": keyFile}, "https", client)
	res, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 || res.TLS == nil {
		t.Fatalf("TLS /healthz: %d over %s (tls=%v)", res.StatusCode, res.Proto, res.TLS != nil)
	}
	if hsts := res.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Fatalf("TLS /healthz without HSTS: %v", res.Header)
	}
	if res.TLS.PeerCertificates[0].Equal(renewed) {
		t.Fatal("the renewed certificate was served before it was installed")
	}

	// Renewed as certificate tools do: each file replaced by a rename.
	for src, dst := range map[string]string{newCert: certFile, newKey: keyFile} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(dst+".new", dst); err != nil {
			t.Fatal(err)
		}
	}
	res, err = client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if !res.TLS.PeerCertificates[0].Equal(renewed) {
		t.Fatalf("after the renewal on disk a new connection got %s, want the renewed certificate", res.TLS.PeerCertificates[0].Subject)
	}
	// Plain HTTP to the TLS port is refused.
	if plain, err := http.Get(strings.Replace(base, "https", "http", 1) + "/healthz"); err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP got a 200 from the TLS port")
		}
	}
}

func TestWorkerFailsClearlyWithoutTemporal(t *testing.T) {
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "p.db"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := runCmd(ctx, with(sandboxVars, "DATABASE_URL", dbURL, "TEMPORAL_ADDRESS", freeAddr(t), "PAYMENTS_DATA_DIR", dir,
		"JWT_SIGNING_KEY", randomKey(t), "STRIPE_WEBHOOK_SECRET", "whsec_"+randomKey(t)), "", "worker")
	if r.code != 1 || !strings.Contains(r.stderr, "TEMPORAL_ADDRESS") {
		t.Fatalf("worker without Temporal: %d %q", r.code, r.stderr)
	}
}

// TestDevUsesARunningTemporal checks that `paymentsd dev` uses a Temporal
// server already listening at TEMPORAL_ADDRESS, and leaves it running.
func TestDevUsesARunningTemporal(t *testing.T) {
	ctx := context.Background()
	external, err := devserver.Start(ctx, devserver.Options{Address: "127.0.0.1:0", DynamicConfig: devserver.SingleWorkerConfig})
	if err != nil {
		t.Fatalf("start a Temporal dev server: %v", err)
	}
	t.Cleanup(func() { _ = external.Stop(context.Background()) })

	httpAddr := freeAddr(t)
	vars := map[string]string{
		"PAYMENTS_DATA_DIR":  t.TempDir(),
		"PAYMENTS_HTTP_ADDR": httpAddr,
		"TEMPORAL_ADDRESS":   external.Address(),
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan cmdResult, 1)
	go func() { done <- runCmd(runCtx, vars, "", "dev") }()
	waitFor(t, 60*time.Second, "/readyz to turn 200", func() bool {
		select {
		case r := <-done:
			t.Fatalf("paymentsd dev exited early with %d:\n%s", r.code, r.stderr)
		default:
		}
		return getStatus("http://"+httpAddr+"/readyz") == http.StatusOK
	})
	cancel()
	r := <-done
	if r.code != 0 {
		t.Fatalf("paymentsd dev exited with %d:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "using the Temporal server already listening") || strings.Contains(r.stderr, "starting the Temporal dev server") {
		t.Fatalf("dev did not reuse the running server:\n%s", r.stderr)
	}
	if !devserver.Listening(ctx, external.Address()) {
		t.Fatal("stopping paymentsd dev stopped a Temporal server it did not start")
	}
}

// with returns a copy of base with the name, value pairs kv added.
func with(base map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestServeAndWorkerRefuseAnImplicitGateway: outside dev the gateway is
// chosen explicitly, the sandbox only with consent, and the signing secrets
// are never the repository's examples. Each refusal is exit code 1 with a
// message naming the variable, before anything listens or dials.
func TestServeAndWorkerRefuseAnImplicitGateway(t *testing.T) {
	ctx := context.Background()
	for _, cmd := range []string{"serve", "worker"} {
		valid := func(t *testing.T) map[string]string {
			dir := t.TempDir()
			return with(sandboxVars,
				"DATABASE_URL", "sqlite://"+filepath.ToSlash(filepath.Join(dir, "p.db")),
				"PAYMENTS_DATA_DIR", dir,
				"JWT_SIGNING_KEY", randomKey(t),
				"STRIPE_WEBHOOK_SECRET", "whsec_"+randomKey(t),
				"PAYMENTS_HTTP_ADDR", freeAddr(t),
				"TEMPORAL_ADDRESS", freeAddr(t),
			)
		}
		cases := []struct {
			name  string
			set   []string
			wants []string
		}{
			{"no gateway", []string{"PAYMENTS_GATEWAY", ""}, []string{"PAYMENTS_GATEWAY: required"}},
			{"sandbox without consent", []string{"PAYMENTS_ALLOW_SANDBOX", ""}, []string{"PAYMENTS_GATEWAY", "PAYMENTS_ALLOW_SANDBOX=true"}},
			{"sandbox refused", []string{"PAYMENTS_ALLOW_SANDBOX", "false"}, []string{"PAYMENTS_ALLOW_SANDBOX=true"}},
			{"unknown gateway", []string{"PAYMENTS_GATEWAY", "adyen"}, []string{"PAYMENTS_GATEWAY", "adyen"}},
			{"stripe without its key", []string{"PAYMENTS_GATEWAY", "stripe"}, []string{"STRIPE_SECRET_KEY"}},
			{"example webhook secret", []string{"STRIPE_WEBHOOK_SECRET", "whsec_REPLACE-ME-with-openssl-rand-base64-32"}, []string{"STRIPE_WEBHOOK_SECRET", "openssl rand -base64 32"}},
		}
		if cmd == "serve" {
			cases = append(cases, struct {
				name  string
				set   []string
				wants []string
			}{"example signing key", []string{"JWT_SIGNING_KEY", "REPLACE-ME-with-openssl-rand-base64-32"}, []string{"JWT_SIGNING_KEY", "openssl rand -base64 32"}})
		}
		for _, tc := range cases {
			t.Run(cmd+" "+tc.name, func(t *testing.T) {
				vars := with(valid(t), tc.set...)
				r := runCmd(ctx, vars, "", cmd)
				if r.code != 1 {
					t.Fatalf("exit code %d, want 1; stderr:\n%s", r.code, r.stderr)
				}
				for _, w := range tc.wants {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
					}
				}
				if strings.Contains(r.stderr, "REPLACE-ME") {
					t.Errorf("stderr repeats the secret:\n%s", r.stderr)
				}
				// Refused by the configuration, before the API listened
				// or the worker dialled Temporal.
				if strings.Contains(r.stderr, "serving the API") || strings.Contains(r.stderr, "TEMPORAL_ADDRESS") {
					t.Errorf("%s went past its configuration:\n%s", cmd, r.stderr)
				}
			})
		}
	}
}

// TestOpenStoreAppliesThePool: DATABASE_MAX_OPEN_CONNS reaches the
// connection pool of the store the commands open (and its default does).
func TestOpenStoreAppliesThePool(t *testing.T) {
	ctx := context.Background()
	urls := map[string]string{"sqlite": "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "p.db"))}
	if dsn := strings.TrimSpace(os.Getenv(storetest.MySQLDSNEnv)); dsn != "" {
		urls["mysql"] = "mysql://" + strings.TrimPrefix(dsn, "mysql://")
	}
	for name, dbURL := range urls {
		for _, tc := range []struct {
			set  string
			want int
		}{{"", config.DefaultDBMaxOpenConns}, {"9", 9}} {
			t.Run(fmt.Sprintf("%s DATABASE_MAX_OPEN_CONNS=%q", name, tc.set), func(t *testing.T) {
				env := map[string]string{"DATABASE_URL": dbURL, "DATABASE_MAX_OPEN_CONNS": tc.set, "DATABASE_MAX_IDLE_CONNS": "3"}
				cfg, err := config.FromEnv(config.ModeMigrate, func(k string) string { return env[k] })
				if err != nil {
					t.Fatal(err)
				}
				st, err := openStore(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				if got := st.PoolStats().MaxOpenConnections; got != tc.want {
					t.Fatalf("MaxOpenConnections = %d, want %d", got, tc.want)
				}
			})
		}
	}
}

// savePayment stores a payment of merchant and customer in the database at
// dbURL, as its workflow would have.
func savePayment(t *testing.T, dbURL, merchantID, customerID string) string {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := ids.New(ids.Payment)
	now := time.Now().UTC()
	if _, err := st.SavePayment(ctx, store.PaymentRecord{
		ID: id, MerchantID: merchantID, CustomerID: customerID, Amount: 1200, Currency: "USD",
		Status: entpayment.StatusSucceeded, AmountReceived: 1200, PaymentMethod: "pm_card_visa",
		Gateway: "sandbox", GatewayReference: "pi_sandbox_cmdtest", WorkflowID: "payment/" + id,
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}, nil); err != nil {
		t.Fatal(err)
	}
	return id
}

// registerAndLogin creates an account over the API and returns its id and
// access token.
func registerAndLogin(t *testing.T, base, role string) (id, token string) {
	t.Helper()
	email := fmt.Sprintf("%s-%d@example.com", strings.ToLower(strings.TrimPrefix(role, "ROLE_")), time.Now().UnixNano())
	code, body := postJSON(t, base+"/payments.v1.AuthService/Register", "",
		fmt.Sprintf(`{"email":%q,"password":"correct-horse-battery","role":%q,"businessName":"Shop"}`, email, role))
	if code != http.StatusOK {
		t.Fatalf("Register: %d %v", code, body)
	}
	code, body = postJSON(t, base+"/payments.v1.AuthService/Login", "", fmt.Sprintf(`{"email":%q,"password":"correct-horse-battery"}`, email))
	if code != http.StatusOK {
		t.Fatalf("Login: %d %v", code, body)
	}
	acct, _ := body["account"].(map[string]any)
	id, _ = acct["id"].(string)
	token, _ = body["accessToken"].(string)
	return id, token
}

// paymentAs reads a payment with GetPayment as the holder of token.
func paymentAs(t *testing.T, base, token, id string) map[string]any {
	t.Helper()
	code, body := postJSON(t, base+"/payments.v1.PaymentService/GetPayment", token, fmt.Sprintf(`{"id":%q}`, id))
	if code != http.StatusOK {
		t.Fatalf("GetPayment: %d %v", code, body)
	}
	p, _ := body["payment"].(map[string]any)
	return p
}

// TestServeShowsWorkflowURLsToAdminsOnly: outside dev neither the merchant
// nor the customer gets workflow_url; the merchant gets the gateway
// reference, the customer not. (TestDevStack checks that dev shows the link.)
func TestServeShowsWorkflowURLsToAdminsOnly(t *testing.T) {
	base, dbURL := startServe(t, nil, "http", http.DefaultClient)
	mID, mToken := registerAndLogin(t, base, "ROLE_MERCHANT")
	cID, cToken := registerAndLogin(t, base, "ROLE_CUSTOMER")
	id := savePayment(t, dbURL, mID, cID)
	m, c := paymentAs(t, base, mToken, id), paymentAs(t, base, cToken, id)
	str := func(v any) string { s, _ := v.(string); return s }
	if m["id"] != id || c["id"] != id {
		t.Fatalf("GetPayment answered %v and %v", m, c)
	}
	if str(m["workflowUrl"]) != "" || str(c["workflowUrl"]) != "" {
		t.Fatalf("serve shows workflow_url: merchant %v, customer %v", m["workflowUrl"], c["workflowUrl"])
	}
	if str(m["gatewayReference"]) != "pi_sandbox_cmdtest" || str(c["gatewayReference"]) != "" {
		t.Fatalf("gateway_reference: merchant %v, customer %v", m["gatewayReference"], c["gatewayReference"])
	}
}

// readiness reads a /readyz: its status code and checks.
func readiness(t *testing.T, url string) (int, map[string]string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body.Checks
}

// TestWorkerAnswersProbesOnItsAdminAddress: a worker has no API port, so
// PAYMENTS_ADMIN_ADDR is where an orchestrator probes it: /healthz 200,
// /readyz 200 with the database and Temporal ok, 503 naming Temporal when
// the server goes away; the address closes when the worker stops.
func TestWorkerAnswersProbesOnItsAdminAddress(t *testing.T) {
	ctx := context.Background()
	temporal, err := devserver.Start(ctx, devserver.Options{Address: "127.0.0.1:0", DynamicConfig: devserver.SingleWorkerConfig})
	if err != nil {
		t.Fatalf("start a Temporal dev server: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = temporal.Stop(context.Background())
		}
	})
	dir := t.TempDir()
	admin := "http://" + freeAddr(t)
	vars := with(sandboxVars,
		"DATABASE_URL", "sqlite://"+filepath.ToSlash(filepath.Join(dir, "p.db")),
		"PAYMENTS_DATA_DIR", dir,
		"JWT_SIGNING_KEY", randomKey(t),
		"STRIPE_WEBHOOK_SECRET", "whsec_"+randomKey(t),
		"TEMPORAL_ADDRESS", temporal.Address(),
		"PAYMENTS_ADMIN_ADDR", strings.TrimPrefix(admin, "http://"),
	)
	if r := runCmd(ctx, vars, "", "migrate"); r.code != 0 {
		t.Fatalf("migrate: %+v", r)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan cmdResult, 1)
	go func() { done <- runCmd(runCtx, vars, "", "worker") }()
	waitFor(t, 60*time.Second, "the worker's /healthz", func() bool {
		select {
		case r := <-done:
			t.Fatalf("paymentsd worker exited early with %d:\n%s", r.code, r.stderr)
		default:
		}
		return getStatus(admin+"/healthz") == http.StatusOK
	})
	if code, checks := readiness(t, admin+"/readyz"); code != http.StatusOK || checks["database"] != "ok" || checks["temporal"] != "ok" {
		t.Fatalf("worker /readyz = %d %v, want 200 with the database and Temporal ok", code, checks)
	}

	if err := temporal.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	waitFor(t, 30*time.Second, "the worker's /readyz to say Temporal is gone", func() bool {
		code, checks := readiness(t, admin+"/readyz")
		return code == http.StatusServiceUnavailable && checks["temporal"] == "unavailable" && checks["database"] == "ok"
	})
	if got := getStatus(admin + "/healthz"); got != http.StatusOK {
		t.Fatalf("worker /healthz = %d while Temporal is down, want 200 (alive, not ready)", got)
	}

	cancel()
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("paymentsd worker exited with %d:\n%s", r.code, r.stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("paymentsd worker did not stop within 60 s of cancellation")
	}
	if got := getStatus(admin + "/healthz"); got != 0 {
		t.Fatalf("the admin address still answers %d after the worker stopped", got)
	}
}

// TestServeAnswersProbesOnItsAdminAddress: serve answers the same probes on
// PAYMENTS_ADMIN_ADDR as on its API port, and a busy admin address is a
// start error naming the variable.
func TestServeAnswersProbesOnItsAdminAddress(t *testing.T) {
	admin := freeAddr(t)
	startServe(t, map[string]string{"PAYMENTS_ADMIN_ADDR": admin}, "http", http.DefaultClient)
	if got := getStatus("http://" + admin + "/healthz"); got != http.StatusOK {
		t.Fatalf("serve's admin /healthz = %d", got)
	}
	// startServe points Temporal where nothing listens.
	if code, checks := readiness(t, "http://"+admin+"/readyz"); code != http.StatusServiceUnavailable || checks["temporal"] != "unavailable" || checks["database"] != "ok" {
		t.Fatalf("serve's admin /readyz = %d %v, want 503 with temporal unavailable and database ok", code, checks)
	}

	// The container health check: 0 for a 2xx, 1 naming what it got.
	if r := runCmd(context.Background(), nil, "", "probe", "http://"+admin+"/healthz"); r.code != 0 || !strings.Contains(r.stdout, "200 OK") {
		t.Fatalf("probe /healthz: %+v, want 0 and 200 OK", r)
	}
	if r := runCmd(context.Background(), nil, "", "probe", "http://"+admin+"/readyz"); r.code != 1 || !strings.Contains(r.stderr, "503") || !strings.Contains(r.stderr, `"temporal":"unavailable"`) {
		t.Fatalf("probe /readyz while Temporal is away: %+v, want 1 naming 503 and the check", r)
	}
	if r := runCmd(context.Background(), nil, "", "probe", "127.0.0.1:9090/readyz"); r.code != 2 {
		t.Fatalf("probe without a scheme: %+v, want the usage error 2", r)
	}

	dir := t.TempDir()
	r := runCmd(context.Background(), with(sandboxVars,
		"DATABASE_URL", "sqlite://"+filepath.ToSlash(filepath.Join(dir, "p.db")),
		"PAYMENTS_DATA_DIR", dir,
		"JWT_SIGNING_KEY", randomKey(t),
		"STRIPE_WEBHOOK_SECRET", "whsec_"+randomKey(t),
		"PAYMENTS_HTTP_ADDR", freeAddr(t),
		"TEMPORAL_ADDRESS", freeAddr(t),
		"PAYMENTS_ADMIN_ADDR", admin, // taken by the serve above
	), "", "serve")
	if r.code != 1 || !strings.Contains(r.stderr, "PAYMENTS_ADMIN_ADDR") {
		t.Fatalf("serve on a busy admin address: %d %q, want 1 naming PAYMENTS_ADMIN_ADDR", r.code, r.stderr)
	}
}

// TestTemporalAPIKey: with TEMPORAL_API_KEY the client sends it (Temporal
// Cloud); without, no credentials.
func TestTemporalAPIKey(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if o := temporalOptions(config.Config{TemporalAddress: "x:7233"}, log); o.Credentials != nil {
		t.Fatalf("credentials without TEMPORAL_API_KEY: %v", o.Credentials)
	}
	if o := temporalOptions(config.Config{TemporalAddress: "x:7233", TemporalAPIKey: "key"}, log); o.Credentials == nil {
		t.Fatal("TEMPORAL_API_KEY set, but the client has no credentials")
	}
}

// startDev runs `paymentsd dev` with vars until the test ends and returns
// the API's base URL once /readyz answers 200.
func startDev(t *testing.T, vars map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan cmdResult, 1)
	go func() { done <- runCmd(ctx, vars, "", "dev") }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("paymentsd dev did not stop within 60 s of cancellation")
		}
	})
	base := "http://" + vars["PAYMENTS_HTTP_ADDR"]
	waitFor(t, 90*time.Second, "paymentsd dev's /readyz", func() bool {
		select {
		case r := <-done:
			t.Fatalf("paymentsd dev exited early with %d:\n%s", r.code, r.stderr)
		default:
		}
		return getStatus(base+"/readyz") == http.StatusOK
	})
	return base
}
