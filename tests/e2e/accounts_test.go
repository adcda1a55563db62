package e2e

// The life of an account, over HTTP with JSON on the whole platform, each
// story on SQLite and on MySQL/MariaDB: verifying the email, resetting a
// forgotten password, changing the login email, closing the account (and
// its anonymization by the maintenance workflow), and an admin's
// suspension. The letters travel through a real SMTP conversation to an
// in-process inbox, which is where the tests read the mailed tokens.

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/emailmessage"
	smtpmail "github.com/payments-platform/payments/internal/mail"
	"github.com/payments-platform/payments/internal/store"
	pb "github.com/payments-platform/payments/proto/payments/v1"
	"github.com/payments-platform/payments/workflows/maintenance"
	"github.com/payments-platform/payments/workflows/notify"
)

// The account procedures, as integrators POST them.
const (
	rpcVerifyEmail          = "/payments.v1.AuthService/VerifyEmail"
	rpcRequestPasswordReset = "/payments.v1.AuthService/RequestPasswordReset"
	rpcResetPassword        = "/payments.v1.AuthService/ResetPassword"
	rpcRefreshToken         = "/payments.v1.AuthService/RefreshToken"
	rpcGetMe                = "/payments.v1.AccountService/GetMe"
	rpcUpdateMe             = "/payments.v1.AccountService/UpdateMe"
	rpcCloseAccount         = "/payments.v1.AccountService/CloseAccount"
	rpcCreateAPIKey         = "/payments.v1.AccountService/CreateApiKey"
	rpcGetAccount           = "/payments.v1.AdminService/GetAccount"
	rpcSuspendAccount       = "/payments.v1.AdminService/SuspendAccount"
	rpcListAuditEvents      = "/payments.v1.AdminService/ListAuditEvents"
)

// The subjects of the account letters (internal/mail/account.go).
const (
	subjVerify        = "Verify your email address"
	subjReset         = "Reset your password"
	subjPasswordChgd  = "Your password was changed"
	subjEmailChanging = "Your login email is being changed"
	subjSuspended     = "Your account is suspended"
	subjClosed        = "Your account is closed"
)

// requireVerifiedMerchants refuses payments to unverified merchants.
func requireVerifiedMerchants() envOption {
	return func(c *envConfig) { c.opts.RequireVerifiedMerchants = true }
}

// closedAccountRetention sets how long closed accounts keep their name and
// email before the maintenance workflow erases them.
func closedAccountRetention(d time.Duration) envOption {
	return func(c *envConfig) { c.opts.ClosedAccountRetention = d }
}

// accountStory runs fn on a platform that mails through SMTP to an inbox,
// on SQLite and, as the subtest mysql, on MySQL/MariaDB (skipped, saying
// so, without PAYMENTS_TEST_MYSQL_DSN).
func accountStory(t *testing.T, fn func(t *testing.T, e *E, box *inbox), options ...envOption) {
	for _, db := range []string{"sqlite", "mysql"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			box, addr := startInbox(t)
			opts := append([]envOption{withMailer(&smtpmail.SMTP{Addr: addr})}, options...)
			if db == "mysql" {
				opts = append(opts, withStore(newMySQLStore(t)))
			}
			fn(t, newEnv(t, opts...), box)
		})
	}
}

// ---- the inbox and the mailed tokens ----

// lettersTo returns the messages to one address with one subject.
func (b *inbox) lettersTo(to, subject string) []inboxMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []inboxMessage
	for _, m := range b.messages {
		if m.to == to && m.subject == subject {
			out = append(out, m)
		}
	}
	return out
}

// waitLetters polls the inbox until n messages with subject have reached
// to, and fails at once if more than n have.
func (b *inbox) waitLetters(t *testing.T, to, subject string, n int) []inboxMessage {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := b.lettersTo(to, subject)
		switch {
		case len(got) > n:
			t.Fatalf("%d letters %q to %s, want %d", len(got), subject, to, n)
		case len(got) == n:
			return got
		case time.Now().After(deadline):
			t.Fatalf("%d letters %q to %s after %v, want %d; the inbox holds %q", len(got), subject, to, waitFor, n, b.subjects(to))
		}
		time.Sleep(pollEvery) // polling with a deadline
	}
}

