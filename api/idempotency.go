package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/ent/idempotencykey"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

const (
	idempotencyHeader  = "Idempotency-Key"
	replayedHeader     = "Idempotent-Replayed"
	idempotencyTTL     = 24 * time.Hour
	idempotencyMaxWait = 30 * time.Second
	idempotencyPoll    = 25 * time.Millisecond
	// idempotencyLease is how long a request may hold its key in progress
	// without a sign of life; after it, a retry takes the key over and runs
	// the request again with the key's seed (reaching the same objects).
	idempotencyLease    = 60 * time.Second
	maxIdempotencyBytes = 255
)

// idempotentProcedures honour an Idempotency-Key header (API.md lists them
// too). idempotent refuses to serve any other, so this list, from which the
// OpenAPI document gives routes the header (Access), cannot miss one.
var idempotentProcedures = map[string]bool{
	paymentsv1connect.PaymentServiceCreatePaymentProcedure:         true,
	paymentsv1connect.PaymentServiceCapturePaymentProcedure:        true,
	paymentsv1connect.PaymentServiceCancelPaymentProcedure:         true,
	paymentsv1connect.RefundServiceCreateRefundProcedure:           true,
	paymentsv1connect.DisputeServiceOpenDisputeProcedure:           true,
	paymentsv1connect.DisputeServiceSubmitEvidenceProcedure:        true,
	paymentsv1connect.DisputeServiceAcceptDisputeProcedure:         true,
	paymentsv1connect.DisputeServiceWithdrawDisputeProcedure:       true,
	paymentsv1connect.DisputeServiceResolveDisputeProcedure:        true,
	paymentsv1connect.WebhookServiceUpdateWebhookEndpointProcedure: true,
	paymentsv1connect.WebhookServiceDeleteWebhookEndpointProcedure: true,
	paymentsv1connect.WebhookServiceRedeliverEventProcedure:        true,
	paymentsv1connect.AccountServiceRevokeSessionProcedure:         true,
	paymentsv1connect.AccountServiceResendVerificationProcedure:    true,
	paymentsv1connect.AdminServiceSuspendAccountProcedure:          true,
	paymentsv1connect.AdminServiceReactivateAccountProcedure:       true,
}

// idemCall is what an idempotent handler learns about its key.
type idemCall struct {
	// Seed is stable for one (account, key): handlers derive object ids from
	// it so that even a takeover after a crash reaches the same object.
	Seed []byte
	// At is when the key was first used; stable across takeovers too.
	At time.Time
	// effects is set by SideEffects: from then on a failure keeps the key
	// (a retry takes it over after the lease) instead of freeing it, since
	// the request may have done something that a fresh key would repeat.
	effects *bool
}

// SideEffects marks the point after which the request may have changed
// something outside the database (started a workflow, called a gateway).
func (c idemCall) SideEffects() {
	if c.effects != nil {
		*c.effects = true
	}
}

// deterministic are the outcomes that replay like successes; any other
// error frees the key so that the client may retry.
var deterministic = map[errs.Kind]bool{
	errs.KindInvalidArgument:    true,
	errs.KindNotFound:           true,
	errs.KindAlreadyExists:      true,
	errs.KindFailedPrecondition: true,
	errs.KindPermissionDenied:   true,
}

