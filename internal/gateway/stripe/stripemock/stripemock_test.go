package stripemock

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFindEnv(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "stripe-mock")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinary, exe)
	if got, err := Find(); err != nil || got != exe {
		t.Fatalf("Find() = %q, %v; want %q", got, err, exe)
	}

	plain := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{filepath.Join(dir, "missing"), plain, dir} {
		t.Setenv(EnvBinary, bad)
		_, err := Find()
		if err == nil || !strings.Contains(err.Error(), InstallHint) {
			t.Errorf("Find() with %s=%s: %v, want an error with the install hint", EnvBinary, bad, err)
		}
	}
}

func TestFindWalksUpToModuleRoot(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(root, "bin", "stripe-mock")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinary, "")
	t.Setenv("PATH", "")
	t.Chdir(sub)
	if got, err := Find(); err != nil || got != exe {
		t.Fatalf("Find() = %q, %v; want %q", got, err, exe)
	}
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), InstallHint) {
		t.Fatalf("Find() without the binary: %v", err)
	}
}

func TestStartFailsWhenTheChildExits(t *testing.T) {
	script := filepath.Join(t.TempDir(), "stripe-mock")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'flag provided but not defined' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), script)
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "flag provided but not defined") {
		t.Fatalf("Start() = %v", err)
	}
}

func TestStartAndClose(t *testing.T) {
	bin, err := Find()
	if err != nil {
		t.Fatalf("this test needs stripe-mock: %v", err)
	}
	srv, err := Start(t.Context(), bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL() = %q", srv.URL())
	}
	if !strings.Contains(srv.Output(), "Listening for HTTP") {
		t.Fatalf("Output() = %q", srv.Output())
	}
	resp, err := http.Get(srv.URL() + "/v1/balance")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized { // no key: stripe-mock checks for one
		t.Fatalf("GET /v1/balance without a key: %s", resp.Status)
	}

	srv.Close()
	srv.Close() // idempotent
	select {
	case <-srv.done:
	default:
		t.Fatal("Close returned before the child exited")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(srv.URL() + "/v1/balance"); err == nil {
		resp.Body.Close()
		t.Fatal("stripe-mock still answers after Close")
	}
}
