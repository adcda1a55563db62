package store_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/ent/transaction"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// --- Movement rows written by the store's operations ----------------------

// txnSource is what every history row of one source (a payment, a refund,
// a dispute) shares.
type txnSource struct {
	id, paymentID, merchant, customer, currency string
}

func paymentSource(p store.PaymentRecord) txnSource {
	return txnSource{p.ID, p.ID, p.MerchantID, p.CustomerID, strings.ToUpper(p.Currency)}
}

func refundSource(r *ent.Refund) txnSource {
	return txnSource{r.ID, r.PaymentID, r.MerchantID, r.CustomerID, r.Currency}
}

func disputeSource(d *ent.Dispute) txnSource {
	return txnSource{d.ID, d.PaymentID, d.MerchantID, d.CustomerID, d.Currency}
}

// move is what one history row of a source should say.
type move struct {
	movement transaction.Movement
	amount   int64
	status   transaction.Status
	journal  string
	at       time.Time // created_at
}

// typeOf is the history type a movement is listed under.
func typeOf(m transaction.Movement) transaction.Type {
	switch m {
	case transaction.MovementPayment:
		return transaction.TypePayment
	case transaction.MovementRefund, transaction.MovementRefundFailure:
		return transaction.TypeRefund
	}
	return transaction.TypeDispute
}

// wantMoves checks that src's history rows are exactly want, oldest first:
// movement, type, signed amount, status, journal, created_at, the source's
// parties, payment and currency, and the id TransactionID derives.
func wantMoves(t *testing.T, s *store.Store, src txnSource, want ...move) []*ent.Transaction {
	t.Helper()
	got, err := s.TransactionsOf(context.Background(), src.id)
	if err != nil {
		t.Fatalf("TransactionsOf(%s): %v", src.id, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%s has %d transactions, want %d:\n%s", src.id, len(got), len(want), renderTxns(got))
	}
	for i, tx := range got {
		w := want[i]
		var diffs []string
		check := func(field string, got, want any) {
			if got != want {
				diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, got, want))
			}
		}
		check("id", tx.ID, store.TransactionID(src.id, w.movement, w.at))
		check("movement", tx.Movement, w.movement)
		check("type", tx.Type, typeOf(w.movement))
		check("amount", tx.Amount, w.amount)
		check("status", tx.Status, w.status)
		check("journal_id", tx.JournalID, w.journal)
		check("source_id", tx.SourceID, src.id)
		check("payment_id", tx.PaymentID, src.paymentID)
		check("merchant_id", tx.MerchantID, src.merchant)
		check("customer_id", tx.CustomerID, src.customer)
		check("currency", tx.Currency, src.currency)
		if !tx.CreatedAt.Equal(w.at) {
			diffs = append(diffs, fmt.Sprintf("created_at = %v, want %v", tx.CreatedAt, w.at))
		}
		if tx.Description == "" {
			diffs = append(diffs, "description is empty")
		}
		if len(diffs) > 0 {
			t.Fatalf("%s's transaction %d (%s):\n  %s", src.id, i, tx.ID, strings.Join(diffs, "\n  "))
		}
		byID, err := s.TransactionByID(context.Background(), tx.ID)
		if err != nil || byID.String() != tx.String() {
			t.Fatalf("TransactionByID(%s) = %v, %v; want %v", tx.ID, byID, err, tx)
		}
		if w.journal != "" {
			if es, err := s.JournalEntries(context.Background(), w.journal); err != nil || len(es) == 0 {
				t.Fatalf("JournalEntries(%s) = %d entries, %v; the row names a journal that is not posted", w.journal, len(es), err)
			}
		}
	}
	return got
}

func renderTxns(ts []*ent.Transaction) string {
	var b strings.Builder
	for _, tx := range ts {
		b.WriteString("  " + tx.String() + "\n")
	}
	return b.String()
}

// txnSnapshot renders every history row, each column included.
func txnSnapshot(t *testing.T, s *store.Store) string {
	t.Helper()
	return renderTxns(s.Client.Transaction.Query().Order(ent.Asc(transaction.FieldID)).AllX(context.Background()))
}

func wantTxnsUnchanged(t *testing.T, s *store.Store, before, what string) {
	t.Helper()
	if after := txnSnapshot(t, s); after != before {
		t.Fatalf("%s changed the history:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// wantHistory checks that the history and the ledger agree, and that the
// ledger balances.
func wantHistory(t *testing.T, s *store.Store) {
	t.Helper()
	if err := s.CheckHistory(context.Background()); err != nil {
		t.Fatalf("CheckHistory: %v", err)
	}
	if err := s.CheckLedger(context.Background()); err != nil {
		t.Fatalf("CheckLedger: %v", err)
	}
}

func wantTxnCount(t *testing.T, s *store.Store, want int) {
	t.Helper()
	if n := s.Client.Transaction.Query().CountX(context.Background()); n != want {
		t.Fatalf("%d transactions, want %d:\n%s", n, want, txnSnapshot(t, s))
	}
}

func TestHistoryRowsOfPayments(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)

		// processing: one pending row of the amount asked, no journal.
		v1 := newPayment(merchant, customer, t0)
		v1.Currency = "usd"
		mustSave(t, s, v1, nil)
		src := paymentSource(v1)
		wantMoves(t, s, src, move{transaction.MovementPayment, 1999, transaction.StatusPending, "", t0})
		wantHistory(t, s)
		before := txnSnapshot(t, s)
		mustSave(t, s, v1, nil)
		wantTxnsUnchanged(t, s, before, "repeating the first save")

		// requires_capture: still pending.
		v2 := v1
		v2.Version, v2.Status, v2.AmountCapturable = 2, payment.StatusRequiresCapture, 1999
		v2.CaptureMethod = payment.CaptureMethodManual
		v2.UpdatedAt = t0.Add(time.Minute)
		mustSave(t, s, v2, nil)
		wantMoves(t, s, src, move{transaction.MovementPayment, 1999, transaction.StatusPending, "", t0})
		wantHistory(t, s)

		// Captured in part, with the capture journal: succeeded, the amount
		// received, the journal's id.
		v3 := v2
		v3.Version, v3.Status, v3.AmountCapturable, v3.AmountReceived = 3, payment.StatusSucceeded, 0, 1500
		v3.UpdatedAt = t0.Add(2 * time.Minute)
		capture := &store.Journal{ID: v1.ID + "/capture", Currency: "usd", At: v3.UpdatedAt, Lines: captureLines(merchant, 1500)}
		mustSave(t, s, v3, capture)
		rows := wantMoves(t, s, src, move{transaction.MovementPayment, 1500, transaction.StatusSucceeded, v1.ID + "/capture", t0})
		if !rows[0].UpdatedAt.Equal(v3.UpdatedAt) {
			t.Fatalf("updated_at = %v, want the save's %v", rows[0].UpdatedAt, v3.UpdatedAt)
		}
		wantHistory(t, s)
		wantTxnCount(t, s, 1)

		// Repeats and older versions (the retried local activity, with or
		// without the journal) change no row and add none; the journal id
		// stays.
		before = txnSnapshot(t, s)
		for _, again := range []struct {
			rec store.PaymentRecord
			j   *store.Journal
		}{{v3, capture}, {v3, capture}, {v3, nil}, {v2, nil}, {v1, nil}, {v2, capture}} {
			mustSave(t, s, again.rec, again.j)
			wantTxnsUnchanged(t, s, before, fmt.Sprintf("repeating v%d", again.rec.Version))
		}
		wantHistory(t, s)

		// A later save of the succeeded payment without a journal keeps it.
		v4 := v3
		v4.Version, v4.NeedsAttention, v4.AttentionReason = 4, true, "checking"
		v4.UpdatedAt = t0.Add(3 * time.Minute)
		mustSave(t, s, v4, nil)
		wantMoves(t, s, src, move{transaction.MovementPayment, 1500, transaction.StatusSucceeded, v1.ID + "/capture", t0})
		wantHistory(t, s)

		// Failed and canceled payments: failed rows of the amount asked,
		// without a journal; a guest's has no customer.
		for i, final := range []payment.Status{payment.StatusFailed, payment.StatusCanceled} {
			at := t0.Add(time.Duration(i+1) * time.Hour)
			p := newPayment(merchant, "", at)
			p.Amount = 700 + int64(i)
			mustSave(t, s, p, nil)
			wantMoves(t, s, paymentSource(p), move{transaction.MovementPayment, p.Amount, transaction.StatusPending, "", at})
			done := p
			done.Version, done.Status, done.UpdatedAt = 2, final, at.Add(time.Minute)
			if final == payment.StatusFailed {
				done.FailureCode = "card_declined"
			}
			mustSave(t, s, done, nil)
			rows := wantMoves(t, s, paymentSource(p), move{transaction.MovementPayment, p.Amount, transaction.StatusFailed, "", at})
			if !strings.Contains(rows[0].Description, string(final)) {
				t.Fatalf("description %q of a %s payment does not say so", rows[0].Description, final)
			}
			before := txnSnapshot(t, s)
			mustSave(t, s, done, nil)
			mustSave(t, s, p, nil)
			wantTxnsUnchanged(t, s, before, "repeating a "+string(final)+" payment's saves")
			wantHistory(t, s)
		}
		wantTxnCount(t, s, 3)
	})
}

