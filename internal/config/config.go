// Package config reads the environment once, fills in defaults that work for
// `paymentsd dev`, and validates everything at start with messages that name
// the variable at fault.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/payments-platform/payments/internal/gateway/sandbox"
)

// Mode is the paymentsd subcommand; some defaults depend on it.
type Mode string

// The subcommands that read configuration.
const (
	ModeDev     Mode = "dev"
	ModeServe   Mode = "serve"
	ModeWorker  Mode = "worker"
	ModeMigrate Mode = "migrate"
	ModeAdmin   Mode = "admin"
)

// Config is every setting of API.md's environment variables plus the few
// operational knobs the code needs.
type Config struct {
	Mode Mode

	HTTPAddr  string // PAYMENTS_HTTP_ADDR
	AdminAddr string // PAYMENTS_ADMIN_ADDR
	DataDir   string // PAYMENTS_DATA_DIR

	DatabaseURL string // DATABASE_URL

	TemporalAddress   string // TEMPORAL_ADDRESS
	TemporalNamespace string // TEMPORAL_NAMESPACE
	TemporalAPIKey    string // TEMPORAL_API_KEY
	TemporalUIURL     string // TEMPORAL_UI_URL
	TemporalTaskQueue string // PAYMENTS_TASK_QUEUE

	JWTSigningKey []byte // JWT_SIGNING_KEY
	// JWTPreviousKeys still verify access tokens (never sign), so a key
	// rotation does not sign everyone out.
	JWTPreviousKeys [][]byte      // JWT_SIGNING_KEYS, comma-separated
	JWTIssuer       string        // PAYMENTS_JWT_ISSUER
	JWTAudience     string        // PAYMENTS_JWT_AUDIENCE
	AccessTokenTTL  time.Duration // PAYMENTS_ACCESS_TOKEN_TTL
	RefreshTokenTTL time.Duration // PAYMENTS_REFRESH_TOKEN_TTL

	TLSCert string // PAYMENTS_TLS_CERT
	TLSKey  string // PAYMENTS_TLS_KEY

	// Gateway is the payment gateway, "stripe" or "sandbox"
	// (PAYMENTS_GATEWAY): chosen explicitly outside dev, never by the
	// absence of a key.
	Gateway string // PAYMENTS_GATEWAY
	// AllowSandbox lets serve and worker run the sandbox gateway (a demo
	// deployment that moves no real money).
	AllowSandbox bool // PAYMENTS_ALLOW_SANDBOX
	// SandboxFaults make the sandbox gateway fail calls on purpose, for the
	// chaos suite: "error_before=<p>,timeout_after=<p>" (sandbox.ParseFaults).
	// Unset, the default, injects none; with any other gateway it is refused.
	SandboxFaults sandbox.Faults // PAYMENTS_SANDBOX_FAULTS
	// DisputeResponseWindow is how long the respondent of a dispute opened
	// on the platform has to respond (network disputes take the gateway's
	// deadline).
	DisputeResponseWindow time.Duration // PAYMENTS_DISPUTE_RESPONSE_WINDOW
	// WorkerStopTimeout is how long a stopping worker waits for its running
	// activities.
	WorkerStopTimeout time.Duration // PAYMENTS_WORKER_STOP_TIMEOUT
	// DisputeReminders are how long before the response deadline the
	// respondent is reminded, comma-separated durations.
	DisputeReminders []time.Duration // PAYMENTS_DISPUTE_REMINDERS

	StripeSecretKey     string // STRIPE_SECRET_KEY
	StripeWebhookSecret string // STRIPE_WEBHOOK_SECRET
	StripeAPIBase       string // STRIPE_API_BASE

	// RefreshReuseGrace is how long after its rotation a refresh token
	// presented again gets the same successor (two tabs, a retried
	// request) instead of revoking its login; 0 turns it off.
	RefreshReuseGrace time.Duration // PAYMENTS_REFRESH_REUSE_GRACE

	// ClosedAccountRetention is how long a closed account's name and email
	// are kept before the maintenance workflow erases them.
	ClosedAccountRetention time.Duration // PAYMENTS_CLOSED_ACCOUNT_RETENTION
	// RequireVerifiedMerchants refuses payments to merchants whose email
	// is not verified.
	RequireVerifiedMerchants bool // PAYMENTS_REQUIRE_VERIFIED_MERCHANTS

	SMTPURL string // SMTP_URL
	// MailFrom is the sender of the platform's emails.
	MailFrom string // PAYMENTS_MAIL_FROM
	// WebhookAllowInsecure allows webhook endpoints over plain http and on
	// loopback or private addresses (on in dev, off elsewhere).
	WebhookAllowInsecure bool   // PAYMENTS_WEBHOOK_ALLOW_INSECURE
	SentryDSN            string // SENTRY_DSN
	OTLPEndpoint         string // OTEL_EXPORTER_OTLP_ENDPOINT

	// PublicURL is how browsers reach the API (redirects, links in email).
	PublicURL string // PAYMENTS_PUBLIC_URL
	// CORSOrigins are the web origins whose pages may call the API from a
	// browser (CORS, and exempt from the refusal of cross-origin requests);
	// none by default, so no other site's page can.
	CORSOrigins []string // PAYMENTS_CORS_ORIGINS, comma-separated

	// LogLevel is the least level logged.
	LogLevel slog.Level // PAYMENTS_LOG_LEVEL

	// TrustedProxies are the addresses whose X-Forwarded-For is believed
	// when finding a client's IP (login limits); nobody's by default.
	TrustedProxies []netip.Prefix // PAYMENTS_TRUSTED_PROXIES, comma-separated IPs or CIDRs
	// PasswordHashConcurrency caps concurrent argon2id hashes; 0 sizes it
	// from CPUs and memory.
	PasswordHashConcurrency int // PAYMENTS_PASSWORD_HASH_CONCURRENCY

	// The database connection pool of one process.
	DBMaxOpenConns    int           // DATABASE_MAX_OPEN_CONNS
	DBMaxIdleConns    int           // DATABASE_MAX_IDLE_CONNS
	DBConnMaxLifetime time.Duration // DATABASE_CONN_MAX_LIFETIME
	DBConnMaxIdleTime time.Duration // DATABASE_CONN_MAX_IDLE_TIME
}

