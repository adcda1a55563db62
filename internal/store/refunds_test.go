package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// succeededPayment saves a payment that received its whole amount, with
// its capture journal, as the payment's workflow would, and returns its
// record (currency upper case, as stored).
func succeededPayment(t *testing.T, s *store.Store, merchant, customer, currency string, received int64, at time.Time) store.PaymentRecord {
	t.Helper()
	rec := newPayment(merchant, customer, at)
	rec.Currency = strings.ToUpper(currency)
	rec.Amount, rec.AmountReceived = received, received
	rec.Status = payment.StatusSucceeded
	rec.GatewayReference = "pi_" + rec.ID
	mustSave(t, s, rec, &store.Journal{
		ID: rec.ID + "/capture", Currency: currency, At: at, Lines: captureLines(merchant, received),
	})
	return rec
}

// newRefund is the request to refund amount of p, as the API (with the
// merchant's id) hands it to CreateRefund.
func newRefund(p store.PaymentRecord, amount int64, at time.Time) store.RefundRecord {
	id := ids.NewAt(ids.Refund, at)
	return store.RefundRecord{
		ID:         id,
		PaymentID:  p.ID,
		MerchantID: p.MerchantID,
		Amount:     amount,
		Currency:   p.Currency,
		Reason:     refund.ReasonRequestedByCustomer,
		WorkflowID: "refund/" + id,
		Metadata:   map[string]string{"ticket": "t-1"},
		CreatedAt:  at,
	}
}

func mustCreateRefund(t *testing.T, s *store.Store, rec store.RefundRecord) (*ent.Refund, *ent.Payment) {
	t.Helper()
	r, p, err := s.CreateRefund(context.Background(), rec)
	if err != nil {
		t.Fatalf("CreateRefund(%s: %d %s of %s): %v", rec.ID, rec.Amount, rec.Currency, rec.PaymentID, err)
	}
	if r == nil || p == nil {
		t.Fatalf("CreateRefund(%s) = %v, %v with no error", rec.ID, r, p)
	}
	return r, p
}

func mustSaveRefund(t *testing.T, s *store.Store, rec store.RefundRecord, j *store.Journal) *ent.Refund {
	t.Helper()
	r, err := s.SaveRefund(context.Background(), rec, j)
	if err != nil {
		t.Fatalf("SaveRefund(%s v%d %s): %v", rec.ID, rec.Version, rec.Status, err)
	}
	return r
}

