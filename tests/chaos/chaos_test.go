// Package chaos proves what a payment platform promises, whatever fails
// and whenever: no money created or lost, no charge made twice. A seeded
// random sequence of operations runs against the real stack (`paymentsd
// serve` and `paymentsd worker` processes, a Temporal dev server, a MariaDB
// server of the suite's own), while the worker and the API are killed with
// SIGKILL, MariaDB is restarted and the sandbox gateway fails calls before
// and after executing them; after every step and at every settle the
// platform is compared with an in-memory reference model (model_test.go),
// and the invariants are checked over the whole database.
//
// `make test` runs the short version (TestChaos); `make chaos` runs the
// full one (PAYMENTS_CHAOS=full: 10,000 steps, then the open-loop load
// levels) and prints the table docs/RELIABILITY.md records. A failure
// prints the seed and the shortest prefix of its steps that still fails,
// found by bisection (PAYMENTS_CHAOS_SHRINK=1; each probe is a fresh
// cluster).
package chaos

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway/sandbox"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// plan is the size of a run.
type plan struct {
	steps       int
	settleEvery int
	faultEvery  int
	faults      string // PAYMENTS_SANDBOX_FAULTS of the worker
	load        bool
	// lanes run the steps: step i of each stretch between two settles is
	// lane i mod lanes's, and the lanes run at the same time (a step
	// mostly waits for the stack, so lanes make a run shorter, and the
	// platform meets concurrent traffic under the faults).
	lanes int
}

var (
	short = plan{steps: 150, settleEvery: 50, faultEvery: 15, faults: "error_before=0.05,timeout_after=0.05", lanes: 2}
	full  = plan{steps: 10000, settleEvery: 250, faultEvery: 40, faults: "error_before=0.05,timeout_after=0.05", load: true, lanes: 4}
)

// chosenPlan is the full plan with PAYMENTS_CHAOS=full, the short one
// otherwise; PAYMENTS_CHAOS_STEPS, if set, changes its number of steps.
func chosenPlan(t *testing.T) (plan, string) {
	p, name := short, "short"
	if os.Getenv("PAYMENTS_CHAOS") == "full" {
		p, name = full, "full"
	}
	if s := os.Getenv("PAYMENTS_CHAOS_STEPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("PAYMENTS_CHAOS_STEPS=%q: want a number of steps", s)
		}
		p.steps, name = n, fmt.Sprintf("%s, %d steps", name, n)
	}
	if s := os.Getenv("PAYMENTS_CHAOS_LANES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 16 {
			t.Fatalf("PAYMENTS_CHAOS_LANES=%q: want a number of lanes, 1 to 16", s)
		}
		p.lanes = n
	}
	return p, name
}

