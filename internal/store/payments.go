package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/gatewayevent"
	"github.com/payments-platform/payments/ent/migrate"
	"github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/ent/predicate"
	"github.com/payments-platform/payments/internal/errs"
)

// PaymentRecord is a payment's whole state as its workflow sees it.
type PaymentRecord struct {
	ID, MerchantID, CustomerID                                               string
	Amount, AmountCapturable, AmountReceived, AmountRefunded, AmountDisputed int64
	// Currency is an ISO 4217 code in any case; it is stored upper case.
	Currency                                             string
	Status                                               payment.Status
	CaptureMethod                                        payment.CaptureMethod
	PaymentMethod                                        string
	MethodType, MethodBrand, MethodLast4, MethodProvider string
	MethodExpMonth, MethodExpYear                        int32
	FailureCode, FailureMessage                          string
	NextActionType, NextActionURL                        string
	NextActionExpiresAt                                  *time.Time
	Description                                          string
	Metadata                                             map[string]string
	Gateway, GatewayReference, WorkflowID                string
	AuthorizationExpiresAt                               *time.Time
	// NeedsAttention is set, with AttentionReason, while money may be in an
	// unknown state or a step is stuck and retried on a timer.
	NeedsAttention  bool
	AttentionReason string
	// Version orders the workflow's saves; only a higher version replaces
	// the stored row.
	Version              int64
	CreatedAt, UpdatedAt time.Time
}

// SavePayment stores a payment's state and, when journal is not nil, posts
// the journal of the money it moved, in one transaction.
//
// The payment is inserted if absent, and otherwise replaced only when
// rec.Version is greater than the stored version: an equal or older version
// (a retried local activity, or a late attempt of one) changes nothing and
// returns the stored row. The journal is posted whatever the version, since
// PostJournal is idempotent: a journal posted before with identical lines is
// a no-op, with different lines an error that rolls back the payment too.
// The journal must concern this payment (its PaymentID is filled in when
// empty) and be in the payment's currency.
//
// The first statement locks the payment row (insert, or no-op upsert of the
// existing row), so concurrent saves of one payment run one after the other
// and the highest version wins; the replacement itself is the conditional
// UPDATE ... WHERE version < ?.
// MerchantID and Currency never change once stored: a record that disagrees
// with the stored row is refused. CreatedAt is kept from the first save.
func (s *Store) SavePayment(ctx context.Context, rec PaymentRecord, journal *Journal) (*ent.Payment, error) {
	rec = normalizePayment(rec)
	var j Journal
	if journal != nil {
		j = normalizeJournal(*journal)
		if j.PaymentID == "" {
			j.PaymentID = rec.ID
		}
		if j.PaymentID != rec.ID {
			return nil, errs.InvalidArgument("journal.payment_id",
				"journal %s concerns payment %s, not %s", j.ID, j.PaymentID, rec.ID)
		}
		if err := validateJournal(j); err != nil {
			return nil, err
		}
	}

	var saved *ent.Payment
	err := s.ledgerTx(ctx, func(tx *ent.Tx) error {
		var err error
		saved, err = savePayment(ctx, tx, rec)
		if err != nil {
			return err
		}
		var posted *Journal
		if journal != nil {
			if j.Currency != saved.Currency {
				return errs.InvalidArgument("journal.currency",
					"journal %s is in %s, payment %s in %s", j.ID, j.Currency, saved.ID, saved.Currency)
			}
			if err := postJournal(ctx, tx, j); err != nil {
				return err
			}
			posted = &j
		}
		return recordMovements(ctx, tx, saved.ID, posted,
			func(journalID string) movementRow { return paymentMovement(saved, journalID) }, nil)
	})
	if err != nil {
		return nil, wrap(paymentErr(err), "save payment "+rec.ID)
	}
	return saved, nil
}

// setMutable sets every field a payment's workflow may change, for the
// insert and the versioned update alike; on an update, unset optional times
// are cleared. The record's AmountRefunded and AmountDisputed are ignored.
func setMutable(m *ent.PaymentMutation, rec PaymentRecord, update bool) {
	m.SetCustomerID(rec.CustomerID)
	m.SetAmount(rec.Amount)
	m.SetAmountCapturable(rec.AmountCapturable)
	m.SetAmountReceived(rec.AmountReceived)
	// amount_refunded and amount_disputed are not the workflow's: the
	// balance operations (refunds.go) own them, and a save of the payment,
	// whose record knows nothing of refunds (or was read before the last
	// one), must neither set nor reset them. A new row starts at 0.
	m.SetStatus(rec.Status)
	m.SetCaptureMethod(rec.CaptureMethod)
	m.SetPaymentMethod(rec.PaymentMethod)
	m.SetMethodType(rec.MethodType)
	m.SetMethodBrand(rec.MethodBrand)
	m.SetMethodLast4(rec.MethodLast4)
	m.SetMethodExpMonth(rec.MethodExpMonth)
	m.SetMethodExpYear(rec.MethodExpYear)
	m.SetMethodProvider(rec.MethodProvider)
	m.SetFailureCode(rec.FailureCode)
	m.SetFailureMessage(rec.FailureMessage)
	m.SetNextActionType(rec.NextActionType)
	m.SetNextActionURL(rec.NextActionURL)
	m.SetDescription(rec.Description)
	m.SetMetadata(rec.Metadata)
	m.SetGateway(rec.Gateway)
	m.SetGatewayReference(rec.GatewayReference)
	m.SetWorkflowID(rec.WorkflowID)
	m.SetNeedsAttention(rec.NeedsAttention)
	m.SetAttentionReason(rec.AttentionReason)
	m.SetVersion(rec.Version)
	m.SetUpdatedAt(rec.UpdatedAt)
	switch {
	case rec.NextActionExpiresAt != nil:
		m.SetNextActionExpiresAt(*rec.NextActionExpiresAt)
	case update:
		m.ClearNextActionExpiresAt()
	}
	switch {
	case rec.AuthorizationExpiresAt != nil:
		m.SetAuthorizationExpiresAt(*rec.AuthorizationExpiresAt)
	case update:
		m.ClearAuthorizationExpiresAt()
	}
}

