package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/payments-platform/payments/internal/gateway"
)

// State is where the sandbox keeps what a provider keeps: its payment
// intents, the answers it saved per idempotency key, and the attempt counters
// of its flaky test tokens. Every process that plays the provider (the API,
// which serves the 3-D Secure page, and each worker, which calls the
// gateway) must share one State so that they behave as one provider, also
// across restarts. *store.Store implements it on the platform's database
// (internal/store/sandbox.go).
//
// Objects are opaque documents under an id, with a version; the sandbox
// changes one by reading it and swapping in a new document if the version
// has not moved (compare-and-swap), so no call holds a lock across another.
type State interface {
	// GetSandboxObject returns the data and version of object id; found is
	// false when there is none.
	GetSandboxObject(ctx context.Context, id string) (data string, version int64, found bool, err error)
	// CreateSandboxObject creates object id, with the kind and payment id
	// it is searched by, unless it exists; created reports whether it did.
	// Of concurrent calls for one id exactly one creates.
	CreateSandboxObject(ctx context.Context, id, kind, paymentID, data string, now time.Time) (created bool, err error)
	// CreateSandboxObjects creates all of objs in one transaction, or
	// none of them when any exists: created reports which happened.
	CreateSandboxObjects(ctx context.Context, objs []NewObject, now time.Time) (created bool, err error)
	// UpdateSandboxObject replaces the data of object id and bumps its
	// version if the version is still version; ok is false, and nothing is
	// written, when it is not (or the object does not exist).
	UpdateSandboxObject(ctx context.Context, id string, version int64, data string, now time.Time) (ok bool, err error)
	// SandboxObjectIDs lists the ids of the objects of kind concerning
	// paymentID, oldest first; nothing for an empty paymentID.
	SandboxObjectIDs(ctx context.Context, paymentID, kind string) ([]string, error)
}

// NewObject is one object for State.CreateSandboxObjects: an alias of an
// unnamed struct, so that the store names the same type without importing
// the sandbox.
type NewObject = struct{ ID, Kind, PaymentID, Data string }

// The kinds of objects the sandbox stores.
const (
	kindIntent      = "payment_intent"
	kindIdempotency = "idempotency"
	kindAttempts    = "attempts"
	kindVoid        = "void"
)

// Prefixes of the ids of objects that are not intents. Keys and payment ids
// are digested: ids must fit the state's 255 characters whatever the key.
const (
	claimPrefix    = "idem_sbx_"
	attemptsPrefix = "att_sbx_"
	voidPrefix     = "void_sbx_"
	// RefundPrefix starts the reference of every refund the sandbox makes,
	// as Stripe's refund ids start with "re_".
	RefundPrefix = "re_sbx_"
)

// maxPaymentIDLen is the longest payment id an intent can carry: what the
// state's payment_id column holds. The platform's ids are shorter.
const maxPaymentIDLen = 40

// maxSwaps bounds the read/compare-and-swap rounds of one change. A round is
// lost only when another writer changed the object in between, so it takes
// about as many writers at once to exhaust them.
const maxSwaps = 100

// statusRequiresConfirmation is the status of an intent whose create is
// under way: stored, not yet confirmed, taking no money. A create that was
// interrupted there finishes when it is retried; Retrieve reports it as
// processing. It exists so that a void can catch an intent between its
// creation and its confirmation (see CreatePayment).
const statusRequiresConfirmation = "requires_confirmation"

