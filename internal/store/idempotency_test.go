package store_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/idempotencykey"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

const method = "/payments.v1.PaymentService/CreatePayment"

var idemTTL = 24 * time.Hour

func TestBeginIdempotency(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acct := ids.New(ids.Account)
		rec, fresh, err := s.BeginIdempotency(ctx, acct, "order-1", method, hash("req"), t0, t0.Add(idemTTL))
		if err != nil {
			t.Fatalf("BeginIdempotency: %v", err)
		}
		if !fresh {
			t.Fatal("first use is not fresh")
		}
		if !ids.Valid(ids.Idempotency, rec.ID) || rec.AccountID != acct || rec.Key != "order-1" ||
			rec.Method != method || rec.RequestHash != hash("req") || rec.State != idempotencykey.StateInProgress ||
			rec.ResponseCode != 0 || rec.ResponseBody != nil || !rec.CreatedAt.Equal(t0) ||
			!rec.UpdatedAt.Equal(t0) || !rec.ExpiresAt.Equal(t0.Add(idemTTL)) {
			t.Errorf("created %+v", rec)
		}

		// A live record is returned as it is, whatever the second request is.
		again, fresh, err := s.BeginIdempotency(ctx, acct, "order-1", "/other", hash("other"), t0.Add(time.Hour), t0.Add(time.Hour+idemTTL))
		if err != nil || fresh {
			t.Fatalf("second use: fresh = %v, %v", fresh, err)
		}
		if again.ID != rec.ID || again.Method != method || again.RequestHash != hash("req") || !again.ExpiresAt.Equal(rec.ExpiresAt) {
			t.Errorf("second use returned %+v, want the first record %+v", again, rec)
		}

		// Keys are scoped to the account and compared byte for byte.
		for _, tc := range []struct{ acct, key string }{
			{ids.New(ids.Account), "order-1"},
			{acct, "ORDER-1"},
			{acct, "order-1 "},
			{acct, "order-1\t"},
			{acct, "ordér-1"},
		} {
			r, fresh, err := s.BeginIdempotency(ctx, tc.acct, tc.key, method, hash("req"), t0, t0.Add(idemTTL))
			if err != nil || !fresh || r.ID == rec.ID {
				t.Errorf("key %q of %s: fresh = %v, %v; want a new record", tc.key, tc.acct, fresh, err)
			}
		}

		long := strings.Repeat("k", 255)
		if _, fresh, err := s.BeginIdempotency(ctx, acct, long, method, hash("req"), t0, t0.Add(idemTTL)); err != nil || !fresh {
			t.Fatalf("255-character key: fresh = %v, %v", fresh, err)
		}
		for name, key := range map[string]string{"too long": long + "k", "empty": ""} {
			_, _, err := s.BeginIdempotency(ctx, acct, key, method, hash("req"), t0, t0.Add(idemTTL))
			if !errsIs(err, errs.ErrInvalidArgument) {
				t.Errorf("%s key: %v, want invalid argument", name, err)
			}
		}
	})
}

func errsIs(err, sentinel error) bool {
	return err != nil && errs.KindOf(err) == errs.KindOf(sentinel)
}

func TestBeginIdempotencyConcurrently(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acct := ids.New(ids.Account)
		type result struct {
			rec   *ent.IdempotencyKey
			fresh bool
			err   error
		}
		const n = 50
		results := concurrently(n, func(int) result {
			rec, fresh, err := s.BeginIdempotency(ctx, acct, "same-key", method, hash("req"), t0, t0.Add(idemTTL))
			return result{rec, fresh, err}
		})
		fresh := 0
		for _, r := range results {
			if r.err != nil {
				t.Fatalf("BeginIdempotency: %v", r.err)
			}
			if r.fresh {
				fresh++
			}
			if r.rec.ID != results[0].rec.ID {
				t.Fatalf("records %s and %s for one key", r.rec.ID, results[0].rec.ID)
			}
		}
		if fresh != 1 {
			t.Fatalf("%d of %d calls were fresh, want exactly 1", fresh, n)
		}
		if c := s.Client.IdempotencyKey.Query().CountX(ctx); c != 1 {
			t.Fatalf("%d records, want 1", c)
		}
	})
}

