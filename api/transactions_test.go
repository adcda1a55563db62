package api_test

// Tests of TransactionService (ListTransactions, GetTransaction) and of the
// page tokens every List RPC shares (api/paging.go). The history is seeded
// through the store as the workflows write it: payments saved with their
// capture journals, refunds created and saved with their journals, disputes
// opened and saved, so the transaction rows are the ones the store derives
// in the database transactions that post the journals. No Temporal is
// needed: these RPCs only read.

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/ledgerentry"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/ent/transaction"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/disputes"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

const (
	histUIURL     = "http://temporal-ui.history.test"
	histNamespace = "payments-test"
)

// histT0 has microseconds on purpose: the store keeps them, and page
// tokens carry them.
var histT0 = time.Date(2026, 3, 2, 10, 0, 0, 123456000, time.UTC)

// histSecret is the page token secret of the history's servers, so a test
// can mint tokens with api.Server.PageTokenAt as another instance would.
var histSecret = []byte("transactions-test-page-token-secret")

func histAt(d time.Duration) time.Time { return histT0.Add(d) }

func histTS(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(histAt(d)) }

// withHistoryDeps links workflows into a Temporal UI and keys page tokens
// with histSecret.
func withHistoryDeps(d *api.Deps) {
	d.TemporalUIURL = histUIURL
	d.TemporalNamespace = histNamespace
	d.PageTokenSecret = histSecret
}

// histWorkflowURL is the link GetTransaction gives admins.
func histWorkflowURL(workflowID string) string {
	return histUIURL + "/namespaces/" + histNamespace + "/workflows/" + strings.ReplaceAll(workflowID, "/", "%2F")
}

// histMinter is another instance of the API with the same secret: its
// PageTokenAt mints tokens the test servers accept.
func histMinter(secret []byte) *api.Server {
	return api.New(api.Deps{PageTokenSecret: secret, PasswordParams: cheapPassword})
}

// ---- calling the lists --------------------------------------------------------

// histCall sends req over tr: TransactionService and the List RPCs through
// the generated clients (the harness has none for them), anything else
// through env.call; http+json through env.call always.
func histCall(t *testing.T, e *env, tr transport, authz string, req proto.Message) result {
	t.Helper()
	if tr == httpJSON {
		return e.call(t, tr, authz, req)
	}
	var opts []connect.ClientOption
	switch tr {
	case connectJSON:
		opts = append(opts, connect.WithProtoJSON())
	case grpcProto:
		opts = append(opts, connect.WithGRPC())
	default:
		t.Fatalf("unknown transport %q", tr)
	}
	txns := paymentsv1connect.NewTransactionServiceClient(e.h2c, e.url, opts...)
	c := e.clients[tr]
	ctx := ctxT(t)
	var res proto.Message
	var err error
	switch m := req.(type) {
	case *pb.ListTransactionsRequest:
		res, err = unary(ctx, authz, m, txns.ListTransactions)
	case *pb.GetTransactionRequest:
		res, err = unary(ctx, authz, m, txns.GetTransaction)
	case *pb.ListPaymentsRequest:
		res, err = unary(ctx, authz, m, c.payment.ListPayments)
	case *pb.ListRefundsRequest:
		res, err = unary(ctx, authz, m, c.refund.ListRefunds)
	case *pb.ListDisputesRequest:
		res, err = unary(ctx, authz, m, c.dispute.ListDisputes)
	default:
		return e.call(t, tr, authz, req)
	}
	if err != nil {
		return connectErrResult(t, tr, err)
	}
	return result{tr: tr, resp: res}
}

// histList is one page of ListTransactions, which must succeed.
func histList(t *testing.T, e *env, tr transport, u user, req *pb.ListTransactionsRequest) *pb.ListTransactionsResponse {
	t.Helper()
	return wantOK[*pb.ListTransactionsResponse](t, histCall(t, e, tr, u.authz(), req))
}

// histGet is GetTransaction, which must succeed.
func histGet(t *testing.T, e *env, tr transport, u user, id string) *pb.GetTransactionResponse {
	t.Helper()
	return wantOK[*pb.GetTransactionResponse](t, histCall(t, e, tr, u.authz(), &pb.GetTransactionRequest{Id: id}))
}

// histPageAll pages through req, from its page token, with the page sizes
// of sizes in turn (cycling) and returns every id in order and the number
// of pages. It
// fails on a page larger than asked, an empty page after the first, a row
// seen twice, or a runaway listing.
func histPageAll(t *testing.T, e *env, tr transport, u user, req *pb.ListTransactionsRequest, sizes []int32) (ids []string, pages int) {
	t.Helper()
	seen := map[string]bool{}
	token := req.GetPageToken()
	for {
		r := proto.CloneOf(req)
		r.PageSize, r.PageToken = sizes[pages%len(sizes)], token
		res := histList(t, e, tr, u, r)
		pages++
		limit := int(r.PageSize)
		if limit == 0 {
			limit = 20
		}
		if n := len(res.GetTransactions()); n > limit || (n == 0 && pages > 1) {
			t.Fatalf("page %d (page_size %d) has %d rows", pages, r.PageSize, n)
		}
		for _, x := range res.GetTransactions() {
			if seen[x.GetId()] {
				t.Fatalf("page %d repeats %s", pages, x.GetId())
			}
			seen[x.GetId()] = true
			ids = append(ids, x.GetId())
		}
		token = res.GetNextPageToken()
		if token == "" {
			return ids, pages
		}
		if pages > 100 {
			t.Fatalf("more than 100 pages")
		}
	}
}

// ---- the history ----------------------------------------------------------------

// histRow is what a transaction row should be.
type histRow struct {
	name     string
	id       string
	movement transaction.Movement
	typ      pb.TransactionType
	status   pb.TransactionStatus
	// source, payment: the source's id and its payment's.
	source, payment, merchant, customer, currency, workflow string
	amount                                                  int64
	created                                                 time.Time
	// journal is the journal whose lines GetTransaction shows; nil while
	// no money moved.
	journal *store.Journal
}

// history is the seeded data: two merchants, two customers, an admin and
// eleven movements between them.
//
//	name        merchant customer type     status     amount    created
//	p1          mA       c1       payment  succeeded  +1000 USD  +1m
//	p2          mA       c2       payment  succeeded  +2500 EUR  +2m
//	p3          mB       c1       payment  succeeded  +4000 USD  +3m
//	p4          mB       c2       payment  failed      +700 USD  +4m
//	p5          mA       c1       payment  pending     +300 GBP  +4m (same instant as p4)
//	r1          mA       c1       refund   succeeded   -400 USD  +6m   (of p1)
//	r3          mA       c1       refund   failed      -200 USD  +6m30s (of p1, accepted, then failed)
//	r2          mB       c1       refund   pending     -500 USD  +6m45s (of p3)
//	d1          mB       c1       dispute  pending    -1500 USD  +7m   (of p3, by c1, under review)
//	d2          mA       c2       dispute  succeeded  -2500 EUR  +8m   (of p2, by the network)
//	r3-failure  mA       c1       refund   failed      +200 USD  +9m   (r3's money back)
type history struct {
	mA, mB, c1, c2, admin user
	// rows are newest first.
	rows   []*histRow
	byName map[string]*histRow
	byID   map[string]*histRow
	// timelines are the disputes' timelines as their workflow saved them.
	timelines map[string][]disputes.TimelineEntry
}

func (h *history) row(name string) *histRow {
	r, ok := h.byName[name]
	if !ok {
		panic("no row " + name)
	}
	return r
}

// names renders ids as the rows' names.
func (h *history) names(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if r, ok := h.byID[id]; ok {
			out = append(out, r.name)
		} else {
			out = append(out, "unknown:"+id)
		}
	}
	return out
}

func txnIDs(ts []*pb.Transaction) []string {
	out := make([]string, 0, len(ts))
	for _, x := range ts {
		out = append(out, x.GetId())
	}
	return out
}

// newest puts named rows in the history's order: created_at, then id,
// descending.
func (h *history) newest(names ...string) []string {
	rows := make([]*histRow, 0, len(names))
	for _, n := range names {
		rows = append(rows, h.row(n))
	}
	slices.SortFunc(rows, histNewestFirst)
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.name)
	}
	return out
}

func histNewestFirst(a, b *histRow) int {
	if c := b.created.Compare(a.created); c != 0 {
		return c
	}
	return strings.Compare(b.id, a.id)
}

// ids of named rows, in the history's order.
func (h *history) ids(names ...string) []string {
	var out []string
	for _, n := range h.newest(names...) {
		out = append(out, h.row(n).id)
	}
	return out
}

// histPayment is a payment as its workflow's first save records it.
func histPayment(m, c user, amount int64, currency string, at time.Time) store.PaymentRecord {
	id := ids.NewAt(ids.Payment, at)
	return store.PaymentRecord{
		ID: id, MerchantID: m.acct.GetId(), CustomerID: c.acct.GetId(), Amount: amount, Currency: currency,
		Status: entpayment.StatusProcessing, PaymentMethod: "pm_card_visa",
		MethodType: "card", MethodBrand: "visa", MethodLast4: "4242",
		Gateway: "sandbox", GatewayReference: "pi_hist_" + id, WorkflowID: "payment/" + id,
		Version: 1, CreatedAt: at, UpdatedAt: at,
	}
}

