// Package devserver runs a local Temporal development server (the
// `temporal server start-dev` command of the Temporal CLI) as a child
// process. It is used by `paymentsd dev` and by the integration tests.
//
// The child runs in its own process group and, on Linux, is killed by the
// kernel if the parent dies, so it never outlives the process that started it.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/payments-platform/payments/internal/tools"
)

// EnvCLI is the environment variable that, when set, names the temporal CLI
// binary Find returns.
const EnvCLI = "PAYMENTS_TEMPORAL_CLI"

// InstallHint tells a developer how to get the temporal CLI. It is part of
// the error Find returns when the binary is missing.
const InstallHint = "run `make tools` (or `make dev`) in the repository root to install it as bin/temporal " +
	"(GOBIN=$PWD/bin go install github.com/temporalio/cli/cmd/temporal@v1.5.1), " +
	"or set " + EnvCLI + " to the path of a temporal CLI"

const (
	// DefaultAddress is the frontend address used when Options.Address is empty.
	DefaultAddress = "127.0.0.1:7233"
	// DefaultStartTimeout is used when Options.StartTimeout is zero.
	DefaultStartTimeout = 60 * time.Second

	// childLogLevel keeps the dev server quiet: it still prints the reason
	// it fails to start (port in use, bad flag value, ...).
	childLogLevel = "error"
	// pollInterval is the pause between two readiness probes.
	pollInterval = 100 * time.Millisecond
	// probeTimeout bounds one readiness probe and one Listening call.
	probeTimeout = 2 * time.Second
	// tailLines is how many lines of child output are kept for errors.
	tailLines = 50
	// waitDelay bounds how long Wait waits for the output pipe to close
	// after the child exited (in case it left a descendant holding it).
	waitDelay = 5 * time.Second
)

// Options for Start.
type Options struct {
	// Binary is the path to the temporal CLI; "" means Find().
	Binary string
	// Address is the frontend gRPC host:port, e.g. "127.0.0.1:7233".
	// "" means DefaultAddress; an empty host means 127.0.0.1; port 0 means
	// a free port chosen by Start (see Server.Address).
	Address string
	// UIPort is the Web UI port (8233 in dev); 0 means headless (no UI).
	UIPort int
	// DBFile is the SQLite file for persistent state; "" keeps the state in
	// memory (lost when the server stops). Its parent directory is created.
	DBFile string
	// Namespace is created at launch if it is not "default". Start waits
	// until it is usable. "" means "default".
	Namespace string
	// SearchAttributes maps a search attribute name to its type (Text,
	// Keyword, Int, Double, Bool, Datetime, KeywordList); they are
	// registered at launch.
	SearchAttributes map[string]string
	// DynamicConfig are server settings (key = JSON value), passed as
	// --dynamic-config-value.
	DynamicConfig map[string]string
	// Log receives the child's stdout and stderr; nil discards them. The last
	// lines are always kept in memory and included in start errors.
	Log io.Writer
	// Logger receives this package's own log records; nil discards them.
	Logger *slog.Logger
	// StartTimeout bounds how long Start waits for the server to be ready;
	// 0 means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Server is a running Temporal dev server child process started by Start.
type Server struct {
	cmd       *exec.Cmd
	address   string
	uiURL     string
	namespace string
	log       *slog.Logger
	tail      *tailWriter

	done    chan struct{} // closed when the child has exited and been reaped
	waitErr error         // result of cmd.Wait; read only after done is closed

	termOnce sync.Once
	mu       sync.Mutex
	stopping bool // Stop was called; the exit is expected
}

// Find locates the temporal CLI: the file named by $PAYMENTS_TEMPORAL_CLI if
// set, else bin/temporal in the current directory or any parent up to (and
// including) the directory holding go.mod, else `temporal` on $PATH. The
// error explains how to install it.
func Find() (string, error) {
	p, err := tools.Find("temporal", EnvCLI, InstallHint)
	if err != nil {
		return "", fmt.Errorf("devserver: %w", err)
	}
	return p, nil
}

// Start launches `temporal server start-dev` as a child process and waits
// until its frontend answers a health check and the namespace (and the
// search attributes) are usable. If the child exits first, the error
// includes the last lines it printed. If ctx is done or StartTimeout
// expires, the child is killed and an error is returned.
//
// Start refuses to run if something already listens on the frontend
// address; use Listening to detect (and reuse) an already running server.
func Start(ctx context.Context, o Options) (*Server, error) {
	// The HTTP and metrics ports (and the frontend port when it is 0) are
	// picked free just before the child binds them; another process can take
	// one in between. A child that exits at once is retried a few times.
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		var s *Server
		if s, err = startOnce(ctx, o); err == nil || !errors.Is(err, errExitedEarly) || ctx.Err() != nil {
			return s, err
		}
		if o.Logger != nil {
			o.Logger.Warn("temporal dev server exited during start; retrying", "attempt", attempt, "err", err)
		}
	}
	return nil, err
}

