package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/ledgerentry"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// newDispute is the request to dispute amount of p, opened by by, as the
// dispute's workflow hands it to CreateDispute.
func newDispute(p store.PaymentRecord, by dispute.OpenedBy, amount int64, at time.Time) store.DisputeRecord {
	id := ids.NewAt(ids.Dispute, at)
	actor := openerOf(p, by)
	if by == dispute.OpenedByNetwork {
		actor = disputes.ActorNetwork
	}
	rec := store.DisputeRecord{
		ID: id, PaymentID: p.ID, OpenedBy: by,
		Reason: dispute.ReasonProductNotReceived, Description: "the parcel never came",
		Amount: amount, Currency: p.Currency,
		ResponseDueBy: at.Add(7 * 24 * time.Hour),
		WorkflowID:    "dispute/" + id,
		Timeline: []disputes.TimelineEntry{
			{At: at, Kind: disputes.KindOpened, Actor: actor, Note: "the parcel never came"},
		},
		CreatedAt: at,
	}
	if by == dispute.OpenedByNetwork {
		rec.Reason = dispute.ReasonFraudulent
		rec.GatewayReference = "du_" + id
		rec.Timeline = append(rec.Timeline, disputes.TimelineEntry{
			At: at, Kind: disputes.KindFundsWithdrawn, Actor: disputes.ActorNetwork, Note: "funds withdrawn"})
	} else {
		rec.ClaimantEvidence = disputes.Evidence{Explanation: "ordered " + at.Format(time.DateOnly) + ", nothing came"}
	}
	return rec
}

// openerOf is the account that opens a dispute of p as by: "" for the
// network.
func openerOf(p store.PaymentRecord, by dispute.OpenedBy) string {
	switch by {
	case dispute.OpenedByCustomer:
		return p.CustomerID
	case dispute.OpenedByMerchant:
		return p.MerchantID
	}
	return ""
}

func mustCreateDispute(t *testing.T, s *store.Store, rec store.DisputeRecord, opener string) *ent.Dispute {
	t.Helper()
	d, err := s.CreateDispute(context.Background(), rec, opener)
	if err != nil {
		t.Fatalf("CreateDispute(%s: %d %s of %s by %s %q): %v", rec.ID, rec.Amount, rec.Currency, rec.PaymentID, rec.OpenedBy, opener, err)
	}
	if d == nil {
		t.Fatalf("CreateDispute(%s) = nil with no error", rec.ID)
	}
	return d
}

func mustSaveDispute(t *testing.T, s *store.Store, rec store.DisputeRecord, j *store.Journal) *ent.Dispute {
	t.Helper()
	d, err := s.SaveDispute(context.Background(), rec, j)
	if err != nil {
		t.Fatalf("SaveDispute(%s v%d %s/%s): %v", rec.ID, rec.Version, rec.Status, rec.Settlement, err)
	}
	return d
}

// nextDispute is rec's following save by its workflow, with a timeline
// entry of its own.
func nextDispute(rec store.DisputeRecord, st dispute.Status, edit func(r *store.DisputeRecord)) store.DisputeRecord {
	rec.Version++
	rec.Status = st
	rec.UpdatedAt = rec.UpdatedAt.Add(time.Minute)
	rec.Timeline = append(slices.Clone(rec.Timeline), disputes.TimelineEntry{
		At: rec.UpdatedAt, Kind: disputes.KindGatewayUpdated, Actor: disputes.ActorSystem,
		Note: fmt.Sprintf("v%d %s", rec.Version, st)})
	if edit != nil {
		edit(&rec)
	}
	return rec
}

// settled is nextDispute with a settlement.
func settled(rec store.DisputeRecord, st dispute.Status, set dispute.Settlement) store.DisputeRecord {
	return nextDispute(rec, st, func(r *store.DisputeRecord) { r.Settlement = set })
}

// disputeCreatedAs is the row CreateDispute should store for rec of p.
func disputeCreatedAs(rec store.DisputeRecord, p store.PaymentRecord, amount, held int64) store.DisputeRecord {
	want := rec
	want.MerchantID, want.CustomerID = p.MerchantID, p.CustomerID
	want.Amount, want.AmountHeld = amount, held
	want.Currency = strings.ToUpper(p.Currency)
	want.Status = dispute.StatusNeedsResponse
	want.Settlement = dispute.SettlementNone
	want.Gateway = p.Gateway
	want.Version = 1
	want.ResponseDueBy = rec.ResponseDueBy.UTC().Truncate(time.Microsecond)
	want.UpdatedAt = rec.CreatedAt
	want.ClosedAt = nil
	return want
}

// wantDispute checks every column of d against want (closed_at included).
func wantDispute(t *testing.T, what string, d *ent.Dispute, want store.DisputeRecord) {
	t.Helper()
	got := store.DisputeRecordOf(d)
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
	check("opened_by", got.OpenedBy, want.OpenedBy)
	check("reason", got.Reason, want.Reason)
	check("description", got.Description, want.Description)
	check("amount", got.Amount, want.Amount)
	check("amount_held", got.AmountHeld, want.AmountHeld)
	check("currency", got.Currency, want.Currency)
	check("status", got.Status, want.Status)
	check("evidence", got.Evidence, want.Evidence)
	check("claimant_evidence", got.ClaimantEvidence, want.ClaimantEvidence)
	check("evidence_submitted", got.EvidenceSubmitted, want.EvidenceSubmitted)
	check("claimant_evidence_submitted", got.ClaimantEvidenceSubmitted, want.ClaimantEvidenceSubmitted)
	check("outcome_note", got.OutcomeNote, want.OutcomeNote)
	check("settlement", got.Settlement, want.Settlement)
	check("refund_reference", got.RefundReference, want.RefundReference)
	check("gateway", got.Gateway, want.Gateway)
	check("gateway_reference", got.GatewayReference, want.GatewayReference)
	check("workflow_id", got.WorkflowID, want.WorkflowID)
	check("needs_attention", got.NeedsAttention, want.NeedsAttention)
	check("attention_reason", got.AttentionReason, want.AttentionReason)
	check("version", got.Version, want.Version)
	for _, tm := range []struct {
		field     string
		got, want time.Time
	}{
		{"response_due_by", got.ResponseDueBy, want.ResponseDueBy},
		{"created_at", got.CreatedAt, want.CreatedAt},
		{"updated_at", got.UpdatedAt, want.UpdatedAt},
	} {
		if !tm.got.Equal(tm.want) {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", tm.field, tm.got, tm.want))
		}
	}
	switch {
	case (got.ClosedAt == nil) != (want.ClosedAt == nil):
		diffs = append(diffs, fmt.Sprintf("closed_at = %v, want %v", got.ClosedAt, want.ClosedAt))
	case got.ClosedAt != nil && !got.ClosedAt.Equal(*want.ClosedAt):
		diffs = append(diffs, fmt.Sprintf("closed_at = %v, want %v", *got.ClosedAt, *want.ClosedAt))
	}
	if got.Timeline == nil {
		diffs = append(diffs, "timeline = nil, want a list")
	}
	if len(got.Timeline) != len(want.Timeline) {
		diffs = append(diffs, fmt.Sprintf("timeline has %d entries, want %d: %v", len(got.Timeline), len(want.Timeline), got.Timeline))
	} else {
		for i, e := range got.Timeline {
			w := want.Timeline[i]
			if !e.At.Equal(w.At) || e.Kind != w.Kind || e.Actor != w.Actor || e.Note != w.Note {
				diffs = append(diffs, fmt.Sprintf("timeline[%d] = %+v, want %+v", i, e, w))
			}
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("%s:\n  %s", what, strings.Join(diffs, "\n  "))
	}
}

// closedAt returns rec with closed_at set to at, for wantDispute.
func closedAt(rec store.DisputeRecord, at time.Time) store.DisputeRecord {
	rec.ClosedAt = &at
	return rec
}

// wantHolds checks the stored payment's balance columns and open dispute.
func wantHolds(t *testing.T, s *store.Store, paymentID string, refunded, disputed int64, open string) {
	t.Helper()
	p, err := s.PaymentByID(context.Background(), paymentID)
	if err != nil {
		t.Fatalf("PaymentByID(%s): %v", paymentID, err)
	}
	if p.AmountRefunded != refunded || p.AmountDisputed != disputed || p.OpenDisputeID != open {
		t.Fatalf("payment %s: refunded %d, disputed %d, open dispute %q; want %d, %d, %q",
			paymentID, p.AmountRefunded, p.AmountDisputed, p.OpenDisputeID, refunded, disputed, open)
	}
}

// wantConsistent checks, for every payment, that its balance columns are
// the sum of what its refunds and disputes hold (the payments' CHECK
// constraints among it), that its open dispute is an open dispute of it,
// and that the ledger balances.
func wantConsistent(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, p := range s.Client.Payment.Query().AllX(ctx) {
		if p.AmountRefunded < 0 || p.AmountDisputed < 0 || p.AmountReceived > p.Amount ||
			p.AmountRefunded+p.AmountDisputed > p.AmountReceived {
			t.Fatalf("payment %s: received %d of %d, refunded %d, disputed %d: the CHECK constraints do not hold",
				p.ID, p.AmountReceived, p.Amount, p.AmountRefunded, p.AmountDisputed)
		}
		var refunded, disputed int64
		for _, r := range s.Client.Refund.Query().Where(refund.PaymentID(p.ID)).AllX(ctx) {
			if store.Holds(r.Status) {
				refunded += r.Amount
			}
		}
		var open []string
		for _, d := range s.Client.Dispute.Query().Where(dispute.PaymentID(p.ID)).AllX(ctx) {
			switch {
			case store.IsOpen(d.Status):
				disputed += d.AmountHeld
				open = append(open, d.ID)
			case d.Status == dispute.StatusWon || d.Status == dispute.StatusWithdrawn:
			case d.Settlement == dispute.SettlementRefunded:
				refunded += d.AmountHeld
			default:
				disputed += d.AmountHeld
			}
			if (d.ClosedAt == nil) != store.IsOpen(d.Status) {
				t.Fatalf("dispute %s is %s with closed_at %v", d.ID, d.Status, d.ClosedAt)
			}
		}
		if p.AmountRefunded != refunded || p.AmountDisputed != disputed {
			t.Fatalf("payment %s: refunded %d, disputed %d; its refunds and disputes hold %d and %d",
				p.ID, p.AmountRefunded, p.AmountDisputed, refunded, disputed)
		}
		if p.OpenDisputeID != "" && !slices.Contains(open, p.OpenDisputeID) {
			t.Fatalf("payment %s: open dispute %s is not one of its open disputes %v", p.ID, p.OpenDisputeID, open)
		}
	}
	if err := s.CheckLedger(ctx); err != nil {
		t.Fatalf("CheckLedger: %v", err)
	}
}

// disputeSnapshot is snapshot with every dispute row.
func disputeSnapshot(t *testing.T, s *store.Store) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(snapshot(t, s))
	for _, d := range s.Client.Dispute.Query().Order(ent.Asc(dispute.FieldID)).AllX(context.Background()) {
		fmt.Fprintf(&b, "%s closed_at=%v version=%d\n", d, d.ClosedAt, d.Version)
	}
	return b.String()
}

func wantNothingChanged(t *testing.T, s *store.Store, before, what string) {
	t.Helper()
	if after := disputeSnapshot(t, s); after != before {
		t.Fatalf("%s changed the database:\nbefore:\n%s\nafter:\n%s", what, before, after)
	}
}