// histCaptureJournal is the capture journal of a succeeded payment, as
// workflows/payment's journalFor builds it.
func histCaptureJournal(p store.PaymentRecord, at time.Time) *store.Journal {
	a := p.AmountReceived
	clearing := "gateway_clearing:" + p.Gateway
	return &store.Journal{
		ID: p.ID + "/capture", PaymentID: p.ID, Currency: p.Currency, At: at,
		Lines: []store.JournalLine{
			{Account: "customer_funding:" + p.CustomerID, Direction: ledgerentry.DirectionDebit, Amount: a},
			{Account: clearing, Direction: ledgerentry.DirectionCredit, Amount: a},
			{Account: clearing, Direction: ledgerentry.DirectionDebit, Amount: a},
			{Account: "merchant_balance:" + p.MerchantID, Direction: ledgerentry.DirectionCredit, Amount: a},
		},
	}
}

// seedHistory registers the parties and writes the history through the
// store, then checks that the store derived the rows the table above says
// (and that the history and the ledger agree).
func seedHistory(t *testing.T, e *env) *history {
	t.Helper()
	ctx := ctxT(t)
	st := e.st
	h := &history{
		mA: e.merchant(t), mB: e.merchant(t), c1: e.customer(t), c2: e.customer(t), admin: e.admin(t),
		byName: map[string]*histRow{}, byID: map[string]*histRow{}, timelines: map[string][]disputes.TimelineEntry{},
	}
	mA, mB, c1, c2 := h.mA.acct.GetId(), h.mB.acct.GetId(), h.c1.acct.GetId(), h.c2.acct.GetId()
	add := func(r *histRow) { h.rows = append(h.rows, r); h.byName[r.name] = r }
	savePay := func(rec store.PaymentRecord, j *store.Journal) {
		t.Helper()
		if _, err := st.SavePayment(ctx, rec, j); err != nil {
			t.Fatalf("SavePayment(%s v%d %s): %v", rec.ID, rec.Version, rec.Status, err)
		}
	}
	const (
		pay  = pb.TransactionType_TRANSACTION_TYPE_PAYMENT
		ref  = pb.TransactionType_TRANSACTION_TYPE_REFUND
		disp = pb.TransactionType_TRANSACTION_TYPE_DISPUTE
		pend = pb.TransactionStatus_TRANSACTION_STATUS_PENDING
		succ = pb.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED
		fail = pb.TransactionStatus_TRANSACTION_STATUS_FAILED
	)

	// Payments. A succeeded one: processing first, then succeeded with
	// its capture journal, as the workflow saves it.
	succeed := func(name string, m, c user, amount int64, currency string, created, paid time.Duration, oneSave bool) store.PaymentRecord {
		t.Helper()
		rec := histPayment(m, c, amount, currency, histAt(created))
		if !oneSave {
			savePay(rec, nil)
			rec.Version++
		}
		rec.Status, rec.AmountReceived, rec.UpdatedAt = entpayment.StatusSucceeded, amount, histAt(paid)
		j := histCaptureJournal(rec, histAt(paid))
		savePay(rec, j)
		add(&histRow{name: name, movement: transaction.MovementPayment, typ: pay, status: succ,
			source: rec.ID, payment: rec.ID, merchant: rec.MerchantID, customer: rec.CustomerID,
			currency: strings.ToUpper(currency), workflow: rec.WorkflowID, amount: amount, created: histAt(created), journal: j})
		return rec
	}
	p1 := succeed("p1", h.mA, h.c1, 1000, "USD", time.Minute, time.Minute+10*time.Second, false)
	// Lower case, saved once: stored (and shown) upper case.
	p2 := succeed("p2", h.mA, h.c2, 2500, "eur", 2*time.Minute, 2*time.Minute, true)
	p3 := succeed("p3", h.mB, h.c1, 4000, "USD", 3*time.Minute, 3*time.Minute+5*time.Second, false)

	p4 := histPayment(h.mB, h.c2, 700, "USD", histAt(4*time.Minute))
	savePay(p4, nil)
	p4.Version, p4.Status, p4.UpdatedAt = 2, entpayment.StatusFailed, histAt(4*time.Minute+3*time.Second)
	p4.FailureCode, p4.FailureMessage = "card_declined", "The card was declined."
	savePay(p4, nil)
	add(&histRow{name: "p4", movement: transaction.MovementPayment, typ: pay, status: fail,
		source: p4.ID, payment: p4.ID, merchant: mB, customer: c2, currency: "USD", workflow: p4.WorkflowID,
		amount: 700, created: histAt(4 * time.Minute)})

	// At the same instant as p4: the order between them is the ids'.
	p5 := histPayment(h.mA, h.c1, 300, "GBP", histAt(4*time.Minute))
	savePay(p5, nil)
	add(&histRow{name: "p5", movement: transaction.MovementPayment, typ: pay, status: pend,
		source: p5.ID, payment: p5.ID, merchant: mA, customer: c1, currency: "GBP", workflow: p5.WorkflowID,
		amount: 300, created: histAt(4 * time.Minute)})

	// Refunds.
	createRefund := func(p store.PaymentRecord, amount int64, at time.Time) store.RefundRecord {
		t.Helper()
		id := ids.NewAt(ids.Refund, at)
		r, _, err := st.CreateRefund(ctx, store.RefundRecord{
			ID: id, PaymentID: p.ID, MerchantID: p.MerchantID, Amount: amount, Currency: p.Currency,
			Reason: refund.ReasonRequestedByCustomer, WorkflowID: "refund/" + id, CreatedAt: at,
		})
		if err != nil {
			t.Fatalf("CreateRefund of %s: %v", p.ID, err)
		}
		return store.RefundRecordOf(r)
	}
	saveRefund := func(rec store.RefundRecord, j *store.Journal) {
		t.Helper()
		if _, err := st.SaveRefund(ctx, rec, j); err != nil {
			t.Fatalf("SaveRefund(%s v%d %s): %v", rec.ID, rec.Version, rec.Status, err)
		}
	}
	refundRow := func(name string, rec store.RefundRecord, status pb.TransactionStatus, j *store.Journal) {
		add(&histRow{name: name, movement: transaction.MovementRefund, typ: ref, status: status,
			source: rec.ID, payment: rec.PaymentID, merchant: rec.MerchantID, customer: rec.CustomerID,
			currency: "USD", workflow: rec.WorkflowID, amount: -rec.Amount, created: rec.CreatedAt, journal: j})
	}

	r1 := createRefund(p1, 400, histAt(6*time.Minute))
	r1.Version, r1.Status, r1.GatewayReference, r1.UpdatedAt = 2, refund.StatusSucceeded, "re_gw_"+r1.ID, histAt(6*time.Minute+20*time.Second)
	r1j := store.RefundJournal(r1, r1.UpdatedAt)
	saveRefund(r1, r1j)
	refundRow("r1", r1, succ, r1j)

	// r3: accepted by the gateway (its money left the balance), then
	// failed (the money came back: a row of its own).
	r3 := createRefund(p1, 200, histAt(6*time.Minute+30*time.Second))
	r3.Version, r3.GatewayReference, r3.UpdatedAt = 2, "re_gw_"+r3.ID, histAt(6*time.Minute+40*time.Second)
	r3j := store.RefundJournal(r3, r3.UpdatedAt)
	saveRefund(r3, r3j)
	r3.Version, r3.Status, r3.FailureReason, r3.UpdatedAt = 3, refund.StatusFailed, "expired_or_canceled_card", histAt(9*time.Minute)
	r3back := store.RefundReversalJournal(r3, r3.UpdatedAt)
	saveRefund(r3, r3back)
	refundRow("r3", r3, fail, r3j)
	add(&histRow{name: "r3-failure", movement: transaction.MovementRefundFailure, typ: ref, status: fail,
		source: r3.ID, payment: p1.ID, merchant: mA, customer: c1, currency: "USD", workflow: r3.WorkflowID,
		amount: 200, created: histAt(9 * time.Minute), journal: r3back})

	r2 := createRefund(p3, 500, histAt(6*time.Minute+45*time.Second))
	refundRow("r2", r2, pend, nil)

	// d1: opened by the customer, then under review.
	at7 := histAt(7 * time.Minute)
	d1id := ids.NewAt(ids.Dispute, at7)
	d1, err := st.CreateDispute(ctx, store.DisputeRecord{
		ID: d1id, PaymentID: p3.ID, OpenedBy: dispute.OpenedByCustomer,
		Reason: dispute.ReasonProductNotReceived, Description: "the parcel never came",
		Amount: 1500, Currency: "USD", ResponseDueBy: at7.Add(7 * 24 * time.Hour), WorkflowID: "dispute/" + d1id,
		Timeline:         []disputes.TimelineEntry{{At: at7, Kind: disputes.KindOpened, Actor: c1, Note: "the parcel never came"}},
		ClaimantEvidence: disputes.Evidence{Explanation: "ordered in February, nothing came"},
		CreatedAt:        at7,
	}, c1)
	if err != nil {
		t.Fatalf("CreateDispute d1: %v", err)
	}
	d1rec := store.DisputeRecordOf(d1)
	d1rec.Version, d1rec.Status, d1rec.UpdatedAt = 2, dispute.StatusUnderReview, histAt(7*time.Minute+30*time.Second)
	d1rec.Timeline = append(slices.Clone(d1rec.Timeline), disputes.TimelineEntry{
		At: d1rec.UpdatedAt, Kind: disputes.KindUnderReview, Actor: disputes.ActorSystem, Note: "both parties answered"})
	if _, err := st.SaveDispute(ctx, d1rec, nil); err != nil {
		t.Fatalf("SaveDispute d1: %v", err)
	}
	h.timelines[d1id] = d1rec.Timeline
	add(&histRow{name: "d1", movement: transaction.MovementDispute, typ: disp, status: pend,
		source: d1id, payment: p3.ID, merchant: mB, customer: c1, currency: "USD", workflow: "dispute/" + d1id,
		amount: -1500, created: at7})

	// d2: the card network's, which takes the funds when it opens.
	at8 := histAt(8 * time.Minute)
	d2id := ids.NewAt(ids.Dispute, at8)
	d2tl := []disputes.TimelineEntry{
		{At: at8, Kind: disputes.KindOpened, Actor: disputes.ActorNetwork, Note: "fraudulent"},
		{At: at8, Kind: disputes.KindFundsWithdrawn, Actor: disputes.ActorNetwork, Note: "funds withdrawn"},
	}
	d2, err := st.CreateDispute(ctx, store.DisputeRecord{
		ID: d2id, PaymentID: p2.ID, OpenedBy: dispute.OpenedByNetwork, Reason: dispute.ReasonFraudulent,
		Amount: 2500, Currency: "EUR", ResponseDueBy: at8.Add(7 * 24 * time.Hour), GatewayReference: "du_" + d2id,
		WorkflowID: "dispute/" + d2id, Timeline: d2tl, CreatedAt: at8,
	}, "")
	if err != nil {
		t.Fatalf("CreateDispute d2: %v", err)
	}
	h.timelines[d2id] = d2tl
	add(&histRow{name: "d2", movement: transaction.MovementDispute, typ: disp, status: succ,
		source: d2id, payment: p2.ID, merchant: mA, customer: c2, currency: "EUR", workflow: "dispute/" + d2id,
		amount: -2500, created: at8, journal: store.DisputeFundsWithdrawnJournal(store.DisputeRecordOf(d2), at8)})

	// The rows the store wrote, against the table.
	for _, r := range h.rows {
		ts, err := st.TransactionsOf(ctx, r.source)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, x := range ts {
			if x.Movement != r.movement {
				continue
			}
			found = true
			r.id = x.ID
			wantJournal := ""
			if r.journal != nil {
				wantJournal = r.journal.ID
			}
			if x.Amount != r.amount || x.Currency != r.currency || x.MerchantID != r.merchant || x.CustomerID != r.customer ||
				!x.CreatedAt.Equal(r.created) || x.JournalID != wantJournal || x.WorkflowID != r.workflow {
				t.Fatalf("seeded %s: row %+v, want %+v", r.name, x, r)
			}
		}
		if !found || !strings.HasPrefix(r.id, ids.Txn) {
			t.Fatalf("seeded %s: no %s row of %s among %d (%q)", r.name, r.movement, r.source, len(ts), r.id)
		}
		h.byID[r.id] = r
	}
	if n := st.Client.Transaction.Query().CountX(ctx); n != len(h.rows) {
		t.Fatalf("%d transaction rows, want %d", n, len(h.rows))
	}
	if err := st.CheckHistory(ctx); err != nil {
		t.Fatalf("seeded history: %v", err)
	}
	slices.SortFunc(h.rows, histNewestFirst)
	return h
}

