package ids

import (
	"strings"
	"testing"
	"time"
)

func TestNewIsPrefixedSortableAndValid(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	a, b := NewAt(Payment, t0), NewAt(Payment, t0.Add(time.Millisecond))
	if !strings.HasPrefix(a, "pay_") || !Valid(Payment, a) || !Valid(Payment, b) {
		t.Fatalf("ids %q %q", a, b)
	}
	if !(a < b) {
		t.Fatalf("ids do not sort by time: %q >= %q", a, b)
	}
	if a != strings.ToLower(a) {
		t.Fatalf("id %q is not lower case", a)
	}
	for _, bad := range []string{"", "pay_", "acct_" + a[4:], "pay_!!", a + "x"} {
		if Valid(Payment, bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}

func TestDeriveIsStable(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	a := Derive(Payment, t0, []byte("acct_1/key-1"))
	if a != Derive(Payment, t0, []byte("acct_1/key-1")) {
		t.Fatal("Derive is not deterministic")
	}
	if a == Derive(Payment, t0, []byte("acct_1/key-2")) || a == Derive(Payment, t0, []byte("acct_2/key-1")) {
		t.Fatal("different seeds give the same id")
	}
	if !Valid(Payment, a) {
		t.Fatalf("derived id %q is not valid", a)
	}
}