func seedOf(t *testing.T) uint64 {
	if s := os.Getenv("PAYMENTS_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PAYMENTS_CHAOS_SEED=%q: %v", s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// TestChaos is the model run under faults.
func TestChaos(t *testing.T) {
	p, name := chosenPlan(t)
	seed := seedOf(t)
	ops := generate(seed, p.steps, p.faultEvery)
	t.Logf("chaos: %s run, seed %d (PAYMENTS_CHAOS_SEED=%d reproduces its steps), %d steps in %d lanes", name, seed, seed, len(ops), p.lanes)
	start := time.Now()
	lanes, c := runSteps(t, seed, ops, p)
	w := lanes[0]
	report := report(lanes, c, name, seed, time.Since(start))
	var load string
	if p.load && w.tally.violationCount() == 0 {
		load = runLoad(t, w)
	}
	fmt.Println(report + load)
	if err := os.WriteFile(resultPath(name), []byte(report+load), 0o644); err != nil {
		t.Logf("chaos: could not save the report: %v", err)
	}
	if v := w.tally.violations; len(v) > 0 {
		msg := fmt.Sprintf("chaos: %d invariant violations, seed %d:\n  %s", len(v), seed, strings.Join(first(v, 30), "\n  "))
		if os.Getenv("PAYMENTS_CHAOS_SHRINK") != "" {
			n := shrink(t, seed, ops, p)
			msg += fmt.Sprintf("\nshortest failing prefix (%d of %d steps): %s", n, len(ops), describeOps(ops[:n]))
		} else {
			msg += "\n(PAYMENTS_CHAOS_SHRINK=1 finds the shortest failing prefix of the steps)"
		}
		t.Fatal(msg)
	}
}

// resultPath is where a run leaves its table, beside the package.
// It is .chaos/ at the repository's root (ignored by git).
func resultPath(name string) string {
	dir := repoRoot() + "/.chaos"
	_ = os.MkdirAll(dir, 0o755)
	return dir + "/chaos-" + name + ".txt"
}

func first(xs []string, n int) []string {
	if len(xs) > n {
		return append(xs[:n:n], fmt.Sprintf("... and %d more", len(xs)-n))
	}
	return xs
}

// runSteps runs ops on a fresh cluster in p.lanes lanes, settling every
// settleEvery steps and at the end.
func runSteps(t *testing.T, seed uint64, ops []op, p plan) ([]*world, *cluster) {
	c := startCluster(t, clusterOptions{SandboxFaults: p.faults})
	lanes := newLanes(t, c, seed, max(p.lanes, 1))
	halted := lanes[0].halted
	for start := 0; start < len(ops) && !halted.Load(); start += p.settleEvery {
		stretch := ops[start:min(start+p.settleEvery, len(ops))]
		var wg sync.WaitGroup
		for j, w := range lanes {
			wg.Go(func() {
				for i := j; i < len(stretch) && !halted.Load(); i += len(lanes) {
					if w.step(stretch[i]) {
						w.tally.op(stretch[i].Kind)
					} else {
						w.tally.op("skipped (no target)")
					}
				}
			})
		}
		wg.Wait()
		if len(stretch) == p.settleEvery {
			settleAll(lanes)
			t.Logf("chaos: %d/%d steps, %d payments, %d violations", start+len(stretch), len(ops), payments(lanes),
				lanes[0].tally.violationCount())
		}
	}
	settleAll(lanes)
	lanes[0].scanCardData()
	return lanes, c
}

// payments counts the payments the lanes made.
func payments(lanes []*world) int {
	n := 0
	for _, w := range lanes {
		n += len(w.m.order)
	}
	return n
}

// shrink finds, by bisection, the shortest prefix of ops that still fails
// (faults strike at moments of their own, so a prefix that passed once is
// taken as passing); each probe is a fresh cluster.
func shrink(t *testing.T, seed uint64, ops []op, p plan) int {
	return shortestFailingPrefix(len(ops), func(n int) bool {
		failed := false
		t.Run(fmt.Sprintf("shrink-%d", n), func(t *testing.T) {
			lanes, _ := runSteps(t, seed, ops[:n], p)
			failed = lanes[0].tally.violationCount() > 0
		})
		return failed
	})
}

// shortestFailingPrefix is the smallest n in 1..total for which fails(n),
// given that fails(total) and that a prefix of a failing list fails from
// some length on; it asks fails about log2(total) times.
func shortestFailingPrefix(total int, fails func(n int) bool) int {
	lo, hi := 0, total // ops[:lo] passes, ops[:hi] fails
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// report renders the run's table.
func report(lanes []*world, c *cluster, name string, seed uint64, took time.Duration) string {
	w := lanes[0]
	tl := w.tally
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Chaos run (%s): seed %d, %d lanes, %s\n\n", name, seed, len(lanes), took.Round(time.Second))
	ops := 0
	for k, v := range tl.ops {
		if !strings.HasPrefix(k, "skipped") {
			ops += v
		}
	}
	fmt.Fprintf(&b, "| what | count |\n|---|---|\n")
	fmt.Fprintf(&b, "| operations run | %d |\n", ops)
	for _, k := range slices.Sorted(maps.Keys(tl.ops)) {
		fmt.Fprintf(&b, "| &nbsp; %s | %d |\n", k, tl.ops[k])
	}
	fmt.Fprintf(&b, "| payments made | %d |\n", payments(lanes))
	fmt.Fprintf(&b, "| requests retried through faults | %d |\n", tl.retries)
	gw := map[string]int{
		"gateway_error_before (500, not executed)":      c.worker.count(`"msg":"sandbox: fault injected"`, `"fault":"`+sandbox.FaultErrorBefore+`"`),
		"gateway_timeout_after (executed, answer lost)": c.worker.count(`"msg":"sandbox: fault injected"`, `"fault":"`+sandbox.FaultTimeoutAfter+`"`),
	}
	for k, v := range tl.faults {
		gw[k] = v
	}

	for _, k := range slices.Sorted(maps.Keys(gw)) {
		fmt.Fprintf(&b, "| fault: %s | %d |\n", k, gw[k])
	}
	// Not a fault the suite injects: a process that exited while it
	// started (its database or Temporal still coming back), started again
	// a second later as an orchestrator would.
	fmt.Fprintf(&b, "| processes started again after exiting at start | %d |\n", c.api.retries()+c.worker.retries())
	checks := 0
	for _, k := range slices.Sorted(maps.Keys(tl.checks)) {
		checks += tl.checks[k]
		fmt.Fprintf(&b, "| check: %s | %d |\n", k, tl.checks[k])
	}
	fmt.Fprintf(&b, "| invariant checks in all | %d |\n", checks)
	for _, k := range slices.Sorted(maps.Keys(tl.notes)) {
		fmt.Fprintf(&b, "| seen: %s | %d |\n", k, tl.notes[k])
	}
	fmt.Fprintf(&b, "| **violations** | **%d** |\n", len(tl.violations))
	fmt.Fprintf(&b, "| **PANs found** (database, logs, workflow histories) | **%d** |\n", w.pans)
	fmt.Fprintf(&b, "| **CVCs found** | **%d** |\n", w.cvcs)
	return b.String()
}

// runLoad measures CreatePayment's capacity on the cluster, then holds 50%,
// 80% and 100% of it open-loop for 60 s each, and checks that every
// accepted payment is final afterwards.
func runLoad(t *testing.T, w *world) string {
	ctx := context.Background()
	customer, merchant := w.customers[0], w.merchants[0]
	// fire runs on many goroutines at once: its keys come from a counter
	// of its own, not from the run's random source.
	var n atomic.Uint64
	fire := func(ctx context.Context) (string, error) {
		req := &pb.CreatePaymentRequest{MerchantId: merchant.id, Amount: 1000, Currency: "USD",
			PaymentMethod: "pm_card_visa", Description: "load"}
		var res pb.CreatePaymentResponse
		if err := w.api.call(ctx, customer.bearer(), pCreatePayment, req, &res, "chaos-load-"+letters(n.Add(1))); err != nil {
			return "", err
		}
		return res.GetPayment().GetId(), nil
	}
	if err := w.login(customer); err != nil {
		t.Fatalf("chaos: %v", err)
	}
	capacity, err := measureCapacity(ctx, 20*time.Second, 16, fire)
	if err != nil {
		t.Fatalf("chaos: measure capacity: %v", err)
	}
	var levels []loadLevel
	for _, f := range []struct {
		name string
		frac float64
	}{{"50%", 0.5}, {"80%", 0.8}, {"100%", 1.0}} {
		if err := w.login(customer); err != nil {
			t.Fatalf("chaos: %v", err)
		}
		levels = append(levels, openLoop(ctx, f.name, capacity*f.frac, 60*time.Second, 512, fire))
	}
	// No request lost: every accepted payment has succeeded afterwards
	// (a card that is approved), and the books still balance.
	lost := 0
	for _, l := range levels {
		if l.Unfinished > 0 {
			w.tally.violate("load %s: %d requests had not answered when the level ended", l.Name, l.Unfinished)
		}
	}
	deadline := time.Now().Add(settleWindow)
	var ids []string
	for _, l := range levels {
		ids = append(ids, l.IDs...)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for {
			var res pb.GetPaymentResponse
			err := w.as(merchant, pGetPayment, &pb.GetPaymentRequest{Id: id}, &res, "")
			if st := res.GetPayment().GetStatus().String(); err == nil && final(st) {
				if st != psSucceeded {
					w.tally.violate("load: payment %s by pm_card_visa is %s", id, st)
				}
				break
			}
			if time.Now().After(deadline) {
				lost++
				break
			}
			time.Sleep(50 * time.Millisecond) // polling for the workflow to finish
		}
	}
	if lost > 0 {
		w.tally.violate("load: %d accepted payments were not final %s after the load", lost, settleWindow)
	}
	for _, check := range []func(context.Context) error{w.c.st.CheckLedger, w.c.st.CheckHistory} {
		w.tally.check("books_after_the_load")
		if err := check(ctx); err != nil {
			w.tally.violate("after the load: %v", err)
		}
	}
	return "\n## Load held (CreatePayment, open loop)\n\n" + loadTable(capacity, levels) +
		fmt.Sprintf("\nAccepted payments checked final afterwards: %d, not final: %d.\n", len(ids), lost)
}