// all is every row's name.
func (h *history) all() []string {
	var out []string
	for _, r := range h.rows {
		out = append(out, r.name)
	}
	return out
}

// visible is what each party sees, written out rather than derived.
func (h *history) visible() map[string][]string {
	return map[string][]string{
		"mA":    {"p1", "p2", "p5", "r1", "r3", "r3-failure", "d2"},
		"mB":    {"p3", "p4", "r2", "d1"},
		"c1":    {"p1", "p3", "p5", "r1", "r3", "r3-failure", "r2", "d1"},
		"c2":    {"p2", "p4", "d2"},
		"admin": h.all(),
	}
}

func (h *history) users() map[string]user {
	return map[string]user{"mA": h.mA, "mB": h.mB, "c1": h.c1, "c2": h.c2, "admin": h.admin}
}

// checkTxn compares a listed or fetched transaction with its row.
func checkTxn(t *testing.T, what string, got *pb.Transaction, w *histRow) {
	t.Helper()
	var diffs []string
	check := func(field string, got, want any) {
		if got != want {
			diffs = append(diffs, fmt.Sprintf("%s = %v, want %v", field, got, want))
		}
	}
	check("id", got.GetId(), w.id)
	check("type", got.GetType(), w.typ)
	check("source_id", got.GetSourceId(), w.source)
	check("payment_id", got.GetPaymentId(), w.payment)
	check("amount", got.GetAmount(), w.amount)
	check("currency", got.GetCurrency(), w.currency)
	check("status", got.GetStatus(), w.status)
	check("merchant_id", got.GetMerchantId(), w.merchant)
	check("customer_id", got.GetCustomerId(), w.customer)
	check("created_at", got.GetCreatedAt().AsTime().Format(time.RFC3339Nano), w.created.Format(time.RFC3339Nano))
	if got.GetDescription() == "" {
		diffs = append(diffs, "description is empty")
	}
	if got.GetUpdatedAt().AsTime().Before(w.created) {
		diffs = append(diffs, fmt.Sprintf("updated_at %v before created_at %v", got.GetUpdatedAt().AsTime(), w.created))
	}
	if len(diffs) > 0 {
		t.Errorf("%s: transaction %s: %s", what, w.name, strings.Join(diffs, "; "))
	}
}

// checkLedger compares GetTransaction's ledger entries with the journal's
// lines, in order.
func checkLedger(t *testing.T, what string, got []*pb.LedgerEntry, j *store.Journal) {
	t.Helper()
	if j == nil {
		if len(got) != 0 {
			t.Errorf("%s: %d ledger entries, want none (no money moved)", what, len(got))
		}
		return
	}
	if len(got) != len(j.Lines) {
		t.Fatalf("%s: %d ledger entries, want the %d lines of %s", what, len(got), len(j.Lines), j.ID)
	}
	for i, l := range j.Lines {
		e := got[i]
		dir := pb.LedgerDirection_LEDGER_DIRECTION_DEBIT
		if l.Direction == ledgerentry.DirectionCredit {
			dir = pb.LedgerDirection_LEDGER_DIRECTION_CREDIT
		}
		if e.GetJournalId() != j.ID || e.GetLine() != int32(i) || e.GetAccount() != l.Account || e.GetDirection() != dir ||
			e.GetAmount() != l.Amount || e.GetCurrency() != strings.ToUpper(j.Currency) || !e.GetCreatedAt().AsTime().Equal(j.At) {
			t.Errorf("%s: ledger entry %d = %v, want %s line %d %s %s %d %s at %v", what, i, e, j.ID, i, l.Account, dir, l.Amount,
				strings.ToUpper(j.Currency), j.At)
		}
	}
}

func timelineKinds(tl []*pb.TimelineEntry) []string {
	var out []string
	for _, e := range tl {
		out = append(out, e.GetKind())
	}
	return out
}

// checkTimelineOrder: oldest first, none without a time.
func checkTimelineOrder(t *testing.T, what string, tl []*pb.TimelineEntry) {
	t.Helper()
	for i, e := range tl {
		if e.GetAt() == nil || e.GetAt().AsTime().IsZero() {
			t.Errorf("%s: timeline entry %d (%s) has no time", what, i, e.GetKind())
		}
		if i > 0 && e.GetAt().AsTime().Before(tl[i-1].GetAt().AsTime()) {
			t.Errorf("%s: timeline entry %d (%s) is older than the one before: %v", what, i, e.GetKind(), timelineKinds(tl))
		}
	}
}

// ---- 1. who sees what -----------------------------------------------------------

