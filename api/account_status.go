package api

import (
	"context"
	"sync"
	"time"
)

// Bounds of the account status cache.
const (
	// accountStatusTTL is how long a disabled account's access tokens may
	// keep working: an access token is checked against the account's
	// status at most this long ago.
	accountStatusTTL = 5 * time.Second
	// accountStatusEntries bounds the cache's memory (about 100 bytes an
	// entry); past it, the least recently loaded entries make room.
	accountStatusEntries = 10_000
)

// accountStatusCache remembers for a few seconds whether accounts are
// active, so that access tokens (which are valid on their own until they
// expire) stop working within seconds of their account being disabled, for
// one database read per account and TTL instead of one per request.
type accountStatusCache struct {
	ttl time.Duration
	max int
	now func() time.Time
	// load reads whether an account exists and is active.
	load func(ctx context.Context, accountID string) (bool, error)

	mu      sync.Mutex
	entries map[string]accountStatus
}

// accountStatus is a cached answer and when it was read.
type accountStatus struct {
	active bool
	at     time.Time
}

func newAccountStatusCache(ttl time.Duration, max int, now func() time.Time, load func(context.Context, string) (bool, error)) *accountStatusCache {
	return &accountStatusCache{ttl: ttl, max: max, now: now, load: load, entries: map[string]accountStatus{}}
}

// active reports whether the account is active, as read at most ttl ago.
func (c *accountStatusCache) active(ctx context.Context, accountID string) (bool, error) {
	// The time is taken before the read, so an entry is never younger than
	// what it says.
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[accountID]
	c.mu.Unlock()
	// A clock that went back makes entries from its future stale too.
	if ok && !now.Before(e.at) && now.Sub(e.at) < c.ttl {
		return e.active, nil
	}
	active, err := c.load(ctx, accountID)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.entries[accountID]; !exists && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[accountID] = accountStatus{active: active, at: now}
	return active, nil
}

// evict makes room for one entry: it drops every stale entry and, if none
// was stale, the oldest. It scans the whole map, which happens only when the
// cache is full, and leaves it at most max-1 entries.
func (c *accountStatusCache) evict(now time.Time) {
	var (
		oldestID string
		oldest   time.Time
	)
	for id, e := range c.entries {
		if now.Before(e.at) || now.Sub(e.at) >= c.ttl {
			delete(c.entries, id)
			continue
		}
		if oldestID == "" || e.at.Before(oldest) {
			oldestID, oldest = id, e.at
		}
	}
	if len(c.entries) >= c.max {
		delete(c.entries, oldestID)
	}
}

// forget drops what the cache knows of an account, so this instance sees a
// change of its status (a suspension, a reactivation) at once; other
// instances see it within the TTL.
func (c *accountStatusCache) forget(accountID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, accountID)
}
