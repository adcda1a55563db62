package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/ent/apikey"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/emailmessage"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/refreshtoken"
	"github.com/payments-platform/payments/ent/refund"
	"github.com/payments-platform/payments/internal/errs"
)

// closeBlockersShown bounds the ids a refused closure names per kind.
const closeBlockersShown = 3

// ClosedEmail is the placeholder email of a closed account: it frees the
// address for a new registration and can never receive mail (.invalid,
// RFC 2606).
func ClosedEmail(accountID string) string { return accountID + "@closed.invalid" }

// ClosedName replaces a closed account's names after the retention period.
const ClosedName = "Closed account"

// CloseAccount closes an active account for good, unless it is a party to
// money still moving: an open dispute, a payment not final (an uncaptured
// authorization, one waiting for the customer or the gateway) or a
// pending refund (FailedPrecondition naming them). In one transaction:
// the status becomes closed, the email a placeholder (the address is kept
// in closed_email until AnonymizeClosedAccounts), every session, API key
// and mailed token is revoked, the audit row written and the owner told. The
// account's row is locked on MySQL meanwhile, so a concurrent payment
// creation sees either the active or the closed account.
func (s *Store) CloseAccount(ctx context.Context, id string, now time.Time, audit Audit) (*ent.Account, error) {
	now = utc(now)
	var out *ent.Account
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		acct, err := s.lockAccount(ctx, tx, id)
		if err != nil {
			return err
		}
		if acct.Status != account.StatusActive {
			return errs.FailedPrecondition("account %s is %s", id, acct.Status)
		}
		if acct.Role == account.RoleAdmin {
			// As for suspensions: the platform keeps an admin who can act.
			admins := tx.Account.Query().Where(account.RoleEQ(account.RoleAdmin), account.StatusEQ(account.StatusActive))
			if s.dialect == dialect.MySQL {
				admins = admins.ForUpdate()
			}
			n, err := admins.Count(ctx)
			if err != nil {
				return err
			}
			if n <= 1 {
				return errs.FailedPrecondition("%s is the last active admin: make another admin first", id)
			}
		}
		if err := closeBlockers(ctx, tx, id); err != nil {
			return err
		}
		if out, err = tx.Account.UpdateOneID(id).
			SetStatus(account.StatusClosed).SetClosedAt(now).
			SetClosedEmail(acct.Email).SetEmail(ClosedEmail(id)).SetPendingEmail("").
			SetUpdatedAt(now).Save(ctx); err != nil {
			return err
		}
		if _, err := tx.RefreshToken.Update().Where(refreshtoken.AccountID(id), refreshtoken.RevokedAtIsNil()).
			SetRevokedAt(now).Save(ctx); err != nil {
			return fmt.Errorf("revoke sessions: %w", err)
		}
		if _, err := tx.APIKey.Update().Where(apikey.AccountID(id), apikey.RevokedAtIsNil()).
			SetRevokedAt(now).Save(ctx); err != nil {
			return fmt.Errorf("revoke API keys: %w", err)
		}
		if _, err := tx.AccountToken.Update().Where(accounttoken.AccountID(id), accounttoken.UsedAtIsNil(), accounttoken.SupersededAtIsNil()).
			SetSupersededAt(now).Save(ctx); err != nil {
			return fmt.Errorf("revoke mailed tokens: %w", err)
		}
		return Records{
			Audits:  []Audit{audit.Of(AuditClosed, id, nil)},
			Notices: []Notice{{Kind: accountnotice.KindClosed, Recipient: acct.Email, At: now}},
		}.write(ctx, tx, id)
	})
	if err != nil {
		return nil, wrap(err, "close account "+id)
	}
	return out, nil
}

// closeBlockers is FailedPrecondition naming what keeps an account from
// closing, or nil.
func closeBlockers(ctx context.Context, tx *ent.Tx, id string) error {
	var parts []string
	disputes, err := tx.Dispute.Query().
		Where(dispute.Or(dispute.MerchantID(id), dispute.CustomerID(id)), dispute.StatusIn(openDisputeStatuses...)).
		Order(ent.Asc(dispute.FieldID)).IDs(ctx)
	if err != nil {
		return err
	}
	parts = appendBlocker(parts, disputes, "open dispute", "open disputes")
	party := payment.Or(payment.MerchantID(id), payment.CustomerID(id))
	auths, err := tx.Payment.Query().
		Where(party, payment.StatusEQ(payment.StatusRequiresCapture)).
		Order(ent.Asc(payment.FieldID)).IDs(ctx)
	if err != nil {
		return err
	}
	parts = appendBlocker(parts, auths, "uncaptured authorization", "uncaptured authorizations")
	pending, err := tx.Payment.Query().
		Where(party, payment.StatusIn(payment.StatusProcessing, payment.StatusRequiresAction)).
		Order(ent.Asc(payment.FieldID)).IDs(ctx)
	if err != nil {
		return err
	}
	parts = appendBlocker(parts, pending, "payment in progress", "payments in progress")
	refunds, err := tx.Refund.Query().
		Where(refund.Or(refund.MerchantID(id), refund.CustomerID(id)), refund.StatusEQ(refund.StatusPending)).
		Order(ent.Asc(refund.FieldID)).IDs(ctx)
	if err != nil {
		return err
	}
	parts = appendBlocker(parts, refunds, "refund in flight", "refunds in flight")
	if len(parts) == 0 {
		return nil
	}
	return errs.FailedPrecondition("the account cannot be closed while money is moving: %s", strings.Join(parts, "; "))
}