// TestTransactionsRoleScope: merchants and customers see the movements
// they are party to, admins everyone's; merchant_id narrows within that;
// GetTransaction of a movement the caller is no party to is not_found,
// word for word the answer to an id that does not exist. On SQLite and,
// with PAYMENTS_TEST_MYSQL_DSN, on MySQL/MariaDB; not parallel (ForEachDB
// migrates outside the harness's lock).
func TestTransactionsRoleScope(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st, withHistoryDeps)
		h := seedHistory(t, e)
		visible := h.visible()
		users := h.users()

		for _, tr := range allTransports {
			t.Run(string(tr), func(t *testing.T) {
				for who, names := range visible {
					res := histList(t, e, tr, users[who], &pb.ListTransactionsRequest{PageSize: 100})
					if got, want := h.names(txnIDs(res.GetTransactions())), h.newest(names...); !slices.Equal(got, want) {
						t.Errorf("%s lists %q, want %q", who, got, want)
					}
					if res.GetNextPageToken() != "" {
						t.Errorf("%s: a next page token after the whole list", who)
					}
					for _, x := range res.GetTransactions() {
						if r, ok := h.byID[x.GetId()]; ok {
							checkTxn(t, who+" lists", x, r)
						}
					}
				}

				// merchant_id narrows within the caller's own movements.
				for _, tc := range []struct {
					who, merchant string
					want          []string
				}{
					{"mA", h.mB.acct.GetId(), nil},
					{"mB", h.mA.acct.GetId(), nil},
					{"mA", h.mA.acct.GetId(), visible["mA"]},
					{"c1", h.mB.acct.GetId(), []string{"p3", "r2", "d1"}},
					{"c2", h.mA.acct.GetId(), []string{"p2", "d2"}},
					{"admin", h.mA.acct.GetId(), visible["mA"]},
					{"admin", h.mB.acct.GetId(), visible["mB"]},
					{"admin", "acct_01jnobodynobodynobodynobody", nil},
				} {
					res := histList(t, e, tr, users[tc.who], &pb.ListTransactionsRequest{MerchantId: tc.merchant})
					if got, want := h.names(txnIDs(res.GetTransactions())), h.newest(tc.want...); !slices.Equal(got, want) {
						t.Errorf("%s with merchant_id %s lists %q, want %q", tc.who, tc.merchant, got, want)
					}
				}

				// GetTransaction: one's own, or not_found exactly as for an
				// id that does not exist.
				unknown := store.TransactionID("pay_01jnosuchpaymentnosuchpaymt", transaction.MovementPayment, histT0)
				nf := histCall(t, e, tr, h.mA.authz(), &pb.GetTransactionRequest{Id: unknown})
				nf.wantErr(t, want{code: connect.CodeNotFound})
				for who, names := range visible {
					for _, r := range h.rows {
						res := histCall(t, e, tr, users[who].authz(), &pb.GetTransactionRequest{Id: r.id})
						if !slices.Contains(names, r.name) {
							res.wantErr(t, want{code: connect.CodeNotFound, exactMsg: nf.msg})
							if res.resp != nil {
								t.Errorf("%s: GetTransaction of %s answered %v", who, r.name, res.resp)
							}
							continue
						}
						got := wantOK[*pb.GetTransactionResponse](t, res)
						checkTxn(t, who+" gets", got.GetTransaction(), r)
					}
				}
			})
		}

		// A merchant's API key is the merchant.
		secret, _ := e.apiKey(t, h.mA, "history")
		key := user{acct: h.mA.acct, access: secret}
		res := histList(t, e, grpcProto, key, &pb.ListTransactionsRequest{})
		if got, want := h.names(txnIDs(res.GetTransactions())), h.newest(visible["mA"]...); !slices.Equal(got, want) {
			t.Errorf("mA's API key lists %q, want %q", got, want)
		}
		histCall(t, e, connectJSON, key.authz(), &pb.GetTransactionRequest{Id: h.row("d1").id}).
			wantErr(t, want{code: connect.CodeNotFound})
		histGet(t, e, connectJSON, key, h.row("d2").id)
	})
}

// ---- 2. filters and paging ------------------------------------------------------

type histCase struct {
	name string
	who  string
	req  *pb.ListTransactionsRequest
	want []string
}

func historyCases(h *history) []histCase {
	mA, mB, c1, c2 := h.mA.acct.GetId(), h.mB.acct.GetId(), h.c1.acct.GetId(), h.c2.acct.GetId()
	const (
		tPayment = pb.TransactionType_TRANSACTION_TYPE_PAYMENT
		tRefund  = pb.TransactionType_TRANSACTION_TYPE_REFUND
		tDispute = pb.TransactionType_TRANSACTION_TYPE_DISPUTE
		pending  = pb.TransactionStatus_TRANSACTION_STATUS_PENDING
		success  = pb.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED
		failed   = pb.TransactionStatus_TRANSACTION_STATUS_FAILED
	)
	m := time.Minute
	return []histCase{
		{"no filter", "admin", &pb.ListTransactionsRequest{}, h.all()},
		{"type refund, admin", "admin", &pb.ListTransactionsRequest{Type: tRefund}, []string{"r1", "r2", "r3", "r3-failure"}},
		{"type refund, merchant", "mA", &pb.ListTransactionsRequest{Type: tRefund}, []string{"r1", "r3", "r3-failure"}},
		{"type dispute, customer", "c2", &pb.ListTransactionsRequest{Type: tDispute}, []string{"d2"}},
		{"type payment", "admin", &pb.ListTransactionsRequest{Type: tPayment}, []string{"p1", "p2", "p3", "p4", "p5"}},
		{"status pending", "admin", &pb.ListTransactionsRequest{Status: pending}, []string{"p5", "r2", "d1"}},
		{"status failed", "admin", &pb.ListTransactionsRequest{Status: failed}, []string{"p4", "r3", "r3-failure"}},
		{"status succeeded, merchant", "mB", &pb.ListTransactionsRequest{Status: success}, []string{"p3"}},
		{"currency usd (lower case)", "admin", &pb.ListTransactionsRequest{Currency: "usd"},
			[]string{"p1", "p3", "p4", "r1", "r3", "r2", "d1", "r3-failure"}},
		{"currency EUR", "admin", &pb.ListTransactionsRequest{Currency: "EUR"}, []string{"p2", "d2"}},
		{"currency Eur, merchant", "mA", &pb.ListTransactionsRequest{Currency: "Eur"}, []string{"p2", "d2"}},
		{"currency gbp, customer", "c1", &pb.ListTransactionsRequest{Currency: "gbp"}, []string{"p5"}},
		{"created [3m, 6m45s)", "admin", &pb.ListTransactionsRequest{CreatedAfter: histTS(3 * m), CreatedBefore: histTS(6*m + 45*time.Second)},
			[]string{"p3", "p4", "p5", "r1", "r3"}},
		{"created after 8m (inclusive)", "admin", &pb.ListTransactionsRequest{CreatedAfter: histTS(8 * m)}, []string{"d2", "r3-failure"}},
		{"created before 2m (exclusive)", "admin", &pb.ListTransactionsRequest{CreatedBefore: histTS(2 * m)}, []string{"p1"}},
		{"created after = before", "admin", &pb.ListTransactionsRequest{CreatedAfter: histTS(4 * m), CreatedBefore: histTS(4 * m)}, nil},
		{"created after 4m, customer", "c1", &pb.ListTransactionsRequest{CreatedAfter: histTS(4 * m)},
			[]string{"p5", "r1", "r3", "r2", "d1", "r3-failure"}},
		{"amount_max -1: money out", "admin", &pb.ListTransactionsRequest{AmountMax: new(int64(-1))}, []string{"r1", "r3", "r2", "d1", "d2"}},
		{"amount_min 0: money in", "admin", &pb.ListTransactionsRequest{AmountMin: new(int64(0))},
			[]string{"p1", "p2", "p3", "p4", "p5", "r3-failure"}},
		{"amount [-500, 300] inclusive", "admin", &pb.ListTransactionsRequest{AmountMin: new(int64(-500)), AmountMax: new(int64(300))},
			[]string{"p5", "r1", "r3", "r2", "r3-failure"}},
		{"amount exactly 1000", "admin", &pb.ListTransactionsRequest{AmountMin: new(int64(1000)), AmountMax: new(int64(1000))}, []string{"p1"}},
		{"amount_max -1000, merchant", "mB", &pb.ListTransactionsRequest{AmountMax: new(int64(-1000))}, []string{"d1"}},
		{"customer c2, admin", "admin", &pb.ListTransactionsRequest{CustomerId: c2}, []string{"p2", "p4", "d2"}},
		{"customer c2, merchant", "mA", &pb.ListTransactionsRequest{CustomerId: c2}, []string{"p2", "d2"}},
		{"customer c2, customer c1", "c1", &pb.ListTransactionsRequest{CustomerId: c2}, nil},
		{"customer c1, merchant B", "mB", &pb.ListTransactionsRequest{CustomerId: c1}, []string{"p3", "r2", "d1"}},
		{"unknown customer", "admin", &pb.ListTransactionsRequest{CustomerId: "acct_01jnobodynobodynobodynobody"}, nil},
		{"merchant B, admin", "admin", &pb.ListTransactionsRequest{MerchantId: mB}, []string{"p3", "p4", "r2", "d1"}},
		{"merchant A, customer", "c1", &pb.ListTransactionsRequest{MerchantId: mA}, []string{"p1", "p5", "r1", "r3", "r3-failure"}},
		{"combined: succeeded usd payments of 2000 or more", "admin", &pb.ListTransactionsRequest{
			Type: tPayment, Status: success, Currency: "usd", AmountMin: new(int64(2000))}, []string{"p3"}},
		{"combined: failed refunds out, merchant", "mA", &pb.ListTransactionsRequest{
			Type: tRefund, Status: failed, AmountMax: new(int64(-1))}, []string{"r3"}},
		{"combined: merchant A, customer c1, after 5m, money out", "admin", &pb.ListTransactionsRequest{
			MerchantId: mA, CustomerId: c1, CreatedAfter: histTS(5 * m), AmountMax: new(int64(0))}, []string{"r1", "r3"}},
		{"combined: customer's pending usd with merchant B before 7m", "c1", &pb.ListTransactionsRequest{
			MerchantId: mB, Status: pending, Currency: "USD", CreatedBefore: histTS(7 * m)}, []string{"r2"}},
	}
}

