package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// unexpected is a failed payment the gateway charged anyway, and the two
// journals its reconciliation posts.
func unexpected(t *testing.T, s *store.Store, at time.Time) (store.PaymentRecord, store.ReconciliationCase, []store.Journal) {
	t.Helper()
	rec := newPayment(ids.New(ids.Account), ids.New(ids.Account), at)
	rec.Status, rec.FailureCode = payment.StatusFailed, "gateway_unreachable"
	mustSave(t, s, rec, nil)
	funding, clearing := "customer_funding:"+rec.CustomerID, "gateway_clearing:sandbox"
	js := []store.Journal{
		{ID: rec.ID + "/unexpected_charge", Currency: "usd", At: t0, Lines: []store.JournalLine{
			{Account: funding, Direction: debit, Amount: 1999}, {Account: clearing, Direction: credit, Amount: 1999}}},
		{ID: rec.ID + "/unexpected_refund", Currency: "USD", At: t0, Lines: []store.JournalLine{
			{Account: clearing, Direction: debit, Amount: 1999}, {Account: funding, Direction: credit, Amount: 1999}}},
	}
	c := store.ReconciliationCase{
		ID: "rcn_" + rec.ID[len("pay_"):] + "_charge", PaymentID: rec.ID, Kind: reconciliationcase.KindUnexpectedCharge,
		PaymentStatus: "failed", GatewayStatus: "succeeded", Gateway: "sandbox", GatewayReference: "pi_sbx_x",
		EventID: "evt_1", Amount: 1999, Currency: "usd", Action: "refund_pending", RefundReference: "re_1",
		Details: "refunded automatically", At: t0,
	}
	return rec, c, js
}

func TestRecordReconciliationIsAtomicAndIdempotent(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rec, c, js := unexpected(t, s, t0)
		if err := s.RecordReconciliation(ctx, c, js); err != nil {
			t.Fatal(err)
		}
		// Both movements are in the ledger: the customer's funding and the
		// clearing account are back where they were.
		wantEntries(t, s, rec.ID+"/unexpected_charge", rec.ID, "USD", js[0].Lines, t0)
		wantEntries(t, s, rec.ID+"/unexpected_refund", rec.ID, "USD", js[1].Lines, t0)
		wantBalance(t, s, "customer_funding:"+rec.CustomerID, "USD", 0)
		wantBalance(t, s, "gateway_clearing:sandbox", "USD", 0)
		if err := s.CheckLedger(ctx); err != nil {
			t.Fatal(err)
		}

		// Recorded again (a retried activity, or the same report from the
		// other writer): one case, updated, and no second posting.
		c.Action, c.Details = "refunded", "refund confirmed"
		if err := s.RecordReconciliation(ctx, c, js); err != nil {
			t.Fatal(err)
		}
		cs, err := s.ListReconciliationCases(ctx, store.ReconciliationFilter{PaymentID: rec.ID}, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Action != "refunded" || cs[0].Details != "refund confirmed" || cs[0].Currency != "USD" ||
			cs[0].Amount != 1999 || cs[0].Status != reconciliationcase.StatusOpen || cs[0].Kind != reconciliationcase.KindUnexpectedCharge ||
			!cs[0].CreatedAt.Equal(t0) || cs[0].RefundReference != "re_1" || cs[0].EventID != "evt_1" {
			t.Fatalf("cases %+v", cs)
		}
		wantLedgerRows(t, s, 4)

		// A journal that contradicts the one posted rolls the case back too.
		bad := c
		bad.ID = c.ID + "_2"
		js2 := []store.Journal{js[0]}
		js2[0].Lines = []store.JournalLine{js[0].Lines[0], js[0].Lines[1]}
		js2[0].Lines[0].Amount, js2[0].Lines[1].Amount = 5, 5
		if err := s.RecordReconciliation(ctx, bad, js2); !errsIs(err, errs.ErrAlreadyExists) {
			t.Fatalf("contradicting journal: %v", err)
		}
		if cs, _ := s.ListReconciliationCases(ctx, store.ReconciliationFilter{}, store.Page{Limit: 10}); len(cs) != 1 {
			t.Fatalf("a refused record left a case: %d cases", len(cs))
		}
		// An unbalanced journal or one of another payment is refused before
		// anything is written.
		js3 := []store.Journal{js[0]}
		js3[0].PaymentID = "pay_other"
		if err := s.RecordReconciliation(ctx, bad, js3); !errsIs(err, errs.ErrInvalidArgument) {
			t.Fatalf("journal of another payment: %v", err)
		}
	})
}