// idempotent runs fn at most once per (account, Idempotency-Key), as API.md
// says: the same key and request replay the first result with
// `Idempotent-Replayed: true`; the same key with another request is
// invalid_argument; a key still running is waited for, or aborted.
func idempotent[Res any, PRes interface {
	*Res
	proto.Message
}](ctx context.Context, s *Server, procedure, accountID string, header http.Header, reqMsg proto.Message, fn func(context.Context, idemCall) (PRes, error)) (*connect.Response[Res], error) {
	if !idempotentProcedures[procedure] {
		return nil, fmt.Errorf("%s honours Idempotency-Key but is not in idempotentProcedures", procedure)
	}
	key := header.Get(idempotencyHeader)
	if key == "" {
		res, err := fn(ctx, idemCall{At: s.now()})
		if err != nil {
			return nil, err
		}
		return connect.NewResponse((*Res)(res)), nil
	}
	if len(key) > maxIdempotencyBytes {
		return nil, errs.InvalidArgument(idempotencyHeader, "Idempotency-Key must be 1 to 255 characters")
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(reqMsg)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte(procedure+"\x00"), body...))
	hash := hex.EncodeToString(sum[:])
	now := s.now()
	rec, fresh, err := s.d.Store.BeginIdempotency(ctx, accountID, key, procedure, hash, now, now.Add(idempotencyTTL))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(idempotencyMaxWait)
	for !fresh {
		if rec.Method != procedure || rec.RequestHash != hash {
			return nil, errs.InvalidArgument(idempotencyHeader, "this Idempotency-Key was already used with a different request")
		}
		if rec.State == idempotencykey.StateCompleted {
			return replay[Res, PRes](rec.ResponseCode, rec.ResponseBody)
		}
		// In progress: wait for it, or take it over once its lease ran out.
		claimed, err := s.d.Store.ClaimIdempotency(ctx, rec.ID, s.now().Add(-idempotencyLease), s.now())
		if err != nil {
			return nil, err
		}
		if claimed {
			s.log.WarnContext(ctx, "taking over an idempotency key whose request went quiet", "procedure", procedure)
			fresh = true
			break
		}
		if time.Now().After(deadline) {
			return nil, errs.Aborted("a request with this Idempotency-Key is still in progress; retry later")
		}
		select {
		case <-ctx.Done():
			return nil, errs.Aborted("a request with this Idempotency-Key is still in progress; retry later")
		case <-time.After(idempotencyPoll):
		}
		rec, err = s.d.Store.IdempotencyByID(ctx, rec.ID)
		if errors.Is(err, errs.ErrNotFound) {
			// The first request failed before any side effect and freed the
			// key: this one starts afresh.
			rec, fresh, err = s.d.Store.BeginIdempotency(ctx, accountID, key, procedure, hash, s.now(), s.now().Add(idempotencyTTL))
		}
		if err != nil {
			return nil, err
		}
	}

	effects := false
	call := idemCall{Seed: []byte(accountID + "\x00" + key), At: rec.CreatedAt, effects: &effects}
	res, ferr := fn(ctx, call)
	done := context.WithoutCancel(ctx)
	if ferr != nil {
		if kind := errs.KindOf(ferr); deterministic[kind] {
			code := codeOf[kind]
			var de *errs.Error
			errors.As(ferr, &de)
			body, _ := json.Marshal(storedError{Message: de.Message, Field: de.Field})
			if err := s.d.Store.CompleteIdempotency(done, rec.ID, int(code), body, s.now()); err != nil {
				s.log.ErrorContext(ctx, "completing an idempotency key", "err", err)
			}
		} else if !effects {
			if err := s.d.Store.AbandonIdempotency(done, rec.ID); err != nil {
				s.log.ErrorContext(ctx, "abandoning an idempotency key", "err", err)
			}
		}
		// After side effects the key stays in progress: a retry with it
		// takes it over once the lease has run out and reaches the same
		// objects, where a new key could have doubled them.
		return nil, ferr
	}
	out, err := proto.Marshal(res)
	if err != nil {
		return nil, err
	}
	if err := s.d.Store.CompleteIdempotency(done, rec.ID, 0, out, s.now()); err != nil {
		// The request succeeded; a retry will take the key over after the
		// lease and reach the same objects. Answer the success now.
		s.log.ErrorContext(ctx, "completing an idempotency key", "err", err)
	}
	resp := connect.NewResponse((*Res)(res))
	resp.Header().Set(replayedHeader, "false")
	return resp, nil
}

// storedError is a refusal kept under its Idempotency-Key, so that a replay
// answers the same code, message and field violation.
type storedError struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func replay[Res any, PRes interface {
	*Res
	proto.Message
}](code int, body []byte) (*connect.Response[Res], error) {
	if code != 0 {
		var se storedError
		if err := json.Unmarshal(body, &se); err != nil {
			se.Message = string(body)
		}
		cerr := connect.NewError(connect.Code(code), errors.New(se.Message))
		if se.Field != "" {
			if detail, err := connect.NewErrorDetail(fieldViolation(se.Field, se.Message)); err == nil {
				cerr.AddDetail(detail)
			}
		}
		cerr.Meta().Set(replayedHeader, "true")
		return nil, cerr
	}
	msg := PRes(new(Res))
	if err := proto.Unmarshal(body, msg); err != nil {
		return nil, err
	}
	resp := connect.NewResponse((*Res)(msg))
	resp.Header().Set(replayedHeader, "true")
	return resp, nil
}