// TestTransactionFiltersAndPaging: each filter and combinations of them,
// newest first; paging with page sizes 1 to 3 (and a size that changes
// between pages) gives the whole list once; a token may be used again, and
// with another page size; rows written while a client pages neither
// shift nor repeat the pages after. On SQLite and, with
// PAYMENTS_TEST_MYSQL_DSN, on MySQL/MariaDB.
func TestTransactionFiltersAndPaging(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st, withHistoryDeps)
		h := seedHistory(t, e)
		users := h.users()
		cases := historyCases(h)

		t.Run("filters", func(t *testing.T) {
			for i, tc := range cases {
				tr := allTransports[i%len(allTransports)]
				res := histList(t, e, tr, users[tc.who], proto.CloneOf(tc.req))
				if got, want := h.names(txnIDs(res.GetTransactions())), h.newest(tc.want...); !slices.Equal(got, want) {
					t.Errorf("%s (%s, %s): %q, want %q", tc.name, tc.who, tr, got, want)
				}
				if res.GetNextPageToken() != "" {
					t.Errorf("%s: a next page token after %d rows", tc.name, len(res.GetTransactions()))
				}
			}
		})

		t.Run("paging", func(t *testing.T) {
			for i, tc := range cases {
				want := h.ids(tc.want...)
				for j, sizes := range [][]int32{{1}, {2}, {3}, {1, 3, 2}, {0}} {
					tr := []transport{connectJSON, grpcProto}[(i+j)%2]
					got, pages := histPageAll(t, e, tr, users[tc.who], tc.req, sizes)
					if !slices.Equal(got, want) {
						t.Errorf("%s, page sizes %v (%s): %q, want %q", tc.name, sizes, tr, h.names(got), h.names(want))
					}
					if len(sizes) == 1 {
						size := max(int(sizes[0]), 1)
						if sizes[0] == 0 {
							size = 20
						}
						if wantPages := max(1, (len(want)+size-1)/size); pages != wantPages {
							t.Errorf("%s, page size %d: %d pages for %d rows, want %d (no empty last page)", tc.name, sizes[0], pages, len(want), wantPages)
						}
					}
				}
			}
		})

		t.Run("a token is reusable and the page size may change", func(t *testing.T) {
			req := &pb.ListTransactionsRequest{Currency: "usd", PageSize: 1}
			first := histList(t, e, connectJSON, h.admin, req)
			tok := first.GetNextPageToken()
			if tok == "" {
				t.Fatal("no next page token after 1 of 8 rows")
			}
			wantIDs := h.ids("p1", "p3", "p4", "r1", "r3", "r2", "d1", "r3-failure")
			if got := txnIDs(first.GetTransactions()); !slices.Equal(got, wantIDs[:1]) {
				t.Fatalf("first page %q, wantIDs %q", h.names(got), h.names(wantIDs[:1]))
			}
			for _, tc := range []struct {
				size int32
				tr   transport
			}{{1, grpcProto}, {2, connectJSON}, {5, httpJSON}, {0, grpcProto}, {100, connectJSON}, {2, grpcProto}} {
				r := &pb.ListTransactionsRequest{Currency: "usd", PageSize: tc.size, PageToken: tok}
				res := histList(t, e, tc.tr, h.admin, r)
				n := min(max(int(tc.size), 1), len(wantIDs)-1)
				if tc.size == 0 {
					n = len(wantIDs) - 1
				}
				if got := txnIDs(res.GetTransactions()); !slices.Equal(got, wantIDs[1:1+n]) {
					t.Errorf("page_size %d after the first page (%s): %q, wantIDs %q", tc.size, tc.tr, h.names(got), h.names(wantIDs[1:1+n]))
				}
				if more := 1+n < len(wantIDs); more != (res.GetNextPageToken() != "") {
					t.Errorf("page_size %d: next_page_token %q, wantIDs one: %v", tc.size, res.GetNextPageToken(), more)
				}
			}
			// Another filter is another query.
			histCall(t, e, connectJSON, h.admin.authz(), &pb.ListTransactionsRequest{Currency: "usd", Status: pb.TransactionStatus_TRANSACTION_STATUS_FAILED, PageToken: tok}).
				wantErr(t, want{code: connect.CodeInvalidArgument, field: "page_token"})
		})

		t.Run("the page ties break by id across pages", func(t *testing.T) {
			// p4 and p5 were created at the same instant: page size 1
			// puts a page boundary between them.
			req := &pb.ListTransactionsRequest{CreatedAfter: histTS(4 * time.Minute), CreatedBefore: histTS(5 * time.Minute)}
			got, pages := histPageAll(t, e, grpcProto, h.admin, req, []int32{1})
			if want := h.ids("p4", "p5"); !slices.Equal(got, want) || pages != 2 {
				t.Fatalf("%q in %d pages, want %q in 2", h.names(got), pages, h.names(want))
			}
		})

		// Last: it adds rows.
		t.Run("rows written while paging", func(t *testing.T) {
			req := &pb.ListTransactionsRequest{MerchantId: h.mA.acct.GetId(), PageSize: 3}
			first := histList(t, e, connectJSON, h.admin, req)
			wantAll := h.ids(h.visible()["mA"]...)
			if got := txnIDs(first.GetTransactions()); !slices.Equal(got, wantAll[:3]) {
				t.Fatalf("first page %q, want %q", h.names(got), h.names(wantAll[:3]))
			}
			// A newer movement, and one older than every row.
			ctx := ctxT(t)
			newer := histPayment(h.mA, h.c2, 111, "USD", histAt(20*time.Minute))
			older := histPayment(h.mA, h.c1, 222, "USD", histAt(10*time.Second))
			for _, p := range []store.PaymentRecord{newer, older} {
				if _, err := e.st.SavePayment(ctx, p, nil); err != nil {
					t.Fatal(err)
				}
			}
			olderRow, err := e.st.TransactionsOf(ctx, older.ID)
			if err != nil || len(olderRow) != 1 {
				t.Fatalf("rows of %s: %v %v", older.ID, olderRow, err)
			}
			rest, _ := histPageAll(t, e, grpcProto, h.admin,
				&pb.ListTransactionsRequest{MerchantId: h.mA.acct.GetId(), PageToken: first.GetNextPageToken()}, []int32{3})
			if want := append(slices.Clone(wantAll[3:]), olderRow[0].ID); !slices.Equal(rest, want) {
				t.Fatalf("after the first page: %q, want %q", h.names(rest), h.names(want))
			}
			again := histList(t, e, connectJSON, h.admin, &pb.ListTransactionsRequest{MerchantId: h.mA.acct.GetId(), PageSize: 1})
			if got := again.GetTransactions(); len(got) != 1 || got[0].GetSourceId() != newer.ID {
				t.Fatalf("a fresh listing starts with %v, want the new payment %s", got, newer.ID)
			}
		})
	})
}

// TestTransactionCreatedRangeBelowAMicrosecond: created_after and
// created_before are instants; the store keeps microseconds, but a bound
// between two microseconds must still mean "at or after" and "before". A
// row created at T is not at or after T+1ns, and it is before T+1ns.
func TestTransactionCreatedRangeBelowAMicrosecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withHistoryDeps)
	h := seedHistory(t, e)
	p3 := h.row("p3").created
	for _, tc := range []struct {
		name          string
		after, before time.Time
		want          []string
	}{
		{"after p3 + 1ns excludes p3", p3.Add(time.Nanosecond), histAt(4 * time.Minute), nil},
		{"after p3 + 999ns excludes p3", p3.Add(999 * time.Nanosecond), histAt(4 * time.Minute), nil},
		{"before p3 + 1ns includes p3", histAt(2*time.Minute + time.Second), p3.Add(time.Nanosecond), []string{"p3"}},
		{"[p3, p3 + 1ns) is p3", p3, p3.Add(time.Nanosecond), []string{"p3"}},
	} {
		res := histList(t, e, connectJSON, h.admin, &pb.ListTransactionsRequest{
			CreatedAfter: timestamppb.New(tc.after), CreatedBefore: timestamppb.New(tc.before)})
		if got, want := h.names(txnIDs(res.GetTransactions())), h.newest(tc.want...); !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", tc.name, got, want)
		}
	}
}

// ---- 3. GetTransaction ----------------------------------------------------------

