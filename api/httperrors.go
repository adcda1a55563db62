package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// Routing errors are the answers to requests that never reach a procedure:
// an unknown route, a Content-Type that no protocol accepts, a method the
// route does not serve, a body over MaxRequestBytes. net/http, connect and
// vanguard write those with an empty or plain-text body and, for the size,
// with HTTP 429, which clients read as rate limiting. apiErrors answers them
// with Connect's JSON error body instead, and with a status and message that
// say what to send.

// errorBodies writes the Connect JSON error bodies of this file. Handed
// plainRequest, which names no protocol, connect's error writer answers in
// its unary JSON shape, the one Connect clients and curl users read.
var (
	errorBodies  = connect.NewErrorWriter()
	plainRequest = &http.Request{Method: http.MethodPost, Header: http.Header{}}
)

// connectErrorBody is err as connect writes a Connect unary JSON error body:
// {"code":"not_found","message":"...","details":[...]}.
func connectErrorBody(err *connect.Error) []byte {
	var b bodyRecorder
	_ = errorBodies.Write(&b, plainRequest, err)
	return b.body.Bytes()
}

// bodyRecorder is the http.ResponseWriter that connectErrorBody hands to
// connect's error writer: it keeps the body and drops the rest.
type bodyRecorder struct {
	header http.Header
	body   bytes.Buffer
}

func (b *bodyRecorder) Header() http.Header {
	if b.header == nil {
		b.header = http.Header{}
	}
	return b.header
}

func (b *bodyRecorder) Write(p []byte) (int, error) { return b.body.Write(p) }

func (b *bodyRecorder) WriteHeader(int) {}

// writeJSONError answers err with Connect's JSON error body and the HTTP
// status, which may differ from the one Connect gives the code (413 for
// resource_exhausted, 415 for invalid_argument).
func writeJSONError(w http.ResponseWriter, status int, err *connect.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(connectErrorBody(err))
}

// noRoute answers a request for a path that no route serves.
func noRoute(w http.ResponseWriter, r *http.Request) {
	writeJSONError(w, http.StatusNotFound, connect.NewError(connect.CodeNotFound, errors.New(noRouteMessage(r.Method, r.URL.Path))))
}

func noRouteMessage(method, path string) string {
	return fmt.Sprintf("no route %s %s; the API is at /payments.v1.<Service>/<Method> (Connect, gRPC, gRPC-Web) "+
		"or /v1/... (REST), described at /openapi.yaml and /docs", method, path)
}

type callStateKey struct{}

// callState is what apiErrors and markReached share about one request.
type callState struct {
	// reached: the request got as far as the interceptors, which connect
	// calls only once the body has been read and decoded.
	reached bool
	// answered: a status has been written.
	answered bool
}

// markReached is the first interceptor. It records that the request reached
// the interceptors: a resource_exhausted answer to a request that did not
// get that far is connect's or vanguard's limit on the body's size, which
// apiErrors turns into 413, where one from a handler (too many failed
// logins, a busy password hasher) stays 429. And it stops a request that has
// been answered already: vanguard answers a REST request it cannot decode (a
// malformed body, an unknown query parameter) with an error, then hands the
// handler an empty message, which must not run (an empty Logout signs every
// session out).
func markReached() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if st, ok := ctx.Value(callStateKey{}).(*callState); ok {
				if st.answered {
					return nil, connect.NewError(connect.CodeAborted, errors.New("the request was answered before it was decoded"))
				}
				st.reached = true
			}
			return next(ctx, req)
		}
	}
}

// apiErrors wraps the API's routes (RPC, REST, reflection) so that their
// routing errors are Connect JSON errors (see the top of this file).
func apiErrors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := new(callState)
		// Vanguard rewrites the request's URL and headers in place as it
		// transcodes it: what the messages quote is taken first.
		ew := &errorWriter{ResponseWriter: w, method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"), st: st}
		next.ServeHTTP(ew, r.WithContext(context.WithValue(r.Context(), callStateKey{}, st)))
		ew.finish()
	})
}

