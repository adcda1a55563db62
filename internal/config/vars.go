package config

import (
	"fmt"
	"slices"
	"strings"
)

// Modes are the subcommands that read configuration, in the order help and
// README.md list them.
var Modes = []Mode{ModeDev, ModeServe, ModeWorker, ModeMigrate, ModeAdmin}

// Var is one environment variable: what it is called, what it defaults to in
// each mode, which modes require it and what it does. Vars is the one list of
// them: FromEnv takes the names and defaults it reads from it and refuses a
// start without the variables a mode requires, `paymentsd <command> --help`
// prints it, and a test holds README.md's configuration table to it.
type Var struct {
	Name string
	// Default is the value of the variable when it is unset or blank, in
	// every mode that reads it and has no entry in DefaultIn; "" is none.
	Default string
	// DefaultIn holds the defaults of the modes where they differ.
	DefaultIn map[Mode]string
	// Derived marks defaults that describe what FromEnv computes (a random
	// key kept in PAYMENTS_DATA_DIR, an address made of another variable)
	// rather than a value: FromEnv then starts from "" and computes it.
	Derived bool
	// Modes are the modes that read the variable; nil is every mode.
	Modes []Mode
	// Required are the modes that refuse to start without it.
	Required []Mode
	// Doc says in one line what the variable does; `code` in it is
	// Markdown, shown without the backquotes in help.
	Doc string
}

// The modes that read the same variables.
var (
	apiModes      = []Mode{ModeDev, ModeServe}
	temporalModes = []Mode{ModeDev, ModeServe, ModeWorker}
	workerModes   = []Mode{ModeDev, ModeWorker}
	deployed      = []Mode{ModeServe, ModeWorker}
)

