package chaos

// Open-loop load generation ("load held"): CreatePayment is fired at a fixed
// arrival rate, at fractions of the capacity a closed loop measured, and the
// latency of each request is taken from the moment it was SCHEDULED to
// arrive, so that a stalled server (or a stalled generator) shows up in the
// percentiles instead of silently lowering the offered load, which is what a
// closed loop does (coordinated omission).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// fireFunc performs one request; it returns the id of what it created (""
// if none) and an error if the request failed.
type fireFunc func(ctx context.Context) (id string, err error)

// openLoopLateBound is how far after its scheduled time an arrival may start
// and still count as on time. Go timers on a loaded 2-core machine wake up a
// few milliseconds late as a matter of course; 10 ms is several times that
// noise yet still small against the CreatePayment latencies we report (tens
// of ms), so an arrival past it means the generator itself fell behind and
// the offered rate was not quite what was asked.
const openLoopLateBound = 10 * time.Millisecond

// loadLevel is the outcome of one open-loop run.
type loadLevel struct {
	Name     string        // "50%", "80%", "100%"
	Rate     float64       // arrivals per second asked
	Duration time.Duration // how long arrivals were scheduled for
	Sent     int           // requests started (Sent + Dropped = arrivals scheduled)
	OK       int           // requests that returned no error
	Errors   int           // requests that returned an error
	// Unfinished counts requests still running when ctx ended: neither OK
	// nor Errors, and not in the percentiles. Zero when ctx outlives the run.
	Unfinished int
	// Late counts started arrivals that began more than openLoopLateBound
	// after their scheduled time (the generator fell behind and caught up).
	Late int
	// Dropped counts arrivals not started because maxInFlight requests were
	// already running. They are not in Sent, and not in Late.
	Dropped int
	// Latency of completed requests (OK or not), measured from the
	// scheduled arrival time to the return of fire; nearest-rank
	// percentiles (see nearestRank).
	P50, P99, Max time.Duration
	// IDs are the non-empty ids returned by OK requests, in completion order.
	IDs []string
}

// ErrorRate is the fraction of started requests that did not succeed,
// (Sent-OK)/Sent: errors and requests unfinished when ctx ended. Dropped
// arrivals were never sent and are reported on their own. 0 if nothing was
// sent.
func (l loadLevel) ErrorRate() float64 {
	if l.Sent == 0 {
		return 0
	}
	return float64(l.Sent-l.OK) / float64(l.Sent)
}

// AchievedRate is Sent per second of the asked Duration.
func (l loadLevel) AchievedRate() float64 {
	if l.Duration <= 0 {
		return 0
	}
	return float64(l.Sent) / l.Duration.Seconds()
}

// openLoopPacer blocks until arrival i's scheduled time at (or ctx ends,
// returning false). The real one sleeps; tests substitute one that stalls to
// simulate a generator that falls behind.
type openLoopPacer func(ctx context.Context, i int, at time.Time) bool

// openLoopSleeper is the real pacer: one timer, reset per arrival, no ticker.
func openLoopSleeper() openLoopPacer {
	var timer *time.Timer
	return func(ctx context.Context, _ int, at time.Time) bool {
		d := time.Until(at)
		if d <= 0 {
			return ctx.Err() == nil
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d) // Go ≥ 1.23: no stale value to drain
		}
		select {
		case <-timer.C:
			return true
		case <-ctx.Done():
			timer.Stop()
			return false
		}
	}
}

// openLoop fires at a fixed arrival rate for d: arrival i is scheduled at
// start + i/rate (for every i with i/rate < d, so about rate*d arrivals),
// independent of how long earlier requests take (open loop), each in its own
// goroutine, at most maxInFlight at once: an arrival that finds maxInFlight
// requests running is dropped and counted, never queued, so that the schedule
// is never held back by the system under test (maxInFlight <= 0 means no
// limit). If the generator itself falls behind, the overdue arrivals are
// started at once (catching up, not skipped) and counted as Late. It waits
// for all started requests to finish, or for ctx to end, before returning;
// requests finishing after it returned are not recorded.
func openLoop(ctx context.Context, name string, rate float64, d time.Duration, maxInFlight int, fire fireFunc) loadLevel {
	return runOpenLoop(ctx, name, rate, d, maxInFlight, fire, openLoopSleeper())
}