// intent is a PaymentIntent as the sandbox stores it (kind payment_intent,
// id = its reference).
type intent struct {
	ID               string     `json:"id"`
	PaymentID        string     `json:"payment_id,omitempty"`
	Status           string     `json:"status"` // a gateway.Status, or statusRequiresConfirmation
	Amount           int64      `json:"amount"`
	AmountCapturable int64      `json:"amount_capturable"`
	AmountReceived   int64      `json:"amount_received"`
	AmountRefunded   int64      `json:"amount_refunded"`
	Currency         string     `json:"currency"`       // upper case
	CaptureMethod    string     `json:"capture_method"` // automatic or manual
	PaymentMethod    string     `json:"payment_method"`
	Method           methodInfo `json:"method"`
	Description      string     `json:"description,omitempty"`
	ReturnURL        string     `json:"return_url,omitempty"`
	RedirectURL      string     `json:"redirect_url,omitempty"`
	FailureCode      string     `json:"failure_code,omitempty"`
	FailureMessage   string     `json:"failure_message,omitempty"`
	// CancellationReason is the reason given to Cancel or Void.
	CancellationReason string `json:"cancellation_reason,omitempty"`
	// ThreeDS is the outcome chosen on the 3-D Secure page (OutcomeSucceed
	// or OutcomeFail), once chosen; a second click sends the same event.
	ThreeDS string `json:"three_ds,omitempty"`
	// Created is when it was created, in Unix seconds, as Stripe counts.
	Created int64         `json:"created"`
	Refunds []refundState `json:"refunds,omitempty"`
	// Dispute is the dispute the card network opened on the intent's
	// charge, once opened (pm_card_createDispute, OpenDispute); Stripe
	// opens at most one per charge.
	Dispute *disputeState `json:"dispute,omitempty"`
	// Answers are the answers saved per idempotency key (by keyID) of the
	// calls that acted on this intent: its create, captures, cancels,
	// refunds, and the updates and close of its dispute. They live in the
	// intent so that an effect and its saved answer are written together,
	// in one swap.
	Answers map[string]answer `json:"answers,omitempty"`
}

// methodInfo is gateway.MethodDetails as stored.
type methodInfo struct {
	Type     string `json:"type"`
	Brand    string `json:"brand,omitempty"`
	Last4    string `json:"last4,omitempty"`
	ExpMonth int32  `json:"exp_month,omitempty"`
	ExpYear  int32  `json:"exp_year,omitempty"`
	Provider string `json:"provider,omitempty"`
}

func methodInfoOf(d gateway.MethodDetails) methodInfo {
	return methodInfo{Type: d.Type, Brand: d.Brand, Last4: d.Last4, ExpMonth: d.ExpMonth, ExpYear: d.ExpYear, Provider: d.Provider}
}

func (m methodInfo) details() gateway.MethodDetails {
	return gateway.MethodDetails{Type: m.Type, Brand: m.Brand, Last4: m.Last4, ExpMonth: m.ExpMonth, ExpYear: m.ExpYear, Provider: m.Provider}
}

// refundState is a refund of an intent.
type refundState struct {
	ID      string `json:"id"`
	Amount  int64  `json:"amount"`
	Status  string `json:"status"` // a gateway.RefundStatus
	Reason  string `json:"reason,omitempty"`
	Created int64  `json:"created"`
	// PaymentID is the payment the refund request named, which its events
	// carry as metadata['payment_id'], as the Stripe gateway sends it.
	PaymentID string `json:"payment_id,omitempty"`
	// FailsWith is, for a refund of a payment method whose refunds fail
	// later (pm_card_refundFail), the failure_reason it fails with; it
	// answers succeeded until then.
	FailsWith string `json:"fails_with,omitempty"`
	// FailureReason is Stripe's failure_reason once the refund has failed,
	// and Failed when, in Unix seconds.
	FailureReason string `json:"failure_reason,omitempty"`
	Failed        int64  `json:"failed,omitempty"`
}

func (r refundState) result() gateway.RefundResult {
	res := gateway.RefundResult{Reference: r.ID, Status: gateway.RefundStatus(r.Status), Amount: r.Amount}
	if res.Status == gateway.RefundFailed {
		res.FailureCode = r.FailureReason
	}
	return res
}

// answer is what a call answered, saved under its idempotency key: a result
// (create, capture, cancel), a refund, a dispute (UpdateDispute,
// CloseDispute), or a refusal.
type answer struct {
	// Fingerprint identifies the call and its parameters; a retry must
	// match it.
	Fingerprint string              `json:"fingerprint"`
	Result      *resultState        `json:"result,omitempty"`
	Refund      *refundState        `json:"refund,omitempty"`
	Dispute     *disputeResultState `json:"dispute,omitempty"`
	Error       *refusalState       `json:"error,omitempty"`
}

// refusalState is a saved refusal (a 4xx gateway.Error).
type refusalState struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// refused is an answer that refuses.
func refused(e *gateway.Error) answer {
	return answer{Error: &refusalState{Status: e.StatusCode, Code: e.Code, Message: e.Message}}
}

