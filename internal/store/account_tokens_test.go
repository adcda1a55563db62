package store_test

// Tests of the mailed account tokens (account_tokens.go): issuing one
// supersedes the earlier ones of its purpose, and spending one (VerifyEmail,
// ResetPassword) works once, for its purpose only, on a live account.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/ent/refreshtoken"
	"github.com/payments-platform/payments/internal/errs"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
)

// The messages of a refused token (account_tokens.go).
const (
	tokMsgInvalid    = "this token is not valid"
	tokMsgUsed       = "this token was used already"
	tokMsgSuperseded = "a newer email was sent: use its token"
	tokMsgExpired    = "this token has expired: ask for a new one"
)

// tokTTL is how long the tokens these tests issue are valid.
const tokTTL = time.Hour

// issueToken stores the hash of token, of purpose, mailed to email at at
// and valid for tokTTL.
func issueToken(t *testing.T, s *store.Store, accountID string, purpose accounttoken.Purpose, email, token string, at time.Time) {
	t.Helper()
	err := s.IssueAccountToken(context.Background(), store.NewAccountToken{
		AccountID: accountID, Purpose: purpose, Email: email, Hash: hash(token),
		ExpiresAt: at.Add(tokTTL), At: at,
	}, store.Records{})
	if err != nil {
		t.Fatalf("IssueAccountToken(%s %s): %v", purpose, token, err)
	}
}

// tokenRow is the stored row of token.
func tokenRow(t *testing.T, s *store.Store, token string) *ent.AccountToken {
	t.Helper()
	row, err := s.Client.AccountToken.Query().Where(accounttoken.TokenHash(hash(token))).Only(context.Background())
	if err != nil {
		t.Fatalf("token %s: %v", token, err)
	}
	return row
}

// wantTokenRefused checks err is InvalidArgument on the token field with msg.
func wantTokenRefused(t *testing.T, err error, msg string) {
	t.Helper()
	wantErr(t, err, errs.ErrInvalidArgument, msg)
	var e *errs.Error
	if errors.As(err, &e); e.Field != "token" {
		t.Fatalf("error %v is about field %q, want token", err, e.Field)
	}
}

// wantTokenLive checks that token is neither used nor superseded.
func wantTokenLive(t *testing.T, s *store.Store, token string) {
	t.Helper()
	row := tokenRow(t, s, token)
	wantTime(t, token+" used_at", row.UsedAt, time.Time{})
	wantTime(t, token+" superseded_at", row.SupersededAt, time.Time{})
}