func TestHistoryRowsOfRefunds(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, customer, "EUR", 1000, t0)
		wantMoves(t, s, paymentSource(p), move{transaction.MovementPayment, 1000, transaction.StatusSucceeded, p.ID + "/capture", t0})
		wantHistory(t, s)

		// Created: pending, the amount leaving the balance, no journal.
		at := t0.Add(time.Minute)
		created, _ := mustCreateRefund(t, s, newRefund(p, 400, at))
		src := refundSource(created)
		wantMoves(t, s, src, move{transaction.MovementRefund, -400, transaction.StatusPending, "", at})
		wantHistory(t, s)

		// The gateway accepted it: the refund journal.
		v2 := next(store.RefundRecordOf(created), refund.StatusPending, func(r *store.RefundRecord) { r.GatewayReference = "gw_re_1" })
		refundJ := store.RefundJournal(v2, v2.UpdatedAt)
		mustSaveRefund(t, s, v2, refundJ)
		wantMoves(t, s, src, move{transaction.MovementRefund, -400, transaction.StatusPending, created.ID + "/refund", at})
		wantHistory(t, s)
		before := txnSnapshot(t, s)
		mustSaveRefund(t, s, v2, refundJ)
		mustSaveRefund(t, s, v2, nil)
		wantTxnsUnchanged(t, s, before, "repeating the accepted refund's save")

		// Succeeded.
		v3 := next(v2, refund.StatusSucceeded, nil)
		mustSaveRefund(t, s, v3, nil)
		wantMoves(t, s, src, move{transaction.MovementRefund, -400, transaction.StatusSucceeded, created.ID + "/refund", at})
		wantHistory(t, s)
		before = txnSnapshot(t, s)
		mustSaveRefund(t, s, v3, nil)
		mustSaveRefund(t, s, v2, refundJ) // older, with its journal
		wantTxnsUnchanged(t, s, before, "repeating the succeeded refund's saves")

		// Failed later at the gateway, with the reversal: the refund's row
		// fails and keeps its journal, and the money coming back is a row
		// of its own.
		v4 := next(v3, refund.StatusFailed, func(r *store.RefundRecord) { r.FailureReason = "reversed" })
		reversal := store.RefundReversalJournal(v4, v4.UpdatedAt)
		mustSaveRefund(t, s, v4, reversal)
		failure := move{transaction.MovementRefundFailure, 400, transaction.StatusFailed, created.ID + "/refund_failed", v4.UpdatedAt}
		wantMoves(t, s, src,
			move{transaction.MovementRefund, -400, transaction.StatusFailed, created.ID + "/refund", at},
			failure)
		wantHistory(t, s)
		before = txnSnapshot(t, s)
		mustSaveRefund(t, s, v4, reversal)
		mustSaveRefund(t, s, v4, nil)
		mustSaveRefund(t, s, v3, nil)
		mustSaveRefund(t, s, v2, refundJ)
		wantTxnsUnchanged(t, s, before, "repeating the failed refund's saves")
		// A retry that computes the reversal's time anew reaches the same
		// row: no second failure.
		mustSaveRefund(t, s, v4, store.RefundReversalJournal(v4, v4.UpdatedAt.Add(time.Hour)))
		wantMoves(t, s, src,
			move{transaction.MovementRefund, -400, transaction.StatusFailed, created.ID + "/refund", at},
			failure)
		wantHistory(t, s)

		// Refused by the gateway before it accepted anything: failed, no
		// journal, no failure row.
		at2 := t0.Add(2 * time.Minute)
		refused, _ := mustCreateRefund(t, s, newRefund(p, 300, at2))
		mustSaveRefund(t, s, next(store.RefundRecordOf(refused), refund.StatusFailed, func(r *store.RefundRecord) {
			r.FailureReason = "card_closed"
		}), nil)
		wantMoves(t, s, refundSource(refused), move{transaction.MovementRefund, -300, transaction.StatusFailed, "", at2})
		wantHistory(t, s)

		// Canceled before the gateway saw it: failed too.
		at3 := t0.Add(3 * time.Minute)
		canceled, _ := mustCreateRefund(t, s, newRefund(p, 200, at3))
		mustSaveRefund(t, s, next(store.RefundRecordOf(canceled), refund.StatusCanceled, nil), nil)
		wantMoves(t, s, refundSource(canceled), move{transaction.MovementRefund, -200, transaction.StatusFailed, "", at3})

		// Succeeded in one step, journal included.
		at4 := t0.Add(4 * time.Minute)
		direct, _ := mustCreateRefund(t, s, newRefund(p, 600, at4))
		done := next(store.RefundRecordOf(direct), refund.StatusSucceeded, nil)
		mustSaveRefund(t, s, done, store.RefundJournal(done, done.UpdatedAt))
		wantMoves(t, s, refundSource(direct), move{transaction.MovementRefund, -600, transaction.StatusSucceeded, direct.ID + "/refund", at4})
		wantHistory(t, s)
		// payment + 4 refunds + 1 failure.
		wantTxnCount(t, s, 6)
	})
}

