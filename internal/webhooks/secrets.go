// Package webhooks sends the platform's events to merchants' endpoints:
// the signing secrets and the Standard Webhooks signature, the URL policy
// that keeps deliveries off internal networks (SSRF), one HTTP attempt and
// how its answer is judged. The relay that turns committed events into
// deliveries and emails is in workflows/notify.
package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// secretBytes is the size of a new secret's key (API.md: at least 24).
const secretBytes = 32

// NewSecret returns a new signing secret: whsec_ + base64 of 32 random
// bytes, as Standard Webhooks' libraries read it.
func NewSecret() string {
	key := make([]byte, secretBytes)
	_, _ = rand.Read(key) // crypto/rand.Read cannot fail (Go 1.24+)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// secretKey is the HMAC key of a secret: the bytes its base64 part encodes.
func secretKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook secret without the whsec_ prefix")
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(key) < 24 {
		return nil, errors.New("webhook secret is not base64 of at least 24 bytes")
	}
	return key, nil
}

// Signature is Standard Webhooks' signature of a message with one secret:
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)).
func Signature(secret, id string, timestamp time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// SignatureHeader is the webhook-signature header: one signature per
// secret, space-separated (the current secret's first, then, during a
// rotation's overlap, the previous one's).
func SignatureHeader(secrets []string, id string, timestamp time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := Signature(s, id, timestamp, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

// Sealer encrypts the signing secrets at rest (AES-256-GCM), with a key
// derived from the platform's secret (the JWT signing key) by HKDF, so a
// copy of the database alone does not let anyone sign as the platform.
type Sealer struct {
	aead cipher.AEAD
}

// sealVersion prefixes a sealed value, for a later change of scheme.
const sealVersion = "v1:"

// NewSealer derives the sealing key from secret.
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) == 0 {
		return nil, errors.New("webhook secrets: no key to seal them with")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "payments webhook endpoint secrets v1", 32)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain; the result is printable.
func (s *Sealer) Seal(plain string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // cannot fail (Go 1.24+)
	return sealVersion + base64.RawStdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plain), nil))
}

// Open decrypts what Seal returned.
func (s *Sealer) Open(sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, sealVersion)
	if !ok {
		return "", errors.New("webhook secret: unknown sealing")
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errors.New("webhook secret: malformed")
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], nil)
	if err != nil {
		return "", errors.New("webhook secret: cannot be opened with this key")
	}
	return string(plain), nil
}
