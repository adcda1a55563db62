package api

import (
	"context"
	"net/http"
	"regexp"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
)

// RequestIDHeader names a request in the logs of its failures, in the
// audit trail and in support questions: a client's own id is kept when it is well formed,
// otherwise the server makes one; every response carries it.
const RequestIDHeader = "X-Request-Id"

// clientRequestID is what a client's request id may look like.
var clientRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

type requestIDKey struct{}

// requestIDFrom is the request's id ("" outside a request).
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives every request its id and answers with it.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !clientRequestID.MatchString(id) {
			id = ids.New("req_")
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// who is the audit row of a request before its type and target: the
// caller (if signed in), its API key, its address and the request id.
func (s *Server) who(ctx context.Context, peer string, hdr http.Header) store.Audit {
	a := store.Audit{RequestID: requestIDFrom(ctx), At: s.now()}
	if p, ok := principalFrom(ctx); ok {
		a.ActorID, a.APIKeyID = p.AccountID, p.APIKeyID
	}
	if ip := clientIP(peer, hdr, s.d.TrustedProxies); ip.IsValid() {
		a.ClientIP = ip.String()
	}
	return a
}

// auditAfter records what a transaction of the store could not carry: a
// decision a workflow made (ResolveDispute), a failed login that started a
// lockout. Best effort after the fact, logged if the row cannot be
// written, since what it records stands.
func (s *Server) auditAfter(ctx context.Context, a store.Audit) {
	if err := s.d.Store.RecordAudit(context.WithoutCancel(ctx), a); err != nil {
		s.log.ErrorContext(ctx, "not audited", "type", a.Type, "err", err)
	}
}

// whoOf is who for a Connect request.
func (s *Server) whoOf(ctx context.Context, req connect.AnyRequest) store.Audit {
	return s.who(ctx, req.Peer().Addr, req.Header())
}

func (h *adminService) ListAuditEvents(ctx context.Context, req *connect.Request[paymentsv1.ListAuditEventsRequest]) (*connect.Response[paymentsv1.ListAuditEventsResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := checkIDFilters(idFilter{"actor_id", m.ActorId, ids.Account}, idFilter{"target_id", m.TargetId, ids.Account}); err != nil {
		return nil, err
	}
	f := store.AuditFilter{ActorID: m.ActorId, TargetID: m.TargetId, Type: m.Type}
	_, f.CreatedAfter, f.CreatedBefore = listScope(p, m.CreatedAfter, m.CreatedBefore)
	evs, next, err := listPage(h.s, "audit_events", p, m, store.AuditCursor,
		func(page store.Page) ([]*ent.AuditEvent, error) { return h.s.d.Store.ListAuditEvents(ctx, f, page) })
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListAuditEventsResponse{NextPageToken: next}
	for _, e := range evs {
		res.AuditEvents = append(res.AuditEvents, &paymentsv1.AuditEvent{
			Id: e.ID, Type: e.Type, ActorId: e.ActorID, ApiKeyId: e.APIKeyID, TargetId: e.TargetID,
			ClientIp: e.ClientIP, RequestId: e.RequestID, Detail: e.Detail, CreatedAt: timestamppb.New(e.CreatedAt),
		})
	}
	return connect.NewResponse(res), nil
}
