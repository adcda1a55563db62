package store_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

func TestSandboxObjectCreateGetUpdate(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if data, v, found, err := s.GetSandboxObject(ctx, "pi_sbx_missing"); err != nil || found || data != "" || v != 0 {
			t.Fatalf("Get(missing) = %q, %d, %v, %v", data, v, found, err)
		}

		created, err := s.CreateSandboxObject(ctx, "pi_sbx_1", "payment_intent", "pay_1", `{"status":"requires_capture"}`, t0)
		if err != nil || !created {
			t.Fatalf("Create = %v, %v", created, err)
		}
		// A second create leaves the first as it is.
		created, err = s.CreateSandboxObject(ctx, "pi_sbx_1", "payment_intent", "pay_2", `{"status":"other"}`, t0)
		if err != nil || created {
			t.Fatalf("Create again = %v, %v; want false, nil", created, err)
		}
		data, v, found, err := s.GetSandboxObject(ctx, "pi_sbx_1")
		if err != nil || !found || data != `{"status":"requires_capture"}` || v != 1 {
			t.Fatalf("Get = %q, %d, %v, %v", data, v, found, err)
		}

		// Compare and swap: the right version wins once, a stale one loses.
		ok, err := s.UpdateSandboxObject(ctx, "pi_sbx_1", 1, `{"status":"succeeded"}`, t0)
		if err != nil || !ok {
			t.Fatalf("Update(v1) = %v, %v", ok, err)
		}
		ok, err = s.UpdateSandboxObject(ctx, "pi_sbx_1", 1, `{"status":"canceled"}`, t0)
		if err != nil || ok {
			t.Fatalf("Update(stale v1) = %v, %v; want false, nil", ok, err)
		}
		data, v, _, _ = s.GetSandboxObject(ctx, "pi_sbx_1")
		if data != `{"status":"succeeded"}` || v != 2 {
			t.Fatalf("after updates: %q v%d", data, v)
		}
		// Writing the same data again still bumps the version, so a
		// writer's swap is never mistaken for no match.
		ok, err = s.UpdateSandboxObject(ctx, "pi_sbx_1", 2, data, t0)
		if err != nil || !ok {
			t.Fatalf("Update(same data) = %v, %v", ok, err)
		}
		if _, v, _, _ = s.GetSandboxObject(ctx, "pi_sbx_1"); v != 3 {
			t.Fatalf("version = %d, want 3", v)
		}
		if ok, err := s.UpdateSandboxObject(ctx, "pi_sbx_missing", 1, "{}", t0); err != nil || ok {
			t.Fatalf("Update(missing) = %v, %v; want false, nil", ok, err)
		}
	})
}

func TestSandboxObjectLargeAndUnicodeData(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		// Beyond MySQL's 64 KiB TEXT: the column must hold a busy intent.
		big := `{"x":"` + strings.Repeat("é€😀", 40_000) + `"}`
		if _, err := s.CreateSandboxObject(ctx, "pi_sbx_big", "payment_intent", "", big, t0); err != nil {
			t.Fatal(err)
		}
		data, _, _, err := s.GetSandboxObject(ctx, "pi_sbx_big")
		if err != nil || data != big {
			t.Fatalf("big data: len %d (want %d), %v", len(data), len(big), err)
		}
	})
}

func TestSandboxObjectRefusesWhatTheSchemaForbids(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		_, err := s.CreateSandboxObject(ctx, "pi_sbx_x", "payment_intent", strings.Repeat("p", 41), "{}", t0)
		wantErr(t, err, errs.ErrInvalidArgument, "")
		_, err = s.CreateSandboxObject(ctx, "pi_sbx_x", strings.Repeat("k", 33), "", "{}", t0)
		wantErr(t, err, errs.ErrInvalidArgument, "")
		if _, _, found, _ := s.GetSandboxObject(ctx, "pi_sbx_x"); found {
			t.Fatal("a refused object was stored")
		}
	})
}