// TestGetTransactionDetail: the source object, the journal's ledger lines
// in order, the source's timeline, the workflow; workflow_url for admins
// only (for everyone with ShowWorkflowURLs, for nobody without a Temporal
// UI).
func TestGetTransactionDetail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withHistoryDeps)
	h := seedHistory(t, e)

	type viewer struct {
		who string
		u   user
	}
	viewersOf := func(r *histRow) []viewer {
		out := []viewer{{"admin", h.admin}}
		for who, names := range h.visible() {
			if who != "admin" && slices.Contains(names, r.name) {
				out = append(out, viewer{who, h.users()[who]})
			}
		}
		return out
	}
	n := 0
	get := func(t *testing.T, r *histRow, v viewer) *pb.GetTransactionResponse {
		t.Helper()
		n++
		tr := allTransports[n%len(allTransports)]
		res := histGet(t, e, tr, v.u, r.id)
		what := fmt.Sprintf("%s as %s (%s)", r.name, v.who, tr)
		checkTxn(t, what, res.GetTransaction(), r)
		checkLedger(t, what, res.GetLedgerEntries(), r.journal)
		checkTimelineOrder(t, what, res.GetTimeline())
		if res.GetWorkflowId() != r.workflow {
			t.Errorf("%s: workflow_id %q, want %q", what, res.GetWorkflowId(), r.workflow)
		}
		wantURL := ""
		if v.who == "admin" {
			wantURL = histWorkflowURL(r.workflow)
		}
		if res.GetWorkflowUrl() != wantURL {
			t.Errorf("%s: workflow_url %q, want %q", what, res.GetWorkflowUrl(), wantURL)
		}
		return res
	}

	t.Run("payments", func(t *testing.T) {
		for _, name := range []string{"p1", "p2", "p3", "p4", "p5"} {
			r := h.row(name)
			for _, v := range viewersOf(r) {
				res := get(t, r, v)
				what := name + " as " + v.who
				p := res.GetPayment()
				if p == nil || res.GetRefund() != nil || res.GetDispute() != nil {
					t.Fatalf("%s: source %T, want the payment", what, res.GetSource())
				}
				if p.GetId() != r.source || p.GetMerchantId() != r.merchant || p.GetCustomerId() != r.customer || p.GetWorkflowId() != r.workflow {
					t.Errorf("%s: payment %v", what, p)
				}
				if v.who != "admin" && p.GetWorkflowUrl() != "" {
					t.Errorf("%s: the source payment shows workflow_url %q", what, p.GetWorkflowUrl())
				}
				kinds := timelineKinds(res.GetTimeline())
				if len(kinds) == 0 || kinds[0] != "payment.created" {
					t.Errorf("%s: timeline %q, want payment.created first", what, kinds)
				}
				wantStep := map[pb.TransactionStatus]string{
					pb.TransactionStatus_TRANSACTION_STATUS_SUCCEEDED: "payment.succeeded",
					pb.TransactionStatus_TRANSACTION_STATUS_FAILED:    "payment.failed",
				}[r.status]
				if wantStep != "" && !slices.Contains(kinds, wantStep) {
					t.Errorf("%s: timeline %q lacks %s", what, kinds, wantStep)
				}
				if r.status == pb.TransactionStatus_TRANSACTION_STATUS_PENDING && slices.Contains(kinds, "payment.succeeded") {
					t.Errorf("%s: a pending payment's timeline says %q", what, kinds)
				}
			}
		}
		// The succeeded payment's lines, spelled out once.
		res := histGet(t, e, connectJSON, h.mA, h.row("p1").id)
		wantAccounts := []string{"customer_funding:" + h.c1.acct.GetId(), "gateway_clearing:sandbox", "gateway_clearing:sandbox",
			"merchant_balance:" + h.mA.acct.GetId()}
		var accounts []string
		for _, l := range res.GetLedgerEntries() {
			accounts = append(accounts, l.GetAccount())
		}
		if !slices.Equal(accounts, wantAccounts) || res.GetLedgerEntries()[3].GetDirection() != pb.LedgerDirection_LEDGER_DIRECTION_CREDIT ||
			res.GetLedgerEntries()[0].GetJournalId() != h.row("p1").source+"/capture" {
			t.Errorf("p1's ledger entries %v, want the capture journal's lines", res.GetLedgerEntries())
		}
	})

	t.Run("refunds", func(t *testing.T) {
		for _, tc := range []struct {
			name, step string
		}{{"r1", "refund.succeeded"}, {"r2", ""}, {"r3", "refund.failed"}, {"r3-failure", "refund.failed"}} {
			r := h.row(tc.name)
			for _, v := range viewersOf(r) {
				res := get(t, r, v)
				what := tc.name + " as " + v.who
				rf := res.GetRefund()
				if rf == nil || res.GetPayment() != nil || res.GetDispute() != nil {
					t.Fatalf("%s: source %T, want the refund", what, res.GetSource())
				}
				if rf.GetId() != r.source || rf.GetPaymentId() != r.payment || rf.GetAmount() != max(r.amount, -r.amount) {
					t.Errorf("%s: refund %v", what, rf)
				}
				kinds := timelineKinds(res.GetTimeline())
				if len(kinds) == 0 || kinds[0] != "refund.created" {
					t.Errorf("%s: timeline %q, want refund.created first", what, kinds)
				}
				if tc.step != "" && !slices.Contains(kinds, tc.step) {
					t.Errorf("%s: timeline %q lacks %s", what, kinds, tc.step)
				}
			}
		}
	})

	t.Run("disputes", func(t *testing.T) {
		for _, name := range []string{"d1", "d2"} {
			r := h.row(name)
			for _, v := range viewersOf(r) {
				res := get(t, r, v)
				what := name + " as " + v.who
				d := res.GetDispute()
				if d == nil || res.GetPayment() != nil || res.GetRefund() != nil {
					t.Fatalf("%s: source %T, want the dispute", what, res.GetSource())
				}
				if d.GetId() != r.source || d.GetPaymentId() != r.payment || d.GetWorkflowId() != r.workflow {
					t.Errorf("%s: dispute %v", what, d)
				}
				wantTL := h.timelines[r.source]
				if len(res.GetTimeline()) != len(wantTL) {
					t.Fatalf("%s: timeline %q, want %d entries", what, timelineKinds(res.GetTimeline()), len(wantTL))
				}
				for i, w := range wantTL {
					g := res.GetTimeline()[i]
					if g.GetKind() != w.Kind || g.GetActor() != w.Actor || g.GetNote() != w.Note || !g.GetAt().AsTime().Equal(w.At) {
						t.Errorf("%s: timeline entry %d = %v, want %+v", what, i, g, w)
					}
				}
			}
		}
	})

	t.Run("ShowWorkflowURLs", func(t *testing.T) {
		dev := newEnv(t, withHistoryDeps, func(d *api.Deps) { d.ShowWorkflowURLs = true })
		hd := seedHistory(t, dev)
		for who, u := range hd.users() {
			for _, name := range []string{"p1", "r1", "d2"} {
				r := hd.row(name)
				if !slices.Contains(hd.visible()[who], name) {
					continue
				}
				if got := histGet(t, dev, grpcProto, u, r.id).GetWorkflowUrl(); got != histWorkflowURL(r.workflow) {
					t.Errorf("dev: %s as %s: workflow_url %q, want %q", name, who, got, histWorkflowURL(r.workflow))
				}
			}
		}
	})

	t.Run("no Temporal UI", func(t *testing.T) {
		plain := newEnv(t)
		hp := seedHistory(t, plain)
		res := histGet(t, plain, connectJSON, hp.admin, hp.row("p1").id)
		if res.GetWorkflowUrl() != "" || res.GetWorkflowId() != hp.row("p1").workflow {
			t.Errorf("without a Temporal UI: workflow_url %q, workflow_id %q", res.GetWorkflowUrl(), res.GetWorkflowId())
		}
	})
}

// ---- 4. bad input ---------------------------------------------------------------

// TestTransactionBadInput: every malformed request is invalid_argument,
// naming the field, on every transport.
func TestTransactionBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withHistoryDeps)
	h := seedHistory(t, e)
	bad := func(field string) want { return want{code: connect.CodeInvalidArgument, field: field} }
	long := "acct_" + strings.Repeat("a", 60)
	rnd := make([]byte, 9+30+16)
	if _, err := rand.Read(rnd); err != nil {
		t.Fatal(err)
	}
	reversed := func(after, before time.Duration) (*timestamppb.Timestamp, *timestamppb.Timestamp) {
		return histTS(after), histTS(before)
	}
	a5, b4 := reversed(5*time.Minute, 4*time.Minute)
	// A microsecond apart.
	a1us, b0 := timestamppb.New(histAt(time.Minute).Add(time.Microsecond)), histTS(time.Minute)
	cases := []struct {
		name string
		req  proto.Message
		w    want
	}{
		{"page_size 101", &pb.ListTransactionsRequest{PageSize: 101}, bad("page_size")},
		{"page_size -1", &pb.ListTransactionsRequest{PageSize: -1}, bad("page_size")},
		{"created_after later than created_before", &pb.ListTransactionsRequest{CreatedAfter: a5, CreatedBefore: b4}, bad("created_after")},
		{"created_after a microsecond after created_before", &pb.ListTransactionsRequest{CreatedAfter: a1us, CreatedBefore: b0}, bad("created_after")},
		{"amount_min > amount_max", &pb.ListTransactionsRequest{AmountMin: new(int64(5)), AmountMax: new(int64(4))},
			want{code: connect.CodeInvalidArgument, violation: "amount_range"}},
		{"amount_min 0 > amount_max -1", &pb.ListTransactionsRequest{AmountMin: new(int64(0)), AmountMax: new(int64(-1))},
			want{code: connect.CodeInvalidArgument, violation: "amount_range"}},
		{"type 99", &pb.ListTransactionsRequest{Type: pb.TransactionType(99)}, bad("type")},
		{"type -1", &pb.ListTransactionsRequest{Type: pb.TransactionType(-1)}, bad("type")},
		{"status 99", &pb.ListTransactionsRequest{Status: pb.TransactionStatus(99)}, bad("status")},
		{"currency US", &pb.ListTransactionsRequest{Currency: "US"}, bad("currency")},
		{"currency U1D", &pb.ListTransactionsRequest{Currency: "U1D"}, bad("currency")},
		{"currency USDD", &pb.ListTransactionsRequest{Currency: "USDD"}, bad("currency")},
		{"currency ZZZ (no such code)", &pb.ListTransactionsRequest{Currency: "ZZZ"}, bad("currency")},
		{"customer_id without acct_", &pb.ListTransactionsRequest{CustomerId: "cus_123"}, bad("customer_id")},
		{"customer_id of a customer's id without prefix", &pb.ListTransactionsRequest{CustomerId: strings.TrimPrefix(h.c1.acct.GetId(), "acct_")}, bad("customer_id")},
		{"merchant_id without acct_", &pb.ListTransactionsRequest{MerchantId: "merchant-1"}, bad("merchant_id")},
		{"customer_id longer than 64", &pb.ListTransactionsRequest{CustomerId: long}, bad("customer_id")},
		{"merchant_id longer than 64", &pb.ListTransactionsRequest{MerchantId: long}, bad("merchant_id")},
		{"page_token longer than 512", &pb.ListTransactionsRequest{PageToken: strings.Repeat("A", 513)}, bad("page_token")},
		{"page_token of 400 characters", &pb.ListTransactionsRequest{PageToken: strings.Repeat("A", 400)}, bad("page_token")},
		{"page_token not base64", &pb.ListTransactionsRequest{PageToken: "!!not a token!!"}, bad("page_token")},
		{"page_token random base64", &pb.ListTransactionsRequest{PageToken: base64.RawURLEncoding.EncodeToString(rnd)}, bad("page_token")},
		{"page_token padded std base64", &pb.ListTransactionsRequest{PageToken: base64.StdEncoding.EncodeToString(rnd[:20])}, bad("page_token")},
		{"GetTransaction id pay_", &pb.GetTransactionRequest{Id: h.row("p1").source}, bad("id")},
		{"GetTransaction id without prefix", &pb.GetTransactionRequest{Id: strings.TrimPrefix(h.row("p1").id, "txn_")}, bad("id")},
		{"GetTransaction id empty", &pb.GetTransactionRequest{}, bad("id")},
		{"GetTransaction id longer than 64", &pb.GetTransactionRequest{Id: "txn_" + strings.Repeat("0", 61)}, bad("id")},
		// The created range, on every list.
		{"ListPayments created range reversed", &pb.ListPaymentsRequest{CreatedAfter: a5, CreatedBefore: b4}, bad("created_after")},
		{"ListRefunds created range reversed", &pb.ListRefundsRequest{CreatedAfter: a5, CreatedBefore: b4}, bad("created_after")},
		{"ListDisputes created range reversed", &pb.ListDisputesRequest{CreatedAfter: a5, CreatedBefore: b4}, bad("created_after")},
		{"ListPayments page_size 101", &pb.ListPaymentsRequest{PageSize: 101}, bad("page_size")},
		{"ListRefunds page_size -1", &pb.ListRefundsRequest{PageSize: -1}, bad("page_size")},
		{"ListPayments random page_token", &pb.ListPaymentsRequest{PageToken: base64.RawURLEncoding.EncodeToString(rnd)}, bad("page_token")},
		{"ListRefunds random page_token", &pb.ListRefundsRequest{PageToken: base64.RawURLEncoding.EncodeToString(rnd)}, bad("page_token")},
		{"ListDisputes random page_token", &pb.ListDisputesRequest{PageToken: base64.RawURLEncoding.EncodeToString(rnd)}, bad("page_token")},
	}
	for _, tc := range cases {
		for _, tr := range allTransports {
			for _, u := range []user{h.mA, h.admin} {
				t.Run(tc.name+"/"+string(tr)+"/"+u.acct.GetRole().String(), func(t *testing.T) {
					r := histCall(t, e, tr, u.authz(), tc.req)
					r.wantErr(t, tc.w)
					if r.resp != nil {
						t.Errorf("answered %v", r.resp)
					}
				})
			}
		}
	}
	// The edges that are valid.
	for _, req := range []*pb.ListTransactionsRequest{
		{PageSize: 100}, {PageSize: 1}, {Currency: "usd"},
		{AmountMin: new(int64(-5)), AmountMax: new(int64(-5))},
		{CreatedAfter: histTS(time.Minute), CreatedBefore: histTS(time.Minute)},
		{Type: pb.TransactionType_TRANSACTION_TYPE_UNSPECIFIED, Status: pb.TransactionStatus_TRANSACTION_STATUS_UNSPECIFIED},
		{CustomerId: "acct_" + strings.Repeat("a", 59)},
	} {
		histList(t, e, connectJSON, h.mA, req)
	}
}