// auditTypesOf are the types of the audit rows about target, newest first.
func auditTypesOf(t *testing.T, s *store.Store, target string) []string {
	t.Helper()
	es, err := s.ListAuditEvents(context.Background(), store.AuditFilter{TargetID: target}, store.Page{Limit: 100})
	if err != nil {
		t.Fatalf("ListAuditEvents(target %s): %v", target, err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}

// passwordOf is the stored password hash of an account.
func passwordOf(t *testing.T, s *store.Store, id string) string {
	t.Helper()
	return s.Client.Account.GetX(context.Background(), id).PasswordHash
}

func TestIssueAccountTokenStoresTheHashAndSupersedesTheSamePurpose(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "issue@example.com")
		const v1, r1, v2 = "plain-verify-token-one", "plain-reset-token-one", "plain-verify-token-two"

		// The reset link is issued with its audit row, in one transaction.
		err := s.IssueAccountToken(ctx, store.NewAccountToken{
			AccountID: acc.ID, Purpose: accounttoken.PurposeResetPassword, Email: "Issue@Example.COM",
			Hash: hash(r1), ExpiresAt: t0.Add(tokTTL), At: t0,
		}, store.Records{Audits: []store.Audit{{Type: store.AuditPasswordResetAsked, RequestID: "req-issue", At: t0}}})
		if err != nil {
			t.Fatalf("IssueAccountToken(reset): %v", err)
		}
		issueToken(t, s, acc.ID, accounttoken.PurposeVerifyEmail, "Issue@Example.COM", v1, t0.Add(time.Second))

		row := tokenRow(t, s, v1)
		if !strings.HasPrefix(row.ID, "atk_") || row.AccountID != acc.ID || row.Purpose != accounttoken.PurposeVerifyEmail ||
			row.Email != "issue@example.com" || row.TokenHash != hash(v1) ||
			!row.CreatedAt.Equal(t0.Add(time.Second)) || !row.ExpiresAt.Equal(t0.Add(time.Second+tokTTL)) ||
			row.UsedAt != nil || row.SupersededAt != nil {
			t.Fatalf("stored token %v", row)
		}
		// Only hashes are stored, never a token itself.
		for _, r := range s.Client.AccountToken.Query().AllX(ctx) {
			if dump := fmt.Sprintf("%+v", *r); strings.Contains(dump, "plain-") {
				t.Fatalf("a token is stored in clear: %s", dump)
			}
		}
		if got := auditTypesOf(t, s, acc.ID); fmt.Sprint(got) != "["+store.AuditPasswordResetAsked+"]" {
			t.Fatalf("audit rows about the account %v, want the reset request's (its target filled in)", got)
		}

		// A second verification link supersedes the first, not the reset link.
		t2 := t0.Add(time.Minute)
		issueToken(t, s, acc.ID, accounttoken.PurposeVerifyEmail, acc.Email, v2, t2)
		wantTime(t, "first link superseded_at", tokenRow(t, s, v1).SupersededAt, t2)
		wantTime(t, "first link used_at", tokenRow(t, s, v1).UsedAt, time.Time{})
		wantTokenLive(t, s, v2)
		wantTokenLive(t, s, r1)

		_, err = s.VerifyEmail(ctx, hash(v1), t2.Add(time.Second), store.Audit{At: t2})
		wantTokenRefused(t, err, tokMsgSuperseded)
		if s.Client.Account.GetX(ctx, acc.ID).EmailVerified {
			t.Fatal("a superseded link verified the email")
		}

		// A failed issue (a hash taken, one that is not a hash) supersedes
		// nothing: it rolls back with the new row.
		for _, h := range []string{hash(r1), "NOT-A-SHA256"} {
			err := s.IssueAccountToken(ctx, store.NewAccountToken{
				AccountID: acc.ID, Purpose: accounttoken.PurposeVerifyEmail, Email: acc.Email,
				Hash: h, ExpiresAt: t2.Add(tokTTL), At: t2.Add(time.Second),
			}, store.Records{})
			if err == nil {
				t.Fatalf("IssueAccountToken with hash %q succeeded", h)
			}
			wantTokenLive(t, s, v2)
		}
		if n := s.Client.AccountToken.Query().CountX(ctx); n != 3 {
			t.Fatalf("%d tokens stored, want 3", n)
		}

		// The newest link of each purpose works.
		if _, err := s.ResetPassword(ctx, hash(r1), "$argon2id$reset", t2.Add(time.Second), store.Audit{At: t2}); err != nil {
			t.Fatalf("ResetPassword with the untouched reset link: %v", err)
		}
		if got, err := s.VerifyEmail(ctx, hash(v2), t2.Add(time.Second), store.Audit{At: t2}); err != nil || !got.EmailVerified {
			t.Fatalf("VerifyEmail with the newest link = %v, %v", got, err)
		}
	})
}

