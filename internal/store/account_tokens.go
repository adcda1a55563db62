package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
)

// accountTokenPrefix prefixes account token row ids (not the tokens).
const accountTokenPrefix = "atk_"

// NewAccountToken is a token about to be mailed.
type NewAccountToken struct {
	AccountID string
	Purpose   accounttoken.Purpose
	// Email is where it is mailed; for verify_email the address it proves.
	Email     string
	Hash      string
	ExpiresAt time.Time
	At        time.Time
	// RequestedAt is when the letter was asked for (its notice's time).
	RequestedAt time.Time
}

// ErrStaleToken says a token was not issued: the account asked for a
// newer one of the same purpose meanwhile (its letter went out first).
var ErrStaleToken = errors.New("a newer token of this purpose exists")

// IssueAccountToken stores a token's hash and supersedes the account's
// unused tokens of the same purpose asked for earlier, in one transaction
// with rec: only the link of the latest request works, whatever order the
// letters go out in. ErrStaleToken, and nothing written, when a token of a
// later request is out already.
func (s *Store) IssueAccountToken(ctx context.Context, t NewAccountToken, rec Records) error {
	at, requested := utc(t.At), utc(t.RequestedAt)
	if t.RequestedAt.IsZero() {
		requested = at
	}
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		newer, err := tx.AccountToken.Query().
			Where(append(liveTokens(t.AccountID, t.Purpose), accounttoken.RequestedAtGT(requested))...).Exist(ctx)
		if err != nil {
			return err
		}
		if newer {
			return ErrStaleToken
		}
		if err := supersedeTokens(ctx, tx, t.AccountID, at, t.Purpose); err != nil {
			return err
		}
		if err := tx.AccountToken.Create().
			SetID(ids.NewAt(accountTokenPrefix, at)).SetAccountID(t.AccountID).
			SetPurpose(t.Purpose).SetEmail(normalizeEmail(t.Email)).SetTokenHash(t.Hash).
			SetCreatedAt(at).SetRequestedAt(requested).SetExpiresAt(utc(t.ExpiresAt)).Exec(ctx); err != nil {
			return err
		}
		return rec.write(ctx, tx, t.AccountID)
	})
	switch {
	case errors.Is(err, ErrStaleToken):
		return err
	case err != nil:
		return wrap(err, "issue account token")
	}
	return nil
}

// liveTokens selects an account's unused, unsuperseded tokens of the
// purposes (every purpose when none is given).
func liveTokens(accountID string, purposes ...accounttoken.Purpose) []predicate.AccountToken {
	ps := []predicate.AccountToken{accounttoken.AccountID(accountID), accounttoken.UsedAtIsNil(), accounttoken.SupersededAtIsNil()}
	if len(purposes) > 0 {
		ps = append(ps, accounttoken.PurposeIn(purposes...))
	}
	return ps
}

// supersedeTokens makes an account's live tokens of the purposes (every
// purpose when none is given) stop working.
func supersedeTokens(ctx context.Context, tx *ent.Tx, accountID string, at time.Time, purposes ...accounttoken.Purpose) error {
	if _, err := tx.AccountToken.Update().Where(liveTokens(accountID, purposes...)...).SetSupersededAt(at).Save(ctx); err != nil {
		return fmt.Errorf("supersede mailed tokens of %s: %w", accountID, err)
	}
	return nil
}

// Why a token is refused; one code (invalid_argument on the token field),
// a message each, so the person knows to ask for a new link.
const (
	msgTokenInvalid    = "this token is not valid"
	msgTokenUsed       = "this token was used already"
	msgTokenSuperseded = "a newer email was sent: use its token"
	msgTokenExpired    = "this token has expired: ask for a new one"
)

