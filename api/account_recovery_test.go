package api_test

// Tests of account recovery and the audit trail, through the real handler:
// password resets (RequestPasswordReset, ResetPassword), email verification
// and email changes (VerifyEmail, UpdateMe, ResendVerification), closing an
// account (CloseAccount), RequireVerifiedMerchants, ListAuditEvents and the
// X-Request-Id header. No worker runs here, so no link is mailed: a test
// issues the token the worker would have mailed through the store
// (rcvIssue) and reads the notices the API wrote.

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/ent"
	"github.com/payments-platform/payments/ent/account"
	"github.com/payments-platform/payments/ent/accountnotice"
	"github.com/payments-platform/payments/ent/accounttoken"
	"github.com/payments-platform/payments/ent/auditevent"
	entpayment "github.com/payments-platform/payments/ent/payment"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	"github.com/payments-platform/payments/internal/store/storetest"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// ---- helpers of this file ----------------------------------------------------

// rcvEachDB runs fn as the parallel subtests "sqlite" and "mysql" (skipped
// without PAYMENTS_TEST_MYSQL_DSN), each on a fresh store migrated under
// migrateMu, so that these tests may run alongside the parallel ones.
func rcvEachDB(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, newSQLite(t))
	})
	t.Run("mysql", func(t *testing.T) {
		t.Parallel()
		var st *store.Store
		func() {
			// NewMySQL may skip (runtime.Goexit): the deferred unlock runs.
			migrateMu.Lock()
			defer migrateMu.Unlock()
			st = storetest.NewMySQL(t)
		}()
		fn(t, st)
	})
}

// rcvCall sends req as raw JSON over HTTP/1.1 with the Authorization header
// authz ("" for none) and the headers hdr.
func (e *env) rcvCall(t *testing.T, authz string, hdr http.Header, req proto.Message) result {
	t.Helper()
	body, err := protojson.Marshal(req)
	if err != nil {
		t.Fatalf("marshal %T: %v", req, err)
	}
	h := http.Header{}
	for k, vs := range hdr {
		h[k] = slices.Clone(vs)
	}
	if authz != "" {
		h.Set("Authorization", authz)
	}
	return e.rawCall(t, methodOf(t, req), "application/json", body, h)
}

// rcvFrom is the header of a request forwarded for the client addr (the
// env must trust loopback: withTrustedProxies).
func rcvFrom(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }

// rcvIssue stores a token of purpose for the account, mailed to email, as
// the worker does when it sends the link, and returns the token. It
// supersedes the account's earlier unused tokens of the same purpose.
func (e *env) rcvIssue(t *testing.T, accountID string, purpose accounttoken.Purpose, email string, ttl time.Duration) string {
	t.Helper()
	prefix := "rst_"
	if purpose == accounttoken.PurposeVerifyEmail {
		prefix = "vfy_"
	}
	secret, hash, err := auth.NewSecret(prefix)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	if err := e.st.IssueAccountToken(ctxT(t), store.NewAccountToken{
		AccountID: accountID, Purpose: purpose, Email: email, Hash: hash, ExpiresAt: now.Add(ttl), At: now,
	}, store.Records{}); err != nil {
		t.Fatal(err)
	}
	return secret
}