// Defaults of Vars as typed values, for the code and tests that need them
// (TestDevDefaults, TestDisputeSettings and TestClosedAccountRetention hold
// them equal to what FromEnv reads from Vars). The pool's are sized for one
// process (API or worker) on a server that allows MySQL's default 151
// connections to a handful of processes.
const (
	DefaultDBMaxOpenConns    = 20
	DefaultDBMaxIdleConns    = 10
	DefaultDBConnMaxLifetime = 5 * time.Minute
	DefaultDBConnMaxIdleTime = time.Minute
	// DefaultDisputeResponseWindow is PAYMENTS_DISPUTE_RESPONSE_WINDOW's
	// default: seven days, as card networks give merchants about that.
	DefaultDisputeResponseWindow = 7 * 24 * time.Hour
	// DefaultClosedAccountRetention is PAYMENTS_CLOSED_ACCOUNT_RETENTION's
	// default: 90 days.
	DefaultClosedAccountRetention = 90 * 24 * time.Hour
)

// minSigningKeyBytes is the HS256 key size below which brute force becomes plausible.
const minSigningKeyBytes = 32

// LoadDotEnv reads the .env file at path into the process environment, if
// there is one; variables already set in the real environment win.
func LoadDotEnv(path string) error {
	if err := godotenv.Load(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// FromEnv builds and validates a Config from getenv, without touching .env.
// It reads the variables of Vars, with their defaults there; the refusal of
// a start without a variable the mode requires ends with the list of all
// of them.
func FromEnv(mode Mode, getenv func(string) string) (Config, error) {
	// get is the variable's value, or its default in mode (for a derived
	// default "", which the code below computes).
	get := func(name string) string {
		v := varNamed(name)
		if s := strings.TrimSpace(getenv(name)); s != "" {
			return s
		}
		return v.value(mode)
	}
	// derived reports whether mode computes a default for the variable.
	derived := func(name string) bool { return varNamed(name).DefaultFor(mode) != "" }
	c := Config{
		Mode:                mode,
		HTTPAddr:            get("PAYMENTS_HTTP_ADDR"),
		AdminAddr:           get("PAYMENTS_ADMIN_ADDR"),
		DataDir:             get("PAYMENTS_DATA_DIR"),
		TemporalAddress:     get("TEMPORAL_ADDRESS"),
		TemporalNamespace:   get("TEMPORAL_NAMESPACE"),
		TemporalAPIKey:      get("TEMPORAL_API_KEY"),
		TemporalUIURL:       get("TEMPORAL_UI_URL"),
		TemporalTaskQueue:   get("PAYMENTS_TASK_QUEUE"),
		JWTIssuer:           get("PAYMENTS_JWT_ISSUER"),
		JWTAudience:         get("PAYMENTS_JWT_AUDIENCE"),
		TLSCert:             get("PAYMENTS_TLS_CERT"),
		TLSKey:              get("PAYMENTS_TLS_KEY"),
		Gateway:             strings.ToLower(get("PAYMENTS_GATEWAY")),
		StripeSecretKey:     get("STRIPE_SECRET_KEY"),
		StripeWebhookSecret: get("STRIPE_WEBHOOK_SECRET"),
		StripeAPIBase:       get("STRIPE_API_BASE"),
		SMTPURL:             get("SMTP_URL"),
		MailFrom:            get("PAYMENTS_MAIL_FROM"),
		SentryDSN:           get("SENTRY_DSN"),
		OTLPEndpoint:        get("OTEL_EXPORTER_OTLP_ENDPOINT"),
		DatabaseURL:         get("DATABASE_URL"),
		PublicURL:           get("PAYMENTS_PUBLIC_URL"),
	}
	if c.DatabaseURL == "" && derived("DATABASE_URL") {
		// The dev database, so that `paymentsd admin create` and `migrate`
		// work next to `paymentsd dev` without any setup.
		c.DatabaseURL = "sqlite://" + filepath.ToSlash(filepath.Join(c.DataDir, "payments.db"))
	}

	var problems []error
	var err error
	if c.LogLevel, err = logLevel("PAYMENTS_LOG_LEVEL", get("PAYMENTS_LOG_LEVEL")); err != nil {
		problems = append(problems, err)
	}
	if c.AccessTokenTTL, err = duration("PAYMENTS_ACCESS_TOKEN_TTL", get("PAYMENTS_ACCESS_TOKEN_TTL")); err != nil {
		problems = append(problems, err)
	}
	if c.RefreshTokenTTL, err = duration("PAYMENTS_REFRESH_TOKEN_TTL", get("PAYMENTS_REFRESH_TOKEN_TTL")); err != nil {
		problems = append(problems, err)
	}
	grace := get("PAYMENTS_REFRESH_REUSE_GRACE")
	if d, err := time.ParseDuration(grace); err != nil || d < 0 || d > 5*time.Minute { // "0" too
		problems = append(problems, fmt.Errorf("PAYMENTS_REFRESH_REUSE_GRACE: %q is not a duration from 0s (off) to 5m: "+
			"the longer it is, the longer a stolen refresh token replayed right after its owner's refresh goes unnoticed", grace))
	} else {
		c.RefreshReuseGrace = d
	}
	if c.ClosedAccountRetention, err = retention("PAYMENTS_CLOSED_ACCOUNT_RETENTION", get("PAYMENTS_CLOSED_ACCOUNT_RETENTION")); err != nil {
		problems = append(problems, err)
	}
	if c.RequireVerifiedMerchants, err = boolean("PAYMENTS_REQUIRE_VERIFIED_MERCHANTS", get("PAYMENTS_REQUIRE_VERIFIED_MERCHANTS")); err != nil {
		problems = append(problems, err)
	}
	if key := getenv("JWT_SIGNING_KEY"); key != "" {
		c.JWTSigningKey = []byte(key)
	}
	for _, k := range strings.Split(get("JWT_SIGNING_KEYS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.JWTPreviousKeys = append(c.JWTPreviousKeys, []byte(k))
		}
	}
	if c.WorkerStopTimeout, err = duration("PAYMENTS_WORKER_STOP_TIMEOUT", get("PAYMENTS_WORKER_STOP_TIMEOUT")); err != nil {
		problems = append(problems, err)
	}
	if c.DisputeResponseWindow, err = duration("PAYMENTS_DISPUTE_RESPONSE_WINDOW", get("PAYMENTS_DISPUTE_RESPONSE_WINDOW")); err != nil {
		problems = append(problems, err)
	} else if c.DisputeResponseWindow < time.Hour {
		problems = append(problems, errors.New("PAYMENTS_DISPUTE_RESPONSE_WINDOW: at least 1h: a respondent needs time to answer"))
	}
	if c.DisputeReminders, err = durations("PAYMENTS_DISPUTE_REMINDERS", get("PAYMENTS_DISPUTE_REMINDERS")); err != nil {
		problems = append(problems, err)
	}
	if c.AllowSandbox, err = boolean("PAYMENTS_ALLOW_SANDBOX", get("PAYMENTS_ALLOW_SANDBOX")); err != nil {
		problems = append(problems, err)
	}
	if c.SandboxFaults, err = sandbox.ParseFaults(get("PAYMENTS_SANDBOX_FAULTS")); err != nil {
		problems = append(problems, fmt.Errorf("PAYMENTS_SANDBOX_FAULTS: %w", err))
	}
	if c.WebhookAllowInsecure, err = boolean("PAYMENTS_WEBHOOK_ALLOW_INSECURE", get("PAYMENTS_WEBHOOK_ALLOW_INSECURE")); err != nil {
		problems = append(problems, err)
	}
	if c.TrustedProxies, err = prefixes("PAYMENTS_TRUSTED_PROXIES", get("PAYMENTS_TRUSTED_PROXIES")); err != nil {
		problems = append(problems, err)
	}
	if c.CORSOrigins, err = origins("PAYMENTS_CORS_ORIGINS", get("PAYMENTS_CORS_ORIGINS")); err != nil {
		problems = append(problems, err)
	}
	for _, n := range []struct {
		name string
		dst  *int
	}{
		{"PAYMENTS_PASSWORD_HASH_CONCURRENCY", &c.PasswordHashConcurrency},
		{"DATABASE_MAX_OPEN_CONNS", &c.DBMaxOpenConns},
		{"DATABASE_MAX_IDLE_CONNS", &c.DBMaxIdleConns},
	} {
		if *n.dst, err = integer(n.name, get(n.name)); err != nil {
			problems = append(problems, err)
		}
	}
	if c.DBConnMaxLifetime, err = duration("DATABASE_CONN_MAX_LIFETIME", get("DATABASE_CONN_MAX_LIFETIME")); err != nil {
		problems = append(problems, err)
	}
	if c.DBConnMaxIdleTime, err = duration("DATABASE_CONN_MAX_IDLE_TIME", get("DATABASE_CONN_MAX_IDLE_TIME")); err != nil {
		problems = append(problems, err)
	}
	summary := requiredSummary(mode, getenv)
	if len(problems) > 0 {
		return c, errors.Join(append(problems, summary)...)
	}
	if c.JWTSigningKey == nil && derived("JWT_SIGNING_KEY") {
		if c.JWTSigningKey, err = devSecret(c.DataDir, "jwt-signing-key", ""); err != nil {
			return c, err
		}
	}
	if c.StripeWebhookSecret == "" && derived("STRIPE_WEBHOOK_SECRET") && c.Gateway == GatewaySandbox {
		// The sandbox signs its events like Stripe does; in dev the secret
		// is random and kept.
		secret, err := devSecret(c.DataDir, "sandbox-webhook-secret", "whsec_")
		if err != nil {
			return c, err
		}
		c.StripeWebhookSecret = string(secret)
	}
	if c.PublicURL == "" {
		scheme := "http"
		if c.TLSCert != "" {
			scheme = "https"
		}
		c.PublicURL = scheme + "://" + c.HTTPAddr
	}
	return c, errors.Join(c.Validate(), summary)
}

// logLevel parses PAYMENTS_LOG_LEVEL.
func logLevel(name, v string) (slog.Level, error) {
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%s: %q is not debug, info, warn or error", name, v)
}

// The gateways PAYMENTS_GATEWAY names.
const (
	GatewayStripe  = "stripe"
	GatewaySandbox = "sandbox"
)

func boolean(name, v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not true or false", name, v)
	}
	return b, nil
}

func integer(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%s: %q is not a non-negative whole number", name, v)
	}
	return n, nil
}

