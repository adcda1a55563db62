package api_test

// Tests of WebhookService through the real handler stack: who sees and
// changes which endpoints, events and deliveries; what input is refused,
// with which code and field; the secret shown once, rotations, disabling.
// Events and deliveries are seeded through the store, as the workflows
// write them. The harness has no Temporal: RedeliverEvent answers
// unavailable once it has found what it would deliver.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/delivery"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/webhookendpoint"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/webhooks"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
)

// whSealerKey keys the test servers' sealer, so a test can open the
// secrets the store keeps.
var whSealerKey = []byte("webhooks-test-sealer-key-0123456789")

func whSealer(t *testing.T) *webhooks.Sealer {
	t.Helper()
	s, err := webhooks.NewSealer(whSealerKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeResolver answers the URL policy's lookups without DNS.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if addrs, ok := r[host]; ok {
		return addrs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// withWebhookDeps applies the production URL policy (https, public
// addresses only) with a resolver that knows two names, and the test's
// sealer.
func withWebhookDeps(t *testing.T) envOption {
	return func(d *api.Deps) {
		d.WebhookURLs = webhooks.URLPolicy{Resolver: fakeResolver{
			"private.example.test": {netip.MustParseAddr("10.0.0.7")},
			"public.example.test":  {netip.MustParseAddr("93.184.216.34")},
			"mixed.example.test":   {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("127.0.0.1")},
		}}
		d.WebhookSealer = whSealer(t)
	}
}

const hookURL = "https://public.example.test/hook"

// whCall sends a WebhookService request over tr: the generated client for
// connect+json and gRPC, raw JSON for http+json.
func whCall(t *testing.T, e *env, tr transport, authz string, req proto.Message) result {
	t.Helper()
	if tr == httpJSON {
		return e.call(t, tr, authz, req)
	}
	var opts []connect.ClientOption
	switch tr {
	case connectJSON:
		opts = append(opts, connect.WithProtoJSON())
	case grpcProto:
		opts = append(opts, connect.WithGRPC())
	default:
		t.Fatalf("unknown transport %q", tr)
	}
	c := paymentsv1connect.NewWebhookServiceClient(e.h2c, e.url, opts...)
	ctx := ctxT(t)
	var res proto.Message
	var err error
	switch m := req.(type) {
	case *pb.CreateWebhookEndpointRequest:
		res, err = unary(ctx, authz, m, c.CreateWebhookEndpoint)
	case *pb.GetWebhookEndpointRequest:
		res, err = unary(ctx, authz, m, c.GetWebhookEndpoint)
	case *pb.ListWebhookEndpointsRequest:
		res, err = unary(ctx, authz, m, c.ListWebhookEndpoints)
	case *pb.UpdateWebhookEndpointRequest:
		res, err = unary(ctx, authz, m, c.UpdateWebhookEndpoint)
	case *pb.DeleteWebhookEndpointRequest:
		res, err = unary(ctx, authz, m, c.DeleteWebhookEndpoint)
	case *pb.RotateWebhookSecretRequest:
		res, err = unary(ctx, authz, m, c.RotateWebhookSecret)
	case *pb.ListEventsRequest:
		res, err = unary(ctx, authz, m, c.ListEvents)
	case *pb.GetEventRequest:
		res, err = unary(ctx, authz, m, c.GetEvent)
	case *pb.ListDeliveriesRequest:
		res, err = unary(ctx, authz, m, c.ListDeliveries)
	case *pb.RedeliverEventRequest:
		res, err = unary(ctx, authz, m, c.RedeliverEvent)
	default:
		return e.call(t, tr, authz, req)
	}
	if err != nil {
		return connectErrResult(t, tr, err)
	}
	return result{tr: tr, resp: res}
}

// createEndpoint creates an endpoint for u, which must succeed.
func createEndpoint(t *testing.T, e *env, u user, events ...string) *pb.CreateWebhookEndpointResponse {
	t.Helper()
	if len(events) == 0 {
		events = []string{"*"}
	}
	return wantOK[*pb.CreateWebhookEndpointResponse](t, whCall(t, e, httpJSON, u.authz(), &pb.CreateWebhookEndpointRequest{
		Url: hookURL, EnabledEvents: events, Description: "test endpoint",
	}))
}

// storedEndpoint is the endpoint's row, every column.
func storedEndpoint(t *testing.T, e *env, id string) string {
	t.Helper()
	ep, err := e.st.Client.WebhookEndpoint.Get(ctxT(t), id)
	if err != nil {
		t.Fatalf("endpoint %s: %v", id, err)
	}
	exp := "nil"
	if ep.PreviousSecretExpiresAt != nil {
		exp = ep.PreviousSecretExpiresAt.UTC().String()
	}
	return fmt.Sprintf("%s %s all=%v %s %v %q %s %q %q %q %s %s %s", ep.ID, ep.AccountID, ep.AllMerchants, ep.URL,
		ep.EnabledEvents, ep.Description, ep.Status, ep.DisabledReason, ep.Secret, ep.PreviousSecret, exp,
		ep.CreatedAt.UTC(), ep.UpdatedAt.UTC())
}

func countRows(t *testing.T, e *env) (endpoints, deliveries int) {
	t.Helper()
	ctx := ctxT(t)
	endpoints, err := e.st.Client.WebhookEndpoint.Query().Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err = e.st.Client.Delivery.Query().Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return endpoints, deliveries
}

// paidAt saves a payment of m and c that succeeds at at, as its workflow
// would (processing, then succeeded), and returns its id and the id of its
// payment.succeeded event.
func paidAt(t *testing.T, e *env, m, c user, at time.Time) (paymentID, eventID string) {
	t.Helper()
	ctx := ctxT(t)
	id := ids.NewAt(ids.Payment, at)
	rec := store.PaymentRecord{
		ID: id, MerchantID: m.acct.GetId(), CustomerID: c.acct.GetId(), Amount: 1500, Currency: "USD",
		Status: entpayment.StatusProcessing, PaymentMethod: "pm_card_visa", Gateway: "sandbox",
		WorkflowID: "payment/" + id, Version: 1, CreatedAt: at.Add(-time.Second), UpdatedAt: at.Add(-time.Second),
	}
	if _, err := e.st.SavePayment(ctx, rec, nil); err != nil {
		t.Fatal(err)
	}
	rec.Version, rec.Status, rec.AmountReceived, rec.GatewayReference, rec.UpdatedAt = 2, entpayment.StatusSucceeded, 1500, "pi_"+id, at
	if _, err := e.st.SavePayment(ctx, rec, nil); err != nil {
		t.Fatal(err)
	}
	evs, err := e.st.ListEvents(ctx, store.EventFilter{ObjectID: id}, store.Page{Limit: 10})
	if err != nil || len(evs) != 1 || evs[0].Type != "payment.succeeded" {
		t.Fatalf("events of %s: %v, %v; want one payment.succeeded", id, evs, err)
	}
	return id, evs[0].ID
}

func eventIDs(es []*pb.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.GetId())
	}
	return out
}