// A token asked for before the account's live one of the same purpose
// (its letter went out late) is not issued: the latest request's link
// stays the one that works.
func TestIssueAccountTokenOfAnEarlierRequestIsStale(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "stale@example.com")
		issue := func(purpose accounttoken.Purpose, token string, requested, at time.Time) error {
			return s.IssueAccountToken(ctx, store.NewAccountToken{
				AccountID: acc.ID, Purpose: purpose, Email: acc.Email, Hash: hash(token),
				ExpiresAt: at.Add(tokTTL), At: at, RequestedAt: requested,
			}, store.Records{Audits: []store.Audit{{Type: store.AuditPasswordResetAsked, At: at}}})
		}
		if err := issue(accounttoken.PurposeVerifyEmail, "later", t0.Add(time.Minute), t0.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if row := tokenRow(t, s, "later"); !row.RequestedAt.Equal(t0.Add(time.Minute)) || !row.CreatedAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("stored token %v", row)
		}

		err := issue(accounttoken.PurposeVerifyEmail, "earlier", t0, t0.Add(3*time.Minute))
		if !errors.Is(err, store.ErrStaleToken) {
			t.Fatalf("issuing a token of an earlier request: %v, want ErrStaleToken", err)
		}
		wantTokenLive(t, s, "later")
		if n := s.Client.AccountToken.Query().CountX(ctx); n != 1 {
			t.Fatalf("%d tokens stored, want only the later request's", n)
		}
		if got := auditTypesOf(t, s, acc.ID); len(got) != 1 {
			t.Fatalf("audit rows %v, want only the issued token's", got)
		}

		// The other purpose is another matter; without RequestedAt, the
		// issue's time is the request's.
		if err := issue(accounttoken.PurposeResetPassword, "reset", t0, t0.Add(3*time.Minute)); err != nil {
			t.Fatalf("issuing a reset token: %v", err)
		}
		if err := issue(accounttoken.PurposeVerifyEmail, "newest", time.Time{}, t0.Add(4*time.Minute)); err != nil {
			t.Fatalf("issuing a token without its request's time: %v", err)
		}
		if row := tokenRow(t, s, "newest"); !row.RequestedAt.Equal(t0.Add(4 * time.Minute)) {
			t.Fatalf("requested_at = %v, want the issue's time", row.RequestedAt)
		}
		wantTime(t, "later superseded_at", tokenRow(t, s, "later").SupersededAt, t0.Add(4*time.Minute))
		wantTokenLive(t, s, "reset")
	})
}

func TestVerifyEmail(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "verify@example.com")
		if acc.EmailVerified {
			t.Fatal("a new account's email is verified")
		}
		issueToken(t, s, acc.ID, accounttoken.PurposeVerifyEmail, acc.Email, "v", t0)

		at := t0.Add(time.Minute)
		audit := store.Audit{ClientIP: "203.0.113.7", RequestID: "req-verify", At: at}
		got, err := s.VerifyEmail(ctx, hash("v"), at, audit)
		if err != nil {
			t.Fatalf("VerifyEmail: %v", err)
		}
		if got.ID != acc.ID || !got.EmailVerified || got.Email != acc.Email || got.PendingEmail != "" || !got.UpdatedAt.Equal(at) {
			t.Fatalf("verified account %v", got)
		}
		if stored := s.Client.Account.GetX(ctx, acc.ID); !stored.EmailVerified || stored.Email != acc.Email {
			t.Fatalf("stored account %v", stored)
		}
		wantTime(t, "token used_at", tokenRow(t, s, "v").UsedAt, at)
		es, err := s.ListAuditEvents(ctx, store.AuditFilter{TargetID: acc.ID}, store.Page{Limit: 10})
		if err != nil || len(es) != 1 {
			t.Fatalf("audit rows %v, %v; want one", es, err)
		}
		// Whoever holds the mailed token acts as the account.
		if e := es[0]; e.Type != store.AuditEmailVerified || e.TargetID != acc.ID || e.ActorID != acc.ID ||
			e.ClientIP != "203.0.113.7" || e.RequestID != "req-verify" || !e.CreatedAt.Equal(at) {
			t.Fatalf("audit row %v", e)
		}

		// Spent once only.
		_, err = s.VerifyEmail(ctx, hash("v"), at.Add(time.Second), audit)
		wantTokenRefused(t, err, tokMsgUsed)
		wantTime(t, "token used_at after the second use", tokenRow(t, s, "v").UsedAt, at)
		if got := auditTypesOf(t, s, acc.ID); len(got) != 1 {
			t.Fatalf("audit rows after a refused use: %v", got)
		}

		_, err = s.VerifyEmail(ctx, hash("never issued"), at, audit)
		wantTokenRefused(t, err, tokMsgInvalid)

		// Expired at expires_at, not a microsecond before.
		other := mustAccount(t, s, "expiry@example.com")
		issueToken(t, s, other.ID, accounttoken.PurposeVerifyEmail, other.Email, "e", t0)
		expires := t0.Add(tokTTL)
		_, err = s.VerifyEmail(ctx, hash("e"), expires, audit)
		wantTokenRefused(t, err, tokMsgExpired)
		_, err = s.VerifyEmail(ctx, hash("e"), expires.Add(time.Hour), audit)
		wantTokenRefused(t, err, tokMsgExpired)
		wantTokenLive(t, s, "e")
		if s.Client.Account.GetX(ctx, other.ID).EmailVerified {
			t.Fatal("an expired token verified the email")
		}
		if got, err := s.VerifyEmail(ctx, hash("e"), expires.Add(-time.Microsecond), audit); err != nil || !got.EmailVerified {
			t.Fatalf("VerifyEmail a microsecond before expiry = %v, %v", got, err)
		}
	})
}