// SingleWorkerConfig is dynamic config for a dev server with one worker: a
// single task queue partition, so a poll never waits on an empty partition
// while a task sits in another (seconds of added latency under load); and
// short long-polls: the dev server (1.29.1) sometimes stops handing tasks to
// polls that are already open after it aborted racing Workflow Updates and
// refused the worker's answer to a speculative workflow task ("Workflow task
// not found"), and tasks then wait until the open polls expire and are
// renewed, 60 s by default. Polls of 10 s bound that stall; they change
// nothing else.
var SingleWorkerConfig = map[string]string{
	"matching.numTaskqueueReadPartitions":  "1",
	"matching.numTaskqueueWritePartitions": "1",
	"matching.longPollExpirationInterval":  `"10s"`,
}

// startAttempts bounds Start's retries of a child that exits at once.
const startAttempts = 3

// errExitedEarly marks a child that exited before it was ready.
var errExitedEarly = errors.New("exited early")

func startOnce(ctx context.Context, o Options) (*Server, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	namespace := o.Namespace
	if namespace == "" {
		namespace = "default"
	}

	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = Find(); err != nil {
			return nil, err
		}
	} else if err := resolveBinary(&bin); err != nil {
		return nil, err
	}

	host, port, err := splitAddress(o.Address)
	if err != nil {
		return nil, err
	}
	address := net.JoinHostPort(host, strconv.Itoa(port))
	// The readiness probe would happily talk to another server already
	// bound to the address, so make sure the port is ours to take.
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("devserver: frontend address %s is not free (another Temporal server running?): %w", address, err)
	}
	_ = ln.Close()

	if o.DBFile != "" {
		if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o755); err != nil {
			return nil, fmt.Errorf("devserver: create directory for DB file: %w", err)
		}
	}

	httpPort, err := freePortExcept(port, o.UIPort)
	if err != nil {
		return nil, err
	}
	metricsPort, err := freePortExcept(port, o.UIPort, httpPort)
	if err != nil {
		return nil, err
	}

	args := []string{
		"server", "start-dev",
		"--ip", host,
		"--port", strconv.Itoa(port),
		"--http-port", strconv.Itoa(httpPort),
		"--metrics-port", strconv.Itoa(metricsPort),
		"--log-level", childLogLevel,
		"--color", "never",
	}
	uiURL := ""
	if o.UIPort > 0 {
		args = append(args, "--ui-port", strconv.Itoa(o.UIPort))
		uiURL = "http://" + net.JoinHostPort(browsableHost(host), strconv.Itoa(o.UIPort))
	} else {
		args = append(args, "--headless")
	}
	if o.DBFile != "" {
		args = append(args, "--db-filename", o.DBFile)
	}
	if namespace != "default" {
		args = append(args, "--namespace", namespace)
	}
	for _, key := range slices.Sorted(maps.Keys(o.DynamicConfig)) {
		args = append(args, "--dynamic-config-value", key+"="+o.DynamicConfig[key])
	}
	for _, name := range slices.Sorted(maps.Keys(o.SearchAttributes)) {
		args = append(args, "--search-attribute", name+"="+o.SearchAttributes[name])
	}

	tail := newTailWriter(tailLines)
	var out io.Writer = tail
	if o.Log != nil {
		out = io.MultiWriter(o.Log, tail)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = waitDelay
	cmd.SysProcAttr = sysProcAttr()

	s := &Server{
		cmd:       cmd,
		address:   address,
		uiURL:     uiURL,
		namespace: namespace,
		log:       logger,
		tail:      tail,
		done:      make(chan struct{}),
	}

	began := time.Now()
	if err := s.launch(); err != nil {
		return nil, fmt.Errorf("devserver: start %s: %w", bin, err)
	}
	logger.Debug("temporal dev server launched", "pid", cmd.Process.Pid, "binary", bin, "args", args)

	if err := s.waitReady(ctx, timeout, o.SearchAttributes); err != nil {
		s.kill()
		<-s.done
		return nil, err
	}
	logger.Info("temporal dev server ready",
		"address", address, "ui", uiURL, "namespace", namespace, "db", o.DBFile,
		"pid", cmd.Process.Pid, "startup", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// launch starts the child, tied to this process (tools.Launch), and reaps
// it when it exits.
func (s *Server) launch() error {
	return tools.Launch(s.cmd, func(err error) {
		s.waitErr = err
		s.mu.Lock()
		expected := s.stopping
		s.mu.Unlock()
		if !expected {
			s.log.Warn("temporal dev server exited unexpectedly", "error", s.waitErr, "output", s.tail.String())
		} else {
			s.log.Debug("temporal dev server exited", "error", s.waitErr)
		}
		close(s.done)
	})
}

// waitReady polls the frontend until it is healthy and the namespace and
// search attributes are visible, the child exits, ctx is done, or timeout
// expires.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration, attrs map[string]string) error {
	readyCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Abort an in-flight probe as soon as the child dies.
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-readyCtx.Done():
		}
	}()

	var lastErr error
	for {
		if lastErr = s.probe(readyCtx, attrs); lastErr == nil {
			return nil
		}
		select {
		case <-s.done:
		case <-readyCtx.Done():
		case <-time.After(pollInterval):
			continue
		}
		break
	}

	select {
	case <-s.done:
		return fmt.Errorf("devserver: temporal dev server exited before it was ready (%v): %w; last output:\n%s",
			s.waitErr, errExitedEarly, s.tail.StringOr("(no output)"))
	default:
	}
	why := fmt.Sprintf("not ready within %s", timeout)
	if ctx.Err() != nil {
		why = "start canceled: " + context.Cause(ctx).Error()
	}
	return fmt.Errorf("devserver: temporal dev server at %s %s (last probe error: %v); last output:\n%s",
		s.address, why, lastErr, s.tail.StringOr("(no output)"))
}