// mailedToken is the token a letter carries after "<label>: ", checked to
// have prefix and to be in the HTML part too.
func mailedToken(t *testing.T, m inboxMessage, label, prefix string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `: (\S+)\s*$`)
	match := re.FindStringSubmatch(m.text)
	if match == nil {
		t.Fatalf("letter %q to %s has no %q line:\n%s", m.subject, m.to, label, m.text)
	}
	tok := match[1]
	if !strings.HasPrefix(tok, prefix) || len(tok) < len(prefix)+32 {
		t.Fatalf("letter %q to %s: %s %q is not a %s... secret", m.subject, m.to, label, tok, prefix)
	}
	if !strings.Contains(m.html, tok) {
		t.Fatalf("letter %q to %s: the HTML part lacks the token %s", m.subject, m.to, tok)
	}
	return tok
}

// settleNotices waits until every account notice to recipient is
// dispatched and its email workflow has finished, so the inbox holds all
// the letters they will ever send; it returns the notices.
func (e *E) settleNotices(t *testing.T, recipient string) []*ent.AccountNotice {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		ns, err := e.Store.Client.AccountNotice.Query().
			Where(accountnotice.Recipient(strings.ToLower(recipient))).All(ctxT(t))
		if err != nil {
			t.Fatalf("read the notices to %s: %v", recipient, err)
		}
		pending := 0
		for _, n := range ns {
			if n.DispatchedAt == nil {
				pending++
			}
		}
		if pending == 0 {
			for _, n := range ns {
				id := notify.AccountEmailWorkflowID(n.ID)
				if err := e.Temporal.GetWorkflow(ctxT(t), id, "").Get(ctxT(t), nil); err != nil {
					t.Fatalf("email workflow %s (%s to %s): %v\n%s", id, n.Kind, recipient, err, e.explain(id))
				}
			}
			return ns
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notices to %s not dispatched after %v", pending, len(ns), recipient, waitFor)
		}
		time.Sleep(pollEvery)
	}
}

// ---- answers ----

// decodeOK fails t unless r is 200 and decodes it into m.
func decodeOK[M proto.Message](t *testing.T, r reply, m M) M {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200, got %s", r)
	}
	if err := protojson.Unmarshal(r.body, m); err != nil {
		t.Fatalf("answer is not a %T: %v: %s", m, err, r.body)
	}
	return m
}

// wantRefused fails t unless r is the Connect error code with a message
// containing each of words.
func wantRefused(t *testing.T, r reply, code string, words ...string) {
	t.Helper()
	wantCode(t, r, code)
	for _, w := range words {
		if !strings.Contains(r.msg, w) {
			t.Fatalf("%s: the message does not say %q", r, w)
		}
	}
}

// loginAs logs in with email and pw and returns the answer.
func (e *E) loginAs(t *testing.T, email, pw string) *pb.LoginResponse {
	t.Helper()
	lg := decodeOK(t, e.post(t, "", procLogin, map[string]any{"email": email, "password": pw}), &pb.LoginResponse{})
	if lg.GetAccessToken() == "" || lg.GetRefreshToken() == "" {
		t.Fatalf("Login of %s answered no tokens: %v", email, lg)
	}
	return lg
}

// rotateRefresh rotates a refresh token and returns the new pair.
func (e *E) rotateRefresh(t *testing.T, refreshToken string) *pb.RefreshTokenResponse {
	t.Helper()
	rt := decodeOK(t, e.post(t, "", rpcRefreshToken, map[string]any{"refresh_token": refreshToken}), &pb.RefreshTokenResponse{})
	if rt.GetRefreshToken() == "" || rt.GetRefreshToken() == refreshToken {
		t.Fatalf("RefreshToken answered %v", rt)
	}
	return rt
}

// getMe is the caller's account (GetMe).
func (e *E) getMe(t *testing.T, token string) *pb.Account {
	t.Helper()
	return decodeOK(t, e.post(t, token, rpcGetMe, map[string]any{}), &pb.GetMeResponse{}).GetAccount()
}

// ---- 1. verification ----

