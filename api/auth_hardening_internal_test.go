package api

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// countingHasher counts the password checks that reach the hasher.
type countingHasher struct {
	passwordHasher
	checks atomic.Int64
}

func (c *countingHasher) CheckPassword(ctx context.Context, password, hash string) (bool, error) {
	c.checks.Add(1)
	return c.passwordHasher.CheckPassword(ctx, password, hash)
}

// TestConcurrentWrongLoginsAreCountedBeforeTheyAreChecked: 50 wrong
// passwords for one email at once, on SQLite and MariaDB, through the real
// handler. The attempt is reserved before the password is checked, so the
// hasher sees exactly the allowance (5) of password checks, those answer
// unauthenticated, and the 45 others are refused unseen with
// resource_exhausted and the time left. Refused attempts are not counted.
// Not parallel: ForEachDB migrates databases outside the harness's lock.
func TestConcurrentWrongLoginsAreCountedBeforeTheyAreChecked(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, st *store.Store) {
		now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		var clock atomic.Pointer[time.Time]
		clock.Store(&now)
		s := New(Deps{
			Store:          st,
			Tokens:         auth.NewTokens([]byte("internal-test-signing-key-0123456789"), nil, "paymentsd", "payments-api", 15*time.Minute, nil),
			PasswordParams: auth.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
			Now:            func() time.Time { return *clock.Load() },
		})
		counter := &countingHasher{passwordHasher: s.guards.hasher}
		s.guards.hasher = counter
		hs := httptest.NewServer(s.Handler())
		t.Cleanup(hs.Close)
		client := paymentsv1connect.NewAuthServiceClient(hs.Client(), hs.URL)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const email, password = "victim@example.com", "the right password of the victim"
		if _, err := client.Register(ctx, connect.NewRequest(&paymentsv1.RegisterRequest{
			Email: email, Password: password, Role: paymentsv1.Role_ROLE_MERCHANT,
		})); err != nil {
			t.Fatal(err)
		}

		const n = 50
		allowance := store.DefaultThrottlePolicy.MaxFailures
		start := make(chan struct{})
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = client.Login(ctx, connect.NewRequest(&paymentsv1.LoginRequest{Email: email, Password: fmt.Sprintf("wrong password %03d", i)}))
			})
		}
		close(start)
		wg.Wait()

		if got := counter.checks.Load(); got != int64(allowance) {
			t.Fatalf("%d passwords checked for %d concurrent wrong logins, want exactly %d", got, n, allowance)
		}
		unauthenticated, refused := 0, 0
		for i, err := range errs {
			var ce *connect.Error
			if !errors.As(err, &ce) {
				t.Fatalf("attempt %d: %v", i, err)
			}
			switch {
			case ce.Code() == connect.CodeUnauthenticated && ce.Message() == badLogin:
				unauthenticated++
			// The clock stands still: the block of the 5th failure is a minute.
			case ce.Code() == connect.CodeResourceExhausted && ce.Message() == "too many failed logins for this email; try again in 60 s":
				refused++
			default:
				t.Fatalf("attempt %d: %v %q", i, ce.Code(), ce.Message())
			}
		}
		if unauthenticated != allowance || refused != n-allowance {
			t.Fatalf("%d unauthenticated and %d resource_exhausted, want %d and %d", unauthenticated, refused, allowance, n-allowance)
		}
		// The email and the address each counted the checked attempts only.
		rows := st.Client.LoginThrottle.Query().AllX(ctx)
		if len(rows) != 2 {
			t.Fatalf("%d throttle rows, want 2 (the email, the address)", len(rows))
		}
		for _, r := range rows {
			if r.Failures != allowance {
				t.Errorf("a throttle row counts %d failures, want %d", r.Failures, allowance)
			}
		}

		// The owner waits out the block like everyone else, then gets in,
		// which forgets the email's failures.
		_, err := client.Login(ctx, connect.NewRequest(&paymentsv1.LoginRequest{Email: email, Password: password}))
		if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "try again in 60 s") {
			t.Fatalf("right password while blocked: %v", err)
		}
		later := now.Add(time.Minute)
		clock.Store(&later)
		if _, err := client.Login(ctx, connect.NewRequest(&paymentsv1.LoginRequest{Email: email, Password: password})); err != nil {
			t.Fatalf("right password after the block: %v", err)
		}
		if got := counter.checks.Load(); got != int64(allowance)+1 {
			t.Fatalf("%d password checks after the owner's login, want %d", got, allowance+1)
		}
		if _, err := st.Client.LoginThrottle.Get(ctx, throttleKey(email)); err == nil {
			t.Error("the email's failures outlived a successful login")
		}
		// An unknown email costs a real check too, through the same hasher.
		_, err = client.Login(ctx, connect.NewRequest(&paymentsv1.LoginRequest{Email: "nobody@example.com", Password: password}))
		if connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Fatalf("unknown email: %v", err)
		}
		if got := counter.checks.Load(); got != int64(allowance)+2 {
			t.Fatalf("%d password checks after an unknown email's login, want %d", got, allowance+2)
		}
	})
}

