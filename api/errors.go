package api

import (
	"context"
	"errors"
	"log/slog"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/internal/errs"
)

// codeOf is the one mapping from domain error kinds to Connect codes.
var codeOf = map[errs.Kind]connect.Code{
	errs.KindInvalidArgument:    connect.CodeInvalidArgument,
	errs.KindNotFound:           connect.CodeNotFound,
	errs.KindAlreadyExists:      connect.CodeAlreadyExists,
	errs.KindFailedPrecondition: connect.CodeFailedPrecondition,
	errs.KindUnauthenticated:    connect.CodeUnauthenticated,
	errs.KindPermissionDenied:   connect.CodePermissionDenied,
	errs.KindResourceExhausted:  connect.CodeResourceExhausted,
	errs.KindAborted:            connect.CodeAborted,
	errs.KindUnavailable:        connect.CodeUnavailable,
}

// toConnectError turns any handler error into a Connect error. Domain errors
// keep their message; anything else is logged and answered with a generic
// `internal` so that nothing internal leaks to callers.
func toConnectError(ctx context.Context, log *slog.Logger, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	switch {
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded"))
	}
	var de *errs.Error
	if errors.As(err, &de) {
		if code, ok := codeOf[de.Kind]; ok {
			if de.Err != nil {
				log.WarnContext(ctx, "request failed", "procedure", procedure, "request_id", requestIDFrom(ctx), "code", code.String(), "err", err)
			}
			out := connect.NewError(code, errors.New(de.Message))
			if de.Field != "" {
				if detail, derr := connect.NewErrorDetail(fieldViolation(de.Field, de.Message)); derr == nil {
					out.AddDetail(detail)
				}
			}
			if de.Info != nil {
				info := &errdetails.ErrorInfo{Reason: de.Info.Reason, Domain: "payments.v1", Metadata: de.Info.Metadata}
				if detail, derr := connect.NewErrorDetail(info); derr == nil {
					out.AddDetail(detail)
				}
			}
			return out
		}
	}
	log.ErrorContext(ctx, "internal error", "procedure", procedure, "request_id", requestIDFrom(ctx), "err", err)
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

// fieldViolation builds the same detail type that the validation interceptor
// attaches, so clients read one kind of field violation whatever found it.
func fieldViolation(field, msg string) *validate.Violations {
	return &validate.Violations{Violations: []*validate.Violation{{
		Field:   &validate.FieldPath{Elements: []*validate.FieldPathElement{{FieldName: proto.String(field)}}},
		Message: proto.String(msg),
	}}}
}
