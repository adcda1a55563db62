package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/config"
	"github.com/payments-platform/payments/internal/devserver"
	"github.com/payments-platform/payments/internal/platform"
	"github.com/payments-platform/payments/internal/store"
)

// runDev runs the whole platform in one process on embedded defaults.
func runDev(ctx context.Context, args []string, e env) error {
	if err := noArgs(cmdDev, args, e); err != nil {
		return err
	}
	cfg, err := config.FromEnv(config.ModeDev, e.getenv)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, false, cfg.LogLevel)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("PAYMENTS_DATA_DIR: %w", err)
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	uiURL := cfg.TemporalUIURL
	if devserver.Listening(ctx, cfg.TemporalAddress) {
		log.Info("using the Temporal server already listening", "address", cfg.TemporalAddress)
	} else {
		logPath := filepath.Join(cfg.DataDir, "temporal.log")
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("PAYMENTS_DATA_DIR: %w", err)
		}
		defer logFile.Close()
		log.Info("starting the Temporal dev server", "address", cfg.TemporalAddress, "log", logPath)
		srv, err := devserver.Start(ctx, devserver.Options{
			Address:   cfg.TemporalAddress,
			UIPort:    uiPort(cfg.TemporalUIURL),
			DBFile:    filepath.Join(cfg.DataDir, "temporal.db"),
			Namespace: cfg.TemporalNamespace,
			// Registered at launch so the first payment can use them at once.
			SearchAttributes: platform.SearchAttributeTypes(),
			DynamicConfig:    devserver.SingleWorkerConfig,
			Log:              logFile,
			Logger:           log,
		})
		if err != nil {
			return fmt.Errorf("temporal dev server: %w", err)
		}
		defer func() {
			stopCtx, stopCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer stopCancel()
			if err := srv.Stop(stopCtx); err != nil {
				log.Warn("stopping the Temporal dev server", "err", err)
			}
		}()
		go func() {
			select {
			case <-srv.Done():
				cancel(errors.New("the Temporal dev server exited; see " + logPath))
			case <-ctx.Done():
			}
		}()
		if u := srv.UIURL(); u != "" {
			uiURL = u
		}
	}

	tc, stop, err := runTemporalWorker(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	defer stop()

	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	apiURL := scheme(cfg) + "://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "\npaymentsd dev is running (Ctrl-C to stop)\n  API:          %s\n  Temporal UI:  %s\n  Temporal:     %s (namespace %s)\n  Database:     %s\n\n",
		apiURL, uiURL, cfg.TemporalAddress, cfg.TemporalNamespace, config.Redact(cfg.DatabaseURL))
	server, err := newAPI(cfg, st, tc, log)
	if err != nil {
		return err
	}
	srv := api.HTTPServer(cfg.HTTPAddr, server.Handler(), log)
	err = api.Serve(ctx, srv, ln, cfg.TLSCert, cfg.TLSKey, drainTimeout, log)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	log.Info("stopped")
	return err
}

// uiPort is the port of TEMPORAL_UI_URL (8233 when it has none).
func uiPort(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 8233
	}
	if _, p, err := net.SplitHostPort(u.Host); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
	}
	return 8233
}

// setup is the common start of serve, worker and migrate: no arguments,
// configuration of cmd's mode, a JSON logger and an open store.
func setup(ctx context.Context, cmd command, args []string, e env) (config.Config, *slog.Logger, *store.Store, error) {
	if err := noArgs(cmd, args, e); err != nil {
		return config.Config{}, nil, nil, err
	}
	cfg, err := config.FromEnv(cmd.mode, e.getenv)
	if err != nil {
		return cfg, nil, nil, err
	}
	log := newLogger(e.stderr, true, cfg.LogLevel)
	st, err := openStore(ctx, cfg)
	return cfg, log, st, err
}