func TestHistoryRowsOfDisputes(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		i := 0
		paid := func() store.PaymentRecord {
			i++
			return succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0.Add(time.Duration(i)*time.Second))
		}

		t.Run("customer prevails and is refunded", func(t *testing.T) {
			p := paid()
			at := t0.Add(time.Minute)
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, at), p.CustomerID)
			src := disputeSource(d)
			wantMoves(t, s, src, move{transaction.MovementDispute, -400, transaction.StatusPending, "", at})
			wantHistory(t, s)

			review := nextDispute(store.DisputeRecordOf(d), dispute.StatusUnderReview, nil)
			mustSaveDispute(t, s, review, nil)
			wantMoves(t, s, src, move{transaction.MovementDispute, -400, transaction.StatusPending, "", at})
			// Decided, the refund not made yet: still pending.
			lost := settled(review, dispute.StatusLost, dispute.SettlementPending)
			mustSaveDispute(t, s, lost, nil)
			wantMoves(t, s, src, move{transaction.MovementDispute, -400, transaction.StatusPending, "", at})
			wantHistory(t, s)

			refunded := settled(lost, dispute.StatusLost, dispute.SettlementRefunded)
			j := store.DisputeRefundJournal(refunded, refunded.UpdatedAt)
			mustSaveDispute(t, s, refunded, j)
			wantMoves(t, s, src, move{transaction.MovementDispute, -400, transaction.StatusSucceeded, d.ID + "/refund", at})
			wantHistory(t, s)
			before := txnSnapshot(t, s)
			mustSaveDispute(t, s, refunded, j)
			mustSaveDispute(t, s, refunded, nil)
			mustSaveDispute(t, s, lost, nil)
			wantTxnsUnchanged(t, s, before, "repeating the refunded dispute's saves")
			later := nextDispute(refunded, dispute.StatusLost, func(r *store.DisputeRecord) { r.OutcomeNote = "confirmed" })
			mustSaveDispute(t, s, later, store.DisputeRefundJournal(refunded, later.UpdatedAt))
			wantMoves(t, s, src, move{transaction.MovementDispute, -400, transaction.StatusSucceeded, d.ID + "/refund", at})
			wantHistory(t, s)
		})

		for _, tt := range []struct {
			by    dispute.OpenedBy
			final dispute.Status
		}{
			{dispute.OpenedByCustomer, dispute.StatusWon},
			{dispute.OpenedByCustomer, dispute.StatusWithdrawn},
			{dispute.OpenedByMerchant, dispute.StatusWon},
			{dispute.OpenedByMerchant, dispute.StatusWithdrawn},
		} {
			t.Run(fmt.Sprintf("opened by %s, %s: failed", tt.by, tt.final), func(t *testing.T) {
				p := paid()
				at := t0.Add(time.Minute)
				d := mustCreateDispute(t, s, newDispute(p, tt.by, 250, at), openerOf(p, tt.by))
				src := disputeSource(d)
				wantMoves(t, s, src, move{transaction.MovementDispute, -250, transaction.StatusPending, "", at})
				closed := nextDispute(store.DisputeRecordOf(d), tt.final, nil)
				mustSaveDispute(t, s, closed, nil)
				wantMoves(t, s, src, move{transaction.MovementDispute, -250, transaction.StatusFailed, "", at})
				wantHistory(t, s)
				before := txnSnapshot(t, s)
				mustSaveDispute(t, s, closed, nil)
				mustSaveDispute(t, s, store.DisputeRecordOf(d), nil)
				wantTxnsUnchanged(t, s, before, "repeating the closed dispute's saves")
			})
		}

		t.Run("network dispute won: funds withdrawn, then reinstated", func(t *testing.T) {
			p := paid()
			at := t0.Add(time.Minute)
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 1000, at), "")
			src := disputeSource(d)
			withdrawn := move{transaction.MovementDispute, -1000, transaction.StatusSucceeded, d.ID + "/funds_withdrawn", at}
			wantMoves(t, s, src, withdrawn)
			wantHistory(t, s)

			review := nextDispute(store.DisputeRecordOf(d), dispute.StatusUnderReview, nil)
			mustSaveDispute(t, s, review, nil)
			wantMoves(t, s, src, withdrawn)

			won := settled(review, dispute.StatusWon, dispute.SettlementReinstated)
			j := store.DisputeFundsReinstatedJournal(won, won.UpdatedAt)
			mustSaveDispute(t, s, won, j)
			reinstated := move{transaction.MovementDisputeReversal, 1000, transaction.StatusSucceeded, d.ID + "/funds_reinstated", won.UpdatedAt}
			wantMoves(t, s, src, withdrawn, reinstated)
			wantHistory(t, s)
			before := txnSnapshot(t, s)
			mustSaveDispute(t, s, won, j)
			mustSaveDispute(t, s, won, nil)
			mustSaveDispute(t, s, review, nil)
			wantTxnsUnchanged(t, s, before, "repeating the won network dispute's saves")
			mustSaveDispute(t, s, won, store.DisputeFundsReinstatedJournal(won, won.UpdatedAt.Add(time.Hour)))
			wantMoves(t, s, src, withdrawn, reinstated)
			wantHistory(t, s)
		})

		t.Run("network dispute lost: the funds stay withdrawn", func(t *testing.T) {
			p := paid()
			at := t0.Add(time.Minute)
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 600, at), "")
			src := disputeSource(d)
			withdrawn := move{transaction.MovementDispute, -600, transaction.StatusSucceeded, d.ID + "/funds_withdrawn", at}
			wantMoves(t, s, src, withdrawn)
			lost := settled(store.DisputeRecordOf(d), dispute.StatusLost, dispute.SettlementWithdrawn)
			mustSaveDispute(t, s, lost, nil)
			wantMoves(t, s, src, withdrawn)
			wantHistory(t, s)
		})

		t.Run("network dispute of more than is left: the whole amount is withdrawn", func(t *testing.T) {
			p := paid()
			mustCreateRefund(t, s, newRefund(p, 700, t0.Add(time.Minute)))
			at := t0.Add(2 * time.Minute)
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 1000, at), "")
			if d.AmountHeld != 300 {
				t.Fatalf("amount held = %d, want 300", d.AmountHeld)
			}
			wantMoves(t, s, disputeSource(d), move{transaction.MovementDispute, -1000, transaction.StatusSucceeded, d.ID + "/funds_withdrawn", at})
			wantHistory(t, s)
		})
	})
}