// rcvNotices are the notices of kind, oldest first.
func (e *env) rcvNotices(t *testing.T, kind accountnotice.Kind) []*ent.AccountNotice {
	t.Helper()
	ns, err := e.st.Client.AccountNotice.Query().Where(accountnotice.KindEQ(kind)).
		Order(ent.Asc(accountnotice.FieldCreatedAt), ent.Asc(accountnotice.FieldID)).All(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// rcvNoticesTo are the notices of kind to recipient.
func (e *env) rcvNoticesTo(t *testing.T, kind accountnotice.Kind, recipient string) []*ent.AccountNotice {
	t.Helper()
	var out []*ent.AccountNotice
	for _, n := range e.rcvNotices(t, kind) {
		if n.Recipient == recipient {
			out = append(out, n)
		}
	}
	return out
}

// rcvState is snapshot plus what recovery changes: each account's
// verification, pending email and closure, the mailed tokens, the notices
// and the audit rows.
func (e *env) rcvState(t *testing.T) string {
	t.Helper()
	ctx := ctxT(t)
	var b strings.Builder
	b.WriteString(e.snapshot(t))
	accts, err := e.st.Client.Account.Query().Order(ent.Asc(account.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		fmt.Fprintf(&b, "%s verified=%v pending=%q closed=%v closed_email=%q\n", a.ID, a.EmailVerified, a.PendingEmail, a.ClosedAt != nil, a.ClosedEmail)
	}
	toks, err := e.st.Client.AccountToken.Query().Order(ent.Asc(accounttoken.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d account tokens\n", len(toks))
	for _, k := range toks {
		fmt.Fprintf(&b, "%s %s %s used=%v superseded=%v\n", k.ID, k.AccountID, k.Purpose, k.UsedAt != nil, k.SupersededAt != nil)
	}
	ns, err := e.st.Client.AccountNotice.Query().Order(ent.Asc(accountnotice.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d notices\n", len(ns))
	for _, n := range ns {
		fmt.Fprintf(&b, "%s %s %s %s\n", n.ID, n.Kind, n.AccountID, n.Recipient)
	}
	evs, err := e.st.Client.AuditEvent.Query().Order(ent.Asc(auditevent.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d audit events\n", len(evs))
	for _, a := range evs {
		fmt.Fprintf(&b, "%s %s %s\n", a.ID, a.Type, a.TargetID)
	}
	n, err := e.st.Client.Payment.Query().Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%d payments\n", n)
	return b.String()
}

// rcvUnchanged asserts that rcvState still matches before.
func (e *env) rcvUnchanged(t *testing.T, before string) {
	t.Helper()
	if after := e.rcvState(t); after != before {
		t.Errorf("a refused call changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// rcvMe is the caller's account (GetMe).
func (e *env) rcvMe(t *testing.T, authz string) *pb.Account {
	t.Helper()
	return wantOK[*pb.GetMeResponse](t, e.me(t, httpJSON, authz)).GetAccount()
}

// rcvAudit lists every audit row req selects (page by page, 100 a page)
// as the admin adm.
func (e *env) rcvAudit(t *testing.T, adm user, req *pb.ListAuditEventsRequest) []*pb.AuditEvent {
	t.Helper()
	req = proto.Clone(req).(*pb.ListAuditEventsRequest)
	req.PageSize = 100
	var out []*pb.AuditEvent
	for range 50 {
		res := wantOK[*pb.ListAuditEventsResponse](t, e.call(t, httpJSON, adm.authz(), req))
		out = append(out, res.GetAuditEvents()...)
		if req.PageToken = res.GetNextPageToken(); req.PageToken == "" {
			return out
		}
	}
	t.Fatal("ListAuditEvents never ends")
	return nil
}

// rcvTypes are the types of evs, in order.
func rcvTypes(evs []*pb.AuditEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.GetType()
	}
	return out
}

// rcvAuthorization stores an uncaptured authorization of c to m, as the
// payment's workflow would, and returns its id.
func (e *env) rcvAuthorization(t *testing.T, m, c user) string {
	t.Helper()
	id := ids.New(ids.Payment)
	now := e.clock.Now()
	if _, err := e.st.SavePayment(ctxT(t), store.PaymentRecord{
		ID: id, MerchantID: m.acct.GetId(), CustomerID: c.acct.GetId(), Amount: 1500, AmountCapturable: 1500, Currency: "USD",
		Status: entpayment.StatusRequiresCapture, CaptureMethod: entpayment.CaptureMethodManual, PaymentMethod: "pm_card_visa",
		Gateway: "sandbox", GatewayReference: "pi_test_" + id, WorkflowID: "payment/" + id, Version: 1, CreatedAt: now, UpdatedAt: now,
	}, nil); err != nil {
		t.Fatal(err)
	}
	return id
}

// rcvCancel saves the authorization id as canceled (its workflow's next
// save).
func (e *env) rcvCancel(t *testing.T, m, c user, id string) {
	t.Helper()
	p, err := e.st.Client.Payment.Get(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	if _, err := e.st.SavePayment(ctxT(t), store.PaymentRecord{
		ID: id, MerchantID: m.acct.GetId(), CustomerID: c.acct.GetId(), Amount: p.Amount, Currency: p.Currency,
		Status: entpayment.StatusCanceled, CaptureMethod: entpayment.CaptureMethodManual, PaymentMethod: "pm_card_visa",
		Gateway: "sandbox", GatewayReference: p.GatewayReference, WorkflowID: p.WorkflowID, Version: p.Version + 1,
		CreatedAt: p.CreatedAt, UpdatedAt: now,
	}, nil); err != nil {
		t.Fatal(err)
	}
}

// rcvServerID is what the server's own request ids look like.
var rcvServerID = regexp.MustCompile(`^req_[A-Za-z0-9._:-]+$`)

// ---- RequestPasswordReset ------------------------------------------------------

// A reset request answers the same whether or not the email has an
// account, and writes one password_reset notice for the typed email (lower
// case, no account: the worker looks it up when it sends); requests are
// limited to 5 an hour per email and 20 an hour per client address.
func TestRequestPasswordReset(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st, withTrustedProxies())
		u := e.customer(t)
		unknown := e.email("nobody")
		before := e.snapshot(t)
		ask := func(email, from string) result {
			t.Helper()
			return e.rcvCall(t, "", rcvFrom(from), &pb.RequestPasswordResetRequest{Email: email})
		}

		known := ask(strings.ToUpper(u.email), "198.51.100.1")
		unk := ask(strings.ToUpper(unknown), "198.51.100.1")
		wantOK[*pb.RequestPasswordResetResponse](t, known)
		wantOK[*pb.RequestPasswordResetResponse](t, unk)
		if string(known.body) != "{}" || string(unk.body) != string(known.body) {
			t.Fatalf("answers differ or are not empty: known %s, unknown %s", known.body, unk.body)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "Content-Encoding"} {
			if known.header.Get(h) != unk.header.Get(h) {
				t.Errorf("header %s: known %q, unknown %q", h, known.header.Get(h), unk.header.Get(h))
			}
		}
		e.unchanged(t, before)
		if n := len(e.rcvNotices(t, accountnotice.KindPasswordReset)); n != 2 {
			t.Fatalf("%d password_reset notices, want 2", n)
		}
		for email, r := range map[string]result{u.email: known, unknown: unk} {
			ns := e.rcvNoticesTo(t, accountnotice.KindPasswordReset, email)
			if len(ns) != 1 {
				t.Fatalf("%d password_reset notices to %s, want 1 (recipients lower case)", len(ns), email)
			}
			n := ns[0]
			if n.AccountID != "" || n.Data["client_ip"] != "198.51.100.1" || n.Data["request_id"] != r.header.Get(api.RequestIDHeader) {
				t.Errorf("notice to %s: account %q, data %v (request id %q)", email, n.AccountID, n.Data, r.header.Get(api.RequestIDHeader))
			}
		}

		// Per email: the sixth request within the hour is refused, from
		// any address, and in any case; other emails are not.
		for i := range 4 {
			wantOK[*pb.RequestPasswordResetResponse](t, ask(u.email, fmt.Sprintf("198.51.100.%d", 10+i)))
		}
		ask(u.email, "198.51.100.20").wantErr(t, want{code: connect.CodeResourceExhausted, msg: "password reset requests"})
		ask(strings.ToUpper(u.email), "198.51.100.21").wantErr(t, want{code: connect.CodeResourceExhausted, msg: "password reset requests"})
		if n := len(e.rcvNoticesTo(t, accountnotice.KindPasswordReset, u.email)); n != 5 {
			t.Fatalf("%d notices to %s, want 5 (refused requests write none)", n, u.email)
		}
		wantOK[*pb.RequestPasswordResetResponse](t, ask(unknown, "198.51.100.20"))
		wantOK[*pb.RequestPasswordResetResponse](t, ask(e.email("other"), "198.51.100.20"))

		// Per address: 20 requests across emails, then none from it; other
		// addresses are not affected.
		const spray = "203.0.113.50"
		for range 20 {
			wantOK[*pb.RequestPasswordResetResponse](t, ask(e.email("spray"), spray))
		}
		last := e.email("spray")
		ask(last, spray).wantErr(t, want{code: connect.CodeResourceExhausted, msg: "password reset requests"})
		if n := len(e.rcvNoticesTo(t, accountnotice.KindPasswordReset, last)); n != 0 {
			t.Fatalf("a refused request wrote %d notices", n)
		}
		wantOK[*pb.RequestPasswordResetResponse](t, ask(last, "203.0.113.51"))
		e.unchanged(t, before)
	})
}

// Without trusted proxies, X-Forwarded-For is the client's to write and is
// ignored: every request from 127.0.0.1 counts on one address.
func TestRequestPasswordResetAddressLimitIgnoresForwardedFor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 20 {
		wantOK[*pb.RequestPasswordResetResponse](t, e.rcvCall(t, "", rcvFrom(fmt.Sprintf("192.0.2.%d", i+1)),
			&pb.RequestPasswordResetRequest{Email: e.email("spoof")}))
	}
	e.rcvCall(t, "", rcvFrom("192.0.2.200"), &pb.RequestPasswordResetRequest{Email: e.email("spoof")}).
		wantErr(t, want{code: connect.CodeResourceExhausted, msg: "password reset requests"})
	e.rcvCall(t, "", nil, &pb.RequestPasswordResetRequest{Email: "not an email"}).
		wantErr(t, want{code: connect.CodeInvalidArgument, field: "email"})
}

// ---- ResetPassword -------------------------------------------------------------

// A reset token sets the password once, signs every session out, ends a
// lockout of the email and is audited with the request's id and address;
// an expired, superseded, used, unknown or verification token is
// invalid_argument, and a weak password is refused without spending it.
func TestResetPassword(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st, withTrustedProxies())
		adm := e.admin(t)
		u := e.customer(t)
		tablet := e.login(t, u.email, password)
		id := u.acct.GetId()
		const next = "a-fresh-reset-passphrase"
		reset := func(token, pw string) result {
			t.Helper()
			return e.rcvCall(t, "", nil, &pb.ResetPasswordRequest{Token: token, NewPassword: pw})
		}
		badToken := func(msg string) want { return want{code: connect.CodeInvalidArgument, field: "token", msg: msg} }

		before := e.snapshot(t)
		expired := e.rcvIssue(t, id, accounttoken.PurposeResetPassword, u.email, -time.Second)
		reset(expired, next).wantErr(t, badToken("expired"))
		older := e.rcvIssue(t, id, accounttoken.PurposeResetPassword, u.email, 30*time.Minute)
		tok := e.rcvIssue(t, id, accounttoken.PurposeResetPassword, u.email, 30*time.Minute)
		reset(older, next).wantErr(t, badToken("newer"))
		vfy := e.rcvIssue(t, id, accounttoken.PurposeVerifyEmail, u.email, 24*time.Hour)
		reset(vfy, next).wantErr(t, badToken("not valid"))
		reset("rst_not-a-token-anyone-was-sent", next).wantErr(t, badToken("not valid"))
		reset(tok, "short").wantErr(t, want{code: connect.CodeInvalidArgument, field: "new_password"})
		// The reset token is no verification token either, and stays unspent.
		e.rcvCall(t, "", nil, &pb.VerifyEmailRequest{Token: tok}).wantErr(t, badToken("not valid"))
		e.unchanged(t, before)
		if me := e.rcvMe(t, u.authz()); me.GetEmailVerified() {
			t.Fatal("a reset token verified the email")
		}

		// Someone guessing locked the email out; the reset ends that.
		for range 5 {
			e.call(t, httpJSON, "", &pb.LoginRequest{Email: u.email, Password: "not the password"}).
				wantErr(t, want{code: connect.CodeUnauthenticated})
		}
		e.call(t, httpJSON, "", &pb.LoginRequest{Email: u.email, Password: password}).wantErr(t, want{code: connect.CodeResourceExhausted})

		hdr := rcvFrom("198.51.100.7")
		hdr.Set(api.RequestIDHeader, "reset-req-0001")
		r := e.rcvCall(t, "", hdr, &pb.ResetPasswordRequest{Token: tok, NewPassword: next})
		wantOK[*pb.ResetPasswordResponse](t, r)
		if got := r.header.Get(api.RequestIDHeader); got != "reset-req-0001" {
			t.Fatalf("X-Request-Id %q, want the client's", got)
		}
		e.call(t, httpJSON, "", &pb.LoginRequest{Email: u.email, Password: password}).
			wantErr(t, want{code: connect.CodeUnauthenticated, exactMsg: "invalid email or password"})
		fresh := e.login(t, u.email, next)
		for name, rt := range map[string]string{"the first login's": u.refresh, "the tablet's": tablet.refresh} {
			if r := e.call(t, httpJSON, "", &pb.RefreshTokenRequest{RefreshToken: rt}); r.code != connect.CodeUnauthenticated {
				t.Errorf("%s refresh token after the reset: %v %q, want unauthenticated", name, codeName(r.code), r.msg)
			}
		}
		wantOK[*pb.RefreshTokenResponse](t, e.call(t, httpJSON, "", &pb.RefreshTokenRequest{RefreshToken: fresh.refresh}))
		// An access token issued before lives on until it expires (at most
		// accessTTL): accepted by design, not asserted either way.

		reset(tok, "yet-another-passphrase").wantErr(t, badToken("used"))
		e.login(t, u.email, next)

		if ns := e.rcvNoticesTo(t, accountnotice.KindPasswordChanged, u.email); len(ns) != 1 || ns[0].AccountID != id {
			t.Fatalf("password_changed notices %v, want one to the owner", ns)
		}
		evs := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{Type: store.AuditPasswordReset})
		if len(evs) != 1 {
			t.Fatalf("password_reset audit rows %v, want 1", evs)
		}
		// Whoever holds the mailed token acts as the account.
		if ev := evs[0]; ev.GetTargetId() != id || ev.GetActorId() != id || ev.GetRequestId() != "reset-req-0001" || ev.GetClientIp() != "198.51.100.7" {
			t.Fatalf("audit row %v: want target and actor %s, request reset-req-0001, client 198.51.100.7", ev, id)
		}
	})
}

// Refused reset tokens count against the client address: after 20 within
// 15 minutes, even a good token is refused from that address (and not
// spent), while other addresses may still use it.
func TestResetPasswordLimitPerAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withTrustedProxies())
	u := e.customer(t)
	tok := e.rcvIssue(t, u.acct.GetId(), accounttoken.PurposeResetPassword, u.email, 30*time.Minute)
	const guesser = "203.0.113.77"
	for i := range 20 {
		e.rcvCall(t, "", rcvFrom(guesser), &pb.ResetPasswordRequest{Token: fmt.Sprintf("rst_guess_%d", i), NewPassword: "guessers-passphrase"}).
			wantErr(t, want{code: connect.CodeInvalidArgument, field: "token"})
	}
	before := e.rcvState(t)
	e.rcvCall(t, "", rcvFrom(guesser), &pb.ResetPasswordRequest{Token: tok, NewPassword: "guessers-passphrase"}).
		wantErr(t, want{code: connect.CodeResourceExhausted, msg: "password reset attempts"})
	e.rcvUnchanged(t, before)
	wantOK[*pb.ResetPasswordResponse](t, e.rcvCall(t, "", rcvFrom("198.51.100.8"), &pb.ResetPasswordRequest{Token: tok, NewPassword: "the-owners-passphrase"}))
	e.login(t, u.email, "the-owners-passphrase")
}

// ---- VerifyEmail ---------------------------------------------------------------

// A verification token verifies the address once; a reset token, a used or
// an expired one is invalid_argument and verifies nothing.
func TestVerifyEmail(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st)
		adm := e.admin(t)
		u := e.merchant(t)
		id := u.acct.GetId()
		if e.rcvMe(t, u.authz()).GetEmailVerified() {
			t.Fatal("a new account is verified")
		}
		verify := func(tok string) result {
			t.Helper()
			return e.call(t, httpJSON, "", &pb.VerifyEmailRequest{Token: tok})
		}
		expired := e.rcvIssue(t, id, accounttoken.PurposeVerifyEmail, u.email, -time.Minute)
		rst := e.rcvIssue(t, id, accounttoken.PurposeResetPassword, u.email, 30*time.Minute)
		before := e.rcvState(t)
		verify(expired).wantErr(t, want{code: connect.CodeInvalidArgument, field: "token", msg: "expired"})
		verify(rst).wantErr(t, want{code: connect.CodeInvalidArgument, field: "token", msg: "not valid"})
		verify("vfy_never-sent").wantErr(t, want{code: connect.CodeInvalidArgument, field: "token"})
		verify("").wantErr(t, want{code: connect.CodeInvalidArgument, field: "token"})
		e.rcvUnchanged(t, before)
		if e.rcvMe(t, u.authz()).GetEmailVerified() {
			t.Fatal("a refused token verified the email")
		}

		tok := e.rcvIssue(t, id, accounttoken.PurposeVerifyEmail, u.email, 24*time.Hour)
		res := wantOK[*pb.VerifyEmailResponse](t, verify(tok))
		if !res.GetAccount().GetEmailVerified() || res.GetAccount().GetId() != id || res.GetAccount().GetEmail() != u.email {
			t.Fatalf("VerifyEmail answered %v", res.GetAccount())
		}
		if !e.rcvMe(t, u.authz()).GetEmailVerified() {
			t.Fatal("GetMe does not show the email verified")
		}
		after := e.rcvState(t)
		verify(tok).wantErr(t, want{code: connect.CodeInvalidArgument, field: "token", msg: "used"})
		e.rcvUnchanged(t, after)
		// The reset token still works: trying it as a verification did not spend it.
		wantOK[*pb.ResetPasswordResponse](t, e.call(t, httpJSON, "", &pb.ResetPasswordRequest{Token: rst, NewPassword: "the-new-passphrase"}))
		evs := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{TargetId: id, Type: store.AuditEmailVerified})
		// Whoever holds the mailed token acts as the account.
		if len(evs) != 1 || evs[0].GetActorId() != id {
			t.Fatalf("email_verified rows %v, want one by the account", evs)
		}
	})
}

