package store

import (
	"context"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/ent/transaction"
)

// backfillBatch is how many sources one backfill transaction covers.
const backfillBatch = 500

// BackfillHistory writes the transaction rows of payments, refunds and
// disputes saved before the history existed, from their stored state and
// the journals the ledger holds for them, and gives payments and refunds
// without a timeline a first one (created, and the current status). It is
// idempotent: a source that has its rows is left alone, so running it
// again, or after a partial run, completes what is missing. Migrate runs
// it when the history is empty and payments exist (the first start after
// an upgrade); `paymentsd migrate` runs it every time. It returns how many
// sources it completed.
func (s *Store) BackfillHistory(ctx context.Context) (int, error) {
	total := 0
	for _, step := range []func(context.Context, string) (int, string, error){
		s.backfillPayments, s.backfillRefunds, s.backfillDisputes,
	} {
		after := ""
		for {
			n, last, err := step(ctx, after)
			if err != nil {
				return total, fmt.Errorf("backfill the transaction history: %w", err)
			}
			total += n
			if last == "" {
				break
			}
			after = last
		}
	}
	return total, nil
}

// missing returns which of the source ids have no row of movement.
func missing(ctx context.Context, tx *ent.Tx, ids []string, movement transaction.Movement) (map[string]bool, error) {
	have, err := tx.Transaction.Query().
		Where(transaction.SourceIDIn(ids...), transaction.MovementEQ(movement)).
		Select(transaction.FieldSourceID).Strings(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	for _, id := range have {
		delete(out, id)
	}
	return out, nil
}

// journalTimes returns the posting time of each of the journals that
// exist.
func journalTimes(ctx context.Context, tx *ent.Tx, journalIDs []string) (map[string]time.Time, error) {
	es, err := tx.LedgerEntry.Query().
		Where(ledgerentry.JournalIDIn(journalIDs...), ledgerentry.Line(0)).
		All(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(es))
	for _, e := range es {
		out[e.JournalID] = e.CreatedAt
	}
	return out, nil
}

// journalOf returns id when the journal exists, else "".
func journalOf(posted map[string]time.Time, id string) string {
	if _, ok := posted[id]; ok {
		return id
	}
	return ""
}

func (s *Store) backfillPayments(ctx context.Context, after string) (n int, last string, err error) {
	err = s.ledgerTx(ctx, func(tx *ent.Tx) error {
		n, last = 0, ""
		ps, err := tx.Payment.Query().Where(payment.IDGT(after)).Order(ent.Asc(payment.FieldID)).Limit(backfillBatch).All(ctx)
		if err != nil || len(ps) == 0 {
			return err
		}
		last = ps[len(ps)-1].ID
		ids, journals := make([]string, len(ps)), make([]string, len(ps))
		for i, p := range ps {
			ids[i], journals[i] = p.ID, p.ID+captureSuffix
		}
		need, err := missing(ctx, tx, ids, transaction.MovementPayment)
		if err != nil {
			return err
		}
		posted, err := journalTimes(ctx, tx, journals)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if len(p.Timeline) == 0 {
				steps := paymentSteps(nil, nil, PaymentRecordOf(p))
				if err := tx.Payment.UpdateOneID(p.ID).SetTimeline(steps).Exec(ctx); err != nil {
					return err
				}
			}
			if !need[p.ID] {
				continue
			}
			if err := recordMovement(ctx, tx, paymentMovement(p, journalOf(posted, p.ID+captureSuffix))); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, last, err
}

func (s *Store) backfillRefunds(ctx context.Context, after string) (n int, last string, err error) {
	err = s.ledgerTx(ctx, func(tx *ent.Tx) error {
		n, last = 0, ""
		rs, err := tx.Refund.Query().Where(refund.IDGT(after)).Order(ent.Asc(refund.FieldID)).Limit(backfillBatch).All(ctx)
		if err != nil || len(rs) == 0 {
			return err
		}
		last = rs[len(rs)-1].ID
		var ids, journals []string
		for _, r := range rs {
			ids = append(ids, r.ID)
			journals = append(journals, r.ID+refundSuffix, r.ID+refundFailedSuffix)
		}
		need, err := missing(ctx, tx, ids, transaction.MovementRefund)
		if err != nil {
			return err
		}
		posted, err := journalTimes(ctx, tx, journals)
		if err != nil {
			return err
		}
		for _, r := range rs {
			if len(r.Timeline) == 0 {
				// Created, then from the state CreateRefund stored (pending,
				// no reference) to the state now.
				rec := RefundRecordOf(r)
				created := &ent.Refund{Status: refund.StatusPending, Gateway: r.Gateway}
				steps := refundSteps(refundSteps(nil, nil, rec), created, rec)
				if err := tx.Refund.UpdateOneID(r.ID).SetTimeline(steps).Exec(ctx); err != nil {
					return err
				}
			}
			if !need[r.ID] {
				continue
			}
			if err := recordMovement(ctx, tx, refundMovement(r, journalOf(posted, r.ID+refundSuffix))); err != nil {
				return err
			}
			if at, ok := posted[r.ID+refundFailedSuffix]; ok {
				j := Journal{ID: r.ID + refundFailedSuffix, At: at}
				if err := recordMovement(ctx, tx, refundFailureMovement(r, j)); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	return n, last, err
}

func (s *Store) backfillDisputes(ctx context.Context, after string) (n int, last string, err error) {
	err = s.ledgerTx(ctx, func(tx *ent.Tx) error {
		n, last = 0, ""
		ds, err := tx.Dispute.Query().Where(dispute.IDGT(after)).Order(ent.Asc(dispute.FieldID)).Limit(backfillBatch).All(ctx)
		if err != nil || len(ds) == 0 {
			return err
		}
		last = ds[len(ds)-1].ID
		var ids, journals []string
		for _, d := range ds {
			ids = append(ids, d.ID)
			journals = append(journals, d.ID+fundsWithdrawnSuffix, d.ID+refundSuffix, d.ID+fundsReinstatedSuffix)
		}
		need, err := missing(ctx, tx, ids, transaction.MovementDispute)
		if err != nil {
			return err
		}
		posted, err := journalTimes(ctx, tx, journals)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if !need[d.ID] {
				continue
			}
			debit := journalOf(posted, d.ID+fundsWithdrawnSuffix)
			if debit == "" {
				debit = journalOf(posted, d.ID+refundSuffix)
			}
			if err := recordMovement(ctx, tx, disputeMovement(d, debit)); err != nil {
				return err
			}
			if at, ok := posted[d.ID+fundsReinstatedSuffix]; ok {
				j := Journal{ID: d.ID + fundsReinstatedSuffix, At: at}
				if err := recordMovement(ctx, tx, disputeReversalMovement(d, j)); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	return n, last, err
}
