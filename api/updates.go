package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
)

// updateID names the update an idempotent request sends to a workflow.
// Derived from the Idempotency-Key's seed and first use, it is the same
// for a retry that took the key over after a crash (docs/API.md,
// Idempotency-Key), so that the retry reaches the first run's update: a
// workflow that is still running answers a repeated update id with its
// first outcome rather than applying it twice, and the outcome of an
// update a finished workflow took can be read back (firstOutcome). A
// request without a key has none: Temporal names its update.
func (c idemCall) updateID(name string) string {
	if c.Seed == nil {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(name + "\x00"))
	h.Write(c.Seed)
	h.Write([]byte("\x00" + c.At.UTC().Format(time.RFC3339Nano)))
	return name + "/" + hex.EncodeToString(h.Sum(nil)[:16])
}

// objectID is the id of the object an idempotent request creates: derived
// from the key's seed and first use when the request has a key, so that a
// retry that took the key over after a crash reaches the same object.
// prior is that object when the first run made it already (exists): the
// retry answers with it rather than deciding again, on a balance that
// object has taken. lookup answers errs.ErrNotFound for none.
func objectID[T any](ctx context.Context, call idemCall, kind string, lookup func(context.Context, string) (T, error)) (id string, prior T, exists bool, err error) {
	if call.Seed == nil {
		return ids.New(kind), prior, false, nil
	}
	id = ids.Derive(kind, call.At, call.Seed)
	prior, err = lookup(ctx, id)
	switch {
	case err == nil:
		return id, prior, true, nil
	case errors.Is(err, errs.ErrNotFound):
		return id, prior, false, nil
	}
	return "", prior, false, err
}

// sendUpdate sends the update name, with updateID ("" to let Temporal
// name it), to a workflow and decodes its result into out. finished is
// true when the workflow had finished without taking this update: its
// object is final, whatever the update asked. A retry of an update the
// workflow took before it finished gets that update's result.
func (s *Server) sendUpdate(ctx context.Context, workflowID, updateID, name string, arg, out any) (finished bool, err error) {
	h, err := s.d.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateID: updateID, UpdateName: name, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, out)
	}
	switch {
	case err == nil:
		return false, nil
	case !workflowFinished(err):
		return false, temporalError(err)
	}
	if took, err := s.firstOutcome(ctx, workflowID, updateID, out); took || err != nil {
		return false, err
	}
	return true, nil
}

// firstOutcome reads back the result of the update updateID that the
// workflow took before it finished, into out. took is false when it took
// none of that id (or no id is given); err is the update's refusal, if it
// refused, or the workflow service's failure to say (unavailable: not a
// refusal, which the key would keep).
func (s *Server) firstOutcome(ctx context.Context, workflowID, updateID string, out any) (took bool, err error) {
	if updateID == "" {
		return false, nil
	}
	err = s.d.Temporal.GetWorkflowUpdateHandle(client.GetWorkflowUpdateHandleOptions{
		WorkflowID: workflowID, UpdateID: updateID,
	}).Get(ctx, out)
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &notFound):
		return false, nil
	}
	if refusal := temporalError(err); isDomain(refusal) {
		return true, refusal
	}
	return false, temporalError(err)
}

// workflowFinished reports the error of an update sent to a workflow that
// has finished (or no longer exists).
func workflowFinished(err error) bool {
	var notFound *serviceerror.NotFound
	return errors.As(err, &notFound) || strings.Contains(err.Error(), "workflow execution already completed")
}
