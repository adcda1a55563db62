package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	"github.com/payments-platform/payments/api"
	"github.com/payments-platform/payments/internal/auth"
	"github.com/payments-platform/payments/internal/devserver"
	"github.com/payments-platform/payments/internal/gateway"
	"github.com/payments-platform/payments/internal/gateway/sandbox"
	"github.com/payments-platform/payments/internal/platform"
	"github.com/payments-platform/payments/internal/testenv"
	pb "github.com/payments-platform/payments/proto/payments/v1"
)

// restartEnv is a platform whose worker the test stops and starts again.
// testenv.Start keeps its worker to itself (only its cleanup stops it), so
// this builds the same platform (a Temporal dev server, the sandbox behind
// a refundGateway and the harness's countingGateway, the worker, the API
// with the bounded wait given) and keeps the worker.
type restartEnv struct {
	*E
	refunds *refundGateway
	wopts   platform.WorkerOptions

	mu sync.Mutex
	w  worker.Worker
}

func newRestartEnv(t *testing.T, paymentWait time.Duration) *restartEnv {
	t.Helper()
	ctx := context.Background()
	st := newSQLiteStore(t)
	logs := &testenv.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	bin, err := devserver.Find()
	if err != nil {
		t.Fatalf("integration tests need the Temporal CLI: %v", err)
	}
	var srv *devserver.Server
	for attempt := 1; ; attempt++ {
		srv, err = devserver.Start(ctx, devserver.Options{
			Binary: bin, Address: "127.0.0.1:0", SearchAttributes: platform.SearchAttributeTypes(), Logger: log,
			DynamicConfig: devserver.SingleWorkerConfig,
		})
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("start the Temporal dev server: %v", err)
		}
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Stop(stopCtx)
	})
	tc, err := client.DialContext(ctx, client.Options{HostPort: srv.Address(), Namespace: "default", Logger: sdklog.NewStructuredLogger(log)})
	if err != nil {
		t.Fatalf("dial Temporal: %v", err)
	}
	t.Cleanup(tc.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	secretBytes := make([]byte, 24)
	_, _ = rand.Read(secretBytes)
	secret := "whsec_" + hex.EncodeToString(secretBytes)
	taskQueue := "payments-" + strings.ToLower(hex.EncodeToString(secretBytes[:4]))
	sbx, err := sandbox.New(sandbox.Options{State: st, PublicURL: base, WebhookSecret: secret, Logger: log})
	if err != nil {
		t.Fatalf("sandbox gateway: %v", err)
	}
	refunds := &refundGateway{Gateway: sbx, reached: make(chan gateway.RefundResult, 16)}
	cg := &countingGateway{Gateway: refunds}
	re := &restartEnv{refunds: refunds, wopts: platform.WorkerOptions{
		Namespace: "default", TaskQueue: taskQueue, Store: st, Gateway: cg, Logger: log,
	}}
	re.E = &E{gw: cg, hc: testenv.HTTPClient(), logs: logs}
	re.startWorker(t, tc)
	t.Cleanup(func() {
		re.mu.Lock()
		defer re.mu.Unlock()
		if re.w != nil {
			re.w.Stop()
		}
	})

	key := make([]byte, 32)
	_, _ = rand.Read(key)
	uiURL := "http://127.0.0.1:8233"
	server := api.New(api.Deps{
		Store:               st,
		Tokens:              auth.NewTokens(key, nil, "paymentsd", "payments-api", 15*time.Minute, nil),
		Logger:              log,
		PasswordParams:      auth.PasswordParams{MemoryKiB: 1024, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		Temporal:            tc,
		TaskQueue:           taskQueue,
		TemporalUIURL:       uiURL,
		TemporalNamespace:   "default",
		GatewayName:         sbx.Name(),
		PublicURL:           base,
		PaymentWait:         paymentWait,
		StripeWebhookSecret: secret,
		ShowWorkflowURLs:    true,
		Sandbox:             sbx.Handler(),
		Checks:              map[string]func(context.Context) error{"database": st.Ping},
	})
	hs := httptest.NewUnstartedServer(server.Handler())
	_ = hs.Listener.Close()
	hs.Listener = ln
	hs.EnableHTTP2 = true
	hs.Start()
	t.Cleanup(hs.Close)
	re.Env = &testenv.Env{URL: base, Store: st, Temporal: tc, Namespace: "default", TaskQueue: taskQueue,
		WebhookSecret: secret, UIURL: uiURL, Server: server}
	t.Cleanup(func() { re.checkLedger(t) })
	return re
}

func (re *restartEnv) startWorker(t *testing.T, tc client.Client) {
	t.Helper()
	re.mu.Lock()
	defer re.mu.Unlock()
	if re.w != nil {
		t.Fatal("the worker runs already")
	}
	w, err := platform.StartWorker(context.Background(), tc, re.wopts)
	if err != nil {
		t.Fatalf("start the worker: %v", err)
	}
	re.w = w
}

func (re *restartEnv) stopWorker(t *testing.T) {
	t.Helper()
	re.mu.Lock()
	defer re.mu.Unlock()
	if re.w == nil {
		t.Fatal("no worker runs")
	}
	re.w.Stop()
	re.w = nil
}

var refundIDPattern = regexp.MustCompile(`re_[0-9a-z]{26}`)

// TestRefundWorkerRestartMidRefund: the gateway makes a refund but its
// answer is lost while the worker stops; CreateRefund has answered PENDING
// after the bounded wait, with the amount already taken from the balance.
// A new worker finishes the refund with the same gateway key: SUCCEEDED,
// with the reference of the refund the gateway made, exactly one refund at
// the gateway (the rest of the payment is still refundable there).
func TestRefundWorkerRestartMidRefund(t *testing.T) {
	t.Parallel()
	const wait = 2 * time.Second
	re := newRestartEnv(t, wait)
	m, c := re.merchant(t), re.customer(t)
	p := re.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
	wantStatus(t, p, stSucceeded)

	re.refunds.setHold(true)
	began := time.Now()
	r := re.refundR(t, m, refundBody(p.GetId(), 400)).refund(t)
	took := time.Since(began)
	if r.GetStatus() != pb.RefundStatus_REFUND_STATUS_PENDING || r.GetAmount() != 400 || r.GetGatewayReference() != "" {
		t.Fatalf("CreateRefund while the gateway's answer is held: %v, want PENDING 400 without a reference", r)
	}
	if took < wait {
		t.Fatalf("CreateRefund answered PENDING after %v, before the bounded wait of %v", took, wait)
	}
	var made gateway.RefundResult
	select {
	case made = <-re.refunds.reached:
	case <-time.After(waitFor):
		t.Fatalf("the refund never reached the gateway")
	}
	re.stopWorker(t)
	// The amount is held for the pending refund.
	re.wantRefunded(t, m, p.GetId(), 400, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
	if got := re.getRefundR(t, m, r.GetId()).refund(t); got.GetStatus() != pb.RefundStatus_REFUND_STATUS_PENDING {
		t.Fatalf("with the worker stopped the refund is %s", got.GetStatus())
	}

	re.refunds.setHold(false)
	re.startWorker(t, re.Temporal)
	done := re.waitRefund(t, m, r.GetId(), pb.RefundStatus_REFUND_STATUS_SUCCEEDED)
	if done.GetAmount() != 400 || done.GetGatewayReference() != made.Reference {
		t.Fatalf("after the restart: %v, want 400 with the gateway's reference %s", done, made.Reference)
	}
	requests, refunds, calls := re.refunds.counts()
	if requests != 1 || refunds != 1 || calls < 2 {
		t.Fatalf("gateway: %d refund requests, %d refunds made, %d calls; want 1, 1 and at least 2 calls", requests, refunds, calls)
	}
	// The gateway refunded 400 once: the remaining 600 is still there to refund.
	rest := re.refundOK(t, m, p.GetId(), 0, 600)
	if rest.GetGatewayReference() == made.Reference {
		t.Fatalf("the second refund has the first one's reference")
	}
	re.wantRefunded(t, m, p.GetId(), 1000, pb.PaymentRefundState_PAYMENT_REFUND_STATE_REFUNDED)
	if b := re.balance(t, "merchant_balance:"+m.ID, "USD"); b != 0 {
		t.Fatalf("merchant balance %d after refunding everything, want 0", b)
	}
	re.checkLedger(t)
}

// TestRefundWithWorkerDown: with no worker at all, a CreateRefund with a
// deadline answers unavailable naming the refund that may exist (there is
// no row to answer PENDING with: the workflow stores it); GetRefund finds
// nothing until a worker starts, and then the refund succeeds, made once.
func TestRefundWithWorkerDown(t *testing.T) {
	t.Parallel()
	const wait = time.Second
	re := newRestartEnv(t, wait)
	m, c := re.merchant(t), re.customer(t)
	p := re.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
	re.stopWorker(t)

	began := time.Now()
	r := re.refundR(t, m, refundBody(p.GetId(), 300), "Connect-Timeout-Ms", "4000")
	took := time.Since(began)
	wantCode(t, r, "unavailable")
	if took > 6*time.Second {
		t.Fatalf("CreateRefund answered after %v with a 4 s deadline", took)
	}
	id := refundIDPattern.FindString(r.msg)
	if id == "" || !strings.Contains(r.msg, "GetRefund") {
		t.Fatalf("unavailable without the refund's id: %q", r.msg)
	}
	if info := errorInfo(t, r); info.GetReason() != api.ReasonRefundMayExist || info.GetMetadata()["refund_id"] != id {
		t.Fatalf("ErrorInfo %v, want %s with refund_id %s", info, api.ReasonRefundMayExist, id)
	}
	wantCode(t, re.getRefundR(t, m, id), "not_found")
	re.wantRefunded(t, m, p.GetId(), 0, pb.PaymentRefundState_PAYMENT_REFUND_STATE_NONE)

	re.startWorker(t, re.Temporal)
	done := re.waitRefund(t, m, id, pb.RefundStatus_REFUND_STATUS_SUCCEEDED)
	if done.GetAmount() != 300 || done.GetPaymentId() != p.GetId() {
		t.Fatalf("the refund after the worker started: %v", done)
	}
	if requests, refunds, _ := re.refunds.counts(); requests != 1 || refunds != 1 {
		t.Fatalf("gateway: %d refund requests, %d refunds made; want 1, 1", requests, refunds)
	}
	re.wantRefunded(t, m, p.GetId(), 300, pb.PaymentRefundState_PAYMENT_REFUND_STATE_PARTIALLY_REFUNDED)
	if got := re.refundIDsListed(t, m, map[string]any{"payment_id": p.GetId()}); len(got) != 1 || got[0] != id {
		t.Fatalf("refunds listed %v, want [%s]", got, id)
	}
}

// TestRefundWorkerDownAnswersWithinTheBoundedWait: CreateRefund "answers
// once the gateway has, or after the bounded wait with the refund pending"
// (its doc comment in api/refund_service.go); a client that sends no
// deadline should not wait for the worker to come back. Today the API waits
// for the refund's row, which only the workflow writes, until the client
// gives up (CreatePayment behaves the same).
func TestRefundWorkerDownAnswersWithinTheBoundedWait(t *testing.T) {
	t.Parallel()
	const wait = time.Second
	re := newRestartEnv(t, wait)
	m, c := re.merchant(t), re.customer(t)
	p := re.create(t, c, pay(m, 1000, "USD", "pm_card_visa"))
	re.stopWorker(t)

	ctx, cancel := context.WithTimeout(ctxT(t), wait+10*time.Second)
	defer cancel()
	began := time.Now()
	r := re.send(ctx, m.Token, procCreateRefund, refundBody(p.GetId(), 300))
	took := time.Since(began)
	// Let the refund the request started finish before the env stops.
	re.startWorker(t, re.Temporal)
	if r.err != nil {
		t.Fatalf("CreateRefund without a client deadline gave no answer in %v while the worker was down (bounded wait %v): %v",
			took.Round(time.Millisecond), wait, r.err)
	}
	if r.status == http.StatusOK {
		if got := r.refund(t); got.GetStatus() != pb.RefundStatus_REFUND_STATUS_PENDING {
			t.Fatalf("answer %v, want PENDING", got)
		}
	} else {
		wantCode(t, r, "unavailable")
	}
}

// errorInfo decodes the google.rpc.ErrorInfo detail of an error answer.
func errorInfo(t *testing.T, r reply) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range r.details {
		if d.Type != "google.rpc.ErrorInfo" {
			continue
		}
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
		if err != nil {
			t.Fatalf("ErrorInfo is not base64: %v", err)
		}
		var info errdetails.ErrorInfo
		if err := proto.Unmarshal(raw, &info); err != nil {
			t.Fatalf("ErrorInfo: %v", err)
		}
		return &info
	}
	t.Fatalf("no ErrorInfo in %s", r)
	return nil
}
