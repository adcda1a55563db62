package stripe

import (
	"context"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/stripe/stripemock"
)

// TestContractStripeMockDispute sends UpdateDispute, with every evidence
// field set (as text and as file ids), staged and submitted, and
// CloseDispute, through the real stripe-go client to stripe-mock, which
// refuses parameters Stripe's OpenAPI spec does not have; and checks that
// its fixture's answers map.
func TestContractStripeMockDispute(t *testing.T) {
	srv := startStripeMock(t)
	g := New(Options{SecretKey: stripemock.TestKey, APIBase: srv.URL()})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	text := gateway.DisputeEvidence{
		Explanation:            "The customer signed for the parcel.",
		ProductDescription:     "A blue kettle",
		CustomerCommunication:  "Thanks, it arrived!",
		ShippingTrackingNumber: "1Z999",
		RefundPolicy:           "Refunds within 30 days, shown at checkout.",
		UncategorizedText:      "Order 42.",
	}
	files := text
	files.CustomerCommunication, files.RefundPolicy = "file_1Comm", "file_2Policy"
	for name, tc := range map[string]struct {
		ev     gateway.DisputeEvidence
		submit bool
	}{
		"staged text":     {text, false},
		"submitted text":  {text, true},
		"submitted files": {files, true},
		"nothing":         {gateway.DisputeEvidence{}, true},
	} {
		res, err := g.UpdateDispute(ctx, gateway.DisputeUpdateRequest{IdempotencyKey: "dispute/contract/" + name,
			Reference: "dp_123", Currency: "USD", Evidence: tc.ev, Submit: tc.submit})
		if err != nil {
			t.Fatalf("%s: %v\nstripe-mock output:\n%s", name, err, srv.Output())
		}
		if !strings.HasPrefix(res.Reference, "dp_") || res.Currency != "USD" || res.Amount <= 0 || res.Reason == "" {
			t.Errorf("%s: %+v", name, res)
		}
		switch res.Status {
		case gateway.DisputeWarningNeedsResponse, gateway.DisputeWarningUnderReview, gateway.DisputeWarningClosed,
			gateway.DisputeNeedsResponse, gateway.DisputeUnderReview, gateway.DisputeWon, gateway.DisputeLost:
		default:
			t.Errorf("%s: status %q", name, res.Status)
		}
	}

	// Close: stripe-mock's fixture answers whatever status it holds, so
	// the status is only checked to be one of Stripe's.
	res, err := g.CloseDispute(ctx, gateway.DisputeCloseRequest{IdempotencyKey: "dispute/contract/close",
		Reference: "dp_123", Currency: "USD"})
	if err != nil {
		t.Fatalf("close: %v\nstripe-mock output:\n%s", err, srv.Output())
	}
	if !strings.HasPrefix(res.Reference, "dp_") || res.Currency != "USD" || res.Amount <= 0 || res.Reason == "" {
		t.Errorf("close: %+v", res)
	}
	switch res.Status {
	case gateway.DisputeWarningNeedsResponse, gateway.DisputeWarningUnderReview, gateway.DisputeWarningClosed,
		gateway.DisputeNeedsResponse, gateway.DisputeUnderReview, gateway.DisputeWon, gateway.DisputeLost:
	default:
		t.Errorf("close: status %q", res.Status)
	}

	// stripe-mock refuses a parameter Stripe does not have on the route
	// (it does not look inside evidence, though: that the fields exist is
	// stripe-go's to say, whose names this package uses): without that,
	// the calls above would prove nothing.
	params := &stripego.DisputeParams{Evidence: disputeEvidenceParams(text), Submit: stripego.Bool(false)}
	params.AddExtra("no_such_parameter", "x")
	params.Context = ctx
	if _, err := g.api.Disputes.Update("dp_123", params); err == nil || classify(err).Kind != gateway.Invalid {
		t.Errorf("unknown parameter: %v", err)
	}
	// The close route takes no parameter at all: one is refused, so the
	// close above, which sends none, is what Stripe takes.
	closeParams := &stripego.DisputeParams{}
	closeParams.AddExtra("no_such_parameter", "x")
	closeParams.Context = ctx
	if _, err := g.api.Disputes.Close("dp_123", closeParams); err == nil || classify(err).Kind != gateway.Invalid {
		t.Errorf("unknown parameter on close: %v", err)
	}
}
