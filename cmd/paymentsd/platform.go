package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/config"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	stripegw "github.com/payments-platform/payments/internal/gateway/stripe"
	"github.com/payments-platform/payments/internal/mail"
	"github.com/payments-platform/payments/internal/platform"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/webhooks"
)

// drainTimeout bounds how long shutdown waits for in-flight requests.
const drainTimeout = 20 * time.Second

// openStore opens the database with the pool limits of DATABASE_MAX_* and
// DATABASE_CONN_* (config.Validate has refused bad values).
func openStore(ctx context.Context, cfg config.Config) (*store.Store, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	st.ConfigurePool(store.PoolOptions{
		MaxOpenConns:    cfg.DBMaxOpenConns,
		MaxIdleConns:    cfg.DBMaxIdleConns,
		ConnMaxLifetime: cfg.DBConnMaxLifetime,
		ConnMaxIdleTime: cfg.DBConnMaxIdleTime,
	})
	return st, nil
}

// temporalLogger keeps the SDK's chatter at warnings and above.
func temporalLogger(log *slog.Logger) sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(levelFloor{log.Handler(), slog.LevelWarn}))
}

// levelFloor drops records below a level before they reach h.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (l levelFloor) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.Handler.Enabled(ctx, lv)
}

func (l levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{l.Handler.WithAttrs(a), l.min}
}

func (l levelFloor) WithGroup(n string) slog.Handler {
	return levelFloor{l.Handler.WithGroup(n), l.min}
}

func temporalOptions(cfg config.Config, log *slog.Logger) client.Options {
	o := client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    temporalLogger(log),
	}
	if cfg.TemporalAPIKey != "" {
		// TLS is on with an API key (the SDK turns it on unless told not to).
		o.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	return o
}

// dialTemporal connects now, failing with a message that names the variable.
func dialTemporal(ctx context.Context, cfg config.Config, log *slog.Logger) (client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, temporalOptions(cfg, log))
	if err != nil {
		return nil, fmt.Errorf("TEMPORAL_ADDRESS: cannot reach Temporal at %s (namespace %q): %w", cfg.TemporalAddress, cfg.TemporalNamespace, err)
	}
	return c, nil
}

// newGateway builds the gateway PAYMENTS_GATEWAY names (config.Validate has
// refused anything else).
func newGateway(cfg config.Config, st *store.Store, log *slog.Logger) (gateway.Gateway, error) {
	if cfg.Gateway == config.GatewayStripe {
		return stripegw.New(stripegw.Options{SecretKey: cfg.StripeSecretKey, APIBase: cfg.StripeAPIBase, Logger: log}), nil
	}
	sb, err := newSandbox(cfg, st, log)
	if err != nil {
		return nil, err
	}
	faults := cfg.SandboxFaults
	if faults.Active() {
		log.Warn("the sandbox gateway injects faults (PAYMENTS_SANDBOX_FAULTS): calls fail on purpose",
			"error_before", faults.ErrorBefore, "timeout_after", faults.TimeoutAfter)
	}
	return sandbox.WithFaults(sb, faults, log), nil
}

// newSandbox builds the sandbox gateway on the platform's database: the API
// (3-D Secure pages) and every worker share its state, and so behave as one
// provider.
func newSandbox(cfg config.Config, st *store.Store, log *slog.Logger) (*sandbox.Sandbox, error) {
	return sandbox.New(sandbox.Options{State: st, PublicURL: cfg.PublicURL, WebhookSecret: cfg.StripeWebhookSecret, Logger: log})
}