// wantRefund checks every column of r against want.
func wantRefund(t *testing.T, what string, r *ent.Refund, want store.RefundRecord) {
	t.Helper()
	got := store.RefundRecordOf(r)
	var diffs []string
	check := func(field string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, got, want))
		}
	}
	check("id", got.ID, want.ID)
	check("payment_id", got.PaymentID, want.PaymentID)
	check("merchant_id", got.MerchantID, want.MerchantID)
	check("customer_id", got.CustomerID, want.CustomerID)
	check("amount", got.Amount, want.Amount)
	check("currency", got.Currency, want.Currency)
	check("status", got.Status, want.Status)
	check("reason", got.Reason, want.Reason)
	check("failure_reason", got.FailureReason, want.FailureReason)
	check("gateway", got.Gateway, want.Gateway)
	check("gateway_reference", got.GatewayReference, want.GatewayReference)
	check("workflow_id", got.WorkflowID, want.WorkflowID)
	check("needs_attention", got.NeedsAttention, want.NeedsAttention)
	check("attention_reason", got.AttentionReason, want.AttentionReason)
	check("version", got.Version, want.Version)
	if !got.CreatedAt.Equal(want.CreatedAt) {
		diffs = append(diffs, fmt.Sprintf("created_at = %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		diffs = append(diffs, fmt.Sprintf("updated_at = %v, want %v", got.UpdatedAt, want.UpdatedAt))
	}
	wantMeta := want.Metadata
	if wantMeta == nil {
		wantMeta = map[string]string{}
	}
	if got.Metadata == nil || !maps.Equal(got.Metadata, wantMeta) {
		diffs = append(diffs, fmt.Sprintf("metadata = %#v, want %#v", got.Metadata, wantMeta))
	}
	if len(diffs) > 0 {
		t.Fatalf("%s:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

// createdAs is the row CreateRefund should store for rec of payment p.
func createdAs(rec store.RefundRecord, p store.PaymentRecord, amount int64) store.RefundRecord {
	return store.RefundRecord{
		ID: rec.ID, PaymentID: p.ID, MerchantID: p.MerchantID, CustomerID: p.CustomerID,
		Amount: amount, Currency: strings.ToUpper(p.Currency), Status: refund.StatusPending,
		Reason: rec.Reason, Gateway: p.Gateway, WorkflowID: rec.WorkflowID, Metadata: rec.Metadata,
		Version: 1, CreatedAt: rec.CreatedAt, UpdatedAt: rec.CreatedAt,
	}
}

// wantRefunded checks the stored payment's amount_refunded.
func wantRefunded(t *testing.T, s *store.Store, paymentID string, want int64) {
	t.Helper()
	p, err := s.PaymentByID(context.Background(), paymentID)
	if err != nil {
		t.Fatalf("PaymentByID(%s): %v", paymentID, err)
	}
	if p.AmountRefunded != want {
		t.Fatalf("payment %s: amount_refunded = %d, want %d", paymentID, p.AmountRefunded, want)
	}
}

// snapshot renders every payment, refund and ledger row, so a test can show
// that a refused call wrote nothing.
func snapshot(t *testing.T, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, p := range s.Client.Payment.Query().Order(ent.Asc(payment.FieldID)).AllX(ctx) {
		b.WriteString(p.String() + "\n")
	}
	for _, r := range s.Client.Refund.Query().Order(ent.Asc(refund.FieldID)).AllX(ctx) {
		b.WriteString(r.String() + "\n")
	}
	for _, e := range s.Client.LedgerEntry.Query().
		Order(ent.Asc(ledgerentry.FieldJournalID), ent.Asc(ledgerentry.FieldLine)).AllX(ctx) {
		b.WriteString(e.String() + "\n")
	}
	return b.String()
}

func wantUnchanged(t *testing.T, s *store.Store, before, what string) {
	t.Helper()
	if after := snapshot(t, s); after != before {
		t.Fatalf("%s changed the database:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// wantRefusal checks err's kind and that its message contains each part.
func wantRefusal(t *testing.T, err, sentinel error, parts ...string) {
	t.Helper()
	wantErr(t, err, sentinel, "")
	var e *errs.Error
	if !errors.As(err, &e) || !containsAll(e.Message, parts...) {
		t.Fatalf("error message %q does not contain all of %q", err.Error(), parts)
	}
}

func TestHoldsAndRefundable(t *testing.T) {
	for st, want := range map[refund.Status]bool{
		refund.StatusPending: true, refund.StatusSucceeded: true,
		refund.StatusFailed: false, refund.StatusCanceled: false,
	} {
		if got := store.Holds(st); got != want {
			t.Errorf("Holds(%s) = %v, want %v", st, got, want)
		}
	}
	p := &ent.Payment{AmountReceived: 1000, AmountRefunded: 300, AmountDisputed: 200}
	if got := store.Refundable(p); got != 500 {
		t.Errorf("Refundable(received 1000, refunded 300, disputed 200) = %d, want 500", got)
	}
}

func TestCreateRefundPartialThenFull(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)

		// Two partial refunds, then one for everything left (amount 0).
		var refunded int64
		for i, amount := range []int64{300, 250, 0} {
			at := t0.Add(time.Duration(i+1) * time.Minute)
			rec := newRefund(p, amount, at)
			want := amount
			if amount == 0 {
				want = 1000 - refunded
			}
			r, after := mustCreateRefund(t, s, rec)
			refunded += want
			wantRefund(t, fmt.Sprintf("refund %d as returned", i), r, createdAs(rec, p, want))
			stored, err := s.RefundByID(ctx, rec.ID)
			if err != nil {
				t.Fatalf("RefundByID(%s): %v", rec.ID, err)
			}
			wantRefund(t, fmt.Sprintf("refund %d as read", i), stored, createdAs(rec, p, want))
			if after.ID != p.ID || after.AmountRefunded != refunded || after.AmountReceived != 1000 {
				t.Fatalf("payment returned after refund %d: id %s, received %d, refunded %d; want %s, 1000, %d",
					i, after.ID, after.AmountReceived, after.AmountRefunded, p.ID, refunded)
			}
			wantRefunded(t, s, p.ID, refunded)
		}
		if refunded != 1000 {
			t.Fatalf("refunded %d in all, want 1000", refunded)
		}

		// Nothing is left: neither everything nor one cent can be refunded.
		before := snapshot(t, s)
		for _, amount := range []int64{0, 1} {
			_, _, err := s.CreateRefund(ctx, newRefund(p, amount, t0.Add(time.Hour)))
			wantRefusal(t, err, errs.ErrFailedPrecondition, p.ID, "nothing is left")
			wantUnchanged(t, s, before, fmt.Sprintf("refunding %d of a refunded payment", amount))
		}
		wantRefunded(t, s, p.ID, 1000)
	})
}

func TestCreateRefundFullOfFreshPaymentAndDisputedAmounts(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		merchant := ids.New(ids.Account)
		// A guest's payment refunded in full at once.
		p := succeededPayment(t, s, merchant, "", "USD", 1999, t0)
		rec := newRefund(p, 0, t0.Add(time.Minute))
		r, after := mustCreateRefund(t, s, rec)
		wantRefund(t, "full refund", r, createdAs(rec, p, 1999))
		if after.AmountRefunded != 1999 {
			t.Fatalf("amount_refunded after the full refund = %d, want 1999", after.AmountRefunded)
		}

		// A disputed amount is not refundable.
		d := newPayment(merchant, ids.New(ids.Account), t0.Add(time.Second))
		d.Amount, d.AmountReceived = 1000, 1000
		d.Status = payment.StatusSucceeded
		mustSave(t, s, d, nil)
		// SavePayment leaves the balance columns alone; a dispute would
		// hold its part through the balance, as a refund does.
		s.Client.Payment.UpdateOneID(d.ID).SetAmountDisputed(250).ExecX(context.Background())
		d.AmountDisputed = 250
		_, _, err := s.CreateRefund(context.Background(), newRefund(d, 751, t0.Add(time.Minute)))
		wantRefusal(t, err, errs.ErrFailedPrecondition, "7.50 USD", "750")
		wantRefunded(t, s, d.ID, 0)
		rec = newRefund(d, 0, t0.Add(2*time.Minute))
		r, after = mustCreateRefund(t, s, rec)
		wantRefund(t, "full refund of a disputed payment", r, createdAs(rec, d, 750))
		if after.AmountRefunded != 750 || after.AmountDisputed != 250 {
			t.Fatalf("after: refunded %d, disputed %d; want 750, 250", after.AmountRefunded, after.AmountDisputed)
		}
	})
}

func TestCreateRefundExactInCurrenciesWithoutAndWithThreeDecimals(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, tt := range []struct {
			currency      string
			received      int64
			partial       int64
			leftFormatted string // what is left after the partial refund
		}{
			// 0 decimals: one unit is one yen.
			{"JPY", 12345, 2345, "10000 JPY"},
			// 3 decimals: one unit is one fils; 1.234 KWD left.
			{"KWD", 5001, 3767, "1.234 KWD"},
			// Beyond 32 bits and a float64's exact cents.
			{"KWD", big, big - 1, "0.001 KWD"},
		} {
			t.Run(fmt.Sprint(tt.currency, " ", tt.received), func(t *testing.T) {
				p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), strings.ToLower(tt.currency), tt.received, t0)
				rec := newRefund(p, tt.partial, t0.Add(time.Minute))
				rec.Currency = strings.ToLower(tt.currency) // any case
				r, after := mustCreateRefund(t, s, rec)
				if r.Amount != tt.partial || r.Currency != tt.currency || after.AmountRefunded != tt.partial {
					t.Fatalf("refund %d %s, payment refunded %d; want %d %s", r.Amount, r.Currency, after.AmountRefunded, tt.partial, tt.currency)
				}

				left := tt.received - tt.partial
				before := snapshot(t, s)
				_, _, err := s.CreateRefund(ctx, newRefund(p, left+1, t0.Add(2*time.Minute)))
				wantRefusal(t, err, errs.ErrFailedPrecondition, p.ID, tt.leftFormatted, fmt.Sprint(left), fmt.Sprint(left+1))
				wantUnchanged(t, s, before, "over-refund")

				r, after = mustCreateRefund(t, s, newRefund(p, 0, t0.Add(3*time.Minute)))
				if r.Amount != left || after.AmountRefunded != tt.received {
					t.Fatalf("refund of the rest: %d, payment refunded %d; want %d, %d", r.Amount, after.AmountRefunded, left, tt.received)
				}
			})
		}
	})
}

