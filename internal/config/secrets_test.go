package config

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// serveEnv is a valid serve configuration with random secrets, for tests
// that change one variable.
func serveEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"PAYMENTS_DATA_DIR":      t.TempDir(),
		"DATABASE_URL":           "mysql://u:p@tcp(127.0.0.1:3306)/db",
		"JWT_SIGNING_KEY":        randomKey(t),
		"STRIPE_WEBHOOK_SECRET":  "whsec_" + randomKey(t),
		"PAYMENTS_GATEWAY":       GatewaySandbox,
		"PAYMENTS_ALLOW_SANDBOX": "true",
	}
}

// wantRefused asserts that mode refuses value in variable name, with a
// message that names the variable and how to make a good one, and never
// repeats the value.
func wantRefused(t *testing.T, mode Mode, name, value string) {
	t.Helper()
	env := serveEnv(t)
	env[name] = value
	_, err := FromEnv(mode, envOf(env))
	if err == nil {
		t.Fatalf("%s %s=%q accepted", mode, name, value)
	}
	msg := err.Error()
	if !strings.Contains(msg, name+":") && !strings.Contains(msg, name+" (") {
		t.Errorf("%s=%q: error %q does not name the variable", name, value, msg)
	}
	if !strings.Contains(msg, "openssl rand -base64 32") {
		t.Errorf("%s=%q: error %q does not say how to generate one", name, value, msg)
	}
	if len(value) >= 8 && strings.Contains(msg, value) {
		t.Errorf("%s: error repeats the secret: %q", name, msg)
	}
}

func TestPlaceholderSecretsAreRefused(t *testing.T) {
	weak := map[string]string{
		"a known example":          "change-me-to-at-least-32-random-bytes-please",
		"one letter":               strings.Repeat("k", 40),
		"two letters":              strings.Repeat("ab", 20),
		"a repeated word":          strings.Repeat("payments", 5),
		"placeholder word":         "ThisIsMyPlaceholderKeyForProduction2024!",
		"your key here":            "8f3Jq-your-Zm1Lx0pW9vB7nC4tR6yU2eA5sD",
		"a todo":                   "todo/9fJ2mQ7xL1pW8vB3nC6tR0yU4eA5sDkH",
		"digits counted up":        "0123456789012345678901234567890123456789",
		"a long run":               "Zm9vYmFy0000000000cXV4LWJhei1xdXV4LWJh",
		"few distinct characters":  "abcdabcdabceabcdabcdabcfabcdabcdabcgabcd",
		"a sequence of letters":    "xQ9abcdefghijkLm2Rt7Vw4Yz1Nb8Kc5Hd3Gf6Jp",
		"secret spelt in capitals": "MYSECRETVALUEFORJWTSIGNINGINPRODUCTIONXY",
	}
	for name, value := range weak {
		t.Run("JWT_SIGNING_KEY "+name, func(t *testing.T) {
			wantRefused(t, ModeServe, "JWT_SIGNING_KEY", value)
		})
		t.Run("JWT_SIGNING_KEYS "+name, func(t *testing.T) {
			wantRefused(t, ModeServe, "JWT_SIGNING_KEYS", randomKey(t)+","+value)
		})
		t.Run("STRIPE_WEBHOOK_SECRET "+name, func(t *testing.T) {
			wantRefused(t, ModeServe, "STRIPE_WEBHOOK_SECRET", "whsec_"+value)
			wantRefused(t, ModeWorker, "STRIPE_WEBHOOK_SECRET", "whsec_"+value)
		})
	}
	t.Run("webhook secret that is only a prefix and a word", func(t *testing.T) {
		wantRefused(t, ModeServe, "STRIPE_WEBHOOK_SECRET", "whsec_change-me")
	})
	t.Run("short previous key", func(t *testing.T) {
		wantRefused(t, ModeServe, "JWT_SIGNING_KEYS", "short")
	})
}

func TestPlaceholderSecretsAreAllowedInDev(t *testing.T) {
	env := serveEnv(t)
	env["JWT_SIGNING_KEY"] = "change-me-to-at-least-32-random-bytes-please"
	env["STRIPE_WEBHOOK_SECRET"] = "whsec_change-me-to-random-bytes"
	if _, err := FromEnv(ModeDev, envOf(env)); err != nil {
		t.Fatalf("dev refused an example secret: %v", err)
	}
}

