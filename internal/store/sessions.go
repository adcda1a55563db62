package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/predicate"
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

// SessionClient is who made the request that created a refresh token, as
// ListSessions shows it.
type SessionClient struct {
	UserAgent, IP string
}

// CreateRefreshToken stores the hash of a new refresh token that starts the
// family familyID (a login, at now). An unknown account is NotFound.
func (s *Store) CreateRefreshToken(ctx context.Context, accountID, familyID, tokenHash string, expiresAt, now time.Time, client SessionClient) (*ent.RefreshToken, error) {
	now = utc(now)
	rt, err := s.Client.RefreshToken.Create().
		SetID(ids.NewAt(ids.Refresh, now)).
		SetAccountID(accountID).
		SetFamilyID(familyID).
		SetTokenHash(tokenHash).
		SetCreatedAt(now).
		SetExpiresAt(utc(expiresAt)).
		SetFamilyCreatedAt(now).
		SetUserAgent(truncateRunes(client.UserAgent, 512)).
		SetClientIP(truncateBytes(client.IP, 64)).
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
//
// Except within grace of the first rotation: two tabs refreshing at once, or
// a request retried after its answer was lost, present the same token
// twice. The caller derives the successor from the presented token (so both
// presentations name the same successor, newHash); when the token's
// successor has that hash and is not revoked, the repeat gets it back
// rather than signing the person out. After grace, reuse revokes the family
// as before.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash, newHash string, newExpiresAt, now time.Time, grace time.Duration, client SessionClient) (*ent.RefreshToken, *ent.Account, error) {
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
		return s.repeatedRefresh(ctx, old, old.Edges.Account, newHash, now, grace)
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
			SetFamilyCreatedAt(familyStart(old)).
			SetUserAgent(truncateRunes(client.UserAgent, 512)).
			SetClientIP(truncateBytes(client.IP, 64)).
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
			return s.repeatedRefresh(ctx, cur, old.Edges.Account, newHash, now, grace)
		}
		return nil, nil, errs.Unauthenticated(msgInvalidRefresh)
	}
	if err != nil {
		return nil, nil, err
	}
	return next, old.Edges.Account, nil
}

// familyStart is when a token's login happened (tokens stored before the
// field was: their own creation).
func familyStart(rt *ent.RefreshToken) time.Time {
	if rt.FamilyCreatedAt.IsZero() {
		return utc(rt.CreatedAt)
	}
	return utc(rt.FamilyCreatedAt)
}

// repeatedRefresh answers a token presented again after its rotation: its
// successor when the repeat comes within grace and names that successor
// (newHash), reuse (the family revoked) otherwise.
func (s *Store) repeatedRefresh(ctx context.Context, rt *ent.RefreshToken, acct *ent.Account, newHash string, now time.Time, grace time.Duration) (*ent.RefreshToken, *ent.Account, error) {
	if grace > 0 && rt.RevokedAt == nil && rt.ReplacedBy != nil && !now.After(rt.RotatedAt.Add(grace)) &&
		acct.Status == account.StatusActive {
		next, err := s.Client.RefreshToken.Get(ctx, *rt.ReplacedBy)
		switch {
		case err != nil && !ent.IsNotFound(err):
			return nil, nil, fmt.Errorf("read refresh token: %w", err)
		case err == nil && next.TokenHash == newHash && next.RevokedAt == nil:
			return next, acct, nil
		}
	}
	return nil, nil, s.refreshReused(ctx, rt, now)
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
	return revokeSessions(ctx, s.Client, accountID, utc(now))
}

// revokeSessions revokes every live refresh token of an account with db
// (a transaction's client when it goes with another change: a new
// password, a suspension, a closure).
func revokeSessions(ctx context.Context, db *ent.Client, accountID string, now time.Time) error {
	if _, err := db.RefreshToken.Update().
		Where(refreshtoken.AccountID(accountID), refreshtoken.RevokedAtIsNil()).
		SetRevokedAt(now).
		Save(ctx); err != nil {
		return fmt.Errorf("revoke refresh tokens of %s: %w", accountID, err)
	}
	return nil
}

// ListSessions returns one page of an account's sessions: the live refresh
// token of each login (neither rotated, revoked nor expired at now), the
// most recently used first.
func (s *Store) ListSessions(ctx context.Context, accountID string, now time.Time, p Page) ([]*ent.RefreshToken, error) {
	var w where
	w.is(refreshtoken.FieldAccountID, accountID)
	w.add(sql.FieldIsNull(refreshtoken.FieldRotatedAt))
	w.add(sql.FieldIsNull(refreshtoken.FieldRevokedAt))
	w.add(sql.FieldGT(refreshtoken.FieldExpiresAt, utc(now)))
	rts, err := list(ctx, migrate.RefreshTokensTable, w, Filter{}, p, SessionCursor,
		func(ctx context.Context, q keyset) ([]*ent.RefreshToken, error) {
			return s.Client.RefreshToken.Query().Where(predicate.RefreshToken(q.Where)).
				Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list sessions")
	}
	return rts, nil
}

// SessionCursor is a session's position in a list: its live token's.
func SessionCursor(rt *ent.RefreshToken) Cursor { return Cursor{rt.CreatedAt, rt.ID} }

// SessionStartedAt is when a session's login happened.
func SessionStartedAt(rt *ent.RefreshToken) time.Time { return familyStart(rt) }

// RevokeSession signs out one login (family) of the account; another
// account's, or one that never existed, is NotFound. Revoking twice is fine.
func (s *Store) RevokeSession(ctx context.Context, accountID, familyID string, now time.Time, audit Audit) error {
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		n, err := tx.RefreshToken.Update().
			Where(refreshtoken.FamilyID(familyID), refreshtoken.AccountID(accountID), refreshtoken.RevokedAtIsNil()).
			SetRevokedAt(utc(now)).Save(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			// Revoked before (nothing to audit again), or not the account's.
			ok, err := tx.RefreshToken.Query().
				Where(refreshtoken.FamilyID(familyID), refreshtoken.AccountID(accountID)).Exist(ctx)
			if err == nil && !ok {
				err = errs.NotFound("session")
			}
			return err
		}
		return Records{Audits: []Audit{audit.Of(AuditSessionRevoked, accountID, map[string]string{"session_id": familyID})}}.
			write(ctx, tx, accountID)
	})
	return wrap(err, "revoke session "+familyID)
}