func TestCreateRefundRefusesOverRefund(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		mustCreateRefund(t, s, newRefund(p, 600, t0.Add(time.Minute)))

		before := snapshot(t, s)
		_, _, err := s.CreateRefund(ctx, newRefund(p, 401, t0.Add(2*time.Minute)))
		wantRefusal(t, err, errs.ErrFailedPrecondition, p.ID, "4.00 USD", "400 in minor units", "401")
		wantUnchanged(t, s, before, "refunding 401 of 400 left")
		_, _, err = s.CreateRefund(ctx, newRefund(p, 1001, t0.Add(2*time.Minute)))
		wantRefusal(t, err, errs.ErrFailedPrecondition, "4.00 USD")
		wantUnchanged(t, s, before, "refunding more than was received")

		// Exactly what is left is fine.
		mustCreateRefund(t, s, newRefund(p, 400, t0.Add(3*time.Minute)))
		wantRefunded(t, s, p.ID, 1000)
	})
}

func TestCreateRefundRefusesPaymentsThatReceivedNothing(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant := ids.New(ids.Account)
		for i, tt := range []struct {
			status payment.Status
			says   string
		}{
			{payment.StatusProcessing, "only a succeeded payment can be refunded"},
			{payment.StatusRequiresAction, "only a succeeded payment can be refunded"},
			{payment.StatusRequiresCapture, "cancel the payment instead"},
			{payment.StatusFailed, "received no money"},
			{payment.StatusCanceled, "received no money"},
		} {
			t.Run(string(tt.status), func(t *testing.T) {
				rec := newPayment(merchant, ids.New(ids.Account), t0.Add(time.Duration(i)*time.Second))
				rec.Status = tt.status
				if tt.status == payment.StatusRequiresCapture {
					rec.AmountCapturable = rec.Amount
				}
				mustSave(t, s, rec, nil)
				before := snapshot(t, s)
				for _, amount := range []int64{0, 1} {
					_, _, err := s.CreateRefund(ctx, newRefund(rec, amount, t0.Add(time.Minute)))
					wantRefusal(t, err, errs.ErrFailedPrecondition, rec.ID, tt.says)
					wantUnchanged(t, s, before, fmt.Sprintf("refunding %d of a %s payment", amount, tt.status))
				}
			})
		}
	})
}

func TestCreateRefundRefusesBadRequests(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		mustCreateRefund(t, s, newRefund(p, 100, t0.Add(time.Minute)))
		before := snapshot(t, s)

		for _, tt := range []struct {
			name     string
			edit     func(r *store.RefundRecord)
			sentinel error
			field    string
			says     string
		}{
			{"unknown payment", func(r *store.RefundRecord) { r.PaymentID = ids.New(ids.Payment) },
				errs.ErrNotFound, "", "payment not found"},
			{"another merchant's payment", func(r *store.RefundRecord) { r.MerchantID = ids.New(ids.Account) },
				errs.ErrNotFound, "", "payment not found"},
			{"another merchant's payment in another currency", func(r *store.RefundRecord) {
				r.MerchantID, r.Currency = ids.New(ids.Account), "EUR"
			}, errs.ErrNotFound, "", "payment not found"},
			{"currency mismatch", func(r *store.RefundRecord) { r.Currency = "eur" },
				errs.ErrInvalidArgument, "currency", "the payment is in USD, not EUR"},
			{"negative amount", func(r *store.RefundRecord) { r.Amount = -1 },
				errs.ErrInvalidArgument, "amount", "must not be negative"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := s.CreateRefund(ctx, func() store.RefundRecord {
					r := newRefund(p, 100, t0.Add(2*time.Minute))
					tt.edit(&r)
					return r
				}())
				wantRefusal(t, err, tt.sentinel, tt.says)
				var e *errs.Error
				if errors.As(err, &e); e.Field != tt.field {
					t.Fatalf("error %v is about field %q, want %q", err, e.Field, tt.field)
				}
				wantUnchanged(t, s, before, tt.name)
			})
		}

		// An admin (no merchant) may refund any payment; the merchant its own.
		admin := newRefund(p, 100, t0.Add(3*time.Minute))
		admin.MerchantID = ""
		r, _ := mustCreateRefund(t, s, admin)
		if r.MerchantID != p.MerchantID {
			t.Fatalf("an admin's refund has merchant %q, want the payment's %q", r.MerchantID, p.MerchantID)
		}
		// Without a currency, the payment's.
		noCurrency := newRefund(p, 100, t0.Add(4*time.Minute))
		noCurrency.Currency = ""
		if r, _ = mustCreateRefund(t, s, noCurrency); r.Currency != "USD" {
			t.Fatalf("currency = %q, want the payment's USD", r.Currency)
		}
		wantRefunded(t, s, p.ID, 300)
	})
}

