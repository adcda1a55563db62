package api

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payments-platform/payments/internal/testcert"
)

// pemPair is a fresh self-signed certificate and its key, PEM encoded.
func pemPair(t *testing.T, name string) (certPEM, keyPEM []byte) {
	p := testcert.New(t, name)
	return p.CertPEM, p.KeyPEM
}

// replace writes data to path as certificate tools do: a new file renamed
// over the old one, so a reader never sees half of it.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// The certificate served follows the files: a new pair is served from the
// next handshake on; a pair that does not load (a key not yet written, a
// file missing) keeps the previous certificate in service with one warning
// per change; files touched but not changed are not parsed again.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	certA, keyA := pemPair(t, "a")
	certB, keyB := pemPair(t, "b")
	certC, keyC := pemPair(t, "c")
	replace(t, certFile, certA)
	replace(t, keyFile, keyA)
	var logs bytes.Buffer
	r, err := newCertReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		c, err := r.GetCertificate(&tls.ClientHelloInfo{})
		if err != nil || c == nil {
			t.Fatalf("GetCertificate: %v %v", c, err)
		}
		return c.Leaf.Subject.CommonName
	}
	if got := served(); got != "a" {
		t.Fatalf("served %q, want a", got)
	}

	replace(t, certFile, certB)
	replace(t, keyFile, keyB)
	if got := served(); got != "b" || !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Fatalf("after the swap served %q, logs:\n%s", got, logs.String())
	}

	// The certificate renewed before its key: b stays, one warning.
	replace(t, certFile, certC)
	for range 3 {
		if got := served(); got != "b" {
			t.Fatalf("with a mismatched pair served %q, want b", got)
		}
	}
	if n := strings.Count(logs.String(), "TLS certificate not reloaded"); n != 1 {
		t.Fatalf("%d warnings for one failed reload, want 1:\n%s", n, logs.String())
	}
	replace(t, keyFile, keyC)
	if got := served(); got != "c" {
		t.Fatalf("with the key written served %q, want c", got)
	}

	// Touched, same content: the same certificate, not parsed again.
	before, _ := r.GetCertificate(&tls.ClientHelloInfo{})
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(certFile, later, later); err != nil {
		t.Fatal(err)
	}
	if after, _ := r.GetCertificate(&tls.ClientHelloInfo{}); after != before {
		t.Fatal("a touched but unchanged certificate was loaded again")
	}

	// A file removed (a secret being remounted): c stays.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	if got := served(); got != "c" || !strings.Contains(logs.String(), "TLS certificate not reloaded") {
		t.Fatalf("without the key served %q, logs:\n%s", got, logs.String())
	}
	if got := served(); got != "c" || strings.Count(logs.String(), "not reloaded") != 1 {
		t.Fatalf("the missing key was warned about again, or served %q:\n%s", got, logs.String())
	}
	replace(t, keyFile, keyC)
	if got := served(); got != "c" {
		t.Fatalf("with the key back served %q, want c", got)
	}

	// A server does not start with a pair it cannot serve.
	replace(t, keyFile, keyA)
	if _, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("a mismatched pair at start: %v, want an error naming %s", err, certFile)
	}
}