// TestRandomSecretsAreAccepted draws many keys of the shapes operators
// generate, so a check that refuses real keys by chance shows here. The
// draws come from a seeded generator: the test is the same every run.
func TestRandomSecretsAreAccepted(t *testing.T) {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	shapes := map[string]func([]byte) string{
		"openssl rand -base64 32": base64.StdEncoding.EncodeToString,
		"openssl rand -hex 32":    hex.EncodeToString,
		"base64url of 48 bytes (paymentsd dev)": func(b []byte) string {
			return base64.RawURLEncoding.EncodeToString(append(b, b[:16]...))
		},
		"whsec_ and 32 alphanumerics (Stripe)": func(b []byte) string {
			out := make([]byte, 32)
			for i := range out {
				out[i] = alnum[int(b[i])%len(alnum)]
			}
			return "whsec_" + string(out)
		},
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			var seed [32]byte
			copy(seed[:], name)
			rng := mrand.NewChaCha8(seed)
			for range 5000 {
				b := make([]byte, 32)
				_, _ = rng.Read(b)
				if key := shape(b); weakSecret(key) != "" {
					t.Fatalf("random key %q refused: %s", key, weakSecret(key))
				}
			}
		})
	}
	env := serveEnv(t)
	env["JWT_SIGNING_KEYS"] = randomKey(t) + "," + randomKey(t)
	if _, err := FromEnv(ModeServe, envOf(env)); err != nil {
		t.Fatalf("serve with random keys: %v", err)
	}
}

// secretVars are the variables whose example values must be refused.
var secretVars = []string{"JWT_SIGNING_KEY", "JWT_SIGNING_KEYS", "STRIPE_WEBHOOK_SECRET"}

var (
	// NAME: value, NAME=value, "NAME": "value" (YAML, .env, shell, JSON).
	assignRe = regexp.MustCompile(`\b(JWT_SIGNING_KEYS|JWT_SIGNING_KEY|STRIPE_WEBHOOK_SECRET)\b["']?\s*[:=]\s*(.*)$`)
	// { name: NAME, value: "..." } (Kubernetes env entries on one line).
	inlineEnvRe = regexp.MustCompile(`name:\s*["']?(JWT_SIGNING_KEYS|JWT_SIGNING_KEY|STRIPE_WEBHOOK_SECRET)["']?\s*,\s*value:\s*(.*)$`)
	// - name: NAME on one line, value: ... on a following one.
	nameLineRe  = regexp.MustCompile(`name:\s*["']?(JWT_SIGNING_KEYS|JWT_SIGNING_KEY|STRIPE_WEBHOOK_SECRET)["']?\s*$`)
	valueLineRe = regexp.MustCompile(`^\s*value:\s*(.*)$`)
)