// appendBlocker adds "2 open disputes (dp_1, dp_2)" to parts when ids is
// not empty, naming at most closeBlockersShown of them.
func appendBlocker(parts, ids []string, one, many string) []string {
	if len(ids) == 0 {
		return parts
	}
	what := many
	if len(ids) == 1 {
		what = one
	}
	shown := ids[:min(len(ids), closeBlockersShown)]
	more := ""
	if len(ids) > len(shown) {
		more = ", ..."
	}
	return append(parts, fmt.Sprintf("%d %s (%s%s)", len(ids), what, strings.Join(shown, ", "), more))
}

// AnonymizeClosedAccounts erases the personal data of accounts closed
// before cutoff and not yet anonymized: names and the kept email are
// replaced, and the addresses of the emails sent to them; their
// dispatched notices and mailed tokens are deleted. Their payments,
// refunds, disputes and ledger entries stay as they are. It handles up to
// purgeBatch accounts a call, each in its own transaction with its audit
// row, batch after batch, and returns how many.
func (s *Store) AnonymizeClosedAccounts(ctx context.Context, cutoff, now time.Time) (int, error) {
	cutoff, now = utc(cutoff), utc(now)
	total := 0
	for {
		n, more, err := s.anonymizeBatch(ctx, cutoff, now)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// anonymizeBatch anonymizes up to purgeBatch accounts; more says a full
// batch was due.
func (s *Store) anonymizeBatch(ctx context.Context, cutoff, now time.Time) (n int, more bool, err error) {
	due, err := s.Client.Account.Query().
		Where(account.StatusEQ(account.StatusClosed), account.ClosedAtLTE(cutoff), account.AnonymizedAtIsNil()).
		Order(ent.Asc(account.FieldClosedAt)).Limit(purgeBatch).IDs(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("closed accounts due: %w", err)
	}
	for _, id := range due {
		done := false
		err := s.withTx(ctx, func(tx *ent.Tx) error {
			done = false
			k, err := tx.Account.Update().
				Where(account.ID(id), account.StatusEQ(account.StatusClosed), account.AnonymizedAtIsNil()).
				SetClosedEmail("").SetDisplayName(ClosedName).SetBusinessName("").
				SetAnonymizedAt(now).SetUpdatedAt(now).Save(ctx)
			if err != nil || k == 0 {
				return err
			}
			if _, err := tx.EmailMessage.Update().Where(emailmessage.AccountID(id)).
				SetRecipient(ClosedEmail(id)).Save(ctx); err != nil {
				return err
			}
			// The letters owed and the tokens mailed hold addresses too
			// (they are purged on their own schedule, which a short
			// retention may precede).
			if _, err := tx.AccountNotice.Delete().Where(accountnotice.AccountID(id), accountnotice.DispatchedAtNotNil()).Exec(ctx); err != nil {
				return err
			}
			if _, err := tx.AccountToken.Delete().Where(accounttoken.AccountID(id)).Exec(ctx); err != nil {
				return err
			}
			done = true
			return Audit{Type: AuditAnonymized, TargetID: id, At: now}.create(ctx, tx.Client())
		})
		if err != nil {
			return n, false, fmt.Errorf("anonymize %s: %w", id, err)
		}
		if done {
			n++
		}
	}
	return n, len(due) == purgeBatch, nil
}

// lockAccount reads an account in tx, its row locked until the end of tx
// on MySQL (SQLite serializes writers), or NotFound.
func (s *Store) lockAccount(ctx context.Context, tx *ent.Tx, id string) (*ent.Account, error) {
	q := tx.Account.Query().Where(account.ID(id))
	if s.dialect == dialect.MySQL {
		q = q.ForUpdate()
	}
	acct, err := q.Only(ctx)
	if err != nil {
		return nil, notFound(err, "account")
	}
	return acct, nil
}