// TestHistoryRefusedSavesLeaveTransactionsUnchanged: a save the store
// refuses inside its transaction (its journal's id was posted before with
// other lines) rolls back the history row's change with everything else.
func TestHistoryRefusedSavesLeaveTransactionsUnchanged(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		// taken posts a journal with id, moving no merchant's balance, so
		// that the history still agrees with the ledger.
		taken := func(id string) {
			mustPost(t, s, store.Journal{ID: id, Currency: "USD", At: t0, Lines: []store.JournalLine{
				{Account: "gateway_clearing:sandbox", Direction: debit, Amount: 1},
				{Account: "suspense:test", Direction: credit, Amount: 1},
			}})
		}

		t.Run("payment", func(t *testing.T) {
			v1 := newPayment(merchant, customer, t0)
			mustSave(t, s, v1, nil)
			taken(v1.ID + "/capture")
			wantHistory(t, s)
			before, all := txnSnapshot(t, s), disputeSnapshot(t, s)
			v2 := v1
			v2.Version, v2.Status, v2.AmountReceived, v2.UpdatedAt = 2, payment.StatusSucceeded, 1999, t0.Add(time.Minute)
			_, err := s.SavePayment(ctx, v2, &store.Journal{ID: v1.ID + "/capture", Currency: "USD", At: v2.UpdatedAt,
				Lines: captureLines(merchant, 1999)})
			wantKind(t, err, errs.KindAlreadyExists)
			wantTxnsUnchanged(t, s, before, "a refused payment save")
			wantNothingChanged(t, s, all, "a refused payment save")
			wantMoves(t, s, paymentSource(v1), move{transaction.MovementPayment, 1999, transaction.StatusPending, "", t0})
			wantHistory(t, s)
		})

		p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(time.Second))

		t.Run("refund accepted", func(t *testing.T) {
			r, _ := mustCreateRefund(t, s, newRefund(p, 100, t0.Add(time.Minute)))
			taken(r.ID + "/refund")
			before, all := txnSnapshot(t, s), disputeSnapshot(t, s)
			v2 := next(store.RefundRecordOf(r), refund.StatusSucceeded, nil)
			_, err := s.SaveRefund(ctx, v2, store.RefundJournal(v2, v2.UpdatedAt))
			wantKind(t, err, errs.KindAlreadyExists)
			wantTxnsUnchanged(t, s, before, "a refused refund save")
			wantNothingChanged(t, s, all, "a refused refund save")
			wantHistory(t, s)
		})

		t.Run("refund reversed", func(t *testing.T) {
			r, _ := mustCreateRefund(t, s, newRefund(p, 100, t0.Add(2*time.Minute)))
			v2 := next(store.RefundRecordOf(r), refund.StatusSucceeded, nil)
			mustSaveRefund(t, s, v2, store.RefundJournal(v2, v2.UpdatedAt))
			taken(r.ID + "/refund_failed")
			before, all := txnSnapshot(t, s), disputeSnapshot(t, s)
			v3 := next(v2, refund.StatusFailed, nil)
			_, err := s.SaveRefund(ctx, v3, store.RefundReversalJournal(v3, v3.UpdatedAt))
			wantKind(t, err, errs.KindAlreadyExists)
			wantTxnsUnchanged(t, s, before, "a refused refund failure")
			wantNothingChanged(t, s, all, "a refused refund failure")
			wantMoves(t, s, refundSource(r), move{transaction.MovementRefund, -100, transaction.StatusSucceeded, r.ID + "/refund", r.CreatedAt})
			wantHistory(t, s)
		})

		t.Run("network dispute opened", func(t *testing.T) {
			q := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(2*time.Second))
			rec := newDispute(q, dispute.OpenedByNetwork, 500, t0.Add(time.Minute))
			taken(rec.ID + "/funds_withdrawn")
			before, all := txnSnapshot(t, s), disputeSnapshot(t, s)
			_, err := s.CreateDispute(ctx, rec, "")
			wantKind(t, err, errs.KindAlreadyExists)
			wantTxnsUnchanged(t, s, before, "a refused network dispute")
			wantNothingChanged(t, s, all, "a refused network dispute")
			wantHistory(t, s)
		})

		t.Run("dispute refunded", func(t *testing.T) {
			q := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(3*time.Second))
			d := mustCreateDispute(t, s, newDispute(q, dispute.OpenedByCustomer, 500, t0.Add(time.Minute)), customer)
			lost := settled(store.DisputeRecordOf(d), dispute.StatusLost, dispute.SettlementPending)
			mustSaveDispute(t, s, lost, nil)
			taken(d.ID + "/refund")
			before, all := txnSnapshot(t, s), disputeSnapshot(t, s)
			refunded := settled(lost, dispute.StatusLost, dispute.SettlementRefunded)
			_, err := s.SaveDispute(ctx, refunded, store.DisputeRefundJournal(refunded, refunded.UpdatedAt))
			wantKind(t, err, errs.KindAlreadyExists)
			wantTxnsUnchanged(t, s, before, "a refused dispute refund")
			wantNothingChanged(t, s, all, "a refused dispute refund")
			wantHistory(t, s)
		})

		t.Run("network dispute reinstated", func(t *testing.T) {
			q := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(4*time.Second))
			d := mustCreateDispute(t, s, newDispute(q, dispute.OpenedByNetwork, 500, t0.Add(time.Minute)), "")
			taken(d.ID + "/funds_reinstated")
			before, all := txnSnapshot(t, s), disputeSnapshot(t, s)
			won := settled(store.DisputeRecordOf(d), dispute.StatusWon, dispute.SettlementReinstated)
			_, err := s.SaveDispute(ctx, won, store.DisputeFundsReinstatedJournal(won, won.UpdatedAt))
			wantKind(t, err, errs.KindAlreadyExists)
			wantTxnsUnchanged(t, s, before, "a refused reinstatement")
			wantNothingChanged(t, s, all, "a refused reinstatement")
			wantHistory(t, s)
		})
	})
}

// --- CheckHistory ---------------------------------------------------------

// copyTxn inserts a copy of tx, changed by edit.
func copyTxn(t *testing.T, s *store.Store, tx *ent.Transaction, edit func(c *ent.TransactionCreate)) {
	t.Helper()
	c := s.Client.Transaction.Create().
		SetID(tx.ID).SetType(tx.Type).SetMovement(tx.Movement).
		SetSourceID(tx.SourceID).SetPaymentID(tx.PaymentID).
		SetMerchantID(tx.MerchantID).SetCustomerID(tx.CustomerID).
		SetCurrency(tx.Currency).SetWorkflowID(tx.WorkflowID).
		SetAmount(tx.Amount).SetStatus(tx.Status).SetDescription(tx.Description).
		SetJournalID(tx.JournalID).SetCreatedAt(tx.CreatedAt).SetUpdatedAt(tx.UpdatedAt)
	if edit != nil {
		edit(c)
	}
	if err := c.Exec(context.Background()); err != nil {
		t.Fatalf("insert a copy of transaction %s: %v", tx.ID, err)
	}
}

