package maintenance

import (
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/workflows/presets"
)

// store is a nil receiver used only to name the activity method.
var store *activities.Store

// Purge removes expired housekeeping rows as of the workflow's clock.
func Purge(ctx workflow.Context, _ PurgeInput) (activities.PurgeResult, error) {
	var r activities.PurgeResult
	err := workflow.ExecuteActivity(presets.StoreWrite(ctx), store.PurgeExpired, workflow.Now(ctx)).Get(ctx, &r)
	if err != nil {
		return r, err
	}
	workflow.GetLogger(ctx).Info("purge done", "idempotency_keys", r.IdempotencyKeys, "refresh_tokens", r.RefreshTokens, "login_throttles", r.LoginThrottles)
	return r, nil
}