// TestAccountEmailVerification: registering mails a verification token to
// the new address; using it verifies the email, once. With verified
// merchants required, a merchant cannot be paid until it has verified.
func TestAccountEmailVerification(t *testing.T) {
	t.Parallel()
	accountStory(t, func(t *testing.T, e *E, box *inbox) {
		m, c := e.merchant(t), e.customer(t)
		letter := box.waitLetters(t, m.Email, subjVerify, 1)[0]
		tok := mailedToken(t, letter, "Verification token", activities.VerifyTokenPrefix)
		if got := e.getMe(t, m.Token); got.GetEmailVerified() {
			t.Fatalf("GetMe before verifying: email_verified is already true: %v", got)
		}

		// Unverified: the customer cannot pay the merchant.
		r := e.post(t, c.Token, procCreatePayment, pay(m, 1500, "USD", "pm_card_visa"))
		wantRefused(t, r, "failed_precondition", "merchant_unverified", m.ID)
		if n := e.paymentRows(t); n != 0 {
			t.Fatalf("a refused payment left %d payment rows", n)
		}

		v := decodeOK(t, e.post(t, "", rpcVerifyEmail, map[string]any{"token": tok}), &pb.VerifyEmailResponse{})
		if a := v.GetAccount(); a.GetId() != m.ID || !a.GetEmailVerified() || a.GetEmail() != m.Email {
			t.Fatalf("VerifyEmail answered %v, want %s verified with email %s", a, m.ID, m.Email)
		}
		if !e.getMe(t, m.Token).GetEmailVerified() {
			t.Fatal("GetMe after VerifyEmail: email_verified is false")
		}
		// Once only.
		wantRefused(t, e.post(t, "", rpcVerifyEmail, map[string]any{"token": tok}), "invalid_argument", "used")

		// Verified: the same payment goes through.
		p := e.create(t, c, pay(m, 1500, "USD", "pm_card_visa"))
		wantStatus(t, p, stSucceeded)
		if p.GetMerchantId() != m.ID || p.GetCustomerId() != c.ID {
			t.Fatalf("payment parties %s/%s, want %s/%s", p.GetMerchantId(), p.GetCustomerId(), m.ID, c.ID)
		}
		e.settleNotices(t, m.Email)
		if got := box.lettersTo(m.Email, subjVerify); len(got) != 1 {
			t.Fatalf("the merchant got %d verification letters, want 1", len(got))
		}
	}, requireVerifiedMerchants())
}

// ---- 2. password reset ----