func wantHistoryProblem(t *testing.T, s *store.Store, parts ...string) {
	t.Helper()
	err := s.CheckHistory(context.Background())
	if err == nil {
		t.Fatalf("CheckHistory = nil, want an error naming %q", parts)
	}
	if !containsAll(err.Error(), parts...) {
		t.Fatalf("CheckHistory = %q, want it to name all of %q", err, parts)
	}
}

func TestCheckHistoryFindsDisagreements(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0)
		r, _ := mustCreateRefund(t, s, newRefund(p, 300, t0.Add(time.Minute)))
		rv := next(store.RefundRecordOf(r), refund.StatusSucceeded, nil)
		mustSaveRefund(t, s, rv, store.RefundJournal(rv, rv.UpdatedAt))
		q := succeededPayment(t, s, merchant, customer, "USD", 800, t0.Add(time.Second))
		d := mustCreateDispute(t, s, newDispute(q, dispute.OpenedByNetwork, 800, t0.Add(2*time.Minute)), "")
		wantHistory(t, s)
		one := func(source string) *ent.Transaction {
			t.Helper()
			ts, err := s.TransactionsOf(ctx, source)
			if err != nil || len(ts) != 1 {
				t.Fatalf("TransactionsOf(%s) = %d rows, %v; want 1", source, len(ts), err)
			}
			return ts[0]
		}
		payTx, refundTx, disputeTx := one(p.ID), one(r.ID), one(d.ID)

		t.Run("an amount changed behind the store's back", func(t *testing.T) {
			s.Client.Transaction.UpdateOneID(payTx.ID).SetAmount(999).ExecX(ctx)
			wantHistoryProblem(t, s, payTx.ID, "999", p.ID+"/capture", "moves 1000")
			s.Client.Transaction.UpdateOneID(payTx.ID).SetAmount(1000).ExecX(ctx)
			wantHistory(t, s)
			// The sign is the merchant's side: a refund is negative.
			s.Client.Transaction.UpdateOneID(refundTx.ID).SetAmount(300).ExecX(ctx)
			wantHistoryProblem(t, s, refundTx.ID, r.ID+"/refund", "moves -300")
			s.Client.Transaction.UpdateOneID(refundTx.ID).SetAmount(-300).ExecX(ctx)
			wantHistory(t, s)
		})

		t.Run("a transaction deleted", func(t *testing.T) {
			s.Client.Transaction.DeleteOneID(refundTx.ID).ExecX(ctx)
			wantHistoryProblem(t, s, "journal "+r.ID+"/refund moves a merchant balance and has no transaction")
			copyTxn(t, s, refundTx, nil)
			wantHistory(t, s)
		})

		t.Run("a second transaction of one journal", func(t *testing.T) {
			dup := ids.NewAt(ids.Txn, disputeTx.CreatedAt)
			copyTxn(t, s, disputeTx, func(c *ent.TransactionCreate) {
				c.SetID(dup).SetSourceID(ids.New(ids.Dispute))
			})
			wantHistoryProblem(t, s, "journal "+d.ID+"/funds_withdrawn has transactions", disputeTx.ID, dup)
			s.Client.Transaction.DeleteOneID(dup).ExecX(ctx)
			wantHistory(t, s)
		})

		t.Run("a journal of another merchant or currency", func(t *testing.T) {
			s.Client.Transaction.DeleteOneID(payTx.ID).ExecX(ctx)
			other := ids.New(ids.Account)
			copyTxn(t, s, payTx, func(c *ent.TransactionCreate) { c.SetMerchantID(other) })
			wantHistoryProblem(t, s, payTx.ID, other, "merchant_balance:"+merchant)
			s.Client.Transaction.DeleteOneID(payTx.ID).ExecX(ctx)
			copyTxn(t, s, payTx, func(c *ent.TransactionCreate) { c.SetCurrency("EUR") })
			wantHistoryProblem(t, s, payTx.ID, "EUR", "1000 USD")
			s.Client.Transaction.DeleteOneID(payTx.ID).ExecX(ctx)
			copyTxn(t, s, payTx, nil)
			wantHistory(t, s)
		})

		t.Run("a transaction naming a journal that is not posted", func(t *testing.T) {
			s.Client.Transaction.UpdateOneID(disputeTx.ID).SetJournalID(d.ID + "/nothing").ExecX(ctx)
			wantHistoryProblem(t, s, disputeTx.ID, d.ID+"/nothing", "moves no merchant balance",
				"journal "+d.ID+"/funds_withdrawn moves a merchant balance and has no transaction")
			s.Client.Transaction.UpdateOneID(disputeTx.ID).SetJournalID(d.ID + "/funds_withdrawn").ExecX(ctx)
			wantHistory(t, s)
		})

		t.Run("a journal of a merchant's balance posted without its movement", func(t *testing.T) {
			mustPost(t, s, store.Journal{ID: "stray/1", PaymentID: p.ID, Currency: "USD", At: t0,
				Lines: refundLines(merchant, 5)})
			wantHistoryProblem(t, s, "journal stray/1 moves a merchant balance and has no transaction")
		})
	})
}

// --- ListTransactions against a model ------------------------------------

// txnModel is a set of history rows inserted directly, and the listing
// they should give, computed in memory.
type txnModel struct {
	rows []*ent.Transaction
}

// insertTxns inserts rows with bulk inserts, 100 at a time.
func insertTxns(ctx context.Context, s *store.Store, rows []*ent.Transaction) error {
	return insertTxnsIn(ctx, s, rows, 100)
}

// insertTxnsIn inserts rows with multi-row INSERTs of chunk rows.
func insertTxnsIn(ctx context.Context, s *store.Store, rows []*ent.Transaction, chunk int) error {
	for c := range slices.Chunk(rows, chunk) {
		err := s.Client.Transaction.MapCreateBulk(c, func(b *ent.TransactionCreate, i int) {
			r := c[i]
			b.SetID(r.ID).SetType(r.Type).SetMovement(r.Movement).
				SetSourceID(r.SourceID).SetPaymentID(r.PaymentID).
				SetMerchantID(r.MerchantID).SetCustomerID(r.CustomerID).
				SetCurrency(r.Currency).SetAmount(r.Amount).SetStatus(r.Status).
				SetDescription(r.Description).SetJournalID(r.JournalID).
				SetCreatedAt(r.CreatedAt).SetUpdatedAt(r.UpdatedAt)
		}).Exec(ctx)
		if err != nil {
			return fmt.Errorf("insert %d transactions: %w", len(c), err)
		}
	}
	return nil
}

