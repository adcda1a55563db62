// Package testenv starts the whole platform for integration tests and
// benchmarks: a real Temporal dev server, a real database, the worker with
// the sandbox gateway, and the API on a local port, as `paymentsd dev` does.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/devserver"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	"github.com/payments-platform/payments/internal/mail"
	"github.com/payments-platform/payments/internal/platform"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	"github.com/payments-platform/payments/internal/webhooks"
)

// The access tokens' issuer and audience, as paymentsd's.
const (
	tokenIssuer   = "paymentsd"
	tokenAudience = "payments-api"
)

// Options shape an environment.
type Options struct {
	// Store is the database; nil means a fresh SQLite file.
	Store *store.Store
	// PaymentWait bounds CreatePayment's wait; zero means API.md's 10 s.
	PaymentWait time.Duration
	// WrapGateway, if set, wraps the sandbox gateway (to count calls, say).
	WrapGateway func(gateway.Gateway) gateway.Gateway
	// Now is the API's clock; nil means time.Now.
	Now func() time.Time
	// DynamicConfig is passed to the Temporal dev server; nil means
	// devserver.SingleWorkerConfig, as in `paymentsd dev`.
	DynamicConfig map[string]string
	// LogWriter receives every log line of the API and worker (default:
	// errors only, to stderr). Tests use it to prove what is never logged.
	LogWriter io.Writer
	// TemporalLog, if set, receives the Temporal dev server's own output
	// (its errors), to explain a test that hangs on Temporal.
	TemporalLog io.Writer
	// DisputeResponseWindow is the respondent's time to answer a dispute;
	// zero means the default (7 days). Tests of the deadline shorten it.
	DisputeResponseWindow time.Duration
	// DisputeReminders are the reminder leads; nil means the default
	// (72 h and 24 h before the deadline).
	DisputeReminders []time.Duration
	// Mailer receives the events' emails; nil sends none (and starts no
	// email workflow).
	Mailer mail.Mailer
	// StrictWebhookURLs applies the production URL policy (https, public
	// addresses only); by default, as in dev, receivers on 127.0.0.1 over
	// http are allowed.
	StrictWebhookURLs bool
	// RequireVerifiedMerchants refuses payments to unverified merchants
	// (PAYMENTS_REQUIRE_VERIFIED_MERCHANTS).
	RequireVerifiedMerchants bool
	// ClosedAccountRetention is how long closed accounts keep their name
	// and email (the maintenance workflow's cutoff); zero means 90 days.
	ClosedAccountRetention time.Duration
}

// Env is a running platform.
type Env struct {
	// URL is the API's base URL, e.g. http://127.0.0.1:41234.
	URL           string
	Store         *store.Store
	Temporal      client.Client
	Namespace     string
	TaskQueue     string
	WebhookSecret string
	UIURL         string
	Server        *api.Server
	// SigningKey signs the API's access tokens, with the issuer and the
	// audience below: the attack tests forge tokens that differ from a
	// genuine one in one claim only.
	SigningKey                 []byte
	TokenIssuer, TokenAudience string

	// The worker, which tests may stop and start again (StopWorker,
	// StartWorker), and what starts it.
	workerMu   sync.Mutex
	worker     worker.Worker
	workerOpts platform.WorkerOptions
}

// StopWorker stops the platform's worker, as a crash or a deploy would:
// workflow and activity tasks wait on the server until StartWorker.
func (e *Env) StopWorker(t testing.TB) {
	t.Helper()
	e.workerMu.Lock()
	defer e.workerMu.Unlock()
	if e.worker == nil {
		t.Fatal("testenv: no worker runs")
	}
	e.worker.Stop()
	e.worker = nil
}

// StartWorker starts a new worker with the same options (gateway, store,
// task queue) after StopWorker.
func (e *Env) StartWorker(t testing.TB) {
	t.Helper()
	e.workerMu.Lock()
	defer e.workerMu.Unlock()
	if e.worker != nil {
		t.Fatal("testenv: the worker runs already")
	}
	w, err := platform.StartWorker(context.Background(), e.Temporal, e.workerOpts)
	if err != nil {
		t.Fatalf("start the worker: %v", err)
	}
	e.worker = w
}

func (e *Env) stopWorkerAtCleanup() {
	e.workerMu.Lock()
	defer e.workerMu.Unlock()
	if e.worker != nil {
		e.worker.Stop()
		e.worker = nil
	}
}

