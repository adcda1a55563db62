package sandbox

import (
	"bytes"
	"testing"

	"github.com/payments-platform/payments/internal/gateway"
)

// TestRedeliver: every event recorded for an intent (its dispute's, its
// failed refunds') is delivered again, byte for byte as first sent and
// signed, in the order the shuffle leaves; an intent without events
// delivers none; an unknown reference is resource_missing.
func TestRedeliver(t *testing.T) {
	ctx := t.Context()
	st := newState(t)
	x := newRefundFail(t, st, "k-redeliver")
	if _, err := x.refund(t, "k-redeliver/refund/1", 200); err != nil {
		t.Fatal(err)
	}
	x.sb.background.Wait()
	if _, err := x.sb.OpenDispute(ctx, x.paid.Reference); err != nil {
		t.Fatal(err)
	}
	x.sb.background.Wait()
	first := x.rc.got()
	wantTypes(t, first, "charge.refund.updated", "charge.dispute.created", "charge.dispute.funds_withdrawn")

	// Reversed: the dispute's events first, the refund's last.
	n, err := x.sb.Redeliver(ctx, x.paid.Reference, func(n int, swap func(i, j int)) {
		for i := 0; i < n/2; i++ {
			swap(i, n-1-i)
		}
	})
	if err != nil || n != 3 {
		t.Fatalf("Redeliver = %d, %v; want 3 events", n, err)
	}
	again := x.rc.got()[len(first):]
	wantTypes(t, again, "charge.refund.updated", "charge.dispute.funds_withdrawn", "charge.dispute.created")
	byID := map[string][]byte{}
	for _, d := range first {
		byID[d.event.ID] = d.event.Data.Raw
	}
	for _, d := range again {
		if d.verifyErr != nil {
			t.Fatalf("redelivered %s does not verify: %v", d.event.ID, d.verifyErr)
		}
		if orig, ok := byID[d.event.ID]; !ok || !bytes.Equal(orig, d.event.Data.Raw) {
			t.Errorf("redelivered %s differs from its first delivery", d.event.ID)
		}
	}
	// In the order recorded without a shuffle.
	if n, err := x.sb.Redeliver(ctx, x.paid.Reference, nil); err != nil || n != 3 {
		t.Fatalf("Redeliver(nil) = %d, %v", n, err)
	}
	wantTypes(t, x.rc.got()[len(first)+3:], "charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.refund.updated")

	other, err := x.sb.CreatePayment(ctx, createReq("k-quiet", "pm_card_visa", false))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := x.sb.Redeliver(ctx, other.Reference, nil); err != nil || n != 0 {
		t.Fatalf("Redeliver of an intent without events = %d, %v", n, err)
	}
	_, err = x.sb.Redeliver(ctx, Reference("k-never-made"), nil)
	if ge, ok := err.(*gateway.Error); !ok || ge.Code != "resource_missing" {
		t.Fatalf("Redeliver of an unknown intent = %v, want resource_missing", err)
	}
	// A receiver that does not take the events: an error, nothing counted.
	x.rc.setStatus(500)
	if n, err := x.sb.Redeliver(ctx, x.paid.Reference, nil); err == nil || n != 0 {
		t.Fatalf("Redeliver to a failing route = %d, %v; want 0 and an error", n, err)
	}
}

// TestCharges: what the sandbox holds per payment, as an auditor reads it:
// every intent of the payment, with what it received, what its refunds
// that did not fail took back, and what its dispute withdrew.
func TestCharges(t *testing.T) {
	ctx := t.Context()
	x := newRefundFail(t, newState(t), "k-charges")
	if _, err := x.refund(t, "k-charges/refund/1", 200); err != nil { // fails later
		t.Fatal(err)
	}
	x.sb.background.Wait()
	if _, err := x.sb.Refund(ctx, gateway.RefundRequest{IdempotencyKey: "k-charges/refund/2", PaymentID: "pay_01testpayment",
		Reference: x.paid.Reference, Amount: 300, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	x.sb.background.Wait()
	got, err := x.sb.Charges(ctx, "pay_01testpayment")
	if err != nil || len(got) != 1 {
		t.Fatalf("Charges = %+v, %v; want one intent", got, err)
	}
	// The first refund failed; the second failed too (pm_card_refundFail
	// fails each refund): nothing refunded, two refunds made.
	want := Charge{Reference: x.paid.Reference, Status: gateway.StatusSucceeded, Received: 1234, Currency: "USD", Refunds: 2}
	if got[0] != want {
		t.Fatalf("Charges = %+v\nwant %+v", got[0], want)
	}
	if _, err := x.sb.OpenDispute(ctx, x.paid.Reference); err != nil {
		t.Fatal(err)
	}
	x.sb.background.Wait()
	got, _ = x.sb.Charges(ctx, "pay_01testpayment")
	if got[0].Disputed != 1234 || got[0].DisputeStatus != gateway.DisputeNeedsResponse {
		t.Fatalf("after the dispute: %+v", got[0])
	}
	if got, err := x.sb.Charges(ctx, "pay_nothing"); err != nil || len(got) != 0 {
		t.Fatalf("Charges of a payment never charged = %+v, %v", got, err)
	}
}