// randomTxn is a history row of merchant and customer at at, of a random
// movement, status and currency, with a signed amount that suits the
// movement.
func randomTxn(rng *rand.Rand, merchant, customer string, currencies []string, at time.Time) *ent.Transaction {
	movements := []transaction.Movement{
		transaction.MovementPayment, transaction.MovementPayment, transaction.MovementRefund,
		transaction.MovementRefundFailure, transaction.MovementDispute, transaction.MovementDisputeReversal,
	}
	statuses := []transaction.Status{transaction.StatusPending, transaction.StatusSucceeded, transaction.StatusFailed}
	m := movements[rng.IntN(len(movements))]
	amount := 1 + rng.Int64N(10_000)
	if rng.IntN(20) == 0 {
		amount = big
	}
	source := ids.NewAt(ids.Payment, at)
	switch m {
	case transaction.MovementRefund, transaction.MovementDispute:
		amount = -amount
	}
	switch typeOf(m) {
	case transaction.TypeRefund:
		source = ids.NewAt(ids.Refund, at)
	case transaction.TypeDispute:
		source = ids.NewAt(ids.Dispute, at)
	}
	return &ent.Transaction{
		ID: ids.NewAt(ids.Txn, at), Type: typeOf(m), Movement: m,
		SourceID: source, PaymentID: ids.NewAt(ids.Payment, at),
		MerchantID: merchant, CustomerID: customer, Currency: currencies[rng.IntN(len(currencies))],
		Amount: amount, Status: statuses[rng.IntN(len(statuses))],
		Description: "movement " + string(m), CreatedAt: at, UpdatedAt: at,
	}
}

// matches is ListTransactions' filter, stated plainly.
func (txnModel) matches(f store.TransactionFilter, r *ent.Transaction) bool {
	switch {
	case f.Party != "" && r.MerchantID != f.Party && r.CustomerID != f.Party,
		f.MerchantID != "" && r.MerchantID != f.MerchantID,
		f.CustomerID != "" && r.CustomerID != f.CustomerID,
		f.Currency != "" && r.Currency != strings.ToUpper(f.Currency),
		f.Type != "" && r.Type != f.Type,
		f.Status != "" && r.Status != f.Status,
		f.CreatedAfter != nil && r.CreatedAt.Before(*f.CreatedAfter),
		f.CreatedBefore != nil && !r.CreatedAt.Before(*f.CreatedBefore),
		f.AmountMin != nil && r.Amount < *f.AmountMin,
		f.AmountMax != nil && r.Amount > *f.AmountMax:
		return false
	}
	return true
}