// Start brings the platform up and registers its shutdown with t.Cleanup.
// A missing Temporal CLI fails the test with the install hint.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if o.LogWriter != nil {
		log = slog.New(slog.NewTextHandler(o.LogWriter, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	st := o.Store
	if st == nil {
		st = storetest.NewSQLite(t)
	}
	dyn := o.DynamicConfig
	if dyn == nil {
		dyn = devserver.SingleWorkerConfig
	}
	bin, err := devserver.Find()
	if err != nil {
		t.Fatalf("integration tests need the Temporal CLI: %v", err)
	}
	srv, err := devserver.Start(ctx, devserver.Options{
		Binary: bin, Address: "127.0.0.1:0", SearchAttributes: platform.SearchAttributeTypes(), Logger: log,
		DynamicConfig: dyn, Log: o.TemporalLog,
	})
	if err != nil {
		t.Fatalf("start the Temporal dev server: %v", err)
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Stop(stopCtx)
	})
	tc, err := client.DialContext(ctx, client.Options{HostPort: srv.Address(), Namespace: "default", Logger: sdklog.NewStructuredLogger(log)})
	if err != nil {
		t.Fatalf("dial Temporal: %v", err)
	}
	t.Cleanup(tc.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	secretBytes := make([]byte, 24)
	_, _ = rand.Read(secretBytes)
	secret := "whsec_" + hex.EncodeToString(secretBytes)
	taskQueue := "payments-" + strings.ToLower(hex.EncodeToString(secretBytes[:4]))

	sbx, err := sandbox.New(sandbox.Options{State: st, PublicURL: base, WebhookSecret: secret, Logger: log})
	if err != nil {
		t.Fatalf("sandbox gateway: %v", err)
	}
	var gw gateway.Gateway = sbx
	if o.WrapGateway != nil {
		gw = o.WrapGateway(sbx)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := webhooks.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	urls := webhooks.URLPolicy{AllowInsecure: !o.StrictWebhookURLs}
	wopts := platform.WorkerOptions{
		Namespace: "default", TaskQueue: taskQueue, Store: st, Gateway: gw, Logger: log,
		WebhookURLs: urls, WebhookSealer: sealer, Mailer: o.Mailer, MailFrom: "Payments <no-reply@payments.test>",
		Relay: true, ClosedAccountRetention: o.ClosedAccountRetention,
	}
	w, err := platform.StartWorker(ctx, tc, wopts)
	if err != nil {
		t.Fatalf("start the worker: %v", err)
	}
	env := &Env{worker: w, workerOpts: wopts}
	t.Cleanup(env.stopWorkerAtCleanup)

	uiURL := "http://127.0.0.1:8233"
	server := api.New(api.Deps{
		Store:  st,
		Tokens: auth.NewTokens(key, nil, tokenIssuer, tokenAudience, 15*time.Minute, nil),
		Logger: log,
		// Cheap hashing keeps tests fast; the format and checks are the same.
		PasswordParams:        auth.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		Temporal:              tc,
		TaskQueue:             taskQueue,
		TemporalUIURL:         uiURL,
		TemporalNamespace:     "default",
		GatewayName:           sbx.Name(),
		PublicURL:             base,
		PaymentWait:           o.PaymentWait,
		DisputeResponseWindow: o.DisputeResponseWindow,
		DisputeReminders:      o.DisputeReminders,
		Now:                   o.Now,
		StripeWebhookSecret:   secret,
		WebhookURLs:           urls,
		WebhookSealer:         sealer,
		// As in paymentsd dev, every role sees workflow_url; who sees the
		// gateway reference does not depend on it.
		ShowWorkflowURLs:         true,
		Sandbox:                  sbx.Handler(),
		RequireVerifiedMerchants: o.RequireVerifiedMerchants,
		Checks: map[string]func(context.Context) error{
			"database": st.Ping,
		},
	})
	hs := httptest.NewUnstartedServer(server.Handler())
	_ = hs.Listener.Close()
	hs.Listener = ln
	hs.EnableHTTP2 = true
	hs.Start()
	t.Cleanup(hs.Close)
	env.URL, env.Store, env.Temporal, env.Namespace, env.TaskQueue = base, st, tc, "default", taskQueue
	env.WebhookSecret, env.UIURL, env.Server = secret, uiURL, server
	env.SigningKey, env.TokenIssuer, env.TokenAudience = key, tokenIssuer, tokenAudience
	return env
}

// HTTPClient is a client suited to the API (HTTP/1.1 keep-alive, many
// connections for concurrent tests).
func HTTPClient() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}
}

// String describes the environment for test logs.
func (e *Env) String() string { return fmt.Sprintf("api=%s taskqueue=%s", e.URL, e.TaskQueue) }