// origins parses a comma-separated list of web origins, each a scheme, a
// host and an optional port (https://shop.example:8443), and returns them as
// browsers write the Origin header (lower case, no trailing slash), because
// the API compares them exactly. Anything else is refused rather than
// guessed at: a path would never match, and a wildcard would trust sites the
// operator did not name.
func origins(name, v string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "*") {
			return nil, fmt.Errorf("%s: %q: list each origin exactly; wildcards are not accepted", name, f)
		}
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%s: %q is not an origin such as https://shop.example", name, f)
		}
		origin := strings.ToLower(u.Scheme + "://" + u.Host)
		if !strings.EqualFold(strings.TrimSuffix(f, "/"), origin) {
			return nil, fmt.Errorf("%s: %q: an origin is a scheme, a host and a port only (%s)", name, f, origin)
		}
		out = append(out, origin)
	}
	return out, nil
}

// prefixes parses a comma-separated list of IP addresses and CIDR ranges.
func prefixes(name, v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is neither an IP address nor a CIDR range", name, f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// durations reads a comma-separated list of positive durations, longest
// first.
func durations(name, v string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive duration such as 72h", name, part)
		}
		if len(out) > 0 && d >= out[len(out)-1] {
			return nil, fmt.Errorf("%s: list the reminders longest first (72h,24h)", name)
		}
		out = append(out, d)
	}
	return out, nil
}