func TestCreateRefundDuplicateIDIsAlreadyExists(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant := ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, ids.New(ids.Account), "USD", 1000, t0)
		q := succeededPayment(t, s, merchant, ids.New(ids.Account), "USD", 1000, t0.Add(time.Second))
		rec := newRefund(p, 300, t0.Add(time.Minute))
		first, _ := mustCreateRefund(t, s, rec)
		before := snapshot(t, s)

		for _, tt := range []struct {
			name string
			edit func(r *store.RefundRecord)
		}{
			{"same request", func(*store.RefundRecord) {}},
			{"another amount", func(r *store.RefundRecord) { r.Amount = 200 }},
			{"everything left", func(r *store.RefundRecord) { r.Amount = 0 }},
			{"another payment", func(r *store.RefundRecord) { r.PaymentID = q.ID }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				again := rec
				again.CreatedAt = t0.Add(time.Hour)
				tt.edit(&again)
				_, _, err := s.CreateRefund(ctx, again)
				wantErr(t, err, errs.ErrAlreadyExists, "")
				wantUnchanged(t, s, before, "a duplicate refund id")
			})
		}
		stored, err := s.RefundByID(ctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantRefund(t, "the first refund", stored, store.RefundRecordOf(first))
		wantRefunded(t, s, p.ID, 300)
		wantRefunded(t, s, q.ID, 0)
	})
}

// The refund workflow's CreateRefund is a local activity: when its first
// attempt committed and the answer was lost, the retry must get
// AlreadyExists (activities.Store.CreateRefund then returns the stored
// refund). A retry that the balance refuses instead makes the workflow end
// the refund as refused while its row holds the amount.
func TestCreateRefundRetriedAfterCommitIsAlreadyExists(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for _, tt := range []struct {
			name   string
			amount int64
		}{
			{"full refund", 0},
			{"partial refund of more than is left after it", 600},
		} {
			t.Run(tt.name, func(t *testing.T) {
				p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
				rec := newRefund(p, tt.amount, t0.Add(time.Minute))
				mustCreateRefund(t, s, rec)
				before := snapshot(t, s)
				_, _, err := s.CreateRefund(ctx, rec)
				wantErr(t, err, errs.ErrAlreadyExists, "")
				wantUnchanged(t, s, before, "the retried CreateRefund")
			})
		}
	})
}

func TestCreateRefundRefusesAnInvalidIDAndWritesNothing(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		before := snapshot(t, s)
		for _, id := range []string{"", "re_ABC", ids.New(ids.Payment)} {
			rec := newRefund(p, 100, t0.Add(time.Minute))
			rec.ID = id
			if _, _, err := s.CreateRefund(context.Background(), rec); err == nil {
				t.Fatalf("CreateRefund with id %q succeeded", id)
			}
			wantUnchanged(t, s, before, fmt.Sprintf("CreateRefund with id %q", id))
		}
	})
}

func TestCreateRefundConcurrentNeverOverRefunds(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const (
			n        = 20
			amount   = 70
			received = 1000
		)
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", received, t0)
		type result struct {
			id  string
			err error
		}
		results := concurrently(n, func(i int) result {
			rec := newRefund(p, amount, t0.Add(time.Duration(i)*time.Millisecond))
			r, after, err := s.CreateRefund(ctx, rec)
			switch {
			case err != nil:
				return result{rec.ID, err}
			case r.Amount != amount:
				return result{rec.ID, fmt.Errorf("refund of %d, want %d", r.Amount, amount)}
			case after.AmountRefunded > received:
				return result{rec.ID, fmt.Errorf("payment refunded %d of %d", after.AmountRefunded, received)}
			}
			return result{id: rec.ID}
		})
		var winners []string
		for _, r := range results {
			switch {
			case r.err == nil:
				winners = append(winners, r.id)
			case errs.KindOf(r.err) == errs.KindFailedPrecondition:
				if !strings.Contains(r.err.Error(), "left to refund") {
					t.Errorf("loser %s: %v; want a message naming what is left", r.id, r.err)
				}
			default:
				t.Errorf("refund %s: %v (kind %v), want success or FailedPrecondition", r.id, r.err, errs.KindOf(r.err))
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		if len(winners) != received/amount {
			t.Fatalf("%d of %d concurrent refunds of %d succeeded, want %d", len(winners), n, amount, received/amount)
		}

		stored := s.Client.Refund.Query().Where(refund.PaymentID(p.ID)).AllX(ctx)
		var sum int64
		var storedIDs []string
		for _, r := range stored {
			sum += r.Amount
			storedIDs = append(storedIDs, r.ID)
		}
		slices.Sort(winners)
		slices.Sort(storedIDs)
		if !slices.Equal(storedIDs, winners) {
			t.Fatalf("stored refunds %v, want the winners %v", storedIDs, winners)
		}
		if sum != int64(len(winners))*amount || sum > received {
			t.Fatalf("stored refunds sum to %d, want %d (at most %d)", sum, len(winners)*amount, received)
		}
		wantRefunded(t, s, p.ID, sum)
	})
}

func TestCreateRefundConcurrentFullRefundsOnlyOneWins(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 20
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "JPY", 5000, t0)
		results := concurrently(n, func(i int) error {
			_, _, err := s.CreateRefund(ctx, newRefund(p, 0, t0.Add(time.Duration(i)*time.Millisecond)))
			return err
		})
		wins := 0
		for i, err := range results {
			switch {
			case err == nil:
				wins++
			case errs.KindOf(err) != errs.KindFailedPrecondition:
				t.Fatalf("refund %d: %v (kind %v), want success or FailedPrecondition", i, err, errs.KindOf(err))
			}
		}
		if wins != 1 {
			t.Fatalf("%d concurrent full refunds succeeded, want 1", wins)
		}
		stored := s.Client.Refund.Query().Where(refund.PaymentID(p.ID)).AllX(ctx)
		if len(stored) != 1 || stored[0].Amount != 5000 {
			t.Fatalf("stored refunds %v, want one of 5000", stored)
		}
		wantRefunded(t, s, p.ID, 5000)
	})
}

// next is rec's following save by its workflow.
func next(rec store.RefundRecord, st refund.Status, edit func(r *store.RefundRecord)) store.RefundRecord {
	rec.Version++
	rec.Status = st
	rec.UpdatedAt = rec.UpdatedAt.Add(time.Minute)
	if edit != nil {
		edit(&rec)
	}
	return rec
}

