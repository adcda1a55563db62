package stripe

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
)

// disputeDueBy is the evidence_details.due_by of disputeJSON's disputes.
var disputeDueBy = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

// disputeJSON renders a Dispute as Stripe does; a dueBy of 0 means none is
// due.
func disputeJSON(id, status, currency string, amount, dueBy, submissions int64) string {
	return fmt.Sprintf(`{"id": %q, "object": "dispute", "amount": %d, "currency": %q, "status": %q,
	  "reason": "fraudulent", "charge": "ch_1", "payment_intent": "pi_Paid", "created": 1700000000,
	  "balance_transactions": [], "is_charge_refundable": false, "livemode": false, "metadata": {},
	  "evidence": {"uncategorized_text": "x", "customer_communication": null},
	  "evidence_details": {"due_by": %d, "has_evidence": true, "past_due": false, "submission_count": %d}}`,
		id, amount, currency, status, dueBy, submissions)
}

func disputeRequest() gateway.DisputeUpdateRequest {
	return gateway.DisputeUpdateRequest{
		IdempotencyKey: "dispute/dp_1/evidence/1",
		Reference:      "dp_1Abc",
		Currency:       "USD",
		Evidence: gateway.DisputeEvidence{
			Explanation:            "The customer signed for the parcel.",
			ProductDescription:     "A blue kettle",
			CustomerCommunication:  "Thanks, it arrived!",
			ShippingTrackingNumber: "1Z999",
			RefundPolicy:           "Refunds within 30 days, shown at checkout.",
			UncategorizedText:      "Order 42.",
		},
		Submit: true,
	}
}

// TestUpdateDisputeRequest: the evidence goes into Stripe's fields (text
// never into the fields that take a file id), Explanation at the head of
// uncategorized_text, submit always sent, with the idempotency key; the
// answer maps back in ISO units.
func TestUpdateDisputeRequest(t *testing.T) {
	for _, submit := range []bool{true, false} {
		f := newFake(t, 200, disputeJSON("dp_1Abc", "under_review", "usd", 1234, disputeDueBy.Unix(), 1))
		r := disputeRequest()
		r.Submit = submit
		res, err := f.gateway().UpdateDispute(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		req := f.only(t)
		if req.method != http.MethodPost || req.path != "/v1/disputes/dp_1Abc" {
			t.Fatalf("%s %s", req.method, req.path)
		}
		want := url.Values{
			"evidence[product_description]":      {"A blue kettle"},
			"evidence[shipping_tracking_number]": {"1Z999"},
			"evidence[refund_policy_disclosure]": {"Refunds within 30 days, shown at checkout."},
			"evidence[uncategorized_text]": {"The customer signed for the parcel.\n\nOrder 42.\n\n" +
				customerCommunicationHeading + "Thanks, it arrived!"},
			"submit": {fmt.Sprint(submit)},
		}
		if req.form.Encode() != want.Encode() {
			t.Errorf("submit=%v: form\n got %s\nwant %s", submit, req.form.Encode(), want.Encode())
		}
		if k := req.header.Get("Idempotency-Key"); k != r.IdempotencyKey {
			t.Errorf("Idempotency-Key %q", k)
		}
		wantRes := gateway.DisputeResult{Reference: "dp_1Abc", PaymentReference: "pi_Paid", Status: gateway.DisputeUnderReview,
			Amount: 1234, Currency: "USD", Reason: "fraudulent", DueBy: disputeDueBy, SubmissionCount: 1}
		if res != wantRes {
			t.Errorf("result %+v, want %+v", res, wantRes)
		}
	}
}

// TestUpdateDisputeEvidenceFields: file ids go into the fields that take
// them; empty fields are not sent; Explanation alone, or the text alone,
// is uncategorized_text without a separator.
func TestUpdateDisputeEvidenceFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   gateway.DisputeEvidence
		want url.Values
	}{
		{"nothing", gateway.DisputeEvidence{}, url.Values{}},
		{"explanation only", gateway.DisputeEvidence{Explanation: "why"},
			url.Values{"evidence[uncategorized_text]": {"why"}}},
		{"text only", gateway.DisputeEvidence{UncategorizedText: "text"},
			url.Values{"evidence[uncategorized_text]": {"text"}}},
		{"communication only", gateway.DisputeEvidence{CustomerCommunication: "mail"},
			url.Values{"evidence[uncategorized_text]": {customerCommunicationHeading + "mail"}}},
		{"file ids", gateway.DisputeEvidence{CustomerCommunication: "file_1Comm", RefundPolicy: "file_2Policy"},
			url.Values{"evidence[customer_communication]": {"file_1Comm"}, "evidence[refund_policy]": {"file_2Policy"}}},
		{"text that starts like a file id", gateway.DisputeEvidence{RefundPolicy: "file_ a policy"},
			url.Values{"evidence[refund_policy_disclosure]": {"file_ a policy"}}},
	} {
		f := newFake(t, 200, disputeJSON("dp_1Abc", "needs_response", "usd", 1234, disputeDueBy.Unix(), 0))
		r := disputeRequest()
		r.Evidence, r.Submit = tc.ev, false
		if _, err := f.gateway().UpdateDispute(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		tc.want.Set("submit", "false")
		if got := f.only(t).form; got.Encode() != tc.want.Encode() {
			t.Errorf("%s: form\n got %s\nwant %s", tc.name, got.Encode(), tc.want.Encode())
		}
	}
}