// wantKind checks err's kind and that its message contains each part.
func wantKind(t *testing.T, err error, kind errs.Kind, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want kind %v", kind)
	}
	var e *errs.Error
	if errs.KindOf(err) != kind || !errors.As(err, &e) {
		t.Fatalf("error = %v (kind %v), want kind %v", err, errs.KindOf(err), kind)
	}
	if !containsAll(e.Message, parts...) {
		t.Fatalf("error message %q does not contain all of %q", e.Message, parts)
	}
}

// moneyBackLines are the lines of money going from the merchant back to
// the customer's funding source through the gateway's clearing account.
func moneyBackLines(merchant, customer string, amount int64) []store.JournalLine {
	if customer == "" {
		customer = "guest"
	}
	return []store.JournalLine{
		{Account: "merchant_balance:" + merchant, Direction: debit, Amount: amount},
		{Account: "gateway_clearing:sandbox", Direction: credit, Amount: amount},
		{Account: "gateway_clearing:sandbox", Direction: debit, Amount: amount},
		{Account: "customer_funding:" + customer, Direction: credit, Amount: amount},
	}
}

// --- CreateDispute -------------------------------------------------------

func TestCreateDisputeByEitherPartyOfThePayment(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer, stranger := ids.New(ids.Account), ids.New(ids.Account), ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0)
		guest := succeededPayment(t, s, merchant, "", "USD", 1000, t0.Add(time.Second))

		// Only the party OpenedBy names opens it; anyone else does not see
		// the payment.
		before := disputeSnapshot(t, s)
		for _, tt := range []struct {
			name   string
			p      store.PaymentRecord
			by     dispute.OpenedBy
			opener string
		}{
			{"customer as merchant", p, dispute.OpenedByMerchant, customer},
			{"merchant as customer", p, dispute.OpenedByCustomer, merchant},
			{"stranger as customer", p, dispute.OpenedByCustomer, stranger},
			{"stranger as merchant", p, dispute.OpenedByMerchant, stranger},
			{"nobody as customer", p, dispute.OpenedByCustomer, ""},
			{"nobody as merchant", p, dispute.OpenedByMerchant, ""},
			{"nobody as a guest's customer", guest, dispute.OpenedByCustomer, ""},
			{"unknown role", p, dispute.OpenedBy("bank"), customer},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.CreateDispute(ctx, newDispute(tt.p, tt.by, 100, t0.Add(time.Minute)), tt.opener)
				wantErr(t, err, errs.ErrNotFound, "payment not found")
				wantNothingChanged(t, s, before, tt.name)
			})
		}

		// The customer opens one of 400, with every field stored as given.
		rec := newDispute(p, dispute.OpenedByCustomer, 400, t0.Add(time.Minute))
		rec.Currency = "usd"
		// Ignored: the payment's, or the insert's.
		rec.MerchantID, rec.CustomerID, rec.Gateway = stranger, stranger, "other"
		rec.Status, rec.Settlement, rec.Version = dispute.StatusLost, dispute.SettlementRefunded, 9
		rec.NeedsAttention, rec.AttentionReason = true, "not for a platform dispute"
		want := disputeCreatedAs(rec, p, 400, 400)
		want.NeedsAttention, want.AttentionReason = false, ""
		d := mustCreateDispute(t, s, rec, customer)
		wantDispute(t, "customer's dispute as returned", d, want)
		stored, err := s.DisputeByID(ctx, rec.ID)
		if err != nil {
			t.Fatalf("DisputeByID: %v", err)
		}
		wantDispute(t, "customer's dispute as read", stored, want)
		wantHolds(t, s, p.ID, 0, 400, rec.ID)

		// The merchant of the guest's payment opens one for everything.
		mrec := newDispute(guest, dispute.OpenedByMerchant, 0, t0.Add(2*time.Minute))
		md := mustCreateDispute(t, s, mrec, merchant)
		wantDispute(t, "merchant's dispute of everything", md, disputeCreatedAs(mrec, guest, 1000, 1000))
		wantHolds(t, s, guest.ID, 0, 1000, mrec.ID)

		_, err = s.DisputeByID(ctx, ids.New(ids.Dispute))
		wantErr(t, err, errs.ErrNotFound, "dispute not found")
		wantConsistent(t, s)
	})
}

func TestCreateDisputeRoundTripsTimesAndTimeline(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "EUR", 5000, t0)
		zone := time.FixedZone("UTC-7", -7*3600)
		rec := newDispute(p, dispute.OpenedByCustomer, 1234, t0.Add(time.Minute))
		// Nanoseconds, in another zone: stored as UTC microseconds.
		rec.ResponseDueBy = time.Date(2030, 2, 3, 4, 5, 6, 987654321, zone)
		rec.Timeline = []disputes.TimelineEntry{
			{At: time.Date(2030, 1, 2, 3, 5, 5, 123456789, zone), Kind: disputes.KindOpened, Actor: p.CustomerID, Note: "ünïcode ✓"},
			{At: t0.Add(time.Minute), Kind: disputes.KindEvidenceStaged, Actor: p.CustomerID},
		}
		rec.Evidence = disputes.Evidence{RefundPolicy: "30 days"}
		d := mustCreateDispute(t, s, rec, p.CustomerID)
		wantDue := time.Date(2030, 2, 3, 11, 5, 6, 987654000, time.UTC)
		for what, got := range map[string]*ent.Dispute{"returned": d, "read": s.Client.Dispute.GetX(ctx, rec.ID)} {
			if !got.ResponseDueBy.Equal(wantDue) {
				t.Fatalf("%s response_due_by = %v, want %v", what, got.ResponseDueBy, wantDue)
			}
			wantDispute(t, what, got, disputeCreatedAs(rec, p, 1234, 1234))
		}
		// The microseconds take part in the listing's comparisons.
		for _, tt := range []struct {
			due  time.Time
			want int
		}{{wantDue, 0}, {wantDue.Add(time.Microsecond), 1}} {
			ds, err := s.ListDisputes(ctx, store.DisputeFilter{DueBefore: &tt.due}, store.Page{Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != tt.want {
				t.Fatalf("due before %v: %d disputes, want %d", tt.due, len(ds), tt.want)
			}
		}
	})
}

func TestCreateDisputeRefusesBadRequests(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		mustCreateRefund(t, s, newRefund(p, 300, t0.Add(time.Minute)))
		before := disputeSnapshot(t, s)

		for _, tt := range []struct {
			name  string
			edit  func(r *store.DisputeRecord)
			kind  errs.Kind
			field string
			says  []string
		}{
			{"more than is left", func(r *store.DisputeRecord) { r.Amount = 701 },
				errs.KindFailedPrecondition, "", []string{p.ID, "7.00 USD", "700", "701 asked"}},
			{"far more than was paid", func(r *store.DisputeRecord) { r.Amount = 1_000_000 },
				errs.KindFailedPrecondition, "", []string{"7.00 USD"}},
			{"currency mismatch", func(r *store.DisputeRecord) { r.Currency = "eur" },
				errs.KindInvalidArgument, "currency", []string{"the payment is in USD, not EUR"}},
			{"negative amount", func(r *store.DisputeRecord) { r.Amount = -1 },
				errs.KindInvalidArgument, "amount", []string{"must not be negative"}},
			{"negative network amount", func(r *store.DisputeRecord) { r.Amount, r.OpenedBy = -1, dispute.OpenedByNetwork },
				errs.KindInvalidArgument, "amount", []string{"must not be negative"}},
			{"unknown payment", func(r *store.DisputeRecord) { r.PaymentID = ids.New(ids.Payment) },
				errs.KindNotFound, "", []string{"payment not found"}},
			{"unknown payment by the network", func(r *store.DisputeRecord) {
				r.PaymentID, r.OpenedBy = ids.New(ids.Payment), dispute.OpenedByNetwork
			}, errs.KindNotFound, "", []string{"payment not found"}},
			{"invalid id", func(r *store.DisputeRecord) { r.ID = "dp_ABC" },
				errs.KindInvalidArgument, "id", nil},
			{"no reason", func(r *store.DisputeRecord) { r.Reason = "" },
				errs.KindInvalidArgument, "reason", nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				rec := newDispute(p, dispute.OpenedByCustomer, 100, t0.Add(2*time.Minute))
				tt.edit(&rec)
				_, err := s.CreateDispute(ctx, rec, openerOf(p, rec.OpenedBy))
				wantKind(t, err, tt.kind, tt.says...)
				var e *errs.Error
				if errors.As(err, &e); e.Field != tt.field {
					t.Fatalf("error %v is about field %q, want %q", err, e.Field, tt.field)
				}
				wantNothingChanged(t, s, before, tt.name)
			})
		}

		// Exactly what is left is disputable; then nothing is.
		d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByMerchant, 700, t0.Add(3*time.Minute)), p.MerchantID)
		wantHolds(t, s, p.ID, 300, 700, d.ID)
		v2 := nextDispute(store.DisputeRecordOf(d), dispute.StatusLost, func(r *store.DisputeRecord) { r.Settlement = dispute.SettlementPending })
		mustSaveDispute(t, s, v2, nil)
		wantHolds(t, s, p.ID, 300, 700, "")
		before = disputeSnapshot(t, s)
		for _, amount := range []int64{0, 1} {
			_, err := s.CreateDispute(ctx, newDispute(p, dispute.OpenedByCustomer, amount, t0.Add(time.Hour)), p.CustomerID)
			wantKind(t, err, errs.KindFailedPrecondition, p.ID, "nothing is left to dispute")
			wantNothingChanged(t, s, before, fmt.Sprintf("disputing %d of a payment with nothing left", amount))
		}
		wantConsistent(t, s)
	})
}

func TestCreateDisputeRefusesPaymentsThatDidNotSucceed(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		for i, tt := range []struct {
			status payment.Status
			says   string
		}{
			{payment.StatusProcessing, "only a succeeded payment can be disputed"},
			{payment.StatusRequiresAction, "only a succeeded payment can be disputed"},
			{payment.StatusRequiresCapture, "authorized and not captured"},
			{payment.StatusFailed, "only a succeeded payment can be disputed"},
			{payment.StatusCanceled, "only a succeeded payment can be disputed"},
		} {
			t.Run(string(tt.status), func(t *testing.T) {
				rec := newPayment(merchant, customer, t0.Add(time.Duration(i)*time.Second))
				rec.Status = tt.status
				if tt.status == payment.StatusRequiresCapture {
					rec.AmountCapturable = rec.Amount
				}
				mustSave(t, s, rec, nil)
				p := s.Client.Payment.GetX(ctx, rec.ID)
				if err := store.CheckDisputable(p, 1); errs.KindOf(err) != errs.KindFailedPrecondition {
					t.Fatalf("CheckDisputable of a %s payment = %v, want FailedPrecondition", tt.status, err)
				}
				before := disputeSnapshot(t, s)
				for _, by := range []dispute.OpenedBy{dispute.OpenedByCustomer, dispute.OpenedByMerchant} {
					for _, amount := range []int64{0, 1} {
						_, err := s.CreateDispute(ctx, newDispute(rec, by, amount, t0.Add(time.Minute)), openerOf(rec, by))
						wantKind(t, err, errs.KindFailedPrecondition, rec.ID, tt.says)
						wantNothingChanged(t, s, before, fmt.Sprintf("disputing %d of a %s payment as %s", amount, tt.status, by))
					}
				}
			})
		}
	})
}

