package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/payments-platform/payments/internal/gateway"
)

// Faults makes calls to a gateway fail the two ways a network and a
// provider make them fail, for the chaos suite (PAYMENTS_SANDBOX_FAULTS):
//
//   - ErrorBefore: the call fails with a 500 before it reaches the
//     provider, so nothing executed (Stripe's api_error);
//   - TimeoutAfter: the call executed (the money moved, the answer was
//     saved under its idempotency key) and its answer is lost on the way
//     back, as when the connection times out after the provider acted.
//
// Both are Transient errors, so the platform retries them with the same
// idempotency key, and a retry after a lost answer gets the saved one. A
// lookup (Retrieve, Find, RetrieveDispute, RetrieveRefund) only meets
// ErrorBefore: losing the answer of a read changes nothing.
type Faults struct {
	// ErrorBefore and TimeoutAfter are probabilities, from 0 to 1.
	ErrorBefore  float64
	TimeoutAfter float64
}

// Active reports whether any fault is injected.
func (f Faults) Active() bool { return f.ErrorBefore > 0 || f.TimeoutAfter > 0 }

// ParseFaults reads PAYMENTS_SANDBOX_FAULTS: comma-separated
// error_before=<p> and timeout_after=<p>, each p from 0 to 1, e.g.
// "error_before=0.05,timeout_after=0.05". The empty string injects none.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	if strings.TrimSpace(spec) == "" {
		return f, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Faults{}, fmt.Errorf("%q is not name=probability (error_before, timeout_after)", part)
		}
		p, err := strconv.ParseFloat(value, 64)
		if err != nil || p < 0 || p > 1 || p != p {
			return Faults{}, fmt.Errorf("%s=%q: want a probability from 0 to 1", name, value)
		}
		if seen[name] {
			return Faults{}, fmt.Errorf("%s is given twice", name)
		}
		seen[name] = true
		switch name {
		case "error_before":
			f.ErrorBefore = p
		case "timeout_after":
			f.TimeoutAfter = p
		default:
			return Faults{}, fmt.Errorf("%q is not a fault; want error_before or timeout_after", name)
		}
	}
	return f, nil
}

// The kinds of fault, as FaultCounts and the log name them.
const (
	FaultErrorBefore  = "error_before"
	FaultTimeoutAfter = "timeout_after"
)

// Faulty is a gateway.Gateway whose calls meet Faults. Each fault injected
// is logged at warning level ("sandbox: fault injected", with fault, op and
// idempotency_key), which is how the chaos suite counts them across
// processes.
type Faulty struct {
	gateway.Gateway
	faults Faults
	log    *slog.Logger
	// roll returns a number in [0, 1); rand.Float64 unless a test sets it.
	roll func() float64

	mu     sync.Mutex
	counts map[string]int
}

// WithFaults wraps g; with no fault active it returns g itself.
func WithFaults(g gateway.Gateway, f Faults, log *slog.Logger) gateway.Gateway {
	if !f.Active() {
		return g
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Faulty{Gateway: g, faults: f, log: log, roll: rand.Float64, counts: map[string]int{}}
}

// Counts returns how many faults of each kind were injected so far.
func (g *Faulty) Counts() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int, len(g.counts))
	for k, v := range g.counts {
		out[k] = v
	}
	return out
}

func (g *Faulty) injected(ctx context.Context, kind, op, key string) {
	g.mu.Lock()
	g.counts[kind]++
	g.mu.Unlock()
	g.log.WarnContext(ctx, "sandbox: fault injected", "fault", kind, "op", op, "idempotency_key", key)
}

// before fails the call op with a 500, before it executes, with
// probability ErrorBefore.
func (g *Faulty) before(ctx context.Context, op, key string) error {
	if g.faults.ErrorBefore <= 0 || g.roll() >= g.faults.ErrorBefore {
		return nil
	}
	g.injected(ctx, FaultErrorBefore, op, key)
	return &gateway.Error{Kind: gateway.Transient, Code: "api_error", StatusCode: http.StatusInternalServerError,
		Message: "sandbox: an error occurred with our connection to Stripe (injected fault: the request was not executed)"}
}

