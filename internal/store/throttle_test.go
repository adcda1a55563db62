package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

func TestLoginThrottleBlocksGrowsAndCaps(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := store.DefaultThrottlePolicy
		key := hash("victim@example.com")
		steps := []struct {
			name        string
			at          time.Time
			wantBlocked time.Duration // from at; 0 = not blocked
		}{
			{"1st", t0, 0},
			{"2nd", t0.Add(1 * time.Second), 0},
			{"3rd", t0.Add(2 * time.Second), 0},
			{"4th", t0.Add(3 * time.Second), 0},
			{"5th blocks", t0.Add(4 * time.Second), time.Minute},
			{"6th doubles", t0.Add(2 * time.Minute), 2 * time.Minute},
			{"7th", t0.Add(5 * time.Minute), 4 * time.Minute},
			{"8th", t0.Add(10 * time.Minute), 8 * time.Minute},
			{"9th is capped", t0.Add(14 * time.Minute), 15 * time.Minute},
			{"10th stays capped", t0.Add(14*time.Minute + time.Second), 15 * time.Minute},
		}
		for _, st := range steps {
			got, err := s.RecordLoginFailure(ctx, key, st.at, p)
			if err != nil {
				t.Fatalf("%s: RecordLoginFailure: %v", st.name, err)
			}
			want := time.Time{}
			if st.wantBlocked > 0 {
				want = st.at.Add(st.wantBlocked)
			}
			if !got.Equal(want) {
				t.Fatalf("%s: blocked until %v, want %v", st.name, got, want)
			}
			stored, err := s.LoginBlockedUntil(ctx, key, st.at)
			if err != nil {
				t.Fatal(err)
			}
			if !stored.Equal(want) {
				t.Fatalf("%s: LoginBlockedUntil = %v, want %v", st.name, stored, want)
			}
		}
		if f := s.Client.LoginThrottle.GetX(ctx, key).Failures; f != 10 {
			t.Errorf("failures = %d, want 10", f)
		}

		// The block ends on time.
		end := t0.Add(14*time.Minute + time.Second + 15*time.Minute)
		for _, tc := range []struct {
			at   time.Time
			want time.Time
		}{
			{end.Add(-time.Microsecond), end},
			{end, time.Time{}},
			{end.Add(time.Hour), time.Time{}},
		} {
			got, err := s.LoginBlockedUntil(ctx, key, tc.at)
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("LoginBlockedUntil(%v) = %v, %v; want %v", tc.at, got, err, tc.want)
			}
		}

		// Another key is unaffected.
		if got, err := s.LoginBlockedUntil(ctx, hash("someone-else"), t0.Add(5*time.Minute)); err != nil || !got.IsZero() {
			t.Errorf("other key: %v, %v", got, err)
		}

		// After the block, a failure outside the window starts a new count.
		got, err := s.RecordLoginFailure(ctx, key, end.Add(time.Minute), p)
		if err != nil || !got.IsZero() {
			t.Fatalf("failure after the window: blocked until %v, %v", got, err)
		}
		if f := s.Client.LoginThrottle.GetX(ctx, key).Failures; f != 1 {
			t.Errorf("failures after the window = %d, want 1", f)
		}
	})
}

func TestLoginThrottleWindowRestartsCount(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := store.DefaultThrottlePolicy
		key := hash("slow@example.com")
		for i := range 4 {
			if got, err := s.RecordLoginFailure(ctx, key, t0.Add(time.Duration(i)*time.Minute), p); err != nil || !got.IsZero() {
				t.Fatalf("failure %d: %v, %v", i+1, got, err)
			}
		}
		// The 5th failure comes exactly one window after the 1st: count restarts.
		got, err := s.RecordLoginFailure(ctx, key, t0.Add(p.Window), p)
		if err != nil || !got.IsZero() {
			t.Fatalf("5th failure after the window: blocked until %v, %v", got, err)
		}
		// Four more within the new window block on the 5th of that window.
		for i := 1; i <= 4; i++ {
			at := t0.Add(p.Window + time.Duration(i)*time.Second)
			got, err := s.RecordLoginFailure(ctx, key, at, p)
			if err != nil {
				t.Fatal(err)
			}
			if want := i == 4; want != !got.IsZero() {
				t.Fatalf("failure %d of the new window: blocked until %v", i+1, got)
			}
		}
	})
}

