package store

import (
	"testing"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"

	"github.com/payments-platform/payments/ent/migrate"
)

// The index a listing reads through, for each scope and filter the API
// offers: the first declared index whose leading columns the filter fixes.
// The EXPLAIN tests (history_explain_test.go) prove on MariaDB that these
// plans are range reads; these pin the choice itself, on every database.
func TestListingIndex(t *testing.T) {
	for _, tc := range []struct {
		table *schema.Table
		eqs   []string
		want  string
	}{
		{migrate.TransactionsTable, nil, "transaction_created_at_id"},
		{migrate.TransactionsTable, []string{"merchant_id"}, "transaction_merchant_id_created_at_id_filters"},
		{migrate.TransactionsTable, []string{"merchant_id", "type", "status", "currency"}, "transaction_merchant_id_created_at_id_filters"},
		{migrate.TransactionsTable, []string{"customer_id"}, "transaction_customer_id_created_at_id"},
		// A merchant looking up one customer reads the customer's rows.
		{migrate.TransactionsTable, []string{"merchant_id", "customer_id"}, "transaction_customer_id_created_at_id"},
		{migrate.TransactionsTable, []string{"customer_id", "merchant_id"}, "transaction_customer_id_created_at_id"},
		{migrate.TransactionsTable, []string{"status"}, "transaction_status_created_at_id"},
		{migrate.TransactionsTable, []string{"type"}, "transaction_type_created_at_id"},
		{migrate.TransactionsTable, []string{"type", "status"}, "transaction_status_created_at_id"},
		// currency has no index of its own in the history.
		{migrate.TransactionsTable, []string{"currency"}, "transaction_created_at_id"},
		// (source_id, movement) and journal_id do not end in (created_at, id).
		{migrate.TransactionsTable, []string{"source_id", "movement", "journal_id"}, "transaction_created_at_id"},
		{migrate.PaymentsTable, []string{"currency"}, "payment_currency_created_at_id"},
		{migrate.PaymentsTable, []string{"merchant_id", "status"}, "payment_merchant_id_created_at_id"},
		{migrate.RefundsTable, []string{"merchant_id", "payment_id"}, "refund_payment_id_created_at_id"},
		{migrate.DisputesTable, []string{"status", "customer_id"}, "dispute_customer_id_created_at_id"},
		{migrate.ReconciliationCasesTable, []string{"status", "payment_id"}, "reconciliationcase_payment_id_created_at_id"},
		{migrate.APIKeysTable, []string{"account_id"}, "apikey_account_id_created_at_id"},
		// (dispatched_at, created_at) ends at created_at: it does not serve.
		{migrate.EventsTable, []string{"dispatched_at"}, "event_created_at_id"},
		{migrate.EventsTable, []string{"merchant_id", "object_id"}, "event_object_id_created_at_id"},
		{migrate.DeliveriesTable, []string{"account_id", "endpoint_id"}, "delivery_endpoint_id_created_at_id"},
		{&schema.Table{Name: "t", Indexes: []*schema.Index{
			{Name: "ends_at_created_at", Columns: []*schema.Column{{Name: "a"}, {Name: "created_at"}}},
			{Name: "created_at_then_other", Columns: []*schema.Column{{Name: "created_at"}, {Name: "a"}}},
		}}, []string{"a"}, ""},
		// A table with no (created_at, id) index gets no hint.
		{migrate.APIKeysTable, nil, ""},
		{migrate.LedgerEntriesTable, nil, ""},
	} {
		lt, ok := listingTables[tc.table]
		if !ok {
			lt = tableOf(tc.table) // a table of the test's own
		}
		if got := listingIndex(lt, tc.eqs); got != tc.want {
			t.Errorf("listingIndex(%s, %v) = %q, want %q", tc.table.Name, tc.eqs, got, tc.want)
		}
	}
}

// The hint names exactly the listing's index, on MySQL only, and leaves the
// rest of the statement as it was.
func TestUseIndex(t *testing.T) {
	query := func(d string, eqs ...string) string {
		s := sql.Dialect(d).Select("id").From(sql.Table(migrate.TransactionsTable.Name))
		s.Where(sql.EQ(s.C("status"), "failed")).OrderBy(sql.Desc(s.C("created_at"))).Limit(3)
		useIndex(listingTables[migrate.TransactionsTable], eqs)(s)
		q, _ := s.Query()
		return q
	}
	if got, want := query(dialect.MySQL, "status"),
		"SELECT `id` FROM `transactions` FORCE INDEX (`transaction_status_created_at_id`) WHERE `transactions`.`status` = ? ORDER BY `transactions`.`created_at` DESC LIMIT 3"; got != want {
		t.Errorf("MySQL:\n got %s\nwant %s", got, want)
	}
	if got, want := query(dialect.SQLite, "status"),
		"SELECT `id` FROM `transactions` WHERE `transactions`.`status` = ? ORDER BY `transactions`.`created_at` DESC LIMIT 3"; got != want {
		t.Errorf("SQLite:\n got %s\nwant %s", got, want)
	}
	s := sql.Dialect(dialect.MySQL).Select("id").From(sql.Table(migrate.APIKeysTable.Name))
	useIndex(listingTables[migrate.APIKeysTable], nil)(s)
	if got, want := func() string { q, _ := s.Query(); return q }(), "SELECT `id` FROM `api_keys`"; got != want {
		t.Errorf("no serving index:\n got %s\nwant %s", got, want)
	}
}

// The hints name indexes as the schema names them; ent's migration
// shortens a name over MySQL's 64 characters (with a hash), which the hint
// would then miss. Every index name must fit (give a long one a
// StorageKey).
func TestIndexNamesFitMySQL(t *testing.T) {
	for _, lt := range listingTables {
		for _, idx := range lt.indexes {
			if len(idx.name) > 64 {
				t.Errorf("table %s: index name %q is %d characters; MySQL allows 64 (set a StorageKey)", lt.name, idx.name, len(idx.name))
			}
		}
	}
}