func TestSaveRefundIsVersioned(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		created, _ := mustCreateRefund(t, s, newRefund(p, 400, t0.Add(time.Minute)))
		v1 := store.RefundRecordOf(created)

		v2 := next(v1, refund.StatusPending, func(r *store.RefundRecord) {
			r.GatewayReference = "gw_re_1"
			r.NeedsAttention, r.AttentionReason = true, "gateway timed out"
		})
		wantRefund(t, "returned after v2", mustSaveRefund(t, s, v2, nil), v2)
		wantRefund(t, "read after v2", s.Client.Refund.GetX(ctx, v1.ID), v2)

		// An equal or older version changes nothing and answers with what is
		// stored.
		otherV2 := next(v1, refund.StatusFailed, func(r *store.RefundRecord) { r.FailureReason = "expired_card" })
		wantRefund(t, "returned after another v2", mustSaveRefund(t, s, otherV2, nil), v2)
		wantRefund(t, "returned after v1", mustSaveRefund(t, s, v1, nil), v2)
		wantRefund(t, "read after the no-ops", s.Client.Refund.GetX(ctx, v1.ID), v2)
		wantRefunded(t, s, p.ID, 400)

		got, err := s.RefundByGatewayReference(ctx, "gw_re_1")
		if err != nil || got.ID != v1.ID {
			t.Fatalf("RefundByGatewayReference(gw_re_1) = %v, %v; want %s", got, err, v1.ID)
		}
		for _, ref := range []string{"", "gw_re_2", "GW_RE_1"} {
			_, err := s.RefundByGatewayReference(ctx, ref)
			wantErr(t, err, errs.ErrNotFound, "refund not found")
		}
		_, err = s.RefundByID(ctx, ids.New(ids.Refund))
		wantErr(t, err, errs.ErrNotFound, "refund not found")

		// A refund that does not exist cannot be saved.
		before := snapshot(t, s)
		ghost := next(v1, refund.StatusSucceeded, func(r *store.RefundRecord) { r.ID = ids.New(ids.Refund) })
		_, err = s.SaveRefund(ctx, ghost, nil)
		wantErr(t, err, errs.ErrNotFound, "refund not found")
		wantUnchanged(t, s, before, "saving an unknown refund")
	})
}

func TestSaveRefundSucceededKeepsTheAmountHeld(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		created, _ := mustCreateRefund(t, s, newRefund(p, 400, t0.Add(time.Minute)))
		v2 := next(store.RefundRecordOf(created), refund.StatusSucceeded, func(r *store.RefundRecord) { r.GatewayReference = "gw_1" })
		wantRefund(t, "succeeded", mustSaveRefund(t, s, v2, nil), v2)
		wantRefunded(t, s, p.ID, 400)
		// Still held: only 600 is left.
		_, _, err := s.CreateRefund(context.Background(), newRefund(p, 601, t0.Add(time.Hour)))
		wantRefusal(t, err, errs.ErrFailedPrecondition, "6.00 USD")
	})
}

func TestSaveRefundFailureFreesTheAmountOnce(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		a, _ := mustCreateRefund(t, s, newRefund(p, 400, t0.Add(time.Minute)))
		b, _ := mustCreateRefund(t, s, newRefund(p, 300, t0.Add(2*time.Minute)))
		c, _ := mustCreateRefund(t, s, newRefund(p, 200, t0.Add(3*time.Minute)))
		wantRefunded(t, s, p.ID, 900)

		// pending -> failed gives a's 400 back, once.
		aFailed := next(store.RefundRecordOf(a), refund.StatusFailed, func(r *store.RefundRecord) { r.FailureReason = "card_closed" })
		wantRefund(t, "a failed", mustSaveRefund(t, s, aFailed, nil), aFailed)
		wantRefunded(t, s, p.ID, 500)
		for range 3 { // the retried local activity
			wantRefund(t, "a failed, retried", mustSaveRefund(t, s, aFailed, nil), aFailed)
			wantRefunded(t, s, p.ID, 500)
		}
		// A later save that keeps it failed changes the row, not the balance.
		aLater := next(aFailed, refund.StatusFailed, func(r *store.RefundRecord) {
			r.NeedsAttention, r.AttentionReason = true, "gateway says failed twice"
		})
		wantRefund(t, "a failed again", mustSaveRefund(t, s, aLater, nil), aLater)
		wantRefunded(t, s, p.ID, 500)
		aLater2 := next(aLater, refund.StatusFailed, func(r *store.RefundRecord) { r.NeedsAttention, r.AttentionReason = false, "" })
		mustSaveRefund(t, s, aLater2, nil)
		wantRefunded(t, s, p.ID, 500)

		// succeeded -> failed (the gateway reversed it) gives b's 300 back,
		// once.
		bSucceeded := next(store.RefundRecordOf(b), refund.StatusSucceeded, nil)
		mustSaveRefund(t, s, bSucceeded, nil)
		wantRefunded(t, s, p.ID, 500)
		bFailed := next(bSucceeded, refund.StatusFailed, func(r *store.RefundRecord) { r.FailureReason = "reversed" })
		wantRefund(t, "b failed", mustSaveRefund(t, s, bFailed, nil), bFailed)
		wantRefunded(t, s, p.ID, 200)
		mustSaveRefund(t, s, bFailed, nil)
		mustSaveRefund(t, s, bSucceeded, nil) // older: a no-op
		wantRefund(t, "b after the replays", s.Client.Refund.GetX(ctx, b.ID), bFailed)
		wantRefunded(t, s, p.ID, 200)

		// pending -> canceled gives c's 200 back.
		cCanceled := next(store.RefundRecordOf(c), refund.StatusCanceled, nil)
		wantRefund(t, "c canceled", mustSaveRefund(t, s, cCanceled, nil), cCanceled)
		mustSaveRefund(t, s, cCanceled, nil)
		wantRefunded(t, s, p.ID, 0)

		// What was given back can be refunded again, exactly.
		r, after := mustCreateRefund(t, s, newRefund(p, 0, t0.Add(time.Hour)))
		if r.Amount != 1000 || after.AmountRefunded != 1000 {
			t.Fatalf("refund of everything after the failures: %d, payment refunded %d; want 1000, 1000", r.Amount, after.AmountRefunded)
		}
	})
}