func TestLoginThrottleReset(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := store.DefaultThrottlePolicy
		key := hash("owner@example.com")
		var blocked time.Time
		for i := range 5 {
			var err error
			if blocked, err = s.RecordLoginFailure(ctx, key, t0.Add(time.Duration(i)*time.Second), p); err != nil {
				t.Fatal(err)
			}
		}
		if blocked.IsZero() {
			t.Fatal("not blocked after 5 failures")
		}
		// The owner logs in once the block is over; success resets.
		after := blocked.Add(time.Second)
		if err := s.ResetLoginFailures(ctx, key); err != nil {
			t.Fatalf("ResetLoginFailures: %v", err)
		}
		if err := s.ResetLoginFailures(ctx, key); err != nil {
			t.Fatalf("second ResetLoginFailures: %v", err)
		}
		if got, err := s.LoginBlockedUntil(ctx, key, t0); err != nil || !got.IsZero() {
			t.Fatalf("after reset, within the old block: %v, %v", got, err)
		}
		for i := range 4 {
			got, err := s.RecordLoginFailure(ctx, key, after.Add(time.Duration(i)*time.Second), p)
			if err != nil || !got.IsZero() {
				t.Fatalf("failure %d after reset: blocked until %v, %v", i+1, got, err)
			}
		}
	})
}

func TestLoginThrottleCountsConcurrentFailures(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		key := hash("burst@example.com")
		const n = 20
		errs := concurrently(n, func(i int) error {
			_, err := s.RecordLoginFailure(ctx, key, t0.Add(time.Duration(i)*time.Millisecond), store.DefaultThrottlePolicy)
			return err
		})
		for _, err := range errs {
			if err != nil {
				t.Fatalf("RecordLoginFailure: %v", err)
			}
		}
		if f := s.Client.LoginThrottle.GetX(ctx, key).Failures; f != n {
			t.Fatalf("failures = %d, want %d: concurrent failures were lost", f, n)
		}
		got, err := s.LoginBlockedUntil(ctx, key, t0.Add(time.Second))
		if err != nil || got.IsZero() {
			t.Fatalf("not blocked after %d failures: %v", n, err)
		}
	})
}

// TestReserveLoginAttemptLetsAtMostTheAllowanceThrough: 50 simultaneous
// attempts for one email from one address; the attempt is counted before it
// is answered, so exactly MaxFailures are let through and every other one is
// refused with the end of the block, on each database.
func TestReserveLoginAttemptLetsAtMostTheAllowanceThrough(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		email, ip := hash("burst@example.com"), hash("ip:203.0.113.7")
		limits := []store.ThrottleLimit{
			{Key: email, Policy: store.DefaultThrottlePolicy},
			{Key: ip, Policy: store.DefaultIPThrottlePolicy},
		}
		const n = 50
		type answer struct {
			r   store.LoginReservation
			err error
		}
		answers := concurrently(n, func(int) answer {
			r, err := s.ReserveLoginAttempt(ctx, t0, limits...)
			return answer{r, err}
		})
		allowed := 0
		for _, a := range answers {
			switch {
			case a.err != nil:
				t.Fatalf("ReserveLoginAttempt: %v", a.err)
			case !a.r.Blocked():
				allowed++
			case !a.r.BlockedUntil.Equal(t0.Add(time.Minute)) || a.r.BlockedKey != email:
				t.Errorf("refused until %v by key %q, want %v by the email's key", a.r.BlockedUntil, a.r.BlockedKey, t0.Add(time.Minute))
			}
		}
		if want := store.DefaultThrottlePolicy.MaxFailures; allowed != want {
			t.Fatalf("%d of %d concurrent attempts allowed, want exactly %d", allowed, n, want)
		}
		// Refused attempts are not counted, on either key.
		for _, k := range []string{email, ip} {
			if f := s.Client.LoginThrottle.GetX(ctx, k).Failures; f != store.DefaultThrottlePolicy.MaxFailures {
				t.Errorf("failures of %s = %d, want %d", k, f, store.DefaultThrottlePolicy.MaxFailures)
			}
		}
	})
}

