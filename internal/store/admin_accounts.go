package store

import (
	"context"
	"fmt"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/dispute"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/internal/errs"
)

// AccountFilter selects accounts for admins; the zero value selects all.
type AccountFilter struct {
	Role   account.Role
	Status account.Status
	// EmailPrefix keeps the emails that start with it (emails are stored
	// lower-case).
	EmailPrefix                 string
	CreatedAfter, CreatedBefore *time.Time
}

// ListAccounts returns one page of accounts, newest first.
func (s *Store) ListAccounts(ctx context.Context, f AccountFilter, p Page) ([]*ent.Account, error) {
	var w where
	w.eq(account.FieldRole, string(f.Role))
	w.eq(account.FieldStatus, string(f.Status))
	if f.EmailPrefix != "" {
		w.add(sql.FieldHasPrefix(account.FieldEmail, normalizeEmail(f.EmailPrefix)))
	}
	as, err := list(ctx, migrate.AccountsTable, w, Filter{CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore}, p, AccountCursor,
		func(ctx context.Context, q keyset) ([]*ent.Account, error) {
			return s.Client.Account.Query().Where(predicate.Account(q.Where)).
				Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list accounts")
	}
	return as, nil
}

// AccountCursor is an account's position in a list.
func AccountCursor(a *ent.Account) Cursor { return Cursor{a.CreatedAt, a.ID} }

// AccountActivity is what an admin sees of an account's business.
type AccountActivity struct {
	// Payments it is the merchant or the customer of.
	Payments int
	// OpenDisputes it is a party to that wait for an outcome.
	OpenDisputes int
	// Balances is what the platform owes the account as a merchant, per
	// currency (its merchant balance account in the ledger).
	Balances map[string]int64
}

// AccountActivityOf counts an account's payments and open disputes and
// sums its merchant balance per currency.
func (s *Store) AccountActivityOf(ctx context.Context, id string) (AccountActivity, error) {
	var a AccountActivity
	var err error
	if a.Payments, err = s.Client.Payment.Query().
		Where(payment.Or(payment.MerchantID(id), payment.CustomerID(id))).Count(ctx); err != nil {
		return a, fmt.Errorf("count payments of %s: %w", id, err)
	}
	if a.OpenDisputes, err = s.Client.Dispute.Query().
		Where(dispute.Or(dispute.MerchantID(id), dispute.CustomerID(id)),
			dispute.StatusIn(openDisputeStatuses...)).Count(ctx); err != nil {
		return a, fmt.Errorf("count disputes of %s: %w", id, err)
	}
	balances, err := s.AccountBalances(ctx, merchantAccountPrefix+id)
	if err != nil {
		return a, err
	}
	for currency, signed := range balances {
		if a.Balances == nil {
			a.Balances = map[string]int64{}
		}
		// Debits minus credits; the platform owes the merchant its credits.
		a.Balances[currency] = -signed
	}
	return a, nil
}

// Suspension is why, by whom and when an account is suspended.
type Suspension struct {
	Reason, Note string
	// Audit is who suspends, when and from where: the suspension's
	// suspended_by and suspended_at, and its audit row.
	Audit Audit
}

// SuspendAccount disables an account: its sessions are revoked in the same
// transaction, and its access tokens and API keys stop at the next status
// check (the API caches statuses for seconds). An account suspended
// already is returned as it is; the last active admin cannot be
// suspended (lockForStatusChange: two admins suspending each other cannot
// both succeed).
func (s *Store) SuspendAccount(ctx context.Context, id string, sus Suspension) (*ent.Account, error) {
	var out *ent.Account
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		target, admins, err := s.lockForStatusChange(ctx, tx, id)
		if err != nil {
			return err
		}
		switch target.Status {
		case account.StatusDisabled:
			out = target
			return nil
		case account.StatusClosed:
			return errs.FailedPrecondition("account %s is closed", id)
		}
		if err := lastAdmin(target, admins); err != nil {
			return err
		}
		at := utc(sus.Audit.At)
		if out, err = tx.Account.UpdateOneID(id).
			SetStatus(account.StatusDisabled).
			SetSuspensionReason(sus.Reason).SetSuspensionNote(truncateRunes(sus.Note, 1000)).
			SetSuspendedAt(at).SetSuspendedBy(sus.Audit.ActorID).SetUpdatedAt(at).
			Save(ctx); err != nil {
			return err
		}
		if err := revokeSessions(ctx, tx.Client(), id, at); err != nil {
			return err
		}
		return Records{
			Audits: []Audit{sus.Audit.Of(AuditSuspended, id, map[string]string{"reason": sus.Reason})},
			Notices: []Notice{{Kind: accountnotice.KindSuspended, Recipient: target.Email, At: at,
				Data: map[string]string{"reason": sus.Reason}}},
		}.write(ctx, tx, id)
	})
	if err != nil {
		return nil, wrap(err, "suspend account "+id)
	}
	return out, nil
}

// ReactivateAccount lifts a suspension (on an active account it changes
// only updated_at; a closed account stays closed: FailedPrecondition). The
// person signs in again: suspension revoked the sessions.
func (s *Store) ReactivateAccount(ctx context.Context, id string, now time.Time, audit Audit) (*ent.Account, error) {
	now = utc(now)
	var out *ent.Account
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		target, err := s.lockAccount(ctx, tx, id)
		if err != nil {
			return err
		}
		if target.Status == account.StatusClosed {
			return errs.FailedPrecondition("account %s is closed; a closed account cannot be reactivated", id)
		}
		if out, err = tx.Account.UpdateOneID(id).
			SetStatus(account.StatusActive).
			SetSuspensionReason("").SetSuspensionNote("").ClearSuspendedAt().SetSuspendedBy("").
			SetUpdatedAt(now).
			Save(ctx); err != nil {
			return err
		}
		if target.Status == account.StatusActive {
			return nil
		}
		return Records{Audits: []Audit{audit.Of(AuditReactivated, id, nil)}}.write(ctx, tx, id)
	})
	if err != nil {
		return nil, wrap(err, "reactivate account "+id)
	}
	return out, nil
}
