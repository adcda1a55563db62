package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/ent/apikey"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/emailmessage"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/predicate"
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
// account's row is locked meanwhile (lockForStatusChange), so a
// concurrent payment creation sees either the active or the closed account.
func (s *Store) CloseAccount(ctx context.Context, id string, now time.Time, audit Audit) (*ent.Account, error) {
	now = utc(now)
	var out *ent.Account
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		acct, admins, err := s.lockForStatusChange(ctx, tx, id)
		if err != nil {
			return err
		}
		if acct.Status != account.StatusActive {
			return errs.FailedPrecondition("account %s is %s", id, acct.Status)
		}
		if err := lastAdmin(acct, admins); err != nil {
			return err
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
		if err := revokeSessions(ctx, tx.Client(), id, now); err != nil {
			return err
		}
		if _, err := tx.APIKey.Update().Where(apikey.AccountID(id), apikey.RevokedAtIsNil()).
			SetRevokedAt(now).Save(ctx); err != nil {
			return fmt.Errorf("revoke API keys: %w", err)
		}
		if err := supersedeTokens(ctx, tx, id, now); err != nil {
			return err
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
// refunds, disputes and ledger entries stay as they are. It works in
// batches as the purge does, each account in its own transaction with its
// audit row, and returns how many it anonymized.
func (s *Store) AnonymizeClosedAccounts(ctx context.Context, cutoff, now time.Time) (int, error) {
	cutoff, now = utc(cutoff), utc(now)
	due := []predicate.Account{account.StatusEQ(account.StatusClosed), account.ClosedAtLTE(cutoff), account.AnonymizedAtIsNil()}
	n, err := purge(ctx,
		func(ctx context.Context) ([]string, error) {
			return s.Client.Account.Query().Where(due...).Order(ent.Asc(account.FieldClosedAt)).Limit(purgeBatch).IDs(ctx)
		},
		func(ctx context.Context, ids []string) (int, error) {
			done := 0
			for _, id := range ids {
				ok, err := s.anonymize(ctx, id, due, now)
				if err != nil {
					return done, fmt.Errorf("anonymize %s: %w", id, err)
				}
				if ok {
					done++
				}
			}
			return done, nil
		})
	if err != nil {
		return n, fmt.Errorf("anonymize closed accounts: %w", err)
	}
	return n, nil
}

// anonymize erases one account's personal data in one transaction with its
// audit row, if it still matches due; ok says it did.
func (s *Store) anonymize(ctx context.Context, id string, due []predicate.Account, now time.Time) (ok bool, err error) {
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		ok = false
		k, err := tx.Account.Update().Where(append(due, account.ID(id))...).
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
		ok = true
		return Audit{Type: AuditAnonymized, TargetID: id, At: now}.create(ctx, tx.Client())
	})
	return ok, err
}