// probe makes one readiness check.
func (s *Server) probe(ctx context.Context, attrs map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := dial(ctx, s.address, s.namespace)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: s.namespace}); err != nil {
		return fmt.Errorf("describe namespace %q: %w", s.namespace, err)
	}
	if len(attrs) == 0 {
		return nil
	}
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: s.namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	for name := range attrs {
		if _, ok := resp.GetCustomAttributes()[name]; !ok {
			return fmt.Errorf("search attribute %q not registered yet", name)
		}
	}
	return nil
}

// Address returns the frontend gRPC host:port of the server.
func (s *Server) Address() string { return s.address }

// UIURL returns the Web UI URL, or "" when the server is headless.
func (s *Server) UIURL() string { return s.uiURL }

// Done returns a channel that is closed when the child process has exited,
// whether through Stop or on its own.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM to the child's process group and waits for it to exit
// (the dev server flushes its SQLite file on the way out). If ctx is done
// first, the group is killed with SIGKILL and an error is returned. Stop is
// idempotent and safe for concurrent use; once the child has exited it
// returns nil.
func (s *Server) Stop(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	s.termOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.log.Debug("stopping temporal dev server", "pid", s.cmd.Process.Pid)
		if err := terminate(s.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.log.Warn("signal temporal dev server", "error", err)
		}
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	s.kill()
	<-s.done
	return fmt.Errorf("devserver: temporal dev server did not exit after SIGTERM, killed: %w", context.Cause(ctx))
}

// kill sends SIGKILL to the child's process group unless it already exited.
func (s *Server) kill() {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	if err := killGroup(s.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.log.Warn("kill temporal dev server", "error", err)
	}
}

// Listening reports whether a Temporal frontend already answers a health
// check at addr. It gives up after a couple of seconds or when ctx is done.
func Listening(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	c, err := dial(ctx, addr, "default")
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err == nil
}

// dial connects an SDK client whose own logging is discarded.
func dial(ctx context.Context, addr, namespace string) (client.Client, error) {
	return client.DialContext(ctx, client.Options{
		HostPort:  addr,
		Namespace: namespace,
		Logger:    sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("devserver: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freePortExcept returns a free port that is none of the given ones.
func freePortExcept(taken ...int) (int, error) {
	for range 20 {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		if !slices.Contains(taken, p) {
			return p, nil
		}
	}
	return 0, errors.New("devserver: no free port found")
}

// resolveBinary checks an explicit Options.Binary, looking bare names up
// on $PATH.
func resolveBinary(bin *string) error {
	p := *bin
	if filepath.Base(p) == p { // bare name such as "temporal"
		lp, err := exec.LookPath(p)
		if err != nil {
			return fmt.Errorf("devserver: temporal CLI %q not found on $PATH: %w; %s", p, err, InstallHint)
		}
		*bin = lp
		return nil
	}
	if err := tools.CheckExecutable(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("devserver: temporal CLI %q does not exist; %s", p, InstallHint)
		}
		return fmt.Errorf("devserver: temporal CLI %q: %w", p, err)
	}
	return nil
}

// splitAddress parses Options.Address, applying the defaults and choosing a
// free port for port 0.
func splitAddress(addr string) (string, int, error) {
	if addr == "" {
		addr = DefaultAddress
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("devserver: bad address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("devserver: bad port in address %q", addr)
	}
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return "", 0, err
		}
	}
	return host, port, nil
}

// browsableHost maps a wildcard bind address to one a browser can open.
func browsableHost(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "localhost"
	}
	return host
}