// ---- UpdateMe email change ---------------------------------------------------

// Changing the email needs the current password, leaves the login email
// until the new address is verified (pending_email meanwhile), mails the
// new address a link and tells the old one; an address in use is
// already_exists; verifying the pending address switches the login email.
func TestUpdateMeEmailChange(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st)
		adm := e.admin(t)
		u := e.customer(t)
		other := e.merchant(t)
		id := u.acct.GetId()
		moved := e.email("moved")
		wrong := "not my password"
		pw := password

		before := e.rcvState(t)
		e.call(t, httpJSON, u.authz(), &pb.UpdateMeRequest{Email: &moved}).
			wantErr(t, want{code: connect.CodeInvalidArgument, violation: "current_password_required_for_email"})
		e.call(t, httpJSON, u.authz(), &pb.UpdateMeRequest{Email: &moved, CurrentPassword: &wrong}).
			wantErr(t, want{code: connect.CodeInvalidArgument, field: "current_password"})
		taken := strings.ToUpper(other.email)
		e.call(t, httpJSON, u.authz(), &pb.UpdateMeRequest{Email: &taken, CurrentPassword: &pw}).
			wantErr(t, want{code: connect.CodeAlreadyExists})
		e.rcvUnchanged(t, before)
		if me := e.rcvMe(t, u.authz()); me.GetPendingEmail() != "" || me.GetEmail() != u.email {
			t.Fatalf("after refused changes: %v", me)
		}

		upper := strings.ToUpper(moved)
		res := wantOK[*pb.UpdateMeResponse](t, e.call(t, httpJSON, u.authz(), &pb.UpdateMeRequest{Email: &upper, CurrentPassword: &pw}))
		for _, a := range []*pb.Account{res.GetAccount(), e.rcvMe(t, u.authz())} {
			if a.GetEmail() != u.email || a.GetPendingEmail() != moved {
				t.Fatalf("account %v: want email %s, pending %s", a, u.email, moved)
			}
		}
		if ns := e.rcvNoticesTo(t, accountnotice.KindVerifyEmail, moved); len(ns) != 1 || ns[0].AccountID != id {
			t.Fatalf("verify_email notices to the new address: %v", ns)
		}
		if ns := e.rcvNoticesTo(t, accountnotice.KindEmailChangeRequested, u.email); len(ns) != 1 || ns[0].AccountID != id || ns[0].Data["new_email"] != moved {
			t.Fatalf("email_change_requested notices to the old address: %v", ns)
		}
		if ns := e.rcvNoticesTo(t, accountnotice.KindEmailChangeRequested, moved); len(ns) != 0 {
			t.Fatalf("the new address was told of the change: %v", ns)
		}
		// Until verified, the old email signs in and the new one does not.
		e.login(t, u.email, password)
		e.call(t, httpJSON, "", &pb.LoginRequest{Email: moved, Password: password}).wantErr(t, want{code: connect.CodeUnauthenticated})

		tok := e.rcvIssue(t, id, accounttoken.PurposeVerifyEmail, moved, 24*time.Hour)
		v := wantOK[*pb.VerifyEmailResponse](t, e.call(t, httpJSON, "", &pb.VerifyEmailRequest{Token: tok}))
		if a := v.GetAccount(); a.GetEmail() != moved || a.GetPendingEmail() != "" || !a.GetEmailVerified() {
			t.Fatalf("after verifying the new address: %v", a)
		}
		e.login(t, moved, password)
		e.call(t, httpJSON, "", &pb.LoginRequest{Email: u.email, Password: password}).
			wantErr(t, want{code: connect.CodeUnauthenticated, exactMsg: "invalid email or password"})
		// The old address is free again.
		wantOK[*pb.RegisterResponse](t, e.call(t, httpJSON, "", &pb.RegisterRequest{Email: u.email, Password: password, Role: pb.Role_ROLE_CUSTOMER}))

		got := rcvTypes(e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{TargetId: id}))
		for _, typ := range []string{store.AuditEmailChangeRequested, store.AuditEmailChanged} {
			if !slices.Contains(got, typ) {
				t.Errorf("audit of %s has %v, want %s", id, got, typ)
			}
		}

		// A pending address another account takes meanwhile: the link is
		// refused with already_exists and changes nothing.
		w := e.customer(t)
		wanted := e.email("wanted")
		wantOK[*pb.UpdateMeResponse](t, e.call(t, httpJSON, w.authz(), &pb.UpdateMeRequest{Email: &wanted, CurrentPassword: &pw}))
		tok = e.rcvIssue(t, w.acct.GetId(), accounttoken.PurposeVerifyEmail, wanted, 24*time.Hour)
		wantOK[*pb.RegisterResponse](t, e.call(t, httpJSON, "", &pb.RegisterRequest{Email: wanted, Password: password, Role: pb.Role_ROLE_MERCHANT}))
		before = e.rcvState(t)
		e.call(t, httpJSON, "", &pb.VerifyEmailRequest{Token: tok}).wantErr(t, want{code: connect.CodeAlreadyExists})
		e.rcvUnchanged(t, before)
		if me := e.rcvMe(t, w.authz()); me.GetEmail() != w.email {
			t.Fatalf("after the refused switch: %v", me)
		}
	})
}