func TestSandboxObjectIDs(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		mk := func(id, kind, payment string, at int) {
			t.Helper()
			if _, err := s.CreateSandboxObject(ctx, id, kind, payment, "{}", t0.Add(time.Duration(at)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		mk("pi_c", "payment_intent", "pay_a", 3)
		mk("pi_a", "payment_intent", "pay_a", 1)
		mk("pi_b2", "payment_intent", "pay_a", 2)
		mk("pi_b1", "payment_intent", "pay_a", 2) // same time: id order
		mk("void_a", "void", "pay_a", 0)
		mk("pi_other", "payment_intent", "pay_b", 0)
		mk("idem_1", "idempotency", "", 0)

		got, err := s.SandboxObjectIDs(ctx, "pay_a", "payment_intent")
		if err != nil {
			t.Fatal(err)
		}
		if want := "pi_a,pi_b1,pi_b2,pi_c"; strings.Join(got, ",") != want {
			t.Fatalf("ids = %v, want %s", got, want)
		}
		if got, _ := s.SandboxObjectIDs(ctx, "pay_a", "void"); strings.Join(got, ",") != "void_a" {
			t.Fatalf("void ids = %v", got)
		}
		if got, _ := s.SandboxObjectIDs(ctx, "pay_none", "payment_intent"); len(got) != 0 {
			t.Fatalf("ids of an unknown payment = %v", got)
		}
		// Objects without a payment are not searchable.
		if got, err := s.SandboxObjectIDs(ctx, "", "idempotency"); err != nil || len(got) != 0 {
			t.Fatalf("ids of payment \"\" = %v, %v", got, err)
		}
	})
}

// TestSandboxObjectConcurrentSwaps has writers increment one counter with
// read / compare-and-swap loops: every increment must count exactly once.
func TestSandboxObjectConcurrentSwaps(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 12
		created := concurrently(n, func(int) bool {
			ok, err := s.CreateSandboxObject(ctx, "att_1", "attempts", "", "0", t0)
			if err != nil {
				t.Error(err)
			}
			return ok
		})
		winners := 0
		for _, c := range created {
			if c {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("%d concurrent creates won, want 1", winners)
		}

		errsOut := concurrently(n, func(int) error {
			for {
				data, v, _, err := s.GetSandboxObject(ctx, "att_1")
				if err != nil {
					return err
				}
				cur, err := strconv.Atoi(data)
				if err != nil {
					return err
				}
				ok, err := s.UpdateSandboxObject(ctx, "att_1", v, strconv.Itoa(cur+1), t0)
				if err != nil || ok {
					return err
				}
			}
		})
		for _, err := range errsOut {
			if err != nil {
				t.Fatal(err)
			}
		}
		data, v, _, _ := s.GetSandboxObject(ctx, "att_1")
		if data != strconv.Itoa(n) || v != n+1 {
			t.Fatalf("counter = %s at version %d, want %d at %d", data, v, n, n+1)
		}
	})
}

// TestSandboxObjectsCreatedTogether: CreateSandboxObjects stores all of its
// objects or, when one of them exists, none, leaving the existing one as it
// is; a refused value stores nothing either.
func TestSandboxObjectsCreatedTogether(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if created, err := s.CreateSandboxObjects(ctx, nil, t0); err != nil || created {
			t.Fatalf("CreateSandboxObjects(none) = %v, %v; want false, nil", created, err)
		}
		pair := []store.NewSandboxObject{
			{ID: "idem_sbx_a", Kind: "idempotency", PaymentID: "pay_a", Data: `{"fingerprint":"f"}`},
			{ID: "pi_sbx_a", Kind: "payment_intent", PaymentID: "pay_a", Data: `{"status":"requires_confirmation"}`},
		}
		created, err := s.CreateSandboxObjects(ctx, pair, t0)
		if err != nil || !created {
			t.Fatalf("CreateSandboxObjects = %v, %v", created, err)
		}
		for _, o := range pair {
			data, v, found, err := s.GetSandboxObject(ctx, o.ID)
			if err != nil || !found || data != o.Data || v != 1 {
				t.Fatalf("Get(%s) = %q, %d, %v, %v", o.ID, data, v, found, err)
			}
		}
		ids, err := s.SandboxObjectIDs(ctx, "pay_a", "payment_intent")
		if err != nil || len(ids) != 1 || ids[0] != "pi_sbx_a" {
			t.Fatalf("SandboxObjectIDs = %v, %v", ids, err)
		}

		// One of two exists: neither is written, the existing one unchanged.
		clash := []store.NewSandboxObject{
			{ID: "idem_sbx_b", Kind: "idempotency", PaymentID: "pay_b", Data: `{}`},
			{ID: "pi_sbx_a", Kind: "payment_intent", PaymentID: "pay_b", Data: `{"status":"other"}`},
		}
		if created, err := s.CreateSandboxObjects(ctx, clash, t0); err != nil || created {
			t.Fatalf("CreateSandboxObjects(clash) = %v, %v; want false, nil", created, err)
		}
		if _, _, found, err := s.GetSandboxObject(ctx, "idem_sbx_b"); err != nil || found {
			t.Fatalf("the clash wrote idem_sbx_b: found %v, %v", found, err)
		}
		if data, v, _, _ := s.GetSandboxObject(ctx, "pi_sbx_a"); data != pair[1].Data || v != 1 {
			t.Fatalf("the clash changed pi_sbx_a: %q v%d", data, v)
		}

		// A kind longer than the column: invalid argument, nothing stored.
		bad := []store.NewSandboxObject{
			{ID: "idem_sbx_c", Kind: "idempotency", PaymentID: "pay_c", Data: `{}`},
			{ID: "pi_sbx_c", Kind: strings.Repeat("k", 33), PaymentID: "pay_c", Data: `{}`},
		}
		_, err = s.CreateSandboxObjects(ctx, bad, t0)
		wantErr(t, err, errs.ErrInvalidArgument, "")
		if _, _, found, err := s.GetSandboxObject(ctx, "idem_sbx_c"); err != nil || found {
			t.Fatalf("the refused batch wrote idem_sbx_c: found %v, %v", found, err)
		}
	})
}
