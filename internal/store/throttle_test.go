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