// want is the ids the listing of f should give, newest first.
func (m txnModel) want(f store.TransactionFilter) []string {
	var out []*ent.Transaction
	for _, r := range m.rows {
		if m.matches(f, r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *ent.Transaction) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	listed := make([]string, len(out))
	for i, r := range out {
		listed[i] = r.ID
	}
	return listed
}

// pageAll lists everything f selects in pages of size, each page after the
// previous one's last row, and returns the ids in the order listed.
func pageAll(s *store.Store, f store.TransactionFilter, size, most int) ([]string, error) {
	var got []string
	var after *store.Cursor
	for page := 0; ; page++ {
		if page > most/size+1 {
			return nil, fmt.Errorf("size %d: still paging after %d pages (%d rows at most)", size, page, most)
		}
		ts, err := s.ListTransactions(context.Background(), f, store.Page{Limit: size, After: after})
		if err != nil {
			return nil, fmt.Errorf("ListTransactions(%s, size %d): %w", describeTxnFilter(f), size, err)
		}
		if len(ts) > size {
			return nil, fmt.Errorf("a page of %d rows with size %d", len(ts), size)
		}
		for _, tx := range ts {
			got = append(got, tx.ID)
		}
		if len(ts) < size {
			return got, nil
		}
		c := store.TransactionCursor(ts[len(ts)-1])
		after = &c
	}
}

func describeTxnFilter(f store.TransactionFilter) string {
	var parts []string
	add := func(name string, v any) { parts = append(parts, fmt.Sprintf("%s=%v", name, v)) }
	if f.Party != "" {
		add("party", f.Party)
	}
	if f.MerchantID != "" {
		add("merchant", f.MerchantID)
	}
	if f.CustomerID != "" {
		add("customer", f.CustomerID)
	}
	if f.Currency != "" {
		add("currency", f.Currency)
	}
	if f.Type != "" {
		add("type", f.Type)
	}
	if f.Status != "" {
		add("status", f.Status)
	}
	if f.CreatedAfter != nil {
		add("after", f.CreatedAfter.Format(time.RFC3339Nano))
	}
	if f.CreatedBefore != nil {
		add("before", f.CreatedBefore.Format(time.RFC3339Nano))
	}
	if f.AmountMin != nil {
		add("min", *f.AmountMin)
	}
	if f.AmountMax != nil {
		add("max", *f.AmountMax)
	}
	if len(parts) == 0 {
		return "everything"
	}
	return strings.Join(parts, " ")
}

func TestListTransactionsMatchesAModel(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(7, 11))
		merchants := []string{ids.New(ids.Account), ids.New(ids.Account), ids.New(ids.Account)}
		customers := []string{ids.New(ids.Account), ids.New(ids.Account), ids.New(ids.Account), ids.New(ids.Account)}
		currencies := []string{"USD", "EUR", "KWD"}
		// 40 instants, whole seconds and fractions alike, for 260 rows:
		// many rows share a created_at and only the id orders them.
		var instants []time.Time
		fractions := []time.Duration{0, 123456 * time.Microsecond, 500 * time.Millisecond, 999999 * time.Microsecond, time.Microsecond}
		for i := range 40 {
			instants = append(instants, t0.Truncate(time.Second).Add(time.Duration(i)*37*time.Second+fractions[i%len(fractions)]))
		}
		var model txnModel
		for range 260 {
			customer := customers[rng.IntN(len(customers))]
			switch rng.IntN(6) {
			case 0:
				customer = "" // a guest
			case 1:
				customer = merchants[rng.IntN(len(merchants))] // a merchant paying another
			}
			model.rows = append(model.rows, randomTxn(rng, merchants[rng.IntN(len(merchants))], customer, currencies,
				instants[rng.IntN(len(instants))]))
		}
		// A merchant paying itself: one row, in both halves of its party
		// listing.
		model.rows = append(model.rows, randomTxn(rng, merchants[0], merchants[0], currencies, instants[3]))
		if err := insertTxns(ctx, s, model.rows); err != nil {
			t.Fatal(err)
		}
		// What was stored is what was inserted.
		for _, r := range model.rows[:20] {
			got, err := s.TransactionByID(ctx, r.ID)
			if err != nil || !got.CreatedAt.Equal(r.CreatedAt) || got.Amount != r.Amount || got.Currency != r.Currency {
				t.Fatalf("TransactionByID(%s) = %v, %v; inserted %v", r.ID, got, err, r)
			}
		}
		_, err := s.TransactionByID(ctx, ids.New(ids.Txn))
		wantErr(t, err, errs.ErrNotFound, "")

		at := func(i int, d time.Duration) *time.Time { return ptr(instants[i].Add(d)) }
		filters := []store.TransactionFilter{
			{},
			{Party: merchants[0]}, {Party: merchants[1]}, {Party: customers[0]}, {Party: customers[3]},
			{Party: ids.New(ids.Account)},
			{MerchantID: merchants[2]}, {MerchantID: ids.New(ids.Account)},
			{CustomerID: customers[1]}, {CustomerID: merchants[1]},
			{Currency: "usd"}, {Currency: "Eur"}, {Currency: "KWD"}, {Currency: "jpy"},
			{Type: transaction.TypePayment}, {Type: transaction.TypeRefund}, {Type: transaction.TypeDispute},
			{Status: transaction.StatusPending}, {Status: transaction.StatusSucceeded}, {Status: transaction.StatusFailed},
			{CreatedAfter: at(10, 0)}, {CreatedBefore: at(10, 0)},
			{CreatedAfter: at(10, 0), CreatedBefore: at(11, 0)},
			{CreatedAfter: at(10, time.Microsecond), CreatedBefore: at(20, time.Microsecond)},
			{CreatedAfter: at(10, -time.Microsecond), CreatedBefore: at(20, -time.Microsecond)},
			{CreatedAfter: at(5, 0), CreatedBefore: at(5, 0)}, // empty, but valid
			{AmountMin: ptr[int64](0)}, {AmountMax: ptr[int64](-1)}, {AmountMax: ptr[int64](0)},
			{AmountMin: ptr[int64](-5000), AmountMax: ptr[int64](-100)},
			{AmountMin: ptr[int64](-2500), AmountMax: ptr[int64](2500)},
			{AmountMin: ptr[int64](big)}, {AmountMin: ptr[int64](-big), AmountMax: ptr[int64](-big)},
			{Party: merchants[0], CustomerID: customers[2], Status: transaction.StatusSucceeded},
			{Party: customers[0], MerchantID: merchants[1], Currency: "usd"},
			{Party: merchants[0], MerchantID: merchants[1]}, // as the customer of merchants[1]
			{Party: merchants[1], Type: transaction.TypeRefund, AmountMax: ptr[int64](0), CreatedAfter: at(8, 0)},
		}
		// Every named filter is paged at sizes 1, 3, 7 and 100; the random
		// combinations below, many more, at 3, 7 and 100.
		named := len(filters)
		pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
		for range 60 {
			var f store.TransactionFilter
			if rng.IntN(3) == 0 {
				f.Party = pick(append(append(slices.Clone(merchants), customers...), ids.New(ids.Account)))
			}
			if rng.IntN(4) == 0 {
				f.MerchantID = pick(merchants)
			}
			if rng.IntN(4) == 0 {
				f.CustomerID = pick(append(slices.Clone(customers), merchants[0]))
			}
			if rng.IntN(3) == 0 {
				f.Currency = pick([]string{"usd", "EUR", "kWd"})
			}
			if rng.IntN(3) == 0 {
				f.Type = []transaction.Type{transaction.TypePayment, transaction.TypeRefund, transaction.TypeDispute}[rng.IntN(3)]
			}
			if rng.IntN(3) == 0 {
				f.Status = []transaction.Status{transaction.StatusPending, transaction.StatusSucceeded, transaction.StatusFailed}[rng.IntN(3)]
			}
			if rng.IntN(3) == 0 {
				a, b := rng.IntN(len(instants)), rng.IntN(len(instants))
				if a > b {
					a, b = b, a
				}
				shift := []time.Duration{0, time.Microsecond, -time.Microsecond}
				f.CreatedAfter, f.CreatedBefore = at(a, shift[rng.IntN(3)]), at(b, shift[rng.IntN(3)])
				if f.CreatedAfter.After(*f.CreatedBefore) {
					f.CreatedBefore = f.CreatedAfter
				}
				switch rng.IntN(3) {
				case 0:
					f.CreatedAfter = nil
				case 1:
					f.CreatedBefore = nil
				}
			}
			if rng.IntN(3) == 0 {
				lo, hi := rng.Int64N(20_000)-10_000, rng.Int64N(20_000)-10_000
				lo, hi = min(lo, hi), max(lo, hi)
				f.AmountMin, f.AmountMax = &lo, &hi
				switch rng.IntN(3) {
				case 0:
					f.AmountMin = nil
				case 1:
					f.AmountMax = nil
				}
			}
			filters = append(filters, f)
		}
		// Each filter is paged through at every size; filters are
		// independent reads, checked by a few goroutines at once.
		nonEmpty := 0
		type check struct {
			f     store.TransactionFilter
			sizes []int
		}
		checks := make(chan check)
		problems := make(chan string, len(filters))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for c := range checks {
					f, want := c.f, model.want(c.f)
					for _, size := range c.sizes {
						got, err := pageAll(s, f, size, len(model.rows))
						switch {
						case err != nil:
							problems <- err.Error()
						case !slices.Equal(got, want):
							problems <- fmt.Sprintf("%s, pages of %d:\n got %d rows %v\nwant %d rows %v",
								describeTxnFilter(f), size, len(got), got, len(want), want)
						default:
							continue
						}
						break
					}
				}
			})
		}
		for i, f := range filters {
			if len(model.want(f)) > 0 {
				nonEmpty++
			}
			sizes := []int{1, 3, 7, 100}
			if i >= named {
				sizes = sizes[1:]
			}
			checks <- check{f, sizes}
		}
		close(checks)
		wg.Wait()
		close(problems)
		for p := range problems {
			t.Error(p)
		}
		// The model must exercise the listing, not agree on emptiness.
		if nonEmpty < len(filters)*2/3 {
			t.Fatalf("only %d of %d filters select anything: the test data does not exercise them", nonEmpty, len(filters))
		}
	})
}

func TestListTransactionsRefusesBadRequests(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, tt := range []struct {
			name  string
			f     store.TransactionFilter
			p     store.Page
			field string
		}{
			{"page size 0", store.TransactionFilter{}, store.Page{}, "page_size"},
			{"negative page size", store.TransactionFilter{Party: ids.New(ids.Account)}, store.Page{Limit: -1}, "page_size"},
			{"created_after later than created_before",
				store.TransactionFilter{CreatedAfter: ptr(t0.Add(time.Microsecond)), CreatedBefore: ptr(t0)}, store.Page{Limit: 10}, "created_after"},
			{"amount_min above amount_max",
				store.TransactionFilter{AmountMin: ptr[int64](1), AmountMax: ptr[int64](0)}, store.Page{Limit: 10}, "amount_min"},
			{"amount_min above a negative amount_max",
				store.TransactionFilter{AmountMin: ptr[int64](-5), AmountMax: ptr[int64](-6)}, store.Page{Limit: 10}, "amount_min"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				ts, err := s.ListTransactions(ctx, tt.f, tt.p)
				wantErr(t, err, errs.ErrInvalidArgument, "")
				var e *errs.Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v is not a domain error", err)
				}
				if e.Field != tt.field {
					t.Fatalf("error %v is about field %q, want %q", err, e.Field, tt.field)
				}
				if ts != nil {
					t.Fatalf("rows %v with the error", ts)
				}
			})
		}
	})
}