func TestSaveRefundFinalStatusesStayFinal(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		for i, final := range []refund.Status{refund.StatusFailed, refund.StatusCanceled} {
			t.Run(string(final), func(t *testing.T) {
				created, _ := mustCreateRefund(t, s, newRefund(p, 100, t0.Add(time.Duration(i+1)*time.Minute)))
				ended := next(store.RefundRecordOf(created), final, nil)
				mustSaveRefund(t, s, ended, nil)
				before := snapshot(t, s)
				for _, to := range []refund.Status{refund.StatusPending, refund.StatusSucceeded, refund.StatusFailed, refund.StatusCanceled} {
					if to == final {
						continue
					}
					_, err := s.SaveRefund(ctx, next(ended, to, nil), nil)
					wantRefusal(t, err, errs.ErrFailedPrecondition, created.ID, string(final), string(to))
					wantUnchanged(t, s, before, fmt.Sprintf("%s -> %s", final, to))
				}
			})
		}
		wantRefunded(t, s, p.ID, 0)
	})
}

func TestSaveRefundRefusesChangingWhatNeverChanges(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant := ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, ids.New(ids.Account), "USD", 1000, t0)
		q := succeededPayment(t, s, merchant, ids.New(ids.Account), "USD", 1000, t0.Add(time.Second))
		created, _ := mustCreateRefund(t, s, newRefund(p, 400, t0.Add(time.Minute)))
		v1 := store.RefundRecordOf(created)
		before := snapshot(t, s)
		for _, tt := range []struct {
			name string
			edit func(r *store.RefundRecord)
		}{
			{"amount", func(r *store.RefundRecord) { r.Amount = 300 }},
			{"payment", func(r *store.RefundRecord) { r.PaymentID = q.ID }},
			{"currency", func(r *store.RefundRecord) { r.Currency = "EUR" }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				// Also when the new status would give the amount back.
				for _, st := range []refund.Status{refund.StatusSucceeded, refund.StatusFailed} {
					_, err := s.SaveRefund(ctx, next(v1, st, tt.edit), nil)
					wantErr(t, err, errs.ErrInvalidArgument, "")
					wantUnchanged(t, s, before, "changing the refund's "+tt.name)
				}
			})
		}
		// The currency in another case is the same currency.
		lower := next(v1, refund.StatusSucceeded, func(r *store.RefundRecord) { r.Currency = "usd" })
		if r := mustSaveRefund(t, s, lower, nil); r.Status != refund.StatusSucceeded || r.Currency != "USD" {
			t.Fatalf("after a save in lower case: %s %s, want succeeded USD", r.Status, r.Currency)
		}
		wantRefunded(t, s, p.ID, 400)
		wantRefunded(t, s, q.ID, 0)
	})
}

func TestSaveRefundPostsItsJournalAtomically(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0)
		merchantAcc, funding := "merchant_balance:"+merchant, "customer_funding:"+customer
		const clearing = "gateway_clearing:sandbox"
		wantBalance(t, s, merchantAcc, "USD", -1000)
		wantBalance(t, s, clearing, "USD", 1000)
		wantBalance(t, s, funding, "USD", 0)

		created, _ := mustCreateRefund(t, s, newRefund(p, 400, t0.Add(time.Minute)))
		v1 := store.RefundRecordOf(created)

		// Accepted: the refund's journal goes in with the save.
		v2 := next(v1, refund.StatusSucceeded, func(r *store.RefundRecord) { r.GatewayReference = "gw_1" })
		refundJ := store.RefundJournal(v2, v2.UpdatedAt)
		mustSaveRefund(t, s, v2, refundJ)
		wantEntries(t, s, refundJ.ID, p.ID, "USD", refundJ.Lines, v2.UpdatedAt)
		wantBalance(t, s, merchantAcc, "USD", -600)
		wantBalance(t, s, clearing, "USD", 1000)
		wantBalance(t, s, funding, "USD", -400)
		if err := s.CheckLedger(ctx); err != nil {
			t.Fatalf("CheckLedger after the refund: %v", err)
		}
		// Retried, also with a later time: nothing changes.
		wantRefund(t, "retried", mustSaveRefund(t, s, v2, store.RefundJournal(v2, v2.UpdatedAt.Add(time.Hour))), v2)
		wantEntries(t, s, refundJ.ID, p.ID, "USD", refundJ.Lines, v2.UpdatedAt)

		// The failure, with journals that go wrong: the refund stays
		// succeeded and its amount held.
		v3 := next(v2, refund.StatusFailed, func(r *store.RefundRecord) { r.FailureReason = "reversed" })
		before := snapshot(t, s)
		bad := func(edit func(j *store.Journal)) *store.Journal {
			j := store.RefundReversalJournal(v3, v3.UpdatedAt)
			edit(j)
			return j
		}
		for _, tt := range []struct {
			name     string
			j        *store.Journal
			sentinel error
			field    string
		}{
			// Refused before the transaction.
			{"unbalanced", bad(func(j *store.Journal) { j.Lines[3].Amount = 399 }), errs.ErrInvalidArgument, "journal.lines"},
			{"of another payment", bad(func(j *store.Journal) { j.PaymentID = ids.New(ids.Payment) }), errs.ErrInvalidArgument, "journal.payment_id"},
			{"without a time", bad(func(j *store.Journal) { j.At = time.Time{} }), errs.ErrInvalidArgument, "journal.at"},
			// Refused inside it, after the refund's update and the release of
			// its amount: both must roll back.
			{"in another currency", bad(func(j *store.Journal) { j.Currency = "EUR" }), errs.ErrInvalidArgument, "journal.currency"},
			{"conflicting with a posted journal", bad(func(j *store.Journal) {
				j.ID = refundJ.ID // posted already with other lines
			}), errs.ErrAlreadyExists, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.SaveRefund(ctx, v3, tt.j)
				wantErr(t, err, tt.sentinel, "")
				var e *errs.Error
				if errors.As(err, &e); e.Field != tt.field {
					t.Fatalf("error %v is about field %q, want %q", err, e.Field, tt.field)
				}
				wantUnchanged(t, s, before, "a save with a journal "+tt.name)
				wantRefunded(t, s, p.ID, 400)
			})
		}

		// The right reversal: the money is back with the merchant.
		reversal := store.RefundReversalJournal(v3, v3.UpdatedAt)
		wantRefund(t, "failed", mustSaveRefund(t, s, v3, reversal), v3)
		wantEntries(t, s, reversal.ID, p.ID, "USD", reversal.Lines, v3.UpdatedAt)
		wantRefunded(t, s, p.ID, 0)
		wantBalance(t, s, merchantAcc, "USD", -1000)
		wantBalance(t, s, clearing, "USD", 1000)
		wantBalance(t, s, funding, "USD", 0)
		if err := s.CheckLedger(ctx); err != nil {
			t.Fatalf("CheckLedger after the reversal: %v", err)
		}
		// Retried: not posted or released twice.
		mustSaveRefund(t, s, v3, reversal)
		wantBalance(t, s, merchantAcc, "USD", -1000)
		wantRefunded(t, s, p.ID, 0)
		wantLedgerRows(t, s, 2+4+4)
	})
}