// ---- ResendVerification --------------------------------------------------------

// ResendVerification mails the unverified address (the account's own, or a
// pending new one); a verified account without a pending change is
// failed_precondition; API keys may not call it; 5 an hour per account.
func TestResendVerification(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st)
		u := e.merchant(t)
		id := u.acct.GetId()
		resend := func(authz string) result {
			t.Helper()
			return e.call(t, httpJSON, authz, &pb.ResendVerificationRequest{})
		}
		if n := len(e.rcvNoticesTo(t, accountnotice.KindVerifyEmail, u.email)); n != 1 {
			t.Fatalf("%d verify_email notices after Register, want 1", n)
		}
		res := wantOK[*pb.ResendVerificationResponse](t, resend(u.authz()))
		if res.GetEmail() != u.email {
			t.Fatalf("resent to %q, want %q", res.GetEmail(), u.email)
		}
		ns := e.rcvNoticesTo(t, accountnotice.KindVerifyEmail, u.email)
		if len(ns) != 2 || ns[1].AccountID != id {
			t.Fatalf("verify_email notices %v, want a second one for %s", ns, id)
		}

		key, _ := e.apiKey(t, u, "backend")
		before := e.rcvState(t)
		resend(bearer(key)).wantErr(t, want{code: connect.CodePermissionDenied, msg: "API keys"})
		resend("").wantErr(t, want{code: connect.CodeUnauthenticated})
		e.rcvUnchanged(t, before)

		tok := e.rcvIssue(t, id, accounttoken.PurposeVerifyEmail, u.email, 24*time.Hour)
		wantOK[*pb.VerifyEmailResponse](t, e.call(t, httpJSON, "", &pb.VerifyEmailRequest{Token: tok}))
		before = e.rcvState(t)
		resend(u.authz()).wantErr(t, want{code: connect.CodeFailedPrecondition, msg: "verified already"})
		e.rcvUnchanged(t, before)

		// A pending new email is what is resent.
		moved, pw := e.email("moved"), password
		wantOK[*pb.UpdateMeResponse](t, e.call(t, httpJSON, u.authz(), &pb.UpdateMeRequest{Email: &moved, CurrentPassword: &pw}))
		for range 4 {
			if res := wantOK[*pb.ResendVerificationResponse](t, resend(u.authz())); res.GetEmail() != moved {
				t.Fatalf("resent to %q, want the pending %q", res.GetEmail(), moved)
			}
		}
		// The account's limit: 5 an hour.
		before = e.rcvState(t)
		resend(u.authz()).wantErr(t, want{code: connect.CodeResourceExhausted, msg: "verification emails"})
		e.rcvUnchanged(t, before)
		if n := len(e.rcvNoticesTo(t, accountnotice.KindVerifyEmail, moved)); n != 5 {
			t.Fatalf("%d verify_email notices to the pending address, want 5 (UpdateMe's and 4 resends)", n)
		}
	})
}

