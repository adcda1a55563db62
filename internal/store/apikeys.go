package store

import (
	"context"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/apikey"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
)

// lastUsedResolution is how stale an API key's last_used_at may get: writing
// it on every authenticated request would turn each read into a write.
const lastUsedResolution = time.Minute

const msgInvalidAPIKey = "invalid API key"

// CreateAPIKey stores a new API key of an account by the hash of its secret;
// the secret itself is shown once by the caller and never stored.
func (s *Store) CreateAPIKey(ctx context.Context, accountID, name, prefix, keyHash string, now time.Time, audit Audit) (*ent.APIKey, error) {
	now = utc(now)
	var k *ent.APIKey
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		var err error
		if k, err = tx.APIKey.Create().
			SetID(ids.NewAt(ids.APIKey, now)).
			SetAccountID(accountID).
			SetName(name).
			SetPrefix(prefix).
			SetKeyHash(keyHash).
			SetCreatedAt(now).
			Save(ctx); err != nil {
			return err
		}
		audit = audit.Of(AuditAPIKeyCreated, accountID, map[string]string{"api_key_id": k.ID})
		return Records{Audits: []Audit{audit}}.write(ctx, tx, accountID)
	})
	switch {
	case err == nil:
		return k, nil
	case isForeignKeyViolation(err):
		return nil, errs.NotFound("account")
	case isUniqueViolation(err):
		return nil, errs.AlreadyExists("this API key exists already")
	case ent.IsValidationError(err):
		return nil, invalid(err)
	}
	return nil, fmt.Errorf("create API key: %w", err)
}

// ListAPIKeys returns a page of an account's keys, revoked ones included,
// newest first (see list).
func (s *Store) ListAPIKeys(ctx context.Context, accountID string, p Page) ([]*ent.APIKey, error) {
	var w where
	w.is(apikey.FieldAccountID, accountID)
	keys, err := list(ctx, migrate.APIKeysTable, w, Filter{}, p, APIKeyCursor,
		func(ctx context.Context, q keyset) ([]*ent.APIKey, error) {
			return s.Client.APIKey.Query().Where(predicate.APIKey(q.Where)).Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list API keys")
	}
	return keys, nil
}

// APIKeyCursor is a key's position in a list.
func APIKeyCursor(k *ent.APIKey) Cursor { return Cursor{k.CreatedAt, k.ID} }

// RevokeAPIKey revokes one of the account's keys and returns it. Another
// account's key is NotFound. Revoking again keeps the first revocation time,
// which is the one an audit needs.
func (s *Store) RevokeAPIKey(ctx context.Context, accountID, id string, now time.Time, audit Audit) (*ent.APIKey, error) {
	err := s.withTx(ctx, func(tx *ent.Tx) error {
		n, err := tx.APIKey.Update().
			Where(apikey.ID(id), apikey.AccountID(accountID), apikey.RevokedAtIsNil()).
			SetRevokedAt(utc(now)).
			Save(ctx)
		if err != nil || n == 0 {
			return err
		}
		audit = audit.Of(AuditAPIKeyRevoked, accountID, map[string]string{"api_key_id": id})
		return Records{Audits: []Audit{audit}}.write(ctx, tx, accountID)
	})
	if err != nil {
		return nil, fmt.Errorf("revoke API key: %w", err)
	}
	k, err := s.Client.APIKey.Query().
		Where(apikey.ID(id), apikey.AccountID(accountID)).
		Only(ctx)
	if err != nil {
		return nil, notFound(err, "API key")
	}
	return k, nil
}

// AccountByAPIKeyHash authenticates a request made with a secret API key.
// Unknown and revoked keys get the same answer, so the error tells an
// attacker nothing. last_used_at is refreshed at most once a minute per key,
// by a conditional update, so concurrent requests do not pile up writes.
func (s *Store) AccountByAPIKeyHash(ctx context.Context, keyHash string, now time.Time) (*ent.Account, *ent.APIKey, error) {
	now = utc(now)
	k, err := s.Client.APIKey.Query().
		Where(apikey.KeyHash(keyHash)).
		WithAccount().
		Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil, nil, errs.Unauthenticated(msgInvalidAPIKey)
	case err != nil:
		return nil, nil, fmt.Errorf("read API key: %w", err)
	case k.RevokedAt != nil:
		return nil, nil, errs.Unauthenticated(msgInvalidAPIKey)
	case k.Edges.Account.Status != account.StatusActive:
		return nil, nil, errs.Unauthenticated(msgAccountDisabled)
	}
	stale := now.Add(-lastUsedResolution)
	if k.LastUsedAt == nil || !k.LastUsedAt.After(stale) {
		n, err := s.Client.APIKey.Update().
			Where(
				apikey.ID(k.ID),
				apikey.Or(apikey.LastUsedAtIsNil(), apikey.LastUsedAtLTE(stale)),
			).
			SetLastUsedAt(now).
			Save(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("record API key use: %w", err)
		}
		if n > 0 {
			k.LastUsedAt = &now
		}
	}
	acc := k.Edges.Account
	return acc, k, nil
}
