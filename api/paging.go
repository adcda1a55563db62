package api

import (
	"encoding/base64"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/internal/errs"
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

// Page tokens are opaque to clients: the kind of list and the last id seen,
// base64url. Keyset pagination on time-ordered ids keeps every page's cost
// flat however long the list grows.
func encodePageToken(kind, lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + lastID))
}

func decodePageToken(kind, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", errs.InvalidArgument("page_token", "page_token is malformed")
	}
	k, id, ok := strings.Cut(string(raw), ":")
	if !ok || k != kind || id == "" {
		return "", errs.InvalidArgument("page_token", "page_token does not belong to this list")
	}
	return id, nil
}

// listPage is one page of a keyset list, for every list of the API: it
// reads the page token of the list kind, asks fetch for one row more than
// the page holds (so it knows whether another page follows without a
// count), and returns the page and the next page token ("" at the end).
func listPage[T any](kind, token string, size int32, id func(T) string, fetch func(limit int, afterID string) ([]T, error)) ([]T, string, error) {
	after, err := decodePageToken(kind, token)
	if err != nil {
		return nil, "", err
	}
	n := pageSize(size)
	rows, err := fetch(n+1, after)
	if err != nil || len(rows) <= n {
		return rows, "", err
	}
	rows = rows[:n]
	return rows, encodePageToken(kind, id(rows[n-1])), nil
}

// timeRange is a list's created_after / created_before filter, [after,
// before), nil where the request leaves it open.
func timeRange(after, before *timestamppb.Timestamp) (*time.Time, *time.Time) {
	at := func(ts *timestamppb.Timestamp) *time.Time {
		if ts == nil {
			return nil
		}
		t := ts.AsTime()
		return &t
	}
	return at(after), at(before)
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