func endpointIDsOf(eps []*pb.WebhookEndpoint) []string {
	var out []string
	for _, ep := range eps {
		out = append(out, ep.GetId())
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// allWebhookRPCs are a request of each RPC of WebhookService, valid in
// form, about ids (endpoint, event) the caller may not see.
func allWebhookRPCs(endpointID, eventID string) []proto.Message {
	return []proto.Message{
		&pb.CreateWebhookEndpointRequest{Url: hookURL, EnabledEvents: []string{"*"}},
		&pb.GetWebhookEndpointRequest{Id: endpointID},
		&pb.ListWebhookEndpointsRequest{},
		&pb.UpdateWebhookEndpointRequest{Id: endpointID, Description: proto.String("x")},
		&pb.DeleteWebhookEndpointRequest{Id: endpointID},
		&pb.RotateWebhookSecretRequest{Id: endpointID},
		&pb.ListEventsRequest{},
		&pb.GetEventRequest{Id: eventID},
		&pb.ListDeliveriesRequest{},
		&pb.RedeliverEventRequest{EventId: eventID},
	}
}

func TestWebhookRPCsAreScopedToTheirOwners(t *testing.T) {
	e := newEnv(t, withWebhookDeps(t))
	mA, mB, cust, admin := e.merchant(t), e.merchant(t), e.customer(t), e.admin(t)
	epA := createEndpoint(t, e, mA).GetWebhookEndpoint()
	epB := createEndpoint(t, e, mB).GetWebhookEndpoint()
	epAdmin := createEndpoint(t, e, admin).GetWebhookEndpoint()
	if epA.GetAllMerchants() || epB.GetAllMerchants() || !epAdmin.GetAllMerchants() {
		t.Fatalf("all_merchants: A %v, B %v, admin %v; want only the admin's", epA.GetAllMerchants(), epB.GetAllMerchants(), epAdmin.GetAllMerchants())
	}
	_, evB := paidAt(t, e, mB, cust, e.clock.Now())

	t.Run("customers may call none", func(t *testing.T) {
		before := storedEndpoint(t, e, epB.GetId())
		for _, req := range allWebhookRPCs(epB.GetId(), evB) {
			for _, tr := range allTransports {
				whCall(t, e, tr, cust.authz(), req).wantErr(t, want{code: connect.CodePermissionDenied, msg: "customer role may not call"})
			}
		}
		if after := storedEndpoint(t, e, epB.GetId()); after != before {
			t.Fatalf("a refused call changed the endpoint:\n%s\n%s", before, after)
		}
		if n, _ := countRows(t, e); n != 3 {
			t.Fatalf("%d endpoints after the customer's calls, want 3", n)
		}
	})

	t.Run("a merchant cannot reach another's endpoint", func(t *testing.T) {
		before := storedEndpoint(t, e, epB.GetId())
		for _, req := range []proto.Message{
			&pb.GetWebhookEndpointRequest{Id: epB.GetId()},
			&pb.UpdateWebhookEndpointRequest{Id: epB.GetId(), Description: proto.String("mine now")},
			&pb.UpdateWebhookEndpointRequest{Id: epB.GetId(), Disabled: proto.Bool(true)},
			&pb.DeleteWebhookEndpointRequest{Id: epB.GetId()},
			&pb.RotateWebhookSecretRequest{Id: epB.GetId(), PreviousSecretOverlap: durationpb.New(time.Hour)},
			// The admin's too, though it receives A's events.
			&pb.GetWebhookEndpointRequest{Id: epAdmin.GetId()},
			&pb.DeleteWebhookEndpointRequest{Id: epAdmin.GetId()},
		} {
			for _, tr := range allTransports {
				whCall(t, e, tr, mA.authz(), req).wantErr(t, want{code: connect.CodeNotFound})
			}
		}
		if after := storedEndpoint(t, e, epB.GetId()); after != before {
			t.Fatalf("a refused call changed the endpoint:\n%s\n%s", before, after)
		}
		// The same answer as for an endpoint that does not exist.
		whCall(t, e, httpJSON, mA.authz(), &pb.GetWebhookEndpointRequest{Id: ids.New(ids.Endpoint)}).wantErr(t, want{code: connect.CodeNotFound})
	})

	t.Run("who sees which endpoints", func(t *testing.T) {
		cases := []struct {
			name string
			u    user
			want []string
		}{
			{"merchant A", mA, []string{epA.GetId()}},
			{"merchant B", mB, []string{epB.GetId()}},
			{"admin: everyone's", admin, sorted(epA.GetId(), epB.GetId(), epAdmin.GetId())},
		}
		for _, tc := range cases {
			for _, tr := range allTransports {
				res := wantOK[*pb.ListWebhookEndpointsResponse](t, whCall(t, e, tr, tc.u.authz(), &pb.ListWebhookEndpointsRequest{}))
				if got := endpointIDsOf(res.GetWebhookEndpoints()); !slices.Equal(got, tc.want) {
					t.Fatalf("%s over %s: ListWebhookEndpoints = %v, want %v", tc.name, tr, got, tc.want)
				}
			}
		}
		got := wantOK[*pb.GetWebhookEndpointResponse](t, whCall(t, e, grpcProto, admin.authz(), &pb.GetWebhookEndpointRequest{Id: epB.GetId()}))
		if got.GetWebhookEndpoint().GetId() != epB.GetId() {
			t.Fatalf("admin's GetWebhookEndpoint = %v", got.GetWebhookEndpoint())
		}
		own := wantOK[*pb.GetWebhookEndpointResponse](t, whCall(t, e, connectJSON, mA.authz(), &pb.GetWebhookEndpointRequest{Id: epA.GetId()}))
		if !proto.Equal(own.GetWebhookEndpoint(), epA) {
			t.Fatalf("GetWebhookEndpoint = %v, want what CreateWebhookEndpoint answered, %v", own.GetWebhookEndpoint(), epA)
		}
	})
}

func TestWebhookEventsAndDeliveriesAreScoped(t *testing.T) {
	e := newEnv(t, withWebhookDeps(t))
	mA, mB, cust, admin := e.merchant(t), e.merchant(t), e.customer(t), e.admin(t)
	now := e.clock.Now()
	payA1, evA1 := paidAt(t, e, mA, cust, now.Add(-3*time.Minute))
	payB1, evB1 := paidAt(t, e, mB, cust, now.Add(-2*time.Minute))
	_, evA2 := paidAt(t, e, mA, cust, now.Add(-time.Minute))

	epA := createEndpoint(t, e, mA).GetWebhookEndpoint()
	epB := createEndpoint(t, e, mB).GetWebhookEndpoint()
	epAdmin := createEndpoint(t, e, admin).GetWebhookEndpoint()
	// Attempts as the delivery workflows record them.
	delivered := map[string]string{}
	for i, d := range []struct{ name, event, endpoint, account string }{
		{"A1 to A", evA1, epA.GetId(), mA.acct.GetId()},
		{"A1 to admin", evA1, epAdmin.GetId(), admin.acct.GetId()},
		{"B1 to B", evB1, epB.GetId(), mB.acct.GetId()},
		{"A2 to A", evA2, epA.GetId(), mA.acct.GetId()},
	} {
		at := now.Add(time.Duration(i) * time.Second)
		id := ids.NewAt(ids.Delivery, at)
		if _, err := e.st.SaveDelivery(ctxT(t), store.DeliveryRecord{
			ID: id, EventID: d.event, EndpointID: d.endpoint, AccountID: d.account, WorkflowID: "webhook/" + d.event + "/" + d.endpoint,
			Attempt: 1, Status: delivery.StatusFailed, ResponseStatus: 500, Error: "HTTP 500", ResponseBody: "secret stack trace", At: at,
		}); err != nil {
			t.Fatal(err)
		}
		delivered[d.name] = id
	}

	t.Run("ListEvents", func(t *testing.T) {
		cases := []struct {
			name string
			u    user
			req  *pb.ListEventsRequest
			want []string
		}{
			{"merchant A: its own, newest first", mA, &pb.ListEventsRequest{}, []string{evA2, evA1}},
			{"merchant B", mB, &pb.ListEventsRequest{}, []string{evB1}},
			{"admin: everyone's", admin, &pb.ListEventsRequest{}, []string{evA2, evB1, evA1}},
			{"merchant A, B's payment", mA, &pb.ListEventsRequest{ObjectId: payB1}, nil},
			{"merchant A, its payment", mA, &pb.ListEventsRequest{ObjectId: payA1}, []string{evA1}},
			{"admin, type payment.succeeded", admin, &pb.ListEventsRequest{Type: "payment.succeeded"}, []string{evA2, evB1, evA1}},
			{"merchant A, type refund.created", mA, &pb.ListEventsRequest{Type: "refund.created"}, nil},
			{"admin, created in [-2m, -1m)", admin, &pb.ListEventsRequest{
				CreatedAfter: timestamppb.New(now.Add(-2 * time.Minute)), CreatedBefore: timestamppb.New(now.Add(-time.Minute))}, []string{evB1}},
		}
		for _, tc := range cases {
			for _, tr := range allTransports {
				res := wantOK[*pb.ListEventsResponse](t, whCall(t, e, tr, tc.u.authz(), tc.req))
				if got := eventIDs(res.GetEvents()); !slices.Equal(got, tc.want) {
					t.Fatalf("%s over %s: ListEvents = %v, want %v", tc.name, tr, got, tc.want)
				}
			}
		}
		// Paged one by one: the same, then the end.
		var got []string
		req := &pb.ListEventsRequest{PageSize: 1}
		for range 5 {
			res := wantOK[*pb.ListEventsResponse](t, whCall(t, e, httpJSON, admin.authz(), req))
			got = append(got, eventIDs(res.GetEvents())...)
			if res.GetNextPageToken() == "" {
				break
			}
			req.PageToken = res.GetNextPageToken()
		}
		if want := []string{evA2, evB1, evA1}; !slices.Equal(got, want) {
			t.Fatalf("paged by 1: %v, want %v", got, want)
		}
	})

	t.Run("GetEvent", func(t *testing.T) {
		cases := []struct {
			name   string
			u      user
			id     string
			code   connect.Code
			object string
		}{
			{"merchant A, its own", mA, evA1, 0, payA1},
			{"merchant A, B's", mA, evB1, connect.CodeNotFound, ""},
			{"merchant B, A's", mB, evA2, connect.CodeNotFound, ""},
			{"admin, B's", admin, evB1, 0, payB1},
			{"merchant A, no such event", mA, store.EventID(payA1, 9, now), connect.CodeNotFound, ""},
		}
		for _, tc := range cases {
			for _, tr := range allTransports {
				r := whCall(t, e, tr, tc.u.authz(), &pb.GetEventRequest{Id: tc.id})
				if tc.code != 0 {
					r.wantErr(t, want{code: tc.code})
					continue
				}
				ev := wantOK[*pb.GetEventResponse](t, r).GetEvent()
				data := ev.GetData().GetFields()
				if ev.GetId() != tc.id || ev.GetType() != "payment.succeeded" || ev.GetObjectId() != tc.object ||
					ev.GetSequence() != 3 || data["id"].GetStringValue() != tc.object ||
					data["status"].GetStringValue() != pb.PaymentStatus_PAYMENT_STATUS_SUCCEEDED.String() {
					t.Fatalf("%s over %s: GetEvent = %v", tc.name, tr, ev)
				}
			}
		}
	})

	t.Run("ListDeliveries", func(t *testing.T) {
		cases := []struct {
			name string
			u    user
			req  *pb.ListDeliveriesRequest
			want []string
		}{
			{"merchant A: to its endpoint only", mA, &pb.ListDeliveriesRequest{}, []string{"A2 to A", "A1 to A"}},
			{"merchant B", mB, &pb.ListDeliveriesRequest{}, []string{"B1 to B"}},
			{"admin: every attempt", admin, &pb.ListDeliveriesRequest{}, []string{"A2 to A", "B1 to B", "A1 to admin", "A1 to A"}},
			{"merchant A, event A1", mA, &pb.ListDeliveriesRequest{EventId: evA1}, []string{"A1 to A"}},
			{"merchant A, B's endpoint", mA, &pb.ListDeliveriesRequest{EndpointId: epB.GetId()}, nil},
			{"merchant A, the admin's endpoint", mA, &pb.ListDeliveriesRequest{EndpointId: epAdmin.GetId()}, nil},
			{"merchant B, A's event", mB, &pb.ListDeliveriesRequest{EventId: evA1}, nil},
			{"admin, event A1", admin, &pb.ListDeliveriesRequest{EventId: evA1}, []string{"A1 to admin", "A1 to A"}},
		}
		names := map[string]string{}
		for name, id := range delivered {
			names[id] = name
		}
		for _, tc := range cases {
			for _, tr := range allTransports {
				r := whCall(t, e, tr, tc.u.authz(), tc.req)
				res := wantOK[*pb.ListDeliveriesResponse](t, r)
				var got []string
				for _, d := range res.GetDeliveries() {
					got = append(got, names[d.GetId()])
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("%s over %s: ListDeliveries = %v, want %v", tc.name, tr, got, tc.want)
				}
				// The receiver's body is kept for operators, never shown.
				if tr == httpJSON && bytes.Contains(r.body, []byte("stack trace")) {
					t.Fatalf("ListDeliveries shows the receiver's body: %s", r.body)
				}
			}
		}
	})

	t.Run("RedeliverEvent", func(t *testing.T) {
		_, before := countRows(t, e)
		cases := []struct {
			name string
			u    user
			req  *pb.RedeliverEventRequest
			code connect.Code
		}{
			// Found what to deliver; no workflow service to start it.
			{"merchant A, its event, to its endpoints", mA, &pb.RedeliverEventRequest{EventId: evA1}, connect.CodeUnavailable},
			{"merchant A, its event, to its endpoint", mA, &pb.RedeliverEventRequest{EventId: evA1, EndpointId: epA.GetId()}, connect.CodeUnavailable},
			{"merchant A, B's event", mA, &pb.RedeliverEventRequest{EventId: evB1}, connect.CodeNotFound},
			{"merchant A, its event, to B's endpoint", mA, &pb.RedeliverEventRequest{EventId: evA1, EndpointId: epB.GetId()}, connect.CodeNotFound},
			{"admin, A's event to B's endpoint", admin, &pb.RedeliverEventRequest{EventId: evA1, EndpointId: epB.GetId()}, connect.CodeFailedPrecondition},
			{"merchant A, endpoint_id not we_", mA, &pb.RedeliverEventRequest{EventId: evA1, EndpointId: "pay_x"}, connect.CodeInvalidArgument},
		}
		for _, tc := range cases {
			for _, tr := range allTransports {
				whCall(t, e, tr, tc.u.authz(), tc.req).wantErr(t, want{code: tc.code})
			}
		}
		if _, after := countRows(t, e); after != before {
			t.Fatalf("refused redeliveries wrote %d delivery rows", after-before)
		}
	})
}

// RedeliverEvent without an endpoint goes to "every enabled endpoint of the
// caller subscribed to it" (docs/API.md, Deliveries).
func TestWebhookRedeliverEventWithoutEndpointChoosesTheCallersEndpoints(t *testing.T) {
	e := newEnv(t, withWebhookDeps(t))
	mA, cust, admin := e.merchant(t), e.customer(t), e.admin(t)
	_, evA := paidAt(t, e, mA, cust, e.clock.Now())
	epA := createEndpoint(t, e, mA, "payment.succeeded").GetWebhookEndpoint()
	adminOther := createEndpoint(t, e, admin, "dispute.opened").GetWebhookEndpoint()
	cases := []struct {
		name string
		u    user
		code connect.Code
		msg  string
	}{
		{"merchant: its endpoint is subscribed", mA, connect.CodeUnavailable, ""},
		{"admin: its only endpoint is not subscribed", admin, connect.CodeFailedPrecondition, "no enabled endpoint of yours"},
	}
	for _, tc := range cases {
		r := whCall(t, e, httpJSON, tc.u.authz(), &pb.RedeliverEventRequest{EventId: evA})
		if r.code != tc.code {
			t.Errorf("%s: RedeliverEvent{%s} without endpoint_id = %v (%q), want %v %q: it goes to the caller's own "+
				"subscribed endpoints only (the admin's %s takes dispute.opened only; merchant A's %s is not the admin's)",
				tc.name, evA, codeName(r.code), r.msg, tc.code, tc.msg, adminOther.GetId(), epA.GetId())
			continue
		}
		if tc.msg != "" && !strings.Contains(r.msg, tc.msg) {
			t.Errorf("%s: message %q, want it to contain %q", tc.name, r.msg, tc.msg)
		}
	}
}

func TestWebhookBadInputIsRefused(t *testing.T) {
	e := newEnv(t, withWebhookDeps(t))
	mA, mB := e.merchant(t), e.merchant(t)
	ep := createEndpoint(t, e, mA).GetWebhookEndpoint()
	// Two events of A, so its lists have a next page.
	now := e.clock.Now()
	cust := e.customer(t)
	paidAt(t, e, mA, cust, now.Add(-2*time.Minute))
	paidAt(t, e, mA, cust, now.Add(-time.Minute))
	createEndpoint(t, e, mA)
	epsToken := wantOK[*pb.ListWebhookEndpointsResponse](t, whCall(t, e, httpJSON, mA.authz(), &pb.ListWebhookEndpointsRequest{PageSize: 1})).GetNextPageToken()
	evToken := wantOK[*pb.ListEventsResponse](t, whCall(t, e, httpJSON, mA.authz(), &pb.ListEventsRequest{PageSize: 1})).GetNextPageToken()
	if epsToken == "" || evToken == "" {
		t.Fatalf("no next page tokens (%q, %q)", epsToken, evToken)
	}
	create := func(url string, events ...string) *pb.CreateWebhookEndpointRequest {
		if events == nil {
			events = []string{"*"}
		}
		return &pb.CreateWebhookEndpointRequest{Url: url, EnabledEvents: events}
	}
	stored := storedEndpoint(t, e, ep.GetId())
	endpoints, deliveries := countRows(t, e)

	cases := []struct {
		name string
		u    user
		req  proto.Message
		want want
	}{
		{"url not a URL", mA, create("not a url"), want{code: connect.CodeInvalidArgument, field: "url"}},
		{"url relative", mA, create("/hook"), want{code: connect.CodeInvalidArgument, field: "url"}},
		{"url http", mA, create("http://public.example.test/hook"), want{code: connect.CodeInvalidArgument, field: "url", msg: "https"}},
		{"url ftp", mA, create("ftp://public.example.test/hook"), want{code: connect.CodeInvalidArgument, field: "url", msg: "https"}},
		{"url loopback", mA, create("https://127.0.0.1/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "loopback"}},
		{"url IPv6 loopback", mA, create("https://[::1]/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "loopback"}},
		{"url loopback mapped into IPv6", mA, create("https://[::ffff:127.0.0.1]/"), want{code: connect.CodeInvalidArgument, field: "url"}},
		{"url private", mA, create("https://10.0.0.1/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "private"}},
		{"url cloud metadata", mA, create("https://169.254.169.254/latest/meta-data"), want{code: connect.CodeInvalidArgument, field: "url", msg: "link-local"}},
		{"url shared (CGNAT)", mA, create("https://100.64.0.1/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "reserved"}},
		{"url localhost", mA, create("https://localhost/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "local"}},
		{"url LOCALHOST., port", mA, create("https://LOCALHOST.:8443/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "local"}},
		{"url *.internal", mA, create("https://metadata.google.internal/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "local"}},
		{"url resolving to a private address", mA, create("https://private.example.test/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "private"}},
		{"url resolving to a public and a loopback address", mA, create("https://mixed.example.test/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "loopback"}},
		{"url not resolving", mA, create("https://nowhere.example.test/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "does not resolve"}},
		{"url with credentials", mA, create("https://user:pw@public.example.test/"), want{code: connect.CodeInvalidArgument, field: "url", msg: "credentials"}},
		{"unknown event type", mA, create(hookURL, "payment.exploded"), want{code: connect.CodeInvalidArgument, field: "enabled_events", msg: "unknown event type"}},
		{"a step that is not an event type", mA, create(hookURL, "payment.created"), want{code: connect.CodeInvalidArgument, field: "enabled_events", msg: "unknown event type"}},
		{"empty enabled_events", mA, create(hookURL, []string{}...), want{code: connect.CodeInvalidArgument, field: "enabled_events"}},

		{"update: url private", mA, &pb.UpdateWebhookEndpointRequest{Id: ep.GetId(), Url: proto.String("https://10.0.0.1/")},
			want{code: connect.CodeInvalidArgument, field: "url", msg: "private"}},
		{"update: url http", mA, &pb.UpdateWebhookEndpointRequest{Id: ep.GetId(), Url: proto.String("http://public.example.test/")},
			want{code: connect.CodeInvalidArgument, field: "url", msg: "https"}},
		{"update: unknown event type", mA, &pb.UpdateWebhookEndpointRequest{Id: ep.GetId(), EnabledEvents: []string{"nope"}},
			want{code: connect.CodeInvalidArgument, field: "enabled_events", msg: "unknown event type"}},

		{"rotate: overlap 25h", mA, &pb.RotateWebhookSecretRequest{Id: ep.GetId(), PreviousSecretOverlap: durationpb.New(25 * time.Hour)},
			want{code: connect.CodeInvalidArgument, field: "previous_secret_overlap"}},
		{"rotate: overlap 24h and a second", mA, &pb.RotateWebhookSecretRequest{Id: ep.GetId(), PreviousSecretOverlap: durationpb.New(24*time.Hour + time.Second)},
			want{code: connect.CodeInvalidArgument, field: "previous_secret_overlap"}},
		{"rotate: negative overlap", mA, &pb.RotateWebhookSecretRequest{Id: ep.GetId(), PreviousSecretOverlap: durationpb.New(-time.Second)},
			want{code: connect.CodeInvalidArgument, field: "previous_secret_overlap"}},

		{"events: unknown type", mA, &pb.ListEventsRequest{Type: "payment.exploded"}, want{code: connect.CodeInvalidArgument, field: "type", msg: "unknown event type"}},
		{"events: object_id of an account", mA, &pb.ListEventsRequest{ObjectId: mA.acct.GetId()}, want{code: connect.CodeInvalidArgument, field: "object_id"}},
		{"events: object_id of an event", mA, &pb.ListEventsRequest{ObjectId: "evt_01"}, want{code: connect.CodeInvalidArgument, field: "object_id"}},
		{"events: created_after later than created_before", mA, &pb.ListEventsRequest{
			CreatedAfter: timestamppb.New(now), CreatedBefore: timestamppb.New(now.Add(-time.Second))}, want{code: connect.CodeInvalidArgument, field: "created_after"}},
		{"events: page_size 101", mA, &pb.ListEventsRequest{PageSize: 101}, want{code: connect.CodeInvalidArgument, field: "page_size"}},
		{"events: page_size -1", mA, &pb.ListEventsRequest{PageSize: -1}, want{code: connect.CodeInvalidArgument, field: "page_size"}},
		{"events: a token of the endpoints' list", mA, &pb.ListEventsRequest{PageSize: 1, PageToken: epsToken}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
		{"events: a token of another account", mB, &pb.ListEventsRequest{PageSize: 1, PageToken: evToken}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
		{"events: a token of another query", mA, &pb.ListEventsRequest{PageSize: 1, PageToken: evToken, Type: "payment.succeeded"}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
		{"events: a forged token", mA, &pb.ListEventsRequest{PageToken: "AAAA" + evToken[4:]}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
		{"endpoints: a token of the events' list", mA, &pb.ListWebhookEndpointsRequest{PageToken: evToken}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
		{"endpoints: a token of another account", mB, &pb.ListWebhookEndpointsRequest{PageToken: epsToken}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
		{"deliveries: a token of the events' list", mA, &pb.ListDeliveriesRequest{PageToken: evToken}, want{code: connect.CodeInvalidArgument, field: "page_token"}},
		{"deliveries: event_id not evt_", mA, &pb.ListDeliveriesRequest{EventId: "pay_01"}, want{code: connect.CodeInvalidArgument, field: "event_id"}},
		{"deliveries: endpoint_id not we_", mA, &pb.ListDeliveriesRequest{EndpointId: "whd_01"}, want{code: connect.CodeInvalidArgument, field: "endpoint_id"}},
		{"deliveries: page_size 101", mA, &pb.ListDeliveriesRequest{PageSize: 101}, want{code: connect.CodeInvalidArgument, field: "page_size"}},
		{"get event: id not evt_", mA, &pb.GetEventRequest{Id: "pay_01"}, want{code: connect.CodeInvalidArgument, field: "id"}},
		{"get endpoint: id not we_", mA, &pb.GetWebhookEndpointRequest{Id: "whd_01"}, want{code: connect.CodeInvalidArgument, field: "id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, tr := range []transport{httpJSON, grpcProto} {
				whCall(t, e, tr, tc.u.authz(), tc.req).wantErr(t, tc.want)
			}
		})
	}
	if after := storedEndpoint(t, e, ep.GetId()); after != stored {
		t.Fatalf("refused calls changed the endpoint:\n%s\n%s", stored, after)
	}
	if n, d := countRows(t, e); n != endpoints || d != deliveries {
		t.Fatalf("refused calls wrote rows: %d endpoints (%d before), %d deliveries (%d before)", n, endpoints, d, deliveries)
	}

	t.Run("the 17th endpoint", func(t *testing.T) {
		for n := endpoints; n < store.MaxEndpoints; n++ {
			createEndpoint(t, e, mA)
		}
		for _, tr := range allTransports {
			whCall(t, e, tr, mA.authz(), create(hookURL)).wantErr(t, want{code: connect.CodeResourceExhausted, msg: "at most 16"})
		}
		if n, _ := countRows(t, e); n != store.MaxEndpoints {
			t.Fatalf("%d endpoints, want %d", n, store.MaxEndpoints)
		}
		// Another merchant is not held back.
		createEndpoint(t, e, mB)
	})
}

func TestWebhookEndpointCreatedWithItsSecretOnce(t *testing.T) {
	e := newEnv(t, withWebhookDeps(t))
	m := e.merchant(t)
	sealer := whSealer(t)
	cases := []struct {
		name       string
		events     []string
		wantEvents []string
	}{
		{"all", []string{"*"}, []string{"*"}},
		{"* with another is just *", []string{"*", "payment.failed"}, []string{"*"}},
		{"another with * is just *", []string{"refund.failed", "*"}, []string{"*"}},
		{"some, in order", []string{"refund.failed", "payment.succeeded", "dispute.opened"}, []string{"refund.failed", "payment.succeeded", "dispute.opened"}},
	}
	var created []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := whCall(t, e, httpJSON, m.authz(), &pb.CreateWebhookEndpointRequest{
				Url: hookURL, EnabledEvents: tc.events, Description: "  orders  "})
			res := wantOK[*pb.CreateWebhookEndpointResponse](t, r)
			ep := res.GetWebhookEndpoint()
			secret := res.GetSecret()
			switch {
			case !strings.HasPrefix(secret, "whsec_") || len(secret) < len("whsec_")+40:
				t.Fatalf("secret %q, want whsec_ and base64 of 32 bytes", secret)
			case !strings.HasPrefix(ep.GetId(), ids.Endpoint) || ep.GetUrl() != hookURL || ep.GetDescription() != "orders" ||
				ep.GetStatus() != pb.WebhookEndpointStatus_WEBHOOK_ENDPOINT_STATUS_ENABLED || ep.GetDisabledReason() != "" ||
				ep.GetAllMerchants() || ep.GetPreviousSecretExpiresAt() != nil || !ep.GetCreatedAt().AsTime().Equal(e.clock.Now()):
				t.Fatalf("created endpoint %v", ep)
			case !slices.Equal(ep.GetEnabledEvents(), tc.wantEvents):
				t.Fatalf("enabled_events %v, want %v", ep.GetEnabledEvents(), tc.wantEvents)
			}
			// Stored sealed, the same secret inside.
			row, err := e.st.Client.WebhookEndpoint.Get(ctxT(t), ep.GetId())
			if err != nil {
				t.Fatal(err)
			}
			if row.Secret == secret || strings.Contains(row.Secret, secret[len("whsec_"):]) {
				t.Fatalf("the secret is stored in the clear")
			}
			if opened, err := sealer.Open(row.Secret); err != nil || opened != secret {
				t.Fatalf("stored secret opens to %q (%v), want the one answered", opened, err)
			}
			if !slices.Equal(row.EnabledEvents, tc.wantEvents) {
				t.Fatalf("stored enabled_events %v, want %v", row.EnabledEvents, tc.wantEvents)
			}

			// Never shown again.
			for _, req := range []proto.Message{
				&pb.GetWebhookEndpointRequest{Id: ep.GetId()},
				&pb.ListWebhookEndpointsRequest{},
				&pb.UpdateWebhookEndpointRequest{Id: ep.GetId(), Description: proto.String("orders")},
			} {
				r := whCall(t, e, httpJSON, m.authz(), req)
				if !r.ok() {
					t.Fatalf("%T: %v %s", req, r.code, r.msg)
				}
				if bytes.Contains(r.body, []byte(`"secret"`)) || bytes.Contains(r.body, []byte(secret[len("whsec_"):])) ||
					bytes.Contains(r.body, []byte(row.Secret)) {
					t.Fatalf("%T shows the secret: %s", req, r.body)
				}
			}
			created = append(created, ep.GetId())
		})
	}
	list := wantOK[*pb.ListWebhookEndpointsResponse](t, whCall(t, e, grpcProto, m.authz(), &pb.ListWebhookEndpointsRequest{}))
	if got := endpointIDsOf(list.GetWebhookEndpoints()); !slices.Equal(got, sorted(created...)) {
		t.Fatalf("ListWebhookEndpoints = %v, want %v", got, sorted(created...))
	}
}

func TestWebhookSecretRotation(t *testing.T) {
	e := newEnv(t, withWebhookDeps(t))
	m := e.merchant(t)
	sealer := whSealer(t)
	cases := []struct {
		name    string
		overlap *durationpb.Duration
		// wantPrevious: the old secret keeps signing until now+overlap.
		wantPrevious bool
	}{
		{"overlap of an hour", durationpb.New(time.Hour), true},
		{"overlap of 24h, the most", durationpb.New(24 * time.Hour), true},
		{"no overlap", nil, false},
		{"overlap 0", durationpb.New(0), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			created := createEndpoint(t, e, m)
			id, old := created.GetWebhookEndpoint().GetId(), created.GetSecret()
			e.clock.Advance(time.Minute)
			now := e.clock.Now()
			res := wantOK[*pb.RotateWebhookSecretResponse](t, whCall(t, e, connectJSON, m.authz(),
				&pb.RotateWebhookSecretRequest{Id: id, PreviousSecretOverlap: tc.overlap}))
			if res.GetSecret() == old || !strings.HasPrefix(res.GetSecret(), "whsec_") {
				t.Fatalf("new secret %q (old %q)", res.GetSecret(), old)
			}
			got := wantOK[*pb.GetWebhookEndpointResponse](t, whCall(t, e, httpJSON, m.authz(), &pb.GetWebhookEndpointRequest{Id: id})).GetWebhookEndpoint()
			for what, ep := range map[string]*pb.WebhookEndpoint{"RotateWebhookSecret": res.GetWebhookEndpoint(), "GetWebhookEndpoint": got} {
				exp := ep.GetPreviousSecretExpiresAt()
				switch {
				case tc.wantPrevious && (exp == nil || !exp.AsTime().Equal(now.Add(tc.overlap.AsDuration()))):
					t.Fatalf("%s: previous_secret_expires_at %v, want %v", what, exp, now.Add(tc.overlap.AsDuration()))
				case !tc.wantPrevious && exp != nil:
					t.Fatalf("%s: previous_secret_expires_at %v, want none", what, exp.AsTime())
				case !ep.GetUpdatedAt().AsTime().Equal(now):
					t.Fatalf("%s: updated_at %v, want %v", what, ep.GetUpdatedAt().AsTime(), now)
				}
			}
			row, err := e.st.Client.WebhookEndpoint.Get(ctxT(t), id)
			if err != nil {
				t.Fatal(err)
			}
			if s, err := sealer.Open(row.Secret); err != nil || s != res.GetSecret() {
				t.Fatalf("stored secret opens to %q (%v), want the new one", s, err)
			}
			wantPrev := ""
			if tc.wantPrevious {
				wantPrev = old
			}
			prev := ""
			if row.PreviousSecret != "" {
				if prev, err = sealer.Open(row.PreviousSecret); err != nil {
					t.Fatalf("previous secret: %v", err)
				}
			}
			if prev != wantPrev {
				t.Fatalf("stored previous secret %q, want %q", prev, wantPrev)
			}
		})
	}

	t.Run("a rotation without overlap ends the previous one's", func(t *testing.T) {
		id := createEndpoint(t, e, m).GetWebhookEndpoint().GetId()
		wantOK[*pb.RotateWebhookSecretResponse](t, whCall(t, e, httpJSON, m.authz(),
			&pb.RotateWebhookSecretRequest{Id: id, PreviousSecretOverlap: durationpb.New(time.Hour)}))
		res := wantOK[*pb.RotateWebhookSecretResponse](t, whCall(t, e, httpJSON, m.authz(), &pb.RotateWebhookSecretRequest{Id: id}))
		if exp := res.GetWebhookEndpoint().GetPreviousSecretExpiresAt(); exp != nil {
			t.Fatalf("previous_secret_expires_at %v after a rotation without overlap", exp.AsTime())
		}
		row, err := e.st.Client.WebhookEndpoint.Get(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if row.PreviousSecret != "" || row.PreviousSecretExpiresAt != nil {
			t.Fatalf("previous secret kept: %q until %v", row.PreviousSecret, row.PreviousSecretExpiresAt)
		}
	})
}

func TestWebhookEndpointUpdate(t *testing.T) {
	e := newEnv(t, withWebhookDeps(t))
	m := e.merchant(t)
	ep := createEndpoint(t, e, m, "payment.succeeded").GetWebhookEndpoint()
	enabled, disabled := pb.WebhookEndpointStatus_WEBHOOK_ENDPOINT_STATUS_ENABLED, pb.WebhookEndpointStatus_WEBHOOK_ENDPOINT_STATUS_DISABLED
	steps := []struct {
		name       string
		req        *pb.UpdateWebhookEndpointRequest
		status     pb.WebhookEndpointStatus
		reason     string
		url, descr string
		events     []string
	}{
		{"disabled", &pb.UpdateWebhookEndpointRequest{Disabled: proto.Bool(true)}, disabled, "owner", hookURL, "test endpoint", []string{"payment.succeeded"}},
		{"a field changed while disabled", &pb.UpdateWebhookEndpointRequest{Description: proto.String("  paused  ")}, disabled, "owner", hookURL, "paused", []string{"payment.succeeded"}},
		{"re-enabled", &pb.UpdateWebhookEndpointRequest{Disabled: proto.Bool(false)}, enabled, "", hookURL, "paused", []string{"payment.succeeded"}},
		{"url", &pb.UpdateWebhookEndpointRequest{Url: proto.String("https://public.example.test/v2")}, enabled, "", "https://public.example.test/v2", "paused", []string{"payment.succeeded"}},
		{"events, * with others", &pb.UpdateWebhookEndpointRequest{EnabledEvents: []string{"refund.failed", "*"}}, enabled, "", "https://public.example.test/v2", "paused", []string{"*"}},
		{"empty events keep them", &pb.UpdateWebhookEndpointRequest{EnabledEvents: []string{}}, enabled, "", "https://public.example.test/v2", "paused", []string{"*"}},
		{"disabled with everything", &pb.UpdateWebhookEndpointRequest{Disabled: proto.Bool(true), Url: proto.String(hookURL),
			Description: proto.String(""), EnabledEvents: []string{"dispute.won"}}, disabled, "owner", hookURL, "", []string{"dispute.won"}},
	}
	for _, st := range steps {
		e.clock.Advance(time.Second)
		st.req.Id = ep.GetId()
		res := wantOK[*pb.UpdateWebhookEndpointResponse](t, whCall(t, e, grpcProto, m.authz(), st.req)).GetWebhookEndpoint()
		got := wantOK[*pb.GetWebhookEndpointResponse](t, whCall(t, e, httpJSON, m.authz(), &pb.GetWebhookEndpointRequest{Id: ep.GetId()})).GetWebhookEndpoint()
		if !proto.Equal(res, got) {
			t.Fatalf("%s: UpdateWebhookEndpoint answered %v, GetWebhookEndpoint shows %v", st.name, res, got)
		}
		if got.GetStatus() != st.status || got.GetDisabledReason() != st.reason || got.GetUrl() != st.url ||
			got.GetDescription() != st.descr || !slices.Equal(got.GetEnabledEvents(), st.events) ||
			!got.GetUpdatedAt().AsTime().Equal(e.clock.Now()) || !got.GetCreatedAt().AsTime().Equal(ep.GetCreatedAt().AsTime()) {
			t.Fatalf("%s: endpoint %v; want status %v reason %q url %s description %q events %v updated now",
				st.name, got, st.status, st.reason, st.url, st.descr, st.events)
		}
		row, err := e.st.Client.WebhookEndpoint.Get(ctxT(t), ep.GetId())
		if err != nil {
			t.Fatal(err)
		}
		if wantStatus := map[pb.WebhookEndpointStatus]webhookendpoint.Status{enabled: webhookendpoint.StatusEnabled, disabled: webhookendpoint.StatusDisabled}[st.status]; row.Status != wantStatus {
			t.Fatalf("%s: stored status %s, want %s", st.name, row.Status, wantStatus)
		}
	}

	t.Run("deleted", func(t *testing.T) {
		wantOK[*pb.DeleteWebhookEndpointResponse](t, whCall(t, e, httpJSON, m.authz(), &pb.DeleteWebhookEndpointRequest{Id: ep.GetId()}))
		for _, req := range []proto.Message{
			&pb.GetWebhookEndpointRequest{Id: ep.GetId()},
			&pb.UpdateWebhookEndpointRequest{Id: ep.GetId(), Disabled: proto.Bool(false)},
			&pb.DeleteWebhookEndpointRequest{Id: ep.GetId()},
			&pb.RotateWebhookSecretRequest{Id: ep.GetId()},
		} {
			whCall(t, e, httpJSON, m.authz(), req).wantErr(t, want{code: connect.CodeNotFound})
		}
		if _, err := e.st.Client.WebhookEndpoint.Get(ctxT(t), ep.GetId()); !ent.IsNotFound(err) {
			t.Fatalf("the endpoint is still stored: %v", err)
		}
	})
}

// failingStarter is a Temporal client whose workflow starts fail.
type failingStarter struct{ client.Client }

func (failingStarter) ExecuteWorkflow(context.Context, client.StartWorkflowOptions, any, ...any) (client.WorkflowRun, error) {
	return nil, errors.New("temporal: connection refused")
}

// A redelivery whose workflow cannot be started answers unavailable and
// leaves its attempt failed, saying so, rather than pending forever.
func TestWebhookRedeliveryThatCannotStartIsNotLeftPending(t *testing.T) {
	e := newEnv(t, withWebhookDeps(t), func(d *api.Deps) { d.Temporal = failingStarter{} })
	m, cust := e.merchant(t), e.customer(t)
	_, ev := paidAt(t, e, m, cust, e.clock.Now())
	createEndpoint(t, e, m, "payment.succeeded")
	r := whCall(t, e, httpJSON, m.authz(), &pb.RedeliverEventRequest{EventId: ev})
	if r.code != connect.CodeUnavailable {
		t.Fatalf("RedeliverEvent with Temporal away = %v %q, want unavailable", codeName(r.code), r.msg)
	}
	ds, err := e.st.ListDeliveries(ctxT(t), store.DeliveryFilter{EventID: ev}, store.Page{Limit: 10})
	if err != nil || len(ds) != 1 || ds[0].Status != "failed" || !strings.Contains(ds[0].Error, "could not be started") {
		t.Fatalf("attempts after a failed start: %+v %v", ds, err)
	}
}