func TestCreateDisputeOneOpenAtATimeAndIDsOnce(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0)
		q := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(time.Second))
		first := newDispute(p, dispute.OpenedByCustomer, 300, t0.Add(time.Minute))
		created := mustCreateDispute(t, s, first, customer)
		before := disputeSnapshot(t, s)

		// A second dispute while the first is open, by either party.
		for _, by := range []dispute.OpenedBy{dispute.OpenedByCustomer, dispute.OpenedByMerchant} {
			for _, amount := range []int64{0, 100, 700} {
				_, err := s.CreateDispute(ctx, newDispute(p, by, amount, t0.Add(time.Hour)), openerOf(p, by))
				wantKind(t, err, errs.KindAlreadyExists, p.ID, "open dispute", first.ID)
				wantNothingChanged(t, s, before, fmt.Sprintf("a second dispute of %d by the %s", amount, by))
			}
		}
		if err := store.CheckDisputable(s.Client.Payment.GetX(ctx, p.ID), 1); errs.KindOf(err) != errs.KindAlreadyExists {
			t.Fatalf("CheckDisputable with a dispute open = %v, want AlreadyExists", err)
		}

		// The same dispute id again: the retry of a committed attempt.
		for _, tt := range []struct {
			name   string
			edit   func(r *store.DisputeRecord)
			opener string
		}{
			{"same request", func(*store.DisputeRecord) {}, customer},
			{"another amount", func(r *store.DisputeRecord) { r.Amount = 200 }, customer},
			{"everything left", func(r *store.DisputeRecord) { r.Amount = 0 }, customer},
			{"another payment", func(r *store.DisputeRecord) { r.PaymentID = q.ID }, customer},
			{"by the merchant of another payment", func(r *store.DisputeRecord) {
				r.PaymentID, r.OpenedBy = q.ID, dispute.OpenedByMerchant
			}, merchant},
			{"by the network", func(r *store.DisputeRecord) { r.OpenedBy = dispute.OpenedByNetwork }, ""},
			{"by the network on another payment", func(r *store.DisputeRecord) {
				r.PaymentID, r.OpenedBy = q.ID, dispute.OpenedByNetwork
			}, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				again := first
				again.CreatedAt = t0.Add(time.Hour)
				tt.edit(&again)
				_, err := s.CreateDispute(ctx, again, tt.opener)
				wantKind(t, err, errs.KindAlreadyExists, first.ID)
				wantNothingChanged(t, s, before, "a duplicate dispute id")
			})
		}
		wantDispute(t, "the first dispute", s.Client.Dispute.GetX(ctx, first.ID), store.DisputeRecordOf(created))

		// Closed, its id stays taken; the payment takes a new one.
		won := nextDispute(store.DisputeRecordOf(created), dispute.StatusWon, nil)
		mustSaveDispute(t, s, won, nil)
		wantHolds(t, s, p.ID, 0, 0, "")
		_, err := s.CreateDispute(ctx, first, customer)
		wantKind(t, err, errs.KindAlreadyExists, first.ID)
		second := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByMerchant, 0, t0.Add(2*time.Hour)), merchant)
		if second.Amount != 1000 {
			t.Fatalf("the second dispute took %d, want 1000", second.Amount)
		}
		wantHolds(t, s, p.ID, 0, 1000, second.ID)
		wantHolds(t, s, q.ID, 0, 0, "")
		wantConsistent(t, s)
	})
}

// --- network disputes ----------------------------------------------------

func TestCreateNetworkDispute(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		merchantAcc, funding := "merchant_balance:"+merchant, "customer_funding:"+customer
		const clearing = "gateway_clearing:sandbox"
		ledgerRows := 0

		// wantWithdrawn checks the funds_withdrawn journal of d: the whole
		// disputed amount, whatever the dispute could hold.
		wantWithdrawn := func(t *testing.T, d *ent.Dispute, p store.PaymentRecord) {
			t.Helper()
			wantEntries(t, s, d.ID+"/funds_withdrawn", p.ID, "USD", moneyBackLines(p.MerchantID, p.CustomerID, d.Amount), d.CreatedAt)
		}

		t.Run("on a payment with its whole balance", func(t *testing.T) {
			p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0)
			ledgerRows += 2
			rec := newDispute(p, dispute.OpenedByNetwork, 1000, t0.Add(time.Minute))
			d := mustCreateDispute(t, s, rec, "")
			wantDispute(t, "network dispute", d, disputeCreatedAs(rec, p, 1000, 1000))
			wantHolds(t, s, p.ID, 0, 1000, rec.ID)
			wantWithdrawn(t, d, p)
			ledgerRows += 4
			wantLedgerRows(t, s, ledgerRows)
			wantBalance(t, s, merchantAcc, "USD", 0)
			wantBalance(t, s, clearing, "USD", 1000)
			wantBalance(t, s, funding, "USD", -1000)
			wantConsistent(t, s)
		})

		t.Run("while another dispute is open", func(t *testing.T) {
			p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(time.Second))
			ledgerRows += 2
			open := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 300, t0.Add(time.Minute)), customer)
			rec := newDispute(p, dispute.OpenedByNetwork, 1000, t0.Add(2*time.Minute))
			d := mustCreateDispute(t, s, rec, "")
			want := disputeCreatedAs(rec, p, 1000, 700)
			want.NeedsAttention = true
			want.AttentionReason = "the network opened a dispute while dispute " + open.ID + " was open on the payment"
			wantDispute(t, "network dispute during another", d, want)
			wantHolds(t, s, p.ID, 0, 1000, open.ID)
			wantWithdrawn(t, d, p)
			ledgerRows += 4
			wantLedgerRows(t, s, ledgerRows)
			wantConsistent(t, s)
		})

		t.Run("of more than is left", func(t *testing.T) {
			p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(2*time.Second))
			ledgerRows += 2
			mustCreateRefund(t, s, newRefund(p, 600, t0.Add(time.Minute)))
			rec := newDispute(p, dispute.OpenedByNetwork, 1000, t0.Add(2*time.Minute))
			d := mustCreateDispute(t, s, rec, "")
			want := disputeCreatedAs(rec, p, 1000, 400)
			want.NeedsAttention = true
			want.AttentionReason = "the network disputes 1000 while only 400 was left of the payment's balance"
			wantDispute(t, "network dispute of more than is left", d, want)
			wantHolds(t, s, p.ID, 600, 400, rec.ID)
			wantWithdrawn(t, d, p)
			ledgerRows += 4
			wantLedgerRows(t, s, ledgerRows)
			wantConsistent(t, s)
		})

		t.Run("of a payment refunded in full", func(t *testing.T) {
			p := succeededPayment(t, s, merchant, "", "USD", 1000, t0.Add(3*time.Second))
			ledgerRows += 2
			mustCreateRefund(t, s, newRefund(p, 0, t0.Add(time.Minute)))
			rec := newDispute(p, dispute.OpenedByNetwork, 250, t0.Add(2*time.Minute))
			d := mustCreateDispute(t, s, rec, "")
			if d.AmountHeld != 0 || d.Amount != 250 || !d.NeedsAttention {
				t.Fatalf("network dispute of a refunded payment: amount %d, held %d, needs attention %v; want 250, 0, true",
					d.Amount, d.AmountHeld, d.NeedsAttention)
			}
			wantHolds(t, s, p.ID, 1000, 0, rec.ID)
			wantWithdrawn(t, d, p) // customer_funding:guest
			ledgerRows += 4
			wantLedgerRows(t, s, ledgerRows)
			wantConsistent(t, s)
		})

		t.Run("a refund is refused while it is open", func(t *testing.T) {
			p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(4*time.Second))
			ledgerRows += 2
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 100, t0.Add(time.Minute)), "")
			ledgerRows += 4
			before := disputeSnapshot(t, s)
			_, _, err := s.CreateRefund(ctx, newRefund(p, 100, t0.Add(2*time.Minute)))
			wantKind(t, err, errs.KindFailedPrecondition, "open dispute", d.ID)
			wantNothingChanged(t, s, before, "a refund during a network dispute")
		})
	})
}

// The funds_withdrawn journal goes in with the dispute, or neither does.
func TestCreateNetworkDisputePostsItsJournalAtomically(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		rec := newDispute(p, dispute.OpenedByNetwork, 800, t0.Add(time.Minute))
		// A journal of that id with other lines is posted already.
		mustPost(t, s, store.Journal{ID: rec.ID + "/funds_withdrawn", PaymentID: p.ID, Currency: "USD", At: t0,
			Lines: moneyBackLines(p.MerchantID, p.CustomerID, 1)})
		before := disputeSnapshot(t, s)
		_, err := s.CreateDispute(ctx, rec, "")
		wantKind(t, err, errs.KindAlreadyExists, rec.ID+"/funds_withdrawn")
		wantNothingChanged(t, s, before, "a network dispute whose journal was refused")
		wantHolds(t, s, p.ID, 0, 0, "")
		if n := s.Client.Dispute.Query().CountX(ctx); n != 0 {
			t.Fatalf("%d disputes stored, want none", n)
		}
		// The same journal again, with the same lines, is a no-op: a
		// retried CreateDispute that lost the race with itself.
		other := newDispute(p, dispute.OpenedByNetwork, 800, t0.Add(2*time.Minute))
		mustPost(t, s, *store.DisputeFundsWithdrawnJournal(store.DisputeRecord{
			ID: other.ID, PaymentID: p.ID, Currency: "USD", MerchantID: p.MerchantID, CustomerID: p.CustomerID,
			Gateway: "sandbox", Amount: 800}, t0.Add(2*time.Minute)))
		rows := s.Client.LedgerEntry.Query().CountX(ctx)
		mustCreateDispute(t, s, other, "")
		wantLedgerRows(t, s, rows)
		wantHolds(t, s, p.ID, 0, 800, other.ID)
		wantConsistent(t, s)
	})
}

// A card network's dispute of a payment that, as the platform has it,
// received nothing (failed, canceled) can never be taken from its balance:
// CreateDispute must answer for good, refusing it or recording it for
// operators, not ask for a retry that can never succeed.
func TestCreateNetworkDisputeOfAPaymentThatReceivedNothingIsAnsweredForGood(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for i, st := range []payment.Status{payment.StatusFailed, payment.StatusCanceled} {
			t.Run(string(st), func(t *testing.T) {
				rec := newPayment(ids.New(ids.Account), ids.New(ids.Account), t0.Add(time.Duration(i)*time.Second))
				rec.Status = st
				mustSave(t, s, rec, nil)
				before := disputeSnapshot(t, s)
				d, err := s.CreateDispute(ctx, newDispute(rec, dispute.OpenedByNetwork, 500, t0.Add(time.Minute)), "")
				switch {
				case err == nil:
					if !d.NeedsAttention || d.AmountHeld != 0 {
						t.Fatalf("recorded with held %d, needs attention %v; want 0, true", d.AmountHeld, d.NeedsAttention)
					}
					wantConsistent(t, s)
				case errs.KindOf(err) == errs.KindAborted:
					t.Errorf("CreateDispute = %v (Aborted: retry), but no retry can succeed on a %s payment", err, st)
					wantNothingChanged(t, s, before, "the refused network dispute")
				default:
					wantNothingChanged(t, s, before, "the refused network dispute")
				}
			})
		}
	})
}

