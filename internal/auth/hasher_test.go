package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/errs"
)

func TestHashConcurrencyFormula(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name   string
		procs  int
		budget int64
		params PasswordParams
		want   int
	}{
		{"2 CPUs, default budget: CPUs bind", 2, DefaultHashMemoryBudget, DefaultPasswordParams, 4},
		{"16 CPUs, default budget: memory binds", 16, DefaultHashMemoryBudget, DefaultPasswordParams, 13},
		{"16 CPUs, 1 GiB budget", 16, 1024 * mib, DefaultPasswordParams, 32},
		{"budget below one hash: still one", 8, 10 * mib, DefaultPasswordParams, 1},
		{"cheap hashes: CPUs bind", 4, DefaultHashMemoryBudget, fastParams, 8},
		{"no memory cost given", 3, DefaultHashMemoryBudget, PasswordParams{}, 6},
	}
	for _, tc := range tests {
		if got := hashConcurrency(tc.procs, tc.budget, tc.params); got != tc.want {
			t.Errorf("%s: hashConcurrency(%d, %d, m=%d) = %d, want %d", tc.name, tc.procs, tc.budget, tc.params.MemoryKiB, got, tc.want)
		}
	}
	for _, tc := range []struct{ limit, want int64 }{
		{0, DefaultHashMemoryBudget},
		{1 << 30, 256 * mib},
		{512 * mib, 128 * mib},
	} {
		if got := hashMemoryBudget(tc.limit); got != tc.want {
			t.Errorf("hashMemoryBudget(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
	if n := DefaultHashConcurrency(DefaultPasswordParams); n < 1 || n > 13 {
		t.Errorf("DefaultHashConcurrency(OWASP) = %d on this machine, want 1..13 (256 MiB / 19 MiB at most)", n)
	}
}

func TestReadCgroupLimit(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]int64{
		"536870912\n":         536870912,
		"max\n":               0,
		"":                    0,
		"9223372036854771712": 9223372036854771712, // cgroup v1's "none"; memoryLimit ignores it
		"lots":                0,
	} {
		f := filepath.Join(dir, "memory.max")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := readLimit(f); got != want {
			t.Errorf("readLimit(%q) = %d, want %d", content, got, want)
		}
	}
	if got := readLimit(filepath.Join(dir, "absent")); got != 0 {
		t.Errorf("readLimit(absent) = %d", got)
	}
}

// gate holds every hash that enters a slot until it is opened, and tells
// the test each time one enters.
type gate struct {
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 1000), open: make(chan struct{})} }

func (g *gate) hold() { g.entered <- struct{}{}; <-g.open }

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// TestHasherCapsConcurrentHashes: of many concurrent hashes no more than the
// cap run at once, counted inside the hasher, and all complete.
func TestHasherCapsConcurrentHashes(t *testing.T) {
	const limit, callers = 3, 40
	h := NewHasher(fastParams, limit, time.Minute)
	if h.Concurrency() != limit {
		t.Fatalf("Concurrency = %d", h.Concurrency())
	}
	g := newGate()
	t.Cleanup(g.release)
	h.inSlot = g.hold
	stored, err := HashPassword("the right password", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			var err error
			if i%2 == 0 {
				_, err = h.HashPassword(t.Context(), "pw")
			} else {
				var ok bool
				ok, err = h.CheckPassword(t.Context(), "the right password", stored)
				if err == nil && !ok {
					err = errors.New("right password refused")
				}
			}
			results[i] = err
		})
	}
	// The cap fills up, and then the hashes inside hold it.
	for range limit {
		<-g.entered
	}
	if got := h.running.Load(); got != limit {
		t.Fatalf("%d hashes running with a cap of %d", got, limit)
	}
	g.release()
	wg.Wait()
	for i, err := range results {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if got := h.peak.Load(); got != limit {
		t.Fatalf("peak of concurrent hashes = %d, want the cap %d", got, limit)
	}
	if got := len(g.entered); got != callers-limit {
		t.Fatalf("%d hashes entered after the gate opened, want %d", got, callers-limit)
	}
}

// TestHasherRefusesWaitersPastTheBound: with every slot held, a call waits
// for the hasher's bound or the request's deadline, whichever is sooner, and
// then gets ErrBusy (resource_exhausted); a caller that goes away gets its
// own error; the slots come back afterwards.
func TestHasherRefusesWaitersPastTheBound(t *testing.T) {
	const limit, bound = 2, 150 * time.Millisecond
	h := NewHasher(fastParams, limit, bound)
	g := newGate()
	t.Cleanup(g.release)
	h.inSlot = g.hold
	var holders sync.WaitGroup
	for range limit {
		holders.Go(func() {
			if _, err := h.HashPassword(context.Background(), "pw"); err != nil {
				t.Errorf("holder: %v", err)
			}
		})
	}
	for range limit {
		<-g.entered
	}

	if errs.KindOf(ErrBusy) != errs.KindResourceExhausted || !strings.Contains(ErrBusy.Error(), "busy hashing passwords") {
		t.Fatalf("ErrBusy = %v (kind %v)", ErrBusy, errs.KindOf(ErrBusy))
	}
	start := time.Now()
	if _, err := h.CheckPassword(context.Background(), "pw", "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA"); !errors.Is(err, ErrBusy) {
		t.Fatalf("past the bound: %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited < bound {
		t.Fatalf("refused after %v, before the bound %v", waited, bound)
	}

	// A request deadline sooner than the bound ends the wait sooner.
	h.wait = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := h.HashPassword(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("past the request's deadline: %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited > 30*time.Second {
		t.Fatalf("waited %v with a 100 ms deadline", waited)
	}
	// An expired deadline does not wait at all; a canceled request is canceled.
	if _, err := h.HashPassword(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("expired deadline: %v, want ErrBusy", err)
	}
	canceled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if _, err := h.HashPassword(canceled, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled request: %v, want context.Canceled", err)
	}
	if got := len(g.entered); got != 0 {
		t.Fatalf("%d refused calls entered a slot", got)
	}

	// The slots come back.
	g.release()
	holders.Wait()
	h.inSlot = nil
	hash, err := h.HashPassword(context.Background(), "after the burst")
	if err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("after the holders left: %q, %v", hash, err)
	}
	if ok, err := h.CheckPassword(context.Background(), "after the burst", hash); err != nil || !ok {
		t.Fatalf("CheckPassword through the hasher: %v, %v", ok, err)
	}
}

func TestNewHasherDefaults(t *testing.T) {
	h := NewHasher(DefaultPasswordParams, 0, 0)
	if h.Concurrency() != DefaultHashConcurrency(DefaultPasswordParams) || h.wait != DefaultHashWait {
		t.Fatalf("defaults: concurrency %d, wait %v", h.Concurrency(), h.wait)
	}
	if h := NewHasher(fastParams, 7, time.Second); h.Concurrency() != 7 || h.wait != time.Second {
		t.Fatalf("overrides: concurrency %d, wait %v", h.Concurrency(), h.wait)
	}
}