// ---- CloseAccount --------------------------------------------------------------

// CloseAccount checks the password as a login does, is refused while the
// account is a party to an uncaptured authorization, and then closes it:
// its tokens and keys stop at once, its email can register again, and it
// cannot be paid.
func TestCloseAccount(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st)
		adm := e.admin(t)
		m, c := e.merchant(t), e.customer(t)
		key, _ := e.apiKey(t, m, "shop")
		id := m.acct.GetId()
		closeAs := func(u user, pw string) result {
			t.Helper()
			return e.call(t, httpJSON, u.authz(), &pb.CloseAccountRequest{Password: pw})
		}

		before := e.rcvState(t)
		closeAs(m, "not the password").wantErr(t, want{code: connect.CodeUnauthenticated, msg: "password"})
		e.call(t, httpJSON, bearer(key), &pb.CloseAccountRequest{Password: password}).wantErr(t, want{code: connect.CodePermissionDenied})
		e.rcvUnchanged(t, before)
		// A wrong password counts as a failed login: the fifth locks the
		// email out (audited), even for the right password.
		for range 4 {
			closeAs(m, "still not it").wantErr(t, want{code: connect.CodeUnauthenticated})
		}
		closeAs(m, password).wantErr(t, want{code: connect.CodeResourceExhausted})
		e.call(t, httpJSON, "", &pb.LoginRequest{Email: m.email, Password: password}).wantErr(t, want{code: connect.CodeResourceExhausted})
		if evs := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{TargetId: id, Type: store.AuditLoginLocked}); len(evs) != 1 || evs[0].GetActorId() != id {
			t.Fatalf("login_locked rows %v, want one by the account itself", evs)
		}
		e.clock.Advance(time.Minute + time.Second)
		wantOK[*pb.GetMeResponse](t, e.me(t, httpJSON, m.authz()))

		// Money still moving keeps both parties open.
		pay := e.rcvAuthorization(t, m, c)
		before = e.rcvState(t)
		for _, u := range []user{m, c} {
			closeAs(u, password).wantErr(t, want{code: connect.CodeFailedPrecondition, msg: "1 uncaptured authorization (" + pay + ")"})
		}
		e.rcvUnchanged(t, before)
		e.rcvCancel(t, m, c, pay)

		hdr := http.Header{api.RequestIDHeader: {"close-req-42"}}
		r := e.rcvCall(t, m.authz(), hdr, &pb.CloseAccountRequest{Password: password})
		closed := wantOK[*pb.CloseAccountResponse](t, r).GetAccount()
		if closed.GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_CLOSED || closed.GetClosedAt() == nil || closed.GetId() != id {
			t.Fatalf("closed account %v", closed)
		}
		if !closed.GetClosedAt().AsTime().Equal(e.clock.Now()) {
			t.Errorf("closed_at %v, want %v", closed.GetClosedAt().AsTime(), e.clock.Now())
		}
		// Everything of it stops at once.
		e.me(t, httpJSON, m.authz()).wantErr(t, want{code: connect.CodeUnauthenticated})
		e.me(t, httpJSON, bearer(key)).wantErr(t, want{code: connect.CodeUnauthenticated})
		e.call(t, httpJSON, "", &pb.RefreshTokenRequest{RefreshToken: m.refresh}).wantErr(t, want{code: connect.CodeUnauthenticated})
		e.call(t, httpJSON, "", &pb.LoginRequest{Email: m.email, Password: password}).wantErr(t, want{code: connect.CodeUnauthenticated})
		// It cannot be paid, whoever asks.
		e.call(t, httpJSON, c.authz(), &pb.CreatePaymentRequest{MerchantId: id, Amount: 100, Currency: "USD", PaymentMethod: "pm_card_visa"}).
			wantErr(t, want{code: connect.CodeFailedPrecondition, msg: "closed"})
		// Its email can register again, as a new account.
		again := wantOK[*pb.RegisterResponse](t, e.call(t, httpJSON, "", &pb.RegisterRequest{Email: m.email, Password: password, Role: pb.Role_ROLE_MERCHANT}))
		if again.GetAccount().GetId() == id || again.GetAccount().GetEmail() != m.email {
			t.Fatalf("registered again %v", again.GetAccount())
		}
		e.login(t, m.email, password)

		got := wantOK[*pb.GetAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.GetAccountRequest{Id: id}))
		if got.GetAccount().GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_CLOSED || got.GetAccount().GetEmail() != m.email {
			t.Fatalf("the closed account as admins see it %v", got.GetAccount())
		}
		evs := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{TargetId: id, Type: store.AuditClosed})
		if len(evs) != 1 || evs[0].GetActorId() != id || evs[0].GetRequestId() != "close-req-42" || evs[0].GetClientIp() != "127.0.0.1" {
			t.Fatalf("account.closed rows %v", evs)
		}
		if ns := e.rcvNoticesTo(t, accountnotice.KindClosed, m.email); len(ns) != 1 || ns[0].AccountID != id {
			t.Fatalf("closed notices %v", ns)
		}
	})
}

// ---- RequireVerifiedMerchants --------------------------------------------------

