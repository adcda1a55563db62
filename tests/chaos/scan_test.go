package chaos

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/payments-platform/payments/internal/luhn"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
)

// The card data scan: after the run, nothing the platform kept (every row
// of every table, the API's and the worker's logs, every workflow
// history) holds a card number or a security code. The steps never send
// card data (it would be refused); what the scan looks for is card data
// the platform made itself, from the gateway's answers, say.

// panCandidate is a run of 13 to 19 digits, possibly split by spaces or
// dashes, starting with a card brand's prefix (Visa 4, Mastercard 51-55
// and 2221-2720, Amex 34/37, Discover 6011/65, JCB 35, Diners 36/38): so
// that ids and nanosecond timestamps, which start otherwise, are not
// taken for cards. It is a card number if it passes the Luhn check.
//
// Letters delimit a number as digits do, as the platform's own detector
// reads text (api/carddata.go): a digit run inside a hex digest is not
// a card number.
var panCandidate = regexp.MustCompile(`(?:^|[^0-9A-Za-z])((?:4|5[1-5]|2[2-7]|3[4-8]|6011|65)(?:[ -]?[0-9]){11,17})(?:[^0-9A-Za-z]|$)`)

// cvcField is a security code under a card field's name.
var cvcField = regexp.MustCompile(`(?i)"?\b(cvc|cvv|cvv2|cvc2|cid|security_code|card_verification)"?\s*[:=]\s*"?[0-9]{3,4}\b`)

// findCardData counts the card numbers and security codes in text.
func findCardData(text string) (pans, cvcs int, examples []string) {
	for _, m := range panCandidate.FindAllStringSubmatch(text, -1) {
		digits := strings.NewReplacer(" ", "", "-", "").Replace(m[1])
		if len(digits) >= 13 && len(digits) <= 19 && luhn.Valid(digits) {
			pans++
			// Where it was, with the number's last four only.
			at := strings.Index(text, m[1])
			from, to := max(0, at-40), min(len(text), at+len(m[1])+20)
			examples = append(examples, fmt.Sprintf("…%s in %q", digits[len(digits)-4:],
				strings.Replace(text[from:to], m[1], "[card …"+digits[len(digits)-4:]+"]", 1)))
		}
	}
	cvcs = len(cvcField.FindAllString(text, -1))
	return pans, cvcs, examples
}

func (w *world) scanCardData() {
	// Every row of every table.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rows, err := w.c.st.Client.QueryContext(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
	if err != nil {
		w.tally.violate("card data scan: list tables: %v", err)
		return
	}
	var tables []string
	for rows.Next() {
		var name string
		if rows.Scan(&name) == nil {
			tables = append(tables, name)
		}
	}
	rows.Close()
	for _, table := range tables {
		text, err := w.dumpTable(ctx, table)
		if err != nil {
			w.tally.violate("card data scan: table %s: %v", table, err)
			continue
		}
		w.scanText("table "+table, text)
	}
	// The logs.
	for _, p := range []*proc{w.c.api, w.c.worker} {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			w.tally.violate("card data scan: %v", err)
			continue
		}
		w.scanText(p.name+" log", string(b))
	}
	// Every workflow history.
	n, err := w.scanHistories(ctx)
	if err != nil {
		w.tally.violate("card data scan: workflow histories: %v", err)
	}
	w.tally.checkN("card_data_scan_tables", len(tables))
	w.tally.checkN("card_data_scan_workflow_histories", n)
}

func (w *world) scanText(where, text string) {
	pans, cvcs, examples := findCardData(text)
	w.pans += pans
	w.cvcs += cvcs
	if pans > 0 || cvcs > 0 {
		w.tally.violate("card data in %s: %d card numbers (%s), %d security codes", where, pans,
			strings.Join(first(examples, 5), ", "), cvcs)
	}
}

// dumpTable renders every row of table as text.
func (w *world) dumpTable(ctx context.Context, table string) (string, error) {
	rows, err := w.c.st.Client.QueryContext(ctx, "SELECT * FROM `"+table+"`")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return "", err
		}
		for i, v := range vals {
			if bs, ok := v.([]byte); ok {
				v = string(bs)
			}
			fmt.Fprintf(&b, "%s=%v\t", cols[i], v)
		}
		b.WriteByte('\n')
	}
	return b.String(), rows.Err()
}

// scanHistories scans the history of every workflow the run started.
func (w *world) scanHistories(ctx context.Context) (int, error) {
	tc, err := client.DialContext(ctx, client.Options{HostPort: w.c.temporal.Address(), Namespace: "default"})
	if err != nil {
		return 0, err
	}
	defer tc.Close()
	n := 0
	var token []byte
	for {
		res, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", PageSize: 1000, NextPageToken: token})
		if err != nil {
			return n, err
		}
		for _, ex := range res.GetExecutions() {
			it := tc.GetWorkflowHistory(ctx, ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId(), false, 0)
			var b strings.Builder
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					return n, err
				}
				// The binary form: payloads' bytes as they are (JSON
				// would encode them in base64, hiding what they hold).
				raw, _ := proto.Marshal(ev)
				b.Write(raw)
				b.WriteByte('\n')
			}
			w.scanText("workflow "+ex.GetExecution().GetWorkflowId(), b.String())
			n++
		}
		if token = res.GetNextPageToken(); len(token) == 0 {
			return n, nil
		}
	}
}
