package config

import (
	"strings"
	"testing"
	"time"
)

// accountsEnv is a valid dev environment with set added.
func accountsEnv(t *testing.T, set map[string]string) func(string) string {
	t.Helper()
	m := map[string]string{"PAYMENTS_DATA_DIR": t.TempDir()}
	for k, v := range set {
		m[k] = v
	}
	return envOf(m)
}

// PAYMENTS_CLOSED_ACCOUNT_RETENTION is 90 days unless set; it takes whole
// days ("30d") or a Go duration of at least an hour, and anything else is
// refused by name.
func TestClosedAccountRetention(t *testing.T) {
	const name = "PAYMENTS_CLOSED_ACCOUNT_RETENTION"
	c, err := FromEnv(ModeDev, accountsEnv(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClosedAccountRetention != 90*24*time.Hour || DefaultClosedAccountRetention != 90*24*time.Hour {
		t.Fatalf("default retention %v (constant %v), want 2160h", c.ClosedAccountRetention, DefaultClosedAccountRetention)
	}
	for v, want := range map[string]time.Duration{
		"30d":   720 * time.Hour,
		"1d":    24 * time.Hour,
		"48h":   48 * time.Hour,
		"1h":    time.Hour,
		"90m":   90 * time.Minute,
		" 7d ":  7 * 24 * time.Hour,
		"2160h": DefaultClosedAccountRetention,
	} {
		c, err := FromEnv(ModeDev, accountsEnv(t, map[string]string{name: v}))
		if err != nil || c.ClosedAccountRetention != want {
			t.Errorf("%s=%q: %v %v, want %v", name, v, c.ClosedAccountRetention, err, want)
		}
	}
	for _, bad := range []string{"0", "0d", "-1h", "-1d", "30m", "59m59s", "abc", "1.5d", "d", "30 d", "30days", "36501d", "213505d", "876001h"} {
		_, err := FromEnv(ModeDev, accountsEnv(t, map[string]string{name: bad}))
		if err == nil {
			t.Errorf("%s=%q accepted", name, bad)
			continue
		}
		if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s=%q: %q does not name the variable and the value", name, bad, err)
		}
	}
	// Refused in serve mode too, reported with the other settings' problems.
	_, err = FromEnv(ModeServe, accountsEnv(t, map[string]string{name: "soon", "PAYMENTS_REQUIRE_VERIFIED_MERCHANTS": "maybe"}))
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "PAYMENTS_REQUIRE_VERIFIED_MERCHANTS") {
		t.Errorf("serve with a bad retention and a bad boolean: %v", err)
	}
}

// PAYMENTS_REQUIRE_VERIFIED_MERCHANTS is off unless set to a boolean.
func TestRequireVerifiedMerchants(t *testing.T) {
	const name = "PAYMENTS_REQUIRE_VERIFIED_MERCHANTS"
	c, err := FromEnv(ModeDev, accountsEnv(t, nil))
	if err != nil || c.RequireVerifiedMerchants {
		t.Fatalf("default: %v %v, want false", c.RequireVerifiedMerchants, err)
	}
	for v, want := range map[string]bool{"true": true, "TRUE": true, "1": true, " true ": true, "false": false, "0": false, "": false} {
		c, err := FromEnv(ModeDev, accountsEnv(t, map[string]string{name: v}))
		if err != nil || c.RequireVerifiedMerchants != want {
			t.Errorf("%s=%q: %v %v, want %v", name, v, c.RequireVerifiedMerchants, err, want)
		}
	}
	for _, bad := range []string{"maybe", "yes", "on"} {
		_, err := FromEnv(ModeDev, accountsEnv(t, map[string]string{name: bad}))
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s=%q: %v, want an error naming the variable", name, bad, err)
		}
	}
}
