package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
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

// DefaultIPThrottlePolicy limits failed logins per client address, across
// emails, against password spraying (one or two guesses at each of many
// accounts, which the per-email limit never sees). It allows 20 failures per
// 15 minutes, then blocks for 1 minute, doubling to at most 15 minutes: four
// times the per-email allowance, so that a few people behind one NAT who
// mistype their passwords are not blocked, while a sprayer gets about 25
// guesses per 15 minutes from an address instead of thousands.
var DefaultIPThrottlePolicy = ThrottlePolicy{
	MaxFailures: 20,
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

// ThrottleLimit is one counter a login attempt is charged to: a key (such as
// a hash of the email, or of the client's address) and its policy.
type ThrottleLimit struct {
	Key    string
	Policy ThrottlePolicy
}

// LoginReservation is the answer of ReserveLoginAttempt: either the attempt
// was refused (Blocked), or it was counted as a failure on every key and may
// be evaluated, and later be given back (ReleaseLoginAttempt) or forgotten
// with all other failures of a key (ResetLoginFailures).
type LoginReservation struct {
	// BlockedUntil is when the attempt may be made again; zero when the
	// attempt was allowed.
	BlockedUntil time.Time
	// BlockedKey is the key whose block lasts longest, when refused.
	BlockedKey string
	// charges are what the attempt changed per key, to give it back.
	charges map[string]charge
}

// charge is what one reserved attempt did to one key's row.
type charge struct {
	// set is the block this attempt started or lengthened; zero if none.
	set time.Time
	// prev is the block before it (nil if there was none).
	prev *time.Time
}

// Blocked reports whether the attempt was refused.
func (r LoginReservation) Blocked() bool { return !r.BlockedUntil.IsZero() }

// Started reports whether the attempt started (or lengthened) a block of
// key: the lockout that the audit trail records.
func (r LoginReservation) Started(key string) bool { return !r.charges[key].set.IsZero() }

// LoginBlockedUntil returns when logins for key are allowed again, or the
// zero time if they are allowed now.
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

// ReserveLoginAttempt decides, before any password is checked, whether a
// login attempt may be made, and counts it as a failure if so. In one
// transaction it locks the row of every key: if any key is blocked, the
// attempt is refused and nothing is counted (a refused guess teaches the
// guesser nothing, so it does not lengthen the block either); otherwise the
// attempt is counted on every key, as RecordLoginFailure would, and the
// block it may start applies to the attempts after it. Counting first is
// what makes the limit hold under concurrency: of N simultaneous guesses at
// most MaxFailures are let through, where reading the block, checking the
// password and then counting let all N through.
func (s *Store) ReserveLoginAttempt(ctx context.Context, now time.Time, limits ...ThrottleLimit) (LoginReservation, error) {
	now = utc(now)
	// Rows are locked in key order, so two attempts charging the same
	// keys cannot deadlock on MySQL.
	limits = slices.Clone(limits)
	slices.SortFunc(limits, func(a, b ThrottleLimit) int { return strings.Compare(a.Key, b.Key) })
	for i := 1; i < len(limits); i++ {
		if limits[i].Key == limits[i-1].Key {
			return LoginReservation{}, fmt.Errorf("reserve login attempt: key %q given twice", limits[i].Key)
		}
	}
	var res LoginReservation
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		res = LoginReservation{}
		rows := make([]*ent.LoginThrottle, len(limits))
		for i, l := range limits {
			t, err := s.lockThrottle(ctx, tx, l.Key, now)
			if err != nil {
				return err
			}
			rows[i] = t
			if t.BlockedUntil != nil && t.BlockedUntil.After(now) && t.BlockedUntil.After(res.BlockedUntil) {
				res.BlockedUntil, res.BlockedKey = t.BlockedUntil.UTC(), l.Key
			}
		}
		if res.Blocked() {
			return nil
		}
		res.charges = make(map[string]charge, len(limits))
		for i, l := range limits {
			blockedUntil, err := countFailure(ctx, rows[i], now, l.Policy)
			if err != nil {
				return err
			}
			c := charge{prev: rows[i].BlockedUntil}
			if !blockedUntil.IsZero() && (c.prev == nil || !c.prev.Equal(blockedUntil)) {
				c.set = blockedUntil
			}
			res.charges[l.Key] = c
		}
		return nil
	})
	if err != nil {
		return LoginReservation{}, wrap(err, "reserve login attempt")
	}
	return res, nil
}