// spendAccountToken marks the token of purpose with hash used, once: of
// two concurrent uses only one succeeds. It returns the token and its
// account, locked (lockAccount).
func (s *Store) spendAccountToken(ctx context.Context, tx *ent.Tx, purpose accounttoken.Purpose, hash string, now time.Time) (*ent.AccountToken, *ent.Account, error) {
	t, err := tx.AccountToken.Query().Where(accounttoken.TokenHash(hash)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil, nil, errs.InvalidArgument("token", msgTokenInvalid)
	case err != nil:
		return nil, nil, err
	case t.Purpose != purpose:
		// A reset token used to verify, or the other way round.
		return nil, nil, errs.InvalidArgument("token", msgTokenInvalid)
	case t.UsedAt != nil:
		return nil, nil, errs.InvalidArgument("token", msgTokenUsed)
	case t.SupersededAt != nil:
		return nil, nil, errs.InvalidArgument("token", msgTokenSuperseded)
	case !now.Before(t.ExpiresAt):
		return nil, nil, errs.InvalidArgument("token", msgTokenExpired)
	}
	n, err := tx.AccountToken.Update().
		Where(accounttoken.ID(t.ID), accounttoken.UsedAtIsNil(), accounttoken.SupersededAtIsNil()).
		SetUsedAt(now).Save(ctx)
	if err != nil {
		return nil, nil, err
	}
	if n != 1 {
		return nil, nil, errs.InvalidArgument("token", msgTokenUsed)
	}
	acct, err := s.lockAccount(ctx, tx, t.AccountID)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case acct.Status == account.StatusClosed:
		return nil, nil, errs.InvalidArgument("token", msgTokenInvalid)
	case acct.Status == account.StatusDisabled:
		return nil, nil, errs.FailedPrecondition("this account is suspended")
	case purpose == accounttoken.PurposeResetPassword && t.Email != acct.Email:
		// Mailed to an address the account has left since: whoever still
		// reads that mailbox must not take the account back.
		return nil, nil, errs.InvalidArgument("token", msgTokenSuperseded)
	}
	return t, acct, nil
}

// VerifyEmail spends a verification token: the address it was mailed to
// is verified, and if it is the account's pending new email, it becomes
// the login email (AlreadyExists if another account took it meanwhile).
// rec's audit rows get the right type (email verified or changed).
func (s *Store) VerifyEmail(ctx context.Context, hash string, now time.Time, audit Audit) (*ent.Account, error) {
	now = utc(now)
	var out *ent.Account
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		t, acct, err := s.spendAccountToken(ctx, tx, accounttoken.PurposeVerifyEmail, hash, now)
		if err != nil {
			return err
		}
		up := tx.Account.UpdateOneID(acct.ID).SetEmailVerified(true).SetUpdatedAt(now)
		audit.Type = AuditEmailVerified
		if audit.ActorID == "" {
			// Whoever holds the mailed token acts as the account.
			audit.ActorID = acct.ID
		}
		switch t.Email {
		case acct.Email:
		case acct.PendingEmail:
			up.SetEmail(t.Email).SetPendingEmail("")
			audit.Type = AuditEmailChanged
			// Reset links mailed to the old address stop working.
			if err := supersedeTokens(ctx, tx, acct.ID, now); err != nil {
				return err
			}
		default:
			// A change asked for after this link was sent replaced it.
			return errs.InvalidArgument("token", msgTokenSuperseded)
		}
		if out, err = up.Save(ctx); err != nil {
			if isUniqueViolation(err) {
				return errs.AlreadyExists("another account uses this email now")
			}
			return err
		}
		return Records{Audits: []Audit{audit}}.write(ctx, tx, acct.ID)
	})
	if err != nil {
		return nil, wrap(err, "verify email")
	}
	return out, nil
}

// ResetPassword spends a reset token: the password hash is replaced,
// every session of the account revoked, and the owner told, in one
// transaction.
func (s *Store) ResetPassword(ctx context.Context, hash, passwordHash string, now time.Time, audit Audit) (*ent.Account, error) {
	now = utc(now)
	var out *ent.Account
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		_, acct, err := s.spendAccountToken(ctx, tx, accounttoken.PurposeResetPassword, hash, now)
		if err != nil {
			return err
		}
		if out, err = tx.Account.UpdateOneID(acct.ID).SetPasswordHash(passwordHash).SetUpdatedAt(now).Save(ctx); err != nil {
			return err
		}
		if err := revokeSessions(ctx, tx.Client(), acct.ID, now); err != nil {
			return err
		}
		audit.Type = AuditPasswordReset
		if audit.ActorID == "" {
			audit.ActorID = acct.ID
		}
		return Records{
			Audits:  []Audit{audit},
			Notices: []Notice{{Kind: accountnotice.KindPasswordChanged, Recipient: acct.Email, At: now}},
		}.write(ctx, tx, acct.ID)
	})
	if err != nil {
		return nil, wrap(err, "reset password")
	}
	return out, nil
}
