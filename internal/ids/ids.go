// Package ids makes the platform's opaque, prefixed identifiers. The part
// after the prefix is a lower-case ULID, so ids sort by creation time and
// keyset pagination can order by id alone.
package ids

import (
	"crypto/rand"
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