// ---- page tokens ------------------------------------------------------------------

// histListKinds are the List RPCs sharing listPage: a request with only a
// page size and token, one with another filter, and the ids of a response.
var histListKinds = []struct {
	kind     string
	req      func(size int32, token string) proto.Message
	filtered func(token string) proto.Message
	ids      func(proto.Message) ([]string, string)
}{
	{
		"transactions",
		func(n int32, tok string) proto.Message {
			return &pb.ListTransactionsRequest{PageSize: n, PageToken: tok}
		},
		func(tok string) proto.Message {
			return &pb.ListTransactionsRequest{Type: pb.TransactionType_TRANSACTION_TYPE_PAYMENT, PageToken: tok}
		},
		func(m proto.Message) ([]string, string) {
			r := m.(*pb.ListTransactionsResponse)
			return txnIDs(r.GetTransactions()), r.GetNextPageToken()
		},
	},
	{
		"payments",
		func(n int32, tok string) proto.Message { return &pb.ListPaymentsRequest{PageSize: n, PageToken: tok} },
		func(tok string) proto.Message {
			return &pb.ListPaymentsRequest{Status: pb.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, PageToken: tok}
		},
		func(m proto.Message) ([]string, string) {
			r := m.(*pb.ListPaymentsResponse)
			var out []string
			for _, x := range r.GetPayments() {
				out = append(out, x.GetId())
			}
			return out, r.GetNextPageToken()
		},
	},
	{
		"refunds",
		func(n int32, tok string) proto.Message { return &pb.ListRefundsRequest{PageSize: n, PageToken: tok} },
		func(tok string) proto.Message {
			return &pb.ListRefundsRequest{Status: pb.RefundStatus_REFUND_STATUS_SUCCEEDED, PageToken: tok}
		},
		func(m proto.Message) ([]string, string) {
			r := m.(*pb.ListRefundsResponse)
			var out []string
			for _, x := range r.GetRefunds() {
				out = append(out, x.GetId())
			}
			return out, r.GetNextPageToken()
		},
	},
	{
		"disputes",
		func(n int32, tok string) proto.Message { return &pb.ListDisputesRequest{PageSize: n, PageToken: tok} },
		func(tok string) proto.Message {
			return &pb.ListDisputesRequest{Status: pb.DisputeStatus_DISPUTE_STATUS_NEEDS_RESPONSE, PageToken: tok}
		},
		func(m proto.Message) ([]string, string) {
			r := m.(*pb.ListDisputesResponse)
			var out []string
			for _, x := range r.GetDisputes() {
				out = append(out, x.GetId())
			}
			return out, r.GetNextPageToken()
		},
	},
}

// histEdits are one-byte edits of a token: each byte of its decoded form
// flipped in turn, one byte cut or added, and each character but the last
// of its text replaced (the last character of unpadded base64 may carry
// bits the decoder ignores).
func histEdits(t *testing.T, token string) map[string]string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("the server's token %q is not unpadded base64url: %v", token, err)
	}
	out := map[string]string{}
	for i := range raw {
		b := slices.Clone(raw)
		b[i] ^= 0x01
		out[fmt.Sprintf("byte %d flipped", i)] = base64.RawURLEncoding.EncodeToString(b)
		b[i] ^= 0x81
		out[fmt.Sprintf("byte %d high bit flipped", i)] = base64.RawURLEncoding.EncodeToString(b)
	}
	out["last byte cut"] = base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1])
	out["a byte added"] = base64.RawURLEncoding.EncodeToString(append(slices.Clone(raw), 0))
	out["first byte cut"] = base64.RawURLEncoding.EncodeToString(raw[1:])
	for i := range len(token) - 1 {
		c := byte('A')
		if token[i] == 'A' {
			c = 'B'
		}
		out[fmt.Sprintf("character %d replaced", i)] = token[:i] + string(c) + token[i+1:]
	}
	out["padded"] = token + "=="
	out["standard alphabet"] = base64.StdEncoding.EncodeToString(raw)
	return out
}

