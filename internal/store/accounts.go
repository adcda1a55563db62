package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
)

// NewAccount is what registration (or `paymentsd admin create`) knows about a
// new account. The caller validates and hashes; the store normalises case.
type NewAccount struct {
	Email        string
	PasswordHash string
	Role         account.Role
	DisplayName  string
	BusinessName string
	// DefaultCurrency is an ISO 4217 code in any case; empty means USD.
	DefaultCurrency string
	// EmailVerified is set for accounts an operator or admin vouches for.
	EmailVerified bool
	// Records are written with the account (its audit row, the
	// verification letter); their empty account ids become its id.
	Records Records
}

// CreateAccount stores a new active account. The email is lower-cased so that
// the unique index rejects duplicates whatever their case, also when two
// registrations race: the loser gets AlreadyExists.
func (s *Store) CreateAccount(ctx context.Context, a NewAccount) (*ent.Account, error) {
	if err := deliverable(a.Email); err != nil {
		return nil, err
	}
	now := utc(time.Now())
	id := ids.NewAt(ids.Account, now)
	var acc *ent.Account
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		c := tx.Account.Create().
			SetID(id).
			SetEmail(normalizeEmail(a.Email)).
			SetPasswordHash(a.PasswordHash).
			SetRole(a.Role).
			SetDisplayName(a.DisplayName).
			SetBusinessName(a.BusinessName).
			SetEmailVerified(a.EmailVerified).
			SetCreatedAt(now).
			SetUpdatedAt(now)
		if a.DefaultCurrency != "" {
			c.SetDefaultCurrency(strings.ToUpper(a.DefaultCurrency))
		}
		var err error
		if acc, err = c.Save(ctx); err != nil {
			return err
		}
		return a.Records.write(ctx, tx, id)
	})
	switch {
	case err == nil:
		return acc, nil
	case isUniqueViolation(err):
		return nil, errs.AlreadyExists("an account with this email already exists")
	case ent.IsValidationError(err):
		return nil, invalid(err)
	}
	return nil, fmt.Errorf("create account: %w", err)
}

// AccountByID returns an account, or NotFound.
func (s *Store) AccountByID(ctx context.Context, id string) (*ent.Account, error) {
	acc, err := s.Client.Account.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "account")
	}
	return acc, nil
}

// AccountByEmail finds an account by email in any case, or NotFound.
func (s *Store) AccountByEmail(ctx context.Context, email string) (*ent.Account, error) {
	acc, err := s.Client.Account.Query().Where(account.Email(normalizeEmail(email))).Only(ctx)
	if err != nil {
		return nil, notFound(err, "account")
	}
	return acc, nil
}

// AccountUpdate lists the fields to change; nil leaves a field as it is.
type AccountUpdate struct {
	DisplayName     *string
	BusinessName    *string
	DefaultCurrency *string
	// PasswordHash, when set, also signs the account out everywhere.
	PasswordHash *string
	// EmailOptOut, when not nil, replaces the email categories turned off.
	EmailOptOut *[]string
	// PendingEmail, when set, is a new email waiting for verification
	// (AlreadyExists when another account uses it); "" cancels a change.
	PendingEmail *string
	// Records are written with the change.
	Records Records
}

