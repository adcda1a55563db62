package sandbox

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/payments-platform/payments/internal/gateway"
)

func TestParseFaults(t *testing.T) {
	good := map[string]Faults{
		"":                                    {},
		"  ":                                  {},
		"error_before=0.05":                   {ErrorBefore: 0.05},
		"timeout_after=1":                     {TimeoutAfter: 1},
		"error_before=0, timeout_after=0.25":  {TimeoutAfter: 0.25},
		"timeout_after=0.5,error_before=0.01": {ErrorBefore: 0.01, TimeoutAfter: 0.5},
	}
	for spec, want := range good {
		got, err := ParseFaults(spec)
		if err != nil || got != want {
			t.Errorf("ParseFaults(%q) = %+v, %v; want %+v", spec, got, err, want)
		}
	}
	bad := map[string]string{
		"error_before":                        "name=probability",
		"error_before=x":                      "probability from 0 to 1",
		"error_before=1.01":                   "probability from 0 to 1",
		"timeout_after=-0.1":                  "probability from 0 to 1",
		"timeout_after=NaN":                   "probability from 0 to 1",
		"lag=0.1":                             "not a fault",
		"error_before=0.1,error_before=0.2":   "twice",
		"error_before=0.1,,timeout_after=0.2": "name=probability",
	}
	for spec, want := range bad {
		if _, err := ParseFaults(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFaults(%q) = %v; want an error saying %q", spec, err, want)
		}
	}
}

func TestWithoutFaultsTheGatewayIsUnwrapped(t *testing.T) {
	sb := newSandbox(t)
	if g := WithFaults(sb, Faults{}, nil); g != gateway.Gateway(sb) {
		t.Fatalf("WithFaults with no fault = %T, want the sandbox itself", g)
	}
}

// rolls returns the given numbers in turn, as Faulty.roll.
func rolls(t *testing.T, xs ...float64) func() float64 {
	return func() float64 {
		if len(xs) == 0 {
			t.Fatal("more rolls than the test planned")
		}
		x := xs[0]
		xs = xs[1:]
		return x
	}
}

func TestErrorBeforeExecutesNothing(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t)
	var logs bytes.Buffer
	g := WithFaults(sb, Faults{ErrorBefore: 0.3}, slog.New(slog.NewTextHandler(&logs, nil))).(*Faulty)
	// 0.29 < 0.3: the first call fails before it executes; 0.3 is not
	// below: the retry goes through.
	g.roll = rolls(t, 0.29, 0.3)
	req := gateway.CreateRequest{IdempotencyKey: "k-before", PaymentID: "pay_before", Amount: 1000, Currency: "USD", PaymentMethod: "pm_card_visa"}
	_, err := g.CreatePayment(ctx, req)
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Kind != gateway.Transient || ge.StatusCode != 500 {
		t.Fatalf("first call: %v; want a transient 500", err)
	}
	if f, err := sb.Find(ctx, gateway.FindRequest{PaymentID: req.PaymentID, Currency: "USD"}); err != nil || f.Exists {
		t.Fatalf("after a fault before the call, the sandbox holds %+v (%v); want nothing", f, err)
	}
	res, err := g.CreatePayment(ctx, req)
	if err != nil || res.Status != gateway.StatusSucceeded || res.AmountReceived != 1000 {
		t.Fatalf("retry: %+v, %v; want succeeded with 1000", res, err)
	}
	if c := g.Counts(); c[FaultErrorBefore] != 1 || c[FaultTimeoutAfter] != 0 {
		t.Fatalf("counts = %v", c)
	}
	if !strings.Contains(logs.String(), "sandbox: fault injected") || !strings.Contains(logs.String(), "fault=error_before") {
		t.Fatalf("no log line of the fault: %s", logs.String())
	}
}

func TestTimeoutAfterLosesTheAnswerNotTheCharge(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t)
	g := WithFaults(sb, Faults{TimeoutAfter: 0.5}, nil).(*Faulty)
	g.roll = rolls(t, 0.49, 0.5)
	req := gateway.CreateRequest{IdempotencyKey: "k-after", PaymentID: "pay_after", Amount: 700, Currency: "EUR", PaymentMethod: "pm_card_visa"}
	_, err := g.CreatePayment(ctx, req)
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Kind != gateway.Transient || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first call: %v; want a transient timeout", err)
	}
	// The money moved although the answer was lost.
	f, err := sb.Find(ctx, gateway.FindRequest{PaymentID: req.PaymentID, Currency: "EUR"})
	if err != nil || !f.Exists || f.Result.AmountReceived != 700 {
		t.Fatalf("after a lost answer the sandbox holds %+v (%v); want the charge of 700", f, err)
	}
	// The retry with the same key gets the saved answer: one charge.
	res, err := g.CreatePayment(ctx, req)
	if err != nil || res.Reference != f.Result.Reference || res.AmountReceived != 700 {
		t.Fatalf("retry: %+v, %v; want the saved answer %s", res, err, f.Result.Reference)
	}
	if c := g.Counts(); c[FaultTimeoutAfter] != 1 || c[FaultErrorBefore] != 0 {
		t.Fatalf("counts = %v", c)
	}
}

func TestLookupsOnlyMeetErrorsBefore(t *testing.T) {
	ctx := context.Background()
	sb := newSandbox(t)
	g := WithFaults(sb, Faults{ErrorBefore: 0.5, TimeoutAfter: 1}, nil).(*Faulty)
	// A lookup rolls once (ErrorBefore): 0.7 lets it through and no roll
	// for TimeoutAfter follows (rolls would fail the test).
	g.roll = rolls(t, 0.7, 0.1)
	if _, err := g.Find(ctx, gateway.FindRequest{PaymentID: "pay_none", Currency: "USD"}); err != nil {
		t.Fatalf("Find: %v", err)
	}
	if _, err := g.Retrieve(ctx, "pi_sbx_none"); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Retrieve with a roll of 0.1: %v; want the injected 500", err)
	}
}

func TestEveryChangingCallMeetsTimeoutAfter(t *testing.T) {
	ctx := context.Background()
	g := WithFaults(newSandbox(t), Faults{TimeoutAfter: 1}, nil).(*Faulty)
	g.roll = func() float64 { return 0 }
	calls := map[string]func() error{
		"capture": func() error { _, err := g.Capture(ctx, gateway.CaptureRequest{IdempotencyKey: "c"}); return err },
		"cancel":  func() error { _, err := g.Cancel(ctx, gateway.CancelRequest{IdempotencyKey: "c"}); return err },
		"void":    func() error { _, err := g.Void(ctx, gateway.VoidRequest{IdempotencyKey: "v"}); return err },
		"refund":  func() error { _, err := g.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "r"}); return err },
		"update_dispute": func() error {
			_, err := g.UpdateDispute(ctx, gateway.DisputeUpdateRequest{IdempotencyKey: "u"})
			return err
		},
		"close_dispute": func() error {
			_, err := g.CloseDispute(ctx, gateway.DisputeCloseRequest{IdempotencyKey: "d"})
			return err
		},
	}
	for op, fn := range calls {
		if err := fn(); err == nil || !strings.Contains(err.Error(), op+": timeout") {
			t.Errorf("%s: %v; want its answer lost", op, err)
		}
	}
	if got := g.Counts()[FaultTimeoutAfter]; got != len(calls) {
		t.Fatalf("%d faults counted, want %d", got, len(calls))
	}
}