func TestBeginIdempotencyReplacesExpired(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acct := ids.New(ids.Account)
		exp := t0.Add(idemTTL)
		old, _, err := s.BeginIdempotency(ctx, acct, "k", method, hash("old"), t0, exp)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CompleteIdempotency(ctx, old.ID, 0, []byte("old response"), t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		// Just before expiry it is still live.
		if r, fresh, err := s.BeginIdempotency(ctx, acct, "k", method, hash("new"), exp.Add(-time.Microsecond), exp.Add(idemTTL)); err != nil || fresh || r.ID != old.ID {
			t.Fatalf("before expiry: fresh = %v, %v", fresh, err)
		}
		// At expiry it is replaced by a fresh record.
		rec, fresh, err := s.BeginIdempotency(ctx, acct, "k", method, hash("new"), exp, exp.Add(idemTTL))
		if err != nil || !fresh {
			t.Fatalf("after expiry: fresh = %v, %v", fresh, err)
		}
		if rec.ID == old.ID || rec.RequestHash != hash("new") || rec.State != idempotencykey.StateInProgress || rec.ResponseBody != nil {
			t.Errorf("replacement = %+v", rec)
		}
		_, err = s.IdempotencyByID(ctx, old.ID)
		wantErr(t, err, errs.ErrNotFound, "idempotency key not found")

		// Concurrent callers on an expired record: still exactly one fresh.
		exp2 := exp.Add(idemTTL)
		results := concurrently(20, func(int) bool {
			_, fresh, err := s.BeginIdempotency(ctx, acct, "k", method, hash("newer"), exp2, exp2.Add(idemTTL))
			if err != nil {
				t.Errorf("BeginIdempotency: %v", err)
			}
			return fresh
		})
		nFresh := 0
		for _, f := range results {
			if f {
				nFresh++
			}
		}
		if nFresh != 1 {
			t.Fatalf("%d fresh replacements, want 1", nFresh)
		}
	})
}

func TestCompleteAndAbandonIdempotency(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acct := ids.New(ids.Account)
		begin := func(key string) *ent.IdempotencyKey {
			t.Helper()
			rec, fresh, err := s.BeginIdempotency(ctx, acct, key, method, hash("req"), t0, t0.Add(idemTTL))
			if err != nil || !fresh {
				t.Fatalf("BeginIdempotency(%q): fresh = %v, %v", key, fresh, err)
			}
			return rec
		}

		// A response of about 1 MiB is kept whole.
		body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
		ok := begin("ok")
		done := t0.Add(time.Minute)
		if err := s.CompleteIdempotency(ctx, ok.ID, 0, body, done); err != nil {
			t.Fatalf("CompleteIdempotency: %v", err)
		}
		got, err := s.IdempotencyByID(ctx, ok.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != idempotencykey.StateCompleted || got.ResponseCode != 0 || !bytes.Equal(got.ResponseBody, body) ||
			!got.UpdatedAt.Equal(done) || !got.CreatedAt.Equal(t0) {
			t.Errorf("completed record: state %s, code %d, %d body bytes, updated %v", got.State, got.ResponseCode, len(got.ResponseBody), got.UpdatedAt)
		}
		err = s.CompleteIdempotency(ctx, ok.ID, 5, []byte("late"), done.Add(time.Minute))
		wantErr(t, err, errs.ErrFailedPrecondition, "")
		if got := s.Client.IdempotencyKey.GetX(ctx, ok.ID); got.ResponseCode != 0 || !bytes.Equal(got.ResponseBody, body) {
			t.Errorf("a second completion overwrote the first")
		}

		// An error outcome (Connect code 9, failed_precondition) is kept too.
		failed := begin("failed")
		if err := s.CompleteIdempotency(ctx, failed.ID, 9, []byte(`{"code":"failed_precondition"}`), done); err != nil {
			t.Fatal(err)
		}
		if got := s.Client.IdempotencyKey.GetX(ctx, failed.ID); got.ResponseCode != 9 || string(got.ResponseBody) != `{"code":"failed_precondition"}` {
			t.Errorf("error outcome = %d %q", got.ResponseCode, got.ResponseBody)
		}
		wantErr(t, s.CompleteIdempotency(ctx, ids.New(ids.Idempotency), 0, nil, done), errs.ErrNotFound, "idempotency key not found")
		wantErr(t, s.CompleteIdempotency(ctx, begin("negative").ID, -1, nil, done), errs.ErrInvalidArgument, "")

		// Abandoning frees the key for a retry.
		ab := begin("abandon")
		if err := s.AbandonIdempotency(ctx, ab.ID); err != nil {
			t.Fatalf("AbandonIdempotency: %v", err)
		}
		_, err = s.IdempotencyByID(ctx, ab.ID)
		wantErr(t, err, errs.ErrNotFound, "idempotency key not found")
		if retry := begin("abandon"); retry.ID == ab.ID {
			t.Errorf("retry reused the abandoned record")
		}
		wantErr(t, s.AbandonIdempotency(ctx, ab.ID), errs.ErrNotFound, "idempotency key not found")
		// A completed record cannot be abandoned.
		wantErr(t, s.AbandonIdempotency(ctx, ok.ID), errs.ErrFailedPrecondition, "")
		if _, err := s.IdempotencyByID(ctx, ok.ID); err != nil {
			t.Errorf("completed record after an abandon attempt: %v", err)
		}
	})
}