// --- Paging while rows are inserted --------------------------------------

// TestListTransactionsPagesWhileRowsAreInserted pages through the history
// while another goroutine inserts rows between the page reads (newer than
// everything, older than everything, at the created_at of an existing row
// and of the page's last row): keyset pages never return a row twice,
// return every row that was there before paging began exactly once and in
// order, and return an inserted row exactly when it sorts after the page
// it was inserted behind.
func TestListTransactionsPagesWhileRowsAreInserted(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(3, 5))
		merchant, other := ids.New(ids.Account), ids.New(ids.Account)
		currencies := []string{"USD"}
		var instants []time.Time
		for i := range 12 {
			instants = append(instants, t0.Add(time.Duration(i)*time.Second+time.Duration(i)*time.Microsecond))
		}
		var rows []*ent.Transaction
		for i := range 60 {
			// merchant's own, and some where it is the customer.
			m, c := merchant, ids.New(ids.Account)
			if i%4 == 0 {
				m, c = other, merchant
			}
			rows = append(rows, randomTxn(rng, m, c, currencies, instants[rng.IntN(len(instants))]))
		}
		if err := insertTxns(ctx, s, rows); err != nil {
			t.Fatal(err)
		}

		for _, f := range []store.TransactionFilter{{}, {Party: merchant}} {
			t.Run(describeTxnFilter(f), func(t *testing.T) {
				before := txnModel{rows: s.Client.Transaction.Query().AllX(ctx)}.want(f)
				if len(before) < 40 {
					t.Fatalf("%d rows before paging; the test needs more", len(before))
				}
				oldest, newest := s.Client.Transaction.Query().Order(ent.Asc(transaction.FieldCreatedAt)).FirstX(ctx).CreatedAt,
					s.Client.Transaction.Query().Order(ent.Desc(transaction.FieldCreatedAt)).FirstX(ctx).CreatedAt

				// The writer inserts one batch per cursor it is sent and
				// answers when the batch is committed.
				type inserted struct {
					row    store.Cursor
					behind store.Cursor // the cursor of the page it was inserted behind
				}
				cursors := make(chan store.Cursor)
				done := make(chan error)
				var added []inserted
				go func() {
					defer close(done)
					k := 0
					for c := range cursors {
						k++
						existing := rows[rng.IntN(len(rows))].CreatedAt
						var batch []*ent.Transaction
						for _, at := range []time.Time{
							newest.Add(time.Duration(k) * time.Microsecond),  // newer than everything
							oldest.Add(-time.Duration(k) * time.Microsecond), // older than everything
							existing, existing, // beside an existing row, on either side of its id
							c.CreatedAt, c.CreatedAt, // beside the cursor's row
						} {
							r := randomTxn(rng, merchant, ids.New(ids.Account), currencies, at)
							batch = append(batch, r)
							added = append(added, inserted{store.TransactionCursor(r), c})
						}
						done <- insertTxns(ctx, s, batch)
					}
				}()
				var got []store.Cursor
				var after *store.Cursor
				for page := 0; ; page++ {
					if page > 100 {
						close(cursors)
						t.Fatal("still paging after 100 pages")
					}
					ts, err := s.ListTransactions(ctx, f, store.Page{Limit: 5, After: after})
					if err != nil {
						close(cursors)
						t.Fatalf("ListTransactions: %v", err)
					}
					for _, tx := range ts {
						got = append(got, store.TransactionCursor(tx))
					}
					if len(ts) < 5 {
						break
					}
					c := store.TransactionCursor(ts[len(ts)-1])
					after = &c
					cursors <- c
					if err := <-done; err != nil {
						close(cursors)
						t.Fatal(err)
					}
				}
				close(cursors)
				<-done // the writer has ended: added is ours.

				seen := map[string]bool{}
				for i, c := range got {
					if seen[c.ID] {
						t.Fatalf("%s returned twice", c.ID)
					}
					seen[c.ID] = true
					if i > 0 && !olderThan(c, got[i-1]) {
						t.Fatalf("row %d %v does not come after row %d %v", i, c, i-1, got[i-1])
					}
				}
				var old []string
				for _, c := range got {
					if slices.Contains(before, c.ID) {
						old = append(old, c.ID)
					}
				}
				if !slices.Equal(old, before) {
					t.Fatalf("the rows present before paging came as\n %v\nwant\n %v", old, before)
				}
				if len(added) == 0 {
					t.Fatal("nothing was inserted while paging")
				}
				behindCursor := 0
				for _, a := range added {
					want := olderThan(a.row, a.behind)
					if want {
						behindCursor++
					}
					if seen[a.row.ID] != want {
						t.Fatalf("row %v inserted behind cursor %v: returned %v, want %v", a.row, a.behind, seen[a.row.ID], want)
					}
				}
				if behindCursor == 0 || behindCursor == len(added) {
					t.Fatalf("%d of %d inserted rows sort after their cursor: the test must insert on both sides", behindCursor, len(added))
				}
			})
		}
	})
}

// TestListTransactionsCreatedBoundsFinerThanStored: created_after and
// created_before may be finer than the microseconds stored (the API's
// timestamps carry nanoseconds); [after, before) must still hold of the
// stored times.
func TestListTransactionsCreatedBoundsFinerThanStored(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(9, 9))
		merchant := ids.New(ids.Account)
		at := t0 // whole microseconds, as stored
		r := randomTxn(rng, merchant, "", []string{"USD"}, at)
		if err := insertTxns(ctx, s, []*ent.Transaction{r}); err != nil {
			t.Fatal(err)
		}
		half := 500 * time.Nanosecond
		for _, tt := range []struct {
			name string
			f    store.TransactionFilter
			want bool
		}{
			{"before a bound half a microsecond later", store.TransactionFilter{CreatedBefore: ptr(at.Add(half))}, true},
			{"after a bound half a microsecond earlier", store.TransactionFilter{CreatedAfter: ptr(at.Add(-half))}, true},
			{"not after a bound half a microsecond later", store.TransactionFilter{CreatedAfter: ptr(at.Add(half))}, false},
			{"not before a bound half a microsecond earlier", store.TransactionFilter{CreatedBefore: ptr(at.Add(-half))}, false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				ts, err := s.ListTransactions(ctx, tt.f, store.Page{Limit: 10})
				if err != nil {
					t.Fatalf("ListTransactions: %v", err)
				}
				if got := len(ts) == 1; got != tt.want {
					t.Fatalf("row created at %s listed: %v, want %v (filter %s)",
						at.Format(time.RFC3339Nano), got, tt.want, describeTxnFilter(tt.f))
				}
			})
		}
	})
}
