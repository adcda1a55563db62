package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// Prefixes of the opaque secrets handed to clients.
const (
	RefreshTokenPrefix = "rt_"
	APIKeyPrefix       = "sk_"
	// APIKeyShownPrefixLen is how much of an API key secret is kept in clear
	// so that merchants can recognise their keys.
	APIKeyShownPrefixLen = 11
)

// NewSecret returns prefix + 32 random bytes (base64url) and the SHA-256 hash
// to store. Secrets are high-entropy, so a fast hash is enough and lets the
// server look them up by hash.
func NewSecret(prefix string) (secret, hash string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	secret = prefix + base64.RawURLEncoding.EncodeToString(raw)
	return secret, HashSecret(secret), nil
}

// HashSecret is the stored form of a refresh token or API key.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ShownPrefix is the part of an API key secret kept in clear.
func ShownPrefix(secret string) string {
	if len(secret) <= APIKeyShownPrefixLen {
		return secret
	}
	return secret[:APIKeyShownPrefixLen]
}
