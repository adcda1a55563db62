package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// big is an amount beyond 32 bits (and beyond a float32's precision).
const big = 99_999_999_999

// newPayment is the first state of a payment as its workflow would save it.
func newPayment(merchant, customer string, at time.Time) store.PaymentRecord {
	id := ids.NewAt(ids.Payment, at)
	return store.PaymentRecord{
		ID:            id,
		MerchantID:    merchant,
		CustomerID:    customer,
		Amount:        1999,
		Currency:      "USD",
		Status:        payment.StatusProcessing,
		CaptureMethod: payment.CaptureMethodAutomatic,
		PaymentMethod: "pm_card_visa",
		Metadata:      map[string]string{"order": "o-1"},
		Gateway:       "sandbox",
		WorkflowID:    "payment/" + id,
		Version:       1,
		CreatedAt:     at,
		UpdatedAt:     at,
	}
}

func mustSave(t *testing.T, s *store.Store, rec store.PaymentRecord, j *store.Journal) *ent.Payment {
	t.Helper()
	p, err := s.SavePayment(context.Background(), rec, j)
	if err != nil {
		t.Fatalf("SavePayment(%s v%d): %v", rec.ID, rec.Version, err)
	}
	return p
}

// wantPayment checks every column of p against the record that was saved.
func wantPayment(t *testing.T, what string, p *ent.Payment, rec store.PaymentRecord) {
	t.Helper()
	var diffs []string
	check := func(field string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, got, want))
		}
	}
	check("id", p.ID, rec.ID)
	check("merchant_id", p.MerchantID, rec.MerchantID)
	check("customer_id", p.CustomerID, rec.CustomerID)
	check("amount", p.Amount, rec.Amount)
	check("amount_capturable", p.AmountCapturable, rec.AmountCapturable)
	check("amount_received", p.AmountReceived, rec.AmountReceived)
	check("amount_refunded", p.AmountRefunded, rec.AmountRefunded)
	check("amount_disputed", p.AmountDisputed, rec.AmountDisputed)
	check("currency", p.Currency, strings.ToUpper(rec.Currency))
	check("status", p.Status, rec.Status)
	check("capture_method", p.CaptureMethod, rec.CaptureMethod)
	check("payment_method", p.PaymentMethod, rec.PaymentMethod)
	check("method_type", p.MethodType, rec.MethodType)
	check("method_brand", p.MethodBrand, rec.MethodBrand)
	check("method_last4", p.MethodLast4, rec.MethodLast4)
	check("method_exp_month", p.MethodExpMonth, rec.MethodExpMonth)
	check("method_exp_year", p.MethodExpYear, rec.MethodExpYear)
	check("method_provider", p.MethodProvider, rec.MethodProvider)
	check("failure_code", p.FailureCode, rec.FailureCode)
	check("failure_message", p.FailureMessage, rec.FailureMessage)
	check("next_action_type", p.NextActionType, rec.NextActionType)
	check("next_action_url", p.NextActionURL, rec.NextActionURL)
	check("description", p.Description, rec.Description)
	check("gateway", p.Gateway, rec.Gateway)
	check("gateway_reference", p.GatewayReference, rec.GatewayReference)
	check("workflow_id", p.WorkflowID, rec.WorkflowID)
	check("version", p.Version, rec.Version)
	if !p.CreatedAt.Equal(rec.CreatedAt) {
		diffs = append(diffs, fmt.Sprintf("created_at = %v, want %v", p.CreatedAt, rec.CreatedAt))
	}
	if !p.UpdatedAt.Equal(rec.UpdatedAt) {
		diffs = append(diffs, fmt.Sprintf("updated_at = %v, want %v", p.UpdatedAt, rec.UpdatedAt))
	}
	for _, tm := range []struct {
		field     string
		got, want *time.Time
	}{
		{"next_action_expires_at", p.NextActionExpiresAt, rec.NextActionExpiresAt},
		{"authorization_expires_at", p.AuthorizationExpiresAt, rec.AuthorizationExpiresAt},
	} {
		if (tm.got == nil) != (tm.want == nil) || tm.got != nil && !tm.got.Equal(*tm.want) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", tm.field, tm.got, tm.want))
		}
	}
	wantMeta := rec.Metadata
	if wantMeta == nil {
		wantMeta = map[string]string{}
	}
	if p.Metadata == nil || !maps.Equal(p.Metadata, wantMeta) {
		diffs = append(diffs, fmt.Sprintf("metadata = %#v, want %#v", p.Metadata, wantMeta))
	}
	if len(diffs) > 0 {
		t.Fatalf("%s:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

func TestSavePaymentInsertUpdateAndVersionGuard(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v1 := newPayment(ids.New(ids.Account), ids.New(ids.Account), t0)
		v1.Amount, v1.AmountCapturable = big, big
		v1.Currency = "kwd" // stored upper case
		v1.Status = payment.StatusRequiresAction
		v1.CaptureMethod = payment.CaptureMethodManual
		v1.MethodType, v1.MethodBrand, v1.MethodLast4 = "card", "visa", "4242"
		v1.MethodExpMonth, v1.MethodExpYear = 12, 2034
		v1.NextActionType, v1.NextActionURL = "redirect_to_url", "https://sandbox.example/3ds/"+strings.Repeat("x", 2000)
		v1.NextActionExpiresAt = ptr(t0.Add(15 * time.Minute))
		v1.Description = strings.Repeat("d", 1000)
		v1.Metadata = map[string]string{"order": "o-1", "ünïcode": "✓"}
		v1.AuthorizationExpiresAt = ptr(t0.Add(7 * 24 * time.Hour))

		got := mustSave(t, s, v1, nil)
		want := v1
		want.Currency = "KWD"
		wantPayment(t, "returned after insert", got, want)
		read, err := s.PaymentByID(ctx, v1.ID)
		if err != nil {
			t.Fatalf("PaymentByID: %v", err)
		}
		wantPayment(t, "read after insert", read, want)

		// v2: captured; cleared next action and authorization expiry, new
		// metadata, a customer set later.
		v2 := want
		v2.Version = 2
		v2.Status = payment.StatusSucceeded
		v2.AmountCapturable, v2.AmountReceived = 0, big
		v2.NextActionType, v2.NextActionURL, v2.NextActionExpiresAt = "", "", nil
		v2.AuthorizationExpiresAt = nil
		v2.Metadata = map[string]string{"order": "o-2"}
		v2.GatewayReference = "pi_123"
		v2.UpdatedAt = t0.Add(time.Minute)
		wantPayment(t, "returned after update", mustSave(t, s, v2, nil), v2)
		wantPayment(t, "read after update", s.Client.Payment.GetX(ctx, v1.ID), v2)

		// An older version and a different state under the same version are
		// both no-ops that answer with what is stored.
		wantPayment(t, "returned after replaying v1", mustSave(t, s, v1, nil), v2)
		sameVersion := v2
		sameVersion.Status = payment.StatusFailed
		sameVersion.FailureCode = "card_declined"
		sameVersion.UpdatedAt = t0.Add(time.Hour)
		wantPayment(t, "returned after a different v2", mustSave(t, s, sameVersion, nil), v2)
		wantPayment(t, "read after the no-ops", s.Client.Payment.GetX(ctx, v1.ID), v2)

		// A newer version wins; created_at stays that of the first save.
		v5 := v2
		v5.Version = 5
		v5.AmountRefunded = big
		v5.CreatedAt = t0.Add(time.Hour)
		v5.UpdatedAt = t0.Add(2 * time.Hour)
		got = mustSave(t, s, v5, nil)
		// The record's refunded amount is not the workflow's to write.
		v5.CreatedAt, v5.AmountRefunded = t0, 0
		wantPayment(t, "returned after v5", got, v5)
		wantPayment(t, "read after v5", s.Client.Payment.GetX(ctx, v1.ID), v5)
		if n := s.Client.Payment.Query().CountX(ctx); n != 1 {
			t.Fatalf("%d payments, want 1", n)
		}

		_, err = s.PaymentByID(ctx, ids.New(ids.Payment))
		wantErr(t, err, errs.ErrNotFound, "payment not found")
	})
}