// A network dispute that arrives while a platform dispute is open is
// recorded beside it (needs attention). When the platform dispute closes,
// the network dispute is still open: the payment must still count as
// disputed, so that neither a refund nor a new dispute is taken meanwhile
// (the network took the whole amount back already).
func TestNetworkDisputeStaysOpenOnThePaymentWhenThePlatformDisputeCloses(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		platform := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 300, t0.Add(time.Minute)), p.CustomerID)
		network := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 1000, t0.Add(2*time.Minute)), "")
		wantHolds(t, s, p.ID, 0, 1000, platform.ID)

		mustSaveDispute(t, s, nextDispute(store.DisputeRecordOf(platform), dispute.StatusWithdrawn, nil), nil)
		wantConsistent(t, s)
		after := s.Client.Payment.GetX(ctx, p.ID)
		if after.AmountDisputed != 700 {
			t.Fatalf("amount_disputed = %d, want the network dispute's 700", after.AmountDisputed)
		}
		if after.OpenDisputeID != network.ID {
			t.Errorf("open_dispute_id = %q after the platform dispute closed, want the network dispute %s, still open",
				after.OpenDisputeID, network.ID)
		}
		_, _, err := s.CreateRefund(ctx, newRefund(p, 300, t0.Add(time.Hour)))
		if errs.KindOf(err) != errs.KindFailedPrecondition {
			t.Errorf("CreateRefund of 300 while the network dispute %s is open = %v, want FailedPrecondition", network.ID, err)
		}
		_, err = s.CreateDispute(ctx, newDispute(p, dispute.OpenedByCustomer, 0, t0.Add(time.Hour)), p.CustomerID)
		if errs.KindOf(err) != errs.KindAlreadyExists {
			t.Errorf("CreateDispute while the network dispute %s is open = %v, want AlreadyExists", network.ID, err)
		}
	})
}

// --- refunds and disputes of one balance --------------------------------

func TestCreateRefundRefusedWhileADisputeIsOpen(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		mustCreateRefund(t, s, newRefund(p, 100, t0.Add(time.Minute)))
		d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 300, t0.Add(2*time.Minute)), p.CustomerID)
		before := disputeSnapshot(t, s)
		for _, amount := range []int64{0, 1, 600, 601} {
			rec := newRefund(p, amount, t0.Add(time.Hour))
			_, _, err := s.CreateRefund(ctx, rec)
			wantKind(t, err, errs.KindFailedPrecondition, p.ID, "open dispute", d.ID)
			rec.MerchantID = "" // an admin's
			_, _, err = s.CreateRefund(ctx, rec)
			wantKind(t, err, errs.KindFailedPrecondition, "open dispute", d.ID)
			wantNothingChanged(t, s, before, fmt.Sprintf("refunding %d during a dispute", amount))
		}
		pay := s.Client.Payment.GetX(ctx, p.ID)
		wantKind(t, store.CheckRefundable(pay, 1), errs.KindFailedPrecondition, "open dispute", d.ID)

		// Under review: still open.
		v2 := nextDispute(store.DisputeRecordOf(d), dispute.StatusUnderReview, func(r *store.DisputeRecord) {
			r.Evidence, r.EvidenceSubmitted = disputes.Evidence{Explanation: "delivered"}, true
		})
		mustSaveDispute(t, s, v2, nil)
		_, _, err := s.CreateRefund(ctx, newRefund(p, 1, t0.Add(time.Hour)))
		wantKind(t, err, errs.KindFailedPrecondition, "open dispute")

		// Lost, the refund of it pending: no longer open, and its 300 held.
		v3 := settled(v2, dispute.StatusLost, dispute.SettlementPending)
		mustSaveDispute(t, s, v3, nil)
		wantHolds(t, s, p.ID, 100, 300, "")
		_, _, err = s.CreateRefund(ctx, newRefund(p, 601, t0.Add(time.Hour)))
		wantKind(t, err, errs.KindFailedPrecondition, "6.00 USD", "600")
		r, after := mustCreateRefund(t, s, newRefund(p, 0, t0.Add(time.Hour)))
		if r.Amount != 600 || after.AmountRefunded != 700 || after.AmountDisputed != 300 {
			t.Fatalf("refund of the rest: %d, payment refunded %d disputed %d; want 600, 700, 300",
				r.Amount, after.AmountRefunded, after.AmountDisputed)
		}
		wantConsistent(t, s)
	})
}

func TestCheckDisputable(t *testing.T) {
	p := func(st payment.Status, received, refunded, disputed int64, open string) *ent.Payment {
		return &ent.Payment{ID: "pay_1", Status: st, Currency: "USD", Amount: received,
			AmountReceived: received, AmountRefunded: refunded, AmountDisputed: disputed, OpenDisputeID: open}
	}
	for _, tt := range []struct {
		name   string
		p      *ent.Payment
		amount int64
		kind   errs.Kind
		says   []string
	}{
		{"all of a fresh payment", p(payment.StatusSucceeded, 1000, 0, 0, ""), 1000, errs.KindInternal, nil},
		{"what partial refunds left", p(payment.StatusSucceeded, 1000, 300, 200, ""), 500, errs.KindInternal, nil},
		{"one more than is left", p(payment.StatusSucceeded, 1000, 300, 200, ""), 501, errs.KindFailedPrecondition,
			[]string{"pay_1", "5.00 USD", "(500 in minor units); 501 asked"}},
		{"nothing left", p(payment.StatusSucceeded, 1000, 1000, 0, ""), 1, errs.KindFailedPrecondition,
			[]string{"nothing is left to dispute"}},
		{"nothing left, everything asked", p(payment.StatusSucceeded, 1000, 400, 600, ""), 0, errs.KindFailedPrecondition,
			[]string{"nothing is left to dispute"}},
		{"an open dispute", p(payment.StatusSucceeded, 1000, 0, 100, "dp_x"), 1, errs.KindAlreadyExists,
			[]string{"open dispute, dp_x"}},
		{"not captured", p(payment.StatusRequiresCapture, 0, 0, 0, ""), 1, errs.KindFailedPrecondition,
			[]string{"authorized and not captured"}},
		{"processing", p(payment.StatusProcessing, 0, 0, 0, ""), 1, errs.KindFailedPrecondition,
			[]string{"still processing"}},
		{"failed", p(payment.StatusFailed, 0, 0, 0, ""), 1, errs.KindFailedPrecondition,
			[]string{"is failed"}},
		{"canceled", p(payment.StatusCanceled, 0, 0, 0, ""), 1, errs.KindFailedPrecondition,
			[]string{"is canceled"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := store.CheckDisputable(tt.p, tt.amount)
			if tt.kind == errs.KindInternal {
				if err != nil {
					t.Fatalf("CheckDisputable = %v, want nil", err)
				}
				return
			}
			wantKind(t, err, tt.kind, tt.says...)
		})
	}
}

func TestDisputableAfterPartialRefunds(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		mustCreateRefund(t, s, newRefund(p, 300, t0.Add(time.Minute)))
		b, _ := mustCreateRefund(t, s, newRefund(p, 200, t0.Add(2*time.Minute)))
		pay := s.Client.Payment.GetX(ctx, p.ID)
		if err := store.CheckDisputable(pay, 500); err != nil {
			t.Fatalf("CheckDisputable(500 of the 500 left) = %v", err)
		}
		wantKind(t, store.CheckDisputable(pay, 501), errs.KindFailedPrecondition, "5.00 USD", "500")
		before := disputeSnapshot(t, s)
		_, err := s.CreateDispute(ctx, newDispute(p, dispute.OpenedByCustomer, 501, t0.Add(time.Hour)), p.CustomerID)
		wantKind(t, err, errs.KindFailedPrecondition, "5.00 USD", "500")
		wantNothingChanged(t, s, before, "disputing 501 of 500 left")

		// A failed refund gives its 200 back to the balance: 700 left.
		mustSaveRefund(t, s, next(store.RefundRecordOf(b), refund.StatusFailed, nil), nil)
		wantKind(t, store.CheckDisputable(s.Client.Payment.GetX(ctx, p.ID), 701), errs.KindFailedPrecondition, "7.00 USD")
		d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByMerchant, 0, t0.Add(time.Hour)), p.MerchantID)
		if d.Amount != 700 || d.AmountHeld != 700 {
			t.Fatalf("dispute of everything left: amount %d held %d, want 700, 700", d.Amount, d.AmountHeld)
		}
		wantHolds(t, s, p.ID, 300, 700, d.ID)
		wantConsistent(t, s)
	})
}

// Refunds and disputes of one payment's whole balance, at once: exactly
// one of them takes it.
func TestRefundsAndDisputesRaceForTheWholeBalance(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const (
			n        = 8
			rounds   = 4
			received = 1000
		)
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		winners := map[string]int{}
		for round := range rounds {
			p := succeededPayment(t, s, merchant, customer, "USD", received, t0.Add(time.Duration(round)*time.Second))
			type result struct {
				id       string
				isRefund bool
				err      error
			}
			results := concurrently(n, func(i int) result {
				at := t0.Add(time.Hour + time.Duration(round*n+i)*time.Millisecond)
				amount := int64(received)
				if (i/4+round)%2 == 0 {
					amount = 0 // everything left
				}
				switch i % 4 {
				case 0, 1:
					rec := newRefund(p, amount, at)
					if i%4 == 1 {
						rec.MerchantID = ""
					}
					r, after, err := s.CreateRefund(ctx, rec)
					if err == nil && (r.Amount != received || after.AmountRefunded != received || after.AmountDisputed != 0) {
						err = fmt.Errorf("refund of %d, payment refunded %d disputed %d", r.Amount, after.AmountRefunded, after.AmountDisputed)
					}
					return result{rec.ID, true, err}
				default:
					by := dispute.OpenedByCustomer
					if i%4 == 3 {
						by = dispute.OpenedByMerchant
					}
					rec := newDispute(p, by, amount, at)
					d, err := s.CreateDispute(ctx, rec, openerOf(p, by))
					if err == nil && (d.Amount != received || d.AmountHeld != received) {
						err = fmt.Errorf("dispute of %d holding %d", d.Amount, d.AmountHeld)
					}
					return result{rec.ID, false, err}
				}
			})
			var won []result
			for _, r := range results {
				switch errs.KindOf(r.err) {
				case errs.KindFailedPrecondition, errs.KindAlreadyExists, errs.KindAborted:
				default:
					if r.err != nil {
						t.Fatalf("round %d: %s: %v (kind %v), want success, FailedPrecondition, AlreadyExists or Aborted",
							round, r.id, r.err, errs.KindOf(r.err))
					}
					won = append(won, r)
				}
			}
			if len(won) != 1 {
				t.Fatalf("round %d: %d of %d won: %v", round, len(won), n, won)
			}
			w := won[0]
			refunds := s.Client.Refund.Query().Where(refund.PaymentID(p.ID)).AllX(ctx)
			disps := s.Client.Dispute.Query().Where(dispute.PaymentID(p.ID)).AllX(ctx)
			if w.isRefund {
				winners["refund"]++
				if len(refunds) != 1 || refunds[0].ID != w.id || len(disps) != 0 {
					t.Fatalf("round %d: refund %s won; stored refunds %v, disputes %v", round, w.id, refunds, disps)
				}
				wantHolds(t, s, p.ID, received, 0, "")
			} else {
				winners["dispute"]++
				if len(disps) != 1 || disps[0].ID != w.id || len(refunds) != 0 {
					t.Fatalf("round %d: dispute %s won; stored refunds %v, disputes %v", round, w.id, refunds, disps)
				}
				wantHolds(t, s, p.ID, 0, received, w.id)
			}
			for _, r := range results {
				if r.err == nil {
					continue
				}
				// A loser says why: the balance is gone or disputed.
				var e *errs.Error
				errors.As(r.err, &e)
				switch {
				case w.isRefund && !strings.Contains(e.Message, "nothing is left"),
					!w.isRefund && r.isRefund && !strings.Contains(e.Message, "open dispute, "+w.id),
					!w.isRefund && !r.isRefund && errs.KindOf(r.err) != errs.KindAlreadyExists && errs.KindOf(r.err) != errs.KindAborted:
					t.Fatalf("round %d: %s lost to %s with %v", round, r.id, w.id, r.err)
				}
			}
		}
		t.Logf("winners: %v", winners)
		wantConsistent(t, s)
	})
}