// A token works for its own purpose only, and a refusal does not spend it.
func TestAccountTokensOfTheOtherPurposeAreRefused(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "purpose@example.com")
		before := passwordOf(t, s, acc.ID)
		issueToken(t, s, acc.ID, accounttoken.PurposeResetPassword, acc.Email, "reset", t0)
		issueToken(t, s, acc.ID, accounttoken.PurposeVerifyEmail, acc.Email, "verify", t0)
		at := t0.Add(time.Minute)

		_, err := s.VerifyEmail(ctx, hash("reset"), at, store.Audit{At: at})
		wantTokenRefused(t, err, tokMsgInvalid)
		wantTokenLive(t, s, "reset")
		if s.Client.Account.GetX(ctx, acc.ID).EmailVerified {
			t.Fatal("a reset token verified the email")
		}

		_, err = s.ResetPassword(ctx, hash("verify"), "$argon2id$stolen", at, store.Audit{At: at})
		wantTokenRefused(t, err, tokMsgInvalid)
		wantTokenLive(t, s, "verify")
		if got := passwordOf(t, s, acc.ID); got != before {
			t.Fatalf("a verification token changed the password to %q", got)
		}
		if got := auditTypesOf(t, s, acc.ID); len(got) != 0 {
			t.Fatalf("refused tokens wrote audit rows %v", got)
		}

		if _, err := s.ResetPassword(ctx, hash("reset"), "$argon2id$mine", at, store.Audit{At: at}); err != nil {
			t.Fatalf("ResetPassword with the reset token: %v", err)
		}
		if got := passwordOf(t, s, acc.ID); got != "$argon2id$mine" {
			t.Fatalf("password hash %q after the reset", got)
		}
		if _, err := s.VerifyEmail(ctx, hash("verify"), at, store.Audit{At: at}); err != nil {
			t.Fatalf("VerifyEmail with the verification token: %v", err)
		}
	})
}