func TestSavePaymentRefusesInvalidState(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		base := newPayment(ids.New(ids.Account), "", t0)
		mustSave(t, s, base, nil)

		tests := []struct {
			name  string
			edit  func(r *store.PaymentRecord)
			field string
			// onlyUpdate marks what is only wrong about an existing payment.
			onlyUpdate bool
		}{
			{"negative amount", func(r *store.PaymentRecord) { r.Amount = -1 }, "amount", false},
			{"currency not ISO", func(r *store.PaymentRecord) { r.Currency = "US" }, "currency", false},
			{"unknown status", func(r *store.PaymentRecord) { r.Status = "paid" }, "status", false},
			{"url too long", func(r *store.PaymentRecord) { r.NextActionURL = strings.Repeat("u", 2049) }, "next_action_url", false},
			{"description too long", func(r *store.PaymentRecord) { r.Description = strings.Repeat("d", 1001) }, "description", false},
			{"exp month 13", func(r *store.PaymentRecord) { r.MethodExpMonth = 13 }, "method_exp_month", false},
			{"not a payment id", func(r *store.PaymentRecord) { r.ID = "re_" + strings.TrimPrefix(r.ID, "pay_") }, "id", false},
			// The cross-field invariants are CHECK constraints only.
			{"received more than the amount", func(r *store.PaymentRecord) { r.AmountReceived = r.Amount + 1 }, "", false},
			{"capturable more than the amount", func(r *store.PaymentRecord) { r.AmountCapturable = r.Amount + 1 }, "", false},
			{"another merchant", func(r *store.PaymentRecord) { r.MerchantID = ids.New(ids.Account) }, "merchant_id", true},
			{"another currency", func(r *store.PaymentRecord) { r.Currency = "EUR" }, "currency", true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec := base
				rec.Version = 2
				rec.UpdatedAt = t0.Add(time.Second)
				tt.edit(&rec)
				_, err := s.SavePayment(ctx, rec, nil)
				wantInvalid(t, err, tt.field)
				if !tt.onlyUpdate {
					fresh := newPayment(base.MerchantID, "", t0.Add(time.Second))
					tt.edit(&fresh)
					_, err := s.SavePayment(ctx, fresh, nil)
					wantInvalid(t, err, tt.field)
				}
				wantPayment(t, "stored payment", s.Client.Payment.GetX(ctx, base.ID), base)
				if n := s.Client.Payment.Query().CountX(ctx); n != 1 {
					t.Fatalf("%d payments, want only the first", n)
				}
			})
		}
	})
}

