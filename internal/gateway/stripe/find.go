package stripe

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	stripego "github.com/stripe/stripe-go/v76"

	"github.com/payments-platform/payments/internal/gateway"
)

// metadataPaymentID is the metadata key CreatePayment writes our pay_ id
// under, and Find searches.
const metadataPaymentID = "payment_id"

// searchPageSize is the page size of a search; a payment has a handful of
// intents at most, so one page nearly always holds them all (further pages
// are read too).
const searchPageSize = 100

// maxPaymentID bounds the payment id put into a search query.
const maxPaymentID = 64

// CodePaymentIDInvalid (Invalid, nothing sent): the payment id of a Find or
// Void without a reference does not have the shape of ours (pay_ then lower
// case letters and digits), so it is not put into a search query.
const CodePaymentIDInvalid = "payment_id_invalid"

// CodeReferenceMismatch (Invalid): the PaymentIntent a reference names
// carries another payment's id in its metadata; it is neither reported nor
// canceled as this payment's.
const CodeReferenceMismatch = "reference_mismatch"

// codeUnexpectedState is Stripe's refusal of an action the PaymentIntent's
// status no longer allows, such as a cancel after it succeeded.
const codeUnexpectedState = string(stripego.ErrorCodePaymentIntentUnexpectedState)

// Find returns the PaymentIntent made for a payment. With a Reference it is
// retrieved (Stripe answering 404 resource_missing means there is none);
// without one, PaymentIntents are searched by metadata['payment_id'].
//
// Stripe's search index lags writes, typically by under a minute and by more
// during incidents, so "none" shortly after a create is not proof that no
// intent exists: callers that act on it (the payment workflow's Void) ask
// again later.
//
// When a search finds several intents for the payment (a create retried
// under new idempotency keys), the one that moved money is reported
// (succeeded first, then requires_capture), else the newest: the outcome
// that matters to the ledger wins, and otherwise the latest attempt is the
// one still live. Several that moved money are logged at error level: the
// customer's money was taken or held more than once, which an operator
// must put right.
func (g *Gateway) Find(ctx context.Context, r gateway.FindRequest) (gateway.Found, error) {
	pis, err := g.intents(ctx, "find", r.PaymentID, r.Reference)
	if err != nil || len(pis) == 0 {
		return gateway.Found{}, err
	}
	res, err := g.result(ctx, "find", g.prefer(ctx, r.PaymentID, pis), r.Currency)
	if err != nil {
		return gateway.Found{}, err
	}
	return gateway.Found{Exists: true, Result: res}, nil
}

// Void makes sure no intent of the payment can still take money: it finds
// the payment's intents as Find does and cancels every one whose status
// allows it (requires_payment_method, requires_confirmation,
// requires_action, requires_capture, processing), with cancellation_reason
// mapped as Cancel maps it. It returns the state afterwards of the intent
// Find would report, or Exists false when the gateway holds none (see Find
// on the search index's lag).
//
// Each cancel is sent with the idempotency key "<IdempotencyKey>/<intent
// id>": one Void may cancel several intents, which a search may list in a
// different order on the next attempt, and Stripe refuses a key reused for
// another request. A cancel refused because the intent moved on meanwhile
// (payment_intent_unexpected_state: it just succeeded, say) is not an
// error: the intent is retrieved and its state reported. Stripe keeps that
// refusal for the key for 24 hours, so a caller that voids again later to
// catch an intent that was still processing should use a new key.
func (g *Gateway) Void(ctx context.Context, r gateway.VoidRequest) (gateway.Found, error) {
	if err := checkKey(r.IdempotencyKey); err != nil {
		return gateway.Found{}, err
	}
	pis, err := g.intents(ctx, "void", r.PaymentID, r.Reference)
	if err != nil || len(pis) == 0 {
		return gateway.Found{}, err
	}
	for i, pi := range pis {
		if !cancelable(pi.Status) {
			continue
		}
		after, err := g.voidOne(ctx, r, pi)
		if err != nil {
			return gateway.Found{}, err
		}
		pis[i] = after
	}
	res, err := g.result(ctx, "void", g.prefer(ctx, r.PaymentID, pis), r.Currency)
	if err != nil {
		return gateway.Found{}, err
	}
	return gateway.Found{Exists: true, Result: res}, nil
}

// voidOne cancels one intent and returns its state afterwards.
func (g *Gateway) voidOne(ctx context.Context, r gateway.VoidRequest, pi *stripego.PaymentIntent) (*stripego.PaymentIntent, error) {
	key := r.IdempotencyKey + "/" + pi.ID
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := checkReference(pi.ID); err != nil {
		return nil, err
	}
	params := &stripego.PaymentIntentCancelParams{}
	if reason, ok := cancellationReason(r.Reason); ok {
		params.CancellationReason = stripego.String(string(reason))
	}
	params.AddExpand(expandMethod)
	params.Context = ctx
	params.SetIdempotencyKey(key)
	after, err := g.api.PaymentIntents.Cancel(pi.ID, params)
	if err == nil {
		g.log.InfoContext(ctx, "stripe: intent voided", "payment_id", r.PaymentID, "reference", pi.ID,
			"status_before", string(pi.Status))
		return after, nil
	}
	if ge := classify(err); ge.Code != codeUnexpectedState {
		return nil, g.fail(ctx, "void", err)
	}
	// It moved on between the read and the cancel: report where it is now.
	after, err = g.get(ctx, pi.ID)
	if err != nil {
		return nil, g.fail(ctx, "void", err)
	}
	g.log.InfoContext(ctx, "stripe: intent moved on before it could be voided", "payment_id", r.PaymentID,
		"reference", pi.ID, "status_before", string(pi.Status), "status", string(after.Status))
	return after, nil
}