// runServe runs the API alone. Temporal is dialled lazily so that the API
// starts during a Temporal outage and /readyz reports it.
func runServe(ctx context.Context, args []string, e env) error {
	cfg, log, st, err := setup(ctx, cmdServe, args, e)
	if err != nil {
		return err
	}
	defer st.Close()
	tc, err := client.NewLazyClient(temporalOptions(cfg, log))
	if err != nil {
		return fmt.Errorf("TEMPORAL_ADDRESS: %w", err)
	}
	defer tc.Close()
	ln, err := listen(cfg.HTTPAddr)
	if err != nil {
		return err
	}
	log.Info("serving the API", "address", ln.Addr().String(), "tls", cfg.TLSCert != "")
	server, err := newAPI(cfg, st, tc, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	adminDone, err := startAdmin(ctx, cfg, readinessChecks(st, tc), log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer adminDone()
	srv := api.HTTPServer(cfg.HTTPAddr, server.Handler(), log)
	err = api.Serve(ctx, srv, ln, cfg.TLSCert, cfg.TLSKey, drainTimeout, log)
	cancel()
	return err
}

// runWorker runs the Temporal worker alone until interrupted.
func runWorker(ctx context.Context, args []string, e env) error {
	cfg, log, st, err := setup(ctx, cmdWorker, args, e)
	if err != nil {
		return err
	}
	defer st.Close()
	tc, stop, err := runTemporalWorker(ctx, cfg, st, log)
	if err != nil {
		return err
	}
	adminCtx, cancelAdmin := context.WithCancel(context.WithoutCancel(ctx))
	adminDone, err := startAdmin(adminCtx, cfg, readinessChecks(st, tc), log)
	if err != nil {
		cancelAdmin()
		stop()
		return err
	}
	log.Info("worker running", "task_queue", cfg.TemporalTaskQueue, "namespace", cfg.TemporalNamespace)
	<-ctx.Done()
	// The probes answer while the worker drains.
	stop()
	cancelAdmin()
	adminDone()
	return nil
}

// runMigrate creates or updates the schema.
func runMigrate(ctx context.Context, args []string, e env) error {
	cfg, _, st, err := setup(ctx, cmdMigrate, args, e)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	n, err := st.BackfillHistory(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	fmt.Fprintf(e.stdout, "schema of %s is up to date\n", config.Redact(cfg.DatabaseURL))
	if n > 0 {
		fmt.Fprintf(e.stdout, "transaction history backfilled for %d payments, refunds and disputes\n", n)
	}
	return nil
}

// runAdmin handles `admin create --email E --password-stdin`; `admin
// --help` is the help of `admin create`, its only subcommand.
func runAdmin(ctx context.Context, args []string, e env) error {
	cmd := cmdAdminCreate
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	email := fs.String("email", "", "the admin's `email` address (required)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input (required)")
	name := fs.String("display-name", "", "the admin's display `name`")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		return parseFlags(cmd, fs, args[:1], e)
	}
	if len(args) == 0 || args[0] != "create" {
		return usageError{errors.New("want: admin create --email E --password-stdin")}
	}
	if err := parseFlags(cmd, fs, args[1:], e); err != nil {
		return err
	}
	if *email == "" || !*fromStdin {
		return usageError{errors.New("want: admin create --email E --password-stdin")}
	}
	addr, err := mail.ParseAddress(*email)
	if err != nil || addr.Address != strings.TrimSpace(*email) {
		return usageError{fmt.Errorf("--email: %q is not a valid email address", *email)}
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if len([]rune(password)) < 12 {
		return usageError{errors.New("the password must be at least 12 characters")}
	}
	cfg, err := config.FromEnv(config.ModeAdmin, e.getenv)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Mode == config.ModeAdmin && strings.HasPrefix(cfg.DatabaseURL, "sqlite://") {
		if err := st.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	hash, err := auth.HashPassword(password, auth.DefaultPasswordParams)
	if err != nil {
		return err
	}
	acct, err := st.CreateAccount(ctx, store.NewAccount{
		Email: addr.Address, PasswordHash: hash, Role: account.RoleAdmin, DisplayName: *name, DefaultCurrency: "USD",
		// The operator vouches for the address.
		EmailVerified: true,
		Records:       store.Records{Audits: []store.Audit{{Type: store.AuditAdminCreated, Detail: map[string]string{"by": "paymentsd admin create"}}}},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "created admin %s (%s)\n", acct.ID, acct.Email)
	return nil
}

// runProbe GETs a health URL: exit 0 on 2xx, 1 otherwise (a container's
// health check in an image without a shell).
func runProbe(ctx context.Context, args []string, e env) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		return noArgs(cmdProbe, args, e)
	}
	if len(args) != 1 {
		return usageError{errors.New("want: probe URL")}
	}
	u, err := url.Parse(args[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Errorf("%q is not an http(s) URL", args[0])}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s: %s", u, res.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(e.stdout, "%s %s\n", res.Status, strings.TrimSpace(string(body)))
	return nil
}
