// Package api serves the public contract: the Connect services (Connect,
// gRPC and gRPC-Web on one port), health and readiness routes. Handlers
// authenticate, validate and authorise; money state changes go through
// workflows, never straight to the database.
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/validate"
	"go.temporal.io/sdk/client"

	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/webhooks"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
	"github.com/payments-platform/payments/workflows/dispute"
)

// MaxRequestBytes is the largest request body accepted (resource_exhausted above).
const MaxRequestBytes = 1 << 20

// Deps are what the API needs, built once in cmd/paymentsd.
type Deps struct {
	Store  *store.Store
	Tokens *auth.Tokens
	Logger *slog.Logger
	// RefreshTokenTTL is how long an unused refresh token stays valid.
	RefreshTokenTTL time.Duration
	// RefreshReuseGrace is how long after its rotation a refresh token
	// presented again gets the same successor instead of counting as reuse
	// (two tabs, a retried request); 10 s when zero, none when negative.
	RefreshReuseGrace time.Duration
	// Checks are readiness probes by name (database, temporal); /readyz is 503
	// while any fails.
	Checks map[string]func(context.Context) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PasswordParams are argon2id's costs; zero means the OWASP defaults.
	PasswordParams auth.PasswordParams
	// LoginThrottle limits failed logins per email; zero means the default.
	LoginThrottle store.ThrottlePolicy

	// Temporal starts and updates the workflows behind payments.
	Temporal client.Client
	// TaskQueue is where the workers poll.
	TaskQueue string
	// TemporalUIURL and TemporalNamespace build workflow_url links.
	TemporalUIURL, TemporalNamespace string
	// GatewayName is "sandbox" or "stripe".
	GatewayName string
	// PublicURL is how browsers reach this API (3-D Secure return); https
	// turns on HSTS and, behind a TLS-terminating proxy, the redirect of
	// plain-HTTP browsers (browser.go).
	PublicURL string
	// CORSOrigins are the web origins whose pages may call the API from a
	// browser, written as browsers send Origin; none when empty.
	CORSOrigins []string
	// PaymentWait bounds how long CreatePayment waits for the gateway.
	PaymentWait time.Duration
	// DisputeResponseWindow is how long the respondent of a dispute opened
	// on the platform has to respond; dispute.DefaultResponseWindow when
	// zero.
	DisputeResponseWindow time.Duration
	// DisputeReminders are how long before the deadline the respondent is
	// reminded; dispute.ReminderLeads when empty.
	DisputeReminders []time.Duration
	// StripeWebhookSecret verifies POST /webhooks/stripe.
	StripeWebhookSecret string
	// Sandbox serves the sandbox gateway's pages (3-D Secure) when it is used.
	Sandbox http.Handler
	// ShowWorkflowURLs shows workflow_url to every role (paymentsd dev);
	// otherwise only admins see it.
	ShowWorkflowURLs bool
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// (for per-IP login limits); nobody's when empty.
	TrustedProxies []netip.Prefix
	// PasswordHashConcurrency caps concurrent argon2id hashes; 0 sizes the
	// cap from CPUs and memory.
	PasswordHashConcurrency int
	// PageTokenSecret keys the page tokens' tags (paymentsd passes the JWT
	// signing key, so every instance accepts the others' tokens); a random
	// key when empty.
	PageTokenSecret []byte
	// WebhookURLs decides which endpoint URLs are allowed (https to public
	// addresses unless AllowInsecure).
	WebhookURLs webhooks.URLPolicy
	// RequireVerifiedMerchants refuses payments to merchants whose email
	// is not verified (PAYMENTS_REQUIRE_VERIFIED_MERCHANTS).
	RequireVerifiedMerchants bool
	// WebhookSealer encrypts endpoints' signing secrets; the worker opens
	// them with the same key. Derived from PageTokenSecret when nil (a
	// random key when that is empty too).
	WebhookSealer *webhooks.Sealer
}

// Server holds the handlers' shared state.
type Server struct {
	d   Deps
	log *slog.Logger
	// dummyHash has the configured costs, for logins of unknown emails.
	dummyHash string
	// guards hold the state of authentication's defences (hashing cap,
	// account status cache, per-address login limit).
	guards *authGuards
	// pageKey tags page tokens (paging.go).
	pageKey []byte
	// rotationKey derives a refresh token's successor (rotatedToken).
	rotationKey []byte
	// sealer encrypts webhook endpoints' secrets.
	sealer *webhooks.Sealer
}

