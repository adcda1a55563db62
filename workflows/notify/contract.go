package notify

import (
	"strconv"
	"time"

	"github.com/payments-platform/payments/internal/ids"
)

// The contract of this package: the registered workflow types, the ids
// other code derives (the relay, RedeliverEvent, the Temporal UI links) and
// the workflows' inputs and results, which recorded histories carry.
const (
	// DeliveryWorkflowName is the registered delivery workflow type.
	DeliveryWorkflowName = "notify.Deliver"
	// EmailWorkflowName is the registered email workflow type.
	EmailWorkflowName = "notify.Email"
	// AccountEmailWorkflowName is the registered account email workflow type.
	AccountEmailWorkflowName = "notify.AccountEmail"
)

// DeliveryWorkflowID is the id of an event's delivery to an endpoint.
func DeliveryWorkflowID(eventID, endpointID string) string {
	return "webhook/" + eventID + "/" + endpointID
}

// RedeliveryWorkflowID is the id of a redelivery asked for at a time (each
// RedeliverEvent is a delivery of its own).
func RedeliveryWorkflowID(eventID, endpointID, nonce string) string {
	return DeliveryWorkflowID(eventID, endpointID) + "/redeliver/" + nonce
}

// DeliveryID is the row of a delivery's attempt.
func DeliveryID(workflowID string, attempt int, at time.Time) string {
	return ids.Derive(ids.Delivery, at, []byte(workflowID+"#"+strconv.Itoa(attempt)))
}

// EmailWorkflowID is the id of an event's email workflow.
func EmailWorkflowID(eventID string) string { return "email/" + eventID }

// AccountEmailWorkflowID is the id of an account notice's email workflow.
func AccountEmailWorkflowID(noticeID string) string { return "account-email/" + noticeID }

// DeliveryInput starts a delivery.
type DeliveryInput struct {
	EventID, EndpointID string
	// FirstDeliveryID and FirstAt name the first attempt's row when it was
	// written before the workflow started (RedeliverEvent's pending row).
	FirstDeliveryID string
	FirstAt         time.Time
}

// DeliveryResult is how a delivery ended.
type DeliveryResult struct {
	// Status of the last attempt: succeeded or failed.
	Status   string
	Attempts int
}