func TestRefundJournalsOfAGuest(t *testing.T) {
	rec := store.RefundRecord{ID: ids.New(ids.Refund), PaymentID: ids.New(ids.Payment), MerchantID: "acct_m",
		Amount: 5, Currency: "KWD", Gateway: "sandbox"}
	for _, j := range []*store.Journal{store.RefundJournal(rec, t0), store.RefundReversalJournal(rec, t0)} {
		var accounts []string
		var debits, credits int64
		for _, l := range j.Lines {
			accounts = append(accounts, l.Account)
			if l.Direction == ledgerentry.DirectionDebit {
				debits += l.Amount
			} else {
				credits += l.Amount
			}
		}
		if !slices.Contains(accounts, "customer_funding:guest") || !slices.Contains(accounts, "merchant_balance:acct_m") ||
			debits != credits || debits != 10 || j.PaymentID != rec.PaymentID || j.Currency != "KWD" || !j.At.Equal(t0) {
			t.Fatalf("journal %s: %+v", j.ID, j)
		}
	}
}

func TestSavePaymentKeepsAmountRefunded(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		mustCreateRefund(t, s, newRefund(p, 300, t0.Add(time.Minute)))

		// The payment's workflow knows nothing of the refund.
		later := p
		later.Version = 2
		later.Description = "updated by the payment's workflow"
		later.NeedsAttention, later.AttentionReason = true, "reconciling"
		later.UpdatedAt = t0.Add(2 * time.Minute)
		got := mustSave(t, s, later, nil)
		if got.AmountRefunded != 300 || got.Version != 2 || got.Description != later.Description {
			t.Fatalf("after a later save: refunded %d, version %d, description %q; want 300, 2, %q",
				got.AmountRefunded, got.Version, got.Description, later.Description)
		}
		wantRefunded(t, s, p.ID, 300)

		// Nor does a record that carries other amounts change them.
		other := later
		other.Version = 3
		other.AmountRefunded, other.AmountDisputed = 0, 0
		mustSave(t, s, other, nil)
		other.Version = 4
		other.AmountRefunded, other.AmountDisputed = 1000, 0
		mustSave(t, s, other, nil)
		other.Version = 5
		other.AmountRefunded, other.AmountDisputed = 0, 1000
		got = mustSave(t, s, other, nil)
		if got.AmountRefunded != 300 || got.AmountDisputed != 0 || got.Version != 5 {
			t.Fatalf("after saves with other amounts: refunded %d, disputed %d, version %d; want 300, 0, 5",
				got.AmountRefunded, got.AmountDisputed, got.Version)
		}
		// And the balance still works from there.
		_, _, err := s.CreateRefund(ctx, newRefund(p, 701, t0.Add(time.Hour)))
		wantRefusal(t, err, errs.ErrFailedPrecondition, "7.00 USD")
		mustCreateRefund(t, s, newRefund(p, 700, t0.Add(time.Hour)))
		wantRefunded(t, s, p.ID, 1000)
	})
}

func TestPaymentRefundBalanceCheckConstraint(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant := ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, ids.New(ids.Account), "USD", 1000, t0)
		mustCreateRefund(t, s, newRefund(p, 300, t0.Add(time.Minute)))
		before := snapshot(t, s)

		for _, tt := range []struct {
			name  string
			run   func() error
			check string // the constraint that must refuse it
		}{
			{"refunded above received", func() error {
				return s.Client.Payment.UpdateOneID(p.ID).SetAmountRefunded(1001).Exec(ctx)
			}, "payments_amount_"},
			{"refunded plus disputed above received", func() error {
				// Each within amount_received, together not.
				return s.Client.Payment.UpdateOneID(p.ID).SetAmountRefunded(600).SetAmountDisputed(401).Exec(ctx)
			}, "payments_amount_returned_check"},
			{"disputed on top of the refunds", func() error {
				return s.Client.Payment.UpdateOneID(p.ID).SetAmountDisputed(701).Exec(ctx)
			}, "payments_amount_returned_check"},
			{"added refund", func() error {
				return s.Client.Payment.Update().Where(payment.ID(p.ID)).AddAmountRefunded(701).Exec(ctx)
			}, "payments_amount_"},
			{"raw SQL", func() error {
				_, err := s.Client.ExecContext(ctx,
					"UPDATE payments SET amount_disputed = amount_received - amount_refunded + 1 WHERE id = ?", p.ID)
				return err
			}, "payments_amount_returned_check"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.run()
				if err == nil {
					t.Fatalf("the database accepted it")
				}
				if !strings.Contains(err.Error(), tt.check) {
					t.Fatalf("error %q does not name %s", err, tt.check)
				}
				wantUnchanged(t, s, before, tt.name)
			})
		}

		// The control: exactly amount_received in all is allowed.
		if err := s.Client.Payment.UpdateOneID(p.ID).SetAmountRefunded(600).SetAmountDisputed(400).Exec(ctx); err != nil {
			t.Fatalf("refunded 600 + disputed 400 of 1000: %v", err)
		}
		_, _, err := s.CreateRefund(ctx, newRefund(p, 1, t0.Add(time.Hour)))
		wantRefusal(t, err, errs.ErrFailedPrecondition, "nothing is left")
	})
}