// wantInvalid checks for an InvalidArgument error about field ("" for the
// CHECK constraints, which name no field).
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	wantErr(t, err, errs.ErrInvalidArgument, "")
	var e *errs.Error
	if errors.As(err, &e); e.Field != field {
		t.Fatalf("error %v is about field %q, want %q", err, e.Field, field)
	}
}

func TestSavePaymentConcurrentVersionsLeaveTheHighest(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 20
		base := newPayment(ids.New(ids.Account), "", t0)
		base.Amount = big
		versions := rand.New(rand.NewPCG(1, 2)).Perm(n)
		// Every save races the others, the first ones for the insert too.
		results := concurrently(n, func(i int) error {
			rec := base
			rec.Version = int64(versions[i] + 1)
			rec.AmountReceived = rec.Version
			rec.Description = fmt.Sprint("version ", rec.Version)
			rec.UpdatedAt = t0.Add(time.Duration(rec.Version) * time.Second)
			p, err := s.SavePayment(ctx, rec, nil)
			if err != nil {
				return err
			}
			if p.Version < rec.Version {
				return fmt.Errorf("saving v%d returned v%d", rec.Version, p.Version)
			}
			return nil
		})
		for i, err := range results {
			if err != nil {
				t.Fatalf("save %d: %v", i, err)
			}
		}
		want := base
		want.Version, want.AmountReceived, want.Description = n, n, fmt.Sprint("version ", n)
		want.UpdatedAt = t0.Add(n * time.Second)
		wantPayment(t, "after concurrent saves", s.Client.Payment.GetX(ctx, base.ID), want)
	})
}

