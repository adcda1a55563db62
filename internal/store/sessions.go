package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/refreshtoken"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
)

// The messages of failed refreshes. They are deliberately vague about which
// check failed, except for reuse, which the owner needs to understand.
const (
	msgInvalidRefresh  = "invalid or expired refresh token"
	msgReusedRefresh   = "refresh token was already used; every session of this login has been revoked"
	msgAccountDisabled = "this account is disabled"
)

// CreateRefreshToken stores the hash of a new refresh token that starts the
// family familyID (a login) or continues it. An unknown account is NotFound.
func (s *Store) CreateRefreshToken(ctx context.Context, accountID, familyID, tokenHash string, expiresAt, now time.Time) (*ent.RefreshToken, error) {
	now = utc(now)
	rt, err := s.Client.RefreshToken.Create().
		SetID(ids.NewAt(ids.Refresh, now)).
		SetAccountID(accountID).
		SetFamilyID(familyID).
		SetTokenHash(tokenHash).
		SetCreatedAt(now).
		SetExpiresAt(utc(expiresAt)).
		Save(ctx)
	return rt, createTokenErr(err)
}

func createTokenErr(err error) error {
	switch {
	case err == nil:
		return nil
	case isForeignKeyViolation(err):
		return errs.NotFound("account")
	case isUniqueViolation(err):
		// Two random 256-bit tokens never collide; a caller reused one.
		return errs.AlreadyExists("this refresh token exists already")
	case ent.IsValidationError(err):
		return invalid(err)
	}
	return fmt.Errorf("create refresh token: %w", err)
}

// errReused tells RotateRefreshToken that the old token had been rotated
// before, once its transaction has been rolled back.
var errReused = errors.New("refresh token reused")

// RotateRefreshToken exchanges a live refresh token for a new one of the same
// family and returns the new token with its account.
//
// Presenting a token that was already rotated means two parties hold it (the
// owner and a thief, or a replayed request): the whole family is revoked, so
// the token handed out by the first rotation dies too, and the revocation is
// committed although the call fails. Of two concurrent rotations of one token
// exactly one wins, decided by a conditional update; the other is reuse.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash, newHash string, newExpiresAt, now time.Time) (*ent.RefreshToken, *ent.Account, error) {
	now = utc(now)
	old, err := s.Client.RefreshToken.Query().
		Where(refreshtoken.TokenHash(oldHash)).
		WithAccount().
		Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil, nil, errs.Unauthenticated(msgInvalidRefresh)
	case err != nil:
		return nil, nil, fmt.Errorf("read refresh token: %w", err)
	case old.RotatedAt != nil:
		return nil, nil, s.refreshReused(ctx, old, now)
	case old.RevokedAt != nil || !now.Before(old.ExpiresAt):
		return nil, nil, errs.Unauthenticated(msgInvalidRefresh)
	case old.Edges.Account.Status != account.StatusActive:
		return nil, nil, errs.Unauthenticated(msgAccountDisabled)
	}

	var next *ent.RefreshToken
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		nextID := ids.NewAt(ids.Refresh, now)
		n, err := tx.RefreshToken.Update().
			Where(
				refreshtoken.ID(old.ID),
				refreshtoken.RotatedAtIsNil(),
				refreshtoken.RevokedAtIsNil(),
			).
			SetRotatedAt(now).
			SetReplacedBy(nextID).
			Save(ctx)
		if err != nil {
			return fmt.Errorf("mark refresh token rotated: %w", err)
		}
		if n == 0 {
			return errReused
		}
		next, err = tx.RefreshToken.Create().
			SetID(nextID).
			SetAccountID(old.AccountID).
			SetFamilyID(old.FamilyID).
			SetTokenHash(newHash).
			SetCreatedAt(now).
			SetExpiresAt(utc(newExpiresAt)).
			Save(ctx)
		return createTokenErr(err)
	})
	if errors.Is(err, errReused) {
		// Lost the race: read what happened to the token meanwhile.
		cur, rerr := s.Client.RefreshToken.Get(ctx, old.ID)
		switch {
		case ent.IsNotFound(rerr):
			return nil, nil, errs.Unauthenticated(msgInvalidRefresh)
		case rerr != nil:
			return nil, nil, fmt.Errorf("read refresh token: %w", rerr)
		case cur.RotatedAt != nil:
			return nil, nil, s.refreshReused(ctx, cur, now)
		}
		return nil, nil, errs.Unauthenticated(msgInvalidRefresh)
	}
	if err != nil {
		return nil, nil, err
	}
	return next, old.Edges.Account, nil
}

// refreshReused revokes the family of a reused token and returns the error to
// give the caller. The revocation must happen even if the caller has gone, so
// it ignores the cancellation of ctx.
func (s *Store) refreshReused(ctx context.Context, rt *ent.RefreshToken, now time.Time) error {
	if err := s.revokeFamily(context.WithoutCancel(ctx), rt.FamilyID, now); err != nil {
		return err
	}
	return errs.Unauthenticated(msgReusedRefresh)
}

func (s *Store) revokeFamily(ctx context.Context, familyID string, now time.Time) error {
	if _, err := s.Client.RefreshToken.Update().
		Where(refreshtoken.FamilyID(familyID), refreshtoken.RevokedAtIsNil()).
		SetRevokedAt(now).
		Save(ctx); err != nil {
		return fmt.Errorf("revoke refresh token family %s: %w", familyID, err)
	}
	return nil
}

// RevokeRefreshFamily ends the login that tokenHash belongs to (logout): every
// token of its family is revoked. A token of another account is NotFound, so
// one account cannot probe or end another's sessions. Revoking twice is fine.
func (s *Store) RevokeRefreshFamily(ctx context.Context, accountID, tokenHash string, now time.Time) error {
	rt, err := s.Client.RefreshToken.Query().
		Where(refreshtoken.TokenHash(tokenHash), refreshtoken.AccountID(accountID)).
		Only(ctx)
	if err != nil {
		return notFound(err, "refresh token")
	}
	return s.revokeFamily(ctx, rt.FamilyID, utc(now))
}

// RevokeAllRefreshTokens signs an account out of every session.
func (s *Store) RevokeAllRefreshTokens(ctx context.Context, accountID string, now time.Time) error {
	if _, err := s.Client.RefreshToken.Update().
		Where(refreshtoken.AccountID(accountID), refreshtoken.RevokedAtIsNil()).
		SetRevokedAt(utc(now)).
		Save(ctx); err != nil {
		return fmt.Errorf("revoke refresh tokens of %s: %w", accountID, err)
	}
	return nil
}
