package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
)

// manualClock is a clock the test moves forward.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestIdempotencyKeyIsTakenOverAfterTheLease: a CreatePayment whose client
// gave up after the workflow started keeps its key in progress (freeing it
// would let a retry start a second payment under a new id); once the lease
// has run out, a retry with the same key takes it over and reaches the SAME
// payment: one row, one charge.
func TestIdempotencyKeyIsTakenOverAfterTheLease(t *testing.T) {
	clock := &manualClock{t: time.Now().UTC()}
	release := make(chan struct{})
	e := newEnv(t, withClock(clock.Now), withCreateHook(func(ctx context.Context, _ gateway.CreateRequest) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	m, c := e.merchant(t), e.customer(t)
	body := pay(m, 4200, "EUR", "pm_card_visa")
	const key = "order-takeover-1"

	// The first client gives up while the gateway is held.
	ctx, cancel := context.WithTimeout(ctxT(t), time.Second)
	first := e.send(ctx, c.Token, "/payments.v1.PaymentService/CreatePayment", body, "Idempotency-Key", key)
	cancel()
	if first.err == nil && first.status == 200 {
		t.Fatalf("the first request should not have finished: %s", first)
	}

	// Within the lease the key is still taken: a quick retry does not start anything.
	ctx, cancel = context.WithTimeout(ctxT(t), 300*time.Millisecond)
	_ = e.send(ctx, c.Token, "/payments.v1.PaymentService/CreatePayment", body, "Idempotency-Key", key)
	cancel()
	if n := e.paymentRows(t); n > 1 {
		t.Fatalf("%d payment rows while the first request holds its key", n)
	}

	close(release)
	clock.Advance(2 * time.Minute)
	r := e.send(ctxT(t), c.Token, "/payments.v1.PaymentService/CreatePayment", body, "Idempotency-Key", key)
	if r.err != nil {
		// Say where it hangs: the payment's workflow, as Temporal shows it.
		var why string
		if ps, err := e.Store.Client.Payment.Query().All(context.Background()); err == nil {
			for _, p := range ps {
				why += e.explain(p.WorkflowID)
			}
		}
		t.Fatalf("the takeover: %s\n%s", r, why)
	}
	p := r.payment(t)
	wantStatus(t, p, "PAYMENT_STATUS_SUCCEEDED")
	if n := e.paymentRows(t); n != 1 {
		t.Fatalf("%d payment rows after the takeover, want 1", n)
	}
	if n := e.gw.charges(); n != 1 {
		t.Fatalf("%d gateway charges, want 1", n)
	}
	// Later replays answer the completed result.
	again := e.post(t, c.Token, "/payments.v1.PaymentService/CreatePayment", body, "Idempotency-Key", key)
	if again.payment(t).Id != p.Id || again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after the takeover: %s", again)
	}
}