// The save that closes a dispute races refunds and new disputes of the
// same payment: whatever the order, the balance adds up.
func TestCloseDisputeRacesRefundsAndDisputes(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const (
			n        = 8
			rounds   = 3
			received = 1000
		)
		for round := range rounds {
			p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", received, t0.Add(time.Duration(round)*time.Second))
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, t0.Add(time.Minute)), p.CustomerID)
			outcome := []dispute.Status{dispute.StatusWon, dispute.StatusLost, dispute.StatusWithdrawn}[round]
			closing := settled(store.DisputeRecordOf(d), outcome, map[bool]dispute.Settlement{
				true: dispute.SettlementPending, false: dispute.SettlementNone}[outcome == dispute.StatusLost])
			results := concurrently(n, func(i int) error {
				at := t0.Add(time.Hour + time.Duration(round*n+i)*time.Millisecond)
				switch {
				case i == 0:
					_, err := s.SaveDispute(ctx, closing, nil)
					if err != nil {
						return fmt.Errorf("the closing save: %w", err)
					}
					return nil
				case i%3 == 0:
					_, err := s.CreateDispute(ctx, newDispute(p, dispute.OpenedByMerchant, 0, at), p.MerchantID)
					return err
				default:
					_, _, err := s.CreateRefund(ctx, newRefund(p, 300, at))
					return err
				}
			})
			for i, err := range results {
				switch errs.KindOf(err) {
				case errs.KindFailedPrecondition, errs.KindAlreadyExists, errs.KindAborted:
					if i == 0 {
						t.Fatalf("round %d: %v", round, err)
					}
				default:
					if err != nil {
						t.Fatalf("round %d, call %d: %v (kind %v)", round, i, err, errs.KindOf(err))
					}
				}
			}
			if got := s.Client.Dispute.GetX(ctx, d.ID); got.Status != outcome {
				t.Fatalf("round %d: dispute %s is %s, want %s", round, d.ID, got.Status, outcome)
			}
			wantConsistent(t, s)
		}
	})
}

// --- SaveDispute ---------------------------------------------------------

func TestSaveDisputeIsVersioned(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, t0.Add(time.Minute)), p.CustomerID)
		v1 := store.DisputeRecordOf(d)

		v2 := nextDispute(v1, dispute.StatusUnderReview, func(r *store.DisputeRecord) {
			r.Evidence, r.EvidenceSubmitted = disputes.Evidence{Explanation: "delivered", ShippingTrackingNumber: "1Z"}, true
			r.ClaimantEvidence, r.ClaimantEvidenceSubmitted = disputes.Evidence{Explanation: "not delivered"}, true
			r.ResponseDueBy = r.ResponseDueBy.Add(48*time.Hour + time.Microsecond)
			r.GatewayReference = "gw_dp_1"
			r.NeedsAttention, r.AttentionReason = true, "look"
			r.OutcomeNote = "pending review"
			// What never changes and is not compared is not saved either.
			r.MerchantID, r.CustomerID, r.Reason, r.Description = "acct_x", "acct_y", dispute.ReasonGeneral, "changed"
			r.Gateway, r.WorkflowID, r.CreatedAt = "stripe", "other", t0
		})
		want := v2
		want.MerchantID, want.CustomerID, want.Reason, want.Description = v1.MerchantID, v1.CustomerID, v1.Reason, v1.Description
		want.Gateway, want.WorkflowID, want.CreatedAt = v1.Gateway, v1.WorkflowID, v1.CreatedAt
		wantDispute(t, "returned after v2", mustSaveDispute(t, s, v2, nil), want)
		wantDispute(t, "read after v2", s.Client.Dispute.GetX(ctx, v1.ID), want)

		// An equal or lower version changes nothing and answers with what
		// is stored, even one that would close it or break the rules.
		before := disputeSnapshot(t, s)
		for _, rec := range []store.DisputeRecord{
			nextDispute(v1, dispute.StatusWon, nil),
			settled(v1, dispute.StatusLost, dispute.SettlementRefunded),
			settled(v1, dispute.StatusWon, dispute.SettlementWithdrawn),
			v1,
			v2,
		} {
			got := mustSaveDispute(t, s, rec, nil)
			wantDispute(t, fmt.Sprintf("returned after v%d %s/%s", rec.Version, rec.Status, rec.Settlement), got, want)
			wantNothingChanged(t, s, before, fmt.Sprintf("a save of v%d", rec.Version))
		}
		wantHolds(t, s, p.ID, 0, 400, v1.ID)

		// A dispute that does not exist cannot be saved.
		ghost := nextDispute(v2, dispute.StatusWon, func(r *store.DisputeRecord) { r.ID = ids.New(ids.Dispute) })
		_, err := s.SaveDispute(ctx, ghost, nil)
		wantErr(t, err, errs.ErrNotFound, "dispute not found")
		wantNothingChanged(t, s, before, "saving an unknown dispute")
		wantConsistent(t, s)
	})
}

func TestSaveDisputeClosedStaysClosed(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		all := []dispute.Status{dispute.StatusNeedsResponse, dispute.StatusUnderReview, dispute.StatusWon,
			dispute.StatusLost, dispute.StatusAccepted, dispute.StatusWithdrawn}
		for i, final := range []dispute.Status{dispute.StatusWon, dispute.StatusLost, dispute.StatusAccepted, dispute.StatusWithdrawn} {
			t.Run(string(final), func(t *testing.T) {
				p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0.Add(time.Duration(i)*time.Second))
				d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, t0.Add(time.Minute)), p.CustomerID)
				ended := nextDispute(store.DisputeRecordOf(d), final, nil)
				mustSaveDispute(t, s, ended, nil)
				before := disputeSnapshot(t, s)
				for _, to := range all {
					if to == final {
						continue
					}
					_, err := s.SaveDispute(ctx, nextDispute(ended, to, nil), nil)
					wantKind(t, err, errs.KindFailedPrecondition, d.ID, string(final), string(to))
					wantNothingChanged(t, s, before, fmt.Sprintf("%s -> %s", final, to))
				}
				// The same outcome with more to say is a save.
				later := nextDispute(ended, final, func(r *store.DisputeRecord) { r.OutcomeNote = "final word" })
				wantDispute(t, "a later save of "+string(final), mustSaveDispute(t, s, later, nil), closedAt(later, ended.UpdatedAt))
				wantConsistent(t, s)
			})
		}
	})
}

func TestSaveDisputeRefusesChangingWhatNeverChanges(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0)
		q := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(time.Second))
		d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, t0.Add(time.Minute)), customer)
		v1 := store.DisputeRecordOf(d)
		before := disputeSnapshot(t, s)
		for _, tt := range []struct {
			name string
			edit func(r *store.DisputeRecord)
		}{
			{"amount", func(r *store.DisputeRecord) { r.Amount = 300 }},
			{"amount held", func(r *store.DisputeRecord) { r.AmountHeld = 300 }},
			{"amount held above amount", func(r *store.DisputeRecord) { r.AmountHeld = 500 }},
			{"payment", func(r *store.DisputeRecord) { r.PaymentID = q.ID }},
			{"currency", func(r *store.DisputeRecord) { r.Currency = "EUR" }},
			{"opened by", func(r *store.DisputeRecord) { r.OpenedBy = dispute.OpenedByNetwork }},
			{"opened by the merchant", func(r *store.DisputeRecord) { r.OpenedBy = dispute.OpenedByMerchant }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				// Also when the new status would give the amount back, and
				// at an old version.
				for _, rec := range []store.DisputeRecord{
					nextDispute(v1, dispute.StatusUnderReview, nil),
					nextDispute(v1, dispute.StatusWon, nil),
					settled(v1, dispute.StatusLost, dispute.SettlementRefunded),
					v1,
				} {
					tt.edit(&rec)
					_, err := s.SaveDispute(ctx, rec, nil)
					wantKind(t, err, errs.KindInvalidArgument, d.ID)
					wantNothingChanged(t, s, before, "changing the dispute's "+tt.name)
				}
			})
		}
		// The currency in another case is the same currency.
		lower := nextDispute(v1, dispute.StatusWon, func(r *store.DisputeRecord) { r.Currency = "usd" })
		if got := mustSaveDispute(t, s, lower, nil); got.Status != dispute.StatusWon || got.Currency != "USD" {
			t.Fatalf("after a save in lower case: %s %s, want won USD", got.Status, got.Currency)
		}
		wantHolds(t, s, p.ID, 0, 0, "")
		wantHolds(t, s, q.ID, 0, 0, "")
		wantConsistent(t, s)
	})
}

func TestSaveDisputeWonOrWithdrawnGivesTheHoldBackOnce(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		i := 0
		for _, final := range []dispute.Status{dispute.StatusWon, dispute.StatusWithdrawn} {
			for _, by := range []dispute.OpenedBy{dispute.OpenedByCustomer, dispute.OpenedByMerchant} {
				t.Run(string(final)+" opened by "+string(by), func(t *testing.T) {
					i++
					p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0.Add(time.Duration(i)*time.Second))
					mustCreateRefund(t, s, newRefund(p, 100, t0.Add(time.Minute)))
					d := mustCreateDispute(t, s, newDispute(p, by, 400, t0.Add(2*time.Minute)), openerOf(p, by))
					v2 := nextDispute(store.DisputeRecordOf(d), dispute.StatusUnderReview, func(r *store.DisputeRecord) {
						r.EvidenceSubmitted = true
					})
					wantDispute(t, "under review", mustSaveDispute(t, s, v2, nil), v2)
					wantHolds(t, s, p.ID, 100, 400, d.ID)

					v3 := nextDispute(v2, final, func(r *store.DisputeRecord) { r.OutcomeNote = "decided" })
					wantDispute(t, string(final), mustSaveDispute(t, s, v3, nil), closedAt(v3, v3.UpdatedAt))
					wantHolds(t, s, p.ID, 100, 0, "")
					wantConsistent(t, s)

					// A new dispute holds the rest; the first one's saves,
					// retried or later, neither give back again nor touch
					// the new one's mark.
					other := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 0, t0.Add(time.Hour)), p.CustomerID)
					wantHolds(t, s, p.ID, 100, 900, other.ID)
					mustSaveDispute(t, s, v3, nil)
					v4 := nextDispute(v3, final, func(r *store.DisputeRecord) { r.NeedsAttention, r.AttentionReason = true, "x" })
					v5 := nextDispute(v4, final, func(r *store.DisputeRecord) { r.NeedsAttention, r.AttentionReason = false, "" })
					for _, rec := range []store.DisputeRecord{v4, v4, v5, v3} {
						mustSaveDispute(t, s, rec, nil)
						wantHolds(t, s, p.ID, 100, 900, other.ID)
					}
					// closed_at is the first close's.
					wantDispute(t, "after later saves", s.Client.Dispute.GetX(ctx, d.ID), closedAt(v5, v3.UpdatedAt))
					wantConsistent(t, s)
				})
			}
		}
	})
}