// errorWriter holds back an error answer written without a Connect JSON
// body, or written before the request reached the interceptors as an
// internal error (vanguard's answer to a REST request it could not decode,
// which is the request's fault), for finish to answer it as a Connect error;
// it makes connect's and vanguard's 429 for an oversized body a 413. Every
// other answer passes through.
type errorWriter struct {
	http.ResponseWriter
	// method, path and contentType are the request's, as the client sent
	// them.
	method, path, contentType string
	st                        *callState
	// held is the status of the answer held back; 0 when none is.
	held int
	// text is the body of the held answer (vanguard's reason).
	text strings.Builder
}

func (w *errorWriter) WriteHeader(status int) {
	if w.st.answered || status < http.StatusOK {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.st.answered = true
	if status == http.StatusTooManyRequests && !w.st.reached {
		status = http.StatusRequestEntityTooLarge
	}
	isJSON := strings.HasPrefix(w.Header().Get("Content-Type"), "application/json")
	if status >= http.StatusBadRequest && (!isJSON || status == http.StatusInternalServerError && !w.st.reached) {
		w.held = status
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *errorWriter) Write(p []byte) (int, error) {
	if !w.st.answered {
		w.WriteHeader(http.StatusOK)
	}
	if w.held != 0 {
		// A reason is a line; the cap keeps a large body out of memory.
		if w.text.Len() < 1<<10 {
			w.text.Write(p)
		}
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush passes on, except while an answer is held: flushing would send the
// held status before finish has written the error.
func (w *errorWriter) Flush() {
	if w.held == 0 {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *errorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// heldCodes are the Connect codes of the statuses errorWriter holds back.
var heldCodes = map[int]connect.Code{
	http.StatusBadRequest:              connect.CodeInvalidArgument,
	http.StatusNotFound:                connect.CodeNotFound,
	http.StatusMethodNotAllowed:        connect.CodeUnimplemented,
	http.StatusRequestEntityTooLarge:   connect.CodeResourceExhausted,
	http.StatusUnsupportedMediaType:    connect.CodeInvalidArgument,
	http.StatusHTTPVersionNotSupported: connect.CodeUnimplemented,
}

// finish answers the held error, if any, with a message that says what to
// send instead.
func (w *errorWriter) finish() {
	if w.held == 0 {
		return
	}
	status, code := w.held, heldCodes[w.held]
	msg := strings.TrimSpace(w.text.String())
	// Vanguard writes some of its refusals as Connect JSON errors under
	// another Content-Type: keep their code and message.
	var wire struct{ Code, Message string }
	if json.Unmarshal([]byte(msg), &wire) == nil && code.UnmarshalText([]byte(wire.Code)) == nil {
		msg = wire.Message
	}
	switch status {
	case http.StatusNotFound:
		msg = noRouteMessage(w.method, w.path)
	case http.StatusMethodNotAllowed:
		msg = fmt.Sprintf("%s %s is not served: send %s", w.method, w.path, w.Header().Get("Allow"))
	case http.StatusUnsupportedMediaType:
		msg = unsupportedMediaMessage(w.contentType, msg, w.Header().Get("Accept-Post"))
	case http.StatusInternalServerError:
		if !w.st.reached {
			// Only the decoding of the request failed: nothing of the
			// platform ran.
			status, code = http.StatusBadRequest, connect.CodeInvalidArgument
		}
	}
	if code == 0 {
		code = connect.CodeUnknown
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	writeJSONError(w.ResponseWriter, status, connect.NewError(code, errors.New(msg)))
}

// unsupportedMediaMessage says which Content-Type to send: application/json
// everywhere, and for an RPC the others connect accepts (its Accept-Post).
func unsupportedMediaMessage(ct, reason, acceptPost string) string {
	switch {
	case ct == "":
		reason = "missing Content-Type"
	case !strings.HasPrefix(ct, "application/json"):
		reason = fmt.Sprintf("unsupported Content-Type %q", ct)
	}
	msg := reason + ": send Content-Type: application/json"
	if acceptPost != "" {
		msg += " (accepted: " + acceptPost + ")"
	}
	return msg
}
