package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/payments-platform/payments/internal/ids"
	"github.com/payments-platform/payments/workflows/notify"
)

func TestWorkflowIDs(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{notify.DeliveryWorkflowID("evt_1", "we_2"), "webhook/evt_1/we_2"},
		{notify.RedeliveryWorkflowID("evt_1", "we_2", "01jx"), "webhook/evt_1/we_2/redeliver/01jx"},
		{notify.EmailWorkflowID("evt_1"), "email/evt_1"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if notify.DeliveryWorkflowName != "notify.Deliver" || notify.EmailWorkflowName != "notify.Email" {
		t.Errorf("workflow names %q, %q: running workflows are registered under the old ones",
			notify.DeliveryWorkflowName, notify.EmailWorkflowName)
	}
}

func TestDeliveryID(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 123_000_000, time.UTC)
	id := notify.DeliveryID(wfID, 1, at)
	if !strings.HasPrefix(id, "whd_") || !ids.Valid(ids.Delivery, id) {
		t.Fatalf("DeliveryID = %q, want a whd_ id", id)
	}
	if again := notify.DeliveryID(wfID, 1, at); again != id {
		t.Errorf("DeliveryID is not deterministic: %q then %q", id, again)
	}
	// The same instant in another zone is the same row.
	if other := notify.DeliveryID(wfID, 1, at.In(time.FixedZone("X", -5*3600))); other != id {
		t.Errorf("DeliveryID depends on the zone: %q, %q", id, other)
	}
	// Its time is the attempt's, so rows sort by it.
	u, err := ulid.ParseStrict(strings.ToUpper(strings.TrimPrefix(id, "whd_")))
	if err != nil {
		t.Fatal(err)
	}
	if !ulid.Time(u.Time()).Equal(at) {
		t.Errorf("DeliveryID's time %v, want %v", ulid.Time(u.Time()), at)
	}
	for name, other := range map[string]string{
		"another attempt":       notify.DeliveryID(wfID, 2, at),
		"another workflow":      notify.DeliveryID(notify.DeliveryWorkflowID(eventID, "we_other"), 1, at),
		"a redelivery":          notify.DeliveryID(notify.RedeliveryWorkflowID(eventID, endpointID, "n"), 1, at),
		"another time":          notify.DeliveryID(wfID, 1, at.Add(time.Millisecond)),
		"attempt 11, not 1 + 1": notify.DeliveryID(wfID, 11, at),
	} {
		if other == id || !ids.Valid(ids.Delivery, other) {
			t.Errorf("%s: %q (first attempt's %q)", name, other, id)
		}
	}
	// The seed is the workflow id and the attempt: only the time differs
	// between two rows of the same attempt at different times.
	a := notify.DeliveryID(wfID, 3, at)
	b := notify.DeliveryID(wfID, 3, at.Add(time.Hour))
	if a[len(a)-16:] != b[len(b)-16:] {
		t.Errorf("the same attempt at two times has different entropy: %q, %q", a, b)
	}
}