func TestListRefunds(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m1, m2, c1 := ids.New(ids.Account), ids.New(ids.Account), ids.New(ids.Account)
		// m1 also pays m2 as a customer, and m2 pays itself.
		pays := []store.PaymentRecord{
			succeededPayment(t, s, m1, c1, "USD", 100_000, t0),
			succeededPayment(t, s, m1, "", "USD", 100_000, t0.Add(time.Second)),
			succeededPayment(t, s, m2, m1, "EUR", 100_000, t0.Add(2*time.Second)),
			succeededPayment(t, s, m2, c1, "JPY", 100_000, t0.Add(3*time.Second)),
			succeededPayment(t, s, m2, m2, "USD", 100_000, t0.Add(4*time.Second)),
		}
		specs := []struct {
			pay    int
			status refund.Status
		}{
			{0, refund.StatusPending}, {1, refund.StatusSucceeded}, {2, refund.StatusFailed},
			{3, refund.StatusSucceeded}, {0, refund.StatusSucceeded}, {4, refund.StatusCanceled},
			{2, refund.StatusPending}, {1, refund.StatusFailed}, {3, refund.StatusPending},
			{0, refund.StatusFailed}, {4, refund.StatusSucceeded}, {2, refund.StatusSucceeded},
			{0, refund.StatusSucceeded},
		}
		type row struct {
			rec    store.RefundRecord
			pay    store.PaymentRecord
			status refund.Status
		}
		var all []row
		for i, sp := range specs {
			p := pays[sp.pay]
			rec := newRefund(p, int64(100+i), t0.Add(time.Duration(i)*time.Minute))
			if i%2 == 1 {
				rec.MerchantID = "" // an admin's refund
			}
			created, _ := mustCreateRefund(t, s, rec)
			if sp.status != refund.StatusPending {
				mustSaveRefund(t, s, next(store.RefundRecordOf(created), sp.status, nil), nil)
			}
			all = append(all, row{rec, p, sp.status})
		}
		// expect applies the filter to the rows, newest (highest id) first.
		expect := func(f store.RefundFilter) []string {
			var out []string
			for _, r := range all {
				switch {
				case f.Party != "" && r.pay.MerchantID != f.Party && r.pay.CustomerID != f.Party,
					f.MerchantID != "" && r.pay.MerchantID != f.MerchantID,
					f.PaymentID != "" && r.pay.ID != f.PaymentID,
					f.Status != "" && r.status != f.Status,
					f.CreatedAfter != nil && r.rec.CreatedAt.Before(*f.CreatedAfter),
					f.CreatedBefore != nil && !r.rec.CreatedAt.Before(*f.CreatedBefore):
					continue
				}
				out = append(out, r.rec.ID)
			}
			slices.Sort(out)
			slices.Reverse(out)
			return out
		}
		filters := map[string]store.RefundFilter{
			"all":                         {},
			"payment 0":                   {PaymentID: pays[0].ID},
			"payment 2 pending":           {PaymentID: pays[2].ID, Status: refund.StatusPending},
			"merchant m1":                 {MerchantID: m1},
			"merchant m2":                 {MerchantID: m2},
			"party m1 (both sides)":       {Party: m1},
			"party m2 (with itself)":      {Party: m2},
			"party c1 (customer)":         {Party: c1},
			"party m1 merchant m2":        {Party: m1, MerchantID: m2},
			"party c1 succeeded":          {Party: c1, Status: refund.StatusSucceeded},
			"status succeeded":            {Status: refund.StatusSucceeded},
			"status failed":               {Status: refund.StatusFailed},
			"status canceled":             {Status: refund.StatusCanceled},
			"created [3m, 9m)":            {CreatedAfter: ptr(t0.Add(3 * time.Minute)), CreatedBefore: ptr(t0.Add(9 * time.Minute))},
			"party m1 created from 5m":    {Party: m1, CreatedAfter: ptr(t0.Add(5 * time.Minute))},
			"created before 1µs":          {CreatedBefore: ptr(t0.Add(time.Microsecond))},
			"created from 12m":            {CreatedAfter: ptr(t0.Add(12 * time.Minute))},
			"unknown party":               {Party: ids.New(ids.Account)},
			"party c1 payment of m1 only": {Party: c1, PaymentID: pays[1].ID},
		}
		for name, f := range filters {
			t.Run(name, func(t *testing.T) {
				want := expect(f)
				empty := name == "unknown party" || name == "party c1 payment of m1 only"
				if len(want) == 0 != empty {
					t.Fatalf("filter %s selects %d refunds; the test data must exercise it", name, len(want))
				}
				for _, size := range []int{1, 2, 5, 100} {
					var got []string
					seen := map[string]bool{}
					var after *store.Cursor
					for page := 0; ; page++ {
						rs, err := s.ListRefunds(ctx, f, store.Page{Limit: size, After: after})
						if err != nil {
							t.Fatalf("ListRefunds: %v", err)
						}
						if len(rs) > size {
							t.Fatalf("page of %d with size %d", len(rs), size)
						}
						for _, r := range rs {
							if seen[r.ID] {
								t.Fatalf("size %d: %s listed twice", size, r.ID)
							}
							seen[r.ID] = true
							if after != nil && !olderThan(store.RefundCursor(r), *after) {
								t.Fatalf("size %d: %s after %s is not older", size, r.ID, after.ID)
							}
							got = append(got, r.ID)
						}
						if len(rs) < size || page > len(all) {
							break
						}
						c := store.RefundCursor(rs[len(rs)-1])
						after = &c
					}
					if !slices.Equal(got, want) {
						t.Fatalf("size %d: got %v, want %v", size, got, want)
					}
				}
			})
		}

		// Each listed refund carries its payment's parties.
		rs, err := s.ListRefunds(ctx, store.RefundFilter{Party: c1}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.CustomerID != c1 {
				t.Fatalf("c1 sees %s of merchant %s and customer %s", r.ID, r.MerchantID, r.CustomerID)
			}
		}
		_, err = s.ListRefunds(ctx, store.RefundFilter{}, store.Page{})
		wantErr(t, err, errs.ErrInvalidArgument, "page size must be positive")
	})
}
