package chaos

import (
	"slices"
	"testing"
)

// The model is what the platform is held to, so it is tested on its own:
// a wrong model would let a wrong platform pass.

func TestForwardOnly(t *testing.T) {
	ok := [][2]string{
		{"", psProcessing}, {psProcessing, psProcessing}, {psProcessing, psRequiresAction},
		{psProcessing, psSucceeded}, {psRequiresAction, psRequiresCapture}, {psRequiresCapture, psSucceeded},
		{psRequiresCapture, psCanceled}, {psSucceeded, psSucceeded},
	}
	for _, c := range ok {
		if !forward(c[0], c[1]) {
			t.Errorf("forward(%s, %s) = false", c[0], c[1])
		}
	}
	bad := [][2]string{
		{psSucceeded, psProcessing}, {psRequiresCapture, psProcessing}, {psSucceeded, psFailed},
		{psCanceled, psSucceeded}, {psFailed, psRequiresCapture}, {psRequiresCapture, psRequiresAction},
	}
	for _, c := range bad {
		if forward(c[0], c[1]) {
			t.Errorf("forward(%s, %s) = true", c[0], c[1])
		}
	}
}

func TestCreatedStatus(t *testing.T) {
	cases := []struct {
		token    string
		manual   bool
		status   string
		received int64
	}{
		{"pm_card_visa", false, psSucceeded, 500},
		{"pm_card_visa", true, psRequiresCapture, 0},
		{"pm_card_chargeDeclined", false, psFailed, 0},
		{"pm_card_chargeDeclined", true, psFailed, 0},
		{"pm_card_threeDSecure2Required", false, psRequiresAction, 0},
		{"pm_card_authenticationRequired", true, psRequiresAction, 0},
		{"pm_sandbox_flaky", false, psSucceeded, 500},
	}
	for _, c := range cases {
		st, rec := created(methodOf(c.token), c.manual, 500)
		if st != c.status || rec != c.received {
			t.Errorf("created(%s, manual=%v) = %s %d, want %s %d", c.token, c.manual, st, rec, c.status, c.received)
		}
	}
}

// TestMoneyOfAPayment follows one payment through refunds and disputes of
// every outcome and checks what it shows and what its merchant keeps.
func TestMoneyOfAPayment(t *testing.T) {
	p := &mPayment{id: "pay_1", merchant: "m", amount: 1000, currency: "USD", received: 1000, status: psSucceeded}
	check := func(step string, refunded, disputed, left, balance int64) {
		t.Helper()
		r, d := p.amounts()
		if r != refunded || d != disputed || p.left() != left || p.balanceEffect() != balance {
			t.Fatalf("%s: refunded %d disputed %d left %d balance %d; want %d %d %d %d", step, r, d, p.left(),
				p.balanceEffect(), refunded, disputed, left, balance)
		}
	}
	check("paid", 0, 0, 1000, 1000)
	p.refunds = append(p.refunds, &mRefund{id: "re_1", amount: 100})
	check("refund", 100, 0, 900, 900)
	p.refunds = append(p.refunds, &mRefund{id: "re_2", amount: 50, failed: true})
	check("failed refund", 100, 0, 900, 900)
	d := &mDispute{id: "dp_1", openedBy: "customer", amount: 300, status: dsNeedsResponse}
	p.disputes = append(p.disputes, d)
	check("dispute held", 100, 300, 600, 900)
	if p.openDispute() != d {
		t.Fatal("openDispute did not find the open dispute")
	}
	d.status = dsWithdrawn
	check("withdrawn: back on the balance", 100, 0, 900, 900)
	d2 := &mDispute{id: "dp_2", openedBy: "merchant", amount: 200, status: dsUnderReview}
	p.disputes = append(p.disputes, d2)
	check("second dispute", 100, 200, 700, 900)
	d2.status = dsLost
	check("lost: refunded", 300, 0, 700, 700)
	d3 := &mDispute{id: "dp_3", openedBy: "customer", amount: 100, status: dsAccepted}
	p.disputes = append(p.disputes, d3)
	check("accepted: refunded", 400, 0, 600, 600)
	d4 := &mDispute{id: "dp_4", openedBy: "customer", amount: 100, status: dsWon}
	p.disputes = append(p.disputes, d4)
	check("won by the merchant: nothing moves", 400, 0, 600, 600)

	n := &mPayment{id: "pay_2", merchant: "m", amount: 700, currency: "EUR", received: 700, status: psSucceeded}
	nd := &mDispute{id: "dp_n", openedBy: "network", amount: 700, status: dsNeedsResponse}
	n.disputes = append(n.disputes, nd)
	if r, d := n.amounts(); r != 0 || d != 700 || n.balanceEffect() != 0 {
		t.Fatalf("network dispute open: %d %d %d; the funds are withdrawn at once", r, d, n.balanceEffect())
	}
	nd.status = dsWon
	if r, d := n.amounts(); r != 0 || d != 0 || n.balanceEffect() != 700 {
		t.Fatalf("network dispute won: %d %d %d; reinstated", r, d, n.balanceEffect())
	}
	nd.status = dsLost
	if r, d := n.amounts(); r != 0 || d != 700 || n.balanceEffect() != 0 {
		t.Fatalf("network dispute lost: %d %d %d; the amount stays disputed", r, d, n.balanceEffect())
	}
	nd.status = dsAccepted
	if n.balanceEffect() != 0 {
		t.Fatal("network dispute accepted: the funds stay withdrawn")
	}

	m := newModel()
	m.add(p)
	m.add(n)
	m.add(&mPayment{id: "pay_3", merchant: "m2", amount: 5, currency: "JPY", status: psFailed})
	b := m.balances()
	if b["m"]["USD"] != 600 || b["m"]["EUR"] != 0 || len(b["m2"]) != 0 {
		t.Fatalf("balances = %v", b)
	}
}