func TestVerifyEmailChangesTheEmail(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "old@example.com")
		taken := mustAccount(t, s, "taken@example.com")

		got, err := s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{PendingEmail: ptr("New@Example.com")}, t0)
		if err != nil || got.PendingEmail != "new@example.com" || got.Email != "old@example.com" {
			t.Fatalf("UpdateAccount(pending) = %v, %v", got, err)
		}
		// Another account's email cannot be asked for, in any case.
		for _, e := range []string{taken.Email, "TAKEN@example.com"} {
			_, err = s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{PendingEmail: ptr(e)}, t0.Add(time.Second))
			wantErr(t, err, errs.ErrAlreadyExists, "an account with this email already exists")
		}
		if stored := s.Client.Account.GetX(ctx, acc.ID); stored.PendingEmail != "new@example.com" || !stored.UpdatedAt.Equal(t0) {
			t.Fatalf("a refused change of the pending email changed the account: %v", stored)
		}

		issueToken(t, s, acc.ID, accounttoken.PurposeVerifyEmail, "new@example.com", "change", t0.Add(time.Minute))
		at := t0.Add(2 * time.Minute)
		got, err = s.VerifyEmail(ctx, hash("change"), at, store.Audit{ActorID: acc.ID, At: at})
		if err != nil {
			t.Fatalf("VerifyEmail(change): %v", err)
		}
		if got.Email != "new@example.com" || got.PendingEmail != "" || !got.EmailVerified {
			t.Fatalf("account after the change %v", got)
		}
		if byNew, err := s.AccountByEmail(ctx, "NEW@example.com"); err != nil || byNew.ID != acc.ID {
			t.Fatalf("AccountByEmail(new) = %v, %v", byNew, err)
		}
		_, err = s.AccountByEmail(ctx, "old@example.com")
		wantErr(t, err, errs.ErrNotFound, "account not found")
		if got := auditTypesOf(t, s, acc.ID); fmt.Sprint(got) != "["+store.AuditEmailChanged+"]" {
			t.Fatalf("audit rows %v, want one %s", got, store.AuditEmailChanged)
		}
		// The old address is free again.
		mustAccount(t, s, "old@example.com")
	})
}

// Another account registered the pending email before its link was used:
// the whole change rolls back, the token too.
func TestVerifyEmailChangeLostToARegistration(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "stays@example.com")
		if _, err := s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{PendingEmail: ptr("wanted@example.com")}, t0); err != nil {
			t.Fatal(err)
		}
		issueToken(t, s, acc.ID, accounttoken.PurposeVerifyEmail, "wanted@example.com", "late", t0)
		mustAccount(t, s, "Wanted@Example.com")

		at := t0.Add(time.Minute)
		_, err := s.VerifyEmail(ctx, hash("late"), at, store.Audit{At: at})
		wantErr(t, err, errs.ErrAlreadyExists, "another account uses this email now")
		stored := s.Client.Account.GetX(ctx, acc.ID)
		if stored.Email != "stays@example.com" || stored.PendingEmail != "wanted@example.com" || stored.EmailVerified ||
			!stored.UpdatedAt.Equal(t0) {
			t.Fatalf("account after the refused change %v", stored)
		}
		wantTokenLive(t, s, "late")
		if got := auditTypesOf(t, s, acc.ID); len(got) != 0 {
			t.Fatalf("audit rows after the refused change %v", got)
		}
	})
}

// A link mailed to a pending email that another change replaced since
// does not change the email to it.
func TestVerifyEmailOfAReplacedPendingEmail(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "owner@example.com")
		if _, err := s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{PendingEmail: ptr("first@example.com")}, t0); err != nil {
			t.Fatal(err)
		}
		issueToken(t, s, acc.ID, accounttoken.PurposeVerifyEmail, "first@example.com", "first", t0)
		if _, err := s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{PendingEmail: ptr("second@example.com")}, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}

		at := t0.Add(time.Minute)
		_, err := s.VerifyEmail(ctx, hash("first"), at, store.Audit{At: at})
		wantTokenRefused(t, err, tokMsgSuperseded)
		stored := s.Client.Account.GetX(ctx, acc.ID)
		if stored.Email != "owner@example.com" || stored.PendingEmail != "second@example.com" || stored.EmailVerified {
			t.Fatalf("account after the stale link %v", stored)
		}

		// Nor once the change is cancelled.
		if _, err := s.UpdateAccount(ctx, acc.ID, store.AccountUpdate{PendingEmail: ptr("")}, t0.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		_, err = s.VerifyEmail(ctx, hash("first"), at, store.Audit{At: at})
		wantTokenRefused(t, err, tokMsgSuperseded)
		if stored := s.Client.Account.GetX(ctx, acc.ID); stored.Email != "owner@example.com" || stored.PendingEmail != "" {
			t.Fatalf("account after the stale link %v", stored)
		}
	})
}