func duration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive duration such as 15m", name, v)
	}
	return d, nil
}

// maxRetentionDays bounds retention periods (and keeps days*24h from
// overflowing): 100 years.
const maxRetentionDays = 36500

// retention reads a duration that may also be written in whole days
// ("90d"); at least an hour.
func retention(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, perr := strconv.Atoi(days)
		d, err = time.Duration(n)*24*time.Hour, perr
		if n > maxRetentionDays {
			err = errors.New("too long")
		}
	}
	if err != nil || d < time.Hour || d > maxRetentionDays*24*time.Hour {
		return 0, fmt.Errorf("%s: %q is not a duration from an hour to 100 years, such as 90d or 720h", name, v)
	}
	return d, nil
}

// Validate checks every setting the mode uses and reports all problems at once.
func (c Config) Validate() error {
	var problems []error
	bad := func(format string, a ...any) { problems = append(problems, fmt.Errorf(format, a...)) }

	needsHTTP := c.Mode == ModeDev || c.Mode == ModeServe
	needsTemporal := c.Mode == ModeDev || c.Mode == ModeServe || c.Mode == ModeWorker
	needsDB := c.Mode != ""

	if c.Mode == ModeServe || c.Mode == ModeWorker {
		if err := checkHostPort(c.AdminAddr); err != nil {
			bad("PAYMENTS_ADMIN_ADDR: %v", err)
		}
	}
	if needsHTTP {
		if err := checkHostPort(c.HTTPAddr); err != nil {
			bad("PAYMENTS_HTTP_ADDR: %v", err)
		}
		if (c.TLSCert == "") != (c.TLSKey == "") {
			bad("PAYMENTS_TLS_CERT and PAYMENTS_TLS_KEY must be set together")
		}
		for name, path := range map[string]string{"PAYMENTS_TLS_CERT": c.TLSCert, "PAYMENTS_TLS_KEY": c.TLSKey} {
			if path == "" {
				continue
			}
			if _, err := os.Stat(path); err != nil {
				bad("%s: %v", name, err)
			}
		}
		if err := checkURL(c.PublicURL, "http", "https"); err != nil {
			bad("PAYMENTS_PUBLIC_URL: %v", err)
		}
	}
	if needsHTTP || c.Mode == ModeWorker {
		// Webhooks (and the sandbox's 3-D Secure links) are verified with
		// this secret: a guessable one would let anyone settle payments.
		switch {
		case c.StripeWebhookSecret == "":
			bad("%s; %s", c.required("STRIPE_WEBHOOK_SECRET"), webhookSecretHint)
		case len(c.StripeWebhookSecret) < 16:
			bad("STRIPE_WEBHOOK_SECRET: too short; %s", webhookSecretHint)
		case c.Mode != ModeDev:
			// An example value or a typed one is known or guessable, and
			// would let anyone forge gateway events.
			if why := weakSecret(c.StripeWebhookSecret); why != "" {
				bad("STRIPE_WEBHOOK_SECRET: %s; %s", why, webhookSecretHint)
			}
		}
	}
	// The worker opens webhook endpoints' secrets with a key derived from
	// the signing key, so it needs the same one as the API.
	if needsHTTP || c.Mode == ModeWorker {
		if len(c.JWTSigningKey) == 0 {
			bad("%s", c.required("JWT_SIGNING_KEY"))
		} else {
			c.checkSigningKey(bad, "JWT_SIGNING_KEY", c.JWTSigningKey)
		}
	}
	if needsHTTP {
		for i, k := range c.JWTPreviousKeys {
			c.checkSigningKey(bad, fmt.Sprintf("JWT_SIGNING_KEYS (key %d of %d)", i+1, len(c.JWTPreviousKeys)), k)
		}
	}
	if needsDB {
		if c.DatabaseURL == "" {
			bad("%s", c.required("DATABASE_URL"))
		} else if !strings.HasPrefix(c.DatabaseURL, "sqlite://") && !strings.HasPrefix(c.DatabaseURL, "mysql://") {
			bad("DATABASE_URL: unsupported scheme in %q (want sqlite:// or mysql://)", redact(c.DatabaseURL))
		}
		// 0 would mean "unlimited" to database/sql: the very thing the
		// limit is there to prevent.
		if c.DBMaxOpenConns < 1 {
			bad("DATABASE_MAX_OPEN_CONNS: %d; want at least 1 (default %d)", c.DBMaxOpenConns, DefaultDBMaxOpenConns)
		}
		if c.DBMaxIdleConns > c.DBMaxOpenConns {
			bad("DATABASE_MAX_IDLE_CONNS: %d is more than DATABASE_MAX_OPEN_CONNS (%d)", c.DBMaxIdleConns, c.DBMaxOpenConns)
		}
	}
	if needsTemporal {
		if err := checkHostPort(c.TemporalAddress); err != nil {
			bad("TEMPORAL_ADDRESS: %v", err)
		}
		if c.TemporalNamespace == "" {
			bad("TEMPORAL_NAMESPACE: must not be empty")
		}
		if err := checkURL(c.TemporalUIURL, "http", "https"); err != nil {
			bad("TEMPORAL_UI_URL: %v", err)
		}
	}
	if needsTemporal {
		switch c.Gateway {
		case GatewayStripe:
			if c.StripeSecretKey == "" {
				bad("STRIPE_SECRET_KEY: required with PAYMENTS_GATEWAY=stripe (sk_live_..., or sk_test_... for Stripe's test mode)")
			}
		case GatewaySandbox:
			if c.Mode != ModeDev && !c.AllowSandbox {
				bad("PAYMENTS_GATEWAY: the sandbox moves no real money; serve and worker run it only with PAYMENTS_ALLOW_SANDBOX=true (a demo deployment)")
			}
		case "":
			bad("%s", c.required("PAYMENTS_GATEWAY"))
		default:
			bad("PAYMENTS_GATEWAY: %q is not a gateway; want stripe or sandbox", c.Gateway)
		}
	}
	if c.SandboxFaults.Active() && c.Gateway != GatewaySandbox {
		bad("PAYMENTS_SANDBOX_FAULTS: only the sandbox gateway injects faults (PAYMENTS_GATEWAY is %q)", c.Gateway)
	}
	if c.StripeAPIBase != "" {
		if err := checkURL(c.StripeAPIBase, "http", "https"); err != nil {
			bad("STRIPE_API_BASE: %v", err)
		}
	}
	if c.SMTPURL != "" {
		if err := checkURL(c.SMTPURL, "smtp", "smtps"); err != nil {
			bad("SMTP_URL: %v", err)
		}
	}
	if c.SentryDSN != "" {
		if err := checkURL(c.SentryDSN, "http", "https"); err != nil {
			bad("SENTRY_DSN: %v", err)
		}
	}
	if c.OTLPEndpoint != "" {
		if err := checkURL(c.OTLPEndpoint, "http", "https"); err != nil {
			bad("OTEL_EXPORTER_OTLP_ENDPOINT: %v", err)
		}
	}
	return errors.Join(problems...)
}