// With RequireVerifiedMerchants, a merchant whose email is not verified
// cannot be paid (nor charge) until it verifies it.
func TestRequireVerifiedMerchants(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		f := &fakeTemporal{st: st}
		e := newEnvOn(t, st, withTemporal(f, 5*time.Second), func(d *api.Deps) { d.RequireVerifiedMerchants = true })
		m, c := e.merchant(t), e.customer(t)
		pay := &pb.CreatePaymentRequest{MerchantId: m.acct.GetId(), Amount: 1200, Currency: "USD", PaymentMethod: "pm_card_visa"}
		before := e.rcvState(t)
		e.call(t, httpJSON, c.authz(), pay).wantErr(t, want{code: connect.CodeFailedPrecondition, msg: "merchant_unverified"})
		e.call(t, httpJSON, m.authz(), &pb.CreatePaymentRequest{Amount: 1200, Currency: "USD", PaymentMethod: "pm_card_visa"}).
			wantErr(t, want{code: connect.CodeFailedPrecondition, msg: "merchant_unverified"})
		e.rcvUnchanged(t, before)
		if calls, _, _, _ := f.snapshot(); len(calls) != 0 {
			t.Fatalf("a refused payment reached Temporal: %v", calls)
		}

		tok := e.rcvIssue(t, m.acct.GetId(), accounttoken.PurposeVerifyEmail, m.email, 24*time.Hour)
		wantOK[*pb.VerifyEmailResponse](t, e.call(t, httpJSON, "", &pb.VerifyEmailRequest{Token: tok}))
		p := wantOK[*pb.CreatePaymentResponse](t, e.call(t, httpJSON, c.authz(), pay)).GetPayment()
		if p.GetMerchantId() != m.acct.GetId() || p.GetAmount() != 1200 {
			t.Fatalf("payment %v", p)
		}
	})
}

// Without the option, an unverified merchant is paid as before.
func TestUnverifiedMerchantsPaidByDefault(t *testing.T) {
	t.Parallel()
	e, _ := newPaymentsEnv(t, 5*time.Second, nil)
	m, c := e.merchant(t), e.customer(t)
	wantOK[*pb.CreatePaymentResponse](t, e.call(t, httpJSON, c.authz(),
		&pb.CreatePaymentRequest{MerchantId: m.acct.GetId(), Amount: 1200, Currency: "USD", PaymentMethod: "pm_card_visa"}))
}

// ---- the audit trail -----------------------------------------------------------

// Every security event and admin action leaves one row, found by target,
// type and actor, paged with tokens, shown to admins only, and holding no
// secret of the requests it records.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st)
		tick := func() { e.clock.Advance(time.Second) }
		adm := e.admin(t)
		c := e.customer(t)
		tick()
		m := e.merchant(t)
		id := m.acct.GetId()
		secrets := []string{password, adm.access, adm.refresh, c.access, c.refresh, m.access, m.refresh}
		tick()
		key, keyID := e.apiKey(t, m, "backend")
		secrets = append(secrets, key)
		tick()
		revokeHdr := http.Header{api.RequestIDHeader: {"revoke-key-7"}}
		wantOK[*pb.RevokeApiKeyResponse](t, e.rcvCall(t, m.authz(), revokeHdr, &pb.RevokeApiKeyRequest{Id: keyID}))
		tick()
		phone := e.login(t, m.email, password)
		secrets = append(secrets, phone.access, phone.refresh)
		sessions := wantOK[*pb.ListSessionsResponse](t, e.call(t, httpJSON, m.authz(), &pb.ListSessionsRequest{})).GetSessions()
		if len(sessions) != 2 {
			t.Fatalf("sessions %v", sessions)
		}
		tick()
		wantOK[*pb.RevokeSessionResponse](t, e.call(t, httpJSON, m.authz(), &pb.RevokeSessionRequest{Id: sessions[0].GetId()}))
		tick()
		const changed = "the-changed-passphrase-1"
		cp := wantOK[*pb.ChangePasswordResponse](t, e.call(t, httpJSON, m.authz(), &pb.ChangePasswordRequest{CurrentPassword: password, NewPassword: changed}))
		secrets = append(secrets, changed, cp.GetAccessToken(), cp.GetRefreshToken())
		m.access = cp.GetAccessToken()
		tick()
		wantOK[*pb.SuspendAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.SuspendAccountRequest{
			Id: id, Reason: pb.SuspensionReason_SUSPENSION_REASON_FRAUD, Note: "ring 4471"}))
		tick()
		wantOK[*pb.ReactivateAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.ReactivateAccountRequest{Id: id}))
		tick()
		const adminPw = "the-second-admins-passphrase"
		second := wantOK[*pb.CreateAdminResponse](t, e.call(t, httpJSON, adm.authz(), &pb.CreateAdminRequest{Email: e.email("ops"), Password: adminPw})).GetAccount()
		secrets = append(secrets, adminPw)
		tick()
		guesses := []string{"guess-one", "guess-two", "guess-three", "guess-four", "guess-five"}
		for _, g := range guesses {
			e.call(t, httpJSON, "", &pb.LoginRequest{Email: m.email, Password: g}).wantErr(t, want{code: connect.CodeUnauthenticated})
		}
		secrets = append(secrets, guesses...)
		tick()
		rst := e.rcvIssue(t, id, accounttoken.PurposeResetPassword, m.email, 30*time.Minute)
		const resetPw = "the-reset-passphrase-22"
		wantOK[*pb.ResetPasswordResponse](t, e.call(t, httpJSON, "", &pb.ResetPasswordRequest{Token: rst, NewPassword: resetPw}))
		secrets = append(secrets, rst, resetPw)

		// By target: every event of the merchant, newest first.
		all := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{TargetId: id})
		wantTypes := []string{
			store.AuditPasswordReset, store.AuditLoginLocked, store.AuditReactivated, store.AuditSuspended,
			store.AuditPasswordChanged, store.AuditSessionRevoked, store.AuditAPIKeyRevoked, store.AuditAPIKeyCreated,
			store.AuditRegistered,
		}
		if got := rcvTypes(all); !slices.Equal(got, wantTypes) {
			t.Fatalf("events of %s:\n got  %v\n want %v", id, got, wantTypes)
		}
		byType := map[string]*pb.AuditEvent{}
		for _, ev := range all {
			byType[ev.GetType()] = ev
			if ev.GetTargetId() != id || ev.GetRequestId() == "" || ev.GetClientIp() != "127.0.0.1" || !strings.HasPrefix(ev.GetId(), "aud_") {
				t.Errorf("row %v: want target %s, a request id and client 127.0.0.1", ev, id)
			}
		}
		for typ, actor := range map[string]string{
			store.AuditRegistered: "", store.AuditAPIKeyCreated: id, store.AuditAPIKeyRevoked: id, store.AuditSessionRevoked: id,
			store.AuditPasswordChanged: id, store.AuditSuspended: adm.acct.GetId(), store.AuditReactivated: adm.acct.GetId(),
			store.AuditLoginLocked: "", store.AuditPasswordReset: id,
		} {
			if got := byType[typ].GetActorId(); got != actor {
				t.Errorf("%s: actor %q, want %q", typ, got, actor)
			}
		}
		if ev := byType[store.AuditAPIKeyRevoked]; ev.GetRequestId() != "revoke-key-7" || ev.GetDetail()["api_key_id"] != keyID {
			t.Errorf("api_key.revoked row %v: want request revoke-key-7 and the key's id", ev)
		}
		if ev := byType[store.AuditSessionRevoked]; ev.GetDetail()["session_id"] != sessions[0].GetId() {
			t.Errorf("session.revoked row %v", ev)
		}
		if ev := byType[store.AuditSuspended]; ev.GetDetail()["reason"] != "fraud" || strings.Contains(protojson.Format(ev), "4471") {
			t.Errorf("account.suspended row %v: want the reason code and not the note", ev)
		}
		if ev := byType[store.AuditRegistered]; ev.GetDetail()["role"] != "merchant" {
			t.Errorf("account.registered row %v", ev)
		}

		// By type and by actor.
		sus := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{Type: store.AuditSuspended})
		if len(sus) != 1 || sus[0].GetId() != byType[store.AuditSuspended].GetId() {
			t.Fatalf("by type: %v", sus)
		}
		regs := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{Type: store.AuditRegistered})
		if got := rcvTypes(regs); len(got) != 2 || regs[0].GetTargetId() != id || regs[1].GetTargetId() != c.acct.GetId() {
			t.Fatalf("registrations %v, want the merchant's then the customer's", regs)
		}
		if got := rcvTypes(e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{ActorId: adm.acct.GetId()})); !slices.Equal(got,
			[]string{store.AuditAdminCreated, store.AuditReactivated, store.AuditSuspended}) {
			t.Fatalf("by the admin: %v", got)
		}
		if got := rcvTypes(e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{ActorId: id})); !slices.Equal(got,
			[]string{store.AuditPasswordReset, store.AuditPasswordChanged, store.AuditSessionRevoked, store.AuditAPIKeyRevoked, store.AuditAPIKeyCreated}) {
			t.Fatalf("by the merchant: %v", got)
		}
		created := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{TargetId: second.GetId()})
		if len(created) != 1 || created[0].GetType() != store.AuditAdminCreated || created[0].GetActorId() != adm.acct.GetId() {
			t.Fatalf("events of the new admin %v", created)
		}
		if got := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{TargetId: id, Type: store.AuditClosed}); len(got) != 0 {
			t.Fatalf("closed rows of an open account %v", got)
		}

		// Pages of two, in order, each row once.
		var paged []*pb.AuditEvent
		req := &pb.ListAuditEventsRequest{TargetId: id, PageSize: 2}
		for pages := 1; ; pages++ {
			res := wantOK[*pb.ListAuditEventsResponse](t, e.call(t, httpJSON, adm.authz(), req))
			if len(res.GetAuditEvents()) > 2 || pages > 5 {
				t.Fatalf("page %d has %d rows (page_size 2, 9 rows)", pages, len(res.GetAuditEvents()))
			}
			paged = append(paged, res.GetAuditEvents()...)
			if req.PageToken = res.GetNextPageToken(); req.PageToken == "" {
				if pages != 5 {
					t.Fatalf("%d pages, want 5", pages)
				}
				break
			}
			if pages == 1 {
				// A page token is bound to its filter.
				e.call(t, httpJSON, adm.authz(), &pb.ListAuditEventsRequest{TargetId: id, Type: store.AuditSuspended, PageSize: 2, PageToken: req.PageToken}).
					wantErr(t, want{code: connect.CodeInvalidArgument})
			}
		}
		if len(paged) != len(all) {
			t.Fatalf("paged %d rows, listed %d", len(paged), len(all))
		}
		for i := range all {
			if !proto.Equal(paged[i], all[i]) {
				t.Fatalf("row %d: paged %v, listed %v", i, paged[i], all[i])
			}
		}

		// Admins only, signed in as people.
		mkey, _ := e.apiKey(t, e.login(t, m.email, resetPw), "k")
		secrets = append(secrets, mkey)
		for name, authz := range map[string]string{"customer": c.authz(), "merchant": bearer(cp.GetAccessToken()), "API key": bearer(mkey)} {
			r := e.call(t, httpJSON, authz, &pb.ListAuditEventsRequest{})
			if r.code != connect.CodePermissionDenied {
				t.Errorf("%s: %v %q, want permission_denied", name, codeName(r.code), r.msg)
			}
		}
		e.call(t, httpJSON, "", &pb.ListAuditEventsRequest{}).wantErr(t, want{code: connect.CodeUnauthenticated})

		// No row holds a password, a token or a key, nor an email in its detail.
		every := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{})
		if len(every) < len(all)+3 {
			t.Fatalf("%d rows in all", len(every))
		}
		for _, ev := range every {
			js := protojson.Format(ev)
			for _, s := range secrets {
				if s != "" && strings.Contains(js, s) {
					t.Errorf("audit row %s holds a secret %q: %s", ev.GetId(), s, js)
				}
			}
			for k, v := range ev.GetDetail() {
				if strings.Contains(v, "@") || strings.Contains(k, "@") {
					t.Errorf("audit row %s holds an email in its detail: %s", ev.GetId(), js)
				}
			}
		}
	})
}

