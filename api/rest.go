package api

import (
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// restBufferBytes bounds what vanguard holds in memory for one REST call. It
// buffers whole messages, responses included, and a page of 100 payments
// with full metadata is about 3 MiB; requests are held to MaxRequestBytes
// before vanguard reads them (restHandler).
const restBufferBytes = 16 << 20

// rpcService is one service's Connect handler and the path prefix it serves.
type rpcService struct {
	path    string
	handler http.Handler
}

// rpc pairs what a generated New<Service>Handler returns.
func rpc(path string, handler http.Handler) rpcService { return rpcService{path, handler} }

// restHandler serves the REST routes of the protos' google.api.http
// annotations (POST /v1/payments, GET /v1/payments/{id}, ...) with vanguard,
// which transcodes each call into a Connect JSON call of the service's own
// handler behind authenticate: a REST call is authenticated, authorised,
// validated, limited and made idempotent exactly as the same RPC is, and the
// handler sees the procedure's path, as authenticate's policy table needs.
// Errors keep Connect's JSON error body (restCodec).
func (s *Server) restHandler(services []rpcService) http.Handler {
	vs := make([]*vanguard.Service, len(services))
	for i, svc := range services {
		vs[i] = vanguard.NewService(svc.path, s.authenticate(svc.handler))
	}
	t, err := vanguard.NewTranscoder(vs,
		vanguard.WithCodec(newRESTCodec),
		vanguard.WithUnknownHandler(http.HandlerFunc(noRoute)),
		vanguard.WithDefaultServiceOptions(
			vanguard.WithTargetProtocols(vanguard.ProtocolConnect),
			vanguard.WithTargetCodecs(vanguard.CodecJSON),
			vanguard.WithMaxMessageBufferBytes(restBufferBytes),
		),
	)
	if err != nil {
		// Only a bad annotation in the protos gets here, which the tests
		// of the REST routes catch; the RPC routes still serve.
		s.log.Error("REST routes are not served", "err", err)
		return http.HandlerFunc(noRoute)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Vanguard would buffer up to restBufferBytes of a body: it stops at
		// MaxRequestBytes here, and connect answers the reader's
		// *http.MaxBytesError with resource_exhausted, as it answers a body
		// over the limit on the RPC routes.
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
		t.ServeHTTP(w, r)
	})
}

// restCodec is the JSON codec of the REST routes: protojson with the RPC
// routes' options (strictJSONCodec: unknown fields refused, zero values
// written), so a REST call reads and answers the same JSON as the RPC.
//
// It is not a vanguard.StableCodec on purpose: vanguard then forwards every
// REST call as a Connect POST whose body the handler reads after
// authenticate, where with a stable codec it would decode a read-only call
// into a Connect GET first, answering an anonymous caller's malformed query
// before its credentials are checked.
//
// Vanguard writes a REST error by marshalling a google.rpc.Status with this
// codec: restCodec writes the Connect JSON error body instead, so that REST
// and Connect clients read one error shape (code names, not numbers; details
// as Connect encodes them).
type restCodec struct {
	marshal   protojson.MarshalOptions
	unmarshal protojson.UnmarshalOptions
}

func newRESTCodec(res vanguard.TypeResolver) vanguard.Codec {
	c := restCodec{marshal: jsonMarshal, unmarshal: jsonUnmarshal}
	c.marshal.Resolver, c.unmarshal.Resolver = res, res
	return c
}

func (restCodec) Name() string { return vanguard.CodecJSON }

func (c restCodec) Unmarshal(data []byte, msg proto.Message) error {
	return c.unmarshal.Unmarshal(data, msg)
}

func (c restCodec) MarshalAppend(base []byte, msg proto.Message) ([]byte, error) {
	st, ok := msg.(*status.Status)
	if !ok {
		return c.marshal.MarshalAppend(base, msg)
	}
	cerr := connect.NewError(connect.Code(st.GetCode()), errors.New(st.GetMessage()))
	for _, d := range st.GetDetails() {
		detail, err := connect.NewErrorDetail(d)
		if err != nil {
			return nil, err
		}
		cerr.AddDetail(detail)
	}
	return append(base, connectErrorBody(cerr)...), nil
}
