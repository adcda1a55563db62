package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/money"
	"github.com/payments-platform/payments/internal/store"
)

const (
	defaultPageSize = 20
	maxPageSize     = 100
)

// pageSize applies the default; validation already bounds it to 1..100.
func pageSize(n int32) int {
	if n <= 0 {
		return defaultPageSize
	}
	if n > maxPageSize {
		return maxPageSize
	}
	return int(n)
}

// listRequest is what every List RPC's request has.
type listRequest interface {
	proto.Message
	GetPageToken() string
	GetPageSize() int32
}

// Page tokens are opaque and tamper-evident. A token holds the position of
// the last row of the page it follows (created_at and id: every list's
// keyset, see store.list) and an HMAC-SHA256 tag over that position, the
// list's kind, the caller's account and a digest of the request's filters.
// So a token cannot be forged or edited, and a token of another list,
// another query (other filters) or another account is refused
// (invalid_argument) rather than read: it can never move a listing to rows
// its query would not show, and the caller's scope is applied from its
// credentials on every page whatever the token says. page_size may change
// from page to page.
const (
	pageTokenVersion = 1
	pageTokenTagSize = 16
	// pageTokenMaxID bounds the id a token carries (ids are at most 40
	// characters; reconciliation case ids somewhat more).
	pageTokenMaxID = 100
)

// errPageToken is the one answer to every token that is not this query's,
// so it reveals nothing about why.
func errPageToken() error {
	return errs.InvalidArgument("page_token",
		"page_token is not a token of this list for this query and account; start again without it, with the same filters")
}

// pageTokenKey derives the page tokens' key from the server's secret.
func pageTokenKey(secret []byte) []byte { return serverKey(secret, "payments.v1 page tokens") }

// serverKey derives a key for one use (label) from the server's secret, so
// that every instance of a deployment derives the same; a random key when
// there is no secret (what it keys then lives as long as the process).
func serverKey(secret []byte, label string) []byte {
	if len(secret) == 0 {
		k := make([]byte, 32)
		_, _ = rand.Read(k) // never fails (crypto/rand, Go 1.24 on)
		return k
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// queryDigest is a digest of the request's filters: every field but the
// page token and the page size, deterministically encoded.
func queryDigest(req listRequest) ([]byte, error) {
	q := proto.Clone(req)
	r := q.ProtoReflect()
	fields := r.Descriptor().Fields()
	for _, name := range []protoreflect.Name{"page_token", "page_size"} {
		if f := fields.ByName(name); f != nil {
			r.Clear(f)
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("page token digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// pageTokenTag authenticates a token's position for a list kind, an
// account and a query.
func (s *Server) pageTokenTag(kind, account string, digest, position []byte) []byte {
	m := hmac.New(sha256.New, s.pageKey)
	for _, part := range [][]byte{[]byte(kind), []byte(account), digest} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part)))
		m.Write(n[:])
		m.Write(part)
	}
	m.Write(position)
	return m.Sum(nil)[:pageTokenTagSize]
}

// encodePageToken: version, created_at in microseconds, the id, the tag.
func (s *Server) encodePageToken(kind, account string, digest []byte, c store.Cursor) string {
	pos := make([]byte, 0, 9+len(c.ID)+pageTokenTagSize)
	pos = append(pos, pageTokenVersion)
	pos = binary.BigEndian.AppendUint64(pos, uint64(c.CreatedAt.UnixMicro()))
	pos = append(pos, c.ID...)
	return base64.RawURLEncoding.EncodeToString(append(pos, s.pageTokenTag(kind, account, digest, pos)...))
}

// decodePageToken returns the position a token names; nil for "".
func (s *Server) decodePageToken(kind, account string, digest []byte, token string) (*store.Cursor, error) {
	if token == "" {
		return nil, nil
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < 9+1+pageTokenTagSize || len(raw) > 9+pageTokenMaxID+pageTokenTagSize || raw[0] != pageTokenVersion {
		return nil, errPageToken()
	}
	pos, tag := raw[:len(raw)-pageTokenTagSize], raw[len(raw)-pageTokenTagSize:]
	if !hmac.Equal(tag, s.pageTokenTag(kind, account, digest, pos)) {
		return nil, errPageToken()
	}
	return &store.Cursor{
		CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(pos[1:9]))).UTC(),
		ID:        string(pos[9:]),
	}, nil
}

// listPage is one page of a list, for every List RPC of the API: it reads
// the request's page token (bound to the list kind, the caller and the
// query), asks fetch for one row more than the page holds (so it knows
// whether another page follows without a count), and returns the page and
// the next page token ("" at the end).
func listPage[T any](s *Server, kind string, caller auth.Principal, req listRequest,
	cursor func(T) store.Cursor, fetch func(store.Page) ([]T, error),
) ([]T, string, error) {
	digest, err := queryDigest(req)
	if err != nil {
		return nil, "", err
	}
	after, err := s.decodePageToken(kind, caller.AccountID, digest, req.GetPageToken())
	if err != nil {
		return nil, "", err
	}
	n := pageSize(req.GetPageSize())
	rows, err := fetch(store.Page{Limit: n + 1, After: after})
	if err != nil || len(rows) <= n {
		return rows, "", err
	}
	rows = rows[:n]
	return rows, s.encodePageToken(kind, caller.AccountID, digest, cursor(rows[n-1])), nil
}

// listScope reads what every list of payments, refunds, disputes and
// transactions reads alike: the caller's scope (admins see everyone's,
// others what they are the merchant or the customer of: party) and the
// created range, [after, before), nil where the request leaves it open. A
// range that ends before it starts is the store's to refuse
// (invalid_argument), as for every caller of its lists.
func listScope(caller auth.Principal, after, before *timestamppb.Timestamp) (party string, from, to *time.Time) {
	if caller.Role != roleAdmin {
		party = caller.AccountID
	}
	at := func(ts *timestamppb.Timestamp) *time.Time {
		if ts == nil {
			return nil
		}
		t := ts.AsTime()
		return &t
	}
	return party, at(after), at(before)
}

// idFilter is an id a list filters by and the prefix it must have.
type idFilter struct{ field, value, prefix string }

// checkIDFilters refuses a filter id without its prefix (invalid_argument
// naming the field); empty ids do not filter.
func checkIDFilters(fs ...idFilter) error {
	for _, f := range fs {
		if f.value != "" && !strings.HasPrefix(f.value, f.prefix) {
			return errs.InvalidArgument(f.field, "%s must start with %s", f.field, f.prefix)
		}
	}
	return nil
}

// currencyFilter is a list's currency filter as stored (upper case); ""
// does not filter.
func currencyFilter(code string) (string, error) {
	if code == "" {
		return "", nil
	}
	cur, err := money.Normalize("currency", code)
	if err != nil {
		return "", err
	}
	return cur.Code, nil
}

// inverse maps a table's values back to its keys (a proto enum to the
// stored one); the values must be distinct.
func inverse[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// PageTokenAt is the page token a listing of kind ("transactions",
// "payments", ...) hands caller for req after the row at c, as if it had
// paged there. Tools and benchmarks use it to start deep in a list.
func (s *Server) PageTokenAt(kind string, caller auth.Principal, req proto.Message, c store.Cursor) (string, error) {
	lr, ok := req.(listRequest)
	if !ok {
		return "", errs.InvalidArgument("request", "%T is not a list request", req)
	}
	digest, err := queryDigest(lr)
	if err != nil {
		return "", err
	}
	return s.encodePageToken(kind, caller.AccountID, digest, c), nil
}