// err is the saved refusal as an error, or nil.
func (a answer) err() error {
	if a.Error == nil {
		return nil
	}
	return invalid(a.Error.Status, a.Error.Code, a.Error.Message)
}

// resultState is gateway.Result as saved.
type resultState struct {
	Reference        string     `json:"reference"`
	Status           string     `json:"status"`
	Amount           int64      `json:"amount"`
	AmountCapturable int64      `json:"amount_capturable"`
	AmountReceived   int64      `json:"amount_received"`
	Method           methodInfo `json:"method"`
	RedirectURL      string     `json:"redirect_url,omitempty"`
	FailureCode      string     `json:"failure_code,omitempty"`
	FailureMessage   string     `json:"failure_message,omitempty"`
}

func resultStateOf(r gateway.Result) *resultState {
	return &resultState{
		Reference: r.Reference, Status: string(r.Status), Amount: r.Amount,
		AmountCapturable: r.AmountCapturable, AmountReceived: r.AmountReceived, Method: methodInfoOf(r.Method),
		RedirectURL: r.RedirectURL, FailureCode: r.FailureCode, FailureMessage: r.FailureMessage,
	}
}

func (r *resultState) result() gateway.Result {
	return gateway.Result{
		Reference: r.Reference, Status: gateway.Status(r.Status), Amount: r.Amount,
		AmountCapturable: r.AmountCapturable, AmountReceived: r.AmountReceived, Method: r.Method.details(),
		RedirectURL: r.RedirectURL, FailureCode: r.FailureCode, FailureMessage: r.FailureMessage,
	}
}

// snapshot is the intent's state as an answer.
func (in *intent) snapshot() answer {
	return answer{Result: resultStateOf(in.result())}
}

// result is the intent as the gateway reports it.
func (in *intent) result() gateway.Result {
	res := gateway.Result{
		Reference:        in.ID,
		Status:           gateway.Status(in.Status),
		Amount:           in.Amount,
		AmountCapturable: in.AmountCapturable,
		AmountReceived:   in.AmountReceived,
		Method:           in.Method.details(),
	}
	switch res.Status {
	case statusRequiresConfirmation:
		res.Status = gateway.StatusProcessing
	case gateway.StatusRequiresAction:
		res.RedirectURL = in.RedirectURL
	case gateway.StatusFailed:
		res.FailureCode, res.FailureMessage = in.FailureCode, in.FailureMessage
	}
	return res
}

// claim binds an idempotency key to the call that first used it (kind
// idempotency, id claimPrefix + keyID): a later call with the same key and
// other parameters is refused, whichever object it names.
type claim struct {
	Fingerprint string `json:"fingerprint"`
	// Object is the intent the call acted on.
	Object string `json:"object"`
}

// attempts counts the attempts of a flaky test token under one key.
type attempts struct {
	N int `json:"n"`
}

// voidMark records that a payment was voided (kind void).
type voidMark struct {
	Reason  string `json:"reason,omitempty"`
	Created int64  `json:"created"`
}

// keyID is how an idempotency key is named in ids and saved answers.
func keyID(key string) string { return digest(key) }