func runOpenLoop(ctx context.Context, name string, rate float64, d time.Duration, maxInFlight int, fire fireFunc, pace openLoopPacer) loadLevel {
	lvl := loadLevel{Name: name, Rate: rate, Duration: d}
	if rate <= 0 || d <= 0 {
		return lvl
	}
	var slots chan struct{}
	if maxInFlight > 0 {
		slots = make(chan struct{}, maxInFlight)
	}

	var (
		mu        sync.Mutex
		closed    bool // set when openLoop returns; later completions are ignored
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	lvl.IDs = []string{}

	start := time.Now()
	for i := 0; ; i++ {
		offset := time.Duration(math.Round(float64(i) * float64(time.Second) / rate))
		if offset >= d {
			break
		}
		at := start.Add(offset)
		if !pace(ctx, i, at) {
			break
		}
		if slots != nil {
			select {
			case slots <- struct{}{}:
			default:
				mu.Lock()
				lvl.Dropped++
				mu.Unlock()
				continue
			}
		}
		mu.Lock()
		lvl.Sent++
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if time.Since(at) > openLoopLateBound {
				mu.Lock()
				if !closed {
					lvl.Late++
				}
				mu.Unlock()
			}
			id, err := fire(ctx)
			lat := time.Since(at) // from the scheduled arrival, not from the goroutine start
			if slots != nil {
				<-slots
			}
			mu.Lock()
			defer mu.Unlock()
			if closed {
				return
			}
			latencies = append(latencies, lat)
			if err != nil {
				lvl.Errors++
				return
			}
			lvl.OK++
			if id != "" {
				lvl.IDs = append(lvl.IDs, id)
			}
		}()
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}

	mu.Lock()
	defer mu.Unlock()
	closed = true
	out := lvl
	out.IDs = slices.Clone(lvl.IDs)
	out.Unfinished = out.Sent - out.OK - out.Errors
	out.P50, out.P99, out.Max = latencySummary(latencies)
	return out
}

// measureCapacity runs a closed loop with `workers` concurrent callers for d
// (each starts its next request when its previous one returns; no new
// request starts after d, the ones running then are waited for) and returns
// the completed OK requests per second of elapsed time, start to the last
// return. Failed requests do not count towards the rate. The error is set
// if the arguments are invalid, ctx ended before d was over, or no request
// succeeded.
func measureCapacity(ctx context.Context, d time.Duration, workers int, fire fireFunc) (perSecond float64, err error) {
	if workers < 1 || d <= 0 {
		return 0, fmt.Errorf("measureCapacity: need workers ≥ 1 and d > 0, got %d, %v", workers, d)
	}
	var (
		mu       sync.Mutex
		ok, errs int
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				_, err := fire(ctx)
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					ok++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil && elapsed < d {
		return 0, fmt.Errorf("measureCapacity: context ended after %v of %v: %w", elapsed.Round(time.Millisecond), d, err)
	}
	if ok == 0 {
		if firstErr == nil {
			firstErr = errors.New("no request completed")
		}
		return 0, fmt.Errorf("measureCapacity: no request succeeded (%d failed): %w", errs, firstErr)
	}
	return float64(ok) / elapsed.Seconds(), nil
}

// loadTable renders the levels as a Markdown table, preceded by the measured
// capacity, for docs/RELIABILITY.md and the chaos run's printout.
func loadTable(capacity float64, levels []loadLevel) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured capacity (closed loop): %.1f req/s. Latency from the scheduled arrival time; nearest-rank percentiles.\n\n", capacity)
	b.WriteString("| level | rate asked (/s) | rate achieved (/s) | sent | ok | errors | error rate % | dropped | late | p50 ms | p99 ms | max ms |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, l := range levels {
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %d | %d | %d | %.2f | %d | %d | %.1f | %.1f | %.1f |\n",
			l.Name, l.Rate, l.AchievedRate(), l.Sent, l.OK, l.Errors, 100*l.ErrorRate(),
			l.Dropped, l.Late, ms(l.P50), ms(l.P99), ms(l.Max))
	}
	return b.String()
}

// nearestRank is the p-th percentile (0 ≤ p ≤ 100) of sorted by the
// nearest-rank method: the smallest value such that at least p% of the
// values are ≤ it, i.e. sorted[ceil(p/100·n)-1], rank clamped to [1, n]. No
// interpolation: the result is always an observed latency. 0 if empty.
func nearestRank(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// latencySummary sorts a copy of lat and returns its p50, p99 and max.
func latencySummary(lat []time.Duration) (p50, p99, maxLat time.Duration) {
	if len(lat) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return nearestRank(s, 50), nearestRank(s, 99), s[len(s)-1]
}
