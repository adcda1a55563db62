package notify_test

// The recorder of the histories replay_test.go replays. It runs the notify
// workflows, as the platform's worker registers them, on a real Temporal
// dev server (bin/temporal, or PAYMENTS_TEMPORAL_CLI) with the activities
// replaced by scripted ones, and writes each history to
// testdata/<version>/<name>.json. It runs only with
// PAYMENTS_RECORD_HISTORIES=1, the variable the end-to-end tests record the
// other workflows' histories with:
//
//	PAYMENTS_RECORD_HISTORIES=1 go test ./workflows/notify -run TestRecordHistories -count=1 -v
//
// The e2e tests cannot record these: a delivery that runs out of the
// schedule takes three days of wall time on a dev server, which has no
// time skipping. So the recorder runs the exhausted delivery with the
// schedule's waits shortened to one second each (same number of attempts
// and of timers, all of them non-zero): the replayer matches a timer by
// its id, not its duration, and an activity by its id and type, not its
// input, so that history is the one the real schedule makes, command for
// command. The other histories run on the real schedule (the
// retried delivery waits its real 5 s and 5 min).
//
// Histories of a version are never re-recorded once it shipped: a change
// of the workflows' logic goes behind workflow.GetVersion and records a
// folder of its own (point recordVersion at it first).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/payments-platform/payments/activities"
	"github.com/payments-platform/payments/internal/devserver"
	"github.com/payments-platform/payments/workflows/notify"
)

const (
	recordEnv     = "PAYMENTS_RECORD_HISTORIES"
	recordVersion = "v1"
	recordQueue   = "notify-record"
)

// recording is one history to record.
type recording struct {
	name  string
	id    string
	start func(ctx context.Context, c client.Client, id string) (client.WorkflowRun, error)
	// shortSchedule runs it with one-second waits (see above).
	shortSchedule bool
}

// scripted answers of the recorder's activities, by workflow id.
type script struct {
	mu     sync.Mutex
	emails map[string]int // calls so far
}

func (s *script) deliver(ctx context.Context, in activities.DeliverInput) (activities.DeliverOutput, error) {
	switch in.WorkflowID {
	case notify.DeliveryWorkflowID("evt_rec_retried", "we_rec"): // fails twice, then succeeds
		if in.Attempt <= 2 {
			return retryLater(), nil
		}
		return succeeded(), nil
	case notify.DeliveryWorkflowID("evt_rec_exhausted", "we_rec"): // never succeeds
		return retryLater(), nil
	}
	return succeeded(), nil
}

func (s *script) sendEmails(ctx context.Context, eventID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emails[eventID]++
	if s.emails[eventID] == 1 && activity.GetInfo(ctx).Attempt == 1 {
		return errors.New("smtp: 421 try again later")
	}
	return nil
}

// sendAccountEmail fails its first try like sendEmails.
func (s *script) sendAccountEmail(ctx context.Context, noticeID string) error {
	return s.sendEmails(ctx, noticeID)
}

func TestRecordHistories(t *testing.T) {
	if os.Getenv(recordEnv) != "1" {
		t.Skip("records histories only with " + recordEnv + "=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin, err := devserver.Find()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := devserver.Start(ctx, devserver.Options{Binary: bin, Address: "127.0.0.1:0", DynamicConfig: devserver.SingleWorkerConfig})
	if err != nil {
		t.Fatalf("start the Temporal dev server: %v", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Stop(stopCtx)
	}()
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.Address(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	startDelivery := func(in notify.DeliveryInput) func(context.Context, client.Client, string) (client.WorkflowRun, error) {
		return func(ctx context.Context, c client.Client, id string) (client.WorkflowRun, error) {
			return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: recordQueue}, notify.DeliveryWorkflowName, in)
		}
	}
	redeliveryID := notify.RedeliveryWorkflowID("evt_rec_redelivered", "we_rec", "01kb0000000000000000000000")
	firstAt := time.Now().UTC()
	recs := []recording{
		{name: "delivery_exhausted", id: notify.DeliveryWorkflowID("evt_rec_exhausted", "we_rec"), shortSchedule: true,
			start: startDelivery(notify.DeliveryInput{EventID: "evt_rec_exhausted", EndpointID: "we_rec"})},
		{name: "delivery_retried_succeeded", id: notify.DeliveryWorkflowID("evt_rec_retried", "we_rec"),
			start: startDelivery(notify.DeliveryInput{EventID: "evt_rec_retried", EndpointID: "we_rec"})},
		{name: "redelivery_succeeded", id: redeliveryID,
			start: startDelivery(notify.DeliveryInput{EventID: "evt_rec_redelivered", EndpointID: "we_rec",
				FirstDeliveryID: notify.DeliveryID(redeliveryID, 1, firstAt), FirstAt: firstAt})},
		{name: "email_retried", id: notify.EmailWorkflowID("evt_rec_email"),
			start: func(ctx context.Context, c client.Client, id string) (client.WorkflowRun, error) {
				return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: recordQueue}, notify.EmailWorkflowName, "evt_rec_email")
			}},
		// Added with the account emails (the workflow's first version):
		// record it alone with -run TestRecordHistories/account_email_retried.
		{name: "account_email_retried", id: notify.AccountEmailWorkflowID("ntc_rec_account"),
			start: func(ctx context.Context, c client.Client, id string) (client.WorkflowRun, error) {
				return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: recordQueue}, notify.AccountEmailWorkflowName, "ntc_rec_account")
			}},
	}
	s := &script{emails: map[string]int{}}
	for _, r := range recs {
		t.Run(r.name, func(t *testing.T) {
			// A worker per recording, stopped before the schedule is
			// restored, so no workflow reads it meanwhile.
			if r.shortSchedule {
				full := notify.Schedule
				short := make([]time.Duration, len(full))
				for i := 1; i < len(short); i++ {
					short[i] = time.Second
				}
				notify.Schedule = short
				defer func() { notify.Schedule = full }()
			}
			w := worker.New(c, recordQueue, worker.Options{})
			w.RegisterWorkflowWithOptions(notify.DeliveryWorkflow, workflow.RegisterOptions{Name: notify.DeliveryWorkflowName})
			w.RegisterWorkflowWithOptions(notify.EmailWorkflow, workflow.RegisterOptions{Name: notify.EmailWorkflowName})
			w.RegisterActivityWithOptions(s.deliver, activity.RegisterOptions{Name: "DeliverWebhook"})
			w.RegisterActivityWithOptions(s.sendEmails, activity.RegisterOptions{Name: "SendEventEmails"})
			w.RegisterWorkflowWithOptions(notify.AccountEmailWorkflow, workflow.RegisterOptions{Name: notify.AccountEmailWorkflowName})
			w.RegisterActivityWithOptions(s.sendAccountEmail, activity.RegisterOptions{Name: "SendAccountEmail"})
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			defer w.Stop()

			run, err := r.start(ctx, c, r.id)
			if err != nil {
				t.Fatal(err)
			}
			if err := run.Get(ctx, nil); err != nil {
				t.Fatalf("%s failed: %v", r.id, err)
			}
			writeHistory(t, ctx, c, r.id, filepath.Join("testdata", recordVersion, r.name+".json"))
		})
	}
}

// writeHistory writes a closed workflow's history to path, as the e2e
// tests write theirs.
func writeHistory(t *testing.T, ctx context.Context, c client.Client, id, path string) {
	t.Helper()
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		h.Events = append(h.Events, ev)
	}
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		t.Fatal(err)
	}
	buf.WriteByte('\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events of %s in %s", len(h.Events), id, path)
}