// TestUpdateDisputeAnswers: amounts in Stripe's units come back in ISO
// units, every status passes, no due date is a zero DueBy, and a dispute
// without a PaymentIntent has no PaymentReference.
func TestUpdateDisputeAnswers(t *testing.T) {
	for _, tc := range amountCases {
		t.Run(fmt.Sprintf("%s %d", tc.currency, tc.iso), func(t *testing.T) {
			f := newFake(t, 200, disputeJSON("dp_A", "needs_response", strings.ToLower(tc.currency), tc.sent, disputeDueBy.Unix(), 0))
			r := disputeRequest()
			r.Currency = tc.currency
			res, err := f.gateway().UpdateDispute(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Amount != tc.iso || res.Currency != strings.ToUpper(tc.currency) {
				t.Errorf("amount %d %s, want %d %s", res.Amount, res.Currency, tc.iso, strings.ToUpper(tc.currency))
			}
		})
	}
	for _, st := range []gateway.DisputeStatus{gateway.DisputeWarningNeedsResponse, gateway.DisputeWarningUnderReview,
		gateway.DisputeWarningClosed, gateway.DisputeNeedsResponse, gateway.DisputeUnderReview, gateway.DisputeWon, gateway.DisputeLost} {
		f := newFake(t, 200, disputeJSON("dp_S", string(st), "usd", 100, 0, 2))
		res, err := f.gateway().UpdateDispute(t.Context(), disputeRequest())
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != st || !res.DueBy.IsZero() || res.SubmissionCount != 2 {
			t.Errorf("%s: %+v", st, res)
		}
	}
	// Without a currency in the request, the answer's is used; without
	// one in the answer either, nothing can be read.
	f := newFake(t, 200, `{"id": "dp_N", "object": "dispute", "amount": 500, "currency": "isk", "status": "won", "charge": "ch_1"}`)
	r := disputeRequest()
	r.Currency = ""
	res, err := f.gateway().UpdateDispute(t.Context(), r)
	want := gateway.DisputeResult{Reference: "dp_N", Status: gateway.DisputeWon, Amount: 5, Currency: "ISK"}
	if err != nil || res != want {
		t.Errorf("no currency asked: %+v, %v; want %+v", res, err, want)
	}
	f = newFake(t, 200, `{"id": "dp_N", "object": "dispute", "amount": 500, "status": "won"}`)
	_, err = f.gateway().UpdateDispute(t.Context(), r)
	if ge := wantError(t, err, gateway.Transient); ge.Code != CodeUnexpectedAnswer {
		t.Errorf("no currency anywhere: code %q", ge.Code)
	}
	// No currency in the answer: the request's stands in.
	f = newFake(t, 200, `{"id": "dp_N", "object": "dispute", "amount": 500, "status": "won"}`)
	r.Currency = "ISK"
	if res, err := f.gateway().UpdateDispute(t.Context(), r); err != nil || res.Amount != 5 || res.Currency != "ISK" {
		t.Errorf("the request's currency: %+v, %v", res, err)
	}
}

func TestUpdateDisputeErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		kind   gateway.ErrorKind
		code   string
	}{
		{404, stripeError("resource_missing", "No such dispute: 'dp_1Abc'"), gateway.Invalid, "resource_missing"},
		{400, `{"error": {"type": "invalid_request_error", "message": "This dispute is already closed"}}`, gateway.Invalid, ""},
		{400, `{"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters"}}`, gateway.Invalid, ""},
		{401, `{"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}`, gateway.Invalid, ""},
		{409, stripeError("lock_timeout", "busy"), gateway.Transient, "lock_timeout"},
		{500, `{"error": {"type": "api_error", "message": "boom"}}`, gateway.Transient, ""},
		{429, stripeError("rate_limit", "slow down"), gateway.RateLimited, "rate_limit"},
		// Stripe answers in another currency: never read as this payment's.
		{200, disputeJSON("dp_1Abc", "won", "eur", 1234, 0, 1), gateway.Transient, CodeUnexpectedAnswer},
		// An amount that does not convert exactly (ISK is whole krónur).
		{200, disputeJSON("dp_1Abc", "won", "isk", 1234, 0, 1), gateway.Transient, CodeUnexpectedAnswer},
	} {
		f := newFake(t, tc.status, tc.body)
		r := disputeRequest()
		if strings.Contains(tc.body, `"isk"`) {
			r.Currency = "ISK"
		}
		_, err := f.gateway().UpdateDispute(t.Context(), r)
		ge := wantError(t, err, tc.kind)
		if ge.Code != tc.code {
			t.Errorf("%d %s: code %q, want %q", tc.status, tc.body, ge.Code, tc.code)
		}
		f.only(t)
	}
}