// UpdateAccount changes an account's profile or password. A new password
// revokes every refresh token of the account in the same transaction, so a
// stolen session cannot outlive the password change that was meant to end it.
func (s *Store) UpdateAccount(ctx context.Context, id string, u AccountUpdate, now time.Time) (*ent.Account, error) {
	now = utc(now)
	var acc *ent.Account
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		up := tx.Account.UpdateOneID(id).
			SetNillableDisplayName(u.DisplayName).
			SetNillableBusinessName(u.BusinessName).
			SetNillablePasswordHash(u.PasswordHash).
			SetUpdatedAt(now)
		if u.DefaultCurrency != nil {
			up.SetDefaultCurrency(strings.ToUpper(*u.DefaultCurrency))
		}
		if u.EmailOptOut != nil {
			up.SetEmailOptOut(*u.EmailOptOut)
		}
		if u.PendingEmail != nil {
			pending := normalizeEmail(*u.PendingEmail)
			if pending != "" {
				if err := deliverable(pending); err != nil {
					return err
				}
				taken, err := tx.Account.Query().Where(account.Email(pending)).Exist(ctx)
				if err != nil {
					return err
				}
				if taken {
					return errs.AlreadyExists("an account with this email already exists")
				}
			}
			up.SetPendingEmail(pending)
		}
		var err error
		if acc, err = up.Save(ctx); err != nil {
			return err
		}
		if u.PasswordHash != nil {
			if err := revokeSessions(ctx, tx.Client(), id, now); err != nil {
				return err
			}
		}
		return u.Records.write(ctx, tx, id)
	})
	switch {
	case err == nil:
		return acc, nil
	case ent.IsNotFound(err):
		return nil, errs.NotFound("account")
	case ent.IsValidationError(err):
		return nil, invalid(err)
	}
	return nil, wrap(err, "update account "+id)
}

// deliverable refuses addresses under the .invalid top-level domain
// (RFC 2606): they can receive no mail, and closed accounts' placeholder
// emails (ClosedEmail) live there, which nobody may take first.
func deliverable(email string) error {
	if strings.HasSuffix(normalizeEmail(strings.TrimSpace(email)), ".invalid") {
		return errs.InvalidArgument("email", "addresses under .invalid cannot receive mail")
	}
	return nil
}

// normalizeEmail is the one canonical form of an email address we store and
// look up, so that case never creates a second account.
func normalizeEmail(email string) string {
	return strings.ToLower(email)
}

// notFound maps ent's not-found to the domain NotFound of what, and wraps
// other errors.
func notFound(err error, what string) error {
	if ent.IsNotFound(err) {
		return errs.NotFound(what)
	}
	return fmt.Errorf("read %s: %w", what, err)
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

// lockForStatusChange locks the account whose status is about to change
// (a suspension, a closure) and returns it with the number of active
// admins. For an admin, every active admin's row is locked, in id order,
// with the target among them: the last-admin check holds against
// concurrent changes, and two admins acting on each other wait for each
// other instead of deadlocking. Other accounts lock only their own row.
func (s *Store) lockForStatusChange(ctx context.Context, tx *ent.Tx, id string) (*ent.Account, int, error) {
	// The role never changes, so it may be read before the locks.
	who, err := tx.Account.Query().Where(account.ID(id)).Select(account.FieldRole).Only(ctx)
	if err != nil {
		return nil, 0, notFound(err, "account")
	}
	if who.Role != account.RoleAdmin {
		target, err := s.lockAccount(ctx, tx, id)
		return target, 0, err
	}
	q := tx.Account.Query().
		Where(account.RoleEQ(account.RoleAdmin), account.Or(account.ID(id), account.StatusEQ(account.StatusActive))).
		Order(ent.Asc(account.FieldID))
	if s.dialect == dialect.MySQL {
		q = q.ForUpdate()
	}
	rows, err := q.All(ctx)
	if err != nil {
		return nil, 0, err
	}
	var target *ent.Account
	active := 0
	for _, a := range rows {
		if a.ID == id {
			target = a
		}
		if a.Status == account.StatusActive {
			active++
		}
	}
	if target == nil {
		return nil, 0, errs.NotFound("account")
	}
	return target, active, nil
}

// lastAdmin refuses to take the last active admin out of service.
func lastAdmin(target *ent.Account, activeAdmins int) error {
	if target.Role == account.RoleAdmin && target.Status == account.StatusActive && activeAdmins <= 1 {
		return errs.FailedPrecondition("%s is the last active admin: make another admin first", target.ID)
	}
	return nil
}