// New builds the API from its dependencies.
func New(d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.PasswordParams == (auth.PasswordParams{}) {
		d.PasswordParams = auth.DefaultPasswordParams
	}
	if d.LoginThrottle == (store.ThrottlePolicy{}) {
		d.LoginThrottle = store.DefaultThrottlePolicy
	}
	if d.PaymentWait == 0 {
		d.PaymentWait = paymentWaitDefault
	}
	if d.DisputeResponseWindow == 0 {
		d.DisputeResponseWindow = dispute.DefaultResponseWindow
	}
	if d.TaskQueue == "" {
		d.TaskQueue = "payments"
	}
	if d.RefreshTokenTTL == 0 {
		d.RefreshTokenTTL = 30 * 24 * time.Hour
	}
	if d.RefreshReuseGrace == 0 {
		d.RefreshReuseGrace = 10 * time.Second
	}
	s := &Server{d: d, log: d.Logger, dummyHash: auth.DummyHash(d.PasswordParams), guards: newAuthGuards(d),
		pageKey: pageTokenKey(d.PageTokenSecret), rotationKey: serverKey(d.PageTokenSecret, "payments.v1 refresh token rotation"),
		sealer: d.WebhookSealer}
	if s.sealer == nil {
		key := d.PageTokenSecret
		if len(key) == 0 {
			key = s.pageKey // random
		}
		// Cannot fail: the key is not empty.
		s.sealer, _ = webhooks.NewSealer(key)
	}
	return s
}

func (s *Server) now() time.Time { return s.d.Now().UTC() }

// Handler is every route of the public port.
func (s *Server) Handler() http.Handler {
	opts := []connect.HandlerOption{
		connect.WithInterceptors(
			markReached(),
			errorInterceptor(s.log),
			requirePolicy(),
			validate.NewInterceptor(),
			refuseCardData(),
		),
		connect.WithReadMaxBytes(MaxRequestBytes),
		connect.WithCodec(strictJSONCodec{name: "json"}),
		connect.WithCodec(strictJSONCodec{name: "json; charset=utf-8"}),
	}
	services := []rpcService{
		rpc(paymentsv1connect.NewAuthServiceHandler(&authService{s}, opts...)),
		rpc(paymentsv1connect.NewAccountServiceHandler(&accountService{s}, opts...)),
		rpc(paymentsv1connect.NewPaymentServiceHandler(&paymentService{s}, opts...)),
		rpc(paymentsv1connect.NewRefundServiceHandler(&refundService{s}, opts...)),
		rpc(paymentsv1connect.NewDisputeServiceHandler(&disputeService{s}, opts...)),
		rpc(paymentsv1connect.NewTransactionServiceHandler(&transactionService{s: s}, opts...)),
		rpc(paymentsv1connect.NewWebhookServiceHandler(&webhookService{s: s}, opts...)),
		rpc(paymentsv1connect.NewAdminServiceHandler(&adminService{s: s}, opts...)),
	}
	mux := http.NewServeMux()
	s.routeAPI(mux, services)
	mux.Handle(grpchealth.NewHandler(&healthChecker{s}))
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("POST /webhooks/stripe", s.stripeWebhook)
	if s.d.Sandbox != nil {
		mux.Handle("/sandbox/", s.d.Sandbox)
	}
	return withRequestID(s.secureBrowsers(s.authenticate(mux)))
}

// APIKey implements authenticator.
func (s *Server) APIKey(ctx context.Context, secret string) (auth.Principal, error) {
	acct, key, err := s.d.Store.AccountByAPIKeyHash(ctx, auth.HashSecret(secret), s.now())
	if err != nil {
		return auth.Principal{}, err
	}
	return auth.Principal{AccountID: acct.ID, Role: string(acct.Role), APIKeyID: key.ID}, nil
}

// AccessToken implements authenticator.
func (s *Server) AccessToken(token string) (auth.Principal, error) {
	return s.d.Tokens.Verify(token)
}

// HTTPServer returns an http.Server for h with the platform's timeouts,
// HTTP/1.1 and HTTP/2 (h2c without TLS, through ALPN with it; see Serve) on
// one port.
func HTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// CreatePayment may wait up to 10 s for the gateway; leave room.
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:      &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// Serve runs srv on ln until ctx ends, then drains in-flight requests for up
// to drain before closing. With certFile (and keyFile) set it serves TLS with
// that pair, read again whenever either file changes (certReloader), so a
// renewed certificate is served without a restart; log reports reloads.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, certFile, keyFile string, drain time.Duration, log *slog.Logger) error {
	serve := func() error { return srv.Serve(ln) }
	if certFile != "" {
		certs, err := newCertReloader(certFile, keyFile, log)
		if err != nil {
			// Serve owns ln, as http.Server.Serve would have.
			_ = ln.Close()
			return err
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if srv.TLSConfig != nil {
			cfg = srv.TLSConfig.Clone()
		}
		cfg.GetCertificate = certs.GetCertificate
		srv.TLSConfig = cfg
		// With the certificate in TLSConfig, ServeTLS reads no file itself;
		// it still offers HTTP/2 through ALPN.
		serve = func() error { return srv.ServeTLS(ln, "", "") }
	}
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("http server shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
