package config

import (
	"slices"
	"strings"
	"testing"
)

// PAYMENTS_CORS_ORIGINS is read through FromEnv as browsers write the Origin
// header, none by default, and anything that is not exactly an origin is a
// start error naming the variable: the API compares origins exactly, so a
// path or a wildcard would silently trust nothing, or more than meant.
func TestCORSOrigins(t *testing.T) {
	c, err := FromEnv(ModeDev, envOf(map[string]string{"PAYMENTS_DATA_DIR": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	if c.CORSOrigins != nil {
		t.Fatalf("CORSOrigins by default = %q, want none", c.CORSOrigins)
	}
	c, err = FromEnv(ModeDev, envOf(map[string]string{
		"PAYMENTS_DATA_DIR":     t.TempDir(),
		"PAYMENTS_CORS_ORIGINS": " https://Shop.Example , http://localhost:5173/,,https://a.example:8443",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://shop.example", "http://localhost:5173", "https://a.example:8443"}; !slices.Equal(c.CORSOrigins, want) {
		t.Fatalf("CORSOrigins = %q, want %q", c.CORSOrigins, want)
	}
	for _, bad := range []string{
		"*", "https://*.shop.example", "shop.example", "ftp://shop.example", "https://shop.example/app",
		"https://shop.example?x=1", "https://shop.example#top", "https://user@shop.example", "https://",
	} {
		_, err := FromEnv(ModeDev, envOf(map[string]string{"PAYMENTS_DATA_DIR": t.TempDir(), "PAYMENTS_CORS_ORIGINS": bad}))
		if err == nil || !strings.Contains(err.Error(), "PAYMENTS_CORS_ORIGINS") {
			t.Errorf("PAYMENTS_CORS_ORIGINS=%q: err = %v, want a refusal naming the variable", bad, err)
		}
	}
}