// TestAccountPasswordReset: a reset request mails a token to an account's
// email and answers the same for an email without an account, which gets
// no letter. Only the newest token works, once; it sets the password,
// signs every session out and the owner is told.
func TestAccountPasswordReset(t *testing.T) {
	t.Parallel()
	accountStory(t, func(t *testing.T, e *E, box *inbox) {
		u := e.customer(t)
		session := e.rotateRefresh(t, e.loginAs(t, u.Email, password).GetRefreshToken())
		unknown := fmt.Sprintf("nobody-%d@example.test", time.Now().UnixNano())

		known := e.post(t, "", rpcRequestPasswordReset, map[string]any{"email": u.Email})
		stranger := e.post(t, "", rpcRequestPasswordReset, map[string]any{"email": unknown})
		if known.status != http.StatusOK || stranger.status != known.status || !bytes.Equal(stranger.body, known.body) {
			t.Fatalf("RequestPasswordReset answers differ:\nknown email:   %s\nunknown email: %s", known, stranger)
		}
		first := box.waitLetters(t, u.Email, subjReset, 1)[0]
		tok1 := mailedToken(t, first, "Reset token", activities.ResetTokenPrefix)
		if ns := e.settleNotices(t, unknown); len(ns) != 1 || ns[0].Kind != accountnotice.KindPasswordReset {
			t.Fatalf("notices to the unknown email: %v, want one password reset", ns)
		}
		if got := box.subjects(unknown); len(got) != 0 {
			t.Fatalf("the email without an account got letters: %q", got)
		}
		e.settleNotices(t, u.Email)
		if got := box.lettersTo(u.Email, subjReset); len(got) != 1 {
			t.Fatalf("%d reset letters after one request, want 1", len(got))
		}

		// A second request: a second letter, and only its token works.
		if r := e.post(t, "", rpcRequestPasswordReset, map[string]any{"email": u.Email}); r.status != http.StatusOK {
			t.Fatalf("second RequestPasswordReset: %s", r)
		}
		second := box.waitLetters(t, u.Email, subjReset, 2)[1]
		tok2 := mailedToken(t, second, "Reset token", activities.ResetTokenPrefix)
		if tok2 == tok1 {
			t.Fatal("both reset letters carry the same token")
		}
		const newPassword = "a brand new passphrase for the account"
		wantRefused(t, e.post(t, "", rpcResetPassword, map[string]any{"token": tok1, "new_password": newPassword}),
			"invalid_argument", "newer")
		// A reset token does not verify an email.
		wantCode(t, e.post(t, "", rpcVerifyEmail, map[string]any{"token": tok2}), "invalid_argument")
		r := e.post(t, "", rpcResetPassword, map[string]any{"token": tok2, "new_password": newPassword})
		if r.status != http.StatusOK {
			t.Fatalf("ResetPassword with the newest token: %s", r)
		}

		// Every session is signed out; the new password signs in.
		wantCode(t, e.post(t, "", rpcRefreshToken, map[string]any{"refresh_token": session.GetRefreshToken()}), "unauthenticated")
		wantCode(t, e.post(t, "", procLogin, map[string]any{"email": u.Email, "password": password}), "unauthenticated")
		lg := e.loginAs(t, u.Email, newPassword)
		if lg.GetAccount().GetId() != u.ID {
			t.Fatalf("Login with the new password is account %s, want %s", lg.GetAccount().GetId(), u.ID)
		}
		changed := box.waitLetters(t, u.Email, subjPasswordChgd, 1)[0]
		if strings.Contains(changed.text, "rst_") || strings.Contains(changed.text, newPassword) {
			t.Fatalf("the password-changed letter carries a secret:\n%s", changed.text)
		}
		wantRefused(t, e.post(t, "", rpcResetPassword, map[string]any{"token": tok2, "new_password": "yet another passphrase here"}),
			"invalid_argument", "used")
		e.loginAs(t, u.Email, newPassword) // the refused token changed nothing
		e.settleNotices(t, u.Email)
		if n := len(box.lettersTo(u.Email, subjReset)); n != 2 {
			t.Fatalf("%d reset letters after two requests, want 2", n)
		}
		if got := box.subjects(unknown); len(got) != 0 {
			t.Fatalf("the email without an account got letters: %q", got)
		}
	})
}

// ---- 3. email change ----