// fingerprint identifies a call and its parameters; parts must be values
// that encode to JSON.
func fingerprint(op string, parts ...any) string {
	b, err := json.Marshal(append([]any{op}, parts...))
	if err != nil { // only plain values are passed: cannot happen
		b = []byte(fmt.Sprint(op, parts))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// stateError is a failure of the state: to the caller, the provider failed
// (a 500), which is worth retrying.
func stateError(err error) error {
	var ge *gateway.Error
	if errors.As(err, &ge) {
		return err
	}
	return &gateway.Error{Kind: gateway.Transient, Code: "api_error", StatusCode: http.StatusInternalServerError,
		Message: "sandbox: the sandbox's state failed: " + err.Error(), Err: err}
}

// errContention is returned when maxSwaps rounds were all lost; Stripe
// answers lock_timeout (a 429) when an object is too busy.
func errContention(id string) error {
	return &gateway.Error{Kind: gateway.Transient, Code: "lock_timeout", StatusCode: http.StatusTooManyRequests,
		Message: fmt.Sprintf("sandbox: %s is being changed by too many requests at once", id)}
}

// get reads object id into doc.
func get[T any](ctx context.Context, s *Sandbox, id string) (doc T, found bool, err error) {
	data, _, found, err := s.state.GetSandboxObject(ctx, id)
	switch {
	case err != nil:
		return doc, false, stateError(err)
	case !found:
		return doc, false, nil
	}
	if err := json.Unmarshal([]byte(data), &doc); err != nil {
		return doc, true, stateError(fmt.Errorf("decode %s: %w", id, err))
	}
	return doc, true, nil
}

// create stores doc as object id unless it exists; created reports whether
// it did.
func create[T any](ctx context.Context, s *Sandbox, id, kind, paymentID string, doc *T) (created bool, err error) {
	data, err := encode(id, doc)
	if err != nil {
		return false, err
	}
	created, err = s.state.CreateSandboxObject(ctx, id, kind, paymentID, data, s.now())
	if err != nil {
		return false, stateError(err)
	}
	return created, nil
}

// encode is the stored form of object id.
func encode(id string, doc any) (string, error) {
	data, err := json.Marshal(doc)
	if err != nil {
		return "", stateError(fmt.Errorf("encode %s: %w", id, err))
	}
	return string(data), nil
}

// createClaimed stores the claim of key for the call fp and the intent it
// creates in one write, unless either exists; stored reports whether it did.
func (s *Sandbox) createClaimed(ctx context.Context, key, fp string, in *intent) (stored bool, err error) {
	claimID := claimPrefix + keyID(key)
	claimData, err := encode(claimID, &claim{Fingerprint: fp, Object: in.ID})
	if err != nil {
		return false, err
	}
	intentData, err := encode(in.ID, in)
	if err != nil {
		return false, err
	}
	stored, err = s.state.CreateSandboxObjects(ctx, []NewObject{
		{ID: claimID, Kind: kindIdempotency, PaymentID: in.PaymentID, Data: claimData},
		{ID: in.ID, Kind: kindIntent, PaymentID: in.PaymentID, Data: intentData},
	}, s.now())
	if err != nil {
		return false, stateError(err)
	}
	return stored, nil
}

// update reads object id, lets fn change it, and swaps the change in,
// reading again and calling fn again if another writer got there first; fn
// must depend on nothing but the document. fn returns whether it changed the
// document; an error from fn ends the update, writing nothing. found is
// false, and fn is not called, when the object does not exist.
func update[T any](ctx context.Context, s *Sandbox, id string, fn func(*T) (bool, error)) (doc T, found bool, err error) {
	return updateFrom(ctx, s, id, nil, fn)
}

// updateFrom is update starting from stored, the document as this call
// stored it at version 1, when it is not nil: the first round swaps without
// reading it back, and a round lost to another writer reads as update does.
func updateFrom[T any](ctx context.Context, s *Sandbox, id string, stored *T, fn func(*T) (bool, error)) (doc T, found bool, err error) {
	for range maxSwaps {
		var (
			cur     T
			version int64 = 1
		)
		if stored != nil {
			cur, stored = *stored, nil
		} else {
			var data string
			data, version, found, err = s.state.GetSandboxObject(ctx, id)
			if err != nil {
				return cur, false, stateError(err)
			}
			if !found {
				return cur, false, nil
			}
			if err := json.Unmarshal([]byte(data), &cur); err != nil {
				return cur, true, stateError(fmt.Errorf("decode %s: %w", id, err))
			}
		}
		changed, err := fn(&cur)
		if err != nil || !changed {
			return cur, true, err
		}
		out, err := encode(id, &cur)
		if err != nil {
			return cur, true, err
		}
		ok, err := s.state.UpdateSandboxObject(ctx, id, version, out, s.now())
		if err != nil {
			return cur, true, stateError(err)
		}
		if ok {
			return cur, true, nil
		}
		if err := ctx.Err(); err != nil {
			return cur, true, canceled(err)
		}
	}
	return doc, true, errContention(id)
}

// claimKey binds key to the call fp acting on object, or checks that it is
// bound to it already: a key used before with other parameters is refused
// with idempotency_error, as Stripe does.
func (s *Sandbox) claimKey(ctx context.Context, key, fp, object, paymentID string) error {
	id := claimPrefix + keyID(key)
	for range maxSwaps {
		c, found, err := get[claim](ctx, s, id)
		if err != nil {
			return err
		}
		if found {
			if c.Fingerprint != fp {
				return idempotencyError(key)
			}
			return nil
		}
		created, err := create(ctx, s, id, kindIdempotency, paymentID, &claim{Fingerprint: fp, Object: object})
		if err != nil || created {
			return err
		}
		// Another call claimed it between the read and the create: compare
		// with its claim.
	}
	return errContention(id)
}

// claimed reports whether key was claimed by the call fp, and refuses a key
// claimed by another call.
func (s *Sandbox) claimed(ctx context.Context, key, fp string) (bool, error) {
	c, found, err := get[claim](ctx, s, claimPrefix+keyID(key))
	switch {
	case err != nil:
		return false, err
	case found && c.Fingerprint != fp:
		return false, idempotencyError(key)
	}
	return found, nil
}

// idempotencyError refuses a key reused with other parameters, in Stripe's
// words.
func idempotencyError(key string) error {
	return invalid(http.StatusBadRequest, "idempotency_error",
		"Keys for idempotent requests can only be used with the same parameters they were first used with. "+
			"Try using a key other than '"+key+"' if you meant to execute a different request.")
}

// attempt counts one more attempt of key with a flaky test token and
// returns the count, shared by every process on the state.
func (s *Sandbox) attempt(ctx context.Context, key, paymentID string) (int, error) {
	id := attemptsPrefix + keyID(key)
	if _, err := create(ctx, s, id, kindAttempts, paymentID, &attempts{}); err != nil {
		return 0, err
	}
	a, _, err := update(ctx, s, id, func(a *attempts) (bool, error) {
		a.N++
		return true, nil
	})
	return a.N, err
}

// voidID is the id of the mark of a voided payment.
func voidID(paymentID string) string { return voidPrefix + digest(paymentID) }

// voided returns the mark of a voided payment, if it was voided.
func (s *Sandbox) voided(ctx context.Context, paymentID string) (voidMark, bool, error) {
	if paymentID == "" {
		return voidMark{}, false, nil
	}
	return get[voidMark](ctx, s, voidID(paymentID))
}

// loadIntent reads the intent ref.
func (s *Sandbox) loadIntent(ctx context.Context, ref string) (intent, bool, error) {
	return get[intent](ctx, s, ref)
}

// applyOnce runs apply on the intent ref once per idempotency key: the
// answer saved under key in the intent is replayed (or, for other
// parameters, refused with idempotency_error); otherwise apply acts on the
// intent and returns its answer, which is saved with the change, in one
// swap, refusals included. apply may be called more than once (when another
// writer changes the intent meanwhile) and must leave the intent as it is
// when it refuses. Without a key nothing is saved. An intent that does not
// exist is refused with resource_missing.
func (s *Sandbox) applyOnce(ctx context.Context, ref, key, fp string, apply func(in *intent) answer) (answer, error) {
	ans, _, err := s.applyOnceFrom(ctx, ref, key, fp, nil, apply)
	return ans, err
}

// applyOnceFrom is applyOnce on the intent as this call stored it (see
// updateFrom), when stored is not nil. It also returns the intent as it
// stands after, whether the answer was saved now or replayed.
func (s *Sandbox) applyOnceFrom(ctx context.Context, ref, key, fp string, stored *intent, apply func(in *intent) answer) (answer, intent, error) {
	kid := keyID(key)
	var out answer
	in, found, err := updateFrom(ctx, s, ref, stored, func(in *intent) (bool, error) {
		if key != "" {
			if a, ok := in.Answers[kid]; ok {
				if a.Fingerprint != fp {
					return false, idempotencyError(key)
				}
				out = a
				return false, nil
			}
		}
		out = apply(in)
		out.Fingerprint = fp
		if key == "" {
			return out.Error == nil, nil
		}
		if in.Answers == nil {
			in.Answers = make(map[string]answer)
		}
		in.Answers[kid] = out
		return true, nil
	})
	switch {
	case err != nil:
		return answer{}, intent{}, err
	case !found:
		return answer{}, intent{}, noSuchIntent(ref)
	}
	return out, in, nil
}

// noSuchIntent is Stripe's answer for an unknown PaymentIntent id.
func noSuchIntent(ref string) error {
	return invalid(http.StatusNotFound, "resource_missing", fmt.Sprintf("No such payment_intent: '%s'", ref))
}
