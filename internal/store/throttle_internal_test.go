package store

import (
	"testing"
	"time"
)

func TestThrottlePolicyBlock(t *testing.T) {
	p := DefaultThrottlePolicy
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{0, 0}, {1, 0}, {4, 0},
		{5, time.Minute}, {6, 2 * time.Minute}, {7, 4 * time.Minute}, {8, 8 * time.Minute},
		{9, 15 * time.Minute}, {10, 15 * time.Minute}, {200, 15 * time.Minute}, {1 << 30, 15 * time.Minute},
	}
	for _, tt := range tests {
		if got := p.block(tt.failures); got != tt.want {
			t.Errorf("block(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
	if got := (ThrottlePolicy{}).block(100); got != 0 {
		t.Errorf("zero policy blocks for %v", got)
	}
}

func TestRedactDSNPassword(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"app:s3cr3t@tcp(db:3306)/payments", "s3cr3t"},
		{"app:p@ss/w:rd@tcp(db:3306)/payments?x=1", "p@ss/w:rd"},
		{"app@tcp(db:3306)/payments", ""},
		{"tcp(db:3306)/payments", ""},
	}
	for _, tt := range tests {
		if got := dsnPassword(tt.dsn); got != tt.want {
			t.Errorf("dsnPassword(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
	if got := redact("bad value s3cr3t here", "s3cr3t"); got != "bad value *** here" {
		t.Errorf("redact = %q", got)
	}
}