func TestUpdateDisputeRefusedBeforeSending(t *testing.T) {
	f := newFake(t, 200, disputeJSON("dp_1Abc", "under_review", "usd", 1234, 0, 1))
	g := f.gateway()
	for name, mutate := range map[string]func(*gateway.DisputeUpdateRequest){
		"no key":         func(r *gateway.DisputeUpdateRequest) { r.IdempotencyKey = " " },
		"long key":       func(r *gateway.DisputeUpdateRequest) { r.IdempotencyKey = strings.Repeat("k", 256) },
		"no reference":   func(r *gateway.DisputeUpdateRequest) { r.Reference = "" },
		"path reference": func(r *gateway.DisputeUpdateRequest) { r.Reference = "dp_1/../x" },
	} {
		r := disputeRequest()
		mutate(&r)
		_, err := g.UpdateDispute(t.Context(), r)
		ge := wantError(t, err, gateway.Invalid)
		if strings.Contains(name, "reference") && (ge.Code != "resource_missing" || !strings.Contains(ge.Message, "dispute")) {
			t.Errorf("%s: %+v", name, ge)
		}
	}
	if n := len(f.got()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

func closeRequest() gateway.DisputeCloseRequest {
	return gateway.DisputeCloseRequest{
		IdempotencyKey: "dispute/dp_1/close/1",
		Reference:      "dp_1Abc",
		Currency:       "USD",
	}
}

// TestCloseDisputeRequest: POST /v1/disputes/{id}/close, with no
// parameters and the idempotency key; the answer maps back in ISO units,
// as UpdateDispute's does.
func TestCloseDisputeRequest(t *testing.T) {
	f := newFake(t, 200, disputeJSON("dp_1Abc", "lost", "usd", 1234, disputeDueBy.Unix(), 0))
	r := closeRequest()
	res, err := f.gateway().CloseDispute(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	req := f.only(t)
	if req.method != http.MethodPost || req.path != "/v1/disputes/dp_1Abc/close" {
		t.Fatalf("%s %s", req.method, req.path)
	}
	if len(req.form) != 0 {
		t.Errorf("form %s, want none", req.form.Encode())
	}
	if k := req.header.Get("Idempotency-Key"); k != r.IdempotencyKey {
		t.Errorf("Idempotency-Key %q", k)
	}
	wantRes := gateway.DisputeResult{Reference: "dp_1Abc", PaymentReference: "pi_Paid", Status: gateway.DisputeLost,
		Amount: 1234, Currency: "USD", Reason: "fraudulent", DueBy: disputeDueBy}
	if res != wantRes {
		t.Errorf("result %+v, want %+v", res, wantRes)
	}
}

// TestCloseDisputeAnswers: amounts in Stripe's units come back in ISO
// units, every status passes as Stripe answers it, and a missing currency
// is the request's.
func TestCloseDisputeAnswers(t *testing.T) {
	for _, tc := range amountCases {
		t.Run(fmt.Sprintf("%s %d", tc.currency, tc.iso), func(t *testing.T) {
			f := newFake(t, 200, disputeJSON("dp_A", "lost", strings.ToLower(tc.currency), tc.sent, 0, 0))
			r := closeRequest()
			r.Currency = tc.currency
			res, err := f.gateway().CloseDispute(t.Context(), r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Amount != tc.iso || res.Currency != strings.ToUpper(tc.currency) || !res.DueBy.IsZero() {
				t.Errorf("%+v, want %d %s", res, tc.iso, strings.ToUpper(tc.currency))
			}
		})
	}
	for _, st := range []gateway.DisputeStatus{gateway.DisputeLost, gateway.DisputeWarningClosed} {
		f := newFake(t, 200, disputeJSON("dp_S", string(st), "usd", 100, 0, 1))
		res, err := f.gateway().CloseDispute(t.Context(), closeRequest())
		if err != nil || res.Status != st || res.SubmissionCount != 1 {
			t.Errorf("%s: %+v, %v", st, res, err)
		}
	}
	f := newFake(t, 200, `{"id": "dp_N", "object": "dispute", "amount": 500, "status": "lost"}`)
	r := closeRequest()
	r.Currency = "ISK"
	if res, err := f.gateway().CloseDispute(t.Context(), r); err != nil || res.Amount != 5 || res.Currency != "ISK" {
		t.Errorf("the request's currency: %+v, %v", res, err)
	}
	r.Currency = ""
	_, err := f.gateway().CloseDispute(t.Context(), r)
	if ge := wantError(t, err, gateway.Transient); ge.Code != CodeUnexpectedAnswer {
		t.Errorf("no currency anywhere: code %q", ge.Code)
	}
}

func TestCloseDisputeErrors(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		kind   gateway.ErrorKind
		code   string
	}{
		{404, stripeError("resource_missing", "No such dispute: 'dp_1Abc'"), gateway.Invalid, "resource_missing"},
		{400, `{"error": {"type": "invalid_request_error", "message": "This dispute is already closed"}}`, gateway.Invalid, ""},
		{400, `{"error": {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used with the same parameters"}}`, gateway.Invalid, ""},
		{401, `{"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}`, gateway.Invalid, ""},
		{409, stripeError("lock_timeout", "busy"), gateway.Transient, "lock_timeout"},
		{500, `{"error": {"type": "api_error", "message": "boom"}}`, gateway.Transient, ""},
		{429, stripeError("rate_limit", "slow down"), gateway.RateLimited, "rate_limit"},
		// Stripe answers in another currency: never read as this payment's.
		{200, disputeJSON("dp_1Abc", "lost", "eur", 1234, 0, 0), gateway.Transient, CodeUnexpectedAnswer},
		// An amount that does not convert exactly (ISK is whole krónur).
		{200, disputeJSON("dp_1Abc", "lost", "isk", 1234, 0, 0), gateway.Transient, CodeUnexpectedAnswer},
	} {
		f := newFake(t, tc.status, tc.body)
		r := closeRequest()
		if strings.Contains(tc.body, `"isk"`) {
			r.Currency = "ISK"
		}
		_, err := f.gateway().CloseDispute(t.Context(), r)
		ge := wantError(t, err, tc.kind)
		if ge.Code != tc.code {
			t.Errorf("%d %s: code %q, want %q", tc.status, tc.body, ge.Code, tc.code)
		}
		f.only(t)
	}
}

func TestCloseDisputeRefusedBeforeSending(t *testing.T) {
	f := newFake(t, 200, disputeJSON("dp_1Abc", "lost", "usd", 1234, 0, 0))
	g := f.gateway()
	for name, mutate := range map[string]func(*gateway.DisputeCloseRequest){
		"no key":         func(r *gateway.DisputeCloseRequest) { r.IdempotencyKey = " " },
		"long key":       func(r *gateway.DisputeCloseRequest) { r.IdempotencyKey = strings.Repeat("k", 256) },
		"no reference":   func(r *gateway.DisputeCloseRequest) { r.Reference = "" },
		"path reference": func(r *gateway.DisputeCloseRequest) { r.Reference = "dp_1/../x" },
	} {
		r := closeRequest()
		mutate(&r)
		_, err := g.CloseDispute(t.Context(), r)
		ge := wantError(t, err, gateway.Invalid)
		if strings.Contains(name, "reference") && (ge.Code != "resource_missing" || !strings.Contains(ge.Message, "dispute")) {
			t.Errorf("%s: %+v", name, ge)
		}
	}
	if n := len(f.got()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}