func TestSaveDisputeCustomerPrevailsRefundsTheHoldOnce(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		i := 0
		for _, final := range []dispute.Status{dispute.StatusLost, dispute.StatusAccepted} {
			for _, viaPending := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s via pending %v", final, viaPending), func(t *testing.T) {
					i++
					merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
					merchantAcc, funding := "merchant_balance:"+merchant, "customer_funding:"+customer
					const clearing = "gateway_clearing:sandbox"
					p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0.Add(time.Duration(i)*time.Second))
					d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, t0.Add(time.Minute)), customer)
					rec := store.DisputeRecordOf(d)
					closed := rec.UpdatedAt.Add(time.Minute)
					if viaPending {
						// Decided: no longer open, the amount still held
						// until the refund is made.
						rec = settled(rec, final, dispute.SettlementPending)
						wantDispute(t, "decided", mustSaveDispute(t, s, rec, nil), closedAt(rec, closed))
						wantHolds(t, s, p.ID, 0, 400, "")
						mustSaveDispute(t, s, rec, nil)
						rec = nextDispute(rec, final, func(r *store.DisputeRecord) {
							r.NeedsAttention, r.AttentionReason = true, "the gateway did not answer the dispute's refund"
						})
						mustSaveDispute(t, s, rec, nil)
						wantHolds(t, s, p.ID, 0, 400, "")
						wantConsistent(t, s)
						// Only what is not held is refundable meanwhile.
						_, _, err := s.CreateRefund(ctx, newRefund(p, 601, t0.Add(time.Hour)))
						wantKind(t, err, errs.KindFailedPrecondition, "6.00 USD")
					}
					// Refunded: the held amount moves from disputed to
					// refunded, with the refund's journal.
					refunded := settled(rec, final, dispute.SettlementRefunded)
					refunded.RefundReference = "re_gw_1"
					refunded.NeedsAttention, refunded.AttentionReason = false, ""
					j := store.DisputeRefundJournal(refunded, refunded.UpdatedAt)
					wantDispute(t, "refunded", mustSaveDispute(t, s, refunded, j), closedAt(refunded, closed))
					wantHolds(t, s, p.ID, 400, 0, "")
					wantEntries(t, s, d.ID+"/refund", p.ID, "USD", moneyBackLines(merchant, customer, 400), refunded.UpdatedAt)
					wantBalance(t, s, merchantAcc, "USD", -600)
					wantBalance(t, s, clearing, "USD", int64(i)*1000) // each payment's capture
					wantBalance(t, s, funding, "USD", -400)
					rows := ledgerRowsOf(t, s)
					wantConsistent(t, s)

					// The rest is disputed anew; the first dispute's saves
					// with settlement refunded, retried or later, move
					// nothing again and post nothing twice.
					other := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByMerchant, 0, t0.Add(time.Hour)), merchant)
					wantHolds(t, s, p.ID, 400, 600, other.ID)
					later := nextDispute(refunded, final, func(r *store.DisputeRecord) { r.OutcomeNote = "refund confirmed" })
					for _, again := range []store.DisputeRecord{refunded, later, later, nextDispute(later, final, nil)} {
						mustSaveDispute(t, s, again, store.DisputeRefundJournal(refunded, again.UpdatedAt))
						wantHolds(t, s, p.ID, 400, 600, other.ID)
						wantLedgerRows(t, s, rows)
					}
					wantBalance(t, s, merchantAcc, "USD", -600)
					if got := s.Client.Dispute.GetX(ctx, d.ID); got.ClosedAt == nil || !got.ClosedAt.Equal(closed) {
						t.Fatalf("closed_at = %v after later saves, want %v", got.ClosedAt, closed)
					}
					wantConsistent(t, s)
				})
			}
		}
	})
}

func ledgerRowsOf(t *testing.T, s *store.Store) int {
	t.Helper()
	return s.Client.LedgerEntry.Query().CountX(context.Background())
}

func TestSaveDisputeRefusesSettlementsTheOutcomeRulesOut(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		type move struct {
			status     dispute.Status
			settlement dispute.Settlement
		}
		n := 0
		for _, tt := range []struct {
			name    string
			by      dispute.OpenedBy
			from    []move // the saves that reach the state
			refused []move
		}{
			{"platform, open", dispute.OpenedByCustomer, nil, []move{
				{dispute.StatusUnderReview, dispute.SettlementPending},
				{dispute.StatusNeedsResponse, dispute.SettlementRefunded},
				{dispute.StatusWon, dispute.SettlementRefunded},
				{dispute.StatusWon, dispute.SettlementPending},
				{dispute.StatusWithdrawn, dispute.SettlementRefunded},
				{dispute.StatusLost, dispute.SettlementWithdrawn},
				{dispute.StatusLost, dispute.SettlementReinstated},
				{dispute.StatusWon, dispute.SettlementReinstated},
				{dispute.StatusAccepted, dispute.SettlementWithdrawn},
			}},
			{"platform, lost, refund pending", dispute.OpenedByCustomer, []move{{dispute.StatusLost, dispute.SettlementPending}}, []move{
				{dispute.StatusLost, dispute.SettlementWithdrawn},
				{dispute.StatusLost, dispute.SettlementReinstated},
				{dispute.StatusLost, dispute.SettlementNone},
				{dispute.StatusWon, dispute.SettlementPending},
				{dispute.StatusWon, dispute.SettlementNone},
				{dispute.StatusAccepted, dispute.SettlementRefunded},
			}},
			{"platform, accepted, refunded", dispute.OpenedByMerchant, []move{{dispute.StatusAccepted, dispute.SettlementRefunded}}, []move{
				{dispute.StatusAccepted, dispute.SettlementPending},
				{dispute.StatusAccepted, dispute.SettlementNone},
				{dispute.StatusAccepted, dispute.SettlementWithdrawn},
				{dispute.StatusLost, dispute.SettlementRefunded},
			}},
			{"platform, won", dispute.OpenedByCustomer, []move{{dispute.StatusWon, dispute.SettlementNone}}, []move{
				{dispute.StatusWon, dispute.SettlementRefunded},
				{dispute.StatusWon, dispute.SettlementPending},
				{dispute.StatusWon, dispute.SettlementReinstated},
				{dispute.StatusLost, dispute.SettlementPending},
			}},
			{"network, open", dispute.OpenedByNetwork, nil, []move{
				{dispute.StatusLost, dispute.SettlementRefunded},
				{dispute.StatusLost, dispute.SettlementPending},
				{dispute.StatusWon, dispute.SettlementWithdrawn},
				{dispute.StatusLost, dispute.SettlementReinstated},
				{dispute.StatusUnderReview, dispute.SettlementWithdrawn},
				{dispute.StatusUnderReview, dispute.SettlementReinstated},
				{dispute.StatusWithdrawn, dispute.SettlementReinstated},
			}},
			{"network, won, reinstated", dispute.OpenedByNetwork, []move{{dispute.StatusWon, dispute.SettlementReinstated}}, []move{
				{dispute.StatusWon, dispute.SettlementWithdrawn},
				{dispute.StatusWon, dispute.SettlementNone},
				{dispute.StatusLost, dispute.SettlementReinstated},
			}},
			{"network, lost, withdrawn", dispute.OpenedByNetwork, []move{{dispute.StatusLost, dispute.SettlementWithdrawn}}, []move{
				{dispute.StatusLost, dispute.SettlementReinstated},
				{dispute.StatusLost, dispute.SettlementRefunded},
				{dispute.StatusLost, dispute.SettlementNone},
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				n++
				p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0.Add(time.Duration(n)*time.Second))
				d := mustCreateDispute(t, s, newDispute(p, tt.by, 400, t0.Add(time.Minute)), openerOf(p, tt.by))
				rec := store.DisputeRecordOf(d)
				for _, m := range tt.from {
					rec = settled(rec, m.status, m.settlement)
					mustSaveDispute(t, s, rec, nil)
				}
				wantConsistent(t, s)
				before := disputeSnapshot(t, s)
				for _, m := range tt.refused {
					_, err := s.SaveDispute(ctx, settled(rec, m.status, m.settlement), nil)
					wantKind(t, err, errs.KindFailedPrecondition, d.ID)
					if !strings.Contains(err.Error(), string(m.settlement)) && !strings.Contains(err.Error(), string(m.status)) {
						t.Fatalf("%s/%s refused with %q, which names neither", m.status, m.settlement, err)
					}
					wantNothingChanged(t, s, before, fmt.Sprintf("%s: a save as %s/%s", tt.name, m.status, m.settlement))
				}
				wantConsistent(t, s)
			})
		}
	})
}

func TestSaveNetworkDisputeOutcomes(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		const clearing = "gateway_clearing:sandbox"

		t.Run("won: the funds are reinstated and the hold released once", func(t *testing.T) {
			merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
			merchantAcc, funding := "merchant_balance:"+merchant, "customer_funding:"+customer
			p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0)
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 1000, t0.Add(time.Minute)), "")
			wantBalance(t, s, merchantAcc, "USD", 0)
			won := settled(store.DisputeRecordOf(d), dispute.StatusWon, dispute.SettlementReinstated)
			j := store.DisputeFundsReinstatedJournal(won, won.UpdatedAt)
			wantDispute(t, "won", mustSaveDispute(t, s, won, j), closedAt(won, won.UpdatedAt))
			wantHolds(t, s, p.ID, 0, 0, "")
			wantEntries(t, s, d.ID+"/funds_reinstated", p.ID, "USD", []store.JournalLine{
				{Account: funding, Direction: debit, Amount: 1000},
				{Account: clearing, Direction: credit, Amount: 1000},
				{Account: clearing, Direction: debit, Amount: 1000},
				{Account: merchantAcc, Direction: credit, Amount: 1000},
			}, won.UpdatedAt)
			wantBalance(t, s, merchantAcc, "USD", -1000)
			wantBalance(t, s, funding, "USD", 0)
			wantConsistent(t, s)
			rows := ledgerRowsOf(t, s)

			other := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 0, t0.Add(time.Hour)), customer)
			wantHolds(t, s, p.ID, 0, 1000, other.ID)
			later := nextDispute(won, dispute.StatusWon, nil)
			for _, rec := range []store.DisputeRecord{won, later, nextDispute(later, dispute.StatusWon, nil)} {
				mustSaveDispute(t, s, rec, j)
				wantHolds(t, s, p.ID, 0, 1000, other.ID)
				wantLedgerRows(t, s, rows)
			}
			wantConsistent(t, s)
		})

		t.Run("won with less held than disputed releases what was held", func(t *testing.T) {
			p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0.Add(time.Second))
			mustCreateRefund(t, s, newRefund(p, 700, t0.Add(time.Minute)))
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 1000, t0.Add(2*time.Minute)), "")
			wantHolds(t, s, p.ID, 700, 300, d.ID)
			won := settled(store.DisputeRecordOf(d), dispute.StatusWon, dispute.SettlementReinstated)
			mustSaveDispute(t, s, won, store.DisputeFundsReinstatedJournal(won, won.UpdatedAt))
			wantHolds(t, s, p.ID, 700, 0, "")
			wantConsistent(t, s)
		})

		t.Run("lost: the funds stay withdrawn and the hold kept", func(t *testing.T) {
			p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0.Add(2*time.Second))
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 600, t0.Add(time.Minute)), "")
			v2 := nextDispute(store.DisputeRecordOf(d), dispute.StatusUnderReview, nil)
			mustSaveDispute(t, s, v2, nil)
			lost := settled(v2, dispute.StatusLost, dispute.SettlementWithdrawn)
			wantDispute(t, "lost", mustSaveDispute(t, s, lost, nil), closedAt(lost, lost.UpdatedAt))
			wantHolds(t, s, p.ID, 0, 600, "")
			for _, rec := range []store.DisputeRecord{lost, nextDispute(lost, dispute.StatusLost, nil)} {
				mustSaveDispute(t, s, rec, nil)
				wantHolds(t, s, p.ID, 0, 600, "")
			}
			_, _, err := s.CreateRefund(ctx, newRefund(p, 401, t0.Add(time.Hour)))
			wantKind(t, err, errs.KindFailedPrecondition, "4.00 USD")
			mustCreateRefund(t, s, newRefund(p, 400, t0.Add(time.Hour)))
			wantHolds(t, s, p.ID, 400, 600, "")
			wantConsistent(t, s)
		})

		t.Run("lost first, withdrawn later", func(t *testing.T) {
			p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0.Add(3*time.Second))
			d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByNetwork, 1000, t0.Add(time.Minute)), "")
			lost := nextDispute(store.DisputeRecordOf(d), dispute.StatusLost, nil)
			mustSaveDispute(t, s, lost, nil)
			wantHolds(t, s, p.ID, 0, 1000, "")
			withdrawn := settled(lost, dispute.StatusLost, dispute.SettlementWithdrawn)
			wantDispute(t, "withdrawn later", mustSaveDispute(t, s, withdrawn, nil), closedAt(withdrawn, lost.UpdatedAt))
			wantHolds(t, s, p.ID, 0, 1000, "")
			wantConsistent(t, s)
		})
	})
}