func TestResolveAndListReconciliationCases(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var all []string
		for i := range 3 {
			_, c, _ := unexpected(t, s, t0.Add(time.Duration(i)*time.Second))
			if err := s.RecordReconciliation(ctx, c, nil); err != nil {
				t.Fatal(err)
			}
			all = append(all, c.ID)
		}
		// Newest payment first, two per page.
		page1, err := s.ListReconciliationCases(ctx, store.ReconciliationFilter{}, store.Page{Limit: 2})
		if err != nil || len(page1) != 2 || page1[0].ID != all[2] || page1[1].ID != all[1] {
			t.Fatalf("page 1 %v %v", page1, err)
		}
		page2, err := s.ListReconciliationCases(ctx, store.ReconciliationFilter{}, store.Page{Limit: 2, After: ptr(store.ReconciliationCaseCursor(page1[1]))})
		if err != nil || len(page2) != 1 || page2[0].ID != all[0] {
			t.Fatalf("page 2 %v %v", page2, err)
		}

		got, err := s.ResolveReconciliationCase(ctx, all[0], "refund seen on the statement", t0.Add(1), store.Audit{})
		if err != nil || got.Status != reconciliationcase.StatusResolved || got.ResolutionNote != "refund seen on the statement" {
			t.Fatalf("resolve: %+v %v", got, err)
		}
		if _, err := s.ResolveReconciliationCase(ctx, all[0], "again", t0, store.Audit{}); !errsIs(err, errs.ErrFailedPrecondition) {
			t.Fatalf("resolving twice: %v", err)
		}
		if _, err := s.ResolveReconciliationCase(ctx, "rcn_nope", "x", t0, store.Audit{}); !errsIs(err, errs.ErrNotFound) {
			t.Fatalf("unknown case: %v", err)
		}
		open, err := s.ListReconciliationCases(ctx, store.ReconciliationFilter{Status: reconciliationcase.StatusOpen}, store.Page{Limit: 10})
		if err != nil || len(open) != 2 {
			t.Fatalf("open cases %v %v", open, err)
		}
		// A resolved case is not reopened or changed by a late record.
		_, c, _ := unexpected(t, s, t0.Add(time.Minute))
		c.ID, c.Action = all[0], "refund_failed"
		if err := s.RecordReconciliation(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		if cs, _ := s.ListReconciliationCases(ctx, store.ReconciliationFilter{Status: reconciliationcase.StatusResolved}, store.Page{Limit: 10}); len(cs) != 1 || cs[0].Action != "refund_pending" {
			t.Fatalf("a resolved case changed: %+v", cs)
		}
		if _, err := s.ListReconciliationCases(ctx, store.ReconciliationFilter{}, store.Page{}); !errsIs(err, errs.ErrInvalidArgument) {
			t.Fatalf("page size 0: %v", err)
		}
	})
}

// TestResolveACaseOfAnUnknownPayment: a case about a payment the platform
// does not hold (a gateway event about a charge made outside it) is
// resolved all the same, and audited without a merchant as its target.
func TestResolveACaseOfAnUnknownPayment(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		_, c, _ := unexpected(t, s, t0)
		c.ID, c.PaymentID = "rcn_unknown_charge", ids.New(ids.Payment)
		if err := s.RecordReconciliation(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.ResolveReconciliationCase(ctx, c.ID, "not ours", t0.Add(time.Second), store.Audit{})
		if err != nil || got.Status != reconciliationcase.StatusResolved {
			t.Fatalf("resolve: %+v %v", got, err)
		}
		rows := s.Client.AuditEvent.Query().AllX(ctx)
		if len(rows) != 1 || rows[0].TargetID != "" || rows[0].Detail["payment_id"] != c.PaymentID {
			t.Fatalf("audit rows %+v, want one without a target naming payment %s", rows, c.PaymentID)
		}
	})
}

func TestPaymentRecordRoundTrips(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		rec := newPayment(ids.New(ids.Account), "", t0)
		rec.NeedsAttention, rec.AttentionReason = true, "capture unconfirmed"
		mustSave(t, s, rec, nil)
		got, err := s.PaymentRecord(context.Background(), rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		p := mustSave(t, s, got, nil) // saving what was read changes nothing
		wantPayment(t, "read back", p, rec)
		if !got.NeedsAttention || got.AttentionReason != "capture unconfirmed" || got.Version != 1 {
			t.Fatalf("record %+v", got)
		}
		if _, err := s.PaymentRecord(context.Background(), "pay_nope"); !errsIs(err, errs.ErrNotFound) {
			t.Fatalf("unknown payment: %v", err)
		}
	})
}