// TestReserveLoginAttemptRefusesWithoutCounting: a block on any key refuses
// the attempt, names the key blocked longest, and counts nothing anywhere.
func TestReserveLoginAttemptRefusesWithoutCounting(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		email, other, ip := hash("a@example.com"), hash("b@example.com"), hash("ip:198.51.100.1")
		emailP := store.DefaultThrottlePolicy
		ipP := store.ThrottlePolicy{MaxFailures: 3, Window: time.Hour, BaseBlock: 10 * time.Minute, MaxBlock: time.Hour}
		for i := range 3 {
			// Three emails, one address: the address's third failure blocks it.
			k := hash(string(rune('c'+i)) + "@example.com")
			r, err := s.ReserveLoginAttempt(ctx, t0, store.ThrottleLimit{Key: k, Policy: emailP}, store.ThrottleLimit{Key: ip, Policy: ipP})
			if err != nil || r.Blocked() {
				t.Fatalf("attempt %d: %+v, %v", i+1, r, err)
			}
		}
		for range 4 {
			if _, err := s.RecordLoginFailure(ctx, email, t0, emailP); err != nil {
				t.Fatal(err)
			}
		}
		// The email's own 5th failure would block it for a minute, the
		// address is blocked for ten: the longer block is the answer.
		at := t0.Add(time.Second)
		r, err := s.ReserveLoginAttempt(ctx, at, store.ThrottleLimit{Key: email, Policy: emailP}, store.ThrottleLimit{Key: ip, Policy: ipP})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Blocked() || r.BlockedKey != ip || !r.BlockedUntil.Equal(t0.Add(10*time.Minute)) {
			t.Fatalf("reservation = %+v, want blocked by the address until %v", r, t0.Add(10*time.Minute))
		}
		if f := s.Client.LoginThrottle.GetX(ctx, email).Failures; f != 4 {
			t.Errorf("the refused attempt was counted on the email: failures = %d, want 4", f)
		}
		if f := s.Client.LoginThrottle.GetX(ctx, ip).Failures; f != 3 {
			t.Errorf("the refused attempt was counted on the address: failures = %d, want 3", f)
		}
		if until, err := s.LoginBlockedUntil(ctx, ip, at); err != nil || !until.Equal(t0.Add(10*time.Minute)) {
			t.Errorf("the refused attempt changed the address's block: %v, %v", until, err)
		}
		// An email that is not blocked, from another address, goes through.
		if r, err := s.ReserveLoginAttempt(ctx, at, store.ThrottleLimit{Key: other, Policy: emailP}); err != nil || r.Blocked() {
			t.Fatalf("unrelated attempt: %+v, %v", r, err)
		}
		if _, err := s.ReserveLoginAttempt(ctx, at, store.ThrottleLimit{Key: other, Policy: emailP}, store.ThrottleLimit{Key: other, Policy: ipP}); err == nil {
			t.Fatal("a key given twice was accepted")
		}
	})
}