// Vars are the environment variables of paymentsd, in the order of
// README.md's configuration table. To add one: a row here, the code in
// FromEnv that reads it (with get, which takes its default from here), and
// its row in README.md (TestREADMEConfigurationTable prints the row it
// expects).
var Vars = []Var{
	{Name: "PAYMENTS_HTTP_ADDR", Default: "127.0.0.1:8080", Modes: apiModes,
		Doc: "where the API listens (HTTP/1.1 and h2c; HTTPS with the next two)"},
	{Name: "PAYMENTS_TLS_CERT", Modes: apiModes,
		Doc: "PEM certificate file: serve HTTPS (HTTP/2 via ALPN), re-read when it changes; set with `PAYMENTS_TLS_KEY`"},
	{Name: "PAYMENTS_TLS_KEY", Modes: apiModes,
		Doc: "PEM private key file of `PAYMENTS_TLS_CERT`"},
	{Name: "PAYMENTS_ADMIN_ADDR", Default: "127.0.0.1:9090", Modes: deployed,
		Doc: "where `serve` and `worker` answer `GET /healthz` and `GET /readyz` for probes (a worker has no other port)"},
	{Name: "DATABASE_URL", DefaultIn: map[Mode]string{ModeDev: devDatabase, ModeMigrate: devDatabase, ModeAdmin: devDatabase},
		Derived: true, Required: deployed,
		Doc: "`mysql://user:pass@tcp(host:3306)/db`, or `sqlite://path`"},
	{Name: "TEMPORAL_ADDRESS", Default: "127.0.0.1:7233", Modes: temporalModes,
		Doc: "the Temporal frontend, host:port (dev starts a dev server there unless one listens)"},
	{Name: "TEMPORAL_NAMESPACE", Default: "default", Modes: temporalModes,
		Doc: "the Temporal namespace"},
	{Name: "TEMPORAL_API_KEY", Modes: temporalModes,
		Doc: "an API key of Temporal Cloud (or of a server that takes them): sent with every call, over TLS"},
	{Name: "TEMPORAL_UI_URL", Default: "http://127.0.0.1:8233", Modes: temporalModes,
		Doc: "the Temporal UI, for links to workflows; also the dev server's UI port"},
	{Name: "PAYMENTS_TEMPORAL_CLI", Default: "`bin/temporal` up to the module root, else `temporal` on `PATH`", Derived: true,
		Modes: []Mode{ModeDev}, Doc: "the Temporal CLI that runs the dev server (`make dev` builds `bin/temporal`)"},
	{Name: "PAYMENTS_DATA_DIR", Default: ".data", Modes: []Mode{ModeDev, ModeWorker, ModeMigrate, ModeAdmin},
		Doc: "local state: the dev database, Temporal dev server and keys, emails written as files"},
	{Name: "DATABASE_MAX_OPEN_CONNS", Default: "20",
		Doc: "connections of one process; keep their sum over all processes under the server's `max_connections`"},
	{Name: "DATABASE_MAX_IDLE_CONNS", Default: "10",
		Doc: "connections kept open while idle; at most `DATABASE_MAX_OPEN_CONNS`"},
	{Name: "DATABASE_CONN_MAX_LIFETIME", Default: "5m",
		Doc: "recycle a MySQL connection this long after it opened (before the server's `wait_timeout`)"},
	{Name: "DATABASE_CONN_MAX_IDLE_TIME", Default: "1m",
		Doc: "close a MySQL connection idle this long"},
	{Name: "PAYMENTS_WORKER_STOP_TIMEOUT", Default: "30s", Modes: workerModes,
		Doc: "on SIGTERM the worker stops polling and waits this long for running activities to finish; keep an orchestrator's grace period longer"},
	{Name: "PAYMENTS_TASK_QUEUE", Default: "payments", Modes: temporalModes,
		Doc: "the workers' Temporal task queue"},
	{Name: "PAYMENTS_PUBLIC_URL", Default: "`http://` and `PAYMENTS_HTTP_ADDR` (`https://` with TLS)", Derived: true, Modes: temporalModes,
		Doc: "how browsers reach the API (3-D Secure returns, links in email); `https://` behind a TLS-terminating proxy turns on HSTS and sends plain-HTTP browsers to it"},
	{Name: "PAYMENTS_CORS_ORIGINS", Modes: apiModes,
		Doc: "comma-separated origins (`https://shop.example`) whose pages may call the API from a browser; none by default"},
	{Name: "JWT_SIGNING_KEY", DefaultIn: map[Mode]string{ModeDev: "random, kept in `PAYMENTS_DATA_DIR`"}, Derived: true,
		Modes: temporalModes, Required: deployed,
		Doc: "signs access tokens and seals webhook secrets: 32 random bytes or more (`openssl rand -base64 32`)"},
	{Name: "JWT_SIGNING_KEYS", Modes: apiModes,
		Doc: "previous signing keys, comma-separated: they verify access tokens, never sign (key rotation)"},
	{Name: "PAYMENTS_JWT_ISSUER", Default: "paymentsd", Modes: apiModes,
		Doc: "the access tokens' issuer"},
	{Name: "PAYMENTS_JWT_AUDIENCE", Default: "payments-api", Modes: apiModes,
		Doc: "the access tokens' audience"},
	{Name: "PAYMENTS_ACCESS_TOKEN_TTL", Default: "15m", Modes: apiModes,
		Doc: "how long an access token lasts"},
	{Name: "PAYMENTS_REFRESH_TOKEN_TTL", Default: "720h", Modes: apiModes,
		Doc: "how long a refresh token lasts"},
	{Name: "PAYMENTS_REFRESH_REUSE_GRACE", Default: "10s", Modes: apiModes,
		Doc: "a refresh token presented again this soon after its rotation gets the same successor; `0s` off, at most `5m`"},
	{Name: "PAYMENTS_CLOSED_ACCOUNT_RETENTION", Default: "90d", Modes: workerModes,
		Doc: "how long a closed account keeps its name and email (`d` for days, or a Go duration; at least `1h`)"},
	{Name: "PAYMENTS_REQUIRE_VERIFIED_MERCHANTS", Default: "false", Modes: apiModes,
		Doc: "`true` refuses payments to merchants whose email is not verified"},
	{Name: "PAYMENTS_TRUSTED_PROXIES", Modes: apiModes,
		Doc: "comma-separated IPs or CIDRs whose `X-Forwarded-For` names the client, for the login limits"},
	{Name: "PAYMENTS_PASSWORD_HASH_CONCURRENCY", Default: "0", Modes: apiModes,
		Doc: "most password hashes computed at once; `0` sizes it from CPUs and memory"},
	{Name: "PAYMENTS_DISPUTE_RESPONSE_WINDOW", Default: "168h", Modes: apiModes,
		Doc: "how long the respondent of a dispute opened on the platform has to respond (at least `1h`)"},
	{Name: "PAYMENTS_DISPUTE_REMINDERS", Default: "72h,24h", Modes: apiModes,
		Doc: "when, before that deadline, the respondent is reminded (longest first)"},
	{Name: "PAYMENTS_LOG_LEVEL", Default: "info", Modes: temporalModes,
		Doc: "`debug`, `info`, `warn` or `error`"},
	{Name: "PAYMENTS_GATEWAY", DefaultIn: map[Mode]string{ModeDev: GatewaySandbox}, Modes: temporalModes, Required: deployed,
		Doc: "the payment gateway: `stripe`, or `sandbox` (outside dev only with `PAYMENTS_ALLOW_SANDBOX=true`)"},
	{Name: "PAYMENTS_ALLOW_SANDBOX", Default: "false", Modes: deployed,
		Doc: "`true` lets serve and worker run the sandbox gateway, which moves no real money (a demo)"},
	{Name: "PAYMENTS_SANDBOX_FAULTS", Modes: workerModes,
		Doc: "for the chaos suite: `error_before=<p>,timeout_after=<p>` make the sandbox fail calls on purpose"},
	{Name: "STRIPE_SECRET_KEY", Modes: temporalModes,
		Doc: "required with `PAYMENTS_GATEWAY=stripe`: `sk_live_...`, or `sk_test_...` for Stripe's test mode"},
	{Name: "STRIPE_WEBHOOK_SECRET", DefaultIn: map[Mode]string{ModeDev: "random, kept in `PAYMENTS_DATA_DIR`"}, Derived: true,
		Modes: temporalModes, Required: deployed,
		Doc: "verifies `POST /webhooks/stripe` (the sandbox signs with it): `whsec_...`"},
	{Name: "STRIPE_API_BASE", Modes: temporalModes,
		Doc: "point stripe-go elsewhere (stripe-mock)"},
	{Name: "SMTP_URL", Modes: workerModes,
		Doc: "`smtp://[user:password@]host:port` or `smtps://...`; unset, emails are `.eml` files under `PAYMENTS_DATA_DIR/mail`"},
	{Name: "PAYMENTS_MAIL_FROM", Default: "Payments <no-reply@payments.local>", Modes: workerModes,
		Doc: "the emails' sender"},
	{Name: "PAYMENTS_WEBHOOK_ALLOW_INSECURE", Default: "false", DefaultIn: map[Mode]string{ModeDev: "true"}, Modes: temporalModes,
		Doc: "allow webhook endpoints over http and on loopback or private addresses (never in production)"},
	{Name: "SENTRY_DSN", Modes: temporalModes,
		Doc: "validated (an http or https URL), reserved for error reporting"},
	{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Modes: temporalModes,
		Doc: "validated (an http or https URL), reserved for tracing"},
}