// ReleaseLoginAttempt gives back the attempt r counted on key, for an
// attempt that turned out not to be a failure: a successful login, for a
// counter that a success must not reset (a sprayer logging into their own
// account would otherwise clear the counter of their address), or an
// attempt whose password was never checked. The block the attempt started is
// lifted unless a later attempt has changed it. Releasing a key r did not
// count, or twice, is harmless but wrong: callers release each key once.
func (s *Store) ReleaseLoginAttempt(ctx context.Context, r LoginReservation, key string) error {
	c, ok := r.charges[key]
	if !ok {
		return nil
	}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		q := tx.LoginThrottle.Query().Where(loginthrottle.ID(key))
		if s.dialect == dialect.MySQL {
			q = q.ForUpdate()
		}
		t, err := q.Only(ctx)
		switch {
		case ent.IsNotFound(err):
			// Reset or purged since: nothing left to give back.
			return nil
		case err != nil:
			return fmt.Errorf("lock login throttle: %w", err)
		}
		up := t.Update().SetFailures(max(t.Failures-1, 0))
		if !c.set.IsZero() && t.BlockedUntil != nil && t.BlockedUntil.Equal(c.set) {
			if c.prev == nil {
				up.ClearBlockedUntil()
			} else {
				up.SetBlockedUntil(*c.prev)
			}
		}
		if err := up.Exec(ctx); err != nil {
			return fmt.Errorf("update login throttle: %w", err)
		}
		return nil
	})
	if err != nil {
		return wrap(err, "release login attempt")
	}
	return nil
}

// RecordLoginFailure counts a failed login for key and returns until when
// logins are blocked (zero if they are not). The row is created if needed and
// then locked, so concurrent failures are all counted.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, now time.Time, p ThrottlePolicy) (time.Time, error) {
	now = utc(now)
	var blockedUntil time.Time
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		t, err := s.lockThrottle(ctx, tx, key, now)
		if err != nil {
			return err
		}
		blockedUntil, err = countFailure(ctx, t, now, p)
		return err
	})
	if err != nil {
		return time.Time{}, wrap(err, "record login failure")
	}
	return blockedUntil, nil
}

// lockThrottle returns the row of key, created if needed and locked until tx
// ends.
func (s *Store) lockThrottle(ctx context.Context, tx *ent.Tx, key string, now time.Time) (*ent.LoginThrottle, error) {
	// Insert a zero row unless one exists: from here on there is a row to
	// lock, also for the first failure of a key.
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
		return nil, invalid(err)
	}
	q := tx.LoginThrottle.Query().Where(loginthrottle.ID(key))
	if s.dialect == dialect.MySQL {
		// SQLite has no row locks and needs none: an immediate
		// transaction holds the database's write lock.
		q = q.ForUpdate()
	}
	t, err := q.Only(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock login throttle: %w", err)
	}
	return t, nil
}

// countFailure adds one failure to the locked row t and returns until when
// logins are blocked (zero if they are not).
func countFailure(ctx context.Context, t *ent.LoginThrottle, now time.Time, p ThrottlePolicy) (time.Time, error) {
	failures, windowStart := t.Failures+1, t.WindowStartedAt
	if t.Failures == 0 || !now.Before(windowStart.Add(p.Window)) {
		failures, windowStart = 1, now
	}
	up := t.Update().
		SetFailures(failures).
		SetWindowStartedAt(windowStart).
		SetUpdatedAt(now)
	var blockedUntil time.Time
	if d := p.block(failures); d > 0 {
		blockedUntil = now.Add(d)
	}
	// A block still running is never shortened, even if the window of the
	// failures that caused it has passed.
	if t.BlockedUntil != nil && t.BlockedUntil.After(now) && t.BlockedUntil.After(blockedUntil) {
		blockedUntil = t.BlockedUntil.UTC()
	}
	if blockedUntil.IsZero() {
		up.ClearBlockedUntil()
	} else {
		up.SetBlockedUntil(blockedUntil)
	}
	if err := up.Exec(ctx); err != nil {
		return time.Time{}, fmt.Errorf("update login throttle: %w", err)
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
