package e2e

// Attack table 2 of issue 12: broken object-level and function-level
// authorization. An owner (a merchant with payments, a refund, a dispute,
// transactions, a webhook endpoint with events and deliveries, an API key,
// a session, and a customer who paid it) is set up; then every RPC of
// payments.v1 that takes an object id or lists objects is called by
// accounts that are no party to those objects, by callers without
// credentials, and (for the functions a role or an API key may not use) by
// the owner's own side. Every row is refused with its code, or (for lists)
// answers without any of the owner's objects; a not_found is the very
// answer the caller gets about an object that does not exist; no answer
// carries an id, an amount or a text of the owner's; and the database is
// unchanged.

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/payments-platform/payments/ent/reconciliationcase"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/internal/store"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// atkRPC is the procedure path of a payments.v1 RPC.
func atkRPC(service, method string) string { return "/payments.v1." + service + "/" + method }

// atkProcedures are every RPC of payments.v1, from the generated
// descriptors (every file of the package registers itself on import), so a
// new RPC shows up here without anyone listing it.
func atkProcedures(t *testing.T) []string {
	t.Helper()
	// The generated files, named so that an import mistake shows.
	for _, fd := range []protoreflect.FileDescriptor{
		pb.File_payments_v1_auth_proto, pb.File_payments_v1_account_proto, pb.File_payments_v1_payment_proto,
		pb.File_payments_v1_refund_proto, pb.File_payments_v1_dispute_proto, pb.File_payments_v1_transaction_proto,
		pb.File_payments_v1_webhook_proto, pb.File_payments_v1_admin_proto,
	} {
		if fd.Services().Len() == 0 {
			t.Fatalf("%s declares no service", fd.Path())
		}
	}
	var out []string
	protoregistry.GlobalFiles.RangeFilesByPackage("payments.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				out = append(out, "/"+string(sd.FullName())+"/"+string(sd.Methods().Get(j).Name()))
			}
		}
		return true
	})
	slices.Sort(out)
	if len(out) < 50 {
		t.Fatalf("only %d procedures found in payments.v1: %v", len(out), out)
	}
	return out
}

// Callers, by their relation to the owner's objects.
const (
	callerAnonymous     = "anonymous"
	callerOtherCustomer = "another customer"
	callerOtherMerchant = "another merchant"
	callerOtherKey      = "another merchant's API key"
	callerOwner         = "the owner merchant"
	callerOwnerCustomer = "the owner's customer"
	callerOwnerKey      = "the owner's API key"
)

// atkOK marks a row whose answer is 200 (a list that must not show the
// owner's objects).
const atkOK = "ok"

// atkSpec is what the table says about one RPC: the requests aimed at the
// owner's objects and what each caller gets. Callers not named are not
// run, except anonymous, which every RPC that is not public gets:
// unauthenticated.
type atkSpec struct {
	// public RPCs need no credentials; reason says why they are outside
	// the table.
	public string
	// ownAccount: the RPC acts only on the caller's own account (no object
	// id of anyone else's); only callers that may not use it at all are run.
	ownAccount string
	bodies     []any
	want       map[string]string
}

