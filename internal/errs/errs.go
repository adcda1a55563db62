// Package errs holds the domain errors that every layer returns. The API maps
// them to Connect codes in exactly one place (api/errors.go), so a store or
// workflow never needs to know about the wire.
package errs

import (
	"errors"
	"fmt"
)

// Kind is the class of a domain error; each maps to one Connect code.
type Kind int

// The kinds of domain errors.
const (
	KindInternal Kind = iota
	KindInvalidArgument
	KindNotFound
	KindAlreadyExists
	KindFailedPrecondition
	KindUnauthenticated
	KindPermissionDenied
	KindResourceExhausted
	KindAborted
	KindUnavailable
)

// Error is a domain error: a kind, a message safe to show to the caller and,
// for invalid arguments, the field at fault.
type Error struct {
	Kind    Kind
	Message string
	// Field names the request field at fault (protobuf field path), if any.
	Field string
	// Err is the cause, never shown to callers.
	Err error
	// Info, if set, is machine-readable context for the caller, such as the
	// id of an object the failed request may have created.
	Info *Info
}

// Info is an error's machine-readable context (google.rpc.ErrorInfo on the
// wire): a stable reason in UPPER_SNAKE_CASE and metadata about it.
type Info struct {
	Reason   string
	Metadata map[string]string
}

// Error returns the message, with the cause for logs.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) and friends match any error of the same kind.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) && t.Message == "" && t.Field == "" && t.Err == nil {
		return t.Kind == e.Kind
	}
	return false
}

// Sentinels for errors.Is; they match every error of their kind.
var (
	ErrNotFound           = &Error{Kind: KindNotFound}
	ErrAlreadyExists      = &Error{Kind: KindAlreadyExists}
	ErrFailedPrecondition = &Error{Kind: KindFailedPrecondition}
	ErrInvalidArgument    = &Error{Kind: KindInvalidArgument}
	ErrUnauthenticated    = &Error{Kind: KindUnauthenticated}
	ErrPermissionDenied   = &Error{Kind: KindPermissionDenied}
	ErrResourceExhausted  = &Error{Kind: KindResourceExhausted}
	ErrAborted            = &Error{Kind: KindAborted}
	ErrUnavailable        = &Error{Kind: KindUnavailable}
)

// NotFound says an object does not exist or belongs to someone else.
func NotFound(what string) error {
	return &Error{Kind: KindNotFound, Message: what + " not found"}
}

// AlreadyExists says a unique object exists already.
func AlreadyExists(format string, a ...any) error {
	return &Error{Kind: KindAlreadyExists, Message: fmt.Sprintf(format, a...)}
}

// FailedPrecondition says the object's state forbids the change.
func FailedPrecondition(format string, a ...any) error {
	return &Error{Kind: KindFailedPrecondition, Message: fmt.Sprintf(format, a...)}
}

// InvalidArgument says a request field is wrong.
func InvalidArgument(field, format string, a ...any) error {
	return &Error{Kind: KindInvalidArgument, Field: field, Message: fmt.Sprintf(format, a...)}
}

// Unauthenticated says the credentials are missing or wrong.
func Unauthenticated(msg string) error {
	return &Error{Kind: KindUnauthenticated, Message: msg}
}

// PermissionDenied says the caller's role may not do this.
func PermissionDenied(msg string) error {
	return &Error{Kind: KindPermissionDenied, Message: msg}
}

// ResourceExhausted says a rate or size limit was hit.
func ResourceExhausted(msg string) error {
	return &Error{Kind: KindResourceExhausted, Message: msg}
}

// Aborted says a concurrent operation got in the way; retrying may succeed.
func Aborted(msg string) error {
	return &Error{Kind: KindAborted, Message: msg}
}

// Unavailable says a dependency is down; retrying later may succeed.
func Unavailable(msg string, cause error) error {
	return &Error{Kind: KindUnavailable, Message: msg, Err: cause}
}

// KindOf returns the kind of err, KindInternal for errors that are not domain errors.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
