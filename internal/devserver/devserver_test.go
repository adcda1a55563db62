package devserver

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// syncBuffer is a bytes.Buffer safe for the child's output goroutine and
// the test goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// temporalCLI returns the temporal CLI or fails the test: the integration
// tests must never be skipped because the tool is missing.
func temporalCLI(t *testing.T) string {
	t.Helper()
	bin, err := Find()
	if err != nil {
		t.Fatalf("the devserver tests need the temporal CLI: %v", err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// eventually polls cond every 50ms until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func stopOnCleanup(t *testing.T, s *Server) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
	})
}

func dialNamespace(t *testing.T, addr, ns string) client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dial(ctx, addr, ns)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(c.Close)
	return c
}

func startServer(t *testing.T, o Options) (*Server, time.Duration) {
	t.Helper()
	out := &syncBuffer{}
	o.Log = out
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	began := time.Now()
	s, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("Start: %v\nchild output:\n%s", err, out.String())
	}
	took := time.Since(began)
	stopOnCleanup(t, s)
	// The dev server prints its banner ("Server: host:port") once it is up.
	eventually(t, 10*time.Second, "the child's banner in Options.Log", func() bool {
		return strings.Contains(out.String(), "Server:")
	})
	return s, took
}

// TestStartStopRestart runs a real dev server, checks the namespace and the
// custom search attribute, stops it, and restarts it on the same SQLite
// file to check that a workflow execution survived.
func TestStartStopRestart(t *testing.T) {
	bin := temporalCLI(t)
	const (
		ns         = "payments-devserver-test"
		workflowID = "devserver-persistence-check"
	)
	dbFile := filepath.Join(t.TempDir(), "nested", "dir", "temporal.db") // parent dirs do not exist yet
	opts := Options{
		Binary:           bin,
		Address:          freeAddr(t),
		DBFile:           dbFile,
		Namespace:        ns,
		SearchAttributes: map[string]string{"PaymentId": "Keyword"},
	}

	s, took := startServer(t, opts)
	t.Logf("first start (fresh DB) took %s", took.Round(time.Millisecond))
	if s.Address() != opts.Address {
		t.Errorf("Address() = %q, want %q", s.Address(), opts.Address)
	}
	if s.UIURL() != "" {
		t.Errorf("UIURL() = %q, want \"\" for a headless server", s.UIURL())
	}
	if !Listening(context.Background(), s.Address()) {
		t.Fatalf("Listening(%s) = false after Start", s.Address())
	}
	if isClosed(s.Done()) {
		t.Fatal("Done() closed while the server runs")
	}

	c := dialNamespace(t, s.Address(), ns)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns}); err != nil {
		t.Fatalf("DescribeNamespace(%s): %v", ns, err)
	}
	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("ListSearchAttributes: %v", err)
	}
	if got := sa.GetCustomAttributes()["PaymentId"]; got != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
		t.Fatalf("search attribute PaymentId has type %v, want Keyword (custom attributes: %v)", got, sa.GetCustomAttributes())
	}

	// No worker polls this task queue, so the execution just stays running.
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        workflowID,
		TaskQueue: "devserver-test-no-worker",
	}, "NoSuchWorkflow")
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	c.Close()

	stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopCancel()
	stopBegan := time.Now()
	if err := s.Stop(stopCtx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("stop took %s", time.Since(stopBegan).Round(time.Millisecond))
	if !isClosed(s.Done()) {
		t.Fatal("Done() not closed after Stop returned")
	}
	eventually(t, 10*time.Second, "Listening to turn false after Stop", func() bool {
		return !Listening(context.Background(), opts.Address)
	})
	if err := s.Stop(stopCtx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(dbFile); err != nil {
		t.Fatalf("DB file: %v", err)
	}

	// Restart on the same DB file (and a fresh port): the namespace is
	// created again at launch, which must not fail on the existing state.
	opts.Address = freeAddr(t)
	s2, took := startServer(t, opts)
	t.Logf("restart (existing DB) took %s", took.Round(time.Millisecond))
	c2 := dialNamespace(t, s2.Address(), ns)
	desc, err := c2.DescribeWorkflowExecution(ctx, workflowID, run.GetRunID())
	if err != nil {
		t.Fatalf("DescribeWorkflowExecution after restart: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Errorf("workflow status after restart = %v, want Running", st)
	}
	sa, err = c2.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("ListSearchAttributes after restart: %v", err)
	}
	if _, ok := sa.GetCustomAttributes()["PaymentId"]; !ok {
		t.Errorf("search attribute PaymentId missing after restart")
	}
}

// TestStartWithUI checks the UI flags and that the UI answers.
func TestStartWithUI(t *testing.T) {
	bin := temporalCLI(t)
	uiPort, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s, took := startServer(t, Options{Binary: bin, Address: "127.0.0.1:0", UIPort: uiPort})
	t.Logf("in-memory start with UI took %s", took.Round(time.Millisecond))
	if _, port, _ := net.SplitHostPort(s.Address()); port == "0" {
		t.Fatalf("Address() = %q: port 0 was not replaced by a free port", s.Address())
	}
	want := "http://127.0.0.1:" + strconv.Itoa(uiPort)
	if s.UIURL() != want {
		t.Fatalf("UIURL() = %q, want %q", s.UIURL(), want)
	}
	if !Listening(context.Background(), s.Address()) {
		t.Fatalf("Listening(%s) = false", s.Address())
	}
	// The UI is served by the same process; it should accept connections.
	eventually(t, 30*time.Second, "the Web UI port to accept connections", func() bool {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(uiPort)), time.Second)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}

func TestListeningNothingThere(t *testing.T) {
	began := time.Now()
	if Listening(context.Background(), freeAddr(t)) {
		t.Fatal("Listening = true on a free port")
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("Listening on a free port took %s", d)
	}
}

func TestStartMissingBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "temporal")
	_, err := Start(context.Background(), Options{Binary: missing, Address: freeAddr(t)})
	if err == nil {
		t.Fatal("Start with a missing binary succeeded")
	}
	for _, want := range []string{missing, "does not exist", "make tools"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-temporal")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStartChildExitsAtOnce(t *testing.T) {
	script := writeScript(t, `echo "fake temporal: starting $1 $2"
echo "fatal: cannot open the database" >&2
exit 3`)
	for _, tc := range []struct {
		name, bin string
		want      []string
	}{
		{"false", "/bin/false", []string{"exited before it was ready", "exit status 1", "(no output)"}},
		{"script", script, []string{"exited before it was ready", "exit status 3",
			"fake temporal: starting server start-dev", "fatal: cannot open the database"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			began := time.Now()
			s, err := Start(context.Background(), Options{Binary: tc.bin, Address: freeAddr(t), StartTimeout: time.Minute})
			if err == nil {
				stopOnCleanup(t, s)
				t.Fatal("Start succeeded")
			}
			if d := time.Since(began); d > 5*time.Second {
				t.Errorf("Start took %s to notice the child exited", d)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
}

// TestStartRealCLIError checks that a real startup failure of the dev server
// reaches the caller with the server's own message.
func TestStartRealCLIError(t *testing.T) {
	bin := temporalCLI(t)
	_, err := Start(context.Background(), Options{
		Binary:           bin,
		Address:          freeAddr(t),
		SearchAttributes: map[string]string{"PaymentId": "NotAType"},
	})
	if err == nil {
		t.Fatal("Start with an invalid search attribute type succeeded")
	}
	if !strings.Contains(err.Error(), "NotAType") {
		t.Fatalf("error does not include the dev server's message about the bad type:\n%v", err)
	}
}

func TestStartAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Start(context.Background(), Options{Binary: "/bin/false", Address: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "not free") {
		t.Fatalf("Start on a busy address: err = %v, want a \"not free\" error", err)
	}
}

func TestStartTimeoutKillsChild(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := writeScript(t, `echo $$ > `+pidFile+`
echo "hanging forever"
exec sleep 600`)
	began := time.Now()
	_, err := Start(context.Background(), Options{Binary: script, Address: freeAddr(t), StartTimeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("Start of a child that never answers succeeded")
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Start took %s with StartTimeout 500ms", d)
	}
	for _, want := range []string{"not ready within 500ms", "hanging forever"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	assertGone(t, pidFile)
}

func TestStartContextCanceled(t *testing.T) {
	script := writeScript(t, `exec sleep 600`)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Start(ctx, Options{Binary: script, Address: freeAddr(t)})
	if err == nil || !strings.Contains(err.Error(), "start canceled") {
		t.Fatalf("Start with an expiring ctx: err = %v, want \"start canceled\"", err)
	}
}

// assertGone checks that the process whose pid the fake CLI wrote is dead.
func assertGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("fake CLI did not write its pid: %v", err)
	}
	pid := strings.TrimSpace(string(data))
	// Start reaps the child before returning, so /proc/<pid> is gone
	// (unless the pid was reused, which the comm check rules out).
	comm, err := os.ReadFile("/proc/" + pid + "/comm")
	if err == nil && strings.TrimSpace(string(comm)) == "sleep" {
		t.Fatalf("child %s still running after Start failed", pid)
	}
}

// TestStopKillsWhenTermIgnored drives the SIGKILL path of Stop with a child
// that ignores SIGTERM.
func TestStopKillsWhenTermIgnored(t *testing.T) {
	script := writeScript(t, `trap '' TERM
echo ignoring TERM
while :; do sleep 1; done`)
	out := &syncBuffer{}
	s := &Server{
		cmd:  exec.Command(script),
		log:  slog.New(slog.DiscardHandler),
		tail: newTailWriter(tailLines),
		done: make(chan struct{}),
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = sysProcAttr()
	s.cmd.WaitDelay = waitDelay
	if err := s.launch(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the script to install its trap", func() bool {
		return strings.Contains(out.String(), "ignoring TERM")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.Stop(ctx)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Stop of a TERM-ignoring child: err = %v, want a \"killed\" error", err)
	}
	if !isClosed(s.Done()) {
		t.Fatal("Done() not closed after Stop returned")
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after exit: %v", err)
	}
}

func TestFind(t *testing.T) {
	fake := writeScript(t, "exit 0")
	t.Setenv(EnvCLI, fake)
	got, err := Find()
	if err != nil || got != fake {
		t.Fatalf("Find() with $%s set = %q, %v; want %q", EnvCLI, got, err, fake)
	}

	t.Setenv(EnvCLI, filepath.Join(t.TempDir(), "missing"))
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("Find() with $%s pointing nowhere: err = %v, want the install hint", EnvCLI, err)
	}

	// Without the variable, the tests (run from internal/devserver) find
	// bin/temporal at the module root.
	t.Setenv(EnvCLI, "")
	got, err = Find()
	if err != nil {
		t.Fatalf("Find(): %v", err)
	}
	if filepath.Base(got) != "temporal" {
		t.Fatalf("Find() = %q", got)
	}
}

func TestTailWriter(t *testing.T) {
	w := newTailWriter(3)
	if got := w.StringOr("none"); got != "none" {
		t.Fatalf("empty tail = %q", got)
	}
	for i := range 5 {
		_, _ = w.Write([]byte("line " + strconv.Itoa(i) + "\r\n"))
	}
	_, _ = w.Write([]byte("partial"))
	if got, want := w.String(), "line 2\nline 3\nline 4\npartial"; got != want {
		t.Fatalf("tail = %q, want %q", got, want)
	}
	_, _ = w.Write([]byte(strings.Repeat("x", 3*maxLineLen) + "\n"))
	if got := w.String(); len(got) > 3*maxLineLen {
		t.Fatalf("long line not capped: %d bytes", len(got))
	}
}
