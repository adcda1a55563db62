package maintenance

import (
	"go.temporal.io/sdk/workflow"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/workflows/presets"
)

// store is a nil receiver used only to name the activity method.
var store *activities.Store

// anonymizeChange is the GetVersion change id of the step that erases the
// personal data of accounts closed longer than the retention period ago:
// runs recorded before it (DefaultVersion) only purge.
const anonymizeChange = "anonymize-closed-accounts"

// Purge removes expired housekeeping rows as of the workflow's clock, then
// anonymizes the accounts closed before the retention period.
func Purge(ctx workflow.Context, _ PurgeInput) (activities.PurgeResult, error) {
	var r activities.PurgeResult
	now := workflow.Now(ctx)
	err := workflow.ExecuteActivity(presets.StoreWrite(ctx), store.PurgeExpired, now).Get(ctx, &r)
	if err != nil {
		return r, err
	}
	log := workflow.GetLogger(ctx)
	log.Info("purge done", "idempotency_keys", r.IdempotencyKeys, "refresh_tokens", r.RefreshTokens, "login_throttles", r.LoginThrottles,
		"gateway_events", r.GatewayEvents, "account_tokens", r.AccountTokens, "account_notices", r.AccountNotices)
	if workflow.GetVersion(ctx, anonymizeChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return r, nil
	}
	var n int
	if err := workflow.ExecuteActivity(presets.StoreWrite(ctx), store.AnonymizeClosedAccounts, now).Get(ctx, &n); err != nil {
		return r, err
	}
	log.Info("closed accounts anonymized", "accounts", n)
	return r, nil
}
