package store

import (
	"context"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/ent/gatewayevent"
	"github.com/payments-platform/payments/ent/idempotencykey"
	"github.com/payments-platform/payments/ent/loginthrottle"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/ent/refreshtoken"
)

// purgeBatch bounds one delete statement, so a large backlog never holds
// locks (or, on SQLite, the whole database) for long.
const purgeBatch = 1000

// expiredGrace keeps expired refresh tokens (and idle throttle rows) for a
// day, so that a replay of a recently expired rotated token is still
// recognised as reuse in logs and support questions can be answered.
const expiredGrace = 24 * time.Hour

// gatewayEventRetention keeps a gateway's webhook events for 30 days. An
// event id has to be remembered while the gateway may deliver the event
// again, or the redelivery is acted on twice: Stripe retries an
// unacknowledged event for up to 3 days, and keeps events (which an
// operator can resend from its dashboard) for 30 days.
const gatewayEventRetention = 30 * 24 * time.Hour

// PurgeResult counts the rows PurgeExpired deleted.
type PurgeResult struct {
	IdempotencyKeys int
	RefreshTokens   int
	LoginThrottles  int
	GatewayEvents   int
	AccountTokens   int
	AccountNotices  int
}

// PurgeExpired deletes what has stopped mattering: expired idempotency keys,
// refresh tokens expired for more than a day, throttle rows idle for more
// than a day and no longer blocking, and gateway events received more than
// 30 days ago. It is meant to run periodically.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) (PurgeResult, error) {
	now = utc(now)
	var res PurgeResult
	var err error
	if res.IdempotencyKeys, err = purge(ctx,
		func(ctx context.Context) ([]string, error) {
			return s.Client.IdempotencyKey.Query().
				Where(idempotencykey.ExpiresAtLTE(now)).
				Limit(purgeBatch).IDs(ctx)
		},
		func(ctx context.Context, ids []string) (int, error) {
			return s.Client.IdempotencyKey.Delete().
				Where(idempotencykey.IDIn(ids...), idempotencykey.ExpiresAtLTE(now)).
				Exec(ctx)
		}); err != nil {
		return res, fmt.Errorf("purge idempotency keys: %w", err)
	}

	tokenCutoff := now.Add(-expiredGrace)
	if res.RefreshTokens, err = purge(ctx,
		func(ctx context.Context) ([]string, error) {
			return s.Client.RefreshToken.Query().
				Where(refreshtoken.ExpiresAtLTE(tokenCutoff)).
				Limit(purgeBatch).IDs(ctx)
		},
		func(ctx context.Context, ids []string) (int, error) {
			return s.Client.RefreshToken.Delete().
				Where(refreshtoken.IDIn(ids...), refreshtoken.ExpiresAtLTE(tokenCutoff)).
				Exec(ctx)
		}); err != nil {
		return res, fmt.Errorf("purge refresh tokens: %w", err)
	}

	idle := []predicate.LoginThrottle{
		loginthrottle.UpdatedAtLTE(now.Add(-expiredGrace)),
		loginthrottle.Or(loginthrottle.BlockedUntilIsNil(), loginthrottle.BlockedUntilLTE(now)),
	}
	if res.LoginThrottles, err = purge(ctx,
		func(ctx context.Context) ([]string, error) {
			return s.Client.LoginThrottle.Query().Where(idle...).Limit(purgeBatch).IDs(ctx)
		},
		func(ctx context.Context, ids []string) (int, error) {
			return s.Client.LoginThrottle.Delete().
				Where(append([]predicate.LoginThrottle{loginthrottle.IDIn(ids...)}, idle...)...).
				Exec(ctx)
		}); err != nil {
		return res, fmt.Errorf("purge login throttles: %w", err)
	}

	eventCutoff := now.Add(-gatewayEventRetention)
	if res.GatewayEvents, err = purge(ctx,
		func(ctx context.Context) ([]string, error) {
			return s.Client.GatewayEvent.Query().
				Where(gatewayevent.ReceivedAtLTE(eventCutoff)).
				Limit(purgeBatch).IDs(ctx)
		},
		func(ctx context.Context, ids []string) (int, error) {
			return s.Client.GatewayEvent.Delete().
				Where(gatewayevent.IDIn(ids...), gatewayevent.ReceivedAtLTE(eventCutoff)).
				Exec(ctx)
		}); err != nil {
		return res, fmt.Errorf("purge gateway events: %w", err)
	}

	// Mailed tokens a day after they expired (like refresh tokens), and
	// account notices a month after their letter was dispatched.
	if res.AccountTokens, err = purge(ctx,
		func(ctx context.Context) ([]string, error) {
			return s.Client.AccountToken.Query().Where(accounttoken.ExpiresAtLTE(tokenCutoff)).Limit(purgeBatch).IDs(ctx)
		},
		func(ctx context.Context, ids []string) (int, error) {
			return s.Client.AccountToken.Delete().
				Where(accounttoken.IDIn(ids...), accounttoken.ExpiresAtLTE(tokenCutoff)).Exec(ctx)
		}); err != nil {
		return res, fmt.Errorf("purge account tokens: %w", err)
	}
	noticeCutoff := now.Add(-noticeRetention)
	if res.AccountNotices, err = purge(ctx,
		func(ctx context.Context) ([]string, error) {
			return s.Client.AccountNotice.Query().Where(accountnotice.DispatchedAtLTE(noticeCutoff)).Limit(purgeBatch).IDs(ctx)
		},
		func(ctx context.Context, ids []string) (int, error) {
			return s.Client.AccountNotice.Delete().
				Where(accountnotice.IDIn(ids...), accountnotice.DispatchedAtLTE(noticeCutoff)).Exec(ctx)
		}); err != nil {
		return res, fmt.Errorf("purge account notices: %w", err)
	}
	return res, nil
}

// noticeRetention keeps a dispatched account notice (which holds an email
// address, possibly one without an account) for 30 days.
const noticeRetention = 30 * 24 * time.Hour

// purge deletes in batches: it selects up to purgeBatch ids, deletes them
// (re-checking the condition, as rows may have changed in between), and stops
// after a short batch.
func purge(ctx context.Context, next func(context.Context) ([]string, error), del func(context.Context, []string) (int, error)) (int, error) {
	total := 0
	for {
		ids, err := next(ctx)
		if err != nil || len(ids) == 0 {
			return total, err
		}
		n, err := del(ctx, ids)
		total += n
		if err != nil || len(ids) < purgeBatch {
			return total, err
		}
	}
}