// TestPasswordHashConcurrencyIsConfigurable: Deps.PasswordHashConcurrency
// sets the hasher's cap; zero sizes it from CPUs and memory.
func TestPasswordHashConcurrencyIsConfigurable(t *testing.T) {
	for _, tc := range []struct{ configured, want int }{
		{0, auth.DefaultHashConcurrency(auth.DefaultPasswordParams)},
		{3, 3},
		{500, 500},
	} {
		s := New(Deps{PasswordHashConcurrency: tc.configured})
		h, ok := s.guards.hasher.(*auth.Hasher)
		if !ok {
			t.Fatalf("the server's hasher is a %T", s.guards.hasher)
		}
		if h.Concurrency() != tc.want {
			t.Errorf("PasswordHashConcurrency %d: cap %d, want %d", tc.configured, h.Concurrency(), tc.want)
		}
	}
}

// TestAccountStatusCache: answers are reused for less than the TTL, read
// again after it (or when the clock went back), and the cache never holds
// more than its bound, dropping stale entries first, then the oldest.
func TestAccountStatusCache(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var (
		mu     sync.Mutex
		reads  = map[string]int{}
		active = map[string]bool{"a": true, "b": true, "c": true, "d": true}
	)
	c := newAccountStatusCache(5*time.Second, 3, func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		func(_ context.Context, id string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			reads[id]++
			if id == "broken" {
				return false, errors.New("database down")
			}
			return active[id], nil
		})
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	check := func(id string, want bool, wantReads int) {
		t.Helper()
		got, err := c.active(context.Background(), id)
		if err != nil || got != want {
			t.Fatalf("active(%s) = %v, %v; want %v", id, got, err, want)
		}
		mu.Lock()
		defer mu.Unlock()
		if reads[id] != wantReads {
			t.Fatalf("%s read %d times, want %d", id, reads[id], wantReads)
		}
	}

	check("a", true, 1)
	mu.Lock()
	active["a"] = false
	mu.Unlock()
	advance(4999 * time.Millisecond)
	check("a", true, 1) // cached
	advance(time.Millisecond)
	check("a", false, 2) // read again at the TTL
	advance(-time.Second)
	check("a", false, 3) // a clock that went back reads again

	if _, err := c.active(context.Background(), "broken"); err == nil {
		t.Fatal("a failed read was answered")
	}
	if _, err := c.active(context.Background(), "broken"); err == nil || reads["broken"] != 2 {
		t.Fatalf("a failed read was cached: %v, %d reads", err, reads["broken"])
	}

	// Bounded: b and c fill the cache (a is there); d evicts the oldest, a.
	advance(time.Second)
	check("b", true, 1)
	advance(time.Second)
	check("c", true, 1)
	check("d", true, 1)
	if len(c.entries) != 3 {
		t.Fatalf("%d entries, want the bound 3", len(c.entries))
	}
	if _, ok := c.entries["a"]; ok {
		t.Fatal("the oldest entry was kept and a newer one dropped")
	}
	check("b", true, 1)
	// Once all are stale, a new entry clears them all.
	advance(time.Minute)
	check("e", false, 1)
	if len(c.entries) != 1 {
		t.Fatalf("%d entries after the stale ones were swept, want 1", len(c.entries))
	}
}