// ---- X-Request-Id --------------------------------------------------------------

// Every answer, success or error, names its request; a well-formed id of
// the client is kept, anything else replaced by the server's own.
func TestRequestIDHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.customer(t)
	idOf := func(r result) string {
		t.Helper()
		id := r.header.Get(api.RequestIDHeader)
		if id == "" {
			t.Fatalf("%s answer (code %v) has no %s", r.tr, codeName(r.code), api.RequestIDHeader)
		}
		return id
	}
	sent := func(id string) http.Header { return http.Header{api.RequestIDHeader: {id}} }

	// The server's own ids, on successes and on each kind of error: from
	// the handler, the validator and the authentication in front.
	seen := map[string]bool{}
	for name, r := range map[string]result{
		"success":             e.rcvCall(t, u.authz(), nil, &pb.GetMeRequest{}),
		"handler error":       e.rcvCall(t, "", nil, &pb.LoginRequest{Email: u.email, Password: "not it"}),
		"validation error":    e.rcvCall(t, "", nil, &pb.RegisterRequest{Email: "not an email", Password: password, Role: pb.Role_ROLE_CUSTOMER}),
		"unauthenticated":     e.rcvCall(t, "", nil, &pb.GetMeRequest{}),
		"permission denied":   e.rcvCall(t, u.authz(), nil, &pb.ListAuditEventsRequest{}),
		"not found (handler)": e.rcvCall(t, u.authz(), nil, &pb.GetPaymentRequest{Id: "pay_nothing"}),
	} {
		id := idOf(r)
		if !rcvServerID.MatchString(id) {
			t.Errorf("%s: server's request id %q", name, id)
		}
		if seen[id] {
			t.Errorf("%s: request id %q given twice", name, id)
		}
		seen[id] = true
	}
	// Through the generated Connect client, an error's metadata has it.
	r := e.call(t, connectJSON, "", &pb.LoginRequest{Email: u.email, Password: "not it either"})
	r.wantErr(t, want{code: connect.CodeUnauthenticated})
	if !rcvServerID.MatchString(idOf(r)) {
		t.Errorf("connect error's request id %q", idOf(r))
	}
	// Not an RPC at all.
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.url+"/no/such/path", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(api.RequestIDHeader, "path-check-1")
	res, err := e.h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := res.Header.Get(api.RequestIDHeader); got != "path-check-1" {
		t.Errorf("GET of an unknown path: request id %q, want the client's", got)
	}

	// A well-formed client id is echoed, on successes and errors alike.
	for _, good := range []string{"abc-123", "Trace.01:span_02-x", strings.Repeat("x", 128), "0"} {
		for name, r := range map[string]result{
			"success": e.rcvCall(t, u.authz(), sent(good), &pb.GetMeRequest{}),
			"error":   e.rcvCall(t, "", sent(good), &pb.GetMeRequest{}),
		} {
			if got := idOf(r); got != good {
				t.Errorf("%s with request id %q: answered %q", name, good, got)
			}
		}
	}
	// Anything else is replaced.
	for _, bad := range []string{"has spaces in it", strings.Repeat("y", 129), strings.Repeat("z", 200), "semi;colon", "quote\"d", "ünïcödé", "a/b", "<script>"} {
		for name, r := range map[string]result{
			"success": e.rcvCall(t, u.authz(), sent(bad), &pb.GetMeRequest{}),
			"error":   e.rcvCall(t, "", sent(bad), &pb.GetMeRequest{}),
		} {
			if got := idOf(r); got == bad || !rcvServerID.MatchString(got) {
				t.Errorf("%s with request id %q: answered %q, want a server id", name, bad, got)
			}
		}
	}
}

