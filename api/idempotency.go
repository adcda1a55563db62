package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/ent/idempotencykey"
	"github.com/payments-platform/payments/internal/errs"
)

const (
	idempotencyHeader   = "Idempotency-Key"
	replayedHeader      = "Idempotent-Replayed"
	idempotencyTTL      = 24 * time.Hour
	idempotencyMaxWait  = 30 * time.Second
	idempotencyPoll     = 25 * time.Millisecond
	maxIdempotencyBytes = 255
)

// idemCall is what an idempotent handler learns about its key.
type idemCall struct {
	// Seed is stable for one (account, key): handlers derive object ids from
	// it so that even a takeover after a crash reaches the same object.
	Seed []byte
	// At is when the key was first used.
	At time.Time
}

// deterministicCodes are outcomes that replay like successes; any other error
// frees the key so that the client may retry.
var deterministicCodes = map[errs.Kind]connect.Code{
	errs.KindInvalidArgument:    connect.CodeInvalidArgument,
	errs.KindNotFound:           connect.CodeNotFound,
	errs.KindAlreadyExists:      connect.CodeAlreadyExists,
	errs.KindFailedPrecondition: connect.CodeFailedPrecondition,
	errs.KindPermissionDenied:   connect.CodePermissionDenied,
}

// idempotent runs fn at most once per (account, Idempotency-Key), as API.md
// says: the same key and request replay the first result with
// `Idempotent-Replayed: true`; the same key with another request is
// invalid_argument; a key still running is waited for, or aborted.
func idempotent[Res any, PRes interface {
	*Res
	proto.Message
}](ctx context.Context, s *Server, procedure, accountID string, header http.Header, reqMsg proto.Message, fn func(context.Context, idemCall) (PRes, error)) (*connect.Response[Res], error) {
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
	if !fresh {
		if rec.Method != procedure || rec.RequestHash != hash {
			return nil, errs.InvalidArgument(idempotencyHeader, "this Idempotency-Key was already used with a different request")
		}
		deadline := time.Now().Add(idempotencyMaxWait)
		for rec.State != idempotencykey.StateCompleted {
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
				// The first request failed in a way that frees the key.
				return nil, errs.Aborted("the first request with this Idempotency-Key failed; retry")
			}
			if err != nil {
				return nil, err
			}
		}
		return replay[Res, PRes](rec.ResponseCode, rec.ResponseBody)
	}

	call := idemCall{Seed: []byte(accountID + "\x00" + key), At: rec.CreatedAt}
	res, ferr := fn(ctx, call)
	done := context.WithoutCancel(ctx)
	if ferr != nil {
		if code, ok := deterministicCodes[errs.KindOf(ferr)]; ok {
			var de *errs.Error
			errors.As(ferr, &de)
			if err := s.d.Store.CompleteIdempotency(done, rec.ID, int(code), []byte(de.Message), s.now()); err != nil {
				s.log.ErrorContext(ctx, "completing an idempotency key", "err", err)
			}
		} else if err := s.d.Store.AbandonIdempotency(done, rec.ID); err != nil {
			s.log.ErrorContext(ctx, "abandoning an idempotency key", "err", err)
		}
		return nil, ferr
	}
	out, err := proto.Marshal(res)
	if err != nil {
		return nil, err
	}
	if err := s.d.Store.CompleteIdempotency(done, rec.ID, 0, out, s.now()); err != nil {
		return nil, err
	}
	resp := connect.NewResponse((*Res)(res))
	resp.Header().Set(replayedHeader, "false")
	return resp, nil
}

func replay[Res any, PRes interface {
	*Res
	proto.Message
}](code int, body []byte) (*connect.Response[Res], error) {
	if code != 0 {
		cerr := connect.NewError(connect.Code(code), errors.New(string(body)))
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