// literal cuts the value at the start of rest: a quoted string, or up to
// white space, a comment or the end of a YAML flow mapping.
func literal(rest string) string {
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return ""
	}
	if q := rest[0]; q == '"' || q == '\'' || q == '`' {
		if end := strings.IndexByte(rest[1:], q); end >= 0 {
			return rest[1 : 1+end]
		}
		return rest[1:]
	}
	if i := strings.IndexAny(rest, " \t#}`|"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

type exampleSecret struct {
	file, name, value string
	line              int
}

// exampleFiles are the files of the repository that show configuration:
// docker-compose files, deploy/, README.md and docs/, and .env examples
// (never .env itself, which holds a developer's real settings and is not
// committed).
func exampleFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if d.IsDir() {
			switch name {
			case ".git", "bin", ".data", ".proto-deps", "node_modules", "vendor", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		lower := strings.ToLower(name)
		switch {
		case rel == "README.md",
			strings.HasPrefix(rel, "deploy/"),
			strings.HasPrefix(rel, "docs/") && strings.HasSuffix(lower, ".md"),
			strings.HasPrefix(lower, "docker-compose") || strings.HasPrefix(lower, "compose."),
			strings.Contains(lower, ".env") && lower != ".env" &&
				(strings.Contains(lower, "example") || strings.Contains(lower, "sample") ||
					strings.Contains(lower, "template") || strings.Contains(lower, "dist")):
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk the repository: %v", err)
	}
	return out
}

// exampleSecrets finds every value the repository gives one of secretVars.
func exampleSecrets(t *testing.T, root string) []exampleSecret {
	t.Helper()
	var out []exampleSecret
	for _, path := range exampleFiles(t, root) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		pending, pendingFor := "", 0 // a "name:" line waiting for its "value:"
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			add := func(name, raw string) {
				v := literal(raw)
				values := []string{v}
				if name == "JWT_SIGNING_KEYS" {
					values = strings.Split(v, ",")
				}
				for _, v := range values {
					// Empty, or filled in by a shell or compose: not an example value.
					if v = strings.TrimSpace(v); v != "" && !strings.HasPrefix(v, "$") {
						out = append(out, exampleSecret{file: filepath.ToSlash(rel), line: n, name: name, value: v})
					}
				}
			}
			switch {
			case inlineEnvRe.MatchString(line):
				m := inlineEnvRe.FindStringSubmatch(line)
				add(m[1], m[2])
			case assignRe.MatchString(line):
				m := assignRe.FindStringSubmatch(line)
				add(m[1], m[2])
			case nameLineRe.MatchString(line):
				pending, pendingFor = nameLineRe.FindStringSubmatch(line)[1], 2
				continue
			case pending != "" && valueLineRe.MatchString(line):
				add(pending, valueLineRe.FindStringSubmatch(line)[1])
			}
			if pendingFor--; pendingFor <= 0 {
				pending = ""
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		f.Close()
	}
	return out
}

// repoRoot is the directory of go.mod above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestRepositoryExampleSecretsAreRefused reads every example value of the
// signing secrets in the repository and asserts that serve (and, for the
// webhook secret, worker) refuses each one: whatever the repository shows is
// public, so a deployment that copied it must not start. Adding an example
// that config does not refuse fails here.
func TestRepositoryExampleSecretsAreRefused(t *testing.T) {
	found := exampleSecrets(t, repoRoot(t))
	per := map[string]int{}
	for _, s := range found {
		per[s.name]++
		t.Run(s.file+":"+s.name, func(t *testing.T) {
			t.Logf("%s:%d %s=%q", s.file, s.line, s.name, s.value)
			wantRefused(t, ModeServe, s.name, s.value)
			if s.name == "STRIPE_WEBHOOK_SECRET" {
				wantRefused(t, ModeWorker, s.name, s.value)
			}
		})
	}
	// The scan must see the examples it exists for, or it proves nothing.
	for _, name := range []string{"JWT_SIGNING_KEY", "STRIPE_WEBHOOK_SECRET"} {
		if per[name] < 2 {
			t.Errorf("found %d example values of %s in docker-compose.yml, deploy/ and README.md, want at least 2 (is the scan broken?)", per[name], name)
		}
	}
}

// TestExampleScanFindsEveryShape checks the scanner on the shapes examples
// take, so a value written another way is not silently skipped.
func TestExampleScanFindsEveryShape(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"docker-compose.yml":  "    environment:\n      JWT_SIGNING_KEY: compose-key # comment\n      STRIPE_WEBHOOK_SECRET: \"whsec_quoted\"\n",
		"deploy/k8s/a.yaml":   "  env:\n    - { name: JWT_SIGNING_KEY, value: \"inline-key\" }\n    - name: STRIPE_WEBHOOK_SECRET\n      value: whsec_two_lines\n",
		"README.md":           "| `JWT_SIGNING_KEY` | random |\n\n    export JWT_SIGNING_KEYS=old-one,old-two\n    JWT_SIGNING_KEY=$(openssl rand -base64 32)\n",
		"deploy/.env.example": "JWT_SIGNING_KEY='dotenv-key'\n",
		".env":                "JWT_SIGNING_KEY=a-developers-real-key\n",
		"docs/OPS.md":         "set `STRIPE_WEBHOOK_SECRET=whsec_docs` first\n",
	}
	for name, body := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for _, s := range exampleSecrets(t, root) {
		got[s.name+"="+s.value] = true
	}
	want := []string{
		"JWT_SIGNING_KEY=compose-key", "STRIPE_WEBHOOK_SECRET=whsec_quoted",
		"JWT_SIGNING_KEY=inline-key", "STRIPE_WEBHOOK_SECRET=whsec_two_lines",
		"JWT_SIGNING_KEYS=old-one", "JWT_SIGNING_KEYS=old-two",
		"JWT_SIGNING_KEY=dotenv-key", "STRIPE_WEBHOOK_SECRET=whsec_docs",
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("scan missed %s; found %v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("scan found %d values, want %d: %v", len(got), len(want), got)
	}
}