func TestSavePaymentPostsItsJournalAtomically(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		v1 := newPayment(merchant, customer, t0)
		v1.Amount = big
		mustSave(t, s, v1, nil)

		v2 := v1
		v2.Version, v2.Status, v2.AmountReceived = 2, payment.StatusSucceeded, big
		v2.UpdatedAt = t0.Add(time.Second)
		capture := &store.Journal{
			ID:       v1.ID + "/capture",
			Currency: "usd", // any case, like the payment's
			At:       v2.UpdatedAt,
			Lines:    captureLines(merchant, big),
		}
		got := mustSave(t, s, v2, capture)
		wantPayment(t, "after capture", got, v2)
		wantEntries(t, s, capture.ID, v1.ID, "USD", capture.Lines, v2.UpdatedAt)
		wantBalance(t, s, "merchant_balance:"+merchant, "USD", -big)
		wantBalance(t, s, "gateway_clearing:sandbox", "USD", big)

		// The retried local activity: same version, same journal. Nothing
		// changes, also not when its time differs.
		retry := *capture
		retry.At = t0.Add(time.Hour)
		wantPayment(t, "after retry", mustSave(t, s, v2, &retry), v2)
		wantEntries(t, s, capture.ID, v1.ID, "USD", capture.Lines, v2.UpdatedAt)

		// A journal that conflicts with the posted one fails the save, and
		// the payment update that ran before it in the transaction is rolled
		// back.
		v3 := v2
		v3.Version, v3.Description = 3, "changed with a conflicting journal"
		v3.UpdatedAt = t0.Add(2 * time.Second)
		conflicting := *capture
		conflicting.Lines = captureLines(merchant, big-1)
		_, err := s.SavePayment(ctx, v3, &conflicting)
		wantErr(t, err, errs.ErrAlreadyExists, "journal "+capture.ID+" was already posted with different lines")
		wantPayment(t, "after the conflicting journal", s.Client.Payment.GetX(ctx, v1.ID), v2)
		wantEntries(t, s, capture.ID, v1.ID, "USD", capture.Lines, v2.UpdatedAt)

		// Journals refused before the transaction leave everything as is.
		refund := func(edit func(j *store.Journal)) *store.Journal {
			j := &store.Journal{ID: v1.ID + "/refund/re_1", Currency: "USD", At: v3.UpdatedAt,
				Lines: refundLines(merchant, 500)}
			edit(j)
			return j
		}
		for _, tt := range []struct {
			name  string
			j     *store.Journal
			field string
		}{
			{"unbalanced", refund(func(j *store.Journal) { j.Lines[1].Amount = 499 }), "journal.lines"},
			{"in another currency", refund(func(j *store.Journal) { j.Currency = "EUR" }), "journal.currency"},
			{"of another payment", refund(func(j *store.Journal) { j.PaymentID = ids.New(ids.Payment) }), "journal.payment_id"},
			{"empty", refund(func(j *store.Journal) { j.Lines = nil }), "journal.lines"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.SavePayment(ctx, v3, tt.j)
				wantInvalid(t, err, tt.field)
				wantPayment(t, "payment", s.Client.Payment.GetX(ctx, v1.ID), v2)
				if n := s.Client.LedgerEntry.Query().CountX(ctx); n != len(capture.Lines) {
					t.Fatalf("%d ledger rows, want %d", n, len(capture.Lines))
				}
			})
		}

		// The refund, finally right, goes in with v3.
		wantPayment(t, "after refund", mustSave(t, s, v3, refund(func(*store.Journal) {})), v3)
		wantBalance(t, s, "merchant_balance:"+merchant, "USD", -big+500)
		wantBalance(t, s, "customer_funding:"+customer, "USD", 0)
		wantBalance(t, s, "gateway_clearing:sandbox", "USD", big-500)
		if err := s.CheckLedger(ctx); err != nil {
			t.Fatalf("CheckLedger: %v", err)
		}
	})
}