// TestAccountEmailChange: a new login email waits, pending, for its
// verification; the old address is told; the verified new address is the
// login email from then on.
func TestAccountEmailChange(t *testing.T) {
	t.Parallel()
	accountStory(t, func(t *testing.T, e *E, box *inbox) {
		u := e.merchant(t)
		newEmail := fmt.Sprintf("moved-%d@example.test", time.Now().UnixNano())
		// The registration's own verification letter goes out first. (Were
		// it still on its way, its token could be issued after the new
		// address's and supersede it: SendAccountEmail supersedes in the
		// order tokens are issued, not in the order they were asked for.)
		box.waitLetters(t, u.Email, subjVerify, 1)
		e.settleNotices(t, u.Email)

		// The current password is required.
		wantRefused(t, e.post(t, u.Token, rpcUpdateMe, map[string]any{"email": newEmail}), "invalid_argument", "current_password")
		wantRefused(t, e.post(t, u.Token, rpcUpdateMe, map[string]any{"email": newEmail, "current_password": "not the password at all"}),
			"invalid_argument", "current_password is incorrect")
		if me := e.getMe(t, u.Token); me.GetPendingEmail() != "" {
			t.Fatalf("a refused change left pending_email %q", me.GetPendingEmail())
		}
		up := decodeOK(t, e.post(t, u.Token, rpcUpdateMe, map[string]any{"email": newEmail, "current_password": password}),
			&pb.UpdateMeResponse{}).GetAccount()
		if up.GetEmail() != u.Email || up.GetPendingEmail() != newEmail {
			t.Fatalf("UpdateMe answered email %q pending %q, want %q pending %q", up.GetEmail(), up.GetPendingEmail(), u.Email, newEmail)
		}
		verify := box.waitLetters(t, newEmail, subjVerify, 1)[0]
		tok := mailedToken(t, verify, "Verification token", activities.VerifyTokenPrefix)
		told := box.waitLetters(t, u.Email, subjEmailChanging, 1)[0]
		if !strings.Contains(told.text, newEmail) || strings.Contains(told.text, "vfy_") {
			t.Fatalf("the letter to the old address should name %s and carry no token:\n%s", newEmail, told.text)
		}
		if me := e.getMe(t, u.Token); me.GetEmail() != u.Email || me.GetPendingEmail() != newEmail {
			t.Fatalf("GetMe: email %q pending %q, want %q pending %q", me.GetEmail(), me.GetPendingEmail(), u.Email, newEmail)
		}
		// Until verified, the old email is the login.
		wantCode(t, e.post(t, "", procLogin, map[string]any{"email": newEmail, "password": password}), "unauthenticated")

		v := decodeOK(t, e.post(t, "", rpcVerifyEmail, map[string]any{"token": tok}), &pb.VerifyEmailResponse{}).GetAccount()
		if v.GetId() != u.ID || v.GetEmail() != newEmail || v.GetPendingEmail() != "" || !v.GetEmailVerified() {
			t.Fatalf("VerifyEmail answered %v, want %s with email %s verified, none pending", v, u.ID, newEmail)
		}
		if me := e.getMe(t, u.Token); me.GetEmail() != newEmail || me.GetPendingEmail() != "" {
			t.Fatalf("GetMe after the change: email %q pending %q", me.GetEmail(), me.GetPendingEmail())
		}
		if lg := e.loginAs(t, newEmail, password); lg.GetAccount().GetId() != u.ID {
			t.Fatalf("Login with the new email is account %s, want %s", lg.GetAccount().GetId(), u.ID)
		}
		wantCode(t, e.post(t, "", procLogin, map[string]any{"email": u.Email, "password": password}), "unauthenticated")
		e.settleNotices(t, newEmail)
		e.settleNotices(t, u.Email)
		if n, m := len(box.lettersTo(newEmail, subjVerify)), len(box.lettersTo(u.Email, subjEmailChanging)); n != 1 || m != 1 {
			t.Fatalf("%d verification letters to the new address and %d notices to the old one, want 1 and 1", n, m)
		}
	})
}

// ---- 4. closing an account ----

