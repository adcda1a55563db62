package config

import (
	"crypto/rand"
	"encoding/base64"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDevDefaults(t *testing.T) {
	dir := t.TempDir()
	c, err := FromEnv(ModeDev, envOf(map[string]string{"PAYMENTS_DATA_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.AdminAddr != "127.0.0.1:9090" || c.TemporalAddress != "127.0.0.1:7233" ||
		c.TemporalNamespace != "default" || c.TemporalUIURL != "http://127.0.0.1:8233" {
		t.Fatalf("defaults: %+v", c)
	}
	if want := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "payments.db")); c.DatabaseURL != want {
		t.Fatalf("DatabaseURL = %q, want %q", c.DatabaseURL, want)
	}
	if c.GatewayName() != GatewaySandbox || c.Gateway != GatewaySandbox {
		t.Fatalf("gateway %q", c.GatewayName())
	}
	if c.DBMaxOpenConns != DefaultDBMaxOpenConns || c.DBMaxIdleConns != DefaultDBMaxIdleConns ||
		c.DBConnMaxLifetime != DefaultDBConnMaxLifetime || c.DBConnMaxIdleTime != DefaultDBConnMaxIdleTime {
		t.Fatalf("pool defaults: %d %d %v %v", c.DBMaxOpenConns, c.DBMaxIdleConns, c.DBConnMaxLifetime, c.DBConnMaxIdleTime)
	}
	if len(c.JWTSigningKey) < minSigningKeyBytes {
		t.Fatalf("dev signing key of %d bytes", len(c.JWTSigningKey))
	}
	// The key is created once and kept.
	c2, err := FromEnv(ModeDev, envOf(map[string]string{"PAYMENTS_DATA_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if string(c2.JWTSigningKey) != string(c.JWTSigningKey) {
		t.Fatal("dev signing key changed between starts")
	}
	st, err := os.Stat(filepath.Join(dir, "jwt-signing-key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
}

// randomKey is a key as `openssl rand -base64 32` makes one.
func randomKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestValidationNamesTheVariable(t *testing.T) {
	goodServe := map[string]string{
		"DATABASE_URL":           "mysql://u:p@tcp(127.0.0.1:3306)/db",
		"JWT_SIGNING_KEY":        randomKey(t),
		"STRIPE_WEBHOOK_SECRET":  "whsec_" + randomKey(t),
		"PAYMENTS_GATEWAY":       "sandbox",
		"PAYMENTS_ALLOW_SANDBOX": "true",
	}
	cases := []struct {
		name  string
		mode  Mode
		set   map[string]string
		wants []string // substrings of the error; empty means valid
	}{
		{"serve ok", ModeServe, nil, nil},
		{"serve without signing key", ModeServe, map[string]string{"JWT_SIGNING_KEY": ""}, []string{"JWT_SIGNING_KEY", "required"}},
		{"short signing key", ModeServe, map[string]string{"JWT_SIGNING_KEY": "short"}, []string{"JWT_SIGNING_KEY", "too short"}},
		{"serve without database", ModeServe, map[string]string{"DATABASE_URL": ""}, []string{"DATABASE_URL", "required"}},
		{"bad database scheme", ModeServe, map[string]string{"DATABASE_URL": "postgres://u:secret@h/db"}, []string{"DATABASE_URL", "unsupported scheme", "u:****@"}},
		{"bad http addr", ModeServe, map[string]string{"PAYMENTS_HTTP_ADDR": "8080"}, []string{"PAYMENTS_HTTP_ADDR"}},
		{"bad temporal addr", ModeServe, map[string]string{"TEMPORAL_ADDRESS": "nohost"}, []string{"TEMPORAL_ADDRESS"}},
		{"bad ui url", ModeServe, map[string]string{"TEMPORAL_UI_URL": "ftp://x"}, []string{"TEMPORAL_UI_URL"}},
		{"tls half set", ModeServe, map[string]string{"PAYMENTS_TLS_CERT": "/nonexistent.pem"}, []string{"PAYMENTS_TLS_CERT and PAYMENTS_TLS_KEY"}},
		{"bad smtp url", ModeServe, map[string]string{"SMTP_URL": "mailto:x"}, []string{"SMTP_URL"}},
		{"bad ttl", ModeServe, map[string]string{"PAYMENTS_ACCESS_TOKEN_TTL": "soon"}, []string{"PAYMENTS_ACCESS_TOKEN_TTL"}},
		// The worker opens webhook endpoints' secrets with a key derived
		// from the signing key: it needs the API's, as random.
		{"worker without signing key", ModeWorker, map[string]string{"JWT_SIGNING_KEY": ""}, []string{"JWT_SIGNING_KEY: required by worker", "paymentsd worker requires"}},
		{"worker with an example signing key", ModeWorker, map[string]string{"JWT_SIGNING_KEY": "REPLACE-ME-with-openssl-rand-base64-32"}, []string{"JWT_SIGNING_KEY", "openssl rand -base64 32"}},
		{"serve without webhook secret", ModeServe, map[string]string{"STRIPE_WEBHOOK_SECRET": ""}, []string{"STRIPE_WEBHOOK_SECRET", "required"}},
		{"worker without webhook secret", ModeWorker, map[string]string{"STRIPE_WEBHOOK_SECRET": ""}, []string{"STRIPE_WEBHOOK_SECRET"}},
		{"short webhook secret", ModeServe, map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x"}, []string{"STRIPE_WEBHOOK_SECRET", "too short"}},
		{"two problems at once", ModeServe, map[string]string{"JWT_SIGNING_KEY": "", "DATABASE_URL": ""}, []string{"JWT_SIGNING_KEY", "DATABASE_URL"}},

		// PAYMENTS_GATEWAY is explicit outside dev, and the sandbox needs consent.
		{"serve without gateway", ModeServe, map[string]string{"PAYMENTS_GATEWAY": ""}, []string{"PAYMENTS_GATEWAY", "required"}},
		{"worker without gateway", ModeWorker, map[string]string{"PAYMENTS_GATEWAY": ""}, []string{"PAYMENTS_GATEWAY", "required"}},
		{"unknown gateway", ModeServe, map[string]string{"PAYMENTS_GATEWAY": "paypal"}, []string{"PAYMENTS_GATEWAY", `"paypal" is not a gateway`}},
		{"serve sandbox without consent", ModeServe, map[string]string{"PAYMENTS_ALLOW_SANDBOX": ""}, []string{"PAYMENTS_GATEWAY", "PAYMENTS_ALLOW_SANDBOX=true"}},
		{"worker sandbox without consent", ModeWorker, map[string]string{"PAYMENTS_ALLOW_SANDBOX": ""}, []string{"PAYMENTS_GATEWAY", "PAYMENTS_ALLOW_SANDBOX=true"}},
		{"sandbox refused explicitly", ModeServe, map[string]string{"PAYMENTS_ALLOW_SANDBOX": "false"}, []string{"PAYMENTS_ALLOW_SANDBOX=true"}},
		{"allow sandbox not a boolean", ModeServe, map[string]string{"PAYMENTS_ALLOW_SANDBOX": "yes please"}, []string{"PAYMENTS_ALLOW_SANDBOX", "not true or false"}},
		{"stripe without secret key", ModeServe, map[string]string{"PAYMENTS_GATEWAY": "stripe"}, []string{"STRIPE_SECRET_KEY", "PAYMENTS_GATEWAY=stripe"}},
		{"worker stripe without secret key", ModeWorker, map[string]string{"PAYMENTS_GATEWAY": "stripe"}, []string{"STRIPE_SECRET_KEY"}},
		{"stripe with secret key", ModeServe, map[string]string{"PAYMENTS_GATEWAY": "stripe", "STRIPE_SECRET_KEY": "sk_test_123", "PAYMENTS_ALLOW_SANDBOX": ""}, nil},
		{"gateway in any case", ModeWorker, map[string]string{"PAYMENTS_GATEWAY": "Stripe", "STRIPE_SECRET_KEY": "sk_test_123"}, nil},
		{"migrate needs no gateway", ModeMigrate, map[string]string{"PAYMENTS_GATEWAY": "", "PAYMENTS_ALLOW_SANDBOX": ""}, nil},
		{"admin needs no gateway", ModeAdmin, map[string]string{"PAYMENTS_GATEWAY": "", "PAYMENTS_ALLOW_SANDBOX": ""}, nil},
		{"dev with stripe needs its key", ModeDev, map[string]string{"PAYMENTS_GATEWAY": "stripe"}, []string{"STRIPE_SECRET_KEY"}},

		// The chaos suite's faults: the sandbox's only, well formed.
		{"sandbox faults", ModeWorker, map[string]string{"PAYMENTS_SANDBOX_FAULTS": "error_before=0.05,timeout_after=0.05"}, nil},
		{"sandbox faults malformed", ModeWorker, map[string]string{"PAYMENTS_SANDBOX_FAULTS": "timeout_after=2"}, []string{"PAYMENTS_SANDBOX_FAULTS", "probability from 0 to 1"}},
		{"faults with stripe", ModeWorker, map[string]string{"PAYMENTS_GATEWAY": "stripe", "STRIPE_SECRET_KEY": "sk_test_123", "PAYMENTS_SANDBOX_FAULTS": "error_before=0.1"}, []string{"PAYMENTS_SANDBOX_FAULTS", "only the sandbox"}},

		// The connection pool.
		{"pool of 0", ModeServe, map[string]string{"DATABASE_MAX_OPEN_CONNS": "0"}, []string{"DATABASE_MAX_OPEN_CONNS", "at least 1"}},
		{"pool not a number", ModeWorker, map[string]string{"DATABASE_MAX_OPEN_CONNS": "many"}, []string{"DATABASE_MAX_OPEN_CONNS", "not a non-negative whole number"}},
		{"negative idle", ModeServe, map[string]string{"DATABASE_MAX_IDLE_CONNS": "-1"}, []string{"DATABASE_MAX_IDLE_CONNS"}},
		{"more idle than open", ModeMigrate, map[string]string{"DATABASE_MAX_OPEN_CONNS": "4", "DATABASE_MAX_IDLE_CONNS": "5"}, []string{"DATABASE_MAX_IDLE_CONNS", "more than DATABASE_MAX_OPEN_CONNS (4)"}},
		{"huge pool", ModeServe, map[string]string{"DATABASE_MAX_OPEN_CONNS": "99999999999"}, []string{"DATABASE_MAX_OPEN_CONNS"}},
		{"zero lifetime", ModeServe, map[string]string{"DATABASE_CONN_MAX_LIFETIME": "0s"}, []string{"DATABASE_CONN_MAX_LIFETIME", "positive duration"}},
		{"idle time not a duration", ModeWorker, map[string]string{"DATABASE_CONN_MAX_IDLE_TIME": "60"}, []string{"DATABASE_CONN_MAX_IDLE_TIME"}},
		{"idle may be 0", ModeServe, map[string]string{"DATABASE_MAX_IDLE_CONNS": "0"}, nil},

		// Other knobs of this issue.
		{"trusted proxy not an address", ModeServe, map[string]string{"PAYMENTS_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, []string{"PAYMENTS_TRUSTED_PROXIES", "proxy.local"}},
		{"hash concurrency not a number", ModeServe, map[string]string{"PAYMENTS_PASSWORD_HASH_CONCURRENCY": "auto"}, []string{"PAYMENTS_PASSWORD_HASH_CONCURRENCY"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{"PAYMENTS_DATA_DIR": t.TempDir()}
			for k, v := range goodServe {
				m[k] = v
			}
			for k, v := range tc.set {
				m[k] = v
			}
			_, err := FromEnv(tc.mode, envOf(m))
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "u:secret") {
				t.Errorf("error leaks a password: %q", err)
			}
		})
	}
}

func TestLoadDotEnv(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	if err := os.WriteFile(path, []byte("PAYMENTS_DOTENV_A=from-file\nPAYMENTS_DOTENV_B=from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PAYMENTS_DOTENV_B", "from-env")
	t.Cleanup(func() { os.Unsetenv("PAYMENTS_DOTENV_A") })
	if err := LoadDotEnv(path); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("PAYMENTS_DOTENV_A"); got != "from-file" {
		t.Errorf("A = %q, want the file's value", got)
	}
	if got := os.Getenv("PAYMENTS_DOTENV_B"); got != "from-env" {
		t.Errorf("B = %q, want the real environment to win", got)
	}
	if err := LoadDotEnv(filepath.Join(dir, "missing.env")); err != nil {
		t.Errorf("a missing .env is an error: %v", err)
	}
	if err := os.WriteFile(path, []byte("NOT A VALID LINE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := LoadDotEnv(path); err == nil || !strings.Contains(err.Error(), ".env") {
		t.Errorf("a malformed .env: %v", err)
	}
}

func TestNewSettingsAreParsed(t *testing.T) {
	prev1, prev2 := randomKey(t), randomKey(t)
	c, err := FromEnv(ModeServe, envOf(map[string]string{
		"PAYMENTS_DATA_DIR":                  t.TempDir(),
		"DATABASE_URL":                       "sqlite:///tmp/x.db",
		"JWT_SIGNING_KEY":                    randomKey(t),
		"JWT_SIGNING_KEYS":                   prev1 + " , " + prev2 + ",",
		"STRIPE_WEBHOOK_SECRET":              "whsec_" + randomKey(t),
		"PAYMENTS_GATEWAY":                   "STRIPE",
		"STRIPE_SECRET_KEY":                  "sk_test_123",
		"PAYMENTS_TRUSTED_PROXIES":           "10.0.0.0/8, 192.168.1.7,::1",
		"PAYMENTS_PASSWORD_HASH_CONCURRENCY": "6",
		"DATABASE_MAX_OPEN_CONNS":            "40",
		"DATABASE_MAX_IDLE_CONNS":            "7",
		"DATABASE_CONN_MAX_LIFETIME":         "30m",
		"DATABASE_CONN_MAX_IDLE_TIME":        "90s",
		"PAYMENTS_DISPUTE_RESPONSE_WINDOW":   "240h",
		"PAYMENTS_DISPUTE_REMINDERS":         "96h, 48h,2h",
		"PAYMENTS_WORKER_STOP_TIMEOUT":       "45s",
		"TEMPORAL_API_KEY":                   "tmprl-key",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway != GatewayStripe || c.AllowSandbox {
		t.Errorf("gateway %q, allow sandbox %v", c.Gateway, c.AllowSandbox)
	}
	if len(c.JWTPreviousKeys) != 2 || string(c.JWTPreviousKeys[0]) != prev1 || string(c.JWTPreviousKeys[1]) != prev2 {
		t.Errorf("previous keys: %q", c.JWTPreviousKeys)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("::1/128")}
	if len(c.TrustedProxies) != len(want) {
		t.Fatalf("trusted proxies %v, want %v", c.TrustedProxies, want)
	}
	for i := range want {
		if c.TrustedProxies[i] != want[i] {
			t.Errorf("trusted proxy %d = %v, want %v", i, c.TrustedProxies[i], want[i])
		}
	}
	if c.WorkerStopTimeout != 45*time.Second || c.TemporalAPIKey != "tmprl-key" {
		t.Errorf("worker stop timeout %v, Temporal API key %q", c.WorkerStopTimeout, c.TemporalAPIKey)
	}
	if c.PasswordHashConcurrency != 6 || c.DBMaxOpenConns != 40 || c.DBMaxIdleConns != 7 ||
		c.DBConnMaxLifetime != 30*time.Minute || c.DBConnMaxIdleTime != 90*time.Second {
		t.Errorf("parsed %d %d %d %v %v", c.PasswordHashConcurrency, c.DBMaxOpenConns, c.DBMaxIdleConns, c.DBConnMaxLifetime, c.DBConnMaxIdleTime)
	}
	if c.DisputeResponseWindow != 240*time.Hour || len(c.DisputeReminders) != 3 ||
		c.DisputeReminders[0] != 96*time.Hour || c.DisputeReminders[1] != 48*time.Hour || c.DisputeReminders[2] != 2*time.Hour {
		t.Errorf("dispute window %v, reminders %v", c.DisputeResponseWindow, c.DisputeReminders)
	}
}

// Disputes default to a 7-day window with reminders 72 h and 24 h before
// it; a window under an hour, and reminders that are not durations or not
// longest first, are refused by name.
func TestDisputeSettings(t *testing.T) {
	c, err := FromEnv(ModeDev, envOf(map[string]string{"PAYMENTS_DATA_DIR": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DisputeResponseWindow != 7*24*time.Hour || len(c.DisputeReminders) != 2 ||
		c.DisputeReminders[0] != 72*time.Hour || c.DisputeReminders[1] != 24*time.Hour || c.WorkerStopTimeout != 30*time.Second {
		t.Fatalf("defaults: window %v, reminders %v, worker stop timeout %v", c.DisputeResponseWindow, c.DisputeReminders, c.WorkerStopTimeout)
	}
	for _, bad := range []map[string]string{
		{"PAYMENTS_DISPUTE_RESPONSE_WINDOW": "59m"},
		{"PAYMENTS_DISPUTE_RESPONSE_WINDOW": "a week"},
		{"PAYMENTS_DISPUTE_REMINDERS": "24h,72h"},
		{"PAYMENTS_DISPUTE_REMINDERS": "72h,soon"},
		{"PAYMENTS_DISPUTE_REMINDERS": "-1h"},
		{"PAYMENTS_WORKER_STOP_TIMEOUT": "0s"},
		{"PAYMENTS_WORKER_STOP_TIMEOUT": "half a minute"},
	} {
		bad["PAYMENTS_DATA_DIR"] = t.TempDir()
		var name string
		for k := range bad {
			if k != "PAYMENTS_DATA_DIR" {
				name = k
			}
		}
		if _, err := FromEnv(ModeDev, envOf(bad)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, name)
		}
	}
}

func TestNotificationAndSessionSettings(t *testing.T) {
	dir := t.TempDir()
	c, err := FromEnv(ModeDev, envOf(map[string]string{"PAYMENTS_DATA_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	if c.RefreshReuseGrace != 10*time.Second || !c.WebhookAllowInsecure || c.MailFrom != "Payments <no-reply@payments.local>" {
		t.Fatalf("dev defaults: grace %v, insecure webhooks %v, from %q", c.RefreshReuseGrace, c.WebhookAllowInsecure, c.MailFrom)
	}
	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "30s": 30 * time.Second, "5m": 5 * time.Minute} {
		c, err := FromEnv(ModeDev, envOf(map[string]string{"PAYMENTS_DATA_DIR": dir, "PAYMENTS_REFRESH_REUSE_GRACE": v}))
		if err != nil || c.RefreshReuseGrace != want {
			t.Errorf("PAYMENTS_REFRESH_REUSE_GRACE=%s: %v %v, want %v", v, c.RefreshReuseGrace, err, want)
		}
	}
	for _, bad := range []map[string]string{
		{"PAYMENTS_REFRESH_REUSE_GRACE": "-1s"},
		{"PAYMENTS_REFRESH_REUSE_GRACE": "6m"},
		{"PAYMENTS_REFRESH_REUSE_GRACE": "soon"},
		{"PAYMENTS_WEBHOOK_ALLOW_INSECURE": "perhaps"},
	} {
		var name string
		for k := range bad {
			name = k
		}
		bad["PAYMENTS_DATA_DIR"] = dir
		if _, err := FromEnv(ModeDev, envOf(bad)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v, want an error naming %s", bad, err, name)
		}
	}
	c, err = FromEnv(ModeDev, envOf(map[string]string{"PAYMENTS_DATA_DIR": dir, "PAYMENTS_WEBHOOK_ALLOW_INSECURE": "false", "PAYMENTS_MAIL_FROM": "Shop <a@b.test>"}))
	if err != nil || c.WebhookAllowInsecure || c.MailFrom != "Shop <a@b.test>" {
		t.Fatalf("overrides: %v %v %q", err, c.WebhookAllowInsecure, c.MailFrom)
	}
}