// checkSigningKey refuses an HS256 key that is short or, outside dev, a
// placeholder or not random: whoever guesses it can sign tokens of any
// account, admins included. The key itself never appears in a message.
func (c Config) checkSigningKey(bad func(string, ...any), name string, key []byte) {
	if len(key) < minSigningKeyBytes {
		bad("%s: too short (%d bytes); use at least %d random bytes: %s", name, len(key), minSigningKeyBytes, generateKeyHint)
		return
	}
	if c.Mode == ModeDev {
		return
	}
	if why := weakSecret(string(key)); why != "" {
		bad("%s: %s; %s", name, why, generateKeyHint)
	}
}

// GatewayName is the payment gateway the configuration selects.
func (c Config) GatewayName() string { return c.Gateway }

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", addr, err)
	}
	_ = host
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has an invalid port", addr)
	}
	return nil
}

func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("malformed URL %q: %v", redact(raw), err)
	}
	for _, s := range schemes {
		if u.Scheme == s {
			if u.Host == "" {
				return fmt.Errorf("URL %q has no host", redact(raw))
			}
			return nil
		}
	}
	return fmt.Errorf("URL %q must use %s", redact(raw), strings.Join(schemes, " or "))
}

// redact hides a password in a URL or DSN so it never reaches a log.
func redact(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := strings.Index(s, "://")
	if start < 0 {
		start = 0
	} else {
		start += 3
	}
	creds := s[start:at]
	if i := strings.Index(creds, ":"); i >= 0 {
		return s[:start] + creds[:i] + ":****" + s[at:]
	}
	return s
}

// Redact hides the password of a URL or DSN for logs and error messages.
func Redact(s string) string { return redact(s) }

// devSecret returns the secret kept in dataDir/name, creating it once.
func devSecret(dataDir, name, prefix string) ([]byte, error) {
	path := filepath.Join(dataDir, name)
	if b, err := os.ReadFile(path); err == nil {
		key := []byte(strings.TrimSpace(string(b)))
		if len(key) >= minSigningKeyBytes {
			return key, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("PAYMENTS_DATA_DIR: reading %s: %w", path, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("PAYMENTS_DATA_DIR: %w", err)
	}
	raw := make([]byte, 48)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	key := prefix + base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("PAYMENTS_DATA_DIR: writing %s: %w", path, err)
	}
	return []byte(key), nil
}