// after loses the answer of an executed call op with probability
// TimeoutAfter; otherwise it returns err as it is.
func (g *Faulty) after(ctx context.Context, op, key string, err error) error {
	if g.faults.TimeoutAfter <= 0 || g.roll() >= g.faults.TimeoutAfter {
		return err
	}
	g.injected(ctx, FaultTimeoutAfter, op, key)
	return &gateway.Error{Kind: gateway.Transient, Message: "sandbox: " + op +
		": timeout awaiting the response (injected fault: the request was executed, its answer lost)",
		Err: context.DeadlineExceeded}
}

// call runs one changing call through both faults.
func call[T any](ctx context.Context, g *Faulty, op, key string, fn func() (T, error)) (T, error) {
	var zero T
	if err := g.before(ctx, op, key); err != nil {
		return zero, err
	}
	out, err := fn()
	if lost := g.after(ctx, op, key, err); lost != err {
		return zero, lost
	}
	return out, err
}

// look runs one lookup through ErrorBefore only.
func look[T any](ctx context.Context, g *Faulty, op, ref string, fn func() (T, error)) (T, error) {
	var zero T
	if err := g.before(ctx, op, ref); err != nil {
		return zero, err
	}
	return fn()
}

// CreatePayment meets both faults.
func (g *Faulty) CreatePayment(ctx context.Context, r gateway.CreateRequest) (gateway.Result, error) {
	return call(ctx, g, "create_payment", r.IdempotencyKey, func() (gateway.Result, error) { return g.Gateway.CreatePayment(ctx, r) })
}

// Capture meets both faults.
func (g *Faulty) Capture(ctx context.Context, r gateway.CaptureRequest) (gateway.Result, error) {
	return call(ctx, g, "capture", r.IdempotencyKey, func() (gateway.Result, error) { return g.Gateway.Capture(ctx, r) })
}

// Cancel meets both faults.
func (g *Faulty) Cancel(ctx context.Context, r gateway.CancelRequest) (gateway.Result, error) {
	return call(ctx, g, "cancel", r.IdempotencyKey, func() (gateway.Result, error) { return g.Gateway.Cancel(ctx, r) })
}

// Void meets both faults.
func (g *Faulty) Void(ctx context.Context, r gateway.VoidRequest) (gateway.Found, error) {
	return call(ctx, g, "void", r.IdempotencyKey, func() (gateway.Found, error) { return g.Gateway.Void(ctx, r) })
}

// Refund meets both faults.
func (g *Faulty) Refund(ctx context.Context, r gateway.RefundRequest) (gateway.RefundResult, error) {
	return call(ctx, g, "refund", r.IdempotencyKey, func() (gateway.RefundResult, error) { return g.Gateway.Refund(ctx, r) })
}

// UpdateDispute meets both faults.
func (g *Faulty) UpdateDispute(ctx context.Context, r gateway.DisputeUpdateRequest) (gateway.DisputeResult, error) {
	return call(ctx, g, "update_dispute", r.IdempotencyKey, func() (gateway.DisputeResult, error) { return g.Gateway.UpdateDispute(ctx, r) })
}

// CloseDispute meets both faults.
func (g *Faulty) CloseDispute(ctx context.Context, r gateway.DisputeCloseRequest) (gateway.DisputeResult, error) {
	return call(ctx, g, "close_dispute", r.IdempotencyKey, func() (gateway.DisputeResult, error) { return g.Gateway.CloseDispute(ctx, r) })
}

// Retrieve meets ErrorBefore.
func (g *Faulty) Retrieve(ctx context.Context, reference string) (gateway.Result, error) {
	return look(ctx, g, "retrieve", reference, func() (gateway.Result, error) { return g.Gateway.Retrieve(ctx, reference) })
}

// Find meets ErrorBefore.
func (g *Faulty) Find(ctx context.Context, r gateway.FindRequest) (gateway.Found, error) {
	return look(ctx, g, "find", r.PaymentID, func() (gateway.Found, error) { return g.Gateway.Find(ctx, r) })
}
