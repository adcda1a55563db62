// Package stripemock runs stripe-mock (github.com/stripe/stripe-mock), the
// official fake of the Stripe API, as a child process for the gateway
// contract tests and any other test that talks to Stripe through stripe-go.
//
// stripe-mock validates every request against Stripe's OpenAPI spec
// (unknown parameters, bad enum values, missing authorization) and answers
// with canned fixtures: it checks that requests are well formed, not business
// outcomes.
package stripemock

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/payments-platform/payments/internal/tools"
)

// EnvBinary is the environment variable that, when set, names the
// stripe-mock binary Find returns.
const EnvBinary = "PAYMENTS_STRIPE_MOCK"

// Version is the stripe-mock version the Makefile installs.
const Version = "v0.203.0"

// InstallHint tells a developer how to get stripe-mock. It is part of the
// error Find returns when the binary is missing.
const InstallHint = "run `make bin/stripe-mock` in the repository root to install it as bin/stripe-mock " +
	"(GOBIN=$PWD/bin go install github.com/stripe/stripe-mock@" + Version + "), " +
	"or set " + EnvBinary + " to the path of a stripe-mock binary"

// TestKey is a secret key stripe-mock accepts (it checks only that one is
// sent).
const TestKey = "sk_test_stripemock"

// DefaultStartTimeout bounds Start when its context has no earlier deadline.
const DefaultStartTimeout = 30 * time.Second

const (
	// listeningPrefix starts the line where stripe-mock prints the HTTP
	// address it bound.
	listeningPrefix = "Listening for HTTP at address: "
	// pollInterval is the pause between two readiness probes.
	pollInterval = 50 * time.Millisecond
	// probeTimeout bounds one readiness probe.
	probeTimeout = 2 * time.Second
	// maxOutput is how much of the child's output is kept for errors.
	maxOutput = 16 << 10
	// waitDelay bounds how long Wait waits for the output to close after
	// the child exited.
	waitDelay = 5 * time.Second
)

// Find locates stripe-mock: the file named by $PAYMENTS_STRIPE_MOCK if set,
// else bin/stripe-mock in the current directory or any parent up to (and
// including) the directory holding go.mod, else stripe-mock on $PATH. The
// error explains how to install it.
func Find() (string, error) {
	p, err := tools.Find("stripe-mock", EnvBinary, InstallHint)
	if err != nil {
		return "", fmt.Errorf("stripemock: %w", err)
	}
	return p, nil
}

// Server is a running stripe-mock child process.
type Server struct {
	cmd  *exec.Cmd
	url  string
	out  *output
	done chan struct{} // closed when the child has exited and been reaped

	closeOnce sync.Once
}

// Start launches stripe-mock (binary, or Find() when binary is "") on free
// loopback ports and waits until it answers an API request. If it exits
// first, or ctx ends, or DefaultStartTimeout passes, it is killed and the
// error includes what it printed. Call Close when done.
func Start(ctx context.Context, binary string) (*Server, error) {
	if binary == "" {
		var err error
		if binary, err = Find(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultStartTimeout)
	defer cancel()

	out := &output{addr: make(chan string, 1)}
	// Port 0: the kernel picks free ports, and stripe-mock prints them, so
	// there is no window in which another process can take them.
	cmd := exec.Command(binary, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = waitDelay
	s := &Server{cmd: cmd, out: out, done: make(chan struct{})}
	if err := s.launch(); err != nil {
		return nil, fmt.Errorf("stripemock: start %s: %w", binary, err)
	}

	select {
	case addr := <-out.addr:
		s.url = "http://" + addr
	case <-s.done:
		return nil, fmt.Errorf("stripemock: %s exited before listening: %v; output:\n%s", binary, s.cmd.ProcessState, out.String())
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("stripemock: %s did not print its address: %w; output:\n%s", binary, ctx.Err(), out.String())
	}
	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("stripemock: %s at %s not ready: %w; output:\n%s", binary, s.url, err, out.String())
	}
	return s, nil
}

// launch starts the child, tied to this process (tools.Launch), and reaps
// it when it exits.
func (s *Server) launch() error {
	return tools.Launch(s.cmd, func(error) { close(s.done) })
}

// waitReady polls an API route until it answers 200.
func (s *Server) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: probeTimeout}
	var last error
	for {
		if last = s.probe(ctx, client); last == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited: %v (last probe: %v)", s.cmd.ProcessState, last)
		case <-ctx.Done():
			return fmt.Errorf("%w (last probe: %v)", ctx.Err(), last)
		case <-time.After(pollInterval):
		}
	}
}

func (s *Server) probe(ctx context.Context, client *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/balance", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+TestKey)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/balance answered %s", resp.Status)
	}
	return nil
}

// URL is the base URL of the API, for STRIPE_API_BASE, e.g.
// http://127.0.0.1:41234.
func (s *Server) URL() string { return s.url }

// Output is what stripe-mock printed (the last 16 KiB).
func (s *Server) Output() string { return s.out.String() }

// Close kills stripe-mock and waits for it to exit. It is safe to call more
// than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
		}
		<-s.done
	})
}

// output collects the child's output, keeps its tail and reports the HTTP
// address line.
type output struct {
	mu      sync.Mutex
	buf     []byte // the tail, at most maxOutput bytes
	partial []byte // the current, unfinished line
	found   bool
	addr    chan string
}

// Write implements io.Writer.
func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	if len(o.buf) > maxOutput {
		o.buf = o.buf[len(o.buf)-maxOutput:]
	}
	if o.found {
		return len(p), nil
	}
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
		if addr, ok := strings.CutPrefix(line, listeningPrefix); ok {
			o.found = true
			o.partial = nil
			o.addr <- addr
			break
		}
	}
	if len(o.partial) > maxOutput {
		o.partial = nil // no newline in sight: not the line we want
	}
	return len(p), nil
}

// String returns the collected tail.
func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}
