package store

import (
	"context"
	"fmt"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/sandboxobject"
)

// The methods below keep the state of the built-in sandbox gateway (its
// payment intents, saved idempotent answers, test-token attempt counters):
// *Store is the sandbox's State (internal/gateway/sandbox). They store opaque
// documents with a version, and offer only what a compare-and-swap needs:
// read, create unless present, replace if the version is unchanged. So every
// process sharing the database sees one provider, and no transaction spans a
// call the sandbox makes.

// GetSandboxObject returns the data and version of the sandbox object id;
// found is false when there is none.
func (s *Store) GetSandboxObject(ctx context.Context, id string) (data string, version int64, found bool, err error) {
	o, err := s.Client.SandboxObject.Get(ctx, id)
	switch {
	case ent.IsNotFound(err):
		return "", 0, false, nil
	case err != nil:
		return "", 0, false, fmt.Errorf("read sandbox object: %w", err)
	}
	return o.Data, o.Version, true, nil
}

// CreateSandboxObject creates the sandbox object id at version 1 unless one
// exists, which it leaves as it is; created reports which happened. The
// primary key decides races: of concurrent calls exactly one creates. A
// value the schema refuses (a kind or payment id too long) is an
// invalid-argument error.
func (s *Store) CreateSandboxObject(ctx context.Context, id, kind, paymentID, data string, now time.Time) (created bool, err error) {
	return s.CreateSandboxObjects(ctx, []NewSandboxObject{{ID: id, Kind: kind, PaymentID: paymentID, Data: data}}, now)
}

// NewSandboxObject is one object for CreateSandboxObjects. It is an alias of
// an unnamed struct so that the sandbox's State interface can name the same
// type without importing the store.
type NewSandboxObject = struct{ ID, Kind, PaymentID, Data string }

// CreateSandboxObjects creates every one of objs at version 1 in one
// transaction, or none of them when any exists already: created reports
// which happened. It saves the sandbox a commit per object when it stores
// objects that belong together (an idempotency key's claim and the intent it
// creates). A value the schema refuses is an invalid-argument error.
func (s *Store) CreateSandboxObjects(ctx context.Context, objs []NewSandboxObject, now time.Time) (created bool, err error) {
	if len(objs) == 0 {
		return false, nil
	}
	now = utc(now)
	err = s.withTx(ctx, func(tx *ent.Tx) error {
		for _, o := range objs {
			if err := tx.SandboxObject.Create().
				SetID(o.ID).
				SetKind(o.Kind).
				SetPaymentID(o.PaymentID).
				SetData(o.Data).
				SetVersion(1).
				SetCreatedAt(now).
				SetUpdatedAt(now).
				Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
		return true, nil
	case ent.IsValidationError(err):
		return false, invalid(err)
	case isUniqueViolation(err):
		return false, nil
	}
	return false, fmt.Errorf("create sandbox objects: %w", err)
}

// UpdateSandboxObject replaces the data of the sandbox object id and bumps
// its version, if its version is still version: a compare-and-swap. ok is
// false, and nothing is written, when another writer changed the object
// since it was read (or it does not exist); the caller reads it again.
func (s *Store) UpdateSandboxObject(ctx context.Context, id string, version int64, data string, now time.Time) (ok bool, err error) {
	// The version always changes, so MySQL's affected-rows count (rows
	// changed, not rows matched) is 1 exactly when the row matched.
	n, err := s.Client.SandboxObject.Update().
		Where(sandboxobject.ID(id), sandboxobject.Version(version)).
		SetData(data).
		AddVersion(1).
		SetUpdatedAt(utc(now)).
		Save(ctx)
	if err != nil {
		return false, fmt.Errorf("update sandbox object: %w", err)
	}
	return n == 1, nil
}

// SandboxObjectIDs lists the ids of the sandbox objects of kind that concern
// paymentID, oldest first (ties in id order), using the (payment_id, kind)
// index. An empty paymentID lists nothing: objects without a payment are not
// searchable.
func (s *Store) SandboxObjectIDs(ctx context.Context, paymentID, kind string) ([]string, error) {
	if paymentID == "" {
		return nil, nil
	}
	ids, err := s.Client.SandboxObject.Query().
		Where(sandboxobject.PaymentID(paymentID), sandboxobject.Kind(kind)).
		Order(sandboxobject.ByCreatedAt(), sandboxobject.ByID()).
		IDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sandbox objects: %w", err)
	}
	return ids, nil
}