// ---- what review found -------------------------------------------------------

// A reset link mailed to the old address stops working once the login
// email moved: whoever still reads that mailbox cannot take the account back.
func TestResetLinkOfTheOldAddressDiesWithTheEmailChange(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st)
		u := e.customer(t)
		id, pw, moved := u.acct.GetId(), password, e.email("moved")
		oldLink := e.rcvIssue(t, id, accounttoken.PurposeResetPassword, u.email, 30*time.Minute)
		wantOK[*pb.UpdateMeResponse](t, e.call(t, httpJSON, u.authz(), &pb.UpdateMeRequest{Email: &moved, CurrentPassword: &pw}))
		vfy := e.rcvIssue(t, id, accounttoken.PurposeVerifyEmail, moved, 24*time.Hour)
		wantOK[*pb.VerifyEmailResponse](t, e.call(t, httpJSON, "", &pb.VerifyEmailRequest{Token: vfy}))
		before := e.rcvState(t)
		e.call(t, httpJSON, "", &pb.ResetPasswordRequest{Token: oldLink, NewPassword: "taking-it-back-now"}).
			wantErr(t, want{code: connect.CodeInvalidArgument, field: "token", msg: "newer"})
		e.rcvUnchanged(t, before)
		e.login(t, moved, password)
		// A reset token mailed to an address the account no longer has is
		// refused even if nothing superseded it (issued after the move).
		stray := e.rcvIssue(t, id, accounttoken.PurposeResetPassword, u.email, 30*time.Minute)
		e.call(t, httpJSON, "", &pb.ResetPasswordRequest{Token: stray, NewPassword: "taking-it-back-now"}).
			wantErr(t, want{code: connect.CodeInvalidArgument, field: "token"})
		e.login(t, moved, password)
	})
}

// The last active admin cannot close its account (as it cannot be
// suspended); with a second admin it can.
func TestCloseAccountKeepsAnAdmin(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st)
		adm := e.admin(t)
		before := e.rcvState(t)
		e.call(t, httpJSON, adm.authz(), &pb.CloseAccountRequest{Password: password}).
			wantErr(t, want{code: connect.CodeFailedPrecondition, msg: "last active admin"})
		e.rcvUnchanged(t, before)
		other := e.admin(t)
		closed := wantOK[*pb.CloseAccountResponse](t, e.call(t, httpJSON, adm.authz(), &pb.CloseAccountRequest{Password: password}))
		if closed.GetAccount().GetStatus() != pb.AccountStatus_ACCOUNT_STATUS_CLOSED {
			t.Fatalf("closed admin %v", closed.GetAccount())
		}
		e.call(t, httpJSON, other.authz(), &pb.CloseAccountRequest{Password: password}).
			wantErr(t, want{code: connect.CodeFailedPrecondition, msg: "last active admin"})
	})
}

// Of two letters of one purpose, the later request's link works whatever
// order they went out in: the letter of the earlier request, sent last,
// is refused as stale (and not sent) instead of superseding the newer link.
func TestTokensFollowTheOrderOfRequests(t *testing.T) {
	t.Parallel()
	rcvEachDB(t, func(t *testing.T, st *store.Store) {
		e := newEnvOn(t, st)
		u := e.customer(t)
		id := u.acct.GetId()
		now := e.clock.Now()
		issue := func(requested time.Time) (string, error) {
			secret, hash, err := auth.NewSecret("rst_")
			if err != nil {
				t.Fatal(err)
			}
			return secret, e.st.IssueAccountToken(ctxT(t), store.NewAccountToken{
				AccountID: id, Purpose: accounttoken.PurposeResetPassword, Email: u.email, Hash: hash,
				ExpiresAt: now.Add(30 * time.Minute), At: now, RequestedAt: requested,
			}, store.Records{})
		}
		later, err := issue(now.Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := issue(now.Add(-2 * time.Second)); !errors.Is(err, store.ErrStaleToken) {
			t.Fatalf("the earlier request's token: %v, want ErrStaleToken", err)
		}
		wantOK[*pb.ResetPasswordResponse](t, e.call(t, httpJSON, "", &pb.ResetPasswordRequest{Token: later, NewPassword: "the-later-request-won"}))
		e.login(t, u.email, "the-later-request-won")
	})
}

// Account RPCs honour Idempotency-Key as every mutating RPC does: a retried
// suspension under its key replays the first answer and writes one audit
// row, and the key with another request is refused.
func TestAccountRPCsHonourIdempotencyKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	adm := e.admin(t)
	m := e.merchant(t)
	hdr := http.Header{"Idempotency-Key": {"suspend-once"}}
	req := &pb.SuspendAccountRequest{Id: m.acct.GetId(), Reason: pb.SuspensionReason_SUSPENSION_REASON_FRAUD}
	first := e.rcvCall(t, adm.authz(), hdr, req)
	wantOK[*pb.SuspendAccountResponse](t, first)
	again := e.rcvCall(t, adm.authz(), hdr, req)
	wantOK[*pb.SuspendAccountResponse](t, again)
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the retry was not replayed: %v", again.header)
	}
	if evs := e.rcvAudit(t, adm, &pb.ListAuditEventsRequest{TargetId: m.acct.GetId(), Type: store.AuditSuspended}); len(evs) != 1 {
		t.Fatalf("suspension audit rows %v, want one", evs)
	}
	other := &pb.SuspendAccountRequest{Id: m.acct.GetId(), Reason: pb.SuspensionReason_SUSPENSION_REASON_OTHER}
	e.rcvCall(t, adm.authz(), hdr, other).wantErr(t, want{code: connect.CodeInvalidArgument, msg: "different request"})
}

// ListAuditEvents checks its id filters as every list does.
func TestListAuditEventsChecksIDFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	adm := e.admin(t)
	e.rcvCall(t, adm.authz(), nil, &pb.ListAuditEventsRequest{ActorId: "pay_123"}).
		wantErr(t, want{code: connect.CodeInvalidArgument, field: "actor_id"})
	e.rcvCall(t, adm.authz(), nil, &pb.ListAuditEventsRequest{TargetId: "we_123"}).
		wantErr(t, want{code: connect.CodeInvalidArgument, field: "target_id"})
}
