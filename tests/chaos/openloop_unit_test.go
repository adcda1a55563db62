package chaos

// Unit tests of the open-loop generator (openloop_test.go). They are fast
// (about a second of wall time, run in parallel) and assert on counts and on
// lower bounds that sleeping guarantees, never on wall-clock precision finer
// than ~50 ms, so a busy 2-core machine does not make them flaky.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func olInstantFire(context.Context) (string, error) { return "p", nil }

func olSleepingFire(d time.Duration) fireFunc {
	return func(ctx context.Context) (string, error) {
		select {
		case <-time.After(d):
			return "p", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// olWithin asserts |got-want| ≤ tol.
func olWithin(t *testing.T, what string, got, want, tol int) {
	t.Helper()
	if got < want-tol || got > want+tol {
		t.Errorf("%s = %d, want %d ± %d", what, got, want, tol)
	}
}

func TestOpenLoopArrivalCount(t *testing.T) {
	t.Parallel()
	const rate, d = 200.0, 400 * time.Millisecond // 80 arrivals
	l := openLoop(t.Context(), "x", rate, d, 1000, olInstantFire)
	olWithin(t, "Sent", l.Sent, 80, 1)
	if l.Dropped != 0 || l.Errors != 0 || l.Unfinished != 0 || l.OK != l.Sent || len(l.IDs) != l.OK {
		t.Errorf("want every arrival sent and OK, got %+v", l)
	}
	if l.Name != "x" || l.Rate != rate || l.Duration != d {
		t.Errorf("level not labelled with what was asked: %+v", l)
	}
	if l.Max < l.P99 || l.P99 < l.P50 {
		t.Errorf("percentiles out of order: p50 %v p99 %v max %v", l.P50, l.P99, l.Max)
	}
}

// A fire much slower than 1/rate does not lower the arrivals of an open
// loop; a closed loop of the same fire is held to 1/fire per worker.
func TestOpenLoopSlowFireKeepsArrivalsUnlikeCapacity(t *testing.T) {
	t.Parallel()
	const fireDur, d = 200 * time.Millisecond, 400 * time.Millisecond
	var running, peak atomic.Int64
	slow := olSleepingFire(fireDur)
	fire := func(ctx context.Context) (string, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		return slow(ctx)
	}

	// 40/s is 8 arrivals per fire duration: 16 arrivals in 400 ms, with
	// about 8 requests running at once.
	l := openLoop(t.Context(), "open", 40, d, 100, fire)
	olWithin(t, "open-loop Sent", l.Sent, 16, 1)
	if p := peak.Load(); p < 4 {
		t.Errorf("at most %d requests ran at once, want ≥ 4 (≈ 8): arrivals must not wait for earlier requests", p)
	}
	if l.Dropped != 0 || l.OK != l.Sent {
		t.Errorf("open loop: want all %d sent and OK, got %+v", l.Sent, l)
	}
	if l.P50 < fireDur {
		t.Errorf("open loop p50 %v < fire duration %v", l.P50, fireDur)
	}

	perSecond, err := measureCapacity(t.Context(), d, 1, fire)
	if err != nil {
		t.Fatal(err)
	}
	// One worker cannot complete more than one request per fireDur.
	if limit := 1 / fireDur.Seconds(); perSecond <= 0 || perSecond > limit+1e-9 {
		t.Errorf("closed loop: %.2f/s, want in (0, %.2f]", perSecond, limit)
	}
	closed := perSecond * d.Seconds()
	if float64(l.Sent) < 3*closed {
		t.Errorf("open loop sent %d in %v, closed loop only %.1f: want the open loop well above", l.Sent, d, closed)
	}
}

// The generator stalls for 300 ms before arrival 5 (as it would under a GC
// pause or CPU starvation): the overdue arrivals are still sent, counted as
// late, and their latency includes the stall although fire itself is
// instant — latency is measured from the scheduled time.
func TestOpenLoopLatencyFromScheduledTime(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond
	onTime := openLoopSleeper()
	stalled := func(ctx context.Context, i int, at time.Time) bool {
		if i == 5 {
			at = at.Add(stall)
		}
		return onTime(ctx, i, at)
	}
	// 20/s for 500 ms: arrivals at 0, 50, …, 450 ms; 5..9 all start at ~550 ms.
	l := runOpenLoop(t.Context(), "stall", 20, 500*time.Millisecond, 100, olInstantFire, stalled)
	if l.Sent != 10 || l.OK != 10 || l.Dropped != 0 {
		t.Fatalf("want 10 sent and OK, got %+v", l)
	}
	if l.Late < 5 {
		t.Errorf("Late = %d, want ≥ 5 (arrivals 5..9 started ≥ 100 ms after their time)", l.Late)
	}
	// Arrival 5 started ≥ 300 ms after its time; p99 of 10 is the max.
	if l.P99 < stall || l.Max < stall {
		t.Errorf("p99 %v, max %v: want ≥ %v (the stall), though fire takes no time", l.P99, l.Max, stall)
	}
}

// Queueing inside the system under test shows in the latencies: a server
// that handles one request at a time (100 ms each) fed 20/s.
func TestOpenLoopServerQueueingInLatency(t *testing.T) {
	t.Parallel()
	const service = 100 * time.Millisecond
	var server sync.Mutex
	fire := func(context.Context) (string, error) {
		server.Lock()
		defer server.Unlock()
		time.Sleep(service)
		return "p", nil
	}
	// 6 arrivals at 0..250 ms; 600 ms of work, so the last to finish does so
	// ≥ 600 ms after start, ≥ 350 ms after its arrival.
	l := openLoop(t.Context(), "queue", 20, 300*time.Millisecond, 100, fire)
	if l.Sent != 6 || l.OK != 6 {
		t.Fatalf("want 6 sent and OK, got %+v", l)
	}
	if lo := 350 * time.Millisecond; l.P99 < lo {
		t.Errorf("p99 %v, want ≥ %v: the wait for the server must count", l.P99, lo)
	}
	if l.P50 < service {
		t.Errorf("p50 %v < service time %v", l.P50, service)
	}
}

func TestOpenLoopErrorsCountedAndExcludedFromIDs(t *testing.T) {
	t.Parallel()
	var (
		n      atomic.Int64
		mu     sync.Mutex
		okIDs  []string
		failed int
	)
	fire := func(context.Context) (string, error) {
		i := n.Add(1)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case i%3 == 0: // fails, even though it names an id
			failed++
			return fmt.Sprintf("bad-%d", i), errors.New("boom")
		case i%5 == 0: // succeeds without creating anything
			return "", nil
		default:
			id := fmt.Sprintf("p-%d", i)
			okIDs = append(okIDs, id)
			return id, nil
		}
	}
	l := openLoop(t.Context(), "err", 100, 300*time.Millisecond, 1000, fire)
	olWithin(t, "Sent", l.Sent, 30, 1)
	mu.Lock()
	defer mu.Unlock()
	if l.Errors != failed || l.OK+l.Errors != l.Sent || l.Unfinished != 0 {
		t.Errorf("Errors %d (fire failed %d), OK %d, Sent %d, Unfinished %d", l.Errors, failed, l.OK, l.Sent, l.Unfinished)
	}
	got := slices.Sorted(slices.Values(l.IDs))
	want := slices.Sorted(slices.Values(okIDs))
	if !slices.Equal(got, want) {
		t.Errorf("IDs = %v, want the non-empty ids of OK requests %v", got, want)
	}
	if r, want := l.ErrorRate(), float64(failed)/float64(l.Sent); math.Abs(r-want) > 1e-12 {
		t.Errorf("ErrorRate = %v, want %v", r, want)
	}
	if (loadLevel{}).ErrorRate() != 0 {
		t.Error("ErrorRate of nothing sent must be 0")
	}
}

func TestOpenLoopDroppedOverMaxInFlight(t *testing.T) {
	t.Parallel()
	// Two requests hold until 700 ms; the 20 arrivals end at 190 ms, so the
	// other 18 find both slots taken (500 ms of slack for a slow machine).
	release := make(chan struct{})
	time.AfterFunc(700*time.Millisecond, func() { close(release) })
	fire := func(context.Context) (string, error) { <-release; return "p", nil }
	l := openLoop(t.Context(), "drop", 100, 200*time.Millisecond, 2, fire)
	if l.Sent != 2 || l.OK != 2 || l.Dropped != 18 {
		t.Errorf("want Sent 2, OK 2, Dropped 18; got %+v", l)
	}
}

// The wait for started requests is bounded by ctx: a fire that ignores ctx
// does not hold openLoop, its request is Unfinished, and its late completion
// does not touch the result.
func TestOpenLoopReturnsWhenContextEnds(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	returned := make(chan struct{}, 1000)
	fire := func(context.Context) (string, error) {
		defer func() { returned <- struct{}{} }()
		<-release
		return "late", nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	l := openLoop(ctx, "ctx", 100, 2*time.Second, 0, fire)
	if el := time.Since(t0); el > time.Second {
		t.Errorf("openLoop returned after %v, want soon after ctx ended (150 ms)", el)
	}
	if l.Sent == 0 || l.Sent >= 200 || l.OK != 0 || l.Unfinished != l.Sent {
		t.Errorf("want some sent, none finished; got %+v", l)
	}
	close(release)
	for range l.Sent { // every started request runs fire, then returns
		<-returned
	}
	if l.OK != 0 || len(l.IDs) != 0 {
		t.Errorf("result changed after return: %+v", l)
	}
}

func TestCapacityClosedLoop(t *testing.T) {
	t.Parallel()
	const fireDur = 50 * time.Millisecond
	perSecond, err := measureCapacity(t.Context(), 300*time.Millisecond, 2, olSleepingFire(fireDur))
	if err != nil {
		t.Fatal(err)
	}
	// 2 workers × 1/50 ms = 40/s at most; ~40/s expected, 10/s would need
	// the machine to stall for most of the run.
	if perSecond < 10 || perSecond > 40+1e-9 {
		t.Errorf("capacity %.1f/s, want in [10, 40]", perSecond)
	}

	boom := errors.New("boom")
	_, err = measureCapacity(t.Context(), 50*time.Millisecond, 2, func(context.Context) (string, error) { return "", boom })
	if !errors.Is(err, boom) {
		t.Errorf("all requests failing: err = %v, want it to wrap %v", err, boom)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := measureCapacity(ctx, time.Second, 2, olInstantFire); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v, want context.Canceled", err)
	}
	if _, err := measureCapacity(t.Context(), time.Second, 0, olInstantFire); err == nil {
		t.Error("0 workers: want an error")
	}
}

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	oneToTen := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, c := range []struct {
		sorted []time.Duration
		p      float64
		want   int // ms
	}{
		// The worked example of the nearest-rank method.
		{ms(15, 20, 35, 40, 50), 5, 15},
		{ms(15, 20, 35, 40, 50), 30, 20},
		{ms(15, 20, 35, 40, 50), 40, 20},
		{ms(15, 20, 35, 40, 50), 50, 35},
		{ms(15, 20, 35, 40, 50), 100, 50},
		{oneToTen, 0, 1},
		{oneToTen, 10, 1},
		{oneToTen, 11, 2},
		{oneToTen, 50, 5},
		{oneToTen, 90, 9},
		{oneToTen, 99, 10},
		{hundred, 50, 50},
		{hundred, 99, 99},
		{hundred, 99.5, 100},
		{ms(7), 50, 7},
		{ms(7), 99, 7},
		{nil, 50, 0},
	} {
		if got := nearestRank(c.sorted, c.p); got != time.Duration(c.want)*time.Millisecond {
			t.Errorf("nearestRank(%v, %v) = %v, want %d ms", c.sorted, c.p, got, c.want)
		}
	}

	unsorted := ms(9, 3, 10, 1, 7, 2, 8, 5, 4, 6)
	p50, p99, maxLat := latencySummary(unsorted)
	if p50 != 5*time.Millisecond || p99 != 10*time.Millisecond || maxLat != 10*time.Millisecond {
		t.Errorf("latencySummary = %v %v %v, want 5ms 10ms 10ms", p50, p99, maxLat)
	}
	if unsorted[0] != 9*time.Millisecond {
		t.Error("latencySummary sorted its input in place")
	}
	if a, b, c := latencySummary(nil); a != 0 || b != 0 || c != 0 {
		t.Errorf("latencySummary(nil) = %v %v %v", a, b, c)
	}
}

func TestLoadTable(t *testing.T) {
	levels := []loadLevel{
		{Name: "50%", Rate: 100, Duration: 60 * time.Second, Sent: 6000, OK: 5990, Errors: 10, Late: 3,
			P50: 12300 * time.Microsecond, P99: 45600 * time.Microsecond, Max: 78900 * time.Microsecond},
		{Name: "80%", Rate: 160, Duration: 60 * time.Second, Sent: 9540, OK: 9540, Dropped: 60, Late: 7,
			P50: 15 * time.Millisecond, P99: 120 * time.Millisecond, Max: 250 * time.Millisecond},
		{Name: "100%", Rate: 200, Duration: 60 * time.Second}, // nothing sent: no NaN
	}
	got := loadTable(200, levels)
	if !strings.Contains(got, "capacity (closed loop): 200.0 req/s") {
		t.Errorf("table lacks the capacity:\n%s", got)
	}
	for _, want := range []string{
		"| level | rate asked (/s) | rate achieved (/s) | sent | ok | errors | error rate % | dropped | late | p50 ms | p99 ms | max ms |",
		"| 50% | 100.0 | 100.0 | 6000 | 5990 | 10 | 0.17 | 0 | 3 | 12.3 | 45.6 | 78.9 |",
		"| 80% | 160.0 | 159.0 | 9540 | 9540 | 0 | 0.00 | 60 | 7 | 15.0 | 120.0 | 250.0 |",
		"| 100% | 200.0 | 0.0 | 0 | 0 | 0 | 0.00 | 0 | 0 | 0.0 | 0.0 | 0.0 |",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "NaN") {
		t.Errorf("NaN in table:\n%s", got)
	}
	// Header, separator and one row per level, all with the same columns.
	var rows []string
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "|") {
			rows = append(rows, line)
		}
	}
	if len(rows) != 2+len(levels) {
		t.Fatalf("%d table lines, want %d:\n%s", len(rows), 2+len(levels), got)
	}
	for _, r := range rows {
		if n := strings.Count(r, "|"); n != 13 {
			t.Errorf("row has %d pipes, want 13: %s", n, r)
		}
	}
}