func TestResetPassword(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "reset@example.com")
		bystander := mustAccount(t, s, "bystander@example.com")
		for i, owner := range []string{acc.ID, acc.ID, acc.ID, bystander.ID} {
			if _, err := s.CreateRefreshToken(ctx, owner, ids.New(ids.Family), hash(fmt.Sprint("session-", i)),
				t0.Add(refreshTTL), t0, store.SessionClient{}); err != nil {
				t.Fatal(err)
			}
		}
		// One of the account's sessions was revoked before: it keeps its time.
		if err := s.RevokeRefreshFamily(ctx, acc.ID, hash("session-2"), t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		issueToken(t, s, acc.ID, accounttoken.PurposeResetPassword, acc.Email, "reset", t0)

		at := t0.Add(5 * time.Minute)
		got, err := s.ResetPassword(ctx, hash("reset"), "$argon2id$new", at, store.Audit{RequestID: "req-reset", At: at})
		if err != nil {
			t.Fatalf("ResetPassword: %v", err)
		}
		if got.ID != acc.ID || got.PasswordHash != "$argon2id$new" || !got.UpdatedAt.Equal(at) {
			t.Fatalf("account after the reset %v", got)
		}
		if pw := passwordOf(t, s, acc.ID); pw != "$argon2id$new" {
			t.Fatalf("stored password hash %q", pw)
		}
		wantTime(t, "token used_at", tokenRow(t, s, "reset").UsedAt, at)

		for i, want := range []time.Time{at, at, t0.Add(time.Second), {}} {
			rt := s.Client.RefreshToken.Query().Where(refreshtoken.TokenHash(hash(fmt.Sprint("session-", i)))).OnlyX(ctx)
			wantTime(t, fmt.Sprintf("session %d revoked_at", i), rt.RevokedAt, want)
		}

		es, err := s.ListAuditEvents(ctx, store.AuditFilter{TargetID: acc.ID}, store.Page{Limit: 10})
		if err != nil || len(es) != 1 || es[0].Type != store.AuditPasswordReset || es[0].RequestID != "req-reset" ||
			es[0].ActorID != acc.ID || !es[0].CreatedAt.Equal(at) {
			t.Fatalf("audit rows %v, %v; want one %s", es, err, store.AuditPasswordReset)
		}
		ns := s.Client.AccountNotice.Query().Where(accountnotice.AccountID(acc.ID)).AllX(ctx)
		if len(ns) != 1 {
			t.Fatalf("notices %v, want one", ns)
		}
		if n := ns[0]; n.Kind != accountnotice.KindPasswordChanged || n.Recipient != acc.Email ||
			!n.CreatedAt.Equal(at) || n.DispatchedAt != nil {
			t.Fatalf("notice %v", n)
		}

		_, err = s.ResetPassword(ctx, hash("reset"), "$argon2id$again", at.Add(time.Second), store.Audit{At: at})
		wantTokenRefused(t, err, tokMsgUsed)
		if pw := passwordOf(t, s, acc.ID); pw != "$argon2id$new" {
			t.Fatalf("a used token changed the password to %q", pw)
		}
	})
}