// TestPageTokensAreBound: a page token is good for the next page of the
// same list, for the same account and the same filters, and nothing else:
// edited by one byte, random, of another list, of other filters, of
// another account, or from another deployment's secret, it is
// invalid_argument on page_token. For every list that shares listPage.
func TestPageTokensAreBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withHistoryDeps)
	h := seedHistory(t, e)
	badToken := want{code: connect.CodeInvalidArgument, field: "page_token"}
	refused := func(t *testing.T, r result, what string) {
		t.Helper()
		if r.ok() {
			t.Errorf("%s: accepted (%v)", what, r.resp)
			return
		}
		r.wantErr(t, badToken)
	}

	// Each list's first page, one row, as the admin; and its whole list.
	tokens := map[string]string{}
	full := map[string][]string{}
	for _, k := range histListKinds {
		all, next := k.ids(wantOK[proto.Message](t, histCall(t, e, connectJSON, h.admin.authz(), k.req(100, ""))))
		if next != "" || len(all) < 2 {
			t.Fatalf("%s: %d rows, next %q; the history has at least 2 of each", k.kind, len(all), next)
		}
		ids, next := k.ids(wantOK[proto.Message](t, histCall(t, e, connectJSON, h.admin.authz(), k.req(1, ""))))
		if next == "" || !slices.Equal(ids, all[:1]) {
			t.Fatalf("%s: first page %q, next %q", k.kind, ids, next)
		}
		tokens[k.kind], full[k.kind] = next, all
	}

	for _, k := range histListKinds {
		tok := tokens[k.kind]
		t.Run(k.kind, func(t *testing.T) {
			// The token works, over every transport, with any page size.
			for i, tr := range allTransports {
				ids, _ := k.ids(wantOK[proto.Message](t, histCall(t, e, tr, h.admin.authz(), k.req(int32(i+1), tok))))
				if want := full[k.kind][1 : 2+min(i, len(full[k.kind])-2)]; !slices.Equal(ids, want) {
					t.Errorf("%s: page after the first: %q, want %q", tr, ids, want)
				}
			}
			// Edited by one byte.
			for what, edited := range histEdits(t, tok) {
				tr := allTransports[len(what)%len(allTransports)]
				refused(t, histCall(t, e, tr, h.admin.authz(), k.req(1, edited)), what)
			}
			// Random, of the same length and of others.
			for _, n := range []int{len(tok), 12, 9 + 1 + 16, 9 + 100 + 16, 9 + 101 + 16} {
				b := make([]byte, n)
				if _, err := rand.Read(b); err != nil {
					t.Fatal(err)
				}
				s := base64.RawURLEncoding.EncodeToString(b)
				if len(s) > n {
					s = s[:n]
				}
				refused(t, histCall(t, e, connectJSON, h.admin.authz(), k.req(1, s)), fmt.Sprintf("random %d characters", len(s)))
			}
			// The same list, other filters.
			refused(t, histCall(t, e, grpcProto, h.admin.authz(), k.filtered(tok)), "other filters")
			// Another list's token.
			for _, other := range histListKinds {
				if other.kind != k.kind {
					refused(t, histCall(t, e, connectJSON, h.admin.authz(), other.req(1, tok)), "used in List "+other.kind)
				}
			}
			// Another account, the same query.
			for who, u := range map[string]user{"mA": h.mA, "mB": h.mB, "c1": h.c1, "another admin": e.admin(t)} {
				refused(t, histCall(t, e, httpJSON, u.authz(), k.req(1, tok)), "presented by "+who)
			}
		})
	}

	t.Run("tokens minted elsewhere", func(t *testing.T) {
		a := auth.Principal{AccountID: h.mA.acct.GetId(), Role: "merchant"}
		r1 := h.row("r1")
		at := store.Cursor{CreatedAt: r1.created, ID: r1.id}
		// Another instance with the same secret: accepted, from there on.
		tok, err := histMinter(histSecret).PageTokenAt("transactions", a, &pb.ListTransactionsRequest{}, at)
		if err != nil {
			t.Fatal(err)
		}
		res := histList(t, e, grpcProto, h.mA, &pb.ListTransactionsRequest{PageToken: tok})
		if got, want := h.names(txnIDs(res.GetTransactions())), h.newest("p1", "p2", "p5"); !slices.Equal(got, want) {
			t.Errorf("after r1: %q, want %q", got, want)
		}
		// Another secret, another kind, another account, another query.
		other, err := histMinter([]byte("another deployment's secret")).PageTokenAt("transactions", a, &pb.ListTransactionsRequest{}, at)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, histCall(t, e, connectJSON, h.mA.authz(), &pb.ListTransactionsRequest{PageToken: other}), "another secret")
		for _, kind := range []string{"payments", "refunds", "disputes", "Transactions", "transactions "} {
			tk, err := histMinter(histSecret).PageTokenAt(kind, a, &pb.ListTransactionsRequest{}, at)
			if err != nil {
				t.Fatal(err)
			}
			refused(t, histCall(t, e, connectJSON, h.mA.authz(), &pb.ListTransactionsRequest{PageToken: tk}), "minted for "+kind)
		}
		refused(t, histCall(t, e, connectJSON, h.mB.authz(), &pb.ListTransactionsRequest{PageToken: tok}), "minted for mA, presented by mB")
		refused(t, histCall(t, e, connectJSON, h.mA.authz(), &pb.ListTransactionsRequest{Currency: "USD", PageToken: tok}), "minted for another query")
		if _, err := histMinter(histSecret).PageTokenAt("transactions", a, &pb.GetTransactionRequest{}, at); err == nil {
			t.Error("PageTokenAt minted a token for a request that is not a list's")
		}
	})
}

// ---- 5. a token never reveals another tenant's rows ------------------------------

// TestPageTokenNeverRevealsAnotherTenantsRows: merchant A's token in
// merchant B's hands (or a customer's, or an admin's) is refused, not
// read; and a token that names a position among A's rows, validly minted
// for B, still lists only B's.
func TestPageTokenNeverRevealsAnotherTenantsRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withHistoryDeps)
	h := seedHistory(t, e)
	aRows := h.visible()["mA"]
	for _, tr := range allTransports {
		first := histList(t, e, tr, h.mA, &pb.ListTransactionsRequest{PageSize: 2})
		tok := first.GetNextPageToken()
		if tok == "" {
			t.Fatalf("%s: no next page for mA's %d rows", tr, len(aRows))
		}
		for who, u := range map[string]user{"mB": h.mB, "c1": h.c1, "c2": h.c2, "admin": h.admin} {
			for _, size := range []int32{0, 2, 100} {
				r := histCall(t, e, tr, u.authz(), &pb.ListTransactionsRequest{PageSize: size, PageToken: tok})
				if r.ok() {
					got := h.names(txnIDs(r.resp.(*pb.ListTransactionsResponse).GetTransactions()))
					t.Errorf("%s: %s read mA's token: %q", tr, who, got)
					continue
				}
				r.wantErr(t, want{code: connect.CodeInvalidArgument, field: "page_token"})
			}
		}
		// mA's own token still works, from any of mA's credentials.
		got, _ := histPageAll(t, e, tr, h.mA, &pb.ListTransactionsRequest{PageToken: tok}, []int32{2})
		if want := h.ids(aRows...)[2:]; !slices.Equal(got, want) {
			t.Errorf("%s: mA after its first page: %q, want %q", tr, h.names(got), h.names(want))
		}
	}

	// A token minted for mB whose position is mA's newest row: mB's rows
	// after that instant, never mA's.
	newestA := h.row("r3-failure")
	b := auth.Principal{AccountID: h.mB.acct.GetId(), Role: "merchant"}
	for _, c := range []store.Cursor{
		{CreatedAt: newestA.created, ID: newestA.id},
		{CreatedAt: histAt(time.Hour), ID: "txn_zzzzzzzzzzzzzzzzzzzzzzzzzz"},
	} {
		tok, err := histMinter(histSecret).PageTokenAt("transactions", b, &pb.ListTransactionsRequest{}, c)
		if err != nil {
			t.Fatal(err)
		}
		res := histList(t, e, connectJSON, h.mB, &pb.ListTransactionsRequest{PageToken: tok})
		if got, want := h.names(txnIDs(res.GetTransactions())), h.newest(h.visible()["mB"]...); !slices.Equal(got, want) {
			t.Errorf("mB from %v: %q, want only mB's %q", c, got, want)
		}
	}
}

// TestTransactionEdgeParties: a movement of an account with itself is
// listed once (the party listing reads it as merchant and as customer),
// and a guest's payment is its merchant's alone.
func TestTransactionEdgeParties(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withHistoryDeps)
	ctx := ctxT(t)
	m, c := e.merchant(t), e.customer(t)
	var self, guest []string
	for i := range 3 {
		at := histAt(time.Duration(i) * time.Minute)
		p := histPayment(m, m, int64(100+i), "USD", at)
		g := histPayment(m, c, int64(200+i), "USD", at.Add(30*time.Second))
		g.CustomerID = ""
		for _, rec := range []store.PaymentRecord{p, g} {
			if _, err := e.st.SavePayment(ctx, rec, nil); err != nil {
				t.Fatalf("SavePayment %s: %v", rec.ID, err)
			}
			rows, err := e.st.TransactionsOf(ctx, rec.ID)
			if err != nil || len(rows) != 1 {
				t.Fatalf("rows of %s: %v %v", rec.ID, rows, err)
			}
			if rec.CustomerID == "" {
				guest = append(guest, rows[0].ID)
			} else {
				self = append(self, rows[0].ID)
			}
		}
	}
	var order []string
	for i := 2; i >= 0; i-- {
		order = append(order, guest[i], self[i])
	}
	for _, sizes := range [][]int32{{1}, {2}, {0}} {
		got, _ := histPageAll(t, e, grpcProto, m, &pb.ListTransactionsRequest{}, sizes)
		if !slices.Equal(got, order) {
			t.Errorf("page sizes %v: %q, want %q", sizes, got, order)
		}
	}
	got, _ := histPageAll(t, e, connectJSON, m, &pb.ListTransactionsRequest{CustomerId: m.acct.GetId()}, []int32{1})
	if selfOrder := []string{self[2], self[1], self[0]}; !slices.Equal(got, selfOrder) {
		t.Errorf("the merchant's payments to itself: %q, want %q", got, selfOrder)
	}
	if res := histList(t, e, connectJSON, c, &pb.ListTransactionsRequest{}); len(res.GetTransactions()) != 0 {
		t.Errorf("a customer sees guests' payments: %v", res.GetTransactions())
	}
	histCall(t, e, httpJSON, c.authz(), &pb.GetTransactionRequest{Id: guest[0]}).wantErr(t, want{code: connect.CodeNotFound})
	histGet(t, e, connectJSON, m, guest[0])
}

// TestPageTokenTextIsCanonical: a token is one string. Unpadded base64
// leaves unused bits in the last character of a token whose length is not
// a multiple of 3 bytes, and a lenient decoder ignores them: the token
// edited in its last character would still be accepted.
func TestPageTokenTextIsCanonical(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withHistoryDeps)
	h := seedHistory(t, e)
	tok := histList(t, e, connectJSON, h.admin, &pb.ListTransactionsRequest{PageSize: 1}).GetNextPageToken()
	if tok == "" {
		t.Fatal("no next page token")
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var accepted []string
	for _, c := range alphabet {
		edited := tok[:len(tok)-1] + string(c)
		if edited == tok {
			continue
		}
		if r := histCall(t, e, connectJSON, h.admin.authz(), &pb.ListTransactionsRequest{PageSize: 1, PageToken: edited}); r.ok() {
			accepted = append(accepted, string(c))
		} else {
			r.wantErr(t, want{code: connect.CodeInvalidArgument, field: "page_token"})
		}
	}
	if len(accepted) > 0 {
		t.Errorf("the token %q with its last character %q replaced by any of %q is accepted", tok, tok[len(tok)-1:], accepted)
	}
}
