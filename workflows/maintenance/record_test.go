package maintenance_test

// The recorder of the histories replay_test.go replays. It runs Purge, as
// the platform's worker registers it, on a real Temporal dev server
// (bin/temporal, or PAYMENTS_TEMPORAL_CLI) with the store's activities
// replaced by scripted ones, and writes the history to
// testdata/<version>/purge.json. It runs only with
// PAYMENTS_RECORD_HISTORIES=1, the variable the other recorders use:
//
//	PAYMENTS_RECORD_HISTORIES=1 go test ./workflows/maintenance -run TestRecordHistories -count=1 -v
//
// The scripted PurgeExpired fails once, so the history shows the activity
// retried (its started event is the second attempt, with the first one's
// failure), then answers with fixed counts.
//
// Histories of a version are never re-recorded once it shipped: a change
// of the workflow's logic goes behind workflow.GetVersion and records a
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
	"github.com/payments-platform/payments/workflows/maintenance"
)

const (
	recordEnv     = "PAYMENTS_RECORD_HISTORIES"
	recordVersion = "v2"
	recordQueue   = "maintenance-record"
	// recordID is the recorded run's workflow id, shaped like the ids
	// the schedule gives its runs (WorkflowIDPrefix, then a suffix).
	recordID = maintenance.WorkflowIDPrefix + "-record"
)

// recordedPurge is what the scripted PurgeExpired answers once it
// succeeds; replay_test.go checks the recorded result against it.
var recordedPurge = activities.PurgeResult{IdempotencyKeys: 3, RefreshTokens: 2, LoginThrottles: 1, GatewayEvents: 4}

// script holds the scripted answers of the recorder's activities. Each
// is registered under the name the SDK gives the (*activities.Store)
// method the workflow calls: the method's name.
type script struct {
	mu     sync.Mutex
	purges int // calls so far
}

// purgeExpired fails its first call (a transient database error), then
// answers recordedPurge.
func (s *script) purgeExpired(ctx context.Context, now time.Time) (activities.PurgeResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purges++
	if s.purges == 1 {
		return activities.PurgeResult{}, errors.New("store: connection reset by peer")
	}
	return recordedPurge, nil
}

// anonymize answers for AnonymizeClosedAccounts (v2 on: behind the
// anonymize-closed-accounts GetVersion change): two accounts erased.
func (s *script) anonymize(context.Context, time.Time) (int, error) { return 2, nil }

func TestRecordHistories(t *testing.T) {
	if os.Getenv(recordEnv) != "1" {
		t.Skip("records histories only with " + recordEnv + "=1 (and the Temporal CLI: bin/temporal or " + devserver.EnvCLI + ")")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
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

	s := &script{}
	w := worker.New(c, recordQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(maintenance.Purge, workflow.RegisterOptions{Name: maintenance.PurgeWorkflowName})
	w.RegisterActivityWithOptions(s.purgeExpired, activity.RegisterOptions{Name: "PurgeExpired"})
	w.RegisterActivityWithOptions(s.anonymize, activity.RegisterOptions{Name: "AnonymizeClosedAccounts"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: recordID, TaskQueue: recordQueue},
		maintenance.PurgeWorkflowName, maintenance.PurgeInput{})
	if err != nil {
		t.Fatal(err)
	}
	var res activities.PurgeResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("%s failed: %v", recordID, err)
	}
	if res != recordedPurge {
		t.Fatalf("%s returned %+v, want %+v", recordID, res, recordedPurge)
	}
	writeHistory(t, ctx, c, recordID, filepath.Join("testdata", recordVersion, "purge.json"))
}

// writeHistory writes a closed workflow's history to path, as the e2e
// tests and the notify recorder write theirs.
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
