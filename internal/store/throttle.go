package store

import (
	"context"
	"fmt"
	"time"

	"entgo.io/ent/dialect"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/loginthrottle"
)

// ThrottlePolicy says how failed logins slow down password guessing. After
// MaxFailures failures within Window, logins are refused for BaseBlock, and
// every further failure doubles the block up to MaxBlock: guessing becomes
// hopeless, while the real owner waits at most MaxBlock.
type ThrottlePolicy struct {
	MaxFailures int
	Window      time.Duration
	BaseBlock   time.Duration
	MaxBlock    time.Duration
}

// DefaultThrottlePolicy allows 5 failures per 15 minutes, then blocks for 1
// minute, doubling to at most 15 minutes.
var DefaultThrottlePolicy = ThrottlePolicy{
	MaxFailures: 5,
	Window:      15 * time.Minute,
	BaseBlock:   time.Minute,
	MaxBlock:    15 * time.Minute,
}

// block is how long the failures-th failure within a window blocks logins.
func (p ThrottlePolicy) block(failures int) time.Duration {
	if p.MaxFailures <= 0 || failures < p.MaxFailures {
		return 0
	}
	d := p.BaseBlock
	// Doubling stops at the cap, so a long run of failures cannot overflow.
	for i := p.MaxFailures; i < failures && d < p.MaxBlock; i++ {
		d *= 2
	}
	return min(d, p.MaxBlock)
}

// LoginBlockedUntil returns when logins for key are allowed again, or the
// zero time if they are allowed now. Callers check it before verifying the
// password, so a blocked attacker learns nothing from guesses.
func (s *Store) LoginBlockedUntil(ctx context.Context, key string, now time.Time) (time.Time, error) {
	t, err := s.Client.LoginThrottle.Get(ctx, key)
	switch {
	case ent.IsNotFound(err):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("read login throttle: %w", err)
	case t.BlockedUntil == nil || !t.BlockedUntil.After(utc(now)):
		return time.Time{}, nil
	}
	return t.BlockedUntil.UTC(), nil
}

// RecordLoginFailure counts a failed login for key and returns until when
// logins are blocked (zero if they are not). The row is created if needed and
// then locked, so concurrent failures are all counted.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, now time.Time, p ThrottlePolicy) (time.Time, error) {
	now = utc(now)
	var blockedUntil time.Time
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		// Insert a zero row unless one exists: from here on there is a row
		// to lock, also for the first failure of a key.
		if err := tx.LoginThrottle.Create().
			SetID(key).
			SetFailures(0).
			SetWindowStartedAt(now).
			SetUpdatedAt(now).
			OnConflictColumns(loginthrottle.FieldID).
			// Ignore (a no-op update) rather than DoNothing: SQLite's
			// RETURNING then yields the existing row instead of none.
			Ignore().
			Exec(ctx); err != nil {
			return invalid(err)
		}
		q := tx.LoginThrottle.Query().Where(loginthrottle.ID(key))
		if s.dialect == dialect.MySQL {
			// SQLite has no row locks and needs none: an immediate
			// transaction holds the database's write lock.
			q = q.ForUpdate()
		}
		t, err := q.Only(ctx)
		if err != nil {
			return fmt.Errorf("lock login throttle: %w", err)
		}
		failures, windowStart := t.Failures+1, t.WindowStartedAt
		if t.Failures == 0 || !now.Before(windowStart.Add(p.Window)) {
			failures, windowStart = 1, now
		}
		up := t.Update().
			SetFailures(failures).
			SetWindowStartedAt(windowStart).
			SetUpdatedAt(now)
		if d := p.block(failures); d > 0 {
			blockedUntil = now.Add(d)
		}
		// A block still running is never shortened, even if the window of
		// the failures that caused it has passed.
		if t.BlockedUntil != nil && t.BlockedUntil.After(now) && t.BlockedUntil.After(blockedUntil) {
			blockedUntil = t.BlockedUntil.UTC()
		}
		if blockedUntil.IsZero() {
			up.ClearBlockedUntil()
		} else {
			up.SetBlockedUntil(blockedUntil)
		}
		if err := up.Exec(ctx); err != nil {
			return fmt.Errorf("update login throttle: %w", err)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, wrap(err, "record login failure")
	}
	return blockedUntil, nil
}

// ResetLoginFailures forgets the failures of key, after a successful login.
func (s *Store) ResetLoginFailures(ctx context.Context, key string) error {
	if _, err := s.Client.LoginThrottle.Delete().Where(loginthrottle.ID(key)).Exec(ctx); err != nil {
		return fmt.Errorf("reset login throttle: %w", err)
	}
	return nil
}