func TestAccountTokensOfClosedAndSuspendedAccounts(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()

		// A closed account's tokens: those mailed before are superseded by
		// the closure, any other is not valid.
		closed := mustAccount(t, s, "closed@example.com")
		pw := passwordOf(t, s, closed.ID)
		issueToken(t, s, closed.ID, accounttoken.PurposeResetPassword, closed.Email, "before-close", t0)
		if _, err := s.CloseAccount(ctx, closed.ID, t0.Add(time.Minute), store.Audit{At: t0}); err != nil {
			t.Fatalf("CloseAccount: %v", err)
		}
		_, err := s.ResetPassword(ctx, hash("before-close"), "$argon2id$x", t0.Add(2*time.Minute), store.Audit{At: t0})
		wantTokenRefused(t, err, tokMsgSuperseded)
		issueToken(t, s, closed.ID, accounttoken.PurposeResetPassword, "closed@example.com", "after-close", t0.Add(2*time.Minute))
		issueToken(t, s, closed.ID, accounttoken.PurposeVerifyEmail, "closed@example.com", "verify-closed", t0.Add(2*time.Minute))
		_, err = s.ResetPassword(ctx, hash("after-close"), "$argon2id$x", t0.Add(3*time.Minute), store.Audit{At: t0})
		wantTokenRefused(t, err, tokMsgInvalid)
		_, err = s.VerifyEmail(ctx, hash("verify-closed"), t0.Add(3*time.Minute), store.Audit{At: t0})
		wantTokenRefused(t, err, tokMsgInvalid)
		wantTokenLive(t, s, "after-close")
		if got := passwordOf(t, s, closed.ID); got != pw {
			t.Fatalf("a closed account's password changed to %q", got)
		}

		// A suspended account's: refused, and not spent, so the link works
		// once the suspension is lifted.
		sus := mustAccount(t, s, "suspended@example.com")
		pw = passwordOf(t, s, sus.ID)
		issueToken(t, s, sus.ID, accounttoken.PurposeResetPassword, sus.Email, "sus-reset", t0)
		issueToken(t, s, sus.ID, accounttoken.PurposeVerifyEmail, sus.Email, "sus-verify", t0)
		if _, err := s.SuspendAccount(ctx, sus.ID, store.Suspension{Reason: "fraud", Audit: store.Audit{At: t0.Add(time.Second)}}); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Minute)
		_, err = s.ResetPassword(ctx, hash("sus-reset"), "$argon2id$x", at, store.Audit{At: at})
		wantErr(t, err, errs.ErrFailedPrecondition, "this account is suspended")
		_, err = s.VerifyEmail(ctx, hash("sus-verify"), at, store.Audit{At: at})
		wantErr(t, err, errs.ErrFailedPrecondition, "this account is suspended")
		wantTokenLive(t, s, "sus-reset")
		wantTokenLive(t, s, "sus-verify")
		stored := s.Client.Account.GetX(ctx, sus.ID)
		if stored.PasswordHash != pw || stored.EmailVerified {
			t.Fatalf("a suspended account changed: %v", stored)
		}
		if _, err := s.ReactivateAccount(ctx, sus.ID, at, store.Audit{At: at}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResetPassword(ctx, hash("sus-reset"), "$argon2id$back", at, store.Audit{At: at}); err != nil {
			t.Fatalf("ResetPassword after the reactivation: %v", err)
		}
	})
}

// racerAt is when racer i uses a token: each its own time, so that no
// racer's update of the token is a no-op on MySQL (which counts only the
// rows an UPDATE changes) and the update's conditions alone decide.
func racerAt(at time.Time, i int) time.Time { return at.Add(time.Duration(i) * time.Microsecond) }

