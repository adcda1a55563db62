package auth

import (
	"context"
	"errors"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/payments-platform/payments/internal/errs"
)

// DefaultHashMemoryBudget is how much memory the password hashes running at
// once may use together when the process has no memory limit: with OWASP's
// 19 MiB per hash, 13 hashes.
const DefaultHashMemoryBudget int64 = 256 << 20

// DefaultHashWait bounds how long a hash waits for a free slot before the
// request is refused as busy (sooner if the request's deadline is sooner).
const DefaultHashWait = 2 * time.Second

// hashMemoryShare is the part of a memory limit that hashes may use: the
// rest is for the process's other work and the garbage collector's slack.
const hashMemoryShare = 4

// noMemoryLimit is above any real limit; cgroup v1 reports "no limit" as a
// number near 2^63.
const noMemoryLimit int64 = 1 << 60

// ErrBusy refuses a hash that found every slot taken for the whole wait. It
// is a resource_exhausted domain error, so the API answers it as it is.
var ErrBusy = errs.ResourceExhausted("the server is busy hashing passwords; retry in a moment")

// Hasher runs argon2id hashes and checks with a cap on how many run at once.
// Each one holds the memory of its cost parameters (19 MiB with OWASP's) for
// tens of milliseconds; without a cap, a burst of a thousand logins or
// registrations would hold a thousand times that. Calls beyond the cap wait
// for a slot at most DefaultHashWait (or until the request's deadline, if
// sooner) and then fail with ErrBusy, so a burst is answered quickly instead
// of piling up. Every call that costs a hash goes through the same cap,
// including the check of an unknown email's login against a dummy hash.
type Hasher struct {
	params PasswordParams
	slots  chan struct{}
	wait   time.Duration

	// running and peak count the hashes inside a slot, independently of
	// the slots themselves, so tests can prove the cap holds.
	running, peak atomic.Int64
	// inSlot, when set (tests only), runs in a slot before the hash.
	inSlot func()
}

// NewHasher returns a hasher that hashes new passwords with params and runs
// at most concurrency hashes at once; concurrency <= 0 means
// DefaultHashConcurrency(params), wait <= 0 means DefaultHashWait.
func NewHasher(params PasswordParams, concurrency int, wait time.Duration) *Hasher {
	if concurrency <= 0 {
		concurrency = DefaultHashConcurrency(params)
	}
	if wait <= 0 {
		wait = DefaultHashWait
	}
	return &Hasher{params: params, slots: make(chan struct{}, concurrency), wait: wait}
}

// Concurrency is the most hashes the hasher runs at once.
func (h *Hasher) Concurrency() int { return cap(h.slots) }

// HashPassword is HashPassword with the hasher's parameters, within the cap.
func (h *Hasher) HashPassword(ctx context.Context, password string) (string, error) {
	var (
		hash string
		err  error
	)
	if rerr := h.run(ctx, func() { hash, err = HashPassword(password, h.params) }); rerr != nil {
		return "", rerr
	}
	return hash, err
}

// CheckPassword is CheckPassword within the cap.
func (h *Hasher) CheckPassword(ctx context.Context, password, hash string) (bool, error) {
	var (
		ok  bool
		err error
	)
	if rerr := h.run(ctx, func() { ok, err = CheckPassword(password, hash) }); rerr != nil {
		return false, rerr
	}
	return ok, err
}

// run runs fn in a slot.
func (h *Hasher) run(ctx context.Context, fn func()) error {
	if err := h.acquire(ctx); err != nil {
		return err
	}
	defer func() { <-h.slots }()
	n := h.running.Add(1)
	defer h.running.Add(-1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if h.inSlot != nil {
		h.inSlot()
	}
	fn()
	return nil
}

// acquire takes a slot, waiting at most h.wait or until ctx's deadline.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return busyOr(err)
	}
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	wait := h.wait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if wait <= 0 {
		return ErrBusy
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-timer.C:
		return ErrBusy
	case <-ctx.Done():
		return busyOr(ctx.Err())
	}
}

// busyOr is ErrBusy for a request whose deadline ran out while it waited
// (the wait, not the caller, made it fail) and err otherwise (the caller
// went away).
func busyOr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrBusy
	}
	return err
}

// DefaultHashConcurrency is the cap of a hasher with params on this
// machine: min(2 × GOMAXPROCS, budget / memory of one hash), at least 1,
// where the budget is a quarter of the process's memory limit (the lower
// of GOMEMLIMIT and the cgroup's memory.max) or, without a limit,
// DefaultHashMemoryBudget. Twice the CPUs keeps every CPU busy while some
// hashes wait to be scheduled; more would only add memory and latency.
func DefaultHashConcurrency(params PasswordParams) int {
	return hashConcurrency(runtime.GOMAXPROCS(0), hashMemoryBudget(memoryLimit()), params)
}

// hashConcurrency is DefaultHashConcurrency's formula.
func hashConcurrency(procs int, budget int64, params PasswordParams) int {
	n := int64(2 * procs)
	if perHash := int64(params.MemoryKiB) * 1024; perHash > 0 {
		n = min(n, budget/perHash)
	}
	return int(max(n, 1))
}

// hashMemoryBudget is the memory hashes may use under a memory limit of
// limit bytes (0: none).
func hashMemoryBudget(limit int64) int64 {
	if limit <= 0 {
		return DefaultHashMemoryBudget
	}
	return limit / hashMemoryShare
}

// memoryLimit is the lowest memory limit set on the process (GOMEMLIMIT or
// debug.SetMemoryLimit, cgroup v2 or v1), 0 if none is.
func memoryLimit() int64 {
	limit := int64(0)
	lower := func(v int64) {
		if v > 0 && v < noMemoryLimit && (limit == 0 || v < limit) {
			limit = v
		}
	}
	// A negative argument reads the limit without changing it.
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		lower(l)
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		lower(readLimit(f))
	}
	return limit
}

// readLimit reads a cgroup memory limit file; 0 for "max", absent or garbage.
func readLimit(path string) int64 {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		return 0
	}
	return v
}