// savePayment is the payment half of SavePayment, in its transaction.
func savePayment(ctx context.Context, tx *ent.Tx, rec PaymentRecord) (*ent.Payment, error) {
	// Insert, or leave the existing row as it is; either way the row is now
	// ours until commit (an exclusive lock on MySQL; SQLite's transaction
	// holds the database's write lock from its start).
	create := tx.Payment.Create().
		SetID(rec.ID).
		SetMerchantID(rec.MerchantID).
		SetCurrency(rec.Currency).
		SetCreatedAt(rec.CreatedAt)
	setMutable(create.Mutation(), rec, false)
	create.SetTimeline(paymentSteps(nil, nil, rec))
	err := create.OnConflictColumns(payment.FieldID).Ignore().Exec(ctx)
	if err != nil {
		return nil, err
	}

	// Replace an older version (the row is ours, so the version read is the
	// one the update sees). Right after our own insert the versions are
	// equal and the row read is the one saved.
	p, err := tx.Payment.Get(ctx, rec.ID)
	if err != nil {
		return nil, fmt.Errorf("read payment: %w", err)
	}
	// The steps this save adds: after the old row's on an update; all of
	// them after our insert (or when a save is repeated, whose events are
	// there already); none when the save is stale.
	from := len(p.Timeline)
	switch {
	case p.Version < rec.Version:
		up := tx.Payment.UpdateOneID(rec.ID).Where(payment.VersionLT(rec.Version))
		setMutable(up.Mutation(), rec, true)
		up.SetTimeline(paymentSteps(p.Timeline, p, rec))
		if p, err = up.Save(ctx); err != nil {
			return nil, err
		}
	case p.Version == rec.Version:
		from = 0
	}
	switch {
	case p.MerchantID != rec.MerchantID:
		return nil, errs.InvalidArgument("merchant_id",
			"payment %s belongs to merchant %s, not %s", p.ID, p.MerchantID, rec.MerchantID)
	case p.Currency != rec.Currency:
		return nil, errs.InvalidArgument("currency",
			"payment %s is in %s, not %s", p.ID, p.Currency, rec.Currency)
	}
	if err := recordEvents(ctx, tx, paymentEvents(p, from)); err != nil {
		return nil, err
	}
	return p, nil
}

// normalizePayment brings a record into the form both databases store:
// upper-case currency, UTC times with microseconds, a non-nil metadata map
// (so a saved payment and a read one compare equal).
func normalizePayment(rec PaymentRecord) PaymentRecord {
	rec.Currency = strings.ToUpper(rec.Currency)
	rec.CreatedAt, rec.UpdatedAt = utc(rec.CreatedAt), utc(rec.UpdatedAt)
	rec.NextActionExpiresAt = utcPtr(rec.NextActionExpiresAt)
	rec.AuthorizationExpiresAt = utcPtr(rec.AuthorizationExpiresAt)
	if rec.Metadata == nil {
		rec.Metadata = map[string]string{}
	}
	if rec.CaptureMethod == "" {
		rec.CaptureMethod = payment.DefaultCaptureMethod
	}
	return rec
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := utc(*t)
	return &u
}

// paymentErr turns what the caller caused into domain errors: values the
// schema's validators refuse, and states that break one of the table's CHECK
// constraints (such as refunding more than was received).
func paymentErr(err error) error {
	switch {
	case err == nil:
		return nil
	case ent.IsValidationError(err):
		return invalid(err)
	case isCheckViolation(err):
		return &errs.Error{Kind: errs.KindInvalidArgument,
			Message: "the payment's amounts are inconsistent (" + checkName(err) + ")", Err: err}
	}
	return err
}

// MySQL and MariaDB error numbers of a failed CHECK constraint.
const (
	mysqlCheckViolated   = 3819 // MySQL 8
	mariadbCheckViolated = 4025
)

// isCheckViolation reports a row that a CHECK constraint refused.
func isCheckViolation(err error) bool {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == mysqlCheckViolated || me.Number == mariadbCheckViolated
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_CHECK
	}
	return false
}