// Of concurrent uses of one reset token exactly one succeeds.
func TestResetPasswordTokenIsSpentOnceConcurrently(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		acc := mustAccount(t, s, "race@example.com")
		issueToken(t, s, acc.ID, accounttoken.PurposeResetPassword, acc.Email, "race", t0)
		at := t0.Add(time.Minute)
		const n = 8
		results := concurrently(n, func(i int) error {
			_, err := s.ResetPassword(ctx, hash("race"), fmt.Sprintf("$argon2id$racer-%d", i), racerAt(at, i), store.Audit{At: at})
			return err
		})
		winner := -1
		for i, err := range results {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("racers %d and %d both reset the password", winner, i)
				}
				winner = i
				continue
			}
			wantTokenRefused(t, err, tokMsgUsed)
		}
		if winner < 0 {
			t.Fatal("no racer reset the password")
		}
		if got, want := passwordOf(t, s, acc.ID), fmt.Sprintf("$argon2id$racer-%d", winner); got != want {
			t.Fatalf("password hash %q, want the winner's %q", got, want)
		}
		if got := auditTypesOf(t, s, acc.ID); fmt.Sprint(got) != "["+store.AuditPasswordReset+"]" {
			t.Fatalf("audit rows %v, want one reset", got)
		}
		if k := s.Client.AccountNotice.Query().Where(accountnotice.AccountID(acc.ID)).CountX(ctx); k != 1 {
			t.Fatalf("%d notices, want 1", k)
		}
	})
}

// tokenUpdates counts the connections to s's MySQL database running the
// update that marks a token used. (The process list is live, where
// information_schema.innodb_trx is a cache that polling keeps stale.)
func tokenUpdates(t *testing.T, s *store.Store) int {
	t.Helper()
	rows, err := s.Client.QueryContext(context.Background(),
		"SELECT COUNT(*) FROM information_schema.processlist "+
			"WHERE db = DATABASE() AND info LIKE 'UPDATE `account_tokens` SET `used_at`%'")
	if err != nil {
		t.Fatalf("count token updates: %v", err)
	}
	defer rows.Close()
	n := 0
	if !rows.Next() || rows.Scan(&n) != nil {
		t.Fatalf("count token updates: no count (%v)", rows.Err())
	}
	return n
}

// On MySQL, every racer gets past the token's checks (a plain read sees it
// unused) before any of them marks it used: the conditional update alone
// must let only one through. A transaction of the test holds the token's
// row until all racers are in that update, waiting for it.
func TestResetPasswordRacersPastTheChecksSpendTheTokenOnce(t *testing.T) {
	s := storetest.NewMySQL(t)
	ctx := context.Background()
	acc := mustAccount(t, s, "held@example.com")
	issueToken(t, s, acc.ID, accounttoken.PurposeResetPassword, acc.Email, "held", t0)
	hold, err := s.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback() }()
	if _, err := hold.AccountToken.Query().Where(accounttoken.TokenHash(hash("held"))).ForUpdate().Only(ctx); err != nil {
		t.Fatalf("lock the token: %v", err)
	}

	const n = 8
	at := t0.Add(time.Minute)
	results := make([]error, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		copy(results, concurrently(n, func(i int) error {
			_, err := s.ResetPassword(ctx, hash("held"), fmt.Sprintf("$argon2id$held-%d", i), racerAt(at, i), store.Audit{At: at})
			return err
		}))
	}()
	// A racer running the update has read the token as unused already.
	deadline := time.Now().Add(30 * time.Second)
	for tokenUpdates(t, s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the racers did not all wait for the token's row (%d of %d)", tokenUpdates(t, s), n)
		}
	}
	if err := hold.Rollback(); err != nil {
		t.Fatal(err)
	}
	<-done

	winner := -1
	for i, err := range results {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("racers %d and %d both reset the password", winner, i)
			}
			winner = i
			continue
		}
		wantTokenRefused(t, err, tokMsgUsed)
	}
	if winner < 0 {
		t.Fatal("no racer reset the password")
	}
	if got, want := passwordOf(t, s, acc.ID), fmt.Sprintf("$argon2id$held-%d", winner); got != want {
		t.Fatalf("password hash %q, want the winner's %q", got, want)
	}
	if k := s.Client.AccountNotice.Query().Where(accountnotice.AccountID(acc.ID)).CountX(ctx); k != 1 {
		t.Fatalf("%d notices, want 1", k)
	}
}