// TestAccountClose: an account with money still moving cannot close; once
// it can, its tokens stop, its email is free, its payments stay; after the
// retention period the maintenance workflow erases its name and email,
// and the ledger still balances.
func TestAccountClose(t *testing.T) {
	t.Parallel()
	accountStory(t, func(t *testing.T, e *E, box *inbox) {
		m, c := e.merchant(t), e.customer(t)
		adm := e.admin(t)
		session := e.rotateRefresh(t, e.loginAs(t, c.Email, password).GetRefreshToken())
		held := e.create(t, c, pay(m, 2500, "USD", "pm_card_visa").manual())
		wantStatus(t, held, stRequiresCapture)

		wantRefused(t, e.post(t, c.Token, rpcCloseAccount, map[string]any{"password": password}),
			"failed_precondition", held.GetId(), "uncaptured authorization")
		wantCode(t, e.post(t, c.Token, rpcCloseAccount, map[string]any{"password": "not the password at all"}), "unauthenticated")
		if me := e.getMe(t, c.Token); me.GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_ACTIVE {
			t.Fatalf("a refused closure changed the account: %v", me)
		}

		e.cancelR(t, m, held.GetId(), "").payment(t)
		canceled := e.waitStatus(t, m, held.GetId(), stCanceled)

		closed := decodeOK(t, e.post(t, c.Token, rpcCloseAccount, map[string]any{"password": password}), &pb.CloseAccountResponse{}).GetAccount()
		if closed.GetId() != c.ID || closed.GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_CLOSED || closed.GetClosedAt() == nil {
			t.Fatalf("CloseAccount answered %v, want %s closed with closed_at", closed, c.ID)
		}
		letter := box.waitLetters(t, c.Email, subjClosed, 1)[0]
		if !strings.Contains(letter.text, "register again") {
			t.Fatalf("the closed letter does not say the email can register again:\n%s", letter.text)
		}

		// Its tokens stop at once.
		wantCode(t, e.post(t, c.Token, rpcGetMe, map[string]any{}), "unauthenticated")
		wantCode(t, e.post(t, session.GetAccessToken(), rpcGetMe, map[string]any{}), "unauthenticated")
		wantCode(t, e.post(t, "", rpcRefreshToken, map[string]any{"refresh_token": session.GetRefreshToken()}), "unauthenticated")
		wantCode(t, e.post(t, "", procLogin, map[string]any{"email": c.Email, "password": password}), "unauthenticated")

		// The email registers again, as a new account.
		again := decodeOK(t, e.post(t, "", procRegister, map[string]any{"email": c.Email, "password": password, "role": "ROLE_CUSTOMER", "display_name": "Second life"}),
			&pb.RegisterResponse{}).GetAccount()
		if again.GetId() == "" || again.GetId() == c.ID || again.GetEmail() != c.Email {
			t.Fatalf("Register after closing answered %v, want a new account with %s", again, c.Email)
		}
		if lg := e.loginAs(t, c.Email, password); lg.GetAccount().GetId() != again.GetId() {
			t.Fatalf("Login with the freed email is account %s, want the new %s", lg.GetAccount().GetId(), again.GetId())
		}

		// The payment stays as it was, for the merchant.
		if got := e.get(t, m, held.GetId()); !proto.Equal(got, canceled) {
			t.Fatalf("the closed customer's payment changed:\nbefore: %v\nafter:  %v", canceled, got)
		}

		before, err := e.Store.Client.Account.Get(ctxT(t), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if before.ClosedEmail != c.Email || before.Email != store.ClosedEmail(c.ID) || before.DisplayName == store.ClosedName || before.AnonymizedAt != nil {
			t.Fatalf("closed account before the purge: email %q closed_email %q name %q anonymized %v",
				before.Email, before.ClosedEmail, before.DisplayName, before.AnonymizedAt)
		}
		// The closed letter was sent before anything is erased.
		e.settleNotices(t, c.Email)

		// The maintenance workflow, past the (1 ms) retention period.
		run, err := e.Temporal.ExecuteWorkflow(ctxT(t), client.StartWorkflowOptions{
			ID: "accounts-test/purge-" + c.ID, TaskQueue: e.TaskQueue,
		}, maintenance.PurgeWorkflowName, maintenance.PurgeInput{})
		if err != nil {
			t.Fatalf("start %s: %v", maintenance.PurgeWorkflowName, err)
		}
		var purged activities.PurgeResult
		if err := run.Get(ctxT(t), &purged); err != nil {
			t.Fatalf("%s: %v\n%s", maintenance.PurgeWorkflowName, err, e.explain(run.GetID()))
		}

		after, err := e.Store.Client.Account.Get(ctxT(t), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.AnonymizedAt == nil || after.ClosedEmail != "" || after.DisplayName != store.ClosedName || after.BusinessName != "" ||
			after.Email != store.ClosedEmail(c.ID) {
			t.Fatalf("closed account after the purge: email %q closed_email %q name %q business %q anonymized %v",
				after.Email, after.ClosedEmail, after.DisplayName, after.BusinessName, after.AnonymizedAt)
		}
		msgs, err := e.Store.Client.EmailMessage.Query().Where(emailmessage.AccountID(c.ID)).All(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			t.Fatal("no email rows for the closed account (its closed letter was sent)")
		}
		for _, msg := range msgs {
			if msg.Recipient != store.ClosedEmail(c.ID) {
				t.Fatalf("email %s %q still names %q after anonymization", msg.ID, msg.Subject, msg.Recipient)
			}
		}
		// The new account with the same email is untouched.
		if now, err := e.Store.Client.Account.Get(ctxT(t), again.GetId()); err != nil || now.AnonymizedAt != nil || now.DisplayName != "Second life" || now.Email != c.Email {
			t.Fatalf("the new account after the purge: %v, %v", now, err)
		}

		// As an admin sees it.
		ga := decodeOK(t, e.post(t, adm.Token, rpcGetAccount, map[string]any{"id": c.ID}), &pb.GetAccountResponse{})
		if a := ga.GetAccount(); a.GetDisplayName() != store.ClosedName || a.GetEmail() != store.ClosedEmail(c.ID) ||
			a.GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_CLOSED || ga.GetPaymentsCount() != 1 {
			t.Fatalf("admin GetAccount of the anonymized account: %v", ga)
		}
		audits := decodeOK(t, e.post(t, adm.Token, rpcListAuditEvents, map[string]any{"target_id": c.ID, "type": "account.anonymized"}),
			&pb.ListAuditEventsResponse{}).GetAuditEvents()
		if len(audits) != 1 || audits[0].GetActorId() != "" {
			t.Fatalf("account.anonymized audit events of %s: %v, want one by the platform", c.ID, audits)
		}
		if got := e.get(t, m, held.GetId()); !proto.Equal(got, canceled) {
			t.Fatalf("the anonymized customer's payment changed:\nbefore: %v\nafter:  %v", canceled, got)
		}
		e.checkLedger(t)
	}, closedAccountRetention(time.Millisecond))
}

// ---- 5. suspension ----

// TestAccountSuspension: an admin suspends a merchant; its API key is
// refused on the next request, it is told why (the reason code, not the
// admin's note), it cannot be paid, and the audit trail names the admin.
func TestAccountSuspension(t *testing.T) {
	t.Parallel()
	accountStory(t, func(t *testing.T, e *E, box *inbox) {
		m, c := e.merchant(t), e.customer(t)
		adm := e.admin(t)
		key := decodeOK(t, e.post(t, m.Token, rpcCreateAPIKey, map[string]any{"name": "shop"}), &pb.CreateApiKeyResponse{})
		secret := key.GetSecret()
		if !strings.HasPrefix(secret, "sk_") {
			t.Fatalf("CreateApiKey answered secret %q", secret)
		}
		e.create(t, c, pay(m, 1200, "USD", "pm_card_visa"))
		if r := e.post(t, secret, procListPayments, map[string]any{}); r.status != http.StatusOK {
			t.Fatalf("ListPayments with the API key before the suspension: %s", r)
		}

		const note = "card testing seen from this shop"
		sus := decodeOK(t, e.post(t, adm.Token, rpcSuspendAccount, map[string]any{"id": m.ID, "reason": "SUSPENSION_REASON_FRAUD", "note": note}),
			&pb.SuspendAccountResponse{}).GetAccount()
		if sus.GetId() != m.ID || sus.GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_DISABLED || sus.GetSuspensionReason() != "fraud" {
			t.Fatalf("SuspendAccount answered %v", sus)
		}

		// The key and the access token are refused at once.
		wantCode(t, e.post(t, secret, procListPayments, map[string]any{}), "unauthenticated")
		wantCode(t, e.post(t, m.Token, procListPayments, map[string]any{}), "unauthenticated")
		// Nobody can pay it; the payer sees the reason code, not the note.
		r := e.post(t, c.Token, procCreatePayment, pay(m, 1300, "USD", "pm_card_visa"))
		wantRefused(t, r, "failed_precondition", "fraud")
		if strings.Contains(r.msg, note) {
			t.Fatalf("the payer sees the admin's note: %s", r)
		}

		letter := box.waitLetters(t, m.Email, subjSuspended, 1)[0]
		if !strings.Contains(letter.text, "Reason: fraud") || strings.Contains(letter.text, note) || strings.Contains(letter.html, note) {
			t.Fatalf("the suspension letter should give the reason code and not the note:\n%s", letter.text)
		}

		audits := decodeOK(t, e.post(t, adm.Token, rpcListAuditEvents, map[string]any{"target_id": m.ID, "type": "account.suspended"}),
			&pb.ListAuditEventsResponse{}).GetAuditEvents()
		if len(audits) != 1 {
			t.Fatalf("%d account.suspended events for %s, want 1: %v", len(audits), m.ID, audits)
		}
		if a := audits[0]; a.GetActorId() != adm.ID || a.GetTargetId() != m.ID || a.GetDetail()["reason"] != "fraud" || a.GetRequestId() == "" {
			t.Fatalf("account.suspended event: %v, want actor %s, target %s, reason fraud", a, adm.ID, m.ID)
		}
		e.settleNotices(t, m.Email)
		if n := len(box.lettersTo(m.Email, subjSuspended)); n != 1 {
			t.Fatalf("%d suspension letters, want 1", n)
		}
	})
}