// TestAttackBOLA: see the file comment.
func TestAttackBOLA(t *testing.T) {
	t.Parallel()
	e, db := attackEnv(t)

	// ---- the owner's objects ----
	owner, ownerCustomer := e.merchant(t), e.customer(t)
	otherMerchant, otherCustomer := e.merchant(t), e.customer(t)
	adm := e.admin(t)
	marker := func(what string) string {
		return "owner-secret-" + what + "-" + strings.ToLower(owner.ID[len(owner.ID)-6:])
	}

	ownerKeyRes := atkAPIKey(t, e, owner, marker("apikey"))
	ownerKey, ownerKeyID := ownerKeyRes.GetSecret(), ownerKeyRes.GetApiKey().GetId()
	otherKeyRes := atkAPIKey(t, e, otherMerchant, "other shop key")
	otherKey := otherKeyRes.GetSecret()
	// Two of the table's callers present these keys.
	db.useKeys(ownerKeyID, otherKeyRes.GetApiKey().GetId())

	ownerRcv, otherRcv := newReceiver(t), newReceiver(t)
	ownerEndpoint := e.endpoint(t, owner, ownerRcv, "*")
	e.endpoint(t, otherMerchant, otherRcv, "*")
	decodeOK(t, e.post(t, owner.Token, procUpdateEndpoint, map[string]any{"id": ownerEndpoint, "description": marker("endpoint")}),
		&pb.UpdateWebhookEndpointResponse{})

	paid := e.create(t, ownerCustomer, pay(owner, 7331, "USD", "pm_card_visa").set("description", marker("payment")))
	wantStatus(t, paid, stSucceeded)
	refund := e.post(t, owner.Token, procCreateRefund, map[string]any{
		"payment_id": paid.GetId(), "amount": 1234, "metadata": map[string]string{"note": marker("refund")},
	}).refund(t)
	held := e.create(t, ownerCustomer, pay(owner, 6113, "USD", "pm_card_visa").manual())
	wantStatus(t, held, stRequiresCapture)
	disputed := e.create(t, ownerCustomer, pay(owner, 5119, "USD", "pm_card_visa"))
	wantStatus(t, disputed, stSucceeded)
	dispute := e.post(t, ownerCustomer.Token, procOpenDispute, map[string]any{
		"payment_id": disputed.GetId(), "reason": "DISPUTE_REASON_PRODUCT_NOT_RECEIVED", "description": marker("dispute"),
	}).dispute(t)
	e.waitDispute(t, ownerCustomer, dispute.GetId(), "notified", func(d *pb.Dispute) bool { return len(d.GetTimeline()) >= 2 })
	// The other tenants' own objects, so that their lists are not empty.
	theirs := e.create(t, otherCustomer, pay(otherMerchant, 2000, "USD", "pm_card_visa"))
	wantStatus(t, theirs, stSucceeded)
	ownerRcv.waitFor(t, "payment.succeeded", "refund.succeeded", "dispute.opened")
	otherRcv.waitFor(t, "payment.succeeded")

	// An open reconciliation case about the owner's payment (recorded as
	// the payment's workflow records one), for the admins' RPCs.
	caseID := "rcn_" + strings.ToLower(paid.GetId()[len("pay_"):]) + "_atk"
	atkCheck(t, e.Store.RecordReconciliation(ctxT(t), store.ReconciliationCase{
		ID: caseID, PaymentID: paid.GetId(), Kind: reconciliationcase.KindUnexpectedCharge,
		PaymentStatus: "failed", GatewayStatus: "succeeded", Gateway: "sandbox", GatewayReference: "pi_atk_" + marker("case"),
		Amount: 8887, Currency: "USD", Action: "none", Details: marker("case"), At: time.Now(),
	}, nil))
	// The owner's session (a second login, with its refresh token).
	ownerLogin := e.loginAs(t, owner.Email, password)

	events := decodeOK(t, e.post(t, owner.Token, procListEvents, map[string]any{"page_size": 100}), &pb.ListEventsResponse{}).GetEvents()
	deliveries := decodeOK(t, e.post(t, owner.Token, procListDeliveries, map[string]any{"page_size": 100}), &pb.ListDeliveriesResponse{}).GetDeliveries()
	txns := decodeOK(t, e.post(t, owner.Token, procListTransactions, map[string]any{"page_size": 100}), &pb.ListTransactionsResponse{}).GetTransactions()
	sessions := decodeOK(t, e.post(t, owner.Token, atkRPC("AccountService", "ListSessions"), map[string]any{"page_size": 100}), &pb.ListSessionsResponse{}).GetSessions()
	if len(events) < 3 || len(deliveries) < 3 || len(txns) < 4 || len(sessions) < 2 {
		t.Fatalf("owner's objects: %d events, %d deliveries, %d transactions, %d sessions", len(events), len(deliveries), len(txns), len(sessions))
	}

	// What no answer to anyone else may hold.
	secrets := []string{owner.ID, ownerCustomer.ID, paid.GetId(), held.GetId(), disputed.GetId(), refund.GetId(), dispute.GetId(),
		ownerEndpoint, ownerKeyID, caseID, ownerLogin.GetRefreshToken(), "owner-secret-"}
	// Amounts as JSON carries them (int64 as strings), signed as the
	// history shows them too.
	for _, amount := range []string{"7331", "6113", "5119", "1234", "8887"} {
		secrets = append(secrets, `"`+amount+`"`, `"-`+amount+`"`)
	}
	for _, ev := range events {
		secrets = append(secrets, ev.GetId())
	}
	for _, d := range deliveries {
		secrets = append(secrets, d.GetId())
	}
	for _, tx := range txns {
		secrets = append(secrets, tx.GetId())
	}
	for _, s := range sessions {
		secrets = append(secrets, s.GetId())
	}
	event, delivery, txn, session := events[0].GetId(), deliveries[0].GetId(), txns[0].GetId(), sessions[0].GetId()
	otherEndpoint := decodeOK(t, e.post(t, otherMerchant.Token, procListEndpoints, map[string]any{}), &pb.ListWebhookEndpointsResponse{}).
		GetWebhookEndpoints()[0].GetId()

	// A nonexistent object of each kind the rows name: an outsider's
	// not_found for one of the owner's objects must be, word for word, the
	// answer to the same request about an object that does not exist, or
	// the difference tells the outsider that the object exists.
	ghostToken, _, err := auth.NewSecret(auth.RefreshTokenPrefix)
	atkCheck(t, err)
	ghosts := map[string]string{
		paid.GetId(): ids.New(ids.Payment), held.GetId(): ids.New(ids.Payment), disputed.GetId(): ids.New(ids.Payment),
		refund.GetId(): ids.New(ids.Refund), dispute.GetId(): ids.New(ids.Dispute), txn: ids.New(ids.Txn),
		ownerEndpoint: ids.New(ids.Endpoint), event: ids.New(ids.Event), session: ids.New(ids.Family),
		ownerKeyID: ids.New(ids.APIKey), ownerLogin.GetRefreshToken(): ghostToken,
	}
	for id, ghost := range ghosts {
		if kind, _, _ := strings.Cut(ghost, "_"); !strings.HasPrefix(id, kind+"_") {
			t.Fatalf("the nonexistent stand-in %q is not of the kind of %q", ghost, id)
		}
	}
	// ghostOf is body with each of the owner's objects it names replaced by
	// its nonexistent stand-in.
	ghostOf := func(t *testing.T, body any) map[string]any {
		t.Helper()
		m, _ := body.(map[string]any)
		out, n := maps.Clone(m), 0
		for k, v := range out {
			if s, ok := v.(string); ok && ghosts[s] != "" {
				out[k] = ghosts[s]
				n++
			}
		}
		if n == 0 {
			t.Fatalf("a not_found row names none of the owner's objects: %v", body)
		}
		return out
	}

	// Each caller's whole Authorization header ("" sends none).
	authzOf := map[string]string{
		callerAnonymous:     "",
		callerOtherCustomer: "Bearer " + otherCustomer.Token,
		callerOtherMerchant: "Bearer " + otherMerchant.Token,
		callerOtherKey:      "Bearer " + otherKey,
		callerOwner:         "Bearer " + owner.Token,
		callerOwnerCustomer: "Bearer " + ownerCustomer.Token,
		callerOwnerKey:      "Bearer " + ownerKey,
	}
	// The three outsiders get the same answers.
	outsiders := func(customer, merchant, key string) map[string]string {
		return map[string]string{callerOtherCustomer: customer, callerOtherMerchant: merchant, callerOtherKey: key}
	}
	// Admin-only: every other role, the owner's side included, is refused
	// before anything is read.
	adminOnly := map[string]string{
		callerOtherCustomer: "permission_denied", callerOtherMerchant: "permission_denied", callerOtherKey: "permission_denied",
		callerOwner: "permission_denied", callerOwnerCustomer: "permission_denied", callerOwnerKey: "permission_denied",
	}
	plus := func(m map[string]string, kv ...string) map[string]string {
		out := make(map[string]string, len(m)+len(kv)/2)
		maps.Copy(out, m)
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	const nf, pd, ia = "not_found", "permission_denied", "invalid_argument"
	one := func(b any) []any { return []any{b} }

	specs := map[string]atkSpec{
		// ---- AuthService ----
		atkRPC("AuthService", "Register"):             {public: "open: creates a new account, takes no object id"},
		atkRPC("AuthService", "Login"):                {public: "open: the credentials are the request"},
		atkRPC("AuthService", "RefreshToken"):         {public: "open: the refresh token is the credential (see TestAttackJWT)"},
		atkRPC("AuthService", "VerifyEmail"):          {public: "open: the mailed token is the credential"},
		atkRPC("AuthService", "RequestPasswordReset"): {public: "open: answers the same whether or not the email exists"},
		atkRPC("AuthService", "ResetPassword"):        {public: "open: the mailed token is the credential"},
		// Another account's refresh token: not its login to end.
		atkRPC("AuthService", "Logout"): {bodies: one(map[string]any{"refresh_token": ownerLogin.GetRefreshToken()}),
			want: plus(outsiders(nf, nf, pd), callerOwnerKey, pd)},

		// ---- AccountService ----
		atkRPC("AccountService", "GetMe"): {ownAccount: "answers the caller's own account", bodies: one(map[string]any{})},
		atkRPC("AccountService", "UpdateMe"): {ownAccount: "changes the caller's own profile",
			bodies: one(map[string]any{"display_name": "taken over"}), want: map[string]string{callerOwnerKey: pd}},
		atkRPC("AccountService", "CreateApiKey"): {ownAccount: "mints a key for the caller",
			bodies: one(map[string]any{"name": "minted by a key"}), want: map[string]string{callerOwnerKey: pd, callerOtherCustomer: pd, callerOwnerCustomer: pd}},
		atkRPC("AccountService", "ListApiKeys"): {bodies: one(map[string]any{"page_size": 100}),
			want: outsiders(pd, atkOK, atkOK)},
		atkRPC("AccountService", "RevokeApiKey"): {bodies: one(map[string]any{"id": ownerKeyID}),
			want: plus(outsiders(pd, nf, pd), callerOwnerKey, pd, callerOwnerCustomer, pd)},
		atkRPC("AccountService", "ChangePassword"): {ownAccount: "the caller's own password",
			bodies: one(map[string]any{"current_password": password, "new_password": "an attacker's new password"}), want: map[string]string{callerOwnerKey: pd}},
		atkRPC("AccountService", "ListSessions"): {bodies: one(map[string]any{"page_size": 100}),
			want: plus(outsiders(atkOK, atkOK, pd), callerOwnerKey, pd)},
		atkRPC("AccountService", "RevokeSession"): {bodies: one(map[string]any{"id": session}),
			want: plus(outsiders(nf, nf, pd), callerOwnerKey, pd)},
		atkRPC("AccountService", "ResendVerification"): {ownAccount: "mails the caller's own address",
			bodies: one(map[string]any{}), want: map[string]string{callerOwnerKey: pd}},
		atkRPC("AccountService", "CloseAccount"): {ownAccount: "closes the caller's own account",
			bodies: one(map[string]any{"password": password}), want: map[string]string{callerOwnerKey: pd}},

		// ---- PaymentService ----
		// Charging the owner's customer, or paying as it: the customer is
		// no one else's to charge or to speak for (API.md, CreatePayment).
		atkRPC("PaymentService", "CreatePayment"): {bodies: []any{
			payReq{"customer_id": ownerCustomer.ID, "amount": 4242, "currency": "USD", "payment_method": "pm_card_visa"},
			pay(owner, 4242, "USD", "pm_card_visa").set("customer_id", ownerCustomer.ID),
		}, want: outsiders(ia, ia, ia)},
		atkRPC("PaymentService", "GetPayment"): {bodies: []any{map[string]any{"id": paid.GetId()}, map[string]any{"id": held.GetId()}},
			want: outsiders(nf, nf, nf)},
		atkRPC("PaymentService", "ListPayments"): {bodies: []any{
			map[string]any{"page_size": 100}, map[string]any{"merchant_id": owner.ID}, map[string]any{"customer_id": ownerCustomer.ID},
		}, want: outsiders(atkOK, atkOK, atkOK)},
		atkRPC("PaymentService", "CapturePayment"): {bodies: one(map[string]any{"id": held.GetId()}),
			want: plus(outsiders(pd, nf, nf), callerOwnerCustomer, pd)},
		atkRPC("PaymentService", "CancelPayment"): {bodies: one(map[string]any{"id": held.GetId(), "reason": "fraudulent"}),
			want: plus(outsiders(nf, nf, nf), callerOwnerCustomer, pd)},

		// ---- RefundService ----
		atkRPC("RefundService", "CreateRefund"): {bodies: one(map[string]any{"payment_id": paid.GetId(), "amount": 100}),
			want: plus(outsiders(pd, nf, nf), callerOwnerCustomer, pd)},
		atkRPC("RefundService", "GetRefund"): {bodies: one(map[string]any{"id": refund.GetId()}), want: outsiders(nf, nf, nf)},
		atkRPC("RefundService", "ListRefunds"): {bodies: []any{map[string]any{"page_size": 100}, map[string]any{"payment_id": paid.GetId()}},
			want: outsiders(atkOK, atkOK, atkOK)},

		// ---- DisputeService ----
		atkRPC("DisputeService", "OpenDispute"): {bodies: one(map[string]any{"payment_id": paid.GetId(), "reason": "DISPUTE_REASON_FRAUDULENT"}),
			want: outsiders(nf, nf, nf)},
		atkRPC("DisputeService", "GetDispute"): {bodies: one(map[string]any{"id": dispute.GetId()}), want: outsiders(nf, nf, nf)},
		atkRPC("DisputeService", "ListDisputes"): {bodies: []any{
			map[string]any{"page_size": 100}, map[string]any{"payment_id": disputed.GetId()}, map[string]any{"merchant_id": owner.ID},
		}, want: outsiders(atkOK, atkOK, atkOK)},
		atkRPC("DisputeService", "SubmitEvidence"): {bodies: one(map[string]any{"dispute_id": dispute.GetId(),
			"evidence": map[string]any{"explanation": "planted"}, "submit": true}), want: outsiders(nf, nf, nf)},
		atkRPC("DisputeService", "AcceptDispute"): {bodies: one(map[string]any{"dispute_id": dispute.GetId()}),
			want: plus(outsiders(pd, nf, nf), callerOwnerCustomer, pd)},
		// Only the party that opened a dispute withdraws it: the customer
		// here; the merchant it was opened against may see it, not drop it.
		atkRPC("DisputeService", "WithdrawDispute"): {bodies: one(map[string]any{"dispute_id": dispute.GetId()}),
			want: plus(outsiders(nf, nf, nf), callerOwner, pd, callerOwnerKey, pd)},
		atkRPC("DisputeService", "ResolveDispute"): {bodies: one(map[string]any{"dispute_id": dispute.GetId(), "outcome": "DISPUTE_OUTCOME_WON", "note": "mine"}),
			want: adminOnly},

		// ---- TransactionService ----
		atkRPC("TransactionService", "ListTransactions"): {bodies: []any{
			map[string]any{"page_size": 100}, map[string]any{"merchant_id": owner.ID}, map[string]any{"customer_id": ownerCustomer.ID},
		}, want: outsiders(atkOK, atkOK, atkOK)},
		atkRPC("TransactionService", "GetTransaction"): {bodies: one(map[string]any{"id": txn}), want: outsiders(nf, nf, nf)},

		// ---- WebhookService (merchants and admins only) ----
		atkRPC("WebhookService", "CreateWebhookEndpoint"): {ownAccount: "creates an endpoint of the caller's own",
			bodies: one(map[string]any{"url": ownerRcv.srv.URL + "/stolen", "enabled_events": []string{"*"}}),
			want:   map[string]string{callerOtherCustomer: pd, callerOwnerCustomer: pd}},
		atkRPC("WebhookService", "GetWebhookEndpoint"): {bodies: one(map[string]any{"id": ownerEndpoint}), want: outsiders(pd, nf, nf)},
		atkRPC("WebhookService", "ListWebhookEndpoints"): {bodies: one(map[string]any{"page_size": 100}),
			want: plus(outsiders(pd, atkOK, atkOK), callerOwnerCustomer, pd)},
		atkRPC("WebhookService", "UpdateWebhookEndpoint"): {bodies: []any{
			map[string]any{"id": ownerEndpoint, "disabled": true},
			map[string]any{"id": ownerEndpoint, "url": otherRcv.srv.URL + "/hijacked"},
		}, want: plus(outsiders(pd, nf, nf), callerOwnerCustomer, pd)},
		atkRPC("WebhookService", "DeleteWebhookEndpoint"): {bodies: one(map[string]any{"id": ownerEndpoint}),
			want: plus(outsiders(pd, nf, nf), callerOwnerCustomer, pd)},
		atkRPC("WebhookService", "RotateWebhookSecret"): {bodies: one(map[string]any{"id": ownerEndpoint, "previous_secret_overlap": "3600s"}),
			want: plus(outsiders(pd, nf, nf), callerOwnerCustomer, pd)},
		atkRPC("WebhookService", "ListEvents"): {bodies: []any{map[string]any{"page_size": 100}, map[string]any{"object_id": paid.GetId()}},
			want: plus(outsiders(pd, atkOK, atkOK), callerOwnerCustomer, pd)},
		atkRPC("WebhookService", "GetEvent"): {bodies: one(map[string]any{"id": event}),
			want: plus(outsiders(pd, nf, nf), callerOwnerCustomer, pd)},
		atkRPC("WebhookService", "ListDeliveries"): {bodies: []any{
			map[string]any{"page_size": 100}, map[string]any{"event_id": event}, map[string]any{"endpoint_id": ownerEndpoint},
		}, want: plus(outsiders(pd, atkOK, atkOK), callerOwnerCustomer, pd)},
		// The owner's event to its endpoint, to every endpoint of the
		// caller, and to the caller's own endpoint.
		atkRPC("WebhookService", "RedeliverEvent"): {bodies: []any{
			map[string]any{"event_id": event, "endpoint_id": ownerEndpoint},
			map[string]any{"event_id": event},
			map[string]any{"event_id": event, "endpoint_id": otherEndpoint},
		}, want: plus(outsiders(pd, nf, nf), callerOwnerCustomer, pd)},

		// ---- AdminService (admins, signed in as people) ----
		atkRPC("AdminService", "ListReconciliationCases"): {bodies: []any{map[string]any{}, map[string]any{"payment_id": paid.GetId()}}, want: adminOnly},
		atkRPC("AdminService", "ResolveReconciliationCase"): {bodies: one(map[string]any{"id": caseID, "note": "closed by an intruder"}),
			want: adminOnly},
		atkRPC("AdminService", "CreateAdmin"): {bodies: one(map[string]any{"email": "intruder-admin@example.test", "password": password}),
			want: adminOnly},
		atkRPC("AdminService", "ListAccounts"): {bodies: []any{map[string]any{}, map[string]any{"email_prefix": "merchant"}}, want: adminOnly},
		atkRPC("AdminService", "GetAccount"): {bodies: []any{map[string]any{"id": owner.ID}, map[string]any{"id": otherMerchant.ID}},
			want: adminOnly},
		atkRPC("AdminService", "SuspendAccount"): {bodies: one(map[string]any{"id": owner.ID, "reason": "SUSPENSION_REASON_FRAUD", "note": "x"}),
			want: adminOnly},
		atkRPC("AdminService", "ReactivateAccount"): {bodies: one(map[string]any{"id": owner.ID}), want: adminOnly},
		atkRPC("AdminService", "ListAuditEvents"):   {bodies: []any{map[string]any{}, map[string]any{"target_id": owner.ID}}, want: adminOnly},
	}

	// Every RPC of the protos is in the table, and the table names no RPC
	// that does not exist.
	procs := atkProcedures(t)
	for _, p := range procs {
		if _, ok := specs[p]; !ok {
			t.Errorf("RPC %s is not covered by the BOLA/BFLA table: add its rows (or say why it is public)", p)
		}
	}
	for p, spec := range specs {
		if !slices.Contains(procs, p) {
			t.Errorf("the table names %s, which is no RPC of payments.v1", p)
		}
		// An RPC about objects is tried by every outsider.
		if spec.public == "" && spec.ownAccount == "" {
			for _, who := range []string{callerOtherCustomer, callerOtherMerchant, callerOtherKey} {
				if _, ok := spec.want[who]; !ok || len(spec.bodies) == 0 {
					t.Errorf("%s: no row for %s", p, who)
				}
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The admin is the control: it sees the owner's objects, so a table
	// that reached none of them (a typo in an id) would not pass.
	for _, ctl := range []struct {
		proc string
		body any
		want string
	}{
		{procGetPayment, map[string]any{"id": paid.GetId()}, paid.GetId()},
		{procGetRefund, map[string]any{"id": refund.GetId()}, refund.GetId()},
		{procGetDispute, map[string]any{"id": dispute.GetId()}, dispute.GetId()},
		{procGetTransaction, map[string]any{"id": txn}, txn},
		{procGetEndpoint, map[string]any{"id": ownerEndpoint}, ownerEndpoint},
		{procGetEvent, map[string]any{"id": event}, event},
		{procListDeliveries, map[string]any{"event_id": event}, delivery},
		{procListReconciliationCases, map[string]any{"payment_id": paid.GetId()}, caseID},
	} {
		r := e.post(t, adm.Token, ctl.proc, ctl.body)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), ctl.want) {
			t.Fatalf("control: the admin's %s does not show %s: %s", ctl.proc, ctl.want, r)
		}
	}
	// And the owner lists its own key and sessions (the lists above are
	// compared against what is there).
	if r := e.post(t, owner.Token, atkRPC("AccountService", "ListApiKeys"), map[string]any{}); !strings.Contains(string(r.body), ownerKeyID) {
		t.Fatalf("control: the owner's ListApiKeys lacks its key: %s", r)
	}

	db.quiet(t)
	rows, exempt, ghosted := 0, 0, 0
	for _, proc := range procs {
		spec := specs[proc]
		if spec.public != "" {
			exempt++
			continue
		}
		want := plus(spec.want, callerAnonymous, "unauthenticated")
		for _, who := range slices.Sorted(maps.Keys(want)) {
			authz, code := authzOf[who], want[who]
			for i, body := range spec.bodies {
				rows++
				name := fmt.Sprintf("%s/%s/%d", proc[strings.LastIndex(proc, "/")+1:], who, i)
				ok := t.Run(name, func(t *testing.T) {
					r := db.refusedUnchanged(t, func() reply { return atkPostAuthz(t, e, authz, proc, body) })
					if s := findAny(string(r.body), secrets); s != "" {
						t.Errorf("the answer to %s carries the owner's %q: %s", who, s, r)
					}
					switch {
					case code == atkOK && r.status != http.StatusOK:
						t.Errorf("want 200 without the owner's objects, got %s", r)
					case code != atkOK && r.code != code:
						t.Errorf("want %s, got %s", code, r)
					}
					if code == nf {
						ghosted++
						ghost := db.refusedUnchanged(t, func() reply { return atkPostAuthz(t, e, authz, proc, ghostOf(t, body)) })
						if ghost.status != r.status || !bytes.Equal(ghost.body, r.body) {
							t.Errorf("not_found tells the owner's object from a nonexistent one:\n  the owner's: %s\n  nonexistent: %s", r, ghost)
						}
					}
				})
				if !ok {
					db.quiet(t) // a failed row must not leave its writes to the next
				}
			}
		}
	}
	t.Logf("BOLA/BFLA table: %d procedures, %d rows (%d not_found answers compared with a nonexistent object's), %d public procedures outside the table",
		len(procs), rows, ghosted, exempt)

	// The owner's objects are as they were, for the owner.
	if got := e.get(t, owner, held.GetId()); got.GetStatus().String() != stRequiresCapture {
		t.Fatalf("the held payment is now %s", got.GetStatus())
	}
	if r := e.post(t, owner.Token, procGetEndpoint, map[string]any{"id": ownerEndpoint}); r.status != http.StatusOK ||
		!strings.Contains(string(r.body), "WEBHOOK_ENDPOINT_STATUS_ENABLED") {
		t.Fatalf("the owner's endpoint changed: %s", r)
	}
}
