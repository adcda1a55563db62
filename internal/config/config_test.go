package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if c.GatewayName() != "sandbox" {
		t.Fatalf("gateway %q", c.GatewayName())
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

func TestValidationNamesTheVariable(t *testing.T) {
	goodServe := map[string]string{
		"DATABASE_URL":          "mysql://u:p@tcp(127.0.0.1:3306)/db",
		"JWT_SIGNING_KEY":       strings.Repeat("k", 32),
		"STRIPE_WEBHOOK_SECRET": "whsec_" + strings.Repeat("w", 24),
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
		{"worker needs no signing key", ModeWorker, map[string]string{"JWT_SIGNING_KEY": ""}, nil},
		{"serve without webhook secret", ModeServe, map[string]string{"STRIPE_WEBHOOK_SECRET": ""}, []string{"STRIPE_WEBHOOK_SECRET", "required"}},
		{"worker without webhook secret", ModeWorker, map[string]string{"STRIPE_WEBHOOK_SECRET": ""}, []string{"STRIPE_WEBHOOK_SECRET"}},
		{"short webhook secret", ModeServe, map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_x"}, []string{"STRIPE_WEBHOOK_SECRET", "too short"}},
		{"two problems at once", ModeServe, map[string]string{"JWT_SIGNING_KEY": "", "DATABASE_URL": ""}, []string{"JWT_SIGNING_KEY", "DATABASE_URL"}},
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
