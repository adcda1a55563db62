package api

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// certReloader serves the certificate of a pair of PEM files
// (PAYMENTS_TLS_CERT, PAYMENTS_TLS_KEY) and reads them again when either
// changes, so that a renewed certificate (certbot, cert-manager, a mounted
// Kubernetes secret) is served from the next TLS connection on, without a
// restart. Each handshake only compares the files' state (modification
// time, size, identity) with the one last read, so the pair is read once
// per change. A pair that cannot be loaded (a key written after its
// certificate, a bad file) leaves the previous certificate in service and
// logs a warning; it is tried again when a file changes again.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu   sync.Mutex
	cert *tls.Certificate
	// seen is the state of the two files when they were last read,
	// whether or not that pair loaded; nil for a file that was missing.
	seen [2]os.FileInfo
	// certPEM and keyPEM are the contents of cert: files touched but not
	// changed are not parsed again.
	certPEM, keyPEM []byte
}

// newCertReloader loads the pair now: a server must not start with a
// certificate it cannot serve.
func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// GetCertificate is tls.Config.GetCertificate: the current certificate,
// read again first if either file has changed.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed() {
		if err := c.reload(); err != nil {
			c.log.Warn("TLS certificate not reloaded: still serving the previous one", "cert", c.certFile, "key", c.keyFile, "err", err)
		}
	}
	return c.cert, nil
}

// changed reports whether either file differs from when it was last read:
// another modification time or size, another file (renamed over it, a
// symbolic link moved), or one that appeared or disappeared.
func (c *certReloader) changed() bool {
	for i, name := range []string{c.certFile, c.keyFile} {
		now, err := os.Stat(name)
		was := c.seen[i]
		switch {
		case err != nil || was == nil:
			if (err != nil) != (was == nil) {
				return true
			}
		case !os.SameFile(was, now) || !now.ModTime().Equal(was.ModTime()) || now.Size() != was.Size():
			return true
		}
	}
	return false
}

// reload reads the pair and, when its content is new and loads, serves it.
// The files' state is taken before they are read, so that a write during
// the read shows as a change at the next handshake.
func (c *certReloader) reload() error {
	var missing error
	for i, name := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(name)
		if err != nil && missing == nil {
			missing = err
		}
		c.seen[i] = fi
	}
	if missing != nil {
		return missing
	}
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return err
	}
	if c.cert != nil && bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM) {
		return nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("TLS certificate %s with key %s: %w", c.certFile, c.keyFile, err)
	}
	if c.cert != nil {
		c.log.Info("TLS certificate reloaded", "cert", c.certFile, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
	}
	c.cert, c.certPEM, c.keyPEM = &cert, certPEM, keyPEM
	return nil
}
