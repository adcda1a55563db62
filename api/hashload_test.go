//go:build linux

package api_test

// Peak memory of password hashing under a burst, measured in a child process
// (this test binary, switched by an environment variable) so that the figure
// is the burst's alone. Not part of `make test`; run it with
//
//	go test -run '^$' -bench BenchmarkPasswordHashingRSS -benchtime 1x ./api/
//
// (without -race: the race detector multiplies memory). See "Password
// hashing under load" in docs/PERFORMANCE.md.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/store/storetest"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// Environment of the child process.
const (
	// hashLoadChildEnv switches the test binary into the child; its value
	// is the hashing cap to configure (0: the default).
	hashLoadChildEnv = "PAYMENTS_HASH_LOAD_CHILD"
	// hashLoadNEnv is the number of concurrent registrations (default 1000).
	hashLoadNEnv = "PAYMENTS_HASH_LOAD_N"
	// hashLoadCeilingEnv is the RSS in MiB at which the parent kills the
	// child (default 8192), so an uncapped burst cannot take the machine;
	// the figure is then reported as "more than the ceiling".
	hashLoadCeilingEnv = "PAYMENTS_HASH_LOAD_CEILING_MIB"
)

// hashLoadResult is what the child reports on its last line of output.
type hashLoadResult struct {
	Cap       int     `json:"cap"`
	N         int     `json:"n"`
	OK        int     `json:"ok"`
	Busy      int     `json:"busy"`
	Other     int     `json:"other"`
	FirstErr  string  `json:"first_err,omitempty"`
	Seconds   float64 `json:"seconds"`
	VmHWMKiB  int64   `json:"vmhwm_kib"`
	GOMAXPROC int     `json:"gomaxprocs"`
}

// BenchmarkPasswordHashingRSS fires PAYMENTS_HASH_LOAD_N (1,000) concurrent
// Register calls, with OWASP's argon2id parameters, through the real API
// handler and HTTP server, and reports the child process's peak RSS
// (getrusage ru_maxrss), with the default cap and with no cap to speak of.
func BenchmarkPasswordHashingRSS(b *testing.B) {
	for _, tc := range []struct {
		name string
		cap  int
	}{
		{"cap=default", 0},
		{"cap=none", 1_000_000},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var (
				res     hashLoadResult
				peakKiB int64
				killed  bool
			)
			for b.Loop() {
				res, peakKiB, killed = runHashLoadChild(b, tc.cap)
			}
			b.ReportMetric(float64(peakKiB)/1024, "peak-RSS-MiB")
			if killed {
				b.Logf("cap %d: killed at the ceiling with an RSS of %.0f MiB: the peak is higher; raise %s to measure it", tc.cap, float64(peakKiB)/1024, hashLoadCeilingEnv)
				return
			}
			b.ReportMetric(float64(res.OK), "registered")
			b.ReportMetric(float64(res.Busy), "busy")
			b.ReportMetric(res.Seconds, "burst-s")
			b.Logf("cap %d (0 = default): %d concurrent registrations, %d registered, %d busy, %d other (%s), %.1f s; peak RSS %.0f MiB (VmHWM %.0f MiB), GOMAXPROCS %d",
				tc.cap, res.N, res.OK, res.Busy, res.Other, res.FirstErr, res.Seconds, float64(peakKiB)/1024, float64(res.VmHWMKiB)/1024, res.GOMAXPROC)
		})
	}
}

// runHashLoadChild runs the burst in a child and returns its report, its
// peak RSS in KiB and whether it was killed at the ceiling (then the report
// is empty and the peak is the RSS it was killed at).
func runHashLoadChild(b *testing.B, hashCap int) (hashLoadResult, int64, bool) {
	b.Helper()
	ceilingMiB := int64(8192)
	if v := os.Getenv(hashLoadCeilingEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("%s: %v", hashLoadCeilingEnv, err)
		}
		ceilingMiB = n
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHashLoadChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), hashLoadChildEnv+"="+strconv.Itoa(hashCap))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// Watch the child's RSS and kill it at the ceiling. This samples a
	// measurement; it does not wait for any state.
	done := make(chan struct{})
	var killed sync.Mutex
	var killedAt int64
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if rss := procRSSKiB(cmd.Process.Pid); rss > ceilingMiB*1024 {
					killed.Lock()
					killedAt = rss
					killed.Unlock()
					_ = cmd.Process.Kill()
					return
				}
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var peak int64
	if ru != nil {
		peak = ru.Maxrss // KiB on Linux
	}
	killed.Lock()
	defer killed.Unlock()
	if killedAt > 0 {
		return hashLoadResult{}, max(peak, killedAt), true
	}
	if err != nil {
		b.Fatalf("child: %v\n%s", err, out.String())
	}
	var res hashLoadResult
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if after, ok := strings.CutPrefix(line, "HASHLOAD "); ok {
			if err := json.Unmarshal([]byte(after), &res); err != nil {
				b.Fatalf("child report %q: %v", line, err)
			}
		}
	}
	if res.N == 0 {
		b.Fatalf("child reported nothing:\n%s", out.String())
	}
	return res, peak, false
}

// procRSSKiB is the current RSS of a process, 0 if unknown.
func procRSSKiB(pid int) int64 {
	return procStatusKiB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
}

// procStatusKiB reads one "Name: N kB" field of a /proc status file.
func procStatusKiB(path, field string) int64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// TestHashLoadChild is the child of BenchmarkPasswordHashingRSS; it does
// nothing unless PAYMENTS_HASH_LOAD_CHILD is set.
func TestHashLoadChild(t *testing.T) {
	v, ok := os.LookupEnv(hashLoadChildEnv)
	if !ok {
		t.Skip("the child of BenchmarkPasswordHashingRSS")
	}
	hashCap, err := strconv.Atoi(v)
	if err != nil {
		t.Fatal(err)
	}
	n := 1000
	if v := os.Getenv(hashLoadNEnv); v != "" {
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	st := storetest.NewSQLite(t)
	srv := api.New(api.Deps{
		Store:                   st,
		Tokens:                  auth.NewTokens(signingKey, nil, tokenIssuer, tokenAudience, accessTTL, nil),
		PasswordParams:          auth.DefaultPasswordParams,
		PasswordHashConcurrency: hashCap,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := api.HTTPServer(ln.Addr().String(), srv.Handler(), slog.New(slog.DiscardHandler))
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	// One HTTP/1.1 connection per caller, as a thousand clients would have.
	hc := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	client := paymentsv1connect.NewAuthServiceClient(hc, "http://"+ln.Addr().String())
	ctx := context.Background()
	res := hashLoadResult{Cap: hashCap, N: n}
	var mu sync.Mutex
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, err := client.Register(ctx, connect.NewRequest(&pb.RegisterRequest{
				Email: fmt.Sprintf("load%d@example.com", i), Password: password, Role: pb.Role_ROLE_CUSTOMER,
			}))
			mu.Lock()
			defer mu.Unlock()
			var ce *connect.Error
			switch {
			case err == nil:
				res.OK++
			case errors.As(err, &ce) && ce.Code() == connect.CodeResourceExhausted:
				res.Busy++
			default:
				res.Other++
				if res.FirstErr == "" {
					res.FirstErr = err.Error()
				}
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	res.Seconds = time.Since(began).Seconds()
	res.VmHWMKiB = procStatusKiB("/proc/self/status", "VmHWM:")
	res.GOMAXPROC = runtime.GOMAXPROCS(0)
	line, _ := json.Marshal(res)
	fmt.Printf("HASHLOAD %s\n", line)
}
