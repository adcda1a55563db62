package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/delivery"
	"github.com/payments-platform/payments/ent/event"
	"github.com/payments-platform/payments/ent/webhookendpoint"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/events"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/webhooks"
	paymentsv1 "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/proto/payments/v1/paymentsv1connect"
	"github.com/payments-platform/payments/workflows/notify"
)

// webhookService manages webhook endpoints and shows the events and every
// delivery attempt. A merchant's endpoints receive the events of its
// payments, refunds and disputes; an admin's receive every merchant's.
// Merchants see their own endpoints, events and attempts, admins all.
type webhookService struct {
	paymentsv1connect.UnimplementedWebhookServiceHandler
	s *Server
}

var deliveryStatusToProto = map[delivery.Status]paymentsv1.DeliveryStatus{
	delivery.StatusPending:   paymentsv1.DeliveryStatus_DELIVERY_STATUS_PENDING,
	delivery.StatusSucceeded: paymentsv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED,
	delivery.StatusFailed:    paymentsv1.DeliveryStatus_DELIVERY_STATUS_FAILED,
}

// enabledEvents checks a subscription: known event types or "*" (which
// then stands alone).
func enabledEvents(field string, types []string) ([]string, error) {
	for _, t := range types {
		if t != events.All && !events.IsType(t) {
			return nil, errs.InvalidArgument(field, "unknown event type %q (known: %s, or * for all)", t, strings.Join(events.Types, ", "))
		}
	}
	if slices.Contains(types, events.All) {
		return []string{events.All}, nil
	}
	return slices.Clone(types), nil
}

// checkEndpointURL refuses a URL the webhook policy does not allow.
func (s *Server) checkEndpointURL(ctx context.Context, raw string) error {
	err := s.d.WebhookURLs.Check(ctx, raw)
	var refused *webhooks.URLError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &refused):
		return errs.InvalidArgument("url", "%s", refused.Reason)
	}
	return err
}

// ownsEndpoint reports whether caller may see and change an endpoint.
func ownsEndpoint(caller auth.Principal, ep *ent.WebhookEndpoint) bool {
	return caller.Role == roleAdmin || ep.AccountID == caller.AccountID
}

func (h *webhookService) endpoint(ctx context.Context, caller auth.Principal, id string) (*ent.WebhookEndpoint, error) {
	ep, err := h.s.d.Store.EndpointByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ownsEndpoint(caller, ep) {
		return nil, errs.NotFound("webhook endpoint")
	}
	return ep, nil
}

func (h *webhookService) CreateWebhookEndpoint(ctx context.Context, req *connect.Request[paymentsv1.CreateWebhookEndpointRequest]) (*connect.Response[paymentsv1.CreateWebhookEndpointResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	types, err := enabledEvents("enabled_events", m.EnabledEvents)
	if err != nil {
		return nil, err
	}
	if err := h.s.checkEndpointURL(ctx, m.Url); err != nil {
		return nil, err
	}
	secret := webhooks.NewSecret()
	ep, err := h.s.d.Store.CreateEndpoint(ctx, store.EndpointRecord{
		ID: ids.New(ids.Endpoint), AccountID: p.AccountID, AllMerchants: p.Role == roleAdmin,
		URL: m.Url, Description: strings.TrimSpace(m.Description), Secret: h.s.sealer.Seal(secret),
		EnabledEvents: types, CreatedAt: h.s.now(),
	})
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "webhook endpoint created", "account_id", p.AccountID, "endpoint_id", ep.ID)
	return connect.NewResponse(&paymentsv1.CreateWebhookEndpointResponse{WebhookEndpoint: endpointToProto(ep), Secret: secret}), nil
}