// captureLines moves a captured amount from the gateway to the merchant.
func captureLines(merchant string, amount int64) []store.JournalLine {
	return []store.JournalLine{
		{Account: "gateway_clearing:sandbox", Direction: ledgerentry.DirectionDebit, Amount: amount},
		{Account: "merchant_balance:" + merchant, Direction: ledgerentry.DirectionCredit, Amount: amount},
	}
}

// refundLines moves a refunded amount back from the merchant.
func refundLines(merchant string, amount int64) []store.JournalLine {
	return []store.JournalLine{
		{Account: "merchant_balance:" + merchant, Direction: ledgerentry.DirectionDebit, Amount: amount},
		{Account: "gateway_clearing:sandbox", Direction: ledgerentry.DirectionCredit, Amount: amount},
	}
}

// wantEntries checks the stored rows of one journal.
func wantEntries(t *testing.T, s *store.Store, journalID, paymentID, currency string, lines []store.JournalLine, at time.Time) {
	t.Helper()
	rows := s.Client.LedgerEntry.Query().
		Where(ledgerentry.JournalID(journalID)).
		Order(ent.Asc(ledgerentry.FieldLine)).
		AllX(context.Background())
	if len(rows) != len(lines) {
		t.Fatalf("journal %s has %d rows, want %d", journalID, len(rows), len(lines))
	}
	for i, r := range rows {
		l := lines[i]
		if r.Line != i || r.PaymentID != paymentID || r.Currency != currency || r.Account != l.Account ||
			r.Direction != l.Direction || r.Amount != l.Amount || !r.CreatedAt.Equal(at) {
			t.Fatalf("journal %s row %d = %+v, want line %d %+v in %s at %v for %s",
				journalID, i, r, i, l, currency, at, paymentID)
		}
	}
}

func wantBalance(t *testing.T, s *store.Store, account, currency string, want int64) {
	t.Helper()
	got, err := s.AccountBalance(context.Background(), account, currency)
	if err != nil {
		t.Fatalf("AccountBalance(%s, %s): %v", account, currency, err)
	}
	if got != want {
		t.Fatalf("AccountBalance(%s, %s) = %d, want %d", account, currency, got, want)
	}
}