// TestReleaseLoginAttempt: giving back an attempt takes back exactly that
// attempt, the block it started included, and no more; so a success that
// gives back its own attempt cannot clear the failures before it.
func TestReleaseLoginAttempt(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ip := hash("ip:192.0.2.1")
		p := store.ThrottlePolicy{MaxFailures: 3, Window: time.Hour, BaseBlock: time.Minute, MaxBlock: time.Hour}
		lim := store.ThrottleLimit{Key: ip, Policy: p}
		reserve := func(at time.Time) store.LoginReservation {
			t.Helper()
			r, err := s.ReserveLoginAttempt(ctx, at, lim)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		release := func(r store.LoginReservation) {
			t.Helper()
			if err := s.ReleaseLoginAttempt(ctx, r, ip); err != nil {
				t.Fatal(err)
			}
		}
		failures := func() int { t.Helper(); return s.Client.LoginThrottle.GetX(ctx, ip).Failures }

		reserve(t0)
		reserve(t0)
		// The third attempt starts the block; giving it back lifts it.
		third := reserve(t0)
		if until, _ := s.LoginBlockedUntil(ctx, ip, t0); !until.Equal(t0.Add(time.Minute)) {
			t.Fatalf("third attempt: blocked until %v, want %v", until, t0.Add(time.Minute))
		}
		release(third)
		if until, _ := s.LoginBlockedUntil(ctx, ip, t0); !until.IsZero() || failures() != 2 {
			t.Fatalf("after giving back the third attempt: blocked until %v, failures %d; want not blocked, 2", until, failures())
		}
		// The two failures before it still count: the next attempt blocks.
		again := reserve(t0)
		if again.Blocked() {
			t.Fatal("the attempt after the release was refused")
		}
		if r := reserve(t0); !r.Blocked() {
			t.Fatalf("2 failures + 1 attempt with an allowance of 3: %+v, want blocked", r)
		}

		// A block lengthened by a later attempt is not lifted by releasing
		// an earlier one.
		at := t0.Add(2 * time.Minute)
		fourth := reserve(at) // blocks for 2 minutes (the 4th failure)
		fifth := reserve(at.Add(2 * time.Minute))
		if fourth.Blocked() || fifth.Blocked() {
			t.Fatalf("attempts after the blocks ended were refused: %+v %+v", fourth, fifth)
		}
		release(fourth)
		wantUntil := at.Add(2*time.Minute + 4*time.Minute)
		if until, _ := s.LoginBlockedUntil(ctx, ip, at.Add(2*time.Minute)); !until.Equal(wantUntil) || failures() != 4 {
			t.Fatalf("after releasing an earlier attempt: blocked until %v, failures %d; want %v, 4", until, failures(), wantUntil)
		}

		// Releasing a refused attempt, an unknown key or a reset key does nothing.
		if err := s.ReleaseLoginAttempt(ctx, store.LoginReservation{}, ip); err != nil || failures() != 4 {
			t.Fatalf("releasing nothing: %v, failures %d", err, failures())
		}
		if err := s.ReleaseLoginAttempt(ctx, fifth, hash("other")); err != nil || failures() != 4 {
			t.Fatalf("releasing another key: %v, failures %d", err, failures())
		}
		if err := s.ResetLoginFailures(ctx, ip); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseLoginAttempt(ctx, fifth, ip); err != nil {
			t.Fatalf("releasing after a reset: %v", err)
		}
		if n := s.Client.LoginThrottle.Query().CountX(ctx); n != 0 {
			t.Fatalf("releasing after a reset left %d rows", n)
		}
	})
}

// TestReserveLoginAttemptSprayedConcurrently: 50 simultaneous attempts at 50
// different emails from one address (password spraying): the address's
// allowance lets exactly 20 through, the rest are refused by the address,
// and the emails' rows, created concurrently, do not deadlock the attempts.
func TestReserveLoginAttemptSprayedConcurrently(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		ip := hash("ip:203.0.113.99")
		const n = 50
		type answer struct {
			r   store.LoginReservation
			err error
		}
		answers := concurrently(n, func(i int) answer {
			r, err := s.ReserveLoginAttempt(ctx, t0,
				store.ThrottleLimit{Key: hash(string(rune('A'+i)) + "@example.com"), Policy: store.DefaultThrottlePolicy},
				store.ThrottleLimit{Key: ip, Policy: store.DefaultIPThrottlePolicy})
			return answer{r, err}
		})
		allowed := 0
		for _, a := range answers {
			switch {
			case a.err != nil:
				t.Fatalf("ReserveLoginAttempt: %v", a.err)
			case !a.r.Blocked():
				allowed++
			case a.r.BlockedKey != ip:
				t.Errorf("refused by key %q, want the address's", a.r.BlockedKey)
			}
		}
		if want := store.DefaultIPThrottlePolicy.MaxFailures; allowed != want {
			t.Fatalf("%d of %d sprayed attempts allowed, want %d", allowed, n, want)
		}
		if f := s.Client.LoginThrottle.GetX(ctx, ip).Failures; f != store.DefaultIPThrottlePolicy.MaxFailures {
			t.Errorf("the address counts %d failures, want %d", f, store.DefaultIPThrottlePolicy.MaxFailures)
		}
	})
}
