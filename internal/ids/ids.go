// Package ids makes the platform's opaque, prefixed identifiers. The part
// after the prefix is a lower-case ULID, so ids sort by creation time and
// keyset pagination can order by id alone.
package ids

import (
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// The prefixes of API.md.
const (
	Account     = "acct_"
	Payment     = "pay_"
	Refund      = "re_"
	Dispute     = "dp_"
	Txn         = "txn_"
	Event       = "evt_"
	Endpoint    = "we_"
	Delivery    = "whd_"
	APIKey      = "key_"
	Family      = "rtf_"
	Refresh     = "rt_"
	Idempotency = "idem_"
)

// New returns prefix + a new time-ordered unique suffix.
func New(prefix string) string {
	return NewAt(prefix, time.Now())
}

// NewAt returns prefix + a unique suffix ordered by t.
func NewAt(prefix string, t time.Time) string {
	id := ulid.MustNew(ulid.Timestamp(t), rand.Reader)
	return prefix + strings.ToLower(id.String())
}

// Valid reports whether s is prefix followed by a well-formed suffix.
func Valid(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) != ulid.EncodedSize {
		return false
	}
	_, err := ulid.ParseStrict(strings.ToUpper(rest))
	return err == nil
}

// Derive returns prefix + an id with t's timestamp and randomness taken from
// seed, so the same (t, seed) always gives the same id. It lets a retried
// idempotent request reach the same object instead of making a second one.
func Derive(prefix string, t time.Time, seed []byte) string {
	sum := sha256.Sum256(seed)
	var id ulid.ULID
	if err := id.SetTime(ulid.Timestamp(t)); err != nil {
		return NewAt(prefix, t)
	}
	if err := id.SetEntropy(sum[:10]); err != nil {
		return NewAt(prefix, t)
	}
	return prefix + strings.ToLower(id.String())
}
