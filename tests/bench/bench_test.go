// Package bench measures the platform on a real Temporal dev server: how
// many payments per second CreatePayment completes (sandbox gateway,
// automatic capture), how many refunds per second CreateRefund completes,
// how many disputes per second are opened and decided (OpenDispute then an
// admin's ResolveDispute), against how many empty workflows the same server
// completes, with latency percentiles; and how many history events a
// dispute's whole course takes (reminders, the missed deadline, the
// refund), on a window of seconds instead of days. Run it with `make bench`.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/testenv"
)

// emptyWorkflow is the baseline: start to result, no activities.
func emptyWorkflow(workflow.Context) error { return nil }

// phase runs fn from `clients` goroutines for d and returns the latencies of
// the calls that completed.
func phase(b *testing.B, clients int, d time.Duration, fn func(i int64) error) []time.Duration {
	b.Helper()
	var (
		mu    sync.Mutex
		lats  []time.Duration
		seq   atomic.Int64
		fails atomic.Int64
		wg    sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				start := time.Now()
				if err := fn(seq.Add(1)); err != nil {
					if fails.Add(1) < 5 {
						b.Logf("call failed: %v", err)
					}
					continue
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n := fails.Load(); n > 0 {
		b.Fatalf("%d calls failed", n)
	}
	return lats
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkPlatform runs both phases once (use -benchtime 1x) and reports
// payments/s, empty_workflows/s, their ratio and p50/p99 latencies.
func BenchmarkPlatform(b *testing.B) {
	clients := envInt("BENCH_CLIENTS", 16)
	d := time.Duration(envInt("BENCH_SECONDS", 15)) * time.Second
	// One task queue partition, as `paymentsd dev` runs it: with a single
	// worker, several partitions only add latency (polls wait on one
	// partition while a task sits in another), for both phases alike.
	// BENCH_PARTITIONS=4 measures the server's default instead.
	partitions := strconv.Itoa(envInt("BENCH_PARTITIONS", 1))
	env := testenv.Start(b, testenv.Options{DynamicConfig: map[string]string{
		"matching.numTaskqueueReadPartitions":  partitions,
		"matching.numTaskqueueWritePartitions": partitions,
	},
		// A dispute's course in seconds: the phase's disputes are decided
		// long before, the one left alone runs it all.
		DisputeResponseWindow: courseWindow, DisputeReminders: []time.Duration{courseWindow / 2, courseWindow / 4},
	})
	ctx := context.Background()

	// The baseline worker on its own task queue of the same server.
	const emptyQueue = "bench-empty"
	w := worker.New(env.Temporal, emptyQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(emptyWorkflow, workflow.RegisterOptions{Name: "bench.Empty"})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	hc := testenv.HTTPClient()
	merchant := register(b, hc, env.URL, "bench-merchant@example.com", "ROLE_MERCHANT")
	token := login(b, hc, env.URL, "bench-merchant@example.com")
	admin := adminToken(b, env, hc)
	course := startCourse(b, env, hc, merchant)

	create := func(int64) error {
		body := `{"amount":"1999","currency":"USD","paymentMethod":"pm_card_visa"}`
		res, out, err := post(hc, env.URL+"/payments.v1.PaymentService/CreatePayment", token, body)
		if err != nil {
			return err
		}
		if res != http.StatusOK {
			return fmt.Errorf("CreatePayment: %d %s", res, out)
		}
		var r struct {
			Payment struct{ Status string } `json:"payment"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return err
		}
		if r.Payment.Status != "PAYMENT_STATUS_SUCCEEDED" {
			return fmt.Errorf("payment ended %s", r.Payment.Status)
		}
		return nil
	}
	empty := func(i int64) error {
		run, err := env.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: fmt.Sprintf("bench-empty-%d-%d", time.Now().UnixNano(), i), TaskQueue: emptyQueue,
		}, "bench.Empty")
		if err != nil {
			return err
		}
		return run.Get(ctx, nil)
	}

	// Refunds take 1 minor unit at a time from a pool of payments made
	// first, so that concurrent refunds seldom queue on one payment's row
	// (which would measure that lock, not what a refund costs).
	const poolSize = 256
	pool := make([]string, poolSize)
	for i := range pool {
		id, err := createPayment(hc, env.URL, token, 10_000_000)
		if err != nil {
			b.Fatal(err)
		}
		pool[i] = id
	}
	var next atomic.Int64
	refundOne := func(int64) error {
		payID := pool[next.Add(1)%poolSize]
		res, out, err := post(hc, env.URL+"/payments.v1.RefundService/CreateRefund", token,
			fmt.Sprintf(`{"paymentId":%q,"amount":"1"}`, payID))
		if err != nil {
			return err
		}
		if res != http.StatusOK {
			return fmt.Errorf("CreateRefund: %d %s", res, out)
		}
		var r struct {
			Refund struct{ Status string } `json:"refund"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return err
		}
		if r.Refund.Status != "REFUND_STATUS_SUCCEEDED" {
			return fmt.Errorf("refund ended %s", r.Refund.Status)
		}
		return nil
	}

	// Disputes take 1 minor unit of a payment of their own pool (a payment
	// has one open dispute at a time, and refunds wait while it is open),
	// and an admin decides them at once, won and lost in turn: lost
	// refunds the unit through the gateway.
	dpool := make([]string, poolSize)
	for i := range dpool {
		id, err := createPayment(hc, env.URL, token, 10_000_000)
		if err != nil {
			b.Fatal(err)
		}
		dpool[i] = id
	}
	var nextDispute atomic.Int64
	disputeOne := func(i int64) error {
		payID := dpool[nextDispute.Add(1)%poolSize]
		res, out, err := post(hc, env.URL+"/payments.v1.DisputeService/OpenDispute", token,
			fmt.Sprintf(`{"paymentId":%q,"amount":"1","reason":"DISPUTE_REASON_GENERAL"}`, payID))
		if err != nil {
			return err
		}
		if res != http.StatusOK {
			return fmt.Errorf("OpenDispute: %d %s", res, out)
		}
		var opened struct {
			Dispute struct{ ID, Status string } `json:"dispute"`
		}
		if err := json.Unmarshal(out, &opened); err != nil {
			return err
		}
		outcome, want := "DISPUTE_OUTCOME_WON", "DISPUTE_STATUS_WON"
		if i%2 == 1 {
			outcome, want = "DISPUTE_OUTCOME_LOST", "DISPUTE_STATUS_LOST"
		}
		res, out, err = post(hc, env.URL+"/payments.v1.DisputeService/ResolveDispute", admin,
			fmt.Sprintf(`{"disputeId":%q,"outcome":%q,"note":"bench"}`, opened.Dispute.ID, outcome))
		if err != nil {
			return err
		}
		if res != http.StatusOK {
			return fmt.Errorf("ResolveDispute: %d %s", res, out)
		}
		var decided struct {
			Dispute struct{ Status string } `json:"dispute"`
		}
		if err := json.Unmarshal(out, &decided); err != nil {
			return err
		}
		if decided.Dispute.Status != want {
			return fmt.Errorf("dispute ended %s, want %s", decided.Dispute.Status, want)
		}
		return nil
	}

	// Warm up every path (connections, caches, lazy inits).
	_ = phase(b, clients, 2*time.Second, empty)
	_ = phase(b, clients, 2*time.Second, create)
	_ = phase(b, clients, 2*time.Second, refundOne)
	_ = phase(b, clients, 2*time.Second, disputeOne)

	// The machine's speed drifts (a shared VM): the kinds alternate in
	// short rounds, each round in another order, so that all see the same
	// conditions.
	rounds := envInt("BENCH_ROUNDS", 4)
	slice := d / time.Duration(rounds)
	var emptyLat, payLat, refundLat, disputeLat []time.Duration
	kinds := []func(){
		func() { emptyLat = append(emptyLat, phase(b, clients, slice, empty)...) },
		func() { payLat = append(payLat, phase(b, clients, slice, create)...) },
		func() { refundLat = append(refundLat, phase(b, clients, slice, refundOne)...) },
		func() { disputeLat = append(disputeLat, phase(b, clients, slice, disputeOne)...) },
	}
	b.ResetTimer()
	for r := 0; r < rounds; r++ {
		for k := range kinds {
			kinds[(r+k)%len(kinds)]()
		}
	}
	b.StopTimer()

	emptyRate := float64(len(emptyLat)) / d.Seconds()
	payRate := float64(len(payLat)) / d.Seconds()
	refundRate := float64(len(refundLat)) / d.Seconds()
	disputeRate := float64(len(disputeLat)) / d.Seconds()
	ratio := payRate / emptyRate
	courseEvents := course(ctx)
	b.ReportMetric(payRate, "payments/s")
	b.ReportMetric(emptyRate, "empty_wf/s")
	b.ReportMetric(refundRate, "refunds/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(refundRate/payRate, "refund_ratio")
	b.ReportMetric(disputeRate, "disputes/s")
	b.ReportMetric(disputeRate/payRate, "dispute_ratio")
	b.ReportMetric(float64(courseEvents), "dispute_course_events")
	b.ReportMetric(float64(pct(payLat, 0.50).Microseconds())/1000, "pay_p50_ms")
	b.ReportMetric(float64(pct(payLat, 0.99).Microseconds())/1000, "pay_p99_ms")
	b.ReportMetric(float64(pct(refundLat, 0.50).Microseconds())/1000, "refund_p50_ms")
	b.ReportMetric(float64(pct(emptyLat, 0.50).Microseconds())/1000, "empty_p50_ms")
	b.ReportMetric(float64(pct(emptyLat, 0.99).Microseconds())/1000, "empty_p99_ms")
	ms := func(l []time.Duration, p float64) time.Duration { return pct(l, p).Round(time.Millisecond / 10) }
	fmt.Fprintf(os.Stdout, "\nclients=%d duration=%s per kind in %d alternating rounds, partitions=%s\n"+
		"  CreatePayment:  %7.1f payments/s  p50 %v  p99 %v  (%d payments)\n"+
		"  CreateRefund:   %7.1f refunds/s   p50 %v  p99 %v  (%d refunds)\n"+
		"  open + resolve: %7.1f disputes/s  p50 %v  p99 %v  (%d disputes)\n"+
		"  empty workflow: %7.1f workflows/s p50 %v  p99 %v  (%d workflows)\n"+
		"  ratio payments/empty = %.2f (target >= 0.5); p50 ratio = %.2f (target <= 2)\n"+
		"  ratio refunds/payments = %.2f (target >= 0.9); disputes/payments = %.2f\n"+
		"  a dispute's whole course (2 reminders, deadline missed, refund): %d history events (target < 200)\n",
		clients, d, rounds, partitions,
		payRate, ms(payLat, .5), ms(payLat, .99), len(payLat),
		refundRate, ms(refundLat, .5), ms(refundLat, .99), len(refundLat),
		disputeRate, ms(disputeLat, .5), ms(disputeLat, .99), len(disputeLat),
		emptyRate, ms(emptyLat, .5), ms(emptyLat, .99), len(emptyLat),
		ratio, float64(pct(payLat, .5))/float64(pct(emptyLat, .5)), refundRate/payRate, disputeRate/payRate,
		courseEvents)
	if err := env.Store.CheckLedger(ctx); err != nil {
		b.Fatalf("ledger after the benchmark: %v", err)
	}
}

// createPayment makes a succeeded payment of amount USD cents as the
// merchant and returns its id.
func createPayment(hc *http.Client, base, token string, amount int64) (string, error) {
	res, out, err := post(hc, base+"/payments.v1.PaymentService/CreatePayment", token,
		fmt.Sprintf(`{"amount":"%d","currency":"USD","paymentMethod":"pm_card_visa"}`, amount))
	if err != nil {
		return "", err
	}
	var r struct {
		Payment struct{ ID, Status string } `json:"payment"`
	}
	if res != http.StatusOK || json.Unmarshal(out, &r) != nil || r.Payment.Status != "PAYMENT_STATUS_SUCCEEDED" {
		return "", fmt.Errorf("CreatePayment: %d %s", res, out)
	}
	return r.Payment.ID, nil
}

func post(hc *http.Client, url, token, body string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

func register(b *testing.B, hc *http.Client, base, email, role string) string {
	b.Helper()
	code, out, err := post(hc, base+"/payments.v1.AuthService/Register", "",
		fmt.Sprintf(`{"email":%q,"password":"correct-horse-battery","role":%q}`, email, role))
	if err != nil || code != http.StatusOK {
		b.Fatalf("register: %d %s %v", code, out, err)
	}
	var r struct {
		Account struct{ ID string } `json:"account"`
	}
	_ = json.Unmarshal(out, &r)
	return r.Account.ID
}

func login(b *testing.B, hc *http.Client, base, email string) string {
	b.Helper()
	code, out, err := post(hc, base+"/payments.v1.AuthService/Login", "", fmt.Sprintf(`{"email":%q,"password":"correct-horse-battery"}`, email))
	if err != nil || code != http.StatusOK {
		b.Fatalf("login: %d %s %v", code, out, err)
	}
	var r struct {
		AccessToken string `json:"accessToken"`
	}
	_ = json.Unmarshal(out, &r)
	return r.AccessToken
}

// courseWindow is the bench's dispute response window: long enough that
// every dispute of the phase is decided before it, short enough to watch
// one run its whole course.
const courseWindow = 40 * time.Second

// adminToken makes an admin (admins never register) and logs it in.
func adminToken(b *testing.B, env *testenv.Env, hc *http.Client) string {
	b.Helper()
	const email = "bench-admin@example.com"
	hash, err := auth.HashPassword("correct-horse-battery", auth.DefaultPasswordParams)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := env.Store.CreateAccount(context.Background(), store.NewAccount{Email: email, PasswordHash: hash, Role: account.RoleAdmin}); err != nil {
		b.Fatal(err)
	}
	return login(b, hc, env.URL, email)
}

// startCourse has a customer pay the merchant and dispute it, and leaves
// the dispute alone: reminded twice, the merchant misses the deadline,
// loses by default, and the customer is refunded. The returned function
// waits for the dispute's workflow to end and counts its history events.
func startCourse(b *testing.B, env *testenv.Env, hc *http.Client, merchantID string) func(context.Context) int {
	b.Helper()
	register(b, hc, env.URL, "bench-customer@example.com", "ROLE_CUSTOMER")
	customer := login(b, hc, env.URL, "bench-customer@example.com")
	code, out, err := post(hc, env.URL+"/payments.v1.PaymentService/CreatePayment", customer,
		fmt.Sprintf(`{"merchantId":%q,"amount":"2500","currency":"USD","paymentMethod":"pm_card_visa"}`, merchantID))
	if err != nil || code != http.StatusOK {
		b.Fatalf("the course's payment: %d %s %v", code, out, err)
	}
	var p struct {
		Payment struct{ ID string } `json:"payment"`
	}
	_ = json.Unmarshal(out, &p)
	code, out, err = post(hc, env.URL+"/payments.v1.DisputeService/OpenDispute", customer,
		fmt.Sprintf(`{"paymentId":%q,"reason":"DISPUTE_REASON_PRODUCT_NOT_RECEIVED"}`, p.Payment.ID))
	if err != nil || code != http.StatusOK {
		b.Fatalf("the course's dispute: %d %s %v", code, out, err)
	}
	var d struct {
		Dispute struct{ WorkflowID string } `json:"dispute"`
	}
	_ = json.Unmarshal(out, &d)
	return func(ctx context.Context) int {
		if err := env.Temporal.GetWorkflow(ctx, d.Dispute.WorkflowID, "").Get(ctx, nil); err != nil {
			b.Fatalf("the course's dispute workflow: %v", err)
		}
		n := 0
		it := env.Temporal.GetWorkflowHistory(ctx, d.Dispute.WorkflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				b.Fatalf("the course's history: %v", err)
			}
			n++
		}
		return n
	}
}