// devDatabase describes the SQLite database dev, migrate and admin default to.
const devDatabase = "SQLite `PAYMENTS_DATA_DIR/payments.db`"

// LookupVar returns the variable called name.
func LookupVar(name string) (Var, bool) {
	for _, v := range Vars {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}

// varNamed returns the variable called name. FromEnv reads no other: a
// name missing from Vars, which TestFromEnvReadsVars catches, reads as a
// variable without a default.
func varNamed(name string) Var {
	if v, ok := LookupVar(name); ok {
		return v
	}
	return Var{Name: name}
}

// ReadIn reports whether mode reads the variable.
func (v Var) ReadIn(mode Mode) bool {
	return v.Modes == nil || slices.Contains(v.Modes, mode)
}

// RequiredIn reports whether mode refuses to start without the variable.
func (v Var) RequiredIn(mode Mode) bool { return slices.Contains(v.Required, mode) }

// DefaultFor is the default in mode ("" for none), as Default and
// DefaultIn say: a value, or when Derived a description.
func (v Var) DefaultFor(mode Mode) string {
	if d, ok := v.DefaultIn[mode]; ok {
		return d
	}
	return v.Default
}

// value is what FromEnv takes for the variable unset in mode: its default,
// or "" when the default is computed.
func (v Var) value(mode Mode) string {
	if v.Derived {
		return ""
	}
	return v.DefaultFor(mode)
}

// DefaultText is the variable's default in every mode that reads it, as
// README.md's table shows it: "`x`" when it is the same everywhere,
// "`x` in dev, `y` in serve and worker" when it differs, "" when there is
// none.
func (v Var) DefaultText() string {
	var order []string
	modes := map[string][]Mode{}
	for _, m := range Modes {
		if !v.ReadIn(m) {
			continue
		}
		d := v.DefaultFor(m)
		if d == "" {
			continue
		}
		if !v.Derived {
			d = "`" + d + "`"
		}
		if _, ok := modes[d]; !ok {
			order = append(order, d)
		}
		modes[d] = append(modes[d], m)
	}
	if len(order) == 1 && len(modes[order[0]]) == len(v.readers()) {
		return order[0]
	}
	parts := make([]string, len(order))
	for i, d := range order {
		parts[i] = d + " in " + joinModes(modes[d])
	}
	return strings.Join(parts, ", ")
}

// RequiredText is the modes that require the variable, as README.md's
// table shows them ("serve, worker"), "" for none.
func (v Var) RequiredText() string {
	names := make([]string, len(v.Required))
	for i, m := range v.Required {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

// readers are the modes that read the variable.
func (v Var) readers() []Mode {
	var out []Mode
	for _, m := range Modes {
		if v.ReadIn(m) {
			out = append(out, m)
		}
	}
	return out
}

// VarsOf returns the variables mode reads, in the order of Vars.
func VarsOf(mode Mode) []Var { return varsWhere(func(v Var) bool { return v.ReadIn(mode) }) }

// Required returns the variables mode refuses to start without.
func Required(mode Mode) []Var { return varsWhere(func(v Var) bool { return v.RequiredIn(mode) }) }

// varsWhere returns the variables keep keeps, in the order of Vars.
func varsWhere(keep func(Var) bool) []Var {
	var out []Var
	for _, v := range Vars {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// RequiredSentence lists the variables mode requires in a sentence
// ("`A`, `B` and `C`"), with Markdown quotes; "" when it requires none.
func RequiredSentence(mode Mode) string {
	var names []string
	for _, v := range Required(mode) {
		names = append(names, "`"+v.Name+"`")
	}
	return andList(names)
}

// joinModes names modes in a sentence: "dev, migrate and admin".
func joinModes(modes []Mode) string {
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = string(m)
	}
	return andList(names)
}

// andList joins words as a sentence does: "a", "a and b", "a, b and c".
func andList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// requiredSummary lists, after the refusal of a start without a variable
// mode requires (Config.Validate names each one), all the variables it
// requires, as `--help` and README.md do; nil when they are all set.
func requiredSummary(mode Mode, getenv func(string) string) error {
	for _, v := range Required(mode) {
		if strings.TrimSpace(getenv(v.Name)) == "" {
			return fmt.Errorf("paymentsd %s requires %s; paymentsd %s --help lists every variable it reads",
				mode, Plain(RequiredSentence(mode)), mode)
		}
	}
	return nil
}

// required is the refusal of a start without the variable name, in the
// words of Vars.
func (c Config) required(name string) string {
	return fmt.Sprintf("%s: required by %s: %s", name, c.Mode, Plain(varNamed(name).Doc))
}

// Plain drops the Markdown backquotes of a text, for a terminal.
func Plain(s string) string { return strings.ReplaceAll(s, "`", "") }