// runTemporalWorker dials Temporal and starts the worker; stop stops the
// worker, then closes the client.
func runTemporalWorker(ctx context.Context, cfg config.Config, st *store.Store, log *slog.Logger) (client.Client, func(), error) {
	tc, err := dialTemporal(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	w, err := startWorker(ctx, tc, cfg, st, log)
	if err != nil {
		tc.Close()
		return nil, nil, err
	}
	return tc, func() { w.Stop(); tc.Close() }, nil
}

// startWorker runs the platform's worker with the configured gateway.
func startWorker(ctx context.Context, c client.Client, cfg config.Config, st *store.Store, log *slog.Logger) (worker.Worker, error) {
	gw, err := newGateway(cfg, st, log)
	if err != nil {
		return nil, err
	}
	sealer, err := webhookSealer(cfg)
	if err != nil {
		return nil, err
	}
	mailer, err := mail.New(cfg.SMTPURL, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return platform.StartWorker(ctx, c, platform.WorkerOptions{
		Namespace: cfg.TemporalNamespace, TaskQueue: cfg.TemporalTaskQueue,
		Store: st, Gateway: gw, Logger: log, Schedules: true,
		WebhookURLs: webhooks.URLPolicy{AllowInsecure: cfg.WebhookAllowInsecure}, WebhookSealer: sealer,
		Mailer: mailer, MailFrom: cfg.MailFrom, Relay: true,
		ClosedAccountRetention: cfg.ClosedAccountRetention,
		StopTimeout:            cfg.WorkerStopTimeout,
	})
}

// newAPI builds the public handler with its readiness checks.
// webhookSealer seals and opens webhook endpoints' signing secrets: the
// API seals them, the worker opens them, both with this key (derived from
// the JWT signing key).
func webhookSealer(cfg config.Config) (*webhooks.Sealer, error) {
	return webhooks.NewSealer(cfg.JWTSigningKey)
}

func newAPI(cfg config.Config, st *store.Store, tc client.Client, log *slog.Logger) (*api.Server, error) {
	sealer, err := webhookSealer(cfg)
	if err != nil {
		return nil, err
	}
	var sbx http.Handler
	if cfg.Gateway == config.GatewaySandbox {
		// It fails only without a store, and st is the one opened at start-up.
		if sb, err := newSandbox(cfg, st, log); err != nil {
			log.Error("the sandbox's 3-D Secure pages are not served", "error", err)
		} else {
			sbx = sb.Handler()
		}
	}
	return api.New(api.Deps{
		Temporal:              tc,
		TaskQueue:             cfg.TemporalTaskQueue,
		TemporalUIURL:         cfg.TemporalUIURL,
		TemporalNamespace:     cfg.TemporalNamespace,
		GatewayName:           cfg.GatewayName(),
		PublicURL:             cfg.PublicURL,
		CORSOrigins:           cfg.CORSOrigins,
		StripeWebhookSecret:   cfg.StripeWebhookSecret,
		DisputeResponseWindow: cfg.DisputeResponseWindow,
		DisputeReminders:      cfg.DisputeReminders,
		Sandbox:               sbx,
		Store:                 st,
		Tokens:                auth.NewTokens(cfg.JWTSigningKey, cfg.JWTPreviousKeys, cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL, nil),
		PageTokenSecret:       cfg.JWTSigningKey,
		WebhookURLs:           webhooks.URLPolicy{AllowInsecure: cfg.WebhookAllowInsecure},
		WebhookSealer:         sealer,
		Logger:                log,
		RefreshTokenTTL:       cfg.RefreshTokenTTL,
		RefreshReuseGrace:     reuseGrace(cfg.RefreshReuseGrace),

		// Account policies.
		RequireVerifiedMerchants: cfg.RequireVerifiedMerchants,

		// Operators' links (workflow_url) go to every role only on a
		// developer's machine.
		ShowWorkflowURLs: cfg.Mode == config.ModeDev,

		// Authentication under attack: per-address login limits behind
		// these proxies, and the cap on concurrent password hashes.
		TrustedProxies:          cfg.TrustedProxies,
		PasswordHashConcurrency: cfg.PasswordHashConcurrency,

		Checks: readinessChecks(st, tc),
	}), nil
}

// readinessChecks are what /readyz asks of serve and worker: the database
// and Temporal answer.
func readinessChecks(st *store.Store, tc client.Client) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"database": st.Ping,
		"temporal": func(ctx context.Context) error {
			_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		},
	}
}

// startAdmin serves /healthz and /readyz on PAYMENTS_ADMIN_ADDR until ctx
// ends (bound now, so a busy port is a start error); wait returns once the
// server has shut down.
func startAdmin(ctx context.Context, cfg config.Config, checks map[string]func(context.Context) error, log *slog.Logger) (wait func(), err error) {
	ln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("PAYMENTS_ADMIN_ADDR: cannot listen on %s: %w", cfg.AdminAddr, err)
	}
	log.Info("serving /healthz and /readyz", "address", ln.Addr().String())
	srv := &http.Server{Handler: api.AdminHandler(checks, log), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := api.Serve(ctx, srv, ln, "", "", 5*time.Second, log); err != nil {
			log.Error("admin address", "error", err)
		}
	}()
	return func() { <-done }, nil
}

// listen binds the API address now, so a busy port is a clear start error.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("PAYMENTS_HTTP_ADDR: cannot listen on %s: %w", addr, err)
	}
	return ln, nil
}

func scheme(cfg config.Config) string {
	if cfg.TLSCert != "" {
		return "https"
	}
	return "http"
}

// reuseGrace is the API's refresh reuse grace for the configured one: the
// configuration's 0 (off) is the API's negative.
func reuseGrace(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