func (h *webhookService) GetWebhookEndpoint(ctx context.Context, req *connect.Request[paymentsv1.GetWebhookEndpointRequest]) (*connect.Response[paymentsv1.GetWebhookEndpointResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := h.endpoint(ctx, p, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.GetWebhookEndpointResponse{WebhookEndpoint: endpointToProto(ep)}), nil
}

func (h *webhookService) ListWebhookEndpoints(ctx context.Context, req *connect.Request[paymentsv1.ListWebhookEndpointsRequest]) (*connect.Response[paymentsv1.ListWebhookEndpointsResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	owner, _, _ := listScope(p, nil, nil)
	eps, next, err := listPage(h.s, "webhook_endpoints", p, req.Msg, store.EndpointCursor,
		func(page store.Page) ([]*ent.WebhookEndpoint, error) {
			return h.s.d.Store.ListEndpoints(ctx, owner, page)
		})
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListWebhookEndpointsResponse{NextPageToken: next}
	for _, ep := range eps {
		res.WebhookEndpoints = append(res.WebhookEndpoints, endpointToProto(ep))
	}
	return connect.NewResponse(res), nil
}

func (h *webhookService) UpdateWebhookEndpoint(ctx context.Context, req *connect.Request[paymentsv1.UpdateWebhookEndpointRequest]) (*connect.Response[paymentsv1.UpdateWebhookEndpointResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if _, err := h.endpoint(ctx, p, m.Id); err != nil {
		return nil, err
	}
	change := store.EndpointChange{Disabled: m.Disabled, At: h.s.now()}
	if m.Url != nil {
		if err := h.s.checkEndpointURL(ctx, *m.Url); err != nil {
			return nil, err
		}
		change.URL = m.Url
	}
	if m.Description != nil {
		d := strings.TrimSpace(*m.Description)
		change.Description = &d
	}
	if len(m.EnabledEvents) > 0 {
		if change.EnabledEvents, err = enabledEvents("enabled_events", m.EnabledEvents); err != nil {
			return nil, err
		}
	}
	return idempotent(ctx, h.s, paymentsv1connect.WebhookServiceUpdateWebhookEndpointProcedure, p.AccountID, req.Header(), m,
		func(ctx context.Context, _ idemCall) (*paymentsv1.UpdateWebhookEndpointResponse, error) {
			ep, err := h.s.d.Store.UpdateEndpoint(ctx, m.Id, change)
			if err != nil {
				return nil, err
			}
			return &paymentsv1.UpdateWebhookEndpointResponse{WebhookEndpoint: endpointToProto(ep)}, nil
		})
}

func (h *webhookService) DeleteWebhookEndpoint(ctx context.Context, req *connect.Request[paymentsv1.DeleteWebhookEndpointRequest]) (*connect.Response[paymentsv1.DeleteWebhookEndpointResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := h.endpoint(ctx, p, req.Msg.Id); err != nil {
		return nil, err
	}
	return idempotent(ctx, h.s, paymentsv1connect.WebhookServiceDeleteWebhookEndpointProcedure, p.AccountID, req.Header(), req.Msg,
		func(ctx context.Context, _ idemCall) (*paymentsv1.DeleteWebhookEndpointResponse, error) {
			if err := h.s.d.Store.DeleteEndpoint(ctx, req.Msg.Id); err != nil {
				return nil, err
			}
			h.s.log.InfoContext(ctx, "webhook endpoint deleted", "account_id", p.AccountID, "endpoint_id", req.Msg.Id)
			return &paymentsv1.DeleteWebhookEndpointResponse{}, nil
		})
}

func (h *webhookService) RotateWebhookSecret(ctx context.Context, req *connect.Request[paymentsv1.RotateWebhookSecretRequest]) (*connect.Response[paymentsv1.RotateWebhookSecretResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := h.endpoint(ctx, p, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	secret := webhooks.NewSecret()
	sealed := h.s.sealer.Seal(secret)
	change := store.EndpointChange{Secret: &sealed, At: h.s.now()}
	prev := ""
	if overlap := req.Msg.PreviousSecretOverlap.AsDuration(); req.Msg.PreviousSecretOverlap != nil && overlap > 0 {
		until := h.s.now().Add(overlap)
		prev, change.PreviousExpiresAt = ep.Secret, &until
	}
	change.PreviousSecret = &prev
	ep, err = h.s.d.Store.UpdateEndpoint(ctx, ep.ID, change)
	if err != nil {
		return nil, err
	}
	h.s.log.InfoContext(ctx, "webhook secret rotated", "account_id", p.AccountID, "endpoint_id", ep.ID)
	return connect.NewResponse(&paymentsv1.RotateWebhookSecretResponse{WebhookEndpoint: endpointToProto(ep), Secret: secret}), nil
}

func (h *webhookService) ListEvents(ctx context.Context, req *connect.Request[paymentsv1.ListEventsRequest]) (*connect.Response[paymentsv1.ListEventsResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if m.Type != "" && !events.IsType(m.Type) {
		return nil, errs.InvalidArgument("type", "unknown event type %q", m.Type)
	}
	if m.ObjectId != "" && !strings.HasPrefix(m.ObjectId, ids.Payment) && !strings.HasPrefix(m.ObjectId, ids.Refund) &&
		!strings.HasPrefix(m.ObjectId, ids.Dispute) {
		return nil, errs.InvalidArgument("object_id", "object_id must be a payment (pay_), refund (re_) or dispute (dp_) id")
	}
	f := store.EventFilter{Type: m.Type, ObjectID: m.ObjectId}
	f.MerchantID, f.CreatedAfter, f.CreatedBefore = listScope(p, m.CreatedAfter, m.CreatedBefore)
	evs, next, err := listPage(h.s, "events", p, m, store.EventCursor,
		func(page store.Page) ([]*ent.Event, error) { return h.s.d.Store.ListEvents(ctx, f, page) })
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListEventsResponse{NextPageToken: next}
	for _, e := range evs {
		pe, err := h.s.eventToProto(e, p)
		if err != nil {
			return nil, err
		}
		res.Events = append(res.Events, pe)
	}
	return connect.NewResponse(res), nil
}

func (h *webhookService) visibleEvent(ctx context.Context, caller auth.Principal, id string) (*ent.Event, error) {
	e, err := h.s.d.Store.EventByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if caller.Role != roleAdmin && e.MerchantID != caller.AccountID {
		return nil, errs.NotFound("event")
	}
	return e, nil
}

func (h *webhookService) GetEvent(ctx context.Context, req *connect.Request[paymentsv1.GetEventRequest]) (*connect.Response[paymentsv1.GetEventResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	e, err := h.visibleEvent(ctx, p, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	pe, err := h.s.eventToProto(e, p)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&paymentsv1.GetEventResponse{Event: pe}), nil
}

func (h *webhookService) ListDeliveries(ctx context.Context, req *connect.Request[paymentsv1.ListDeliveriesRequest]) (*connect.Response[paymentsv1.ListDeliveriesResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := checkIDFilters(idFilter{"event_id", m.EventId, ids.Event}, idFilter{"endpoint_id", m.EndpointId, ids.Endpoint}); err != nil {
		return nil, err
	}
	f := store.DeliveryFilter{EventID: m.EventId, EndpointID: m.EndpointId}
	f.AccountID, _, _ = listScope(p, nil, nil)
	ds, next, err := listPage(h.s, "deliveries", p, m, store.DeliveryCursor,
		func(page store.Page) ([]*ent.Delivery, error) { return h.s.d.Store.ListDeliveries(ctx, f, page) })
	if err != nil {
		return nil, err
	}
	res := &paymentsv1.ListDeliveriesResponse{NextPageToken: next}
	for _, d := range ds {
		res.Deliveries = append(res.Deliveries, deliveryToProto(d))
	}
	return connect.NewResponse(res), nil
}

// RedeliverEvent starts a new delivery of the event (a workflow of its own,
// on the whole schedule) to one endpoint or to every enabled endpoint of
// the caller subscribed to it, and answers with each one's first attempt,
// pending.
func (h *webhookService) RedeliverEvent(ctx context.Context, req *connect.Request[paymentsv1.RedeliverEventRequest]) (*connect.Response[paymentsv1.RedeliverEventResponse], error) {
	p, err := mustPrincipal(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := checkIDFilters(idFilter{"endpoint_id", m.EndpointId, ids.Endpoint}); err != nil {
		return nil, err
	}
	ev, err := h.visibleEvent(ctx, p, m.EventId)
	if err != nil {
		return nil, err
	}
	var targets []*ent.WebhookEndpoint
	if m.EndpointId != "" {
		ep, err := h.endpoint(ctx, p, m.EndpointId)
		if err != nil {
			return nil, err
		}
		switch {
		case ep.AccountID != ev.MerchantID && !ep.AllMerchants:
			return nil, errs.FailedPrecondition("endpoint %s does not receive merchant %s's events", ep.ID, ev.MerchantID)
		case ep.Status != webhookendpoint.StatusEnabled:
			return nil, errs.FailedPrecondition("endpoint %s is disabled; enable it first", ep.ID)
		}
		targets = append(targets, ep)
	} else {
		eps, err := h.s.d.Store.EndpointsFor(ctx, ev.MerchantID)
		if err != nil {
			return nil, err
		}
		for _, ep := range eps {
			// The caller's own endpoints: an admin's redelivery goes to the
			// admins' all-merchant endpoints, never to the merchant's.
			if ep.AccountID == p.AccountID && events.Subscribed(ep.EnabledEvents, ev.Type) {
				targets = append(targets, ep)
			}
		}
		if len(targets) == 0 {
			return nil, errs.FailedPrecondition("no enabled endpoint of yours is subscribed to %s", ev.Type)
		}
	}
	if h.s.d.Temporal == nil {
		return nil, errs.Unavailable("deliveries cannot be started: no workflow service", nil)
	}
	return idempotent(ctx, h.s, paymentsv1connect.WebhookServiceRedeliverEventProcedure, p.AccountID, req.Header(), m,
		func(ctx context.Context, call idemCall) (*paymentsv1.RedeliverEventResponse, error) {
			res := &paymentsv1.RedeliverEventResponse{}
			for _, ep := range targets {
				d, err := h.redeliver(ctx, call, ev, ep)
				if err != nil {
					return nil, err
				}
				res.Deliveries = append(res.Deliveries, deliveryToProto(d))
			}
			return res, nil
		})
}

// redeliver starts one redelivery of ev to ep and returns its first
// attempt's row. Under an Idempotency-Key the workflow id derives from the
// key's seed, so a retry (or a takeover of the key after a crash) finds
// the redelivery it started instead of starting another.
func (h *webhookService) redeliver(ctx context.Context, call idemCall, ev *ent.Event, ep *ent.WebhookEndpoint) (*ent.Delivery, error) {
	at := call.At
	nonce := ids.NewAt("", at)
	if call.Seed != nil {
		nonce = ids.Derive("", at, append(append([]byte{}, call.Seed...), ep.ID...))
	}
	wfID := notify.RedeliveryWorkflowID(ev.ID, ep.ID, nonce)
	rec := store.DeliveryRecord{
		ID: notify.DeliveryID(wfID, 1, at), EventID: ev.ID, EndpointID: ep.ID, AccountID: ep.AccountID, WorkflowID: wfID,
		Attempt: 1, Status: delivery.StatusPending, At: at,
	}
	d, err := h.s.d.Store.DeliveryByID(ctx, rec.ID)
	if errors.Is(err, errs.ErrNotFound) {
		d, err = h.s.d.Store.SaveDelivery(ctx, rec)
	}
	if err != nil {
		return nil, err
	}
	call.SideEffects()
	_, err = h.s.d.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: wfID, TaskQueue: h.s.d.TaskQueue, WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, notify.DeliveryWorkflowName, notify.DeliveryInput{EventID: ev.ID, EndpointID: ep.ID, FirstDeliveryID: rec.ID, FirstAt: at})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		// The pending row would wait forever: it says what happened.
		rec.Status, rec.Error = delivery.StatusFailed, "the redelivery could not be started; ask again"
		if _, serr := h.s.d.Store.SaveDelivery(ctx, rec); serr != nil {
			h.s.log.ErrorContext(ctx, "redelivery row left pending", "delivery_id", rec.ID, "error", serr)
		}
		return nil, errs.Unavailable("the redelivery could not be started; try again", err)
	}
	return d, nil
}

func endpointToProto(ep *ent.WebhookEndpoint) *paymentsv1.WebhookEndpoint {
	status := paymentsv1.WebhookEndpointStatus_WEBHOOK_ENDPOINT_STATUS_ENABLED
	if ep.Status == webhookendpoint.StatusDisabled {
		status = paymentsv1.WebhookEndpointStatus_WEBHOOK_ENDPOINT_STATUS_DISABLED
	}
	out := &paymentsv1.WebhookEndpoint{
		Id: ep.ID, Url: ep.URL, EnabledEvents: ep.EnabledEvents, Description: ep.Description,
		Status: status, DisabledReason: ep.DisabledReason, AllMerchants: ep.AllMerchants,
		CreatedAt: timestamppb.New(ep.CreatedAt), UpdatedAt: timestamppb.New(ep.UpdatedAt),
	}
	if ep.PreviousSecret != "" {
		out.PreviousSecretExpiresAt = optTime(ep.PreviousSecretExpiresAt)
	}
	return out
}

func deliveryToProto(d *ent.Delivery) *paymentsv1.Delivery {
	return &paymentsv1.Delivery{
		Id: d.ID, EventId: d.EventID, EndpointId: d.EndpointID, Attempt: int32(d.Attempt),
		Status: deliveryStatusToProto[d.Status], ResponseStatus: int32(d.ResponseStatus), Error: d.Error,
		NextAttemptAt: optTime(d.NextAttemptAt), CreatedAt: timestamppb.New(d.CreatedAt),
	}
}

// eventToProto renders an event for caller: its data is the object's API
// message as caller would get it from the object's Get RPC, as the object
// was after the change.
func (s *Server) eventToProto(e *ent.Event, caller auth.Principal) (*paymentsv1.Event, error) {
	var obj proto.Message
	switch e.ObjectType {
	case event.ObjectTypePayment:
		var p ent.Payment
		if err := json.Unmarshal(e.Data, &p); err != nil {
			return nil, fmt.Errorf("event %s: payment data: %w", e.ID, err)
		}
		obj = s.paymentToProto(&p, caller)
	case event.ObjectTypeRefund:
		var r ent.Refund
		if err := json.Unmarshal(e.Data, &r); err != nil {
			return nil, fmt.Errorf("event %s: refund data: %w", e.ID, err)
		}
		obj = s.refundToProto(&r, caller)
	case event.ObjectTypeDispute:
		var d ent.Dispute
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, fmt.Errorf("event %s: dispute data: %w", e.ID, err)
		}
		obj = s.disputeToProto(&d, caller)
	default:
		return nil, fmt.Errorf("event %s: unknown object type %q", e.ID, e.ObjectType)
	}
	raw, err := protojson.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	data := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, data); err != nil {
		return nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return &paymentsv1.Event{
		Id: e.ID, Type: e.Type, CreatedAt: timestamppb.New(e.CreatedAt), Sequence: e.Sequence,
		Data: data, ObjectId: e.ObjectID,
	}, nil
}

// EventPayload is the body of an event's webhook: the Event as the
// merchant of its object sees it, in protojson. The worker's deliveries
// use it.
func EventPayload(e *ent.Event) ([]byte, error) {
	var s Server
	pe, err := s.eventToProto(e, auth.Principal{Role: roleMerchant, AccountID: e.MerchantID})
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(pe)
}