func TestListPayments(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m1, m2 := ids.New(ids.Account), ids.New(ids.Account)
		c1, c2 := ids.New(ids.Account), ids.New(ids.Account)
		// m1 also pays m2 as a customer: a party can be either side.
		type spec struct {
			merchant, customer, currency string
			status                       payment.Status
		}
		specs := []spec{
			{m1, c1, "USD", payment.StatusSucceeded},
			{m1, c2, "EUR", payment.StatusFailed},
			{m2, c1, "USD", payment.StatusSucceeded},
			{m1, "", "JPY", payment.StatusProcessing},
			{m2, m1, "USD", payment.StatusRequiresCapture},
			{m1, c1, "USD", payment.StatusCanceled},
			{m2, c2, "KWD", payment.StatusSucceeded},
			{m1, c1, "EUR", payment.StatusSucceeded},
			{m1, c2, "USD", payment.StatusSucceeded},
			{m2, c1, "EUR", payment.StatusFailed},
			{m1, c1, "USD", payment.StatusRequiresAction},
			{m2, m1, "JPY", payment.StatusSucceeded},
		}
		var all []store.PaymentRecord // oldest first
		for i, sp := range specs {
			rec := newPayment(sp.merchant, sp.customer, t0.Add(time.Duration(i)*time.Minute))
			rec.Currency, rec.Status = sp.currency, sp.status
			mustSave(t, s, rec, nil)
			all = append(all, rec)
		}
		// expect applies the filter to the records, newest first.
		expect := func(f store.PaymentFilter) []string {
			var out []string
			for _, r := range slices.Backward(all) {
				switch {
				case f.Party != "" && r.MerchantID != f.Party && r.CustomerID != f.Party,
					f.MerchantID != "" && r.MerchantID != f.MerchantID,
					f.CustomerID != "" && r.CustomerID != f.CustomerID,
					f.Currency != "" && r.Currency != strings.ToUpper(f.Currency),
					f.Status != "" && r.Status != f.Status,
					f.CreatedAfter != nil && r.CreatedAt.Before(*f.CreatedAfter),
					f.CreatedBefore != nil && !r.CreatedAt.Before(*f.CreatedBefore):
					continue
				}
				out = append(out, r.ID)
			}
			return out
		}
		filters := map[string]store.PaymentFilter{
			"all":                       {},
			"party m1":                  {Party: m1},
			"party m2":                  {Party: m2},
			"party c1":                  {Party: c1},
			"party m1 as customer":      {Party: m1, CustomerID: m1},
			"party m1 merchant m2":      {Party: m1, MerchantID: m2},
			"party c1 succeeded":        {Party: c1, Status: payment.StatusSucceeded},
			"merchant m1":               {MerchantID: m1},
			"customer c2":               {CustomerID: c2},
			"currency usd (lower case)": {Currency: "usd"},
			"party m1 in EUR":           {Party: m1, Currency: "EUR"},
			"status failed":             {Status: payment.StatusFailed},
			"created [2m, 7m)": {
				CreatedAfter: ptr(t0.Add(2 * time.Minute)), CreatedBefore: ptr(t0.Add(7 * time.Minute)),
			},
			"party m1 created from 5m": {Party: m1, CreatedAfter: ptr(t0.Add(5 * time.Minute))},
			"created before 1µs":       {CreatedBefore: ptr(t0.Add(time.Microsecond))},
			"unknown party":            {Party: ids.New(ids.Account)},
		}
		for name, f := range filters {
			t.Run(name, func(t *testing.T) {
				want := expect(f)
				if name != "unknown party" && len(want) == 0 {
					t.Fatalf("filter %s selects nothing; the test data must exercise it", name)
				}
				for _, size := range []int{1, 3, 100} {
					var got []string
					var after *store.Cursor
					for page := 0; ; page++ {
						ps, err := s.ListPayments(ctx, f, store.Page{Limit: size, After: after})
						if err != nil {
							t.Fatalf("ListPayments: %v", err)
						}
						if len(ps) > size {
							t.Fatalf("page of %d with size %d", len(ps), size)
						}
						for _, p := range ps {
							got = append(got, p.ID)
						}
						if len(ps) < size || page > len(all) {
							break
						}
						c := store.PaymentCursor(ps[len(ps)-1])
						after = &c
					}
					if !slices.Equal(got, want) {
						t.Fatalf("size %d: got %v, want %v", size, got, want)
					}
				}
			})
		}

		// Isolation, stated plainly: m2 never sees a payment of m1's unless
		// it is the customer of it, and then m2 is not m1's merchant.
		ps, err := s.ListPayments(ctx, store.PaymentFilter{Party: m2}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.MerchantID != m2 && p.CustomerID != m2 {
				t.Fatalf("m2 sees %s of merchant %s and customer %s", p.ID, p.MerchantID, p.CustomerID)
			}
		}

		_, err = s.ListPayments(ctx, store.PaymentFilter{}, store.Page{})
		wantErr(t, err, errs.ErrInvalidArgument, "page size must be positive")
	})
}