// TestVolatile: the payments a late change may still move are those with
// a refund of pm_card_refundFail not yet failed, or a network dispute
// under review that its evidence decided; nothing else is settled again.
func TestVolatile(t *testing.T) {
	refundFail, visa := methodOf("pm_card_refundFail"), methodOf("pm_card_visa")
	cases := []struct {
		name string
		p    *mPayment
		want bool
	}{
		{"no refund", &mPayment{method: refundFail}, false},
		{"refundFail refund succeeded", &mPayment{method: refundFail, refunds: []*mRefund{{amount: 1}}}, true},
		{"refundFail refund failed", &mPayment{method: refundFail, refunds: []*mRefund{{amount: 1, failed: true}}}, false},
		{"visa refund", &mPayment{method: visa, refunds: []*mRefund{{amount: 1}}}, false},
		{"network dispute decided at review", &mPayment{method: visa, disputes: []*mDispute{
			{openedBy: "network", status: dsUnderReview, decides: dsWon}}}, true},
		{"network dispute under review, undecided", &mPayment{method: visa, disputes: []*mDispute{
			{openedBy: "network", status: dsUnderReview}}}, false},
		{"network dispute won", &mPayment{method: visa, disputes: []*mDispute{
			{openedBy: "network", status: dsWon, decides: dsWon}}}, false},
		{"platform dispute under review", &mPayment{method: visa, disputes: []*mDispute{
			{openedBy: "customer", status: dsUnderReview, decides: dsWon}}}, false},
	}
	for _, c := range cases {
		if got := volatile(c.p); got != c.want {
			t.Errorf("%s: volatile = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestGenerateIsTheSeeds(t *testing.T) {
	a, b := generate(42, 500, 10), generate(42, 500, 10)
	if !slices.Equal(a, b) {
		t.Fatal("one seed gave two lists")
	}
	if c := generate(43, 500, 10); slices.Equal(a, c) {
		t.Fatal("two seeds gave one list")
	}
	if p := generate(42, 100, 10); !slices.Equal(p, a[:100]) {
		t.Fatal("a shorter run is not a prefix of the longer one: shrinking by prefix would not reproduce")
	}
	kinds := map[string]int{}
	for _, o := range generate(7, 20000, 40) {
		kinds[o.Kind]++
	}
	for _, w := range weights {
		if kinds[w.kind] == 0 {
			t.Errorf("no %s in 20,000 steps", w.kind)
		}
	}
	for _, f := range []string{"kill_worker", "kill_api", "restart_db"} {
		if kinds[f] == 0 {
			t.Errorf("no %s in 20,000 steps", f)
		}
	}
	if kinds["kill_worker"] < 100 || kinds["restart_db"] < 5 {
		t.Errorf("the full run's faults are too few: %v", kinds)
	}
	if n := generate(7, 1000, 0); slices.ContainsFunc(n, func(o op) bool { return o.Kind == "kill_worker" }) {
		t.Error("faults without faultEvery")
	}
	// Every short run meets each kind of fault.
	for seed := range uint64(50) {
		short := generate(seed, 150, 15)
		for _, f := range []string{"kill_worker", "kill_api", "restart_db"} {
			if !slices.ContainsFunc(short, func(o op) bool { return o.Kind == f }) {
				t.Fatalf("seed %d: no %s in a short run", seed, f)
			}
		}
	}
}

func TestFindCardData(t *testing.T) {
	found := []string{
		"4242424242424242", "pan=4242 4242 4242 4242;", "5555-5555-5555-4444", "378282246310005",
		"x 6011111111111117 y", "2223003122003222", `{"number":"4000056655665556"}`,
	}
	for _, s := range found {
		if pans, _, _ := findCardData(s); pans != 1 {
			t.Errorf("findCardData(%q) found %d card numbers, want 1", s, pans)
		}
	}
	clean := []string{
		"4242424242424241",         // fails Luhn
		"1796304655527505439",      // a nanosecond timestamp
		"pay_01m8y1pbj0pfz931mcaw", // an id
		"42424242424242424242",     // 20 digits
		"last4=4242 exp 12/34",
		"9804c442e6ac5c02bde0d9ee6486e4a156bb120d4242424242424242eab2", // inside a hex digest
	}
	for _, s := range clean {
		if pans, _, _ := findCardData(s); pans != 0 {
			t.Errorf("findCardData(%q) found %d card numbers, want none", s, pans)
		}
	}
	for s, want := range map[string]int{`"cvc":"123"`: 1, "cvv=1234": 1, "CVC2: 999": 1, "cvc_check=pass": 0, "cvc": 0} {
		if _, cvcs, _ := findCardData(s); cvcs != want {
			t.Errorf("findCardData(%q) found %d security codes, want %d", s, cvcs, want)
		}
	}
}

func TestShortestFailingPrefix(t *testing.T) {
	for _, c := range []struct{ total, from int }{{1, 1}, {10, 1}, {10, 10}, {10, 7}, {10000, 4242}, {10000, 9999}} {
		asked := 0
		got := shortestFailingPrefix(c.total, func(n int) bool {
			asked++
			if n < 1 || n > c.total {
				t.Fatalf("asked about %d of %d", n, c.total)
			}
			return n >= c.from
		})
		if got != c.from {
			t.Errorf("total %d failing from %d: got %d", c.total, c.from, got)
		}
		if asked > 15 {
			t.Errorf("total %d: %d probes, want about log2", c.total, asked)
		}
	}
}
