package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/ent/transaction"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// TestBackfillHistoryRebuildsWhatTheSavesWrote: the history of sources
// saved before it existed, rebuilt from their state and the ledger's
// journals, is the history their saves write, and agrees with the ledger;
// a second run writes nothing.
func TestBackfillHistoryRebuildsWhatTheSavesWrote(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m, c := mustAccount(t, s, "m@example.com").ID, mustAccount(t, s, "c@example.com").ID
		at := t0
		tick := func() time.Time { at = at.Add(time.Minute); return at }

		pending := newPayment(m, c, tick())
		mustSave(t, s, pending, nil)
		paid := succeededPayment(t, s, m, c, "usd", 5000, tick())

		// A refund that the gateway accepted and then failed.
		r, _ := mustCreateRefund(t, s, newRefund(paid, 1000, tick()))
		rec := store.RefundRecordOf(r)
		rec.Version, rec.GatewayReference, rec.UpdatedAt = 2, "re_gw_1", tick()
		mustSaveRefund(t, s, rec, store.RefundJournal(rec, rec.UpdatedAt))
		rec.Version, rec.Status, rec.FailureReason, rec.UpdatedAt = 3, refund.StatusFailed, "expired_card", tick()
		mustSaveRefund(t, s, rec, store.RefundReversalJournal(rec, rec.UpdatedAt))

		// A network dispute the merchant won.
		other := succeededPayment(t, s, m, c, "usd", 3000, tick())
		d := mustCreateDispute(t, s, newDispute(other, dispute.OpenedByNetwork, 3000, tick()), "")
		won := settled(store.DisputeRecordOf(d), dispute.StatusWon, dispute.SettlementReinstated)
		won.UpdatedAt = tick()
		mustSaveDispute(t, s, won, store.DisputeFundsReinstatedJournal(won, won.UpdatedAt))

		want := historyRows(t, s)
		if len(want) != 7 {
			t.Fatalf("the saves wrote %d rows, want 7 (3 payments, a refund and its failure, a dispute and its reversal): %v", len(want), want)
		}
		if err := s.CheckHistory(ctx); err != nil {
			t.Fatalf("CheckHistory after the saves: %v", err)
		}

		// As before the upgrade: no history, no timelines.
		if _, err := s.Client.Transaction.Delete().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client.Payment.Update().ClearTimeline().Save(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Client.Refund.Update().ClearTimeline().Save(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckHistory(ctx); err == nil {
			t.Fatal("CheckHistory agrees with an empty history over a ledger of merchant movements")
		}

		// Migrate backfills an empty history.
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		got := historyRows(t, s)
		for id, w := range want {
			g, ok := got[id]
			if !ok {
				t.Errorf("backfill lacks %s (%s of %s)", id, w.Movement, w.SourceID)
				continue
			}
			if g.Amount != w.Amount || g.Status != w.Status || g.JournalID != w.JournalID || g.Type != w.Type ||
				g.Movement != w.Movement || g.MerchantID != w.MerchantID || g.CustomerID != w.CustomerID ||
				!g.CreatedAt.Equal(w.CreatedAt) || g.Description != w.Description {
				t.Errorf("backfilled %s = %+v,\nsaved as %+v", id, g, w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("backfill wrote %d rows, the saves %d", len(got), len(want))
		}
		if err := s.CheckHistory(ctx); err != nil {
			t.Errorf("CheckHistory after the backfill: %v", err)
		}
		for _, id := range []string{pending.ID, paid.ID} {
			p := s.Client.Payment.GetX(ctx, id)
			if len(p.Timeline) == 0 || p.Timeline[0].Kind != "payment.created" {
				t.Errorf("payment %s's backfilled timeline = %v, want payment.created first", id, p.Timeline)
			}
		}
		if tl := s.Client.Payment.GetX(ctx, paid.ID).Timeline; tl[len(tl)-1].Kind != "payment.succeeded" {
			t.Errorf("succeeded payment's backfilled timeline ends with %v", tl[len(tl)-1])
		}

		var kinds []string
		for _, e := range s.Client.Refund.GetX(ctx, r.ID).Timeline {
			kinds = append(kinds, e.Kind)
		}
		if want := "[refund.created refund.submitted refund.failed]"; fmt.Sprint(kinds) != want {
			t.Errorf("refund's backfilled timeline = %v, want %s", kinds, want)
		}

		n, err := s.BackfillHistory(ctx)
		if err != nil || n != 0 {
			t.Errorf("second BackfillHistory = %d, %v; want 0, nil", n, err)
		}
		if again := historyRows(t, s); len(again) != len(got) {
			t.Errorf("second BackfillHistory changed the row count: %d, was %d", len(again), len(got))
		}

		// Run by hand, it counts the sources it completed: 3 payments, the
		// refund, the dispute.
		if _, err := s.Client.Transaction.Delete().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := s.BackfillHistory(ctx); err != nil || n != 5 {
			t.Errorf("BackfillHistory of an empty history = %d, %v; want 5 sources", n, err)
		}
		if again := historyRows(t, s); len(again) != len(want) {
			t.Errorf("BackfillHistory by hand wrote %d rows, the saves %d", len(again), len(want))
		}
	})
}

// TestBackfillHistoryPagesThroughEverySource: more payments than one
// backfill transaction covers (backfillBatch, 500) are all backfilled, the
// batches following each other to the last, and so are the refunds and
// disputes after them.
func TestBackfillHistoryPagesThroughEverySource(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m, c := mustAccount(t, s, "m@example.com").ID, mustAccount(t, s, "c@example.com").ID
		at := t0
		tick := func() time.Time { at = at.Add(time.Second); return at }
		const pending = 501 // one more than a batch
		for range pending {
			mustSave(t, s, newPayment(m, c, tick()), nil)
		}
		paid := succeededPayment(t, s, m, c, "usd", 5000, tick())
		mustCreateRefund(t, s, newRefund(paid, 1000, tick()))
		other := succeededPayment(t, s, m, c, "usd", 3000, tick())
		mustCreateDispute(t, s, newDispute(other, dispute.OpenedByNetwork, 3000, tick()), "")
		want := historyRows(t, s)

		if _, err := s.Client.Transaction.Delete().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		// Every payment, the refund and the dispute.
		if got, err := s.BackfillHistory(ctx); err != nil || got != pending+4 {
			t.Fatalf("BackfillHistory = %d, %v; want %d sources", got, err, pending+4)
		}
		if got := historyRows(t, s); len(got) != len(want) {
			t.Fatalf("the backfill wrote %d rows, the saves %d", len(got), len(want))
		}
	})
}

// historyRows reads the whole history by id.
func historyRows(t *testing.T, s *store.Store) map[string]*ent.Transaction {
	t.Helper()
	ts, err := s.Client.Transaction.Query().Order(ent.Asc(transaction.FieldID)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*ent.Transaction{}
	for _, x := range ts {
		out[x.ID] = x
	}
	return out
}