func TestPaymentByGatewayReference(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a := newPayment(ids.New(ids.Account), "", t0)
		a.GatewayReference = "pi_a"
		b := newPayment(ids.New(ids.Account), "", t0.Add(time.Second))
		b.GatewayReference = "pi_b"
		pending := newPayment(ids.New(ids.Account), "", t0.Add(2*time.Second))
		for _, r := range []store.PaymentRecord{a, b, pending} {
			mustSave(t, s, r, nil)
		}
		for ref, want := range map[string]store.PaymentRecord{"pi_a": a, "pi_b": b} {
			p, err := s.PaymentByGatewayReference(ctx, ref)
			if err != nil {
				t.Fatalf("PaymentByGatewayReference(%s): %v", ref, err)
			}
			wantPayment(t, ref, p, want)
		}
		for _, ref := range []string{"pi_c", "PI_A", ""} {
			_, err := s.PaymentByGatewayReference(ctx, ref)
			wantErr(t, err, errs.ErrNotFound, "payment not found")
		}

		// The reference arrives with a later version.
		pending.Version, pending.GatewayReference = 2, "pi_late"
		mustSave(t, s, pending, nil)
		p, err := s.PaymentByGatewayReference(ctx, "pi_late")
		if err != nil || p.ID != pending.ID {
			t.Fatalf("PaymentByGatewayReference(pi_late) = %v, %v; want %s", p, err, pending.ID)
		}
	})
}

var errDuplicate = errors.New("duplicate")

func TestRecordGatewayEventDedupes(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const n = 20
		payID := ids.New(ids.Payment)
		results := concurrently(n, func(i int) error {
			fresh, err := s.RecordGatewayEvent(ctx, "evt_1NG8Du2eZvKYlo2C", "payment_intent.succeeded", payID, t0.Add(time.Duration(i)*time.Second))
			switch {
			case err != nil:
				return err
			case fresh:
				return nil
			}
			return errDuplicate
		})
		freshCount := 0
		for _, err := range results {
			switch err {
			case nil:
				freshCount++
			case errDuplicate:
			default:
				t.Fatalf("RecordGatewayEvent: %v", err)
			}
		}
		if freshCount != 1 {
			t.Fatalf("%d of %d concurrent deliveries were fresh, want exactly 1", freshCount, n)
		}
		ev := s.Client.GatewayEvent.GetX(ctx, "evt_1NG8Du2eZvKYlo2C")
		if ev.Type != "payment_intent.succeeded" || ev.PaymentID != payID {
			t.Fatalf("stored event %+v", ev)
		}

		// Later redeliveries are duplicates; other events, even with ids that
		// differ only in case, are not.
		for _, tt := range []struct {
			id    string
			fresh bool
		}{
			{"evt_1NG8Du2eZvKYlo2C", false},
			{"evt_1ng8du2ezvkylo2c", true},
			{"evt_other", true},
			{"evt_other", false},
		} {
			fresh, err := s.RecordGatewayEvent(ctx, tt.id, "charge.dispute.created", "", t0.Add(time.Hour))
			if err != nil || fresh != tt.fresh {
				t.Fatalf("RecordGatewayEvent(%s) = %v, %v; want %v", tt.id, fresh, err, tt.fresh)
			}
		}
		received := s.Client.GatewayEvent.GetX(ctx, "evt_other").ReceivedAt
		if !received.Equal(t0.Add(time.Hour)) {
			t.Fatalf("received_at = %v, want the first delivery's %v", received, t0.Add(time.Hour))
		}
		_, err := s.RecordGatewayEvent(ctx, "", "x", "", t0)
		wantErr(t, err, errs.ErrInvalidArgument, "")
	})
}