// cancelable reports whether Stripe lets a PaymentIntent in status s be
// canceled.
func cancelable(s stripego.PaymentIntentStatus) bool {
	switch s {
	case stripego.PaymentIntentStatusRequiresPaymentMethod,
		stripego.PaymentIntentStatusRequiresConfirmation,
		stripego.PaymentIntentStatusRequiresAction,
		stripego.PaymentIntentStatusRequiresCapture,
		stripego.PaymentIntentStatusProcessing:
		return true
	}
	return false
}

// intents returns the payment's PaymentIntents: the one reference names
// (none if Stripe answers 404), or those a search finds.
func (g *Gateway) intents(ctx context.Context, op, paymentID, reference string) ([]*stripego.PaymentIntent, error) {
	if reference != "" {
		if err := checkReference(reference); err != nil {
			return nil, err
		}
		pi, err := g.get(ctx, reference)
		if err != nil {
			if ge := classify(err); ge.StatusCode == http.StatusNotFound && ge.Code == string(stripego.ErrorCodeResourceMissing) {
				return nil, nil
			}
			return nil, g.fail(ctx, op, err)
		}
		if owner := pi.Metadata[metadataPaymentID]; paymentID != "" && owner != "" && owner != paymentID {
			return nil, &gateway.Error{Kind: gateway.Invalid, Code: CodeReferenceMismatch,
				Message: fmt.Sprintf("stripe: %s belongs to payment %s, not %s", reference, owner, paymentID)}
		}
		return []*stripego.PaymentIntent{pi}, nil
	}
	return g.search(ctx, op, paymentID)
}

// search returns the PaymentIntents whose metadata holds paymentID. The id
// is checked to be pay_ followed by lower-case letters and digits, so it
// needs no escaping inside the query's quotes; results are filtered on the
// metadata again, so that nothing but this payment's intents is ever
// reported or canceled.
func (g *Gateway) search(ctx context.Context, op, paymentID string) ([]*stripego.PaymentIntent, error) {
	if !validPaymentID(paymentID) {
		return nil, &gateway.Error{Kind: gateway.Invalid, Code: CodePaymentIDInvalid,
			Message: fmt.Sprintf("stripe: payment id %q is not pay_ followed by lower-case letters and digits", clip(paymentID))}
	}
	it := g.api.PaymentIntents.Search(searchParams(ctx, paymentID))
	var out []*stripego.PaymentIntent
	for it.Next() {
		if pi := it.PaymentIntent(); pi != nil && pi.Metadata[metadataPaymentID] == paymentID {
			out = append(out, pi)
		}
	}
	if err := it.Err(); err != nil {
		return nil, g.fail(ctx, op, err)
	}
	return out, nil
}

// searchParams are the parameters of the search for a payment's intents.
func searchParams(ctx context.Context, paymentID string) *stripego.PaymentIntentSearchParams {
	params := &stripego.PaymentIntentSearchParams{}
	params.Query = searchQuery(paymentID)
	params.Limit = stripego.Int64(searchPageSize)
	params.Context = ctx
	params.AddExpand("data." + expandMethod)
	return params
}

// searchQuery is Stripe's search query for the intents of a payment whose
// id passed validPaymentID.
func searchQuery(paymentID string) string {
	return "metadata['" + metadataPaymentID + "']:'" + paymentID + "'"
}

// validPaymentID reports whether id looks like pay_[0-9a-z]+, as ours do.
func validPaymentID(id string) bool {
	rest, ok := strings.CutPrefix(id, "pay_")
	if !ok || rest == "" || len(id) > maxPaymentID {
		return false
	}
	for i := range len(rest) {
		if c := rest[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// clip shortens what a caller sent before it is repeated in a message.
func clip(s string) string {
	const n = 80
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// moneyRank orders statuses by how much money they moved: succeeded, then
// requires_capture (funds held), then the rest.
func moneyRank(s stripego.PaymentIntentStatus) int {
	switch s {
	case stripego.PaymentIntentStatusSucceeded:
		return 2
	case stripego.PaymentIntentStatusRequiresCapture:
		return 1
	}
	return 0
}

// prefer picks the intent to report among a payment's (see Find): most
// money moved, then newest, then the greatest id so the choice never
// depends on the order Stripe listed them in. Several that moved money are
// logged at error level.
func (g *Gateway) prefer(ctx context.Context, paymentID string, pis []*stripego.PaymentIntent) *stripego.PaymentIntent {
	best := slices.MaxFunc(pis, func(a, b *stripego.PaymentIntent) int {
		return cmp.Or(cmp.Compare(moneyRank(a.Status), moneyRank(b.Status)),
			cmp.Compare(a.Created, b.Created), cmp.Compare(a.ID, b.ID))
	})
	var moved []string
	for _, pi := range pis {
		if moneyRank(pi.Status) > 0 {
			moved = append(moved, pi.ID+" ("+string(pi.Status)+")")
		}
	}
	if len(moved) > 1 {
		g.log.ErrorContext(ctx, "stripe: several intents of one payment took money", "payment_id", paymentID,
			"intents", moved, "reported", best.ID)
	}
	return best
}