func TestSaveDisputeRefusesEvidenceOverLimits(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, t0.Add(time.Minute)), p.CustomerID)
		v1 := store.DisputeRecordOf(d)
		before := disputeSnapshot(t, s)
		over := strings.Repeat("é", disputes.MaxFieldChars+1)
		for _, tt := range []struct {
			name  string
			edit  func(r *store.DisputeRecord)
			field string
		}{
			{"explanation", func(r *store.DisputeRecord) { r.Evidence.Explanation = over }, "evidence.explanation"},
			{"refund policy", func(r *store.DisputeRecord) { r.Evidence.RefundPolicy = over }, "evidence.refund_policy"},
			{"claimant's uncategorized text", func(r *store.DisputeRecord) { r.ClaimantEvidence.UncategorizedText = over },
				"evidence.uncategorized_text"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				// Refused whatever else the save does, at any version.
				for _, rec := range []store.DisputeRecord{
					nextDispute(v1, dispute.StatusUnderReview, nil),
					nextDispute(v1, dispute.StatusWon, nil),
					v1,
				} {
					tt.edit(&rec)
					_, err := s.SaveDispute(ctx, rec, nil)
					wantKind(t, err, errs.KindInvalidArgument, "20000")
					var e *errs.Error
					if errors.As(err, &e); e.Field != tt.field {
						t.Fatalf("error %v is about field %q, want %q", err, e.Field, tt.field)
					}
					wantNothingChanged(t, s, before, "evidence over the limits")
				}
			})
		}
		// At the limit, in every field (multi-byte characters): stored.
		full := strings.Repeat("é", disputes.MaxFieldChars)
		ev := disputes.Evidence{Explanation: full, ProductDescription: full, CustomerCommunication: full,
			ShippingTrackingNumber: full, RefundPolicy: full, UncategorizedText: full}
		v2 := nextDispute(v1, dispute.StatusUnderReview, func(r *store.DisputeRecord) {
			r.Evidence, r.ClaimantEvidence, r.EvidenceSubmitted = ev, ev, true
		})
		mustSaveDispute(t, s, v2, nil)
		wantDispute(t, "evidence at the limits", s.Client.Dispute.GetX(ctx, d.ID), v2)
		wantConsistent(t, s)
	})
}

func TestSaveDisputePostsItsJournalAtomically(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		merchant, customer := ids.New(ids.Account), ids.New(ids.Account)
		p := succeededPayment(t, s, merchant, customer, "USD", 1000, t0)
		d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, t0.Add(time.Minute)), customer)
		lost := settled(store.DisputeRecordOf(d), dispute.StatusLost, dispute.SettlementPending)
		mustSaveDispute(t, s, lost, nil)
		refunded := settled(lost, dispute.StatusLost, dispute.SettlementRefunded)
		// Another journal with the id of the refund's, posted already.
		mustPost(t, s, store.Journal{ID: "elsewhere/refund", PaymentID: p.ID, Currency: "USD", At: t0,
			Lines: moneyBackLines(merchant, customer, 1)})
		before := disputeSnapshot(t, s)
		bad := func(edit func(j *store.Journal)) *store.Journal {
			j := store.DisputeRefundJournal(refunded, refunded.UpdatedAt)
			edit(j)
			return j
		}
		for _, tt := range []struct {
			name  string
			j     *store.Journal
			kind  errs.Kind
			field string
		}{
			// Refused before the transaction.
			{"unbalanced", bad(func(j *store.Journal) { j.Lines[3].Amount = 399 }), errs.KindInvalidArgument, "journal.lines"},
			{"of another payment", bad(func(j *store.Journal) { j.PaymentID = ids.New(ids.Payment) }), errs.KindInvalidArgument, "journal.payment_id"},
			{"without a time", bad(func(j *store.Journal) { j.At = time.Time{} }), errs.KindInvalidArgument, "journal.at"},
			// Refused inside it, after the dispute's update and the move
			// of its amount: both must roll back.
			{"in another currency", bad(func(j *store.Journal) { j.Currency = "eur" }), errs.KindInvalidArgument, "journal.currency"},
			{"conflicting with a posted journal", bad(func(j *store.Journal) { j.ID = "elsewhere/refund" }), errs.KindAlreadyExists, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.SaveDispute(ctx, refunded, tt.j)
				wantKind(t, err, tt.kind)
				var e *errs.Error
				if errors.As(err, &e); e.Field != tt.field {
					t.Fatalf("error %v is about field %q, want %q", err, e.Field, tt.field)
				}
				wantNothingChanged(t, s, before, "a save with a journal "+tt.name)
				wantHolds(t, s, p.ID, 0, 400, "")
			})
		}
		// A journal without a payment is the dispute's.
		j := store.DisputeRefundJournal(refunded, refunded.UpdatedAt)
		j.PaymentID = ""
		mustSaveDispute(t, s, refunded, j)
		wantEntries(t, s, d.ID+"/refund", p.ID, "USD", moneyBackLines(merchant, customer, 400), refunded.UpdatedAt)
		wantHolds(t, s, p.ID, 400, 0, "")
		wantConsistent(t, s)
	})
}

// --- ListDisputes --------------------------------------------------------

func TestListDisputes(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(7, 11))
		m1, m2, c1 := ids.New(ids.Account), ids.New(ids.Account), ids.New(ids.Account)
		// m1 also pays m2 as a customer, and m2 pays itself.
		pays := []store.PaymentRecord{
			succeededPayment(t, s, m1, c1, "USD", 1_000_000, t0),
			succeededPayment(t, s, m1, "", "USD", 1_000_000, t0.Add(time.Second)),
			succeededPayment(t, s, m2, m1, "EUR", 1_000_000, t0.Add(2*time.Second)),
			succeededPayment(t, s, m2, c1, "JPY", 1_000_000, t0.Add(3*time.Second)),
			succeededPayment(t, s, m2, m2, "USD", 1_000_000, t0.Add(4*time.Second)),
			succeededPayment(t, s, m1, c1, "USD", 1_000_000, t0.Add(5*time.Second)),
		}
		type row struct {
			rec store.DisputeRecord // as stored now, closed_at included
			pay store.PaymentRecord
		}
		var all []*row
		byID := map[string]*row{}
		save := func(r *row, next store.DisputeRecord) {
			mustSaveDispute(t, s, next, nil)
			if r.rec.ClosedAt == nil && !store.IsOpen(next.Status) {
				next.ClosedAt = &next.UpdatedAt
			}
			r.rec = next
		}
		closeRandomly := func(r *row) {
			outcomes := []dispute.Status{dispute.StatusWon, dispute.StatusLost, dispute.StatusAccepted, dispute.StatusWithdrawn}
			if r.rec.OpenedBy == dispute.OpenedByNetwork {
				outcomes = outcomes[:2]
			}
			save(r, nextDispute(r.rec, outcomes[rng.IntN(len(outcomes))], nil))
		}
		const count = 60
		for i := range count {
			pi := rng.IntN(len(pays))
			p := pays[pi]
			by := []dispute.OpenedBy{dispute.OpenedByCustomer, dispute.OpenedByMerchant, dispute.OpenedByNetwork}[rng.IntN(3)]
			if by == dispute.OpenedByCustomer && p.CustomerID == "" {
				by = dispute.OpenedByMerchant
			}
			for by != dispute.OpenedByNetwork {
				open := s.Client.Payment.GetX(ctx, p.ID).OpenDisputeID
				if open == "" {
					break
				}
				closeRandomly(byID[open])
			}
			at := t0.Add(time.Duration(i)*time.Minute + time.Duration(rng.IntN(50_000_000))*time.Microsecond)
			rec := newDispute(p, by, int64(100+i), at)
			rec.ResponseDueBy = t0.Add(time.Duration(rng.IntN(30*24*60))*time.Minute + time.Duration(rng.IntN(1_000_000))*time.Microsecond)
			r := &row{rec: store.DisputeRecordOf(mustCreateDispute(t, s, rec, openerOf(p, by))), pay: p}
			all = append(all, r)
			byID[rec.ID] = r
		}
		for _, r := range all {
			if !store.IsOpen(r.rec.Status) {
				continue
			}
			switch rng.IntN(3) {
			case 0:
				closeRandomly(r)
			case 1:
				save(r, nextDispute(r.rec, dispute.StatusUnderReview, nil))
			}
		}
		wantConsistent(t, s)
		// The data must exercise every status and opener.
		seen := map[string]int{}
		for _, r := range all {
			seen[string(r.rec.Status)]++
			seen[string(r.rec.OpenedBy)]++
		}
		for _, k := range []string{"needs_response", "under_review", "won", "lost", "accepted", "withdrawn", "customer", "merchant", "network"} {
			if seen[k] == 0 {
				t.Fatalf("no dispute is %s: %v", k, seen)
			}
		}

		expect := func(f store.DisputeFilter) []string {
			var out []string
			for _, r := range all {
				switch {
				case f.Party != "" && r.pay.MerchantID != f.Party && r.pay.CustomerID != f.Party,
					f.MerchantID != "" && r.pay.MerchantID != f.MerchantID,
					f.PaymentID != "" && r.pay.ID != f.PaymentID,
					f.Status != "" && r.rec.Status != f.Status,
					f.OpenedBy != "" && r.rec.OpenedBy != f.OpenedBy,
					f.DueBefore != nil && !r.rec.ResponseDueBy.Before(*f.DueBefore),
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
		mid := all[count/2]
		filters := map[string]store.DisputeFilter{
			"all":                        {},
			"unknown party":              {Party: ids.New(ids.Account)},
			"party m1 (both sides)":      {Party: m1},
			"party m2 (with itself)":     {Party: m2},
			"party c1 (customer)":        {Party: c1},
			"party m1 merchant m2":       {Party: m1, MerchantID: m2},
			"party c1 needs response":    {Party: c1, Status: dispute.StatusNeedsResponse},
			"party m1 by the network":    {Party: m1, OpenedBy: dispute.OpenedByNetwork},
			"party c1 guest payment":     {Party: c1, PaymentID: pays[1].ID},
			"merchant m1":                {MerchantID: m1},
			"merchant m2 lost":           {MerchantID: m2, Status: dispute.StatusLost},
			"by the customer":            {OpenedBy: dispute.OpenedByCustomer},
			"by the merchant":            {OpenedBy: dispute.OpenedByMerchant},
			"by the network":             {OpenedBy: dispute.OpenedByNetwork},
			"due before the middle one":  {DueBefore: &mid.rec.ResponseDueBy},
			"due 1µs after the middle":   {DueBefore: ptr(mid.rec.ResponseDueBy.Add(time.Microsecond))},
			"open, due in two weeks":     {Status: dispute.StatusNeedsResponse, DueBefore: ptr(t0.Add(14 * 24 * time.Hour))},
			"created from the middle":    {CreatedAfter: &mid.rec.CreatedAt},
			"created before the middle":  {CreatedBefore: &mid.rec.CreatedAt},
			"created [10m, 30m)":         {CreatedAfter: ptr(t0.Add(10 * time.Minute)), CreatedBefore: ptr(t0.Add(30 * time.Minute))},
			"merchant m1 network due":    {MerchantID: m1, OpenedBy: dispute.OpenedByNetwork, DueBefore: ptr(t0.Add(20 * 24 * time.Hour))},
			"party m2 created 20m to 50": {Party: m2, CreatedAfter: ptr(t0.Add(20 * time.Minute)), CreatedBefore: ptr(t0.Add(50 * time.Minute))},
		}
		for _, st := range []dispute.Status{dispute.StatusNeedsResponse, dispute.StatusUnderReview, dispute.StatusWon,
			dispute.StatusLost, dispute.StatusAccepted, dispute.StatusWithdrawn} {
			filters["status "+string(st)] = store.DisputeFilter{Status: st}
		}
		for i, p := range pays {
			filters[fmt.Sprintf("payment %d", i)] = store.DisputeFilter{PaymentID: p.ID}
		}
		for name, f := range filters {
			t.Run(name, func(t *testing.T) {
				want := expect(f)
				empty := name == "unknown party" || name == "party c1 guest payment"
				if len(want) == 0 != empty {
					t.Fatalf("filter %s selects %d disputes; the test data must exercise it", name, len(want))
				}
				for _, size := range []int{1, 3, 7, 100} {
					var got []string
					var after *store.Cursor
					for page := 0; ; page++ {
						ds, err := s.ListDisputes(ctx, f, store.Page{Limit: size, After: after})
						if err != nil {
							t.Fatalf("ListDisputes: %v", err)
						}
						if len(ds) > size {
							t.Fatalf("page of %d with size %d", len(ds), size)
						}
						for _, d := range ds {
							if after != nil && !olderThan(store.DisputeCursor(d), *after) {
								t.Fatalf("size %d: %s after %s is not older", size, d.ID, after.ID)
							}
							wantDispute(t, "listed "+d.ID, d, byID[d.ID].rec)
							c := store.DisputeCursor(d)
							after = &c
							got = append(got, d.ID)
						}
						if len(ds) < size || page > count {
							break
						}
					}
					if !slices.Equal(got, want) {
						t.Fatalf("size %d: got %d %v,\nwant %d %v", size, len(got), got, len(want), want)
					}
				}
			})
		}
		_, err := s.ListDisputes(ctx, store.DisputeFilter{}, store.Page{})
		wantErr(t, err, errs.ErrInvalidArgument, "page size must be positive")
	})
}