// checkName finds the name of the violated constraint in the driver's
// message; all our constraint names end in "_check" and contain no values.
func checkName(err error) string {
	msg := err.Error()
	end := strings.Index(msg, "_check")
	if end < 0 {
		return "check constraint"
	}
	start := strings.LastIndexAny(msg[:end], " `:\"'") + 1
	return msg[start : end+len("_check")]
}

// PaymentByID returns a payment, or NotFound.
func (s *Store) PaymentByID(ctx context.Context, id string) (*ent.Payment, error) {
	p, err := s.Client.Payment.Get(ctx, id)
	if err != nil {
		return nil, notFound(err, "payment")
	}
	return p, nil
}

// PaymentByGatewayReference finds the payment a gateway knows by ref, for
// routing the gateway's webhooks; NotFound when there is none (or ref is
// empty, as it is for payments the gateway has not answered yet).
func (s *Store) PaymentByGatewayReference(ctx context.Context, ref string) (*ent.Payment, error) {
	if ref == "" {
		return nil, errs.NotFound("payment")
	}
	ps, err := s.Client.Payment.Query().
		Where(payment.GatewayReference(ref)).
		Order(ent.Desc(payment.FieldID)).
		Limit(2).
		All(ctx)
	switch {
	case err != nil:
		return nil, fmt.Errorf("read payment by gateway reference: %w", err)
	case len(ps) == 0:
		return nil, errs.NotFound("payment")
	case len(ps) > 1:
		// Gateway references are unique per gateway; two payments with one
		// reference is a bug we must not paper over by picking one.
		return nil, fmt.Errorf("gateway reference %q is shared by payments %s and %s", ref, ps[0].ID, ps[1].ID)
	}
	return ps[0], nil
}

// PaymentFilter narrows ListPayments; zero fields do not filter.
type PaymentFilter struct {
	// Party restricts to payments where this account is the merchant or the customer; "" = all (admins).
	Party                            string
	MerchantID, CustomerID, Currency string
	Status                           payment.Status // "" = any
	CreatedAfter, CreatedBefore      *time.Time     // [after, before)
}

// ListPayments returns a page of the payments that match f, newest first
// (see list).
func (s *Store) ListPayments(ctx context.Context, f PaymentFilter, p Page) ([]*ent.Payment, error) {
	var w where
	w.eq(payment.FieldMerchantID, f.MerchantID)
	w.eq(payment.FieldCustomerID, f.CustomerID)
	w.upper(payment.FieldCurrency, f.Currency)
	w.eq(payment.FieldStatus, string(f.Status))
	ps, err := list(ctx, migrate.PaymentsTable, w, Filter{f.Party, f.CreatedAfter, f.CreatedBefore}, p, PaymentCursor,
		func(ctx context.Context, q keyset) ([]*ent.Payment, error) {
			return s.Client.Payment.Query().Where(predicate.Payment(q.Where)).Order(newestFirst).Limit(q.Limit).Modify(q.Index).All(ctx)
		})
	if err != nil {
		return nil, wrap(err, "list payments")
	}
	return ps, nil
}

// PaymentCursor is a payment's position in a list.
func PaymentCursor(p *ent.Payment) Cursor { return Cursor{p.CreatedAt, p.ID} }

// RecordGatewayEvent remembers a gateway's webhook event by the provider's
// event id. fresh is false when the id was recorded before: the delivery is
// a duplicate and must not be acted upon again. The primary key decides, so
// of concurrent deliveries of one event exactly one is fresh.
//
// Once recorded, every later delivery is a duplicate, so record an event
// after handing it to its workflow (which tolerates duplicates): a crash in
// between then ends in a redelivery rather than a lost event.
func (s *Store) RecordGatewayEvent(ctx context.Context, id, typ, paymentID string, now time.Time) (fresh bool, err error) {
	err = s.Client.GatewayEvent.Create().
		SetID(id).
		SetType(typ).
		SetPaymentID(paymentID).
		SetReceivedAt(utc(now)).
		Exec(ctx)
	switch {
	case err == nil:
		return true, nil
	case isUniqueViolation(err):
		return false, nil
	case ent.IsValidationError(err):
		return false, invalid(err)
	}
	return false, fmt.Errorf("record gateway event: %w", err)
}

// GatewayEventSeen reports whether a provider event was recorded already, so
// that a redelivery is acknowledged without being acted on again.
func (s *Store) GatewayEventSeen(ctx context.Context, id string) (bool, error) {
	ok, err := s.Client.GatewayEvent.Query().Where(gatewayevent.ID(id)).Exist(ctx)
	if err != nil {
		return false, fmt.Errorf("look up gateway event: %w", err)
	}
	return ok, nil
}

// HasPaid reports whether the customer has ever paid the merchant, which
// makes them "one of its customers" for merchant-initiated charges.
func (s *Store) HasPaid(ctx context.Context, customerID, merchantID string) (bool, error) {
	ok, err := s.Client.Payment.Query().
		Where(payment.MerchantID(merchantID), payment.CustomerID(customerID)).
		Exist(ctx)
	if err != nil {
		return false, fmt.Errorf("look up payments between accounts: %w", err)
	}
	return ok, nil
}