// --- journals ------------------------------------------------------------

// The refund journals kept their lines when they moved onto moneyBack.
func TestRefundJournalLinesAreUnchanged(t *testing.T) {
	for _, tt := range []struct{ customer, funding string }{
		{"acct_c", "customer_funding:acct_c"},
		{"", "customer_funding:guest"},
	} {
		rec := store.RefundRecord{ID: "re_01", PaymentID: "pay_01", MerchantID: "acct_m", CustomerID: tt.customer,
			Amount: 1234, Currency: "EUR", Gateway: "stripe", Status: refund.StatusSucceeded, Version: 3}
		for _, want := range []store.Journal{
			{ID: "re_01/refund", PaymentID: "pay_01", Currency: "EUR", At: t0, Lines: []store.JournalLine{
				{Account: "merchant_balance:acct_m", Direction: ledgerentry.DirectionDebit, Amount: 1234},
				{Account: "gateway_clearing:stripe", Direction: ledgerentry.DirectionCredit, Amount: 1234},
				{Account: "gateway_clearing:stripe", Direction: ledgerentry.DirectionDebit, Amount: 1234},
				{Account: tt.funding, Direction: ledgerentry.DirectionCredit, Amount: 1234},
			}},
			{ID: "re_01/refund_failed", PaymentID: "pay_01", Currency: "EUR", At: t0, Lines: []store.JournalLine{
				{Account: tt.funding, Direction: ledgerentry.DirectionDebit, Amount: 1234},
				{Account: "gateway_clearing:stripe", Direction: ledgerentry.DirectionCredit, Amount: 1234},
				{Account: "gateway_clearing:stripe", Direction: ledgerentry.DirectionDebit, Amount: 1234},
				{Account: "merchant_balance:acct_m", Direction: ledgerentry.DirectionCredit, Amount: 1234},
			}},
		} {
			got := store.RefundJournal(rec, t0)
			if strings.HasSuffix(want.ID, "_failed") {
				got = store.RefundReversalJournal(rec, t0)
			}
			wantJournal(t, got, want)
		}
	}
}

func TestDisputeJournals(t *testing.T) {
	for _, tt := range []struct{ customer, funding string }{
		{"acct_c", "customer_funding:acct_c"},
		{"", "customer_funding:guest"},
	} {
		d := store.DisputeRecord{ID: "dp_01", PaymentID: "pay_01", MerchantID: "acct_m", CustomerID: tt.customer,
			Amount: 1000, AmountHeld: 700, Currency: "JPY", Gateway: "sandbox"}
		back := func(amount int64) []store.JournalLine {
			return []store.JournalLine{
				{Account: "merchant_balance:acct_m", Direction: debit, Amount: amount},
				{Account: "gateway_clearing:sandbox", Direction: credit, Amount: amount},
				{Account: "gateway_clearing:sandbox", Direction: debit, Amount: amount},
				{Account: tt.funding, Direction: credit, Amount: amount},
			}
		}
		// The refund is of what the dispute held; the network takes and
		// gives back the whole disputed amount.
		wantJournal(t, store.DisputeRefundJournal(d, t0),
			store.Journal{ID: "dp_01/refund", PaymentID: "pay_01", Currency: "JPY", At: t0, Lines: back(700)})
		wantJournal(t, store.DisputeFundsWithdrawnJournal(d, t0),
			store.Journal{ID: "dp_01/funds_withdrawn", PaymentID: "pay_01", Currency: "JPY", At: t0, Lines: back(1000)})
		wantJournal(t, store.DisputeFundsReinstatedJournal(d, t0),
			store.Journal{ID: "dp_01/funds_reinstated", PaymentID: "pay_01", Currency: "JPY", At: t0, Lines: []store.JournalLine{
				{Account: tt.funding, Direction: debit, Amount: 1000},
				{Account: "gateway_clearing:sandbox", Direction: credit, Amount: 1000},
				{Account: "gateway_clearing:sandbox", Direction: debit, Amount: 1000},
				{Account: "merchant_balance:acct_m", Direction: credit, Amount: 1000},
			}})
	}
}

func wantJournal(t *testing.T, got *store.Journal, want store.Journal) {
	t.Helper()
	if got == nil {
		t.Fatalf("journal %s: nil", want.ID)
	}
	if got.ID != want.ID || got.PaymentID != want.PaymentID || got.Currency != want.Currency ||
		!got.At.Equal(want.At) || !slices.Equal(got.Lines, want.Lines) {
		t.Fatalf("journal:\n got %+v\nwant %+v", *got, want)
	}
}

// The refund a dispute's outcome made is found by its gateway reference
// (its events have no refund row to go to); other references, and "", are
// NotFound.
func TestDisputeByRefundReference(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		other := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0.Add(time.Second))
		// An open dispute, without a refund: "" must not find it.
		mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, t0), p.CustomerID)
		rec := store.DisputeRecordOf(mustCreateDispute(t, s, newDispute(other, dispute.OpenedByCustomer, 300, t0.Add(time.Second)), other.CustomerID))
		lost := settled(rec, dispute.StatusLost, dispute.SettlementPending)
		mustSaveDispute(t, s, lost, nil)
		refunded := settled(lost, dispute.StatusLost, dispute.SettlementRefunded)
		refunded.RefundReference = "re_gw_dispute_refund"
		mustSaveDispute(t, s, refunded, store.DisputeRefundJournal(refunded, refunded.UpdatedAt))

		d, err := s.DisputeByRefundReference(ctx, "re_gw_dispute_refund")
		if err != nil || d.ID != rec.ID {
			t.Fatalf("DisputeByRefundReference = %v, %v; want dispute %s", d, err, rec.ID)
		}
		for _, ref := range []string{"", "re_gw_other"} {
			if _, err := s.DisputeByRefundReference(ctx, ref); !errors.Is(err, errs.ErrNotFound) {
				t.Errorf("DisputeByRefundReference(%q) = %v, want NotFound", ref, err)
			}
		}
	})
}

// The hold a dispute gives back must be on the payment: a payment that
// holds less in disputes than the dispute says (a broken row, whatever
// wrote it) refuses the close, with nothing written, rather than move
// money it does not hold.
func TestSaveDisputeRefusesToReleaseAHoldThePaymentDoesNotHave(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		p := succeededPayment(t, s, ids.New(ids.Account), ids.New(ids.Account), "USD", 1000, t0)
		d := mustCreateDispute(t, s, newDispute(p, dispute.OpenedByCustomer, 400, t0.Add(time.Minute)), p.CustomerID)
		if err := s.Client.Payment.UpdateOneID(p.ID).SetAmountDisputed(100).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for _, next := range []store.DisputeRecord{
			nextDispute(store.DisputeRecordOf(d), dispute.StatusWithdrawn, nil),
			settled(settled(store.DisputeRecordOf(d), dispute.StatusLost, dispute.SettlementPending), dispute.StatusLost, dispute.SettlementRefunded),
		} {
			if next.Settlement == dispute.SettlementRefunded {
				prev := next
				prev.Version--
				prev.Settlement = dispute.SettlementPending
				mustSaveDispute(t, s, prev, nil)
			}
			if _, err := s.SaveDispute(ctx, next, nil); err == nil || !strings.Contains(err.Error(), "holds less in disputes") {
				t.Fatalf("%s/%s: SaveDispute = %v, want a refusal naming the missing hold", next.Status, next.Settlement, err)
			}
			got, err := s.DisputeByID(ctx, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version == next.Version {
				t.Fatalf("%s/%s: the refused save was written: %+v", next.Status, next.Settlement, got)
			}
		}
	})
}

// Who answers a dispute, which outcomes go to the customer, which statuses
// are open: the rules every save and the workflow read.
func TestDisputeRoles(t *testing.T) {
	for by, want := range map[dispute.OpenedBy]dispute.OpenedBy{
		dispute.OpenedByCustomer: dispute.OpenedByMerchant,
		dispute.OpenedByMerchant: dispute.OpenedByCustomer,
		dispute.OpenedByNetwork:  dispute.OpenedByMerchant,
	} {
		if got := store.Respondent(by); got != want {
			t.Errorf("Respondent(%s) = %s, want %s", by, got, want)
		}
		if got := (store.DisputeRecord{OpenedBy: by}).Respondent(); got != want {
			t.Errorf("DisputeRecord{OpenedBy: %s}.Respondent() = %s, want %s", by, got, want)
		}
	}
	for st, want := range map[dispute.Status][2]bool{ // {open, customer prevails}
		dispute.StatusNeedsResponse: {true, false},
		dispute.StatusUnderReview:   {true, false},
		dispute.StatusWon:           {false, false},
		dispute.StatusLost:          {false, true},
		dispute.StatusAccepted:      {false, true},
		dispute.StatusWithdrawn:     {false, false},
	} {
		if got := [2]bool{store.IsOpen(st), store.CustomerPrevails(st)}; got != want {
			t.Errorf("%s: open, customer prevails = %v, want %v", st, got, want)
		}
	}
}
